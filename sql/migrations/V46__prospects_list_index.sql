-- The page order of prospects as an index, as V42 gave customers, invoices,
-- sales activities and objects: the prospects select policy's "reads all"
-- branch (crm.sql, policy_reads_all) ranges over created_at, and a caller
-- who reads every prospect then walks this index for a page and stops
-- after it instead of sorting the tenant's prospects.
create index prospects_created_at_idx on prospects (tenant_id, created_at, prospect_id);
