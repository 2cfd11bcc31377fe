-- bizos 0.7.0 → 0.8.0 (ALTER EXTENSION bizos UPDATE). Written by hand:
-- pgrx generates full install scripts only. What changes and why:
--
--   * bizos.ivf_index_state(regclass) (issue 49): whether a bizos_ivf
--     index's lists still fit its table — the rows they were trained on
--     (now recorded in the meta page at every build) against the rows it
--     holds, and how unbalanced its lists are — so an operator, or the
--     worker's vector.retrain job, rebuilds it with REINDEX INDEX
--     CONCURRENTLY. Indexes built before 0.8.0 have no trained rows in
--     their meta page and read as "trained on no rows": one rebuild
--     records them.
--   * the setting bizos.ivf_rerank_confidence (registered when the library
--     loads; no SQL object).
--
-- tests/tests/suite/extension_upgrade.rs checks that every earlier release
-- updated to 0.8.0 equals a fresh install of 0.8.0.
\echo Use "ALTER EXTENSION bizos UPDATE TO '0.8.0'" to load this file. \quit

create function bizos.ivf_index_state(index regclass,
    out trained_rows bigint, out current_rows bigint, out lists integer,
    out lists_after_rebuild integer, out longest_list bigint, out mean_list double precision,
    out longest_to_mean double precision, out needs_retrain boolean, out reason text)
  returns setof record
  volatile strict parallel safe language c as 'MODULE_PATHNAME', 'ivf_index_state_wrapper';
comment on function bizos.ivf_index_state(regclass) is
  'State of a bizos_ivf index: rows its lists were trained on and rows now, lists (now and after a rebuild), longest and mean list, and whether a rebuild (REINDEX INDEX CONCURRENTLY) is due and why';
