-- Triggers that cannot run on Citus (run by `bizos migrate` on a Citus
-- coordinator after every application of the api files, which create
-- them): the insert triggers of `tenants` that seed a new tenant's
-- defaults, and its update trigger that moves the schedules to a new time
-- zone. `tenants` is a reference table; its triggers would run on every
-- node's copy and cannot write the distributed tables. On Citus,
-- tenant_create() seeds instead (sql/api/tenants.sql),
-- tenant_set_time_zone() moves the schedules (sql/api/schedules.sql) and
-- tenant_set_plan() makes the subscription (sql/api/billing.sql). And the
-- trigger of the distributed `subscriptions` that tells the routers of a
-- soft lock: subscription_lock_changed() does it on the coordinator.
drop trigger if exists tenants_grant_default_permissions on tenants;
drop trigger if exists tenants_default_sla_policies on tenants;
drop trigger if exists tenants_seed_kpi_metric_definitions on tenants;
drop trigger if exists tenants_seed_sop_rules on tenants;
drop trigger if exists tenants_seed_digest_schedule on tenants;
drop trigger if exists tenants_rfm_weekly_schedule on tenants;
drop trigger if exists tenants_reschedule_on_time_zone on tenants;
drop trigger if exists tenants_follow_plan on tenants;
-- A distributed table's: it would NOTIFY on the shard (sql/api/payments.sql).
drop trigger if exists subscriptions_lock_notify on subscriptions;
