-- The CEO digest (migration V31; AI-1). The database computes
-- every number; the worker (bizos_bff::digest) only words them.
--
-- Who calls what:
--   digest_business_day, digest_day_of_job, digest_aggregates, digest_store
--                          the worker's login (bizos_worker): system work of
--                          a tenant, run by the `digest.build` job
--   digest_latest, digest_for
--                          users with digest.read (super_admin, director),
--                          under RLS
--   digest_request         the same users: a digest.build job of a past
--                          day, on demand (POST /api/digest)
--
-- The figures of digest_aggregates(tenant, day), all in IDR (invoices in
-- other currencies are not summed into rupiah), days cut in the tenant's
-- time zone:
--   day              the business day summarised: the last day before the
--                    run's local date with working hours in the tenant's
--                    calendar (business_intervals: its hours and holidays;
--                    Monday's digest is Friday's), or the day the job names
--   prev_day         the business day before `day` (the comparison of the
--                    day's figures)
--   month to date    the first of day's month .. day; the previous month to
--                    date: the same number of days from the first of the
--                    previous month, never past its end
--   revenue_invoiced_*   subtotal (excl. PPN) of ISSUED/PAID IDR invoices by
--                    issue date: the KPI metric `revenue`
--   revenue_collected_*  payments on ISSUED/PAID IDR invoices by paid_on: the
--                    KPI metric `cash_collected`
--   revenue_target_month the `revenue` KPI targets of every assignee, each
--                    prorated to the days of its period that fall in the
--                    month; revenue_target_attainment_pct = invoiced month to
--                    date / that target x 100, month_elapsed_pct the share of
--                    the month's days up to `day` (the pace to compare with)
--   leads_new_*      leads created; leads_converted_mtd those of them now
--                    CONVERTED; lead_conversion_pct_mtd their share
--   tickets_pending  tickets created before the end of `day` and not
--                    resolved, closed or cancelled by then;
--                    tickets_pending_overdue those of them past a due time
--                    of their SLA policy at the end of `day`
--   sla_breaches_*   tickets created in the period that had missed a due
--                    time (response or resolution, v_sla_status's rule) by
--                    the end of the period's last day
--   *_change_pct     the change of a figure against its comparison (the
--                    previous business day, the previous month to date, the
--                    end of last month) in percent; NULL when that is 0
--   ar_*             receivables at the end of `day` (kpi_ar_open_at: the
--                    same ledger as v_ar_aging and the KPI AR metrics):
--                    outstanding, overdue and the overdue buckets;
--                    ar_overdue_month_start at the end of the previous month
--   top_customers    the five largest customers by revenue invoiced month to
--                    date; largest_overdue the five largest overdue balances
--   kpi              per metric with a target whose period contains `day`
--                    and a measurable actual: the targets and the average
--                    attainment (actual / target x 100, kpi_actual over the
--                    target's period up to the tenant's today), and how
--                    many of them are in_progress, achieved and missed on
--                    the tenant's today (kpi_target_status, as GET
--                    /api/kpi/progress says)
-- Amounts are rounded to the rupiah, percentages to one decimal.

-- The last business day before `before` (local dates): a day with working
-- hours in the tenant's calendar; without one in the two weeks before, the
-- day before.
create or replace function digest_business_day(tenant uuid, before date) returns date
language sql stable security definer
as $$
  select coalesce(
    (select max((b.starts_at at time zone business_time_zone(tenant))::date)
       from business_intervals(tenant, before - 14, before - 1) b),
    before - 1)
$$;
select pin_search_path('digest_business_day(uuid, date)');
revoke execute on function digest_business_day(uuid, date) from public;
grant execute on function digest_business_day(uuid, date) to bizos_worker;
comment on function digest_business_day(uuid, date) is
  'The tenant''s last business day (working hours in its calendar, holidays excluded) before a local date; the day before when the calendar has none in the two weeks before.';

-- The day a digest.build job summarises: payload.day when given (a re-run
-- of a past day), else the business day before the local date of the
-- instant the job was due (a job run late still summarises its own day).
create or replace function digest_day_of_job(tenant uuid, job uuid) returns date
language plpgsql stable security definer
as $$
declare
  v_job jobs;
  v_day date;
begin
  select * into v_job from jobs j where j.tenant_id = tenant and j.job_id = job;
  if not found then
    raise exception using errcode = 'P0002', column = 'job_id', message = format('job_id: no job %s of the tenant', job);
  end if;
  if v_job.payload ? 'day' then
    begin
      v_day := (v_job.payload ->> 'day')::date;
    exception when others then
      raise exception using errcode = 'P0001', column = 'payload.day',
        message = 'payload.day: must be a date (YYYY-MM-DD)';
    end;
    if v_day is null then
      raise exception using errcode = 'P0001', column = 'payload.day', message = 'payload.day: must be a date (YYYY-MM-DD)';
    end if;
    return v_day;
  end if;
  return digest_business_day(tenant, tenant_date(v_job.run_at, tenant));
end
$$;
select pin_search_path('digest_day_of_job(uuid, uuid)');
revoke execute on function digest_day_of_job(uuid, uuid) from public;
grant execute on function digest_day_of_job(uuid, uuid) to bizos_worker;
comment on function digest_day_of_job(uuid, uuid) is
  'The business day a digest.build job summarises: payload.day, or the business day before the local date the job was due.';

-- Tickets of the tenant created in [from_ts, to_ts) that had missed a due
-- time of their SLA policy by at_ts (v_sla_status's rule, at a given
-- instant instead of now()); due times from a business clock
-- (business_clock over the tenant's days up to at_ts: it covers every
-- calendar day they overlap, so every due time before at_ts is on it).
create or replace function digest_sla_breaches(tenant uuid, from_ts timestamptz, to_ts timestamptz,
                                               at_ts timestamptz, starts timestamptz[], ends timestamptz[],
                                               cums double precision[])
returns bigint
language sql stable
as $$
  select count(*)
    from tickets t
    join sla_policies p on p.tenant_id = t.tenant_id and p.ticket_type = t.ticket_type and p.priority = t.priority
   cross join lateral (select business_clock_at(t.created_at, starts, ends, cums) as b) c
   cross join lateral (
     select business_clock_instant(c.b + p.response_minutes * 60, starts, ends, cums) as response_due,
            business_clock_instant(c.b + p.resolution_minutes * 60, starts, ends, cums) as resolution_due,
            coalesce(t.first_response_at, t.resolved_at, t.closed_at, t.cancelled_at) as responded_at,
            coalesce(t.resolved_at, t.closed_at, t.cancelled_at) as finished_at) d
   where t.tenant_id = tenant
     and t.created_at >= from_ts and t.created_at < to_ts
     and ((d.response_due < at_ts and coalesce(d.responded_at, 'infinity') > d.response_due)
          or (d.resolution_due < at_ts and coalesce(d.finished_at, 'infinity') > d.resolution_due))
$$;
revoke execute on function digest_sla_breaches(uuid, timestamptz, timestamptz, timestamptz, timestamptz[],
                                               timestamptz[], double precision[]) from public;
comment on function digest_sla_breaches(uuid, timestamptz, timestamptz, timestamptz, timestamptz[],
                                        timestamptz[], double precision[]) is
  'Internal (digest_aggregates): tickets created in [from_ts, to_ts) that had missed an SLA due time by at_ts.';

-- digest_aggregates(tenant, day) -> jsonb: every figure of the digest (see
-- the head of this file). SECURITY DEFINER for the worker's system job: it
-- reads the whole tenant, and runs the shared report functions
-- (kpi_ar_open_at, kpi_actual) under the tenant's claims, which it puts
-- back as they were before it returns.
create or replace function digest_aggregates(tenant uuid, day date) returns jsonb
language plpgsql security definer
as $$
declare
  v_tz text;
  v_locale text;
  v_prev date;
  v_m0 date;
  v_m_end date;
  v_pm0 date;
  v_pm_end date;
  v_start date;
  d0 timestamptz;
  d1 timestamptz;
  p0 timestamptz;
  p1 timestamptz;
  m0 timestamptz;
  pm0 timestamptz;
  pm1 timestamptz;
  f jsonb;
  v_inv record;
  v_pay record;
  v_leads record;
  v_tickets record;
  v_ar record;
  v_target numeric;
  v_overdue_month_start numeric;
  v_top jsonb;
  v_overdue jsonb;
  v_kpi jsonb;
  v_targets jsonb;
  v_target_row jsonb;
  v_actual numeric;
  v_actual_json jsonb;
  v_measured jsonb := '[]';
  v_pair record;
  v_claims text;
  v_starts timestamptz[];
  v_ends timestamptz[];
  v_cums double precision[];
begin
  if tenant is null then
    raise exception using errcode = 'P0001', column = 'tenant_id', message = 'tenant_id: is required';
  end if;
  if day is null then
    raise exception using errcode = 'P0001', column = 'day', message = 'day: is required';
  end if;
  select t.time_zone, t.locale into v_tz, v_locale from tenants t where t.tenant_id = tenant;
  if not found then
    raise exception using errcode = 'P0002', column = 'tenant_id', message = format('tenant_id: no tenant %s', tenant);
  end if;
  -- The shared report functions read the tenant from the claims: set for
  -- the call, put back before returning (an error rolls the setting back
  -- with the transaction or savepoint).
  v_claims := current_setting('request.jwt.claims', true);
  -- SET LOCAL: on Citus only the command reaches the workers.
  execute format('set local request.jwt.claims = %L', jsonb_build_object('tenant_id', tenant));

  v_prev := digest_business_day(tenant, day);
  v_m0 := date_trunc('month', day)::date;
  v_m_end := (v_m0 + interval '1 month')::date - 1;
  v_pm0 := (v_m0 - interval '1 month')::date;
  v_pm_end := least(v_pm0 + (day - v_m0), v_m0 - 1);
  v_start := least(v_pm0, v_prev);
  d0 := day::timestamp at time zone v_tz;
  d1 := (day + 1)::timestamp at time zone v_tz;
  p0 := v_prev::timestamp at time zone v_tz;
  p1 := (v_prev + 1)::timestamp at time zone v_tz;
  m0 := v_m0::timestamp at time zone v_tz;
  pm0 := v_pm0::timestamp at time zone v_tz;
  pm1 := (v_pm_end + 1)::timestamp at time zone v_tz;

  -- revenue invoiced (KPI `revenue`)
  select coalesce(sum(i.subtotal) filter (where i.issue_date = day), 0) as day_,
         coalesce(sum(i.subtotal) filter (where i.issue_date = v_prev), 0) as prev_,
         coalesce(sum(i.subtotal) filter (where i.issue_date between v_m0 and day), 0) as mtd,
         coalesce(sum(i.subtotal) filter (where i.issue_date between v_pm0 and v_pm_end), 0) as prev_mtd
    into v_inv
    from invoices i
   where i.tenant_id = tenant and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
     and i.issue_date between v_start and day;

  -- cash collected (KPI `cash_collected`)
  select coalesce(sum(p.amount) filter (where p.paid_on = day), 0) as day_,
         coalesce(sum(p.amount) filter (where p.paid_on = v_prev), 0) as prev_,
         coalesce(sum(p.amount) filter (where p.paid_on between v_m0 and day), 0) as mtd,
         coalesce(sum(p.amount) filter (where p.paid_on between v_pm0 and v_pm_end), 0) as prev_mtd
    into v_pay
    from payments p
    join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
   where p.tenant_id = tenant and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
     and p.paid_on between v_start and day;

  -- the month's revenue target: every assignee's `revenue` target, prorated
  -- to the days of its period inside the month
  select sum(t.target_value
             * (least(upper(t.period), v_m_end + 1) - greatest(lower(t.period), v_m0))
             / (upper(t.period) - lower(t.period)))
    into v_target
    from kpi_targets t
   where t.tenant_id = tenant and t.metric_key = 'revenue'
     and t.period && daterange(v_m0, v_m_end + 1);

  -- leads
  select count(*) filter (where l.created_at >= d0 and l.created_at < d1) as day_,
         count(*) filter (where l.created_at >= p0 and l.created_at < p1) as prev_,
         count(*) filter (where l.created_at >= m0 and l.created_at < d1) as mtd,
         count(*) filter (where l.created_at >= pm0 and l.created_at < pm1) as prev_mtd,
         count(*) filter (where l.created_at >= m0 and l.created_at < d1 and l.status = 'CONVERTED') as converted_mtd,
         count(*) filter (where l.created_at >= pm0 and l.created_at < pm1 and l.status = 'CONVERTED') as converted_prev_mtd
    into v_leads
    from leads l
   where l.tenant_id = tenant and l.created_at >= least(pm0, p0) and l.created_at < d1;

  -- The business clock from the oldest ticket that matters (pending at the
  -- end of the day, or created in a compared period) to the day: tenant
  -- days, which business_clock covers with every calendar day they
  -- overlap (a calendar in another time zone).
  select c.starts, c.ends, c.cums into v_starts, v_ends, v_cums
    from business_clock(tenant,
                        least(v_pm0, v_prev,
                              (select tenant_date(min(t.created_at), tenant) from tickets t
                                where t.tenant_id = tenant and t.created_at < d1
                                  and coalesce(t.resolved_at, t.closed_at, t.cancelled_at, 'infinity') >= d1)),
                        day) c;

  -- tickets pending at the end of the day, and those of them past due
  select count(*) as pending,
         count(*) filter (where business_clock_instant(c.b + p.resolution_minutes * 60, v_starts, v_ends, v_cums) < d1
                             or (coalesce(t.first_response_at, 'infinity') >= d1
                                 and business_clock_instant(c.b + p.response_minutes * 60, v_starts, v_ends, v_cums) < d1))
           as pending_overdue
    into v_tickets
    from tickets t
    left join sla_policies p on p.tenant_id = t.tenant_id and p.ticket_type = t.ticket_type and p.priority = t.priority
   cross join lateral (select business_clock_at(t.created_at, v_starts, v_ends, v_cums) as b) c
   where t.tenant_id = tenant and t.created_at < d1
     and coalesce(t.resolved_at, t.closed_at, t.cancelled_at, 'infinity') >= d1;

  -- receivables at the end of the day (IDR): the buckets and the largest
  -- overdue customers from one reading of the ledger; and the overdue
  -- total at the end of last month
  with a as materialized (
    select * from kpi_ar_open_at(day) a where a.currency = 'IDR'
  ), top as (
    select a.customer_id, c.company_name, sum(a.outstanding) as amount, max(a.days_past_due) as days
      from a
      join customers c on c.tenant_id = tenant and c.customer_id = a.customer_id
     where a.days_past_due > 0
     group by a.customer_id, c.company_name
     order by 3 desc, 1
     limit 5
  )
  select coalesce(sum(a.outstanding), 0) as outstanding,
         coalesce(sum(a.outstanding) filter (where a.days_past_due > 0), 0) as overdue,
         coalesce(sum(a.outstanding) filter (where a.aging_bucket = '1-30'), 0) as d1_30,
         coalesce(sum(a.outstanding) filter (where a.aging_bucket = '31-60'), 0) as d31_60,
         coalesce(sum(a.outstanding) filter (where a.aging_bucket = '61-90'), 0) as d61_90,
         coalesce(sum(a.outstanding) filter (where a.aging_bucket = '>90'), 0) as d90_plus,
         (select coalesce(jsonb_agg(jsonb_build_object('customer_id', x.customer_id, 'company_name', x.company_name,
                                                       'overdue', round(x.amount), 'days_past_due', x.days)
                                    order by x.amount desc, x.customer_id), '[]')
            from top x) as largest
    into v_ar
    from a;
  v_overdue := v_ar.largest;
  v_overdue_month_start := kpi_ar_at(v_m0 - 1, true);

  select coalesce(jsonb_agg(jsonb_build_object('customer_id', x.customer_id, 'company_name', x.company_name,
                                               'invoiced_mtd', round(x.amount)) order by x.amount desc, x.customer_id), '[]')
    into v_top
    from (select i.customer_id, c.company_name, sum(i.subtotal) as amount
            from invoices i
            join customers c on c.tenant_id = i.tenant_id and c.customer_id = i.customer_id
           where i.tenant_id = tenant and i.status in ('ISSUED', 'PAID') and i.currency = 'IDR'
             and i.issue_date between v_m0 and day
           group by i.customer_id, c.company_name
           order by 3 desc, 1
           limit 5) x;

  -- KPI attainment and the targets' states on the tenant's today
  -- (kpi_target_status, as v_kpi_actual_vs_target and GET /api/kpi/progress
  -- give them): the running targets are read first and measured one by one
  -- (as kpi_actuals does): kpi_actual reads distributed tables, and on Citus
  -- a function that does cannot run per row of a query on a shard (the
  -- lateral call it was failed on the worker).
  select coalesce(jsonb_agg(jsonb_build_object('metric_key', t.metric_key, 'name', d.name,
                                               'direction', d.direction, 'assignee', t.assignee_user_id,
                                               'period', t.period, 'target', t.target_value)), '[]')
    into v_targets
    from kpi_targets t
    join kpi_metric_definitions d on d.tenant_id = t.tenant_id and d.metric_key = t.metric_key
   where t.tenant_id = tenant and t.period @> day and t.target_value > 0;
  for v_target_row in select x.value from jsonb_array_elements(v_targets) x loop
    v_actual_json := kpi_actual(v_target_row ->> 'metric_key', (v_target_row ->> 'assignee')::uuid,
                                (v_target_row ->> 'period')::daterange);
    v_actual := (v_actual_json ->> 'value')::numeric;
    if v_actual is not null then
      v_measured := v_measured || jsonb_build_object(
        'metric_key', v_target_row ->> 'metric_key', 'name', v_target_row ->> 'name',
        'direction', v_target_row ->> 'direction',
        'pct', v_actual / (v_target_row ->> 'target')::numeric * 100,
        'target_status', kpi_target_status((v_target_row ->> 'period')::daterange, tenant_today(tenant),
                                           v_target_row ->> 'direction', (v_target_row ->> 'target')::numeric,
                                           v_actual, v_actual_json ->> 'status'));
    end if;
  end loop;
  select coalesce(jsonb_agg(jsonb_build_object('metric_key', k.metric_key, 'name', k.name,
                                               'direction', k.direction, 'targets', k.targets,
                                               'attainment_pct', k.attainment, 'in_progress', k.in_progress,
                                               'achieved', k.achieved, 'missed', k.missed) order by k.metric_key), '[]')
    into v_kpi
    from (select x.metric_key, x.name, x.direction, count(*) as targets, round(avg(x.pct), 1) as attainment,
                 count(*) filter (where x.target_status = 'in_progress') as in_progress,
                 count(*) filter (where x.target_status = 'achieved') as achieved,
                 count(*) filter (where x.target_status = 'missed') as missed
            from jsonb_to_recordset(v_measured) as x (metric_key text, name text, direction text, pct numeric,
                                                      target_status text)
           group by x.metric_key, x.name, x.direction) k;

  f := jsonb_build_object(
    'revenue_invoiced_day', round(v_inv.day_), 'revenue_invoiced_prev_day', round(v_inv.prev_),
    'revenue_invoiced_mtd', round(v_inv.mtd), 'revenue_invoiced_prev_mtd', round(v_inv.prev_mtd),
    'revenue_collected_day', round(v_pay.day_), 'revenue_collected_prev_day', round(v_pay.prev_),
    'revenue_collected_mtd', round(v_pay.mtd), 'revenue_collected_prev_mtd', round(v_pay.prev_mtd),
    'revenue_target_month', round(v_target),
    'revenue_target_attainment_pct', case when v_target > 0 then round(v_inv.mtd / v_target * 100, 1) end,
    'month_elapsed_pct', round((day - v_m0 + 1)::numeric / (v_m_end - v_m0 + 1) * 100, 1),
    'leads_new_day', v_leads.day_, 'leads_new_prev_day', v_leads.prev_,
    'leads_new_mtd', v_leads.mtd, 'leads_new_prev_mtd', v_leads.prev_mtd,
    'leads_converted_mtd', v_leads.converted_mtd,
    'lead_conversion_pct_mtd', case when v_leads.mtd > 0 then round(v_leads.converted_mtd::numeric / v_leads.mtd * 100, 1) end,
    'lead_conversion_pct_prev_mtd',
      case when v_leads.prev_mtd > 0 then round(v_leads.converted_prev_mtd::numeric / v_leads.prev_mtd * 100, 1) end,
    'tickets_pending', v_tickets.pending, 'tickets_pending_overdue', v_tickets.pending_overdue,
    'sla_breaches_day', digest_sla_breaches(tenant, d0, d1, d1, v_starts, v_ends, v_cums),
    'sla_breaches_prev_day', digest_sla_breaches(tenant, p0, p1, p1, v_starts, v_ends, v_cums),
    'sla_breaches_mtd', digest_sla_breaches(tenant, m0, d1, d1, v_starts, v_ends, v_cums),
    'sla_breaches_prev_mtd', digest_sla_breaches(tenant, pm0, pm1, pm1, v_starts, v_ends, v_cums),
    'ar_outstanding', round(v_ar.outstanding), 'ar_overdue', round(v_ar.overdue),
    'ar_overdue_1_30', round(v_ar.d1_30), 'ar_overdue_31_60', round(v_ar.d31_60),
    'ar_overdue_61_90', round(v_ar.d61_90), 'ar_overdue_over_90', round(v_ar.d90_plus),
    'ar_overdue_month_start', round(v_overdue_month_start));

  -- Changes against the comparison figure, in percent (NULL when that is 0).
  for v_pair in
    select x.cur, x.prev from (values
      ('revenue_invoiced_day', 'revenue_invoiced_prev_day'), ('revenue_invoiced_mtd', 'revenue_invoiced_prev_mtd'),
      ('revenue_collected_day', 'revenue_collected_prev_day'), ('revenue_collected_mtd', 'revenue_collected_prev_mtd'),
      ('leads_new_day', 'leads_new_prev_day'), ('leads_new_mtd', 'leads_new_prev_mtd'),
      ('sla_breaches_mtd', 'sla_breaches_prev_mtd'), ('ar_overdue', 'ar_overdue_month_start')) as x (cur, prev)
  loop
    f := f || jsonb_build_object(v_pair.cur || '_change_pct',
      case when (f ->> v_pair.prev)::numeric > 0
           then round(((f ->> v_pair.cur)::numeric - (f ->> v_pair.prev)::numeric) / (f ->> v_pair.prev)::numeric * 100, 1)
      end);
  end loop;

  execute format('set local request.jwt.claims = %L', coalesce(v_claims, ''));
  return jsonb_build_object(
    'day', day, 'prev_day', v_prev, 'month_start', v_m0, 'prev_month_start', v_pm0,
    'prev_month_end', v_pm_end, 'currency', 'IDR', 'time_zone', v_tz, 'locale', v_locale,
    'figures', f, 'top_customers', v_top, 'largest_overdue', v_overdue, 'kpi', v_kpi);
end
$$;
select pin_search_path('digest_aggregates(uuid, date)');
revoke execute on function digest_aggregates(uuid, date) from public;
grant execute on function digest_aggregates(uuid, date) to bizos_worker;
comment on function digest_aggregates(uuid, date) is
  'The figures of a tenant''s daily digest for a business day and its month to date (revenue invoiced and collected vs target, leads, tickets and SLA breaches, receivables, top customers, KPI attainment); see sql/api/digest.sql.';

-- Whether the tenant's digest of the day exists (a job run twice stops early).
create or replace function digest_exists(tenant uuid, day date) returns boolean
language sql stable security definer
as $$
  select exists (select 1 from digests d where d.tenant_id = tenant and d.digest_date = day)
$$;
select pin_search_path('digest_exists(uuid, date)');
revoke execute on function digest_exists(uuid, date) from public;
grant execute on function digest_exists(uuid, date) to bizos_worker;
comment on function digest_exists(uuid, date) is 'Whether the tenant''s digest of a business day is stored.';

-- digest_store(tenant, day, aggregates, insights, source, call_ids, job,
-- email_vars) -> {created, email_id}: stores the card and, only when this
-- call created it, queues its e-mail to the tenant's active directors and
-- super admins (template digest.daily.<locale>), in one transaction. A
-- second call for the same day changes nothing and sends nothing.
create or replace function digest_store(tenant uuid, day date, aggregates jsonb, insights jsonb, source text,
                                        call_ids uuid[], job uuid, email_vars jsonb)
returns jsonb
language plpgsql security definer
as $$
declare
  v_locale text;
  v_to text[];
  v_email uuid;
  v_created boolean;
begin
  select t.locale into v_locale from tenants t where t.tenant_id = tenant;
  if not found then
    raise exception using errcode = 'P0002', column = 'tenant_id', message = format('tenant_id: no tenant %s', tenant);
  end if;
  insert into digests (tenant_id, digest_date, locale, aggregates, insights, source, call_ids, job_id)
  values (tenant, day, v_locale, aggregates, insights, source, coalesce(call_ids, '{}'), job)
  on conflict on constraint digests_pkey do nothing;
  v_created := found;
  if not v_created then
    select d.email_id into v_email from digests d where d.tenant_id = tenant and d.digest_date = day;
    return jsonb_build_object('created', false, 'email_id', v_email);
  end if;
  select array_agg(p.email order by p.email) into v_to
    from profiles p
   where p.tenant_id = tenant and p.active and p.app_role in ('director', 'super_admin');
  if v_to is not null then
    v_email := email_queue(tenant, null, 'digest.daily.' || v_locale, v_to[1:50], email_vars, '{}');
    update digests d set email_id = v_email where d.tenant_id = tenant and d.digest_date = day;
  end if;
  return jsonb_build_object('created', true, 'email_id', v_email);
end
$$;
select pin_search_path('digest_store(uuid, date, jsonb, jsonb, text, uuid[], uuid, jsonb)');
revoke execute on function digest_store(uuid, date, jsonb, jsonb, text, uuid[], uuid, jsonb) from public;
grant execute on function digest_store(uuid, date, jsonb, jsonb, text, uuid[], uuid, jsonb) to bizos_worker;
comment on function digest_store(uuid, date, jsonb, jsonb, text, uuid[], uuid, jsonb) is
  'Stores a tenant''s digest of a business day and, only when this call created it, queues its e-mail to the active directors and super admins; returns {created, email_id}.';

-- What the readers get.
create or replace function digest_json(d digests) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'digest_date', d.digest_date, 'locale', d.locale, 'source', d.source,
    'insights', d.insights, 'aggregates', d.aggregates,
    'emailed', d.email_id is not null, 'created_at', d.created_at)
