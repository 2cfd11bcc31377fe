-- Schedules: recurring jobs of a tenant in the tenant's own time zone
-- (table: V22__schedules.sql). pg_cron calls schedules_fire() every minute;
-- each due schedule enqueues one job per period (the tenant's local date of
-- the occurrence), deduplicated by '<schedule_id>:<period>'.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- Local times that a zone skips or repeats (daylight saving time):
-- * skipped (a spring-forward night, 02:30 in America/New_York on
--   2026-03-08): the occurrence runs as far after the jump as the wall time
--   lies after its start (02:30 -> 03:30 local), once, on that date;
-- * repeated (a fall-back night, 01:30 in America/New_York on 2026-11-01):
--   the occurrence runs at the first of the two instants, once (the period
--   is the date, so the second 01:30 never fires again).
-- Missed occurrences (pg_cron or the database down, a suspended tenant):
-- the next call fires only the latest missed occurrence, once (a digest of
-- yesterday and of the day before would be stale anyway), then moves on to
-- the next occurrence after now.

-- The first instant whose wall clock in `time_zone` reads `local`; a wall
-- time skipped by a transition comes out shifted forward by the gap.
create or replace function schedule_instant(local timestamp, time_zone text) returns timestamptz
language plpgsql stable strict
as $$
declare
  -- PostgreSQL's reading: standard time for a repeated wall time, and the
  -- offset before the jump for a skipped one (so it lands after the jump).
  pg_choice timestamptz := local at time zone time_zone;
  best timestamptz;
  c timestamptz;
  off interval;
begin
  -- Offsets in effect a day either side cover any transition near `local`.
  for off in
    select distinct (x at time zone time_zone) - (x at time zone 'UTC')
      from unnest(array[pg_choice - interval '1 day', pg_choice, pg_choice + interval '1 day']) x
  loop
    c := (local - off) at time zone 'UTC';
    if (c at time zone time_zone) = local and (best is null or c < best) then
      best := c;
    end if;
  end loop;
  return coalesce(best, pg_choice);
end
$$;
comment on function schedule_instant(timestamp, text) is
  'The first instant at which the wall clock of the zone reads the local time; a skipped local time is shifted forward by the gap.';
grant execute on function schedule_instant(timestamp, text) to bizos_authenticated;

-- The occurrences of a recurrence on the local dates from_day .. to_day:
-- the period (local date) and the instant it runs at.
create or replace function schedule_occurrences(at_time time, days_of_week smallint[], time_zone text,
                                                from_day date, to_day date)
returns table (period date, run_at timestamptz)
language sql stable
as $$
  select d::date, schedule_instant(d::date + at_time, time_zone)
    from generate_series(from_day::timestamp, to_day::timestamp, interval '1 day') d
   where days_of_week is null or extract(isodow from d)::smallint = any (days_of_week)
   order by 1
$$;
grant execute on function schedule_occurrences(time, smallint[], text, date, date) to bizos_authenticated;

-- Refuses a recurrence the table would refuse, naming the field (the pure
-- functions are callable directly, and the RPCs check with them).
create or replace function schedule_check_recurrence(at_time time, days_of_week smallint[], time_zone text)
returns void
language plpgsql stable
as $$
begin
  if at_time is null then
    perform raise_field('at', 'is required');
  end if;
  if date_trunc('minute', at_time::interval) <> at_time::interval then
    perform raise_field('at', 'must be a whole minute (HH:MM)');
  end if;
  if days_of_week is not null and (
       cardinality(days_of_week) = 0 or array_position(days_of_week, null) is not null
       or not (1 <= all (days_of_week) and 7 >= all (days_of_week))) then
    perform raise_field('days', 'must be ISO days of week 1 (Monday) .. 7 (Sunday), at least one');
  end if;
  if time_zone is null then
    perform raise_field('time_zone', 'is required');
  end if;
end
$$;
grant execute on function schedule_check_recurrence(time, smallint[], text) to bizos_authenticated;

-- The first occurrence strictly after `after`.
create or replace function schedule_next_run(at_time time, days_of_week smallint[], time_zone text,
                                             after timestamptz)
