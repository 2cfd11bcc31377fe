-- KPI (KPI-1..3; seed 004 §4C): metric catalogue per tenant, targets that
-- cannot overlap, MANUAL/IMPORTED actuals with evidence, AUTO actuals from
-- views, and kpi_actual() that reports NA instead of inventing a number.
--
-- Depends on V2 (permissions, my_team_ids, pin_search_path), V3 (leads,
-- prospects, sales_activities, marketing_spend), V4 (v_ticket_first_response,
-- v_sla_status, business_time_zone) and V5 (invoices, payments, payload_*).
--
-- Days: timestamps are cut into days in the tenant's business time zone
-- (business_time_zone(), V4; Asia/Jakarta by default). Money metrics are
-- in IDR only (other currencies are not converted and not added).

-- ---------------------------------------------------------------------------
-- Metric definitions
-- ---------------------------------------------------------------------------

create table kpi_metric_definitions (
  tenant_id      uuid        not null,
  metric_key     text        not null,
  name           text        not null,
  department     text        not null,
  source         text        not null,
  unit           text        not null,
  direction      text        not null,
  aggregation    text        not null default 'sum',
  assignee_scope text        not null default 'tenant',
  description    text        not null,
  na_reason      text,
  active         boolean     not null default true,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  constraint kpi_metric_definitions_pkey primary key (tenant_id, metric_key),
  constraint kpi_metric_definitions_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint kpi_metric_definitions_metric_key_check check (metric_key ~ '^[a-z][a-z0-9_]{1,62}$'),
  constraint kpi_metric_definitions_name_check check (length(btrim(name)) between 1 and 200),
  constraint kpi_metric_definitions_department_check check (department in ('marketing', 'sales', 'ops', 'finance')),
  constraint kpi_metric_definitions_source_check check (source in ('AUTO', 'MANUAL', 'IMPORTED')),
  constraint kpi_metric_definitions_unit_check check (unit in ('count', 'IDR', 'percent', 'minutes', 'days', 'score')),
  constraint kpi_metric_definitions_direction_check check (direction in ('higher', 'lower')),
  constraint kpi_metric_definitions_aggregation_check check (aggregation in ('sum', 'avg', 'last')),
  constraint kpi_metric_definitions_assignee_scope_check check (assignee_scope in ('assignee', 'tenant')),
  constraint kpi_metric_definitions_na_reason_check check (na_reason is null or source = 'AUTO')
);
comment on table kpi_metric_definitions is 'KPI catalogue per tenant: source AUTO (computed from views) / MANUAL / IMPORTED (kpi_entries).';
comment on column kpi_metric_definitions.aggregation is 'How entries of a MANUAL/IMPORTED metric combine over a period: sum, avg or last (latest entry_date).';
comment on column kpi_metric_definitions.assignee_scope is 'assignee: AUTO value is filtered to the assignee''s own rows; tenant: the value is tenant-wide whoever the assignee is.';
comment on column kpi_metric_definitions.na_reason is 'Set for AUTO metrics the data cannot define: kpi_actual reports status na with this reason.';

create trigger kpi_metric_definitions_stamp_timestamps
  before insert or update on kpi_metric_definitions
  for each row execute function stamp_timestamps();

-- The catalogue every tenant starts with.
create function default_kpi_metric_definitions()
returns table (metric_key text, name text, department text, source text, unit text, direction text,
               aggregation text, assignee_scope text, description text, na_reason text)
