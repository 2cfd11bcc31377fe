-- The LLM gateway (migration V26): the functions the gateway of
-- the BFF calls around every model call, the owner's settings, and the
-- usage, cost and margin views.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- One generation through the gateway:
--   llm_begin(tenant, user, feature, cache_key, est_tokens, request_id)
--       a live cache entry of the tenant: a ledger row (cache_hit, cost 0),
--       {"cached": ...}; no limit is consumed. Otherwise one generation
--       (day) and est_tokens (month) are reserved in the tenant's and the
--       user's counters, each within its limit, atomically:
--       {"reservation_id": ...}, or SQLSTATE BZ429 with hint
--       retry_after=<seconds>. The transaction commits before the model is
--       called (no transaction is held open during a provider call).
--   llm_finish(tenant, reservation, attempts, cache)
--       one ledger row per attempt, priced from llm_prices; the reservation
--       is settled (tokens: estimate -> actual of the ok attempts; no ok
--       attempt: the generation is given back); the answer is cached.
--
-- Who calls what:
--   llm_begin, llm_finish    the BFF in a user's request (claims: tenant and
--                            user must be the claims'), the worker for system
--                            work (no claims; user may be NULL)
--   llm_route                every request role, the BFF's and the worker's logins
--   llm_key_material         the BFF's and the worker's logins only (outside
--                            any user transaction), never a request role
--   llm_key_add, llm_key_revoke   a super_admin of the tenant (claims)
--   llm_limit_set            scope tenant: the owner (operator, CLI); scope
--                            user: also a super_admin of the tenant
--   llm_provider_set, llm_route_set   the owner
--   llm_usage, v_llm_*       super_admins and directors (RLS of llm_calls);
--                            v_llm_margin_monthly: the owner and analytics

-- ---------------------------------------------------------------------------
-- internal helpers
-- ---------------------------------------------------------------------------

-- The caller may act for (tenant_id, user_id): with request claims they
-- must be the claims' tenant and user; without, the session must be the
-- worker's or the owner's login (system work; user_id may be NULL).
create or replace function llm_check_caller(tenant_id uuid, user_id uuid) returns void
language plpgsql stable
as $$
begin
  if bizos.tenant_id() is not null or bizos.uid() is not null then
    if llm_check_caller.tenant_id is distinct from bizos.tenant_id() then
      raise exception using errcode = '42501', column = 'tenant_id',
        message = 'tenant_id: not the tenant of the request';
    end if;
    if llm_check_caller.user_id is distinct from bizos.uid() then
      raise exception using errcode = '42501', column = 'user_id',
        message = 'user_id: not the user of the request';
    end if;
  elsif not (pg_has_role(session_user, 'bizos_worker', 'member')
             or pg_has_role(session_user, 'bizos_owner', 'member')) then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
end
$$;
select pin_search_path('llm_check_caller(uuid, uuid)');
revoke execute on function llm_check_caller(uuid, uuid) from public;
comment on function llm_check_caller(uuid, uuid) is
  'Internal: refuses (42501) a caller acting for another tenant or user than its claims, or without claims when it is not the worker or the owner.';

-- The feature's vocabulary row; P0001 naming the field when it is not a term.
create or replace function llm_feature(feature text) returns llm_features
language plpgsql stable
as $$
declare
  r llm_features;
begin
  if llm_feature.feature is null then
    perform raise_field('feature', 'is required');
  end if;
  select * into r from llm_features f where f.code = llm_feature.feature;
  if not found then
    perform vocabulary_check('llm_features', llm_feature.feature, 'feature');
  end if;
  return r;
end
$$;
select pin_search_path('llm_feature(text)');
revoke execute on function llm_feature(text) from public;
grant execute on function llm_feature(text) to bizos_authenticated;
comment on function llm_feature(text) is
  'The llm_features row of a feature; P0001 "feature: must be one of ..." when it is not one.';

-- The limits a tenant's feature works under in a scope: its llm_limits row,
-- else the feature's defaults. NULL: unlimited.
create or replace function llm_limit_of(tenant_id uuid, feature text, scope text,
                                        out generations_per_day integer, out tokens_per_month bigint)
language sql stable
as $$
  select case when l.tenant_id is not null then l.generations_per_day
              when llm_limit_of.scope = 'tenant' then f.default_tenant_generations_per_day
              else f.default_user_generations_per_day end,
         case when l.tenant_id is not null then l.tokens_per_month
              when llm_limit_of.scope = 'tenant' then f.default_tenant_tokens_per_month
              else f.default_user_tokens_per_month end
    from llm_features f
    left join llm_limits l
      on l.tenant_id = llm_limit_of.tenant_id and l.feature = f.code and l.scope = llm_limit_of.scope
   where f.code = llm_limit_of.feature
$$;
select pin_search_path('llm_limit_of(uuid, text, text)');
revoke execute on function llm_limit_of(uuid, text, text) from public;
grant execute on function llm_limit_of(uuid, text, text) to bizos_authenticated;
comment on function llm_limit_of(uuid, text, text) is
  'The limits (generations a day, tokens a month; NULL: unlimited) of a tenant''s feature in scope tenant or user: its llm_limits row, else the feature''s defaults.';

-- Seconds from now until the tenant-local period after the one starting at
-- `start` begins (at least 1).
create or replace function llm_retry_after(tenant uuid, per text, start date) returns integer
language sql stable
as $$
  select greatest(1, ceil(extract(epoch from
           (((case when per = 'day' then start + 1 else (start + interval '1 month')::date end)::timestamp
             at time zone t.time_zone) - now()))))::integer
    from tenants t
   where t.tenant_id = tenant
$$;
select pin_search_path('llm_retry_after(uuid, text, date)');
revoke execute on function llm_retry_after(uuid, text, date) from public;
comment on function llm_retry_after(uuid, text, date) is
  'Internal: seconds until the tenant-local day or month after the one starting at start begins.';

-- The price of a model in force at an instant.
create or replace function llm_price_at(provider text, model text, at timestamptz) returns llm_prices
language sql stable
as $$
  select p.* from llm_prices p
   where p.provider = llm_price_at.provider and p.model = llm_price_at.model and p.effective_from <= at
   order by p.effective_from desc
   limit 1
$$;
select pin_search_path('llm_price_at(text, text, timestamp with time zone)');
revoke execute on function llm_price_at(text, text, timestamp with time zone) from public;
grant execute on function llm_price_at(text, text, timestamp with time zone) to bizos_authenticated, bizos_worker;
comment on function llm_price_at(text, text, timestamp with time zone) is
  'The llm_prices row of a model in force at an instant (the latest effective_from not after it); NULL when there is none.';

