-- The rows of an import without a foreign-key check per row (issue 20).
--
-- import_rows is the staging table of imports: a file of a million rows
-- becomes a million rows here, written by one statement of
-- import_stage_finish. The foreign key to imports ran its check once per
-- row, against the one import the whole statement belongs to: 4.5-6 s of
-- the 7.5-9.5 s that moving 1,000,000 staged rows into import_rows took
-- (BENCHMARKS.md, step eight), more than the rest of staging a file.
--
-- What the key guaranteed holds without it:
-- - Rows belong to an import that exists. Only import_stage_finish (a
--   SECURITY DEFINER function; request roles cannot write import_rows)
--   inserts them, for an import it has just locked FOR UPDATE, so the
--   import cannot go away before the rows commit. process_import, the only
--   writer after it, locks the import the same way and never changes the
--   key columns.
-- - An import's rows go with it: the trigger imports_delete_rows
--   (sql/api/imports.sql, beside its function) deletes them when the
--   import is deleted, directly or by the tenant's cascade, as
--   `on delete cascade` did.
alter table import_rows drop constraint import_rows_import_id_fkey;

comment on table import_rows is 'The data rows of an import: cells by column name (empty cells absent), status and the error or the row created/updated. No foreign key (V38): written only by import_stage_finish under its import''s lock; deleted with the import by the trigger imports_delete_rows.';
