//! The RLS matrix: for every table and view of the business schema
//! (enumerated from the catalog) and every app role, tenant A never sees,
//! changes or adds tenant B's rows; directors read and write nothing; role
//! scopes hold within a tenant.
//!
//! Every check is shown to be able to pass before it is trusted to fail:
//! - every probed table has rows of both tenants (a table added without
//!   fixtures fails here, by name);
//! - inserts are fresh, valid rows (a row of the tenant with new keys): a
//!   role allowed to insert into its own tenant succeeds, then the same
//!   kind of row for tenant B fails with 42501 *because of RLS* (with the
//!   table's own triggers disabled for that probe, so a trigger that happens
//!   to refuse first cannot stand in for the policy). A table no role may
//!   insert into directly (written only through SQL functions) must have no
//!   INSERT privilege at all, and the probe gets 42501 permission denied;
//! - updates: a role allowed to update a column in its own tenant changes
//!   rows, then the same statement on tenant B changes none (or 42501), and
//!   moving a row to tenant B (where tenant_id is updatable) is refused by
//!   the policy. Tables without UPDATE privilege are probed too (42501).

use std::collections::HashMap;

use bizos_bff::auth::Caller;
use bizos_tests::{caller, code, TestDb};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The app roles, in list order, from the database's vocabulary (V20).
async fn app_roles(db: &TestDb) -> Vec<&'static str> {
    let roles: Vec<String> = sqlx::query_scalar(
        "select term from vocabulary where vocabulary = 'app_roles' order by position",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(roles.len() >= 7, "{roles:?}");
    roles
        .into_iter()
        .map(|r| &*Box::leak(r.into_boxed_str()))
        .collect()
}

async fn user_of(db: &TestDb, tenant: Uuid, role: &str) -> Caller {
    let user: Uuid = sqlx::query_scalar(
        "select user_id from profiles where tenant_id = $1 and app_role = $2 and active order by email limit 1",
    )
    .bind(tenant)
    .bind(role)
    .fetch_one(&db.owner)
    .await
    .unwrap_or_else(|e| panic!("no active {role} in tenant {tenant}: {e}"));
    caller(tenant, user, role)
}

/// Tables of the business schema under RLS that carry tenant_id and that
/// request roles have some privilege on (one they have none on, such as
/// api_key_lookup, is out of every request's reach: security_catalog
/// checks the privileges).
async fn tenant_tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
           join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
          where c.relkind = 'r' and c.relrowsecurity
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
            and has_table_privilege('bizos_authenticated', c.oid, 'SELECT, INSERT, UPDATE, DELETE')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Views of the business schema with tenant_id that request roles may read
/// (the operator's, such as v_llm_margin_monthly, are not granted to them).
async fn tenant_views(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
           join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
          where c.relkind = 'v'
            and has_table_privilege('bizos_authenticated', c.oid, 'SELECT')
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

async fn rows_of(db: &TestDb, table: &str, tenant: Uuid) -> i64 {
    count(
        db,
        &format!("select count(*) from {table} where tenant_id = '{tenant}'"),
    )
    .await
}

fn message(e: &sqlx::Error) -> String {
    e.as_database_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| e.to_string())
}

fn is_rls_refusal(e: &sqlx::Error) -> bool {
    code(e) == "42501" && message(e).contains("row-level security")
}

