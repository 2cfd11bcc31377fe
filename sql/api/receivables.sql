-- Receivables (AR-1, AR-2): invoices, payments, the receivables ledger,
-- outstanding, aging, rolling DSO and collection tickets.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

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
create or replace function ppn_amount(price numeric, luxury boolean default false) returns numeric
language sql immutable strict
set search_path = pg_catalog, pg_temp
as $$
  select case when luxury then round(price * 0.12, 2)
              else round(price * 11 / 12 * 0.12, 2) end
$$;
comment on function ppn_amount(numeric, boolean) is
  'PPN since 2025: 12% x DPP; DPP = 11/12 x price for non-luxury goods (effective 11%), = price for luxury goods (12%).';
grant execute on function ppn_amount(numeric, boolean) to bizos_authenticated;

-- Derived state of an invoice, before the lifecycle guard runs (triggers of
-- one event fire in name order: _derive_ < _lifecycle). Runs as the owner
-- so it sees every payment whatever the caller's row visibility.
create or replace function invoices_derive_state() returns trigger
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
    -- customer_merge moves the invoices of a duplicate customer (the same
    -- legal entity) to the one that survives, once it recorded the merge.
    if new.customer_id <> old.customer_id
       and not exists (select 1 from customer_merges m
                        where m.tenant_id = new.tenant_id and m.merged_customer_id = old.customer_id
                          and m.customer_id = new.customer_id) then
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

-- Keeps invoices.amount_paid (and thereby PAID) in step with the payments.
create or replace function payments_sync_invoice() returns trigger
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

-- AR as of a date d (the tenant's calendar) is the sum of the receivables
-- ledger up to and including d:
--
--   v_ar_ledger   one line per ISSUED or PAID invoice (+ total, on its
--                 issue date) and one per payment of such an invoice
--                 (- amount, on the day it was paid). DRAFT and VOID
--                 invoices are not receivables (a voided invoice counts
--                 as never issued; it cannot have payments).
--   AR(d)         = sum(amount) of the lines with entry_date <= d
--   outstanding of an invoice on d = the same sum over its own lines;
--                 it is a receivable on d when it was issued on or before d
--   credit sales of d-29..d = sum of the invoice lines in that window
--
-- Every report derives from it, so they cannot drift:
-- v_invoice_outstanding (as of the tenant's today) -> v_ar_aging,
-- v_invoices and create_collection_ticket's "overdue"; v_dso_rolling_30
-- (as of each of the last 90 days); the KPI module's kpi_ar_open_at.
--
-- An invoice dated in the future (allowed: invoices are prepared ahead of
-- their date, and a tenant moving its time zone west turns today's
-- invoices into tomorrow's) is not a receivable before its issue date: not
-- in outstanding, aging or DSO's AR, not "current". Payments are never
-- dated before the invoice's issue date nor after the tenant's today
-- (payments_check_outstanding), so such an invoice takes no payment before
-- its date either.
--
-- One line per ISSUED or PAID invoice (its total, on its issue date;
-- payment_id NULL) and one per payment of such an invoice (minus the
-- amount, on paid_on). AR as of d = sum(amount) where entry_date <= d.
-- Security invoker: the caller's RLS on invoices and payments applies.
create or replace view v_ar_ledger with (security_invoker = true) as
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
grant select on v_invoice_outstanding to bizos_authenticated;
comment on view v_invoice_outstanding is
  'Per invoice that is a receivable on the tenant''s today (v_ar_ledger up to today): total, paid, outstanding, days_past_due, is_overdue, aging bucket.';

-- Outstanding amounts by days past due, per customer and currency, plus a
-- total row per currency (is_total, customer_id NULL). Amounts of one row
-- add up: current + d1_30 + d31_60 + d61_90 + d90_plus = outstanding.
--
-- The two levels are one GROUP BY over each row twice (level false: per
-- customer, true: the total), not GROUPING SETS: PostgreSQL pushes a
-- caller's `tenant_id = $1` into a GROUP BY of tenant_id but not into
-- grouping sets, and on Citus only a query whose every scan is filtered
-- by the tenant is sent to the tenant's worker (as grouping sets it went
-- to every shard, and was refused there).
create or replace view v_ar_aging with (security_invoker = true) as
select o.tenant_id,
       case when lvl.is_total then null else o.customer_id end as customer_id,
       max(o.company_name) filter (where not lvl.is_total) as company_name,
       o.currency,
       lvl.is_total,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = 'current'), 0) as current,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '1-30'), 0)    as d1_30,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '31-60'), 0)   as d31_60,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '61-90'), 0)   as d61_90,
       coalesce(sum(o.outstanding) filter (where o.aging_bucket = '>90'), 0)     as d90_plus,
       coalesce(sum(o.outstanding), 0) as outstanding,
       coalesce(sum(o.outstanding) filter (where o.is_overdue), 0) as overdue,
       count(*) filter (where o.outstanding > 0) as open_invoices
  from v_invoice_outstanding o
 cross join (values (false), (true)) lvl(is_total)
 where o.outstanding > 0
 group by o.tenant_id, o.currency, lvl.is_total, case when lvl.is_total then null else o.customer_id end;
