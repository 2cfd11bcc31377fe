//! Provider webhooks: the signature schemes (valid, tampered body, wrong
//! secret, expired timestamp, rotated secret), every delivery stored raw,
//! one effect per event however often it is replayed, and events in any
//! order (a payment after a failure wins; a failure after a payment
//! changes nothing).

use bizos_tests::payment_sender::{now, stripe_header};
use bizos_tests::TestDb;
use serde_json::json;

use super::*;

async fn deliveries(db: &TestDb) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "select provider, outcome, refusal from control.payment_deliveries order by received_at, delivery_id",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn stripe_signatures_valid_tampered_wrong_secret_expired_and_rotated() {
    let db = TestDb::new().await;
    clock(&db, "2026-03-05T03:00:00Z").await;
    let app = app(&db, &[]).await;
    let (t, _) = tenant(&db, "pay-sig").await;
    let inv = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    let event = stripe_event("sig1", "invoice.payment_failed", inv, 110_000, "in_sig1");
    let raw = serde_json::to_vec(&event).unwrap();

    // Tampered body: signed, then one byte changed.
    let header = stripe_header(&[STRIPE_NEW], now(), &raw);
    let mut tampered = raw.clone();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'2';
    let (status, body) = post_stripe_raw(&app, tampered, Some(header.clone())).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    // Wrong secret.
    let (status, _) = post_stripe_raw(
        &app,
        raw.clone(),
        Some(stripe_header(
            &["whsec_someone_else_0123456789"],
            now(),
            &raw,
        )),
    )
    .await;
    assert_eq!(status, 401);
    // Expired: older than the 300 s window, and as far in the future.
    let (status, _) = post_stripe_raw(
        &app,
        raw.clone(),
        Some(stripe_header(&[STRIPE_NEW], now() - 301, &raw)),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post_stripe_raw(
        &app,
        raw.clone(),
        Some(stripe_header(&[STRIPE_NEW], now() + 400, &raw)),
    )
    .await;
    assert_eq!(status, 401);
    // No header.
    let (status, _) = post_stripe_raw(&app, raw.clone(), None).await;
    assert_eq!(status, 401);
    // Nothing happened to the invoice.
    assert_eq!(
        state(&db, inv).await,
        ("finalized".into(), "active".into(), 0)
    );

    // Rotation: Stripe signs with the old and the new secret while the
    // roll lasts; we accept either alone, and a header with a stranger's
    // signature beside ours.
    let (status, body) = post_stripe_raw(
        &app,
        raw.clone(),
        Some(stripe_header(&[STRIPE_OLD], now(), &raw)),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("accepted")),
        "{body}"
    );
    assert_eq!(body["effect"], "failure_recorded");
    let paid = stripe_event("sig2", "invoice.paid", inv, 110_000, "in_sig1");
    let raw_paid = serde_json::to_vec(&paid).unwrap();
    let both = stripe_header(
        &["whsec_someone_else_0123456789", STRIPE_NEW],
        now(),
        &raw_paid,
    );
    let (status, body) = post_stripe_raw(&app, raw_paid, Some(both)).await;
    assert_eq!(
        (status, body["effect"].as_str()),
        (200, Some("payment_recorded")),
        "{body}"
    );
    assert_eq!(state(&db, inv).await, ("paid".into(), "active".into(), 1));

    // Every delivery is stored raw, refused ones with the reason.
    let stored = deliveries(&db).await;
    let refusals: Vec<Option<&str>> = stored.iter().map(|(_, _, r)| r.as_deref()).collect();
    assert_eq!(
        refusals,
        [
            Some("mismatch"),
            Some("mismatch"),
            Some("expired"),
            Some("expired"),
            Some("missing"),
            None,
            None
        ]
    );
    assert!(stored[..5]
        .iter()
        .all(|(p, o, _)| p == "stripe" && o == "rejected"));
    let body: Vec<u8> = sqlx::query_scalar(
        "select body from control.payment_deliveries where outcome = 'accepted' order by received_at limit 1",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(body, raw, "the body is stored byte for byte");
    // Settings without a Stripe secret refuse every delivery.
    let bare = bizos_tests::spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;
    let (status, _) = send_stripe(
        &bare,
        &stripe_event("sig3", "invoice.paid", inv, 110_000, "in_sig1"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn midtrans_signature_is_over_the_gross_amount_as_sent() {
    let db = TestDb::new().await;
    clock(&db, "2026-03-05T03:00:00Z").await;
    let app = app(&db, &[]).await;
    let (t, _) = tenant(&db, "pay-mid").await;
    // The merchant passes the fee on: the gross amount is the invoice
    // plus 4,000, as Midtrans carries it.
    let inv = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    let good = midtrans_notification(inv, "tx-1", "settlement", None, "114000.00", MIDTRANS_KEY);
    // The same notification with the amount spelt otherwise: refused.
    let mut respelt = good.clone();
    respelt["gross_amount"] = json!("114000.0");
    assert_eq!(send_midtrans(&app, &respelt).await.0, 401);
    let wrong_key = midtrans_notification(
        inv,
        "tx-1",
        "settlement",
        None,
        "114000.00",
        "SB-Mid-server-someone-else-000",
    );
    assert_eq!(send_midtrans(&app, &wrong_key).await.0, 401);
    let mut unsigned = good.clone();
    unsigned.as_object_mut().unwrap().remove("signature_key");
    assert_eq!(send_midtrans(&app, &unsigned).await.0, 401);
    assert_eq!(state(&db, inv).await.2, 0);

    let (status, body) = send_midtrans(&app, &good).await;
    assert_eq!(
        (status, body["effect"].as_str()),
        (200, Some("payment_recorded")),
        "{body}"
    );
    let amount: String = sqlx::query_scalar(
        "select amount::text from billing_payments where billing_invoice_id = $1",
    )
    .bind(inv)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(amount, "114000.00");
    assert_eq!(state(&db, inv).await, ("paid".into(), "active".into(), 1));
    let stored = deliveries(&db).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(stored.iter().filter(|(_, o, _)| o == "rejected").count(), 3);
}

#[tokio::test]
async fn a_replayed_event_has_one_effect() {
    let db = TestDb::new().await;
    clock(&db, "2026-03-05T03:00:00Z").await;
    let app = app(&db, &[]).await;
    let (t, _) = tenant(&db, "pay-replay").await;
    let inv = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    let paid = stripe_event("rp1", "invoice.paid", inv, 110_000, "in_rp1");
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let (status, body) = send_stripe(&app, &paid).await;
        assert_eq!(status, 200, "{body}");
        outcomes.push(body["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        outcomes,
        [
            "accepted",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate"
        ]
    );
    // The same payment told by another event (its PaymentIntent, tied to
    // the same Stripe invoice): applied, but no second payment.
    let (_, body) = send_stripe(
        &app,
        &stripe_event("rp2", "payment_intent.succeeded", inv, 110_000, "in_rp1"),
    )
    .await;
    assert_eq!(body["effect"], "already_recorded", "{body}");
    // Midtrans replays too.
    let inv2 = invoice(&db, t, "2026-03-01", "2026-04-01", 110_000, "2026-04-10").await;
    let n = midtrans_notification(inv2, "tx-rp", "settlement", None, "110000.00", MIDTRANS_KEY);
    let (_, first) = send_midtrans(&app, &n).await;
    let (status, again) = send_midtrans(&app, &n).await;
    assert_eq!(
        (first["outcome"].as_str(), status, again["outcome"].as_str()),
        (Some("accepted"), 200, Some("duplicate"))
    );
    // Sent at once: still one.
    let inv3 = invoice(&db, t, "2026-04-01", "2026-05-01", 110_000, "2026-05-10").await;
    let burst = stripe_event("rp3", "invoice.paid", inv3, 110_000, "in_rp3");
    let sends = (0..8).map(|_| send_stripe(&app, &burst));
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|(s, _)| *s == 200));
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b["outcome"] == "accepted")
            .count(),
        1
    );

    for i in [inv, inv2, inv3] {
        assert_eq!(state(&db, i).await, ("paid".into(), "active".into(), 1));
    }
    let (events, delivered): (i64, i64) = sqlx::query_as(
        "select (select count(*) from control.payment_events), (select count(*) from control.payment_deliveries)",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((events, delivered), (4, 5 + 1 + 2 + 8));
}

#[tokio::test]
async fn out_of_order_a_payment_after_a_failure_wins_and_a_late_failure_changes_nothing() {
    out_of_order_payment_wins_on(TestDb::new().await).await;
}

/// The same on Citus: the provider's delivery and the payment it records
/// are written through the coordinator to the tenant's shard.
#[tokio::test]
async fn out_of_order_a_payment_after_a_failure_wins_and_a_late_failure_changes_nothing_on_citus() {
    out_of_order_payment_wins_on(TestDb::on_citus().await).await;
}

async fn out_of_order_payment_wins_on(db: TestDb) {
    clock(&db, "2026-03-05T03:00:00Z").await;
    let app = app(&db, &[]).await;
    let (t, _) = tenant(&db, "pay-order").await;

    // failed, then paid: paid, the subscription active again.
    let a = invoice(&db, t, "2026-01-01", "2026-02-01", 110_000, "2026-02-10").await;
    let (_, body) = send_stripe(
        &app,
        &stripe_event("oo1", "invoice.payment_failed", a, 110_000, "in_a"),
    )
    .await;
    assert_eq!(body["effect"], "failure_recorded");
    assert_eq!(
        state(&db, a).await,
        ("finalized".into(), "past_due".into(), 0)
    );
    let (_, body) = send_stripe(
        &app,
        &stripe_event("oo2", "invoice.paid", a, 110_000, "in_a"),
    )
    .await;
    assert_eq!(body["effect"], "payment_recorded");
    assert_eq!(state(&db, a).await, ("paid".into(), "active".into(), 1));

    // paid, then a failure delivered late: nothing moves back.
    let b = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    send_stripe(
        &app,
        &stripe_event("oo3", "invoice.paid", b, 110_000, "in_b"),
    )
    .await;
    let (status, body) = send_stripe(
        &app,
        &stripe_event("oo4", "invoice.payment_failed", b, 110_000, "in_b"),
    )
    .await;
    assert_eq!(
        (status, body["effect"].as_str()),
        (200, Some("after_paid")),
        "{body}"
    );
    assert_eq!(state(&db, b).await, ("paid".into(), "active".into(), 1));
    let open: i64 = sqlx::query_scalar(
        "select count(*) from billing_dunning where tenant_id = $1 and resolved_at is null",
    )
    .bind(t)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(open, 0, "no dunning for a paid invoice");

    // Midtrans: settlement, then a late expire; deny, then capture accepted.
    let c = invoice(&db, t, "2026-03-01", "2026-04-01", 110_000, "2026-04-10").await;
    send_midtrans(
        &app,
        &midtrans_notification(c, "tx-c", "settlement", None, "110000.00", MIDTRANS_KEY),
    )
    .await;
    let (_, body) = send_midtrans(
        &app,
        &midtrans_notification(c, "tx-c", "expire", None, "110000.00", MIDTRANS_KEY),
    )
    .await;
    assert_eq!(body["effect"], "after_paid");
    let d = invoice(&db, t, "2026-04-01", "2026-05-01", 110_000, "2026-05-10").await;
    let (_, body) = send_midtrans(
        &app,
        &midtrans_notification(d, "tx-d1", "deny", Some("deny"), "110000.00", MIDTRANS_KEY),
    )
    .await;
    assert_eq!(body["effect"], "failure_recorded");
    let (_, body) = send_midtrans(
        &app,
        &midtrans_notification(
            d,
            "tx-d2",
            "capture",
            Some("challenge"),
            "110000.00",
            MIDTRANS_KEY,
        ),
    )
    .await;
    assert_eq!(
        body["effect"], "recorded",
        "a challenged capture is not money yet"
    );
    assert_eq!(
        state(&db, d).await,
        ("finalized".into(), "past_due".into(), 0)
    );
    let (_, body) = send_midtrans(
        &app,
        &midtrans_notification(
            d,
            "tx-d2",
            "capture",
            Some("accept"),
            "110000.00",
            MIDTRANS_KEY,
        ),
    )
    .await;
    assert_eq!(body["effect"], "payment_recorded");
    for i in [c, d] {
        assert_eq!(state(&db, i).await, ("paid".into(), "active".into(), 1));
    }
    // An event of no invoice we know is stored and answered 200.
    let (status, body) = send_stripe(
        &app,
        &stripe_event("oo9", "invoice.paid", uuid::Uuid::new_v4(), 1, "in_x"),
    )
    .await;
    assert_eq!((status, body["effect"].as_str()), (200, Some("unmatched")));
}
