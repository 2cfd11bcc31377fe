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
-- so it sees every payment, refund and credit note whatever the caller's
-- row visibility.
--   amount_paid      the payments net of their refunds
--   amount_credited  the credit notes
--   PAID             (settled) when the two cover the total; a refund that
--                    re-opens the balance makes it ISSUED again (paid_at
--                    cleared, stamped again when it is settled again)
--   issued_at        when it was first issued (the lifecycle stamps no
--                    ISSUED, so a re-opened invoice keeps it)
create or replace function invoices_derive_state() returns trigger
language plpgsql security definer
as $$
begin
  if tg_op = 'INSERT' then
    new.amount_paid := 0;
    new.amount_credited := 0;
    new.collection_ticket_id := null;
    new.created_by := coalesce(bizos.uid(), new.created_by);
    if new.status = 'PAID' then
      raise exception using errcode = 'P0001', column = 'status',
        message = 'status: an invoice becomes PAID when its payments cover the total';
    end if;
    if new.status = 'ISSUED' then
      new.issued_at := now();
    end if;
    return new;
  end if;

  new.created_by := old.created_by;
  new.amount_paid := coalesce((select sum(p.amount) from payments p
                                where p.tenant_id = new.tenant_id and p.invoice_id = new.invoice_id), 0)
                     - coalesce((select sum(r.amount) from refunds r
                                  where r.tenant_id = new.tenant_id and r.invoice_id = new.invoice_id), 0);
  new.amount_credited := coalesce((select sum(c.amount) from credit_notes c
                                    where c.tenant_id = new.tenant_id and c.invoice_id = new.invoice_id), 0);

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

  if new.status = 'PAID' and old.status <> 'PAID' and new.amount_paid + new.amount_credited < new.subtotal + new.tax then
    perform raise_field('status', 'an invoice becomes PAID when its payments cover the total');
  end if;
  if new.status = 'VOID' and old.status <> 'VOID' and new.amount_paid > 0 then
    perform raise_field('status', format('invoice %s has payments and cannot be voided', old.invoice_no));
  end if;
  if new.status = 'VOID' and old.status <> 'VOID' and new.amount_credited > 0 then
    perform raise_field('status', format('invoice %s has credit notes and cannot be voided', old.invoice_no));
  end if;
  if new.status = 'ISSUED' and old.status = 'DRAFT' then
    new.issued_at := now();
  end if;
  -- Settled: ISSUED -> PAID (the lifecycle guard stamps paid_at).
  if new.status = 'ISSUED' and new.amount_paid + new.amount_credited = new.subtotal + new.tax then
    new.status := 'PAID';
  end if;
  -- A refund re-opened it: PAID -> ISSUED.
  if new.status = 'PAID' and old.status = 'PAID' and new.amount_paid + new.amount_credited < new.subtotal + new.tax then
    new.status := 'ISSUED';
    new.paid_at := null;
  end if;
  return new;
end
$$;
select pin_search_path('invoices_derive_state()');
revoke execute on function invoices_derive_state() from public;

-- Keeps invoices.amount_paid and amount_credited (and thereby PAID) in step
-- with the payments, refunds and credit notes: the update makes
-- invoices_derive_state recompute them.
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
       set amount_paid = i.amount_paid
     where i.tenant_id = r.tenant_id and i.invoice_id = r.invoice_id;
  end loop;
  return null;
end
$$;
select pin_search_path('payments_sync_invoice()');
revoke execute on function payments_sync_invoice() from public;

