-- Knowledge base: documents, ingestion by kb.ingest jobs, and
-- hybrid retrieval (BM25 + vector, Reciprocal Rank Fusion) under RLS.
-- Tables: migration V28 (its header explains versions, staging and the
-- per-visibility-class term statistics).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- Writers are SECURITY DEFINER (no user writes the tables directly): they
-- check the claims, kb.manage and that the caller manages the document
-- (its owner, or a super admin) themselves, and never answer more than the
-- caller may read. Readers (kb_document_get, kb_document_list, kb_search)
-- are security invoker: RLS decides.
--
-- Lock order, so that concurrent ingestions and deletions cannot deadlock:
-- the tenant's knowledge-base lock (transaction advisory lock
-- (1801675106, hashtext(tenant_id)), taken first by every function that
-- changes kb_chunks and by the statistics triggers), then the document
-- row, then chunks and statistics rows.

-- ---------------------------------------------------------------- the read rule
-- THE rule for reading a document, its chunks and the term statistics of
-- its visibility class: the select policies of kb_documents, kb_chunks,
-- kb_terms and kb_stats call it with the viewer as once-per-statement
-- subqueries, and kb_lexical_scores (definer) applies it. A single
-- expression without FROM or SET clause, each viewer argument used once (an
-- argument holding a subquery and used twice stops inlining): PostgreSQL
-- inlines it into the policies.
create or replace function kb_readable(visibility text, owner_user_id uuid, dept_code text, app_roles text[],
                                       viewer uuid, viewer_role text, viewer_dept text) returns boolean
language sql immutable
as $$
  select visibility = 'tenant'
      or owner_user_id = viewer
      or viewer_role = any (case when visibility = 'roles' then app_roles || array['super_admin', 'director']
                                 else array['super_admin', 'director'] end)
      or (visibility = 'department' and dept_code = viewer_dept)
$$;
grant execute on function kb_readable(text, uuid, text, text[], uuid, text, text) to bizos_authenticated;
comment on function kb_readable(text, uuid, text, text[], uuid, text, text) is
  'May the viewer read a knowledge-base row of this visibility (tenant; department = viewer''s dept_code; roles containing the viewer''s role; always the owner, super admins and directors)?';

-- On Citus the same expressions without the sub-select wrappers, which
-- Citus refuses in policies (citus_unwrap_sub_selects).
do $$
declare
  v_readable constant text := $e$tenant_id = (select bizos.tenant_id())
         and kb_readable(visibility, owner_user_id, dept_code, app_roles,
                         (select bizos.uid()), (select bizos.app_role()), (select my_dept_code()))$e$;
  r record;
begin
  for r in
    select * from (values
      ('readers of a document see it', 'kb_documents'),
      ('readers of a document see its chunks', 'kb_chunks'),
      ('readers see the term statistics of the chunks they read', 'kb_terms'),
      ('readers see the collection statistics of the chunks they read', 'kb_stats')) as p (name, rel)
  loop
    execute format('drop policy if exists %I on %I', r.name, r.rel);
    execute format('create policy %I on %I for select to bizos_authenticated using (%s)', r.name, r.rel,
      case when citus_table(r.rel::regclass) then citus_unwrap_sub_selects(v_readable) else v_readable end);
  end loop;
end
$$;

-- ---------------------------------------------------------------- locks
-- The tenant's knowledge-base lock (see the header): serialises the
-- transactions that change a tenant's kb_chunks (finish, delete, a
-- visibility change), so their statistics rows are never locked in
-- opposite orders. Held to the end of the transaction.
create or replace function kb_lock_tenant(tenant uuid) returns void
language sql
as $$
  select pg_catalog.pg_advisory_xact_lock(1801675106, pg_catalog.hashtext(tenant::text))
$$;
select pin_search_path('kb_lock_tenant(uuid)');
revoke execute on function kb_lock_tenant(uuid) from public;
comment on function kb_lock_tenant(uuid) is
  'Takes the tenant''s knowledge-base lock (transaction advisory lock 1801675106, hashtext(tenant)); first lock of every change of kb_chunks.';

-- ---------------------------------------------------------------- term statistics
-- Statement-level triggers of kb_chunks (insert, update, delete; one each,
-- transition tables): the batch's chunks are aggregated per visibility
-- class and term and added to (or taken from) kb_stats and kb_terms, one
-- statement each (update the existing rows, insert the others), under the
-- tenant's lock: it serialises every writer of the tenant's statistics, so
-- no two transactions insert the same key or lock rows in opposite orders
-- (an INSERT .. ON CONFLICT cannot carry a negative delta: the CHECK on the
-- proposed row fails first). Rows reaching zero are removed. Chunks of a tenant being deleted are skipped (its
-- statistics go with it). Only the owner writes kb_chunks (the definer
-- functions below, tenant deletion), so this runs as the owner.
create or replace function kb_chunks_count_terms() returns trigger
language plpgsql
as $$
declare
  v_new kb_chunks[];
  v_old kb_chunks[];
  v_tenants uuid[];
  v_tenant uuid;
  v_gone text[];
begin
  if tg_op in ('INSERT', 'UPDATE') then
    select array_agg(n) into v_new from new_rows n;
  end if;
  if tg_op in ('DELETE', 'UPDATE') then
    select array_agg(o) into v_old from old_rows o;
  end if;
  select array_agg(distinct x.tenant_id order by x.tenant_id) into v_tenants
    from (select c.tenant_id from unnest(v_new) c union all select c.tenant_id from unnest(v_old) c) x
   where exists (select 1 from tenants t where t.tenant_id = x.tenant_id);
  if v_tenants is null then
    return null;
  end if;
  foreach v_tenant in array v_tenants loop
    perform kb_lock_tenant(v_tenant);
  end loop;

  -- Tenant by tenant, each statement naming it: on Citus it runs on the
  -- tenant's co-located shards of this node.
  foreach v_tenant in array v_tenants loop
    with d as (
      select x.tenant_id, x.visibility, x.owner_user_id, x.dept_code, x.app_roles,
             sum(x.sign) as chunks, sum(x.sign * x.lex_len) as total_len
        from (select c.tenant_id, c.visibility, case when c.visibility = 'tenant' then null else c.owner_user_id end as owner_user_id,
                     c.dept_code, c.app_roles, c.lex_len::bigint as lex_len, 1 as sign
                from unnest(v_new) c
              union all
              select c.tenant_id, c.visibility, case when c.visibility = 'tenant' then null else c.owner_user_id end,
                     c.dept_code, c.app_roles, c.lex_len, -1
                from unnest(v_old) c) x
       where x.tenant_id = v_tenant
       group by 1, 2, 3, 4, 5
      having sum(x.sign) <> 0 or sum(x.sign * x.lex_len) <> 0
    ), up as (
      update kb_stats s set chunks = s.chunks + d.chunks, total_len = s.total_len + d.total_len
        from d
       where s.tenant_id = v_tenant and s.visibility = d.visibility
         and s.owner_user_id is not distinct from d.owner_user_id and s.dept_code is not distinct from d.dept_code
         and s.app_roles is not distinct from d.app_roles
      returning s.tenant_id, s.visibility, s.owner_user_id, s.dept_code, s.app_roles
    )
    insert into kb_stats (tenant_id, visibility, owner_user_id, dept_code, app_roles, chunks, total_len)
    select v_tenant, d.visibility, d.owner_user_id, d.dept_code, d.app_roles, d.chunks, d.total_len
      from d
     where not exists (select 1 from up
                        where up.tenant_id = d.tenant_id and up.visibility = d.visibility
                          and up.owner_user_id is not distinct from d.owner_user_id
                          and up.dept_code is not distinct from d.dept_code
                          and up.app_roles is not distinct from d.app_roles);
    delete from kb_stats s where s.tenant_id = v_tenant and s.chunks = 0;

    with d as (
      select x.tenant_id, x.visibility, x.owner_user_id, x.dept_code, x.app_roles, u.term, sum(x.sign) as df
        from (select c.tenant_id, c.visibility, case when c.visibility = 'tenant' then null else c.owner_user_id end as owner_user_id,
                     c.dept_code, c.app_roles, c.tsv, 1 as sign
                from unnest(v_new) c
              union all
              select c.tenant_id, c.visibility, case when c.visibility = 'tenant' then null else c.owner_user_id end,
                     c.dept_code, c.app_roles, c.tsv, -1
                from unnest(v_old) c) x
       cross join lateral unnest(pg_catalog.tsvector_to_array(x.tsv)) as u (term)
       where x.tenant_id = v_tenant
       group by 1, 2, 3, 4, 5, 6
      having sum(x.sign) <> 0
    ), up as (
      update kb_terms t set df = t.df + d.df
        from d
       where t.tenant_id = v_tenant and t.term = d.term and t.visibility = d.visibility
         and t.owner_user_id is not distinct from d.owner_user_id and t.dept_code is not distinct from d.dept_code
         and t.app_roles is not distinct from d.app_roles
      returning t.tenant_id, t.term, t.visibility, t.owner_user_id, t.dept_code, t.app_roles
    )
    insert into kb_terms (tenant_id, visibility, owner_user_id, dept_code, app_roles, term, df)
    select v_tenant, d.visibility, d.owner_user_id, d.dept_code, d.app_roles, d.term, d.df
      from d
     where not exists (select 1 from up
                        where up.tenant_id = d.tenant_id and up.term = d.term and up.visibility = d.visibility
                          and up.owner_user_id is not distinct from d.owner_user_id
                          and up.dept_code is not distinct from d.dept_code
                          and up.app_roles is not distinct from d.app_roles);
    if v_old is not null then
      select array_agg(distinct u.term) into v_gone
        from unnest(v_old) c cross join lateral unnest(pg_catalog.tsvector_to_array(c.tsv)) as u (term)
       where c.tenant_id = v_tenant;
      delete from kb_terms t where t.tenant_id = v_tenant and t.term = any (v_gone) and t.df = 0;
    end if;
  end loop;
  return null;
