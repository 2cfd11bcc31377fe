-- The LLM gateway (issue 15; AI-4, AI-5, AI-6): the data the gateway of the
-- BFF (bizos_bff::llm::Gateway) routes, meters, limits, caches and prices
-- its calls with. Nothing in bizos calls a model except through it, and the
-- gateway keeps its state here, so limits hold across every BFF and worker
-- process and every call is in one ledger.
--
-- Global catalogues (no tenant_id: the Citus plan makes them reference
-- tables; read by every request role and the worker, written by the owner):
--   llm_features   vocabulary of the AI features, with their cache lifetime,
--                  whether an answer may get the caller's PII back, and the
--                  default limits (NULL = unlimited)
--   llm_providers  the providers and their wire format and base URL
--   llm_routes     per feature, the ordered fallback chain of (provider, model)
--   llm_prices     per (provider, model), prices per million tokens, input
--                  and output apart, with the date from which they hold
--   fx_rates       IDR per unit of a currency, from a date (AI is priced in
--                  USD, plans in IDR)
--   plans          subscription plans and their monthly price; tenants.plan_code
--                  names a tenant's (the revenue of the margin until billing
--                  lands)
-- Tenant tables (keys lead with tenant_id; RLS enabled; written only by the
-- SECURITY DEFINER functions of sql/api/llm.sql, so request roles hold no
-- INSERT/UPDATE/DELETE privilege on them):
--   llm_tenant_keys   a tenant's own provider keys, envelope-encrypted by the
--                     BFF (the database never sees a key in clear); request
--                     roles cannot even select the byte columns
--   llm_limits        per tenant, feature and scope (the tenant as a whole,
--                     or each of its users): generations a day, tokens a month
--   llm_counters      what was used per period (tenant-local day or month)
--   llm_reservations  a generation between llm_begin and llm_finish
--   llm_cache         answers per tenant by the hash of (model, masked
--                     messages, parameters), with an expiry
--   llm_calls         the usage ledger: one row per attempt, cache hit and
--                     deterministic fallback, priced from llm_prices
--
-- RLS is enabled and not forced, as on every table of the schema: the
-- owner (migrations, the definer functions that are the only writers, the
-- analytics views) is the trusted path; request roles and the worker never
-- own a table.
--
-- The functions and views (llm_begin, llm_finish, llm_route,
-- llm_key_material, ..., v_llm_cost_daily, v_llm_cost_monthly,
-- v_llm_margin_monthly) live in sql/api/llm.sql.

-- ---------------------------------------------------------------------------
-- the vocabulary of features
-- ---------------------------------------------------------------------------

