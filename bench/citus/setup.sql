-- bench/citus/run: eight tenants made with tenant_create() (on Citus they
-- land on both workers), a sales manager in each, and the claims of each
-- manager in bench_callers (a plain local table the pgbench script reads,
-- as bizos_app before the request sets its role).
-- Run as bizos_owner after `bizos migrate`.
\set ON_ERROR_STOP on
create table bench_callers (n integer primary key, claims text not null);
grant select on bench_callers to bizos_app, bizos_authenticated;
do $setup$
declare
  v_tenant uuid;
begin
  for i in 1..8 loop
    v_tenant := tenant_create('bench-citus-' || i, 'PT Bench ' || i);
    insert into profiles (tenant_id, user_id, email, full_name, app_role)
    values (v_tenant, ('00000000-0000-4000-8000-0000000000' || lpad(i::text, 2, '0'))::uuid,
            'manager' || i || '@bench.test', 'Manager ' || i, 'sales_manager');
    insert into bench_callers (n, claims)
    values (i, json_build_object('sub', '00000000-0000-4000-8000-0000000000' || lpad(i::text, 2, '0'),
                                 'tenant_id', v_tenant)::text);
  end loop;
end
$setup$;
