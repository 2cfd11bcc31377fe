-- Usage metering and the plan's caps (migration V53): usage events reported
-- by a tenant's integrations, what a period is billable for
-- (usage_billable), and the checks that hold a tenant to its plan where the
-- usage happens.
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier. Usage is recorded
-- and read where the tenant's requests run (its placement).
--
--   usage_ingest(events)              a batch of 1..1000 events of the
--                                     caller's tenant (usage.report: an API
--                                     key with usage:write, or a super_admin)
--   usage_ingest_for(tenant, events)  the same for system work (owner, worker)
--   usage_billable(tenant, from, to)  per metric: quantity, included,
--                                     overage, unit price, amount, for the
--                                     tenant-local days [from, to)
--   usage_summary()                   the caller's plan, current month and caps
--   usage_seats_check, usage_storage_check   the plan's caps of users and
--                                     stored bytes (triggers on profiles and
--                                     objects; upload_begin)
-- The AI caps are held by llm_begin (llm.sql) in llm_plan_counters.

-- ---------------------------------------------------------------------------
-- who may read and write usage
-- ---------------------------------------------------------------------------

-- With request claims: the claims' tenant, and a role that may read what
-- the tenant is billed (super_admin, director, finance). Without: the
-- worker's or the owner's login (billing runs, the operator).
create or replace function usage_check_reader(tenant uuid) returns void
language plpgsql stable
as $$
begin
  if bizos.tenant_id() is not null or bizos.uid() is not null then
    if tenant is distinct from bizos.tenant_id() then
      raise exception using errcode = '42501', column = 'p_tenant_id',
        message = 'p_tenant_id: not the tenant of the request';
    end if;
    if bizos.app_role() is distinct from 'super_admin' and bizos.app_role() is distinct from 'director'
       and bizos.app_role() is distinct from 'finance' then
      raise exception using errcode = '42501',
        message = 'only a super_admin, director or finance user reads the tenant''s usage';
    end if;
  elsif not (pg_has_role(session_user, 'bizos_worker', 'member')
             or pg_has_role(session_user, 'bizos_owner', 'member')) then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
end
$$;
select pin_search_path('usage_check_reader(uuid)');
revoke execute on function usage_check_reader(uuid) from public;
comment on function usage_check_reader(uuid) is
  'Internal: the caller may read the usage of the tenant (its super_admin, director or finance; or the worker or owner login).';

-- ---------------------------------------------------------------------------
-- ingest
-- ---------------------------------------------------------------------------

-- usage_ingest_into(tenant, events, reported_by) -> {"received",
-- "accepted", "duplicates"}. events: [{"event_id" (the integration's id,
-- 1-200 characters), "code" (a billable metric of source events),
-- "timestamp" (RFC 3339 with an offset; default now), "properties" (an
-- object; the metric's field_name: a number for sum, max and latest, a
-- string or number for unique_count)}, ...]. Every event is checked before
-- any is written (the first bad one is named: events[3].code). An event
-- whose event_id the tenant reported before is a duplicate and changes
-- nothing, whatever it carries. The events and their day aggregates are
-- written by one statement (set-based: a batch of 1,000 costs about what
-- a few single inserts do).
create or replace function usage_ingest_into(tenant uuid, events jsonb, reported_by uuid) returns jsonb
language plpgsql
as $$
declare
  v_zone text;
  v_n integer;
  v_problem text[];
  v_accepted bigint;
  -- RFC 3339 with an offset, the fields in range (a 30 February passes
  -- here and fails the cast as a bad time).
  v_time constant text := '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):?[0-5]\d)$';
  v_number constant text := '^-?\d{1,20}(\.\d{1,20})?$';
