-- Benchmark 3: one gapless number per transaction, every client on tenant 1.
select bizos.next_id('bench_inv', bench_tenant(1));
