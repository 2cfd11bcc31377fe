-- scripts/bench crm: find_or_create_customer with an existing customer's
-- company name and e-mail address, no NPWP (an exact hit on the e-mail).
\set k random(1, :ncust)
begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', '@CLAIMS@', true);
select find_or_create_customer(bench_crm_name(:k), null, bench_crm_email(:k));
commit;
