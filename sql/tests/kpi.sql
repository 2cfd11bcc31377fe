-- pgTAP tests of V6 (KPI).
--
-- Run by tests/tests/suite/sql_scripts.rs with pg_prove, as a superuser, on
-- a fresh migrated database:
--   PGHOST=... PGDATABASE=<db> pg_prove sql/tests/kpi.sql
-- It seeds tenants, profiles and CRM rows as the owner would, then acts as
-- users through `set local role bizos_authenticated` + request.jwt.claims.
-- Everything happens in one transaction that is rolled back, so the script
-- can run any number of times; lib/tap.sql says how checks are written.
begin;
\ir lib/tap.sql
select plan(87);

-- The tenants of this script live in Asia/Jakarta (the default time zone of
-- a tenant): in that session time zone current_date is their today, whatever
-- the time of day the script runs.
set local time zone 'Asia/Jakarta';

-- ------------------------------------------------------------------ helpers
-- kpi_actual for the recent window [today-5, tomorrow] (tomorrow: leads and
-- activities are cut into days in the tenant time zone, Asia/Jakarta, which
-- may already be tomorrow for the session).
create function pg_temp.recent() returns daterange language sql stable
  as $$ select daterange(current_date - 5, current_date + 2) $$;

-- ------------------------------------------------------------------ seed
do $$
declare
  ta uuid; tb uuid;
begin
  insert into tenants (slug, name) values ('kpi-test-a', 'KPI Test A') returning tenant_id into ta;
  insert into tenants (slug, name) values ('kpi-test-b', 'KPI Test B') returning tenant_id into tb;
  perform pg_temp.put('ta', ta); perform pg_temp.put('tb', tb);
  perform pg_temp.put(r, gen_random_uuid())
     from unnest(array['adm', 'dir', 'mm', 'sm', 'sp', 'sp2', 'fin', 'ops', 'admb', 'c1', 'c2', 'p1', 'p2']) r;
  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id) values
    (ta, pg_temp.id('adm'), 'adm@kpi.test', 'Admin', 'super_admin', null, null),
    (ta, pg_temp.id('dir'), 'dir@kpi.test', 'Dira', 'director', null, null),
    (ta, pg_temp.id('mm'),  'mm@kpi.test',  'Maya', 'marketing_manager', null, null),
    (ta, pg_temp.id('sm'),  'sm@kpi.test',  'Sam', 'sales_manager', null, null),
    (ta, pg_temp.id('sp'),  'sp@kpi.test',  'Sari', 'salesperson', null, pg_temp.id('sm')),
    (ta, pg_temp.id('sp2'), 'sp2@kpi.test', 'Budi', 'salesperson', null, null),
    (ta, pg_temp.id('fin'), 'fin@kpi.test', 'Fina', 'finance', 'FIN', null),
    (ta, pg_temp.id('ops'), 'ops@kpi.test', 'Oki', 'ops', 'OPS', null),
    (tb, pg_temp.id('admb'), 'admb@kpi.test', 'Admin B', 'super_admin', null, null);
  insert into customers (tenant_id, customer_id, company_name) values
    (ta, pg_temp.id('c1'), 'PT Satu'), (ta, pg_temp.id('c2'), 'PT Dua');
  insert into prospects (tenant_id, prospect_id, customer_id, owner_user_id) values
    (ta, pg_temp.id('p1'), pg_temp.id('c1'), pg_temp.id('sp')),
    (ta, pg_temp.id('p2'), pg_temp.id('c2'), pg_temp.id('sp2'));
  insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, sales_owner_user_id, assigned_at) values
    (ta, 'website', 'PT Satu', pg_temp.id('c1'), pg_temp.id('p1'), pg_temp.id('sp'), now()),
    (ta, 'website', 'PT Dua', pg_temp.id('c2'), pg_temp.id('p2'), pg_temp.id('sp2'), now()),
    (ta, 'referral', 'PT Satu', pg_temp.id('c1'), pg_temp.id('p1'), pg_temp.id('sp'), now());
  insert into marketing_spend (tenant_id, channel, spend_date, amount) values
    (ta, 'website', current_date, 250000), (ta, 'referral', current_date - 1, 50000);
  insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, summary) values
    (ta, pg_temp.id('sp'), 'call', 'manual', pg_temp.id('c1'), 'Call 1'),
    (ta, pg_temp.id('sp'), 'meeting', 'manual', pg_temp.id('c1'), 'Meeting'),
    (ta, pg_temp.id('sp2'), 'call', 'manual', pg_temp.id('c2'), 'Call 2');
