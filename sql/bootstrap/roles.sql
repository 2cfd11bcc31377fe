-- Cluster-wide roles of bizos. Idempotent; run by a superuser
-- (`bizos db bootstrap`) under an advisory lock.
--
-- bizos_owner          owns the databases and runs migrations
-- bizos_authenticated  NOLOGIN (LOGIN on a Citus coordinator with workers, see
--                      sql/src/citus.rs); every user request runs as this role with claims
-- bizos_app            the BFF's login: NOINHERIT member of bizos_authenticated,
--                      never superuser, never BYPASSRLS
-- bizos_worker         the job worker's login (`bizos worker`): like bizos_app a
--                      NOINHERIT member of bizos_authenticated (it runs a
--                      user's job as that user), never superuser, never
--                      BYPASSRLS; system work only through the SECURITY
--                      DEFINER functions granted to it
-- bizos_analyst        analysts: masked views only
-- bizos_bi             BI tools: read-only at the role level, statement timeout
do $$
declare
  r record;
  v_attrs text;
  v_citus boolean := false;
begin
  -- On a Citus coordinator with workers the request role logs in to the
  -- workers (sql/src/citus.rs gives it LOGIN there and says why): running
  -- bootstrap again (another database, another DBA) must not take that
  -- away, even for a moment, from the requests running on the cluster.
  if exists (select 1 from pg_catalog.pg_extension where extname = 'citus') then
    execute 'select exists (select 1 from pg_catalog.pg_dist_node where groupid <> 0)' into v_citus;
  end if;
  for r in
    select * from (values
      ('bizos_owner',         'login nosuperuser nocreaterole nobypassrls inherit'),
      ('bizos_authenticated', 'nologin nosuperuser nocreaterole nobypassrls noinherit'),
      ('bizos_app',           'login nosuperuser nocreaterole nobypassrls noinherit'),
      ('bizos_worker',        'login nosuperuser nocreaterole nobypassrls noinherit'),
      ('bizos_analyst',       'login nosuperuser nocreaterole nobypassrls inherit'),
      ('bizos_bi',            'login nosuperuser nocreaterole nobypassrls inherit')
    ) as t(name, attrs)
  loop
    v_attrs := case when r.name = 'bizos_authenticated' and v_citus
                    then pg_catalog.replace(r.attrs, 'nologin', 'login') else r.attrs end;
    if not exists (select 1 from pg_catalog.pg_roles where rolname = r.name) then
      execute format('create role %I %s', r.name, v_attrs);
    else
      execute format('alter role %I %s', r.name, v_attrs);
    end if;
  end loop;
end
$$;

grant bizos_authenticated to bizos_app;
grant bizos_authenticated to bizos_worker;

alter role bizos_bi set default_transaction_read_only = on;
alter role bizos_bi set statement_timeout = '60s';
alter role bizos_analyst set statement_timeout = '5min';
alter role bizos_app set statement_timeout = '30s';
-- Jobs run longer than requests (an import batch, a sweep).
alter role bizos_worker set statement_timeout = '5min';
