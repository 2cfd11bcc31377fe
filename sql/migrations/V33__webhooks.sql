-- Signed webhooks (issue 19, B2B-8): tenant admins register HTTP(S)
-- endpoints for event types; the database writes an event to an outbox by
-- triggers on leads, tickets, invoices and payments, in the transaction of
-- the change (a rolled-back change leaves nothing, a committed one exactly
-- one event), with one delivery per subscribed endpoint; the worker
-- delivers them in batches (`webhook.deliver` jobs), signed per the
-- Standard Webhooks specification, retried on Svix's schedule and
-- dead-lettered, with a log row per attempt.
--
--   webhook_event_types        vocabulary: the event types (lead.created, ...)
--   webhook_delivery_statuses  vocabulary: pending, succeeded, dead
--   webhook_endpoints          a tenant's endpoints: URL, description,
--                              enabled, the failure streak (failing_since)
--   webhook_subscriptions      the event types an endpoint receives
--   webhook_secrets            its signing secrets, envelope-encrypted by the
--                              BFF under BIZOS_WEBHOOKS_MASTER_KEY (the
--                              database never sees one in clear); a rotated
--                              secret keeps signing until expires_at
--   webhook_events             the outbox: one row per change, the body sent
--                              ({type, timestamp, data}); the trigger writes
--                              only this row (the change's cost)
--   webhook_deliveries         one per (event, endpoint), fanned out by the
--                              worker: status, attempts of the current
--                              round, when the next is due
--   webhook_attempts           the delivery log: one row per HTTP attempt
--                              (status code, duration, error, response
--                              excerpt); append-only
--
-- Request roles read these tables only with the permission webhook.manage
-- (super_admin by default) and write nothing directly: every write is a
-- SECURITY DEFINER function of sql/api/webhooks.sql that checks the
-- permission (endpoints, rotation, replay), a trigger (events, deliveries)
-- or the worker's functions (attempts, delivery outcomes). The byte columns
-- of the secrets are readable by no request role (column privileges); the
-- worker reads them through webhook_secret_material.
--
-- The trigger attachments (create or replace trigger) live beside their
-- function in sql/api/webhooks.sql (the function exists only once the api
-- has run).

-- ---------------------------------------------------------------- vocabularies
create table webhook_event_types (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint webhook_event_types_pkey primary key (code),
  constraint webhook_event_types_position_key unique (position),
  constraint webhook_event_types_code_check check (code ~ '^[a-z][a-z_]{0,29}\.[a-z][a-z_]{0,29}$')
);
comment on table webhook_event_types is
  'Vocabulary: the event types webhooks deliver (webhook_subscriptions.event_type, webhook_events.event_type).';
insert into webhook_event_types (code, position, description) values
  ('lead.created',          1, 'a lead was created'),
  ('lead.assigned',         2, 'a lead got a (new) sales owner'),
  ('ticket.created',        3, 'a ticket or inquiry was created'),
  ('ticket.status_changed', 4, 'the status of a ticket or inquiry changed'),
  ('invoice.created',       5, 'an invoice was created (draft or issued)'),
  ('invoice.paid',          6, 'an invoice became PAID'),
  ('payment.recorded',      7, 'a payment was recorded against an invoice');
grant select on webhook_event_types to bizos_authenticated, bizos_worker;

create table webhook_delivery_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint webhook_delivery_statuses_pkey primary key (code),
  constraint webhook_delivery_statuses_position_key unique (position),
  constraint webhook_delivery_statuses_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table webhook_delivery_statuses is
  'Vocabulary: the states of a webhook delivery (webhook_deliveries.status; lower case).';
insert into webhook_delivery_statuses (code, position, description) values
  ('pending',   1, 'to be attempted at next_attempt_at (first attempt, or a retry after a failure)'),
  ('succeeded', 2, 'the endpoint answered 2xx'),
  ('dead',      3, 'every attempt of the retry schedule failed, or the endpoint was disabled: replay it to try again');
grant select on webhook_delivery_statuses to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------- endpoints
create table webhook_endpoints (
  tenant_id       uuid        not null,
  endpoint_id     uuid        not null default gen_random_uuid(),
  url             text        not null,
  description     text,
  enabled         boolean     not null default true,
  -- When and why it was disabled (by an admin, or after failing for days).
  disabled_at     timestamptz,
  disabled_reason text,
  -- The first failed attempt since the last success (NULL: not failing).
  failing_since   timestamptz,
  last_success_at timestamptz,
  last_failure_at timestamptz,
  created_by      uuid        default bizos.uid(),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint webhook_endpoints_pkey primary key (tenant_id, endpoint_id),
  -- The target of the subscriptions' copy of enabled (ON UPDATE CASCADE).
  constraint webhook_endpoints_endpoint_id_enabled_key unique (tenant_id, endpoint_id, enabled),
  constraint webhook_endpoints_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_endpoints_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  -- http(s), a host, no user info, no blanks or control characters; where
  -- it may point (no private addresses) is checked by the BFF and the
  -- worker, which resolve the name.
  constraint webhook_endpoints_url_check
    check (length(url) <= 2000 and url ~ '^https?://[^[:space:][:cntrl:]/?#@]+([/?#][^[:space:][:cntrl:]]*)?$'),
  constraint webhook_endpoints_description_check
    check (length(description) between 1 and 500 and description !~ '[[:cntrl:]]'),
  constraint webhook_endpoints_disabled_check check (enabled = (disabled_at is null)),
  constraint webhook_endpoints_disabled_reason_check check (length(disabled_reason) <= 500)
);
comment on table webhook_endpoints is
  'Webhook endpoints of a tenant: where events of the subscribed types are POSTed, signed with the endpoint''s secrets; disabled after failing continuously for 5 days.';
create trigger webhook_endpoints_stamp_timestamps before insert or update on webhook_endpoints
  for each row execute function stamp_timestamps();
create trigger webhook_endpoints_keep_created_by before insert or update on webhook_endpoints
  for each row execute function keep_created_by();
alter table webhook_endpoints enable row level security;
create policy "webhook managers read their tenant's endpoints"
  on webhook_endpoints for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select on webhook_endpoints to bizos_authenticated;

create table webhook_subscriptions (
  tenant_id   uuid        not null,
  endpoint_id uuid        not null,
  event_type  text        not null,
  -- The endpoint's enabled, kept equal to it by the foreign key (ON UPDATE
  -- CASCADE): the triggers ask one index whether an enabled endpoint of the
  -- tenant wants a type, without a join on every change.
  enabled     boolean     not null default true,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint webhook_subscriptions_pkey primary key (tenant_id, endpoint_id, event_type),
  constraint webhook_subscriptions_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_subscriptions_endpoint_id_enabled_fkey foreign key (tenant_id, endpoint_id, enabled)
    references webhook_endpoints (tenant_id, endpoint_id, enabled) on update cascade on delete cascade,
  constraint webhook_subscriptions_event_type_fkey foreign key (event_type) references webhook_event_types (code)
);
comment on table webhook_subscriptions is
  'The event types a webhook endpoint receives (enabled: the endpoint''s, kept by the foreign key).';
