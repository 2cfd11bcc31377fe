-- Billing: the operator's subscriptions of tenants and its monthly invoices
-- to them (docs/billing.md).
--
-- One concern: what the operator bills a tenant for and how. These are the
-- operator's data about tenants, like `plans` and `tenants`: they are read
-- and written in the control database (the database holding `tenants`);
-- running the migrations in a tenant schema or another placement's
-- database leaves an unused, empty copy there. Request roles read their
-- own tenant's rows (RLS); every write goes through the SECURITY DEFINER
-- functions of sql/api/billing.sql (owner and worker), so no request role
-- holds INSERT/UPDATE/DELETE on them.
--
--   subscription_statuses     trialing -> active -> past_due -> soft_locked
--                             -> active | canceled (bizos.transitions, entity
--                             subscription: the lifecycle guard)
--   billing_intervals         monthly | annual
--   billing_invoice_statuses  draft -> finalized -> paid | void (entity
--                             billing_invoice)
--   billing_line_kinds        plan | proration | overage
--   subscriptions             one row per tenant
--   subscription_plan_changes the plan in force from a day on: what the
--                             plan fee and its prorations are computed from
--   billing_invoices          the monthly consolidated invoice, numbered
--                             gapless (BIL-<year>-<n>) when finalized
--   billing_invoice_lines     its lines
--   billing_settings          grace period before a draft is finalized,
--                             payment terms, the seller's name on the PDF
--   billing_clock             the billing clock: billing_now() is the real
--                             time unless a test froze it here

-- `trial_days` belongs to the plans (usage's migration adds it with every
-- other plan column); added here too when absent so that a tenant's trial
-- always comes from its plan.
alter table plans add column if not exists trial_days integer not null default 0;

-- ---------------------------------------------------------------------------
-- vocabularies
-- ---------------------------------------------------------------------------

create table subscription_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint subscription_statuses_pkey primary key (code),
  constraint subscription_statuses_position_key unique (position),
  constraint subscription_statuses_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table subscription_statuses is
  'Vocabulary: the statuses of a subscription (subscriptions.status; transitions in bizos.transitions, entity subscription).';
insert into subscription_statuses (code, position, description) values
  ('trialing',    1, 'in its plan''s free trial'),
  ('active',      2, 'billed and paid up'),
  ('past_due',    3, 'an invoice is overdue or its payment failed'),
  ('soft_locked', 4, 'writes refused until a payment is recorded; reads and exports work'),
  ('canceled',    5, 'ended (final)');

