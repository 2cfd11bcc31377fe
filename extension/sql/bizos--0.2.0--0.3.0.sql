-- bizos 0.2.0 → 0.3.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * bizos.id_kinds and bizos.transitions are no longer readable by PUBLIC.
--     Every login of a database (analysts and BI included) could read them;
--     analysts must see their masked views only. The extension reads both
--     as its owner (next_id, lifecycle_guard), and the database owner gets
--     the grant option, so the business schema grants reading to the roles
--     that need it (bizos migration V12: transitions to bizos_authenticated).
--   * bizos.audit_log gets `request_id`: the setting `request.id` of the
--     writing transaction (the BFF sets the request's x-request-id), so an
--     entry joins to the request and its log lines. It is part of an
--     entry's hash when present; entries written before this update have
--     none and keep the hash they were written with, so audit_verify() of
--     an old chain stays clean. The column is appended, as in a fresh
--     install, and audit_history() (setof bizos.audit_log) returns it.
--
-- The library of 0.3.0 (loaded by every database of the server, whatever
-- its SQL version) also runs code as the extension owner with
-- search_path = pg_catalog, pg_temp, and writes audit entries without a
-- request id into databases not yet updated.
-- tests/tests/extension_upgrade.rs checks that every earlier release
-- updated to 0.3.0 equals a fresh install of 0.3.0.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.3.0'" to load this file. \quit

revoke select on bizos.id_kinds from public;
grant select on bizos.id_kinds to pg_database_owner with grant option;

revoke select on bizos.transitions from public;
grant select on bizos.transitions to pg_database_owner with grant option;

alter table bizos.audit_log add column request_id text;
comment on column bizos.audit_log.request_id is 'The setting request.id of the writing transaction (the BFF: x-request-id), NULL when unset; hashed when present';