/// Rows the demo data does not make: added as the owner for `tenant`, the
/// way the application would (keys and references of the same tenant).
async fn add_fixtures(db: &TestDb, tenant: Uuid) {
    let who = user_of(db, tenant, "salesperson").await;
    let mut sql = format!(
        "do $fixtures$
         declare
           t uuid := '{tenant}';
           u uuid := '{user}';
           o uuid;
           w uuid;
         begin
           if not exists (select 1 from objects where tenant_id = t) then
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'customer-documents', 'fixture.pdf', 'application/pdf', 10, repeat('ab', 32), u);
           end if;
           if not exists (select 1 from ticket_attachments where tenant_id = t) then
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'ticket-attachments', 'fixture.pdf', 'application/pdf', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into ticket_attachments (tenant_id, ticket_id, object_id)
             select t, ticket_id, o from tickets where tenant_id = t order by ticket_id limit 1;
           end if;
           if not exists (select 1 from kpi_evidence where tenant_id = t) then
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'kpi-evidence', 'fixture.pdf', 'application/pdf', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into kpi_evidence (tenant_id, entry_id, object_id)
             select t, entry_id, o from kpi_entries where tenant_id = t order by entry_id limit 1;
           end if;
           if not exists (select 1 from customer_documents where tenant_id = t) then
             -- A document of a customer the probing salesperson reads.
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'customer-documents', 'fixture.pdf', 'application/pdf', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into customer_documents (tenant_id, customer_id, object_id, created_by)
             select t, coalesce((select p.customer_id from prospects p
                                  where p.tenant_id = t and p.owner_user_id = u order by p.customer_id limit 1),
                                (select c.customer_id from customers c
                                  where c.tenant_id = t order by c.customer_id limit 1)), o, u;
           end if;
           if not exists (select 1 from sales_activities
                           where tenant_id = t and owner_user_id = u and source = 'manual') then
             -- A manual activity of the probing salesperson (users edit their own).
             insert into sales_activities (tenant_id, owner_user_id, activity_type, source, summary, created_by)
             values (t, u, 'call', 'manual', 'Fixture call', u);
           end if;
           if not exists (select 1 from api_keys where tenant_id = t) then
             -- An API key (and so an active principal of the integration
             -- role), made as its super admin would, and its use.
             -- SET LOCAL: on Citus only the command reaches the workers.
             execute format('set local request.jwt.claims = %L', json_build_object(
               'sub', (select user_id from profiles where tenant_id = t and app_role = 'super_admin' and active limit 1),
               'tenant_id', t, 'app_role', 'super_admin'));
             perform api_key_create('{{\"name\": \"fixture\", \"scopes\": [\"leads:read\", \"tickets:write\"]}}',
                                    sha256(convert_to(t::text, 'UTF8')), 'bz_live_fixture0');
             set local request.jwt.claims = '';
             insert into api_key_usage (tenant_id, key_id, last_used_at)
             select tenant_id, key_id, now() from api_keys where tenant_id = t;
           end if;
           if not exists (select 1 from business_calendars where tenant_id = t) then
             insert into business_calendars (tenant_id) values (t);
           end if;
           if not exists (select 1 from business_hours where tenant_id = t) then
             insert into business_hours (tenant_id, weekday, opens_at, closes_at) values (t, 1, '08:00', '17:00');
           end if;
           if not exists (select 1 from holidays where tenant_id = t) then
             insert into holidays (tenant_id, holiday_date, name) values (t, '2026-08-17', 'Hari Kemerdekaan');
           end if;
           if not exists (select 1 from schedules where tenant_id = t) then
             insert into schedules (tenant_id, name, kind, at_time, days_of_week, created_by)
             values (t, 'fixture schedule', 'storage.sweep', '05:00', '{{1}}', u);
           end if;
           if not exists (select 1 from imports where tenant_id = t) then
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'import-files', 'fixture.csv', 'text/csv', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into imports (tenant_id, module, object_id, file_name, columns, created_by)
             values (t, 'leads', o, 'fixture.csv', array['external_ref', 'channel', 'company_name'], u);
           end if;
           if not exists (select 1 from import_rows where tenant_id = t) then
             insert into import_rows (tenant_id, import_id, row_no, data)
             select t, import_id, 1, '{{\"external_ref\": \"F-1\"}}' from imports where tenant_id = t limit 1;
           end if;
           if not exists (select 1 from kb_documents where tenant_id = t) then
             -- A knowledge-base document of the tenant with a ready chunk
             -- (its statistics come from the triggers) and version 2 being
             -- ingested (a staged chunk).
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'knowledge', 'fixture.txt', 'text/plain', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into kb_documents (tenant_id, document_id, title, owner_user_id, format, object_id, version,
                                       status, chunks_done, ready_version, ready_object_id, ready_at)
             values (t, o, 'Fixture', u, 'txt', o, 2, 'embedding', 1, 1, o, now());
             insert into kb_chunks (tenant_id, document_id, version, chunk_no, owner_user_id, visibility, text,
                                    token_count, tsv, lex_len, embedding)
             values (t, o, 1, 0, u, 'tenant', 'fixture text', 2, to_tsvector('simple', 'fixture text'), 2,
                     array_fill(0.1::real, array[384])::bizos.vector);
             insert into kb_chunk_staging (tenant_id, document_id, version, chunk_no, text, token_count, embedding)
             values (t, o, 2, 0, 'fixture text', 2, array_fill(0.1::real, array[384])::bizos.vector);
           end if;
           if not exists (select 1 from invoices where tenant_id = t and status = 'DRAFT') then
             -- A DRAFT invoice with a line (lines are added to DRAFTs).
             insert into invoices (tenant_id, customer_id, due_date, subtotal, tax, status, created_by)
             select t, customer_id, current_date + 30, 1000, 110, 'DRAFT', u
               from customers where tenant_id = t order by customer_id limit 1
             returning invoice_id into o;
             insert into invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_price, amount)
             values (t, o, 1, 'Fixture line', 1, 1000, 1000);
           end if;
           if not exists (select 1 from upload_intents where tenant_id = t) then
             insert into upload_intents (tenant_id, bucket, created_by) values (t, 'media', u);
           end if;
           if not exists (select 1 from jobs where tenant_id = t) then
             -- A job of the probing user (its tenant's job_tenants row comes with it).
             insert into jobs (tenant_id, kind, max_attempts, created_by) values (t, 'idempotency.purge', 3, u);
           end if;
           if not exists (select 1 from emails where tenant_id = t) then
             insert into emails (tenant_id, template, from_name, to_addresses, subject, text_body, html_body, created_by)
             values (t, 'user.welcome', 'Fixture', array['fixture@example.test'], 'Fixture', 'Fixture', '<p>Fixture</p>', u);
           end if;
           if not exists (select 1 from invitations where tenant_id = t) then
             insert into invitations (tenant_id, email, full_name, app_role, token_hash, expires_at, created_by)
             values (t, 'invited@example.test', 'Fixture', 'finance', sha256(gen_random_uuid()::text::bytea),
                     now() + interval '7 days', u);
           end if;
           if not exists (select 1 from email_template_overrides where tenant_id = t) then
             insert into email_template_overrides (tenant_id, template, subject, created_by)
             values (t, 'user.welcome', 'Welcome to {{tenant_name}}!', u);
           end if;
           if not exists (select 1 from tenant_mail_settings where tenant_id = t) then
             insert into tenant_mail_settings (tenant_id, from_address, from_name)
             values (t, 'fixture@example.test', 'Fixture');
           end if;
           if not exists (select 1 from llm_tenant_keys where tenant_id = t) then
             insert into llm_tenant_keys (tenant_id, provider, label, ciphertext, nonce, wrapped_dek, dek_nonce,
                                          master_key_id, created_by)
             values (t, 'openai', 'Fixture key', '\\x0102', decode(repeat('0a', 12), 'hex'),
                     decode(repeat('ab', 48), 'hex'), decode(repeat('0b', 12), 'hex'), 'fixture', u);
           end if;
           if not exists (select 1 from llm_calls where tenant_id = t) then
             -- A generation through the gateway's functions (counters, the
             -- ledger, the cache, a limit) and one left open (a reservation).
             perform llm_limit_set(t, 'chat', 'tenant', 100, null);
             perform llm_finish(t, (llm_begin(t, u, 'chat', null, 10, null) ->> 'reservation_id')::uuid,
               '[{{\"provider\": \"gemini\", \"model\": \"gemini-2.0-flash\", \"key_ref\": \"platform:0\",
                  \"tokens_in\": 5, \"tokens_out\": 5, \"outcome\": \"ok\"}}]',
               '{{\"cache_key\": \"{key}\", \"model\": \"gemini-2.0-flash\", \"response\": \"Fixture\"}}');
             perform llm_begin(t, u, 'chat', null, 10, null);
           end if;
           if not exists (select 1 from usage_events where tenant_id = t) then
             -- A reported event with its day aggregate and unique value
             -- (written as usage_ingest_for writes them, which Citus does
             -- not run yet) and the plan's AI counter of a day.
             insert into usage_events (tenant_id, external_id, metric_code, occurred_at, day, unique_value)
             values (t, 'fixture-1', 'seats', now(), current_date, 'a');
             insert into usage_daily (tenant_id, metric_code, day, events) values (t, 'seats', current_date, 1);
             insert into usage_daily_uniques (tenant_id, metric_code, day, unique_value)
             values (t, 'seats', current_date, 'a');
             insert into llm_plan_counters (tenant_id, period, period_start, used) values (t, 'day', current_date, 1);
           end if;
           if not exists (select 1 from subscriptions where tenant_id = t) then
             -- The operator's billing of the tenant, written directly (the
             -- tenants trigger that makes subscriptions is not on Citus): a
             -- subscription and a plan change, a finalized invoice with a
             -- line, a payment, a transfer proof and its dunning. On the
             -- seeded trial plan: Citus refuses a write to the plans
             -- reference table after this block's distributed work.
             insert into subscriptions (tenant_id, plan_code, status, started_on, current_period_start,
                                        current_period_end, active_at)
             values (t, 'trial', 'active', date '2026-01-01', date '2026-01-01', date '2026-02-01', now());
             insert into subscription_plan_changes (tenant_id, subscription_id, effective_on, from_plan_code, to_plan_code)
             select t, subscription_id, date '2026-01-15', 'trial', 'trial'
               from subscriptions where tenant_id = t;
             insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after,
                                           subtotal, total)
             select t, subscription_id, date '2026-01-01', date '2026-02-01', now(), 1000, 1000
               from subscriptions where tenant_id = t
             returning billing_invoice_id into w;
             insert into billing_invoice_lines (tenant_id, billing_invoice_id, position, kind, description,
                                                period_start, period_end, quantity, unit, unit_price, amount)
             values (t, w, 1, 'plan', 'Plan RLS fixture', date '2026-01-01', date '2026-02-01', 1, 'month', 1000, 1000);
             update billing_invoices
                set status = 'finalized', invoice_no = 'BIL-RLS-' || left(t::text, 8), issue_date = date '2026-02-01',
                    due_date = date '2026-02-15', finalized_at = now()
              where tenant_id = t and billing_invoice_id = w;
             insert into billing_payments (tenant_id, billing_invoice_id, method, amount, currency, reference,
                                           received_at, recorded_by)
             values (t, w, 'manual_transfer', 1, 'IDR', 'rls-fixture', now(), 'test');
             insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             values (t, 'transfer-proofs', 'proof.pdf', 'application/pdf', 10, repeat('ab', 32), u)
             returning object_id into o;
             insert into billing_transfer_proofs (tenant_id, billing_invoice_id, object_id) values (t, w, o);
             insert into billing_dunning (tenant_id, billing_invoice_id, started_on, cause)
             values (t, w, date '2026-02-16', 'overdue');
           end if;
           if not exists (select 1 from rfm_settings where tenant_id = t) then
             insert into rfm_settings (tenant_id, window_days) values (t, 365);
           end if;
           if not exists (select 1 from rfm_runs where tenant_id = t) then
             -- This week's RFM snapshot; a scored customer even without a
             -- paid invoice in the demo data.
             perform rfm_compute(t, null);
             if not exists (select 1 from rfm_scores where tenant_id = t) then
               insert into rfm_scores (tenant_id, week, customer_id, recency_days, frequency, monetary,
                                       r, f, m, fm, segment)
               select t, r.week, c.customer_id, 1, 1, 100, 5, 1, 1, 1, 'new_customers'
                 from rfm_runs r cross join lateral (select customer_id from customers
                                                     where tenant_id = t order by customer_id limit 1) c
                where r.tenant_id = t;
             end if;
           end if;
           if not exists (select 1 from rfm_content_templates where tenant_id = t) then
             insert into rfm_content_templates (tenant_id, segment, channel, body, version, created_by, updated_by)
             values (t, 'champions', 'email', 'Fixture for {{{{segment}}}}', 1, u, u);
           end if;
           if not exists (select 1 from digests where tenant_id = t) then
             -- The worker's digest of yesterday (digest_store, without an e-mail).
             insert into digests (tenant_id, digest_date, locale, aggregates, insights, source)
             select t, tenant_today(t) - 1, 'id', digest_aggregates(t, tenant_today(t) - 1),
                    jsonb_build_array(i, i, i), 'fallback'
               from (select jsonb_build_object('text', 'Fixture', 'figures', jsonb_build_array('ar_overdue'),
                                               'source', 'fallback') as i) x;
           end if;
           if not exists (select 1 from customer_merges where tenant_id = t) then
             -- A merge into a customer the probing salesperson reads (the
             -- duplicate itself is gone, as after customer_merge).
             insert into customer_merges (tenant_id, customer_id, merged_customer_id, merged_customer, moved, created_by)
             select t, coalesce((select p.customer_id from prospects p
                                  where p.tenant_id = t and p.owner_user_id = u order by p.customer_id limit 1),
                                (select c.customer_id from customers c
                                  where c.tenant_id = t order by c.customer_id limit 1)),
                    gen_random_uuid(), '{{\"company_name\": \"Fixture duplicate\"}}', '{{}}', u;
           end if;
           if not exists (select 1 from webhook_endpoints where tenant_id = t) then
             -- A webhook endpoint with its subscription and sealed secret,
             -- an event of the outbox, its delivery and one attempt.
             insert into webhook_endpoints (tenant_id, url, created_by)
             values (t, 'https://hooks.example.com/fixture', u)
             returning endpoint_id into o;
             insert into webhook_subscriptions (tenant_id, endpoint_id, event_type) values (t, o, 'lead.created');
             insert into webhook_secrets (tenant_id, endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce,
                                          master_key_id, created_by)
             values (t, o, '\\x0102', decode(repeat('0a', 12), 'hex'), decode(repeat('ab', 48), 'hex'),
                     decode(repeat('0b', 12), 'hex'), 'fixture', u);
             insert into webhook_events (tenant_id, event_type, subject_id, payload, created_by)
             values (t, 'lead.created', gen_random_uuid(),
                     '{{\"type\": \"lead.created\", \"timestamp\": \"2026-01-01T00:00:00Z\", \"data\": {{}}}}', u)
             returning event_id into w;
             insert into webhook_deliveries (tenant_id, event_id, endpoint_id) values (t, w, o)
             returning delivery_id into w;
             insert into webhook_attempts (tenant_id, delivery_id, attempt_no, attempted_at, duration_ms, status_code,
                                           succeeded, error)
             values (t, w, 1, now(), 12, 500, false, 'HTTP 500');
           end if;
         end
         $fixtures$",
        user = who.user_id,
        key = "ab".repeat(32)
    );
    sql.push(';');
    sqlx::raw_sql(&sql)
        .execute(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("fixtures of tenant {tenant}: {e}"));
    // An expired idempotency key (the only kind a user may update: reuse),
    // in a transaction of its own: on Citus, DDL on a distributed table is
    // refused after the reads above of the reference table `tenants`.
    // One statement at a time: Citus refuses DDL in a batch of several.
    let fail = |e: sqlx::Error| panic!("idempotency fixture of tenant {tenant}: {e}");
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("alter table idempotency_keys disable trigger idempotency_keys_stamp_timestamps")
        .execute(&mut *tx)
        .await
        .unwrap_or_else(fail);
    sqlx::query(
        "insert into idempotency_keys (tenant_id, user_id, idempotency_key, method, path, request_hash,
                                       response_status, response_body, created_at, expires_at)
         values ($1, $2, 'fixture-key', 'POST', '/api/leads', repeat('ab', 32), 201, '{}',
                 now() - interval '3 days', now() - interval '1 day')
         on conflict do nothing",
    )
    .bind(tenant)
    .bind(who.user_id)
    .execute(&mut *tx)
    .await
    .unwrap_or_else(fail);
    sqlx::query("alter table idempotency_keys enable trigger idempotency_keys_stamp_timestamps")
        .execute(&mut *tx)
        .await
        .unwrap_or_else(fail);
    tx.commit().await.unwrap();
}

