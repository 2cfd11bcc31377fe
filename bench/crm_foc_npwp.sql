-- scripts/bench crm: find_or_create_customer with an existing customer's
-- company name and NPWP (an exact hit), as a salesperson through the BFF.
\set k 5 * random(0, :ncust / 5 - 1) + random(1, 4)
begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', '@CLAIMS@', true);
select find_or_create_customer(bench_crm_name(:k), bench_crm_npwp(:k));
commit;
