-- Ticketing (seed 004 §3.4, §4B; SPEC TCK-1..3, C4, C5, C6, C7): tickets of
-- four fixed types with business numbers and lifecycles, messages,
-- attachments, SLA events written by triggers, business calendars, SLA
-- policies in business minutes, masking and SLA views, and the RPCs the BFF
-- calls. Applied after V3 (CRM): tickets link to leads and customers.

-- ---------------------------------------------------------------- numbers
insert into bizos.id_kinds (kind, prefix, mode) values ('ticket', 'TCK', 'sequence')
on conflict (kind) do nothing;

-- ---------------------------------------------------------------- lifecycles
-- inquiry (inquiry_tariff tickets, column inquiry_status):
--   OPEN        → IN_PROGRESS | QUOTED | CANCELLED
--   IN_PROGRESS → QUOTED | CANCELLED
--   QUOTED      → IN_PROGRESS (revise the quote) | WON | LOST | CLOSED (no decision)
--   WON, LOST, CLOSED, CANCELLED are final.
--   A quote is the resolution of an RFQ: entering QUOTED stamps resolved_at
--   (SLA trigger) and quoted_at (lifecycle guard); back to IN_PROGRESS clears
--   resolved_at. WON/LOST/CLOSED stamp closed_at; CANCELLED cancelled_at.
--
-- ticket (general_request, complaint, service_request; column ticket_status):
--   OPEN             → IN_PROGRESS | RESOLVED (answered at once) | CANCELLED
--   IN_PROGRESS      → WAITING_CUSTOMER | RESOLVED | CANCELLED
--   WAITING_CUSTOMER → IN_PROGRESS | RESOLVED | CANCELLED
--   RESOLVED         → CLOSED | IN_PROGRESS (reopened: clears resolved_at)
--   CLOSED, CANCELLED are final.
--   RESOLVED stamps resolved_at (SLA trigger, not the guard: 'RESOLVED=');
--   CLOSED stamps closed_at, CANCELLED cancelled_at (lifecycle guard).
insert into bizos.transitions (entity, from_status, to_status) values
  ('inquiry', null, 'OPEN'),
  ('inquiry', 'OPEN', 'IN_PROGRESS'), ('inquiry', 'OPEN', 'QUOTED'), ('inquiry', 'OPEN', 'CANCELLED'),
  ('inquiry', 'IN_PROGRESS', 'QUOTED'), ('inquiry', 'IN_PROGRESS', 'CANCELLED'),
  ('inquiry', 'QUOTED', 'IN_PROGRESS'), ('inquiry', 'QUOTED', 'WON'), ('inquiry', 'QUOTED', 'LOST'),
  ('inquiry', 'QUOTED', 'CLOSED'),
  ('ticket', null, 'OPEN'),
  ('ticket', 'OPEN', 'IN_PROGRESS'), ('ticket', 'OPEN', 'RESOLVED'), ('ticket', 'OPEN', 'CANCELLED'),
  ('ticket', 'IN_PROGRESS', 'WAITING_CUSTOMER'), ('ticket', 'IN_PROGRESS', 'RESOLVED'),
  ('ticket', 'IN_PROGRESS', 'CANCELLED'),
  ('ticket', 'WAITING_CUSTOMER', 'IN_PROGRESS'), ('ticket', 'WAITING_CUSTOMER', 'RESOLVED'),
  ('ticket', 'WAITING_CUSTOMER', 'CANCELLED'),
  ('ticket', 'RESOLVED', 'CLOSED'), ('ticket', 'RESOLVED', 'IN_PROGRESS')
on conflict do nothing;

-- ---------------------------------------------------------------- tickets
create table tickets (
  tenant_id             uuid        not null,
  ticket_id             uuid        not null default gen_random_uuid(),
  ticket_no             text        not null,
  ticket_type           text        not null,
  subject               text        not null,
  description           text,
  priority              text        not null default 'normal',
  dept_target           text        not null,
  inquiry_status        text,
  ticket_status         text,
  need_customer_masking boolean     not null default false,
  related_lead_id       uuid,
  related_customer_id   uuid,
  assignee_user_id      uuid,
  created_by            uuid        default bizos.uid(),
  -- RFQ (inquiry_tariff) fields; company_name and contacts are a snapshot.
  origin                text,
  destination           text,
  commodity             text,
  weight_kg             numeric(14,3),
  volume_cbm            numeric(14,3),
  contact_name          text,
  contact_phone         text,
  contact_email         text,
  company_name          text,
  -- Stamped by triggers only (no client grants).
  first_response_at     timestamptz,
  quoted_at             timestamptz,
  resolved_at           timestamptz,
  closed_at             timestamptz,
  cancelled_at          timestamptz,
  created_at            timestamptz not null default now(),
  updated_at            timestamptz not null default now(),
  constraint tickets_pkey primary key (tenant_id, ticket_id),
  constraint tickets_ticket_no_key unique (tenant_id, ticket_no),
  constraint tickets_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint tickets_related_lead_id_fkey foreign key (tenant_id, related_lead_id)
    references leads (tenant_id, lead_id) on delete set null (related_lead_id),
  constraint tickets_related_customer_id_fkey foreign key (tenant_id, related_customer_id)
    references customers (tenant_id, customer_id) on delete set null (related_customer_id),
  constraint tickets_assignee_user_id_fkey foreign key (tenant_id, assignee_user_id)
    references profiles (tenant_id, user_id) on delete set null (assignee_user_id),
  constraint tickets_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint tickets_ticket_type_check check (ticket_type in (
    'inquiry_tariff', 'general_request', 'complaint', 'service_request')),
  constraint tickets_subject_check check (length(btrim(subject)) between 1 and 200),
  constraint tickets_description_check check (description is null or length(description) <= 20000),
  constraint tickets_priority_check check (priority in ('low', 'normal', 'high', 'urgent')),
  constraint tickets_dept_target_check check (dept_target ~ '^[A-Z][A-Z0-9_-]{0,31}$'),
  -- inquiry_tariff uses inquiry_status, the other types ticket_status; the
  -- other column stays NULL.
  constraint tickets_inquiry_status_check check (
    (ticket_type = 'inquiry_tariff') = (inquiry_status is not null)
    and inquiry_status in ('OPEN', 'IN_PROGRESS', 'QUOTED', 'WON', 'LOST', 'CLOSED', 'CANCELLED')),
  constraint tickets_ticket_status_check check (
    (ticket_type <> 'inquiry_tariff') = (ticket_status is not null)
    and ticket_status in ('OPEN', 'IN_PROGRESS', 'WAITING_CUSTOMER', 'RESOLVED', 'CLOSED', 'CANCELLED')),
  constraint tickets_origin_check check (origin is null or length(btrim(origin)) between 1 and 200),
  constraint tickets_destination_check check (destination is null or length(btrim(destination)) between 1 and 200),
  constraint tickets_commodity_check check (commodity is null or length(btrim(commodity)) between 1 and 200),
  constraint tickets_weight_kg_check check (weight_kg is null or weight_kg > 0),
  constraint tickets_volume_cbm_check check (volume_cbm is null or volume_cbm > 0),
  constraint tickets_contact_name_check check (contact_name is null or length(btrim(contact_name)) between 1 and 200),
  constraint tickets_contact_phone_check check (contact_phone is null or bizos.norm_phone(contact_phone) is not null),
  constraint tickets_contact_email_check check (contact_email is null or bizos.norm_email(contact_email) is not null),
  constraint tickets_company_name_check check (company_name is null or length(btrim(company_name)) between 1 and 200)
);
comment on table tickets is 'Tickets of four fixed types (TCK-1); inquiry_tariff tickets are RFQs (inquiry_status), the others use ticket_status.';
comment on column tickets.ticket_no is 'TCK-<year>-<n>, assigned by bizos.assign_business_id(''ticket'', ''ticket_no'')';
comment on column tickets.dept_target is 'Department that handles the ticket (profiles.dept_code, e.g. OPS-JKT, FIN): ops of that department see and work it';
comment on column tickets.need_customer_masking is 'Ops read this RFQ through v_ops_rfqs_masked (company and contacts masked)';
comment on column tickets.first_response_at is 'First message by someone other than the creator (bizos.sla_message_events)';
comment on column tickets.resolved_at is 'Entered RESOLVED (ticket) or QUOTED (inquiry); cleared on reopening (bizos.sla_ticket_events)';

