-- Durable background jobs (issue 14): a queue in PostgreSQL, worked by
-- `bizos worker`.
--
-- Why our own table and not pgmq or apalis: a job must be enqueued in the
-- transaction of the business change that causes it (a rolled-back change
-- leaves no job, a committed one always does), under the caller's claims,
-- so the queue has to be an ordinary tenant table: tenant_id-leading keys
-- (Citus distributes it with the tenant's other rows, so the enqueue stays
-- a single-shard write), RLS (a user reads the jobs they started, like any
-- other row), a fairness rule per tenant (round-robin over tenants with due
-- jobs: one tenant's 100,000 jobs never starve another's one) and the
-- house's vocabularies and error shapes. pgmq's queues are one table per
-- queue without tenants or RLS, and apalis keeps its own schema and
-- polling worker; both would need the same wrapping again. The claim is the
-- well-known `FOR UPDATE SKIP LOCKED` pattern with a lease (visibility
-- timeout): a running job whose locked_until passed is claimable again.
--
-- The functions (enqueue, claim, heartbeat, complete, fail, release,
-- cancel, retry) and the views live in sql/api/jobs.sql.

-- ---------------------------------------------------------------------------
-- vocabularies: job kinds (with their retry and lease settings) and statuses
-- ---------------------------------------------------------------------------

create table job_kinds (
  kind         text     not null,
  position     smallint not null,
  description  text,
  -- Claims before a failing job is dead-lettered.
  max_attempts integer  not null default 5,
  -- Seconds a claim (or heartbeat) holds the job; a worker that stops
  -- heartbeating loses it after this long and another may claim it.
  lease_secs   integer  not null default 60,
  -- Base of the exponential backoff after a retryable failure: attempt n
  -- waits between b*2^(n-1) and b*2^n seconds (capped at an hour).
  backoff_secs double precision not null default 10,
  constraint job_kinds_pkey primary key (kind),
  constraint job_kinds_position_key unique (position),
  constraint job_kinds_kind_check check (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' and length(kind) <= 60),
  constraint job_kinds_max_attempts_check check (max_attempts between 1 and 100),
  constraint job_kinds_lease_secs_check check (lease_secs between 5 and 86400),
  constraint job_kinds_backoff_secs_check check (backoff_secs > 0 and backoff_secs <= 3600)
);
comment on table job_kinds is
  'Vocabulary: the kinds of background jobs (jobs.kind), with their retry and lease settings; a worker has one handler per kind.';
insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs) values
  ('import.process',    1, 'process a staged import, batch by batch, as the user who uploaded it', 10, 120, 5),
  ('idempotency.purge', 2, 'delete expired idempotency keys (all tenants)',                           3,  300, 30),
  ('storage.sweep',     3, 'remove the stored bytes of dead uploads (all tenants)',                   3,  300, 30),
  ('email.send',        4, 'deliver one e-mail of the outbox over SMTP',                              8,  60,  30);
grant select on job_kinds to bizos_authenticated, bizos_worker;

create table job_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint job_statuses_pkey primary key (code),
  constraint job_statuses_position_key unique (position),
  constraint job_statuses_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table job_statuses is 'Vocabulary: the states of a background job (jobs.status; lower case).';
insert into job_statuses (code, position, description) values
  ('queued',    1, 'waiting for a worker (from run_at on)'),
  ('running',   2, 'claimed by a worker, whose lease lasts until locked_until'),
  ('succeeded', 3, 'done'),
  ('dead',      4, 'failed permanently or too often: last_error says why (bizos jobs retry revives it)'),
  ('cancelled', 5, 'cancelled before it finished');
grant select on job_statuses to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------------------
-- jobs
-- ---------------------------------------------------------------------------

