//! The profile, not the token, decides what a request may do:
//! deactivation, role changes and the tenant's status take effect on the
//! next request with the same still-valid token; a user without a profile
//! gets nothing; read-only tenants read but never write. And the request's
//! id reaches the database (`request.id`), also from background imports.

use bizos_tests::{caller, spawn_app, spawn_app_with, status_and_json, TestApp, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RSA_KEY: &[u8] = include_bytes!("../../fixtures/rs256-test-key.pem");
const JWKS: &str = include_str!("../../fixtures/rs256-test-jwks.json");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// Runs `sql` as the database owner (an administrator's change).
async fn admin(db: &TestDb, sql: &str, who: Uuid) {
    sqlx::query(sql).bind(who).execute(&db.owner).await.unwrap();
}

fn lead(company: &str) -> Value {
    json!({"channel": "website", "company_name": company})
}

/// GET/POST with one fixed bearer token; the status and the JSON body.
async fn get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let res = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

fn items(body: &Value) -> usize {
    body["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_deactivated_user_is_refused_on_the_next_request_with_the_same_token() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "marketing_manager").await;
    let token = app.token(&alice);

    let (status, body) = post(&app, &token, "/api/leads", &lead("PT Satu")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(get(&app, &token, "/api/leads").await.0, 200);

    admin(
        &db,
        "update profiles set active = false where user_id = $1",
        alice.user_id,
    )
    .await;
    for (status, body) in [
        get(&app, &token, "/api/leads").await,
        get(&app, &token, "/api/me").await,
        post(&app, &token, "/api/leads", &lead("PT Dua")).await,
    ] {
        assert_eq!((status, code(&body)), (403, "user_inactive"), "{body}");
    }
    assert_eq!(count(&db, "select count(*) from leads").await, 1);

    // Reactivation takes effect on the next request too.
    admin(
        &db,
        "update profiles set active = true where user_id = $1",
        alice.user_id,
    )
    .await;
    let (status, body) = get(&app, &token, "/api/leads").await;
    assert_eq!((status, items(&body)), (200, 1), "{body}");
}

#[tokio::test]
async fn an_oidc_token_needs_no_role_and_stops_working_when_the_user_is_deactivated() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JWKS, "application/json"))
        .mount(&provider)
        .await;
    let db = TestDb::new().await;
    let jwks_url = format!("{}/.well-known/jwks.json", provider.uri());
    let app = spawn_app_with(
        &db,
        &[("BIZOS_JWT_JWKS_URL", &jwks_url), ("BIZOS_JWT_SECRET", "")],
    )
    .await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "sales_manager").await;
    let sign = |claims: Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("bizos-test-1".to_owned());
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(RSA_KEY).unwrap(),
        )
        .unwrap()
    };
    // What an OIDC provider issues: no app_role claim.
    let token = sign(json!({"sub": user.user_id, "tenant_id": tenant,
                            "iat": now(), "exp": now() + 300}));
    let (status, body) = get(&app, &token, "/api/me").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["app_role"], "sales_manager");
    // The profile's role is in force: a sales manager may create leads.
    let (status, body) = post(&app, &token, "/api/leads", &lead("PT Oidc")).await;
    assert_eq!(status, 201, "{body}");

    admin(
        &db,
        "update profiles set active = false where user_id = $1",
        user.user_id,
    )
    .await;
    for (status, body) in [
        get(&app, &token, "/api/me").await,
        get(&app, &token, "/api/leads").await,
        post(&app, &token, "/api/leads", &lead("PT Later")).await,
    ] {
        assert_eq!((status, code(&body)), (403, "user_inactive"), "{body}");
    }
    assert_eq!(count(&db, "select count(*) from leads").await, 1);

    // Future nbf and iat are refused for RS256 as for HS256.
    for (claim, message) in [
        ("nbf", "invalid token: not valid yet"),
        ("iat", "invalid token: issued in the future"),
    ] {
        let mut claims = json!({"sub": user.user_id, "tenant_id": tenant, "exp": now() + 3600});
        claims[claim] = json!(now() + 600);
        let (status, body) = get(&app, &sign(claims), "/api/me").await;
        assert_eq!(
            (status, body["error"]["message"].as_str()),
            (401, Some(message)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_salesperson_claiming_super_admin_stays_a_salesperson() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let mallory = db.create_user(tenant, "salesperson").await;
    let forged = caller(tenant, mallory.user_id, "super_admin");
    assert_eq!(forged.claims["app_role"], "super_admin");

    let (status, body) = app
        .post_json(&bob, "/api/leads", &lead("PT Bob"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let bobs_lead = body["lead_id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post_json(&forged, "/api/leads", &lead("PT Mallory"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let own_lead = body["lead_id"].as_str().unwrap().to_owned();
    assert_eq!(count(&db, "select count(*) from leads").await, 2);

    // Own leads only, as a salesperson.
    let (status, body) = app.get_json(&forged, "/api/leads").await;
    assert_eq!((status, items(&body)), (200, 1), "{body}");
    assert_eq!(body["items"][0]["lead_id"], own_lead.as_str());
    let (status, _) = app
        .get_json(&forged, &format!("/api/leads/{bobs_lead}"))
        .await;
    assert_eq!(status, 404);

    // No super-admin action: assigning leads needs lead.assign.
    let (status, body) = app
        .post_json(
            &forged,
            &format!("/api/leads/{own_lead}/assign"),
            &json!({"salesperson_user_id": mallory.user_id}),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");

    // In SQL: the effective role is the profile's, and profiles (super
    // admins only) stay out of reach.
    let mut tx = db.as_user(&forged).await;
    let role: String = sqlx::query_scalar("select bizos.app_role()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(role, "salesperson");
    let changed = sqlx::query("update profiles set app_role = 'super_admin' where user_id = $1")
        .bind(mallory.user_id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
    tx.commit().await.unwrap();
    assert_eq!(
        count(
            &db,
            "select count(*) from profiles where app_role = 'super_admin'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_request() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let token = app.token(&alice);
    // A new, unassigned lead: alice (a salesperson) neither sees nor assigns it.
    let (status, body) = app
        .post_json(&marketing, "/api/leads", &lead("PT Baru"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let lead_id = body["lead_id"].as_str().unwrap().to_owned();
    let assign = format!("/api/leads/{lead_id}/assign");
    let to_bob = json!({"salesperson_user_id": bob.user_id});

    assert_eq!(items(&get(&app, &token, "/api/leads").await.1), 0);
    let (status, body) = post(&app, &token, &assign, &to_bob).await;
    assert_eq!(status, 403, "{body}");

    // Promoted: the same token (claiming salesperson) now works as a super admin.
    admin(
        &db,
        "update profiles set app_role = 'super_admin' where user_id = $1",
        alice.user_id,
    )
    .await;
    assert_eq!(items(&get(&app, &token, "/api/leads").await.1), 1);
    let (status, body) = post(&app, &token, &assign, &to_bob).await;
    assert_eq!(status, 200, "{body}");

    // Demoted again: the tenant's leads are out of sight at once.
    admin(
        &db,
        "update profiles set app_role = 'salesperson' where user_id = $1",
        alice.user_id,
    )
    .await;
    assert_eq!(items(&get(&app, &token, "/api/leads").await.1), 0);
    let (status, body) = post(&app, &token, &assign, &to_bob).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn a_token_without_a_profile_gets_403_no_profile_and_writes_nothing() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let member = db.create_user(tenant, "super_admin").await;
    let (status, body) = app
        .post_json(&member, "/api/leads", &lead("PT Ada"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let before = count(&db, "select (select count(*) from leads) + (select count(*) from customers) + (select count(*) from prospects)").await;
    assert_eq!(before, 3);

    // A valid token of the tenant for a user id no profile has, whatever
    // role it claims; and a member's id with an unknown tenant.
    let ghosts = [
        caller(tenant, Uuid::new_v4(), "super_admin"),
        caller(Uuid::new_v4(), member.user_id, "super_admin"),
    ];
    for ghost in &ghosts {
        for (status, body) in [
            app.get_json(ghost, "/api/leads").await,
            app.get_json(ghost, "/api/me").await,
            app.post_json(ghost, "/api/leads", &lead("PT Hantu"), None)
                .await,
            app.post_json(ghost, "/api/leads", &lead("PT Hantu"), Some("ghost-1"))
                .await,
        ] {
            assert_eq!((status, code(&body)), (403, "no_profile"), "{body}");
        }
        let err = db.try_as_user(ghost).await.expect_err("refused");
        assert_eq!(err.code(), "no_profile");
    }
    let after = count(&db, "select (select count(*) from leads) + (select count(*) from customers) + (select count(*) from prospects)").await;
    assert_eq!(after, before);
    assert_eq!(count(&db, "select count(*) from idempotency_keys").await, 0);
}

#[tokio::test]
async fn future_nbf_or_iat_is_401() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "finance").await;
    let sign = |extra: Value| {
        let mut claims = json!({"sub": user.user_id, "tenant_id": tenant, "exp": now() + 3600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(bizos_tests::TEST_JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    for (extra, message) in [
        (json!({"nbf": now() + 600}), "invalid token: not valid yet"),
        (
            json!({"iat": now() + 600}),
            "invalid token: issued in the future",
        ),
        (json!({"iat": "soon"}), "invalid token: iat is not a number"),
    ] {
        let (status, body) = get(&app, &sign(extra.clone()), "/api/me").await;
        assert_eq!(
            (
                status,
                body["error"]["code"].as_str(),
                body["error"]["message"].as_str()
            ),
            (401, Some("unauthorized"), Some(message)),
            "{extra}: {body}"
        );
    }
    // Past values, and a clock a few seconds ahead (within the default 30 s
    // leeway), are fine.
    for extra in [
        json!({"nbf": now() - 60, "iat": now() - 60}),
        json!({"nbf": now() + 5, "iat": now() + 5}),
    ] {
        let (status, body) = get(&app, &sign(extra.clone()), "/api/me").await;
        assert_eq!(status, 200, "{extra}: {body}");
    }
}

/// Leads, customers, prospects, tickets and idempotency keys of the database.
async fn written(db: &TestDb) -> i64 {
    count(
        db,
        "select (select count(*) from leads) + (select count(*) from customers)
              + (select count(*) from prospects) + (select count(*) from tickets)
              + (select count(*) from idempotency_keys)",
    )
    .await
}

async fn set_status(db: &TestDb, tenant: Uuid, status: &str) {
    sqlx::query("update tenants set status = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(status)
        .execute(&db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_read_only_tenant_reads_but_every_write_is_refused() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let admin_user = db.create_user(tenant, "super_admin").await;
    let (status, body) = app
        .post_json(&admin_user, "/api/leads", &lead("PT Awal"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let lead_id = body["lead_id"].as_str().unwrap().to_owned();
    let before = written(&db).await;
    assert_eq!(before, 3);

    set_status(&db, tenant, "read_only").await;
    let (status, body) = app.get_json(&admin_user, "/api/leads").await;
    assert_eq!((status, items(&body)), (200, 1), "{body}");
    let (status, body) = app.get_json(&admin_user, "/api/me").await;
    assert_eq!(status, 200, "{body}");
    for (status, body) in [
        app.post_json(&admin_user, "/api/leads", &lead("PT Baru"), None)
            .await,
        app.post_json(&admin_user, "/api/leads", &lead("PT Baru"), Some("ro-1"))
            .await,
        app.patch_json(
            &admin_user,
            &format!("/api/leads/{lead_id}"),
            &json!({"notes": "changed"}),
        )
        .await,
        app.post_json(
            &admin_user,
            "/api/tickets",
            &json!({"ticket_type": "general_request", "subject": "Halo", "dept_target": "FIN"}),
            None,
        )
        .await,
    ] {
        assert_eq!((status, code(&body)), (403, "tenant_read_only"), "{body}");
    }
    assert_eq!(written(&db).await, before);

    // Back to active: writes work again.
    set_status(&db, tenant, "active").await;
    let (status, body) = app
        .post_json(&admin_user, "/api/leads", &lead("PT Baru"), Some("ro-1"))
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_read_only_transaction_cannot_be_made_writable_again() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "super_admin").await;
    set_status(&db, tenant, "read_only").await;

    // (PostgreSQL 15 lets `reset transaction_read_only` through — the reset
    // path skips the check; 16 refuses it. The BFF sends no such statement,
    // and a session that could would also be able to rewrite its claims:
    // see docs/access.md, "The profile is the authority, not the token".)
    let attempts = [
        "set transaction read write",
        "set local transaction_read_only = off",
        "select set_config('transaction_read_only', 'off', true)",
        "select set_config('transaction_read_only', 'off', false)",
    ];
    for sql in attempts {
        let mut tx = db.as_user(&user).await;
        assert!(
            sqlx::query(sql).execute(&mut *tx).await.is_err(),
            "{sql} must fail"
        );
    }
    // Nor inside a subtransaction, nor through a SECURITY DEFINER RPC, nor
    // as a nextval().
    let mut tx = db.as_user(&user).await;
    sqlx::query("savepoint s").execute(&mut *tx).await.unwrap();
    assert!(sqlx::query("set local transaction_read_only = off")
        .execute(&mut *tx)
        .await
        .is_err());
    sqlx::query("rollback to savepoint s")
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("select crm_create_lead_bundle($1)")
        .bind(lead("PT Definer"))
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "25006", "{err}");
    drop(tx);
    let mut tx = db.as_user(&user).await;
    let err = sqlx::query(
        "insert into leads (tenant_id, channel, company_name) values ($1, 'website', 'PT X')",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "25006", "{err}");
    drop(tx);
    assert_eq!(written(&db).await, 0);

    // Active again: the same writes go through.
    set_status(&db, tenant, "active").await;
    let mut tx = db.as_user(&user).await;
    sqlx::query("select crm_create_lead_bundle($1)")
        .bind(lead("PT Definer"))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
}

#[tokio::test]
async fn a_suspended_tenant_gets_nothing() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "super_admin").await;
    let (status, body) = app
        .post_json(&user, "/api/leads", &lead("PT Awal"), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let before = written(&db).await;

    set_status(&db, tenant, "suspended").await;
    for (status, body) in [
        app.get_json(&user, "/api/leads").await,
        app.get_json(&user, "/api/me").await,
        app.post_json(&user, "/api/leads", &lead("PT Baru"), None)
            .await,
        app.post_json(&user, "/api/leads", &lead("PT Baru"), Some("s-1"))
            .await,
    ] {
        assert_eq!((status, code(&body)), (403, "tenant_suspended"), "{body}");
    }
    assert_eq!(written(&db).await, before);
    assert_eq!(
        db.try_as_user(&user).await.expect_err("refused").code(),
        "tenant_suspended"
    );

    set_status(&db, tenant, "active").await;
    let (status, body) = app.get_json(&user, "/api/leads").await;
    assert_eq!((status, items(&body)), (200, 1), "{body}");
}

#[tokio::test]
async fn the_authentication_function_runs_only_for_requests() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "director").await;
    // The BFF's login, without switching to bizos_authenticated.
    let mut tx = db.app.begin().await.unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(user.claims.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query("select authenticate_request()")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "42501", "{err}");
    drop(tx);
    // Nobody else may call it.
    for role in ["bizos_analyst", "bizos_bi"] {
        let err = sqlx::query("select public.authenticate_request()")
            .execute(&db.pool_as(role))
            .await
            .unwrap_err();
        assert_eq!(bizos_tests::code(&err), "42501", "{role}: {err}");
    }
}

/// Records `request.id` of every insert into `table` (as the owner, like an
/// audit trigger would).
async fn record_request_ids(db: &TestDb, table: &str) {
    sqlx::raw_sql(&format!(
        "create table if not exists seen_request_ids (table_name text, request_id text);
         create or replace function record_request_id() returns trigger
         language plpgsql security definer set search_path = pg_catalog, public as $$
         begin
           insert into public.seen_request_ids values (tg_table_name, current_setting('request.id', true));
           return null;
         end $$;
         create trigger {table}_record_request_id after insert on {table}
           for each row execute function record_request_id();"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
}

async fn seen(db: &TestDb, table: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select coalesce(request_id, '<null>') from seen_request_ids where table_name = $1 order by 1",
    )
    .bind(table)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_request_id_reaches_the_database() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "marketing_manager").await;
    record_request_ids(&db, "leads").await;

    // The client's id, echoed and set in the database.
    let res = app
        .request_as(&user, reqwest::Method::POST, "/api/leads", None)
        .header("x-request-id", "client-req-0001")
        .json(&lead("PT Satu"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["x-request-id"], "client-req-0001");
    assert_eq!(seen(&db, "leads").await, ["client-req-0001"]);

    // None, or one that is unusable (too long, spaces): a new UUID, the same
    // in the response and in the database.
    for header in [
        None,
        Some("x".repeat(200)),
        Some("has spaces in it".to_owned()),
    ] {
        sqlx::query("delete from seen_request_ids")
            .execute(&db.owner)
            .await
            .unwrap();
        let mut req = app
            .request_as(&user, reqwest::Method::POST, "/api/leads", None)
            .json(&lead(&format!("PT {}", Uuid::new_v4().simple())));
        if let Some(h) = &header {
            req = req.header("x-request-id", h.as_str());
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 201, "{header:?}");
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(Uuid::parse_str(&id).is_ok(), "{header:?} → {id}");
        assert_eq!(seen(&db, "leads").await, [id]);
    }

    // SQL-level callers set their own.
    let mut with_id = user.clone();
    with_id.request_id = Some("sql-req-7".into());
    let mut tx = db.as_user(&with_id).await;
    let id: String = sqlx::query_scalar("select current_setting('request.id')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(id, "sql-req-7");
}

#[tokio::test]
async fn background_import_batches_carry_the_id_of_the_request_that_started_them() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    record_request_ids(&db, "kpi_entries").await;
    // One row per batch: every row is written by a background transaction.
    let app = spawn_app_with(&db, &[("BIZOS_IMPORT_BATCH_ROWS", "1")]).await;
    let today = bizos_tests::tenant_today();
    let mut csv = String::from("metric_key,value,entry_date\n");
    for d in 1..=4u64 {
        csv.push_str(&format!(
            "quotations_sent,{d},{}\n",
            today - chrono::Days::new(d)
        ));
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.into_bytes()).file_name("kpi.csv"),
    );
    let res = app
        .request_as(&alice, reqwest::Method::POST, "/api/kpi/import", None)
        .header("x-request-id", "kpi-import-42")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(res).await;
    assert_eq!(status, 202, "{body}");
    let import = body["import_id"].as_str().unwrap().to_owned();
    let mut done = Value::Null;
    for _ in 0..300 {
        let (status, body) = app
            .get_json(&alice, &format!("/api/imports/{import}"))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["import"]["status"] == "done" {
            done = body["import"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done["ok_rows"].as_i64(), Some(4), "{done}");
    assert_eq!(seen(&db, "kpi_entries").await, ["kpi-import-42"; 4]);
}
