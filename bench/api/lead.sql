-- pgbench: what the BFF runs for POST /api/leads, without HTTP.
\set n random(1, 1000000000)
begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', :claims, true);
select crm_create_lead_bundle(jsonb_build_object('channel', 'website', 'company_name', 'PT Bench ' || :n || '-' || :client_id,
  'contact_name', 'Budi', 'contact_email', 'budi' || :n || '.' || :client_id || '@bench.co.id'));
commit;
