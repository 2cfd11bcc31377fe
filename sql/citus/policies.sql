-- The policies that read another table, in the form Citus accepts (run by
-- every `bizos migrate` on a Citus coordinator before distribute.sql, as
-- the database owner; a table gets its form while it is still local).
--
-- Citus refuses any sub-select in a policy of a distributed table. These
-- policies make a row visible with another one (a message with its ticket,
-- a line with its invoice): here the EXISTS becomes a call of a function
-- that runs the same EXISTS. The function is SECURITY INVOKER, so the
-- other table's own policies apply exactly as they do inside the EXISTS.
--
-- On the shards the call runs inside a query on a shard, where Citus
-- refuses a distributed query unless citus.allow_nested_distributed_execution
-- is on; each function turns it on for itself only. Every query in them
-- filters on the row's own tenant_id, the distribution column of every
-- tenant table, so it is routed to the co-located shard of the same node
-- and executed locally, in the same transaction (it sees the transaction's
-- own writes; the "possibly incorrect" case Citus warns of is a nested
-- query that leaves the node).
--
-- Single-node databases keep the EXISTS form of the migrations.
--
-- Tables are named by name, not regclass: a policy is created on a shard
-- when its own table is distributed, possibly before the table it names.

create or replace function citus_visible_row(parent name, key_column name, tenant uuid, id uuid)
returns boolean
language plpgsql stable
set citus.allow_nested_distributed_execution = on
as $$
declare
  v_found boolean;
begin
  execute pg_catalog.format(
    'select exists (select 1 from %I where tenant_id = $1 and %I = $2)', parent, key_column)
    into v_found using tenant, id;
  return v_found;
end
$$;
select pin_search_path('citus_visible_row(name, name, uuid, uuid)');
comment on function citus_visible_row(name, name, uuid, uuid) is
  'Citus form of a policy''s EXISTS: is the row (tenant, id) of `parent` visible to the caller? (sql/citus/policies.sql)';

create or replace function citus_kpi_entry_of_caller(tenant uuid, entry uuid) returns boolean
language plpgsql stable
set citus.allow_nested_distributed_execution = on
as $$
begin
  return exists (
    select 1 from kpi_entries e
     where e.tenant_id = tenant and e.entry_id = entry
       and (bizos.app_role() = 'super_admin' or e.created_by = bizos.uid()));
end
$$;
select pin_search_path('citus_kpi_entry_of_caller(uuid, uuid)');

create or replace function citus_kb_document_of_caller(tenant uuid, document uuid) returns boolean
language plpgsql stable
set citus.allow_nested_distributed_execution = on
as $$
begin
  return exists (
    select 1 from kb_documents d
     where d.tenant_id = tenant and d.document_id = document and d.owner_user_id = bizos.uid());
end
$$;
select pin_search_path('citus_kb_document_of_caller(uuid, uuid)');

create or replace function citus_lead_of_my_team(tenant uuid, lead uuid) returns boolean
language plpgsql stable
set citus.allow_nested_distributed_execution = on
as $$
begin
  return exists (
    select 1 from leads l
     where l.tenant_id = tenant and l.lead_id = lead
       and l.sales_owner_user_id = any (my_team_ids()));
end
$$;
select pin_search_path('citus_lead_of_my_team(uuid, uuid)');

create or replace function citus_object_referenced(tenant uuid, object uuid, bucket text) returns boolean
language plpgsql stable
set citus.allow_nested_distributed_execution = on
as $$
begin
  return exists (select 1 from ticket_attachments a where a.tenant_id = tenant and a.object_id = object)
      or exists (select 1 from kpi_evidence e where e.tenant_id = tenant and e.object_id = object)
      or (bucket = 'knowledge' and exists (
            select 1 from kb_documents d
             where d.tenant_id = tenant and (d.object_id = object or d.ready_object_id = object)))
      or (bucket = 'prospect-evidence' and exists (
            select 1 from sales_activities s where s.tenant_id = tenant and s.photo_object_id = object))
      or (bucket = 'customer-documents' and exists (
            select 1 from customer_documents c where c.tenant_id = tenant and c.object_id = object));
