-- Self-service sign-up, login identities, invitations by link and the
-- organisation's settings (docs/signup.md has the design).
--
--   login_identities   who may log in, across tenants: one row per e-mail
--                      address; its identity_id is the user_id of the
--                      person's profile in every tenant they belong to (the
--                      `sub` of their tokens). A password hash (argon2id,
--                      made by the BFF) for the first-party login, or none
--                      (an identity of an OIDC provider, whose `sub` is
--                      the identity_id).
--   signup_requests    a company's sign-up waiting for its e-mail to be
--                      verified: SHA-256 of the link's token, never the
--                      token; expires; used once (then names its tenant)
--   signup_throttle    sign-up attempts per client address and per e-mail
--                      address per hour, in the database so that every BFF
--                      process counts the same attempts
--   signup_sender      the tenant whose outbox carries the sign-up e-mails
--                      (made on the first sign-up): a verification e-mail
--                      is sent before its tenant exists
--   invitations        a tenant's invitation of a person by a signed link
--                      (SHA-256 of the token), with the role it gives;
--                      audited
--   tenants.logo_url, tenants.default_currency   organisation settings
--
-- The global tables have no tenant_id: they exist before a tenant does or
-- span tenants. Only the SECURITY DEFINER functions of sql/api/signup.sql
-- touch them (RLS on, no policy, no grant).

create table login_identities (
  identity_id   uuid          not null default gen_random_uuid(),
  email         email_address not null,
  password_hash text,
  created_at    timestamptz   not null default now(),
  updated_at    timestamptz   not null default now(),
  constraint login_identities_pkey primary key (identity_id),
  constraint login_identities_email_key unique (email),
  constraint login_identities_email_check check (email::text = lower(email::text)),
  constraint login_identities_password_hash_check
    check (password_hash ~ '^\$argon2id\$' and length(password_hash) <= 500)
);
comment on table login_identities is
  'Who may log in, across tenants: one row per e-mail address; identity_id is the user_id of the person''s profiles (the sub of their tokens); an argon2id password hash for the first-party login, NULL for an OIDC identity.';
create trigger login_identities_stamp_timestamps before insert or update on login_identities
  for each row execute function bizos.stamp_timestamps();
alter table login_identities enable row level security;

create table signup_requests (
  signup_id    uuid          not null default gen_random_uuid(),
  email        email_address not null,
  company_name text          not null,
  full_name    text          not null,
  token_hash   bytea         not null,
  client_addr  inet,
  expires_at   timestamptz   not null,
  used_at      timestamptz,
  -- Not `tenant_id`: the request is no tenant's row (it exists before
  -- its tenant), and on Citus a table is global by having none.
  made_tenant_id uuid,
  created_at   timestamptz   not null default now(),
  updated_at   timestamptz   not null default now(),
  constraint signup_requests_pkey primary key (signup_id),
  constraint signup_requests_token_hash_key unique (token_hash),
  constraint signup_requests_made_tenant_id_fkey foreign key (made_tenant_id) references tenants (tenant_id) on delete set null,
  constraint signup_requests_token_hash_check check (length(token_hash) = 32),
  constraint signup_requests_company_name_check check (length(btrim(company_name)) between 1 and 200),
  constraint signup_requests_full_name_check check (length(btrim(full_name)) between 1 and 200),
  constraint signup_requests_used_check check (used_at is not null or made_tenant_id is null)
);
comment on table signup_requests is
  'A sign-up waiting for its e-mail verification: SHA-256 of the link''s token (never the token), expiry, used once (then the tenant it made).';
create index signup_requests_made_tenant_id_idx on signup_requests (made_tenant_id);
create index signup_requests_expires_at_idx on signup_requests (expires_at) where used_at is null;
create trigger signup_requests_stamp_timestamps before insert or update on signup_requests
  for each row execute function bizos.stamp_timestamps();
alter table signup_requests enable row level security;

create table signup_throttle (
  bucket       text        not null,
  window_start timestamptz not null,
  hits         integer     not null default 0,
  constraint signup_throttle_pkey primary key (bucket, window_start),
  constraint signup_throttle_bucket_check check (length(bucket) between 1 and 300),
  constraint signup_throttle_hits_check check (hits >= 0)
);
comment on table signup_throttle is
  'Sign-up attempts per bucket (client address, e-mail address) per hour: the rate limit every BFF process shares.';
alter table signup_throttle enable row level security;

create table signup_sender (
  singleton boolean not null default true,
  sender_tenant_id uuid not null,
  constraint signup_sender_pkey primary key (singleton),
  constraint signup_sender_singleton_check check (singleton),
  constraint signup_sender_sender_tenant_id_fkey foreign key (sender_tenant_id) references tenants (tenant_id)
);
comment on table signup_sender is
  'The tenant whose outbox sends the sign-up e-mails (the operator''s own; made on the first sign-up).';
alter table signup_sender enable row level security;

