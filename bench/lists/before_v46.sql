-- scripts/bench lists: the select policies of leads, prospects, sales
-- activities, tickets and invoices as they were before they were made
-- index-driven (as V3, V6, V14 and V35 left them; sql/api/crm.sql,
-- ticketing.sql and receivables.sql now), to measure "before" on the same
-- data: BIZOS_BENCH_LISTS_THEN=bench/lists/before_v46.sql. Run as the owner.
\set ON_ERROR_STOP on
begin;
drop policy "crm managers read all leads; sales their scope, not handed over" on leads;
create policy "crm managers read all leads; sales their scope, not handed over" on leads
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm())
              or sales_owner_user_id = any ((select my_team_ids())::uuid[])
              or (created_by = any ((select my_team_ids())::uuid[]) and not handed_over)
              or (sales_owner_user_id is null and (select bizos.app_role()) = 'sales_manager')));

drop policy "crm managers read all prospects; sales read their team's and th" on prospects;
create policy "crm managers read all prospects; sales read their team's and th" on prospects
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm())
              or owner_user_id = any ((select my_team_ids())::uuid[])
              or (owner_user_id is null and (select bizos.app_role()) = 'sales_manager')));

drop policy "managers and directors read their team's activities; sales thei" on sales_activities;
create policy "managers and directors read their team's activities; sales thei" on sales_activities
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = any (array['super_admin', 'director', 'marketing_manager'])
              or owner_user_id = any ((select my_team_ids())::uuid[])));
drop policy "holders of crm.read_all read every sales activity" on sales_activities;
create policy "holders of crm.read_all read every sales activity" on sales_activities
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('crm.read_all')));

drop policy "ticket readers by role, department, customer and lead" on tickets;
create policy "ticket readers by role, department, customer and lead" on tickets
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = any (array['super_admin', 'director'])
              or created_by = (select bizos.uid())
              or assignee_user_id = (select bizos.uid())
              or ((select bizos.app_role()) = 'ops' and dept_target = (select my_dept_code()))
              or ((select bizos.app_role()) = 'finance' and dept_target = 'FIN')
              or ((select bizos.app_role()) = 'marketing_manager' and related_lead_id is not null)
              or ((select bizos.app_role()) = any (array['sales_manager', 'salesperson'])
                  and (created_by = any ((select my_team_ids())::uuid[])
                       or (related_customer_id is not null and owns_customer(related_customer_id))
                       or (related_lead_id is not null
                           and exists (select 1 from leads l
                                        where l.tenant_id = tickets.tenant_id and l.lead_id = tickets.related_lead_id
                                          and l.sales_owner_user_id = any ((select my_team_ids())::uuid[])))))));
drop policy "holders of ticket.read_all read every ticket" on tickets;
create policy "holders of ticket.read_all read every ticket" on tickets
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('ticket.read_all')));

drop policy "finance and directors read all invoices, sales their customers'" on invoices;
create policy "finance and directors read all invoices, sales their customers'" on invoices
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = any (array['super_admin', 'director', 'finance'])
              or ((select bizos.app_role()) = any (array['sales_manager', 'salesperson'])
                  and owns_customer(customer_id))));
drop policy "holders of invoice.read_all read every invoice" on invoices;
create policy "holders of invoice.read_all read every invoice" on invoices
  for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.read_all')));
commit;
