-- The profile is the authority (issue 11 §2).
--
-- A token identifies a user (`sub`) of a tenant (`tenant_id`); nothing else
-- in it decides what the request may do. The BFF (bff/src/db.rs `begin_as`)
-- opens every request transaction with, in one statement,
--
--   select authenticate_request()
--     from (select set_config('role', 'bizos_authenticated', true),
--                  set_config('request.jwt.claims', <verified claims>, true),
--                  set_config('request.id', <x-request-id>, true)) s
--
-- and authenticate_request() then
--
-- * refuses a user without a profile in the tenant         (SQLSTATE ZA001),
-- * refuses a deactivated profile (profiles.active false)  (SQLSTATE ZA002),
-- * refuses every request of a suspended tenant            (SQLSTATE ZA003),
-- * makes the whole transaction read-only for a tenant whose status is
--   read_only: every write, also inside SECURITY DEFINER functions, the
--   audit trigger and nextval(), fails with PostgreSQL's own 25006
--   (read_only_sql_transaction), and the request cannot switch back:
--   PostgreSQL refuses `transaction_read_only = off` once the transaction
--   has run a query (and inside any subtransaction). PostgreSQL 15 still
--   lets `RESET transaction_read_only` through (16 refuses it); the BFF
--   never sends it, and a session able to run arbitrary SQL could as well
--   rewrite request.jwt.claims, so this is the same trust boundary;
-- * rewrites request.jwt.claims so that `app_role` is the profile's: a
--   token that claims another role (or none) is not refused, its claim is
--   ignored. Department and team already come from profiles
--   (my_dept_code(), my_team_ids()), so every policy and permission check
--   reads the profile through bizos.app_role() from here on.
--
-- Deactivation, a role change, suspension and read-only mode therefore take
-- effect on the caller's next request, whatever the token says and however
-- long it is still valid. The SQLSTATEs are the BFF's contract: it answers
-- 403 with codes no_profile, user_inactive, tenant_suspended and (25006)
-- tenant_read_only (bff/src/error.rs).
--
-- SECURITY DEFINER so that authentication does not depend on the row
-- policies of profiles and tenants, which are evaluated with the claims it
-- is about to correct (a policy reading bizos.app_role() would see the
-- token's role). It checks its caller itself: it runs only once the
-- transaction has switched to bizos_authenticated, it reads no row but the
-- one the claims name, and it returns only that profile's app role.

create function authenticate_request() returns text
language plpgsql
volatile
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_user uuid := bizos.uid();
  v_role text;
  v_active boolean;
  v_status text;
begin
  -- The role setting is the request's, not this function's owner: it is
  -- bizos_authenticated only when the caller switched to it first.
  if pg_catalog.current_setting('role', true) is distinct from 'bizos_authenticated' then
    raise exception using errcode = '42501',
      message = 'authenticate_request() runs at the start of a request, after the switch to bizos_authenticated';
  end if;
  if v_tenant is null or v_user is null then
    raise exception using errcode = 'ZA001',
      message = 'the token does not name a user of a tenant';
  end if;

  select p.app_role, p.active, t.status
    into v_role, v_active, v_status
    from profiles p
    join tenants t on t.tenant_id = p.tenant_id
   where p.tenant_id = v_tenant and p.user_id = v_user;
  if not found then
    raise exception using errcode = 'ZA001',
      message = 'this user has no profile in this tenant';
  end if;
  if not v_active then
    raise exception using errcode = 'ZA002',
      message = 'this user is deactivated',
      hint = 'ask an administrator of your organisation';
  end if;
  if v_status = 'suspended' then
    raise exception using errcode = 'ZA003',
      message = 'this organisation is suspended';
  end if;
  if v_status = 'read_only' then
    perform pg_catalog.set_config('transaction_read_only', 'on', true);
  end if;

  -- The profile wins over whatever app_role the token carried.
  perform pg_catalog.set_config('request.jwt.claims',
    (coalesce(bizos.claims(), '{}'::jsonb) || pg_catalog.jsonb_build_object('app_role', v_role))::text,
    true);
  return v_role;
end
$$;
select pin_search_path('authenticate_request()');
revoke execute on function authenticate_request() from public;
-- The BFF's login calls it (PostgreSQL checks EXECUTE when the statement
-- starts, before its set_config('role', ...) runs).
grant execute on function authenticate_request() to bizos_app;

comment on function authenticate_request() is
  'Start of every request transaction: refuses users without an active profile and suspended tenants, makes read_only tenants'' transactions read-only, and sets app_role in request.jwt.claims from the profile.';
