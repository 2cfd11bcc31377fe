-- CRM: customers (dedup and who may read one), prospects and their stages,
-- leads (the lead bundle, updates, assignment).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- Does the caller's team own a prospect of this customer? (AR and customer scope.)
-- (PL/pgSQL, as sees_all_crm below: as a SQL function with a pinned search
-- path it was never inlined, and its query was parsed and planned again in
-- every statement that called it, 84 µs each time; half the lead bundles
-- of a salesperson paid for it, through customer_readable.)
create or replace function owns_customer(customer uuid) returns boolean
language plpgsql stable
as $$
begin
  return exists (
    select 1 from prospects p
     where p.tenant_id = bizos.tenant_id()
       and p.customer_id = owns_customer.customer
       and p.owner_user_id = any ((select my_team_ids())::uuid[]));
end
$$;
select pin_search_path('owns_customer(uuid)');
grant execute on function owns_customer(uuid) to bizos_authenticated;

-- Callers who see every CRM row of their tenant: the CRM's managing roles
-- and holders of crm.read_all (API keys with a leads scope, or a role the
-- tenant granted it).
-- (PL/pgSQL, as customer_scope and customer_current_owner: a SQL function
-- with a pinned search path is never inlined and was planned on every
-- call.)
create or replace function sees_all_crm() returns boolean
language plpgsql stable
as $$
begin
  return bizos.app_role() in ('super_admin', 'director', 'marketing_manager')
         or has_permission('crm.read_all');
end
$$;
select pin_search_path('sees_all_crm()');
grant execute on function sees_all_crm() to bizos_authenticated;

-- A stage change writes the stage history and a sales activity: nobody logs
-- it twice. Runs as the table owner (users cannot write history directly).
create or replace function record_stage_change() returns trigger
language plpgsql security definer
as $$
begin
  insert into prospect_stage_history (tenant_id, prospect_id, from_stage, to_stage)
  values (new.tenant_id, new.prospect_id, case when tg_op = 'UPDATE' then old.stage end, new.stage);
  if tg_op = 'UPDATE' and new.owner_user_id is not null then
    insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, summary)
    values (new.tenant_id, new.owner_user_id, 'stage_change', 'derived', new.customer_id, new.prospect_id,
            format('Stage %s → %s', old.stage, new.stage));
  end if;
  return null;
end
$$;
select pin_search_path('record_stage_change()');
revoke execute on function record_stage_change() from public;

-- Moves a prospect to another stage; the lifecycle guard checks the
-- transition, the trigger writes history and the activity.
create or replace function prospect_change_stage(prospect_id uuid, to_stage text, note text default null) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  v_from text;
begin
  perform require_permission('prospect.stage');
  if prospect_id is null then
    raise exception using errcode = 'P0001', column = 'prospect_id', message = 'prospect_id: required';
  end if;
  if nullif(btrim(to_stage), '') is null then
    raise exception using errcode = 'P0001', column = 'stage', message = 'stage: required';
  end if;
  select p.stage into v_from from prospects p
   where p.tenant_id = v_tenant and p.prospect_id = prospect_change_stage.prospect_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'prospect_id', message = 'prospect_id: no such prospect';
  end if;
  update prospects p
     set stage = upper(btrim(to_stage)),
         notes = coalesce(nullif(btrim(note), ''), p.notes)
   where p.tenant_id = bizos.tenant_id() and p.prospect_id = prospect_change_stage.prospect_id;
  if not found then
    raise exception using errcode = '42501', message = 'you may not move this prospect';
  end if;
  return jsonb_build_object('prospect_id', prospect_id, 'from', v_from, 'to', upper(btrim(to_stage)));
end
$$;
grant execute on function prospect_change_stage(uuid, text, text) to bizos_authenticated;

-- The caller's customer scope, once per statement: 'all' for CRM managers,
-- directors and finance, else 'own' (the customers they created or whose
-- prospect their team owns).
create or replace function customer_scope() returns text
language plpgsql stable
as $$
begin
  return case when sees_all_crm() or bizos.app_role() = 'finance' then 'all' else 'own' end;
end
$$;
select pin_search_path('customer_scope()');
grant execute on function customer_scope() to bizos_authenticated;

-- THE rule for reading a customer row. The customers select policy calls it
-- (with the scope as a once-per-statement subquery), and so does every
-- function that runs as the owner and must not show or touch more than the
-- caller may read: one source of truth.
-- It has no SET clause on purpose, so that PostgreSQL inlines it into the
-- policy (a pinned search path stops inlining: counting 200,000 customers as
-- a director took 450 ms instead of 20 ms). Instead its body names
-- everything with its schema (owns_customer's, resolved when this file
-- runs), so it resolves no name through the caller's search path.
do $do$
begin
  execute format($f$
    create or replace function customer_readable(scope text, created_by uuid, customer_id uuid) returns boolean
    language sql stable
    as $$
      select scope = 'all' or created_by = bizos.uid() or %1$I.owns_customer(customer_id)
    $$ $f$, (select n.nspname from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
              where p.oid = 'owns_customer(uuid)'::regprocedure));
end
$do$;
grant execute on function customer_readable(text, uuid, uuid) to bizos_authenticated;

-- The customers a prospect of the caller's team belongs to: what
-- owns_customer(customer) asks of one customer, as one array.
create or replace function team_customer_ids() returns uuid[]
language plpgsql stable security definer
as $$
declare
  -- The team as a value: a call in the statement would be a filter of
  -- each prospect the prospects policy's bitmap fetches.
  v_team constant uuid[] := my_team_ids();
begin
  -- As the owner: the prospects policy lets every caller read the
  -- prospects their team owns, so it removes none of these, and without
  -- it they are an index-only scan of prospects_owner_customer_idx. In
  -- order, so that two reads of the same team compare equal (team_ids_are).
  return array(select distinct p.customer_id from prospects p
                where p.tenant_id = bizos.tenant_id()
                  and p.owner_user_id = any (v_team)
                order by p.customer_id);
end
$$;
select pin_search_path('team_customer_ids()');
revoke execute on function team_customer_ids() from public;
grant execute on function team_customer_ids() to bizos_authenticated;
comment on function team_customer_ids() is
  'The customers of which the caller''s team owns a prospect, in order (owns_customer as a set, for the customers policy: team_ids).';

