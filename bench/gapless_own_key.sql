-- Benchmark 3: one gapless number per transaction, each client its own tenant.
select bizos.next_id('bench_inv', bench_tenant(:client_id + 1));
