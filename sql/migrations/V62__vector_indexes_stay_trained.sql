-- Issue 49: vector indexes that stay trained.
--
-- A bizos_ivf index trains its lists once, at its build; kb_chunks'
-- index was built by V28 on an empty table, so it has had one list ever
-- since and every query reads every chunk. bizos 0.8.0 records in each
-- index the rows its lists were trained on, and bizos.ivf_index_state()
-- says when a rebuild is due (sql/api/vector_indexes.sql); the worker's
-- upkeep enqueues a `vector.retrain` job per such index, whose handler
-- runs REINDEX INDEX CONCURRENTLY (reads and writes go on; a crash
-- leaves the old index in use, and the next run drops the half-built copy
-- first). docs/vectors.md explains it to operators.

insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'vector.retrain', coalesce(max(position), 0) + 1,
       'rebuild a bizos_ivf index whose lists no longer fit its table (REINDEX INDEX CONCURRENTLY; payload: {index}); system job of the operator''s tenant',
       3, 3600, 300
  from job_kinds;

-- The lists of kb_chunks' index were fixed at 100 (V28); a rebuild derives
-- them from the rows instead (extension/src/vector/am/options.rs:
-- rows / 250 up to 250,000 rows, 2·√rows above).
-- On Citus, once kb_chunks is distributed, its shards carry their own
-- copies of the index and the shell's parameter is left alone.
do $$
declare
  v_distributed boolean := false;
begin
  if pg_catalog.to_regclass('pg_catalog.pg_dist_partition') is not null then
    execute 'select exists (select 1 from pg_catalog.pg_dist_partition where logicalrelid = $1)'
      into v_distributed using 'kb_chunks'::regclass;
  end if;
  if not v_distributed then
    alter index kb_chunks_embedding_idx reset (lists);
  end if;
end
$$;
