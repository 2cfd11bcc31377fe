-- scripts/bench jobs: crm_bundle.sql (the same first statement) plus a
-- job_enqueue in the same transaction, in the same statement as the
-- bundle (no extra round trip: what is measured is the enqueue itself,
-- its insert, trigger and NOTIFY at commit). The job (an e-mail about the
-- new lead) is never worked: no worker runs during this measurement.
\set hit random(0, 1)
\set k case when :hit = 1 then 5 * random(0, :ncust / 5 - 1) + random(1, 4) else random(50000001, 99999999) end
begin;
@BEGIN_REQUEST@
select b, job_enqueue('email.send', jsonb_build_object('lead_id', b->'lead_id'))
  from crm_create_lead_bundle(jsonb_build_object('channel', bench_crm_channel(:k), 'company_name', bench_crm_name(:k),
                                                 'npwp', bench_crm_npwp(:k), 'contact_phone', bench_crm_phone(:k))) b;
commit;