create index tickets_dept_target_idx on tickets (tenant_id, dept_target);
create index tickets_created_by_idx on tickets (tenant_id, created_by);
create index tickets_assignee_user_id_idx on tickets (tenant_id, assignee_user_id);
create index tickets_related_lead_id_idx on tickets (tenant_id, related_lead_id);
create index tickets_related_customer_id_idx on tickets (tenant_id, related_customer_id);
create index tickets_created_at_idx on tickets (tenant_id, created_at);

-- Defaults and invariants that clients cannot bypass: the status column of
-- the type starts OPEN; stamps start empty; type and creator never change.
create function tickets_before_write() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    if new.ticket_type = 'inquiry_tariff' then
      new.inquiry_status := coalesce(new.inquiry_status, 'OPEN');
    elsif new.ticket_type is not null then
      new.ticket_status := coalesce(new.ticket_status, 'OPEN');
    end if;
    new.first_response_at := null;
    new.quoted_at := null;
    new.resolved_at := null;
    new.closed_at := null;
    new.cancelled_at := null;
  else
    if new.ticket_type is distinct from old.ticket_type then
      raise exception using errcode = 'P0001', column = 'ticket_type',
        message = 'ticket_type: the type of a ticket cannot change; create a new ticket';
    end if;
    if new.created_by is distinct from old.created_by then
      raise exception using errcode = 'P0001', column = 'created_by',
        message = 'created_by: the creator of a ticket cannot change';
    end if;
  end if;
  return new;
end
$$;

-- BEFORE triggers fire in name order: number, defaults, lifecycle guards,
-- SLA stamp (resolved_at), timestamps.
create trigger tickets_assign_no before insert or update on tickets
  for each row execute function bizos.assign_business_id('ticket', 'ticket_no');
create trigger tickets_defaults before insert or update on tickets
  for each row execute function tickets_before_write();
create trigger tickets_lifecycle_inquiry before insert or update on tickets
  for each row execute function bizos.lifecycle_guard('inquiry', 'inquiry_status',
    'RESOLVED=', 'QUOTED=quoted_at', 'WON=closed_at', 'LOST=closed_at', 'CLOSED=closed_at',
    'CANCELLED=cancelled_at');
create trigger tickets_lifecycle_ticket before insert or update on tickets
  for each row execute function bizos.lifecycle_guard('ticket', 'ticket_status',
    'RESOLVED=', 'CLOSED=closed_at', 'CANCELLED=cancelled_at');
create trigger tickets_sla_stamp before update on tickets
  for each row execute function bizos.sla_ticket_events(
    'status_columns=inquiry_status,ticket_status', 'key=ticket_id', 'events=sla_events',
    'resolved=RESOLVED,QUOTED', 'closed=CLOSED,WON,LOST', 'resolved_at=resolved_at');
create trigger tickets_stamp_timestamps before insert or update on tickets
  for each row execute function stamp_timestamps();

-- ---------------------------------------------------------------- sla_events
create table sla_events (
  tenant_id     uuid        not null,
  event_id      uuid        not null default gen_random_uuid(),
  ticket_id     uuid        not null,
  event_type    text        not null,
  metadata      jsonb       not null default '{}',
  actor_user_id uuid,
  occurred_at   timestamptz not null default now(),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint sla_events_pkey primary key (tenant_id, event_id),
  constraint sla_events_ticket_id_fkey foreign key (tenant_id, ticket_id)
    references tickets (tenant_id, ticket_id) on delete cascade,
  constraint sla_events_event_type_check check (event_type in ('FIRST_RESPONSE', 'STATUS_CHANGE', 'RESOLVED', 'CLOSED'))
);
comment on table sla_events is 'SLA events (C4) written only by bizos.sla_ticket_events / bizos.sla_message_events; users read them.';
create index sla_events_ticket_id_idx on sla_events (tenant_id, ticket_id, occurred_at);
create trigger sla_events_stamp_timestamps before insert or update on sla_events
  for each row execute function stamp_timestamps();

-- AFTER UPDATE: STATUS_CHANGE {column, from, to}, RESOLVED, CLOSED.
create trigger tickets_sla_events after update on tickets
  for each row execute function bizos.sla_ticket_events(
    'status_columns=inquiry_status,ticket_status', 'key=ticket_id', 'events=sla_events',
    'resolved=RESOLVED,QUOTED', 'closed=CLOSED,WON,LOST', 'resolved_at=resolved_at');

