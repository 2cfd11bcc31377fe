//! Audit coverage: tenants, profiles and
//! role_permissions are audited, and every entry carries the request id the
//! BFF sets (`request.id`), which is part of the entry's hash.

use bizos_tests::{code, TestDb};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

/// A transaction of `user` as the BFF opens it, with `request_id` set the
/// way the BFF sets it (or not at all).
async fn begin_request(
    db: &TestDb,
    tenant: Uuid,
    user: Uuid,
    request_id: Option<&str>,
) -> PgConnection {
    let mut conn = PgConnection::connect(&db.url("bizos_app")).await.unwrap();
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    sqlx::query(
        "select set_config('role', 'bizos_authenticated', true),
                set_config('request.jwt.claims', $1, true)",
    )
    .bind(json!({"sub": user, "tenant_id": tenant, "app_role": "super_admin"}).to_string())
    .execute(&mut conn)
    .await
    .unwrap();
    if let Some(id) = request_id {
        sqlx::query("select set_config('request.id', $1, true)")
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

async fn commit(mut conn: PgConnection) {
    sqlx::query("commit").execute(&mut conn).await.unwrap();
}

async fn verify(db: &TestDb, tenant: Uuid) -> Vec<String> {
    sqlx::query("select chain, seq, problem from bizos.audit_verify($1)")
        .bind(tenant)
        .fetch_all(&db.owner)
        .await
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "chain {} entry {}: {}",
                r.get::<i16, _>(0),
                r.get::<i64, _>(1),
                r.get::<String, _>(2)
            )
        })
        .collect()
}

#[tokio::test]
async fn role_and_permission_changes_are_audited_with_the_request_id() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("audit-roles").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let seller = db.create_user(tenant, "salesperson").await;

    // A role change and a permission grant in one request.
    let mut tx = begin_request(&db, tenant, admin.user_id, Some("req-role-1")).await;
    let n = sqlx::query("update profiles set app_role = 'sales_manager' where user_id = $1")
        .bind(seller.user_id)
        .execute(&mut tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1);
    sqlx::query(
        "insert into role_permissions (tenant_id, app_role, permission)
         values ($1, 'finance', 'invoice.delete')",
    )
    .bind(tenant)
    .execute(&mut tx)
    .await
    .unwrap();
    commit(tx).await;

    // A permission revoked in a request without an id.
    let mut tx = begin_request(&db, tenant, admin.user_id, None).await;
    sqlx::query(
        "delete from role_permissions
          where tenant_id = $1 and app_role = 'finance' and permission = 'invoice.delete'",
    )
    .bind(tenant)
    .execute(&mut tx)
    .await
    .unwrap();
    commit(tx).await;

    let row = sqlx::query(
        "select actor, before, after, request_id, db_role from bizos.audit_log
          where tenant_id = $1 and table_name = 'public.profiles' and action = 'UPDATE'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .expect("one profile update entry");
    assert_eq!(row.get::<Option<Uuid>, _>("actor"), Some(admin.user_id));
    assert_eq!(
        row.get::<Value, _>("before")["app_role"],
        json!("salesperson")
    );
    assert_eq!(
        row.get::<Value, _>("after")["app_role"],
        json!("sales_manager")
    );
    assert_eq!(
        row.get::<Value, _>("after")["user_id"],
        json!(seller.user_id)
    );
    assert_eq!(
        row.get::<Option<String>, _>("request_id").as_deref(),
        Some("req-role-1")
    );
    assert_eq!(row.get::<String, _>("db_role"), "bizos_app");

    let perms = sqlx::query(
        "select action, actor, before, after, request_id from bizos.audit_log
          where tenant_id = $1 and table_name = 'public.role_permissions'
            and coalesce(after, before) ->> 'permission' = 'invoice.delete'
            and coalesce(after, before) ->> 'app_role' = 'finance'
          order by at, seq",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let summary: Vec<(String, Option<Uuid>, Option<String>)> = perms
        .iter()
        .map(|r| (r.get("action"), r.get("actor"), r.get("request_id")))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "INSERT".to_owned(),
                Some(admin.user_id),
                Some("req-role-1".to_owned())
            ),
            ("DELETE".to_owned(), Some(admin.user_id), None),
        ]
    );
    assert_eq!(
        perms[0].get::<Value, _>("after")["app_role"],
        json!("finance")
    );
    assert_eq!(
        perms[1].get::<Value, _>("before")["app_role"],
        json!("finance")
    );

    // audit_history returns the request id.
    let history: Vec<(String, Option<String>)> =
        sqlx::query("select action, request_id from bizos.audit_history('profiles', $1)")
            .bind(json!({"tenant_id": tenant, "user_id": seller.user_id}))
            .fetch_all(&db.owner)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        history,
        vec![
            ("INSERT".to_owned(), None),
            ("UPDATE".to_owned(), Some("req-role-1".to_owned()))
        ]
    );

    // The tenant row is audited too (its creation, by the owner).
    let tenant_entries: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where tenant_id = $1 and table_name = 'public.tenants'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(tenant_entries, 1);

    assert_eq!(verify(&db, tenant).await, Vec::<String>::new());

    // The request id is covered by the hash: changing it (a superuser can)
    // is reported.
    let url = bizos_sql::derive_dsn(&bizos_tests::admin_url(), None, &db.name).unwrap();
    let mut su = PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "update bizos.audit_log set request_id = 'req-forged'
          where tenant_id = $1 and table_name = 'public.profiles' and action = 'UPDATE'",
    )
    .bind(tenant)
    .execute(&mut su)
    .await
    .unwrap();
    let breaks = verify(&db, tenant).await;
    assert_eq!(breaks.len(), 1, "{breaks:?}");
    assert!(breaks[0].contains("was modified"), "{breaks:?}");
}

