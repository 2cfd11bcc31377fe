-- RFM segments (RFM-1) and segment content (RFM-2).
-- Tables: migration V30 (its header lists them).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- The rules of a snapshot (rfm_compute):
-- * Week: the tenant-local Monday of the run's as_of date (the tenant's
--   today unless given). One snapshot per (tenant, week): a rerun in the
--   same week replaces it (rows of the week deleted and written again in
--   one transaction, under the row lock of its rfm_runs row).
-- * Purchases: the tenant's invoices with status PAID; unpaid (DRAFT,
--   ISSUED, partly paid) and VOID invoices never count. The date of a
--   purchase is the date the invoice was settled: the latest paid_on of
--   its payments (a tenant-local date, entered by finance and possibly
--   back-dated; paid_at is only when the system recorded it). Its value is
--   amount_paid (= the total of a PAID invoice) in rupiah: an invoice in
--   another currency is converted at the fx_rates rate in force on the
--   purchase's date (the latest effective_from on or before it), rounded
--   to the sen. One ranking of what customers spent, in the tenant's
--   money: a customer who paid 1,000 USD (~16 million rupiah) ranks above
--   one who paid 2,000,000 IDR. Without a rate for such a purchase the
--   run stops with P0001 naming the currency, the date and the invoice
--   (never a guessed or an unconverted amount); the week's previous
--   snapshot stays, and a run after the operator adds the rate scores it.
-- * Window: purchases settled on as_of - window_days + 1 .. as_of
--   (rfm_settings.window_days, default 365): a purchase settled exactly
--   window_days days before as_of is outside, one day later inside;
--   purchases settled after as_of are not counted. Customers without a
--   purchase in the window are not scored (they have no row that week).
-- * Values: recency_days = as_of - the latest purchase date; frequency =
--   purchases; monetary = the sum of their values in rupiah.
-- * Scores 1-5 by quintiles within the tenant (all its scored customers,
--   whoever reads them later), from the cumulative distribution so that
--   equal values always get equal scores: with n customers and c the
--   number whose value is at most the customer's (for recency: whose
--   recency_days is at least the customer's, so the most recent get 5),
--   score = ceil(5 * c / n) in integers. The best value always scores 5;
--   with n distinct values each fifth of them gets one score; a tie spans
--   the score of its highest member.
-- * One purchase: frequency 1 scores F = 1 whatever the quintiles say.
-- * FM = (F + M) / 2 rounded half up; the segment is the rfm_segments row
--   of lowest priority whose R range and FM range hold (R, FM)
--   (the view rfm_segment_grid; the table in V30 shows the grid).
--
-- Who reads what: snapshot rows (rfm_scores) show under the customers'
-- RLS (a caller sees the scores of exactly the customers they may read),
-- so every count, share and movement the read functions give is over the
-- customers the caller may read; super admins, directors, CRM managers
-- and finance (customer scope 'all') see the whole tenant. rfm.manage
-- (super admins, marketing managers) runs RFM on demand, sets the window,
-- edits templates and generates content.

-- ---------------------------------------------------------------- helpers
-- The Monday (ISO week start) of a date.
create or replace function rfm_week_of(d date) returns date
language sql immutable strict
as $$
  select d - (extract(isodow from d)::integer - 1)
$$;
grant execute on function rfm_week_of(date) to bizos_authenticated, bizos_worker;
comment on function rfm_week_of(date) is 'The Monday of the ISO week of a date: the week an RFM snapshot of that date belongs to.';

-- THE segment rule: every cell (R, FM) of the 5 x 5 grid with the
-- rfm_segments row of lowest priority whose R range and FM range hold it
-- (NULL if none would: rfm_scores.segment is not null, so a hole in the
-- table stops a run instead of dropping customers). rfm_compute joins it.
create or replace view rfm_segment_grid with (security_invoker = true) as
select r.r::smallint as r, fm.fm::smallint as fm,
       (select g.code from rfm_segments g
         where r.r between g.r_min and g.r_max and fm.fm between g.fm_min and g.fm_max
         order by g.priority
         limit 1) as segment
  from generate_series(1, 5) r (r)
 cross join generate_series(1, 5) fm (fm);
comment on view rfm_segment_grid is
  'The RFM segment of every (R, FM) score pair: the rfm_segments row of lowest priority whose ranges hold it.';