create table jobs (
  tenant_id      uuid        not null,
  job_id         uuid        not null default gen_random_uuid(),
  kind           text        not null,
  payload        jsonb       not null default '{}',
  -- Higher first, within a tenant.
  priority       smallint    not null default 0,
  status         text        not null default 'queued',
  -- Claims so far (a claim whose worker died counts too).
  attempts       integer     not null default 0,
  max_attempts   integer     not null,
  -- Not claimed before this time (backoff, scheduled work).
  run_at         timestamptz not null default now(),
  -- The lease of a running job: claimable again once it passed.
  locked_until   timestamptz,
  locked_by      text,
  last_error     text,
  progress_done  bigint,
  progress_total bigint,
  -- At most one job per tenant and key (a second enqueue returns the first).
  dedup_key      text,
  created_by     uuid        default bizos.uid(),
  request_id     text,
  -- W3C trace context (traceparent, tracestate) of the enqueuing span.
  trace_context  jsonb,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  started_at     timestamptz,
  finished_at    timestamptz,
  constraint jobs_pkey primary key (tenant_id, job_id),
  constraint jobs_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint jobs_kind_fkey foreign key (kind) references job_kinds (kind),
  constraint jobs_status_fkey foreign key (status) references job_statuses (code),
  constraint jobs_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint jobs_tenant_id_dedup_key_key unique (tenant_id, dedup_key),
  constraint jobs_payload_check check (jsonb_typeof(payload) = 'object'),
  constraint jobs_priority_check check (priority between -100 and 100),
  constraint jobs_attempts_check check (attempts >= 0),
  constraint jobs_max_attempts_check check (max_attempts between 1 and 100),
  constraint jobs_lease_check check ((status = 'running') = (locked_until is not null and locked_by is not null)),
  constraint jobs_locked_by_check check (length(locked_by) between 1 and 200),
  constraint jobs_last_error_check check (length(last_error) <= 4000),
  constraint jobs_progress_check check (progress_done >= 0 and progress_total >= 0),
  constraint jobs_dedup_key_check check (length(dedup_key) between 1 and 200),
  constraint jobs_request_id_check check (length(request_id) <= 200),
  constraint jobs_trace_context_check check (jsonb_typeof(trace_context) = 'object')
);
comment on table jobs is
  'Background jobs: enqueued in the transaction of the change that causes them, claimed by workers with a lease (FOR UPDATE SKIP LOCKED), retried with backoff, dead-lettered.';
-- The claim: due jobs of one tenant, highest priority first, oldest first.
create index jobs_queued_idx on jobs (tenant_id, priority desc, run_at) where status = 'queued';
-- Leases that ran out (dead workers).
create index jobs_running_idx on jobs (locked_until) where status = 'running';
-- The worker's and the CLI's calls name a job by its id alone.
create index jobs_job_id_idx on jobs (job_id);
create index jobs_kind_status_idx on jobs (kind, status);

create trigger jobs_stamp_timestamps before insert or update on jobs
  for each row execute function stamp_timestamps();
create trigger jobs_keep_created_by before insert or update on jobs
  for each row execute function keep_created_by();

alter table jobs enable row level security;
-- Reading: a user their own jobs; super_admins and directors every job of
-- the tenant; managers the jobs of their team. Nobody writes the table
-- directly: jobs are enqueued by job_enqueue (its insert policy) and change
-- state only through the SECURITY DEFINER functions of sql/api/jobs.sql.
create policy "members read their own jobs, managers their team's, admins and directors all"
  on jobs for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) in ('super_admin', 'director')
              or ((select bizos.app_role()) in ('sales_manager', 'marketing_manager')
                  and created_by = any ((select my_team_ids())::uuid[]))));
create policy "members but directors enqueue their own jobs"
  on jobs for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid())
              and (select bizos.app_role()) <> 'director');
grant select on jobs to bizos_authenticated;
grant insert (tenant_id, kind, payload, priority, max_attempts, run_at, dedup_key, created_by, request_id, trace_context)
  on jobs to bizos_authenticated;

-- Per-tenant fairness of the claim: the last time a job of the tenant was
-- claimed. job_claim serves the tenants with due jobs in this order, one
-- job each per round, so a tenant's backlog never starves another tenant.
-- Written by the claim only (no grants: SECURITY DEFINER functions).
create table job_tenants (
  tenant_id       uuid        not null,
  last_claimed_at timestamptz,
  constraint job_tenants_pkey primary key (tenant_id),
  constraint job_tenants_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade
);
comment on table job_tenants is
  'Tenants that have had jobs and when one of theirs was last claimed: the round-robin order of job_claim.';
alter table job_tenants enable row level security;
-- Nothing secret (a time per tenant): members read their tenant's row.
create policy "members read their tenant's claim order"
  on job_tenants for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on job_tenants to bizos_authenticated;

-- Analytics: payloads may carry what users sent; not shown.
insert into analytics_masking (table_name, column_name, masker) values
  ('jobs', 'payload', 'redact'),
  ('jobs', 'trace_context', 'redact');
