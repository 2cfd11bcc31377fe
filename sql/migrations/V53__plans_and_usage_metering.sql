-- Plans as data and usage metering: what a plan sells (prices, caps,
-- feature flags, metered charges), the billable metrics (Lago's: a code,
-- an aggregation and the property of the event it reads), the usage events
-- a tenant's integration reports and the running aggregates that make an
-- event billable the moment its batch commits.
--
-- Global catalogues (no tenant_id; read by every request role and the
-- worker, written by the owner: migrations, the operator):
--   plans              + annual price, trial length, the caps enforced
--                      where the usage happens (seats, AI generations a
--                      day, AI tokens a month, storage bytes; NULL: none),
--                      feature flags
--   usage_aggregations closed set: count, unique_count, sum, max, latest
--   usage_sources      closed set: where a metric's quantity comes from
--                      (reported events, the LLM ledger, profiles, objects)
--   billable_metrics   code, label, unit, aggregation, the event property
--                      it aggregates, source
--   plan_metrics       which metrics a plan charges: included quantity and
--                      overage unit price (IDR)
-- Tenant tables (keys lead with tenant_id; RLS enabled; written only by the
-- SECURITY DEFINER functions of sql/api/usage.sql and sql/api/llm.sql):
--   usage_events        one row per reported event, unique per tenant by
--                       the integration's own id (external_id)
--   usage_daily         per tenant, metric and tenant-local day: events,
--                       sum, max, the latest value; updated in the insert's
--                       statement, so usage_billable reads days, not events
--   usage_daily_uniques the distinct values of unique_count metrics per day
--   llm_plan_counters   AI generations a day and tokens a month of the whole
--                       tenant (every feature), held against the plan's caps
--                       by llm_begin as llm_counters are against a feature's
--
-- The functions live in sql/api/usage.sql (and llm.sql, files.sql for the
-- caps of the gateway and of uploads).

-- ---------------------------------------------------------------------------
-- plans
-- ---------------------------------------------------------------------------

alter table plans
  add column annual_price           numeric not null default 0,
  add column trial_days             integer not null default 0,
  add column included_seats         integer,
  add column ai_generations_per_day integer,
  add column ai_tokens_per_month    bigint,
  add column storage_quota_bytes    bigint,
  add column features               text[]  not null default '{}',
  add constraint plans_annual_price_check check (annual_price >= 0),
  add constraint plans_trial_days_check check (trial_days between 0 and 365),
  add constraint plans_included_seats_check check (included_seats >= 1),
  add constraint plans_ai_generations_per_day_check check (ai_generations_per_day >= 0),
  add constraint plans_ai_tokens_per_month_check check (ai_tokens_per_month >= 0),
  add constraint plans_storage_quota_bytes_check check (storage_quota_bytes >= 0),
  add constraint plans_features_check
    check (cardinality(features) <= 50
           and array_to_string(features, ',') ~ '^([a-z][a-z0-9_]{0,39}(,|$))*$');
comment on table plans is
  'Subscription plans: monthly and annual price (currency, IDR), trial length, the caps enforced where the usage happens (included_seats: active users; ai_generations_per_day, ai_tokens_per_month: the tenant''s AI through the gateway, every feature; storage_quota_bytes: stored files; NULL: no cap), feature flags, and through plan_metrics the metered charges.';
comment on column plans.annual_price is 'The price of a year paid at once (billing_interval annual).';
comment on column plans.trial_days is 'Length of the free trial a new subscription on the plan starts with (0: none).';
comment on column plans.included_seats is 'Active users (profiles other than API keys) the plan has; adding one more is refused (NULL: no cap).';
comment on column plans.ai_generations_per_day is 'AI generations a tenant-local day, all features together; over it the gateway answers 429 (NULL: no cap).';
comment on column plans.ai_tokens_per_month is 'AI tokens a tenant-local month, all features together; over it the gateway answers 429 (NULL: no cap).';
comment on column plans.storage_quota_bytes is 'Bytes of stored files; an upload past it is refused with 402 (NULL: no cap).';
comment on column plans.features is 'Feature flags the plan turns on (lower-case names).';

-- ---------------------------------------------------------------------------
-- closed sets and billable metrics
-- ---------------------------------------------------------------------------

