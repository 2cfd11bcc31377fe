-- Per-database set-up that needs a superuser. Idempotent; run inside the
-- target database by `bizos db bootstrap` after roles.sql.
create schema if not exists extensions;
grant usage on schema extensions to public;

create extension if not exists pg_trgm with schema extensions;
create extension if not exists btree_gist with schema extensions;
-- GIN on (tenant_id, tsv) of kb_chunks (V28).
create extension if not exists btree_gin with schema extensions;
create extension if not exists pgcrypto with schema extensions;

-- Install the bizos extension, or bring an installed one to the version of
-- the files on this server (fleet upgrades).
create extension if not exists bizos;
alter extension bizos update;

-- pg_cron can live in one database of the cluster only (cron.database_name).
do $$
begin
  if current_setting('cron.database_name', true) = current_database() then
    create extension if not exists pg_cron;
    grant usage on schema cron to bizos_owner;
  end if;
end
$$;

-- The drift watch (docs/fleet.md, "The drift check"): a schema whose
-- catalogue a fleet run found equal to what the files make keeps a row in
-- sql_api.drift_verified until DDL touches it. Every DDL command that is
-- not the migrator's (`bizos migrate` sets bizos_migrator.running) deletes
-- the rows of the schemas it touches, and of every schema when it names
-- none (a GRANT, default privileges). A later run reads the catalogue of a
-- schema without a row, and of one schema of each group with the same
-- verified catalogue. Enabled ALWAYS: session_replication_role = replica
-- does not silence it.
create schema if not exists sql_api authorization bizos_owner;
create table if not exists sql_api.drift_verified (
  schema_name text        primary key,
  -- The hash of the expected catalogue the schema was found equal to;
  -- null while a run reads it.
  expected    text,
  verified_at timestamptz
);
alter table sql_api.drift_verified owner to bizos_owner;

create or replace function sql_api.drift_watch() returns event_trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_touched text[];
begin
  if pg_catalog.current_setting('bizos_migrator.running', true) = 'on' then
    return;
  end if;
  if tg_event = 'sql_drop' then
    select pg_catalog.array_agg(coalesce(o.schema_name, case when o.object_type = 'schema' then o.object_name end))
      into v_touched
      from pg_catalog.pg_event_trigger_dropped_objects() o
     where not o.is_temporary;
  else
    select pg_catalog.array_agg(coalesce(c.schema_name, case when c.object_type = 'schema' then c.object_identity end))
      into v_touched
      from pg_catalog.pg_event_trigger_ddl_commands() c
     where not c.in_extension and c.schema_name is distinct from 'pg_temp';
  end if;
  if v_touched is null then
    return;
  elsif pg_catalog.array_position(v_touched, null) is not null then
    delete from sql_api.drift_verified;
  else
    delete from sql_api.drift_verified where schema_name = any (v_touched);
  end if;
end
$$;
alter function sql_api.drift_watch() owner to bizos_owner;
revoke all on function sql_api.drift_watch() from public;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_event_trigger where evtname = 'bizos_drift_watch') then
    create event trigger bizos_drift_watch on ddl_command_end
      execute function sql_api.drift_watch();
  end if;
  if not exists (select 1 from pg_catalog.pg_event_trigger where evtname = 'bizos_drift_watch_drops') then
    create event trigger bizos_drift_watch_drops on sql_drop
      execute function sql_api.drift_watch();
  end if;
  alter event trigger bizos_drift_watch enable always;
  alter event trigger bizos_drift_watch_drops enable always;
end
$$;
