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
-- Their foreign keys to id_kinds are dropped on every node first (Citus
-- would otherwise convert the whole key graph into local tables of the
-- coordinator, clashing with the workers' copies) and added back once.
-- The audit log and its chain heads stay on each node for now
-- (docs/citus.md, "Not yet").
do $extension$
begin
  if exists (select 1 from pg_catalog.pg_dist_partition where logicalrelid = 'bizos.transitions'::regclass) then
    return;
  end if;
  set local citus.multi_shard_modify_mode to 'sequential';
  alter table bizos.id_sequences drop constraint id_sequences_kind_fkey;
  alter table bizos.id_counters drop constraint id_counters_kind_fkey;
  perform run_command_on_workers($c$
    alter table bizos.id_sequences drop constraint if exists id_sequences_kind_fkey;
    alter table bizos.id_counters drop constraint if exists id_counters_kind_fkey$c$);
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