-- Two closed sets as lookup tables in the vocabulary shape (code,
-- position, description), referred to by foreign keys. They are not in
-- the list of vocabulary.sql (the BFF's request checks and enums) while no
-- request takes their terms: the operator writes metrics in SQL.

create table usage_aggregations (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint usage_aggregations_pkey primary key (code),
  constraint usage_aggregations_position_key unique (position)
);
comment on table usage_aggregations is
  'Closed set: how a billable metric turns a period''s events into a quantity.';
insert into usage_aggregations (code, position, description) values
  ('count',        1, 'the number of events'),
  ('unique_count', 2, 'the number of distinct values of the property'),
  ('sum',          3, 'the sum of the property'),
  ('max',          4, 'the largest value of the property'),
  ('latest',       5, 'the value of the property in the period''s latest event');

create table usage_sources (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint usage_sources_pkey primary key (code),
  constraint usage_sources_position_key unique (position)
);
comment on table usage_sources is
  'Closed set: where a billable metric''s quantity comes from.';
insert into usage_sources (code, position, description) values
  ('events',          1, 'usage events the tenant''s integration reports (POST /api/v1/usage-events)'),
  ('llm_generations', 2, 'generations answered by a model through the LLM gateway (its ledger)'),
  ('llm_tokens',      3, 'tokens of the generations answered through the LLM gateway (its ledger)'),
  ('seats',           4, 'active users of the tenant (profiles other than API keys)'),
  ('storage',         5, 'bytes of the tenant''s stored files');

do $grants$
declare
  t text;
begin
  foreach t in array array['usage_aggregations', 'usage_sources'] loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the closed set" on %I for select to bizos_authenticated, bizos_worker using (true)', t);
    execute format('grant select on %I to bizos_authenticated, bizos_worker', t);
  end loop;
end
$grants$;

create table billable_metrics (
  code        text        not null,
  label       text        not null,
  unit        text        not null,
  aggregation text        not null,
  -- The property of an event the aggregation reads (NULL for count).
  field_name  text,
  source      text        not null default 'events',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint billable_metrics_pkey primary key (code),
  constraint billable_metrics_aggregation_fkey foreign key (aggregation) references usage_aggregations (code),
  constraint billable_metrics_source_fkey foreign key (source) references usage_sources (code),
  constraint billable_metrics_code_check check (code ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint billable_metrics_label_check check (length(btrim(label)) between 1 and 200),
  constraint billable_metrics_unit_check check (length(btrim(unit)) between 1 and 50),
  -- A property exactly when events are aggregated by one.
  constraint billable_metrics_field_name_check
    check ((field_name is null) = (source <> 'events' or aggregation = 'count')
           and (field_name is null or field_name ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$'))
);
comment on table billable_metrics is
  'Billable metrics (Lago''s): a code, how a period''s events are aggregated (usage_aggregations) and which property of the event (field_name; none for count). Source events: reported over /api/v1/usage-events; the other sources are metered by bizos itself.';
create trigger billable_metrics_stamp_timestamps before insert or update on billable_metrics
  for each row execute function bizos.stamp_timestamps();
insert into billable_metrics (code, label, unit, aggregation, field_name, source) values
  ('ai_generations', 'AI generations',     'generations', 'count',  null, 'llm_generations'),
  ('ai_tokens',      'AI tokens',          'tokens',      'sum',    null, 'llm_tokens'),
  ('seats',          'active users',       'seats',       'latest', null, 'seats'),
  ('storage_bytes',  'stored files',       'bytes',       'latest', null, 'storage');

create table plan_metrics (
  plan_code   text        not null,
  metric_code text        not null,
  -- The quantity of a period the plan's price includes.
  included    numeric     not null default 0,
  -- The price (plans.currency) of each unit over it.
  unit_price  numeric     not null default 0,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint plan_metrics_pkey primary key (plan_code, metric_code),
  constraint plan_metrics_plan_code_fkey foreign key (plan_code) references plans (plan_code) on delete cascade,
  constraint plan_metrics_metric_code_fkey foreign key (metric_code) references billable_metrics (code),
  constraint plan_metrics_included_check check (included >= 0),
  constraint plan_metrics_unit_price_check check (unit_price >= 0)
);
comment on table plan_metrics is
  'The metered charges of a plan: per billable metric, the quantity a period includes and the unit price of the overage (usage_billable).';
create trigger plan_metrics_stamp_timestamps before insert or update on plan_metrics
  for each row execute function bizos.stamp_timestamps();

do $grants$
declare
  t text;
begin
  foreach t in array array['billable_metrics', 'plan_metrics'] loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the catalogue" on %I for select to bizos_authenticated, bizos_worker using (true)', t);
    execute format('grant select on %I to bizos_authenticated, bizos_worker', t);
  end loop;
end
$grants$;

-- The free trial every self-service sign-up starts on.
insert into plans (plan_code, label, monthly_price, currency, annual_price, trial_days, included_seats,
                   ai_generations_per_day, ai_tokens_per_month, storage_quota_bytes, features)
values ('trial', 'Trial', 0, 'IDR', 0, 14, 5, 50, 500000, 1073741824, '{}')
-- V52 (sign-up) inserts the bare row first: give it the trial's terms.
on conflict (plan_code) do update set
  annual_price = excluded.annual_price, trial_days = excluded.trial_days,
  included_seats = excluded.included_seats,
  ai_generations_per_day = excluded.ai_generations_per_day,
  ai_tokens_per_month = excluded.ai_tokens_per_month,
  storage_quota_bytes = excluded.storage_quota_bytes, features = excluded.features;
insert into plan_metrics (plan_code, metric_code, included, unit_price) values
  ('trial', 'ai_generations', 1500, 0),
  ('trial', 'ai_tokens', 500000, 0),
  ('trial', 'seats', 5, 0),
  ('trial', 'storage_bytes', 1073741824, 0)
on conflict do nothing;

-- ---------------------------------------------------------------------------
-- the permission and the API key scope to report usage
-- ---------------------------------------------------------------------------

insert into permissions (code, position, description)
select 'usage.report', max(position) + 1, 'report usage events of the tenant''s integrations (metered billing)'
  from permissions
 where not exists (select 1 from permissions p where p.code = 'usage.report');
insert into api_scopes (code, position, description)
select 'usage:write', max(position) + 1, 'report usage events (POST /api/v1/usage-events), idempotent on each event''s id'
  from api_scopes;
insert into api_scope_permissions (scope, permission) values ('usage:write', 'usage.report');

-- ---------------------------------------------------------------------------
-- usage events and their running aggregates
-- ---------------------------------------------------------------------------

create table usage_events (
  tenant_id    uuid        not null,
  event_id     uuid        not null default bizos.uuid_v7(),
  -- The integration's own id of the event: a replay is a no-op.
  external_id  text        not null,
  metric_code  text        not null,
  occurred_at  timestamptz not null,
  -- The tenant-local day of occurred_at: the unit of the aggregates.
  day          date        not null,
  properties   jsonb       not null default '{}',
  -- The metric's property as a number (sum, max, latest) or as text
  -- (unique_count); NULL for count.
  value        numeric,
  unique_value text,
  created_by   uuid        default bizos.uid(),
  created_at   timestamptz not null default now(),
  constraint usage_events_pkey primary key (tenant_id, event_id),
  constraint usage_events_external_id_key unique (tenant_id, external_id),
  constraint usage_events_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint usage_events_metric_code_fkey foreign key (metric_code) references billable_metrics (code),
  constraint usage_events_external_id_check check (length(external_id) between 1 and 200),
  constraint usage_events_properties_check check (jsonb_typeof(properties) = 'object'),
  constraint usage_events_unique_value_check check (length(unique_value) <= 500)
);
comment on table usage_events is
  'Usage events reported by a tenant''s integrations (POST /api/v1/usage-events): one row per event, unique per tenant by its external_id (a replay changes nothing), with the metric''s property extracted (value, unique_value). Append-only; usage_daily holds their aggregates.';

alter table usage_events enable row level security;
create policy "super admins and directors read their tenant's usage events"
  on usage_events for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) in ('super_admin', 'director'));
grant select on usage_events to bizos_authenticated;

create table usage_daily (
  tenant_id    uuid        not null,
  metric_code  text        not null,
  day          date        not null,
  events       bigint      not null default 0,
  total        numeric     not null default 0,
  max_value    numeric,
  latest_value numeric,
  latest_at    timestamptz,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint usage_daily_pkey primary key (tenant_id, metric_code, day),
  constraint usage_daily_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint usage_daily_metric_code_fkey foreign key (metric_code) references billable_metrics (code),
  constraint usage_daily_events_check check (events >= 0)
);
comment on table usage_daily is
  'Running aggregates of usage_events per tenant, metric and tenant-local day (count, sum, max, latest value and its time), updated by the statement that inserts the events: usage_billable sums days, never scans events.';

alter table usage_daily enable row level security;
create policy "super admins and directors read their tenant's daily usage"
  on usage_daily for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) in ('super_admin', 'director'));
