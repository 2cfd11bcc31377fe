-- Issue 11 §3 and §4: dedup never opens a window onto customers the caller
-- may not read, write responses show only what the caller may read, and one
-- payload contract for every RPC.
--
-- 1. One rule for "may the caller read this customer": customer_readable(),
--    called by the customers select policy and by every function that runs
--    as the owner and must answer the same question (dedup, the lead bundle,
--    ticket snapshots, lead assignment, imports).
-- 2. Dedup (find_or_create_customer, the lead bundle, lead imports) keeps one
--    customer per company, but a match the caller may not read is handed
--    over: the lead goes to the customer's current owner (or stays
--    unassigned for managers to route), the caller gets no prospect (so no AR
--    visibility), the customer is not enriched from the caller's input, and
--    the caller learns nothing of it but "handed over".
-- 3. ticket_update returns the caller's row of v_tickets (masked for ops).
-- 4. payload_check(payload, spec): every RPC taking a JSON payload declares
--    its fields with their JSON types once; unknown keys and wrong types are
--    refused before anything else, naming the field (nested: rfq.origin).

-- ---------------------------------------------------------------- payload contract
-- spec: {"field": "text" | "uuid" | "date" | "number" | "integer" | "boolean"
--        | "text[]" | "uuid[]" | {nested spec}}. JSON null is always allowed
-- here (required fields are checked by the RPC). Numbers may come as JSON
-- numbers or numeric strings (payload_numeric checks the digits); text,
-- uuid and date as JSON strings (payload_uuid/payload_date check the form).
create function payload_check(payload jsonb, spec jsonb, prefix text default '') returns void
language plpgsql
as $$
declare
  k text;
  v jsonb;
  t jsonb;
  f text;
  want text;
  got text;
  ok boolean;
  what text;
  bad text;
begin
  if payload is null or jsonb_typeof(payload) <> 'object' then
    perform raise_field(coalesce(nullif(rtrim(prefix, '.'), ''), 'payload'), 'must be a JSON object');
  end if;
  for k, v in select e.key, e.value from jsonb_each(payload) e order by e.key loop
    f := prefix || k;
    t := spec -> k;
    if t is null then
      raise exception using errcode = 'P0001', column = f,
        message = format('%s: unknown field (allowed: %s)', f,
                         (select string_agg(prefix || s, ', ' order by s) from jsonb_object_keys(spec) s));
    end if;
    continue when jsonb_typeof(v) = 'null';
    got := jsonb_typeof(v);
    if jsonb_typeof(t) = 'object' then
      if got <> 'object' then
        perform raise_field(f, 'must be an object');
      end if;
      perform payload_check(v, t, f || '.');
      continue;
    end if;
    want := t #>> '{}';
    case want
      when 'text', 'uuid', 'date' then ok := got = 'string'; what := 'must be a string';
      when 'number', 'integer' then ok := got in ('number', 'string'); what := 'must be a number';
      when 'boolean' then ok := got = 'boolean'; what := 'must be true or false';
      when 'text[]', 'uuid[]' then
        ok := got = 'array';
        what := 'must be a list of strings';
        if ok then
          -- The first element that is not a string, by its index (evidence[0]).
          select format('%s[%s]', f, x.i - 1) into bad
            from jsonb_array_elements(v) with ordinality as x(e, i)
           where jsonb_typeof(x.e) <> 'string'
           order by x.i limit 1;
          if bad is not null then
            perform raise_field(bad, 'must be a string');
          end if;
        end if;
      else
        raise exception using errcode = 'XX000', message = format('payload_check: unknown type %s for %s', want, f);
    end case;
    if not ok then
      perform raise_field(f, what);
    end if;
  end loop;
end
$$;
grant execute on function payload_check(jsonb, jsonb, text) to bizos_authenticated;

-- ---------------------------------------------------------------- who reads a customer
-- The caller's customer scope, once per statement: 'all' for CRM managers,
-- directors and finance, else 'own' (the customers they created or whose
-- prospect their team owns).
create function customer_scope() returns text
language sql stable
as $$
  select case when sees_all_crm() or bizos.app_role() = 'finance' then 'all' else 'own' end
$$;
select pin_search_path('customer_scope()');
grant execute on function customer_scope() to bizos_authenticated;

-- THE rule for reading a customer row. The customers select policy calls it
-- (with the scope as a once-per-statement subquery), and so does every
-- function that runs as the owner and must not show or touch more than the
-- caller may read: one source of truth.
-- It has no SET clause on purpose, so that PostgreSQL inlines it into the
-- policy (a pinned search path stops inlining: counting 200,000 customers as
-- a director took 450 ms instead of 20 ms). Instead its body names
-- everything with its schema (owns_customer's, resolved when this
-- migration runs), so it resolves no name through the caller's search path.
do $do$
begin
  execute format($f$
    create function customer_readable(scope text, created_by uuid, customer_id uuid) returns boolean
    language sql stable
    as $$
      select scope = 'all' or created_by = bizos.uid() or %1$I.owns_customer(customer_id)
    $$ $f$, (select n.nspname from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
              where p.oid = 'owns_customer(uuid)'::regprocedure));
end
$do$;
grant execute on function customer_readable(text, uuid, uuid) to bizos_authenticated;

drop policy "crm managers, directors and finance read all customers; sales read their own" on customers;
create policy "callers read the customers customer_readable() allows"
  on customers for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and customer_readable((select customer_scope()), created_by, customer_id));

-- May the caller read customer `customer` (of their tenant)? The same rule,
-- for functions running as the owner.
create function may_read_customer(customer uuid) returns boolean
language sql stable
as $$
  select exists (
    select 1 from customers c
     where c.tenant_id = bizos.tenant_id() and c.customer_id = customer
       and customer_readable(customer_scope(), c.created_by, c.customer_id))
$$;
select pin_search_path('may_read_customer(uuid)');
grant execute on function may_read_customer(uuid) to bizos_authenticated;

-- The customer's current owner: the owner of its most recently active
-- prospect that is not LOST, when that owner is an active salesperson or
-- sales manager; NULL when there is none.
create function customer_current_owner(customer uuid) returns table (owner_user_id uuid, prospect_id uuid)
language sql stable
as $$
  select p.owner_user_id, p.prospect_id
    from prospects p
    join profiles u on u.tenant_id = p.tenant_id and u.user_id = p.owner_user_id
   where p.tenant_id = bizos.tenant_id() and p.customer_id = customer
     and p.owner_user_id is not null and p.stage <> 'LOST'
     and u.active and u.app_role in ('salesperson', 'sales_manager')
   order by p.updated_at desc, p.prospect_id
   limit 1
$$;
select pin_search_path('customer_current_owner(uuid)');
revoke execute on function customer_current_owner(uuid) from public;

-- ---------------------------------------------------------------- handed-over leads
-- A lead whose customer its creator may not read is handed over to the
-- customer's owner: its creator no longer reads or edits it (it carries the
-- hidden customer's id and another owner's prospect).
alter table leads add column handed_over boolean not null default false;
comment on column leads.handed_over is
  'Created by a user who may not read the matched customer: routed to the customer''s owner (or left unassigned for managers) and invisible to its creator.';

drop policy "crm managers read all leads; sales their team's, their own and the unassigned pool" on leads;
create policy "crm managers read all leads; sales their scope, not handed over"
  on leads for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select sees_all_crm())
              or sales_owner_user_id = any ((select my_team_ids())::uuid[])
              or (created_by = any ((select my_team_ids())::uuid[]) and not handed_over)
              or (sales_owner_user_id is null and (select bizos.app_role()) = 'sales_manager')));
drop policy "lead editors update the leads in their scope" on leads;
create policy "lead editors update their scope, not leads they handed over"
  on leads for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (select has_permission('lead.update'))
         and ((select bizos.app_role()) in ('super_admin', 'marketing_manager')
              or sales_owner_user_id = any ((select my_team_ids())::uuid[])
              or (created_by = any ((select my_team_ids())::uuid[]) and not handed_over)))
  with check (tenant_id = (select bizos.tenant_id()));