-- The triggers' question: does an enabled endpoint of the tenant want this type?
create index webhook_subscriptions_event_type_idx on webhook_subscriptions (tenant_id, event_type) where enabled;
create trigger webhook_subscriptions_stamp_timestamps before insert or update on webhook_subscriptions
  for each row execute function stamp_timestamps();
alter table webhook_subscriptions enable row level security;
create policy "webhook managers read their tenant's subscriptions"
  on webhook_subscriptions for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select on webhook_subscriptions to bizos_authenticated;

create table webhook_secrets (
  tenant_id     uuid        not null,
  secret_id     uuid        not null default gen_random_uuid(),
  endpoint_id   uuid        not null,
  -- Envelope encryption by the BFF (as llm_tenant_keys): the secret under a
  -- data key (AES-256-GCM, bound to tenant, endpoint and secret id), the
  -- data key under the master key master_key_id names.
  ciphertext    bytea       not null,
  nonce         bytea       not null,
  wrapped_dek   bytea       not null,
  dek_nonce     bytea       not null,
  master_key_id text        not null,
  -- NULL: the current secret. Set by a rotation: the secret still signs
  -- (a second signature) until then.
  expires_at    timestamptz,
  created_by    uuid        default bizos.uid(),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint webhook_secrets_pkey primary key (tenant_id, secret_id),
  constraint webhook_secrets_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_secrets_endpoint_id_fkey foreign key (tenant_id, endpoint_id)
    references webhook_endpoints (tenant_id, endpoint_id) on delete cascade,
  constraint webhook_secrets_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint webhook_secrets_ciphertext_check check (length(ciphertext) between 1 and 1024),
  constraint webhook_secrets_nonce_check check (length(nonce) between 8 and 64),
  constraint webhook_secrets_wrapped_dek_check check (length(wrapped_dek) between 16 and 1024),
  constraint webhook_secrets_dek_nonce_check check (length(dek_nonce) between 8 and 64),
  constraint webhook_secrets_master_key_id_check check (master_key_id ~ '^[A-Za-z0-9._:-]{1,100}$')
);
comment on table webhook_secrets is
  'Signing secrets of webhook endpoints, envelope-encrypted by the BFF; the current one (expires_at NULL) and rotated ones that still sign until expires_at. The byte columns are readable only through webhook_secret_material (the worker''s login).';
