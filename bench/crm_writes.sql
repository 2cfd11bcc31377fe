-- scripts/bench crm: what a lead bundle writes, and nothing else. The same
-- transaction shape and generated values as crm_bundle.sql, but one
-- statement run as the owner (no RLS, no RPC): the NPWP probe, then the new
-- customer, the prospect, the lead and the look-alike job as
-- crm_create_lead_bundle writes them, with every trigger (audit, stage
-- history, stamps, lead number, webhook capture), check, foreign key and
-- index of the tables. Left out: the payload and vocabulary checks, the
-- permission checks, the advisory locks of the weak keys, readability, the
-- candidates and the answer. Its distance to the bundle is the RPC's own
-- cost; its distance to the plain insert is what the rows cost. The first
-- statement is the bundle's (by default the BFF's, authenticate_request()
-- as bizos_authenticated), which then sets the role back to the login, the
-- owner, in the same statement (scripts/bench makes the owner a member of
-- bizos_authenticated for this); with BIZOS_BENCH_CRM_FIRST=claims it sets
-- the claims only.
\set hit random(0, 1)
\set k case when :hit = 1 then 5 * random(0, :ncust / 5 - 1) + random(1, 4) else random(50000001, 99999999) end
begin;
@BEGIN_REQUEST_OWNER@
with src as (
  select bench_crm_name(:k) as name, bench_crm_npwp(:k) as npwp, bench_crm_phone(:k) as phone,
         bench_crm_channel(:k) as channel,
         case when bizos.app_role() = 'salesperson' then bizos.uid() end as owner
), found as (
  select c.customer_id from customers c, src
   where c.tenant_id = '@TENANT@' and c.npwp_norm = bizos.norm_npwp(src.npwp)
), new_customer as (
  insert into customers (tenant_id, company_name, npwp, phone)
  select '@TENANT@', src.name, src.npwp, src.phone from src where not exists (select from found)
  returning customer_id
), customer as (
  select customer_id from found union all select customer_id from new_customer
), new_prospect as (
  insert into prospects (tenant_id, customer_id, owner_user_id)
  select '@TENANT@', customer.customer_id, src.owner from customer, src
  on conflict (tenant_id, customer_id, owner_user_id) do nothing
  returning prospect_id, customer_id
), prospect as (
  select prospect_id, customer_id from new_prospect
  union all
  select p.prospect_id, p.customer_id from prospects p, customer, src
   where not exists (select from new_prospect)
     and p.tenant_id = '@TENANT@' and p.customer_id = customer.customer_id
     and p.owner_user_id is not distinct from src.owner
), lead as (
  insert into leads (tenant_id, channel, status, company_name, contact_phone, npwp, customer_id, prospect_id,
                     sales_owner_user_id, assigned_at, handed_over)
  select '@TENANT@', src.channel, case when src.owner is null then 'NEW' else 'ASSIGNED' end, src.name,
         src.phone, src.npwp, prospect.customer_id, prospect.prospect_id, src.owner,
         case when src.owner is not null then now() end, false
    from prospect, src
  returning lead_id
), job as (
  insert into jobs (tenant_id, kind, payload, priority, max_attempts)
  select '@TENANT@', k.kind, jsonb_build_object('customer_ids', jsonb_build_array(new_customer.customer_id)), 0,
         k.max_attempts
    from new_customer, job_kinds k
   where k.kind = 'customer.lookalikes'
  returning job_id
)
select (select count(*) from lead) as leads, (select count(*) from job) as jobs;
commit;