end $$;

-- ------------------------------------------------------------------ catalogue
create function pg_temp.test_01() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from kpi_metric_definitions where tenant_id = pg_temp.id('ta'))
                        = (select count(*) from default_kpi_metric_definitions()), 'every new tenant gets the catalogue');
  return next ok((select count(*) from kpi_metric_definitions where tenant_id = pg_temp.id('tb')) >= 20, 'tenant B too');
  return next ok((select count(distinct department) from kpi_metric_definitions where tenant_id = pg_temp.id('ta')) = 4, 'four departments');
  return next ok((select array_agg(metric_key order by metric_key) from kpi_metric_definitions
                          where tenant_id = pg_temp.id('ta') and na_reason is not null) = array['cycle_days', 'win_rate'], 'NA metrics');
  return next ok((select count(distinct source) from kpi_metric_definitions where tenant_id = pg_temp.id('ta')) = 3, 'AUTO, MANUAL, IMPORTED');
end $$;
select * from pg_temp.test_01();

-- ------------------------------------------------------------------ AR data for the AUTO metrics
select pg_temp.act('fin');
set local role bizos_authenticated;
do $$
declare r jsonb;
begin
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c1'), 'subtotal', 1000000, 'tax', 110000));
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c2'), 'subtotal', 500000, 'tax', 0, 'issue_date', current_date - 1));
  -- Issued before the window, overdue: opening AR of the window.
  r := invoice_create(jsonb_build_object('customer_id', pg_temp.id('c1'), 'subtotal', 500000, 'tax', 0,
                                         'issue_date', current_date - 40, 'due_date', current_date - 10));
  perform payment_record(jsonb_build_object('invoice_id', r->>'invoice_id', 'amount', 250000));
end $$;

