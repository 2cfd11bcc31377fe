-- Trusted numbers (issue 12, parts 1 and 3 outside the KPI module): one
-- definition of "AR as of a date", and the tenant's today everywhere.
--
-- 1. AR as of a date d (the tenant's calendar) is the sum of the
--    receivables ledger up to and including d:
--
--      v_ar_ledger   one line per ISSUED or PAID invoice (+ total, on its
--                    issue date) and one per payment of such an invoice
--                    (- amount, on the day it was paid). DRAFT and VOID
--                    invoices are not receivables (a voided invoice counts
--                    as never issued; it cannot have payments).
--      AR(d)         = sum(amount) of the lines with entry_date <= d
--      outstanding of an invoice on d = the same sum over its own lines;
--                    it is a receivable on d when it was issued on or before d
--      credit sales of d-29..d = sum of the invoice lines in that window
--
--    Every report derives from it, so they cannot drift:
--    v_invoice_outstanding (as of the tenant's today) -> v_ar_aging,
--    v_invoices (V9) and create_collection_ticket's "overdue";
--    v_dso_rolling_30 (as of each of the last 90 days).
--
--    An invoice dated in the future (allowed: invoices are prepared ahead
--    of their date, and a tenant moving its time zone west turns today's
--    invoices into tomorrow's) is not a receivable before its issue date:
--    not in outstanding, aging or DSO's AR, not "current". Payments are
--    never dated before the invoice's issue date nor after the tenant's
--    today (payments_check_outstanding), so such an invoice takes no
--    payment before its date either.
--
-- 2. "Today" is the tenant's today (tenants.time_zone, V16), never the
--    session's: the views compute it per row's tenant from `tenants`
--    (v_tenant_today), so they give the same numbers in any session time
--    zone and when read by the owner for analytics; the RPCs and triggers
--    use tenant_today(). Replaced here: invoices.issue_date and
--    payments.paid_on defaults, invoice_create, payment_record,
--    create_collection_ticket, the import checks (V10), the receivables
--    views (V6, V9) and the ticketing day cut (V4). Business calendars fall
--    back to the tenant's time zone when a tenant has none of its own.
--
-- The KPI module (V7) is changed elsewhere.

-- ---------------------------------------------------------------------------
-- The tenant's today, set-based
-- ---------------------------------------------------------------------------

-- The current date of every tenant the caller can read (its own; every
-- tenant for the owner). Views join this instead of calling
-- tenant_today() per row; it is the same expression.
create view v_tenant_today with (security_invoker = true) as
select t.tenant_id, t.time_zone, (pg_catalog.now() at time zone t.time_zone)::date as today
  from tenants t;
comment on view v_tenant_today is 'The tenant''s current date (tenants.time_zone), one row per readable tenant.';
grant select on v_tenant_today to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Defaults: the tenant's today, from the row's tenant
-- ---------------------------------------------------------------------------

-- A column default cannot read the row's tenant, so the dates are filled in
-- by BEFORE INSERT triggers (NOT NULL is checked after them).
alter table invoices alter column issue_date drop default;
alter table payments alter column paid_on drop default;

create function invoices_default_issue_date() returns trigger
language plpgsql
as $$
begin
  new.issue_date := coalesce(new.issue_date, tenant_today(new.tenant_id));
  return new;
end
$$;
select pin_search_path('invoices_default_issue_date()');
revoke execute on function invoices_default_issue_date() from public;

create trigger invoices_default_issue_date
  before insert on invoices
  for each row execute function invoices_default_issue_date();

-- ---------------------------------------------------------------------------
-- AR as of a date: the receivables ledger
-- ---------------------------------------------------------------------------

-- One line per ISSUED or PAID invoice (its total, on its issue date;
-- payment_id NULL) and one per payment of such an invoice (minus the
-- amount, on paid_on). AR as of d = sum(amount) where entry_date <= d.
-- Security invoker: the caller's RLS on invoices and payments applies.
create view v_ar_ledger with (security_invoker = true) as
select i.tenant_id, i.invoice_id, null::uuid as payment_id, i.customer_id, i.currency,
       i.issue_date as entry_date, i.total::numeric as amount
  from invoices i
 where i.status in ('ISSUED', 'PAID')
union all
select i.tenant_id, i.invoice_id, p.payment_id, i.customer_id, i.currency,
       p.paid_on as entry_date, -p.amount::numeric as amount
  from invoices i
  join payments p on p.tenant_id = i.tenant_id and p.invoice_id = i.invoice_id
 where i.status in ('ISSUED', 'PAID');
comment on view v_ar_ledger is
  'Receivables ledger: + total of each ISSUED/PAID invoice on its issue date, - each payment on paid_on. AR as of d = sum(amount) of the lines with entry_date <= d.';
grant select on v_ar_ledger to bizos_authenticated;

-- Per invoice that is a receivable on the tenant's today (issued on or
-- before it, ISSUED or PAID): the ledger up to today.
--   paid          = payments made on or before today
--   outstanding   = total - paid
--   days_past_due = today - due_date when outstanding > 0 and past due, else 0
--   is_overdue    = outstanding > 0 and today > due_date
--   aging_bucket  = 'current' (not past due) | '1-30' | '31-60' | '61-90' | '>90'; NULL when nothing is outstanding
create or replace view v_invoice_outstanding with (security_invoker = true) as
select i.tenant_id,
       i.invoice_id,
       i.invoice_no,
       i.customer_id,
       c.company_name,
       i.issue_date,
       i.due_date,
       i.currency,
       i.status,
       i.total,
       (i.total - a.outstanding)::numeric(18,2) as paid,
       a.outstanding,
       case when a.outstanding > 0 and a.today > i.due_date
            then a.today - i.due_date else 0 end as days_past_due,
       (a.outstanding > 0 and a.today > i.due_date) as is_overdue,
       case when a.outstanding = 0 then null
            when a.today <= i.due_date then 'current'
            when a.today - i.due_date <= 30 then '1-30'
            when a.today - i.due_date <= 60 then '31-60'
            when a.today - i.due_date <= 90 then '61-90'
            else '>90' end as aging_bucket,
       i.collection_ticket_id
  from (select l.tenant_id, l.invoice_id, d.today, sum(l.amount) as outstanding
          from v_ar_ledger l
          join v_tenant_today d on d.tenant_id = l.tenant_id
         where l.entry_date <= d.today
         group by l.tenant_id, l.invoice_id, d.today
        -- A receivable on d: its invoice line is on or before d (payments
        -- are never dated before the issue date, so this is every group).
        having bool_or(l.payment_id is null)) a
  join invoices i on i.tenant_id = a.tenant_id and i.invoice_id = a.invoice_id
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id;
comment on view v_invoice_outstanding is
  'Per invoice that is a receivable on the tenant''s today (v_ar_ledger up to today): total, paid, outstanding, days_past_due, is_overdue, aging bucket.';

comment on view v_ar_aging is
  'AR aging per customer and currency (and totals: is_total) on the tenant''s today: current, 1-30, 31-60, 61-90, >90 days past due (from v_invoice_outstanding).';

-- Rolling 30-day DSO per tenant and currency for each of the last 90 days
-- of the tenant's calendar (day = today - 89 .. today), from the ledger:
--
--   ar_outstanding(d)   = AR as of d (ledger lines with entry_date <= d)
--   credit_sales_30d(d) = invoice lines with entry_date in [d-29, d]
--   dso_days(d)         = ar_outstanding(d) / credit_sales_30d(d) * 30, rounded to 0.1 day
--
-- When the credit sales of the window are 0, dso_days is NULL (undefined,
-- never an invented number). Amounts are per currency (no conversion). A
-- tenant and currency have rows once they have an ISSUED or PAID invoice.
create or replace view v_dso_rolling_30 with (security_invoker = true) as
select k.tenant_id,
       k.currency,
       d.day,
       ar.amount as ar_outstanding,
       sales.amount as credit_sales_30d,
       case when sales.amount > 0 then round(ar.amount / sales.amount * 30, 1) end as dso_days
  from (select distinct l.tenant_id, l.currency from v_ar_ledger l) k
  join v_tenant_today t on t.tenant_id = k.tenant_id
 cross join lateral (select t.today - 89 + g as day from generate_series(0, 89) g) d
 cross join lateral (
   select coalesce(sum(l.amount), 0) as amount
     from v_ar_ledger l
    where l.tenant_id = k.tenant_id and l.currency = k.currency and l.entry_date <= d.day
 ) ar
 cross join lateral (
   select coalesce(sum(l.amount), 0) as amount
     from v_ar_ledger l
    where l.tenant_id = k.tenant_id and l.currency = k.currency and l.payment_id is null
      and l.entry_date between d.day - 29 and d.day
 ) sales;
comment on view v_dso_rolling_30 is
  'DSO(d) = AR as of d (v_ar_ledger) / credit sales of d-29..d x 30, for the tenant''s last 90 days; NULL when those sales are 0.';

-- GET /api/invoices: every invoice in the caller's scope (drafts, voids and
-- invoices dated in the future too); outstanding, days past due and bucket
-- as v_invoice_outstanding says (0 / not overdue when the invoice is not a
-- receivable today). The columns are V9's, listed.
create or replace view v_invoices with (security_invoker = true) as
select i.tenant_id, i.invoice_id, i.invoice_no, i.customer_id, i.issue_date, i.due_date, i.currency,
       i.subtotal, i.tax, i.total, i.amount_paid, i.status, i.notes, i.collection_ticket_id,
       i.issued_at, i.paid_at, i.voided_at, i.created_by, i.created_at, i.updated_at,
       c.company_name,
       coalesce(o.outstanding, 0) as outstanding,
       coalesce(o.days_past_due, 0) as days_past_due,
       coalesce(o.is_overdue, false) as is_overdue,
       o.aging_bucket
  from invoices i
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id
  left join v_invoice_outstanding o on o.tenant_id = i.tenant_id and o.invoice_id = i.invoice_id;
comment on view v_invoices is
  'Invoices in the caller''s scope with outstanding amount, days past due and aging bucket on the tenant''s today (v_invoice_outstanding).';

-- ---------------------------------------------------------------------------
-- Writes: the tenant's today
-- ---------------------------------------------------------------------------

-- Payments: paid_on defaults to the tenant's today and may not be after it
-- (for every writer: RPC, import, the owner), besides V6's rules.
create or replace function payments_check_outstanding() returns trigger
language plpgsql security definer
as $$
declare
  inv record;
  paid numeric;
  v_today date;
begin
  if tg_op = 'UPDATE' and (new.invoice_id <> old.invoice_id or new.amount <> old.amount
                           or new.paid_on <> old.paid_on) then
    raise exception using errcode = 'P0001', column = 'amount',
      message = 'amount: payments cannot be changed once recorded';
  end if;
  if tg_op = 'UPDATE' then
    new.created_by := old.created_by;
    return new;
  end if;
  new.created_by := coalesce(bizos.uid(), new.created_by);
  -- The tenant's today, not the session's (the column has no default).
  v_today := tenant_today(new.tenant_id);
  new.paid_on := coalesce(new.paid_on, v_today);
  if new.paid_on > v_today then
    raise exception using errcode = 'P0001', column = 'paid_on',
      message = format('paid_on: %s is in the future (today is %s in the tenant''s time zone)', new.paid_on, v_today);
  end if;

  select i.invoice_no, i.status, i.issue_date, i.total into inv
    from invoices i
   where i.tenant_id = new.tenant_id and i.invoice_id = new.invoice_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'invoice_id',
      message = 'invoice_id: invoice not found';
  end if;
  if inv.status <> 'ISSUED' then
    raise exception using errcode = 'P0001', column = 'invoice_id',
      message = format('invoice_id: invoice %s is %s; only ISSUED invoices take payments', inv.invoice_no, inv.status);
  end if;
  if new.paid_on < inv.issue_date then
    raise exception using errcode = 'P0001', column = 'paid_on',
      message = format('paid_on: %s is before the issue date %s of invoice %s', new.paid_on, inv.issue_date, inv.invoice_no);
  end if;
  paid := coalesce((select sum(p.amount) from payments p
                     where p.tenant_id = new.tenant_id and p.invoice_id = new.invoice_id), 0);
  if new.amount > inv.total - paid then
    raise exception using errcode = 'P0001', column = 'amount',
      message = format('amount: %s exceeds the outstanding %s of invoice %s', new.amount, inv.total - paid, inv.invoice_no);
  end if;
  return new;
end
$$;


-- invoice_create: issue_date defaults to the tenant's today. A future issue
-- date is allowed (see above); such an invoice is a receivable from its date.
create or replace function invoice_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_customer uuid;
  v_issue date;
  v_due date;
  v_terms integer;
  v_currency text;
  v_subtotal numeric;
  v_tax numeric;
  v_status text;
  v_notes text;
  r invoices;
begin
  perform require_permission('invoice.create');
  perform payload_check(payload, '{"customer_id": "uuid", "issue_date": "date", "due_date": "date", "terms_days": "integer", "currency": "text", "subtotal": "number", "tax": "number", "status": "text", "notes": "text"}');
  v_customer := payload_uuid(payload, 'customer_id', true);
  if not exists (select 1 from customers c
                  where c.tenant_id = (select bizos.tenant_id()) and c.customer_id = v_customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: customer not found';
  end if;
  v_issue := coalesce(payload_date(payload, 'issue_date'), tenant_today());
  v_due := payload_date(payload, 'due_date');
  v_terms := payload_integer(payload, 'terms_days');
  if v_due is not null and v_terms is not null then
    perform raise_field('terms_days', 'send either due_date or terms_days, not both');
  end if;
  if v_terms is not null and (v_terms < 0 or v_terms > 365) then
    perform raise_field('terms_days', 'must be between 0 and 365');
  end if;
  v_due := coalesce(v_due, v_issue + coalesce(v_terms, 30));
  if v_due < v_issue then
    perform raise_field('due_date', format('%s is before the issue date %s', v_due, v_issue));
  end if;
  v_currency := upper(coalesce(payload_text(payload, 'currency', false, 3), 'IDR'));
  if v_currency !~ '^[A-Z]{3}$' then
    perform raise_field('currency', 'must be an ISO 4217 code such as IDR');
  end if;
  v_subtotal := payload_numeric(payload, 'subtotal', true);
  if v_subtotal <= 0 then
    perform raise_field('subtotal', 'must be greater than 0');
  end if;
  v_tax := payload_numeric(payload, 'tax', true);
  if v_tax < 0 then
    perform raise_field('tax', 'must be 0 or more (PPN: 12% of a DPP of 11/12 of the price, i.e. 11%, for non-luxury goods)');
  end if;
  if v_tax > v_subtotal then
    perform raise_field('tax', 'cannot exceed the subtotal');
  end if;
  v_status := upper(coalesce(payload_text(payload, 'status', false, 10), 'ISSUED'));
  if v_status not in ('DRAFT', 'ISSUED') then
    perform raise_field('status', 'a new invoice is DRAFT or ISSUED');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);

  insert into invoices (tenant_id, customer_id, issue_date, due_date, currency, subtotal, tax, status, notes)
  values ((select bizos.tenant_id()), v_customer, v_issue, v_due, v_currency, v_subtotal, v_tax, v_status, v_notes)
  returning * into r;

  return jsonb_build_object('invoice_id', r.invoice_id, 'invoice_no', r.invoice_no, 'status', r.status,
                            'total', r.total, 'due_date', r.due_date);
end
$$;

-- payment_record: paid_on defaults to, and may not be after, the tenant's
-- today (a payment dated today in Jakarta is accepted at 01:00 WIB, when the
-- UTC date is still yesterday).
create or replace function payment_record(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_invoice uuid;
  v_invoice_no text;
  v_amount numeric;
  v_paid_on date;
  v_method text;
  v_reference text;
  v_notes text;
  inv invoices;
  existing payments;
  r payments;
  v_today date;
begin
  perform require_permission('payment.record');
  perform payload_check(payload, '{"invoice_id": "uuid", "invoice_no": "text", "amount": "number", "paid_on": "date", "method": "text", "reference": "text", "notes": "text"}');
  v_invoice := payload_uuid(payload, 'invoice_id');
  v_invoice_no := payload_text(payload, 'invoice_no', false, 40);
  if v_invoice is null and v_invoice_no is null then
    perform raise_field('invoice_id', 'is required (or send invoice_no)');
  end if;
  if v_invoice is not null and v_invoice_no is not null then
    perform raise_field('invoice_no', 'send either invoice_id or invoice_no, not both');
  end if;
  v_amount := payload_numeric(payload, 'amount', true);
  if v_amount <= 0 then
    perform raise_field('amount', 'must be greater than 0');
  end if;
  v_today := tenant_today();
  v_paid_on := coalesce(payload_date(payload, 'paid_on'), v_today);
  if v_paid_on > v_today then
    perform raise_field('paid_on', format('%s is in the future (today is %s in the tenant''s time zone)', v_paid_on, v_today));
  end if;
  v_method := lower(coalesce(payload_text(payload, 'method', false, 40), 'bank_transfer'));
  if v_method not in ('bank_transfer', 'virtual_account', 'cash', 'giro', 'card', 'e_wallet', 'other') then
    perform raise_field('method', 'must be one of bank_transfer, virtual_account, cash, giro, card, e_wallet, other');
  end if;
  v_reference := payload_text(payload, 'reference', false, 200);
  v_notes := payload_text(payload, 'notes', false, 2000);

  select * into inv from invoices i
   where i.tenant_id = (select bizos.tenant_id())
     and (i.invoice_id = v_invoice or i.invoice_no = v_invoice_no)
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = coalesce(case when v_invoice is null then 'invoice_no' end, 'invoice_id'),
      message = coalesce(case when v_invoice is null then 'invoice_no' end, 'invoice_id') || ': invoice not found';
  end if;

  if v_reference is not null then
    select * into existing from payments p
     where p.tenant_id = inv.tenant_id and p.invoice_id = inv.invoice_id and p.reference = v_reference;
    if found then
      if existing.amount = v_amount and existing.paid_on = v_paid_on and existing.method = v_method then
        return jsonb_build_object('payment_id', existing.payment_id, 'payment_no', existing.payment_no,
                                  'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid,
                                  'invoice_status', inv.status, 'replayed', true);
      end if;
      raise exception using errcode = '23505', column = 'reference',
        constraint = 'payments_invoice_id_reference_key',
        message = format('reference: %s is already recorded on invoice %s as payment %s with other values',
                         v_reference, inv.invoice_no, existing.payment_no);
    end if;
  end if;

  insert into payments (tenant_id, invoice_id, paid_on, amount, method, reference, notes)
  values (inv.tenant_id, inv.invoice_id, v_paid_on, v_amount, v_method, v_reference, v_notes)
  returning * into r;

  select * into inv from invoices i where i.tenant_id = inv.tenant_id and i.invoice_id = inv.invoice_id;
  return jsonb_build_object('payment_id', r.payment_id, 'payment_no', r.payment_no,
                            'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid,
                            'invoice_status', inv.status, 'replayed', false);
end
$$;

-- create_collection_ticket: overdue as v_invoice_outstanding says, on the
-- tenant's today.
create or replace function create_collection_ticket(invoice_id uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_role text := bizos.app_role();
  inv record;
  t record;
  ovd record;
  created jsonb;
  v_ticket uuid;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  perform require_permission('collection.create');
  if create_collection_ticket.invoice_id is null then
    perform raise_field('invoice_id', 'is required');
  end if;

  select i.invoice_id, i.invoice_no, i.customer_id, i.status, i.due_date, i.currency,
         i.total - i.amount_paid as outstanding, i.collection_ticket_id
    into inv
    from invoices i
   where i.tenant_id = v_tenant and i.invoice_id = create_collection_ticket.invoice_id
   for update;
  -- The same visibility as the invoices select policy.
  if not found or not (v_role in ('super_admin', 'director', 'finance')
                       or (v_role in ('sales_manager', 'salesperson') and owns_customer(inv.customer_id))) then
    raise exception using errcode = 'P0002', column = 'invoice_id', message = 'invoice_id: invoice not found';
  end if;
  -- Overdue as every report says it (v_invoice_outstanding: AR as of the
  -- tenant's today); read as the owner, after the row lock.
  select o.is_overdue, o.days_past_due, o.outstanding into ovd
    from v_invoice_outstanding o
   where o.tenant_id = v_tenant and o.invoice_id = inv.invoice_id;
  if inv.status <> 'ISSUED' or not coalesce(ovd.is_overdue, false) then
    raise exception using errcode = 'P0001', column = 'invoice_id',
      message = format('invoice_id: invoice %s is not overdue (status %s, due %s); collection tickets are for overdue invoices',
                       inv.invoice_no, inv.status, inv.due_date);
  end if;

  if inv.collection_ticket_id is not null then
    select k.ticket_id, k.ticket_no, k.ticket_status into t
      from tickets k
     where k.tenant_id = v_tenant and k.ticket_id = inv.collection_ticket_id;
    if found and coalesce(t.ticket_status, 'OPEN') not in ('RESOLVED', 'CLOSED', 'CANCELLED') then
      return jsonb_build_object('ticket_id', t.ticket_id, 'ticket_no', t.ticket_no,
                                'invoice_id', inv.invoice_id, 'created', false);
    end if;
  end if;

  created := ticket_create(jsonb_build_object(
    'ticket_type', 'general_request',
    'dept_target', 'FIN',
    'related_customer_id', inv.customer_id,
    'subject', format('Collection: invoice %s overdue %s days', inv.invoice_no, ovd.days_past_due),
    'description', format('Invoice %s is %s days past due (due %s); outstanding %s %s.',
                          inv.invoice_no, ovd.days_past_due, inv.due_date, inv.currency, ovd.outstanding)));
  v_ticket := (created ->> 'ticket_id')::uuid;

  update invoices i set collection_ticket_id = v_ticket
   where i.tenant_id = v_tenant and i.invoice_id = inv.invoice_id;

  return jsonb_build_object('ticket_id', v_ticket, 'ticket_no', created ->> 'ticket_no',
                            'invoice_id', inv.invoice_id, 'created', true);
end
$$;

-- ---------------------------------------------------------------------------
-- Ticketing (V4): business calendars and the tenant's day
-- ---------------------------------------------------------------------------

-- A tenant without a business calendar of its own works in its own time
-- zone (tenants.time_zone; V4 said Asia/Jakarta for everyone).
create or replace function business_time_zone(tenant uuid) returns text
language plpgsql stable security definer
as $$
declare
  v_tz text;
begin
  if bizos.tenant_id() is not null and tenant is distinct from bizos.tenant_id() then
    raise exception using errcode = '42501', message = 'business calendars of another tenant are not visible';
  end if;
  select coalesce(c.time_zone, t.time_zone) into v_tz
    from tenants t
    left join business_calendars c on c.tenant_id = t.tenant_id
   where t.tenant_id = tenant;
  return coalesce(v_tz, 'Asia/Jakarta');
end
$$;
comment on table business_calendars is
  'The tenant''s business time zone for its working hours (one row per tenant; none: the tenant''s time zone, tenants.time_zone).';

-- The local days from_day .. to_day as dates (no round trip through the
-- session's time zone).
create or replace function business_intervals(tenant uuid, from_day date, to_day date)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql stable security definer
as $$
declare
  v_tz text := business_time_zone(tenant);
begin
  return query
    with own as (
      select h.weekday, h.opens_at, h.closes_at from business_hours h where h.tenant_id = tenant
    ), hrs as (
      select * from own
      union all
      select w::smallint, time '08:00', time '17:00' from generate_series(1, 5) w
       where not exists (select 1 from own)
    ), days as (
      select from_day + g as d from generate_series(0, to_day - from_day) g
    )
    select ((d.d + hrs.opens_at) at time zone v_tz), ((d.d + hrs.closes_at) at time zone v_tz)
      from days d
      join hrs on hrs.weekday = extract(isodow from d.d)
     where not exists (select 1 from holidays x where x.tenant_id = tenant and x.holiday_date = d.d)
     order by 1;
end
$$;

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
comment on view v_ticket_first_response_daily_median is
  'Median first response (minutes, business minutes) of the tickets created each day (the tenant''s day, tenants.time_zone); tickets without a reply count in tickets, not in the median.';

-- ---------------------------------------------------------------------------
-- Imports (V10): the tenant's today for default and "in the future" dates
-- ---------------------------------------------------------------------------

create or replace function import_validate_invoices(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  update pg_temp.import_batch b
     set (err_field, err_msg) = (
       select v.f, v.f || ': ' || v.p
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
         cross join lateral (values
           (1, 'external_ref',
            coalesce(import_problem_text(import_cell(b.d, 'external_ref'), true, 100),
                     case when import_cell(b.d, 'external_ref') ~ '[[:cntrl:]]' then 'must not contain control characters' end)),
           (2, 'customer_npwp',
            case when import_cell(b.d, 'customer_npwp') is null then
                   case when import_cell(b.d, 'customer_email') is null then 'is required (or customer_email)' end
                 when import_cell(b.d, 'customer_email') is not null then 'send either customer_npwp or customer_email, not both'
                 when bizos.norm_npwp(import_cell(b.d, 'customer_npwp')) is null
                 then format('%L is not a valid NPWP', import_cell(b.d, 'customer_npwp'))
                 when c.n = 0 then format('no customer with NPWP %s', import_cell(b.d, 'customer_npwp')) end),
           (3, 'customer_email',
            case when import_cell(b.d, 'customer_email') is null or import_cell(b.d, 'customer_npwp') is not null then null
                 when bizos.norm_email(import_cell(b.d, 'customer_email')) is null
                 then format('%L is not a valid e-mail address', import_cell(b.d, 'customer_email'))
                 when c.n = 0 then format('no customer with e-mail %s', import_cell(b.d, 'customer_email'))
                 when c.n > 1 then format('%s customers have e-mail %s; use customer_npwp', c.n, import_cell(b.d, 'customer_email')) end),
           (4, 'issue_date', import_problem_date(import_cell(b.d, 'issue_date'), false)),
           (5, 'due_date', import_problem_date(import_cell(b.d, 'due_date'), false)),
           (6, 'terms_days',
            coalesce(import_problem_number(import_cell(b.d, 'terms_days'), false, 0),
                     case when import_cell(b.d, 'terms_days') is not null and import_cell(b.d, 'due_date') is not null
                          then 'send either due_date or terms_days, not both'
                          when import_cell(b.d, 'terms_days')::numeric not between 0 and 365
                          then 'must be between 0 and 365' end)),
           (7, 'due_date',
            case when import_date(import_cell(b.d, 'due_date'))
                      < coalesce(import_date(import_cell(b.d, 'issue_date')), v_today)
                 then format('%s is before the issue date %s', import_cell(b.d, 'due_date'),
                             coalesce(import_date(import_cell(b.d, 'issue_date')), v_today)) end),
           (8, 'currency',
            case when import_cell(b.d, 'currency') is not null and upper(import_cell(b.d, 'currency')) !~ '^[A-Z]{3}$'
                 then 'must be an ISO 4217 code such as IDR' end),
           (9, 'subtotal',
            coalesce(import_problem_number(import_cell(b.d, 'subtotal'), true, 2),
                     case when import_cell(b.d, 'subtotal')::numeric <= 0 then 'must be greater than 0' end)),
           (10, 'tax',
            coalesce(import_problem_number(import_cell(b.d, 'tax'), true, 2),
                     case when import_cell(b.d, 'tax')::numeric < 0
                          then 'must be 0 or more (PPN: 12% of a DPP of 11/12 of the price, i.e. 11%, for non-luxury goods)'
                          when import_problem_number(import_cell(b.d, 'subtotal'), true, 2) is null
                               and import_cell(b.d, 'tax')::numeric > import_cell(b.d, 'subtotal')::numeric
                          then 'cannot exceed the subtotal' end)),
           (11, 'status',
            case when import_cell(b.d, 'status') is not null and upper(import_cell(b.d, 'status')) not in ('DRAFT', 'ISSUED')
                 then 'a new invoice is DRAFT or ISSUED' end),
           (12, 'notes', import_problem_text(import_cell(b.d, 'notes'), false, 2000))
         ) v(i, f, p)
        where v.p is not null
        order by v.i limit 1)
   where b.err_field is null;
end
$$;

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

create or replace function import_validate_payments(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
begin
  update pg_temp.import_batch b
     set (err_field, err_msg) = (
       select v.f, v.f || ': ' || v.p
         from (select 1) as one
         left join lateral (
           select x.invoice_id from invoices x
            where import_cell(b.d, 'invoice_no') is not null
              and x.tenant_id = v_tenant and x.invoice_no = import_cell(b.d, 'invoice_no')
           union all
           select x.invoice_id from invoices x
            where import_cell(b.d, 'invoice_no') is null
              and x.tenant_id = v_tenant and x.external_ref = import_cell(b.d, 'invoice_ref')) inv on true
         cross join lateral (values
           (1, 'invoice_no',
            case when import_cell(b.d, 'invoice_no') is null then
                   case when import_cell(b.d, 'invoice_ref') is null then 'is required (or invoice_ref)' end
                 when import_cell(b.d, 'invoice_ref') is not null then 'send either invoice_no or invoice_ref, not both'
                 when inv.invoice_id is null then format('invoice %s not found', import_cell(b.d, 'invoice_no')) end),
           (2, 'invoice_ref',
            case when import_cell(b.d, 'invoice_ref') is not null and import_cell(b.d, 'invoice_no') is null
                      and inv.invoice_id is null
                 then format('no invoice was imported with external_ref %s', import_cell(b.d, 'invoice_ref')) end),
           (3, 'reference',
            coalesce(import_problem_text(import_cell(b.d, 'reference'), true, 200),
                     case when import_cell(b.d, 'reference') ~ '[[:cntrl:]]' then 'must not contain control characters' end)),
           (4, 'amount',
            coalesce(import_problem_number(import_cell(b.d, 'amount'), true, 2),
                     case when import_cell(b.d, 'amount')::numeric <= 0 then 'must be greater than 0' end)),
           (5, 'paid_on',
            coalesce(import_problem_date(import_cell(b.d, 'paid_on'), false),
                     case when import_date(import_cell(b.d, 'paid_on')) > v_today
                          then format('%s is in the future', import_cell(b.d, 'paid_on')) end)),
           (6, 'method',
            case when import_cell(b.d, 'method') is not null and lower(import_cell(b.d, 'method'))
                      not in ('bank_transfer', 'virtual_account', 'cash', 'giro', 'card', 'e_wallet', 'other')
                 then 'must be one of bank_transfer, virtual_account, cash, giro, card, e_wallet, other' end),
           (7, 'notes', import_problem_text(import_cell(b.d, 'notes'), false, 2000))
         ) v(i, f, p)
        where v.p is not null
        order by v.i limit 1)
   where b.err_field is null;
end
$$;

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
                            p.amount, o.total - o.amount_paid - (o.running - p.amount), o.invoice_no)
      from (select distinct on (r.invoice_id) r.row_no, r.running, i.total, i.amount_paid, i.invoice_no
              from (select q.row_no, q.invoice_id,
                           sum(q.amount) over (partition by q.invoice_id order by q.row_no) as running
                      from pg_temp.import_payment q
                     where q.fresh and q.err_field is null) r
              join invoices i on i.tenant_id = v_tenant and i.invoice_id = r.invoice_id
             where r.running > i.total - i.amount_paid
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

create or replace function import_validate_kpi_entries(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_today date := tenant_today(v_tenant);
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_team uuid[] := my_team_ids();
begin
  update pg_temp.import_batch b
     set (err_field, err_msg) = (
       select v.f, v.f || ': ' || v.p
         from (select 1) as one
         left join lateral (select k.metric_key, k.source, k.active, k.unit from kpi_metric_definitions k
                             where k.tenant_id = v_tenant and k.metric_key = import_cell(b.d, 'metric_key')) m on true
         left join lateral (select p.user_id from profiles p
                             where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'assignee_email'))
                               and p.active) a on true
         cross join lateral (values
           (1, 'metric_key',
            case when import_cell(b.d, 'metric_key') is null then 'is required'
                 when m.metric_key is null then format('no metric %s in this tenant', import_cell(b.d, 'metric_key'))
                 when m.source = 'AUTO' then format('%s is computed automatically from the data; it takes no entries', m.metric_key)
                 when not m.active then format('%s is inactive', m.metric_key) end),
           (2, 'value',
            coalesce(import_problem_number(import_cell(b.d, 'value'), true, 4),
                     case when m.unit in ('count', 'IDR', 'minutes', 'days') and import_cell(b.d, 'value')::numeric < 0
                          then format('a %s cannot be negative', m.unit) end)),
           (3, 'entry_date',
            coalesce(import_problem_date(import_cell(b.d, 'entry_date'), true),
                     case when import_date(import_cell(b.d, 'entry_date')) > v_today
                          then format('%s is in the future; actuals are entered for days that happened', import_cell(b.d, 'entry_date')) end)),
           (4, 'assignee_email',
            case when import_cell(b.d, 'assignee_email') is null then null
                 when a.user_id is null then format('no active user with e-mail %s in the tenant', import_cell(b.d, 'assignee_email'))
                 when a.user_id <> v_uid and not (v_role = 'super_admin'
                        or (v_role in ('marketing_manager', 'sales_manager') and a.user_id = any (v_team)))
                 then 'you enter actuals for yourself (managers also for their team)' end),
           (5, 'notes', import_problem_text(import_cell(b.d, 'notes'), false, 2000))
         ) v(i, f, p)
        where v.p is not null
        order by v.i limit 1)
   where b.err_field is null;
end
$$;

-- CREATE OR REPLACE drops a function's SET clauses: pin the replaced
-- functions' search paths again (they were pinned before).
select pin_search_path(f::regprocedure) from unnest(array[
  'payments_check_outstanding()',
  'create_collection_ticket(uuid)',
  'business_time_zone(uuid)',
  'business_intervals(uuid, date, date)',
  'import_validate_invoices(uuid)',
  'import_apply_invoices(uuid, uuid, integer)',
  'import_validate_payments(uuid)',
  'import_apply_payments(uuid, uuid, integer)',
  'import_validate_kpi_entries(uuid)'
]) f;