-- The smallest balance of an invoice on any day from `from_day` on (its
-- lines in the ledger: + total on the issue date, - payments, + refunds,
-- - credit notes, each on its date; every day up to the last line, since
-- nothing is dated after the tenant's today). A payment or credit note
-- dated `from_day` may take at most this: a smaller figure than today's
-- balance means a later payment already used what was open then, and
-- taking it again would leave the invoice below zero on those days (a
-- payment back-dated before a refund, a credit note before a payment).
create or replace function invoice_open_from(tenant uuid, invoice uuid, from_day date) returns numeric
language plpgsql stable security definer
as $$
begin
  return (
    select min(b.balance)
      from (select e.day, sum(sum(e.amount)) over (order by e.day) as balance
              from (select i.issue_date as day, i.total::numeric as amount
                      from invoices i where i.tenant_id = tenant and i.invoice_id = invoice
                    union all
                    select p.paid_on, -p.amount from payments p where p.tenant_id = tenant and p.invoice_id = invoice
                    union all
                    select r.refunded_on, r.amount from refunds r where r.tenant_id = tenant and r.invoice_id = invoice
                    union all
                    select c.issue_date, -c.amount from credit_notes c where c.tenant_id = tenant and c.invoice_id = invoice
                    union all
                    select from_day, 0) e
             group by e.day) b
     where b.day >= from_day);
end
$$;
select pin_search_path('invoice_open_from(uuid, uuid, date)');
revoke execute on function invoice_open_from(uuid, uuid, date) from public;
comment on function invoice_open_from(uuid, uuid, date) is
  'The smallest balance of an invoice (total - payments + refunds - credit notes, by their dates) on any day from a date on: what a payment or credit note of that date may take.';

-- AR as of a date d (the tenant's calendar) is the sum of the receivables
-- ledger up to and including d:
--
--   v_ar_ledger   one line per ISSUED or PAID invoice (+ total, on its
--                 issue date), one per payment of such an invoice
--                 (- amount, on the day it was paid), one per refund of
--                 such a payment (+ amount, on the day it was paid back:
--                 the customer owes it again) and one per credit note of
--                 such an invoice (- amount, on its issue date). DRAFT and
--                 VOID invoices are not receivables (a voided invoice
--                 counts as never issued; it cannot have payments or
--                 credit notes).
--   AR(d)         = sum(amount) of the lines with entry_date <= d
--   outstanding of an invoice on d = the same sum over its own lines;
--                 it is a receivable on d when it was issued on or before d
--   credit sales of d-29..d = the invoice lines less the credit-note lines
--                 in that window (net credit sales: a credit note takes
--                 back a sale; a refund does not, it returns money)
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
-- entry_kind 'invoice', payment_id NULL), one per payment of such an
-- invoice (minus the amount, on paid_on; 'payment'), one per refund
-- (plus the amount, on refunded_on; 'refund', payment_id the refunded
-- payment) and one per credit note (minus the amount, on its issue date;
-- 'credit_note'). document_id is the invoice, payment, refund or credit
-- note. AR as of d = sum(amount) where entry_date <= d.
-- Security invoker: the caller's RLS on invoices, payments, refunds and
-- credit notes applies.
create or replace view v_ar_ledger with (security_invoker = true) as
select i.tenant_id, i.invoice_id, null::uuid as payment_id, i.customer_id, i.currency,
       i.issue_date as entry_date, i.total::numeric as amount, 'invoice'::text as entry_kind,
       i.invoice_id as document_id
  from invoices i
 where i.status in ('ISSUED', 'PAID')
union all
select i.tenant_id, i.invoice_id, p.payment_id, i.customer_id, i.currency,
       p.paid_on as entry_date, -p.amount::numeric as amount, 'payment', p.payment_id
  from invoices i
  join payments p on p.tenant_id = i.tenant_id and p.invoice_id = i.invoice_id
 where i.status in ('ISSUED', 'PAID')
union all
select i.tenant_id, i.invoice_id, r.payment_id, i.customer_id, i.currency,
       r.refunded_on as entry_date, r.amount::numeric as amount, 'refund', r.refund_id
  from invoices i
  join refunds r on r.tenant_id = i.tenant_id and r.invoice_id = i.invoice_id
 where i.status in ('ISSUED', 'PAID')
union all
select i.tenant_id, i.invoice_id, null::uuid, i.customer_id, i.currency,
       c.issue_date as entry_date, -c.amount::numeric as amount, 'credit_note', c.credit_note_id
  from invoices i
  join credit_notes c on c.tenant_id = i.tenant_id and c.invoice_id = i.invoice_id
 where i.status in ('ISSUED', 'PAID');
comment on view v_ar_ledger is
  'Receivables ledger: + total of each ISSUED/PAID invoice on its issue date, - each payment on paid_on, + each refund on refunded_on, - each credit note on its issue date (entry_kind). AR as of d = sum(amount) of the lines with entry_date <= d.';
grant select on v_ar_ledger to bizos_authenticated;

-- Per invoice that is a receivable on the tenant's today (issued on or
-- before it, ISSUED or PAID): the ledger up to today.
--   paid          = payments made on or before today, net of the refunds
--   credited      = credit notes issued on or before today
--   outstanding   = total - paid - credited
--   days_past_due = today - due_date when outstanding > 0 and past due, else 0
--   is_overdue    = outstanding > 0 and today > due_date
--   aging_bucket  = 'current' (not past due) | '1-30' | '31-60' | '61-90' | '>90'; NULL when nothing is outstanding
-- v_invoices states the same arithmetic for one invoice (change both).
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
       a.paid::numeric(18,2) as paid,
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
       i.collection_ticket_id,
       a.credited::numeric(18,2) as credited
  from (select l.tenant_id, l.invoice_id, d.today, sum(l.amount) as outstanding,
               coalesce(-sum(l.amount) filter (where l.entry_kind in ('payment', 'refund')), 0) as paid,
               coalesce(-sum(l.amount) filter (where l.entry_kind = 'credit_note'), 0) as credited
          from v_ar_ledger l
          join v_tenant_today d on d.tenant_id = l.tenant_id
         where l.entry_date <= d.today
         group by l.tenant_id, l.invoice_id, d.today
        -- A receivable on d: its invoice line is on or before d (payments
        -- and credit notes are never dated before the issue date, so this
        -- is every group).
        having bool_or(l.entry_kind = 'invoice')) a
  join invoices i on i.tenant_id = a.tenant_id and i.invoice_id = a.invoice_id
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id;
grant select on v_invoice_outstanding to bizos_authenticated;
comment on view v_invoice_outstanding is
  'Per invoice that is a receivable on the tenant''s today (v_ar_ledger up to today): total, paid (net of refunds), credited, outstanding, days_past_due, is_overdue, aging bucket.';

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
--   credit_sales_30d(d) = invoice lines less credit-note lines with
--                         entry_date in [d-29, d] (net credit sales)
--   dso_days(d)         = ar_outstanding(d) / credit_sales_30d(d) * 30, rounded to 0.1 day
--
-- When the credit sales of the window are 0 (or less: credit notes of
-- older invoices), dso_days is NULL (undefined,
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
                            sum(l.amount) filter (where l.entry_kind in ('invoice', 'credit_note')) as sales
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
-- The invoices select policies (V6, V35) in a form indexes serve
-- (docs/schema.md, "What a policy costs"; the helpers in platform.sql):
-- "reads all" as policy_reads_all, the sales roles' invoices of their
-- team's customers (owns_customer per row before, a walk of the tenant for
-- a salesperson's page) as the invoice's sales_owners (V57: the owners of
-- its customer's prospects, kept by the trigger below) against the team
-- (policy_team_owns_any), one probe per team user in
-- invoices_sales_owners_idx. On Citus the policies stay as they were.
do $$
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    return;
  end if;
  drop policy if exists "finance and directors read all invoices, sales their customers'" on invoices;
  execute format('create policy %I on invoices for select to bizos_authenticated using (%s)',
    'finance and directors read all invoices, sales their customers''',
    format('tenant_id = (select bizos.tenant_id()) and (%s'
           ' or (%s and %s))',
           policy_reads_all($e$bizos.app_role() = any (array['super_admin', 'director', 'finance'])$e$, 'invoice_id'),
           policy_team_owns_any('sales_owners'),
           policy_caller_is($e$bizos.app_role() = any (array['sales_manager', 'salesperson'])$e$)));
  drop policy if exists "holders of invoice.read_all read every invoice" on invoices;
  execute format('create policy %I on invoices for select to bizos_authenticated using (%s)',
    'holders of invoice.read_all read every invoice',
    format('tenant_id = (select bizos.tenant_id()) and %s',
           policy_reads_all($e$has_permission('invoice.read_all')$e$, 'invoice_id')));
end
$$;

-- An invoice's sales owners: of its customer (sales_owners_derive, crm.sql).
create or replace trigger invoices_sales_owners
  before insert or update on invoices
  for each row execute function sales_owners_derive('customer_id');

-- What is open of an invoice on `day` (v_invoice_outstanding's arithmetic
-- for one invoice): its total less its payments, plus its refunds, less its
-- credit notes dated up to `day`, each read by its index by invoice; NULL
-- when the invoice is not a receivable on `day` (not ISSUED or PAID, or
-- issued after it). As the caller: the ledger lines are read under their
-- policies, which show an invoice's lines exactly when the invoice is
-- visible. Costed high, so that the planner evaluates it after a sort and
-- a limit (as customer_name_readable).
create or replace function invoice_outstanding_on(tenant uuid, invoice uuid, total numeric, status text,
                                                  issued_on date, day date) returns numeric
language plpgsql stable cost 1000
as $$
begin
  if status in ('ISSUED', 'PAID') and issued_on <= day then
    return total
           - coalesce((select sum(p.amount::numeric) from payments p
                        where p.tenant_id = tenant and p.invoice_id = invoice and p.paid_on <= day), 0)
           + coalesce((select sum(r.amount::numeric) from refunds r
                        where r.tenant_id = tenant and r.invoice_id = invoice and r.refunded_on <= day), 0)
           - coalesce((select sum(c.amount::numeric) from credit_notes c
                        where c.tenant_id = tenant and c.invoice_id = invoice and c.issue_date <= day), 0);
  end if;
  return null;
end
$$;
select pin_search_path('invoice_outstanding_on(uuid, uuid, numeric, text, date, date)');
grant execute on function invoice_outstanding_on(uuid, uuid, numeric, text, date, date) to bizos_authenticated;
comment on function invoice_outstanding_on(uuid, uuid, numeric, text, date, date) is
  'Outstanding of one invoice on a day from its payments, refunds and credit notes up to it; NULL when it is no receivable then.';

-- Has the caller's tenant a payment, refund or credit note dated after
-- `day`? Every writer refuses a line dated after the tenant's today
-- (payments_check_outstanding and the refund and credit-note triggers), so
-- there is one only for a day or two after the tenant's time zone moved
-- west. Until then an invoice's stored amounts (amount_paid: its payments
-- net of refunds; amount_credited: its credit notes, kept by
-- invoices_derive_state) are its lines up to today. Three probes of the
-- lines' date indexes (V59), once per statement. As the owner, for the
-- caller's own tenant only (any other: true): the answer decides only how
-- v_invoices computes the same amounts, never what it shows.
create or replace function tenant_ledger_dated_after(tenant uuid, day date) returns boolean
language plpgsql stable security definer
as $$
begin
  if tenant is distinct from bizos.tenant_id() or day is null then
    return true;
  end if;
  return exists (select 1 from payments p where p.tenant_id = tenant and p.paid_on > day)
      or exists (select 1 from refunds r where r.tenant_id = tenant and r.refunded_on > day)
      or exists (select 1 from credit_notes c where c.tenant_id = tenant and c.issue_date > day);
end
$$;
select pin_search_path('tenant_ledger_dated_after(uuid, date)');
revoke execute on function tenant_ledger_dated_after(uuid, date) from public;
grant execute on function tenant_ledger_dated_after(uuid, date) to bizos_authenticated;
comment on function tenant_ledger_dated_after(uuid, date) is
  'Whether the caller''s tenant has a payment, refund or credit note dated after the day (true for any other tenant).';

create or replace view v_invoices with (security_invoker = true) as
select i.tenant_id, i.invoice_id, i.invoice_no, i.customer_id, i.issue_date, i.due_date, i.currency,
       i.subtotal, i.tax, i.total, i.amount_paid, i.status, i.notes, i.collection_ticket_id,
       i.issued_at, i.paid_at, i.voided_at, i.created_by, i.created_at, i.updated_at,
       -- The customers a page's caller may read, as a left join of customers
       -- under its policy gave it; evaluated for the page's rows only.
       customer_name_readable(i.customer_id) as company_name,
       coalesce(o.outstanding, 0) as outstanding,
       -- (The due date first: past the tenant's time zone move below, the
       -- ledger is read for an invoice past due only.)
       case when d.today > i.due_date and o.outstanding > 0 then d.today - i.due_date else 0 end
         as days_past_due,
       coalesce(d.today > i.due_date and o.outstanding > 0, false) as is_overdue,
       case when coalesce(o.outstanding, 0) = 0 then null
            when d.today <= i.due_date then 'current'
            when d.today - i.due_date <= 30 then '1-30'
            when d.today - i.due_date <= 60 then '31-60'
            when d.today - i.due_date <= 90 then '61-90'
            else '>90' end as aging_bucket
  from invoices i
  -- The tenant's today, and whether its ledger has lines dated after it,
  -- once (a hash of the caller's tenant row), not per invoice.
  left join (select t.tenant_id, t.today, tenant_ledger_dated_after(t.tenant_id, t.today) as lines_after
               from v_tenant_today t) d on d.tenant_id = i.tenant_id
  -- What is open of a receivable on today (v_invoice_outstanding's
  -- arithmetic, change both: team_lists::a_page_of_invoices_reads_the_ledger_of_its_invoices
  -- and the receivables tests check they agree): the invoice's stored
  -- amounts, which are its lines up to today unless the tenant has lines
  -- dated after it; then its lines up to today, read by
  -- invoice_outstanding_on after the sort and the limit. No ledger line is
  -- read per visible invoice (a lateral join of the ledger ran below the
  -- sort, for every invoice of a team's bitmap: about 900 for a page of
  -- 50).
  cross join lateral (
    select case when d.lines_after
                then invoice_outstanding_on(i.tenant_id, i.invoice_id, i.total, i.status, i.issue_date, d.today)
                when i.status in ('ISSUED', 'PAID') and i.issue_date <= d.today
                then i.total::numeric - i.amount_paid - i.amount_credited
           end as outstanding) o;
-- On Citus the view stays as it was before V59: per invoice, the ledger
-- lines up to today by a lateral sub-query below the sort (Citus 13 on
-- PostgreSQL 15 refuses the left join to the tenant's row with its ledger
-- probe in a look-up by id: "outer joins and pseudoconstant quals").
do $citus$
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is null then
    return;
  end if;
  execute $view$
create or replace view v_invoices with (security_invoker = true) as
select i.tenant_id, i.invoice_id, i.invoice_no, i.customer_id, i.issue_date, i.due_date, i.currency,
       i.subtotal, i.tax, i.total, i.amount_paid, i.status, i.notes, i.collection_ticket_id,
       i.issued_at, i.paid_at, i.voided_at, i.created_by, i.created_at, i.updated_at,
       -- The customers a page's caller may read, as a left join of customers
       -- under its policy gave it; evaluated for the page's rows only.
       customer_name_readable(i.customer_id) as company_name,
       coalesce(o.outstanding, 0) as outstanding,
       coalesce(o.days_past_due, 0) as days_past_due,
       coalesce(o.is_overdue, false) as is_overdue,
       o.aging_bucket
  from invoices i
  -- Per invoice, not a join with v_invoice_outstanding: a join made
  -- PostgreSQL aggregate the tenant's whole ledger for every page (570 ms
  -- for the owner's page at 40,000 invoices). This is that view's
  -- arithmetic for one invoice, i (visible to the caller), over its own
  -- payments, refunds and credit notes by their indexes by invoice: a page
  -- costs its invoices' ledger lines. (A lateral sub-query of the view
  -- itself read each invoice again in each of v_ar_ledger's four branches,
  -- each under the invoices policy.) Change both together:
  -- team_lists::a_page_of_invoices_reads_the_ledger_of_its_invoices and
  -- the receivables tests check they agree.
  -- The tenant's today once (a hash of the caller's tenant row), not a
  -- probe of tenants per invoice.
  left join v_tenant_today d on d.tenant_id = i.tenant_id
  left join lateral (
    select s.outstanding,
           case when s.outstanding > 0 and s.today > i.due_date
                then s.today - i.due_date else 0 end as days_past_due,
           (s.outstanding > 0 and s.today > i.due_date) as is_overdue,
           case when s.outstanding = 0 then null
                when s.today <= i.due_date then 'current'
                when s.today - i.due_date <= 30 then '1-30'
                when s.today - i.due_date <= 60 then '31-60'
                when s.today - i.due_date <= 90 then '61-90'
                else '>90' end as aging_bucket
      from (select d.today,
                   i.total::numeric - coalesce(pay.amount, 0) + coalesce(ref.amount, 0)
                   - coalesce(cn.amount, 0) as outstanding
              -- Each sum from a FROM of its own: Citus plans no correlated
              -- sub-query under a FROM-less select.
              from (select sum(p.amount::numeric) as amount from payments p
                     where p.tenant_id = i.tenant_id and p.invoice_id = i.invoice_id
                       and p.paid_on <= d.today) pay,
                   (select sum(r.amount::numeric) as amount from refunds r
                     where r.tenant_id = i.tenant_id and r.invoice_id = i.invoice_id
                       and r.refunded_on <= d.today) ref,
                   (select sum(c.amount::numeric) as amount from credit_notes c
                     where c.tenant_id = i.tenant_id and c.invoice_id = i.invoice_id
                       and c.issue_date <= d.today) cn
             -- A receivable on today: ISSUED or PAID, issued on or before it.
             where i.status in ('ISSUED', 'PAID') and i.issue_date <= d.today
             -- Computed once, not once per column that names it.
            offset 0) s) o on true
  $view$;