async fn seeded(db: &TestDb) -> (Uuid, Uuid) {
    let (a, b) = db.seed_demo_tenants().await;
    add_fixtures(db, a).await;
    add_fixtures(db, b).await;
    (a, b)
}

/// What a table lets `bizos_authenticated` do, from the catalog.
struct Table {
    name: String,
    /// Columns it may insert (not generated).
    insertable: Vec<String>,
    /// Columns it may update, tenant_id last when it is one of them.
    updatable: Vec<String>,
    /// Columns to leave to their defaults and triggers in a fresh row:
    /// ids, times and states with a default (new keys, a new row's
    /// status), business numbers, created_by.
    fresh: Vec<String>,
    /// Key columns without a default (type name each), made fresh by hand.
    keys: Vec<(String, String)>,
}

/// Columns of `table` that `bizos_authenticated` may `privilege` (tenant_id
/// last).
async fn columns(db: &TestDb, table: &str, privilege: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select a.attname::text from pg_attribute a
          where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
            and a.attgenerated = '' and a.attidentity = ''
            and has_column_privilege('bizos_authenticated', a.attrelid, a.attnum, $2)
          order by a.attname = 'tenant_id', a.attnum",
    )
    .bind(table)
    .bind(privilege)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn table(db: &TestDb, name: &str) -> Table {
    let insertable = columns(db, name, "INSERT").await;
    let updatable = columns(db, name, "UPDATE").await;
    // Columns of unique indexes (primary key included), but tenant_id.
    let unique: Vec<(String, String, bool)> = sqlx::query_as(
        "select distinct a.attname::text, format_type(a.atttypid, a.atttypmod), a.atthasdef
           from pg_index i
           join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any (i.indkey)
          where i.indrelid = $1::regclass and i.indisunique and a.attname <> 'tenant_id'",
    )
    .bind(name)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    // Business numbers filled by bizos.assign_business_id(kind, column).
    let numbered: Vec<String> = sqlx::query_scalar(
        "select split_part(encode(t.tgargs, 'escape'), '\\000', 2)
           from pg_trigger t join pg_proc p on p.oid = t.tgfoid
          where t.tgrelid = $1::regclass and p.proname = 'assign_business_id'",
    )
    .bind(name)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    // References stay as they are (a new file is made for object_id).
    let referencing: Vec<String> = sqlx::query_scalar(
        "select distinct a.attname::text from pg_constraint c
           join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
          where c.conrelid = $1::regclass and c.contype = 'f' and a.attname <> 'object_id'
         union
         -- On Citus, keys to reference tables are triggers (docs/citus.md).
         select a.attname::text from pg_trigger t
           join pg_proc p on p.oid = t.tgfoid
           join pg_attribute a on a.attrelid = t.tgrelid and a.attnum = any (t.tgattr::int2[])
          where t.tgrelid = $1::regclass and p.proname = 'citus_reference_key_check'",
    )
    .bind(name)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    // Text keys with a CHECK (an enumeration, a pattern) keep their value:
    // a duplicate is then skipped by ON CONFLICT DO NOTHING, after the
    // policy has judged the row.
    let checked: Vec<String> = sqlx::query_scalar(
        "select distinct a.attname::text from pg_constraint c
           join pg_attribute a on a.attrelid = c.conrelid and a.attnum = any (c.conkey)
          where c.conrelid = $1::regclass and c.contype = 'c'",
    )
    .bind(name)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut fresh: Vec<String> = unique
        .iter()
        .filter(|(_, _, has_default)| *has_default)
        .map(|(c, _, _)| c.clone())
        .collect();
    fresh.extend(numbered);
    // Ids, times and states with a default start over (new keys, a new
    // row's status), as in a row an application would add.
    let timed: Vec<String> = sqlx::query_scalar(
        "select a.attname::text from pg_attribute a
          where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
            and a.atthasdef and a.attname <> 'tenant_id'
            and (a.atttypid in ('uuid'::regtype, 'timestamptz'::regtype)
                 or a.attname ~ '(^|_)status$')",
    )
    .bind(name)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    fresh.extend(timed);
    fresh.extend(["created_at", "updated_at", "created_by"].map(String::from));
    let keys = unique
        .into_iter()
        .filter(|(c, _, has_default)| {
            !has_default && !fresh.contains(c) && !referencing.contains(c)
        })
        .filter(|(c, t, _)| t != "text" || !checked.contains(c))
        .map(|(c, t, _)| (c, t))
        .collect();
    Table {
        name: name.to_owned(),
        insertable,
        updatable,
        fresh,
        keys,
    }
}

