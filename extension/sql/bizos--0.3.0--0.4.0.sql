-- bizos 0.3.0 → 0.4.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * Every backend keeps a copy of bizos.id_kinds and bizos.transitions
--     (extension/src/cache.rs): each business number read its kind, and
--     each guarded status change its transitions, through the table. A
--     statement trigger on both tables, bizos.invalidate_caches(), sends a
--     relcache invalidation when they change, so every backend drops its
--     copy when the change commits.
--
-- The library of 0.4.0 also serves databases whose SQL is still 0.3.0:
-- there the tables have no such trigger, and it reads them as 0.3.0 did.
-- tests/tests/suite/extension_upgrade.rs checks that every earlier release
-- updated to 0.4.0 equals a fresh install of 0.4.0, triggers included.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.4.0'" to load this file. \quit

CREATE FUNCTION bizos."invalidate_caches"()
	RETURNS TRIGGER
	LANGUAGE c
	AS 'MODULE_PATHNAME', 'invalidate_caches_wrapper';

create trigger bizos_invalidate_caches
  after insert or update or delete or truncate on bizos.id_kinds
  for each statement execute function bizos.invalidate_caches();
create trigger bizos_invalidate_caches
  after insert or update or delete or truncate on bizos.transitions
  for each statement execute function bizos.invalidate_caches();