returns timestamptz
language plpgsql stable
as $$
declare
  v_day date;
begin
  perform schedule_check_recurrence(at_time, days_of_week, time_zone);
  if after is null then
    perform raise_field('after', 'is required');
  end if;
  v_day := (after at time zone time_zone)::date;
  -- From the day before (an occurrence's instant may fall on the previous
  -- local date around a transition) to a week after.
  return (select min(o.run_at)
            from schedule_occurrences(at_time, days_of_week, time_zone, v_day - 1, v_day + 8) o
           where o.run_at > after);
end
$$;
comment on function schedule_next_run(time, smallint[], text, timestamptz) is
  'The first occurrence after `after` of "at_time local, on days_of_week (ISO; NULL every day)" in time_zone.';
grant execute on function schedule_next_run(time, smallint[], text, timestamptz) to bizos_authenticated;

-- The latest occurrence at or before `not_after` (the one a catch-up fires).
create or replace function schedule_latest_run(at_time time, days_of_week smallint[], time_zone text,
                                               not_after timestamptz)
returns table (period date, run_at timestamptz)
language plpgsql stable
as $$
declare
  v_day date;
begin
  perform schedule_check_recurrence(at_time, days_of_week, time_zone);
  v_day := (not_after at time zone time_zone)::date;
  return query
    select o.period, o.run_at
      from schedule_occurrences(at_time, days_of_week, time_zone, v_day - 8, v_day + 1) o
     where o.run_at <= not_after
     order by o.run_at desc
     limit 1;
end
$$;
grant execute on function schedule_latest_run(time, smallint[], text, timestamptz) to bizos_authenticated;

-- The tenant's zone, for the trigger below (which runs as the owner, so
-- that it reads the zone whatever the writer may read of tenants); not
-- callable by users.
create or replace function schedule_time_zone(tenant uuid) returns text
language sql stable security definer
as $$
  select t.time_zone from tenants t where t.tenant_id = tenant
$$;
select pin_search_path('schedule_time_zone(uuid)');
revoke execute on function schedule_time_zone(uuid) from public;

-- next_run_at follows the recurrence: computed on insert, recomputed when
-- the time, the days or the time zone change or the schedule is switched
-- back on (from now: periods missed while inactive are not fired).
create or replace function schedules_before_write() returns trigger
language plpgsql security definer
as $$
begin
  if tg_op = 'INSERT'
     or new.at_time is distinct from old.at_time
     or new.days_of_week is distinct from old.days_of_week
     or (new.active and not old.active) then
    new.next_run_at := schedule_next_run(new.at_time, new.days_of_week,
                                         schedule_time_zone(new.tenant_id), pg_catalog.now());
  end if;
  return new;
end
$$;
select pin_search_path('schedules_before_write()');
revoke execute on function schedules_before_write() from public;
create or replace trigger schedules_compute_next_run before insert or update on schedules
  for each row execute function schedules_before_write();

