-- scripts/bench crm: the job customer.lookalikes for one existing customer
-- of the 1M tenant (customer k, found by its e-mail), as the worker runs it:
-- the 50 most similar names (pg_trgm >= 0.5) replace what an earlier check
-- stored. Run as the owner (the function is SECURITY DEFINER either way).
\set k random(1, :ncust)
begin;
select customer_lookalikes_find('@TENANT@', array[(select c.customer_id from customers c
  where c.tenant_id = '@TENANT@' and c.email_norm = bizos.norm_email(bench_crm_email(:k)))]);
commit;
