//! Tenant isolation of the first slice: tenants and profiles under RLS, seen
//! through SQL (bizos_authenticated with claims) and through GET /api/me.

use bizos_tests::{caller, spawn_app, TestDb};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_user_of_tenant_a_cannot_see_tenant_b_profiles_through_sql() {
    let db = TestDb::new().await;
    let a = db.create_tenant("tenant-a").await;
    let b = db.create_tenant("tenant-b").await;
    let alice = db.create_user(a, "director").await;
    let bob = db.create_user(b, "director").await;

    let mut tx = db.as_user(&alice).await;
    let visible: Vec<Uuid> = sqlx::query_scalar("select user_id from profiles order by user_id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(visible, vec![alice.user_id]);
    let bob_seen: i64 = sqlx::query_scalar("select count(*) from profiles where user_id = $1")
        .bind(bob.user_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(bob_seen, 0);
    let tenants: Vec<Uuid> = sqlx::query_scalar("select tenant_id from tenants")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, vec![a]);
}

#[tokio::test]
async fn without_claims_the_request_role_sees_nothing() {
    let db = TestDb::new().await;
    let a = db.create_tenant("tenant-a").await;
    db.create_user(a, "director").await;

    let mut conn = db.app.acquire().await.unwrap();
    sqlx::query("begin").execute(&mut *conn).await.unwrap();
    sqlx::query("set local role bizos_authenticated")
        .execute(&mut *conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from profiles")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Malformed claims are no claims, not an error.
    sqlx::query("select set_config('request.jwt.claims', 'not json', true)")
        .execute(&mut *conn)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from profiles")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(n, 0);
    sqlx::query("rollback").execute(&mut *conn).await.unwrap();
}

#[tokio::test]
async fn the_login_role_alone_cannot_read_business_tables() {
    let db = TestDb::new().await;
    let err = sqlx::query("select count(*) from profiles")
        .fetch_one(&db.app)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("42501")
    );
}

#[tokio::test]
async fn a_super_admin_cannot_write_profiles_into_another_tenant() {
    let db = TestDb::new().await;
    let a = db.create_tenant("tenant-a").await;
    let b = db.create_tenant("tenant-b").await;
    let admin_a = db.create_user(a, "super_admin").await;
    let bob = db.create_user(b, "salesperson").await;

    let mut tx = db.as_user(&admin_a).await;
    let err = sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         values ($1, gen_random_uuid(), 'intruder@example.test', 'Intruder', 'director')",
    )
    .bind(b)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("42501")
    );
    drop(tx);

    let mut tx = db.as_user(&admin_a).await;
    let updated = sqlx::query("update profiles set full_name = 'Renamed' where user_id = $1")
        .bind(bob.user_id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    let deleted = sqlx::query("delete from profiles where user_id = $1")
        .bind(bob.user_id)
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!((updated, deleted), (0, 0));
    tx.commit().await.unwrap();

    let name: String = sqlx::query_scalar("select full_name from profiles where user_id = $1")
        .bind(bob.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(name, "User salesperson");
}

#[tokio::test]
async fn only_super_admins_manage_profiles_of_their_tenant() {
    let db = TestDb::new().await;
    let a = db.create_tenant("tenant-a").await;
    let admin = db.create_user(a, "super_admin").await;
    let director = db.create_user(a, "director").await;
    let insert = "insert into profiles (tenant_id, user_id, email, full_name, app_role)
                  values ($1, gen_random_uuid(), $2, 'New Hire', 'salesperson')";

    let mut tx = db.as_user(&director).await;
    let err = sqlx::query(insert)
        .bind(a)
        .bind("hire1@example.test")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("42501")
    );
    drop(tx);

    let mut tx = db.as_user(&admin).await;
    sqlx::query(insert)
        .bind(a)
        .bind("hire2@example.test")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn timestamps_belong_to_the_database() {
    let db = TestDb::new().await;
    let a = db.create_tenant("tenant-a").await;
    let (created, updated): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role, created_at, updated_at)
         values ($1, gen_random_uuid(), 'x@example.test', 'X', 'finance', '2000-01-01', '2000-01-01')
         returning created_at, updated_at",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(created.timestamp() > 1_700_000_000 && updated >= created);
}

