-- CRM (seed 004 §4A): customers deduplicated on normalised keys, prospects
-- per customer and owner, leads with business numbers, stage history and
-- activities derived from actions, marketing events and spend.

insert into bizos.id_kinds (kind, prefix, mode) values ('lead', 'LEAD', 'sequence')
on conflict (kind) do nothing;

insert into bizos.transitions (entity, from_status, to_status) values
  ('prospect', null, 'NEW'),
  ('prospect', 'NEW', 'CONTACTED'), ('prospect', 'NEW', 'LOST'),
  ('prospect', 'CONTACTED', 'QUALIFIED'), ('prospect', 'CONTACTED', 'LOST'),
  ('prospect', 'QUALIFIED', 'PROPOSAL'), ('prospect', 'QUALIFIED', 'LOST'),
  ('prospect', 'PROPOSAL', 'NEGOTIATION'), ('prospect', 'PROPOSAL', 'WON'), ('prospect', 'PROPOSAL', 'LOST'),
  ('prospect', 'NEGOTIATION', 'WON'), ('prospect', 'NEGOTIATION', 'LOST'),
  ('prospect', 'LOST', 'NEW'),
  ('lead', null, 'NEW'), ('lead', null, 'ASSIGNED'),
  ('lead', 'NEW', 'ASSIGNED'), ('lead', 'NEW', 'DISQUALIFIED'),
  ('lead', 'ASSIGNED', 'CONTACTED'), ('lead', 'ASSIGNED', 'DISQUALIFIED'),
  ('lead', 'CONTACTED', 'QUALIFIED'), ('lead', 'CONTACTED', 'DISQUALIFIED'),
  ('lead', 'QUALIFIED', 'CONVERTED'), ('lead', 'QUALIFIED', 'DISQUALIFIED')
on conflict do nothing;

-- ---------------------------------------------------------------- customers
create table customers (
  tenant_id    uuid        not null,
  customer_id  uuid        not null default gen_random_uuid(),
  company_name text        not null,
  npwp         text,
  email        text,
  phone        text,
  address      text,
  city         text,
  npwp_norm    text generated always as (bizos.norm_npwp(npwp)) stored,
  email_norm   text generated always as (bizos.norm_email(email)) stored,
  phone_norm   text generated always as (bizos.norm_phone(phone)) stored,
  company_norm text generated always as (bizos.norm_company(company_name)) stored,
  created_by   uuid        default bizos.uid(),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint customers_pkey primary key (tenant_id, customer_id),
  constraint customers_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint customers_company_name_check check (company_norm is not null and length(company_name) <= 200),
  constraint customers_npwp_check check (npwp is null or npwp_norm is not null),
  constraint customers_email_check check (email is null or email_norm is not null),
  constraint customers_phone_check check (phone is null or phone_norm is not null)
);
comment on table customers is 'Companies we sell to; one row per legal entity (NPWP), deduplicated by find_or_create_customer.';
-- The NPWP is the legal identity: unique, so concurrent creates meet in ON CONFLICT.
create unique index customers_npwp_norm_key on customers (tenant_id, npwp_norm);
create index customers_email_norm_idx on customers (tenant_id, email_norm);
create index customers_phone_norm_idx on customers (tenant_id, phone_norm);
create index customers_company_norm_trgm_idx on customers using gin (company_norm extensions.gin_trgm_ops);
create index customers_company_norm_idx on customers (tenant_id, company_norm);

create trigger customers_stamp_timestamps before insert or update on customers
  for each row execute function stamp_timestamps();
create trigger customers_keep_created_by before insert or update on customers
  for each row execute function keep_created_by();