end
$$;
select pin_search_path('citus_object_referenced(uuid, uuid, text)');

do $$
declare
  f text;
begin
  foreach f in array array[
    'citus_visible_row(name, name, uuid, uuid)', 'citus_kpi_entry_of_caller(uuid, uuid)',
    'citus_kb_document_of_caller(uuid, uuid)', 'citus_lead_of_my_team(uuid, uuid)',
    'citus_object_referenced(uuid, uuid, text)']
  loop
    execute pg_catalog.format('revoke execute on function %s from public', f);
    execute pg_catalog.format('grant execute on function %s to bizos_authenticated', f);
  end loop;
end
$$;

-- The policies, altered on the tables Citus does not hold yet only: this
-- file runs with every `bizos migrate` on a Citus coordinator, before
-- distribute.sql, so a table that a later migration adds to an already
-- distributed database (refunds, credit notes, customer merges came so)
-- gets its Citus form before it is distributed. A distributed table got
-- its form when it was distributed (and Citus would refuse the sub-selects
-- of the caller's helpers here; distribute.sql unwraps them).
do $policies$
declare
  r record;
begin
  for r in
    select p.*
      from (values
    ('prospect_stage_history', 'stage history is visible with its prospect', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('prospects', 'prospect_id', tenant_id, prospect_id)$e$),
    ('sla_events', 'sla events are visible with their ticket', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('tickets', 'ticket_id', tenant_id, ticket_id)$e$),
    ('ticket_messages', 'messages are visible with their ticket', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('tickets', 'ticket_id', tenant_id, ticket_id)$e$),
    ('ticket_messages', 'users with ticket.message write on visible tickets', 'with check',
     $e$tenant_id = (select bizos.tenant_id()) and author_user_id = (select bizos.uid())
              and (select has_permission('ticket.message'))
              and citus_visible_row('tickets', 'ticket_id', tenant_id, ticket_id)$e$),
    ('ticket_attachments', 'attachments are visible with their ticket', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('tickets', 'ticket_id', tenant_id, ticket_id)$e$),
    ('ticket_attachments', 'users with ticket.message attach to visible tickets', 'with check',
     $e$tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid())
              and (select has_permission('ticket.message'))
              and citus_visible_row('tickets', 'ticket_id', tenant_id, ticket_id)$e$),
    ('payments', 'callers read payments of the invoices they can read', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('invoices', 'invoice_id', tenant_id, invoice_id)$e$),
    ('refunds', 'callers read refunds of the invoices they can read', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('invoices', 'invoice_id', tenant_id, invoice_id)$e$),
    ('credit_notes', 'callers read credit notes of the invoices they can read', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('invoices', 'invoice_id', tenant_id, invoice_id)$e$),
    ('invoice_lines', 'readers of an invoice read its lines', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('invoices', 'invoice_id', tenant_id, invoice_id)$e$),
    ('kpi_evidence', 'evidence is visible with its entry', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('kpi_entries', 'entry_id', tenant_id, entry_id)$e$),
    ('kpi_evidence', 'entry creators attach evidence', 'with check',
     $e$tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
              and citus_kpi_entry_of_caller(tenant_id, entry_id)$e$),
    ('kpi_evidence', 'entry creators remove evidence', 'using',
     $e$tenant_id = (select bizos.tenant_id()) and (select has_permission('kpi.entry.create'))
         and citus_kpi_entry_of_caller(tenant_id, entry_id)$e$),
    ('import_rows', 'import rows are visible with their import', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('imports', 'import_id', tenant_id, import_id)$e$),
    ('kb_chunk_staging', 'managers of a document see the chunks of its ingestion in progress', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = 'super_admin' or citus_kb_document_of_caller(tenant_id, document_id))$e$),
    ('rfm_scores', 'members read the scores of the customers they may read', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('customers', 'customer_id', tenant_id, customer_id)$e$),
    ('customer_documents', 'documents are visible with their customer', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('customers', 'customer_id', tenant_id, customer_id)$e$),
    ('customer_documents', 'holders of customer.document attach documents to customers they can read', 'with check',
     $e$tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid())
              and (select has_permission('customer.document'))
              and citus_visible_row('customers', 'customer_id', tenant_id, customer_id)$e$),
    ('customer_merges', 'merges are visible with their surviving customer', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and citus_visible_row('customers', 'customer_id', tenant_id, customer_id)$e$),
    ('objects', 'files are visible to their uploader, super admins and through their references', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid()) or (select bizos.app_role()) = 'super_admin'
              or citus_object_referenced(tenant_id, object_id, bucket))$e$),
    ('tickets', 'ticket readers by role, department, customer and lead', 'using',
     $e$tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = any (array['super_admin', 'director'])
              or created_by = (select bizos.uid())
              or assignee_user_id = (select bizos.uid())
              or ((select bizos.app_role()) = 'ops' and dept_target = (select my_dept_code()))
              or ((select bizos.app_role()) = 'finance' and dept_target = 'FIN')
              or ((select bizos.app_role()) = 'marketing_manager' and related_lead_id is not null)
              or ((select bizos.app_role()) = any (array['sales_manager', 'salesperson'])
                  and (created_by = any ((select my_team_ids())::uuid[])
                       or (related_customer_id is not null and owns_customer(related_customer_id))
                       or (related_lead_id is not null and citus_lead_of_my_team(tenant_id, related_lead_id)))))$e$)
           ) as p (tbl, pol, kind, expr)
     where not exists (select 1 from pg_catalog.pg_dist_partition d
                        where d.logicalrelid = pg_catalog.to_regclass(p.tbl))
  loop
    execute pg_catalog.format('alter policy %I on %I %s (%s)', r.pol, r.tbl, r.kind, r.expr);
  end loop;
