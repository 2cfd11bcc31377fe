-- scripts/bench primitives, benchmarks 2 and 3: business numbers.
\set ON_ERROR_STOP on

insert into bizos.id_kinds (kind, prefix, mode)
values ('bench_lead', 'LEAD', 'sequence'), ('bench_inv', 'INV', 'gapless');

-- 2: a plain insert with a uuid key (A) vs the same plus a sequence-mode
-- business number assigned by the extension's trigger (B).
create table bench_lead_plain (
  id        uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  note      text
);

create table bench_lead_numbered (
  id        uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  note      text,
  lead_no   text
);

create trigger bench_lead_numbered_no before insert or update on bench_lead_numbered
  for each row execute function bizos.assign_business_id('bench_lead', 'lead_no');

-- First use of each (tenant, kind, year) creates its sequence: do it here,
-- outside the measurement.
insert into bench_lead_numbered (tenant_id, note)
select bench_tenant(g), 'warm-up' from generate_series(1, 8) g;

-- 3, reference only: the same upsert as a gapless next_id, in plain SQL.
create table bench_counter (
  tenant_id  uuid    not null,
  kind       text    not null,
  year       integer not null,
  last_value bigint  not null,
  primary key (tenant_id, kind, year)
);
