//! SOP pre-check (AI-2): the tenant's rules are data
//! (`sop_rules`), evaluated in the database against an invoice draft —
//! through SQL (`precheck_invoice`) and HTTP (`POST /api/precheck/invoice`)
//! with the same verdicts; `invoice_create` applies them (block refuses
//! with the reasons, warn passes with warnings); rules switched off or
//! out of their dates do not apply; another tenant's rules are invisible
//! and never applied; advisory notes of a model (masked) never change the
//! verdict.

use std::collections::BTreeSet;

use bizos_bff::auth::Caller;
use bizos_tests::llm_standin::{StandIn, Step};
use bizos_tests::{code, field, spawn_app, spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// A valid NPWP (Luhn check digit right) and one whose check digit is wrong.
const NPWP_OK: &str = "01.000.013.1-093.000";
const NPWP_BAD_CHECK: &str = "01.234.567.8-901.000";
/// Every draft is issued on this day (the rules have no dates by default).
const ISSUE: &str = "2025-06-02";
/// The day after ISSUE: the earliest due date the default rule lets pass.
const DAY_AFTER: &str = "2025-06-03";

struct Org {
    tenant: Uuid,
    finance: Caller,
    admin: Caller,
    sales: Caller,
    /// Valid NPWP, payment terms 30 days.
    c_ok: Uuid,
    /// No NPWP, no terms.
    c_none: Uuid,
    /// An NPWP with a wrong check digit.
    c_bad: Uuid,
}

async fn customer(
    db: &TestDb,
    tenant: Uuid,
    name: &str,
    npwp: Option<&str>,
    terms: Option<i32>,
) -> Uuid {
    sqlx::query_scalar(
        "insert into customers (tenant_id, company_name, npwp, payment_terms_days)
         values ($1, $2, $3, $4) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .bind(npwp)
    .bind(terms)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn org(db: &TestDb, slug: &str) -> Org {
    let tenant = db.create_tenant(slug).await;
    let finance = db.create_user(tenant, "finance").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let c_ok = customer(
        db,
        tenant,
        &format!("PT Patuh {slug}"),
        Some(NPWP_OK),
        Some(30),
    )
    .await;
    let c_none = customer(db, tenant, &format!("PT Tanpa {slug}"), None, None).await;
    let c_bad = customer(
        db,
        tenant,
        &format!("PT Salah {slug}"),
        Some(NPWP_BAD_CHECK),
        None,
    )
    .await;
    Org {
        tenant,
        finance,
        admin,
        sales,
        c_ok,
        c_none,
        c_bad,
    }
}

/// Every default rule of the tenant made `block`, so each verdict below
/// says whether its rule fired.
async fn all_block(db: &TestDb, tenant: Uuid) {
    let n = sqlx::query("update sop_rules set severity = 'block' where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 5, "one default rule per kind");
}

async fn precheck_sql(db: &TestDb, who: &Caller, draft: &Value) -> Result<Value, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let r = sqlx::query_scalar::<_, Value>("select precheck_invoice($1)")
        .bind(draft)
        .fetch_one(&mut *tx)
        .await;
    tx.rollback().await.ok();
    r
}

async fn precheck_http(app: &TestApp, who: &Caller, draft: &Value) -> Value {
    let (status, body) = app
        .post_json(who, "/api/precheck/invoice", draft, None)
        .await;
    assert_eq!(status, 200, "{draft}: {body}");
    body
}

/// (valid, the fields of the reasons).
fn verdict(v: &Value) -> (bool, BTreeSet<String>) {
    (
        v["valid"]
            .as_bool()
            .unwrap_or_else(|| panic!("no verdict in {v}")),
        v["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["field"].as_str().unwrap().to_owned())
            .collect(),
    )
}

fn fields(f: &[&str]) -> BTreeSet<String> {
    f.iter().map(|s| (*s).to_owned()).collect()
}

fn line(qty: f64, price: f64) -> Value {
    json!({"description": "Freight Jakarta-Surabaya", "quantity": qty, "unit_price": price})
}

/// The table of drafts with known verdicts: (what, draft, valid, fields).
fn table(o: &Org) -> Vec<(&'static str, Value, bool, BTreeSet<String>)> {
    let base = |customer: Uuid, extra: Value| {
        let mut d = json!({"customer_id": customer, "issue_date": ISSUE, "due_date": "2025-07-02"});
        d.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        d
    };
    let c = o.c_ok;
    vec![
        // PPN non-luxury: 12% x 11/12 = 11%, half-up to the rupiah.
        // 1,234,567 x 0.11 = 135,802.37 -> 135,802.
        (
            "ppn 11% exact",
            base(c, json!({"subtotal": 1234567, "tax": 135802})),
            true,
            fields(&[]),
        ),
        (
            "ppn 11% +1",
            base(c, json!({"subtotal": 1234567, "tax": 135803})),
            false,
            fields(&["tax"]),
        ),
        (
            "ppn 11% -1",
            base(c, json!({"subtotal": 1234567, "tax": 135801})),
            false,
            fields(&["tax"]),
        ),
        // Half-up: 1,050 x 0.11 = 115.5 -> 116.
        (
            "ppn half-up",
            base(c, json!({"subtotal": 1050, "tax": 116})),
            true,
            fields(&[]),
        ),
        (
            "ppn half-down is wrong",
            base(c, json!({"subtotal": 1050, "tax": 115})),
            false,
            fields(&["tax"]),
        ),
        // Luxury: 12% of the full price; 1,234,567 x 0.12 = 148,148.04.
        (
            "ppn 12% luxury",
            base(
                c,
                json!({"subtotal": 1234567, "tax": 148148, "luxury": true}),
            ),
            true,
            fields(&[]),
        ),
        (
            "luxury at 11%",
            base(
                c,
                json!({"subtotal": 1234567, "tax": 135802, "luxury": true}),
            ),
            false,
            fields(&["tax"]),
        ),
        (
            "non-luxury at 12%",
            base(c, json!({"subtotal": 1234567, "tax": 148148})),
            false,
            fields(&["tax"]),
        ),
        // Mixed lines: 1,000,000 non-luxury (110,000) + 1,000,000 luxury (120,000).
        (
            "ppn mixed lines",
            base(
                c,
                json!({"tax": 230000, "lines": [
            line(2.0, 500000.0), {"description": "Jam tangan", "quantity": 1, "unit_price": 1000000, "luxury": true}]}),
            ),
            true,
            fields(&[]),
        ),
        (
            "ppn mixed lines -1",
            base(
                c,
                json!({"tax": 229999, "lines": [
            line(2.0, 500000.0), {"description": "Jam tangan", "quantity": 1, "unit_price": 1000000, "luxury": true}]}),
            ),
            false,
            fields(&["tax"]),
        ),
        // Discounts: exactly 20% passes, 20.01% does not.
        (
            "discount 20%",
            base(
                c,
                json!({"tax": 88000, "lines": [
            {"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 20}]}),
            ),
            true,
            fields(&[]),
        ),
        (
            "discount 20.01%",
            base(
                c,
                json!({"tax": 87989, "lines": [
            {"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 20.01}]}),
            ),
            false,
            fields(&["lines[0].discount_pct"]),
        ),
        // Dates: due before issue; on the issue date (the SOP says "after":
        // strictly); the day after; beyond the customer's 30 days; exactly
        // 30 (the base draft).
        (
            "due before issue",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "due_date": "2025-06-01"}),
            ),
            false,
            fields(&["due_date"]),
        ),
        (
            "due on issue",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "due_date": ISSUE}),
            ),
            false,
            fields(&["due_date"]),
        ),
        (
            "due the day after issue",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "due_date": DAY_AFTER}),
            ),
            true,
            fields(&[]),
        ),
        (
            "due beyond terms",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "due_date": "2025-07-03"}),
            ),
            false,
            fields(&["due_date"]),
        ),
        // Totals: the subtotal, a line amount, the total.
        (
            "subtotal != lines",
            base(
                c,
                json!({"subtotal": 1000001, "tax": 110000, "lines": [line(1.0, 1000000.0)]}),
            ),
            false,
            fields(&["subtotal"]),
        ),
        (
            "line amount wrong",
            base(
                c,
                json!({"tax": 110000, "lines": [
            {"description": "Sewa truk", "quantity": 3, "unit_price": 333333.33, "amount": 1000000}]}),
            ),
            false,
            fields(&["lines[0].amount"]),
        ),
        (
            "line amount right",
            base(
                c,
                json!({"tax": 110000, "lines": [
            {"description": "Sewa truk", "quantity": 4, "unit_price": 250000, "amount": 1000000}]}),
            ),
            true,
            fields(&[]),
        ),
        (
            "total wrong",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "total": 1110001}),
            ),
            false,
            fields(&["total"]),
        ),
        (
            "total right",
            base(
                c,
                json!({"subtotal": 1000000, "tax": 110000, "total": 1110000}),
            ),
            true,
            fields(&[]),
        ),
        // NPWP for B2B above 10,000,000: missing, invalid, fine below, B2C.
        (
            "npwp missing",
            base(o.c_none, json!({"subtotal": 20000000, "tax": 2200000})),
            false,
            fields(&["customer_id"]),
        ),
        (
            "npwp missing below threshold",
            base(o.c_none, json!({"subtotal": 9000000, "tax": 990000})),
            true,
            fields(&[]),
        ),
        (
            "npwp check digit",
            base(o.c_bad, json!({"subtotal": 20000000, "tax": 2200000})),
            false,
            fields(&["customer_id"]),
        ),
        (
            "npwp valid",
            base(c, json!({"subtotal": 20000000, "tax": 2200000})),
            true,
            fields(&[]),
        ),
        (
            "npwp b2c",
            base(
                o.c_none,
                json!({"subtotal": 20000000, "tax": 2200000, "b2b": false}),
            ),
            true,
            fields(&[]),
        ),
        (
            "buyer npwp invalid",
            json!({"issue_date": ISSUE, "due_date": DAY_AFTER, "subtotal": 20000000, "tax": 2200000,
                                      "buyer_npwp": "12.345"}),
            false,
            fields(&["buyer_npwp"]),
        ),
        (
            "buyer npwp missing",
            json!({"issue_date": ISSUE, "due_date": DAY_AFTER, "subtotal": 20000000, "tax": 2200000}),
            false,
            fields(&["buyer_npwp"]),
        ),
        (
            "buyer npwp valid",
            json!({"issue_date": ISSUE, "due_date": DAY_AFTER, "subtotal": 20000000, "tax": 2200000,
                                    "buyer_npwp": NPWP_OK}),
            true,
            fields(&[]),
        ),
        // Several at once.
        (
            "three rules",
            base(
                o.c_none,
                json!({"tax": 1, "due_date": "2025-05-01", "lines": [
            {"description": "Sewa truk", "quantity": 1, "unit_price": 20000000, "discount_pct": 30}]}),
            ),
            false,
            fields(&["tax", "lines[0].discount_pct", "due_date", "customer_id"]),
        ),
    ]
}

