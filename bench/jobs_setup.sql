-- scripts/bench jobs: the baseline queue table and the latency record. Run
-- as bizos_owner after bench/crm_setup.sql (its tenant).
--   psql -f jobs_setup.sql
\set ON_ERROR_STOP on

-- The bare SKIP LOCKED baseline: a plain copy of the shape of jobs (its
-- columns, defaults, check constraints and indexes, including the partial
-- index of queued jobs) without its triggers, foreign keys, RLS or
-- functions.
create table bench_plain_jobs (like jobs including all);

-- Idle latency: one row per job enqueued while a `bizos worker` idles; the
-- time is clock_timestamp() after the enqueue, in the statement that
-- commits (autocommit), i.e. right before COMMIT.
create table bench_job_latency (
  job_id       uuid        primary key,
  committed_at timestamptz not null
);

-- Diagnostic: a commit with and without a NOTIFY (jobs_notify.sql).
create table bench_notify_rows (
  id bigint generated always as identity primary key,
  v  text not null
);