create table invitations (
  tenant_id        uuid          not null,
  invitation_id    uuid          not null default bizos.uuid_v7(),
  email            email_address not null,
  full_name        text          not null,
  app_role         text          not null,
  dept_code        text,
  manager_user_id  uuid,
  token_hash       bytea         not null,
  expires_at       timestamptz   not null,
  accepted_at      timestamptz,
  accepted_user_id uuid,
  revoked_at       timestamptz,
  created_by       uuid          default bizos.uid(),
  created_at       timestamptz   not null default now(),
  updated_at       timestamptz   not null default now(),
  constraint invitations_pkey primary key (tenant_id, invitation_id),
  -- With tenant_id (Citus distributes by it); a token is 256 random bits,
  -- found by its hash alone (invitations_token_hash_idx).
  constraint invitations_tenant_id_token_hash_key unique (tenant_id, token_hash),
  constraint invitations_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint invitations_app_role_fkey foreign key (app_role) references app_roles (code),
  constraint invitations_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint invitations_manager_user_id_fkey foreign key (tenant_id, manager_user_id)
    references profiles (tenant_id, user_id) on delete set null (manager_user_id),
  constraint invitations_accepted_user_id_fkey foreign key (tenant_id, accepted_user_id)
    references profiles (tenant_id, user_id) on delete set null (accepted_user_id),
  constraint invitations_email_check check (email::text = lower(email::text)),
  constraint invitations_full_name_check check (length(btrim(full_name)) between 1 and 200),
  constraint invitations_token_hash_check check (length(token_hash) = 32),
  constraint invitations_dept_code_check check (app_role <> 'ops' or dept_code is not null),
  constraint invitations_accepted_check check (accepted_at is not null or accepted_user_id is null),
  constraint invitations_accepted_or_revoked_check check (accepted_at is null or revoked_at is null)
);
comment on table invitations is
  'A tenant''s invitation of a person by link: the role it gives, SHA-256 of the link''s token (never the token), expiry, accepted once or revoked.';
create unique index invitations_tenant_id_email_pending_key on invitations (tenant_id, email)
  where accepted_at is null and revoked_at is null;
create index invitations_token_hash_idx on invitations (token_hash);
create index invitations_tenant_id_created_by_idx on invitations (tenant_id, created_by);
create index invitations_tenant_id_manager_user_id_idx on invitations (tenant_id, manager_user_id);
create index invitations_tenant_id_accepted_user_id_idx on invitations (tenant_id, accepted_user_id);
create trigger invitations_stamp_timestamps before insert or update on invitations
  for each row execute function bizos.stamp_timestamps();
create trigger invitations_keep_created_by before insert or update on invitations
  for each row execute function bizos.keep_created_by();
select bizos.enable_audit('invitations');

alter table invitations enable row level security;
create policy "user managers and directors read their tenant's invitations"
  on invitations for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select has_permission('profile.manage')) or (select bizos.app_role()) = 'director'));
grant select on invitations to bizos_authenticated;

-- The organisation's settings beside name, time zone and locale.
alter table tenants add column logo_url text;
alter table tenants add constraint tenants_logo_url_check
  check (logo_url ~ '^https://[^[:space:]]+$' and length(logo_url) <= 2000);
comment on column tenants.logo_url is 'The organisation''s logo (an https URL), shown in its documents and e-mails; NULL: none.';
alter table tenants add column default_currency text not null default 'IDR';
alter table tenants add constraint tenants_default_currency_check check (default_currency ~ '^[A-Z]{3}$');
comment on column tenants.default_currency is 'ISO 4217 code of the currency the organisation''s amounts are in by default.';

-- A sign-up gets the plan BIZOS_SIGNUP_PLAN names, `trial` by default. The
-- plans of billing describe it fully; this row only lets sign-up work on
-- its own.
insert into plans (plan_code, label, monthly_price, currency)
values ('trial', 'Trial', 0, 'IDR')
on conflict (plan_code) do nothing;

-- Link e-mails carry a single-use secret: they are shown to nobody
-- in the tenant (the inviter included), else whoever reads the outbox could
-- accept an invitation as the invitee.
drop policy "senders read their e-mails, super admins and directors all of the tenant" on emails;
create policy "senders read their e-mails, super admins and directors all of the tenant, no link e-mails"
  on emails for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and template !~ '^signup\.'
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) in ('super_admin', 'director')));

insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('signup.verify',
   'a company that signed up is asked to confirm its e-mail address (single-use link)',
   'profile.manage',
   '{full_name,company_name,link,expires_at}',
   'Confirm your sign-up for {{company_name}}',
   E'Hello {{full_name}},\n\nsomeone (we hope you) signed up {{company_name}} on bizos with this address.\nConfirm it and choose your password here (the link works once, until {{expires_at}}):\n{{link}}\n\nIf it was not you, ignore this e-mail: nothing is created without it.\n',
   E'<p>Hello {{full_name}},</p>\n<p>someone (we hope you) signed up <strong>{{company_name}}</strong> on bizos with this address.</p>\n<p>Confirm it and choose your password here (the link works once, until {{expires_at}}):<br><a href="{{link}}">{{link}}</a></p>\n<p>If it was not you, ignore this e-mail: nothing is created without it.</p>\n'),
  ('signup.invitation',
   'a person is invited to the tenant (single-use link)',
   'profile.manage',
   '{full_name,invited_by,role,link,expires_at}',
   '{{invited_by}} invites you to {{tenant_name}} on bizos',
   E'Hello {{full_name}},\n\n{{invited_by}} invites you to {{tenant_name}} on bizos as {{role}}.\nAccept here (the link works once, until {{expires_at}}):\n{{link}}\n',
   E'<p>Hello {{full_name}},</p>\n<p>{{invited_by}} invites you to <strong>{{tenant_name}}</strong> on bizos as {{role}}.</p>\n<p>Accept here (the link works once, until {{expires_at}}):<br><a href="{{link}}">{{link}}</a></p>\n');

insert into analytics_masking (table_name, column_name, masker) values
  ('invitations', 'email', 'email'),
  ('invitations', 'full_name', 'redact'),
  ('invitations', 'token_hash', 'redact'),
  ('login_identities', 'email', 'email'),
  ('login_identities', 'password_hash', 'redact'),
  ('signup_requests', 'email', 'email'),
  ('signup_requests', 'full_name', 'redact'),
  ('signup_requests', 'token_hash', 'redact'),
  ('signup_requests', 'client_addr', 'redact'),
  ('signup_throttle', 'bucket', 'redact');