create table llm_features (
  code                               text     not null,
  position                           smallint not null,
  label                              text     not null,
  -- Seconds a cached answer of the feature lives (0: never cached).
  cache_ttl_secs                     integer  not null default 3600,
  -- Whether the masked PII of the prompt may be put back into the answer
  -- for a caller who may see it.
  reinsert_pii                       boolean  not null default false,
  -- Default limits (a tenant's llm_limits row replaces them); NULL: none.
  default_tenant_generations_per_day integer,
  default_user_generations_per_day   integer,
  default_tenant_tokens_per_month    bigint,
  default_user_tokens_per_month      bigint,
  constraint llm_features_pkey primary key (code),
  constraint llm_features_position_key unique (position),
  constraint llm_features_code_check check (code ~ '^[a-z][a-z0-9_]{0,39}$'),
  constraint llm_features_label_check check (length(btrim(label)) between 1 and 200),
  constraint llm_features_cache_ttl_secs_check check (cache_ttl_secs between 0 and 31536000),
  constraint llm_features_default_tenant_generations_per_day_check check (default_tenant_generations_per_day >= 0),
  constraint llm_features_default_user_generations_per_day_check check (default_user_generations_per_day >= 0),
  constraint llm_features_default_tenant_tokens_per_month_check check (default_tenant_tokens_per_month >= 0),
  constraint llm_features_default_user_tokens_per_month_check check (default_user_tokens_per_month >= 0)
);
comment on table llm_features is
  'Vocabulary: the AI features that call a model through the gateway (llm_*.feature), with their cache lifetime, PII re-insertion and default limits (NULL: unlimited).';
insert into llm_features (code, position, label, cache_ttl_secs, reinsert_pii,
                          default_tenant_generations_per_day, default_user_generations_per_day,
                          default_tenant_tokens_per_month, default_user_tokens_per_month) values
  ('chat',            1, 'chat with the assistant (POST /api/ai/chat)',           3600,   true,  null, null, null, null),
  ('digest',          2, 'the daily digest: three insights from the day''s numbers', 86400, false, null, null, null, null),
  ('precheck_notes',  3, 'advisory notes on a draft checked against the SOP rules', 86400, true,  null, null, null, null),
  ('rag_answer',      4, 'an answer from the tenant''s documents, with citations',  3600,   true,  null, null, null, null),
  -- Seed 003: 10 generations a day per business.
  ('segment_content', 5, 'marketing content for an RFM segment',                   604800, false, 10,   null, null, null);
alter table llm_features enable row level security;
create policy "members read the vocabulary"
  on llm_features for select to bizos_authenticated, bizos_worker using (true);
grant select on llm_features to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------------------
-- providers, routes, prices, exchange rates, plans
-- ---------------------------------------------------------------------------

create table llm_providers (
  provider   text        not null,
  -- The wire format the BFF speaks to it.
  wire       text        not null,
  base_url   text        not null,
  label      text        not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint llm_providers_pkey primary key (provider),
  constraint llm_providers_provider_check check (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint llm_providers_wire_check check (wire in ('openai', 'gemini')),
  constraint llm_providers_base_url_check
    check (base_url ~ '^https?://[^[:space:]/?#]+(/[^[:space:]?#]*)?$' and length(base_url) <= 500),
  constraint llm_providers_label_check check (length(btrim(label)) between 1 and 200)
);
comment on table llm_providers is
  'LLM providers: the wire format the gateway speaks (openai: chat completions and embeddings, which OpenAI-compatible servers share; gemini: generateContent) and the base URL.';
create trigger llm_providers_stamp_timestamps before insert or update on llm_providers
  for each row execute function stamp_timestamps();
insert into llm_providers (provider, wire, base_url, label) values
  ('openai', 'openai', 'https://api.openai.com/v1', 'OpenAI'),
  ('gemini', 'gemini', 'https://generativelanguage.googleapis.com/v1beta', 'Google Gemini');

create table llm_routes (
  feature    text        not null,
  -- 1 is tried first; the next one when a model fails.
  position   smallint    not null,
  provider   text        not null,
  model      text        not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint llm_routes_pkey primary key (feature, position),
  constraint llm_routes_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_routes_provider_fkey foreign key (provider) references llm_providers (provider),
  constraint llm_routes_position_check check (position between 1 and 20),
  constraint llm_routes_model_check check (length(model) between 1 and 200 and model !~ '[[:space:][:cntrl:]]')
);
comment on table llm_routes is
  'Routing as data: per feature, the ordered fallback chain of (provider, model) the gateway tries; when every one fails the feature''s deterministic fallback answers.';
create trigger llm_routes_stamp_timestamps before insert or update on llm_routes
  for each row execute function stamp_timestamps();
insert into llm_routes (feature, position, provider, model)
select f.code, r.position, r.provider, r.model
  from llm_features f
 cross join (values (1, 'gemini', 'gemini-2.0-flash'),
                    (2, 'gemini', 'gemini-1.5-flash'),
                    (3, 'openai', 'gpt-4o-mini')) r (position, provider, model);

create table llm_prices (
  provider        text        not null,
  model           text        not null,
  -- The price holds for calls from this instant until the next row's.
  effective_from  timestamptz not null,
  currency        text        not null,
  input_per_mtok  numeric     not null,
  output_per_mtok numeric     not null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint llm_prices_pkey primary key (provider, model, effective_from),
  constraint llm_prices_provider_fkey foreign key (provider) references llm_providers (provider),
  constraint llm_prices_model_check check (length(model) between 1 and 200 and model !~ '[[:space:][:cntrl:]]'),
  constraint llm_prices_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint llm_prices_input_per_mtok_check check (input_per_mtok >= 0),
  constraint llm_prices_output_per_mtok_check check (output_per_mtok >= 0)
);
comment on table llm_prices is
  'Prices of a model per million tokens, input and output apart, from effective_from on: a call costs tokens_in/1e6*input + tokens_out/1e6*output at the price in force at its time; no price, no cost (NULL).';
create trigger llm_prices_stamp_timestamps before insert or update on llm_prices
  for each row execute function stamp_timestamps();
-- The providers' list prices (USD per million tokens, standard tier, short
-- prompts) when this was written; the operator adds rows as they change.
insert into llm_prices (provider, model, effective_from, currency, input_per_mtok, output_per_mtok) values
  ('gemini', 'gemini-2.0-flash', '2025-01-01 00:00:00+00', 'USD', 0.10, 0.40),
  ('gemini', 'gemini-1.5-flash', '2025-01-01 00:00:00+00', 'USD', 0.075, 0.30),
  ('openai', 'gpt-4o-mini',      '2025-01-01 00:00:00+00', 'USD', 0.15, 0.60);

create table fx_rates (
  currency       text        not null,
  effective_from date        not null,
  idr_per_unit   numeric     not null,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  constraint fx_rates_pkey primary key (currency, effective_from),
  constraint fx_rates_currency_check check (currency ~ '^[A-Z]{3}$' and currency <> 'IDR'),
  constraint fx_rates_idr_per_unit_check check (idr_per_unit > 0)
);
comment on table fx_rates is
  'Exchange rates to IDR: idr_per_unit of a currency from effective_from on (a month is converted at the rate in force on its first day); IDR needs none. No rate, no conversion (NULL).';
create trigger fx_rates_stamp_timestamps before insert or update on fx_rates
  for each row execute function stamp_timestamps();

create table plans (
  plan_code     text        not null,
  label         text        not null,
  monthly_price numeric     not null,
  currency      text        not null default 'IDR',
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint plans_pkey primary key (plan_code),
  constraint plans_plan_code_check check (plan_code ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint plans_label_check check (length(btrim(label)) between 1 and 200),
  constraint plans_monthly_price_check check (monthly_price >= 0),
  constraint plans_currency_check check (currency ~ '^[A-Z]{3}$')
);
comment on table plans is
  'Subscription plans and their monthly price: the revenue side of the AI margin (v_llm_margin_monthly) until billing lands.';
create trigger plans_stamp_timestamps before insert or update on plans
  for each row execute function stamp_timestamps();

alter table tenants add column plan_code text;
alter table tenants add constraint tenants_plan_code_fkey foreign key (plan_code) references plans (plan_code);
comment on column tenants.plan_code is 'The tenant''s subscription plan (plans); NULL: none (no revenue in the margin).';

-- Catalogues: every request role and the worker read them; the owner writes
-- (llm_provider_set, llm_route_set, or SQL).
do $grants$
declare
  t text;
begin
  foreach t in array array['llm_providers', 'llm_routes', 'llm_prices', 'fx_rates', 'plans'] loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the catalogue" on %I for select to bizos_authenticated, bizos_worker using (true)', t);
    execute format('grant select on %I to bizos_authenticated, bizos_worker', t);
  end loop;
end
$grants$;

-- ---------------------------------------------------------------------------
-- a tenant's own provider keys
-- ---------------------------------------------------------------------------

create table llm_tenant_keys (
  tenant_id     uuid        not null,
  key_id        uuid        not null default gen_random_uuid(),
  provider      text        not null,
  label         text        not null,
  -- Envelope encryption (done by the BFF): the key encrypted under a data
  -- key (AES-256-GCM), the data key encrypted under the master key named by
  -- master_key_id. Never readable by request roles (column privileges).
  ciphertext    bytea       not null,
  nonce         bytea       not null,
  wrapped_dek   bytea       not null,
  dek_nonce     bytea       not null,
  master_key_id text        not null,
  status        text        not null default 'active',
  created_by    uuid        default bizos.uid(),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  revoked_at    timestamptz,
  constraint llm_tenant_keys_pkey primary key (tenant_id, key_id),
  constraint llm_tenant_keys_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_tenant_keys_provider_fkey foreign key (provider) references llm_providers (provider),
  constraint llm_tenant_keys_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint llm_tenant_keys_label_check check (length(btrim(label)) between 1 and 200 and label !~ '[[:cntrl:]]'),
  constraint llm_tenant_keys_ciphertext_check check (length(ciphertext) between 1 and 16384),
  constraint llm_tenant_keys_nonce_check check (length(nonce) between 8 and 64),
  constraint llm_tenant_keys_wrapped_dek_check check (length(wrapped_dek) between 16 and 1024),
  constraint llm_tenant_keys_dek_nonce_check check (length(dek_nonce) between 8 and 64),
  constraint llm_tenant_keys_master_key_id_check check (master_key_id ~ '^[A-Za-z0-9._:-]{1,100}$'),
  constraint llm_tenant_keys_status_check check (status in ('active', 'revoked')),
  constraint llm_tenant_keys_revoked_check check ((status = 'revoked') = (revoked_at is not null))
);
comment on table llm_tenant_keys is
  'A tenant''s own provider API keys, envelope-encrypted by the BFF (ciphertext under a data key, the data key wrapped by the master key): the gateway uses active ones beside the platform keys. The byte columns are readable only through llm_key_material (the BFF''s and the worker''s logins).';
create index llm_tenant_keys_provider_idx on llm_tenant_keys (tenant_id, provider) where status = 'active';
create trigger llm_tenant_keys_stamp_timestamps before insert or update on llm_tenant_keys
  for each row execute function stamp_timestamps();
create trigger llm_tenant_keys_keep_created_by before insert or update on llm_tenant_keys
  for each row execute function keep_created_by();

alter table llm_tenant_keys enable row level security;
-- The metadata to the tenant's super_admins (they add and revoke keys);
-- written only by llm_key_add / llm_key_revoke.
create policy "super admins read their tenant's key metadata"
  on llm_tenant_keys for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select (tenant_id, key_id, provider, label, master_key_id, status, created_by, created_at, updated_at,
              revoked_at)
  on llm_tenant_keys to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- limits and what was used
-- ---------------------------------------------------------------------------

create table llm_limits (
  tenant_id           uuid        not null,
  feature             text        not null,
  -- 'tenant': the tenant as a whole; 'user': each user of the tenant.
  scope               text        not null,
  -- NULL: unlimited (a missing row: the feature's defaults).
  generations_per_day integer,
  tokens_per_month    bigint,
  updated_by          uuid        default bizos.uid(),
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint llm_limits_pkey primary key (tenant_id, feature, scope),
  constraint llm_limits_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_limits_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_limits_scope_check check (scope in ('tenant', 'user')),
  constraint llm_limits_generations_per_day_check check (generations_per_day >= 0),
  constraint llm_limits_tokens_per_month_check check (tokens_per_month >= 0)
);
comment on table llm_limits is
  'A tenant''s limits per feature: generations a day and tokens a month (tenant-local periods), for the tenant as a whole (scope tenant: the operator sets it) and for each user (scope user: also the tenant''s super_admin, never above the tenant''s). NULL: unlimited; no row: the feature''s defaults.';
create trigger llm_limits_stamp_timestamps before insert or update on llm_limits
  for each row execute function stamp_timestamps();

alter table llm_limits enable row level security;
-- Every member may know the limits they work under; written by llm_limit_set.
create policy "members read their tenant's AI limits"
  on llm_limits for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on llm_limits to bizos_authenticated;
select bizos.enable_audit('llm_limits');

create table llm_counters (
  tenant_id    uuid        not null,
  feature      text        not null,
  -- The user of a user-scope counter; the nil UUID for the tenant scope.
  user_id      uuid        not null,
  -- 'day': generations; 'month': tokens.
  period       text        not null,
  -- The tenant-local first day of the period.
  period_start date        not null,
  used         bigint      not null default 0,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint llm_counters_pkey primary key (tenant_id, feature, user_id, period, period_start),
  constraint llm_counters_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_counters_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_counters_period_check check (period in ('day', 'month')),
  constraint llm_counters_period_start_check
    check (period = 'day' or extract(day from period_start) = 1),
  constraint llm_counters_used_check check (used >= 0)
);
comment on table llm_counters is
  'AI use per tenant (user_id = nil UUID) or user, feature and tenant-local period: generations a day (period day), tokens a month (period month). llm_begin reserves within the limits (row locks), llm_finish settles.';
create trigger llm_counters_stamp_timestamps before insert or update on llm_counters
  for each row execute function stamp_timestamps();

alter table llm_counters enable row level security;
create policy "members read their own and the tenant's AI use, admins all"
  on llm_counters for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (user_id in ((select bizos.uid()), '00000000-0000-0000-0000-000000000000'::uuid)
              or (select bizos.app_role()) in ('super_admin', 'director')));
grant select on llm_counters to bizos_authenticated;

create table llm_reservations (
  tenant_id      uuid        not null,
  reservation_id uuid        not null default gen_random_uuid(),
  user_id        uuid,
  feature        text        not null,
  est_tokens     bigint      not null,
  -- The periods (tenant-local) whose counters it holds.
  day            date        not null,
  month          date        not null,
  request_id     text,
  created_at     timestamptz not null default now(),
  constraint llm_reservations_pkey primary key (tenant_id, reservation_id),
  constraint llm_reservations_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_reservations_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_reservations_est_tokens_check check (est_tokens >= 0),
  constraint llm_reservations_month_check
    check (extract(day from month) = 1 and month <= day and day < month + interval '1 month'),
  constraint llm_reservations_request_id_check check (length(request_id) <= 200)
);
comment on table llm_reservations is
  'Generations between llm_begin (one generation and est_tokens reserved in the counters) and llm_finish (settled to the tokens used, or given back).';
create index llm_reservations_created_at_idx on llm_reservations (created_at);

alter table llm_reservations enable row level security;
create policy "members read their own open generations, admins all"
  on llm_reservations for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (user_id = (select bizos.uid()) or (select bizos.app_role()) in ('super_admin', 'director')));
grant select on llm_reservations to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- the answer cache
-- ---------------------------------------------------------------------------

create table llm_cache (
  tenant_id  uuid        not null,
  -- SHA-256 of the canonical (model, masked messages, parameters).
  cache_key  bytea       not null,
  feature    text        not null,
  provider   text,
  model      text        not null,
  response   jsonb       not null,
  tokens_in  bigint      not null default 0,
  tokens_out bigint      not null default 0,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  hits       bigint      not null default 0,
  updated_at timestamptz not null default now(),
  constraint llm_cache_pkey primary key (tenant_id, cache_key),
  constraint llm_cache_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_cache_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_cache_cache_key_check check (length(cache_key) = 32),
  constraint llm_cache_provider_check check (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint llm_cache_model_check check (length(model) between 1 and 200),
  constraint llm_cache_tokens_check check (tokens_in >= 0 and tokens_out >= 0),
  constraint llm_cache_hits_check check (hits >= 0)
);
comment on table llm_cache is
  'Answers per tenant by the hash of (model, masked messages, parameters), until expires_at: a hit (llm_begin) is free and consumes no limit. Never shared across tenants.';
create index llm_cache_expires_at_idx on llm_cache (expires_at);
create trigger llm_cache_stamp_timestamps before insert or update on llm_cache
  for each row execute function stamp_timestamps();

alter table llm_cache enable row level security;
create policy "super admins and directors read their tenant's AI cache"
  on llm_cache for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) in ('super_admin', 'director'));
