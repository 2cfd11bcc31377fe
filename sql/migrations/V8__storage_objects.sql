-- File storage (STG): one `objects` row per stored file, with tenant, bucket,
-- uploader, size, content type and checksum. The BFF streams the bytes to
-- the storage backend (local directory or S3) under the object's key and
-- registers the row in the same transaction as the row that uses the file
-- (a ticket attachment, KPI evidence, an import). Downloads go through this
-- row: what RLS hides here cannot be downloaded.
--
-- Ticket attachments and KPI evidence kept their own copies of the file
-- metadata until now; they reference objects instead from this migration on.

-- ---------------------------------------------------------------- buckets
-- The buckets of SPEC STG. Reference data shared by every tenant (like
-- bizos.id_kinds): limits are product rules, not tenant data.
create table storage_buckets (
  bucket        text   not null,
  max_bytes     bigint not null,
  content_types text[] not null,
  description   text   not null,
  constraint storage_buckets_pkey primary key (bucket),
  constraint storage_buckets_bucket_check check (bucket ~ '^[a-z][a-z0-9-]{1,62}$'),
  constraint storage_buckets_max_bytes_check check (max_bytes > 0),
  constraint storage_buckets_content_types_check check (cardinality(content_types) > 0)
);
comment on table storage_buckets is 'Storage buckets: size limit and allowed (sniffed) content types as LIKE patterns.';

