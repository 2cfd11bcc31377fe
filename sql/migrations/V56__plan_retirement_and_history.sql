-- Operator plan management (docs/billing.md, "Plans: the operator's
-- catalogue"): the operator creates plans, changes their terms and metered
-- prices, and retires them, over HTTP (sql/api/usage.sql, plan_*).
--
--   plans.retired_at  a retired plan takes no new tenant: sign-up and plan
--                     changes refuse it (the trigger tenants_plan_on_sale),
--                     while the tenants on it keep it and keep being billed.
--                     A plan is never deleted: subscriptions, plan changes
--                     and invoice lines refer to it.
--   plan_history      every change the operator made to the catalogue (a
--                     plan or one of its metered prices): the plan as the
--                     API shows it before and after, when, the database login and the request id.
--                     The catalogue has no tenant, so the tenants' audit
--                     chains (bizos.enable_audit, keyed by tenant_id) cannot
--                     hold it; this is the operator's own trail. Global (no
--                     tenant_id): the owner's alone (RLS on, no policy, no
--                     grant).

alter table plans add column retired_at timestamptz;
comment on column plans.retired_at is
  'When the operator retired the plan (plan_retire): it takes no new tenants or sign-ups and cannot be chosen in a plan change; the tenants on it keep it and are billed as before. NULL: on sale.';

create table plan_history (
  history_id  uuid        not null default bizos.uuid_v7(),
  plan_code   text        not null,
  -- The metered price changed (plan_metric_set, plan_metric_remove); NULL:
  -- the plan's own terms.
  metric_code text,
  action      text        not null,
  before      jsonb,
  after       jsonb,
  changed_by  text        not null default session_user,
  -- The BFF's x-request-id of the operator's request (setting request.id).
  request_id  text,
  changed_at  timestamptz not null default now(),
  constraint plan_history_pkey primary key (history_id),
  constraint plan_history_action_check check (action ~ '^[a-z][a-z_]{0,39}$'),
  constraint plan_history_request_id_check check (length(request_id) <= 200)
);
comment on table plan_history is
  'The operator''s changes of the plan catalogue (create, update, metric_set, metric_remove, retire): the plan before and after (plan_json), who (database login), which request, when. Append-only; the owner''s.';
create index plan_history_plan_code_idx on plan_history (plan_code, changed_at);
alter table plan_history enable row level security;
