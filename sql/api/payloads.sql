-- Payloads: the field checks every RPC taking a JSON payload uses
-- (payload_check declares the fields; raise_field names the bad one).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- Payload helpers shared by the RPCs.
-- Every error names its field: message '<field>: <problem>', column <field>.
create or replace function raise_field(field text, problem text) returns void
language plpgsql
as $$
begin
  raise exception using errcode = 'P0001', message = field || ': ' || problem, column = field;
end
$$;
grant execute on function raise_field(text, text)
  to bizos_authenticated;

-- Rejects a non-object payload and any key outside `allowed` (a typo such as
-- "due" instead of "due_date" must not be silently ignored).
create or replace function payload_check_keys(payload jsonb, allowed text[]) returns void
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
grant execute on function payload_check_keys(jsonb, text[])
  to bizos_authenticated;

-- The text value of `field` (NULL when absent or JSON null); trims blanks.
create or replace function payload_text(payload jsonb, field text, required boolean default false,
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
grant execute on function payload_text(jsonb, text, boolean, integer)
  to bizos_authenticated;

create or replace function payload_uuid(payload jsonb, field text, required boolean default false) returns uuid
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
grant execute on function payload_uuid(jsonb, text, boolean)
  to bizos_authenticated;

create or replace function payload_date(payload jsonb, field text, required boolean default false) returns date
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
grant execute on function payload_date(jsonb, text, boolean)
  to bizos_authenticated;

-- An instant as an RFC 3339 string with its offset
-- (2026-05-04T09:30:00+07:00, 2026-05-04T02:30:00.5Z): a
-- time without an offset would be read in the session's time zone, which
-- no client chose.
create or replace function payload_timestamptz(payload jsonb, field text, required boolean default false)
returns timestamptz
language plpgsql
as $$
declare
  s text := payload_text(payload, field, required, 100);
begin
  if s is not null
     and s !~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$' then
    raise exception using errcode = 'P0001', column = field,
      message = field || ': must be a date and time with its offset, e.g. 2026-05-04T09:30:00+07:00';
  end if;
  return s::timestamptz;
exception when datetime_field_overflow or invalid_datetime_format then
  raise exception using errcode = 'P0001', column = field, message = field || ': is not a valid date and time';
end
$$;
grant execute on function payload_timestamptz(jsonb, text, boolean)
  to bizos_authenticated;
comment on function payload_timestamptz(jsonb, text, boolean) is
  'The RFC 3339 date-time (with offset) of a payload field, NULL when absent; P0001 naming the field otherwise.';

-- A JSON number (or a numeric string) with at most `scale` decimals.
create or replace function payload_numeric(payload jsonb, field text, required boolean default false,
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
grant execute on function payload_numeric(jsonb, text, boolean, integer)
  to bizos_authenticated;

create or replace function payload_integer(payload jsonb, field text, required boolean default false) returns integer
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
grant execute on function payload_integer(jsonb, text, boolean)
  to bizos_authenticated;

-- A positive JSON number (quantities, weights), at most `scale` decimals.
create or replace function payload_positive(payload jsonb, field text, required boolean default false,
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
grant execute on function payload_positive(jsonb, text, boolean, integer)
  to bizos_authenticated;

create or replace function payload_bool(payload jsonb, field text) returns boolean
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
grant execute on function payload_bool(jsonb, text)
  to bizos_authenticated;

-- payload_check(payload, spec): every RPC taking a JSON payload declares
-- its fields with their JSON types once; unknown keys and wrong types are
-- refused before anything else, naming the field (nested: rfq.origin).
-- spec: {"field": "text" | "uuid" | "date" | "number" | "integer" | "boolean"
--        | "text[]" | "uuid[]" | {nested spec} | [{spec of each element}]}. JSON null is always allowed
-- here (required fields are checked by the RPC). Numbers may come as JSON
-- numbers or numeric strings (payload_numeric checks the digits); text,
-- uuid and date as JSON strings (payload_uuid/payload_date check the form).
-- The check itself is the extension's bizos.payload_problem (keys in byte
-- order: of several wrong fields the first is named); this raises the
-- house error with the field as COLUMN.
create or replace function payload_check(payload jsonb, spec jsonb, prefix text default '') returns void
language plpgsql
as $$
declare
  v_problem text[] := bizos.payload_problem(payload, spec, prefix);
begin
  if v_problem is not null then
    perform raise_field(v_problem[1], v_problem[2]);
  end if;
end
$$;
grant execute on function payload_check(jsonb, jsonb, text) to bizos_authenticated;
