-- scripts/bench crm: find_or_create_customer with no identifiers and a
-- company name similar to an existing one (bench_crm_fuzzy: a typo, a word
-- missing, " Indonesia" added, or another legal form). Unless the normalised
-- name matches a customer exactly, the call creates a customer.
\set k random(1, :ncust)
\set v random(1, 4)
begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', '@CLAIMS@', true);
select find_or_create_customer(bench_crm_fuzzy(:k, :v));
commit;
