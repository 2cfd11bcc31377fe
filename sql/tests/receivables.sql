-- pgTAP tests of V5 (receivables).
--
-- Run by tests/tests/suite/sql_scripts.rs with pg_prove, as a superuser, on
-- a fresh migrated database:
--   PGHOST=... PGDATABASE=<db> pg_prove sql/tests/receivables.sql
-- It seeds tenants, profiles and customers as the owner would, then acts as
-- users through `set local role bizos_authenticated` + request.jwt.claims,
-- like the BFF.
-- Everything happens in one transaction that is rolled back, so the script
-- can run any number of times; lib/tap.sql says how checks are written.
begin;
\ir lib/tap.sql
select plan(108);

-- ------------------------------------------------------------------ seed
do $$
declare
  ta uuid; tb uuid;
begin
  insert into tenants (slug, name) values ('ar-test-a', 'AR Test A') returning tenant_id into ta;
  insert into tenants (slug, name) values ('ar-test-b', 'AR Test B') returning tenant_id into tb;
  perform pg_temp.put('ta', ta); perform pg_temp.put('tb', tb);
  perform pg_temp.put(r, gen_random_uuid())
     from unnest(array['adm', 'fin', 'dir', 'sm', 'sp', 'sp2', 'ops', 'mm', 'finb', 'c1', 'c2', 'c3', 'cb']) r;
  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id) values
    (ta, pg_temp.id('adm'), 'adm@ar.test', 'Admin', 'super_admin', null, null),
    (ta, pg_temp.id('fin'), 'fin@ar.test', 'Fina', 'finance', null, null),
    (ta, pg_temp.id('dir'), 'dir@ar.test', 'Dira', 'director', null, null),
    (ta, pg_temp.id('sm'),  'sm@ar.test',  'Sam', 'sales_manager', null, null),
    (ta, pg_temp.id('sp'),  'sp@ar.test',  'Sari', 'salesperson', null, pg_temp.id('sm')),
    (ta, pg_temp.id('sp2'), 'sp2@ar.test', 'Budi', 'salesperson', null, null),
    (ta, pg_temp.id('ops'), 'ops@ar.test', 'Oki', 'ops', 'OPS', null),
    (ta, pg_temp.id('mm'),  'mm@ar.test',  'Maya', 'marketing_manager', null, null),
    (tb, pg_temp.id('finb'), 'finb@ar.test', 'Fin B', 'finance', null, null);
  insert into customers (tenant_id, customer_id, company_name, npwp) values
    (ta, pg_temp.id('c1'), 'PT Satu Jaya', '01.234.567.8-901.000'),
    (ta, pg_temp.id('c2'), 'CV Dua Makmur', null),
    (ta, pg_temp.id('c3'), 'PT Tiga Abadi', null),
    (tb, pg_temp.id('cb'), 'PT Bee', null);
  insert into prospects (tenant_id, customer_id, owner_user_id) values
    (ta, pg_temp.id('c1'), pg_temp.id('sp')),
    (ta, pg_temp.id('c2'), pg_temp.id('sp2'));
end $$;

-- ------------------------------------------------------------------ finance writes invoices
select pg_temp.act('fin');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_01() returns setof text language plpgsql as $$
declare
  r jsonb;
  n1 bigint; n2 bigint;
  before_count bigint;
