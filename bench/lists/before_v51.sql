-- scripts/bench lists: the tickets and invoices select policies as V50
-- left them (a team's customers and leads as one array each, which every
-- fetched row was searched linearly; sql/api/ticketing.sql and
-- receivables.sql now read them a bucket at a time), to measure "before"
-- on the same data: BIZOS_BENCH_LISTS_THEN=bench/lists/before_v51.sql.
-- Run as the owner.
\set ON_ERROR_STOP on
begin;
-- The leads whose sales owner is of the caller's team, read once per
-- statement (the tickets policy's "tickets of the team's leads").
create or replace function team_lead_ids() returns uuid[]
language plpgsql stable security definer
as $$
declare
  v_team constant uuid[] := my_team_ids();
begin
  -- As the owner, as team_customer_ids: the leads policy lets every caller
  -- read the leads their team owns; leads_sales_owner_lead_idx holds these.
  return array(select l.lead_id from leads l
                where l.tenant_id = bizos.tenant_id()
                  and l.sales_owner_user_id = any (v_team)
                order by l.lead_id);
end
$$;
select pin_search_path('team_lead_ids()');
revoke execute on function team_lead_ids() from public;
grant execute on function team_lead_ids() to bizos_authenticated;
comment on function team_lead_ids() is
  'The leads whose sales owner is of the caller''s team, in order (for the tickets policy).';

do $$
declare
  v_sales constant text := $e$bizos.app_role() = any (array['sales_manager', 'salesperson'])$e$;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    return;
  end if;
  drop policy if exists "ticket readers by role, department, customer and lead" on tickets;
  execute format('create policy %I on tickets for select to bizos_authenticated using (%s)',
    'ticket readers by role, department, customer and lead',
    format('tenant_id = (select bizos.tenant_id()) and (%s'
           ' or (created_by = (select bizos.uid()) and created_by = bizos.uid())'
           ' or (assignee_user_id = (select bizos.uid()) and assignee_user_id = bizos.uid())'
           ' or (dept_target = (select my_dept_code()) and %s and dept_target = my_dept_code())'
           ' or (dept_target = %L and %s)'
           ' or (related_lead_id is not null and %s)'
           ' or (%s and %s)'
           ' or (related_customer_id = any ((select team_customer_ids())::uuid[]) and %s)'
           ' or (related_lead_id = any ((select team_lead_ids())::uuid[]) and %s))',
           policy_reads_all($e$bizos.app_role() = any (array['super_admin', 'director'])$e$, 'ticket_id'),
           policy_caller_is($e$bizos.app_role() = 'ops'$e$),
           'FIN', policy_caller_is($e$bizos.app_role() = 'finance'$e$),
           policy_caller_is($e$bizos.app_role() = 'marketing_manager'$e$),
           policy_team_owns('created_by'), policy_caller_is(v_sales),
           policy_caller_is(v_sales), policy_caller_is(v_sales)));
  drop policy if exists "holders of ticket.read_all read every ticket" on tickets;
  execute format('create policy %I on tickets for select to bizos_authenticated using (%s)',
    'holders of ticket.read_all read every ticket',
    format('tenant_id = (select bizos.tenant_id()) and %s',
           policy_reads_all($e$has_permission('ticket.read_all')$e$, 'ticket_id')));
end
$$;

do $$
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    return;
  end if;
  drop policy if exists "finance and directors read all invoices, sales their customers'" on invoices;
  execute format('create policy %I on invoices for select to bizos_authenticated using (%s)',
    'finance and directors read all invoices, sales their customers''',
    format('tenant_id = (select bizos.tenant_id()) and (%s'
           ' or (customer_id = any ((select team_customer_ids())::uuid[]) and %s))',
           policy_reads_all($e$bizos.app_role() = any (array['super_admin', 'director', 'finance'])$e$, 'invoice_id'),
           policy_caller_is($e$bizos.app_role() = any (array['sales_manager', 'salesperson'])$e$)));
  drop policy if exists "holders of invoice.read_all read every invoice" on invoices;
  execute format('create policy %I on invoices for select to bizos_authenticated using (%s)',
    'holders of invoice.read_all read every invoice',
    format('tenant_id = (select bizos.tenant_id()) and %s',
           policy_reads_all($e$has_permission('invoice.read_all')$e$, 'invoice_id')));
end
$$;

commit;
