-- bench/webhooks/run, part 1: the tenant, the user whose claims pgbench
-- sets, and one webhook endpoint subscribed to lead.created (its secret is
-- a placeholder: nothing delivers in this part; the outbox only fills).
-- Run as bizos_owner after `bizos migrate`:
--   psql -v tenant=<uuid> -v user=<uuid> -f setup.sql
\set ON_ERROR_STOP on
insert into tenants (tenant_id, slug, name) values (:'tenant', 'bench-webhooks', 'PT Bench Webhooks');
insert into profiles (tenant_id, user_id, email, full_name, app_role)
values (:'tenant', :'user', 'mm@bench.test', 'Marketing', 'marketing_manager');
with e as (
  insert into webhook_endpoints (tenant_id, url, description)
  values (:'tenant', 'https://hooks.example.com/bench', 'bench: lead.created')
  returning endpoint_id),
s as (
  insert into webhook_subscriptions (tenant_id, endpoint_id, event_type)
  select :'tenant', endpoint_id, 'lead.created' from e)
insert into webhook_secrets (tenant_id, endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce, master_key_id)
select :'tenant', endpoint_id, '\x0102', decode(repeat('0a', 12), 'hex'), decode(repeat('ab', 48), 'hex'),
       decode(repeat('0b', 12), 'hex'), 'bench'
  from e;
