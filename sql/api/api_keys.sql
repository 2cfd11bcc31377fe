-- API keys (migration V35): creating and revoking them, the list, and the
-- lookup of a request's key. What a key may do is has_permission()
-- (platform.sql) from its scopes; authenticate_request() (platform.sql)
-- refuses a revoked or expired key on every request.

-- A key's principal (app role integration) is made and changed only by
-- api_key_create, which says so for its own transaction: nobody turns a
-- person into a key or a key into a person. (authenticate_request() also
-- refuses a key whose profile is not an integration and a token of a
-- person whose profile is one, so even a forged flag opens nothing.)
-- The flag is a placeholder setting of prefix bizos_app: the extension
-- reserves the prefix bizos. for its own settings.
create or replace function profiles_guard_integration() returns trigger
language plpgsql
as $$
begin
  if (new.app_role = 'integration' or (tg_op = 'UPDATE' and old.app_role = 'integration'))
     and (tg_op = 'INSERT' or new.app_role is distinct from old.app_role)
     and pg_catalog.current_setting('bizos_app.api_key_principal', true) is distinct from 'create' then
    raise exception using errcode = '42501', column = 'app_role',
      message = 'app_role: integration is the role of API keys (POST /api/api-keys); a person cannot have it and a key cannot lose it';
  end if;
  return new;
end
$$;
select pin_search_path('profiles_guard_integration()');
revoke execute on function profiles_guard_integration() from public;
comment on function profiles_guard_integration() is
  'Trigger: only api_key_create makes a profile with app role integration; no profile changes to or from it.';
create or replace trigger profiles_guard_integration before insert or update of app_role on profiles
  for each row execute function profiles_guard_integration();

-- The keys of the caller's tenant, as the key managers see them: never the
-- secret nor its hash.
-- The scopes come from a grouped join, not a sub-select per key: a
-- caller's `tenant_id = $1` reaches it too, and on Citus the whole query
-- goes to the tenant's worker (a correlated sub-select kept it from there).
create or replace view v_api_keys with (security_invoker = true) as
  select k.tenant_id, k.key_id, k.name, k.display_prefix,
         coalesce(sc.scopes, '{}') as scopes,
         (select array_agg(host(ip) || case when masklen(ip) = case when family(ip) = 4 then 32 else 128 end
                                            then '' else '/' || masklen(ip) end)
            from unnest(k.allowed_ips) ip) as allowed_ips,
         k.expires_at,
         case when k.revoked_at is not null then 'revoked'
              when k.expires_at <= now() then 'expired'
              else 'active' end as status,
         u.last_used_at, host(u.last_used_ip) as last_used_ip,
         k.created_by, k.created_at, k.revoked_at, k.revoked_by
    from api_keys k
    left join (select s.tenant_id, s.key_id, array_agg(s.scope order by a.position) as scopes
                 from api_key_scopes s join api_scopes a on a.code = s.scope
                group by s.tenant_id, s.key_id) sc on sc.tenant_id = k.tenant_id and sc.key_id = k.key_id
    left join api_key_usage u on u.tenant_id = k.tenant_id and u.key_id = k.key_id;
comment on view v_api_keys is
  'API keys of the caller''s tenant (holders of api_key.manage): scopes, allowed IPs, expiry, status (active, expired, revoked) and last use.';
grant select on v_api_keys to bizos_authenticated;

-- One key as the API shows it.
create or replace function api_key_json(tenant uuid, key uuid) returns jsonb
language sql stable
as $$
  select to_jsonb(v) - 'tenant_id' from v_api_keys v where v.tenant_id = tenant and v.key_id = key
$$;
select pin_search_path('api_key_json(uuid, uuid)');
revoke execute on function api_key_json(uuid, uuid) from public;
grant execute on function api_key_json(uuid, uuid) to bizos_authenticated;
comment on function api_key_json(uuid, uuid) is
  'One API key as the API shows it (v_api_keys without tenant_id; RLS of the caller applies).';

