//! `bizos tenant create` and `bizos token`, run as the real command: a
//! tenant and its first user made from the command line can call the API,
//! and bad input is refused naming its flag, with nothing half-written.

use std::process::{Command, Output};

use bizos_tests::{spawn_app, status_and_json, TestDb, TEST_JWT_SECRET};
use serde_json::Value;
use uuid::Uuid;

/// Runs the `bizos` command against `db` (as its owner), with no other
/// environment than the owner's connection string and the JWT secret.
fn bizos(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
        .args(args)
        .env_clear()
        .env("BIZOS_DATABASE_URL", db.url("bizos_owner"))
        .env("BIZOS_JWT_SECRET", TEST_JWT_SECRET)
        .output()
        .expect("run bizos")
}

fn create_args<'a>(slug: &'a str, email: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    named_args(slug, "PT Contoh Makmur", email, extra)
}

fn named_args<'a>(slug: &'a str, name: &'a str, email: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "tenant",
        "create",
        "--slug",
        slug,
        "--name",
        name,
        "--admin-email",
        email,
        "--admin-name",
        "Sari Wulandari",
    ];
    args.extend_from_slice(extra);
    args
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn tenants_with_slug(db: &TestDb, slug: &str) -> i64 {
    sqlx::query_scalar("select count(*) from tenants where slug = $1")
        .bind(slug)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn profiles_with_email(db: &TestDb, email: &str) -> i64 {
    sqlx::query_scalar("select count(*) from profiles where email = $1")
        .bind(email)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tenant_made_from_the_command_line_can_call_the_api() {
    let db = TestDb::new().await;

    let out = bizos(&db, &create_args("contoh", "sari@contoh.test", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let tenant: Uuid = created["tenant_id"].as_str().unwrap().parse().unwrap();
    let user: Uuid = created["user_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(created.as_object().unwrap().len(), 2, "{created}");

    let out = bizos(
        &db,
        &[
            "token",
            "--tenant",
            &tenant.to_string(),
            "--user",
            &user.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let app = spawn_app(&db).await;
    let res = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, me) = status_and_json(res).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user_id"], user.to_string());
    assert_eq!(me["tenant_id"], tenant.to_string());
    assert_eq!(me["tenant_slug"], "contoh");
    assert_eq!(me["tenant_name"], "PT Contoh Makmur");
    assert_eq!(me["email"], "sari@contoh.test");
    assert_eq!(me["full_name"], "Sari Wulandari");
    assert_eq!(me["app_role"], "super_admin");
    assert_eq!(me["active"], true);

    // The time zone is the column's default unless given; a given user id
    // (an OIDC provider's sub) is kept.
    let given = Uuid::new_v4();
    let out = bizos(
        &db,
        &create_args(
            "contoh-timur",
            "sari@contoh.test",
            &[
                "--time-zone",
                "Asia/Makassar",
                "--locale",
                "en",
                "--admin-user-id",
                &given.to_string(),
            ],
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["user_id"], given.to_string());
    let zones: Vec<(String, String, String)> =
        sqlx::query_as("select slug, time_zone, locale from tenants order by slug")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    let row = |s: &str, z: &str, l: &str| (s.to_owned(), z.to_owned(), l.to_owned());
    assert_eq!(
        zones,
        [
            row("contoh", "Asia/Jakarta", "id"),
            row("contoh-timur", "Asia/Makassar", "en")
        ]
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_its_flag_with_nothing_half_written() {
    let db = TestDb::new().await;

    // Each refusal names the flag; the tenant row, inserted before the
    // profile, is rolled back with it.
    for (slug, name, email, extra, flag) in [
        (
            "nowhere",
            "Nowhere",
            "a@nowhere.test",
            vec!["--time-zone", "Mars/Olympus"],
            "--time-zone",
        ),
        (
            "nowhere",
            "Nowhere",
            "a@nowhere.test",
            vec!["--locale", "fr"],
            "--locale",
        ),
        ("Not A Slug", "Not", "a@nowhere.test", vec![], "--slug"),
        (
            "bad-mail",
            "Bad",
            "Admin@Bad-Mail.test",
            vec![],
            "--admin-email",
        ),
        ("bad-mail", "Bad", "not-an-address", vec![], "--admin-email"),
        ("no-name", " ", "a@no-name.test", vec![], "--name"),
    ] {
        let out = bizos(&db, &named_args(slug, name, email, &extra));
        assert!(
            !out.status.success(),
            "{slug} {email} {extra:?} was accepted"
        );
        let err = stderr(&out);
        assert!(err.contains(flag), "{flag} not named: {err}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(tenants_with_slug(&db, slug).await, 0, "{slug} half-written");
    }
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from profiles")
            .fetch_one(&db.owner)
            .await
            .unwrap(),
        0
    );

    // A slug that is taken.
    let out = bizos(&db, &create_args("taken", "first@taken.test", &[]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = bizos(&db, &create_args("taken", "second@taken.test", &[]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--slug"), "{}", stderr(&out));
    assert_eq!(tenants_with_slug(&db, "taken").await, 1);
    assert_eq!(profiles_with_email(&db, "second@taken.test").await, 0);

    // A flag left out is named by the command line itself.
    let out = bizos(&db, &["tenant", "create", "--slug", "x-y", "--name", "X"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--admin-email"), "{}", stderr(&out));
    assert_eq!(tenants_with_slug(&db, "x-y").await, 0);
}

/// `/api/me` as the bearer of `token`: (status, body).
async fn me(app: &bizos_tests::TestApp, token: &str) -> (u16, Value) {
    let res = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

#[tokio::test]
async fn a_token_for_a_given_user_is_that_users_or_none() {
    let db = TestDb::new().await;
    let demo = db.create_tenant("demo").await;
    let other = db.create_tenant("other").await;
    let a = db.create_user(demo, "ops").await;
    let b = db.create_user(demo, "ops").await;
    let stranger = db.create_user(other, "ops").await;
    let app = spawn_app(&db).await;
    // The user a role lookup does not pick (it takes the first by e-mail).
    let picked = bizos(&db, &["token", "--role", "ops"]);
    assert!(picked.status.success(), "{}", stderr(&picked));
    let picked = String::from_utf8(picked.stdout).unwrap();
    let (_, picked) = me(&app, picked.trim()).await;
    let wanted = if picked["user_id"] == a.user_id.to_string() {
        b.user_id
    } else {
        a.user_id
    };

    // --user without --tenant: that user, in the demo tenant (--role, when
    // given, must be theirs).
    for extra in [&["--role", "ops"][..], &[]] {
        let mut args = vec!["token", "--user"];
        let user = wanted.to_string();
        args.push(&user);
        args.extend_from_slice(extra);
        let out = bizos(&db, &args);
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        let token = String::from_utf8(out.stdout).unwrap();
        let (status, body) = me(&app, token.trim()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (body["user_id"].as_str(), body["tenant_id"].as_str()),
            (Some(user.as_str()), Some(demo.to_string().as_str())),
            "{extra:?}"
        );
    }

    // Never another user: a role that is not theirs, a user of another
    // tenant or no one at all is refused, naming the flag, with no token.
    for (user, extra, flag) in [
        (wanted, &["--role", "finance"][..], "--role"),
        (stranger.user_id, &["--role", "ops"][..], "--user"),
        (stranger.user_id, &[][..], "--user"),
        (Uuid::new_v4(), &["--role", "ops"][..], "--user"),
    ] {
        let user = user.to_string();
        let mut args = vec!["token", "--user", &user];
        args.extend_from_slice(extra);
        let out = bizos(&db, &args);
        assert!(!out.status.success(), "{args:?} gave a token");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
    // With --tenant-slug, the user is looked for in that tenant.
    let user = stranger.user_id.to_string();
    let out = bizos(&db, &["token", "--user", &user, "--tenant-slug", "other"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, body) = me(&app, String::from_utf8(out.stdout).unwrap().trim()).await;
    assert_eq!(body["tenant_id"], other.to_string());
}
