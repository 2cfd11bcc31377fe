-- scripts/bench crm: the bundle's baseline. The same transaction as
-- crm_bundle.sql (the same first statement, by default the BFF's with
-- authenticate_request(); the same generated values) but the call is
-- replaced by a plain INSERT of one lead-shaped row into a table without
-- triggers, RLS or RPC.
\set hit random(0, 1)
\set k case when :hit = 1 then 5 * random(0, :ncust / 5 - 1) + random(1, 4) else random(50000001, 99999999) end
begin;
@BEGIN_REQUEST@
insert into bench_crm_plain_leads (tenant_id, channel, company_name, npwp, contact_phone)
values ('@TENANT@', bench_crm_channel(:k), bench_crm_name(:k), bench_crm_npwp(:k), bench_crm_phone(:k));
commit;
