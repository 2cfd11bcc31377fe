-- Self-service sign-up, the first-party login's look-ups, invitations by
-- link and the organisation's settings (tables: migration V52; design:
-- docs/signup.md).
--
-- Who calls what:
--   signup_request, signup_verify, invitation_accept, login_lookup,
--   signup_throttle_take     the BFF's login (bizos_app) on its own pool,
--                            before any user is known (no claims)
--   invitation_create, organisation_get, organisation_update
--                            users (bizos_authenticated), in their request
--
-- Links carry a token of 32 random bytes (base64url, 43 characters) made
-- here; only its SHA-256 is stored. An unguessable random token checked
-- against a stored hash does what a signature does (nobody can make a
-- valid one), and unlike a stateless signature it can be used once and
-- withdrawn. The token exists in the e-mail only (whose signup.* templates
-- no tenant user may read: V52's policy of emails).

-- A new link token: 32 random bytes, base64url without padding.
create or replace function signup_new_token() returns text
language sql volatile
as $$
  select pg_catalog.translate(pg_catalog.encode(gen_random_bytes(32), 'base64'), '+/=', '-_')
$$;
select pin_search_path('signup_new_token()');
revoke execute on function signup_new_token() from public;
comment on function signup_new_token() is 'A link token: 32 random bytes in base64url (43 characters).';

-- What is stored of a token: its SHA-256.
create or replace function signup_token_hash(token text) returns bytea
language sql immutable strict parallel safe
as $$
  select pg_catalog.sha256(pg_catalog.convert_to(token, 'UTF8'))
$$;
select pin_search_path('signup_token_hash(text)');
revoke execute on function signup_token_hash(text) from public;
comment on function signup_token_hash(text) is 'SHA-256 of a link token: the only form in which a token is stored.';

-- One attempt of a bucket (a client address, an e-mail address) in the
-- current hour; refuses (BZ429, retry_after = the rest of the hour) the
-- attempt beyond `max_per_hour`. The counter is a row of signup_throttle,
-- so every BFF process counts the same attempts; a refused attempt's
-- increment rolls back with the refusal, the counter stays at its limit.
create or replace function signup_throttle_take(bucket text, max_per_hour integer) returns void
language plpgsql security definer
as $$
declare
  v_window timestamptz := pg_catalog.date_trunc('hour', pg_catalog.now());
  v_hits integer;
begin
  insert into signup_throttle as s (bucket, window_start, hits)
  values (signup_throttle_take.bucket, v_window, 1)
  on conflict on constraint signup_throttle_pkey do update set hits = s.hits + 1
  returning s.hits into v_hits;
  if v_hits = 1 then
    -- The bucket's past hours are of no more use.
    delete from signup_throttle s
     where s.bucket = signup_throttle_take.bucket and s.window_start < v_window;
  end if;
  if v_hits > max_per_hour then
    raise exception using errcode = 'BZ429',
      message = 'too many attempts from here: try again later',
      hint = 'retry_after=' || greatest(1, ceil(extract(epoch from v_window + interval '1 hour' - pg_catalog.now())))::integer;
  end if;
end
$$;
select pin_search_path('signup_throttle_take(text, integer)');
revoke execute on function signup_throttle_take(text, integer) from public;
grant execute on function signup_throttle_take(text, integer) to bizos_app;
comment on function signup_throttle_take(text, integer) is
  'Counts an attempt of bucket in the current hour; BZ429 (retry_after=seconds) beyond max_per_hour. Shared by every BFF process.';

-- The tenant whose outbox sends sign-up e-mails, made on first use (one
-- at a time: the lock makes concurrent first sign-ups wait for it).
create or replace function signup_sender_tenant() returns uuid
language plpgsql security definer
as $$
declare
  v_tenant uuid;
begin
  select s.sender_tenant_id into v_tenant from signup_sender s;
  if found then
    return v_tenant;
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.signup_sender'));
  select s.sender_tenant_id into v_tenant from signup_sender s;
  if not found then
    v_tenant := tenant_create('bizos-signup-' || pg_catalog.substr(pg_catalog.md5(gen_random_uuid()::text), 1, 8),
                              'bizos', null, 'en');
    insert into signup_sender (sender_tenant_id) values (v_tenant);
  end if;
  return v_tenant;
end
$$;
select pin_search_path('signup_sender_tenant()');
revoke execute on function signup_sender_tenant() from public;
comment on function signup_sender_tenant() is
  'The tenant whose outbox carries the sign-up e-mails (the operator''s own, named bizos), made on the first sign-up.';

-- A checked e-mail address in lower case (P0001 naming `field`).
create or replace function signup_email(value text, field text) returns text
language plpgsql immutable
as $$
declare
  v text := lower(btrim(value));
begin
  if v is null or v = '' then
    perform raise_field(field, 'is required');
  end if;
  begin
    perform v::email_address;
  exception when check_violation then
    perform raise_field(field, 'is not an e-mail address (local@domain.example)');
  end;
  return v;
end
$$;
select pin_search_path('signup_email(text, text)');
revoke execute on function signup_email(text, text) from public;
grant execute on function signup_email(text, text) to bizos_authenticated;
comment on function signup_email(text, text) is 'An e-mail address checked and in lower case, or P0001 naming field.';

-- A 1..200 character name without control characters (P0001 naming `field`).
create or replace function signup_name(value text, field text) returns text
language plpgsql immutable
as $$
declare
  v text := btrim(value);
begin
  if v is null or v = '' then
    perform raise_field(field, 'is required');
  end if;
  if length(v) > 200 or v ~ '[[:cntrl:]]' then
    perform raise_field(field, 'must be 1 to 200 characters without control characters');
  end if;
  return v;
end
$$;
select pin_search_path('signup_name(text, text)');
revoke execute on function signup_name(text, text) from public;
grant execute on function signup_name(text, text) to bizos_authenticated;
comment on function signup_name(text, text) is 'A trimmed name of 1 to 200 characters without control characters, or P0001 naming field.';

-- The plan a sign-up gives (BIZOS_SIGNUP_PLAN) must be a plan on sale:
-- checked when the sign-up is asked for, so nobody is sent a link that
-- cannot work, and again when the link is used (the operator may have
-- retired it in between). P0001 naming `plan`.
create or replace function signup_plan_check(plan text) returns void
language plpgsql stable
as $$
begin
  if not exists (select 1 from plans p where p.plan_code = signup_plan_check.plan) then
    raise exception using errcode = 'P0001', column = 'plan',
      message = format('plan: no plan %L (BIZOS_SIGNUP_PLAN)', signup_plan_check.plan);
  end if;
  if exists (select 1 from plans p where p.plan_code = signup_plan_check.plan and p.retired_at is not null) then
    raise exception using errcode = 'P0001', column = 'plan',
      message = format('plan: the plan %L is retired and takes no new sign-ups (BIZOS_SIGNUP_PLAN)',
                       signup_plan_check.plan);
  end if;
end
$$;
select pin_search_path('signup_plan_check(text)');
revoke execute on function signup_plan_check(text) from public;
comment on function signup_plan_check(text) is
  'The sign-up plan (BIZOS_SIGNUP_PLAN) exists and is on sale, or P0001 naming plan.';

-- signup_request(...): a company signs up. Throttled per client address
-- and per e-mail address first (so refused and malformed attempts count
-- too), then the fields are checked, then the request and its
-- verification e-mail are stored in this transaction. Whether the address
-- already has a login is never looked at here: an existing address gets
-- the same answer and the same work as a new one (its verification makes
-- a new organisation of the same login).
drop function if exists signup_request(text, text, text, inet, text, interval, integer, integer);
create or replace function signup_request(email text, company_name text, full_name text, client_addr inet,
                                          link_base text, plan text, ttl interval default interval '24 hours',
                                          per_address integer default 20, per_email integer default 5)
returns void
language plpgsql security definer
as $$
declare
  v_email text;
  v_company text;
  v_name text;
  v_token text := signup_new_token();
  v_expires timestamptz := pg_catalog.now() + ttl;
begin
  perform signup_throttle_take('address:' || coalesce(pg_catalog.host(client_addr), 'unknown'), per_address);
  v_email := signup_email(signup_request.email, 'email');
  perform signup_throttle_take('email:' || v_email, per_email);
  v_company := signup_name(company_name, 'company_name');
  v_name := signup_name(full_name, 'full_name');
  perform signup_plan_check(plan);
  if link_base !~ '^https?://[^[:space:]?#]+$' then
    raise exception using errcode = 'P0001', column = 'link_base',
      message = 'link_base: the BFF''s public URL must be an http(s) URL without query';
  end if;

  insert into signup_requests (email, company_name, full_name, token_hash, client_addr, expires_at)
  values (v_email, v_company, v_name, signup_token_hash(v_token), client_addr, v_expires);
  perform email_queue(signup_sender_tenant(), null, 'signup.verify', array[v_email],
                      jsonb_build_object('full_name', v_name, 'company_name', v_company,
                                         'link', link_base || '?token=' || v_token,
                                         'expires_at', to_char(v_expires at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                      '{}');
end
$$;
select pin_search_path('signup_request(text, text, text, inet, text, text, interval, integer, integer)');
revoke execute on function signup_request(text, text, text, inet, text, text, interval, integer, integer) from public;
grant execute on function signup_request(text, text, text, inet, text, text, interval, integer, integer) to bizos_app;
comment on function signup_request(text, text, text, inet, text, text, interval, integer, integer) is
  'A company signs up: throttles per client address and e-mail (BZ429), checks the fields and the sign-up plan (on sale), stores the request (SHA-256 of its token) and queues the signup.verify e-mail with the link; the same for an address that has a login already.';

-- The login of `email` for a verified e-mail address: the existing one
-- (an OIDC subject given must be its id; a password given is set only if
-- it has none), else a new one (the OIDC subject as its id, or a password
-- hash required).
create or replace function signup_identity(email text, identity_id uuid, password_hash text) returns uuid
language plpgsql security definer
as $$
declare
  v login_identities;
begin
  select * into v from login_identities i where i.email = signup_identity.email for update;
  if found then
    if signup_identity.identity_id is not null and signup_identity.identity_id <> v.identity_id then
      raise exception using errcode = '23505', constraint = 'login_identities_email_key', column = 'email',
        message = 'email: this address belongs to another login (sign in with the identity it was first used with)';
    end if;
    if v.password_hash is null and signup_identity.password_hash is not null then
      update login_identities i set password_hash = signup_identity.password_hash
       where i.identity_id = v.identity_id;
    end if;
    return v.identity_id;
  end if;
  if signup_identity.identity_id is null and signup_identity.password_hash is null then
    perform raise_field('password', 'is required (or sign in with your identity provider)');
  end if;
  if signup_identity.identity_id is not null
     and exists (select 1 from login_identities i where i.identity_id = signup_identity.identity_id) then
    raise exception using errcode = '23505', constraint = 'login_identities_pkey', column = 'identity_id',
      message = 'identity_id: this identity is linked to another e-mail address';
  end if;
  insert into login_identities (identity_id, email, password_hash)
  values (coalesce(signup_identity.identity_id, gen_random_uuid()), signup_identity.email, signup_identity.password_hash)
  returning login_identities.identity_id into v.identity_id;
  return v.identity_id;
end
$$;
select pin_search_path('signup_identity(text, uuid, text)');
revoke execute on function signup_identity(text, uuid, text) from public;
comment on function signup_identity(text, uuid, text) is
  'Internal: the login of a verified address (existing, or new with the OIDC subject as id or a password hash).';

-- A slug for a company name: its letters and digits, a random suffix.
create or replace function signup_slug(company_name text) returns text
language sql volatile
as $$
  select left(coalesce(nullif(btrim(regexp_replace(lower(
                case when company_name ~* '^[a-z]' then company_name else 'org-' || company_name end),
                '[^a-z0-9]+', '-', 'g'), '-'), ''), 'org'), 40)
         || '-' || pg_catalog.substr(pg_catalog.md5(gen_random_uuid()::text), 1, 6)
$$;
select pin_search_path('signup_slug(text)');
revoke execute on function signup_slug(text) from public;
comment on function signup_slug(text) is 'A tenant slug made of a company name and a random suffix.';

-- signup_verify(token, identity_id, password_hash, plan) -> {tenant_id,
-- user_id, email}: the link's token makes the tenant (tenant_create, the
-- path of `bizos tenant create`: control database, shared tier) on
-- `plan`, its first super admin (the login's id as user_id) and uses up
-- the request, in one transaction. identity_id: an OIDC subject the
-- caller proved with a token; password_hash: argon2id of the password the
-- person chose (needed when the address has no login yet).
create or replace function signup_verify(token text, identity_id uuid, password_hash text, plan text)
returns jsonb
language plpgsql security definer
as $$
declare
  r signup_requests;
  v_user uuid;
  v_tenant uuid;
begin
  select * into r from signup_requests s where s.token_hash = signup_token_hash(coalesce(token, '')) for update;
  if not found then
    perform raise_field('token', 'is not a valid link');
  end if;
  if r.used_at is not null then
    perform raise_field('token', 'this link was already used: sign in instead');
  end if;
  if r.expires_at <= pg_catalog.now() then
    perform raise_field('token', 'this link has expired: sign up again');
  end if;
  -- Before anything is made (tenants_plan_on_sale would refuse it too,
  -- naming plan_code, after the tenant was begun).
  perform signup_plan_check(plan);

  v_user := signup_identity(r.email, identity_id, password_hash);
  v_tenant := tenant_create(signup_slug(r.company_name), r.company_name);
  perform tenant_set_plan(v_tenant, plan);
  insert into profiles (tenant_id, user_id, email, full_name, app_role)
  values (v_tenant, v_user, r.email, r.full_name, 'super_admin');
  update signup_requests s set used_at = pg_catalog.now(), made_tenant_id = v_tenant
   where s.signup_id = r.signup_id;
  return jsonb_build_object('tenant_id', v_tenant, 'user_id', v_user, 'email', r.email, 'plan_code', plan);
end
$$;
select pin_search_path('signup_verify(text, uuid, text, text)');
revoke execute on function signup_verify(text, uuid, text, text) from public;
grant execute on function signup_verify(text, uuid, text, text) to bizos_app;
comment on function signup_verify(text, uuid, text, text) is
  'Uses a sign-up link once: the tenant (tenant_create, shared tier) on the plan, the login (OIDC subject or password hash) and its super_admin profile; refuses unknown, used and expired links (P0001 token).';

-- login_lookup(email) -> {identity_id, password_hash, tenants: [{tenant_id,
-- name, app_role}]} or NULL: what the first-party login checks. Tenants:
-- those where the login has an active profile and which are not
-- suspended.
create or replace function login_lookup(email text) returns jsonb
language plpgsql stable security definer
as $$
declare
  i login_identities;
  r record;
  v_tenants jsonb := '[]';
begin
  select * into i from login_identities x where x.email = lower(btrim(login_lookup.email));
  if not found then
    return null;
  end if;
  -- A plain join, no correlated sub-query: on Citus profiles is
  -- distributed and the identities a reference table.
  for r in select t.tenant_id, t.name, p.app_role
             from profiles p
             join tenants t on t.tenant_id = p.tenant_id
            where p.user_id = i.identity_id and p.active and t.status <> 'suspended'
            order by t.name, t.tenant_id loop
    v_tenants := v_tenants || jsonb_build_object('tenant_id', r.tenant_id, 'name', r.name, 'app_role', r.app_role);
  end loop;
  return jsonb_build_object('identity_id', i.identity_id, 'password_hash', i.password_hash, 'tenants', v_tenants);
end
$$;
select pin_search_path('login_lookup(text)');
revoke execute on function login_lookup(text) from public;
grant execute on function login_lookup(text) to bizos_app;
comment on function login_lookup(text) is
  'The first-party login: the login of an address (its password hash) and its organisations (active profile, tenant not suspended); NULL when none.';

-- ---------------------------------------------------------------------------
-- invitations
-- ---------------------------------------------------------------------------

-- What the API shows of an invitation (never its token's hash).
create or replace function invitation_json(i invitations) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'invitation_id', i.invitation_id, 'tenant_id', i.tenant_id, 'email', i.email, 'full_name', i.full_name,
    'app_role', i.app_role, 'dept_code', i.dept_code, 'manager_user_id', i.manager_user_id,
    'expires_at', i.expires_at, 'accepted_at', i.accepted_at, 'accepted_user_id', i.accepted_user_id,
    'revoked_at', i.revoked_at, 'created_by', i.created_by, 'created_at', i.created_at)
$$;
select pin_search_path('invitation_json(invitations)');
revoke execute on function invitation_json(invitations) from public;
grant execute on function invitation_json(invitations) to bizos_authenticated;
comment on function invitation_json(invitations) is 'An invitation as the API shows it (no token hash).';

-- invitation_create(payload, link_base, ttl) -> the invitation (without
-- its token) and its e-mail's id (profile.manage). payload: email,
-- full_name, app_role, dept_code, manager_user_id, checked as user_invite
-- checks them. A pending invitation of the same address is withdrawn (its
-- link stops working). SECURITY DEFINER as user_invite: the e-mail is
-- queued by email_queue as the owner.
create or replace function invitation_create(payload jsonb, link_base text, ttl interval default interval '7 days')
returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_email text;
  v_name text;
  v_role text;
  v_dept text;
  v_manager uuid;
  v_token text := signup_new_token();
  v_expires timestamptz := pg_catalog.now() + ttl;
  v_inviter text;
  v_email_id uuid;
  i invitations;
begin
  perform require_permission('profile.manage');
  perform payload_check(payload, '{"email": "text", "full_name": "text", "app_role": "text",
                                   "dept_code": "text", "manager_user_id": "uuid"}');
  v_email := signup_email(payload_text(payload, 'email', true, 254), 'email');
  v_name := signup_name(payload_text(payload, 'full_name', true, 200), 'full_name');
  v_role := vocabulary_check('app_roles', lower(payload_text(payload, 'app_role', true, 40)), 'app_role');
  if v_role = 'integration' then
    perform raise_field('app_role', 'integration is the role of API keys (POST /api/api-keys)');
  end if;
  v_dept := admin_dept_code(payload_text(payload, 'dept_code', false, 40));
  v_manager := payload_uuid(payload, 'manager_user_id');
  if v_role = 'ops' and v_dept is null then
    perform raise_field('dept_code', 'is required for the ops role (the department whose tickets they work)');
  end if;
  perform admin_manager_check(null, v_manager);
  if v_role = 'super_admin' then
    perform admin_require_super_admin('invite a super_admin');
  end if;
  if exists (select 1 from profiles x where x.tenant_id = v_tenant and x.email = v_email) then
    raise exception using errcode = '23505', column = 'email', constraint = 'profiles_email_key',
      message = 'email: a user with this address already exists in the tenant';
  end if;
  if link_base !~ '^https?://[^[:space:]?#]+$' then
    raise exception using errcode = 'P0001', column = 'link_base',
      message = 'link_base: the BFF''s public URL must be an http(s) URL without query';
  end if;

  update invitations x set revoked_at = pg_catalog.now()
   where x.tenant_id = v_tenant and x.email = v_email and x.accepted_at is null and x.revoked_at is null;
  insert into invitations (tenant_id, email, full_name, app_role, dept_code, manager_user_id, token_hash, expires_at)
  values (v_tenant, v_email, v_name, v_role, v_dept, v_manager, signup_token_hash(v_token), v_expires)
  returning * into i;
  select p.full_name into v_inviter from profiles p where p.tenant_id = v_tenant and p.user_id = bizos.uid();
  v_email_id := email_queue(v_tenant, bizos.uid(), 'signup.invitation', array[v_email],
                            jsonb_build_object('full_name', v_name, 'role', v_role,
                                               'invited_by', coalesce(v_inviter, 'An administrator'),
                                               'link', link_base || '?token=' || v_token,
                                               'expires_at', to_char(v_expires at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')),
                            '{}');
  return invitation_json(i) || jsonb_build_object('invitation_email_id', v_email_id);
end
$$;

select pin_search_path('invitation_create(jsonb, text, interval)');
revoke execute on function invitation_create(jsonb, text, interval) from public;
grant execute on function invitation_create(jsonb, text, interval) to bizos_authenticated;
comment on function invitation_create(jsonb, text, interval) is
  'Invites a person (profile.manage): the invitation (email, full_name, app_role, dept_code, manager_user_id; SHA-256 of its token) and its signup.invitation e-mail with the link, in one transaction; withdraws a pending invitation of the same address.';

-- invitation_accept(token, identity_id, password_hash) -> {tenant_id,
-- user_id, email, app_role}: the link's token makes the person's profile
-- (the login's id as user_id) with the invitation's role, once.
create or replace function invitation_accept(token text, identity_id uuid, password_hash text) returns jsonb
language plpgsql security definer
as $$
declare
  i invitations;
  v_user uuid;
  v_tenant uuid;
  v_invitation uuid;
  v_manager uuid;
begin
  -- The link names no tenant: its invitation is found first, then locked
  -- by its key (on Citus a locking read must name the tenant's shard). On
  -- Citus the search reads every shard over one connection per node, so
  -- that the login (login_identities, a reference table) may be written
  -- after it in this transaction.
  if citus_table('invitations') then
    perform pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
  end if;
  select x.tenant_id, x.invitation_id into v_tenant, v_invitation
    from invitations x where x.token_hash = signup_token_hash(coalesce(token, ''));
  select * into i from invitations x
   where x.tenant_id = v_tenant and x.invitation_id = v_invitation
     for update;
  if not found or i.revoked_at is not null then
    perform raise_field('token', 'is not a valid link');
  end if;
  if i.accepted_at is not null then
    perform raise_field('token', 'this invitation was already accepted: sign in instead');
  end if;
  if i.expires_at <= pg_catalog.now() then
    perform raise_field('token', 'this invitation has expired: ask for a new one');
  end if;
  if exists (select 1 from tenants t where t.tenant_id = i.tenant_id and t.status = 'suspended') then
    raise exception using errcode = '42501', message = 'the organisation is suspended';
  end if;
  if exists (select 1 from profiles x where x.tenant_id = i.tenant_id and x.email = i.email) then
    raise exception using errcode = '23505', column = 'email', constraint = 'profiles_email_key',
      message = 'email: a user with this address already exists in the organisation';
  end if;

  v_user := signup_identity(i.email, identity_id, password_hash);
  -- The manager if still active (a value, not a subquery of the insert:
  -- Citus routes neither).
  select p.user_id into v_manager from profiles p
   where p.tenant_id = i.tenant_id and p.user_id = i.manager_user_id and p.active;
  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id)
  values (i.tenant_id, v_user, i.email, i.full_name, i.app_role, i.dept_code, v_manager);
  update invitations x set accepted_at = pg_catalog.now(), accepted_user_id = v_user
   where x.tenant_id = i.tenant_id and x.invitation_id = i.invitation_id;
  return jsonb_build_object('tenant_id', i.tenant_id, 'user_id', v_user, 'email', i.email, 'app_role', i.app_role);
end
$$;
select pin_search_path('invitation_accept(text, uuid, text)');
revoke execute on function invitation_accept(text, uuid, text) from public;
grant execute on function invitation_accept(text, uuid, text) to bizos_app;
comment on function invitation_accept(text, uuid, text) is
  'Accepts an invitation link once: the login (OIDC subject or password hash) and its profile with the invitation''s role; refuses unknown, withdrawn, accepted and expired links (P0001 token).';

-- The tenant's invitations as GET /api/invitations lists them: status
-- pending, accepted, expired or revoked (a withdrawn one is revoked), the
-- address, the role, who invited and when; never the link's secret (the
-- token's hash stays in the table). security_invoker: the invitations'
-- policy decides who reads them (holders of profile.manage, directors).
create or replace view v_invitations with (security_invoker = true) as
  select i.tenant_id, i.invitation_id, i.email, i.full_name, i.app_role, i.dept_code, i.manager_user_id,
         case when i.revoked_at is not null then 'revoked'
              when i.accepted_at is not null then 'accepted'
              when i.expires_at <= pg_catalog.now() then 'expired'
              else 'pending' end as status,
         i.created_by as invited_by, p.full_name as invited_by_name,
         i.created_at, i.expires_at, i.accepted_at, i.accepted_user_id, i.revoked_at
    from invitations i
    left join profiles p on p.tenant_id = i.tenant_id and p.user_id = i.created_by;
grant select on v_invitations to bizos_authenticated;
comment on view v_invitations is
  'A tenant''s invitations with their status (pending, accepted, expired, revoked), address, role, inviter and times; never the token''s hash. Read under the invitations'' policy (profile.manage, directors).';

-- invitation_revoke(invitation_id) -> the invitation as v_invitations shows
-- it, revoked: its link stops working (invitation_accept answers as for an
-- unknown link). profile.manage. Revoking a revoked or expired one is
-- allowed (a revoked one stays as it was); an accepted one is refused: the
-- person is a user now (deactivate them instead). SECURITY DEFINER: request
-- roles cannot update invitations.
create or replace function invitation_revoke(p_invitation_id uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  i invitations;
  v jsonb;
begin
  perform require_permission('profile.manage');
  select * into i from invitations x
   where x.tenant_id = v_tenant and x.invitation_id = p_invitation_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no invitation %s', p_invitation_id);
  end if;
  if i.accepted_at is not null then
    perform raise_field('invitation_id', 'was accepted already: the person is a user now (deactivate them instead)');
  end if;
  if i.revoked_at is null then
    update invitations x set revoked_at = pg_catalog.now()
     where x.tenant_id = v_tenant and x.invitation_id = p_invitation_id;
  end if;
  select to_jsonb(v_) into v from v_invitations v_
   where v_.tenant_id = v_tenant and v_.invitation_id = p_invitation_id;
  return v;
end
$$;
select pin_search_path('invitation_revoke(uuid)');
revoke execute on function invitation_revoke(uuid) from public;
grant execute on function invitation_revoke(uuid) to bizos_authenticated;
comment on function invitation_revoke(uuid) is
  'Revokes a tenant''s invitation (profile.manage): its link stops working and answers as an unknown link does; refuses an accepted one (P0001 invitation_id). Audited with the invitations table.';

-- ---------------------------------------------------------------------------
-- the organisation
-- ---------------------------------------------------------------------------

create or replace function organisation_json(t tenants) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'tenant_id', t.tenant_id, 'slug', t.slug, 'name', t.name, 'time_zone', t.time_zone, 'locale', t.locale,
    'logo_url', t.logo_url, 'default_currency', t.default_currency, 'plan_code', t.plan_code,
    'status', t.status, 'created_at', t.created_at, 'updated_at', t.updated_at)
$$;
select pin_search_path('organisation_json(tenants)');
revoke execute on function organisation_json(tenants) from public;
grant execute on function organisation_json(tenants) to bizos_authenticated;
comment on function organisation_json(tenants) is 'The organisation (the caller''s tenant) as the API shows it.';

-- organisation_get() -> the caller's organisation (every member).
-- The row is read first, then shaped (as organisation_update does): on
-- Citus the one-statement form, a whole row passed to a function, answered
-- an internal error.
create or replace function organisation_get() returns jsonb
language plpgsql stable
as $$
declare
  t tenants;
begin
  select * into t from tenants x where x.tenant_id = bizos.tenant_id();
  if not found then
    return null;
  end if;
  return organisation_json(t);
end
$$;
select pin_search_path('organisation_get()');
revoke execute on function organisation_get() from public;
grant execute on function organisation_get() to bizos_authenticated;
comment on function organisation_get() is 'The caller''s organisation: name, time zone, locale, logo, default currency, plan, status.';

-- organisation_update(payload) -> the organisation (super admins). Only
-- the keys sent change (at least one): name, time_zone, locale, logo_url
-- (null removes it), default_currency. A new time zone goes through
-- tenant_set_time_zone, which moves the tenant's schedules (wall time
-- kept) on a single node and on Citus; every report reads
-- tenants.time_zone when it runs, so days are cut in the new zone from
-- then on. SECURITY DEFINER: members may not write tenants.
create or replace function organisation_update(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  t tenants;
  v_text text;
begin
  perform admin_require_super_admin('change the organisation');
  perform payload_check(payload, '{"name": "text", "time_zone": "text", "locale": "text",
                                   "logo_url": "text", "default_currency": "text"}');
  if not (payload ?| array['name', 'time_zone', 'locale', 'logo_url', 'default_currency']) then
    raise exception using errcode = 'P0001', message = 'nothing to change: send name, time_zone, locale, logo_url or default_currency';
  end if;
  select * into t from tenants x where x.tenant_id = v_tenant for update;
  if not found then
    raise exception using errcode = 'P0002', message = 'no organisation for the caller';
  end if;
  if payload ? 'name' then
    t.name := signup_name(payload ->> 'name', 'name');
  end if;
  if payload ? 'locale' then
    t.locale := lower(payload_text(payload, 'locale', true, 10));
    if t.locale not in ('id', 'en') then
      perform raise_field('locale', 'must be one of id, en');
    end if;
  end if;
  if payload ? 'logo_url' then
    v_text := nullif(btrim(payload ->> 'logo_url'), '');
    if v_text is not null and (v_text !~ '^https://[^[:space:]]+$' or length(v_text) > 2000) then
      perform raise_field('logo_url', 'must be an https URL of at most 2000 characters');
    end if;
    t.logo_url := v_text;
  end if;
  if payload ? 'default_currency' then
    t.default_currency := upper(payload_text(payload, 'default_currency', true, 3));
    if t.default_currency !~ '^[A-Z]{3}$' then
      perform raise_field('default_currency', 'must be an ISO 4217 code of three letters (IDR, USD, ...)');
    end if;
  end if;
  if payload ? 'time_zone' then
    v_text := payload_text(payload, 'time_zone', true, 100);
    if not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = v_text) then
      perform raise_field('time_zone', format('unknown time zone %L (use an IANA name such as Asia/Jakarta)', v_text));
    end if;
  end if;

  update tenants x
     set name = t.name, locale = t.locale, logo_url = t.logo_url, default_currency = t.default_currency
   where x.tenant_id = v_tenant
     and (x.name, x.locale, x.logo_url, x.default_currency)
         is distinct from (t.name, t.locale, t.logo_url, t.default_currency);
  if payload ? 'time_zone' and v_text is distinct from t.time_zone then
    perform tenant_set_time_zone(v_tenant, v_text);
  end if;
  select * into t from tenants x where x.tenant_id = v_tenant;
  return organisation_json(t);
end
$$;
select pin_search_path('organisation_update(jsonb)');
revoke execute on function organisation_update(jsonb) from public;
grant execute on function organisation_update(jsonb) to bizos_authenticated;
comment on function organisation_update(jsonb) is
  'Changes the caller''s organisation (super_admin): name, time_zone (schedules follow), locale, logo_url, default_currency; only the keys sent.';
