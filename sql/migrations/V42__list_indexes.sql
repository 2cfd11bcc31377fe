-- Lists and counts cost the rows the caller may see plus the page, not the
-- tenant's size.
--
-- Every list of the API pages newest first by (created_at, <id>)
-- (bff/src/routes/list.rs). Without an index in that order PostgreSQL read
-- and sorted the whole tenant for every page, building the JSON of every
-- row first (3.8 s for a super admin's page of 50 customers among
-- 207,000); with it, a caller who sees every row reads the page and stops.
-- leads and tickets have (tenant_id, created_at) since V3/V4.
--
-- The customers select policy (crm.sql) reads a restricted caller's rows
-- through an index per branch of customer_readable: created_by needs its
-- own (the team's customers are found by the primary key).
--
-- Every key leads with tenant_id (the tables are distributed by it on
-- Citus).
create index customers_created_at_idx on customers (tenant_id, created_at, customer_id);
create index customers_created_by_idx on customers (tenant_id, created_by);
create index invoices_created_at_idx on invoices (tenant_id, created_at, invoice_id);
create index sales_activities_created_at_idx on sales_activities (tenant_id, created_at, activity_id);
create index objects_created_at_idx on objects (tenant_id, created_at, object_id);
