-- pgbench: what the BFF runs for POST /api/leads, without HTTP (as
-- bench/api/lead.sql): one transaction, role and claims, the lead bundle.
-- The companies come from a pool of 2,000 (the customer is found by its
-- e-mail after the first lead of each), so the customer table, whose size
-- drives the dedup's cost, stops growing after the warm-up and the rounds
-- with and without the trigger compare like with like.
\set k random(1, 2000)
begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true);
select crm_create_lead_bundle(jsonb_build_object('channel', 'website', 'company_name', 'PT Bench ' || :k,
  'contact_name', 'Budi', 'contact_email', 'budi' || :k || '@bench.co.id'));
commit;
