-- The month-end's aggregation for every tenant at once: the plan lines and
-- the overage of December with their totals, into an unlogged table, in
-- one statement (timed), then rolled back. Prints the milliseconds.
begin;
create unlogged table bench_lines (tenant_id uuid, kind text, amount numeric);
select extract(epoch from clock_timestamp()) * 1000 as t0 \gset
insert into bench_lines
select s.tenant_id, l.kind, l.amount
  from subscriptions s
 cross join lateral billing_plan_lines(s.tenant_id, date '2026-12-01', date '2027-01-01', false, date '2027-01-01') l
union all
select s.tenant_id, 'overage', billing_round(u.amount, 'IDR')
  from subscriptions s
 cross join lateral usage_billable(s.tenant_id, date '2026-12-01', date '2027-01-01') u
 where u.amount > 0;
select round(extract(epoch from clock_timestamp()) * 1000 - :t0) as ms;
rollback;
