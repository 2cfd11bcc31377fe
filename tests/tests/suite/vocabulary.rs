//! Vocabularies (migration V20): every closed set of terms is one
//! lookup table. The OpenAPI document's enums are the `vocabulary` view, a
//! term added to a table is taken by a BFF started afterwards (so the list
//! is read, not written in the BFF), a term outside the table is refused
//! naming the field, and the foreign keys refuse a bad term written
//! directly.

use std::collections::BTreeMap;

use bizos_tests::{code, spawn_app, TestDb};
use serde_json::{json, Value};

/// The terms of some vocabularies as the BFF lists them: each once, by
/// position (read with SQL, independently of the BFF's code).
async fn terms(db: &TestDb, vocabularies: &[&str]) -> Vec<String> {
    sqlx::query_scalar(
        "select term from vocabulary where vocabulary = any ($1)
          group by term order by min(position), term",
    )
    .bind(vocabularies)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Every schema of the document that names its vocabularies
/// (`x-vocabulary`), by JSON path.
fn vocabulary_schemas(v: &Value, path: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            if map.contains_key("x-vocabulary") {
                out.insert(path.to_owned(), v.clone());
            }
            for (k, item) in map {
                vocabulary_schemas(item, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                vocabulary_schemas(item, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

async fn served_document(app: &bizos_tests::TestApp) -> Value {
    let res = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_documents_enums_are_the_vocabulary_view() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc = served_document(&app).await;

    let mut schemas = BTreeMap::new();
    vocabulary_schemas(&doc, "#", &mut schemas);
    // Not vacuous: the closed sets of the API are there.
    for name in [
        "Channel",
        "LeadStatus",
        "LeadState",
        "InvoiceStatus",
        "NewInvoiceStatus",
        "TicketType",
        "Priority",
        "TicketStatus",
        "PaymentMethod",
        "EntrySource",
        "AppRole",
        "JobKind",
        "JobStatus",
        "LlmFeature",
        "SopRuleKind",
        "SopSeverity",
        "RfmSegment",
        "RfmChannel",
        "Permission",
        "ActivityType",
        "WebhookEventType",
        "WebhookDeliveryStatus",
    ] {
        assert!(
            schemas.contains_key(&format!("#/components/schemas/{name}")),
            "{name} is not a vocabulary schema: {:?}",
            schemas.keys()
        );
    }
    let mut used = Vec::new();
    for (path, schema) in &schemas {
        let names: Vec<&str> = schema["x-vocabulary"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        let want = terms(&db, &names).await;
        assert!(!want.is_empty(), "{path}: no terms of {names:?}");
        assert_eq!(schema["enum"], json!(want), "{path} ({names:?})");
        used.extend(names.into_iter().map(str::to_owned));
    }
    // Every vocabulary of the database is some field's set.
    let all: Vec<String> =
        sqlx::query_scalar("select distinct vocabulary from vocabulary order by 1")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(all.len(), 31, "{all:?}");
    for v in &all {
        assert!(used.contains(v), "{v} is no field's vocabulary");
    }
    // The union of the two ticket status vocabularies reads in lifecycle order.
    assert_eq!(
        doc["components"]["schemas"]["TicketStatus"]["enum"],
        json!([
            "OPEN",
            "IN_PROGRESS",
            "WAITING_CUSTOMER",
            "QUOTED",
            "WON",
            "LOST",
            "RESOLVED",
            "CLOSED",
            "CANCELLED"
        ])
    );
}

#[tokio::test]
async fn a_term_added_to_its_table_is_taken_by_a_bff_started_afterwards() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let before = spawn_app(&db).await;

    sqlx::query(
        "insert into lead_channels (code, position, description)
         values ('carrier_pigeon', 100, 'a bird')",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let after = spawn_app(&db).await;

    let doc = served_document(&after).await;
    let channels = doc["components"]["schemas"]["Channel"]["enum"].clone();
    assert_eq!(
        channels.as_array().unwrap().last(),
        Some(&json!("carrier_pigeon")),
        "{channels}"
    );
    let old_doc = served_document(&before).await;
    assert!(
        !old_doc["components"]["schemas"]["Channel"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("carrier_pigeon")),
        "the vocabulary is read once, at startup"
    );

    let (status, lead) = after
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Merpati Pos"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    let path = format!("/api/leads/{}", lead["lead_id"].as_str().unwrap());

    // The server started before the term existed refuses it itself.
    let (status, body) = before
        .patch_json(&marketing, &path, &json!({"channel": "carrier_pigeon"}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("channel")),
        "{body}"
    );
    // The one started after takes it, with the set's case folding.
    let (status, body) = after
        .patch_json(&marketing, &path, &json!({"channel": " Carrier_Pigeon "}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel"], "carrier_pigeon", "{body}");
    let (status, page) = after
        .get_json(&marketing, "/api/leads?channel=CARRIER_PIGEON")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
    // And the SQL functions read the table too (crm_create_lead_bundle).
    let (status, lead) = after
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "carrier_pigeon", "company_name": "PT Merpati Dua"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
}

#[tokio::test]
async fn a_term_outside_its_table_is_refused_naming_the_field() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let finance = db.create_user(tenant, "finance").await;
    let app = spawn_app(&db).await;
    let channels = terms(&db, &["lead_channels"]).await.join(", ");

    for (who, path, body, field, vocabulary) in [
        (
            &marketing,
            "/api/leads",
            json!({"channel": "pigeon", "company_name": "PT X"}),
            "channel",
            "lead_channels",
        ),
        (
            &marketing,
            "/api/leads",
            json!({"channel": "website", "company_name": "PT X",
                   "rfq": {"dept_target": "OPS", "priority": "someday"}}),
            "rfq.priority",
            "ticket_priorities",
        ),
        (
            &marketing,
            "/api/tickets",
            json!({"ticket_type": "Complaint", "subject": "x", "dept_target": "OPS"}),
            "ticket_type",
            "ticket_types",
        ),
        (
            &marketing,
            "/api/tickets",
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS",
                   "priority": "someday"}),
            "priority",
            "ticket_priorities",
        ),
        (
            &finance,
            "/api/invoices",
            json!({"status": "PENDING"}),
            "status",
            "invoice_statuses",
        ),
        (
            &finance,
            "/api/payments",
            json!({"method": "barter"}),
            "method",
            "payment_methods",
        ),
        (
            &marketing,
            "/api/kpi/entries",
            json!({"source": "GUESSED"}),
            "source",
            "kpi_entry_sources",
        ),
    ] {
        let (status, res) = app.post_json(who, path, &body, None).await;
        let want = format!(
            "{field}: must be one of {}",
            terms(&db, &[vocabulary]).await.join(", ")
        );
        assert_eq!(
            (
                status,
                res["error"]["field"].as_str(),
                res["error"]["message"].as_str()
            ),
            (422, Some(field), Some(want.as_str())),
            "{path} {body}"
        );
    }
    assert!(channels.contains("walk_in"), "{channels}");
    // PATCH bodies and query parameters too.
    for (path, body, field) in [
        (
            format!("/api/tickets/{}", uuid::Uuid::new_v4()),
            json!({"status": "DONE"}),
            "status",
        ),
        (
            format!("/api/leads/{}", uuid::Uuid::new_v4()),
            json!({"status": "WON"}),
            "status",
        ),
    ] {
        let (status, res) = app.patch_json(&marketing, &path, &body).await;
        assert_eq!(
            (status, res["error"]["field"].as_str()),
            (422, Some(field)),
            "{path} {body}: {res}"
        );
    }
    let (status, res) = app
        .get_json(&marketing, "/api/tickets?priority=someday")
        .await;
    assert_eq!(
        (status, res["error"]["field"].as_str()),
        (400, Some("query")),
        "{res}"
    );
}

/// A term the BFF takes but the table no longer has (removed after the BFF
/// read it) is refused by the database (lead_update's vocabulary_check,
/// behind it the foreign key), still 422 naming the field, with the terms
/// the table has now.
#[tokio::test]
async fn a_term_removed_after_the_bff_started_is_refused_by_the_database() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    let (status, lead) = app
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Pasar Raya"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    sqlx::query("delete from lead_channels where code = 'marketplace'")
        .execute(&db.owner)
        .await
        .unwrap();
    let path = format!("/api/leads/{}", lead["lead_id"].as_str().unwrap());
    let (status, body) = app
        .patch_json(&marketing, &path, &json!({"channel": "marketplace"}))
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (422, Some("invalid"), Some("channel")),
        "{body}"
    );
    let now = terms(&db, &["lead_channels"]).await;
    assert!(!now.contains(&"marketplace".to_owned()), "{now:?}");
    assert_eq!(
        body["error"]["message"],
        format!("channel: must be one of {}", now.join(", "))
    );
}

#[tokio::test]
async fn the_foreign_keys_refuse_a_bad_term_written_directly() {
    let db = TestDb::new().await;
    let (tenant, _) = db.seed_demo_tenants().await;
    // An API key with a scope (as a super admin makes one).
    sqlx::raw_sql(&format!(
        "select set_config('request.jwt.claims', json_build_object('tenant_id', '{tenant}'::uuid, 'app_role', 'super_admin',
                'sub', (select user_id from profiles where tenant_id = '{tenant}' and app_role = 'super_admin' limit 1))::text, false);
         select api_key_create('{{\"name\": \"probe\", \"scopes\": [\"leads:read\"]}}', sha256('probe'), 'bz_live_probe000');
         select set_config('request.jwt.claims', '', false);"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A background job (the demo has none).
    sqlx::query("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    // A generation through the LLM gateway's functions (counters, a
    // reservation, the ledger, the cache, a limit), and one left open.
    sqlx::raw_sql(&format!(
        "select llm_limit_set('{tenant}', 'chat', 'tenant', 100, null);
         select llm_finish('{tenant}', (llm_begin('{tenant}', null, 'chat', null, 10, null) ->> 'reservation_id')::uuid,
                           '[{{\"provider\": \"gemini\", \"model\": \"gemini-2.0-flash\", \"key_ref\": \"platform:0\",
                              \"tokens_in\": 5, \"tokens_out\": 5, \"outcome\": \"ok\"}}]',
                           '{{\"cache_key\": \"{key}\", \"model\": \"gemini-2.0-flash\", \"response\": \"hi\"}}');
         select llm_begin('{tenant}', null, 'chat', null, 10, null);",
        key = "ab".repeat(32)
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A knowledge-base document with a chunk (its BM25 statistics come
    // from the triggers).
    sqlx::raw_sql(&format!(
        "with u as (select user_id from profiles where tenant_id = '{tenant}' limit 1),
              o as (insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
                    select '{tenant}', 'knowledge', 'f.txt', 'text/plain', 10, repeat('ab', 32), user_id from u
                    returning object_id, created_by),
              d as (insert into kb_documents (tenant_id, document_id, title, owner_user_id, format, object_id,
                                              status, chunks_done, ready_version, ready_object_id, ready_at)
                    select '{tenant}', object_id, 'F', created_by, 'txt', object_id, 'ready', 1, 1, object_id, now()
                      from o
                    returning document_id, owner_user_id)
         insert into kb_chunks (tenant_id, document_id, version, chunk_no, owner_user_id, visibility, text,
                                token_count, tsv, lex_len, embedding)
         select '{tenant}', document_id, 1, 0, owner_user_id, 'tenant', 'fixture text', 2,
                to_tsvector('simple', 'fixture text'), 2, array_fill(0.1::real, array[384])::bizos.vector
           from d"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // An RFM snapshot with a scored customer and a tenant's template.
    sqlx::raw_sql(&format!(
        "select rfm_compute('{tenant}', null);
         insert into rfm_scores (tenant_id, week, customer_id, recency_days, frequency, monetary, r, f, m, fm, segment)
         select '{tenant}', r.week, c.customer_id, 1, 1, 100, 5, 1, 1, 1, 'new_customers'
           from rfm_runs r, lateral (select customer_id from customers where tenant_id = '{tenant}'
                                      order by customer_id limit 1) c
          where r.tenant_id = '{tenant}'
         on conflict do nothing;
         insert into rfm_content_templates (tenant_id, segment, channel, body, version)
         values ('{tenant}', 'lost', 'whatsapp', 'Hai {{{{segment}}}}', 1);"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A webhook endpoint with a subscription, an event and its delivery.
    sqlx::raw_sql(&format!(
        "with e as (insert into webhook_endpoints (tenant_id, url)
                    values ('{tenant}', 'https://hooks.example.com/v') returning endpoint_id),
              s as (insert into webhook_subscriptions (tenant_id, endpoint_id, event_type)
                    select '{tenant}', endpoint_id, 'lead.created' from e),
              ev as (insert into webhook_events (tenant_id, event_type, subject_id, payload)
                     values ('{tenant}', 'lead.created', gen_random_uuid(),
                             '{{\"type\": \"lead.created\", \"timestamp\": \"t\", \"data\": {{}}}}')
                     returning event_id)
         insert into webhook_deliveries (tenant_id, event_id, endpoint_id)
         select '{tenant}', ev.event_id, e.endpoint_id from ev, e"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A subscription and an operator invoice with a line.
    sqlx::raw_sql(&format!(
        "insert into plans (plan_code, label, monthly_price) values ('vocab', 'Vocab', 1000);
         update tenants set plan_code = 'vocab' where tenant_id = '{tenant}';
         with i as (insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after)
                    select tenant_id, subscription_id, '2026-01-01', '2026-02-01', now()
                      from subscriptions where tenant_id = '{tenant}'
                    returning tenant_id, billing_invoice_id)
         insert into billing_invoice_lines (tenant_id, billing_invoice_id, position, kind, description,
                                            period_start, period_end, quantity, unit, unit_price, amount)
         select tenant_id, billing_invoice_id, 1, 'plan', 'Plan Vocab', '2026-01-01', '2026-02-01', 1, 'month', 1000, 1000
           from i"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A payment of that invoice and a transfer proof of it.
    sqlx::raw_sql(&format!(
        "insert into billing_payments (tenant_id, billing_invoice_id, method, amount, currency, reference,
                                       received_at, recorded_by)
         select tenant_id, billing_invoice_id, 'manual_transfer', 1, 'IDR', 'vocab', now(), 'test'
           from billing_invoices where tenant_id = '{tenant}';
         insert into objects (tenant_id, object_id, bucket, file_name, content_type, size_bytes, sha256)
         values ('{tenant}', '00000000-0000-4000-8000-00000000b001', 'transfer-proofs', 'proof.pdf',
                 'application/pdf', 1, repeat('cd', 32));
         insert into billing_transfer_proofs (tenant_id, billing_invoice_id, object_id)
         select tenant_id, billing_invoice_id, '00000000-0000-4000-8000-00000000b001'
           from billing_invoices where tenant_id = '{tenant}';
         -- A pending invitation.
         insert into invitations (tenant_id, email, full_name, app_role, token_hash, expires_at)
         values ('{tenant}', 'invited@example.test', 'Invited', 'finance', sha256('vocab'::bytea),
                 now() + interval '7 days')"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // Every column that refers to a vocabulary, from the catalogue.
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "select c.conrelid::regclass::text, a.attname::text, c.conname::text,
                c.confrelid::regclass::text
           from pg_constraint c
           join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
          where c.contype = 'f' and c.connamespace = 'public'::regnamespace
            and c.confrelid::regclass::text in (select distinct vocabulary from vocabulary)
          order by 1, 2",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let found: Vec<String> = columns
        .iter()
        .map(|(t, c, _, _)| format!("{t}.{c}"))
        .collect();
    assert_eq!(
        found,
        [
            "api_key_scopes.scope",
            "api_scope_permissions.permission",
            "api_scope_permissions.scope",
            "billing_invoice_lines.kind",
            "billing_invoices.status",
            "billing_payments.method",
            "billing_transfer_proofs.status",
            "email_templates.permission",
            "invitations.app_role",
            "invoices.status",
            "jobs.kind",
            "jobs.status",
            "kb_chunks.visibility",
            "kb_documents.format",
            "kb_documents.status",
            "kb_documents.visibility",
            "kb_stats.visibility",
            "kb_terms.visibility",
            "kpi_entries.source",
            "leads.channel",
            "leads.status",
            "llm_cache.feature",
            "llm_calls.feature",
            "llm_counters.feature",
            "llm_limits.feature",
            "llm_reservations.feature",
            "llm_routes.feature",
            "payments.method",
            "profiles.app_role",
            "refunds.method",
            "rfm_content_templates.channel",
            "rfm_content_templates.segment",
            "rfm_scores.segment",
            "rfm_template_defaults.channel",
            "role_permissions.app_role",
            "role_permissions.permission",
            "sales_activities.activity_type",
            "schedules.kind",
            "sla_policies.priority",
            "sla_policies.ticket_type",
            "sop_rule_kinds.default_severity",
            "sop_rules.kind",
            "sop_rules.severity",
            "subscriptions.billing_interval",
            "subscriptions.status",
            "tickets.inquiry_status",
            "tickets.priority",
            "tickets.ticket_status",
            "tickets.ticket_type",
            "webhook_deliveries.status",
            "webhook_events.event_type",
            "webhook_subscriptions.event_type",
        ]
    );
    for (table, column, constraint, vocabulary) in &columns {
        assert_eq!(constraint, &format!("{table}_{column}_fkey"));
        // A row whose other checks hold whatever this column says.
        let row = match (table.as_str(), column.as_str()) {
            ("tickets", "ticket_type") => "ticket_type <> 'inquiry_tariff'",
            ("kpi_entries", "source") => "source = 'MANUAL'",
            _ => "true",
        };
        // As the owner, with the table's own triggers off (the lifecycle
        // guards refuse unknown statuses first): the key alone refuses.
        let mut tx = db.owner.begin().await.unwrap();
        sqlx::query(&format!("alter table {table} disable trigger user"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let err = sqlx::query(&format!(
            "update {table} set {column} = 'NO_SUCH_TERM'
              where ctid = (select ctid from {table} where {column} is not null and {row} limit 1)"
        ))
        .execute(&mut *tx)
        .await
        .expect_err(&format!(
            "{table}.{column} took a term outside {vocabulary}"
        ));
        assert_eq!(code(&err), "23503", "{table}.{column}: {err}");
        assert_eq!(
            err.as_database_error().and_then(|e| e.constraint()),
            Some(constraint.as_str())
        );
        tx.rollback().await.unwrap();
        // A real term passes the same way (the refusal is the key's).
        let mut tx = db.owner.begin().await.unwrap();
        sqlx::query(&format!("alter table {table} disable trigger user"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let done = sqlx::query(&format!(
            "update {table} set {column} = {column}
              where ctid = (select ctid from {table} where {column} is not null and {row} limit 1)"
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        assert_eq!(
            done.rows_affected(),
            1,
            "{table}.{column} has no row to probe"
        );
        tx.rollback().await.unwrap();
    }
    // vocabulary_check: the house error shape.
    let mut conn = db.owner.acquire().await.unwrap();
    let ok: Option<String> =
        sqlx::query_scalar("select vocabulary_check('ticket_priorities', 'high', 'priority')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(ok.as_deref(), Some("high"));
    let err =
        sqlx::query("select vocabulary_check('ticket_priorities', 'someday', 'rfq.priority')")
            .execute(&mut *conn)
            .await
            .unwrap_err();
    assert_eq!(code(&err), "P0001");
    assert_eq!(bizos_tests::field(&err).as_deref(), Some("rfq.priority"));
    assert_eq!(
        err.as_database_error().unwrap().message(),
        "rfq.priority: must be one of low, normal, high, urgent"
    );
    let err = sqlx::query("select vocabulary_check('no_such_vocabulary', 'x', 'x')")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42704");
    let problem: Option<String> =
        sqlx::query_scalar("select vocabulary_problem('kpi_entry_sources', 'GUESSED')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(problem.as_deref(), Some("must be one of MANUAL, IMPORTED"));
    let problem: Option<String> =
        sqlx::query_scalar("select vocabulary_problem('kpi_entry_sources', 'MANUAL')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(problem, None);
}

/// Subsets of a vocabulary are rules of the database, not lists of the
/// BFF: the BFF takes any term of the vocabulary and the function refuses
/// the ones its rule excludes, still 422 naming the field.
#[tokio::test]
async fn subsets_of_a_vocabulary_are_the_databases_rules() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let finance = db.create_user(tenant, "finance").await;
    let app = spawn_app(&db).await;
    let (status, lead) = app
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Subset Jaya"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");

    // A lead is ASSIGNED only by POST /api/leads/{id}/assign.
    let path = format!("/api/leads/{}", lead["lead_id"].as_str().unwrap());
    let (status, body) = app
        .patch_json(&marketing, &path, &json!({"status": "assigned"}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("status")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/assign"),
        "{body}"
    );

    // A new invoice is DRAFT or ISSUED.
    let invoice = |status: &str| json!({"customer_id": lead["customer_id"], "subtotal": 100, "tax": 11, "status": status});
    let (status, body) = app
        .post_json(&finance, "/api/invoices", &invoice("paid"), None)
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("status")),
        "{body}"
    );
    let (status, body) = app
        .post_json(&finance, "/api/invoices", &invoice("draft"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "DRAFT", "{body}");
}

/// `bizos token --role` takes the app roles of the database.
#[tokio::test]
async fn dev_tokens_take_the_databases_app_roles() {
    let db = TestDb::new().await;
    let demo = db.create_tenant("demo").await;
    db.create_user(demo, "ops").await;
    let args = |role: &str| bizos_bff::cli::TokenArgs {
        tenant: None,
        user: None,
        role: Some(role.into()),
        tenant_slug: "demo".into(),
        ttl_secs: 60,
        secret: bizos_tests::TEST_JWT_SECRET.into(),
        database_url: Some(db.url("bizos_owner")),
    };
    bizos_bff::cli::token(args("ops")).await.unwrap();
    let err = bizos_bff::cli::token(args("janitor")).await.unwrap_err();
    let roles = terms(&db, &["app_roles"]).await.join(", ");
    assert_eq!(err.to_string(), format!("--role: must be one of {roles}"));

    // A role added to the vocabulary is one the command knows (no user has
    // it yet).
    sqlx::query("insert into app_roles (code, position) values ('auditor', 100)")
        .execute(&db.owner)
        .await
        .unwrap();
    let err = bizos_bff::cli::token(args("auditor")).await.unwrap_err();
    assert!(
        err.to_string().contains("no active user with role auditor"),
        "{err}"
    );
}
