\set t random(1, :tenants)
insert into bench_plain (tenant_id, external_id, metric_code, occurred_at, day, properties)
select bench_tenant(:t), x ->> 'event_id', x ->> 'code', now(), current_date, coalesce(x -> 'properties', '{}')
  from jsonb_array_elements((select jsonb_agg(b.e || jsonb_build_object('event_id', gen_random_uuid()::text)) from bench_batch b)) x;
