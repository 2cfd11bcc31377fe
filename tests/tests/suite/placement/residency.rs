//! Residency with two clusters: region `eu` is the control database's
//! cluster, region `us` a cluster of the test's own. A tenant created in
//! `us` has no row in the `eu` cluster but its placement's, and its
//! requests are served by the `us` cluster.

use bizos_bff::placement::lifecycle::ClusterAddArgs;
use bizos_bff::placement::Tier;
use bizos_tests::own_cluster::OwnCluster;
use bizos_tests::spawn_app_with;
use serde_json::json;
use sqlx::Connection;

use super::Home;

#[tokio::test]
async fn a_tenant_of_another_region_lives_and_is_served_only_in_its_regions_cluster() {
    let us = OwnCluster::start("placement-us", "listen_addresses = ''\nport = 5432");
    let admin = format!(
        "host={} port=5432 user=postgres dbname=postgres",
        us.dir().display()
    );
    bizos_sql::bootstrap(
        &admin,
        &bizos_sql::BootstrapOptions {
            database: "bizos".into(),
            passwords: vec![],
        },
    )
    .await
    .unwrap();
    // Secrets as an operator writes them; sqlx's form for the test's own
    // connections.
    let url = |user: &str, db: &str| bizos_sql::derive_dsn(&admin, Some(user), db).unwrap();
    let sqlx_url = |user: &str, db: &str| bizos_bff::placement::secrets::sqlx_url(&url(user, db));
    bizos_sql::migrate(&url("bizos_owner", "bizos"), None)
        .await
        .unwrap();

    let h = Home::new().await;
    h.add_secret("operator", "US_URL", &url("bizos_owner", "bizos"));
    h.add_secret("operator", "US_URL_ADMIN", &admin);
    h.add_secret("app", "US_URL", &url("bizos_app", "bizos"));
    h.op.cluster_add(&ClusterAddArgs {
        cluster: "us_east".into(),
        region: "us".into(),
        url_secret: "US_URL".into(),
        default: true,
        home: false,
        database_url: String::new(),
    })
    .await
    .unwrap();
    let app = spawn_app_with(&h.db, &[("BIZOS_SECRETS_FILE", &h.app_secrets())]).await;

    let mut us_admin = sqlx::PgConnection::connect(&sqlx_url("postgres", "bizos"))
        .await
        .unwrap();
    let mut eu_admin = super::connect("postgres", &h.db.name, None).await;
    for (tier, slug) in [(Tier::Shared, "us-shared"), (Tier::Isolated, "us-isolated")] {
        let (tenant_admin, placement) = h.tenant("us", tier, slug).await;
        assert_eq!(placement["cluster"], "us_east", "{placement}");
        let t = tenant_admin.tenant_id;
        let (status, body) = app
            .post_json(
                &tenant_admin,
                "/api/leads",
                &json!({"channel": "website", "company_name": slug}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, me) = app.get_json(&tenant_admin, "/api/me").await;
        assert_eq!(status, 200, "{me}");

        // Not one row of the tenant in the eu cluster's database, in any
        // table with a tenant_id, but its placement in the catalogue.
        let tables: Vec<(String, String)> = sqlx::query_as(
            "select c.table_schema::text, c.table_name::text
               from information_schema.columns c
               join information_schema.tables t using (table_schema, table_name)
              where c.column_name = 'tenant_id' and t.table_type = 'BASE TABLE'
                and c.table_schema not in ('pg_catalog', 'information_schema')",
        )
        .fetch_all(&mut eu_admin)
        .await
        .unwrap();
        assert!(tables.len() > 20, "{tables:?}");
        for (schema, table) in &tables {
            let n: i64 = sqlx::query_scalar(&format!(
                "select count(*) from {schema}.{table} where tenant_id = $1"
            ))
            .bind(t)
            .fetch_one(&mut eu_admin)
            .await
            .unwrap();
            let expected = i64::from(schema == "control" && table == "tenant_placements");
            assert_eq!(n, expected, "{slug}: {schema}.{table}");
        }
        // Its rows are in the us cluster, where its requests ran.
        let database = placement["database_name"].as_str().unwrap();
        let mut there = sqlx::PgConnection::connect(&sqlx_url("postgres", database))
            .await
            .unwrap();
        assert_eq!(super::leads_of(&mut there, t).await, 1, "{slug}");
        let bff_there: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where application_name = 'bizos-bff' and datname = $1",
        )
        .bind(database)
        .fetch_one(&mut us_admin)
        .await
        .unwrap();
        assert!(
            bff_there > 0,
            "{slug}: no BFF connection to {database} in the us cluster"
        );
    }

    // The catalogue refuses a placement on a cluster of another region.
    let err = sqlx::query(
        "insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
         values (gen_random_uuid(), 'eu', 'shared', 'us_east', 'bizos')",
    )
    .execute(&h.db.owner)
    .await
    .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "23503", "{err}");
    drop(app);
}
