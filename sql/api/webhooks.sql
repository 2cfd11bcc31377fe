-- Webhooks (migration V33, B2B-8): the outbox triggers, the
-- endpoint administration, replays, and the worker's batch delivery calls.
--
-- Who calls what:
--   webhook_capture            trigger of leads, tickets, invoices, payments
--                              (AFTER, in the transaction of the change)
--   webhook_endpoints_list, webhook_endpoint_get, webhook_deliveries_list,
--   webhook_delivery_get       holders of webhook.manage (RLS)
--   webhook_endpoint_create, webhook_endpoint_update, webhook_endpoint_delete,
--   webhook_secret_rotate, webhook_delivery_replay, webhook_endpoint_replay
--                              holders of webhook.manage (the BFF seals the
--                              secrets and checks where a URL resolves)
--   webhook_deliveries_claim, webhook_secret_material, webhook_deliveries_record,
--   webhook_deliver_next, webhook_deliver_overdue
--                              the worker's login (bizos_worker) only
--
-- Events. One row per change in webhook_events, only when an enabled
-- endpoint of the tenant subscribes to its type (otherwise the trigger
-- writes nothing), and a `webhook.deliver` job for the tenant unless one
-- is already queued and due: the change pays for one insert and two index
-- probes. The worker fans each event out to one webhook_deliveries row per
-- endpoint subscribed to it then (webhook_deliveries_claim). The body is the Standard Webhooks shape {type, timestamp, data};
-- `data` holds identifiers, numbers, states, amounts and dates of the row,
-- never its personal data (contact names, e-mail addresses, phone numbers,
-- NPWP) or free text (notes, descriptions, subjects): an endpoint receives
-- what its tenant admin may read and less, and a receiver that needs more
-- reads the record through the API with credentials of its own.
--
-- Delivery. A `webhook.deliver` job fans out the tenant's new events and
-- claims a batch of its due deliveries (FOR UPDATE SKIP LOCKED; the claim moves next_attempt_at to
-- the end of a lease, so two workers never send the same delivery at once
-- and a worker that dies gives them back when the lease ends), sends them
-- concurrently, records every outcome in one call (webhook_deliveries_record:
-- the attempt log, the delivery's next state, the endpoint's failure
-- streak) and claims again until nothing is due; then it schedules the next
-- job at the earliest pending retry. The retry schedule is the worker's
-- (BIZOS_WEBHOOKS_RETRY_SCHEDULE): it passes the wait before the next
-- attempt with each failure, or none (dead). An endpoint whose failure
-- streak (failing_since) reaches 5 days is disabled, its pending deliveries
-- are dead and its tenant's webhook managers get an e-mail. Deliveries of
-- one endpoint are not ordered: every message carries its id
-- (webhook-id = msg_<event id>) for deduplication.

-- ---------------------------------------------------------------------------
-- the outbox
-- ---------------------------------------------------------------------------

-- A queued, due webhook.deliver job for the tenant, unless there is one.
-- (Two transactions at once may both add one: the second finds little to
-- do. A dedup key would not do: jobs keep their key forever.)
create or replace function webhook_wake(tenant uuid) returns void
language plpgsql
as $$
begin
  if not exists (select 1 from jobs j
                  where j.tenant_id = webhook_wake.tenant and j.status = 'queued'
                    and j.kind = 'webhook.deliver' and j.run_at <= now()) then
    perform job_insert(webhook_wake.tenant, null, 'webhook.deliver', '{}', null, 0, null);
  end if;
end
$$;
select pin_search_path('webhook_wake(uuid)');
revoke execute on function webhook_wake(uuid) from public;
comment on function webhook_wake(uuid) is
  'Internal: queues a webhook.deliver job for the tenant unless a due one is queued.';

