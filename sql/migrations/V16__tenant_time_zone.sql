-- "Today" is the tenant's today (SPEC §3 Time): days, ages and periods are
-- cut in the tenant's time zone, never in the time zone of whatever session
-- reads them, so a report gives the same number from any client.
--
-- tenants.time_zone      an IANA name PostgreSQL knows (default Asia/Jakarta)
-- tenant_today(tenant)   the tenant's current date
-- tenant_date(ts, tenant) the tenant's date of an instant
--
-- Both read the tenant's row once; a view over many rows of one tenant
-- should join `tenants` and compute `(now() at time zone t.time_zone)::date`
-- itself rather than call these per row.

alter table tenants add column time_zone text not null default 'Asia/Jakarta';
comment on column tenants.time_zone is 'IANA time zone in which the tenant''s days, ages and periods are cut.';

-- The same check as the business calendars' (a CHECK may not read catalogs).
create trigger tenants_check_time_zone before insert or update of time_zone on tenants
  for each row execute function business_calendars_before_write();

create function tenant_today(tenant uuid default bizos.tenant_id()) returns date
language sql stable
as $$
  select (pg_catalog.now() at time zone t.time_zone)::date from tenants t where t.tenant_id = tenant
$$;
select pin_search_path('tenant_today(uuid)');
comment on function tenant_today(uuid) is 'The tenant''s current date (tenants.time_zone); NULL for an unknown or invisible tenant.';

create function tenant_date(at timestamptz, tenant uuid default bizos.tenant_id()) returns date
language sql stable
as $$
  select (at at time zone t.time_zone)::date from tenants t where t.tenant_id = tenant
$$;
select pin_search_path('tenant_date(timestamptz, uuid)');
comment on function tenant_date(timestamptz, uuid) is 'The tenant''s date of an instant (tenants.time_zone).';

revoke execute on function tenant_today(uuid), tenant_date(timestamptz, uuid) from public;
grant execute on function tenant_today(uuid), tenant_date(timestamptz, uuid) to bizos_authenticated;

-- The analysts' view of tenants gets the new column.
select analytics_build_views();
