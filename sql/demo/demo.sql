-- Demo data for `scripts/dev up`: one tenant ("demo") with 20 users in
-- teams and a year of business — thousands of leads (deduplicated
-- customers, prospects, RFQs), tickets with messages, invoices and payments,
-- marketing spend — created through the same RPCs users call, acting as
-- those users. Not a migration: production databases never get it.
-- Idempotent: a tenant that already has leads is left alone.
--
-- The integration tests call demo.seed(slug, name, scale) with a small
-- scale to fill a second tenant. demo.check(slug) (at the end) is the
-- demo's self-check: `scripts/dev up` and tests/tests/suite/demo.rs run it.

create schema if not exists demo;

-- SET LOCAL rather than set_config(): on Citus only the command reaches
-- the workers (and PL/pgSQL, whose parameters Citus can plan).
create or replace function demo.act_as(p_tenant uuid, p_user uuid) returns void
language plpgsql as $$
declare
  v_claims text;
begin
  select json_build_object('sub', p.user_id, 'tenant_id', p.tenant_id, 'app_role', p.app_role)::text
    into v_claims
    from profiles p where p.tenant_id = p_tenant and p.user_id = p_user;
  execute format('set local request.jwt.claims = %L', coalesce(v_claims, ''));
end
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
  v_customer uuid;
  v_assignee uuid;
  v_related uuid;
  v_worker uuid;
  v_since date;
  -- The RPCs refuse dates after today; the earlier of the session's and the
  -- tenant's today is today for both.
  v_today date;
