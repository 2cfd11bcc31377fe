-- KPI: the metric catalogue, targets, entries and evidence, the AUTO metric
-- views and kpi_actual (the one computation of an actual).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

create or replace function seed_kpi_metric_definitions(tenant uuid) returns void
language plpgsql
as $$
begin
    insert into kpi_metric_definitions (tenant_id, metric_key, name, department, source, unit, direction,
                                        aggregation, assignee_scope, description, na_reason)
    select tenant, d.metric_key, d.name, d.department, d.source, d.unit, d.direction,
           d.aggregation, d.assignee_scope, d.description, d.na_reason
      from default_kpi_metric_definitions() d
    on conflict do nothing;
end
$$;
select pin_search_path('seed_kpi_metric_definitions(uuid)');
revoke execute on function seed_kpi_metric_definitions(uuid) from public;

-- Trigger of tenants (single node; on Citus tenant_create() seeds).
create or replace function seed_kpi_metric_definitions() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('select %I.seed_kpi_metric_definitions($1)', tg_table_schema) using new.tenant_id;
  return null;
end
$$;

-- AUTO metrics are computed, never entered.
create or replace function kpi_entries_check_metric() returns trigger
language plpgsql
as $$
declare
  v_source text;
begin
  select d.source into v_source from kpi_metric_definitions d
   where d.tenant_id = new.tenant_id and d.metric_key = new.metric_key;
  if v_source = 'AUTO' then
    raise exception using errcode = 'P0001', column = 'metric_key',
      message = format('metric_key: %s is computed automatically from the data; it takes no entries', new.metric_key);
  end if;
  return new;
end
$$;

-- AUTO metric views (security invoker: what the caller may see); days are
-- cut in the tenant's time zone (tenants.time_zone).
-- Leads created per day, channel and sales owner.
create or replace view v_kpi_leads_daily with (security_invoker = true) as
select l.tenant_id,
       (l.created_at at time zone t.time_zone)::date as day,
       l.channel,
       l.sales_owner_user_id,
       count(*) as leads
  from leads l
  join tenants t on t.tenant_id = l.tenant_id
 group by 1, 2, 3, 4;
grant select on v_kpi_leads_daily to bizos_authenticated;

-- Sales activities per owner, type and day.
create or replace view v_kpi_activities_daily with (security_invoker = true) as
select a.tenant_id,
       (a.occurred_at at time zone t.time_zone)::date as day,
       a.owner_user_id, a.activity_type, count(*) as activities
  from sales_activities a
  join tenants t on t.tenant_id = a.tenant_id
 group by 1, 2, 3, 4;
grant select on v_kpi_activities_daily to bizos_authenticated;

-- Leads by channel per day.
create or replace view v_kpi_leads_by_channel_daily with (security_invoker = true) as
select tenant_id, day, channel, sum(leads)::bigint as leads
  from v_kpi_leads_daily
 group by 1, 2, 3;
grant select on v_kpi_leads_by_channel_daily to bizos_authenticated;

-- Marketing spend per channel per day, in rupiah (amount_idr: the amount
-- at the fx_rates rate of its day, marketing.sql).
create or replace view v_kpi_spend_daily with (security_invoker = true) as
select s.tenant_id, s.spend_date as day, s.channel, sum(coalesce(s.amount_idr, s.amount)) as spend
  from marketing_spend s
 group by 1, 2, 3;
grant select on v_kpi_spend_daily to bizos_authenticated;

-- Cost per lead per channel per day: spend / leads; NULL when there are no
-- leads (never a made-up number). Spend channels are free text; they match
-- lead channels by exact value.
create or replace view v_kpi_cpl_daily with (security_invoker = true) as
select coalesce(s.tenant_id, l.tenant_id) as tenant_id,
       coalesce(s.day, l.day) as day,
       coalesce(s.channel, l.channel) as channel,
       coalesce(s.spend, 0) as spend,
       coalesce(l.leads, 0) as leads,
       case when coalesce(l.leads, 0) > 0 then round(coalesce(s.spend, 0) / l.leads, 2) end as cpl
  from v_kpi_spend_daily s
  full join v_kpi_leads_by_channel_daily l
    on l.tenant_id = s.tenant_id and l.day = s.day and l.channel = s.channel;
grant select on v_kpi_cpl_daily to bizos_authenticated;

-- Revenue = subtotal (excluding PPN) of ISSUED or PAID invoices by issue
-- date (accrual basis: invoiced, not collected; DRAFT and VOID excluded),
-- per day, currency and customer.
create or replace view v_kpi_revenue_daily with (security_invoker = true) as
select i.tenant_id, i.issue_date as day, i.currency, i.customer_id,
       sum(i.subtotal) as revenue, count(*) as invoices
  from invoices i
 where i.status in ('ISSUED', 'PAID')
 group by 1, 2, 3, 4;
grant select on v_kpi_revenue_daily to bizos_authenticated;

-- New logos: each customer with the date of its first ISSUED or PAID
-- invoice; a customer is a new logo in the period containing that date.
create or replace view v_kpi_new_logos with (security_invoker = true) as
select i.tenant_id, i.customer_id, min(i.issue_date) as first_invoice_date
  from invoices i
 where i.status in ('ISSUED', 'PAID')
 group by 1, 2;
grant select on v_kpi_new_logos to bizos_authenticated;

-- The period of a payload: period_start + period_end (inclusive), or
-- period_month 'YYYY-MM'.
create or replace function kpi_payload_period(payload jsonb) returns daterange
language plpgsql
as $$
declare
  v_start date := payload_date(payload, 'period_start');
  v_end date := payload_date(payload, 'period_end');
  v_month text := payload_text(payload, 'period_month', false, 7);
