-- Payments of the operator's invoices (docs/payments.md): provider
-- deliveries and their events, billing_record_payment (the one way an
-- invoice gets paid and its subscription active and unlocked), manual
-- transfer proofs, and dunning (reminders, then the soft lock). Tables:
-- V55 (and billing's V54). The operator's data about tenants: these run in
-- the control database. Every decision reads the billing clock
-- (billing_now(), billing_today()), never now().
--
-- Who calls what:
--   payment_delivery_receive              the BFF's login (provider webhooks)
--   billing_record_payment,
--   billing_payment_failed                the owner (operator), and the two
--                                         functions above and below
--   billing_transfer_proof_add            a tenant's user (billing.pay)
--   billing_transfer_proof_approve/reject the owner (operator routes)
--   billing_dunning_enqueue/run           the worker's login

-- ---------------------------------------------------------------------------
-- the subscription follows what is still unpaid
-- ---------------------------------------------------------------------------

-- After a payment or a void: the subscription of a tenant with no open
-- dunning left is active again (from past_due or soft_locked); one whose
-- remaining dunning already locked it stays soft-locked. Trialing,
-- active and canceled subscriptions are left as they are.
create or replace function billing_subscription_settle(p_tenant_id uuid) returns text
language plpgsql
security definer
as $$
declare
  v_status text;
begin
  select s.status into v_status from subscriptions s where s.tenant_id = p_tenant_id for update;
  if v_status is null then
    return null;
  end if;
  if v_status in ('past_due', 'soft_locked')
     and not exists (select 1 from billing_dunning d
                      where d.tenant_id = p_tenant_id and d.resolved_at is null
                        and (v_status = 'past_due' or d.locked_at is not null)) then
    update subscriptions s set status = 'active' where s.tenant_id = p_tenant_id;
    if v_status = 'soft_locked' then
      perform subscription_lock_changed(p_tenant_id);
    end if;
    return 'active';
  end if;
  return v_status;
end
$$;
select pin_search_path('billing_subscription_settle(uuid)');
revoke execute on function billing_subscription_settle(uuid) from public;
comment on function billing_subscription_settle(uuid) is
  'Internal: makes a past_due or soft_locked subscription active again once no open dunning holds it (after a payment or a void); returns the status.';

-- ---------------------------------------------------------------------------
-- recording payments
-- ---------------------------------------------------------------------------

-- billing_record_payment(tenant, invoice, method, amount, currency,
-- reference, received_at, recorded_by) -> {payment_id, recorded,
-- invoice_status, paid, outstanding, subscription_status}
-- Records money received against a finalized (or already paid) operator
-- invoice, once per (method, reference): a replay answers with the
-- payment recorded first (recorded: false) and changes nothing. When the
-- payments reach the invoice's total the invoice is paid, its dunning
-- resolved and the subscription active and unlocked, in this transaction.
create or replace function billing_record_payment(p_tenant_id uuid, p_billing_invoice_id uuid, p_method text,
                                                  p_amount numeric, p_currency text, p_reference text,
                                                  p_received_at timestamptz default null,
                                                  p_recorded_by text default 'operator')
returns jsonb
language plpgsql
security definer
as $$
declare
  inv billing_invoices;
  v_payment uuid;
  v_recorded boolean := true;
  v_paid numeric;
  v_sub text;
begin
  perform vocabulary_check('billing_payment_methods', p_method, 'method');
  if p_amount is null or p_amount <= 0 then
    raise exception using errcode = 'P0001', column = 'amount', message = 'amount: must be a positive number';
  end if;
  if p_reference is null or length(btrim(p_reference)) not between 1 and 200 then
    raise exception using errcode = 'P0001', column = 'reference', message = 'reference: must be 1 to 200 characters';
  end if;
  select * into inv from billing_invoices i
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_billing_invoice_id
     for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'billing_invoice_id',
      message = format('billing_invoice_id: no invoice %s of tenant %s', p_billing_invoice_id, p_tenant_id);
  end if;
  if inv.status not in ('finalized', 'paid') then
    raise exception using errcode = 'P0001', column = 'billing_invoice_id',
      message = format('billing_invoice_id: invoice %s is %s; only a finalized invoice is paid', p_billing_invoice_id, inv.status);
  end if;
  if upper(coalesce(p_currency, inv.currency)) <> inv.currency then
    raise exception using errcode = 'P0001', column = 'currency',
      message = format('currency: the invoice is in %s, not %s', inv.currency, upper(p_currency));
  end if;

  insert into billing_payments (tenant_id, billing_invoice_id, method, amount, currency, reference, received_at, recorded_by)
  values (p_tenant_id, p_billing_invoice_id, p_method, p_amount, inv.currency, btrim(p_reference),
          coalesce(p_received_at, billing_now()), left(coalesce(p_recorded_by, 'operator'), 200))
  on conflict (tenant_id, method, reference) do nothing
  returning payment_id into v_payment;
  if v_payment is null then
    v_recorded := false;
    select p.payment_id into v_payment from billing_payments p
     where p.tenant_id = p_tenant_id and p.method = p_method and p.reference = btrim(p_reference);
  end if;

  select coalesce(sum(p.amount), 0) into v_paid from billing_payments p
   where p.tenant_id = p_tenant_id and p.billing_invoice_id = p_billing_invoice_id;
  if inv.status = 'finalized' and v_paid >= inv.total then
    update billing_invoices i set status = 'paid'
     where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_billing_invoice_id;
    inv.status := 'paid';
    update billing_dunning d set resolved_at = billing_now()
     where d.tenant_id = p_tenant_id and d.billing_invoice_id = p_billing_invoice_id and d.resolved_at is null;
  end if;
  v_sub := billing_subscription_settle(p_tenant_id);
  return jsonb_build_object('payment_id', v_payment, 'recorded', v_recorded, 'invoice_status', inv.status,
                            'paid', v_paid, 'outstanding', greatest(inv.total - v_paid, 0),
                            'subscription_status', v_sub);
end
$$;
select pin_search_path('billing_record_payment(uuid, uuid, text, numeric, text, text, timestamptz, text)');
revoke execute on function billing_record_payment(uuid, uuid, text, numeric, text, text, timestamptz, text) from public;
comment on function billing_record_payment(uuid, uuid, text, numeric, text, text, timestamptz, text) is
  'Records a payment of an operator invoice once per (method, reference); fully paid: the invoice paid, its dunning resolved, the subscription active and unlocked, in the same transaction.';

-- billing_payment_failed(tenant, invoice, reason, at) -> effect
-- A provider's failed payment of an invoice: opens (or adds to) its
-- dunning, day 0 the tenant's billing today, and makes an active or
-- trialing subscription past_due. A failure of an invoice already paid or
-- void changes nothing ('after_paid'): a late failure never undoes a
-- payment.
create or replace function billing_payment_failed(p_tenant_id uuid, p_billing_invoice_id uuid, p_reason text,
                                                  p_at timestamptz default null)
returns text
language plpgsql
security definer
as $$
declare
  inv billing_invoices;
begin
  select * into inv from billing_invoices i
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_billing_invoice_id
     for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'billing_invoice_id',
      message = format('billing_invoice_id: no invoice %s of tenant %s', p_billing_invoice_id, p_tenant_id);
  end if;
  if inv.status in ('paid', 'void') then
    return 'after_paid';
  end if;
  if inv.status = 'draft' then
    return 'not_due';
  end if;
  insert into billing_dunning as d (tenant_id, billing_invoice_id, started_on, cause, failures, last_failure_at, last_failure)
  values (p_tenant_id, p_billing_invoice_id, billing_today(p_tenant_id), 'payment_failed', 1,
          coalesce(p_at, billing_now()), left(p_reason, 500))
  on conflict (tenant_id, billing_invoice_id) do update
     set failures = d.failures + 1, last_failure_at = excluded.last_failure_at,
         last_failure = excluded.last_failure, resolved_at = null;
  update subscriptions s set status = 'past_due'
   where s.tenant_id = p_tenant_id and s.status in ('active', 'trialing');
  return 'failure_recorded';
end
$$;
select pin_search_path('billing_payment_failed(uuid, uuid, text, timestamptz)');
revoke execute on function billing_payment_failed(uuid, uuid, text, timestamptz) from public;
comment on function billing_payment_failed(uuid, uuid, text, timestamptz) is
  'A failed payment of an operator invoice: opens or adds to its dunning and makes the subscription past_due; after the invoice is paid or void it changes nothing.';

-- ---------------------------------------------------------------------------
-- provider deliveries
-- ---------------------------------------------------------------------------

-- payment_event_apply(delivery_id, event) -> {effect, tenant_id,
-- billing_invoice_id, payment_id}: the effect of one provider event (the
-- BFF's normalised form, bff/src/payments/events.rs), under the lock of
-- its invoice. paid records the payment (billing_record_payment), failed
-- the failure (billing_payment_failed), pending and ignored only the event.
create or replace function payment_event_apply(p_event jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_invoice uuid;
  v_tenant uuid;
  v_outcome text := p_event ->> 'outcome';
  v_effect text;
  v_payment jsonb;
  v_at timestamptz;
begin
  begin
    v_invoice := (p_event ->> 'invoice_id')::uuid;
  exception when invalid_text_representation then
    v_invoice := null;
  end;
  if v_invoice is not null then
    select i.tenant_id into v_tenant from billing_invoices i where i.billing_invoice_id = v_invoice;
  end if;
  if v_tenant is null then
    return jsonb_build_object('effect', case when v_outcome in ('paid', 'failed') then 'unmatched' else 'recorded' end);
  end if;
  -- Stripe's `created` is epoch seconds; Midtrans's times are Jakarta's.
  v_at := case
    when p_event ->> 'occurred_at' ~ '^\d{9,11}$' then to_timestamp((p_event ->> 'occurred_at')::double precision)
    when p_event ->> 'occurred_at' ~ '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$'
      then ((p_event ->> 'occurred_at')::timestamp at time zone 'Asia/Jakarta')
    end;
  if v_outcome = 'paid' then
    v_payment := billing_record_payment(v_tenant, v_invoice, p_event ->> 'provider', (p_event ->> 'amount')::numeric,
                                        p_event ->> 'currency', p_event ->> 'reference', v_at,
                                        (p_event ->> 'provider') || ' ' || (p_event ->> 'event_id'));
    v_effect := case when (v_payment ->> 'recorded')::boolean then 'payment_recorded' else 'already_recorded' end;
  elsif v_outcome = 'failed' then
    v_effect := billing_payment_failed(v_tenant, v_invoice, coalesce(p_event ->> 'reason', 'payment failed'), v_at);
  else
    v_effect := 'recorded';
  end if;
  return jsonb_build_object('effect', v_effect, 'tenant_id', v_tenant, 'billing_invoice_id', v_invoice,
                            'payment_id', v_payment -> 'payment_id');
end
$$;
select pin_search_path('payment_event_apply(jsonb)');
revoke execute on function payment_event_apply(jsonb) from public;
comment on function payment_event_apply(jsonb) is
  'Internal: the effect of one normalised provider event on its invoice (a payment, a failure, or nothing).';

-- payment_delivery_receive(provider, headers, body, refusal, event) ->
-- {delivery_id, outcome, effect}
-- Every delivery is stored raw first. refusal (the BFF's verdict on the
-- signature) set: rejected, nothing else. event null (signed, but not of
-- the provider's shape): invalid. Otherwise the event's first delivery
-- applies it (accepted) and every later one is a duplicate: the event's
-- row is taken with ON CONFLICT, so two deliveries at once apply it once
-- (the second waits for the first to commit, then finds its row).
create or replace function payment_delivery_receive(provider text, headers jsonb, body bytea, refusal text,
                                                    event jsonb)
returns jsonb
language plpgsql
security definer
as $$
declare
  v_delivery uuid;
  v_event_id text := event ->> 'event_id';
  v_taken boolean;
  v_applied jsonb;
begin
  if provider not in ('stripe', 'midtrans') then
    raise exception using errcode = 'P0001', column = 'provider', message = 'provider: must be stripe or midtrans';
  end if;
  insert into control.payment_deliveries (provider, headers, body, signature_ok, refusal, event_id, outcome)
  values (provider, coalesce(headers, '{}'), body, refusal is null, refusal, left(v_event_id, 200),
          case when refusal is not null then 'rejected' when event is null then 'invalid' else 'accepted' end)
  returning delivery_id into v_delivery;
  if refusal is not null then
    return jsonb_build_object('delivery_id', v_delivery, 'outcome', 'rejected');
  end if;
  if event is null then
    return jsonb_build_object('delivery_id', v_delivery, 'outcome', 'invalid');
  end if;

  insert into control.payment_events (provider, event_id, delivery_id, event_type, outcome, effect, payload)
  values (provider, v_event_id, v_delivery, event ->> 'event_type', event ->> 'outcome', 'pending', event)
  on conflict on constraint payment_events_pkey do nothing
  returning true into v_taken;
  if v_taken is null then
    update control.payment_deliveries d set outcome = 'duplicate' where d.delivery_id = v_delivery;
    return jsonb_build_object('delivery_id', v_delivery, 'outcome', 'duplicate');
  end if;

  v_applied := payment_event_apply(event);
  update control.payment_events e
     set effect = v_applied ->> 'effect',
         tenant_id = (v_applied ->> 'tenant_id')::uuid,
         billing_invoice_id = (v_applied ->> 'billing_invoice_id')::uuid,
         payment_id = (v_applied ->> 'payment_id')::uuid
   where e.provider = payment_delivery_receive.provider and e.event_id = v_event_id;
  return jsonb_build_object('delivery_id', v_delivery, 'outcome', 'accepted', 'effect', v_applied ->> 'effect');
end
$$;
select pin_search_path('payment_delivery_receive(text, jsonb, bytea, text, jsonb)');
revoke execute on function payment_delivery_receive(text, jsonb, bytea, text, jsonb) from public;
grant execute on function payment_delivery_receive(text, jsonb, bytea, text, jsonb) to bizos_app;
comment on function payment_delivery_receive(text, jsonb, bytea, text, jsonb) is
  'Stores a provider delivery raw and applies its event once (by provider and event id): rejected (bad signature), invalid, duplicate or accepted with its effect.';

-- ---------------------------------------------------------------------------
-- manual transfer proofs
-- ---------------------------------------------------------------------------

create or replace function billing_transfer_proof_json(p billing_transfer_proofs) returns jsonb
language sql stable
as $$
  select jsonb_build_object('proof_id', p.proof_id, 'billing_invoice_id', p.billing_invoice_id,
                            'object_id', p.object_id, 'status', p.status, 'reject_reason', p.reject_reason,
                            'payment_id', p.payment_id, 'decided_at', p.decided_at, 'created_at', p.created_at)
$$;
comment on function billing_transfer_proof_json(billing_transfer_proofs) is 'A transfer proof as the API shows it.';
grant execute on function billing_transfer_proof_json(billing_transfer_proofs) to bizos_authenticated;

-- billing_transfer_proof_add(billing_invoice_id, object_id) -> the proof
-- POST /api/billing/invoices/{id}/transfer-proofs: the caller's upload
-- (bucket transfer-proofs) as proof of a transfer paying a finalized
-- invoice of their tenant (billing.pay). It works while the tenant is
-- soft-locked: paying is the way out of the lock (the BFF marks the
-- request, authenticate_request leaves it writable). It runs as its caller
-- (the insert policy of V63), like the registration of the file before it
-- in the same transaction: on Citus one user may touch a tenant's shard in
-- a transaction.
create or replace function billing_transfer_proof_add(billing_invoice_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_status text;
  p billing_transfer_proofs;
begin
  perform require_permission('billing.pay');
  select i.status into v_status from billing_invoices i
   where i.tenant_id = v_tenant and i.billing_invoice_id = billing_transfer_proof_add.billing_invoice_id
     and i.status <> 'draft';
  if v_status is null then
    raise exception using errcode = 'P0002', column = 'billing_invoice_id',
      message = format('billing_invoice_id: no invoice %s', billing_transfer_proof_add.billing_invoice_id);
  end if;
  if v_status <> 'finalized' then
    raise exception using errcode = 'P0001', column = 'billing_invoice_id',
      message = format('billing_invoice_id: the invoice is %s; only an unpaid invoice takes a transfer proof', v_status);
  end if;
  insert into billing_transfer_proofs (tenant_id, billing_invoice_id, object_id)
  values (v_tenant, billing_transfer_proof_add.billing_invoice_id, billing_transfer_proof_add.object_id)
  returning * into p;
  return billing_transfer_proof_json(p);
end
$$;
select pin_search_path('billing_transfer_proof_add(uuid, uuid)');
revoke execute on function billing_transfer_proof_add(uuid, uuid) from public;
grant execute on function billing_transfer_proof_add(uuid, uuid) to bizos_authenticated;
comment on function billing_transfer_proof_add(uuid, uuid) is
  'Attaches the caller''s upload (bucket transfer-proofs) as a pending transfer proof of a finalized operator invoice of their tenant (billing.pay).';

-- billing_transfer_proof_decide(proof, approve, reason, amount, decided_by)
-- -> the proof (and the payment when approved)
-- The operator's decision on a pending proof: approval records the
-- payment (method manual_transfer, reference the proof; the amount given,
-- or what is still outstanding) with billing_record_payment in the same
-- transaction; rejection needs a reason.
create or replace function billing_transfer_proof_decide(p_proof_id uuid, p_approve boolean, p_reason text,
                                                         p_amount numeric, p_decided_by text)
returns jsonb
language plpgsql
security definer
as $$
declare
  p billing_transfer_proofs;
  inv billing_invoices;
  v_amount numeric;
  v_payment jsonb;
begin
  -- The proof's tenant first, then the proof locked by its key (on Citus
  -- a locking read must name the tenant's shard).
  select * into p from billing_transfer_proofs x where x.proof_id = p_proof_id;
  select * into p from billing_transfer_proofs x
   where x.tenant_id = p.tenant_id and x.proof_id = p_proof_id
     for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'proof_id', message = format('proof_id: no transfer proof %s', p_proof_id);
  end if;
  if p.status <> 'pending' then
    raise exception using errcode = 'P0001', column = 'proof_id',
      message = format('proof_id: the proof is %s already', p.status);
  end if;
  if p_approve then
    select * into inv from billing_invoices i
     where i.tenant_id = p.tenant_id and i.billing_invoice_id = p.billing_invoice_id;
    if p_amount is null then
      select inv.total - coalesce(sum(x.amount), 0) into v_amount from billing_payments x
       where x.tenant_id = p.tenant_id and x.billing_invoice_id = p.billing_invoice_id;
    else
      v_amount := p_amount;
    end if;
    if v_amount is null or v_amount <= 0 then
      raise exception using errcode = 'P0001', column = 'amount',
        message = 'amount: must be a positive number (nothing is outstanding on this invoice)';
    end if;
    v_payment := billing_record_payment(p.tenant_id, p.billing_invoice_id, 'manual_transfer', v_amount, inv.currency,
                                        'proof:' || p.proof_id::text, billing_now(), coalesce(p_decided_by, 'operator'));
    update billing_transfer_proofs x
       set status = 'approved', decided_by = left(coalesce(p_decided_by, 'operator'), 200),
           payment_id = (v_payment ->> 'payment_id')::uuid
     where x.tenant_id = p.tenant_id and x.proof_id = p_proof_id
    returning * into p;
  else
    if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
      raise exception using errcode = 'P0001', column = 'reason', message = 'reason: a reason of 1 to 500 characters is required';
    end if;
    update billing_transfer_proofs x
       set status = 'rejected', decided_by = left(coalesce(p_decided_by, 'operator'), 200), reject_reason = btrim(p_reason)
     where x.tenant_id = p.tenant_id and x.proof_id = p_proof_id
    returning * into p;
  end if;
  return billing_transfer_proof_json(p) || jsonb_build_object('tenant_id', p.tenant_id, 'payment', v_payment);
end
$$;
select pin_search_path('billing_transfer_proof_decide(uuid, boolean, text, numeric, text)');
revoke execute on function billing_transfer_proof_decide(uuid, boolean, text, numeric, text) from public;
comment on function billing_transfer_proof_decide(uuid, boolean, text, numeric, text) is
  'Internal: the operator approves (the payment recorded in the same transaction) or rejects (with a reason) a pending transfer proof.';

-- POST /api/operator/payments/transfer-proofs/{id}/approve {amount?}
create or replace function billing_transfer_proof_approve(proof_id uuid, amount numeric default null,
                                                          decided_by text default 'operator')
returns jsonb
language sql
security definer
as $$
  select billing_transfer_proof_decide(proof_id, true, null, amount, decided_by)
$$;
select pin_search_path('billing_transfer_proof_approve(uuid, numeric, text)');
revoke execute on function billing_transfer_proof_approve(uuid, numeric, text) from public;
comment on function billing_transfer_proof_approve(uuid, numeric, text) is
  'The operator approves a pending transfer proof: the payment (amount, or what is outstanding) is recorded in the same transaction.';

-- POST /api/operator/payments/transfer-proofs/{id}/reject {reason}
create or replace function billing_transfer_proof_reject(proof_id uuid, reason text,
                                                         decided_by text default 'operator')
returns jsonb
language sql
security definer
as $$
  select billing_transfer_proof_decide(proof_id, false, reason, null, decided_by)
$$;
select pin_search_path('billing_transfer_proof_reject(uuid, text, text)');
revoke execute on function billing_transfer_proof_reject(uuid, text, text) from public;
comment on function billing_transfer_proof_reject(uuid, text, text) is
  'The operator rejects a pending transfer proof with a reason.';

-- ---------------------------------------------------------------------------
-- dunning
-- ---------------------------------------------------------------------------

-- The recipients of a tenant's billing mail: its active users whose role
-- holds billing.pay.
-- billing_payers reads them in the database the tenant's profiles are in.
-- A tenant placed in a schema or database of its own has its profiles
-- there: billing_recipients in control answers its addresses as its
-- placement last told them (billing_contacts, written by the month-end,
-- billing_contacts_set, from billing_payers read there).
create or replace function billing_payers(p_tenant_id uuid) returns text[]
language sql stable security definer
as $$
  select coalesce(array_agg(p.email order by p.email), '{}')
    from profiles p
   where p.tenant_id = p_tenant_id and p.active and p.email is not null
     and exists (select 1 from role_permissions r
                  where r.tenant_id = p.tenant_id and r.app_role = p.app_role and r.permission = 'billing.pay')
$$;
select pin_search_path('billing_payers(uuid)');
revoke execute on function billing_payers(uuid) from public;
grant execute on function billing_payers(uuid) to bizos_worker;
comment on function billing_payers(uuid) is
  'The e-mail addresses of the tenant''s active users whose role holds billing.pay, from the profiles in this database.';

create or replace function billing_recipients(p_tenant_id uuid) returns text[]
language plpgsql stable security definer
as $$
begin
  -- Statements of their own: on Citus one holding both would be sent to
  -- the tenant's shard, where the placements (control) are not.
  if billing_usage_here(p_tenant_id) then
    return billing_payers(p_tenant_id);
  end if;
  return coalesce((select c.emails from billing_contacts c where c.tenant_id = p_tenant_id), '{}');
end
$$;
select pin_search_path('billing_recipients(uuid)');
revoke execute on function billing_recipients(uuid) from public;
comment on function billing_recipients(uuid) is
  'Where the operator''s billing mail to a tenant goes: its users who pay (of a tenant placed elsewhere: as its placement last told them).';

-- The month-end's record of a placed tenant's billing addresses, read in
-- its placement (billing_payers there).
create or replace function billing_contacts_set(p_tenant_id uuid, p_emails text[]) returns void
language sql security definer
as $$
  insert into billing_contacts (tenant_id, emails) values (p_tenant_id, coalesce(p_emails, '{}'))
  on conflict (tenant_id) do update set emails = excluded.emails, read_at = now()
$$;
select pin_search_path('billing_contacts_set(uuid, text[])');
revoke execute on function billing_contacts_set(uuid, text[]) from public;
grant execute on function billing_contacts_set(uuid, text[]) to bizos_worker;
comment on function billing_contacts_set(uuid, text[]) is
  'Records the billing addresses of a tenant placed elsewhere, as read in its placement.';

-- billing_dunning_run(tenant) -> {opened, reminders, locked}
-- The tenant's dunning at billing_now(), idempotent (a rerun the same day
-- does nothing more):
-- 1. every finalized invoice past its due date gets its dunning (day 0:
--    the day after the due date) and an active or trialing subscription
--    becomes past_due;
-- 2. each open dunning sends the reminder due: reminder k once day 0 +
--    the k-th of billing_settings.dunning_reminder_days has come (missed
--    days send only the latest, once);
-- 3. after the last reminder and dunning_grace_days more, the tenant is
--    soft-locked (past_due -> soft_locked) and told so, unless a paid
--    invoice covers today: a period already paid for is never locked
--    because of another invoice (the lock waits for that period's end).
create or replace function billing_dunning_run(p_tenant_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  v_today date := billing_today(p_tenant_id);
  v_settings billing_settings;
  v_days integer[];
  v_opened integer := 0;
  v_reminders integer := 0;
  v_locked integer := 0;
  v_to text[];
  d record;
  k integer;
  v_lock_on date;
  v_status text;
begin
  if v_today is null then
    raise exception using errcode = 'P0002', column = 'tenant_id', message = format('tenant_id: no tenant %s', p_tenant_id);
  end if;
  select * into v_settings from billing_settings where settings_id;
  select array_agg(x order by x) into v_days from unnest(v_settings.dunning_reminder_days) x;
  select s.status into v_status from subscriptions s where s.tenant_id = p_tenant_id for update;
  if v_status is null or v_status = 'canceled' then
    return jsonb_build_object('opened', 0, 'reminders', 0, 'locked', 0);
  end if;

  -- 1. overdue invoices
  with opened as (
    insert into billing_dunning (tenant_id, billing_invoice_id, started_on, cause)
    select i.tenant_id, i.billing_invoice_id, i.due_date + 1, 'overdue'
      from billing_invoices i
     where i.tenant_id = p_tenant_id and i.status = 'finalized' and i.due_date < v_today
    on conflict (tenant_id, billing_invoice_id) do nothing
    returning 1
  )
  select count(*) into v_opened from opened;
  -- dunning of invoices paid or voided meanwhile is over
  update billing_dunning dn set resolved_at = billing_now()
    from billing_invoices i
   where dn.tenant_id = p_tenant_id and dn.resolved_at is null
     and i.tenant_id = dn.tenant_id and i.billing_invoice_id = dn.billing_invoice_id
     and i.status in ('paid', 'void');
  if exists (select 1 from billing_dunning dn where dn.tenant_id = p_tenant_id and dn.resolved_at is null)
     and v_status in ('active', 'trialing') then
    update subscriptions s set status = 'past_due' where s.tenant_id = p_tenant_id;
    v_status := 'past_due';
  end if;

  v_to := billing_recipients(p_tenant_id);
  for d in
    select dn.billing_invoice_id, dn.started_on, dn.reminders_sent, dn.locked_at, dn.cause, dn.failures,
           dn.last_failure, i.invoice_no, i.total, i.currency, i.due_date
      from billing_dunning dn
      join billing_invoices i on i.tenant_id = dn.tenant_id and i.billing_invoice_id = dn.billing_invoice_id
     where dn.tenant_id = p_tenant_id and dn.resolved_at is null
     order by dn.started_on, dn.billing_invoice_id
  loop
    -- 2. the reminder due
    select count(*) into k from unnest(v_days) x where d.started_on + x <= v_today;
    v_lock_on := d.started_on + v_days[cardinality(v_days)] + v_settings.dunning_grace_days;
    if k > d.reminders_sent then
      if cardinality(v_to) > 0 then
        perform email_queue(p_tenant_id, null, 'billing.payment_reminder', v_to,
          jsonb_build_object('invoice_no', d.invoice_no, 'total', d.total::text, 'currency', d.currency,
                             'due_date', d.due_date::text, 'reminder', k, 'reminders', cardinality(v_days),
                             'lock_on', v_lock_on::text,
                             'reason', case when d.cause = 'payment_failed' or d.failures > 0
                                            then coalesce(d.last_failure, 'the payment failed')
                                            else 'it is past its due date' end),
          '{}');
      end if;
      update billing_dunning dn set reminders_sent = k, last_reminder_on = v_today
       where dn.tenant_id = p_tenant_id and dn.billing_invoice_id = d.billing_invoice_id;
      v_reminders := v_reminders + 1;
      d.reminders_sent := k;
    end if;
    -- 3. the lock
    if d.locked_at is null and d.reminders_sent >= cardinality(v_days) and v_today >= v_lock_on
       and not exists (select 1 from billing_invoices p
                        where p.tenant_id = p_tenant_id and p.status = 'paid'
                          and p.period_start <= v_today and v_today < p.period_end) then
      if v_status in ('active', 'trialing') then
        update subscriptions s set status = 'past_due' where s.tenant_id = p_tenant_id;
        v_status := 'past_due';
      end if;
      if v_status = 'past_due' then
        update subscriptions s set status = 'soft_locked' where s.tenant_id = p_tenant_id;
        perform subscription_lock_changed(p_tenant_id);
        v_status := 'soft_locked';
        if cardinality(v_to) > 0 then
          perform email_queue(p_tenant_id, null, 'billing.soft_locked', v_to,
            jsonb_build_object('invoice_no', d.invoice_no, 'total', d.total::text, 'currency', d.currency), '{}');
        end if;
      end if;
      update billing_dunning dn set locked_at = billing_now()
       where dn.tenant_id = p_tenant_id and dn.billing_invoice_id = d.billing_invoice_id;
      v_locked := v_locked + 1;
    end if;
  end loop;
  return jsonb_build_object('opened', v_opened, 'reminders', v_reminders, 'locked', v_locked, 'status', v_status);
end
$$;
select pin_search_path('billing_dunning_run(uuid)');
revoke execute on function billing_dunning_run(uuid) from public;
grant execute on function billing_dunning_run(uuid) to bizos_worker;
comment on function billing_dunning_run(uuid) is
  'The tenant''s dunning at billing_now(): opens dunning of overdue invoices, sends the reminders due, soft-locks after the last one and the grace period unless a paid period covers today. Idempotent per day.';

-- billing_dunning_enqueue() -> jobs enqueued: a billing.dunning job for
-- every tenant with an open dunning or a finalized invoice past its due
-- date (by the billing clock), one per tenant and billing day (dedup key
-- billing.dunning:<day>). The worker calls it with the due schedules.
create or replace function billing_dunning_enqueue() returns integer
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_count integer := 0;
  v_now constant timestamptz := billing_now();
  -- No tenant's today is later than UTC+14's: the invoices due before it
  -- are the candidates, found by the index of due dates (V60). A tick
  -- costs the open dunnings and the overdue invoices, not every
  -- subscription.
  v_latest_today constant date := (v_now at time zone 'Etc/GMT-14')::date;
begin
  for v_tenant in
    select s.tenant_id
      from subscriptions s
      join tenants t on t.tenant_id = s.tenant_id
     where s.status <> 'canceled' and t.status <> 'suspended'
       and s.tenant_id in (
             select dn.tenant_id from billing_dunning dn where dn.resolved_at is null
             union
             select i.tenant_id from billing_invoices i join tenants it on it.tenant_id = i.tenant_id
              where i.status = 'finalized' and i.due_date < v_latest_today
                and i.due_date < (v_now at time zone it.time_zone)::date)
     order by s.tenant_id
  loop
    perform job_enqueue_for(v_tenant, 'billing.dunning', '{}', null, 0,
                            'billing.dunning:' || billing_today(v_tenant)::text);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
select pin_search_path('billing_dunning_enqueue()');
revoke execute on function billing_dunning_enqueue() from public;
grant execute on function billing_dunning_enqueue() to bizos_worker;
comment on function billing_dunning_enqueue() is
  'Enqueues the billing.dunning job of every tenant with an open dunning or an overdue operator invoice, once per tenant and billing day.';

-- ---------------------------------------------------------------------------
-- the soft lock of tenants placed elsewhere
-- ---------------------------------------------------------------------------

-- Whether the tenant's subscription is soft-locked. The subscription is
-- the control database's, the tenant's rows may be in a schema or database
-- of their own, where authenticate_request finds no subscription: the
-- BFF's router reads this with the tenant's placement and the request
-- carries it there (request.billing_locked, authenticate_request).
create or replace function billing_soft_locked(p_tenant_id uuid) returns boolean
language sql stable security definer
as $$
  select exists (select 1 from subscriptions s where s.tenant_id = p_tenant_id and s.status = 'soft_locked')
$$;
select pin_search_path('billing_soft_locked(uuid)');
revoke execute on function billing_soft_locked(uuid) from public;
grant execute on function billing_soft_locked(uuid) to bizos_app;
comment on function billing_soft_locked(uuid) is
  'Whether the tenant''s subscription is soft-locked (the router carries it to the tenant''s placement).';

-- A subscription locked or unlocked tells the routers as a placement
-- change does (channel bizos_placement, payload the tenant): they read the
-- tenant's route, and with it its lock, again. On Citus the trigger is
-- dropped (sql/citus/triggers.sql): it would run on the shard, where no
-- router listens and a NOTIFY fails the two-phase commit; there the
-- functions that lock and unlock call subscription_lock_changed().
create or replace function subscription_lock_changed(p_tenant_id uuid) returns void
language plpgsql
as $$
begin
  if citus_table('subscriptions') then
    perform pg_catalog.pg_notify('bizos_placement', p_tenant_id::text);
  end if;
end
$$;
select pin_search_path('subscription_lock_changed(uuid)');
revoke execute on function subscription_lock_changed(uuid) from public;
comment on function subscription_lock_changed(uuid) is
  'Internal: on Citus, tells the routers (channel bizos_placement) that the tenant''s subscription was locked or unlocked; the trigger subscriptions_lock_notify does it on a single node.';

create or replace function subscriptions_lock_notify() returns trigger
language plpgsql
as $$
begin
  if (new.status = 'soft_locked') is distinct from (old.status = 'soft_locked') then
    perform pg_catalog.pg_notify('bizos_placement', new.tenant_id::text);
  end if;
  return null;
end
$$;
select pin_search_path('subscriptions_lock_notify()');
revoke execute on function subscriptions_lock_notify() from public;
create or replace trigger subscriptions_lock_notify after update of status on subscriptions
  for each row execute function subscriptions_lock_notify();
