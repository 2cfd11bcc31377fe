-- Live tier moves (control.tenant_moves, V45; change capture V47): the
-- capture and freeze trigger of a moving tenant's source tables, and the
-- state machine's transitions, which only these functions make.
--
-- Who calls what:
--   tenant_move_request, tenant_move_abort   the operator (owner: CLI)
--   tenant_move_get, tenant_move_advance,
--   tenant_move_switch                       the worker's login (the mover)
--   control.tenant_move_capture              the trigger the mover installs

-- Trigger of a moving tenant's source tables (AFTER INSERT, UPDATE,
-- DELETE FOR EACH ROW WHEN the row is the tenant's). Arguments: the move,
-- the freeze's advisory lock key, then the row key's columns. It records
-- the key of the written row (both keys when an update changes it), and
-- refuses the write with BZ503 (retryable):
--   while the mover holds the freeze lock: the lock is not MVCC, so every
--     transaction sees the freeze at once, and a writer holds the shared
--     lock until it ends, so the mover's exclusive lock is granted only
--     once every write of the tenant before the freeze has ended;
--   once the tenant moved (control.tenant_move_fences): read after the
--     lock, in a statement of its own, so a READ COMMITTED writer sees the
--     fence the mover committed before it let the lock go.
create or replace function control.tenant_move_capture() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_new jsonb;
  v_old jsonb;
  v_key jsonb := '{}';
  v_old_key jsonb := '{}';
  i integer;
begin
  if not pg_try_advisory_xact_lock_shared(tg_argv[1]::bigint) then
    raise exception using errcode = 'BZ503',
      message = 'this organisation is being moved; its data can be read but not changed for a moment, retry the request',
      hint = 'retry_after=1';
  end if;
  if exists (select 1 from control.tenant_move_fences f where f.move_id = tg_argv[0]::uuid) then
    raise exception using errcode = 'BZ503',
      message = 'this organisation has just moved to another database; retry the request',
      hint = 'retry_after=1';
  end if;
  if tg_op <> 'DELETE' then
    v_new := to_jsonb(new);
  end if;
  if tg_op <> 'INSERT' then
    v_old := to_jsonb(old);
  end if;
  for i in 2 .. tg_nargs - 1 loop
    v_key := v_key || jsonb_build_object(tg_argv[i], coalesce(v_new, v_old) -> tg_argv[i]);
    if v_old is not null then
      v_old_key := v_old_key || jsonb_build_object(tg_argv[i], v_old -> tg_argv[i]);
    end if;
  end loop;
  insert into control.tenant_move_changes (move_id, table_name, pk)
  values (tg_argv[0]::uuid, tg_table_schema || '.' || tg_table_name, v_key);
  if v_new is not null and v_old is not null and v_old_key <> v_key then
    insert into control.tenant_move_changes (move_id, table_name, pk)
    values (tg_argv[0]::uuid, tg_table_schema || '.' || tg_table_name, v_old_key);
  end if;
  return null;
end
$$;
revoke execute on function control.tenant_move_capture() from public;
comment on function control.tenant_move_capture() is
  'Trigger of a moving tenant''s source tables: records written keys and refuses writes with BZ503 while frozen or once moved (control.tenant_move_fences).';

-- tenant_move_anchor(tenant, region, tier): the tenant's row in
-- this (the control) database's `tenants`, which the move's jobs refer to
-- (jobs.tenant_id), for a tenant created in a schema or database of its
-- own, whose real row is there. Only ids: a placeholder slug and name,
-- status suspended (no upkeep job and no request ever runs for it here),
-- written with the user triggers of `tenants` off for the one insert, so
-- that no default of a new tenant (permissions, schedules, rules) is
-- seeded here. ALTER TABLE ... DISABLE TRIGGER is transactional (no other
-- session ever sees the triggers off) and takes SHARE ROW EXCLUSIVE:
-- writes of `tenants` wait for this transaction, reads do not. A move
-- into this database's shared tier replaces the row with the tenant's
-- real one (the copy of `tenants`).
create or replace function tenant_move_anchor(tenant uuid, region text, tier text)
returns void
language plpgsql
security definer
as $$
begin
  if exists (select 1 from tenants t where t.tenant_id = tenant) then
    return;
  end if;
  perform set_config('lock_timeout', '5s', true);
  alter table tenants disable trigger user;
  insert into tenants (tenant_id, slug, name, tier, region, status)
  values (tenant, 'moving-' || replace(tenant::text, '-', ''), 'tenant ' || tenant::text,
          tenant_move_anchor.tier, tenant_move_anchor.region, 'suspended');
  alter table tenants enable trigger user;