-- ------------------------------------------------------------------ targets (KPI-1)
reset role;
select pg_temp.act('sm');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_02() returns setof text language plpgsql as $$
declare r jsonb;
begin
  r := kpi_target_create(jsonb_build_object('metric_key', 'revenue', 'assignee_user_id', pg_temp.id('sp'),
                                            'period_month', '2031-01', 'target_value', 500000000));
  return next ok(r->>'period_start' = '2031-01-01' and r->>'period_end' = '2031-01-31', 'month period: ' || r::text);
  perform pg_temp.put('tgt1', (r->>'target_id')::uuid);
  -- The same metric, assignee and an overlapping period: refused.
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_start": "2031-01-20", "period_end": "2031-02-10", "target_value": 1}')$q$, pg_temp.id('sp')), '23P01', 'period');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-01", "target_value": 1}')$q$, pg_temp.id('sp')), '23P01', 'kpi_targets_period_excl');
  return next pg_temp.throws_field(format($q$insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value) values ('%s', 'revenue', '%s', '[2031-01-31,2031-03-01)', 1)$q$, pg_temp.id('ta'), pg_temp.id('sp')), '23P01', 'kpi_targets_period_excl');
  -- Adjacent periods, other metrics and other assignees are fine.
  perform kpi_target_create(jsonb_build_object('metric_key', 'revenue', 'assignee_user_id', pg_temp.id('sp'),
                                               'period_start', '2031-02-01', 'period_end', '2031-02-28', 'target_value', 1));
  perform kpi_target_create(jsonb_build_object('metric_key', 'new_logos', 'assignee_user_id', pg_temp.id('sp'),
                                               'period_month', '2031-01', 'target_value', 3));
  perform kpi_target_create(jsonb_build_object('metric_key', 'revenue', 'assignee_user_id', pg_temp.id('sm'),
                                               'period_month', '2031-01', 'target_value', 900000000));
  -- Outside the team.
  return next throws_ok(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-01", "target_value": 1}')$q$, pg_temp.id('sp2')), '42501');
  return next throws_ok(format($q$insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value) values ('%s', 'revenue', '%s', '[2032-01-01,2032-02-01)', 1)$q$, pg_temp.id('ta'), pg_temp.id('sp2')), '42501');
  -- Field validation.
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "win_rate", "assignee_user_id": "%s", "period_month": "2031-05", "target_value": 1}')$q$, pg_temp.id('sp')), 'P0001', 'metric_key');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "nope", "assignee_user_id": "%s", "period_month": "2031-05", "target_value": 1}')$q$, pg_temp.id('sp')), 'P0002', 'metric_key');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-05"}')$q$, pg_temp.id('sp')), 'P0001', 'target_value');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-05", "target_value": -1}')$q$, pg_temp.id('sp')), 'P0001', 'target_value');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-13", "target_value": 1}')$q$, pg_temp.id('sp')), 'P0001', 'period_month');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_start": "2031-05-10", "period_end": "2031-05-01", "target_value": 1}')$q$, pg_temp.id('sp')), 'P0001', 'period_end');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "target_value": 1}')$q$, pg_temp.id('sp')), 'P0001', 'period_start');
  return next pg_temp.throws_field($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "x", "period_month": "2031-05", "target_value": 1}')$q$, 'P0001', 'assignee_user_id');
  return next pg_temp.throws_field(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2031-05", "target_value": 1, "owner": 1}')$q$, pg_temp.id('sp')), 'P0001', 'owner');
  return next ok((select count(*) from kpi_targets) = 4, 'sales manager sees the team''s targets');
  -- Change a target; its period still cannot overlap.
  update kpi_targets set target_value = 600000000 where target_id = pg_temp.id('tgt1');
  return next pg_temp.throws_field(format($q$update kpi_targets set period = '[2031-01-01,2031-02-15)' where target_id = '%s'$q$, pg_temp.id('tgt1')), '23P01', 'kpi_targets_period_excl');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_02();

reset role;
select pg_temp.act('mm');
set local role bizos_authenticated;
do $$
begin
  perform kpi_target_create(jsonb_build_object('metric_key', 'cpl', 'assignee_user_id', pg_temp.id('mm'),
                                               'period_month', '2031-01', 'target_value', 150000));
end $$;

reset role;
select pg_temp.act('dir');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_03() returns setof text language plpgsql as $$
declare n bigint;
begin
  return next ok((select count(*) from kpi_targets) = 5, 'director reads every target');
  return next throws_ok(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2032-01", "target_value": 1}')$q$, pg_temp.id('dir')), '42501');
  return next throws_ok(format($q$insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value) values ('%s', 'revenue', '%s', '[2032-01-01,2032-02-01)', 1)$q$, pg_temp.id('ta'), pg_temp.id('dir')), '42501');
  update kpi_targets set target_value = 1;
  get diagnostics n = row_count;
  return next ok(n = 0, 'director changes no target');
  delete from kpi_targets;
  get diagnostics n = row_count;
  return next ok(n = 0, 'director removes no target');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_03();

reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_04() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from kpi_targets) = 3
                        and not exists (select 1 from kpi_targets where assignee_user_id <> pg_temp.id('sp')), 'assignees read their own targets');
  return next throws_ok(format($q$select kpi_target_create('{"metric_key": "revenue", "assignee_user_id": "%s", "period_month": "2032-01", "target_value": 1}')$q$, pg_temp.id('sp')), '42501');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_04();

reset role;
select pg_temp.act('sp2');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_05() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from kpi_targets) = 0, 'no targets of others');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_05();

