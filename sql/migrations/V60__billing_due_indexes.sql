-- The worker's schedules tick asks, every few seconds, which tenants have
-- month-end or dunning work (billing_month_end_enqueue(true),
-- billing_dunning_enqueue): a period ended, a draft past its grace period,
-- an open dunning or an invoice past its due date. These indexes find
-- them from the dates, so a tick costs the tenants due and not every
-- subscription (sql/api/billing.sql, sql/api/payments.sql). Drafts are
-- found by billing_invoices_status_idx (status, finalize_after), open
-- dunnings by billing_dunning_open_idx.
create index if not exists subscriptions_current_period_end_idx on subscriptions (current_period_end);
create index if not exists billing_invoices_due_date_idx on billing_invoices (status, due_date);