end
$$;
select pin_search_path('tenant_move_anchor(uuid, text, text)');
revoke execute on function tenant_move_anchor(uuid, text, text) from public;
comment on function tenant_move_anchor(uuid, text, text) is
  'A placeholder tenants row (ids only, suspended, no defaults seeded) in the control database for a tenant created elsewhere: what its move jobs refer to.';

-- tenant_move_request(tenant, to_tier, to_cluster, to_database, to_schema)
-- -> move id: plans a move of the tenant from its placement and enqueues
-- the worker's job that runs it. One move of a tenant at a time.
create or replace function tenant_move_request(tenant uuid, to_tier text, to_cluster text,
                                               to_database text, to_schema text default null)
returns uuid
language plpgsql
security definer
as $$
declare
  p control.tenant_placements;
  v_move uuid;
begin
  select * into p from control.tenant_placements tp where tp.tenant_id = tenant;
  if not found then
    raise exception using errcode = 'P0002', column = 'tenant',
      message = format('tenant: no placement for tenant %s', tenant);
  end if;
  if to_tier is null or to_tier not in ('shared', 'schema', 'isolated') then
    raise exception using errcode = 'P0001', column = 'to_tier',
      message = 'to_tier: must be shared, schema or isolated';
  end if;
  if (to_tier = 'schema') <> (to_schema is not null) then
    raise exception using errcode = 'P0001', column = 'to_schema',
      message = 'to_schema: a schema is given for the schema tier, and only for it';
  end if;
  if p.cluster = to_cluster and p.database_name = to_database
     and p.schema_name is not distinct from to_schema then
    raise exception using errcode = 'P0001', column = 'to_tier',
      message = format('to_tier: tenant %s is already there', tenant);
  end if;
  if exists (select 1 from control.tenant_moves m
              where m.tenant_id = tenant and m.state not in ('done', 'failed', 'rolled_back')) then
    raise exception using errcode = 'P0001', column = 'tenant',
      message = format('tenant: tenant %s is already moving', tenant);
  end if;
  insert into control.tenant_moves (tenant_id, from_tier, from_cluster, from_database, from_schema,
                                    to_tier, to_cluster, to_database, to_schema)
  values (tenant, p.tier, p.cluster, p.database_name, p.schema_name,
          to_tier, to_cluster, to_database, to_schema)
  returning move_id into v_move;
  -- The move's jobs run from this database's queue, under the tenant's
  -- row here: a tenant created in a schema or database of its own has
  -- none yet.
  perform tenant_move_anchor(tenant, p.region, p.tier);
  perform job_enqueue_for(tenant, 'tenant.move', jsonb_build_object('move_id', v_move));
  return v_move;
end
$$;
select pin_search_path('tenant_move_request(uuid, text, text, text, text)');
revoke execute on function tenant_move_request(uuid, text, text, text, text) from public;
comment on function tenant_move_request(uuid, text, text, text, text) is
  'Plans a tier move of a tenant from its placement to (tier, cluster, database, schema) and enqueues the tenant.move job; the move''s id.';

-- tenant_move_abort(move) -> whether the move was still under way: asks the
-- mover to roll it back at its next step (too late once switched).
create or replace function tenant_move_abort(move uuid) returns boolean
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
begin
  update control.tenant_moves m set abort_requested = true, updated_at = now()
   where m.move_id = move and m.state in ('planned', 'preflight', 'copying', 'catching_up', 'frozen')
  returning m.tenant_id into v_tenant;
  if v_tenant is null then
    return false;
  end if;
  -- A mover that is running sees the request at its next step; if none
  -- runs (its job died), this job rolls the move back.
  perform job_enqueue_for(v_tenant, 'tenant.move', jsonb_build_object('move_id', move),
                          null, 0, 'tenant.move.abort:' || move);
  return true;
end
$$;
select pin_search_path('tenant_move_abort(uuid)');
revoke execute on function tenant_move_abort(uuid) from public;
comment on function tenant_move_abort(uuid) is
  'Asks the mover to roll a move back (before the switch) and enqueues a mover for it; whether it was still abortable.';

-- tenant_move_get(move) -> the move's row as JSON (NULL: no such move).
create or replace function tenant_move_get(move uuid) returns jsonb
language sql
security definer
stable
as $$
  select to_jsonb(m) || jsonb_build_object(
           'from_url_secret', (select c.url_secret from control.clusters c where c.cluster = m.from_cluster),
           'to_url_secret', (select c.url_secret from control.clusters c where c.cluster = m.to_cluster))
    from control.tenant_moves m where m.move_id = move
