-- Import rows updated in place (issue 20). Each batch of process_import
-- sets the status and target of its rows; with an index whose predicate
-- named the status, every one of those updates wrote a new index entry,
-- and with full pages the new row version went to another page.
--
-- - The next batch starts after imports.processed_through, the last row
--   the batches so far settled (a batch takes the pending rows in row_no
--   order and settles every one of them), read from the primary key: the
--   index of pending rows goes.
-- - The index of error rows names error_message, which is set exactly
--   when the status is 'error' (import_rows_error_check), so a row that
--   becomes 'ok' changes no indexed column.
-- - Pages are filled half at staging, so the batch's new row versions fit
--   beside the old ones (heap-only tuples: no index entry at all). A
--   staged import takes twice the pages until vacuum.
alter table imports add column processed_through integer not null default 0;
comment on column imports.processed_through is 'The last row_no the batches so far processed: the next batch starts after it.';
update imports i
   set processed_through = coalesce((select max(x.row_no) from import_rows x
                                      where x.tenant_id = i.tenant_id and x.import_id = i.import_id
                                        and x.status <> 'pending'), 0)
 where i.processed_rows > 0;

drop index import_rows_pending_idx;
drop index import_rows_error_idx;
-- The error rows of an import page by page.
create index import_rows_error_idx on import_rows (tenant_id, import_id, row_no)
  where error_message is not null;

alter table import_rows set (fillfactor = 50);
