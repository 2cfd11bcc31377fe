-- Business calendars: business hours, holidays and business minutes of a
-- tenant (SLA clocks).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- A time zone must be one PostgreSQL knows (a CHECK may not read catalogs).
create or replace function business_calendars_before_write() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names where name = new.time_zone) then
    raise exception using errcode = 'P0001', column = 'time_zone',
      message = format('time_zone: unknown time zone %L (use an IANA name such as Asia/Jakarta)', new.time_zone);
  end if;
  return new;
end
$$;

-- The calendar functions read configuration of one tenant. They run as the
-- owner so that they give the same answer for every reader of the views
-- (callers without a calendar grant, analysts, BI), and refuse a caller
-- whose claims name another tenant.
-- A tenant without a business calendar of its own works in its own time
-- zone (tenants.time_zone).
create or replace function business_time_zone(tenant uuid) returns text
language plpgsql stable security definer
as $$
declare
  v_tz text;
begin
  if bizos.tenant_id() is not null and tenant is distinct from bizos.tenant_id() then
    raise exception using errcode = '42501', message = 'business calendars of another tenant are not visible';
  end if;
  select coalesce(c.time_zone, t.time_zone) into v_tz
    from tenants t
    left join business_calendars c on c.tenant_id = t.tenant_id
   where t.tenant_id = tenant;
  return coalesce(v_tz, 'Asia/Jakarta');
end
$$;
revoke execute on function business_time_zone(uuid) from public;
grant execute on function business_time_zone(uuid) to bizos_authenticated;
select pin_search_path('business_time_zone(uuid)');

-- Working intervals [starts_at, ends_at) of the tenant on the local days
-- from_day .. to_day, holidays excluded, in time order.
-- The local days from_day .. to_day as dates (no round trip through the
-- session's time zone).
create or replace function business_intervals(tenant uuid, from_day date, to_day date)
returns table (starts_at timestamptz, ends_at timestamptz)
language plpgsql stable security definer
as $$
declare
  v_tz text := business_time_zone(tenant);
begin
  return query
    with own as (
      select h.weekday, h.opens_at, h.closes_at from business_hours h where h.tenant_id = tenant
    ), hrs as (
      select * from own
      union all
      select w::smallint, time '08:00', time '17:00' from generate_series(1, 5) w
       where not exists (select 1 from own)
    ), days as (
      select from_day + g as d from generate_series(0, to_day - from_day) g
    )
    select ((d.d + hrs.opens_at) at time zone v_tz), ((d.d + hrs.closes_at) at time zone v_tz)
      from days d
      join hrs on hrs.weekday = extract(isodow from d.d)
     where not exists (select 1 from holidays x where x.tenant_id = tenant and x.holiday_date = d.d)
     order by 1;
end
$$;
revoke execute on function business_intervals(uuid, date, date) from public;
grant execute on function business_intervals(uuid, date, date) to bizos_authenticated;
select pin_search_path('business_intervals(uuid, date, date)');

-- Business minutes between two instants (negative when to_ts < from_ts).
create or replace function business_minutes_between(tenant uuid, from_ts timestamptz, to_ts timestamptz)
returns numeric
language plpgsql stable
as $$
declare
  v_tz text;
  v_secs numeric;
begin
  if tenant is null or from_ts is null or to_ts is null then
    return null;
  end if;
  if to_ts < from_ts then
    return -business_minutes_between(tenant, to_ts, from_ts);
  end if;
  v_tz := business_time_zone(tenant);
  select coalesce(sum(extract(epoch from (least(i.ends_at, to_ts) - greatest(i.starts_at, from_ts)))), 0)
    into v_secs
    from business_intervals(tenant, (from_ts at time zone v_tz)::date, (to_ts at time zone v_tz)::date) i
   where i.ends_at > from_ts and i.starts_at < to_ts;
  return round(v_secs / 60, 2);
end
$$;
comment on function business_minutes_between(uuid, timestamptz, timestamptz) is
  'Minutes of business time (tenant hours, time zone, holidays) between two instants.';
grant execute on function business_minutes_between(uuid, timestamp with time zone, timestamp with time zone)
  to bizos_authenticated;

-- The instant `minutes` business minutes after `start`. Zero minutes is
-- `start` itself; otherwise the clock only runs inside business hours, so a
-- start outside them counts from the next opening, and a deadline that ends
-- exactly at a closing time is that closing time.
create or replace function add_business_minutes(tenant uuid, start timestamptz, minutes integer)
returns timestamptz
language plpgsql stable
as $$
declare
  v_tz text;
  v_left numeric;
  v_day date;
  v_chunk constant integer := 31;
  v_from timestamptz;
  v_avail numeric;
  i record;
begin
  if tenant is null or start is null or minutes is null then
    return null;
  end if;
  if minutes < 0 then
    raise exception using errcode = 'P0001', column = 'minutes', message = 'minutes: must not be negative';
  end if;
  if minutes = 0 then
    return start;
  end if;
  v_tz := business_time_zone(tenant);
  v_left := minutes * 60;
  v_day := (start at time zone v_tz)::date;
  -- Scan ahead a month at a time; give up after ~10 years (no hours at all).
  for n in 0 .. 120 loop
    for i in
      select b.starts_at, b.ends_at
        from business_intervals(tenant, v_day + n * v_chunk, v_day + n * v_chunk + v_chunk - 1) b
       where b.ends_at > start
    loop
      v_from := greatest(i.starts_at, start);
      v_avail := extract(epoch from (i.ends_at - v_from));
      if v_left <= v_avail then
        return v_from + make_interval(secs => v_left);
      end if;
      v_left := v_left - v_avail;
    end loop;
  end loop;
  raise exception using errcode = 'P0001', column = 'minutes',
    message = 'minutes: the business calendar has no working hours to count them in';
end
$$;
comment on function add_business_minutes(uuid, timestamptz, integer) is
  'The instant a number of business minutes after start (tenant hours, time zone, holidays).';
grant execute on function add_business_minutes(uuid, timestamp with time zone, integer)
  to bizos_authenticated;

-- A business clock: the tenant's working intervals over the tenant's days
-- from_day .. to_day as three arrays in time order (starts, ends, and the
-- business seconds before each interval), so that a whole set of tickets
-- gets its due times from two binary searches each (width_bucket) instead
-- of a business_intervals() scan per ticket (add_business_minutes). Over
-- the instants it covers it agrees with add_business_minutes to the
-- instant.
--
-- The days are the tenant's (tenants.time_zone, the days of its reports),
-- the hours the calendar's, whose time zone may differ: the clock takes
-- every calendar day that the tenant's days overlap. A tenant west of its
-- calendar ends its day after the calendar's day of the same date (UTC-12
-- against Jakarta: 19:00 the next day), and a clock of the same dates gave
-- a ticket due in that last part of the tenant's day no due time at all;
-- a tenant east of it starts its day on the calendar's day before.
create or replace function business_clock(tenant uuid, from_day date, to_day date,
                                          out starts timestamptz[], out ends timestamptz[],
                                          out cums double precision[])
