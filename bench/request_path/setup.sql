-- bench/request_path/run: the tenant, a sales manager with four
-- salespeople reporting to him (the caller: team-based visibility) and
-- 2,000 companies' leads, half owned by his team. Run as bizos_owner
-- after `bizos migrate`:
--   psql -v tenant=<uuid> -f setup.sql
\set ON_ERROR_STOP on
insert into tenants (tenant_id, slug, name) values (:'tenant', 'bench-request-path', 'PT Bench Jalur');
insert into profiles (tenant_id, user_id, email, full_name, app_role, manager_user_id)
values (:'tenant', '00000000-0000-4000-8000-0000000000a1', 'manager@bench.test', 'Agus', 'sales_manager', null),
       (:'tenant', '00000000-0000-4000-8000-0000000000a9', 'other@bench.test', 'Other', 'sales_manager', null);
insert into profiles (tenant_id, user_id, email, full_name, app_role, manager_user_id)
select :'tenant', ('00000000-0000-4000-8000-0000000000a' || i)::uuid, 'sales' || i || '@bench.test',
       'Sales ' || i, 'salesperson', '00000000-0000-4000-8000-0000000000a1'
  from generate_series(2, 5) i;
