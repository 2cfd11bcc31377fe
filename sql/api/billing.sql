-- Billing (docs/billing.md): the billing clock, subscriptions that follow
-- a tenant's plan, plan changes with proration, the month-end run that
-- closes a period into a draft invoice, finalization (gapless number) and
-- void. Tables: V54. The operator's data about tenants: these run in the
-- control database (the database holding `tenants`).

-- ---------------------------------------------------------------------------
-- the clock
-- ---------------------------------------------------------------------------

-- The clock and the month-end's helpers below are PL/pgSQL: a helper in
-- `language sql` with a pinned search path is planned again on every call
-- (sql/CONVENTIONS.md), which was most of a tenant's month-end (0.04-0.5
-- ms a call, several calls a tenant).
create or replace function billing_now() returns timestamptz
language plpgsql stable security definer
as $$
begin
  return coalesce((select c.frozen_at from billing_clock c where c.clock_id), pg_catalog.now());
end
$$;
select pin_search_path('billing_now()');
revoke execute on function billing_now() from public;
grant execute on function billing_now() to bizos_authenticated, bizos_worker;
comment on function billing_now() is
  'The billing clock: now(), unless a test froze it (billing_clock_set). Every billing and dunning decision reads this, never now().';

create or replace function billing_clock_set(at timestamptz) returns timestamptz
language plpgsql
as $$
begin
  update billing_clock set frozen_at = billing_clock_set.at, updated_at = pg_catalog.now() where clock_id;
  return billing_now();
end
$$;
select pin_search_path('billing_clock_set(timestamptz)');
revoke execute on function billing_clock_set(timestamptz) from public;
comment on function billing_clock_set(timestamptz) is
  'Freezes the billing clock at an instant (NULL: back to the real time). The database owner''s (the operator''s test clock).';

create or replace function billing_today(p_tenant_id uuid) returns date
language plpgsql stable security definer
as $$
begin
  return (select (billing_now() at time zone t.time_zone)::date from tenants t where t.tenant_id = p_tenant_id);
end
$$;
select pin_search_path('billing_today(uuid)');
revoke execute on function billing_today(uuid) from public;
grant execute on function billing_today(uuid) to bizos_worker;
comment on function billing_today(uuid) is 'The tenant''s today by the billing clock (tenants.time_zone); NULL for an unknown tenant.';

-- ---------------------------------------------------------------------------
-- subscriptions follow the tenant's plan
-- ---------------------------------------------------------------------------

-- Whether a plan is sold by the month but has no annual price: billed by
-- the year it would cost nothing, so no subscription billed by the year
-- takes it (a free plan, 0 both ways, may).
create or replace function billing_annual_unpriced(p_plan_code text) returns boolean
language sql stable
as $$
  select exists (select 1 from plans p
                  where p.plan_code = p_plan_code and p.annual_price = 0 and p.monthly_price > 0)
$$;
revoke execute on function billing_annual_unpriced(text) from public;
comment on function billing_annual_unpriced(text) is
  'Whether the plan has a monthly price but no annual one (no subscription billed by the year may take it).';

