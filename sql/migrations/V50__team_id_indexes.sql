-- The team's customers and leads as index-only scans: team_customer_ids()
-- and team_lead_ids() (crm.sql) read the customers of the prospects and
-- the leads a team's users own, which the select policies of customers,
-- tickets and invoices test rows against. With the owner only in the
-- index, each of a team's 2,000 prospects or leads was a heap fetch from
-- a page of its own. These replace the indexes of (tenant_id, owner) they
-- extend.
create index prospects_owner_customer_idx on prospects (tenant_id, owner_user_id, customer_id);
drop index prospects_owner_user_id_idx;
create index leads_sales_owner_lead_idx on leads (tenant_id, sales_owner_user_id, lead_id);
drop index leads_sales_owner_user_id_idx;