-- A tenant's new time zone moves its schedules' next runs (the wall time
-- stays, the instant changes). A period already fired does not fire again
-- (schedules_fire skips last_fired_period; the job's dedup key too).
-- One schedule at a time, with the times as parameters: on Citus an
-- UPDATE of a distributed table may not pass its columns to a STABLE
-- function.
create or replace function schedules_reschedule(tenant uuid, time_zone text) returns void
language plpgsql security definer
as $$
declare
  r record;
begin
  for r in select s.schedule_id, s.at_time, s.days_of_week from schedules s where s.tenant_id = tenant loop
    update schedules s
       set next_run_at = schedule_next_run(r.at_time, r.days_of_week, schedules_reschedule.time_zone, pg_catalog.now())
     where s.tenant_id = tenant and s.schedule_id = r.schedule_id;
  end loop;
end
$$;
select pin_search_path('schedules_reschedule(uuid, text)');
revoke execute on function schedules_reschedule(uuid, text) from public;

create or replace function tenants_reschedule() returns trigger
language plpgsql security definer
as $$
begin
  perform schedules_reschedule(new.tenant_id, new.time_zone);
  return null;
end
$$;
select pin_search_path('tenants_reschedule()');
revoke execute on function tenants_reschedule() from public;
create or replace trigger tenants_reschedule_on_time_zone after update of time_zone on tenants
  for each row when (new.time_zone is distinct from old.time_zone)
  execute function tenants_reschedule();

-- tenant_set_time_zone(tenant, time_zone): the owner's way to move a tenant
-- to another time zone on both a single node (the trigger above moves the
-- schedules) and Citus, where `tenants` is a reference table whose
-- triggers would run on every node's copy: there the trigger is dropped
-- (sql/citus/triggers.sql) and this function moves the schedules.
create or replace function tenant_set_time_zone(tenant uuid, time_zone text) returns void
language plpgsql
as $$
begin
  update tenants t set time_zone = tenant_set_time_zone.time_zone where t.tenant_id = tenant;
  if not found then
    raise exception using errcode = 'P0002', column = 'tenant_id', message = format('tenant_id: no tenant %s', tenant);
  end if;
  if citus_table('tenants') then
    perform schedules_reschedule(tenant, tenant_set_time_zone.time_zone);
  end if;
end
$$;
select pin_search_path('tenant_set_time_zone(uuid, text)');
revoke execute on function tenant_set_time_zone(uuid, text) from public;

-- What the RPCs answer.
create or replace function schedule_json(s schedules) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'schedule_id', s.schedule_id, 'name', s.name, 'kind', s.kind, 'payload', s.payload,
    'at', to_char(s.at_time, 'HH24:MI'),
    'days', (select jsonb_agg((array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])[d] order by d)
               from unnest(s.days_of_week) d),
    'time_zone', (select t.time_zone from tenants t where t.tenant_id = s.tenant_id),
    'active', s.active, 'next_run_at', s.next_run_at,
    'last_fired_period', s.last_fired_period, 'last_fired_at', s.last_fired_at,
    'last_job_id', s.last_job_id)
$$;
grant execute on function schedule_json(schedules) to bizos_authenticated;

-- payload.at ("HH:MM", 24 hours).
create or replace function schedule_payload_at(payload jsonb, required boolean) returns time
language plpgsql stable
as $$
declare
  s text := payload_text(payload, 'at', required, 10);
begin
  if s is not null and s !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
    perform raise_field('at', 'must be a time of day HH:MM (00:00 .. 23:59)');
  end if;
  return s::time;
end
$$;
grant execute on function schedule_payload_at(jsonb, boolean) to bizos_authenticated;