-- The sales owners of a ticket or an invoice (V57's sales_owners, which
-- the sales roles' branch of their select policies tests against the
-- caller's team: policy_team_owns_any, platform.sql): the users owning a
-- prospect of its customer and its lead's sales owner, distinct, in
-- order. As the owner (a trigger's read must not depend on the writer's
-- RLS scope); index-only scans of prospects_customer_id_owner_user_id_key
-- and leads_pkey. Volatile, so that under READ COMMITTED each call reads
-- what is committed when it runs (a row an update waited for is derived
-- again from the latest prospects, not the statement's start).
create or replace function sales_owners_of(tenant uuid, customer uuid, lead uuid) returns uuid[]
language plpgsql volatile security definer
as $$
begin
  return array(select distinct x.user_id
                 from (select p.owner_user_id as user_id from prospects p
                        where p.tenant_id = tenant and p.customer_id = customer
                          and p.owner_user_id is not null
                       union all
                       select l.sales_owner_user_id from leads l
                        where l.tenant_id = tenant and l.lead_id = lead
                          and l.sales_owner_user_id is not null) x
                order by x.user_id);
end
$$;
select pin_search_path('sales_owners_of(uuid, uuid, uuid)');
revoke execute on function sales_owners_of(uuid, uuid, uuid) from public;
comment on function sales_owners_of(uuid, uuid, uuid) is
  'The users owning a prospect of the customer or the lead (sales owner): a ticket''s or an invoice''s sales_owners.';

-- The advisory lock of the sales owners of one customer or lead. A writer
-- of a ticket or an invoice takes it shared before it reads the owners
-- (sales_owners_derive); a change of the owners (a prospect, a lead's
-- sales owner) takes it exclusively before it updates the rows of that
-- customer or lead (sales_owners_follow_*). So a row written while its
-- customer's prospect is reassigned either waits for the reassignment and
-- reads its result, or is committed before the reassignment's update
-- reads the rows, which then finds it.
-- A customer or lead falls in one of 32 buckets of its tenant, and the
-- lock is the bucket's (1936682863, hashtext(tenant/bucket)): a batch of
-- thousands of rows (an import of invoices or of leads with their
-- prospects) holds at most 32 of these, where one per customer filled the
-- cluster's lock table (max_locks_per_transaction x max_connections,
-- shared by every session: 53200 for all; see customer_dedup_lock). Two
-- customers of one bucket wait for each other's reassignment, no more.
-- A bulk writer takes every bucket first, in order (sales_owners_lock_all),
-- so that its rows' locks, taken in row order, are already held and no two
-- bulk writers deadlock.
-- The lock id of a tenant's bucket (0-31): the one expression both
-- functions below take their locks by.
create or replace function sales_owners_lock_id(tenant uuid, bucket integer) returns integer
language sql immutable parallel safe
as $$ select pg_catalog.hashtext(tenant::text || '/' || bucket::text) $$;
comment on function sales_owners_lock_id(uuid, integer) is
  'The advisory lock id (1936682863, id) of a bucket (0-31) of a tenant''s sales owners.';

create or replace function sales_owners_lock(tenant uuid, id uuid, exclusive boolean) returns void
language plpgsql volatile
as $$
declare
  v_lock constant integer := sales_owners_lock_id(tenant, pg_catalog.hashtext(id::text) & 31);
begin
  if id is null then
    return;
  end if;
  -- 1936682863: 'sown' (the class of these locks).
  if exclusive then
    perform pg_catalog.pg_advisory_xact_lock(1936682863, v_lock);
  else
    perform pg_catalog.pg_advisory_xact_lock_shared(1936682863, v_lock);
  end if;
end
$$;
select pin_search_path('sales_owners_lock(uuid, uuid, boolean)');
revoke execute on function sales_owners_lock(uuid, uuid, boolean) from public;
comment on function sales_owners_lock(uuid, uuid, boolean) is
  'Takes the transaction''s advisory lock of the sales owners of a customer or lead: its bucket''s, one of 32 a tenant (shared by the writers of tickets and invoices).';

-- Every bucket lock of the caller's tenant's sales owners, in the order of
-- their ids: what a batch writing many tickets, invoices or prospects
-- takes before its rows do (the imports, as the uploader). The caller's
-- own tenant only; its users may write those rows anyway.
create or replace function sales_owners_lock_all(exclusive boolean) returns void
language plpgsql volatile security definer
as $$
declare
  v_tenant constant uuid := bizos.tenant_id();
begin
  if v_tenant is null then
    return;
  end if;
  if exclusive then
    perform pg_catalog.pg_advisory_xact_lock(1936682863, b.lock_id)
       from (select distinct sales_owners_lock_id(v_tenant, k) as lock_id
               from pg_catalog.generate_series(0, 31) k) b
      order by b.lock_id;
  else
    perform pg_catalog.pg_advisory_xact_lock_shared(1936682863, b.lock_id)
       from (select distinct sales_owners_lock_id(v_tenant, k) as lock_id
               from pg_catalog.generate_series(0, 31) k) b
      order by b.lock_id;
  end if;
end
$$;
select pin_search_path('sales_owners_lock_all(boolean)');
revoke execute on function sales_owners_lock_all(boolean) from public;
grant execute on function sales_owners_lock_all(boolean) to bizos_authenticated;
comment on function sales_owners_lock_all(boolean) is
  'Takes every bucket lock of the caller''s tenant''s sales owners in order (a batch writer, before its rows).';

-- BEFORE INSERT OR UPDATE of tickets and invoices: sales_owners is
-- derived, on every write, from the row's customer (TG_ARGV[0]) and lead
-- (TG_ARGV[1], or none): no writer sets it (an API caller who could would
-- choose who reads the row), and an update made to derive it again
-- (sales_owners_follow_*) needs no value.
create or replace function sales_owners_derive() returns trigger
language plpgsql security definer
as $$
declare
  v_customer uuid := (pg_catalog.to_jsonb(new) ->> tg_argv[0])::uuid;
  v_lead uuid := case when tg_nargs > 1 then (pg_catalog.to_jsonb(new) ->> tg_argv[1])::uuid end;
begin
  perform sales_owners_lock(new.tenant_id, v_customer, false);
  perform sales_owners_lock(new.tenant_id, v_lead, false);
  new.sales_owners := sales_owners_of(new.tenant_id, v_customer, v_lead);
  return new;
end
$$;
select pin_search_path('sales_owners_derive()');
revoke execute on function sales_owners_derive() from public;
comment on function sales_owners_derive() is
  'Trigger: a ticket''s or an invoice''s sales_owners from its customer (argument 1) and lead (argument 2).';

-- Derives again the sales_owners of the tickets and invoices of a
-- customer, or of the tickets of a lead: an update that changes nothing
-- else (sales_owners_derive recomputes the column; updated_at and the
-- audit log record the change of who reads the row). The invoices whose
-- owners are already the customer's are left alone; a ticket's owners
-- also depend on its lead, so the customer's and the lead's tickets are
-- all derived again (a customer's or a lead's tickets are few). No
-- volatile call in the WHERE: Citus refuses one in a modification of a
-- distributed table.
create or replace function sales_owners_refollow(tenant uuid, customer uuid, lead uuid) returns void
language plpgsql volatile security definer
as $$
declare
  v_owners uuid[];
begin
  if customer is not null then
    perform sales_owners_lock(tenant, customer, true);
    v_owners := sales_owners_of(tenant, customer, null);
    update invoices i set sales_owners = i.sales_owners
     where i.tenant_id = tenant and i.customer_id = customer
       and i.sales_owners is distinct from v_owners;
    update tickets t set sales_owners = t.sales_owners
     where t.tenant_id = tenant and t.related_customer_id = customer;
  end if;
  if lead is not null then
    perform sales_owners_lock(tenant, lead, true);
    update tickets t set sales_owners = t.sales_owners
     where t.tenant_id = tenant and t.related_lead_id = lead;
  end if;
end
$$;
select pin_search_path('sales_owners_refollow(uuid, uuid, uuid)');
revoke execute on function sales_owners_refollow(uuid, uuid, uuid) from public;
comment on function sales_owners_refollow(uuid, uuid, uuid) is
  'Derives again the sales_owners of the tickets and invoices of a customer and the tickets of a lead.';

-- AFTER a prospect is created, reassigned, moved to another customer
-- (a merge) or deleted: its customers' tickets and invoices.
create or replace function sales_owners_follow_prospect() returns trigger
language plpgsql security definer
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') then
    perform sales_owners_refollow(old.tenant_id, old.customer_id, null);
  end if;
  if tg_op in ('INSERT', 'UPDATE') and (tg_op = 'INSERT' or new.customer_id is distinct from old.customer_id) then
    perform sales_owners_refollow(new.tenant_id, new.customer_id, null);
  end if;
  return null;
end
$$;
select pin_search_path('sales_owners_follow_prospect()');
revoke execute on function sales_owners_follow_prospect() from public;
comment on function sales_owners_follow_prospect() is
  'Trigger: a prospect''s customers'' tickets and invoices follow its owner (sales_owners).';

create or replace trigger prospects_sales_owners
  after insert or delete or update of owner_user_id, customer_id on prospects
  for each row execute function sales_owners_follow_prospect();

-- AFTER a lead's sales owner changes: its tickets. (A deleted lead's
-- tickets lose it by their foreign key's SET NULL, an update that
-- derives them again; a new lead has none.)
create or replace function sales_owners_follow_lead() returns trigger
language plpgsql security definer
as $$
begin
  perform sales_owners_refollow(new.tenant_id, null, new.lead_id);
  return null;
end
$$;
select pin_search_path('sales_owners_follow_lead()');
revoke execute on function sales_owners_follow_lead() from public;
comment on function sales_owners_follow_lead() is
  'Trigger: a lead''s tickets follow its sales owner (sales_owners).';

create or replace trigger leads_sales_owners
  after update of sales_owner_user_id on leads
  for each row when (new.sales_owner_user_id is distinct from old.sales_owner_user_id)
  execute function sales_owners_follow_lead();

-- The sales_owners of a tenant's tickets and invoices derived again, set
-- by set: for loads that write those tables, prospects or leads with the
-- user triggers off (the benchmarks' and tests' fixtures), before they
-- turn them on. The owner's alone.
create or replace function sales_owners_refresh(tenant uuid) returns void
language plpgsql volatile
as $$
begin
  -- Set by set, as V57 filled the column (no function per row).
  update invoices i set sales_owners = coalesce(o.owners, '{}')
    from (select i2.tenant_id, i2.invoice_id,
                 array(select distinct p.owner_user_id from prospects p
                        where p.tenant_id = i2.tenant_id and p.customer_id = i2.customer_id
                          and p.owner_user_id is not null
                        order by 1) as owners
            from invoices i2 where i2.tenant_id = tenant) o
   where i.tenant_id = tenant and o.tenant_id = i.tenant_id and o.invoice_id = i.invoice_id
     and i.sales_owners is distinct from o.owners;
  update tickets t set sales_owners = coalesce(o.owners, '{}')
    from (select t2.tenant_id, t2.ticket_id,
                 array(select distinct x.user_id
                         from (select p.owner_user_id as user_id from prospects p
                                where p.tenant_id = t2.tenant_id and p.customer_id = t2.related_customer_id
                                  and p.owner_user_id is not null
                               union all
                               select l.sales_owner_user_id from leads l
                                where l.tenant_id = t2.tenant_id and l.lead_id = t2.related_lead_id
                                  and l.sales_owner_user_id is not null) x
                        order by 1) as owners
            from tickets t2 where t2.tenant_id = tenant) o
   where t.tenant_id = tenant and o.tenant_id = t.tenant_id and o.ticket_id = t.ticket_id
     and t.sales_owners is distinct from o.owners;
end
$$;
select pin_search_path('sales_owners_refresh(uuid)');
revoke execute on function sales_owners_refresh(uuid) from public;
comment on function sales_owners_refresh(uuid) is
  'Derives every sales_owners of a tenant''s tickets and invoices again (after a load with the user triggers off).';

-- A team's ids as a select policy tests rows against them
-- (policy_in_team_ids, platform.sql): 'customers', the team's customers
-- (team_customer_ids) for the customers policy, NULL for a caller whose
-- customer scope is 'all' (that policy lets their rows through before).
-- The tickets and invoices policies test their rows' sales owners against
-- the team instead (policy_team_owns_any): with a constant array the
-- planner estimates every element against the column's statistics (8-21
-- ms of planning for a sales manager's page of 200,000 invoices, against
-- 0.5 ms); customers.customer_id is unique, so its estimate is one
-- division per element.
create or replace function team_ids(kind text) returns uuid[]
language plpgsql stable
as $$
begin
  if kind = 'customers' then
    if customer_scope() = 'all' then
      return null;
    end if;
    return team_customer_ids();
  end if;
  raise exception using errcode = '22023', message = format('team_ids: no team ids of kind %s', kind);
end
$$;
select pin_search_path('team_ids(text)');
grant execute on function team_ids(text) to bizos_authenticated;
comment on function team_ids(text) is
  'The caller''s team''s ids of kind (''customers''), in order, as a select policy tests rows against them; NULL when the policy does not need them.';