-- ------------------------------------------------------------------ entries (KPI-2)
reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_06() returns setof text language plpgsql as $$
declare r jsonb; o uuid := (upload_begin('kpi-evidence')->>'object_id')::uuid;
begin
  -- Evidence files are objects uploaded first (V8, started with an upload
  -- intent: V15), then named by id.
  perform object_create(jsonb_build_object('object_id', o, 'bucket', 'kpi-evidence', 'file_name', 'week1.pdf',
           'content_type', 'application/pdf', 'size_bytes', 12345, 'sha256', repeat('ab', 32)));
  r := kpi_entry_create(jsonb_build_object('metric_key', 'quotations_sent', 'value', 5, 'notes', 'Week 1',
         'evidence', jsonb_build_array(o)));
  return next ok(jsonb_array_length(r->'evidence_ids') = 1 and not (r->>'replayed')::boolean, 'entry with evidence: ' || r::text);
  perform pg_temp.put('e1', (r->>'entry_id')::uuid);
  return next ok((select source = 'MANUAL' and assignee_user_id = pg_temp.id('sp') and created_by = pg_temp.id('sp')
                           from kpi_entries where entry_id = pg_temp.id('e1')), 'defaults: MANUAL, for the caller');
  return next ok((select object_id = o from kpi_evidence where entry_id = pg_temp.id('e1')), 'evidence names the object');
  -- AUTO metrics take no entries, through the RPC or directly.
  return next pg_temp.throws_field($q$select kpi_entry_create('{"metric_key": "revenue", "value": 1}')$q$, 'P0001', 'metric_key');
  return next pg_temp.throws_field(format($q$insert into kpi_entries (tenant_id, metric_key, value) values ('%s', 'revenue', 1)$q$, pg_temp.id('ta')), 'P0001', 'metric_key');
  -- Not for someone else.
  return next throws_ok(format($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 1, "assignee_user_id": "%s"}')$q$, pg_temp.id('sp2')), '42501');
  -- Field validation; nothing written on error.
  return next pg_temp.throws_field($q$select kpi_entry_create('{"metric_key": "quotations_sent"}')$q$, 'P0001', 'value');
  return next pg_temp.throws_field($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": -2}')$q$, 'P0001', 'value');
  return next pg_temp.throws_field(format($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 1, "entry_date": "%s"}')$q$, current_date + 1), 'P0001', 'entry_date');
  return next pg_temp.throws_field($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 1, "source": "IMPORTED"}')$q$, 'P0001', 'import_id');
  return next pg_temp.throws_field($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 1, "evidence": [{"object_key": "a.jpg"}]}')$q$, 'P0001', 'evidence[0]');
  return next pg_temp.throws_field(format($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 1, "evidence": ["%s"]}')$q$, gen_random_uuid()), 'P0002', 'evidence[0]');
  -- The same file cannot prove two entries.
  return next pg_temp.throws_field(format($q$select kpi_entry_create('{"metric_key": "quotations_sent", "value": 2, "evidence": ["%s"]}')$q$, o), '23505', 'evidence');
  return next ok((select count(*) from kpi_entries) = 1 and (select count(*) from kpi_evidence) = 1, 'failed entries write nothing');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_06();

reset role;
select pg_temp.act('sm');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_07() returns setof text language plpgsql as $$
begin
  perform kpi_entry_create(jsonb_build_object('metric_key', 'quotations_sent', 'value', 3,
                                              'assignee_user_id', pg_temp.id('sp'), 'entry_date', current_date - 2));
  return next ok((select count(*) from kpi_entries) = 2 and (select count(*) from kpi_evidence) = 1, 'manager sees the team''s entries and evidence');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_07();

reset role;
select pg_temp.act('sp2');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_08() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from kpi_entries) + (select count(*) from kpi_evidence) = 0, 'others'' entries are invisible');
  perform pg_temp.put('o_sp2', (upload_begin('kpi-evidence')->>'object_id')::uuid);
  perform object_create(jsonb_build_object('object_id', pg_temp.id('o_sp2'), 'bucket', 'kpi-evidence', 'file_name', 'x.png',
           'content_type', 'image/png', 'size_bytes', 1, 'sha256', repeat('0', 64)));
  return next throws_ok(format($q$insert into kpi_evidence (tenant_id, entry_id, object_id) values ('%s', '%s', '%s')$q$, pg_temp.id('ta'), pg_temp.id('e1'), pg_temp.id('o_sp2')), '42501');
  return next pg_temp.throws_field(format($q$select kpi_evidence_add('%s', '%s')$q$, pg_temp.id('e1'), pg_temp.id('o_sp2')), 'P0002', 'entry_id');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_08();

reset role;
select pg_temp.act('ops');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_09() returns setof text language plpgsql as $$
declare r1 jsonb; r2 jsonb; imp uuid := gen_random_uuid();
begin
  -- IMPORTED: processing the same import row twice never duplicates.
  r1 := kpi_entry_create(jsonb_build_object('metric_key', 'customer_satisfaction', 'value', 4.5, 'source', 'IMPORTED',
                                            'import_id', imp, 'import_row', 1, 'entry_date', current_date - 1));
  r2 := kpi_entry_create(jsonb_build_object('metric_key', 'customer_satisfaction', 'value', 4.7, 'source', 'IMPORTED',
                                            'import_id', imp, 'import_row', 1, 'entry_date', current_date - 1));
  return next ok(r1->>'entry_id' = r2->>'entry_id' and (r2->>'replayed')::boolean, 're-import updates the entry');
  perform kpi_entry_create(jsonb_build_object('metric_key', 'customer_satisfaction', 'value', 4.1, 'source', 'IMPORTED',
                                              'import_id', imp, 'import_row', 2));
  return next ok((select count(*) from kpi_entries) = 2, 'two imported rows');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_09();

-- ------------------------------------------------------------------ actuals (KPI-3)
reset role;
select pg_temp.act('dir');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_10() returns setof text language plpgsql as $$
declare
  r jsonb;
  v record;
begin
  -- MANUAL: the sum of the entries in the period.
  r := kpi_actual('quotations_sent', pg_temp.id('sp'), pg_temp.recent());
  return next ok(r->>'status' = 'ok' and (r->>'value')::numeric = 8, 'manual actual: ' || r::text);
  r := kpi_actual('quotations_sent', pg_temp.id('sp'), daterange('2020-01-01', '2020-02-01'));
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb, 'no entries is NA, not 0: ' || r::text);
  -- IMPORTED with avg aggregation.
  r := kpi_actual('customer_satisfaction', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 4.4 and r->>'status' = 'ok', 'imported average: ' || r::text);
  -- NA metrics: never a number.
  r := kpi_actual('win_rate', pg_temp.id('sp'), pg_temp.recent());
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb and r->>'reason' like '%deal%', 'win_rate NA: ' || r::text);
  r := kpi_actual('cycle_days', null, pg_temp.recent());
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb, 'cycle_days NA');
  -- Marketing: leads by channel, spend, CPL.
  r := kpi_actual('leads_by_channel', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 3 and r->'breakdown' = '{"website": 2, "referral": 1}'::jsonb, 'leads by channel: ' || r::text);
  r := kpi_actual('marketing_spend', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 300000, 'spend: ' || r::text);
  r := kpi_actual('cpl', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 100000 and r->>'status' = 'ok', 'CPL = spend / leads: ' || r::text);
  r := kpi_actual('cpl', null, daterange('2020-01-01', '2020-02-01'));
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb, 'CPL without leads is NA: ' || r::text);
  return next ok((select cpl from v_kpi_cpl_daily where channel = 'website' and day = current_date) = 125000, 'CPL view');
  return next ok((select cpl is null and spend = 50000 from v_kpi_cpl_daily where channel = 'referral' and day = current_date - 1), 'CPL view NULL without leads');
  -- Sales: revenue (invoiced, excl. PPN), new logos, activities, per assignee.
  r := kpi_actual('revenue', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 1500000, 'revenue (subtotal of issued invoices): ' || r::text);
  r := kpi_actual('revenue', pg_temp.id('sp'), pg_temp.recent());
  return next ok((r->>'value')::numeric = 1000000 and r->>'scope' = 'assignee', 'revenue of the owner: ' || r::text);
  r := kpi_actual('new_logos', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 1, 'new logos: c2 only (c1 was invoiced before): ' || r::text);
  r := kpi_actual('new_logos', null, daterange(current_date - 60, current_date + 1));
  return next ok((r->>'value')::numeric = 2, 'new logos over 60 days');
  r := kpi_actual('sales_activities', pg_temp.id('sp'), pg_temp.recent());
  return next ok((r->>'value')::numeric = 2, 'activities of the owner: ' || r::text);
  r := kpi_actual('cash_collected', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 250000, 'cash collected');
  -- Finance: DSO as in v_dso_rolling_30, overdue AR, collection rate.
  r := kpi_actual('dso_rolling_30', null, pg_temp.recent());
  select * into v from v_dso_rolling_30 where day = current_date and currency = 'IDR';
  return next ok((r->>'value')::numeric = v.dso_days and v.dso_days = round(1860000 / 1610000.0 * 30, 1), 'DSO matches the view: ' || r::text);
  r := kpi_actual('ar_overdue_amount', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 250000, 'overdue AR: ' || r::text);
  r := kpi_actual('collection_rate', null, pg_temp.recent());
  -- 250,000 collected / (500,000 opening AR + 1,610,000 invoiced) x 100
  return next ok((r->>'value')::numeric = round(250000 * 100 / 2110000.0, 2), 'collection rate: ' || r::text);
  r := kpi_actual('dso_rolling_30', null, daterange('2020-01-01', '2020-02-01'));
  return next ok(r->>'status' = 'na', 'DSO without sales is NA');
  -- Ops: no tickets yet.
  r := kpi_actual('first_response_median_minutes', null, pg_temp.recent());
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb, 'first response without tickets is NA: ' || r::text);
  -- Bad calls.
  return next pg_temp.throws_field($q$select kpi_actual('nope', null, daterange(current_date, current_date + 1))$q$, 'P0002', 'metric_key');
  return next pg_temp.throws_field($q$select kpi_actual('revenue', null, daterange(current_date, null))$q$, 'P0001', 'period');
  return next pg_temp.throws_field($q$select kpi_actual('revenue', null, 'empty'::daterange)$q$, 'P0001', 'period');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_10();

