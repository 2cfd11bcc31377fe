-- Upload intents (issue 11 §4): no stored bytes without an `objects` row,
-- even when the BFF dies in the middle of an upload.
--
-- The BFF streams a file to storage before the transaction that registers
-- it (`object_create`) runs; a crash between the two used to leave the
-- bytes (customer PII) in storage with no row pointing at them, forever.
-- Now every upload starts with an intent, committed BEFORE the first byte
-- is written:
--
--   upload_begin(bucket, owner_lock) -> {object_id, object_key}
--     the database picks the object id and derives the key
--     (tenant/bucket/object_id, as objects.object_key);
--   upload_started(object_id, multipart_id)
--     S3 only: the multipart upload holding the parts, so they can be
--     aborted;
--   object_create(...) consumes the intent in the transaction that writes
--     the objects row (no intent: refused, so a row never points at bytes
--     a sweep may have removed);
--   upload_intent_forget(tenant_id, object_id) (BFF login)
--     the BFF removed the bytes of a failed or replayed upload, or of a
--     dead one.
--
-- Intents that outlive their upload are swept (bytes first, then the
-- intent, in one transaction holding the intent's row lock, so a crash of
-- the sweep leaves the intent for the next sweep): the BFF calls
-- upload_sweep_claim() at start and periodically, deletes the bytes of
-- each claimed intent and calls upload_intent_forget() for it.
--
-- Liveness: every BFF process holds a session-level advisory lock
-- (1651079791, owner_lock) on a connection of its own for as long as it
-- runs, and records owner_lock in its intents. PostgreSQL releases the
-- lock when that process dies (its connection closes), so an intent whose
-- owner lock is not held belongs to a dead process. An intent is dead when
-- its owner is dead, or when it is older than the caller's maximum upload
-- time (BIZOS_UPLOAD_TIMEOUT_SECS plus a margin: a request cannot run that
-- long, so its cleanup failed). A live instance's running uploads are never
-- swept by another instance.

create table upload_intents (
  tenant_id    uuid        not null,
  object_id    uuid        not null default gen_random_uuid(),
  bucket       text        not null,
  -- Derived as objects.object_key is: never chosen by a client.
  object_key   text        generated always as (tenant_id::text || '/' || bucket || '/' || object_id::text) stored,
  -- Second key of the uploading BFF's session advisory lock
  -- pg_advisory_lock(1651079791, owner_lock); NULL: no owner (swept by age).
  owner_lock   integer,
  -- The S3 multipart upload of the bytes, once started.
  multipart_id text,
  created_by   uuid        default bizos.uid(),
  -- When the upload started.
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint upload_intents_pkey primary key (tenant_id, object_id),
  constraint upload_intents_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint upload_intents_bucket_fkey foreign key (bucket) references storage_buckets (bucket),
  constraint upload_intents_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint upload_intents_owner_lock_check check (owner_lock > 0),
  constraint upload_intents_multipart_id_check check (length(multipart_id) between 1 and 1024)
);
comment on table upload_intents is
  'Uploads whose bytes may be in storage without an objects row yet; swept when their BFF process is gone or they are too old.';
create index upload_intents_created_at_idx on upload_intents (created_at);

create trigger upload_intents_stamp_timestamps before insert or update on upload_intents
  for each row execute function stamp_timestamps();
create trigger upload_intents_keep_created_by before insert or update on upload_intents
  for each row execute function keep_created_by();

alter table upload_intents enable row level security;
create policy "uploaders see their own uploads in progress"
  on upload_intents for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid()));
create policy "members but directors start their own uploads"
  on upload_intents for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid())
              and (select bizos.app_role()) <> 'director');
create policy "uploaders record the multipart upload of their own uploads"
  on upload_intents for update to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid()))
  with check (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid()));
create policy "uploaders finish or discard their own uploads"
  on upload_intents for delete to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid()));
grant select, delete on upload_intents to bizos_authenticated;
grant insert (tenant_id, bucket, owner_lock) on upload_intents to bizos_authenticated;
grant update (multipart_id) on upload_intents to bizos_authenticated;

-- Directors read everything and write nothing (SPEC §3): V8 let every
-- member register files, directors included (the RLS matrix's insert probe
-- was vacuous and did not notice).
drop policy "members register their own uploads" on objects;
create policy "members but directors register their own uploads"
  on objects for insert to bizos_authenticated
  with check (tenant_id = (select bizos.tenant_id()) and created_by = (select bizos.uid())
              and (select bizos.app_role()) <> 'director');

-- ---------------------------------------------------------------- RPCs of the uploader
-- upload_begin(bucket, owner_lock) -> {object_id, bucket, object_key}
create function upload_begin(bucket text, owner_lock integer default null) returns jsonb
language plpgsql
as $$
declare
  r upload_intents;
