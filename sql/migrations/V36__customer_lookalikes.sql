-- Look-alike customers off the write path (issue 20).
--
-- Until now find_or_create_customer (and the lead bundle) searched the
-- tenant's customers for similar names (pg_trgm, similarity >= 0.5) inside
-- the request that created a customer: 70-90% of a new company's bundle at
-- 1M customers (BENCHMARKS.md, "The write path at scale"). The exact dedup
-- (NPWP, e-mail, phone, normalised name) stays in the request; the search
-- for similar names becomes a job (`customer.lookalikes`) enqueued in the
-- transaction that creates the customer, and its findings are kept for
-- review on the customer (customer_detail's `lookalikes`).
--
--   customer_lookalikes        what a check found: for customer_id, the
--                              customers with similar names (the 50 most
--                              similar), with the similarity
--   customer_lookalike_checks  when a customer was last checked: "not yet"
--                              and "none found" differ
--
-- Request roles read neither table: customer_lookalikes_of (crm.sql) lists
-- the look-alikes of a customer the caller may read, only those the caller
-- may read too; the worker writes through customer_lookalikes_find.

insert into job_kinds (kind, position, description, max_attempts, lease_secs, backoff_secs)
select 'customer.lookalikes', coalesce(max(position), 0) + 1,
       'find the customers with names similar to new customers (pg_trgm), for review', 5, 120, 30
  from job_kinds;

create table customer_lookalikes (
  tenant_id    uuid        not null,
  customer_id  uuid        not null,
  lookalike_id uuid        not null,
  similarity   real        not null,
  found_at     timestamptz not null default now(),
  constraint customer_lookalikes_pkey primary key (tenant_id, customer_id, lookalike_id),
  constraint customer_lookalikes_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint customer_lookalikes_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint customer_lookalikes_lookalike_id_fkey foreign key (tenant_id, lookalike_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint customer_lookalikes_similarity_check check (similarity > 0 and similarity <= 1),
  constraint customer_lookalikes_lookalike_id_check check (lookalike_id <> customer_id)
);
alter table customer_lookalikes enable row level security;
comment on table customer_lookalikes is
  'Customers with names similar to customer_id (pg_trgm similarity), found by the job customer.lookalikes; read through customer_lookalikes_of.';
-- The other direction: the newer customers that resemble a customer.
create index customer_lookalikes_lookalike_id_idx on customer_lookalikes (tenant_id, lookalike_id);

create table customer_lookalike_checks (
  tenant_id   uuid        not null,
  customer_id uuid        not null,
  checked_at  timestamptz not null default now(),
  constraint customer_lookalike_checks_pkey primary key (tenant_id, customer_id),
  constraint customer_lookalike_checks_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint customer_lookalike_checks_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade
);
alter table customer_lookalike_checks enable row level security;
comment on table customer_lookalike_checks is
  'When the job customer.lookalikes last checked a customer.';

-- The trigram index leads with tenant_id (btree_gin): a search costs in
-- proportion to its tenant's customers, not to every tenant's. Before, a
-- tenant of 2,000 customers paid for the matches of all the others
-- (BENCHMARKS.md).
drop index customers_company_norm_trgm_idx;
create index customers_company_norm_trgm_idx on customers
  using gin (tenant_id, company_norm extensions.gin_trgm_ops);
