-- The second reference of the month-end run: the same close as one SQL
-- call in one transaction. What a worker's batch does
-- (billing_month_end_batch: billing_month_end_of_all of its tenants, i.e.
-- billing_close_due until nothing is due, then the drafts past their
-- grace period finalized), for every tenant the run enqueues at once
-- (every tenant with a subscription, billing_month_end_enqueue; those
-- metered elsewhere left out, as the batch leaves them), minus the job
-- machinery (enqueue, claims, job_take, job_succeed_taken, the worker).
-- The very same invoices, lines and subscription moves, written into the
-- real tables with all their triggers (audit, keys), timed, counted, then
-- rolled back, so that the month-end run starts from the same state.
-- Prints "milliseconds|tenants done|invoices|lines".
begin;
select extract(epoch from clock_timestamp()) * 1000 as t0 \gset
select sum(m.done) as done
  from billing_month_end_of_all(array(
         select s.tenant_id from subscriptions s join tenants t on t.tenant_id = s.tenant_id
          where not exists (select 1 from billing_metered_elsewhere e where e.tenant_id = s.tenant_id)
          order by s.tenant_id)) m \gset
select round(extract(epoch from clock_timestamp()) * 1000 - :t0) as ms \gset
select :ms, :done,
       (select count(*) from billing_invoices where period_start = '2026-12-01'),
       (select count(*) from billing_invoice_lines);
rollback;
