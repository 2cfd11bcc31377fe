-- pgTAP tests of V4__ticketing.sql (TCK-1..3, C4, C5, C6, C7).
--
-- Run by tests/tests/suite/sql_scripts.rs with pg_prove, as a superuser (or
-- any role that may SET ROLE bizos_authenticated), on a fresh migrated
-- database:
--   PGHOST=... PGDATABASE=<db> pg_prove sql/tests/ticketing.sql
-- Everything happens in one transaction that is rolled back, so the script
-- can run any number of times; lib/tap.sql says how checks are written.
begin;
\ir lib/tap.sql
select plan(207);

-- ---------------------------------------------------------------- helpers
create temp table u (name text primary key, user_id uuid not null, tenant_id uuid not null, app_role text not null);
create temp table tk (name text primary key, ticket_id uuid not null);
grant select on u to public;
grant select, insert, update on tk to public;

-- Act as a user: claims for the rest of the transaction (role set apart).
create function pg_temp.login(who text) returns void language plpgsql as $$
declare r record;
begin
  select * into r from pg_temp.u where name = who;
  if not found then raise exception 'test bug: no user %', who; end if;
  perform set_config('request.jwt.claims',
    json_build_object('sub', r.user_id, 'tenant_id', r.tenant_id, 'app_role', r.app_role)::text, true);
end $$;

create function pg_temp.uid(who text) returns uuid language sql stable as
  $$ select user_id from pg_temp.u where name = who $$;
create function pg_temp.tid(what text) returns uuid language sql stable as
  $$ select ticket_id from pg_temp.tk where name = what $$;

-- Wall-clock instant of a local time in Jakarta.
create function pg_temp.wib(ts text) returns timestamptz language sql immutable as
  $$ select ts::timestamp at time zone 'Asia/Jakarta' $$;

-- ---------------------------------------------------------------- fixtures
insert into u values
  ('admin',   'a0000000-0000-4000-8000-000000000001', 'a1111111-1111-4111-8111-111111111111', 'super_admin'),
  ('dir',     'a0000000-0000-4000-8000-000000000002', 'a1111111-1111-4111-8111-111111111111', 'director'),
  ('ops_jkt', 'a0000000-0000-4000-8000-000000000003', 'a1111111-1111-4111-8111-111111111111', 'ops'),
  ('ops_sby', 'a0000000-0000-4000-8000-000000000004', 'a1111111-1111-4111-8111-111111111111', 'ops'),
  ('fin',     'a0000000-0000-4000-8000-000000000005', 'a1111111-1111-4111-8111-111111111111', 'finance'),
  ('mkt',     'a0000000-0000-4000-8000-000000000006', 'a1111111-1111-4111-8111-111111111111', 'marketing_manager'),
  ('sm',      'a0000000-0000-4000-8000-000000000007', 'a1111111-1111-4111-8111-111111111111', 'sales_manager'),
  ('sp',      'a0000000-0000-4000-8000-000000000008', 'a1111111-1111-4111-8111-111111111111', 'salesperson'),
  ('sp2',     'a0000000-0000-4000-8000-000000000009', 'a1111111-1111-4111-8111-111111111111', 'salesperson'),
  ('ops_jkt2','a0000000-0000-4000-8000-00000000000a', 'a1111111-1111-4111-8111-111111111111', 'ops'),
  ('admin_b', 'b0000000-0000-4000-8000-000000000001', 'b2222222-2222-4222-8222-222222222222', 'super_admin'),
  ('ops_b',   'b0000000-0000-4000-8000-000000000002', 'b2222222-2222-4222-8222-222222222222', 'ops');

insert into tenants (tenant_id, slug, name) values
  ('a1111111-1111-4111-8111-111111111111', 'tck-test-a', 'Tenant A'),
  ('b2222222-2222-4222-8222-222222222222', 'tck-test-b', 'Tenant B');

insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id)
select u.tenant_id, u.user_id, u.name || '@example.test', 'User ' || u.name, u.app_role,
       case u.name when 'ops_jkt' then 'OPS-JKT' when 'ops_jkt2' then 'OPS-JKT' when 'ops_sby' then 'OPS-SBY'
                   when 'ops_b' then 'OPS-JKT' when 'fin' then 'FIN' end,
       null
  from u order by u.name = 'sm' desc;
update profiles set manager_user_id = pg_temp.uid('sm') where user_id = pg_temp.uid('sp');

-- CRM: customer C1 owned (prospect) by sp with lead L1; C2 by sp2 with L2.
insert into customers (tenant_id, customer_id, company_name, email, phone) values
  ('a1111111-1111-4111-8111-111111111111', 'c0000000-0000-4000-8000-000000000001', 'PT Sinar Jaya Logistik', 'ops@sinarjaya.co.id', '0812-3456-7890'),
  ('a1111111-1111-4111-8111-111111111111', 'c0000000-0000-4000-8000-000000000002', 'CV Maju Bersama', null, null);
insert into prospects (tenant_id, prospect_id, customer_id, owner_user_id) values
  ('a1111111-1111-4111-8111-111111111111', 'd0000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', pg_temp.uid('sp')),
  ('a1111111-1111-4111-8111-111111111111', 'd0000000-0000-4000-8000-000000000002', 'c0000000-0000-4000-8000-000000000002', pg_temp.uid('sp2'));