-- Settles a reservation (already deleted by the caller): generations and
-- tokens move from what llm_begin reserved to what was used. In the order
-- llm_begin takes the counters (tenant before user, day before month), so
-- concurrent generations never deadlock.
create or replace function llm_settle(r llm_reservations, ok boolean, tokens bigint) returns void
language plpgsql
as $$
begin
  if ok and coalesce(tokens, 0) = r.est_tokens then
    return;
  end if;
  -- The plan's counters first (llm_begin takes them first), day before month.
  update llm_plan_counters c
     set used = greatest(c.used - case when c.period = 'day' then 1
                                       else r.est_tokens - coalesce(tokens, 0) end, 0)
    from (select x.period, x.period_start from llm_plan_counters x
           where x.tenant_id = r.tenant_id
             and ((x.period = 'day' and x.period_start = r.day and not ok)
                  or (x.period = 'month' and x.period_start = r.month
                      and coalesce(tokens, 0) <> r.est_tokens))
           order by x.period
             for update) l
   where c.tenant_id = r.tenant_id and c.period = l.period and c.period_start = l.period_start;
  -- One statement; the subquery locks the rows in llm_begin's order.
  update llm_counters c
     set used = greatest(c.used - case when c.period = 'day' then 1
                                       else r.est_tokens - coalesce(tokens, 0) end, 0)
    from (select x.user_id, x.period, x.period_start from llm_counters x
           where x.tenant_id = r.tenant_id and x.feature = r.feature
             and x.user_id in ('00000000-0000-0000-0000-000000000000', r.user_id)
             and ((x.period = 'day' and x.period_start = r.day and not ok)
                  or (x.period = 'month' and x.period_start = r.month
                      and coalesce(tokens, 0) <> r.est_tokens))
           order by x.user_id = '00000000-0000-0000-0000-000000000000' desc, x.period
             for update) l
   where c.tenant_id = r.tenant_id and c.feature = r.feature and c.user_id = l.user_id
     and c.period = l.period and c.period_start = l.period_start;
end
$$;
select pin_search_path('llm_settle(llm_reservations, boolean, bigint)');
revoke execute on function llm_settle(llm_reservations, boolean, bigint) from public;
comment on function llm_settle(llm_reservations, boolean, bigint) is
  'Internal: settles a finished reservation in the counters (tokens: estimate -> actual; no ok attempt: the generation given back).';

-- ---------------------------------------------------------------------------
-- the gateway's calls
-- ---------------------------------------------------------------------------

-- llm_begin(tenant_id, user_id, feature, cache_key, est_tokens, request_id)
-- -> {"cached": <response>, "call_id", "provider", "model"} on a live cache
-- entry of the tenant, else {"reservation_id"}; BZ429 over a limit.
create or replace function llm_begin(tenant_id uuid, user_id uuid, feature text, cache_key bytea,
                                     est_tokens bigint, request_id text)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_nil constant uuid := '00000000-0000-0000-0000-000000000000';
  v_feature text;
  v_status text;
  v_zone text;
  v_profile boolean;
  v_hit boolean;
  v_response jsonb;
  v_provider text;
  v_model text;
  v_in bigint;
  v_out bigint;
  v_currency text;
  v_call uuid;
  v_day date;
  v_month date;
  l record;
  v_res uuid;
  v_plan text;
  v_plan_gen bigint;
  v_plan_tok bigint;
  v_request text := left(nullif(coalesce(llm_begin.request_id, current_setting('request.id', true)), ''), 200);
begin
  -- This runs before every model call, so it reads what it needs in one
  -- statement and calls no SQL function (those are parsed and planned
  -- again on every call; the statements of this function are planned once
  -- a session).
  perform llm_check_caller(llm_begin.tenant_id, llm_begin.user_id);
  select f.code, t.status, t.time_zone, llm_begin.user_id is null or p.user_id is not null,
         c.cache_key is not null, c.response, c.provider, c.model, c.tokens_in, c.tokens_out, q.currency,
         pl.plan_code, pl.ai_generations_per_day, pl.ai_tokens_per_month
    into v_feature, v_status, v_zone, v_profile,
         v_hit, v_response, v_provider, v_model, v_in, v_out, v_currency,
         v_plan, v_plan_gen, v_plan_tok
    from (select) one
    left join llm_features f on f.code = llm_begin.feature
    left join tenants t on t.tenant_id = llm_begin.tenant_id
    left join plans pl on pl.plan_code = t.plan_code
    left join profiles p on p.tenant_id = llm_begin.tenant_id and p.user_id = llm_begin.user_id
    -- A live answer of this tenant, and the currency its model is priced in.
    left join llm_cache c
      on c.tenant_id = llm_begin.tenant_id and c.cache_key = llm_begin.cache_key and c.expires_at > now()
    left join lateral (select x.currency from llm_prices x
                        where x.provider = c.provider and x.model = c.model and x.effective_from <= now()
                        order by x.effective_from desc
                        limit 1) q on true;
  if v_feature is null then
    perform llm_feature(llm_begin.feature); -- raises, naming the field
  end if;
  if v_status is null then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', llm_begin.tenant_id);
  elsif v_status = 'suspended' then
    raise exception using errcode = 'ZA003', message = 'this organisation is suspended';
  elsif v_status = 'read_only' then
    raise exception using errcode = '25006', message = 'this organisation is read-only';
  end if;
  if not v_profile then
    raise exception using errcode = 'P0002', column = 'user_id',
      message = format('user_id: no user %s in this tenant', llm_begin.user_id);
  end if;
  if llm_begin.est_tokens is null or llm_begin.est_tokens < 0 then
    perform raise_field('est_tokens', 'must be a number of tokens (0 or more)');
  end if;
  if llm_begin.cache_key is not null and length(llm_begin.cache_key) <> 32 then
    perform raise_field('cache_key', 'must be 32 bytes (SHA-256)');
  end if;

  -- A cache hit is free and consumes no limit. The hit is its ledger row
  -- (no update of the entry: concurrent hits of one entry never queue on
  -- its row lock).
  if v_hit then
    insert into llm_calls as c (tenant_id, user_id, feature, provider, model, key_ref, tokens_in, tokens_out,
                                outcome, cost, currency, request_id, cache_key)
    values (llm_begin.tenant_id, llm_begin.user_id, v_feature, v_provider, v_model, 'cache',
            v_in, v_out, 'cache_hit', 0, v_currency, v_request, llm_begin.cache_key)
    returning c.call_id into v_call;
    return jsonb_build_object('cached', v_response, 'call_id', v_call, 'provider', v_provider, 'model', v_model);
  end if;

  -- One generation today and est_tokens this month, tenant scope then user
  -- scope, each within its limit (the llm_limits row, else the feature's
  -- defaults; NULL: no limit). Each addition holds the counter's row lock
  -- (insert .. on conflict do update .. where): concurrent callers queue
  -- on the row and each sees the previous one's sum, so no more than a
  -- limit is ever handed out. A used-up token budget refuses even an
  -- estimate of 0. A refusal raises, which undoes whatever this call added
  -- before it. (llm_settle takes the rows in the same order.)
  v_day := (now() at time zone v_zone)::date;
  v_month := date_trunc('month', v_day::timestamp)::date;
  -- First the plan's caps of the tenant as a whole (every feature
  -- together), the same way, in llm_plan_counters; only while the plan has
  -- one (llm_settle settles the rows that exist).
  if v_plan_gen is not null or v_plan_tok is not null then
    for l in
      select x.period, x.period_start, x.amount, x.lim
        from (values (1, 'day', v_day, 1::bigint, v_plan_gen),
                     (2, 'month', v_month, llm_begin.est_tokens, v_plan_tok)) x (ord, period, period_start, amount, lim)
       order by x.ord
    loop
      if l.lim is null or (l.amount <= l.lim and l.lim > 0) then
        insert into llm_plan_counters as c (tenant_id, period, period_start, used)
        values (llm_begin.tenant_id, l.period, l.period_start, l.amount)
        on conflict on constraint llm_plan_counters_pkey do update
           set used = c.used + excluded.used
         where l.lim is null or (c.used + excluded.used <= l.lim and c.used < l.lim);
        continue when found;
      end if;
      raise exception using errcode = 'BZ429',
        message = case l.period
          when 'day' then format('ai_generations_per_day: the plan %s allows %s AI generations a day and they are used up',
                                 v_plan, l.lim)
          else format('ai_tokens_per_month: the plan %s allows %s AI tokens a month and they are used up',
                      v_plan, l.lim) end,
        hint = format('retry_after=%s', llm_retry_after(llm_begin.tenant_id, l.period, l.period_start));
    end loop;
  end if;
  for l in
    select s.scope, s.user_id, x.period, x.period_start, x.amount, x.lim
      from (values (1, 'tenant', v_nil), (2, 'user', llm_begin.user_id)) s (ord, scope, user_id)
      join llm_features f on f.code = v_feature
      left join llm_limits m
        on m.tenant_id = llm_begin.tenant_id and m.feature = v_feature and m.scope = s.scope
     cross join lateral (
       values (1, 'day', v_day, 1::bigint,
               case when m.tenant_id is not null then m.generations_per_day
                    when s.scope = 'tenant' then f.default_tenant_generations_per_day
                    else f.default_user_generations_per_day end::bigint),
              (2, 'month', v_month, llm_begin.est_tokens,
               case when m.tenant_id is not null then m.tokens_per_month
                    when s.scope = 'tenant' then f.default_tenant_tokens_per_month
                    else f.default_user_tokens_per_month end)
     ) x (ord, period, period_start, amount, lim)
     where s.user_id is not null
     order by s.ord, x.ord
  loop
    if l.lim is null or (l.amount <= l.lim and l.lim > 0) then
      insert into llm_counters as c (tenant_id, feature, user_id, period, period_start, used)
      values (llm_begin.tenant_id, v_feature, l.user_id, l.period, l.period_start, l.amount)
      on conflict on constraint llm_counters_pkey do update
         set used = c.used + excluded.used
       where l.lim is null or (c.used + excluded.used <= l.lim and c.used < l.lim);
      continue when found;
    end if;
    raise exception using errcode = 'BZ429',
      message = format('%s: the %s limit of %s %s is used up', v_feature, l.scope, l.lim,
                       case l.period when 'day' then 'generations a day' else 'tokens a month' end),
      hint = format('retry_after=%s', llm_retry_after(llm_begin.tenant_id, l.period, l.period_start));
  end loop;
  insert into llm_reservations as r (tenant_id, user_id, feature, est_tokens, day, month, request_id)
  values (llm_begin.tenant_id, llm_begin.user_id, v_feature, llm_begin.est_tokens, v_day, v_month, v_request)
  returning r.reservation_id into v_res;
  return jsonb_build_object('reservation_id', v_res);
