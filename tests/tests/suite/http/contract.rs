//! The HTTP contract: the OpenAPI document against the running server.
//!
//! - every operation of the document is called with real data, and every
//!   response (successes and errors) must have a documented status and
//!   validate against the documented schema (JSON Schema 2020-12, the
//!   dialect of OpenAPI 3.1), so a drift between the database's jsonb and
//!   the documented types fails here;
//! - the document lists exactly the routes served, and its schemas are
//!   typed (no bare objects, enums and length limits on requests);
//! - request bodies are strict: wrong types, unknown keys, malformed JSON,
//!   NUL characters, too-long strings and values outside a closed set are
//!   refused with the JSON path of the problem in `field`, and nothing is
//!   written.

use std::collections::{BTreeMap, BTreeSet};

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, spawn_app_with, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// What a request carries.
enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Form(Vec<(&'static str, String)>, &'static str, Vec<u8>),
}

struct Contract {
    doc: Value,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// (method, path template) → statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
    failures: Vec<String>,
}

impl Contract {
    fn new(doc: Value) -> Contract {
        Contract {
            doc,
            validators: BTreeMap::new(),
            seen: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, _) in item.as_object().unwrap() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    ops.push((method.clone(), path.clone()));
                }
            }
        }
        ops
    }

    /// Calls `path` (an instance of `template`) as `who` and checks the
    /// response against the document. Returns the status and JSON body.
    async fn call(
        &mut self,
        app: &TestApp,
        who: Option<&Caller>,
        method: Method,
        template: &str,
        path: &str,
        body: Body,
    ) -> (u16, Value) {
        let mut req = app.http.request(method.clone(), app.url(path));
        if let Some(who) = who {
            req = req.bearer_auth(app.token(who));
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => req.header("content-type", ct).body(bytes),
            Body::Form(fields, file_name, bytes) => {
                let mut form = reqwest::multipart::Form::new();
                for (k, v) in fields {
                    form = form.text(k, v);
                }
                form = form.part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes).file_name(file_name),
                );
                req.multipart(form)
            }
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.bytes().await.expect("body");
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let method = method.as_str().to_lowercase();
        self.check(&method, template, status, &content_type, &json);
        (status, json)
    }

    fn check(
        &mut self,
        method: &str,
        template: &str,
        status: u16,
        content_type: &str,
        body: &Value,
    ) {
        let key = (method.to_owned(), template.to_owned());
        self.seen.entry(key.clone()).or_default().insert(status);
        let op = &self.doc["paths"][template][method];
        if !op.is_object() {
            self.failures
                .push(format!("{method} {template}: not in the document"));
            return;
        }
        let response = &op["responses"][status.to_string()];
        if !response.is_object() {
            self.failures.push(format!(
                "{method} {template}: status {status} is not documented ({body})"
            ));
            return;
        }
        let Some(schema) = response["content"]["application/json"]["schema"]
            .as_object()
            .cloned()
        else {
            // A documented non-JSON response (a file download).
            if content_type.starts_with("application/json") {
                self.failures.push(format!(
                    "{method} {template} {status}: JSON sent where the document says otherwise"
                ));
            }
            return;
        };
        if !content_type.starts_with("application/json") {
            self.failures.push(format!(
                "{method} {template} {status}: content-type {content_type}, documented JSON"
            ));
            return;
        }
        let id = format!("{method} {template} {status}");
        if !self.validators.contains_key(&id) {
            let mut schema = Value::Object(schema);
            schema["components"] = self.doc["components"].clone();
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{id}: the documented schema does not compile: {e}"));
            self.validators.insert(id.clone(), validator);
        }
        let errors: Vec<String> = self.validators[&id]
            .iter_errors(body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if !errors.is_empty() {
            self.failures.push(format!(
                "{id}: the response does not match the document:\n  {}\n  body: {body}",
                errors.join("\n  ")
            ));
        }
    }

    /// Fails on any mismatch seen, and on any operation never answered
    /// with a success, but those `unsupported` here (the test checks
    /// their 501 where it calls them).
    fn finish(self, unsupported: &[(&str, &str)]) {
        let mut failures = self.failures.clone();
        for (method, path) in self.operations() {
            let statuses = self.seen.get(&(method.clone(), path.clone()));
            if unsupported.contains(&(method.as_str(), path.as_str())) {
                continue;
            }
            if !statuses.is_some_and(|s| s.iter().any(|c| (200..300).contains(c))) {
                failures.push(format!(
                    "{method} {path}: never called successfully by this test"
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The staged import of [`every_response_matches_the_document_on`]
/// processed and read with its one bad row.
async fn imported(c: &mut Contract, app: &TestApp, o: &Org, staged: &Value) {
    use Method as M;
    let import = s(staged, "import_id");
    let (status, _) = c
        .call(
            app,
            Some(&o.marketing),
            M::POST,
            "/api/imports/{id}/process",
            &format!("/api/imports/{import}/process"),
            Body::None,
        )
        .await;
    assert!(status == 200 || status == 202);
    let (status, state) = c
        .call(
            app,
            Some(&o.marketing),
            M::GET,
            "/api/imports/{id}",
            &format!("/api/imports/{import}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(state["errors"].as_array().map(Vec::len), Some(1), "{state}");
}

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

async fn document(app: &TestApp) -> Value {
    app.http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

struct Org {
    marketing: Caller,
    manager: Caller,
    alice: Caller,
    ops: Caller,
    finance: Caller,
}

async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    let finance = db.create_user(tenant, "finance").await;
    db.set_manager(&alice, &manager).await;
    Org {
        marketing,
        manager,
        alice,
        ops,
        finance,
    }
}

#[tokio::test]
async fn every_response_matches_the_document() {
    every_response_matches_the_document_on(TestDb::new().await).await;
}

/// The same on Citus (issue 18): every route of the BFF, with the same
/// data, on a database of the tests' cluster.
#[tokio::test]
async fn every_response_matches_the_document_on_citus() {
    every_response_matches_the_document_on(TestDb::on_citus().await).await;
}

async fn every_response_matches_the_document_on(db: TestDb) {
    let o = org(&db).await;
    // A master key, so that tenants may add keys of their own (no provider
    // keys: chat answers with its fallback).
    let app = spawn_app_with(
        &db,
        &[(
            "BIZOS_LLM_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    )
    .await;
    let doc = document(&app).await;
    let mut c = Contract::new(doc);
    use Method as M;

    // Meta and me.
    c.call(&app, None, M::GET, "/healthz", "/healthz", Body::None)
        .await;
    c.call(&app, None, M::GET, "/readyz", "/readyz", Body::None)
        .await;
    c.call(
        &app,
        None,
        M::GET,
        "/openapi.json",
        "/openapi.json",
        Body::None,
    )
    .await;
    c.call(
        &app,
        None,
        M::GET,
        "/api/v1/openapi.json",
        "/api/v1/openapi.json",
        Body::None,
    )
    .await;
    c.call(
        &app,
        Some(&o.alice),
        M::GET,
        "/api/me",
        "/api/me",
        Body::None,
    )
    .await;
    c.call(&app, None, M::GET, "/api/me", "/api/me", Body::None)
        .await;

    // Leads: a bundle with an RFQ, a duplicate (matched), list, read, change, assign.
    let lead_body = json!({"channel": "website", "company_name": "PT Kontrak Jaya",
        "npwp": "01.234.567.8-901.000", "contact_name": "Budi",
        "contact_email": "budi@kontrak.co.id", "contact_phone": "0812-1111-2222",
        "rfq": {"origin": "Jakarta", "destination": "Surabaya", "commodity": "Kopi",
                "weight_kg": 1200.5, "dept_target": "OPS"}});
    let (status, lead) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/leads",
            "/api/leads",
            Body::Json(lead_body.clone()),
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    let lead_id = s(&lead, "lead_id");
    let rfq_ticket = s(&lead, "ticket_id");
    let (status, again) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/leads",
            "/api/leads",
            Body::Json(
                json!({"channel": "referral", "company_name": "PT Kontrak Jaya Abadi",
                                "npwp": "01.234.567.8-901.000"}),
            ),
        )
        .await;
    assert_eq!(
        (status, again["matched_on"].as_str()),
        (201, Some("npwp")),
        "{again}"
    );
    let (status, list) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/leads",
            "/api/leads?limit=1",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{list}"
    );
    assert!(list["next_cursor"].is_string(), "{list}");
    let item = format!("/api/leads/{lead_id}");
    let (status, detail) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/leads/{id}",
            &item,
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(detail["customer"].is_object(), "{detail}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/leads/{id}/assign",
            &format!("{item}/assign"),
            Body::Json(json!({"salesperson_user_id": o.alice.user_id})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, changed) = c
        .call(
            &app,
            Some(&o.alice),
            M::PATCH,
            "/api/leads/{id}",
            &item,
            Body::Json(json!({"status": "contacted", "city": "Bekasi"})),
        )
        .await;
    assert_eq!(
        (status, changed["city"].as_str()),
        (200, Some("Bekasi")),
        "{changed}"
    );
    // Errors: no token, not found, a bad path, bad query, bad bodies.
    c.call(&app, None, M::GET, "/api/leads", "/api/leads", Body::None)
        .await;
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/leads/{id}",
            &format!("/api/leads/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/leads/{id}",
            "/api/leads/not-a-uuid",
            Body::None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/leads",
            "/api/leads?limit=0",
            Body::None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/leads",
            "/api/leads?channel=pigeon",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("query")),
        "{body}"
    );
    for (body, want) in [
        (
            Body::Raw("application/json", b"{\"channel\": ".to_vec()),
            400,
        ),
        (Body::Raw("text/plain", b"{}".to_vec()), 415),
        (
            Body::Json(json!({"channel": "website", "company_name": "PT X", "colour": 1})),
            422,
        ),
        (
            Body::Raw("application/json", vec![b' '; 3 * 1024 * 1024]),
            413,
        ),
    ] {
        let (status, body) = c
            .call(
                &app,
                Some(&o.marketing),
                M::POST,
                "/api/leads",
                "/api/leads",
                body,
            )
            .await;
        assert_eq!(status, want, "{body}");
    }
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::PATCH,
            "/api/leads/{id}",
            &item,
            Body::Json(json!({"city": "Bogor"})),
        )
        .await;
    assert!(status == 403 || status == 404, "{status}");

    // Tickets.
    let (status, t) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/tickets",
            "/api/tickets",
            Body::Json(
                json!({"ticket_type": "general_request", "subject": "Dokumen",
                                "dept_target": "OPS", "priority": "HIGH"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let ticket = s(&t, "ticket_id");
    let titem = format!("/api/tickets/{ticket}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/tickets",
            "/api/tickets",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, masked) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/tickets/{id}",
            &format!("/api/tickets/{rfq_ticket}"),
            Body::None,
        )
        .await;
    assert_eq!(
        (status, masked["company_name"].as_str()),
        (200, Some("MASKED")),
        "{masked}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::POST,
            "/api/tickets/{id}/messages",
            &format!("{titem}/messages"),
            Body::Json(json!({"body": "Sedang diproses"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/tickets/{id}/attachments",
            &format!("{titem}/attachments"),
            Body::Form(vec![], "surat.pdf", pdf(2048)),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/tickets/{id}/attachments",
            &format!("{titem}/attachments"),
            Body::Form(vec![], "x.exe", b"MZ\x90\x00binary".to_vec()),
        )
        .await;
    assert!(status == 415 || status == 422, "{status}");
    let (status, full) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/tickets/{id}",
            &titem,
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            full["messages"].as_array().map(Vec::len),
            full["attachments"].as_array().map(Vec::len)
        ),
        (Some(1), Some(1)),
        "{full}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::PATCH,
            "/api/tickets/{id}",
            &titem,
            Body::Json(json!({"status": "IN_PROGRESS", "note": "Diambil"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::PATCH,
            "/api/tickets/{id}",
            &titem,
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::PATCH,
            "/api/tickets/{id}",
            &titem,
            Body::Json(json!({"status": "OPEN"})),
        )
        .await;
    assert_eq!(status, 422);

    // KPI.
    let today = bizos_tests::tenant_today();
    let target = json!({"metric_key": "quotations_sent", "assignee_user_id": o.alice.user_id,
                        "period_month": today.format("%Y-%m").to_string(), "target_value": 20});
    let (status, _) = c
        .call(
            &app,
            Some(&o.manager),
            M::POST,
            "/api/kpi/targets",
            "/api/kpi/targets",
            Body::Json(target.clone()),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.manager),
            M::POST,
            "/api/kpi/targets",
            "/api/kpi/targets",
            Body::Json(target),
        )
        .await;
    assert_eq!(status, 409);
    let (status, entry) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kpi/entries",
            "/api/kpi/entries",
            Body::Json(
                json!({"metric_key": "quotations_sent", "value": "3", "notes": "minggu ini"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kpi/evidence",
            "/api/kpi/evidence",
            Body::Form(
                vec![("entry_id", s(&entry, "entry_id"))],
                "bukti.pdf",
                pdf(512),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kpi/entries",
            "/api/kpi/entries",
            Body::Json(json!({"metric_key": "revenue", "value": 1})),
        )
        .await;
    assert_eq!(status, 422);
    let csv =
        format!("metric_key,value,entry_date\nquotations_sent,2,{today}\nrevenue,9,{today}\n");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kpi/import",
            "/api/kpi/import",
            Body::Form(vec![], "kpi.csv", csv.into_bytes()),
        )
        .await;
    if db.is_citus() {
        assert_eq!(status, 501);
    } else {
        assert_eq!(status, 202);
        // Its processing is a job of the uploader's (GET /api/jobs/{id}).
        let job: Uuid = sqlx::query_scalar(
            "select job_id from jobs where kind = 'import.process' and created_by = $1",
        )
        .bind(o.alice.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        let (status, _) = c
            .call(
                &app,
                Some(&o.alice),
                M::GET,
                "/api/jobs/{id}",
                &format!("/api/jobs/{job}"),
                Body::None,
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, actuals) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/kpi/actuals",
            &format!(
                "/api/kpi/actuals?from={}&to={today}",
                today - chrono::Days::new(30)
            ),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let items = actuals["items"].as_array().unwrap();
    assert!(
        items.iter().any(|a| a["status"] == "ok") && items.iter().any(|a| a["status"] == "na"),
        "both ok and NA metrics are checked: {actuals}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/kpi/actuals",
            "/api/kpi/actuals?from=2026-02-01&to=2026-01-01",
            Body::None,
        )
        .await;
    assert_eq!(status, 422);

    // Imports: one good and one bad row, processed, read with its errors.
    let csv = "external_ref,channel,company_name,contact_email\nR-1,website,PT Impor Satu,satu@impor.co.id\nR-2,pigeon,PT Impor Dua,dua@impor.co.id\n";
    let (status, staged) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/imports",
            "/api/imports",
            Body::Form(
                vec![("module", "leads".into())],
                "leads.csv",
                csv.as_bytes().to_vec(),
            ),
        )
        .await;
    if db.is_citus() {
        assert_eq!(status, 501, "{staged}");
    } else {
        assert_eq!(status, 201, "{staged}");
        imported(&mut c, &app, &o, &staged).await;
    }
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/imports",
            "/api/imports",
            Body::Form(
                vec![("module", "planets".into())],
                "p.csv",
                b"a\n1\n".to_vec(),
            ),
        )
        .await;
    assert_eq!(status, if db.is_citus() { 501 } else { 422 });

    // Receivables.
    let customer = s(&lead, "customer_id");
    let (status, inv) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices",
            "/api/invoices",
            Body::Json(
                json!({"customer_id": customer, "subtotal": "1000000.00", "tax": 110000,
                                "issue_date": (today - chrono::Days::new(90)).to_string(),
                                "terms_days": 30}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let invoice = s(&inv, "invoice_id");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/invoices",
            "/api/invoices",
            Body::Json(json!({"customer_id": customer, "subtotal": 1, "tax": 0})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/payments",
            "/api/payments",
            Body::Json(json!({"invoice_id": invoice, "amount": 110000, "reference": "BCA-1"})),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/payments",
            "/api/payments",
            Body::Json(json!({"invoice_id": invoice, "amount": 5, "reference": "BCA-1"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/invoices",
            "/api/invoices?overdue=true",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/invoices/{id}",
            &format!("/api/invoices/{invoice}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices/{id}/collection-ticket",
            &format!("/api/invoices/{invoice}/collection-ticket"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, aging) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/ar/aging",
            "/api/ar/aging",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        aging["items"].as_array().is_some_and(|a| a.len() >= 2),
        "{aging}"
    );

    // Files.
    let (status, object) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/objects",
            "/api/objects",
            Body::Form(
                vec![("bucket", "customer-documents".into())],
                "npwp.pdf",
                pdf(1024),
            ),
        )
        .await;
    assert_eq!(status, 201, "{object}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/objects/{id}",
            &format!("/api/objects/{}", s(&object, "object_id")),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/objects/{id}",
            &format!("/api/objects/{}", s(&object, "object_id")),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/objects",
            "/api/objects",
            Body::Form(vec![("bucket", "nope".into())], "x.pdf", pdf(10)),
        )
        .await;
    assert_eq!(status, 422);

    // Customers, prospects, activities, KPI progress, SLA, DSO, invoice
    // issue and void, bucket lists (issue 19).
    let (status, page) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/customers",
            "/api/customers?limit=5",
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{page}"
    );
    let cpath = format!("/api/customers/{customer}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/customers/{id}/documents",
            &format!("{cpath}/documents"),
            Body::Form(vec![], "kontrak.pdf", pdf(1024)),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::POST,
            "/api/customers/{id}/documents",
            &format!("{cpath}/documents"),
            Body::Form(vec![], "kontrak.pdf", pdf(1024)),
        )
        .await;
    assert_eq!(status, 403);
    let (status, detail) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/customers/{id}",
            &cpath,
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    for key in ["prospects", "leads", "invoices", "documents"] {
        assert!(
            detail[key].as_array().is_some_and(|a| !a.is_empty()),
            "{key}: {detail}"
        );
    }
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/customers/{id}",
            &cpath,
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let prospect: Uuid =
        sqlx::query_scalar("select prospect_id from leads where lead_id = $1::uuid")
            .bind(&lead_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let spath = format!("/api/prospects/{prospect}/stage");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/prospects/{id}/stage",
            &spath,
            Body::Json(json!({"stage": "CONTACTED", "note": "Called"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/prospects/{id}/stage",
            &spath,
            Body::Json(json!({"stage": "WON"})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/activities",
            "/api/activities",
            Body::Json(
                json!({"activity_type": "call", "summary": "Follow-up", "customer_id": customer}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/activities",
            "/api/activities",
            Body::Json(
                json!({"activity_type": "visit", "summary": "No photo", "customer_id": customer}),
            ),
        )
        .await;
    assert_eq!(status, 422);
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    png.extend([7u8; 64]);
    let visit = |gps_lng: &str| {
        vec![
            ("summary", "Visited the warehouse".to_owned()),
            ("customer_id", customer.clone()),
            ("gps_lat", "-6.2".to_owned()),
            ("gps_lng", gps_lng.to_owned()),
        ]
    };
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/visits",
            "/api/visits",
            Body::Form(visit("106.8"), "gudang.png", png.clone()),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/visits",
            "/api/visits",
            Body::Form(visit("east"), "gudang.png", png.clone()),
        )
        .await;
    assert_eq!(status, 422);
    let (status, acts) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/activities",
            "/api/activities?source=manual",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, acts["items"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{acts}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/kpi/targets",
            "/api/kpi/targets",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let month_start = today.format("%Y-%m-01").to_string();
    let (status, progress) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/kpi/progress",
            &format!("/api/kpi/progress?from={month_start}&to={today}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{progress}");
    assert!(
        progress["items"].as_array().is_some_and(|i| !i.is_empty()),
        "{progress}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.manager),
            M::GET,
            "/api/kpi/progress",
            &format!("/api/kpi/progress?from={today}&to={month_start}x"),
            Body::None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/sla/tickets",
            "/api/sla/tickets?limit=2",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/sla/tickets/{id}",
            &format!("/api/sla/tickets/{ticket}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/sla/tickets/{id}",
            &format!("/api/sla/tickets/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, days) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/sla/first-response",
            &format!(
                "/api/sla/first-response?from={}&to={}",
                today - chrono::Days::new(1),
                today + chrono::Days::new(1)
            ),
            Body::None,
        )
        .await;
    assert!(
        status == 200 && days["items"].as_array().is_some_and(|d| !d.is_empty()),
        "{days}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.ops),
            M::GET,
            "/api/sla/first-response",
            &format!(
                "/api/sla/first-response?from={today}&to={}",
                today - chrono::Days::new(1)
            ),
            Body::None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, dso) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/ar/dso",
            "/api/ar/dso?currency=IDR",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, dso["items"].as_array().map(Vec::len)),
        (200, Some(90)),
        "{dso}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/ar/dso",
            &format!("/api/ar/dso?from={today}&to=2020-01-01"),
            Body::None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, draft) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices",
            "/api/invoices",
            Body::Json(
                json!({"customer_id": customer, "subtotal": 1000, "tax": 110, "status": "DRAFT"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let ipath = format!("/api/invoices/{}", s(&draft, "invoice_id"));
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices/{id}/issue",
            &format!("{ipath}/issue"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices/{id}/issue",
            &format!("{ipath}/issue"),
            Body::None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/invoices/{id}/void",
            &format!("{ipath}/void"),
            Body::None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices/{id}/void",
            &format!("{ipath}/void"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices/{id}/void",
            &format!("/api/invoices/{invoice}/void"),
            Body::None,
        )
        .await;
    assert_eq!(status, 422, "it has a payment");
    let (status, files) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/objects",
            "/api/objects?bucket=customer-documents",
            Body::None,
        )
        .await;
    assert!(
        status == 200 && files["items"].as_array().is_some_and(|f| f.len() >= 2),
        "{files}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/objects",
            "/api/objects?bucket=nope",
            Body::None,
        )
        .await;
    assert_eq!(status, 422);

    // AI (issue 15).
    let admin = db.create_user(o.alice.tenant_id, "super_admin").await;
    let (status, answer) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/ai/chat",
            "/api/ai/chat",
            Body::Json(
                json!({"messages": [{"role": "user", "content": "Halo, hubungi 0812-3456-7890"}]}),
            ),
        )
        .await;
    assert_eq!(
        (status, answer["source"].as_str()),
        (200, Some("fallback")),
        "{answer}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/ai/chat",
            "/api/ai/chat",
            Body::Json(json!({"messages": []})),
        )
        .await;
    assert_eq!(status, 422);
    for group in ["day", "month", "feature", "model"] {
        let (status, usage) = c
            .call(
                &app,
                Some(&admin),
                M::GET,
                "/api/ai/usage",
                &format!("/api/ai/usage?group_by={group}"),
                Body::None,
            )
            .await;
        assert_eq!(status, 200, "{usage}");
        assert_eq!(usage["items"].as_array().map(Vec::len), Some(1), "{usage}");
    }
    let (status, limits) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/ai/limits",
            "/api/ai/limits",
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{limits}");
    assert!(
        limits["items"].as_array().is_some_and(|l| l.len() >= 10),
        "{limits}"
    );
    let (status, limit) = c
        .call(
            &app,
            Some(&admin),
            M::PUT,
            "/api/ai/limits",
            "/api/ai/limits",
            Body::Json(
                json!({"feature": "chat", "generations_per_day": 20, "tokens_per_month": null}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{limit}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::PUT,
            "/api/ai/limits",
            "/api/ai/limits",
            Body::Json(json!({"feature": "chat", "generations_per_day": 20})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, key) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/ai/keys",
            "/api/ai/keys",
            Body::Json(json!({"provider": "openai", "label": "ours", "key": "sk-contract-0001"})),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let (status, keys) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/ai/keys",
            "/api/ai/keys",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, keys["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{keys}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::DELETE,
            "/api/ai/keys/{id}",
            &format!("/api/ai/keys/{}", s(&key, "key_id")),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::DELETE,
            "/api/ai/keys/{id}",
            &format!("/api/ai/keys/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);

    // Knowledge base (issue 16).
    let md = b"# Refund\n\nRefunds are approved by the finance manager.\n".to_vec();
    let (status, kb_doc) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/kb/documents",
            "/api/kb/documents",
            Body::Form(
                vec![("title", "Refund SOP".into())],
                "refund.md",
                md.clone(),
            ),
        )
        .await;
    assert_eq!(status, 202, "{kb_doc}");
    let kb_id = s(&kb_doc, "document_id");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kb/documents",
            "/api/kb/documents",
            Body::Form(
                vec![("title", "Not mine to add".into())],
                "x.md",
                md.clone(),
            ),
        )
        .await;
    assert_eq!(status, 403, "kb.manage");
    let start = std::time::Instant::now();
    loop {
        let (status, got) = c
            .call(
                &app,
                Some(&admin),
                M::GET,
                "/api/kb/documents/{id}",
                &format!("/api/kb/documents/{kb_id}"),
                Body::None,
            )
            .await;
        assert_eq!(status, 200, "{got}");
        if got["status"] == "ready" {
            break;
        }
        assert!(start.elapsed().as_secs() < 120, "ingested: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/kb/documents/{id}",
            &format!("/api/kb/documents/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, list) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/kb/documents",
            "/api/kb/documents?status=ready&limit=10",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{list}"
    );
    let (status, found) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kb/search",
            "/api/kb/search",
            Body::Json(json!({"query": "who approves refunds", "k": 5})),
        )
        .await;
    assert_eq!(
        (status, found["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{found}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kb/search",
            "/api/kb/search",
            Body::Json(json!({"query": "refunds", "k": 0})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, answer) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/kb/ask",
            "/api/kb/ask",
            Body::Json(json!({"question": "Who approves refunds?"})),
        )
        .await;
    assert_eq!(
        (status, answer["source"].as_str()),
        (200, Some("extractive")),
        "{answer}"
    );
    let (status, changed) = c
        .call(
            &app,
            Some(&admin),
            M::PATCH,
            "/api/kb/documents/{id}",
            &format!("/api/kb/documents/{kb_id}"),
            Body::Json(json!({"visibility": "roles", "app_roles": ["finance", "director"]})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::PATCH,
            "/api/kb/documents/{id}",
            &format!("/api/kb/documents/{kb_id}"),
            Body::Json(json!({"visibility": "department"})),
        )
        .await;
    assert_eq!(status, 422, "department without dept_code");
    let (status, version) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/kb/documents/{id}/versions",
            &format!("/api/kb/documents/{kb_id}/versions"),
            Body::Form(vec![], "refund-v2.md", md),
        )
        .await;
    assert_eq!(
        (status, version["version"].as_i64()),
        (202, Some(2)),
        "{version}"
    );
    let (status, deleted) = c
        .call(
            &app,
            Some(&admin),
            M::DELETE,
            "/api/kb/documents/{id}",
            &format!("/api/kb/documents/{kb_id}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::DELETE,
            "/api/kb/documents/{id}",
            &format!("/api/kb/documents/{kb_id}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);

    // RFM segments and content (issue 17).
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/rfm/segments",
            "/api/rfm/segments",
            Body::None,
        )
        .await;
    assert_eq!(status, 404, "no snapshot yet");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/rfm/runs",
            "/api/rfm/runs",
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(status, 403, "rfm.manage");
    let (status, run) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/rfm/runs",
            "/api/rfm/runs",
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let job = s(&run, "job_id");
    let start = std::time::Instant::now();
    loop {
        let (status, got) = app
            .get_json(&o.marketing, &format!("/api/jobs/{job}"))
            .await;
        assert_eq!(status, 200, "{got}");
        if got["status"] == "succeeded" {
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "rfm.compute ran: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/jobs/{id}",
            &format!("/api/jobs/{job}"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    // A scored customer (the invoices above may all be open).
    sqlx::query(
        "insert into rfm_scores (tenant_id, week, customer_id, recency_days, frequency, monetary, r, f, m, fm, segment)
         select r.tenant_id, r.week, c.customer_id, 1, 1, 100, 5, 1, 1, 1, 'new_customers'
           from rfm_runs r join customers c on c.tenant_id = r.tenant_id
          where r.tenant_id = $1
         on conflict do nothing",
    )
    .bind(o.marketing.tenant_id)
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, report) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/rfm/segments",
            "/api/rfm/segments",
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    let (status, page) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/rfm/segments/{segment}/customers",
            "/api/rfm/segments/new_customers/customers?limit=1",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, page["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/rfm/segments/{segment}/customers",
            "/api/rfm/segments/vip/customers",
            Body::None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PUT,
            "/api/rfm/settings",
            "/api/rfm/settings",
            Body::Json(json!({"window_days": 180})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PUT,
            "/api/rfm/settings",
            "/api/rfm/settings",
            Body::Json(json!({"window_days": 3})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, templates) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/rfm/templates",
            "/api/rfm/templates",
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{templates}");
    let (status, saved) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PUT,
            "/api/rfm/templates/{segment}/{channel}",
            "/api/rfm/templates/new_customers/whatsapp",
            Body::Json(json!({"body": "Selamat datang, {{segment}} dari {{tenant}}!"})),
        )
        .await;
    assert_eq!(
        (status, saved["version"].as_i64()),
        (200, Some(1)),
        "{saved}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PUT,
            "/api/rfm/templates/{segment}/{channel}",
            "/api/rfm/templates/new_customers/fax",
            Body::Json(json!({"body": "Hai"})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, content) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/rfm/segments/{segment}/content",
            "/api/rfm/segments/new_customers/content",
            Body::Json(json!({"channel": "whatsapp"})),
        )
        .await;
    assert_eq!(
        (status, content["source"].as_str()),
        (200, Some("template")),
        "{content}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/rfm/segments/{segment}/content",
            "/api/rfm/segments/new_customers/content",
            Body::Json(json!({"channel": "whatsapp"})),
        )
        .await;
    assert_eq!(status, 403);

    // SOP pre-check (issue 17): the rules and a draft's verdict.
    let (status, rules) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/sop/rules",
            "/api/sop/rules",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, rules["items"].as_array().map(Vec::len)),
        (200, Some(5)),
        "{rules}"
    );
    let (status, rule) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/sop/rules",
            "/api/sop/rules",
            Body::Json(
                json!({"kind": "max_discount", "name": "Diskon 10", "parameters": {"max_pct": 10},
                              "severity": "warn", "active_from": "2025-01-01"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    let rule_path = format!("/api/sop/rules/{}", s(&rule, "rule_id"));
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/sop/rules",
            "/api/sop/rules",
            Body::Json(json!({"kind": "max_discount", "name": "Nope"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/sop/rules",
            "/api/sop/rules",
            Body::Json(json!({"kind": "max_discount", "name": "Diskon 10"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/sop/rules",
            "/api/sop/rules",
            Body::Json(
                json!({"kind": "max_discount", "name": "X", "parameters": {"max_pct": 101}}),
            ),
        )
        .await;
    assert_eq!(status, 422);
    let (status, changed) = c
        .call(
            &app,
            Some(&o.finance),
            M::PATCH,
            "/api/sop/rules/{id}",
            &rule_path,
            Body::Json(
                json!({"enabled": false, "active_from": null, "description": "Off for now"}),
            ),
        )
        .await;
    assert_eq!(
        (status, changed["applies_today"].as_bool()),
        (200, Some(false)),
        "{changed}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::PATCH,
            "/api/sop/rules/{id}",
            &format!("/api/sop/rules/{}", Uuid::new_v4()),
            Body::Json(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, verdict) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/precheck/invoice",
            "/api/precheck/invoice?notes=true",
            Body::Json(json!({"subtotal": 1000000, "tax": 110001, "b2b": false, "buyer_npwp": "01.000.013.1-093.000",
                              "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000,
                                         "discount_pct": 0, "luxury": false, "amount": 1000000}]})),
        )
        .await;
    assert_eq!(
        (
            status,
            verdict["valid"].as_bool(),
            verdict["notes"]["source"].as_str()
        ),
        (200, Some(true), Some("unavailable")),
        "{verdict}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/precheck/invoice",
            "/api/precheck/invoice",
            Body::Json(json!({"customer_id": Uuid::new_v4(), "subtotal": 1})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/precheck/invoice",
            "/api/precheck/invoice",
            Body::Json(json!({"lines": [{"description": "x", "quantity": 0, "unit_price": 1}]})),
        )
        .await;
    assert_eq!(status, 422);
    // invoice_create refused by a block rule: 422 with the reasons.
    let customer: Uuid = sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) select tenant_id, 'PT Aturan' from profiles
          where user_id = $1 returning customer_id",
    )
    .bind(o.finance.user_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let (status, refused) = c
        .call(&app, Some(&o.finance), M::POST, "/api/invoices", "/api/invoices",
              Body::Json(json!({"customer_id": customer, "lines": [
                  {"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 50}]})))
        .await;
    assert_eq!(
        (status, refused["error"]["reasons"][0]["field"].as_str()),
        (422, Some("lines[0].discount_pct")),
        "{refused}"
    );
    let (status, created) = c
        .call(
            &app,
            Some(&o.finance),
            M::POST,
            "/api/invoices",
            "/api/invoices",
            Body::Json(json!({"customer_id": customer, "tax": 1, "lines": [
                  {"description": "Sewa truk", "quantity": 1, "unit_price": 1000000}]})),
        )
        .await;
    assert_eq!(
        (status, created["warnings"][0]["field"].as_str()),
        (201, Some("tax")),
        "{created}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::DELETE,
            "/api/sop/rules/{id}",
            &rule_path,
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::DELETE,
            "/api/sop/rules/{id}",
            &rule_path,
            Body::None,
        )
        .await;
    assert_eq!(status, 404);

    // The digest card (written by the worker; here stored directly).
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/digest/latest",
            "/api/digest/latest",
            Body::None,
        )
        .await;
    assert_eq!(status, 404, "no digest yet");
    sqlx::query(
        "insert into digests (tenant_id, digest_date, locale, aggregates, insights, source)
         values ($1, '2026-11-18', 'id', digest_aggregates($1, '2026-11-18'),
                 '[{\"text\": \"a\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"},
                   {\"text\": \"b\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"},
                   {\"text\": \"c\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"}]', 'fallback')",
    )
    .bind(admin.tenant_id)
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, digest) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/digest/latest",
            "/api/digest/latest",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, &digest["source"]),
        (200, &json!("fallback")),
        "{digest}"
    );
    let (status, digest) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/digest",
            "/api/digest?date=2026-11-18",
            Body::None,
        )
        .await;
    assert_eq!(status, 200, "{digest}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/digest",
            "/api/digest?date=2026-11-18",
            Body::None,
        )
        .await;
    assert_eq!(status, 403, "digest.read");

    // API keys (issue 19).
    let (status, api_key) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/api-keys",
            "/api/api-keys",
            Body::Json(
                json!({"name": "contract", "scopes": ["leads:read"], "allowed_ips": ["127.0.0.1"],
                              "expires_at": "2099-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{api_key}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/api-keys",
            "/api/api-keys",
            Body::Json(json!({"name": "contract", "scopes": ["leads:read"]})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, api_keys) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/api-keys",
            "/api/api-keys",
            Body::None,
        )
        .await;
    assert_eq!(
        (status, api_keys["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{api_keys}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/api-keys/{id}/revoke",
            &format!("/api/api-keys/{}/revoke", s(&api_key, "key_id")),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/api-keys/{id}/revoke",
            &format!("/api/api-keys/{}/revoke", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    admin_and_audit(
        &mut c,
        &app,
        &db,
        &admin,
        &o,
        [lead_id.as_str(), ticket.as_str(), invoice.as_str()],
    )
    .await;

    // Webhooks (issue 19): an endpoint nothing listens at (port 9 of
    // loopback, which the tests' server allows), so deliveries stay pending.
    let hook = json!({"url": "http://127.0.0.1:9/contract", "event_types": ["lead.created"],
                      "description": "contract"});
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::POST,
            "/api/webhooks/endpoints",
            "/api/webhooks/endpoints",
            Body::Json(hook.clone()),
        )
        .await;
    assert_eq!(status, 403, "webhook.manage");
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/endpoints",
            "/api/webhooks/endpoints",
            Body::Json(json!({"url": "http://10.0.0.1/", "event_types": ["lead.created"]})),
        )
        .await;
    assert_eq!(status, 422, "a private address");
    let (status, endpoint) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/endpoints",
            "/api/webhooks/endpoints",
            Body::Json(hook.clone()),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    assert!(s(&endpoint, "secret").starts_with("whsec_"));
    let endpoint_path = format!("/api/webhooks/endpoints/{}", s(&endpoint, "endpoint_id"));
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/endpoints",
            "/api/webhooks/endpoints",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&o.alice),
            M::GET,
            "/api/webhooks/endpoints",
            "/api/webhooks/endpoints",
            Body::None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/endpoints/{id}",
            &endpoint_path,
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/endpoints/{id}",
            &format!("/api/webhooks/endpoints/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call(&app, Some(&admin), M::PATCH, "/api/webhooks/endpoints/{id}", &endpoint_path,
              Body::Json(json!({"description": "the contract's", "event_types": ["lead.created", "lead.assigned"]})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::PATCH,
            "/api/webhooks/endpoints/{id}",
            &endpoint_path,
            Body::Json(json!({"event_types": []})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, rotated) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/endpoints/{id}/secret/rotate",
            &format!("{endpoint_path}/secret/rotate"),
            Body::Json(json!({"overlap_hours": 1})),
        )
        .await;
    assert_eq!(
        (status, rotated["secrets"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{rotated}"
    );
    let (status, lead) = app
        .post_json(
            &admin,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Kontrak Hook"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    // The worker fans the event out to the endpoint.
    let started = std::time::Instant::now();
    let page = loop {
        let (status, page) = c
            .call(
                &app,
                Some(&admin),
                M::GET,
                "/api/webhooks/endpoints/{id}/deliveries",
                &format!("{endpoint_path}/deliveries?limit=10"),
                Body::None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        if page["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break page;
        }
        assert!(started.elapsed().as_secs() < 60, "no delivery: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let delivery_path = format!(
        "/api/webhooks/deliveries/{}",
        s(&page["items"][0], "delivery_id")
    );
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/endpoints/{id}/deliveries",
            &format!("{endpoint_path}/deliveries?status=lost"),
            Body::None,
        )
        .await;
    assert_eq!(status, 422);
    let (status, detail) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/deliveries/{id}",
            &delivery_path,
            Body::None,
        )
        .await;
    assert_eq!(
        (status, &detail["payload"]["type"]),
        (200, &json!("lead.created")),
        "{detail}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::GET,
            "/api/webhooks/deliveries/{id}",
            &format!("/api/webhooks/deliveries/{}", Uuid::new_v4()),
            Body::None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/deliveries/{id}/replay",
            &format!("{delivery_path}/replay"),
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, replayed) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/endpoints/{id}/replay",
            &format!("{endpoint_path}/replay"),
            Body::Json(json!({"since": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(
        (status, &replayed["replayed"]),
        (200, &json!(1)),
        "{replayed}"
    );
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::POST,
            "/api/webhooks/endpoints/{id}/replay",
            &format!("{endpoint_path}/replay"),
            Body::Json(json!({"since": "tomorrow"})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&admin),
            M::DELETE,
            "/api/webhooks/endpoints/{id}",
            &endpoint_path,
            Body::None,
        )
        .await;
    assert_eq!(status, 200);

    // --- crm: new routes ---
    // Customers changed and merged: two customers of the marketing
    // manager, a change, a conflict, a merge and the merges of the survivor.
    let mut merge_ids = Vec::new();
    for (company, email) in [
        ("PT Gabung Satu", "satu@gabung.co.id"),
        ("CV Gabung Dua", "dua@gabung.co.id"),
    ] {
        let (status, made) = c
            .call(
                &app,
                Some(&o.marketing),
                M::POST,
                "/api/leads",
                "/api/leads",
                Body::Json(
                    json!({"channel": "website", "company_name": company, "contact_email": email}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{made}");
        merge_ids.push(s(&made, "customer_id"));
    }
    let keep_path = format!("/api/customers/{}", merge_ids[0]);
    let (status, changed) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PATCH,
            "/api/customers/{id}",
            &keep_path,
            Body::Json(json!({"city": "Semarang", "payment_terms_days": 30})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::PATCH,
            "/api/customers/{id}",
            &keep_path,
            Body::Json(json!({"email": "DUA@gabung.co.id"})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, merged) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/customers/{id}/merge",
            &format!("{keep_path}/merge"),
            Body::Json(json!({"duplicate_id": merge_ids[1]})),
        )
        .await;
    assert_eq!(status, 200, "{merged}");
    let (status, merges) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/customers/{id}/merges",
            &format!("{keep_path}/merges"),
            Body::None,
        )
        .await;
    assert_eq!(
        (status, merges.as_array().map(Vec::len)),
        (200, Some(1)),
        "{merges}"
    );
    // Marketing spend and events: entered and listed.
    let (status, spend) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/marketing/spend",
            "/api/marketing/spend",
            Body::Json(
                json!({"channel": "website", "spend_date": bizos_tests::tenant_today().to_string(),
                              "amount": 250000, "campaign": "Kontrak"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{spend}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/marketing/spend",
            "/api/marketing/spend",
            Body::Json(json!({"channel": "website", "spend_date": "2026-01-01", "amount": 0})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = c
        .call(
            &app,
            Some(&o.finance),
            M::GET,
            "/api/marketing/spend",
            "/api/marketing/spend?channel=website",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, event) = c
        .call(
            &app,
            Some(&o.marketing),
            M::POST,
            "/api/marketing/events",
            "/api/marketing/events",
            Body::Json(
                json!({"channel": "event", "event_type": "expo", "occurred_at": "2026-03-05 10:00",
                              "reach": 300}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let (status, _) = c
        .call(
            &app,
            Some(&o.marketing),
            M::GET,
            "/api/marketing/events",
            "/api/marketing/events",
            Body::None,
        )
        .await;
    assert_eq!(status, 200);
    // --- end crm ---

    // Imports need a single node (docs/citus.md, "Not supported").
    c.finish(if db.is_citus() {
        &[
            ("post", "/api/kpi/import"),
            ("post", "/api/imports"),
            ("post", "/api/imports/{id}/process"),
            ("get", "/api/imports/{id}"),
        ]
    } else {
        &[]
    });
}

/// The administration and audit routes (issue 19, B2B-9/B2B-10): users,
/// roles and their permissions, the audit log, its chains and the history
/// of a lead, a ticket and an invoice.
async fn admin_and_audit(
    c: &mut Contract,
    app: &TestApp,
    db: &TestDb,
    admin: &Caller,
    o: &Org,
    [lead_id, ticket, invoice]: [&str; 3],
) {
    use Method as M;
    let director = db.create_user(admin.tenant_id, "director").await;
    let (status, user) = c
        .call(
            app,
            Some(admin),
            M::POST,
            "/api/users",
            "/api/users",
            Body::Json(json!({"email": format!("contract-{}@example.test", Uuid::new_v4().simple()),
                              "full_name": "Contract User", "app_role": "ops", "dept_code": "ops-jkt",
                              "manager_user_id": o.manager.user_id})),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let user_path = format!("/api/users/{}", s(&user, "user_id"));
    let (status, _) = c
        .call(
            app,
            Some(admin),
            M::POST,
            "/api/users",
            "/api/users",
            Body::Json(json!({"email": "x@example.test", "full_name": "X", "app_role": "ops"})),
        )
        .await;
    assert_eq!(status, 422, "ops need a department");
    let (status, _) = c
        .call(
            app,
            Some(&o.alice),
            M::POST,
            "/api/users",
            "/api/users",
            Body::Json(
                json!({"email": "y@example.test", "full_name": "Y", "app_role": "salesperson"}),
            ),
        )
        .await;
    assert_eq!(status, 403, "profile.manage");
    for (who, path, want) in [
        (admin, "/api/users?limit=2&app_role=ops", 200),
        (admin, "/api/users?active=true&q=contract", 200),
        (&o.alice, "/api/users", 403),
        (admin, "/api/users?app_role=janitor", 400),
    ] {
        let (status, body) = c
            .call(app, Some(who), M::GET, "/api/users", path, Body::None)
            .await;
        assert_eq!(status, want, "{path}: {body}");
    }
    for (id_path, want) in [
        (user_path.clone(), 200),
        (format!("/api/users/{}", Uuid::new_v4()), 404),
    ] {
        let (status, body) = c
            .call(
                app,
                Some(admin),
                M::GET,
                "/api/users/{id}",
                &id_path,
                Body::None,
            )
            .await;
        assert_eq!(status, want, "{body}");
    }
    for (body, want) in [
        (
            json!({"full_name": "Contract Two", "manager_user_id": null}),
            200,
        ),
        (json!({"dept_code": null}), 422),
        (json!({"manager_user_id": s(&user, "user_id")}), 422),
    ] {
        let (status, res) = c
            .call(
                app,
                Some(admin),
                M::PATCH,
                "/api/users/{id}",
                &user_path,
                Body::Json(body),
            )
            .await;
        assert_eq!(status, want, "{res}");
    }
    for (action, want) in [("deactivate", 200), ("reactivate", 200)] {
        let (status, res) = c
            .call(
                app,
                Some(admin),
                M::POST,
                &format!("/api/users/{{id}}/{action}"),
                &format!("{user_path}/{action}"),
                Body::None,
            )
            .await;
        assert_eq!(status, want, "{action}: {res}");
    }
    let (status, res) = c
        .call(
            app,
            Some(admin),
            M::POST,
            "/api/users/{id}/deactivate",
            &format!("/api/users/{}/deactivate", admin.user_id),
            Body::None,
        )
        .await;
    assert_eq!(status, 422, "the last super admin: {res}");
    let (status, _) = c
        .call(
            app,
            Some(&o.alice),
            M::POST,
            "/api/users/{id}/reactivate",
            &format!("{user_path}/reactivate"),
            Body::None,
        )
        .await;
    assert_eq!(status, 403);

    // Roles and their permissions.
    for (who, want) in [(admin, 200), (&director, 403)] {
        let (status, body) = c
            .call(
                app,
                Some(who),
                M::GET,
                "/api/roles",
                "/api/roles",
                Body::None,
            )
            .await;
        assert_eq!(status, want, "{body}");
    }
    for (path, body, want) in [
        (
            "/api/roles/finance/permissions",
            json!({"permission": "audit.read"}),
            200,
        ),
        (
            "/api/roles/finance/permissions",
            json!({"permission": "audit.all"}),
            422,
        ),
        (
            "/api/roles/janitor/permissions",
            json!({"permission": "audit.read"}),
            422,
        ),
    ] {
        let (status, res) = c
            .call(
                app,
                Some(admin),
                M::POST,
                "/api/roles/{role}/permissions",
                path,
                Body::Json(body),
            )
            .await;
        assert_eq!(status, want, "{path}: {res}");
    }
    for (who, path, want) in [
        (admin, "/api/roles/finance/permissions/audit.read", 200),
        (
            admin,
            "/api/roles/super_admin/permissions/profile.manage",
            422,
        ),
        (&director, "/api/roles/finance/permissions/kb.manage", 403),
    ] {
        let (status, res) = c
            .call(
                app,
                Some(who),
                M::DELETE,
                "/api/roles/{role}/permissions/{permission}",
                path,
                Body::None,
            )
            .await;
        assert_eq!(status, want, "{path}: {res}");
    }

    // The audit log, its chains, the histories; masked for the director.
    for (who, path, want) in [
        (admin, "/api/audit?limit=3", 200),
        (&director, "/api/audit?table=profiles", 200),
        (&director, "/api/audit?table=nope", 422),
        (admin, "/api/audit?after=nope", 400),
        (&o.alice, "/api/audit", 403),
    ] {
        let (status, body) = c
            .call(app, Some(who), M::GET, "/api/audit", path, Body::None)
            .await;
        assert_eq!(status, want, "{path}: {body}");
        if path.contains("limit=3") {
            assert_eq!(body["items"].as_array().map(Vec::len), Some(3), "{body}");
            assert!(body["next_cursor"].is_string(), "{body}");
        }
    }
    for who in [&director, &o.finance] {
        let (status, body) = c
            .call(
                app,
                Some(who),
                M::GET,
                "/api/audit/verify",
                "/api/audit/verify",
                Body::None,
            )
            .await;
        assert_eq!(
            status,
            if who.user_id == director.user_id {
                200
            } else {
                403
            },
            "{body}"
        );
    }
    for (template, id) in [
        ("/api/leads/{id}/history", lead_id),
        ("/api/tickets/{id}/history", ticket),
        ("/api/invoices/{id}/history", invoice),
    ] {
        let path = template.replace("{id}", id);
        let (status, body) = c
            .call(app, Some(&director), M::GET, template, &path, Body::None)
            .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            !body["items"].as_array().unwrap().is_empty(),
            "{path}: {body}"
        );
        let missing = template.replace("{id}", &Uuid::new_v4().to_string());
        let (status, _) = c
            .call(app, Some(&director), M::GET, template, &missing, Body::None)
            .await;
        assert_eq!(status, 404, "{missing}");
    }
}

/// Every `.route(` of axum bypasses the document: routes are registered
/// with utoipa-axum's `routes!` only, which documents them.
#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../bff/src");
    let mut stack = vec![std::path::PathBuf::from(src)];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The worker's health server is not the API (its own port).
                if !path.ends_with("worker") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    assert!(
                        !line.contains(".route(") && !line.contains(".route_service("),
                        "{}:{}: a route outside utoipa-axum's routes! is not documented",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }
    assert!(files > 10, "read the BFF's sources");

    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc = document(&app).await;
    assert_eq!(
        doc,
        serde_json::to_value(bizos_bff::routes::document(
            &bizos_bff::vocabulary::Vocabulary::load(&db.pool_as("bizos_app"))
                .await
                .unwrap()
        ))
        .unwrap(),
        "the served document is the generated one"
    );
    // Every documented operation is routed (a route the router does not
    // serve answers the fallback's "no such route" or 405).
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path.replace("{id}", &Uuid::new_v4().to_string());
        for method in ["get", "post", "patch", "put", "delete"] {
            let documented = item.get(method).is_some();
            let res = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let fallback =
                status == 405 || (status == 404 && body["error"]["message"] == "no such route");
            assert_eq!(
                !fallback, documented,
                "{method} {path}: served = {}, documented = {documented} ({status} {body})",
                !fallback
            );
        }
    }
}

/// The schemas are typed: no response is a bare object, request bodies
/// carry enums and limits, PATCH fields are optional, errors documented.
/// The OpenAPI documents themselves (untyped objects in the document).
const DOCUMENTS: [&str; 2] = ["/openapi.json", "/api/v1/openapi.json"];

#[tokio::test]
async fn the_document_is_typed() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => s.clone(),
        }
    };
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response["content"]["application/json"]["schema"].as_object()
                else {
                    continue;
                };
                let schema = resolve(&Value::Object(schema.clone()));
                if DOCUMENTS.contains(&path.as_str()) {
                    continue;
                }
                assert!(
                    schema["properties"].is_object(),
                    "{method} {path} {status}: an untyped response {schema}"
                );
                assert_eq!(
                    schema["additionalProperties"],
                    json!(false),
                    "{method} {path} {status}: the keys are not closed"
                );
            }
            if !["/healthz", "/readyz"].contains(&path.as_str())
                && !DOCUMENTS.contains(&path.as_str())
            {
                for status in ["401", "403", "503"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status} undocumented"
                    );
                }
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "415", "422"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    // No untyped object anywhere in a response (the metric-specific
    // `breakdown` of KPI actuals excepted).
    fn walk(
        schema: &Value,
        schemas: &Value,
        at: &str,
        seen: &mut BTreeSet<String>,
        bad: &mut Vec<String>,
    ) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            if seen.insert(name.to_owned()) {
                walk(&schemas[name], schemas, name, seen, bad);
            }
            return;
        }
        let is_object = schema["type"] == "object"
            || schema["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("object")));
        if is_object
            && !schema["properties"].is_object()
            && !schema["additionalProperties"].is_object()
            && !at.ends_with(".breakdown")
        {
            bad.push(format!("{at}: {schema}"));
        }
        for (k, v) in schema["properties"].as_object().into_iter().flatten() {
            walk(v, schemas, &format!("{at}.{k}"), seen, bad);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for v in schema[key].as_array().into_iter().flatten() {
                walk(v, schemas, at, seen, bad);
            }
        }
        for key in ["items", "additionalProperties"] {
            if schema[key].is_object() {
                walk(&schema[key], schemas, &format!("{at}[]"), seen, bad);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut bad = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if DOCUMENTS.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_object() {
                    walk(
                        schema,
                        schemas,
                        &format!("{method} {path} {status}"),
                        &mut seen,
                        &mut bad,
                    );
                }
            }
        }
    }
    assert!(seen.len() > 30, "{seen:?}");
    assert!(
        bad.is_empty(),
        "untyped objects in responses:\n{}",
        bad.join("\n")
    );

    let lead = &schemas["LeadCreate"];
    assert_eq!(lead["additionalProperties"], json!(false), "{lead}");
    let channel = resolve(&lead["properties"]["channel"]);
    assert!(
        channel["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("walk_in"))),
        "{channel}"
    );
    let company = resolve(&lead["properties"]["company_name"]);
    assert_eq!(company["maxLength"], 200, "{company}");
    assert!(lead["required"]
        .as_array()
        .unwrap()
        .contains(&json!("company_name")));
    let rfq = &schemas["Rfq"];
    assert!(
        rfq["required"]
            .as_array()
            .unwrap()
            .contains(&json!("dept_target")),
        "{rfq}"
    );
    let patch = &schemas["TicketPatch"];
    assert!(
        patch["required"].is_null() || patch["required"] == json!([]),
        "{patch}"
    );
    assert!(
        patch["properties"]["assignee_user_id"]
            .to_string()
            .contains("null"),
        "null unassigns: {patch}"
    );
    assert!(
        !patch["properties"]["status"].to_string().contains("null"),
        "status cannot be null: {patch}"
    );
    let codes = &schemas["ErrorCode"]["enum"];
    for code in ["invalid", "no_profile", "tenant_read_only"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{codes}");
    }
    assert!(doc["paths"]["/api/me"]["get"].is_object());
}

fn error_of(body: &Value) -> (String, Option<String>) {
    (
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
        body["error"]["field"].as_str().map(str::to_owned),
    )
}

async fn raw(
    app: &TestApp,
    who: &Caller,
    method: Method,
    path: &str,
    ct: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let res = app
        .request_as(who, method, path, None)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn bad_request_bodies_name_the_field_and_write_nothing() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let ok = json!({"channel": "website", "company_name": "PT Benar"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let long = "x".repeat(201);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("wrong type", with("company_name", json!({"x": 1})).to_string().into_bytes(), 422, "company_name"),
        ("number for text", with("city", json!(12)).to_string().into_bytes(), 422, "city"),
        ("unknown key", with("colour", json!("red")).to_string().into_bytes(), 422, "colour"),
        ("malformed JSON", br#"{"channel": "website", "company_name": "PT X",}"#.to_vec(), 400, "body"),
        ("not JSON", b"channel=website".to_vec(), 400, "body"),
        ("empty body", Vec::new(), 400, "body"),
        ("an array", b"[1, 2]".to_vec(), 422, "body"),
        ("escaped NUL", with("company_name", json!("PT A\u{0}B")).to_string().into_bytes(), 422, "company_name"),
        ("raw NUL", b"{\"channel\": \"website\", \"company_name\": \"PT A\x00B\"}".to_vec(), 400, "company_name"),
        ("NUL in a key", with("a\u{0}b", json!(1)).to_string().into_bytes(), 422, "a\u{0}b"),
        ("too long", with("company_name", json!(long)).to_string().into_bytes(), 422, "company_name"),
        ("invalid enum", with("channel", json!("pigeon")).to_string().into_bytes(), 422, "channel"),
        ("missing", json!({"channel": "website"}).to_string().into_bytes(), 422, "company_name"),
        ("blank required", with("company_name", json!("   ")).to_string().into_bytes(), 422, "company_name"),
        ("bad uuid", with("sales_owner_user_id", json!("bob")).to_string().into_bytes(), 422, "sales_owner_user_id"),
        ("nested type", with("rfq", json!({"origin": 5, "destination": "B", "dept_target": "OPS"})).to_string().into_bytes(), 422, "rfq.origin"),
        ("nested missing", with("rfq", json!({"origin": "A", "destination": "B"})).to_string().into_bytes(), 422, "rfq.dept_target"),
        ("nested unknown", with("rfq", json!({"origin": "A", "destination": "B", "dept_target": "OPS", "x": 1})).to_string().into_bytes(), 422, "rfq.x"),
        ("nested range", with("rfq", json!({"origin": "A", "destination": "B", "dept_target": "OPS", "weight_kg": "-1"})).to_string().into_bytes(), 422, "rfq.weight_kg"),
        ("nested decimals", with("rfq", json!({"origin": "A", "destination": "B", "dept_target": "OPS", "volume_cbm": 1.2345})).to_string().into_bytes(), 422, "rfq.volume_cbm"),
        ("nested department", with("rfq", json!({"origin": "A", "destination": "B", "dept_target": "9 OPS"})).to_string().into_bytes(), 422, "rfq.dept_target"),
    ];
    for (what, body, status, field) in cases {
        let (got, res) = raw(
            &app,
            &o.marketing,
            Method::POST,
            "/api/leads",
            "application/json",
            body,
        )
        .await;
        assert_eq!(
            (got, error_of(&res).1.as_deref()),
            (status, Some(field)),
            "{what}: {res}"
        );
        assert!(
            res["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {res}"
        );
    }
    let (got, res) = raw(
        &app,
        &o.marketing,
        Method::POST,
        "/api/leads",
        "text/plain",
        ok.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (got, error_of(&res)),
        (
            415,
            ("unsupported_media_type".into(), Some("content-type".into()))
        )
    );
    assert_eq!(
        count(&db, "select count(*) from leads").await,
        0,
        "nothing written"
    );

    // What the database accepts passes: 200 characters (not bytes) after
    // trimming, case-folded enums, numeric strings, blank optional ids.
    let (status, lead) = app
        .post_json(
            &o.marketing,
            "/api/leads",
            &json!({"channel": " WhatsApp ", "company_name": format!("  {}  ", "é".repeat(200)),
                           "sales_owner_user_id": "", "contact_name": "",
                           "rfq": {"origin": "A", "destination": "B", "dept_target": "ops",
                                   "weight_kg": "12.500", "priority": "URGENT"}}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
    assert_eq!(
        count(&db, "select count(*) from tickets where priority = 'urgent' and weight_kg = 12.5 and dept_target = 'OPS'").await,
        1
    );
    let lead_id = lead["lead_id"].as_str().unwrap().to_owned();

    // PATCH keeps absent, null and values apart.
    let path = format!("/api/leads/{lead_id}");
    let (status, body) = app
        .patch_json(
            &o.marketing,
            &path,
            &json!({"contact_name": "Sari", "city": "Depok"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .patch_json(&o.marketing, &path, &json!({"contact_name": null}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["contact_name"].clone(), body["city"].as_str()),
        (Value::Null, Some("Depok")),
        "{body}"
    );
    for (patch, field) in [
        (json!({"status": null}), "status"),
        (json!({"channel": "pigeon"}), "channel"),
        (json!({"notes": "n".repeat(4001)}), "notes"),
        (json!({"city": ["Depok"]}), "city"),
        (json!({"owner": "me"}), "owner"),
    ] {
        let (status, body) = app.patch_json(&o.marketing, &path, &patch).await;
        assert_eq!(
            (status, error_of(&body).1.as_deref()),
            (422, Some(field)),
            "{patch}: {body}"
        );
    }

    // Tickets: PATCH and messages.
    let (status, t) = app
        .post_json(
            &o.alice,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "Rusak", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let tpath = format!("/api/tickets/{}", t["ticket_id"].as_str().unwrap());
    for (ticket, field) in [
        (
            json!({"ticket_type": "Complaint", "subject": "x", "dept_target": "OPS"}),
            "ticket_type",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "priority": "whenever"}),
            "priority",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "weight_kg": true}),
            "weight_kg",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "s".repeat(201), "dept_target": "OPS"}),
            "subject",
        ),
    ] {
        let (status, body) = app.post_json(&o.alice, "/api/tickets", &ticket, None).await;
        assert_eq!(
            (status, error_of(&body).1.as_deref()),
            (422, Some(field)),
            "{ticket}: {body}"
        );
    }
    for (patch, field) in [
        (json!({"priority": "whenever"}), "priority"),
        (json!({"status": null}), "status"),
        (json!({"assignee_user_id": "bob"}), "assignee_user_id"),
        (
            json!({"status": "IN_PROGRESS", "note": "n".repeat(10001)}),
            "note",
        ),
        (json!({"subject": ""}), "subject"),
        (json!({"due": "tomorrow"}), "due"),
    ] {
        let (status, body) = app.patch_json(&o.ops, &tpath, &patch).await;
        assert_eq!(
            (status, error_of(&body).1.as_deref()),
            (422, Some(field)),
            "{patch}: {body}"
        );
    }
    let (status, body) = app
        .post_json(
            &o.ops,
            &format!("{tpath}/messages"),
            &json!({"body": "hi", "internal": "yes"}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1.as_deref()),
        (422, Some("internal")),
        "{body}"
    );
    assert_eq!(count(&db, "select count(*) from ticket_messages").await, 0);

    // KPI entries: arrays report the index.
    let good = Uuid::new_v4().to_string();
    for (entry, field) in [
        (
            json!({"metric_key": "quotations_sent", "value": 1, "evidence": [good, good, 7]}),
            "evidence[2]",
        ),
        (
            json!({"metric_key": "quotations_sent", "value": 1, "evidence": vec![good.clone(); 21]}),
            "evidence",
        ),
        (
            json!({"metric_key": "quotations_sent", "value": "1.23456"}),
            "value",
        ),
        (
            json!({"metric_key": "quotations_sent", "value": 1, "source": "GUESSED"}),
            "source",
        ),
        (
            json!({"metric_key": "quotations_sent", "value": 1, "import_row": 0}),
            "import_row",
        ),
        (
            json!({"metric_key": "quotations_sent", "value": 1, "entry_date": "2026-02-30"}),
            "entry_date",
        ),
    ] {
        let (status, body) = app
            .post_json(&o.alice, "/api/kpi/entries", &entry, None)
            .await;
        assert_eq!(
            (status, error_of(&body).1.as_deref()),
            (422, Some(field)),
            "{entry}: {body}"
        );
    }
    // Invoices: ranges and shapes.
    let customer = lead["customer_id"].as_str().unwrap();
    for (invoice, field) in [
        (
            json!({"customer_id": customer, "subtotal": 10, "tax": 0, "terms_days": 400}),
            "terms_days",
        ),
        (
            json!({"customer_id": customer, "subtotal": 10, "tax": 0, "currency": "rupiah"}),
            "currency",
        ),
        (
            json!({"customer_id": customer, "subtotal": "1e3", "tax": 0}),
            "subtotal",
        ),
        (
            json!({"customer_id": customer, "subtotal": 10, "tax": -1}),
            "tax",
        ),
        (
            json!({"customer_id": customer, "subtotal": 10, "tax": 0, "status": "PAID"}),
            "status",
        ),
    ] {
        let (status, body) = app
            .post_json(&o.finance, "/api/invoices", &invoice, None)
            .await;
        assert_eq!(
            (status, error_of(&body).1.as_deref()),
            (422, Some(field)),
            "{invoice}: {body}"
        );
    }
    assert_eq!(count(&db, "select count(*) from kpi_entries").await, 0);
    assert_eq!(count(&db, "select count(*) from invoices").await, 0);
}
