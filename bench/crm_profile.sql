-- Where the lead bundle's time goes: one bundle, every statement
-- it runs (nested ones too) with its plan, timing and buffers, printed as
-- NOTICEs by auto_explain. Run as a superuser (LOAD) on a database that
-- scripts/bench crm's setup and load prepared (bench/crm_setup.sql,
-- bench/crm_load.sql), with :k a customer number as in crm_bundle.sql
-- (1..ncust not a multiple of 5: an NPWP hit; above 50,000,000: a new
-- company):
--   psql -X -q -d <db> -v k=60000003 -f bench/crm_profile.sql
load 'auto_explain';
set auto_explain.log_min_duration = 0;
set auto_explain.log_nested_statements = on;
set auto_explain.log_analyze = on;
set auto_explain.log_buffers = on;
set auto_explain.log_timing = on;
set auto_explain.log_level = notice;
\timing on
begin;
select set_config('role', 'bizos_authenticated', true),
       set_config('request.jwt.claims',
                  '{"sub":"00000000-0000-4000-8000-000000000003","tenant_id":"c0000000-0000-4000-8000-0000000000c1","app_role":"salesperson"}',
                  true);
select crm_create_lead_bundle(jsonb_build_object('channel', bench_crm_channel(:k), 'company_name', bench_crm_name(:k),
                                                 'npwp', bench_crm_npwp(:k), 'contact_phone', bench_crm_phone(:k)));
commit;