begin
  select tenant_id into v_tenant from tenants where slug = p_slug;
  if v_tenant is null then
    -- tenant_create: on Citus it seeds the tenant's defaults itself.
    v_tenant := tenant_create(p_slug, p_name);
    update tenants set region = 'id-jakarta' where tenant_id = v_tenant;
  end if;
  v_today := least(current_date, tenant_today(v_tenant));
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
    -- Arguments read first, in statements of their own: on Citus a call
    -- whose arguments read a distributed table is sent to the worker,
    -- where an RPC that writes may not run.
    select p.user_id into v_assignee from profiles p where p.tenant_id = v_tenant and p.manager_user_id = v_actor
     order by random() limit 1;
    begin
      perform crm_assign_lead(r.lead_id, v_assignee);
    exception when insufficient_privilege then
      -- The customer is another team's: it stays with its owner, and dedup
      -- opens no window onto it.
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

  -- Everything above happened at load time (now() is the transaction's
  -- start): spread the year of leads, handovers and pipelines over the
  -- past, before tickets and invoices are made for their customers.
  perform set_config('request.jwt.claims', '', true);
  -- Not on Citus: its updates set times with expressions Citus refuses in
  -- a distributed UPDATE (non-immutable ones in CASE); the data stays
  -- dated at load time there.
  if not citus_table('tenants') then
    perform demo.spread_crm(v_tenant);
  end if;

  -- Tickets: requests and complaints from sales and finance; ops answer
  -- and work them.
  for i in 1 .. greatest(1, round(1500 * p_scale))::int loop
    v_actor := demo.pick(v_sales || v_finance);
    perform demo.act_as(v_tenant, v_actor);
    -- A customer the actor may read (as through the API).
    select c.customer_id into v_related from customers c where c.tenant_id = v_tenant
       and customer_readable(customer_scope(), c.created_by, c.customer_id)
     order by random() limit 1;
    v_ticket := ticket_create(jsonb_build_object(
      'ticket_type', demo.pick(array['general_request', 'complaint', 'service_request']),
      'subject', demo.pick(array['Late delivery', 'Damaged goods', 'Invoice copy', 'Pickup schedule',
                                 'Customs documents', 'Rate confirmation', 'Address change']),
      'priority', demo.pick(array['low', 'normal', 'normal', 'high', 'urgent']),
      'dept_target', demo.pick(array['OPS-JKT', 'OPS-SBY', 'FIN']),
      'related_customer_id', v_related));
    if random() < 0.85 then
      select p.user_id into v_worker from profiles p join tickets t on t.tenant_id = p.tenant_id
       where t.tenant_id = v_tenant and t.ticket_id = (v_ticket->>'ticket_id')::uuid
         and p.dept_code = t.dept_target order by random() limit 1;
      perform demo.act_as(v_tenant, coalesce(v_worker, demo.pick(v_finance)));
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
    -- Issued some day between the customer's first lead and today.
    select p.customer_id, tenant_date(c.created_at, v_tenant) into v_customer, v_since
      from prospects p join customers c on c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
     where p.tenant_id = v_tenant and p.owner_user_id is not null order by random() limit 1;
    v_invoice := invoice_create(jsonb_build_object(
      'customer_id', v_customer,
      -- (A customer created today can be a day ahead of v_today when the
      -- tenant's date is ahead of the session's: never issued after v_today.)
      'issue_date', least(v_since, v_today) + floor(random() * (greatest(v_today - v_since, 0) + 1))::int,
      'terms_days', demo.pick(array[14, 30, 30, 45, 60]),
      'subtotal', v_amount,
      -- PPN: 12% of a tax base of 11/12 of the price = 11% for non-luxury goods.
      'tax', round(v_amount * 0.11, 0)));
    if random() < 0.75 then
      perform payment_record(jsonb_build_object(
        'invoice_id', v_invoice->>'invoice_id',
        'paid_on', least(v_today, (v_invoice->>'due_date')::date - 10 + floor(random() * 40)::int),
        'amount', case when random() < 0.85 then (v_invoice->>'total')::numeric
                       else round((v_invoice->>'total')::numeric * 0.5, 0) end,
        'method', 'bank_transfer',
        'reference', 'TRF-' || demo.digits(10)));
    end if;
  end loop;

  -- Taking back: an invoice of 20 days ago, 40% paid, a credit note for a
  -- tenth of it (a price correction) and half the payment refunded (a
  -- double transfer); a credit note on some of the open invoices.
  perform demo.act_as(v_tenant, demo.pick(v_finance));
  select p.customer_id into v_customer
    from prospects p join customers c on c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
   where p.tenant_id = v_tenant and p.owner_user_id is not null
   order by c.created_at limit 1;
  if v_customer is not null then
    v_invoice := invoice_create(jsonb_build_object(
      'customer_id', v_customer, 'issue_date', v_today - 20, 'terms_days', 30,
      'subtotal', 40000000, 'tax', 4400000));
    v_out := payment_record(jsonb_build_object(
      'invoice_id', v_invoice->>'invoice_id', 'paid_on', v_today - 10,
      'amount', round((v_invoice->>'total')::numeric * 0.4, 0), 'method', 'bank_transfer',
      'reference', 'TRF-' || demo.digits(10)));
    perform credit_note_create(jsonb_build_object(
      'invoice_id', v_invoice->>'invoice_id', 'issue_date', v_today - 5,
      'amount', round((v_invoice->>'total')::numeric * 0.1, 0), 'reason', 'Koreksi harga: diskon volume'));
    perform refund_record(jsonb_build_object(
      'payment_id', v_out->>'payment_id', 'refunded_on', v_today - 3,
      'amount', round((v_invoice->>'total')::numeric * 0.2, 0), 'reason', 'Transfer ganda dikembalikan'));
  end if;
  for r in select o.invoice_id, o.outstanding from v_invoice_outstanding o
            where o.tenant_id = v_tenant and o.outstanding > 0 and random() < 0.1 loop
    perform credit_note_create(jsonb_build_object(
      'invoice_id', r.invoice_id, 'amount', round(r.outstanding * 0.05, 0), 'reason', 'Retur sebagian'));
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

  -- A schedule (sql/api/schedules.sql), created by the tenant's admin:
  -- the nightly sweep of dead uploads at 02:00 tenant time.
  select p.user_id into v_actor from profiles p
   where p.tenant_id = v_tenant and p.app_role = 'super_admin' order by p.email limit 1;
  perform demo.act_as(v_tenant, v_actor);
  perform schedule_create('{"name": "Nightly upload sweep", "kind": "storage.sweep", "at": "02:00"}');

  perform set_config('request.jwt.claims', '', true);
  -- Tickets (the RFQs of the leads and the requests above) with their
  -- conversations, SLA events and lifecycle stamps, and invoices with their
  -- payments, get their times.
  if not citus_table('tenants') then
    perform demo.spread_tickets(v_tenant);
    perform demo.spread_receivables(v_tenant);
  end if;
end
$$;