end
$citus$;
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
  v_open numeric;
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
  -- What is open from paid_on on (today's outstanding, or less when the
  -- payment is dated before a refund: see invoice_open_from).
  v_open := invoice_open_from(new.tenant_id, new.invoice_id, new.paid_on);
  if new.amount > v_open then
    raise exception using errcode = 'P0001', column = 'amount',
      message = format('amount: %s exceeds the outstanding %s of invoice %s', new.amount, v_open, inv.invoice_no);
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

-- The document an AR write points at: its id or its number, exactly one
-- of them (payment_record, refund_record, credit_note_create).
create or replace function ar_target_check(id_value text, no_value text, id_field text, no_field text) returns void
language plpgsql
as $$
begin
  if id_value is null and no_value is null then
    perform raise_field(id_field, format('is required (or send %s)', no_field));
  end if;
  if id_value is not null and no_value is not null then
    perform raise_field(no_field, format('send either %s or %s, not both', id_field, no_field));
  end if;
end
$$;
grant execute on function ar_target_check(text, text, text, text) to bizos_authenticated;

-- The day of an AR document: the tenant's today when absent, never after it.
create or replace function ar_document_day(payload jsonb, field text) returns date
language plpgsql
as $$
declare
  v_today date := tenant_today();
  v_day date := coalesce(payload_date(payload, field), v_today);