begin
  if v_month is not null then
    if v_start is not null or v_end is not null then
      perform raise_field('period_month', 'send either period_month or period_start and period_end');
    end if;
    if v_month !~ '^\d{4}-(0[1-9]|1[0-2])$' then
      perform raise_field('period_month', 'must look like 2026-03');
    end if;
    v_start := (v_month || '-01')::date;
    return daterange(v_start, (v_start + interval '1 month')::date);
  end if;
  if v_start is null then
    perform raise_field('period_start', 'is required (or send period_month)');
  end if;
  if v_end is null then
    perform raise_field('period_end', 'is required (the last day of the period)');
  end if;
  if v_end < v_start then
    perform raise_field('period_end', format('%s is before period_start %s', v_end, v_start));
  end if;
  if v_end - v_start > 366 * 5 then
    perform raise_field('period_end', 'a target period spans at most five years');
  end if;
  return daterange(v_start, v_end, '[]');
end
$$;
grant execute on function kpi_payload_period(jsonb)
  to bizos_authenticated;

-- kpi_evidence_add(entry_id, object_id) -> {evidence_id, entry_id, object_id}
create or replace function kpi_evidence_add(entry_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  perform require_permission('kpi.entry.create');
  if not exists (select 1 from kpi_entries e where e.tenant_id = v_tenant and e.entry_id = kpi_evidence_add.entry_id) then
    raise exception using errcode = 'P0002', column = 'entry_id',
      message = format('entry_id: no KPI entry %s', kpi_evidence_add.entry_id);
  end if;
  insert into kpi_evidence (tenant_id, entry_id, object_id)
  values (v_tenant, kpi_evidence_add.entry_id, kpi_evidence_add.object_id)
  returning evidence_id into v_id;
  return jsonb_build_object('evidence_id', v_id, 'entry_id', kpi_evidence_add.entry_id,
                            'object_id', kpi_evidence_add.object_id);
end
$$;
grant execute on function kpi_evidence_add(uuid, uuid)
  to bizos_authenticated;

-- kpi_target_create({metric_key, assignee_user_id, period_start + period_end | period_month,
--   target_value, notes?}) -> {target_id, metric_key, assignee_user_id, period_start, period_end}
-- An overlapping target of the same metric and assignee fails with 23P01
-- (constraint kpi_targets_period_excl, column period).
create or replace function kpi_target_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_metric text;
  v_assignee uuid;
  v_period daterange;
  v_value numeric;
  v_notes text;
  d kpi_metric_definitions;
  clash kpi_targets;
  r kpi_targets;
begin
  perform require_permission('kpi.target.manage');
  perform payload_check(payload, '{"metric_key": "text", "assignee_user_id": "uuid", "period_start": "date", "period_end": "date", "period_month": "text", "target_value": "number", "notes": "text"}');
  v_metric := payload_text(payload, 'metric_key', true, 63);
  select * into d from kpi_metric_definitions k where k.tenant_id = v_tenant and k.metric_key = v_metric;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key', message = format('metric_key: no metric %s in this tenant', v_metric);
  end if;
  if not d.active then
    perform raise_field('metric_key', format('%s is inactive', v_metric));
  end if;
  if d.na_reason is not null then
    perform raise_field('metric_key', format('%s cannot be measured (%s); a target for it would never be tracked', v_metric, d.na_reason));
  end if;
  v_assignee := payload_uuid(payload, 'assignee_user_id', true);
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = v_assignee and p.active) then
    raise exception using errcode = 'P0002', column = 'assignee_user_id',
      message = 'assignee_user_id: no active user with this id in the tenant';
  end if;
  if bizos.app_role() <> 'super_admin' and not (v_assignee = any (my_team_ids())) then
    raise exception using errcode = '42501', column = 'assignee_user_id',
      message = 'assignee_user_id: you set targets only for yourself and your team';
  end if;
  v_period := kpi_payload_period(payload);
  v_value := payload_numeric(payload, 'target_value', true, 4);
  if v_value < 0 then
    perform raise_field('target_value', 'must be 0 or more');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);

  -- PostgreSQL checks an exclusion constraint after the row is in the
  -- index, so two concurrent overlapping inserts can wait for each other
  -- and one dies of a deadlock (40P01) instead of the overlap (23P01).
  -- Creates for one metric and assignee run one after the other; the
  -- second sees the first's committed row below.
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/kpi_target:' || v_metric || '/' || v_assignee::text, 42));

  select * into clash from kpi_targets t
   where t.tenant_id = v_tenant and t.metric_key = v_metric and t.assignee_user_id = v_assignee
     and t.period && v_period
   limit 1;
  if found then
    raise exception using errcode = '23P01', column = 'period', constraint = 'kpi_targets_period_excl',
      message = format('period: overlaps the target %s..%s of %s for this assignee',
                       lower(clash.period), upper(clash.period) - 1, v_metric);
  end if;
  begin
    insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value, notes)
    values (v_tenant, v_metric, v_assignee, v_period, v_value, v_notes)
    returning * into r;
  exception when exclusion_violation then
    -- A concurrent request won the race (or the clash is invisible to us).
    raise exception using errcode = '23P01', column = 'period', constraint = 'kpi_targets_period_excl',
      message = format('period: overlaps another target of %s for this assignee', v_metric);
  end;
  return jsonb_build_object('target_id', r.target_id, 'metric_key', r.metric_key,
                            'assignee_user_id', r.assignee_user_id,
                            'period_start', lower(r.period), 'period_end', upper(r.period) - 1,
                            'target_value', r.target_value);
end
$$;
grant execute on function kpi_target_create(jsonb)
  to bizos_authenticated;

-- The catalogue every tenant starts with.
create or replace function default_kpi_metric_definitions()
returns table (metric_key text, name text, department text, source text, unit text, direction text,
               aggregation text, assignee_scope text, description text, na_reason text)
