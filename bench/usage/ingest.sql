\set t random(1, :tenants)
select (usage_ingest_for(bench_tenant(:t),
         (select jsonb_agg(b.e || jsonb_build_object('event_id', gen_random_uuid()::text)) from bench_batch b)) ->> 'accepted');