-- ---------------------------------------------------------------- messages
create table ticket_messages (
  tenant_id      uuid        not null,
  message_id     uuid        not null default gen_random_uuid(),
  ticket_id      uuid        not null,
  author_user_id uuid        default bizos.uid(),
  body           text        not null,
  internal       boolean     not null default false,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  constraint ticket_messages_pkey primary key (tenant_id, message_id),
  constraint ticket_messages_ticket_id_fkey foreign key (tenant_id, ticket_id)
    references tickets (tenant_id, ticket_id) on delete cascade,
  constraint ticket_messages_author_user_id_fkey foreign key (tenant_id, author_user_id)
    references profiles (tenant_id, user_id) on delete set null (author_user_id),
  constraint ticket_messages_body_check check (length(btrim(body)) between 1 and 20000)
);
comment on table ticket_messages is 'Conversation of a ticket; the first non-internal message by someone other than the creator is the first response.';
comment on column ticket_messages.internal is 'A note for the handling team, not a reply: does not count as first response';
create index ticket_messages_ticket_id_idx on ticket_messages (tenant_id, ticket_id, created_at);

-- No messages on finished tickets. (No pinned search_path: the read of
-- tickets runs under the caller's RLS, whose policies call unqualified
-- helpers such as owns_customer().)
create function ticket_messages_before_insert() returns trigger
language plpgsql
as $$
declare
  v_status text;
begin
  select coalesce(t.inquiry_status, t.ticket_status) into v_status
    from tickets t
   where t.tenant_id = new.tenant_id and t.ticket_id = new.ticket_id;
  if v_status in ('CLOSED', 'CANCELLED', 'WON', 'LOST') then
    raise exception using errcode = 'P0001', column = 'ticket_id',
      message = format('ticket_id: the ticket is %s; no more messages can be added', v_status);
  end if;
  return new;
end
$$;

create trigger ticket_messages_guard before insert on ticket_messages
  for each row execute function ticket_messages_before_insert();
create trigger ticket_messages_stamp_timestamps before insert or update on ticket_messages
  for each row execute function stamp_timestamps();
create trigger ticket_messages_sla after insert on ticket_messages
  for each row when (not new.internal)
  execute function bizos.sla_message_events('tickets=tickets', 'events=sla_events',
    'ticket=ticket_id', 'author=author_user_id', 'creator=created_by', 'first_response_at=first_response_at');

-- ---------------------------------------------------------------- attachments
create table ticket_attachments (
  tenant_id     uuid        not null,
  attachment_id uuid        not null default gen_random_uuid(),
  ticket_id     uuid        not null,
  bucket        text        not null default 'ticket-attachments',
  object_key    text        not null,
  file_name     text        not null,
  content_type  text        not null,
  size_bytes    bigint      not null,
  sha256        text        not null,
  created_by    uuid        default bizos.uid(),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint ticket_attachments_pkey primary key (tenant_id, attachment_id),
  constraint ticket_attachments_object_key_key unique (tenant_id, bucket, object_key),
  constraint ticket_attachments_ticket_id_fkey foreign key (tenant_id, ticket_id)
    references tickets (tenant_id, ticket_id) on delete cascade,
  constraint ticket_attachments_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint ticket_attachments_bucket_check check (bucket = 'ticket-attachments'),
  constraint ticket_attachments_object_key_check check (
    length(object_key) between 1 and 1024 and object_key !~ '(^/|\.\./|^\.\.$|/\.\.$|[[:cntrl:]])'),
  constraint ticket_attachments_file_name_check check (
    length(btrim(file_name)) between 1 and 255 and file_name !~ '[/\\[:cntrl:]]'),
  constraint ticket_attachments_content_type_check check (content_type ~ '^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$'),
  constraint ticket_attachments_size_bytes_check check (size_bytes >= 0),
  constraint ticket_attachments_sha256_check check (sha256 ~ '^[0-9a-f]{64}$')
);
comment on table ticket_attachments is 'Files of a ticket in bucket ticket-attachments; the BFF stores the object and inserts this row (access follows the ticket).';
create index ticket_attachments_ticket_id_idx on ticket_attachments (tenant_id, ticket_id);
create trigger ticket_attachments_stamp_timestamps before insert or update on ticket_attachments
  for each row execute function stamp_timestamps();

-- ---------------------------------------------------------------- business time
create table business_calendars (
  tenant_id   uuid        not null,
  calendar_id uuid        not null default gen_random_uuid(),
  time_zone   text        not null default 'Asia/Jakarta',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint business_calendars_pkey primary key (tenant_id, calendar_id),
  constraint business_calendars_tenant_id_key unique (tenant_id),
  constraint business_calendars_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint business_calendars_time_zone_check check (length(time_zone) between 1 and 64)
);
comment on table business_calendars is 'The tenant''s business time zone (one row per tenant; none: Asia/Jakarta).';

-- A time zone must be one PostgreSQL knows (a CHECK may not read catalogs).
create function business_calendars_before_write() returns trigger
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
create trigger business_calendars_check_time_zone before insert or update on business_calendars
  for each row execute function business_calendars_before_write();
create trigger business_calendars_stamp_timestamps before insert or update on business_calendars
  for each row execute function stamp_timestamps();

create table business_hours (
  tenant_id        uuid        not null,
  business_hour_id uuid        not null default gen_random_uuid(),
  weekday          smallint    not null,
  opens_at         time        not null,
  closes_at        time        not null,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint business_hours_pkey primary key (tenant_id, business_hour_id),
  constraint business_hours_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint business_hours_weekday_check check (weekday between 1 and 7),
  constraint business_hours_closes_at_check check (closes_at > opens_at or closes_at = '24:00'),
  -- No overlapping intervals on one weekday (seconds since midnight).
  constraint business_hours_weekday_excl exclude using gist (
    tenant_id with =, weekday with =,
    int4range(extract(epoch from opens_at)::int, extract(epoch from closes_at)::int) with &&)
);
comment on table business_hours is 'Working intervals per ISO weekday (1 = Monday) in the tenant''s time zone, e.g. 08:00-12:00 and 13:00-17:00; none at all: Monday-Friday 08:00-17:00.';
create trigger business_hours_stamp_timestamps before insert or update on business_hours
  for each row execute function stamp_timestamps();

