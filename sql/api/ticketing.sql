-- Ticketing: tickets and inquiries, messages, attachments, SLA policies and
-- status, and the views over them.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- Defaults and invariants that clients cannot bypass: the status column of
-- the type starts OPEN; stamps start empty; type and creator never change.
create or replace function tickets_before_write() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    if new.ticket_type = 'inquiry_tariff' then
      new.inquiry_status := coalesce(new.inquiry_status, 'OPEN');
    elsif new.ticket_type is not null then
      new.ticket_status := coalesce(new.ticket_status, 'OPEN');
    end if;
    new.first_response_at := null;
    new.quoted_at := null;
    new.resolved_at := null;
    new.closed_at := null;
    new.cancelled_at := null;
  else
    if new.ticket_type is distinct from old.ticket_type then
      raise exception using errcode = 'P0001', column = 'ticket_type',
        message = 'ticket_type: the type of a ticket cannot change; create a new ticket';
    end if;
    if new.created_by is distinct from old.created_by then
      raise exception using errcode = 'P0001', column = 'created_by',
        message = 'created_by: the creator of a ticket cannot change';
    end if;
  end if;
  return new;
end
$$;

-- No messages on finished tickets. (No pinned search_path: the read of
-- tickets runs under the caller's RLS, whose policies call unqualified
-- helpers such as owns_customer().)
create or replace function ticket_messages_before_insert() returns trigger
language plpgsql
as $$
declare
  v_status text;
begin
  select coalesce(t.inquiry_status, t.ticket_status) into v_status
    from tickets t
   where t.tenant_id = new.tenant_id and t.ticket_id = new.ticket_id;
  if v_status in ('CLOSED', 'CANCELLED', 'WON', 'LOST') then
    raise exception using errcode = 'P0001', column = 'ticket_id',
      message = format('ticket_id: the ticket is %s; no more messages can be added', v_status);
  end if;
  return new;
end
$$;

-- Every tenant starts with a full matrix (a business day is 540 minutes):
-- every ticket type (the vocabulary) with the default targets of each
-- priority (a priority added to ticket_priorities needs its targets here).
create or replace function default_sla_policies()
returns table (ticket_type text, priority text, response_minutes integer, resolution_minutes integer)
language sql stable
as $$
  select t.code, p.priority, p.response_minutes, p.resolution_minutes
    from ticket_types t
   cross join (values ('urgent', 30, 240), ('high', 60, 540), ('normal', 240, 1620), ('low', 480, 2700))
         p (priority, response_minutes, resolution_minutes)
$$;
-- Called by grant_default_sla_policies under its own (pg_catalog) path.
select pin_search_path('default_sla_policies()');

create or replace function seed_default_sla_policies(tenant uuid) returns void
language plpgsql
as $$
begin
    insert into sla_policies (tenant_id, ticket_type, priority, response_minutes, resolution_minutes)
    select tenant, d.ticket_type, d.priority, d.response_minutes, d.resolution_minutes
      from default_sla_policies() d
    on conflict do nothing;
end
$$;
select pin_search_path('seed_default_sla_policies(uuid)');
revoke execute on function seed_default_sla_policies(uuid) from public;

-- Trigger of tenants (single node; on Citus tenant_create() seeds).
create or replace function grant_default_sla_policies() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format('select %I.seed_default_sla_policies($1)', tg_table_schema) using new.tenant_id;
  return null;
end
$$;

-- RFQs as ops read them (TCK-2, C5): when need_customer_masking is set, the
-- company and the contacts are masked. Security invoker: the caller's RLS
-- on tickets decides the rows.
create or replace view v_ops_rfqs_masked with (security_invoker = true) as
select t.tenant_id, t.ticket_id, t.ticket_no, t.subject, t.description, t.priority, t.dept_target,
       t.inquiry_status, t.need_customer_masking, t.assignee_user_id,
       t.origin, t.destination, t.commodity, t.weight_kg, t.volume_cbm,
       case when t.need_customer_masking then 'MASKED' else t.company_name end as company_name,
       case when t.need_customer_masking and t.contact_name is not null then '***' else t.contact_name end as contact_name,
       case when t.need_customer_masking and t.contact_phone is not null then '***' else t.contact_phone end as contact_phone,
       case when t.need_customer_masking and t.contact_email is not null then '***' else t.contact_email end as contact_email,
       t.first_response_at, t.quoted_at, t.resolved_at, t.closed_at, t.created_at, t.updated_at
  from tickets t
 where t.ticket_type = 'inquiry_tariff';