-- ---------------------------------------------------------------- prospects
create table prospects (
  tenant_id     uuid        not null,
  prospect_id   uuid        not null default gen_random_uuid(),
  customer_id   uuid        not null,
  owner_user_id uuid,
  stage         text        not null default 'NEW',
  expected_value numeric(16,2),
  notes         text,
  won_at        timestamptz,
  lost_at       timestamptz,
  created_by    uuid        default bizos.uid(),
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint prospects_pkey primary key (tenant_id, prospect_id),
  constraint prospects_customer_id_owner_user_id_key unique nulls not distinct (tenant_id, customer_id, owner_user_id),
  constraint prospects_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint prospects_owner_user_id_fkey foreign key (tenant_id, owner_user_id)
    references profiles (tenant_id, user_id),
  constraint prospects_expected_value_check check (expected_value is null or expected_value >= 0)
);
comment on table prospects is 'A customer in the pipeline of one owner (NULL owner: not handed over yet).';
comment on column prospects.stage is 'NEW → CONTACTED → QUALIFIED → PROPOSAL → NEGOTIATION → WON | LOST (bizos.transitions, entity prospect)';
create index prospects_owner_user_id_idx on prospects (tenant_id, owner_user_id);

create trigger prospects_stamp_timestamps before insert or update on prospects
  for each row execute function stamp_timestamps();
create trigger prospects_keep_created_by before insert or update on prospects
  for each row execute function keep_created_by();
create trigger prospects_lifecycle before insert or update on prospects
  for each row execute function bizos.lifecycle_guard('prospect', 'stage');

create table prospect_stage_history (
  tenant_id   uuid        not null,
  history_id  uuid        not null default gen_random_uuid(),
  prospect_id uuid        not null,
  from_stage  text,
  to_stage    text        not null,
  changed_by  uuid        default bizos.uid(),
  changed_at  timestamptz not null default now(),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint prospect_stage_history_pkey primary key (tenant_id, history_id),
  constraint prospect_stage_history_prospect_id_fkey foreign key (tenant_id, prospect_id)
    references prospects (tenant_id, prospect_id) on delete cascade
);
create index prospect_stage_history_prospect_id_idx on prospect_stage_history (tenant_id, prospect_id, changed_at);
create trigger prospect_stage_history_stamp_timestamps before insert or update on prospect_stage_history
  for each row execute function stamp_timestamps();

-- ---------------------------------------------------------------- leads
create table leads (
  tenant_id           uuid        not null,
  lead_id             uuid        not null default gen_random_uuid(),
  lead_no             text,
  channel             text        not null,
  status              text        not null default 'NEW',
  company_name        text        not null,
  contact_name        text,
  contact_email       text,
  contact_phone       text,
  npwp                text,
  city                text,
  notes               text,
  customer_id         uuid        not null,
  prospect_id         uuid        not null,
  sales_owner_user_id uuid,
  assigned_at         timestamptz,
  created_by          uuid        default bizos.uid(),
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  constraint leads_pkey primary key (tenant_id, lead_id),
  constraint leads_lead_no_key unique (tenant_id, lead_no),
  constraint leads_customer_id_fkey foreign key (tenant_id, customer_id) references customers (tenant_id, customer_id),
  constraint leads_prospect_id_fkey foreign key (tenant_id, prospect_id) references prospects (tenant_id, prospect_id),
  constraint leads_sales_owner_user_id_fkey foreign key (tenant_id, sales_owner_user_id) references profiles (tenant_id, user_id),
  constraint leads_channel_check check (channel in (
    'website', 'whatsapp', 'referral', 'event', 'social_media', 'email', 'phone',
    'walk_in', 'marketplace', 'partner', 'other')),
  constraint leads_company_name_check check (length(btrim(company_name)) between 1 and 200),
  constraint leads_contact_email_check check (contact_email is null or bizos.norm_email(contact_email) is not null),
  constraint leads_contact_phone_check check (contact_phone is null or bizos.norm_phone(contact_phone) is not null),
  constraint leads_sales_owner_user_id_check check ((sales_owner_user_id is null) = (assigned_at is null))
);
comment on table leads is 'Inbound interest; always linked to a customer and a prospect (crm_create_lead_bundle).';
create index leads_sales_owner_user_id_idx on leads (tenant_id, sales_owner_user_id);
create index leads_created_by_idx on leads (tenant_id, created_by);
create index leads_customer_id_idx on leads (tenant_id, customer_id);
create index leads_created_at_idx on leads (tenant_id, created_at);

create trigger leads_stamp_timestamps before insert or update on leads
  for each row execute function stamp_timestamps();
create trigger leads_keep_created_by before insert or update on leads
  for each row execute function keep_created_by();
create trigger leads_lead_no before insert or update on leads
  for each row execute function bizos.assign_business_id('lead', 'lead_no');