begin
  if v_day > v_today then
    perform raise_field(field, format('%s is in the future (today is %s in the tenant''s time zone)', v_day, v_today));
  end if;
  return v_day;
end
$$;
grant execute on function ar_document_day(jsonb, text) to bizos_authenticated;

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
  v_tenant uuid := bizos.tenant_id();
begin
  perform require_permission('payment.record');
  perform payload_check(payload, '{"invoice_id": "uuid", "invoice_no": "text", "amount": "number", "paid_on": "date", "method": "text", "reference": "text", "notes": "text"}');
  v_invoice := payload_uuid(payload, 'invoice_id');
  v_invoice_no := payload_text(payload, 'invoice_no', false, 40);
  perform ar_target_check(v_invoice::text, v_invoice_no, 'invoice_id', 'invoice_no');
  v_amount := payload_numeric(payload, 'amount', true);
  if v_amount <= 0 then
    perform raise_field('amount', 'must be greater than 0');
  end if;
  v_paid_on := ar_document_day(payload, 'paid_on');
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
                                  'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid - inv.amount_credited,
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
                            'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid - inv.amount_credited,
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
-- naming `amount_paid`, with what was paid; one with credit notes neither
-- (naming `amount_credited`). Once every payment is refunded it may be.
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
  if inv.amount_credited > 0 then
    perform raise_field('amount_credited', format('invoice %s has credit notes of %s %s of its %s and cannot be voided',
                                                  inv.invoice_no, inv.currency, inv.amount_credited, inv.total));
  end if;
  update invoices i set status = 'VOID'
   where i.tenant_id = inv.tenant_id and i.invoice_id = inv.invoice_id;
  return (select to_jsonb(v) from v_invoices v where v.tenant_id = inv.tenant_id and v.invoice_id = inv.invoice_id);