insert into leads (tenant_id, lead_id, channel, company_name, customer_id, prospect_id, sales_owner_user_id, assigned_at) values
  ('a1111111-1111-4111-8111-111111111111', 'e0000000-0000-4000-8000-000000000001', 'website', 'PT Sinar Jaya Logistik',
   'c0000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000001', pg_temp.uid('sp'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'e0000000-0000-4000-8000-000000000002', 'referral', 'CV Maju Bersama',
   'c0000000-0000-4000-8000-000000000002', 'd0000000-0000-4000-8000-000000000002', pg_temp.uid('sp2'), now());

-- ---------------------------------------------------------------- setup checks
create function pg_temp.test_01() returns setof text language plpgsql as $$
begin
  return next is((select count(*) from sla_policies where tenant_id = 'a1111111-1111-4111-8111-111111111111'), 16::bigint,
                     'a new tenant starts with 16 SLA policies');
  return next is((select prefix from bizos.id_kinds where kind = 'ticket'), 'TCK', 'ticket id kind');
  return next ok(exists (select 1 from bizos.transitions where entity = 'ticket' and from_status = 'RESOLVED' and to_status = 'IN_PROGRESS'),
                     'RESOLVED → IN_PROGRESS (reopen) is declared');
  return next is(extract(isodow from date '2025-03-03')::int, 1, '2025-03-03 is a Monday');
end $$;
select * from pg_temp.test_01();

-- ---------------------------------------------------------------- business time
create function pg_temp.test_02() returns setof text language plpgsql as $$
declare
  a constant uuid := 'a1111111-1111-4111-8111-111111111111';
  b constant uuid := 'b2222222-2222-4222-8222-222222222222';
begin
  -- Tenant A: no hours configured → Mon-Fri 08:00-17:00 Asia/Jakarta.
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 09:00'), pg_temp.wib('2025-03-03 10:30')), 90::numeric, 'within one day');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 07:00'), pg_temp.wib('2025-03-03 08:30')), 30::numeric, 'start before opening');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 16:30'), pg_temp.wib('2025-03-03 20:00')), 30::numeric, 'end after closing');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-07 16:00'), pg_temp.wib('2025-03-10 09:00')), 120::numeric, 'over a weekend');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-08 10:00'), pg_temp.wib('2025-03-10 08:30')), 30::numeric, 'start on a Saturday');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-08 10:00'), pg_temp.wib('2025-03-09 18:00')), 0::numeric, 'a weekend has none');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 08:00'), pg_temp.wib('2025-03-10 08:00')), 2700::numeric, 'a week is 5 x 540');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 10:30'), pg_temp.wib('2025-03-03 09:00')), -90::numeric, 'reversed is negative');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 09:00'), pg_temp.wib('2025-03-03 09:00')), 0::numeric, 'empty span');
  return next is(business_minutes_between(a, '2025-03-03 01:00+00', '2025-03-03 02:00+00'), 60::numeric, 'UTC input, 08:00-09:00 WIB');
  return next is(business_minutes_between(a, '2025-03-03 00:00+00', '2025-03-03 01:00+00'), 0::numeric, '07:00-08:00 WIB is before opening');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-03 09:00'), pg_temp.wib('2025-03-03 09:00:30')), 0.5::numeric, 'seconds count');
  return next is(business_minutes_between(a, null, now()), null::numeric, 'NULL in, NULL out');

  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 09:00'), 0), pg_temp.wib('2025-03-03 09:00'), 'zero minutes is the start');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-08 12:00'), 0), pg_temp.wib('2025-03-08 12:00'), 'zero minutes outside hours is the start');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 09:00'), 60), pg_temp.wib('2025-03-03 10:00'), 'one hour');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 16:00'), 60), pg_temp.wib('2025-03-03 17:00'), 'ends exactly at closing');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 16:00'), 61), pg_temp.wib('2025-03-04 08:01'), 'one minute into the next day');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-07 16:30'), 60), pg_temp.wib('2025-03-10 08:30'), 'over a weekend');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-08 12:00'), 30), pg_temp.wib('2025-03-10 08:30'), 'start on a Saturday');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 06:00'), 30), pg_temp.wib('2025-03-03 08:30'), 'start before opening');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-03 09:00'), 1620), pg_temp.wib('2025-03-06 09:00'), 'three business days');
  return next pg_temp.throws_field($q$select add_business_minutes('a1111111-1111-4111-8111-111111111111', now(), -1)$q$, 'P0001', 'minutes');

  -- A holiday on Tuesday 2025-03-11.
  insert into holidays (tenant_id, holiday_date, name) values (a, '2025-03-11', 'Hari Raya Nyepi');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-10 16:00'), 120), pg_temp.wib('2025-03-12 09:00'), 'spans a holiday');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-10 16:00'), pg_temp.wib('2025-03-12 09:00')), 120::numeric, 'between spans a holiday');
  return next is(business_minutes_between(a, pg_temp.wib('2025-03-11 09:00'), pg_temp.wib('2025-03-11 15:00')), 0::numeric, 'a holiday has none');
  return next is(add_business_minutes(a, pg_temp.wib('2025-03-11 10:00'), 15), pg_temp.wib('2025-03-12 08:15'), 'start on a holiday');
  return next pg_temp.throws_field($q$insert into holidays (tenant_id, holiday_date, name) values ('a1111111-1111-4111-8111-111111111111', '2025-03-11', 'again')$q$,
                        '23505', null, 'holidays_holiday_date_key');

  -- Tenant B: Asia/Makassar (UTC+8), hours with a lunch break, Saturday morning.
  insert into business_calendars (tenant_id, time_zone) values (b, 'Asia/Makassar');
  insert into business_hours (tenant_id, weekday, opens_at, closes_at)
  select b, d, t.o, t.c from generate_series(1, 5) d,
         (values (time '08:00', time '12:00'), (time '13:00', time '17:00')) t (o, c)
  union all select b, 6, '08:00', '12:00';
  return next is(business_minutes_between(b, '2025-03-03 00:00+00', '2025-03-03 01:00+00'), 60::numeric, '08:00-09:00 WITA');
  return next is(business_minutes_between(b, '2025-03-03 03:00+00', '2025-03-03 06:00+00'), 120::numeric, '11:00-14:00 WITA minus lunch');
  return next is(add_business_minutes(b, '2025-03-03 03:30+00', 60), '2025-03-03 05:30+00'::timestamptz, 'the clock stops over lunch');
  return next is(add_business_minutes(b, '2025-03-07 08:30+00', 60), '2025-03-08 00:30+00'::timestamptz, 'Friday 16:30 WITA + 60 → Saturday 08:30');
  return next is(add_business_minutes(b, '2025-03-08 03:30+00', 60), '2025-03-10 00:30+00'::timestamptz, 'Saturday 11:30 WITA + 60 → Monday 08:30');
  return next pg_temp.throws_field($q$insert into business_hours (tenant_id, weekday, opens_at, closes_at) values ('b2222222-2222-4222-8222-222222222222', 1, '11:00', '14:00')$q$,
                        '23P01', null, 'business_hours_weekday_excl');
  return next pg_temp.throws_field($q$insert into business_hours (tenant_id, weekday, opens_at, closes_at) values ('b2222222-2222-4222-8222-222222222222', 7, '14:00', '11:00')$q$,
                        '23514', null, 'business_hours_closes_at_check');
  return next pg_temp.throws_field($q$update business_calendars set time_zone = 'Mars/Olympus' where tenant_id = 'b2222222-2222-4222-8222-222222222222'$q$,
                        'P0001', 'time_zone');
  -- A day that runs to midnight.
  insert into business_hours (tenant_id, weekday, opens_at, closes_at) values (b, 7, '20:00', '24:00');
  return next is(business_minutes_between(b, '2025-03-09 11:00+00', '2025-03-09 17:00+00'), 240::numeric, 'Sunday 20:00-24:00 WITA');
