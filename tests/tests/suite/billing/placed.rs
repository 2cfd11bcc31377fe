//! A tenant placed in a schema of its own is billed in the control
//! database with the usage metered where its rows are: the month-end reads
//! its quantities in its placement (usage_quantities, as the worker's login
//! there) and prices them by its plan in control (usage_price). Read in
//! control, where it has no users, its seats would bill nothing.

use bizos_bff::placement::Tier;
use uuid::Uuid;

use super::lifecycle::{clock, plan};
use super::worker::month_end_run;
use crate::placement::{connect, Home};

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

    // The operator bills it: its row in control (the anchor its jobs
    // refer to) given the plan, which starts its subscription.
    sqlx::raw_sql(&format!(
        "select tenant_move_anchor('{tenant}', 'eu', 'schema');
         update tenants set plan_code = 'seated', time_zone = 'Asia/Jakarta' where tenant_id = '{tenant}';"
    ))
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