-- api_key_create(payload, secret_hash, display_prefix) -> the key: a new
-- key of the caller's tenant with its principal. payload: name (required),
-- scopes (required, a non-empty list of api_scopes), expires_at (optional,
-- in the future), allowed_ips (optional, addresses or CIDR blocks). The BFF
-- makes the secret and passes only its SHA-256 and its display prefix.
create or replace function api_key_create(payload jsonb, secret_hash bytea, display_prefix text) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_key uuid := gen_random_uuid();
  v_name text;
  v_scopes text[];
  v_expires timestamptz;
  v_ips cidr[];
  v_raw text;
  i integer;
begin
  perform require_permission('api_key.manage');
  perform payload_check(payload,
    '{"name": "text", "scopes": "text[]", "expires_at": "text", "allowed_ips": "text[]"}');
  v_name := payload_text(payload, 'name', true, 100);

  if jsonb_typeof(payload -> 'scopes') is distinct from 'array' or jsonb_array_length(payload -> 'scopes') = 0 then
    perform raise_field('scopes', 'required: a non-empty list of scopes');
  end if;
  for i in 0 .. jsonb_array_length(payload -> 'scopes') - 1 loop
    v_raw := payload -> 'scopes' ->> i;
    perform vocabulary_check('api_scopes', v_raw, format('scopes[%s]', i));
    if not v_raw = any (coalesce(v_scopes, '{}')) then
      v_scopes := v_scopes || v_raw;
    end if;
  end loop;

  v_expires := payload_timestamptz(payload, 'expires_at');
  if v_expires <= now() then
    perform raise_field('expires_at', 'must be in the future');
  end if;

  if jsonb_typeof(payload -> 'allowed_ips') = 'array' then
    if jsonb_array_length(payload -> 'allowed_ips') not between 1 and 50 then
      perform raise_field('allowed_ips', 'must list 1 to 50 addresses or CIDR blocks (leave it out to allow any)');
    end if;
    for i in 0 .. jsonb_array_length(payload -> 'allowed_ips') - 1 loop
      begin
        v_ips := v_ips || (payload -> 'allowed_ips' ->> i)::cidr;
      exception when others then
        perform raise_field(format('allowed_ips[%s]', i),
          'must be an IP address or a CIDR block such as 203.0.113.0/24 (host bits zero)');
      end;
    end loop;
  end if;

  if secret_hash is null or length(secret_hash) <> 32 then
    raise exception using errcode = '22023', message = 'secret_hash: must be the 32 bytes of SHA-256';
  end if;

  -- SET LOCAL: on Citus only the command reaches the worker whose trigger
  -- reads it.
  set local bizos_app.api_key_principal = 'create';
  insert into profiles (tenant_id, user_id, email, full_name, app_role, active)
  values (v_tenant, v_key, format('api-key-%s@api-keys.invalid', v_key), 'API key: ' || v_name, 'integration', true);
  set local bizos_app.api_key_principal = '';

  insert into api_keys (tenant_id, key_id, name, display_prefix, allowed_ips, expires_at, created_by)
  values (v_tenant, v_key, v_name, api_key_create.display_prefix, v_ips, v_expires, bizos.uid());
  insert into api_key_scopes (tenant_id, key_id, scope)
  select v_tenant, v_key, s from unnest(v_scopes) s;
  insert into api_key_lookup (secret_hash, tenant_id, key_id)
  values (api_key_create.secret_hash, v_tenant, v_key);
  return api_key_json(v_tenant, v_key);
end
$$;
select pin_search_path('api_key_create(jsonb, bytea, text)');
revoke execute on function api_key_create(jsonb, bytea, text) from public;
grant execute on function api_key_create(jsonb, bytea, text) to bizos_authenticated;
comment on function api_key_create(jsonb, bytea, text) is
  'Creates an API key of the caller''s tenant (api_key.manage) and its principal (a profile with app role integration); stores only the SHA-256 of its secret. Fields: name, scopes, expires_at, allowed_ips.';

