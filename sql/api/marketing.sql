-- Marketing: spend and events entered over HTTP and imported (modules
-- marketing_spend and marketing_events), the data of the spend, CPL and
-- campaigns KPIs (kpi.sql).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- An instant from text: RFC 3339 with its offset as it says, a date and
-- time without one (YYYY-MM-DD[ T]HH:MM[:SS]) or a date alone (its
-- midnight) in the tenant's time zone `tz`; NULL when it is none of them
-- (no exception: set-based imports use it).
create or replace function marketing_local_instant(s text, tz text) returns timestamptz
language plpgsql stable
as $$
begin
  if s ~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$' then
    return s::timestamptz;
  elsif s ~ '^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2})?)?$' then
    return replace(replace(s, 't', ' '), 'T', ' ')::timestamp at time zone tz;
  end if;
  return null;
exception when datetime_field_overflow or invalid_datetime_format then
  return null;
end
$$;
select pin_search_path('marketing_local_instant(text, text)');
grant execute on function marketing_local_instant(text, text) to bizos_authenticated;
comment on function marketing_local_instant(text, text) is
  'An instant from RFC 3339 text with its offset, or from a local date (and time) in time zone tz; NULL when it is neither.';

-- The rupiah of a spend row: the amount at the fx_rates rate in force on
-- its spend date (IDR needs none). No rate: the write is refused naming
-- the currency, never a spend counted as zero or in the wrong unit.
-- Security definer: request roles do not read fx_rates.
create or replace function marketing_spend_amount_idr() returns trigger
language plpgsql security definer
as $$
declare
  v_rate numeric;
begin
  if new.currency = 'IDR' then
    new.amount_idr := new.amount;
    return new;
  end if;
  select f.idr_per_unit into v_rate from fx_rates f
   where f.currency = new.currency and f.effective_from <= new.spend_date
   order by f.effective_from desc limit 1;
  if v_rate is null then
    raise exception using errcode = 'P0001', column = 'currency',
      message = format('currency: no exchange rate of %s to IDR on %s (fx_rates)', new.currency, new.spend_date);
  end if;
  new.amount_idr := round(new.amount * v_rate, 2);
  return new;
end
$$;
select pin_search_path('marketing_spend_amount_idr()');
revoke execute on function marketing_spend_amount_idr() from public;
comment on function marketing_spend_amount_idr() is
  'Trigger of marketing_spend: amount_idr is the amount at the fx_rates rate in force on spend_date; no rate, no write.';
create or replace trigger marketing_spend_amount_idr before insert or update on marketing_spend
  for each row execute function marketing_spend_amount_idr();

-- The problem with a spend (the checks of marketing_spend_create and of
-- the import, one place), or NULL: the field first, as '<field>: ...'.
create or replace function marketing_spend_problem(tenant uuid, channel text, spend_date date, amount numeric,
                                                   currency text, campaign text, notes text) returns text
language plpgsql stable
as $$
begin
  return coalesce(
    'channel: ' || case when channel is null then 'is required'
                        else vocabulary_problem('lead_channels', channel) end,
    'spend_date: ' || case when spend_date is null then 'is required'
                           when spend_date > tenant_today(tenant)
                           then format('%s is after today (%s in the tenant''s time zone); spend is entered once paid',
                                       spend_date, tenant_today(tenant)) end,
    'amount: ' || case when amount is null then 'is required' when amount <= 0 then 'must be greater than 0' end,
    'currency: ' || case when currency !~ '^[A-Z]{3}$' then 'must be a three-letter currency code such as IDR or USD'
                         when currency <> 'IDR' and spend_date is not null
                              and not exists (select 1 from fx_rates f
                                               where f.currency = marketing_spend_problem.currency
                                                 and f.effective_from <= spend_date)
                         then format('no exchange rate of %s to IDR on %s (fx_rates)', currency, spend_date) end,
    'campaign: ' || case when length(campaign) > 200 then 'at most 200 characters' end,
    'notes: ' || case when length(notes) > 2000 then 'at most 2000 characters' end);
end
$$;
select pin_search_path('marketing_spend_problem(uuid, text, date, numeric, text, text, text)');
revoke execute on function marketing_spend_problem(uuid, text, date, numeric, text, text, text) from public;
grant execute on function marketing_spend_problem(uuid, text, date, numeric, text, text, text) to bizos_authenticated;
comment on function marketing_spend_problem(uuid, text, date, numeric, text, text, text) is
  'The first problem of a spend as ''<field>: ...'' (channel of lead_channels, a spend date up to the tenant''s today, amount > 0, a currency with a rate), or NULL.';

