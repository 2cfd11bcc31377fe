//! The tenant's invitations for its user managers (sql/api/signup.sql
//! v_invitations and invitation_revoke, bff/src/routes/invitations.rs)
//! through HTTP: the list with every status (pending, accepted, expired,
//! revoked), paged, never a link's secret; revoking makes the link answer
//! as an unknown one; only holders of profile.manage read them (the
//! table's row-level security) and no tenant reads another's.

use bizos_tests::{spawn_app_with, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

const PUBLIC_URL: &str = "https://app.bizos.test";

async fn app(db: &TestDb) -> TestApp {
    spawn_app_with(
        db,
        &[("BIZOS_PUBLIC_URL", PUBLIC_URL), ("TEST_WORKER", "off")],
    )
    .await
}

fn address(local: &str) -> String {
    format!("{local}-{}@example.test", Uuid::new_v4().simple())
}

/// Invites `email` as `who`; the invitation's id and its link's token (from
/// the outbox, read as the owner: the worker would mail it).
async fn invite(
    app: &TestApp,
    db: &TestDb,
    who: &bizos_bff::auth::Caller,
    email: &str,
) -> (Uuid, String) {
    let (status, body) = app
        .post_json(
            who,
            "/api/invitations",
            &json!({"email": email, "full_name": "Dewi", "app_role": "finance"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let token: String = sqlx::query_scalar(
        "select substring(text_body from 'token=([A-Za-z0-9_-]+)') from emails
          where template = 'signup.invitation' and $1 = any (to_addresses::text[])
          order by created_at desc limit 1",
    )
    .bind(email)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    (
        body["invitation_id"].as_str().unwrap().parse().unwrap(),
        token,
    )
}

async fn accept(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/invitations/accept"))
        .json(&json!({"token": token, "password": "a long enough passphrase"}))
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

fn statuses(page: &Value) -> Vec<(String, String)> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {page}"))
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_user_manager_lists_every_invitation_and_a_revoked_link_answers_as_an_unknown_one() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let tenant = db.create_tenant("inv-a").await;
    let admin = db.create_user(tenant, "super_admin").await;

    let (pending_email, accepted_email, revoked_email, expired_email) = (
        address("pending"),
        address("accepted"),
        address("revoked"),
        address("expired"),
    );
    let (pending, _) = invite(&app, &db, &admin, &pending_email).await;
    let (_, accepted_token) = invite(&app, &db, &admin, &accepted_email).await;
    let (revoked, revoked_token) = invite(&app, &db, &admin, &revoked_email).await;
    let (expired, _) = invite(&app, &db, &admin, &expired_email).await;
    let (status, body) = accept(&app, &accepted_token).await;
    assert_eq!(status, 201, "{body}");
    sqlx::query(
        "update invitations set expires_at = now() - interval '1 hour' where invitation_id = $1",
    )
    .bind(expired)
    .execute(&db.owner)
    .await
    .unwrap();

    // Revoke: the invitation as the list shows it, revoked; twice is once.
    let (status, body) = app
        .post_json(
            &admin,
            &format!("/api/invitations/{revoked}/revoke"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked", "{body}");
    let at = body["revoked_at"].clone();
    let (status, body) = app
        .post_json(
            &admin,
            &format!("/api/invitations/{revoked}/revoke"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!((status, &body["revoked_at"]), (200, &at), "{body}");

    // The revoked link answers exactly as a link that never existed.
    let (status, revoked_answer) = accept(&app, &revoked_token).await;
    let (unknown_status, unknown_answer) =
        accept(&app, "no-such-token-0123456789abcdefghijklmnop").await;
    assert_eq!(status, 422, "{revoked_answer}");
    assert_eq!(revoked_answer["error"]["field"], "token");
    assert_eq!(status, unknown_status);
    assert_eq!(
        revoked_answer["error"]["message"], unknown_answer["error"]["message"],
        "{revoked_answer} vs {unknown_answer}"
    );
    let users: i64 = sqlx::query_scalar("select count(*) from profiles where email = $1")
        .bind(&revoked_email)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(users, 0);

    // An accepted one cannot be revoked; an unknown one is not found.
    let accepted: Uuid =
        sqlx::query_scalar("select invitation_id from invitations where email = $1")
            .bind(&accepted_email)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let (status, body) = app
        .post_json(
            &admin,
            &format!("/api/invitations/{accepted}/revoke"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("invitation_id")),
        "{body}"
    );
    let (status, _) = app
        .post_json(
            &admin,
            &format!("/api/invitations/{}/revoke", Uuid::new_v4()),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The list: newest first, every status, inviter and times; no secret.
    let (status, page) = app.get_json(&admin, "/api/invitations").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        statuses(&page),
        [
            (expired_email.clone(), "expired".to_owned()),
            (revoked_email.clone(), "revoked".to_owned()),
            (accepted_email.clone(), "accepted".to_owned()),
            (pending_email.clone(), "pending".to_owned()),
        ],
        "{page}"
    );
    let first = &page["items"][0];
    assert_eq!(first["invited_by"], json!(admin.user_id), "{first}");
    assert!(first["invited_by_name"].is_string(), "{first}");
    assert!(
        first["expires_at"].is_string() && first["created_at"].is_string(),
        "{first}"
    );
    assert!(page["items"][2]["accepted_at"].is_string(), "{page}");
    let text = page.to_string();
    assert!(!text.contains("token"), "a secret's trace in {text}");

    // Filtered by status, and paged by the cursor.
    let (_, only) = app
        .get_json(&admin, "/api/invitations?status=pending")
        .await;
    assert_eq!(
        statuses(&only),
        [(pending_email.clone(), "pending".to_owned())]
    );
    assert_eq!(only["items"][0]["invitation_id"], json!(pending));
    let (status, bad) = app.get_json(&admin, "/api/invitations?status=lost").await;
    assert_eq!(status, 400, "{bad}");
    let (_, one) = app.get_json(&admin, "/api/invitations?limit=3").await;
    assert_eq!(one["items"].as_array().unwrap().len(), 3, "{one}");
    let cursor = one["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, two) = app
        .get_json(&admin, &format!("/api/invitations?limit=3&after={cursor}"))
        .await;
    assert_eq!(
        statuses(&two),
        [(pending_email, "pending".to_owned())],
        "{two}"
    );
    assert_eq!(two["next_cursor"], Value::Null);
}

#[tokio::test]
async fn only_user_managers_read_invitations_and_never_another_tenants() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let a = db.create_tenant("inv-rls-a").await;
    let b = db.create_tenant("inv-rls-b").await;
    let admin_a = db.create_user(a, "super_admin").await;
    let admin_b = db.create_user(b, "super_admin").await;
    let sales_a = db.create_user(a, "salesperson").await;
    let (a_invitation, _) = invite(&app, &db, &admin_a, &address("a")).await;
    let (b_invitation, _) = invite(&app, &db, &admin_b, &address("b")).await;
    for tenant in [a, b] {
        let n: i64 = sqlx::query_scalar("select count(*) from invitations where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
        assert_eq!(n, 1, "the fixtures exist in both tenants");
    }

    // A user without profile.manage reads none (RLS, also in SQL) and
    // cannot revoke.
    let manages: bool = sqlx::query_scalar(
        "select exists (select 1 from role_permissions
                         where tenant_id = $1 and app_role = 'salesperson' and permission = 'profile.manage')",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(!manages);
    let (status, page) = app.get_json(&sales_a, "/api/invitations").await;
    assert_eq!(
        (status, page["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{page}"
    );
    let mut tx = db.as_user(&sales_a).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from v_invitations")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(seen, 0);
    let (status, body) = app
        .post_json(
            &sales_a,
            &format!("/api/invitations/{a_invitation}/revoke"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // Each tenant's manager sees its own alone and cannot touch the other's.
    let (_, page) = app.get_json(&admin_a, "/api/invitations").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["invitation_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a_invitation.to_string()], "{page}");
    let mut tx = db.as_user(&admin_a).await;
    let other: i64 = sqlx::query_scalar("select count(*) from v_invitations where tenant_id = $1")
        .bind(b)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(other, 0);
    let (status, _) = app
        .post_json(
            &admin_a,
            &format!("/api/invitations/{b_invitation}/revoke"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let revoked: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select revoked_at from invitations where invitation_id = $1")
            .bind(b_invitation)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(revoked, None);
}