end
$$;
grant execute on function invoice_void(uuid) to bizos_authenticated;
comment on function invoice_void(uuid) is
  'Voids a DRAFT or ISSUED invoice without payments (paid or partly paid: refused naming amount_paid); returns it as v_invoices shows it.';

-- ---------------------------------------------------------------------------
-- Refunds and credit notes (V43)
-- ---------------------------------------------------------------------------

-- A refund pays back (part of) a payment: never more than the payment net
-- of its earlier refunds, dated on or after the payment and never after
-- the tenant's today (the default). The payment's invoice row is locked
-- first, so refunds, payments and credit notes of one invoice queue there
-- and each sees the others' committed amounts. Runs as the owner: it reads
-- every refund of the payment whatever the caller's visibility. A refund
-- is never changed once recorded.
create or replace function refunds_against_payment() returns trigger
language plpgsql security definer
as $$
declare
  pay record;
  v_refunded numeric;
  v_today date;
begin
  if tg_op = 'UPDATE' then
    if new.payment_id <> old.payment_id or new.invoice_id <> old.invoice_id or new.amount <> old.amount
       or new.refunded_on <> old.refunded_on then
      raise exception using errcode = 'P0001', column = 'amount',
        message = 'amount: refunds cannot be changed once recorded';
    end if;
    return new;
  end if;
  v_today := tenant_today(new.tenant_id);
  new.refunded_on := coalesce(new.refunded_on, v_today);
  if new.refunded_on > v_today then
    raise exception using errcode = 'P0001', column = 'refunded_on',
      message = format('refunded_on: %s is in the future (today is %s in the tenant''s time zone)', new.refunded_on, v_today);
  end if;
  select p.payment_no, p.invoice_id, p.paid_on, p.amount into pay
    from payments p
   where p.tenant_id = new.tenant_id and p.payment_id = new.payment_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'payment_id', message = 'payment_id: payment not found';
  end if;
  new.invoice_id := pay.invoice_id;
  perform 1 from invoices i
   where i.tenant_id = new.tenant_id and i.invoice_id = pay.invoice_id
   for update;
  if new.refunded_on < pay.paid_on then
    raise exception using errcode = 'P0001', column = 'refunded_on',
      message = format('refunded_on: %s is before payment %s was made (%s)', new.refunded_on, pay.payment_no, pay.paid_on);
  end if;
  v_refunded := coalesce((select sum(r.amount) from refunds r
                           where r.tenant_id = new.tenant_id and r.payment_id = new.payment_id), 0);
  if new.amount > pay.amount - v_refunded then
    raise exception using errcode = 'P0001', column = 'amount',
      message = format('amount: %s exceeds the %s left to refund of payment %s (paid %s, refunded %s)',
                       new.amount, pay.amount - v_refunded, pay.payment_no, pay.amount, v_refunded);
  end if;
  return new;