language plpgsql stable
as $$
declare
  v_cal text := business_time_zone(tenant);
  v_tz text;
begin
  select t.time_zone into v_tz from tenants t where t.tenant_id = tenant;
  select coalesce(array_agg(x.s order by x.s), '{}'), coalesce(array_agg(x.e order by x.s), '{}'),
         coalesce(array_agg(x.c order by x.s), '{}')
    into starts, ends, cums
    from (select b.starts_at as s, b.ends_at as e,
                 coalesce(sum(extract(epoch from b.ends_at - b.starts_at)::double precision)
                            over (order by b.starts_at rows between unbounded preceding and 1 preceding), 0) as c
            from business_intervals(tenant,
                                    ((from_day::timestamp at time zone v_tz) at time zone v_cal)::date,
                                    (((to_day + 1)::timestamp at time zone v_tz) at time zone v_cal)::date) b) x;
end
$$;
grant execute on function business_clock(uuid, date, date) to bizos_authenticated;
comment on function business_clock(uuid, date, date) is
  'The tenant''s working intervals over its days from_day .. to_day (tenants.time_zone; every calendar day they overlap) as arrays (starts, ends, business seconds before each), for business_clock_at and business_clock_instant.';

-- The business seconds the clock has counted at instant t (0 before its
-- first interval).
create or replace function business_clock_at(t timestamptz, starts timestamptz[], ends timestamptz[],
                                             cums double precision[])
returns double precision
language sql immutable
as $$
  select case when k = 0 then 0::double precision
              else cums[k] + extract(epoch from least(t, ends[k]) - starts[k])::double precision end
    from (select width_bucket(t, starts) as k) w
$$;
grant execute on function business_clock_at(timestamptz, timestamptz[], timestamptz[], double precision[])
  to bizos_authenticated;
comment on function business_clock_at(timestamptz, timestamptz[], timestamptz[], double precision[]) is
  'Business seconds a business_clock has counted at an instant.';

-- The first instant at which the clock reads x seconds (the end of an
-- interval rather than the start of the next, as add_business_minutes);
-- NULL past the clock's last interval.
create or replace function business_clock_instant(x double precision, starts timestamptz[],
                                                  ends timestamptz[], cums double precision[])
returns timestamptz
language sql immutable
as $$
  select case when k = 0 then null
              when k > 1 and x = cums[k] then ends[k - 1]
              when x - cums[k] <= extract(epoch from ends[k] - starts[k])::double precision
                then starts[k] + make_interval(secs => x - cums[k])
         end
    from (select width_bucket(x, cums) as k) w
$$;
grant execute on function business_clock_instant(double precision, timestamptz[], timestamptz[], double precision[])
  to bizos_authenticated;
comment on function business_clock_instant(double precision, timestamptz[], timestamptz[], double precision[]) is
  'The first instant a business_clock reads x business seconds; NULL past its last interval.';
