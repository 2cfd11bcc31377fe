-- The RFM benchmark's data (bench/ai/run rfm): one tenant with 1,000,000
-- customers and 5,000,000 invoices over the three years up to 2026-11-18,
-- 90% of them PAID with their payment (settled 0-45 days after issue, not
-- after that day). Triggers off for the bulk rows (session_replication_role
-- = replica; derived columns written here as the triggers would), the tenant
-- with them on. Deterministic (setseed).
\set ON_ERROR_STOP on
select setseed(0.17);
insert into tenants (tenant_id, slug, name) values (:'tenant', 'rfm-big', 'RFM Big');

set session_replication_role = replica;
insert into customers (tenant_id, company_name)
select :'tenant', 'PT Pelanggan ' || g from generate_series(1, 1000000) g;

-- Skewed: customer k buys with weight ~ 1/k^0.5 (a few loyal, a long tail).
-- (The array of ids comes from a lateral aggregate, in memory: a stored
-- array would be read again for every row.)
insert into invoices (tenant_id, invoice_id, customer_id, issue_date, due_date, currency, subtotal, tax,
                      amount_paid, status, issued_at, paid_at, created_at, updated_at)
select :'tenant', gen_random_uuid(), ids.a[1 + floor(1000000 * power(random(), 2))::int],
       x.issue, x.issue + 30, 'IDR', x.subtotal, round(x.subtotal * 0.11),
       case when x.paid then x.subtotal + round(x.subtotal * 0.11) else 0 end,
       case when x.paid then 'PAID' else 'ISSUED' end,
       x.issue::timestamp, case when x.paid then x.issue::timestamp end, x.issue::timestamp, x.issue::timestamp
  from (select array_agg(customer_id order by customer_id) as a from customers where tenant_id = :'tenant') ids
 cross join lateral (select date '2026-11-18' - (random() * 1095)::int as issue,
                            round((1 + random() * 19) * 100000) as subtotal, random() < 0.9 as paid
                       from generate_series(1, 5000000)) x;
insert into payments (tenant_id, invoice_id, paid_on, amount, method, created_at, updated_at)
select i.tenant_id, i.invoice_id, least(i.issue_date + (random() * 45)::int, date '2026-11-18'), i.total,
       'bank_transfer', now(), now()
  from invoices i
 where i.tenant_id = :'tenant' and i.status = 'PAID';
set session_replication_role = origin;
vacuum analyze;
