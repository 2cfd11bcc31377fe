-- scripts/bench lists: the baseline of count.sql, the tenant's customers
-- counted by the table's owner (no row-level security).
begin;
select count(*) from customers where tenant_id = :tenant;
commit;
