-- Benchmark 3, reference: the upsert a gapless next_id runs, as plain SQL,
-- with the same formatting (<PREFIX>-<YYYY>-<NNNNNN>).
insert into bench_counter as c (tenant_id, kind, year, last_value)
values (bench_tenant(1), 'bench_inv', extract(year from now())::int, 1)
on conflict (tenant_id, kind, year) do update set last_value = c.last_value + 1
returning 'INV-' || c.year || '-' || lpad(c.last_value::text, 6, '0');
