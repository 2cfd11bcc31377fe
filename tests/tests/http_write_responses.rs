//! Issue 11 §3: every write route's response shows only what the caller may
//! read. For each write route and each role allowed to call it, the
//! personal data `bizos.pii_detect` finds in the response must be data the
//! caller sent or reads through their own read path (the GET routes of the
//! objects concerned). The fixture is an RFQ whose contact details (phone,
//! e-mail, NPWP) GET /api/tickets/{id} masks for ops.

use std::collections::BTreeSet;

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};

const RFQ_NPWP: &str = "01.000.013.1-093.000";
const RFQ_EMAIL: &str = "budi.santoso@majujaya.co.id";
const RFQ_PHONE: &str = "+62 812-9876-5432";

/// The identifiers the detector finds in `text`, normalised (e-mail lower
/// case, numbers as digits with 62 → 0) so spellings compare equal.
async fn pii(db: &TestDb, text: &str) -> BTreeSet<String> {
    let ascii: String = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let spans: Vec<(String, String)> = sqlx::query_as(
        "select s->>'type', substr($1, (s->>'start')::int + 1, (s->>'end')::int - (s->>'start')::int)
           from jsonb_array_elements(bizos.pii_detect($1)) s",
    )
    .bind(&ascii)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    spans
        .into_iter()
        .map(|(kind, value)| {
            if kind == "EMAIL" {
                return format!("EMAIL {}", value.to_lowercase());
            }
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            match digits.strip_prefix("62") {
                Some(rest) if kind == "PHONE" => format!("PHONE 0{rest}"),
                _ => format!("{kind} {digits}"),
            }
        })
        .collect()
}

struct Probe<'a> {
    db: &'a TestDb,
    app: &'a TestApp,
    /// Responses that carried personal data the caller may read (so the
    /// check is seen to look at real data, not only at empty answers).
    with_pii: usize,
    checked: usize,
}

impl Probe<'_> {
    /// Asserts that `body` (the answer of a write as `who`) holds no
    /// personal data beyond what `who` sent and reads at `read_paths`.
    async fn check(
        &mut self,
        who: &Caller,
        route: &str,
        sent: &Value,
        (status, body): (u16, Value),
        read_paths: &[String],
    ) -> Value {
        assert!(
            (200..300).contains(&status),
            "{route} as {}: {status} {body}",
            who.app_role
        );
        let mut readable = pii(self.db, &sent.to_string()).await;
        for path in read_paths {
            let (s, b) = self.app.get_json(who, path).await;
            if s == 200 {
                readable.extend(pii(self.db, &b.to_string()).await);
            }
        }
        let found = pii(self.db, &body.to_string()).await;
        let leaked: Vec<&String> = found.difference(&readable).collect();
        assert!(
            leaked.is_empty(),
            "{route} as {}: {leaked:?} in the response, which the caller's read path does not show: {body}",
            who.app_role
        );
        self.checked += 1;
        if !found.is_empty() {
            self.with_pii += 1;
        }
        body
    }
}

