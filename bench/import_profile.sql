-- Where the time of an import's batches goes. Stages :rows new
-- customer rows (the shape of bench/api/customers_csv.py: unique NPWP,
-- e-mail and phone) as an import of salesperson 3 of bench/crm_setup.sql,
-- then processes them in batches of :batch as the worker does
-- (process_import under the uploader's claims) and lists the statements,
-- nested ones included, by total time. Needs pg_stat_statements loaded
-- (shared_preload_libraries, pg_stat_statements.track = all); run as a
-- superuser after crm_setup.sql (and crm_load.sql, for existing customers):
--   psql -v tenant=<uuid> -v rows=20000 -v batch=5000 -f bench/import_profile.sql
\set ON_ERROR_STOP on
\set user '00000000-0000-4000-8000-000000000003'
create extension if not exists pg_stat_statements;

-- Numbers beyond any customer crm_load.sql makes, and beyond the rows of
-- earlier runs (up to 1,000,000 rows each; the NPWP's nine digits hold
-- 900 runs): every row is a new customer.
select 100000000 + 1000000 * count(*) as base from imports where tenant_id = :'tenant' \gset

insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
values (:'tenant', 'import-files', 'profile.csv', 'text/csv', 1, repeat('0', 64), :'user')
returning object_id as object \gset
insert into imports (tenant_id, module, object_id, file_name, columns, total_rows, created_by)
values (:'tenant', 'customers', :'object', 'profile.csv', array['company_name', 'npwp', 'email', 'phone', 'city'],
        :rows, :'user')
returning import_id as import \gset
insert into import_rows (tenant_id, import_id, row_no, data)
select :'tenant', :'import', i,
       jsonb_build_object(
         'company_name', 'PT Pelanggan ' || (i + :base) || ' Sejahtera',
         'npwp', to_char(i + :base, 'FM00"."000"."000"."0') || '-' || to_char((i * 7) % 1000, 'FM000') || '.000',
         'email', 'finance' || (i + :base) || '@pelanggan' || (i % 9973) || '.co.id',
         'phone', '+62 8' || to_char((i + :base) / 10000, 'FM00000') || ' ' || to_char(i % 10000, 'FM0000'),
         'city', (array['Jakarta', 'Surabaya', 'Bandung', 'Medan', 'Semarang', 'Makassar'])[i % 6 + 1])
  from generate_series(1, :rows) i;
analyze import_rows;
checkpoint;

select pg_stat_statements_reset();
\timing on
select format('begin; select set_config(''role'', ''bizos_authenticated'', true), set_config(''request.jwt.claims'', %L, true); select process_import(%L, %s)->>''status''; commit;',
              jsonb_build_object('sub', :'user', 'tenant_id', :'tenant', 'app_role', 'salesperson',
                                 'iat', extract(epoch from now())::bigint, 'exp', extract(epoch from now())::bigint + 86400),
              :'import', :batch)
  from generate_series(1, ceil(:rows::numeric / :batch)::int) \gexec
\timing off

select ok_rows, error_rows, status from imports where tenant_id = :'tenant' and import_id = :'import';
select round(total_exec_time::numeric, 1) as total_ms, calls, rows,
       round((total_exec_time / :rows * 1000)::numeric, 1) as us_per_row,
       regexp_replace(left(query, 140), '\s+', ' ', 'g') as statement
  from pg_stat_statements
 where toplevel = false or query like '%process_import%'
 order by total_exec_time desc
 limit 40;