create table billing_intervals (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint billing_intervals_pkey primary key (code),
  constraint billing_intervals_position_key unique (position),
  constraint billing_intervals_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table billing_intervals is 'Vocabulary: how often a subscription''s plan fee is billed.';
insert into billing_intervals (code, position, description) values
  ('monthly', 1, 'the monthly price, every calendar month'),
  ('annual',  2, 'the annual price, once a year');

create table billing_invoice_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint billing_invoice_statuses_pkey primary key (code),
  constraint billing_invoice_statuses_position_key unique (position),
  constraint billing_invoice_statuses_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table billing_invoice_statuses is
  'Vocabulary: the statuses of the operator''s invoices to tenants (billing_invoices.status; transitions in bizos.transitions, entity billing_invoice).';
insert into billing_invoice_statuses (code, position, description) values
  ('draft',     1, 'open for corrections during the grace period; no number yet'),
  ('finalized', 2, 'numbered, sent and due'),
  ('paid',      3, 'paid (recorded by billing_record_payment)'),
  ('void',      4, 'cancelled (final; its number stays used)');

create table billing_line_kinds (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint billing_line_kinds_pkey primary key (code),
  constraint billing_line_kinds_position_key unique (position),
  constraint billing_line_kinds_code_check check (code ~ '^[a-z][a-z_]{0,19}$')
);
comment on table billing_line_kinds is 'Vocabulary: the kinds of lines of an operator invoice.';
insert into billing_line_kinds (code, position, description) values
  ('plan',      1, 'the plan fee of the whole period'),
  ('proration', 2, 'the plan fee of part of the period (a plan change, the trial''s end, a start or end mid-period)'),
  ('overage',   3, 'metered usage beyond what the plan includes');

do $grants$
declare
  t text;
begin
  foreach t in array array['subscription_statuses', 'billing_intervals', 'billing_invoice_statuses', 'billing_line_kinds'] loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the vocabulary" on %I for select to bizos_authenticated, bizos_worker using (true)', t);
    execute format('grant select on %I to bizos_authenticated, bizos_worker', t);
  end loop;
end
$grants$;

insert into bizos.transitions (entity, from_status, to_status) values
  ('subscription', null, 'trialing'), ('subscription', null, 'active'),
  ('subscription', 'trialing', 'active'), ('subscription', 'trialing', 'past_due'),
  ('subscription', 'trialing', 'canceled'),
  ('subscription', 'active', 'past_due'), ('subscription', 'active', 'canceled'),
  ('subscription', 'past_due', 'active'), ('subscription', 'past_due', 'soft_locked'),
  ('subscription', 'past_due', 'canceled'),
  ('subscription', 'soft_locked', 'active'), ('subscription', 'soft_locked', 'canceled'),
  ('billing_invoice', null, 'draft'),
  ('billing_invoice', 'draft', 'finalized'), ('billing_invoice', 'draft', 'void'),
  ('billing_invoice', 'finalized', 'paid'), ('billing_invoice', 'finalized', 'void')
on conflict do nothing;

-- Gapless across the operator: one series for all tenants (the operator is
-- the seller), drawn when an invoice is finalized.
insert into bizos.id_kinds (kind, prefix, mode) values ('billing_invoice', 'BIL', 'gapless')
on conflict (kind) do nothing;

insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'billing.month_end', coalesce(max(position), 0) + 1,
       'close the tenant''s ended billing periods into draft invoices and finalize (number, PDF, e-mail) the drafts whose grace period is over (payload: {})',
       10, 120, 5
  from job_kinds;

-- ---------------------------------------------------------------------------
-- settings and clock
-- ---------------------------------------------------------------------------

create table billing_settings (
  settings_id         boolean     not null default true,
  -- how long a draft stays open for corrections before it is finalized
  finalize_grace      interval    not null default interval '3 days',
  -- due date = issue date + these days
  payment_terms_days  integer     not null default 14,
  seller_name         text        not null default 'bizos',
  seller_address      text        not null default '',
  seller_tax_id       text        not null default '',
  -- the BFF's public address: the e-mail's link to the invoice's PDF
  public_url          text        not null default 'http://localhost:8080',
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint billing_settings_pkey primary key (settings_id),
  constraint billing_settings_settings_id_check check (settings_id),
  constraint billing_settings_finalize_grace_check check (finalize_grace >= interval '0'),
  constraint billing_settings_payment_terms_days_check check (payment_terms_days between 0 and 365),
  constraint billing_settings_seller_name_check check (length(btrim(seller_name)) between 1 and 200)
);
comment on table billing_settings is
  'The operator''s billing settings (one row): grace period of drafts, payment terms, the seller on the invoices.';
create trigger billing_settings_stamp_timestamps before insert or update on billing_settings
  for each row execute function bizos.stamp_timestamps();
alter table billing_settings enable row level security;
insert into billing_settings default values;

create table billing_clock (
  clock_id   boolean     not null default true,
  -- NULL: the real time; otherwise billing_now() answers this instant
  frozen_at  timestamptz,
  updated_at timestamptz not null default now(),
  constraint billing_clock_pkey primary key (clock_id),
  constraint billing_clock_clock_id_check check (clock_id)
);
comment on table billing_clock is
  'The billing clock (one row): billing_now() is now() unless frozen_at is set (tests move it instead of sleeping).';
alter table billing_clock enable row level security;
insert into billing_clock default values;

-- ---------------------------------------------------------------------------
-- subscriptions
-- ---------------------------------------------------------------------------

create table subscriptions (
  tenant_id            uuid        not null,
  subscription_id      uuid        not null default bizos.uuid_v7(),
  plan_code            text        not null,
  billing_interval     text        not null default 'monthly',
  status               text        not null,
  -- first day covered (tenant's time zone)
  started_on           date        not null,
  -- the trial ends at the start of this instant's day; NULL: no trial
  trial_ends_at        timestamptz,
  -- the current billing period [start, end), dates in the tenant's zone
  current_period_start date        not null,
  current_period_end   date        not null,
  active_at            timestamptz,
  past_due_at          timestamptz,
  soft_locked_at       timestamptz,
  canceled_at          timestamptz,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  constraint subscriptions_pkey primary key (tenant_id, subscription_id),
  constraint subscriptions_tenant_id_key unique (tenant_id),
  constraint subscriptions_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint subscriptions_plan_code_fkey foreign key (plan_code) references plans (plan_code),
  constraint subscriptions_billing_interval_fkey foreign key (billing_interval) references billing_intervals (code),
  constraint subscriptions_status_fkey foreign key (status) references subscription_statuses (code),
  constraint subscriptions_current_period_check check (current_period_end > current_period_start)
);
comment on table subscriptions is
  'A tenant''s subscription (one per tenant): plan, interval, status (lifecycle guard, entity subscription), trial end and current period.';
comment on column subscriptions.current_period_start is 'First day of the current billing period (tenant''s time zone); the period is [start, end).';
create trigger subscriptions_stamp_timestamps before insert or update on subscriptions
  for each row execute function bizos.stamp_timestamps();
create trigger subscriptions_lifecycle before insert or update on subscriptions
  for each row execute function bizos.lifecycle_guard('subscription', 'status');
alter table subscriptions enable row level security;
create policy "members read their tenant's subscription" on subscriptions for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on subscriptions to bizos_authenticated;
select bizos.enable_audit('subscriptions');

create table subscription_plan_changes (
  tenant_id        uuid        not null,
  change_id        uuid        not null default bizos.uuid_v7(),
  subscription_id  uuid        not null,
  -- the new plan is in force from the start of this day (tenant's zone)
  effective_on     date        not null,
  from_plan_code   text,
  to_plan_code     text        not null,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint subscription_plan_changes_pkey primary key (tenant_id, change_id),
  constraint subscription_plan_changes_subscription_fkey foreign key (tenant_id, subscription_id)
    references subscriptions (tenant_id, subscription_id) on delete cascade,
  constraint subscription_plan_changes_to_plan_code_fkey foreign key (to_plan_code) references plans (plan_code),
  constraint subscription_plan_changes_from_plan_code_fkey foreign key (from_plan_code) references plans (plan_code)
);
comment on table subscription_plan_changes is
  'The plan of a subscription from a day on (the first row: the plan it started with): the plan fee and prorations are computed from these.';
create index subscription_plan_changes_effective_on_idx on subscription_plan_changes (tenant_id, subscription_id, effective_on);
create trigger subscription_plan_changes_stamp_timestamps before insert or update on subscription_plan_changes
  for each row execute function bizos.stamp_timestamps();
alter table subscription_plan_changes enable row level security;
create policy "members read their tenant's plan changes" on subscription_plan_changes for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on subscription_plan_changes to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- invoices
-- ---------------------------------------------------------------------------

create table billing_invoices (
  tenant_id          uuid        not null,
  billing_invoice_id uuid        not null default bizos.uuid_v7(),
  subscription_id    uuid        not null,
  -- BIL-<year>-<n>, drawn gapless when finalized; NULL while a draft
  invoice_no         text,
  status             text        not null default 'draft',
  period_start       date        not null,
  period_end         date        not null,
  currency           text        not null default 'IDR',
  issue_date         date,
  due_date           date,
  subtotal           numeric     not null default 0,
  -- PPN: DPP = 11/12 of the subtotal, tax = 12% of DPP (sql/api/precheck.sql)
  dpp                numeric     not null default 0,
  tax                numeric     not null default 0,
  total              numeric     not null default 0,
  -- a draft is finalized once billing_now() passes this
  finalize_after     timestamptz not null,
  finalized_at       timestamptz,
  paid_at            timestamptz,
  voided_at          timestamptz,
  void_reason        text,
  emailed_at         timestamptz,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint billing_invoices_pkey primary key (tenant_id, billing_invoice_id),
  constraint billing_invoices_tenant_id_invoice_no_key unique (tenant_id, invoice_no),
  constraint billing_invoices_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint billing_invoices_subscription_fkey foreign key (tenant_id, subscription_id)
    references subscriptions (tenant_id, subscription_id) on delete cascade,
  constraint billing_invoices_status_fkey foreign key (status) references billing_invoice_statuses (code),
  constraint billing_invoices_period_check check (period_end > period_start),
  constraint billing_invoices_currency_check check (currency ~ '^[A-Z]{3}$'),
  -- a draft has no number (billing_finalize draws it)
  constraint billing_invoices_invoice_no_check check (invoice_no is null or status <> 'draft'),
  constraint billing_invoices_totals_check check (subtotal >= 0 and tax >= 0 and total = subtotal + tax),
  constraint billing_invoices_due_date_check check (due_date >= issue_date),
  constraint billing_invoices_void_reason_check check ((status = 'void') = (void_reason is not null))
);
comment on table billing_invoices is
  'The operator''s monthly consolidated invoice to a tenant: draft -> finalized -> paid | void (entity billing_invoice), numbered gapless when finalized.';
-- A rerun of the month-end run finds the period's invoice: one live
-- (not void) invoice per tenant and period.
create unique index billing_invoices_tenant_id_period_key on billing_invoices (tenant_id, period_start) where status <> 'void';
create index billing_invoices_status_idx on billing_invoices (status, finalize_after);
create trigger billing_invoices_stamp_timestamps before insert or update on billing_invoices
  for each row execute function bizos.stamp_timestamps();
create trigger billing_invoices_lifecycle before insert or update on billing_invoices
  for each row execute function bizos.lifecycle_guard('billing_invoice', 'status', 'draft=', 'void=voided_at');
alter table billing_invoices enable row level security;
create policy "members read their tenant's billing invoices" on billing_invoices for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and status <> 'draft');
grant select on billing_invoices to bizos_authenticated;
select bizos.enable_audit('billing_invoices');

create table billing_invoice_lines (
  tenant_id          uuid        not null,
  line_id            uuid        not null default bizos.uuid_v7(),
  billing_invoice_id uuid        not null,
  position           integer     not null,
  kind               text        not null,
  description        text        not null,
  plan_code          text,
  metric_code        text,
  -- the part of the period the line covers
  period_start       date        not null,
  period_end         date        not null,
  quantity           numeric     not null,
  unit               text        not null,
  unit_price         numeric     not null,
  amount             numeric     not null,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint billing_invoice_lines_pkey primary key (tenant_id, line_id),
  constraint billing_invoice_lines_invoice_fkey foreign key (tenant_id, billing_invoice_id)
    references billing_invoices (tenant_id, billing_invoice_id) on delete cascade,
  constraint billing_invoice_lines_tenant_id_billing_invoice_id_position_key unique (tenant_id, billing_invoice_id, position),
  constraint billing_invoice_lines_kind_fkey foreign key (kind) references billing_line_kinds (code),
  constraint billing_invoice_lines_plan_code_fkey foreign key (plan_code) references plans (plan_code),
  constraint billing_invoice_lines_period_check check (period_end > period_start),
  constraint billing_invoice_lines_description_check check (length(btrim(description)) between 1 and 500)
);
comment on table billing_invoice_lines is
  'Lines of an operator invoice: the plan fee, prorations (the rule is stated in each description) and metered overage.';
create trigger billing_invoice_lines_stamp_timestamps before insert or update on billing_invoice_lines
  for each row execute function bizos.stamp_timestamps();
alter table billing_invoice_lines enable row level security;
create policy "members read their tenant's billing invoice lines" on billing_invoice_lines for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on billing_invoice_lines to bizos_authenticated;

-- Tenants that already have a plan get their subscription: active (no
-- trial for a tenant already in use), in the month of their today.
with subs as (
  insert into subscriptions (tenant_id, plan_code, status, started_on, current_period_start, current_period_end)
  select t.tenant_id, t.plan_code, 'active', d.today, date_trunc('month', d.today)::date,
         (date_trunc('month', d.today) + interval '1 month')::date
    from tenants t
   cross join lateral (select (now() at time zone t.time_zone)::date as today) d
   where t.plan_code is not null
  returning tenant_id, subscription_id, plan_code, started_on
)
insert into subscription_plan_changes (tenant_id, subscription_id, effective_on, from_plan_code, to_plan_code)
select tenant_id, subscription_id, started_on, null, plan_code from subs;

-- The e-mail of a finalized invoice to the tenant's billing contacts (its
-- super admins); the PDF is behind the link (the outbox sends text).
insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('billing.invoice_finalized',
   'the operator''s monthly invoice to the tenant, finalized: number, period, total, due date and the PDF''s link',
   'profile.manage',
   '{invoice_no,period,total,due_date,pdf_url}',
   'bizos invoice {{invoice_no}} for {{tenant_name}}',
   E'Invoice {{invoice_no}} for {{tenant_name}}, period {{period}}.\nTotal (PPN included): {{total}}\nDue date: {{due_date}}\n\nThe invoice as a PDF: {{pdf_url}}\n',
   E'<p>Invoice <strong>{{invoice_no}}</strong> for {{tenant_name}}, period {{period}}.</p>\n<p>Total (PPN included): <strong>{{total}}</strong><br>Due date: {{due_date}}</p>\n<p><a href="{{pdf_url}}">The invoice as a PDF</a></p>\n')
on conflict (template) do nothing;

-- The operator's view of its tenants (sql/api/billing.sql) in analytics.
insert into analytics_reports (view_name) values ('v_billing_tenants') on conflict do nothing;