-- ---------------------------------------------------------------- dedup
-- The dedup of find_or_create_customer (V3), for functions running as the
-- owner: returns {customer_id, created, matched_on, visible, candidates}.
-- `visible` says whether the caller may read the customer (customer_readable).
-- A match the caller may not read is not enriched from their input, and
-- candidates are only customers the caller may read. Not callable by
-- request roles (it returns the id of a customer they may not read).
create function customer_dedup(
  company_name text,
  npwp text default null,
  email text default null,
  phone text default null,
  city text default null
) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_scope text;
  n_npwp text := bizos.norm_npwp(npwp);
  n_email text := bizos.norm_email(email);
  n_phone text := bizos.norm_phone(phone);
  n_company text := bizos.norm_company(company_name);
  v_id uuid;
  v_matched text;
  v_created boolean := false;
  v_visible boolean;
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
  v_scope := customer_scope();

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

  select v_created or customer_readable(v_scope, c.created_by, c.customer_id) into v_visible
    from customers c where c.tenant_id = v_tenant and c.customer_id = v_id;

  -- Fill identifiers the matched customer lacks (never overwrite), and only
  -- of a customer the caller may read.
  if not v_created and v_visible then
    update customers c
       set npwp = coalesce(c.npwp, nullif(btrim(customer_dedup.npwp), '')),
           email = coalesce(c.email, nullif(btrim(customer_dedup.email), '')),
           phone = coalesce(c.phone, nullif(btrim(customer_dedup.phone), '')),
           city = coalesce(c.city, nullif(btrim(customer_dedup.city), ''))
     where c.tenant_id = v_tenant and c.customer_id = v_id
       and ((c.npwp is null and n_npwp is not null) or (c.email is null and n_email is not null)
            or (c.phone is null and n_phone is not null) or (c.city is null and nullif(btrim(customer_dedup.city), '') is not null))
       and not exists (select 1 from customers o where o.tenant_id = v_tenant and o.npwp_norm = n_npwp and o.customer_id <> v_id);
  end if;

  -- Customers sharing a contact but with another NPWP (readable ones only).
  for r in
    select c.customer_id, c.company_name
      from customers c
     where n_npwp is not null
       and c.tenant_id = v_tenant and c.customer_id <> v_id
       and c.npwp_norm is not null and c.npwp_norm <> n_npwp
       and (c.email_norm = n_email or c.phone_norm = n_phone)
       and customer_readable(v_scope, c.created_by, c.customer_id)
     limit 5
  loop
    v_candidates := v_candidates || jsonb_build_object(
      'customer_id', r.customer_id, 'company_name', r.company_name, 'reason', 'same contact, different NPWP');
  end loop;

  -- Similar names, only for a customer just created (see V3), readable ones
  -- only: the 50 most similar, then the first 5 of them the caller may read
  -- (so the visibility check runs on at most 50 rows, not on every
  -- look-alike of a common name).
  if v_created then
    for r in
      select x.customer_id, x.company_name, x.sim
        from (select c.customer_id, c.company_name, c.created_by,
                     round(extensions.similarity(c.company_norm, n_company)::numeric, 3) as sim
                from customers c
               where c.tenant_id = v_tenant and c.customer_id <> v_id
                 and c.company_norm operator(extensions.%) n_company
               order by sim desc
               limit 50) x
       where customer_readable(v_scope, x.created_by, x.customer_id)
       order by x.sim desc
       limit 5
    loop
      v_candidates := v_candidates || jsonb_build_object(
        'customer_id', r.customer_id, 'company_name', r.company_name, 'similarity', r.sim,
        'reason', 'similar name');
    end loop;
  end if;

  return jsonb_build_object('customer_id', v_id, 'created', v_created, 'matched_on', v_matched,
                            'visible', v_visible, 'candidates', v_candidates);
end
$$;
select pin_search_path('customer_dedup(text, text, text, text, text)');
-- (Calling a pg_trgm function loads the library, so that its setting is
-- known to a non-superuser here.)
do $$ begin perform extensions.similarity('a', 'a'); end $$;
alter function customer_dedup(text, text, text, text, text) set pg_trgm.similarity_threshold = 0.5;
revoke execute on function customer_dedup(text, text, text, text, text) from public;

-- find_or_create_customer (V3) for request roles: the same dedup; a match
-- the caller may not read comes back as {customer_id: null, created: false,
-- visible: false, candidates} — one company stays one customer, and the
-- caller learns only that it exists outside their scope.
create or replace function find_or_create_customer(
  company_name text,
  npwp text default null,
  email text default null,
  phone text default null,
  city text default null
) returns jsonb
language plpgsql security definer
as $$
declare
  v jsonb := customer_dedup(company_name, npwp, email, phone, city);
begin
  if (v ->> 'visible')::boolean then
    return v - 'visible';
  end if;
  return jsonb_build_object('customer_id', null, 'created', false, 'matched_on', null,
                            'visible', false, 'candidates', v -> 'candidates');
end
$$;
select pin_search_path('find_or_create_customer(text, text, text, text, text)');
revoke execute on function find_or_create_customer(text, text, text, text, text) from public;
grant execute on function find_or_create_customer(text, text, text, text, text) to bizos_authenticated;