end
$$;
select pin_search_path('kb_chunks_count_terms()');
revoke execute on function kb_chunks_count_terms() from public;
comment on function kb_chunks_count_terms() is
  'Statement-level trigger of kb_chunks: adds or removes the batch''s chunks to the BM25 statistics (kb_stats, kb_terms) of their visibility class.';
create or replace trigger kb_chunks_count_terms_insert after insert on kb_chunks
  referencing new table as new_rows for each statement execute function kb_chunks_count_terms();
create or replace trigger kb_chunks_count_terms_update after update on kb_chunks
  referencing old table as old_rows new table as new_rows for each statement execute function kb_chunks_count_terms();
create or replace trigger kb_chunks_count_terms_delete after delete on kb_chunks
  referencing old table as old_rows for each statement execute function kb_chunks_count_terms();

-- ---------------------------------------------------------------- helpers of the RPCs
-- The JSON of a document (never to_jsonb of the row): what its readers
-- see. may_manage: the caller holds kb.manage (`manager`) and owns it or
-- is a super admin.
create or replace function kb_document_json(d kb_documents, manager boolean) returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'document_id', d.document_id, 'title', d.title, 'owner_user_id', d.owner_user_id,
    'visibility', d.visibility, 'dept_code', d.dept_code, 'app_roles', to_jsonb(d.app_roles),
    'format', d.format, 'object_id', d.object_id, 'version', d.version,
    'status', d.status, 'failure_reason', d.failure_reason,
    'chunks_total', d.chunks_total, 'chunks_done', d.chunks_done,
    'ready_version', d.ready_version, 'ready_at', d.ready_at, 'job_id', d.job_id,
    'created_at', d.created_at, 'updated_at', d.updated_at,
    'may_manage', coalesce(manager and (bizos.app_role() = 'super_admin' or d.owner_user_id = bizos.uid()), false))
$$;
select pin_search_path('kb_document_json(kb_documents, boolean)');
grant execute on function kb_document_json(kb_documents, boolean) to bizos_authenticated;
comment on function kb_document_json(kb_documents, boolean) is
  'The JSON answer for a knowledge-base document (fields listed, never the whole row); manager: the caller holds kb.manage.';

-- The document `document_id` for a change by the caller, locked: the
-- claims, kb.manage, the document readable by the caller (else P0002) and
-- managed by them (its owner or a super admin, else 42501). With
-- lock_tenant, the tenant's knowledge-base lock is taken before the row's.
create or replace function kb_document_for_change(document_id uuid, lock_tenant boolean) returns kb_documents
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_dept text := my_dept_code();
  d kb_documents;
begin
  if v_uid is null or v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform require_permission('kb.manage');
  if kb_document_for_change.document_id is null then
    perform raise_field('document_id', 'is required');
  end if;
  if lock_tenant then
    perform kb_lock_tenant(v_tenant);
  end if;
  select * into d from kb_documents x
   where x.tenant_id = v_tenant and x.document_id = kb_document_for_change.document_id
     and kb_readable(x.visibility, x.owner_user_id, x.dept_code, x.app_roles, v_uid, v_role, v_dept)
     for update;
  if not found then
    raise exception using errcode = 'P0002', column = 'document_id',
      message = format('document_id: no document %s', kb_document_for_change.document_id);
  end if;
  if v_role is distinct from 'super_admin' and d.owner_user_id is distinct from v_uid then
    raise exception using errcode = '42501', column = 'document_id',
      message = format('document_id: document %s is managed by its owner and super admins', d.document_id);
  end if;
  return d;
end
$$;
select pin_search_path('kb_document_for_change(uuid, boolean)');
revoke execute on function kb_document_for_change(uuid, boolean) from public;
comment on function kb_document_for_change(uuid, boolean) is
  'The document locked for a change by the caller (claims, kb.manage, readable, owner or super admin); for the definer RPCs of kb.sql.';

-- The ingestion's version must be the document's current one: another
-- (older) version is stale and its job has nothing left to do (P0002 on
-- `version`; the handler completes its job).
create or replace function kb_require_version(d kb_documents, version integer) returns void
language plpgsql
as $$
begin
  if version is null then
    perform raise_field('version', 'is required');
  end if;
  if version <> d.version then
    raise exception using errcode = 'P0002', column = 'version',
      message = format('version: document %s is at version %s; version %s is no longer ingested',
                       d.document_id, d.version, version);
  end if;
end
$$;
select pin_search_path('kb_require_version(kb_documents, integer)');
revoke execute on function kb_require_version(kb_documents, integer) from public;

-- The upload `object_id` for a document of the caller, and its format: an
-- object of this tenant in bucket knowledge that the caller uploaded,
-- complete (registered by object_create, no upload intent left) and used
-- by no document. `format` (optional) must suit the file's content type;
-- without it the format follows from the content type (and, for
-- text/plain, from the file name: .md, .markdown, .htm, .html).
create or replace function kb_upload_check(object_id uuid, format text, out obj objects, out kb_format text)
language plpgsql
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_guess text;
begin
  if kb_upload_check.object_id is null then
    perform raise_field('object_id', 'is required');
  end if;
  select * into obj from objects o where o.tenant_id = v_tenant and o.object_id = kb_upload_check.object_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'object_id',
      message = format('object_id: no file %s in this tenant', kb_upload_check.object_id);
  end if;
  if obj.bucket <> 'knowledge' then
    perform raise_field('object_id', format('file %s is in bucket %s, not knowledge', obj.object_id, obj.bucket));
  end if;
  if obj.created_by is distinct from bizos.uid() then
    raise exception using errcode = '42501', column = 'object_id',
      message = format('object_id: file %s was uploaded by someone else', obj.object_id);
  end if;
  if exists (select 1 from upload_intents i where i.tenant_id = v_tenant and i.object_id = obj.object_id) then
    perform raise_field('object_id', format('the upload of file %s is not complete', obj.object_id));
  end if;
  if exists (select 1 from kb_documents d
              where d.tenant_id = v_tenant and (d.object_id = obj.object_id or d.ready_object_id = obj.object_id)) then
    raise exception using errcode = 'P0001', column = 'object_id',
      message = format('object_id: file %s already belongs to a document', obj.object_id);
  end if;
  v_guess := case
    when obj.content_type = 'application/pdf' then 'pdf'
    when obj.content_type = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' then 'docx'
    when obj.content_type = 'text/markdown' then 'md'
    when obj.content_type = 'text/html' then 'html'
    when obj.content_type = 'text/plain' and obj.file_name ~* '\.(md|markdown)$' then 'md'
    when obj.content_type = 'text/plain' and obj.file_name ~* '\.html?$' then 'html'
    when obj.content_type = 'text/plain' then 'txt'
  end;
  if v_guess is null then
    perform raise_field('object_id', format('%s files are not knowledge-base documents', obj.content_type));
  end if;
  kb_format := coalesce(lower(kb_upload_check.format), v_guess);
  if not exists (select 1 from kb_formats f where f.code = kb_format) then
    perform raise_field('format', 'must be one of ' || (select string_agg(f.code, ', ' order by f.position) from kb_formats f));
  end if;
  if kb_format <> v_guess and not (v_guess in ('txt', 'md', 'html') and kb_format in ('txt', 'md', 'html')) then
    perform raise_field('format', format('a %s file cannot be read as %s', obj.content_type, kb_format));
  end if;
end
$$;
select pin_search_path('kb_upload_check(uuid, text)');
revoke execute on function kb_upload_check(uuid, text) from public;

-- Visibility fields of a payload (register, update), checked: visibility
-- (a kb_visibilities term), dept_code (required for and only with
-- 'department'), app_roles (app roles, required for and only with 'roles';
-- stored sorted and distinct).
create or replace function kb_visibility_check(payload jsonb, visibility text,
                                               out kb_visibility text, out kb_dept_code text, out kb_app_roles text[])
language plpgsql
as $$
declare
  v_roles jsonb := payload -> 'app_roles';
  v_bad text;