end $$;
select * from pg_temp.test_02();

-- Calendars are readable by members, written by super admins, and not
-- across tenants.
set local role bizos_authenticated;
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_03() returns setof text language plpgsql as $$
begin
  return next is(business_minutes_between('a1111111-1111-4111-8111-111111111111', pg_temp.wib('2025-03-03 09:00'), pg_temp.wib('2025-03-03 10:00')),
                     60::numeric, 'members use their calendar');
  return next throws_ok($q$select business_minutes_between('b2222222-2222-4222-8222-222222222222', now(), now())$q$, '42501');
  return next throws_ok($q$insert into holidays (tenant_id, holiday_date, name) values ('a1111111-1111-4111-8111-111111111111', '2025-12-25', 'Natal')$q$, '42501');
  update sla_policies set response_minutes = 1;
  return next is((select count(*) from sla_policies where response_minutes = 1), 0::bigint, 'ops cannot edit SLA policies');
  return next is((select count(*) from holidays), 1::bigint, 'members read their holidays only');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_03();
select pg_temp.login('admin');
reset role;
create function pg_temp.test_04() returns setof text language plpgsql as $$
begin
  insert into holidays (tenant_id, holiday_date, name) values ('a1111111-1111-4111-8111-111111111111', '2025-12-25', 'Natal');
  update sla_policies set response_minutes = 240 where ticket_type = 'complaint' and priority = 'normal';
  return next is((select count(*) from sla_policies), 16::bigint, 'super admin sees own tenant policies');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_04();
reset role;

-- ---------------------------------------------------------------- ticket_create
set local role bizos_authenticated;
select pg_temp.login('sp');
reset role;
create function pg_temp.test_05() returns setof text language plpgsql as $$
declare
  r jsonb;
  t tickets;
  n bigint := (select count(*) from tickets);
