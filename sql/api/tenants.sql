-- Creating a tenant.
--
-- A new tenant starts with its defaults: role permissions, SLA policies,
-- the KPI catalogue, SOP rules and the digest and RFM schedules. On a
-- single node the insert triggers of `tenants` seed them. On Citus
-- `tenants` is a reference table, whose triggers run on every node's copy
-- and cannot write the distributed tables, so the Citus set-up drops those
-- triggers (sql/citus/adapt.sql) and tenant_create() seeds on the
-- coordinator. Either way the same seed functions run, and
-- tenant_create() is the way to make a tenant on both.

create or replace function tenant_seed(tenant uuid) returns void
language plpgsql
as $$
begin
  perform seed_default_permissions(tenant);
  perform seed_default_sla_policies(tenant);
  perform seed_kpi_metric_definitions(tenant);
  perform seed_default_sop_rules(tenant);
  perform seed_digest_schedule(tenant);
  perform seed_rfm_schedule(tenant);
end
$$;
select pin_search_path('tenant_seed(uuid)');
revoke execute on function tenant_seed(uuid) from public;
comment on function tenant_seed(uuid) is
  'The defaults every tenant starts with (idempotent). Called by tenant_create() on Citus; the insert triggers of tenants call the same seeds on a single node.';

-- Time zone and locale: NULL keeps the column's default.
create or replace function tenant_create(slug text, name text, time_zone text default null, locale text default null)
returns uuid
language plpgsql
as $$
declare
  v_tenant uuid;
  v_citus boolean := citus_table('tenants');
begin
  if v_citus then
    -- One tenant at a time: Citus writes the reference row and the
    -- defaults through the coordinator, and two creations at once can end
    -- in a distributed deadlock (seen with parallel tests). Tenants are
    -- made rarely.
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.tenant_create'));
  end if;
  execute pg_catalog.format('insert into tenants (slug, name%s%s) values ($1, $2%s%s) returning tenant_id',
      case when tenant_create.time_zone is not null then ', time_zone' else '' end,
      case when tenant_create.locale is not null then ', locale' else '' end,
      case when tenant_create.time_zone is not null then ', $3' else '' end,
      case when tenant_create.locale is not null then ', $4' else '' end)
    into v_tenant
    using tenant_create.slug, tenant_create.name, tenant_create.time_zone, tenant_create.locale;
  if v_citus then
    perform tenant_seed(v_tenant);
  end if;
  return v_tenant;
end
$$;
select pin_search_path('tenant_create(text, text, text, text)');
revoke execute on function tenant_create(text, text, text, text) from public;
comment on function tenant_create(text, text, text, text) is
  'Creates a tenant with its defaults (the database owner''s: bizos tenant create, demo data, tests); returns its id.';
