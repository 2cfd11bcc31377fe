-- Helpers of the self-checking SQL test scripts, included with \ir.
-- pg_temp.put/id name values for the script; check raises on a false
-- condition; expect_error runs a statement that must fail with a SQLSTATE
-- (and column or constraint); act sets the claims of a seeded profile.
create function pg_temp.id(n text) returns uuid language sql stable
  as $$ select current_setting('t.' || n)::uuid $$;
create function pg_temp.put(n text, v uuid) returns void language sql
  as $$ select set_config('t.' || n, v::text, false) $$;
create function pg_temp.check(ok boolean, what text) returns void language plpgsql as $$
begin
  if ok is distinct from true then
    raise exception 'CHECK FAILED: %', what;
  end if;
end $$;
-- Runs `stmt` and requires it to fail with `state` (and `col` as the error's
-- column, when given).
create function pg_temp.expect_error(stmt text, state text, col text default null) returns void
language plpgsql as $$
declare
  got_state text; got_col text; got_msg text; got_constraint text;
begin
  begin
    execute stmt;
  exception when others then
    get stacked diagnostics got_state = returned_sqlstate, got_col = column_name, got_msg = message_text,
                            got_constraint = constraint_name;
    if got_state <> state or (col is not null and got_col is distinct from col and got_constraint is distinct from col) then
      raise exception 'CHECK FAILED: % -> expected % (column %), got % (column %, constraint %): %',
        stmt, state, col, got_state, got_col, got_constraint, got_msg;
    end if;
    return;
  end;
  raise exception 'CHECK FAILED: % -> expected error %, but it succeeded', stmt, state;
end $$;
-- Claims of a seeded user (call as the superuser, then `set local role`).
create function pg_temp.act(who text) returns void language plpgsql as $$
declare p profiles;
begin
  select * into p from profiles where user_id = pg_temp.id(who);
  perform set_config('request.jwt.claims',
    json_build_object('sub', p.user_id, 'tenant_id', p.tenant_id, 'app_role', p.app_role)::text, true);
end $$;