grant select on rfm_segment_grid to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------- the weekly run
-- The purchases of a tenant's snapshot (rules at the top of this file):
-- every PAID invoice settled in the window as_of - window_days + 1 ..
-- as_of, with its settlement date, its amount as stored and in rupiah
-- (amount_idr: NULL when an invoice in another currency has no rate in
-- force on that date). rfm_compute reads it twice: for a missing rate,
-- then to score.
create or replace function rfm_purchases(tenant uuid, as_of date, window_days integer)
returns table (customer_id uuid, invoice_id uuid, invoice_no text, currency text, amount_paid numeric,
               settled_on date, amount_idr numeric)
language sql stable
as $$
  with settled as (
    -- An invoice's settlement date is the latest paid_on of its payments;
    -- it lies in the window exactly when it has a payment on or after the
    -- window's start and none after as_of. Reading only the payments from
    -- the window's start (payments_tenant_id_paid_on_idx) finds them
    -- without visiting every invoice the tenant ever had.
    select p.invoice_id, max(p.paid_on) as settled_on
      from payments p
     where p.tenant_id = rfm_purchases.tenant and p.paid_on >= rfm_purchases.as_of - rfm_purchases.window_days + 1
     group by p.invoice_id
    having max(p.paid_on) <= rfm_purchases.as_of
  )
  select i.customer_id, i.invoice_id, i.invoice_no, i.currency, i.amount_paid, s.settled_on,
         case when i.currency = 'IDR' then i.amount_paid
              else round(i.amount_paid * fx.idr_per_unit, 2) end
    from settled s
    join invoices i on i.tenant_id = rfm_purchases.tenant and i.invoice_id = s.invoice_id
    left join lateral (select x.idr_per_unit from fx_rates x
                        where x.currency = i.currency and x.effective_from <= s.settled_on
                        order by x.effective_from desc
                        limit 1) fx on true
   where i.status = 'PAID'
$$;
revoke execute on function rfm_purchases(uuid, date, integer) from public;
comment on function rfm_purchases(uuid, date, integer) is
  'The purchases of a tenant''s RFM snapshot: PAID invoices settled in the window, with the settlement date and the amount in rupiah (fx_rates on that date; NULL without a rate). For rfm_compute.';

-- rfm_compute(tenant, as_of) -> {week, as_of, window_days, window_start,
-- customers}: the snapshot of as_of's week (rules at the top of this
-- file). The worker's rfm.compute jobs call it (system work: the tenant
-- comes from the job); idempotent per week.
create or replace function rfm_compute(tenant uuid, as_of date default null) returns jsonb
language plpgsql security definer
as $$
declare
  v_tz text;
  v_today date;
  v_as_of date;
  v_week date;
  v_window integer;
  v_count integer;
  v_missing record;
begin
  select t.time_zone into v_tz from tenants t where t.tenant_id = rfm_compute.tenant;
  if not found then
    raise exception using errcode = 'P0002', column = 'tenant_id',
      message = format('tenant_id: no tenant %s', rfm_compute.tenant);
  end if;
  v_today := (pg_catalog.now() at time zone v_tz)::date;
  v_as_of := coalesce(rfm_compute.as_of, v_today);
  if v_as_of > v_today then
    perform raise_field('as_of', format('%s is after the tenant''s today (%s)', v_as_of, v_today));
  end if;
  v_week := rfm_week_of(v_as_of);
  v_window := coalesce((select s.window_days from rfm_settings s where s.tenant_id = rfm_compute.tenant), 365);

  -- Every purchase is valued in rupiah, or the run stops (the rules at the
  -- top of this file).
  select p.currency, p.settled_on, p.invoice_no into v_missing
    from rfm_purchases(rfm_compute.tenant, v_as_of, v_window) p
   where p.amount_idr is null
   order by p.settled_on, p.invoice_no
   limit 1;
  if found then
    raise exception using errcode = 'P0001', column = 'currency',
      message = format('currency: no %s rate to IDR in force on %s (fx_rates) for invoice %s; RFM ranks every purchase in rupiah',
                       v_missing.currency, v_missing.settled_on, v_missing.invoice_no),
      hint = format('add the %s rate in force on %s to fx_rates and run RFM again', v_missing.currency, v_missing.settled_on);
  end if;

  insert into rfm_runs as r (tenant_id, week, as_of, window_days, window_start, customers, computed_at)
  values (rfm_compute.tenant, v_week, v_as_of, v_window, v_as_of - v_window + 1, 0, pg_catalog.now())
  on conflict on constraint rfm_runs_pkey do update
     set as_of = excluded.as_of, window_days = excluded.window_days, window_start = excluded.window_start,
         customers = 0, computed_at = excluded.computed_at;
  delete from rfm_scores s where s.tenant_id = rfm_compute.tenant and s.week = v_week;

  with per_customer as (
    select p.customer_id, v_as_of - max(p.settled_on) as recency_days,
           count(*)::integer as frequency, sum(p.amount_idr) as monetary
      from rfm_purchases(rfm_compute.tenant, v_as_of, v_window) p
     group by p.customer_id
  ), ranked as (
    -- c_*: customers whose value is at most this one's (ties included:
    -- the default frame of an ordered window ends at the last peer).
    select c.*, count(*) over () as n,
           count(*) over (order by c.recency_days desc) as c_r,
           count(*) over (order by c.frequency) as c_f,
           count(*) over (order by c.monetary) as c_m
      from per_customer c
  ), scored as (
    select x.customer_id, x.recency_days, x.frequency, x.monetary,
           ((5 * x.c_r + x.n - 1) / x.n)::smallint as r,
           (case when x.frequency = 1 then 1 else (5 * x.c_f + x.n - 1) / x.n end)::smallint as f,
           ((5 * x.c_m + x.n - 1) / x.n)::smallint as m
      from ranked x
  )
  insert into rfm_scores (tenant_id, week, customer_id, recency_days, frequency, monetary, r, f, m, fm, segment)
  select rfm_compute.tenant, v_week, s.customer_id, s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m,
         g.fm, g.segment
    from scored s
    join rfm_segment_grid g on g.r = s.r and g.fm = (s.f + s.m + 1) / 2;
  get diagnostics v_count = row_count;

  update rfm_runs r set customers = v_count
   where r.tenant_id = rfm_compute.tenant and r.week = v_week;
  return jsonb_build_object('week', v_week, 'as_of', v_as_of, 'window_days', v_window,
                            'window_start', v_as_of - v_window + 1, 'customers', v_count);