create trigger leads_lifecycle before insert or update on leads
  for each row execute function bizos.lifecycle_guard('lead', 'status', 'ASSIGNED=');

-- ---------------------------------------------------------------- activities
create table sales_activities (
  tenant_id        uuid        not null,
  activity_id      uuid        not null default gen_random_uuid(),
  owner_user_id    uuid        not null default bizos.uid(),
  activity_type    text        not null,
  source           text        not null default 'manual',
  customer_id      uuid,
  prospect_id      uuid,
  lead_id          uuid,
  occurred_at      timestamptz not null default now(),
  summary          text        not null,
  photo_bucket     text,
  photo_object_key text,
  gps_lat          double precision,
  gps_lng          double precision,
  created_by       uuid        default bizos.uid(),
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint sales_activities_pkey primary key (tenant_id, activity_id),
  constraint sales_activities_owner_user_id_fkey foreign key (tenant_id, owner_user_id) references profiles (tenant_id, user_id),
  constraint sales_activities_customer_id_fkey foreign key (tenant_id, customer_id) references customers (tenant_id, customer_id),
  constraint sales_activities_prospect_id_fkey foreign key (tenant_id, prospect_id) references prospects (tenant_id, prospect_id) on delete cascade,
  constraint sales_activities_lead_id_fkey foreign key (tenant_id, lead_id) references leads (tenant_id, lead_id) on delete cascade,
  constraint sales_activities_activity_type_check check (activity_type in (
    'visit', 'call', 'meeting', 'email', 'whatsapp', 'note', 'stage_change', 'rfq_created', 'lead_assigned')),
  constraint sales_activities_source_check check (source in ('manual', 'derived')),
  constraint sales_activities_summary_check check (length(btrim(summary)) between 1 and 2000),
  constraint sales_activities_gps_lat_check check (gps_lat is null or gps_lat between -90 and 90),
  constraint sales_activities_gps_lng_check check (gps_lng is null or gps_lng between -180 and 180),
  -- A visit is proven by a photo and where it was taken.
  constraint sales_activities_visit_evidence_check check (
    activity_type <> 'visit' or source = 'derived'
    or (photo_object_key is not null and gps_lat is not null and gps_lng is not null)),
  constraint sales_activities_photo_bucket_check check (photo_bucket is null or photo_bucket = 'prospect-evidence')
);
create index sales_activities_owner_idx on sales_activities (tenant_id, owner_user_id, occurred_at);
create index sales_activities_prospect_id_idx on sales_activities (tenant_id, prospect_id);
create trigger sales_activities_stamp_timestamps before insert or update on sales_activities
  for each row execute function stamp_timestamps();
create trigger sales_activities_keep_created_by before insert or update on sales_activities
  for each row execute function keep_created_by();

create table marketing_activity_events (
  tenant_id   uuid        not null,
  event_id    uuid        not null default gen_random_uuid(),
  channel     text        not null,
  event_type  text        not null,
  campaign    text,
  occurred_at timestamptz not null default now(),
  reach       integer,
  clicks      integer,
  notes       text,
  created_by  uuid        default bizos.uid(),
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint marketing_activity_events_pkey primary key (tenant_id, event_id),
  constraint marketing_activity_events_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint marketing_activity_events_event_type_check check (event_type in (
    'campaign_launch', 'post', 'ad', 'email_blast', 'webinar', 'expo', 'press', 'other')),
  constraint marketing_activity_events_channel_check check (length(btrim(channel)) between 1 and 50),
  constraint marketing_activity_events_reach_check check (reach is null or reach >= 0),
  constraint marketing_activity_events_clicks_check check (clicks is null or clicks >= 0)
);
create index marketing_activity_events_occurred_at_idx on marketing_activity_events (tenant_id, occurred_at);
create trigger marketing_activity_events_stamp_timestamps before insert or update on marketing_activity_events
  for each row execute function stamp_timestamps();
create trigger marketing_activity_events_keep_created_by before insert or update on marketing_activity_events
  for each row execute function keep_created_by();

