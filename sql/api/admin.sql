-- Administration (B2B-9): the users of a tenant and the
-- tenant's overrides of its roles' permissions. The tables are V1's
-- profiles and role_permissions, the permissions vocabulary V34's.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- Who may do what:
-- * profile.manage (super_admin by default): list and read users, invite
--   them, change their role, manager, department and name, deactivate and
--   reactivate them;
-- * permission.manage (super_admin by default): list the roles' effective
--   permissions, grant and revoke them;
-- * only a super_admin makes someone super_admin, changes a super_admin's
--   profile, changes the permissions of the super_admin role or grants and
--   revokes profile.manage and permission.manage (a role given
--   profile.manage or permission.manage cannot climb to super_admin with
--   it);
-- * the tenant always keeps an active super_admin (nobody demotes or
--   deactivates the last one, themselves included), and super_admin always
--   keeps profile.manage and permission.manage (the lock-out guard).
-- Every change is a write of profiles or role_permissions, which are
-- audited (bizos.enable_audit, V12): the audit API (sql/api/audit.sql) shows
-- who changed what and when.
--
-- Deactivation takes effect on the user's next request, whatever their
-- token says and however long it is still valid: authenticate_request()
-- (platform.sql) refuses an inactive profile at the start of every request
-- (403 user_inactive). Signing in is the identity provider's business
-- (tokens come from the tenant's IdP or are HS256 tokens of a first-party
-- login, bff/src/jwt.rs): an invitation creates the profile the token's
-- `sub` must name and e-mails the person; it sends no password or link.

-- ---------------------------------------------------------------------------
-- checks shared by the user functions
-- ---------------------------------------------------------------------------

-- A department code as profiles and tickets store it (upper case), or
-- NULL for a blank one; P0001 naming dept_code otherwise.
create or replace function admin_dept_code(value text) returns text
language plpgsql immutable
as $$
declare
  v text := upper(btrim(value));
begin
  if v is null or v = '' then
    return null;
  end if;
  if v !~ '^[A-Z][A-Z0-9_-]{0,31}$' then
    perform raise_field('dept_code',
      'must be a department code such as OPS-JKT or FIN (letters, digits, _ and -, up to 32)');
  end if;
  return v;
end
$$;
grant execute on function admin_dept_code(text) to bizos_authenticated;
comment on function admin_dept_code(text) is
  'A department code, upper-cased (NULL when blank); P0001 naming dept_code when it is not one.';

-- Whether `manager` may manage `target`: a user of the tenant, active, not
-- the user themselves, and not someone the user already manages (directly
-- or not: my_team_ids() and the team KPIs walk the chain, which must not
-- loop). NULL (no manager) is always fine.
create or replace function admin_manager_check(target uuid, manager uuid) returns void
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_active boolean;
begin
  if manager is null then
    return;
  end if;
  if manager = target then
    perform raise_field('manager_user_id', 'a user cannot be their own manager');
  end if;
  select p.active into v_active
    from profiles p
   where p.tenant_id = v_tenant and p.user_id = manager and p.app_role <> 'integration';
  if not found then
    perform raise_field('manager_user_id', 'no user with this id in the tenant');
  end if;
  if not v_active then
    perform raise_field('manager_user_id', 'is deactivated: choose an active manager');
  end if;
  if exists (
    with recursive up (user_id, path) as (
      select manager, array[manager]
      union all
      select p.manager_user_id, up.path || p.manager_user_id
        from up
        join profiles p on p.tenant_id = v_tenant and p.user_id = up.user_id
       where p.manager_user_id is not null and not p.manager_user_id = any (up.path)
    )
    select 1 from up where up.user_id = target) then
    perform raise_field('manager_user_id',
      'would make a management cycle: this user already manages them, directly or not');
  end if;
end
$$;
select pin_search_path('admin_manager_check(uuid, uuid)');
grant execute on function admin_manager_check(uuid, uuid) to bizos_authenticated;
comment on function admin_manager_check(uuid, uuid) is
  'Raises (P0001 naming manager_user_id) unless manager may manage target: in the tenant, active, not target, no cycle.';

