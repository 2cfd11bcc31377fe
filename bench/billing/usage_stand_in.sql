-- The bench's stand-in of usage_billable over bench_usage (setup.sql's
-- table): run after setup, and again after a migration of a reused
-- cluster (the api files bring back the real function).
create or replace function usage_billable(p_tenant_id uuid, p_from date, p_to date)
returns table (metric_code text, label text, unit text, quantity numeric, included numeric,
               overage numeric, unit_price numeric, amount numeric)
language sql stable
as $$
  select u.metric_code, i.label, i.unit, u.quantity, i.included,
         greatest(u.quantity - i.included, 0), i.price, greatest(u.quantity - i.included, 0) * i.price
    from bench_usage u
    join (values ('ai_tokens', 'AI tokens', 'token', 1000000::numeric, 0.05::numeric),
                 ('seats', 'Seats', 'seat', 5, 50000),
                 ('storage_gb', 'Storage', 'GB', 20, 2000)) i(code, label, unit, included, price)
      on i.code = u.metric_code
   where u.tenant_id = p_tenant_id
$$;
grant execute on function usage_billable(uuid, date, date) to bizos_worker;
grant select on bench_usage to bizos_worker;