comment on view v_ops_rfqs_masked is 'RFQs for ops: company "MASKED" and contacts "***" when need_customer_masking (TCK-2).';
grant select on v_ops_rfqs_masked  to bizos_authenticated;

-- First response per ticket (TCK-3): NULL until someone other than the
-- creator replies.
create or replace view v_ticket_first_response with (security_invoker = true) as
select t.tenant_id, t.ticket_id, t.ticket_no, t.ticket_type, t.priority, t.dept_target,
       t.created_at, t.first_response_at,
       round(extract(epoch from (t.first_response_at - t.created_at)) / 60, 2) as first_response_minutes,
       business_minutes_between(t.tenant_id, t.created_at, t.first_response_at) as first_response_business_minutes
  from tickets t;
comment on view v_ticket_first_response is 'Minutes and business minutes from creation to the first response; NULL without a reply.';
grant select on v_ticket_first_response  to bizos_authenticated;

-- SLA status per ticket (C4, TCK-3). The response clock stops at the first
-- response (or when the ticket is resolved, closed or cancelled without
-- one); the resolution clock at resolution (QUOTED for RFQs), closing or
-- cancelling. status: breached if either target was missed, met once the
-- ticket is finished in time, due while running in time; NULL without a
-- policy.
create or replace view v_sla_status with (security_invoker = true) as
with s as (
  select t.tenant_id, t.ticket_id, t.ticket_no, t.ticket_type, t.priority, t.dept_target,
         coalesce(t.inquiry_status, t.ticket_status) as ticket_state,
         t.created_at, t.first_response_at, t.resolved_at, t.closed_at, t.cancelled_at,
         p.response_minutes, p.resolution_minutes,
         add_business_minutes(t.tenant_id, t.created_at, p.response_minutes) as response_due_at,
         add_business_minutes(t.tenant_id, t.created_at, p.resolution_minutes) as resolution_due_at,
         coalesce(t.first_response_at, t.resolved_at, t.closed_at, t.cancelled_at) as responded_at,
         coalesce(t.resolved_at, t.closed_at, t.cancelled_at) as finished_at
    from tickets t
    left join sla_policies p
      on p.tenant_id = t.tenant_id and p.ticket_type = t.ticket_type and p.priority = t.priority
)
select s.tenant_id, s.ticket_id, s.ticket_no, s.ticket_type, s.priority, s.dept_target, s.ticket_state,
       s.created_at, s.first_response_at, s.resolved_at, s.closed_at, s.cancelled_at,
       s.response_minutes, s.resolution_minutes, s.response_due_at, s.resolution_due_at,
       coalesce(coalesce(s.responded_at, now()) > s.response_due_at, false) as response_breached,
       coalesce(coalesce(s.finished_at, now()) > s.resolution_due_at, false) as resolution_breached,
       case
         when s.response_due_at is null then null
         when coalesce(s.responded_at, now()) > s.response_due_at
           or coalesce(s.finished_at, now()) > s.resolution_due_at then 'breached'
         when s.finished_at is not null then 'met'
         else 'due'
       end as sla_status
  from s;
comment on view v_sla_status is 'Due times from sla_policies in business minutes, breaches and met/due/breached per ticket.';
grant select on v_sla_status  to bizos_authenticated;

-- Bad input: P0001 with the field as `column` (the BFF maps it to the field).
-- Is `assignee` an active user who may work tickets of `dept`?
create or replace function tck_can_work(assignee uuid, dept text) returns boolean
language sql stable
as $$
  select exists (
    select 1 from profiles p
     where p.tenant_id = bizos.tenant_id() and p.user_id = assignee and p.active
       and (p.app_role = 'super_admin'
            or (p.app_role = 'ops' and p.dept_code = dept)
            or (p.app_role = 'finance' and dept = 'FIN')))
$$;