create table holidays (
  tenant_id    uuid        not null,
  holiday_id   uuid        not null default gen_random_uuid(),
  holiday_date date        not null,
  name         text        not null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint holidays_pkey primary key (tenant_id, holiday_id),
  constraint holidays_holiday_date_key unique (tenant_id, holiday_date),
  constraint holidays_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint holidays_name_check check (length(btrim(name)) between 1 and 200)
);
comment on table holidays is 'Days without business hours (tenant time zone), e.g. public holidays and cuti bersama.';
create trigger holidays_stamp_timestamps before insert or update on holidays
  for each row execute function stamp_timestamps();

-- The calendar functions read configuration of one tenant. They run as the
-- owner so that they give the same answer for every reader of the views
-- (callers without a calendar grant, analysts, BI), and refuse a caller
-- whose claims name another tenant.
create function business_time_zone(tenant uuid) returns text
language plpgsql stable security definer
as $$
declare
  v_tz text;
begin
  if bizos.tenant_id() is not null and tenant is distinct from bizos.tenant_id() then
    raise exception using errcode = '42501', message = 'business calendars of another tenant are not visible';
  end if;
  select c.time_zone into v_tz from business_calendars c where c.tenant_id = tenant;
  return coalesce(v_tz, 'Asia/Jakarta');
end
$$;
select pin_search_path('business_time_zone(uuid)');

-- Working intervals [starts_at, ends_at) of the tenant on the local days
-- from_day .. to_day, holidays excluded, in time order.
create function business_intervals(tenant uuid, from_day date, to_day date)
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
      select g::date as d from generate_series(from_day, to_day, interval '1 day') g
    )
    select ((d.d + hrs.opens_at) at time zone v_tz), ((d.d + hrs.closes_at) at time zone v_tz)
      from days d
      join hrs on hrs.weekday = extract(isodow from d.d)
     where not exists (select 1 from holidays x where x.tenant_id = tenant and x.holiday_date = d.d)
     order by 1;
end
$$;
select pin_search_path('business_intervals(uuid, date, date)');

-- Business minutes between two instants (negative when to_ts < from_ts).
create function business_minutes_between(tenant uuid, from_ts timestamptz, to_ts timestamptz)
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

-- The instant `minutes` business minutes after `start`. Zero minutes is
-- `start` itself; otherwise the clock only runs inside business hours, so a
-- start outside them counts from the next opening, and a deadline that ends
-- exactly at a closing time is that closing time.
create function add_business_minutes(tenant uuid, start timestamptz, minutes integer)
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

-- ---------------------------------------------------------------- SLA policies
create table sla_policies (
  tenant_id          uuid        not null,
  sla_policy_id      uuid        not null default gen_random_uuid(),
  ticket_type        text        not null,
  priority           text        not null,
  response_minutes   integer     not null,
  resolution_minutes integer     not null,
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint sla_policies_pkey primary key (tenant_id, sla_policy_id),
  constraint sla_policies_ticket_type_priority_key unique (tenant_id, ticket_type, priority),
  constraint sla_policies_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint sla_policies_ticket_type_check check (ticket_type in (
    'inquiry_tariff', 'general_request', 'complaint', 'service_request')),
  constraint sla_policies_priority_check check (priority in ('low', 'normal', 'high', 'urgent')),
  constraint sla_policies_response_minutes_check check (response_minutes > 0),
  constraint sla_policies_resolution_minutes_check check (resolution_minutes >= response_minutes)
);
comment on table sla_policies is 'Response and resolution targets in business minutes per ticket type and priority (for inquiries, resolution = quote).';
create trigger sla_policies_stamp_timestamps before insert or update on sla_policies
  for each row execute function stamp_timestamps();

-- Every tenant starts with a full matrix (a business day is 540 minutes).
create function default_sla_policies()
returns table (ticket_type text, priority text, response_minutes integer, resolution_minutes integer)
language sql immutable
as $$
  select t.ticket_type, p.priority, p.response_minutes, p.resolution_minutes
    from (values ('inquiry_tariff'), ('general_request'), ('complaint'), ('service_request')) t (ticket_type)
   cross join (values ('urgent', 30, 240), ('high', 60, 540), ('normal', 240, 1620), ('low', 480, 2700))
         p (priority, response_minutes, resolution_minutes)
$$;

create function grant_default_sla_policies() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  execute format(
    'insert into %I.sla_policies (tenant_id, ticket_type, priority, response_minutes, resolution_minutes)
     select $1, d.ticket_type, d.priority, d.response_minutes, d.resolution_minutes
       from %I.default_sla_policies() d
     on conflict do nothing', tg_table_schema, tg_table_schema)
  using new.tenant_id;
  return null;
end
$$;

create trigger tenants_default_sla_policies
  after insert on tenants
  for each row execute function grant_default_sla_policies();

insert into sla_policies (tenant_id, ticket_type, priority, response_minutes, resolution_minutes)
select t.tenant_id, d.ticket_type, d.priority, d.response_minutes, d.resolution_minutes
  from tenants t cross join default_sla_policies() d
on conflict do nothing;

-- ---------------------------------------------------------------- RLS
alter table tickets enable row level security;
alter table sla_events enable row level security;
alter table ticket_messages enable row level security;
alter table ticket_attachments enable row level security;
alter table business_calendars enable row level security;
alter table business_hours enable row level security;
alter table holidays enable row level security;
alter table sla_policies enable row level security;

-- Who sees a ticket (tenant isolation always):
--   super_admin, director: every ticket of the tenant
--   everyone: tickets they created or are assigned to
--   ops: tickets whose dept_target is their department
--   finance: tickets for FIN
--   sales_manager, salesperson: tickets their team created, and tickets of
--     customers their team owns (owns_customer) or of leads their team owns
--   marketing_manager: RFQs that came from leads
create policy "ticket readers by role, department, customer and lead"
  on tickets for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'director')
              or created_by = (select bizos.uid())
              or assignee_user_id = (select bizos.uid())
              or ((select bizos.app_role()) = 'ops' and dept_target = (select my_dept_code()))
              or ((select bizos.app_role()) = 'finance' and dept_target = 'FIN')
              or ((select bizos.app_role()) = 'marketing_manager' and related_lead_id is not null)
              or ((select bizos.app_role()) in ('sales_manager', 'salesperson')
                  and (created_by = any ((select my_team_ids())::uuid[])
                       or (related_customer_id is not null and owns_customer(related_customer_id))
                       or (related_lead_id is not null and exists (
                             select 1 from leads l
                              where l.tenant_id = tickets.tenant_id and l.lead_id = tickets.related_lead_id
                                and l.sales_owner_user_id = any ((select my_team_ids())::uuid[])))))));

