//! Every write route's response shows only what the caller may
//! read. For each write route and each role allowed to call it, the
//! personal data `bizos.pii_detect` finds in the response must be data the
//! caller sent or reads through their own read path (the GET routes of the
//! objects concerned). The fixture is an RFQ whose contact details (phone,
//! e-mail, NPWP) GET /api/tickets/{id} masks for ops.

use std::collections::BTreeSet;

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

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
            who.claims["app_role"]
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
            who.claims["app_role"]
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

/// The roles of `tenant` that hold `permission` (role_permissions), so a
/// route is tried as every role allowed to call it.
async fn roles_with(db: &TestDb, tenant: Uuid, permission: &str) -> Vec<String> {
    let roles: Vec<String> = sqlx::query_scalar(
        "select app_role from role_permissions where tenant_id = $1 and permission = $2 order by 1",
    )
    .bind(tenant)
    .bind(permission)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(!roles.is_empty(), "nobody holds {permission}");
    roles
}

#[tokio::test]
async fn write_responses_show_only_what_the_caller_may_read() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let mut users = std::collections::BTreeMap::new();
    for role in [
        "super_admin",
        "director",
        "marketing_manager",
        "sales_manager",
        "salesperson",
        "ops", // department OPS
        "finance",
    ] {
        users.insert(role.to_owned(), db.create_user(tenant, role).await);
    }
    let user = |role: &str| users[role].clone();
    let (admin, marketing, manager, alice, ops) = (
        user("super_admin"),
        user("marketing_manager"),
        user("sales_manager"),
        user("salesperson"),
        user("ops"),
    );
    db.set_manager(&alice, &manager).await;
    let app = spawn_app(&db).await;
    let mut p = Probe {
        db: &db,
        app: &app,
        with_pii: 0,
        checked: 0,
    };

    // ---------------------------------------------------------------- fixtures
    // RFQs with real-looking contact details, to OPS and to FIN, from
    // marketing's lead (unassigned, so managers may route it).
    let rfq_lead = |dept: &str| {
        json!({"channel": "website", "company_name": format!("PT Maju Jaya {dept}"), "npwp": RFQ_NPWP,
            "contact_name": "Budi Santoso", "contact_email": RFQ_EMAIL, "contact_phone": RFQ_PHONE,
            "rfq": {"origin": "Jakarta", "destination": "Surabaya", "dept_target": dept, "weight_kg": 1200}})
    };
    let mut rfqs = Vec::new();
    for dept in ["OPS", "FIN"] {
        let sent = rfq_lead(dept);
        let res = app.post_json(&marketing, "/api/leads", &sent, None).await;
        let lead = p
            .check(&marketing, "POST /api/leads", &sent, res, &[])
            .await;
        rfqs.push((
            id(&lead, "lead_id"),
            format!("/api/tickets/{}", id(&lead, "ticket_id")),
        ));
    }
    let (rfq_lead_id, rfq_path) = rfqs[0].clone();
    let fin_rfq_path = rfqs[1].1.clone();
    // The fixture holds personal data the detector finds; GET shows it to
    // marketing and masks it for ops.
    let (_, full) = app.get_json(&admin, &rfq_path).await;
    assert!(
        pii(&db, &full.to_string()).await.len() >= 2,
        "the RFQ fixture holds personal data: {full}"
    );
    let (status, masked) = app.get_json(&ops, &rfq_path).await;
    assert_eq!(status, 200, "{masked}");
    assert!(
        pii(&db, &masked.to_string()).await.is_empty(),
        "ops read the RFQ masked: {masked}"
    );
    // Alice's team gets the OPS RFQ's lead (so the sales roles see the RFQ).
    let assign = json!({"salesperson_user_id": alice.user_id});
    let path = format!("/api/leads/{rfq_lead_id}/assign");
    let res = app.post_json(&manager, &path, &assign, None).await;
    p.check(
        &manager,
        "POST /api/leads/{id}/assign",
        &assign,
        res,
        &[format!("/api/leads/{rfq_lead_id}")],
    )
    .await;
    let ticket_for = |role: &str| {
        if role == "finance" {
            fin_rfq_path.clone()
        } else {
            rfq_path.clone()
        }
    };

    // ---------------------------------------------------------------- leads
    let mut alice_customer = String::new();
    for (i, role) in roles_with(&db, tenant, "lead.create")
        .await
        .into_iter()
        .enumerate()
    {
        let who = user(&role);
        // (Distinct identifiers: a shared one would hand the lead over.)
        let sent = json!({"channel": "referral", "company_name": format!("PT Pelanggan {role}"),
            "contact_email": format!("kontak.{role}@pelanggan.co.id"),
            "contact_phone": format!("0813-2222-44{i}{i}")});
        let res = app.post_json(&who, "/api/leads", &sent, None).await;
        let v = p.check(&who, "POST /api/leads", &sent, res, &[]).await;
        if role == "salesperson" {
            alice_customer = id(&v, "customer_id");
        }
        let path = format!("/api/leads/{}", id(&v, "lead_id"));
        if roles_with(&db, tenant, "lead.update").await.contains(&role) {
            let patch = json!({"notes": "call back on Monday"});
            let res = app.patch_json(&who, &path, &patch).await;
            p.check(
                &who,
                "PATCH /api/leads/{id}",
                &patch,
                res,
                std::slice::from_ref(&path),
            )
            .await;
        }
    }
    for role in roles_with(&db, tenant, "lead.assign").await {
        let who = user(&role);
        let sent = json!({"channel": "event", "company_name": format!("PT Kolam {role}"),
            "contact_email": format!("kolam.{role}@kolam.co.id")});
        let res = app.post_json(&marketing, "/api/leads", &sent, None).await;
        let pool = p
            .check(&marketing, "POST /api/leads", &sent, res, &[])
            .await;
        let lead = id(&pool, "lead_id");
        let res = app
            .post_json(&who, &format!("/api/leads/{lead}/assign"), &assign, None)
            .await;
        p.check(
            &who,
            "POST /api/leads/{id}/assign",
            &assign,
            res,
            &[format!("/api/leads/{lead}")],
        )
        .await;
    }

    // ---------------------------------------------------------------- tickets
    let general = json!({"ticket_type": "general_request", "subject": "Forklift rusak", "dept_target": "OPS"});
    for role in roles_with(&db, tenant, "ticket.create").await {
        let who = user(&role);
        let res = app.post_json(&who, "/api/tickets", &general, None).await;
        let v = p.check(&who, "POST /api/tickets", &general, res, &[]).await;
        let _ = id(&v, "ticket_id");
        let inquiry = json!({"ticket_type": "inquiry_tariff", "subject": "Tarif", "dept_target": "OPS",
            "origin": "Medan", "destination": "Batam", "contact_email": format!("ani.{role}@pabrik-kertas.co.id"),
            "contact_phone": "0815-3333-7777", "company_name": "PT Pabrik Kertas"});
        let res = app.post_json(&who, "/api/tickets", &inquiry, None).await;
        p.check(&who, "POST /api/tickets", &inquiry, res, &[]).await;
    }
    for role in roles_with(&db, tenant, "ticket.update").await {
        let who = user(&role);
        let path = ticket_for(&role);
        let dept_worker = if role == "super_admin" {
            ops.user_id
        } else {
            who.user_id
        };
        for patch in [
            json!({"priority": "high"}),
            json!({"status": "IN_PROGRESS", "note": "dicek"}),
            json!({"assignee_user_id": dept_worker}),
            json!({"subject": format!("RFQ Jakarta - Surabaya ({role})")}),
        ] {
            let res = app.patch_json(&who, &path, &patch).await;
            let v = p
                .check(
                    &who,
                    "PATCH /api/tickets/{id}",
                    &patch,
                    res,
                    std::slice::from_ref(&path),
                )
                .await;
            // The same shape as GET /api/tickets/{id} (without its lists).
            let (_, got) = app.get_json(&who, &path).await;
            for key in [
                "company_name",
                "contact_email",
                "contact_phone",
                "status",
                "subject",
            ] {
                assert_eq!(v[key], got[key], "{role} {key}: {v} vs {got}");
            }
        }
    }
    let file = [PNG.to_vec(), vec![7; 200]].concat();
    for role in roles_with(&db, tenant, "ticket.message").await {
        let who = user(&role);
        let path = ticket_for(&role);
        let msg = json!({"body": format!("Tarif sedang dihitung ({role})")});
        let res = app
            .post_json(&who, &format!("{path}/messages"), &msg, None)
            .await;
        p.check(
            &who,
            "POST /api/tickets/{id}/messages",
            &msg,
            res,
            std::slice::from_ref(&path),
        )
        .await;
        let res = app
            .upload(
                &who,
                &format!("{path}/attachments"),
                &[],
                "foto.png",
                file.clone(),
                None,
            )
            .await;
        p.check(
            &who,
            "POST /api/tickets/{id}/attachments",
            &json!(null),
            res,
            std::slice::from_ref(&path),
        )
        .await;
        let res = app
            .upload(
                &who,
                "/api/objects",
                &[("bucket", "ticket-attachments")],
                "foto.png",
                file.clone(),
                None,
            )
            .await;
        p.check(&who, "POST /api/objects", &json!(null), res, &[])
            .await;
    }

    // ---------------------------------------------------------------- receivables
    let inv = json!({"customer_id": alice_customer, "subtotal": 1000000, "tax": 110000,
                     "issue_date": "2026-01-05", "due_date": "2026-02-04"});
    let mut invoice = String::new();
    for role in roles_with(&db, tenant, "invoice.create").await {
        let who = user(&role);
        let res = app.post_json(&who, "/api/invoices", &inv, None).await;
        let v = p.check(&who, "POST /api/invoices", &inv, res, &[]).await;
        invoice = id(&v, "invoice_id");
    }
    for (i, role) in roles_with(&db, tenant, "payment.record")
        .await
        .into_iter()
        .enumerate()
    {
        let who = user(&role);
        let pay = json!({"invoice_id": invoice, "amount": 100000, "paid_on": "2026-02-10",
                         "reference": format!("BCA-{i}")});
        let res = app.post_json(&who, "/api/payments", &pay, None).await;
        p.check(
            &who,
            "POST /api/payments",
            &pay,
            res,
            &[format!("/api/invoices/{invoice}")],
        )
        .await;
    }
    for role in roles_with(&db, tenant, "collection.create").await {
        let who = user(&role);
        let path = format!("/api/invoices/{invoice}/collection-ticket");
        let res = app.post_json(&who, &path, &json!(null), None).await;
        let v = p
            .check(
                &who,
                "POST /api/invoices/{id}/collection-ticket",
                &json!(null),
                res,
                &[format!("/api/invoices/{invoice}")],
            )
            .await;
        let _ = id(&v, "ticket_id");
    }

    // ---------------------------------------------------------------- KPI
    for (i, role) in roles_with(&db, tenant, "kpi.target.manage")
        .await
        .into_iter()
        .enumerate()
    {
        let who = user(&role);
        let target = json!({"metric_key": "quotations_sent", "assignee_user_id": who.user_id,
                            "period_month": format!("2026-{:02}", i + 1), "target_value": 20});
        let res = app.post_json(&who, "/api/kpi/targets", &target, None).await;
        p.check(&who, "POST /api/kpi/targets", &target, res, &[])
            .await;
    }
    for role in roles_with(&db, tenant, "kpi.entry.create").await {
        let who = user(&role);
        let e = json!({"metric_key": "quotations_sent", "value": 3});
        let res = app.post_json(&who, "/api/kpi/entries", &e, None).await;
        let v = p.check(&who, "POST /api/kpi/entries", &e, res, &[]).await;
        let entry = id(&v, "entry_id");
        let res = app
            .upload(
                &who,
                "/api/kpi/evidence",
                &[("entry_id", &entry)],
                "bukti.png",
                file.clone(),
                None,
            )
            .await;
        p.check(
            &who,
            "POST /api/kpi/evidence",
            &json!({"entry_id": entry}),
            res,
            &[],
        )
        .await;
    }

    // ---------------------------------------------------------------- imports
    for (i, role) in roles_with(&db, tenant, "lead.create")
        .await
        .into_iter()
        .enumerate()
    {
        let who = user(&role);
        let csv = format!(
            "external_ref,channel,company_name,contact_email,contact_phone\n\
             R-{role},website,PT Impor {role},satu.{role}@impor-satu.co.id,0816-4444-88{i}{i}\n"
        );
        let res = app
            .upload(
                &who,
                "/api/imports",
                &[("module", "leads")],
                "leads.csv",
                csv.clone().into_bytes(),
                None,
            )
            .await;
        let staged = p
            .check(&who, "POST /api/imports", &json!(csv), res, &[])
            .await;
        let import = id(&staged, "import_id");
        let res = app
            .post_json(
                &who,
                &format!("/api/imports/{import}/process"),
                &json!(null),
                None,
            )
            .await;
        p.check(
            &who,
            "POST /api/imports/{id}/process",
            &json!(csv),
            res,
            &[format!("/api/imports/{import}")],
        )
        .await;
    }

    assert!(p.checked >= 60, "{} responses checked", p.checked);
    assert!(
        p.with_pii >= 3,
        "some responses carry personal data the caller reads ({} of {})",
        p.with_pii,
        p.checked
    );
}