-- The caller's RLS applies: a salesperson sees the revenue of own customers.
reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_11() returns setof text language plpgsql as $$
declare r jsonb;
begin
  r := kpi_actual('revenue', null, pg_temp.recent());
  return next ok((r->>'value')::numeric = 1000000, 'RLS scopes AUTO metrics: ' || r::text);
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_11();

-- First response: a ticket answered by someone else.
reset role;
select pg_temp.act('sp');
set local role bizos_authenticated;
select pg_temp.put('tck', (ticket_create(jsonb_build_object('ticket_type', 'general_request', 'subject', 'Need tax invoice copy',
                                                           'dept_target', 'FIN', 'related_customer_id', pg_temp.id('c1')))->>'ticket_id')::uuid);
reset role;
select pg_temp.act('fin');
set local role bizos_authenticated;
select ticket_add_message(pg_temp.id('tck'), 'Sent by e-mail');
reset role;
select pg_temp.act('dir');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_12() returns setof text language plpgsql as $$
declare r jsonb;
begin
  r := kpi_actual('first_response_median_minutes', null, pg_temp.recent());
  return next ok(r->>'status' = 'ok' and (r->>'value')::numeric >= 0, 'first response median: ' || r::text);
  r := kpi_actual('sla_breach_rate', null, pg_temp.recent());
  return next ok(r->>'status' = 'ok' and (r->>'value')::numeric = 0, 'no breach yet: ' || r::text);
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_12();