create policy "users with ticket.create open tickets as themselves"
  on tickets for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id())
              and created_by = (select bizos.uid())
              and (select has_permission('ticket.create')));

create policy "super admins and the target department work tickets"
  on tickets for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = 'super_admin'
              or ((select bizos.app_role()) = 'ops' and dept_target = (select my_dept_code()))
              or ((select bizos.app_role()) = 'finance' and dept_target = 'FIN')))
  with check (tenant_id = (select bizos.tenant_id())
              and ((select bizos.app_role()) = 'super_admin'
                   or ((select bizos.app_role()) = 'ops' and dept_target = (select my_dept_code()))
                   or ((select bizos.app_role()) = 'finance' and dept_target = 'FIN')));

create policy "super admins delete tickets"
  on tickets for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');

grant select, delete on tickets to bizos_authenticated;
grant insert (tenant_id, ticket_id, ticket_type, subject, description, priority, dept_target,
              need_customer_masking, related_lead_id, related_customer_id, assignee_user_id, created_by,
              origin, destination, commodity, weight_kg, volume_cbm,
              contact_name, contact_phone, contact_email, company_name)
  on tickets to bizos_authenticated;
-- Not ticket_no, ticket_type, created_by nor any *_at column: those belong
-- to triggers.
grant update (subject, description, priority, dept_target, inquiry_status, ticket_status,
              need_customer_masking, related_lead_id, related_customer_id, assignee_user_id,
              origin, destination, commodity, weight_kg, volume_cbm,
              contact_name, contact_phone, contact_email, company_name)
  on tickets to bizos_authenticated;

-- Messages, attachments and SLA events follow their ticket's visibility
-- (the subquery on tickets is itself under the caller's RLS).
create policy "sla events are visible with their ticket"
  on sla_events for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from tickets t
                      where t.tenant_id = sla_events.tenant_id and t.ticket_id = sla_events.ticket_id));
grant select on sla_events to bizos_authenticated;

create policy "messages are visible with their ticket"
  on ticket_messages for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from tickets t
                      where t.tenant_id = ticket_messages.tenant_id and t.ticket_id = ticket_messages.ticket_id));
create policy "users with ticket.message write on visible tickets"
  on ticket_messages for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id())
              and author_user_id = (select bizos.uid())
              and (select has_permission('ticket.message'))
              and exists (select 1 from tickets t
                           where t.tenant_id = ticket_messages.tenant_id and t.ticket_id = ticket_messages.ticket_id));
create policy "super admins delete messages"
  on ticket_messages for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, delete on ticket_messages to bizos_authenticated;
grant insert (tenant_id, message_id, ticket_id, author_user_id, body, internal) on ticket_messages to bizos_authenticated;

create policy "attachments are visible with their ticket"
  on ticket_attachments for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from tickets t
                      where t.tenant_id = ticket_attachments.tenant_id and t.ticket_id = ticket_attachments.ticket_id));
create policy "users with ticket.message attach to visible tickets"
  on ticket_attachments for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id())
              and created_by = (select bizos.uid())
              and (select has_permission('ticket.message'))
              and exists (select 1 from tickets t
                           where t.tenant_id = ticket_attachments.tenant_id and t.ticket_id = ticket_attachments.ticket_id));
create policy "uploaders and super admins delete attachments"
  on ticket_attachments for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = 'super_admin' or created_by = (select bizos.uid())));
grant select, delete on ticket_attachments to bizos_authenticated;
grant insert (tenant_id, attachment_id, ticket_id, bucket, object_key, file_name, content_type, size_bytes, sha256, created_by)
  on ticket_attachments to bizos_authenticated;

-- Calendar and SLA configuration: every member reads, super admins write.
create policy "members read their business calendar"
  on business_calendars for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins create the business calendar"
  on business_calendars for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins edit the business calendar"
  on business_calendars for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins remove the business calendar"
  on business_calendars for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, insert, delete on business_calendars to bizos_authenticated;
grant update (time_zone) on business_calendars to bizos_authenticated;

create policy "members read their business hours"
  on business_hours for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins add business hours"
  on business_hours for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins edit business hours"
  on business_hours for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins remove business hours"
  on business_hours for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, insert, delete on business_hours to bizos_authenticated;
grant update (weekday, opens_at, closes_at) on business_hours to bizos_authenticated;

create policy "members read their holidays"
  on holidays for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins add holidays"
  on holidays for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins edit holidays"
  on holidays for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins remove holidays"
  on holidays for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, insert, delete on holidays to bizos_authenticated;
grant update (holiday_date, name) on holidays to bizos_authenticated;