begin
  if events is null or jsonb_typeof(events) <> 'array' then
    perform raise_field('events', 'must be a list of events');
  end if;
  v_n := jsonb_array_length(events);
  if v_n < 1 or v_n > 1000 then
    perform raise_field('events', format('must hold 1 to 1000 events (has %s)', v_n));
  end if;
  select t.time_zone into v_zone from tenants t where t.tenant_id = usage_ingest_into.tenant;
  if v_zone is null then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', usage_ingest_into.tenant);
  end if;

  -- The first problem, in the events' order.
  select array[format('events[%s]', e.i - 1) || pr.suffix, pr.problem]
    into v_problem
    from jsonb_array_elements(events) with ordinality e (x, i)
    left join billable_metrics m on jsonb_typeof(e.x) = 'object' and m.code = e.x ->> 'code'
   cross join lateral (
     select case
       when jsonb_typeof(e.x) <> 'object' then array['', 'must be an object']
       when exists (select 1 from jsonb_object_keys(e.x) k
                     where k not in ('code', 'event_id', 'properties', 'timestamp')) then
         array['.' || (select min(k) from jsonb_object_keys(e.x) k
                        where k not in ('code', 'event_id', 'properties', 'timestamp')),
               'unknown field (allowed: code, event_id, properties, timestamp)']
       when jsonb_typeof(e.x -> 'event_id') is distinct from 'string'
            or length(e.x ->> 'event_id') not between 1 and 200 then
         array['.event_id', 'is required: the event''s own id, 1 to 200 characters']
       when jsonb_typeof(e.x -> 'code') is distinct from 'string' then
         array['.code', 'is required: the code of a billable metric']
       when m.code is null then
         array['.code', format('no billable metric %s', e.x ->> 'code')]
       when m.source <> 'events' then
         array['.code', format('%s is metered by bizos itself, not reported', m.code)]
       when jsonb_typeof(e.x -> 'timestamp') not in ('string', 'null') or (e.x ->> 'timestamp') !~ v_time then
         array['.timestamp', 'must be an RFC 3339 time with an offset (2026-01-31T10:00:00Z)']
       when (e.x ->> 'timestamp')::timestamptz > now() + interval '5 minutes' then
         array['.timestamp', 'is in the future']
       when jsonb_typeof(e.x -> 'properties') not in ('object', 'null') then
         array['.properties', 'must be an object']
       when m.aggregation in ('sum', 'max', 'latest')
            and not case jsonb_typeof(e.x -> 'properties' -> m.field_name)
                      when 'number' then abs((e.x -> 'properties' ->> m.field_name)::numeric) < 1e20
                      when 'string' then (e.x -> 'properties' ->> m.field_name) ~ v_number
                      else false end then
         array['.properties.' || m.field_name, format('is required: a number (%s aggregates it by %s)',
                                                      m.code, m.aggregation)]
       when m.aggregation = 'unique_count'
            and (coalesce(jsonb_typeof(e.x -> 'properties' -> m.field_name), 'null') not in ('string', 'number')
                 or length(e.x -> 'properties' ->> m.field_name) not between 1 and 500) then
         array['.properties.' || m.field_name, format('is required: a string or number of 1 to 500 characters (%s counts its distinct values)', m.code)]
     end
   ) c (p)
   cross join lateral (select c.p[1] as suffix, c.p[2] as problem) pr
   where c.p is not null
   order by e.i
   limit 1;
  if v_problem is not null then
    perform raise_field(v_problem[1], v_problem[2]);
  end if;

  -- The events, then their days: one statement, so every batch that commits
  -- is billable with it. Events go in in the order of their ids and days in
  -- the order of their keys, so concurrent batches take their locks in
  -- one order (no deadlock); a day's aggregate row is the only place two
  -- batches of a tenant wait for each other.
  with ins as (
    insert into usage_events as u (tenant_id, external_id, metric_code, occurred_at, day, properties, value,
                                   unique_value, created_by)
    select usage_ingest_into.tenant, e.x ->> 'event_id', m.code, t.at, (t.at at time zone v_zone)::date,
           coalesce(nullif(e.x -> 'properties', 'null'::jsonb), '{}'::jsonb),
           case when m.aggregation in ('sum', 'max', 'latest') then (e.x -> 'properties' ->> m.field_name)::numeric end,
           case when m.aggregation = 'unique_count' then e.x -> 'properties' ->> m.field_name end,
           usage_ingest_into.reported_by
      from jsonb_array_elements(events) with ordinality e (x, i)
      join billable_metrics m on m.code = e.x ->> 'code'
     cross join lateral (select coalesce((e.x ->> 'timestamp')::timestamptz, now()) as at) t
     -- An id twice in the batch: its first event counts.
     order by e.x ->> 'event_id', e.i
        on conflict on constraint usage_events_external_id_key do nothing
    returning u.metric_code, u.day, u.value, u.unique_value, u.occurred_at, u.event_id
  ), uniques as (
    insert into usage_daily_uniques (tenant_id, metric_code, day, unique_value)
    select distinct usage_ingest_into.tenant, i.metric_code, i.day, i.unique_value
      from ins i
     where i.unique_value is not null
     order by 2, 3, 4
        on conflict on constraint usage_daily_uniques_pkey do nothing
    returning 1
  ), days as (
    insert into usage_daily as d (tenant_id, metric_code, day, events, total, max_value, latest_value, latest_at,
                                  updated_at)
    select usage_ingest_into.tenant, i.metric_code, i.day, count(*), coalesce(sum(i.value), 0), max(i.value),
           (array_agg(i.value order by i.occurred_at desc, i.event_id desc))[1], max(i.occurred_at), now()
      from ins i
     group by i.metric_code, i.day
     order by i.metric_code, i.day
        on conflict on constraint usage_daily_pkey do update
       set events = d.events + excluded.events,
           total = d.total + excluded.total,
           max_value = greatest(d.max_value, excluded.max_value),
           -- The later event's value; on a tie, the batch that came later.
           latest_value = case when d.latest_at is null or excluded.latest_at >= d.latest_at
                               then excluded.latest_value else d.latest_value end,
           latest_at = greatest(d.latest_at, excluded.latest_at),
           -- now(), through the row (Citus takes no function here).
           updated_at = excluded.updated_at
    returning 1
  )
  select count(*) into v_accepted from ins;
  return jsonb_build_object('received', v_n, 'accepted', v_accepted, 'duplicates', v_n - v_accepted);
end
$$;
select pin_search_path('usage_ingest_into(uuid, jsonb, uuid)');
revoke execute on function usage_ingest_into(uuid, jsonb, uuid) from public;
comment on function usage_ingest_into(uuid, jsonb, uuid) is
  'Internal: checks a batch of usage events (the first bad one named), inserts the new ones (a known event_id is a duplicate: nothing changes) and adds them to usage_daily in the same statement. {"received", "accepted", "duplicates"}.';

-- usage_ingest(events) -> {"received", "accepted", "duplicates"}: events of
-- the caller's tenant (usage.report, which the API key scope usage:write
-- grants; a super_admin may too).
create or replace function usage_ingest(events jsonb) returns jsonb
language plpgsql
security definer
as $$
begin
  if bizos.tenant_id() is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if not (bizos.app_role() = 'super_admin' or has_permission('usage.report')) then
    raise exception using errcode = '42501',
      message = 'reporting usage needs the permission usage.report (API key scope usage:write)';
  end if;
  return usage_ingest_into(bizos.tenant_id(), usage_ingest.events, bizos.uid());
end
$$;
select pin_search_path('usage_ingest(jsonb)');
revoke execute on function usage_ingest(jsonb) from public;
grant execute on function usage_ingest(jsonb) to bizos_authenticated;
comment on function usage_ingest(jsonb) is
  'POST /api/v1/usage-events: a batch of 1 to 1000 usage events of the caller''s tenant, idempotent on each event_id. Needs usage.report (scope usage:write) or super_admin. {"received", "accepted", "duplicates"}.';

-- usage_ingest_for(tenant_id, events): the same as system work (no claims).
create or replace function usage_ingest_for(tenant_id uuid, events jsonb) returns jsonb
language plpgsql
security definer
as $$
begin
  if bizos.tenant_id() is not null or bizos.uid() is not null
     or not (pg_has_role(session_user, 'bizos_worker', 'member')
             or pg_has_role(session_user, 'bizos_owner', 'member')) then
    raise exception using errcode = '42501', message = 'usage_ingest_for is for the worker and the owner';
  end if;
  return usage_ingest_into(usage_ingest_for.tenant_id, usage_ingest_for.events, null);