-- The one place a subscription is created or its plan changed: called by
-- the trigger on tenants.plan_code, so that every path that gives a tenant
-- a plan (tenant creation, sign-up, the operator's plan change) makes or
-- changes the subscription in the same transaction.
-- A new subscription starts on the tenant's today, trialing for the
-- plan's trial_days (trial_ends_at: the start of the day the trial is
-- over, in the tenant's zone) or active without one, in the calendar month
-- of today. A plan change takes effect from the start of the tenant's
-- today: the old plan covers the period's days before it, the new plan the
-- days from it on (the prorations of the month-end invoice). Two changes
-- on one day keep the last.
create or replace function subscription_follow_plan(p_tenant_id uuid) returns void
language plpgsql security definer
as $$
declare
  v_plan text;
  v_zone text;
  v_today date;
  v_trial integer;
  v_sub subscriptions;
  v_change subscription_plan_changes;
begin
  select t.plan_code, t.time_zone into v_plan, v_zone from tenants t where t.tenant_id = p_tenant_id;
  if v_plan is null then
    return;
  end if;
  v_today := (billing_now() at time zone v_zone)::date;
  select * into v_sub from subscriptions s where s.tenant_id = p_tenant_id for update;
  if not found then
    select coalesce(p.trial_days, 0) into v_trial from plans p where p.plan_code = v_plan;
    insert into subscriptions (tenant_id, plan_code, status, started_on, trial_ends_at,
                               current_period_start, current_period_end)
    values (p_tenant_id, v_plan,
            case when v_trial > 0 then 'trialing' else 'active' end,
            v_today,
            case when v_trial > 0 then ((v_today + v_trial)::timestamp at time zone v_zone) end,
            date_trunc('month', v_today)::date,
            (date_trunc('month', v_today) + interval '1 month')::date)
    returning * into v_sub;
    insert into subscription_plan_changes (tenant_id, subscription_id, effective_on, from_plan_code, to_plan_code)
    values (p_tenant_id, v_sub.subscription_id, v_today, null, v_plan);
    return;
  end if;
  if v_sub.plan_code = v_plan then
    return;
  end if;
  if v_sub.status = 'canceled' then
    raise exception using errcode = 'P0001', column = 'plan_code',
      message = 'plan_code: the tenant''s subscription is canceled';
  end if;
  if v_sub.billing_interval = 'annual' and billing_annual_unpriced(v_plan) then
    raise exception using errcode = 'P0001', column = 'plan_code',
      message = format('plan_code: plan %s has no annual price, and the subscription is billed by the year', v_plan);
  end if;
  select * into v_change from subscription_plan_changes c
   where c.tenant_id = p_tenant_id and c.subscription_id = v_sub.subscription_id and c.effective_on >= v_today
   order by c.effective_on desc limit 1;
  if found and v_change.effective_on > v_today then
    raise exception using errcode = 'P0001', column = 'plan_code',
      message = 'plan_code: a later plan change is already recorded';
  end if;
  if found and v_change.from_plan_code is not distinct from v_plan then
    delete from subscription_plan_changes c where c.tenant_id = p_tenant_id and c.change_id = v_change.change_id;
  elsif found then
    update subscription_plan_changes c set to_plan_code = v_plan
     where c.tenant_id = p_tenant_id and c.change_id = v_change.change_id;
  else
    insert into subscription_plan_changes (tenant_id, subscription_id, effective_on, from_plan_code, to_plan_code)
    values (p_tenant_id, v_sub.subscription_id, v_today, v_sub.plan_code, v_plan);
  end if;
  update subscriptions s set plan_code = v_plan
   where s.tenant_id = p_tenant_id and s.subscription_id = v_sub.subscription_id;
end
$$;
select pin_search_path('subscription_follow_plan(uuid)');
revoke execute on function subscription_follow_plan(uuid) from public;
comment on function subscription_follow_plan(uuid) is
  'Creates the tenant''s subscription for its plan (trial from plans.trial_days) or records a plan change effective from the tenant''s today (billing clock).';

create or replace function tenants_follow_plan() returns trigger
language plpgsql security definer
as $$
begin
  if new.plan_code is not null then
    perform subscription_follow_plan(new.tenant_id);
  end if;
  return null;
end
$$;
select pin_search_path('tenants_follow_plan()');
revoke execute on function tenants_follow_plan() from public;
comment on function tenants_follow_plan() is
  'Trigger of tenants: a tenant given a plan gets (or changes) its subscription in the same transaction.';
-- Not on Citus, where tenants is a reference table (sql/citus/triggers.sql):
-- there tenant_set_plan() below follows the plan.
create or replace trigger tenants_follow_plan after insert or update of plan_code on tenants
  for each row execute function tenants_follow_plan();

-- tenant_set_plan(tenant, plan) -> whether the tenant exists: gives it the
-- plan, and its subscription follows in the same transaction (the trigger
-- above on a single node; this call on Citus, where a reference table's
-- trigger would run on every node's copy). Sign-up and the operator's plan
-- change go through it.
create or replace function tenant_set_plan(p_tenant_id uuid, p_plan_code text) returns boolean
language plpgsql
as $$
begin
  update tenants t set plan_code = p_plan_code where t.tenant_id = p_tenant_id;
  if not found then
    return false;
  end if;
  if citus_table('tenants') then
    perform subscription_follow_plan(p_tenant_id);
  end if;
  return true;
end
$$;
select pin_search_path('tenant_set_plan(uuid, text)');
revoke execute on function tenant_set_plan(uuid, text) from public;
comment on function tenant_set_plan(uuid, text) is
  'Internal: sets tenants.plan_code and makes or changes the subscription with it (trigger on a single node, this call on Citus); false when no such tenant.';

-- The operator changes a tenant's plan: tenants.plan_code, which the
-- trigger above turns into a plan change of the subscription. A tenant
-- created in a schema or database of its own (or another region's
-- cluster) has no tenants row here, where its subscription is kept: its
-- first plan writes its anchor (tenant_move_anchor: ids only, suspended)
-- with p_time_zone, the tenant's zone as its placement has it, so that
-- its periods are cut in its own days (docs/billing.md).
drop function if exists billing_change_plan(uuid, text);
create or replace function billing_change_plan(p_tenant_id uuid, p_plan_code text, p_time_zone text default null)
returns subscriptions
language plpgsql
as $$
declare
  v_sub subscriptions;
  v_placement control.tenant_placements;
begin
  if p_plan_code is null or not exists (select 1 from plans p where p.plan_code = p_plan_code) then
    raise exception using errcode = 'P0001', column = 'plan_code',
      message = format('plan_code: no plan %s (plans: %s)', coalesce(left(p_plan_code, 40), 'null'),
                       (select string_agg(p.plan_code, ', ' order by p.plan_code) from plans p));
  end if;
  if not exists (select 1 from tenants t where t.tenant_id = p_tenant_id) then
    select * into v_placement from control.tenant_placements p where p.tenant_id = p_tenant_id;
    if not found then
      raise exception using errcode = 'P0002', message = 'no such tenant';
    end if;
    perform tenant_move_anchor(p_tenant_id, v_placement.region, v_placement.tier);
    update tenants t set time_zone = p_time_zone where t.tenant_id = p_tenant_id and p_time_zone is not null;
  end if;
  if not tenant_set_plan(p_tenant_id, p_plan_code) then
    raise exception using errcode = 'P0002', message = 'no such tenant';
  end if;
  select * into v_sub from subscriptions s where s.tenant_id = p_tenant_id;
  return v_sub;
end
$$;
select pin_search_path('billing_change_plan(uuid, text, text)');
revoke execute on function billing_change_plan(uuid, text, text) from public;
comment on function billing_change_plan(uuid, text, text) is
  'The operator changes a tenant''s plan from the tenant''s today (billing clock): prorated on the month-end invoice. A tenant placed elsewhere gets its anchor here first, in its time zone.';

-- The operator changes how often a tenant's plan fee is billed, at a
-- period's boundary (docs/billing.md#annual-billing). To annual: the
-- terms start with the next period (the one running is billed monthly);
-- back to monthly: the term running is paid for and runs out, monthly
-- billing starts when it ends. Asking for the interval already going
-- forward changes nothing; asking again for the other one undoes a switch
-- that has not taken effect (to annual before the first term, back to
-- monthly before the last term's end).
create or replace function billing_set_interval(p_tenant_id uuid, p_interval text) returns subscriptions
language plpgsql
as $$
declare
  v_sub subscriptions;
  v_term date;
begin
  if p_interval is null or not exists (select 1 from billing_intervals i where i.code = p_interval) then
    raise exception using errcode = 'P0001', column = 'billing_interval',
      message = format('billing_interval: no interval %s (intervals: %s)', coalesce(left(p_interval, 40), 'null'),
                       (select string_agg(i.code, ', ' order by i.position) from billing_intervals i));
  end if;
  select * into v_sub from subscriptions s where s.tenant_id = p_tenant_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = 'no subscription for this tenant';
  end if;
  if v_sub.billing_interval = p_interval then
    return v_sub;
  end if;
  if v_sub.status = 'canceled' then
    raise exception using errcode = 'P0001', column = 'billing_interval',
      message = 'billing_interval: the tenant''s subscription is canceled';
  end if;
  if p_interval = 'annual' and billing_annual_unpriced(v_sub.plan_code) then
    raise exception using errcode = 'P0001', column = 'billing_interval',
      message = format('billing_interval: plan %s has no annual price', v_sub.plan_code);
  end if;
  v_term := billing_term_of(v_sub.annual_from, v_sub.annual_until, v_sub.current_period_start);
  if p_interval = 'annual' then
    update subscriptions s
       set billing_interval = 'annual',
           -- a last term still running renews; otherwise terms from the next period
           annual_from = case when v_term is not null then s.annual_from else s.current_period_end end,
           annual_until = null
     where s.tenant_id = p_tenant_id and s.subscription_id = v_sub.subscription_id
    returning * into v_sub;
  else
    update subscriptions s
       set billing_interval = 'monthly',
           -- no term begun: back to monthly as it was; else the term running ends it
           annual_from = case when v_term is not null then s.annual_from end,
           annual_until = case when v_term is not null then (v_term + interval '1 year')::date end
     where s.tenant_id = p_tenant_id and s.subscription_id = v_sub.subscription_id
    returning * into v_sub;
  end if;
  return v_sub;
end
$$;
select pin_search_path('billing_set_interval(uuid, text)');
revoke execute on function billing_set_interval(uuid, text) from public;
comment on function billing_set_interval(uuid, text) is
  'The operator bills a tenant''s plan fee monthly or by the year: annual terms from the next period; back to monthly when the term running ends.';

-- ---------------------------------------------------------------------------
-- the month-end run
-- ---------------------------------------------------------------------------

-- Amounts are rounded once per line, half-up, to whole units for IDR (to
-- the cent otherwise); PPN as the pre-check computes it for non-luxury
-- services (sql/api/precheck.sql): tax = round(subtotal x 11 / 100), DPP =
-- 11/12 of the subtotal.
create or replace function billing_round(amount numeric, currency text) returns numeric
language sql immutable parallel safe
as $$ select round(amount, case when currency = 'IDR' then 0 else 2 end) $$;
comment on function billing_round(numeric, text) is 'An amount of an operator invoice rounded half-up: whole units for IDR, cents otherwise.';

create or replace function billing_money(amount numeric) returns text
language sql immutable parallel safe
as $$ select to_char(amount, 'FM999,999,999,999,990') ||
             case when amount <> trunc(amount) then '.' || lpad((abs(amount - trunc(amount)) * 100)::int::text, 2, '0') else '' end $$;
comment on function billing_money(numeric) is 'An amount as the invoice prints it: 1,234,567 (cents only when there are).';

create or replace function billing_day(d date) returns text
language sql immutable parallel safe
as $$ select to_char(d, 'FMDD Mon YYYY') $$;
comment on function billing_day(date) is 'A date as the invoice prints it: 1 Dec 2026.';

-- The plan-fee lines of a subscription for [p_from, p_to), a month (the
-- monthly price) or, with p_annual, an annual term (the annual price), as
-- they stand by the day p_as_of (plan changes and a cancellation from it
-- on are not known yet): one line per stretch of days on one plan that was
-- billable (after the trial, before a cancellation). The rule
-- (docs/billing.md): a stretch of n of the period's N days on a plan of
-- price P costs round(P x n / N); a stretch that is the whole period is
-- the plan fee, any other a proration. A plan change on day d ends the old
-- plan's stretch on d - 1 and starts the new plan's on d.
drop function if exists billing_plan_lines(uuid, date, date);
create or replace function billing_plan_lines(p_tenant_id uuid, p_from date, p_to date, p_annual boolean,
                                              p_as_of date)
returns table (kind text, plan_code text, label text, period_start date, period_end date,
               days integer, period_days integer, price numeric, currency text, amount numeric)
language plpgsql stable
as $$
#variable_conflict use_column
begin
  return query
  with s as (
    select s.subscription_id,
           coalesce((s.trial_ends_at at time zone t.time_zone)::date, '-infinity'::date) as trial_end,
           coalesce((s.canceled_at at time zone t.time_zone)::date, 'infinity'::date) as cancel_on,
           s.started_on
      from subscriptions s join tenants t on t.tenant_id = s.tenant_id
     where s.tenant_id = p_tenant_id
  ), stretches as (
    select c.to_plan_code,
           greatest(c.effective_on, p_from, s.trial_end, s.started_on) as a,
           least(coalesce(lead(c.effective_on) over (order by c.effective_on), p_to), p_to,
                 case when s.cancel_on < p_as_of then s.cancel_on else 'infinity'::date end) as b
      from s join subscription_plan_changes c
        on c.tenant_id = p_tenant_id and c.subscription_id = s.subscription_id
     where c.effective_on < p_as_of
  ), priced as (
    select x.to_plan_code, x.a, x.b, p.label, p.currency,
           case when p_annual then p.annual_price else p.monthly_price end as price
      from stretches x join plans p on p.plan_code = x.to_plan_code
     where x.b > x.a
  )
  select case when x.a = p_from and x.b = p_to then 'plan' else 'proration' end,
         x.to_plan_code, x.label, x.a, x.b, x.b - x.a, p_to - p_from, x.price, x.currency,
         billing_round(x.price * (x.b - x.a) / (p_to - p_from), x.currency)
    from priced x
   where x.price > 0
   order by x.a;
end
$$;
select pin_search_path('billing_plan_lines(uuid, date, date, boolean, date)');
revoke execute on function billing_plan_lines(uuid, date, date, boolean, date) from public;
comment on function billing_plan_lines(uuid, date, date, boolean, date) is
  'The plan fee and prorations of a tenant for [from, to), a month or (annual) a term, as known by as_of: round(price x days on the plan / days of the period), one line per stretch on one plan.';

-- The start of the annual term holding day p_day: terms of twelve calendar
-- months from annual_from, within [annual_from, annual_until). NULL: the
-- day is billed monthly. One expression, inlined where it is used.
create or replace function billing_term_of(p_annual_from date, p_annual_until date, p_day date)
returns date
language sql immutable parallel safe
as $$
  select case when p_day >= p_annual_from and (p_annual_until is null or p_day < p_annual_until)
              then (p_annual_from
                    + make_interval(years => (((extract(year from p_day) - extract(year from p_annual_from)) * 12
                                               + extract(month from p_day) - extract(month from p_annual_from))::integer / 12)))::date
         end
$$;
revoke execute on function billing_term_of(date, date, date) from public;
comment on function billing_term_of(date, date, date) is
  'The first day of the annual term holding a day (terms of twelve months from annual_from, before annual_until); NULL: a monthly day.';

-- What an annual term [p_term_start, p_term_end) has to bill on the
-- invoice of a period ending p_as_of: its plan lines as they stand by then
-- (billing_plan_lines, annual prices) against those
-- its earlier invoices billed (live invoices of the subscription; a line
-- is known by its plan and days). A stretch not billed yet is charged; a
-- stretch billed before and no longer standing (a plan change or a
-- cancellation cut it) is credited, as a 'credit' line of what it cost
-- then. A stretch billed before keeps its price. The fee of a term is
-- never lowered once billed: when the credits would exceed the new
-- charges (a cheaper plan, a cancellation), nothing is written and the
-- term stays as billed (docs/billing.md#annual-billing).
create or replace function billing_term_lines(p_tenant_id uuid, p_subscription_id uuid,
                                              p_term_start date, p_term_end date, p_as_of date)
returns table (kind text, plan_code text, label text, period_start date, period_end date,
               days integer, period_days integer, price numeric, currency text, amount numeric)
language plpgsql stable
as $$
#variable_conflict use_column
begin
  return query
  with standing as materialized (
    select l.* from billing_plan_lines(p_tenant_id, p_term_start, p_term_end, true, p_as_of) l
  ), billed as materialized (
    select il.plan_code, il.period_start, il.period_end, sum(il.amount) as amount
      from billing_invoices i
      join billing_invoice_lines il on il.tenant_id = i.tenant_id and il.billing_invoice_id = i.billing_invoice_id
     where i.tenant_id = p_tenant_id and i.subscription_id = p_subscription_id and i.status <> 'void'
       and il.plan_code is not null and il.period_start >= p_term_start and il.period_end <= p_term_end
     group by il.plan_code, il.period_start, il.period_end
    having sum(il.amount) <> 0
  ), changes as materialized (
    select n.kind, n.plan_code, n.label, n.period_start, n.period_end, n.days, n.period_days,
           n.price, n.currency, n.amount
      from standing n
     where not exists (select 1 from billed b
                        where b.plan_code = n.plan_code and b.period_start = n.period_start
                          and b.period_end = n.period_end)
    union all
    select 'credit', b.plan_code, p.label, b.period_start, b.period_end, b.period_end - b.period_start,
           p_term_end - p_term_start, b.amount, p.currency, -b.amount
      from billed b join plans p on p.plan_code = b.plan_code
     where not exists (select 1 from standing n
                        where n.plan_code = b.plan_code and n.period_start = b.period_start
                          and n.period_end = b.period_end)
  )
  select c.* from changes c
   where (select sum(x.amount) from changes x) >= 0;
end
$$;
select pin_search_path('billing_term_lines(uuid, uuid, date, date, date)');
revoke execute on function billing_term_lines(uuid, uuid, date, date, date) from public;
comment on function billing_term_lines(uuid, uuid, date, date, date) is
  'The lines an annual term bills now: its stretches not billed yet, and credits of stretches billed before that a change cut; nothing if that would lower the term''s fee.';

-- Whether a subscription's current period has ended by the tenant's today
-- at `now` and is still to be closed: not once the subscription was
-- canceled before it began. One expression, inlined where it is used
-- (billing_period_due for one tenant, billing_month_end_enqueue for all).
-- It takes the subscription's columns, not its row: Citus sends the call
-- to the shards, where the row's type is the shard's.
drop function if exists billing_period_ended(subscriptions, text, timestamptz);
create or replace function billing_period_ended(p_period_start date, p_period_end date, p_status text,
                                                p_canceled_at timestamptz, p_time_zone text, p_now timestamptz)
returns boolean
language sql stable
as $$
  select p_period_end <= (p_now at time zone p_time_zone)::date
     and not (p_status = 'canceled' and (p_canceled_at at time zone p_time_zone)::date < p_period_start)
$$;
revoke execute on function billing_period_ended(date, date, text, timestamptz, text, timestamptz) from public;
comment on function billing_period_ended(date, date, text, timestamptz, text, timestamptz) is
  'Whether a subscription''s current period (start, end, status, canceled_at) has ended by the tenant''s today at now (in its time zone) and is to be closed.';

-- The period the month-end run has to close: the subscription's current
-- period once it has ended by the tenant's today (billing clock); none
-- while it runs or once the subscription was canceled before it.
create or replace function billing_period_due(p_tenant_id uuid)
returns table (period_start date, period_end date)
language plpgsql stable security definer
as $$
declare
  v_now constant timestamptz := billing_now();
begin
  return query
  select s.current_period_start, s.current_period_end
    from subscriptions s join tenants t on t.tenant_id = s.tenant_id
   where s.tenant_id = p_tenant_id
     and billing_period_ended(s.current_period_start, s.current_period_end, s.status, s.canceled_at,
                              t.time_zone, v_now);
end
$$;
select pin_search_path('billing_period_due(uuid)');
revoke execute on function billing_period_due(uuid) from public;
grant execute on function billing_period_due(uuid) to bizos_worker;
comment on function billing_period_due(uuid) is
  'The tenant''s billing period that has ended and is not yet closed (none: nothing to do).';

-- The tenants metered in a placement of their own (a schema or a database;
-- anything but the shared tier of this database on the home cluster):
-- their usage is read there, never here.
create or replace view billing_metered_elsewhere as
  select p.tenant_id
    from control.tenant_placements p join control.clusters c on c.cluster = p.cluster
   where not (p.tier = 'shared' and c.home and p.database_name = pg_catalog.current_database());
revoke all on billing_metered_elsewhere from public;
comment on view billing_metered_elsewhere is
  'Tenants whose usage is metered in a placement of their own (billing_usage_here false): the month-end takes their usage from the caller.';

-- Closes the ended period (billing clock) of every tenant of p_tenants
-- into a draft invoice and moves its subscription to the next calendar
-- month, in one statement for all of them: the month-end of many tenants
-- costs a few statements, not a few per tenant. A tenant's lines: the plan
-- fee and prorations (billing_plan_lines), then the overage of each metric
-- with an amount, by metric. Usage: usage_billable here; a tenant metered
-- in a placement of its own (billing_metered_elsewhere) has no usage here,
-- so the caller passes it in p_usage under the tenant's id (the rows of
-- usage_price of usage_quantities read there, a JSON array), and without
-- it the whole call is refused rather than billing nothing over the plan.
-- No line, no invoice (a free plan). A period whose live invoice exists
-- already gets no second one; its subscription still moves on. Returns
-- every tenant whose period it closed, with its invoice (NULL: none).
-- Its statement is planned for 1,000 tenants at a time: JIT compiling
-- it took 1.9 s of the 2.7 s it ran (jit off).
create or replace function billing_close_due(p_tenants uuid[], p_usage jsonb default null)
returns table (tenant_id uuid, billing_invoice_id uuid)
language plpgsql security definer
set jit = off
as $$
#variable_conflict use_column
declare
  v_now constant timestamptz := billing_now();
  v_grace interval;
  v_unmetered uuid;
begin
  if p_usage is not null
     and (jsonb_typeof(p_usage) <> 'object'
          or exists (select 1 from jsonb_each(p_usage) e where jsonb_typeof(e.value) <> 'array')) then
    raise exception using errcode = 'P0001', column = 'usage',
      message = 'usage: must be a JSON array for each tenant';
  end if;
  -- One lock order for every caller: two batches never wait in a cycle.
  perform 1 from subscriptions s where s.tenant_id = any(p_tenants) order by s.tenant_id for update;
  select s.tenant_id into v_unmetered
    from subscriptions s
    join tenants t on t.tenant_id = s.tenant_id
    join billing_metered_elsewhere e on e.tenant_id = s.tenant_id
   where s.tenant_id = any(p_tenants)
     and billing_period_ended(s.current_period_start, s.current_period_end, s.status, s.canceled_at,
                              t.time_zone, v_now)
     and not coalesce(p_usage ? s.tenant_id::text, false)
   limit 1;
  if found then
    raise exception using errcode = '22023', column = 'usage',
      message = format('usage: tenant %s is metered in its placement; pass its usage (usage_price of usage_quantities read there)',
                       v_unmetered);
  end if;
  select s.finalize_grace into v_grace from billing_settings s where s.settings_id;

  return query
  with due as (
    select s.tenant_id, s.subscription_id, s.current_period_start as p_from, s.current_period_end as p_to,
           s.annual_from, s.annual_until,
           exists (select 1 from billing_invoices i
                    where i.tenant_id = s.tenant_id and i.period_start = s.current_period_start
                      and i.status <> 'void') as invoiced
      from subscriptions s join tenants t on t.tenant_id = s.tenant_id
     where s.tenant_id = any(p_tenants)
       and billing_period_ended(s.current_period_start, s.current_period_end, s.status, s.canceled_at,
                                t.time_zone, v_now)
  ), plan_lines as materialized (
    -- a month billed monthly: its plan fee and prorations
    select d.tenant_id, false as annual, l.kind, l.plan_code, l.label, l.period_start, l.period_end, l.days,
           l.period_days, l.price, l.currency, l.amount
      from due d cross join lateral billing_plan_lines(d.tenant_id, d.p_from, d.p_to, false, d.p_to) l
     where not d.invoiced and billing_term_of(d.annual_from, d.annual_until, d.p_from) is null
    union all
    -- billed by the year: what changed in the term running, and the term
    -- that starts when the period ends, in advance
    select d.tenant_id, true, l.kind, l.plan_code, l.label, l.period_start, l.period_end, l.days,
           l.period_days, l.price, l.currency, l.amount
      from due d
     cross join lateral (select distinct x.term_start
                           from (values (billing_term_of(d.annual_from, d.annual_until, d.p_from)),
                                        (billing_term_of(d.annual_from, d.annual_until, d.p_to))) as x(term_start)
                          where x.term_start is not null) term
     cross join lateral billing_term_lines(d.tenant_id, d.subscription_id, term.term_start,
                                           (term.term_start + interval '1 year')::date, d.p_to) l
     where not d.invoiced
  ), first_lines as (
    select distinct on (pl.tenant_id) pl.tenant_id, pl.currency
      from plan_lines pl
     order by pl.tenant_id, pl.period_start
  ), billed as (
    -- the invoice's currency: its first plan line's
    select d.tenant_id, d.subscription_id, d.p_from, d.p_to, coalesce(f.currency, 'IDR') as currency
      from due d left join first_lines f on f.tenant_id = d.tenant_id
     where not d.invoiced
  ), lines as (
    select pl.tenant_id, 1 as part, pl.period_start as sort_day, pl.kind <> 'credit' as sort_kind,
           pl.period_end as sort_end, null::text as metric_code, pl.kind,
           case when pl.kind = 'plan'
                then format('Plan %s%s, %s - %s', pl.label, case when pl.annual then ' annual' else '' end,
                            billing_day(pl.period_start), billing_day(pl.period_end - 1))
                when pl.kind = 'credit'
                then format('Credit: plan %s annual, %s - %s, billed before at %s', pl.label,
                            billing_day(pl.period_start), billing_day(pl.period_end - 1), billing_money(pl.price))
                else format('Plan %s%s, %s - %s: prorated %s of %s days x %s / %s', pl.label,
                            case when pl.annual then ' annual' else '' end,
                            billing_day(pl.period_start), billing_day(pl.period_end - 1),
                            pl.days, pl.period_days, billing_money(pl.price), pl.period_days)
           end as description,
           pl.plan_code, pl.period_start, pl.period_end,
           case when pl.kind = 'proration' then pl.days else 1 end::numeric as quantity,
           case when pl.kind = 'credit' then 'credit' when pl.kind = 'proration' then 'day'
                when pl.annual then 'year' else 'month' end as unit,
           case when pl.kind = 'plan' then pl.price when pl.kind = 'credit' then pl.amount
                else round(pl.price / pl.period_days, 4) end as unit_price,
           pl.amount
      from plan_lines pl
    union all
    select b.tenant_id, 2, null, true, null, u.metric_code, 'overage',
           format('%s: %s %s used, %s included, %s over x %s', coalesce(u.label, u.metric_code),
                  billing_money(u.quantity), u.unit, billing_money(u.included),
                  billing_money(u.overage), billing_money(u.unit_price)),
           null, b.p_from, b.p_to, u.overage, u.unit, u.unit_price, billing_round(u.amount, b.currency)
      from billed b
     cross join lateral (
       select h.metric_code, h.label, h.unit, h.quantity, h.included, h.overage, h.unit_price, h.amount
         from usage_billable(b.tenant_id, b.p_from, b.p_to) h
        where not coalesce(p_usage ? b.tenant_id::text, false)
       union all
       select g.metric_code, g.label, g.unit, g.quantity, g.included, g.overage, g.unit_price, g.amount
         from jsonb_to_recordset(p_usage -> b.tenant_id::text)
              as g(metric_code text, label text, unit text, quantity numeric, included numeric,
                   overage numeric, unit_price numeric, amount numeric)
     ) u
     where u.amount > 0
  ), numbered as (
    select l.*, row_number() over (partition by l.tenant_id
                                   order by l.part, l.sort_day, l.sort_kind, l.sort_end, l.metric_code) as position
      from lines l
  ), totals as (
    select b.tenant_id, b.subscription_id, b.p_from, b.p_to, b.currency, sum(n.amount) as subtotal,
           billing_round(sum(n.amount) * 11 / 100, b.currency) as tax
      from billed b join numbered n on n.tenant_id = b.tenant_id
     group by b.tenant_id, b.subscription_id, b.p_from, b.p_to, b.currency
  ), invoices as (
    insert into billing_invoices as i (tenant_id, subscription_id, period_start, period_end, currency,
                                       finalize_after, subtotal, dpp, tax, total)
    select x.tenant_id, x.subscription_id, x.p_from, x.p_to, x.currency,
           v_now + v_grace, x.subtotal, round(x.subtotal * 11 / 12, 2), x.tax, x.subtotal + x.tax
      from totals x
     order by x.tenant_id
    returning i.tenant_id, i.billing_invoice_id
  ), invoice_lines as (
    insert into billing_invoice_lines (tenant_id, billing_invoice_id, position, kind, description, plan_code,
                                       metric_code, period_start, period_end, quantity, unit, unit_price, amount)
    select n.tenant_id, v.billing_invoice_id, n.position, n.kind, n.description, n.plan_code,
           n.metric_code, n.period_start, n.period_end, n.quantity, n.unit, n.unit_price, n.amount
      from numbered n join invoices v on v.tenant_id = n.tenant_id
  ), moved as (
    update subscriptions s
       set current_period_start = d.p_to,
           current_period_end = (d.p_to + interval '1 month')::date
      from due d
     where s.tenant_id = d.tenant_id and s.subscription_id = d.subscription_id
       -- Citus: only the shards of these tenants.
       and s.tenant_id = any(p_tenants)
    returning s.tenant_id
  )
  select m.tenant_id, v.billing_invoice_id from moved m left join invoices v on v.tenant_id = m.tenant_id;
end
$$;
select pin_search_path('billing_close_due(uuid[], jsonb)');
revoke execute on function billing_close_due(uuid[], jsonb) from public;
comment on function billing_close_due(uuid[], jsonb) is
  'Closes the ended billing period of each given tenant into a draft invoice (plan fee, prorations, overage, PPN) and moves it to the next month, in one statement; usage of tenants metered elsewhere from p_usage (tenant id -> rows).';

-- Closes the period that starts on p_period_start of one tenant
-- (billing_close_due). p_usage: the rows of usage_price of
-- usage_quantities read in the tenant's placement, as a JSON array, for a
-- tenant metered there (billing_usage_here false; NULL is refused);
-- otherwise NULL reads usage_billable here. Idempotent: a period already
-- closed (the subscription has moved on, or its invoice exists) returns
-- that invoice's id and changes nothing; a period not yet ended returns
-- NULL.
create or replace function billing_close_period(p_tenant_id uuid, p_period_start date, p_usage jsonb default null)
returns uuid
language plpgsql security definer
as $$
declare
  v_sub subscriptions;
  v_inv uuid;
begin
  select * into v_sub from subscriptions s where s.tenant_id = p_tenant_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = 'no subscription for this tenant';
  end if;
  select i.billing_invoice_id into v_inv from billing_invoices i
   where i.tenant_id = p_tenant_id and i.period_start = p_period_start and i.status <> 'void';
  if found or v_sub.current_period_start <> p_period_start then
    return v_inv;
  end if;
  if p_usage is not null and jsonb_typeof(p_usage) <> 'array' then
    raise exception using errcode = 'P0001', column = 'usage', message = 'usage: must be a JSON array';
  end if;
  select c.billing_invoice_id into v_inv
    from billing_close_due(array[p_tenant_id],
                           case when p_usage is not null then jsonb_build_object(p_tenant_id::text, p_usage) end) c;
  return v_inv;
end
$$;
select pin_search_path('billing_close_period(uuid, date, jsonb)');
revoke execute on function billing_close_period(uuid, date, jsonb) from public;
grant execute on function billing_close_period(uuid, date, jsonb) to bizos_worker;
comment on function billing_close_period(uuid, date, jsonb) is
  'Closes a tenant''s ended billing period into a draft invoice (plan fee, prorations, overage from usage, PPN) and moves to the next month; idempotent.';

-- Finalizes one draft: the next gapless number of the operator's series,
-- issue date the tenant's today, due after the payment terms.
create or replace function billing_finalize(p_tenant_id uuid, p_invoice_id uuid) returns billing_invoices
language plpgsql security definer
as $$
declare
  v_inv billing_invoices;
  v_today date := billing_today(p_tenant_id);
  v_terms integer;
  v_url text;
  v_to text[];
  v_no text;
begin
  select * into v_inv from billing_invoices i
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_invoice_id for update;
  if not found then
    raise exception using errcode = 'P0002', message = 'no such billing invoice';
  end if;
  if v_inv.status <> 'draft' then
    return v_inv;
  end if;
  select s.payment_terms_days, s.public_url into v_terms, v_url from billing_settings s where s.settings_id;
  -- The number first (Citus takes no volatile call in an UPDATE).
  v_no := bizos.next_id('billing_invoice', '00000000-0000-0000-0000-000000000000'::uuid);
  update billing_invoices i
     set status = 'finalized',
         invoice_no = v_no,
         issue_date = v_today, due_date = v_today + v_terms, finalized_at = billing_now()
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_invoice_id
  returning * into v_inv;
  -- The tenant's billing contacts: its active super admins; a tenant
  -- placed in a schema or database of its own has its profiles there: its
  -- users who pay, as its placement last told them (billing_recipients).
  if billing_usage_here(p_tenant_id) then
    select array_agg(p.email order by p.email) into v_to from profiles p
     where p.tenant_id = p_tenant_id and p.app_role = 'super_admin' and p.active;
  else
    v_to := nullif(billing_recipients(p_tenant_id), '{}');
  end if;
  if v_to is not null then
    perform email_queue(p_tenant_id, null, 'billing.invoice_finalized', v_to,
                        jsonb_build_object('invoice_no', v_inv.invoice_no,
                                           'period', billing_day(v_inv.period_start) || ' - ' || billing_day(v_inv.period_end - 1),
                                           'total', v_inv.currency || ' ' || billing_money(v_inv.total),
                                           'due_date', billing_day(v_inv.due_date),
                                           'pdf_url', rtrim(v_url, '/') || '/api/billing/invoices/' || v_inv.billing_invoice_id || '/pdf'),
                        '{}');
    update billing_invoices i set emailed_at = billing_now()
     where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_invoice_id
    returning * into v_inv;
  end if;
  return v_inv;
end
$$;
select pin_search_path('billing_finalize(uuid, uuid)');
revoke execute on function billing_finalize(uuid, uuid) from public;
grant execute on function billing_finalize(uuid, uuid) to bizos_worker;
comment on function billing_finalize(uuid, uuid) is
  'Finalizes a draft operator invoice: gapless number (BIL-<year>-<n>), issue date the tenant''s today, due date after the payment terms; e-mails the tenant''s super admins the link to its PDF.';

drop function if exists billing_drafts_due(uuid);

create or replace function billing_void(p_tenant_id uuid, p_invoice_id uuid, p_reason text) returns billing_invoices
language plpgsql
as $$
declare
  v_inv billing_invoices;
begin
  if p_reason is null or length(btrim(p_reason)) not between 1 and 500 then
    raise exception using errcode = 'P0001', column = 'reason', message = 'reason: 1 to 500 characters are required';
  end if;
  update billing_invoices i set status = 'void', void_reason = btrim(p_reason), voided_at = billing_now()
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_invoice_id
  returning * into v_inv;
  if not found then
    raise exception using errcode = 'P0002', message = 'no such billing invoice';
  end if;
  return v_inv;
end
$$;
select pin_search_path('billing_void(uuid, uuid, text)');
revoke execute on function billing_void(uuid, uuid, text) from public;
comment on function billing_void(uuid, uuid, text) is
  'The operator voids an operator invoice with a reason (a draft or a finalized one; its number stays used).';

-- The month-end run: a billing.month_end job (dedup per tenant and billing
-- day) for every tenant with a subscription, or with p_due_only for the
-- tenants with month-end work by the billing clock (a period ended,
-- billing_period_due, or a draft past its grace period). The operator's
-- route asks for every tenant; the worker's schedules tick for those due,
-- so a month closes without the operator and a tick with nothing due
-- enqueues nothing.
drop function if exists billing_month_end_enqueue();
create or replace function billing_month_end_enqueue(p_due_only boolean default false) returns integer
language plpgsql security definer
as $$
declare
  v_now constant timestamptz := billing_now();
  -- No tenant's today is later than UTC+14's: the periods ended by then
  -- are the candidates, found by the index of period ends (V60), so a
  -- tick costs the tenants due, not every subscription.
  v_latest_today constant date := (v_now at time zone 'Etc/GMT-14')::date;
  v_tenants uuid[];
  v_keys text[];
begin
  select coalesce(array_agg(d.tenant_id order by d.tenant_id), '{}'),
         coalesce(array_agg('billing.month_end:' || (v_now at time zone t.time_zone)::date::text
                            order by d.tenant_id), '{}')
    into v_tenants, v_keys
    from (select s.tenant_id from subscriptions s
           where not p_due_only
          union
          select s.tenant_id from subscriptions s join tenants t on t.tenant_id = s.tenant_id
           where p_due_only
             and s.current_period_end <= v_latest_today
             and billing_period_ended(s.current_period_start, s.current_period_end, s.status, s.canceled_at,
                                      t.time_zone, v_now)
          union
          select i.tenant_id from billing_invoices i
           where p_due_only and i.status = 'draft' and i.finalize_after <= v_now) d
    join tenants t on t.tenant_id = d.tenant_id;
  -- One insert for all of them (the dedup key: the tenant's billing day).
  perform job_enqueue_for_each(v_tenants, 'billing.month_end', '{}', 0, v_keys);
  return cardinality(v_tenants);
end
$$;
select pin_search_path('billing_month_end_enqueue(boolean)');
revoke execute on function billing_month_end_enqueue(boolean) from public;
grant execute on function billing_month_end_enqueue(boolean) to bizos_worker;
comment on function billing_month_end_enqueue(boolean) is
  'Enqueues the billing.month_end job of every tenant with a subscription, or only of those with an ended period or a draft past its grace period (one a tenant and day); returns how many.';

-- The month-end of a set of tenants in the caller's transaction: every
-- ended period closed into a draft (billing_close_due, one pass a month:
-- a tenant that missed months catches up month by month; the bound only
-- guards against a loop), then the drafts whose grace period is over
-- finalized. Returns, for each tenant, how many periods and drafts it
-- did. Idempotent as billing_close_due and billing_finalize are: a rerun
-- finds the periods closed and the drafts finalized.
create or replace function billing_month_end_of_all(p_tenants uuid[])
returns table (tenant_id uuid, done integer)
language plpgsql security definer
as $$
#variable_conflict use_column
declare
  v_now constant timestamptz := billing_now();
  v_pass uuid[] := p_tenants;
  v_closed uuid[] := '{}';
  v_invoice record;
begin
  for i in 1..1200 loop
    v_pass := (select array_agg(c.tenant_id) from billing_close_due(v_pass) c);
    exit when v_pass is null;
    v_closed := v_closed || v_pass;
  end loop;
  for v_invoice in
    select i.tenant_id, i.billing_invoice_id from billing_invoices i
     where i.tenant_id = any(p_tenants) and i.status = 'draft' and i.finalize_after <= v_now
     order by i.tenant_id, i.period_start
  loop
    perform billing_finalize(v_invoice.tenant_id, v_invoice.billing_invoice_id);
    v_closed := v_closed || v_invoice.tenant_id;
  end loop;
  return query
  select t.tenant_id, coalesce(c.n, 0)::integer
    from (select distinct u.tenant_id from unnest(p_tenants) as u(tenant_id)) t
    left join (select x.tenant_id, count(*) as n from unnest(v_closed) as x(tenant_id) group by x.tenant_id) c
      on c.tenant_id = t.tenant_id;
end
$$;
select pin_search_path('billing_month_end_of_all(uuid[])');
revoke execute on function billing_month_end_of_all(uuid[]) from public;
comment on function billing_month_end_of_all(uuid[]) is
  'The month-end of the given tenants in one transaction: closes every ended period, finalizes the drafts past their grace period; how many for each.';

-- One tenant's month-end (billing_month_end_of_all): how many periods and
-- drafts it did.
create or replace function billing_month_end_of(p_tenant_id uuid) returns integer
language plpgsql security definer
as $$
begin
  return (select m.done from billing_month_end_of_all(array[p_tenant_id]) m);
end
$$;
select pin_search_path('billing_month_end_of(uuid)');
revoke execute on function billing_month_end_of(uuid) from public;
grant execute on function billing_month_end_of(uuid) to bizos_worker;
comment on function billing_month_end_of(uuid) is
  'A tenant''s month-end in one transaction: closes every ended period, finalizes the drafts past their grace period; returns how many.';

-- Whether a tenant's usage is metered in this database (usage_billable
-- reads it here): not in billing_metered_elsewhere.
create or replace function billing_usage_here(p_tenant_id uuid) returns boolean
language sql stable security definer
as $$
  select not exists (select 1 from billing_metered_elsewhere e where e.tenant_id = p_tenant_id)
$$;
select pin_search_path('billing_usage_here(uuid)');
revoke execute on function billing_usage_here(uuid) from public;
grant execute on function billing_usage_here(uuid) to bizos_worker;
comment on function billing_usage_here(uuid) is
  'Whether the tenant''s usage is metered in this database (no placement in a schema or database of its own).';

-- The month-end of a job's tenant and of up to p_max - 1 other tenants
-- whose billing.month_end jobs are queued, in one transaction and a few
-- set-based statements (billing_month_end_of_all): one claim, one
-- transaction and one round trip for p_max tenants, where a job each cost
-- all three (10,000 tenants took 92 s on two cores, 9 ms a tenant). The
-- other jobs are taken (job_take: locked, no other worker gets them) and
-- marked succeeded in this transaction, each with its own count as
-- progress; tenants metered elsewhere are left to their own jobs. If any
-- tenant fails, the whole batch rolls back and the others' jobs stay
-- queued: the handler then does its own tenant alone (docs/billing.md).
create or replace function billing_month_end_batch(p_tenant_id uuid, p_max integer)
returns table (done integer, others integer)
language plpgsql security definer
as $$
declare
  v_tenants uuid[];
  v_jobs uuid[];
begin
  if p_max is null or p_max not between 1 and 10000 then
    raise exception using errcode = '22023', column = 'max', message = 'max: 1 to 10000 tenants';
  end if;
  select coalesce(array_agg(k.tenant_id), '{}'), coalesce(array_agg(k.job_id), '{}') into v_tenants, v_jobs
    from job_take('billing.month_end', p_max - 1, p_tenant_id) k
   where not exists (select 1 from billing_metered_elsewhere e where e.tenant_id = k.tenant_id);
  with m as (select * from billing_month_end_of_all(array[p_tenant_id] || v_tenants))
  select (select m.done from m where m.tenant_id = p_tenant_id),
         job_succeed_taken(v_tenants, v_jobs,
                           array(select m.done::bigint
                                   from unnest(v_tenants) with ordinality as x(tenant_id, n)
                                   join m on m.tenant_id = x.tenant_id
                                  order by x.n))
    into done, others;
  return next;
end
$$;
select pin_search_path('billing_month_end_batch(uuid, integer)');
revoke execute on function billing_month_end_batch(uuid, integer) from public;
grant execute on function billing_month_end_batch(uuid, integer) to bizos_worker;
comment on function billing_month_end_batch(uuid, integer) is
  'The month-end of the job''s tenant and of up to max - 1 tenants with queued billing.month_end jobs (taken and marked succeeded), in one transaction.';

-- ---------------------------------------------------------------------------
-- operator views
-- ---------------------------------------------------------------------------

-- One row per tenant with a subscription: plan, status, MRR (the price a
-- month of a paying subscription, plan_price_a_month: the annual price /
-- 12 in a month billed by the year; active, past_due or soft_locked; a
-- trial or a canceled one brings none), this month's AI cost and margin from the
-- LLM ledger (v_llm_margin_monthly) and what is overdue (finalized
-- invoices past their due date by the tenant's today).
create or replace view v_billing_tenants with (security_invoker = true) as
  -- The billing clock read once, in a CTE: on Citus it runs on the
  -- coordinator (a subquery without FROM may hold no stable call there, and
  -- a shard cannot read the clock inside a pushed-down query).
  with clock as materialized (select billing_now() as now)
  select b.tenant_id, b.slug, b.name, b.plan_code, b.billing_interval, b.status,
         b.current_period_start, b.current_period_end, b.trial_ends_at,
         b.mrr,
         b.currency,
         b.ai_cost_month,
         b.mrr - b.ai_cost_month as ai_margin_month,
         b.overdue_amount,
         b.overdue_invoices,
         b.annual_from, b.annual_until
    from (
      select s.tenant_id, t.slug, t.name, s.plan_code, s.billing_interval, s.status,
             s.current_period_start, s.current_period_end, s.trial_ends_at,
             case when s.status in ('active', 'past_due', 'soft_locked')
                  then plan_price_a_month(p.monthly_price, p.annual_price, p.currency, s.annual_from, s.annual_until,
                                          date_trunc('month', c.now at time zone t.time_zone)::date)
                  else 0 end as mrr,
             p.currency,
             coalesce(m.ai_cost, 0) as ai_cost_month,
             coalesce(o.overdue, 0) as overdue_amount,
             coalesce(o.overdue_count, 0) as overdue_invoices,
             s.annual_from, s.annual_until
        from subscriptions s
        join tenants t on t.tenant_id = s.tenant_id
        join plans p on p.plan_code = s.plan_code
       cross join clock c
        left join lateral (
          select sum(x.ai_cost_idr) as ai_cost from v_llm_margin_monthly x
           where x.tenant_id = s.tenant_id and x.month = date_trunc('month', c.now at time zone t.time_zone)::date
        ) m on true
        left join lateral (
          select sum(i.total) as overdue, count(*) as overdue_count from billing_invoices i
           where i.tenant_id = s.tenant_id and i.status = 'finalized'
             and i.due_date < (c.now at time zone t.time_zone)::date
        ) o on true
    ) b;
comment on view v_billing_tenants is
  'Operator view: each subscribed tenant''s plan, status, MRR, this month''s AI cost and margin (LLM ledger), overdue amount and annual window.';

-- ---------------------------------------------------------------------------
-- reading invoices
-- ---------------------------------------------------------------------------

-- An invoice as its PDF and the API show it, amounts and dates formatted
-- by billing_money and billing_day: a member of the tenant reads its
-- invoices once finalized (not its drafts), the operator and the worker
-- any. NULL: no such invoice for the caller.
create or replace function billing_invoice_document(p_tenant_id uuid, p_invoice_id uuid) returns jsonb
language plpgsql stable security definer
as $$
declare
  v_member boolean := bizos.tenant_id() is not null;
  v jsonb;
begin
  if v_member and bizos.tenant_id() is distinct from p_tenant_id then
    return null;
  end if;
  if not v_member and not (pg_has_role(session_user, 'bizos_worker', 'member')
                           or pg_has_role(session_user, 'bizos_owner', 'member')) then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  select jsonb_build_object(
           'billing_invoice_id', i.billing_invoice_id, 'tenant_id', i.tenant_id,
           'seller_name', s.seller_name, 'seller_address', s.seller_address, 'seller_tax_id', s.seller_tax_id,
           'tenant_name', t.name, 'invoice_no', coalesce(i.invoice_no, 'DRAFT'), 'status', i.status,
           'period', billing_day(i.period_start) || ' - ' || billing_day(i.period_end - 1),
           'issue_date', coalesce(billing_day(i.issue_date), '-'), 'due_date', coalesce(billing_day(i.due_date), '-'),
           'currency', i.currency, 'subtotal', billing_money(i.subtotal), 'dpp', billing_money(i.dpp),
           'tax', billing_money(i.tax), 'total', billing_money(i.total),
           'lines', (select coalesce(jsonb_agg(jsonb_build_object(
                              'description', l.description,
                              'detail', billing_money(l.quantity) || ' ' || l.unit || ' x ' || billing_money(l.unit_price),
                              'amount', billing_money(l.amount)) order by l.position), '[]'::jsonb)
                       from billing_invoice_lines l
                      where l.tenant_id = i.tenant_id and l.billing_invoice_id = i.billing_invoice_id))
    into v
    from billing_invoices i
    join tenants t on t.tenant_id = i.tenant_id
   cross join billing_settings s
   where i.tenant_id = p_tenant_id and i.billing_invoice_id = p_invoice_id
     and (not v_member or i.status <> 'draft');
  return v;
end
$$;
select pin_search_path('billing_invoice_document(uuid, uuid)');
revoke execute on function billing_invoice_document(uuid, uuid) from public;
grant execute on function billing_invoice_document(uuid, uuid) to bizos_authenticated, bizos_worker;
comment on function billing_invoice_document(uuid, uuid) is
  'An operator invoice with its lines, formatted as its PDF prints it; members read their tenant''s finalized, paid and void invoices, the owner and worker any; NULL: none.';
