-- Schedules (issue 14): recurring jobs of a tenant, in the tenant's own
-- time zone ("every day at 05:00", "every Monday at 06:00").
--
-- pg_cron drives time: every minute it calls schedules_fire()
-- (sql/api/schedules.sql; the job is registered by `bizos db bootstrap`,
-- sql/bootstrap/cron.sql). schedules_fire enqueues one job per due schedule
-- with the dedup key '<schedule_id>:<period>' (the period is the tenant's
-- local date of the occurrence), so a period fires once, however many
-- callers run at that minute, and advances next_run_at past now.
--
-- Recurrence: a local time of day (minute precision) and optionally the ISO
-- days of the week (1 = Monday .. 7 = Sunday; NULL = every day). Not a cron
-- expression: the two forms bizos needs read unambiguously and are checked
-- field by field.
--
-- next_run_at and last_fired_* are written by the database only (the
-- trigger computes next_run_at from the recurrence and the tenant's zone,
-- schedules_fire advances it): users hold no column privilege on them.

create table schedules (
  tenant_id         uuid        not null,
  schedule_id       uuid        not null default gen_random_uuid(),
  name              text        not null,
  -- The job enqueued at each occurrence, with this payload.
  kind              text        not null,
  payload           jsonb       not null default '{}'::jsonb,
  -- Local time of day in the tenant's zone (tenants.time_zone).
  at_time           time        not null,
  -- ISO days of week (1 = Monday .. 7 = Sunday), ascending; NULL: every day.
  days_of_week      smallint[],
  active            boolean     not null default true,
  -- The next occurrence (computed; see schedules_before_write()).
  next_run_at       timestamptz not null,
  -- The tenant's local date of the last occurrence that fired, the instant
  -- it fired and the job it enqueued.
  last_fired_period date,
  last_fired_at     timestamptz,
  last_job_id       uuid,
  created_by        uuid        default bizos.uid(),
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  constraint schedules_pkey primary key (tenant_id, schedule_id),
  constraint schedules_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint schedules_tenant_id_name_key unique (tenant_id, name),
  constraint schedules_kind_fkey foreign key (kind) references job_kinds (kind),
  constraint schedules_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint schedules_name_check check (length(btrim(name)) between 1 and 100),
  constraint schedules_payload_check check (jsonb_typeof(payload) = 'object'),
  constraint schedules_at_time_check check (date_trunc('minute', at_time::interval) = at_time::interval),
  constraint schedules_days_of_week_check check (
    days_of_week is null
    or (cardinality(days_of_week) between 1 and 7
        and array_position(days_of_week, null) is null
        and 1 <= all (days_of_week) and 7 >= all (days_of_week)))
);
comment on table schedules is
  'Recurring jobs of a tenant: a kind and payload enqueued once per occurrence (local time of day, optional weekdays) in the tenant''s time zone.';
comment on column schedules.days_of_week is 'ISO days of week (1 = Monday .. 7 = Sunday); NULL: every day.';
comment on column schedules.next_run_at is 'The next occurrence, in the tenant''s zone; computed, never written by users.';
comment on column schedules.last_fired_period is 'The tenant''s local date of the last occurrence that enqueued a job.';

-- schedules_fire finds the due ones.
create index schedules_due_idx on schedules (next_run_at) where active;

create trigger schedules_stamp_timestamps before insert or update on schedules
  for each row execute function stamp_timestamps();
create trigger schedules_keep_created_by before insert or update on schedules
  for each row execute function keep_created_by();
select bizos.enable_audit('schedules');

alter table schedules enable row level security;

create policy "schedule managers and directors read the schedules of their tenant"
  on schedules for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select has_permission('schedule.manage')) or (select bizos.app_role()) = 'director'));
create policy "schedule managers add schedules to their tenant"
  on schedules for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('schedule.manage')));
create policy "schedule managers change the schedules of their tenant"
  on schedules for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('schedule.manage')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('schedule.manage')));
create policy "schedule managers remove the schedules of their tenant"
  on schedules for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('schedule.manage')));

-- Users write the definition only; the run bookkeeping is the database's.
grant select, delete on schedules to bizos_authenticated;
grant insert (tenant_id, schedule_id, name, kind, payload, at_time, days_of_week, active)
  on schedules to bizos_authenticated;
grant update (name, kind, payload, at_time, days_of_week, active)
  on schedules to bizos_authenticated;

-- Who manages schedules: super admins and the managers (new tenants get it
-- from default_role_permissions(), platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'schedule.manage'
  from tenants t
 cross join (values ('super_admin'), ('marketing_manager'), ('sales_manager')) as r (app_role)
on conflict do nothing;