create table marketing_spend (
  tenant_id  uuid          not null,
  spend_id   uuid          not null default gen_random_uuid(),
  channel    text          not null,
  spend_date date          not null,
  amount     numeric(14,2) not null,
  campaign   text,
  notes      text,
  created_by uuid          default bizos.uid(),
  created_at timestamptz   not null default now(),
  updated_at timestamptz   not null default now(),
  constraint marketing_spend_pkey primary key (tenant_id, spend_id),
  constraint marketing_spend_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint marketing_spend_amount_check check (amount >= 0),
  constraint marketing_spend_channel_check check (length(btrim(channel)) between 1 and 50)
);
create index marketing_spend_spend_date_idx on marketing_spend (tenant_id, spend_date);
create trigger marketing_spend_stamp_timestamps before insert or update on marketing_spend
  for each row execute function stamp_timestamps();
create trigger marketing_spend_keep_created_by before insert or update on marketing_spend
  for each row execute function keep_created_by();

-- ---------------------------------------------------------------- scope helpers
-- Does the caller's team own a prospect of this customer? (AR and customer scope.)
create function owns_customer(customer uuid) returns boolean
language sql stable
as $$
  select exists (
    select 1 from prospects p
     where p.tenant_id = (select bizos.tenant_id())
       and p.customer_id = customer
       and p.owner_user_id = any ((select my_team_ids())::uuid[]))
$$;
select pin_search_path('owns_customer(uuid)');
grant execute on function owns_customer(uuid) to bizos_authenticated;

-- Roles that see every CRM row of their tenant.
create function sees_all_crm() returns boolean
language sql stable
as $$
  select (select bizos.app_role()) in ('super_admin', 'director', 'marketing_manager')
$$;
select pin_search_path('sees_all_crm()');
grant execute on function sees_all_crm() to bizos_authenticated;

-- ---------------------------------------------------------------- RLS
alter table customers enable row level security;
alter table prospects enable row level security;
alter table prospect_stage_history enable row level security;
alter table leads enable row level security;
alter table sales_activities enable row level security;
alter table marketing_activity_events enable row level security;
alter table marketing_spend enable row level security;

create policy "crm managers, directors and finance read all customers; sales read their own"
  on customers for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm()) or (select bizos.app_role()) = 'finance'
              or created_by = (select bizos.uid()) or owns_customer(customer_id)));
create policy "super admins and lead editors update visible customers"
  on customers for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'marketing_manager') or owns_customer(customer_id))
         and (select has_permission('lead.update')))
  with check (tenant_id = (select bizos.tenant_id()));
create policy "super admins delete customers"
  on customers for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, delete on customers to bizos_authenticated;
grant update (company_name, npwp, email, phone, address, city) on customers to bizos_authenticated;

create policy "crm managers read all prospects; sales read their team's and the unassigned"
  on prospects for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm())
              or owner_user_id = any ((select my_team_ids())::uuid[])
              or (owner_user_id is null and (select bizos.app_role()) = 'sales_manager')));
create policy "owners and their managers move prospects"
  on prospects for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = 'super_admin' or owner_user_id = any ((select my_team_ids())::uuid[])))
  with check (tenant_id = (select bizos.tenant_id()));
grant select on prospects to bizos_authenticated;
grant update (stage, expected_value, notes) on prospects to bizos_authenticated;

create policy "stage history is visible with its prospect"
  on prospect_stage_history for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from prospects p
                      where p.tenant_id = prospect_stage_history.tenant_id
                        and p.prospect_id = prospect_stage_history.prospect_id));
grant select on prospect_stage_history to bizos_authenticated;

create policy "crm managers read all leads; sales their team's, their own and the unassigned pool"
  on leads for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm())
              or sales_owner_user_id = any ((select my_team_ids())::uuid[])
              or created_by = any ((select my_team_ids())::uuid[])
              or (sales_owner_user_id is null and (select bizos.app_role()) = 'sales_manager')));
create policy "lead creators insert leads of their tenant"
  on leads for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('lead.create')));
create policy "lead editors update the leads in their scope"
  on leads for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (select has_permission('lead.update'))
         and ((select bizos.app_role()) in ('super_admin', 'marketing_manager')
              or sales_owner_user_id = any ((select my_team_ids())::uuid[])
              or created_by = any ((select my_team_ids())::uuid[])))
  with check (tenant_id = (select bizos.tenant_id()));
