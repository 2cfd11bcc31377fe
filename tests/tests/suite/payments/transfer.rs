//! Manual transfers: the tenant uploads a proof (object storage), the
//! operator rejects one with a reason and approves another, which records
//! the payment.

use bizos_tests::TestDb;
use serde_json::json;

use super::*;

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

#[tokio::test]
async fn a_proof_is_rejected_with_a_reason_and_another_approved_records_the_payment() {
    let db = TestDb::new().await;
    clock(&db, "2026-03-05T03:00:00Z").await;
    let app = app(&db, &[]).await;
    let (t, admin) = tenant(&db, "pay-transfer").await;
    let sales = db.create_user(t, "salesperson").await;
    let inv = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    let path = format!("/api/billing/invoices/{inv}/transfer-proofs");

    // Only who pays the operator may send a proof; a proof is a file.
    let (status, body) = app
        .upload(&sales, &path, &[], "t.pdf", PDF.to_vec(), None)
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .upload(&admin, &path, &[], "t.txt", b"just text".to_vec(), None)
        .await;
    assert_eq!(status, 415, "{body}");
    let other = uuid::Uuid::new_v4();
    let (status, body) = app
        .upload(
            &admin,
            &format!("/api/billing/invoices/{other}/transfer-proofs"),
            &[],
            "t.pdf",
            PDF.to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let (status, first) = app
        .upload(&admin, &path, &[], "t.pdf", PDF.to_vec(), None)
        .await;
    assert_eq!(
        (status, first["status"].as_str()),
        (201, Some("pending")),
        "{first}"
    );
    let (status, listed) = operator(
        &app,
        reqwest::Method::GET,
        "/api/operator/payments/transfer-proofs",
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["tenant_id"], json!(t));
    assert!(listed["items"][0]["object_key"]
        .as_str()
        .unwrap()
        .contains("/transfer-proofs/"));
    // A tenant's token is no operator's.
    let (status, _) = app
        .get_json(&admin, "/api/operator/payments/transfer-proofs")
        .await;
    assert_eq!(status, 401);

    let reject = format!(
        "/api/operator/payments/transfer-proofs/{}/reject",
        first["proof_id"].as_str().unwrap()
    );
    let (status, body) = operator(
        &app,
        reqwest::Method::POST,
        &reject,
        Some(json!({"reason": "  "})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );
    let (status, body) = operator(
        &app,
        reqwest::Method::POST,
        &reject,
        Some(json!({"reason": "the amount on the slip is 11,000"})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("rejected")),
        "{body}"
    );
    assert_eq!(body["reject_reason"], "the amount on the slip is 11,000");
    // Decided once.
    let (status, body) = operator(
        &app,
        reqwest::Method::POST,
        &reject,
        Some(json!({"reason": "again"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("proof_id")),
        "{body}"
    );
    assert_eq!(
        state(&db, inv).await,
        ("finalized".into(), "active".into(), 0)
    );

    // The tenant sees the reason.
    let (_, mine) = app.get_json(&admin, "/api/billing/transfer-proofs").await;
    assert_eq!(
        mine["items"][0]["reject_reason"],
        "the amount on the slip is 11,000"
    );

    // A second proof, approved for part, then the rest: paid once the
    // payments reach the total.
    let (_, second) = app
        .upload(&admin, &path, &[], "t2.pdf", PDF.to_vec(), None)
        .await;
    let approve = format!(
        "/api/operator/payments/transfer-proofs/{}/approve",
        second["proof_id"].as_str().unwrap()
    );
    let (status, body) = operator(
        &app,
        reqwest::Method::POST,
        &approve,
        Some(json!({"amount": 60000})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    assert_eq!(body["payment"]["invoice_status"], "finalized");
    assert_eq!(body["payment"]["outstanding"], json!(50000));
    let (_, third) = app
        .upload(&admin, &path, &[], "t3.pdf", PDF.to_vec(), None)
        .await;
    let approve = format!(
        "/api/operator/payments/transfer-proofs/{}/approve",
        third["proof_id"].as_str().unwrap()
    );
    let (status, body) = operator(&app, reqwest::Method::POST, &approve, Some(json!({}))).await;
    assert_eq!(
        (status, body["payment"]["invoice_status"].as_str()),
        (200, Some("paid")),
        "{body}"
    );
    assert_eq!(state(&db, inv).await, ("paid".into(), "active".into(), 2));
    let (_, payments) = app.get_json(&admin, "/api/billing/payments").await;
    let mut amounts: Vec<&str> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["amount"].as_str().unwrap())
        .collect();
    amounts.sort();
    assert_eq!(amounts, ["50000", "60000"]);
    // A paid invoice takes no more proofs.
    let (status, body) = app
        .upload(&admin, &path, &[], "t4.pdf", PDF.to_vec(), None)
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("billing_invoice_id")),
        "{body}"
    );
}
