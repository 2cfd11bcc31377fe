-- Workers that wait for work. A NOTIFY makes PostgreSQL serialise the
-- commits of notifying transactions cluster-wide (async.c takes a lock on
-- "database 0" from before the commit until after it), so an enqueue only
-- notifies while a worker with free slots listens; a busy worker claims
-- again as soon as a slot frees and needs no wake-up. Functions of
-- sql/api/jobs.sql (job_listen, job_wake) read and write it.
create table job_listeners (
  worker        text        not null,
  -- The registration holds until then; a waiting worker renews it, so a
  -- worker that died stops costing enqueues a NOTIFY soon after.
  listening_until timestamptz not null,
  constraint job_listeners_pkey primary key (worker),
  constraint job_listeners_worker_check check (length(worker) between 1 and 200)
);
comment on table job_listeners is
  'Workers waiting for jobs (LISTEN bizos_jobs) and until when; an enqueue sends a NOTIFY only while one is listed.';
-- Not tenant data (worker names); no grants: the SECURITY DEFINER
-- functions job_listen and job_wake are its only readers and writers.
alter table job_listeners enable row level security;

-- The claim orders a tenant's due jobs by priority, run_at and job_id; with
-- job_id in the index the first due job is the index's first entry,
-- whatever the backlog (before, the claim sorted every queued job of the
-- tenant: a 100,000-job backlog cost 100,000 rows per claim).
drop index jobs_queued_idx;
create index jobs_queued_idx on jobs (tenant_id, priority desc, run_at, job_id) where status = 'queued';

-- created_by never changes after the insert: the function runs only when
-- an update tries to change it (the worker's state changes never do).
drop trigger jobs_keep_created_by on jobs;
create trigger jobs_keep_created_by before insert on jobs
  for each row execute function keep_created_by();
create trigger jobs_keep_created_by_on_update before update on jobs
  for each row when (new.created_by is distinct from old.created_by) execute function keep_created_by();
