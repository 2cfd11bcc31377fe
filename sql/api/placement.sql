-- Routing of tenants to their placements (schema `control`, see
-- V45__tenant_placements.sql): the notification every BFF and worker
-- listens to, and the check that keeps a stale cached placement from
-- being used.
--
-- Qualified on purpose: these live in `control` whatever schema the api
-- files run for (a tenant schema's run replaces them with the same text).

-- A placement's version grows with every change of it (a cached copy
-- older than the row is stale), and every change is announced on channel
-- `bizos_placement` (payload: the tenant id) to the processes that cache
-- placements: they drop the tenant's entry.
create or replace function control.tenant_placements_changed() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'UPDATE' then
    if new.version <= old.version
       and (new.region, new.tier, new.cluster, new.database_name, new.schema_name)
           is distinct from (old.region, old.tier, old.cluster, old.database_name, old.schema_name) then
      new.version := old.version + 1;
    end if;
    new.updated_at := now();
    return new;
  end if;
  return new;
end
$$;
select pin_search_path('control.tenant_placements_changed()');
revoke execute on function control.tenant_placements_changed() from public;
create or replace trigger tenant_placements_version before update on control.tenant_placements
  for each row execute function control.tenant_placements_changed();

create or replace function control.tenant_placements_notify() returns trigger
language plpgsql
as $$
begin
  perform pg_catalog.pg_notify('bizos_placement',
    (case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end)::text);
  return null;
end
$$;
select pin_search_path('control.tenant_placements_notify()');
revoke execute on function control.tenant_placements_notify() from public;
create or replace trigger tenant_placements_notify after insert or update or delete on control.tenant_placements
  for each row execute function control.tenant_placements_notify();

-- The lock that orders a tenant's request transactions against a switch
-- of its placement, in the database the tenant's rows are in: every
-- request takes it shared (control.placement_check), a switch exclusive
-- in the transaction that writes the new version there (the mover,
-- `bizos tenant`), so it waits for the requests under way and the ones
-- after it see the new version.
create or replace function control.placement_lock(tenant uuid, exclusive boolean) returns void
language plpgsql
as $$
begin
  if exclusive then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.placement'), pg_catalog.hashtext(tenant::text));
  else
    perform pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtext('bizos.placement'), pg_catalog.hashtext(tenant::text));
  end if;
end
$$;
select pin_search_path('control.placement_lock(uuid, boolean)');
revoke execute on function control.placement_lock(uuid, boolean) from public;
comment on function control.placement_lock(uuid, boolean) is
  'The lock of a tenant''s placement in this database: shared by every request (control.placement_check), exclusive by a switch of the placement.';

-- Called by the BFF right after authenticate_request(), in the same
-- statement: the claims carry the version of the placement the BFF routed
-- the request with (`placement_version`; absent: not routed, nothing to
-- check). Refused (ZA020, retryable) when this database knows a newer
-- version of the tenant's placement: the BFF drops its cached copy and
-- routes again. A row of another database's tenant in this database's
-- control.tenant_placements is the fence a switch leaves behind.
create or replace function control.placement_check() returns void
language plpgsql
security definer
as $$
declare
  v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
  v_expected bigint := (v_claims ->> 'placement_version')::bigint;
  v_tenant uuid := (v_claims ->> 'tenant_id')::uuid;
  v_version bigint;
begin
  if v_expected is null or v_tenant is null then
    return;
  end if;
  perform control.placement_lock(v_tenant, false);
  -- A statement of its own: its snapshot is taken after the lock, so a
  -- switch that committed while this request waited is seen.
  select p.version into v_version from control.tenant_placements p where p.tenant_id = v_tenant;
  if v_version > v_expected then
    raise exception using errcode = 'ZA020',
      message = 'this organisation''s data has moved; retry the request',
      detail = pg_catalog.format('placement version %s, request routed with %s', v_version, v_expected);
  end if;
end
$$;
select pin_search_path('control.placement_check()');
revoke execute on function control.placement_check() from public;
grant execute on function control.placement_check() to bizos_app, bizos_worker, bizos_authenticated;
comment on function control.placement_check() is
  'Refuses (ZA020) a request routed with a placement older than this database''s record of the tenant; takes the placement lock shared.';

-- The business schema this run builds is reachable by the logins and the
-- request role (a tenant schema of the schema tier is created by its
-- owner, which grants nothing by default; `public` already is).
do $$
begin
  execute pg_catalog.format('grant usage on schema %I to bizos_app, bizos_worker, bizos_authenticated',
                            pg_catalog.current_schema());
end
$$;