$$;
grant execute on function digest_json(digests) to bizos_authenticated;

-- digest_latest() -> the caller's tenant's newest digest, or NULL.
create or replace function digest_latest() returns jsonb
language plpgsql stable
as $$
declare
  r digests;
begin
  perform require_permission('digest.read');
  select * into r from digests d
   where d.tenant_id = bizos.tenant_id()
   order by d.digest_date desc
   limit 1;
  return case when found then digest_json(r) end;
end
$$;
grant execute on function digest_latest() to bizos_authenticated;
comment on function digest_latest() is 'The newest digest of the caller''s tenant (digest.read), or NULL.';

-- digest_for(day) -> the digest of that business day, or NULL.
create or replace function digest_for(day date) returns jsonb
language plpgsql stable
as $$
declare
  r digests;
begin
  perform require_permission('digest.read');
  if day is null then
    perform raise_field('date', 'is required (YYYY-MM-DD)');
  end if;
  select * into r from digests d
   where d.tenant_id = bizos.tenant_id() and d.digest_date = day;
  return case when found then digest_json(r) end;
end
$$;
grant execute on function digest_for(date) to bizos_authenticated;
comment on function digest_for(date) is 'The digest of the caller''s tenant for a business day (digest.read), or NULL.';

-- digest_request({day?}) -> {job_id, day, status}: the digest of a
-- business day on demand (digest.read: whoever may read the digest), as a
-- digest.build job of the caller with payload.day: the same job, and so
-- the same code path, as the daily schedule's. `day` defaults to the day
-- the schedule's next run summarises (the last business day before the
-- tenant's today); only a day that is over may be asked for (today's
-- figures are not final, and the digest of a day is stored once), and not
-- a day before the tenant existed: the first day is the one its first
-- scheduled digest summarises (the business day before the local date it
-- was created), earlier days are refused (a stored digest of a day before
-- its data would stay empty, and be mailed).
-- Requests for the same day while its job is queued or running, or after
-- it succeeded, get that job (dedup key digest.build:<day>:<n>); after a
-- job of the day died or was cancelled, the next request queues a new one
-- (n + 1). Two requests at once compute the same key, and the jobs'
-- unique key makes them one job. SECURITY DEFINER: directors read the
-- digest but enqueue nothing under the jobs' insert policy; the job is
-- still the caller's (created_by), which v_jobs shows to its creator and
-- to the tenant's directors and super admins.
create or replace function digest_request(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_today date;
  v_first date;
  v_day date;
  v_prefix text;
  v_job uuid;
  v_status text;
  v_attempts integer;
begin
  perform require_permission('digest.read');
  if bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"day": "date"}');
  v_today := tenant_today(v_tenant);
  v_day := coalesce(payload_date(payload, 'day'), digest_business_day(v_tenant, v_today));
  if v_day >= v_today then
    perform raise_field('day', format('%s is not over yet in the tenant''s time zone (today is %s): ask for an earlier day',
                                      v_day, v_today));
  end if;
  -- The first day the schedule summarises: the business day before the
  -- tenant's first morning.
  select digest_business_day(v_tenant, tenant_date(t.created_at, v_tenant)) into v_first
    from tenants t where t.tenant_id = v_tenant;
  if v_day < v_first then
    perform raise_field('day', format('%s is before the tenant existed (its first digest day is %s)', v_day, v_first));
  end if;
  v_prefix := 'digest.build:' || v_day::text || ':';
  select j.job_id, j.status into v_job, v_status
    from jobs j
   where j.tenant_id = v_tenant and j.kind = 'digest.build' and starts_with(j.dedup_key, v_prefix)
     and j.status in ('queued', 'running', 'succeeded')
   order by j.created_at desc
   limit 1;
  if v_job is null then
    select count(*) into v_attempts
      from jobs j
     where j.tenant_id = v_tenant and j.kind = 'digest.build' and starts_with(j.dedup_key, v_prefix);
    v_job := job_insert(v_tenant, bizos.uid(), 'digest.build', jsonb_build_object('day', v_day), null, 0,
                        v_prefix || v_attempts::text);
    select j.status into v_status from jobs j where j.tenant_id = v_tenant and j.job_id = v_job;
  end if;
  return jsonb_build_object('job_id', v_job, 'day', v_day, 'status', v_status);