begin
  -- Days are relative to today so the buckets do not drift:
  --   inv1 c1 issued -100 due -95  total 1,110,000  (>90)
  --   inv2 c1 issued  -45 due -40  total 2,220,000  (paid in full below)
  --   inv3 c2 issued  -20 due -10  total   500,000  (1-30)
  --   inv4 c2 issued  -80 due -70  total   333,000  (61-90)
  --   inv5 c3 issued    0 +30 days total   111,000  (current)
  --   inv6 c3 DRAFT
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c1'), 'issue_date', tenant_today() - 100,
         'due_date', tenant_today() - 95, 'subtotal', 1000000, 'tax', 110000, 'notes', 'Freight Jakarta-Surabaya'));
  return next ok(r->>'invoice_no' ~ ('^INV-' || extract(year from now())::int || '-\d{6}$'), 'invoice_no format: ' || r::text);
  return next ok((r->>'total')::numeric = 1110000, 'total = subtotal + tax');
  return next ok(r->>'status' = 'ISSUED', 'new invoices default to ISSUED');
  perform pg_temp.put('inv1', (r->>'invoice_id')::uuid);
  n1 := substring(r->>'invoice_no' from '(\d+)$')::bigint;
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c1'), 'issue_date', tenant_today() - 45,
         'due_date', tenant_today() - 40, 'subtotal', '2000000.00', 'tax', 220000));
  perform pg_temp.put('inv2', (r->>'invoice_id')::uuid);
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c2'), 'issue_date', tenant_today() - 20,
         'terms_days', 10, 'subtotal', 500000, 'tax', 0));
  return next ok((r->>'due_date')::date = tenant_today() - 10, 'terms_days sets the due date');
  perform pg_temp.put('inv3', (r->>'invoice_id')::uuid);
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c2'), 'issue_date', tenant_today() - 80,
         'due_date', tenant_today() - 70, 'subtotal', 300000, 'tax', ppn_amount(300000)));
  perform pg_temp.put('inv4', (r->>'invoice_id')::uuid);
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c3'), 'subtotal', 100000, 'tax', 11000));
  return next ok((r->>'due_date')::date = tenant_today() + 30, 'default terms are 30 days');
  perform pg_temp.put('inv5', (r->>'invoice_id')::uuid);

  -- Bad input: a clear error naming the field, nothing written, no number used.
  select count(*) into before_count from invoices;
  return next pg_temp.throws_field($q$select invoice_create('{"subtotal": 1, "tax": 0}')$q$, 'P0001', 'customer_id');
  return next pg_temp.throws_field($q$select invoice_create('{"customer_id": "nope", "subtotal": 1, "tax": 0}')$q$, 'P0001', 'customer_id');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0}')$q$, gen_random_uuid()), 'P0002', 'customer_id');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0}')$q$, pg_temp.id('cb')), 'P0002', 'customer_id');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "issue_date": "2026-03-10", "due_date": "2026-03-01", "subtotal": 1, "tax": 0}')$q$, pg_temp.id('c1')), 'P0001', 'due_date');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "due_date": "2026-02-30", "subtotal": 1, "tax": 0}')$q$, pg_temp.id('c1')), 'P0001', 'due_date');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 100, "tax": -1}')$q$, pg_temp.id('c1')), 'P0001', 'tax');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 100}')$q$, pg_temp.id('c1')), 'P0001', 'tax');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 0, "tax": 0}')$q$, pg_temp.id('c1')), 'P0001', 'subtotal');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1.005, "tax": 0}')$q$, pg_temp.id('c1')), 'P0001', 'subtotal');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": "lots", "tax": 0}')$q$, pg_temp.id('c1')), 'P0001', 'subtotal');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0, "currency": "rupiah"}')$q$, pg_temp.id('c1')), 'P0001', 'currency');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0, "status": "PAID"}')$q$, pg_temp.id('c1')), 'P0001', 'status');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0, "due_date": "2030-01-01", "terms_days": 5}')$q$, pg_temp.id('c1')), 'P0001', 'terms_days');
  return next pg_temp.throws_field(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0, "invoice_no": "INV-1"}')$q$, pg_temp.id('c1')), 'P0001', 'invoice_no');
  return next pg_temp.throws_field($q$select invoice_create('[1, 2]')$q$, 'P0001', 'payload');
  return next ok((select count(*) from invoices) = before_count, 'failed creates write nothing');

  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c3'), 'subtotal', 50000, 'tax', 0, 'status', 'DRAFT'));
  perform pg_temp.put('inv6', (r->>'invoice_id')::uuid);
  n2 := substring(r->>'invoice_no' from '(\d+)$')::bigint;
  return next ok(n2 = n1 + 5, format('gapless numbers: first %s, sixth %s', n1, n2));

  -- The number, the paid amount and the link are the database's.
  return next throws_ok(format($q$insert into invoices (tenant_id, invoice_no, customer_id, due_date, subtotal) values ('%s', 'INV-X', '%s', tenant_today(), 1)$q$, pg_temp.id('ta'), pg_temp.id('c1')), '42501');
  return next throws_ok(format($q$update invoices set amount_paid = total where invoice_id = '%s'$q$, pg_temp.id('inv1')), '42501');
  return next throws_ok(format($q$update invoices set collection_ticket_id = null where invoice_id = '%s'$q$, pg_temp.id('inv1')), '42501');
  -- Lifecycle: PAID only through payments; issued amounts are frozen.
  return next pg_temp.throws_field(format($q$update invoices set status = 'PAID' where invoice_id = '%s'$q$, pg_temp.id('inv1')), 'P0001', 'status');
  return next pg_temp.throws_field(format($q$update invoices set subtotal = 1 where invoice_id = '%s'$q$, pg_temp.id('inv1')), 'P0001', 'subtotal');
  return next throws_ok(format($q$update invoices set status = 'DRAFT' where invoice_id = '%s'$q$, pg_temp.id('inv1')), 'P0001');
  update invoices set subtotal = 60000, tax = 6600 where invoice_id = pg_temp.id('inv6');
  return next ok((select total from invoices where invoice_id = pg_temp.id('inv6')) = 66600, 'a draft can be edited');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_01();