insert into storage_buckets (bucket, max_bytes, content_types, description) values
  ('ticket-attachments', 26214400,
   array['image/%', 'application/pdf', 'text/plain', 'text/csv', 'application/zip',
         'application/vnd.openxmlformats-officedocument.%', 'application/msword', 'application/vnd.ms-excel'],
   'Files of tickets (RFQ documents, photos, packing lists)'),
  ('kpi-evidence', 52428800,
   array['image/%', 'application/pdf', 'text/csv', 'text/plain', 'application/vnd.openxmlformats-officedocument.%'],
   'Proof of manual KPI entries'),
  ('prospect-evidence', 20971520, array['image/%', 'application/pdf'],
   'Visit photos and documents of prospects'),
  ('customer-documents', 52428800,
   array['image/%', 'application/pdf', 'application/vnd.openxmlformats-officedocument.%', 'application/msword'],
   'Contracts, NPWP cards and other customer documents'),
  ('import-files', 536870912,
   array['text/csv', 'text/plain', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
   'Uploaded CSV/XLSX files of staged imports'),
  ('knowledge', 104857600,
   array['application/pdf', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
         'text/plain', 'text/markdown', 'text/html'],
   'Documents of the internal knowledge base (RAG)'),
  ('media', 104857600, array['image/%', 'video/mp4', 'video/webm', 'audio/mpeg'],
   'Media library');

alter table storage_buckets enable row level security;
create policy "members read the bucket catalogue"
  on storage_buckets for select to bizos_authenticated
  using (true);
grant select on storage_buckets to bizos_authenticated;

-- ---------------------------------------------------------------- objects
create table objects (
  tenant_id    uuid        not null,
  object_id    uuid        not null default gen_random_uuid(),
  bucket       text        not null,
  -- Where the bytes are: derived, never chosen by a client, so no one can
  -- register (and then download) another tenant's file.
  object_key   text        generated always as (tenant_id::text || '/' || bucket || '/' || object_id::text) stored,
  file_name    text        not null,
  content_type text        not null,
  size_bytes   bigint      not null,
  sha256       text        not null,
  created_by   uuid        default bizos.uid(),
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint objects_pkey primary key (tenant_id, object_id),
  constraint objects_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint objects_bucket_fkey foreign key (bucket) references storage_buckets (bucket),
  constraint objects_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint objects_file_name_check check (
    length(btrim(file_name)) between 1 and 255 and file_name !~ '[/\\[:cntrl:]]'),
  constraint objects_content_type_check check (content_type ~ '^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$'),
  constraint objects_size_bytes_check check (size_bytes >= 0),
  constraint objects_sha256_check check (sha256 ~ '^[0-9a-f]{64}$')
);
comment on table objects is 'Stored files (STG): one row per object; downloads are allowed only through RLS on this row.';
create index objects_created_by_idx on objects (tenant_id, created_by);

create trigger objects_stamp_timestamps before insert or update on objects
  for each row execute function stamp_timestamps();
create trigger objects_keep_created_by before insert or update on objects
  for each row execute function keep_created_by();

-- The bucket's limits hold for every row, however it is written.
create function objects_check_bucket() returns trigger
language plpgsql
as $$
declare
  b storage_buckets;
begin
  select * into b from storage_buckets s where s.bucket = new.bucket;
  if not found then
    raise exception using errcode = '23503', column = 'bucket', constraint = 'objects_bucket_fkey',
      message = format('bucket: no bucket %s', new.bucket);
  end if;
  if new.size_bytes > b.max_bytes then
    raise exception using errcode = '23514', column = 'size_bytes', constraint = 'objects_size_bytes_check',
      message = format('size_bytes: %s bytes is over the %s-byte limit of bucket %s', new.size_bytes, b.max_bytes, b.bucket);
  end if;
  if not new.content_type like any (b.content_types) then
    raise exception using errcode = '23514', column = 'content_type', constraint = 'objects_content_type_check',
      message = format('content_type: %s files are not accepted in bucket %s', new.content_type, b.bucket);
  end if;
  return new;
end
$$;
select pin_search_path('objects_check_bucket()');
create trigger objects_check_bucket before insert on objects
  for each row execute function objects_check_bucket();

select bizos.enable_audit('objects');

-- ---------------------------------------------------------------- users of objects
-- Ticket attachments and KPI evidence now point at an object. Rows written
-- before this migration described files no backend ever stored (there was
-- none): each becomes an object row with its metadata and the same id.
alter table ticket_attachments add column object_id uuid;
insert into objects (tenant_id, object_id, bucket, file_name, content_type, size_bytes, sha256, created_by, created_at)
select tenant_id, attachment_id, 'ticket-attachments', file_name, content_type, size_bytes, sha256, created_by, created_at
  from ticket_attachments;
update ticket_attachments set object_id = attachment_id;
alter table ticket_attachments
  drop column bucket, drop column object_key, drop column file_name,
  drop column content_type, drop column size_bytes, drop column sha256,
  alter column object_id set not null,
  add constraint ticket_attachments_object_id_key unique (tenant_id, object_id),
  add constraint ticket_attachments_object_id_fkey foreign key (tenant_id, object_id)
    references objects (tenant_id, object_id);
grant insert (object_id) on ticket_attachments to bizos_authenticated;
comment on table ticket_attachments is 'Files of a ticket (objects in bucket ticket-attachments); access follows the ticket.';

alter table kpi_evidence add column object_id uuid;
insert into objects (tenant_id, object_id, bucket, file_name, content_type, size_bytes, sha256, created_by, created_at)
select tenant_id, evidence_id, 'kpi-evidence', file_name, content_type, size_bytes, sha256, created_by, created_at
  from kpi_evidence;
update kpi_evidence set object_id = evidence_id;
alter table kpi_evidence
  drop column bucket, drop column object_key, drop column file_name,
  drop column content_type, drop column size_bytes, drop column sha256,
  alter column object_id set not null,
  add constraint kpi_evidence_object_id_key unique (tenant_id, object_id),
  add constraint kpi_evidence_object_id_fkey foreign key (tenant_id, object_id)
    references objects (tenant_id, object_id);
grant insert (object_id) on kpi_evidence to bizos_authenticated;
comment on table kpi_evidence is 'Files (objects in bucket kpi-evidence) proving a KPI entry; visible with their entry.';

-- A row may only use a file of the right bucket that its writer uploaded.
-- Trigger argument: the bucket.
create function require_own_object() returns trigger
language plpgsql
as $$
declare
  o objects;
begin
  select * into o from objects x where x.tenant_id = new.tenant_id and x.object_id = new.object_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'object_id',
      message = format('object_id: no file %s in this tenant', new.object_id);
  end if;
  if o.bucket <> tg_argv[0] then
    raise exception using errcode = 'P0001', column = 'object_id',
      message = format('object_id: file %s is in bucket %s, not %s', new.object_id, o.bucket, tg_argv[0]);
  end if;
  if bizos.uid() is not null and o.created_by is distinct from bizos.uid() then
    raise exception using errcode = '42501', column = 'object_id',
      message = format('object_id: file %s was uploaded by someone else', new.object_id);
  end if;
  return new;
end
$$;
select pin_search_path('require_own_object()');
create trigger ticket_attachments_require_own_object before insert on ticket_attachments
  for each row execute function require_own_object('ticket-attachments');
create trigger kpi_evidence_require_own_object before insert on kpi_evidence
  for each row execute function require_own_object('kpi-evidence');

-- ---------------------------------------------------------------- RLS
alter table objects enable row level security;

create policy "files are visible to their uploader, super admins and through the rows that use them"
  on objects for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) = 'super_admin'
              or exists (select 1 from ticket_attachments a
                          where a.tenant_id = objects.tenant_id and a.object_id = objects.object_id)
              or exists (select 1 from kpi_evidence e
                          where e.tenant_id = objects.tenant_id and e.object_id = objects.object_id)));