#[tokio::test]
async fn the_request_id_is_null_when_unset_and_cut_when_huge() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("audit-reqid").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let other = db.create_user(tenant, "finance").await;

    // An empty setting (what a reset leaves behind) is NULL, not an error.
    let mut tx = begin_request(&db, tenant, admin.user_id, Some("")).await;
    sqlx::query("update profiles set full_name = 'Renamed Once' where user_id = $1")
        .bind(other.user_id)
        .execute(&mut tx)
        .await
        .unwrap();
    commit(tx).await;
    let long = "r".repeat(500);
    let mut tx = begin_request(&db, tenant, admin.user_id, Some(&long)).await;
    sqlx::query("update profiles set full_name = 'Renamed Twice' where user_id = $1")
        .bind(other.user_id)
        .execute(&mut tx)
        .await
        .unwrap();
    commit(tx).await;

    let ids: Vec<Option<String>> = sqlx::query_scalar(
        "select request_id from bizos.audit_log
          where tenant_id = $1 and table_name = 'public.profiles' and action = 'UPDATE'
          order by at, seq",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], None);
    assert_eq!(ids[1].as_deref(), Some(&long[..200]));
    assert_eq!(verify(&db, tenant).await, Vec::<String>::new());

    // A request role still cannot read the audit log directly.
    let mut tx = begin_request(&db, tenant, admin.user_id, Some("req-x")).await;
    let err = sqlx::query("select count(*) from bizos.audit_log")
        .execute(&mut tx)
        .await
        .expect_err("request roles do not read the audit log");
    assert_eq!(code(&err), "42501", "{err}");
}

#[tokio::test]
async fn a_stage_change_is_audited_once_on_the_prospect_and_history_edits_are_audited() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("audit-stages").await;
    let admin = db.create_user(tenant, "super_admin").await;

    // A prospect created and moved on in one request: two history rows.
    let mut tx = begin_request(&db, tenant, admin.user_id, Some("req-stage-1")).await;
    let customer: Value = sqlx::query_scalar("select find_or_create_customer('PT Tahap Audit')")
        .fetch_one(&mut tx)
        .await
        .unwrap();
    let customer: Uuid = customer["customer_id"].as_str().unwrap().parse().unwrap();
    let prospect: Uuid = sqlx::query_scalar("select find_or_create_prospect($1)")
        .bind(customer)
        .fetch_one(&mut tx)
        .await
        .unwrap();
    sqlx::query("select prospect_change_stage($1, 'CONTACTED')")
        .bind(prospect)
        .execute(&mut tx)
        .await
        .unwrap();
    commit(tx).await;
    let history: Vec<(Option<String>, String)> = sqlx::query_as(
        "select from_stage, to_stage from prospect_stage_history
          where tenant_id = $1 and prospect_id = $2 order by changed_at, to_stage desc",
    )
    .bind(tenant)
    .bind(prospect)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![
            (None, "NEW".to_owned()),
            (Some("NEW".to_owned()), "CONTACTED".to_owned())
        ]
    );

    // The prospect's own entries say what the history rows say, with who,
    // when and in which request; the history rows add no entries of their own.
    let entries = |table: &'static str| {
        let db = &db;
        async move {
            sqlx::query(
                "select action, actor, before ->> 'stage' as before_stage,
                        after ->> 'stage' as after_stage, request_id
                   from bizos.audit_log where tenant_id = $1 and table_name = $2
                  order by at, chain, seq",
            )
            .bind(tenant)
            .bind(table)
            .fetch_all(&db.owner)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("action"),
                    r.get::<Option<Uuid>, _>("actor"),
                    r.get::<Option<String>, _>("before_stage"),
                    r.get::<Option<String>, _>("after_stage"),
                    r.get::<Option<String>, _>("request_id"),
                )
            })
            .collect::<Vec<_>>()
        }
    };
    let req = Some("req-stage-1".to_owned());
    assert_eq!(
        entries("public.prospects").await,
        vec![
            (
                "INSERT".to_owned(),
                Some(admin.user_id),
                None,
                Some("NEW".to_owned()),
                req.clone()
            ),
            (
                "UPDATE".to_owned(),
                Some(admin.user_id),
                Some("NEW".to_owned()),
                Some("CONTACTED".to_owned()),
                req
            ),
        ]
    );
    assert_eq!(entries("public.prospect_stage_history").await, vec![]);

    // Editing or removing history is audited: the owner's hand, or the
    // cascade of a deleted prospect.
    sqlx::query(
        "update prospect_stage_history set changed_at = changed_at - interval '1 day'
          where tenant_id = $1 and prospect_id = $2 and to_stage = 'CONTACTED'",
    )
    .bind(tenant)
    .bind(prospect)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query("delete from prospects where tenant_id = $1 and prospect_id = $2")
        .bind(tenant)
        .bind(prospect)
        .execute(&db.owner)
        .await
        .unwrap();
    let actions: Vec<String> = entries("public.prospect_stage_history")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(actions, ["UPDATE", "DELETE", "DELETE"]);
    assert_eq!(verify(&db, tenant).await, Vec::<String>::new());
}