-- marketing_spend_create({channel, spend_date, amount, currency?,
--   campaign?, notes?}) -> the spend row. POST /api/marketing/spend.
-- The channel is a lead channel (so that the CPL puts spend and leads of a
-- channel side by side), the date the day it was paid in the tenant's time
-- zone (not after the tenant's today), the amount greater than 0, the
-- currency IDR or one with an fx_rates rate on that day.
create or replace function marketing_spend_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_channel text;
  v_date date;
  v_amount numeric;
  v_currency text;
  v_campaign text;
  v_notes text;
  v_problem text;
  r marketing_spend;
begin
  perform require_permission('marketing.write');
  perform payload_check(payload, '{"channel": "text", "spend_date": "date", "amount": "number", "currency": "text", "campaign": "text", "notes": "text"}');
  v_channel := lower(payload_text(payload, 'channel', true, 30));
  v_date := payload_date(payload, 'spend_date', true);
  v_amount := payload_numeric(payload, 'amount', true, 2);
  v_currency := upper(coalesce(payload_text(payload, 'currency', false, 3), 'IDR'));
  v_campaign := payload_text(payload, 'campaign', false, 200);
  v_notes := payload_text(payload, 'notes', false, 2000);
  v_problem := marketing_spend_problem(v_tenant, v_channel, v_date, v_amount, v_currency, v_campaign, v_notes);
  if v_problem is not null then
    perform raise_field(split_part(v_problem, ': ', 1), substr(v_problem, length(split_part(v_problem, ': ', 1)) + 3));
  end if;
  insert into marketing_spend (tenant_id, channel, spend_date, amount, currency, campaign, notes)
  values (v_tenant, v_channel, v_date, v_amount, v_currency, v_campaign, v_notes)
  returning * into r;
  return to_jsonb(r);
end
$$;
grant execute on function marketing_spend_create(jsonb) to bizos_authenticated;
comment on function marketing_spend_create(jsonb) is
  'Records marketing spend (marketing.write): a lead channel, the day paid (tenant time zone, not after today), amount > 0, IDR or a currency with an fx_rates rate.';

-- The problem with a marketing event, or NULL (as marketing_spend_problem).
create or replace function marketing_event_problem(channel text, event_type text, occurred_at timestamptz,
                                                   occurred_text text, campaign text, reach text, clicks text,
                                                   notes text) returns text
language plpgsql stable
as $$
begin
  return coalesce(
    'channel: ' || case when channel is null then 'is required'
                        else vocabulary_problem('lead_channels', channel) end,
    'event_type: ' || case when event_type is null then 'is required'
                           when event_type not in ('campaign_launch', 'post', 'ad', 'email_blast', 'webinar', 'expo', 'press', 'other')
                           then 'must be one of campaign_launch, post, ad, email_blast, webinar, expo, press, other' end,
    'occurred_at: ' || case when occurred_text is null then 'is required'
                            when occurred_at is null
                            then 'must be a date (YYYY-MM-DD) or a date and time, with an offset or in the tenant''s time zone' end,
    'campaign: ' || case when length(campaign) > 200 then 'at most 200 characters' end,
    'reach: ' || case when reach is not null and reach !~ '^\d{1,9}$' then 'must be a whole number, 0 or more' end,
    'clicks: ' || case when clicks is not null and clicks !~ '^\d{1,9}$' then 'must be a whole number, 0 or more' end,
    'notes: ' || case when length(notes) > 2000 then 'at most 2000 characters' end);
end
$$;
select pin_search_path('marketing_event_problem(text, text, timestamptz, text, text, text, text, text)');
revoke execute on function marketing_event_problem(text, text, timestamptz, text, text, text, text, text) from public;
grant execute on function marketing_event_problem(text, text, timestamptz, text, text, text, text, text) to bizos_authenticated;
comment on function marketing_event_problem(text, text, timestamptz, text, text, text, text, text) is
  'The first problem of a marketing event as ''<field>: ...'', or NULL.';

-- marketing_event_create({channel, event_type, occurred_at, campaign?,
--   reach?, clicks?, notes?}) -> the event row. POST /api/marketing/events.
-- occurred_at: RFC 3339 with its offset, or a local date (and time) read
-- in the tenant's time zone. event_type as the table's check
-- (campaign_launch counts in the campaigns-launched KPI).
create or replace function marketing_event_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_tz text;
  v_text text;
  v_at timestamptz;
  v_problem text;
  r marketing_activity_events;
begin
  perform require_permission('marketing.write');
  perform payload_check(payload, '{"channel": "text", "event_type": "text", "occurred_at": "text", "campaign": "text", "reach": "integer", "clicks": "integer", "notes": "text"}');
  select t.time_zone into v_tz from tenants t where t.tenant_id = v_tenant;
  v_text := payload_text(payload, 'occurred_at', true, 40);
  v_at := marketing_local_instant(v_text, v_tz);
  r.channel := lower(payload_text(payload, 'channel', true, 30));
  r.event_type := lower(payload_text(payload, 'event_type', true, 30));
  r.campaign := payload_text(payload, 'campaign', false, 200);
  r.notes := payload_text(payload, 'notes', false, 2000);
  v_problem := marketing_event_problem(r.channel, r.event_type, v_at, v_text, r.campaign,
                                       payload ->> 'reach', payload ->> 'clicks', r.notes);
  if v_problem is not null then
    perform raise_field(split_part(v_problem, ': ', 1), substr(v_problem, length(split_part(v_problem, ': ', 1)) + 3));
  end if;
  r.reach := payload_integer(payload, 'reach');
  r.clicks := payload_integer(payload, 'clicks');
  insert into marketing_activity_events (tenant_id, channel, event_type, campaign, occurred_at, reach, clicks, notes)
  values (v_tenant, r.channel, r.event_type, r.campaign, v_at, r.reach, r.clicks, r.notes)
  returning * into r;
  return to_jsonb(r);
end
$$;
grant execute on function marketing_event_create(jsonb) to bizos_authenticated;
comment on function marketing_event_create(jsonb) is
  'Records a marketing event (marketing.write): a lead channel, its type, when (with an offset or in the tenant''s time zone), reach and clicks.';

-- Imports (process_import, imports.sql): each row checked by the same
-- problem functions, the field named; valid rows set the row of their
-- natural key (the last row of a batch for a key wins) or add one. The
-- natural keys have no unique constraint (entries over HTTP may repeat
-- them), so concurrent imports of a module of one tenant take turns.
create or replace function import_validate_marketing_spend(v_tenant uuid) returns void
language plpgsql
as $$
begin
  update pg_temp.import_batch b
     set err_field = split_part(p.msg, ': ', 1), err_msg = p.msg
    from (select x.row_no,
                 coalesce('amount: ' || import_problem_number(import_cell(x.d, 'amount'), true, 2),
                          'spend_date: ' || import_problem_date(import_cell(x.d, 'spend_date'), true),
                          marketing_spend_problem(v_tenant, lower(import_cell(x.d, 'channel')),
                                                  import_date(import_cell(x.d, 'spend_date')),
                                                  case when import_problem_number(import_cell(x.d, 'amount'), true, 2) is null
                                                       then import_cell(x.d, 'amount')::numeric end,
                                                  upper(coalesce(import_cell(x.d, 'currency'), 'IDR')),
                                                  import_cell(x.d, 'campaign'), import_cell(x.d, 'notes'))) as msg
            from pg_temp.import_batch x
           where x.err_field is null) p
   where b.row_no = p.row_no and p.msg is not null;
end
$$;
select pin_search_path('import_validate_marketing_spend(uuid)');
revoke execute on function import_validate_marketing_spend(uuid) from public;

create or replace function import_apply_marketing_spend(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  r record;
  v_id uuid;
begin
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/import:marketing_spend', 42));
  for r in
    select distinct on (k.channel, k.spend_date, k.campaign, k.currency) k.*
      from (select b.row_no, lower(import_cell(b.d, 'channel')) as channel,
                   import_date(import_cell(b.d, 'spend_date')) as spend_date,
                   import_cell(b.d, 'amount')::numeric as amount,
                   upper(coalesce(import_cell(b.d, 'currency'), 'IDR')) as currency,
                   import_cell(b.d, 'campaign') as campaign, import_cell(b.d, 'notes') as notes
              from pg_temp.import_batch b
             where b.err_field is null and (only_row is null or b.row_no = only_row)) k
     order by k.channel, k.spend_date, k.campaign, k.currency, k.row_no desc
  loop
    select s.spend_id into v_id from marketing_spend s
     where s.tenant_id = v_tenant and s.channel = r.channel and s.spend_date = r.spend_date
       and s.campaign is not distinct from r.campaign and s.currency = r.currency
     order by s.created_at, s.spend_id limit 1;
    if v_id is null then
      insert into marketing_spend (tenant_id, channel, spend_date, amount, currency, campaign, notes)
      values (v_tenant, r.channel, r.spend_date, r.amount, r.currency, r.campaign, r.notes)
      returning spend_id into v_id;
    else
      update marketing_spend s set amount = r.amount, notes = r.notes
       where s.tenant_id = v_tenant and s.spend_id = v_id
         and (s.amount, s.notes) is distinct from (r.amount, r.notes);
    end if;
    -- Every row of the key names the row it set.
    update pg_temp.import_batch b set target_id = v_id
     where b.err_field is null and (only_row is null or b.row_no = only_row)
       and lower(import_cell(b.d, 'channel')) = r.channel
       and import_date(import_cell(b.d, 'spend_date')) = r.spend_date
       and import_cell(b.d, 'campaign') is not distinct from r.campaign
       and upper(coalesce(import_cell(b.d, 'currency'), 'IDR')) = r.currency;
    v_id := null;
  end loop;
end
$$;
select pin_search_path('import_apply_marketing_spend(uuid, uuid, integer)');
revoke execute on function import_apply_marketing_spend(uuid, uuid, integer) from public;

create or replace function import_validate_marketing_events(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_tz text := (select t.time_zone from tenants t where t.tenant_id = v_tenant);
begin
  update pg_temp.import_batch b
     set err_field = split_part(p.msg, ': ', 1), err_msg = p.msg
    from (select x.row_no,
                 marketing_event_problem(lower(import_cell(x.d, 'channel')), lower(import_cell(x.d, 'event_type')),
                                         marketing_local_instant(import_cell(x.d, 'occurred_at'), v_tz),
                                         import_cell(x.d, 'occurred_at'), import_cell(x.d, 'campaign'),
                                         import_cell(x.d, 'reach'), import_cell(x.d, 'clicks'),
                                         import_cell(x.d, 'notes')) as msg
            from pg_temp.import_batch x
           where x.err_field is null) p
   where b.row_no = p.row_no and p.msg is not null;
end
$$;
select pin_search_path('import_validate_marketing_events(uuid)');
revoke execute on function import_validate_marketing_events(uuid) from public;

create or replace function import_apply_marketing_events(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_tz text := (select t.time_zone from tenants t where t.tenant_id = v_tenant);
  r record;
  v_id uuid;
begin
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/import:marketing_events', 42));
  for r in
    select distinct on (k.channel, k.event_type, k.campaign, k.occurred_at) k.*
      from (select b.row_no, lower(import_cell(b.d, 'channel')) as channel,
                   lower(import_cell(b.d, 'event_type')) as event_type,
                   marketing_local_instant(import_cell(b.d, 'occurred_at'), v_tz) as occurred_at,
                   import_cell(b.d, 'campaign') as campaign, import_cell(b.d, 'reach')::integer as reach,
                   import_cell(b.d, 'clicks')::integer as clicks, import_cell(b.d, 'notes') as notes
              from pg_temp.import_batch b
             where b.err_field is null and (only_row is null or b.row_no = only_row)) k
     order by k.channel, k.event_type, k.campaign, k.occurred_at, k.row_no desc
  loop
    select e.event_id into v_id from marketing_activity_events e
     where e.tenant_id = v_tenant and e.channel = r.channel and e.event_type = r.event_type
       and e.campaign is not distinct from r.campaign and e.occurred_at = r.occurred_at
     order by e.created_at, e.event_id limit 1;
    if v_id is null then
      insert into marketing_activity_events (tenant_id, channel, event_type, campaign, occurred_at, reach, clicks, notes)
      values (v_tenant, r.channel, r.event_type, r.campaign, r.occurred_at, r.reach, r.clicks, r.notes)
      returning event_id into v_id;
    else
      update marketing_activity_events e set reach = r.reach, clicks = r.clicks, notes = r.notes
       where e.tenant_id = v_tenant and e.event_id = v_id
         and (e.reach, e.clicks, e.notes) is distinct from (r.reach, r.clicks, r.notes);
    end if;
    update pg_temp.import_batch b set target_id = v_id
     where b.err_field is null and (only_row is null or b.row_no = only_row)
       and lower(import_cell(b.d, 'channel')) = r.channel
       and lower(import_cell(b.d, 'event_type')) = r.event_type
       and import_cell(b.d, 'campaign') is not distinct from r.campaign
       and marketing_local_instant(import_cell(b.d, 'occurred_at'), v_tz) = r.occurred_at;
    v_id := null;
  end loop;
end
$$;
select pin_search_path('import_apply_marketing_events(uuid, uuid, integer)');
revoke execute on function import_apply_marketing_events(uuid, uuid, integer) from public;