end
$$;
select pin_search_path('llm_begin(uuid, uuid, text, bytea, bigint, text)');
revoke execute on function llm_begin(uuid, uuid, text, bytea, bigint, text) from public;
-- bizos_app too: the BFF calls it in one statement under the caller's
-- claims, checked for EXECUTE before the switch to the request role (see
-- as_caller! in bff/src/db.rs); without claims it refuses the BFF's login.
grant execute on function llm_begin(uuid, uuid, text, bytea, bigint, text) to bizos_authenticated, bizos_worker, bizos_app;
comment on function llm_begin(uuid, uuid, text, bytea, bigint, text) is
  'Gateway: before a model call. A live cache entry of the tenant: ledger row (cache_hit, cost 0) and {"cached", "call_id", "provider", "model"}, no limit consumed. Else reserves one generation (day) and est_tokens (month) for the tenant and the user within their limits: {"reservation_id"}; over a limit SQLSTATE BZ429, hint retry_after=<seconds>.';

-- llm_finish(tenant_id, reservation_id, attempts, cache) -> {"call_ids",
-- "cost", "currency"}. attempts: [{"user_id", "feature", "provider",
-- "model", "key_ref", "tokens_in", "tokens_out", "latency_ms", "outcome"
-- (ok | error | fallback), "error", "request_id"}, ...] in the order tried;
-- user_id and feature, when given, must be the reservation's. cache (NULL:
-- nothing cached): {"cache_key" (hex of the 32 bytes), "feature",
-- "provider", "model", "response", "tokens_in", "tokens_out", "ttl_secs"}
-- (when absent: feature the reservation's, provider and tokens those of
-- the ok attempt of that model, ttl_secs the feature's cache_ttl_secs; 0
-- caches nothing).
create or replace function llm_finish(tenant_id uuid, reservation_id uuid, attempts jsonb, cache jsonb)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_claims boolean := bizos.tenant_id() is not null or bizos.uid() is not null;
  r llm_reservations;
  v_attempts jsonb := coalesce(llm_finish.attempts, '[]'::jsonb);
  v_cache jsonb := case when jsonb_typeof(llm_finish.cache) = 'null' then null else llm_finish.cache end;
  e jsonb;
  i integer;
  f text;
  k text;
  v_key bytea;
  v_hex text;
  v_cache_feature llm_features;
  v_cache_provider text;
  v_cache_model text;
  v_cache_in bigint;
  v_cache_out bigint;
  v_ttl bigint;
  v_ok boolean;
  v_tokens bigint;
  v_ids uuid[];
  v_cost numeric;
  v_currency text;
