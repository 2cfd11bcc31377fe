-- scripts/bench lists: the baseline of page.sql, the same page as the
-- table's owner (no row-level security, no caller), in a transaction.
begin;
select to_jsonb(x) as row, x.created_at, x.customer_id as id from (select * from customers x where x.tenant_id = :tenant order by x.created_at desc, x.customer_id desc limit 51) x order by x.created_at desc, x.customer_id desc;
commit;
