-- bizos 0.5.0 → 0.6.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * bizos.payload_problem(payload, spec, prefix): the shape check of an
--     RPC's JSON payload (extension/src/payload.rs, bizos_core::payload),
--     which the business schema's payload_check (sql/api/payloads.sql)
--     runs at the start of every RPC that takes a JSON object. As PL/pgSQL
--     it was a sorted query and a dozen expressions per field: 11 µs a
--     call in a loop, 6 µs now (BENCHMARKS.md, issue 20 step ten). The api
--     files need it, so `bizos db bootstrap` (which updates the extension)
--     runs before `bizos migrate`, as always.
--
-- tests/tests/suite/extension_upgrade.rs checks that every earlier release
-- updated to 0.6.0 equals a fresh install of 0.6.0.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.6.0'" to load this file. \quit

CREATE FUNCTION bizos."payload_problem"(
	"payload" jsonb,
	"spec" jsonb,
	"prefix" TEXT DEFAULT ''
) RETURNS TEXT[]
	IMMUTABLE PARALLEL SAFE
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'payload_problem_wrapper';
