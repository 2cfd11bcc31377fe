-- Vocabularies (issue 13): every closed set of terms that tables, SQL
-- functions, the BFF and the OpenAPI document share is defined once, as a
-- lookup table, instead of as `in (...)` lists repeated in check
-- constraints, function bodies and Rust.
--
-- One table per vocabulary: code (the term), position (the order in which
-- it is listed: documents, error messages) and a description. They are
-- catalogues of the whole database: no tenant_id (the Citus plan makes them
-- reference tables, copied to every node), readable by every request role,
-- written only by the owner (a migration). The tables that use a term refer
-- to it with a foreign key named <table>_<column>_fkey, which replaces the
-- check constraint of the same column. The `vocabulary` view over all of
-- them and `vocabulary_check()` live in sql/api/vocabulary.sql; the BFF
-- reads the view at startup, validates request fields and fills the
-- OpenAPI enums from it. (The api run after this migration also builds the
-- analytics views of the new tables: analytics.sql.)
--
-- Case: a term is stored in the form the functions fold input to (lead
-- channels, ticket types, priorities, payment methods and app roles lower
-- case; statuses and KPI entry sources upper case); each table's code check
-- says which, so a term added in another case is refused instead of being
-- unreachable.
--
-- Subsets of a vocabulary are rules, not vocabularies, and stay with the
-- functions that enforce them: a new invoice is DRAFT or ISSUED
-- (invoice_create), a lead becomes ASSIGNED only through crm_assign_lead
-- (lead_update), the transitions of every status are bizos.transitions, and
-- which status column a ticket uses depends on its type (the checks below).

-- ---------------------------------------------------------------------------
-- the lookup tables
-- ---------------------------------------------------------------------------

create table app_roles (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint app_roles_pkey primary key (code),
  constraint app_roles_position_key unique (position),
  constraint app_roles_code_check check (code ~ '^[a-z][a-z0-9_]{0,39}$')
);
comment on table app_roles is 'Vocabulary: the app roles of profiles and role_permissions (what a user may do is role_permissions).';
insert into app_roles (code, position, description) values
  ('super_admin',       1, 'everything in the tenant'),
  ('director',          2, 'reads everything in the tenant, writes nothing'),
  ('marketing_manager', 3, 'marketing: leads, activities, campaigns'),
  ('sales_manager',     4, 'sales: the rows of their team (profiles.manager_user_id)'),
  ('salesperson',       5, 'sales: their own rows'),
  ('ops',               6, 'operations: tickets whose dept_target is their dept_code'),
  ('finance',           7, 'receivables: invoices and payments');

create table lead_channels (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint lead_channels_pkey primary key (code),
  constraint lead_channels_position_key unique (position),
  constraint lead_channels_code_check check (code ~ '^[a-z][a-z0-9_]{0,29}$')
);
comment on table lead_channels is 'Vocabulary: where a lead came from (leads.channel; lower case).';
insert into lead_channels (code, position, description) values
  ('website',       1, 'the web site''s forms'),
  ('whatsapp',      2, 'a WhatsApp message'),
  ('referral',      3, 'recommended by a customer or contact'),
  ('event',         4, 'met at an event'),
  ('social_media',  5, 'social media'),
  ('email',         6, 'an e-mail'),
  ('phone',         7, 'a phone call'),
  ('walk_in',       8, 'came to the office'),
  ('marketplace',   9, 'a marketplace'),
  ('partner',      10, 'a partner'),
  ('other',        11, 'anything else');

create table lead_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint lead_statuses_pkey primary key (code),
  constraint lead_statuses_position_key unique (position),
  constraint lead_statuses_code_check check (code ~ '^[A-Z][A-Z0-9_]{0,19}$')
);
comment on table lead_statuses is 'Vocabulary: the statuses of a lead (leads.status; transitions in bizos.transitions, entity lead).';
insert into lead_statuses (code, position, description) values
  ('NEW',          1, 'not yet assigned'),
  ('ASSIGNED',     2, 'has a sales owner (crm_assign_lead)'),
  ('CONTACTED',    3, 'the sales owner contacted it'),
  ('QUALIFIED',    4, 'a real opportunity'),
  ('CONVERTED',    5, 'became business'),
  ('DISQUALIFIED', 6, 'not an opportunity');

