-- Receivables (AR-1, AR-2; seed 004 §4D): invoices, payments, outstanding,
-- overdue, aging buckets, rolling DSO, collection tickets.
--
-- Depends on V1 (tenants, profiles, stamp_timestamps), V2 (has_permission,
-- require_permission, pin_search_path, my_team_ids), V3 (customers,
-- owns_customer) and V4 (tickets, ticket_create).
--
-- Money is numeric(18,2) in the invoice's currency (default IDR).
--
-- VAT (PPN) rule: tax is stored exactly as the finance user sends it
-- (validated >= 0 and <= subtotal); the database does not recompute it,
-- because the rate depends on the goods. The rule in force since 1 Jan 2025
-- (PMK 131/2024): PPN is 12% of the tax base (DPP); for non-luxury goods and
-- services the DPP is 11/12 of the price, so the tax is effectively 11% of
-- the price; for luxury goods (PPnBM items) the DPP is the full price, i.e.
-- 12%. ppn_amount(price, luxury) below computes that figure for clients and
-- for the SOP pre-check (AI-2); invoices do not enforce it.

-- PPN of a price (see the rule above): 12% of DPP; DPP = 11/12 of the price
-- for non-luxury goods (effectively 11%), the full price for luxury goods.
create function ppn_amount(price numeric, luxury boolean default false) returns numeric
language sql immutable strict
set search_path = pg_catalog, pg_temp
as $$
  select case when luxury then round(price * 0.12, 2)
              else round(price * 11 / 12 * 0.12, 2) end
$$;
comment on function ppn_amount(numeric, boolean) is
  'PPN since 2025: 12% x DPP; DPP = 11/12 x price for non-luxury goods (effective 11%), = price for luxury goods (12%).';
grant execute on function ppn_amount(numeric, boolean) to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Business numbers and lifecycle (global catalogues of the extension; the
-- same rows serve every tenant schema, hence ON CONFLICT DO NOTHING).
-- ---------------------------------------------------------------------------

insert into bizos.id_kinds (kind, prefix, mode) values
  ('invoice', 'INV', 'gapless'),
  ('payment', 'PAY', 'sequence')
on conflict (kind) do nothing;

-- DRAFT -> ISSUED -> PAID (set by the payments trigger, never by hand);
-- DRAFT or ISSUED (without payments) -> VOID. PAID and VOID are final.
insert into bizos.transitions (entity, from_status, to_status) values
  ('invoice', null, 'DRAFT'),
  ('invoice', null, 'ISSUED'),
  ('invoice', 'DRAFT', 'ISSUED'),
  ('invoice', 'DRAFT', 'VOID'),
  ('invoice', 'ISSUED', 'PAID'),
  ('invoice', 'ISSUED', 'VOID')
on conflict do nothing;

-- ---------------------------------------------------------------------------
-- invoices
-- ---------------------------------------------------------------------------

create table invoices (
  tenant_id            uuid          not null,
  invoice_id           uuid          not null default gen_random_uuid(),
  invoice_no           text,
  customer_id          uuid          not null,
  issue_date           date          not null default current_date,
  due_date             date          not null,
  currency             text          not null default 'IDR',
  subtotal             numeric(18,2) not null,
  tax                  numeric(18,2) not null default 0,
  total                numeric(18,2) generated always as (subtotal + tax) stored,
  amount_paid          numeric(18,2) not null default 0,
  status               text          not null default 'ISSUED',
  notes                text,
  collection_ticket_id uuid,
  issued_at            timestamptz,
  paid_at              timestamptz,
  voided_at            timestamptz,
  created_by           uuid          default bizos.uid(),
  created_at           timestamptz   not null default now(),
  updated_at           timestamptz   not null default now(),
  constraint invoices_pkey primary key (tenant_id, invoice_id),
  constraint invoices_invoice_no_key unique (tenant_id, invoice_no),
  constraint invoices_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint invoices_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id),
  constraint invoices_collection_ticket_id_fkey foreign key (tenant_id, collection_ticket_id)
    references tickets (tenant_id, ticket_id) on delete set null (collection_ticket_id),
  constraint invoices_due_date_check check (due_date >= issue_date),
  constraint invoices_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint invoices_subtotal_check check (subtotal > 0),
  constraint invoices_tax_check check (tax >= 0 and tax <= subtotal),
  constraint invoices_amount_paid_check check (amount_paid >= 0 and amount_paid <= subtotal + tax),
  constraint invoices_status_check check (status in ('DRAFT', 'ISSUED', 'PAID', 'VOID')),
  constraint invoices_notes_check check (length(notes) <= 2000)
);
comment on table invoices is 'Customer invoices (AR-1). Numbers are gapless per tenant and year; PAID is set by payments.';
comment on column invoices.tax is 'PPN as given by finance (see ppn_amount()); not recomputed by the database.';
comment on column invoices.amount_paid is 'Sum of the payments of the invoice, maintained by triggers; never written by clients.';
comment on column invoices.collection_ticket_id is 'The latest collection ticket (general_request to FIN) created for this invoice.';

