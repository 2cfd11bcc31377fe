-- The operator's records about tenants: tables keyed by tenant_id that are
-- not the tenant's data but what the operator knows of it (its sign-up,
-- subscription, the operator's invoices to it, its payments and dunning).
-- They live in the control database whatever the tenant's placement: a
-- tier move neither copies them to the tenant's new placement nor purges
-- them from the control database (the mover's catalogue of tables leaves
-- out every name listed here), so a tenant that grows out of the shared
-- tier keeps its subscription and its billing history.
-- (Schema `control` is in every database and schema-tier migration, as in
-- V45: the mover reads this list where it reads the source's tables.)
create table if not exists control.operator_tables (
  table_name text not null,
  why        text not null,
  constraint operator_tables_pkey primary key (table_name),
  constraint operator_tables_table_name_check check (table_name ~ '^[a-z][a-z0-9_]{0,62}$')
);
comment on table control.operator_tables is
  'Tables keyed by tenant that are the operator''s records about tenants, kept in the control database: a tier move leaves them where they are.';

insert into control.operator_tables (table_name, why) values
  ('signup_requests',           'the sign-up that made the tenant'),
  ('subscriptions',             'the tenant''s subscription to a plan'),
  ('subscription_plan_changes', 'the plan changes the operator bills'),
  ('billing_invoices',          'the operator''s invoices to the tenant'),
  ('billing_invoice_lines',     'the lines of the operator''s invoices'),
  ('billing_payments',          'the tenant''s payments of the operator''s invoices'),
  ('billing_transfer_proofs',   'transfer proofs the operator reviews'),
  ('billing_dunning',           'the reminders and locks of unpaid invoices')
on conflict (table_name) do nothing;

-- Where the operator's billing mail goes for a tenant placed in a schema or
-- database of its own: the addresses of its users who pay (billing.pay) as
-- its placement last told them (its profiles are there, not in the control
-- database). The month-end reads them there and writes them here before it
-- finalizes; finalization and dunning mail them. Tenants of this database's
-- shared tier are read from their profiles directly.
create table billing_contacts (
  tenant_id  uuid        not null,
  emails     text[]      not null,
  read_at    timestamptz not null default now(),
  constraint billing_contacts_pkey primary key (tenant_id),
  constraint billing_contacts_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint billing_contacts_emails_check check (cardinality(emails) <= 1000)
);
comment on table billing_contacts is
  'The billing mail addresses of a tenant placed elsewhere, as its placement last told them (the operator''s).';
alter table billing_contacts enable row level security;

insert into control.operator_tables (table_name, why) values
  ('billing_contacts', 'where the operator''s billing mail goes')
on conflict (table_name) do nothing;