-- One current secret per endpoint.
create unique index webhook_secrets_current_key on webhook_secrets (tenant_id, endpoint_id) where expires_at is null;
create index webhook_secrets_endpoint_id_idx on webhook_secrets (tenant_id, endpoint_id);
create trigger webhook_secrets_stamp_timestamps before insert or update on webhook_secrets
  for each row execute function stamp_timestamps();
create trigger webhook_secrets_keep_created_by before insert or update on webhook_secrets
  for each row execute function keep_created_by();
alter table webhook_secrets enable row level security;
create policy "webhook managers read their tenant's secret metadata"
  on webhook_secrets for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select (tenant_id, secret_id, endpoint_id, master_key_id, expires_at, created_by, created_at, updated_at)
  on webhook_secrets to bizos_authenticated;

-- ---------------------------------------------------------------- the outbox
-- Append-only (no updated_at): an event is what happened, as it was sent.
create table webhook_events (
  tenant_id  uuid        not null,
  event_id   uuid        not null default gen_random_uuid(),
  event_type text        not null,
  -- The lead, ticket, invoice or payment the event is about.
  subject_id uuid        not null,
  -- The body sent, {type, timestamp, data}; its jsonb text is what is signed.
  payload    jsonb       not null,
  -- Who made the change (the request's user; NULL: system work or the
  -- owner). No foreign key: the outbox never refuses a change.
  created_by uuid,
  created_at timestamptz not null default now(),
  -- When the worker made its deliveries, one per endpoint subscribed then
  -- (NULL: not yet).
  fanned_out_at timestamptz,
  constraint webhook_events_pkey primary key (tenant_id, event_id),
  constraint webhook_events_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_events_event_type_fkey foreign key (event_type) references webhook_event_types (code),
  constraint webhook_events_payload_check check (jsonb_typeof(payload) = 'object' and payload ? 'type'
                                                 and payload ? 'timestamp' and payload ? 'data')
);
comment on table webhook_events is
  'The webhook outbox: one row per change of a subscribed type, written by triggers in the transaction of the change (fanned out to deliveries by the worker); the payload is the Standard Webhooks body {type, timestamp, data} (identifiers and states, no personal data).';
-- The worker's fan-out: a tenant's events without deliveries yet.
create index webhook_events_fan_out_idx on webhook_events (tenant_id, created_at) where fanned_out_at is null;
-- Replay of everything since a time (rows arrive in time order: a BRIN
-- index costs the insert next to nothing).
create index webhook_events_created_at_idx on webhook_events using brin (created_at);
alter table webhook_events enable row level security;
create policy "webhook managers read their tenant's events"
  on webhook_events for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select on webhook_events to bizos_authenticated;

create table webhook_deliveries (
  tenant_id        uuid        not null,
  delivery_id      uuid        not null default gen_random_uuid(),
  event_id         uuid        not null,
  endpoint_id      uuid        not null,
  status           text        not null default 'pending',
  -- Attempts of the current round (a replay starts a new round); they
  -- decide the next wait of the retry schedule.
  attempts         integer     not null default 0,
  -- Pending: when the next attempt is due. While a worker delivers it, the
  -- end of its lease (claimed deliveries are not due again before).
  next_attempt_at  timestamptz not null default now(),
  -- The worker batch that holds it (its outcome is recorded only with it).
  claim_id         uuid,
  last_attempt_at  timestamptz,
  last_status_code integer,
  last_error       text,
  succeeded_at     timestamptz,
  dead_at          timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint webhook_deliveries_pkey primary key (tenant_id, delivery_id),
  constraint webhook_deliveries_event_id_endpoint_id_key unique (tenant_id, event_id, endpoint_id),
  constraint webhook_deliveries_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_deliveries_event_id_fkey foreign key (tenant_id, event_id)
    references webhook_events (tenant_id, event_id) on delete cascade,
  constraint webhook_deliveries_endpoint_id_fkey foreign key (tenant_id, endpoint_id)
    references webhook_endpoints (tenant_id, endpoint_id) on delete cascade,
  constraint webhook_deliveries_status_fkey foreign key (status) references webhook_delivery_statuses (code),
  constraint webhook_deliveries_attempts_check check (attempts between 0 and 1000),
  constraint webhook_deliveries_last_status_code_check check (last_status_code between 100 and 599),
  constraint webhook_deliveries_last_error_check check (length(last_error) <= 2000)
);
comment on table webhook_deliveries is
  'One delivery of a webhook event to an endpoint: pending (due at next_attempt_at), succeeded or dead; claimed in batches by the worker (FOR UPDATE SKIP LOCKED, a lease in next_attempt_at).';