end
$$;
select pin_search_path('usage_ingest_for(uuid, jsonb)');
revoke execute on function usage_ingest_for(uuid, jsonb) from public;
grant execute on function usage_ingest_for(uuid, jsonb) to bizos_worker;
comment on function usage_ingest_for(uuid, jsonb) is
  'System work (worker, owner; no claims): usage_ingest for a tenant.';

-- ---------------------------------------------------------------------------
-- what a period is billable for
-- ---------------------------------------------------------------------------

-- usage_quantities(p_tenant_id, p_from, p_to): what the tenant used per
-- metric over its days [p_from, p_to) (its time zone), read where its rows
-- are (its placement): events by the metric's aggregation over the
-- period's days; ai_generations and ai_tokens from the gateway's ledger
-- (answered generations: outcome ok); seats and storage_bytes as they are
-- when this runs (the users active and the bytes stored now). A metric
-- with no usage has no row.
create or replace function usage_quantities(p_tenant_id uuid, p_from date, p_to date)
returns table (metric_code text, quantity numeric)
language plpgsql
stable
security definer
as $$
#variable_conflict use_column
declare
  v_zone text;
  v_lo timestamptz;
  v_hi timestamptz;
begin
  perform usage_check_reader(p_tenant_id);
  if p_from is null then
    perform raise_field('p_from', 'is required');
  end if;
  if p_to is null or p_to <= p_from then
    perform raise_field('p_to', 'must be a day after p_from');
  end if;
  select t.time_zone into v_zone from tenants t where t.tenant_id = p_tenant_id;
  if v_zone is null then
    raise exception using errcode = 'P0002', column = 'p_tenant_id',
      message = format('p_tenant_id: no tenant %s', p_tenant_id);
  end if;
  v_lo := p_from::timestamp at time zone v_zone;
  v_hi := p_to::timestamp at time zone v_zone;
  return query
  -- The names in the select lists, not as the CTE's column list (Citus
  -- loses such a list when it plans the CTE apart).
  with used as (
    select d.metric_code as code,
           case m.aggregation
             when 'count' then sum(d.events)::numeric
             when 'sum' then sum(d.total)
             when 'max' then max(d.max_value)
             when 'latest' then (array_agg(d.latest_value order by d.latest_at desc))[1]
           end as quantity
      from usage_daily d
      join billable_metrics m on m.code = d.metric_code
     where d.tenant_id = p_tenant_id and d.day >= p_from and d.day < p_to
       and m.aggregation <> 'unique_count'
     group by d.metric_code, m.aggregation
    union all
    select u.metric_code, count(distinct u.unique_value)::numeric
      from usage_daily_uniques u
     where u.tenant_id = p_tenant_id and u.day >= p_from and u.day < p_to
     group by u.metric_code
    union all
    select m.code,
           case m.source when 'llm_generations' then l.generations else l.tokens end
      from billable_metrics m
     cross join (select count(*)::numeric as generations, coalesce(sum(c.tokens_in + c.tokens_out), 0)::numeric as tokens
                   from llm_calls c
                  where c.tenant_id = p_tenant_id and c.created_at >= v_lo and c.created_at < v_hi
                    and c.outcome = 'ok') l
     where m.source in ('llm_generations', 'llm_tokens')
    union all
    select m.code, s.seats
      from billable_metrics m
     cross join (select count(*)::numeric as seats from profiles p
                  where p.tenant_id = p_tenant_id and p.active and p.app_role <> 'integration') s
     where m.source = 'seats'
    union all
    select m.code, o.bytes
      from billable_metrics m
     cross join (select coalesce(sum(o.size_bytes), 0)::numeric as bytes from objects o
                  where o.tenant_id = p_tenant_id) o
     where m.source = 'storage'
  )
  select u.code, u.quantity from used u where u.quantity <> 0 order by u.code;
end
$$;
select pin_search_path('usage_quantities(uuid, date, date)');
revoke execute on function usage_quantities(uuid, date, date) from public;
grant execute on function usage_quantities(uuid, date, date) to bizos_authenticated, bizos_worker;
comment on function usage_quantities(uuid, date, date) is
  'What the tenant used per metric over its days [p_from, p_to), where its rows are: events by aggregation, AI generations and tokens, seats and storage now.';

-- usage_price(p_tenant_id, p_used): the rows of usage_billable for
-- quantities read elsewhere (p_used: usage_quantities' rows as a JSON
-- array), priced by the tenant's plan in this database (the billing
-- database's plans: a tenant placed in a schema or database of its own is
-- metered there and billed here). One row per metric the plan charges
-- (plan_metrics; included and unit_price as there) and per other metric
-- used (included and unit_price NULL, amount 0). overage =
-- max(quantity - included, 0); amount = overage * unit_price, unrounded
-- (the invoice rounds).
create or replace function usage_price(p_tenant_id uuid, p_used jsonb)
returns table (metric_code text, label text, unit text, quantity numeric, included numeric, overage numeric,
               unit_price numeric, amount numeric)
language plpgsql
stable
security definer
as $$
#variable_conflict use_column
declare
  v_plan text;
begin
  perform usage_check_reader(p_tenant_id);
  if p_used is null or jsonb_typeof(p_used) <> 'array' then
    perform raise_field('p_used', 'must be a JSON array of {metric_code, quantity}');
  end if;
  select t.plan_code into v_plan from tenants t where t.tenant_id = p_tenant_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'p_tenant_id',
      message = format('p_tenant_id: no tenant %s', p_tenant_id);
  end if;
  return query
  with used (code, quantity) as (
    select u.metric_code, u.quantity from jsonb_to_recordset(p_used) as u(metric_code text, quantity numeric)
  )
  select m.code, m.label, m.unit, q.quantity, pm.included,
         case when pm.plan_code is null then 0::numeric else greatest(q.quantity - pm.included, 0) end,
         pm.unit_price,
         case when pm.plan_code is null then 0::numeric else greatest(q.quantity - pm.included, 0) * pm.unit_price end
    from billable_metrics m
    left join plan_metrics pm on pm.plan_code = v_plan and pm.metric_code = m.code
   cross join lateral (select coalesce((select sum(u.quantity) from used u where u.code = m.code), 0) as quantity) q
   where pm.plan_code is not null or q.quantity <> 0
   order by m.code;