create policy "members register their own uploads"
  on objects for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid()));
create policy "uploaders and super admins delete files"
  on objects for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid()) or (select bizos.app_role()) = 'super_admin'));
grant select, delete on objects to bizos_authenticated;
grant insert (tenant_id, object_id, bucket, file_name, content_type, size_bytes, sha256) on objects to bizos_authenticated;

-- ---------------------------------------------------------------- RPCs
-- object_create({object_id, bucket, file_name, content_type, size_bytes, sha256})
--   -> {object_id, bucket, object_key, ...}
-- The BFF has streamed the bytes to object_key (tenant/bucket/object_id)
-- and registers them in the transaction of the request that uses them.
create function object_create(payload jsonb) returns jsonb
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
  perform payload_check_keys(payload, array['object_id', 'bucket', 'file_name', 'content_type', 'size_bytes', 'sha256']);
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

-- ticket_attachment_add(ticket_id, object_id) -> {attachment_id, ticket_id, object_id}
create function ticket_attachment_add(ticket_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  perform require_permission('ticket.message');
  if not exists (select 1 from tickets t where t.tenant_id = v_tenant and t.ticket_id = ticket_attachment_add.ticket_id) then
    raise exception using errcode = 'P0002', column = 'ticket_id',
      message = format('ticket_id: no ticket %s', ticket_attachment_add.ticket_id);
  end if;
  insert into ticket_attachments (tenant_id, ticket_id, object_id)
  values (v_tenant, ticket_attachment_add.ticket_id, ticket_attachment_add.object_id)
  returning attachment_id into v_id;
  return jsonb_build_object('attachment_id', v_id, 'ticket_id', ticket_attachment_add.ticket_id,
                            'object_id', ticket_attachment_add.object_id);
end
$$;

-- kpi_evidence_add(entry_id, object_id) -> {evidence_id, entry_id, object_id}
create function kpi_evidence_add(entry_id uuid, object_id uuid) returns jsonb
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_id uuid;
begin
  perform require_permission('kpi.entry.create');
  if not exists (select 1 from kpi_entries e where e.tenant_id = v_tenant and e.entry_id = kpi_evidence_add.entry_id) then
    raise exception using errcode = 'P0002', column = 'entry_id',
      message = format('entry_id: no KPI entry %s', kpi_evidence_add.entry_id);
  end if;
  insert into kpi_evidence (tenant_id, entry_id, object_id)
  values (v_tenant, kpi_evidence_add.entry_id, kpi_evidence_add.object_id)
  returning evidence_id into v_id;
  return jsonb_build_object('evidence_id', v_id, 'entry_id', kpi_evidence_add.entry_id,
                            'object_id', kpi_evidence_add.object_id);
end
$$;

-- KPI entries take evidence as files uploaded before (object ids).
-- kpi_entry_create({metric_key, value, entry_date?, assignee_user_id?, source?: MANUAL|IMPORTED,
--   import_id?, import_row?, notes?, evidence?: [object_id, ...]})
--   -> {entry_id, replayed, evidence_ids}
-- IMPORTED entries carry import_id + import_row; processing the same import
-- row again updates that entry instead of adding one (replayed = true).
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
  perform payload_check_keys(payload, array['metric_key', 'value', 'entry_date', 'assignee_user_id', 'source',
                                            'import_id', 'import_row', 'notes', 'evidence']);
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

grant execute on function object_create(jsonb), ticket_attachment_add(uuid, uuid), kpi_evidence_add(uuid, uuid)
  to bizos_authenticated;