create policy "members read their sla policies"
  on sla_policies for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "super admins add sla policies"
  on sla_policies for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins edit sla policies"
  on sla_policies for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin')
  with check (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
create policy "super admins remove sla policies"
  on sla_policies for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, insert, delete on sla_policies to bizos_authenticated;
grant update (response_minutes, resolution_minutes) on sla_policies to bizos_authenticated;

revoke execute on function business_time_zone(uuid), business_intervals(uuid, date, date) from public;
grant execute on function business_time_zone(uuid), business_intervals(uuid, date, date) to bizos_authenticated;

-- ---------------------------------------------------------------- views
-- RFQs as ops read them (TCK-2, C5): when need_customer_masking is set, the
-- company and the contacts are masked. Security invoker: the caller's RLS
-- on tickets decides the rows.
create view v_ops_rfqs_masked with (security_invoker = true) as
select t.tenant_id, t.ticket_id, t.ticket_no, t.subject, t.description, t.priority, t.dept_target,
       t.inquiry_status, t.need_customer_masking, t.assignee_user_id,
       t.origin, t.destination, t.commodity, t.weight_kg, t.volume_cbm,
       case when t.need_customer_masking then 'MASKED' else t.company_name end as company_name,
       case when t.need_customer_masking and t.contact_name is not null then '***' else t.contact_name end as contact_name,
       case when t.need_customer_masking and t.contact_phone is not null then '***' else t.contact_phone end as contact_phone,
       case when t.need_customer_masking and t.contact_email is not null then '***' else t.contact_email end as contact_email,
       t.first_response_at, t.quoted_at, t.resolved_at, t.closed_at, t.created_at, t.updated_at
  from tickets t
 where t.ticket_type = 'inquiry_tariff';
comment on view v_ops_rfqs_masked is 'RFQs for ops: company "MASKED" and contacts "***" when need_customer_masking (TCK-2).';

-- First response per ticket (TCK-3): NULL until someone other than the
-- creator replies.
create view v_ticket_first_response with (security_invoker = true) as
select t.tenant_id, t.ticket_id, t.ticket_no, t.ticket_type, t.priority, t.dept_target,
       t.created_at, t.first_response_at,
       round(extract(epoch from (t.first_response_at - t.created_at)) / 60, 2) as first_response_minutes,
       business_minutes_between(t.tenant_id, t.created_at, t.first_response_at) as first_response_business_minutes
  from tickets t;
comment on view v_ticket_first_response is 'Minutes and business minutes from creation to the first response; NULL without a reply.';

-- Median first response per day of creation in the tenant's time zone.
create view v_ticket_first_response_daily_median with (security_invoker = true) as
select f.tenant_id,
       (f.created_at at time zone business_time_zone(f.tenant_id))::date as day,
       count(*) as tickets,
       count(f.first_response_at) as responded,
       percentile_cont(0.5) within group (order by f.first_response_minutes) as median_first_response_minutes,
       percentile_cont(0.5) within group (order by f.first_response_business_minutes) as median_first_response_business_minutes
  from v_ticket_first_response f
 group by f.tenant_id, (f.created_at at time zone business_time_zone(f.tenant_id))::date;
comment on view v_ticket_first_response_daily_median is 'Median first response (minutes, business minutes) of the tickets created each day (tenant time zone); tickets without a reply count in tickets, not in the median.';

-- SLA status per ticket (C4, TCK-3). The response clock stops at the first
-- response (or when the ticket is resolved, closed or cancelled without
-- one); the resolution clock at resolution (QUOTED for RFQs), closing or
-- cancelling. status: breached if either target was missed, met once the
-- ticket is finished in time, due while running in time; NULL without a
-- policy.
create view v_sla_status with (security_invoker = true) as
with s as (
  select t.tenant_id, t.ticket_id, t.ticket_no, t.ticket_type, t.priority, t.dept_target,
         coalesce(t.inquiry_status, t.ticket_status) as ticket_state,
         t.created_at, t.first_response_at, t.resolved_at, t.closed_at, t.cancelled_at,
         p.response_minutes, p.resolution_minutes,
         add_business_minutes(t.tenant_id, t.created_at, p.response_minutes) as response_due_at,
         add_business_minutes(t.tenant_id, t.created_at, p.resolution_minutes) as resolution_due_at,
         coalesce(t.first_response_at, t.resolved_at, t.closed_at, t.cancelled_at) as responded_at,
         coalesce(t.resolved_at, t.closed_at, t.cancelled_at) as finished_at
    from tickets t
    left join sla_policies p
      on p.tenant_id = t.tenant_id and p.ticket_type = t.ticket_type and p.priority = t.priority
)
select s.tenant_id, s.ticket_id, s.ticket_no, s.ticket_type, s.priority, s.dept_target, s.ticket_state,
       s.created_at, s.first_response_at, s.resolved_at, s.closed_at, s.cancelled_at,
       s.response_minutes, s.resolution_minutes, s.response_due_at, s.resolution_due_at,
       coalesce(coalesce(s.responded_at, now()) > s.response_due_at, false) as response_breached,
       coalesce(coalesce(s.finished_at, now()) > s.resolution_due_at, false) as resolution_breached,
       case
         when s.response_due_at is null then null
         when coalesce(s.responded_at, now()) > s.response_due_at
           or coalesce(s.finished_at, now()) > s.resolution_due_at then 'breached'
         when s.finished_at is not null then 'met'
         else 'due'
       end as sla_status
  from s;
comment on view v_sla_status is 'Due times from sla_policies in business minutes, breaches and met/due/breached per ticket.';

grant select on v_ops_rfqs_masked, v_ticket_first_response, v_ticket_first_response_daily_median, v_sla_status
  to bizos_authenticated;

-- ---------------------------------------------------------------- RPC helpers
-- Bad input: P0001 with the field as `column` (the BFF maps it to the field).
-- Is `assignee` an active user who may work tickets of `dept`?
create function tck_can_work(assignee uuid, dept text) returns boolean
language sql stable
as $$
  select exists (
    select 1 from profiles p
     where p.tenant_id = (select bizos.tenant_id()) and p.user_id = assignee and p.active
       and (p.app_role = 'super_admin'
            or (p.app_role = 'ops' and p.dept_code = dept)
            or (p.app_role = 'finance' and dept = 'FIN')))
$$;

-- ---------------------------------------------------------------- RPCs
-- ticket_create(payload) → {ticket_id, ticket_no, ticket_type, status}.
-- Fields: ticket_type*, subject*, dept_target*, description, priority
-- (normal), need_customer_masking (true for inquiry_tariff, else false),
-- related_lead_id, related_customer_id (from the lead when omitted),
-- assignee_user_id (needs ticket.update); for inquiry_tariff also origin*,
-- destination*, commodity, weight_kg, volume_cbm, contact_name,
-- contact_phone, contact_email, company_name (snapshots taken from the
-- customer when omitted).
create function ticket_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  c_fields constant text[] := array[
    'ticket_type', 'subject', 'description', 'priority', 'dept_target', 'need_customer_masking',
    'related_lead_id', 'related_customer_id', 'assignee_user_id',
    'origin', 'destination', 'commodity', 'weight_kg', 'volume_cbm',
    'contact_name', 'contact_phone', 'contact_email', 'company_name'];
  c_rfq constant text[] := array[
    'origin', 'destination', 'commodity', 'weight_kg', 'volume_cbm',
    'contact_name', 'contact_phone', 'contact_email', 'company_name'];
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_key text;
  v_type text;
  v_subject text;
  v_description text;
  v_priority text;
  v_dept text;
  v_mask boolean;
  v_lead uuid;
  v_customer uuid;
  v_lead_customer uuid;
  v_assignee uuid;
  v_origin text;
  v_destination text;
  v_commodity text;
  v_weight numeric;
  v_volume numeric;
  v_contact_name text;
  v_contact_phone text;
  v_contact_email text;
  v_company text;
  v_cust_company text;
  v_cust_email text;
  v_cust_phone text;
  v_row tickets;
begin
  perform require_permission('ticket.create');
  if v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if payload is null or jsonb_typeof(payload) <> 'object' then
    perform raise_field('payload', 'must be a JSON object');
  end if;
  for v_key in select jsonb_object_keys(payload) loop
    if not v_key = any (c_fields) then
      perform raise_field(v_key, 'unknown field');
    end if;
  end loop;

  v_type := payload_text(payload, 'ticket_type', true, 32);
  if v_type not in ('inquiry_tariff', 'general_request', 'complaint', 'service_request') then
    perform raise_field('ticket_type', 'must be one of inquiry_tariff, general_request, complaint, service_request');
  end if;
  v_subject := payload_text(payload, 'subject', true, 200);
  v_description := payload_text(payload, 'description', false, 20000);
  v_priority := coalesce(lower(payload_text(payload, 'priority', false, 16)), 'normal');
  if v_priority not in ('low', 'normal', 'high', 'urgent') then
    perform raise_field('priority', 'must be one of low, normal, high, urgent');
  end if;
  v_dept := upper(payload_text(payload, 'dept_target', true, 32));
  if v_dept !~ '^[A-Z][A-Z0-9_-]{0,31}$' then
    perform raise_field('dept_target', 'must be a department code such as OPS-JKT or FIN');
  end if;
  if v_dept <> 'FIN' and not exists (
       select 1 from profiles p where p.tenant_id = v_tenant and p.dept_code = v_dept and p.active) then
    perform raise_field('dept_target', format('no department %s in this tenant', v_dept));
  end if;
  v_mask := coalesce(payload_bool(payload, 'need_customer_masking'), v_type = 'inquiry_tariff');

  v_lead := payload_uuid(payload, 'related_lead_id');
  if v_lead is not null then
    select l.customer_id into v_lead_customer from leads l
     where l.tenant_id = v_tenant and l.lead_id = v_lead;
    if not found then
      perform raise_field('related_lead_id', 'no such lead');
    end if;
  end if;
  v_customer := payload_uuid(payload, 'related_customer_id');
  if v_customer is not null then
    select c.company_name, c.email, c.phone into v_cust_company, v_cust_email, v_cust_phone
      from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_customer;
    if not found then
      perform raise_field('related_customer_id', 'no such customer');
    end if;
    if v_lead_customer is not null and v_lead_customer <> v_customer then
      perform raise_field('related_customer_id', 'differs from the customer of the related lead');
    end if;
  elsif v_lead_customer is not null then
    v_customer := v_lead_customer;
    -- The lead's customer may be invisible to the caller (e.g. marketing):
    -- then there is simply no snapshot to take.
    select c.company_name, c.email, c.phone into v_cust_company, v_cust_email, v_cust_phone
      from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_customer;
  end if;

  v_assignee := payload_uuid(payload, 'assignee_user_id');
  if v_assignee is not null then
    if not has_permission('ticket.update') then
      raise exception using errcode = '42501', column = 'assignee_user_id',
        message = format('your role (%s) may not assign tickets', bizos.app_role());
    end if;
    if not tck_can_work(v_assignee, v_dept) then
      perform raise_field('assignee_user_id', format('not an active user who works tickets of %s', v_dept));
    end if;
  end if;

  if v_type <> 'inquiry_tariff' then
    foreach v_key in array c_rfq loop
      if payload ? v_key and jsonb_typeof(payload -> v_key) <> 'null' then
        perform raise_field(v_key, 'only for inquiry_tariff tickets');
      end if;
    end loop;
  else
    v_origin := payload_text(payload, 'origin', true, 200);
    v_destination := payload_text(payload, 'destination', true, 200);
    v_commodity := payload_text(payload, 'commodity', false, 200);
    v_weight := payload_positive(payload, 'weight_kg');
    v_volume := payload_positive(payload, 'volume_cbm');
    v_contact_name := payload_text(payload, 'contact_name', false, 200);
    v_contact_phone := payload_text(payload, 'contact_phone', false, 40);
    if v_contact_phone is not null then
      v_contact_phone := bizos.norm_phone(v_contact_phone);
      if v_contact_phone is null then
        perform raise_field('contact_phone', 'not a valid phone number');
      end if;
    end if;
    v_contact_email := payload_text(payload, 'contact_email', false, 254);
    if v_contact_email is not null then
      v_contact_email := bizos.norm_email(v_contact_email);
      if v_contact_email is null then
        perform raise_field('contact_email', 'not a valid e-mail address');
      end if;
    end if;
    v_company := payload_text(payload, 'company_name', false, 200);
    v_company := coalesce(v_company, v_cust_company);
    v_contact_email := coalesce(v_contact_email, bizos.norm_email(v_cust_email));
    v_contact_phone := coalesce(v_contact_phone, bizos.norm_phone(v_cust_phone));
  end if;

  insert into tickets (tenant_id, ticket_type, subject, description, priority, dept_target,
                       need_customer_masking, related_lead_id, related_customer_id, assignee_user_id, created_by,
                       origin, destination, commodity, weight_kg, volume_cbm,
                       contact_name, contact_phone, contact_email, company_name)
  values (v_tenant, v_type, v_subject, v_description, v_priority, v_dept,
          v_mask, v_lead, v_customer, v_assignee, v_uid,
          v_origin, v_destination, v_commodity, v_weight, v_volume,
          v_contact_name, v_contact_phone, v_contact_email, v_company)
  returning * into v_row;

  return jsonb_build_object('ticket_id', v_row.ticket_id, 'ticket_no', v_row.ticket_no,
                            'ticket_type', v_row.ticket_type,
                            'status', coalesce(v_row.inquiry_status, v_row.ticket_status));
end
$$;

-- ticket_transition(ticket_id, to_status, note) → {ticket_id, ticket_no,
-- column, from, to, changed, resolved_at, closed_at}. The note becomes a
-- message of the caller (a reply, so it can be the first response). Moving
-- to the current status is a no-op (changed = false): retries are safe.
create function ticket_transition(ticket_id uuid, to_status text, note text default null) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_to text := upper(nullif(btrim(to_status), ''));
  v_note text := nullif(btrim(note), '');
  v_ticket tickets;
  v_entity text;
  v_column text;
  v_from text;
  v_allowed text[];
begin
  perform require_permission('ticket.update');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  if v_to is null then
    perform raise_field('to_status', 'required');
  end if;
  if length(v_note) > 20000 then
    perform raise_field('note', 'at most 20000 characters');
  end if;
  if not exists (select 1 from tickets t
                  where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  -- May the caller work this ticket? FOR UPDATE applies the UPDATE policy
  -- too, and serialises concurrent transitions of one ticket.
  select t.* into v_ticket from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
   for update;
  if not found then
    raise exception using errcode = '42501', column = 'ticket_id',
      message = 'ticket_id: you may see this ticket but not change it';
  end if;
  if v_ticket.ticket_type = 'inquiry_tariff' then
    v_entity := 'inquiry'; v_column := 'inquiry_status'; v_from := v_ticket.inquiry_status;
  else
    v_entity := 'ticket'; v_column := 'ticket_status'; v_from := v_ticket.ticket_status;
  end if;
  if not exists (select 1 from bizos.transitions x where x.entity = v_entity and x.to_status = v_to) then
    perform raise_field('to_status', format('unknown status %s for %s tickets', v_to, v_ticket.ticket_type));
  end if;
  if v_to = v_from then
    return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
      'column', v_column, 'from', v_from, 'to', v_to, 'changed', false,
      'resolved_at', v_ticket.resolved_at, 'closed_at', v_ticket.closed_at);
  end if;
  select array_agg(x.to_status order by x.to_status) into v_allowed from bizos.transitions x
   where x.entity = v_entity and x.from_status = v_from;
  if v_allowed is null or not v_to = any (v_allowed) then
    raise exception using errcode = 'P0001', column = 'to_status',
      message = format('to_status: a %s cannot move from %s to %s', v_entity, v_from, v_to),
      hint = case when v_allowed is null then format('%s is a final state', v_from)
                  else format('from %s it can move to %s', v_from, array_to_string(v_allowed, ', ')) end;
  end if;
  if v_note is not null then
    insert into ticket_messages (tenant_id, ticket_id, author_user_id, body, internal)
    values (v_tenant, v_ticket.ticket_id, bizos.uid(), v_note, false);
  end if;
  if v_column = 'inquiry_status' then
    update tickets t set inquiry_status = v_to
     where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
    returning t.* into v_ticket;
  else
    update tickets t set ticket_status = v_to
     where t.tenant_id = v_tenant and t.ticket_id = ticket_transition.ticket_id
    returning t.* into v_ticket;
  end if;
  return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
    'column', v_column, 'from', v_from, 'to', v_to, 'changed', true,
    'resolved_at', v_ticket.resolved_at, 'closed_at', v_ticket.closed_at);
