-- Idempotency keys (Stripe's semantics) and the PATCH RPCs of the HTTP API.
--
-- Every POST of the API may carry an `Idempotency-Key` header. The BFF
-- stores the key, a hash of the request and the response in the SAME
-- transaction as the effect: a replay returns the stored response, the same
-- key with another request is refused, a concurrent duplicate gets a
-- conflict (the BFF holds a transaction-level advisory lock on the key).
-- Keys are per user: two users never share a key space.

create table idempotency_keys (
  tenant_id       uuid        not null,
  user_id         uuid        not null,
  idempotency_key text        not null,
  method          text        not null,
  path            text        not null,
  request_hash    text        not null,
  response_status integer     not null,
  response_body   jsonb       not null,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  expires_at      timestamptz not null default now() + interval '24 hours',
  constraint idempotency_keys_pkey primary key (tenant_id, user_id, idempotency_key),
  constraint idempotency_keys_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint idempotency_keys_idempotency_key_check check (idempotency_key ~ '^[\x21-\x7e]{1,255}$'),
  constraint idempotency_keys_method_check check (method in ('POST', 'PATCH', 'PUT', 'DELETE')),
  constraint idempotency_keys_request_hash_check check (request_hash ~ '^[0-9a-f]{64}$'),
  constraint idempotency_keys_response_status_check check (response_status between 200 and 499),
  constraint idempotency_keys_expires_at_check check (expires_at >= created_at + interval '24 hours')
);
comment on table idempotency_keys is 'Idempotency-Key of API writes with the stored response; kept at least 24 hours, then purged.';
create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);

create trigger idempotency_keys_stamp_timestamps before insert or update on idempotency_keys
  for each row execute function stamp_timestamps();

alter table idempotency_keys enable row level security;
create policy "users read their own idempotency keys"
  on idempotency_keys for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and user_id = (select bizos.uid()));
create policy "users store their own idempotency keys"
  on idempotency_keys for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and user_id = (select bizos.uid()));
-- An expired key that was not purged yet is taken over by its user.
create policy "users reuse their own expired keys"
  on idempotency_keys for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and user_id = (select bizos.uid()) and expires_at <= now())
  with check (tenant_id = (select bizos.tenant_id()) and user_id = (select bizos.uid()));
grant select, insert on idempotency_keys to bizos_authenticated;
grant update (method, path, request_hash, response_status, response_body, created_at, expires_at)
  on idempotency_keys to bizos_authenticated;

-- Deletes expired keys (all tenants); the BFF calls it on a timer as its
-- login role, which owns no rows: hence SECURITY DEFINER, and nothing else.
create function purge_idempotency_keys() returns bigint
language sql
security definer
as $$
  with gone as (delete from idempotency_keys where expires_at < now() returning 1)
  select count(*) from gone
$$;
select pin_search_path('purge_idempotency_keys()');
revoke execute on function purge_idempotency_keys() from public;
grant execute on function purge_idempotency_keys() to bizos_app;

-- ---------------------------------------------------------------- PATCH /api/leads/{id}
-- lead_update(lead_id, payload {status?, channel?, contact_name?,
--   contact_email?, contact_phone?, city?, notes?}) -> the lead.
-- Only the keys present change; null clears an optional field. The status
-- follows the lead lifecycle (bizos.transitions); ASSIGNED comes only from
-- crm_assign_lead.
create function lead_update(lead_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  l leads;
begin
  perform require_permission('lead.update');
  if payload is null or jsonb_typeof(payload) <> 'object' then
    perform raise_field('payload', 'must be a JSON object');
  end if;
  perform payload_check_keys(payload, array['status', 'channel', 'contact_name', 'contact_email',
                                            'contact_phone', 'city', 'notes']);
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
  update leads x set
    status        = case when payload ? 'status' then upper(payload_text(payload, 'status', true, 20)) else x.status end,
    channel       = case when payload ? 'channel' then lower(payload_text(payload, 'channel', true, 30)) else x.channel end,
    contact_name  = case when payload ? 'contact_name' then payload_text(payload, 'contact_name', false, 200) else x.contact_name end,
    contact_email = case when payload ? 'contact_email' then payload_text(payload, 'contact_email', false, 320) else x.contact_email end,
    contact_phone = case when payload ? 'contact_phone' then payload_text(payload, 'contact_phone', false, 50) else x.contact_phone end,
    city          = case when payload ? 'city' then payload_text(payload, 'city', false, 100) else x.city end,
    notes         = case when payload ? 'notes' then payload_text(payload, 'notes', false, 4000) else x.notes end
   where x.tenant_id = v_tenant and x.lead_id = lead_update.lead_id
  returning * into l;
  if not found then
    raise exception using errcode = '42501', message = 'you may not change this lead';
  end if;
  return to_jsonb(l);
end
$$;

-- ---------------------------------------------------------------- PATCH /api/tickets/{id}
-- ticket_update(ticket_id, payload {status?, note?, assignee_user_id?,
--   subject?, description?, priority?}) -> the ticket.
-- Status moves through ticket_transition (lifecycle, SLA events), the
-- assignee through ticket_assign; plain fields are updated under RLS.
create function ticket_update(ticket_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  t tickets;
begin
  perform require_permission('ticket.update');
  if payload is null or jsonb_typeof(payload) <> 'object' then
    perform raise_field('payload', 'must be a JSON object');
  end if;
  perform payload_check_keys(payload, array['status', 'note', 'assignee_user_id', 'subject', 'description', 'priority']);
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
    update tickets x set
      subject     = case when payload ? 'subject' then payload_text(payload, 'subject', true, 200) else x.subject end,
      description = case when payload ? 'description' then payload_text(payload, 'description', false, 10000) else x.description end,
      priority    = case when payload ? 'priority' then lower(payload_text(payload, 'priority', true, 10)) else x.priority end
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
  select * into t from tickets x where x.tenant_id = v_tenant and x.ticket_id = ticket_update.ticket_id;
  return to_jsonb(t);
end
$$;

grant execute on function lead_update(uuid, jsonb), ticket_update(uuid, jsonb) to bizos_authenticated;

-- ---------------------------------------------------------------- GET /api/tickets
-- Tickets as the API lists them: the caller's RLS scope, with the customer
-- of masked tickets (RFQs) hidden from ops, as v_ops_rfqs_masked does (TCK-2).
create view v_tickets with (security_invoker = true) as
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

-- ---------------------------------------------------------------- GET /api/invoices
-- Every invoice in the caller's scope (drafts and voids too) with what is
-- outstanding and how late it is (from v_invoice_outstanding).
create view v_invoices with (security_invoker = true) as
select i.*, c.company_name,
       case when i.status in ('ISSUED', 'PAID') then i.total - i.amount_paid else 0 end as outstanding,
       coalesce(o.days_past_due, 0) as days_past_due,
       coalesce(o.is_overdue, false) as is_overdue,
       o.aging_bucket
  from invoices i
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id
  left join v_invoice_outstanding o on o.tenant_id = i.tenant_id and o.invoice_id = i.invoice_id;
comment on view v_invoices is 'Invoices in the caller''s scope with outstanding amount, days past due and aging bucket.';
grant select on v_invoices to bizos_authenticated;
