-- Included with \ir by every SQL test script, right after its `begin`; the
-- script then plans its checks (`select plan(n)`), makes them, and ends with
-- `select * from finish(); rollback;`. pg_prove runs it
-- (tests/tests/suite/sql_scripts.rs, on a fresh migrated database).
--
-- pgTAP's checks return the lines of TAP as text: at the top level a check is
-- a `select`; the checks of a PL/pgSQL block live in a pg_temp.test_NN()
-- function that `return next`s them (a `do` block cannot return rows),
-- created as the superuser (users may not create temporary objects) and
-- called as the user of the block. Helpers that check return `setof text`
-- too (`return query select * from pg_temp.helper(...)`).
--
-- pgTAP (Debian's postgresql-15-pgtap) in a schema of its own, `tap`,
-- created inside the script's transaction and rolled back with it: the
-- database under test never holds it, and it never looks like part of the
-- business schema. pgTAP's functions find each other through the
-- search_path, so `tap` goes at its end, after the business schemas.
create schema tap;
create extension pgtap with schema tap;
grant usage on schema tap to public;
select set_config('search_path', current_setting('search_path') || ', tap', true) \g /dev/null

-- Named values of a script: pg_temp.put(name, uuid), pg_temp.id(name).
create function pg_temp.id(n text) returns uuid language sql stable
  as $$ select current_setting('t.' || n)::uuid $$;
create function pg_temp.put(n text, v uuid) returns void language sql
  as $$ select set_config('t.' || n, v::text, false) $$;

-- Claims of a seeded user (call as the superuser, then `set local role`).
create function pg_temp.act(who text) returns void language plpgsql as $$
declare p profiles;
begin
  select * into p from profiles where user_id = pg_temp.id(who);
  perform set_config('request.jwt.claims',
    json_build_object('sub', p.user_id, 'tenant_id', p.tenant_id, 'app_role', p.app_role)::text, true);
end $$;

-- A pgTAP test (built on ok() and diag(), as pgTAP's documentation shows
-- for new test functions): `stmt` must fail with SQLSTATE `errcode`, the
-- error naming `field` as its column or its constraint (when given) and its
-- message matching the case-insensitive regular expression `pattern` (when
-- given). pgTAP's throws_ok() checks the SQLSTATE and the exact message,
-- not the column a bizos error names, which is what the BFF maps.
create function pg_temp.throws_field(stmt text, errcode text, field text,
                                     pattern text default null, description text default null)
returns text language plpgsql as $$
declare
  what text := coalesce(description,
    format('%s fails with %s%s%s', regexp_replace(stmt, '\s+', ' ', 'g'), errcode,
           ' naming ' || field, ' saying /' || pattern || '/'));
  got_state text; got_column text; got_constraint text; got_message text;
begin
  begin
    execute stmt;
  exception when others then
    get stacked diagnostics got_state = returned_sqlstate, got_column = column_name,
                            got_constraint = constraint_name, got_message = message_text;
    if got_state = errcode
       and (field is null or field = got_column or field = got_constraint)
       and (pattern is null or got_message ~* pattern) then
      return ok(true, what);
    end if;
    return ok(false, what) || E'\n' || diag(format(
      E'    caught: %s (column %s, constraint %s): %s\n    wanted: %s (column or constraint %s, message /%s/)',
      got_state, got_column, got_constraint, got_message, errcode, field, pattern));
  end;
  return ok(false, what) || E'\n' || diag(E'    caught: no exception\n    wanted: ' || errcode);
end $$;