begin
  if v_claims then
    if llm_finish.tenant_id is distinct from bizos.tenant_id() then
      raise exception using errcode = '42501', column = 'tenant_id',
        message = 'tenant_id: not the tenant of the request';
    end if;
  else
    perform llm_check_caller(llm_finish.tenant_id, null);
  end if;
  -- The open generation (a user finishes only their own), closed here: a
  -- refusal below raises, which puts it back.
  delete from llm_reservations x
   where x.tenant_id = llm_finish.tenant_id and x.reservation_id = llm_finish.reservation_id
     and (not v_claims or x.user_id = bizos.uid())
  returning x.* into r;
  if not found then
    raise exception using errcode = 'P0002', column = 'reservation_id',
      message = format('reservation_id: no open generation %s', llm_finish.reservation_id);
  end if;

  -- Every field first.
  if jsonb_typeof(v_attempts) <> 'array' then
    perform raise_field('attempts', 'must be a list');
  end if;
  for e, i in select x.e, x.i - 1 from jsonb_array_elements(v_attempts) with ordinality x (e, i) loop
    f := format('attempts[%s]', i);
    perform payload_check(e, '{"user_id": "uuid", "feature": "text", "provider": "text", "model": "text",
                               "key_ref": "text", "tokens_in": "integer", "tokens_out": "integer",
                               "latency_ms": "integer", "outcome": "text", "error": "text",
                               "request_id": "text"}', f || '.');
    if (e ->> 'user_id') is not null
       and (case when (e ->> 'user_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 then (e ->> 'user_id')::uuid is distinct from r.user_id
                 else true end) then
      perform raise_field(f || '.user_id', 'must be the user of the reservation');
    end if;
    if (e ->> 'feature') is not null and (e ->> 'feature') <> r.feature then
      perform raise_field(f || '.feature', 'must be the feature of the reservation (' || r.feature || ')');
    end if;
    if (e ->> 'outcome') is null or (e ->> 'outcome') not in ('ok', 'error', 'fallback') then
      perform raise_field(f || '.outcome', 'must be one of ok, error, fallback');
    end if;
    if (e ->> 'provider') !~ '^[a-z][a-z0-9_-]{0,39}$' then
      perform raise_field(f || '.provider', 'must be a provider name');
    end if;
    if length(e ->> 'model') not between 1 and 200 then
      perform raise_field(f || '.model', 'must be 1 to 200 characters');
    end if;
    if (e ->> 'outcome') = 'ok' and ((e ->> 'provider') is null or (e ->> 'model') is null) then
      perform raise_field(f || '.model', 'is required for an ok attempt (with its provider)');
    end if;
    if (e ->> 'key_ref') !~ '^(platform:[A-Za-z0-9_.-]{1,64}|tenant:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|cache|fallback)$' then
      perform raise_field(f || '.key_ref', 'must be platform:<n>, tenant:<key_id>, cache or fallback');
    end if;
    foreach k in array array['tokens_in', 'tokens_out', 'latency_ms'] loop
      if (e ->> k) !~ '^[0-9]{1,15}$' or (k = 'latency_ms' and (e ->> k)::bigint > 2147483647) then
        perform raise_field(f || '.' || k, 'must be a whole number, 0 or more');
      end if;
    end loop;
    if length(e ->> 'request_id') > 200 then
      perform raise_field(f || '.request_id', 'must be at most 200 characters');
    end if;
  end loop;

  if v_cache is not null then
    perform payload_check_keys(v_cache, array['cache_key', 'feature', 'provider', 'model', 'response',
                                              'tokens_in', 'tokens_out', 'ttl_secs']);
    v_hex := v_cache ->> 'cache_key';
    if jsonb_typeof(v_cache -> 'cache_key') is distinct from 'string'
       or v_hex !~ '^(\\x)?[0-9a-fA-F]{64}$' then
      perform raise_field('cache.cache_key', 'must be the 32 bytes as 64 hex digits');
    end if;
    v_key := decode(regexp_replace(v_hex, '^\\x', ''), 'hex');
    if jsonb_typeof(v_cache -> 'feature') not in ('string', 'null') then
      perform raise_field('cache.feature', 'must be a string');
    end if;
    select f.* into v_cache_feature from llm_features f where f.code = coalesce(v_cache ->> 'feature', r.feature);
    if not found then
      perform vocabulary_check('llm_features', v_cache ->> 'feature', 'cache.feature'); -- raises
    end if;
    v_cache_model := v_cache ->> 'model';
    if jsonb_typeof(v_cache -> 'model') is distinct from 'string' or length(v_cache_model) not between 1 and 200 then
      perform raise_field('cache.model', 'must be 1 to 200 characters');
    end if;
    v_cache_provider := coalesce(v_cache ->> 'provider',
      (select x.e ->> 'provider' from jsonb_array_elements(v_attempts) with ordinality x (e, i)
        where x.e ->> 'outcome' = 'ok' and x.e ->> 'model' = v_cache_model
        order by x.i desc limit 1));
    if v_cache_provider !~ '^[a-z][a-z0-9_-]{0,39}$' then
      perform raise_field('cache.provider', 'must be a provider name');
    end if;
    if v_cache -> 'response' is null or jsonb_typeof(v_cache -> 'response') = 'null' then
      perform raise_field('cache.response', 'is required');
    end if;
    foreach k in array array['tokens_in', 'tokens_out', 'ttl_secs'] loop
      if (v_cache ->> k) !~ '^[0-9]{1,12}$' then
        perform raise_field('cache.' || k, 'must be a whole number, 0 or more');
      end if;
    end loop;
    -- Tokens: those of the ok attempt that produced the answer when absent.
    select coalesce((v_cache ->> 'tokens_in')::bigint, (x.e ->> 'tokens_in')::bigint, 0),
           coalesce((v_cache ->> 'tokens_out')::bigint, (x.e ->> 'tokens_out')::bigint, 0)
      into v_cache_in, v_cache_out
      from (select 1) one
      left join lateral (select y.e from jsonb_array_elements(v_attempts) with ordinality y (e, i)
                          where y.e ->> 'outcome' = 'ok' and y.e ->> 'model' = v_cache_model
                          order by y.i desc limit 1) x on true;
    v_ttl := least(coalesce((v_cache ->> 'ttl_secs')::bigint, v_cache_feature.cache_ttl_secs), 31536000);
  end if;

  -- The ledger: one row per attempt, priced at the price in force now.
  with ins as (
    insert into llm_calls as l (tenant_id, user_id, feature, provider, model, key_ref, tokens_in, tokens_out,
                                latency_ms, outcome, error, cost, currency, request_id, reservation_id, attempt)
    select r.tenant_id, r.user_id, r.feature, a.provider, a.model, a.key_ref, a.tokens_in, a.tokens_out,
           a.latency_ms, a.outcome, a.error,
           case when a.outcome = 'fallback' or (a.tokens_in = 0 and a.tokens_out = 0) then 0
                when p.provider is null then null
                else trim_scale(a.tokens_in::numeric * p.input_per_mtok / 1000000
                                + a.tokens_out::numeric * p.output_per_mtok / 1000000) end,
           p.currency, a.request_id, r.reservation_id, a.attempt
      from (select x.e ->> 'provider' as provider, x.e ->> 'model' as model, x.e ->> 'key_ref' as key_ref,
                   coalesce((x.e ->> 'tokens_in')::bigint, 0) as tokens_in,
                   coalesce((x.e ->> 'tokens_out')::bigint, 0) as tokens_out,
                   (x.e ->> 'latency_ms')::integer as latency_ms, x.e ->> 'outcome' as outcome,
                   left(nullif(x.e ->> 'error', ''), 4000) as error,
                   coalesce(nullif(x.e ->> 'request_id', ''), r.request_id) as request_id,
                   x.i::smallint as attempt
              from jsonb_array_elements(v_attempts) with ordinality x (e, i)) a
      left join lateral (select q.* from llm_prices q
                          where q.provider = a.provider and q.model = a.model and q.effective_from <= now()
                          order by q.effective_from desc
                          limit 1) p
        on true
    returning l.call_id, l.attempt, l.outcome, l.tokens_in, l.tokens_out, l.cost, l.currency
  )
  select coalesce(array_agg(ins.call_id order by ins.attempt), '{}'),
         coalesce(bool_or(ins.outcome = 'ok'), false),
         coalesce(sum(ins.tokens_in + ins.tokens_out) filter (where ins.outcome = 'ok'), 0),
         case when bool_or(ins.cost is null) or count(distinct ins.currency) > 1 then null
              else coalesce(sum(ins.cost), 0) end,
         max(ins.currency)
    into v_ids, v_ok, v_tokens, v_cost, v_currency
    from ins;

  perform llm_settle(r, v_ok, v_tokens);

  if v_cache is not null and v_ttl > 0 then
    -- An expired entry goes (a new one counts its hits from its own start).
    delete from llm_cache c
     where c.tenant_id = r.tenant_id and c.cache_key = v_key and c.expires_at <= now();
    insert into llm_cache as c (tenant_id, cache_key, feature, provider, model, response, tokens_in, tokens_out,
                                expires_at)
    values (r.tenant_id, v_key, v_cache_feature.code, v_cache_provider, v_cache_model, v_cache -> 'response',
            v_cache_in, v_cache_out, now() + make_interval(secs => v_ttl))
    on conflict on constraint llm_cache_pkey do update
       set feature = excluded.feature, provider = excluded.provider, model = excluded.model,
           response = excluded.response, tokens_in = excluded.tokens_in, tokens_out = excluded.tokens_out,
           expires_at = excluded.expires_at;
  end if;

  return jsonb_build_object('call_ids', to_jsonb(v_ids), 'cost', v_cost, 'currency', v_currency);
end
$$;
select pin_search_path('llm_finish(uuid, uuid, jsonb, jsonb)');
revoke execute on function llm_finish(uuid, uuid, jsonb, jsonb) from public;
-- bizos_app too: the BFF calls it in one statement under the caller's
-- claims, checked for EXECUTE before the switch to the request role (see
-- as_caller! in bff/src/db.rs); without claims it refuses the BFF's login.
grant execute on function llm_finish(uuid, uuid, jsonb, jsonb) to bizos_authenticated, bizos_worker, bizos_app;
comment on function llm_finish(uuid, uuid, jsonb, jsonb) is
  'Gateway: after a generation. One ledger row per attempt (cost from llm_prices), settles the reservation (tokens: estimate -> actual of the ok attempts; none ok: the generation is given back), caches the answer; {"call_ids", "cost", "currency"}. Unknown or finished reservation: P0002.';

-- llm_route(feature) -> the fallback chain, in order.
create or replace function llm_route(feature text)
returns table ("position" integer, provider text, wire text, base_url text, model text)
language plpgsql stable
security definer
as $$
begin
  perform llm_feature(llm_route.feature);
  return query
    select r.position::integer, r.provider, p.wire, p.base_url, r.model
      from llm_routes r
      join llm_providers p on p.provider = r.provider
     where r.feature = llm_route.feature
     order by r.position;
end
$$;
select pin_search_path('llm_route(text)');
revoke execute on function llm_route(text) from public;
grant execute on function llm_route(text) to bizos_authenticated, bizos_worker, bizos_app;
comment on function llm_route(text) is
  'Gateway: the ordered fallback chain (provider, wire, base_url, model) of a feature; P0001 for an unknown feature.';

-- llm_key_material(tenant_id, provider) -> the active keys of the tenant for
-- the provider, encrypted as stored (the BFF decrypts them with the master
-- key). For the BFF's and the worker's logins outside user transactions;
-- a request role can neither call it nor select the byte columns.
create or replace function llm_key_material(tenant_id uuid, provider text)
returns table (key_id uuid, ciphertext bytea, nonce bytea, wrapped_dek bytea, dek_nonce bytea,
               master_key_id text)
language plpgsql stable
security definer
as $$
begin
  if bizos.tenant_id() is not null and llm_key_material.tenant_id is distinct from bizos.tenant_id() then
    raise exception using errcode = '42501', column = 'tenant_id',
      message = 'tenant_id: not the tenant of the request';
  end if;
  if not exists (select 1 from llm_providers p where p.provider = llm_key_material.provider) then
    perform raise_field('provider', format('no provider %s', coalesce(llm_key_material.provider, 'NULL')));
  end if;
  return query
    select k.key_id, k.ciphertext, k.nonce, k.wrapped_dek, k.dek_nonce, k.master_key_id
      from llm_tenant_keys k
     where k.tenant_id = llm_key_material.tenant_id and k.provider = llm_key_material.provider
       and k.status = 'active'
     order by k.created_at, k.key_id;
end
$$;
select pin_search_path('llm_key_material(uuid, text)');
revoke execute on function llm_key_material(uuid, text) from public;
grant execute on function llm_key_material(uuid, text) to bizos_app, bizos_worker;
comment on function llm_key_material(uuid, text) is
  'Gateway: a tenant''s active keys of a provider, encrypted (ciphertext, nonce, wrapped data key, its nonce, master key id), oldest first. The BFF''s and the worker''s logins only.';

-- A tenant's keys without their bytes (RLS: the tenant's super_admins).
create or replace view v_llm_keys with (security_invoker = true) as
  select k.tenant_id, k.key_id, k.provider, k.label, k.master_key_id, k.status, k.created_by, k.created_at,
         k.updated_at, k.revoked_at
    from llm_tenant_keys k;