-- Trigger of leads, tickets, invoices and payments (AFTER, FOR EACH ROW;
-- the event type is the trigger's argument): nothing unless an enabled
-- endpoint of the tenant subscribes to the type; else the event and the
-- job, in the transaction of the change (the worker makes the deliveries).
-- Kept to the least work on the changing transaction's path: one probe
-- of the subscriptions, one insert, one probe of the queue. SECURITY
-- DEFINER: whoever changes the row cannot read or write the outbox
-- themselves.
create or replace function webhook_capture() returns trigger
language plpgsql
security definer
as $$
declare
  v_type text := tg_argv[0];
  v_tenant uuid := new.tenant_id;
begin
  -- Nothing to do unless an enabled endpoint of the tenant subscribes to
  -- the type: one probe, before any insert is even started (starting the
  -- insert, with its payload expression, cost four times the probe when
  -- it then wrote nothing). Then one statement per event type. (On
  -- this path every statement is the function's own: a call of a helper
  -- with a pinned search path costs more than the insert.)
  if not exists (select 1 from webhook_subscriptions s
                  where s.tenant_id = v_tenant and s.event_type = v_type and s.enabled) then
    return null;
  end if;
  if v_type = 'lead.created' then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.lead_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'lead_id', new.lead_id, 'lead_no', new.lead_no, 'channel', new.channel, 'status', new.status,
             'customer_id', new.customer_id, 'prospect_id', new.prospect_id,
             'sales_owner_user_id', new.sales_owner_user_id, 'assigned_at', new.assigned_at,
             'created_by', new.created_by, 'created_at', new.created_at, 'updated_at', new.updated_at)),
           bizos.uid();
  elsif v_type = 'lead.assigned' then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.lead_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'lead_id', new.lead_id, 'lead_no', new.lead_no, 'channel', new.channel, 'status', new.status,
             'customer_id', new.customer_id, 'prospect_id', new.prospect_id,
             'sales_owner_user_id', new.sales_owner_user_id, 'assigned_at', new.assigned_at,
             'previous_sales_owner_user_id', old.sales_owner_user_id,
             'created_by', new.created_by, 'created_at', new.created_at, 'updated_at', new.updated_at)),
           bizos.uid();
  elsif v_type = 'ticket.created' then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.ticket_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'ticket_id', new.ticket_id, 'ticket_no', new.ticket_no, 'ticket_type', new.ticket_type,
             'priority', new.priority, 'dept_target', new.dept_target,
             'status', coalesce(new.inquiry_status, new.ticket_status),
             'related_lead_id', new.related_lead_id, 'related_customer_id', new.related_customer_id,
             'assignee_user_id', new.assignee_user_id, 'created_by', new.created_by,
             'created_at', new.created_at, 'updated_at', new.updated_at)),
           bizos.uid();
  elsif v_type = 'ticket.status_changed' then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.ticket_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'ticket_id', new.ticket_id, 'ticket_no', new.ticket_no, 'ticket_type', new.ticket_type,
             'priority', new.priority, 'dept_target', new.dept_target,
             'status', coalesce(new.inquiry_status, new.ticket_status),
             'previous_status', coalesce(old.inquiry_status, old.ticket_status),
             'related_lead_id', new.related_lead_id, 'related_customer_id', new.related_customer_id,
             'assignee_user_id', new.assignee_user_id, 'created_by', new.created_by,
             'created_at', new.created_at, 'updated_at', new.updated_at)),
           bizos.uid();
  elsif v_type in ('invoice.created', 'invoice.paid') then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.invoice_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'invoice_id', new.invoice_id, 'invoice_no', new.invoice_no, 'customer_id', new.customer_id,
             'status', new.status, 'currency', new.currency, 'subtotal', new.subtotal, 'tax', new.tax,
             'total', new.total, 'amount_paid', new.amount_paid, 'issue_date', new.issue_date,
             'due_date', new.due_date, 'issued_at', new.issued_at, 'paid_at', new.paid_at,
             'created_by', new.created_by, 'created_at', new.created_at, 'updated_at', new.updated_at)),
           bizos.uid();
  elsif v_type = 'payment.recorded' then
    insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
    select v_tenant, v_type, new.payment_id,
           jsonb_build_object('type', v_type, 'timestamp', to_char(statement_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'data', jsonb_build_object(
             'payment_id', new.payment_id, 'payment_no', new.payment_no, 'invoice_id', new.invoice_id,
             'amount', new.amount, 'method', new.method, 'paid_on', new.paid_on,
             'created_by', new.created_by, 'created_at', new.created_at)),
           bizos.uid();
  else
    raise exception using errcode = 'XX000', message = format('webhook_capture: no event type %s', v_type);
  end if;
  -- The tenant's job (webhook_wake, written out: no call on this path).
  if not exists (select 1 from jobs j
                            where j.tenant_id = v_tenant and j.status = 'queued'
                              and j.kind = 'webhook.deliver' and j.run_at <= now()) then
    perform job_insert(v_tenant, null, 'webhook.deliver', '{}', null, 0, null);
  end if;
  return null;
end
$$;
select pin_search_path('webhook_capture()');
revoke execute on function webhook_capture() from public;
comment on function webhook_capture() is
  'Trigger (AFTER, each row; argument: the event type): writes the webhook event to the outbox in the transaction of the change, when an enabled endpoint of the tenant subscribes to the type, and queues the tenant''s webhook.deliver job.';

create or replace trigger leads_webhook_created after insert on leads
  for each row execute function webhook_capture('lead.created');
create or replace trigger leads_webhook_assigned after update of sales_owner_user_id on leads
  for each row
  when (new.sales_owner_user_id is not null and new.sales_owner_user_id is distinct from old.sales_owner_user_id)
  execute function webhook_capture('lead.assigned');
create or replace trigger tickets_webhook_created after insert on tickets
  for each row execute function webhook_capture('ticket.created');
create or replace trigger tickets_webhook_status_changed after update of inquiry_status, ticket_status on tickets
  for each row
  when (coalesce(new.inquiry_status, new.ticket_status) is distinct from coalesce(old.inquiry_status, old.ticket_status))
  execute function webhook_capture('ticket.status_changed');
create or replace trigger invoices_webhook_created after insert on invoices
  for each row execute function webhook_capture('invoice.created');
-- (No column list: payments set PAID through amount_paid and a BEFORE
-- trigger of invoices, so status is not among the updated columns.)
create or replace trigger invoices_webhook_paid after update on invoices
  for each row when (new.status = 'PAID' and new.status is distinct from old.status)
  execute function webhook_capture('invoice.paid');
create or replace trigger payments_webhook_recorded after insert on payments
  for each row execute function webhook_capture('payment.recorded');

-- ---------------------------------------------------------------------------
-- reading
-- ---------------------------------------------------------------------------

-- An endpoint as the API shows it: its subscriptions and its signing
-- secrets' metadata (never a secret). Security invoker: RLS decides.
create or replace function webhook_endpoint_json(tenant uuid, endpoint uuid) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'endpoint_id', e.endpoint_id, 'url', e.url, 'description', e.description,
    'event_types', coalesce((select jsonb_agg(s.event_type order by t.position)
                               from webhook_subscriptions s
                               join webhook_event_types t on t.code = s.event_type
                              where s.tenant_id = e.tenant_id and s.endpoint_id = e.endpoint_id), '[]'),
    'enabled', e.enabled, 'disabled_at', e.disabled_at, 'disabled_reason', e.disabled_reason,
    'failing_since', e.failing_since, 'last_success_at', e.last_success_at,
    'last_failure_at', e.last_failure_at,
    'secrets', coalesce((select jsonb_agg(jsonb_build_object('secret_id', k.secret_id, 'created_at', k.created_at,
                                                             'expires_at', k.expires_at)
                                          order by k.expires_at nulls first, k.created_at desc)
                           from webhook_secrets k
                          where k.tenant_id = e.tenant_id and k.endpoint_id = e.endpoint_id
                            and (k.expires_at is null or k.expires_at > now())), '[]'),
    'created_by', e.created_by, 'created_at', e.created_at, 'updated_at', e.updated_at)
    from webhook_endpoints e
   where e.tenant_id = webhook_endpoint_json.tenant and e.endpoint_id = webhook_endpoint_json.endpoint
$$;
select pin_search_path('webhook_endpoint_json(uuid, uuid)');
revoke execute on function webhook_endpoint_json(uuid, uuid) from public;
grant execute on function webhook_endpoint_json(uuid, uuid) to bizos_authenticated;
comment on function webhook_endpoint_json(uuid, uuid) is
  'A webhook endpoint as the API shows it (subscriptions, signing secrets'' metadata, failure streak); NULL when not visible.';

-- webhook_endpoints_list() -> {items}: the tenant's endpoints, oldest first.
create or replace function webhook_endpoints_list() returns jsonb
language plpgsql stable
as $$
declare
  v_ids uuid[];
begin
  perform require_permission('webhook.manage');
  -- The ids first, then each endpoint's JSON here: webhook_endpoint_json
  -- reads other tables, and on Citus called for each row of a query on a
  -- shard it would run distributed queries from the worker.
  select array_agg(e.endpoint_id order by e.created_at, e.endpoint_id) into v_ids
    from webhook_endpoints e
   where e.tenant_id = bizos.tenant_id();
  return jsonb_build_object('items', coalesce((
    select jsonb_agg(webhook_endpoint_json(bizos.tenant_id(), v_ids[i]) order by i)
      from generate_subscripts(v_ids, 1) i), '[]'));
end
$$;
select pin_search_path('webhook_endpoints_list()');
revoke execute on function webhook_endpoints_list() from public;
grant execute on function webhook_endpoints_list() to bizos_authenticated;
comment on function webhook_endpoints_list() is
  'The caller''s tenant''s webhook endpoints (webhook.manage), oldest first.';

-- webhook_endpoint_get(endpoint_id) -> the endpoint, or P0002.
create or replace function webhook_endpoint_get(endpoint_id uuid) returns jsonb
language plpgsql stable
as $$
declare
  v jsonb;
begin
  perform require_permission('webhook.manage');
  v := webhook_endpoint_json(bizos.tenant_id(), webhook_endpoint_get.endpoint_id);
  if v is null then
    raise exception using errcode = 'P0002', column = 'endpoint_id',
      message = format('endpoint_id: no webhook endpoint %s', webhook_endpoint_get.endpoint_id);
  end if;
  return v;
