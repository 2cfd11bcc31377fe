//! Analysts and BI follow the placement: an isolated tenant's masked
//! views are in its own database (schema `analytics`, that tenant only),
//! a schema-tier tenant's in `<its schema>_analytics` of the shared
//! database (that tenant only), and neither shows in the shared tier's
//! `analytics`. What docs/tenants.md tells analysts to connect to.

use bizos_bff::placement::Tier;
use bizos_tests::spawn_app_with;
use serde_json::json;

use super::{connect, Home};

/// Leads of `tenant` and of anyone in `view`, read as `user`.
async fn leads_in(conn: &mut sqlx::PgConnection, view: &str, tenant: uuid::Uuid) -> (i64, i64) {
    sqlx::query_as(&format!(
        "select count(*) filter (where tenant_id = $1), count(*) from {view}"
    ))
    .bind(tenant)
    .fetch_one(conn)
    .await
    .unwrap_or_else(|e| panic!("{view}: {e}"))
}

#[tokio::test]
async fn analysts_read_a_tenants_masked_views_where_its_placement_is() {
    let h = Home::new().await;
    let app = spawn_app_with(&h.db, &[("BIZOS_SECRETS_FILE", &h.app_secrets())]).await;
    let mut tenants = Vec::new();
    for (tier, slug) in [
        (Tier::Shared, "bi-shared"),
        (Tier::Schema, "bi-schema"),
        (Tier::Isolated, "bi-isolated"),
    ] {
        let (admin, placement) = h.tenant("eu", tier, slug).await;
        let (status, body) = app
            .post_json(
                &admin,
                "/api/leads",
                &json!({"channel": "website", "company_name": format!("Lead of {slug}")}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{tier:?}: {body}");
        tenants.push((tier, admin.tenant_id, placement));
    }
    let control = h.db.name.clone();
    for user in ["bizos_analyst", "bizos_bi"] {
        let mut shared = connect(user, &control, None).await;
        for (tier, tenant, placement) in &tenants {
            let in_shared_tier = leads_in(&mut shared, "analytics.leads", *tenant).await.0;
            let database = placement["database_name"].as_str().unwrap();
            match tier {
                Tier::Shared => assert_eq!(in_shared_tier, 1, "{user}"),
                Tier::Schema => {
                    assert_eq!(in_shared_tier, 0, "{user}: a schema tenant in analytics");
                    assert_eq!(database, control);
                    let schema = placement["schema_name"].as_str().unwrap();
                    let view = format!("{schema}_analytics.leads");
                    assert_eq!(
                        leads_in(&mut shared, &view, *tenant).await,
                        (1, 1),
                        "{user}"
                    );
                    // The tenant's tables themselves are not the analyst's.
                    let base = sqlx::query(&format!("select 1 from {schema}.leads"))
                        .execute(&mut shared)
                        .await;
                    assert!(base.is_err(), "{user} read {schema}.leads");
                }
                Tier::Isolated => {
                    assert_eq!(in_shared_tier, 0, "{user}: an isolated tenant in analytics");
                    let mut own = connect(user, database, None).await;
                    assert_eq!(
                        leads_in(&mut own, "analytics.leads", *tenant).await,
                        (1, 1),
                        "{user} in {database}"
                    );
                }
            }
        }
    }
}
