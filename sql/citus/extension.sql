-- The bizos extension's catalogues on a Citus cluster (run by `bizos db
-- bootstrap` on a Citus coordinator, as the superuser who owns them, after
-- CREATE EXTENSION bizos; once).
--
-- Citus creates the extension on the workers as well, so every node has
-- its own copies of the extension's tables; Citus takes the workers'
-- copies of an extension's tables as the shells of the distributed ones.
--   * bizos.transitions and bizos.id_kinds (the lifecycle rules and the
--     kinds of business numbers) become reference tables: the lifecycle
--     guard and next_id read them on the worker that holds the row;
--   * bizos.id_sequences and bizos.id_counters (per tenant) are
--     distributed by tenant_id, in the co-location group the tenant tables
--     join later (the default group of uuid columns).
--     On Citus next_id counts every kind in id_counters (a sequence would
--     stay on one node when its tenant moves); the values of the sequences
--     made so far are carried over first;
--   * bizos.audit_log and bizos.audit_heads are distributed by tenant_id in
--     the same group: the audit trigger, on the worker that holds the row,
--     writes the tenant's entries and heads into their shards there. Their
--     read policy loses its sub-select (Citus refuses one in a policy) and
--     audit_history becomes PL/pgSQL (Citus cannot plan a SQL function's
--     parameters).
-- Their foreign keys to id_kinds are dropped on every node first (Citus
-- would otherwise convert the whole key graph into local tables of the
-- coordinator, clashing with the workers' copies) and added back once.
do $extension$
begin
  if exists (select 1 from pg_catalog.pg_dist_partition where logicalrelid = 'bizos.transitions'::regclass) then
    return;
  end if;
  set local citus.multi_shard_modify_mode to 'sequential';
  insert into bizos.id_counters as c (tenant_id, kind, year, last_value)
  select s.tenant_id, s.kind, s.year, pg_catalog.pg_sequence_last_value(s.seq)
    from bizos.id_sequences s
   where pg_catalog.pg_sequence_last_value(s.seq) is not null
  on conflict (tenant_id, kind, year) do update
    set last_value = greatest(c.last_value, excluded.last_value);
  alter table bizos.id_sequences drop constraint id_sequences_kind_fkey;
  alter table bizos.id_counters drop constraint id_counters_kind_fkey;
  perform run_command_on_workers($c$
    alter table bizos.id_sequences drop constraint if exists id_sequences_kind_fkey;
    alter table bizos.id_counters drop constraint if exists id_counters_kind_fkey$c$);
  -- Their cache triggers go (extension/src/cache.rs): on Citus the
  -- extension reads them through queries and keeps no copy.
  drop trigger if exists bizos_invalidate_caches on bizos.transitions;
  drop trigger if exists bizos_invalidate_caches on bizos.id_kinds;
  perform run_command_on_workers($c$
    drop trigger if exists bizos_invalidate_caches on bizos.transitions;
    drop trigger if exists bizos_invalidate_caches on bizos.id_kinds$c$);
  perform create_reference_table('bizos.transitions');
  perform create_reference_table('bizos.id_kinds');
  perform create_distributed_table('bizos.id_sequences', 'tenant_id');
  perform create_distributed_table('bizos.id_counters', 'tenant_id', colocate_with => 'bizos.id_sequences');
  alter table bizos.id_sequences add constraint id_sequences_kind_fkey
    foreign key (kind) references bizos.id_kinds (kind) on update cascade;
  alter table bizos.id_counters add constraint id_counters_kind_fkey
    foreign key (kind) references bizos.id_kinds (kind) on update cascade;
end
$extension$;

-- The audit log (bootstraps before it was distributed placed the rest).
do $audit$
begin
  if exists (select 1 from pg_catalog.pg_dist_partition where logicalrelid = 'bizos.audit_log'::regclass) then
    return;
  end if;
  set local citus.multi_shard_modify_mode to 'sequential';
  alter policy "callers read the audit log of their tenant" on bizos.audit_log
    using (tenant_id = bizos.tenant_id());
  perform create_distributed_table('bizos.audit_log', 'tenant_id', colocate_with => 'bizos.id_sequences');
  perform create_distributed_table('bizos.audit_heads', 'tenant_id', colocate_with => 'bizos.id_sequences');
  create or replace function bizos.audit_history(rel regclass, key jsonb)
  returns setof bizos.audit_log
  language plpgsql stable
  set search_path = pg_catalog, pg_temp
  as $history$
  begin
    return query
      select a.*
        from bizos.audit_log a
       where a.table_name = rel::text
         and a.record_key = key
       order by a.at, a.txid, a.chain, a.seq;
  end
  $history$;
end
$audit$;

-- Keys to reference tables, kept by triggers instead of foreign keys.
--
-- Dropping a table drops its foreign keys, and with them their triggers on
-- the referenced table, which takes an exclusive lock on it. On Citus a
-- tenant's move drops its old shards at the end (the cleanup), and every
-- old shard of a tenant table has keys to the node's copies of reference
-- tables (`tenants`, the code lists), which every request reads: each drop
-- waited for those readers and stalled every request on the node behind it
-- (docs/citus.md, "Moving a tenant"). So on Citus a key from a distributed
-- table to a reference table is a pair of triggers:
--   * on the referring table (its shards): after an insert, or an update of
--     the key's columns, the referenced row must be in the node's copy of
--     the reference table, read directly (no distributed query from a
--     shard), else the error of a foreign key (23503, the key's name and
--     detail);
--   * on the referenced table (every copy): its rows that such keys can
--     point to are kept: a DELETE, or an UPDATE of a key column, is refused.
--     bizos never deletes them (tenants are suspended, codes retired); on a
--     single node the keys refuse or cascade the same deletes.
-- sql_api.citus_reference_keys lists the keys so made, with their
-- definitions. Dropping a shard then locks the shard alone.
create table if not exists sql_api.citus_reference_keys (
  table_name regclass not null,
  constraint_name name not null,
  definition text not null,
  referenced regclass not null,
  referenced_columns name[] not null,
  primary key (table_name, constraint_name)
);
alter table sql_api.citus_reference_keys owner to bizos_owner;

-- tg_argv: the key's name, the referring table's name, the check (a query
-- of the referenced placement with the new row as $1, true when the row
-- may stay), and the detail's columns as an expression of $1.
create or replace function sql_api.citus_reference_key_check() returns trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $check$
declare
  v_ok boolean;
  v_values text;
begin
  execute tg_argv[2] into v_ok using new;
  if not v_ok then
    execute tg_argv[3] into v_values using new;
    raise exception 'insert or update on table "%" violates foreign key constraint "%"', tg_argv[1], tg_argv[0]
      using errcode = 'foreign_key_violation', constraint = tg_argv[0], table = tg_argv[1],
            detail = v_values;
  end if;
  return null;
end
$check$;
alter function sql_api.citus_reference_key_check() owner to bizos_owner;
revoke all on function sql_api.citus_reference_key_check() from public;

-- tg_argv: the referenced table's name, and a comparison of its key
-- columns in $1 (old) and $2 (new), true when none changed.
create or replace function sql_api.citus_reference_rows_kept() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $kept$
declare
  v_same boolean := false;
begin
  if tg_op = 'UPDATE' then
    execute tg_argv[1] into v_same using old, new;
  end if;
  if not v_same then
    raise exception 'a row of "%" that tenant tables refer to cannot be deleted or have its key changed on Citus', tg_argv[0]
      using errcode = 'foreign_key_violation', table = tg_argv[0],
            hint = 'On Citus such keys are kept by triggers (docs/citus.md); retire the row instead.';
  end if;
  return case tg_op when 'DELETE' then old else new end;
end
$kept$;
alter function sql_api.citus_reference_rows_kept() owner to bizos_owner;
revoke all on function sql_api.citus_reference_rows_kept() from public;

-- Turns every foreign key from a distributed table of p_schema to a
-- reference table into the two triggers above (idempotent; run by bootstrap
-- for the extension's tables and by `bizos migrate` after distribute.sql,
-- as the tables' owner).
create or replace function sql_api.citus_reference_keys_replace(p_schema name) returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $replace$
declare
  r record;
  v_count integer := 0;
  v_placement text;
  v_check text;
  v_detail text;
  v_own name[];
  v_ref name[];
  v_trigger name;
begin
  perform pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
  perform pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
  for r in
    select k.oid, k.conname, k.conrelid::regclass as rel, c.relname, k.confrelid::regclass as ref,
           rc.relname as ref_name, k.conkey, k.confkey, pg_catalog.pg_get_constraintdef(k.oid) as def
      from pg_catalog.pg_constraint k
      join pg_catalog.pg_class c on c.oid = k.conrelid
      join pg_catalog.pg_class rc on rc.oid = k.confrelid
      join pg_catalog.pg_dist_partition d on d.logicalrelid = k.conrelid and d.partmethod = 'h'
      join pg_catalog.pg_dist_partition rd on rd.logicalrelid = k.confrelid and rd.partmethod = 'n' and rd.repmodel = 't'
     where k.contype = 'f' and c.relnamespace = p_schema::regnamespace
     order by k.conrelid::regclass::text, k.conname
  loop
    select pg_catalog.array_agg(a.attname order by x.ord) into v_own
      from unnest(r.conkey) with ordinality x(attnum, ord)
      join pg_catalog.pg_attribute a on a.attrelid = r.rel and a.attnum = x.attnum;
    select pg_catalog.array_agg(a.attname order by x.ord) into v_ref
      from unnest(r.confkey) with ordinality x(attnum, ord)
      join pg_catalog.pg_attribute a on a.attrelid = r.ref and a.attnum = x.attnum;
    -- shard_name() qualifies (and quotes) the name outside public only.
    select case when shard_name(r.ref, s.shardid) like '%.%' then shard_name(r.ref, s.shardid)
                else pg_catalog.format('%I.%s', n.nspname, shard_name(r.ref, s.shardid)) end
      into strict v_placement
      from pg_catalog.pg_dist_shard s
      join pg_catalog.pg_class rc on rc.oid = s.logicalrelid
      join pg_catalog.pg_namespace n on n.oid = rc.relnamespace
     where s.logicalrelid = r.ref;
    -- MATCH SIMPLE, as the keys: a row with a NULL in the key refers to nothing.
    select pg_catalog.format('select %s or exists (select from %s r where %s)',
             pg_catalog.string_agg(pg_catalog.format('($1).%I is null', o), ' or '),
             v_placement,
             pg_catalog.string_agg(pg_catalog.format('r.%I = ($1).%I', f, o), ' and ')),
           pg_catalog.format('select pg_catalog.format(%L, %s)',
             pg_catalog.format('Key (%s)=(%s) is not present in table "%s".',
               pg_catalog.array_to_string(v_own, ', '),
               pg_catalog.array_to_string(array_fill('%s'::text, array[cardinality(v_own)]), ', '),
               r.ref_name),
             pg_catalog.string_agg(pg_catalog.format('($1).%I', o), ', '))
      into v_check, v_detail
      from unnest(v_own, v_ref) as u(o, f);
    v_trigger := pg_catalog.left(r.conname, 57) || '_check';
    execute pg_catalog.format('drop trigger if exists %I on %s', v_trigger, r.rel);
    execute pg_catalog.format(
      'create trigger %I after insert or update of %s on %s for each row execute function sql_api.citus_reference_key_check(%L, %L, %L, %L)',
      v_trigger,
      (select pg_catalog.string_agg(pg_catalog.quote_ident(o), ', ') from unnest(v_own) o),
      r.rel, r.conname, r.relname, v_check, v_detail);
    insert into sql_api.citus_reference_keys (table_name, constraint_name, definition, referenced, referenced_columns)
    values (r.rel, r.conname, r.def, r.ref, v_ref)
    on conflict (table_name, constraint_name) do update
      set definition = excluded.definition, referenced = excluded.referenced,
          referenced_columns = excluded.referenced_columns;
    execute pg_catalog.format('alter table %s drop constraint %I', r.rel, r.conname);
    v_count := v_count + 1;
  end loop;

  -- The referenced tables' rows kept: one trigger a table, over every
  -- column a kept key refers to (made again only when that set changed).
  for r in
    select k.referenced as ref, c.relname as ref_name,
           pg_catalog.array_agg(distinct col order by col) as cols
      from sql_api.citus_reference_keys k
      join pg_catalog.pg_class c on c.oid = k.referenced
      cross join unnest(k.referenced_columns) col
     where k.referenced in (select x.referenced from sql_api.citus_reference_keys x
                             where x.table_name::oid in (select oid from pg_catalog.pg_class
                                                          where relnamespace = p_schema::regnamespace))
     group by k.referenced, c.relname
  loop
    continue when exists (
      select from pg_catalog.pg_trigger t
       where t.tgrelid = r.ref and t.tgname = 'citus_reference_rows_kept'
         and (select pg_catalog.array_agg(a.attname order by a.attname)
                from unnest(t.tgattr::int2[]) x(attnum)
                join pg_catalog.pg_attribute a on a.attrelid = r.ref and a.attnum = x.attnum) = r.cols);
    execute pg_catalog.format('drop trigger if exists citus_reference_rows_kept on %s', r.ref);
    execute pg_catalog.format(
      'create trigger citus_reference_rows_kept before delete or update of %s on %s for each row execute function sql_api.citus_reference_rows_kept(%L, %L)',
      (select pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') from unnest(r.cols) c),
      r.ref, r.ref_name,
      'select ' || (select pg_catalog.string_agg(pg_catalog.format('($1).%1$I is not distinct from ($2).%1$I', c), ' and ')
                      from unnest(r.cols) c));
  end loop;
  return v_count;
end
$replace$;
alter function sql_api.citus_reference_keys_replace(name) owner to bizos_owner;
revoke all on function sql_api.citus_reference_keys_replace(name) from public;
grant execute on function sql_api.citus_reference_keys_replace(name) to bizos_owner;

select sql_api.citus_reference_keys_replace('bizos');

-- Business numbers taken by the database owner's functions count as that
-- owner (extension/src/privilege.rs, as_citus_user_of): Citus refuses a
-- second user on the shards a transaction has written, so a definer
-- function that writes a tenant's rows and then takes a number as the
-- extension owner would fail whenever the counter's shard sits with those
-- rows (the operator's invoice numbers, one tenant in 32). The request
-- roles get nothing: their numbers are still taken as the extension owner.
grant select on bizos.id_kinds to bizos_owner;
grant select, insert, update on bizos.id_counters to bizos_owner;
