-- Background jobs (migration V21): enqueue in the caller's transaction,
-- claim with a lease (FOR UPDATE SKIP LOCKED), heartbeat, complete, fail
-- with backoff, release, cancel, retry; the views of a job and of the queue.
--
-- Who calls what:
--   job_enqueue          users (bizos_authenticated), in their request's transaction
--   job_enqueue_for,     system work: the owner (CLI, schedules) and the
--   job_enqueue_every_tenant  worker's login for its periodic upkeep
--   job_claim, job_heartbeat, job_complete, job_fail, job_release
--                        the worker's login (bizos_worker) only
--   job_cancel, job_retry  the job's creator or a super_admin of its tenant
--                        (bizos_authenticated), or the owner (CLI)
--   job_listen           the worker's login: it waits for jobs (or no longer)
-- A NOTIFY on channel bizos_jobs (payload: the kind) wakes waiting workers;
-- it is delivered when the enqueuing transaction commits, never before and
-- never for a rollback, and sent only while a worker is listed as waiting
-- (job_wake: a NOTIFY serialises commits cluster-wide).

-- Notes the tenant of a new job for the round-robin of job_claim.
create or replace function jobs_note_tenant() returns trigger
language plpgsql
security definer
as $$
begin
  insert into job_tenants (tenant_id) values (new.tenant_id) on conflict do nothing;
  return null;
end
$$;
select pin_search_path('jobs_note_tenant()');
revoke execute on function jobs_note_tenant() from public;
comment on function jobs_note_tenant() is
  'Trigger of jobs: records the tenant in job_tenants (the order of the claim''s round-robin).';
create or replace trigger jobs_note_tenant after insert on jobs
  for each row execute function jobs_note_tenant();

