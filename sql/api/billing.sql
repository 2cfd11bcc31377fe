-- Billing (docs/billing.md): the billing clock, subscriptions that follow
-- a tenant's plan, plan changes with proration, the month-end run that
-- closes a period into a draft invoice, finalization (gapless number) and
-- void. Tables: V56. The operator's data about tenants: these run in the
-- control database (the database holding `tenants`).

-- ---------------------------------------------------------------------------
-- the clock
-- ---------------------------------------------------------------------------

create or replace function billing_now() returns timestamptz
language sql stable security definer
as $$
  select coalesce((select c.frozen_at from billing_clock c where c.clock_id), pg_catalog.now())
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
language sql stable security definer
as $$
  select (billing_now() at time zone t.time_zone)::date from tenants t where t.tenant_id = p_tenant_id
$$;
select pin_search_path('billing_today(uuid)');
revoke execute on function billing_today(uuid) from public;
grant execute on function billing_today(uuid) to bizos_worker;
comment on function billing_today(uuid) is 'The tenant''s today by the billing clock (tenants.time_zone); NULL for an unknown tenant.';

-- ---------------------------------------------------------------------------
-- subscriptions follow the tenant's plan
-- ---------------------------------------------------------------------------

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
-- Not on Citus, where tenants is a reference table (sql/citus/triggers.sql).
create or replace trigger tenants_follow_plan after insert or update of plan_code on tenants
  for each row execute function tenants_follow_plan();
