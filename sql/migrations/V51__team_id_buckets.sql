-- The team's customers and leads a bucket at a time: the tickets and
-- invoices policies test a row of a team's customer or lead against the
-- team's ids of the row's bucket only (uuid_hash(id) & 7, one of 8;
-- policy_in_team_buckets, platform.sql), not against all of them, and
-- read each bucket's ids with team_customer_ids_in(bucket) and
-- team_lead_ids_in(bucket) (crm.sql): an index-only scan of that bucket of
-- the team's prospects or leads here, not 8 reads of the whole team.
-- The bucket expression must stay the one the policies and those
-- functions write.
create index prospects_owner_bucket_customer_idx
  on prospects (tenant_id, owner_user_id, (pg_catalog.uuid_hash(customer_id) & 7), customer_id);
create index leads_sales_owner_bucket_lead_idx
  on leads (tenant_id, sales_owner_user_id, (pg_catalog.uuid_hash(lead_id) & 7), lead_id);