-- The claim: a tenant's due deliveries, oldest first.
create index webhook_deliveries_due_idx on webhook_deliveries (tenant_id, next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint_id_idx on webhook_deliveries (tenant_id, endpoint_id, created_at);
create trigger webhook_deliveries_stamp_timestamps before insert or update on webhook_deliveries
  for each row execute function stamp_timestamps();
alter table webhook_deliveries enable row level security;
create policy "webhook managers read their tenant's deliveries"
  on webhook_deliveries for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select on webhook_deliveries to bizos_authenticated;

-- Append-only: one row per HTTP attempt.
create table webhook_attempts (
  tenant_id        uuid        not null,
  attempt_id       uuid        not null default gen_random_uuid(),
  delivery_id      uuid        not null,
  -- 1 for the first attempt of a round (a replay starts again at 1).
  attempt_no       integer     not null,
  attempted_at     timestamptz not null,
  duration_ms      integer     not null,
  -- NULL: no HTTP answer (refused address, connection, timeout).
  status_code      integer,
  succeeded        boolean     not null,
  error            text,
  -- The start of the answer's body, for people.
  response_excerpt text,
  created_at       timestamptz not null default now(),
  constraint webhook_attempts_pkey primary key (tenant_id, attempt_id),
  constraint webhook_attempts_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint webhook_attempts_delivery_id_fkey foreign key (tenant_id, delivery_id)
    references webhook_deliveries (tenant_id, delivery_id) on delete cascade,
  constraint webhook_attempts_attempt_no_check check (attempt_no between 1 and 1000),
  constraint webhook_attempts_duration_ms_check check (duration_ms >= 0),
  constraint webhook_attempts_status_code_check check (status_code between 100 and 599),
  constraint webhook_attempts_error_check check (length(error) <= 2000),
  constraint webhook_attempts_response_excerpt_check check (length(response_excerpt) <= 1000)
);
comment on table webhook_attempts is
  'The webhook delivery log: one row per HTTP attempt, with its status code, duration, error and the start of the answer.';
create index webhook_attempts_delivery_id_idx on webhook_attempts (tenant_id, delivery_id, attempted_at);
alter table webhook_attempts enable row level security;
create policy "webhook managers read their tenant's delivery log"
  on webhook_attempts for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('webhook.manage')));
grant select on webhook_attempts to bizos_authenticated;

-- ---------------------------------------------------------------- job kind, permission, e-mail
-- One job delivers a tenant's due deliveries in concurrent batches until
-- none is due, then schedules the next (sql/api/webhooks.sql).
insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'webhook.deliver', coalesce(max(position), 0) + 1,
       'deliver a tenant''s due webhook deliveries, in concurrent batches (system job)', 10, 120, 5
  from job_kinds;

-- Who manages webhooks (new tenants get it from default_role_permissions(),
-- platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, 'super_admin', 'webhook.manage'
  from tenants t
on conflict do nothing;

insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('webhook.endpoint_disabled',
   'the tenant''s webhook managers are told that an endpoint failing for days was disabled',
   'webhook.manage',
   '{endpoint_url,failing_since,last_error}',
   '{{tenant_name}}: a webhook endpoint was disabled',
   E'The webhook endpoint {{endpoint_url}} of {{tenant_name}} failed every delivery since {{failing_since}} and was disabled.\nLast error: {{last_error}}\n\nFix the endpoint, enable it again and replay the events since then.\n\n{{tenant_name}}\n',
   E'<p>The webhook endpoint <strong>{{endpoint_url}}</strong> of {{tenant_name}} failed every delivery since {{failing_since}} and was disabled.</p>\n<p>Last error: {{last_error}}</p>\n<p>Fix the endpoint, enable it again and replay the events since then.</p>\n<p>{{tenant_name}}</p>\n');

-- Analytics: the sealed secrets and what receivers answered are not shown.
insert into analytics_masking (table_name, column_name, masker) values
  ('webhook_secrets', 'ciphertext', 'redact'),
  ('webhook_secrets', 'nonce', 'redact'),
  ('webhook_secrets', 'wrapped_dek', 'redact'),
  ('webhook_secrets', 'dek_nonce', 'redact'),
  ('webhook_attempts', 'response_excerpt', 'redact');