create policy "super admins delete leads"
  on leads for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select bizos.app_role()) = 'super_admin');
grant select, insert, delete on leads to bizos_authenticated;
grant update (status, channel, contact_name, contact_email, contact_phone, city, notes) on leads to bizos_authenticated;

create policy "managers and directors read their team's activities; sales their own"
  on sales_activities for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) in ('super_admin', 'director', 'marketing_manager')
              or owner_user_id = any ((select my_team_ids())::uuid[])));
create policy "users log their own activities"
  on sales_activities for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and owner_user_id = (select bizos.uid())
              and source = 'manual' and (select has_permission('activity.create')));
create policy "users edit their own manual activities"
  on sales_activities for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and owner_user_id = (select bizos.uid()) and source = 'manual')
  with check (tenant_id = (select bizos.tenant_id()) and owner_user_id = (select bizos.uid()) and source = 'manual');
create policy "users delete their own manual activities"
  on sales_activities for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and owner_user_id = (select bizos.uid()) and source = 'manual');
grant select, insert, delete on sales_activities to bizos_authenticated;
grant update (activity_type, occurred_at, summary, photo_bucket, photo_object_key, gps_lat, gps_lng, customer_id, prospect_id, lead_id)
  on sales_activities to bizos_authenticated;

create policy "marketing, managers and directors read marketing events"
  on marketing_activity_events for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (select bizos.app_role()) in ('super_admin', 'director', 'marketing_manager', 'sales_manager'));
create policy "marketing writes marketing events"
  on marketing_activity_events for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')));
create policy "marketing edits marketing events"
  on marketing_activity_events for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')))
  with check (tenant_id = (select bizos.tenant_id()));
create policy "marketing deletes marketing events"
  on marketing_activity_events for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')));
grant select, insert, update, delete on marketing_activity_events to bizos_authenticated;

create policy "marketing, managers, finance and directors read spend"
  on marketing_spend for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (select bizos.app_role()) in ('super_admin', 'director', 'marketing_manager', 'sales_manager', 'finance'));
create policy "marketing records spend"
  on marketing_spend for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')));
create policy "marketing corrects spend"
  on marketing_spend for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')))
  with check (tenant_id = (select bizos.tenant_id()));
create policy "marketing deletes spend"
  on marketing_spend for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('marketing.write')));
grant select, insert, update, delete on marketing_spend to bizos_authenticated;

-- ---------------------------------------------------------------- derived activity
-- A stage change writes the stage history and a sales activity: nobody logs
-- it twice. Runs as the table owner (users cannot write history directly).
create function record_stage_change() returns trigger
language plpgsql security definer
as $$
begin
  insert into prospect_stage_history (tenant_id, prospect_id, from_stage, to_stage)
  values (new.tenant_id, new.prospect_id, case when tg_op = 'UPDATE' then old.stage end, new.stage);
  if tg_op = 'UPDATE' and new.owner_user_id is not null then
    insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, summary)
    values (new.tenant_id, new.owner_user_id, 'stage_change', 'derived', new.customer_id, new.prospect_id,
            format('Stage %s → %s', old.stage, new.stage));
  end if;
  return null;
end
$$;
select pin_search_path('record_stage_change()');
revoke execute on function record_stage_change() from public;

create trigger prospects_record_stage_change
  after insert or update of stage on prospects
  for each row when (pg_trigger_depth() < 2)
  execute function record_stage_change();