create index invoices_tenant_id_customer_id_idx on invoices (tenant_id, customer_id);
create index invoices_tenant_id_issue_date_idx on invoices (tenant_id, issue_date);
create index invoices_open_due_date_idx on invoices (tenant_id, due_date) where status = 'ISSUED';

create trigger invoices_assign_invoice_no
  before insert or update on invoices
  for each row execute function bizos.assign_business_id('invoice', 'invoice_no');

-- Derived state of an invoice, before the lifecycle guard runs (triggers of
-- one event fire in name order: _derive_ < _lifecycle). Runs as the owner
-- so it sees every payment whatever the caller's row visibility.
create function invoices_derive_state() returns trigger
language plpgsql security definer
as $$
begin
  if tg_op = 'INSERT' then
    new.amount_paid := 0;
    new.collection_ticket_id := null;
    new.created_by := coalesce(bizos.uid(), new.created_by);
    if new.status = 'PAID' then
      raise exception using errcode = 'P0001', column = 'status',
        message = 'status: an invoice becomes PAID when its payments cover the total';
    end if;
    return new;
  end if;

  new.created_by := old.created_by;
  new.amount_paid := coalesce((select sum(p.amount) from payments p
                                where p.tenant_id = new.tenant_id and p.invoice_id = new.invoice_id), 0);

  if old.status <> 'DRAFT' then
    if new.customer_id <> old.customer_id then
      perform raise_field('customer_id', format('invoice %s is %s; only a DRAFT can change customer', old.invoice_no, old.status));
    elsif new.issue_date <> old.issue_date then
      perform raise_field('issue_date', format('invoice %s is %s; only a DRAFT can change its dates', old.invoice_no, old.status));
    elsif new.due_date <> old.due_date then
      perform raise_field('due_date', format('invoice %s is %s; only a DRAFT can change its dates', old.invoice_no, old.status));
    elsif new.currency <> old.currency then
      perform raise_field('currency', format('invoice %s is %s; only a DRAFT can change currency', old.invoice_no, old.status));
    elsif new.subtotal <> old.subtotal then
      perform raise_field('subtotal', format('invoice %s is %s; only a DRAFT can change amounts', old.invoice_no, old.status));
    elsif new.tax <> old.tax then
      perform raise_field('tax', format('invoice %s is %s; only a DRAFT can change amounts', old.invoice_no, old.status));
    end if;
  end if;

  if new.status = 'PAID' and old.status <> 'PAID' and new.amount_paid < new.subtotal + new.tax then
    perform raise_field('status', 'an invoice becomes PAID when its payments cover the total');
  end if;
  if new.status = 'VOID' and old.status <> 'VOID' and new.amount_paid > 0 then
    perform raise_field('status', format('invoice %s has payments and cannot be voided', old.invoice_no));
  end if;
  -- Fully paid: ISSUED -> PAID (the lifecycle guard stamps paid_at).
  if new.status = 'ISSUED' and new.amount_paid = new.subtotal + new.tax then
    new.status := 'PAID';
  end if;
  return new;
end
$$;
select pin_search_path('invoices_derive_state()');
revoke execute on function invoices_derive_state() from public;

create trigger invoices_derive_state
  before insert or update on invoices
  for each row execute function invoices_derive_state();

create trigger invoices_lifecycle
  before insert or update on invoices
  for each row execute function bizos.lifecycle_guard('invoice', 'status', 'DRAFT=', 'VOID=voided_at');

create trigger invoices_stamp_timestamps
  before insert or update on invoices
  for each row execute function stamp_timestamps();

select bizos.enable_audit('invoices');

alter table invoices enable row level security;

-- Finance, super admins and directors see every invoice of the tenant;
-- sales roles only those of customers their team owns; others none.
create policy "finance and directors read all invoices, sales their customers'"
  on invoices for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'director', 'finance')
              or ((select bizos.app_role()) in ('sales_manager', 'salesperson')
                  and owns_customer(customer_id))));

