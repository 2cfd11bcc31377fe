-- The audit API (B2B-10): the tenant's audit log, the history of
-- one record and the state of the log's hash chains, for holders of
-- audit.read (super_admin and director by default).
--
-- The current definition of every function and view of this module, applied
-- with create or replace after the versioned migrations whenever a file
-- changes (sql/src/api.rs; see sql/CONVENTIONS.md). Unqualified names: the
-- same file builds the shared tier and every schema tier.
--
-- The log is the extension's bizos.audit_log (C3, extension/sql/audit.sql),
-- written by the audit trigger of every audited table and hash-chained per
-- tenant (8 chains). Request roles cannot read it (only the database owner
-- can): audit_entries() and audit_chains() are SECURITY DEFINER, check
-- audit.read and read only the rows of the caller's tenant.
--
-- Personal data. An entry's before/after images hold the columns of the
-- row as they were, values the reader's views may no longer show (a
-- deleted lead's contact, a customer's old phone number) or never showed
-- (file names of uploads they cannot list). A reader without audit.unmask
-- (super_admin holds it by default; director does not) gets the images
-- masked as the analytics views mask the tables (analytics_masking and
-- analytics_columns(), analytics.sql): personal columns through the
-- extension's partial maskers (bizos.mask_email, mask_phone, mask_nik,
-- mask_name) or '[REDACTED]', every other text or JSON value through
-- bizos.pii_mask (text without personal data stays as it is), ids, amounts,
-- dates and flags as stored; `masked` says which the entry is. Who did
-- what, when, to which record (its key) is never masked.
--
-- Paging: newest first, by (at, chain, seq); `next_cursor` is opaque (the
-- position of the page's last entry) and passed back as `after`.

-- One value of an image as the analytics views show a column with this
-- masker (analytics_columns()): personal data masked, the rest as stored.
create or replace function audit_mask_value(masker text, value jsonb) returns jsonb
language sql immutable
as $$
  select case
    when value is null or jsonb_typeof(value) = 'null' or masker = 'raw' then value
    when masker = 'redact' then to_jsonb('[REDACTED]'::text)
    when masker in ('email', 'phone', 'nik', 'name') and jsonb_typeof(value) = 'string' then
      to_jsonb(case masker
                 when 'email' then bizos.mask_email(value #>> '{}')
                 when 'phone' then bizos.mask_phone(value #>> '{}')
                 when 'nik' then bizos.mask_nik(value #>> '{}')
                 else bizos.mask_name(value #>> '{}')
               end)
    when jsonb_typeof(value) = 'string' then to_jsonb(bizos.pii_mask(value #>> '{}'))
    when jsonb_typeof(value) in ('object', 'array') then to_jsonb(bizos.pii_mask(value::text))
    else value
  end
$$;
revoke execute on function audit_mask_value(text, jsonb) from public;
comment on function audit_mask_value(text, jsonb) is
  'Internal: a value of an audit image masked as the analytics views mask a column with this masker.';

-- An audit image (before or after) of the table `rel` (the log's
-- table_name, schema-qualified) masked column by column as its analytics
-- view: the masker of analytics_masking, else text and JSON columns
-- through pii_mask, else as stored; a column the table no longer has is
-- treated as text.
create or replace function audit_mask_image(rel text, image jsonb) returns jsonb
language sql stable
as $$
  select case when image is null or jsonb_typeof(image) <> 'object' then image
              else coalesce((select jsonb_object_agg(e.key, audit_mask_value(x.masker, e.value))
                               from jsonb_each(image) e
                               cross join lateral (
                                 select coalesce(
                                          (select m.masker from analytics_masking m
                                            where m.table_name = substring(rel from '([^.]+)$')
                                              and m.column_name = e.key),
                                          (select case when ty.typcategory = 'S' or ty.typname in ('json', 'jsonb')
                                                       then 'text' else 'raw' end
                                             from pg_catalog.pg_attribute a
                                             join pg_catalog.pg_type ty on ty.oid = a.atttypid
                                            where a.attrelid = pg_catalog.to_regclass(rel)
                                              and a.attname = e.key and a.attnum > 0 and not a.attisdropped),
                                          'text') as masker) x), '{}'::jsonb)
         end
$$;
select pin_search_path('audit_mask_image(text, jsonb)');
revoke execute on function audit_mask_image(text, jsonb) from public;
comment on function audit_mask_image(text, jsonb) is
  'Internal: an audit image masked column by column as the analytics view of its table masks it.';

-- audit_entries(tbl, record_id, actor, from_at, to_at, after, page_size)
-- -> {items, next_cursor}: the caller's tenant's audit entries, newest
-- first, for holders of audit.read. Filters (all optional): tbl, an
-- audited table (leads, profiles, ...); record_id, the key of the record
-- (its id; with tbl given and a key of tenant_id and one uuid column, the
-- exact record key, else any key column equal to it); actor, the user who
-- made the change; from_at <= at < to_at. page_size 1-200.
create or replace function audit_entries(tbl text default null, record_id text default null,
                                         actor uuid default null, from_at timestamptz default null,
                                         to_at timestamptz default null, after text default null,
                                         page_size integer default 50)
returns jsonb
language plpgsql stable
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_unmask boolean;
  v_home oid;
  v_table text;
  v_record text := nullif(btrim(record_id), '');
  v_key jsonb;
  v_pk text[];
  v_pk_type regtype;
  v_cursor text[];
  v_after_at timestamptz;
  v_after_chain smallint;
  v_after_seq bigint;
  v_items jsonb;
  v_next text;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  perform require_permission('audit.read');
  v_unmask := has_permission('audit.unmask');
  if page_size is null or page_size not between 1 and 200 then
    perform raise_field('limit', 'must be between 1 and 200');
  end if;
  if from_at is not null and to_at is not null and from_at > to_at then
    perform raise_field('from', 'must not be after to');
  end if;
  -- This schema (the tier's), as the audit trigger names its tables.
  select c.relnamespace into v_home from pg_catalog.pg_class c where c.oid = 'tenants'::regclass;
  if nullif(btrim(tbl), '') is not null then
    select format('%I.%I', n.nspname, c.relname) into v_table
      from pg_catalog.pg_trigger g
      join pg_catalog.pg_class c on c.oid = g.tgrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where g.tgname = 'bizos_audit' and c.relnamespace = v_home
       and c.relname = lower(btrim(tbl));
    if v_table is null then
      perform raise_field('table', 'must be one of ' ||
        (select string_agg(c.relname, ', ' order by c.relname)
           from pg_catalog.pg_trigger g join pg_catalog.pg_class c on c.oid = g.tgrelid
          where g.tgname = 'bizos_audit' and c.relnamespace = v_home));
    end if;
  end if;
  if v_record is not null and length(v_record) > 200 then
    perform raise_field('record', 'at most 200 characters');
  end if;
  if v_record is not null and v_table is not null then
    -- The key the audit trigger writes (enable_audit: the primary key).
    select array_agg(a.attname::text order by k.ord), (array_agg(a.atttypid::regtype order by k.ord))[2]
      into v_pk, v_pk_type
      from pg_catalog.pg_index i
     cross join lateral unnest(i.indkey) with ordinality as k(attnum, ord)
      join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
     where i.indrelid = v_table::regclass and i.indisprimary;
    if cardinality(v_pk) = 2 and v_pk[1] = 'tenant_id' and v_pk_type = 'uuid'::regtype then
      begin
        v_key := jsonb_build_object('tenant_id', v_tenant, v_pk[2], v_record::uuid);
      exception when invalid_text_representation then
        perform raise_field('record', format('must be a UUID (the %s of a row of %s)', v_pk[2], lower(btrim(tbl))));
      end;
    end if;
  end if;
  if after is not null then
    v_cursor := regexp_match(after, '^(-?[0-9]{1,18})\.([0-9]{1,4})\.([0-9]{1,18})$');
    if v_cursor is null then
      perform raise_field('after', 'is not a cursor this API gave out');
    end if;
    v_after_at := timestamptz 'epoch' + v_cursor[1]::bigint * interval '1 microsecond';
    v_after_chain := v_cursor[2]::smallint;
    v_after_seq := v_cursor[3]::bigint;
  end if;

  -- The page (one entry more, to know whether another page follows):
  -- `order by ... limit` directly, so that the sort keeps the top N only.
  with page as (
    select p.*, row_number() over (order by p.at desc, p.chain desc, p.seq desc) as n
      from (select a.*
              from bizos.audit_log a
             where a.tenant_id = v_tenant
               and (v_table is null or a.table_name = v_table)
               and (v_key is null or a.record_key = v_key)
               and (v_record is null or v_key is not null
                    or exists (select 1 from jsonb_each_text(a.record_key) e
                                where e.key <> 'tenant_id' and e.value = v_record))
               and (audit_entries.actor is null or a.actor = audit_entries.actor)
               and (from_at is null or a.at >= from_at)
               and (to_at is null or a.at < to_at)
               and (v_after_at is null or (a.at, a.chain, a.seq) < (v_after_at, v_after_chain, v_after_seq))
             order by a.at desc, a.chain desc, a.seq desc
             limit page_size + 1) p)
  select coalesce(jsonb_agg(jsonb_build_object(
             'table', substring(p.table_name from '([^.]+)$'),
             'record_key', p.record_key,
             'action', p.action,
             'actor', p.actor,
             'db_role', p.db_role,
             'at', p.at,
             'request_id', p.request_id,
             'chain', p.chain,
             'seq', p.seq,
             'before', case when v_unmask then p.before else audit_mask_image(p.table_name, p.before) end,
             'after', case when v_unmask then p.after else audit_mask_image(p.table_name, p.after) end,
             'masked', not v_unmask) order by p.n) filter (where p.n <= page_size), '[]'),
         max(case when p.n = page_size and exists (select 1 from page x where x.n > page_size)
                  then format('%s.%s.%s', (extract(epoch from p.at) * 1000000)::bigint, p.chain, p.seq) end)
    into v_items, v_next
    from page p;
  return jsonb_build_object('items', v_items, 'next_cursor', v_next);
end
$$;
select pin_search_path('audit_entries(text, text, uuid, timestamptz, timestamptz, text, integer)');
revoke execute on function audit_entries(text, text, uuid, timestamptz, timestamptz, text, integer) from public;
grant execute on function audit_entries(text, text, uuid, timestamptz, timestamptz, text, integer)
  to bizos_authenticated;
comment on function audit_entries(text, text, uuid, timestamptz, timestamptz, text, integer) is
  'The caller''s tenant''s audit entries, newest first, keyset-paged (audit.read): filters table, record, actor and time; images masked without audit.unmask.';

-- audit_chains() -> {intact, checked_at, chains: [{chain, head_seq,
-- status, broken_seq, problem}]}: every hash chain of the caller's
-- tenant checked entry by entry (bizos.audit_verify: an edited, deleted or
-- reordered entry, or a forged head, is named with its chain and
-- sequence number), for holders of audit.read. A chain with entries but
-- no head (its head row deleted) is broken too. Reads the tenant's whole
-- log: a request of its own.
create or replace function audit_chains() returns jsonb
language plpgsql volatile
security definer
as $$
declare
  v_tenant uuid := bizos.tenant_id();
  v_breaks jsonb;
  v jsonb;
begin
  if v_tenant is null then
    raise exception using errcode = '42501', message = 'no tenant in the request claims';
  end if;
  perform require_permission('audit.read');
  -- Verified first, on its own: on Citus the query below runs on the
  -- tenant's worker, where audit_verify (which reads distributed tables)
  -- cannot run inside it.
  select coalesce(jsonb_agg(jsonb_build_object('chain', b.chain, 'seq', b.seq, 'problem', b.problem)), '[]')
    into v_breaks
    from bizos.audit_verify(v_tenant) b;
  with breaks as (
    select b.chain, b.seq, b.problem
      from jsonb_to_recordset(v_breaks) as b(chain smallint, seq bigint, problem text)
  ), chains as (
    select h.chain, h.seq as head_seq from bizos.audit_heads h where h.tenant_id = v_tenant
    union all
    select distinct a.chain, null::bigint from bizos.audit_log a
     where a.tenant_id = v_tenant
       and not exists (select 1 from bizos.audit_heads h where h.tenant_id = v_tenant and h.chain = a.chain)
  ), states as (
    select c.chain, c.head_seq,
           case when c.head_seq is null or b.chain is not null then 'broken' else 'intact' end as status,
           b.seq as broken_seq,
           case when c.head_seq is null then 'the chain has entries but no head (its head was deleted)'
                else b.problem end as problem
      from chains c left join breaks b on b.chain = c.chain
  )
  select jsonb_build_object(
           'intact', not exists (select 1 from states r where r.status = 'broken'),
           'checked_at', now(),
           'chains', coalesce((select jsonb_agg(jsonb_build_object('chain', r.chain, 'head_seq', r.head_seq,
                                                                   'status', r.status, 'broken_seq', r.broken_seq,
                                                                   'problem', r.problem) order by r.chain)
                                 from states r), '[]'))
    into v;
  return v;
end
$$;
select pin_search_path('audit_chains()');
revoke execute on function audit_chains() from public;
grant execute on function audit_chains() to bizos_authenticated;
comment on function audit_chains() is
  'The state of every audit hash chain of the caller''s tenant (audit.read): intact, or broken at an entry with the problem (bizos.audit_verify).';

-- record_history(tbl, id, after, page_size) -> {items, next_cursor}: the
-- audit entries of one lead, ticket or invoice, newest first (audit.read),
-- for a record the caller can read (404 otherwise: RLS decides, as on
-- its detail route). The entries of the record's own row; its lines,
-- payments and messages have entries of their own (GET /api/audit with
-- their table).
create or replace function record_history(tbl text, id uuid, after text default null,
                                          page_size integer default 50) returns jsonb
language plpgsql stable
as $$
declare
  v_col text;
  v_seen boolean;
begin
  perform require_permission('audit.read');
  v_col := case tbl when 'leads' then 'lead_id' when 'tickets' then 'ticket_id' when 'invoices' then 'invoice_id' end;
  if v_col is null then
    perform raise_field('table', 'must be one of leads, tickets, invoices');
  end if;
  execute format('select exists (select 1 from %I where %I = $1)', tbl, v_col) into v_seen using id;
  if not v_seen then
    raise exception using errcode = 'P0002', column = v_col,
      message = format('%s: no such record (or not visible)', v_col);
  end if;
  return audit_entries(tbl, id::text, null, null, null, after, page_size);
end
$$;
grant execute on function record_history(text, uuid, text, integer) to bizos_authenticated;
comment on function record_history(text, uuid, text, integer) is
  'The audit entries of a lead, ticket or invoice the caller can read, newest first (audit.read).';
