-- Analytics (C5): the masked, tenant-scoped views of schema analytics for
-- analysts and BI, built by analytics_build_views().
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- The name of the analytics schema for the schema this database's business
-- tables live in (the current schema while migrating).
-- (No pinned search_path here or below: both read current_schema(), which
-- must be the caller's. Only the owner may execute them.)
create or replace function analytics_schema_name() returns text
language sql stable
as $$
  select case when current_schema() = 'public' then 'analytics'
              else current_schema() || '_analytics' end
$$;
revoke execute on function analytics_schema_name() from public;

-- How each column of a relation of this schema shows in analytics: its
-- masked expression over alias t, and the type of that expression. One
-- definition for the table views and the reports.
create or replace function analytics_columns(rel regclass)
returns table (attnum smallint, column_name name, expr text, type_name text)
language sql stable
as $$
  select a.attnum, a.attname,
         case x.masker
           when 'email'  then format('bizos.mask_email(t.%I::text)', a.attname)
           when 'phone'  then format('bizos.mask_phone(t.%I::text)', a.attname)
           when 'nik'    then format('bizos.mask_nik(t.%I::text)', a.attname)
           when 'name'   then format('bizos.mask_name(t.%I::text)', a.attname)
           when 'redact' then format('case when t.%I is null then null else ''[REDACTED]'' end', a.attname)
           when 'text'   then format('bizos.pii_mask(t.%I::text)', a.attname)
           else format('t.%I', a.attname)
         end,
         case when x.masker = 'raw' then pg_catalog.format_type(a.atttypid, a.atttypmod) else 'text' end
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_type ty on ty.oid = a.atttypid
    left join analytics_masking m on m.table_name = c.relname and m.column_name = a.attname
   cross join lateral (
     select coalesce(m.masker, case when ty.typcategory = 'S' or ty.typname in ('json', 'jsonb')
                                    then 'text' else 'raw' end) as masker) x
   where a.attrelid = rel and a.attnum > 0 and not a.attisdropped
$$;
select pin_search_path('analytics_columns(regclass)');
revoke execute on function analytics_columns(regclass) from public;

-- The masked select list of a relation over alias t (analytics_columns):
-- what the views of tables select, and what the two row functions below
-- return.
create or replace function analytics_masked_select(rel regclass) returns text
language sql stable
as $$
  select string_agg(format('%s as %I', a.expr, a.column_name), ', ' order by a.attnum)
    from analytics_columns(rel) a
$$;
select pin_search_path('analytics_masked_select(regclass)');
revoke execute on function analytics_masked_select(regclass) from public;

-- The masked rows of a listed report for the tenants the login is granted:
--   select * from analytics_report_rows('<schema>.<view>'::regclass)
--     as t(<column> <analytics_columns type>, ...)
-- (what the analytics view of the report does). It masks the rows itself,
-- so calling it directly shows nothing the analytics view does not.
create or replace function analytics_report_rows(report regclass) returns setof record
language plpgsql security definer
as $$
declare
  v_view text;
  v_select text;
  v_tenant uuid;
  v_tz text;
  -- The caller's claims and time zone, put back at the end (an error
  -- aborts the (sub)transaction, which reverts them too). A function SET
  -- clause cannot name a placeholder setting without superuser.
  v_claims text := pg_catalog.current_setting('request.jwt.claims', true);
  v_session_tz text := pg_catalog.current_setting('TimeZone');
