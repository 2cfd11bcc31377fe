-- scripts/bench jobs: the baseline of jobs_queue.sql, a bare SKIP LOCKED
-- loop in SQL on bench_plain_jobs (the shape of jobs): enqueue = insert,
-- claim = update of the best due row (priority, then run_at) picked with
-- FOR UPDATE SKIP LOCKED, complete = update; three autocommit transactions.
insert into bench_plain_jobs (tenant_id, kind, max_attempts) values ('@TENANT@', 'idempotency.purge', 3);
with c as (
  update bench_plain_jobs j
     set status = 'running', attempts = j.attempts + 1, locked_by = 'bench-' || :client_id,
         locked_until = now() + interval '300 seconds', started_at = coalesce(j.started_at, now())
   where (j.tenant_id, j.job_id) = (select q.tenant_id, q.job_id from bench_plain_jobs q
                                     where q.status = 'queued' and q.run_at <= now()
                                     order by q.priority desc, q.run_at
                                     limit 1
                                       for update skip locked)
  returning j.job_id)
select coalesce((select c.job_id::text from c), '') as job_id \gset
update bench_plain_jobs j
   set status = 'succeeded', finished_at = now(), locked_by = null, locked_until = null
 where j.job_id = nullif(:job_id, '')::uuid and j.status = 'running' and j.locked_by = 'bench-' || :client_id;