language sql immutable
as $$
  values
    -- marketing
    ('leads_by_channel', 'Leads (by channel)', 'marketing', 'AUTO', 'count', 'higher', 'sum', 'tenant',
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
    ('collection_rate', 'Collection rate', 'finance', 'AUTO', 'percent', 'higher', 'sum', 'tenant',
     'Payments received in the period / (AR outstanding at the start of the period + credit sales in the period) x 100; NA when that base is 0.', null),
    ('budget_variance', 'Budget variance', 'finance', 'IMPORTED', 'percent', 'lower', 'last', 'tenant',
     'Variance against budget imported from the accounting system (latest value in the period).', null)
$$;

create function seed_kpi_metric_definitions() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format(
    'insert into %I.kpi_metric_definitions (tenant_id, metric_key, name, department, source, unit, direction,
                                            aggregation, assignee_scope, description, na_reason)
     select $1, d.metric_key, d.name, d.department, d.source, d.unit, d.direction,
            d.aggregation, d.assignee_scope, d.description, d.na_reason
       from %I.default_kpi_metric_definitions() d
     on conflict do nothing', tg_table_schema, tg_table_schema)
  using new.tenant_id;
  return null;
end
$$;

create trigger tenants_seed_kpi_metric_definitions
  after insert on tenants
  for each row execute function seed_kpi_metric_definitions();

insert into kpi_metric_definitions (tenant_id, metric_key, name, department, source, unit, direction,
                                    aggregation, assignee_scope, description, na_reason)
select t.tenant_id, d.metric_key, d.name, d.department, d.source, d.unit, d.direction,
       d.aggregation, d.assignee_scope, d.description, d.na_reason
  from tenants t cross join default_kpi_metric_definitions() d
on conflict do nothing;

select bizos.enable_audit('kpi_metric_definitions');

alter table kpi_metric_definitions enable row level security;

create policy "members read the KPI catalogue of their tenant"
  on kpi_metric_definitions for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));

create policy "super admins add KPI metrics"
  on kpi_metric_definitions for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

create policy "super admins edit KPI metrics"
  on kpi_metric_definitions for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

grant select on kpi_metric_definitions to bizos_authenticated;
grant insert (tenant_id, metric_key, name, department, source, unit, direction, aggregation,
              assignee_scope, description, active)
  on kpi_metric_definitions to bizos_authenticated;
grant update (name, department, unit, direction, aggregation, assignee_scope, description, active)
  on kpi_metric_definitions to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Targets (KPI-1): one target per metric, assignee and period; periods of the
-- same metric and assignee never overlap.
-- ---------------------------------------------------------------------------

create table kpi_targets (
  tenant_id        uuid          not null,
  target_id        uuid          not null default gen_random_uuid(),
  metric_key       text          not null,
  assignee_user_id uuid          not null,
  period           daterange     not null,
  target_value     numeric(18,4) not null,
  notes            text,
  created_by       uuid          default bizos.uid(),
  created_at       timestamptz   not null default now(),
  updated_at       timestamptz   not null default now(),
  constraint kpi_targets_pkey primary key (tenant_id, target_id),
  constraint kpi_targets_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint kpi_targets_metric_key_fkey foreign key (tenant_id, metric_key)
    references kpi_metric_definitions (tenant_id, metric_key),
  constraint kpi_targets_assignee_user_id_fkey foreign key (tenant_id, assignee_user_id)
    references profiles (tenant_id, user_id) on delete cascade,
  constraint kpi_targets_period_check check (
    not isempty(period) and not lower_inf(period) and not upper_inf(period)
    and upper(period) - lower(period) <= 366 * 5),
  constraint kpi_targets_target_value_check check (target_value >= 0),
  constraint kpi_targets_notes_check check (length(notes) <= 2000),
  constraint kpi_targets_period_excl exclude using gist (
    tenant_id with =, metric_key with =, assignee_user_id with =, period with &&)
);
comment on table kpi_targets is 'KPI targets (KPI-1): no two targets of one metric and assignee overlap in time (kpi_targets_period_excl).';
comment on column kpi_targets.period is 'Days of the target, [first day, day after the last day).';

create index kpi_targets_assignee_user_id_idx on kpi_targets (tenant_id, assignee_user_id);

create trigger kpi_targets_stamp_timestamps
  before insert or update on kpi_targets
  for each row execute function stamp_timestamps();

create trigger kpi_targets_keep_created_by
  before insert or update on kpi_targets
  for each row execute function keep_created_by();

select bizos.enable_audit('kpi_targets');

alter table kpi_targets enable row level security;

-- Super admins and directors read every target; managers those of their
-- team (themselves included); everyone their own.
create policy "directors read all targets, managers their team's, users own"
  on kpi_targets for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'director')
              or assignee_user_id = any ((select my_team_ids())::uuid[])));