create policy "finance and super admins create invoices"
  on invoices for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.create')));

create policy "finance and super admins edit invoices"
  on invoices for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.create')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.create')));

create policy "holders of invoice.delete delete draft invoices"
  on invoices for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.delete'))
         and status = 'DRAFT');

grant select, delete on invoices to bizos_authenticated;
grant insert (tenant_id, invoice_id, customer_id, issue_date, due_date, currency, subtotal, tax, status, notes)
  on invoices to bizos_authenticated;
grant update (customer_id, issue_date, due_date, currency, subtotal, tax, status, notes)
  on invoices to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- payments (append-only for clients: a correction is a matter for the owner)
-- ---------------------------------------------------------------------------

create table payments (
  tenant_id  uuid          not null,
  payment_id uuid          not null default gen_random_uuid(),
  payment_no text,
  invoice_id uuid          not null,
  paid_on    date          not null default current_date,
  amount     numeric(18,2) not null,
  method     text          not null default 'bank_transfer',
  reference  text,
  notes      text,
  created_by uuid          default bizos.uid(),
  created_at timestamptz   not null default now(),
  updated_at timestamptz   not null default now(),
  constraint payments_pkey primary key (tenant_id, payment_id),
  constraint payments_payment_no_key unique (tenant_id, payment_no),
  constraint payments_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint payments_invoice_id_fkey foreign key (tenant_id, invoice_id)
    references invoices (tenant_id, invoice_id),
  constraint payments_amount_check check (amount > 0),
  constraint payments_method_check check (method in (
    'bank_transfer', 'virtual_account', 'cash', 'giro', 'card', 'e_wallet', 'other')),
  constraint payments_reference_check check (length(reference) between 1 and 200),
  constraint payments_notes_check check (length(notes) <= 2000)
);
comment on table payments is 'Payments received against invoices (AR-1); the sum never exceeds the invoice total.';

-- One bank reference is one payment: a retried record with the same
-- reference is recognised instead of counted twice.
create unique index payments_invoice_id_reference_key on payments (tenant_id, invoice_id, reference)
  where reference is not null;
create index payments_tenant_id_paid_on_idx on payments (tenant_id, paid_on);

create trigger payments_assign_payment_no
  before insert or update on payments
  for each row execute function bizos.assign_business_id('payment', 'payment_no');

-- A payment must fit the outstanding amount of an ISSUED invoice. The
-- invoice row is locked first, so concurrent payments of one invoice queue
-- here and each sees the others' committed amounts (READ COMMITTED: every
-- statement takes a new snapshot). Under REPEATABLE READ the invoice update
-- of the AFTER trigger fails with 40001 instead (retry), and the invoice's
-- amount_paid check is the last line of defence either way.
create function payments_check_outstanding() returns trigger
language plpgsql security definer
as $$
declare
  inv record;
  paid numeric;
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
select pin_search_path('payments_check_outstanding()');
revoke execute on function payments_check_outstanding() from public;

create trigger payments_check_outstanding
  before insert or update on payments
  for each row execute function payments_check_outstanding();

-- Keeps invoices.amount_paid (and thereby PAID) in step with the payments.
create function payments_sync_invoice() returns trigger
language plpgsql security definer
as $$
declare
  r record;
begin
  for r in
    select distinct x.tenant_id, x.invoice_id
      from (select new.tenant_id, new.invoice_id where tg_op <> 'DELETE'
            union all
            select old.tenant_id, old.invoice_id where tg_op <> 'INSERT') x
  loop
    update invoices i
       set amount_paid = coalesce((select sum(p.amount) from payments p
                                    where p.tenant_id = r.tenant_id and p.invoice_id = r.invoice_id), 0)
     where i.tenant_id = r.tenant_id and i.invoice_id = r.invoice_id;
  end loop;
  return null;
end
$$;
select pin_search_path('payments_sync_invoice()');
revoke execute on function payments_sync_invoice() from public;

create trigger payments_sync_invoice
  after insert or update or delete on payments
  for each row execute function payments_sync_invoice();

create trigger payments_stamp_timestamps
  before insert or update on payments
  for each row execute function stamp_timestamps();

select bizos.enable_audit('payments');

alter table payments enable row level security;

-- A payment is visible exactly when its invoice is (the subquery runs under
-- the invoices policy of the caller).
create policy "callers read payments of the invoices they can read"
  on payments for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from invoices i
                      where i.tenant_id = payments.tenant_id and i.invoice_id = payments.invoice_id));

