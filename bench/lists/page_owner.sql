-- A template: run substitutes @relation@ and @key@ for each list.
-- scripts/bench lists: the baseline of page.sql, the same page as the
-- table's owner (no row-level security, no caller), in a transaction.
begin;
select to_jsonb(x) as row, x.created_at, x.@key@ as id from (select * from @relation@ x where x.tenant_id = :tenant order by x.created_at desc, x.@key@ desc limit 51) x order by x.created_at desc, x.@key@ desc;
commit;
