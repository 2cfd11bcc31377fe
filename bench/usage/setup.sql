-- The benchmark's tenants, metrics and batch template (psql -v tenants=N).
insert into billable_metrics (code, label, unit, aggregation, field_name) values
  ('shipped_kg', 'shipped', 'kg', 'sum', 'kg'),
  ('active_drivers', 'drivers', 'drivers', 'unique_count', 'driver'),
  ('api_calls', 'API calls', 'calls', 'count', null);
insert into plans (plan_code, label, monthly_price) values ('bench', 'Bench', 1000000);
insert into plan_metrics (plan_code, metric_code, included, unit_price) values
  ('bench', 'shipped_kg', 1000, 150), ('bench', 'active_drivers', 50, 20000), ('bench', 'api_calls', 100, 10);
insert into tenants (slug, name, plan_code)
select 'bench-' || i, 'PT Bench ' || i, 'bench' from generate_series(1, :tenants) i;
insert into tenants (slug, name, plan_code) values ('probe', 'PT Probe', 'bench');
insert into profiles (tenant_id, user_id, email, full_name, app_role)
select tenant_id, gen_random_uuid(), 'admin@' || slug || '.test', 'Admin', 'super_admin' from tenants;
-- 1,000 events: half a sum (kg), a third unique drivers, the rest counts;
-- the benchmark adds a fresh event_id to each.
create table bench_batch as
select g, case when g % 6 < 3 then jsonb_build_object('code', 'shipped_kg', 'properties', jsonb_build_object('kg', (g % 97) + 0.5))
               when g % 6 < 5 then jsonb_build_object('code', 'active_drivers', 'properties', jsonb_build_object('driver', 'd' || (g % 400)))
               else jsonb_build_object('code', 'api_calls') end as e
  from generate_series(1, 1000) g;
-- The baseline: the same rows into a plain table (no checks, no aggregates).
create table bench_plain (like usage_events including defaults);
alter table bench_plain add primary key (tenant_id, event_id);
create or replace function bench_tenant(n integer) returns uuid language sql stable
as $$ select tenant_id from tenants where slug = 'bench-' || n $$;
