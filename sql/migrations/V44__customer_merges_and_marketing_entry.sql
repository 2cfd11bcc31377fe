-- Two parts (one migration number for this change): the record of a
-- customer merge, and marketing spend in a currency with the marketing
-- import modules.
--
-- Merging customers: the record of a merge.
--
-- customer_merge (sql/api/customers.sql) moves everything that points at a
-- duplicate customer to the customer that survives and then deletes the
-- duplicate. The customers table keeps no tombstones: every query that
-- reads customers (lists, the dedup, new logos, RFM, look-alikes) would
-- otherwise have to learn to skip them. What the duplicate was stays
-- readable here instead: its last row (`merged_customer`) and what was
-- moved, under the surviving customer, so its audit history (audit_log
-- rows under its own id, the DELETE entry with its before image) is found
-- from the survivor: customer_detail lists the merges, and GET
-- /api/audit?table=customers&record=<merged_customer_id> reads them.
--
-- A merge row follows its survivor: when the survivor is itself merged
-- later, its merge rows move on with everything else.

create table customer_merges (
  tenant_id          uuid        not null,
  merge_id           uuid        not null default bizos.uuid_v7(),
  customer_id        uuid        not null,
  merged_customer_id uuid        not null,
  merged_customer    jsonb       not null,
  moved              jsonb       not null,
  created_by         uuid        default bizos.uid(),
  created_at         timestamptz not null default now(),
  updated_at         timestamptz not null default now(),
  constraint customer_merges_pkey primary key (tenant_id, merge_id),
  constraint customer_merges_tenant_id_fkey foreign key (tenant_id) references tenants (tenant_id) on delete cascade,
  constraint customer_merges_customer_id_fkey foreign key (tenant_id, customer_id)
    references customers (tenant_id, customer_id) on delete cascade,
  constraint customer_merges_merged_customer_id_key unique (tenant_id, merged_customer_id),
  constraint customer_merges_merged_customer_id_check check (merged_customer_id <> customer_id)
);
comment on table customer_merges is
  'Customers merged into another (customer_merge): the duplicate''s last row and what moved, under the surviving customer.';
create index customer_merges_customer_id_idx on customer_merges (tenant_id, customer_id);

create trigger customer_merges_stamp_timestamps before insert or update on customer_merges
  for each row execute function bizos.stamp_timestamps();
create trigger customer_merges_keep_created_by before insert or update on customer_merges
  for each row execute function bizos.keep_created_by();
select bizos.enable_audit('customer_merges');

alter table customer_merges enable row level security;
-- Written only by customer_merge (as the owner); read with the surviving
-- customer (the subquery runs under the customers policy).
create policy "merges are visible with their surviving customer"
  on customer_merges for select to bizos_authenticated
  using (tenant_id = (select bizos.tenant_id())
         and exists (select 1 from customers c
                      where c.tenant_id = customer_merges.tenant_id
                        and c.customer_id = customer_merges.customer_id));
grant select on customer_merges to bizos_authenticated;

-- ---------------------------------------------------------------------------
-- Marketing spend in a currency, and the import modules of marketing.
--
-- Spend is entered over HTTP (POST /api/marketing/spend) and imported
-- (module marketing_spend); the spend and CPL KPIs sum it in rupiah.
-- `currency` is the currency it was paid in (IDR, or one with a rate in
-- fx_rates), `amount_idr` the amount in rupiah at the rate in force on the
-- spend date, set by the trigger marketing_spend_amount_idr
-- (sql/api/marketing.sql) on every write. Rows before this migration were
-- rupiah.
-- ---------------------------------------------------------------------------

alter table marketing_spend
  add column currency text not null default 'IDR',
  add column amount_idr numeric(16,2),
  add constraint marketing_spend_currency_check check (currency ~ '^[A-Z]{3}$');
update marketing_spend set amount_idr = amount;
comment on column marketing_spend.currency is 'The currency the spend was paid in: IDR, or one with a rate in fx_rates.';
comment on column marketing_spend.amount_idr is
  'The amount in rupiah at the fx_rates rate in force on spend_date (set by the trigger marketing_spend_amount_idr).';

insert into import_modules (module, columns, required, one_of, natural_key, permission, description) values
  ('marketing_spend',
   array['spend_date', 'channel', 'amount', 'currency', 'campaign', 'notes'],
   array['spend_date', 'channel', 'amount'], '{}',
   'channel + campaign + spend_date + currency', 'marketing.write',
   'Marketing spend as marketing_spend_create; a row of a known channel, campaign, day and currency sets its amount again (an export imported twice counts once).'),
  ('marketing_events',
   array['occurred_at', 'channel', 'event_type', 'campaign', 'reach', 'clicks', 'notes'],
   array['occurred_at', 'channel', 'event_type'], '{}',
   'channel + event_type + campaign + occurred_at', 'marketing.write',
   'Marketing events as marketing_event_create (times without an offset in the tenant''s time zone); a known channel, type, campaign and time sets its reach, clicks and notes again.');