-- ------------------------------------------------------------------ payments
reset role;
create function pg_temp.test_02() returns setof text language plpgsql as $$
declare
  r jsonb;
begin
  r := payment_record(jsonb_build_object('invoice_id', pg_temp.id('inv2'), 'amount', 1000000,
                                         'paid_on', tenant_today() - 1, 'reference', 'BCA-0001'));
  return next ok(r->>'payment_no' ~ '^PAY-\d{4}-\d{6}$', 'payment_no format: ' || r::text);
  return next ok((r->>'outstanding')::numeric = 1220000, 'outstanding drops by the payment: ' || r::text);
  return next ok(r->>'invoice_status' = 'ISSUED', 'a partly paid invoice stays ISSUED');
  -- A retry of the same transfer is recognised, not counted twice.
  r := payment_record(jsonb_build_object('invoice_id', pg_temp.id('inv2'), 'amount', 1000000,
                                         'paid_on', tenant_today() - 1, 'reference', 'BCA-0001'));
  return next ok((r->>'replayed')::boolean and (r->>'outstanding')::numeric = 1220000, 'retry is a replay: ' || r::text);
  return next ok((select count(*) from payments where invoice_id = pg_temp.id('inv2')) = 1, 'one payment after a retry');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 5, "reference": "BCA-0001"}')$q$, pg_temp.id('inv2')), '23505', 'reference');
  -- More than the outstanding amount is refused, through the RPC and directly.
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 1220000.01}')$q$, pg_temp.id('inv2')), 'P0001', 'amount');
  return next pg_temp.throws_field(format($q$insert into payments (tenant_id, invoice_id, amount) values ('%s', '%s', 1220001)$q$, pg_temp.id('ta'), pg_temp.id('inv2')), 'P0001', 'amount');
  -- Pay by invoice number; the rest makes it PAID.
  r := payment_record(jsonb_build_object('invoice_no', (select invoice_no from invoices where invoice_id = pg_temp.id('inv2')),
                                         'amount', 1220000, 'method', 'virtual_account'));
  return next ok((r->>'outstanding')::numeric = 0 and r->>'invoice_status' = 'PAID', 'full payment makes PAID: ' || r::text);
  return next ok((select paid_at is not null and amount_paid = total from invoices where invoice_id = pg_temp.id('inv2')), 'paid_at stamped');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 1}')$q$, pg_temp.id('inv2')), 'P0001', 'invoice_id');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 1}')$q$, pg_temp.id('inv6')), 'P0001', 'invoice_id');
  -- Field validation.
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s"}')$q$, pg_temp.id('inv1')), 'P0001', 'amount');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": -5}')$q$, pg_temp.id('inv1')), 'P0001', 'amount');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 5, "paid_on": "%s"}')$q$, pg_temp.id('inv1'), tenant_today() + 1), 'P0001', 'paid_on');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 5, "paid_on": "%s"}')$q$, pg_temp.id('inv1'), tenant_today() - 101), 'P0001', 'paid_on');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 5, "method": "barter"}')$q$, pg_temp.id('inv1')), 'P0001', 'method');
  return next pg_temp.throws_field($q$select payment_record('{"amount": 5}')$q$, 'P0001', 'invoice_id');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 5}')$q$, gen_random_uuid()), 'P0002', 'invoice_id');
  -- Payments are immutable for clients.
  return next throws_ok(format($q$update payments set amount = 1 where invoice_id = '%s'$q$, pg_temp.id('inv2')), '42501');
  return next throws_ok(format($q$delete from payments where invoice_id = '%s'$q$, pg_temp.id('inv2')), '42501');

  -- A partial payment of inv1 (older than the DSO window's start is fine).
  perform payment_record(jsonb_build_object('invoice_id', pg_temp.id('inv1'), 'amount', 110000, 'paid_on', tenant_today() - 1));
  -- Voiding: only without payments.
  return next pg_temp.throws_field(format($q$update invoices set status = 'VOID' where invoice_id = '%s'$q$, pg_temp.id('inv1')), 'P0001', 'status');
  -- Issue the draft: issued_at is stamped.
  update invoices set status = 'ISSUED' where invoice_id = pg_temp.id('inv6');
  return next ok((select issued_at is not null from invoices where invoice_id = pg_temp.id('inv6')), 'issued_at stamped');
  update invoices set status = 'VOID' where invoice_id = pg_temp.id('inv6');
  return next ok((select voided_at is not null from invoices where invoice_id = pg_temp.id('inv6')), 'voided_at stamped');
  return next throws_ok(format($q$update invoices set status = 'ISSUED' where invoice_id = '%s'$q$, pg_temp.id('inv6')), 'P0001');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_02();

-- ------------------------------------------------------------------ outstanding, overdue, aging, DSO (finance sees all)
reset role;
create function pg_temp.test_03() returns setof text language plpgsql as $$
declare
  o record;
  a record;
  d record;
begin
  select * into o from v_invoice_outstanding where invoice_id = pg_temp.id('inv1');
  return next ok(o.total = 1110000 and o.paid = 110000 and o.outstanding = 1000000, 'inv1 amounts');
  return next ok(o.days_past_due = 95 and o.is_overdue and o.aging_bucket = '>90', 'inv1 overdue 95 days');
  select * into o from v_invoice_outstanding where invoice_id = pg_temp.id('inv2');
  return next ok(o.outstanding = 0 and not o.is_overdue and o.days_past_due = 0 and o.aging_bucket is null, 'a paid invoice is not overdue');
  select * into o from v_invoice_outstanding where invoice_id = pg_temp.id('inv3');
  return next ok(o.days_past_due = 10 and o.is_overdue and o.aging_bucket = '1-30', 'inv3 1-30');
  select * into o from v_invoice_outstanding where invoice_id = pg_temp.id('inv4');
  return next ok(o.days_past_due = 70 and o.aging_bucket = '61-90' and o.outstanding = 333000, 'inv4 61-90 (PPN 11% effective)');
  select * into o from v_invoice_outstanding where invoice_id = pg_temp.id('inv5');
  return next ok(o.days_past_due = 0 and not o.is_overdue and o.aging_bucket = 'current', 'inv5 current');
  return next ok(not exists (select 1 from v_invoice_outstanding where invoice_id = pg_temp.id('inv6')), 'void/draft invoices are not receivables');

  select * into a from v_ar_aging where customer_id = pg_temp.id('c1');
  return next ok(a.current = 0 and a.d1_30 = 0 and a.d31_60 = 0 and a.d61_90 = 0 and a.d90_plus = 1000000
                        and a.outstanding = 1000000 and a.overdue = 1000000 and a.company_name = 'PT Satu Jaya', 'aging c1');
  select * into a from v_ar_aging where customer_id = pg_temp.id('c2');
  return next ok(a.d1_30 = 500000 and a.d61_90 = 333000 and a.outstanding = 833000 and a.open_invoices = 2, 'aging c2');
  select * into a from v_ar_aging where customer_id = pg_temp.id('c3');
  return next ok(a.current = 111000 and a.overdue = 0, 'aging c3');
  select * into a from v_ar_aging where is_total and currency = 'IDR';
  return next ok(a.current = 111000 and a.d1_30 = 500000 and a.d31_60 = 0 and a.d61_90 = 333000
                        and a.d90_plus = 1000000 and a.outstanding = 1944000 and a.overdue = 1833000, 'aging totals');
  return next ok(not exists (select 1 from v_ar_aging
                                     where current + d1_30 + d31_60 + d61_90 + d90_plus <> outstanding), 'buckets add up');

  -- DSO = AR at day end / credit sales of the last 30 days x 30.
  select * into d from v_dso_rolling_30 where day = tenant_today();
  -- AR today 1,944,000; sales in [-29, 0]: inv3 500,000 + inv5 111,000.
  return next ok(d.ar_outstanding = 1944000 and d.credit_sales_30d = 611000
                        and d.dso_days = round(1944000 / 611000.0 * 30, 1), 'DSO today: ' || row_to_json(d)::text);
  select * into d from v_dso_rolling_30 where day = tenant_today() - 10;
  -- AR on day -10: inv1 1,110,000 + inv2 2,220,000 + inv3 500,000 + inv4 333,000 (payments came later).
  return next ok(d.ar_outstanding = 4163000 and d.credit_sales_30d = 500000 and d.dso_days = 249.8, 'DSO day -10: ' || row_to_json(d)::text);
  select * into d from v_dso_rolling_30 where day = tenant_today() - 46;
  -- No invoice issued in [-75, -46]: DSO is undefined, not a number.
  return next ok(d.ar_outstanding = 1443000 and d.credit_sales_30d = 0 and d.dso_days is null, 'DSO without sales is NULL: ' || row_to_json(d)::text);
  return next ok((select count(*) from v_dso_rolling_30) = 90, 'one DSO row per day for 90 days');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_03();

-- ------------------------------------------------------------------ who sees what
reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_04() returns setof text language plpgsql as $$
declare
  n bigint;
begin
  -- Sari owns c1 only.
  return next ok((select array_agg(invoice_id order by issue_date) from invoices)
                        = array[pg_temp.id('inv1'), pg_temp.id('inv2')], 'salesperson sees invoices of own customers');
  return next ok((select count(*) from payments) = 3 and not exists (select 1 from payments p
                          join invoices i using (tenant_id, invoice_id) where i.customer_id <> pg_temp.id('c1')), 'salesperson sees payments of own customers');
  return next ok((select count(*) from v_ar_aging where not is_total) = 1
                        and (select outstanding from v_ar_aging where is_total) = 1000000, 'aging scoped to own customers');
  return next ok((select count(*) from v_invoice_outstanding) = 2, 'outstanding scoped');
  return next throws_ok(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0}')$q$, pg_temp.id('c1')), '42501');
  return next throws_ok(format($q$insert into invoices (tenant_id, customer_id, due_date, subtotal) values ('%s', '%s', tenant_today(), 1)$q$, pg_temp.id('ta'), pg_temp.id('c1')), '42501');
  return next throws_ok(format($q$select payment_record('{"invoice_id": "%s", "amount": 1}')$q$, pg_temp.id('inv1')), '42501');
  return next throws_ok(format($q$insert into payments (tenant_id, invoice_id, amount) values ('%s', '%s', 1)$q$, pg_temp.id('ta'), pg_temp.id('inv1')), '42501');
  update invoices set notes = 'x';
  get diagnostics n = row_count;
  return next ok(n = 0, 'salesperson updates no invoice');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_04();

reset role;
select pg_temp.act('sm');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_05() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from invoices) = 2
                        and not exists (select 1 from invoices where customer_id <> pg_temp.id('c1')), 'sales manager sees the team''s customers');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_05();