/// A fresh row for `tenant`: one of its rows with new keys, as JSON. A row
/// that uses a file (unique per row) gets a new file of `uploader`.
async fn fresh_row(db: &TestDb, t: &Table, tenant: Uuid, uploader: Uuid) -> Map<String, Value> {
    fresh_row_from(db, t, tenant, uploader, 0).await
}

/// [`fresh_row`] from the tenant's `nth` row (or its last).
async fn fresh_row_from(
    db: &TestDb,
    t: &Table,
    tenant: Uuid,
    uploader: Uuid,
    nth: i64,
) -> Map<String, Value> {
    let sql = format!(
        "select to_jsonb(x) from {} x where tenant_id = $1 order by ctid offset $2 limit 1",
        t.name
    );
    let sample = |nth: i64| {
        sqlx::query_scalar::<_, Value>(&sql)
            .bind(tenant)
            .bind(nth)
            .fetch_optional(&db.owner)
    };
    let row = match sample(nth).await.unwrap() {
        Some(row) => row,
        None => sample(0)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no row of {} in tenant {tenant}", t.name)),
    };
    let Value::Object(mut row) = row else {
        unreachable!()
    };
    for c in &t.fresh {
        row.remove(c);
    }
    let tag = Uuid::new_v4().simple().to_string();
    // A file is its uploader's (require_own_object): the copy names a new
    // file of the prober's like the row's, whether or not it is in a key.
    if let Some(file) = row.get("object_id").and_then(Value::as_str) {
        let object: Uuid = sqlx::query_scalar(
            "insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
             select tenant_id, bucket, 'probe.pdf', content_type, size_bytes, sha256, $3
               from objects where tenant_id = $1 and object_id = $2
             returning object_id",
        )
        .bind(tenant)
        .bind(file.parse::<Uuid>().ok())
        .bind(uploader)
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("a new file for a row of {}: {e}", t.name));
        row.insert("object_id".into(), json!(object));
    }
    for (c, ty) in &t.keys {
        if c == "object_id" {
            continue;
        }
        let Some(v) = row.get(c).cloned() else {
            continue;
        };
        let fresh = match (ty.as_str(), &v) {
            (_, Value::Null) => Value::Null,
            // A row of a user's own (an idempotency key): the prober's.
            ("uuid", _) if c == "user_id" => json!(uploader),
            ("uuid", _) => json!(Uuid::new_v4()),
            ("text", Value::String(s)) => json!(format!("{s}_{}", &tag[..8])),
            ("integer" | "bigint" | "smallint", Value::Number(n)) => {
                json!(n.as_i64().unwrap_or(0) + 1_000_000 + (tag.len() as i64))
            }
            ("date", Value::String(s)) => {
                let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
                json!((d + chrono::Duration::days(3650)).to_string())
            }
            _ => v,
        };
        row.insert(c.clone(), fresh);
    }
    // Rows whose validity depends on other rows' state: point them at rows
    // that take them (a payment needs an ISSUED invoice, and no more than
    // it owes).
    let patch: Option<&str> = match t.name.as_str() {
        "payments" => Some(
            "select jsonb_build_object('invoice_id', invoice_id, 'amount', 1, 'paid_on', greatest(issue_date, tenant_today(tenant_id)))
               from invoices where tenant_id = $1 and status = 'ISSUED' order by invoice_id limit 1",
        ),
        // Messages go to tickets that are still open.
        "ticket_messages" => Some(
            "select jsonb_build_object('ticket_id', ticket_id) from tickets
              where tenant_id = $1
                and coalesce(inquiry_status, ticket_status) not in ('CLOSED', 'CANCELLED', 'WON', 'LOST')
              order by ticket_id limit 1",
        ),
        // Lines are added to DRAFT invoices.
        "invoice_lines" => Some(
            "select jsonb_build_object('invoice_id', invoice_id) from invoices
              where tenant_id = $1 and status = 'DRAFT' order by invoice_id limit 1",
        ),
        // Users add manual activities (derived ones come from triggers).
        "sales_activities" => Some(
            "select jsonb_build_object('source', 'manual') where $1::uuid is not null",
        ),
        // Its key is (app_role, permission): a permission of the vocabulary
        // (V34) the role does not hold yet.
        "role_permissions" => Some(
            "select jsonb_build_object('app_role', 'salesperson', 'permission', p.code)
               from permissions p
              where not exists (select 1 from role_permissions r
                                 where r.tenant_id = $1 and r.app_role = 'salesperson'
                                   and r.permission = p.code)
              order by p.position limit 1",
        ),
        _ => None,
    };
    if let Some(sql) = patch {
        let patch: Value = sqlx::query_scalar(sql)
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap_or_else(|e| panic!("a row for {} in tenant {tenant}: {e}", t.name));
        if let Value::Object(patch) = patch {
            row.extend(patch);
        }
    }
    row.insert("tenant_id".into(), json!(tenant));
    row
}

