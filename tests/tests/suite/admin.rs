//! Administration (B2B-9; migration V34, sql/api/admin.sql,
//! bff/src/routes/admin.rs) through HTTP: users invited (the invitation
//! arrives at the SMTP sink), changed and deactivated (refused on the next
//! request with a token that still works), the tenant's permission
//! overrides (in effect on the next request), every rule refused naming
//! its field, 403 for anyone without the permission, and an audit entry
//! for every change.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::email::MailSettings;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::{caller, smtp_sink, spawn_app, spawn_app_with, status_and_json, TestApp, TestDb};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// (code, field) of an error body.
fn err(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap_or("<no code>"),
        body["error"]["field"].as_str(),
    )
}

async fn send(
    app: &TestApp,
    who: &Caller,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = app.request_as(who, method, path, None);
    if let Some(b) = body {
        req = req.json(b);
    }
    status_and_json(req.send().await.unwrap()).await
}

async fn count(db: &TestDb, sql: &str, arg: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(arg)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

fn address(local: &str) -> String {
    format!("{local}-{}@example.test", Uuid::new_v4().simple())
}

/// A worker that sends e-mail to the tests' SMTP sink.
async fn mail_worker(db: &TestDb) -> bizos_tests::TestWorker {
    bizos_tests::start_worker(WorkerSettings {
        poll_interval: Duration::from_millis(300),
        mail: Some(MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{}", smtp_sink::port()).into(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            from: "Bizos <noreply@bizos.test>".parse().unwrap(),
        }),
        ..bizos_tests::worker_settings(
            db,
            2000,
            bizos_bff::config::StorageSettings::Local {
                root: std::env::temp_dir(),
            },
        )
    })
    .await
}

