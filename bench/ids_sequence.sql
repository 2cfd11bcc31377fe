-- Benchmark 2: the same insert; lead_no from bizos.assign_business_id
-- (next_id in sequence mode, one sequence per tenant, kind and year).
\set t random(1, 8)
insert into bench_lead_numbered (tenant_id, note)
values (bench_tenant(:t::int), 'Lead dari formulir web');
