-- The sales owners of a ticket and of an invoice, on the row: the users
-- owning a prospect of its customer (prospects.owner_user_id) and, for a
-- ticket, its lead's sales owner (leads.sales_owner_user_id). The sales
-- roles' branch of the tickets and invoices select policies becomes
-- `sales_owners && <the caller's team>` (policy_team_owns_any,
-- platform.sql), which the GIN index below serves with one probe per team
-- user, where the team's customer and lead ids (V51's buckets) cost one
-- probe per id: 2,000-4,000 for a sales manager's page at 1M customers.
-- User ids, not team ids: a change of team membership changes nothing
-- here; triggers keep the arrays in step with prospects, leads and the
-- rows' own customer and lead (sales_owners_*, crm.sql, ticketing.sql,
-- receivables.sql, where they are attached).
alter table tickets add column sales_owners uuid[] not null default '{}';
alter table invoices add column sales_owners uuid[] not null default '{}';

-- The rows as they are now. Plain SQL (the api files run after this);
-- without the tables' user triggers, so that neither updated_at nor the
-- audit log records a column that did not exist before.
alter table invoices disable trigger user;
update invoices i
   set sales_owners = o.owners
  from (select p.tenant_id, p.customer_id, array_agg(distinct p.owner_user_id order by p.owner_user_id) as owners
          from prospects p
         where p.owner_user_id is not null
         group by p.tenant_id, p.customer_id) o
 where o.tenant_id = i.tenant_id and o.customer_id = i.customer_id;
alter table invoices enable trigger user;

alter table tickets disable trigger user;
update tickets t
   set sales_owners = o.owners
  from (select x.tenant_id, x.ticket_id, array_agg(distinct x.user_id order by x.user_id) as owners
          from (select t2.tenant_id, t2.ticket_id, p.owner_user_id as user_id
                  from tickets t2
                  join prospects p on p.tenant_id = t2.tenant_id and p.customer_id = t2.related_customer_id
                 where p.owner_user_id is not null
                union all
                select t2.tenant_id, t2.ticket_id, l.sales_owner_user_id
                  from tickets t2
                  join leads l on l.tenant_id = t2.tenant_id and l.lead_id = t2.related_lead_id
                 where l.sales_owner_user_id is not null) x
         group by x.tenant_id, x.ticket_id) o
 where o.tenant_id = t.tenant_id and o.ticket_id = t.ticket_id;
alter table tickets enable trigger user;

-- tenant_id leads (btree_gin); no pending list, so that a read never
-- scans the writes not merged yet.
create index tickets_sales_owners_idx on tickets using gin (tenant_id, sales_owners) with (fastupdate = off);
create index invoices_sales_owners_idx on invoices using gin (tenant_id, sales_owners) with (fastupdate = off);

-- The team's ids a bucket at a time (V51) served only the policies'
-- branches this replaces. Dropping the functions drops the tickets and
-- invoices select policies that name them; ticketing.sql and
-- receivables.sql create them again.
drop function if exists team_customer_ids_in(integer) cascade;
drop function if exists team_lead_ids_in(integer) cascade;
drop function if exists policy_in_team_buckets(name, name);
drop index if exists prospects_owner_bucket_customer_idx;
drop index if exists leads_sales_owner_bucket_lead_idx;