create policy "finance and super admins record payments"
  on payments for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('payment.record')));

grant select on payments to bizos_authenticated;
grant insert (tenant_id, payment_id, invoice_id, paid_on, amount, method, reference, notes)
  on payments to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Reporting views (security invoker: the caller's RLS applies)
-- ---------------------------------------------------------------------------

-- One row per ISSUED or PAID invoice (drafts and voids are not receivables),
-- as of current_date in the session time zone.
--   outstanding   = total - amount_paid
--   days_past_due = current_date - due_date when outstanding > 0 and past due, else 0
--   is_overdue    = outstanding > 0 and current_date > due_date
--   aging_bucket  = 'current' (not past due) | '1-30' | '31-60' | '61-90' | '>90'
create view v_invoice_outstanding with (security_invoker = true) as
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
       i.amount_paid as paid,
       i.total - i.amount_paid as outstanding,
       case when i.total > i.amount_paid and current_date > i.due_date
            then current_date - i.due_date else 0 end as days_past_due,
       (i.total > i.amount_paid and current_date > i.due_date) as is_overdue,
       case when i.total = i.amount_paid then null
            when current_date <= i.due_date then 'current'
            when current_date - i.due_date <= 30 then '1-30'
            when current_date - i.due_date <= 60 then '31-60'
            when current_date - i.due_date <= 90 then '61-90'
            else '>90' end as aging_bucket,
       i.collection_ticket_id
  from invoices i
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id
 where i.status in ('ISSUED', 'PAID');
comment on view v_invoice_outstanding is
  'Per issued/paid invoice: total, paid, outstanding, days_past_due, is_overdue, aging bucket, as of current_date.';

-- Outstanding amounts by days past due, per customer and currency, plus a
-- total row per currency (is_total, customer_id NULL). Amounts of one row
-- add up: current + d1_30 + d31_60 + d61_90 + d90_plus = outstanding.
create view v_ar_aging with (security_invoker = true) as
select o.tenant_id,
       o.customer_id,
       max(o.company_name) as company_name,
       o.currency,
       grouping(o.customer_id) = 1 as is_total,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = 'current'), 0) as current,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '1-30'), 0)    as d1_30,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '31-60'), 0)   as d31_60,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '61-90'), 0)   as d61_90,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '>90'), 0)     as d90_plus,
       coalesce(sum(o.outstanding), 0) as outstanding,
       coalesce(sum(o.outstanding) filter (where o.is_overdue), 0) as overdue,
       count(*) filter (where o.outstanding > 0) as open_invoices
  from v_invoice_outstanding o
 where o.outstanding > 0
 group by grouping sets ((o.tenant_id, o.currency, o.customer_id), (o.tenant_id, o.currency));
comment on view v_ar_aging is
  'AR aging per customer and currency (and totals: is_total): current, 1-30, 31-60, 61-90, >90 days past due.';

-- Rolling 30-day DSO per tenant and currency for each of the last 90 days
-- (day = current_date - 89 .. current_date):
--
--   ar_outstanding(d) = sum(total of ISSUED/PAID invoices with issue_date <= d)
--                     - sum(their payments with paid_on <= d)
--   credit_sales_30d(d) = sum(total of ISSUED/PAID invoices with issue_date in [d-29, d])
--   dso_days(d)       = ar_outstanding(d) / credit_sales_30d(d) * 30, rounded to 0.1 day
--
-- When the credit sales of the window are 0, dso_days is NULL (undefined,
-- never an invented number). Voided invoices count as never issued; amounts
-- are per currency (no conversion).
create view v_dso_rolling_30 with (security_invoker = true) as
with inv as (
  select i.tenant_id, i.invoice_id, i.currency, i.issue_date, i.total
    from invoices i
   where i.status in ('ISSUED', 'PAID')
),
keys as (
  select distinct tenant_id, currency from inv
),
days as (
  select g::date as day
    from generate_series(current_date - 89, current_date, interval '1 day') g
)
select k.tenant_id,
       k.currency,
       d.day,
       ar.amount as ar_outstanding,
       sales.amount as credit_sales_30d,
       case when sales.amount > 0 then round(ar.amount / sales.amount * 30, 1) end as dso_days
  from keys k
 cross join days d
 cross join lateral (
   select coalesce((select sum(v.total) from inv v
                     where v.tenant_id = k.tenant_id and v.currency = k.currency and v.issue_date <= d.day), 0)
        - coalesce((select sum(p.amount) from payments p
                      join inv v on v.tenant_id = p.tenant_id and v.invoice_id = p.invoice_id
                     where v.tenant_id = k.tenant_id and v.currency = k.currency
                       and v.issue_date <= d.day and p.paid_on <= d.day), 0) as amount
 ) ar
 cross join lateral (
   select coalesce(sum(v.total), 0) as amount
     from inv v
    where v.tenant_id = k.tenant_id and v.currency = k.currency
      and v.issue_date between d.day - 29 and d.day
 ) sales;