-- ---------------------------------------------------------------- dedup RPCs
-- Finds the customer for the given identifiers or creates it. Exact
-- matches on normalised keys, in order: NPWP (unique: concurrent creates
-- meet in ON CONFLICT), e-mail, phone, and the normalised company name when
-- no NPWP is given (these take a transaction lock on the key, so concurrent
-- creates wait for each other). A match whose NPWP differs is a different
-- company: it is listed as a candidate, never merged. Similar names (pg_trgm)
-- are listed for a human as candidates.
-- Returns {customer_id, created, matched_on, candidates: [{customer_id, company_name, similarity, reason}]}.
create function find_or_create_customer(
  company_name text,
  npwp text default null,
  email text default null,
  phone text default null,
  city text default null
) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  n_npwp text := bizos.norm_npwp(npwp);
  n_email text := bizos.norm_email(email);
  n_phone text := bizos.norm_phone(phone);
  n_company text := bizos.norm_company(company_name);
  v_id uuid;
  v_matched text;
  v_created boolean := false;
  v_candidates jsonb := '[]';
  r record;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not (has_permission('lead.create') or has_permission('lead.update')) then
    raise exception using errcode = '42501', message = 'your role may not create customers';
  end if;
  if n_company is null or length(company_name) > 200 then
    raise exception using errcode = 'P0001', column = 'company_name',
      message = 'company_name: required, up to 200 characters, with letters or digits';
  end if;
  if nullif(btrim(npwp), '') is not null and n_npwp is null then
    raise exception using errcode = 'P0001', column = 'npwp',
      message = format('npwp: %L is not a valid NPWP (15 digits, or 16 digits for the new format)', npwp);
  end if;
  if nullif(btrim(email), '') is not null and n_email is null then
    raise exception using errcode = 'P0001', column = 'email', message = format('email: %L is not a valid e-mail address', email);
  end if;
  if nullif(btrim(phone), '') is not null and n_phone is null then
    raise exception using errcode = 'P0001', column = 'phone', message = format('phone: %L is not a valid Indonesian phone number', phone);
  end if;

  -- Serialise concurrent creates of the same weak keys (sorted: no deadlock).
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/' || k, 42))
     from unnest(array_remove(array[
            'email:' || n_email, 'phone:' || n_phone,
            case when n_npwp is null then 'company:' || n_company end], null)) k
    order by k;

  for attempt in 1..2 loop
    if n_npwp is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.npwp_norm = n_npwp;
      v_matched := 'npwp';
    end if;
    if v_id is null and n_email is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.email_norm = n_email
         and (n_npwp is null or c.npwp_norm is null)
       order by c.created_at limit 1;
      v_matched := 'email';
    end if;
    if v_id is null and n_phone is not null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.phone_norm = n_phone
         and (n_npwp is null or c.npwp_norm is null)
       order by c.created_at limit 1;
      v_matched := 'phone';
    end if;
    if v_id is null and n_npwp is null then
      select c.customer_id into v_id from customers c
       where c.tenant_id = v_tenant and c.company_norm = n_company
       order by c.created_at limit 1;
      v_matched := 'company';
    end if;
    exit when v_id is not null;

    insert into customers (tenant_id, company_name, npwp, email, phone, city)
    values (v_tenant, btrim(company_name), nullif(btrim(npwp), ''), nullif(btrim(email), ''),
            nullif(btrim(phone), ''), nullif(btrim(city), ''))
    on conflict (tenant_id, npwp_norm) do nothing
    returning customers.customer_id into v_id;
    if v_id is not null then
      v_created := true;
      v_matched := null;
      exit;
    end if;
    -- Lost a race on the NPWP: the other transaction committed; look again.
  end loop;

  -- Fill identifiers the matched customer lacks (never overwrite).
  if not v_created then
    update customers c
       set npwp = coalesce(c.npwp, nullif(btrim(find_or_create_customer.npwp), '')),
           email = coalesce(c.email, nullif(btrim(find_or_create_customer.email), '')),
           phone = coalesce(c.phone, nullif(btrim(find_or_create_customer.phone), '')),
           city = coalesce(c.city, nullif(btrim(find_or_create_customer.city), ''))
     where c.tenant_id = v_tenant and c.customer_id = v_id
       and ((c.npwp is null and n_npwp is not null) or (c.email is null and n_email is not null)
            or (c.phone is null and n_phone is not null) or (c.city is null and nullif(btrim(find_or_create_customer.city), '') is not null))
       and not exists (select 1 from customers o where o.tenant_id = v_tenant and o.npwp_norm = n_npwp and o.customer_id <> v_id);
  end if;

  -- Customers sharing a contact but with another NPWP: another legal entity
  -- a human should look at (indexed equality, cheap).
  for r in
    select c.customer_id, c.company_name
      from customers c
     where n_npwp is not null
       and c.tenant_id = v_tenant and c.customer_id <> v_id
       and c.npwp_norm is not null and c.npwp_norm <> n_npwp
       and (c.email_norm = n_email or c.phone_norm = n_phone)
     limit 5
  loop
    v_candidates := v_candidates || jsonb_build_object(
      'customer_id', r.customer_id, 'company_name', r.company_name, 'reason', 'same contact, different NPWP');
  end loop;

  -- Similar names, only for a customer just created: an exact match needs
  -- no review, and on a million names the trigram search is the expensive
  -- part of this function. The threshold (pg_trgm.similarity_threshold,
  -- set on this function below) is stricter than pg_trgm's 0.3, which
  -- returns thousands of weak look-alikes for common words.
  if v_created then
    for r in
      select c.customer_id, c.company_name,
             round(extensions.similarity(c.company_norm, n_company)::numeric, 3) as sim
        from customers c
       where c.tenant_id = v_tenant and c.customer_id <> v_id
         and c.company_norm operator(extensions.%) n_company
       order by sim desc
       limit 5
    loop
      v_candidates := v_candidates || jsonb_build_object(
        'customer_id', r.customer_id, 'company_name', r.company_name, 'similarity', r.sim,
        'reason', 'similar name');
    end loop;
  end if;

  return jsonb_build_object('customer_id', v_id, 'created', v_created, 'matched_on', v_matched,
                            'candidates', v_candidates);