-- A custom AUTO metric nobody taught the database to compute is NA.
reset role;
select pg_temp.act('adm');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_13() returns setof text language plpgsql as $$
declare r jsonb;
begin
  insert into kpi_metric_definitions (tenant_id, metric_key, name, department, source, unit, direction, description)
  values (pg_temp.id('ta'), 'nps_auto', 'NPS', 'ops', 'AUTO', 'score', 'higher', 'Net promoter score');
  r := kpi_actual('nps_auto', null, pg_temp.recent());
  return next ok(r->>'status' = 'na' and r->'value' = 'null'::jsonb, 'unknown AUTO metric is NA: ' || r::text);
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_13();

-- ------------------------------------------------------------------ isolation and audit
reset role;
select pg_temp.act('admb');
set local role bizos_authenticated;
reset role;
create function pg_temp.test_14() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from kpi_targets) + (select count(*) from kpi_entries)
                        + (select count(*) from kpi_evidence) = 0, 'another tenant sees no targets or entries');
  return next ok(not exists (select 1 from kpi_metric_definitions where tenant_id <> pg_temp.id('tb')), 'own catalogue only');
  return next ok((kpi_actual('revenue', null, pg_temp.recent())->>'value')::numeric = 0, 'no revenue of tenant A');
end $$;
set local role bizos_authenticated;
select * from pg_temp.test_14();

reset role;
create function pg_temp.test_15() returns setof text language plpgsql as $$
begin
  return next ok((select count(*) from bizos.audit_log where table_name = 'public.kpi_targets' and action = 'INSERT'
                           and tenant_id = pg_temp.id('ta')) = 5, 'target inserts audited');
  return next ok(exists (select 1 from bizos.audit_log where table_name = 'public.kpi_targets' and action = 'UPDATE'
                                   and actor = pg_temp.id('sm') and after ->> 'target_value' = '600000000.0000'), 'target change audited with actor');
  return next ok((select count(*) from bizos.audit_log where table_name = 'public.kpi_entries' and action = 'INSERT'
                           and tenant_id = pg_temp.id('ta')) = 4, 'entry inserts audited');
  return next ok(exists (select 1 from bizos.audit_log where table_name = 'public.kpi_entries' and action = 'UPDATE'
                                   and actor = pg_temp.id('ops')), 're-import audited');
  return next ok(not exists (select 1 from bizos.audit_verify(pg_temp.id('ta'))), 'audit chain intact');
end $$;
select * from pg_temp.test_15();

select * from finish();
rollback;
