-- API keys (issue 19, B2B-8): a tenant admin issues keys for machines; a key
-- acts on /api/v1 as a service principal of its tenant whose permissions
-- are its scopes, enforced by the database like any role.
--
--   app role integration  the role of every key's principal. A key IS a
--                         profile (user_id = key_id), so everything that
--                         names a user (created_by, audit actors, jobs)
--                         names the key, and authenticate_request()
--                         refuses a revoked key (inactive profile) on the
--                         very next request. has_permission() answers for
--                         this role from the key's scopes only, never from
--                         role_permissions.
--   api_scopes            vocabulary: what a key may be granted
--   api_scope_permissions what each scope allows: permissions, including
--                         the tenant-wide read permissions (*.read_all)
--   api_keys              one key of a tenant: name, expiry, allowed IPs,
--                         revocation; never the secret
--   api_key_scopes        the scopes of a key
--   api_key_usage         when and from where a key was last used (not
--                         audited; written at most once a minute per key)
--   api_key_lookup        SHA-256 of a key's secret → its tenant and id: the
--                         one cross-tenant lookup a request makes before it
--                         knows its tenant (a small global table; on Citus a
--                         reference table)
--
-- The secret is `bz_live_` + 43 characters of base64url (32 random bytes),
-- made by the BFF and shown once. The database stores SHA-256 of the whole
-- token: a 256-bit random token needs no slow password hash (nothing to
-- guess), and the hash is compared by an index lookup on every request.
--
-- Tenant-wide reading by permission: crm.read_all, ticket.read_all,
-- invoice.read_all and kpi.read_all open every row of their tables to the
-- holder (through sees_all_crm() for the CRM, through the policies below
-- for the others). Keys get them from their read scopes; a tenant may also
-- grant them to a role (role_permissions).
--
-- The functions live in sql/api/api_keys.sql.

-- The permissions of this migration (the vocabulary of V34), and those of
-- migrations numbered before V34 that a fresh database, without tenants
-- then, did not copy into it (customer documents, V32; webhooks, V33).
insert into permissions (code, position, description)
select x.code, (select max(position) from permissions) + x.n, x.description
  from (values (1, 'customer.document', 'attach documents to the customers the caller may read'),
               (2, 'api_key.manage', 'create, list and revoke the tenant''s API keys'),
               (3, 'crm.read_all', 'read every customer, prospect, lead and sales activity of the tenant'),
               (4, 'ticket.read_all', 'read every ticket of the tenant'),
               (5, 'invoice.read_all', 'read every invoice and payment of the tenant'),
               (6, 'kpi.read_all', 'read every KPI target and entry of the tenant'),
               (7, 'webhook.manage', 'register the tenant''s webhook endpoints, rotate their secrets, read and replay deliveries')) as x (n, code, description)
 where not exists (select 1 from permissions p where p.code = x.code);

insert into app_roles (code, position, description)
select 'integration', coalesce(max(position), 0) + 1,
       'an API key: a service principal whose permissions are its scopes (never a person)'
  from app_roles;

create table api_scopes (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint api_scopes_pkey primary key (code),
  constraint api_scopes_position_key unique (position),
  constraint api_scopes_code_check check (code ~ '^[a-z][a-z_]*:(read|write)$')
);
comment on table api_scopes is
  'Vocabulary: the scopes of API keys (api_key_scopes); what each allows is api_scope_permissions.';
insert into api_scopes (code, position, description) values
  ('leads:read',     1, 'read every customer, prospect, lead and sales activity of the tenant'),
  ('leads:write',    2, 'leads:read, and create, update and assign leads and move prospects'),
  ('tickets:read',   3, 'read every ticket of the tenant, its messages and SLA status'),
  ('tickets:write',  4, 'tickets:read, and open tickets and write messages on them'),
  ('invoices:read',  5, 'read every invoice and payment of the tenant and the receivables reports'),
  ('invoices:write', 6, 'invoices:read, and create, issue and void invoices and record payments'),
  ('kpi:read',       7, 'read every KPI target and entry of the tenant and their progress');
alter table api_scopes enable row level security;
create policy "members read the vocabulary" on api_scopes for select to bizos_authenticated using (true);
grant select on api_scopes to bizos_authenticated;

create table api_scope_permissions (
  scope      text not null,
  permission text not null,
  constraint api_scope_permissions_pkey primary key (scope, permission),
  constraint api_scope_permissions_scope_fkey foreign key (scope) references api_scopes (code),
  constraint api_scope_permissions_permission_fkey foreign key (permission) references permissions (code)
);
comment on table api_scope_permissions is
  'What each API key scope allows: the permissions has_permission() grants a key''s principal (global, read-only).';
insert into api_scope_permissions (scope, permission) values
  ('leads:read', 'crm.read_all'),
  ('leads:write', 'crm.read_all'), ('leads:write', 'lead.create'), ('leads:write', 'lead.update'),
  ('leads:write', 'lead.assign'), ('leads:write', 'prospect.stage'),
  ('tickets:read', 'ticket.read_all'),
  ('tickets:write', 'ticket.read_all'), ('tickets:write', 'ticket.create'), ('tickets:write', 'ticket.message'),
  ('invoices:read', 'invoice.read_all'),
  ('invoices:write', 'invoice.read_all'), ('invoices:write', 'invoice.create'), ('invoices:write', 'payment.record'),
  ('kpi:read', 'kpi.read_all');
