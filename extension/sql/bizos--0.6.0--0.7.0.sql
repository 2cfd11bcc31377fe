-- bizos 0.6.0 → 0.7.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * triggers bizos.stamp_timestamps() (created_at once, updated_at on
--     every write) and bizos.keep_created_by() (the request's user once),
--     extension/src/stamps.rs: the row stamps of every business table,
--     which were PL/pgSQL functions of the business schema. Migration V40
--     points the tables' triggers to them, so `bizos db bootstrap` (which
--     updates the extension) runs before `bizos migrate`, as always.
--
-- tests/tests/suite/extension_upgrade.rs checks that every earlier release
-- updated to 0.7.0 equals a fresh install of 0.7.0.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.7.0'" to load this file. \quit

CREATE FUNCTION bizos."keep_created_by"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'keep_created_by_wrapper';

CREATE FUNCTION bizos."stamp_timestamps"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'stamp_timestamps_wrapper';