-- The state of a job as users and the API see it (no payload: it may carry
-- what the job works on; the job's own handler reads it).
create or replace view v_jobs with (security_invoker = true) as
  select j.tenant_id, j.job_id, j.kind, j.status, j.priority, j.attempts, j.max_attempts,
         j.run_at, j.progress_done, j.progress_total, j.last_error, j.dedup_key,
         j.created_by, j.request_id, j.created_at, j.updated_at, j.started_at, j.finished_at
    from jobs j;
comment on view v_jobs is
  'Background jobs the caller may read (RLS of jobs): status, attempts, progress and the last error.';
grant select on v_jobs to bizos_authenticated;

-- job_listen(worker, ttl_secs, kinds) -> whether the worker was listed
-- before: the worker waits for jobs of these kinds (NULL: any; it has free
-- slots and LISTENs on bizos_jobs) until now() + ttl_secs unless it
-- renews; ttl_secs NULL takes it off the
-- list (its slots are full, or it stops). Listing is what makes an enqueue
-- send a NOTIFY (job_wake), which takes the worker off the list again.
create or replace function job_listen(worker text, ttl_secs double precision, kinds text[] default null)
returns boolean
language plpgsql
security definer
as $$
declare
  v_was boolean;
begin
  if worker is null or length(worker) not between 1 and 200 then
    raise exception using errcode = 'P0001', column = 'worker', message = 'worker: must be 1 to 200 characters';
  end if;
  if ttl_secs is null then
    delete from job_listeners l where l.worker = job_listen.worker;
    return found;
  end if;
  if ttl_secs not between 1 and 86400 then
    raise exception using errcode = 'P0001', column = 'ttl_secs', message = 'ttl_secs: must be between 1 and 86400';
  end if;
  select true into v_was from job_listeners l where l.worker = job_listen.worker and l.listening_until > now();
  -- Listings of workers that died long ago (an enqueue takes a live one only).
  delete from job_listeners l where l.listening_until < now() - interval '1 hour';
  insert into job_listeners as l (worker, listening_until, kinds)
  values (job_listen.worker, now() + make_interval(secs => ttl_secs), job_listen.kinds)
  on conflict on constraint job_listeners_pkey
  do update set listening_until = excluded.listening_until, kinds = excluded.kinds;
  return coalesce(v_was, false);
end
$$;
select pin_search_path('job_listen(text, double precision, text[])');
revoke execute on function job_listen(text, double precision, text[]) from public;
grant execute on function job_listen(text, double precision, text[]) to bizos_worker;
comment on function job_listen(text, double precision, text[]) is
  'Worker: lists it as waiting for jobs of the kinds (NULL: any) for ttl_secs (NULL: takes it off the list); returns whether it was listed. Enqueues notify only while a worker of their kind is listed.';

-- job_wake(kind): wakes one worker waiting for jobs of the kind (the
-- wake-ups 'retry' and 'released' any), if any: takes it off the
-- list (job_listeners) and sends a NOTIFY on bizos_jobs, delivered at
-- commit (never for a rollback, which also puts the worker back on the
-- list). A NOTIFY serialises commits cluster-wide, so an enqueue notifies
-- only when a worker waits, and a waiting worker is woken once: enqueues
-- that run meanwhile find it taken (SKIP LOCKED, no wait) or gone and send
-- nothing; the woken worker claims what is due, and lists itself again
-- (then claims once more) before it next waits.
create or replace function job_wake(kind text) returns void
language plpgsql
security definer
as $$
begin
  if exists (select 1 from job_listeners l where l.listening_until > now()) then
    delete from job_listeners l
     where l.ctid = (select w.ctid from job_listeners w
                      where w.listening_until > now()
                        and (w.kinds is null or job_wake.kind = any (w.kinds)
                             or job_wake.kind in ('retry', 'released'))
                      limit 1
                        for update skip locked);
    if found then
      perform pg_notify('bizos_jobs', kind);
    end if;
  end if;
end
$$;
select pin_search_path('job_wake(text)');
revoke execute on function job_wake(text) from public;
grant execute on function job_wake(text) to bizos_authenticated, bizos_worker;
comment on function job_wake(text) is
  'Internal: wakes one waiting worker (takes it off job_listeners, NOTIFY bizos_jobs at commit); nothing when none waits. The wake-up of job_insert, job_retry, job_release and job_fail.';

-- The checks every enqueue makes of its kind, payload and priority: the
-- kind as job_kinds has it and its max_attempts, or P0001 naming the
-- field. OUT columns, not the table's row type: Citus does not propagate
-- to its workers a function that depends on a table, and job_insert runs
-- there (in the triggers of distributed tables).
create or replace function job_checked_kind(kind text, payload jsonb, priority integer,
                                            out checked_kind text, out max_attempts integer)
language plpgsql stable
as $$
begin
  select k.kind, k.max_attempts into checked_kind, max_attempts
    from job_kinds k where k.kind = lower(job_checked_kind.kind);
  if not found then
    perform vocabulary_check('job_kinds', lower(job_checked_kind.kind), 'kind');
    raise exception using errcode = 'P0001', column = 'kind', message = 'kind: is required';
  end if;
  if job_checked_kind.payload is null or jsonb_typeof(job_checked_kind.payload) <> 'object' then
    raise exception using errcode = 'P0001', column = 'payload', message = 'payload: must be a JSON object';
  end if;
  if job_checked_kind.priority is null or job_checked_kind.priority not between -100 and 100 then
    raise exception using errcode = 'P0001', column = 'priority', message = 'priority: must be between -100 and 100';
  end if;
end
$$;
select pin_search_path('job_checked_kind(text, jsonb, integer)');
revoke execute on function job_checked_kind(text, jsonb, integer) from public;
grant execute on function job_checked_kind(text, jsonb, integer) to bizos_authenticated;
comment on function job_checked_kind(text, jsonb, integer) is
  'Internal: the kind and its max_attempts after the checks of an enqueue (known kind, payload an object, priority in -100..100), or P0001 naming the field.';

-- The shared body of job_enqueue and job_enqueue_for: checks, inserts (or
-- finds the job with the same dedup key), notifies. Not callable by
-- itself: it trusts its tenant and creator.
create or replace function job_insert(tenant_id uuid, created_by uuid, kind text, payload jsonb,
                                      run_at timestamptz, priority integer, dedup_key text)
returns uuid
language plpgsql
as $$
declare
  v_kind record;
  v_id uuid;
  v_trace jsonb;
begin
  v_kind := job_checked_kind(job_insert.kind, job_insert.payload, job_insert.priority);
  if job_insert.dedup_key is not null and length(job_insert.dedup_key) not between 1 and 200 then
    raise exception using errcode = 'P0001', column = 'dedup_key', message = 'dedup_key: must be 1 to 200 characters';
  end if;
  v_trace := jsonb_strip_nulls(jsonb_build_object(
    'traceparent', nullif(current_setting('request.traceparent', true), ''),
    'tracestate', nullif(current_setting('request.tracestate', true), '')));
  insert into jobs as j (tenant_id, kind, payload, priority, max_attempts, run_at, dedup_key,
                         created_by, request_id, trace_context)
  values (job_insert.tenant_id, v_kind.checked_kind, job_insert.payload, job_insert.priority, v_kind.max_attempts,
          coalesce(job_insert.run_at, now()), job_insert.dedup_key, job_insert.created_by,
          left(nullif(current_setting('request.id', true), ''), 200),
          case when v_trace = '{}' then null else v_trace end)
  on conflict on constraint jobs_tenant_id_dedup_key_key do nothing
  returning j.job_id into v_id;
  if v_id is null then
    select j.job_id into v_id from jobs j
     where j.tenant_id = job_insert.tenant_id and j.dedup_key = job_insert.dedup_key;
    if v_id is null then
      raise exception using errcode = 'P0001', column = 'dedup_key',
        message = 'dedup_key: another job of this tenant has this key';
    end if;
    return v_id;
  end if;
  if coalesce(job_insert.run_at, now()) <= now() then
    perform job_wake(v_kind.checked_kind);
  end if;
  return v_id;
end
$$;
select pin_search_path('job_insert(uuid, uuid, text, jsonb, timestamp with time zone, integer, text)');
revoke execute on function job_insert(uuid, uuid, text, jsonb, timestamp with time zone, integer, text) from public;
-- Users reach it through job_enqueue; called directly, the insert policy of
-- jobs still holds them to their own tenant and to themselves as creator.
grant execute on function job_insert(uuid, uuid, text, jsonb, timestamp with time zone, integer, text) to bizos_authenticated;
comment on function job_insert(uuid, uuid, text, jsonb, timestamp with time zone, integer, text) is
  'Internal: the checks and the insert of job_enqueue and job_enqueue_for.';

-- job_enqueue(kind, payload, run_at, priority, dedup_key) -> job_id: a job of
-- the caller, in the caller's transaction (it exists only if that commits).
-- The same dedup_key of the tenant returns the existing job.
create or replace function job_enqueue(kind text, payload jsonb default '{}', run_at timestamptz default null,
                                       priority integer default 0, dedup_key text default null)
returns uuid
language plpgsql
as $$
begin
  if bizos.uid() is null or bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  return job_insert(bizos.tenant_id(), bizos.uid(), kind, payload, run_at, priority, dedup_key);
end
$$;
select pin_search_path('job_enqueue(text, jsonb, timestamp with time zone, integer, text)');
revoke execute on function job_enqueue(text, jsonb, timestamp with time zone, integer, text) from public;
grant execute on function job_enqueue(text, jsonb, timestamp with time zone, integer, text) to bizos_authenticated;
comment on function job_enqueue(text, jsonb, timestamp with time zone, integer, text) is
  'Enqueues a job of the caller (tenant and creator from the claims) in the caller''s transaction; returns its id (or that of the tenant''s job with the same dedup_key).';

-- job_enqueue_for(tenant_id, kind, ...) -> job_id: system work of a tenant
-- (no creator), for the owner and the worker's upkeep.
create or replace function job_enqueue_for(tenant_id uuid, kind text, payload jsonb default '{}',
                                           run_at timestamptz default null, priority integer default 0,
                                           dedup_key text default null)
returns uuid
language plpgsql
security definer
as $$
begin
  if not exists (select 1 from tenants t where t.tenant_id = job_enqueue_for.tenant_id) then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', job_enqueue_for.tenant_id);
  end if;
  return job_insert(job_enqueue_for.tenant_id, null, kind, payload, run_at, priority, dedup_key);
end
$$;
select pin_search_path('job_enqueue_for(uuid, text, jsonb, timestamp with time zone, integer, text)');
revoke execute on function job_enqueue_for(uuid, text, jsonb, timestamp with time zone, integer, text) from public;
grant execute on function job_enqueue_for(uuid, text, jsonb, timestamp with time zone, integer, text) to bizos_worker;
comment on function job_enqueue_for(uuid, text, jsonb, timestamp with time zone, integer, text) is
  'Enqueues a system job (no creator) of a tenant; for the owner and the worker. Same dedup_key of the tenant: the existing job.';

-- job_enqueue_for_each(tenant_ids, kind, payload, priority, dedup_keys) ->
-- jobs enqueued: a system job of the kind for each tenant of the array
-- (its dedup key at the same position), in one insert: the month-end's
-- 10,000 tenants, where a job_enqueue_for each cost 0.19 ms. The checks
-- are job_insert's (job_checked_kind), once; a tenant whose job with that key exists is
-- skipped (not counted); an unknown tenant is refused, naming it.
create or replace function job_enqueue_for_each(tenant_ids uuid[], kind text, payload jsonb default '{}',
                                                priority integer default 0, dedup_keys text[] default null)
returns integer
language plpgsql
security definer
as $$
declare
  v_kind record;
  v_missing uuid;
  v_trace jsonb;
  v_n integer;
begin
  v_kind := job_checked_kind(job_enqueue_for_each.kind, job_enqueue_for_each.payload,
                             job_enqueue_for_each.priority);
  if dedup_keys is not null and (cardinality(dedup_keys) <> cardinality(tenant_ids)
                                 or exists (select 1 from unnest(dedup_keys) k where length(k) not between 1 and 200)) then
    raise exception using errcode = 'P0001', column = 'dedup_key',
      message = 'dedup_key: one of 1 to 200 characters for each tenant';
  end if;
  select x.t into v_missing from unnest(tenant_ids) x(t)
   where not exists (select 1 from tenants t where t.tenant_id = x.t) limit 1;
  if found then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', v_missing);
  end if;
  v_trace := jsonb_strip_nulls(jsonb_build_object(
    'traceparent', nullif(current_setting('request.traceparent', true), ''),
    'tracestate', nullif(current_setting('request.tracestate', true), '')));
  insert into jobs as j (tenant_id, kind, payload, priority, max_attempts, run_at, dedup_key,
                         request_id, trace_context)
  select x.t, v_kind.checked_kind, job_enqueue_for_each.payload, job_enqueue_for_each.priority, v_kind.max_attempts,
         now(), x.k, left(nullif(current_setting('request.id', true), ''), 200),
         case when v_trace = '{}' then null else v_trace end
    from unnest(tenant_ids, dedup_keys) x(t, k)
  on conflict on constraint jobs_tenant_id_dedup_key_key do nothing;
  get diagnostics v_n = row_count;
  if v_n > 0 then
    perform job_wake(v_kind.checked_kind);
  end if;
  return v_n;
end
$$;
select pin_search_path('job_enqueue_for_each(uuid[], text, jsonb, integer, text[])');
revoke execute on function job_enqueue_for_each(uuid[], text, jsonb, integer, text[]) from public;
grant execute on function job_enqueue_for_each(uuid[], text, jsonb, integer, text[]) to bizos_worker;
comment on function job_enqueue_for_each(uuid[], text, jsonb, integer, text[]) is
  'Enqueues a system job of the kind for each tenant (dedup key at the same position; an existing one is skipped) in one insert; returns how many were new.';

-- job_enqueue_every_tenant(kind, payload, dedup_key) -> jobs enqueued: one
-- system job per active tenant (periodic upkeep such as the idempotency
-- purge); with a dedup key per period, calling it again in the same period
-- adds nothing.
create or replace function job_enqueue_every_tenant(kind text, payload jsonb default '{}',
                                                    dedup_key text default null)
returns integer
language plpgsql
security definer
as $$
declare
  v_tenants uuid[];
begin
  -- A tenant whose job with the key exists is skipped by the insert
  -- itself (on Citus a reference table's rows cannot be correlated with
  -- a distributed table's).
  select coalesce(array_agg(t.tenant_id order by t.tenant_id), '{}') into v_tenants
    from tenants t
   where t.status = 'active';
  return job_enqueue_for_each(v_tenants, kind, payload, -10,
                              case when job_enqueue_every_tenant.dedup_key is not null
                                   then array_fill(job_enqueue_every_tenant.dedup_key, array[cardinality(v_tenants)]) end);
end
$$;
select pin_search_path('job_enqueue_every_tenant(text, jsonb, text)');
revoke execute on function job_enqueue_every_tenant(text, jsonb, text) from public;
grant execute on function job_enqueue_every_tenant(text, jsonb, text) to bizos_worker;
comment on function job_enqueue_every_tenant(text, jsonb, text) is
  'Enqueues one system job of the kind for every active tenant (skipping tenants that already have one with the dedup key); returns how many.';

-- job_claim(worker, max_jobs, kinds): up to max_jobs due jobs (of the
-- kinds the worker has handlers for; NULL: any), now running under
-- the worker's lease. First, running jobs whose lease ran out (their worker
-- died) are queued again, or dead-lettered when they used up their
-- attempts. Then tenants with due jobs are served round-robin, least
-- recently served first, one job each per round (highest priority, then
-- oldest run_at, within the tenant); rows another claimer holds are skipped.
create or replace function job_claim(worker text, max_jobs integer default 1, kinds text[] default null)
returns table (job_id uuid, tenant_id uuid, kind text, payload jsonb, attempt integer, max_attempts integer,
               created_by uuid, request_id text, trace_context jsonb, progress_done bigint,
               progress_total bigint, lease_secs integer, locked_until timestamptz)
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_job uuid;
  v_lease integer;
  v_until timestamptz;
  v_now timestamptz;
  v_claimed integer := 0;
  v_round integer;
begin
  if worker is null or length(worker) not between 1 and 200 then
    raise exception using errcode = 'P0001', column = 'worker', message = 'worker: must be 1 to 200 characters';
  end if;
  if max_jobs is null or max_jobs < 1 then
    return;
  end if;

  -- Jobs whose lease ran out, one by one, each locked unless another
  -- claimer holds it, and its condition checked again on the locked row
  -- (a job requeued or extended meanwhile is left alone). On Citus a
  -- statement over every tenant's shards cannot lock rows.
  for v_tenant, v_job in
    select e.tenant_id, e.job_id from jobs e
     where e.status = 'running' and e.locked_until < now()
  loop
    perform 1 from jobs j
     where j.tenant_id = v_tenant and j.job_id = v_job
       and j.status = 'running' and j.locked_until < now()
       for update skip locked;
    continue when not found;
    v_now := now();  -- (Citus: no STABLE function inside CASE in an UPDATE)
    update jobs j
       set status = case when j.attempts >= j.max_attempts then 'dead' else 'queued' end,
           finished_at = case when j.attempts >= j.max_attempts then v_now end,
           last_error = left(format('the lease of worker %s ran out (it stopped or died) in attempt %s',
                                    j.locked_by, j.attempts), 4000),
           run_at = v_now, locked_by = null, locked_until = null
     where j.tenant_id = v_tenant and j.job_id = v_job;
  end loop;

  loop
    v_round := 0;
    for v_tenant in
      -- (A tenant without a due job costs the one index probe of the
      -- update below, no more than checking for one first would.)
      select t.tenant_id from job_tenants t
       order by t.last_claimed_at nulls first, t.tenant_id
    loop
      exit when v_claimed >= max_jobs;
      -- The tenant's best due job that no other claimer holds, locked, then
      -- its lease. (Two statements: Citus refuses an UPDATE that passes a
      -- column to a STABLE function, as the lease's `now() + interval`
      -- with the kind's lease_secs would.)
      select q.job_id, k.lease_secs into v_job, v_lease
        from jobs q
        join job_kinds k on k.kind = q.kind
       where q.tenant_id = v_tenant and q.status = 'queued' and q.run_at <= now()
         and (kinds is null or q.kind = any (kinds))
       order by q.priority desc, q.run_at, q.job_id
       limit 1
         for update of q skip locked;
      continue when not found;
      v_until := now() + make_interval(secs => v_lease);
      v_now := now();
      update jobs j
         set status = 'running', attempts = j.attempts + 1, locked_by = worker,
             locked_until = v_until, started_at = coalesce(j.started_at, v_now), finished_at = null
       where j.tenant_id = v_tenant and j.job_id = v_job
      returning j.job_id, j.tenant_id, j.kind, j.payload, j.attempts, j.max_attempts, j.created_by,
                j.request_id, j.trace_context, j.progress_done, j.progress_total, v_lease, j.locked_until
           into job_id, tenant_id, kind, payload, attempt, max_attempts, created_by, request_id,
                trace_context, progress_done, progress_total, lease_secs, locked_until;
      continue when not found;
      -- The round-robin's clock. A claimer serving the same tenant at this
      -- moment holds the row and sets it too: skip it rather than wait.
      v_now := clock_timestamp();  -- (Citus: no VOLATILE function in an UPDATE)
      update job_tenants t set last_claimed_at = v_now
       where t.tenant_id = v_tenant
         and t.ctid = (select s.ctid from job_tenants s where s.tenant_id = v_tenant
                          for update skip locked);
      v_claimed := v_claimed + 1;
      v_round := v_round + 1;
      return next;
    end loop;
    exit when v_round = 0 or v_claimed >= max_jobs;
  end loop;
end
$$;
select pin_search_path('job_claim(text, integer, text[])');
revoke execute on function job_claim(text, integer, text[]) from public;
grant execute on function job_claim(text, integer, text[]) to bizos_worker;
comment on function job_claim(text, integer, text[]) is
  'Worker: claims up to max_jobs due jobs (round-robin over tenants, priority within one), requeueing jobs whose lease ran out first.';

-- The worker's calls below take the job's tenant (job_claim returned it):
-- on Citus a statement is routed to the tenant's worker only by the value
-- of tenant_id. Without it (other callers, tests) the tenant is looked up
-- by job_id first, over every tenant.
create or replace function job_tenant_of(job_id uuid) returns uuid
language sql stable
as $$
  select j.tenant_id from jobs j where j.job_id = job_tenant_of.job_id
$$;
select pin_search_path('job_tenant_of(uuid)');
revoke execute on function job_tenant_of(uuid) from public;

-- job_heartbeat(job_id, worker, done, total) -> still ours: extends the
-- lease by the kind's lease_secs and records progress (NULL keeps it).
-- False when the job is no longer running under this worker (cancelled,
-- or its lease ran out and it was claimed again): stop working on it.
drop function if exists job_heartbeat(uuid, text, bigint, bigint);
create or replace function job_heartbeat(job_id uuid, worker text, done bigint default null,
                                         total bigint default null, tenant uuid default null)
returns boolean
language plpgsql
security definer
as $$
declare
  v_tenant uuid := coalesce(job_heartbeat.tenant, job_tenant_of(job_heartbeat.job_id));
  v_until timestamptz;
begin
  -- The lease first, then the update with it: Citus refuses an UPDATE
  -- that passes a column to a STABLE function (now() + the kind's lease).
  select now() + make_interval(secs => k.lease_secs) into v_until
    from jobs j join job_kinds k on k.kind = j.kind
   where j.tenant_id = v_tenant and j.job_id = job_heartbeat.job_id;
  update jobs j
     set locked_until = v_until,
         progress_done = coalesce(job_heartbeat.done, j.progress_done),
         progress_total = coalesce(job_heartbeat.total, j.progress_total)
   where j.tenant_id = v_tenant and j.job_id = job_heartbeat.job_id
     and j.status = 'running' and j.locked_by = job_heartbeat.worker;
  return found;
end
$$;
select pin_search_path('job_heartbeat(uuid, text, bigint, bigint, uuid)');
revoke execute on function job_heartbeat(uuid, text, bigint, bigint, uuid) from public;
grant execute on function job_heartbeat(uuid, text, bigint, bigint, uuid) to bizos_worker;
comment on function job_heartbeat(uuid, text, bigint, bigint, uuid) is
  'Worker: extends the lease of a running job and records its progress; false when the job is no longer this worker''s (cancelled, or lease lost).';

-- job_complete(job_id, worker) -> whether it was this worker's running job.
drop function if exists job_complete(uuid, text);
create or replace function job_complete(job_id uuid, worker text, tenant uuid default null)
returns boolean
language plpgsql
security definer
as $$
declare
  v_tenant uuid := coalesce(job_complete.tenant, job_tenant_of(job_complete.job_id));
begin
  update jobs j
     set status = 'succeeded', finished_at = now(), locked_by = null, locked_until = null,
         progress_done = coalesce(j.progress_total, j.progress_done)
   where j.tenant_id = v_tenant and j.job_id = job_complete.job_id
     and j.status = 'running' and j.locked_by = job_complete.worker;
  return found;
end
$$;
select pin_search_path('job_complete(uuid, text, uuid)');
revoke execute on function job_complete(uuid, text, uuid) from public;
grant execute on function job_complete(uuid, text, uuid) to bizos_worker;
comment on function job_complete(uuid, text, uuid) is
  'Worker: marks its running job succeeded; false when it was no longer this worker''s.';

-- job_fail(job_id, worker, error, retryable) -> the job's new status (NULL:
-- not this worker's running job). A retryable failure with attempts left
-- queues it again after an exponential backoff with jitter: attempt n waits
-- between b*2^(n-1) and b*2^n seconds (b = the kind's backoff_secs; capped
-- at an hour), so every wait is at least the previous one's maximum.
-- Otherwise the job is dead, with the error.
drop function if exists job_fail(uuid, text, text, boolean);
create or replace function job_fail(job_id uuid, worker text, error text, retryable boolean default true,
                                    tenant uuid default null)
returns text
language plpgsql
security definer
as $$
declare
  v_tenant uuid := coalesce(job_fail.tenant, job_tenant_of(job_fail.job_id));
  v_attempts integer;
  v_max integer;
  v_backoff double precision;
  v_status text;
  v_run_at timestamptz;
  v_finished timestamptz;
begin
  -- The new state first, from the locked row, then the update with it:
  -- Citus refuses VOLATILE functions (random()) and STABLE ones given a
  -- column in an UPDATE.
  select j.attempts, j.max_attempts, k.backoff_secs into v_attempts, v_max, v_backoff
    from jobs j join job_kinds k on k.kind = j.kind
   where j.tenant_id = v_tenant and j.job_id = job_fail.job_id
     and j.status = 'running' and j.locked_by = job_fail.worker
     for update of j;
  if not found then
    return null;
  end if;
  if job_fail.retryable and v_attempts < v_max then
    v_status := 'queued';
    v_run_at := now() + make_interval(secs => least(3600.0, v_backoff * power(2, v_attempts - 1) * (1 + random())));
  else
    v_status := 'dead';
    v_finished := now();
  end if;
  update jobs j
     set status = v_status,
         run_at = coalesce(v_run_at, j.run_at),
         finished_at = v_finished,
         last_error = left(coalesce(nullif(job_fail.error, ''), 'failed without a message'), 4000),
         locked_by = null, locked_until = null
   where j.tenant_id = v_tenant and j.job_id = job_fail.job_id;
  if v_status = 'queued' then
    -- Woken workers see it as not due yet and sleep until it is.
    perform job_wake('retry');
  end if;
  return v_status;
end
$$;
select pin_search_path('job_fail(uuid, text, text, boolean, uuid)');
revoke execute on function job_fail(uuid, text, text, boolean, uuid) from public;
grant execute on function job_fail(uuid, text, text, boolean, uuid) to bizos_worker;
comment on function job_fail(uuid, text, text, boolean, uuid) is
  'Worker: records a failure; retryable with attempts left: queued again after exponential backoff with jitter, else dead. Returns the new status (NULL: not this worker''s job).';

-- job_release(job_id, worker) -> whether released: a worker shutting down
-- gives back a job it did not finish; queued again at once, and the claim
-- does not count as an attempt.
drop function if exists job_release(uuid, text);
create or replace function job_release(job_id uuid, worker text, tenant uuid default null)
returns boolean
language plpgsql
security definer
as $$
declare
  v_tenant uuid := coalesce(job_release.tenant, job_tenant_of(job_release.job_id));
begin
  update jobs j
     set status = 'queued', attempts = greatest(j.attempts - 1, 0), run_at = now(),
         locked_by = null, locked_until = null
   where j.tenant_id = v_tenant and j.job_id = job_release.job_id
     and j.status = 'running' and j.locked_by = job_release.worker;
  if found then
    perform job_wake('released');
    return true;
  end if;
  return false;
end
$$;
select pin_search_path('job_release(uuid, text, uuid)');
revoke execute on function job_release(uuid, text, uuid) from public;
grant execute on function job_release(uuid, text, uuid) to bizos_worker;
comment on function job_release(uuid, text, uuid) is
  'Worker: gives back a running job without counting the attempt (graceful shutdown).';

-- A handler that does the work of many jobs of its kind at once (one
-- transaction for many tenants: the month-end run, billing.sql) takes the
-- kind's other queued, due jobs in its own transaction with job_take:
-- locked, so no claimer gets them meanwhile (job_claim skips locked rows),
-- and marks each it did succeeded with job_succeed_taken in the same
-- transaction as the work. They are done exactly when that work commits,
-- and still queued, untouched, if it rolls back. Definer functions of the
-- owner call them; no login does.
create or replace function job_take(kind text, max_jobs integer, except_tenant uuid default null)
returns table (tenant_id uuid, job_id uuid)
language sql
security definer
as $$
  select j.tenant_id, j.job_id from jobs j
   where j.kind = job_take.kind and j.status = 'queued' and j.run_at <= now()
     and j.tenant_id is distinct from job_take.except_tenant
   order by j.priority desc, j.run_at, j.job_id
   limit greatest(job_take.max_jobs, 0)
     for update skip locked
$$;
select pin_search_path('job_take(text, integer, uuid)');
revoke execute on function job_take(text, integer, uuid) from public;
comment on function job_take(text, integer, uuid) is
  'Locks up to max_jobs queued due jobs of the kind (not of except_tenant) for the caller''s transaction, which does their work and marks them with job_succeed_taken.';

drop function if exists job_succeed_taken(uuid, uuid, bigint);
create or replace function job_succeed_taken(tenants uuid[], job_ids uuid[], done bigint[]) returns integer
language plpgsql
security definer
as $$
declare
  v_now constant timestamptz := now();
  v_n integer;
begin
  update jobs j
     set status = 'succeeded', attempts = j.attempts + 1, started_at = coalesce(j.started_at, v_now),
         finished_at = v_now, progress_done = x.done, progress_total = x.done
    from unnest(job_succeed_taken.tenants, job_succeed_taken.job_ids, job_succeed_taken.done)
         as x(tenant_id, job_id, done)
   where j.tenant_id = x.tenant_id and j.job_id = x.job_id and j.status = 'queued';
  get diagnostics v_n = row_count;
  return v_n;
end
$$;
select pin_search_path('job_succeed_taken(uuid[], uuid[], bigint[])');
revoke execute on function job_succeed_taken(uuid[], uuid[], bigint[]) from public;
comment on function job_succeed_taken(uuid[], uuid[], bigint[]) is
  'Marks jobs taken with job_take succeeded (one attempt, progress done of done; the arrays side by side), in the transaction that did their work; how many.';

-- Whether the caller may cancel or retry the job: the owner (no claims:
-- the CLI), or a user of the job's tenant who created it or is its
-- super_admin. P0002 when the caller cannot see it.
create or replace function job_for_control(job_id uuid) returns jobs
language plpgsql
as $$
declare
  -- A variable, so that Citus can route the row lock by it.
  v_tenant uuid := bizos.tenant_id();
  r jobs;
begin
  if bizos.uid() is null then
    if not pg_has_role(session_user, 'bizos_owner', 'member') then
      raise exception using errcode = '42501', message = 'no user in the request claims';
    end if;
    select * into r from jobs j where j.job_id = job_for_control.job_id for update;
  else
    select * into r from jobs j
     where j.job_id = job_for_control.job_id and j.tenant_id = v_tenant
       and (j.created_by = bizos.uid() or bizos.app_role() = 'super_admin')
       for update;
  end if;
  if r.job_id is null then
    raise exception using errcode = 'P0002', column = 'job_id',
      message = format('job_id: no job %s of yours', job_for_control.job_id);
  end if;
  return r;
end
$$;
select pin_search_path('job_for_control(uuid)');
revoke execute on function job_for_control(uuid) from public;
comment on function job_for_control(uuid) is
  'Internal: the job (locked) if the caller may cancel or retry it (its creator, a super_admin of its tenant, or the owner); else P0002/42501.';

-- job_cancel(job_id) -> the job (v_jobs): a queued or running job is
-- cancelled (a running one's worker learns it at its next heartbeat and
-- stops); a finished one is refused.
create or replace function job_cancel(job_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  r jobs := job_for_control(job_cancel.job_id);
begin
  if r.status not in ('queued', 'running') then
    raise exception using errcode = 'P0001', column = 'status',
      message = format('status: the job is %s; only a queued or running job can be cancelled', r.status);
  end if;
  update jobs j set status = 'cancelled', finished_at = now(), locked_by = null, locked_until = null
   where j.tenant_id = r.tenant_id and j.job_id = r.job_id;
  return (select to_jsonb(v) from v_jobs v where v.tenant_id = r.tenant_id and v.job_id = r.job_id);
end
$$;
select pin_search_path('job_cancel(uuid)');
revoke execute on function job_cancel(uuid) from public;
grant execute on function job_cancel(uuid) to bizos_authenticated;
comment on function job_cancel(uuid) is
  'Cancels a queued or running job (its creator, a super_admin of its tenant, or the owner); returns the job.';

-- job_retry(job_id) -> the job: a dead or cancelled job is queued again,
-- now, with fresh attempts (its last error stays until the next outcome).
create or replace function job_retry(job_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  r jobs := job_for_control(job_retry.job_id);
begin
  if r.status not in ('dead', 'cancelled') then
    raise exception using errcode = 'P0001', column = 'status',
      message = format('status: the job is %s; only a dead or cancelled job can be retried', r.status);
  end if;
  update jobs j set status = 'queued', attempts = 0, run_at = now(), finished_at = null
   where j.tenant_id = r.tenant_id and j.job_id = r.job_id;
  perform job_wake(r.kind);
  return (select to_jsonb(v) from v_jobs v where v.tenant_id = r.tenant_id and v.job_id = r.job_id);
end
$$;
select pin_search_path('job_retry(uuid)');
revoke execute on function job_retry(uuid) from public;
grant execute on function job_retry(uuid) to bizos_authenticated;
comment on function job_retry(uuid) is
  'Queues a dead or cancelled job again with fresh attempts (its creator, a super_admin of its tenant, or the owner); returns the job.';

-- The operator's view of the queue, per kind: depth, what is running,
-- leases that ran out, dead letters. Read by the owner (psql, the CLI) and
-- the worker's login; analysts read the masked analytics views of jobs
-- instead (they select from analytics only). All tenants: the worker
-- reports queue depth per kind (metrics).
create or replace view job_queue as
  select k.kind,
         count(j.job_id) filter (where j.status = 'queued')                        as queued,
         count(j.job_id) filter (where j.status = 'queued' and j.run_at <= now())  as due,
         count(j.job_id) filter (where j.status = 'running')                       as running,
         count(j.job_id) filter (where j.status = 'running' and j.locked_until < now()) as expired_leases,
         count(j.job_id) filter (where j.status = 'dead')                          as dead,
         count(j.job_id) filter (where j.status = 'cancelled')                     as cancelled,
         count(j.job_id) filter (where j.status = 'succeeded')                     as succeeded,
         extract(epoch from now() - min(j.run_at) filter (where j.status = 'queued' and j.run_at <= now()))
                                                                                     as oldest_due_secs,
         max(j.finished_at) filter (where j.status = 'dead')                       as last_dead_at
    from job_kinds k
    left join jobs j on j.kind = k.kind
   group by k.kind, k.position
   order by k.position;
comment on view job_queue is
  'Operators: per job kind, the queue depth (queued, due), running jobs, expired leases and dead letters (all tenants; the owner and the worker).';
grant select on job_queue to bizos_worker;

-- Dead letters with their last error, for operators (the owner).
create or replace view job_dead_letters as
  select j.kind, j.job_id, j.attempts, j.last_error, j.finished_at, j.created_at
    from jobs j
   where j.status = 'dead';
comment on view job_dead_letters is
  'Operators: dead jobs with their last error (all tenants; the owner).';
