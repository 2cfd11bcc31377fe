-- scripts/bench lists with BIZOS_BENCH_LISTS_THEN=bench/lists/before_v42.sql:
-- the customers select policy and the list indexes as they were before
-- V42 (the policy of V14, customer_readable per row, without V42's
-- indexes), to measure "before" on the same data in the same run.
\set ON_ERROR_STOP on
drop index customers_created_at_idx, customers_created_by_idx, invoices_created_at_idx,
           sales_activities_created_at_idx, objects_created_at_idx;
drop policy "callers read the customers customer_readable() allows" on customers;
create policy "callers read the customers customer_readable() allows"
  on customers for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and customer_readable((select customer_scope()), created_by, customer_id));