end
$$;
select pin_search_path('digest_request(jsonb)');
revoke execute on function digest_request(jsonb) from public;
grant execute on function digest_request(jsonb) to bizos_authenticated;
comment on function digest_request(jsonb) is
  'The digest of a past business day on demand (digest.read): the caller''s digest.build job for payload.day (default: the last business day before the tenant''s today), or the queued, running or succeeded job of that day; returns {job_id, day, status}.';

-- New tenants get the daily schedule (05:00 their time).
create or replace function seed_digest_schedule(tenant uuid) returns void
language plpgsql security definer
as $$
begin
    insert into schedules (tenant_id, name, kind, payload, at_time, next_run_at)
    values (tenant, 'daily digest', 'digest.build', '{}', time '05:00', pg_catalog.now())
    on conflict do nothing;
end
$$;
select pin_search_path('seed_digest_schedule(uuid)');
revoke execute on function seed_digest_schedule(uuid) from public;

create or replace function tenants_seed_digest_schedule() returns trigger
language plpgsql security definer
as $$
begin
  perform seed_digest_schedule(new.tenant_id);
  return null;
end
$$;
select pin_search_path('tenants_seed_digest_schedule()');
revoke execute on function tenants_seed_digest_schedule() from public;
create or replace trigger tenants_seed_digest_schedule after insert on tenants
  for each row execute function tenants_seed_digest_schedule();