$$;
select pin_search_path('tenant_move_get(uuid)');
revoke execute on function tenant_move_get(uuid) from public;
grant execute on function tenant_move_get(uuid) to bizos_worker;
comment on function tenant_move_get(uuid) is 'The mover''s view of one move: its row as JSON, with the secrets naming its clusters'' URLs.';

-- tenant_move_advance(move, from_states, to_state, progress, error) ->
-- whether the move was in one of from_states (then it is in to_state, with
-- the progress merged in and the error set). The only way the mover
-- changes a move; the allowed steps are the state machine's.
create or replace function tenant_move_advance(move uuid, from_states text[], to_state text,
                                               progress jsonb default '{}', error text default null)
returns boolean
language plpgsql
security definer
as $$
declare
  v_state text;
begin
  select m.state into v_state from control.tenant_moves m where m.move_id = move for update;
  if v_state is null or not (v_state = any (from_states)) then
    return false;
  end if;
  if not (v_state = to_state or (v_state, to_state) in (
      ('planned', 'preflight'), ('preflight', 'copying'), ('copying', 'catching_up'),
      ('catching_up', 'frozen'), ('frozen', 'catching_up'), ('switched', 'verified'),
      ('verified', 'done'), ('planned', 'failed'), ('preflight', 'failed'),
      ('copying', 'rolled_back'), ('catching_up', 'rolled_back'), ('frozen', 'rolled_back'),
      ('preflight', 'rolled_back'), ('planned', 'rolled_back'), ('copying', 'failed'),
      ('catching_up', 'failed'), ('frozen', 'failed'), ('switched', 'failed'), ('verified', 'failed'))) then
    raise exception using errcode = 'P0001', column = 'to_state',
      message = format('to_state: a move cannot go from %s to %s', v_state, to_state);
  end if;
  update control.tenant_moves m
     set state = to_state,
         progress = m.progress || coalesce(tenant_move_advance.progress, '{}'),
         error = coalesce(tenant_move_advance.error, m.error),
         frozen_at = case when to_state = 'frozen' then now() else m.frozen_at end,
         finished_at = case when to_state in ('done', 'failed', 'rolled_back') then coalesce(m.finished_at, now()) end,
         updated_at = now()
   where m.move_id = move;
  return true;
end
$$;
select pin_search_path('tenant_move_advance(uuid, text[], text, jsonb, text)');
revoke execute on function tenant_move_advance(uuid, text[], text, jsonb, text) from public;
grant execute on function tenant_move_advance(uuid, text[], text, jsonb, text) to bizos_worker;
comment on function tenant_move_advance(uuid, text[], text, jsonb, text) is
  'The mover''s step of a move: from one of from_states to to_state (the state machine''s steps only), merging progress; false when the move was elsewhere.';

-- tenant_move_switch(move) -> the placement's new version: the tenant's
-- placement becomes the move's target (version + 1, which tells every
-- cached copy it is stale) and the move is switched, in one transaction.
create or replace function tenant_move_switch(move uuid) returns bigint
language plpgsql
security definer
as $$
declare
  m control.tenant_moves;
  v_version bigint;
begin
  select * into m from control.tenant_moves t where t.move_id = move for update;
  if m.state is distinct from 'frozen' then
    raise exception using errcode = 'P0001', column = 'move',
      message = format('move: move %s is %s, not frozen', move, coalesce(m.state, 'missing'));
  end if;
  -- The catalogue row is this database's placement record: requests
  -- under way here finish first, later ones see the new version.
  perform control.placement_lock(m.tenant_id, true);
  update control.tenant_placements p
     set tier = m.to_tier, cluster = m.to_cluster, database_name = m.to_database,
         schema_name = m.to_schema, version = p.version + 1, updated_at = now()
   where p.tenant_id = m.tenant_id
     and p.cluster = m.from_cluster and p.database_name = m.from_database
     and p.schema_name is not distinct from m.from_schema
  returning p.version into v_version;
  if v_version is null then
    raise exception using errcode = 'P0001', column = 'move',
      message = format('move: the placement of tenant %s is no longer the move''s source', m.tenant_id);
  end if;
  update control.tenant_moves t set state = 'switched', switched_at = now(), updated_at = now()
   where t.move_id = move;
  return v_version;
end
$$;
select pin_search_path('tenant_move_switch(uuid)');
revoke execute on function tenant_move_switch(uuid) from public;
grant execute on function tenant_move_switch(uuid) to bizos_worker;
comment on function tenant_move_switch(uuid) is
  'Points the tenant''s placement at the move''s target (version + 1) and marks the move switched, in one transaction.';
