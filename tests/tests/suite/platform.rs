//! The platform around the schema: roles, bootstrap, migrations, health,
//! the BFF's error shape and its refusal of privileged logins.

use bizos_bff::config::Settings;
use bizos_bff::startup::Application;
use bizos_tests::{admin_url, spawn_app, spawn_app_with, url_for, TestDb};
use serde_json::Value;
use sqlx::Connection;

#[tokio::test]
async fn roles_have_the_privileges_the_spec_gives_them() {
    let db = TestDb::new().await;
    let roles: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "select rolname::text, rolsuper, rolbypassrls, rolcanlogin from pg_roles
          where rolname like 'bizos\\_%' order by rolname",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let names: Vec<&str> = roles.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "bizos_analyst",
            "bizos_app",
            "bizos_authenticated",
            "bizos_bi",
            "bizos_owner",
            "bizos_worker"
        ]
    );
    for (name, superuser, bypass, login) in &roles {
        assert!(
            !superuser && !bypass,
            "{name} must not be superuser or BYPASSRLS"
        );
        assert_eq!(*login, name != "bizos_authenticated", "login of {name}");
    }
    for login in ["bizos_app", "bizos_worker"] {
        let is_member: bool =
            sqlx::query_scalar("select pg_has_role($1, 'bizos_authenticated', 'member')")
                .bind(login)
                .fetch_one(&db.owner)
                .await
                .unwrap();
        assert!(is_member, "{login} runs requests as bizos_authenticated");
    }
}

#[tokio::test]
async fn bi_is_read_only_and_analysts_connect() {
    let db = TestDb::new().await;
    let mut bi = sqlx::PgConnection::connect(&db.url("bizos_bi"))
        .await
        .unwrap();
    let ro: String = sqlx::query_scalar("show default_transaction_read_only")
        .fetch_one(&mut bi)
        .await
        .unwrap();
    assert_eq!(ro, "on");
    let err = sqlx::query("create temp table t (x int)")
        .execute(&mut bi)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("25006")
    );
    let timeout: String = sqlx::query_scalar("show statement_timeout")
        .fetch_one(&mut bi)
        .await
        .unwrap();
    assert_eq!(timeout, "1min");

    let mut analyst = sqlx::PgConnection::connect(&db.url("bizos_analyst"))
        .await
        .unwrap();
    let who: String = sqlx::query_scalar("select current_user::text")
        .fetch_one(&mut analyst)
        .await
        .unwrap();
    assert_eq!(who, "bizos_analyst");
    // Raw tables are not for analysts (masked views come with C5).
    let err = sqlx::query("select * from profiles")
        .execute(&mut analyst)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("42501")
    );
}

#[tokio::test]
async fn the_bff_refuses_a_superuser_login() {
    let db = TestDb::new().await;
    let superuser_url = url_for("postgres", &db.name);
    let env = [
        ("BIZOS_LISTEN", "127.0.0.1:0"),
        ("BIZOS_APP_URL", superuser_url.as_str()),
        ("BIZOS_JWT_SECRET", bizos_tests::TEST_JWT_SECRET),
    ];
    let settings = Settings::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let err = Application::build(settings)
        .await
        .err()
        .expect("must refuse");
    assert!(
        err.to_string().contains("superuser or has BYPASSRLS"),
        "{err}"
    );
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;

    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID request id: {id}");

    let res = app
        .http
        .get(app.url("/readyz"))
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "caller-chosen-id");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["schema_version"], bizos_sql::latest_version());
}

#[tokio::test]
async fn readiness_fails_while_migrations_are_pending() {
    let db = TestDb::new().await;
    sqlx::query("delete from refinery_schema_history where version = (select max(version) from refinery_schema_history)")
        .execute(&db.owner)
        .await
        .unwrap();
    let app = spawn_app(&db).await;
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["database"], "migrations pending");
}

