-- Where each tenant's rows live, and the moves between tiers.
--
-- These are the control catalogue of the fleet, not business tables: they
-- live in schema `control` of the control database (the database the BFF
-- and the worker are started against, which is also the shared tier of
-- its region). Qualified on purpose, unlike the business schema: running
-- the migrations inside a tenant schema (`bizos migrate --schema S`) or in
-- another placement's database leaves an empty, unused copy there, never a
-- second catalogue of the same database. They hold no tenant data (no
-- name, no slug): only the tenant's id, region and placement, so a tenant
-- of another region has no business row in this cluster. Nothing here is
-- granted to bizos_authenticated; the login roles of the BFF and the
-- worker read it to route, the owner (operator) writes it.

create schema if not exists control;

-- A PostgreSQL cluster that can hold placements. `url_secret` names the
-- secret holding its connection URL (an environment variable, or a key of
-- the secrets file): a password never sits in a table. A placement's
-- database name is put into that URL.
create table if not exists control.clusters (
  cluster     text        not null,
  region      text        not null,
  url_secret  text        not null,
  -- the cluster new tenants of its region go to (one per region)
  is_default  boolean     not null default false,
  -- the cluster of this control database: a placement on it in this
  -- database uses the processes' own pool (at most one)
  home        boolean     not null default false,
  created_at  timestamptz not null default now(),
  constraint clusters_pkey primary key (cluster),
  constraint clusters_cluster_region_key unique (cluster, region),
  constraint clusters_cluster_check check (cluster ~ '^[a-z][a-z0-9_]{0,62}$'),
  constraint clusters_region_check check (region ~ '^[a-z][a-z0-9-]{0,62}$'),
  constraint clusters_url_secret_check check (url_secret ~ '^[A-Z][A-Z0-9_]{0,127}$')
);
create unique index if not exists clusters_region_default_key
  on control.clusters (region) where is_default;
create unique index if not exists clusters_home_key
  on control.clusters ((true)) where home;
comment on table control.clusters is
  'PostgreSQL clusters of the fleet, by region; url_secret names the secret (environment or secrets file) with the connection URL.';

-- One row per tenant: its tier and where its rows are. shared: the
-- cluster's shared database, schema null (the database's default schema);
-- schema: a schema of its own in that database; isolated: a database of
-- its own on the cluster. `version` grows with every change, so a cached
-- placement older than the row is known to be stale.
create table if not exists control.tenant_placements (
  tenant_id     uuid        not null,
  region        text        not null,
  tier          text        not null,
  cluster       text        not null,
  database_name text        not null,
  schema_name   text,
  version       bigint      not null default 1,
  updated_at    timestamptz not null default now(),
  constraint tenant_placements_pkey primary key (tenant_id),
  -- residency: a placement's cluster is of the tenant's region
  constraint tenant_placements_cluster_fkey foreign key (cluster, region)
    references control.clusters (cluster, region),
  constraint tenant_placements_tier_check check (tier in ('shared', 'schema', 'isolated')),
  constraint tenant_placements_schema_name_check check (
    (tier = 'schema') = (schema_name is not null)
    and (schema_name is null or schema_name ~ '^[a-z][a-z0-9_]{0,62}$')),
  constraint tenant_placements_database_name_check check (database_name ~ '^[a-z][a-z0-9_]{0,62}$')
);
create index if not exists tenant_placements_cluster_idx
  on control.tenant_placements (cluster, database_name, schema_name);
comment on table control.tenant_placements is
  'Where each tenant''s rows live: tier, region, cluster, database and schema; version grows with every change.';

-- A tier move, one row per move, driven by the worker as a resumable
-- state machine: planned -> preflight -> copying -> catching_up -> frozen
-- -> switched -> verified -> done, or failed / rolled_back.
create table if not exists control.tenant_moves (
  move_id          uuid        not null default gen_random_uuid(),
  tenant_id        uuid        not null,
  state            text        not null default 'planned',
  from_tier        text        not null,
  from_cluster     text        not null,
  from_database    text        not null,
  from_schema      text,
  to_tier          text        not null,
  to_cluster       text        not null,
  to_database      text        not null,
  to_schema        text,
  -- per table: rows copied, changes applied, checksums (the mover's own shape)
  progress         jsonb       not null default '{}',
  abort_requested  boolean     not null default false,
  error            text,
  requested_by     text        not null default current_user,
  frozen_at        timestamptz,
  switched_at      timestamptz,
  finished_at      timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  constraint tenant_moves_pkey primary key (move_id),
  constraint tenant_moves_state_check check (state in (
    'planned', 'preflight', 'copying', 'catching_up', 'frozen', 'switched',
    'verified', 'done', 'failed', 'rolled_back')),
  constraint tenant_moves_from_tier_check check (from_tier in ('shared', 'schema', 'isolated')),
  constraint tenant_moves_to_tier_check check (to_tier in ('shared', 'schema', 'isolated'))
);
-- at most one move of a tenant under way
create unique index if not exists tenant_moves_active_key
  on control.tenant_moves (tenant_id)
  where state not in ('done', 'failed', 'rolled_back');
comment on table control.tenant_moves is
  'Tier moves of tenants: one row per move, its state, progress and error.';

-- The BFF and the worker route with what they read here (their logins);
-- the request role reaches the catalogue only through
-- control.placement_check() (sql/api/placement.sql). Writes stay the
-- owner's (bizos tenant, the mover).
grant usage on schema control to bizos_app, bizos_worker, bizos_authenticated;
grant select on control.clusters, control.tenant_placements to bizos_app, bizos_worker;
grant select on control.tenant_moves to bizos_app, bizos_worker;