end
$$;
select pin_search_path('rfm_compute(uuid, date)');
revoke execute on function rfm_compute(uuid, date) from public;
grant execute on function rfm_compute(uuid, date) to bizos_worker;
comment on function rfm_compute(uuid, date) is
  'Computes the tenant''s RFM snapshot of as_of''s week (default: the tenant''s today), replacing that week''s; for the worker''s rfm.compute jobs.';

-- Every tenant gets its weekly run: Monday 06:00 in its own zone (the
-- tenants of V30's time got theirs there).
create or replace function seed_rfm_schedule(tenant uuid) returns void
language plpgsql security definer
as $$
begin
    insert into schedules (tenant_id, name, kind, payload, at_time, days_of_week, active, next_run_at)
    values (tenant, 'rfm weekly', 'rfm.compute', '{}'::jsonb, time '06:00', array[1]::smallint[], true,
            pg_catalog.now())
    on conflict on constraint schedules_tenant_id_name_key do nothing;
end
$$;
select pin_search_path('seed_rfm_schedule(uuid)');
revoke execute on function seed_rfm_schedule(uuid) from public;

create or replace function rfm_tenant_schedule() returns trigger
language plpgsql security definer
as $$
begin
  perform seed_rfm_schedule(new.tenant_id);
  return null;
end
$$;
select pin_search_path('rfm_tenant_schedule()');
revoke execute on function rfm_tenant_schedule() from public;
comment on function rfm_tenant_schedule() is
  'Trigger of tenants: the new tenant''s schedule ''rfm weekly'' (rfm.compute, Monday 06:00 tenant time).';
create or replace trigger tenants_rfm_weekly_schedule after insert on tenants
  for each row execute function rfm_tenant_schedule();

-- rfm_run_request({as_of?}) -> {job_id, as_of, week}: an rfm.compute job
-- of the caller (rfm.manage) for as_of (default: the tenant's today), in
-- the caller's transaction.
create or replace function rfm_run_request(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_today date;
  v_as_of date;
  v_job uuid;
begin
  perform require_permission('rfm.manage');
  perform payload_check(payload, '{"as_of": "date"}');
  v_today := tenant_today();
  v_as_of := coalesce(payload_date(payload, 'as_of'), v_today);
  if v_as_of > v_today then
    perform raise_field('as_of', format('%s is after the tenant''s today (%s)', v_as_of, v_today));
  end if;
  if v_as_of < v_today - 3650 then
    perform raise_field('as_of', 'at most ten years back');
  end if;
  v_job := job_enqueue('rfm.compute', jsonb_build_object('as_of', v_as_of));
  return jsonb_build_object('job_id', v_job, 'as_of', v_as_of, 'week', rfm_week_of(v_as_of));
end
$$;
grant execute on function rfm_run_request(jsonb) to bizos_authenticated;
comment on function rfm_run_request(jsonb) is
  'Enqueues an rfm.compute job of the caller (rfm.manage) for as_of (default the tenant''s today); returns the job and the week it replaces.';

-- rfm_settings_set({window_days}) -> {window_days}: the tenant's window
-- (7-3650 days), used from the next run on.
create or replace function rfm_settings_set(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_days integer;
begin
  perform require_permission('rfm.manage');
  perform payload_check(payload, '{"window_days": "number"}');
  v_days := payload_integer(payload, 'window_days', true);
  if v_days not between 7 and 3650 then
    perform raise_field('window_days', 'must be between 7 and 3650 days');
  end if;
  insert into rfm_settings as s (tenant_id, window_days) values (bizos.tenant_id(), v_days)
  on conflict on constraint rfm_settings_pkey do update set window_days = excluded.window_days;
  return jsonb_build_object('window_days', v_days);
end
$$;
grant execute on function rfm_settings_set(jsonb) to bizos_authenticated;
comment on function rfm_settings_set(jsonb) is
  'Sets the tenant''s RFM window (window_days, 7-3650; rfm.manage); runs from then on use it.';

-- ---------------------------------------------------------------- reads
-- The snapshot a read is about: the one of `week`'s week (any date of it),
-- or the latest; P0002 when there is none.
create or replace function rfm_snapshot(week date) returns rfm_runs
language plpgsql stable
as $$
declare
  r rfm_runs;
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if rfm_snapshot.week is null then
    select * into r from rfm_runs x where x.tenant_id = bizos.tenant_id() order by x.week desc limit 1;
    if not found then
      raise exception using errcode = 'P0002', column = 'week',
        message = 'week: there is no RFM snapshot yet (the first runs on Monday, or POST /api/rfm/runs)';
    end if;
  else
    select * into r from rfm_runs x where x.tenant_id = bizos.tenant_id() and x.week = rfm_week_of(rfm_snapshot.week);
    if not found then
      raise exception using errcode = 'P0002', column = 'week',
        message = format('week: there is no RFM snapshot of the week of %s', rfm_week_of(rfm_snapshot.week));
    end if;
  end if;
  return r;
end
$$;
grant execute on function rfm_snapshot(date) to bizos_authenticated;
comment on function rfm_snapshot(date) is
  'The caller''s tenant''s RFM snapshot of the week of a date (NULL: the latest); P0002 when there is none.';

-- rfm_next_run() -> {at, local, time_zone} or NULL: when the caller's
-- tenant's next RFM run is due: the earliest of its active rfm.compute
-- schedules' next runs and its queued rfm.compute jobs (an on-demand run
-- waiting for a worker); `at` the instant, `local` the same in the
-- tenant's time zone (YYYY-MM-DDTHH:MI:SS, no offset). NULL: no run is
-- scheduled or queued. SECURITY DEFINER: every reader of the segments
-- sees when they next change, while schedules are read by schedule
-- managers and jobs by their creators only.
create or replace function rfm_next_run() returns jsonb
language plpgsql stable security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_tz text;
  v_at timestamptz;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  select t.time_zone into v_tz from tenants t where t.tenant_id = v_tenant;
  select min(x.at) into v_at
    from (select s.next_run_at as at from schedules s
           where s.tenant_id = v_tenant and s.kind = 'rfm.compute' and s.active
          union all
          select j.run_at from jobs j
           where j.tenant_id = v_tenant and j.kind = 'rfm.compute' and j.status = 'queued') x;
  if v_at is null then
    return null;
  end if;
  return jsonb_build_object('at', v_at, 'local', to_char(v_at at time zone v_tz, 'YYYY-MM-DD"T"HH24:MI:SS'),
                            'time_zone', v_tz);
end
$$;
select pin_search_path('rfm_next_run()');
revoke execute on function rfm_next_run() from public;
grant execute on function rfm_next_run() to bizos_authenticated;
comment on function rfm_next_run() is
  'When the caller''s tenant''s next RFM run is due (active rfm.compute schedules, queued rfm.compute jobs): {at, local, time_zone}, or NULL.';

-- rfm_segments_report(week) -> the segments of a snapshot (default the
-- latest) over the customers the caller may read:
-- {week, as_of, window_days, window_start, computed_at, previous_week,
--  next_run (rfm_next_run()), customers, revenue,
--  segments: [{segment, label, customers, revenue, revenue_share,
--              previous_customers, stayed, moved_in, moved_out}] (every
--              segment, in list order; the movement fields are null
--              without a previous snapshot),
--  movements: [{from, to, customers}]}
-- Movement is against the tenant's previous snapshot (the latest earlier
-- week): moved_in counts customers in the segment now that were in
-- another one or not scored then (from null), moved_out those that were
-- in it then and are in another one now or not scored now (to null: no
-- purchase left in the window). revenue_share is the segment's share of
-- the revenue of the customers shown (4 decimals).
-- Before the tenant's first run (no week asked for, no snapshot yet): an
-- empty snapshot, week, as_of, window_start and computed_at NULL,
-- window_days the tenant's current setting, every segment with no
-- customers, and next_run saying when the first one is due. A week asked
-- for that has no snapshot is still P0002.
create or replace function rfm_segments_report(week date default null) returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_run rfm_runs;
  v_prev date;
  v_result jsonb;
begin
  if week is null and not exists (select 1 from rfm_runs x where x.tenant_id = v_tenant) then
    return jsonb_build_object(
      'week', null, 'as_of', null,
      'window_days', coalesce((select s.window_days from rfm_settings s where s.tenant_id = v_tenant), 365),
      'window_start', null, 'computed_at', null, 'previous_week', null, 'next_run', rfm_next_run(),
      'customers', 0, 'revenue', 0,
      'segments', (select jsonb_agg(jsonb_build_object(
                            'segment', g.code, 'label', g.label, 'customers', 0, 'revenue', 0, 'revenue_share', 0,
                            'previous_customers', null, 'stayed', null, 'moved_in', null, 'moved_out', null)
                          order by g.position)
                     from rfm_segments g),
      'movements', '[]'::jsonb);
  end if;
  v_run := rfm_snapshot(week);
  select max(x.week) into v_prev from rfm_runs x where x.tenant_id = v_tenant and x.week < v_run.week;
  with cur as (
    select s.customer_id, s.segment, s.monetary from rfm_scores s
     where s.tenant_id = v_tenant and s.week = v_run.week
  ), prev as (
    select s.customer_id, s.segment from rfm_scores s
     where s.tenant_id = v_tenant and s.week = v_prev
  ), moves as (
    select p.segment as from_segment, c.segment as to_segment
      from cur c full join prev p on p.customer_id = c.customer_id
  ), totals as (
    select count(*) as customers, coalesce(sum(c.monetary), 0) as revenue from cur c
  ), per_segment as (
    select g.code, g.label, g.position,
           (select count(*) from cur c where c.segment = g.code) as customers,
           (select coalesce(sum(c.monetary), 0) from cur c where c.segment = g.code) as revenue,
           (select count(*) from prev p where p.segment = g.code) as previous_customers,
           (select count(*) from moves m where m.from_segment = g.code and m.to_segment = g.code) as stayed,
           (select count(*) from moves m where m.to_segment = g.code and m.from_segment is distinct from g.code) as moved_in,
           (select count(*) from moves m where m.from_segment = g.code and m.to_segment is distinct from g.code) as moved_out
      from rfm_segments g
  )
  select jsonb_build_object(
           'week', v_run.week, 'as_of', v_run.as_of, 'window_days', v_run.window_days,
           'window_start', v_run.window_start, 'computed_at', v_run.computed_at, 'previous_week', v_prev,
           'next_run', rfm_next_run(), 'customers', t.customers, 'revenue', t.revenue,
           'segments', (select jsonb_agg(jsonb_build_object(
                                'segment', ps.code, 'label', ps.label, 'customers', ps.customers,
                                'revenue', ps.revenue,
                                'revenue_share', case when t.revenue > 0 then round(ps.revenue / t.revenue, 4) else 0 end,
                                'previous_customers', case when v_prev is null then null else ps.previous_customers end,
                                'stayed', case when v_prev is null then null else ps.stayed end,
                                'moved_in', case when v_prev is null then null else ps.moved_in end,
                                'moved_out', case when v_prev is null then null else ps.moved_out end)
                              order by ps.position)
                          from per_segment ps),
           'movements', case when v_prev is null then '[]'::jsonb else
                          (select coalesce(jsonb_agg(jsonb_build_object('from', mv.from_segment, 'to', mv.to_segment,
                                                                        'customers', mv.n)
                                                     order by gf.position nulls first, gt.position nulls first), '[]'::jsonb)
                             from (select m.from_segment, m.to_segment, count(*) as n from moves m
                                    where m.from_segment is distinct from m.to_segment
                                    group by 1, 2) mv
                             left join rfm_segments gf on gf.code = mv.from_segment
                             left join rfm_segments gt on gt.code = mv.to_segment) end)
    into v_result
    from totals t;
  return v_result;
end
$$;
grant execute on function rfm_segments_report(date) to bizos_authenticated;
comment on function rfm_segments_report(date) is
  'The segments of an RFM snapshot (default the latest; before the first run an empty one) over the customers the caller may read: counts, revenue and its share, movement against the previous snapshot, and when the next run is due.';

-- rfm_segment_customers(segment, week, lim, cursor) -> {segment, week,
-- items: [{customer_id, company_name, city, recency_days, frequency,
-- monetary, r, f, m, fm, previous_segment}], next_cursor}: the customers
-- of a segment the caller may read (RLS of rfm_scores and customers),
-- highest spend first (then by id); `after_id` (the API's cursor) is the last customer_id of
-- the previous page (next_cursor, null on the last page); lim 1-500.
create or replace function rfm_segment_customers(segment text, week date default null, lim integer default 50,
                                                 after_id uuid default null)
returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_segment text;
  v_run rfm_runs;
  v_prev date;
  v_after rfm_scores;
  v_items jsonb;
  v_n integer;
begin
  v_segment := vocabulary_check('rfm_segments', lower(btrim(segment)), 'segment');
  if v_segment is null then
    perform raise_field('segment', 'is required');
  end if;
  if lim is null or lim not between 1 and 500 then
    perform raise_field('limit', 'must be between 1 and 500');
  end if;
  v_run := rfm_snapshot(week);
  select max(x.week) into v_prev from rfm_runs x where x.tenant_id = v_tenant and x.week < v_run.week;
  if after_id is not null then
    select * into v_after from rfm_scores s
     where s.tenant_id = v_tenant and s.week = v_run.week and s.customer_id = after_id and s.segment = v_segment;
    if not found then
      perform raise_field('cursor', 'is not a customer of this page''s segment and week');
    end if;
  end if;
  with page as (
    select s.*, c.company_name, c.city
      from rfm_scores s
      join customers c on c.tenant_id = s.tenant_id and c.customer_id = s.customer_id
     where s.tenant_id = v_tenant and s.week = v_run.week and s.segment = v_segment
       and (after_id is null
            or s.monetary < v_after.monetary
            or (s.monetary = v_after.monetary and s.customer_id > v_after.customer_id))
     order by s.monetary desc, s.customer_id
     limit lim + 1
  ), numbered as (
    select p.*, row_number() over (order by p.monetary desc, p.customer_id) as rn from page p
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'customer_id', n.customer_id, 'company_name', n.company_name, 'city', n.city,
           'recency_days', n.recency_days, 'frequency', n.frequency, 'monetary', n.monetary,
           'r', n.r, 'f', n.f, 'm', n.m, 'fm', n.fm,
           'previous_segment', (select p.segment from rfm_scores p
                                 where p.tenant_id = v_tenant and p.week = v_prev and p.customer_id = n.customer_id))
           order by n.rn) filter (where n.rn <= lim), '[]'::jsonb),
         count(*)
    into v_items, v_n
    from numbered n;
  return jsonb_build_object(
    'segment', v_segment, 'week', v_run.week, 'items', v_items,
    'next_cursor', case when v_n > lim then v_items -> (lim - 1) ->> 'customer_id' end);
end
$$;
grant execute on function rfm_segment_customers(text, date, integer, uuid) to bizos_authenticated;
comment on function rfm_segment_customers(text, date, integer, uuid) is
  'A page of the customers of an RFM segment in a snapshot that the caller may read, highest spend first, with their scores and previous segment.';

-- The customers of every snapshot with their scores and segment, as the
-- caller may read them (RLS of rfm_scores and customers); in analytics
-- masked (company_name as a name).
create or replace view v_rfm_customers with (security_invoker = true) as
select s.tenant_id, s.week, s.customer_id, c.company_name, c.city,
       s.recency_days, s.frequency, s.monetary, s.r, s.f, s.m, s.fm, s.segment
  from rfm_scores s
  join customers c on c.tenant_id = s.tenant_id and c.customer_id = s.customer_id;
comment on view v_rfm_customers is
  'RFM scores and segment of every customer of every weekly snapshot the caller may read, with the customer''s name and city.';
grant select on v_rfm_customers to bizos_authenticated;

-- Per snapshot and segment: customers, revenue and share of the
-- snapshot's revenue, over the rows the caller may read.
create or replace view v_rfm_segment_summary with (security_invoker = true) as
select s.tenant_id, s.week, s.segment, count(*)::integer as customers, sum(s.monetary) as revenue,
       round(sum(s.monetary) / nullif(sum(sum(s.monetary)) over (partition by s.tenant_id, s.week), 0), 4)
         as revenue_share
  from rfm_scores s
 group by s.tenant_id, s.week, s.segment;
comment on view v_rfm_segment_summary is
  'Per RFM snapshot and segment: customers, revenue and share of the snapshot''s revenue (of the rows the caller may read).';
grant select on v_rfm_segment_summary to bizos_authenticated;

-- ---------------------------------------------------------------- templates (RFM-2)
-- The variables a template may use (rfm_content_prompt fills them).
create or replace function rfm_template_variables() returns text[]
language sql immutable
as $$
  select array['tenant', 'segment', 'segment_advice', 'channel', 'week', 'customers',
               'avg_spend', 'avg_orders', 'avg_recency_days', 'total_revenue']
$$;
grant execute on function rfm_template_variables() to bizos_authenticated;
comment on function rfm_template_variables() is
  'The {{variables}} of an RFM content template: tenant, segment (label), segment_advice, channel, week, customers, avg_spend, avg_orders, avg_recency_days, total_revenue.';

-- The template text with every {{ name }} replaced by vars->>name.
create or replace function rfm_template_render(body text, vars jsonb) returns text
language plpgsql immutable
as $$
declare
  v_out text := body;
  k text;
  v text;
begin
  for k, v in select e.key, e.value from jsonb_each_text(vars) e loop
    v_out := regexp_replace(v_out, '\{\{\s*' || k || '\s*\}\}', replace(coalesce(v, ''), '\', '\\'), 'g');
  end loop;
  return v_out;
end
$$;
grant execute on function rfm_template_render(text, jsonb) to bizos_authenticated;
comment on function rfm_template_render(text, jsonb) is
  'A template with every {{ name }} replaced by the value of vars->name.';

-- One template as the API shows it.
create or replace function rfm_template_json(segment text, channel text) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
           'segment', g.code, 'channel', ch.code,
           'body', coalesce(t.body, d.body), 'system', d.system,
           'version', coalesce(t.version, 0), 'is_default', t.body is null,
           'updated_at', t.updated_at)
    from rfm_segments g
   cross join rfm_channels ch
    join rfm_template_defaults d on d.channel = ch.code
    left join rfm_content_templates t
      on t.tenant_id = bizos.tenant_id() and t.segment = g.code and t.channel = ch.code
   where g.code = rfm_template_json.segment and ch.code = rfm_template_json.channel
$$;
grant execute on function rfm_template_json(text, text) to bizos_authenticated;
comment on function rfm_template_json(text, text) is
  'The caller''s tenant''s content template of a segment and channel (its own, or the built-in as version 0).';

-- rfm_template_list() -> {items: [template per segment and channel],
-- variables: [...]}.
create or replace function rfm_template_list() returns jsonb
language sql stable
as $$
  select jsonb_build_object(
           'items', coalesce(jsonb_agg(rfm_template_json(g.code, ch.code) order by g.position, ch.position), '[]'::jsonb),
           'variables', to_jsonb(rfm_template_variables()))
    from rfm_segments g cross join rfm_channels ch
$$;
grant execute on function rfm_template_list() to bizos_authenticated;
comment on function rfm_template_list() is
  'Every content template of the caller''s tenant (per segment and channel; built-ins as version 0) and the variables templates may use.';

-- rfm_template_set(segment, channel, {body}) -> the template: saves the
-- tenant's template (rfm.manage); the version goes up by one when the
-- text changes (saving the same text keeps it). Every {{variable}} must
-- be one of rfm_template_variables().
create or replace function rfm_template_set(segment text, channel text, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_body text;
  v_segment text;
  v_channel text;
  v_unknown text;
begin
  perform require_permission('rfm.manage');
  perform payload_check(payload, '{"body": "text"}');
  v_body := payload_text(payload, 'body', true, 4000);
  v_segment := vocabulary_check('rfm_segments', lower(btrim(segment)), 'segment');
  v_channel := vocabulary_check('rfm_channels', lower(btrim(channel)), 'channel');
  if v_segment is null then
    perform raise_field('segment', 'is required');
  end if;
  if v_channel is null then
    perform raise_field('channel', 'is required');
  end if;
  select string_agg(distinct '{{' || m[1] || '}}', ', ') into v_unknown
    from regexp_matches(v_body, '\{\{\s*([^{}]*?)\s*\}\}', 'g') m
   where m[1] <> all (rfm_template_variables());
  if v_unknown is not null then
    perform raise_field('body', format('unknown variable %s; the variables are %s', v_unknown,
                                       (select string_agg('{{' || v || '}}', ', ') from unnest(rfm_template_variables()) v)));
  end if;
  insert into rfm_content_templates as t (tenant_id, segment, channel, body, version, updated_by)
  values (bizos.tenant_id(), v_segment, v_channel, v_body, 1, bizos.uid())
  on conflict on constraint rfm_content_templates_pkey do update
     set body = excluded.body, version = t.version + 1, updated_by = excluded.updated_by
   where t.body is distinct from excluded.body;
  return rfm_template_json(v_segment, v_channel);
end
$$;
grant execute on function rfm_template_set(text, text, jsonb) to bizos_authenticated;
comment on function rfm_template_set(text, text, jsonb) is
  'Saves the tenant''s content template of a segment and channel (rfm.manage); a changed text gets the next version.';

-- Rupiah as Indonesians write it: Rp 1.234.567.
create or replace function rfm_rupiah(amount numeric) returns text
language sql immutable
as $$
  select 'Rp ' || replace(to_char(round(coalesce(amount, 0)), 'FM999,999,999,999,999,990'), ',', '.')
$$;
grant execute on function rfm_rupiah(numeric) to bizos_authenticated;
comment on function rfm_rupiah(numeric) is 'An amount rounded to whole rupiah, Indonesian style: Rp 1.234.567.';

-- rfm_content_prompt(segment, channel, week) -> {segment, channel, week,
-- template_version, customers, system, user}: the template of the segment
-- and channel rendered with the snapshot's figures of the segment (over
-- the customers the caller may read; rfm.manage). The messages carry no
-- customer's data, only the segment's counts and averages. The gateway
-- caches the answer per prompt, i.e. per (segment, channel, template
-- text, week's figures); the week is in the prompt, so every week
-- generates anew.
create or replace function rfm_content_prompt(segment text, channel text, week date default null) returns jsonb
language plpgsql stable
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_segment text;
  v_channel text;
  v_run rfm_runs;
  v_tpl jsonb;
  v_vars jsonb;
begin
  perform require_permission('rfm.manage');
  v_segment := vocabulary_check('rfm_segments', lower(btrim(segment)), 'segment');
  v_channel := vocabulary_check('rfm_channels', lower(btrim(channel)), 'channel');
  if v_segment is null then
    perform raise_field('segment', 'is required');
  end if;
  if v_channel is null then
    perform raise_field('channel', 'is required');
  end if;
  v_run := rfm_snapshot(week);
  v_tpl := rfm_template_json(v_segment, v_channel);
  select jsonb_build_object(
           'tenant', (select t.name from tenants t where t.tenant_id = v_tenant),
           'segment', g.label, 'segment_advice', g.advice, 'channel', v_channel,
           'week', to_char(v_run.week, 'YYYY-MM-DD'),
           'customers', x.n::text,
           'avg_spend', rfm_rupiah(x.avg_spend),
           'avg_orders', replace(to_char(round(coalesce(x.avg_orders, 0), 1), 'FM999999990.0'), '.', ','),
           'avg_recency_days', round(coalesce(x.avg_recency, 0))::text,
           'total_revenue', rfm_rupiah(x.revenue))
    into v_vars
    from rfm_segments g
   cross join (select count(*) as n, avg(s.monetary) as avg_spend, avg(s.frequency) as avg_orders,
                      avg(s.recency_days) as avg_recency, sum(s.monetary) as revenue
                 from rfm_scores s
                where s.tenant_id = v_tenant and s.week = v_run.week and s.segment = v_segment) x
   where g.code = v_segment;
  return jsonb_build_object(
    'segment', v_segment, 'channel', v_channel, 'week', v_run.week,
    'template_version', v_tpl -> 'version', 'customers', (v_vars ->> 'customers')::integer,
    'system', rfm_template_render(v_tpl ->> 'system', v_vars),
    'user', rfm_template_render(v_tpl ->> 'body', v_vars));
end
$$;
grant execute on function rfm_content_prompt(text, text, date) to bizos_authenticated;
comment on function rfm_content_prompt(text, text, date) is
  'The content prompt of an RFM segment and channel (rfm.manage): the tenant''s template (or the built-in) rendered with the segment''s figures of a snapshot (default the latest).';
