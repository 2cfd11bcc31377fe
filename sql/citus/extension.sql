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