create policy "target managers set targets for their team"
  on kpi_targets for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.target.manage'))
              and ((select bizos.app_role()) = 'super_admin'
                   or assignee_user_id = any ((select my_team_ids())::uuid[])));

create policy "target managers change targets of their team"
  on kpi_targets for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.target.manage'))
         and ((select bizos.app_role()) = 'super_admin'
              or assignee_user_id = any ((select my_team_ids())::uuid[])))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.target.manage'))
              and ((select bizos.app_role()) = 'super_admin'
                   or assignee_user_id = any ((select my_team_ids())::uuid[])));

create policy "target managers remove targets of their team"
  on kpi_targets for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.target.manage'))
         and ((select bizos.app_role()) = 'super_admin'
              or assignee_user_id = any ((select my_team_ids())::uuid[])));

grant select, delete on kpi_targets to bizos_authenticated;
grant insert (tenant_id, target_id, metric_key, assignee_user_id, period, target_value, notes)
  on kpi_targets to bizos_authenticated;
grant update (period, target_value, notes) on kpi_targets to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Entries (KPI-2): MANUAL and IMPORTED actuals, with evidence files.
-- ---------------------------------------------------------------------------

create table kpi_entries (
  tenant_id        uuid          not null,
  entry_id         uuid          not null default gen_random_uuid(),
  metric_key       text          not null,
  entry_date       date          not null default current_date,
  assignee_user_id uuid          not null default bizos.uid(),
  value            numeric(18,4) not null,
  source           text          not null default 'MANUAL',
  notes            text,
  import_id        uuid,
  import_row       integer,
  created_by       uuid          default bizos.uid(),
  created_at       timestamptz   not null default now(),
  updated_at       timestamptz   not null default now(),
  constraint kpi_entries_pkey primary key (tenant_id, entry_id),
  constraint kpi_entries_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint kpi_entries_metric_key_fkey foreign key (tenant_id, metric_key)
    references kpi_metric_definitions (tenant_id, metric_key),
  constraint kpi_entries_assignee_user_id_fkey foreign key (tenant_id, assignee_user_id)
    references profiles (tenant_id, user_id) on delete cascade,
  constraint kpi_entries_source_check check (source in ('MANUAL', 'IMPORTED')),
  constraint kpi_entries_import_id_check check ((source = 'IMPORTED') = (import_id is not null)
                                                and (import_id is null) = (import_row is null)),
  constraint kpi_entries_import_row_check check (import_row is null or import_row >= 1),
  constraint kpi_entries_notes_check check (length(notes) <= 2000)
);
comment on table kpi_entries is 'Actuals of MANUAL and IMPORTED KPI metrics (KPI-2); AUTO metrics never take entries.';
comment on column kpi_entries.import_id is 'The import (IMP) the row came from; (import_id, import_row) is unique so re-processing never duplicates.';

create unique index kpi_entries_import_id_import_row_key on kpi_entries (tenant_id, import_id, import_row)
  where import_id is not null;
create index kpi_entries_metric_key_entry_date_idx on kpi_entries (tenant_id, metric_key, entry_date);
create index kpi_entries_assignee_user_id_idx on kpi_entries (tenant_id, assignee_user_id, entry_date);

create trigger kpi_entries_stamp_timestamps
  before insert or update on kpi_entries
  for each row execute function stamp_timestamps();

-- AUTO metrics are computed, never entered.
create function kpi_entries_check_metric() returns trigger
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
create trigger kpi_entries_check_metric
  before insert or update on kpi_entries
  for each row execute function kpi_entries_check_metric();
create trigger kpi_entries_keep_created_by
  before insert or update on kpi_entries
  for each row execute function keep_created_by();

select bizos.enable_audit('kpi_entries');

alter table kpi_entries enable row level security;

create policy "directors read all entries, managers their team's, users own"
  on kpi_entries for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'director')
              or assignee_user_id = any ((select my_team_ids())::uuid[])));

-- Users enter their own actuals; managers also for their team.
create policy "users enter actuals for themselves, managers for their team"
  on kpi_entries for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
              and ((select bizos.app_role()) = 'super_admin'
                   or assignee_user_id = (select bizos.uid())
                   or ((select bizos.app_role()) in ('marketing_manager', 'sales_manager')
                       and assignee_user_id = any ((select my_team_ids())::uuid[]))));

