-- scripts/bench crm: crm_lookalikes.sql for a customer of a small tenant
-- (2,000 customers, numbers 40,000,001..40,002,000) in the same database as
-- the 1M tenant: its cost must follow its own tenant's size.
\set k random(40000001, 40002000)
begin;
select customer_lookalikes_find('@SMALL@', array[(select c.customer_id from customers c
  where c.tenant_id = '@SMALL@' and c.email_norm = bizos.norm_email(bench_crm_email(:k)))]);
commit;
