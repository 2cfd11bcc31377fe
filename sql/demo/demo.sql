-- Demo data for `scripts/dev up`: one tenant ("demo") with 20 users in
-- teams and a year of business — thousands of leads (deduplicated
-- customers, prospects, RFQs), tickets with messages, invoices and payments,
-- marketing spend — created through the same RPCs users call, acting as
-- those users. Not a migration: production databases never get it.
-- Idempotent: a tenant that already has leads is left alone.
--
-- The integration tests call demo.seed(slug, name, scale) with a small
-- scale to fill a second tenant.

create schema if not exists demo;

create or replace function demo.act_as(p_tenant uuid, p_user uuid) returns void
language sql as $$
  select set_config('request.jwt.claims',
    (select json_build_object('sub', p.user_id, 'tenant_id', p.tenant_id, 'app_role', p.app_role)::text
       from profiles p where p.tenant_id = p_tenant and p.user_id = p_user), true)
$$;

create or replace function demo.pick(arr anyarray) returns anyelement
language sql volatile as $$ select arr[1 + floor(random() * array_length(arr, 1))::int] $$;

create or replace function demo.digits(n int) returns text
language sql volatile as $$
  select string_agg(floor(random() * 10)::int::text, '') from generate_series(1, n)
$$;

create or replace function demo.npwp() returns text
language sql volatile as $$
  select format('%s.%s.%s.%s-%s.000', '0' || demo.digits(1), demo.digits(3), demo.digits(3), demo.digits(1), demo.digits(3))
$$;

create or replace function demo.phone() returns text
language sql volatile as $$
  select demo.pick(array['0812', '0813', '0821', '0852', '0857', '0878', '0896']) || '-' || demo.digits(4) || '-' || demo.digits(4)
$$;

create or replace function demo.person() returns text
language sql volatile as $$
  select demo.pick(array['Agus', 'Budi', 'Citra', 'Dewi', 'Eko', 'Fajar', 'Gita', 'Hadi', 'Indah', 'Joko', 'Kartika',
                         'Lestari', 'Made', 'Nur', 'Putri', 'Rahmat', 'Sari', 'Taufik', 'Wahyu', 'Yanti', 'Rizky', 'Ayu'])
      || ' ' ||
         demo.pick(array['Santoso', 'Wijaya', 'Saputra', 'Hidayat', 'Nugroho', 'Kurniawan', 'Siregar', 'Simanjuntak',
                         'Lubis', 'Setiawan', 'Pratama', 'Halim', 'Gunawan', 'Hartono', 'Wibowo', 'Susanto'])
$$;

create or replace function demo.company() returns text
language sql volatile as $$
  select demo.pick(array['PT', 'PT', 'PT', 'CV', 'UD', 'PT']) || ' ' ||
         demo.pick(array['Maju', 'Jaya', 'Sinar', 'Karya', 'Mitra', 'Bumi', 'Cahaya', 'Sumber', 'Prima', 'Anugerah',
                         'Sentosa', 'Mega', 'Tunas', 'Berkah', 'Sukses', 'Global', 'Indo', 'Nusa']) || ' ' ||
         demo.pick(array['Abadi', 'Makmur', 'Sejahtera', 'Mandiri', 'Perkasa', 'Lestari', 'Utama', 'Sentral', 'Raya',
                         'Bersama', 'Gemilang', 'Nusantara', 'Pratama', 'Santosa']) || ' ' ||
         demo.pick(array['Logistik', 'Ekspres', 'Cargo', 'Trading', 'Industri', 'Distribusi', 'Retail', 'Farma',
                         'Elektronik', 'Tekstil', 'Agro', 'Kimia', 'Plastik', 'Furniture'])
         || case when random() < 0.1 then ' Tbk' else '' end
$$;

create or replace function demo.seed(p_slug text, p_name text, p_scale numeric default 1) returns void
language plpgsql as $$
declare
  v_tenant uuid;
  v_domain text := p_slug || '.bizos.test';
  v_users uuid[];
  v_marketing uuid[];
  v_managers uuid[];
  v_sales uuid[];
  v_ops uuid[];
  v_finance uuid[];
  v_lead jsonb;
  v_companies text[] := '{}';
  v_npwps text[] := '{}';
  r record;
  i int;
  v_company text;
  v_npwp text;
  v_actor uuid;
  v_out jsonb;
  v_ticket jsonb;
  v_invoice jsonb;
  v_stage text;
  v_amount numeric;
  v_stages text[] := array['CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON'];