-- Serialises the user changes of one tenant (a transaction-scoped
-- advisory lock), so that two super admins demoting each other at the
-- same moment cannot both pass the last-super-admin check.
create or replace function admin_lock_users() returns void
language sql volatile
as $$
  select pg_catalog.pg_advisory_xact_lock(
           pg_catalog.hashtextextended('bizos.profiles.' || bizos.tenant_id()::text, 0))
$$;
grant execute on function admin_lock_users() to bizos_authenticated;
comment on function admin_lock_users() is
  'Takes the transaction''s lock on the user changes of the caller''s tenant (admin_lock_users first, then read).';

-- Raises unless the tenant keeps an active super admin other than
-- `target` (the one about to stop being one). Call after admin_lock_users().
create or replace function admin_keep_a_super_admin(target uuid, field text) returns void
language plpgsql stable
as $$
begin
  if not exists (select 1 from profiles p
                  where p.tenant_id = bizos.tenant_id() and p.app_role = 'super_admin'
                    and p.active and p.user_id <> target) then
    raise exception using errcode = 'P0001', column = field,
      message = field || ': the tenant would have no active super admin left',
      hint = 'make another user super_admin first';
  end if;
end
$$;
grant execute on function admin_keep_a_super_admin(uuid, text) to bizos_authenticated;
comment on function admin_keep_a_super_admin(uuid, text) is
  'Raises (P0001 naming field) unless another active super admin than target remains in the tenant.';

-- Raises 42501 unless the caller is a super admin: `what` says what only
-- a super admin may do.
create or replace function admin_require_super_admin(what text) returns void
language plpgsql stable
as $$
begin
  if (select bizos.app_role()) is distinct from 'super_admin' then
    raise exception using errcode = '42501', message = 'only a super admin may ' || what;
  end if;
end
$$;
grant execute on function admin_require_super_admin(text) to bizos_authenticated;
comment on function admin_require_super_admin(text) is
  'Raises 42501 (only a super admin may <what>) unless the caller''s role is super_admin.';

-- ---------------------------------------------------------------------------
-- users
-- ---------------------------------------------------------------------------

-- user_detail(user_id) -> the profile with its role's permissions, its
-- manager and how many active users report to it (profile.manage).
create or replace function user_detail(user_id uuid) returns jsonb
language plpgsql stable
as $$
declare
  v jsonb;
begin
  perform require_permission('profile.manage');
  select to_jsonb(p) || jsonb_build_object(
           'permissions', coalesce((select jsonb_agg(r.permission order by pm.position)
                                      from role_permissions r
                                      join permissions pm on pm.code = r.permission
                                     where r.tenant_id = p.tenant_id and r.app_role = p.app_role), '[]'),
           'manager', (select jsonb_build_object('user_id', m.user_id, 'full_name', m.full_name,
                                                 'email', m.email, 'active', m.active)
                         from profiles m
                        where m.tenant_id = p.tenant_id and m.user_id = p.manager_user_id),
           'reports', (select count(*) from profiles r
                        where r.tenant_id = p.tenant_id and r.manager_user_id = p.user_id and r.active))
    into v
    from profiles p
   where p.tenant_id = bizos.tenant_id() and p.user_id = user_detail.user_id
     and p.app_role <> 'integration';
  if v is null then
    raise exception using errcode = 'P0002', column = 'user_id',
      message = 'user_id: no user with this id in the tenant';
  end if;
  return v;
end
$$;
grant execute on function user_detail(uuid) to bizos_authenticated;
comment on function user_detail(uuid) is
  'A user of the tenant (profile.manage): the profile, its role''s permissions, its manager and its number of active reports.';

