-- Internal knowledge base (issue 16): documents uploaded to bucket
-- `knowledge`, ingested by `kb.ingest` jobs into chunks with a lexical
-- (tsvector) and a vector (bizos.vector(384)) index, searched by kb_search
-- (BM25 + vector, fused with Reciprocal Rank Fusion) under RLS.
--
-- Functions, the read policies (they call kb_readable) and the trigger
-- attachments of the term statistics live in sql/api/kb.sql.
--
-- Who reads a document and its chunks (kb_readable, one rule for every
-- table below): everyone of the tenant when visibility = 'tenant'; the
-- users whose profile dept_code is the document's when 'department'; the
-- users whose app role is in app_roles when 'roles'; always its owner,
-- super admins and directors (who read everything of the tenant).
-- Who manages (register, replace, update, delete, ingest): holders of
-- kb.manage, on documents they own; super admins on every document.
-- Nothing but the SECURITY DEFINER functions of kb.sql writes these tables.
--
-- Visibility is copied onto every chunk (and onto the term statistics) so
-- that RLS decides on the row itself, without a join to the document.
--
-- Versions: a document's `version` is the upload being ingested (or
-- ingested); `ready_version` the one whose chunks kb_chunks holds. An
-- ingestion writes into kb_chunk_staging; kb_ingest_finish swaps the
-- staged chunks into kb_chunks and drops the previous version's in one
-- transaction, so kb_chunks only ever holds searchable chunks and the term
-- statistics count exactly those.
--
-- Term statistics for BM25 (kb_terms: document frequency per term,
-- kb_stats: chunk count and total length) are kept per visibility class
-- (visibility, dept_code, app_roles and, unless visible to the whole
-- tenant, the owner) and read under the same RLS as the chunks: a caller's
-- BM25 uses the statistics of exactly the chunks they may read, and the
-- statistics never tell anyone which words hidden documents contain.

-- ---------------------------------------------------------------- btree_gin
-- The lexical index is GIN on (tenant_id, tsv): "this tenant's chunks
-- containing any of these terms" in one index scan. btree_gin is installed
-- by `bizos db bootstrap` (sql/bootstrap/database.sql, superuser).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'btree_gin') then
    raise exception using errcode = '55000',
      message = 'extension btree_gin is not installed in this database: run `bizos db bootstrap` (sql/bootstrap/database.sql) first';
  end if;
end
$$;

