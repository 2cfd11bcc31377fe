-- Tenants and user profiles: the two tables every other table hangs off.
--
-- Written with unqualified names so the same file builds the shared tier
-- (default schema) and the schema tier (search_path = <tenant schema>).
-- Roles are cluster-wide and created by `bizos db bootstrap`; the extension
-- `bizos` provides the claims helpers used by the policies.

do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'bizos_authenticated')
     or not exists (select 1 from pg_catalog.pg_roles where rolname = 'bizos_app') then
    raise exception using
      errcode = 'P0001',
      message = 'bizos roles are missing from this cluster',
      hint = 'run `bizos db bootstrap` as a superuser before migrating';
  end if;
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'bizos') then
    raise exception using
      errcode = 'P0001',
      message = 'extension bizos is not installed in this database',
      hint = 'run `bizos db bootstrap` (or CREATE EXTENSION bizos as a superuser) before migrating';
  end if;
end $$;

-- The BFF's login role checks readiness (migrations current) without
-- switching to bizos_authenticated.
grant select on refinery_schema_history to bizos_app;

-- created_at / updated_at belong to the database, not to clients.
create function stamp_timestamps() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    new.created_at := now();
  else
    new.created_at := old.created_at;
  end if;
  new.updated_at := now();
  return new;
end
$$;

create table tenants (
  tenant_id  uuid        not null default gen_random_uuid(),
  slug       text        not null,
  name       text        not null,
  tier       text        not null default 'shared',
  region     text        not null default 'default',
  status     text        not null default 'active',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint tenants_pkey primary key (tenant_id),
  constraint tenants_slug_key unique (slug),
  constraint tenants_slug_check check (slug ~ '^[a-z][a-z0-9-]{1,62}$'),
  constraint tenants_name_check check (length(btrim(name)) between 1 and 200),
  constraint tenants_tier_check check (tier in ('shared', 'schema', 'isolated')),
  constraint tenants_status_check check (status in ('active', 'read_only', 'suspended'))
);
comment on table tenants is 'Tenant registry: one row per customer organisation, with its tier and region.';

create trigger tenants_stamp_timestamps
  before insert or update on tenants
  for each row execute function stamp_timestamps();

alter table tenants enable row level security;

create policy "members read their own tenant"
  on tenants for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));

grant select on tenants to bizos_authenticated;

create table profiles (
  tenant_id       uuid        not null,
  user_id         uuid        not null,
  email           text        not null,
  full_name       text        not null,
  app_role        text        not null,
  dept_code       text,
  manager_user_id uuid,
  active          boolean     not null default true,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint profiles_pkey primary key (tenant_id, user_id),
  constraint profiles_email_key unique (tenant_id, email),
  constraint profiles_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint profiles_manager_user_id_fkey foreign key (tenant_id, manager_user_id)
    references profiles (tenant_id, user_id) on delete set null (manager_user_id),
  constraint profiles_email_check check (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' and email = lower(email)),
  constraint profiles_full_name_check check (length(btrim(full_name)) between 1 and 200),
  constraint profiles_app_role_check check (app_role in (
    'super_admin', 'director', 'marketing_manager', 'sales_manager',
    'salesperson', 'ops', 'finance')),
  constraint profiles_dept_code_check check (app_role <> 'ops' or dept_code is not null),
  constraint profiles_manager_user_id_check check (manager_user_id is distinct from user_id)
);
comment on table profiles is 'One row per user of a tenant: app role, department and manager (team scope).';
comment on column profiles.manager_user_id is 'Team scope: a manager sees the rows of the profiles that name them here.';

create index profiles_tenant_id_manager_user_id_idx on profiles (tenant_id, manager_user_id);

create trigger profiles_stamp_timestamps
  before insert or update on profiles
  for each row execute function stamp_timestamps();

alter table profiles enable row level security;

create policy "members read the profiles of their tenant"
  on profiles for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));

create policy "super admins add profiles to their tenant"
  on profiles for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

create policy "super admins edit profiles of their tenant"
  on profiles for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

create policy "super admins remove profiles of their tenant"
  on profiles for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

grant select, insert, update, delete on profiles to bizos_authenticated;