#[tokio::test]
async fn errors_are_json_and_bodies_are_limited() {
    let db = TestDb::new().await;
    let app = spawn_app_with(&db, &[("BIZOS_BODY_LIMIT_BYTES", "1024")]).await;

    let res = app
        .http
        .get(app.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");

    let res = app.http.post(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let res = app
        .http
        .get(app.url("/api/me"))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn migrations_apply_inside_a_schema_and_are_idempotent() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let first = bizos_sql::migrate(&owner, Some("tenant_acme"))
        .await
        .unwrap();
    assert_eq!(first.len() as i32, bizos_sql::latest_version());
    let again = bizos_sql::migrate(&owner, Some("tenant_acme"))
        .await
        .unwrap();
    assert!(again.is_empty());
    assert!(bizos_sql::migrate(&owner, None).await.unwrap().is_empty());

    // The schema holds the same tables as the shared tier's public schema.
    let tables = |schema: &'static str| {
        let pool = db.owner.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "select table_name::text from information_schema.tables
                  where table_schema = $1 and table_type = 'BASE TABLE' order by 1",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let in_schema = tables("tenant_acme").await;
    assert!(in_schema.contains(&"profiles".to_owned()) && in_schema.contains(&"leads".to_owned()));
    assert_eq!(in_schema, tables("public").await);

    let err = bizos_sql::migrate(&owner, Some("Bad-Name"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid schema name"), "{err}");
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_needs_a_superuser() {
    let db = TestDb::new().await;
    let opts = bizos_sql::BootstrapOptions {
        database: db.name.clone(),
        passwords: vec![],
    };
    bizos_sql::bootstrap(&admin_url(), &opts).await.unwrap();
    bizos_sql::bootstrap(&admin_url(), &opts).await.unwrap();
    let err = bizos_sql::bootstrap(&db.url("bizos_owner"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, bizos_sql::Error::NotSuperuser), "{err}");
    // Still fully usable after a second bootstrap.
    assert!(bizos_sql::migrate(&db.url("bizos_owner"), None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn dev_tokens_pick_the_demo_tenants_user_of_a_role() {
    let db = TestDb::new().await;
    let demo = db.create_tenant("demo").await;
    let ops = db.create_user(demo, "ops").await;
    let token = bizos_bff::cli::token(bizos_bff::cli::TokenArgs {
        tenant: None,
        user: None,
        role: Some("ops".into()),
        tenant_slug: "demo".into(),
        ttl_secs: 60,
        secret: bizos_tests::TEST_JWT_SECRET.into(),
        database_url: Some(db.url("bizos_owner")),
    })
    .await
    .unwrap();
    let app = spawn_app(&db).await;
    let res = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], ops.user_id.to_string());

    let missing = bizos_bff::cli::token(bizos_bff::cli::TokenArgs {
        tenant: None,
        user: None,
        role: Some("finance".into()),
        tenant_slug: "demo".into(),
        ttl_secs: 60,
        secret: bizos_tests::TEST_JWT_SECRET.into(),
        database_url: Some(db.url("bizos_owner")),
    })
    .await
    .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no active user with role finance"),
        "{missing}"
    );
}

#[tokio::test]
async fn an_import_batch_size_out_of_range_is_refused_at_start() {
    // The database a start would connect to listens nowhere: were the value
    // accepted, the command would fail later, on connecting, without
    // naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("postgres://bizos_app@127.0.0.1:{port}/bizos");
    for (command, url_var) in [("serve", "BIZOS_APP_URL"), ("worker", "BIZOS_WORKER_URL")] {
        for value in ["50001", "4294967295", "0"] {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
                .arg(command)
                .env_clear()
                .env(url_var, &nowhere)
                .env("BIZOS_JWT_SECRET", bizos_tests::TEST_JWT_SECRET)
                .env("BIZOS_IMPORT_BATCH_ROWS", value)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run bizos");
            // A command that took the value may keep running (retrying its
            // database): stopped, it fails the test below.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} {value}: {err}");
            assert!(
                err.contains("BIZOS_IMPORT_BATCH_ROWS is invalid")
                    && (err.contains("between 1 and 50000") || err.contains("greater than zero")),
                "{command} {value}: {err}"
            );
        }
    }
}