create table ticket_types (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint ticket_types_pkey primary key (code),
  constraint ticket_types_position_key unique (position),
  constraint ticket_types_code_check check (code ~ '^[a-z][a-z0-9_]{0,31}$')
);
comment on table ticket_types is 'Vocabulary: the types of tickets (tickets.ticket_type, sla_policies.ticket_type; exact, lower case). inquiry_tariff uses inquiry_status, the others ticket_status.';
insert into ticket_types (code, position, description) values
  ('inquiry_tariff',  1, 'a request for a quote (RFQ); lifecycle inquiry_status'),
  ('general_request', 2, 'a question or request; lifecycle ticket_status'),
  ('complaint',       3, 'a complaint; lifecycle ticket_status'),
  ('service_request', 4, 'a request for a service; lifecycle ticket_status');

create table ticket_priorities (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint ticket_priorities_pkey primary key (code),
  constraint ticket_priorities_position_key unique (position),
  constraint ticket_priorities_code_check check (code ~ '^[a-z][a-z0-9_]{0,15}$')
);
comment on table ticket_priorities is 'Vocabulary: ticket priorities (tickets.priority, sla_policies.priority; lower case).';
insert into ticket_priorities (code, position, description) values
  ('low',    1, 'can wait'),
  ('normal', 2, 'the default'),
  ('high',   3, 'soon'),
  ('urgent', 4, 'now');

-- The two status vocabularies of tickets share one scale of positions, so
-- that their union (the `status` the API shows for any ticket) reads in
-- lifecycle order: OPEN, IN_PROGRESS, WAITING_CUSTOMER, QUOTED, WON, LOST,
-- RESOLVED, CLOSED, CANCELLED.
create table ticket_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint ticket_statuses_pkey primary key (code),
  constraint ticket_statuses_position_key unique (position),
  constraint ticket_statuses_code_check check (code ~ '^[A-Z][A-Z0-9_]{0,29}$')
);
comment on table ticket_statuses is 'Vocabulary: the statuses of tickets other than inquiries (tickets.ticket_status; transitions in bizos.transitions, entity ticket).';
insert into ticket_statuses (code, position, description) values
  ('OPEN',             1, 'new'),
  ('IN_PROGRESS',      2, 'being worked on'),
  ('WAITING_CUSTOMER', 3, 'waiting for the customer'),
  ('RESOLVED',         7, 'answered (stamps resolved_at)'),
  ('CLOSED',           8, 'done (final)'),
  ('CANCELLED',        9, 'cancelled (final)');

create table inquiry_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint inquiry_statuses_pkey primary key (code),
  constraint inquiry_statuses_position_key unique (position),
  constraint inquiry_statuses_code_check check (code ~ '^[A-Z][A-Z0-9_]{0,29}$')
);
comment on table inquiry_statuses is 'Vocabulary: the statuses of inquiries (tickets.inquiry_status of inquiry_tariff tickets; transitions in bizos.transitions, entity inquiry).';
insert into inquiry_statuses (code, position, description) values
  ('OPEN',        1, 'new'),
  ('IN_PROGRESS', 2, 'being priced'),
  ('QUOTED',      4, 'a quote was sent (stamps quoted_at)'),
  ('WON',         5, 'the customer accepted (final)'),
  ('LOST',        6, 'the customer declined (final)'),
  ('CLOSED',      8, 'done (final)'),
  ('CANCELLED',   9, 'cancelled (final)');

create table invoice_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint invoice_statuses_pkey primary key (code),
  constraint invoice_statuses_position_key unique (position),
  constraint invoice_statuses_code_check check (code ~ '^[A-Z][A-Z0-9_]{0,9}$')
);
comment on table invoice_statuses is 'Vocabulary: the statuses of invoices (invoices.status; transitions in bizos.transitions, entity invoice).';
insert into invoice_statuses (code, position, description) values
  ('DRAFT',  1, 'not yet sent; does not count as receivable'),
  ('ISSUED', 2, 'sent; receivable'),
  ('PAID',   3, 'paid in full (set by payments, never by hand)'),
  ('VOID',   4, 'cancelled (final)');

