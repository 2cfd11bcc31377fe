-- bizos 0.4.0 → 0.5.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * bizos.uuid_v7(): row keys ordered by time (UUID version 7, RFC 9562;
--     extension/src/uuid7.rs). Keys made one after the other share the
--     newest leaf of a b-tree instead of each touching a random one, so the
--     write path's primary keys (and the audit log's index of record keys)
--     stay small in memory and write one full-page image per leaf after a
--     checkpoint instead of one per row. Migration V37 makes it the default
--     of the busiest row keys.
--
-- tests/tests/suite/extension_upgrade.rs checks that every earlier release
-- updated to 0.5.0 equals a fresh install of 0.5.0.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.5.0'" to load this file. \quit

CREATE FUNCTION bizos."uuid_v7"() RETURNS uuid
	STRICT VOLATILE PARALLEL SAFE
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'uuid_v7_wrapper';