end
$$;
select pin_search_path('find_or_create_customer(text, text, text, text, text)');
alter function find_or_create_customer(text, text, text, text, text) set pg_trgm.similarity_threshold = 0.5;
revoke execute on function find_or_create_customer(text, text, text, text, text) from public;
grant execute on function find_or_create_customer(text, text, text, text, text) to bizos_authenticated;

-- The prospect of (customer, owner); owner NULL = not handed over yet.
create function find_or_create_prospect(customer uuid, owner uuid default null) returns uuid
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if not (has_permission('lead.create') or has_permission('lead.assign')) then
    raise exception using errcode = '42501', message = 'your role may not create prospects';
  end if;
  if customer is null or not exists (select 1 from customers c where c.tenant_id = v_tenant and c.customer_id = customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: no such customer';
  end if;
  if owner is not null and not exists (
       select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = owner and p.active
          and p.app_role in ('salesperson', 'sales_manager')) then
    raise exception using errcode = 'P0001', column = 'owner_user_id',
      message = 'owner_user_id: not an active salesperson or sales manager of this tenant';
  end if;
  insert into prospects (tenant_id, customer_id, owner_user_id)
  values (v_tenant, customer, owner)
  on conflict (tenant_id, customer_id, owner_user_id) do nothing
  returning prospect_id into v_id;
  if v_id is null then
    select p.prospect_id into v_id from prospects p
     where p.tenant_id = v_tenant and p.customer_id = customer and p.owner_user_id is not distinct from owner;
  end if;
  return v_id;
end
$$;
select pin_search_path('find_or_create_prospect(uuid, uuid)');
revoke execute on function find_or_create_prospect(uuid, uuid) from public;
grant execute on function find_or_create_prospect(uuid, uuid) to bizos_authenticated;

-- Hands a lead to a salesperson (manager roles only). The lead's unassigned
-- prospect becomes the owner's, or the lead moves to the prospect the owner
-- already has for this customer: one pipeline entry per customer and owner.
create function crm_assign_lead(lead_id uuid, salesperson uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_lead leads%rowtype;
  v_prospect prospects%rowtype;
  v_target uuid;
begin
  perform require_permission('lead.assign');
  if lead_id is null then
    raise exception using errcode = 'P0001', column = 'lead_id', message = 'lead_id: required';
  end if;
  if salesperson is null then
    raise exception using errcode = 'P0001', column = 'sales_owner_user_id', message = 'sales_owner_user_id: required';
  end if;
  select l.* into v_lead from leads l where l.tenant_id = v_tenant and l.lead_id = crm_assign_lead.lead_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'lead_id', message = 'lead_id: no such lead';
  end if;
  if bizos.app_role() = 'sales_manager'
     and not (v_lead.sales_owner_user_id is null or v_lead.sales_owner_user_id = any (my_team_ids())) then
    raise exception using errcode = '42501', message = 'this lead belongs to another team';
  end if;
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = salesperson and p.active
                    and p.app_role in ('salesperson', 'sales_manager')) then
    raise exception using errcode = 'P0001', column = 'sales_owner_user_id',
      message = 'sales_owner_user_id: not an active salesperson or sales manager of this tenant';
  end if;
  if bizos.app_role() = 'sales_manager' and not (salesperson = any (my_team_ids())) then
    raise exception using errcode = '42501', column = 'sales_owner_user_id',
      message = 'sales managers assign leads within their team';
  end if;

  select p.* into v_prospect from prospects p where p.tenant_id = v_tenant and p.prospect_id = v_lead.prospect_id for update;
  select p.prospect_id into v_target from prospects p
   where p.tenant_id = v_tenant and p.customer_id = v_lead.customer_id and p.owner_user_id = salesperson;
  if v_target is null and v_prospect.owner_user_id is null then
    update prospects p set owner_user_id = salesperson
     where p.tenant_id = v_tenant and p.prospect_id = v_prospect.prospect_id;
    v_target := v_prospect.prospect_id;
  elsif v_target is null then
    v_target := find_or_create_prospect(v_lead.customer_id, salesperson);
  end if;

  update leads l
     set sales_owner_user_id = salesperson,
         assigned_at = now(),
         prospect_id = v_target,
         status = case when l.status = 'NEW' then 'ASSIGNED' else l.status end
   where l.tenant_id = v_tenant and l.lead_id = crm_assign_lead.lead_id;

  -- An unowned prospect left without leads is dropped, so data does not split.
  delete from prospects p
   where p.tenant_id = v_tenant and p.prospect_id = v_prospect.prospect_id and p.prospect_id <> v_target
     and p.owner_user_id is null
     and not exists (select 1 from leads l where l.tenant_id = v_tenant and l.prospect_id = p.prospect_id);

  insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id, summary)
  values (v_tenant, salesperson, 'lead_assigned', 'derived', v_lead.customer_id, v_target, v_lead.lead_id,
          format('Lead %s assigned', v_lead.lead_no));

  return jsonb_build_object('lead_id', v_lead.lead_id, 'sales_owner_user_id', salesperson, 'prospect_id', v_target);
