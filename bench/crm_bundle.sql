-- scripts/bench crm: one lead bundle per transaction, sent the way the BFF
-- sends it: one transaction, the request's first statement, one RPC call,
-- commit. scripts/bench writes one copy per user with the first statement
-- and the user's claims filled in: by default the BFF's (bff/src/db.rs
-- BEGIN_REQUEST: role, claims, request id and traceparent set in a
-- subquery, then authenticate_request() and control.placement_check());
-- with BIZOS_BENCH_CRM_FIRST=claims only the role and the claims are set
-- (the shape measured before issue 49). Half the calls name an existing customer by
-- its NPWP (customers 1..:ncust except the multiples of 5, which have no
-- NPWP): a dedup hit. The other half are new companies (numbers beyond any
-- loaded customer, so a new NPWP).
\set hit random(0, 1)
\set k case when :hit = 1 then 5 * random(0, :ncust / 5 - 1) + random(1, 4) else random(50000001, 99999999) end
begin;
@BEGIN_REQUEST@
select crm_create_lead_bundle(jsonb_build_object('channel', bench_crm_channel(:k), 'company_name', bench_crm_name(:k),
                                                 'npwp', bench_crm_npwp(:k), 'contact_phone', bench_crm_phone(:k)));
commit;