-- team_ids(kind) as the planner saw it: declared immutable so that the
-- planner evaluates it while it plans and puts the array in the plan as a
-- constant. An `= any` of a constant array is a hash lookup per row
-- (PostgreSQL hashes constant arrays of 9 elements or more), where `= any`
-- of a sub-select's array is a linear search: a team's 2,000 customers
-- were 2,000 comparisons for every row a page fetched, 90 ms of a sales
-- manager's page of customers. It is NOT a fact about the rows: a plan
-- is kept and run again (prepared statements, PL/pgSQL), for another
-- caller or after the team's prospects changed, so a policy trusts it
-- only while team_ids_are() finds the caller's team's ids have the digest
-- the plan was made with (team_ids_planned_digest), and reads
-- team_ids_unless() otherwise (policy_in_team_ids, platform.sql).
--
-- A policy names both twice, and a view may read a table several times:
-- the first of them in a client statement reads the team and keeps the
-- array and its digest in a transaction's setting per kind, under the
-- statement's start and the caller; the others read that. So within one
-- plan the array and the digest are always of the same read; the read
-- being out of date costs speed, not correctness (team_ids_are).
create or replace function team_ids_kept(kind text) returns text[]
language plpgsql stable
as $$
declare
  v_setting constant text := 'request.team_ids_planned_' || kind;
  v_key constant text := pg_catalog.statement_timestamp()::text || ' ' || coalesce(bizos.uid()::text, '');
  v_kept constant text := pg_catalog.current_setting(v_setting, true);
  v_ids uuid[];
  v_digest text;
begin
  if v_kept is not null and pg_catalog.starts_with(v_kept, v_key || '|') then
    return pg_catalog.string_to_array(pg_catalog.substr(v_kept, pg_catalog.length(v_key) + 2), '|');
  end if;
  v_ids := team_ids(kind);
  v_digest := team_ids_digest(v_ids);
  perform pg_catalog.set_config(v_setting, v_key || '|' || v_digest || '|' || coalesce(v_ids::text, 'null'), true);
  return array[v_digest, coalesce(v_ids::text, 'null')];
end
$$;
select pin_search_path('team_ids_kept(text)');
grant execute on function team_ids_kept(text) to bizos_authenticated;
comment on function team_ids_kept(text) is
  'The digest and the text of team_ids(kind) as this client statement''s first plan read them (team_ids_planned).';

create or replace function team_ids_digest(ids uuid[]) returns text
language sql immutable
as $$
  select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(coalesce(ids::text, 'null'), 'UTF8')), 'hex')
$$;
grant execute on function team_ids_digest(uuid[]) to bizos_authenticated;
comment on function team_ids_digest(uuid[]) is
  'The digest of a team''s ids (team_ids), NULL included, that a plan''s array is checked by.';

create or replace function team_ids_planned(kind text) returns uuid[]
language plpgsql immutable
as $$
begin
  return nullif((team_ids_kept(kind))[2], 'null')::uuid[];
end
$$;
select pin_search_path('team_ids_planned(text)');
grant execute on function team_ids_planned(text) to bizos_authenticated;
comment on function team_ids_planned(text) is
  'team_ids(kind) folded into the plan (declared immutable on purpose; only valid while team_ids_are(kind, team_ids_planned_digest(kind)) holds, see crm.sql).';

create or replace function team_ids_planned_digest(kind text) returns text
language plpgsql immutable
as $$
begin
  return (team_ids_kept(kind))[1];
end
$$;
select pin_search_path('team_ids_planned_digest(text)');
grant execute on function team_ids_planned_digest(text) to bizos_authenticated;
comment on function team_ids_planned_digest(text) is
  'The digest of the array team_ids_planned(kind) folded into the same plan (declared immutable on purpose, see crm.sql).';

-- Are the caller's team's ids those the plan holds (their digest)? Once
-- per statement, as a sub-select.
create or replace function team_ids_are(kind text, planned text) returns boolean
language plpgsql stable
as $$
begin
  return team_ids_digest(team_ids(kind)) = planned;
end
$$;
select pin_search_path('team_ids_are(text, text)');
grant execute on function team_ids_are(text, text) to bizos_authenticated;
comment on function team_ids_are(text, text) is
  'Whether team_ids(kind) has the digest planned (that of the array a plan holds).';

-- The caller's team's ids when they are not those the plan holds, else
-- NULL: what a policy reads when its plan's array is another caller's or
-- out of date.
create or replace function team_ids_unless(kind text, planned text) returns uuid[]
language plpgsql stable
as $$
declare
  v_ids constant uuid[] := team_ids(kind);
begin
  return case when team_ids_digest(v_ids) is distinct from planned then v_ids end;
end
$$;
select pin_search_path('team_ids_unless(text, text)');
grant execute on function team_ids_unless(text, text) to bizos_authenticated;
comment on function team_ids_unless(text, text) is
  'team_ids(kind) when its digest is not planned (that of the array a plan holds), else NULL.';