end
$$;
select pin_search_path('usage_price(uuid, jsonb)');
revoke execute on function usage_price(uuid, jsonb) from public;
grant execute on function usage_price(uuid, jsonb) to bizos_worker;
comment on function usage_price(uuid, jsonb) is
  'The billable rows (quantity, included, overage, unit price, amount) of quantities read elsewhere, priced by the tenant''s plan here.';

-- usage_billable(p_tenant_id, p_from, p_to): one row per metric the
-- tenant's plan charges and per other metric with usage in the period:
-- usage_quantities here, priced by usage_price.
create or replace function usage_billable(p_tenant_id uuid, p_from date, p_to date)
returns table (metric_code text, label text, unit text, quantity numeric, included numeric, overage numeric,
               unit_price numeric, amount numeric)
language plpgsql
stable
security definer
as $$
begin
  return query
  select p.* from usage_price(p_tenant_id,
                              (select coalesce(jsonb_agg(jsonb_build_object('metric_code', q.metric_code,
                                                                            'quantity', q.quantity)), '[]')
                                 from usage_quantities(p_tenant_id, p_from, p_to) q)) p;
end
$$;
select pin_search_path('usage_billable(uuid, date, date)');
revoke execute on function usage_billable(uuid, date, date) from public;
grant execute on function usage_billable(uuid, date, date) to bizos_authenticated, bizos_worker;
comment on function usage_billable(uuid, date, date) is
  'What a tenant''s tenant-local days [p_from, p_to) are billable for, per metric its plan charges (and any other with usage): quantity (events by the metric''s aggregation; AI from the gateway''s ledger; seats and storage as they are now), included, overage, unit_price, amount = overage * unit_price. Its super_admin, director or finance, the worker and the owner.';

-- ---------------------------------------------------------------------------
-- the plan's caps of users and stored bytes
-- ---------------------------------------------------------------------------

-- Adding an active user (a profile other than an API key, or one made
-- active again) past the plan's included_seats is refused: BZ402, field
-- included_seats. Adds of one tenant queue on a lock of its seats, so two
-- at once never both take the last one.
create or replace function usage_seats_check() returns trigger
language plpgsql
security definer
as $$
declare
  v_plan text;
  v_cap integer;
  v_used bigint;
begin
  if not new.active or new.app_role = 'integration'
     or (tg_op = 'UPDATE' and old.active and old.app_role <> 'integration') then
    return new;
  end if;
  select p.plan_code, p.included_seats into v_plan, v_cap
    from tenants t join plans p on p.plan_code = t.plan_code
   where t.tenant_id = new.tenant_id;
  if v_cap is null then
    return new;
  end if;
  perform pg_advisory_xact_lock(hashtextextended('usage.seats:' || new.tenant_id::text, 0));
  select count(*) into v_used from profiles p
   where p.tenant_id = new.tenant_id and p.active and p.app_role <> 'integration' and p.user_id <> new.user_id;
  if v_used >= v_cap then
    raise exception using errcode = 'BZ402', column = 'included_seats',
      message = format('included_seats: the plan %s includes %s active users and all are taken: deactivate one or change the plan',
                       v_plan, v_cap);
  end if;
  return new;
end
$$;
select pin_search_path('usage_seats_check()');
revoke execute on function usage_seats_check() from public;
comment on function usage_seats_check() is
  'Trigger on profiles: an active user past the plan''s included_seats is refused (BZ402, field included_seats).';
create or replace trigger profiles_plan_seats before insert or update of active, app_role on profiles
  for each row execute function usage_seats_check();

-- usage_storage_check(tenant, incoming): whether `incoming` more bytes fit
-- the plan's storage_quota_bytes (0: whether anything fits, before an
-- upload starts); BZ402, field storage_quota_bytes, when not. A file's
-- registration (the objects trigger) holds a lock of the tenant's storage,
-- so two uploads never both take the last bytes.
create or replace function usage_storage_check(tenant uuid, incoming bigint) returns void
language plpgsql
security definer
as $$
declare
  v_plan text;
  v_cap bigint;
  v_used numeric;
begin
  select p.plan_code, p.storage_quota_bytes into v_plan, v_cap
    from tenants t join plans p on p.plan_code = t.plan_code
   where t.tenant_id = usage_storage_check.tenant;
  if v_cap is null then
    return;
  end if;
  if incoming > 0 then
    perform pg_advisory_xact_lock(hashtextextended('usage.storage:' || tenant::text, 0));
  end if;
  select coalesce(sum(o.size_bytes), 0) into v_used from objects o where o.tenant_id = usage_storage_check.tenant;
  if v_used + incoming > v_cap or (incoming = 0 and v_used >= v_cap) then
    raise exception using errcode = 'BZ402', column = 'storage_quota_bytes',
      message = format('storage_quota_bytes: the plan %s stores %s bytes, %s are in use%s: delete files or change the plan',
                       v_plan, v_cap, v_used,
                       case when incoming > 0 then format(' and this file has %s', incoming) else '' end);
  end if;
end
$$;
select pin_search_path('usage_storage_check(uuid, bigint)');
revoke execute on function usage_storage_check(uuid, bigint) from public;
grant execute on function usage_storage_check(uuid, bigint) to bizos_authenticated, bizos_worker;
comment on function usage_storage_check(uuid, bigint) is
  'Whether incoming more bytes fit the tenant''s plan storage_quota_bytes (0: whether the quota is used up); raises BZ402, field storage_quota_bytes, when not.';

create or replace function usage_objects_quota() returns trigger
language plpgsql
as $$
begin
  perform usage_storage_check(new.tenant_id, new.size_bytes);
  return new;
