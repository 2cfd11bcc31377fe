-- scripts/bench lists: the tenant of bench/crm_setup.sql (users 1-6 and
-- the data generators) with :n customers, most of which a restricted
-- caller may not read. Run as bizos_owner after crm_setup.sql.
--   psql -v tenant=<uuid> -v n=1000000 -f setup.sql
--
-- Users 7 (super admin), 8 (director), 9 (finance) and 10 (ops, department
-- OPS) join users 1 (marketing manager), 2 (sales manager) and 3-6 (his
-- salespeople). The marketing manager created every customer but one:
-- salesperson 3 created one and owns a prospect of two others (3 customers
-- visible); salesperson 4 owns prospects of 2,000 (2,000 visible); the
-- sales manager sees his team's (2,002); ops sees none.
--
-- For speed only, as bench/crm_load.sql: the customers' user triggers are
-- off during the load (created_at spread over three years comes from here),
-- the trigram index is built after it; then VACUUM ANALYZE.
\set ON_ERROR_STOP on
set maintenance_work_mem = '512MB';

insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
values
  (:'tenant', '00000000-0000-4000-8000-000000000007', 'admin@bench.co.id', 'Admin', 'super_admin', null),
  (:'tenant', '00000000-0000-4000-8000-000000000008', 'direktur@bench.co.id', 'Direktur', 'director', null),
  (:'tenant', '00000000-0000-4000-8000-000000000009', 'keuangan@bench.co.id', 'Keuangan', 'finance', null),
  (:'tenant', '00000000-0000-4000-8000-000000000010', 'ops@bench.co.id', 'Ops', 'ops', 'OPS');

begin;
alter table customers disable trigger user;
drop index customers_company_norm_trgm_idx;
insert into customers (tenant_id, customer_id, company_name, npwp, email, phone, address, city,
                       created_by, created_at, updated_at)
select :'tenant', gen_random_uuid(), bench_crm_name(i),
       case when i % 5 <> 0 then bench_crm_npwp(i) end,
       bench_crm_email(i), bench_crm_phone(i),
       'Jl. ' || bench_crm_first(i + 7) || ' No. ' || (1 + i % 250), bench_crm_city(i),
       case when i = 1 then '00000000-0000-4000-8000-000000000003'::uuid
            else '00000000-0000-4000-8000-000000000001'::uuid end,
       t, t
  from generate_series(1, :n::bigint) i,
       lateral (select now() - make_interval(secs => (i * 7907 % 94608000)::double precision)) s(t);
create index customers_company_norm_trgm_idx on customers using gin (tenant_id, company_norm extensions.gin_trgm_ops);
alter table customers enable trigger user;
commit;

-- Prospects: of customers 2 and 3 for salesperson 3, of 2,000 others (spread
-- over the tenant) for salesperson 4.
insert into prospects (tenant_id, customer_id, owner_user_id)
select :'tenant', c.customer_id,
       case when c.rn <= 2 then '00000000-0000-4000-8000-000000000003'::uuid
            else '00000000-0000-4000-8000-000000000004'::uuid end
  from (select customer_id, row_number() over (order by customer_id) as rn
          from customers
         where tenant_id = :'tenant' and created_by = '00000000-0000-4000-8000-000000000001') c
 where c.rn <= 2 or c.rn % (:n::bigint / 2000) = 0 and c.rn / (:n::bigint / 2000) <= 2000;

vacuum analyze customers;
vacuum analyze prospects;
analyze profiles;