reset role;
select pg_temp.act('sp2');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_06() returns setof text language plpgsql as $$
begin
  return next ok((select array_agg(customer_id) from (select distinct customer_id from invoices) x) = array[pg_temp.id('c2')], 'other salesperson sees c2 only');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_06();

reset role;
select pg_temp.act('dir');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_07() returns setof text language plpgsql as $$
declare
  n bigint;
begin
  return next ok((select count(*) from invoices) = 6 and (select count(*) from payments) = 3, 'director reads everything');
  return next ok((select outstanding from v_ar_aging where is_total) = 1944000, 'director sees total AR');
  return next throws_ok(format($q$select invoice_create('{"customer_id": "%s", "subtotal": 1, "tax": 0}')$q$, pg_temp.id('c1')), '42501');
  return next throws_ok(format($q$insert into invoices (tenant_id, customer_id, due_date, subtotal) values ('%s', '%s', tenant_today(), 1)$q$, pg_temp.id('ta'), pg_temp.id('c1')), '42501');
  update invoices set notes = 'x';
  get diagnostics n = row_count;
  return next ok(n = 0, 'director updates nothing');
  return next throws_ok(format($q$select create_collection_ticket('%s')$q$, pg_temp.id('inv1')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_07();

reset role;
select pg_temp.act('ops');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_08() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from invoices) + (select count(*) from payments)
                        + (select count(*) from v_ar_aging) + (select count(*) from v_dso_rolling_30) = 0, 'ops see no AR');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_08();

