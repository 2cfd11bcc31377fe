-- RFM segments and segment content (issue 17; seed 003, BatikRFM).
--
-- RFM-1: every week (schedule 'rfm weekly', Monday 06:00 tenant time; or
-- on demand, POST /api/rfm/runs) the job `rfm.compute` calls
-- rfm_compute(tenant, as_of) (sql/api/rfm.sql), which scores every customer
-- of the tenant with a paid invoice in the window and keeps the result as
-- the snapshot of the week (the tenant-local Monday of as_of):
--   rfm_runs    one row per (tenant, week): when, as of which date, the window
--   rfm_scores  one row per (tenant, week, customer): recency_days,
--               frequency, monetary, the scores r, f, m, fm and the segment
-- A rerun in the same week replaces that week's snapshot (never a second
-- one); earlier weeks stay, so movements between segments can be shown.
-- The rules (window, quintiles, ties, one purchase, segment table) are
-- stated beside rfm_compute in sql/api/rfm.sql; the segment table is data
-- (rfm_segments below).
--
-- RFM-2: prompt templates per segment and channel (rfm_content_templates,
-- tenant-editable, versioned; built-in defaults in rfm_template_defaults),
-- rendered with the week's figures and sent through the LLM gateway
-- (feature segment_content: cached 7 days per prompt, 10 generations a day
-- per tenant, every call in llm_calls).
--
-- Functions, views and the trigger that gives new tenants their weekly
-- schedule live in sql/api/rfm.sql.

-- ---------------------------------------------------------------- vocabularies
-- The segment table of the common RFM model as data: a customer falls in
-- the segment of lowest `priority` whose R range and FM range hold its R
-- score and its FM score (the average of F and M, rounded half up). The
-- ranges below cover the 5 x 5 grid of (R, FM) (a test checks every cell
-- has exactly one segment by this rule):
--
--   R \ FM   1                 2                   3               4-5
--   5        new_customers     potential_loyalist  loyal           champions
--   4        promising         potential_loyalist  loyal           champions
--   3        about_to_sleep    need_attention      need_attention  loyal
--   2        hibernating       hibernating         at_risk         at_risk
--   1        lost              lost                at_risk         cannot_lose_them
create table rfm_segments (
  code        text     not null,
  position    smallint not null,
  label       text     not null,
  description text,
  -- What marketing does for the segment (Indonesian; the prompt variable
  -- {{segment_advice}}).
  advice      text     not null,
  r_min       smallint not null,
  r_max       smallint not null,
  fm_min      smallint not null,
  fm_max      smallint not null,
  -- Lower wins where ranges overlap.
  priority    smallint not null,
  constraint rfm_segments_pkey primary key (code),
  constraint rfm_segments_position_key unique (position),
  constraint rfm_segments_priority_key unique (priority),
  constraint rfm_segments_code_check check (code ~ '^[a-z][a-z0-9_]{0,39}$'),
  constraint rfm_segments_label_check check (length(btrim(label)) between 1 and 100),
  constraint rfm_segments_r_check check (r_min between 1 and 5 and r_max between r_min and 5),
  constraint rfm_segments_fm_check check (fm_min between 1 and 5 and fm_max between fm_min and 5)
);
comment on table rfm_segments is
  'Vocabulary: the RFM segments (rfm_scores.segment), with their rule as data: R score range, FM score range (FM = (F + M) / 2 rounded half up) and a priority for overlaps (lowest wins).';
