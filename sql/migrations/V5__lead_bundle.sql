-- CRM-1 (seed 004 §3.2): one call creates a lead with its customer
-- (deduplicated), its prospect and, when asked, the RFQ ticket for ops
-- (inquiry_tariff, masked for ops, linked to the lead and customer). One
-- transaction: any invalid field aborts the whole bundle.
--
-- payload: {channel, company_name, contact_name?, contact_email?,
--           contact_phone?, npwp?, city?, notes?, sales_owner_user_id?,
--           rfq?: {origin, destination, commodity, weight_kg?, volume_cbm?,
--                  dept_target, priority?, subject?, description?}}
-- returns: {lead_id, lead_no, customer_id, prospect_id, ticket_id?,
--           ticket_no?, customer_created, matched_on, candidates}
create function crm_create_lead_bundle(payload jsonb) returns jsonb
language plpgsql security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_role text := bizos.app_role();
  v_owner uuid;
  v_channel text := lower(nullif(btrim(payload->>'channel'), ''));
  v_company text := nullif(btrim(payload->>'company_name'), '');
  v_email text := nullif(btrim(payload->>'contact_email'), '');
  v_phone text := nullif(btrim(payload->>'contact_phone'), '');
  v_npwp text := nullif(btrim(payload->>'npwp'), '');
  v_rfq jsonb := payload->'rfq';
  v_customer jsonb;
  v_customer_id uuid;
  v_prospect_id uuid;
  v_lead leads%rowtype;
  v_ticket jsonb;
begin
  perform require_permission('lead.create');
  if payload is null or jsonb_typeof(payload) <> 'object' then
    raise exception using errcode = 'P0001', column = 'payload', message = 'payload: a JSON object is required';
  end if;
  if v_channel is null then
    raise exception using errcode = 'P0001', column = 'channel', message = 'channel: required';
  end if;
  if v_channel not in ('website', 'whatsapp', 'referral', 'event', 'social_media', 'email', 'phone',
                       'walk_in', 'marketplace', 'partner', 'other') then
    raise exception using errcode = 'P0001', column = 'channel',
      message = format('channel: %L is not one of website, whatsapp, referral, event, social_media, email, phone, walk_in, marketplace, partner, other', v_channel);
  end if;
  if v_company is null or bizos.norm_company(v_company) is null or length(v_company) > 200 then
    raise exception using errcode = 'P0001', column = 'company_name', message = 'company_name: required, up to 200 characters';
  end if;
  if v_email is not null and bizos.norm_email(v_email) is null then
    raise exception using errcode = 'P0001', column = 'contact_email', message = format('contact_email: %L is not a valid e-mail address', v_email);
  end if;
  if v_phone is not null and bizos.norm_phone(v_phone) is null then
    raise exception using errcode = 'P0001', column = 'contact_phone', message = format('contact_phone: %L is not a valid Indonesian phone number', v_phone);
  end if;
  if v_npwp is not null and bizos.norm_npwp(v_npwp) is null then
    raise exception using errcode = 'P0001', column = 'npwp', message = format('npwp: %L is not a valid NPWP', v_npwp);
  end if;
  begin
    v_owner := nullif(btrim(payload->>'sales_owner_user_id'), '')::uuid;
  exception when invalid_text_representation then
    raise exception using errcode = 'P0001', column = 'sales_owner_user_id', message = 'sales_owner_user_id: not a UUID';
  end;
  if v_role = 'salesperson' then
    if v_owner is not null and v_owner <> bizos.uid() then
      raise exception using errcode = '42501', column = 'sales_owner_user_id',
        message = 'a salesperson creates leads for themselves';
    end if;
    v_owner := bizos.uid();
  elsif v_owner is not null then
    perform require_permission('lead.assign');
  end if;
  if v_rfq is not null and jsonb_typeof(v_rfq) <> 'null' then
    if jsonb_typeof(v_rfq) <> 'object' then
      raise exception using errcode = 'P0001', column = 'rfq', message = 'rfq: an object is required';
    end if;
    if nullif(btrim(v_rfq->>'dept_target'), '') is null then
      raise exception using errcode = 'P0001', column = 'rfq.dept_target',
        message = 'rfq.dept_target: required (the ops department that quotes, e.g. OPS-JKT)';
    end if;
  else
    v_rfq := null;
  end if;

  v_customer := find_or_create_customer(v_company, v_npwp, v_email, v_phone, payload->>'city');
  v_customer_id := (v_customer->>'customer_id')::uuid;
  v_prospect_id := find_or_create_prospect(v_customer_id, v_owner);

  insert into leads (tenant_id, channel, status, company_name, contact_name, contact_email, contact_phone,
                     npwp, city, notes, customer_id, prospect_id, sales_owner_user_id, assigned_at)
  values (v_tenant, v_channel, case when v_owner is null then 'NEW' else 'ASSIGNED' end, v_company,
          nullif(btrim(payload->>'contact_name'), ''), v_email, v_phone, v_npwp,
          nullif(btrim(payload->>'city'), ''), nullif(btrim(payload->>'notes'), ''),
          v_customer_id, v_prospect_id, v_owner, case when v_owner is not null then now() end)
  returning * into v_lead;

  if v_rfq is not null then
    v_ticket := ticket_create(jsonb_strip_nulls(jsonb_build_object(
      'ticket_type', 'inquiry_tariff',
      'subject', coalesce(nullif(btrim(v_rfq->>'subject'), ''),
                          format('RFQ %s: %s → %s', v_lead.lead_no, v_rfq->>'origin', v_rfq->>'destination')),
      'description', v_rfq->>'description',
      'priority', coalesce(v_rfq->>'priority', 'normal'),
      'dept_target', btrim(v_rfq->>'dept_target'),
      'need_customer_masking', true,
      'related_lead_id', v_lead.lead_id,
      'related_customer_id', v_customer_id,
      'origin', v_rfq->>'origin',
      'destination', v_rfq->>'destination',
      'commodity', v_rfq->>'commodity',
      'weight_kg', v_rfq->'weight_kg',
      'volume_cbm', v_rfq->'volume_cbm',
      'contact_name', payload->>'contact_name',
      'contact_phone', v_phone,
      'contact_email', v_email,
      'company_name', v_company)));
    insert into sales_activities (tenant_id, owner_user_id, activity_type, source, customer_id, prospect_id, lead_id, summary)
    values (v_tenant, coalesce(v_owner, bizos.uid()), 'rfq_created', 'derived', v_customer_id, v_prospect_id,
            v_lead.lead_id, format('RFQ %s created from lead %s', v_ticket->>'ticket_no', v_lead.lead_no));
  end if;

  return jsonb_strip_nulls(jsonb_build_object(
    'lead_id', v_lead.lead_id, 'lead_no', v_lead.lead_no,
    'customer_id', v_customer_id, 'prospect_id', v_prospect_id,
    'ticket_id', v_ticket->'ticket_id', 'ticket_no', v_ticket->'ticket_no',
    'customer_created', (v_customer->'created'), 'matched_on', v_customer->'matched_on',
    'candidates', v_customer->'candidates'));
end
$$;
select pin_search_path('crm_create_lead_bundle(jsonb)');
revoke execute on function crm_create_lead_bundle(jsonb) from public;
grant execute on function crm_create_lead_bundle(jsonb) to bizos_authenticated;
