-- Row keys ordered by time for the tables the write path fills most
-- (issue 20): bizos.uuid_v7() (extension 0.5.0) instead of
-- gen_random_uuid(). A random key sends each insert to a random leaf of
-- the primary key (and of the audit log's index of record keys), so every
-- index stays wholly in the working set and, after a checkpoint, nearly
-- every insert writes a full-page image of another leaf. The lead bundle
-- at 8 clients and 1M customers wrote 50 kB of WAL (7.2 full-page images)
-- a bundle with random keys and 24 kB (2.5) with these (BENCHMARKS.md).
--
-- Keys stay UUIDs, existing rows keep theirs, and nothing orders by them.
-- Keys that work as handles of something outside the row's table (files,
-- objects, API and provider keys, secrets, tenants) stay random.
do $keys$
declare
  k text[];
begin
  foreach k slice 1 in array array[
    ['customers', 'customer_id'], ['prospects', 'prospect_id'],
    ['prospect_stage_history', 'history_id'], ['leads', 'lead_id'],
    ['sales_activities', 'activity_id'], ['marketing_activity_events', 'event_id'],
    ['tickets', 'ticket_id'], ['ticket_messages', 'message_id'], ['sla_events', 'event_id'],
    ['invoices', 'invoice_id'], ['payments', 'payment_id'], ['kpi_entries', 'entry_id'],
    ['imports', 'import_id'], ['jobs', 'job_id'], ['emails', 'email_id'],
    ['webhook_events', 'event_id'], ['webhook_deliveries', 'delivery_id'],
    ['webhook_attempts', 'attempt_id'], ['llm_calls', 'call_id'], ['kb_chunks', 'chunk_id']]
  loop
    execute format('alter table %I alter column %I set default bizos.uuid_v7()', k[1], k[2]);
  end loop;
end
$keys$;
