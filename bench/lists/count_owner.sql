-- A template: run substitutes @relation@ and @key@ for each list.
-- scripts/bench lists: the baseline of count.sql, the tenant's rows
-- counted by the table's owner (no row-level security).
begin;
select count(*) from @relation@ where tenant_id = :tenant;
commit;
