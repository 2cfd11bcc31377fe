//! The RLS matrix: for every table and view of the business schema and every
//! app role, tenant A never sees, changes or adds tenant B's rows; directors
//! read and write nothing; role scopes hold within a tenant.

use bizos_bff::auth::Caller;
use bizos_tests::{caller, TestDb};
use serde_json::Value;
use uuid::Uuid;

use bizos_bff::auth::APP_ROLES as ROLES;

async fn user_of(db: &TestDb, tenant: Uuid, role: &str) -> Caller {
    let user: Uuid = sqlx::query_scalar(
        "select user_id from profiles where tenant_id = $1 and app_role = $2 order by email limit 1",
    )
    .bind(tenant)
    .bind(role)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    caller(tenant, user, role)
}

/// Tables of the business schema under RLS that carry tenant_id.
async fn tenant_tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
           join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
          where c.relkind = 'r' and c.relrowsecurity
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn tenant_views(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
           join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
          where c.relkind = 'v'
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// Tries to insert a copy of one of `victim`'s rows of `table` (new keys
/// are not needed: the write must fail before any key is checked, or the
/// count proves nothing was added).
async fn try_copy_row(db: &TestDb, who: &Caller, table: &str, victim: Uuid) -> bool {
    let columns: Vec<String> = sqlx::query_scalar(
        "select quote_ident(column_name) from information_schema.columns
          where table_schema = 'public' and table_name = $1
            and is_generated = 'NEVER' and identity_generation is null
          order by ordinal_position",
    )
    .bind(table)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let row: Option<Value> = sqlx::query_scalar(&format!(
        "select to_jsonb(t) from {table} t where tenant_id = $1 limit 1"
    ))
    .bind(victim)
    .fetch_optional(&db.owner)
    .await
    .unwrap();
    let Some(row) = row else { return false };
    let cols = columns.join(", ");
    let mut tx = db.as_user(who).await;
    let inserted = sqlx::query(&format!(
        "insert into {table} ({cols}) select {cols} from jsonb_populate_record(null::{table}, $1)"
    ))
    .bind(row)
    .execute(&mut *tx)
    .await;
    if inserted.is_ok() {
        tx.commit().await.unwrap();
        return true;
    }
    false
}

#[tokio::test]
async fn tenant_a_never_sees_changes_or_adds_tenant_b_rows() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    let tables = tenant_tables(&db).await;
    let views = tenant_views(&db).await;
    assert!(tables.len() >= 15, "{tables:?}");
    for table in &tables {
        let b_rows = count(
            &db,
            &format!("select count(*) from {table} where tenant_id = '{b}'"),
        )
        .await;
        for role in ROLES {
            let who = user_of(&db, a, role).await;
            let mut tx = db.as_user(&who).await;
            let seen: i64 = sqlx::query_scalar(&format!(
                "select count(*) from {table} where tenant_id = $1"
            ))
            .bind(b)
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{role} select {table}: {e}"));
            assert_eq!(seen, 0, "{role} sees tenant B rows of {table}");
            drop(tx);
            for write in [
                format!("update {table} set tenant_id = tenant_id where tenant_id = $1"),
                format!("delete from {table} where tenant_id = $1"),
            ] {
                let mut tx = db.as_user(&who).await;
                if let Ok(done) = sqlx::query(&write).bind(b).execute(&mut *tx).await {
                    assert_eq!(done.rows_affected(), 0, "{role}: {write}");
                }
            }
            assert!(
                !try_copy_row(&db, &who, table, b).await,
                "{role} inserted into tenant B's {table}"
            );
            let after = count(
                &db,
                &format!("select count(*) from {table} where tenant_id = '{b}'"),
            )
            .await;
            assert_eq!(after, b_rows, "{role} changed tenant B's {table}");
        }
    }
    for view in &views {
        for role in ROLES {
            let who = user_of(&db, a, role).await;
            let mut tx = db.as_user(&who).await;
            let seen: i64 =
                sqlx::query_scalar(&format!("select count(*) from {view} where tenant_id = $1"))
                    .bind(b)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap_or_else(|e| panic!("{role} select {view}: {e}"));
            assert_eq!(seen, 0, "{role} sees tenant B rows of {view}");
        }
    }
}

#[tokio::test]
async fn directors_read_everything_and_write_nothing() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    let director = user_of(&db, a, "director").await;
    for table in tenant_tables(&db).await {
        let total = count(
            &db,
            &format!("select count(*) from {table} where tenant_id = '{a}'"),
        )
        .await;
        let mut tx = db.as_user(&director).await;
        let seen: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("director select {table}: {e}"));
        assert_eq!(seen, total, "the director reads all of {table}");
        drop(tx);
        for write in [
            format!("update {table} set tenant_id = tenant_id"),
            format!("delete from {table}"),
        ] {
            let mut tx = db.as_user(&director).await;
            if let Ok(done) = sqlx::query(&write).execute(&mut *tx).await {
                assert_eq!(done.rows_affected(), 0, "director: {write}");
            }
        }
        assert!(
            !try_copy_row(&db, &director, &table, a).await,
            "the director inserted into {table}"
        );
    }
}

#[tokio::test]
async fn role_scopes_hold_within_a_tenant() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    let checks: [(&str, &str); 6] = [
        ("ops", "select count(*) from tickets where dept_target is distinct from my_dept_code()"),
        ("salesperson", "select count(*) from leads where sales_owner_user_id is distinct from bizos.uid() and created_by is distinct from bizos.uid()"),
        ("salesperson", "select count(*) from invoices where not owns_customer(customer_id)"),
        ("sales_manager", "select count(*) from invoices where not owns_customer(customer_id)"),
        ("ops", "select count(*) from invoices"),
        ("marketing_manager", "select count(*) from payments"),
    ];
    for (role, sql) in checks {
        let who = user_of(&db, a, role).await;
        let mut tx = db.as_user(&who).await;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
        assert_eq!(n, 0, "{role}: {sql}");
    }
    // And the scopes are not empty: each role sees its own part.
    for (role, sql) in [
        ("ops", "select count(*) from tickets"),
        ("salesperson", "select count(*) from leads"),
        ("finance", "select count(*) from invoices"),
    ] {
        let who = user_of(&db, a, role).await;
        let mut tx = db.as_user(&who).await;
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
        assert!(n > 0, "{role} sees nothing at all: {sql}");
    }
}
