-- The row stamps come from the extension (bizos 0.7.0; issue 20).
--
-- Every business table stamps its rows with two BEFORE INSERT OR UPDATE
-- triggers: stamp_timestamps (created_at once, updated_at on every write)
-- and keep_created_by (the request's user once). They were PL/pgSQL
-- functions of this schema (V1, V2); every write of a business row ran
-- them, a lead bundle seven times, and as PL/pgSQL each call built the row
-- as a record and formed it again (stamp_timestamps also set and reset its
-- pinned search path). bizos.stamp_timestamps() and bizos.keep_created_by()
-- (extension/src/stamps.rs) do the same in C: a call replaces two datums
-- of the row (BENCHMARKS.md, issue 20 step eleven).
--
-- Every trigger of this schema's tables that runs one of the two is made
-- again with the extension's function, under its own name, timing, events
-- and condition; then the PL/pgSQL functions go (the drop fails if anything
-- still uses them). `bizos db bootstrap` brings the extension to 0.7.0
-- before `bizos migrate` runs.
do $stamps$
declare
  r record;
  n integer := 0;
begin
  -- On Citus a trigger of a distributed table is made on its shards too,
  -- and a parallel DDL of one table stops the DDL of the next in the same
  -- transaction: one shard at a time.
  if exists (select 1 from pg_catalog.pg_extension where extname = 'citus') then
    set local citus.multi_shard_modify_mode to 'sequential';
  end if;
  for r in
    select t.oid, p.proname
      from pg_catalog.pg_trigger t
      join pg_catalog.pg_class c on c.oid = t.tgrelid
      join pg_catalog.pg_proc p on p.oid = t.tgfoid
     where not t.tgisinternal
       and c.relnamespace = pg_catalog.current_schema()::regnamespace
       and p.pronamespace = pg_catalog.current_schema()::regnamespace
       and p.proname in ('stamp_timestamps', 'keep_created_by')
       and p.pronargs = 0
     order by c.relname, t.tgname
  loop
    execute pg_catalog.regexp_replace(
      pg_catalog.regexp_replace(pg_catalog.pg_get_triggerdef(r.oid), '^CREATE TRIGGER ', 'CREATE OR REPLACE TRIGGER '),
      ' EXECUTE FUNCTION \S+\(\)$', format(' EXECUTE FUNCTION bizos.%I()', r.proname));
    n := n + 1;
  end loop;
  if n = 0 then
    raise exception 'no trigger runs stamp_timestamps or keep_created_by in schema %', pg_catalog.current_schema();
  end if;
end
$stamps$;

drop function stamp_timestamps();
drop function keep_created_by();
