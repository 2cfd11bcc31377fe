-- Imports (IMP): creating and staging an import, and process_import with
-- its per-module validators and writers.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- Cell helpers (SQL, inlined into the set statements: stable, not
-- immutable, because format() and text-to-date casts are stable, and an
-- immutable SQL function calling them would not be inlined)
-- The trimmed text of a cell, NULL when absent or blank.
create or replace function import_cell(d jsonb, col text) returns text
language sql immutable parallel safe
as $$ select nullif(btrim(d ->> col), '') $$;
grant execute on function import_cell(jsonb, text)
  to bizos_authenticated;

-- A YYYY-MM-DD date, NULL when it is not one (no exception: set-based).
create or replace function import_date(s text) returns date
language sql stable parallel safe
as $$
  select case when s ~ '^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$'
               and substr(s, 9, 2)::integer <= extract(day from make_date(substr(s, 1, 4)::integer, substr(s, 6, 2)::integer, 1)
                                                             + interval '1 month - 1 day')
              then s::date end
$$;
grant execute on function import_date(text)
  to bizos_authenticated;

-- The problem with a text cell, or NULL (payload_text's rules).
create or replace function import_problem_text(s text, required boolean, max_length integer) returns text
language sql stable parallel safe
as $$
  select case when s is null then case when required then 'is required' end
              when length(s) > max_length then format('at most %s characters', max_length) end
$$;
grant execute on function import_problem_text(text, boolean, integer)
  to bizos_authenticated;

-- The problem with a number cell, or NULL (payload_numeric's rules).
create or replace function import_problem_number(s text, required boolean, scale integer) returns text
language sql stable parallel safe
as $$
  select case when s is null then case when required then 'is required' end
              when length(s) > 40 or s !~ '^[+-]?(\d+(\.\d*)?|\.\d+)$' then 'must be a number'
              when s::numeric <> round(s::numeric, scale) then format('at most %s decimals', scale)
              when abs(s::numeric) >= 1e15 then 'is too large' end
$$;
grant execute on function import_problem_number(text, boolean, integer)
  to bizos_authenticated;

-- The problem with a date cell, or NULL (payload_date's rules).
create or replace function import_problem_date(s text, required boolean) returns text
language sql stable parallel safe
as $$
  select case when s is null then case when required then 'is required' end
              when s !~ '^\d{4}-\d{2}-\d{2}$' then 'must be a date YYYY-MM-DD'
              when import_date(s) is null then 'is not a valid date' end
$$;
grant execute on function import_problem_date(text, boolean)
  to bizos_authenticated;

-- The problem with an e-mail (kind 'email') or phone (kind 'phone') cell,
-- or NULL; the messages of the CRM functions' own checks. (A constant kind
-- folds the other branch away once the function is inlined.)
create or replace function import_problem_contact(s text, kind text) returns text
language sql stable parallel safe
as $$
  select case when s is null then null
              when kind = 'email' and bizos.norm_email(s) is null
              then format('%L is not a valid e-mail address', s)
              when kind = 'phone' and bizos.norm_phone(s) is null
              then format('%L is not a valid Indonesian phone number', s) end
$$;
grant execute on function import_problem_contact(text, text)
  to bizos_authenticated;

-- The state of an import as the API returns it.
create or replace function import_state(i imports) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'import_id', i.import_id, 'module', i.module, 'object_id', i.object_id, 'file_name', i.file_name,
    'columns', to_jsonb(i.columns), 'status', i.status,
    'total_rows', i.total_rows, 'processed_rows', i.processed_rows, 'ok_rows', i.ok_rows,
    'error_rows', i.error_rows, 'pending_rows', i.total_rows - i.processed_rows,
    'created_by', i.created_by, 'created_at', i.created_at, 'started_at', i.started_at,
    'finished_at', i.finished_at)
$$;
grant execute on function import_state(imports) to bizos_authenticated;

-- An import's rows go with the import (deleted directly or by its tenant's
-- cascade), as the foreign key's `on delete cascade` did before V38 dropped
-- it (a check per staged row). As the owner, like a cascade: the rows are
-- deleted whatever policies the deleting role has on import_rows.
create or replace function import_rows_delete_with_import() returns trigger
language plpgsql security definer
as $$
begin
  delete from import_rows x
   where x.tenant_id = old.tenant_id and x.import_id = old.import_id;
  return null;
end
$$;
select pin_search_path('import_rows_delete_with_import()');
revoke execute on function import_rows_delete_with_import() from public;
create or replace trigger imports_delete_rows after delete on imports
  for each row execute function import_rows_delete_with_import();