begin
  -- An RFQ from a lead: customer and snapshots come from the lead's customer.
  r := ticket_create(jsonb_build_object(
         'ticket_type', 'inquiry_tariff', 'subject', '  Tarif JKT-SUB 20ft  ', 'dept_target', 'ops-jkt',
         'related_lead_id', 'e0000000-0000-4000-8000-000000000001',
         'origin', 'Jakarta', 'destination', 'Surabaya', 'commodity', 'Garmen', 'weight_kg', 1200.5, 'volume_cbm', '3.2',
         'contact_name', 'Budi Santoso', 'contact_phone', '0811 222 3333'));
  insert into pg_temp.tk values ('rfq', (r ->> 'ticket_id')::uuid);
  return next ok(r ->> 'ticket_no' ~ ('^TCK-' || extract(year from now()) || '-[0-9]{6}$'), 'ticket_no is TCK-<year>-<n>: ' || (r ->> 'ticket_no'));
  return next is(r ->> 'status', 'OPEN', 'an inquiry starts OPEN');
  select * into t from tickets where ticket_id = pg_temp.tid('rfq');
  return next is(t.inquiry_status, 'OPEN', 'inquiry_status OPEN');
  return next is(t.ticket_status, null::text, 'ticket_status stays NULL for inquiries');
  return next is(t.need_customer_masking, true, 'RFQs are masked for ops by default');
  return next is(t.related_customer_id, 'c0000000-0000-4000-8000-000000000001'::uuid, 'customer from the lead');
  return next is(t.company_name, 'PT Sinar Jaya Logistik', 'company snapshot');
  return next is(t.contact_email, 'ops@sinarjaya.co.id', 'e-mail snapshot from the customer');
  return next is(t.contact_phone, '+628112223333', 'phone normalised');
  return next is(t.subject, 'Tarif JKT-SUB 20ft', 'subject trimmed');
  return next is(t.dept_target, 'OPS-JKT', 'dept_target upper-cased');
  return next is(t.weight_kg, 1200.5::numeric, 'weight');
  return next is(t.created_by, pg_temp.uid('sp'), 'creator');
  return next is(t.first_response_at, null::timestamptz, 'no response yet');

  r := ticket_create('{"ticket_type": "complaint", "subject": "Barang rusak", "dept_target": "OPS-JKT", "priority": "high",
                       "description": "Karton penyok", "related_customer_id": "c0000000-0000-4000-8000-000000000001"}');
  insert into pg_temp.tk values ('complaint', (r ->> 'ticket_id')::uuid);
  select * into t from tickets where ticket_id = pg_temp.tid('complaint');
  return next is(t.ticket_status, 'OPEN', 'a complaint starts OPEN');
  return next is(t.inquiry_status, null::text, 'inquiry_status stays NULL for complaints');
  return next is(t.need_customer_masking, false, 'non-RFQs are not masked by default');
  return next is(t.company_name, null::text, 'no RFQ snapshot on complaints');

  -- Every field is checked and named; nothing is written.
  return next pg_temp.throws_field($q$select ticket_create('[]')$q$, 'P0001', 'payload');
  return next pg_temp.throws_field($q$select ticket_create('{"subject": "x", "dept_target": "OPS-JKT"}')$q$, 'P0001', 'ticket_type', 'required');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "question", "subject": "x", "dept_target": "OPS-JKT"}')$q$, 'P0001', 'ticket_type', 'one of');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "  ", "dept_target": "OPS-JKT"}')$q$, 'P0001', 'subject', 'required');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": 42, "dept_target": "OPS-JKT"}')$q$, 'P0001', 'subject', 'string');
  return next pg_temp.throws_field(format($q$select ticket_create('{"ticket_type": "complaint", "subject": "%s", "dept_target": "OPS-JKT"}')$q$, repeat('x', 201)), 'P0001', 'subject', '200');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "priority": "asap"}')$q$, 'P0001', 'priority');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x"}')$q$, 'P0001', 'dept_target', 'required');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-XYZ"}')$q$, 'P0001', 'dept_target', 'no department');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "ops jkt"}')$q$, 'P0001', 'dept_target');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "ticket_no": "TCK-1"}')$q$, 'P0001', 'ticket_no', 'unknown field');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "first_response_at": "2025-01-01"}')$q$, 'P0001', 'first_response_at', 'unknown field');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "origin": "Jakarta"}')$q$, 'P0001', 'origin', 'inquiry_tariff');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "need_customer_masking": "yes"}')$q$, 'P0001', 'need_customer_masking');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "related_lead_id": "nope"}')$q$, 'P0001', 'related_lead_id', 'UUID');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "related_lead_id": "e0000000-0000-4000-8000-000000000099"}')$q$, 'P0001', 'related_lead_id', 'no such lead');
  -- sp2's lead is invisible to sp.
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "related_lead_id": "e0000000-0000-4000-8000-000000000002"}')$q$, 'P0001', 'related_lead_id', 'no such lead');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "related_lead_id": "e0000000-0000-4000-8000-000000000001", "related_customer_id": "c0000000-0000-4000-8000-000000000002"}')$q$, 'P0001', 'related_customer_id');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS-JKT", "destination": "Medan"}')$q$, 'P0001', 'origin', 'required');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS-JKT", "origin": "A", "destination": "B", "weight_kg": -5}')$q$, 'P0001', 'weight_kg');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS-JKT", "origin": "A", "destination": "B", "volume_cbm": "lots"}')$q$, 'P0001', 'volume_cbm');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS-JKT", "origin": "A", "destination": "B", "contact_email": "budi@"}')$q$, 'P0001', 'contact_email');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS-JKT", "origin": "A", "destination": "B", "contact_phone": "12"}')$q$, 'P0001', 'contact_phone');
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "assignee_user_id": "a0000000-0000-4000-8000-000000000003"}')$q$, '42501', 'assignee_user_id');
  return next is((select count(*) from tickets), n + 2, 'failed creates wrote nothing');

  -- Direct writes: numbers and stamps belong to the database.
  return next throws_ok(format($q$insert into tickets (tenant_id, ticket_type, subject, dept_target, created_by, ticket_no)
                                  values ('a1111111-1111-4111-8111-111111111111', 'complaint', 'x', 'OPS-JKT', %L, 'TCK-X')$q$, pg_temp.uid('sp')), '42501');
  return next throws_ok(format($q$insert into tickets (tenant_id, ticket_type, subject, dept_target, created_by, first_response_at)
                                  values ('a1111111-1111-4111-8111-111111111111', 'complaint', 'x', 'OPS-JKT', %L, now())$q$, pg_temp.uid('sp')), '42501');
  return next throws_ok(format($q$insert into tickets (tenant_id, ticket_type, subject, dept_target, created_by)
                                  values ('a1111111-1111-4111-8111-111111111111', 'complaint', 'x', 'OPS-JKT', %L)$q$, pg_temp.uid('sp2')), '42501');
  return next throws_ok($q$insert into tickets (tenant_id, ticket_type, subject, dept_target, created_by)
                           values ('b2222222-2222-4222-8222-222222222222', 'complaint', 'x', 'OPS-JKT', bizos.uid())$q$, '42501');
  -- Salespeople cannot work tickets.
  return next throws_ok(format($q$select ticket_transition(%L, 'IN_PROGRESS')$q$, pg_temp.tid('complaint')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_05();

select pg_temp.login('dir');
reset role;
create function pg_temp.test_06() returns setof text language plpgsql as $$
begin
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT"}')$q$, '42501', null, 'ticket.create');
  update tickets set priority = 'low';
  return next is((select count(*) from tickets where priority = 'low'), 0::bigint, 'directors write nothing');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_06();

select pg_temp.login('fin');
do $$
declare r jsonb;
begin
  r := ticket_create('{"ticket_type": "general_request", "subject": "Tagihan overdue INV-2025-000001", "dept_target": "FIN",
                       "related_customer_id": "c0000000-0000-4000-8000-000000000002"}');
  insert into pg_temp.tk values ('collection', (r ->> 'ticket_id')::uuid);
end $$;

select pg_temp.login('ops_sby');
do $$
declare r jsonb;
begin
  -- Ops may open a ticket for another department (and see it as creator).
  r := ticket_create('{"ticket_type": "service_request", "subject": "Pickup Cikarang", "dept_target": "OPS-JKT"}');
  insert into pg_temp.tk values ('sby_to_jkt', (r ->> 'ticket_id')::uuid);
end $$;

select pg_temp.login('admin_b');
reset role;
create function pg_temp.test_07() returns setof text language plpgsql as $$
declare r jsonb;
begin
  -- Departments are per tenant: B has OPS-JKT (ops_b) but no OPS-SBY.
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-SBY"}')$q$, 'P0001', 'dept_target', 'no department');
  -- Nor A's customers.
  return next pg_temp.throws_field($q$select ticket_create('{"ticket_type": "complaint", "subject": "x", "dept_target": "OPS-JKT", "related_customer_id": "c0000000-0000-4000-8000-000000000001"}')$q$,
                        'P0001', 'related_customer_id', 'no such customer');
  r := ticket_create('{"ticket_type": "complaint", "subject": "Tenant B complaint", "dept_target": "OPS-JKT"}');
  insert into pg_temp.tk values ('tenant_b', (r ->> 'ticket_id')::uuid);
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_07();

-- ---------------------------------------------------------------- RLS: who sees what
-- Visible ticket names per user.
reset role;
create function pg_temp.seen() returns text language sql stable as $$
  select coalesce(string_agg(k.name, ',' order by k.name), '')
    from tickets t join pg_temp.tk k on k.ticket_id = t.ticket_id
$$;
set local role bizos_authenticated;
select pg_temp.login('admin');   select is(pg_temp.seen(), 'collection,complaint,rfq,sby_to_jkt', 'super admin: all of the tenant');
select pg_temp.login('dir');     select is(pg_temp.seen(), 'collection,complaint,rfq,sby_to_jkt', 'director: all of the tenant');
select pg_temp.login('ops_jkt'); select is(pg_temp.seen(), 'complaint,rfq,sby_to_jkt', 'ops: their department');
select pg_temp.login('ops_sby'); select is(pg_temp.seen(), 'sby_to_jkt', 'ops of another department: only what they created');
select pg_temp.login('fin');     select is(pg_temp.seen(), 'collection', 'finance: FIN tickets');
select pg_temp.login('mkt');     select is(pg_temp.seen(), 'rfq', 'marketing: RFQs from leads');
select pg_temp.login('sp');      select is(pg_temp.seen(), 'complaint,rfq', 'salesperson: own and own customers');
select pg_temp.login('sm');      select is(pg_temp.seen(), 'complaint,rfq', 'sales manager: the team''s');
select pg_temp.login('sp2');     select is(pg_temp.seen(), 'collection', 'salesperson: tickets of customers they own');
select pg_temp.login('ops_b');   select is(pg_temp.seen(), 'tenant_b', 'tenant isolation');
select pg_temp.login('admin_b'); select is(pg_temp.seen(), 'tenant_b', 'tenant isolation for super admins');

-- ---------------------------------------------------------------- masking
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_08() returns setof text language plpgsql as $$
declare m record;
begin
  select * into m from v_ops_rfqs_masked where ticket_id = pg_temp.tid('rfq');
  return next is(m.company_name, 'MASKED', 'ops see MASKED company');
  return next is(m.contact_name, '***', 'contact name masked');
  return next is(m.contact_phone, '***', 'contact phone masked');
  return next is(m.contact_email, '***', 'contact e-mail masked');
  return next is(m.origin, 'Jakarta', 'the route stays readable');
  return next is((select count(*) from v_ops_rfqs_masked), 1::bigint, 'only inquiries in the RFQ view');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_08();
select pg_temp.login('ops_sby');
select is((select count(*) from v_ops_rfqs_masked), 0::bigint, 'the RFQ view follows RLS');
select pg_temp.login('sp');
select is((select company_name from tickets where ticket_id = pg_temp.tid('rfq')), 'PT Sinar Jaya Logistik', 'sales read the company');

-- ---------------------------------------------------------------- messages, first response
select pg_temp.login('sp');
reset role;
create function pg_temp.test_09() returns setof text language plpgsql as $$
declare r jsonb;
begin
  r := ticket_add_message(pg_temp.tid('complaint'), 'Mohon dicek segera');
  return next is(r ->> 'first_response_at', null::text, 'the creator''s own message is no response');
  return next pg_temp.throws_field($q$select ticket_add_message(null, 'x')$q$, 'P0001', 'ticket_id');
  return next pg_temp.throws_field(format($q$select ticket_add_message(%L, '   ')$q$, pg_temp.tid('complaint')), 'P0001', 'body');
  return next pg_temp.throws_field(format($q$select ticket_add_message(%L, 'x')$q$, pg_temp.tid('collection')), 'P0002', 'ticket_id');
  return next throws_ok(format($q$insert into ticket_messages (tenant_id, ticket_id, author_user_id, body) values ('a1111111-1111-4111-8111-111111111111', %L, %L, 'forged')$q$,
                               pg_temp.tid('complaint'), pg_temp.uid('ops_jkt')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_09();
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_10() returns setof text language plpgsql as $$
declare r jsonb;
begin
  return next is((select first_response_minutes from v_ticket_first_response where ticket_id = pg_temp.tid('complaint')), null::numeric,
                     'no first response before a reply');
  r := ticket_add_message(pg_temp.tid('complaint'), 'Catatan internal: cek gudang', true);
  return next is(r ->> 'first_response_at', null::text, 'an internal note is no response');
  r := ticket_add_message(pg_temp.tid('complaint'), 'Sedang kami cek');
  return next ok(r ->> 'first_response_at' is not null, 'a reply by someone else is the first response');
  r := ticket_add_message(pg_temp.tid('complaint'), 'Update kedua');
  return next is((select count(*) from sla_events where ticket_id = pg_temp.tid('complaint') and event_type = 'FIRST_RESPONSE'), 1::bigint,
                     'one FIRST_RESPONSE event');
  return next is((select actor_user_id from sla_events where ticket_id = pg_temp.tid('complaint') and event_type = 'FIRST_RESPONSE'),
                     pg_temp.uid('ops_jkt'), 'the responder is the actor');
  return next ok((select first_response_minutes >= 0 and first_response_business_minutes >= 0
                        from v_ticket_first_response where ticket_id = pg_temp.tid('complaint')), 'first response minutes');
  return next is((select count(*) from ticket_messages where ticket_id = pg_temp.tid('complaint')), 4::bigint, 'ops read the conversation');
  return next throws_ok(format($q$update tickets set first_response_at = null where ticket_id = %L$q$, pg_temp.tid('complaint')), '42501');
  return next throws_ok(format($q$update ticket_messages set body = 'edited' where ticket_id = %L$q$, pg_temp.tid('complaint')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_10();
select pg_temp.login('sp2');
select is((select count(*) from ticket_messages), 0::bigint, 'messages follow the ticket''s visibility');
select is((select count(*) from sla_events), 0::bigint, 'sla events follow the ticket''s visibility');
select pg_temp.login('sp');
select is((select count(*) from sla_events where ticket_id = pg_temp.tid('complaint')), 1::bigint, 'the creator reads the events');
select throws_ok($q$insert into sla_events (tenant_id, ticket_id, event_type) select tenant_id, ticket_id, 'RESOLVED' from tickets limit 1$q$, '42501');

-- ---------------------------------------------------------------- lifecycle
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_11() returns setof text language plpgsql as $$
declare
  c uuid := pg_temp.tid('complaint');
  r jsonb;
  t tickets;
begin
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'CLOSED')$q$, c), 'P0001', 'to_status', 'cannot move from OPEN to CLOSED');
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'QUOTED')$q$, c), 'P0001', 'to_status', 'unknown status');
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, '')$q$, c), 'P0001', 'to_status', 'required');
  return next pg_temp.throws_field($q$select ticket_transition('a0000000-0000-4000-8000-0000000000ff', 'IN_PROGRESS')$q$, 'P0002', 'ticket_id');
  -- Direct updates are guarded as well.
  return next pg_temp.throws_field(format($q$update tickets set ticket_status = 'CLOSED' where ticket_id = %L$q$, c), 'P0001', null, 'cannot move from "OPEN" to "CLOSED"');
  return next pg_temp.throws_field(format($q$update tickets set ticket_status = null where ticket_id = %L$q$, c), '23514', null, 'tickets_ticket_status_check');

  r := ticket_transition(c, 'in_progress');
  return next is(r ->> 'to', 'IN_PROGRESS', 'to IN_PROGRESS');
  r := ticket_transition(c, 'IN_PROGRESS');
  return next is(r ->> 'changed', 'false', 'the same status again is a no-op');
  perform ticket_transition(c, 'WAITING_CUSTOMER');
  perform ticket_transition(c, 'IN_PROGRESS');
  r := ticket_transition(c, 'RESOLVED', 'Sudah diganti barang baru');
  return next ok(r ->> 'resolved_at' is not null, 'RESOLVED stamps resolved_at');
  perform ticket_transition(c, 'IN_PROGRESS');
  return next is((select resolved_at from tickets where ticket_id = c), null::timestamptz, 'reopening clears resolved_at');
  perform ticket_transition(c, 'RESOLVED');
  r := ticket_transition(c, 'CLOSED');
  select * into t from tickets where ticket_id = c;
  return next ok(t.closed_at is not null and t.resolved_at is not null, 'CLOSED stamps closed_at and keeps resolved_at');
  return next is((select count(*) from sla_events where ticket_id = c and event_type = 'STATUS_CHANGE'), 7::bigint, 'seven status changes');
  return next is((select count(*) from sla_events where ticket_id = c and event_type = 'RESOLVED'), 2::bigint, 'resolved twice');
  return next is((select count(*) from sla_events where ticket_id = c and event_type = 'CLOSED'), 1::bigint, 'closed once');
  return next is((select metadata from sla_events where ticket_id = c and event_type = 'STATUS_CHANGE' and metadata ->> 'to' = 'WAITING_CUSTOMER'),
                     '{"column": "ticket_status", "from": "IN_PROGRESS", "to": "WAITING_CUSTOMER"}'::jsonb, 'STATUS_CHANGE metadata');
  return next ok((select bool_and(actor_user_id = pg_temp.uid('ops_jkt')) from sla_events where ticket_id = c and event_type <> 'FIRST_RESPONSE'),
                     'events name the actor');
  return next is((select count(*) from ticket_messages where ticket_id = c and body = 'Sudah diganti barang baru' and not internal), 1::bigint,
                     'the transition note is a message');
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'IN_PROGRESS')$q$, c), 'P0001', 'to_status', 'from CLOSED to IN_PROGRESS');
  return next pg_temp.throws_field(format($q$select ticket_add_message(%L, 'after closing')$q$, c), 'P0001', 'ticket_id', 'CLOSED');
  return next throws_ok(format($q$update tickets set ticket_type = 'general_request' where ticket_id = %L$q$, c), '42501');

  -- The RFQ: OPEN → QUOTED → IN_PROGRESS (revise) → QUOTED → WON.
  perform ticket_transition(pg_temp.tid('rfq'), 'QUOTED', 'Rp 12.500.000 per 20ft');
  select * into t from tickets where ticket_id = pg_temp.tid('rfq');
  return next ok(t.quoted_at is not null and t.resolved_at is not null, 'QUOTED stamps quoted_at and resolved_at');
  return next ok(t.first_response_at is not null, 'the quote note is the first response');
  perform ticket_transition(pg_temp.tid('rfq'), 'IN_PROGRESS');
  return next is((select resolved_at from tickets where ticket_id = pg_temp.tid('rfq')), null::timestamptz, 'revising clears resolved_at');
  perform ticket_transition(pg_temp.tid('rfq'), 'QUOTED');
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'RESOLVED')$q$, pg_temp.tid('rfq')), 'P0001', 'to_status', 'unknown status');
  r := ticket_transition(pg_temp.tid('rfq'), 'WON');
  select * into t from tickets where ticket_id = pg_temp.tid('rfq');
  return next ok(t.closed_at is not null and t.resolved_at is not null and t.inquiry_status = 'WON' and t.ticket_status is null,
                     'WON closes the inquiry and keeps resolved_at');
  return next is((select count(*) from sla_events where ticket_id = pg_temp.tid('rfq') and event_type = 'CLOSED'), 1::bigint, 'WON is a CLOSED event');
  return next is((select count(*) from sla_events where ticket_id = pg_temp.tid('rfq') and event_type = 'RESOLVED'), 2::bigint, 'quoted twice');

  -- Assignment.
  return next pg_temp.throws_field(format($q$select ticket_assign(%L, %L)$q$, pg_temp.tid('sby_to_jkt'), pg_temp.uid('ops_sby')), 'P0001', 'assignee_user_id');
  return next pg_temp.throws_field(format($q$select ticket_assign(%L, %L)$q$, pg_temp.tid('sby_to_jkt'), pg_temp.uid('sp')), 'P0001', 'assignee_user_id');
  r := ticket_assign(pg_temp.tid('sby_to_jkt'), pg_temp.uid('ops_jkt2'));
  return next is((r ->> 'assignee_user_id')::uuid, pg_temp.uid('ops_jkt2'), 'assigned');
  perform ticket_transition(pg_temp.tid('sby_to_jkt'), 'CANCELLED', 'Duplikat');
  return next ok((select cancelled_at is not null and resolved_at is null from tickets where ticket_id = pg_temp.tid('sby_to_jkt')),
                     'CANCELLED stamps cancelled_at, not resolved_at');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_11();
