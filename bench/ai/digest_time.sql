-- Times digest_aggregates(tenant, 2026-11-18) against the same aggregates
-- written as one plain SQL query each (over the same tables and views:
-- v_sla_status for the SLA figures, the v_ar_ledger for the receivables,
-- v_kpi_actual_vs_target for the KPI attainment), :rounds rounds, the two
-- alternating (digest first in odd rounds). Prints one row: the medians
-- in ms and their ratio. psql variables: tenant, rounds.
\set ON_ERROR_STOP on
\ir timing.sql

create temporary table plain (n int, q text);
insert into plain values
 (1, $q$select sum(subtotal) filter (where issue_date = '2026-11-18'), sum(subtotal) filter (where issue_date = '2026-11-17'),
            sum(subtotal) filter (where issue_date >= '2026-11-01'), sum(subtotal) filter (where issue_date <= '2026-10-18')
       from invoices where tenant_id = '@T' and status in ('ISSUED', 'PAID') and currency = 'IDR'
        and issue_date between '2026-10-01' and '2026-11-18'$q$),
 (2, $q$select sum(p.amount) filter (where p.paid_on = '2026-11-18'), sum(p.amount) filter (where p.paid_on = '2026-11-17'),
            sum(p.amount) filter (where p.paid_on >= '2026-11-01'), sum(p.amount) filter (where p.paid_on <= '2026-10-18')
       from payments p join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
      where p.tenant_id = '@T' and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
        and p.paid_on between '2026-10-01' and '2026-11-18'$q$),
 (3, $q$select sum(target_value * (least(upper(period), date '2026-12-01') - greatest(lower(period), date '2026-11-01'))
                / (upper(period) - lower(period)))
       from kpi_targets where tenant_id = '@T' and metric_key = 'revenue' and period && daterange('2026-11-01', '2026-12-01')$q$),
 (4, $q$select count(*) filter (where created_at >= '2026-11-18 00:00+07'), count(*) filter (where created_at < '2026-11-18 00:00+07' and created_at >= '2026-11-17 00:00+07'),
            count(*) filter (where created_at >= '2026-11-01 00:00+07'), count(*) filter (where created_at < '2026-10-19 00:00+07'),
            count(*) filter (where created_at >= '2026-11-01 00:00+07' and status = 'CONVERTED'),
            count(*) filter (where created_at < '2026-10-19 00:00+07' and status = 'CONVERTED')
       from leads where tenant_id = '@T' and created_at >= '2026-10-01 00:00+07' and created_at < '2026-11-19 00:00+07'$q$),
 (5, $q$select count(*), count(*) filter (where response_due_at < '2026-11-19 00:00+07' and first_response_at is null
                                        or resolution_due_at < '2026-11-19 00:00+07')
       from v_sla_status where tenant_id = '@T' and created_at < '2026-11-19 00:00+07'
        and coalesce(resolved_at, closed_at, cancelled_at, 'infinity') >= '2026-11-19 00:00+07'$q$),
 (6, $q$select count(*) from v_sla_status where tenant_id = '@T' and sla_status = 'breached'
        and created_at >= '2026-11-18 00:00+07' and created_at < '2026-11-19 00:00+07'$q$),
 (7, $q$select count(*) from v_sla_status where tenant_id = '@T' and sla_status = 'breached'
        and created_at >= '2026-11-17 00:00+07' and created_at < '2026-11-18 00:00+07'$q$),
 (8, $q$select count(*) from v_sla_status where tenant_id = '@T' and sla_status = 'breached'
        and created_at >= '2026-11-01 00:00+07' and created_at < '2026-11-19 00:00+07'$q$),
 (9, $q$select count(*) from v_sla_status where tenant_id = '@T' and sla_status = 'breached'
        and created_at >= '2026-10-01 00:00+07' and created_at < '2026-10-19 00:00+07'$q$),
 (10, $q$select sum(a.o), sum(a.o) filter (where d > 0), sum(a.o) filter (where d between 1 and 30),
             sum(a.o) filter (where d between 31 and 60), sum(a.o) filter (where d between 61 and 90), sum(a.o) filter (where d > 90)
        from (select l.invoice_id, sum(l.amount) as o, max(date '2026-11-18' - i.due_date) as d
                from v_ar_ledger l join invoices i on i.tenant_id = l.tenant_id and i.invoice_id = l.invoice_id
               where l.tenant_id = '@T' and l.entry_date <= '2026-11-18' and i.currency = 'IDR'
               group by l.invoice_id having sum(l.amount) > 0) a$q$),
 (11, $q$select sum(a.o) from (select l.invoice_id, sum(l.amount) as o
                                 from v_ar_ledger l join invoices i on i.tenant_id = l.tenant_id and i.invoice_id = l.invoice_id
                                where l.tenant_id = '@T' and l.entry_date <= '2026-10-31' and i.currency = 'IDR' and i.due_date < '2026-10-31'
                                group by l.invoice_id having sum(l.amount) > 0) a$q$),
 (12, $q$select i.customer_id, c.company_name, sum(i.subtotal) from invoices i join customers c using (tenant_id, customer_id)
        where i.tenant_id = '@T' and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR' and i.issue_date between '2026-11-01' and '2026-11-18'
        group by 1, 2 order by 3 desc limit 5$q$),
 (13, $q$select i.customer_id, sum(a.o) from (select l.invoice_id, sum(l.amount) as o from v_ar_ledger l
                                               where l.tenant_id = '@T' and l.entry_date <= '2026-11-18' group by 1 having sum(l.amount) > 0) a
        join invoices i on i.tenant_id = '@T' and i.invoice_id = a.invoice_id
       where i.due_date < '2026-11-18' and i.currency = 'IDR' group by 1 order by 2 desc limit 5$q$),
 (14, $q$select metric_key, avg(actual_value / target_value * 100) from v_kpi_actual_vs_target
       where tenant_id = '@T' and '2026-11-18' between period_start and period_end and target_value > 0 group by 1$q$);
update plain set q = replace(q, '@T', :'tenant');

-- v_kpi_actual_vs_target reads the tenant from the claims.
select set_config('request.jwt.claims', json_build_object('tenant_id', :'tenant')::text, false) \gset

do $$
declare
  r int;
  v double precision;
  q record;
begin
  -- warm the cache once
  perform digest_aggregates(current_setting('bench.tenant')::uuid, '2026-11-18');
  for r in 1 .. current_setting('bench.rounds')::int loop
    for pass in 1 .. 2 loop
      if (pass = 1) = (r % 2 = 1) then
        insert into times values (r, 'digest',
          pg_temp.ms(format('select digest_aggregates(%L, %L)', current_setting('bench.tenant'), '2026-11-18')));
      else
        v := 0;
        for q in select * from plain order by n loop
          v := v + pg_temp.ms(q.q);
        end loop;
        insert into times values (r, 'plain', v);
      end if;
    end loop;
  end loop;
end
$$;

select round(percentile_cont(0.5) within group (order by ms) filter (where what = 'digest')) as digest_ms,
       round(percentile_cont(0.5) within group (order by ms) filter (where what = 'plain')) as plain_ms,
       round((percentile_cont(0.5) within group (order by ms) filter (where what = 'digest')
              / percentile_cont(0.5) within group (order by ms) filter (where what = 'plain'))::numeric, 2) as ratio
  from times;
