-- Every table distributed by tenant_id on Citus can be moved online.
--
-- Citus moves a tenant's shards online (its default shard_transfer_mode)
-- by logical replication: the new placement replays the UPDATEs and
-- DELETEs made on the old one during the copy, which needs a row identity
-- (a primary key or REPLICA IDENTITY). Citus refuses the whole move of a
-- co-location group if one of its tables has none, and every tenant table
-- is in that group.
--
-- kb_stats and kb_terms have none: their natural keys hold nullable scope
-- columns (owner, department, roles; NULLS NOT DISTINCT), which no
-- replica identity index may contain. REPLICA IDENTITY FULL identifies a
-- row by all its columns instead. What it costs: the WAL of an update
-- carries the whole old row (both rows are a handful of columns), and on
-- PostgreSQL 15 a subscriber finds each replayed row by a scan of the
-- shard, during a move only.
--
-- On Citus the statement reaches every shard of the table.
alter table kb_stats replica identity full;
alter table kb_terms replica identity full;