grant select on v_ar_aging to bizos_authenticated;
comment on view v_ar_aging is
  'AR aging per customer and currency (and totals: is_total) on the tenant''s today: current, 1-30, 31-60, 61-90, >90 days past due (from v_invoice_outstanding).';

create or replace function invoices_default_issue_date() returns trigger
language plpgsql
as $$
begin
  new.issue_date := coalesce(new.issue_date, tenant_today(new.tenant_id));
  return new;
end
$$;
select pin_search_path('invoices_default_issue_date()');
revoke execute on function invoices_default_issue_date() from public;

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
--
-- The ledger is summed per day, the lines dated before the first day's
-- sales window (today - 118) onto the day before it (today - 119): they
-- count in every day's AR and in no day's sales. Over the 120 days from
-- that one to today (every day one row per currency), AR is the running
-- sum and the credit sales the sum of the last 30 rows; the first 30 days
-- only feed the windows. One pass over the ledger instead of two
-- aggregates per day in lateral subqueries, which Citus also refuses when
-- they read a column of a reference table (the days come from `tenants`'
-- time zone). A caller's `tenant_id = $1` reaches every scan (it is a
-- PARTITION BY column), so on Citus the query goes to the tenant's worker.
create or replace view v_dso_rolling_30 with (security_invoker = true) as
select w.tenant_id,
       w.currency,
       w.day,
       w.ar_outstanding,
       w.credit_sales_30d,
       case when w.credit_sales_30d > 0 then round(w.ar_outstanding / w.credit_sales_30d * 30, 1) end as dso_days
  from (select d.tenant_id, d.currency, d.day, d.today,
               sum(coalesce(s.amount, 0)) over (by_day rows between unbounded preceding and current row)
                 as ar_outstanding,
               sum(coalesce(s.sales, 0)) over (by_day rows between 29 preceding and current row)
                 as credit_sales_30d
          from (select k.tenant_id, k.currency, t.today, t.today - 119 + g as day
                  from (select distinct l.tenant_id, l.currency from v_ar_ledger l) k
                  join v_tenant_today t on t.tenant_id = k.tenant_id
                 cross join generate_series(0, 119) g) d
          left join (select l.tenant_id, l.currency,
                            greatest(l.entry_date, t.today - 119) as entry_date,
                            sum(l.amount) as amount,
                            sum(l.amount) filter (where l.payment_id is null) as sales
                       from v_ar_ledger l
                       join v_tenant_today t on t.tenant_id = l.tenant_id
                      group by l.tenant_id, l.currency, greatest(l.entry_date, t.today - 119)) s
            on s.tenant_id = d.tenant_id and s.currency = d.currency and s.entry_date = d.day
        window by_day as (partition by d.tenant_id, d.currency order by d.day)) w
 where w.day > w.today - 90;
grant select on v_dso_rolling_30 to bizos_authenticated;
comment on view v_dso_rolling_30 is
  'DSO(d) = AR as of d (v_ar_ledger) / credit sales of d-29..d x 30, for the tenant''s last 90 days; NULL when those sales are 0.';

-- GET /api/invoices: every invoice in the caller's scope (drafts, voids and
-- invoices dated in the future too); outstanding, days past due and bucket
-- as v_invoice_outstanding says (0 / not overdue when the invoice is not a
-- receivable today).
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
grant select on v_invoices to bizos_authenticated;
comment on view v_invoices is
  'Invoices in the caller''s scope with outstanding amount, days past due and aging bucket on the tenant''s today (v_invoice_outstanding).';

-- A payment must fit the outstanding amount of an ISSUED invoice. The
-- invoice row is locked first, so concurrent payments of one invoice queue
-- here and each sees the others' committed amounts (READ COMMITTED: every
-- statement takes a new snapshot). Under REPEATABLE READ the invoice update
-- of the AFTER trigger fails with 40001 instead (retry), and the invoice's
-- amount_paid check is the last line of defence either way.
-- paid_on defaults to the tenant's today and may not be after it (for
-- every writer: RPC, import, the owner).
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
revoke execute on function payments_check_outstanding() from public;
select pin_search_path('payments_check_outstanding()');