reset role;
select pg_temp.act('mm');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_09() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from invoices) + (select count(*) from payments) = 0, 'marketing sees no AR');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_09();

reset role;
select pg_temp.act('finb');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_10() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from invoices) + (select count(*) from payments)
                        + (select count(*) from v_ar_aging) = 0, 'another tenant sees nothing');
  return next pg_temp.throws_field(format($q$select payment_record('{"invoice_id": "%s", "amount": 1}')$q$, pg_temp.id('inv1')), 'P0002', 'invoice_id');
  return next pg_temp.throws_field(format($q$select create_collection_ticket('%s')$q$, pg_temp.id('inv1')), 'P0002', 'invoice_id');
  return next throws_ok(format($q$insert into invoices (tenant_id, customer_id, due_date, subtotal) values ('%s', '%s', tenant_today(), 1)$q$, pg_temp.id('ta'), pg_temp.id('c1')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_10();

-- ------------------------------------------------------------------ collection tickets
reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_11() returns setof text language plpgsql as $$
declare
  r1 jsonb; r2 jsonb;
begin
  r1 := create_collection_ticket(pg_temp.id('inv1'));
  return next ok((r1->>'created')::boolean and r1->>'ticket_id' is not null, 'collection ticket created: ' || r1::text);
  r2 := create_collection_ticket(pg_temp.id('inv1'));
  return next ok(not (r2->>'created')::boolean and r2->>'ticket_id' = r1->>'ticket_id', 'second call returns the open ticket: ' || r2::text);
  perform pg_temp.put('tck1', (r1->>'ticket_id')::uuid);
  -- Not overdue, or not the caller's customer.
  return next pg_temp.throws_field(format($q$select create_collection_ticket('%s')$q$, pg_temp.id('inv2')), 'P0001', 'invoice_id');
  return next pg_temp.throws_field(format($q$select create_collection_ticket('%s')$q$, pg_temp.id('inv3')), 'P0002', 'invoice_id');
  return next pg_temp.throws_field($q$select create_collection_ticket(null)$q$, 'P0001', 'invoice_id');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_11();

reset role;
create function pg_temp.test_12() returns setof text language plpgsql as $$
declare
  t record;
begin
  select * into t from tickets where ticket_id = pg_temp.id('tck1');
  return next ok(t.ticket_type = 'general_request' and t.dept_target = 'FIN'
                        and t.related_customer_id = pg_temp.id('c1') and t.created_by = pg_temp.id('sp'), 'ticket fields');
  return next ok((select collection_ticket_id from invoices where invoice_id = pg_temp.id('inv1')) = pg_temp.id('tck1'), 'invoice links its ticket');
  return next ok(exists (select 1 from bizos.audit_log where table_name = 'public.invoices' and action = 'UPDATE'
                                   and actor = pg_temp.id('sp') and after ? 'collection_ticket_id'), 'the link is audited with the caller');
end $$;
select * from pg_temp.test_12();

select pg_temp.act('fin');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_13() returns setof text language plpgsql as $$
declare
  r jsonb;
begin
  return next pg_temp.throws_field(format($q$select create_collection_ticket('%s')$q$, pg_temp.id('inv5')), 'P0001', 'invoice_id');
  r := create_collection_ticket(pg_temp.id('inv3'));
  return next ok((r->>'created')::boolean, 'finance creates a collection ticket for any overdue invoice');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_13();

-- ------------------------------------------------------------------ audit
reset role;
create function pg_temp.test_14() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from bizos.audit_log where table_name = 'public.invoices' and action = 'INSERT'
                           and actor = pg_temp.id('fin')) = 6, 'invoice inserts audited with the actor');
  return next ok((select count(*) from bizos.audit_log where table_name = 'public.payments' and action = 'INSERT'
                           and actor = pg_temp.id('fin')) = 3, 'payment inserts audited');
  return next ok(exists (select 1 from bizos.audit_log where table_name = 'public.invoices' and action = 'UPDATE'
                                   and record_key ->> 'invoice_id' = pg_temp.id('inv2')::text
                                   and after ->> 'status' = 'PAID'), 'PAID transition audited');
  return next ok(not exists (select 1 from bizos.audit_verify(pg_temp.id('ta'))), 'audit chain intact');
end $$;
select * from pg_temp.test_14();

select * from finish();
rollback;