end
$$;

-- ticket_add_message(ticket_id, body, internal) → {message_id, ticket_id,
-- first_response_at}.
create function ticket_add_message(ticket_id uuid, body text, internal boolean default false) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_body text := nullif(btrim(body), '');
  v_message uuid;
  v_first timestamptz;
begin
  perform require_permission('ticket.message');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  if v_body is null then
    perform raise_field('body', 'required');
  end if;
  if length(v_body) > 20000 then
    perform raise_field('body', 'at most 20000 characters');
  end if;
  if not exists (select 1 from tickets t where t.tenant_id = v_tenant and t.ticket_id = ticket_add_message.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  insert into ticket_messages (tenant_id, ticket_id, author_user_id, body, internal)
  values (v_tenant, ticket_add_message.ticket_id, bizos.uid(), v_body, coalesce(ticket_add_message.internal, false))
  returning message_id into v_message;
  select t.first_response_at into v_first from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_add_message.ticket_id;
  return jsonb_build_object('message_id', v_message, 'ticket_id', ticket_add_message.ticket_id,
                            'first_response_at', v_first);
end
$$;

-- ticket_assign(ticket_id, assignee) → {ticket_id, ticket_no,
-- assignee_user_id}; NULL unassigns. The assignee must be able to work the
-- ticket's department (ops of it, finance for FIN, or a super admin).
create function ticket_assign(ticket_id uuid, assignee uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_ticket tickets;
begin
  perform require_permission('ticket.update');
  if ticket_id is null then
    perform raise_field('ticket_id', 'required');
  end if;
  select t.* into v_ticket from tickets t
   where t.tenant_id = v_tenant and t.ticket_id = ticket_assign.ticket_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'ticket_id', message = 'ticket_id: no such ticket';
  end if;
  if assignee is not null and not tck_can_work(assignee, v_ticket.dept_target) then
    perform raise_field('assignee_user_id', format('not an active user who works tickets of %s', v_ticket.dept_target));
  end if;
  update tickets t set assignee_user_id = assignee
   where t.tenant_id = v_tenant and t.ticket_id = ticket_assign.ticket_id
  returning t.* into v_ticket;
  if not found then
    raise exception using errcode = '42501', column = 'ticket_id',
      message = 'ticket_id: you may see this ticket but not change it';
  end if;
  return jsonb_build_object('ticket_id', v_ticket.ticket_id, 'ticket_no', v_ticket.ticket_no,
                            'assignee_user_id', v_ticket.assignee_user_id);
end
$$;

grant execute on function ticket_create(jsonb), ticket_transition(uuid, text, text),
  ticket_add_message(uuid, text, boolean), ticket_assign(uuid, uuid),
  business_minutes_between(uuid, timestamptz, timestamptz), add_business_minutes(uuid, timestamptz, integer)
  to bizos_authenticated;

-- ---------------------------------------------------------------- audit
-- tickets and the SLA/calendar configuration are audited in full. Messages
-- are append-only for users (no UPDATE grant) and carry their author and
-- time themselves, so only their DELETEs (super admins) are audited: that
-- keeps evidence of a removed reply without copying every message body
-- (PII, volume) into the audit log. sla_events are written by triggers only.
select bizos.enable_audit('tickets');
select bizos.enable_audit('ticket_attachments');
select bizos.enable_audit('sla_policies');
select bizos.enable_audit('business_calendars');
select bizos.enable_audit('business_hours');
select bizos.enable_audit('holidays');
create trigger bizos_audit after delete on ticket_messages
  for each row execute function bizos.audit_trigger('tenant_id', 'message_id');