begin
  -- A view of this function's schema (the one of its analytics_reports)
  -- that analytics_reports lists.
  select format('%I.%I', n.nspname, c.relname) into v_view
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = report
     and c.relkind = 'v'
     and c.relnamespace = (select x.relnamespace from pg_catalog.pg_class x
                            where x.oid = 'analytics_reports'::pg_catalog.regclass)
     and exists (select 1 from analytics_reports r where r.view_name = c.relname);
  if v_view is null then
    raise exception using errcode = '42501',
      message = format('analytics_report_rows: %s is not an analytics report', report);
  end if;
  v_select := analytics_masked_select(report);
  for v_tenant, v_tz in
    select t.tenant_id, t.time_zone from tenants t
     where exists (select 1 from analytics_grants g
                    where g.role_name = session_user and (g.tenant_id is null or g.tenant_id = t.tenant_id))
     order by t.tenant_id
  loop
    -- SET LOCAL, not set_config(): on Citus only the command reaches the
    -- workers that run the view's query.
    execute format('set local request.jwt.claims = %L', pg_catalog.json_build_object('tenant_id', v_tenant));
    -- "Today" is the tenant's, whatever time zone the BI tool's
    -- session uses: a view that still reads current_date gets the
    -- tenant's date.
    execute format('set local timezone = %L', v_tz);
    return query execute format('select %s from %s t where t.tenant_id = $1', v_select, v_view) using v_tenant;
  end loop;
  execute format('set local request.jwt.claims = %L', coalesce(v_claims, ''));
  execute format('set local timezone = %L', v_session_tz);
  return;
end
$$;
select pin_search_path('analytics_report_rows(regclass)');
comment on function analytics_report_rows(regclass) is
  'Masked rows of a report view listed in analytics_reports, read per tenant the login (session_user) is granted in analytics_grants, with claims naming that tenant and in its time zone; for the analytics report views.';
revoke execute on function analytics_report_rows(regclass) from public;
grant execute on function analytics_report_rows(regclass) to bizos_analyst, bizos_bi;

-- The masked rows of a table of this schema for the tenants the login is
-- granted (every row only with a grant of every tenant):
--   select * from analytics_table_rows('<schema>.<table>'::regclass)
--     as t(<column> <analytics_columns type>, ...)
-- What the analytics view of a table reads on Citus, where a view reading
-- the table itself would send its shards' queries as the analyst, who has
-- no privilege on the tables (by design): this runs them as the owner. The
-- grants are read here, on the coordinator, by the analyst's login.
create or replace function analytics_table_rows(rel regclass) returns setof record
language plpgsql security definer
as $$
declare
  v_table text;
  v_select text;
  v_all boolean;
  v_tenants uuid[];
begin
  select format('%I.%I', n.nspname, c.relname) into v_table
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.oid = rel
     and c.relkind in ('r', 'p')
     and c.relnamespace = (select x.relnamespace from pg_catalog.pg_class x
                            where x.oid = 'analytics_grants'::pg_catalog.regclass)
     and c.relname not in ('refinery_schema_history', 'analytics_grants', 'analytics_masking', 'analytics_reports');
  if v_table is null then
    raise exception using errcode = '42501',
      message = format('analytics_table_rows: %s is not a table with an analytics view', rel);
  end if;
  v_select := analytics_masked_select(rel);
  select coalesce(bool_or(g.tenant_id is null), false), array_agg(g.tenant_id) filter (where g.tenant_id is not null)
    into v_all, v_tenants
    from analytics_grants g
   where g.role_name = session_user;
  if v_all then
    return query execute format('select %s from %s t', v_select, v_table);
  elsif v_tenants is not null and exists (select 1 from pg_catalog.pg_attribute
                                           where attrelid = rel and attname = 'tenant_id' and not attisdropped) then
    return query execute format('select %s from %s t where t.tenant_id = any ($1)', v_select, v_table) using v_tenants;
  end if;
  return;
end
$$;
select pin_search_path('analytics_table_rows(regclass)');
comment on function analytics_table_rows(regclass) is
  'Masked rows of a table for the tenants the login (session_user) is granted in analytics_grants; what the analytics views of tables read on Citus.';
revoke execute on function analytics_table_rows(regclass) from public;
grant execute on function analytics_table_rows(regclass) to bizos_analyst, bizos_bi;

-- (Re)creates the masked view of every table of the current schema and of
-- every report listed in analytics_reports.
create or replace function analytics_build_views() returns integer
language plpgsql
as $$
declare
  v_base text := current_schema();
  v_target text := analytics_schema_name();
  v_rel record;
  v_select text;
  v_from text;
  v_filter text;
  v_count integer := 0;