comment on view v_dso_rolling_30 is
  'DSO(d) = AR outstanding at the end of d / credit sales of d-29..d x 30, last 90 days; NULL when those sales are 0.';

grant select on v_invoice_outstanding, v_ar_aging, v_dso_rolling_30 to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- RPCs
-- ---------------------------------------------------------------------------

-- invoice_create({customer_id, subtotal, tax, issue_date?, due_date? |
--   terms_days?, currency?, status?: DRAFT|ISSUED, notes?})
--   -> {invoice_id, invoice_no, status, total, due_date}
-- Defaults: issue_date today, due_date issue_date + terms_days (30),
-- currency IDR, status ISSUED.
create function invoice_create(payload jsonb) returns jsonb
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
  perform payload_check_keys(payload, array['customer_id', 'issue_date', 'due_date', 'terms_days',
                                            'currency', 'subtotal', 'tax', 'status', 'notes']);
  v_customer := payload_uuid(payload, 'customer_id', true);
  if not exists (select 1 from customers c
                  where c.tenant_id = (select bizos.tenant_id()) and c.customer_id = v_customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: customer not found';
  end if;
  v_issue := coalesce(payload_date(payload, 'issue_date'), current_date);
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
grant execute on function invoice_create(jsonb) to bizos_authenticated;

-- payment_record({invoice_id | invoice_no, amount, paid_on?, method?, reference?, notes?})
--   -> {payment_id, payment_no, invoice_id, outstanding, invoice_status, replayed}
-- Locks the invoice, so concurrent payments of one invoice are serialised.
-- A retry with the same reference, amount and date returns the recorded
-- payment (replayed = true); the same reference with other values is 23505.
create function payment_record(payload jsonb) returns jsonb
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
begin
  perform require_permission('payment.record');
  perform payload_check_keys(payload, array['invoice_id', 'invoice_no', 'amount', 'paid_on',
                                            'method', 'reference', 'notes']);
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
  v_paid_on := coalesce(payload_date(payload, 'paid_on'), current_date);
  if v_paid_on > current_date then
    perform raise_field('paid_on', format('%s is in the future', v_paid_on));
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
grant execute on function payment_record(jsonb) to bizos_authenticated;

-- create_collection_ticket(invoice_id) -> {ticket_id, ticket_no, invoice_id, created}
-- For an overdue invoice the caller can read (finance, super admin, or a
-- sales role owning the customer) and holding collection.create: a
-- general_request ticket to FIN about the customer, through ticket_create.
-- Idempotent: while the linked ticket is open, calls return it (created =
-- false); the invoice row lock serialises concurrent calls.
--
-- SECURITY DEFINER because sales roles may not update invoices: it checks
-- tenant, permission and row visibility itself, then records the link.
create function create_collection_ticket(invoice_id uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_role text := bizos.app_role();
  inv record;
  t record;
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
  if inv.status <> 'ISSUED' or inv.outstanding <= 0 or current_date <= inv.due_date then
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
    'subject', format('Collection: invoice %s overdue %s days', inv.invoice_no, current_date - inv.due_date),
    'description', format('Invoice %s is %s days past due (due %s); outstanding %s %s.',
                          inv.invoice_no, current_date - inv.due_date, inv.due_date, inv.currency, inv.outstanding)));
  v_ticket := (created ->> 'ticket_id')::uuid;

  update invoices i set collection_ticket_id = v_ticket
   where i.tenant_id = v_tenant and i.invoice_id = inv.invoice_id;

  return jsonb_build_object('ticket_id', v_ticket, 'ticket_no', created ->> 'ticket_no',
                            'invoice_id', inv.invoice_id, 'created', true);
end
$$;
select pin_search_path('create_collection_ticket(uuid)');
revoke execute on function create_collection_ticket(uuid) from public;
grant execute on function create_collection_ticket(uuid) to bizos_authenticated;