end
$$;
select pin_search_path('webhook_endpoint_get(uuid)');
revoke execute on function webhook_endpoint_get(uuid) from public;
grant execute on function webhook_endpoint_get(uuid) to bizos_authenticated;
comment on function webhook_endpoint_get(uuid) is 'One webhook endpoint of the caller''s tenant (webhook.manage), or P0002.';

-- A delivery as the API shows it, with the id receivers see (webhook-id).
create or replace function webhook_delivery_json(d webhook_deliveries, event_type text) returns jsonb
language sql immutable
as $$
  select jsonb_build_object(
    'delivery_id', d.delivery_id, 'event_id', d.event_id, 'event_type', event_type,
    'message_id', 'msg_' || replace(d.event_id::text, '-', ''), 'endpoint_id', d.endpoint_id,
    'status', d.status, 'attempts', d.attempts,
    'next_attempt_at', case when d.status = 'pending' then d.next_attempt_at end,
    'last_attempt_at', d.last_attempt_at, 'last_status_code', d.last_status_code,
    'last_error', d.last_error, 'succeeded_at', d.succeeded_at, 'dead_at', d.dead_at,
    'created_at', d.created_at, 'updated_at', d.updated_at)
$$;
select pin_search_path('webhook_delivery_json(webhook_deliveries, text)');
revoke execute on function webhook_delivery_json(webhook_deliveries, text) from public;
grant execute on function webhook_delivery_json(webhook_deliveries, text) to bizos_authenticated;
comment on function webhook_delivery_json(webhook_deliveries, text) is
  'A webhook delivery as the API shows it (message_id is the webhook-id header receivers get).';

-- webhook_deliveries_list(endpoint_id, status, limit, cursor_id) -> {items,
-- next_cursor}: an endpoint's deliveries, newest first.
create or replace function webhook_deliveries_list(endpoint_id uuid, status text default null,
                                                   lim integer default 50, cursor_id uuid default null)
returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_status text;
  v_after webhook_deliveries;
  v_rows webhook_deliveries[];
  v_types text[];
  v_items jsonb;
  v_last uuid;
  v_count integer;
begin
  perform require_permission('webhook.manage');
  if not exists (select 1 from webhook_endpoints e
                  where e.tenant_id = v_tenant and e.endpoint_id = webhook_deliveries_list.endpoint_id) then
    raise exception using errcode = 'P0002', column = 'endpoint_id',
      message = format('endpoint_id: no webhook endpoint %s', webhook_deliveries_list.endpoint_id);
  end if;
  v_status := vocabulary_check('webhook_delivery_statuses', lower(btrim(webhook_deliveries_list.status)), 'status');
  if lim is null or lim not between 1 and 500 then
    perform raise_field('limit', 'must be between 1 and 500');
  end if;
  if cursor_id is not null then
    select * into v_after from webhook_deliveries d
     where d.tenant_id = v_tenant and d.endpoint_id = webhook_deliveries_list.endpoint_id
       and d.delivery_id = webhook_deliveries_list.cursor_id;
    if v_after.delivery_id is null then
      perform raise_field('cursor', 'is not a delivery of this endpoint (use next_cursor)');
    end if;
  end if;
  -- The page's rows first, then their JSON here: on Citus the statement
  -- over webhook_deliveries runs on a shard, whose row type is not
  -- webhook_deliveries, and webhook_delivery_json(d, ...) is not found there.
  select array_agg(p.x order by p.created_at desc, p.delivery_id desc),
         array_agg(p.x_type order by p.created_at desc, p.delivery_id desc)
    into v_rows, v_types
    from (select d, ev.event_type, d.created_at, d.delivery_id
            from webhook_deliveries d
            join webhook_events ev on ev.tenant_id = d.tenant_id and ev.event_id = d.event_id
           where d.tenant_id = v_tenant and d.endpoint_id = webhook_deliveries_list.endpoint_id
             and (v_status is null or d.status = v_status)
             and (v_after.delivery_id is null
                  or (d.created_at, d.delivery_id) < (v_after.created_at, v_after.delivery_id))
           order by d.created_at desc, d.delivery_id desc
           limit lim) p (x, x_type, created_at, delivery_id);
  v_count := coalesce(cardinality(v_rows), 0);
  if v_count > 0 then
    v_last := (v_rows[v_count]).delivery_id;
    select jsonb_agg(webhook_delivery_json(v_rows[i], v_types[i]) order by i) into v_items
      from generate_subscripts(v_rows, 1) i;
  end if;
  return jsonb_build_object('items', coalesce(v_items, '[]'),
                            'next_cursor', case when v_count = lim then v_last end);
end
$$;
select pin_search_path('webhook_deliveries_list(uuid, text, integer, uuid)');
revoke execute on function webhook_deliveries_list(uuid, text, integer, uuid) from public;
grant execute on function webhook_deliveries_list(uuid, text, integer, uuid) to bizos_authenticated;
comment on function webhook_deliveries_list(uuid, text, integer, uuid) is
  'A page of a webhook endpoint''s deliveries, newest first, optionally of one status (webhook.manage); next_cursor continues.';

-- webhook_delivery_get(delivery_id) -> the delivery with its event's body
-- and every attempt of the log.
create or replace function webhook_delivery_get(delivery_id uuid) returns jsonb
language plpgsql stable
as $$
declare
  v_log jsonb;
  v_tenant uuid := bizos.tenant_id();
  d webhook_deliveries;
  v_event webhook_events;
begin
  perform require_permission('webhook.manage');
  select * into d from webhook_deliveries x
   where x.tenant_id = v_tenant and x.delivery_id = webhook_delivery_get.delivery_id;
  if d.delivery_id is null then
    raise exception using errcode = 'P0002', column = 'delivery_id',
      message = format('delivery_id: no webhook delivery %s', webhook_delivery_get.delivery_id);
  end if;
  select * into v_event from webhook_events e where e.tenant_id = v_tenant and e.event_id = d.event_id;
  -- The attempts in a statement of their own: in one with
  -- webhook_delivery_json(d, ...), Citus sent the function to the worker.
  select jsonb_agg(jsonb_build_object(
           'attempt_no', a.attempt_no, 'attempted_at', a.attempted_at, 'duration_ms', a.duration_ms,
           'status_code', a.status_code, 'succeeded', a.succeeded, 'error', a.error,
           'response_excerpt', a.response_excerpt)
         order by a.attempted_at, a.attempt_id)
    into v_log
    from webhook_attempts a
   where a.tenant_id = v_tenant and a.delivery_id = d.delivery_id;
  return webhook_delivery_json(d, v_event.event_type)
    || jsonb_build_object('payload', v_event.payload, 'attempts_log', coalesce(v_log, '[]'));
end
$$;
select pin_search_path('webhook_delivery_get(uuid)');
revoke execute on function webhook_delivery_get(uuid) from public;
grant execute on function webhook_delivery_get(uuid) to bizos_authenticated;
comment on function webhook_delivery_get(uuid) is
  'One webhook delivery with its event''s body and every attempt (status code, duration, error, response excerpt); webhook.manage.';

-- ---------------------------------------------------------------------------
-- administration
-- ---------------------------------------------------------------------------

