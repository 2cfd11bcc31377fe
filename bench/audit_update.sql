-- Benchmark 1, update workload; @TABLE@ is replaced by scripts/bench.
-- Updates status and amount of a random prefilled row (id 1..50000 belongs
-- to tenant id % 8 + 1, see audit_setup.sql).
\set id random(1, 50000)
\set t :id % 8 + 1
\set a random(100, 100000000)
\set s random(1, 4)
update @TABLE@
   set status = (array['open', 'qualified', 'won', 'lost'])[:s::int],
       amount = :a::numeric / 100
 where tenant_id = bench_tenant(:t::int) and id = :id::bigint;