create table payment_methods (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint payment_methods_pkey primary key (code),
  constraint payment_methods_position_key unique (position),
  constraint payment_methods_code_check check (code ~ '^[a-z][a-z0-9_]{0,39}$')
);
comment on table payment_methods is 'Vocabulary: how a payment was made (payments.method; lower case).';
insert into payment_methods (code, position, description) values
  ('bank_transfer',   1, 'a bank transfer'),
  ('virtual_account', 2, 'a virtual account'),
  ('cash',            3, 'cash'),
  ('giro',            4, 'a giro (bilyet giro)'),
  ('card',            5, 'a debit or credit card'),
  ('e_wallet',        6, 'an e-wallet'),
  ('other',           7, 'anything else');

create table kpi_entry_sources (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint kpi_entry_sources_pkey primary key (code),
  constraint kpi_entry_sources_position_key unique (position),
  constraint kpi_entry_sources_code_check check (code ~ '^[A-Z][A-Z0-9_]{0,9}$')
);
comment on table kpi_entry_sources is 'Vocabulary: where a KPI actual comes from (kpi_entries.source; IMPORTED entries name their import row).';
insert into kpi_entry_sources (code, position, description) values
  ('MANUAL',   1, 'entered by a user'),
  ('IMPORTED', 2, 'a row of an import file');

-- Read by every request role (as import_modules); written by the owner only.
do $grants$
declare
  t text;
begin
  foreach t in array array['app_roles', 'lead_channels', 'lead_statuses', 'ticket_types',
                           'ticket_priorities', 'ticket_statuses', 'inquiry_statuses',
                           'invoice_statuses', 'payment_methods', 'kpi_entry_sources']
  loop
    execute format('alter table %I enable row level security', t);
    execute format('create policy "members read the vocabulary" on %I for select to bizos_authenticated using (true)', t);
    execute format('grant select on %I to bizos_authenticated', t);
  end loop;
end
$grants$;

-- ---------------------------------------------------------------------------
-- the columns refer to their vocabulary (replacing the in (...) checks)
-- ---------------------------------------------------------------------------

alter table profiles
  drop constraint profiles_app_role_check,
  add constraint profiles_app_role_fkey foreign key (app_role) references app_roles (code);

alter table role_permissions
  drop constraint role_permissions_app_role_check,
  add constraint role_permissions_app_role_fkey foreign key (app_role) references app_roles (code);

-- leads.status had no check (the lifecycle guard refuses unknown statuses
-- first; the foreign key also holds for rows the guard lets through).
alter table leads
  drop constraint leads_channel_check,
  add constraint leads_channel_fkey foreign key (channel) references lead_channels (code),
  add constraint leads_status_fkey foreign key (status) references lead_statuses (code);

-- The split stays a rule of the row: an inquiry_tariff uses inquiry_status,
-- every other type ticket_status, and the other column is NULL.
alter table tickets
  drop constraint tickets_ticket_type_check,
  drop constraint tickets_priority_check,
  drop constraint tickets_inquiry_status_check,
  drop constraint tickets_ticket_status_check,
  add constraint tickets_ticket_type_fkey foreign key (ticket_type) references ticket_types (code),
  add constraint tickets_priority_fkey foreign key (priority) references ticket_priorities (code),
  add constraint tickets_inquiry_status_fkey foreign key (inquiry_status) references inquiry_statuses (code),
  add constraint tickets_ticket_status_fkey foreign key (ticket_status) references ticket_statuses (code),
  add constraint tickets_inquiry_status_check check ((ticket_type = 'inquiry_tariff') = (inquiry_status is not null)),
  add constraint tickets_ticket_status_check check ((ticket_type <> 'inquiry_tariff') = (ticket_status is not null));

alter table sla_policies
  drop constraint sla_policies_ticket_type_check,
  drop constraint sla_policies_priority_check,
  add constraint sla_policies_ticket_type_fkey foreign key (ticket_type) references ticket_types (code),
  add constraint sla_policies_priority_fkey foreign key (priority) references ticket_priorities (code);

alter table invoices
  drop constraint invoices_status_check,
  add constraint invoices_status_fkey foreign key (status) references invoice_statuses (code);

alter table payments
  drop constraint payments_method_check,
  add constraint payments_method_fkey foreign key (method) references payment_methods (code);

alter table kpi_entries
  drop constraint kpi_entries_source_check,
  add constraint kpi_entries_source_fkey foreign key (source) references kpi_entry_sources (code);
