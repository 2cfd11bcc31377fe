-- Masked access for analysts and BI (feature C5).
--
-- Schema `analytics` (in the schema tier: `<tenant schema>_analytics`)
-- holds one view per business table, with the same name and columns:
--
-- * personal columns go through the partial maskers of the extension
--   (bizos.mask_email, mask_phone, mask_name), tax numbers and the dedup keys
--   derived from them are replaced by '[REDACTED]';
-- * every other text column — free text, names of things, codes — goes
--   through bizos.pii_mask, which leaves text without PII unchanged; json
--   and jsonb columns are masked as text (the view column is text);
-- * all other columns (ids, amounts, dates, flags) are as stored, so
--   analysts can join, group by tenant and aggregate.
--
-- The views are owned by the migrating owner and read the tables through it
-- (security_invoker off: the owner is not subject to RLS), so bizos_analyst
-- and bizos_bi need no grant on any table. Which tenants a login sees comes
-- from analytics_grants, matched on session_user (a SET ROLE cannot widen
-- it): a row with tenant_id NULL means every tenant of this database (the
-- operator's analysts; one-tenant-per-database installs), a row per tenant
-- scopes a login to those tenants. The views are security barriers, so a
-- caller's own predicates never see rows of other tenants.
--
-- The view list is generated from the catalog by analytics_build_views():
-- a migration that adds a business table adds its masking rules to
-- analytics_masking when a column holds personal data, and calls
-- `select analytics_build_views();` again.

-- Who may read which tenants through the analytics views.
create table analytics_grants (
  role_name name not null,
  tenant_id uuid references tenants (tenant_id) on delete cascade,
  created_at timestamptz not null default now(),
  constraint analytics_grants_role_name_tenant_id_key unique nulls not distinct (role_name, tenant_id)
);

comment on table analytics_grants is
  'Tenants a login (session_user) sees in the analytics views; tenant_id NULL = every tenant.';

insert into analytics_grants (role_name, tenant_id)
values ('bizos_analyst', null), ('bizos_bi', null);

-- How a column is masked in its analytics view; columns not listed here
-- follow their type (text: pii_mask; others: as stored).
create table analytics_masking (
  table_name name not null,
  column_name name not null,
  masker text not null,
  constraint analytics_masking_pkey primary key (table_name, column_name),
  constraint analytics_masking_masker_check
    check (masker in ('email', 'phone', 'nik', 'name', 'redact', 'text', 'raw'))
);

insert into analytics_masking (table_name, column_name, masker) values
  ('profiles', 'email', 'email'),
  ('profiles', 'full_name', 'name'),
  ('customers', 'email', 'email'),
  ('customers', 'phone', 'phone'),
  ('customers', 'npwp', 'redact'),
  ('customers', 'email_norm', 'redact'),
  ('customers', 'phone_norm', 'redact'),
  ('customers', 'npwp_norm', 'redact'),
  ('leads', 'contact_name', 'name'),
  ('leads', 'contact_email', 'email'),
  ('leads', 'contact_phone', 'phone'),
  ('leads', 'npwp', 'redact'),
  ('tickets', 'contact_name', 'name'),
  ('tickets', 'contact_email', 'email'),
  ('tickets', 'contact_phone', 'phone'),
  -- Whole records as users sent or received them (import rows, stored API
  -- responses) hold names and contacts that only their columns' maskers
  -- would catch: not shown.
  ('import_rows', 'data', 'redact'),
  ('idempotency_keys', 'response_body', 'redact'),
  -- Integrity hashes: no text to scan.
  ('ticket_attachments', 'sha256', 'raw'),
  ('kpi_evidence', 'sha256', 'raw'),
  ('objects', 'sha256', 'raw'),
  ('idempotency_keys', 'request_hash', 'raw');

-- The name of the analytics schema for the schema this database's business
-- tables live in (the current schema while migrating).
-- (No pinned search_path here or below: both read current_schema(), which
-- must be the caller's. Only the owner may execute them.)
create function analytics_schema_name() returns text
language sql stable
as $$
  select case when current_schema() = 'public' then 'analytics'
              else current_schema() || '_analytics' end
$$;

-- (Re)creates the masked view of every table of the current schema.
create function analytics_build_views() returns integer
language plpgsql
as $$
declare
  v_base text := current_schema();
  v_target text := analytics_schema_name();
  v_table record;
  v_col record;
  v_cols text[];
  v_expr text;
  v_filter text;
  v_count integer := 0;
begin
  if v_base is null then
    raise exception using errcode = 'P0001',
      message = 'analytics_build_views: no current schema';
  end if;
  execute format('create schema if not exists %I', v_target);
  execute format('grant usage on schema %I to bizos_analyst, bizos_bi', v_target);

  for v_table in
    select c.oid, c.relname
      from pg_catalog.pg_class c
     where c.relnamespace = quote_ident(v_base)::regnamespace
       and c.relkind in ('r', 'p')
       and not c.relispartition
       and c.relname not in ('refinery_schema_history', 'analytics_grants', 'analytics_masking')
     order by c.relname
  loop
    v_cols := '{}';
    for v_col in
      select a.attname, t.typname, t.typcategory, m.masker
        from pg_catalog.pg_attribute a
        join pg_catalog.pg_type t on t.oid = a.atttypid
        left join analytics_masking m
          on m.table_name = v_table.relname and m.column_name = a.attname
       where a.attrelid = v_table.oid and a.attnum > 0 and not a.attisdropped
       order by a.attnum
    loop
      v_expr := case coalesce(v_col.masker,
                              case when v_col.typcategory = 'S' or v_col.typname in ('json', 'jsonb')
                                   then 'text' else 'raw' end)
        when 'email'  then format('bizos.mask_email(t.%I::text)', v_col.attname)
        when 'phone'  then format('bizos.mask_phone(t.%I::text)', v_col.attname)
        when 'nik'    then format('bizos.mask_nik(t.%I::text)', v_col.attname)
        when 'name'   then format('bizos.mask_name(t.%I::text)', v_col.attname)
        when 'redact' then format('case when t.%I is null then null else ''[REDACTED]'' end', v_col.attname)
        when 'text'   then format('bizos.pii_mask(t.%I::text)', v_col.attname)
        else format('t.%I', v_col.attname)
      end;
      v_cols := v_cols || format('%s as %I', v_expr, v_col.attname);
    end loop;

    -- Rows of tenants granted to the login; tables without tenant_id only
    -- to logins granted every tenant.
    v_filter := case
      when exists (select 1 from pg_catalog.pg_attribute
                    where attrelid = v_table.oid and attname = 'tenant_id' and not attisdropped)
      then format('exists (select 1 from %I.analytics_grants g where g.role_name = session_user'
                  ' and (g.tenant_id is null or g.tenant_id = t.tenant_id))', v_base)
      else format('exists (select 1 from %I.analytics_grants g where g.role_name = session_user'
                  ' and g.tenant_id is null)', v_base)
    end;

    execute format('drop view if exists %I.%I', v_target, v_table.relname);
    execute format(
      'create view %I.%I with (security_barrier = true) as select %s from %I.%I t where %s',
      v_target, v_table.relname, array_to_string(v_cols, ', '), v_base, v_table.relname, v_filter);
    execute format('comment on view %I.%I is %L', v_target, v_table.relname,
      format('Masked view of %s.%s for analysts and BI (generated by analytics_build_views).',
             v_base, v_table.relname));
    execute format('grant select on %I.%I to bizos_analyst, bizos_bi', v_target, v_table.relname);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

revoke execute on function analytics_build_views() from public;
revoke execute on function analytics_schema_name() from public;

select analytics_build_views();
