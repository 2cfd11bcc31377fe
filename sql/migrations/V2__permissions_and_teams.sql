-- Permissions as data, team scope, and the helpers every policy and RPC of
-- the business schema uses.

-- SECURITY DEFINER functions pin their search path to pg_catalog, the schema
-- they live in (owned by bizos_owner; no one else can create objects there),
-- the helper extensions and pg_temp last. The schema is only known when the
-- migration runs (shared tier: public; schema tier: the tenant's schema), so
-- it is read from the function itself.
create function pin_search_path(fn regprocedure) returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  home text;
begin
  select n.nspname into home
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where p.oid = fn;
  execute format('alter function %s set search_path = pg_catalog, %I, extensions, pg_temp', fn, home);
end
$$;
revoke execute on function pin_search_path(regprocedure) from public;

create table role_permissions (
  tenant_id  uuid        not null,
  app_role   text        not null,
  permission text        not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint role_permissions_pkey primary key (tenant_id, app_role, permission),
  constraint role_permissions_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint role_permissions_app_role_check check (app_role in (
    'super_admin', 'director', 'marketing_manager', 'sales_manager',
    'salesperson', 'ops', 'finance')),
  constraint role_permissions_permission_check check (permission ~ '^[a-z_]+(\.[a-z_]+)+$')
);
comment on table role_permissions is 'What each app role may do in a tenant (RBAC); RLS decides which rows.';

create trigger role_permissions_stamp_timestamps
  before insert or update on role_permissions
  for each row execute function stamp_timestamps();

alter table role_permissions enable row level security;

create policy "members read the permissions of their tenant"
  on role_permissions for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));

create policy "super admins grant permissions in their tenant"
  on role_permissions for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

create policy "super admins revoke permissions in their tenant"
  on role_permissions for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

grant select, insert, delete on role_permissions to bizos_authenticated;

-- The default grants every new tenant starts with.
create function default_role_permissions()
returns table (app_role text, permission text)
language sql immutable
as $$
  values
    ('super_admin', 'profile.manage'), ('super_admin', 'permission.manage'),
    ('super_admin', 'lead.create'), ('super_admin', 'lead.update'), ('super_admin', 'lead.assign'),
    ('super_admin', 'prospect.stage'), ('super_admin', 'activity.create'),
    ('super_admin', 'marketing.write'),
    ('super_admin', 'ticket.create'), ('super_admin', 'ticket.update'), ('super_admin', 'ticket.message'),
    ('super_admin', 'kpi.target.manage'), ('super_admin', 'kpi.entry.create'),
    ('super_admin', 'invoice.create'), ('super_admin', 'invoice.delete'), ('super_admin', 'payment.record'),
    ('super_admin', 'collection.create'), ('super_admin', 'audit.read'),
    ('director', 'audit.read'),
    ('marketing_manager', 'lead.create'), ('marketing_manager', 'lead.update'), ('marketing_manager', 'lead.assign'),
    ('marketing_manager', 'marketing.write'), ('marketing_manager', 'activity.create'),
    ('marketing_manager', 'ticket.create'), ('marketing_manager', 'ticket.message'),
    ('marketing_manager', 'kpi.target.manage'), ('marketing_manager', 'kpi.entry.create'),
    ('sales_manager', 'lead.create'), ('sales_manager', 'lead.update'), ('sales_manager', 'lead.assign'),
    ('sales_manager', 'prospect.stage'), ('sales_manager', 'activity.create'),
    ('sales_manager', 'ticket.create'), ('sales_manager', 'ticket.message'),
    ('sales_manager', 'kpi.target.manage'), ('sales_manager', 'kpi.entry.create'),
    ('sales_manager', 'collection.create'),
    ('salesperson', 'lead.create'), ('salesperson', 'lead.update'), ('salesperson', 'prospect.stage'),
    ('salesperson', 'activity.create'), ('salesperson', 'ticket.create'), ('salesperson', 'ticket.message'),
    ('salesperson', 'kpi.entry.create'), ('salesperson', 'collection.create'),
    ('ops', 'ticket.create'), ('ops', 'ticket.update'), ('ops', 'ticket.message'), ('ops', 'kpi.entry.create'),
    ('finance', 'invoice.create'), ('finance', 'payment.record'), ('finance', 'collection.create'),
    ('finance', 'ticket.create'), ('finance', 'ticket.update'), ('finance', 'ticket.message'), ('finance', 'kpi.entry.create')