end
$$;
select pin_search_path('refunds_against_payment()');
revoke execute on function refunds_against_payment() from public;
-- Before the number is drawn (triggers fire in name order): the invoice
-- row lock comes before the gapless counter's, as in refund_record.
create or replace trigger refunds_against_payment
  before insert or update on refunds
  for each row execute function refunds_against_payment();

-- A credit note takes back (part of) an ISSUED invoice: in the invoice's
-- currency (a different one is refused naming `currency`), for its
-- customer, dated on or after the invoice's issue date and never after
-- the tenant's today (the default), and never more than the invoice's
-- open balance from its date on (invoice_open_from: total - payments net
-- of refunds - earlier credit notes). A PAID invoice has nothing open: a
-- payment is refunded first. The invoice row is locked first. A credit
-- note is never changed once issued.
create or replace function credit_notes_against_open_balance() returns trigger
language plpgsql security definer
as $$
declare
  inv record;
  v_open numeric;
  v_today date;
begin
  if tg_op = 'UPDATE' then
    if new.invoice_id <> old.invoice_id or new.amount <> old.amount or new.issue_date <> old.issue_date
       or new.currency <> old.currency then
      raise exception using errcode = 'P0001', column = 'amount',
        message = 'amount: credit notes cannot be changed once issued';
    end if;
    -- The customer follows the invoice, which changes customer only along
    -- a recorded merge (customer_merge).
    if new.customer_id <> old.customer_id
       and not exists (select 1 from invoices i
                        where i.tenant_id = new.tenant_id and i.invoice_id = new.invoice_id
                          and i.customer_id = new.customer_id) then
      raise exception using errcode = 'P0001', column = 'customer_id',
        message = 'customer_id: a credit note''s customer is its invoice''s';
    end if;
    return new;
  end if;
  v_today := tenant_today(new.tenant_id);
  new.issue_date := coalesce(new.issue_date, v_today);
  if new.issue_date > v_today then
    raise exception using errcode = 'P0001', column = 'issue_date',
      message = format('issue_date: %s is in the future (today is %s in the tenant''s time zone)', new.issue_date, v_today);
  end if;
  select i.invoice_no, i.status, i.issue_date, i.customer_id, i.currency into inv
    from invoices i
   where i.tenant_id = new.tenant_id and i.invoice_id = new.invoice_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'invoice_id', message = 'invoice_id: invoice not found';
  end if;
  if inv.status <> 'ISSUED' then
    raise exception using errcode = 'P0001', column = 'invoice_id',
      message = format('invoice_id: invoice %s is %s; only an ISSUED invoice with an open balance takes a credit note%s',
                       inv.invoice_no, inv.status,
                       case inv.status when 'PAID' then ' (refund a payment first)'
                                       when 'DRAFT' then ' (change or void the draft instead)' else '' end);
  end if;
  if new.currency is not null and new.currency <> inv.currency then
    raise exception using errcode = 'P0001', column = 'currency',
      message = format('currency: %s is not the currency %s of invoice %s', new.currency, inv.currency, inv.invoice_no);
  end if;
  new.currency := inv.currency;
  new.customer_id := inv.customer_id;
  if new.issue_date < inv.issue_date then
    raise exception using errcode = 'P0001', column = 'issue_date',
      message = format('issue_date: %s is before the issue date %s of invoice %s', new.issue_date, inv.issue_date, inv.invoice_no);
  end if;
  v_open := invoice_open_from(new.tenant_id, new.invoice_id, new.issue_date);
  if new.amount > v_open then
    raise exception using errcode = 'P0001', column = 'amount',
      message = format('amount: %s exceeds the open balance %s of invoice %s', new.amount, v_open, inv.invoice_no);
  end if;
  return new;
