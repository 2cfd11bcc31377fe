-- The locks an import batch holds, and the time of the whole import:
-- stages :rows new customers without NPWP (so each row has three dedup
-- keys: e-mail, phone, company name) as an import of a marketing manager
-- of a new tenant, processes them in batches of :batch as the worker does
-- (process_import under the uploader's claims, one transaction each), and
-- counts this session's entries of pg_locks at the end of every batch,
-- before its commit (when the batch holds all it took). Run as a
-- superuser on a scratch database after `bizos migrate` (a copy of the
-- tests' template database will do):
--   psql -d <db> -v rows=50000 -v batch=2000 -f bench/import_locks.sql
\set ON_ERROR_STOP on
select gen_random_uuid() as tenant, gen_random_uuid() as uid \gset
insert into tenants (tenant_id, slug, name)
values (:'tenant', 'locks-' || left(:'tenant', 8), 'PT Bench Locks');
insert into profiles (tenant_id, user_id, email, full_name, app_role)
values (:'tenant', :'uid', 'rina@locks.example', 'Rina', 'marketing_manager');
insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
values (:'tenant', 'import-files', 'locks.csv', 'text/csv', 1, repeat('0', 64), :'uid')
returning object_id as object \gset
insert into imports (tenant_id, module, object_id, file_name, columns, total_rows, created_by)
values (:'tenant', 'customers', :'object', 'locks.csv', array['company_name', 'email', 'phone', 'city'],
        :rows, :'uid')
returning import_id as import \gset
insert into import_rows (tenant_id, import_id, row_no, data)
select :'tenant', :'import', i,
       jsonb_build_object('company_name', 'PT Grosir Nusantara ' || i,
                          'email', 'buyer' || i || '@grosir' || (i % 97) || '.co.id',
                          'phone', '0813-' || to_char(i / 10000, 'FM0000') || '-' || to_char(i % 10000, 'FM0000'),
                          'city', 'Bandung')
  from generate_series(1, :rows) i;
analyze import_rows;

create temp table batch_locks (batch integer, advisory integer, not_fastpath integer, total integer, secs numeric);
select clock_timestamp() as t0 \gset
\o /dev/null
select format($q$begin;
select set_config('role', 'bizos_authenticated', true), set_config('request.jwt.claims', %L, true);
select process_import(%L, %s) is not null;
reset role;
insert into pg_temp.batch_locks
select %s, count(*) filter (where locktype = 'advisory'), count(*) filter (where not fastpath), count(*),
       extract(epoch from clock_timestamp() - now())
  from pg_locks where pid = pg_backend_pid();
commit;$q$,
              jsonb_build_object('sub', :'uid', 'tenant_id', :'tenant', 'app_role', 'marketing_manager',
                                 'iat', extract(epoch from now())::bigint, 'exp', extract(epoch from now())::bigint + 86400),
              :'import', :batch, b)
  from generate_series(1, ceil(:rows::numeric / :batch)::int) b \gexec
\o

select round(extract(epoch from clock_timestamp() - :'t0'::timestamptz)::numeric, 1) as import_secs,
       (select ok_rows from imports where tenant_id = :'tenant' and import_id = :'import') as ok_rows,
       count(*) as batches, max(advisory) as max_advisory_locks, max(not_fastpath) as max_lock_table_entries,
       max(total) as max_pg_locks_rows, round(avg(secs), 2) as avg_batch_secs
  from pg_temp.batch_locks;
