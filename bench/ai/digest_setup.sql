-- The digest benchmark's data (bench/ai/run digest): one tenant with
-- 1,000,000 invoices (and a payment for each paid one), 1,000,000 tickets,
-- 200,000 leads, 50,000 customers and 20 salespeople with revenue targets,
-- over the three years up to the business day 2026-11-18; plus nine small
-- tenants, so the big one is not alone in the tables. Run as a superuser:
-- the bulk rows are written with triggers off (session_replication_role =
-- replica; their derived columns are written here as the triggers would),
-- the tenants and users with them on (their defaults: permissions, KPI
-- catalogue, SLA policies, schedules). Deterministic (setseed).
\set ON_ERROR_STOP on
select setseed(0.42);

insert into tenants (tenant_id, slug, name)
select case when g = 0 then :'tenant'::uuid else gen_random_uuid() end,
       case when g = 0 then 'big' else 'small-' || g end,
       case when g = 0 then 'Big Tenant' else 'Small ' || g end
  from generate_series(0, 9) g;
insert into profiles (tenant_id, user_id, email, full_name, app_role)
select t.tenant_id, gen_random_uuid(), 'u' || g || '-' || t.slug || '@bench.test', 'User ' || g,
       case when g = 0 then 'director' else 'salesperson' end
  from tenants t cross join generate_series(0, 20) g;

set session_replication_role = replica;

-- customers and their prospects (leads need one)
insert into customers (tenant_id, company_name)
select t.tenant_id, 'PT Pelanggan ' || g
  from tenants t
 cross join lateral generate_series(1, case when t.slug = 'big' then 50000 else 500 end) g;
insert into prospects (tenant_id, customer_id, owner_user_id, stage)
select c.tenant_id, c.customer_id,
       (select p.user_id from profiles p
         where p.tenant_id = c.tenant_id and p.app_role = 'salesperson'
         order by p.email offset (abs(hashtext(c.customer_id::text)) % 20) limit 1),
       'NEW'
  from customers c;

-- invoices: issue dates uniform over three years up to the day; older than
-- 60 days mostly paid, the rest half paid
insert into invoices (tenant_id, invoice_id, customer_id, issue_date, due_date, currency, subtotal, tax,
                      amount_paid, status, issued_at, paid_at, voided_at, created_at, updated_at)
select x.tenant_id, gen_random_uuid(), x.ids[1 + abs(hashtext(x.g::text)) % cardinality(x.ids)],
       x.issue, x.issue + 30, 'IDR', x.subtotal, round(x.subtotal * 0.11),
       case when x.status = 'PAID' then x.subtotal + round(x.subtotal * 0.11) else 0 end,
       x.status, x.issue::timestamp, case when x.status = 'PAID' then (x.issue + 20)::timestamp end,
       case when x.status = 'VOID' then (x.issue + 2)::timestamp end, x.issue::timestamp, x.issue::timestamp
  from (select y.*,
               case when y.issue < date '2026-11-18' - 60
                    then case when y.r < 0.95 then 'PAID' when y.r < 0.98 then 'ISSUED' else 'VOID' end
                    else case when y.r < 0.5 then 'PAID' else 'ISSUED' end end as status
          from (select t.tenant_id, ca.ids, g, date '2026-11-18' - (random() * 1095)::int as issue,
                       round((1 + random() * 49) * 1000000) as subtotal, random() as r
                  from tenants t
                 cross join lateral (select array_agg(c.customer_id order by c.customer_id) as ids
                                       from customers c where c.tenant_id = t.tenant_id) ca
                 cross join lateral generate_series(1, case when t.slug = 'big' then 1000000 else 5000 end) g) y) x;
insert into payments (tenant_id, invoice_id, paid_on, amount, method, created_at, updated_at)
select i.tenant_id, i.invoice_id, least(i.issue_date + (random() * 45)::int, date '2026-11-18'), i.total,
       'bank_transfer', now(), now()
  from invoices i
 where i.status = 'PAID';

-- leads over three years
insert into leads (tenant_id, channel, status, company_name, customer_id, prospect_id, created_at, updated_at)
select x.tenant_id, 'website',
       case when x.r < 0.2 then 'CONVERTED' when x.r < 0.5 then 'CONTACTED' else 'NEW' end,
       'Lead', x.cs[x.k], x.ps[x.k], x.at, x.at
  from (select t.tenant_id, pa.cs, pa.ps, 1 + g % cardinality(pa.cs) as k, random() as r,
               (date '2026-11-18' + 1)::timestamp at time zone 'Asia/Jakarta' - random() * interval '1095 days' as at
          from tenants t
         cross join lateral (select array_agg(p.customer_id order by p.prospect_id) as cs,
                                    array_agg(p.prospect_id order by p.prospect_id) as ps
                               from prospects p where p.tenant_id = t.tenant_id) pa
         cross join lateral generate_series(1, case when t.slug = 'big' then 200000 else 1000 end) g) x;

-- tickets: 98% finished within days, the rest open (created in the last 60 days)
insert into tickets (tenant_id, ticket_no, ticket_type, subject, priority, dept_target, ticket_status,
                     first_response_at, resolved_at, closed_at, created_at, updated_at)
select x.tenant_id, 'TCK-B-' || x.g, 'complaint', 'Ticket ' || x.g,
       (array['urgent', 'high', 'normal', 'low'])[1 + (x.g % 4)], 'OPS',
       case when x.open then 'OPEN' else 'CLOSED' end,
       case when x.open and x.r3 < 0.5 then null else x.at + x.r3 * interval '8 hours' end,
       case when x.open then null else x.at + interval '8 hours' + x.r3 * interval '3 days' end,
       case when x.open then null else x.at + interval '4 days' end,
       x.at, x.at
  from (select y.tenant_id, y.g, y.r < 0.02 as open, y.r3,
               (date '2026-11-18' + 1)::timestamp at time zone 'Asia/Jakarta'
                 - case when y.r < 0.02 then y.r2 * interval '60 days' else y.r2 * interval '1095 days' end as at
          from (select t.tenant_id, g, random() as r, random() as r2, random() as r3
                  from tenants t
                 cross join lateral generate_series(1, case when t.slug = 'big' then 1000000 else 5000 end) g) y) x;

set session_replication_role = origin;

-- revenue targets of the month for every salesperson
insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value)
select p.tenant_id, 'revenue', p.user_id, daterange('2026-11-01', '2026-12-01'), 25000000000
  from profiles p where p.app_role = 'salesperson';

vacuum analyze;