/// created_at and created_by are the inserting transaction's and caller's
/// and survive an update that tries to change them; updated_at is the
/// updating transaction's. The extension's triggers stamp every table (V40).
#[tokio::test]
async fn row_stamps_hold_on_update_and_come_from_the_extension() {
    let db = TestDb::new().await;
    let own_or_ext: (i64, i64) = sqlx::query_as(
        "select count(*) filter (where p.pronamespace <> 'bizos'::regnamespace),
                count(*) filter (where p.pronamespace = 'bizos'::regnamespace)
           from pg_trigger t join pg_proc p on p.oid = t.tgfoid
          where p.proname in ('stamp_timestamps', 'keep_created_by')",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        own_or_ext.0, 0,
        "a trigger still runs a stamp function of the schema"
    );
    assert!(
        own_or_ext.1 > 50,
        "the extension's stamps are attached: {own_or_ext:?}"
    );

    let a = db.create_tenant("tenant-a").await;
    let alice = db.create_user(a, "marketing_manager").await;
    let bob = db.create_user(a, "marketing_manager").await;
    let claims = |user: Uuid| {
        json!({"sub": user, "tenant_id": a, "app_role": "marketing_manager"}).to_string()
    };
    type Stamps = (
        Uuid,
        Uuid,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    );
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(claims(alice.user_id))
        .execute(&mut *tx)
        .await
        .unwrap();
    let inserted: Stamps = sqlx::query_as(
        "insert into customers (tenant_id, company_name, created_by, created_at, updated_at)
         values ($1, 'PT Cap Waktu', $2, '2000-01-01', '2000-01-01')
         returning customer_id, created_by, created_at, updated_at",
    )
    .bind(a)
    .bind(bob.user_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        inserted.1, alice.user_id,
        "the inserting caller, not the value sent"
    );
    assert!(inserted.2.timestamp() > 1_700_000_000 && inserted.3 == inserted.2);

    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(claims(bob.user_id))
        .execute(&mut *tx)
        .await
        .unwrap();
    let updated: Stamps = sqlx::query_as(
        "update customers set city = 'Surabaya', created_by = $2, created_at = now(), updated_at = '2000-01-01'
          where tenant_id = $1 and customer_id = $3
         returning customer_id, created_by, created_at, updated_at",
    )
    .bind(a)
    .bind(bob.user_id)
    .bind(inserted.0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select now()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(updated.1, alice.user_id, "created_by never changes");
    assert_eq!(updated.2, inserted.2, "created_at never changes");
    assert_eq!(updated.3, now, "updated_at is the updating transaction's");
    assert!(updated.3 > inserted.3);
}

#[tokio::test]
async fn get_me_returns_the_callers_profile_only() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let a = db.create_tenant("tenant-a").await;
    let b = db.create_tenant("tenant-b").await;
    let alice = db.create_user(a, "finance").await;
    let bob = db.create_user(b, "finance").await;

    let res = app.get_as(&alice, "/api/me").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], alice.user_id.to_string());
    assert_eq!(body["tenant_slug"], "tenant-a");
    assert_eq!(body["app_role"], "finance");

    // Bob's user id with tenant A's claim: Bob has no profile in tenant A,
    // so the database refuses the request.
    let forged = caller(a, bob.user_id, "finance");
    let res = app.get_as(&forged, "/api/me").await;
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_profile");
}

#[tokio::test]
async fn a_token_of_an_unknown_tenant_sees_nothing() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let a = db.create_tenant("tenant-a").await;
    let alice = db.create_user(a, "director").await;

    let stranger = caller(Uuid::new_v4(), alice.user_id, "director");
    let res = app.get_as(&stranger, "/api/me").await;
    assert_eq!(res.status(), 403);

    // Refused before any query: there is no profile for it anywhere.
    let err = db.try_as_user(&stranger).await.expect_err("refused");
    assert_eq!(err.code(), "no_profile");
}