end
$$;
select pin_search_path('credit_notes_against_open_balance()');
revoke execute on function credit_notes_against_open_balance() from public;
-- Before the number is drawn (name order), as refunds_against_payment.
create or replace trigger credit_notes_against_open_balance
  before insert or update on credit_notes
  for each row execute function credit_notes_against_open_balance();

-- refund_record({payment_id | payment_no, amount, reason, refunded_on?,
--   method?, reference?})
--   -> {refund_id, refund_no, payment_id, payment_no, invoice_id,
--       invoice_no, amount, refunded_on, refundable, outstanding,
--       invoice_status}
-- POST /api/refunds (payment.record: finance, super admins). refundable is
-- what is left to refund of the payment, outstanding the invoice's open
-- balance after the refund (a PAID invoice is ISSUED again).
create or replace function refund_record(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  v_payment uuid;
  v_payment_no text;
  v_amount numeric;
  v_on date;
  v_method text;
  v_reference text;
  v_reason text;
  pay payments;
  inv invoices;
  r refunds;
begin
  perform require_permission('payment.record');
  perform payload_check(payload, '{"payment_id": "uuid", "payment_no": "text", "amount": "number", "refunded_on": "date", "method": "text", "reference": "text", "reason": "text"}');
  v_payment := payload_uuid(payload, 'payment_id');
  v_payment_no := payload_text(payload, 'payment_no', false, 40);
  perform ar_target_check(v_payment::text, v_payment_no, 'payment_id', 'payment_no');
  v_amount := payload_numeric(payload, 'amount', true);
  if v_amount <= 0 then
    perform raise_field('amount', 'must be greater than 0');
  end if;
  v_on := ar_document_day(payload, 'refunded_on');
  v_method := vocabulary_check('payment_methods',
                               lower(coalesce(payload_text(payload, 'method', false, 40), 'bank_transfer')), 'method');
  v_reference := payload_text(payload, 'reference', false, 200);
  v_reason := payload_text(payload, 'reason', true, 2000);

  select * into pay from payments p
   where p.tenant_id = v_tenant and (p.payment_id = v_payment or p.payment_no = v_payment_no);
  if not found then
    raise exception using errcode = 'P0002', column = case when v_payment is null then 'payment_no' else 'payment_id' end,
      message = case when v_payment is null then 'payment_no' else 'payment_id' end || ': payment not found';
  end if;
  -- The invoice first (as payment_record), then the refund's number.
  perform 1 from invoices i where i.tenant_id = v_tenant and i.invoice_id = pay.invoice_id for update;

  insert into refunds (tenant_id, payment_id, refunded_on, amount, method, reference, reason)
  values (v_tenant, pay.payment_id, v_on, v_amount, v_method, v_reference, v_reason)
  returning * into r;

  select * into inv from invoices i where i.tenant_id = v_tenant and i.invoice_id = pay.invoice_id;
  return jsonb_build_object(
    'refund_id', r.refund_id, 'refund_no', r.refund_no, 'payment_id', pay.payment_id, 'payment_no', pay.payment_no,
    'invoice_id', inv.invoice_id, 'invoice_no', inv.invoice_no, 'amount', r.amount, 'refunded_on', r.refunded_on,
    'refundable', pay.amount - (select sum(x.amount) from refunds x
                                 where x.tenant_id = v_tenant and x.payment_id = pay.payment_id),
    'outstanding', inv.total - inv.amount_paid - inv.amount_credited, 'invoice_status', inv.status);
end
$$;
grant execute on function refund_record(jsonb) to bizos_authenticated;
comment on function refund_record(jsonb) is
  'Records a refund of (part of) a payment (RF-... number): at most the payment net of earlier refunds; re-opens the invoice.';

-- credit_note_create({invoice_id | invoice_no, amount, reason, issue_date?,
--   currency?})
--   -> {credit_note_id, credit_note_no, invoice_id, invoice_no, currency,
--       amount, issue_date, outstanding, invoice_status}
-- POST /api/credit-notes (invoice.create: finance, super admins). The
-- rules are the trigger's (credit_notes_against_open_balance); outstanding
-- is the invoice's open balance after it (0: the invoice is PAID, settled).
create or replace function credit_note_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  v_invoice uuid;
  v_invoice_no text;
  v_amount numeric;
  v_date date;
  v_currency text;
  v_reason text;
  inv invoices;
  c credit_notes;
begin
  perform require_permission('invoice.create');
  perform payload_check(payload, '{"invoice_id": "uuid", "invoice_no": "text", "amount": "number", "issue_date": "date", "currency": "text", "reason": "text"}');
  v_invoice := payload_uuid(payload, 'invoice_id');
  v_invoice_no := payload_text(payload, 'invoice_no', false, 40);
  perform ar_target_check(v_invoice::text, v_invoice_no, 'invoice_id', 'invoice_no');
  v_amount := payload_numeric(payload, 'amount', true);
  if v_amount <= 0 then
    perform raise_field('amount', 'must be greater than 0');
  end if;
  v_date := ar_document_day(payload, 'issue_date');
  v_currency := upper(payload_text(payload, 'currency', false, 3));
  v_reason := payload_text(payload, 'reason', true, 2000);

  select * into inv from invoices i
   where i.tenant_id = v_tenant
     and (i.invoice_id = v_invoice or i.invoice_no = v_invoice_no)
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = case when v_invoice is null then 'invoice_no' else 'invoice_id' end,
      message = case when v_invoice is null then 'invoice_no' else 'invoice_id' end || ': invoice not found';
  end if;

  insert into credit_notes (tenant_id, invoice_id, currency, issue_date, amount, reason)
  values (v_tenant, inv.invoice_id, v_currency, v_date, v_amount, v_reason)
  returning * into c;

  select * into inv from invoices i where i.tenant_id = v_tenant and i.invoice_id = c.invoice_id;
  return jsonb_build_object(
    'credit_note_id', c.credit_note_id, 'credit_note_no', c.credit_note_no, 'invoice_id', inv.invoice_id,
    'invoice_no', inv.invoice_no, 'currency', c.currency, 'amount', c.amount, 'issue_date', c.issue_date,
    'outstanding', inv.total - inv.amount_paid - inv.amount_credited, 'invoice_status', inv.status);
end
$$;
grant execute on function credit_note_create(jsonb) to bizos_authenticated;
comment on function credit_note_create(jsonb) is
  'Issues a credit note (CN-... number) against an ISSUED invoice, in its currency, at most its open balance; reduces AR.';

-- GET /api/payments: payments in the caller's scope (those of the invoices
-- it reads) with their invoice, customer, currency and what was refunded.
create or replace view v_payments with (security_invoker = true) as
select p.tenant_id, p.payment_id, p.payment_no, p.invoice_id, p.paid_on, p.amount, p.method, p.reference, p.notes,
       p.created_by, p.created_at, p.updated_at,
       i.invoice_no, i.customer_id, c.company_name, i.currency,
       coalesce(r.refunded, 0)::numeric(18,2) as refunded,
       (p.amount - coalesce(r.refunded, 0))::numeric(18,2) as net_amount
  from payments p
  join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id
  left join (select x.tenant_id, x.payment_id, sum(x.amount) as refunded
               from refunds x group by x.tenant_id, x.payment_id) r
    on r.tenant_id = p.tenant_id and r.payment_id = p.payment_id;