grant select on usage_daily to bizos_authenticated;

create table usage_daily_uniques (
  tenant_id    uuid not null,
  metric_code  text not null,
  day          date not null,
  unique_value text not null,
  constraint usage_daily_uniques_pkey primary key (tenant_id, metric_code, day, unique_value),
  constraint usage_daily_uniques_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade
);
comment on table usage_daily_uniques is
  'The distinct property values of unique_count metrics per tenant, metric and tenant-local day (a period''s quantity counts them over its days).';

alter table usage_daily_uniques enable row level security;
create policy "super admins and directors read their tenant's unique usage values"
  on usage_daily_uniques for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) in ('super_admin', 'director'));
grant select on usage_daily_uniques to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- the plan's AI caps: the whole tenant's use, every feature together
-- ---------------------------------------------------------------------------

create table llm_plan_counters (
  tenant_id    uuid        not null,
  -- 'day': generations; 'month': tokens.
  period       text        not null,
  -- The tenant-local first day of the period.
  period_start date        not null,
  used         bigint      not null default 0,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint llm_plan_counters_pkey primary key (tenant_id, period, period_start),
  constraint llm_plan_counters_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_plan_counters_period_check check (period in ('day', 'month')),
  constraint llm_plan_counters_period_start_check check (period = 'day' or extract(day from period_start) = 1),
  constraint llm_plan_counters_used_check check (used >= 0)
);
comment on table llm_plan_counters is
  'AI use of a tenant as a whole (every feature) per tenant-local period, held against its plan''s caps: generations a day, tokens a month. llm_begin reserves (row locks), llm_finish settles; kept only while the plan has an AI cap.';
create trigger llm_plan_counters_stamp_timestamps before insert or update on llm_plan_counters
  for each row execute function bizos.stamp_timestamps();

alter table llm_plan_counters enable row level security;
create policy "members read their tenant's plan AI use"
  on llm_plan_counters for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on llm_plan_counters to bizos_authenticated;
