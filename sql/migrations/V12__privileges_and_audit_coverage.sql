-- Privileges and audit coverage (issue 11, sections 1, 4 and 6).
--
-- 1. Temporary objects. Login roles no longer have TEMP on the database
--    (`bizos db bootstrap` revokes it), so no login role can put a relation,
--    view or function into its session's pg_temp. The import staging still
--    uses temp tables: they are created inside SECURITY DEFINER functions,
--    as the owner, whose TEMP privilege (database owner) is what counts.
--    Defence in depth: a definer function that uses a pg_temp relation first
--    checks that it is a plain temporary table of the definer itself
--    (own_temp_table); a view, a foreign table or anyone else's table under
--    that name is refused before it is read, so code of the caller's can
--    never run with the owner's rights. The functions below are V10's with
--    only that check added.
--    The internal import_apply_*/import_resolve_customers functions create
--    their temp tables after `drop table` of the same name: a foreign object
--    under the name makes the drop fail (not a table, or not the owner's),
--    so they never use one; they are called only from process_import.
-- 2. bizos.transitions is no longer readable by PUBLIC (extension 0.3.0);
--    request roles read it (ticket_transition checks moves against it), so
--    it is granted to bizos_authenticated here. Analysts and BI see schema
--    analytics only.
-- 3. tenants, profiles and role_permissions are audited: tenant status
--    changes, role and permission changes leave an entry with actor and
--    before/after (and the request id, extension 0.3.0).

-- True when pg_temp.<name> is a temporary table of the current user (in a
-- SECURITY DEFINER function: the definer), false when there is none; any
-- other relation under that name (a view, someone else's table) is an
-- error, so the caller never learns more than that the name is taken.
create function own_temp_table(name text) returns boolean
language plpgsql stable
as $$
declare
  c record;
begin
  select k.relkind, k.relowner, k.relpersistence into c
    from pg_class k
   where k.oid = to_regclass('pg_temp.' || quote_ident(name));
  if not found then
    return false;
  end if;
  if c.relkind <> 'r' or c.relpersistence <> 't' or c.relowner <> current_user::regrole::oid then
    raise exception using errcode = '42501',
      message = format('pg_temp.%s is not a temporary table of %s: refusing to use it', name, current_user),
      hint = 'another object took this name in the session; start a new session';
  end if;
  return true;
end
$$;
select pin_search_path('own_temp_table(text)');
revoke execute on function own_temp_table(text) from public;

-- The caller's staging table (V10), checked before it is replaced.
create or replace function import_stage_open() returns void
language plpgsql security definer
as $$
begin
  if bizos.tenant_id() is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if own_temp_table('import_stage') then
    drop table pg_temp.import_stage;
  end if;
  create temp table import_stage (row_no integer not null, data jsonb not null) on commit drop;
  grant insert on pg_temp.import_stage to bizos_authenticated;
end
$$;
select pin_search_path('import_stage_open()');
revoke execute on function import_stage_open() from public;
grant execute on function import_stage_open() to bizos_authenticated;

-- Staged rows -> import_rows (V10), only from the definer's own table.
create or replace function import_stage_finish(import_id uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  r imports;
  n integer;
  bad integer;
begin
  if v_tenant is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  select * into r from imports i
   where i.tenant_id = v_tenant and i.import_id = import_stage_finish.import_id
   for update;
  if not found or r.created_by is distinct from bizos.uid() then
    raise exception using errcode = 'P0002', column = 'import_id', message = 'import_id: no such import of yours';
  end if;
  if r.status <> 'staged' or r.total_rows > 0 then
    perform raise_field('import_id', 'the rows of this import are already staged');
  end if;
  if not own_temp_table('import_stage') then
    perform raise_field('file', 'nothing was staged (call import_stage_open and COPY the rows first)');
  end if;
  select s.row_no into bad from pg_temp.import_stage s
   where s.row_no is null or s.row_no < 1 or jsonb_typeof(s.data) <> 'object' limit 1;
  if found then
    perform raise_field('file', format('staged row %s is not a row number with an object of cells', bad));
  end if;
  insert into import_rows (tenant_id, import_id, row_no, data)
  select v_tenant, r.import_id, s.row_no, s.data from pg_temp.import_stage s;
  get diagnostics n = row_count;
  if n = 0 then
    perform raise_field('file', 'the file has no data rows');
  end if;
  truncate pg_temp.import_stage;
  update imports i set total_rows = n
   where i.tenant_id = v_tenant and i.import_id = r.import_id
  returning * into r;
  return import_state(r);
end
$$;
select pin_search_path('import_stage_finish(uuid)');
revoke execute on function import_stage_finish(uuid) from public;
grant execute on function import_stage_finish(uuid) to bizos_authenticated;

-- The next batch of an import (V10); its batch table is the definer's own.
create or replace function process_import(import_id uuid, batch_size integer default 1000) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  imp imports;
  m import_modules;
  n_batch integer;
  n_ok integer := 0;
  n_err integer := 0;
  r record;
  e_state text;
  e_col text;
  e_con text;
  e_msg text;
  e_field text;
  v_first integer;
  v_last integer;
begin
  if v_tenant is null or v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if process_import.import_id is null then
    perform raise_field('import_id', 'is required');
  end if;
  if batch_size is null or batch_size < 1 or batch_size > 50000 then
    perform raise_field('batch_size', 'must be between 1 and 50000');
  end if;
  select * into imp from imports i
   where i.tenant_id = v_tenant and i.import_id = process_import.import_id
   for update;
  if not found or not (imp.created_by = v_uid or bizos.app_role() = 'super_admin') then
    raise exception using errcode = 'P0002', column = 'import_id', message = 'import_id: no such import';
  end if;
  if imp.created_by <> v_uid then
    raise exception using errcode = '42501', column = 'import_id',
      message = 'import_id: only the user who uploaded the file processes it';
  end if;
  select * into m from import_modules x where x.module = imp.module;
  perform require_permission(m.permission);
  if imp.status in ('done', 'failed') then
    return import_state(imp);
  end if;
  if imp.total_rows = 0 then
    perform raise_field('import_id', 'the file''s rows have not been staged');
  end if;

  if own_temp_table('import_batch') then
    drop table pg_temp.import_batch;
  end if;
  create temp table import_batch (
    row_no    integer primary key,
    d         jsonb   not null,
    err_field text,
    err_msg   text,
    target_id uuid
  ) on commit drop;
  insert into pg_temp.import_batch (row_no, d)
  select x.row_no, x.data from import_rows x
   where x.tenant_id = v_tenant and x.import_id = imp.import_id and x.status = 'pending'
   order by x.row_no
   limit batch_size;
  get diagnostics n_batch = row_count;
  analyze pg_temp.import_batch;
  select min(b.row_no), max(b.row_no) into v_first, v_last from pg_temp.import_batch b;

  if n_batch > 0 then
    perform import_validate(imp.module, v_tenant);
    begin
      perform import_apply(imp.module, v_tenant, imp.import_id, null);
    exception when others then
      get stacked diagnostics e_state = returned_sqlstate;
      if e_state in ('40001', '40P01', '57014', '55P03') or e_state like '53%' then
        raise;
      end if;
      -- Something the validation could not foresee: row by row, each in a
      -- subtransaction of its own, so the good rows still land.
      for r in select b.row_no, b.d from pg_temp.import_batch b where b.err_field is null order by b.row_no loop
        begin
          perform import_apply(imp.module, v_tenant, imp.import_id, r.row_no);
        exception when others then
          get stacked diagnostics e_state = returned_sqlstate, e_col = column_name,
                                  e_con = constraint_name, e_msg = message_text;
          if e_state in ('40001', '40P01', '57014', '55P03') or e_state like '53%' then
            raise;
          end if;
          e_field := import_error_field(imp.module, imp.columns, r.d, nullif(e_col, ''), nullif(e_con, ''));
          update pg_temp.import_batch b
             set err_field = e_field,
                 err_msg = case when e_msg like e_field || ': %' then e_msg
                                else e_field || ': ' || regexp_replace(e_msg, '^[a-z_]+: ', '') end,
                 target_id = null
           where b.row_no = r.row_no;
        end;
      end loop;
    end;

    -- A valid row always names its target; one that does not is an error,
    -- never silently counted as done.
    update pg_temp.import_batch b
       set err_field = 'row', err_msg = 'row: was not written (no target row)'
     where b.err_field is null and b.target_id is null;

    update import_rows x
       set status = case when b.err_field is null then 'ok' else 'error' end,
           error_field = b.err_field,
           error_message = b.err_msg,
           target_id = b.target_id
      from pg_temp.import_batch b
     where x.tenant_id = v_tenant and x.import_id = imp.import_id and x.row_no = b.row_no
       and x.row_no between v_first and v_last;
    select count(*) filter (where b.err_field is null), count(*) filter (where b.err_field is not null)
      into n_ok, n_err
      from pg_temp.import_batch b;
  end if;
  drop table pg_temp.import_batch;

  -- The tables an import fills grow faster than autovacuum analyzes them;
  -- with statistics that still say "this tenant has no customers" the
  -- lookups of the next batches would scan instead of probing the natural
  -- keys. Analyzed when the rows written reach 256, 512, 1024, 2048, ...
  if imp.ok_rows + n_ok >= 256
     and floor(log(2, imp.ok_rows + n_ok)) > floor(log(2, greatest(imp.ok_rows, 128))) then
    case imp.module
      when 'customers' then analyze customers;
      when 'leads' then analyze customers; analyze prospects; analyze leads;
      when 'invoices' then analyze invoices;
      when 'payments' then analyze payments;
      when 'kpi_entries' then analyze kpi_entries;
    end case;
  end if;

  update imports i
     set processed_rows = i.processed_rows + n_batch,
         ok_rows = i.ok_rows + n_ok,
         error_rows = i.error_rows + n_err,
         status = case when i.processed_rows + n_batch >= i.total_rows then 'done' else 'processing' end,
         started_at = coalesce(i.started_at, now())
   where i.tenant_id = v_tenant and i.import_id = imp.import_id
  returning * into imp;
  return import_state(imp);
end
$$;
select pin_search_path('process_import(uuid, integer)');
revoke execute on function process_import(uuid, integer) from public;
grant execute on function process_import(uuid, integer) to bizos_authenticated;

-- Request roles check ticket moves against the declared transitions; the
-- extension no longer lets PUBLIC read them (0.3.0 gives the database
-- owner the grant option instead).
grant select on bizos.transitions to bizos_authenticated;

-- Who changed a tenant's status, a user's role, team or active flag, or a
-- role's permissions.
select bizos.enable_audit('tenants');
select bizos.enable_audit('profiles');
select bizos.enable_audit('role_permissions');