end
$policies$;

-- The subscriptions' copy of their endpoint's `enabled` is kept by a
-- foreign key with ON UPDATE CASCADE on a single node; Citus supports no
-- cascading update on a key with the distribution column, so on Citus the
-- key leaves `enabled` out and this trigger copies it. Each change is made
-- where it is missing only (DDL on a distributed table reaches every
-- shard).
do $$
begin
  if exists (select 1 from pg_catalog.pg_constraint
              where conrelid = 'webhook_subscriptions'::regclass
                and conname = 'webhook_subscriptions_endpoint_id_enabled_fkey') then
    alter table webhook_subscriptions drop constraint webhook_subscriptions_endpoint_id_enabled_fkey;
  end if;
  if not exists (select 1 from pg_catalog.pg_constraint
                  where conrelid = 'webhook_subscriptions'::regclass
                    and conname = 'webhook_subscriptions_endpoint_id_fkey') then
    alter table webhook_subscriptions add constraint webhook_subscriptions_endpoint_id_fkey
      foreign key (tenant_id, endpoint_id) references webhook_endpoints (tenant_id, endpoint_id) on delete cascade;
  end if;
end
$$;

create or replace function citus_webhook_subscriptions_enabled() returns trigger
language plpgsql
as $$
begin
  update webhook_subscriptions s set enabled = new.enabled
   where s.tenant_id = new.tenant_id and s.endpoint_id = new.endpoint_id;
  return null;
end
$$;
select pin_search_path('citus_webhook_subscriptions_enabled()');
do $$
begin
  if not exists (select 1 from pg_catalog.pg_trigger
                  where tgrelid = 'webhook_endpoints'::regclass
                    and tgname = 'citus_webhook_subscriptions_enabled') then
    create trigger citus_webhook_subscriptions_enabled
      after update of enabled on webhook_endpoints
      for each row when (old.enabled is distinct from new.enabled)
      execute function citus_webhook_subscriptions_enabled();
  end if;
end
$$;