#[tokio::test]
async fn drafts_get_their_known_verdicts_through_sql_and_http() {
    let db = TestDb::new().await;
    let o = org(&db, "pc-table").await;
    all_block(&db, o.tenant).await;
    let valid: bool =
        sqlx::query_scalar("select bizos.npwp_valid($1) and not bizos.npwp_valid($2)")
            .bind(NPWP_OK)
            .bind(NPWP_BAD_CHECK)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(valid, "the fixture NPWPs are one valid, one not");
    let app = spawn_app(&db).await;
    let cases = table(&o);
    assert!(cases.len() > 25);
    for (what, draft, want_valid, want_fields) in &cases {
        let sql = precheck_sql(&db, &o.finance, draft)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            verdict(&sql),
            (*want_valid, want_fields.clone()),
            "{what} (SQL): {sql}"
        );
        let http = precheck_http(&app, &o.finance, draft).await;
        assert_eq!(http, sql, "{what}: HTTP answers what SQL does");
        // Another role that reads the customer gets the same verdict.
        let other = precheck_http(&app, &o.admin, draft).await;
        assert_eq!(verdict(&other), verdict(&sql), "{what} (super admin)");
    }
    // The check reads as the caller: a salesperson does not read these
    // customers (not theirs), so a draft naming one is not found; a draft
    // without a customer is judged for them too.
    let (_, draft, _, _) = &cases[0];
    let (status, _) = app
        .post_json(&o.sales, "/api/precheck/invoice", draft, None)
        .await;
    assert_eq!(status, 404);
    let (_, draft, valid, _) = cases.iter().find(|c| c.0 == "buyer npwp invalid").unwrap();
    assert_eq!(
        verdict(&precheck_http(&app, &o.sales, draft).await).0,
        *valid
    );
    // The figures say why, to the rupiah.
    let (_, draft, _, _) = &cases[1];
    let v = precheck_sql(&db, &o.finance, draft).await.unwrap();
    assert_eq!(v["figures"]["ppn_expected"], json!(135802), "{v}");
    assert_eq!(v["figures"]["dpp"], json!(1131686.42), "{v}");
    let reason = &v["reasons"][0];
    assert_eq!(
        (
            reason["rule"].as_str(),
            reason["kind"].as_str(),
            reason["severity"].as_str()
        ),
        (Some("vat_ppn"), Some("vat_ppn"), Some("block")),
        "{v}"
    );
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("expected 135802"),
        "{reason}"
    );
    // A draft with lines and no tax gets the expected PPN as its tax.
    let v = precheck_sql(
        &db,
        &o.finance,
        &json!({"customer_id": o.c_ok, "issue_date": ISSUE, "lines": [line(3.0, 333333.33)]}),
    )
    .await
    .unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        (
            &v["figures"]["subtotal"],
            &v["figures"]["tax"],
            &v["figures"]["total"]
        ),
        (&json!(999999.99), &json!(110000), &json!(1109999.99)),
        "{v}"
    );
    assert_eq!(
        v["figures"]["due_date"], "2025-07-02",
        "the customer's 30 days: {v}"
    );
    // Malformed drafts are errors naming the field, not verdicts.
    for (draft, want) in [
        (json!({"subtotal": "lots"}), "subtotal"),
        (
            json!({"lines": [{"description": "x", "quantity": 0, "unit_price": 1}]}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"description": "x", "quantity": 1, "unit_price": 1, "discount_pct": 101}]}),
            "lines[0].discount_pct",
        ),
        (
            json!({"lines": [{"description": "x", "quantity": 1, "unit_price": 1, "colour": "red"}]}),
            "lines[0].colour",
        ),
        (json!({"tax": 1}), "subtotal"),
    ] {
        let err = precheck_sql(&db, &o.finance, &draft).await.unwrap_err();
        assert_eq!(
            (code(&err), field(&err).as_deref()),
            ("P0001".into(), Some(want)),
            "{draft}: {err}"
        );
        let (status, body) = app
            .post_json(&o.finance, "/api/precheck/invoice", &draft, None)
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(want)),
            "{draft}: {body}"
        );
    }
}