$$;

create function grant_default_permissions() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format(
    'insert into %I.role_permissions (tenant_id, app_role, permission)
     select $1, d.app_role, d.permission from %I.default_role_permissions() d
     on conflict do nothing', tg_table_schema, tg_table_schema)
  using new.tenant_id;
  return null;
end
$$;

create trigger tenants_grant_default_permissions
  after insert on tenants
  for each row execute function grant_default_permissions();

insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, d.app_role, d.permission
  from tenants t cross join default_role_permissions() d
on conflict do nothing;

-- created_by is the caller on insert and never changes: a client cannot
-- write a row in someone else's name (outside a request, e.g. migrations
-- and demo data, the given value stays).
create function keep_created_by() returns trigger
language plpgsql
as $$
begin
  if tg_op = 'INSERT' then
    new.created_by := coalesce(bizos.uid(), new.created_by);
  else
    new.created_by := old.created_by;
  end if;
  return new;
end
$$;

-- May the caller do `permission`? (RLS decides which rows; this decides
-- which actions: 403 instead of invisible.)
create function has_permission(permission text) returns boolean
language sql stable
as $$
  select exists (
    select 1 from role_permissions r
     where r.tenant_id = (select bizos.tenant_id())
       and r.app_role = (select bizos.app_role())
       and r.permission = has_permission.permission)
$$;

-- The caller and everyone who reports to them, directly or not.
create function my_team_ids() returns uuid[]
language sql stable
as $$
  with recursive team (user_id) as (
    select (select bizos.uid())
    union
    select p.user_id
      from profiles p
      join team t on p.manager_user_id = t.user_id
     where p.tenant_id = (select bizos.tenant_id())
  )
  select coalesce(array_agg(user_id), '{}') from team where user_id is not null
$$;

-- The caller's department (ops scope), or NULL.
create function my_dept_code() returns text
language sql stable
as $$
  select p.dept_code from profiles p
   where p.tenant_id = (select bizos.tenant_id()) and p.user_id = (select bizos.uid())
$$;

-- Raises 42501 unless the caller has `permission`.
create function require_permission(permission text) returns void
language plpgsql stable
as $$
begin
  if (select bizos.tenant_id()) is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not has_permission(permission) then
    raise exception using errcode = '42501',
      message = format('your role (%s) may not do %s', coalesce((select bizos.app_role()), 'none'), permission);
  end if;
end
$$;

-- Policies call these from any context, including functions that pin their
-- own search path, so they resolve their tables in their own schema.
select pin_search_path('has_permission(text)');
select pin_search_path('my_team_ids()');
select pin_search_path('my_dept_code()');
select pin_search_path('require_permission(text)');

grant execute on function has_permission(text), my_team_ids(), my_dept_code(), require_permission(text)
  to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Payload helpers shared by the RPCs of every later migration.
-- Every error names its field: message '<field>: <problem>', column <field>.
-- ---------------------------------------------------------------------------