end
$$;
select pin_search_path('usage_objects_quota()');
comment on function usage_objects_quota() is
  'Trigger on objects: a file past the plan''s storage_quota_bytes is refused (BZ402).';
create or replace trigger objects_plan_quota before insert on objects
  for each row execute function usage_objects_quota();

-- ---------------------------------------------------------------------------
-- the tenant's view
-- ---------------------------------------------------------------------------

-- usage_summary(p_from, p_to) -> {"plan", "period": {"from", "to"},
-- "metrics": [...], "limits": [{"limit", "cap", "used"}]}: the caller's
-- plan, the usage of the tenant-local days [p_from, p_to) against it
-- (default: the current month; p_to defaults to a month after p_from) and
-- the caps with what they hold now.
create or replace function usage_summary(p_from date default null, p_to date default null) returns jsonb
language plpgsql
stable
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_zone text;
  v_plan plans;
  v_day date;
  v_from date;
  v_to date;
  v_metrics jsonb;
begin
  perform usage_check_reader(v_tenant);
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  select t.time_zone into v_zone from tenants t where t.tenant_id = v_tenant;
  select p.* into v_plan from tenants t join plans p on p.plan_code = t.plan_code where t.tenant_id = v_tenant;
  v_day := (now() at time zone v_zone)::date;
  v_from := coalesce(p_from, date_trunc('month', v_day::timestamp)::date);
  v_to := coalesce(p_to, (v_from + interval '1 month')::date);
  if v_to <= v_from then
    perform raise_field('to', 'must be a day after from');
  end if;
  -- A statement of its own: beside the reads of the tenant's rows below,
  -- Citus would send the call to the tenant's shard, where its own
  -- distributed reads cannot run.
  v_metrics := coalesce((select jsonb_agg(to_jsonb(b) order by b.metric_code)
                           from usage_billable(v_tenant, v_from, v_to) b), '[]'::jsonb);
  return jsonb_build_object(
    'plan', case when v_plan.plan_code is null then null else
      jsonb_build_object('plan_code', v_plan.plan_code, 'label', v_plan.label,
                         'monthly_price', v_plan.monthly_price, 'annual_price', v_plan.annual_price,
                         'currency', v_plan.currency, 'trial_days', v_plan.trial_days,
                         'included_seats', v_plan.included_seats,
                         'ai_generations_per_day', v_plan.ai_generations_per_day,
                         'ai_tokens_per_month', v_plan.ai_tokens_per_month,
                         'storage_quota_bytes', v_plan.storage_quota_bytes,
                         'features', to_jsonb(v_plan.features)) end,
    'period', jsonb_build_object('from', v_from, 'to', v_to),
    'metrics', v_metrics,
    'limits', jsonb_build_array(
      jsonb_build_object('limit', 'included_seats', 'cap', v_plan.included_seats,
        'used', (select count(*) from profiles p
                  where p.tenant_id = v_tenant and p.active and p.app_role <> 'integration')),
      jsonb_build_object('limit', 'ai_generations_per_day', 'cap', v_plan.ai_generations_per_day,
        'used', coalesce((select c.used from llm_plan_counters c
                           where c.tenant_id = v_tenant and c.period = 'day' and c.period_start = v_day), 0)),
      jsonb_build_object('limit', 'ai_tokens_per_month', 'cap', v_plan.ai_tokens_per_month,
        'used', coalesce((select c.used from llm_plan_counters c
                           where c.tenant_id = v_tenant and c.period = 'month'
                             and c.period_start = date_trunc('month', v_day::timestamp)::date), 0)),
      jsonb_build_object('limit', 'storage_quota_bytes', 'cap', v_plan.storage_quota_bytes,
        'used', (select coalesce(sum(o.size_bytes), 0) from objects o where o.tenant_id = v_tenant))));
end
$$;
select pin_search_path('usage_summary(date, date)');
revoke execute on function usage_summary(date, date) from public;
grant execute on function usage_summary(date, date) to bizos_authenticated;
comment on function usage_summary(date, date) is
  'GET /api/billing/usage: the caller''s plan, the usage per metric of the tenant-local days [p_from, p_to) (default: the current month) against it (usage_billable) and each cap with what it holds now. super_admin, director, finance.';

-- ---------------------------------------------------------------------------
-- the operator's plan catalogue (V56; docs/billing.md, "Plans")
-- ---------------------------------------------------------------------------

-- The operator (the control database's owner, over /api/operator/billing/
-- plans) creates plans, changes their terms and metered prices and retires
-- them. Every change is one call that checks every field first (P0001
-- naming it), writes, and appends its row to plan_history. Owner only: no
-- request role or worker may call them. A plan is never deleted.

-- What a plan brings in a month (its first day, the tenant's calendar):
-- the annual price / 12, rounded as an invoice rounds (whole IDR, cents
-- otherwise), while the month is in the subscription's annual window
-- [annual_from, annual_until); the monthly price otherwise. The MRR of
-- v_billing_tenants and the revenue of v_llm_margin_monthly read this, so
-- the two agree.
create or replace function plan_price_a_month(p_monthly numeric, p_annual numeric, p_currency text,
                                              p_annual_from date, p_annual_until date, p_month date)
returns numeric
language sql immutable parallel safe
as $$
  select case when p_month >= p_annual_from and (p_annual_until is null or p_month < p_annual_until)
              then round(p_annual / 12, case when p_currency = 'IDR' then 0 else 2 end)
              else p_monthly end
$$;
comment on function plan_price_a_month(numeric, numeric, text, date, date, date) is
  'A plan''s revenue in a month: annual price / 12 (rounded) while the month is in the annual window [annual_from, annual_until), else the monthly price.';

-- A plan as the operator's API shows it: its terms, its metered prices,
-- whether it is on sale and how many tenants are on it. NULL: no such plan.
create or replace function plan_json(p_plan_code text) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'plan_code', p.plan_code, 'label', p.label, 'currency', p.currency,
    'monthly_price', p.monthly_price, 'annual_price', p.annual_price, 'trial_days', p.trial_days,
    'included_seats', p.included_seats, 'ai_generations_per_day', p.ai_generations_per_day,
    'ai_tokens_per_month', p.ai_tokens_per_month, 'storage_quota_bytes', p.storage_quota_bytes,
    'features', to_jsonb(p.features),
    'status', case when p.retired_at is null then 'on_sale' else 'retired' end,
    'retired_at', p.retired_at,
    'tenants', (select count(*) from tenants t where t.plan_code = p.plan_code),
    'metrics', coalesce((select jsonb_agg(jsonb_build_object(
                                  'metric_code', m.metric_code, 'label', b.label, 'unit', b.unit,
                                  'included', m.included, 'unit_price', m.unit_price)
                                order by m.metric_code)
                           from plan_metrics m join billable_metrics b on b.code = m.metric_code
                          where m.plan_code = p.plan_code), '[]'::jsonb),
    'created_at', p.created_at, 'updated_at', p.updated_at)
    from plans p
   where p.plan_code = p_plan_code