/// Inserts `row` into `t` as `who` (rolled back); the error if any.
async fn try_insert(
    db: &TestDb,
    who: &Caller,
    t: &Table,
    row: &Map<String, Value>,
) -> Result<(), sqlx::Error> {
    let cols: Vec<&String> = t
        .insertable
        .iter()
        .filter(|c| row.contains_key(*c))
        .collect();
    let cols = if cols.is_empty() {
        // No insertable column: probe the privilege with the tenant alone.
        "tenant_id".to_owned()
    } else {
        cols.iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut tx = db.as_user(who).await;
    // ON CONFLICT DO NOTHING: a table with one row per tenant (a calendar)
    // or an exclusion constraint (opening hours) still proves the policy,
    // which is checked before any unique or exclusion index.
    sqlx::query(&format!(
        "insert into {table} ({cols}) select {cols} from jsonb_populate_record(null::{table}, $1)
         on conflict do nothing",
        table = t.name
    ))
    .bind(Value::Object(row.clone()))
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// `update t set col = col where tenant_id = $1` as `who` (rolled back).
async fn try_update(
    db: &TestDb,
    who: &Caller,
    t: &Table,
    set: &str,
    tenant: Uuid,
) -> Result<u64, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    sqlx::query(&format!("update {} set {set} where tenant_id = $1", t.name))
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .map(|d| d.rows_affected())
}

async fn set_user_triggers(db: &TestDb, table: &str, enabled: bool) {
    let action = if enabled { "enable" } else { "disable" };
    sqlx::query(&format!("alter table {table} {action} trigger user"))
        .execute(&db.owner)
        .await
        .unwrap();
}

/// The insert check of one table: proven to pass in the own tenant, then
/// refused by RLS for the other tenant, for every role.
async fn check_insert(
    db: &TestDb,
    t: &Table,
    roles: &[&str],
    callers: &HashMap<&str, (Caller, Caller)>,
    a: Uuid,
    b: Uuid,
) {
    let mut own_errors = Vec::new();
    let mut inserter = None;
    // A few of the tenant's rows, since whether a copy is valid can depend
    // on the state of what it refers to (demo data is random).
    'found: for nth in 0..5 {
        for role in roles {
            let (who, _) = &callers[role];
            let row = fresh_row_from(db, t, a, who.user_id, nth).await;
            match try_insert(db, who, t, &row).await {
                Ok(()) => {
                    inserter = Some(role);
                    break 'found;
                }
                Err(e) => {
                    own_errors.push(format!("row {nth}, {role}: {} {}", code(&e), message(&e)))
                }
            }
        }
        if t.insertable.is_empty() {
            break;
        }
    }
    if t.insertable.is_empty() {
        // Written only through SQL functions: no INSERT privilege at all.
        assert!(
            inserter.is_none(),
            "{}: inserted without an INSERT privilege",
            t.name
        );
    } else {
        assert!(
            inserter.is_some(),
            "{}: no role inserts a fresh row into its own tenant, so the cross-tenant insert \
             check would prove nothing (fix the row builder or the fixtures): {own_errors:#?}",
            t.name
        );
    }
    // The other tenant: the policy alone must refuse (triggers off).
    let before = rows_of(db, &t.name, b).await;
    set_user_triggers(db, &t.name, false).await;
    for role in roles {
        let (who, other) = &callers[role];
        let row = fresh_row(db, t, b, other.user_id).await;
        let result = try_insert(db, who, t, &row).await;
        match &result {
            Err(e) if t.insertable.is_empty() => assert!(
                code(e) == "42501" && message(e).contains("permission denied"),
                "{}: {role} inserting into tenant B: expected permission denied, got {} {}",
                t.name,
                code(e),
                message(e)
            ),
            Err(e) => assert!(
                is_rls_refusal(e),
                "{}: {role} inserting into tenant B: expected an RLS refusal (42501), got {} {}",
                t.name,
                code(e),
                message(e)
            ),
            Ok(()) => {
                set_user_triggers(db, &t.name, true).await;
                panic!("{}: {role} inserted a row into tenant B", t.name)
            }
        }
    }
    set_user_triggers(db, &t.name, true).await;
    assert_eq!(rows_of(db, &t.name, b).await, before, "{}", t.name);
}

