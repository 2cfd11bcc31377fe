//! Requests go to the tenant's placement, the same token kind for every
//! tier; a placement change reaches a running BFF through NOTIFY; a stale
//! cached placement never takes a write.

use std::time::{Duration, Instant};

use bizos_bff::placement::{record, Placement, Tier};
use bizos_tests::{spawn_app_with, status_and_json};
use serde_json::json;

use super::{connect, leads_of, Home};

fn lead(name: &str) -> serde_json::Value {
    json!({"channel": "website", "company_name": name})
}

#[tokio::test]
async fn shared_schema_and_isolated_tenants_are_served_from_their_own_placements() {
    let h = Home::new().await;
    let app = spawn_app_with(&h.db, &[("BIZOS_SECRETS_FILE", &h.app_secrets())]).await;
    let mut control = connect("postgres", &h.db.name, None).await;
    for (tier, slug) in [
        (Tier::Shared, "route-shared"),
        (Tier::Schema, "route-schema"),
        (Tier::Isolated, "route-isolated"),
    ] {
        let (admin, placement) = h.tenant("eu", tier, slug).await;
        let (status, body) = app
            .post_json(
                &admin,
                "/api/leads",
                &lead(&format!("Lead of {slug}")),
                None,
            )
            .await;
        assert_eq!(status, 201, "{tier:?}: {body}");
        let id = body["lead_id"]
            .as_str()
            .or(body["id"].as_str())
            .map(str::to_owned);
        let (status, list) = app.get_json(&admin, "/api/leads").await;
        assert_eq!(status, 200, "{tier:?}: {list}");
        assert!(
            list.to_string().contains(&format!("Lead of {slug}")),
            "{tier:?}: {list}"
        );

        // The row is where the placement says, and nowhere else.
        let database = placement["database_name"].as_str().unwrap();
        let schema = placement["schema_name"].as_str();
        let in_control = leads_of(&mut control, admin.tenant_id).await;
        let mut there = connect("postgres", database, schema).await;
        let in_placement = leads_of(&mut there, admin.tenant_id).await;
        match tier {
            Tier::Shared => assert_eq!((in_control, in_placement), (1, 1), "{id:?}"),
            _ => assert_eq!((in_control, in_placement), (0, 1), "{tier:?}"),
        }
        let tenants_here: i64 =
            sqlx::query_scalar("select count(*) from tenants where tenant_id = $1")
                .bind(admin.tenant_id)
                .fetch_one(&mut control)
                .await
                .unwrap();
        assert_eq!(tenants_here, i64::from(tier == Tier::Shared), "{tier:?}");

        // An API key of the tenant finds its placement before the key.
        let (status, key) = app
            .post_json(
                &admin,
                "/api/api-keys",
                &json!({"name": "reader", "scopes": ["leads:read"]}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{tier:?}: {key}");
        let secret = key["secret"].as_str().unwrap();
        let res = app
            .http
            .get(app.url("/api/v1/leads"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        let (status, list) = status_and_json(res).await;
        assert_eq!(status, 200, "{tier:?}: {list}");
        assert!(
            list.to_string().contains(&format!("Lead of {slug}")),
            "{tier:?}: {list}"
        );
    }
}

/// The tenant's rows copied into schema `schema` of the control database
/// (what a move would have done): its tenants row and its admin's profile.
async fn copy_into_schema(h: &Home, admin: &bizos_bff::auth::Caller, schema: &str) {
    bizos_sql::migrate(&h.db.url("bizos_owner"), Some(schema))
        .await
        .unwrap();
    let mut conn = connect("bizos_owner", &h.db.name, Some(schema)).await;
    sqlx::query("insert into tenants (tenant_id, slug, name) values ($1, 'moved', 'Moved')")
        .bind(admin.tenant_id)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         values ($1, $2, 'admin@moved.example', 'Admin', 'super_admin')",
    )
    .bind(admin.tenant_id)
    .bind(admin.user_id)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// The leads a GET as `admin` lists.
async fn listed(app: &bizos_tests::TestApp, admin: &bizos_bff::auth::Caller) -> String {
    let (status, list) = app.get_json(admin, "/api/leads").await;
    assert_eq!(status, 200, "{list}");
    list.to_string()
}

#[tokio::test]
async fn a_placement_change_reaches_a_running_bff_and_a_stale_placement_never_takes_a_write() {
    let h = Home::new().await;
    let app = spawn_app_with(&h.db, &[("BIZOS_SECRETS_FILE", &h.app_secrets())]).await;
    let (admin, placement) = h.tenant("eu", Tier::Isolated, "moving").await;
    let isolated = placement["database_name"].as_str().unwrap().to_owned();
    let t = admin.tenant_id;
    let (status, body) = app
        .post_json(
            &admin,
            "/api/leads",
            &lead("In the isolated database"),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(listed(&app, &admin)
        .await
        .contains("In the isolated database"));
    copy_into_schema(&h, &admin, "t_moved").await;

    // 1. The catalogue moves the tenant to schema t_moved; the isolated
    // database is not told (its record stays at version 1, so its check
    // passes): only the notification can make the BFF see it, well before
    // the cache's 60 s.
    sqlx::query(
        "update control.tenant_placements
            set tier = 'schema', database_name = current_database(), schema_name = 't_moved'
          where tenant_id = $1",
    )
    .bind(t)
    .execute(&h.db.owner)
    .await
    .unwrap();
    let start = Instant::now();
    loop {
        if !listed(&app, &admin)
            .await
            .contains("In the isolated database")
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the BFF still reads the old placement 10 s after the change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 2. A switch holds the placement lock of the source (the control
    // database, where t_moved is) while it writes the new version: a write
    // routed with the old one waits for it, then is refused and routed
    // again, to the new placement; it never lands in the source.
    let mut switch = connect("bizos_owner", &h.db.name, None).await;
    sqlx::query("begin").execute(&mut switch).await.unwrap();
    sqlx::query("select control.placement_lock($1, true)")
        .bind(t)
        .execute(&mut switch)
        .await
        .unwrap();
    sqlx::query(
        "update control.tenant_placements
            set tier = 'isolated', database_name = $2, schema_name = null
          where tenant_id = $1",
    )
    .bind(t)
    .bind(&isolated)
    .execute(&mut switch)
    .await
    .unwrap();
    let write = {
        let app_url = app.url("/api/leads");
        let token = app.token(&admin);
        let http = app.http.clone();
        tokio::spawn(async move {
            let res = http
                .post(app_url)
                .bearer_auth(token)
                .json(&lead("Written during the switch"))
                .send()
                .await
                .unwrap();
            status_and_json(res).await
        })
    };
    // Let the write reach the lock before the switch commits.
    tokio::time::sleep(Duration::from_millis(700)).await;
    sqlx::query("commit").execute(&mut switch).await.unwrap();
    let (status, body) = write.await.unwrap();
    assert_eq!(status, 201, "{body}");
    let mut source = connect("postgres", &h.db.name, Some("t_moved")).await;
    let mut target = connect("postgres", &isolated, None).await;
    assert_eq!(
        leads_of(&mut source, t).await,
        0,
        "a write landed in the old placement"
    );
    assert_eq!(leads_of(&mut target, t).await, 2);

    // 3. The source fenced (a newer version recorded there) while the
    // catalogue still names it (a switch under way, or a BFF whose
    // notification is late): writes are refused with a retryable 503,
    // never written there.
    let fence = Placement {
        tenant_id: t,
        region: "eu".into(),
        tier: Tier::Schema,
        cluster: "home".into(),
        database_name: h.db.name.clone(),
        schema_name: Some("t_moved".into()),
        version: 10,
    };
    {
        use sqlx::Connection;
        let mut owner = connect("bizos_owner", &isolated, None).await;
        let mut tx = owner.begin().await.unwrap();
        record(&mut tx, &fence, "HOME_URL").await.unwrap();
        tx.commit().await.unwrap();
    }
    let (status, body) = app
        .post_json(&admin, "/api/leads", &lead("Stale"), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        leads_of(&mut target, t).await,
        2,
        "a stale placement took a write"
    );
    // The catalogue catches up: the write goes to the new placement.
    sqlx::query(
        "update control.tenant_placements
            set tier = 'schema', database_name = current_database(), schema_name = 't_moved', version = 10
          where tenant_id = $1",
    )
    .bind(t)
    .execute(&h.db.owner)
    .await
    .unwrap();
    let (status, body) = app
        .post_json(&admin, "/api/leads", &lead("After the switch"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(leads_of(&mut source, t).await, 1);
    assert_eq!(leads_of(&mut target, t).await, 2);
}