comment on view v_llm_keys is
  'A tenant''s own provider keys, metadata only (never the key or its encryption): the tenant''s super_admins.';
grant select on v_llm_keys to bizos_authenticated;

-- The tenant's cache entries with their hits (ledger rows of the entry
-- since it was stored); not the answers. RLS: super_admins and directors.
create or replace view v_llm_cache with (security_invoker = true) as
  select c.tenant_id, c.cache_key, c.feature, c.provider, c.model, c.tokens_in, c.tokens_out, c.created_at,
         c.expires_at,
         (select count(*) from llm_calls l
           where l.tenant_id = c.tenant_id and l.cache_key = c.cache_key and l.created_at >= c.created_at) as hits
    from llm_cache c;
comment on view v_llm_cache is
  'AI cache entries of the tenant (not the answers) with their hits: the cache_hit rows of the ledger since the entry was stored.';
grant select on v_llm_cache to bizos_authenticated;

-- Internal: the caller must be a super_admin of a tenant (claims).
create or replace function llm_require_super_admin() returns void
language plpgsql stable
as $$
begin
  if bizos.uid() is null or bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if bizos.app_role() is distinct from 'super_admin' then
    raise exception using errcode = '42501', message = 'only a super_admin of the tenant manages its AI keys and limits';
  end if;
end
$$;
select pin_search_path('llm_require_super_admin()');
revoke execute on function llm_require_super_admin() from public;
comment on function llm_require_super_admin() is
  'Internal: 42501 unless the caller is a super_admin (request claims).';

-- llm_key_add(provider, label, ciphertext, nonce, wrapped_dek, dek_nonce,
-- master_key_id) -> key_id: a key of the caller's tenant, encrypted by the
-- BFF. A super_admin of the tenant.
create or replace function llm_key_add(provider text, label text, ciphertext bytea, nonce bytea, wrapped_dek bytea,
                                       dek_nonce bytea, master_key_id text)
returns uuid
language plpgsql
security definer
as $$
declare
  v_id uuid;
begin
  perform llm_require_super_admin();
  if not exists (select 1 from llm_providers p where p.provider = llm_key_add.provider) then
    perform raise_field('provider', 'must be one of '
      || (select string_agg(p.provider, ', ' order by p.provider) from llm_providers p));
  end if;
  if llm_key_add.label is null or length(btrim(llm_key_add.label)) not between 1 and 200
     or llm_key_add.label ~ '[[:cntrl:]]' then
    perform raise_field('label', 'must be 1 to 200 characters');
  end if;
  if length(llm_key_add.ciphertext) is null or length(llm_key_add.ciphertext) not between 1 and 16384 then
    perform raise_field('ciphertext', 'must be 1 to 16384 bytes');
  end if;
  if length(llm_key_add.nonce) is null or length(llm_key_add.nonce) not between 8 and 64 then
    perform raise_field('nonce', 'must be 8 to 64 bytes');
  end if;
  if length(llm_key_add.wrapped_dek) is null or length(llm_key_add.wrapped_dek) not between 16 and 1024 then
    perform raise_field('wrapped_dek', 'must be 16 to 1024 bytes');
  end if;
  if length(llm_key_add.dek_nonce) is null or length(llm_key_add.dek_nonce) not between 8 and 64 then
    perform raise_field('dek_nonce', 'must be 8 to 64 bytes');
  end if;
  if llm_key_add.master_key_id is null or llm_key_add.master_key_id !~ '^[A-Za-z0-9._:-]{1,100}$' then
    perform raise_field('master_key_id', 'must be 1 to 100 letters, digits or ._:-');
  end if;
  insert into llm_tenant_keys as k (tenant_id, provider, label, ciphertext, nonce, wrapped_dek, dek_nonce,
                                    master_key_id, created_by)
  values (bizos.tenant_id(), llm_key_add.provider, btrim(llm_key_add.label), llm_key_add.ciphertext,
          llm_key_add.nonce, llm_key_add.wrapped_dek, llm_key_add.dek_nonce, llm_key_add.master_key_id,
          bizos.uid())
  returning k.key_id into v_id;
  return v_id;
