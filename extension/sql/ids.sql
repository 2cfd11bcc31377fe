-- C1: business numbers <PREFIX>-<YYYY>-<NNNNNN> per tenant, kind and year.
--
-- Kinds are data. `sequence` kinds draw from one sequence per tenant, kind
-- and year (fast, concurrent; a rolled-back transaction leaves a gap).
-- `gapless` kinds increment a counter row that stays locked until commit
-- (no gaps among committed rows; one writer per tenant+kind at a time), as
-- tax invoices require.
create table bizos.id_kinds (
  kind   text    not null,
  prefix text    not null,
  mode   text    not null default 'sequence',
  width  integer not null default 6,
  constraint id_kinds_pkey primary key (kind),
  constraint id_kinds_kind_check check (kind ~ '^[a-z][a-z0-9_]{0,31}$'),
  constraint id_kinds_prefix_check check (prefix ~ '^[A-Z][A-Z0-9]{0,9}$'),
  constraint id_kinds_mode_check check (mode in ('sequence', 'gapless')),
  constraint id_kinds_width_check check (width between 3 and 12)
);
comment on table bizos.id_kinds is 'Kinds of business numbers (C1): prefix, sequence or gapless mode, digits.';

-- The sequence behind each (tenant, kind, year) of a sequence-mode kind.
create table bizos.id_sequences (
  tenant_id uuid     not null,
  kind      text     not null,
  year      integer  not null,
  seq       regclass not null,
  constraint id_sequences_pkey primary key (tenant_id, kind, year),
  constraint id_sequences_kind_fkey foreign key (kind) references bizos.id_kinds (kind) on update cascade
);

-- The last number of each (tenant, kind, year) of a gapless kind.
create table bizos.id_counters (
  tenant_id  uuid    not null,
  kind       text    not null,
  year       integer not null,
  last_value bigint  not null,
  constraint id_counters_pkey primary key (tenant_id, kind, year),
  constraint id_counters_kind_fkey foreign key (kind) references bizos.id_kinds (kind) on update cascade
);

-- Kinds are managed by the database owner (migrations), who may let other
-- roles read them; next_id() reads them as the extension owner. Counters
-- and sequences are written only by the extension.
grant select, insert, update, delete on bizos.id_kinds to pg_database_owner;
grant select on bizos.id_kinds to pg_database_owner with grant option;
grant select on bizos.id_sequences, bizos.id_counters to pg_database_owner;

select pg_catalog.pg_extension_config_dump('bizos.id_kinds', '');
select pg_catalog.pg_extension_config_dump('bizos.id_sequences', '');
select pg_catalog.pg_extension_config_dump('bizos.id_counters', '');
