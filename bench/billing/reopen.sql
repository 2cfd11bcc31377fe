-- A reused bench cluster (BIZOS_BENCH_BILLING_REUSE=1): December open
-- again for every bench tenant, as setup.sql left it: no operator invoice,
-- no month-end job, the subscriptions in December, the clock before its
-- end.
select billing_clock_set('2026-12-15T01:00:00Z');
delete from billing_invoices i using tenants t where t.tenant_id = i.tenant_id and t.slug like 'bench-%';
delete from jobs j where j.kind = 'billing.month_end';
update subscriptions s set current_period_start = '2026-12-01', current_period_end = '2027-01-01'
  from tenants t where t.tenant_id = s.tenant_id and t.slug like 'bench-%';