-- The field a write-time error belongs to, in the file's terms.
create or replace function import_error_field(module text, cols text[], d jsonb, col text, con text) returns text
language sql stable
as $$
  select coalesce(
    case when col = any (cols) then col end,
    case col
      when 'invoice_id' then case when import_cell(d, 'invoice_no') is not null then 'invoice_no' else 'invoice_ref' end
      when 'customer_id' then case when import_cell(d, 'customer_npwp') is not null then 'customer_npwp'
                                   when module = 'invoices' then 'customer_email' else 'company_name' end
      when 'assignee_user_id' then 'assignee_email'
      when 'sales_owner_user_id' then 'sales_owner_email'
      when 'owner_user_id' then 'sales_owner_email'
      when 'paid_on' then 'paid_on'
      when 'contact_email' then 'contact_email'
    end,
    (select c from unnest(cols) c
      where con like '%\_' || c || '\_%' escape '\' order by length(c) desc limit 1),
    'row')
$$;
select pin_search_path('import_error_field(text, text[], jsonb, text, text)');
revoke execute on function
  import_error_field(text, text[], jsonb, text, text)
  from public;

-- The validators: the first problem of each row of the batch, in column
-- order, as `err_field` and `err_msg`; a row without problems stays valid.
-- Each validator below is one statement of this shape (the customers' finds
-- its problems in the table of cells, import_customer_rows, the same way):
-- - each check is `'column: ' || problem` (NULL without a problem), and the
--   first non-NULL of them, in a coalesce, is the row's message; its column
--   is the text before ': '. (A VALUES list of (column, problem) sorted per
--   row cost three times as much: 60 against 17 ms a 5,000-row batch.)
-- - the problems are found first, and only the rows that have one are
--   updated; updating every row, most of them to NULL, rewrote the whole
--   batch with its cells.

-- The cells and natural keys of the batch's customer rows as
-- pg_temp.import_customer (row_no, the cells, their normalised keys, a
-- customer_id to resolve, the row's first problem): all the valid rows of
-- the batch, or only `only_row`. (Each cell and key is computed once: the
-- validator below and import_resolve_customers read the same table.)
create or replace function import_customer_rows(only_row integer) returns void
language plpgsql
as $$
begin
  if to_regclass('pg_temp.import_customer') is not null then
    drop table pg_temp.import_customer;
  end if;
  create temp table import_customer on commit drop as
  select c.*,
         coalesce(
           'company_name: ' || case when c.company_name is null or length(c.company_name) > 200 or c.n_company is null
                                    then 'required, up to 200 characters, with letters or digits' end,
           'npwp: ' || case when c.npwp is not null and c.n_npwp is null
                            then format('%L is not a valid NPWP (15 digits, or 16 digits for the new format)', c.npwp) end,
           'email: ' || import_problem_contact(c.email, 'email'),
           'phone: ' || import_problem_contact(c.phone, 'phone'),
           'address: ' || import_problem_text(c.address, false, 2000),
           'city: ' || import_problem_text(c.city, false, 200)) as problem
    from (select x.*, bizos.norm_npwp(x.npwp) as n_npwp, bizos.norm_email(x.email) as n_email,
                 bizos.norm_phone(x.phone) as n_phone, bizos.norm_company(x.company_name) as n_company,
                 null::uuid as customer_id
            from (select b.row_no,
                         import_cell(b.d, 'company_name') as company_name, import_cell(b.d, 'npwp') as npwp,
                         import_cell(b.d, 'email') as email, import_cell(b.d, 'phone') as phone,
                         import_cell(b.d, 'address') as address, import_cell(b.d, 'city') as city
                    from pg_temp.import_batch b
                   where b.err_field is null and (only_row is null or b.row_no = only_row)
                  offset 0) x
          -- (`offset 0`: each cell and key computed once, not once per use.)
          offset 0) c;
end
$$;
revoke execute on function
  import_customer_rows(integer)
  from public;
select pin_search_path('import_customer_rows(integer)');

-- Customers: the rows of pg_temp.import_customer with a problem are marked
-- in the batch and leave the table; import_apply_customers resolves the rest.
create or replace function import_validate_customers(v_tenant uuid) returns void
language plpgsql
as $$
begin
  perform import_customer_rows(null);
  update pg_temp.import_batch b
     set err_field = split_part(c.problem, ': ', 1), err_msg = c.problem
    from pg_temp.import_customer c
   where c.problem is not null and b.row_no = c.row_no;
  delete from pg_temp.import_customer c where c.problem is not null;
end
$$;
select pin_search_path('import_validate_customers(uuid)');
revoke execute on function
  import_validate_customers(uuid)
  from public;

create or replace function import_apply_kpi_entries(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_uid uuid := bizos.uid();
begin
  if to_regclass('pg_temp.import_kpi') is not null then
    drop table pg_temp.import_kpi;
  end if;
  create temp table import_kpi on commit drop as
  select b.row_no,
         import_cell(b.d, 'metric_key') as metric_key,
         import_cell(b.d, 'value')::numeric as value,
         import_date(import_cell(b.d, 'entry_date')) as entry_date,
         coalesce((select p.user_id from profiles p
                    where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'assignee_email'))), v_uid) as assignee,
         import_cell(b.d, 'notes') as notes
    from pg_temp.import_batch b
   where b.err_field is null and (only_row is null or b.row_no = only_row);

  -- The natural key has no unique constraint (manual and API entries may
  -- repeat it), so concurrent KPI imports of a tenant take turns here.
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/import:kpi_entries', 42));

  -- An entry of the key that someone else imported is theirs to correct
  -- (the update policy of kpi_entries): such rows are refused.
  if bizos.app_role() is distinct from 'super_admin' then
    update pg_temp.import_batch b
       set err_field = 'entry_date',
           err_msg = format('entry_date: the %s entry of %s on %s was imported by someone else; only they correct it',
                            k.metric_key, p.email, k.entry_date)
      from pg_temp.import_kpi k
      join profiles p on p.tenant_id = v_tenant and p.user_id = k.assignee
     where k.row_no = b.row_no
       and exists (select 1 from kpi_entries e
                    where e.tenant_id = v_tenant and e.source = 'IMPORTED' and e.metric_key = k.metric_key
                      and e.assignee_user_id = k.assignee and e.entry_date = k.entry_date
                      and e.created_by is distinct from v_uid);
    delete from pg_temp.import_kpi k
     using pg_temp.import_batch b
     where b.row_no = k.row_no and b.err_field is not null;
  end if;

  -- The last row of the batch for a key wins, as if the rows were sent in order.
  insert into kpi_entries (tenant_id, metric_key, entry_date, assignee_user_id, value, source, notes, import_id, import_row)
  select v_tenant, k.metric_key, k.entry_date, k.assignee, k.value, 'IMPORTED', k.notes, v_import, k.row_no
    from (select distinct on (q.metric_key, q.assignee, q.entry_date) q.* from pg_temp.import_kpi q
           order by q.metric_key, q.assignee, q.entry_date, q.row_no desc) k
   where not exists (select 1 from kpi_entries e
                      where e.tenant_id = v_tenant and e.source = 'IMPORTED' and e.metric_key = k.metric_key
                        and e.assignee_user_id = k.assignee and e.entry_date = k.entry_date)
   order by k.row_no;

  update kpi_entries e
     set value = k.value, notes = k.notes
    from (select distinct on (q.metric_key, q.assignee, q.entry_date) q.* from pg_temp.import_kpi q
           order by q.metric_key, q.assignee, q.entry_date, q.row_no desc) k
   where e.tenant_id = v_tenant and e.source = 'IMPORTED' and e.metric_key = k.metric_key
     and e.assignee_user_id = k.assignee and e.entry_date = k.entry_date
     and (e.value, e.notes) is distinct from (k.value, k.notes);

  update pg_temp.import_batch b set target_id = e.entry_id
    from pg_temp.import_kpi k
    join lateral (select x.entry_id from kpi_entries x
                   where x.tenant_id = v_tenant and x.source = 'IMPORTED' and x.metric_key = k.metric_key
                     and x.assignee_user_id = k.assignee and x.entry_date = k.entry_date
                   order by x.created_at limit 1) e on true
   where k.row_no = b.row_no;
end
$$;
select pin_search_path('import_apply_kpi_entries(uuid, uuid, integer)');
revoke execute on function
  import_apply_kpi_entries(uuid, uuid, integer)
  from public;

create or replace function import_validate(module text, v_tenant uuid) returns void
language plpgsql
as $$
begin
  case module
    when 'customers' then perform import_validate_customers(v_tenant);
    when 'leads' then perform import_validate_leads(v_tenant);
    when 'invoices' then perform import_validate_invoices(v_tenant);
    when 'payments' then perform import_validate_payments(v_tenant);
    when 'kpi_entries' then perform import_validate_kpi_entries(v_tenant);
    when 'marketing_spend' then perform import_validate_marketing_spend(v_tenant);
    when 'marketing_events' then perform import_validate_marketing_events(v_tenant);
  end case;
end
$$;
select pin_search_path('import_validate(text, uuid)');
revoke execute on function
  import_validate(text, uuid)
  from public;

create or replace function import_apply(module text, v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
begin
  case module
    when 'customers' then perform import_apply_customers(v_tenant, v_import, only_row);
    when 'leads' then perform import_apply_leads(v_tenant, v_import, only_row);
    when 'invoices' then perform import_apply_invoices(v_tenant, v_import, only_row);
    when 'payments' then perform import_apply_payments(v_tenant, v_import, only_row);
    when 'kpi_entries' then perform import_apply_kpi_entries(v_tenant, v_import, only_row);
    when 'marketing_spend' then perform import_apply_marketing_spend(v_tenant, v_import, only_row);
    when 'marketing_events' then perform import_apply_marketing_events(v_tenant, v_import, only_row);
  end case;
end
$$;
select pin_search_path('import_apply(text, uuid, uuid, integer)');
revoke execute on function
  import_apply(text, uuid, uuid, integer)
  from public;

-- Creates the caller's staging table pg_temp.import_stage (row_no integer,
-- data jsonb), dropped at commit, for the BFF to fill with COPY. The table
-- belongs to the database owner (request roles have no TEMP privilege);
-- the request role may only insert into it.
-- The caller's staging table is checked (own_temp_table) before it is replaced.
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
revoke execute on function import_stage_open() from public;
grant execute on function import_stage_open() to bizos_authenticated;
select pin_search_path('import_stage_open()');
revoke execute on function import_stage_open() from public;
grant execute on function import_stage_open() to bizos_authenticated;

-- Moves the rows staged in pg_temp.import_stage into import_rows and sets
-- total_rows. A file without data rows is refused (P0001, field file); the
-- BFF then rolls back, so nothing of the upload is written.
-- Staged rows are read only from the definer's own table (own_temp_table).
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
revoke execute on function import_stage_finish(uuid) from public;
grant execute on function import_stage_finish(uuid) to bizos_authenticated;
select pin_search_path('import_stage_finish(uuid)');
revoke execute on function import_stage_finish(uuid) from public;
grant execute on function import_stage_finish(uuid) to bizos_authenticated;

-- import_process_later(import_id, batch_rows) -> job_id: the caller's
-- `import.process` job for an import of the tenant (the worker processes
-- its remaining batches as the caller; process_import checks the caller's
-- permission and visibility there). SECURITY DEFINER, like the import
-- functions it follows in a request (import_stage_finish, process_import):
-- on Citus a transaction may not write a tenant's shards as two users.
create or replace function import_process_later(import_id uuid, batch_rows integer) returns uuid
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
begin
  if v_tenant is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if not exists (select 1 from imports i
                  where i.tenant_id = v_tenant and i.import_id = import_process_later.import_id) then
    raise exception using errcode = 'P0002', column = 'import_id',
      message = format('import_id: no import %s', import_process_later.import_id);
  end if;
  return job_insert(v_tenant, bizos.uid(), 'import.process',
                    jsonb_build_object('import_id', import_process_later.import_id, 'batch_rows', batch_rows),
                    null, 0, null);
end
$$;
select pin_search_path('import_process_later(uuid, integer)');
revoke execute on function import_process_later(uuid, integer) from public;
grant execute on function import_process_later(uuid, integer) to bizos_authenticated;

-- process_import(import_id, batch_size default 1000)
--   -> {import_id, module, status, total_rows, processed_rows, ok_rows, error_rows, pending_rows, ...}
-- Processes the next batch of pending rows in the caller's transaction; the
-- BFF calls it once per transaction until pending_rows = 0, so others see
-- the progress between batches. The import row is locked, so two
-- processors of one import take turns. Only the uploader processes, with
-- the permission of the module; a done import is returned unchanged.
-- Deadlocks, serialization failures and cancels abort the call (retry it);
-- any other error of a row becomes that row's error.
-- Its batch table is the definer's own (own_temp_table).
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
  -- (Statistics of the columns the statements filter and join on; those
  -- of the cells took 9 of 10 ms.)
  analyze pg_temp.import_batch (row_no, err_field);
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
  -- keys. Analyzed when the rows written reach 256, 512, 1024, 2048, ...,
  -- 65,536: by then the statistics count the import's rows in tens of
  -- thousands, so a batch's joins probe by index whatever a further
  -- doubling would tell the planner, and an analyze of a table of a
  -- million rows costs 0.3-0.6 s (eight more of them in an import of 1M
  -- rows).
  if imp.ok_rows + n_ok >= 256 and imp.ok_rows < 65536
     and floor(log(2, imp.ok_rows + n_ok)) > floor(log(2, greatest(imp.ok_rows, 128))) then
    case imp.module
      -- (Only the columns the natural-key probes and the joins read: a
      -- third less time than the whole table, 0.3 s instead of 0.5 s at
      -- 1M rows.)
      when 'customers' then analyze customers (tenant_id, customer_id, npwp_norm, email_norm, phone_norm, company_norm);
      when 'leads' then analyze customers; analyze prospects; analyze leads;
      when 'invoices' then analyze invoices;
      when 'payments' then analyze payments;
      when 'kpi_entries' then analyze kpi_entries;
      when 'marketing_spend' then analyze marketing_spend;
      when 'marketing_events' then analyze marketing_activity_events;
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
revoke execute on function process_import(uuid, integer) from public;
grant execute on function process_import(uuid, integer) to bizos_authenticated;
select pin_search_path('process_import(uuid, integer)');
-- No JIT for a batch: its statements cross the planner's JIT cost threshold
-- by their row counts, not by costly expressions, and compiling them took
-- 15-25 % of a 5,000-row batch (bench/import_profile.sql, BENCHMARKS.md).
alter function process_import(uuid, integer) set jit = off;

-- import_create({module, object_id, file_name, columns: [text]})
--   -> the import's state (status staged, total_rows 0)
-- The columns are the file's header as the BFF normalised it (trimmed, lower
-- case, spaces and dashes as _). Every required column must be there, at
-- least one of one_of, none unknown or twice. The object must be the
-- caller's upload in bucket import-files (require_own_object).
create or replace function import_create(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_module text;
  v_object uuid;
  v_file text;
  v_columns text[];
  m import_modules;
  bad text[];
  r imports;
begin
  if v_tenant is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  -- Not on Citus yet: the module checks and writes of process_import join
  -- the session's temporary batch table with the tenant's tables in one
  -- statement, which Citus cannot plan for a table only the coordinator
  -- has (docs/citus.md, "Not supported"). Refused before anything is
  -- written.
  if citus_table('imports') then
    raise exception using errcode = 'BZ501',
      message = 'imports are not available on this cluster yet (Citus): enter the records through the API';
  end if;
  perform payload_check(payload, '{"module": "text", "object_id": "uuid", "object": {"object_id": "uuid", "bucket": "text", "file_name": "text", "content_type": "text", "size_bytes": "integer", "sha256": "text"}, "file_name": "text", "columns": "text[]"}');
  v_module := lower(payload_text(payload, 'module', true, 63));
  select * into m from import_modules x where x.module = v_module;
  if not found then
    perform raise_field('module', format('%s is not one of %s', v_module,
                        (select string_agg(x.module, ', ' order by x.module) from import_modules x)));
  end if;
  perform require_permission(m.permission);
  v_file := payload_text(payload, 'file_name', true, 255);
  if jsonb_typeof(payload -> 'columns') is distinct from 'array' then
    perform raise_field('columns', 'must be the list of column names of the file''s header');
  end if;
  if exists (select 1 from jsonb_array_elements(payload -> 'columns') c where jsonb_typeof(c) <> 'string') then
    perform raise_field('columns', 'every column name must be a string');
  end if;
  select coalesce(array_agg(c ->> 0 order by n), '{}') into v_columns
    from jsonb_array_elements(payload -> 'columns') with ordinality as x(c, n);
  if cardinality(v_columns) = 0 then
    perform raise_field('columns', 'the file has no header row');
  end if;
  if cardinality(v_columns) > 100 then
    perform raise_field('columns', 'at most 100 columns');
  end if;
  if '' = any (v_columns) then
    perform raise_field('columns', 'a column of the header has no name');
  end if;
  select array_agg(c order by c) into bad
    from (select c from unnest(v_columns) c group by c having count(*) > 1) d;
  if bad is not null then
    perform raise_field('columns', format('duplicate column(s) %s', array_to_string(bad, ', ')));
  end if;
  select array_agg(c order by n) into bad
    from unnest(v_columns) with ordinality as x(c, n) where not c = any (m.columns);
  if bad is not null then
    perform raise_field('columns', format('unknown column(s) %s for module %s (allowed: %s)',
                        array_to_string(bad, ', '), m.module, array_to_string(m.columns, ', ')));
  end if;
  select array_agg(c order by n) into bad
    from unnest(m.required) with ordinality as x(c, n) where not c = any (v_columns);
  if bad is not null then
    perform raise_field('columns', format('missing required column(s) %s', array_to_string(bad, ', ')));
  end if;
  if cardinality(m.one_of) > 0 and not (m.one_of && v_columns) then
    perform raise_field('columns', format('one of the columns %s is required', array_to_string(m.one_of, ', ')));
  end if;

  v_object := object_of_upload(payload);
  insert into imports (tenant_id, module, object_id, file_name, columns)
  values (v_tenant, m.module, v_object, v_file, v_columns)
  returning * into r;
  return import_state(r);
end
$$;
revoke execute on function import_create(jsonb) from public;
grant execute on function import_create(jsonb) to bizos_authenticated;
select pin_search_path('import_create(jsonb)');
revoke execute on function import_create(jsonb) from public;
grant execute on function import_create(jsonb) to bizos_authenticated;

-- process_import() copies the next batch of pending rows into
-- pg_temp.import_batch (row_no, d = cells, err_field, err_msg, target_id);
-- import_validate_<module>() marks the rows with a bad field;
-- import_apply_<module>(tenant, import, only_row) writes the valid rows (all
-- of them, or only `only_row` in the per-row fallback) and sets target_id,
-- or an error found only at write time (a replay with other values).
-- These internal functions run as the owner inside process_import; nobody
-- else may call them.
-- Customers for the rows of pg_temp.import_customer (row_no, company_name,
-- npwp, email, phone, address, city, n_npwp, n_email, n_phone, n_company,
-- customer_id): sets customer_id. find_or_create_customer's rules as set
-- statements: exact matches on NPWP, then e-mail and phone (only customers
-- without another NPWP), then the company name when the row has no NPWP.
-- Rows left are created in rounds (rows with an NPWP first, then by e-mail,
-- phone and name, the first row of each key); after each round the rows
-- left are matched against the customers the batch created, with the same
-- rules, so rows of one batch sharing a key share one customer. Matched
-- customers get the identifiers they lack, never overwritten. Weak keys
-- are locked by customer_dedup_lock as find_or_create_customer's, so both
-- wait for each other (in bulk: by bucket, a bounded number of locks).
create or replace function import_resolve_customers(v_tenant uuid) returns void
language plpgsql
as $$
declare
  k text;
  n integer;
  v_scope text := customer_scope();
begin
  analyze pg_temp.import_customer (row_no, n_npwp, n_email, n_phone, n_company, customer_id);
  -- The batch's dedup keys, serialised with every other dedup of the
  -- tenant by bucket (at most 32 locks, whatever the batch size).
  perform customer_dedup_lock(v_tenant,
                              array(select x.dedup_key
                                      from pg_temp.import_customer c
                                     cross join lateral unnest(customer_dedup_keys(c.n_npwp, c.n_email, c.n_phone, c.n_company)) x(dedup_key)),
                              true);

  -- Existing customers: probes of the natural-key indexes, in order, until
  -- one finds a customer (a coalesce stops at the first; a union of the
  -- four sorted by their order ran all four and a sort for every row).
  update pg_temp.import_customer c
     set customer_id = coalesce(
       (select x.customer_id from customers x
         where c.n_npwp is not null and x.tenant_id = v_tenant and x.npwp_norm = c.n_npwp),
       (select x.customer_id from customers x
         where c.n_email is not null and x.tenant_id = v_tenant and x.email_norm = c.n_email
           and (c.n_npwp is null or x.npwp_norm is null)
         order by x.created_at limit 1),
       (select x.customer_id from customers x
         where c.n_phone is not null and x.tenant_id = v_tenant and x.phone_norm = c.n_phone
           and (c.n_npwp is null or x.npwp_norm is null)
         order by x.created_at limit 1),
       (select x.customer_id from customers x
         where c.n_npwp is null and x.tenant_id = v_tenant and x.company_norm = c.n_company
         order by x.created_at limit 1));

  if to_regclass('pg_temp.import_new_customer') is not null then
    drop table pg_temp.import_new_customer;
  end if;
  create temp table import_new_customer (
    customer_id uuid, n_npwp text, n_email text, n_phone text, n_company text) on commit drop;

  foreach k in array array['npwp', 'email', 'phone', 'company'] loop
    exit when not exists (select 1 from pg_temp.import_customer c where c.customer_id is null);
    with ins as (
      insert into customers (tenant_id, company_name, npwp, email, phone, address, city)
      select distinct on (case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                                 when 'phone' then c.n_phone else c.n_company end)
             v_tenant, c.company_name, c.npwp, c.email, c.phone, c.address, c.city
        from pg_temp.import_customer c
       where c.customer_id is null
         and case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                    when 'phone' then c.n_phone else c.n_company end is not null
       order by case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                       when 'phone' then c.n_phone else c.n_company end, c.row_no
      on conflict (tenant_id, npwp_norm) do nothing
      returning customer_id, npwp_norm, email_norm, phone_norm, company_norm)
    insert into pg_temp.import_new_customer select * from ins;
    get diagnostics n = row_count;
    if k = 'npwp' then
      -- An NPWP a concurrent transaction inserted first: that customer.
      -- (Only for NPWPs this round did not insert: those rows find their
      -- new customer below, without a probe each.)
      update pg_temp.import_customer c
         set customer_id = (select x.customer_id from customers x
                             where x.tenant_id = v_tenant and x.npwp_norm = c.n_npwp)
       where c.customer_id is null and c.n_npwp is not null
         and not exists (select 1 from pg_temp.import_new_customer y where y.n_npwp = c.n_npwp);
    end if;
    continue when n = 0;
    analyze pg_temp.import_new_customer;
    -- The rows of the batch that share a key with a customer this round
    -- created: the same NPWP first (it outranks the other keys, and in a
    -- file of companies with an NPWP it is the only match, so the other
    -- joins run only for the rows it leaves).
    update pg_temp.import_customer c
       set customer_id = x.customer_id
      from pg_temp.import_new_customer x
     where c.customer_id is null and x.n_npwp = c.n_npwp;
    continue when not exists (select 1 from pg_temp.import_customer c where c.customer_id is null);
    update pg_temp.import_customer c
       set customer_id = m.customer_id
      from (select distinct on (u.row_no) u.row_no, u.customer_id
              from (select r.row_no, x.customer_id, 2 as o
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_email = r.n_email
                     where r.customer_id is null and (r.n_npwp is null or x.n_npwp is null)
                    union all
                    select r.row_no, x.customer_id, 3
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_phone = r.n_phone
                     where r.customer_id is null and (r.n_npwp is null or x.n_npwp is null)
                    union all
                    select r.row_no, x.customer_id, 4
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_company = r.n_company
                     where r.customer_id is null and r.n_npwp is null) u
             order by u.row_no, u.o) m
     where c.row_no = m.row_no;
  end loop;

  -- Identifiers the customer lacks (only of customers the caller may read:
  -- customer_readable), from the first row of the batch that has
  -- them (an NPWP only when no other customer holds it); a customer just
  -- created from its only row has them all. (The rows' customer_id changed
  -- since the last analyze: analyze again, or the planner re-aggregates per
  -- customer.)
  analyze pg_temp.import_customer (row_no, n_npwp, n_email, n_phone, n_company, customer_id);
  -- The customers to fill are found first: the ordered aggregates below
  -- sort per customer, which for a batch of new customers, one row each,
  -- was 5,000 sorts for nothing.
  with need as materialized (
    select c.customer_id
      from pg_temp.import_customer c
      -- (A join, not a NOT EXISTS in HAVING: that one scanned the new
      -- customers once per customer of the batch.)
      left join pg_temp.import_new_customer y on y.customer_id = c.customer_id
     where c.customer_id is not null
     group by c.customer_id
    having count(*) > 1 or count(y.customer_id) = 0),
  f as materialized (
    select c.customer_id,
           (array_agg(c.npwp order by c.row_no) filter (where c.npwp is not null))[1] as npwp,
           (array_agg(c.n_npwp order by c.row_no) filter (where c.npwp is not null))[1] as n_npwp,
           (array_agg(c.email order by c.row_no) filter (where c.email is not null))[1] as email,
           (array_agg(c.phone order by c.row_no) filter (where c.phone is not null))[1] as phone,
           (array_agg(c.address order by c.row_no) filter (where c.address is not null))[1] as address,
           (array_agg(c.city order by c.row_no) filter (where c.city is not null))[1] as city
      from pg_temp.import_customer c
      join need n on n.customer_id = c.customer_id
     group by c.customer_id)
  update customers x
     set npwp = coalesce(x.npwp, case when not exists (select 1 from customers o
                                                        where o.tenant_id = v_tenant and o.npwp_norm = f.n_npwp)
                                      then f.npwp end),
         email = coalesce(x.email, f.email),
         phone = coalesce(x.phone, f.phone),
         address = coalesce(x.address, f.address),
         city = coalesce(x.city, f.city)
    from f
   where x.tenant_id = v_tenant and x.customer_id = f.customer_id
     and customer_readable(v_scope, x.created_by, x.customer_id)
     and ((x.npwp is null and f.npwp is not null) or (x.email is null and f.email is not null)
          or (x.phone is null and f.phone is not null) or (x.address is null and f.address is not null)
          or (x.city is null and f.city is not null));
end
$$;
revoke execute on function
  import_resolve_customers(uuid)
  from public;
select pin_search_path('import_resolve_customers(uuid)');

create or replace function import_apply_customers(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_scope text := customer_scope();
begin
  -- The whole batch: the rows import_validate_customers left in
  -- pg_temp.import_customer. One row (the fallback after a failed batch):
  -- that row again, from the batch.
  if only_row is not null then
    perform import_customer_rows(only_row);
  end if;
  perform import_resolve_customers(v_tenant);
  -- A company that is already a customer the uploader may not read is
  -- neither duplicated nor changed nor shown: the row is an error. A
  -- customer this batch created is the uploader's; only the others are
  -- looked up (a NULL `readable`, a customer gone meanwhile, leaves the
  -- row without a target: an error below).
  -- (`offset 0` keeps the subquery whole: pulled up, the readability
  -- test would run once per use below, three times a row.)
  update pg_temp.import_batch b
     set target_id = case when v.readable then v.customer_id end,
         err_field = case when not v.readable then 'row' end,
         err_msg = case when not v.readable
                        then 'row: this company is already a customer outside your scope; nothing was changed' end
    from (select c.row_no, c.customer_id,
                 y.customer_id is not null
                 or (select customer_readable(v_scope, x.created_by, x.customer_id)
                       from customers x where x.tenant_id = v_tenant and x.customer_id = c.customer_id) as readable
            from pg_temp.import_customer c
            left join pg_temp.import_new_customer y on y.customer_id = c.customer_id
           where c.customer_id is not null
          offset 0) v
   where v.row_no = b.row_no;
end
$$;
revoke execute on function
  import_apply_customers(uuid, uuid, integer)
  from public;
select pin_search_path('import_apply_customers(uuid, uuid, integer)');

-- leads (crm_create_lead_bundle's rules, without the RFQ)
create or replace function import_validate_leads(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_may_assign boolean := has_permission('lead.assign');
  v_may_update boolean := has_permission('lead.update');
  v_team uuid[] := my_team_ids();
begin
  with problem as materialized (
    select b.row_no, p.f, p.msg
      from pg_temp.import_batch b
     cross join lateral (
       select split_part(v.msg, ': ', 1) as f, v.msg
         from (select 1) as one
         left join lateral (select p.user_id from profiles p
                             where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'sales_owner_email'))
                               and p.active and p.app_role in ('salesperson', 'sales_manager')) o on true
         left join lateral (select x.lead_id, x.lead_no, x.sales_owner_user_id, x.created_by, x.handed_over from leads x
                             where x.tenant_id = v_tenant and x.external_ref = import_cell(b.d, 'external_ref')) l on true
         cross join lateral (select coalesce(
           'external_ref: ' || coalesce(import_problem_text(import_cell(b.d, 'external_ref'), true, 100),
                     case when import_cell(b.d, 'external_ref') ~ '[[:cntrl:]]' then 'must not contain control characters' end),
           'channel: ' || case when import_cell(b.d, 'channel') is null then 'required'
                 -- (the key lookup first: only a bad row pays for the message)
                 when not exists (select 1 from lead_channels c where c.code = lower(import_cell(b.d, 'channel')))
                 then vocabulary_problem('lead_channels', lower(import_cell(b.d, 'channel'))) end,
           'company_name: ' || case when import_cell(b.d, 'company_name') is null
                      or bizos.norm_company(import_cell(b.d, 'company_name')) is null
                      or length(import_cell(b.d, 'company_name')) > 200
                 then 'required, up to 200 characters' end,
           'contact_name: ' || import_problem_text(import_cell(b.d, 'contact_name'), false, 200),
           'contact_email: ' || import_problem_contact(import_cell(b.d, 'contact_email'), 'email'),
           'contact_phone: ' || import_problem_contact(import_cell(b.d, 'contact_phone'), 'phone'),
           'npwp: ' || case when import_cell(b.d, 'npwp') is not null and bizos.norm_npwp(import_cell(b.d, 'npwp')) is null
                 then format('%L is not a valid NPWP', import_cell(b.d, 'npwp')) end,
           'city: ' || import_problem_text(import_cell(b.d, 'city'), false, 200),
           'notes: ' || import_problem_text(import_cell(b.d, 'notes'), false, 2000),
           'sales_owner_email: ' || case when import_cell(b.d, 'sales_owner_email') is null then null
                 when o.user_id is null
                 then format('%s is not an active salesperson or sales manager of this tenant', import_cell(b.d, 'sales_owner_email'))
                 when v_role = 'salesperson' and o.user_id <> v_uid then 'a salesperson creates leads for themselves'
                 when v_role <> 'salesperson' and not v_may_assign then format('your role (%s) may not assign leads', v_role) end,
           'external_ref: ' || case when l.lead_id is not null and not (v_may_update
                   and (v_role in ('super_admin', 'marketing_manager')
                        or l.sales_owner_user_id = any (v_team) or (l.created_by = any (v_team) and not l.handed_over)))
                 then format('lead %s already has this external_ref and is not yours to update', l.lead_no) end) as msg) v
        where v.msg is not null) p
     where b.err_field is null)
  update pg_temp.import_batch b
     set err_field = problem.f, err_msg = problem.msg
    from problem
   where b.row_no = problem.row_no;
end
$$;
revoke execute on function
  import_validate_leads(uuid)
  from public;
select pin_search_path('import_validate_leads(uuid)');

create or replace function import_apply_leads(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_scope text := customer_scope();
begin
  if to_regclass('pg_temp.import_lead') is not null then
    drop table pg_temp.import_lead;
  end if;
  create temp table import_lead on commit drop as
  select b.row_no,
         import_cell(b.d, 'external_ref') as external_ref,
         lower(import_cell(b.d, 'channel')) as channel,
         import_cell(b.d, 'company_name') as company_name,
         import_cell(b.d, 'contact_name') as contact_name,
         import_cell(b.d, 'contact_email') as contact_email,
         import_cell(b.d, 'contact_phone') as contact_phone,
         import_cell(b.d, 'npwp') as npwp,
         import_cell(b.d, 'city') as city,
         import_cell(b.d, 'notes') as notes,
         case when v_role = 'salesperson' then v_uid
              else (select p.user_id from profiles p
                     where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'sales_owner_email'))) end as owner,
         null::uuid as customer_id,
         null::uuid as prospect_id,
         false as handed_over
    from pg_temp.import_batch b
   where b.err_field is null and (only_row is null or b.row_no = only_row);

  -- New leads: the first row of each external_ref not known yet.
  if to_regclass('pg_temp.import_customer') is not null then
    drop table pg_temp.import_customer;
  end if;
  create temp table import_customer on commit drop as
  select distinct on (l.external_ref)
         l.row_no, l.company_name, l.npwp, l.contact_email as email, l.contact_phone as phone,
         null::text as address, l.city,
         bizos.norm_npwp(l.npwp) as n_npwp, bizos.norm_email(l.contact_email) as n_email,
         bizos.norm_phone(l.contact_phone) as n_phone, bizos.norm_company(l.company_name) as n_company,
         null::uuid as customer_id
    from pg_temp.import_lead l
   where not exists (select 1 from leads x where x.tenant_id = v_tenant and x.external_ref = l.external_ref)
   order by l.external_ref, l.row_no;
  perform import_resolve_customers(v_tenant);
  update pg_temp.import_lead l set customer_id = c.customer_id
    from pg_temp.import_customer c where c.row_no = l.row_no;

  -- The handover rule of crm_create_lead_bundle: a customer the uploader may
  -- not read keeps its owner, who gets the lead (none: unassigned).
  update pg_temp.import_lead l
     set handed_over = true, owner = o.owner_user_id
    from customers x
    left join lateral customer_current_owner(x.customer_id) o on true
   where l.customer_id is not null and x.tenant_id = v_tenant and x.customer_id = l.customer_id
     and not customer_readable(v_scope, x.created_by, x.customer_id);

  -- Prospects as find_or_create_prospect: one per customer and owner
  -- (their customers' tickets and invoices follow them: every bucket of
  -- the sales owners' locks first, in order, so that the rows take none).
  perform sales_owners_lock_all(true);
  insert into prospects (tenant_id, customer_id, owner_user_id)
  select distinct v_tenant, l.customer_id, l.owner from pg_temp.import_lead l where l.customer_id is not null
  on conflict (tenant_id, customer_id, owner_user_id) do nothing;
  update pg_temp.import_lead l set prospect_id = p.prospect_id
    from prospects p
   where l.customer_id is not null and p.tenant_id = v_tenant and p.customer_id = l.customer_id
     and p.owner_user_id is not distinct from l.owner;

  insert into leads (tenant_id, channel, status, company_name, contact_name, contact_email, contact_phone,
                     npwp, city, notes, customer_id, prospect_id, sales_owner_user_id, assigned_at, external_ref,
                     handed_over)
  select v_tenant, l.channel, case when l.owner is null then 'NEW' else 'ASSIGNED' end, l.company_name,
         l.contact_name, l.contact_email, l.contact_phone, l.npwp, l.city, l.notes,
         l.customer_id, l.prospect_id, l.owner, case when l.owner is not null then now() end, l.external_ref,
         l.handed_over
    from pg_temp.import_lead l
   where l.customer_id is not null
   order by l.row_no
  on conflict (tenant_id, external_ref) do nothing;

  -- A known external_ref: the contact fields a lead editor may change, from
  -- the last row of the batch with that reference (as if sent in order).
  update leads x
     set channel = u.channel, contact_name = u.contact_name, contact_email = u.contact_email,
         contact_phone = u.contact_phone, city = coalesce(u.city, x.city), notes = coalesce(u.notes, x.notes)
    from (select distinct on (l.external_ref) l.* from pg_temp.import_lead l
           order by l.external_ref, l.row_no desc) u
   where x.tenant_id = v_tenant and x.external_ref = u.external_ref
     and (x.channel, x.contact_name, x.contact_email, x.contact_phone, x.city, x.notes)
         is distinct from (u.channel, u.contact_name, u.contact_email, u.contact_phone,
                           coalesce(u.city, x.city), coalesce(u.notes, x.notes));

  update pg_temp.import_batch b set target_id = x.lead_id
    from pg_temp.import_lead l
    join leads x on x.tenant_id = v_tenant and x.external_ref = l.external_ref
   where l.row_no = b.row_no;
end
$$;
revoke execute on function
  import_apply_leads(uuid, uuid, integer)
  from public;
select pin_search_path('import_apply_leads(uuid, uuid, integer)');

-- invoices (invoice_create's rules; the tenant's today for default and
-- "in the future" dates)
create or replace function import_validate_invoices(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  with problem as materialized (
    select b.row_no, p.f, p.msg
      from pg_temp.import_batch b
     cross join lateral (
       select split_part(v.msg, ': ', 1) as f, v.msg
         from (select 1) as one
         left join lateral (
           select count(*) as n
             from (select 1 from customers x
                    where import_cell(b.d, 'customer_npwp') is not null and x.tenant_id = v_tenant
                      and x.npwp_norm = bizos.norm_npwp(import_cell(b.d, 'customer_npwp'))
                   union all
                   select 1 from customers x
                    where import_cell(b.d, 'customer_npwp') is null and x.tenant_id = v_tenant
                      and x.email_norm = bizos.norm_email(import_cell(b.d, 'customer_email'))) m) c on true
         cross join lateral (select coalesce(
           'external_ref: ' || coalesce(import_problem_text(import_cell(b.d, 'external_ref'), true, 100),
                     case when import_cell(b.d, 'external_ref') ~ '[[:cntrl:]]' then 'must not contain control characters' end),
           'customer_npwp: ' || case when import_cell(b.d, 'customer_npwp') is null then
                   case when import_cell(b.d, 'customer_email') is null then 'is required (or customer_email)' end
                 when import_cell(b.d, 'customer_email') is not null then 'send either customer_npwp or customer_email, not both'
                 when bizos.norm_npwp(import_cell(b.d, 'customer_npwp')) is null
                 then format('%L is not a valid NPWP', import_cell(b.d, 'customer_npwp'))
                 when c.n = 0 then format('no customer with NPWP %s', import_cell(b.d, 'customer_npwp')) end,
           'customer_email: ' || case when import_cell(b.d, 'customer_email') is null or import_cell(b.d, 'customer_npwp') is not null then null
                 when bizos.norm_email(import_cell(b.d, 'customer_email')) is null
                 then format('%L is not a valid e-mail address', import_cell(b.d, 'customer_email'))
                 when c.n = 0 then format('no customer with e-mail %s', import_cell(b.d, 'customer_email'))
                 when c.n > 1 then format('%s customers have e-mail %s; use customer_npwp', c.n, import_cell(b.d, 'customer_email')) end,
           'issue_date: ' || import_problem_date(import_cell(b.d, 'issue_date'), false),
           'due_date: ' || import_problem_date(import_cell(b.d, 'due_date'), false),
           'terms_days: ' || coalesce(import_problem_number(import_cell(b.d, 'terms_days'), false, 0),
                     case when import_cell(b.d, 'terms_days') is not null and import_cell(b.d, 'due_date') is not null
                          then 'send either due_date or terms_days, not both'
                          when import_cell(b.d, 'terms_days')::numeric not between 0 and 365
                          then 'must be between 0 and 365' end),
           'due_date: ' || case when import_date(import_cell(b.d, 'due_date'))
                      < coalesce(import_date(import_cell(b.d, 'issue_date')), v_today)
                 then format('%s is before the issue date %s', import_cell(b.d, 'due_date'),
                             coalesce(import_date(import_cell(b.d, 'issue_date')), v_today)) end,
           'currency: ' || case when import_cell(b.d, 'currency') is not null and upper(import_cell(b.d, 'currency')) !~ '^[A-Z]{3}$'
                 then 'must be an ISO 4217 code such as IDR' end,
           'subtotal: ' || coalesce(import_problem_number(import_cell(b.d, 'subtotal'), true, 2),
                     case when import_cell(b.d, 'subtotal')::numeric <= 0 then 'must be greater than 0' end),
           'tax: ' || coalesce(import_problem_number(import_cell(b.d, 'tax'), true, 2),
                     case when import_cell(b.d, 'tax')::numeric < 0
                          then 'must be 0 or more (PPN: 12% of a DPP of 11/12 of the price, i.e. 11%, for non-luxury goods)'
                          when import_problem_number(import_cell(b.d, 'subtotal'), true, 2) is null
                               and import_cell(b.d, 'tax')::numeric > import_cell(b.d, 'subtotal')::numeric
                          then 'cannot exceed the subtotal' end),
           'status: ' || case when import_cell(b.d, 'status') is not null and upper(import_cell(b.d, 'status')) not in ('DRAFT', 'ISSUED')
                 then 'a new invoice is DRAFT or ISSUED' end,
           'notes: ' || import_problem_text(import_cell(b.d, 'notes'), false, 2000)) as msg) v
        where v.msg is not null) p
     where b.err_field is null)
  update pg_temp.import_batch b
     set err_field = problem.f, err_msg = problem.msg
    from problem
   where b.row_no = problem.row_no;
end
$$;
revoke execute on function
  import_validate_invoices(uuid)
  from public;
select pin_search_path('import_validate_invoices(uuid)');

create or replace function import_apply_invoices(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  if to_regclass('pg_temp.import_invoice') is not null then
    drop table pg_temp.import_invoice;
  end if;
  create temp table import_invoice on commit drop as
  select x.*, coalesce(x.due, x.issue + coalesce(x.terms, 30)) as due_date
    from (select b.row_no,
                 import_cell(b.d, 'external_ref') as external_ref,
                 (select c.customer_id from customers c
                   where import_cell(b.d, 'customer_npwp') is not null and c.tenant_id = v_tenant
                     and c.npwp_norm = bizos.norm_npwp(import_cell(b.d, 'customer_npwp'))
                  union all
                  select c.customer_id from customers c
                   where import_cell(b.d, 'customer_npwp') is null and c.tenant_id = v_tenant
                     and c.email_norm = bizos.norm_email(import_cell(b.d, 'customer_email'))) as customer_id,
                 coalesce(import_date(import_cell(b.d, 'issue_date')), v_today) as issue,
                 import_date(import_cell(b.d, 'due_date')) as due,
                 import_cell(b.d, 'terms_days')::integer as terms,
                 upper(coalesce(import_cell(b.d, 'currency'), 'IDR')) as currency,
                 import_cell(b.d, 'subtotal')::numeric as subtotal,
                 import_cell(b.d, 'tax')::numeric as tax,
                 upper(coalesce(import_cell(b.d, 'status'), 'ISSUED')) as status,
                 import_cell(b.d, 'notes') as notes
            from pg_temp.import_batch b
           where b.err_field is null and (only_row is null or b.row_no = only_row)) x;

  -- The invoices read their sales owners: every bucket's lock first, in
  -- order, so that the rows take none (sales_owners_lock).
  perform sales_owners_lock_all(false);
  insert into invoices (tenant_id, customer_id, issue_date, due_date, currency, subtotal, tax, status, notes, external_ref)
  select v_tenant, i.customer_id, i.issue, i.due_date, i.currency, i.subtotal, i.tax, i.status, i.notes, i.external_ref
    from (select distinct on (i.external_ref) i.* from pg_temp.import_invoice i order by i.external_ref, i.row_no) i
   where not exists (select 1 from invoices x where x.tenant_id = v_tenant and x.external_ref = i.external_ref)
   order by i.row_no
  on conflict (tenant_id, external_ref) do nothing;

  -- Every row now names an invoice: the one it created, or one imported
  -- before (a replay when the values are the same, an error otherwise).
  update pg_temp.import_batch b
     set target_id = case when same then x.invoice_id end,
         err_field = case when not same then 'external_ref' end,
         err_msg = case when not same then format('external_ref: invoice %s was imported with this external_ref and other values (customer, dates, currency or amounts)', x.invoice_no) end
    from pg_temp.import_invoice i
    join invoices x on x.tenant_id = v_tenant and x.external_ref = i.external_ref
   cross join lateral (select (x.customer_id, x.issue_date, x.due_date, x.currency, x.subtotal, x.tax)
                              = (i.customer_id, i.issue, i.due_date, i.currency, i.subtotal, i.tax) as same) s
   where i.row_no = b.row_no;
end
$$;
revoke execute on function
  import_apply_invoices(uuid, uuid, integer)
  from public;
select pin_search_path('import_apply_invoices(uuid, uuid, integer)');

-- payments (payment_record's rules)
create or replace function import_validate_payments(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  with problem as materialized (
    select b.row_no, p.f, p.msg
      from pg_temp.import_batch b
     cross join lateral (
       select split_part(v.msg, ': ', 1) as f, v.msg
         from (select 1) as one
         left join lateral (
           select x.invoice_id from invoices x
            where import_cell(b.d, 'invoice_no') is not null
              and x.tenant_id = v_tenant and x.invoice_no = import_cell(b.d, 'invoice_no')
           union all
           select x.invoice_id from invoices x
            where import_cell(b.d, 'invoice_no') is null
              and x.tenant_id = v_tenant and x.external_ref = import_cell(b.d, 'invoice_ref')) inv on true
         cross join lateral (select coalesce(
           'invoice_no: ' || case when import_cell(b.d, 'invoice_no') is null then
                   case when import_cell(b.d, 'invoice_ref') is null then 'is required (or invoice_ref)' end
                 when import_cell(b.d, 'invoice_ref') is not null then 'send either invoice_no or invoice_ref, not both'
                 when inv.invoice_id is null then format('invoice %s not found', import_cell(b.d, 'invoice_no')) end,
           'invoice_ref: ' || case when import_cell(b.d, 'invoice_ref') is not null and import_cell(b.d, 'invoice_no') is null
                      and inv.invoice_id is null
                 then format('no invoice was imported with external_ref %s', import_cell(b.d, 'invoice_ref')) end,
           'reference: ' || coalesce(import_problem_text(import_cell(b.d, 'reference'), true, 200),
                     case when import_cell(b.d, 'reference') ~ '[[:cntrl:]]' then 'must not contain control characters' end),
           'amount: ' || coalesce(import_problem_number(import_cell(b.d, 'amount'), true, 2),
                     case when import_cell(b.d, 'amount')::numeric <= 0 then 'must be greater than 0' end),
           'paid_on: ' || coalesce(import_problem_date(import_cell(b.d, 'paid_on'), false),
                     case when import_date(import_cell(b.d, 'paid_on')) > v_today
                          then format('%s is in the future', import_cell(b.d, 'paid_on')) end),
           'method: ' || case when import_cell(b.d, 'method') is not null
                      and not exists (select 1 from payment_methods m where m.code = lower(import_cell(b.d, 'method')))
                 then vocabulary_problem('payment_methods', lower(import_cell(b.d, 'method'))) end,
           'notes: ' || import_problem_text(import_cell(b.d, 'notes'), false, 2000)) as msg) v
        where v.msg is not null) p
     where b.err_field is null)
  update pg_temp.import_batch b
     set err_field = problem.f, err_msg = problem.msg
    from problem
   where b.row_no = problem.row_no;
end
$$;
revoke execute on function
  import_validate_payments(uuid)
  from public;
select pin_search_path('import_validate_payments(uuid)');

create or replace function import_apply_payments(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  if to_regclass('pg_temp.import_payment') is not null then
    drop table pg_temp.import_payment;
  end if;
  create temp table import_payment on commit drop as
  select b.row_no,
         (select x.invoice_id from invoices x
           where import_cell(b.d, 'invoice_no') is not null
             and x.tenant_id = v_tenant and x.invoice_no = import_cell(b.d, 'invoice_no')
          union all
          select x.invoice_id from invoices x
           where import_cell(b.d, 'invoice_no') is null
             and x.tenant_id = v_tenant and x.external_ref = import_cell(b.d, 'invoice_ref')) as invoice_id,
         import_cell(b.d, 'reference') as reference,
         import_cell(b.d, 'amount')::numeric as amount,
         coalesce(import_date(import_cell(b.d, 'paid_on')), v_today) as paid_on,
         lower(coalesce(import_cell(b.d, 'method'), 'bank_transfer')) as method,
         import_cell(b.d, 'notes') as notes,
         false as fresh, null::text as err_field, null::text as err_msg
    from pg_temp.import_batch b
   where b.err_field is null and (only_row is null or b.row_no = only_row);

  -- The invoices first, in a fixed order: concurrent payments queue here as
  -- they do in payment_record.
  perform 1 from invoices x
   where x.tenant_id = v_tenant and x.invoice_id in (select p.invoice_id from pg_temp.import_payment p)
   order by x.invoice_id
   for update;

  -- The first row of the batch for an invoice and reference is a new
  -- payment unless one is recorded with that reference (a replay, never
  -- inserted: the BEFORE triggers would check it as a new payment).
  update pg_temp.import_payment p set fresh = true
   where p.row_no = (select min(q.row_no) from pg_temp.import_payment q
                      where q.invoice_id = p.invoice_id and q.reference = p.reference)
     and not exists (select 1 from payments y
                      where y.tenant_id = v_tenant and y.invoice_id = p.invoice_id and y.reference = p.reference);

  -- New payments must fit the invoice: ISSUED, paid on or after the issue
  -- date, and within the outstanding amount after the batch's earlier new
  -- payments of that invoice (the first row over it fails, then the next
  -- rows are checked again without it, as if they were sent in order).
  update pg_temp.import_payment p
     set err_field = case when i.status <> 'ISSUED' then 'invoice_id' else 'paid_on' end,
         err_msg = case when i.status <> 'ISSUED'
                        then format('invoice_id: invoice %s is %s; only ISSUED invoices take payments', i.invoice_no, i.status)
                        else format('paid_on: %s is before the issue date %s of invoice %s', p.paid_on, i.issue_date, i.invoice_no) end
    from invoices i
   where p.fresh and i.tenant_id = v_tenant and i.invoice_id = p.invoice_id
     and (i.status <> 'ISSUED' or p.paid_on < i.issue_date);
  loop
    update pg_temp.import_payment p
       set err_field = 'amount',
           err_msg = format('amount: %s exceeds the outstanding %s of invoice %s',
                            p.amount, o.total - o.amount_paid - o.amount_credited - (o.running - p.amount), o.invoice_no)
      from (select distinct on (r.invoice_id) r.row_no, r.running, i.total, i.amount_paid, i.amount_credited, i.invoice_no
              from (select q.row_no, q.invoice_id,
                           sum(q.amount) over (partition by q.invoice_id order by q.row_no) as running
                      from pg_temp.import_payment q
                     where q.fresh and q.err_field is null) r
              join invoices i on i.tenant_id = v_tenant and i.invoice_id = r.invoice_id
             where r.running > i.total - i.amount_paid - i.amount_credited
             order by r.invoice_id, r.row_no) o
     where p.row_no = o.row_no;
    exit when not found;
  end loop;

  insert into payments (tenant_id, invoice_id, paid_on, amount, method, reference, notes)
  select v_tenant, p.invoice_id, p.paid_on, p.amount, p.method, p.reference, p.notes
    from pg_temp.import_payment p
   where p.fresh and p.err_field is null
   order by p.row_no;

  -- Every valid row now names a payment: its own, or a recorded one with the
  -- same reference (a replay when amount, date and method agree).
  update pg_temp.import_batch b
     set target_id = case when p.err_field is null and s.same then y.payment_id end,
         err_field = case when p.err_field is not null then import_error_field('payments', array['invoice_no', 'invoice_ref', 'reference', 'amount', 'paid_on', 'method', 'notes'], b.d, p.err_field, null)
                          when not s.same then 'reference' end,
         err_msg = case when p.err_field is not null then import_error_field('payments', array['invoice_no', 'invoice_ref', 'reference', 'amount', 'paid_on', 'method', 'notes'], b.d, p.err_field, null)
                                                          || ': ' || substr(p.err_msg, length(p.err_field) + 3)
                        when y.payment_id is null
                        then 'reference: an earlier row with this invoice and reference was not recorded'
                        when not s.same then format('reference: %s is already recorded as payment %s with other values (amount, paid_on or method)',
                                                    p.reference, y.payment_no) end
    from pg_temp.import_payment p
    left join payments y on y.tenant_id = v_tenant and y.invoice_id = p.invoice_id and y.reference = p.reference
   cross join lateral (select coalesce((y.amount, y.paid_on, y.method) = (p.amount, p.paid_on, p.method), false) as same) s
   where p.row_no = b.row_no;
end
$$;
revoke execute on function
  import_apply_payments(uuid, uuid, integer)
  from public;
select pin_search_path('import_apply_payments(uuid, uuid, integer)');

-- kpi_entries (kpi_entry_create's rules, source IMPORTED)
create or replace function import_validate_kpi_entries(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_team uuid[] := my_team_ids();
begin
  with problem as materialized (
    select b.row_no, p.f, p.msg
      from pg_temp.import_batch b
     cross join lateral (
       select split_part(v.msg, ': ', 1) as f, v.msg
         from (select 1) as one
         left join lateral (select k.metric_key, k.source, k.active, k.unit from kpi_metric_definitions k
                             where k.tenant_id = v_tenant and k.metric_key = import_cell(b.d, 'metric_key')) m on true
         left join lateral (select p.user_id from profiles p
                             where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'assignee_email'))
                               and p.active) a on true
         cross join lateral (select coalesce(
           'metric_key: ' || case when import_cell(b.d, 'metric_key') is null then 'is required'
                 when m.metric_key is null then format('no metric %s in this tenant', import_cell(b.d, 'metric_key'))
                 when m.source = 'AUTO' then format('%s is computed automatically from the data; it takes no entries', m.metric_key)
                 when not m.active then format('%s is inactive', m.metric_key) end,
           'value: ' || coalesce(import_problem_number(import_cell(b.d, 'value'), true, 4),
                     case when m.unit in ('count', 'IDR', 'minutes', 'days') and import_cell(b.d, 'value')::numeric < 0
                          then format('a %s cannot be negative', m.unit) end),
           'entry_date: ' || coalesce(import_problem_date(import_cell(b.d, 'entry_date'), true),
                     case when import_date(import_cell(b.d, 'entry_date')) > v_today
                          then format('%s is in the future; actuals are entered for days that happened', import_cell(b.d, 'entry_date')) end),
           'assignee_email: ' || case when import_cell(b.d, 'assignee_email') is null then null
                 when a.user_id is null then format('no active user with e-mail %s in the tenant', import_cell(b.d, 'assignee_email'))
                 when a.user_id <> v_uid and not (v_role = 'super_admin'
                        or (v_role in ('marketing_manager', 'sales_manager') and a.user_id = any (v_team)))
                 then 'you enter actuals for yourself (managers also for their team)' end,
           'notes: ' || import_problem_text(import_cell(b.d, 'notes'), false, 2000)) as msg) v
        where v.msg is not null) p
     where b.err_field is null)
  update pg_temp.import_batch b
     set err_field = problem.f, err_msg = problem.msg
    from problem
   where b.row_no = problem.row_no;
end
$$;
revoke execute on function
  import_validate_kpi_entries(uuid)
  from public;
select pin_search_path('import_validate_kpi_entries(uuid)');