end
$$;
select pin_search_path('llm_key_add(text, text, bytea, bytea, bytea, bytea, text)');
revoke execute on function llm_key_add(text, text, bytea, bytea, bytea, bytea, text) from public;
grant execute on function llm_key_add(text, text, bytea, bytea, bytea, bytea, text) to bizos_authenticated;

-- llm_key_row(key_id) -> the tenant's key as v_llm_keys shows it (metadata
-- only), for the super_admin who just added it (POST /api/ai/keys). Read
-- as the owner that llm_key_add wrote it as: on Citus a transaction may not
-- touch a tenant's shards as two users.
create or replace function llm_key_row(key_id uuid) returns jsonb
language plpgsql stable security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
begin
  perform llm_require_super_admin();
  return (select to_jsonb(k) from v_llm_keys k
           where k.tenant_id = v_tenant and k.key_id = llm_key_row.key_id);
end
$$;
select pin_search_path('llm_key_row(uuid)');
revoke execute on function llm_key_row(uuid) from public;
grant execute on function llm_key_row(uuid) to bizos_authenticated;
comment on function llm_key_add(text, text, bytea, bytea, bytea, bytea, text) is
  'Stores a provider key of the caller''s tenant, envelope-encrypted by the BFF; returns its key_id. A super_admin of the tenant.';

-- llm_key_revoke(key_id) -> the key (v_llm_keys): no longer used. A
-- super_admin of the key's tenant; revoking twice changes nothing.
create or replace function llm_key_revoke(key_id uuid)
returns jsonb
language plpgsql
security definer
as $$
declare
  v jsonb;
begin
  perform llm_require_super_admin();
  update llm_tenant_keys k set status = 'revoked', revoked_at = now()
   where k.tenant_id = bizos.tenant_id() and k.key_id = llm_key_revoke.key_id and k.status = 'active';
  select to_jsonb(x) into v from v_llm_keys x
   where x.tenant_id = bizos.tenant_id() and x.key_id = llm_key_revoke.key_id;
  if v is null then
    raise exception using errcode = 'P0002', column = 'key_id',
      message = format('key_id: no key %s of this tenant', llm_key_revoke.key_id);
  end if;
  return v;
end
$$;
select pin_search_path('llm_key_revoke(uuid)');
revoke execute on function llm_key_revoke(uuid) from public;
grant execute on function llm_key_revoke(uuid) to bizos_authenticated;
comment on function llm_key_revoke(uuid) is
  'Revokes a provider key of the caller''s tenant (a super_admin); returns its metadata.';

-- ---------------------------------------------------------------------------
-- limits
-- ---------------------------------------------------------------------------

-- llm_limit_set(tenant_id, feature, scope, generations_per_day,
-- tokens_per_month) -> the limit row. Scope tenant: the owner only (the
-- operator sells the limits); scope user: also a super_admin of the
-- tenant, and never above the tenant's limit (a NULL, unlimited, user
-- limit only when the tenant's is unlimited too). NULL: unlimited.
create or replace function llm_limit_set(tenant_id uuid, feature text, scope text, generations_per_day integer,
                                         tokens_per_month bigint)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_owner boolean := bizos.uid() is null and bizos.tenant_id() is null
                     and pg_has_role(session_user, 'bizos_owner', 'member');
  v_feature llm_features;
  v_gen integer;
  v_tok bigint;
  v llm_limits;
begin
  if llm_limit_set.scope is null or llm_limit_set.scope not in ('tenant', 'user') then
    perform raise_field('scope', 'must be one of tenant, user');
  end if;
  if not v_owner then
    if llm_limit_set.scope = 'tenant' then
      raise exception using errcode = '42501',
        message = 'only the operator sets a tenant''s AI limits (scope tenant)';
    end if;
    perform llm_require_super_admin();
    if llm_limit_set.tenant_id is distinct from bizos.tenant_id() then
      raise exception using errcode = '42501', column = 'tenant_id',
        message = 'tenant_id: not the tenant of the request';
    end if;
  end if;
  v_feature := llm_feature(llm_limit_set.feature);
  if not exists (select 1 from tenants t where t.tenant_id = llm_limit_set.tenant_id) then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', llm_limit_set.tenant_id);
  end if;
  if llm_limit_set.generations_per_day < 0 then
    perform raise_field('generations_per_day', 'must be 0 or more (NULL: unlimited)');
  end if;
  if llm_limit_set.tokens_per_month < 0 then
    perform raise_field('tokens_per_month', 'must be 0 or more (NULL: unlimited)');
  end if;
  if llm_limit_set.scope = 'user' then
    select l.generations_per_day, l.tokens_per_month into v_gen, v_tok
      from llm_limit_of(llm_limit_set.tenant_id, v_feature.code, 'tenant') l;
    if v_gen is not null and coalesce(llm_limit_set.generations_per_day > v_gen, true) then
      perform raise_field('generations_per_day', format('must not be above the tenant limit of %s', v_gen));
    end if;
    if v_tok is not null and coalesce(llm_limit_set.tokens_per_month > v_tok, true) then
      perform raise_field('tokens_per_month', format('must not be above the tenant limit of %s', v_tok));
    end if;
  end if;
  insert into llm_limits as l (tenant_id, feature, scope, generations_per_day, tokens_per_month, updated_by)
  values (llm_limit_set.tenant_id, v_feature.code, llm_limit_set.scope, llm_limit_set.generations_per_day,
          llm_limit_set.tokens_per_month, bizos.uid())
  on conflict on constraint llm_limits_pkey do update
     set generations_per_day = excluded.generations_per_day, tokens_per_month = excluded.tokens_per_month,
         updated_by = excluded.updated_by
  returning l.* into v;
  return to_jsonb(v);
end
$$;
select pin_search_path('llm_limit_set(uuid, text, text, integer, bigint)');
revoke execute on function llm_limit_set(uuid, text, text, integer, bigint) from public;
grant execute on function llm_limit_set(uuid, text, text, integer, bigint) to bizos_authenticated;
comment on function llm_limit_set(uuid, text, text, integer, bigint) is
  'Sets a tenant''s AI limits of a feature (generations a day, tokens a month; NULL: unlimited). Scope tenant: the owner only; scope user: also the tenant''s super_admin, never above the tenant''s limit.';

-- The limits each feature works under, per tenant and scope, and what is
-- used in the current tenant-local periods: the tenant's counters for
-- scope tenant, the caller's own for scope user.
create or replace view v_llm_limits with (security_invoker = true) as
  select t.tenant_id, f.code as feature, s.scope,
         case when l.tenant_id is not null then l.generations_per_day
              when s.scope = 'tenant' then f.default_tenant_generations_per_day
              else f.default_user_generations_per_day end as generations_per_day,
         case when l.tenant_id is not null then l.tokens_per_month
              when s.scope = 'tenant' then f.default_tenant_tokens_per_month
              else f.default_user_tokens_per_month end as tokens_per_month,
         l.tenant_id is null as is_default,
         coalesce(d.used, 0) as generations_today,
         coalesce(m.used, 0) as tokens_this_month
    from tenants t
   cross join llm_features f
   cross join (values (1, 'tenant'), (2, 'user')) s (n, scope)
    left join llm_limits l on l.tenant_id = t.tenant_id and l.feature = f.code and l.scope = s.scope
    left join llm_counters d
      on d.tenant_id = t.tenant_id and d.feature = f.code and d.period = 'day'
     and d.user_id = case s.scope when 'tenant' then '00000000-0000-0000-0000-000000000000'::uuid
                                  else (select bizos.uid()) end
     and d.period_start = (now() at time zone t.time_zone)::date
    left join llm_counters m
      on m.tenant_id = t.tenant_id and m.feature = f.code and m.period = 'month'
     and m.user_id = case s.scope when 'tenant' then '00000000-0000-0000-0000-000000000000'::uuid
                                  else (select bizos.uid()) end
     and m.period_start = date_trunc('month', now() at time zone t.time_zone)::date;
