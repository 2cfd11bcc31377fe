-- pgbench: POST /api/leads as the BFF runs it, without HTTP, as the
-- manager of one of eight tenants (bench_callers): one transaction, the
-- BFF's first statement with authenticate_request(), the lead bundle,
-- commit. Companies from a pool of 2,000 per tenant.
\set n random(1, 8)
\set k random(1, 2000)
begin;
select authenticate_request()
  from (select set_config('role', 'bizos_authenticated', true),
               set_config('request.jwt.claims', (select c.claims from bench_callers c where c.n = :n), true),
               set_config('request.id', 'bench', true), set_config('request.traceparent', '', true)) as request;
select crm_create_lead_bundle(jsonb_build_object('channel', 'website', 'company_name', 'PT Bench ' || :k,
  'contact_name', 'Budi', 'contact_email', 'budi' || :k || '@bench.co.id'));
commit;
