-- C7: allowed status transitions per entity, as data. A row with a NULL
-- from_status names a state rows may be created in.
create table bizos.transitions (
  entity      text not null,
  from_status text,
  to_status   text not null,
  constraint transitions_entity_check check (entity ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint transitions_to_status_check check (length(to_status) between 1 and 63),
  constraint transitions_loop_check check (from_status is distinct from to_status)
);
comment on table bizos.transitions is 'Allowed status transitions per entity (C7); from_status NULL = initial states.';
create unique index transitions_key on bizos.transitions (entity, coalesce(from_status, ''), to_status);

-- Managed by the database owner, who grants reading to the roles that
-- need it (the business schema's request role); lifecycle_guard() reads
-- them as the extension owner.
grant select, insert, update, delete on bizos.transitions to pg_database_owner;
grant select on bizos.transitions to pg_database_owner with grant option;
select pg_catalog.pg_extension_config_dump('bizos.transitions', '');
