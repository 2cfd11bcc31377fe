-- Benchmark 2, baseline: insert with gen_random_uuid() only.
\set t random(1, 8)
insert into bench_lead_plain (tenant_id, note)
values (bench_tenant(:t::int), 'Lead dari formulir web');