create function raise_field(field text, problem text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'P0001', message = field || ': ' || problem, column = field;
end
$$;

-- Rejects a non-object payload and any key outside `allowed` (a typo such as
-- "due" instead of "due_date" must not be silently ignored).
create function payload_check_keys(payload jsonb, allowed text[]) returns void
language plpgsql
as $$
declare
  k text;
begin
  if payload is null or jsonb_typeof(payload) <> 'object' then
    raise exception using errcode = 'P0001', message = 'payload: must be a JSON object', column = 'payload';
  end if;
  for k in select jsonb_object_keys(payload) order by 1 loop
    if not k = any (allowed) then
      raise exception using errcode = 'P0001', column = k,
        message = format('%s: unknown field (allowed: %s)', k, array_to_string(allowed, ', '));
    end if;
  end loop;
end
$$;

-- The text value of `field` (NULL when absent or JSON null); trims blanks.
create function payload_text(payload jsonb, field text, required boolean default false,
                             max_length integer default 2000) returns text
language plpgsql
as $$
declare
  v jsonb := payload -> field;
  s text;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    s := null;
  elsif jsonb_typeof(v) <> 'string' then
    raise exception using errcode = 'P0001', column = field, message = field || ': must be a string';
  else
    s := nullif(btrim(v #>> '{}'), '');
  end if;
  if s is null and required then
    raise exception using errcode = 'P0001', column = field, message = field || ': is required';
  end if;
  if length(s) > max_length then
    raise exception using errcode = 'P0001', column = field,
      message = format('%s: at most %s characters', field, max_length);
  end if;
  return s;
end
$$;

create function payload_uuid(payload jsonb, field text, required boolean default false) returns uuid
language plpgsql
as $$
declare
  s text := payload_text(payload, field, required, 100);
begin
  return s::uuid;
exception when invalid_text_representation then
  raise exception using errcode = 'P0001', column = field, message = field || ': must be a UUID';
end
$$;

create function payload_date(payload jsonb, field text, required boolean default false) returns date
language plpgsql
as $$
declare
  s text := payload_text(payload, field, required, 100);
begin
  if s is not null and s !~ '^\d{4}-\d{2}-\d{2}$' then
    raise exception using errcode = 'P0001', column = field, message = field || ': must be a date YYYY-MM-DD';
  end if;
  return s::date;
exception when datetime_field_overflow or invalid_datetime_format then
  raise exception using errcode = 'P0001', column = field, message = field || ': is not a valid date';
end
$$;

-- A JSON number (or a numeric string) with at most `scale` decimals.
create function payload_numeric(payload jsonb, field text, required boolean default false,
                                scale integer default 2) returns numeric
language plpgsql
as $$
declare
  v jsonb := payload -> field;
  n numeric;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    if required then
      raise exception using errcode = 'P0001', column = field, message = field || ': is required';
    end if;
    return null;
  end if;
  if jsonb_typeof(v) = 'number' then
    n := (v #>> '{}')::numeric;
  elsif jsonb_typeof(v) = 'string' and btrim(v #>> '{}') ~ '^[+-]?(\d+(\.\d*)?|\.\d+)$' then
    n := btrim(v #>> '{}')::numeric;
  else
    raise exception using errcode = 'P0001', column = field, message = field || ': must be a number';
  end if;
  if n <> round(n, scale) then
    raise exception using errcode = 'P0001', column = field,
      message = format('%s: at most %s decimals', field, scale);
  end if;
  if abs(n) >= 1e15 then
    raise exception using errcode = 'P0001', column = field, message = field || ': is too large';
  end if;
  return n;
end
$$;

create function payload_integer(payload jsonb, field text, required boolean default false) returns integer
language plpgsql
as $$
declare
  n numeric := payload_numeric(payload, field, required, 0);
begin
  if n is not null and abs(n) > 2147483647 then
    raise exception using errcode = 'P0001', column = field, message = field || ': is too large';
  end if;
  return n::integer;
end
$$;

-- A positive JSON number (quantities, weights), at most `scale` decimals.
create function payload_positive(payload jsonb, field text, required boolean default false,
                                 scale integer default 3) returns numeric
language plpgsql
as $$
declare
  n numeric := payload_numeric(payload, field, required, scale);
begin
  if n is not null and n <= 0 then
    raise exception using errcode = 'P0001', column = field, message = field || ': must be greater than 0';
  end if;
  return n;
end
$$;

create function payload_bool(payload jsonb, field text) returns boolean
language plpgsql
as $$
declare
  v jsonb := payload -> field;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return null;
  end if;
  if jsonb_typeof(v) <> 'boolean' then
    raise exception using errcode = 'P0001', column = field, message = field || ': must be true or false';
  end if;
  return (v #>> '{}')::boolean;
end
$$;

grant execute on function raise_field(text, text), payload_check_keys(jsonb, text[]),
  payload_text(jsonb, text, boolean, integer), payload_uuid(jsonb, text, boolean),
  payload_date(jsonb, text, boolean), payload_numeric(jsonb, text, boolean, integer),
  payload_integer(jsonb, text, boolean), payload_positive(jsonb, text, boolean, integer),
  payload_bool(jsonb, text)
  to bizos_authenticated;