-- user_invite(payload) -> the new profile and the id of its invitation
-- e-mail (profile.manage). payload: email, full_name, app_role (required),
-- dept_code (required for ops), manager_user_id, user_id (the identity
-- provider's subject of the person, when known; a new UUID otherwise,
-- which the IdP must then issue as `sub`). The invitation (template
-- user.invite.<tenant locale>) is queued in the same transaction: a
-- refused invitation leaves neither profile nor e-mail.
-- SECURITY DEFINER, with the checks of profiles' insert policy made here
-- (profile.manage, the caller's tenant): the invitation e-mail is queued
-- by email_queue as the owner, and on Citus a transaction may not write a
-- tenant's shards as two users (the profile as the caller, the e-mail as
-- the owner).
create or replace function user_invite(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_email text;
  v_name text;
  v_role text;
  v_dept text;
  v_manager uuid;
  v_user uuid;
  v_locale text;
  v_inviter text;
  v_email_id uuid;
  p profiles;
begin
  perform require_permission('profile.manage');
  perform payload_check(payload, '{"email": "text", "full_name": "text", "app_role": "text",
                                   "dept_code": "text", "manager_user_id": "uuid", "user_id": "uuid"}');
  v_email := lower(payload_text(payload, 'email', true, 254));
  begin
    perform v_email::email_address;
  exception when check_violation then
    perform raise_field('email', 'is not an e-mail address (local@domain.example)');
  end;
  v_name := payload_text(payload, 'full_name', true, 200);
  v_role := vocabulary_check('app_roles', lower(payload_text(payload, 'app_role', true, 40)), 'app_role');
  v_dept := admin_dept_code(payload_text(payload, 'dept_code', false, 40));
  v_manager := payload_uuid(payload, 'manager_user_id');
  v_user := coalesce(payload_uuid(payload, 'user_id'), gen_random_uuid());
  if v_role = 'ops' and v_dept is null then
    perform raise_field('dept_code', 'is required for the ops role (the department whose tickets they work)');
  end if;
  perform admin_manager_check(v_user, v_manager);
  if v_role = 'super_admin' then
    perform admin_require_super_admin('make a user super_admin');
  end if;
  if exists (select 1 from profiles x where x.tenant_id = v_tenant and x.email = v_email) then
    raise exception using errcode = '23505', column = 'email', constraint = 'profiles_email_key',
      message = 'email: a user with this address already exists in the tenant';
  end if;
  if exists (select 1 from profiles x where x.tenant_id = v_tenant and x.user_id = v_user) then
    raise exception using errcode = '23505', column = 'user_id', constraint = 'profiles_pkey',
      message = 'user_id: a user with this id already exists in the tenant';
  end if;

  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id)
  values (v_tenant, v_user, v_email, v_name, v_role, v_dept, v_manager)
  returning * into p;

  select t.locale into v_locale from tenants t where t.tenant_id = v_tenant;
  select i.full_name into v_inviter from profiles i where i.tenant_id = v_tenant and i.user_id = bizos.uid();
  v_email_id := email_enqueue('user.invite.' || coalesce(v_locale, 'id'), array[v_email],
                              jsonb_build_object('full_name', v_name, 'email', v_email, 'role', v_role,
                                                 'invited_by', coalesce(v_inviter, 'An administrator')));
  return to_jsonb(p) || jsonb_build_object('invitation_email_id', v_email_id);
end
$$;
select pin_search_path('user_invite(jsonb)');
revoke execute on function user_invite(jsonb) from public;
grant execute on function user_invite(jsonb) to bizos_authenticated;
comment on function user_invite(jsonb) is
  'Invites a user (profile.manage): creates the profile (email, full_name, app_role, dept_code, manager_user_id, user_id = the IdP subject) and queues the user.invite.<locale> e-mail in the same transaction.';