-- ---------------------------------------------------------------- prospects
-- The prospect of (customer, owner) as V3's find_or_create_prospect made
-- it, for functions running as the owner that decided themselves who gets
-- it (the bundle's handover, lead assignment). Not callable by request roles.
create function prospect_ensure(customer uuid, owner uuid default null) returns uuid
language plpgsql
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
     where p.tenant_id = v_tenant and p.customer_id = customer and p.owner_user_id is not distinct from prospect_ensure.owner;
  end if;
  return v_id;
end
$$;
select pin_search_path('prospect_ensure(uuid, uuid)');
revoke execute on function prospect_ensure(uuid, uuid) from public;

-- find_or_create_prospect for request roles: only on a customer the caller
-- may read (a prospect is what opens a customer and its invoices to a team).
create or replace function find_or_create_prospect(customer uuid, owner uuid default null) returns uuid
language plpgsql security definer
as $$
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if customer is null or not may_read_customer(customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: no such customer';
  end if;
  return prospect_ensure(customer, owner);
end
$$;
select pin_search_path('find_or_create_prospect(uuid, uuid)');
revoke execute on function find_or_create_prospect(uuid, uuid) from public;
grant execute on function find_or_create_prospect(uuid, uuid) to bizos_authenticated;

-- ---------------------------------------------------------------- CRM-1 lead bundle
-- crm_create_lead_bundle(payload) as in V5, with the payload contract and
-- the handover rule:
--   the customer (deduplicated) is one the caller may read → as before:
--     {lead_id, lead_no, status, handed_over: false, customer_id,
--      prospect_id, ticket_id?, ticket_no?, customer_created, matched_on,
--      candidates (readable customers only)};
--   it is one the caller may not read → the lead is linked to it but handed
--     over to its current owner (customer_current_owner; none: unassigned,
--     status NEW), the caller gets no prospect, the customer is not enriched,
--     and the answer is what the caller typed plus {lead_id, lead_no, status,
--     handed_over: true, ticket_id?, ticket_no?}.
create or replace function crm_create_lead_bundle(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_role text := bizos.app_role();
  v_owner uuid;
  v_channel text;
  v_company text;
  v_contact text;
  v_email text;
  v_phone text;
  v_npwp text;
  v_city text;
  v_notes text;
  v_rfq jsonb;
  v_customer jsonb;
  v_customer_id uuid;
  v_visible boolean;
  v_prospect_id uuid;
  v_lead leads%rowtype;
  v_ticket jsonb;
  e_col text;
  e_msg text;
  e_hint text;
begin
  perform require_permission('lead.create');
  perform payload_check(payload, '{"channel": "text", "company_name": "text", "contact_name": "text",
    "contact_email": "text", "contact_phone": "text", "npwp": "text", "city": "text", "notes": "text",
    "sales_owner_user_id": "uuid",
    "rfq": {"origin": "text", "destination": "text", "commodity": "text", "weight_kg": "number",
            "volume_cbm": "number", "dept_target": "text", "priority": "text", "subject": "text",
            "description": "text"}}');
  v_channel := lower(payload_text(payload, 'channel', true, 30));
  if v_channel not in ('website', 'whatsapp', 'referral', 'event', 'social_media', 'email', 'phone',
                       'walk_in', 'marketplace', 'partner', 'other') then
    raise exception using errcode = 'P0001', column = 'channel',
      message = format('channel: %L is not one of website, whatsapp, referral, event, social_media, email, phone, walk_in, marketplace, partner, other', v_channel);
  end if;
  v_company := payload_text(payload, 'company_name', true, 200);
  if bizos.norm_company(v_company) is null then
    raise exception using errcode = 'P0001', column = 'company_name', message = 'company_name: required, up to 200 characters';
  end if;
  v_contact := payload_text(payload, 'contact_name', false, 200);
  v_email := payload_text(payload, 'contact_email', false, 320);
  if v_email is not null and bizos.norm_email(v_email) is null then
    raise exception using errcode = 'P0001', column = 'contact_email', message = format('contact_email: %L is not a valid e-mail address', v_email);
  end if;
  v_phone := payload_text(payload, 'contact_phone', false, 50);
  if v_phone is not null and bizos.norm_phone(v_phone) is null then
    raise exception using errcode = 'P0001', column = 'contact_phone', message = format('contact_phone: %L is not a valid Indonesian phone number', v_phone);
  end if;
  v_npwp := payload_text(payload, 'npwp', false, 40);
  if v_npwp is not null and bizos.norm_npwp(v_npwp) is null then
    raise exception using errcode = 'P0001', column = 'npwp', message = format('npwp: %L is not a valid NPWP', v_npwp);
  end if;
  v_city := payload_text(payload, 'city', false, 100);
  v_notes := payload_text(payload, 'notes', false, 4000);
  v_owner := payload_uuid(payload, 'sales_owner_user_id');
  if v_role = 'salesperson' then
    if v_owner is not null and v_owner <> bizos.uid() then
      raise exception using errcode = '42501', column = 'sales_owner_user_id',
        message = 'a salesperson creates leads for themselves';
    end if;
    v_owner := bizos.uid();
  elsif v_owner is not null then
    perform require_permission('lead.assign');
  end if;
  v_rfq := nullif(payload -> 'rfq', 'null'::jsonb);
  if v_rfq is not null then
    -- ticket_create checks these again; named here as the caller sent them.
    perform payload_text(jsonb_build_object('rfq.dept_target', v_rfq -> 'dept_target'), 'rfq.dept_target', true, 32);
    perform payload_text(jsonb_build_object('rfq.origin', v_rfq -> 'origin'), 'rfq.origin', true, 200);
    perform payload_text(jsonb_build_object('rfq.destination', v_rfq -> 'destination'), 'rfq.destination', true, 200);
    perform payload_positive(jsonb_build_object('rfq.weight_kg', v_rfq -> 'weight_kg'), 'rfq.weight_kg');
    perform payload_positive(jsonb_build_object('rfq.volume_cbm', v_rfq -> 'volume_cbm'), 'rfq.volume_cbm');
  end if;

  v_customer := customer_dedup(v_company, v_npwp, v_email, v_phone, v_city);
  v_customer_id := (v_customer ->> 'customer_id')::uuid;
  v_visible := (v_customer ->> 'visible')::boolean;
  if v_visible then
    v_prospect_id := prospect_ensure(v_customer_id, v_owner);
  else
    -- Handed over: the customer's owner takes the lead; the caller gets no prospect.
    select o.owner_user_id, o.prospect_id into v_owner, v_prospect_id from customer_current_owner(v_customer_id) o;
    if v_prospect_id is null then
      v_owner := null;
      v_prospect_id := prospect_ensure(v_customer_id, null);
    end if;
  end if;

  insert into leads (tenant_id, channel, status, company_name, contact_name, contact_email, contact_phone,
                     npwp, city, notes, customer_id, prospect_id, sales_owner_user_id, assigned_at, handed_over)
  values (v_tenant, v_channel, case when v_owner is null then 'NEW' else 'ASSIGNED' end, v_company,
          v_contact, v_email, v_phone, v_npwp, v_city, v_notes,
          v_customer_id, v_prospect_id, v_owner, case when v_owner is not null then now() end, not v_visible)
  returning * into v_lead;

  if v_rfq is not null then
    begin
      -- The customer is linked (and its contacts snapshotted) by ticket_create
      -- only when the caller may read it.
      v_ticket := ticket_create(jsonb_strip_nulls(jsonb_build_object(
        'ticket_type', 'inquiry_tariff',
        'subject', coalesce(nullif(btrim(v_rfq ->> 'subject'), ''),
                            format('RFQ %s: %s → %s', v_lead.lead_no, v_rfq ->> 'origin', v_rfq ->> 'destination')),
        'description', v_rfq -> 'description',
        'priority', coalesce(v_rfq -> 'priority', '"normal"'),
        'dept_target', v_rfq -> 'dept_target',
        'need_customer_masking', true,
        'related_lead_id', v_lead.lead_id,
        'related_customer_id', case when v_visible then v_customer_id end,
        'origin', v_rfq -> 'origin',
        'destination', v_rfq -> 'destination',
        'commodity', v_rfq -> 'commodity',
        'weight_kg', v_rfq -> 'weight_kg',
        'volume_cbm', v_rfq -> 'volume_cbm',
        'contact_name', v_contact,
        'contact_phone', v_phone,
        'contact_email', v_email,
        'company_name', v_company)));
    exception when sqlstate 'P0001' then
      -- Name the field as the caller sent it (rfq.priority, not priority).
      get stacked diagnostics e_col = column_name, e_msg = message_text, e_hint = pg_exception_hint;
      e_hint := nullif(e_hint, '');
      if e_col in ('origin', 'destination', 'commodity', 'weight_kg', 'volume_cbm', 'dept_target',
                   'priority', 'subject', 'description') then
        e_msg := 'rfq.' || e_msg;
        e_col := 'rfq.' || e_col;
      end if;
      if e_hint is null then
        raise exception using errcode = 'P0001', column = e_col, message = e_msg;
      end if;
      raise exception using errcode = 'P0001', column = e_col, message = e_msg, hint = e_hint;
    end;
    if v_owner is not null or v_visible then
      insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id, summary)
      values (v_tenant, coalesce(v_owner, bizos.uid()), 'rfq_created', 'derived', v_customer_id, v_prospect_id,
              v_lead.lead_id, format('RFQ %s created from lead %s', v_ticket ->> 'ticket_no', v_lead.lead_no));
    end if;
  end if;

  if not v_visible then
    return jsonb_strip_nulls(jsonb_build_object(
      'lead_id', v_lead.lead_id, 'lead_no', v_lead.lead_no, 'status', v_lead.status, 'handed_over', true,
      'channel', v_lead.channel, 'company_name', v_lead.company_name, 'contact_name', v_lead.contact_name,
      'contact_email', v_lead.contact_email, 'contact_phone', v_lead.contact_phone, 'npwp', v_lead.npwp,
      'city', v_lead.city, 'notes', v_lead.notes,
      'ticket_id', v_ticket -> 'ticket_id', 'ticket_no', v_ticket -> 'ticket_no'));
  end if;
  return jsonb_strip_nulls(jsonb_build_object(
    'lead_id', v_lead.lead_id, 'lead_no', v_lead.lead_no, 'status', v_lead.status, 'handed_over', false,
    'customer_id', v_customer_id, 'prospect_id', v_prospect_id,
    'ticket_id', v_ticket -> 'ticket_id', 'ticket_no', v_ticket -> 'ticket_no',
    'customer_created', v_customer -> 'created', 'matched_on', v_customer -> 'matched_on',
    'candidates', v_customer -> 'candidates'));
end
$$;
select pin_search_path('crm_create_lead_bundle(jsonb)');
revoke execute on function crm_create_lead_bundle(jsonb) from public;
grant execute on function crm_create_lead_bundle(jsonb) to bizos_authenticated;

-- ---------------------------------------------------------------- tickets
-- ticket_create (V4): the payload contract; a customer is linked and
-- snapshotted only when the caller may read it.
create or replace function ticket_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
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
  perform payload_check(payload, '{"ticket_type": "text", "subject": "text", "description": "text",
    "priority": "text", "dept_target": "text", "need_customer_masking": "boolean", "related_lead_id": "uuid",
    "related_customer_id": "uuid", "assignee_user_id": "uuid", "origin": "text", "destination": "text",
    "commodity": "text", "weight_kg": "number", "volume_cbm": "number", "contact_name": "text",
    "contact_phone": "text", "contact_email": "text", "company_name": "text"}');

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
  -- A customer is linked and its contacts snapshotted only when the caller
  -- may read it (customer_readable), also when this runs inside a function
  -- that crosses RLS (the lead bundle, collection tickets).
  v_customer := payload_uuid(payload, 'related_customer_id');
  if v_customer is not null then
    if not may_read_customer(v_customer) then
      perform raise_field('related_customer_id', 'no such customer');
    end if;
    select c.company_name, c.email, c.phone into v_cust_company, v_cust_email, v_cust_phone
      from customers c
     where c.tenant_id = v_tenant and c.customer_id = v_customer;
    if v_lead_customer is not null and v_lead_customer <> v_customer then
      perform raise_field('related_customer_id', 'differs from the customer of the related lead');
    end if;
  elsif v_lead_customer is not null and may_read_customer(v_lead_customer) then
    v_customer := v_lead_customer;
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
-- ---------------------------------------------------------------- the payload contract on the other RPCs
-- (V6, V7, V8, V9, V10 bodies unchanged but for payload_check; ticket_update
-- returns the caller's row of v_tickets).

create or replace function invoice_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_customer uuid;
  v_issue date;
  v_due date;
  v_terms integer;
  v_currency text;
  v_subtotal numeric;
  v_tax numeric;
  v_status text;
  v_notes text;
  r invoices;
begin
  perform require_permission('invoice.create');
  perform payload_check(payload, '{"customer_id": "uuid", "issue_date": "date", "due_date": "date", "terms_days": "integer", "currency": "text", "subtotal": "number", "tax": "number", "status": "text", "notes": "text"}');
  v_customer := payload_uuid(payload, 'customer_id', true);
  if not exists (select 1 from customers c
                  where c.tenant_id = (select bizos.tenant_id()) and c.customer_id = v_customer) then
    raise exception using errcode = 'P0002', column = 'customer_id', message = 'customer_id: customer not found';
  end if;
  v_issue := coalesce(payload_date(payload, 'issue_date'), current_date);
  v_due := payload_date(payload, 'due_date');
  v_terms := payload_integer(payload, 'terms_days');
  if v_due is not null and v_terms is not null then
    perform raise_field('terms_days', 'send either due_date or terms_days, not both');
  end if;
  if v_terms is not null and (v_terms < 0 or v_terms > 365) then
    perform raise_field('terms_days', 'must be between 0 and 365');
  end if;
  v_due := coalesce(v_due, v_issue + coalesce(v_terms, 30));
  if v_due < v_issue then
    perform raise_field('due_date', format('%s is before the issue date %s', v_due, v_issue));
  end if;
  v_currency := upper(coalesce(payload_text(payload, 'currency', false, 3), 'IDR'));
  if v_currency !~ '^[A-Z]{3}$' then
    perform raise_field('currency', 'must be an ISO 4217 code such as IDR');
  end if;
  v_subtotal := payload_numeric(payload, 'subtotal', true);
  if v_subtotal <= 0 then
    perform raise_field('subtotal', 'must be greater than 0');
  end if;
  v_tax := payload_numeric(payload, 'tax', true);
  if v_tax < 0 then
    perform raise_field('tax', 'must be 0 or more (PPN: 12% of a DPP of 11/12 of the price, i.e. 11%, for non-luxury goods)');
  end if;
  if v_tax > v_subtotal then
    perform raise_field('tax', 'cannot exceed the subtotal');
  end if;
  v_status := upper(coalesce(payload_text(payload, 'status', false, 10), 'ISSUED'));
  if v_status not in ('DRAFT', 'ISSUED') then
    perform raise_field('status', 'a new invoice is DRAFT or ISSUED');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);

  insert into invoices (tenant_id, customer_id, issue_date, due_date, currency, subtotal, tax, status, notes)
  values ((select bizos.tenant_id()), v_customer, v_issue, v_due, v_currency, v_subtotal, v_tax, v_status, v_notes)
  returning * into r;

  return jsonb_build_object('invoice_id', r.invoice_id, 'invoice_no', r.invoice_no, 'status', r.status,
                            'total', r.total, 'due_date', r.due_date);
end
$$;

create or replace function payment_record(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_invoice uuid;
  v_invoice_no text;
  v_amount numeric;
  v_paid_on date;
  v_method text;
  v_reference text;
  v_notes text;
  inv invoices;
  existing payments;
  r payments;
begin
  perform require_permission('payment.record');
  perform payload_check(payload, '{"invoice_id": "uuid", "invoice_no": "text", "amount": "number", "paid_on": "date", "method": "text", "reference": "text", "notes": "text"}');
  v_invoice := payload_uuid(payload, 'invoice_id');
  v_invoice_no := payload_text(payload, 'invoice_no', false, 40);
  if v_invoice is null and v_invoice_no is null then
    perform raise_field('invoice_id', 'is required (or send invoice_no)');
  end if;
  if v_invoice is not null and v_invoice_no is not null then
    perform raise_field('invoice_no', 'send either invoice_id or invoice_no, not both');
  end if;
  v_amount := payload_numeric(payload, 'amount', true);
  if v_amount <= 0 then
    perform raise_field('amount', 'must be greater than 0');
  end if;
  v_paid_on := coalesce(payload_date(payload, 'paid_on'), current_date);
  if v_paid_on > current_date then
    perform raise_field('paid_on', format('%s is in the future', v_paid_on));
  end if;
  v_method := lower(coalesce(payload_text(payload, 'method', false, 40), 'bank_transfer'));
  if v_method not in ('bank_transfer', 'virtual_account', 'cash', 'giro', 'card', 'e_wallet', 'other') then
    perform raise_field('method', 'must be one of bank_transfer, virtual_account, cash, giro, card, e_wallet, other');
  end if;
  v_reference := payload_text(payload, 'reference', false, 200);
  v_notes := payload_text(payload, 'notes', false, 2000);

  select * into inv from invoices i
   where i.tenant_id = (select bizos.tenant_id())
     and (i.invoice_id = v_invoice or i.invoice_no = v_invoice_no)
   for update;
  if not found then
    raise exception using errcode = 'P0002', column = coalesce(case when v_invoice is null then 'invoice_no' end, 'invoice_id'),
      message = coalesce(case when v_invoice is null then 'invoice_no' end, 'invoice_id') || ': invoice not found';
  end if;

  if v_reference is not null then
    select * into existing from payments p
     where p.tenant_id = inv.tenant_id and p.invoice_id = inv.invoice_id and p.reference = v_reference;
    if found then
      if existing.amount = v_amount and existing.paid_on = v_paid_on and existing.method = v_method then
        return jsonb_build_object('payment_id', existing.payment_id, 'payment_no', existing.payment_no,
                                  'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid,
                                  'invoice_status', inv.status, 'replayed', true);
      end if;
      raise exception using errcode = '23505', column = 'reference',
        constraint = 'payments_invoice_id_reference_key',
        message = format('reference: %s is already recorded on invoice %s as payment %s with other values',
                         v_reference, inv.invoice_no, existing.payment_no);
    end if;
  end if;

  insert into payments (tenant_id, invoice_id, paid_on, amount, method, reference, notes)
  values (inv.tenant_id, inv.invoice_id, v_paid_on, v_amount, v_method, v_reference, v_notes)
  returning * into r;

  select * into inv from invoices i where i.tenant_id = inv.tenant_id and i.invoice_id = inv.invoice_id;
  return jsonb_build_object('payment_id', r.payment_id, 'payment_no', r.payment_no,
                            'invoice_id', inv.invoice_id, 'outstanding', inv.total - inv.amount_paid,
                            'invoice_status', inv.status, 'replayed', false);
end
$$;

create or replace function kpi_target_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_metric text;
  v_assignee uuid;
  v_period daterange;
  v_value numeric;
  v_notes text;
  d kpi_metric_definitions;
  clash kpi_targets;
  r kpi_targets;
begin
  perform require_permission('kpi.target.manage');
  perform payload_check(payload, '{"metric_key": "text", "assignee_user_id": "uuid", "period_start": "date", "period_end": "date", "period_month": "text", "target_value": "number", "notes": "text"}');
  v_metric := payload_text(payload, 'metric_key', true, 63);
  select * into d from kpi_metric_definitions k where k.tenant_id = v_tenant and k.metric_key = v_metric;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key', message = format('metric_key: no metric %s in this tenant', v_metric);
  end if;
  if not d.active then
    perform raise_field('metric_key', format('%s is inactive', v_metric));
  end if;
  if d.na_reason is not null then
    perform raise_field('metric_key', format('%s cannot be measured (%s); a target for it would never be tracked', v_metric, d.na_reason));
  end if;
  v_assignee := payload_uuid(payload, 'assignee_user_id', true);
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = v_assignee and p.active) then
    raise exception using errcode = 'P0002', column = 'assignee_user_id',
      message = 'assignee_user_id: no active user with this id in the tenant';
  end if;
  if bizos.app_role() <> 'super_admin' and not (v_assignee = any (my_team_ids())) then
    raise exception using errcode = '42501', column = 'assignee_user_id',
      message = 'assignee_user_id: you set targets only for yourself and your team';
  end if;
  v_period := kpi_payload_period(payload);
  v_value := payload_numeric(payload, 'target_value', true, 4);
  if v_value < 0 then
    perform raise_field('target_value', 'must be 0 or more');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);

  select * into clash from kpi_targets t
   where t.tenant_id = v_tenant and t.metric_key = v_metric and t.assignee_user_id = v_assignee
     and t.period && v_period
   limit 1;
  if found then
    raise exception using errcode = '23P01', column = 'period', constraint = 'kpi_targets_period_excl',
      message = format('period: overlaps the target %s..%s of %s for this assignee',
                       lower(clash.period), upper(clash.period) - 1, v_metric);
  end if;
  begin
    insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value, notes)
    values (v_tenant, v_metric, v_assignee, v_period, v_value, v_notes)
    returning * into r;
  exception when exclusion_violation then
    -- A concurrent request won the race (or the clash is invisible to us).
    raise exception using errcode = '23P01', column = 'period', constraint = 'kpi_targets_period_excl',
      message = format('period: overlaps another target of %s for this assignee', v_metric);
  end;
  return jsonb_build_object('target_id', r.target_id, 'metric_key', r.metric_key,
                            'assignee_user_id', r.assignee_user_id,
                            'period_start', lower(r.period), 'period_end', upper(r.period) - 1,
                            'target_value', r.target_value);
