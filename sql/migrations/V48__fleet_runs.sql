-- Fleet migrations (`bizos migrate --fleet`): one row per run and one per
-- placement the run finished, so a crashed or failed run resumes with
-- `--resume` without redoing what finished. Control catalogue like V45:
-- qualified, in schema `control` of the control database; only the owner
-- (the operator running the command) reads and writes it.

create schema if not exists control;

create table if not exists control.fleet_runs (
  run_id      uuid        not null default gen_random_uuid(),
  -- what the run migrates to: the binary's latest migration and the
  -- fingerprint of its migrations and api files; a resume needs the same
  target      text        not null,
  concurrency integer     not null,
  state       text        not null default 'running',
  started_by  text        not null default current_user,
  started_at  timestamptz not null default now(),
  finished_at timestamptz,
  constraint fleet_runs_pkey primary key (run_id),
  constraint fleet_runs_state_check check (state in ('running', 'done', 'failed')),
  constraint fleet_runs_concurrency_check check (concurrency between 1 and 256)
);
comment on table control.fleet_runs is
  'Runs of bizos migrate --fleet: target version, state (running until every placement finished or the run stopped).';

-- A placement a run finished with: `placement` is cluster/database or
-- cluster/database/schema. Written once the placement's work committed (or
-- failed), so a placement missing here was not finished.
create table if not exists control.fleet_run_placements (
  run_id        uuid        not null,
  placement     text        not null,
  outcome       text        not null,
  migrations    text[]      not null default '{}',
  api_files     integer     not null default 0,
  extension     text,
  error         text,
  drift         jsonb,
  elapsed_ms    bigint      not null default 0,
  finished_at   timestamptz not null default now(),
  constraint fleet_run_placements_pkey primary key (run_id, placement),
  constraint fleet_run_placements_run_id_fkey foreign key (run_id)
    references control.fleet_runs (run_id) on delete cascade,
  constraint fleet_run_placements_outcome_check check (outcome in ('applied', 'current', 'failed'))
);
comment on table control.fleet_run_placements is
  'Per run of bizos migrate --fleet, each placement finished: applied, current or failed (with the error), and its drift.';
