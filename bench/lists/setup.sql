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

-- The other lists: :n / 5 each of prospects, leads, sales activities,
-- tickets and invoices, nearly all of them of user 11, a salesperson of
-- no team (the crowd), created by the marketing manager or finance. Of the
-- sales manager's team: salesperson 3 owns the prospects (and leads and
-- activities) of his 2 customers and created 1 ticket; salesperson 4 owns
-- 2,000 (of his 2,000 customers), 500 tickets relate to his leads and 500
-- invoices to his customers; 10 leads have no sales owner (the sales
-- manager reads them). Ops (department OPS) reads the 10 tickets sent
-- there, finance the 10 sent to FIN. User triggers off during the load,
-- as above (the numbers come from here).
insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
values (:'tenant', '00000000-0000-4000-8000-000000000011', 'ramai@bench.co.id', 'Ramai', 'salesperson', null);

begin;
alter table prospects disable trigger user;
alter table leads disable trigger user;
alter table sales_activities disable trigger user;
alter table tickets disable trigger user;
alter table invoices disable trigger user;

-- Every row at its customer's time, so that a team's rows are spread over
-- the tenant's three years as the customers are.
update prospects p set created_at = c.created_at, updated_at = c.created_at
  from customers c where c.tenant_id = p.tenant_id and c.customer_id = p.customer_id and p.tenant_id = :'tenant';

insert into prospects (tenant_id, customer_id, owner_user_id, created_by, created_at, updated_at)
select :'tenant', c.customer_id, '00000000-0000-4000-8000-000000000011', '00000000-0000-4000-8000-000000000001',
       c.created_at, c.created_at
  from (select customer_id, created_at, row_number() over (order by created_at) as rn
          from customers where tenant_id = :'tenant') c
 where c.rn % 5 = 1;

insert into leads (tenant_id, channel, status, company_name, customer_id, prospect_id, sales_owner_user_id,
                   assigned_at, created_by, created_at, updated_at)
select p.tenant_id, 'website', case when p.rn <= 10 then 'NEW' else 'ASSIGNED' end, 'PT Lead ' || p.rn,
       p.customer_id, p.prospect_id,
       case when p.rn > 10 then p.owner_user_id end, case when p.rn > 10 then p.created_at end,
       '00000000-0000-4000-8000-000000000001', p.created_at, p.created_at
  from (select *, row_number() over (order by prospect_id desc) as rn from prospects where tenant_id = :'tenant') p;

insert into sales_activities (tenant_id, owner_user_id, activity_type, source, occurred_at, summary,
                              customer_id, prospect_id, created_by, created_at, updated_at)
select p.tenant_id, p.owner_user_id, 'call', 'manual', p.created_at, 'Telepon',
       p.customer_id, p.prospect_id, p.owner_user_id, p.created_at, p.created_at
  from prospects p where p.tenant_id = :'tenant';

insert into tickets (tenant_id, ticket_no, ticket_type, subject, priority, dept_target, ticket_status,
                     related_lead_id, related_customer_id, created_by, created_at, updated_at)
select l.tenant_id, 'TCK-' || l.rn, 'general_request', 'Permintaan ' || l.rn, 'normal',
       case when l.rn % 997 = 0 and l.rn / 997 <= 10 then 'OPS'
            when l.rn % 991 = 0 and l.rn / 991 <= 10 then 'FIN' else 'SALES' end,
       'OPEN',
       case when l.sales_owner_user_id = '00000000-0000-4000-8000-000000000004' then l.lead_id end,
       case when l.sales_owner_user_id = '00000000-0000-4000-8000-000000000011' then l.customer_id end,
       '00000000-0000-4000-8000-000000000001', l.created_at, l.created_at
  from (select *, row_number() over (order by lead_id) as rn from leads where tenant_id = :'tenant') l
 where l.sales_owner_user_id is distinct from '00000000-0000-4000-8000-000000000004'
    or l.rn % 4 = 0;
insert into tickets (tenant_id, ticket_no, ticket_type, subject, priority, dept_target, ticket_status,
                     created_by, created_at, updated_at)
values (:'tenant', 'TCK-0', 'general_request', 'Milik Budi', 'normal', 'SALES', 'OPEN',
        '00000000-0000-4000-8000-000000000003', now(), now());

insert into invoices (tenant_id, invoice_no, customer_id, issue_date, due_date, subtotal, status,
                      created_by, created_at, updated_at)
select p.tenant_id, 'INV-' || p.rn, p.customer_id, p.created_at::date, p.created_at::date + 30, 1000000, 'ISSUED',
       '00000000-0000-4000-8000-000000000009', p.created_at, p.created_at
  from (select *, row_number() over (order by prospect_id) as rn from prospects where tenant_id = :'tenant') p
 where p.owner_user_id is distinct from '00000000-0000-4000-8000-000000000004' or p.rn % 4 = 0;

-- The tickets' and invoices' sales owners, which the user triggers keep
-- (V57).
select sales_owners_refresh(:'tenant');
alter table prospects enable trigger user;
alter table leads enable trigger user;
alter table sales_activities enable trigger user;
alter table tickets enable trigger user;
alter table invoices enable trigger user;
commit;

vacuum analyze prospects;
vacuum analyze leads;
vacuum analyze sales_activities;
vacuum analyze tickets;
vacuum analyze invoices;
analyze profiles;
