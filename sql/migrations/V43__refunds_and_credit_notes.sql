-- Refunds and credit notes: the two documents that take back what an
-- invoice or a payment settled, each with its own gapless number series
-- per tenant and year (RF-YYYY-NNNNNN, CN-YYYY-NNNNNN, like INV-...).
--
--   refunds       money paid back on a payment: never more than the
--                 payment net of its earlier refunds; it re-opens the
--                 invoice's balance (a PAID invoice becomes ISSUED again).
--   credit_notes  a negative document against an ISSUED invoice, in its
--                 currency: never more than the invoice's open balance
--                 (total - payments net of refunds - earlier credit
--                 notes), so a credit note never leaves the customer a
--                 credit balance that this system would have to hold;
--                 to credit a paid invoice, refund first.
--
-- invoices.amount_paid is now the payments net of their refunds and
-- invoices.amount_credited the sum of the credit notes; an invoice is PAID
-- (settled) when the two cover its total. Both are kept by triggers
-- (sql/api/receivables.sql); the ledger v_ar_ledger carries a line per
-- refund (+) and per credit note (-), so outstanding, aging, DSO, the KPI
-- AR metrics and the digest follow.
--
-- Who: the invoices' roles. A refund needs payment.record (finance, super
-- admins), a credit note invoice.create (the same); both are read by
-- whoever reads their invoice. Append-only for clients: a wrong document
-- is corrected by another one, never edited or deleted.
--
-- One concern: the two documents, their numbers and the invoice columns
-- and transition they need. Their rule triggers (refunds_against_payment,
-- credit_notes_against_open_balance) are attached in receivables.sql,
-- beside their functions, which do not exist before the api runs.

insert into bizos.id_kinds (kind, prefix, mode) values
  ('refund', 'RF', 'gapless'),
  ('credit_note', 'CN', 'gapless')
on conflict (kind) do nothing;

-- A refund re-opens a PAID invoice.
insert into bizos.transitions (entity, from_status, to_status) values
  ('invoice', 'PAID', 'ISSUED')
on conflict do nothing;

-- The lifecycle stamps no issued_at on ISSUED any more: re-opened, an
-- invoice keeps the instant it was first issued (invoices_derive_state
-- stamps issued_at when it is issued).
drop trigger invoices_lifecycle on invoices;
create trigger invoices_lifecycle
  before insert or update on invoices
  for each row execute function bizos.lifecycle_guard('invoice', 'status', 'DRAFT=', 'ISSUED=', 'VOID=voided_at');

alter table invoices add column amount_credited numeric(18,2) not null default 0;
alter table invoices add constraint invoices_amount_credited_check
  check (amount_credited >= 0 and amount_paid + amount_credited <= subtotal + tax);
comment on column invoices.amount_paid is
  'Payments of the invoice net of their refunds, maintained by triggers; never written by clients.';
comment on column invoices.amount_credited is
  'Sum of the credit notes of the invoice, maintained by triggers; never written by clients.';

-- ---------------------------------------------------------------------------
-- refunds
-- ---------------------------------------------------------------------------

create table refunds (
  tenant_id   uuid          not null,
  refund_id   uuid          not null default bizos.uuid_v7(),
  refund_no   text,
  payment_id  uuid          not null,
  -- The payment's invoice (set by the database), for the ledger and RLS.
  invoice_id  uuid          not null,
  refunded_on date          not null,
  amount      numeric(18,2) not null,
  method      text          not null default 'bank_transfer',
  reference   text,
  reason      text          not null,
  created_by  uuid          default bizos.uid(),
  created_at  timestamptz   not null default now(),
  updated_at  timestamptz   not null default now(),
  constraint refunds_pkey primary key (tenant_id, refund_id),
  constraint refunds_refund_no_key unique (tenant_id, refund_no),
  constraint refunds_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint refunds_payment_id_fkey foreign key (tenant_id, payment_id)
    references payments (tenant_id, payment_id),
  constraint refunds_invoice_id_fkey foreign key (tenant_id, invoice_id)
    references invoices (tenant_id, invoice_id),
  constraint refunds_method_fkey foreign key (method) references payment_methods (code),
  constraint refunds_amount_check check (amount > 0),
  constraint refunds_reference_check check (length(reference) between 1 and 200),
  constraint refunds_reason_check check (length(btrim(reason)) between 1 and 2000)
);
comment on table refunds is
  'Money paid back on a payment (RF-..., gapless); never more than the payment net of its earlier refunds; re-opens the invoice.';