language sql immutable
as $$
  values
    -- marketing
    ('leads_by_channel', 'Leads (by channel)', 'marketing', 'AUTO', 'count', 'higher', 'sum', 'assignee',
     'Leads created in the period (breakdown by channel); per assignee: leads whose sales owner is the assignee.', null),
    ('marketing_spend', 'Marketing spend', 'marketing', 'AUTO', 'IDR', 'lower', 'sum', 'tenant',
     'Sum of marketing_spend.amount with spend_date in the period.', null),
    ('cpl', 'Cost per lead', 'marketing', 'AUTO', 'IDR', 'lower', 'sum', 'tenant',
     'Marketing spend / leads created in the period; NA when there are no leads.', null),
    ('campaigns_launched', 'Campaigns launched', 'marketing', 'AUTO', 'count', 'higher', 'sum', 'tenant',
     'marketing_activity_events of type campaign_launch in the period.', null),
    ('mql_count', 'Marketing qualified leads', 'marketing', 'MANUAL', 'count', 'higher', 'sum', 'assignee',
     'MQLs counted by marketing (qualification happens outside the system).', null),
    ('social_engagement_rate', 'Social media engagement rate', 'marketing', 'IMPORTED', 'percent', 'higher', 'avg', 'tenant',
     'Engagement rate imported from the social media tools (average over the period).', null),
    -- sales
    ('revenue', 'Revenue (invoiced, excl. PPN)', 'sales', 'AUTO', 'IDR', 'higher', 'sum', 'assignee',
     'Subtotal (excluding PPN) of ISSUED or PAID IDR invoices issued in the period (accrual basis); per assignee: invoices of customers the assignee owns a prospect of.', null),
    ('cash_collected', 'Cash collected', 'sales', 'AUTO', 'IDR', 'higher', 'sum', 'assignee',
     'Payments received in the period on IDR invoices; per assignee: of customers the assignee owns.', null),
    ('new_logos', 'New logos', 'sales', 'AUTO', 'count', 'higher', 'sum', 'assignee',
     'Customers whose first ISSUED or PAID invoice was issued in the period; per assignee: customers the assignee owns.', null),
    ('sales_activities', 'Sales activities', 'sales', 'AUTO', 'count', 'higher', 'sum', 'assignee',
     'Sales activities (visits, calls, meetings, …) that occurred in the period, by owner.', null),
    ('customer_visits', 'Customer visits', 'sales', 'AUTO', 'count', 'higher', 'sum', 'assignee',
     'Sales activities of type visit (with photo and GPS evidence) in the period, by owner.', null),
    ('win_rate', 'Win rate', 'sales', 'AUTO', 'percent', 'higher', 'sum', 'assignee',
     'Won deals / closed deals.',
     'there is no deal (opportunity) table: won and lost deals are not recorded, so a win rate cannot be computed'),
    ('cycle_days', 'Sales cycle (days)', 'sales', 'AUTO', 'days', 'lower', 'sum', 'assignee',
     'Days from opportunity creation to close.',
     'there is no deal (opportunity) table with open and close dates, so the sales cycle cannot be computed'),
    ('quotations_sent', 'Quotations sent', 'sales', 'MANUAL', 'count', 'higher', 'sum', 'assignee',
     'Quotations sent to customers, entered by the salesperson.', null),
    -- ops
    ('first_response_median_minutes', 'First response time (median)', 'ops', 'AUTO', 'minutes', 'lower', 'sum', 'tenant',
     'Median minutes from ticket creation to the first response by someone other than the creator, over the tickets created in the period that have a response.', null),
    ('sla_breach_rate', 'SLA breach rate', 'ops', 'AUTO', 'percent', 'lower', 'sum', 'tenant',
     'Tickets created in the period that breached their SLA / tickets created in the period that have an SLA policy x 100.', null),
    ('customer_satisfaction', 'Customer satisfaction (CSAT)', 'ops', 'IMPORTED', 'score', 'higher', 'avg', 'tenant',
     'CSAT score imported from the survey tool (average over the period).', null),
    ('on_time_delivery_rate', 'On-time delivery rate', 'ops', 'MANUAL', 'percent', 'higher', 'avg', 'tenant',
     'Share of shipments delivered on time, entered by ops (average over the period).', null),
    -- finance
    ('dso_rolling_30', 'DSO (rolling 30 days)', 'finance', 'AUTO', 'days', 'lower', 'last', 'tenant',
     'On the last day of the period (or today): AR outstanding / credit sales of the 30 days up to that day x 30 (v_dso_rolling_30); NA without credit sales.', null),
    ('ar_overdue_amount', 'Overdue receivables', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'tenant',
     'On the last day of the period (or today): outstanding amount of IDR invoices past their due date.', null),
    ('ar_aging_current', 'AR aging: current', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'assignee',
     'On the last day of the period (or today): outstanding amount of IDR invoices not yet past their due date (aging bucket current of v_ar_aging); per assignee: invoices of customers the assignee owns.', null),
    ('ar_aging_1_30', 'AR aging: 1-30 days past due', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'assignee',
     'On the last day of the period (or today): outstanding amount of IDR invoices 1 to 30 days past their due date (bucket 1-30 of v_ar_aging); per assignee: invoices of customers the assignee owns.', null),
    ('ar_aging_31_60', 'AR aging: 31-60 days past due', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'assignee',
     'On the last day of the period (or today): outstanding amount of IDR invoices 31 to 60 days past their due date (bucket 31-60 of v_ar_aging); per assignee: invoices of customers the assignee owns.', null),
    ('ar_aging_61_90', 'AR aging: 61-90 days past due', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'assignee',
     'On the last day of the period (or today): outstanding amount of IDR invoices 61 to 90 days past their due date (bucket 61-90 of v_ar_aging); per assignee: invoices of customers the assignee owns.', null),
    ('ar_aging_over_90', 'AR aging: over 90 days past due', 'finance', 'AUTO', 'IDR', 'lower', 'last', 'assignee',
     'On the last day of the period (or today): outstanding amount of IDR invoices more than 90 days past their due date (bucket >90 of v_ar_aging); per assignee: invoices of customers the assignee owns.', null),
    ('collection_rate', 'Collection rate', 'finance', 'AUTO', 'percent', 'higher', 'sum', 'tenant',
     'Payments received in the period / (AR outstanding at the start of the period + credit sales in the period) x 100; NA when that base is 0.', null),
    ('budget_variance', 'Budget variance', 'finance', 'IMPORTED', 'percent', 'lower', 'last', 'tenant',
     'Variance against budget imported from the accounting system (latest value in the period).', null)