create policy "creators correct their entries"
  on kpi_entries for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
         and ((select bizos.app_role()) = 'super_admin' or created_by = (select bizos.uid())))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
              and ((select bizos.app_role()) = 'super_admin' or created_by = (select bizos.uid())));

create policy "creators remove their entries"
  on kpi_entries for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
         and ((select bizos.app_role()) = 'super_admin' or created_by = (select bizos.uid())));

grant select, delete on kpi_entries to bizos_authenticated;
grant insert (tenant_id, entry_id, metric_key, entry_date, assignee_user_id, value, source, notes, import_id, import_row)
  on kpi_entries to bizos_authenticated;
grant update (entry_date, value, notes) on kpi_entries to bizos_authenticated;

create table kpi_evidence (
  tenant_id    uuid        not null,
  evidence_id  uuid        not null default gen_random_uuid(),
  entry_id     uuid        not null,
  bucket       text        not null default 'kpi-evidence',
  object_key   text        not null,
  file_name    text        not null,
  content_type text        not null,
  size_bytes   bigint      not null,
  sha256       text        not null,
  created_by   uuid        default bizos.uid(),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint kpi_evidence_pkey primary key (tenant_id, evidence_id),
  constraint kpi_evidence_object_key_key unique (tenant_id, bucket, object_key),
  constraint kpi_evidence_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint kpi_evidence_entry_id_fkey foreign key (tenant_id, entry_id)
    references kpi_entries (tenant_id, entry_id) on delete cascade,
  constraint kpi_evidence_bucket_check check (bucket = 'kpi-evidence'),
  constraint kpi_evidence_object_key_check check (length(object_key) between 1 and 1024 and object_key !~ '(^/|\.\.)'),
  constraint kpi_evidence_file_name_check check (length(btrim(file_name)) between 1 and 255),
  constraint kpi_evidence_content_type_check check (content_type ~ '^[a-z]+/[a-zA-Z0-9.+-]+$'),
  constraint kpi_evidence_size_bytes_check check (size_bytes between 1 and 52428800),
  constraint kpi_evidence_sha256_check check (sha256 ~ '^[0-9a-f]{64}$')
);
comment on table kpi_evidence is 'Files (bucket kpi-evidence) proving a KPI entry; visible with their entry.';
create index kpi_evidence_entry_id_idx on kpi_evidence (tenant_id, entry_id);

create trigger kpi_evidence_stamp_timestamps
  before insert or update on kpi_evidence
  for each row execute function stamp_timestamps();

select bizos.enable_audit('kpi_evidence');

alter table kpi_evidence enable row level security;

create policy "evidence is visible with its entry"
  on kpi_evidence for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from kpi_entries e
                      where e.tenant_id = kpi_evidence.tenant_id and e.entry_id = kpi_evidence.entry_id));

create policy "entry creators attach evidence"
  on kpi_evidence for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
              and exists (select 1 from kpi_entries e
                           where e.tenant_id = kpi_evidence.tenant_id and e.entry_id = kpi_evidence.entry_id
                             and ((select bizos.app_role()) = 'super_admin' or e.created_by = (select bizos.uid()))));

create policy "entry creators remove evidence"
  on kpi_evidence for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
         and exists (select 1 from kpi_entries e
                      where e.tenant_id = kpi_evidence.tenant_id and e.entry_id = kpi_evidence.entry_id
                        and ((select bizos.app_role()) = 'super_admin' or e.created_by = (select bizos.uid()))));

grant select, delete on kpi_evidence to bizos_authenticated;
grant insert (tenant_id, evidence_id, entry_id, bucket, object_key, file_name, content_type, size_bytes, sha256)
  on kpi_evidence to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- AUTO metric views (security invoker: what the caller may see)
-- ---------------------------------------------------------------------------

-- Leads created per day (tenant time zone), channel and sales owner.
create view v_kpi_leads_daily with (security_invoker = true) as
select l.tenant_id,
       (l.created_at at time zone business_time_zone(l.tenant_id))::date as day,
       l.channel,
       l.sales_owner_user_id,
       count(*) as leads
  from leads l
 group by 1, 2, 3, 4;