-- api_key_revoke(key_id) -> the key: revoked from now on (its principal is
-- deactivated; the next request with it is refused). Revoking a revoked
-- key changes nothing.
create or replace function api_key_revoke(key_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
begin
  perform require_permission('api_key.manage');
  if not exists (select 1 from api_keys k where k.tenant_id = v_tenant and k.key_id = api_key_revoke.key_id) then
    raise exception using errcode = 'P0002', column = 'key_id', message = 'key_id: no such API key';
  end if;
  update api_keys k set revoked_at = now(), revoked_by = bizos.uid()
   where k.tenant_id = v_tenant and k.key_id = api_key_revoke.key_id and k.revoked_at is null;
  update profiles p set active = false
   where p.tenant_id = v_tenant and p.user_id = api_key_revoke.key_id and p.active;
  return api_key_json(v_tenant, api_key_revoke.key_id);
end
$$;
select pin_search_path('api_key_revoke(uuid)');
revoke execute on function api_key_revoke(uuid) from public;
grant execute on function api_key_revoke(uuid) to bizos_authenticated;
comment on function api_key_revoke(uuid) is
  'Revokes an API key of the caller''s tenant (api_key.manage): its next request is refused.';

-- The key of a request, by the SHA-256 of its token, before the request
-- knows its tenant: the BFF's login calls it. Refuses unknown (ZA010),
-- revoked (ZA011) and expired (ZA012) keys, and a client address outside
-- the key's allowed IPs (ZA013). Records the use at most once a minute per
-- key and address (a read on the hot path, a write once a minute).
create or replace function api_key_authenticate(secret_hash bytea, client_ip inet)
returns table (tenant_id uuid, key_id uuid, scopes text[])
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_key uuid;
  v_revoked timestamptz;
  v_expires timestamptz;
  v_ips cidr[];
begin
  select l.tenant_id, l.key_id into v_tenant, v_key
    from api_key_lookup l where l.secret_hash = api_key_authenticate.secret_hash;
  if not found then
    raise exception using errcode = 'ZA010', message = 'unknown API key';
  end if;
  select k.revoked_at, k.expires_at, k.allowed_ips into v_revoked, v_expires, v_ips
    from api_keys k where k.tenant_id = v_tenant and k.key_id = v_key;
  if v_revoked is not null then
    raise exception using errcode = 'ZA011', message = 'this API key is revoked';
  end if;
  if v_expires <= now() then
    raise exception using errcode = 'ZA012', message = 'this API key has expired';
  end if;
  if v_ips is not null and (client_ip is null or not exists (select 1 from unnest(v_ips) n where client_ip <<= n)) then
    raise exception using errcode = 'ZA013',
      message = format('this API key may not be used from %s', coalesce(host(client_ip), 'an unknown address'));
  end if;
  if not exists (select 1 from api_key_usage u
                  where u.tenant_id = v_tenant and u.key_id = v_key
                    and u.last_used_at > now() - interval '1 minute'
                    and u.last_used_ip is not distinct from client_ip) then
    insert into api_key_usage as u (tenant_id, key_id, last_used_at, last_used_ip)
    values (v_tenant, v_key, now(), client_ip)
    on conflict on constraint api_key_usage_pkey do update
      set last_used_at = excluded.last_used_at, last_used_ip = excluded.last_used_ip;
  end if;
  return query
    select v_tenant, v_key,
           coalesce((select array_agg(s.scope order by s.scope) from api_key_scopes s
                      where s.tenant_id = v_tenant and s.key_id = v_key), '{}');
end
$$;
select pin_search_path('api_key_authenticate(bytea, inet)');
revoke execute on function api_key_authenticate(bytea, inet) from public;
grant execute on function api_key_authenticate(bytea, inet) to bizos_app;
comment on function api_key_authenticate(bytea, inet) is
  'The BFF''s login: the tenant, id and scopes of the API key whose token has this SHA-256; refuses unknown (ZA010), revoked (ZA011), expired (ZA012) keys and addresses outside its allowed IPs (ZA013).';