grant select on v_payments to bizos_authenticated;
comment on view v_payments is
  'Payments in the caller''s scope with invoice number, customer, currency, refunded and net amount.';

-- GET /api/refunds: refunds in the caller's scope with their payment,
-- invoice, customer and currency.
create or replace view v_refunds with (security_invoker = true) as
select r.tenant_id, r.refund_id, r.refund_no, r.payment_id, r.invoice_id, r.refunded_on, r.amount, r.method,
       r.reference, r.reason, r.created_by, r.created_at, r.updated_at,
       p.payment_no, i.invoice_no, i.customer_id, c.company_name, i.currency
  from refunds r
  join payments p on p.tenant_id = r.tenant_id and p.payment_id = r.payment_id
  join invoices i on i.tenant_id = r.tenant_id and i.invoice_id = r.invoice_id
  left join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id;
grant select on v_refunds to bizos_authenticated;
comment on view v_refunds is
  'Refunds in the caller''s scope with payment and invoice numbers, customer and currency.';

-- GET /api/credit-notes: credit notes in the caller's scope with their
-- invoice and customer.
create or replace view v_credit_notes with (security_invoker = true) as
select n.tenant_id, n.credit_note_id, n.credit_note_no, n.invoice_id, n.customer_id, n.currency, n.issue_date,
       n.amount, n.reason, n.created_by, n.created_at, n.updated_at,
       i.invoice_no, c.company_name
  from credit_notes n
  join invoices i on i.tenant_id = n.tenant_id and i.invoice_id = n.invoice_id
  left join customers c on c.tenant_id = n.tenant_id and c.customer_id = n.customer_id;
grant select on v_credit_notes to bizos_authenticated;
comment on view v_credit_notes is
  'Credit notes in the caller''s scope with their invoice number and customer.';
