-- Administration (issue 19, B2B-9): the permissions a role may hold are a
-- vocabulary, and the permissions profile.manage and permission.manage,
-- not the app role super_admin, decide who may write profiles and
-- role_permissions; the invitation e-mail. The functions live in
-- sql/api/admin.sql (users, role overrides) and sql/api/audit.sql (the
-- audit API).
--
-- 1. permissions: every permission the schema knows, one row each (a
--    vocabulary: code, position, description). role_permissions.permission
--    and email_templates.permission refer to it, replacing their pattern
--    checks: a tenant can grant only a permission some function or policy
--    checks (has_permission / require_permission), never a typo that
--    would silently grant nothing. A new permission is a row here, in the
--    migration that starts checking it (before it grants it).
-- 2. audit.unmask: the personal data in the before/after images of the
--    audit log is masked (as in the analytics views) for every reader
--    without it; super_admin holds it by default, director does not.
-- 3. The row policies of profiles and role_permissions follow the
--    permissions (profile.manage, permission.manage) instead of the app
--    role, so a tenant's override of either one is what counts, in the
--    functions and for direct writes alike. The rules of the changes
--    themselves (manager in the tenant and active, no management cycle,
--    ops with a department, at least one active super admin, the lock-out
--    guard) are in the functions of sql/api/admin.sql, the only way the
--    BFF writes these tables.
-- 4. The invitation e-mail, one template per tenant locale (as the
--    digest's, V31): user.invite.id and user.invite.en.

-- ---------------------------------------------------------------------------
-- 1. the permissions vocabulary
-- ---------------------------------------------------------------------------

create table permissions (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint permissions_pkey primary key (code),
  constraint permissions_position_key unique (position),
  constraint permissions_code_check check (code ~ '^[a-z_]+(\.[a-z_]+)+$' and length(code) <= 60)
);
comment on table permissions is
  'Vocabulary: the permissions a role may hold (role_permissions.permission); each is checked by has_permission/require_permission somewhere.';

insert into permissions (code, position, description) values
  ('profile.manage',     1, 'invite users; change their role, manager and department; deactivate and reactivate them'),
  ('permission.manage',  2, 'grant and revoke the permissions of the tenant''s roles'),
  ('audit.read',         3, 'read the audit log, the history of records and the state of the audit chains'),
  ('audit.unmask',       4, 'see the personal data in the audit log''s before/after images unmasked'),
  ('lead.create',        5, 'create leads'),
  ('lead.update',        6, 'change leads'),
  ('lead.assign',        7, 'assign leads to salespeople'),
  ('prospect.stage',     8, 'move prospects through the pipeline'),
  ('activity.create',    9, 'record sales activities and visits'),
  ('marketing.write',   10, 'record marketing activity and spend'),
  ('ticket.create',     11, 'open tickets'),
  ('ticket.update',     12, 'work tickets: status, assignee, priority'),
  ('ticket.message',    13, 'write ticket messages'),
  ('kpi.target.manage', 14, 'set KPI targets'),
  ('kpi.entry.create',  15, 'record KPI actuals'),
  ('invoice.create',    16, 'create and issue invoices'),
  ('invoice.delete',    17, 'delete draft invoices'),
  ('payment.record',    18, 'record payments'),
  ('collection.create', 19, 'open collection tickets and send payment reminders'),
  ('schedule.manage',   20, 'manage the tenant''s scheduled jobs'),
  ('kb.manage',         21, 'add and manage knowledge-base documents'),
  ('digest.read',       22, 'read the daily business digest'),
  ('sop.manage',        23, 'manage the tenant''s SOP rules'),
  ('rfm.manage',        24, 'run the RFM segmentation and write segment content');

-- Permissions granted or required before this vocabulary existed that the
-- list above does not name (none in this repository; a migration of
-- another branch may have added one): kept, so the keys below hold.
insert into permissions (code, position, description)
select x.permission,
       (select max(position) from permissions) + row_number() over (order by x.permission),
       'granted before the permissions vocabulary existed'
  from (select r.permission from role_permissions r
        union
        select t.permission from email_templates t) x
 where not exists (select 1 from permissions p where p.code = x.permission);

alter table permissions enable row level security;
create policy "members read the vocabulary" on permissions for select to bizos_authenticated using (true);
grant select on permissions to bizos_authenticated;

alter table role_permissions
  drop constraint role_permissions_permission_check,
  add constraint role_permissions_permission_fkey foreign key (permission) references permissions (code);

alter table email_templates
  drop constraint email_templates_permission_check,
  add constraint email_templates_permission_fkey foreign key (permission) references permissions (code);

-- ---------------------------------------------------------------------------
-- 2. audit.unmask for the super admins of existing tenants (new tenants get
--    it from default_role_permissions(), sql/api/platform.sql)
-- ---------------------------------------------------------------------------

insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, 'super_admin', 'audit.unmask' from tenants t
on conflict do nothing;

-- ---------------------------------------------------------------------------
-- 3. profiles and role_permissions are written by holders of the permission
-- ---------------------------------------------------------------------------

drop policy "super admins add profiles to their tenant" on profiles;
drop policy "super admins edit profiles of their tenant" on profiles;
drop policy "super admins remove profiles of their tenant" on profiles;

create policy "profile managers add profiles to their tenant"
  on profiles for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('profile.manage')));