begin
  insert into tenants (slug, name, tier, region) values (p_slug, p_name, 'shared', 'id-jakarta')
  on conflict (slug) do nothing;
  select tenant_id into v_tenant from tenants where slug = p_slug;
  if exists (select 1 from leads where tenant_id = v_tenant) then
    return;
  end if;

  -- 20 users: managers first so their teams can name them.
  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
  select v_tenant, gen_random_uuid(), u.email || '@' || v_domain, u.full_name, u.app_role, u.dept_code
    from (values
      ('admin', 'Andi Pratama', 'super_admin', null),
      ('direktur', 'Budi Santoso', 'director', 'BOD'),
      ('marketing.lead', 'Citra Lestari', 'marketing_manager', 'MKT'),
      ('marketing.digital', 'Rizky Saputra', 'marketing_manager', 'MKT'),
      ('sales.jakarta', 'Dewi Kartika Sari', 'sales_manager', 'SLS'),
      ('sales.surabaya', 'Hendra Gunawan', 'sales_manager', 'SLS'),
      ('sales.medan', 'Rahmat Siregar', 'sales_manager', 'SLS'),
      ('ops.jakarta', 'Eko Nugroho', 'ops', 'OPS-JKT'),
      ('ops.surabaya', 'Fitri Handayani', 'ops', 'OPS-SBY'),
      ('finance', 'Gita Permatasari', 'finance', 'FIN'),
      ('finance.ar', 'Yanti Susanto', 'finance', 'FIN')
    ) as u(email, full_name, app_role, dept_code)
  on conflict (tenant_id, email) do nothing;

  insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code, manager_user_id)
  select v_tenant, gen_random_uuid(), u.email || '@' || v_domain, u.full_name, 'salesperson', 'SLS', m.user_id
    from (values
      ('hendra.wijaya', 'Hendra Wijaya', 'sales.jakarta'), ('indah.puspita', 'Indah Puspitasari', 'sales.jakarta'),
      ('joko.susilo', 'Joko Susilo', 'sales.jakarta'), ('kartika.halim', 'Kartika Halim', 'sales.surabaya'),
      ('made.wibowo', 'Made Wibowo', 'sales.surabaya'), ('nur.hidayat', 'Nur Hidayat', 'sales.surabaya'),
      ('putri.lubis', 'Putri Lubis', 'sales.medan'), ('taufik.simanjuntak', 'Taufik Simanjuntak', 'sales.medan'),
      ('wahyu.setiawan', 'Wahyu Setiawan', 'sales.medan')
    ) as u(email, full_name, manager)
    join profiles m on m.tenant_id = v_tenant and m.email = u.manager || '@' || v_domain
  on conflict (tenant_id, email) do nothing;

  select array_agg(user_id order by email) filter (where app_role = 'marketing_manager'),
         array_agg(user_id order by email) filter (where app_role = 'sales_manager'),
         array_agg(user_id order by email) filter (where app_role = 'salesperson'),
         array_agg(user_id order by email) filter (where app_role = 'ops'),
         array_agg(user_id order by email) filter (where app_role = 'finance')
    into v_marketing, v_managers, v_sales, v_ops, v_finance
    from profiles where tenant_id = v_tenant;

  -- Leads through crm_create_lead_bundle: a quarter repeat a known company
  -- (dedup by NPWP), 15% ask for a tariff (RFQ ticket for ops).
  for i in 1 .. greatest(1, round(3000 * p_scale))::int loop
    if i > 10 and random() < 0.25 then
      v_company := v_companies[1 + floor(random() * array_length(v_companies, 1))::int];
      v_npwp := v_npwps[array_position(v_companies, v_company)];
    else
      v_company := demo.company();
      v_npwp := case when random() < 0.8 then demo.npwp() end;
      v_companies := v_companies || v_company;
      v_npwps := v_npwps || v_npwp;
    end if;
    v_actor := case when random() < 0.7 then demo.pick(v_marketing) else demo.pick(v_sales) end;
    perform demo.act_as(v_tenant, v_actor);
    v_lead := crm_create_lead_bundle(jsonb_strip_nulls(jsonb_build_object(
      'channel', demo.pick(array['website', 'whatsapp', 'referral', 'event', 'social_media', 'email', 'phone', 'marketplace']),
      'company_name', v_company,
      'npwp', v_npwp,
      'contact_name', demo.person(),
      'contact_phone', demo.phone(),
      'city', demo.pick(array['Jakarta', 'Surabaya', 'Medan', 'Bandung', 'Semarang', 'Makassar', 'Bekasi', 'Tangerang']),
      'rfq', case when random() < 0.15 then jsonb_build_object(
               'origin', demo.pick(array['Jakarta', 'Surabaya', 'Medan', 'Batam']),
               'destination', demo.pick(array['Makassar', 'Balikpapan', 'Jayapura', 'Denpasar', 'Pontianak']),
               'commodity', demo.pick(array['electronics', 'textiles', 'furniture', 'frozen food', 'spare parts']),
               'weight_kg', round((random() * 5000 + 50)::numeric, 1),
               'dept_target', demo.pick(array['OPS-JKT', 'OPS-SBY'])) end)));
  end loop;

  -- Handover: sales managers assign 70% of the unassigned leads in their team.
  for r in select l.lead_id from leads l where l.tenant_id = v_tenant and l.sales_owner_user_id is null loop
    continue when random() > 0.7;
    v_actor := demo.pick(v_managers);
    perform demo.act_as(v_tenant, v_actor);
    begin
      perform crm_assign_lead(r.lead_id,
        (select p.user_id from profiles p where p.tenant_id = v_tenant and p.manager_user_id = v_actor
          order by random() limit 1));
    exception when insufficient_privilege then
      -- The customer is another team's (issue 11 §3): it stays with its owner.
      null;
    end;
  end loop;

  -- Pipelines move on.
  for r in select p.prospect_id, p.owner_user_id from prospects p
            where p.tenant_id = v_tenant and p.owner_user_id is not null loop
    perform demo.act_as(v_tenant, r.owner_user_id);
    foreach v_stage in array v_stages[1 : floor(random() * 6)::int] loop
      perform prospect_change_stage(r.prospect_id, v_stage);
    end loop;
    if random() < 0.1 and (select p.stage from prospects p where p.tenant_id = v_tenant
                             and p.prospect_id = r.prospect_id) <> 'WON' then
      perform prospect_change_stage(r.prospect_id, 'LOST');
    end if;
  end loop;

  -- Tickets: requests and complaints from sales and finance; ops answer
  -- and work them.
  for i in 1 .. greatest(1, round(1500 * p_scale))::int loop
    v_actor := demo.pick(v_sales || v_finance);
    perform demo.act_as(v_tenant, v_actor);
    v_ticket := ticket_create(jsonb_build_object(
      'ticket_type', demo.pick(array['general_request', 'complaint', 'service_request']),
      'subject', demo.pick(array['Late delivery', 'Damaged goods', 'Invoice copy', 'Pickup schedule',
                                 'Customs documents', 'Rate confirmation', 'Address change']),
      'priority', demo.pick(array['low', 'normal', 'normal', 'high', 'urgent']),
      'dept_target', demo.pick(array['OPS-JKT', 'OPS-SBY', 'FIN']),
      -- A customer the actor may read (as through the API).
      'related_customer_id', (select c.customer_id from customers c where c.tenant_id = v_tenant
                                 and customer_readable(customer_scope(), c.created_by, c.customer_id)
                               order by random() limit 1)));
    if random() < 0.85 then
      perform demo.act_as(v_tenant,
        coalesce((select p.user_id from profiles p join tickets t on t.tenant_id = p.tenant_id
                   where t.ticket_id = (v_ticket->>'ticket_id')::uuid
                     and p.dept_code = t.dept_target order by random() limit 1), demo.pick(v_finance)));
      perform ticket_add_message((v_ticket->>'ticket_id')::uuid, 'Terima kasih, kami sedang menindaklanjuti.');
      if random() < 0.8 then
        perform ticket_transition((v_ticket->>'ticket_id')::uuid, 'IN_PROGRESS');
        if random() < 0.75 then
          perform ticket_transition((v_ticket->>'ticket_id')::uuid, 'RESOLVED');
          if random() < 0.6 then
            perform ticket_transition((v_ticket->>'ticket_id')::uuid, 'CLOSED');
          end if;
        end if;
      end if;
    end if;
  end loop;

  -- Invoices for customers in somebody's pipeline, over the last year;
  -- most are paid, some partly, some overdue.
  for i in 1 .. greatest(1, round(1200 * p_scale))::int loop
    perform demo.act_as(v_tenant, demo.pick(v_finance));
    v_amount := round((random() * 95000000 + 5000000)::numeric, -3);
    v_invoice := invoice_create(jsonb_build_object(
      'customer_id', (select p.customer_id from prospects p where p.tenant_id = v_tenant
                       and p.owner_user_id is not null order by random() limit 1),
      'issue_date', current_date - floor(random() * 365)::int,
      'terms_days', demo.pick(array[14, 30, 30, 45, 60]),
      'subtotal', v_amount,
      -- PPN: 12% of a tax base of 11/12 of the price = 11% for non-luxury goods.
      'tax', round(v_amount * 0.11, 0)));
    if random() < 0.75 then
      perform payment_record(jsonb_build_object(
        'invoice_id', v_invoice->>'invoice_id',
        'paid_on', least(current_date, (v_invoice->>'due_date')::date - 10 + floor(random() * 40)::int),
        'amount', case when random() < 0.85 then (v_invoice->>'total')::numeric
                       else round((v_invoice->>'total')::numeric * 0.5, 0) end,
        'method', 'bank_transfer',
        'reference', 'TRF-' || demo.digits(10)));
    end if;
  end loop;

  -- Marketing spend per channel per week, and campaign events.
  perform demo.act_as(v_tenant, v_marketing[1]);
  insert into marketing_spend (tenant_id, channel, spend_date, amount, campaign)
  select v_tenant, ch, current_date - 7 * w, round((random() * 9000000 + 1000000)::numeric, -3), 'Always on ' || ch
    from generate_series(0, 51) w, unnest(array['website', 'social_media', 'event', 'marketplace']) ch;
  insert into marketing_activity_events (tenant_id, channel, event_type, campaign, occurred_at, reach, clicks)
  select v_tenant, demo.pick(array['social_media', 'website', 'email', 'event']),
         demo.pick(array['post', 'ad', 'email_blast', 'webinar', 'expo']), 'Q' || (1 + g % 4) || ' campaign',
         now() - (floor(random() * 365) || ' days')::interval, floor(random() * 50000)::int, floor(random() * 3000)::int
    from generate_series(1, greatest(1, round(300 * p_scale))::int) g;

  -- KPI: monthly revenue and activity targets for every salesperson (set by
  -- their manager), and weekly MANUAL actuals for marketing and sales.
  for r in select p.user_id, p.manager_user_id from profiles p
            where p.tenant_id = v_tenant and p.app_role = 'salesperson' loop
    perform demo.act_as(v_tenant, r.manager_user_id);
    for i in 0 .. 2 loop
      perform kpi_target_create(jsonb_build_object(
        'metric_key', 'revenue', 'assignee_user_id', r.user_id,
        'period_month', to_char(date_trunc('month', current_date) - make_interval(months => i), 'YYYY-MM'),
        'target_value', demo.pick(array[250000000, 300000000, 400000000])));
      perform kpi_target_create(jsonb_build_object(
        'metric_key', 'sales_activities', 'assignee_user_id', r.user_id,
        'period_month', to_char(date_trunc('month', current_date) - make_interval(months => i), 'YYYY-MM'),
        'target_value', demo.pick(array[40, 60, 80])));
    end loop;
    perform demo.act_as(v_tenant, r.user_id);
    for i in 0 .. 11 loop
      perform kpi_entry_create(jsonb_build_object(
        'metric_key', 'quotations_sent', 'assignee_user_id', r.user_id,
        'entry_date', current_date - 7 * i, 'value', floor(random() * 8)::int));
    end loop;
  end loop;
  perform demo.act_as(v_tenant, v_marketing[1]);
  for i in 0 .. 11 loop
    perform kpi_entry_create(jsonb_build_object(
      'metric_key', 'mql_count', 'assignee_user_id', v_marketing[1],
      'entry_date', current_date - 7 * i, 'value', floor(random() * 40 + 10)::int));
  end loop;

  perform set_config('request.jwt.claims', '', true);

  -- Spread the year: everything above happened "now"; move leads and
  -- tickets back in time, keeping each ticket's response and resolution
  -- times realistic (minutes to days). Triggers are off for this rewrite
  -- only (the stamps must not be re-stamped).
  alter table leads disable trigger user;
  update leads set created_at = now() - (random() * 365 || ' days')::interval where tenant_id = v_tenant;
  alter table leads enable trigger user;

  alter table tickets disable trigger user;
  update tickets t
     set created_at = s.created,
         first_response_at = case when t.first_response_at is not null then s.created + s.response end,
         resolved_at = case when t.resolved_at is not null then s.created + s.response + s.resolution end,
         closed_at = case when t.closed_at is not null then s.created + s.response + s.resolution + interval '1 day' end
    from (select ticket_id,
                 now() - (random() * 120 + 3 || ' days')::interval as created,
                 (15 + random() * random() * 1400 || ' minutes')::interval as response,
                 (1 + random() * 96 || ' hours')::interval as resolution
            from tickets where tenant_id = v_tenant) s
   where t.tenant_id = v_tenant and t.ticket_id = s.ticket_id;
  alter table tickets enable trigger user;
  alter table sla_events disable trigger user;
  update sla_events e
     set occurred_at = case e.event_type
                         when 'FIRST_RESPONSE' then t.first_response_at
                         when 'RESOLVED' then coalesce(t.resolved_at, t.created_at)
                         when 'CLOSED' then coalesce(t.closed_at, t.created_at)
                         else t.created_at + (random() * 60 || ' minutes')::interval end
    from tickets t
   where e.tenant_id = v_tenant and t.tenant_id = e.tenant_id and t.ticket_id = e.ticket_id;
  alter table sla_events enable trigger user;
end
$$;