async fn rule_id(db: &TestDb, tenant: Uuid, name: &str) -> Uuid {
    sqlx::query_scalar("select rule_id from sop_rules where tenant_id = $1 and name = $2")
        .bind(tenant)
        .bind(name)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn rules_switched_off_or_out_of_their_dates_do_not_apply() {
    let db = TestDb::new().await;
    let o = org(&db, "pc-switch").await;
    all_block(&db, o.tenant).await;
    let app = spawn_app(&db).await;
    let no_npwp = json!({"customer_id": o.c_none, "issue_date": ISSUE, "due_date": DAY_AFTER,
                         "subtotal": 20000000, "tax": 2200000});
    let discount = json!({"customer_id": o.c_ok, "issue_date": ISSUE, "due_date": DAY_AFTER, "tax": 82500,
                          "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 25}]});
    assert!(!verdict(&precheck_http(&app, &o.finance, &no_npwp).await).0);
    assert!(!verdict(&precheck_http(&app, &o.finance, &discount).await).0);

    // Switched off over HTTP: no longer applied, nor listed as applied.
    let npwp = rule_id(&db, o.tenant, "npwp_b2b").await;
    let (status, rule) = app
        .patch_json(
            &o.finance,
            &format!("/api/sop/rules/{npwp}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(
        (status, rule["applies_today"].as_bool()),
        (200, Some(false)),
        "{rule}"
    );
    let v = precheck_http(&app, &o.finance, &no_npwp).await;
    assert_eq!(verdict(&v), (true, fields(&[])), "{v}");
    assert!(
        !v["rules"].as_array().unwrap().contains(&json!("npwp_b2b")),
        "{v}"
    );
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .contains(&json!("max_discount")),
        "{v}"
    );

    // active_to before the issue date: not applied to this draft; a draft
    // issued on active_to still gets it (both ends inclusive).
    let disc = rule_id(&db, o.tenant, "max_discount").await;
    let (status, rule) = app
        .patch_json(
            &o.finance,
            &format!("/api/sop/rules/{disc}"),
            &json!({"active_to": "2025-06-01"}),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(
        verdict(&precheck_http(&app, &o.finance, &discount).await),
        (true, fields(&[]))
    );
    let mut on_the_day = discount.clone();
    on_the_day["issue_date"] = json!("2025-06-01");
    on_the_day["due_date"] = json!("2025-06-02");
    assert_eq!(
        verdict(&precheck_http(&app, &o.finance, &on_the_day).await),
        (false, fields(&["lines[0].discount_pct"]))
    );
    // active_from after the issue date: not applied either.
    let (status, _) = app
        .patch_json(
            &o.finance,
            &format!("/api/sop/rules/{disc}"),
            &json!({"active_to": null, "active_from": "2025-06-03"}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(verdict(&precheck_http(&app, &o.finance, &discount).await).0);
    // Back on (dates cleared), and a stricter second rule of the same kind.
    let (status, _) = app
        .patch_json(
            &o.finance,
            &format!("/api/sop/rules/{disc}"),
            &json!({"active_from": null}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(!verdict(&precheck_http(&app, &o.finance, &discount).await).0);
    let (status, strict) = app
        .post_json(&o.finance, "/api/sop/rules",
                   &json!({"kind": "max_discount", "name": "Diskon maks 10%", "parameters": {"max_pct": 10},
                           "severity": "warn"}), None)
        .await;
    assert_eq!(status, 201, "{strict}");
    assert_eq!(
        strict["effective_parameters"]["max_pct"],
        json!(10),
        "{strict}"
    );
    let mut ten = discount.clone();
    ten["lines"][0]["discount_pct"] = json!(15);
    ten["tax"] = json!(93500);
    let v = precheck_http(&app, &o.finance, &ten).await;
    assert_eq!(
        verdict(&v),
        (true, fields(&["lines[0].discount_pct"])),
        "a warn reason: {v}"
    );
    assert_eq!(v["reasons"][0]["rule"], "Diskon maks 10%", "{v}");
    assert_eq!(v["reasons"][0]["severity"], "warn", "{v}");
    // Deleted: gone from the list and from the verdict.
    let (status, _) = app
        .request_as(
            &o.finance,
            reqwest::Method::DELETE,
            &format!("/api/sop/rules/{}", strict["rule_id"].as_str().unwrap()),
            None,
        )
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        verdict(&precheck_http(&app, &o.finance, &ten).await),
        (true, fields(&[]))
    );
    let (status, list) = app.get_json(&o.sales, "/api/sop/rules").await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(5)),
        "{list}"
    );
}

#[tokio::test]
async fn rule_writes_need_sop_manage_and_parameters_fit_their_kind() {
    let db = TestDb::new().await;
    let o = org(&db, "pc-manage").await;
    let app = spawn_app(&db).await;
    let body = json!({"kind": "max_discount", "name": "Diskon", "parameters": {"max_pct": 15}});
    let (status, _) = app.post_json(&o.sales, "/api/sop/rules", &body, None).await;
    assert_eq!(status, 403, "a salesperson may not add rules");
    let (status, rule) = app.post_json(&o.admin, "/api/sop/rules", &body, None).await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(
        rule["severity"], "block",
        "the kind's default severity: {rule}"
    );
    let id = rule["rule_id"].as_str().unwrap();
    let (status, _) = app
        .patch_json(
            &o.sales,
            &format!("/api/sop/rules/{id}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body_) = app
        .post_json(&o.finance, "/api/sop/rules", &body, None)
        .await;
    assert_eq!(
        (status, body_["error"]["field"].as_str()),
        (409, Some("name")),
        "{body_}"
    );
    for (bad, want) in [
        (
            json!({"kind": "max_discount", "name": "X", "parameters": {"max_pct": 120}}),
            "parameters.max_pct",
        ),
        (
            json!({"kind": "max_discount", "name": "X", "parameters": {"min_days": 3}}),
            "parameters.min_days",
        ),
        (
            json!({"kind": "due_date", "name": "X", "parameters": {"min_days": 10, "default_terms_days": 5}}),
            "parameters.default_terms_days",
        ),
        (
            json!({"kind": "vat_ppn", "name": "X", "parameters": {"luxury": "yes"}}),
            "parameters.luxury",
        ),
        (
            json!({"kind": "max_discount", "name": "X", "active_from": "2025-02-01", "active_to": "2025-01-01"}),
            "active_to",
        ),
        (json!({"kind": "nothing", "name": "X"}), "kind"),
        (
            json!({"kind": "max_discount", "name": "X", "severity": "fatal"}),
            "severity",
        ),
    ] {
        let (status, err) = app
            .post_json(&o.finance, "/api/sop/rules", &bad, None)
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(want)),
            "{bad}: {err}"
        );
    }
    // The database checks every write, not only the RPC's.
    let err = sqlx::query(
        "insert into sop_rules (tenant_id, kind, name, parameters) values ($1, 'max_discount', 'Direct', '{\"max_pct\": -1}')",
    )
    .bind(o.tenant)
    .execute(&db.owner)
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("parameters.max_pct"))
    );
    // A new tenant starts with one rule per kind, the kind's defaults.
    let rules: Vec<(String, String, Value)> = sqlx::query_as(
        "select kind, severity, parameters from sop_rules where tenant_id = $1 and name = kind order by kind",
    )
    .bind(o.tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        rules,
        vec![
            ("due_date".into(), "block".into(), json!({"min_days": 1})),
            (
                "max_discount".into(),
                "block".into(),
                json!({"max_pct": 20})
            ),
            (
                "npwp_b2b".into(),
                "warn".into(),
                json!({"threshold": 10000000, "b2b_default": true})
            ),
            (
                "totals_match".into(),
                "block".into(),
                json!({"tolerance": 0})
            ),
            (
                "vat_ppn".into(),
                "warn".into(),
                json!({"luxury": false, "tolerance": 0})
            ),
        ]
    );
}

#[tokio::test]
async fn invoice_create_refuses_on_block_and_passes_with_warnings_on_warn() {
    let db = TestDb::new().await;
    let o = org(&db, "pc-create").await;
    let app = spawn_app(&db).await;
    let count = |t: Uuid| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from invoices where tenant_id = $1")
                .bind(t)
                .fetch_one(&db.owner)
                .await
                .unwrap()
        }
    };
    // Block (default max_discount): 422 naming the first field, every
    // reason in the body, nothing written.
    let draft = json!({"customer_id": o.c_ok, "issue_date": ISSUE, "due_date": "2025-08-30", "tax": 1,
                       "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 25}]});
    let (status, err) = app
        .post_json(&o.finance, "/api/invoices", &draft, None)
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "lines[0].discount_pct", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("lines[0].discount_pct: 25"),
        "{message}"
    );
    assert!(message.contains("and 1 more: due_date"), "{message}");
    let reasons: Vec<(&str, &str)> = err["error"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap(),
                r["severity"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("tax", "warn"),
            ("lines[0].discount_pct", "block"),
            ("due_date", "block")
        ],
        "{err}"
    );
    assert_eq!(count(o.tenant).await, 0);
    // Through SQL: P0001 with the field, the reasons in DETAIL.
    let mut tx = db.as_user(&o.finance).await;
    let e = sqlx::query("select invoice_create($1)")
        .bind(&draft)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&e), field(&e).as_deref()),
        ("P0001".into(), Some("lines[0].discount_pct"))
    );
    let detail: Value = serde_json::from_str(
        e.as_database_error()
            .and_then(|d| d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
            .and_then(|d| d.detail())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        detail["reasons"].as_array().map(Vec::len),
        Some(3),
        "{detail}"
    );
    tx.rollback().await.unwrap();

    // Warn (default vat_ppn): written, the reason returned as a warning;
    // the lines stored; the subtotal their sum.
    let draft = json!({"customer_id": o.c_ok, "issue_date": ISSUE, "tax": 100000, "status": "DRAFT",
                       "lines": [line(2.0, 300000.0), {"description": "Bongkar muat", "quantity": 1,
                                                       "unit_price": 400000, "discount_pct": 20}]});
    let (status, inv) = app
        .post_json(&o.finance, "/api/invoices", &draft, None)
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(
        (
            inv["subtotal"].as_f64(),
            inv["tax"].as_f64(),
            inv["total"].as_f64()
        ),
        (Some(920000.0), Some(100000.0), Some(1020000.0)),
        "{inv}"
    );
    assert_eq!(
        inv["due_date"], "2025-07-02",
        "the customer's payment terms: {inv}"
    );
    let warnings = inv["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{inv}");
    assert_eq!(
        (warnings[0]["rule"].as_str(), warnings[0]["field"].as_str()),
        (Some("vat_ppn"), Some("tax"))
    );
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("expected 101200"),
        "{inv}"
    );
    let lines: Vec<(i32, f64, f64)> = sqlx::query_as(
        "select line_no, discount_pct::float8, amount::float8 from invoice_lines where invoice_id = $1 order by line_no",
    )
    .bind(inv["invoice_id"].as_str().unwrap().parse::<Uuid>().unwrap())
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(lines, [(1, 0.0, 600000.0), (2, 20.0, 320000.0)]);
    // Without tax: the expected PPN; no warnings.
    let (status, inv) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": o.c_ok, "lines": [line(1.0, 1234567.0)]}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(
        (inv["tax"].as_f64(), &inv["warnings"]),
        (Some(135802.0), &json!([])),
        "{inv}"
    );
    // What existing callers send still passes (no lines, any tax under the
    // warn default), with a warning.
    let (status, inv) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": o.c_none, "subtotal": 1000000, "tax": 0}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["warnings"][0]["field"], "tax", "{inv}");
    // Lines go only with their invoice or onto a DRAFT.
    let issued: Uuid = sqlx::query_scalar(
        "select invoice_id from invoices where tenant_id = $1 and status = 'ISSUED' limit 1",
    )
    .bind(o.tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let mut tx = db.as_user(&o.finance).await;
    let e = sqlx::query(
        "insert into invoice_lines (tenant_id, invoice_id, line_no, description, quantity, unit_price, amount)
         values ($1, $2, 9, 'Tambahan', 1, 1, 1)",
    )
    .bind(o.tenant)
    .bind(issued)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        (code(&e), field(&e).as_deref()),
        ("P0001".into(), Some("invoice_id")),
        "{e}"
    );
    tx.rollback().await.unwrap();
    // The due-date rule switched off does not lift the table's own check.
    sqlx::query("update sop_rules set enabled = false where tenant_id = $1 and kind = 'due_date'")
        .bind(o.tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let (status, err) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": o.c_ok, "subtotal": 1000, "tax": 110,
                           "issue_date": ISSUE, "due_date": "2025-06-01"}),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("due_date")),
        "{err}"
    );
    assert!(err["error"]["reasons"].is_null(), "no rule refused: {err}");
}