comment on view v_llm_limits is
  'Per tenant, AI feature and scope: the limits in force (is_default: the feature''s defaults) and the use of the current tenant-local day and month (scope tenant: the tenant''s; scope user: the caller''s own).';
grant select on v_llm_limits to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- the owner's settings
-- ---------------------------------------------------------------------------

-- llm_provider_set(provider, wire, base_url, label) -> the provider row
-- (added or changed). The owner (operator, CLI; tests point base_url at a
-- stand-in).
create or replace function llm_provider_set(provider text, wire text, base_url text, label text)
returns jsonb
language plpgsql
as $$
declare
  v llm_providers;
begin
  if llm_provider_set.provider is null or llm_provider_set.provider !~ '^[a-z][a-z0-9_-]{0,39}$' then
    perform raise_field('provider', 'must be 1 to 40 lower-case letters, digits, _ or -, starting with a letter');
  end if;
  if llm_provider_set.wire is null or llm_provider_set.wire not in ('openai', 'gemini') then
    perform raise_field('wire', 'must be one of openai, gemini');
  end if;
  if llm_provider_set.base_url is null or length(llm_provider_set.base_url) > 500
     or llm_provider_set.base_url !~ '^https?://[^[:space:]/?#]+(/[^[:space:]?#]*)?$' then
    perform raise_field('base_url', 'must be an http(s) URL without query or fragment');
  end if;
  insert into llm_providers as p (provider, wire, base_url, label)
  values (llm_provider_set.provider, llm_provider_set.wire, rtrim(llm_provider_set.base_url, '/'),
          coalesce(nullif(btrim(llm_provider_set.label), ''), llm_provider_set.provider))
  on conflict on constraint llm_providers_pkey do update
     set wire = excluded.wire, base_url = excluded.base_url,
         label = coalesce(nullif(btrim(llm_provider_set.label), ''), p.label)
  returning p.* into v;
  return to_jsonb(v);
end
$$;
select pin_search_path('llm_provider_set(text, text, text, text)');
revoke execute on function llm_provider_set(text, text, text, text) from public;
comment on function llm_provider_set(text, text, text, text) is
  'Owner: adds or changes an LLM provider (wire openai or gemini, base URL, label); returns the row.';

-- llm_route_set(feature, chain) -> the feature's new chain: chain is
-- [{"provider", "model"}, ...], first tried first; [] leaves only the
-- deterministic fallback. The owner.
create or replace function llm_route_set(feature text, chain jsonb)
returns jsonb
language plpgsql
as $$
declare
  v_feature llm_features := llm_feature(llm_route_set.feature);
  e jsonb;
  i integer;
  f text;
begin
  if llm_route_set.chain is null or jsonb_typeof(llm_route_set.chain) <> 'array' then
    perform raise_field('chain', 'must be a list of {"provider", "model"}');
  end if;
  if jsonb_array_length(llm_route_set.chain) > 20 then
    perform raise_field('chain', 'must have at most 20 models');
  end if;
  for e, i in select x.e, x.i - 1 from jsonb_array_elements(llm_route_set.chain) with ordinality x (e, i) loop
    f := format('chain[%s]', i);
    perform payload_check(e, '{"provider": "text", "model": "text"}', f || '.');
    if not exists (select 1 from llm_providers p where p.provider = e ->> 'provider') then
      perform raise_field(f || '.provider', 'must be one of '
        || (select string_agg(p.provider, ', ' order by p.provider) from llm_providers p));
    end if;
    if length(e ->> 'model') is null or length(e ->> 'model') not between 1 and 200
       or (e ->> 'model') ~ '[[:space:][:cntrl:]]' then
      perform raise_field(f || '.model', 'must be 1 to 200 characters without spaces');
    end if;
  end loop;
  delete from llm_routes r where r.feature = v_feature.code;
  insert into llm_routes (feature, position, provider, model)
  select v_feature.code, x.i, x.e ->> 'provider', x.e ->> 'model'
    from jsonb_array_elements(llm_route_set.chain) with ordinality x (e, i);
  return coalesce((select jsonb_agg(jsonb_build_object('provider', r.provider, 'model', r.model) order by r.position)
                     from llm_routes r where r.feature = v_feature.code), '[]'::jsonb);
end
$$;
select pin_search_path('llm_route_set(text, jsonb)');
revoke execute on function llm_route_set(text, jsonb) from public;
comment on function llm_route_set(text, jsonb) is
  'Owner: replaces the fallback chain of a feature with [{"provider", "model"}, ...] (first tried first); returns it.';

-- ---------------------------------------------------------------------------
-- upkeep (the worker and the owner)
-- ---------------------------------------------------------------------------

-- llm_cache_purge() -> entries removed: expired answers of every tenant.
create or replace function llm_cache_purge() returns integer
language plpgsql
security definer
as $$
declare
  v integer;
begin
  delete from llm_cache c where c.expires_at <= now();
  get diagnostics v = row_count;
  return v;
end
$$;
select pin_search_path('llm_cache_purge()');
revoke execute on function llm_cache_purge() from public;
grant execute on function llm_cache_purge() to bizos_worker;
comment on function llm_cache_purge() is
  'Worker/owner: deletes expired AI cache entries (all tenants); returns how many.';

-- llm_reservations_expire(older_than_secs) -> reservations given back:
-- generations whose llm_finish never came (their process died) are settled
-- as failed (the generation and the estimated tokens are given back).
create or replace function llm_reservations_expire(older_than_secs integer default 3600) returns integer
language plpgsql
security definer
as $$
declare
  r llm_reservations;
  v integer := 0;
begin
  if older_than_secs is null or older_than_secs < 60 then
    perform raise_field('older_than_secs', 'must be 60 or more');
  end if;
  for r in
    delete from llm_reservations x
     where (x.tenant_id, x.reservation_id) in (
             select y.tenant_id, y.reservation_id from llm_reservations y
              where y.created_at < now() - make_interval(secs => older_than_secs)
              order by y.tenant_id, y.reservation_id
                for update skip locked)
    returning x.*
  loop
    perform llm_settle(r, false, 0);
    v := v + 1;
  end loop;
  return v;
end
$$;
select pin_search_path('llm_reservations_expire(integer)');
revoke execute on function llm_reservations_expire(integer) from public;
grant execute on function llm_reservations_expire(integer) to bizos_worker;
comment on function llm_reservations_expire(integer) is
  'Worker/owner: gives back generations reserved longer ago than older_than_secs whose llm_finish never came; returns how many.';

-- ---------------------------------------------------------------------------
-- usage, cost and margin (AI-5)
-- ---------------------------------------------------------------------------

