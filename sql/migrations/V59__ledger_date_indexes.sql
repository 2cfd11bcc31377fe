-- The receivables' lines by date, per tenant: whether a tenant has a
-- refund or a credit note dated after its today (tenant_ledger_dated_after,
-- receivables.sql) is one probe of each, as it already is for payments
-- (payments_tenant_id_paid_on_idx). v_invoices asks it once per statement
-- to know that an invoice's stored amounts are its lines up to today.
create index refunds_tenant_id_refunded_on_idx on refunds (tenant_id, refunded_on);
create index credit_notes_tenant_id_issue_date_idx on credit_notes (tenant_id, issue_date);
