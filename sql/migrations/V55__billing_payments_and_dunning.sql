-- Payments of the operator's invoices to tenants (docs/payments.md): what
-- providers delivered, the payments recorded against billing_invoices,
-- tenants' manual transfer proofs, and the dunning of unpaid invoices.
--
-- One concern: how an operator invoice gets paid, or the tenant reminded
-- and, in the end, soft-locked. Like the billing tables (V54) these are the
-- operator's data about tenants, read and written in the control database;
-- running the migrations elsewhere leaves an unused, empty copy. Request
-- roles read their own tenant's rows (RLS); every write goes through the
-- SECURITY DEFINER functions of sql/api/payments.sql.
--
--   control.payment_deliveries  every provider delivery, raw, signed or not
--   control.payment_events      one row per provider event processed: the
--                               key that makes a replay have no effect
--   billing_payment_methods     stripe | midtrans | manual_transfer
--   billing_payments            money received against an operator invoice
--   billing_transfer_proof_statuses  pending -> approved | rejected
--   billing_transfer_proofs     a tenant's proof of a bank transfer
--   billing_dunning             per unpaid invoice: day 0, failures,
--                               reminders sent, the lock
--   billing_settings            + the reminder days and the grace period

create schema if not exists control;

-- ---------------------------------------------------------------------------
-- provider deliveries (control catalogue: not a tenant's until verified)
-- ---------------------------------------------------------------------------

-- Qualified and without a tenant key: a delivery arrives before anything
-- says whose it is, and one with a bad signature is nobody's. Only the
-- functions of payments.sql (owner) write it; the BFF's login calls them.
create table if not exists control.payment_deliveries (
  delivery_id  uuid        not null default gen_random_uuid(),
  provider     text        not null,
  received_at  timestamptz not null default now(),
  -- the headers that matter for verification (Stripe-Signature, …)
  headers      jsonb       not null default '{}',
  -- the body exactly as it came
  body         bytea       not null,
  signature_ok boolean     not null,
  -- why the signature was refused (missing, malformed, expired, mismatch,
  -- not_configured)
  refusal      text,
  event_id     text,
  -- accepted (applied or recorded), duplicate, rejected (signature),
  -- invalid (signed but not of the provider's shape)
  outcome      text        not null,
  constraint payment_deliveries_pkey primary key (delivery_id),
  constraint payment_deliveries_provider_check check (provider in ('stripe', 'midtrans')),
  constraint payment_deliveries_outcome_check check (outcome in ('accepted', 'duplicate', 'rejected', 'invalid')),
  constraint payment_deliveries_refusal_check check ((refusal is null) = signature_ok)
);
create index if not exists payment_deliveries_event_idx on control.payment_deliveries (provider, event_id);
create index if not exists payment_deliveries_received_at_idx on control.payment_deliveries (received_at);
comment on table control.payment_deliveries is
  'Every delivery of a payment provider''s webhook, raw (headers that matter, body bytes), with its signature''s verdict and outcome.';

-- The first delivery of each event decides; later ones are duplicates.
create table if not exists control.payment_events (
  provider           text        not null,
  event_id           text        not null,
  delivery_id        uuid        not null,
  event_type         text        not null,
  -- paid | failed | pending | ignored (the provider's meaning)
  outcome            text        not null,
  tenant_id          uuid,
  billing_invoice_id uuid,
  -- what it did: payment_recorded, already_recorded, failure_recorded,
  -- after_paid (a failure once paid: nothing), unmatched, recorded
  effect             text        not null,
  payment_id         uuid,
  payload            jsonb       not null,
  processed_at       timestamptz not null default now(),
  constraint payment_events_pkey primary key (provider, event_id),
  constraint payment_events_delivery_id_fkey foreign key (delivery_id)
    references control.payment_deliveries (delivery_id),
  constraint payment_events_outcome_check check (outcome in ('paid', 'failed', 'pending', 'ignored'))
);
create index if not exists payment_events_invoice_idx on control.payment_events (tenant_id, billing_invoice_id);
comment on table control.payment_events is
  'Provider events processed, one row each (the first delivery): a replayed event finds its row and has no effect.';

-- ---------------------------------------------------------------------------
-- vocabularies
-- ---------------------------------------------------------------------------

create table billing_payment_methods (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint billing_payment_methods_pkey primary key (code),
  constraint billing_payment_methods_position_key unique (position),
  constraint billing_payment_methods_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table billing_payment_methods is 'Vocabulary: how a payment of an operator invoice came.';
insert into billing_payment_methods (code, position, description) values
  ('stripe',          1, 'card payment through Stripe (webhook)'),
  ('midtrans',        2, 'Indonesian payment methods through Midtrans (notification)'),
  ('manual_transfer', 3, 'bank transfer, its proof approved by the operator');

create table billing_transfer_proof_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint billing_transfer_proof_statuses_pkey primary key (code),
  constraint billing_transfer_proof_statuses_position_key unique (position),
  constraint billing_transfer_proof_statuses_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table billing_transfer_proof_statuses is
  'Vocabulary: the statuses of a transfer proof (transitions in bizos.transitions, entity billing_transfer_proof).';
insert into billing_transfer_proof_statuses (code, position, description) values
  ('pending',  1, 'uploaded by the tenant, waiting for the operator'),
  ('approved', 2, 'approved: the payment is recorded'),
  ('rejected', 3, 'rejected with a reason');

do $grants$
declare
  t text;
begin
  foreach t in array array['billing_payment_methods', 'billing_transfer_proof_statuses'] loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the vocabulary" on %I for select to bizos_authenticated, bizos_worker using (true)', t);
    execute format('grant select on %I to bizos_authenticated, bizos_worker', t);
  end loop;
end
$grants$;

insert into bizos.transitions (entity, from_status, to_status) values
  ('billing_transfer_proof', null, 'pending'),
  ('billing_transfer_proof', 'pending', 'approved'),
  ('billing_transfer_proof', 'pending', 'rejected')
on conflict do nothing;

-- ---------------------------------------------------------------------------
-- payments
-- ---------------------------------------------------------------------------

create table billing_payments (
  tenant_id          uuid        not null,
  payment_id         uuid        not null default bizos.uuid_v7(),
  billing_invoice_id uuid        not null,
  method             text        not null,
  amount             numeric     not null,
  currency           text        not null,
  -- the provider's id of the payment (Stripe invoice or PaymentIntent,
  -- Midtrans transaction, the transfer proof): one payment per reference
  reference          text        not null,
  received_at        timestamptz not null,
  -- the operator (manual transfer) or the provider event that recorded it
  recorded_by        text        not null,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint billing_payments_pkey primary key (tenant_id, payment_id),
  constraint billing_payments_tenant_id_method_reference_key unique (tenant_id, method, reference),
  constraint billing_payments_invoice_fkey foreign key (tenant_id, billing_invoice_id)
    references billing_invoices (tenant_id, billing_invoice_id) on delete cascade,
  constraint billing_payments_method_fkey foreign key (method) references billing_payment_methods (code),
  constraint billing_payments_amount_check check (amount > 0),
  constraint billing_payments_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint billing_payments_reference_check check (length(btrim(reference)) between 1 and 200)
);
comment on table billing_payments is
  'Money received against an operator invoice (billing_record_payment): one row per provider reference, so a replay records nothing twice.';
create index billing_payments_invoice_idx on billing_payments (tenant_id, billing_invoice_id);
create trigger billing_payments_stamp_timestamps before insert or update on billing_payments
  for each row execute function bizos.stamp_timestamps();
alter table billing_payments enable row level security;
create policy "members read their tenant's billing payments" on billing_payments for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on billing_payments to bizos_authenticated;
select bizos.enable_audit('billing_payments');

-- ---------------------------------------------------------------------------
-- manual transfer proofs
-- ---------------------------------------------------------------------------

insert into storage_buckets (bucket, max_bytes, content_types, description) values
  ('transfer-proofs', 10485760, array['image/%', 'application/pdf'],
   'Proofs of bank transfers paying the operator''s invoices')
on conflict (bucket) do nothing;

create table billing_transfer_proofs (
  tenant_id          uuid        not null,
  proof_id           uuid        not null default bizos.uuid_v7(),
  billing_invoice_id uuid        not null,
  object_id          uuid        not null,
  status             text        not null default 'pending',
  -- the operator's decision
  decided_at         timestamptz,
  decided_by         text,
  reject_reason      text,
  payment_id         uuid,
  created_by         uuid        default bizos.uid(),
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint billing_transfer_proofs_pkey primary key (tenant_id, proof_id),
  constraint billing_transfer_proofs_invoice_fkey foreign key (tenant_id, billing_invoice_id)
    references billing_invoices (tenant_id, billing_invoice_id) on delete cascade,
  constraint billing_transfer_proofs_object_fkey foreign key (tenant_id, object_id)
    references objects (tenant_id, object_id),
  constraint billing_transfer_proofs_payment_fkey foreign key (tenant_id, payment_id)
    references billing_payments (tenant_id, payment_id),
  constraint billing_transfer_proofs_status_fkey foreign key (status) references billing_transfer_proof_statuses (code),
  constraint billing_transfer_proofs_reject_reason_check
    check ((status = 'rejected') = (reject_reason is not null) and length(btrim(reject_reason)) between 1 and 500),
  constraint billing_transfer_proofs_payment_id_check check ((status = 'approved') = (payment_id is not null))
);
comment on table billing_transfer_proofs is
  'A tenant''s proof of a bank transfer for an operator invoice (bucket transfer-proofs): pending -> approved (the payment recorded) | rejected (with a reason).';
create index billing_transfer_proofs_status_idx on billing_transfer_proofs (status, created_at);
create index billing_transfer_proofs_invoice_idx on billing_transfer_proofs (tenant_id, billing_invoice_id);
create trigger billing_transfer_proofs_stamp_timestamps before insert or update on billing_transfer_proofs
  for each row execute function bizos.stamp_timestamps();
create trigger billing_transfer_proofs_keep_created_by before insert or update on billing_transfer_proofs
  for each row execute function bizos.keep_created_by();
create trigger billing_transfer_proofs_lifecycle before insert or update on billing_transfer_proofs
  for each row execute function bizos.lifecycle_guard('billing_transfer_proof', 'status', 'pending=',
                                                      'approved=decided_at', 'rejected=decided_at');
create trigger billing_transfer_proofs_require_own_object before insert on billing_transfer_proofs
  for each row execute function require_own_object('transfer-proofs');
alter table billing_transfer_proofs enable row level security;
create policy "members read their tenant's transfer proofs" on billing_transfer_proofs for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on billing_transfer_proofs to bizos_authenticated;
select bizos.enable_audit('billing_transfer_proofs');

-- Who pays the operator's invoices (new tenants get it from
-- default_role_permissions(), platform.sql).
insert into permissions (code, position, description)
select 'billing.pay', (select max(position) from permissions) + 1,
       'upload transfer proofs for the operator''s invoices and receive its payment reminders'
 where not exists (select 1 from permissions p where p.code = 'billing.pay');
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'billing.pay'
  from tenants t
 cross join (values ('super_admin'), ('finance')) as r (app_role)
on conflict do nothing;

-- ---------------------------------------------------------------------------
-- dunning
-- ---------------------------------------------------------------------------

alter table billing_settings
  -- days after day 0 (the first failure or the due date passed) on which
  -- a reminder goes out; the lock follows the last one
  add column dunning_reminder_days integer[] not null default '{0,3,7}',
  -- days after the last reminder before the tenant is soft-locked
  add column dunning_grace_days integer not null default 3,
  add constraint billing_settings_dunning_reminder_days_check
    check (cardinality(dunning_reminder_days) between 1 and 10
           and array_position(dunning_reminder_days, null) is null
           and 0 <= all (dunning_reminder_days) and 365 >= all (dunning_reminder_days)),
  add constraint billing_settings_dunning_grace_days_check check (dunning_grace_days between 0 and 365);

create table billing_dunning (
  tenant_id          uuid        not null,
  billing_invoice_id uuid        not null,
  -- day 0 (tenant's time zone): the first failed payment, or the day
  -- after the due date
  started_on         date        not null,
  cause              text        not null,
  failures           integer     not null default 0,
  last_failure_at    timestamptz,
  last_failure       text,
  reminders_sent     integer     not null default 0,
  last_reminder_on   date,
  -- the subscription was soft-locked for this invoice
  locked_at          timestamptz,
  -- paid or voided: dunning over
  resolved_at        timestamptz,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint billing_dunning_pkey primary key (tenant_id, billing_invoice_id),
  constraint billing_dunning_invoice_fkey foreign key (tenant_id, billing_invoice_id)
    references billing_invoices (tenant_id, billing_invoice_id) on delete cascade,
  constraint billing_dunning_cause_check check (cause in ('payment_failed', 'overdue')),
  constraint billing_dunning_counts_check check (failures >= 0 and reminders_sent >= 0)
);
comment on table billing_dunning is
  'Dunning of an unpaid operator invoice: day 0, failed payments, reminders sent, the soft lock; resolved when paid or voided.';
create index billing_dunning_open_idx on billing_dunning (tenant_id) where resolved_at is null;
create trigger billing_dunning_stamp_timestamps before insert or update on billing_dunning
  for each row execute function bizos.stamp_timestamps();
alter table billing_dunning enable row level security;
create policy "members read their tenant's dunning" on billing_dunning for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on billing_dunning to bizos_authenticated;

insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'billing.dunning', coalesce(max(position), 0) + 1,
       'the tenant''s dunning at billing_now(): opens dunning of overdue invoices, sends the reminders due, soft-locks after the last one and its grace period (payload: {})',
       10, 60, 5
  from job_kinds;

insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('billing.payment_reminder',
   'a reminder that an invoice of the operator is unpaid (dunning)',
   'billing.pay',
   '{invoice_no,total,currency,due_date,reminder,reminders,lock_on,reason}',
   '{{tenant_name}}: invoice {{invoice_no}} is unpaid (reminder {{reminder}} of {{reminders}})',
   E'Invoice {{invoice_no}} of {{total}} {{currency}}, due {{due_date}}, is unpaid: {{reason}}.\n\nThis is reminder {{reminder}} of {{reminders}}. Unless it is paid, your organisation becomes read-only on {{lock_on}}: nothing is deleted, and everything works again as soon as the payment is recorded.\n\nPay by card, through Midtrans, or by bank transfer (upload the proof in Billing).\n',
   E'<p>Invoice <b>{{invoice_no}}</b> of {{total}} {{currency}}, due {{due_date}}, is unpaid: {{reason}}.</p>\n<p>This is reminder {{reminder}} of {{reminders}}. Unless it is paid, your organisation becomes read-only on {{lock_on}}: nothing is deleted, and everything works again as soon as the payment is recorded.</p>\n<p>Pay by card, through Midtrans, or by bank transfer (upload the proof in Billing).</p>\n'),
  ('billing.soft_locked',
   'the organisation is read-only until an unpaid invoice of the operator is paid',
   'billing.pay',
   '{invoice_no,total,currency}',
   '{{tenant_name}} is read-only until invoice {{invoice_no}} is paid',
   E'Invoice {{invoice_no}} of {{total}} {{currency}} is still unpaid, so {{tenant_name}} is now read-only: your data is all there and can be read and exported, but nothing can be changed.\n\nEverything works again as soon as the payment is recorded.\n',
   E'<p>Invoice <b>{{invoice_no}}</b> of {{total}} {{currency}} is still unpaid, so {{tenant_name}} is now read-only: your data is all there and can be read and exported, but nothing can be changed.</p>\n<p>Everything works again as soon as the payment is recorded.</p>\n');