$$;
select pin_search_path('plan_json(text)');
revoke execute on function plan_json(text) from public;
comment on function plan_json(text) is
  'A plan as the operator''s API shows it: terms, metered prices (metrics), status on_sale|retired, tenants on it; NULL when none.';

create or replace function plans_list() returns jsonb
language sql stable
as $$
  select coalesce(jsonb_agg(plan_json(p.plan_code) order by p.retired_at is not null, p.plan_code), '[]'::jsonb)
    from plans p
$$;
select pin_search_path('plans_list()');
revoke execute on function plans_list() from public;
comment on function plans_list() is 'Every plan (on sale first, then retired; by code) as plan_json shows it.';

create or replace function plan_history_add(p_plan_code text, p_metric_code text, p_action text,
                                            p_before jsonb, p_after jsonb) returns void
language sql
as $$
  insert into plan_history (plan_code, metric_code, action, before, after, request_id)
  values (p_plan_code, p_metric_code, p_action, p_before, p_after,
          left(nullif(current_setting('request.id', true), ''), 200))
$$;
select pin_search_path('plan_history_add(text, text, text, jsonb, jsonb)');
revoke execute on function plan_history_add(text, text, text, jsonb, jsonb) from public;
comment on function plan_history_add(text, text, text, jsonb, jsonb) is
  'Appends one change of the plan catalogue to plan_history (the request id from the setting request.id).';

-- plan_history_of(plan_code) -> the operator's changes of a plan, newest
-- first; NULL when there is no such plan.
create or replace function plan_history_of(p_plan_code text) returns jsonb
language sql stable
as $$
  select coalesce((select jsonb_agg(jsonb_build_object(
                             'history_id', h.history_id, 'plan_code', h.plan_code, 'metric_code', h.metric_code,
                             'action', h.action, 'before', h.before, 'after', h.after,
                             'changed_by', h.changed_by, 'request_id', h.request_id, 'changed_at', h.changed_at)
                           order by h.changed_at desc, h.history_id desc)
                     from plan_history h where h.plan_code = p.plan_code), '[]'::jsonb)
    from plans p
   where p.plan_code = p_plan_code
$$;
select pin_search_path('plan_history_of(text)');
revoke execute on function plan_history_of(text) from public;
comment on function plan_history_of(text) is
  'The operator''s changes of a plan (plan_history), newest first; NULL when no such plan.';

-- The terms of `p` with the keys present in `payload` applied and checked
-- (a key absent keeps the value; JSON null removes a cap). Every field is
-- checked before the caller writes anything.
create or replace function plan_terms_apply(p plans, payload jsonb) returns plans
language plpgsql
as $$
declare
  v_feature text;
  v_features text[];
begin
  if payload ? 'label' then
    p.label := payload_text(payload, 'label', true, 200);
  end if;
  if payload ? 'monthly_price' then
    p.monthly_price := payload_numeric(payload, 'monthly_price', true, 2);
    if p.monthly_price < 0 then
      perform raise_field('monthly_price', 'must be 0 or more (IDR a month)');
    end if;
  end if;
  if payload ? 'annual_price' then
    p.annual_price := payload_numeric(payload, 'annual_price', true, 2);
    if p.annual_price < 0 then
      perform raise_field('annual_price', 'must be 0 or more (IDR a year)');
    end if;
  end if;
  if payload ? 'trial_days' then
    p.trial_days := payload_integer(payload, 'trial_days', true);
    if p.trial_days not between 0 and 365 then
      perform raise_field('trial_days', 'must be from 0 to 365 days');
    end if;
  end if;
  if payload ? 'included_seats' then
    p.included_seats := payload_integer(payload, 'included_seats');
    if p.included_seats < 1 then
      perform raise_field('included_seats', 'must be 1 or more (null: no cap)');
    end if;
  end if;
  if payload ? 'ai_generations_per_day' then
    p.ai_generations_per_day := payload_integer(payload, 'ai_generations_per_day');
    if p.ai_generations_per_day < 0 then
      perform raise_field('ai_generations_per_day', 'must be 0 or more (null: no cap)');
    end if;
  end if;
  if payload ? 'ai_tokens_per_month' then
    p.ai_tokens_per_month := payload_numeric(payload, 'ai_tokens_per_month', false, 0);
    if p.ai_tokens_per_month < 0 then
      perform raise_field('ai_tokens_per_month', 'must be 0 or more (null: no cap)');
    end if;
  end if;
  if payload ? 'storage_quota_bytes' then
    p.storage_quota_bytes := payload_numeric(payload, 'storage_quota_bytes', false, 0);
    if p.storage_quota_bytes < 0 then
      perform raise_field('storage_quota_bytes', 'must be 0 or more bytes (null: no cap)');
    end if;
  end if;
  if payload ? 'features' then
    if jsonb_typeof(payload -> 'features') = 'null' then
      v_features := '{}';
    else
      v_features := '{}';
      for v_feature in select jsonb_array_elements_text(payload -> 'features') loop
        if v_feature !~ '^[a-z][a-z0-9_]{0,39}$' then
          perform raise_field('features', format('%s is not a feature flag (a lower-case letter, then letters, digits or _, at most 40)',
                                                 left(v_feature, 50)));
        end if;
        if not v_feature = any (v_features) then
          v_features := v_features || v_feature;
        end if;
      end loop;
      if cardinality(v_features) > 50 then
        perform raise_field('features', 'at most 50 feature flags');
      end if;
    end if;
    p.features := v_features;
  end if;
  return p;