/// The SOP says the due date is *after* the issue date: strictly. The
/// default rule refuses a due date on the issue date, in the pre-check and
/// in invoice_create alike, and passes the day after; a tenant that accepts
/// the issue date says so with min_days 0.
#[tokio::test]
async fn the_due_date_is_strictly_after_the_issue_date_unless_the_tenant_allows_the_day() {
    let db = TestDb::new().await;
    let o = org(&db, "pc-due").await;
    let app = spawn_app(&db).await;
    let draft = |due: &str| {
        json!({"customer_id": o.c_ok, "issue_date": ISSUE, "due_date": due,
               "subtotal": 1000000, "tax": 110000})
    };

    let on_the_day = precheck_http(&app, &o.finance, &draft(ISSUE)).await;
    assert_eq!(
        verdict(&on_the_day),
        (false, fields(&["due_date"])),
        "{on_the_day}"
    );
    let reason = &on_the_day["reasons"][0];
    assert_eq!(
        (reason["rule"].as_str(), reason["severity"].as_str()),
        (Some("due_date"), Some("block")),
        "{reason}"
    );
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("is not after the issue date 2025-06-02"),
        "{reason}"
    );
    let day_after = precheck_http(&app, &o.finance, &draft(DAY_AFTER)).await;
    assert_eq!(verdict(&day_after), (true, fields(&[])), "{day_after}");

    // invoice_create judges the same: 422 on the day (also as terms of 0
    // days), 201 the day after.
    for body in [
        draft(ISSUE),
        json!({"customer_id": o.c_ok, "issue_date": ISSUE, "terms_days": 0,
               "subtotal": 1000000, "tax": 110000}),
    ] {
        let (status, err) = app
            .post_json(&o.finance, "/api/invoices", &body, None)
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("due_date")),
            "{body}: {err}"
        );
    }
    let (status, inv) = app
        .post_json(&o.finance, "/api/invoices", &draft(DAY_AFTER), None)
        .await;
    assert_eq!(
        (status, inv["due_date"].as_str()),
        (201, Some(DAY_AFTER)),
        "{inv}"
    );

    // The tenant accepts payment on the issue date: min_days 0.
    let due = rule_id(&db, o.tenant, "due_date").await;
    let (status, rule) = app
        .patch_json(
            &o.finance,
            &format!("/api/sop/rules/{due}"),
            &json!({"parameters": {"min_days": 0}}),
        )
        .await;
    assert_eq!(
        (status, &rule["effective_parameters"]["min_days"]),
        (200, &json!(0)),
        "{rule}"
    );
    let v = precheck_http(&app, &o.finance, &draft(ISSUE)).await;
    assert_eq!(verdict(&v), (true, fields(&[])), "{v}");
    let (status, inv) = app
        .post_json(&o.finance, "/api/invoices", &draft(ISSUE), None)
        .await;
    assert_eq!(
        (status, inv["due_date"].as_str()),
        (201, Some(ISSUE)),
        "{inv}"
    );
    // ... but never before it.
    let v = precheck_http(&app, &o.finance, &draft("2025-06-01")).await;
    assert_eq!(verdict(&v), (false, fields(&["due_date"])), "{v}");
}

