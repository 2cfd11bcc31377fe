//! Numbers keep every digit through the API: a body's number reaches the
//! database as sent, and what the database stores comes back as stored, in
//! the response, in a read, in the stored idempotent response and in its
//! replay. Amounts between 10^14 and 10^15 have 17 significant digits,
//! more than an f64 holds (818181818181818.18 would come back …818.2).
//!
//! The bodies are sent and read as text, so nothing on the test's side
//! parses a number either.

use bizos_tests::{spawn_app, TestDb};
use serde_json::json;

const SUBTOTAL: &str = "818181818181818.18";
/// 11% of the subtotal (the default PPN rule), rounded to cents.
const TAX: &str = "90000000000000.00";
const TOTAL: &str = "908181818181818.18";
const PAID: &str = "808181818181818.17";
const OUTSTANDING: &str = "100000000000000.01";

/// The keys of a JSON text with exactly these values.
fn has(text: &str, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        let needle = format!("\"{k}\":{v}");
        assert!(text.contains(&needle), "{needle} not in {text}");
    }
}

#[tokio::test]
async fn amounts_keep_every_digit_through_writes_reads_and_replays() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("digits").await;
    let finance = db.create_user(tenant, "finance").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let (status, lead) = app
        .post_json(
            &sales,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Angka Panjang",
                    "npwp": "01.234.567.8-901.000"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    let customer = lead["customer_id"].as_str().unwrap();

    let post = |path: &'static str, body: String, key: &'static str| {
        app.request_as(&finance, reqwest::Method::POST, path, Some(key))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let invoice_body =
        format!(r#"{{"customer_id": "{customer}", "subtotal": {SUBTOTAL}, "tax": {TAX}}}"#);
    let res = post("/api/invoices", invoice_body.clone(), "inv-digits")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let created = res.text().await.unwrap();
    has(
        &created,
        &[("subtotal", SUBTOTAL), ("tax", TAX), ("total", TOTAL)],
    );
    let invoice_id = serde_json::from_str::<serde_json::Value>(&created).unwrap()["invoice_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The replay answers the stored response, digit for digit.
    let res = post("/api/invoices", invoice_body, "inv-digits")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.text().await.unwrap(), created);
    let stored: String = sqlx::query_scalar(
        "select response_body::text from idempotency_keys
          where tenant_id = $1 and idempotency_key = 'inv-digits'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(
        stored.contains(SUBTOTAL) && stored.contains(TOTAL),
        "{stored}"
    );

    let today = bizos_tests::tenant_today().to_string();
    let payment_body =
        format!(r#"{{"invoice_id": "{invoice_id}", "amount": {PAID}, "paid_on": "{today}"}}"#);
    let res = post("/api/payments", payment_body.clone(), "pay-digits")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let paid = res.text().await.unwrap();
    has(&paid, &[("outstanding", OUTSTANDING)]);
    let res = post("/api/payments", payment_body, "pay-digits")
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.text().await.unwrap(), paid);

    // What the database stored, read back.
    let read = app
        .get_as(&finance, &format!("/api/invoices/{invoice_id}"))
        .await
        .text()
        .await
        .unwrap();
    has(
        &read,
        &[
            ("subtotal", SUBTOTAL),
            ("tax", TAX),
            ("total", TOTAL),
            ("amount_paid", PAID),
            ("outstanding", OUTSTANDING),
            ("amount", PAID),
        ],
    );
    let stored: String =
        sqlx::query_scalar("select subtotal::text from invoices where invoice_id = $1::uuid")
            .bind(&invoice_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(stored, SUBTOTAL);
}
