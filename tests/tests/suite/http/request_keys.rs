//! A request body lists exactly the keys its SQL function
//! accepts. For every write operation of the served OpenAPI document that
//! takes a body (JSON or a multipart form), the keys of its documented
//! schema (nested objects as `rfq.origin`, lists of objects as
//! `lines[].quantity`) must equal the keys the database accepts:
//!
//! - a function with a `payload jsonb` declares its keys with
//!   payload_check; called with an unknown key it names the ones it
//!   allows, and a nested key called with an unknown key names its own
//!   (the probe of payload_contract.rs), so the set comes from the
//!   database itself;
//! - a function with plain arguments accepts its argument names
//!   (pg_proc.proargnames of its IN arguments).
//!
//! Keys the route fills itself (the path's id, the stored file's object id
//! and metadata, the tenant) are named per route below, and every name
//! there must exist on the SQL side, so the table cannot hide a key. A body
//! no SQL function takes key by key (a prompt for the LLM gateway, a key
//! the BFF seals) is listed with the reason. A body split over several
//! statements (the operator's tenant: a function's arguments, then
//! columns of profiles and of the catalogue) lists each part, and each
//! column must exist. A write operation with a
//! body missing from the table fails the test, as does a key added on one
//! side only.

use std::collections::BTreeSet;

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, spawn_app, TestDb};
use serde_json::{json, Value};

/// The terms of a plan the operator's catalogue routes take (columns of
/// plans).
const PLAN_TERMS: &[(&str, &str)] = &[
    ("label", "label"),
    ("monthly_price", "monthly_price"),
    ("annual_price", "annual_price"),
    ("trial_days", "trial_days"),
    ("included_seats", "included_seats"),
    ("ai_generations_per_day", "ai_generations_per_day"),
    ("ai_tokens_per_month", "ai_tokens_per_month"),
    ("storage_quota_bytes", "storage_quota_bytes"),
    ("features", "features"),
];

