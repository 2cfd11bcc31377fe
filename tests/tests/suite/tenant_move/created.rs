//! A tenant created in the schema or the isolated tier (`bizos tenant
//! create --tier`, the operator API) has no row in the control database's
//! `tenants`, where its move's jobs are queued: the move request gives it
//! one (ids only, suspended, none of a new tenant's defaults), and it moves
//! like a tenant that began in the shared tier. Asked for through the
//! operator API, run by the mover; the admin's token works before and
//! after, its leads are where the catalogue says.

use bizos_bff::auth::Caller;
use bizos_tests::{status_and_json, TestApp};
use serde_json::{json, Value};

use super::*;
use crate::placement::operator::{operator_app, OPERATOR_TOKEN};
use crate::placement::Home;

/// A BFF with the operator API over the control database of `h` (no
/// worker: the test runs the mover).
async fn app(h: &Home) -> TestApp {
    operator_app(h, &[("TEST_WORKER", "off")]).await
}

async fn operator_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(path))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

/// A tenant created in `tier` through the operator API, its admin and one
/// lead written through HTTP.
async fn created_in(h: &Home, app: &TestApp, tier: &str, slug: &str) -> (Caller, Value) {
    let (status, created) = operator_post(
        app,
        "/api/operator/tenants",
        json!({"slug": slug, "name": "Created", "admin_email": format!("a@{slug}.example"),
               "admin_name": "A", "region": "eu", "tier": tier}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    if tier == "isolated" {
        h.made
            .add(created["placement"]["database_name"].as_str().unwrap());
    }
    let admin = bizos_tests::caller(
        created["tenant_id"].as_str().unwrap().parse().unwrap(),
        created["user_id"].as_str().unwrap().parse().unwrap(),
        "super_admin",
    );
    let (status, lead) = app
        .post_json(
            &admin,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Before The Move"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    (admin, created["placement"].clone())
}

/// The move asked for through the operator API (202), run to done; the
/// move's row.
async fn moved(h: &Home, app: &TestApp, admin: &Caller, to: Value) -> (Uuid, Value) {
    let tenant = admin.tenant_id;
    let (status, asked) =
        operator_post(app, &format!("/api/operator/tenants/{tenant}/move"), to).await;
    assert_eq!(status, 202, "{asked}");
    let move_id: Uuid = asked["move_id"].as_str().unwrap().parse().unwrap();
    let m: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "select from_database, from_schema, to_database, to_schema from control.tenant_moves
          where move_id = $1",
    )
    .bind(move_id)
    .fetch_one(&h.db.owner)
    .await
    .unwrap();
    let from = endpoint(m.0.as_deref().unwrap(), m.1.as_deref());
    let to = endpoint(m.2.as_deref().unwrap(), m.3.as_deref());
    let outcome = run_mover(&h.db, move_id, &from, &to).await;
    let (state, error, progress) = state(&h.db, move_id).await;
    assert_eq!(outcome, Outcome::Done, "{state} {error:?} {progress}");
    (move_id, progress)
}

/// The admin's token still works: the lead written before the move is
/// listed, a new one is taken; both are in `schema` of `database`.
async fn works_after(app: &TestApp, admin: &Caller, database: &str, schema: &str) {
    let (status, lead) = app
        .post_json(
            admin,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT After The Move"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    let (status, listed) = app.get_json(admin, "/api/leads").await;
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed.to_string().contains("PT Before The Move"),
        "{listed}"
    );
    let pool = sqlx::PgPool::connect(&operator_url(database))
        .await
        .unwrap();
    let names: Vec<String> = sqlx::query_scalar(&format!(
        "select company_name from {schema}.leads where tenant_id = $1 order by created_at, lead_no"
    ))
    .bind(admin.tenant_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(names, ["PT Before The Move", "PT After The Move"]);
    pool.close().await;
}

#[tokio::test]
async fn a_tenant_created_in_the_schema_tier_moves_to_the_shared_tier() {
    let h = Home::new().await;
    let app = app(&h).await;
    let (admin, placement) = created_in(&h, &app, "schema", "born-schema").await;
    assert!(placement["schema_name"].is_string(), "{placement}");
    let (_, progress) = moved(&h, &app, &admin, json!({"to_tier": "shared"})).await;
    assert_eq!(progress["verify_differences"], json!([]), "{progress}");
    let tier: String =
        sqlx::query_scalar("select tier from control.tenant_placements where tenant_id = $1")
            .bind(admin.tenant_id)
            .fetch_one(&h.db.owner)
            .await
            .unwrap();
    assert_eq!(tier, "shared");
    // The placeholder row the move's job needed became the tenant's own.
    let (slug, status): (String, String) =
        sqlx::query_as("select slug, status from public.tenants where tenant_id = $1")
            .bind(admin.tenant_id)
            .fetch_one(&h.db.owner)
            .await
            .unwrap();
    assert_eq!((slug.as_str(), status.as_str()), ("born-schema", "active"));
    works_after(&app, &admin, &h.db.name, "public").await;
}

#[tokio::test]
async fn a_tenant_created_in_a_database_of_its_own_moves_to_a_schema() {
    let h = Home::new().await;
    let app = app(&h).await;
    let (admin, placement) = created_in(&h, &app, "isolated", "born-isolated").await;
    let own = placement["database_name"].as_str().unwrap().to_owned();
    assert_ne!(own, h.db.name);
    let (move_id, progress) = moved(
        &h,
        &app,
        &admin,
        json!({"to_tier": "schema", "to_database": h.db.name}),
    )
    .await;
    assert_eq!(progress["verify_differences"], json!([]), "{progress}");
    // In the control database the tenant has only the row its move's jobs
    // hang on: no default of a new tenant was seeded there.
    let here = counts(&h.db.owner, "public", admin.tenant_id).await;
    let seeded: Vec<(&String, &i64)> = here
        .iter()
        .filter(|(t, n)| **n > 0 && !matches!(t.as_str(), "tenants" | "job_tenants"))
        .collect();
    assert!(
        seeded.is_empty(),
        "rows of the tenant in the control database: {seeded:?}"
    );
    let status: String =
        sqlx::query_scalar("select status from public.tenants where tenant_id = $1")
            .bind(admin.tenant_id)
            .fetch_one(&h.db.owner)
            .await
            .unwrap();
    assert_eq!(status, "suspended");
    let schema: String = sqlx::query_scalar(
        "select schema_name from control.tenant_placements where tenant_id = $1",
    )
    .bind(admin.tenant_id)
    .fetch_one(&h.db.owner)
    .await
    .unwrap();
    works_after(&app, &admin, &h.db.name, &schema).await;
    assert_eq!(triggers_left(&h.db.owner, move_id).await, 0);
}
