-- E-mail (issue 14): a transactional outbox. An e-mail is rendered and
-- stored by email_enqueue in the transaction of the business change that
-- causes it, together with its `email.send` job (jobs, V21): a rolled-back
-- change leaves neither, a committed one always both. The worker delivers
-- it over SMTP (bizos-bff `email::deliver`), retries what may pass later and
-- dead-letters the rest through the job.
--
-- email_templates           the catalogue: one row per kind of e-mail (no
--                           tenant: written by migrations), its variables,
--                           the permission a sender needs, subject and
--                           plain-text and HTML bodies with {{placeholders}}
-- email_template_overrides  a tenant's own wording of a template
-- tenant_mail_settings      a tenant's sender (From, its display name,
--                           Reply-To); without it, the environment's
--                           BIZOS_MAIL_FROM with the tenant's name. Per-tenant
--                           SMTP servers (OPS-17) will be columns here.
-- emails                    the outbox: exactly what is (or was) sent
--
-- The functions (rendering, enqueue, the worker's delivery calls) and the
-- placeholder check of the templates live in sql/api/email.sql.

-- One e-mail address as the outbox stores and sends it: a plain
-- addr-spec (no display name, no comments, no quoting), so nothing in it
-- can break a header. email_enqueue names the element that fails it.
create domain email_address as text
  constraint email_address_check check (
    length(value) <= 254
    and value ~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
    and value !~ '(^\.|\.\.|\.@)');
comment on domain email_address is
  'An e-mail address (addr-spec only: local@domain, at most 254 characters, no display name).';

-- ---------------------------------------------------------------------------
-- the catalogue of templates
-- ---------------------------------------------------------------------------

create table email_templates (
  template    text     not null,
  description text,
  -- The permission (role_permissions) a user needs to send this e-mail.
  permission  text     not null,
  -- The variables email_enqueue requires in `vars`, besides the built-in
  -- {{tenant_name}}.
  variables   text[]   not null default '{}',
  subject     text     not null,
  text_body   text     not null,
  html_body   text     not null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint email_templates_pkey primary key (template),
  constraint email_templates_template_check
    check (template ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' and length(template) <= 60),
  constraint email_templates_permission_check check (permission ~ '^[a-z_]+(\.[a-z_]+)+$'),
  constraint email_templates_variables_check
    check (array_position(variables, null) is null
           and array_to_string(variables, ',') ~ '^([a-z][a-z0-9_]{0,39}(,[a-z][a-z0-9_]{0,39})*)?$'
           and not ('tenant_name' = any (variables))),
  constraint email_templates_subject_check check (length(subject) between 1 and 500 and subject !~ '[\r\n]'),
  constraint email_templates_text_body_check check (length(text_body) between 1 and 100000),
  constraint email_templates_html_body_check check (length(html_body) between 1 and 200000)
);
comment on table email_templates is
  'E-mail templates: the kinds of e-mail bizos sends, their variables, the permission needed to send them and their default wording ({{placeholders}}).';

create trigger email_templates_stamp_timestamps before insert or update on email_templates
  for each row execute function stamp_timestamps();

-- A catalogue like the vocabularies: every request role reads it, only
-- migrations write it (no policies needed beyond reading).
alter table email_templates enable row level security;
create policy "everyone reads the e-mail templates"
  on email_templates for select to bizos_authenticated
  using (true);
grant select on email_templates to bizos_authenticated;

insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('user.welcome',
   'a new user of the tenant is told how to sign in',
   'profile.manage',
   '{full_name,sign_in_url}',
   'Welcome to {{tenant_name}}',
   E'Hello {{full_name}},\n\nyou now have an account of {{tenant_name}} on bizos.\nSign in at {{sign_in_url}}\n\n{{tenant_name}}\n',
   E'<p>Hello {{full_name}},</p>\n<p>you now have an account of <strong>{{tenant_name}}</strong> on bizos.</p>\n<p>Sign in at <a href="{{sign_in_url}}">{{sign_in_url}}</a></p>\n<p>{{tenant_name}}</p>\n'),
  ('invoice.reminder',
   'a customer is reminded of an invoice that is due (dunning)',
   'collection.create',
   '{customer_name,invoice_no,amount_due,due_date}',
   '{{tenant_name}}: invoice {{invoice_no}} is due on {{due_date}}',
   E'Dear {{customer_name}},\n\ninvoice {{invoice_no}} of {{tenant_name}} over {{amount_due}} is due on {{due_date}}.\nPlease disregard this reminder if you have already paid.\n\n{{tenant_name}}\n',
   E'<p>Dear {{customer_name}},</p>\n<p>invoice <strong>{{invoice_no}}</strong> of {{tenant_name}} over <strong>{{amount_due}}</strong> is due on {{due_date}}.</p>\n<p>Please disregard this reminder if you have already paid.</p>\n<p>{{tenant_name}}</p>\n');

-- ---------------------------------------------------------------------------
-- a tenant's own wording
-- ---------------------------------------------------------------------------

create table email_template_overrides (
  tenant_id  uuid        not null,
  template   text        not null,
  -- NULL: the catalogue's.
  subject    text,
  text_body  text,
  html_body  text,
  created_by uuid        default bizos.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint email_template_overrides_pkey primary key (tenant_id, template),
  constraint email_template_overrides_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint email_template_overrides_template_fkey foreign key (template)
    references email_templates (template) on delete cascade,
  constraint email_template_overrides_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint email_template_overrides_subject_check check (length(subject) between 1 and 500 and subject !~ '[\r\n]'),
  constraint email_template_overrides_text_body_check check (length(text_body) between 1 and 100000),
  constraint email_template_overrides_html_body_check check (length(html_body) between 1 and 200000)
);
comment on table email_template_overrides is
  'A tenant''s wording of an e-mail template (NULL parts: the catalogue''s); the placeholders must be the template''s variables.';

create trigger email_template_overrides_stamp_timestamps before insert or update on email_template_overrides
  for each row execute function stamp_timestamps();
create trigger email_template_overrides_keep_created_by before insert or update on email_template_overrides
  for each row execute function keep_created_by();

alter table email_template_overrides enable row level security;
create policy "members read their tenant's template wording"
  on email_template_overrides for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins word their tenant's templates"
  on email_template_overrides for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins reword their tenant's templates"
  on email_template_overrides for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins drop their tenant's template wording"
  on email_template_overrides for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, delete on email_template_overrides to bizos_authenticated;
grant insert (tenant_id, template, subject, text_body, html_body),
      update (subject, text_body, html_body)
  on email_template_overrides to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- a tenant's sender
-- ---------------------------------------------------------------------------

create table tenant_mail_settings (
  tenant_id    uuid          not null,
  -- NULL: the environment's BIZOS_MAIL_FROM.
  from_address email_address,
  -- NULL: the tenant's name.
  from_name    text,
  reply_to     email_address,
  created_at   timestamptz   not null default now(),
  updated_at   timestamptz   not null default now(),
  constraint tenant_mail_settings_pkey primary key (tenant_id),
  constraint tenant_mail_settings_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint tenant_mail_settings_from_name_check
    check (length(btrim(from_name)) between 1 and 200 and from_name !~ '[[:cntrl:]]')
);
comment on table tenant_mail_settings is
  'The sender of a tenant''s e-mails (NULL: BIZOS_MAIL_FROM, with the tenant''s name); per-tenant SMTP servers come later (OPS-17).';

create trigger tenant_mail_settings_stamp_timestamps before insert or update on tenant_mail_settings
  for each row execute function stamp_timestamps();

alter table tenant_mail_settings enable row level security;
create policy "members read their tenant's sender"
  on tenant_mail_settings for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins set their tenant's sender"
  on tenant_mail_settings for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins change their tenant's sender"
  on tenant_mail_settings for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins remove their tenant's sender"
  on tenant_mail_settings for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, delete on tenant_mail_settings to bizos_authenticated;
grant insert (tenant_id, from_address, from_name, reply_to), update (from_address, from_name, reply_to)
  on tenant_mail_settings to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- the outbox
-- ---------------------------------------------------------------------------

create table emails (
  tenant_id     uuid            not null,
  email_id      uuid            not null default gen_random_uuid(),
  template      text            not null,
  -- The sender as resolved at enqueue; NULL address: BIZOS_MAIL_FROM.
  from_address  email_address,
  from_name     text            not null,
  reply_to      email_address,
  to_addresses  email_address[] not null,
  cc_addresses  email_address[] not null default '{}',
  -- Rendered at enqueue: what is sent, byte for byte.
  subject       text            not null,
  text_body     text            not null,
  html_body     text            not null,
  -- The email.send job that delivers it.
  job_id        uuid,
  -- Delivery attempts that failed (the job counts its claims).
  attempts      integer         not null default 0,
  last_error    text,
  sent_at       timestamptz,
  -- Message-ID the SMTP server accepted (derived from email_id, so a resend
  -- after a crash carries the same one and receivers drop the duplicate).
  message_id    text,
  -- A permanent failure (a 5xx rejection, stored data a message cannot be
  -- built from); a later successful delivery (the job retried) clears it.
  failed_at     timestamptz,
  -- Derived from the timestamps, so it can never contradict them.
  status        text generated always as (
                  case when sent_at is not null then 'sent'
                       when failed_at is not null then 'failed'
                       else 'queued' end) stored,
  created_by    uuid            default bizos.uid(),
  request_id    text,
  created_at    timestamptz     not null default now(),
  updated_at    timestamptz     not null default now(),
  constraint emails_pkey primary key (tenant_id, email_id),
  constraint emails_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint emails_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint emails_template_check check (template ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
  constraint emails_from_name_check check (length(from_name) between 1 and 200 and from_name !~ '[[:cntrl:]]'),
  constraint emails_to_addresses_check
    check (cardinality(to_addresses) between 1 and 50 and array_position(to_addresses, null) is null),
  constraint emails_cc_addresses_check
    check (cardinality(cc_addresses) <= 50 and array_position(cc_addresses, null) is null),
  constraint emails_subject_check check (length(subject) between 1 and 998 and subject !~ '[[:cntrl:]]'),
  constraint emails_text_body_check check (length(text_body) between 1 and 1000000),
  constraint emails_html_body_check check (length(html_body) between 1 and 2000000),
  constraint emails_attempts_check check (attempts >= 0),
  constraint emails_last_error_check check (length(last_error) <= 4000),
  constraint emails_sent_check check ((sent_at is null) = (message_id is null)),
  constraint emails_message_id_check check (message_id ~ '^<[^<>[:space:]]+@[^<>[:space:]]+>$'),
  constraint emails_sent_or_failed_check check (sent_at is null or failed_at is null),
  constraint emails_request_id_check check (length(request_id) <= 200)
);
comment on table emails is
  'The e-mail outbox: rendered in the transaction that queues it (with its email.send job), delivered over SMTP by the worker.';
comment on column emails.status is 'queued (not sent yet), sent, or failed (permanently; the job may still be retried).';

create index emails_tenant_id_created_by_idx on emails (tenant_id, created_by);

create trigger emails_stamp_timestamps before insert or update on emails
  for each row execute function stamp_timestamps();
create trigger emails_keep_created_by before insert or update on emails
  for each row execute function keep_created_by();

-- Reading: the sender, and the tenant's super_admins and directors. Nobody
-- writes the table directly: email_enqueue (SECURITY DEFINER) renders and
-- inserts, the worker's functions record the delivery. A user can thus
-- send only the catalogue's e-mails their permissions allow, never a text
-- of their own through the tenant's sender.
alter table emails enable row level security;
create policy "senders read their e-mails, super admins and directors all of the tenant"
  on emails for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) in ('super_admin', 'director')));
grant select on emails to bizos_authenticated;

-- Analytics: addresses and bodies are personal data.
insert into analytics_masking (table_name, column_name, masker) values
  ('emails', 'to_addresses', 'redact'),
  ('emails', 'cc_addresses', 'redact'),
  ('emails', 'reply_to', 'email'),
  ('emails', 'text_body', 'redact'),
  ('emails', 'html_body', 'redact'),
  ('tenant_mail_settings', 'reply_to', 'email');
