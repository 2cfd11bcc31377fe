-- scripts/bench crm: the floor of an exact find_or_create_customer call. The
-- raw indexed lookup by npwp_norm, as the table owner (as inside the
-- SECURITY DEFINER function), in a transaction of the same shape.
\set k 5 * random(0, :ncust / 5 - 1) + random(1, 4)
begin;
select set_config('request.jwt.claims', '@CLAIMS@', true);
select customer_id from customers where tenant_id = '@TENANT@' and npwp_norm = bizos.norm_npwp(bench_crm_npwp(:k));
commit;
