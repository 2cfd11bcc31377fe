-- The CEO digest (issue 17, AI-1): every day at 05:00 in the tenant's time
-- zone a schedule enqueues `digest.build`; the worker has the database
-- compute the figures of the previous business day and of the month to
-- date (digest_aggregates, sql/api/digest.sql), asks the LLM gateway to
-- word exactly three insights from them (every number checked against the
-- figures; a deterministic insight replaces one that fails, and all three
-- are deterministic without a model), stores the card here and e-mails it
-- to the tenant's directors and super admins, once per tenant and day.
--
--   tenants.locale  the language of a tenant's generated texts (digest
--                   insights and e-mail): 'id' (Bahasa Indonesia, the
--                   default) or 'en'
--   digests         one card per tenant and business day: the figures as
--                   computed, the three insights, where they came from and
--                   the e-mail that announced it
--
-- The functions live in sql/api/digest.sql.

alter table tenants add column locale text not null default 'id';
alter table tenants add constraint tenants_locale_check check (locale in ('id', 'en'));
comment on column tenants.locale is
  'Language of the texts bizos generates for the tenant (digest insights, their e-mail): id (Bahasa Indonesia) or en.';

create table digests (
  tenant_id   uuid        not null,
  -- The tenant-local business day summarised (the month to date ends on it).
  digest_date date        not null,
  locale      text        not null,
  -- digest_aggregates(tenant_id, digest_date) as it was when the card was made.
  aggregates  jsonb       not null,
  -- Exactly three: [{text, figures: [path, ...], source: model|fallback}].
  insights    jsonb       not null,
  -- Where the insights came from: model (all three from a model or its
  -- cached answer), mixed (some replaced by deterministic ones), fallback
  -- (no model answered; all deterministic).
  source      text        not null,
  -- The llm_calls rows of the generation (empty without a model call).
  call_ids    uuid[]      not null default '{}',
  -- The e-mail announcing it (NULL: nobody to send it to).
  email_id    uuid,
  job_id      uuid,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint digests_pkey primary key (tenant_id, digest_date),
  constraint digests_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint digests_email_id_fkey foreign key (tenant_id, email_id)
    references emails (tenant_id, email_id) on delete set null (email_id),
  constraint digests_locale_check check (locale in ('id', 'en')),
  constraint digests_aggregates_check check (jsonb_typeof(aggregates) = 'object'),
  constraint digests_insights_check check (jsonb_typeof(insights) = 'array' and jsonb_array_length(insights) = 3),
  constraint digests_source_check check (source in ('model', 'mixed', 'fallback'))
);
comment on table digests is
  'The daily CEO digest of a tenant (AI-1): the figures of a business day and its month to date, three insights, their source and the announcing e-mail. Written only by digest_store (the worker).';

create trigger digests_stamp_timestamps before insert or update on digests
  for each row execute function stamp_timestamps();

alter table digests enable row level security;
create policy "digest readers read the digests of their tenant"
  on digests for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and (select has_permission('digest.read')));
-- Written by the SECURITY DEFINER digest_store only.
grant select on digests to bizos_authenticated;

-- The job the daily schedule enqueues (a system job: no creator).
insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'digest.build', coalesce(max(position), 0) + 1,
       'compute the daily digest of a tenant, word its insights and e-mail it (once per business day)', 5, 300, 60
  from job_kinds;

-- Who reads the digest (new tenants get it from default_role_permissions(),
-- platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'digest.read'
  from tenants t
 cross join (values ('super_admin'), ('director')) as r (app_role)
on conflict do nothing;

-- Every tenant's daily schedule at 05:00 its time (new tenants get it from
-- the trigger tenants_seed_digest_schedule, sql/api/digest.sql). next_run_at
-- is computed by the schedules' own trigger; now() only fills the column
-- where that trigger does not exist yet (a fresh database, which has no
-- tenants at this point).
insert into schedules (tenant_id, name, kind, payload, at_time, next_run_at)
select t.tenant_id, 'daily digest', 'digest.build', '{}', time '05:00', now()
  from tenants t
on conflict do nothing;

-- The e-mails, one per language (variables filled by the worker).
insert into email_templates (template, description, permission, variables, subject, text_body, html_body) values
  ('digest.daily.id',
   'ringkasan bisnis harian untuk direksi (AI-1)',
   'digest.read',
   '{digest_date,insight_1,insight_2,insight_3,revenue_mtd,collected_mtd,overdue_ar,source_note}',
   '{{tenant_name}}: ringkasan bisnis {{digest_date}}',
   E'Ringkasan bisnis {{tenant_name}} untuk {{digest_date}}\n\n1. {{insight_1}}\n2. {{insight_2}}\n3. {{insight_3}}\n\nPendapatan (ditagih) bulan berjalan: {{revenue_mtd}}\nKas diterima bulan berjalan: {{collected_mtd}}\nPiutang lewat jatuh tempo: {{overdue_ar}}\n\n{{source_note}}\n',
   E'<h2>Ringkasan bisnis {{tenant_name}} untuk {{digest_date}}</h2>\n<ol>\n<li>{{insight_1}}</li>\n<li>{{insight_2}}</li>\n<li>{{insight_3}}</li>\n</ol>\n<table>\n<tr><td>Pendapatan (ditagih) bulan berjalan</td><td>{{revenue_mtd}}</td></tr>\n<tr><td>Kas diterima bulan berjalan</td><td>{{collected_mtd}}</td></tr>\n<tr><td>Piutang lewat jatuh tempo</td><td>{{overdue_ar}}</td></tr>\n</table>\n<p>{{source_note}}</p>\n'),
  ('digest.daily.en',
   'the daily business digest for the directors (AI-1)',
   'digest.read',
   '{digest_date,insight_1,insight_2,insight_3,revenue_mtd,collected_mtd,overdue_ar,source_note}',
   '{{tenant_name}}: business digest for {{digest_date}}',
   E'Business digest of {{tenant_name}} for {{digest_date}}\n\n1. {{insight_1}}\n2. {{insight_2}}\n3. {{insight_3}}\n\nRevenue invoiced, month to date: {{revenue_mtd}}\nCash collected, month to date: {{collected_mtd}}\nOverdue receivables: {{overdue_ar}}\n\n{{source_note}}\n',
   E'<h2>Business digest of {{tenant_name}} for {{digest_date}}</h2>\n<ol>\n<li>{{insight_1}}</li>\n<li>{{insight_2}}</li>\n<li>{{insight_3}}</li>\n</ol>\n<table>\n<tr><td>Revenue invoiced, month to date</td><td>{{revenue_mtd}}</td></tr>\n<tr><td>Cash collected, month to date</td><td>{{collected_mtd}}</td></tr>\n<tr><td>Overdue receivables</td><td>{{overdue_ar}}</td></tr>\n</table>\n<p>{{source_note}}</p>\n');