select pg_temp.login('ops_jkt2');
select is(pg_temp.seen(), 'complaint,rfq,sby_to_jkt', 'the assignee (same department) sees it');
select pg_temp.login('ops_sby');
reset role;
create function pg_temp.test_12() returns setof text language plpgsql as $$
begin
  -- Sees their own ticket for another department, may not work it.
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'IN_PROGRESS')$q$, pg_temp.tid('sby_to_jkt')), '42501', 'ticket_id');
  return next pg_temp.throws_field(format($q$select ticket_transition(%L, 'IN_PROGRESS')$q$, pg_temp.tid('complaint')), 'P0002', 'ticket_id');
  return next is((select count(*) from sla_events where ticket_id = pg_temp.tid('sby_to_jkt')), 2::bigint, 'the creator reads the events of their ticket');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_12();
select pg_temp.login('fin');
do $$
begin
  -- Finance works the tickets of its own department (FIN).
  perform ticket_transition(pg_temp.tid('collection'), 'IN_PROGRESS');
end $$;
-- An update outside the UPDATE policy finds no rows.
select pg_temp.login('fin');
reset role;
create function pg_temp.test_13() returns setof text language plpgsql as $$
declare n int;
begin
  update tickets set priority = 'low' where ticket_id = pg_temp.tid('collection');
  get diagnostics n = row_count;
  return next is(n, 1, 'finance updates FIN tickets');
  update tickets set priority = 'low' where dept_target <> 'FIN';
  get diagnostics n = row_count;
  return next is(n, 0, 'finance cannot update other departments'' tickets');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_13();

