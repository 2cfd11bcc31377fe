-- Platform: timestamps and created_by, search-path pinning, permissions,
-- team and department scope, request authentication, idempotency keys,
-- temp-table checks and the tenant's today.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- created_at / updated_at and created_by belong to the database, not to
-- clients: the triggers bizos.stamp_timestamps() and bizos.keep_created_by()
-- of the extension stamp them (V40). created_by is the caller on insert and
-- never changes: a client cannot write a row in someone else's name
-- (outside a request, e.g. migrations and demo data, the given value stays).

-- SECURITY DEFINER functions pin their search path to pg_catalog, the schema
-- they live in (owned by bizos_owner; no one else can create objects there),
-- the helper extensions and pg_temp last. The schema is only known when the
-- migration or api file runs (shared tier: public; schema tier: the
-- tenant's schema), so it is read from the function itself.
create or replace function pin_search_path(fn regprocedure) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  home text;
begin
  select n.nspname into home
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where p.oid = fn;
  execute format('alter function %s set search_path = pg_catalog, %I, extensions, pg_temp', fn, home);
end
$$;
revoke execute on function pin_search_path(regprocedure) from public;

-- On a Citus cluster: does Citus know `rel` (distributed or
-- reference table)? False on a single node, where Citus's catalogue does
-- not exist.
create or replace function citus_table(rel regclass) returns boolean
language plpgsql stable
as $$
declare
  v_known boolean;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null then
    return false;
  end if;
  execute 'select exists (select 1 from pg_catalog.pg_dist_partition where logicalrelid = $1)'
    into v_known using rel;
  return v_known;
end
$$;

-- A policy expression without the sub-select wrappers around function
-- calls: `(select bizos.tenant_id())` becomes `bizos.tenant_id()`. A single
-- node evaluates the wrapped call once per statement; Citus refuses every
-- sub-select in the policies of its tables, and the unwrapped expression
-- means the same. Reads both written SQL and pg_get_expr's form
-- (`( SELECT bizos.tenant_id() AS tenant_id)`).
create or replace function citus_unwrap_sub_selects(expr text) returns text
language sql immutable
as $$
  select pg_catalog.regexp_replace(expr,
    '\(\s*select\s+((?:[a-z_]+\.)?[a-z_]+\((?:[^()]|\([^()]*\))*\))(?:\s+as\s+[a-z_]+)?\s*\)', '\1', 'gi')
$$;

-- Helpers of select policies whose "the caller reads the whole tenant"
-- branch must cost neither a walk of the tenant for a caller who may not
-- (the branch must be one an index serves and that the planner estimates
-- with the caller's values) nor a function call per row for one who may
-- (docs/schema.md, "What a policy costs"; the customers policy, crm.sql).
--
-- The caller's tenant when `cond` holds, else NULL, which no row matches.
-- As `tenant_id = tenant_when(<cond>)`, a plain call, the planner evaluates
-- it while it estimates, so it plans for the caller's actual scope; a
-- single expression without SET, so it is inlined.
create or replace function tenant_when(cond boolean) returns uuid
language sql stable
as $$
  select case when cond then bizos.tenant_id() end
$$;
grant execute on function tenant_when(boolean) to bizos_authenticated;
comment on function tenant_when(boolean) is
  'The caller''s tenant when cond holds, else NULL: the estimable, index-served form of "this caller reads the whole tenant" in a policy.';

-- The lowest uuid, or the earliest time, when `cond` holds, else NULL. In a
-- policy, `(col >= (select uuid_floor_when(<cond>)) and col <= <highest>)`
-- holds for every row when cond does, and is one comparison per row with a
-- value computed once per statement. The planner estimates a range between
-- a sub-select and a constant at 0.5 %, two of them (on two columns) at
-- 0.0025 %: so this branch, unlike `tenant_id = (select ...)` (estimated at
-- the tenant's share of the table), leaves a restricted caller's plan to
-- the branches that name their rows.
create or replace function uuid_floor_when(cond boolean) returns uuid
language sql immutable
as $$
  select case when cond then '00000000-0000-0000-0000-000000000000'::uuid end
$$;
grant execute on function uuid_floor_when(boolean) to bizos_authenticated;
comment on function uuid_floor_when(boolean) is
  'The lowest uuid when cond holds, else NULL (a policy''s cheap per-row form of "every row", see platform.sql).';

create or replace function time_floor_when(cond boolean) returns timestamptz
language sql immutable
as $$
  select case when cond then '-infinity'::timestamptz end
$$;
grant execute on function time_floor_when(boolean) to bizos_authenticated;
comment on function time_floor_when(boolean) is
  'The earliest time when cond holds, else NULL (a policy''s cheap per-row form of "every row", see platform.sql).';

-- The text of a select policy's branch "the caller reads every row of the
-- tenant when `cond` holds" over a table keyed by `key` (a uuid) with a
-- `created_at`: the two forms above, the once-per-statement ranges first
-- (one comparison per row for a caller who reads everything; nothing for
-- the others), then `tenant_id = tenant_when(cond)` behind `(select cond)`,
-- which gives the planner the caller's estimate. For the do blocks that
-- create policies (crm.sql, ticketing.sql, receivables.sql).
create or replace function policy_reads_all(cond text, key name) returns text
language sql immutable
as $$
  select pg_catalog.format(
    '((%1$I >= (select uuid_floor_when(%2$s)) and %1$I <= ''ffffffff-ffff-ffff-ffff-ffffffffffff''::uuid'
    ' and created_at >= (select time_floor_when(%2$s)) and created_at <= ''infinity''::timestamptz)'
    ' or ((select %2$s) and tenant_id = tenant_when(%2$s)))', key, cond)
$$;
comment on function policy_reads_all(text, name) is
  'The text of a select policy''s index-served branch "the caller reads the whole tenant when cond holds" (platform.sql).';

-- The text of a select policy's condition "`cond` holds for the caller" as
-- one conjunct of a branch: the once-per-statement boolean decides per row,
-- `tenant_id = tenant_when(cond)` (evaluated only on rows the boolean let
-- through) gives the planner the caller's estimate, nothing for a caller
-- without it.
create or replace function policy_caller_is(cond text) returns text
language sql immutable
as $$
  select pg_catalog.format('((select %1$s) and tenant_id = tenant_when(%1$s))', cond)
$$;
comment on function policy_caller_is(text) is
  'The text of a select policy''s conjunct "cond holds for the caller", decided once per statement and estimated with the caller''s value (platform.sql).';

-- The text of a select policy's condition "`col` is a user of the caller's
-- team". `col = any (my_team())`, a plain expression the planner evaluates
-- while it estimates, is the index condition and gives the planner the
-- team's rows, not a guess from the column's few distinct values (`= any
-- ((select my_team_ids())::uuid[])` alone was estimated at most of the
-- table, which made a salesperson's plan a walk of the tenant). Per row
-- it costs a setting parsed as an array (3-8 us under load: a sales
-- manager's page of leads, which walks the page's index past 3,850 rows
-- of others, took 130 ms), so the team read once per statement decides
-- first. That test is written so that the planner estimates it at 99.5 %
-- (a NULL test of an expression) and no index serves it: a plain `= any`
-- of it would multiply the estimate by a guess (`@>`: 0.5 %, so a sales
-- manager's 2,000 leads were estimated at 17) and be a second array of
-- the index scan, costed as ten probes per member.
create or replace function policy_team_owns(col name) returns text
language sql immutable
as $$
  select pg_catalog.format(
    '(nullif(%1$I = any ((select my_team_ids())::uuid[]), false) is not null and %1$I = any (my_team()))', col)
$$;
comment on function policy_team_owns(name) is
  'The text of a select policy''s index-served condition "col is a user of the caller''s team" (platform.sql).';

-- The text of a select policy's condition "`col` is one of the caller's
-- team's ids of `kind`" (team_ids, crm.sql: the customers of the team's
-- prospects, 2,000 for a sales manager of the bench).
-- `col = any ((select team_customer_ids())::uuid[])` is an index condition
-- (one probe per id) but a linear search per row the plan fetched: 2,000
-- rows times 1,000 comparisons on average, most of a team's page of
-- customers. Here the first branch tests the array the planner read while
-- it planned (team_ids_planned, a constant, so PostgreSQL hashes it: one
-- lookup per row, and the planner estimates the team's rows), trusted only
-- while the team's ids still have the digest the plan was made with
-- (team_ids_are, once per statement); the second reads the team's ids
-- when the plan's are not theirs (a plan run again for another caller or
-- after a change), and is NULL, an empty index probe and an immediate
-- NULL per row, otherwise.
create or replace function policy_in_team_ids(col name, kind text) returns text
language sql immutable
as $$
  select pg_catalog.format(
    '((%1$I = any (team_ids_planned(%2$L)) and (select team_ids_are(%2$L, team_ids_planned_digest(%2$L))))'
    ' or %1$I = any ((select team_ids_unless(%2$L, team_ids_planned_digest(%2$L)))::uuid[]))', col, kind)
$$;
comment on function policy_in_team_ids(name, text) is
  'The text of a select policy''s index-served condition "col is one of the team''s ids of kind" (team_ids), a hash lookup per row (platform.sql).';

-- The text of a select policy's condition "`col`, an array of user ids,
-- names a user of the caller's team": the tickets' and invoices'
-- sales_owners (V57), the users owning a prospect of the row's customer
-- or its lead. `col && my_team()` is the index condition of the
-- (tenant_id, col) GIN index, one probe per team user, and the planner
-- estimates it with the caller's team against the column's element
-- statistics; as policy_team_owns, the team read once per statement
-- decides per row first, in a test the planner estimates at 99.5 % and no
-- index serves. Before, the policies probed the team's customer and lead
-- ids one by one (2,000-4,000 probes for a sales manager's page at 1M
-- customers, most of them finding nothing, then a test of every fetched
-- row against its bucket of them).
create or replace function policy_team_owns_any(col name) returns text
language sql immutable
as $$
  select pg_catalog.format(
    '(nullif(%1$I && (select my_team_ids())::uuid[], false) is not null and %1$I && my_team())', col)
$$;
comment on function policy_team_owns_any(name) is
  'The text of a select policy''s index-served condition "the user id array col names a user of the caller''s team" (platform.sql).';

-- The default grants every new tenant starts with.
create or replace function default_role_permissions()
returns table (app_role text, permission text)
language sql immutable
as $$
  values
    ('super_admin', 'profile.manage'), ('super_admin', 'permission.manage'),
    ('super_admin', 'lead.create'), ('super_admin', 'lead.update'), ('super_admin', 'lead.assign'),
    ('super_admin', 'prospect.stage'), ('super_admin', 'activity.create'),
    ('super_admin', 'marketing.write'),
    ('super_admin', 'ticket.create'), ('super_admin', 'ticket.update'), ('super_admin', 'ticket.message'),
    ('super_admin', 'kpi.target.manage'), ('super_admin', 'kpi.entry.create'),
    ('super_admin', 'invoice.create'), ('super_admin', 'invoice.delete'), ('super_admin', 'payment.record'),
    ('super_admin', 'collection.create'), ('super_admin', 'audit.read'), ('super_admin', 'audit.unmask'),
    ('director', 'audit.read'),
    ('super_admin', 'schedule.manage'), ('marketing_manager', 'schedule.manage'), ('sales_manager', 'schedule.manage'),
    ('super_admin', 'kb.manage'), ('marketing_manager', 'kb.manage'), ('sales_manager', 'kb.manage'),
    ('ops', 'kb.manage'), ('finance', 'kb.manage'),
    ('super_admin', 'digest.read'), ('director', 'digest.read'),
    ('super_admin', 'sop.manage'), ('finance', 'sop.manage'),
    ('super_admin', 'rfm.manage'), ('marketing_manager', 'rfm.manage'),
    ('super_admin', 'api_key.manage'),
    ('super_admin', 'customer.document'), ('marketing_manager', 'customer.document'),
    ('sales_manager', 'customer.document'), ('salesperson', 'customer.document'), ('finance', 'customer.document'),
    ('super_admin', 'webhook.manage'),
    ('super_admin', 'billing.pay'), ('finance', 'billing.pay'),
    ('marketing_manager', 'lead.create'), ('marketing_manager', 'lead.update'), ('marketing_manager', 'lead.assign'),
    ('marketing_manager', 'marketing.write'), ('marketing_manager', 'activity.create'),
    ('marketing_manager', 'ticket.create'), ('marketing_manager', 'ticket.message'),
    ('marketing_manager', 'kpi.target.manage'), ('marketing_manager', 'kpi.entry.create'),
    ('sales_manager', 'lead.create'), ('sales_manager', 'lead.update'), ('sales_manager', 'lead.assign'),
    ('sales_manager', 'prospect.stage'), ('sales_manager', 'activity.create'),
    ('sales_manager', 'ticket.create'), ('sales_manager', 'ticket.message'),
    ('sales_manager', 'kpi.target.manage'), ('sales_manager', 'kpi.entry.create'),
    ('sales_manager', 'collection.create'),
    ('salesperson', 'lead.create'), ('salesperson', 'lead.update'), ('salesperson', 'prospect.stage'),
    ('salesperson', 'activity.create'), ('salesperson', 'ticket.create'), ('salesperson', 'ticket.message'),
    ('salesperson', 'kpi.entry.create'), ('salesperson', 'collection.create'),
    ('ops', 'ticket.create'), ('ops', 'ticket.update'), ('ops', 'ticket.message'), ('ops', 'kpi.entry.create'),
    ('finance', 'invoice.create'), ('finance', 'payment.record'), ('finance', 'collection.create'),
    ('finance', 'ticket.create'), ('finance', 'ticket.update'), ('finance', 'ticket.message'), ('finance', 'kpi.entry.create')
$$;

create or replace function seed_default_permissions(tenant uuid) returns void
language plpgsql
as $$
begin
    insert into role_permissions (tenant_id, app_role, permission)
    select tenant, d.app_role, d.permission from default_role_permissions() d
    on conflict do nothing;
end
$$;
select pin_search_path('seed_default_permissions(uuid)');
revoke execute on function seed_default_permissions(uuid) from public;

-- Trigger of tenants (single node; on Citus tenant_create() seeds).
create or replace function grant_default_permissions() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('select %I.seed_default_permissions($1)', tg_table_schema) using new.tenant_id;
  return null;
end
$$;

-- May the caller do `permission`? (RLS decides which rows; this decides
-- which actions: 403 instead of invisible.) A person has the permissions of
-- their role in their tenant (role_permissions); an API key's principal
-- (app role integration) has those of its scopes, and nothing else.
--
-- The key's scopes are read by key_scope_permits, as the owner: the
-- policies of api_key_scopes ask has_permission themselves.
create or replace function key_scope_permits(permission text) returns boolean
language sql stable
security definer
as $$
  select exists (
    select 1 from api_key_scopes s
      join api_scope_permissions p on p.scope = s.scope
     where s.tenant_id = bizos.tenant_id()
       and s.key_id = bizos.uid()
       and p.permission = key_scope_permits.permission)
$$;
select pin_search_path('key_scope_permits(text)');
revoke execute on function key_scope_permits(text) from public;
grant execute on function key_scope_permits(text) to bizos_authenticated;
comment on function key_scope_permits(text) is
  'Do the scopes of the calling API key (its principal: bizos.uid()) allow `permission`? Reads only the caller''s own key.';

--
-- What authenticate_request() worked out about the caller at the start of
-- the request: {"permissions": [...], "team": [user ids], "dept": ...};
-- NULL outside a request. Only bizos_app and bizos_worker, which run
-- authenticate_request(), can set it (it is transaction-local, and the
-- request role cannot run SQL of its own).
create or replace function request_context() returns jsonb
language sql stable
as $$
  select nullif(pg_catalog.current_setting('request.context', true), '')::jsonb
$$;
grant execute on function request_context() to bizos_authenticated;

-- A request's permissions are in its context (request_context(), written
-- by authenticate_request() at its start), so a policy reads no table for
-- them: on Citus the policies run on the workers, where they cannot query
-- the distributed role_permissions. Without a context (owner sessions,
-- tests that set claims by hand) the tables answer.
create or replace function has_permission(permission text) returns boolean
language plpgsql stable
as $$
declare
  v_context jsonb := request_context();
begin
  if v_context is not null then
    return v_context -> 'permissions' ? has_permission.permission;
  end if;
  if bizos.app_role() = 'integration' then
    return key_scope_permits(has_permission.permission);
  end if;
  return exists (
    select 1 from role_permissions r
     where r.tenant_id = bizos.tenant_id()
       and r.app_role = bizos.app_role()
       and r.permission = has_permission.permission);
end
$$;
select pin_search_path('has_permission(text)');
grant execute on function has_permission(text)
  to bizos_authenticated;

-- The caller and everyone who reports to them, directly or not: from the
-- request's context (authenticate_request()), else from profiles.
-- (PL/pgSQL: Citus cannot plan a SQL function's parameters.)
create or replace function team_of(tenant uuid, boss uuid) returns uuid[]
language plpgsql stable
as $$
begin
  -- Nobody reports to most callers: their team is themselves, without the
  -- recursive walk (a quarter of authenticate_request()'s time;
  -- docs/benchmarks/crm-and-write-path.md, step nine).
  if boss is not null
     and not exists (select 1 from profiles p where p.tenant_id = tenant and p.manager_user_id = boss) then
    return array[boss];
  end if;
  return (
    with recursive team (user_id) as (
      select boss
      union
      select p.user_id
        from profiles p
        join team t on p.manager_user_id = t.user_id
       where p.tenant_id = tenant
    )
    select coalesce(array_agg(user_id), '{}') from team where user_id is not null);
end
$$;
select pin_search_path('team_of(uuid, uuid)');
grant execute on function team_of(uuid, uuid) to bizos_authenticated;

create or replace function my_team_ids() returns uuid[]
language plpgsql stable
as $$
declare
  v_context jsonb := request_context();
begin
  if v_context is not null then
    return array(select pg_catalog.jsonb_array_elements_text(v_context -> 'team'))::uuid[];
  end if;
  return team_of(bizos.tenant_id(), bizos.uid());
end
$$;
select pin_search_path('my_team_ids()');
grant execute on function my_team_ids()
  to bizos_authenticated;

-- The caller's team as a plain expression for select policies
-- (policy_team_owns): the planner evaluates it while it estimates, and
-- where it is a filter it costs a read of a setting per row, not a call
-- of my_team_ids(). authenticate_request() writes `request.team` (the
-- same team as the context's); outside a request my_team_ids() answers.
-- No SET clause, so that it is inlined; its body names my_team_ids with
-- its schema, so it resolves no name through the caller's search path.
do $do$
begin
  execute format($f$
    create or replace function my_team() returns uuid[]
    language sql stable
    as $$
      select coalesce(nullif(pg_catalog.current_setting('request.team', true), '')::uuid[], %1$I.my_team_ids())
    $$ $f$, (select n.nspname from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
              where p.oid = 'my_team_ids()'::regprocedure));
end
$do$;
grant execute on function my_team() to bizos_authenticated;
comment on function my_team() is
  'The caller''s team (my_team_ids) as an expression select policies inline: request.team, written by authenticate_request().';

-- The caller's department (ops scope), or NULL: from the request's
-- context (authenticate_request()), else from profiles.
create or replace function my_dept_code() returns text
language plpgsql stable
as $$
declare
  v_context jsonb := request_context();
begin
  if v_context is not null then
    return v_context ->> 'dept';
  end if;
  return (select p.dept_code from profiles p
           where p.tenant_id = bizos.tenant_id() and p.user_id = bizos.uid());
end
$$;
select pin_search_path('my_dept_code()');
grant execute on function my_dept_code()
  to bizos_authenticated;

-- Raises 42501 unless the caller has `permission`.
create or replace function require_permission(permission text) returns void
language plpgsql stable
as $$
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not has_permission(permission) then
    raise exception using errcode = '42501',
      message = format('your role (%s) may not do %s', coalesce((select bizos.app_role()), 'none'), permission);
  end if;
end
$$;
select pin_search_path('require_permission(text)');
grant execute on function require_permission(text)
  to bizos_authenticated;

-- The timestamps of an idempotency key: as bizos.stamp_timestamps, and a new
-- key keeps the lifetime it was given (expires_at - created_at of the
-- statement) from the created_at this node stamps. On Citus the
-- coordinator evaluates the statement's now() and defaults, and the
-- shard's transaction starts later: an expiry of now() + 24 hours fell
-- short of the stamped created_at + 24 hours, and the CHECK refused every
-- key the BFF stored.
create or replace function idempotency_keys_stamp() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    new.expires_at := now() + (new.expires_at - new.created_at);
    new.created_at := now();
  else
    new.created_at := old.created_at;
  end if;
  new.updated_at := now();
  return new;
end
$$;
revoke execute on function idempotency_keys_stamp() from public;
create or replace trigger idempotency_keys_stamp_timestamps before insert or update on idempotency_keys
  for each row execute function idempotency_keys_stamp();

-- Deletes expired keys (all tenants); the BFF calls it on a timer as its
-- login role, which owns no rows: hence SECURITY DEFINER, and nothing else.
create or replace function purge_idempotency_keys() returns bigint
language sql
security definer
as $$
  with gone as (delete from idempotency_keys where expires_at < now() returning 1)
  select count(*) from gone
$$;
select pin_search_path('purge_idempotency_keys()');
revoke execute on function purge_idempotency_keys() from public;
grant execute on function purge_idempotency_keys() to bizos_app, bizos_worker;

-- The expired keys of one tenant: the idempotency.purge job (one per
-- tenant and period, run by the worker's login).
create or replace function purge_idempotency_keys(tenant_id uuid) returns bigint
language sql
security definer
as $$
  with gone as (delete from idempotency_keys k
                 where k.tenant_id = purge_idempotency_keys.tenant_id and k.expires_at < now()
                returning 1)
  select count(*) from gone
$$;
select pin_search_path('purge_idempotency_keys(uuid)');
revoke execute on function purge_idempotency_keys(uuid) from public;
grant execute on function purge_idempotency_keys(uuid) to bizos_worker;
comment on function purge_idempotency_keys(uuid) is
  'Deletes the expired idempotency keys of one tenant (the idempotency.purge job); returns how many.';

-- Login roles have no TEMP on the database, so no login role can put a
-- relation, view or function into its session's pg_temp; the import staging
-- creates its temp tables inside SECURITY DEFINER functions, as the owner.
-- Defence in depth: a definer function that uses a pg_temp relation first
-- checks that it is a plain temporary table of the definer itself; a view,
-- a foreign table or anyone else's table under that name is refused before
-- it is read, so code of the caller's never runs with the owner's rights.
-- True when pg_temp.<name> is a temporary table of the current user (in a
-- SECURITY DEFINER function: the definer), false when there is none; any
-- other relation under that name (a view, someone else's table) is an
-- error, so the caller never learns more than that the name is taken.
create or replace function own_temp_table(name text) returns boolean
language plpgsql stable
as $$
declare
  c record;
begin
  select k.relkind, k.relowner, k.relpersistence into c
    from pg_class k
   where k.oid = to_regclass('pg_temp.' || quote_ident(name));
  if not found then
    return false;
  end if;
  if c.relkind <> 'r' or c.relpersistence <> 't' or c.relowner <> current_user::regrole::oid then
    raise exception using errcode = '42501',
      message = format('pg_temp.%s is not a temporary table of %s: refusing to use it', name, current_user),
      hint = 'another object took this name in the session; start a new session';
  end if;
  return true;
end
$$;
select pin_search_path('own_temp_table(text)');
revoke execute on function own_temp_table(text) from public;

-- The profile is the authority. A token identifies a user (`sub`) of a tenant (`tenant_id`); nothing else
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
create or replace function authenticate_request() returns text
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
  v_key_problem text;
  v_dept text;
  v_permissions jsonb;
  v_claims text;
  v_context text;
  v_team uuid[];
  v_soft_locked boolean;
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

  -- One statement reads the profile, the tenant and the role's permissions
  -- (an API key's come from its scopes, below): each statement a request
  -- starts costs a plan check, locks and an executor start
  -- (docs/benchmarks/crm-and-write-path.md, step nine).
  select p.app_role, p.active, t.status, p.dept_code,
         case when p.app_role <> 'integration' then
           (select coalesce(pg_catalog.jsonb_agg(r.permission), '[]') from role_permissions r
             where r.tenant_id = v_tenant and r.app_role = p.app_role) end,
         exists (select 1 from subscriptions s where s.tenant_id = v_tenant and s.status = 'soft_locked')
    into v_role, v_active, v_status, v_dept, v_permissions, v_soft_locked
    from profiles p
    join tenants t on t.tenant_id = p.tenant_id
   where p.tenant_id = v_tenant and p.user_id = v_user;
  if not found then
    raise exception using errcode = 'ZA001',
      message = 'this user has no profile in this tenant';
  end if;
  -- An API key's principal comes only with the BFF's claim of a verified
  -- key (principal = api_key), and such a claim only with a key's
  -- principal; the key must still be valid now (it may have been revoked
  -- or have expired since the BFF looked it up).
  if (v_role = 'integration') is distinct from (bizos.claims() ->> 'principal' is not distinct from 'api_key') then
    raise exception using errcode = 'ZA001',
      message = 'this token does not name a principal of its kind in this tenant';
  end if;
  if v_role = 'integration' then
    select case when k.revoked_at is not null then 'ZA011' when k.expires_at <= now() then 'ZA012' end
      into v_key_problem
      from api_keys k where k.tenant_id = v_tenant and k.key_id = v_user;
    if v_key_problem = 'ZA011' then
      raise exception using errcode = 'ZA011', message = 'this API key is revoked';
    elsif v_key_problem = 'ZA012' then
      raise exception using errcode = 'ZA012', message = 'this API key has expired';
    end if;
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
  -- A tenant soft-locked for an unpaid operator invoice (payments.sql):
  -- read-only like a read_only tenant, and told so (the BFF answers its
  -- writes 402), except a request that pays (a transfer proof). A tenant
  -- placed elsewhere has its subscription in the control database: the
  -- BFF's router brings its lock (request.billing_locked,
  -- billing_soft_locked). Set by anyone, it only locks.
  v_soft_locked := v_soft_locked
                   or pg_catalog.current_setting('request.billing_locked', true) is not distinct from 'on';
  if v_soft_locked then
    perform pg_catalog.set_config('request.soft_locked', 'on', true);
    if pg_catalog.current_setting('request.billing_payment', true) is distinct from 'on' then
      perform pg_catalog.set_config('transaction_read_only', 'on', true);
    end if;
  end if;

  -- The profile wins over whatever app_role the token carried; the
  -- caller's context (request_context()) is computed once here.
  if v_role = 'integration' then
    select coalesce(pg_catalog.jsonb_agg(distinct p.permission), '[]') into v_permissions
      from api_key_scopes s join api_scope_permissions p on p.scope = s.scope
     where s.tenant_id = v_tenant and s.key_id = v_user;
  end if;
  v_team := team_of(v_tenant, v_user);
  v_claims := (coalesce(bizos.claims(), '{}'::jsonb) || pg_catalog.jsonb_build_object('app_role', v_role))::text;
  v_context := pg_catalog.jsonb_build_object(
      'permissions', v_permissions,
      'team', pg_catalog.to_jsonb(v_team),
      'dept', v_dept)::text;
  -- On Citus SET LOCAL (citus.propagate_set_commands = local) also reaches
  -- the workers, whose policies read both; elsewhere set_config() sets the
  -- same, without parsing a statement.
  if pg_catalog.current_setting('citus.propagate_set_commands', true) = 'local' then
    execute pg_catalog.format('set local request.jwt.claims = %L', v_claims);
    execute pg_catalog.format('set local request.context = %L', v_context);
    execute pg_catalog.format('set local request.team = %L', v_team::text);
  else
    perform pg_catalog.set_config('request.jwt.claims', v_claims, true);
    perform pg_catalog.set_config('request.context', v_context, true);
    perform pg_catalog.set_config('request.team', v_team::text, true);
  end if;
  return v_role;
end
$$;
select pin_search_path('authenticate_request()');
revoke execute on function authenticate_request() from public;
grant execute on function authenticate_request() to bizos_app, bizos_worker;
comment on function authenticate_request() is
  'Start of every request transaction: refuses users without an active profile and suspended tenants, makes read_only and soft-locked (unpaid) tenants'' transactions read-only, and sets app_role in request.jwt.claims from the profile.';

-- The tenant's current date and the tenant's date of an instant. Both read
-- the tenant's row once; a view over many rows should join v_tenant_today
-- rather than call them per row.
create or replace function tenant_today(tenant uuid default bizos.tenant_id()) returns date
language sql stable
as $$
  select (pg_catalog.now() at time zone t.time_zone)::date from tenants t where t.tenant_id = tenant
$$;
select pin_search_path('tenant_today(uuid)');
comment on function tenant_today(uuid) is 'The tenant''s current date (tenants.time_zone); NULL for an unknown or invisible tenant.';
revoke execute on function tenant_today(uuid) from public;
grant execute on function tenant_today(uuid) to bizos_authenticated;

create or replace function tenant_date(at timestamptz, tenant uuid default bizos.tenant_id()) returns date
language sql stable
as $$
  select (at at time zone t.time_zone)::date from tenants t where t.tenant_id = tenant
$$;
select pin_search_path('tenant_date(timestamptz, uuid)');
comment on function tenant_date(timestamptz, uuid) is 'The tenant''s date of an instant (tenants.time_zone).';
revoke execute on function tenant_date(timestamp with time zone, uuid) from public;
grant execute on function tenant_date(timestamp with time zone, uuid) to bizos_authenticated;

-- "Today" is the tenant's today: days, ages and periods are
-- cut in the tenant's time zone (tenants.time_zone), never in the time zone
-- of whatever session reads them, so a report gives the same number from
-- any client. RPCs and triggers call tenant_today(); views join
-- v_tenant_today per row's tenant, so they give the same numbers in any
-- session time zone and when read by the owner for analytics.
-- The current date of every tenant the caller can read (its own; every
-- tenant for the owner). Views join this instead of calling
-- tenant_today() per row; it is the same expression.
create or replace view v_tenant_today with (security_invoker = true) as
select t.tenant_id, t.time_zone, (pg_catalog.now() at time zone t.time_zone)::date as today
  from tenants t;
comment on view v_tenant_today is 'The tenant''s current date (tenants.time_zone), one row per readable tenant.';
grant select on v_tenant_today to bizos_authenticated;
