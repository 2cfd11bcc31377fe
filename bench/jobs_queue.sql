-- scripts/bench jobs: one no-op job through the queue's own functions, as
-- the worker's login (bizos_worker): enqueue (job_enqueue_for), claim
-- (job_claim: lease, round-robin over tenants), complete (job_complete);
-- three autocommit transactions, as a producer and a worker would send
-- them. No handler runs. A claim that finds nothing (another client took
-- every due job) completes nothing; scripts/bench counts the completed jobs.
select job_enqueue_for('@TENANT@', 'idempotency.purge');
select coalesce((select c.job_id::text from job_claim('bench-' || :client_id, 1) c), '') as job_id \gset
select job_complete(nullif(:job_id, '')::uuid, 'bench-' || :client_id);