/// The update check of one table: proven to change rows in the own tenant,
/// then changing none of the other tenant's, for every role; and a row
/// cannot be moved to the other tenant.
async fn check_update(
    db: &TestDb,
    t: &Table,
    roles: &[&str],
    callers: &HashMap<&str, (Caller, Caller)>,
    a: Uuid,
    b: Uuid,
) {
    let mut own = None;
    let mut own_errors = Vec::new();
    'find: for col in t.updatable.iter().filter(|c| *c != "tenant_id") {
        for role in roles {
            let (who, _) = &callers[role];
            let set = format!("\"{col}\" = \"{col}\"");
            match try_update(db, who, t, &set, a).await {
                Ok(n) if n > 0 => {
                    own = Some((role, set));
                    break 'find;
                }
                Ok(_) => own_errors.push(format!("{role} {col}: 0 rows")),
                Err(e) => own_errors.push(format!("{role} {col}: {} {}", code(&e), message(&e))),
            }
        }
    }
    let set = match &own {
        Some((_, set)) => set.clone(),
        None => {
            assert!(
                t.updatable.is_empty(),
                "{}: no role updates a row of its own tenant, so the cross-tenant update check \
                 would prove nothing: {own_errors:#?}",
                t.name
            );
            // No UPDATE privilege: the statement is refused before any row.
            "tenant_id = tenant_id".to_owned()
        }
    };
    for role in roles {
        let (who, _) = &callers[role];
        match try_update(db, who, t, &set, b).await {
            Ok(n) => assert_eq!(n, 0, "{}: {role} updated tenant B's rows ({set})", t.name),
            Err(e) => assert!(
                code(&e) == "42501" && (own.is_some() || message(&e).contains("permission denied")),
                "{}: {role} updating tenant B: expected no row or 42501, got {} {}",
                t.name,
                code(&e),
                message(&e)
            ),
        }
    }
    // Moving an own row into tenant B.
    if let (Some((role, _)), true) = (&own, t.updatable.iter().any(|c| c == "tenant_id")) {
        let (who, _) = &callers[*role];
        match try_update(db, who, t, &format!("tenant_id = '{b}'"), a).await {
            Ok(n) => assert_eq!(n, 0, "{}: {role} moved rows into tenant B", t.name),
            // Citus refuses to change a row's distribution column at all,
            // before RLS judges it.
            Err(e) => assert!(
                is_rls_refusal(&e)
                    || (db.is_citus()
                        && code(&e) == "0A000"
                        && message(&e).contains("modifying the partition value")),
                "{}: {role} moving a row into tenant B: expected an RLS refusal, got {} {}",
                t.name,
                code(&e),
                message(&e)
            ),
        }
    }
}

#[tokio::test]
async fn tenant_a_never_sees_changes_or_adds_tenant_b_rows() {
    tenant_a_never_sees_changes_or_adds_tenant_b_rows_on(TestDb::new().await).await;
}

/// The same on Citus: every table and every view, for every role.
#[tokio::test]
async fn tenant_a_never_sees_changes_or_adds_tenant_b_rows_on_citus() {
    tenant_a_never_sees_changes_or_adds_tenant_b_rows_on(TestDb::on_citus().await).await;
}

async fn tenant_a_never_sees_changes_or_adds_tenant_b_rows_on(db: TestDb) {
    let (a, b) = seeded(&db).await;
    let tables = tenant_tables(&db).await;
    let views = tenant_views(&db).await;
    assert!(tables.len() >= 15, "{tables:?}");
    let roles = &app_roles(&db).await[..];
    let mut callers = HashMap::new();
    for &role in roles {
        callers.insert(
            role,
            (user_of(&db, a, role).await, user_of(&db, b, role).await),
        );
    }
    // Every probed table has rows of both tenants, or its checks are vacuous.
    let empty: Vec<String> = {
        let mut out = Vec::new();
        for table in &tables {
            for (name, tenant) in [("A", a), ("B", b)] {
                if rows_of(&db, table, tenant).await == 0 {
                    out.push(format!("{table} (tenant {name})"));
                }
            }
        }
        out
    };
    assert!(
        empty.is_empty(),
        "tables without fixture rows (add them to add_fixtures): {empty:?}"
    );

    for name in &tables {
        let t = table(&db, name).await;
        let b_rows = rows_of(&db, name, b).await;
        // Reads: some role sees its own tenant's rows; none sees B's.
        let mut own_seen = 0;
        for role in roles {
            let (who, _) = &callers[role];
            let mut tx = db.as_user(who).await;
            for (tenant, seen) in [(b, 0i64), (a, -1)] {
                let n: i64 = sqlx::query_scalar(&format!(
                    "select count(*) from {name} where tenant_id = $1"
                ))
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{role} select {name}: {e}"));
                if seen == 0 {
                    assert_eq!(n, 0, "{role} sees tenant B rows of {name}");
                } else {
                    own_seen = own_seen.max(n);
                }
            }
        }
        assert!(own_seen > 0, "{name}: no role reads its own tenant's rows");

        check_insert(&db, &t, roles, &callers, a, b).await;
        check_update(&db, &t, roles, &callers, a, b).await;
        for role in roles {
            let (who, _) = &callers[role];
            let mut tx = db.as_user(who).await;
            match sqlx::query(&format!("delete from {name} where tenant_id = $1"))
                .bind(b)
                .execute(&mut *tx)
                .await
            {
                Ok(done) => assert_eq!(done.rows_affected(), 0, "{role} deleted tenant B's {name}"),
                Err(e) => assert_eq!(code(&e), "42501", "{role} delete {name}: {e}"),
            }
        }
        assert_eq!(
            rows_of(&db, name, b).await,
            b_rows,
            "tenant B's {name} changed"
        );
    }
    for view in &views {
        assert!(
            count(
                &db,
                &format!("select count(*) from {view} where tenant_id = '{b}'")
            )
            .await
                > 0,
            "{view} has no rows of tenant B: the check below would prove nothing"
        );
        for role in roles {
            let (who, _) = &callers[role];
            let mut tx = db.as_user(who).await;
            let seen: i64 =
                sqlx::query_scalar(&format!("select count(*) from {view} where tenant_id = $1"))
                    .bind(b)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap_or_else(|e| panic!("{role} select {view}: {e}"));
            assert_eq!(seen, 0, "{role} sees tenant B rows of {view}");
        }
    }
}

#[tokio::test]
async fn directors_read_everything_and_write_nothing() {
    directors_read_everything_and_write_nothing_on(TestDb::new().await).await;
}

#[tokio::test]
async fn directors_read_everything_and_write_nothing_on_citus() {
    directors_read_everything_and_write_nothing_on(TestDb::on_citus().await).await;
}