-- ---------------------------------------------------------------- the timeline
-- demo.seed creates everything through the RPCs inside one transaction, so
-- every row, stamp and SLA event says "load time" (now() is the
-- transaction's start). The functions below give each business story its
-- own times in the past and move every row of the story together, keeping
-- the rules of the triggers: a lead before its handover, a customer before
-- its leads, a prospect before its stage changes, a ticket before its
-- messages and events, the first response at the first reply by someone
-- other than the creator, an invoice before its payments, nothing after
-- now. Only the timestamp triggers are switched off while a table is
-- rewritten: the audit triggers stay on, so the audit log records the
-- back-dating as the owner's UPDATEs after the RPCs' INSERTs (its chain
-- stays intact; nothing in it is edited).

-- A number in [0, 1) drawn from a row id and a salt: the same for every
-- statement of the rewrite, so a ticket's plan need not be stored.
create or replace function demo.frac(id uuid, salt text) returns double precision
language sql immutable as $$
  select ('x' || substr(md5(id::text || salt), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

-- Leads over the past year, each handover minutes to days after its lead;
-- customers from their first lead, prospects from their first lead (or
-- handover), stage changes hours to days apart, and the activities these
-- derived at load time at the times of what they record.
create or replace function demo.spread_crm(p_tenant uuid) returns void
language plpgsql as $$
declare
  v_now timestamptz := now();
  c_order constant text[] := array['NEW', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST'];
begin
  alter table leads disable trigger leads_stamp_timestamps;
  update leads l
     set created_at = s.at,
         assigned_at = case when l.assigned_at is not null then s.at + least(s.wait, (v_now - s.at) / 2) end,
         updated_at = case when l.assigned_at is not null then s.at + least(s.wait, (v_now - s.at) / 2) else s.at end
    from (select x.lead_id, v_now - random() * interval '365 days' as at,
                 (10 + random() * 4320) * interval '1 minute' as wait
            from leads x where x.tenant_id = p_tenant) s
   where l.tenant_id = p_tenant and l.lead_id = s.lead_id;
  alter table leads enable trigger leads_stamp_timestamps;

  alter table customers disable trigger customers_stamp_timestamps;
  update customers c set created_at = s.first_at, updated_at = s.last_at
    from (select l.customer_id, min(l.created_at) as first_at, max(l.created_at) as last_at
            from leads l where l.tenant_id = p_tenant group by l.customer_id) s
   where c.tenant_id = p_tenant and c.customer_id = s.customer_id;
  alter table customers enable trigger customers_stamp_timestamps;

  alter table prospects disable trigger prospects_stamp_timestamps;
  update prospects p
     set created_at = greatest(c.created_at, coalesce(
           (select min(coalesce(l.assigned_at, l.created_at)) from leads l
             where l.tenant_id = p.tenant_id and l.prospect_id = p.prospect_id), c.created_at))
    from customers c
   where p.tenant_id = p_tenant and c.tenant_id = p.tenant_id and c.customer_id = p.customer_id;
  alter table prospects enable trigger prospects_stamp_timestamps;

  -- The demo moves a pipeline forward only (then maybe to LOST): the order
  -- of a prospect's history is the order of its stages.
  alter table prospect_stage_history disable trigger prospect_stage_history_stamp_timestamps;
  update prospect_stage_history h
     set changed_at = s.at, created_at = s.at, updated_at = s.at
    from (select g.history_id,
                 g.p_at + make_interval(secs => extract(epoch from sum(g.gap) over w)
                   * least(1, 0.9 * extract(epoch from (v_now - g.p_at))
                                 / nullif(extract(epoch from sum(g.gap) over (partition by g.prospect_id)), 0))) as at
            from (select r.*, case when r.k = 1 then interval '0' else (60 + random() * 14340) * interval '1 minute' end as gap
                    from (select x.history_id, x.prospect_id, p.created_at as p_at,
                                 row_number() over (partition by x.prospect_id
                                                    order by x.from_stage is not null, array_position(c_order, x.to_stage)) as k
                            from prospect_stage_history x
                            join prospects p on p.tenant_id = x.tenant_id and p.prospect_id = x.prospect_id
                           where x.tenant_id = p_tenant) r) g
          window w as (partition by g.prospect_id order by g.k)) s
   where h.tenant_id = p_tenant and h.history_id = s.history_id;
  alter table prospect_stage_history enable trigger prospect_stage_history_stamp_timestamps;

  alter table prospects disable trigger prospects_stamp_timestamps;
  update prospects p
     set won_at = case when p.won_at is not null then s.won end,
         lost_at = case when p.lost_at is not null then s.lost end,
         updated_at = s.last_at
    from (select h.prospect_id, max(h.changed_at) as last_at,
                 max(h.changed_at) filter (where h.to_stage = 'WON') as won,
                 max(h.changed_at) filter (where h.to_stage = 'LOST') as lost
            from prospect_stage_history h where h.tenant_id = p_tenant group by h.prospect_id) s
   where p.tenant_id = p_tenant and p.prospect_id = s.prospect_id;
  alter table prospects enable trigger prospects_stamp_timestamps;

  alter table sales_activities disable trigger sales_activities_stamp_timestamps;
  update sales_activities a
     set occurred_at = s.at, created_at = s.at, updated_at = s.at
    from (select a2.activity_id,
                 case a2.activity_type
                   when 'rfq_created' then l.created_at
                   when 'lead_assigned' then l.assigned_at
                   else (select h.changed_at from prospect_stage_history h
                          where h.tenant_id = a2.tenant_id and h.prospect_id = a2.prospect_id
                            and a2.summary = format('Stage %s → %s', h.from_stage, h.to_stage)
                          order by h.changed_at limit 1)
                 end as at
            from sales_activities a2
            left join leads l on l.tenant_id = a2.tenant_id and l.lead_id = a2.lead_id
           where a2.tenant_id = p_tenant and a2.source = 'derived') s
   where a.tenant_id = p_tenant and a.activity_id = s.activity_id and s.at is not null;
  alter table sales_activities enable trigger sales_activities_stamp_timestamps;
end
$$;

-- Each ticket's plan: created (an RFQ with its lead; a request 3 to 123
-- days ago, after its customer), the reply minutes to a day later, work
-- started two minutes after the reply, resolved hours to days later,
-- closed a day after that; squeezed to end before now.
create or replace function demo.ticket_times(p_tenant uuid)
returns table (ticket_id uuid, created_at timestamptz, reply_at timestamptz, progress_at timestamptz,
               resolved_at timestamptz, closed_at timestamptz)
language plpgsql stable as $$
#variable_conflict use_column
begin
  return query
  with base as (
    select t.ticket_id,
           case when l.lead_id is not null and t.ticket_type = 'inquiry_tariff' then l.created_at
                else greatest(now() - (3 + demo.frac(t.ticket_id, 'created') * 120) * interval '1 day',
                              coalesce(greatest(l.created_at, c.created_at), '-infinity')
                                + least((1 + demo.frac(t.ticket_id, 'after') * 47) * interval '1 hour',
                                        (now() - coalesce(greatest(l.created_at, c.created_at), now())) / 2))
           end as created,
           (15 + demo.frac(t.ticket_id, 'r1') * demo.frac(t.ticket_id, 'r2') * 1400) * 60 as reply_s,
           (1 + demo.frac(t.ticket_id, 'resolution') * 96) * 3600 as work_s
      from tickets t
      left join leads l on l.tenant_id = t.tenant_id and l.lead_id = t.related_lead_id
      left join customers c on c.tenant_id = t.tenant_id and c.customer_id = t.related_customer_id
     where t.tenant_id = p_tenant
  ), fit as (
    select b.*, least(1, 0.9 * extract(epoch from (now() - b.created)) / (b.reply_s + 120 + b.work_s + 86400)) as f
      from base b
  )
  select f.ticket_id, f.created,
         f.created + make_interval(secs => f.f * f.reply_s),
         f.created + make_interval(secs => f.f * (f.reply_s + 120)),
         f.created + make_interval(secs => f.f * (f.reply_s + 120 + f.work_s)),
         f.created + make_interval(secs => f.f * (f.reply_s + 120 + f.work_s + 86400))
    from fit f;
end
$$;

-- Tickets, their messages, SLA events and stamps at the plan's times. The
-- first response is recomputed from the messages by the trigger's rule
-- (the first non-internal message by someone other than the creator).
create or replace function demo.spread_tickets(p_tenant uuid) returns void
language plpgsql as $$
begin
  create temp table if not exists demo_ticket_times on commit drop as
    select * from demo.ticket_times(p_tenant) limit 0;
  delete from demo_ticket_times;
  insert into demo_ticket_times select * from demo.ticket_times(p_tenant);

  alter table ticket_messages disable trigger ticket_messages_stamp_timestamps;
  update ticket_messages m
     set created_at = s.at, updated_at = s.at
    from (select m2.message_id,
                 p.reply_at + (row_number() over (partition by m2.ticket_id order by m2.created_at, m2.message_id) - 1)
                              * interval '3 minutes' as at
            from ticket_messages m2 join demo_ticket_times p on p.ticket_id = m2.ticket_id
           where m2.tenant_id = p_tenant) s
   where m.tenant_id = p_tenant and m.message_id = s.message_id;
  alter table ticket_messages enable trigger ticket_messages_stamp_timestamps;

  alter table tickets disable trigger tickets_stamp_timestamps;
  update tickets t
     set created_at = p.created_at,
         first_response_at = (select min(m.created_at) from ticket_messages m
                               where m.tenant_id = t.tenant_id and m.ticket_id = t.ticket_id and not m.internal
                                 and m.author_user_id is not null
                                 and (t.created_by is null or m.author_user_id <> t.created_by)),
         quoted_at = case when t.quoted_at is not null then p.resolved_at end,
         resolved_at = case when t.resolved_at is not null then p.resolved_at end,
         closed_at = case when t.closed_at is not null then p.closed_at end,
         cancelled_at = case when t.cancelled_at is not null then p.progress_at end,
         updated_at = greatest(p.created_at,
                               case when coalesce(t.inquiry_status, t.ticket_status) <> 'OPEN' then p.progress_at end,
                               case when t.resolved_at is not null or t.quoted_at is not null then p.resolved_at end,
                               case when t.closed_at is not null then p.closed_at end)
    from demo_ticket_times p
   where t.tenant_id = p_tenant and t.ticket_id = p.ticket_id;
  alter table tickets enable trigger tickets_stamp_timestamps;

  alter table sla_events disable trigger sla_events_stamp_timestamps;
  update sla_events e
     set occurred_at = s.at, created_at = s.at, updated_at = s.at
    from (select e2.event_id,
                 case e2.event_type
                   when 'FIRST_RESPONSE' then t.first_response_at
                   when 'RESOLVED' then p.resolved_at
                   when 'CLOSED' then p.closed_at
                   else case e2.metadata->>'to'
                          when 'IN_PROGRESS' then p.progress_at
                          when 'RESOLVED' then p.resolved_at
                          when 'QUOTED' then p.resolved_at
                          when 'CLOSED' then p.closed_at
                          when 'WON' then p.closed_at
                          when 'LOST' then p.closed_at
                          else p.progress_at
                        end
                 end as at
            from sla_events e2
            join tickets t on t.tenant_id = e2.tenant_id and t.ticket_id = e2.ticket_id
            join demo_ticket_times p on p.ticket_id = e2.ticket_id
           where e2.tenant_id = p_tenant) s
   where e.tenant_id = p_tenant and e.event_id = s.event_id;
  alter table sla_events enable trigger sla_events_stamp_timestamps;
  delete from demo_ticket_times;
end
$$;

-- Invoices created on their issue date (tenant time zone, office hours,
-- after their customer), payments on their payment date after their
-- invoice, paid_at when the last payment came in.
create or replace function demo.spread_receivables(p_tenant uuid) returns void
language plpgsql as $$
declare
  v_now timestamptz := now();
  v_tz text := (select t.time_zone from tenants t where t.tenant_id = p_tenant);
begin
  alter table invoices disable trigger invoices_stamp_timestamps;
  update invoices i
     set created_at = s.at, issued_at = case when i.issued_at is not null then s.at end, updated_at = s.at
    from (select i2.invoice_id,
                 least(v_now, greatest(c.created_at,
                   ((i2.issue_date + time '09:00') at time zone v_tz) + random() * interval '7 hours')) as at
            from invoices i2 join customers c on c.tenant_id = i2.tenant_id and c.customer_id = i2.customer_id
           where i2.tenant_id = p_tenant) s
   where i.tenant_id = p_tenant and i.invoice_id = s.invoice_id;
  alter table invoices enable trigger invoices_stamp_timestamps;

  alter table payments disable trigger payments_stamp_timestamps;
  update payments p
     set created_at = s.at, updated_at = s.at
    from (select p2.payment_id,
                 least(v_now, greatest(i.created_at,
                   ((p2.paid_on + time '10:00') at time zone v_tz) + random() * interval '7 hours')) as at
            from payments p2 join invoices i on i.tenant_id = p2.tenant_id and i.invoice_id = p2.invoice_id
           where p2.tenant_id = p_tenant) s
   where p.tenant_id = p_tenant and p.payment_id = s.payment_id;
  alter table payments enable trigger payments_stamp_timestamps;

  alter table invoices disable trigger invoices_stamp_timestamps;
  update invoices i
     set paid_at = case when i.paid_at is not null then s.last_at end,
         updated_at = greatest(i.created_at, s.last_at)
    from (select p.invoice_id, max(p.created_at) as last_at
            from payments p where p.tenant_id = p_tenant group by p.invoice_id) s
   where i.tenant_id = p_tenant and i.invoice_id = s.invoice_id;
  alter table invoices enable trigger invoices_stamp_timestamps;
end
$$;

-- ---------------------------------------------------------------- self-check
-- demo.check(slug): recomputes the demo tenant's story from its raw rows
-- and compares it with what the tables and the product's views say.
-- Raises (P0001) naming the first inconsistent row; returns what it
-- checked. `scripts/dev up` runs it after seeding, tests/tests/suite/demo.rs
-- after the tests' seed.
--   tickets   every message at or after its ticket's creation and not in
--             the future; first_response_at = the first non-internal
--             message by someone other than the creator (the trigger's
--             rule), and v_ticket_first_response's minutes and the daily
--             median of v_ticket_first_response_daily_median agree with
--             it; one FIRST_RESPONSE event exactly then; the status
--             changes form one chain from OPEN to the current status in
--             time order, after creation; RESOLVED / CLOSED events at a
--             status change into such a state, and resolved_at / closed_at
--             at the latest of them; a ticket after its lead and customer.
--   crm       a lead after its customer, its handover after the lead; a
--             prospect after its customer; its stage history one chain
--             from NEW to the current stage in time order, after the
--             prospect; won_at / lost_at at that change; derived
--             activities at the time of what they record.
--   money     a payment on or after its invoice's issue date, recorded
--             after the invoice; paid_at at the last payment.
create or replace function demo.check(p_slug text) returns jsonb
language plpgsql as $$
declare
  v_tenant uuid;
  v_now timestamptz := now();
  r record;
  v_out jsonb;
begin
  select t.tenant_id into v_tenant from tenants t where t.slug = p_slug;
  if v_tenant is null then
    raise exception using errcode = 'P0002', message = format('demo.check: no tenant %s', p_slug);
  end if;

  -- Messages within their ticket's life.
  select t.ticket_no, m.message_id, m.created_at as m_at, t.created_at as t_at into r
    from ticket_messages m join tickets t on t.tenant_id = m.tenant_id and t.ticket_id = m.ticket_id
   where m.tenant_id = v_tenant and (m.created_at < t.created_at or m.created_at > v_now)
   order by t.ticket_no, m.created_at limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s: message %s at %s is before the ticket was created (%s) or in the future',
                       p_slug, r.ticket_no, r.message_id, r.m_at, r.t_at);
  end if;

  -- First response: stamp, view and event against the messages.
  select x.* into r from (
    select t.ticket_no, t.first_response_at, fr.at as recomputed, v.first_response_minutes as view_minutes,
           round(extract(epoch from (fr.at - t.created_at)) / 60, 2) as minutes,
           (select count(*) from sla_events e where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id
               and e.event_type = 'FIRST_RESPONSE') as events,
           (select min(e.occurred_at) from sla_events e where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id
               and e.event_type = 'FIRST_RESPONSE') as event_at
      from tickets t
      left join lateral (select min(m.created_at) as at from ticket_messages m
                          where m.tenant_id = t.tenant_id and m.ticket_id = t.ticket_id and not m.internal
                            and m.author_user_id is not null
                            and (t.created_by is null or m.author_user_id <> t.created_by)) fr on true
      join v_ticket_first_response v on v.tenant_id = t.tenant_id and v.ticket_id = t.ticket_id
     where t.tenant_id = v_tenant) x
   where x.first_response_at is distinct from x.recomputed
      or x.view_minutes is distinct from x.minutes
      or x.events <> (x.recomputed is not null)::int
      or x.event_at is distinct from x.recomputed
   order by x.ticket_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s: its messages give the first response %s (%s minutes after creation), '
                       'but tickets.first_response_at is %s, v_ticket_first_response says %s minutes, '
                       'and it has %s FIRST_RESPONSE event(s) at %s',
                       p_slug, r.ticket_no, coalesce(r.recomputed::text, 'none'), coalesce(r.minutes::text, '-'),
                       coalesce(r.first_response_at::text, 'NULL'), coalesce(r.view_minutes::text, 'NULL'),
                       r.events, coalesce(r.event_at::text, '-'));
  end if;

  -- The daily median the dashboard shows, recomputed from the messages.
  select x.* into r from (
    select d.day, d.median_first_response_minutes as shown, m.median as recomputed
      from v_ticket_first_response_daily_median d
      left join (select (t.created_at at time zone tz.time_zone)::date as day,
                        percentile_cont(0.5) within group (
                          order by round(extract(epoch from (fr.at - t.created_at)) / 60, 2)) as median
                   from tickets t
                   join tenants tz on tz.tenant_id = t.tenant_id
                   join lateral (select min(m.created_at) as at from ticket_messages m
                                  where m.tenant_id = t.tenant_id and m.ticket_id = t.ticket_id and not m.internal
                                    and m.author_user_id is not null
                                    and (t.created_by is null or m.author_user_id <> t.created_by)) fr on true
                  where t.tenant_id = v_tenant
                  group by 1) m on m.day = d.day
     where d.tenant_id = v_tenant) x
   where x.shown is distinct from x.recomputed
   order by x.day limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): day %s: v_ticket_first_response_daily_median shows a median first response of %s minutes, its tickets'' messages give %s',
                       p_slug, r.day, coalesce(r.shown::text, 'NULL'), coalesce(r.recomputed::text, 'NULL'));
  end if;

  -- SLA events: after creation, not in the future, status changes one
  -- chain in time order ending at the current status.
  select t.ticket_no, e.event_type, e.occurred_at, t.created_at into r
    from sla_events e join tickets t on t.tenant_id = e.tenant_id and t.ticket_id = e.ticket_id
   where e.tenant_id = v_tenant and (e.occurred_at < t.created_at or e.occurred_at > v_now)
   order by t.ticket_no, e.occurred_at limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s: %s event at %s is before the ticket was created (%s) or in the future',
                       p_slug, r.ticket_no, r.event_type, r.occurred_at, r.created_at);
  end if;
  select x.* into r from (
    select t.ticket_no, s.occurred_at, s.from_status, s.to_status, s.expected_from, s.n,
           s.same_instant, coalesce(t.inquiry_status, t.ticket_status) as current_status, s.last_to, s.is_last
      from tickets t
      join lateral (
        select e.occurred_at, e.metadata->>'from' as from_status, e.metadata->>'to' as to_status,
               coalesce(lag(e.metadata->>'to') over w, 'OPEN') as expected_from,
               count(*) over (partition by e.occurred_at) as same_instant,
               row_number() over w as n,
               last_value(e.metadata->>'to') over (order by e.occurred_at rows between unbounded preceding and unbounded following) as last_to,
               row_number() over w = count(*) over () as is_last
          from sla_events e
         where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id and e.event_type = 'STATUS_CHANGE'
        window w as (order by e.occurred_at)) s on true
     where t.tenant_id = v_tenant) x
   where x.from_status is distinct from x.expected_from or x.same_instant > 1
      or (x.is_last and x.to_status is distinct from x.current_status)
   order by x.ticket_no, x.occurred_at limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s: status change %s → %s at %s is out of order '
                       '(expected from %s; %s change(s) at that instant; current status %s)',
                       p_slug, r.ticket_no, r.from_status, r.to_status, r.occurred_at, r.expected_from,
                       r.same_instant, r.current_status);
  end if;
  select x.* into r from (
    select t.ticket_no, t.resolved_at, t.closed_at,
           (select max(e.occurred_at) from sla_events e where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id
               and e.event_type = 'RESOLVED') as resolved_event,
           (select max(e.occurred_at) from sla_events e where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id
               and e.event_type = 'CLOSED') as closed_event,
           (select count(*) from sla_events e where e.tenant_id = t.tenant_id and e.ticket_id = t.ticket_id
               and e.event_type in ('RESOLVED', 'CLOSED')
               and not exists (select 1 from sla_events c
                                where c.tenant_id = e.tenant_id and c.ticket_id = e.ticket_id
                                  and c.event_type = 'STATUS_CHANGE' and c.occurred_at = e.occurred_at
                                  and c.metadata->>'to' = any (case e.event_type
                                        when 'RESOLVED' then array['RESOLVED', 'QUOTED']
                                        else array['CLOSED', 'WON', 'LOST'] end))) as orphans
      from tickets t where t.tenant_id = v_tenant) x
   where x.orphans > 0
      or (x.resolved_at is not null and x.resolved_at is distinct from x.resolved_event)
      or x.closed_at is distinct from x.closed_event
   order by x.ticket_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s: resolved_at %s and closed_at %s disagree with its RESOLVED (%s) and CLOSED (%s) events, '
                       'or %s of them are at no matching status change',
                       p_slug, r.ticket_no, coalesce(r.resolved_at::text, 'NULL'), coalesce(r.closed_at::text, 'NULL'),
                       coalesce(r.resolved_event::text, '-'), coalesce(r.closed_event::text, '-'), r.orphans);
  end if;
  select t.ticket_no, t.created_at, l.lead_no, l.created_at as lead_at, c.created_at as customer_at into r
    from tickets t
    left join leads l on l.tenant_id = t.tenant_id and l.lead_id = t.related_lead_id
    left join customers c on c.tenant_id = t.tenant_id and c.customer_id = t.related_customer_id
   where t.tenant_id = v_tenant and (t.created_at < l.created_at or t.created_at < c.created_at or t.created_at > v_now)
   order by t.ticket_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): ticket %s created at %s, before its lead %s (%s) or its customer (%s), or in the future',
                       p_slug, r.ticket_no, r.created_at, coalesce(r.lead_no, '-'), coalesce(r.lead_at::text, '-'),
                       coalesce(r.customer_at::text, '-'));
  end if;

  -- CRM: leads, handovers, prospects, stage history, derived activities.
  select l.lead_no, l.created_at, l.assigned_at, c.created_at as customer_at into r
    from leads l join customers c on c.tenant_id = l.tenant_id and c.customer_id = l.customer_id
   where l.tenant_id = v_tenant
     and (l.created_at < c.created_at or l.assigned_at < l.created_at or l.created_at > v_now or l.assigned_at > v_now)
   order by l.lead_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): lead %s created at %s, handed over at %s, its customer created at %s: out of order',
                       p_slug, r.lead_no, r.created_at, coalesce(r.assigned_at::text, '-'), r.customer_at);
  end if;
  select x.* into r from (
    select p.prospect_id, p.stage, p.created_at as p_at, p.won_at, p.lost_at, c.created_at as customer_at,
           h.from_stage, h.to_stage, h.changed_at, h.expected_from, h.same_instant, h.is_last, h.won, h.lost
      from prospects p
      join customers c on c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
      join lateral (
        select x.from_stage, x.to_stage, x.changed_at,
               lag(x.to_stage) over w as expected_from,
               count(*) over (partition by x.changed_at) as same_instant,
               row_number() over w = count(*) over () as is_last,
               max(x.changed_at) filter (where x.to_stage = 'WON') over () as won,
               max(x.changed_at) filter (where x.to_stage = 'LOST') over () as lost
          from prospect_stage_history x
         where x.tenant_id = p.tenant_id and x.prospect_id = p.prospect_id
        window w as (order by x.changed_at)) h on true
     where p.tenant_id = v_tenant) x
   where x.p_at < x.customer_at or x.changed_at < x.p_at or x.changed_at > v_now
      or x.from_stage is distinct from x.expected_from or x.same_instant > 1
      or (x.is_last and x.to_stage <> x.stage)
      or x.won_at is distinct from x.won or x.lost_at is distinct from x.lost
   order by x.prospect_id, x.changed_at limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): prospect %s (created %s, customer %s): stage change %s → %s at %s is out of order '
                       '(expected from %s; current stage %s; won_at %s, lost_at %s)',
                       p_slug, r.prospect_id, r.p_at, r.customer_at, coalesce(r.from_stage, '-'), r.to_stage,
                       r.changed_at, coalesce(r.expected_from, '-'), r.stage,
                       coalesce(r.won_at::text, '-'), coalesce(r.lost_at::text, '-'));
  end if;
  select a.activity_id, a.activity_type, a.occurred_at, l.lead_no into r
    from sales_activities a
    left join leads l on l.tenant_id = a.tenant_id and l.lead_id = a.lead_id
   where a.tenant_id = v_tenant and a.source = 'derived'
     and (a.occurred_at > v_now
          or (a.activity_type = 'rfq_created' and a.occurred_at is distinct from l.created_at)
          or (a.activity_type = 'lead_assigned' and a.occurred_at is distinct from l.assigned_at)
          or (a.activity_type = 'stage_change' and not exists (
                select 1 from prospect_stage_history h
                 where h.tenant_id = a.tenant_id and h.prospect_id = a.prospect_id and h.changed_at = a.occurred_at
                   and a.summary = format('Stage %s → %s', h.from_stage, h.to_stage))))
   order by a.occurred_at, a.activity_id limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): %s activity %s at %s is not at the time of what it records (lead %s)',
                       p_slug, r.activity_type, r.activity_id, r.occurred_at, coalesce(r.lead_no, '-'));
  end if;

  -- Money.
  select p.payment_no, p.paid_on, p.created_at, i.invoice_no, i.issue_date, i.created_at as invoice_at into r
    from payments p join invoices i on i.tenant_id = p.tenant_id and i.invoice_id = p.invoice_id
   where p.tenant_id = v_tenant
     and (p.paid_on < i.issue_date or p.created_at < i.created_at or p.created_at > v_now)
   order by p.payment_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): payment %s paid on %s (recorded %s) for invoice %s issued %s (recorded %s): out of order',
                       p_slug, r.payment_no, r.paid_on, r.created_at, r.invoice_no, r.issue_date, r.invoice_at);
  end if;
  select i.invoice_no, i.paid_at, s.last_at into r
    from invoices i
    left join (select p.invoice_id, max(p.created_at) as last_at from payments p
                where p.tenant_id = v_tenant group by p.invoice_id) s on s.invoice_id = i.invoice_id
   where i.tenant_id = v_tenant and i.status = 'PAID' and i.paid_at is distinct from s.last_at
   order by i.invoice_no limit 1;
  if found then
    raise exception using errcode = 'P0001',
      message = format('demo.check(%s): invoice %s is PAID at %s, its last payment was recorded at %s',
                       p_slug, r.invoice_no, coalesce(r.paid_at::text, 'NULL'), coalesce(r.last_at::text, '-'));
  end if;

  select jsonb_build_object(
           'tenant', p_slug,
           'tickets', (select count(*) from tickets t where t.tenant_id = v_tenant),
           'messages', (select count(*) from ticket_messages m where m.tenant_id = v_tenant),
           'first_responses', (select count(*) from tickets t where t.tenant_id = v_tenant and t.first_response_at is not null),
           'sla_events', (select count(*) from sla_events e where e.tenant_id = v_tenant),
           'leads', (select count(*) from leads l where l.tenant_id = v_tenant),
           'stage_changes', (select count(*) from prospect_stage_history h where h.tenant_id = v_tenant),
           'payments', (select count(*) from payments p where p.tenant_id = v_tenant),
           'refunds', (select count(*) from refunds f where f.tenant_id = v_tenant),
           'credit_notes', (select count(*) from credit_notes n where n.tenant_id = v_tenant))
    into v_out;
  return v_out;
end
$$;