grant select on llm_cache to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- the usage ledger
-- ---------------------------------------------------------------------------

create table llm_calls (
  tenant_id      uuid        not null,
  call_id        uuid        not null default gen_random_uuid(),
  created_at     timestamptz not null default now(),
  user_id        uuid,
  feature        text        not null,
  -- NULL for the deterministic fallback (no model answered).
  provider       text,
  model          text,
  -- Which key: 'platform:<n>' (the n-th key of the environment),
  -- 'tenant:<key_id>', 'cache' or 'fallback'; never the key.
  key_ref        text,
  tokens_in      bigint      not null default 0,
  tokens_out     bigint      not null default 0,
  latency_ms     integer,
  outcome        text        not null,
  error          text,
  -- tokens_in/1e6*input + tokens_out/1e6*output at the price in force at
  -- created_at (llm_prices); NULL when there is none. 0 for a cache hit,
  -- the deterministic fallback and calls that used no tokens.
  cost           numeric,
  currency       text,
  request_id     text,
  -- The generation (llm_begin .. llm_finish) the attempt belongs to, and
  -- its place in the chain tried.
  reservation_id uuid,
  attempt        smallint,
  constraint llm_calls_pkey primary key (tenant_id, call_id),
  constraint llm_calls_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint llm_calls_feature_fkey foreign key (feature) references llm_features (code),
  constraint llm_calls_provider_check check (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
  constraint llm_calls_model_check check (length(model) between 1 and 200),
  constraint llm_calls_key_ref_check
    check (key_ref ~ '^(platform:[A-Za-z0-9_.-]{1,64}|tenant:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|cache|fallback)$'),
  constraint llm_calls_tokens_check check (tokens_in >= 0 and tokens_out >= 0),
  constraint llm_calls_latency_ms_check check (latency_ms >= 0),
  constraint llm_calls_outcome_check check (outcome in ('ok', 'cache_hit', 'error', 'fallback')),
  constraint llm_calls_error_check check (length(error) <= 4000),
  constraint llm_calls_cost_check check (cost >= 0 and (cost = 0 or currency is not null)),
  constraint llm_calls_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint llm_calls_request_id_check check (length(request_id) <= 200),
  constraint llm_calls_attempt_check check (attempt between 1 and 100)
);
comment on table llm_calls is
  'The AI usage ledger (AI-5): every attempt of the gateway, cache hit and deterministic fallback, with tenant, user, feature, provider, model, key reference (never the key), tokens, latency, outcome and cost from llm_prices. Append-only.';
create index llm_calls_created_at_idx on llm_calls (tenant_id, created_at);

alter table llm_calls enable row level security;
-- The tenant's super_admins and directors read it; nobody writes it but
-- llm_begin / llm_finish, nobody updates or deletes it.
create policy "super admins and directors read their tenant's AI ledger"
  on llm_calls for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) in ('super_admin', 'director'));
grant select on llm_calls to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- analytics: key bytes and cached answers are not shown; the cost and
-- margin views are reports (analytics_reports, V19)
-- ---------------------------------------------------------------------------

insert into analytics_masking (table_name, column_name, masker) values
  ('llm_tenant_keys', 'ciphertext', 'redact'),
  ('llm_tenant_keys', 'nonce', 'redact'),
  ('llm_tenant_keys', 'wrapped_dek', 'redact'),
  ('llm_tenant_keys', 'dek_nonce', 'redact'),
  ('llm_cache', 'response', 'redact');

insert into analytics_reports (view_name) values
  ('v_llm_cost_daily'),
  ('v_llm_cost_monthly'),
  ('v_llm_margin_monthly');