begin
  kb_visibility := lower(visibility);
  if not exists (select 1 from kb_visibilities v where v.code = kb_visibility) then
    perform raise_field('visibility',
      'must be one of ' || (select string_agg(v.code, ', ' order by v.position) from kb_visibilities v));
  end if;
  kb_dept_code := payload_text(payload, 'dept_code', false, 50);
  if kb_visibility = 'department' and kb_dept_code is null then
    perform raise_field('dept_code', 'is required when visibility is department');
  end if;
  if kb_visibility <> 'department' and kb_dept_code is not null then
    perform raise_field('dept_code', 'is only for visibility department');
  end if;
  if v_roles is not null and jsonb_typeof(v_roles) <> 'null' then
    select array_agg(distinct lower(btrim(r)) order by lower(btrim(r))) into kb_app_roles
      from jsonb_array_elements_text(v_roles) r;
  end if;
  if kb_visibility = 'roles' and kb_app_roles is null then
    perform raise_field('app_roles', 'is required when visibility is roles (a list of app roles)');
  end if;
  if kb_visibility <> 'roles' and kb_app_roles is not null then
    perform raise_field('app_roles', 'is only for visibility roles');
  end if;
  if cardinality(kb_app_roles) > 20 then
    perform raise_field('app_roles', 'at most 20 roles');
  end if;
  select format('app_roles[%s]', x.i - 1) into v_bad
    from jsonb_array_elements_text(coalesce(nullif(v_roles, 'null'::jsonb), '[]')) with ordinality as x (r, i)
   where not exists (select 1 from app_roles a where a.code = lower(btrim(x.r)))
   order by x.i limit 1;
  if v_bad is not null then
    perform raise_field(v_bad, 'must be one of ' || (select string_agg(a.code, ', ' order by a.position) from app_roles a));
  end if;
end
$$;
select pin_search_path('kb_visibility_check(jsonb, text)');
revoke execute on function kb_visibility_check(jsonb, text) from public;

-- A file no document uses any more: its objects row goes (downloads stop
-- at once) and an upload intent without owner takes its place, so the
-- storage.sweep job removes the bytes once the intent is older than the
-- longest upload (as for any dead upload). The BFF may remove the bytes
-- at once after commit and call upload_intent_forget. Returns the object
-- key, or NULL when the file is still used (or gone, or of another bucket).
create or replace function kb_object_retire(tenant uuid, obj uuid) returns text
language plpgsql
as $$
declare
  v_key text;
  v_bucket text;
begin
  if obj is null or exists (select 1 from kb_documents d
                                where d.tenant_id = tenant and (d.object_id = obj or d.ready_object_id = obj)) then
    return null;
  end if;
  delete from objects o where o.tenant_id = tenant and o.object_id = obj and o.bucket = 'knowledge'
  returning o.object_key, o.bucket into v_key, v_bucket;
  if v_key is null then
    return null;
  end if;
  insert into upload_intents (tenant_id, object_id, bucket, owner_lock)
  values (tenant, obj, v_bucket, null)
  on conflict do nothing;
  return v_key;
end
$$;
select pin_search_path('kb_object_retire(uuid, uuid)');
revoke execute on function kb_object_retire(uuid, uuid) from public;
comment on function kb_object_retire(uuid, uuid) is
  'Removes the objects row of a knowledge file no document uses and leaves an owner-less upload intent, so storage.sweep deletes its bytes; returns its key.';