-- The customers select policy: customer_readable over a whole table.
-- Called per row, customer_readable costs a probe of prospects for every
-- row the caller may not read, so a list or a count cost the whole tenant
-- (13 s for a salesperson's page of 50 among 207,000 customers). The policy
-- states each branch of the rule in a form that costs the rows it lets
-- through:
--
--   scope = 'all'  (1) customer_id and created_at between a once-per-
--                      statement floor (NULL unless the scope is 'all') and
--                      the highest value: per row two comparisons, and an
--                      estimate of almost no rows (platform.sql);
--                  (2) the same as `tenant_id = tenant_when(scope = 'all')`,
--                      which the planner evaluates while it estimates (the
--                      whole tenant, or nothing), guarded by the scope as a
--                      once-per-statement boolean so that a caller without
--                      it never evaluates the call per row;
--   created_by = bizos.uid()  (3) guarded likewise: the sub-select decides
--                      per row, the plain call gives the estimate;
--                      customers_created_by_idx;
--   owns_customer(customer_id)  (4) customer_id = any (the team's
--                      customers, read once per statement): the primary key.
--
-- A caller who reads everything gets the estimate of (2), so a page walks
-- customers_created_at_idx and stops after it, a count reads the tenant with
-- one comparison per row (1); a restricted caller gets the estimates of
-- (3) and (4), so PostgreSQL reads a BitmapOr of the four index scans, of
-- which (1) and (2) find nothing, and only the rows the caller may read.
-- customer_readable stays the rule that functions running as the owner
-- apply row by row; this form must mean exactly the same
-- (tests/tests/suite/list_cost.rs compares the two for every role).
-- On Citus the policy stays customer_readable per row, as before: Citus
-- refuses sub-selects in policies (distribute.sql unwraps them, and the
-- unwrapped form would evaluate the scope per row), and the team's array,
-- evaluated on a shard while it plans, is a distributed query Citus
-- refuses there.
do $$
declare
  v_readable constant text := format($e$tenant_id = (select bizos.tenant_id())
         and ((customer_id >= (select uuid_floor_when(customer_scope() = 'all'))
               and customer_id <= 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid
               and created_at >= (select time_floor_when(customer_scope() = 'all'))
               and created_at <= 'infinity'::timestamptz)
              or ((select customer_scope() = 'all') and tenant_id = tenant_when(customer_scope() = 'all'))
              or (created_by = (select bizos.uid()) and created_by = bizos.uid())
              or %s)$e$, policy_in_team_ids('customer_id', 'customers'));
  v_citus constant text := $e$tenant_id = (select bizos.tenant_id())
         and customer_readable((select customer_scope()), created_by, customer_id)$e$;
begin
  drop policy if exists "callers read the customers customer_readable() allows" on customers;
  execute format('create policy %I on customers for select to bizos_authenticated using (%s)',
    'callers read the customers customer_readable() allows',
    case when citus_table('customers') then citus_unwrap_sub_selects(v_citus)
         when pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then v_citus
         else v_readable end);
end
$$;

-- The select policies of leads, prospects and sales activities state their
-- rules (V3, V14) branch by branch in the form the customers policy has
-- (above; docs/schema.md, "What a policy costs"), so that a list or a count
-- costs the rows the caller may read, not the tenant: "reads all" as
-- policy_reads_all, "owned by the team" as policy_team_owns, a role test
-- inside a branch as policy_caller_is (platform.sql). Before, each ORed a
-- once-per-statement role test with its other branches, which no index
-- serves, so a salesperson's page of leads walked the tenant's leads with
-- the policy as a filter. The holders of crm.read_all read every sales
-- activity through a policy of their own (V35), rewritten the same way: the
-- policies of a table are ORed, so one branch no index serves would undo
-- the others. On Citus the policies stay as they were (sub-selects are
-- unwrapped there and would be evaluated per row).
do $$
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    return;
  end if;
  drop policy if exists "crm managers read all leads; sales their scope, not handed over" on leads;
  execute format('create policy %I on leads for select to bizos_authenticated using (%s)',
    'crm managers read all leads; sales their scope, not handed over',
    format('tenant_id = (select bizos.tenant_id()) and (%s or %s or (%s and not handed_over)'
           ' or (sales_owner_user_id is null and %s))',
           policy_reads_all('sees_all_crm()', 'lead_id'), policy_team_owns('sales_owner_user_id'),
           policy_team_owns('created_by'), policy_caller_is($e$bizos.app_role() = 'sales_manager'$e$)));

  drop policy if exists "crm managers read all prospects; sales read their team's and th" on prospects;
  execute format('create policy %I on prospects for select to bizos_authenticated using (%s)',
    'crm managers read all prospects; sales read their team''s and th',
    format('tenant_id = (select bizos.tenant_id()) and (%s or %s or (owner_user_id is null and %s))',
           policy_reads_all('sees_all_crm()', 'prospect_id'), policy_team_owns('owner_user_id'),
           policy_caller_is($e$bizos.app_role() = 'sales_manager'$e$)));

  drop policy if exists "managers and directors read their team's activities; sales thei" on sales_activities;
  execute format('create policy %I on sales_activities for select to bizos_authenticated using (%s)',
    'managers and directors read their team''s activities; sales thei',
    format('tenant_id = (select bizos.tenant_id()) and (%s or %s)',
           policy_reads_all($e$bizos.app_role() = any (array['super_admin', 'director', 'marketing_manager'])$e$, 'activity_id'),
           policy_team_owns('owner_user_id')));
  drop policy if exists "holders of crm.read_all read every sales activity" on sales_activities;
  execute format('create policy %I on sales_activities for select to bizos_authenticated using (%s)',
    'holders of crm.read_all read every sales activity',
    format('tenant_id = (select bizos.tenant_id()) and %s',
           policy_reads_all($e$has_permission('crm.read_all')$e$, 'activity_id')));
end
$$;

-- May the caller read customer `customer` (of their tenant)? The same rule,
-- for functions running as the owner.
create or replace function may_read_customer(customer uuid) returns boolean
language sql stable
as $$
  select exists (
    select 1 from customers c
     where c.tenant_id = bizos.tenant_id() and c.customer_id = customer
       and customer_readable(customer_scope(), c.created_by, c.customer_id))
$$;
select pin_search_path('may_read_customer(uuid)');
grant execute on function may_read_customer(uuid) to bizos_authenticated;

-- The company name of customer `customer` when the caller may read it
-- (customer_readable), else NULL: what a left join of customers under its
-- policy gives a view (v_invoices), without planning that policy in every
-- statement of the view (for a sales role it folds the team's 2,000
-- customers into the plan: 6-9 ms of a page's planning at 1M customers)
-- and without a probe of customers for rows the page does not return:
-- costed high, so that the planner evaluates it after a sort and a limit.
create or replace function customer_name_readable(customer uuid) returns text
language plpgsql stable security definer cost 1000
as $$
declare
  v_name text;
begin
  select c.company_name into v_name
    from customers c
   where c.tenant_id = bizos.tenant_id() and c.customer_id = customer
     and customer_readable(customer_scope(), c.created_by, c.customer_id);
  return v_name;
end
$$;
select pin_search_path('customer_name_readable(uuid)');
revoke execute on function customer_name_readable(uuid) from public;
grant execute on function customer_name_readable(uuid) to bizos_authenticated;
comment on function customer_name_readable(uuid) is
  'The company name of a customer the caller may read (customer_readable), else NULL.';

-- May the caller change customer `customer` (of their tenant)? The rule of
-- the customers update policy (V3: super admins and marketing managers
-- any customer, sales roles those their team owns a prospect of; all of
-- them holding lead.update; directors write nothing), for functions
-- running as the owner (customer_update, customer_merge). The RLS matrix
-- (rls_matrix::customer_edit_and_merge) holds the two equal, role by role.
create or replace function customer_editable(customer uuid) returns boolean
language plpgsql stable
as $$
begin
  return (bizos.app_role() in ('super_admin', 'marketing_manager') or owns_customer(customer))
         and has_permission('lead.update');
end
$$;
select pin_search_path('customer_editable(uuid)');
grant execute on function customer_editable(uuid) to bizos_authenticated;
comment on function customer_editable(uuid) is
  'May the caller change this customer? The rule of the customers update policy, for functions running as the owner.';

-- The customer's current owner: the owner of its most recently active
-- prospect that is not LOST, when that owner is an active salesperson or
-- sales manager; NULL when there is none.
create or replace function customer_current_owner(customer uuid) returns table (owner_user_id uuid, prospect_id uuid)
language plpgsql stable
as $$
begin
  return query
  select p.owner_user_id, p.prospect_id
    from prospects p
    join profiles u on u.tenant_id = p.tenant_id and u.user_id = p.owner_user_id
   where p.tenant_id = bizos.tenant_id() and p.customer_id = customer_current_owner.customer
     and p.owner_user_id is not null and p.stage <> 'LOST'
     and u.active and u.app_role in ('salesperson', 'sales_manager')
   order by p.updated_at desc, p.prospect_id
   limit 1;
end
$$;
select pin_search_path('customer_current_owner(uuid)');
revoke execute on function customer_current_owner(uuid) from public;

-- The dedup keys of a customer (normalised values): its e-mail, its phone,
-- and its company name when it has no NPWP. (The NPWP needs no lock: its
-- unique index serialises two creates of one NPWP.) One expression, so it
-- is inlined where it is called.
create or replace function customer_dedup_keys(n_npwp text, n_email text, n_phone text, n_company text)
returns text[]
language sql immutable parallel safe
as $$
  select pg_catalog.array_remove(array['email:' || n_email, 'phone:' || n_phone,
                                       case when n_npwp is null then 'company:' || n_company end], null)
$$;
comment on function customer_dedup_keys(text, text, text, text) is
  'The dedup keys of a customer (email:, phone:, and company: when it has no NPWP) that customer_dedup_lock serialises.';

-- The bucket of a dedup key, as the id of its advisory lock (the second
-- half of (1684366448, id)): one of 32 per tenant (customer_dedup_lock).
create or replace function customer_dedup_bucket(tenant uuid, dedup_key text) returns integer
language sql immutable parallel safe
as $$
  select pg_catalog.hashtext(tenant::text || '/' || (pg_catalog.hashtextextended(dedup_key, 42) & 31)::text)
$$;
comment on function customer_dedup_bucket(uuid, text) is
  'The advisory lock id (1684366448, id) of the bucket of a dedup key: one of 32 per tenant.';

-- The one key -> lock mapping of the dedup: two transactions that may
-- create a customer with a key in common wait for each other, in every
-- path (customer_dedup for the lead bundle and find_or_create_customer,
-- import_resolve_customers for imports). A key falls in one of 32 buckets
-- of its tenant (advisory lock (1684366448, hashtext(tenant/bucket))).
--   bulk = false (one customer: at most 3 keys): a shared lock on each
--     bucket of its keys, then an exclusive lock on each key (advisory
--     lock hashtextextended(tenant/key, 42)). Two such transactions wait
--     only for a key in common, as before buckets; at most 6 locks.
--   bulk = true (an import batch, thousands of keys): an exclusive lock on
--     each bucket of its keys. It waits for every single-customer dedup
--     holding a key of one of those buckets and excludes them until
--     commit; at most 32 locks, however large the batch. One lock per key
--     (4,000-6,000 for a batch of 2,000 rows) filled the cluster's lock
--     table (max_locks_per_transaction x max_connections slots, shared by
--     all sessions): 53200 "out of shared memory" for the import and for
--     every other session that needed a lock meanwhile.
-- 32 buckets: a batch of a few hundred rows has keys in every bucket
-- anyway, so more buckets would not let two imports of one tenant run
-- their dedup side by side (they take turns batch by batch); 32 stays
-- within the 64 lock slots PostgreSQL reserves per transaction by default
-- (a batch also holds some 60 relation locks of its tables, indexes and
-- temporary tables, as before: bench/import_locks.sql). Every transaction takes the bucket
-- locks in the order of their lock ids, then the key locks in the order of
-- the keys: no deadlock between dedups.
create or replace function customer_dedup_lock(tenant uuid, keys text[], bulk boolean default false)
returns void
language plpgsql
as $$
begin
  if bulk then
    perform pg_catalog.pg_advisory_xact_lock(1684366448, b.lock_id)
       from (select distinct customer_dedup_bucket(tenant, k) as lock_id
               from pg_catalog.unnest(keys) k
              where k is not null) b
      order by b.lock_id;
  else
    perform pg_catalog.pg_advisory_xact_lock_shared(1684366448, b.lock_id)
       from (select distinct customer_dedup_bucket(tenant, k) as lock_id
               from pg_catalog.unnest(keys) k
              where k is not null) b
      order by b.lock_id;
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(tenant::text || '/' || x.k, 42))
       from (select distinct k from pg_catalog.unnest(keys) k where k is not null) x
      order by x.k;
  end if;
end
$$;
select pin_search_path('customer_dedup_lock(uuid, text[], boolean)');
revoke execute on function customer_dedup_lock(uuid, text[], boolean) from public;
comment on function customer_dedup_lock(uuid, text[], boolean) is
  'Serialises creates of customers sharing a dedup key: per key and shared per bucket for one customer, exclusive per bucket (at most 32 locks) for an import batch.';

-- The dedup of find_or_create_customer, for functions running as the
-- owner: returns {customer_id, created, matched_on, visible, candidates}.
-- `visible` says whether the caller may read the customer (customer_readable).
-- A match the caller may not read is not enriched from their input, and
-- candidates are only customers the caller may read. Not callable by
-- request roles (it returns the id of a customer they may not read).
-- (Custom plans on purpose: a generic plan is made once per session, and
-- one made while the tenant had few customers walked all of them by
-- primary key once the tenant had grown.)
create or replace function customer_dedup(
  company_name text,
  npwp text default null,
  email text default null,
  phone text default null,
  city text default null
) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_scope text;
  n_npwp text := bizos.norm_npwp(npwp);
  n_email text := bizos.norm_email(email);
  n_phone text := bizos.norm_phone(phone);
  n_company text := bizos.norm_company(company_name);
  v_id uuid;
  v_matched text;
  v_created boolean := false;
  v_visible boolean;
  v_candidates jsonb := '[]';
  r record;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not (has_permission('lead.create') or has_permission('lead.update')) then
    raise exception using errcode = '42501', message = 'your role may not create customers';
  end if;
  if n_company is null or length(company_name) > 200 then
    raise exception using errcode = 'P0001', column = 'company_name',
      message = 'company_name: required, up to 200 characters, with letters or digits';
  end if;
  if nullif(btrim(npwp), '') is not null and n_npwp is null then
    raise exception using errcode = 'P0001', column = 'npwp',
      message = format('npwp: %L is not a valid NPWP (15 digits, or 16 digits for the new format)', npwp);
  end if;
  if nullif(btrim(email), '') is not null and n_email is null then
    raise exception using errcode = 'P0001', column = 'email', message = format('email: %L is not a valid e-mail address', email);
  end if;
  if nullif(btrim(phone), '') is not null and n_phone is null then
    raise exception using errcode = 'P0001', column = 'phone', message = format('phone: %L is not a valid Indonesian phone number', phone);
  end if;
  v_scope := customer_scope();

  -- Serialise concurrent creates of the same weak keys, with imports too.
  perform customer_dedup_lock(v_tenant, customer_dedup_keys(n_npwp, n_email, n_phone, n_company));

  for attempt in 1..2 loop
    if n_npwp is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.npwp_norm = n_npwp;
      v_matched := 'npwp';
    end if;
    if v_id is null and n_email is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.email_norm = n_email
         and (n_npwp is null or c.npwp_norm is null)
       order by c.created_at limit 1;
      v_matched := 'email';
    end if;
    if v_id is null and n_phone is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.phone_norm = n_phone
         and (n_npwp is null or c.npwp_norm is null)
       order by c.created_at limit 1;
      v_matched := 'phone';
    end if;
    if v_id is null and n_npwp is null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.company_norm = n_company
       order by c.created_at limit 1;
      v_matched := 'company';
    end if;
    exit when v_id is not null;

    insert into customers (tenant_id, company_name, npwp, email, phone, city)
    values (v_tenant, btrim(company_name), nullif(btrim(npwp), ''), nullif(btrim(email), ''),
            nullif(btrim(phone), ''), nullif(btrim(city), ''))
    on conflict (tenant_id, npwp_norm) do nothing
    returning customers.customer_id into v_id;
    if v_id is not null then
      v_created := true;
      v_matched := null;
      exit;
    end if;
    -- Lost a race on the NPWP: the other transaction committed; look again.
  end loop;

  -- The caller created it: theirs to read, no statement needed.
  if v_created then
    v_visible := true;
  else
    select customer_readable(v_scope, c.created_by, c.customer_id) into v_visible
      from customers c where c.tenant_id = v_tenant and c.customer_id = v_id;
  end if;

  -- Fill identifiers the matched customer lacks (never overwrite), and only
  -- of a customer the caller may read.
  if not v_created and v_visible then
    update customers c
       set npwp = coalesce(c.npwp, nullif(btrim(customer_dedup.npwp), '')),
           email = coalesce(c.email, nullif(btrim(customer_dedup.email), '')),
           phone = coalesce(c.phone, nullif(btrim(customer_dedup.phone), '')),
           city = coalesce(c.city, nullif(btrim(customer_dedup.city), ''))
     where c.tenant_id = v_tenant and c.customer_id = v_id
       and ((c.npwp is null and n_npwp is not null) or (c.email is null and n_email is not null)
            or (c.phone is null and n_phone is not null) or (c.city is null and nullif(btrim(customer_dedup.city), '') is not null))
       and not exists (select 1 from customers o where o.tenant_id = v_tenant and o.npwp_norm = n_npwp and o.customer_id <> v_id);
  end if;

  -- Customers sharing a contact but with another NPWP (readable ones only).
  -- (Only with an NPWP: without one the query finds nothing, and it was
  -- planned anew on every call all the same. A missing contact is compared
  -- as '', which no normalised contact is: with NULL the custom plan folded
  -- its branch away, was cheaper than the generic one, and so the query was
  -- planned anew on every call: 129 µs a bundle, BENCHMARKS.md step seven.)
  if n_npwp is not null and coalesce(n_email, n_phone) is not null then
    for r in
      select c.customer_id, c.company_name
        from customers c
       where c.tenant_id = v_tenant and c.customer_id <> v_id
         and c.npwp_norm is not null and c.npwp_norm <> n_npwp
         and (c.email_norm = coalesce(n_email, '') or c.phone_norm = coalesce(n_phone, ''))
         and customer_readable(v_scope, c.created_by, c.customer_id)
       limit 5
    loop
      v_candidates := v_candidates || jsonb_build_object(
        'customer_id', r.customer_id, 'company_name', r.company_name, 'reason', 'same contact, different NPWP');
    end loop;
  end if;

  -- The same normalised name under another NPWP (or none) for a new
  -- customer: another legal entity, or one typed twice. An exact index
  -- probe, so it stays in the request: the first 50 namesakes, then the
  -- first 5 of them the caller may read.
  if v_created and n_npwp is not null then
    for r in
      select x.customer_id, x.company_name
        from (select c.customer_id, c.company_name, c.created_by
                from customers c
               where c.tenant_id = v_tenant and c.company_norm = n_company and c.customer_id <> v_id
               limit 50) x
       where customer_readable(v_scope, x.created_by, x.customer_id)
         and not v_candidates @> jsonb_build_array(jsonb_build_object('customer_id', x.customer_id))
       limit 5
    loop
      v_candidates := v_candidates || jsonb_build_object(
        'customer_id', r.customer_id, 'company_name', r.company_name, 'reason', 'same name, another NPWP or none');
    end loop;
  end if;

  -- Similar names are looked for after commit, off the write path (V36):
  -- the job customer.lookalikes attaches them to the new customer for
  -- review (customer_detail's `lookalikes`).
  if v_created then
    perform job_insert(v_tenant, null, 'customer.lookalikes',
                       jsonb_build_object('customer_ids', jsonb_build_array(v_id)), null, 0, null);
  end if;

  return jsonb_build_object('customer_id', v_id, 'created', v_created, 'matched_on', v_matched,
                            'visible', v_visible, 'candidates', v_candidates);
end
$$;
select pin_search_path('customer_dedup(text, text, text, text, text)');
revoke execute on function customer_dedup(text, text, text, text, text) from public;

-- customer_lookalikes_find(tenant_id, customer_ids) -> look-alikes stored:
-- the job customer.lookalikes (V36). For each customer of the list that
-- still exists, the 50 customers of its tenant with the most similar
-- normalised names (pg_trgm similarity >= 0.5, the best first) replace what
-- an earlier check found, and the check is recorded. Every customer of the
-- tenant is considered whoever created it: what a reader is shown is
-- decided when reading (customer_lookalikes_of). Idempotent: a rerun (a
-- lost lease) gives the same rows. For the worker (a system job).
create or replace function customer_lookalikes_find(tenant_id uuid, customer_ids uuid[]) returns integer
language plpgsql security definer
as $$
declare
  v_tenant uuid := customer_lookalikes_find.tenant_id;
  v_id uuid;
  v_norm text;
  v_found integer;
  v_total integer := 0;
begin
  if v_tenant is null then
    raise exception using errcode = 'P0001', column = 'tenant_id', message = 'tenant_id: is required';
  end if;
  if customer_ids is null or cardinality(customer_ids) > 1000 then
    raise exception using errcode = 'P0001', column = 'customer_ids',
      message = 'customer_ids: a list of up to 1000 customer ids is required';
  end if;
  foreach v_id in array customer_ids loop
    select c.company_norm into v_norm from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_id;
    continue when not found;
    delete from customer_lookalikes l where l.tenant_id = v_tenant and l.customer_id = v_id;
    insert into customer_lookalikes (tenant_id, customer_id, lookalike_id, similarity)
    select v_tenant, v_id, x.customer_id, x.sim
      from (select c.customer_id, extensions.similarity(c.company_norm, v_norm) as sim
              from customers c
             where c.tenant_id = v_tenant and c.customer_id <> v_id
               and c.company_norm operator(extensions.%) v_norm
             order by sim desc, c.customer_id
             limit 50) x;
    get diagnostics v_found = row_count;
    insert into customer_lookalike_checks as k (tenant_id, customer_id)
    values (v_tenant, v_id)
    on conflict on constraint customer_lookalike_checks_pkey
    do update set checked_at = excluded.checked_at;
    v_total := v_total + v_found;
  end loop;
  return v_total;
end
$$;
select pin_search_path('customer_lookalikes_find(uuid, uuid[])');
do $$ begin perform extensions.similarity('a', 'a'); end $$;
alter function customer_lookalikes_find(uuid, uuid[]) set pg_trgm.similarity_threshold = 0.5;
revoke execute on function customer_lookalikes_find(uuid, uuid[]) from public;
grant execute on function customer_lookalikes_find(uuid, uuid[]) to bizos_worker;
comment on function customer_lookalikes_find(uuid, uuid[]) is
  'The job customer.lookalikes: stores the 50 most similar names (pg_trgm >= 0.5) of each customer listed; returns how many rows it stored.';

-- customer_lookalikes_of(customer_id, max_rows) -> {checked_at, lookalikes:
-- [{customer_id, company_name, similarity}]}: the customers with
-- names similar to a customer the caller may read, in both directions (those
-- its own check found, and newer customers whose check found it), the most
-- similar first, only those the caller may read too; NULL when the caller may
-- not read the customer. checked_at NULL: not checked yet (the job is
-- queued, or the customer predates V36). How many look-alikes the caller
-- may not read stays untold.
create or replace function customer_lookalikes_of(customer_id uuid, max_rows integer default 20) returns jsonb
language plpgsql stable security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_scope text := customer_scope();
  v_id uuid := customer_lookalikes_of.customer_id;
  v_check customer_lookalike_checks;
  v_list jsonb;
begin
  if v_tenant is null or v_id is null or not exists (
       select 1 from customers c
        where c.tenant_id = v_tenant and c.customer_id = v_id
          and customer_readable(v_scope, c.created_by, c.customer_id)) then
    return null;
  end if;
  select * into v_check from customer_lookalike_checks k where k.tenant_id = v_tenant and k.customer_id = v_id;
  select coalesce(jsonb_agg(jsonb_build_object('customer_id', y.customer_id, 'company_name', y.company_name,
                                               'similarity', round(y.sim::numeric, 3))
                            order by y.sim desc, y.customer_id), '[]')
    into v_list
    from (select c.customer_id, c.company_name, x.sim
            from (select l.lookalike_id as other, max(l.similarity) as sim
                    from (select l.lookalike_id, l.similarity from customer_lookalikes l
                           where l.tenant_id = v_tenant and l.customer_id = v_id
                          union all
                          select l.customer_id, l.similarity from customer_lookalikes l
                           where l.tenant_id = v_tenant and l.lookalike_id = v_id) l
                   group by l.lookalike_id) x
            join customers c on c.tenant_id = v_tenant and c.customer_id = x.other
           where customer_readable(v_scope, c.created_by, c.customer_id)
           order by x.sim desc, c.customer_id
           limit greatest(1, least(coalesce(max_rows, 20), 100))) y;
  return jsonb_build_object('checked_at', v_check.checked_at, 'lookalikes', v_list);
end
$$;
select pin_search_path('customer_lookalikes_of(uuid, integer)');
revoke execute on function customer_lookalikes_of(uuid, integer) from public;
grant execute on function customer_lookalikes_of(uuid, integer) to bizos_authenticated;
comment on function customer_lookalikes_of(uuid, integer) is
  'Customers with names similar to a customer the caller may read (found by the job customer.lookalikes), only those the caller may read, the most similar first; NULL when the caller may not read the customer.';

-- Finds the customer for the given identifiers or creates it. Exact
-- matches on normalised keys, in order: NPWP (unique: concurrent creates
-- meet in ON CONFLICT), e-mail, phone, and the normalised company name when
-- no NPWP is given (these take a transaction lock on the key, so concurrent
-- creates wait for each other). A match whose NPWP differs is a different
-- company: it is listed as a candidate, never merged. Similar names (pg_trgm)
-- are found after commit by the job customer.lookalikes and kept on the new
-- customer for a human to review (customer_lookalikes_of).
-- Returns {customer_id, created, matched_on, candidates: [{customer_id, company_name, reason}]}.
-- For request roles: customer_dedup's rules; a match
-- the caller may not read comes back as {customer_id: null, created: false,
-- visible: false, candidates} — one company stays one customer, and the
-- caller learns only that it exists outside their scope.
create or replace function find_or_create_customer(
  company_name text,
  npwp text default null,
  email text default null,
  phone text default null,
  city text default null
) returns jsonb
language plpgsql security definer
as $$
declare
  v jsonb := customer_dedup(company_name, npwp, email, phone, city);
begin
  if (v ->> 'visible')::boolean then
    return v - 'visible';
  end if;
  return jsonb_build_object('customer_id', null, 'created', false, 'matched_on', null,
                            'visible', false, 'candidates', v -> 'candidates');
end
$$;
revoke execute on function find_or_create_customer(text, text, text, text, text) from public;
grant execute on function find_or_create_customer(text, text, text, text, text) to bizos_authenticated;
select pin_search_path('find_or_create_customer(text, text, text, text, text)');
revoke execute on function find_or_create_customer(text, text, text, text, text) from public;
grant execute on function find_or_create_customer(text, text, text, text, text) to bizos_authenticated;

-- The prospect of (customer, owner) as find_or_create_prospect makes it,
-- for functions running as the owner that decided themselves who gets it
-- (the bundle's handover, lead assignment). Not callable by request roles.
create or replace function prospect_ensure(customer uuid, owner uuid default null) returns uuid
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not (has_permission('lead.create') or has_permission('lead.assign')) then
    raise exception using errcode = '42501', message = 'your role may not create prospects';
  end if;
  if customer is null or not exists (select 1 from customers c where c.tenant_id = v_tenant and c.customer_id = customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: no such customer';
  end if;
  if owner is not null and not exists (
       select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = owner and p.active
          and p.app_role in ('salesperson', 'sales_manager')) then
    raise exception using errcode = 'P0001', column = 'owner_user_id',
      message = 'owner_user_id: not an active salesperson or sales manager of this tenant';
  end if;
  insert into prospects (tenant_id, customer_id, owner_user_id)
  values (v_tenant, customer, owner)
  on conflict (tenant_id, customer_id, owner_user_id) do nothing
  returning prospect_id into v_id;
  if v_id is null then
    select p.prospect_id into v_id from prospects p
     where p.tenant_id = v_tenant and p.customer_id = customer and p.owner_user_id is not distinct from prospect_ensure.owner;
  end if;
  return v_id;
end
$$;
select pin_search_path('prospect_ensure(uuid, uuid)');
revoke execute on function prospect_ensure(uuid, uuid) from public;

-- The prospect of (customer, owner); owner NULL = not handed over yet.
-- For request roles: only on a customer the caller
-- may read (a prospect is what opens a customer and its invoices to a team).
create or replace function find_or_create_prospect(customer uuid, owner uuid default null) returns uuid
language plpgsql security definer
as $$
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if customer is null or not may_read_customer(customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: no such customer';
  end if;
  return prospect_ensure(customer, owner);
end
$$;
revoke execute on function find_or_create_prospect(uuid, uuid) from public;
grant execute on function find_or_create_prospect(uuid, uuid) to bizos_authenticated;
select pin_search_path('find_or_create_prospect(uuid, uuid)');
revoke execute on function find_or_create_prospect(uuid, uuid) from public;
grant execute on function find_or_create_prospect(uuid, uuid) to bizos_authenticated;

-- CRM-1, atomic and idempotent: one call creates a lead with its customer
-- (deduplicated), its prospect and, when asked, the RFQ ticket for ops
-- (inquiry_tariff, masked for ops, linked to the lead and customer). One
-- transaction: any invalid field aborts the whole bundle.
--
-- payload: {channel, company_name, contact_name?, contact_email?,
--           contact_phone?, npwp?, city?, notes?, sales_owner_user_id?,
--           rfq?: {origin, destination, commodity, weight_kg?, volume_cbm?,
--                  dept_target, priority?, subject?, description?}}
-- returns, by the handover rule:
--   the customer (deduplicated) is one the caller may read →
--     {lead_id, lead_no, status, handed_over: false, customer_id,
--      prospect_id, ticket_id?, ticket_no?, customer_created, matched_on,
--      candidates (readable customers only)};
--   it is one the caller may not read → the lead is linked to it but handed
--     over to its current owner (customer_current_owner; none: unassigned,
--     status NEW), the caller gets no prospect, the customer is not enriched,
--     and the answer is what the caller typed plus {lead_id, lead_no, status,
--     handed_over: true, ticket_id?, ticket_no?}.
create or replace function crm_create_lead_bundle(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_role text := bizos.app_role();
  v_owner uuid;
  v_channel text;
  v_company text;
  v_contact text;
  v_email text;
  v_phone text;
  v_npwp text;
  v_city text;
  v_notes text;
  v_rfq jsonb;
  v_customer jsonb;
  v_customer_id uuid;
  v_visible boolean;
  v_prospect_id uuid;
  v_lead leads%rowtype;
  v_ticket jsonb;
  e_col text;
  e_msg text;
  e_hint text;
begin
  perform require_permission('lead.create');
  perform payload_check(payload, '{"channel": "text", "company_name": "text", "contact_name": "text",
    "contact_email": "text", "contact_phone": "text", "npwp": "text", "city": "text", "notes": "text",
    "sales_owner_user_id": "uuid",
    "rfq": {"origin": "text", "destination": "text", "commodity": "text", "weight_kg": "number",
            "volume_cbm": "number", "dept_target": "text", "priority": "text", "subject": "text",
            "description": "text"}}');
  v_channel := vocabulary_check('lead_channels', lower(payload_text(payload, 'channel', true, 30)), 'channel');
  v_company := payload_text(payload, 'company_name', true, 200);
  if bizos.norm_company(v_company) is null then
    raise exception using errcode = 'P0001', column = 'company_name', message = 'company_name: required, up to 200 characters';
  end if;
  v_contact := payload_text(payload, 'contact_name', false, 200);
  v_email := payload_text(payload, 'contact_email', false, 320);
  if v_email is not null and bizos.norm_email(v_email) is null then
    raise exception using errcode = 'P0001', column = 'contact_email', message = format('contact_email: %L is not a valid e-mail address', v_email);
  end if;
  v_phone := payload_text(payload, 'contact_phone', false, 50);
  if v_phone is not null and bizos.norm_phone(v_phone) is null then
    raise exception using errcode = 'P0001', column = 'contact_phone', message = format('contact_phone: %L is not a valid Indonesian phone number', v_phone);
  end if;
  v_npwp := payload_text(payload, 'npwp', false, 40);
  if v_npwp is not null and bizos.norm_npwp(v_npwp) is null then
    raise exception using errcode = 'P0001', column = 'npwp', message = format('npwp: %L is not a valid NPWP', v_npwp);
  end if;
  v_city := payload_text(payload, 'city', false, 100);
  v_notes := payload_text(payload, 'notes', false, 4000);
  v_owner := payload_uuid(payload, 'sales_owner_user_id');
  if v_role = 'salesperson' then
    if v_owner is not null and v_owner <> bizos.uid() then
      raise exception using errcode = '42501', column = 'sales_owner_user_id',
        message = 'a salesperson creates leads for themselves';
    end if;
    v_owner := bizos.uid();
  elsif v_owner is not null then
    perform require_permission('lead.assign');
  end if;
  v_rfq := nullif(payload -> 'rfq', 'null'::jsonb);
  if v_rfq is not null then
    -- ticket_create checks these again; named here as the caller sent them.
    perform payload_text(jsonb_build_object('rfq.dept_target', v_rfq -> 'dept_target'), 'rfq.dept_target', true, 32);
    perform payload_text(jsonb_build_object('rfq.origin', v_rfq -> 'origin'), 'rfq.origin', true, 200);
    perform payload_text(jsonb_build_object('rfq.destination', v_rfq -> 'destination'), 'rfq.destination', true, 200);
    perform payload_positive(jsonb_build_object('rfq.weight_kg', v_rfq -> 'weight_kg'), 'rfq.weight_kg');
    perform payload_positive(jsonb_build_object('rfq.volume_cbm', v_rfq -> 'volume_cbm'), 'rfq.volume_cbm');
  end if;

  v_customer := customer_dedup(v_company, v_npwp, v_email, v_phone, v_city);
  v_customer_id := (v_customer ->> 'customer_id')::uuid;
  v_visible := (v_customer ->> 'visible')::boolean;
  if v_visible then
    v_prospect_id := prospect_ensure(v_customer_id, v_owner);
  else
    -- Handed over: the customer's owner takes the lead; the caller gets no prospect.
    select o.owner_user_id, o.prospect_id into v_owner, v_prospect_id from customer_current_owner(v_customer_id) o;
    if v_prospect_id is null then
      v_owner := null;
      v_prospect_id := prospect_ensure(v_customer_id, null);
    end if;
  end if;

  insert into leads (tenant_id, channel, status, company_name, contact_name, contact_email, contact_phone,
                     npwp, city, notes, customer_id, prospect_id, sales_owner_user_id, assigned_at, handed_over)
  values (v_tenant, v_channel, case when v_owner is null then 'NEW' else 'ASSIGNED' end, v_company,
          v_contact, v_email, v_phone, v_npwp, v_city, v_notes,
          v_customer_id, v_prospect_id, v_owner, case when v_owner is not null then now() end, not v_visible)
  returning * into v_lead;

  if v_rfq is not null then
    begin
      -- The customer is linked (and its contacts snapshotted) by ticket_create
      -- only when the caller may read it.
      v_ticket := ticket_create(jsonb_strip_nulls(jsonb_build_object(
        'ticket_type', 'inquiry_tariff',
        'subject', coalesce(nullif(btrim(v_rfq ->> 'subject'), ''),
                            format('RFQ %s: %s → %s', v_lead.lead_no, v_rfq ->> 'origin', v_rfq ->> 'destination')),
        'description', v_rfq -> 'description',
        'priority', coalesce(v_rfq -> 'priority', '"normal"'),
        'dept_target', v_rfq -> 'dept_target',
        'need_customer_masking', true,
        'related_lead_id', v_lead.lead_id,
        'related_customer_id', case when v_visible then v_customer_id end,
        'origin', v_rfq -> 'origin',
        'destination', v_rfq -> 'destination',
        'commodity', v_rfq -> 'commodity',
        'weight_kg', v_rfq -> 'weight_kg',
        'volume_cbm', v_rfq -> 'volume_cbm',
        'contact_name', v_contact,
        'contact_phone', v_phone,
        'contact_email', v_email,
        'company_name', v_company)));
    exception when sqlstate 'P0001' then
      -- Name the field as the caller sent it (rfq.priority, not priority).
      get stacked diagnostics e_col = column_name, e_msg = message_text, e_hint = pg_exception_hint;
      e_hint := nullif(e_hint, '');
      if e_col in ('origin', 'destination', 'commodity', 'weight_kg', 'volume_cbm', 'dept_target',
                   'priority', 'subject', 'description') then
        e_msg := 'rfq.' || e_msg;
        e_col := 'rfq.' || e_col;
      end if;
      if e_hint is null then
        raise exception using errcode = 'P0001', column = e_col, message = e_msg;
      end if;
      raise exception using errcode = 'P0001', column = e_col, message = e_msg, hint = e_hint;
    end;
    if v_owner is not null or v_visible then
      insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id, summary)
      values (v_tenant, coalesce(v_owner, bizos.uid()), 'rfq_created', 'derived', v_customer_id, v_prospect_id,
              v_lead.lead_id, format('RFQ %s created from lead %s', v_ticket ->> 'ticket_no', v_lead.lead_no));
    end if;
  end if;

  if not v_visible then
    return jsonb_strip_nulls(jsonb_build_object(
      'lead_id', v_lead.lead_id, 'lead_no', v_lead.lead_no, 'status', v_lead.status, 'handed_over', true,
      'channel', v_lead.channel, 'company_name', v_lead.company_name, 'contact_name', v_lead.contact_name,
      'contact_email', v_lead.contact_email, 'contact_phone', v_lead.contact_phone, 'npwp', v_lead.npwp,
      'city', v_lead.city, 'notes', v_lead.notes,
      'ticket_id', v_ticket -> 'ticket_id', 'ticket_no', v_ticket -> 'ticket_no'));
  end if;
  return jsonb_strip_nulls(jsonb_build_object(
    'lead_id', v_lead.lead_id, 'lead_no', v_lead.lead_no, 'status', v_lead.status, 'handed_over', false,
    'customer_id', v_customer_id, 'prospect_id', v_prospect_id,
    'ticket_id', v_ticket -> 'ticket_id', 'ticket_no', v_ticket -> 'ticket_no',
    'customer_created', v_customer -> 'created', 'matched_on', v_customer -> 'matched_on',
    'candidates', v_customer -> 'candidates'));
end
$$;
revoke execute on function crm_create_lead_bundle(jsonb) from public;
grant execute on function crm_create_lead_bundle(jsonb) to bizos_authenticated;
select pin_search_path('crm_create_lead_bundle(jsonb)');
revoke execute on function crm_create_lead_bundle(jsonb) from public;
grant execute on function crm_create_lead_bundle(jsonb) to bizos_authenticated;

-- lead_update(lead_id, payload {status?, channel?, contact_name?,
--   contact_email?, contact_phone?, city?, notes?}) -> the lead.
-- Only the keys present change; null clears an optional field. The status
-- follows the lead lifecycle (bizos.transitions); ASSIGNED comes only from
-- crm_assign_lead.
create or replace function lead_update(lead_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  l leads;
begin
  perform require_permission('lead.update');
  perform payload_check(payload, '{"status": "text", "channel": "text", "contact_name": "text", "contact_email": "text", "contact_phone": "text", "city": "text", "notes": "text"}');
  if payload = '{}' then
    perform raise_field('payload', 'nothing to change');
  end if;
  if payload ? 'status' and upper(payload_text(payload, 'status', true, 20)) = 'ASSIGNED' then
    perform raise_field('status', 'leads are assigned with POST /api/leads/{id}/assign');
  end if;
  select * into l from leads x where x.tenant_id = v_tenant and x.lead_id = lead_update.lead_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'lead_id',
      message = format('lead_id: no lead %s', lead_update.lead_id);
  end if;
  -- The new values first, into the locked row: Citus refuses functions
  -- other than IMMUTABLE ones inside CASE in an UPDATE.
  if payload ? 'status' then
    l.status := upper(payload_text(payload, 'status', true, 20));
  end if;
  if payload ? 'channel' then
    l.channel := vocabulary_check('lead_channels', lower(payload_text(payload, 'channel', true, 30)), 'channel');
  end if;
  if payload ? 'contact_name' then
    l.contact_name := payload_text(payload, 'contact_name', false, 200);
  end if;
  if payload ? 'contact_email' then
    l.contact_email := payload_text(payload, 'contact_email', false, 320);
  end if;
  if payload ? 'contact_phone' then
    l.contact_phone := payload_text(payload, 'contact_phone', false, 50);
  end if;
  if payload ? 'city' then
    l.city := payload_text(payload, 'city', false, 100);
  end if;
  if payload ? 'notes' then
    l.notes := payload_text(payload, 'notes', false, 4000);
  end if;
  update leads x
     set status = l.status, channel = l.channel, contact_name = l.contact_name,
         contact_email = l.contact_email, contact_phone = l.contact_phone, city = l.city, notes = l.notes
   where x.tenant_id = v_tenant and x.lead_id = lead_update.lead_id
  returning * into l;
  if not found then
    raise exception using errcode = '42501', message = 'you may not change this lead';
  end if;
  return to_jsonb(l);
end
$$;
grant execute on function lead_update(uuid, jsonb) to bizos_authenticated;

-- Hands a lead to a salesperson (manager roles only). The lead's unassigned
-- prospect becomes the owner's, or the lead moves to the prospect the owner
-- already has for this customer: one pipeline entry per customer and owner.
create or replace function crm_assign_lead(lead_id uuid, salesperson uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_lead leads%rowtype;
  v_prospect prospects%rowtype;
  v_target uuid;
  v_current uuid;
begin
  perform require_permission('lead.assign');
  if lead_id is null then
    raise exception using errcode = 'P0001', column = 'lead_id', message = 'lead_id: required';
  end if;
  if salesperson is null then
    raise exception using errcode = 'P0001', column = 'sales_owner_user_id', message = 'sales_owner_user_id: required';
  end if;
  select l.* into v_lead from leads l where l.tenant_id = v_tenant and l.lead_id = crm_assign_lead.lead_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'lead_id', message = 'lead_id: no such lead';
  end if;
  if bizos.app_role() = 'sales_manager'
     and not (v_lead.sales_owner_user_id is null or v_lead.sales_owner_user_id = any (my_team_ids())) then
    raise exception using errcode = '42501', message = 'this lead belongs to another team';
  end if;
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = salesperson and p.active
                    and p.app_role in ('salesperson', 'sales_manager')) then
    raise exception using errcode = 'P0001', column = 'sales_owner_user_id',
      message = 'sales_owner_user_id: not an active salesperson or sales manager of this tenant';
  end if;
  if bizos.app_role() = 'sales_manager' and not (salesperson = any (my_team_ids())) then
    raise exception using errcode = '42501', column = 'sales_owner_user_id',
      message = 'sales managers assign leads within their team';
  end if;
  -- A customer the caller may not read stays with its current owner:
  -- assigning its lead elsewhere would split the pipeline and open the
  -- customer (and its invoices) to the assignee's team. Without a current
  -- owner the lead is the managers' to route.
  if not may_read_customer(v_lead.customer_id) then
    select o.owner_user_id into v_current from customer_current_owner(v_lead.customer_id) o;
    if v_current is not null and v_current <> salesperson then
      raise exception using errcode = '42501', column = 'lead_id',
        message = 'lead_id: this lead''s customer is handled by another team; its owner takes the lead';
    end if;
  end if;

  select p.* into v_prospect from prospects p where p.tenant_id = v_tenant and p.prospect_id = v_lead.prospect_id for update;
  select p.prospect_id into v_target from prospects p
   where p.tenant_id = v_tenant and p.customer_id = v_lead.customer_id and p.owner_user_id = salesperson;
  if v_target is null and v_prospect.owner_user_id is null then
    update prospects p set owner_user_id = salesperson
     where p.tenant_id = v_tenant and p.prospect_id = v_prospect.prospect_id;
    v_target := v_prospect.prospect_id;
  elsif v_target is null then
    v_target := prospect_ensure(v_lead.customer_id, salesperson);
  end if;

  update leads l
     set sales_owner_user_id = salesperson,
         assigned_at = now(),
         prospect_id = v_target,
         status = case when l.status = 'NEW' then 'ASSIGNED' else l.status end
   where l.tenant_id = v_tenant and l.lead_id = crm_assign_lead.lead_id;

  -- An unowned prospect left without leads is dropped, so data does not split.
  delete from prospects p
   where p.tenant_id = v_tenant and p.prospect_id = v_prospect.prospect_id and p.prospect_id <> v_target
     and p.owner_user_id is null
     and not exists (select 1 from leads l where l.tenant_id = v_tenant and l.prospect_id = p.prospect_id);

  insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id, summary)
  values (v_tenant, salesperson, 'lead_assigned', 'derived', v_lead.customer_id, v_target, v_lead.lead_id,
          format('Lead %s assigned', v_lead.lead_no));

  return jsonb_build_object('lead_id', v_lead.lead_id, 'sales_owner_user_id', salesperson, 'prospect_id', v_target);
end
$$;
revoke execute on function crm_assign_lead(uuid, uuid) from public;
grant execute on function crm_assign_lead(uuid, uuid) to bizos_authenticated;
select pin_search_path('crm_assign_lead(uuid, uuid)');
revoke execute on function crm_assign_lead(uuid, uuid) from public;
grant execute on function crm_assign_lead(uuid, uuid) to bizos_authenticated;

-- prospect_move(prospect_id, payload {stage, note?}) -> {prospect_id, from, to}
-- POST /api/prospects/{id}/stage: prospect_change_stage with a payload; a
-- transition the lifecycle does not allow is refused naming `stage`.
create or replace function prospect_move(prospect_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_stage text;
  v_note text;
  e_col text;
  e_msg text;
  e_hint text;
begin
  perform require_permission('prospect.stage');
  perform payload_check(payload, '{"stage": "text", "note": "text"}');
  v_stage := upper(payload_text(payload, 'stage', true, 20));
  v_note := payload_text(payload, 'note', false, 2000);
  begin
    return prospect_change_stage(prospect_move.prospect_id, v_stage, v_note);
  exception when sqlstate 'P0001' then
    -- The lifecycle guard names no field: the stage is what it refused.
    get stacked diagnostics e_col = column_name, e_msg = message_text, e_hint = pg_exception_hint;
    if coalesce(e_col, '') = '' then
      raise exception using errcode = 'P0001', column = 'stage', message = 'stage: ' || e_msg,
        hint = coalesce(nullif(e_hint, ''), 'see the prospect lifecycle');
    end if;
    raise;
  end;
end
$$;
grant execute on function prospect_move(uuid, jsonb) to bizos_authenticated;
comment on function prospect_move(uuid, jsonb) is
  'Moves a prospect to payload.stage (the lifecycle decides), with an optional note; the stage history and the activity follow from the trigger.';

-- A photo of a sales activity is an object of bucket prospect-evidence that
-- the activity's writer uploaded; photo_bucket and photo_object_key follow
-- from it. Without a user (the owner: demo data, migrations) the columns
-- are taken as written.
create or replace function sales_activities_photo() returns trigger
language plpgsql
as $$
declare
  o objects;
begin
  if new.photo_object_id is null then
    if bizos.uid() is not null and (new.photo_object_key is not null or new.photo_bucket is not null) then
      raise exception using errcode = 'P0001', column = 'photo_object_id',
        message = 'photo_object_id: a photo is an object of bucket prospect-evidence named by photo_object_id '
                  '(photo_bucket and photo_object_key follow from it)';
    end if;
    return new;
  end if;
  select * into o from objects x where x.tenant_id = new.tenant_id and x.object_id = new.photo_object_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'photo_object_id',
      message = format('photo_object_id: no file %s of yours in this tenant', new.photo_object_id);
  end if;
  if o.bucket <> 'prospect-evidence' then
    raise exception using errcode = 'P0001', column = 'photo_object_id',
      message = format('photo_object_id: file %s is in bucket %s, not prospect-evidence', o.object_id, o.bucket);
  end if;
  if bizos.uid() is not null and o.created_by is distinct from bizos.uid()
     and (tg_op = 'INSERT' or new.photo_object_id is distinct from old.photo_object_id) then
    raise exception using errcode = '42501', column = 'photo_object_id',
      message = format('photo_object_id: file %s was uploaded by someone else', o.object_id);
  end if;
  new.photo_bucket := o.bucket;
  new.photo_object_key := o.object_key;
  return new;
end
$$;
select pin_search_path('sales_activities_photo()');
revoke execute on function sales_activities_photo() from public;
comment on function sales_activities_photo() is
  'Trigger: a sales activity''s photo is an object of bucket prospect-evidence uploaded by its writer; photo_bucket and photo_object_key follow from photo_object_id.';
create or replace trigger sales_activities_photo
  before insert or update of photo_object_id, photo_bucket, photo_object_key on sales_activities
  for each row execute function sales_activities_photo();

-- sales_activity_create({activity_type, summary, occurred_at?, customer_id?,
--   prospect_id?, lead_id?, gps_lat?, gps_lng?, photo_object_id?})
--   -> the activity (a row of sales_activities)
-- POST /api/activities and POST /api/visits: a manual activity of the
-- caller about a customer they may read (named directly or through its
-- prospect or lead, which must agree). A visit needs its photo (an object
-- of bucket prospect-evidence the caller uploaded) and the GPS position;
-- other kinds may have them. occurred_at defaults to now and may not be
-- more than 5 minutes ahead (device clocks drift).
create or replace function sales_activity_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_type text;
  v_manual boolean;
  v_summary text;
  v_occurred timestamptz;
  v_customer uuid;
  v_prospect uuid;
  v_lead uuid;
  v_lat numeric;
  v_lng numeric;
  v_photo uuid;
  v_of_customer uuid;
  v_of_prospect uuid;
  r sales_activities;
begin
  perform require_permission('activity.create');
  perform payload_check(payload, '{"activity_type": "text", "summary": "text", "occurred_at": "text",
    "customer_id": "uuid", "prospect_id": "uuid", "lead_id": "uuid", "gps_lat": "number", "gps_lng": "number",
    "photo_object_id": "uuid"}');
  v_type := vocabulary_check('activity_types', lower(payload_text(payload, 'activity_type', true, 30)), 'activity_type');
  select t.manual into v_manual from activity_types t where t.code = v_type;
  if not v_manual then
    perform raise_field('activity_type', format('%s activities are written by the database, not logged by hand', v_type));
  end if;
  v_summary := payload_text(payload, 'summary', true, 2000);
  v_occurred := payload_timestamptz(payload, 'occurred_at');
  if v_occurred > now() + interval '5 minutes' then
    perform raise_field('occurred_at', format('%s is in the future', v_occurred));
  end if;
  v_customer := payload_uuid(payload, 'customer_id');
  v_prospect := payload_uuid(payload, 'prospect_id');
  v_lead := payload_uuid(payload, 'lead_id');
  v_lat := payload_numeric(payload, 'gps_lat', false, 7);
  if v_lat not between -90 and 90 then
    perform raise_field('gps_lat', 'must be between -90 and 90 (degrees of latitude)');
  end if;
  v_lng := payload_numeric(payload, 'gps_lng', false, 7);
  if v_lng not between -180 and 180 then
    perform raise_field('gps_lng', 'must be between -180 and 180 (degrees of longitude)');
  end if;
  if (v_lat is null) <> (v_lng is null) then
    perform raise_field(case when v_lat is null then 'gps_lat' else 'gps_lng' end,
                        'send gps_lat and gps_lng together');
  end if;
  v_photo := payload_uuid(payload, 'photo_object_id');
  if v_type = 'visit' then
    if v_photo is null then
      perform raise_field('photo_object_id',
        'a visit needs its photo (an upload of yours to bucket prospect-evidence; POST /api/visits takes both at once)');
    end if;
    if v_lat is null then
      perform raise_field('gps_lat', 'a visit needs the GPS position where its photo was taken');
    end if;
  end if;

  -- What the activity is about, as the caller may read it (RLS).
  if v_lead is not null then
    select l.customer_id, l.prospect_id into v_of_customer, v_of_prospect
      from leads l where l.tenant_id = v_tenant and l.lead_id = v_lead;
    if not found then
      raise exception using errcode = 'P0002', column = 'lead_id', message = format('lead_id: no lead %s', v_lead);
    end if;
    if v_prospect is not null and v_prospect <> v_of_prospect then
      perform raise_field('prospect_id', format('is not the prospect of lead %s', v_lead));
    end if;
    v_prospect := v_of_prospect;
  end if;
  if v_prospect is not null then
    select p.customer_id into v_of_customer
      from prospects p where p.tenant_id = v_tenant and p.prospect_id = v_prospect;
    if not found then
      raise exception using errcode = 'P0002', column = 'prospect_id',
        message = format('prospect_id: no prospect %s', v_prospect);
    end if;
    if v_customer is not null and v_customer <> v_of_customer then
      perform raise_field('customer_id', format('is not the customer of prospect %s', v_prospect));
    end if;
    v_customer := v_of_customer;
  end if;
  if v_customer is null then
    perform raise_field('customer_id', 'is required (or send prospect_id or lead_id): an activity is about a customer');
  end if;
  if not exists (select 1 from customers c where c.tenant_id = v_tenant and c.customer_id = v_customer) then
    raise exception using errcode = 'P0002', column = 'customer_id',
      message = format('customer_id: no customer %s', v_customer);
  end if;

  insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id,
                                occurred_at, summary, photo_object_id, gps_lat, gps_lng)
  values (v_tenant, bizos.uid(), v_type, 'manual', v_customer, v_prospect, v_lead,
          coalesce(v_occurred, now()), v_summary, v_photo, v_lat, v_lng)
  returning * into r;
  return to_jsonb(r);
end
$$;
grant execute on function sales_activity_create(jsonb) to bizos_authenticated;
comment on function sales_activity_create(jsonb) is
  'Logs a manual sales activity of the caller about a customer they read; a visit needs its photo (bucket prospect-evidence) and GPS.';
