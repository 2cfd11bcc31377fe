-- The live tier move's change capture and its job kind.
--
-- While a tenant moves, a trigger on every table of its source records the
-- key of each row of that tenant that is written (only the moving tenant's
-- writes pay: the trigger has a WHEN on its tenant_id). The mover re-copies
-- those keys to the target until it has caught up. Like the rest of
-- schema `control`, the table is qualified: one per database, whichever
-- schema the migrations run in.

create table if not exists control.tenant_move_changes (
  move_id    uuid   not null,
  seq        bigint generated always as identity,
  table_name text   not null,
  pk         jsonb  not null,
  constraint tenant_move_changes_pkey primary key (move_id, seq),
  constraint tenant_move_changes_pk_check check (jsonb_typeof(pk) = 'object')
);
comment on table control.tenant_move_changes is
  'Keys of the rows a moving tenant wrote since its copy began (one row per write), by move; removed when the move ends.';

-- A tenant that has moved away from this database (one row per move, from
-- the switch until its source rows are purged): the capture trigger
-- refuses the tenant's writes here. A row, not a trigger change, so the
-- switch inside the freeze is one insert rather than DDL on every table.
create table if not exists control.tenant_move_fences (
  move_id    uuid        not null,
  tenant_id  uuid        not null,
  created_at timestamptz not null default now(),
  constraint tenant_move_fences_pkey primary key (move_id)
);
comment on table control.tenant_move_fences is
  'Moves whose tenant left this database: its writes here are refused (BZ503) until the purge removes its rows and this row.';

insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'tenant.move', coalesce(max(position), 0) + 1,
       'run a tier move of control.tenant_moves (payload: {move_id, purge?}) to its end; purge: remove the source rows after the grace period',
       20, 60, 5
  from job_kinds;