-- ---------------------------------------------------------------- vocabularies
create table kb_visibilities (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint kb_visibilities_pkey primary key (code),
  constraint kb_visibilities_position_key unique (position),
  constraint kb_visibilities_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table kb_visibilities is 'Vocabulary: who reads a knowledge-base document (kb_documents.visibility).';
insert into kb_visibilities (code, position, description) values
  ('tenant',     1, 'everyone of the tenant'),
  ('department', 2, 'users whose profile dept_code is the document''s dept_code (and its owner, super admins, directors)'),
  ('roles',      3, 'users whose app role is one of the document''s app_roles (and its owner, super admins, directors)');
grant select on kb_visibilities to bizos_authenticated, bizos_worker;

create table kb_formats (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint kb_formats_pkey primary key (code),
  constraint kb_formats_position_key unique (position),
  constraint kb_formats_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table kb_formats is 'Vocabulary: file formats the knowledge base extracts (kb_documents.format).';
insert into kb_formats (code, position, description) values
  ('pdf',  1, 'PDF with a text layer (pages)'),
  ('docx', 2, 'Word document (headings from styles)'),
  ('txt',  3, 'plain text'),
  ('md',   4, 'Markdown (headings)'),
  ('html', 5, 'HTML (h1-h6 headings)');
grant select on kb_formats to bizos_authenticated, bizos_worker;

create table kb_statuses (
  code        text     not null,
  position    smallint not null,
  description text,
  constraint kb_statuses_pkey primary key (code),
  constraint kb_statuses_position_key unique (position),
  constraint kb_statuses_code_check check (code ~ '^[a-z][a-z0-9_]{0,19}$')
);
comment on table kb_statuses is 'Vocabulary: ingestion states of a knowledge-base document (kb_documents.status).';
insert into kb_statuses (code, position, description) values
  ('queued',     1, 'waiting for its kb.ingest job'),
  ('extracting', 2, 'the job reads the text out of the file'),
  ('embedding',  3, 'the job embeds and stores the chunks (chunks_done of chunks_total)'),
  ('ready',      4, 'searchable'),
  ('failed',     5, 'ingestion failed: failure_reason says why (an earlier ready version stays searchable)');
grant select on kb_statuses to bizos_authenticated, bizos_worker;

-- ---------------------------------------------------------------- documents
create table kb_documents (
  tenant_id       uuid        not null,
  document_id     uuid        not null default gen_random_uuid(),
  title           text        not null,
  owner_user_id   uuid        default bizos.uid(),
  visibility      text        not null default 'tenant',
  -- visibility = 'department': the department (profiles.dept_code).
  dept_code       text,
  -- visibility = 'roles': the app roles that read it (sorted, distinct).
  app_roles       text[],
  format          text        not null,
  -- The upload of `version` (bucket knowledge).
  object_id       uuid        not null,
  -- Bumped by every replace; the ingestion of another version is stale.
  version         integer     not null default 1,
  status          text        not null default 'queued',
  failure_reason  text,
  chunks_total    integer,
  chunks_done     integer     not null default 0,
  -- The version (and its upload) whose chunks are searchable; NULL before
  -- the first ingestion finished.
  ready_version   integer,
  ready_object_id uuid,
  ready_at        timestamptz,
  -- The kb.ingest job of `version`.
  job_id          uuid,
  created_by      uuid        default bizos.uid(),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint kb_documents_pkey primary key (tenant_id, document_id),
  constraint kb_documents_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint kb_documents_owner_user_id_fkey foreign key (tenant_id, owner_user_id)
    references profiles (tenant_id, user_id) on delete set null (owner_user_id),
  constraint kb_documents_created_by_fkey foreign key (tenant_id, created_by)
    references profiles (tenant_id, user_id) on delete set null (created_by),
  constraint kb_documents_visibility_fkey foreign key (visibility) references kb_visibilities (code),
  constraint kb_documents_format_fkey foreign key (format) references kb_formats (code),
  constraint kb_documents_status_fkey foreign key (status) references kb_statuses (code),
  constraint kb_documents_object_id_fkey foreign key (tenant_id, object_id) references objects (tenant_id, object_id),
  constraint kb_documents_ready_object_id_fkey foreign key (tenant_id, ready_object_id)
    references objects (tenant_id, object_id),
  constraint kb_documents_object_id_key unique (tenant_id, object_id),
  constraint kb_documents_title_check check (length(btrim(title)) between 1 and 200),
  constraint kb_documents_dept_code_check check (
    (visibility = 'department') = (dept_code is not null) and length(dept_code) between 1 and 50),
  constraint kb_documents_app_roles_check check (
    (visibility = 'roles') = (app_roles is not null)
    and cardinality(app_roles) between 1 and 20 and array_position(app_roles, null) is null),
  constraint kb_documents_failure_reason_check check (
    (status = 'failed') = (failure_reason is not null) and length(failure_reason) between 1 and 1000),
  constraint kb_documents_chunks_check check (
    chunks_done >= 0 and chunks_total >= 0 and chunks_done <= chunks_total),
  constraint kb_documents_version_check check (version >= 1 and ready_version between 1 and version),
  constraint kb_documents_ready_check check (
    (ready_version is null) = (ready_object_id is null) and (ready_version is null) = (ready_at is null)),
  constraint kb_documents_ready_status_check check (status <> 'ready' or ready_version = version)
);
comment on table kb_documents is
  'Knowledge-base documents (issue 16): an uploaded file in bucket knowledge, who reads it (visibility) and its ingestion state.';
comment on column kb_documents.version is 'The upload being (or last) ingested; bumped by kb_document_replace.';
comment on column kb_documents.ready_version is 'The version whose chunks are searchable (kb_chunks); NULL before the first ingestion finished.';
create index kb_documents_owner_user_id_idx on kb_documents (tenant_id, owner_user_id);
create index kb_documents_ready_object_id_idx on kb_documents (tenant_id, ready_object_id);
create index kb_documents_updated_at_idx on kb_documents (tenant_id, updated_at desc);

create trigger kb_documents_stamp_timestamps before insert or update on kb_documents
  for each row execute function stamp_timestamps();
create trigger kb_documents_keep_created_by before insert or update on kb_documents
  for each row execute function keep_created_by();
select bizos.enable_audit('kb_documents');

-- Read policy: sql/api/kb.sql (it calls kb_readable). No write grants: the
-- RPCs of kb.sql write.
alter table kb_documents enable row level security;
grant select on kb_documents to bizos_authenticated;

-- ---------------------------------------------------------------- chunks
create table kb_chunks (
  tenant_id     uuid        not null,
  chunk_id      uuid        not null default gen_random_uuid(),
  document_id   uuid        not null,
  version       integer     not null,
  -- 0-based position in the document.
  chunk_no      integer     not null,
  -- Copied from the document (kb_document_update keeps them equal): RLS
  -- decides on the chunk itself.
  owner_user_id uuid,
  visibility    text        not null,
  dept_code     text,
  app_roles     text[],
  heading_path  text        not null default '',
  page_start    integer,
  page_end      integer,
  text          text        not null,
  -- Tokens of the embedding model's tokenizer (the chunker's count).
  token_count   integer     not null,
  -- to_tsvector('simple', heading_path || ' ' || text), and its length in
  -- tokens (the sum of its lexemes' position counts) for BM25.
  tsv           tsvector    not null,
  lex_len       integer     not null,
  embedding     bizos.vector(384) not null,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint kb_chunks_pkey primary key (tenant_id, chunk_id),
  constraint kb_chunks_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint kb_chunks_document_id_fkey foreign key (tenant_id, document_id)
    references kb_documents (tenant_id, document_id) on delete cascade,
  constraint kb_chunks_visibility_fkey foreign key (visibility) references kb_visibilities (code),
  constraint kb_chunks_document_id_version_chunk_no_key unique (tenant_id, document_id, version, chunk_no),
  constraint kb_chunks_chunk_no_check check (chunk_no >= 0),
  constraint kb_chunks_pages_check check (page_start >= 1 and page_end >= page_start),
  constraint kb_chunks_text_check check (length(text) between 1 and 100000),
  constraint kb_chunks_token_count_check check (token_count >= 0),
  constraint kb_chunks_lex_len_check check (lex_len >= 0)
);
comment on table kb_chunks is
  'Searchable chunks of the ready version of every knowledge-base document: text with heading path and pages, tsvector and embedding; visibility copied from the document.';
comment on column kb_chunks.lex_len is 'Length in tokens of tsv (sum of the position counts of its lexemes): the document length of BM25.';
create index kb_chunks_embedding_idx on kb_chunks using bizos_ivf (embedding bizos.vector_cosine_ops) with (lists = 100);
create index kb_chunks_tsv_idx on kb_chunks using gin (tenant_id, tsv);

create trigger kb_chunks_stamp_timestamps before insert or update on kb_chunks
  for each row execute function stamp_timestamps();

-- Read policy and the statistics triggers: sql/api/kb.sql.
alter table kb_chunks enable row level security;
grant select on kb_chunks to bizos_authenticated;

-- Chunks of a version being ingested: written batch by batch by the job,
-- moved into kb_chunks by kb_ingest_finish. Only the definer functions of
-- kb.sql write it.
create table kb_chunk_staging (
  tenant_id    uuid        not null,
  document_id  uuid        not null,
  version      integer     not null,
  chunk_no     integer     not null,
  heading_path text        not null default '',
  page_start   integer,
  page_end     integer,
  text         text        not null,
  token_count  integer     not null,
  embedding    bizos.vector(384) not null,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  constraint kb_chunk_staging_pkey primary key (tenant_id, document_id, version, chunk_no),
  constraint kb_chunk_staging_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint kb_chunk_staging_document_id_fkey foreign key (tenant_id, document_id)
    references kb_documents (tenant_id, document_id) on delete cascade,
  constraint kb_chunk_staging_chunk_no_check check (chunk_no >= 0),
  constraint kb_chunk_staging_pages_check check (page_start >= 1 and page_end >= page_start),
  constraint kb_chunk_staging_text_check check (length(text) between 1 and 100000),
  constraint kb_chunk_staging_token_count_check check (token_count >= 0)
);
comment on table kb_chunk_staging is
  'Chunks of a knowledge-base document version still being ingested (not searchable); kb_ingest_finish moves them into kb_chunks.';
create trigger kb_chunk_staging_stamp_timestamps before insert or update on kb_chunk_staging
  for each row execute function stamp_timestamps();
-- Those who manage a document (its owner, super admins) may look at its
-- ingestion in progress; writes go through kb.sql only.
alter table kb_chunk_staging enable row level security;
create policy "managers of a document see the chunks of its ingestion in progress"
  on kb_chunk_staging for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and ((select bizos.app_role()) = 'super_admin'
              or exists (select 1 from kb_documents d
                          where d.tenant_id = kb_chunk_staging.tenant_id and d.document_id = kb_chunk_staging.document_id
                            and d.owner_user_id = (select bizos.uid()))));
grant select on kb_chunk_staging to bizos_authenticated;

-- ---------------------------------------------------------------- BM25 statistics
-- Per tenant and visibility class (owner_user_id is NULL for visibility
-- 'tenant'): maintained by the statement-level triggers of kb_chunks
-- (kb.sql), read under the chunks' RLS rule.
create table kb_terms (
  tenant_id     uuid   not null,
  visibility    text   not null,
  owner_user_id uuid,
  dept_code     text,
  app_roles     text[],
  term          text   not null,
  -- Chunks of the class containing the term.
  df            bigint not null,
  constraint kb_terms_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint kb_terms_visibility_fkey foreign key (visibility) references kb_visibilities (code),
  constraint kb_terms_key unique nulls not distinct (tenant_id, term, visibility, owner_user_id, dept_code, app_roles),
  constraint kb_terms_df_check check (df >= 0)
);
comment on table kb_terms is
  'BM25 document frequencies: chunks of kb_chunks containing each term, per tenant and visibility class (read under the chunks'' rule).';
alter table kb_terms enable row level security;
grant select on kb_terms to bizos_authenticated;

create table kb_stats (
  tenant_id     uuid   not null,
  visibility    text   not null,
  owner_user_id uuid,
  dept_code     text,
  app_roles     text[],
  chunks        bigint not null,
  -- Sum of kb_chunks.lex_len.
  total_len     bigint not null,
  constraint kb_stats_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint kb_stats_visibility_fkey foreign key (visibility) references kb_visibilities (code),
  constraint kb_stats_key unique nulls not distinct (tenant_id, visibility, owner_user_id, dept_code, app_roles),
  constraint kb_stats_chunks_check check (chunks >= 0 and total_len >= 0)
);
comment on table kb_stats is
  'BM25 collection statistics: chunk count and total token length of kb_chunks per tenant and visibility class (read under the chunks'' rule).';
alter table kb_stats enable row level security;
grant select on kb_stats to bizos_authenticated;

-- ---------------------------------------------------------------- files
-- Readers of a document may download its file (citations name it): the
-- objects policy also lets through the files of readable documents (the
-- subquery runs under kb_documents' RLS).
drop policy "files are visible to their uploader, super admins and through the rows that use them" on objects;
create policy "files are visible to their uploader, super admins and through the rows that use them"
  on objects for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and (created_by = (select bizos.uid())
              or (select bizos.app_role()) = 'super_admin'
              or exists (select 1 from ticket_attachments a
                          where a.tenant_id = objects.tenant_id and a.object_id = objects.object_id)
              or exists (select 1 from kpi_evidence e
                          where e.tenant_id = objects.tenant_id and e.object_id = objects.object_id)
              or (bucket = 'knowledge'
                  and exists (select 1 from kb_documents d
                               where d.tenant_id = objects.tenant_id
                                 and (d.object_id = objects.object_id or d.ready_object_id = objects.object_id)))));

-- ---------------------------------------------------------------- masking
-- Analysts never read document contents: text, headings, words and vectors
-- are redacted in the analytics views.
insert into analytics_masking (table_name, column_name, masker) values
  ('kb_chunks', 'text', 'redact'), ('kb_chunks', 'heading_path', 'redact'),
  ('kb_chunks', 'tsv', 'redact'), ('kb_chunks', 'embedding', 'redact'),
  ('kb_chunk_staging', 'text', 'redact'), ('kb_chunk_staging', 'heading_path', 'redact'),
  ('kb_chunk_staging', 'embedding', 'redact'),
  ('kb_terms', 'term', 'redact');

-- ---------------------------------------------------------------- job kind and permission
insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'kb.ingest', coalesce(max(position), 0) + 1,
       'extract, chunk and embed a knowledge-base document version, as the user who uploaded it', 5, 300, 30
  from job_kinds;

-- Who manages knowledge-base documents (new tenants get it from
-- default_role_permissions(), platform.sql).
insert into role_permissions (tenant_id, app_role, permission)
select t.tenant_id, r.app_role, 'kb.manage'
  from tenants t
 cross join (values ('super_admin'), ('marketing_manager'), ('sales_manager'), ('ops'), ('finance')) as r (app_role)
on conflict do nothing;