-- Leads by channel per day.
create view v_kpi_leads_by_channel_daily with (security_invoker = true) as
select tenant_id, day, channel, sum(leads)::bigint as leads
  from v_kpi_leads_daily
 group by 1, 2, 3;

-- Marketing spend per channel per day.
create view v_kpi_spend_daily with (security_invoker = true) as
select s.tenant_id, s.spend_date as day, s.channel, sum(s.amount) as spend
  from marketing_spend s
 group by 1, 2, 3;

-- Cost per lead per channel per day: spend / leads; NULL when there are no
-- leads (never a made-up number). Spend channels are free text; they match
-- lead channels by exact value.
create view v_kpi_cpl_daily with (security_invoker = true) as
select coalesce(s.tenant_id, l.tenant_id) as tenant_id,
       coalesce(s.day, l.day) as day,
       coalesce(s.channel, l.channel) as channel,
       coalesce(s.spend, 0) as spend,
       coalesce(l.leads, 0) as leads,
       case when coalesce(l.leads, 0) > 0 then round(coalesce(s.spend, 0) / l.leads, 2) end as cpl
  from v_kpi_spend_daily s
  full join v_kpi_leads_by_channel_daily l
    on l.tenant_id = s.tenant_id and l.day = s.day and l.channel = s.channel;

-- Revenue = subtotal (excluding PPN) of ISSUED or PAID invoices by issue
-- date (accrual basis: invoiced, not collected; DRAFT and VOID excluded),
-- per day, currency and customer.
create view v_kpi_revenue_daily with (security_invoker = true) as
select i.tenant_id, i.issue_date as day, i.currency, i.customer_id,
       sum(i.subtotal) as revenue, count(*) as invoices
  from invoices i
 where i.status in ('ISSUED', 'PAID')
 group by 1, 2, 3, 4;

-- New logos: each customer with the date of its first ISSUED or PAID
-- invoice; a customer is a new logo in the period containing that date.
create view v_kpi_new_logos with (security_invoker = true) as
select i.tenant_id, i.customer_id, min(i.issue_date) as first_invoice_date
  from invoices i
 where i.status in ('ISSUED', 'PAID')
 group by 1, 2;

-- Sales activities per owner, type and day (tenant time zone).
create view v_kpi_activities_daily with (security_invoker = true) as
select a.tenant_id,
       (a.occurred_at at time zone business_time_zone(a.tenant_id))::date as day,
       a.owner_user_id, a.activity_type, count(*) as activities
  from sales_activities a
 group by 1, 2, 3, 4;

grant select on v_kpi_leads_daily, v_kpi_leads_by_channel_daily, v_kpi_spend_daily, v_kpi_cpl_daily,
  v_kpi_revenue_daily, v_kpi_new_logos, v_kpi_activities_daily to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- kpi_actual(metric_key, assignee, period) -> jsonb
--   {metric_key, assignee_user_id, period, scope, unit, value, status, reason[, breakdown]}
-- status 'ok': value is the actual (a number); status 'na': value is NULL
-- and reason says why (metric undefined by the data, division by zero, no
-- entries or no data). assignee NULL = the tenant as a whole. Security
-- invoker: computed from what the caller may see.
-- ---------------------------------------------------------------------------

-- AR of IDR invoices at the end of `day`: issued (ISSUED/PAID) by then,
-- minus their payments by then; optionally only invoices due before `day`.
create function kpi_ar_at(day date, overdue_only boolean default false) returns numeric
language sql stable
as $$
  select coalesce((select sum(i.total) from invoices i
                    where i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
                      and i.tenant_id = (select bizos.tenant_id())
                      and i.issue_date <= day and (not overdue_only or i.due_date < day)), 0)
       - coalesce((select sum(p.amount) from payments p
                     join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
                    where i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
                      and i.tenant_id = (select bizos.tenant_id())
                      and i.issue_date <= day and (not overdue_only or i.due_date < day)
                      and p.paid_on <= day), 0)
$$;

