-- INSERT grants per column, widened to the table on a Citus cluster (run by
-- `bizos migrate` on a Citus coordinator after distribute.sql, every time).
--
-- Several tables let the request role insert only some of their columns
-- (the rest belong to defaults and triggers). The coordinator fills in the
-- defaults before it sends an INSERT to the shard, so the shard's INSERT
-- names every column, and the shard refuses it ("permission denied for
-- table tickets_102345"). Citus makes each shard's grants from its
-- table's, so a grant given to the shards alone would be lost with the
-- next shard move; the table itself gets INSERT on every column.
--
-- What this gives up: a role with such a grant could set a column that its
-- defaults own (created_at, a status's first value) by inserting directly.
-- Requests run only the api's functions, which never do; the columns that
-- triggers own (business numbers, created_by) are still set or checked by
-- their triggers. docs/citus.md says so.
do $grants$
declare
  r record;
begin
  for r in
    select distinct c.oid::regclass as rel, g.grantee::regrole as grantee
      from pg_catalog.pg_class c
      join pg_catalog.pg_dist_partition d on d.logicalrelid = c.oid
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attacl is not null and not a.attisdropped
      cross join lateral pg_catalog.aclexplode(a.attacl) g
     where c.relnamespace = pg_catalog.current_schema()::regnamespace
       and g.privilege_type = 'INSERT' and g.grantee <> 0
       and not pg_catalog.has_table_privilege(g.grantee, c.oid, 'INSERT')
     order by 1, 2
  loop
    execute pg_catalog.format('grant insert on %s to %s', r.rel, r.grantee);
  end loop;
end
$grants$;