/// The one message the sink accepted for `rcpt` (20 s at most).
async fn the_message_to(rcpt: &str) -> String {
    let started = Instant::now();
    loop {
        let mut found = smtp_sink::messages_to(rcpt);
        if !found.is_empty() {
            assert_eq!(found.len(), 1, "more than one message to {rcpt}");
            return found.remove(0);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no message to {rcpt} in {:?}",
            smtp_sink::dir()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The message with quoted-printable soft line breaks and `=XX` undone.
fn unquote(message: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if let Some(b) = std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} header in\n{message}"))
}

#[tokio::test]
async fn an_invitation_creates_the_user_and_its_email_arrives() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    sqlx::query("update tenants set name = 'Acme Logistik', locale = 'en' where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let admin = db.create_user(tenant, "super_admin").await;
    sqlx::query("update profiles set full_name = 'Rina Admin' where user_id = $1")
        .bind(admin.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let manager = db.create_user(tenant, "sales_manager").await;
    let app = spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;
    let _worker = mail_worker(&db).await;

    let to = address("dewi");
    let (status, user) = app
        .post_json(
            &admin,
            "/api/users",
            &json!({"email": format!(" {} ", to.to_uppercase()), "full_name": "Dewi Lestari",
                    "app_role": "Salesperson", "manager_user_id": manager.user_id}),
            Some("invite-dewi"),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["email"], json!(to), "stored in lower case: {user}");
    assert_eq!(
        (&user["app_role"], &user["manager_user_id"], &user["active"]),
        (&json!("salesperson"), &json!(manager.user_id), &json!(true)),
        "{user}"
    );
    let user_id: Uuid = user["user_id"].as_str().unwrap().parse().unwrap();
    assert!(user["invitation_email_id"].is_string(), "{user}");
    // A retry with the same key answers the same and invites no one twice.
    let (status, again) = app
        .post_json(
            &admin,
            "/api/users",
            &json!({"email": format!(" {} ", to.to_uppercase()), "full_name": "Dewi Lestari",
                    "app_role": "Salesperson", "manager_user_id": manager.user_id}),
            Some("invite-dewi"),
        )
        .await;
    assert_eq!((status, &again["user_id"]), (201, &user["user_id"]));

    let message = unquote(&the_message_to(&to).await);
    assert_eq!(header(&message, "To"), to);
    assert_eq!(
        header(&message, "Subject"),
        "You are invited to Acme Logistik on bizos"
    );
    let flat = message.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "Hello Dewi Lestari,",
        "Rina Admin has added you to Acme Logistik on bizos as salesperson.",
        &format!("Your account: {to}"),
        "Sign in with the login your organisation uses for bizos (its identity provider).",
    ] {
        assert!(flat.contains(want), "{want:?} in\n{message}");
    }
    assert_eq!(smtp_sink::messages_to(&to).len(), 1, "one invitation");

    // The invited person's token (from the identity provider, `sub` = the
    // profile's user_id) works at once.
    let dewi = caller(tenant, user_id, "salesperson");
    let (status, me) = app.get_json(&dewi, "/api/me").await;
    assert_eq!((status, &me["email"]), (200, &json!(to)), "{me}");

    // A refused invitation leaves neither a profile nor an e-mail.
    let other = address("refused");
    let (status, body) = app
        .post_json(
            &admin,
            "/api/users",
            &json!({"email": other, "full_name": "X", "app_role": "salesperson",
                    "manager_user_id": Uuid::new_v4()}),
            None,
        )
        .await;
    assert_eq!(err(&body), ("invalid", Some("manager_user_id")), "{body}");
    assert_eq!(status, 422);
    assert_eq!(
        count(
            &db,
            "select count(*) from profiles where email = $1",
            &other
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from emails where $1 = any (to_addresses::text[])",
            &other
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from emails where $1 = any (to_addresses::text[])",
            &to
        )
        .await,
        1,
        "the check sees the outbox"
    );
}

#[tokio::test]
async fn an_invitation_refuses_bad_input_naming_the_field() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let gone = db.create_user(tenant, "sales_manager").await;
    sqlx::query("update profiles set active = false where user_id = $1")
        .bind(gone.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let elsewhere = db
        .create_user(db.create_tenant("other").await, "sales_manager")
        .await;
    let admin_email: String = sqlx::query_scalar("select email from profiles where user_id = $1")
        .bind(admin.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let app = spawn_app(&db).await;
    let profiles = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from profiles where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap()
    };
    let before = profiles().await;
    assert_eq!(before, 2);

    let ok = json!({"email": address("new"), "full_name": "New Person", "app_role": "salesperson"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, status, code, field) in [
        (without("email"), 422, "invalid", "email"),
        (
            with("email", json!("not-an-address")),
            422,
            "invalid",
            "email",
        ),
        (
            with("email", json!(admin_email.to_uppercase())),
            409,
            "conflict",
            "email",
        ),
        (without("full_name"), 422, "invalid", "full_name"),
        (with("full_name", json!("   ")), 422, "invalid", "full_name"),
        (
            with("app_role", json!("janitor")),
            422,
            "invalid",
            "app_role",
        ),
        (with("app_role", json!("ops")), 422, "invalid", "dept_code"),
        (
            with("dept_code", json!("OPS JKT!")),
            422,
            "invalid",
            "dept_code",
        ),
        (
            with("manager_user_id", json!(Uuid::new_v4())),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            with("manager_user_id", json!(gone.user_id)),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            with("manager_user_id", json!(elsewhere.user_id)),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            with("manager_user_id", json!("nope")),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            with("user_id", json!(admin.user_id)),
            409,
            "conflict",
            "user_id",
        ),
        (with("colour", json!("red")), 422, "invalid", "colour"),
    ] {
        let (got, res) = app.post_json(&admin, "/api/users", &body, None).await;
        assert_eq!(
            (got, err(&res)),
            (status, (code, Some(field))),
            "{body}: {res}"
        );
    }
    assert_eq!(profiles().await, before, "nothing written");
    let emails: i64 = sqlx::query_scalar("select count(*) from emails")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(emails, 0);
    // The same body, valid: the refusals above were about their field.
    let (status, res) = app.post_json(&admin, "/api/users", &ok, None).await;
    assert_eq!(status, 201, "{res}");
    let ops = json!({"email": address("ops"), "full_name": "Ops", "app_role": "ops", "dept_code": "ops-sby"});
    let (status, res) = app.post_json(&admin, "/api/users", &ops, None).await;
    assert_eq!(
        (status, &res["dept_code"]),
        (201, &json!("OPS-SBY")),
        "{res}"
    );
}

#[tokio::test]
async fn only_profile_managers_use_the_user_routes_and_an_override_makes_one() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let app = spawn_app(&db).await;
    let invite = || json!({"email": address("x"), "full_name": "X", "app_role": "salesperson"});
    let target = format!("/api/users/{}", seller.user_id);

    let calls = || {
        [
            (Method::GET, "/api/users".to_owned(), None),
            (Method::GET, target.clone(), None),
            (Method::POST, "/api/users".to_owned(), Some(invite())),
            (
                Method::PATCH,
                target.clone(),
                Some(json!({"full_name": "Renamed"})),
            ),
            (Method::POST, format!("{target}/deactivate"), None),
            (Method::POST, format!("{target}/reactivate"), None),
        ]
    };
    for who in [&director, &seller] {
        for (method, path, body) in calls() {
            let (status, res) = send(&app, who, method.clone(), &path, body.as_ref()).await;
            assert_eq!(
                (status, err(&res).0),
                (403, "forbidden"),
                "{method} {path}: {res}"
            );
        }
    }
    // The super admin may (not vacuous).
    for (method, path, body) in calls() {
        let (status, res) = send(&app, &admin, method.clone(), &path, body.as_ref()).await;
        assert!(status < 300, "{method} {path}: {status} {res}");
    }

    // An override of the tenant: directors get profile.manage.
    let (status, res) = app
        .post_json(
            &admin,
            "/api/roles/director/permissions",
            &json!({"permission": "profile.manage"}),
            None,
        )
        .await;
    assert_eq!((status, &res["changed"]), (200, &json!(true)), "{res}");
    for (method, path, body) in calls() {
        let (status, res) = send(&app, &director, method.clone(), &path, body.as_ref()).await;
        assert!(status < 300, "director {method} {path}: {status} {res}");
    }
    // ... but not the super admin's powers.
    let admin_path = format!("/api/users/{}", admin.user_id);
    for (method, path, body) in [
        (
            Method::PATCH,
            admin_path.clone(),
            Some(json!({"full_name": "X"})),
        ),
        (Method::POST, format!("{admin_path}/deactivate"), None),
        (
            Method::PATCH,
            target.clone(),
            Some(json!({"app_role": "super_admin"})),
        ),
        (
            Method::POST,
            "/api/users".to_owned(),
            Some(json!({"email": address("boss"), "full_name": "Boss", "app_role": "super_admin"})),
        ),
    ] {
        let (status, res) = send(&app, &director, method.clone(), &path, body.as_ref()).await;
        assert_eq!(
            (status, err(&res).0),
            (403, "forbidden"),
            "{method} {path}: {res}"
        );
    }
    // Revoked again: refused on the next request.
    let (status, res) = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/roles/director/permissions/profile.manage",
        None,
    )
    .await;
    assert_eq!((status, &res["changed"]), (200, &json!(true)), "{res}");
    let (status, _) = app.get_json(&director, "/api/users").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn role_manager_and_department_changes_keep_the_rules() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let boss = db.create_user(tenant, "sales_manager").await;
    let lead = db.create_user(tenant, "sales_manager").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let gone = db.create_user(tenant, "sales_manager").await;
    let elsewhere = db
        .create_user(db.create_tenant("other").await, "sales_manager")
        .await;
    db.set_manager(&lead, &boss).await;
    db.set_manager(&seller, &lead).await;
    let app = spawn_app(&db).await;
    let path = |u: &Caller| format!("/api/users/{}", u.user_id);
    let (status, _) = app
        .post_json(
            &admin,
            &format!("{}/deactivate", path(&gone)),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200);

    for (who, body, status, code, field) in [
        (&seller, json!({}), 422, "invalid", "payload"),
        (
            &seller,
            json!({"manager_user_id": seller.user_id}),
            422,
            "invalid",
            "manager_user_id",
        ),
        // boss -> lead -> seller: the boss cannot report to either.
        (
            &boss,
            json!({"manager_user_id": seller.user_id}),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            &boss,
            json!({"manager_user_id": lead.user_id}),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            &seller,
            json!({"manager_user_id": gone.user_id}),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            &seller,
            json!({"manager_user_id": elsewhere.user_id}),
            422,
            "invalid",
            "manager_user_id",
        ),
        (
            &seller,
            json!({"app_role": "ops"}),
            422,
            "invalid",
            "dept_code",
        ),
        (
            &seller,
            json!({"app_role": "ops", "dept_code": "!"}),
            422,
            "invalid",
            "dept_code",
        ),
        (
            &seller,
            json!({"app_role": null}),
            422,
            "invalid",
            "app_role",
        ),
        (
            &seller,
            json!({"app_role": "janitor"}),
            422,
            "invalid",
            "app_role",
        ),
        (
            &seller,
            json!({"full_name": " "}),
            422,
            "invalid",
            "full_name",
        ),
        (
            &seller,
            json!({"email": "x@example.test"}),
            422,
            "invalid",
            "email",
        ),
        (
            &admin,
            json!({"app_role": "director"}),
            422,
            "invalid",
            "app_role",
        ),
    ] {
        let (got, res) = app.patch_json(&admin, &path(who), &body).await;
        assert_eq!(
            (got, err(&res)),
            (status, (code, Some(field))),
            "{body}: {res}"
        );
    }
    let (status, res) = app
        .patch_json(
            &admin,
            &format!("/api/users/{}", Uuid::new_v4()),
            &json!({"full_name": "X"}),
        )
        .await;
    assert_eq!((status, err(&res).0), (404, "not_found"), "{res}");
    let (status, _) = app
        .patch_json(&admin, &path(&elsewhere), &json!({"full_name": "X"}))
        .await;
    assert_eq!(status, 404, "another tenant's user is not found");

    // The changes that keep the rules go through.
    let (status, res) = app
        .patch_json(
            &admin,
            &path(&seller),
            &json!({"app_role": "OPS", "dept_code": " ops-sby "}),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        (&res["app_role"], &res["dept_code"]),
        (&json!("ops"), &json!("OPS-SBY"))
    );
    let (status, res) = app
        .patch_json(&admin, &path(&seller), &json!({"dept_code": null}))
        .await;
    assert_eq!(
        (status, err(&res)),
        (422, ("invalid", Some("dept_code"))),
        "ops keep one: {res}"
    );
    let (status, res) = app
        .patch_json(
            &admin,
            &path(&lead),
            &json!({"manager_user_id": null, "full_name": "Lead Two"}),
        )
        .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        (&res["manager_user_id"], &res["full_name"]),
        (&Value::Null, &json!("Lead Two"))
    );
    // Now boss no longer manages lead: lead may manage the boss.
    let (status, res) = app
        .patch_json(
            &admin,
            &path(&boss),
            &json!({"manager_user_id": lead.user_id}),
        )
        .await;
    assert_eq!(
        (status, &res["manager_user_id"]),
        (200, &json!(lead.user_id)),
        "{res}"
    );
    // The detail shows the role's permissions, the manager and the reports.
    let (status, detail) = app.get_json(&admin, &path(&lead)).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["reports"], json!(2), "seller and boss: {detail}");
    assert!(detail["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("lead.assign")));
    let (status, detail) = app.get_json(&admin, &path(&boss)).await;
    assert_eq!(
        (status, &detail["manager"]["user_id"]),
        (200, &json!(lead.user_id)),
        "{detail}"
    );

    // Another super admin may be demoted; the last one may not demote
    // themselves.
    let second = db.create_user(tenant, "super_admin").await;
    let (status, res) = app
        .patch_json(&admin, &path(&second), &json!({"app_role": "director"}))
        .await;
    assert_eq!(status, 200, "{res}");
    let (status, res) = app
        .patch_json(&admin, &path(&admin), &json!({"app_role": "director"}))
        .await;
    assert_eq!(
        (status, err(&res)),
        (422, ("invalid", Some("app_role"))),
        "{res}"
    );
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no active super admin"),
        "{res}"
    );
    // With the second one promoted back, the first may step down.
    let (status, _) = app
        .patch_json(&admin, &path(&second), &json!({"app_role": "super_admin"}))
        .await;
    assert_eq!(status, 200);
    let (status, res) = app
        .patch_json(&admin, &path(&admin), &json!({"app_role": "director"}))
        .await;
    assert_eq!(
        (status, &res["app_role"]),
        (200, &json!("director")),
        "{res}"
    );
    // And is a director from their next request on.
    let (status, _) = app.get_json(&admin, "/api/users").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_deactivated_user_is_refused_on_the_next_request_with_a_live_token() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let alice = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    // One token, valid for ten minutes, used for every request below.
    let token = app.token(&alice);
    let get = |path: &'static str| {
        let req = app.http.get(app.url(path)).bearer_auth(&token);
        async move { status_and_json(req.send().await.unwrap()).await }
    };
    assert_eq!(get("/api/me").await.0, 200);
    assert_eq!(get("/api/leads").await.0, 200);

    let (status, res) = app
        .post_json(
            &admin,
            &format!("/api/users/{}/deactivate", alice.user_id),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((status, &res["active"]), (200, &json!(false)), "{res}");
    for path in ["/api/me", "/api/leads"] {
        let (status, body) = get(path).await;
        assert_eq!(
            (status, err(&body).0),
            (403, "user_inactive"),
            "{path}: {body}"
        );
    }
    // Deactivating again changes nothing and is no error.
    let (status, res) = app
        .post_json(
            &admin,
            &format!("/api/users/{}/deactivate", alice.user_id),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((status, &res["active"]), (200, &json!(false)), "{res}");

    let (status, res) = app
        .post_json(
            &admin,
            &format!("/api/users/{}/reactivate", alice.user_id),
            &json!({}),
            None,
        )
        .await;
    assert_eq!((status, &res["active"]), (200, &json!(true)), "{res}");
    assert_eq!(get("/api/me").await.0, 200, "the same token works again");

    // The last active super admin cannot deactivate themselves.
    let (status, res) = app
        .post_json(
            &admin,
            &format!("/api/users/{}/deactivate", admin.user_id),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, err(&res)),
        (422, ("invalid", Some("user_id"))),
        "{res}"
    );
    let (status, _) = app.get_json(&admin, "/api/me").await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_json(
            &admin,
            &format!("/api/users/{}/deactivate", Uuid::new_v4()),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn permission_overrides_take_effect_on_the_next_request() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let finance = db.create_user(tenant, "finance").await;
    let app = spawn_app(&db).await;

    // The roles as the tenant starts: the defaults, no overrides.
    let (status, roles) = app.get_json(&admin, "/api/roles").await;
    assert_eq!(status, 200, "{roles}");
    let items = roles["items"].as_array().unwrap();
    assert_eq!(items.len(), 7, "{roles}");
    let role = |roles: &Value, name: &str| -> Value {
        roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["app_role"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {roles}"))
    };
    let fin = role(&roles, "finance");
    assert!(!fin["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("audit.read")));
    assert_eq!((&fin["added"], &fin["removed"]), (&json!([]), &json!([])));

    let (status, _) = app.get_json(&finance, "/api/audit").await;
    assert_eq!(status, 403, "finance may not read the audit log");
    let (status, res) = app
        .post_json(
            &admin,
            "/api/roles/Finance/permissions",
            &json!({"permission": "AUDIT.read"}),
            None,
        )
        .await;
    assert_eq!(
        (status, &res["changed"], &res["added"]),
        (200, &json!(true), &json!(["audit.read"])),
        "{res}"
    );
    let (status, res) = app.get_json(&finance, "/api/audit").await;
    assert_eq!(status, 200, "granted: the next request may: {res}");
    // Granting it again is no change and no error.
    let (status, res) = app
        .post_json(
            &admin,
            "/api/roles/finance/permissions",
            &json!({"permission": "audit.read"}),
            None,
        )
        .await;
    assert_eq!((status, &res["changed"]), (200, &json!(false)), "{res}");

    // A default revoked shows as removed; the director loses the log.
    let (status, res) = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/roles/director/permissions/audit.read",
        None,
    )
    .await;
    assert_eq!(
        (status, &res["removed"]),
        (200, &json!(["audit.read"])),
        "{res}"
    );
    let (status, _) = app.get_json(&director, "/api/audit").await;
    assert_eq!(status, 403);
    let (status, roles) = app.get_json(&admin, "/api/roles").await;
    assert_eq!(status, 200);
    assert_eq!(role(&roles, "finance")["added"], json!(["audit.read"]));
    assert_eq!(role(&roles, "director")["removed"], json!(["audit.read"]));
    let (status, res) = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/roles/finance/permissions/audit.read",
        None,
    )
    .await;
    assert_eq!((status, &res["changed"]), (200, &json!(true)), "{res}");
    let (status, _) = app.get_json(&finance, "/api/audit").await;
    assert_eq!(status, 403, "revoked: refused on the next request");

    // Bad input, named; the lock-out guard.
    for (method, path, body, status, code, field) in [
        (
            Method::POST,
            "/api/roles/janitor/permissions",
            Some(json!({"permission": "audit.read"})),
            422,
            "invalid",
            "role",
        ),
        (
            Method::POST,
            "/api/roles/finance/permissions",
            Some(json!({"permission": "audit.everything"})),
            422,
            "invalid",
            "permission",
        ),
        (
            Method::POST,
            "/api/roles/finance/permissions",
            Some(json!({})),
            422,
            "invalid",
            "permission",
        ),
        (
            Method::POST,
            "/api/roles/finance/permissions",
            Some(json!({"permission": "audit.read", "x": 1})),
            422,
            "invalid",
            "x",
        ),
        (
            Method::DELETE,
            "/api/roles/finance/permissions/audit.everything",
            None,
            422,
            "invalid",
            "permission",
        ),
        (
            Method::DELETE,
            "/api/roles/janitor/permissions/audit.read",
            None,
            422,
            "invalid",
            "role",
        ),
        (
            Method::DELETE,
            "/api/roles/super_admin/permissions/profile.manage",
            None,
            422,
            "invalid",
            "permission",
        ),
        (
            Method::DELETE,
            "/api/roles/super_admin/permissions/permission.manage",
            None,
            422,
            "invalid",
            "permission",
        ),
    ] {
        let (got, res) = send(&app, &admin, method.clone(), path, body.as_ref()).await;
        assert_eq!(
            (got, err(&res)),
            (status, (code, Some(field))),
            "{method} {path}: {res}"
        );
    }
    let held: i64 = sqlx::query_scalar(
        "select count(*) from role_permissions where tenant_id = $1 and app_role = 'super_admin'
            and permission in ('profile.manage', 'permission.manage')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(held, 2, "the super admins keep administering the tenant");
    // Other permissions of super_admin may go (not vacuous).
    let (status, _) = send(
        &app,
        &admin,
        Method::DELETE,
        "/api/roles/super_admin/permissions/kb.manage",
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Without permission.manage: 403 on every role route.
    for (method, path, body) in [
        (Method::GET, "/api/roles", None),
        (
            Method::POST,
            "/api/roles/finance/permissions",
            Some(json!({"permission": "audit.read"})),
        ),
        (
            Method::DELETE,
            "/api/roles/director/permissions/digest.read",
            None,
        ),
    ] {
        for who in [&director, &finance] {
            let (status, res) = send(&app, who, method.clone(), path, body.as_ref()).await;
            assert_eq!(
                (status, err(&res).0),
                (403, "forbidden"),
                "{method} {path}: {res}"
            );
        }
    }
    // A director given permission.manage changes the other roles, not
    // super_admin's nor the administrative permissions.
    let (status, _) = app
        .post_json(
            &admin,
            "/api/roles/director/permissions",
            &json!({"permission": "permission.manage"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, res) = app
        .post_json(
            &director,
            "/api/roles/finance/permissions",
            &json!({"permission": "digest.read"}),
            None,
        )
        .await;
    assert_eq!((status, &res["changed"]), (200, &json!(true)), "{res}");
    for (method, path, body) in [
        (
            Method::POST,
            "/api/roles/director/permissions",
            Some(json!({"permission": "profile.manage"})),
        ),
        (
            Method::POST,
            "/api/roles/super_admin/permissions",
            Some(json!({"permission": "kb.manage"})),
        ),
        (
            Method::DELETE,
            "/api/roles/director/permissions/permission.manage",
            None,
        ),
    ] {
        let (status, res) = send(&app, &director, method.clone(), path, body.as_ref()).await;
        assert_eq!(
            (status, err(&res).0),
            (403, "forbidden"),
            "{method} {path}: {res}"
        );
    }
}

/// Every change made through the routes of this module leaves an audit
/// entry of its request (the client's x-request-id), read back through
/// `GET /api/audit`.
#[tokio::test]
async fn every_change_through_these_routes_leaves_an_audit_entry() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let app = spawn_app(&db).await;
    let user = format!("/api/users/{}", seller.user_id);
    let mut done = Vec::new();
    for (method, path, body) in [
        (
            Method::POST,
            "/api/users".to_owned(),
            Some(
                json!({"email": address("audited"), "full_name": "Audited", "app_role": "finance"}),
            ),
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"app_role": "sales_manager"})),
        ),
        (
            Method::PATCH,
            user.clone(),
            Some(json!({"full_name": "Renamed"})),
        ),
        (Method::POST, format!("{user}/deactivate"), None),
        (Method::POST, format!("{user}/reactivate"), None),
        (
            Method::POST,
            "/api/roles/finance/permissions".to_owned(),
            Some(json!({"permission": "lead.create"})),
        ),
        (
            Method::DELETE,
            "/api/roles/finance/permissions/lead.create".to_owned(),
            None,
        ),
    ] {
        let request_id = format!("admin-{}", Uuid::new_v4().simple());
        let mut req = app
            .request_as(&admin, method.clone(), &path, None)
            .header("x-request-id", &request_id);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let (status, res) = status_and_json(req.send().await.unwrap()).await;
        assert!(status < 300, "{method} {path}: {status} {res}");
        done.push((format!("{method} {path}"), request_id));
    }
    let (status, page) = app.get_json(&admin, "/api/audit?limit=200").await;
    assert_eq!(status, 200, "{page}");
    let entries = page["items"].as_array().unwrap();
    for (what, request_id) in &done {
        let mine: Vec<&Value> = entries
            .iter()
            .filter(|e| e["request_id"] == json!(request_id))
            .collect();
        assert!(!mine.is_empty(), "{what} left no audit entry");
        for e in &mine {
            assert_eq!(e["actor"], json!(admin.user_id), "{what}: {e}");
            assert!(
                ["profiles", "role_permissions"].contains(&e["table"].as_str().unwrap()),
                "{what}: {e}"
            );
        }
    }
    // The role change, as it was.
    let change = entries
        .iter()
        .find(|e| e["request_id"] == json!(done[1].1))
        .unwrap();
    assert_eq!(
        (
            &change["action"],
            &change["before"]["app_role"],
            &change["after"]["app_role"]
        ),
        (
            &json!("UPDATE"),
            &json!("salesperson"),
            &json!("sales_manager")
        ),
        "{change}"
    );
}

/// The permissions vocabulary is exactly what the schema checks: every
/// literal of has_permission / require_permission in a function or a
/// policy, every default grant and every e-mail template's permission is a
/// term, and every term is checked somewhere.
#[tokio::test]
async fn the_permissions_vocabulary_is_what_the_schema_checks() {
    let db = TestDb::new().await;
    let checked: Vec<String> = sqlx::query_scalar(
        r"with src as (
            select p.prosrc as text from pg_proc p
             where p.pronamespace = 'public'::regnamespace
            union all
            select coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') || ' ' ||
                   coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), '')
              from pg_policy pol
          )
          select distinct m[1] from src,
                 regexp_matches(src.text, '(?:has_permission|require_permission)\(''([a-z_.]+)''', 'g') m
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let terms: Vec<String> = sqlx::query_scalar("select code from permissions order by 1")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    assert!(terms.len() >= 24, "{terms:?}");
    assert_eq!(checked, terms, "checked by the schema vs the vocabulary");
    let outside: Vec<String> = sqlx::query_scalar(
        "select permission from default_role_permissions()
         union select permission from email_templates
         except select code from permissions",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(outside.is_empty(), "{outside:?}");
    // A new tenant gets every default, audit.unmask for its super admins.
    let tenant = db.create_tenant("fresh").await;
    let unmask: Vec<String> = sqlx::query_scalar(
        "select app_role from role_permissions where tenant_id = $1 and permission = 'audit.unmask'",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(unmask, ["super_admin"]);
    // A term outside the vocabulary cannot be granted, even by the owner.
    let e = sqlx::query(
        "insert into role_permissions (tenant_id, app_role, permission) values ($1, 'finance', 'lead.creat')",
    )
    .bind(tenant)
    .execute(&db.owner)
    .await
    .unwrap_err();
    assert_eq!(bizos_tests::code(&e), "23503", "{e}");
}