create function kpi_actual(metric_key text, assignee uuid, period daterange) returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  d kpi_metric_definitions;
  v_from date;
  v_to date;          -- last day of the period
  v_asof date;        -- last day of the period, not after today
  v_scope text;
  v_value numeric;
  v_reason text;
  v_breakdown jsonb;
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
  v_from := lower(period);
  v_to := upper(period) - 1;
  v_asof := least(v_to, current_date);
  select * into d from kpi_metric_definitions k
   where k.tenant_id = v_tenant and k.metric_key = kpi_actual.metric_key;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key',
      message = format('metric_key: no metric %s in this tenant', kpi_actual.metric_key);
  end if;
  v_scope := case when assignee is null then 'tenant' when d.source = 'AUTO' then d.assignee_scope else 'assignee' end;

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
       and (assignee is null or e.assignee_user_id = assignee);
    if v_entries = 0 then
      v_reason := format('no %s entries for this metric in the period', d.source);
    end if;
  else
    v_tz := business_time_zone(v_tenant);
    case d.metric_key
    when 'leads_by_channel' then
      select coalesce(sum(l.leads), 0), coalesce(jsonb_object_agg(l.channel, l.leads), '{}')
        into v_value, v_breakdown
        from (select x.channel, sum(x.leads)::bigint as leads from v_kpi_leads_daily x
               where x.tenant_id = v_tenant and x.day between v_from and v_to
                 and (v_scope <> 'assignee' or x.sales_owner_user_id = assignee)
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
         and (v_scope <> 'assignee' or exists (
               select 1 from prospects p where p.tenant_id = r.tenant_id and p.customer_id = r.customer_id
                                           and p.owner_user_id = assignee));
    when 'cash_collected' then
      select coalesce(sum(p.amount), 0) into v_value
        from payments p
        join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
       where p.tenant_id = v_tenant and i.currency = 'IDR' and p.paid_on between v_from and v_to
         and (v_scope <> 'assignee' or exists (
               select 1 from prospects q where q.tenant_id = i.tenant_id and q.customer_id = i.customer_id
                                           and q.owner_user_id = assignee));
    when 'new_logos' then
      select count(*) into v_value
        from v_kpi_new_logos g
       where g.tenant_id = v_tenant and g.first_invoice_date between v_from and v_to
         and (v_scope <> 'assignee' or exists (
               select 1 from prospects p where p.tenant_id = g.tenant_id and p.customer_id = g.customer_id
                                           and p.owner_user_id = assignee));
    when 'sales_activities' then
      select coalesce(sum(a.activities), 0) into v_value
        from v_kpi_activities_daily a
       where a.tenant_id = v_tenant and a.day between v_from and v_to
         and (v_scope <> 'assignee' or a.owner_user_id = assignee);
    when 'customer_visits' then
      select coalesce(sum(a.activities), 0) into v_value
        from v_kpi_activities_daily a
       where a.tenant_id = v_tenant and a.activity_type = 'visit' and a.day between v_from and v_to
         and (v_scope <> 'assignee' or a.owner_user_id = assignee);
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
    when 'collection_rate' then
      if v_from > current_date then
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
    'scope', v_scope,
    'source', d.source,
    'unit', d.unit,
    'breakdown', v_breakdown))
    || jsonb_build_object(
    'value', case when v_reason is null then v_value end,
    'status', case when v_reason is null then 'ok' else 'na' end,
    'reason', v_reason);
end
$$;

grant execute on function kpi_ar_at(date, boolean), kpi_actual(text, uuid, daterange) to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- RPCs
-- ---------------------------------------------------------------------------

-- The period of a payload: period_start + period_end (inclusive), or
-- period_month 'YYYY-MM'.
create function kpi_payload_period(payload jsonb) returns daterange
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

-- kpi_target_create({metric_key, assignee_user_id, period_start + period_end | period_month,
--   target_value, notes?}) -> {target_id, metric_key, assignee_user_id, period_start, period_end}
-- An overlapping target of the same metric and assignee fails with 23P01
-- (constraint kpi_targets_period_excl, column period).
create function kpi_target_create(payload jsonb) returns jsonb
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
  perform payload_check_keys(payload, array['metric_key', 'assignee_user_id', 'period_start', 'period_end',
                                            'period_month', 'target_value', 'notes']);
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