/// V41 (the data move of the new default) moves the due-date rules that
/// V29 seeded and nobody changed (min_days 0, never updated) to min_days
/// 1, with the kind's default, and leaves a rule a tenant chose alone.
#[tokio::test]
async fn v45_moves_only_the_untouched_default_due_date_rules() {
    const V41: &str = include_str!("../../../sql/migrations/V41__due_date_after_issue_date.sql");
    let db = TestDb::new().await;
    let seeded = org(&db, "pc-v45-seeded").await;
    let chosen = org(&db, "pc-v45-chosen").await;
    let app = spawn_app(&db).await;
    // The state before V41: the kind's default and a rule as V29 seeded it
    // (inserted once, with the old default).
    sqlx::raw_sql(&format!(
        "update sop_rule_kinds set defaults = '{{\"min_days\": 0}}' where code = 'due_date';
         delete from sop_rules where tenant_id = '{t}' and kind = 'due_date';
         insert into sop_rules (tenant_id, kind, name, parameters, severity)
         values ('{t}', 'due_date', 'due_date', '{{\"min_days\": 0}}', 'block');",
        t = seeded.tenant
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A tenant that chose 0 (through the API, after its rule was seeded).
    let due = rule_id(&db, chosen.tenant, "due_date").await;
    let (status, rule) = app
        .patch_json(
            &chosen.finance,
            &format!("/api/sop/rules/{due}"),
            &json!({"parameters": {"min_days": 0}}),
        )
        .await;
    assert_eq!(status, 200, "{rule}");
    let on_the_day = |c: Uuid| {
        json!({"customer_id": c, "issue_date": ISSUE, "due_date": ISSUE,
               "subtotal": 1000000, "tax": 110000})
    };
    assert!(verdict(&precheck_http(&app, &seeded.finance, &on_the_day(seeded.c_ok)).await).0);

    sqlx::raw_sql(V41).execute(&db.owner).await.unwrap();

    let params = |t: Uuid| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, Value>(
                "select parameters from sop_rules where tenant_id = $1 and kind = 'due_date'",
            )
            .bind(t)
            .fetch_one(&db.owner)
            .await
            .unwrap()
        }
    };
    assert_eq!(params(seeded.tenant).await, json!({"min_days": 1}));
    assert_eq!(params(chosen.tenant).await, json!({"min_days": 0}));
    let defaults: Value =
        sqlx::query_scalar("select defaults from sop_rule_kinds where code = 'due_date'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(defaults, json!({"min_days": 1}));
    assert_eq!(
        verdict(&precheck_http(&app, &seeded.finance, &on_the_day(seeded.c_ok)).await),
        (false, fields(&["due_date"]))
    );
    assert!(verdict(&precheck_http(&app, &chosen.finance, &on_the_day(chosen.c_ok)).await).0);
}

#[tokio::test]
async fn another_tenants_rules_are_invisible_and_never_applied() {
    let db = TestDb::new().await;
    let a = org(&db, "pc-a").await;
    let b = org(&db, "pc-b").await;
    let app = spawn_app(&db).await;
    // Tenant A: discounts over 10% block, and a rule only A has.
    sqlx::query(
        "update sop_rules set parameters = '{\"max_pct\": 10}' where tenant_id = $1 and kind = 'max_discount'",
    )
    .bind(a.tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query(
        "insert into sop_rules (tenant_id, kind, name, parameters) values ($1, 'due_date', 'Only A', '{\"min_days\": 60}')",
    )
    .bind(a.tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    let a_rules: i64 = sqlx::query_scalar("select count(*) from sop_rules where tenant_id = $1")
        .bind(a.tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(a_rules, 6, "tenant A's rules exist");
    let draft = |c: Uuid| {
        json!({"customer_id": c, "issue_date": ISSUE, "due_date": DAY_AFTER, "tax": 94600,
               "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 14}]})
    };
    let va = precheck_http(&app, &a.finance, &draft(a.c_ok)).await;
    assert_eq!(
        verdict(&va),
        (false, fields(&["lines[0].discount_pct", "due_date"])),
        "{va}"
    );
    let vb = precheck_http(&app, &b.finance, &draft(b.c_ok)).await;
    assert_eq!(
        verdict(&vb),
        (true, fields(&[])),
        "A's rules are not B's: {vb}"
    );
    assert!(
        !vb["rules"].as_array().unwrap().contains(&json!("Only A")),
        "{vb}"
    );

    // B reads only its own rules, and cannot change A's.
    let (status, list) = app.get_json(&b.admin, "/api/sop/rules").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "vat_ppn",
            "max_discount",
            "due_date",
            "totals_match",
            "npwp_b2b"
        ],
        "{list}"
    );
    let mut tx = db.as_user(&b.admin).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from sop_rules where tenant_id = $1")
        .bind(a.tenant)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0);
    let changed = sqlx::query("update sop_rules set enabled = false where tenant_id = $1")
        .bind(a.tenant)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    tx.rollback().await.unwrap();
    let only_a = rule_id(&db, a.tenant, "Only A").await;
    let (status, _) = app
        .patch_json(
            &b.admin,
            &format!("/api/sop/rules/{only_a}"),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 404);
    // B's customer is not A's to pre-check.
    let (status, _) = app
        .post_json(&a.finance, "/api/precheck/invoice", &draft(b.c_ok), None)
        .await;
    assert_eq!(status, 404);
    // And A's invoice_create applies A's rules, B's B's.
    let (status, _) = app
        .post_json(&a.finance, "/api/invoices", &draft(a.c_ok), None)
        .await;
    assert_eq!(status, 422);
    let (status, inv) = app
        .post_json(&b.finance, "/api/invoices", &draft(b.c_ok), None)
        .await;
    assert_eq!(status, 201, "{inv}");
}

async fn notes_app(db: &TestDb, standin: &StandIn) -> TestApp {
    sqlx::query("select llm_provider_set('gemini', 'gemini', $1, 'gemini')")
        .bind(&standin.base_url_gemini)
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::query("select llm_route_set('precheck_notes', $1)")
        .bind(json!([{"provider": "gemini", "model": "g-1"}]))
        .execute(&db.owner)
        .await
        .unwrap();
    spawn_app_with(
        db,
        &[
            ("BIZOS_LLM_KEYS_GEMINI", "gk-1"),
            ("BIZOS_LLM_RETRIES", "0"),
            ("BIZOS_LLM_BUDGET_MS", "15000"),
        ],
    )
    .await
}

#[tokio::test]
async fn advisory_notes_are_masked_and_never_change_the_verdict() {
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    let o = org(&db, "pc-notes").await;
    let app = notes_app(&db, &standin).await;
    let phone = "0812-3456-7890";
    let draft = json!({"customer_id": o.c_ok, "issue_date": ISSUE, "due_date": "2025-09-30",
                       "subtotal": 1000000, "tax": 110000, "buyer_npwp": NPWP_OK,
                       "notes": format!("Hubungi Budi di {phone} untuk pengiriman")});
    let plain = precheck_http(&app, &o.finance, &draft).await;
    assert_eq!(verdict(&plain), (false, fields(&["due_date"])), "{plain}");
    assert!(plain.get("notes").is_none(), "{plain}");
    assert!(standin.requests().is_empty(), "no model without notes=true");

    standin.script(Step::text("The description of the goods is missing."));
    let (status, with_notes) = app
        .post_json(&o.finance, "/api/precheck/invoice?notes=true", &draft, None)
        .await;
    assert_eq!(status, 200, "{with_notes}");
    assert_eq!(with_notes["notes"]["source"], "model", "{with_notes}");
    assert_eq!(
        with_notes["notes"]["text"],
        "The description of the goods is missing."
    );
    let mut same = with_notes.clone();
    same.as_object_mut().unwrap().remove("notes");
    assert_eq!(same, plain, "notes change nothing else");
    let sent = standin.requests();
    assert_eq!(sent.len(), 1);
    let body = sent[0].body.to_string();
    assert!(body.contains("due_date"), "the model saw the draft: {body}");
    for secret in [phone, "3456-7890", NPWP_OK, "0010000131093000"] {
        assert!(
            !body.contains(secret),
            "{secret} reached the provider: {body}"
        );
    }
    assert!(
        body.contains("[PHONE_1]") && body.contains("[NPWP_1]"),
        "{body}"
    );

    // The provider down: the same verdict, no notes.
    standin.script(Step::status(500));
    let mut other = draft.clone();
    other["notes"] = json!("Kirim sebelum Jumat");
    let (status, down) = app
        .post_json(&o.finance, "/api/precheck/invoice?notes=true", &other, None)
        .await;
    assert_eq!(status, 200, "{down}");
    assert_eq!(down["notes"]["source"], "unavailable", "{down}");
    assert!(down["notes"]["text"].is_null(), "{down}");
    assert_eq!(verdict(&down), verdict(&plain), "{down}");
}