-- ---------------------------------------------------------------- documents: the manager's RPCs
-- kb_document_register({object_id, title, visibility?, dept_code?, app_roles?, format?})
--   -> the document (status queued)
-- The caller (kb.manage) uploaded the file to bucket knowledge
-- (upload_begin + object_create); the document is theirs (owner). The
-- kb.ingest job of version 1 is enqueued in the same transaction
-- (payload {document_id, version}, dedup key kb.ingest:<document>:<version>).
create or replace function kb_document_register(payload jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_title text;
  v_vis record;
  v_up record;
  v_id uuid := gen_random_uuid();
  v_job uuid;
  d kb_documents;
begin
  if v_uid is null or v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform require_permission('kb.manage');
  perform payload_check(payload, '{"object_id": "uuid", "object": {"object_id": "uuid", "bucket": "text", "file_name": "text", "content_type": "text", "size_bytes": "integer", "sha256": "text"}, "title": "text", "visibility": "text", "dept_code": "text",
                                   "app_roles": "text[]", "format": "text"}');
  v_title := payload_text(payload, 'title', true, 200);
  select * into v_vis from kb_visibility_check(payload, coalesce(payload_text(payload, 'visibility', false, 20), 'tenant'));
  select * into v_up from kb_upload_check(object_of_upload(payload), payload_text(payload, 'format', false, 20));
  v_job := job_enqueue('kb.ingest', jsonb_build_object('document_id', v_id, 'version', 1), null, 0,
                       format('kb.ingest:%s:1', v_id));
  insert into kb_documents (tenant_id, document_id, title, owner_user_id, visibility, dept_code, app_roles,
                            format, object_id, job_id)
  values (v_tenant, v_id, v_title, v_uid, v_vis.kb_visibility, v_vis.kb_dept_code, v_vis.kb_app_roles,
          v_up.kb_format, (v_up.obj).object_id, v_job)
  returning * into d;
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_document_register(jsonb)');
revoke execute on function kb_document_register(jsonb) from public;
grant execute on function kb_document_register(jsonb) to bizos_authenticated;
comment on function kb_document_register(jsonb) is
  'Registers an uploaded file of bucket knowledge as a knowledge-base document of the caller (kb.manage) and enqueues its kb.ingest job; returns the document.';

-- kb_document_replace(document_id, {object_id, format?, title?}) -> the document
-- A new upload of the document: version + 1, status queued, its kb.ingest
-- job enqueued. The chunks of the ready version stay searchable until the
-- new version's kb_ingest_finish swaps them; an unfinished upload it
-- supersedes is retired at once (its staged chunks removed).
create or replace function kb_document_replace(document_id uuid, payload jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_up record;
  v_title text;
  v_job uuid;
  d kb_documents;
  v_superseded uuid;
begin
  if bizos.uid() is null or v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform require_permission('kb.manage');
  perform payload_check(payload, '{"object_id": "uuid", "object": {"object_id": "uuid", "bucket": "text", "file_name": "text", "content_type": "text", "size_bytes": "integer", "sha256": "text"}, "format": "text", "title": "text"}');
  d := kb_document_for_change(kb_document_replace.document_id, false);
  v_title := coalesce(payload_text(payload, 'title', false, 200), d.title);
  select * into v_up from kb_upload_check(object_of_upload(payload), payload_text(payload, 'format', false, 20));
  v_superseded := case when d.object_id is distinct from d.ready_object_id then d.object_id end;
  delete from kb_chunk_staging s where s.tenant_id = v_tenant and s.document_id = d.document_id;
  v_job := job_enqueue('kb.ingest', jsonb_build_object('document_id', d.document_id, 'version', d.version + 1), null, 0,
                       format('kb.ingest:%s:%s', d.document_id, d.version + 1));
  update kb_documents x
     set title = v_title, object_id = (v_up.obj).object_id, format = v_up.kb_format, version = d.version + 1,
         status = 'queued', failure_reason = null, chunks_total = null, chunks_done = 0, job_id = v_job
   where x.tenant_id = v_tenant and x.document_id = d.document_id
  returning * into d;
  perform kb_object_retire(v_tenant, v_superseded);
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_document_replace(uuid, jsonb)');
revoke execute on function kb_document_replace(uuid, jsonb) from public;
grant execute on function kb_document_replace(uuid, jsonb) to bizos_authenticated;
comment on function kb_document_replace(uuid, jsonb) is
  'Replaces the file of a knowledge-base document (new version, queued, kb.ingest enqueued); the ready version stays searchable until the new one is finished.';

-- kb_document_update(document_id, {title?, visibility?, dept_code?, app_roles?})
--   -> the document
-- Title and who reads it; a visibility change is applied to its chunks in
-- the same transaction (and moves their term statistics).
create or replace function kb_document_update(document_id uuid, payload jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_vis record;
  v_title text;
  d kb_documents;
begin
  if bizos.uid() is null or v_tenant is null then
    raise exception using errcode = '42501', message = 'no user in the request claims';
  end if;
  perform require_permission('kb.manage');
  perform payload_check(payload, '{"title": "text", "visibility": "text", "dept_code": "text", "app_roles": "text[]"}');
  d := kb_document_for_change(kb_document_update.document_id, true);
  if payload ? 'title' and payload_text(payload, 'title', true, 200) is null then
    perform raise_field('title', 'is required');
  end if;
  if payload ?| array['visibility', 'dept_code', 'app_roles'] then
    select * into v_vis from kb_visibility_check(payload, coalesce(payload_text(payload, 'visibility', false, 20), d.visibility));
  else
    select d.visibility as kb_visibility, d.dept_code as kb_dept_code, d.app_roles as kb_app_roles into v_vis;
  end if;
  v_title := payload_text(payload, 'title', false, 200);  -- (Citus: no VOLATILE function in an UPDATE)
  update kb_documents x
     set title = coalesce(v_title, x.title),
         visibility = v_vis.kb_visibility, dept_code = v_vis.kb_dept_code, app_roles = v_vis.kb_app_roles
   where x.tenant_id = v_tenant and x.document_id = d.document_id
  returning * into d;
  update kb_chunks c
     set visibility = d.visibility, dept_code = d.dept_code, app_roles = d.app_roles, owner_user_id = d.owner_user_id
   where c.tenant_id = v_tenant and c.document_id = d.document_id
     and (c.visibility, c.dept_code, c.app_roles, c.owner_user_id)
         is distinct from (d.visibility, d.dept_code, d.app_roles, d.owner_user_id);
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_document_update(uuid, jsonb)');
revoke execute on function kb_document_update(uuid, jsonb) from public;
grant execute on function kb_document_update(uuid, jsonb) to bizos_authenticated;
comment on function kb_document_update(uuid, jsonb) is
  'Changes the title or visibility of a knowledge-base document (and of its chunks, in the same transaction); returns the document.';

-- kb_document_delete(document_id) -> {document_id, deleted, object_keys}
-- The document, its chunks, vectors and staged chunks go in this
-- transaction (the term statistics follow); its files are retired
-- (kb_object_retire: objects rows gone, bytes swept by storage.sweep, or
-- by the BFF at once: object_keys). A kb.ingest job still queued finds no
-- document (P0002) and completes.
create or replace function kb_document_delete(document_id uuid) returns jsonb
language plpgsql
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  d kb_documents;
  v_keys jsonb := '[]';
  v_key text;
begin
  d := kb_document_for_change(kb_document_delete.document_id, true);
  delete from kb_documents x where x.tenant_id = v_tenant and x.document_id = d.document_id;
  foreach v_key in array array[kb_object_retire(v_tenant, d.object_id), kb_object_retire(v_tenant, d.ready_object_id)] loop
    if v_key is not null then
      v_keys := v_keys || to_jsonb(v_key);
    end if;
  end loop;
  return jsonb_build_object('document_id', d.document_id, 'deleted', true, 'object_keys', v_keys);
end
$$;
select pin_search_path('kb_document_delete(uuid)');
revoke execute on function kb_document_delete(uuid) from public;
grant execute on function kb_document_delete(uuid) to bizos_authenticated;
comment on function kb_document_delete(uuid) is
  'Deletes a knowledge-base document with its chunks and vectors in one transaction and retires its files; returns the retired object keys.';

-- ---------------------------------------------------------------- documents: readers
-- kb_document_get(document_id) -> the document (status, chunks_done of
-- chunks_total, failure_reason) when the caller may read it, else P0002.
create or replace function kb_document_get(document_id uuid) returns jsonb
language plpgsql
stable
as $$
declare
  d kb_documents;
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  select * into d from kb_documents x
   where x.tenant_id = bizos.tenant_id() and x.document_id = kb_document_get.document_id;
  if not found then
    raise exception using errcode = 'P0002', column = 'document_id',
      message = format('document_id: no document %s', kb_document_get.document_id);
  end if;
  return kb_document_json(d, has_permission('kb.manage'));
end
$$;
grant execute on function kb_document_get(uuid) to bizos_authenticated;
comment on function kb_document_get(uuid) is
  'A knowledge-base document the caller may read (RLS), with its ingestion state; P0002 otherwise.';

-- kb_document_list(status?, max_rows = 100, updated_before?) -> [document, ...]
-- The documents the caller may read, most recently changed first; the next
-- page passes the last updated_at as updated_before.
create or replace function kb_document_list(status text default null, max_rows integer default 100,
                                            updated_before timestamptz default null) returns jsonb
language plpgsql
stable
as $$
declare
  v_manager boolean;
begin
  if bizos.tenant_id() is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if kb_document_list.status is not null
     and not exists (select 1 from kb_statuses s where s.code = kb_document_list.status) then
    perform raise_field('status', 'must be one of ' || (select string_agg(s.code, ', ' order by s.position) from kb_statuses s));
  end if;
  if max_rows is null or max_rows not between 1 and 500 then
    perform raise_field('max_rows', 'must be between 1 and 500');
  end if;
  v_manager := has_permission('kb.manage');
  return coalesce((
    select jsonb_agg(kb_document_json(x, v_manager) order by x.updated_at desc, x.document_id)
      from (select * from kb_documents d
             where d.tenant_id = bizos.tenant_id()
               and (kb_document_list.status is null or d.status = kb_document_list.status)
               and (updated_before is null or d.updated_at < updated_before)
             order by d.updated_at desc, d.document_id
             limit max_rows) x), '[]');
end
$$;
grant execute on function kb_document_list(text, integer, timestamptz) to bizos_authenticated;
comment on function kb_document_list(text, integer, timestamptz) is
  'The knowledge-base documents the caller may read (RLS), newest change first, optionally of one status; max_rows 1-500.';

-- ---------------------------------------------------------------- ingestion (the kb.ingest handler)
-- The handler runs as the job's creator (the user who registered or
-- replaced the document): every call checks that they still manage it.
-- A stale version (replaced since) or a deleted document answers P0002
-- (column version / document_id): the job has nothing left to do.

-- kb_ingest_start(document_id, version) -> {document_id, version, status,
--   format, object_id, object_key, content_type, file_name, size_bytes,
--   title, chunks_total, chunks_done, resume_from}
-- Status extracting (or, when this version is already ready - a rerun
-- after kb_ingest_finish committed - status ready: complete the job).
-- resume_from: the first chunk_no not yet stored for this version (chunks
-- below it were written by an earlier attempt; sending them again is
-- harmless, they are skipped).
create or replace function kb_ingest_start(document_id uuid, version integer) returns jsonb
language plpgsql
security definer
as $$
declare
  d kb_documents;
  o objects;
  v_done integer;
  v_resume integer;
begin
  d := kb_document_for_change(kb_ingest_start.document_id, false);
  perform kb_require_version(d, kb_ingest_start.version);
  select * into o from objects x where x.tenant_id = d.tenant_id and x.object_id = d.object_id;
  select count(*) into v_done from kb_chunk_staging s
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version;
  select min(g) into v_resume from generate_series(0, v_done) g
   where not exists (select 1 from kb_chunk_staging s
                      where s.tenant_id = d.tenant_id and s.document_id = d.document_id
                        and s.version = d.version and s.chunk_no = g);
  if d.status <> 'ready' then
    update kb_documents x set status = 'extracting', failure_reason = null, chunks_done = v_done
     where x.tenant_id = d.tenant_id and x.document_id = d.document_id
    returning * into d;
  end if;
  return jsonb_build_object(
    'document_id', d.document_id, 'version', d.version, 'status', d.status, 'format', d.format,
    'object_id', o.object_id, 'object_key', o.object_key, 'content_type', o.content_type,
    'file_name', o.file_name, 'size_bytes', o.size_bytes, 'title', d.title,
    'chunks_total', d.chunks_total, 'chunks_done', d.chunks_done,
    'resume_from', case when d.status = 'ready' then d.chunks_total else v_resume end);
end
$$;
select pin_search_path('kb_ingest_start(uuid, integer)');
revoke execute on function kb_ingest_start(uuid, integer) from public;
grant execute on function kb_ingest_start(uuid, integer) to bizos_authenticated;
comment on function kb_ingest_start(uuid, integer) is
  'kb.ingest handler: starts (or resumes) the ingestion of a document version (status extracting); returns the file to read and resume_from; P0002 when stale.';

-- kb_ingest_progress(document_id, version, status, chunks_total?) -> the document
-- status extracting or embedding; chunks_total once the text is chunked.
create or replace function kb_ingest_progress(document_id uuid, version integer, status text,
                                              chunks_total integer default null) returns jsonb
language plpgsql
security definer
as $$
declare
  d kb_documents;
  v_done integer;
begin
  d := kb_document_for_change(kb_ingest_progress.document_id, false);
  perform kb_require_version(d, kb_ingest_progress.version);
  if kb_ingest_progress.status is null or kb_ingest_progress.status not in ('extracting', 'embedding') then
    perform raise_field('status', 'must be extracting or embedding');
  end if;
  if d.status = 'ready' then
    perform raise_field('version', format('version %s of document %s is ready', d.version, d.document_id));
  end if;
  select count(*) into v_done from kb_chunk_staging s
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version;
  if kb_ingest_progress.chunks_total is not null
     and kb_ingest_progress.chunks_total not between greatest(v_done, 0) and 1000000 then
    perform raise_field('chunks_total', format('must be between %s (chunks already stored) and 1000000', v_done));
  end if;
  update kb_documents x
     set status = kb_ingest_progress.status, failure_reason = null, chunks_done = v_done,
         chunks_total = coalesce(kb_ingest_progress.chunks_total, x.chunks_total)
   where x.tenant_id = d.tenant_id and x.document_id = d.document_id
  returning * into d;
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_ingest_progress(uuid, integer, text, integer)');
revoke execute on function kb_ingest_progress(uuid, integer, text, integer) from public;
grant execute on function kb_ingest_progress(uuid, integer, text, integer) to bizos_authenticated;
comment on function kb_ingest_progress(uuid, integer, text, integer) is
  'kb.ingest handler: records the status (extracting, embedding) and chunks_total of the version being ingested.';

-- kb_ingest_chunks(document_id, version, chunks) -> {written, skipped, chunks_done, chunks_total}
-- chunks: [{chunk_no, text, heading_path?, page_start?, page_end?,
-- token_count, embedding: [384 numbers]}, ...] (at most 256). Stored for
-- the version (not searchable before kb_ingest_finish); a chunk_no already
-- stored is skipped (a rerun after a crash). Status becomes embedding.
create or replace function kb_ingest_chunks(document_id uuid, version integer, chunks jsonb) returns jsonb
language plpgsql
security definer
as $$
declare
  d kb_documents;
  c jsonb;
  i integer := 0;
  f text;
  v_no integer;
  v_from integer;
  v_to integer;
  v_dims integer;
  v_bad text;
  v_field text;
  v_written integer;
  v_done integer;
begin
  d := kb_document_for_change(kb_ingest_chunks.document_id, false);
  perform kb_require_version(d, kb_ingest_chunks.version);
  if d.status = 'ready' then
    perform raise_field('version', format('version %s of document %s is ready', d.version, d.document_id));
  end if;
  if chunks is null or jsonb_typeof(chunks) <> 'array' then
    perform raise_field('chunks', 'must be a list of chunks');
  end if;
  if jsonb_array_length(chunks) > 256 then
    perform raise_field('chunks', 'at most 256 chunks per call');
  end if;
  -- Every chunk is checked before anything is written.
  for c in select e from jsonb_array_elements(chunks) e loop
    f := format('chunks[%s]', i);
    if jsonb_typeof(c) <> 'object' then
      perform raise_field(f, 'must be an object');
    end if;
    select format('%s.%s', f, k) into v_bad from jsonb_object_keys(c) k
     where k <> all (array['chunk_no', 'text', 'heading_path', 'page_start', 'page_end', 'token_count', 'embedding'])
     order by k limit 1;
    if v_bad is not null then
      perform raise_field(v_bad, 'unknown field (allowed: chunk_no, text, heading_path, page_start, page_end, token_count, embedding)');
    end if;
    foreach v_field in array array['chunk_no', 'token_count', 'page_start', 'page_end'] loop
      if jsonb_typeof(c -> v_field) not in ('number', 'null') or (c ->> v_field)::numeric <> round((c ->> v_field)::numeric) then
        perform raise_field(f || '.' || v_field, 'must be a whole number');
      end if;
      if abs((c ->> v_field)::numeric) > 1000000000 then
        perform raise_field(f || '.' || v_field, 'is too large');
      end if;
    end loop;
    foreach v_field in array array['text', 'heading_path'] loop
      if jsonb_typeof(c -> v_field) not in ('string', 'null') then
        perform raise_field(f || '.' || v_field, 'must be a string');
      end if;
    end loop;
    v_no := (c ->> 'chunk_no')::integer;
    if v_no is null then
      perform raise_field(f || '.chunk_no', 'is required');
    end if;
    if v_no < 0 or v_no >= coalesce(d.chunks_total, 1000000) then
      perform raise_field(f || '.chunk_no', format('must be between 0 and %s', coalesce(d.chunks_total, 1000000) - 1));
    end if;
    if c ->> 'text' is null or btrim(c ->> 'text') = '' then
      perform raise_field(f || '.text', 'is required');
    end if;
    if length(c ->> 'text') > 100000 then
      perform raise_field(f || '.text', 'at most 100000 characters');
    end if;
    if length(c ->> 'heading_path') > 2000 then
      perform raise_field(f || '.heading_path', 'at most 2000 characters');
    end if;
    v_from := (c ->> 'page_start')::integer;
    v_to := (c ->> 'page_end')::integer;
    if v_from < 1 then
      perform raise_field(f || '.page_start', 'must be 1 or more');
    end if;
    if v_to < coalesce(v_from, 1) then
      perform raise_field(f || '.page_end', 'must be page_start or more');
    end if;
    if c ->> 'token_count' is null then
      perform raise_field(f || '.token_count', 'is required');
    end if;
    if (c ->> 'token_count')::integer < 0 then
      perform raise_field(f || '.token_count', 'must be 0 or more');
    end if;
    if jsonb_typeof(c -> 'embedding') is distinct from 'array' then
      perform raise_field(f || '.embedding', 'must be a list of 384 numbers');
    end if;
    v_dims := jsonb_array_length(c -> 'embedding');
    if v_dims is distinct from 384 then
      perform raise_field(f || '.embedding', format('must be 384 numbers, not %s', coalesce(v_dims, 0)));
    end if;
    if exists (select 1 from jsonb_array_elements(c -> 'embedding') x where jsonb_typeof(x) <> 'number') then
      perform raise_field(f || '.embedding', 'must be 384 numbers');
    end if;
    if not exists (select 1 from jsonb_array_elements(c -> 'embedding') x where (x #>> '{}')::double precision <> 0) then
      perform raise_field(f || '.embedding', 'is the zero vector (no direction to compare)');
    end if;
    i := i + 1;
  end loop;
  if (select count(distinct (e ->> 'chunk_no')::integer) from jsonb_array_elements(chunks) e) <> jsonb_array_length(chunks) then
    perform raise_field('chunks', 'a chunk_no appears twice');
  end if;

  insert into kb_chunk_staging (tenant_id, document_id, version, chunk_no, heading_path, page_start, page_end,
                                text, token_count, embedding)
  select d.tenant_id, d.document_id, d.version, (e ->> 'chunk_no')::integer, coalesce(e ->> 'heading_path', ''),
         (e ->> 'page_start')::integer, (e ->> 'page_end')::integer, e ->> 'text', (e ->> 'token_count')::integer,
         (select array_agg((x.v #>> '{}')::real order by x.o) from jsonb_array_elements(e -> 'embedding') with ordinality as x (v, o))::bizos.vector(384)
    from jsonb_array_elements(chunks) e
   order by (e ->> 'chunk_no')::integer
  on conflict on constraint kb_chunk_staging_pkey do nothing;
  get diagnostics v_written = row_count;
  select count(*) into v_done from kb_chunk_staging s
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version;
  update kb_documents x
     set status = 'embedding', failure_reason = null, chunks_done = v_done
   where x.tenant_id = d.tenant_id and x.document_id = d.document_id
  returning * into d;
  return jsonb_build_object('written', v_written, 'skipped', jsonb_array_length(chunks) - v_written,
                            'chunks_done', d.chunks_done, 'chunks_total', d.chunks_total);
end
$$;
select pin_search_path('kb_ingest_chunks(uuid, integer, jsonb)');
revoke execute on function kb_ingest_chunks(uuid, integer, jsonb) from public;
grant execute on function kb_ingest_chunks(uuid, integer, jsonb) to bizos_authenticated;
comment on function kb_ingest_chunks(uuid, integer, jsonb) is
  'kb.ingest handler: stores a batch of chunks with their embeddings for the version being ingested; chunks already stored are skipped.';

-- kb_ingest_finish(document_id, version) -> the document (status ready)
-- Every chunk 0..n-1 of the version must be stored (n = chunks_total when
-- set). In one transaction: the previous version's chunks leave
-- kb_chunks, the new ones enter it (tsvector and BM25 length computed
-- here), the staging rows go, the previous file is retired. Readers see
-- the old version or the new one, never both or neither. A rerun after it
-- committed answers the ready document.
create or replace function kb_ingest_finish(document_id uuid, version integer) returns jsonb
language plpgsql
security definer
as $$
declare
  d kb_documents;
  v_count integer;
  v_max integer;
  v_previous uuid;
begin
  d := kb_document_for_change(kb_ingest_finish.document_id, true);
  perform kb_require_version(d, kb_ingest_finish.version);
  if d.status = 'ready' then
    return kb_document_json(d, true);
  end if;
  select count(*), max(s.chunk_no) into v_count, v_max from kb_chunk_staging s
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version;
  if v_count = 0 then
    perform raise_field('chunks', format('no chunk of version %s was stored (a document without text fails: kb_ingest_fail)', d.version));
  end if;
  if v_max <> v_count - 1 or v_count <> coalesce(d.chunks_total, v_count) then
    perform raise_field('chunks', format('%s of %s chunks are stored (chunk_no 0 to %s expected)',
                                         v_count, coalesce(d.chunks_total, v_max + 1), coalesce(d.chunks_total, v_max + 1) - 1));
  end if;
  delete from kb_chunks c where c.tenant_id = d.tenant_id and c.document_id = d.document_id;
  insert into kb_chunks (tenant_id, document_id, version, chunk_no, owner_user_id, visibility, dept_code, app_roles,
                         heading_path, page_start, page_end, text, token_count, tsv, lex_len, embedding)
  select s.tenant_id, s.document_id, s.version, s.chunk_no, d.owner_user_id, d.visibility, d.dept_code, d.app_roles,
         s.heading_path, s.page_start, s.page_end, s.text, s.token_count, v.tsv,
         (select coalesce(sum(coalesce(pg_catalog.array_length(u.positions, 1), 1)), 0) from unnest(v.tsv) u)::integer,
         s.embedding
    from kb_chunk_staging s
   cross join lateral (select pg_catalog.to_tsvector('simple'::regconfig, s.heading_path || ' ' || s.text) as tsv) v
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version
   order by s.chunk_no;
  delete from kb_chunk_staging s where s.tenant_id = d.tenant_id and s.document_id = d.document_id;
  v_previous := d.ready_object_id;
  update kb_documents x
     set status = 'ready', failure_reason = null, chunks_total = v_count, chunks_done = v_count,
         ready_version = x.version, ready_object_id = x.object_id, ready_at = now()
   where x.tenant_id = d.tenant_id and x.document_id = d.document_id
  returning * into d;
  if v_previous is distinct from d.object_id then
    perform kb_object_retire(d.tenant_id, v_previous);
  end if;
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_ingest_finish(uuid, integer)');
revoke execute on function kb_ingest_finish(uuid, integer) from public;
grant execute on function kb_ingest_finish(uuid, integer) to bizos_authenticated;
comment on function kb_ingest_finish(uuid, integer) is
  'kb.ingest handler: makes the stored chunks of the version searchable and drops the previous version''s, atomically; status ready.';

-- kb_ingest_fail(document_id, version, reason) -> the document (status failed)
-- The chunks stored for the version are removed; an earlier ready version
-- stays searchable. reason: what the user reads ("the PDF has no text
-- layer"), at most 1000 characters (longer is cut).
create or replace function kb_ingest_fail(document_id uuid, version integer, reason text) returns jsonb
language plpgsql
security definer
as $$
declare
  d kb_documents;
begin
  d := kb_document_for_change(kb_ingest_fail.document_id, false);
  perform kb_require_version(d, kb_ingest_fail.version);
  if reason is null or btrim(reason) = '' then
    perform raise_field('reason', 'is required');
  end if;
  if d.status = 'ready' then
    perform raise_field('version', format('version %s of document %s is ready', d.version, d.document_id));
  end if;
  delete from kb_chunk_staging s
   where s.tenant_id = d.tenant_id and s.document_id = d.document_id and s.version = d.version;
  update kb_documents x
     set status = 'failed', failure_reason = left(btrim(reason), 1000), chunks_done = 0, chunks_total = null
   where x.tenant_id = d.tenant_id and x.document_id = d.document_id
  returning * into d;
  return kb_document_json(d, true);
end
$$;
select pin_search_path('kb_ingest_fail(uuid, integer, text)');
revoke execute on function kb_ingest_fail(uuid, integer, text) from public;
grant execute on function kb_ingest_fail(uuid, integer, text) to bizos_authenticated;
comment on function kb_ingest_fail(uuid, integer, text) is
  'kb.ingest handler: marks the version failed with a reason and removes its stored chunks (an earlier ready version stays searchable).';

-- ---------------------------------------------------------------- search
-- kb_terms_query(terms) -> one OR of the terms, each quoted as tsquery
-- input wants.
create or replace function kb_terms_query(terms text[]) returns tsquery
language sql immutable
as $$
  select string_agg('''' || replace(replace(t, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery
    from unnest(kb_terms_query.terms) t
$$;
revoke execute on function kb_terms_query(text[]) from public;

-- kb_chunk_scores(tenant, tsq, terms, weights, avglen, n, viewer...) ->
-- (chunk_id, score): the BM25 score of each chunk of the tenant matching
-- `tsq` that the viewer may read, best `n` first (ties by chunk_id): each
-- term's tf in the chunk (its positions), weighted by `weights` (qtf *
-- idf), normalised by the chunk's length against `avglen` (k1 1.2,
-- b 0.75). Internal: kb_lexical_scores calls it as the owner, with the
-- caller as the viewer.
create or replace function kb_chunk_scores(tenant uuid, tsq tsquery, terms text[], weights double precision[],
                                           avglen double precision, n integer,
                                           viewer uuid, viewer_role text, viewer_dept text)
returns table (chunk_id uuid, score double precision)
language sql
stable
as $$
  select c.chunk_id,
         sum(w.weight * x.tf * 2.2
             / (x.tf + 1.2 * (0.25 + 0.75 * c.lex_len / greatest(kb_chunk_scores.avglen, 1e-9)))) as score
    from kb_chunks c
   -- Only the query's lexemes of the chunk: setweight marks them (A; a
   -- chunk's own lexemes all carry the default D) and ts_filter keeps
   -- them, both in C, so unnest yields a row per query term instead of
   -- one per distinct word of the chunk.
   cross join lateral (select u.lexeme, coalesce(pg_catalog.array_length(u.positions, 1), 1)::double precision as tf
                         from unnest(pg_catalog.ts_filter(pg_catalog.setweight(c.tsv, 'A', kb_chunk_scores.terms),
                                                          '{a}')) u) x
    join unnest(kb_chunk_scores.terms, kb_chunk_scores.weights) w (term, weight) on w.term = x.lexeme
   where c.tenant_id = kb_chunk_scores.tenant and c.tsv @@ kb_chunk_scores.tsq
     and kb_readable(c.visibility, c.owner_user_id, c.dept_code, c.app_roles,
                     kb_chunk_scores.viewer, kb_chunk_scores.viewer_role, kb_chunk_scores.viewer_dept)
   group by c.chunk_id
   order by 2 desc, c.chunk_id
   limit kb_chunk_scores.n
$$;
revoke execute on function
  kb_chunk_scores(uuid, tsquery, text[], double precision[], double precision, integer, uuid, text, text)
  from public;
select pin_search_path('kb_chunk_scores(uuid, tsquery, text[], double precision[], double precision, integer, uuid, text, text)');

-- kb_lexical_scores(terms, weights, avglen, n) -> (chunk_id, score): the
-- BM25 scores (kb_chunk_scores) of the caller's chunks holding any of
-- `terms`, best `n` first, for kb_search's lexical branch; `weights`
-- (qtf * idf) and `avglen` come from the statistics the caller reads
-- under RLS (kb_search computes them). Only chunks the caller may read
-- (kb_readable, the policies' rule), and only their ids and scores, come
-- out.
-- SECURITY DEFINER for one reason: under RLS the planner may not use the
-- GIN index for `@@` (ts_match_vq is not leakproof, so it cannot run
-- before the policy), and every search would read all of the tenant's
-- chunks. It applies the read rule itself, and scores each chunk on its
-- one read (a second read under RLS to score the ids, as before, cost a
-- third of the search).
-- MaxScore (Turtle and Flood, 1995), exact: the lightest terms, whose
-- bounds add up to at most a fifth of the heaviest term's weight ("of",
-- "the", "what" in a collection that has them everywhere), are left out
-- of the match. A chunk holding none of the other terms scores less than
-- the sum of their bounds (a term adds less than 2.2 = k1 + 1 times its
-- weight), so when the n-th best chunk holding another term scores more,
-- those n are the best n of all; otherwise every matching chunk is scored.
drop function if exists kb_lexical_matches(tsquery);
drop function if exists kb_lexical_scores(tsquery, text[], double precision[], double precision, integer);
create or replace function kb_lexical_scores(terms text[], weights double precision[],
                                             avglen double precision, n integer)
returns table (chunk_id uuid, score double precision)
language plpgsql
stable
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_uid uuid := bizos.uid();
  v_role text := bizos.app_role();
  v_dept text := my_dept_code();
  v_high text[];
  v_bound double precision;
  v_ids uuid[];
  v_scores double precision[];
begin
  if v_tenant is null or coalesce(cardinality(kb_lexical_scores.terms), 0) = 0
     or kb_lexical_scores.n is null or kb_lexical_scores.n < 1 then
    return;
  end if;
  if cardinality(kb_lexical_scores.terms) is distinct from cardinality(kb_lexical_scores.weights) then
    perform raise_field('weights', 'must have one weight for each term');
  end if;
  select array_agg(x.term) filter (where not x.light), coalesce(sum(2.2 * x.weight) filter (where x.light), 0)
    into v_high, v_bound
    from (select u.term, u.weight,
                 sum(2.2 * u.weight) over (order by u.weight, u.term rows unbounded preceding)
                   <= 0.2 * max(u.weight) over () as light
            from unnest(kb_lexical_scores.terms, kb_lexical_scores.weights) u (term, weight)) x;
  if v_bound > 0 and cardinality(v_high) > 0 then
    select array_agg(s.chunk_id order by s.score desc, s.chunk_id),
           array_agg(s.score order by s.score desc, s.chunk_id)
      into v_ids, v_scores
      from kb_chunk_scores(v_tenant, kb_terms_query(v_high), kb_lexical_scores.terms, kb_lexical_scores.weights,
                           kb_lexical_scores.avglen, kb_lexical_scores.n, v_uid, v_role, v_dept) s;
    if cardinality(v_ids) = kb_lexical_scores.n and v_scores[kb_lexical_scores.n] > v_bound then
      return query select * from unnest(v_ids, v_scores);
      return;
    end if;
  end if;
  return query
    select * from kb_chunk_scores(v_tenant, kb_terms_query(kb_lexical_scores.terms), kb_lexical_scores.terms,
                                  kb_lexical_scores.weights, kb_lexical_scores.avglen, kb_lexical_scores.n,
                                  v_uid, v_role, v_dept);
end
$$;
select pin_search_path('kb_lexical_scores(text[], double precision[], double precision, integer)');
revoke execute on function kb_lexical_scores(text[], double precision[], double precision, integer) from public;
grant execute on function kb_lexical_scores(text[], double precision[], double precision, integer)
  to bizos_authenticated;
comment on function kb_lexical_scores(text[], double precision[], double precision, integer) is
  'BM25 scores of the caller''s readable knowledge-base chunks holding any of the terms, best n (exact MaxScore), through the GIN index (which RLS would rule out); for kb_search.';

-- kb_search(query, query_embedding, k = 10, lexical_weight = 1,
--           vector_weight = 1, rrf_k = 60, candidates = greatest(k*4, 50))
-- Hybrid retrieval over the chunks the caller may read (security invoker:
-- RLS applies in both branches).
-- * Lexical branch: BM25 over to_tsvector('simple', heading || text)
--   tokens, k1 = 1.2, b = 0.75,
--     idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
--     score  = sum over query terms t of qtf(t) * idf(t) * tf * (k1 + 1)
--              / (tf + k1 * (1 - b + b * len / avglen))
--   tf = positions of t in the chunk's tsvector, len = its token count
--   (lex_len), N, df and avglen from the statistics of the chunks the
--   caller may read (kb_stats, kb_terms under RLS), qtf = occurrences of t
--   in the query. Candidates: the `candidates` best of all matching chunks.
-- * Vector branch: the `candidates` nearest chunks by cosine distance
--   through the bizos_ivf index (which keeps reading lists while RLS
--   filters rows, so k visible chunks give k rows).
-- * Fusion: score = lexical_weight / (rrf_k + lexical_rank)
--                 + vector_weight / (rrf_k + vector_rank)
--   (a branch that did not return the chunk adds 0); best first, k rows.
-- A weight of 0 turns its branch off (BM25 alone: vector_weight 0 and
-- query_embedding may be NULL; vector alone: lexical_weight 0). Only the
-- vector branch guarantees k rows.
create or replace function kb_search(query text, query_embedding bizos.vector default null, k integer default 10,
                                     lexical_weight double precision default 1, vector_weight double precision default 1,
                                     rrf_k integer default 60, candidates integer default null)
returns table (chunk_id uuid, document_id uuid, version integer, chunk_no integer, title text, heading_path text,
               page_start integer, page_end integer, text text, score double precision,
               lexical_rank integer, vector_rank integer, lexical_score double precision, vector_distance double precision)
language plpgsql
stable
as $$
#variable_conflict use_column
declare
  v_tenant uuid := bizos.tenant_id();
  v_k integer := kb_search.k;
  v_lw double precision := kb_search.lexical_weight;
  v_vw double precision := kb_search.vector_weight;
  v_rrf integer := kb_search.rrf_k;
  v_n integer;
  v_q bizos.vector := kb_search.query_embedding;
  v_qvec tsvector;
  v_terms text[];
  v_weights double precision[];
  v_chunks double precision;
  v_avglen double precision;
  v_lex boolean;
  v_vec boolean;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  if v_k is null or v_k not between 1 and 1000 then
    perform raise_field('k', 'must be between 1 and 1000');
  end if;
  if v_lw is null or v_lw < 0 or v_lw = 'infinity' or v_lw <> v_lw then
    perform raise_field('lexical_weight', 'must be a number, 0 or more');
  end if;
  if v_vw is null or v_vw < 0 or v_vw = 'infinity' or v_vw <> v_vw then
    perform raise_field('vector_weight', 'must be a number, 0 or more');
  end if;
  if v_lw = 0 and v_vw = 0 then
    perform raise_field('lexical_weight', 'lexical_weight and vector_weight cannot both be 0');
  end if;
  if v_rrf is null or v_rrf not between 0 and 100000 then
    perform raise_field('rrf_k', 'must be between 0 and 100000');
  end if;
  if kb_search.candidates is not null and kb_search.candidates not between 1 and 10000 then
    perform raise_field('candidates', 'must be between 1 and 10000');
  end if;
  if length(kb_search.query) > 10000 then
    perform raise_field('query', 'at most 10000 characters');
  end if;
  v_vec := v_vw > 0;
  if v_vec and v_q is null then
    perform raise_field('query_embedding', 'is required when vector_weight is above 0');
  end if;
  if v_vec and bizos.vector_dims(v_q) <> 384 then
    perform raise_field('query_embedding', format('must have 384 dimensions, not %s', bizos.vector_dims(v_q)));
  end if;
  if v_vec and bizos.vector_norm(v_q) = 0 then
    perform raise_field('query_embedding', 'is the zero vector (no direction to compare)');
  end if;
  v_n := greatest(coalesce(kb_search.candidates, greatest(v_k * 4, 50)), v_k);
  v_qvec := pg_catalog.to_tsvector('simple'::regconfig, coalesce(kb_search.query, ''));
  v_lex := v_lw > 0 and pg_catalog.length(v_qvec) > 0;
  if v_lex then
    -- The statistics of the chunks the caller reads (RLS), and each query
    -- term's weight: qtf * idf(t) = qtf * ln(1 + (N - df + 0.5) / (df + 0.5)).
    select coalesce(sum(s.chunks), 0)::double precision,
           coalesce(sum(s.total_len), 0)::double precision / greatest(coalesce(sum(s.chunks), 0), 1)
      into v_chunks, v_avglen
      from kb_stats s
     where s.tenant_id = v_tenant;
    select array_agg(u.lexeme order by u.lexeme),
           array_agg(coalesce(pg_catalog.array_length(u.positions, 1), 1)::double precision
                     * ln(1 + (v_chunks - coalesce(df.df, 0) + 0.5) / (coalesce(df.df, 0) + 0.5))
                     order by u.lexeme)
      into v_terms, v_weights
      from unnest(v_qvec) u
      left join (select t.term, sum(t.df)::double precision as df
                   from kb_terms t
                  where t.tenant_id = v_tenant and t.term = any (pg_catalog.tsvector_to_array(v_qvec))
                  group by t.term) df on df.term = u.lexeme;
  end if;

  return query
  with lex as (
    select m.chunk_id, m.score
      from kb_lexical_scores(v_terms, v_weights, v_avglen, v_n) m
     where v_lex
  ), lexr as (
    select l.chunk_id, l.score, (row_number() over (order by l.score desc, l.chunk_id))::integer as rnk
      from lex l
  ), vec as (
    select c.chunk_id, c.embedding operator(bizos.<=>) v_q as dist
      from kb_chunks c
     where v_vec and c.tenant_id = v_tenant
     order by c.embedding operator(bizos.<=>) v_q
     limit v_n
  ), vecr as (
    select v.chunk_id, v.dist, (row_number() over (order by v.dist, v.chunk_id))::integer as rnk
      from vec v
  ), fused as (
    select coalesce(l.chunk_id, v.chunk_id) as chunk_id,
           coalesce(v_lw / (v_rrf + l.rnk), 0) + coalesce(v_vw / (v_rrf + v.rnk), 0) as score,
           l.rnk as lrank, v.rnk as vrank, l.score as lscore, v.dist as vdist
      from lexr l
      full join vecr v on v.chunk_id = l.chunk_id
  )
  select f.chunk_id, c.document_id, c.version, c.chunk_no, d.title, c.heading_path, c.page_start, c.page_end, c.text,
         f.score, f.lrank, f.vrank, f.lscore, f.vdist::double precision
    from fused f
    join kb_chunks c on c.tenant_id = v_tenant and c.chunk_id = f.chunk_id
    join kb_documents d on d.tenant_id = c.tenant_id and d.document_id = c.document_id
   order by f.score desc, f.vrank nulls last, f.lrank nulls last, f.chunk_id
   limit v_k;
end
$$;
grant execute on function kb_search(text, bizos.vector, integer, double precision, double precision, integer, integer)
  to bizos_authenticated;
comment on function kb_search(text, bizos.vector, integer, double precision, double precision, integer, integer) is
  'Hybrid search of the caller''s readable knowledge-base chunks: BM25 (k1 1.2, b 0.75) and cosine (bizos_ivf) candidates fused by weighted Reciprocal Rank Fusion; k rows whenever k readable chunks exist and vector_weight > 0.';

-- ---------------------------------------------------------------- answers
-- What an answer without a model stands on (issue 49; docs/kb.md "Answers"):
-- the sentences of the retrieved chunks scored by the question's content
-- words. kb_search's lexical branch reads 'simple' tokens (no stop list, no
-- stemming: "of" and "the" match); a sentence that shares only such words
-- with the question answers nothing. Here the question's language picks a
-- configuration that stems (snowball 'english' or 'indonesian'), and the
-- function words of both languages are not terms.

-- Indonesian function words (pronouns, prepositions, conjunctions,
-- question words, particles and auxiliaries). PostgreSQL ships no
-- Indonesian stop list ('indonesian' stems only), and a dictionary's stop
-- list can only be a file in the server's share directory, which a
-- migration cannot write: the list lives here.
create or replace function kb_indonesian_stop_words() returns text[]
language sql immutable parallel safe
as $$
  select array[
    'ada', 'adalah', 'agar', 'akan', 'aku', 'amat', 'anda', 'antara', 'apa', 'apabila', 'apakah', 'atas',
    'atau', 'bagaimana', 'bagaimanakah', 'bagi', 'bahwa', 'banyak', 'beberapa', 'begitu', 'belum', 'berapa',
    'berapakah', 'bila', 'bisa', 'boleh', 'bukan', 'dalam', 'dan', 'dapat', 'dari', 'daripada', 'demikian',
    'dengan', 'di', 'dia', 'dimana', 'engkau', 'hal', 'hanya', 'harus', 'hingga', 'ia', 'ialah', 'ini', 'itu',
    'jadi', 'jika', 'juga', 'kalau', 'kami', 'kamu', 'kan', 'kapan', 'kapankah', 'karena', 'ke', 'kemudian',
    'kenapa', 'kepada', 'kita', 'lagi', 'lah', 'lama', 'maka', 'mana', 'manakah', 'masih', 'mau', 'melainkan',
    'mengapa', 'mereka', 'merupakan', 'namun', 'nya', 'oleh', 'pada', 'para', 'per', 'perlu', 'pun', 'saat',
    'saja', 'sampai', 'sangat', 'saya', 'sebagai', 'sebelum', 'sedang', 'sehingga', 'sejak', 'selain', 'selama',
    'seperti', 'setelah', 'setiap', 'siapa', 'siapakah', 'sudah', 'supaya', 'tanpa', 'telah', 'tentang',
    'terhadap', 'tersebut', 'tetapi', 'tidak', 'untuk', 'yaitu', 'yakni', 'yang']
$$;
grant execute on function kb_indonesian_stop_words() to bizos_authenticated;
comment on function kb_indonesian_stop_words() is
  'Indonesian function words, lower case: not content words of a question (kb_content_terms).';

-- The text search configuration of a text's language: 'indonesian' when
-- more of its distinct words are Indonesian function words than English
-- ones (the 'english' stop list, as english_stem reads it), else
-- 'english'. Only these two: the tenants' languages (tenants.locale).
create or replace function kb_text_language(t text) returns regconfig
language sql immutable parallel safe
as $$
  select case when count(*) filter (where w.word = any (kb_indonesian_stop_words()))
                   > count(*) filter (where pg_catalog.ts_lexize('pg_catalog.english_stem'::regdictionary, w.word) = '{}')
              then 'pg_catalog.indonesian'::regconfig
              else 'pg_catalog.english'::regconfig end
    from pg_catalog.unnest(pg_catalog.tsvector_to_array(pg_catalog.to_tsvector('pg_catalog.simple'::regconfig, coalesce(t, '')))) w (word)
$$;
grant execute on function kb_text_language(text) to bizos_authenticated;
comment on function kb_text_language(text) is
  'The text search configuration of a text''s language (english or indonesian), from the function words it uses.';

-- The content terms of a text: its distinct lexemes under `config`, less
-- the function words of both languages (a word is dropped before it is
-- stemmed, so "apakah" and "the" go whatever the configuration).
create or replace function kb_content_terms(config regconfig, t text) returns text[]
language sql immutable parallel safe
as $$
  select coalesce(array_agg(distinct l.lexeme order by l.lexeme), '{}')
    from pg_catalog.unnest(pg_catalog.tsvector_to_array(pg_catalog.to_tsvector('pg_catalog.simple'::regconfig, coalesce(t, '')))) w (word)
   cross join lateral pg_catalog.unnest(pg_catalog.tsvector_to_array(pg_catalog.to_tsvector(config, w.word))) l (lexeme)
   where w.word <> all (kb_indonesian_stop_words())
     and pg_catalog.ts_lexize('pg_catalog.english_stem'::regdictionary, w.word) <> '{}'
$$;
grant execute on function kb_content_terms(regconfig, text) to bizos_authenticated;
comment on function kb_content_terms(regconfig, text) is
  'Distinct lexemes of a text under a configuration, without English or Indonesian function words.';

-- kb_sentence_scores(question, sentences, contexts, context_weight) -> a
-- row per sentence (1-based sentence_no, in the order given): how much of
-- the question's content terms the sentence carries, read with its context
-- (contexts[i], the title and section of the chunk it comes from) at a
-- lower weight. BM25F (Robertson, Zaragoza and Taylor 2004) over two
-- fields: a term's frequency is tf(sentence) / B(sentence) +
-- context_weight * tf(context) / B(context), each field normalised by its
-- own length against its mean (B = 0.25 + 0.75 * len / avglen), then
-- saturated as BM25 does (k1 = 1.2); idf as kb_search's, with the
-- sentences given as the collection and df the sentences holding the term
-- in either field; the sum over the question's content terms is divided by
-- the sum of their idf. So `lexical` is 0 for a sentence whose sentence
-- and context hold none of them, about 1 for a sentence of mean length
-- holding each once, and a term held nowhere (df 0, the largest idf)
-- weighs most on what is missing. A term only in the context counts
-- context_weight as much: the title says what the sentence is about, not
-- that it states what is asked. `matched`: the content terms the sentence
-- itself holds (the context's are not counted); `terms`: the question's;
-- `language`: the configuration both were read with (kb_text_language of
-- the question). With context_weight 0 this is BM25 of the sentences
-- alone. Pure: reads no table.
create or replace function kb_sentence_scores(question text, sentences text[], contexts text[], context_weight double precision)
returns table (sentence_no integer, language text, terms integer, matched integer, lexical double precision)
language plpgsql immutable parallel safe
as $$
declare
  v_config regconfig;
  v_terms text[];
begin
  if question is null or btrim(question) = '' then
    perform raise_field('question', 'is required');
  end if;
  if length(question) > 10000 then
    perform raise_field('question', 'at most 10000 characters');
  end if;
  if sentences is null then
    perform raise_field('sentences', 'is required (a list of texts, possibly empty)');
  end if;
  if cardinality(sentences) > 2000 then
    perform raise_field('sentences', 'at most 2000 sentences');
  end if;
  if array_position(sentences, null) is not null then
    perform raise_field(format('sentences[%s]', array_position(sentences, null)), 'must be a text, not null');
  end if;
  if contexts is null or cardinality(contexts) <> cardinality(sentences) then
    perform raise_field('contexts', format('must hold one text per sentence (%s), possibly empty', cardinality(sentences)));
  end if;
  if array_position(contexts, null) is not null then
    perform raise_field(format('contexts[%s]', array_position(contexts, null)), 'must be a text, not null');
  end if;
  if context_weight is null or context_weight < 0 or context_weight > 1 then
    perform raise_field('context_weight', 'must be between 0 and 1');
  end if;
  v_config := kb_text_language(question);
  v_terms := kb_content_terms(v_config, question);
  return query
  with s as (
    select u.o::integer as no,
           pg_catalog.to_tsvector(v_config, u.x) as tsv,
           pg_catalog.to_tsvector(v_config, contexts[u.o::integer]) as ctsv
      from pg_catalog.unnest(sentences) with ordinality as u (x, o)
  ), sl as (
    select s.no, s.tsv, s.ctsv,
           (select coalesce(sum(coalesce(pg_catalog.array_length(p.positions, 1), 1)), 0) from pg_catalog.unnest(s.tsv) p)::double precision as len,
           (select coalesce(sum(coalesce(pg_catalog.array_length(p.positions, 1), 1)), 0) from pg_catalog.unnest(s.ctsv) p)::double precision as clen
      from s
  ), st as (
    select count(*)::double precision as n,
           greatest(coalesce(avg(sl.len), 0), 1e-9) as avglen,
           greatest(coalesce(avg(sl.clen), 0), 1e-9) as avgclen
      from sl
  ), tf_s as (
    select sl.no, x.lexeme as term, coalesce(pg_catalog.array_length(x.positions, 1), 1)::double precision as tf
      from sl
     cross join lateral pg_catalog.unnest(pg_catalog.ts_filter(pg_catalog.setweight(sl.tsv, 'A', v_terms), '{a}')) x
  ), tf_c as (
    select sl.no, x.lexeme as term, coalesce(pg_catalog.array_length(x.positions, 1), 1)::double precision as tf
      from sl
     cross join lateral pg_catalog.unnest(pg_catalog.ts_filter(pg_catalog.setweight(sl.ctsv, 'A', v_terms), '{a}')) x
     where context_weight > 0
  ), tf as (
    select coalesce(a.no, b.no) as no, coalesce(a.term, b.term) as term,
           coalesce(a.tf, 0) as tf, coalesce(b.tf, 0) as ctf
      from tf_s a
      full join tf_c b on b.no = a.no and b.term = a.term
  ), w as (
    select t.term, ln(1 + (st.n - count(tf.no) + 0.5) / (count(tf.no) + 0.5)) as idf
      from pg_catalog.unnest(v_terms) t (term)
     cross join st
      left join tf on tf.term = t.term
     group by t.term, st.n
  ), ideal as (
    select sum(w.idf) as idf from w
  ), f as (
    select tf.no, tf.term, tf.tf,
           tf.tf / (0.25 + 0.75 * sl.len / st.avglen)
             + context_weight * tf.ctf / (0.25 + 0.75 * sl.clen / st.avgclen) as ntf
      from tf
      join sl on sl.no = tf.no
     cross join st
  )
  select sl.no, v_config::text, cardinality(v_terms), (count(f.term) filter (where f.tf > 0))::integer,
         coalesce(sum(w.idf * f.ntf * 2.2 / (f.ntf + 1.2)) / nullif(ideal.idf, 0), 0)
    from sl
   cross join ideal
    left join f on f.no = sl.no
    left join w on w.term = f.term
   group by sl.no, ideal.idf
   order by sl.no;
end
$$;
grant execute on function kb_sentence_scores(text, text[], text[], double precision) to bizos_authenticated;
comment on function kb_sentence_scores(text, text[], text[], double precision) is
  'BM25F of each sentence and its context (title and section, at context_weight) for a question''s content terms (stemmed in the question''s language, function words dropped), normalised by the question''s total idf; for the refusal gate and the extractive answer of /api/kb/ask.';

-- kb_sentence_scores(question, sentences): the same without contexts, BM25
-- of the sentences alone (context_weight 0).
create or replace function kb_sentence_scores(question text, sentences text[])
returns table (sentence_no integer, language text, terms integer, matched integer, lexical double precision)
language sql immutable parallel safe
as $$
  select * from kb_sentence_scores(question, sentences,
    pg_catalog.array_fill(''::text, array[coalesce(pg_catalog.cardinality(sentences), 0)]), 0)
$$;
grant execute on function kb_sentence_scores(text, text[]) to bizos_authenticated;
comment on function kb_sentence_scores(text, text[]) is
  'BM25 of each sentence for a question''s content terms (stemmed in the question''s language, function words dropped), normalised by the question''s total idf (kb_sentence_scores with no context).';