-- kpi_entry_create({metric_key, value, entry_date?, assignee_user_id?, source?: MANUAL|IMPORTED,
--   import_id?, import_row?, notes?, evidence?: [{object_key, file_name, content_type, size_bytes, sha256}]})
--   -> {entry_id, replayed, evidence_ids}
-- IMPORTED entries carry import_id + import_row; processing the same import
-- row again updates that entry instead of adding one (replayed = true).
create function kpi_entry_create(payload jsonb) returns jsonb
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
  f_key text; f_name text; f_type text; f_size numeric; f_sha text;
begin
  perform require_permission('kpi.entry.create');
  if v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check_keys(payload, array['metric_key', 'value', 'entry_date', 'assignee_user_id', 'source',
                                            'import_id', 'import_row', 'notes', 'evidence']);
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
  v_date := coalesce(payload_date(payload, 'entry_date'), current_date);
  if v_date > current_date then
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
  v_source := upper(coalesce(payload_text(payload, 'source', false, 10), 'MANUAL'));
  if v_source not in ('MANUAL', 'IMPORTED') then
    perform raise_field('source', 'must be MANUAL or IMPORTED');
  end if;
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
  -- Validate every file before writing anything.
  for ev in select e from jsonb_array_elements(v_evidence) e loop
    if jsonb_typeof(ev) <> 'object' then
      perform raise_field(format('evidence[%s]', i), 'must be an object');
    end if;
    perform payload_check_keys(ev, array['object_key', 'file_name', 'content_type', 'size_bytes', 'sha256']);
    f_key := payload_text(ev, 'object_key', true, 1024);
    if f_key ~ '(^/|\.\.)' then
      perform raise_field(format('evidence[%s].object_key', i), 'must be a relative key without ..');
    end if;
    f_name := payload_text(ev, 'file_name', true, 255);
    f_type := lower(payload_text(ev, 'content_type', true, 255));
    if f_type !~ '^[a-z]+/[a-z0-9.+-]+$' then
      perform raise_field(format('evidence[%s].content_type', i), 'must be a MIME type such as image/jpeg');
    end if;
    f_size := payload_numeric(ev, 'size_bytes', true, 0);
    if f_size < 1 or f_size > 52428800 then
      perform raise_field(format('evidence[%s].size_bytes', i), 'must be between 1 byte and 50 MiB');
    end if;
    f_sha := lower(payload_text(ev, 'sha256', true, 64));
    if f_sha !~ '^[0-9a-f]{64}$' then
      perform raise_field(format('evidence[%s].sha256', i), 'must be 64 hexadecimal characters');
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
    insert into kpi_evidence (tenant_id, entry_id, object_key, file_name, content_type, size_bytes, sha256)
    values (v_tenant, v_entry, payload_text(ev, 'object_key'), payload_text(ev, 'file_name'),
            lower(payload_text(ev, 'content_type')), payload_numeric(ev, 'size_bytes', true, 0),
            lower(payload_text(ev, 'sha256')))
    on conflict (tenant_id, bucket, object_key) do nothing
    returning evidence_id into v_evid;
    if v_evid is null then
      select k.evidence_id into v_evid from kpi_evidence k
       where k.tenant_id = v_tenant and k.bucket = 'kpi-evidence' and k.object_key = payload_text(ev, 'object_key')
         and k.entry_id = v_entry;
      if v_evid is null then
        raise exception using errcode = '23505', column = 'evidence', constraint = 'kpi_evidence_object_key_key',
          message = format('evidence: object %s already belongs to another entry', payload_text(ev, 'object_key'));
      end if;
    end if;
    v_ids := v_ids || to_jsonb(v_evid);
    v_evid := null;
  end loop;

  return jsonb_build_object('entry_id', v_entry, 'replayed', v_replayed, 'evidence_ids', v_ids);
end
$$;

grant execute on function kpi_payload_period(jsonb), kpi_target_create(jsonb), kpi_entry_create(jsonb)
  to bizos_authenticated;
