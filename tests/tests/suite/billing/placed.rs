//! A tenant placed in a schema of its own is billed in the control
//! database with the usage metered where its rows are: the month-end reads
//! its quantities in its placement (usage_quantities, as the worker's login
//! there) and prices them by its plan in control (usage_price). Read in
//! control, where it has no users, its seats would bill nothing.

use bizos_bff::placement::Tier;
use chrono::NaiveDate;
use serde_json::json;
use uuid::Uuid;

use super::lifecycle::{clock, plan};
use super::worker::month_end_run;
use crate::placement::operator::{as_operator, operator_app, OPERATOR_TOKEN};
use crate::placement::{connect, Home};

/// A tenant the operator creates in a database of its own has no row in
/// control, where subscriptions are kept; its first plan, given through
/// the operator's route, writes its anchor there in the tenant's own time
/// zone (read in its placement), so its subscription starts on its today:
/// 1 December in Tokyo while it is still 30 November in Jakarta.
#[tokio::test]
async fn an_isolated_tenant_is_put_on_a_plan_by_the_operator_in_its_own_time_zone() {
    let h = Home::new().await;
    let db = &h.db;
    plan(db, "enterprise", 9_000_000, 0).await;
    let app = operator_app(&h, &[]).await;
    let post = reqwest::Method::POST;
    let (status, created) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        "/api/operator/tenants",
        Some(json!({"slug": "bill-iso", "name": "Iso", "admin_email": "a@iso.example",
                    "admin_name": "A", "region": "eu", "tier": "isolated", "time_zone": "Asia/Tokyo"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    h.made
        .add(created["placement"]["database_name"].as_str().unwrap());
    let tenant: Uuid = created["tenant_id"].as_str().unwrap().parse().unwrap();
    let rows = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from tenants where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap()
    };
    assert_eq!(rows().await, 0, "created without a row in control");

    clock(db, "2026-11-30T16:00:00Z").await; // 1 Dec 01:00 in Tokyo
    let (status, sub) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        &format!("/api/operator/billing/tenants/{tenant}/plan"),
        Some(json!({"plan_code": "enterprise"})),
    )
    .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(
        (
            sub["status"].as_str(),
            sub["started_on"].as_str(),
            sub["current_period_start"].as_str()
        ),
        (Some("active"), Some("2026-12-01"), Some("2026-12-01")),
        "{sub}"
    );
    let (status_here, zone, tier): (String, String, String) =
        sqlx::query_as("select status, time_zone, tier from tenants where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        (status_here.as_str(), zone.as_str(), tier.as_str()),
        ("suspended", "Asia/Tokyo", "isolated"),
        "the anchor: ids, its placement's tier and its zone; no request runs for it in control"
    );
    // No default of a new tenant was seeded in control for it.
    let profiles: i64 = sqlx::query_scalar("select count(*) from profiles where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(profiles, 0);
    let here: bool = sqlx::query_scalar("select billing_usage_here($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(!here, "metered in its placement");
    let period_end: NaiveDate =
        sqlx::query_scalar("select current_period_end from subscriptions where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(period_end.to_string(), "2027-01-01");
    assert_eq!(rows().await, 1);

    // An unknown tenant is still 404.
    let (status, body) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post,
        &format!("/api/operator/billing/tenants/{}/plan", Uuid::new_v4()),
        Some(json!({"plan_code": "enterprise"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_schema_tenant_is_billed_for_the_seats_of_its_placement() {
    let h = Home::new().await;
    h.add_secret("worker", "HOME_URL", &h.db.url("bizos_worker"));
    let db = &h.db;
    plan(db, "seated", 620_000, 0).await;
    sqlx::query(
        "insert into plan_metrics (plan_code, metric_code, included, unit_price) values ('seated', 'seats', 1, 1000)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    clock(db, "2026-12-01T03:00:00Z").await;

    let (admin, placement) = h.tenant("eu", Tier::Schema, "bill-placed").await;
    let tenant = admin.tenant_id;
    // Two more users where the tenant's rows are: three seats there, none
    // in control.
    let schema = placement["schema_name"].as_str().unwrap().to_owned();
    let mut there = connect("postgres", &db.name, Some(&schema)).await;
    sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         select $1, gen_random_uuid(), 'user' || n || '@placed.example', 'User ' || n, 'salesperson'
           from generate_series(1, 2) n",
    )
    .bind(tenant)
    .execute(&mut there)
    .await
    .unwrap();
    let seats_there: i64 =
        sqlx::query_scalar("select count(*) from profiles where tenant_id = $1 and active")
            .bind(tenant)
            .fetch_one(&mut there)
            .await
            .unwrap();
    assert_eq!(seats_there, 3);

    // The operator bills it: its first plan writes its row in control
    // (the anchor its jobs refer to), which starts its subscription.
    sqlx::query("select billing_change_plan($1, 'seated', 'Asia/Jakarta')")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let here: bool = sqlx::query_scalar("select billing_usage_here($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(!here, "the schema tenant is metered in its placement");
    // Closing it without its usage is refused, not billed at zero.
    let refused = sqlx::query("select billing_close_period($1, '2026-12-01', null)")
        .bind(tenant)
        .execute(&db.owner)
        .await;
    clock(db, "2026-12-31T17:30:00Z").await;
    let refused_after = sqlx::query("select billing_close_period($1, '2026-12-01', null)")
        .bind(tenant)
        .execute(&db.owner)
        .await;
    assert!(
        refused.is_ok(),
        "before the period ended there is nothing to close"
    );
    let e = refused_after.expect_err("closed without the placement's usage");
    assert!(e.to_string().contains("usage"), "{e}");

    let dead = month_end_run(db, 2, Some(h.secrets_path("worker"))).await;
    assert_eq!(dead, 0);
    let lines: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
        "select l.kind, l.metric_code, l.quantity::text, l.amount::text
           from billing_invoice_lines l join billing_invoices i using (tenant_id, billing_invoice_id)
          where i.tenant_id = $1 order by l.position",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        lines,
        [
            ("plan".into(), None, "1".into(), "620000".into()),
            (
                "overage".into(),
                Some("seats".into()),
                "2".into(),
                "2000".into()
            ),
        ],
        "tenant {tenant}"
    );

    // After the grace period the draft is finalized and mailed to the
    // users who pay, read in the placement: the admin (a salesperson does
    // not pay).
    clock(db, "2027-01-04T18:00:00Z").await;
    assert_eq!(
        month_end_run(db, 2, Some(h.secrets_path("worker"))).await,
        0
    );
    let mails: Vec<(Vec<String>, String)> =
        sqlx::query_as("select to_addresses::text[], subject from emails where tenant_id = $1")
            .bind(tenant)
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, ["admin@bill-placed.example"], "{mails:?}");
    let _: Uuid = tenant;
}