end
$$;
select pin_search_path('plan_terms_apply(plans, jsonb)');
revoke execute on function plan_terms_apply(plans, jsonb) from public;
comment on function plan_terms_apply(plans, jsonb) is
  'A plan''s terms with the keys present in the payload applied, each checked (P0001 naming the field): label, monthly_price, annual_price (IDR, 0 or more), trial_days (0-365), caps (null: none), features.';

-- The plan's terms as plan_create and plan_update take them.
create or replace function plan_terms_spec() returns jsonb
language sql immutable
as $$
  select '{"label": "text", "monthly_price": "number", "annual_price": "number", "trial_days": "integer",
           "included_seats": "integer", "ai_generations_per_day": "integer", "ai_tokens_per_month": "number",
           "storage_quota_bytes": "number", "features": "text[]"}'::jsonb
$$;
select pin_search_path('plan_terms_spec()');
revoke execute on function plan_terms_spec() from public;
comment on function plan_terms_spec() is 'The payload_check spec of a plan''s terms (plan_create adds plan_code).';

-- plan_create(payload) -> the plan: plan_code, label, monthly_price and
-- annual_price required; the rest optional (no trial, no caps, no flags).
-- Its metered prices are set one by one (plan_metric_set).
create or replace function plan_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  p plans;
  v_field text;
begin
  perform payload_check(payload, plan_terms_spec() || '{"plan_code": "text"}'::jsonb);
  p.plan_code := payload_text(payload, 'plan_code', true, 40);
  if p.plan_code !~ '^[a-z][a-z0-9_-]{0,39}$' then
    perform raise_field('plan_code', 'a lower-case letter, then letters, digits, _ or -, at most 40');
  end if;
  foreach v_field in array array['label', 'monthly_price', 'annual_price'] loop
    if payload -> v_field is null then
      perform raise_field(v_field, 'is required');
    end if;
  end loop;
  p.currency := 'IDR';
  p.trial_days := 0;
  p.annual_price := 0;
  p.features := '{}';
  p := plan_terms_apply(p, payload);
  if exists (select 1 from plans x where x.plan_code = p.plan_code) then
    raise exception using errcode = '23505', column = 'plan_code', constraint = 'plans_pkey',
      message = format('plan_code: a plan %s exists already', p.plan_code);
  end if;
  insert into plans (plan_code, label, monthly_price, currency, annual_price, trial_days, included_seats,
                     ai_generations_per_day, ai_tokens_per_month, storage_quota_bytes, features)
  values (p.plan_code, p.label, p.monthly_price, p.currency, p.annual_price, p.trial_days, p.included_seats,
          p.ai_generations_per_day, p.ai_tokens_per_month, p.storage_quota_bytes, p.features);
  perform plan_history_add(p.plan_code, null, 'create', null, plan_json(p.plan_code));
  return plan_json(p.plan_code);
end
$$;
select pin_search_path('plan_create(jsonb)');
revoke execute on function plan_create(jsonb) from public;
comment on function plan_create(jsonb) is
  'The operator creates a plan (IDR): plan_code, label, monthly_price, annual_price; trial_days, caps, features optional. P0001 naming a bad field; 23505 (plan_code) for a code in use. Recorded in plan_history.';

