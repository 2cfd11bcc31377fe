-- pg_cron drives the schedules (sql/api/schedules.sql): every minute, as
-- bizos_owner, schedules_fire() of every business schema of this database
-- (the shared tier's and each schema tier's). Idempotent (the job is
-- upserted by its name); run by `bizos db bootstrap` inside the target
-- database after database.sql. pg_cron lives in one database of a cluster
-- (cron.database_name): any other database is left alone. A schema without
-- schedules_fire yet (not migrated) is skipped; a failing schema is
-- reported as a warning and does not stop the others.
do $$
begin
  if current_setting('cron.database_name', true) = current_database()
     and exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule_in_database('bizos_schedules_fire', '* * * * *', $cmd$
do $fire$
declare
  home text;
begin
  for home in
    select n.nspname from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
     where p.proname = 'schedules_fire' and p.proowner = 'bizos_owner'::regrole
     order by 1
  loop
    begin
      execute format('select %I.schedules_fire()', home);
    exception when others then
      raise warning 'bizos: schedules_fire in schema % failed: %', home, sqlerrm;
    end;
  end loop;
end
$fire$
$cmd$, current_database(), 'bizos_owner');
  end if;
end
$$;