-- user_update(user_id, payload) -> the changed profile (profile.manage).
-- payload (PATCH: only the keys sent change; null clears dept_code and
-- manager_user_id): full_name, app_role, dept_code, manager_user_id.
create or replace function user_update(user_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  p profiles;
  n profiles;
begin
  perform require_permission('profile.manage');
  perform payload_check(payload, '{"full_name": "text", "app_role": "text", "dept_code": "text",
                                   "manager_user_id": "uuid"}');
  if payload = '{}'::jsonb then
    perform raise_field('payload', 'nothing to change: send full_name, app_role, dept_code or manager_user_id');
  end if;
  perform admin_lock_users();
  select * into p from profiles x
   where x.tenant_id = v_tenant and x.user_id = user_update.user_id and x.app_role <> 'integration'
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'user_id',
      message = 'user_id: no user with this id in the tenant';
  end if;
  n := p;
  if payload ? 'full_name' then
    n.full_name := payload_text(payload, 'full_name', true, 200);
  end if;
  if payload ? 'app_role' then
    n.app_role := vocabulary_check('app_roles', lower(payload_text(payload, 'app_role', true, 40)), 'app_role');
  end if;
  if payload ? 'dept_code' then
    n.dept_code := admin_dept_code(payload_text(payload, 'dept_code', false, 40));
  end if;
  if payload ? 'manager_user_id' then
    n.manager_user_id := payload_uuid(payload, 'manager_user_id');
  end if;
  if n.app_role = 'ops' and n.dept_code is null then
    perform raise_field('dept_code', 'is required for the ops role (the department whose tickets they work)');
  end if;
  if n.manager_user_id is distinct from p.manager_user_id then
    perform admin_manager_check(p.user_id, n.manager_user_id);
  end if;
  if p.app_role = 'super_admin' then
    perform admin_require_super_admin('change a super admin');
  elsif n.app_role = 'super_admin' then
    perform admin_require_super_admin('make a user super_admin');
  end if;
  if p.app_role = 'super_admin' and p.active and n.app_role <> 'super_admin' then
    perform admin_keep_a_super_admin(p.user_id, 'app_role');
  end if;
  update profiles x
     set full_name = n.full_name, app_role = n.app_role, dept_code = n.dept_code,
         manager_user_id = n.manager_user_id
   where x.tenant_id = v_tenant and x.user_id = p.user_id
  returning * into n;
  return to_jsonb(n);
end
$$;
grant execute on function user_update(uuid, jsonb) to bizos_authenticated;
comment on function user_update(uuid, jsonb) is
  'Changes a user (profile.manage): full_name, app_role, dept_code, manager_user_id (PATCH semantics); the manager is an active user of the tenant, no cycles, ops need a department, the tenant keeps an active super admin.';

-- user_set_active(user_id, make_active) -> the profile (profile.manage).
-- A deactivated user is refused from their next request on (403
-- user_inactive), whatever their token; their rows stay theirs.
create or replace function user_set_active(user_id uuid, make_active boolean) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  p profiles;
begin
  perform require_permission('profile.manage');
  if make_active is null then
    perform raise_field('active', 'is required');
  end if;
  perform admin_lock_users();
  select * into p from profiles x
   where x.tenant_id = v_tenant and x.user_id = user_set_active.user_id and x.app_role <> 'integration'
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'user_id',
      message = 'user_id: no user with this id in the tenant';
  end if;
  if p.app_role = 'super_admin' then
    perform admin_require_super_admin('deactivate or reactivate a super admin');
    if p.active and not make_active then
      perform admin_keep_a_super_admin(p.user_id, 'user_id');
    end if;
  end if;
  if p.active is distinct from make_active then
    update profiles x set active = make_active
     where x.tenant_id = v_tenant and x.user_id = p.user_id
    returning * into p;
  end if;
  return to_jsonb(p);
end
$$;
grant execute on function user_set_active(uuid, boolean) to bizos_authenticated;
comment on function user_set_active(uuid, boolean) is
  'Deactivates or reactivates a user (profile.manage); deactivation refuses their next request (user_inactive). The tenant keeps an active super admin.';

-- ---------------------------------------------------------------------------
-- the tenant's overrides of role_permissions
-- ---------------------------------------------------------------------------

-- One role of a tenant: its effective permissions (role_permissions), and
-- how they differ from the defaults every tenant starts with
-- (default_role_permissions(): `added` are granted on top, `removed` were
-- revoked), each in the vocabulary's order.
create or replace function role_permissions_of(tenant uuid, role_code text) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
           'app_role', r.code,
           'description', r.description,
           'permissions', coalesce((select jsonb_agg(g.permission order by pm.position)
                                      from role_permissions g join permissions pm on pm.code = g.permission
                                     where g.tenant_id = tenant and g.app_role = r.code), '[]'),
           'added', coalesce((select jsonb_agg(g.permission order by pm.position)
                                from role_permissions g join permissions pm on pm.code = g.permission
                               where g.tenant_id = tenant and g.app_role = r.code
                                 and not exists (select 1 from default_role_permissions() d
                                                  where d.app_role = r.code and d.permission = g.permission)), '[]'),
           'removed', coalesce((select jsonb_agg(d.permission order by pm.position)
                                  from default_role_permissions() d join permissions pm on pm.code = d.permission
                                 where d.app_role = r.code
                                   and not exists (select 1 from role_permissions g
                                                    where g.tenant_id = tenant and g.app_role = r.code
                                                      and g.permission = d.permission)), '[]'))
    from app_roles r
   where r.code = role_code