fn id(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

const PNG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

#[tokio::test]
async fn write_responses_show_only_what_the_caller_may_read() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await; // department OPS
    let finance = db.create_user(tenant, "finance").await;
    sqlx::query("update profiles set manager_user_id = $1 where user_id = $2")
        .bind(manager.user_id)
        .bind(alice.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let app = spawn_app(&db).await;
    let mut p = Probe {
        db: &db,
        app: &app,
        with_pii: 0,
        checked: 0,
    };

    // ---------------------------------------------------------------- leads
    let rfq_lead = json!({"channel": "website", "company_name": "PT Maju Jaya Abadi", "npwp": RFQ_NPWP,
        "contact_name": "Budi Santoso", "contact_email": RFQ_EMAIL, "contact_phone": RFQ_PHONE,
        "rfq": {"origin": "Jakarta", "destination": "Surabaya", "dept_target": "OPS", "weight_kg": 1200}});
    let res = app
        .post_json(&marketing, "/api/leads", &rfq_lead, None)
        .await;
    let lead = p
        .check(&marketing, "POST /api/leads", &rfq_lead, res, &[])
        .await;
    let rfq = id(&lead, "ticket_id");
    let rfq_path = format!("/api/tickets/{rfq}");
    let pool_lead = id(&lead, "lead_id");

    // The fixture: the RFQ's contact details are real-looking and found by
    // the detector; GET shows them to marketing and masks them for ops.
    let (_, full) = app.get_json(&admin, &rfq_path).await;
    let raw = pii(&db, &full.to_string()).await;
    assert!(
        raw.len() >= 2,
        "the RFQ fixture holds personal data: {full}"
    );
    let (status, masked) = app.get_json(&ops, &rfq_path).await;
    assert_eq!(status, 200, "{masked}");
    assert!(
        pii(&db, &masked.to_string()).await.is_empty(),
        "ops read the RFQ masked: {masked}"
    );

    for who in [&alice, &manager, &admin] {
        let body = json!({"channel": "referral", "company_name": format!("PT Pelanggan {}", who.app_role),
            "contact_email": format!("kontak.{}@pelanggan.co.id", who.app_role),
            "contact_phone": "0813-2222-4444"});
        let res = app.post_json(who, "/api/leads", &body, None).await;
        let v = p.check(who, "POST /api/leads", &body, res, &[]).await;
        let path = format!("/api/leads/{}", id(&v, "lead_id"));
        let patch = json!({"notes": "call back on Monday"});
        let res = app.patch_json(who, &path, &patch).await;
        p.check(
            who,
            "PATCH /api/leads/{id}",
            &patch,
            res,
            std::slice::from_ref(&path),
        )
        .await;
    }
    let alice_lead = {
        let body = json!({"channel": "website", "company_name": "PT Milik Alice", "npwp": "01.001.608.7-093.000",
                          "contact_email": "beli@milik-alice.co.id"});
        let res = app.post_json(&alice, "/api/leads", &body, None).await;
        p.check(&alice, "POST /api/leads", &body, res, &[]).await
    };
    let alice_customer = id(&alice_lead, "customer_id");

    let assign = json!({"salesperson_user_id": alice.user_id});
    let path = format!("/api/leads/{pool_lead}/assign");
    let res = app.post_json(&manager, &path, &assign, None).await;
    p.check(
        &manager,
        "POST /api/leads/{id}/assign",
        &assign,
        res,
        &[format!("/api/leads/{pool_lead}")],
    )
    .await;
    let res = app.post_json(&marketing, &path, &assign, None).await;
    p.check(
        &marketing,
        "POST /api/leads/{id}/assign",
        &assign,
        res,
        &[format!("/api/leads/{pool_lead}")],
    )
    .await;

    // ---------------------------------------------------------------- tickets
    let general = json!({"ticket_type": "general_request", "subject": "Forklift rusak", "dept_target": "OPS"});
    for who in [&ops, &alice, &finance, &admin] {
        let res = app.post_json(who, "/api/tickets", &general, None).await;
        let v = p.check(who, "POST /api/tickets", &general, res, &[]).await;
        let _ = id(&v, "ticket_id");
    }
    let inquiry = json!({"ticket_type": "inquiry_tariff", "subject": "Tarif", "dept_target": "OPS",
        "origin": "Medan", "destination": "Batam", "contact_email": "ani@pabrik-kertas.co.id",
        "contact_phone": "0815-3333-7777", "company_name": "PT Pabrik Kertas"});
    let res = app.post_json(&alice, "/api/tickets", &inquiry, None).await;
    p.check(&alice, "POST /api/tickets", &inquiry, res, &[])
        .await;

    for (who, patch) in [
        (&ops, json!({"priority": "high"})),
        (&ops, json!({"status": "IN_PROGRESS", "note": "dicek"})),
        (&ops, json!({"assignee_user_id": ops.user_id})),
        (&admin, json!({"subject": "RFQ Jakarta - Surabaya"})),
    ] {
        let res = app.patch_json(who, &rfq_path, &patch).await;
        let v = p
            .check(
                who,
                "PATCH /api/tickets/{id}",
                &patch,
                res,
                std::slice::from_ref(&rfq_path),
            )
            .await;
        // The same shape as GET /api/tickets/{id} (without its lists).
        let (_, got) = app.get_json(who, &rfq_path).await;
        for key in ["company_name", "contact_email", "contact_phone", "status"] {
            assert_eq!(v[key], got[key], "{key}: {v} vs {got}");
        }
    }
    let msg = json!({"body": "Tarif sedang dihitung"});
    for who in [&ops, &marketing] {
        let res = app
            .post_json(who, &format!("{rfq_path}/messages"), &msg, None)
            .await;
        p.check(
            who,
            "POST /api/tickets/{id}/messages",
            &msg,
            res,
            std::slice::from_ref(&rfq_path),
        )
        .await;
    }
    let file = [PNG.to_vec(), vec![7; 200]].concat();
    let res = app
        .upload(
            &ops,
            &format!("{rfq_path}/attachments"),
            &[],
            "foto.png",
            file.clone(),
            None,
        )
        .await;
    p.check(
        &ops,
        "POST /api/tickets/{id}/attachments",
        &json!(null),
        res,
        std::slice::from_ref(&rfq_path),
    )
    .await;

    // ---------------------------------------------------------------- receivables
    let inv = json!({"customer_id": alice_customer, "subtotal": 1000000, "tax": 110000,
                     "issue_date": "2026-01-05", "due_date": "2026-02-04"});
    let mut invoice = String::new();
    for who in [&finance, &admin] {
        let res = app.post_json(who, "/api/invoices", &inv, None).await;
        let v = p.check(who, "POST /api/invoices", &inv, res, &[]).await;
        invoice = id(&v, "invoice_id");
    }
    let pay = json!({"invoice_id": invoice, "amount": 100000, "paid_on": "2026-02-10", "reference": "BCA-1"});
    let res = app.post_json(&finance, "/api/payments", &pay, None).await;
    p.check(
        &finance,
        "POST /api/payments",
        &pay,
        res,
        &[format!("/api/invoices/{invoice}")],
    )
    .await;
    for who in [&finance, &alice] {
        let path = format!("/api/invoices/{invoice}/collection-ticket");
        let res = app.post_json(who, &path, &json!(null), None).await;
        let v = p
            .check(
                who,
                "POST /api/invoices/{id}/collection-ticket",
                &json!(null),
                res,
                &[format!("/api/invoices/{invoice}")],
            )
            .await;
        let _ = id(&v, "ticket_id");
    }

    // ---------------------------------------------------------------- KPI
    let target = json!({"metric_key": "quotations_sent", "assignee_user_id": alice.user_id,
                        "period_month": "2026-03", "target_value": 20});
    let res = app
        .post_json(&manager, "/api/kpi/targets", &target, None)
        .await;
    p.check(&manager, "POST /api/kpi/targets", &target, res, &[])
        .await;
    let mut entry = String::new();
    for who in [&alice, &ops] {
        let e = json!({"metric_key": "quotations_sent", "value": 3});
        let res = app.post_json(who, "/api/kpi/entries", &e, None).await;
        let v = p.check(who, "POST /api/kpi/entries", &e, res, &[]).await;
        if who.user_id == alice.user_id {
            entry = id(&v, "entry_id");
        }
    }
    let res = app
        .upload(
            &alice,
            "/api/kpi/evidence",
            &[("entry_id", &entry)],
            "bukti.png",
            file.clone(),
            None,
        )
        .await;
    p.check(
        &alice,
        "POST /api/kpi/evidence",
        &json!({"entry_id": entry}),
        res,
        &[],
    )
    .await;

    // ---------------------------------------------------------------- objects and imports
    let res = app
        .upload(
            &ops,
            "/api/objects",
            &[("bucket", "ticket-attachments")],
            "foto.png",
            file.clone(),
            None,
        )
        .await;
    p.check(&ops, "POST /api/objects", &json!(null), res, &[])
        .await;
    let csv = "external_ref,channel,company_name,contact_email,contact_phone\n\
               R-1,website,PT Impor Satu,satu@impor-satu.co.id,0816-4444-8888\n";
    let res = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            csv.as_bytes().to_vec(),
            None,
        )
        .await;
    let staged = p
        .check(&marketing, "POST /api/imports", &json!(csv), res, &[])
        .await;
    let import = id(&staged, "import_id");
    let res = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    p.check(
        &marketing,
        "POST /api/imports/{id}/process",
        &json!(csv),
        res,
        &[format!("/api/imports/{import}")],
    )
    .await;

    assert!(p.checked >= 30, "{} responses checked", p.checked);
    assert!(
        p.with_pii >= 3,
        "some responses carry personal data the caller reads ({} of {})",
        p.with_pii,
        p.checked
    );
}