$$;

-- `manager` and everyone whose profiles.manager_user_id chain leads to them
-- (my_team_ids() for any user of the caller's tenant: team_of()).
create or replace function kpi_team_of(manager uuid) returns uuid[]
language sql stable
as $$
  select team_of(bizos.tenant_id(), manager)
$$;
select pin_search_path('kpi_team_of(uuid)');
comment on function kpi_team_of(uuid) is 'A manager and everyone under them via profiles.manager_user_id (the team of a team KPI).';
grant execute on function kpi_team_of(uuid) to bizos_authenticated;

-- The open receivables of the caller's tenant at the end of `as_of` (the
-- ledger v_ar_ledger, the one definition of AR), one
-- row per invoice (what the caller may read): issued on or before as_of,
-- ISSUED or PAID now (DRAFT and VOID are never receivables), total minus
-- the payments made on or before as_of, when that is > 0. Buckets as in
-- v_invoice_outstanding: current (not past due), 1-30, 31-60, 61-90, >90.
create or replace function kpi_ar_open_at(as_of date)
returns table (invoice_id uuid, customer_id uuid, currency text, issue_date date, due_date date,
               outstanding numeric, days_past_due integer, aging_bucket text)
language sql stable
as $$
  select i.invoice_id, i.customer_id, i.currency, i.issue_date, i.due_date, l.outstanding,
         greatest(as_of - i.due_date, 0),
         case when as_of <= i.due_date then 'current'
              when as_of - i.due_date <= 30 then '1-30'
              when as_of - i.due_date <= 60 then '31-60'
              when as_of - i.due_date <= 90 then '61-90'
              else '>90' end
    from (select l.invoice_id, sum(l.amount) as outstanding
            from v_ar_ledger l
           where l.tenant_id = bizos.tenant_id() and l.entry_date <= as_of
           group by l.invoice_id) l
    join invoices i on i.tenant_id = bizos.tenant_id() and i.invoice_id = l.invoice_id
   where l.outstanding > 0
$$;
comment on function kpi_ar_open_at(date) is
  'Open receivables at the end of a day from the ledger v_ar_ledger (issued by then, not DRAFT/VOID, minus payments by then), with days past due and aging bucket.';
grant execute on function kpi_ar_open_at(date) to bizos_authenticated;

-- AR of IDR invoices at the end of `day` (optionally only past due): the
-- sum of kpi_ar_open_at(day), so every AR number of the KPI module (DSO,
-- overdue, collection rate, aging buckets) has one definition.
create or replace function kpi_ar_at(day date, overdue_only boolean default false) returns numeric
language sql stable
as $$
  select coalesce(sum(a.outstanding), 0)
    from kpi_ar_open_at(day) a
   where a.currency = 'IDR' and (not overdue_only or a.days_past_due > 0)
$$;
grant execute on function kpi_ar_at(date, boolean) to bizos_authenticated;

