-- Tenants on two plans, a third of them moving to the other plan on
-- 15 December; three metered usages each and a stand-in of usage_billable
-- over them (the real function is the usage metering's).
select billing_clock_set('2026-12-01T01:00:00Z');
insert into plans (plan_code, label, monthly_price) values
  ('bench-basic', 'Basic', 310000), ('bench-pro', 'Pro', 620000)
on conflict (plan_code) do nothing;
insert into tenants (slug, name, plan_code)
select 'bench-' || i, 'PT Bench ' || i, case when i % 2 = 0 then 'bench-basic' else 'bench-pro' end
  from generate_series(1, :tenants) i;
select billing_clock_set('2026-12-15T01:00:00Z');
update tenants set plan_code = case plan_code when 'bench-basic' then 'bench-pro' else 'bench-basic' end
 where slug like 'bench-%' and substr(slug, 7)::int % 3 = 0;

create table bench_usage (tenant_id uuid not null, metric_code text not null, quantity numeric not null,
                          primary key (tenant_id, metric_code));
insert into bench_usage
select t.tenant_id, m.code, (abs(hashtext(t.slug || m.code)) % m.spread)::numeric
  from tenants t
 cross join (values ('ai_tokens', 2000000), ('seats', 12), ('storage_gb', 40)) m(code, spread)
 where t.slug like 'bench-%';