begin
  if bizos.uid() is null or bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  if not exists (select 1 from storage_buckets b where b.bucket = upload_begin.bucket) then
    perform raise_field('bucket', format('no bucket %s', upload_begin.bucket));
  end if;
  if upload_begin.owner_lock is not null and upload_begin.owner_lock <= 0 then
    perform raise_field('owner_lock', 'must be positive');
  end if;
  insert into upload_intents (tenant_id, bucket, owner_lock)
  values (bizos.tenant_id(), upload_begin.bucket, upload_begin.owner_lock)
  returning * into r;
  return jsonb_build_object('object_id', r.object_id, 'bucket', r.bucket, 'object_key', r.object_key);
end
$$;

-- upload_started(object_id, multipart_id): the S3 multipart upload of an
-- upload in progress, recorded before its first part is sent.
create function upload_started(object_id uuid, multipart_id text) returns void
language plpgsql
as $$
begin
  update upload_intents i set multipart_id = upload_started.multipart_id
   where i.tenant_id = bizos.tenant_id() and i.object_id = upload_started.object_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'object_id',
      message = format('object_id: no upload %s of yours in progress', upload_started.object_id);
  end if;
end
$$;

grant execute on function upload_begin(text, integer), upload_started(uuid, text) to bizos_authenticated;

-- object_create as in V14 (payload contract), and it consumes the upload's intent in the same
-- transaction: a file is registered only while its upload is still known
-- (a sweep that removed the bytes also removed the intent, and holds its
-- row lock while doing so).
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
  delete from upload_intents i
   where i.tenant_id = v_tenant and i.object_id = r.object_id and i.bucket = r.bucket
     and i.created_by = bizos.uid();
  if not found then
    raise exception using errcode = 'P0001', column = 'object_id',
      message = format('object_id: no upload %s of yours in bucket %s is in progress (start one with upload_begin; '
                       'an interrupted or expired upload was removed: send the file again)', r.object_id, r.bucket);
  end if;
  return to_jsonb(r);
end
$$;

-- ---------------------------------------------------------------- the sweep (BFF login)
-- upload_sweep_claim(max_age_secs, max_rows): dead intents, locked until
-- the caller's transaction ends (FOR UPDATE SKIP LOCKED: concurrent sweeps
-- claim different intents, and an intent being consumed by object_create is
-- skipped). `registered`: an objects row exists for it (it cannot, since
-- object_create consumes the intent; its bytes are then never touched).
-- Call it in a transaction, delete each claimed intent's bytes, then call
-- upload_intent_forget for it and commit.
create function upload_sweep_claim(max_age_secs double precision, max_rows integer default 100)
returns table (tenant_id uuid, object_id uuid, object_key text, multipart_id text, registered boolean)
language sql
security definer
as $$
  select i.tenant_id, i.object_id, i.object_key, i.multipart_id,
         exists (select 1 from objects o where o.tenant_id = i.tenant_id and o.object_id = i.object_id)
    from upload_intents i
   where i.created_at < pg_catalog.now() - pg_catalog.make_interval(secs => max_age_secs)
      or (i.owner_lock is not null
          and not exists (select 1 from pg_catalog.pg_locks l
                           where l.locktype = 'advisory' and l.granted
                             and l.database = (select d.oid from pg_catalog.pg_database d
                                                where d.datname = pg_catalog.current_database())
                             and l.classid = 1651079791::oid and l.objid = i.owner_lock::oid
                             and l.objsubid = 2))
   order by i.created_at
   limit greatest(max_rows, 1)
     for update of i skip locked
$$;
select pin_search_path('upload_sweep_claim(double precision, integer)');
revoke execute on function upload_sweep_claim(double precision, integer) from public;
grant execute on function upload_sweep_claim(double precision, integer) to bizos_app;

-- upload_intent_forget(tenant_id, object_id): the intent's bytes are gone
-- (a sweep, or the BFF cleaning up after a failed or replayed request).
create function upload_intent_forget(tenant_id uuid, object_id uuid) returns void
language sql
security definer
as $$
  delete from upload_intents i
   where i.tenant_id = upload_intent_forget.tenant_id and i.object_id = upload_intent_forget.object_id
$$;
select pin_search_path('upload_intent_forget(uuid, uuid)');
revoke execute on function upload_intent_forget(uuid, uuid) from public;
grant execute on function upload_intent_forget(uuid, uuid) to bizos_app;

-- Analysts get the new table's view like every other (no personal columns:
-- keys, ids and times).
select analytics_build_views();