$$;
grant execute on function role_permissions_of(uuid, text) to bizos_authenticated;
comment on function role_permissions_of(uuid, text) is
  'A role of a tenant: its effective permissions and, against default_role_permissions(), the ones added and removed.';

-- roles_list() -> {items: [role_permissions_of(...)]}, every app role in
-- list order (permission.manage).
create or replace function roles_list() returns jsonb
language plpgsql stable
as $$
begin
  perform require_permission('permission.manage');
  return jsonb_build_object('items',
    coalesce((select jsonb_agg(role_permissions_of(bizos.tenant_id(), r.code) order by r.position)
                from app_roles r where r.code <> 'integration'), '[]'));
end
$$;
grant execute on function roles_list() to bizos_authenticated;
comment on function roles_list() is
  'Every app role of people with its effective permissions in the tenant and the overrides of the defaults (permission.manage); API keys'' integration role has scopes instead.';

-- The role and permission of a grant or revoke, checked (P0001 naming
-- role or permission), with the rules only a super admin passes.
create or replace function role_permission_args(role_code text, permission_code text,
                                                out app_role text, out permission text)
language plpgsql stable
as $$
begin
  perform require_permission('permission.manage');
  if nullif(btrim(role_code), '') is null then
    perform raise_field('role', 'is required');
  end if;
  if nullif(btrim(permission_code), '') is null then
    perform raise_field('permission', 'is required');
  end if;
  app_role := vocabulary_check('app_roles', lower(btrim(role_code)), 'role');
  permission := vocabulary_check('permissions', lower(btrim(permission_code)), 'permission');
  if app_role = 'integration' then
    perform raise_field('role', 'an API key''s permissions are its scopes (POST /api/api-keys), not a role''s');
  end if;
  if app_role = 'super_admin' then
    perform admin_require_super_admin('change the permissions of super_admin');
  end if;
  if permission in ('profile.manage', 'permission.manage') then
    perform admin_require_super_admin('grant or revoke ' || permission);
  end if;
end
$$;
grant execute on function role_permission_args(text, text) to bizos_authenticated;
comment on function role_permission_args(text, text) is
  'The checked role and permission of a grant or revoke (permission.manage; super_admin and the admin permissions only by a super admin).';

-- role_permission_grant(role, permission) -> the role as roles_list shows
-- it, and whether anything changed (granting a held permission is not an
-- error). Takes effect on the next request of every user of the role.
create or replace function role_permission_grant(role_code text, permission_code text) returns jsonb
language plpgsql
as $$
declare
  a record;
  n integer;
begin
  select * into a from role_permission_args(role_code, permission_code);
  insert into role_permissions (tenant_id, app_role, permission)
  values (bizos.tenant_id(), a.app_role, a.permission)
  on conflict do nothing;
  get diagnostics n = row_count;
  return role_permissions_of(bizos.tenant_id(), a.app_role) || jsonb_build_object('changed', n > 0);
end
$$;
grant execute on function role_permission_grant(text, text) to bizos_authenticated;
comment on function role_permission_grant(text, text) is
  'Grants a permission of the vocabulary to a role of the tenant (permission.manage); returns the role and whether it changed.';

-- role_permission_revoke(role, permission) -> as grant. super_admin
-- always keeps profile.manage and permission.manage: without them nobody
-- could administer the tenant any more (the lock-out guard).
create or replace function role_permission_revoke(role_code text, permission_code text) returns jsonb
language plpgsql
as $$
declare
  a record;
  n integer;
begin
  select * into a from role_permission_args(role_code, permission_code);
  if a.app_role = 'super_admin' and a.permission in ('profile.manage', 'permission.manage') then
    perform raise_field('permission',
      format('super_admin always keeps %s: without it nobody could administer the tenant', a.permission));
  end if;
  delete from role_permissions g
   where g.tenant_id = bizos.tenant_id() and g.app_role = a.app_role and g.permission = a.permission;
  get diagnostics n = row_count;
  return role_permissions_of(bizos.tenant_id(), a.app_role) || jsonb_build_object('changed', n > 0);
end
$$;
grant execute on function role_permission_revoke(text, text) to bizos_authenticated;
comment on function role_permission_revoke(text, text) is
  'Revokes a permission from a role of the tenant (permission.manage); super_admin keeps profile.manage and permission.manage. Returns the role and whether it changed.';