insert into rfm_segments (code, position, label, description, advice, r_min, r_max, fm_min, fm_max, priority) values
  ('champions',          1, 'Champions',
   'bought recently, buy often and spend the most',
   'Beri penghargaan, tawarkan produk baru lebih dulu, ajak memberi ulasan dan merekomendasikan.', 4, 5, 4, 5, 1),
  ('loyal',              2, 'Loyal',
   'buy regularly and spend well',
   'Tawarkan program loyalitas dan produk pelengkap; jaga hubungan dengan sapaan personal.', 3, 5, 3, 5, 5),
  ('potential_loyalist', 3, 'Potential Loyalist',
   'recent customers with average frequency and spend',
   'Tawarkan keanggotaan atau program poin, rekomendasikan produk lain yang cocok.', 4, 5, 2, 2, 8),
  ('new_customers',      4, 'New Customers',
   'bought very recently, once or little',
   'Sambut dengan hangat, bantu mengenal produk, beri alasan untuk pembelian kedua.', 5, 5, 1, 1, 6),
  ('promising',          5, 'Promising',
   'recent buyers who have not spent much yet',
   'Bangun kesadaran merek, tawarkan uji coba atau diskon kecil untuk pembelian berikutnya.', 4, 4, 1, 1, 7),
  ('need_attention',     6, 'Need Attention',
   'average recency, frequency and spend',
   'Tawarkan promo terbatas waktu dan rekomendasi berdasarkan pembelian sebelumnya.', 3, 3, 2, 3, 4),
  ('about_to_sleep',     7, 'About to Sleep',
   'below average recency, frequency and spend',
   'Ingatkan dengan konten menarik dan penawaran populer sebelum mereka lupa.', 3, 3, 1, 1, 9),
  ('at_risk',            8, 'At Risk',
   'spent and bought often, but long ago',
   'Kirim pesan personal untuk mengajak kembali, tawarkan pembaruan dan penawaran khusus.', 1, 2, 3, 5, 3),
  ('cannot_lose_them',   9, 'Cannot Lose Them',
   'made the biggest and most frequent purchases, but long ago',
   'Hubungi secara personal, tawarkan produk baru atau penawaran eksklusif agar kembali.', 1, 1, 4, 5, 2),
  ('hibernating',       10, 'Hibernating',
   'last purchase long ago, few orders and low spend',
   'Tawarkan produk relevan dan diskon khusus untuk membangkitkan minat lagi.', 2, 2, 1, 2, 10),
  ('lost',              11, 'Lost',
   'lowest recency, frequency and spend',
   'Coba kampanye reaktivasi sederhana; jika tidak merespons, jangan habiskan banyak biaya.', 1, 1, 1, 2, 11);
grant select on rfm_segments to bizos_authenticated, bizos_worker;