-- The URL of an endpoint, checked as the table's constraint does (the BFF
-- has checked where it resolves to).
create or replace function webhook_url_check(url text) returns text
language plpgsql immutable
as $$
begin
  if url is null then
    perform raise_field('url', 'is required');
  end if;
  if length(url) > 2000 or url !~ '^https?://[^[:space:][:cntrl:]/?#@]+([/?#][^[:space:][:cntrl:]]*)?$' then
    perform raise_field('url', 'must be an http:// or https:// URL with a host and no user name or password (at most 2000 characters)');
  end if;
  return url;
end
$$;
select pin_search_path('webhook_url_check(text)');
revoke execute on function webhook_url_check(text) from public;
grant execute on function webhook_url_check(text) to bizos_authenticated;
comment on function webhook_url_check(text) is 'The URL of a webhook endpoint, or P0001 naming url.';

-- The event types of a payload's event_types: at least one, each a term of
-- webhook_event_types (named by index), without repeats.
create or replace function webhook_event_types_of(payload jsonb) returns text[]
language plpgsql stable
as $$
declare
  v_types text[] := '{}';
  v_item jsonb;
  v_term text;
  i integer := 0;
begin
  if payload -> 'event_types' is null or jsonb_typeof(payload -> 'event_types') <> 'array'
     or jsonb_array_length(payload -> 'event_types') = 0 then
    perform raise_field('event_types', 'at least one event type is required');
  end if;
  for v_item in select e from jsonb_array_elements(payload -> 'event_types') e loop
    v_term := vocabulary_check('webhook_event_types', lower(btrim(v_item #>> '{}')), format('event_types[%s]', i));
    if not v_term = any (v_types) then
      v_types := v_types || v_term;
    end if;
    i := i + 1;
  end loop;
  return v_types;
end
$$;
select pin_search_path('webhook_event_types_of(jsonb)');
revoke execute on function webhook_event_types_of(jsonb) from public;
grant execute on function webhook_event_types_of(jsonb) to bizos_authenticated;
comment on function webhook_event_types_of(jsonb) is
  'The distinct event types of payload.event_types (each a webhook_event_types term, named by index), at least one.';

-- The sealed secret the BFF passes (as webhook_secrets stores it).
create or replace function webhook_sealed_check(secret_id uuid, ciphertext bytea, nonce bytea, wrapped_dek bytea,
                                                dek_nonce bytea, master_key_id text)
returns void
language plpgsql immutable
as $$
begin
  if secret_id is null then
    perform raise_field('secret_id', 'is required');
  end if;
  if length(ciphertext) is null or length(ciphertext) not between 1 and 1024 then
    perform raise_field('ciphertext', 'must be 1 to 1024 bytes');
  end if;
  if length(nonce) is null or length(nonce) not between 8 and 64 then
    perform raise_field('nonce', 'must be 8 to 64 bytes');
  end if;
  if length(wrapped_dek) is null or length(wrapped_dek) not between 16 and 1024 then
    perform raise_field('wrapped_dek', 'must be 16 to 1024 bytes');
  end if;
  if length(dek_nonce) is null or length(dek_nonce) not between 8 and 64 then
    perform raise_field('dek_nonce', 'must be 8 to 64 bytes');
  end if;
  if master_key_id is null or master_key_id !~ '^[A-Za-z0-9._:-]{1,100}$' then
    perform raise_field('master_key_id', 'must be 1 to 100 letters, digits or ._:-');
  end if;
end
$$;
select pin_search_path('webhook_sealed_check(uuid, bytea, bytea, bytea, bytea, text)');
revoke execute on function webhook_sealed_check(uuid, bytea, bytea, bytea, bytea, text) from public;
comment on function webhook_sealed_check(uuid, bytea, bytea, bytea, bytea, text) is
  'Internal: checks a sealed signing secret as the BFF passes it.';

-- The caller's endpoint, locked, or P0002.
create or replace function webhook_endpoint_for_update(endpoint_id uuid) returns webhook_endpoints
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  e webhook_endpoints;
begin
  select * into e from webhook_endpoints x
   where x.tenant_id = v_tenant and x.endpoint_id = webhook_endpoint_for_update.endpoint_id
     for update;
  if e.endpoint_id is null then
    raise exception using errcode = 'P0002', column = 'endpoint_id',
      message = format('endpoint_id: no webhook endpoint %s', webhook_endpoint_for_update.endpoint_id);
  end if;
  return e;
end
$$;
select pin_search_path('webhook_endpoint_for_update(uuid)');
revoke execute on function webhook_endpoint_for_update(uuid) from public;
comment on function webhook_endpoint_for_update(uuid) is
  'Internal: the caller''s tenant''s endpoint, locked, or P0002.';

-- webhook_endpoint_create(payload {url, description?, event_types,
-- enabled?}, endpoint_id, secret_id and the sealed secret) -> the endpoint.
-- The BFF makes the ids and the secret (it seals the secret bound to them)
-- and shows the secret once; the database never sees it in clear.
create or replace function webhook_endpoint_create(payload jsonb, endpoint_id uuid, secret_id uuid,
                                                   ciphertext bytea, nonce bytea, wrapped_dek bytea,
                                                   dek_nonce bytea, master_key_id text)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_url text;
  v_description text;
  v_types text[];
  v_enabled boolean;
begin
  perform require_permission('webhook.manage');
  perform payload_check(payload, '{"url": "text", "description": "text", "event_types": "text[]",
                                   "enabled": "boolean"}');
  v_url := webhook_url_check(payload_text(payload, 'url', true, 2000));
  v_description := payload_text(payload, 'description', false, 500);
  v_types := webhook_event_types_of(payload);
  v_enabled := coalesce(payload_bool(payload, 'enabled'), true);
  if webhook_endpoint_create.endpoint_id is null then
    perform raise_field('endpoint_id', 'is required');
  end if;
  perform webhook_sealed_check(webhook_endpoint_create.secret_id, ciphertext, nonce, wrapped_dek, dek_nonce,
                               master_key_id);
  if (select count(*) from webhook_endpoints e where e.tenant_id = v_tenant) >= 50 then
    perform raise_field('url', 'a tenant has at most 50 webhook endpoints');
  end if;
  insert into webhook_endpoints (tenant_id, endpoint_id, url, description, enabled, disabled_at, disabled_reason,
                                 created_by)
  values (v_tenant, webhook_endpoint_create.endpoint_id, v_url, v_description, v_enabled,
          case when not v_enabled then now() end, case when not v_enabled then 'registered disabled' end,
          bizos.uid());
  insert into webhook_subscriptions (tenant_id, endpoint_id, event_type, enabled)
  select v_tenant, webhook_endpoint_create.endpoint_id, t, v_enabled from unnest(v_types) t;
  insert into webhook_secrets (tenant_id, secret_id, endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce,
                               master_key_id, created_by)
  values (v_tenant, webhook_endpoint_create.secret_id, webhook_endpoint_create.endpoint_id, ciphertext, nonce,
          wrapped_dek, dek_nonce, master_key_id, bizos.uid());
  return webhook_endpoint_json(v_tenant, webhook_endpoint_create.endpoint_id);
end
$$;
select pin_search_path('webhook_endpoint_create(jsonb, uuid, uuid, bytea, bytea, bytea, bytea, text)');
revoke execute on function webhook_endpoint_create(jsonb, uuid, uuid, bytea, bytea, bytea, bytea, text) from public;
grant execute on function webhook_endpoint_create(jsonb, uuid, uuid, bytea, bytea, bytea, bytea, text)
  to bizos_authenticated;
comment on function webhook_endpoint_create(jsonb, uuid, uuid, bytea, bytea, bytea, bytea, text) is
  'Registers a webhook endpoint of the caller''s tenant (webhook.manage) with its subscriptions and its first signing secret, sealed by the BFF; returns the endpoint.';

-- webhook_endpoint_update(endpoint_id, payload {url?, description?,
-- event_types?, enabled?}) -> the endpoint. Absent keys keep their value;
-- a null description clears it. Disabling makes its pending deliveries
-- dead (replay them after enabling it again); enabling, or a new URL,
-- ends the failure streak.
create or replace function webhook_endpoint_update(endpoint_id uuid, payload jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  e webhook_endpoints;
  v_url text;
  v_now timestamptz := now();  -- (Citus: no STABLE function inside CASE in an UPDATE)
  v_description text;
  v_types text[];
  v_enabled boolean;
begin
  perform require_permission('webhook.manage');
  perform payload_check(payload, '{"url": "text", "description": "text", "event_types": "text[]",
                                   "enabled": "boolean"}');
  e := webhook_endpoint_for_update(webhook_endpoint_update.endpoint_id);
  v_url := e.url;
  v_description := e.description;
  v_enabled := e.enabled;
  if payload ? 'url' then
    v_url := webhook_url_check(payload_text(payload, 'url', true, 2000));
  end if;
  if payload ? 'description' then
    v_description := payload_text(payload, 'description', false, 500);
  end if;
  if payload ? 'event_types' then
    v_types := webhook_event_types_of(payload);
  end if;
  if payload ? 'enabled' then
    v_enabled := payload_bool(payload, 'enabled');
    if v_enabled is null then
      perform raise_field('enabled', 'must be true or false');
    end if;
  end if;
  update webhook_endpoints x
     set url = v_url, description = v_description, enabled = v_enabled,
         disabled_at = case when v_enabled then null when e.enabled then v_now else x.disabled_at end,
         disabled_reason = case when v_enabled then null when e.enabled then 'disabled by a webhook manager'
                                else x.disabled_reason end,
         failing_since = case when (v_enabled and not e.enabled) or v_url <> e.url then null
                              else x.failing_since end
   where x.tenant_id = v_tenant and x.endpoint_id = e.endpoint_id;
  if v_types is not null then
    delete from webhook_subscriptions s
     where s.tenant_id = v_tenant and s.endpoint_id = e.endpoint_id and not (s.event_type = any (v_types));
    insert into webhook_subscriptions (tenant_id, endpoint_id, event_type, enabled)
    select v_tenant, e.endpoint_id, t, v_enabled from unnest(v_types) t
    on conflict on constraint webhook_subscriptions_pkey do nothing;
  end if;
  if e.enabled and not v_enabled then
    update webhook_deliveries d
       set status = 'dead', dead_at = now(), claim_id = null,
           last_error = left(coalesce(d.last_error || '; ', '') || 'the endpoint was disabled', 2000)
     where d.tenant_id = v_tenant and d.endpoint_id = e.endpoint_id and d.status = 'pending';
  end if;
  return webhook_endpoint_json(v_tenant, e.endpoint_id);
end
$$;
select pin_search_path('webhook_endpoint_update(uuid, jsonb)');
revoke execute on function webhook_endpoint_update(uuid, jsonb) from public;
grant execute on function webhook_endpoint_update(uuid, jsonb) to bizos_authenticated;
comment on function webhook_endpoint_update(uuid, jsonb) is
  'Changes a webhook endpoint (URL, description, event types, enabled; webhook.manage); disabling makes its pending deliveries dead. Returns the endpoint.';

-- webhook_endpoint_delete(endpoint_id) -> {endpoint_id, deleted}: the
-- endpoint with its subscriptions, secrets, deliveries and their log (the
-- events stay for the tenant's other endpoints).
create or replace function webhook_endpoint_delete(endpoint_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  e webhook_endpoints;
begin
  perform require_permission('webhook.manage');
  e := webhook_endpoint_for_update(webhook_endpoint_delete.endpoint_id);
  delete from webhook_endpoints x where x.tenant_id = e.tenant_id and x.endpoint_id = e.endpoint_id;
  return jsonb_build_object('endpoint_id', e.endpoint_id, 'deleted', true);
end
$$;
select pin_search_path('webhook_endpoint_delete(uuid)');
revoke execute on function webhook_endpoint_delete(uuid) from public;
grant execute on function webhook_endpoint_delete(uuid) to bizos_authenticated;
comment on function webhook_endpoint_delete(uuid) is
  'Deletes a webhook endpoint of the caller''s tenant with its subscriptions, secrets, deliveries and their log (webhook.manage).';

-- webhook_secret_rotate(endpoint_id, payload {overlap_hours?}, the new
-- sealed secret) -> the endpoint. The new secret signs from now on; the
-- current one (and any still in its overlap) keeps signing beside it for
-- overlap_hours (0-168, default 24), so receivers can switch without
-- losing a message (webhook-signature then carries one v1 signature per
-- secret). Expired secrets are removed.
create or replace function webhook_secret_rotate(endpoint_id uuid, payload jsonb, secret_id uuid, ciphertext bytea,
                                                 nonce bytea, wrapped_dek bytea, dek_nonce bytea,
                                                 master_key_id text)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  e webhook_endpoints;
  v_hours integer;
  v_until timestamptz;
begin
  perform require_permission('webhook.manage');
  perform payload_check(payload, '{"overlap_hours": "integer"}');
  v_hours := coalesce(payload_integer(payload, 'overlap_hours'), 24);
  if v_hours not between 0 and 168 then
    perform raise_field('overlap_hours', 'must be between 0 and 168');
  end if;
  e := webhook_endpoint_for_update(webhook_secret_rotate.endpoint_id);
  perform webhook_sealed_check(webhook_secret_rotate.secret_id, ciphertext, nonce, wrapped_dek, dek_nonce,
                               master_key_id);
  v_until := now() + make_interval(hours => v_hours);
  delete from webhook_secrets k
   where k.tenant_id = v_tenant and k.endpoint_id = e.endpoint_id and k.expires_at <= now();
  update webhook_secrets k set expires_at = v_until
   where k.tenant_id = v_tenant and k.endpoint_id = e.endpoint_id
     and (k.expires_at is null or k.expires_at > v_until);
  insert into webhook_secrets (tenant_id, secret_id, endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce,
                               master_key_id, created_by)
  values (v_tenant, webhook_secret_rotate.secret_id, e.endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce,
          master_key_id, bizos.uid());
  return webhook_endpoint_json(v_tenant, e.endpoint_id);
end
$$;
select pin_search_path('webhook_secret_rotate(uuid, jsonb, uuid, bytea, bytea, bytea, bytea, text)');
revoke execute on function webhook_secret_rotate(uuid, jsonb, uuid, bytea, bytea, bytea, bytea, text) from public;
grant execute on function webhook_secret_rotate(uuid, jsonb, uuid, bytea, bytea, bytea, bytea, text)
  to bizos_authenticated;
comment on function webhook_secret_rotate(uuid, jsonb, uuid, bytea, bytea, bytea, bytea, text) is
  'Rotates the signing secret of a webhook endpoint (webhook.manage): the new sealed secret signs from now on, the previous ones keep signing for overlap_hours (default 24). Returns the endpoint.';

-- webhook_delivery_replay(delivery_id) -> the delivery: sent again at once
-- with a fresh round of the retry schedule (same message id).
create or replace function webhook_delivery_replay(delivery_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  d webhook_deliveries;
  v_type text;
begin
  perform require_permission('webhook.manage');
  select * into d from webhook_deliveries x
   where x.tenant_id = v_tenant and x.delivery_id = webhook_delivery_replay.delivery_id
     for update;
  if d.delivery_id is null then
    raise exception using errcode = 'P0002', column = 'delivery_id',
      message = format('delivery_id: no webhook delivery %s', webhook_delivery_replay.delivery_id);
  end if;
  if not (select e.enabled from webhook_endpoints e where e.tenant_id = v_tenant and e.endpoint_id = d.endpoint_id) then
    perform raise_field('endpoint_id', 'the endpoint is disabled: enable it first');
  end if;
  update webhook_deliveries x
     set status = 'pending', attempts = 0, next_attempt_at = now(), claim_id = null,
         succeeded_at = null, dead_at = null
   where x.tenant_id = v_tenant and x.delivery_id = d.delivery_id
  returning x.* into d;
  perform webhook_wake(v_tenant);
  select ev.event_type into v_type from webhook_events ev where ev.tenant_id = v_tenant and ev.event_id = d.event_id;
  return webhook_delivery_json(d, v_type);
end
$$;
select pin_search_path('webhook_delivery_replay(uuid)');
revoke execute on function webhook_delivery_replay(uuid) from public;
grant execute on function webhook_delivery_replay(uuid) to bizos_authenticated;
comment on function webhook_delivery_replay(uuid) is
  'Sends one webhook message to its endpoint again, at once, with a fresh round of retries (webhook.manage); returns the delivery.';

-- webhook_endpoint_replay(endpoint_id, payload {since}) -> {endpoint_id,
-- since, replayed}: every event of the tenant since that time of a type the
-- endpoint subscribes to now is sent to it again (or for the first time:
-- events written while it was disabled or not subscribed to the type), at
-- once, with a fresh round of retries. Events are written only while some
-- endpoint subscribes to their type.
create or replace function webhook_endpoint_replay(endpoint_id uuid, payload jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_now timestamptz := now();
  v_tenant uuid := bizos.tenant_id();
  e webhook_endpoints;
  v_text text;
  v_since timestamptz;
  v_count integer;
begin
  perform require_permission('webhook.manage');
  perform payload_check(payload, '{"since": "text"}');
  v_text := payload_text(payload, 'since', true, 64);
  begin
    v_since := v_text::timestamptz;
  exception when others then
    perform raise_field('since', 'must be a date and time (ISO 8601, e.g. 2026-05-01T00:00:00Z)');
  end;
  if v_since > now() then
    perform raise_field('since', 'must not be in the future');
  end if;
  e := webhook_endpoint_for_update(webhook_endpoint_replay.endpoint_id);
  if not e.enabled then
    perform raise_field('endpoint_id', 'the endpoint is disabled: enable it first');
  end if;
  -- The values as literals (format %L), not PL/pgSQL variables: Citus
  -- sends this INSERT ... SELECT to the shard with the variables as
  -- parameters whose type the shard cannot tell, and takes only IMMUTABLE
  -- functions (not now()) in DO UPDATE SET.
  execute format(
    'insert into webhook_deliveries as d (tenant_id, event_id, endpoint_id)
     select ev.tenant_id, ev.event_id, s.endpoint_id
       from webhook_events ev
       join webhook_subscriptions s on s.tenant_id = ev.tenant_id and s.event_type = ev.event_type
      where ev.tenant_id = %1$L and s.endpoint_id = %2$L and ev.created_at >= %3$L
     on conflict on constraint webhook_deliveries_event_id_endpoint_id_key
     do update set status = ''pending'', attempts = 0, next_attempt_at = %4$L, claim_id = null,
                   succeeded_at = null, dead_at = null',
    v_tenant, e.endpoint_id, v_since, v_now);
  get diagnostics v_count = row_count;
  if v_count > 0 then
    perform webhook_wake(v_tenant);
  end if;
  return jsonb_build_object('endpoint_id', e.endpoint_id, 'since', v_since, 'replayed', v_count);
end
$$;
select pin_search_path('webhook_endpoint_replay(uuid, jsonb)');
revoke execute on function webhook_endpoint_replay(uuid, jsonb) from public;
grant execute on function webhook_endpoint_replay(uuid, jsonb) to bizos_authenticated;
comment on function webhook_endpoint_replay(uuid, jsonb) is
  'Sends every event of the tenant since a time of a type the endpoint subscribes to (again) to the endpoint, at once (webhook.manage); returns how many.';

-- ---------------------------------------------------------------------------
-- the worker
-- ---------------------------------------------------------------------------

-- webhook_deliveries_claim(tenant, max_deliveries, lease_secs): first the
-- fan-out of the tenant's new events (up to 1,000 a call: one delivery per
-- enabled endpoint subscribed to the type now; the event is marked
-- fanned out), then up to max_deliveries due deliveries, oldest first, held for
-- lease_secs (their next_attempt_at moves to the end of the lease; rows
-- another claimer holds are skipped), with what the worker sends: the URL,
-- the body (the event's payload as text: what is signed), the number of
-- this attempt and the ids of the secrets that sign now.
create or replace function webhook_deliveries_claim(tenant uuid, max_deliveries integer, lease_secs integer)
returns table (delivery_id uuid, claim_id uuid, event_id uuid, endpoint_id uuid, url text, body text,
               attempt integer, secret_ids uuid[])
language plpgsql
security definer
as $$
declare
  v_claim uuid := gen_random_uuid();
begin
  if max_deliveries is null or max_deliveries < 1 then
    return;
  end if;
  if lease_secs is null or lease_secs not between 1 and 3600 then
    perform raise_field('lease_secs', 'must be between 1 and 3600');
  end if;
  with fresh as (
    update webhook_events ev set fanned_out_at = now()
      from (select x.event_id from webhook_events x
             where x.tenant_id = webhook_deliveries_claim.tenant and x.fanned_out_at is null
             order by x.created_at
             limit 1000
               for update skip locked) f
     where ev.tenant_id = webhook_deliveries_claim.tenant and ev.event_id = f.event_id
    returning ev.event_id as f_event, ev.event_type as f_type)
  insert into webhook_deliveries (tenant_id, event_id, endpoint_id)
  select webhook_deliveries_claim.tenant, fresh.f_event, s.endpoint_id
    from fresh
    join webhook_subscriptions s on s.tenant_id = webhook_deliveries_claim.tenant and s.event_type = fresh.f_type
                                and s.enabled
  on conflict on constraint webhook_deliveries_event_id_endpoint_id_key do nothing;
  return query
  with due as (
    select q.delivery_id from webhook_deliveries q
     where q.tenant_id = webhook_deliveries_claim.tenant and q.status = 'pending' and q.next_attempt_at <= now()
     order by q.next_attempt_at
     limit max_deliveries
       for update skip locked),
  claimed as (
    update webhook_deliveries d
       set next_attempt_at = now() + make_interval(secs => lease_secs), claim_id = v_claim
      from due
     where d.tenant_id = webhook_deliveries_claim.tenant and d.delivery_id = due.delivery_id
    returning d.delivery_id as c_delivery, d.event_id as c_event, d.endpoint_id as c_endpoint,
              d.attempts as c_attempts)
  select c.c_delivery, v_claim, c.c_event, c.c_endpoint, e.url, ev.payload::text, c.c_attempts + 1,
         array(select k.secret_id from webhook_secrets k
                where k.tenant_id = webhook_deliveries_claim.tenant and k.endpoint_id = c.c_endpoint
                  and (k.expires_at is null or k.expires_at > now())
                order by k.expires_at nulls first, k.created_at desc)
    from claimed c
    join webhook_endpoints e on e.tenant_id = webhook_deliveries_claim.tenant and e.endpoint_id = c.c_endpoint
    join webhook_events ev on ev.tenant_id = webhook_deliveries_claim.tenant and ev.event_id = c.c_event;
end
$$;
select pin_search_path('webhook_deliveries_claim(uuid, integer, integer)');
revoke execute on function webhook_deliveries_claim(uuid, integer, integer) from public;
grant execute on function webhook_deliveries_claim(uuid, integer, integer) to bizos_worker;
comment on function webhook_deliveries_claim(uuid, integer, integer) is
  'Worker: fans out the tenant''s new webhook events to deliveries, then claims up to max_deliveries due deliveries (FOR UPDATE SKIP LOCKED, a lease of lease_secs) with their URL, body, attempt number and signing secret ids.';

-- webhook_secret_material(tenant, secret_ids): the sealed secrets (the
-- worker opens them with the master key). The worker's login only.
create or replace function webhook_secret_material(tenant uuid, secret_ids uuid[])
returns table (secret_id uuid, endpoint_id uuid, ciphertext bytea, nonce bytea, wrapped_dek bytea,
               dek_nonce bytea, master_key_id text)
language sql stable
security definer
as $$
  select k.secret_id, k.endpoint_id, k.ciphertext, k.nonce, k.wrapped_dek, k.dek_nonce, k.master_key_id
    from webhook_secrets k
   where k.tenant_id = webhook_secret_material.tenant and k.secret_id = any (webhook_secret_material.secret_ids)
$$;
select pin_search_path('webhook_secret_material(uuid, uuid[])');
revoke execute on function webhook_secret_material(uuid, uuid[]) from public;
grant execute on function webhook_secret_material(uuid, uuid[]) to bizos_worker;
comment on function webhook_secret_material(uuid, uuid[]) is
  'Worker: sealed signing secrets of a tenant by id (opened in the worker with BIZOS_WEBHOOKS_MASTER_KEY).';

-- webhook_deliveries_record(tenant, claim_id, results) -> {recorded,
-- disabled}: the outcomes of a claimed batch, in one call. results: [{
-- delivery_id, attempted_at, duration_ms, status_code, succeeded, error,
-- response_excerpt, retry_in_secs}] (retry_in_secs NULL after a failure:
-- the schedule is used up, the delivery is dead). Only deliveries still
-- pending under this claim are recorded (a replay or a lost lease
-- meanwhile wins). Every attempt is logged; the endpoint's failure streak
-- starts at its first failure and ends at a success; an endpoint failing
-- for 5 days is disabled, its pending deliveries are dead and the tenant's
-- webhook managers are e-mailed.
create or replace function webhook_deliveries_record(tenant uuid, claim_id uuid, results jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_recorded integer := 0;
  v_disabled integer := 0;
  x record;
  v_del record;
  r record;
  v_no integer;
  v_at timestamptz;
  v_ok boolean;
  v_code integer;
  v_err text;
  v_retry double precision;
  v_next timestamptz;
  v_endpoints uuid[] := '{}';
  v_oks boolean[] := '{}';
  v_ats timestamptz[] := '{}';
  v_to text[];
  v_tz text;
  v_error text;
  v_now timestamptz := now();
begin
  if results is null or jsonb_typeof(results) <> 'array' then
    perform raise_field('results', 'must be a JSON array');
  end if;
  -- The batch's endpoints first, in a fixed order: their writers
  -- (webhook_endpoint_replay, webhook_endpoint_update) lock the endpoint
  -- before its deliveries, and taking the deliveries first here, then the
  -- endpoints for their streaks, deadlocked with a replay.
  perform 1 from webhook_endpoints p
   where p.tenant_id = webhook_deliveries_record.tenant
     and p.endpoint_id in (select w.endpoint_id from webhook_deliveries w
                            where w.tenant_id = webhook_deliveries_record.tenant
                              and w.delivery_id in (select (e ->> 'delivery_id')::uuid
                                                      from jsonb_array_elements(results) e)
                              and w.claim_id = webhook_deliveries_record.claim_id)
   order by p.endpoint_id
     for update;
  -- Delivery by delivery, each statement on the tenant's rows: on Citus
  -- the one statement with data-modifying CTEs this was could not be
  -- planned, and an UPDATE may not pass columns to STABLE functions.
  for x in
    select e.* from jsonb_to_recordset(results) as e(delivery_id uuid, attempted_at timestamptz, duration_ms integer,
                                                     status_code integer, succeeded boolean, error text,
                                                     response_excerpt text, retry_in_secs double precision)
  loop
    select w.delivery_id, w.endpoint_id, w.attempts into v_del
      from webhook_deliveries w
     where w.tenant_id = webhook_deliveries_record.tenant and w.delivery_id = x.delivery_id
       and w.claim_id = webhook_deliveries_record.claim_id and w.status = 'pending'
       for update;
    continue when not found;
    v_no := least(v_del.attempts + 1, 1000);
    v_at := coalesce(x.attempted_at, v_now);
    v_ok := coalesce(x.succeeded, false);
    v_code := case when x.status_code between 100 and 599 then x.status_code end;
    v_err := case when not v_ok then coalesce(left(nullif(x.error, ''), 2000), 'failed') end;
    v_retry := case when x.retry_in_secs is not null then greatest(least(x.retry_in_secs, 31536000), 0) end;
    v_next := case when not v_ok and v_retry is not null then v_now + make_interval(secs => v_retry) else v_at end;
    insert into webhook_attempts (tenant_id, delivery_id, attempt_no, attempted_at, duration_ms, status_code,
                                  succeeded, error, response_excerpt)
    values (webhook_deliveries_record.tenant, v_del.delivery_id, v_no, v_at, greatest(coalesce(x.duration_ms, 0), 0),
            v_code, v_ok, v_err, left(x.response_excerpt, 1000));
    update webhook_deliveries w
       set attempts = v_no,
           status = case when v_ok then 'succeeded' when v_retry is null then 'dead' else 'pending' end,
           next_attempt_at = v_next,
           claim_id = null, last_attempt_at = v_at, last_status_code = v_code,
           last_error = v_err,
           succeeded_at = case when v_ok then v_at end,
           dead_at = case when not v_ok and v_retry is null then v_now end
     where w.tenant_id = webhook_deliveries_record.tenant and w.delivery_id = v_del.delivery_id;
    v_recorded := v_recorded + 1;
    v_endpoints := v_endpoints || v_del.endpoint_id;
    v_oks := v_oks || v_ok;
    v_ats := v_ats || v_at;
  end loop;

  -- Each endpoint's streak over the batch: a success ends it, else it
  -- starts at the first failure (unless it had started before).
  for r in
    select u.endpoint_id, bool_or(u.ok) as any_ok,
           max(u.at) filter (where u.ok) as last_ok,
           min(u.at) filter (where not u.ok) as first_failed,
           max(u.at) filter (where not u.ok) as last_failed
      from unnest(v_endpoints, v_oks, v_ats) as u(endpoint_id, ok, at)
     group by u.endpoint_id
  loop
    update webhook_endpoints e
       set last_success_at = greatest(e.last_success_at, r.last_ok),
           last_failure_at = greatest(e.last_failure_at, r.last_failed),
           failing_since = case when r.any_ok then null else coalesce(e.failing_since, r.first_failed) end
     where e.tenant_id = webhook_deliveries_record.tenant and e.endpoint_id = r.endpoint_id;
  end loop;

  for r in
    select e.endpoint_id, e.url, e.failing_since
      from webhook_endpoints e
     where e.tenant_id = webhook_deliveries_record.tenant and e.enabled
       and e.failing_since <= v_now - interval '5 days'
       for update
  loop
    update webhook_endpoints e
       set enabled = false, disabled_at = v_now,
           disabled_reason = 'failed every delivery for 5 days or more (since '
                             || to_char(r.failing_since at time zone 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC)'
     where e.tenant_id = webhook_deliveries_record.tenant and e.endpoint_id = r.endpoint_id;
    select left(d.last_error, 2000) into v_error from webhook_deliveries d
     where d.tenant_id = webhook_deliveries_record.tenant and d.endpoint_id = r.endpoint_id
       and d.last_error is not null
     order by d.last_attempt_at desc nulls last limit 1;
    update webhook_deliveries d
       set status = 'dead', dead_at = v_now, claim_id = null,
           last_error = left(coalesce(d.last_error || '; ', '') || 'the endpoint was disabled after failing for 5 days', 2000)
     where d.tenant_id = webhook_deliveries_record.tenant and d.endpoint_id = r.endpoint_id and d.status = 'pending';
    select array_agg(p.email order by p.email) into v_to
      from profiles p
     where p.tenant_id = webhook_deliveries_record.tenant and p.active
       and exists (select 1 from role_permissions rp
                    where rp.tenant_id = p.tenant_id and rp.app_role = p.app_role
                      and rp.permission = 'webhook.manage');
    select t.time_zone into v_tz from tenants t where t.tenant_id = webhook_deliveries_record.tenant;
    if v_to is not null then
      perform email_queue(webhook_deliveries_record.tenant, null, 'webhook.endpoint_disabled', v_to[1:50],
                          jsonb_build_object(
                            'endpoint_url', r.url,
                            'failing_since', to_char(r.failing_since at time zone v_tz, 'YYYY-MM-DD HH24:MI')
                                             || ' (' || v_tz || ')',
                            'last_error', coalesce(nullif(btrim(v_error), ''), 'unknown')),
                          '{}');
    end if;
    v_disabled := v_disabled + 1;
  end loop;
  return jsonb_build_object('recorded', v_recorded, 'disabled', v_disabled);
end
$$;
select pin_search_path('webhook_deliveries_record(uuid, uuid, jsonb)');
revoke execute on function webhook_deliveries_record(uuid, uuid, jsonb) from public;
grant execute on function webhook_deliveries_record(uuid, uuid, jsonb) to bizos_worker;
comment on function webhook_deliveries_record(uuid, uuid, jsonb) is
  'Worker: records the outcomes of a claimed batch of webhook deliveries (attempt log, next state, failure streaks) and disables endpoints failing for 5 days, e-mailing the tenant''s webhook managers; returns {recorded, disabled}.';

-- webhook_deliver_next(tenant) -> the earliest pending delivery's time, now
-- when an event waits for its fan-out (NULL: nothing to do): a
-- webhook.deliver job is queued for then unless one is queued at or before
-- it. The end of every webhook.deliver job.
create or replace function webhook_deliver_next(tenant uuid) returns timestamptz
language plpgsql
security definer
as $$
declare
  v_next timestamptz;
begin
  if exists (select 1 from webhook_events ev
              where ev.tenant_id = webhook_deliver_next.tenant and ev.fanned_out_at is null) then
    v_next := now();
  else
    select min(d.next_attempt_at) into v_next from webhook_deliveries d
     where d.tenant_id = webhook_deliver_next.tenant and d.status = 'pending';
  end if;
  if v_next is null then
    return null;
  end if;
  if not exists (select 1 from jobs j
                  where j.tenant_id = webhook_deliver_next.tenant and j.status = 'queued'
                    and j.kind = 'webhook.deliver' and j.run_at <= v_next) then
    perform job_insert(webhook_deliver_next.tenant, null, 'webhook.deliver', '{}', greatest(v_next, now()), 0, null);
  end if;
  return v_next;
end
$$;
select pin_search_path('webhook_deliver_next(uuid)');
revoke execute on function webhook_deliver_next(uuid) from public;
grant execute on function webhook_deliver_next(uuid) to bizos_worker;
comment on function webhook_deliver_next(uuid) is
  'Worker: queues the tenant''s next webhook.deliver job at its earliest pending delivery (unless one is queued by then); returns that time.';

-- webhook_deliver_overdue() -> jobs queued: the safety net of the worker's
-- periodic upkeep: a tenant with deliveries (or events waiting for their
-- fan-out) overdue by a minute and no queued or running webhook.deliver
-- job (its job was dead-lettered, say) gets one.
create or replace function webhook_deliver_overdue() returns integer
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_count integer := 0;
begin
  for v_tenant in
    select o.tenant_id
      from (select d.tenant_id from webhook_deliveries d
             where d.status = 'pending' and d.next_attempt_at < now() - interval '1 minute'
            union
            select ev.tenant_id from webhook_events ev
             where ev.fanned_out_at is null and ev.created_at < now() - interval '1 minute') o
     where not exists (select 1 from jobs j
                        where j.tenant_id = o.tenant_id and j.kind = 'webhook.deliver'
                          and j.status in ('queued', 'running'))
  loop
    perform job_insert(v_tenant, null, 'webhook.deliver', '{}', null, 0, null);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
select pin_search_path('webhook_deliver_overdue()');
revoke execute on function webhook_deliver_overdue() from public;
grant execute on function webhook_deliver_overdue() to bizos_worker;
comment on function webhook_deliver_overdue() is
  'Worker upkeep: queues a webhook.deliver job for every tenant with deliveries or events to fan out overdue by a minute and no queued or running one; returns how many.';