alter table api_scope_permissions enable row level security;
create policy "members read what scopes allow" on api_scope_permissions for select to bizos_authenticated using (true);
grant select on api_scope_permissions to bizos_authenticated;

create table api_keys (
  tenant_id      uuid        not null,
  -- Also the user_id of the key's principal (profiles, app role integration).
  key_id         uuid        not null default gen_random_uuid(),
  name           text        not null,
  -- The token's first 16 characters (`bz_live_` and 8 of its 43 random
  -- ones): tells keys apart in lists and logs, reveals nothing usable.
  display_prefix text        not null,
  -- NULL: from anywhere; else the request's client address must be in one.
  allowed_ips    cidr[],
  expires_at     timestamptz,
  created_by     uuid,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  revoked_at     timestamptz,
  revoked_by     uuid,
  constraint api_keys_pkey primary key (tenant_id, key_id),
  constraint api_keys_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint api_keys_key_id_fkey foreign key (tenant_id, key_id)
    references profiles (tenant_id, user_id) on delete cascade,
  constraint api_keys_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint api_keys_revoked_by_fkey foreign key (tenant_id, revoked_by)
    references profiles (tenant_id, user_id) on delete set null (revoked_by),
  constraint api_keys_name_check check (length(btrim(name)) between 1 and 100),
  constraint api_keys_display_prefix_check check (display_prefix ~ '^bz_live_[A-Za-z0-9_-]{8}$'),
  constraint api_keys_allowed_ips_check check (cardinality(allowed_ips) between 1 and 50),
  constraint api_keys_expires_at_check check (expires_at > created_at),
  constraint api_keys_revoked_by_check check (revoked_by is null or revoked_at is not null)
);
comment on table api_keys is
  'API keys of a tenant (B2B-8): a service principal (profiles.user_id = key_id, app role integration) with scopes, expiry and allowed IPs. The secret is never stored; api_key_lookup has its SHA-256.';

create trigger api_keys_stamp_timestamps before insert or update on api_keys
  for each row execute function stamp_timestamps();
select bizos.enable_audit('api_keys');

alter table api_keys enable row level security;
create policy "key managers read the keys of their tenant"
  on api_keys for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('api_key.manage')));
-- Written by the SECURITY DEFINER api_key_create and api_key_revoke only.
grant select on api_keys to bizos_authenticated;

create table api_key_scopes (
  tenant_id uuid not null,
  key_id    uuid not null,
  scope     text not null,
  constraint api_key_scopes_pkey primary key (tenant_id, key_id, scope),
  constraint api_key_scopes_key_fkey foreign key (tenant_id, key_id)
    references api_keys (tenant_id, key_id) on delete cascade,
  constraint api_key_scopes_scope_fkey foreign key (scope) references api_scopes (code)
);
comment on table api_key_scopes is 'The scopes of an API key (fixed when it is created).';
select bizos.enable_audit('api_key_scopes');

alter table api_key_scopes enable row level security;
create policy "key managers read the scopes of their tenant's keys"
  on api_key_scopes for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('api_key.manage')));
grant select on api_key_scopes to bizos_authenticated;

create table api_key_usage (
  tenant_id    uuid        not null,
  key_id       uuid        not null,
  last_used_at timestamptz not null,
  last_used_ip inet,
  constraint api_key_usage_pkey primary key (tenant_id, key_id),
  constraint api_key_usage_key_fkey foreign key (tenant_id, key_id)
    references api_keys (tenant_id, key_id) on delete cascade
);
comment on table api_key_usage is
  'When and from where each API key was last used (to the minute; written by api_key_authenticate, not audited).';
alter table api_key_usage enable row level security;
create policy "key managers read the usage of their tenant's keys"
  on api_key_usage for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('api_key.manage')));
grant select on api_key_usage to bizos_authenticated;

create table api_key_lookup (
  secret_hash bytea not null,
  tenant_id   uuid  not null,
  key_id      uuid  not null,
  constraint api_key_lookup_pkey primary key (secret_hash),
  constraint api_key_lookup_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint api_key_lookup_secret_hash_check check (length(secret_hash) = 32)
);
comment on table api_key_lookup is
  'SHA-256 of each API key''s token → its tenant and key (global: a request finds its tenant here). No grants: api_key_authenticate and api_key_create are its only readers and writers.';
create index api_key_lookup_tenant_id_key_id_idx on api_key_lookup (tenant_id, key_id);
alter table api_key_lookup enable row level security;

-- A key's principal is made and changed only through the key functions
-- (the trigger profiles_guard_integration, sql/api/api_keys.sql).

-- Tenant-wide reading by permission (the CRM's through sees_all_crm()).
create policy "holders of ticket.read_all read every ticket"
  on tickets for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('ticket.read_all')));
create policy "holders of invoice.read_all read every invoice"
  on invoices for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.read_all')));
create policy "holders of crm.read_all read every sales activity"
  on sales_activities for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('crm.read_all')));
create policy "holders of kpi.read_all read every target"
  on kpi_targets for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.read_all')));
create policy "holders of kpi.read_all read every entry"
  on kpi_entries for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.read_all')));

-- Who manages keys (new tenants get it from default_role_permissions()).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, 'super_admin', 'api_key.manage' from tenants t
on conflict do nothing;
