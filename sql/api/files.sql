-- Files: storage objects, bucket limits, the rule that a row uses only its
-- writer's own upload, and upload intents (the uploader's RPCs and sweep).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.

-- The bucket's limits hold for every row, however it is written.
create or replace function objects_check_bucket() returns trigger
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

-- A row may only use a file of the right bucket that its writer uploaded.
-- Trigger argument: the bucket.
create or replace function require_own_object() returns trigger
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

-- upload_begin(bucket, owner_lock) -> {object_id, bucket, object_key}
create or replace function upload_begin(bucket text, owner_lock integer default null) returns jsonb
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
  -- A tenant whose plan's storage is used up is refused before any byte
  -- is sent (the file's registration checks its size: objects_plan_quota).
  perform usage_storage_check(bizos.tenant_id(), 0);
  if upload_begin.owner_lock is not null and upload_begin.owner_lock <= 0 then
    perform raise_field('owner_lock', 'must be positive');
  end if;
  insert into upload_intents (tenant_id, bucket, owner_lock)
  values (bizos.tenant_id(), upload_begin.bucket, upload_begin.owner_lock)
  returning * into r;
  return jsonb_build_object('object_id', r.object_id, 'bucket', r.bucket, 'object_key', r.object_key);
end
$$;
grant execute on function upload_begin(text, integer) to bizos_authenticated;

-- upload_started(object_id, multipart_id): the S3 multipart upload of an
-- upload in progress, recorded before its first part is sent.
create or replace function upload_started(object_id uuid, multipart_id text) returns void
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
grant execute on function upload_started(uuid, text) to bizos_authenticated;

-- object_create({object_id, bucket, file_name, content_type, size_bytes, sha256})
--   -> {object_id, bucket, object_key, ...}
-- The BFF has streamed the bytes to object_key (tenant/bucket/object_id)
-- and registers them in the transaction of the request that uses them.
-- It consumes the upload's intent in the same
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
grant execute on function object_create(jsonb)
  to bizos_authenticated;

-- object_of_upload(payload) -> object_id: the file a SECURITY DEFINER RPC's
-- payload names. With `object` (object_create's payload) the upload is
-- registered here, as the function's owner, in the RPC's transaction; with
-- `object_id`, a file registered before. The BFF passes `object`: on Citus
-- a transaction may not write a tenant's shards as two users, and
-- object_create called by the request role before an RPC of the owner
-- wrote them as the request role ("cannot perform query on placements that
-- were modified in this transaction by a different user"). The RPCs that
-- call it check the caller's permission first; object_create checks that
-- the upload is the caller's.
create or replace function object_of_upload(payload jsonb) returns uuid
language plpgsql
as $$
begin
  if payload ? 'object' and jsonb_typeof(payload -> 'object') <> 'null' then
    if payload ? 'object_id' then
      perform raise_field('object', 'give object or object_id, not both');
    end if;
    return (object_create(payload -> 'object') ->> 'object_id')::uuid;
  end if;
  return payload_uuid(payload, 'object_id', true);
end
$$;
select pin_search_path('object_of_upload(jsonb)');
revoke execute on function object_of_upload(jsonb) from public;

-- upload_owner_locks_held() -> the owner locks (second key of the
-- session-level advisory locks 1651079791, owner_lock) held in this
-- database on this node: the processes whose uploads are still going.
-- Advisory locks are a node's own. On Citus the BFF holds its lock on the
-- coordinator, and a statement over upload_intents runs on the tenant's
-- worker, which holds none: the sweep reads the locks here first, into a
-- variable, and passes them on.
-- upload_intent_dead(created_at, owner_lock, max_age_secs, held): the
-- upload of an intent will never finish: it is older than the longest
-- possible upload, or its process's lock is not among `held`.
-- Called only by the SECURITY DEFINER functions below (pg_locks is readable
-- by anyone), so they need no privileges of their own.
drop function if exists upload_intent_dead(upload_intents, double precision);
create or replace function upload_owner_locks_held() returns integer[]
language sql
stable
as $$
  select coalesce(pg_catalog.array_agg(l.objid::bigint::integer), '{}')
    from pg_catalog.pg_locks l
   where l.locktype = 'advisory' and l.granted
     and l.database = (select d.oid from pg_catalog.pg_database d
                        where d.datname = pg_catalog.current_database())
     and l.classid = 1651079791::oid and l.objsubid = 2
$$;
select pin_search_path('upload_owner_locks_held()');
revoke execute on function upload_owner_locks_held() from public;

create or replace function upload_intent_dead(created_at timestamptz, owner_lock integer,
                                              max_age_secs double precision, held integer[])
returns boolean
language sql
stable
as $$
  select created_at < pg_catalog.now() - pg_catalog.make_interval(secs => max_age_secs)
      or (owner_lock is not null and owner_lock <> all (held))
$$;
select pin_search_path('upload_intent_dead(timestamptz, integer, double precision, integer[])');
revoke execute on function upload_intent_dead(timestamptz, integer, double precision, integer[]) from public;

-- upload_sweep_claim(tenant, max_age_secs, max_rows): the tenant's dead
-- intents, locked until the caller's transaction ends (FOR UPDATE SKIP
-- LOCKED: concurrent sweeps claim different intents, and an intent being
-- consumed by object_create is skipped). Per tenant, as the `storage.sweep`
-- job that calls it (one per tenant with dead intents). `registered`: an
-- objects row exists for it (it cannot, since object_create consumes the
-- intent; its bytes are then never touched). Call it in a transaction,
-- delete each claimed intent's bytes, then call upload_intent_forget for it
-- and commit.
-- Its first argument was named tenant_id, as its first column; PL/pgSQL
-- (which it is now) refuses an argument and a column of the same name.
do $rename$
begin
  if exists (select 1 from pg_catalog.pg_proc
              where oid = pg_catalog.to_regprocedure('upload_sweep_claim(uuid, double precision, integer)')
                and proargnames[1] = 'tenant_id') then
    drop function upload_sweep_claim(uuid, double precision, integer);
  end if;
end
$rename$;
create or replace function upload_sweep_claim(tenant uuid, max_age_secs double precision,
                                              max_rows integer default 100)
returns table (tenant_id uuid, object_id uuid, object_key text, multipart_id text, registered boolean)
language plpgsql
security definer
as $$
declare
  v_held integer[] := upload_owner_locks_held();
begin
  return query
  select i.tenant_id, i.object_id, i.object_key, i.multipart_id,
         -- The tenant as the parameter, not i.tenant_id: Citus routes FOR
         -- UPDATE only when every table is filtered by a value.
         exists (select 1 from objects o
                  where o.tenant_id = upload_sweep_claim.tenant and o.object_id = i.object_id)
    from upload_intents i
   where i.tenant_id = upload_sweep_claim.tenant
     and upload_intent_dead(i.created_at, i.owner_lock, max_age_secs, v_held)
   order by i.created_at
   limit greatest(max_rows, 1)
     for update of i skip locked;
end
$$;
select pin_search_path('upload_sweep_claim(uuid, double precision, integer)');
revoke execute on function upload_sweep_claim(uuid, double precision, integer) from public;
grant execute on function upload_sweep_claim(uuid, double precision, integer) to bizos_worker;

-- upload_sweep_enqueue(max_age_secs) -> jobs enqueued: a `storage.sweep`
-- job (system job, low priority) for every tenant that has a dead upload
-- intent and no sweep waiting yet. The BFF calls it at start (the uploads
-- of a process that crashed are found at once), the worker every sweep
-- period; tenants without dead uploads get no job.
create or replace function upload_sweep_enqueue(max_age_secs double precision) returns integer
language plpgsql
security definer
as $$
declare
  v_tenant uuid;
  v_count integer := 0;
  v_held integer[] := upload_owner_locks_held();
begin
  if max_age_secs is null or max_age_secs <= 0 then
    raise exception using errcode = '22023', column = 'max_age_secs',
      message = 'max_age_secs: must be a positive number of seconds';
  end if;
  -- The tenants with dead intents (one statement over every shard on
  -- Citus), then each one's status and waiting sweep on its own shards: a
  -- join of the reference table tenants with both is refused there.
  for v_tenant in
    select distinct i.tenant_id from upload_intents i
     where upload_intent_dead(i.created_at, i.owner_lock, max_age_secs, v_held)
     order by i.tenant_id
  loop
    continue when not exists (select 1 from tenants t where t.tenant_id = v_tenant and t.status = 'active');
    continue when exists (select 1 from jobs j
                           where j.tenant_id = v_tenant and j.kind = 'storage.sweep' and j.status = 'queued');
    perform job_insert(v_tenant, null, 'storage.sweep',
                       pg_catalog.jsonb_build_object('max_age_secs', max_age_secs), null, -10, null);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;
select pin_search_path('upload_sweep_enqueue(double precision)');
revoke execute on function upload_sweep_enqueue(double precision) from public;
grant execute on function upload_sweep_enqueue(double precision) to bizos_app, bizos_worker;

-- upload_intent_forget(tenant_id, object_id): the intent's bytes are gone
-- (a sweep, or the BFF cleaning up after a failed or replayed request).
create or replace function upload_intent_forget(tenant_id uuid, object_id uuid) returns void
language sql
security definer
as $$
  delete from upload_intents i
   where i.tenant_id = upload_intent_forget.tenant_id and i.object_id = upload_intent_forget.object_id
$$;
select pin_search_path('upload_intent_forget(uuid, uuid)');
revoke execute on function upload_intent_forget(uuid, uuid) from public;
grant execute on function upload_intent_forget(uuid, uuid) to bizos_app, bizos_worker;