-- ticket_transition(ticket_id, to_status, note) → {ticket_id, ticket_no,
-- column, from, to, changed, resolved_at, closed_at}. The note becomes a
-- message of the caller (a reply, so it can be the first response). Moving
-- to the current status is a no-op (changed = false): retries are safe.
create or replace function ticket_transition(ticket_id uuid, to_status text, note text default null) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_to text := upper(nullif(btrim(to_status), ''));
  v_note text := nullif(btrim(note), '');
  v_ticket tickets;
  v_entity text;
  v_column text;
  v_from text;
  v_allowed text[];
begin
  perform require_permission('ticket.update');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  if v_to is null then
    perform raise_field('to_status', 'required');
  end if;
  if length(v_note) > 20000 then
    perform raise_field('note', 'at most 20000 characters');
  end if;
  if not exists (select 1 from tickets t
                  where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  -- May the caller work this ticket? FOR UPDATE applies the UPDATE policy
  -- too, and serialises concurrent transitions of one ticket.
  select t.* into v_ticket from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
   for update;
  if not found then
    raise exception using errcode = '42501', column = 'ticket_id',
      message = 'ticket_id: you may see this ticket but not change it';
  end if;
  if v_ticket.ticket_type = 'inquiry_tariff' then
    v_entity := 'inquiry'; v_column := 'inquiry_status'; v_from := v_ticket.inquiry_status;
  else
    v_entity := 'ticket'; v_column := 'ticket_status'; v_from := v_ticket.ticket_status;
  end if;
  if not exists (select 1 from bizos.transitions x where x.entity = v_entity and x.to_status = v_to) then
    perform raise_field('to_status', format('unknown status %s for %s tickets', v_to, v_ticket.ticket_type));
  end if;
  if v_to = v_from then
    return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
      'column', v_column, 'from', v_from, 'to', v_to, 'changed', false,
      'resolved_at', v_ticket.resolved_at, 'closed_at', v_ticket.closed_at);
  end if;
  select array_agg(x.to_status order by x.to_status) into v_allowed from bizos.transitions x
   where x.entity = v_entity and x.from_status = v_from;
  if v_allowed is null or not v_to = any (v_allowed) then
    raise exception using errcode = 'P0001', column = 'to_status',
      message = format('to_status: a %s cannot move from %s to %s', v_entity, v_from, v_to),
      hint = case when v_allowed is null then format('%s is a final state', v_from)
                  else format('from %s it can move to %s', v_from, array_to_string(v_allowed, ', ')) end;
  end if;
  if v_note is not null then
    insert into ticket_messages (tenant_id, ticket_id, author_user_id, body, internal)
    values (v_tenant, v_ticket.ticket_id, bizos.uid(), v_note, false);
  end if;
  if v_column = 'inquiry_status' then
    update tickets t set inquiry_status = v_to
     where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
    returning t.* into v_ticket;
  else
    update tickets t set ticket_status = v_to
     where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
    returning t.* into v_ticket;
  end if;
  return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
    'column', v_column, 'from', v_from, 'to', v_to, 'changed', true,
    'resolved_at', v_ticket.resolved_at, 'closed_at', v_ticket.closed_at);
end
$$;
grant execute on function ticket_transition(uuid, text, text)
  to bizos_authenticated;

-- ticket_add_message(ticket_id, body, internal) → {message_id, ticket_id,
-- first_response_at}.
create or replace function ticket_add_message(ticket_id uuid, body text, internal boolean default false) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_body text := nullif(btrim(body), '');
  v_message uuid;
  v_first timestamptz;
