//! Self-service sign-up (migration V52, sql/api/signup.sql,
//! bff/src/routes/signup.rs) through HTTP, with the e-mails read at the
//! tests' SMTP sink: a company signs up, verifies its address by the
//! link, logs in, edits its organisation, invites a user who accepts by
//! the link and logs in; used and expired links are refused with nothing
//! made; 1,000 sign-ups from one address are throttled; an address that
//! has a login gets the same answer (and e-mail) as a new one; a caller
//! with a token of an identity provider is linked by its `sub`.

mod invitations;

use std::time::{Duration, Instant};

use bizos_bff::email::MailSettings;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::{spawn_app_with, status_and_json, TestApp, TestDb, TEST_JWT_SECRET};
use serde_json::{json, Value};
use uuid::Uuid;

const PUBLIC_URL: &str = "https://app.bizos.test";
const PASSWORD: &str = "a long enough passphrase";

/// The BFF with sign-up on, and no worker of its own (the tests that read
/// mail start one that sends to the sink).
async fn app(db: &TestDb) -> TestApp {
    spawn_app_with(
        db,
        &[("BIZOS_PUBLIC_URL", PUBLIC_URL), ("TEST_WORKER", "off")],
    )
    .await
}

/// A worker that sends e-mail to the tests' SMTP sink.
async fn mail_worker(db: &TestDb) -> bizos_tests::TestWorker {
    bizos_tests::start_worker(WorkerSettings {
        poll_interval: Duration::from_millis(300),
        mail: Some(MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{}", bizos_tests::smtp_sink::port()).into(),
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

fn address(local: &str) -> String {
    format!("{local}-{}@example.test", Uuid::new_v4().simple())
}

/// The messages the sink accepted for `rcpt`, once there are `n` (20 s at
/// most).
async fn messages_to(rcpt: &str, n: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let found = bizos_tests::smtp_sink::messages_to(rcpt);
        if found.len() >= n {
            assert_eq!(found.len(), n, "more messages than expected to {rcpt}");
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{} of {n} messages to {rcpt} in {:?}",
            found.len(),
            bizos_tests::smtp_sink::dir()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The token of the link `<PUBLIC_URL><path>?token=…` in a message (its
/// plain-text part; quoted-printable soft breaks undone).
fn link_token(message: &str, path: &str) -> String {
    let text = message.replace("=\r\n", "").replace("=\n", "");
    let prefix = format!("{PUBLIC_URL}{path}?token=3D");
    let plain = format!("{PUBLIC_URL}{path}?token=");
    let at = text
        .find(&prefix)
        .map(|i| i + prefix.len())
        .or_else(|| text.find(&plain).map(|i| i + plain.len()))
        .unwrap_or_else(|| panic!("no link to {path} in\n{message}"));
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn post(app: &TestApp, path: &str, body: &Value, bearer: Option<&str>) -> (u16, Value) {
    let mut req = app.http.post(app.url(path)).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    status_and_json(req.send().await.unwrap()).await
}

async fn send_as(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    status_and_json(req.send().await.unwrap()).await
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// Signs `email` up and returns the token of the link it was sent.
async fn sign_up(app: &TestApp, email: &str, company: &str, nth_message: usize) -> String {
    let (status, body) = post(
        app,
        "/api/signup",
        &json!({"email": email, "company_name": company, "full_name": "Andi Pratama"}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let messages = messages_to(email, nth_message).await;
    let message = messages
        .iter()
        .find(|m| m.replace("=\r\n", "").replace("=\n", "").contains(company))
        .unwrap_or_else(|| panic!("no sign-up e-mail of {company} to {email}"));
    link_token(message, "/signup/verify")
}

async fn log_in(app: &TestApp, email: &str, password: &str) -> (u16, Value) {
    post(
        app,
        "/api/login",
        &json!({"email": email, "password": password}),
        None,
    )
    .await
}

#[tokio::test]
async fn sign_up_verify_log_in_invite_accept() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let _worker = mail_worker(&db).await;
    let email = address("founder");

    let token = sign_up(&app, &email, "PT Maju Jaya", 1).await;
    let message = &messages_to(&email, 1).await[0];
    assert!(message.contains("PT Maju Jaya"), "{message}");
    // Nothing exists before the link is used.
    assert_eq!(
        count(
            &db,
            "select count(*) from profiles where email like 'founder-%'"
        )
        .await,
        0
    );

    let (status, made) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["email"], email.as_str());
    assert_eq!(made["plan_code"], "trial");
    let tenant: Uuid = serde_json::from_value(made["tenant_id"].clone()).unwrap();
    let user: Uuid = serde_json::from_value(made["user_id"].clone()).unwrap();
    let (name, plan, role): (String, Option<String>, String) = sqlx::query_as(
        "select t.name, t.plan_code, p.app_role from tenants t
           join profiles p on p.tenant_id = t.tenant_id and p.user_id = $2
          where t.tenant_id = $1",
    )
    .bind(tenant)
    .bind(user)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), plan.as_deref(), role.as_str()),
        ("PT Maju Jaya", Some("trial"), "super_admin")
    );
    // The sign-up is audited: the tenant and its first user.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where tenant_id = $1 and action = 'INSERT'
            and table_name in ('public.tenants', 'public.profiles')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(audited >= 2, "{audited} audit entries of the sign-up");

    // A used link is refused, and makes nothing.
    let tenants = count(&db, "select count(*) from tenants").await;
    let (status, body) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, field(&body)), (422, Some("token")), "{body}");
    assert_eq!(count(&db, "select count(*) from tenants").await, tenants);

    // Log in: a token the BFF accepts, for the new tenant's super admin.
    let (status, login) = log_in(&app, &email, PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["tenant_id"], tenant.to_string());
    let admin_token = login["token"].as_str().unwrap().to_owned();
    let (status, me) = send_as(&app, &admin_token, reqwest::Method::GET, "/api/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["user_id"].as_str(), me["app_role"].as_str()),
        (Some(user.to_string().as_str()), Some("super_admin"))
    );
    // A wrong password and an unknown address: the same answer.
    let (s1, b1) = log_in(&app, &email, "not the passphrase").await;
    let (s2, b2) = log_in(&app, &address("nobody"), PASSWORD).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1["error"], b2["error"]);

    // The organisation: its admin edits it (audited); bad values name
    // their field and change nothing.
    let (status, org) = send_as(
        &app,
        &admin_token,
        reqwest::Method::PATCH,
        "/api/organisation",
        Some(
            &json!({"name": "PT Maju Jaya Abadi", "time_zone": "Asia/Makassar", "locale": "en",
                     "logo_url": "https://cdn.example.test/logo.png", "default_currency": "usd"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(
        (
            &org["name"],
            &org["time_zone"],
            &org["locale"],
            &org["logo_url"],
            &org["default_currency"]
        ),
        (
            &json!("PT Maju Jaya Abadi"),
            &json!("Asia/Makassar"),
            &json!("en"),
            &json!("https://cdn.example.test/logo.png"),
            &json!("USD")
        )
    );
    for (bad, f) in [
        (json!({"time_zone": "Mars/Olympus"}), "time_zone"),
        (json!({"default_currency": "rupiah"}), "default_currency"),
        (
            json!({"logo_url": "http://insecure.example/logo.png"}),
            "logo_url",
        ),
        (json!({"locale": "fr"}), "locale"),
    ] {
        let (status, body) = send_as(
            &app,
            &admin_token,
            reqwest::Method::PATCH,
            "/api/organisation",
            Some(&bad),
        )
        .await;
        assert_eq!((status, field(&body)), (422, Some(f)), "{bad}: {body}");
    }
    let (_, org) = send_as(
        &app,
        &admin_token,
        reqwest::Method::GET,
        "/api/organisation",
        None,
    )
    .await;
    assert_eq!(org["time_zone"], "Asia/Makassar");
    // The tenant's schedules follow its time zone (wall time kept).
    let local: bool = sqlx::query_scalar(
        "select bool_and(to_char(next_run_at at time zone 'Asia/Makassar', 'HH24:MI') = to_char(at_time, 'HH24:MI'))
           from schedules where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(
        local,
        "the schedules run at their wall time in the new zone"
    );
    let edits: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where tenant_id = $1 and table_name = 'public.tenants'
            and action = 'UPDATE' and actor = $2",
    )
    .bind(tenant)
    .bind(user)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(edits >= 1, "the organisation's edits are audited");

    // Invite a user; the link arrives at the sink, not in the outbox the
    // tenant can read.
    let invitee = address("sales");
    let (status, inv) = send_as(
        &app,
        &admin_token,
        reqwest::Method::POST,
        "/api/invitations",
        Some(&json!({"email": invitee, "full_name": "Dewi Kartika", "app_role": "sales_manager"})),
    )
    .await;
    assert_eq!(status, 201, "{inv}");
    assert!(
        inv.get("token").is_none() && inv.get("token_hash").is_none(),
        "{inv}"
    );
    let message = &messages_to(&invitee, 1).await[0];
    assert!(message.contains("PT Maju Jaya Abadi"), "{message}");
    let invitation = link_token(message, "/invitations/accept");
    let (_, outbox) = send_as(&app, &admin_token, reqwest::Method::GET, "/api/me", None).await;
    assert_eq!(outbox["app_role"], "super_admin");
    let readable: i64 = {
        let who = bizos_tests::caller(tenant, user, "super_admin");
        let mut tx = db.as_user(&who).await;
        sqlx::query_scalar("select count(*) from emails where template like 'signup.%'")
            .fetch_one(&mut *tx)
            .await
            .unwrap()
    };
    assert_eq!(readable, 0, "link e-mails are hidden from the tenant");
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where tenant_id = $1 and table_name = 'public.invitations' and actor = $2",
    )
    .bind(tenant)
    .bind(user)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(audited, 1, "the invitation is audited");

    // Accept: the profile with the invitation's role; log in as them.
    let (status, accepted) = post(
        &app,
        "/api/invitations/accept",
        &json!({"token": invitation, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{accepted}");
    assert_eq!(accepted["app_role"], "sales_manager");
    let (status, login) = log_in(&app, &invitee, PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    let (_, me) = send_as(
        &app,
        login["token"].as_str().unwrap(),
        reqwest::Method::GET,
        "/api/me",
        None,
    )
    .await;
    assert_eq!(
        (me["tenant_id"].as_str(), me["app_role"].as_str()),
        (Some(tenant.to_string().as_str()), Some("sales_manager"))
    );
    // A used invitation is refused.
    let profiles = count(&db, "select count(*) from profiles").await;
    let (status, body) = post(
        &app,
        "/api/invitations/accept",
        &json!({"token": invitation, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, field(&body)), (422, Some("token")), "{body}");
    assert_eq!(count(&db, "select count(*) from profiles").await, profiles);
    let accepted_audit: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where tenant_id = $1 and table_name = 'public.invitations' and action = 'UPDATE'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(accepted_audit, 1, "the acceptance is audited");
}

#[tokio::test]
async fn expired_links_are_refused() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let _worker = mail_worker(&db).await;
    let email = address("late");
    let token = sign_up(&app, &email, "CV Terlambat", 1).await;
    // The link's expiry passes (the clock moved by its row, not a sleep).
    sqlx::query(
        "update signup_requests set expires_at = now() - interval '1 second' where email = $1",
    )
    .bind(&email)
    .execute(&db.owner)
    .await
    .unwrap();
    let tenants = count(&db, "select count(*) from tenants").await;
    let (status, body) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, field(&body)), (422, Some("token")), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    assert_eq!(count(&db, "select count(*) from tenants").await, tenants);
    assert_eq!(count(&db, "select count(*) from login_identities").await, 0);

    // An expired invitation likewise.
    let founder = address("founder");
    let token = sign_up(&app, &founder, "CV Tepat Waktu", 1).await;
    let (status, made) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (_, login) = log_in(&app, &founder, PASSWORD).await;
    let admin_token = login["token"].as_str().unwrap().to_owned();
    let invitee = address("slow");
    let (status, inv) = send_as(
        &app,
        &admin_token,
        reqwest::Method::POST,
        "/api/invitations",
        Some(&json!({"email": invitee, "full_name": "Budi", "app_role": "finance"})),
    )
    .await;
    assert_eq!(status, 201, "{inv}");
    let invitation = link_token(&messages_to(&invitee, 1).await[0], "/invitations/accept");
    sqlx::query("update invitations set expires_at = now() - interval '1 second' where email = $1")
        .bind(&invitee)
        .execute(&db.owner)
        .await
        .unwrap();
    let profiles = count(&db, "select count(*) from profiles").await;
    let (status, body) = post(
        &app,
        "/api/invitations/accept",
        &json!({"token": invitation, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, field(&body)), (422, Some("token")), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    assert_eq!(count(&db, "select count(*) from profiles").await, profiles);
    // A made-up token is refused the same way.
    let (status, body) = post(
        &app,
        "/api/invitations/accept",
        &json!({"token": "A".repeat(43), "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!((status, field(&body)), (422, Some("token")), "{body}");
}

#[tokio::test]
async fn a_thousand_sign_ups_from_one_address_are_throttled() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let limit = 20; // BIZOS_SIGNUP_PER_ADDRESS_PER_HOUR's default
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = None;
    for chunk in 0..50 {
        let batch = (0..20).map(|i| {
            let app = &app;
            async move {
                let res = app
                    .http
                    .post(app.url("/api/signup"))
                    .json(&json!({"email": format!("flood-{chunk}-{i}@example.test"),
                                  "company_name": "Flood", "full_name": "Bot"}))
                    .send()
                    .await
                    .unwrap();
                let after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (res.status().as_u16(), after)
            }
        });
        for (status, after) in futures_util::future::join_all(batch).await {
            *statuses.entry(status).or_default() += 1;
            if status == 429 {
                retry_after = retry_after.or(after);
            }
        }
    }
    assert_eq!(
        statuses,
        [(202, limit), (429, 1000 - limit)].into_iter().collect(),
        "statuses of 1,000 sign-ups from one address"
    );
    assert!(retry_after.is_some(), "a 429 says when to retry");
    assert_eq!(
        count(&db, "select count(*) from signup_requests").await,
        limit as i64
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from emails where template = 'signup.verify'"
        )
        .await,
        limit as i64
    );
}

#[tokio::test]
async fn an_existing_address_gets_the_same_answer_as_a_new_one() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let _worker = mail_worker(&db).await;
    let known = address("known");
    let token = sign_up(&app, &known, "PT Pertama", 1).await;
    let (status, first) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{first}");

    let fresh = address("fresh");
    let answer = |email: &str| {
        let body = json!({"email": email, "company_name": "PT Kedua", "full_name": "Andi Pratama"});
        let app = &app;
        async move { post(app, "/api/signup", &body, None).await }
    };
    let for_known = answer(&known).await;
    let for_fresh = answer(&fresh).await;
    assert_eq!(for_known, for_fresh);
    assert_eq!(for_known.0, 202);
    // Both are sent the same e-mail, but for the address.
    let to_known = messages_to(&known, 2).await;
    let to_fresh = messages_to(&fresh, 1).await;
    let subject = |m: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_owned()
    };
    let newest_known = to_known
        .iter()
        .find(|m| m.contains("PT Kedua"))
        .expect("the second sign-up's e-mail");
    assert_eq!(subject(newest_known), subject(&to_fresh[0]));

    // The known address's link makes a second organisation of the same
    // login (its password unchanged); the login then offers both.
    let second = link_token(newest_known, "/signup/verify");
    let (status, made) = post(&app, "/api/signup/verify", &json!({"token": second}), None).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["user_id"], first["user_id"]);
    let (status, login) = log_in(&app, &known, PASSWORD).await;
    assert_eq!(status, 200, "{login}");
    assert!(login["token"].is_null(), "{login}");
    assert_eq!(login["tenants"].as_array().unwrap().len(), 2);
    let (status, login) = post(
        &app,
        "/api/login",
        &json!({"email": known, "password": PASSWORD, "tenant_id": made["tenant_id"]}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["tenant_id"], made["tenant_id"]);
    assert!(login["token"].is_string());
}

#[tokio::test]
async fn an_identity_provider_subject_becomes_the_login() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let _worker = mail_worker(&db).await;
    let email = address("oidc");
    let token = sign_up(&app, &email, "PT Awan", 1).await;
    // A token of the provider (here signed with the test secret) names the
    // person by its `sub`; it need not know a tenant yet.
    let subject = Uuid::new_v4();
    let provider_token = bizos_bff::auth::issue_token(
        TEST_JWT_SECRET.as_bytes(),
        Uuid::nil(),
        subject,
        None,
        Duration::from_secs(300),
    )
    .unwrap();
    let (status, made) = post(
        &app,
        "/api/signup/verify",
        &json!({"token": token}),
        Some(&provider_token),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["user_id"], subject.to_string());
    // No password: the first-party login refuses it, the provider's
    // token (with the new tenant_id) is the way in.
    let (status, _) = log_in(&app, &email, PASSWORD).await;
    assert_eq!(status, 401);
    let tenant: Uuid = serde_json::from_value(made["tenant_id"].clone()).unwrap();
    let with_tenant = bizos_bff::auth::issue_token(
        TEST_JWT_SECRET.as_bytes(),
        tenant,
        subject,
        None,
        Duration::from_secs(300),
    )
    .unwrap();
    let (status, me) = send_as(&app, &with_tenant, reqwest::Method::GET, "/api/me", None).await;
    assert_eq!(
        (status, me["app_role"].as_str()),
        (200, Some("super_admin")),
        "{me}"
    );
    // Without a token or a password, nothing is made.
    let other = address("nopass");
    let token = sign_up(&app, &other, "PT Tanpa Sandi", 1).await;
    let (status, body) = post(&app, "/api/signup/verify", &json!({"token": token}), None).await;
    assert_eq!((status, field(&body)), (422, Some("password")), "{body}");
}