begin
  if v_base is null then
    raise exception using errcode = 'P0001',
      message = 'analytics_build_views: no current schema';
  end if;
  execute format('create schema if not exists %I', v_target);
  execute format('grant usage on schema %I to bizos_analyst, bizos_bi', v_target);

  for v_rel in
    select c.oid, c.relname, false as report
      from pg_catalog.pg_class c
     where c.relnamespace = quote_ident(v_base)::regnamespace
       and c.relkind in ('r', 'p')
       and not c.relispartition
       and c.relname not in ('refinery_schema_history', 'analytics_grants', 'analytics_masking',
                             'analytics_reports')
    union all
    select c.oid, r.view_name, true
      from analytics_reports r
      left join pg_catalog.pg_class c
        on c.relname = r.view_name and c.relkind = 'v'
       and c.relnamespace = quote_ident(v_base)::regnamespace
     order by 2
  loop
    if v_rel.report and v_rel.oid is null then
      raise exception using errcode = 'P0001',
        message = format('analytics_build_views: analytics_reports lists %s, which is not a view of schema %s',
                         v_rel.relname, v_base);
    end if;
    if v_rel.report and not exists (select 1 from pg_catalog.pg_attribute
                                     where attrelid = v_rel.oid and attname = 'tenant_id' and not attisdropped) then
      raise exception using errcode = 'P0001',
        message = format('analytics_build_views: report %s has no tenant_id column', v_rel.relname);
    end if;

    -- Rows of tenants granted to the login; tables without tenant_id only
    -- to logins granted every tenant. (Reports are already cut to the
    -- granted tenants and masked by analytics_report_rows; the filter stays
    -- as the one rule of every analytics view.) On Citus the views read
    -- through analytics_report_rows and analytics_table_rows, which apply
    -- it: analytics_grants is a reference table there, and the analyst
    -- cannot read its shard.
    v_filter := case
      when citus_table('analytics_grants') then 'true'
      when exists (select 1 from pg_catalog.pg_attribute
                    where attrelid = v_rel.oid and attname = 'tenant_id' and not attisdropped)
      then format('exists (select 1 from %I.analytics_grants g where g.role_name = session_user'
                  ' and (g.tenant_id is null or g.tenant_id = t.tenant_id))', v_base)
      else format('exists (select 1 from %I.analytics_grants g where g.role_name = session_user'
                  ' and g.tenant_id is null)', v_base)
    end;
    if v_rel.report or citus_table(v_rel.oid) then
      -- Reports, and on Citus tables too (whose shards' queries would run
      -- as the analyst), through the row function that masks them as the
      -- owner.
      select string_agg(format('t.%I', a.column_name), ', ' order by a.attnum),
             format('%I.%s(%L::regclass) t (%s)', v_base,
                    case when v_rel.report then 'analytics_report_rows' else 'analytics_table_rows' end,
                    format('%I.%I', v_base, v_rel.relname),
                    string_agg(format('%I %s', a.column_name, a.type_name), ', ' order by a.attnum))
        into v_select, v_from
        from analytics_columns(v_rel.oid) a;
    else
      v_select := analytics_masked_select(v_rel.oid);
      v_from := format('%I.%I t', v_base, v_rel.relname);
    end if;

    execute format('drop view if exists %I.%I', v_target, v_rel.relname);
    execute format(
      'create view %I.%I with (security_barrier = true) as select %s from %s where %s',
      v_target, v_rel.relname, v_select, v_from, v_filter);
    execute format('comment on view %I.%I is %L', v_target, v_rel.relname,
      case when v_rel.report
        then format('Masked report %s.%s for analysts and BI: the product view read per granted tenant'
                    ' (generated by analytics_build_views).', v_base, v_rel.relname)
        else format('Masked view of %s.%s for analysts and BI (generated by analytics_build_views).',
                    v_base, v_rel.relname) end);
    execute format('grant select on %I.%I to bizos_analyst, bizos_bi', v_target, v_rel.relname);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
revoke execute on function analytics_build_views() from public;
revoke execute on function analytics_build_views() from public;

-- The analytics views are derived from the schema: rebuild them whenever the
-- api is applied, so that a view a versioned migration dropped (and the api
-- recreated) and a change of the masking or of a report's columns show in
-- analytics too.
select analytics_build_views();