end
$$;

create or replace function kpi_entry_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_metric text;
  v_value numeric;
  v_date date;
  v_assignee uuid;
  v_source text;
  v_import uuid;
  v_import_row integer;
  v_notes text;
  v_evidence jsonb;
  ev jsonb;
  i integer := 0;
  d kpi_metric_definitions;
  v_entry uuid;
  v_replayed boolean := false;
  v_ids jsonb := '[]';
  v_evid uuid;
  v_object uuid;
begin
  perform require_permission('kpi.entry.create');
  if v_uid is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"metric_key": "text", "value": "number", "entry_date": "date", "assignee_user_id": "uuid", "source": "text", "import_id": "uuid", "import_row": "integer", "notes": "text", "evidence": "uuid[]"}');
  v_metric := payload_text(payload, 'metric_key', true, 63);
  select * into d from kpi_metric_definitions k where k.tenant_id = v_tenant and k.metric_key = v_metric;
  if not found then
    raise exception using errcode = 'P0002', column = 'metric_key', message = format('metric_key: no metric %s in this tenant', v_metric);
  end if;
  if d.source = 'AUTO' then
    perform raise_field('metric_key', format('%s is computed automatically from the data; it takes no entries', v_metric));
  end if;
  if not d.active then
    perform raise_field('metric_key', format('%s is inactive', v_metric));
  end if;
  v_value := payload_numeric(payload, 'value', true, 4);
  if d.unit in ('count', 'IDR', 'minutes', 'days') and v_value < 0 then
    perform raise_field('value', format('a %s cannot be negative', d.unit));
  end if;
  v_date := coalesce(payload_date(payload, 'entry_date'), current_date);
  if v_date > current_date then
    perform raise_field('entry_date', format('%s is in the future; actuals are entered for days that happened', v_date));
  end if;
  v_assignee := coalesce(payload_uuid(payload, 'assignee_user_id'), v_uid);
  if not exists (select 1 from profiles p where p.tenant_id = v_tenant and p.user_id = v_assignee and p.active) then
    raise exception using errcode = 'P0002', column = 'assignee_user_id',
      message = 'assignee_user_id: no active user with this id in the tenant';
  end if;
  if v_assignee <> v_uid and not (bizos.app_role() = 'super_admin'
       or (bizos.app_role() in ('marketing_manager', 'sales_manager') and v_assignee = any (my_team_ids()))) then
    raise exception using errcode = '42501', column = 'assignee_user_id',
      message = 'assignee_user_id: you enter actuals for yourself (managers also for their team)';
  end if;
  v_source := upper(coalesce(payload_text(payload, 'source', false, 10), 'MANUAL'));
  if v_source not in ('MANUAL', 'IMPORTED') then
    perform raise_field('source', 'must be MANUAL or IMPORTED');
  end if;
  v_import := payload_uuid(payload, 'import_id');
  v_import_row := payload_integer(payload, 'import_row');
  if v_source = 'IMPORTED' and (v_import is null or v_import_row is null) then
    perform raise_field(case when v_import is null then 'import_id' else 'import_row' end,
                        'is required for IMPORTED entries');
  end if;
  if v_source = 'MANUAL' and (v_import is not null or v_import_row is not null) then
    perform raise_field(case when v_import is not null then 'import_id' else 'import_row' end,
                        'only IMPORTED entries come from an import');
  end if;
  if v_import_row is not null and v_import_row < 1 then
    perform raise_field('import_row', 'must be 1 or more');
  end if;
  v_notes := payload_text(payload, 'notes', false, 2000);
  v_evidence := coalesce(payload -> 'evidence', '[]');
  if jsonb_typeof(v_evidence) = 'null' then
    v_evidence := '[]';
  end if;
  if jsonb_typeof(v_evidence) <> 'array' then
    perform raise_field('evidence', 'must be a list of files');
  end if;
  if jsonb_array_length(v_evidence) > 20 then
    perform raise_field('evidence', 'at most 20 files per entry');
  end if;
  -- Validate every file before writing anything: uploaded objects of the
  -- caller in bucket kpi-evidence (POST /api/kpi/evidence uploads one).
  for ev in select e from jsonb_array_elements(v_evidence) e loop
    if jsonb_typeof(ev) <> 'string' or (ev #>> '{}') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      perform raise_field(format('evidence[%s]', i), 'must be the object_id of an uploaded file');
    end if;
    if not exists (select 1 from objects o
                    where o.tenant_id = v_tenant and o.object_id = (ev #>> '{}')::uuid
                      and o.bucket = 'kpi-evidence' and o.created_by = v_uid) then
      raise exception using errcode = 'P0002', column = format('evidence[%s]', i),
        message = format('evidence[%s]: no file %s of yours in bucket kpi-evidence', i, ev #>> '{}');
    end if;
    i := i + 1;
  end loop;

  if v_import is not null then
    select e.entry_id into v_entry from kpi_entries e
     where e.tenant_id = v_tenant and e.import_id = v_import and e.import_row = v_import_row
     for update;
    if found then
      update kpi_entries e set value = v_value, entry_date = v_date, notes = v_notes
       where e.tenant_id = v_tenant and e.entry_id = v_entry;
      v_replayed := true;
    end if;
  end if;
  if v_entry is null then
    insert into kpi_entries (tenant_id, metric_key, entry_date, assignee_user_id, value, source, notes, import_id, import_row)
    values (v_tenant, v_metric, v_date, v_assignee, v_value, v_source, v_notes, v_import, v_import_row)
    returning entry_id into v_entry;
  end if;

  for ev in select e from jsonb_array_elements(v_evidence) e loop
    v_object := (ev #>> '{}')::uuid;
    insert into kpi_evidence (tenant_id, entry_id, object_id)
    values (v_tenant, v_entry, v_object)
    on conflict (tenant_id, object_id) do nothing
    returning evidence_id into v_evid;
    if v_evid is null then
      select k.evidence_id into v_evid from kpi_evidence k
       where k.tenant_id = v_tenant and k.object_id = v_object and k.entry_id = v_entry;
      if v_evid is null then
        raise exception using errcode = '23505', column = 'evidence', constraint = 'kpi_evidence_object_id_key',
          message = format('evidence: file %s already belongs to another entry', v_object);
      end if;
    end if;
    v_ids := v_ids || to_jsonb(v_evid);
    v_evid := null;
  end loop;

  return jsonb_build_object('entry_id', v_entry, 'replayed', v_replayed, 'evidence_ids', v_ids);
end
$$;

create or replace function object_create(payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_bucket text;
  r objects;
begin
  if bizos.uid() is null or v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"object_id": "uuid", "bucket": "text", "file_name": "text", "content_type": "text", "size_bytes": "integer", "sha256": "text"}');
  v_bucket := payload_text(payload, 'bucket', true, 63);
  if not exists (select 1 from storage_buckets b where b.bucket = v_bucket) then
    perform raise_field('bucket', format('no bucket %s', v_bucket));
  end if;
  insert into objects (tenant_id, object_id, bucket, file_name, content_type, size_bytes, sha256)
  values (v_tenant, payload_uuid(payload, 'object_id', true), v_bucket,
          payload_text(payload, 'file_name', true, 255), lower(payload_text(payload, 'content_type', true, 255)),
          payload_numeric(payload, 'size_bytes', true, 0)::bigint, lower(payload_text(payload, 'sha256', true, 64)))
  returning * into r;
  return to_jsonb(r);
end
$$;

create or replace function import_create(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_module text;
  v_object uuid;
  v_file text;
  v_columns text[];
  m import_modules;
  bad text[];
  r imports;
begin
  if v_tenant is null or bizos.uid() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform payload_check(payload, '{"module": "text", "object_id": "uuid", "file_name": "text", "columns": "text[]"}');
  v_module := lower(payload_text(payload, 'module', true, 63));
  select * into m from import_modules x where x.module = v_module;
  if not found then
    perform raise_field('module', format('%s is not one of %s', v_module,
                        (select string_agg(x.module, ', ' order by x.module) from import_modules x)));
  end if;
  perform require_permission(m.permission);
  v_object := payload_uuid(payload, 'object_id', true);
  v_file := payload_text(payload, 'file_name', true, 255);
  if jsonb_typeof(payload -> 'columns') is distinct from 'array' then
    perform raise_field('columns', 'must be the list of column names of the file''s header');
  end if;
  if exists (select 1 from jsonb_array_elements(payload -> 'columns') c where jsonb_typeof(c) <> 'string') then
    perform raise_field('columns', 'every column name must be a string');
  end if;
  select coalesce(array_agg(c ->> 0 order by n), '{}') into v_columns
    from jsonb_array_elements(payload -> 'columns') with ordinality as x(c, n);
  if cardinality(v_columns) = 0 then
    perform raise_field('columns', 'the file has no header row');
  end if;
  if cardinality(v_columns) > 100 then
    perform raise_field('columns', 'at most 100 columns');
  end if;
  if '' = any (v_columns) then
    perform raise_field('columns', 'a column of the header has no name');
  end if;
  select array_agg(c order by c) into bad
    from (select c from unnest(v_columns) c group by c having count(*) > 1) d;
  if bad is not null then
    perform raise_field('columns', format('duplicate column(s) %s', array_to_string(bad, ', ')));
  end if;
  select array_agg(c order by n) into bad
    from unnest(v_columns) with ordinality as x(c, n) where not c = any (m.columns);
  if bad is not null then
    perform raise_field('columns', format('unknown column(s) %s for module %s (allowed: %s)',
                        array_to_string(bad, ', '), m.module, array_to_string(m.columns, ', ')));
  end if;
  select array_agg(c order by n) into bad
    from unnest(m.required) with ordinality as x(c, n) where not c = any (v_columns);
  if bad is not null then
    perform raise_field('columns', format('missing required column(s) %s', array_to_string(bad, ', ')));
  end if;
  if cardinality(m.one_of) > 0 and not (m.one_of && v_columns) then
    perform raise_field('columns', format('one of the columns %s is required', array_to_string(m.one_of, ', ')));
  end if;

  insert into imports (tenant_id, module, object_id, file_name, columns)
  values (v_tenant, m.module, v_object, v_file, v_columns)
  returning * into r;
  return import_state(r);
end
$$;

create or replace function lead_update(lead_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  l leads;
begin
  perform require_permission('lead.update');
  perform payload_check(payload, '{"status": "text", "channel": "text", "contact_name": "text", "contact_email": "text", "contact_phone": "text", "city": "text", "notes": "text"}');
  if payload = '{}' then
    perform raise_field('payload', 'nothing to change');
  end if;
  if payload ? 'status' and upper(payload_text(payload, 'status', true, 20)) = 'ASSIGNED' then
    perform raise_field('status', 'leads are assigned with POST /api/leads/{id}/assign');
  end if;
  select * into l from leads x where x.tenant_id = v_tenant and x.lead_id = lead_update.lead_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'lead_id',
      message = format('lead_id: no lead %s', lead_update.lead_id);
  end if;
  update leads x set
    status        = case when payload ? 'status' then upper(payload_text(payload, 'status', true, 20)) else x.status end,
    channel       = case when payload ? 'channel' then lower(payload_text(payload, 'channel', true, 30)) else x.channel end,
    contact_name  = case when payload ? 'contact_name' then payload_text(payload, 'contact_name', false, 200) else x.contact_name end,
    contact_email = case when payload ? 'contact_email' then payload_text(payload, 'contact_email', false, 320) else x.contact_email end,
    contact_phone = case when payload ? 'contact_phone' then payload_text(payload, 'contact_phone', false, 50) else x.contact_phone end,
    city          = case when payload ? 'city' then payload_text(payload, 'city', false, 100) else x.city end,
    notes         = case when payload ? 'notes' then payload_text(payload, 'notes', false, 4000) else x.notes end
   where x.tenant_id = v_tenant and x.lead_id = lead_update.lead_id
  returning * into l;
  if not found then
    raise exception using errcode = '42501', message = 'you may not change this lead';
  end if;
  return to_jsonb(l);
end
$$;

create or replace function ticket_update(ticket_id uuid, payload jsonb) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  t tickets;
begin
  perform require_permission('ticket.update');
  perform payload_check(payload, '{"status": "text", "note": "text", "assignee_user_id": "uuid", "subject": "text", "description": "text", "priority": "text"}');
  if payload = '{}' then
    perform raise_field('payload', 'nothing to change');
  end if;
  if payload ? 'note' and not payload ? 'status' then
    perform raise_field('note', 'a note goes with a status change (messages: POST /api/tickets/{id}/messages)');
  end if;
  select * into t from tickets x where x.tenant_id = v_tenant and x.ticket_id = ticket_update.ticket_id for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'ticket_id',
      message = format('ticket_id: no ticket %s', ticket_update.ticket_id);
  end if;
  if payload ?| array['subject', 'description', 'priority'] then
    update tickets x set
      subject     = case when payload ? 'subject' then payload_text(payload, 'subject', true, 200) else x.subject end,
      description = case when payload ? 'description' then payload_text(payload, 'description', false, 10000) else x.description end,
      priority    = case when payload ? 'priority' then lower(payload_text(payload, 'priority', true, 10)) else x.priority end
     where x.tenant_id = v_tenant and x.ticket_id = ticket_update.ticket_id;
    if not found then
      raise exception using errcode = '42501', message = 'you may not change this ticket';
    end if;
  end if;
  if payload ? 'assignee_user_id' then
    perform ticket_assign(ticket_update.ticket_id, payload_uuid(payload, 'assignee_user_id'));
  end if;
  if payload ? 'status' then
    perform ticket_transition(ticket_update.ticket_id, payload_text(payload, 'status', true, 30),
                              payload_text(payload, 'note', false, 10000));
  end if;
  -- The ticket as the caller reads it (GET /api/tickets/{id}): customer
  -- details of masked tickets stay masked for ops.
  return coalesce((select to_jsonb(v) from v_tickets v
                    where v.tenant_id = v_tenant and v.ticket_id = ticket_update.ticket_id),
                  jsonb_build_object('ticket_id', ticket_update.ticket_id));
end
$$;

-- ---------------------------------------------------------------- lead assignment (V3)
create or replace function crm_assign_lead(lead_id uuid, salesperson uuid) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_lead leads%rowtype;
  v_prospect prospects%rowtype;
  v_target uuid;
  v_current uuid;
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
  -- A customer the caller may not read stays with its current owner:
  -- assigning its lead elsewhere would split the pipeline and open the
  -- customer (and its invoices) to the assignee's team. Without a current
  -- owner the lead is the managers' to route.
  if not may_read_customer(v_lead.customer_id) then
    select o.owner_user_id into v_current from customer_current_owner(v_lead.customer_id) o;
    if v_current is not null and v_current <> salesperson then
      raise exception using errcode = '42501', column = 'lead_id',
        message = 'lead_id: this lead''s customer is handled by another team; its owner takes the lead';
    end if;
  end if;

  select p.* into v_prospect from prospects p where p.tenant_id = v_tenant and p.prospect_id = v_lead.prospect_id for update;
  select p.prospect_id into v_target from prospects p
   where p.tenant_id = v_tenant and p.customer_id = v_lead.customer_id and p.owner_user_id = salesperson;
  if v_target is null and v_prospect.owner_user_id is null then
    update prospects p set owner_user_id = salesperson
     where p.tenant_id = v_tenant and p.prospect_id = v_prospect.prospect_id;
    v_target := v_prospect.prospect_id;
  elsif v_target is null then
    v_target := prospect_ensure(v_lead.customer_id, salesperson);
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
-- ---------------------------------------------------------------- imports (V10): the same rule

create or replace function import_resolve_customers(v_tenant uuid) returns void
language plpgsql
as $$
declare
  k text;
  n integer;
  v_scope text := customer_scope();
begin
  analyze pg_temp.import_customer;
  perform pg_advisory_xact_lock(hashtextextended(v_tenant::text || '/' || x.key, 42))
     from (select distinct key
             from pg_temp.import_customer c
            cross join lateral unnest(array_remove(array[
                    'email:' || c.n_email, 'phone:' || c.n_phone,
                    case when c.n_npwp is null then 'company:' || c.n_company end], null)) key) x
    order by x.key;

  -- Existing customers: one probe of the natural-key indexes per row.
  update pg_temp.import_customer c
     set customer_id = (
       select m.customer_id from (
         (select x.customer_id, 1 as o from customers x
           where c.n_npwp is not null and x.tenant_id = v_tenant and x.npwp_norm = c.n_npwp)
         union all
         (select x.customer_id, 2 from customers x
           where c.n_email is not null and x.tenant_id = v_tenant and x.email_norm = c.n_email
             and (c.n_npwp is null or x.npwp_norm is null)
           order by x.created_at limit 1)
         union all
         (select x.customer_id, 3 from customers x
           where c.n_phone is not null and x.tenant_id = v_tenant and x.phone_norm = c.n_phone
             and (c.n_npwp is null or x.npwp_norm is null)
           order by x.created_at limit 1)
         union all
         (select x.customer_id, 4 from customers x
           where c.n_npwp is null and x.tenant_id = v_tenant and x.company_norm = c.n_company
           order by x.created_at limit 1)) m
       order by m.o limit 1);

  if to_regclass('pg_temp.import_new_customer') is not null then
    drop table pg_temp.import_new_customer;
  end if;
  create temp table import_new_customer (
    customer_id uuid, n_npwp text, n_email text, n_phone text, n_company text) on commit drop;

  foreach k in array array['npwp', 'email', 'phone', 'company'] loop
    exit when not exists (select 1 from pg_temp.import_customer c where c.customer_id is null);
    with ins as (
      insert into customers (tenant_id, company_name, npwp, email, phone, address, city)
      select distinct on (case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                                 when 'phone' then c.n_phone else c.n_company end)
             v_tenant, c.company_name, c.npwp, c.email, c.phone, c.address, c.city
        from pg_temp.import_customer c
       where c.customer_id is null
         and case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                    when 'phone' then c.n_phone else c.n_company end is not null
       order by case k when 'npwp' then c.n_npwp when 'email' then c.n_email
                       when 'phone' then c.n_phone else c.n_company end, c.row_no
      on conflict (tenant_id, npwp_norm) do nothing
      returning customer_id, npwp_norm, email_norm, phone_norm, company_norm)
    insert into pg_temp.import_new_customer select * from ins;
    get diagnostics n = row_count;
    if k = 'npwp' then
      -- An NPWP a concurrent transaction inserted first: that customer.
      update pg_temp.import_customer c
         set customer_id = (select x.customer_id from customers x
                             where x.tenant_id = v_tenant and x.npwp_norm = c.n_npwp)
       where c.customer_id is null and c.n_npwp is not null;
    end if;
    continue when n = 0;
    analyze pg_temp.import_new_customer;
    update pg_temp.import_customer c
       set customer_id = m.customer_id
      from (select distinct on (u.row_no) u.row_no, u.customer_id
              from (select r.row_no, x.customer_id, 1 as o
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_npwp = r.n_npwp
                     where r.customer_id is null
                    union all
                    select r.row_no, x.customer_id, 2
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_email = r.n_email
                     where r.customer_id is null and (r.n_npwp is null or x.n_npwp is null)
                    union all
                    select r.row_no, x.customer_id, 3
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_phone = r.n_phone
                     where r.customer_id is null and (r.n_npwp is null or x.n_npwp is null)
                    union all
                    select r.row_no, x.customer_id, 4
                      from pg_temp.import_customer r join pg_temp.import_new_customer x on x.n_company = r.n_company
                     where r.customer_id is null and r.n_npwp is null) u
             order by u.row_no, u.o) m
     where c.row_no = m.row_no;
  end loop;

  -- Identifiers the customer lacks (only of customers the caller may read:
  -- customer_readable), from the first row of the batch that has
  -- them (an NPWP only when no other customer holds it); a customer just
  -- created from its only row has them all. (The rows' customer_id changed
  -- since the last analyze: analyze again, or the planner re-aggregates per
  -- customer.)
  analyze pg_temp.import_customer;
  with f as materialized (
    select c.customer_id,
           (array_agg(c.npwp order by c.row_no) filter (where c.npwp is not null))[1] as npwp,
           (array_agg(c.n_npwp order by c.row_no) filter (where c.npwp is not null))[1] as n_npwp,
           (array_agg(c.email order by c.row_no) filter (where c.email is not null))[1] as email,
           (array_agg(c.phone order by c.row_no) filter (where c.phone is not null))[1] as phone,
           (array_agg(c.address order by c.row_no) filter (where c.address is not null))[1] as address,
           (array_agg(c.city order by c.row_no) filter (where c.city is not null))[1] as city
      from pg_temp.import_customer c
     where c.customer_id is not null
     group by c.customer_id
    having count(*) > 1
        or not exists (select 1 from pg_temp.import_new_customer y where y.customer_id = c.customer_id))
  update customers x
     set npwp = coalesce(x.npwp, case when not exists (select 1 from customers o
                                                        where o.tenant_id = v_tenant and o.npwp_norm = f.n_npwp)
                                      then f.npwp end),
         email = coalesce(x.email, f.email),
         phone = coalesce(x.phone, f.phone),
         address = coalesce(x.address, f.address),
         city = coalesce(x.city, f.city)
    from f
   where x.tenant_id = v_tenant and x.customer_id = f.customer_id
     and customer_readable(v_scope, x.created_by, x.customer_id)
     and ((x.npwp is null and f.npwp is not null) or (x.email is null and f.email is not null)
          or (x.phone is null and f.phone is not null) or (x.address is null and f.address is not null)
          or (x.city is null and f.city is not null));
end
$$;

create or replace function import_apply_customers(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
begin
  if to_regclass('pg_temp.import_customer') is not null then
    drop table pg_temp.import_customer;
  end if;
  create temp table import_customer on commit drop as
  select b.row_no,
         import_cell(b.d, 'company_name') as company_name, import_cell(b.d, 'npwp') as npwp,
         import_cell(b.d, 'email') as email, import_cell(b.d, 'phone') as phone,
         import_cell(b.d, 'address') as address, import_cell(b.d, 'city') as city,
         bizos.norm_npwp(import_cell(b.d, 'npwp')) as n_npwp, bizos.norm_email(import_cell(b.d, 'email')) as n_email,
         bizos.norm_phone(import_cell(b.d, 'phone')) as n_phone, bizos.norm_company(import_cell(b.d, 'company_name')) as n_company,
         null::uuid as customer_id
    from pg_temp.import_batch b
   where b.err_field is null and (only_row is null or b.row_no = only_row);
  perform import_resolve_customers(v_tenant);
  -- A company that is already a customer the uploader may not read is
  -- neither duplicated nor changed nor shown: the row is an error.
  update pg_temp.import_batch b
     set target_id = case when v.readable then c.customer_id end,
         err_field = case when not v.readable then 'row' end,
         err_msg = case when not v.readable
                        then 'row: this company is already a customer outside your scope; nothing was changed' end
    from pg_temp.import_customer c
    join customers x on x.tenant_id = v_tenant and x.customer_id = c.customer_id
    cross join lateral (select customer_readable(customer_scope(), x.created_by, x.customer_id) as readable) v
   where c.row_no = b.row_no;
end
$$;

create or replace function import_validate_leads(v_tenant uuid) returns void
language plpgsql
as $$
declare
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_may_assign boolean := has_permission('lead.assign');
  v_may_update boolean := has_permission('lead.update');
  v_team uuid[] := my_team_ids();
begin
  update pg_temp.import_batch b
     set (err_field, err_msg) = (
       select v.f, v.f || ': ' || v.p
         from (select 1) as one
         left join lateral (select p.user_id from profiles p
                             where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'sales_owner_email'))
                               and p.active and p.app_role in ('salesperson', 'sales_manager')) o on true
         left join lateral (select x.lead_id, x.lead_no, x.sales_owner_user_id, x.created_by, x.handed_over from leads x
                             where x.tenant_id = v_tenant and x.external_ref = import_cell(b.d, 'external_ref')) l on true
         cross join lateral (values
           (1, 'external_ref',
            coalesce(import_problem_text(import_cell(b.d, 'external_ref'), true, 100),
                     case when import_cell(b.d, 'external_ref') ~ '[[:cntrl:]]' then 'must not contain control characters' end)),
           (2, 'channel',
            case when import_cell(b.d, 'channel') is null then 'required'
                 when lower(import_cell(b.d, 'channel')) not in ('website', 'whatsapp', 'referral', 'event', 'social_media',
                        'email', 'phone', 'walk_in', 'marketplace', 'partner', 'other')
                 then format('%L is not one of website, whatsapp, referral, event, social_media, email, phone, walk_in, marketplace, partner, other',
                             lower(import_cell(b.d, 'channel'))) end),
           (3, 'company_name',
            case when import_cell(b.d, 'company_name') is null
                      or bizos.norm_company(import_cell(b.d, 'company_name')) is null
                      or length(import_cell(b.d, 'company_name')) > 200
                 then 'required, up to 200 characters' end),
           (4, 'contact_name', import_problem_text(import_cell(b.d, 'contact_name'), false, 200)),
           (5, 'contact_email',
            case when import_cell(b.d, 'contact_email') is not null and bizos.norm_email(import_cell(b.d, 'contact_email')) is null
                 then format('%L is not a valid e-mail address', import_cell(b.d, 'contact_email')) end),
           (6, 'contact_phone',
            case when import_cell(b.d, 'contact_phone') is not null and bizos.norm_phone(import_cell(b.d, 'contact_phone')) is null
                 then format('%L is not a valid Indonesian phone number', import_cell(b.d, 'contact_phone')) end),
           (7, 'npwp',
            case when import_cell(b.d, 'npwp') is not null and bizos.norm_npwp(import_cell(b.d, 'npwp')) is null
                 then format('%L is not a valid NPWP', import_cell(b.d, 'npwp')) end),
           (8, 'city', import_problem_text(import_cell(b.d, 'city'), false, 200)),
           (9, 'notes', import_problem_text(import_cell(b.d, 'notes'), false, 2000)),
           (10, 'sales_owner_email',
            case when import_cell(b.d, 'sales_owner_email') is null then null
                 when o.user_id is null
                 then format('%s is not an active salesperson or sales manager of this tenant', import_cell(b.d, 'sales_owner_email'))
                 when v_role = 'salesperson' and o.user_id <> v_uid then 'a salesperson creates leads for themselves'
                 when v_role <> 'salesperson' and not v_may_assign then format('your role (%s) may not assign leads', v_role) end),
           (11, 'external_ref',
            case when l.lead_id is not null and not (v_may_update
                   and (v_role in ('super_admin', 'marketing_manager')
                        or l.sales_owner_user_id = any (v_team) or (l.created_by = any (v_team) and not l.handed_over)))
                 then format('lead %s already has this external_ref and is not yours to update', l.lead_no) end)
         ) v(i, f, p)
        where v.p is not null
        order by v.i limit 1)
   where b.err_field is null;
end
$$;

create or replace function import_apply_leads(v_tenant uuid, v_import uuid, only_row integer) returns void
language plpgsql
as $$
declare
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_scope text := customer_scope();
begin
  if to_regclass('pg_temp.import_lead') is not null then
    drop table pg_temp.import_lead;
  end if;
  create temp table import_lead on commit drop as
  select b.row_no,
         import_cell(b.d, 'external_ref') as external_ref,
         lower(import_cell(b.d, 'channel')) as channel,
         import_cell(b.d, 'company_name') as company_name,
         import_cell(b.d, 'contact_name') as contact_name,
         import_cell(b.d, 'contact_email') as contact_email,
         import_cell(b.d, 'contact_phone') as contact_phone,
         import_cell(b.d, 'npwp') as npwp,
         import_cell(b.d, 'city') as city,
         import_cell(b.d, 'notes') as notes,
         case when v_role = 'salesperson' then v_uid
              else (select p.user_id from profiles p
                     where p.tenant_id = v_tenant and p.email = lower(import_cell(b.d, 'sales_owner_email'))) end as owner,
         null::uuid as customer_id,
         null::uuid as prospect_id,
         false as handed_over
    from pg_temp.import_batch b
   where b.err_field is null and (only_row is null or b.row_no = only_row);

  -- New leads: the first row of each external_ref not known yet.
  if to_regclass('pg_temp.import_customer') is not null then
    drop table pg_temp.import_customer;
  end if;
  create temp table import_customer on commit drop as
  select distinct on (l.external_ref)
         l.row_no, l.company_name, l.npwp, l.contact_email as email, l.contact_phone as phone,
         null::text as address, l.city,
         bizos.norm_npwp(l.npwp) as n_npwp, bizos.norm_email(l.contact_email) as n_email,
         bizos.norm_phone(l.contact_phone) as n_phone, bizos.norm_company(l.company_name) as n_company,
         null::uuid as customer_id
    from pg_temp.import_lead l
   where not exists (select 1 from leads x where x.tenant_id = v_tenant and x.external_ref = l.external_ref)
   order by l.external_ref, l.row_no;
  perform import_resolve_customers(v_tenant);
  update pg_temp.import_lead l set customer_id = c.customer_id
    from pg_temp.import_customer c where c.row_no = l.row_no;

  -- The handover rule of crm_create_lead_bundle: a customer the uploader may
  -- not read keeps its owner, who gets the lead (none: unassigned).
  update pg_temp.import_lead l
     set handed_over = true, owner = o.owner_user_id
    from customers x
    left join lateral customer_current_owner(x.customer_id) o on true
   where l.customer_id is not null and x.tenant_id = v_tenant and x.customer_id = l.customer_id
     and not customer_readable(v_scope, x.created_by, x.customer_id);

  -- Prospects as find_or_create_prospect: one per customer and owner.
  insert into prospects (tenant_id, customer_id, owner_user_id)
  select distinct v_tenant, l.customer_id, l.owner from pg_temp.import_lead l where l.customer_id is not null
  on conflict (tenant_id, customer_id, owner_user_id) do nothing;
  update pg_temp.import_lead l set prospect_id = p.prospect_id
    from prospects p
   where l.customer_id is not null and p.tenant_id = v_tenant and p.customer_id = l.customer_id
     and p.owner_user_id is not distinct from l.owner;

  insert into leads (tenant_id, channel, status, company_name, contact_name, contact_email, contact_phone,
                     npwp, city, notes, customer_id, prospect_id, sales_owner_user_id, assigned_at, external_ref,
                     handed_over)
  select v_tenant, l.channel, case when l.owner is null then 'NEW' else 'ASSIGNED' end, l.company_name,
         l.contact_name, l.contact_email, l.contact_phone, l.npwp, l.city, l.notes,
         l.customer_id, l.prospect_id, l.owner, case when l.owner is not null then now() end, l.external_ref,
         l.handed_over
    from pg_temp.import_lead l
   where l.customer_id is not null
   order by l.row_no
  on conflict (tenant_id, external_ref) do nothing;

  -- A known external_ref: the contact fields a lead editor may change, from
  -- the last row of the batch with that reference (as if sent in order).
  update leads x
     set channel = u.channel, contact_name = u.contact_name, contact_email = u.contact_email,
         contact_phone = u.contact_phone, city = coalesce(u.city, x.city), notes = coalesce(u.notes, x.notes)
    from (select distinct on (l.external_ref) l.* from pg_temp.import_lead l
           order by l.external_ref, l.row_no desc) u
   where x.tenant_id = v_tenant and x.external_ref = u.external_ref
     and (x.channel, x.contact_name, x.contact_email, x.contact_phone, x.city, x.notes)
         is distinct from (u.channel, u.contact_name, u.contact_email, u.contact_phone,
                           coalesce(u.city, x.city), coalesce(u.notes, x.notes));

  update pg_temp.import_batch b set target_id = x.lead_id
    from pg_temp.import_lead l
    join leads x on x.tenant_id = v_tenant and x.external_ref = l.external_ref
   where l.row_no = b.row_no;
end
$$;

-- ---------------------------------------------------------------- pins
-- CREATE OR REPLACE resets a function's SET clauses: pin the replaced
-- SECURITY DEFINER functions (and the import pieces) again.
select pin_search_path(f::regprocedure)
  from unnest(array[
    'crm_assign_lead(uuid, uuid)', 'import_create(jsonb)',
    'import_resolve_customers(uuid)', 'import_apply_customers(uuid, uuid, integer)',
    'import_validate_leads(uuid)', 'import_apply_leads(uuid, uuid, integer)']) f;
revoke execute on function crm_assign_lead(uuid, uuid), import_create(jsonb) from public;
grant execute on function crm_assign_lead(uuid, uuid), import_create(jsonb) to bizos_authenticated;