-- kpi_actual(metric_key, user, period, scope) -> jsonb
--   {metric_key, assignee_user_id, period, as_of, scope, source, unit,
--    value, status, reason[, breakdown][, team_size]}
-- scope 'assignee' (the user's own rows), 'team' (rows of kpi_team_of(user))
-- or 'tenant' (user NULL). A metric whose catalogue scope is `tenant` is
-- measured tenant-wide whatever the requested scope; the answer's `scope`
-- says which scope the value is. as_of: the last day of the period, not
-- after the tenant's today. Security invoker: computed from what the
-- caller may see.
create or replace function kpi_actual(metric_key text, assignee uuid, period daterange, scope text) returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  d kpi_metric_definitions;
  v_from date;
  v_to date;          -- last day of the period
  v_today date;       -- the tenant's today
  v_asof date;        -- last day of the period, not after today
  v_scope text;
  v_members uuid[];   -- NULL: the whole tenant
  v_value numeric;
  v_reason text;
  v_breakdown jsonb;
  v_bucket text;
  n numeric;
  m numeric;
  v_tz text;
  v_entries bigint;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if kpi_actual.metric_key is null then
    perform raise_field('metric_key', 'is required');
  end if;
  if period is null or isempty(period) or lower_inf(period) or upper_inf(period) then
    perform raise_field('period', 'must be a bounded, non-empty date range such as [2026-01-01,2026-02-01)');
  end if;
  if kpi_actual.scope is null or kpi_actual.scope not in ('assignee', 'team', 'tenant') then
    perform raise_field('scope', 'must be assignee, team or tenant');
  end if;
  if kpi_actual.scope = 'tenant' and assignee is not null then
    perform raise_field('assignee_user_id', 'must be empty for the scope tenant');
  end if;
  if kpi_actual.scope <> 'tenant' and assignee is null then
    perform raise_field('assignee_user_id', format('is required for the scope %s', kpi_actual.scope));
  end if;
  select t.time_zone, (pg_catalog.now() at time zone t.time_zone)::date into v_tz, v_today
    from tenants t where t.tenant_id = v_tenant;
  if v_today is null then
    raise exception using errcode = '42501', message = 'the tenant of the request is not visible';
  end if;
  v_from := lower(period);
  v_to := upper(period) - 1;
  v_asof := least(v_to, v_today);
  select * into d from kpi_metric_definitions k
   where k.tenant_id = v_tenant and k.metric_key = kpi_actual.metric_key;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key',
      message = format('metric_key: no metric %s in this tenant', kpi_actual.metric_key);
  end if;
  v_scope := case when d.assignee_scope = 'tenant' then 'tenant' else kpi_actual.scope end;
  v_members := case v_scope when 'assignee' then array[assignee]
                            when 'team' then kpi_team_of(assignee) end;

  if d.na_reason is not null then
    v_reason := d.na_reason;
  elsif d.source in ('MANUAL', 'IMPORTED') then
    select count(*),
           case d.aggregation
             when 'sum' then sum(e.value)
             when 'avg' then round(avg(e.value), 4)
             else (array_agg(e.value order by e.entry_date desc, e.created_at desc))[1]
           end
      into v_entries, v_value
      from kpi_entries e
     where e.tenant_id = v_tenant and e.metric_key = d.metric_key
       and e.entry_date between v_from and v_to
       and (v_members is null or e.assignee_user_id = any (v_members));
    if v_entries = 0 then
      v_reason := format('no %s entries for this metric in the period', d.source);
    end if;
  else
    case d.metric_key
    when 'leads_by_channel' then
      select coalesce(sum(l.leads), 0), coalesce(jsonb_object_agg(l.channel, l.leads), '{}')
        into v_value, v_breakdown
        from (select x.channel, sum(x.leads)::bigint as leads from v_kpi_leads_daily x
               where x.tenant_id = v_tenant and x.day between v_from and v_to
                 and (v_members is null or x.sales_owner_user_id = any (v_members))
               group by x.channel) l;
    when 'marketing_spend' then
      select coalesce(sum(s.spend), 0), coalesce(jsonb_object_agg(s.channel, s.spend), '{}')
        into v_value, v_breakdown
        from (select x.channel, sum(x.spend) as spend from v_kpi_spend_daily x
               where x.tenant_id = v_tenant and x.day between v_from and v_to group by x.channel) s;
    when 'cpl' then
      select coalesce(sum(x.spend), 0), coalesce(sum(x.leads), 0) into n, m
        from v_kpi_cpl_daily x
       where x.tenant_id = v_tenant and x.day between v_from and v_to;
      if m = 0 then
        v_reason := 'no leads in the period: cost per lead is undefined';
      else
        v_value := round(n / m, 2);
      end if;
    when 'campaigns_launched' then
      select count(*) into v_value from marketing_activity_events e
       where e.tenant_id = v_tenant and e.event_type = 'campaign_launch'
         and (e.occurred_at at time zone v_tz)::date between v_from and v_to;
    when 'revenue' then
      select coalesce(sum(r.revenue), 0) into v_value
        from v_kpi_revenue_daily r
       where r.tenant_id = v_tenant and r.currency = 'IDR' and r.day between v_from and v_to
         and (v_members is null or exists (
               select 1 from prospects p where p.tenant_id = r.tenant_id and p.customer_id = r.customer_id
                                           and p.owner_user_id = any (v_members)));
    when 'cash_collected' then
      select coalesce(sum(p.amount), 0) into v_value
        from payments p
        join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
       where p.tenant_id = v_tenant and i.currency = 'IDR' and p.paid_on between v_from and v_to
         and (v_members is null or exists (
               select 1 from prospects q where q.tenant_id = i.tenant_id and q.customer_id = i.customer_id
                                           and q.owner_user_id = any (v_members)));
    when 'new_logos' then
      select count(*) into v_value
        from v_kpi_new_logos g
       where g.tenant_id = v_tenant and g.first_invoice_date between v_from and v_to
         and (v_members is null or exists (
               select 1 from prospects p where p.tenant_id = g.tenant_id and p.customer_id = g.customer_id
                                           and p.owner_user_id = any (v_members)));
    when 'sales_activities' then
      select coalesce(sum(a.activities), 0) into v_value
        from v_kpi_activities_daily a
       where a.tenant_id = v_tenant and a.day between v_from and v_to
         and (v_members is null or a.owner_user_id = any (v_members));
    when 'customer_visits' then
      select coalesce(sum(a.activities), 0) into v_value
        from v_kpi_activities_daily a
       where a.tenant_id = v_tenant and a.activity_type = 'visit' and a.day between v_from and v_to
         and (v_members is null or a.owner_user_id = any (v_members));
    when 'first_response_median_minutes' then
      select round(percentile_cont(0.5) within group (order by f.first_response_minutes)::numeric, 2)
        into v_value
        from v_ticket_first_response f
       where f.tenant_id = v_tenant and f.first_response_minutes is not null
         and (f.created_at at time zone v_tz)::date between v_from and v_to;
      if v_value is null then
        v_reason := 'no ticket created in the period has a first response yet';
      end if;
    when 'sla_breach_rate' then
      select count(*) filter (where s.sla_status = 'breached'), count(*) into n, m
        from v_sla_status s
       where s.tenant_id = v_tenant and s.sla_status is not null
         and (s.created_at at time zone v_tz)::date between v_from and v_to;
      if m = 0 then
        v_reason := 'no ticket with an SLA policy was created in the period';
      else
        v_value := round(n * 100 / m, 2);
      end if;
    when 'dso_rolling_30' then
      -- Same formula as v_dso_rolling_30 (IDR), on day v_asof.
      n := kpi_ar_at(v_asof);
      select coalesce(sum(i.total), 0) into m from invoices i
       where i.tenant_id = v_tenant and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
         and i.issue_date between v_asof - 29 and v_asof;
      if m = 0 then
        v_reason := format('no credit sales in the 30 days up to %s: DSO is undefined', v_asof);
      else
        v_value := round(n / m * 30, 1);
      end if;
      v_breakdown := jsonb_build_object('as_of', v_asof, 'ar_outstanding', n, 'credit_sales_30d', m);
    when 'ar_overdue_amount' then
      v_value := kpi_ar_at(v_asof, true);
      v_breakdown := jsonb_build_object('as_of', v_asof);
    when 'ar_aging_current', 'ar_aging_1_30', 'ar_aging_31_60', 'ar_aging_61_90', 'ar_aging_over_90' then
      v_bucket := case d.metric_key when 'ar_aging_current' then 'current' when 'ar_aging_1_30' then '1-30'
                                    when 'ar_aging_31_60' then '31-60' when 'ar_aging_61_90' then '61-90'
                                    else '>90' end;
      select coalesce(sum(a.outstanding), 0), count(*) into v_value, n
        from kpi_ar_open_at(v_asof) a
       where a.currency = 'IDR' and a.aging_bucket = v_bucket
         and (v_members is null or exists (
               select 1 from prospects p where p.tenant_id = v_tenant and p.customer_id = a.customer_id
                                           and p.owner_user_id = any (v_members)));
      v_breakdown := jsonb_build_object('as_of', v_asof, 'bucket', v_bucket, 'open_invoices', n);
    when 'collection_rate' then
      if v_from > v_today then
        v_reason := 'the period has not started';
      else
        n := kpi_ar_at(v_from - 1);
        select coalesce(sum(i.total), 0) into m from invoices i
         where i.tenant_id = v_tenant and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
           and i.issue_date between v_from and v_asof;
        select coalesce(sum(p.amount), 0) into v_value
          from payments p join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
         where p.tenant_id = v_tenant and i.currency = 'IDR' and i.status in ('ISSUED', 'PAID')
           and p.paid_on between v_from and v_asof;
        v_breakdown := jsonb_build_object('collected', v_value, 'ar_at_start', n, 'credit_sales', m);
        if n + m = 0 then
          v_value := null;
          v_reason := 'nothing was receivable in the period (no opening AR and no credit sales)';
        else
          v_value := round(v_value * 100 / (n + m), 2);
        end if;
      end if;
    else
      v_reason := format('no computation is defined for the AUTO metric %s', d.metric_key);
    end case;
  end if;

  return jsonb_strip_nulls(jsonb_build_object(
    'metric_key', d.metric_key,
    'assignee_user_id', assignee,
    'period', jsonb_build_object('from', v_from, 'to', v_to),
    'as_of', v_asof,
    'scope', v_scope,
    'team_size', case when v_scope = 'team' then cardinality(v_members) end,
    'source', d.source,
    'unit', d.unit,
    'breakdown', v_breakdown))
    || jsonb_build_object(
    'value', case when v_reason is null then v_value end,
    'status', case when v_reason is null then 'ok' else 'na' end,
    'reason', v_reason);
end
$$;
grant execute on function kpi_actual(text, uuid, daterange, text) to bizos_authenticated;

-- The original signature: the assignee's value (scope assignee), or the
-- tenant's for a NULL assignee.
create or replace function kpi_actual(metric_key text, assignee uuid, period daterange) returns jsonb
language sql stable
as $$
  select kpi_actual($1, $2, $3, case when $2 is null then 'tenant' else 'assignee' end)
$$;
grant execute on function kpi_actual(text, uuid, daterange) to bizos_authenticated;

-- kpi_actuals(metric_key, assignee, period, scope) -> jsonb array: kpi_actual
-- of every active metric of the tenant (or of the one named), by metric key;
-- scope defaults as in the three-argument form. GET /api/kpi/actuals.
-- The metrics are read first and measured one by one: on Citus a function
-- that reads distributed tables cannot run inside a query on a shard.
create or replace function kpi_actuals(metric_key text, assignee uuid, period daterange, scope text)
returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_keys text[];
  v_key text;
  v_items jsonb := '[]';
begin
  select coalesce(array_agg(d.metric_key order by d.metric_key), '{}') into v_keys
    from kpi_metric_definitions d
   where d.tenant_id = v_tenant and d.active
     and (kpi_actuals.metric_key is null or d.metric_key = kpi_actuals.metric_key);
  foreach v_key in array v_keys loop
    v_items := v_items || jsonb_build_array(kpi_actual(v_key, assignee, period,
      coalesce(scope, case when assignee is null then 'tenant' else 'assignee' end)));
  end loop;
  return v_items;
end
$$;
select pin_search_path('kpi_actuals(text, uuid, daterange, text)');
grant execute on function kpi_actuals(text, uuid, daterange, text) to bizos_authenticated;

create or replace function kpi_entries_default_entry_date() returns trigger
language plpgsql
as $$
begin
  if new.entry_date is null then
    new.entry_date := tenant_today(new.tenant_id);
  end if;
  return new;
end
$$;
select pin_search_path('kpi_entries_default_entry_date()');
comment on function kpi_entries_default_entry_date() is 'kpi_entries.entry_date defaults to the tenant''s today.';

-- kpi_entry_create({metric_key, value, entry_date?, assignee_user_id?, source?: MANUAL|IMPORTED,
--   import_id?, import_row?, notes?, evidence?: [{object_key, file_name, content_type, size_bytes, sha256}]})
--   -> {entry_id, replayed, evidence_ids}
-- IMPORTED entries carry import_id + import_row; processing the same import
-- row again updates that entry instead of adding one (replayed = true).
create or replace function kpi_entry_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_metric text;
  v_value numeric;
  v_date date;
  v_assignee uuid;
  v_source text;
  v_import uuid;
  v_import_row integer;
  v_notes text;
  v_evidence jsonb;
  ev jsonb;
  i integer := 0;
  d kpi_metric_definitions;
  v_entry uuid;
  v_replayed boolean := false;
  v_ids jsonb := '[]';
  v_evid uuid;
  v_object uuid;
begin
  perform require_permission('kpi.entry.create');
  if v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"metric_key": "text", "value": "number", "entry_date": "date", "assignee_user_id": "uuid", "source": "text", "import_id": "uuid", "import_row": "integer", "notes": "text", "evidence": "uuid[]"}');
  v_metric := payload_text(payload, 'metric_key', true, 63);
  select * into d from kpi_metric_definitions k where k.tenant_id = v_tenant and k.metric_key = v_metric;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key', message = format('metric_key: no metric %s in this tenant', v_metric);
  end if;
  if d.source = 'AUTO' then
    perform raise_field('metric_key', format('%s is computed automatically from the data; it takes no entries', v_metric));
  end if;
  if not d.active then
    perform raise_field('metric_key', format('%s is inactive', v_metric));
  end if;
  v_value := payload_numeric(payload, 'value', true, 4);
  if d.unit in ('count', 'IDR', 'minutes', 'days') and v_value < 0 then
    perform raise_field('value', format('a %s cannot be negative', d.unit));
  end if;
  v_date := coalesce(payload_date(payload, 'entry_date'), tenant_today(v_tenant));
  if v_date > tenant_today(v_tenant) then
    perform raise_field('entry_date', format('%s is in the future; actuals are entered for days that happened', v_date));
  end if;
  v_assignee := coalesce(payload_uuid(payload, 'assignee_user_id'), v_uid);
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = v_assignee and p.active) then
    raise exception using errcode = 'P0002', column = 'assignee_user_id',
      message = 'assignee_user_id: no active user with this id in the tenant';
  end if;
  if v_assignee <> v_uid and not (bizos.app_role() = 'super_admin'
       or (bizos.app_role() in ('marketing_manager', 'sales_manager') and v_assignee = any (my_team_ids()))) then
    raise exception using errcode = '42501', column = 'assignee_user_id',
      message = 'assignee_user_id: you enter actuals for yourself (managers also for their team)';
  end if;
  v_source := vocabulary_check('kpi_entry_sources',
                               upper(coalesce(payload_text(payload, 'source', false, 10), 'MANUAL')), 'source');
  v_import := payload_uuid(payload, 'import_id');
  v_import_row := payload_integer(payload, 'import_row');
  if v_source = 'IMPORTED' and (v_import is null or v_import_row is null) then
    perform raise_field(case when v_import is null then 'import_id' else 'import_row' end,
                        'is required for IMPORTED entries');
  end if;
  if v_source = 'MANUAL' and (v_import is not null or v_import_row is not null) then
    perform raise_field(case when v_import is not null then 'import_id' else 'import_row' end,
                        'only IMPORTED entries come from an import');
  end if;
  if v_import_row is not null and v_import_row < 1 then
    perform raise_field('import_row', 'must be 1 or more');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);
  v_evidence := coalesce(payload -> 'evidence', '[]');
  if jsonb_typeof(v_evidence) = 'null' then
    v_evidence := '[]';
  end if;
  if jsonb_typeof(v_evidence) <> 'array' then
    perform raise_field('evidence', 'must be a list of files');
  end if;
  if jsonb_array_length(v_evidence) > 20 then
    perform raise_field('evidence', 'at most 20 files per entry');
  end if;
  -- Validate every file before writing anything: uploaded objects of the
  -- caller in bucket kpi-evidence (POST /api/kpi/evidence uploads one).
  for ev in select e from jsonb_array_elements(v_evidence) e loop
    if jsonb_typeof(ev) <> 'string' or (ev #>> '{}') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      perform raise_field(format('evidence[%s]', i), 'must be the object_id of an uploaded file');
    end if;
    if not exists (select 1 from objects o
                    where o.tenant_id = v_tenant and o.object_id = (ev #>> '{}')::uuid
                      and o.bucket = 'kpi-evidence' and o.created_by = v_uid) then
      raise exception using errcode = 'P0002', column = format('evidence[%s]', i),
        message = format('evidence[%s]: no file %s of yours in bucket kpi-evidence', i, ev #>> '{}');
    end if;
    i := i + 1;
  end loop;

  if v_import is not null then
    select e.entry_id into v_entry from kpi_entries e
     where e.tenant_id = v_tenant and e.import_id = v_import and e.import_row = v_import_row
     for update;
    if found then
      update kpi_entries e set value = v_value, entry_date = v_date, notes = v_notes
       where e.tenant_id = v_tenant and e.entry_id = v_entry;
      v_replayed := true;
    end if;
  end if;
  if v_entry is null then
    insert into kpi_entries (tenant_id, metric_key, entry_date, assignee_user_id, value, source, notes, import_id, import_row)
    values (v_tenant, v_metric, v_date, v_assignee, v_value, v_source, v_notes, v_import, v_import_row)
    returning entry_id into v_entry;
  end if;

  for ev in select e from jsonb_array_elements(v_evidence) e loop
    v_object := (ev #>> '{}')::uuid;
    insert into kpi_evidence (tenant_id, entry_id, object_id)
    values (v_tenant, v_entry, v_object)
    on conflict (tenant_id, object_id) do nothing
    returning evidence_id into v_evid;
    if v_evid is null then
      select k.evidence_id into v_evid from kpi_evidence k
       where k.tenant_id = v_tenant and k.object_id = v_object and k.entry_id = v_entry;
      if v_evid is null then
        raise exception using errcode = '23505', column = 'evidence', constraint = 'kpi_evidence_object_id_key',
          message = format('evidence: file %s already belongs to another entry', v_object);
      end if;
    end if;
    v_ids := v_ids || to_jsonb(v_evid);
    v_evid := null;
  end loop;

  return jsonb_build_object('entry_id', v_entry, 'replayed', v_replayed, 'evidence_ids', v_ids);
end
$$;
grant execute on function kpi_entry_create(jsonb)
  to bizos_authenticated;

-- THE state of a KPI target on a day (the caller passes the tenant's
-- today, never current_date): a target is judged only once its period is
-- over, and the period's last day counts as the period.
--   not_started  today is before the period's first day
--   in_progress  today is within the period (first .. last day)
--   achieved     the period is over and the actual reached the target
--                (at least it for `higher`, at most it for `lower`)
--   missed       the period is over and the actual did not
--   na           the period is over and the actual is NA (its reason says
--                why): neither achieved nor missed
-- NULL without a day (a row of another tenant in v_kpi_actual_vs_target).
-- `achieved` of every KPI report is true for achieved, false for missed
-- and NULL otherwise (kpi_target_achieved).
create or replace function kpi_target_status(period daterange, today date, direction text,
                                             target_value numeric, actual_value numeric, actual_status text)
returns text
language sql immutable
as $$
  select case
           when today is null then null
           when today < lower(period) then 'not_started'
           when today < upper(period) then 'in_progress'
           when actual_status is distinct from 'ok' or actual_value is null then 'na'
           when direction = 'lower' then case when actual_value <= target_value then 'achieved' else 'missed' end
           else case when actual_value >= target_value then 'achieved' else 'missed' end
         end
$$;
grant execute on function kpi_target_status(daterange, date, text, numeric, numeric, text)
  to bizos_authenticated, bizos_worker;
comment on function kpi_target_status(daterange, date, text, numeric, numeric, text) is
  'The state of a KPI target on a day (the tenant''s today): not_started, in_progress, then achieved, missed or na once its period is over.';

-- achieved of a target state: true / false only once the period is over
-- with a measurable actual; NULL while it has not started or is running.
create or replace function kpi_target_achieved(target_status text) returns boolean
language sql immutable
as $$
  select case target_status when 'achieved' then true when 'missed' then false end
$$;
grant execute on function kpi_target_achieved(text) to bizos_authenticated, bizos_worker;
comment on function kpi_target_achieved(text) is
  'achieved of a KPI target state: true for achieved, false for missed, NULL for not_started, in_progress and na.';

-- KPI actual vs target (product view): every target the caller may read,
-- with kpi_actual() of its metric, assignee and period (the one computation
-- of an actual; NA with the reason when undefined), and its progress on
-- the tenant's today: progress_pct = actual / target x 100 (1 decimal;
-- NULL when NA or the target is 0), target_status (kpi_target_status) and
-- achieved (kpi_target_achieved). kpi_actual() computes for the tenant of
-- the request claims, so the actual and progress columns are NULL on a row
-- of another tenant (only a reader not subject to RLS, the owner, sees
-- such rows). New columns go at the end (create or replace view).
create or replace view v_kpi_actual_vs_target with (security_invoker = true) as
select t.tenant_id,
       t.target_id,
       t.metric_key,
       d.name as metric_name,
       d.department,
       d.source,
       d.unit,
       d.direction,
       t.assignee_user_id,
       lower(t.period) as period_start,
       upper(t.period) - 1 as period_end,
       t.target_value,
       (a.actual ->> 'value')::numeric as actual_value,
       a.actual ->> 'status' as status,
       a.actual ->> 'reason' as reason,
       a.actual ->> 'scope' as scope,
       a.actual -> 'breakdown' as breakdown,
       case when a.actual ->> 'status' = 'ok' and t.target_value > 0
            then round((a.actual ->> 'value')::numeric / t.target_value * 100, 1) end as progress_pct,
       kpi_target_achieved(s.target_status) as achieved,
       s.target_status
  from kpi_targets t
  join kpi_metric_definitions d on d.tenant_id = t.tenant_id and d.metric_key = t.metric_key
 cross join lateral (
   select case when t.tenant_id = bizos.tenant_id()
               then kpi_actual(t.metric_key, t.assignee_user_id, t.period) end as actual,
          case when t.tenant_id = bizos.tenant_id() then tenant_today(t.tenant_id) end as today) a
 cross join lateral (
   select kpi_target_status(t.period, a.today, d.direction, t.target_value,
                            (a.actual ->> 'value')::numeric, a.actual ->> 'status') as target_status) s;
comment on view v_kpi_actual_vs_target is
  'Per KPI target: target_value and kpi_actual() over the target''s period for its assignee (value, or status na with the reason), progress_pct, and on the tenant''s today target_status (not_started, in_progress, achieved, missed, na) and achieved (true/false only once the period is over); actuals of the claims'' tenant only.';
grant select on v_kpi_actual_vs_target to bizos_authenticated;

-- GET /api/kpi/targets: the targets the caller may read (kpi_targets' RLS),
-- with the period as first and last day and their metric's name, unit and
-- direction.
create or replace view v_kpi_targets with (security_invoker = true) as
select t.tenant_id,
       t.target_id,
       t.metric_key,
       d.name as metric_name,
       d.unit,
       d.direction,
       t.assignee_user_id,
       lower(t.period) as period_start,
       upper(t.period) - 1 as period_end,
       t.target_value,
       t.notes,
       t.created_by,
       t.created_at,
       t.updated_at
  from kpi_targets t
  join kpi_metric_definitions d on d.tenant_id = t.tenant_id and d.metric_key = t.metric_key;
comment on view v_kpi_targets is
  'KPI targets in the caller''s scope with their period as first and last day (inclusive) and the metric''s name, unit and direction.';
grant select on v_kpi_targets to bizos_authenticated;

-- kpi_progress(assignee, from, to, metric) -> [{...v_kpi_actual_vs_target}]:
-- GET /api/kpi/progress. The targets the caller may read whose period
-- overlaps from..to (inclusive), of one assignee and metric when given,
-- each with its actual over the target's own period and its progress
-- (v_kpi_actual_vs_target: progress_pct, target_status, achieved; one
-- definition for the API, the analytics report and the digest). Ordered
-- by period, metric, assignee.
create or replace function kpi_progress(assignee uuid, from_day date, to_day date, metric text default null)
returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(to_jsonb(v)
         order by v.period_start, v.metric_key, v.assignee_user_id, v.target_id), '[]'::jsonb)
    from v_kpi_actual_vs_target v
   where v.tenant_id = bizos.tenant_id()
     and (kpi_progress.assignee is null or v.assignee_user_id = kpi_progress.assignee)
     and (kpi_progress.metric is null or v.metric_key = kpi_progress.metric)
     and v.period_end >= kpi_progress.from_day
     and v.period_start <= kpi_progress.to_day
$$;
select pin_search_path('kpi_progress(uuid, date, date, text)');
grant execute on function kpi_progress(uuid, date, date, text) to bizos_authenticated;
comment on function kpi_progress(uuid, date, date, text) is
  'Targets (in the caller''s scope) overlapping from..to with their actual and progress (v_kpi_actual_vs_target): progress_pct, target_status (not_started, in_progress, achieved, missed, na) and achieved (null until the period is over).';