-- invoice_create({customer_id, subtotal, tax, issue_date?, due_date? |
--   terms_days?, currency?, status?: DRAFT|ISSUED, notes?, total?, b2b?,
--   luxury?, lines?: [{description, quantity, unit_price, discount_pct?,
--   luxury?, amount?}]})
--   -> {invoice_id, invoice_no, status, subtotal, tax, total, due_date, warnings}
-- Defaults: issue_date the tenant's today, due_date issue_date + terms_days
-- (the customer's payment terms, else 30), currency IDR, status ISSUED. A
-- future issue date is allowed (see v_ar_ledger); such an invoice is a
-- receivable from its date.
-- With lines, subtotal and tax may be left out: the subtotal is the sum of
-- the lines, the tax the PPN the rules expect (precheck.sql); the lines are
-- stored with the invoice, in this transaction.
-- The tenant's SOP rules (sop_evaluate_invoice, the same as
-- precheck_invoice) judge the draft first: any reason of a block rule
-- refuses it with P0001, the first block reason as the message (naming its
-- field, also in COLUMN) and every reason as JSON in DETAIL
-- ({"reasons": [...]}: the BFF answers 422 with them in error.reasons);
-- warn reasons are returned as `warnings`.
create or replace function invoice_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  d jsonb;
  v_check jsonb;
  v_block jsonb;
  v_first jsonb;
  v_subtotal numeric;
  v_tax numeric;
  r invoices;
  v_line jsonb;
begin
  perform require_permission('invoice.create');
  d := invoice_draft(payload, true);
  v_check := sop_evaluate_invoice(d);
  select coalesce(jsonb_agg(x), '[]'::jsonb) into v_block
    from jsonb_array_elements(v_check -> 'reasons') x where x ->> 'severity' = 'block';
  if jsonb_array_length(v_block) > 0 then
    v_first := v_block -> 0;
    raise exception using errcode = 'P0001', column = v_first ->> 'field',
      message = case when jsonb_array_length(v_block) = 1 then v_first ->> 'message'
                     else format('%s (and %s more: %s)', v_first ->> 'message', jsonb_array_length(v_block) - 1,
                                 (select string_agg(x ->> 'field', ', ') from jsonb_array_elements(v_block) x
                                   where x is distinct from v_first)) end,
      detail = jsonb_build_object('reasons', v_check -> 'reasons')::text,
      hint = 'the tenant''s SOP rules refuse this invoice (POST /api/precheck/invoice shows why)';
  end if;
  -- A rule switched off does not lift what the table requires.
  if (d ->> 'due_date')::date < (d ->> 'issue_date')::date then
    perform raise_field('due_date', format('%s is before the issue date %s', d ->> 'due_date', d ->> 'issue_date'));
  end if;
  v_subtotal := (v_check -> 'figures' ->> 'subtotal')::numeric;
  v_tax := (v_check -> 'figures' ->> 'tax')::numeric;
  if v_tax > v_subtotal then
    perform raise_field('tax', 'cannot exceed the subtotal');
  end if;

  insert into invoices (tenant_id, customer_id, issue_date, due_date, currency, subtotal, tax, status, notes, b2b, luxury)
  values (bizos.tenant_id(), (d ->> 'customer_id')::uuid, (d ->> 'issue_date')::date,
          (d ->> 'due_date')::date, d ->> 'currency', v_subtotal, v_tax, d ->> 'status', d ->> 'notes',
          (d ->> 'b2b')::boolean, (d ->> 'luxury')::boolean)
  returning * into r;

  -- A line per statement: Citus writes the rows of an INSERT ... SELECT
  -- from a set that is no table with COPY, which it refuses under RLS.
  for v_line in select e from jsonb_array_elements(d -> 'lines') e loop
    insert into invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_price, discount_pct,
                               luxury, amount)
    values (r.tenant_id, r.invoice_id, (v_line ->> 'line_no')::integer, v_line ->> 'description', (v_line ->> 'quantity')::numeric,
            (v_line ->> 'unit_price')::numeric, (v_line ->> 'discount_pct')::numeric, (v_line ->> 'luxury')::boolean,
            (v_line ->> 'computed')::numeric);
  end loop;

  return jsonb_build_object('invoice_id', r.invoice_id, 'invoice_no', r.invoice_no, 'status', r.status,
                            'subtotal', r.subtotal, 'tax', r.tax, 'total', r.total, 'due_date', r.due_date,
                            'warnings', coalesce((select jsonb_agg(x) from jsonb_array_elements(v_check -> 'reasons') x
                                                   where x ->> 'severity' <> 'block'), '[]'::jsonb));