-- plan_update(plan_code, payload) -> the plan with the keys sent changed.
-- A price takes effect for every period closed after the change (the
-- month-end run prices the period it closes from plans as they are then);
-- invoices already closed keep their lines. Caps and flags hold at once.
create or replace function plan_update(p_plan_code text, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  p plans;
  v_before jsonb;
begin
  perform payload_check(payload, plan_terms_spec());
  if payload = '{}'::jsonb then
    perform raise_field('payload', 'nothing to change');
  end if;
  select * into p from plans x where x.plan_code = p_plan_code for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no plan %s', left(p_plan_code, 40));
  end if;
  v_before := plan_json(p_plan_code);
  p := plan_terms_apply(p, payload);
  -- Billed by the year, a plan sold by the month with no annual price
  -- would cost nothing (billing_annual_unpriced).
  if p.annual_price = 0 and p.monthly_price > 0
     and exists (select 1 from subscriptions s where s.plan_code = p_plan_code and s.billing_interval = 'annual') then
    perform raise_field('annual_price', 'tenants on this plan are billed by the year: it needs an annual price');
  end if;
  update plans x
     set label = p.label, monthly_price = p.monthly_price, annual_price = p.annual_price,
         trial_days = p.trial_days, included_seats = p.included_seats,
         ai_generations_per_day = p.ai_generations_per_day, ai_tokens_per_month = p.ai_tokens_per_month,
         storage_quota_bytes = p.storage_quota_bytes, features = p.features
   where x.plan_code = p_plan_code;
  perform plan_history_add(p_plan_code, null, 'update', v_before, plan_json(p_plan_code));
  return plan_json(p_plan_code);
end
$$;
select pin_search_path('plan_update(text, jsonb)');
revoke execute on function plan_update(text, jsonb) from public;
comment on function plan_update(text, jsonb) is
  'The operator changes a plan''s terms (only the keys sent; null removes a cap). A new price applies to every period the month-end run closes after it (closed invoices keep theirs). Recorded in plan_history.';

-- plan_metric_set(plan_code, metric_code, payload {included, unit_price})
-- -> the plan: what a period includes of a billable metric and the price
-- of each unit over it (IDR). A key absent keeps the value (0 for a new
-- one).
create or replace function plan_metric_set(p_plan_code text, p_metric_code text, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_included numeric;
  v_price numeric;
  v_before jsonb;
begin
  perform payload_check(payload, '{"included": "number", "unit_price": "number"}');
  if not exists (select 1 from plans x where x.plan_code = p_plan_code) then
    raise exception using errcode = 'P0002', message = format('no plan %s', left(p_plan_code, 40));
  end if;
  if p_metric_code is null or not exists (select 1 from billable_metrics b where b.code = p_metric_code) then
    perform raise_field('metric_code',
      format('no billable metric %s (metrics: %s)', coalesce(left(p_metric_code, 63), 'null'),
             (select string_agg(b.code, ', ' order by b.code) from billable_metrics b)));
  end if;
  v_included := payload_numeric(payload, 'included', payload ? 'included', 4);
  if v_included < 0 then
    perform raise_field('included', 'must be 0 or more');
  end if;
  v_price := payload_numeric(payload, 'unit_price', payload ? 'unit_price', 6);
  if v_price < 0 then
    perform raise_field('unit_price', 'must be 0 or more (IDR a unit over what is included)');
  end if;
  if payload = '{}'::jsonb then
    perform raise_field('payload', 'nothing to change: send included, unit_price or both');
  end if;
  v_before := plan_json(p_plan_code);
  insert into plan_metrics (plan_code, metric_code, included, unit_price)
  values (p_plan_code, p_metric_code, coalesce(v_included, 0), coalesce(v_price, 0))
  on conflict (plan_code, metric_code) do update
     set included = coalesce(v_included, plan_metrics.included),
         unit_price = coalesce(v_price, plan_metrics.unit_price);
  perform plan_history_add(p_plan_code, p_metric_code, 'metric_set', v_before, plan_json(p_plan_code));
  return plan_json(p_plan_code);
end
$$;
select pin_search_path('plan_metric_set(text, text, jsonb)');
revoke execute on function plan_metric_set(text, text, jsonb) from public;
comment on function plan_metric_set(text, text, jsonb) is
  'The operator sets what a plan includes of a billable metric and its overage unit price (IDR); P0001 naming included, unit_price or an unknown metric_code. Recorded in plan_history.';

create or replace function plan_metric_remove(p_plan_code text, p_metric_code text) returns jsonb
language plpgsql
as $$
declare
  v_before jsonb := plan_json(p_plan_code);
begin
  if v_before is null then
    raise exception using errcode = 'P0002', message = format('no plan %s', left(p_plan_code, 40));
  end if;
  delete from plan_metrics m
   where m.plan_code = p_plan_code and m.metric_code = p_metric_code;
  if not found then
    raise exception using errcode = 'P0002',
      message = format('the plan %s charges no metric %s', left(p_plan_code, 40), left(p_metric_code, 63));
  end if;
  perform plan_history_add(p_plan_code, p_metric_code, 'metric_remove', v_before, plan_json(p_plan_code));
  return plan_json(p_plan_code);
end
$$;
select pin_search_path('plan_metric_remove(text, text)');
revoke execute on function plan_metric_remove(text, text) from public;
comment on function plan_metric_remove(text, text) is
  'The operator stops charging a metric on a plan (usage of it is no longer billed from the next close on). Recorded in plan_history.';

-- plan_on_sale(plan_code, on_sale) -> the plan, retired (on_sale false:
-- no new tenant may take it, tenants_plan_on_sale; the tenants on it keep
-- it and are billed as before) or back on sale (new tenants, sign-ups and
-- plan changes may take it again; its tenants never noticed). Recorded in
-- plan_history as `retire` or `reinstate`; asking for the state the plan
-- is in changes nothing.
drop function if exists plan_retire(text);
drop function if exists plan_reinstate(text);
create or replace function plan_on_sale(p_plan_code text, p_on_sale boolean) returns jsonb
language plpgsql
as $$
declare
  p plans;
  v_before jsonb;
begin
  if p_on_sale is null then
    raise exception using errcode = '22023', column = 'on_sale', message = 'on_sale: true or false';
  end if;
  select * into p from plans x where x.plan_code = p_plan_code for update;
  if not found then
    raise exception using errcode = 'P0002', message = format('no plan %s', left(p_plan_code, 40));
  end if;
  if (p.retired_at is null) <> p_on_sale then
    v_before := plan_json(p_plan_code);
    update plans x set retired_at = case when p_on_sale then null else pg_catalog.now() end
     where x.plan_code = p_plan_code;
    perform plan_history_add(p_plan_code, null, case when p_on_sale then 'reinstate' else 'retire' end,
                             v_before, plan_json(p_plan_code));
  end if;
  return plan_json(p_plan_code);
end
$$;
select pin_search_path('plan_on_sale(text, boolean)');
revoke execute on function plan_on_sale(text, boolean) from public;
comment on function plan_on_sale(text, boolean) is
  'The operator retires a plan (false: no new tenants, sign-ups or plan changes to it; its tenants keep it and are billed) or puts it back on sale (true). Never deletes. Recorded in plan_history.';

-- A tenant given a plan (created with one, signed up, changed): the plan
-- must be on sale. A tenant keeps a plan retired after it took it (the
-- check runs only when plan_code changes).
create or replace function tenants_plan_on_sale() returns trigger
language plpgsql
as $$
declare
  v_retired timestamptz;
begin
  if new.plan_code is not null
     and (tg_op = 'INSERT' or new.plan_code is distinct from old.plan_code) then
    select p.retired_at into v_retired from plans p where p.plan_code = new.plan_code;
    if v_retired is not null then
      raise exception using errcode = 'P0001', column = 'plan_code',
        message = format('plan_code: the plan %s is retired (since %s): it takes no new tenants',
                         new.plan_code, to_char(v_retired at time zone 'UTC', 'YYYY-MM-DD'));
    end if;
  end if;
  return new;
end
$$;
select pin_search_path('tenants_plan_on_sale()');
revoke execute on function tenants_plan_on_sale() from public;
comment on function tenants_plan_on_sale() is
  'Trigger of tenants: a tenant may take only a plan on sale (not retired); P0001 plan_code otherwise. Tenants already on a retired plan keep it.';
create or replace trigger tenants_plan_on_sale before insert or update of plan_code on tenants
  for each row execute function tenants_plan_on_sale();