-- ---------------------------------------------------------------- attachments
-- Files are objects (V8): the uploader registers the object, then attaches it.
select pg_temp.login('sp');
reset role;
create function pg_temp.test_14() returns setof text language plpgsql as $$
declare
  o1 uuid := (upload_begin('ticket-attachments')->>'object_id')::uuid;
  o2 uuid := (upload_begin('media')->>'object_id')::uuid;
  o3 uuid := gen_random_uuid();
begin
  perform object_create(jsonb_build_object('object_id', o1, 'bucket', 'ticket-attachments', 'file_name', 'packing-list.pdf',
          'content_type', 'application/pdf', 'size_bytes', 2048, 'sha256', repeat('ab', 32)));
  return next ok((select object_key = 'a1111111-1111-4111-8111-111111111111/ticket-attachments/' || o1
                        from objects where object_id = o1), 'the object key is derived from tenant, bucket and id');
  perform ticket_attachment_add(pg_temp.tid('rfq'), o1);
  return next pg_temp.throws_field(format($q$select object_create('{"object_id": "%s", "bucket": "ticket-attachments", "file_name": "x.pdf",
                                  "content_type": "application/pdf", "size_bytes": 1, "sha256": "nothex"}')$q$, gen_random_uuid()),
                        '23514', null, 'objects_sha256_check');
  return next pg_temp.throws_field(format($q$select object_create('{"object_id": "%s", "bucket": "ticket-attachments", "file_name": "../x.pdf",
                                  "content_type": "application/pdf", "size_bytes": 1, "sha256": "%s"}')$q$, gen_random_uuid(), repeat('ab', 32)),
                        '23514', null, 'objects_file_name_check');
  return next pg_temp.throws_field(format($q$select object_create('{"object_id": "%s", "bucket": "ticket-attachments", "file_name": "x.exe",
                                  "content_type": "application/x-msdownload", "size_bytes": 1, "sha256": "%s"}')$q$, gen_random_uuid(), repeat('ab', 32)),
                        '23514', 'content_type', 'not accepted in bucket');
  return next pg_temp.throws_field(format($q$select object_create('{"object_id": "%s", "bucket": "ticket-attachments", "file_name": "big.pdf",
                                  "content_type": "application/pdf", "size_bytes": 26214401, "sha256": "%s"}')$q$, gen_random_uuid(), repeat('ab', 32)),
                        '23514', 'size_bytes', 'over the 26214400-byte limit');
  -- A file of another bucket, and a file someone else uploaded, cannot be attached.
  perform object_create(jsonb_build_object('object_id', o2, 'bucket', 'media', 'file_name', 'x.png',
          'content_type', 'image/png', 'size_bytes', 10, 'sha256', repeat('cd', 32)));
  return next pg_temp.throws_field(format('select ticket_attachment_add(%L, %L)', pg_temp.tid('rfq'), o2), 'P0001', 'object_id');
  return next pg_temp.throws_field(format('select ticket_attachment_add(%L, %L)', pg_temp.tid('collection'), o1), 'P0002', 'ticket_id');
  insert into pg_temp.tk (name, ticket_id) values ('att_obj', o1), ('att_obj3', o3);
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_14();
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_15() returns setof text language plpgsql as $$
declare
  o3 uuid := (upload_begin('ticket-attachments')->>'object_id')::uuid;
begin
  return next ok((select count(*) = 1 from objects where object_id = pg_temp.tid('att_obj')),
                     'a ticket''s files are visible with the ticket');
  update pg_temp.tk set ticket_id = o3 where name = 'att_obj3';
  perform object_create(jsonb_build_object('object_id', o3, 'bucket', 'ticket-attachments', 'file_name', 'ops.pdf',
          'content_type', 'application/pdf', 'size_bytes', 10, 'sha256', repeat('ef', 32)));
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_15();
select pg_temp.login('sp');
reset role;
create function pg_temp.test_16() returns setof text language plpgsql as $$
begin
  return next pg_temp.throws_field(format('select ticket_attachment_add(%L, %L)', pg_temp.tid('rfq'), pg_temp.tid('att_obj3')), 'P0002', 'object_id');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_16();
select pg_temp.login('ops_jkt');
select is((select count(*) from ticket_attachments where ticket_id = pg_temp.tid('rfq')), 1::bigint, 'ops see the RFQ''s attachments');
select pg_temp.login('sp2');
select is((select count(*) from ticket_attachments), 0::bigint, 'attachments follow the ticket');
select is((select count(*) from objects where object_id = pg_temp.tid('att_obj')), 0::bigint, 'and so do their files');

-- ---------------------------------------------------------------- audit
reset role;
create function pg_temp.test_17() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) >= 2 from bizos.audit_log
                       where table_name like '%tickets' and record_key ->> 'ticket_id' = pg_temp.tid('complaint')::text
                         and actor = pg_temp.uid('ops_jkt') and action = 'UPDATE'),
                     'ticket changes are audited with the actor');
  return next ok(exists (select 1 from bizos.audit_log
                              where table_name like '%tickets' and record_key ->> 'ticket_id' = pg_temp.tid('rfq')::text
                                and action = 'INSERT' and actor = pg_temp.uid('sp')),
                     'ticket creation is audited');
  return next ok(not exists (select 1 from bizos.audit_log where table_name like '%ticket_messages'),
                     'message inserts are not audited');
end $$;
select * from pg_temp.test_17();
set local role bizos_authenticated;
select pg_temp.login('admin');
delete from ticket_messages where body = 'Update kedua';
reset role;
select is((select count(*) from bizos.audit_log where table_name like '%ticket_messages' and action = 'DELETE'), 1::bigint,
                  'message deletes are audited');

-- ---------------------------------------------------------------- SLA views with known times
-- Backdated tickets (as the owner, timestamps trigger off) on Monday
-- 2025-03-03, priority normal: response 240, resolution 1620 business minutes.
alter table tickets disable trigger tickets_stamp_timestamps;
insert into tickets (tenant_id, ticket_id, ticket_type, subject, priority, dept_target, created_by, created_at, updated_at)
values
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000001', 'complaint', 'SLA 1', 'normal', 'OPS-JKT', pg_temp.uid('sp'), pg_temp.wib('2025-03-03 09:00'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000002', 'complaint', 'SLA 2', 'normal', 'OPS-JKT', pg_temp.uid('sp'), pg_temp.wib('2025-03-03 09:00'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000003', 'complaint', 'SLA 3', 'normal', 'OPS-JKT', pg_temp.uid('sp'), pg_temp.wib('2025-03-03 09:00'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000004', 'complaint', 'SLA 4', 'normal', 'OPS-JKT', pg_temp.uid('sp'), pg_temp.wib('2025-03-03 09:00'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000005', 'complaint', 'SLA 5', 'normal', 'OPS-JKT', pg_temp.uid('sp'), pg_temp.wib('2025-03-04 00:30'), now()),
  ('a1111111-1111-4111-8111-111111111111', 'f0000000-0000-4000-8000-000000000006', 'complaint', 'SLA 6', 'normal', 'OPS-JKT', pg_temp.uid('sp'), now(), now());
-- created_at is set by stamp_timestamps only; with it off the values stay.
update tickets set first_response_at = pg_temp.wib('2025-03-03 12:00') where ticket_id = 'f0000000-0000-4000-8000-000000000001';
update tickets set first_response_at = pg_temp.wib('2025-03-03 14:00'), resolved_at = pg_temp.wib('2025-03-03 15:00'),
                   ticket_status = 'RESOLVED' where ticket_id = 'f0000000-0000-4000-8000-000000000002';
update tickets set first_response_at = pg_temp.wib('2025-03-03 10:00') where ticket_id = 'f0000000-0000-4000-8000-000000000003';
update tickets set ticket_status = 'RESOLVED' where ticket_id = 'f0000000-0000-4000-8000-000000000003';
update tickets set resolved_at = pg_temp.wib('2025-03-04 10:00') where ticket_id = 'f0000000-0000-4000-8000-000000000003';
update tickets set first_response_at = pg_temp.wib('2025-03-04 08:30') where ticket_id = 'f0000000-0000-4000-8000-000000000005';
alter table tickets enable trigger tickets_stamp_timestamps;

set local role bizos_authenticated;
select pg_temp.login('ops_jkt');
reset role;
create function pg_temp.test_18() returns setof text language plpgsql as $$
declare s record;
begin
  select * into s from v_sla_status where ticket_id = 'f0000000-0000-4000-8000-000000000001';
  return next is(s.response_due_at, pg_temp.wib('2025-03-03 13:00'), 'response due after 240 business minutes');
  return next is(s.resolution_due_at, pg_temp.wib('2025-03-06 09:00'), 'resolution due after 1620 business minutes');
  return next is(s.response_breached, false, 'responded in time');
  return next is(s.resolution_breached, true, 'never resolved: breached');
  return next is(s.sla_status, 'breached', 'status breached');

  select * into s from v_sla_status where ticket_id = 'f0000000-0000-4000-8000-000000000002';
  return next is(s.response_breached, true, 'late response');
  return next is(s.resolution_breached, false, 'resolved in time');
  return next is(s.sla_status, 'breached', 'a late response is a breach');

  select * into s from v_sla_status where ticket_id = 'f0000000-0000-4000-8000-000000000003';
  return next is((s.response_breached, s.resolution_breached, s.sla_status)::text, '(f,f,met)', 'met');

  select * into s from v_sla_status where ticket_id = 'f0000000-0000-4000-8000-000000000006';
  return next is(s.sla_status, 'due', 'a fresh ticket is due');

  return next is((select first_response_minutes from v_ticket_first_response where ticket_id = 'f0000000-0000-4000-8000-000000000002'), 300::numeric, 'minutes');
  return next is((select first_response_business_minutes from v_ticket_first_response where ticket_id = 'f0000000-0000-4000-8000-000000000005'), 30::numeric,
                     'business minutes from 00:30 to 08:30 WIB');
  return next is((select first_response_minutes from v_ticket_first_response where ticket_id = 'f0000000-0000-4000-8000-000000000004'), null::numeric,
                     'no reply: NULL');

  -- 2025-03-03 WIB: responses 180, 300, 60 minutes (+1 without a reply).
  select * into s from v_ticket_first_response_daily_median where day = '2025-03-03';
  return next is((s.tickets, s.responded)::text, '(4,3)', 'tickets and responded per day');
  return next is(s.median_first_response_minutes, 180::double precision, 'median minutes');
  return next is(s.median_first_response_business_minutes, 180::double precision, 'median business minutes');
  -- 00:30 WIB on the 4th is still the 3rd in UTC: it counts on the 4th.
  select * into s from v_ticket_first_response_daily_median where day = '2025-03-04';
  return next is((s.tickets, s.median_first_response_minutes)::text, '(1,480)', 'days are in the tenant''s time zone');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_18();
select pg_temp.login('ops_sby');
select is((select count(*) from v_sla_status where ticket_id::text like 'f0000000%'), 0::bigint, 'SLA views follow RLS');
reset role;

select * from finish();
rollback;
