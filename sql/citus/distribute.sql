-- Distributes the tables of the migration schema on a Citus cluster (run by
-- `bizos migrate` on a Citus coordinator after the migrations and the api
-- files, as the database owner). Idempotent: tables already known to Citus
-- are left alone, so it runs after every migration run.
--
--   * tenant tables (a tenant_id column) are distributed by tenant_id, all
--     in one co-location group with `tenants`' first tenant table, but
--     `idempotency_keys` in a group of its own: the BFF stores a key as the
--     request role after an RPC that may have written the tenant's shards
--     as the functions' owner, and Citus refuses a transaction that
--     modifies co-located shards as two users ("cannot perform query on
--     placements that were modified in this transaction by a different
--     user"). No query joins the keys with another table;
--   * the global catalogues (no tenant_id, plus `tenants` itself and the
--     few global tables keyed by something else) are reference tables,
--     copied to every node;
--   * refinery's history stays local to the coordinator.
--
-- Citus refuses sub-selects in the policies of distributed tables. The
-- policies wrap the caller's helpers in sub-selects, `(select
-- bizos.tenant_id())`, so that a single node evaluates them once per
-- statement; the same expression without the wrapper means the same, and
-- is what the shards get (citus_unwrap_sub_selects, sql/api/platform.sql).
-- The policies that read other tables got their Citus form from
-- policies.sql first; a policy with any other sub-select is an error here,
-- naming it.
--
-- Foreign keys are dropped first and added back once every table is
-- distributed, so the order of the tables does not matter.
do $distribute$
declare
  v_schema text := pg_catalog.current_schema();
  v_globals text[] := array['tenants', 'api_key_lookup', 'analytics_grants'];
  v_local text[] := array['refinery_schema_history'];
  v_own_group text[] := array['idempotency_keys'];
  v_anchor regclass;
  r record;
  v_fks text[] := '{}';
  v_fk text;
  v_qual text;
  v_check text;
  v_unsupported text[] := '{}';
begin
  set local citus.multi_shard_modify_mode to 'sequential';
  -- Triggers run on the shards (bizos's triggers touch only their row and
  -- rows of the same tenant).
  set local citus.enable_unsafe_triggers to on;

  create temporary table pg_temp.to_distribute on commit drop as
  select c.oid::regclass as rel, n.nspname, c.relname,
         case when c.relname = any (v_globals) or not exists (
                select 1 from pg_catalog.pg_attribute a
                 where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
              then 'reference' else 'distributed' end as kind
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
   where c.relkind in ('r', 'p')
     and n.nspname = v_schema
     and not (n.nspname = v_schema and c.relname = any (v_local))
     and not exists (select 1 from pg_catalog.pg_dist_partition d where d.logicalrelid = c.oid);

  -- A table placed in the tenant tables' group before it had one of its
  -- own leaves it.
  for r in
    select d.logicalrelid as rel
      from pg_catalog.pg_dist_partition d
      join pg_catalog.pg_class c on c.oid = d.logicalrelid
      join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where n.nspname = v_schema and c.relname = any (v_own_group)
       and exists (select 1 from pg_catalog.pg_dist_partition o
                    where o.colocationid = d.colocationid and o.logicalrelid <> d.logicalrelid)
  loop
    perform update_distributed_table_colocation(r.rel, colocate_with => 'none');
  end loop;

  if not exists (select 1 from pg_temp.to_distribute) then
    return;
  end if;

  -- Policies: the caller's helpers without their sub-select wrapper.
  for r in
    select p.polname, p.polrelid::regclass as rel,
           pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,
           pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) as with_check
      from pg_catalog.pg_policy p
      join pg_temp.to_distribute t on t.rel = p.polrelid
  loop
    v_qual := citus_unwrap_sub_selects(r.qual);
    v_check := citus_unwrap_sub_selects(r.with_check);
    if v_qual ~* '\mselect\M' or v_check ~* '\mselect\M' then
      v_unsupported := v_unsupported || pg_catalog.format('%s on %s', r.polname, r.rel);
      continue;
    end if;
    if v_qual is distinct from r.qual or v_check is distinct from r.with_check then
      execute pg_catalog.format('alter policy %I on %s%s%s', r.polname, r.rel,
        case when v_qual is not null then pg_catalog.format(' using (%s)', v_qual) else '' end,
        case when v_check is not null then pg_catalog.format(' with check (%s)', v_check) else '' end);
    end if;
  end loop;
  if cardinality(v_unsupported) > 0 then
    raise exception 'cannot distribute: % policies read other tables in a sub-select, which Citus does not support',
      cardinality(v_unsupported)
      using detail = pg_catalog.array_to_string(v_unsupported, E'\n');
  end if;

  -- Foreign keys of (and to) the tables to distribute, dropped for now.
  for r in
    select k.conname, k.conrelid::regclass as rel, pg_catalog.pg_get_constraintdef(k.oid) as def
      from pg_catalog.pg_constraint k
     where k.contype = 'f'
       and (k.conrelid in (select rel from pg_temp.to_distribute)
            or k.confrelid in (select rel from pg_temp.to_distribute))
  loop
    -- Citus does not support ON DELETE SET NULL on a key that includes the
    -- distribution column: those keys come back as NO ACTION. bizos never
    -- deletes the rows they point to (profiles are deactivated, leads,
    -- customers, tickets and e-mails kept), except with their whole tenant,
    -- whose cascade removes the referring rows in the same statement.
    v_fks := v_fks || pg_catalog.format('alter table %s add constraint %I %s', r.rel, r.conname,
      pg_catalog.regexp_replace(r.def, ' ON DELETE SET NULL( \([^)]*\))?', ''));
    execute pg_catalog.format('alter table %s drop constraint %I', r.rel, r.conname);
  end loop;

  for r in select * from pg_temp.to_distribute where kind = 'reference' order by nspname, relname loop
    perform create_reference_table(r.rel);
    perform truncate_local_data_after_distributing_table(r.rel);
  end loop;

  select d.logicalrelid into v_anchor
    from pg_catalog.pg_dist_partition d
   where d.partmethod = 'h'
     and d.logicalrelid::text <> all (v_own_group)
   order by d.colocationid, d.logicalrelid::text limit 1;
  for r in select * from pg_temp.to_distribute where kind = 'distributed' order by nspname, relname loop
    if r.relname = any (v_own_group) then
      perform create_distributed_table(r.rel, 'tenant_id', colocate_with => 'none');
    elsif v_anchor is null then
      perform create_distributed_table(r.rel, 'tenant_id');
      v_anchor := r.rel;
    else
      perform create_distributed_table(r.rel, 'tenant_id', colocate_with => v_anchor::text);
    end if;
    perform truncate_local_data_after_distributing_table(r.rel);
  end loop;

  foreach v_fk in array v_fks loop
    execute v_fk;
  end loop;
end
$distribute$;
