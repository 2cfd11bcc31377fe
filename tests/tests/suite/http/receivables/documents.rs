//! Payments, refunds and credit notes over HTTP: the lists (filters,
//! pages, the caller's scope), the refusals naming their field, and the
//! invoice detail that shows the documents.

use bizos_bff::auth::Caller;
use bizos_tests::{num, spawn_app, TestApp, TestDb};
use chrono::Days;
use serde_json::{json, Value};

use super::{invoice, lead, s};

async fn post(app: &TestApp, who: &Caller, path: &str, body: Value) -> (u16, Value) {
    app.post_json(who, path, &body, None).await
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {v}"))
}

#[tokio::test]
async fn payments_refunds_and_credit_notes_are_listed_in_scope_and_limited() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let finance = db.create_user(tenant, "finance").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    let ca = lead(&app, &alice, "PT Alice Retur", "01.234.567.8-901.000").await;
    let cb = lead(&app, &bob, "CV Bob Kredit", "02.345.678.9-012.000").await;
    let today = bizos_tests::tenant_today();
    let ago = |d: u64| (today - Days::new(d)).to_string();

    let ia = invoice(&app, &finance, json!({"customer_id": ca, "subtotal": 1000, "tax": 110, "issue_date": ago(10), "terms_days": 30})).await;
    let ib = invoice(&app, &finance, json!({"customer_id": cb, "subtotal": 2000, "tax": 220, "issue_date": ago(10), "terms_days": 30})).await;
    let mut payments = Vec::new();
    for (inv, amount, on) in [(&ia, 500, ago(8)), (&ia, 610, ago(2)), (&ib, 2220, ago(5))] {
        let (status, p) = post(
            &app,
            &finance,
            "/api/payments",
            json!({"invoice_id": s(inv, "invoice_id"), "amount": amount, "paid_on": on}),
        )
        .await;
        assert_eq!(status, 201, "{p}");
        payments.push(p);
    }

    // The list: newest first, filtered by invoice, customer and date, paged.
    let (status, all) = app.get_json(&finance, "/api/payments").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(items(&all).len(), 3);
    assert_eq!(
        items(&all)[0]["payment_no"],
        payments[2]["payment_no"],
        "newest first"
    );
    let (_, of_a) = app
        .get_json(
            &finance,
            &format!("/api/payments?invoice_id={}", s(&ia, "invoice_id")),
        )
        .await;
    assert_eq!(items(&of_a).len(), 2);
    let (_, of_b) = app
        .get_json(&finance, &format!("/api/payments?customer_id={cb}"))
        .await;
    assert_eq!(items(&of_b).len(), 1);
    assert_eq!(of_b["items"][0]["company_name"], "CV Bob Kredit");
    let (_, window) = app
        .get_json(
            &finance,
            &format!("/api/payments?from={}&to={}", ago(6), ago(1)),
        )
        .await;
    assert_eq!(items(&window).len(), 2, "{window}");
    let (_, page1) = app.get_json(&finance, "/api/payments?limit=2").await;
    assert_eq!(items(&page1).len(), 2);
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let (_, page2) = app
        .get_json(&finance, &format!("/api/payments?limit=2&after={cursor}"))
        .await;
    assert_eq!(items(&page2).len(), 1);
    assert!(page2["next_cursor"].is_null());
    // Under RLS like invoices: alice sees her customer's, ops none.
    let (_, mine) = app.get_json(&alice, "/api/payments").await;
    assert_eq!(items(&mine).len(), 2, "{mine}");
    let (_, none) = app.get_json(&ops, "/api/payments").await;
    assert!(items(&none).is_empty(), "{none}");

    // Refunds: over what is left, refused naming amount; a part opens B.
    let pb = s(&payments[2], "payment_id");
    let (status, err) = post(
        &app,
        &finance,
        "/api/refunds",
        json!({"payment_id": pb, "amount": 2220.01, "reason": "retur"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("amount")),
        "{err}"
    );
    let (status, err) = post(
        &app,
        &alice,
        "/api/refunds",
        json!({"payment_id": pb, "amount": 1, "reason": "retur"}),
    )
    .await;
    assert_eq!(status, 403, "{err}");
    let (status, r) = post(
        &app,
        &finance,
        "/api/refunds",
        json!({"payment_id": pb, "amount": 220, "reason": "retur barang"}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(
        (r["invoice_status"].as_str(), num(&r["outstanding"])),
        (Some("ISSUED"), 220.0),
        "{r}"
    );
    let (_, refunds) = app
        .get_json(&finance, &format!("/api/refunds?payment_id={pb}"))
        .await;
    assert_eq!(items(&refunds).len(), 1);
    assert_eq!(refunds["items"][0]["refund_no"], r["refund_no"]);
    let (_, pays) = app
        .get_json(
            &finance,
            &format!("/api/payments?invoice_id={}", s(&ib, "invoice_id")),
        )
        .await;
    assert_eq!(
        (
            num(&pays["items"][0]["refunded"]),
            num(&pays["items"][0]["net_amount"])
        ),
        (220.0, 2000.0),
        "{pays}"
    );
    let (_, alices_refunds) = app.get_json(&alice, "/api/refunds").await;
    assert!(
        items(&alices_refunds).is_empty(),
        "alice reads no refund of bob's customer"
    );

    // Credit notes: over the open balance and another currency refused
    // naming the field; one within it lowers the invoice's outstanding.
    let ib_id = s(&ib, "invoice_id");
    let (status, err) = post(
        &app,
        &finance,
        "/api/credit-notes",
        json!({"invoice_id": ib_id, "amount": 220.01, "reason": "diskon"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("amount")),
        "{err}"
    );
    let (status, err) = post(
        &app,
        &finance,
        "/api/credit-notes",
        json!({"invoice_id": ib_id, "amount": 20, "reason": "diskon", "currency": "USD"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("currency")),
        "{err}"
    );
    let (status, err) = post(
        &app,
        &bob,
        "/api/credit-notes",
        json!({"invoice_id": ib_id, "amount": 20, "reason": "diskon"}),
    )
    .await;
    assert_eq!(status, 403, "{err}");
    let (status, cn) = post(
        &app,
        &finance,
        "/api/credit-notes",
        json!({"invoice_no": ib["invoice_no"], "amount": 20, "reason": "diskon"}),
    )
    .await;
    assert_eq!(status, 201, "{cn}");
    assert!(
        cn["credit_note_no"].as_str().unwrap().starts_with("CN-"),
        "{cn}"
    );
    assert_eq!(num(&cn["outstanding"]), 200.0, "{cn}");

    // The invoice detail shows them; bob (the owner) reads his, alice not.
    let (status, detail) = app.get_json(&bob, &format!("/api/invoices/{ib_id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        detail["credit_notes"][0]["credit_note_no"], cn["credit_note_no"],
        "{detail}"
    );
    assert_eq!(
        detail["refunds"][0]["refund_no"], r["refund_no"],
        "{detail}"
    );
    assert_eq!(
        (num(&detail["amount_credited"]), num(&detail["outstanding"])),
        (20.0, 200.0),
        "{detail}"
    );
    let (_, notes) = app
        .get_json(&bob, &format!("/api/credit-notes?invoice_id={ib_id}"))
        .await;
    assert_eq!(items(&notes).len(), 1);
    let (_, notes) = app.get_json(&alice, "/api/credit-notes").await;
    assert!(items(&notes).is_empty());
    let (_, q) = app
        .get_json(
            &finance,
            &format!(
                "/api/credit-notes?q={}",
                &cn["credit_note_no"].as_str().unwrap()[3..]
            ),
        )
        .await;
    assert_eq!(items(&q).len(), 1, "{q}");
}