begin
  perform require_permission('ticket.message');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  if v_body is null then
    perform raise_field('body', 'required');
  end if;
  if length(v_body) > 20000 then
    perform raise_field('body', 'at most 20000 characters');
  end if;
  if not exists (select 1 from tickets t where t.tenant_id = v_tenant and t.ticket_id = ticket_add_message.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  insert into ticket_messages (tenant_id, ticket_id, author_user_id, body, internal)
  values (v_tenant, ticket_add_message.ticket_id, bizos.uid(), v_body, coalesce(ticket_add_message.internal, false))
  returning message_id into v_message;
  select t.first_response_at into v_first from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_add_message.ticket_id;
  return jsonb_build_object('message_id', v_message, 'ticket_id', ticket_add_message.ticket_id,
                            'first_response_at', v_first);
end
$$;
grant execute on function ticket_add_message(uuid, text, boolean)
  to bizos_authenticated;

-- ticket_assign(ticket_id, assignee) → {ticket_id, ticket_no,
-- assignee_user_id}; NULL unassigns. The assignee must be able to work the
-- ticket's department (ops of it, finance for FIN, or a super admin).
create or replace function ticket_assign(ticket_id uuid, assignee uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_ticket tickets;
begin
  perform require_permission('ticket.update');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  select t.* into v_ticket from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_assign.ticket_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  if assignee is not null and not tck_can_work(assignee, v_ticket.dept_target) then
    perform raise_field('assignee_user_id', format('not an active user who works tickets of %s', v_ticket.dept_target));
  end if;
  update tickets t set assignee_user_id = assignee
   where t.tenant_id = v_tenant and t.ticket_id = ticket_assign.ticket_id
  returning t.* into v_ticket;
  if not found then
    raise exception using errcode = '42501', column = 'ticket_id',
      message = 'ticket_id: you may see this ticket but not change it';
  end if;
  return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
                            'assignee_user_id', v_ticket.assignee_user_id);
end
$$;
grant execute on function ticket_assign(uuid, uuid)
  to bizos_authenticated;

-- ticket_attachment_add(ticket_id, object_id) -> {attachment_id, ticket_id, object_id}
create or replace function ticket_attachment_add(ticket_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  perform require_permission('ticket.message');
  if not exists (select 1 from tickets t where t.tenant_id = v_tenant and t.ticket_id = ticket_attachment_add.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id',
      message = format('ticket_id: no ticket %s', ticket_attachment_add.ticket_id);
  end if;
  insert into ticket_attachments (tenant_id, ticket_id, object_id)
  values (v_tenant, ticket_attachment_add.ticket_id, ticket_attachment_add.object_id)
  returning attachment_id into v_id;
  return jsonb_build_object('attachment_id', v_id, 'ticket_id', ticket_attachment_add.ticket_id,
                            'object_id', ticket_attachment_add.object_id);
end
$$;
grant execute on function ticket_attachment_add(uuid, uuid)
  to bizos_authenticated;

-- Tickets as the API lists them: the caller's RLS scope, with the customer
-- of masked tickets (RFQs) hidden from ops, as v_ops_rfqs_masked does (TCK-2).
-- The tickets select policy (V3, V14) branch by branch in a form indexes
-- serve (docs/schema.md, "What a policy costs"; the helpers in
-- platform.sql): a restricted caller's page or count reads the tickets it
-- may see, not the tenant's. Each role test is a conjunct of the branch it
-- opens (policy_caller_is), so every branch is a condition on an indexed
-- column; owns_customer(related_customer_id) (the team's customers) and
-- the EXISTS on the related lead (the team's leads) are the ticket's
-- sales_owners (V57, kept by the triggers below) against the team
-- (policy_team_owns_any), one probe per team user in
-- tickets_sales_owners_idx, not one per team customer and lead. Holders of
-- ticket.read_all have a policy of their own (V35), rewritten the same
-- way. On Citus the policies stay as sql/citus/policies.sql has them.
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
           ' or (%s and %s))',
           policy_reads_all($e$bizos.app_role() = any (array['super_admin', 'director'])$e$, 'ticket_id'),
           policy_caller_is($e$bizos.app_role() = 'ops'$e$),
           'FIN', policy_caller_is($e$bizos.app_role() = 'finance'$e$),
           policy_caller_is($e$bizos.app_role() = 'marketing_manager'$e$),
           policy_team_owns('created_by'), policy_caller_is(v_sales),
           policy_team_owns_any('sales_owners'), policy_caller_is(v_sales)));
  drop policy if exists "holders of ticket.read_all read every ticket" on tickets;
  execute format('create policy %I on tickets for select to bizos_authenticated using (%s)',
    'holders of ticket.read_all read every ticket',
    format('tenant_id = (select bizos.tenant_id()) and %s',
           policy_reads_all($e$has_permission('ticket.read_all')$e$, 'ticket_id')));
end
$$;

-- The team's leads as one array, which the tickets policy tested rows
-- against before it read them a bucket at a time (V51), then their sales
-- owners (V57).
drop function if exists team_lead_ids();

-- A ticket's sales owners: of its related customer and lead
-- (sales_owners_derive, crm.sql).
create or replace trigger tickets_sales_owners
  before insert or update on tickets
  for each row execute function sales_owners_derive('related_customer_id', 'related_lead_id');

create or replace view v_tickets with (security_invoker = true) as
select t.tenant_id, t.ticket_id, t.ticket_no, t.ticket_type, t.subject, t.description, t.priority, t.dept_target,
       coalesce(t.inquiry_status, t.ticket_status) as status, t.inquiry_status, t.ticket_status,
       t.need_customer_masking, t.related_lead_id, t.related_customer_id, t.assignee_user_id, t.created_by,
       t.origin, t.destination, t.commodity, t.weight_kg, t.volume_cbm,
       case when t.need_customer_masking and bizos.app_role() = 'ops' then 'MASKED' else t.company_name end as company_name,
       case when t.need_customer_masking and bizos.app_role() = 'ops' and t.contact_name is not null then '***' else t.contact_name end as contact_name,
       case when t.need_customer_masking and bizos.app_role() = 'ops' and t.contact_phone is not null then '***' else t.contact_phone end as contact_phone,
       case when t.need_customer_masking and bizos.app_role() = 'ops' and t.contact_email is not null then '***' else t.contact_email end as contact_email,
       t.first_response_at, t.quoted_at, t.resolved_at, t.closed_at, t.created_at, t.updated_at
  from tickets t;
comment on view v_tickets is 'Tickets in the caller''s scope; customer details of masked tickets are hidden from ops (TCK-2).';
grant select on v_tickets to bizos_authenticated;

-- ticket_create(payload) → {ticket_id, ticket_no, ticket_type, status}.
-- Fields: ticket_type*, subject*, dept_target*, description, priority
-- (normal), need_customer_masking (true for inquiry_tariff, else false),
-- related_lead_id, related_customer_id (from the lead when omitted),
-- assignee_user_id (needs ticket.update); for inquiry_tariff also origin*,
-- destination*, commodity, weight_kg, volume_cbm, contact_name,
-- contact_phone, contact_email, company_name (snapshots taken from the
-- customer when omitted).
-- A customer is linked and snapshotted only when the caller may read it.
create or replace function ticket_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  c_rfq constant text[] := array[
    'origin', 'destination', 'commodity', 'weight_kg', 'volume_cbm',
    'contact_name', 'contact_phone', 'contact_email', 'company_name'];
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_key text;
  v_type text;
  v_subject text;
  v_description text;
  v_priority text;
  v_dept text;
  v_mask boolean;
  v_lead uuid;
  v_customer uuid;
  v_lead_customer uuid;
  v_assignee uuid;
  v_origin text;
  v_destination text;
  v_commodity text;
  v_weight numeric;
  v_volume numeric;
  v_contact_name text;
  v_contact_phone text;
  v_contact_email text;
  v_company text;
  v_cust_company text;
  v_cust_email text;
  v_cust_phone text;
  v_row tickets;
begin
  perform require_permission('ticket.create');
  if v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"ticket_type": "text", "subject": "text", "description": "text",
    "priority": "text", "dept_target": "text", "need_customer_masking": "boolean", "related_lead_id": "uuid",
    "related_customer_id": "uuid", "assignee_user_id": "uuid", "origin": "text", "destination": "text",
    "commodity": "text", "weight_kg": "number", "volume_cbm": "number", "contact_name": "text",
    "contact_phone": "text", "contact_email": "text", "company_name": "text"}');

  v_type := vocabulary_check('ticket_types', payload_text(payload, 'ticket_type', true, 32), 'ticket_type');
  v_subject := payload_text(payload, 'subject', true, 200);
  v_description := payload_text(payload, 'description', false, 20000);
  v_priority := vocabulary_check('ticket_priorities',
                                 coalesce(lower(payload_text(payload, 'priority', false, 16)), 'normal'), 'priority');
  v_dept := upper(payload_text(payload, 'dept_target', true, 32));
  if v_dept !~ '^[A-Z][A-Z0-9_-]{0,31}$' then
    perform raise_field('dept_target', 'must be a department code such as OPS-JKT or FIN');
  end if;
  if v_dept <> 'FIN' and not exists (
       select 1 from profiles p where p.tenant_id = v_tenant and p.dept_code = v_dept and p.active) then
    perform raise_field('dept_target', format('no department %s in this tenant', v_dept));
  end if;
  v_mask := coalesce(payload_bool(payload, 'need_customer_masking'), v_type = 'inquiry_tariff');

  v_lead := payload_uuid(payload, 'related_lead_id');
  if v_lead is not null then
    select l.customer_id into v_lead_customer from leads l
     where l.tenant_id = v_tenant and l.lead_id = v_lead;
    if not found then
      perform raise_field('related_lead_id', 'no such lead');
    end if;
  end if;
  -- A customer is linked and its contacts snapshotted only when the caller
  -- may read it (customer_readable), also when this runs inside a function
  -- that crosses RLS (the lead bundle, collection tickets).
  v_customer := payload_uuid(payload, 'related_customer_id');
  if v_customer is not null then
    if not may_read_customer(v_customer) then
      perform raise_field('related_customer_id', 'no such customer');
    end if;
    select c.company_name, c.email, c.phone into v_cust_company, v_cust_email, v_cust_phone
      from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_customer;
    if v_lead_customer is not null and v_lead_customer <> v_customer then
      perform raise_field('related_customer_id', 'differs from the customer of the related lead');
    end if;
  elsif v_lead_customer is not null and may_read_customer(v_lead_customer) then
    v_customer := v_lead_customer;
    select c.company_name, c.email, c.phone into v_cust_company, v_cust_email, v_cust_phone
      from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_customer;
  end if;

  v_assignee := payload_uuid(payload, 'assignee_user_id');
  if v_assignee is not null then
    if not has_permission('ticket.update') then
      raise exception using errcode = '42501', column = 'assignee_user_id',
        message = format('your role (%s) may not assign tickets', bizos.app_role());
    end if;
    if not tck_can_work(v_assignee, v_dept) then
      perform raise_field('assignee_user_id', format('not an active user who works tickets of %s', v_dept));
    end if;
  end if;

  if v_type <> 'inquiry_tariff' then
    foreach v_key in array c_rfq loop
      if payload ? v_key and jsonb_typeof(payload -> v_key) <> 'null' then
        perform raise_field(v_key, 'only for inquiry_tariff tickets');
      end if;
    end loop;
  else
    v_origin := payload_text(payload, 'origin', true, 200);
    v_destination := payload_text(payload, 'destination', true, 200);
    v_commodity := payload_text(payload, 'commodity', false, 200);
    v_weight := payload_positive(payload, 'weight_kg');
    v_volume := payload_positive(payload, 'volume_cbm');
    v_contact_name := payload_text(payload, 'contact_name', false, 200);
    v_contact_phone := payload_text(payload, 'contact_phone', false, 40);
    if v_contact_phone is not null then
      v_contact_phone := bizos.norm_phone(v_contact_phone);
      if v_contact_phone is null then
        perform raise_field('contact_phone', 'not a valid phone number');
      end if;
    end if;
    v_contact_email := payload_text(payload, 'contact_email', false, 254);
    if v_contact_email is not null then
      v_contact_email := bizos.norm_email(v_contact_email);
      if v_contact_email is null then
        perform raise_field('contact_email', 'not a valid e-mail address');
      end if;
    end if;
    v_company := payload_text(payload, 'company_name', false, 200);
    v_company := coalesce(v_company, v_cust_company);
    v_contact_email := coalesce(v_contact_email, bizos.norm_email(v_cust_email));
    v_contact_phone := coalesce(v_contact_phone, bizos.norm_phone(v_cust_phone));
  end if;

  insert into tickets (tenant_id, ticket_type, subject, description, priority, dept_target,
                       need_customer_masking, related_lead_id, related_customer_id, assignee_user_id, created_by,
                       origin, destination, commodity, weight_kg, volume_cbm,
                       contact_name, contact_phone, contact_email, company_name)
  values (v_tenant, v_type, v_subject, v_description, v_priority, v_dept,
          v_mask, v_lead, v_customer, v_assignee, v_uid,
          v_origin, v_destination, v_commodity, v_weight, v_volume,
          v_contact_name, v_contact_phone, v_contact_email, v_company)
  returning * into v_row;

  return jsonb_build_object('ticket_id', v_row.ticket_id, 'ticket_no', v_row.ticket_no,
                            'ticket_type', v_row.ticket_type,
                            'status', coalesce(v_row.inquiry_status, v_row.ticket_status));
end
$$;
grant execute on function ticket_create(jsonb)
  to bizos_authenticated;

-- ticket_update(ticket_id, payload {status?, note?, assignee_user_id?,
--   subject?, description?, priority?}) -> the ticket.
-- Status moves through ticket_transition (lifecycle, SLA events), the
-- assignee through ticket_assign; plain fields are updated under RLS.
create or replace function ticket_update(ticket_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  t tickets;
begin
  perform require_permission('ticket.update');
  perform payload_check(payload, '{"status": "text", "note": "text", "assignee_user_id": "uuid", "subject": "text", "description": "text", "priority": "text"}');
  if payload = '{}' then
    perform raise_field('payload', 'nothing to change');
  end if;
  if payload ? 'note' and not payload ? 'status' then
    perform raise_field('note', 'a note goes with a status change (messages: POST /api/tickets/{id}/messages)');
  end if;
  select * into t from tickets x where x.tenant_id = v_tenant and x.ticket_id = ticket_update.ticket_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'ticket_id',
      message = format('ticket_id: no ticket %s', ticket_update.ticket_id);
  end if;
  if payload ?| array['subject', 'description', 'priority'] then
    -- The new values first, into the locked row: Citus refuses functions
    -- other than IMMUTABLE ones inside CASE in an UPDATE.
    if payload ? 'subject' then
      t.subject := payload_text(payload, 'subject', true, 200);
    end if;
    if payload ? 'description' then
      t.description := payload_text(payload, 'description', false, 10000);
    end if;
    if payload ? 'priority' then
      t.priority := vocabulary_check('ticket_priorities', lower(payload_text(payload, 'priority', true, 10)), 'priority');
    end if;
    update tickets x set subject = t.subject, description = t.description, priority = t.priority
     where x.tenant_id = v_tenant and x.ticket_id = ticket_update.ticket_id;
    if not found then
      raise exception using errcode = '42501', message = 'you may not change this ticket';
    end if;
  end if;
  if payload ? 'assignee_user_id' then
    perform ticket_assign(ticket_update.ticket_id, payload_uuid(payload, 'assignee_user_id'));
  end if;
  if payload ? 'status' then
    perform ticket_transition(ticket_update.ticket_id, payload_text(payload, 'status', true, 30),
                              payload_text(payload, 'note', false, 10000));
  end if;
  -- The ticket as the caller reads it (GET /api/tickets/{id}): customer
  -- details of masked tickets stay masked for ops.
  return coalesce((select to_jsonb(v) from v_tickets v
                    where v.tenant_id = v_tenant and v.ticket_id = ticket_update.ticket_id),
                  jsonb_build_object('ticket_id', ticket_update.ticket_id));
end
$$;
grant execute on function ticket_update(uuid, jsonb) to bizos_authenticated;

-- Median first response per day of creation, the day cut in the tenant's
-- time zone (tenants.time_zone), joined once per tenant rather than looked
-- up per ticket.
create or replace view v_ticket_first_response_daily_median with (security_invoker = true) as
select t.tenant_id,
       (f.created_at at time zone t.time_zone)::date as day,
       count(*) as tickets,
       count(f.first_response_at) as responded,
       percentile_cont(0.5) within group (order by f.first_response_minutes) as median_first_response_minutes,
       percentile_cont(0.5) within group (order by f.first_response_business_minutes) as median_first_response_business_minutes
  from v_ticket_first_response f
  join tenants t on t.tenant_id = f.tenant_id
 group by t.tenant_id, (f.created_at at time zone t.time_zone)::date;
grant select on v_ticket_first_response_daily_median  to bizos_authenticated;
comment on view v_ticket_first_response_daily_median is
  'Median first response (minutes, business minutes) of the tickets created each day (the tenant''s day, tenants.time_zone); tickets without a reply count in tickets, not in the median.';