create index refunds_payment_id_idx on refunds (tenant_id, payment_id);
create index refunds_invoice_id_idx on refunds (tenant_id, invoice_id);

create trigger refunds_assign_refund_no
  before insert or update on refunds
  for each row execute function bizos.assign_business_id('refund', 'refund_no');
create trigger refunds_stamp_timestamps
  before insert or update on refunds
  for each row execute function bizos.stamp_timestamps();
create trigger refunds_keep_created_by
  before insert or update on refunds
  for each row execute function bizos.keep_created_by();
-- invoices.amount_paid follows (payments_sync_invoice, receivables.sql).
create trigger refunds_sync_invoice
  after insert or update or delete on refunds
  for each row execute function payments_sync_invoice();
select bizos.enable_audit('refunds');

alter table refunds enable row level security;

-- A refund is visible exactly when its invoice is (the subquery runs under
-- the invoices policy of the caller).
create policy "callers read refunds of the invoices they can read"
  on refunds for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from invoices i
                      where i.tenant_id = refunds.tenant_id and i.invoice_id = refunds.invoice_id));

create policy "finance and super admins record refunds"
  on refunds for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('payment.record')));

grant select on refunds to bizos_authenticated;
grant insert (tenant_id, refund_id, payment_id, invoice_id, refunded_on, amount, method, reference, reason)
  on refunds to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- credit notes
-- ---------------------------------------------------------------------------

create table credit_notes (
  tenant_id      uuid          not null,
  credit_note_id uuid          not null default bizos.uuid_v7(),
  credit_note_no text,
  invoice_id     uuid          not null,
  -- The invoice's customer and currency (set by the database).
  customer_id    uuid          not null,
  currency       text          not null,
  issue_date     date          not null,
  amount         numeric(18,2) not null,
  reason         text          not null,
  created_by     uuid          default bizos.uid(),
  created_at     timestamptz   not null default now(),
  updated_at     timestamptz   not null default now(),
  constraint credit_notes_pkey primary key (tenant_id, credit_note_id),
  constraint credit_notes_credit_note_no_key unique (tenant_id, credit_note_no),
  constraint credit_notes_tenant_id_fkey foreign key (tenant_id)
    references tenants (tenant_id) on delete cascade,
  constraint credit_notes_invoice_id_fkey foreign key (tenant_id, invoice_id)
    references invoices (tenant_id, invoice_id),
  constraint credit_notes_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id),
  constraint credit_notes_currency_check check (currency ~ '^[A-Z]{3}$'),
  constraint credit_notes_amount_check check (amount > 0),
  constraint credit_notes_reason_check check (length(btrim(reason)) between 1 and 2000)
);
comment on table credit_notes is
  'Credit notes against invoices (CN-..., gapless), in the invoice''s currency; never more than its open balance; reduce AR.';
create index credit_notes_invoice_id_idx on credit_notes (tenant_id, invoice_id);
create index credit_notes_customer_id_idx on credit_notes (tenant_id, customer_id);

create trigger credit_notes_assign_credit_note_no
  before insert or update on credit_notes
  for each row execute function bizos.assign_business_id('credit_note', 'credit_note_no');
create trigger credit_notes_stamp_timestamps
  before insert or update on credit_notes
  for each row execute function bizos.stamp_timestamps();
create trigger credit_notes_keep_created_by
  before insert or update on credit_notes
  for each row execute function bizos.keep_created_by();
-- invoices.amount_credited follows (payments_sync_invoice, receivables.sql).
create trigger credit_notes_sync_invoice
  after insert or update or delete on credit_notes
  for each row execute function payments_sync_invoice();
select bizos.enable_audit('credit_notes');

alter table credit_notes enable row level security;

create policy "callers read credit notes of the invoices they can read"
  on credit_notes for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from invoices i
                      where i.tenant_id = credit_notes.tenant_id and i.invoice_id = credit_notes.invoice_id));

create policy "finance and super admins issue credit notes"
  on credit_notes for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('invoice.create')));

grant select on credit_notes to bizos_authenticated;
grant insert (tenant_id, credit_note_id, invoice_id, customer_id, currency, issue_date, amount, reason)
  on credit_notes to bizos_authenticated;