create table rfm_channels (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint rfm_channels_pkey primary key (code),
  constraint rfm_channels_position_key unique (position),
  constraint rfm_channels_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table rfm_channels is 'Vocabulary: the channels segment content is written for (rfm_content_templates.channel).';
insert into rfm_channels (code, position, description) values
  ('email',     1, 'an e-mail: subject line and body'),
  ('whatsapp',  2, 'a short WhatsApp message'),
  ('instagram', 3, 'an Instagram post caption with hashtags');
grant select on rfm_channels to bizos_authenticated, bizos_worker;

-- The built-in template of each channel (Indonesian, seed 003), used until
-- a tenant saves its own (version 0). `system` is the system message of
-- the model call; `body` the user message, with {{variables}} (the list
-- is rfm_template_variables() in sql/api/rfm.sql).
create table rfm_template_defaults (
  channel    text        not null,
  system     text        not null,
  body       text        not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint rfm_template_defaults_pkey primary key (channel),
  constraint rfm_template_defaults_channel_fkey foreign key (channel) references rfm_channels (code),
  constraint rfm_template_defaults_system_check check (length(btrim(system)) between 1 and 2000),
  constraint rfm_template_defaults_body_check check (length(btrim(body)) between 1 and 4000)
);
comment on table rfm_template_defaults is
  'Built-in prompt of each channel for segment content (version 0 of every tenant''s template until it saves its own); system message and user message with {{variables}}.';
create trigger rfm_template_defaults_stamp_timestamps before insert or update on rfm_template_defaults
  for each row execute function stamp_timestamps();
insert into rfm_template_defaults (channel, system, body) values
  ('email',
   'Kamu adalah marketing expert untuk usaha kecil dan menengah Indonesia. Tulis dalam Bahasa Indonesia yang hangat dan sopan.',
   'Buatkan konten marketing e-mail untuk segmen pelanggan {{segment}} dari {{tenant}}.
Data segmen minggu {{week}}: {{customers}} pelanggan, rata-rata belanja {{avg_spend}}, rata-rata {{avg_orders}} transaksi, terakhir belanja rata-rata {{avg_recency_days}} hari lalu.
Strategi untuk segmen ini: {{segment_advice}}
Tulis satu baris subjek dan isi e-mail paling banyak 150 kata, dengan satu ajakan bertindak yang jelas.'),
  ('whatsapp',
   'Kamu adalah marketing expert untuk usaha kecil dan menengah Indonesia. Tulis dalam Bahasa Indonesia yang akrab dan singkat.',
   'Buatkan pesan WhatsApp untuk segmen pelanggan {{segment}} dari {{tenant}}.
Data segmen minggu {{week}}: {{customers}} pelanggan, rata-rata belanja {{avg_spend}}, rata-rata {{avg_orders}} transaksi, terakhir belanja rata-rata {{avg_recency_days}} hari lalu.
Strategi untuk segmen ini: {{segment_advice}}
Paling banyak 60 kata, boleh memakai emoji secukupnya, akhiri dengan ajakan membalas pesan.'),
  ('instagram',
   'Kamu adalah marketing expert untuk usaha kecil dan menengah Indonesia. Tulis dalam Bahasa Indonesia yang menarik untuk media sosial.',
   'Buatkan caption Instagram untuk menyapa segmen pelanggan {{segment}} dari {{tenant}}.
Data segmen minggu {{week}}: {{customers}} pelanggan, rata-rata belanja {{avg_spend}}, rata-rata {{avg_orders}} transaksi.
Strategi untuk segmen ini: {{segment_advice}}
Paling banyak 80 kata dan 5 tagar yang relevan; jangan sebut data pelanggan.');
grant select on rfm_template_defaults to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------- settings
-- A tenant's RFM settings; no row: the defaults (window_days 365).
create table rfm_settings (
  tenant_id   uuid        not null,
  -- Paid invoices whose tenant-local payment date lies in the
  -- window_days days ending on the run's as_of date count.
  window_days integer     not null default 365,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint rfm_settings_pkey primary key (tenant_id),
  constraint rfm_settings_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint rfm_settings_window_days_check check (window_days between 7 and 3650)
);
comment on table rfm_settings is 'RFM settings of a tenant (no row: window_days 365).';
create trigger rfm_settings_stamp_timestamps before insert or update on rfm_settings
  for each row execute function stamp_timestamps();
select bizos.enable_audit('rfm_settings');

alter table rfm_settings enable row level security;
create policy "members read their tenant's rfm settings"
  on rfm_settings for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "rfm managers add their tenant's rfm settings"
  on rfm_settings for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')));
create policy "rfm managers change their tenant's rfm settings"
  on rfm_settings for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')));
grant select on rfm_settings to bizos_authenticated;
grant insert (tenant_id, window_days), update (window_days) on rfm_settings to bizos_authenticated;

-- ---------------------------------------------------------------- snapshots
-- One snapshot per tenant and week (the tenant-local Monday of as_of);
-- written only by rfm_compute (SECURITY DEFINER), read by members.
create table rfm_runs (
  tenant_id    uuid        not null,
  week         date        not null,
  -- The tenant-local date the scores are computed at (recency is counted
  -- to it; payments after it are not counted).
  as_of        date        not null,
  window_days  integer     not null,
  -- The first tenant-local payment date counted (as_of - window_days + 1).
  window_start date        not null,
  -- Customers scored.
  customers    integer     not null,
  computed_at  timestamptz not null default now(),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint rfm_runs_pkey primary key (tenant_id, week),
  constraint rfm_runs_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint rfm_runs_week_check check (extract(isodow from week) = 1),
  constraint rfm_runs_as_of_check check (as_of between week and week + 6),
  constraint rfm_runs_window_check check (window_days between 7 and 3650 and window_start = as_of - window_days + 1),
  constraint rfm_runs_customers_check check (customers >= 0)
);
comment on table rfm_runs is
  'RFM snapshots: one per tenant and week (tenant-local Monday); a rerun in the week replaces it. Written by rfm_compute only.';
create trigger rfm_runs_stamp_timestamps before insert or update on rfm_runs
  for each row execute function stamp_timestamps();

alter table rfm_runs enable row level security;
create policy "members read their tenant's rfm snapshots"
  on rfm_runs for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
grant select on rfm_runs to bizos_authenticated;

create table rfm_scores (
  tenant_id    uuid          not null,
  week         date          not null,
  customer_id  uuid          not null,
  -- Days from the last counted payment (tenant-local date) to as_of.
  recency_days integer       not null,
  -- Paid invoices counted.
  frequency    integer       not null,
  -- Sum of their amount_paid.
  monetary     numeric(18,2) not null,
  r            smallint      not null,
  f            smallint      not null,
  m            smallint      not null,
  -- (f + m) / 2 rounded half up: the FM axis of the segment table.
  fm           smallint      not null,
  segment      text          not null,
  created_at   timestamptz   not null default now(),
  updated_at   timestamptz   not null default now(),
  constraint rfm_scores_pkey primary key (tenant_id, week, customer_id),
  constraint rfm_scores_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint rfm_scores_week_fkey foreign key (tenant_id, week) references rfm_runs (tenant_id, week) on delete cascade,
  constraint rfm_scores_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint rfm_scores_segment_fkey foreign key (segment) references rfm_segments (code),
  constraint rfm_scores_recency_days_check check (recency_days >= 0),
  constraint rfm_scores_frequency_check check (frequency >= 1),
  constraint rfm_scores_monetary_check check (monetary >= 0),
  constraint rfm_scores_scores_check check (r between 1 and 5 and f between 1 and 5 and m between 1 and 5
                                            and fm = (f + m + 1) / 2)
);
comment on table rfm_scores is
  'RFM scores of the customers of a weekly snapshot: recency, frequency, monetary value, quintile scores 1-5 and the segment. Rows show under the customers'' RLS.';
create index rfm_scores_segment_idx on rfm_scores (tenant_id, week, segment, monetary desc, customer_id);
create index rfm_scores_customer_id_idx on rfm_scores (tenant_id, customer_id);
create trigger rfm_scores_stamp_timestamps before insert or update on rfm_scores
  for each row execute function stamp_timestamps();

-- A score row shows exactly when its customer does: the subquery runs
-- under the customers' RLS (customer_readable), so a caller never learns
-- the segment, spend or existence of a customer they may not read.
alter table rfm_scores enable row level security;
create policy "members read the scores of the customers they may read"
  on rfm_scores for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from customers c
                      where c.tenant_id = rfm_scores.tenant_id and c.customer_id = rfm_scores.customer_id));
grant select on rfm_scores to bizos_authenticated;

-- ---------------------------------------------------------------- templates
-- A tenant's own prompt of a segment and channel; none: the channel's
-- built-in (version 0). `version` goes up by one with every saved change
-- (rfm_template_set); a generation is cached per prompt, so per
-- (segment, channel, template version, week's figures).
create table rfm_content_templates (
  tenant_id  uuid        not null,
  segment    text        not null,
  channel    text        not null,
  body       text        not null,
  version    integer     not null,
  created_by uuid        default bizos.uid(),
  updated_by uuid        default bizos.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint rfm_content_templates_pkey primary key (tenant_id, segment, channel),
  constraint rfm_content_templates_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint rfm_content_templates_segment_fkey foreign key (segment) references rfm_segments (code),
  constraint rfm_content_templates_channel_fkey foreign key (channel) references rfm_channels (code),
  constraint rfm_content_templates_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint rfm_content_templates_updated_by_fkey foreign key (tenant_id, updated_by)
    references profiles (tenant_id, user_id) on delete set null (updated_by),
  constraint rfm_content_templates_body_check check (length(btrim(body)) between 1 and 4000),
  constraint rfm_content_templates_version_check check (version >= 1)
);
comment on table rfm_content_templates is
  'A tenant''s prompt template for the content of an RFM segment on a channel, with {{variables}}; version bumped by every change.';
create trigger rfm_content_templates_stamp_timestamps before insert or update on rfm_content_templates
  for each row execute function stamp_timestamps();
create trigger rfm_content_templates_keep_created_by before insert or update on rfm_content_templates
  for each row execute function keep_created_by();
select bizos.enable_audit('rfm_content_templates');

alter table rfm_content_templates enable row level security;
create policy "members read their tenant's rfm templates"
  on rfm_content_templates for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()));
create policy "rfm managers add rfm templates to their tenant"
  on rfm_content_templates for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')));
create policy "rfm managers change their tenant's rfm templates"
  on rfm_content_templates for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')))
  with check (tenant_id = (select bizos.tenant_id()) and (select has_permission('rfm.manage')));
grant select on rfm_content_templates to bizos_authenticated;
grant insert (tenant_id, segment, channel, body, version, updated_by),
      update (body, version, updated_by) on rfm_content_templates to bizos_authenticated;

-- ---------------------------------------------------------------- masking
-- Analysts see scores and segments (ids, numbers, codes as stored) but no
-- prompt text a tenant wrote.
insert into analytics_masking (table_name, column_name, masker) values
  ('rfm_content_templates', 'body', 'redact'),
  -- The report view of sql/api/rfm.sql: the customer's name as names are.
  ('v_rfm_customers', 'company_name', 'name');
insert into analytics_reports (view_name) values ('v_rfm_customers'), ('v_rfm_segment_summary');

-- ---------------------------------------------------------------- job kind, permission, schedules
insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'rfm.compute', coalesce(max(position), 0) + 1,
       'compute the tenant''s RFM snapshot of the week (payload: {as_of?: date}); a rerun replaces it', 3, 600, 30
  from job_kinds;

-- Who runs RFM on demand, sets its window, edits the templates and
-- generates segment content (new tenants get it from
-- default_role_permissions(), platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'rfm.manage'
  from tenants t
 cross join (values ('super_admin'), ('marketing_manager')) as r (app_role)
on conflict do nothing;

-- Every existing tenant's weekly run: Monday 06:00 in the tenant's zone
-- (new tenants get theirs from the trigger of sql/api/rfm.sql). next_run_at
-- is the next Monday 06:00 local in plain SQL; where the schedules trigger
-- exists it recomputes it on insert.
insert into schedules (tenant_id, name, kind, payload, at_time, days_of_week, active, next_run_at)
select t.tenant_id, 'rfm weekly', 'rfm.compute', '{}'::jsonb, time '06:00', array[1]::smallint[], true,
       ((d.local_today + (8 - extract(isodow from d.local_today))::integer) + time '06:00') at time zone t.time_zone
  from tenants t
 cross join lateral (select (now() at time zone t.time_zone)::date as local_today) d
on conflict on constraint schedules_tenant_id_name_key do nothing;
