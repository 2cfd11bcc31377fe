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