/// How a route's body reaches the database.
enum Sql {
    /// `function` (a regprocedure) takes a `payload jsonb` checked with
    /// payload_check.
    Payload(&'static str),
    /// `function` takes plain arguments, named like the body's keys
    /// (`renames`: body key → argument).
    Args(&'static str, &'static [(&'static str, &'static str)]),
    /// No SQL function takes the body key by key (why).
    Unmapped(&'static str),
    /// The body goes to several statements: every argument of each
    /// function, and columns of tables (body key → column, each column
    /// must exist); the body's keys are exactly their union.
    Parts(&'static [Part]),
}

/// Where a part of a body goes.
enum Part {
    /// Every argument of the function (renames: body key → argument).
    Args(&'static str, &'static [(&'static str, &'static str)]),
    /// These columns of the table (body key → column).
    Columns(&'static str, &'static [(&'static str, &'static str)]),
}

struct Route {
    method: &'static str,
    path: &'static str,
    sql: Sql,
    /// SQL keys the route fills itself (not in the body).
    filled: &'static [&'static str],
    /// The SQL key the form's `file` becomes (multipart forms). `object`:
    /// the upload's object_create payload, which the function registers
    /// itself (object_of_upload); its `object_id` alternative, a file
    /// registered before, is for SQL callers.
    file: Option<&'static str>,
}

const fn r(
    method: &'static str,
    path: &'static str,
    sql: Sql,
    filled: &'static [&'static str],
    file: Option<&'static str>,
) -> Route {
    Route {
        method,
        path,
        sql,
        filled,
        file,
    }
}

/// The metadata of a stored file that the upload fills in.
const FILE_FACTS: &[&str] = &["file_name", "content_type", "size_bytes", "sha256"];

fn routes() -> Vec<Route> {
    use Sql::*;
    vec![
        r("post", "/api/leads", Payload("crm_create_lead_bundle(jsonb)"), &[], None),
        r("patch", "/api/leads/{id}", Payload("lead_update(uuid,jsonb)"), &[], None),
        r(
            "post",
            "/api/leads/{id}/assign",
            Args("crm_assign_lead(uuid,uuid)", &[("salesperson_user_id", "salesperson")]),
            &["lead_id"],
            None,
        ),
        r("post", "/api/tickets", Payload("ticket_create(jsonb)"), &[], None),
        r("patch", "/api/tickets/{id}", Payload("ticket_update(uuid,jsonb)"), &[], None),
        r(
            "post",
            "/api/tickets/{id}/messages",
            Args("ticket_add_message(uuid,text,boolean)", &[]),
            &["ticket_id"],
            None,
        ),
        r(
            "post",
            "/api/tickets/{id}/attachments",
            Args("ticket_attachment_add(uuid,uuid)", &[]),
            &["ticket_id"],
            Some("object_id"),
        ),
        r("post", "/api/kpi/targets", Payload("kpi_target_create(jsonb)"), &[], None),
        r("post", "/api/kpi/entries", Payload("kpi_entry_create(jsonb)"), &[], None),
        r(
            "post",
            "/api/kpi/evidence",
            Args("kpi_evidence_add(uuid,uuid)", &[]),
            &[],
            Some("object_id"),
        ),
        r(
            "post",
            "/api/kpi/import",
            Payload("import_create(jsonb)"),
            &["module", "file_name", "columns"],
            Some("object"),
        ),
        r(
            "post",
            "/api/imports",
            Payload("import_create(jsonb)"),
            &["file_name", "columns"],
            Some("object"),
        ),
        r("post", "/api/invoices", Payload("invoice_create(jsonb)"), &[], None),
        r("post", "/api/payments", Payload("payment_record(jsonb)"), &[], None),
        r(
            "post",
            "/api/objects",
            Payload("object_create(jsonb)"),
            FILE_FACTS,
            Some("object_id"),
        ),
        r(
            "post",
            "/api/precheck/invoice",
            Payload("precheck_invoice(jsonb)"),
            &[],
            None,
        ),
        r("post", "/api/sop/rules", Payload("sop_rule_create(jsonb)"), &[], None),
        r(
            "patch",
            "/api/sop/rules/{id}",
            Payload("sop_rule_update(uuid,jsonb)"),
            &[],
            None,
        ),
        r("post", "/api/rfm/runs", Payload("rfm_run_request(jsonb)"), &[], None),
        r("put", "/api/rfm/settings", Payload("rfm_settings_set(jsonb)"), &[], None),
        r(
            "put",
            "/api/rfm/templates/{segment}/{channel}",
            Payload("rfm_template_set(text,text,jsonb)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/rfm/segments/{segment}/content",
            Args("rfm_content_prompt(text,text,date)", &[]),
            &["segment"],
            None,
        ),
        r(
            "post",
            "/api/kb/documents",
            Payload("kb_document_register(jsonb)"),
            &[],
            Some("object"),
        ),
        r(
            "post",
            "/api/kb/documents/{id}/versions",
            Payload("kb_document_replace(uuid,jsonb)"),
            &[],
            Some("object"),
        ),
        r(
            "patch",
            "/api/kb/documents/{id}",
            Payload("kb_document_update(uuid,jsonb)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/kb/search",
            Args(
                "kb_search(text,bizos.vector,integer,double precision,double precision,integer,integer)",
                &[],
            ),
            // The BFF embeds the query; the fusion's tuning keeps its defaults.
            &["query_embedding", "lexical_weight", "vector_weight", "rrf_k", "candidates"],
            None,
        ),
        r(
            "post",
            "/api/kb/ask",
            Unmapped("the question is retrieved with kb_search and answered through the LLM gateway"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/ai/chat",
            Unmapped("the messages go to the LLM gateway, not to a SQL function"),
            &[],
            None,
        ),
        r(
            "put",
            "/api/ai/limits",
            Args("llm_limit_set(uuid,text,text,integer,bigint)", &[]),
            // The caller's tenant; this route sets the per-user limit.
            &["tenant_id", "scope"],
            None,
        ),
        r(
            "post",
            "/api/ai/keys",
            Unmapped("the BFF seals the key before llm_key_add stores its ciphertext"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/prospects/{id}/stage",
            Payload("prospect_move(uuid,jsonb)"),
            &[],
            None,
        ),
        r("post", "/api/activities", Payload("sales_activity_create(jsonb)"), &[], None),
        r(
            "post",
            "/api/visits",
            Payload("sales_activity_create(jsonb)"),
            &["activity_type"],
            Some("photo_object_id"),
        ),
        r("post", "/api/users", Payload("user_invite(jsonb)"), &[], None),
        r("patch", "/api/users/{id}", Payload("user_update(uuid,jsonb)"), &[], None),
        r(
            "post",
            "/api/roles/{role}/permissions",
            Args(
                "role_permission_grant(text,text)",
                &[("permission", "permission_code")],
            ),
            // The role comes from the path.
            &["role_code"],
            None,
        ),
        r(
            "post",
            "/api/usage-events",
            Unmapped(
                "usage_ingest(events jsonb) checks each event's keys itself (events[0].x: unknown \
                 field, tests/tests/suite/usage.rs), since an event's properties are the \
                 integration's own names",
            ),
            &[],
            None,
        ),
        r(
            "post",
            "/api/webhooks/endpoints",
            Payload("webhook_endpoint_create(jsonb,uuid,uuid,bytea,bytea,bytea,bytea,text)"),
            // The BFF makes and seals the signing secret.
            &[],
            None,
        ),
        r(
            "patch",
            "/api/webhooks/endpoints/{id}",
            Payload("webhook_endpoint_update(uuid,jsonb)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/webhooks/endpoints/{id}/secret/rotate",
            Payload("webhook_secret_rotate(uuid,jsonb,uuid,bytea,bytea,bytea,bytea,text)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/webhooks/endpoints/{id}/replay",
            Payload("webhook_endpoint_replay(uuid,jsonb)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/api-keys",
            Payload("api_key_create(jsonb,bytea,text)"),
            // The BFF makes the secret and passes its hash and prefix.
            &[],
            None,
        ),
        r(
            "post",
            "/api/customers/{id}/documents",
            Args("customer_document_add(uuid,uuid)", &[]),
            &["customer_id"],
            Some("object_id"),
        ),
        r("post", "/api/refunds", Payload("refund_record(jsonb)"), &[], None),
        r("post", "/api/credit-notes", Payload("credit_note_create(jsonb)"), &[], None),
        r("post", "/api/digest", Payload("digest_request(jsonb)"), &[], None),
        r("patch", "/api/customers/{id}", Payload("customer_update(uuid,jsonb)"), &[], None),
        r(
            "post",
            "/api/customers/{id}/merge",
            Args("customer_merge(uuid,uuid)", &[]),
            &["customer_id"],
            None,
        ),
        r("post", "/api/marketing/spend", Payload("marketing_spend_create(jsonb)"), &[], None),
        r("post", "/api/marketing/events", Payload("marketing_event_create(jsonb)"), &[], None),
        // The operator's lifecycle (placement::lifecycle): the tenant
        // and its first administrator in the placement, then the
        // catalogue's row.
        r(
            "post",
            "/api/operator/tenants",
            Parts(&[
                Part::Args("tenant_create(text,text,text,text)", &[]),
                Part::Columns(
                    "profiles",
                    &[("admin_email", "email"), ("admin_name", "full_name"), ("admin_user_id", "user_id")],
                ),
                Part::Columns("control.tenant_placements", &[("region", "region"), ("tier", "tier")]),
            ]),
            &[],
            None,
        ),
        r(
            "post",
            "/api/operator/clusters",
            Parts(&[Part::Columns(
                "control.clusters",
                &[
                    ("cluster", "cluster"),
                    ("region", "region"),
                    ("url_secret", "url_secret"),
                    ("default", "is_default"),
                    ("home", "home"),
                ],
            )]),
            &[],
            None,
        ),
        // Sign-up: the BFF adds the client address, the links' page and
        // the limits; it hashes the password (argon2id) and passes the
        // subject of a bearer token of an identity provider.
        r(
            "post",
            "/api/signup",
            Args("signup_request(text,text,text,inet,text,text,interval,integer,integer)", &[]),
            &["client_addr", "link_base", "plan", "ttl", "per_address", "per_email"],
            None,
        ),
        r(
            "post",
            "/api/signup/verify",
            Args("signup_verify(text,uuid,text,text)", &[("password", "password_hash")]),
            &["identity_id", "plan"],
            None,
        ),
        r(
            "post",
            "/api/login",
            Unmapped("the BFF checks the password against the argon2id hash login_lookup(email) returns and mints the token"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/invitations",
            Payload("invitation_create(jsonb,text,interval)"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/invitations/accept",
            Args("invitation_accept(text,uuid,text)", &[("password", "password_hash")]),
            &["identity_id"],
            None,
        ),
        r("patch", "/api/organisation", Payload("organisation_update(jsonb)"), &[], None),
        // Payments: the provider's own signed document, verified by the
        // BFF and handed over raw with its normalised event; a transfer
        // proof of the path's invoice; the operator's decisions on the
        // path's proof, by the operator.
        r(
            "post",
            "/api/payments/stripe",
            Unmapped("Stripe's signed Event: payment_delivery_receive takes the raw bytes and the event events.rs reads"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/payments/midtrans",
            Unmapped("Midtrans's signed notification: payment_delivery_receive takes the raw bytes and the event events.rs reads"),
            &[],
            None,
        ),
        r(
            "post",
            "/api/billing/invoices/{id}/transfer-proofs",
            Args("billing_transfer_proof_add(uuid,uuid)", &[]),
            &["billing_invoice_id"],
            Some("object_id"),
        ),
        r(
            "post",
            "/api/operator/payments/transfer-proofs/{id}/approve",
            Args("billing_transfer_proof_approve(uuid,numeric,text)", &[]),
            &["proof_id", "decided_by"],
            None,
        ),
        r(
            "post",
            "/api/operator/payments/transfer-proofs/{id}/reject",
            Args("billing_transfer_proof_reject(uuid,text,text)", &[]),
            &["proof_id", "decided_by"],
            None,
        ),
        // A tier move: the tenant is the path's.
        r(
            "post",
            "/api/operator/tenants/{id}/move",
            Args("tenant_move_request(uuid,text,text,text,text)", &[]),
            &["tenant"],
            None,
        ),
        // Billing: the operator's plan change (the time zone of a tenant
        // placed elsewhere read from its placement), interval and void.
        r(
            "post",
            "/api/operator/billing/tenants/{id}/plan",
            Args("billing_change_plan(uuid,text,text)", &[("plan_code", "p_plan_code")]),
            &["p_tenant_id", "p_time_zone"],
            None,
        ),
        r(
            "post",
            "/api/operator/billing/tenants/{id}/interval",
            Args("billing_set_interval(uuid,text)", &[("billing_interval", "p_interval")]),
            &["p_tenant_id"],
            None,
        ),
        r(
            "post",
            "/api/operator/billing/invoices/{id}/void",
            Args("billing_void(uuid,uuid,text)", &[("reason", "p_reason")]),
            &["p_tenant_id", "p_invoice_id"],
            None,
        ),
        // The operator's plan catalogue: plan_create, plan_update and
        // plan_metric_set are the owner's alone (no request role may call
        // them, so they cannot be probed as a user); their keys are the
        // columns of plans and plan_metrics they write.
        r("post", "/api/operator/billing/plans", Parts(&[Part::Columns("plans", PLAN_TERMS), Part::Columns("plans", &[("plan_code", "plan_code")])]), &[], None),
        r("patch", "/api/operator/billing/plans/{code}", Parts(&[Part::Columns("plans", PLAN_TERMS)]), &[], None),
        r(
            "put",
            "/api/operator/billing/plans/{code}/metrics/{metric}",
            Parts(&[Part::Columns("plan_metrics", &[("included", "included"), ("unit_price", "unit_price")])]),
            &[],
            None,
        ),
    ]
}

/// The (SQLSTATE, COLUMN, message) of calling `call` with `payload`, or
/// None when it succeeded (rolled back either way).
async fn probe(
    db: &TestDb,
    who: &Caller,
    call: &str,
    payload: &Value,
) -> Option<(String, String, String)> {
    let mut tx = db.as_user(who).await;
    let res = sqlx::query_scalar::<_, Value>(call)
        .bind(payload)
        .fetch_one(&mut *tx)
        .await;
    tx.rollback().await.ok();
    res.err().map(|e| {
        (
            code(&e),
            field(&e).unwrap_or_default(),
            e.as_database_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_default(),
        )
    })
}

/// The keys an "unknown field (allowed: a, b)" message lists.
fn allowed(message: &str) -> Option<Vec<String>> {
    let start = message.find("(allowed: ")? + "(allowed: ".len();
    let end = message.rfind(')')?;
    Some(message[start..end].split(", ").map(str::to_owned).collect())
}

/// A payload with `value` at `path` (`a.b`, `lines[].x`: one element).
fn at(path: &str, value: Value) -> Value {
    let mut parts: Vec<&str> = path.split('.').collect();
    let mut v = value;
    while let Some(part) = parts.pop() {
        v = match part.strip_suffix("[]") {
            Some(list) => json!({ list: [v] }),
            None => json!({ part: v }),
        };
    }
    v
}

/// `lines[0].x` → `lines[].x`.
fn normal(key: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in key.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[]");
            }
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

/// Every key a payload function accepts, nested ones by their path, read
/// from its own refusals.
async fn payload_keys(db: &TestDb, who: &Caller, signature: &str) -> BTreeSet<String> {
    let (name, call) = call_of(db, signature).await;
    let got = probe(db, who, &call, &json!({"zz_unknown": 1})).await;
    let (state, column, message) =
        got.unwrap_or_else(|| panic!("{name}: an unknown key was accepted"));
    assert_eq!(
        (state.as_str(), column.as_str()),
        ("P0001", "zz_unknown"),
        "{name}: {message}"
    );
    let mut todo = allowed(&message).unwrap_or_else(|| panic!("{name}: {message}"));
    let mut keys = BTreeSet::new();
    while let Some(key) = todo.pop() {
        let key = normal(&key);
        let mut nested = false;
        for (probe_at, shape) in [(key.clone(), "object"), (format!("{key}[]"), "list")] {
            let Some((_, column, message)) =
                probe(db, who, &call, &at(&probe_at, json!({"zz": 1}))).await
            else {
                continue;
            };
            if normal(&column) == format!("{probe_at}.zz") {
                let inner = allowed(&message)
                    .unwrap_or_else(|| panic!("{name}: {key} as a {shape}: {message}"));
                todo.extend(inner);
                nested = true;
            }
        }
        if !nested {
            keys.insert(key);
        }
    }
    keys
}

/// The function's name and a call of it with $1 as its payload (uuid
/// arguments a fresh id, others null), as payload_contract.rs calls them.
async fn call_of(db: &TestDb, signature: &str) -> (String, String) {
    let (name, types, names): (String, Vec<String>, Vec<String>) = sqlx::query_as(
        "select p.proname::text,
                array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t),
                p.proargnames::text[]
           from pg_proc p where p.oid = $1::regprocedure",
    )
    .bind(signature)
    .fetch_one(&db.owner)
    .await
    .unwrap_or_else(|e| panic!("{signature}: {e}"));
    let args: Vec<String> = types
        .iter()
        .zip(&names)
        .map(|(t, n)| match (n.as_str(), t.as_str()) {
            ("payload", "jsonb") => "$1".to_owned(),
            (_, "uuid") => "gen_random_uuid()".to_owned(),
            (_, t) => format!("null::{t}"),
        })
        .collect();
    assert!(
        args.iter().any(|a| a == "$1"),
        "{signature} has no payload jsonb"
    );
    let call = format!("select {name}({})", args.join(", "));
    (name, call)
}

/// The IN arguments of a function.
async fn argument_names(db: &TestDb, signature: &str) -> BTreeSet<String> {
    let names: Vec<String> = sqlx::query_scalar(
        "select a.name from pg_proc p,
                unnest(p.proargnames[1:p.pronargs]) a (name)
          where p.oid = $1::regprocedure",
    )
    .bind(signature)
    .fetch_all(&db.owner)
    .await
    .unwrap_or_else(|e| panic!("{signature}: {e}"));
    assert!(!names.is_empty(), "{signature}: no argument names");
    names.into_iter().collect()
}

/// The body keys a body of `parts` holds: each function's arguments (by
/// their body names) and the listed columns, each checked to exist.
async fn parts_keys(db: &TestDb, parts: &[Part]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for part in parts {
        match part {
            Part::Args(signature, renames) => {
                for arg in argument_names(db, signature).await {
                    let key = renames
                        .iter()
                        .find(|(_, to)| *to == arg)
                        .map_or(arg.clone(), |(from, _)| (*from).to_owned());
                    keys.insert(key);
                }
            }
            Part::Columns(table, columns) => {
                for (key, column) in *columns {
                    let exists: bool = sqlx::query_scalar(
                        "select exists (select 1 from pg_attribute
                                         where attrelid = $1::regclass and attname = $2
                                           and attnum > 0 and not attisdropped)",
                    )
                    .bind(table)
                    .bind(column)
                    .fetch_one(&db.owner)
                    .await
                    .unwrap_or_else(|e| panic!("{table}: {e}"));
                    assert!(exists, "{table} has no column {column} (body key {key})");
                    keys.insert((*key).to_owned());
                }
            }
        }
    }
    keys
}

/// The keys of a request schema: properties, nested objects as `a.b`,
/// lists of objects as `a[].b`.
fn schema_keys(doc: &Value, schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = resolve(doc, schema);
    let Some(props) = object_properties(doc, &schema) else {
        return;
    };
    for (key, sub) in props {
        let path = format!("{prefix}{key}");
        let sub = resolve(doc, &sub);
        if let Some(object) = object_of(doc, &sub) {
            schema_keys(doc, &object, &format!("{path}."), out);
        } else if let Some(items) = list_items(doc, &sub) {
            schema_keys(doc, &items, &format!("{path}[]."), out);
        } else {
            out.insert(path);
        }
    }
}

fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            doc,
            &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        ),
        None => schema.clone(),
    }
}

/// The alternatives of a schema (itself, or its oneOf/anyOf/allOf members).
fn alternatives(doc: &Value, schema: &Value) -> Vec<Value> {
    let mut all = vec![resolve(doc, schema)];
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            all.push(resolve(doc, s));
        }
    }
    all
}

fn object_properties(doc: &Value, schema: &Value) -> Option<Vec<(String, Value)>> {
    alternatives(doc, schema).into_iter().find_map(|s| {
        s["properties"]
            .as_object()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    })
}

fn object_of(doc: &Value, schema: &Value) -> Option<Value> {
    alternatives(doc, schema)
        .into_iter()
        .find(|s| s["properties"].is_object())
}

fn list_items(doc: &Value, schema: &Value) -> Option<Value> {
    alternatives(doc, schema)
        .into_iter()
        .filter_map(|s| s.get("items").cloned())
        .map(|items| resolve(doc, &items))
        .find(|items| object_of(doc, items).is_some())
}

#[tokio::test]
async fn every_request_body_lists_exactly_the_keys_its_sql_function_accepts() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let app = spawn_app(&db).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // The write operations of the document that take a body.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["requestBody"].is_object() {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let table = routes();
    let listed: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    assert_eq!(
        documented.difference(&listed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "write routes with a body missing from the table (say how their keys reach the database)"
    );
    assert_eq!(
        listed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes in the table that the document does not list with a body"
    );

    let mut failures = Vec::new();
    let mut compared = 0;
    let mut every_key = BTreeSet::new();
    for route in &table {
        let body = &doc["paths"][route.path][route.method]["requestBody"]["content"];
        let (media, schema) = body
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(m, c)| (m.clone(), c["schema"].clone()))
            .unwrap_or_else(|| panic!("{} {}: no body schema", route.method, route.path));
        let mut api = BTreeSet::new();
        schema_keys(&doc, &schema, "", &mut api);
        assert!(
            !api.is_empty(),
            "{} {}: a body without keys",
            route.method,
            route.path
        );
        let (mut sql, renames): (BTreeSet<String>, &[(&str, &str)]) = match &route.sql {
            Sql::Payload(signature) => (payload_keys(&db, &admin, signature).await, &[]),
            Sql::Args(signature, renames) => (argument_names(&db, signature).await, renames),
            Sql::Unmapped(why) => {
                assert!(!why.is_empty());
                continue;
            }
            Sql::Parts(parts) => {
                let keys = parts_keys(&db, parts).await;
                every_key.extend(keys.iter().cloned());
                if api != keys {
                    failures.push(format!(
                        "{} {}: the document lists {api:?} but the statements take {keys:?}",
                        route.method, route.path
                    ));
                }
                compared += 1;
                continue;
            }
        };
        if route.file == Some("object") {
            assert!(sql.remove("object_id"), "{}: object_id", route.path);
        }
        // The body's keys as the SQL side names them.
        let mut sent: BTreeSet<String> = api
            .iter()
            .flat_map(|k| {
                if media.starts_with("multipart/") && k == "file" {
                    match route.file {
                        Some("object") => ["object_id", "bucket"]
                            .iter()
                            .chain(FILE_FACTS)
                            .map(|f| format!("object.{f}"))
                            .collect(),
                        Some(key) => vec![key.to_owned()],
                        None => panic!("{}: a file without its SQL key", route.path),
                    }
                } else {
                    vec![k.clone()]
                }
            })
            .map(|k| {
                renames
                    .iter()
                    .find(|(from, _)| *from == k)
                    .map_or_else(|| k.clone(), |(_, to)| (*to).to_owned())
            })
            .collect();
        for filled in route.filled {
            assert!(
                sql.contains(*filled),
                "{} {}: the route fills {filled}, which the SQL side does not take ({sql:?})",
                route.method,
                route.path
            );
            sent.insert((*filled).to_owned());
        }
        every_key.extend(sql.iter().cloned());
        if sent != sql {
            failures.push(format!(
                "{} {}: the document lists {:?} but the database takes {:?} \
                 (only in the document: {:?}; only in the database: {:?})",
                route.method,
                route.path,
                api,
                sql,
                sent.difference(&sql).collect::<Vec<_>>(),
                sql.difference(&sent).collect::<Vec<_>>()
            ));
        }
        compared += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 30, "{compared} routes compared");
    // Nested keys are compared as such, on both sides.
    for nested in ["rfq.origin", "lines[].quantity", "evidence"] {
        assert!(every_key.contains(nested), "{nested} in {every_key:?}");
    }
}