end
$$;
select pin_search_path('crm_assign_lead(uuid, uuid)');
revoke execute on function crm_assign_lead(uuid, uuid) from public;
grant execute on function crm_assign_lead(uuid, uuid) to bizos_authenticated;

-- Moves a prospect to another stage; the lifecycle guard checks the
-- transition, the trigger writes history and the activity.
create function prospect_change_stage(prospect_id uuid, to_stage text, note text default null) returns jsonb
language plpgsql
as $$
declare
  v_from text;
begin
  perform require_permission('prospect.stage');
  if prospect_id is null then
    raise exception using errcode = 'P0001', column = 'prospect_id', message = 'prospect_id: required';
  end if;
  if nullif(btrim(to_stage), '') is null then
    raise exception using errcode = 'P0001', column = 'stage', message = 'stage: required';
  end if;
  select p.stage into v_from from prospects p
   where p.tenant_id = bizos.tenant_id() and p.prospect_id = prospect_change_stage.prospect_id
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'prospect_id', message = 'prospect_id: no such prospect';
  end if;
  update prospects p
     set stage = upper(btrim(to_stage)),
         notes = coalesce(nullif(btrim(note), ''), p.notes)
   where p.tenant_id = bizos.tenant_id() and p.prospect_id = prospect_change_stage.prospect_id;
  if not found then
    raise exception using errcode = '42501', message = 'you may not move this prospect';
  end if;
  return jsonb_build_object('prospect_id', prospect_id, 'from', v_from, 'to', upper(btrim(to_stage)));
end
$$;
grant execute on function prospect_change_stage(uuid, text, text) to bizos_authenticated;

select bizos.enable_audit('customers');
select bizos.enable_audit('prospects');
select bizos.enable_audit('prospect_stage_history');
select bizos.enable_audit('leads');
select bizos.enable_audit('sales_activities');
select bizos.enable_audit('marketing_activity_events');
select bizos.enable_audit('marketing_spend');
