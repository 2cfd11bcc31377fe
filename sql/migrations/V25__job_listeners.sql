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