create policy "profile managers edit profiles of their tenant"
  on profiles for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('profile.manage')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('profile.manage')));

create policy "profile managers remove profiles of their tenant"
  on profiles for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('profile.manage')));

drop policy "super admins grant permissions in their tenant" on role_permissions;
drop policy "super admins revoke permissions in their tenant" on role_permissions;

create policy "permission managers grant permissions in their tenant"
  on role_permissions for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('permission.manage')));

create policy "permission managers revoke permissions in their tenant"
  on role_permissions for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('permission.manage')));

-- ---------------------------------------------------------------------------
-- 4. the invitation
-- ---------------------------------------------------------------------------

-- How the invited person signs in is the identity provider's business
-- (tokens come from the tenant's IdP, or HS256 tokens of a first-party
-- login; bff/src/jwt.rs): the e-mail says who invited them, to which
-- organisation, with which address and role, and sends no password or link.
insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('user.invite.id',
   'undangan untuk pengguna baru organisasi',
   'profile.manage',
   '{full_name,email,role,invited_by}',
   'Undangan bergabung dengan {{tenant_name}} di bizos',
   E'Halo {{full_name}},\n\n{{invited_by}} telah menambahkan Anda ke {{tenant_name}} di bizos sebagai {{role}}.\nAkun Anda: {{email}}\n\nMasuklah dengan login yang dipakai organisasi Anda untuk bizos (penyedia identitasnya). Kata sandi tidak pernah dikirim lewat e-mail.\n\n{{tenant_name}}\n',
   E'<p>Halo {{full_name}},</p>\n<p>{{invited_by}} telah menambahkan Anda ke <strong>{{tenant_name}}</strong> di bizos sebagai {{role}}.</p>\n<p>Akun Anda: {{email}}</p>\n<p>Masuklah dengan login yang dipakai organisasi Anda untuk bizos (penyedia identitasnya). Kata sandi tidak pernah dikirim lewat e-mail.</p>\n<p>{{tenant_name}}</p>\n'),
  ('user.invite.en',
   'an invitation for a new user of the tenant',
   'profile.manage',
   '{full_name,email,role,invited_by}',
   'You are invited to {{tenant_name}} on bizos',
   E'Hello {{full_name}},\n\n{{invited_by}} has added you to {{tenant_name}} on bizos as {{role}}.\nYour account: {{email}}\n\nSign in with the login your organisation uses for bizos (its identity provider). No password is ever sent by e-mail.\n\n{{tenant_name}}\n',
   E'<p>Hello {{full_name}},</p>\n<p>{{invited_by}} has added you to <strong>{{tenant_name}}</strong> on bizos as {{role}}.</p>\n<p>Your account: {{email}}</p>\n<p>Sign in with the login your organisation uses for bizos (its identity provider). No password is ever sent by e-mail.</p>\n<p>{{tenant_name}}</p>\n');