-- payload.days (["mon", "thu"]): ISO numbers, ascending, without repeats;
-- NULL when absent or null (every day).
create or replace function schedule_payload_days(payload jsonb) returns smallint[]
language plpgsql stable
as $$
declare
  names constant text[] := array['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  v jsonb := payload -> 'days';
  bad text;
begin
  if v is null or jsonb_typeof(v) = 'null' then
    return null;
  end if;
  if jsonb_array_length(v) = 0 then
    perform raise_field('days', 'name at least one day (or leave it out for every day)');
  end if;
  select format('days[%s]', x.i - 1) into bad
    from jsonb_array_elements_text(v) with ordinality as x(e, i)
   where array_position(names, lower(btrim(x.e))) is null
   order by x.i limit 1;
  if bad is not null then
    perform raise_field(bad, 'must be one of ' || array_to_string(names, ', '));
  end if;
  return (select array_agg(d order by d)
            from (select distinct array_position(names, lower(btrim(e)))::smallint as d
                    from jsonb_array_elements_text(v) e) x);
end
$$;
grant execute on function schedule_payload_days(jsonb) to bizos_authenticated;

-- payload.kind: a job kind (the job_kinds vocabulary), folded to lower case.
create or replace function schedule_payload_kind(payload jsonb, required boolean) returns text
language plpgsql stable
as $$
begin
  return vocabulary_check('job_kinds', lower(payload_text(payload, 'kind', required, 100)), 'kind');
end
$$;
grant execute on function schedule_payload_kind(jsonb, boolean) to bizos_authenticated;

-- job_payload: the JSON object each job gets (NULL: keep / empty).
create or replace function schedule_job_payload(job_payload jsonb) returns jsonb
language plpgsql immutable
as $$
begin
  if job_payload is not null and jsonb_typeof(job_payload) <> 'object' then
    perform raise_field('job_payload', 'must be a JSON object');
  end if;
  if length(job_payload::text) > 65536 then
    perform raise_field('job_payload', 'at most 64 KiB');
  end if;
  return job_payload;
end
$$;
grant execute on function schedule_job_payload(jsonb) to bizos_authenticated;

-- schedule_create({name, kind, at: "HH:MM", days?: ["mon", ..], active?},
--                 job_payload?) -> the schedule (schedule_json).
-- The job payload is an argument of its own: it is the job's, free-form,
-- not a field of the schedule.
create or replace function schedule_create(payload jsonb, job_payload jsonb default null) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_name text;
  v_kind text;
  v_at time;
  v_days smallint[];
  v_active boolean;
  v_job jsonb;
  r schedules;
begin
  perform require_permission('schedule.manage');
  perform payload_check(payload, '{"name": "text", "kind": "text", "at": "text", "days": "text[]", "active": "boolean"}');
  v_name := payload_text(payload, 'name', true, 100);
  v_kind := schedule_payload_kind(payload, true);
  v_at := schedule_payload_at(payload, true);
  v_days := schedule_payload_days(payload);
  v_active := coalesce(payload_bool(payload, 'active'), true);
  v_job := coalesce(schedule_job_payload(job_payload), '{}'::jsonb);
  begin
    insert into schedules (tenant_id, name, kind, payload, at_time, days_of_week, active)
    values (v_tenant, v_name, v_kind, v_job, v_at, v_days, v_active)
    returning * into r;
  exception when unique_violation then
    raise exception using errcode = '23505', column = 'name', constraint = 'schedules_tenant_id_name_key',
      message = format('name: the tenant already has a schedule named %L', v_name);
  end;
  return schedule_json(r);
end
$$;
grant execute on function schedule_create(jsonb, jsonb) to bizos_authenticated;

-- schedule_update(schedule_id, {name?, kind?, at?, days?, active?}, job_payload?)
-- A field left out (or null) keeps its value, except days: null means every
-- day. job_payload NULL keeps the payload.
create or replace function schedule_update(schedule_id uuid, payload jsonb, job_payload jsonb default null)
returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_job jsonb;
  r schedules;
begin
  perform require_permission('schedule.manage');
  perform payload_check(payload, '{"name": "text", "kind": "text", "at": "text", "days": "text[]", "active": "boolean"}');
  select * into r from schedules s
   where s.tenant_id = v_tenant and s.schedule_id = schedule_update.schedule_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'schedule_id',
      message = 'schedule_id: no schedule with this id in the tenant';
  end if;
  r.name := coalesce(payload_text(payload, 'name', false, 100), r.name);
  r.kind := coalesce(schedule_payload_kind(payload, false), r.kind);
  r.at_time := coalesce(schedule_payload_at(payload, false), r.at_time);
  if payload ? 'days' then
    r.days_of_week := schedule_payload_days(payload);
  end if;
  r.active := coalesce(payload_bool(payload, 'active'), r.active);
  v_job := schedule_job_payload(job_payload);
  begin
    update schedules s
       set name = r.name, kind = r.kind, at_time = r.at_time, days_of_week = r.days_of_week,
           active = r.active, payload = coalesce(v_job, s.payload)
     where s.tenant_id = v_tenant and s.schedule_id = schedule_update.schedule_id
    returning * into r;
  exception when unique_violation then
    raise exception using errcode = '23505', column = 'name', constraint = 'schedules_tenant_id_name_key',
      message = format('name: the tenant already has a schedule named %L', r.name);
  end;
  return schedule_json(r);
end
$$;
grant execute on function schedule_update(uuid, jsonb, jsonb) to bizos_authenticated;

-- schedule_delete(schedule_id) -> {schedule_id, deleted: true}. Jobs it
-- enqueued stay (they are the tenant's history).
create or replace function schedule_delete(schedule_id uuid) returns jsonb
language plpgsql
as $$
begin
  perform require_permission('schedule.manage');
  delete from schedules s
   where s.tenant_id = bizos.tenant_id() and s.schedule_id = schedule_delete.schedule_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'schedule_id',
      message = 'schedule_id: no schedule with this id in the tenant';
  end if;
  return jsonb_build_object('schedule_id', schedule_delete.schedule_id, 'deleted', true);
end
$$;
grant execute on function schedule_delete(uuid) to bizos_authenticated;

-- Fires every due schedule (active, next_run_at <= now, tenant active):
-- enqueues the job of its latest occurrence at or before now with the dedup
-- key '<schedule_id>:<period>' (so two callers, or a retried call, enqueue
-- one job), records the period and moves next_run_at past now. Rows another
-- caller is firing are skipped, not waited for. Returns the number of
-- schedules that enqueued a job. `now` is a parameter so tests simulate the
-- clock; only the owner (pg_cron's job runs as bizos_owner) may call it, so
-- no one can fire a tenant's schedules ahead of time.
create or replace function schedules_fire(now timestamptz default pg_catalog.now()) returns integer
language plpgsql security definer
as $$
declare
  c record;
  s record;
  v_period date;
  v_run_at timestamptz;
  v_job uuid;
  v_fired integer := 0;
begin
  -- The due schedules, then each one locked and checked again on its own
  -- (skipped when another caller holds it or has moved it on): on Citus a
  -- statement over every tenant's shards cannot lock rows.
  for c in
    select sc.tenant_id, sc.schedule_id, t.time_zone
      from schedules sc
      join tenants t on t.tenant_id = sc.tenant_id
     where sc.active and sc.next_run_at <= schedules_fire.now and t.status = 'active'
     order by sc.next_run_at
  loop
    select sc.tenant_id, sc.schedule_id, sc.kind, sc.payload, sc.at_time, sc.days_of_week,
           sc.last_fired_period, c.time_zone as time_zone
      into s
      from schedules sc
     where sc.tenant_id = c.tenant_id and sc.schedule_id = c.schedule_id
       and sc.active and sc.next_run_at <= schedules_fire.now
       for update skip locked;
    continue when not found;
    select l.period, l.run_at into v_period, v_run_at
      from schedule_latest_run(s.at_time, s.days_of_week, s.time_zone, schedules_fire.now) l;
    v_job := null;
    if v_period is not null and v_period is distinct from s.last_fired_period then
      v_job := job_enqueue_for(s.tenant_id, s.kind, s.payload,
                               dedup_key => s.schedule_id::text || ':' || v_period::text);
      v_fired := v_fired + 1;
    end if;
    update schedules sc
       set next_run_at = schedule_next_run(s.at_time, s.days_of_week, s.time_zone, schedules_fire.now),
           last_fired_period = case when v_job is null then sc.last_fired_period else v_period end,
           last_fired_at = case when v_job is null then sc.last_fired_at else schedules_fire.now end,
           last_job_id = coalesce(v_job, sc.last_job_id)
     where sc.tenant_id = s.tenant_id and sc.schedule_id = s.schedule_id;
  end loop;
  return v_fired;
end
$$;
select pin_search_path('schedules_fire(timestamptz)');
revoke execute on function schedules_fire(timestamptz) from public;
comment on function schedules_fire(timestamptz) is
  'Enqueues the job of every due schedule once per period (dedup key schedule_id:period) and advances next_run_at; pg_cron calls it every minute as bizos_owner.';

-- schedules_fire() at the database's own clock, for the worker's login:
-- where pg_cron does not reach the database (pg_cron runs in one database
-- per cluster; an isolated tenant's database in a shared cluster), `bizos
-- worker` may call this every minute. Together with pg_cron it is harmless:
-- callers skip each other's rows and a period has one job. No clock
-- argument: nobody but the owner can fire a period ahead of time.
create or replace function schedules_fire_due() returns integer
language sql security definer
as $$
  select schedules_fire(pg_catalog.now())
$$;
select pin_search_path('schedules_fire_due()');
revoke execute on function schedules_fire_due() from public;
grant execute on function schedules_fire_due() to bizos_worker;
comment on function schedules_fire_due() is
  'schedules_fire() at now(), for the worker where pg_cron does not reach this database.';
