-- Times rfm_compute(tenant, 2026-11-18) (the weekly snapshot: scores,
-- segments, written to rfm_scores) against one plain query with ntile()
-- over the same purchases (PAID invoices settled in the 365 days up to the
-- day), written to a temporary table; :rounds rounds alternating. Prints
-- the medians in ms, their ratio and the customers scored.
\set ON_ERROR_STOP on
\ir timing.sql
do $$
declare
  t text := current_setting('bench.tenant');
  plain text := format($q$
    drop table if exists rfm_plain;
    create temporary table rfm_plain as
    with per_customer as (
      select i.customer_id, date '2026-11-18' - max(p.paid_on) as recency_days,
             count(*) as frequency, sum(i.amount_paid) as monetary
        from invoices i
        join payments p on p.tenant_id = i.tenant_id and p.invoice_id = i.invoice_id
       where i.tenant_id = %L and i.status = 'PAID'
         and p.paid_on between date '2026-11-18' - 364 and date '2026-11-18'
       group by i.customer_id)
    select customer_id, recency_days, frequency, monetary,
           ntile(5) over (order by recency_days desc) as r,
           ntile(5) over (order by frequency) as f,
           ntile(5) over (order by monetary) as m
      from per_customer$q$, t);
begin
  perform rfm_compute(t::uuid, '2026-11-18');
  for r in 1 .. current_setting('bench.rounds')::int loop
    for pass in 1 .. 2 loop
      if (pass = 1) = (r % 2 = 1) then
        insert into times values (r, 'rfm', pg_temp.ms(format('select rfm_compute(%L, %L)', t, '2026-11-18')));
      else
        insert into times values (r, 'plain', pg_temp.ms(plain));
      end if;
    end loop;
  end loop;
end
$$;
select round(percentile_cont(0.5) within group (order by ms) filter (where what = 'rfm')) as rfm_ms,
       round(percentile_cont(0.5) within group (order by ms) filter (where what = 'plain')) as plain_ms,
       round((percentile_cont(0.5) within group (order by ms) filter (where what = 'rfm')
              / percentile_cont(0.5) within group (order by ms) filter (where what = 'plain'))::numeric, 2) as ratio,
       (select count(*) from rfm_scores where tenant_id = current_setting('bench.tenant')::uuid) as customers
  from times;