async fn directors_read_everything_and_write_nothing_on(db: TestDb) {
    let (a, _) = seeded(&db).await;
    let director = user_of(&db, a, "director").await;
    for name in tenant_tables(&db).await {
        let t = table(&db, &name).await;
        let total = rows_of(&db, &name, a).await;
        assert!(total > 0, "{name} has no rows of tenant A");
        let mut tx = db.as_user(&director).await;
        let seen: i64 = sqlx::query_scalar(&format!("select count(*) from {name}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("director select {name}: {e}"));
        drop(tx);
        // Rows only their owner reads (uploads and idempotency keys of a user).
        // (Imports and files are read by their uploader, super admins and,
        // for files, through the rows that use them; the metadata of the
        // tenant's AI provider keys by its super admins only.)
        let own_only = [
            "idempotency_keys",
            "upload_intents",
            "imports",
            "import_rows",
            "objects",
            "llm_tenant_keys",
            // Webhooks: read by holders of webhook.manage (super admins),
            // not directors: endpoints, secrets and the outbox are the
            // integration's administration.
            "webhook_endpoints",
            "webhook_subscriptions",
            "webhook_secrets",
            "webhook_events",
            "webhook_deliveries",
            "webhook_attempts",
            // Chunks being ingested: read by the document's managers.
            "kb_chunk_staging",
            // The tenant's API keys: read by their managers (api_key.manage).
            "api_keys",
            "api_key_scopes",
            "api_key_usage",
        ]
        .contains(&name.as_str());
        if !own_only {
            assert_eq!(seen, total, "the director reads all of {name}");
        }
        for col in t.updatable.iter().filter(|c| *c != "tenant_id") {
            let set = format!("\"{col}\" = \"{col}\"");
            match try_update(&db, &director, &t, &set, a).await {
                Ok(n) => assert_eq!(n, 0, "director updated {name}.{col}"),
                Err(e) => assert_eq!(code(&e), "42501", "director update {name}.{col}: {e}"),
            }
        }
        let mut tx = db.as_user(&director).await;
        match sqlx::query(&format!("delete from {name}"))
            .execute(&mut *tx)
            .await
        {
            Ok(done) => assert_eq!(done.rows_affected(), 0, "director deleted from {name}"),
            Err(e) => assert_eq!(code(&e), "42501", "director delete {name}: {e}"),
        }
    }
    // A fresh row of the own tenant (the main test shows some role may add
    // it where the table takes direct inserts): the policy refuses the
    // director (triggers off, so that no trigger refuses first). Last,
    // because the probes add files (a row that uses a file gets a new one).
    for name in tenant_tables(&db).await {
        let t = table(&db, &name).await;
        if name == "idempotency_keys" {
            // A director's refused write stores its 4xx answer under its key.
            continue;
        }
        let row = fresh_row(&db, &t, a, director.user_id).await;
        set_user_triggers(&db, &name, false).await;
        let director_insert = try_insert(&db, &director, &t, &row).await;
        set_user_triggers(&db, &name, true).await;
        match director_insert {
            Ok(()) => panic!("the director inserted into {name}"),
            Err(e) if t.insertable.is_empty() => {
                assert!(message(&e).contains("permission denied"), "{name}: {e}")
            }
            Err(e) => assert!(is_rls_refusal(&e), "director insert {name}: {e}"),
        }
    }
}

#[tokio::test]
async fn role_scopes_hold_within_a_tenant() {
    role_scopes_hold_within_a_tenant_on(TestDb::new().await).await;
}

/// The same on Citus: two demo tenants in a database of their
/// own on the tests' cluster.
#[tokio::test]
async fn role_scopes_hold_within_a_tenant_on_citus() {
    role_scopes_hold_within_a_tenant_on(TestDb::on_citus().await).await;
}

async fn role_scopes_hold_within_a_tenant_on(db: TestDb) {
    let (a, _) = db.seed_demo_tenants().await;
    let checks: [(&str, &str); 6] = [
        ("ops", "select count(*) from tickets where dept_target is distinct from my_dept_code()"),
        ("salesperson", "select count(*) from leads where sales_owner_user_id is distinct from bizos.uid() and created_by is distinct from bizos.uid()"),
        ("salesperson", "select count(*) from invoices where not owns_customer(customer_id)"),
        ("sales_manager", "select count(*) from invoices where not owns_customer(customer_id)"),
        ("ops", "select count(*) from invoices"),
        ("marketing_manager", "select count(*) from payments"),
    ];
    for (role, sql) in checks {
        let who = user_of(&db, a, role).await;
        let mut tx = db.as_user(&who).await;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(n, 0, "{role}: {sql}");
    }
    // And the scopes are not empty: each role sees its own part. The demo
    // seed is random, so the salesperson is one who owns a lead (the first
    // by e-mail may own none at the tests' small scale).
    let seller: Uuid = sqlx::query_scalar(
        "select p.user_id from profiles p
          where p.tenant_id = $1 and p.app_role = 'salesperson' and p.active
            and exists (select 1 from leads l where l.tenant_id = p.tenant_id
                                                and l.sales_owner_user_id = p.user_id)
          order by p.email limit 1",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .expect("the demo seed gives some salesperson a lead");
    for (role, sql) in [
        ("ops", "select count(*) from tickets"),
        ("salesperson", "select count(*) from leads"),
        ("finance", "select count(*) from invoices"),
    ] {
        let who = if role == "salesperson" {
            caller(a, seller, role)
        } else {
            user_of(&db, a, role).await
        };
        let mut tx = db.as_user(&who).await;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
        assert!(n > 0, "{role} sees nothing at all: {sql}");
    }
}

// --- receivables: refunds and credit notes ---

/// Refunds and credit notes follow their invoice: read by whoever reads
/// the invoice (super admins, directors and finance all; sales roles those
/// of their customers; the others none), made only by the invoices' roles
/// (finance and super admins: payment.record, invoice.create), and never
/// for another tenant's invoice or payment.
#[tokio::test]
async fn refunds_and_credit_notes_follow_the_invoices_roles() {
    refunds_and_credit_notes_follow_the_invoices_roles_on(TestDb::new().await).await;
}

#[tokio::test]
async fn refunds_and_credit_notes_follow_the_invoices_roles_on_citus() {
    refunds_and_credit_notes_follow_the_invoices_roles_on(TestDb::on_citus().await).await;
}

async fn refunds_and_credit_notes_follow_the_invoices_roles_on(db: TestDb) {
    let (a, b) = seeded(&db).await;
    let (refunds, notes) = (
        rows_of(&db, "refunds", a).await,
        rows_of(&db, "credit_notes", a).await,
    );
    let (refunds_b, notes_b) = (
        rows_of(&db, "refunds", b).await,
        rows_of(&db, "credit_notes", b).await,
    );
    assert!(
        refunds > 0 && notes > 0,
        "the demo seeds refunds and credit notes"
    );
    // An open invoice and a payment with something left to refund, of
    // each tenant (as the owner).
    let target = |tenant: Uuid| {
        let db = &db;
        async move {
            let invoice: Uuid = sqlx::query_scalar(
                "select invoice_id from v_invoice_outstanding where tenant_id = $1 and outstanding > 1
                  order by invoice_id limit 1",
            )
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            let payment: Uuid = sqlx::query_scalar(
                "select payment_id from v_payments where tenant_id = $1 and net_amount > 1
                  order by payment_id limit 1",
            )
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            (invoice, payment)
        }
    };
    let (inv_a, pay_a) = target(a).await;
    let (inv_b, pay_b) = target(b).await;

    for role in app_roles(&db).await {
        let who = user_of(&db, a, role).await;
        let mut tx = db.as_user(&who).await;
        let seen = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        let r: i64 = seen("select count(*) from refunds")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let n: i64 = seen("select count(*) from credit_notes")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        match role {
            "super_admin" | "director" | "finance" => {
                assert_eq!(
                    (r, n),
                    (refunds, notes),
                    "{role} reads every refund and credit note"
                )
            }
            "sales_manager" | "salesperson" => {
                let foreign: i64 = seen(
                    "select (select count(*) from credit_notes where not owns_customer(customer_id))
                          + (select count(*) from refunds r
                              where not coalesce(owns_customer((select i.customer_id from invoices i
                                                                 where i.tenant_id = r.tenant_id
                                                                   and i.invoice_id = r.invoice_id)), false))",
                )
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                assert_eq!(
                    foreign, 0,
                    "{role} reads documents of customers it does not own"
                );
            }
            _ => assert_eq!((r, n), (0, 0), "{role} reads refunds or credit notes"),
        }
        drop(tx);

        // Writing: the invoices' roles only; another tenant's documents are
        // not found (invisible), whatever the role.
        let may = matches!(role, "super_admin" | "finance");
        for (sql, body) in [
            (
                "select credit_note_create($1)",
                json!({"invoice_id": inv_a, "amount": 1, "reason": "probe"}),
            ),
            (
                "select refund_record($1)",
                json!({"payment_id": pay_a, "amount": 1, "reason": "probe"}),
            ),
        ] {
            let mut tx = db.as_user(&who).await;
            let result = sqlx::query_scalar::<_, Value>(sql)
                .bind(&body)
                .fetch_one(&mut *tx)
                .await;
            match (&result, may) {
                (Ok(_), true) => {}
                (Err(e), false) => assert_eq!(code(e), "42501", "{role} {sql}: {e}"),
                (other, _) => panic!("{role} {sql}: {other:?}"),
            }
        }
        if may {
            for (sql, body) in [
                (
                    "select credit_note_create($1)",
                    json!({"invoice_id": inv_b, "amount": 1, "reason": "probe"}),
                ),
                (
                    "select refund_record($1)",
                    json!({"payment_id": pay_b, "amount": 1, "reason": "probe"}),
                ),
            ] {
                let mut tx = db.as_user(&who).await;
                let e = sqlx::query_scalar::<_, Value>(sql)
                    .bind(&body)
                    .fetch_one(&mut *tx)
                    .await
                    .expect_err("a document of tenant B's invoice");
                assert_eq!(code(&e), "P0002", "{role} {sql}: {e}");
            }
        }
    }
    // Every probe was rolled back.
    for (table, tenant, before) in [
        ("refunds", a, refunds),
        ("credit_notes", a, notes),
        ("refunds", b, refunds_b),
        ("credit_notes", b, notes_b),
    ] {
        assert_eq!(rows_of(&db, table, tenant).await, before, "{table}");
    }
}

// --- crm: customers changed and merged ---

/// Who may change and merge a customer: customer_editable (the rule the
/// definer functions customer_update and customer_merge apply) lets each
/// role change exactly the customers the customers update policy lets it
/// update; neither function reaches another tenant's customer, and the
/// merges of another tenant stay invisible.
#[tokio::test]
async fn customer_edit_and_merge_follow_the_update_policy() {
    let db = TestDb::new().await;
    let (a, b) = seeded(&db).await;
    let a_customer: Uuid = sqlx::query_scalar(
        "select customer_id from customers where tenant_id = $1 order by customer_id limit 1",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let b_customer: Uuid = sqlx::query_scalar(
        "select customer_id from customers where tenant_id = $1 order by customer_id limit 1",
    )
    .bind(b)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let mut editable_somewhere = false;
    for role in app_roles(&db).await {
        let who = user_of(&db, a, role).await;
        let mut tx = db.as_user(&who).await;
        let by_rule: Vec<Uuid> = sqlx::query_scalar(
            "select customer_id from customers where customer_editable(customer_id) order by customer_id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        let by_policy: Vec<Uuid> = sqlx::query_scalar(
            "with u as (update customers set city = city returning customer_id)
             select customer_id from u order by customer_id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{role} update customers: {e}"));
        assert_eq!(
            by_rule, by_policy,
            "{role}: customer_editable vs the update policy"
        );
        if role == "director" {
            assert!(by_rule.is_empty(), "directors change no customer");
        }
        editable_somewhere |= !by_rule.is_empty();
        tx.rollback().await.unwrap();

        // Tenant B's customer is not found, whatever the role.
        for (sql, args) in [
            (
                "select customer_update($1, '{\"city\": \"Medan\"}')",
                (b_customer, None),
            ),
            (
                "select customer_merge($1, $2)",
                (a_customer, Some(b_customer)),
            ),
            (
                "select customer_merge($1, $2)",
                (b_customer, Some(a_customer)),
            ),
        ] {
            let mut tx = db.as_user(&who).await;
            let mut q = sqlx::query_scalar::<_, serde_json::Value>(sql).bind(args.0);
            if let Some(second) = args.1 {
                q = q.bind(second);
            }
            let err = q.fetch_one(&mut *tx).await.expect_err(sql);
            assert!(
                ["P0002", "42501"].contains(&code(&err).as_str()),
                "{role} {sql}: {err}"
            );
            if args.0 == b_customer {
                assert_eq!(code(&err), "P0002", "{role} {sql}: {err}");
            }
        }
        let mut tx = db.as_user(&who).await;
        let n: i64 =
            sqlx::query_scalar("select count(*) from customer_merges where tenant_id = $1")
                .bind(b)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(n, 0, "{role} sees tenant B's merges");
        let n: Option<serde_json::Value> = sqlx::query_scalar("select customer_merges_of($1)")
            .bind(b_customer)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(n, None, "{role} reads tenant B's merges");
    }
    assert!(
        editable_somewhere,
        "no role may change any customer: the check is vacuous"
    );
}
// --- end crm ---