-- Per tenant, tenant-local day, feature, provider, model and currency: the
-- calls, cache hits, failures (errors and deterministic fallbacks), tokens
-- and cost. A cost is NULL when a call in it had no price (never a guess).
create or replace view v_llm_cost_daily with (security_invoker = true) as
  select c.tenant_id,
         (c.created_at at time zone t.time_zone)::date as day,
         c.feature, c.provider, c.model,
         count(*) as calls,
         count(*) filter (where c.outcome = 'cache_hit') as cache_hits,
         count(*) filter (where c.outcome in ('error', 'fallback')) as failures,
         sum(c.tokens_in) as tokens_in,
         sum(c.tokens_out) as tokens_out,
         case when bool_or(c.cost is null) then null else sum(c.cost) end as cost,
         c.currency
    from llm_calls c
    join tenants t on t.tenant_id = c.tenant_id
   group by c.tenant_id, (c.created_at at time zone t.time_zone)::date, c.feature, c.provider, c.model,
            c.currency;
comment on view v_llm_cost_daily is
  'AI usage and cost per tenant, tenant-local day, feature, provider, model and currency: calls, cache hits, failures (errors and deterministic fallbacks), tokens, cost (NULL when a call had no price).';
grant select on v_llm_cost_daily to bizos_authenticated;

-- The same per tenant-local month.
create or replace view v_llm_cost_monthly with (security_invoker = true) as
  select d.tenant_id,
         date_trunc('month', d.day::timestamp)::date as month,
         d.feature, d.provider, d.model,
         sum(d.calls)::bigint as calls,
         sum(d.cache_hits)::bigint as cache_hits,
         sum(d.failures)::bigint as failures,
         sum(d.tokens_in) as tokens_in,
         sum(d.tokens_out) as tokens_out,
         case when bool_or(d.cost is null) then null else sum(d.cost) end as cost,
         d.currency
    from v_llm_cost_daily d
   group by d.tenant_id, date_trunc('month', d.day::timestamp)::date, d.feature, d.provider, d.model, d.currency;
comment on view v_llm_cost_monthly is
  'AI usage and cost per tenant, tenant-local month, feature, provider, model and currency (v_llm_cost_daily summed).';
grant select on v_llm_cost_monthly to bizos_authenticated;

-- The operator's AI margin per tenant and tenant-local month: revenue (the
-- plan's price a month, plan_price_a_month: its annual price / 12 in a
-- month billed by the year) minus the AI cost, in IDR. Amounts in another currency are converted at the fx_rates rate in
-- force on the month's first day; a missing rate or an unpriced call makes
-- the amount NULL, never a guess. Months: those with calls, and every
-- tenant's current one. Not granted to request roles: the owner and the
-- analytics report (analysts and BI of the operator).
create or replace view v_llm_margin_monthly with (security_invoker = true) as
  with months as (
    select m.tenant_id, m.month from v_llm_cost_monthly m
    union
    select t.tenant_id, date_trunc('month', now() at time zone t.time_zone)::date from tenants t
  ), costs as (
    select m.tenant_id, m.month,
           bool_or(m.cost is null or (m.cost <> 0 and m.currency <> 'IDR' and r.idr_per_unit is null)) as unknown,
           sum(case when m.cost = 0 then 0
                    when m.currency = 'IDR' then m.cost
                    else m.cost * r.idr_per_unit end) as idr
      from v_llm_cost_monthly m
      left join lateral (select x.idr_per_unit from fx_rates x
                          where x.currency = m.currency and x.effective_from <= m.month
                          order by x.effective_from desc limit 1) r on true
     group by m.tenant_id, m.month
  ), figures as (
    select mo.tenant_id, mo.month, t.plan_code,
           r.price as revenue,
           p.currency as revenue_currency,
           case when p.currency = 'IDR' then r.price else r.price * pr.idr_per_unit end
             as revenue_idr,
           case when c.tenant_id is null then 0 when c.unknown then null else c.idr end as ai_cost_idr
      from months mo
      join tenants t on t.tenant_id = mo.tenant_id
      left join plans p on p.plan_code = t.plan_code
      left join subscriptions s on s.tenant_id = mo.tenant_id
      cross join lateral (select plan_price_a_month(p.monthly_price, p.annual_price, p.currency,
                                                    s.annual_from, s.annual_until, mo.month) as price) r
      left join lateral (select x.idr_per_unit from fx_rates x
                          where x.currency = p.currency and x.effective_from <= mo.month
                          order by x.effective_from desc limit 1) pr on true
      left join costs c on c.tenant_id = mo.tenant_id and c.month = mo.month
  )
  select f.tenant_id, f.month, f.plan_code, f.revenue, f.revenue_currency, f.ai_cost_idr,
         f.revenue_idr - f.ai_cost_idr as margin_idr, f.revenue_idr
    from figures f;
comment on view v_llm_margin_monthly is
  'The operator''s AI margin per tenant and tenant-local month, in IDR: plan revenue (revenue, revenue_currency; revenue_idr converted) minus AI cost (ai_cost_idr), converted at the fx_rates rate in force on the month''s first day; NULL when a rate or a price is missing. The owner and analytics only.';

-- llm_usage(from_day, to_day, group_by) -> one JSON object per tenant,
-- group and currency of the calls the caller may read (RLS of llm_calls:
-- the tenant's super_admins and directors; the owner all tenants) on the
-- tenant-local days from_day .. to_day. group_by: day, month, feature or
-- model; fields: tenant_id, the group's (day | month | feature | provider
-- and model), calls, cache_hits, failures, tokens_in, tokens_out, cost
-- (NULL when a call had no price), currency.
create or replace function llm_usage(from_day date, to_day date, group_by text)
returns setof jsonb
language plpgsql stable
as $$
begin
  if llm_usage.group_by is null or llm_usage.group_by not in ('day', 'month', 'feature', 'model') then
    perform raise_field('group_by', 'must be one of day, month, feature, model');
  end if;
  if llm_usage.from_day is null then
    perform raise_field('from', 'is required');
  end if;
  if llm_usage.to_day is null or llm_usage.to_day < llm_usage.from_day then
    perform raise_field('to', 'must be a date on or after from');
  end if;
  if llm_usage.to_day - llm_usage.from_day > 3660 then
    perform raise_field('to', 'must be at most ten years after from');
  end if;
  return query
    select jsonb_build_object('tenant_id', g.tenant_id) || g.k
           || jsonb_build_object('calls', sum(g.calls), 'cache_hits', sum(g.cache_hits),
                                 'failures', sum(g.failures), 'tokens_in', sum(g.tokens_in),
                                 'tokens_out', sum(g.tokens_out),
                                 'cost', case when bool_or(g.cost is null) then null else sum(g.cost) end,
                                 'currency', g.currency)
      -- The group's key in a derived table, not a lateral subquery without
      -- FROM: Citus pushes down only IMMUTABLE functions in those.
      from (select d.*,
                   case llm_usage.group_by
                     when 'day' then jsonb_build_object('day', d.day)
                     when 'month' then jsonb_build_object('month', date_trunc('month', d.day::timestamp)::date)
                     when 'feature' then jsonb_build_object('feature', d.feature)
                     else jsonb_build_object('provider', d.provider, 'model', d.model) end as k
              from v_llm_cost_daily d
             where d.day between llm_usage.from_day and llm_usage.to_day) g
     group by g.tenant_id, g.k, g.currency
     order by g.tenant_id, g.k, g.currency nulls first;
end
$$;
select pin_search_path('llm_usage(date, date, text)');
revoke execute on function llm_usage(date, date, text) from public;
grant execute on function llm_usage(date, date, text) to bizos_authenticated;
comment on function llm_usage(date, date, text) is
  'AI usage of the tenant-local days from_day .. to_day the caller may read (super_admins and directors; the owner every tenant), grouped by day, month, feature or model (and currency): calls, cache hits, failures, tokens, cost.';
