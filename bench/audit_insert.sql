-- Benchmark 1, insert workload; @TABLE@ is replaced by scripts/bench.
-- One insert per transaction into one of 8 tenants picked at random.
\set t random(1, 8)
\set a random(100, 100000000)
\set s random(1, 4)
\set o random(100, 1099)
insert into @TABLE@ (tenant_id, name, amount, due_at, attrs, status, owner_id)
values (bench_tenant(:t::int),
        'Pengadaan server rak ' || :a::text,
        :a::numeric / 100,
        now() + make_interval(days => :s::int),
        jsonb_build_object('source', 'web', 'score', :o::int,
                           'tags', jsonb_build_array('b2b', 'jakarta')),
        (array['open', 'qualified', 'won', 'lost'])[:s::int],
        bench_tenant(:o::int));
