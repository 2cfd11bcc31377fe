-- pgbench: POST /api/leads as the BFF runs it, without HTTP: one
-- transaction, the BFF's first statement (role, claims, request id and
-- traceparent, authenticate_request()), the lead bundle, commit. Companies
-- from a pool of 2,000, so the customer table stops growing.
\set k random(1, 2000)
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
select crm_create_lead_bundle(jsonb_build_object('channel', 'website', 'company_name', 'PT Bench ' || :k,
  'contact_name', 'Budi', 'contact_email', 'budi' || :k || '@bench.co.id'));
commit;