end
$$;
grant execute on function invoice_create(jsonb) to bizos_authenticated;

-- payment_record({invoice_id | invoice_no, amount, paid_on?, method?, reference?, notes?})
--   -> {payment_id, payment_no, invoice_id, outstanding, invoice_status, replayed}
-- Locks the invoice, so concurrent payments of one invoice are serialised.
-- A retry with the same reference, amount and date returns the recorded
-- payment (replayed = true); the same reference with other values is 23505.
-- paid_on defaults to, and may not be after, the tenant's
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
  v_tenant uuid := bizos.tenant_id();
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
  v_method := vocabulary_check('payment_methods',
                               lower(coalesce(payload_text(payload, 'method', false, 40), 'bank_transfer')), 'method');
  v_reference := payload_text(payload, 'reference', false, 200);
  v_notes := payload_text(payload, 'notes', false, 2000);

  -- The tenant as a variable, a parameter of the statement: Citus locks a
  -- row only in a query it can route by its parameters.
  select * into inv from invoices i
   where i.tenant_id = v_tenant
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
-- Overdue as v_invoice_outstanding says, on the tenant's today.
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
revoke execute on function create_collection_ticket(uuid) from public;
grant execute on function create_collection_ticket(uuid) to bizos_authenticated;
select pin_search_path('create_collection_ticket(uuid)');

-- invoice_issue(invoice_id) -> the invoice (a row of v_invoices)
-- POST /api/invoices/{id}/issue: DRAFT -> ISSUED (the lifecycle stamps
-- issued_at); from then on it is a receivable from its issue date. Only a
-- DRAFT is issued (a second call is refused naming `status`).
create or replace function invoice_issue(invoice_id uuid) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  inv invoices;
begin
  perform require_permission('invoice.create');
  select * into inv from invoices i
   where i.tenant_id = v_tenant and i.invoice_id = invoice_issue.invoice_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'invoice_id',
      message = format('invoice_id: no invoice %s', invoice_issue.invoice_id);
  end if;
  if inv.status <> 'DRAFT' then
    perform raise_field('status', format('invoice %s is %s; only a DRAFT is issued', inv.invoice_no, inv.status));
  end if;
  update invoices i set status = 'ISSUED'
   where i.tenant_id = inv.tenant_id and i.invoice_id = inv.invoice_id;
  return (select to_jsonb(v) from v_invoices v where v.tenant_id = inv.tenant_id and v.invoice_id = inv.invoice_id);
end
$$;
grant execute on function invoice_issue(uuid) to bizos_authenticated;
comment on function invoice_issue(uuid) is
  'Issues a DRAFT invoice (DRAFT -> ISSUED); returns it as v_invoices shows it.';

-- invoice_void(invoice_id) -> the invoice (a row of v_invoices)
-- POST /api/invoices/{id}/void: DRAFT or ISSUED -> VOID (the lifecycle
-- stamps voided_at); a voided invoice counts as never issued (v_ar_ledger).
-- An invoice with payments (PAID or partly paid) is never voided: refused
-- naming `amount_paid`, with what was paid.
create or replace function invoice_void(invoice_id uuid) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  inv invoices;
begin
  perform require_permission('invoice.create');
  select * into inv from invoices i
   where i.tenant_id = v_tenant and i.invoice_id = invoice_void.invoice_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'invoice_id',
      message = format('invoice_id: no invoice %s', invoice_void.invoice_id);
  end if;
  if inv.status = 'VOID' then
    perform raise_field('status', format('invoice %s is already VOID', inv.invoice_no));
  end if;
  if inv.amount_paid > 0 then
    perform raise_field('amount_paid', format('invoice %s has payments of %s %s of its %s (status %s) and cannot be voided',
                                              inv.invoice_no, inv.currency, inv.amount_paid, inv.total, inv.status));
  end if;
  update invoices i set status = 'VOID'
   where i.tenant_id = inv.tenant_id and i.invoice_id = inv.invoice_id;
  return (select to_jsonb(v) from v_invoices v where v.tenant_id = inv.tenant_id and v.invoice_id = inv.invoice_id);
end
$$;
grant execute on function invoice_void(uuid) to bizos_authenticated;
comment on function invoice_void(uuid) is
  'Voids a DRAFT or ISSUED invoice without payments (paid or partly paid: refused naming amount_paid); returns it as v_invoices shows it.';
