//! What a list or a count costs: the rows the caller may see plus the
//! page, not the tenant's size. In a tenant of ten thousand customers of
//! which a salesperson may read three, the customers page of the API
//! (the BFF's own list query, `bff/src/routes/list.rs`) and a count read
//! about those rows for every app role: the heap rows the statement fetched
//! from `customers` (`pg_stat_xact_user_tables`, the transaction's own
//! counters) stay within the visible rows plus the page (a count by a
//! caller who reads the whole tenant may read the table). Before the
//! customers policy was index-driven, a restricted caller's page or count
//! walked every customer of the tenant. No timings.
//!
//! The policy states customer_readable's branches in a form an index can
//! serve; `the_policy_means_customer_readable` checks, for every role, that
//! it lets through exactly the customers customer_readable allows.

use bizos_bff::auth::Caller;
use bizos_bff::routes::list::{List, Page};
use bizos_tests::TestDb;
use sqlx::PgConnection;
use uuid::Uuid;

/// Customers of the tenant that nobody restricted may read.
const CROWD: i64 = 10_000;
/// Rows of the page the BFF asks for (50 and one to know there is more).
const PAGE: i64 = 50;

struct Org {
    tenant: Uuid,
    /// (caller, customers they may read)
    callers: Vec<(Caller, i64)>,
}

/// A tenant of CROWD customers created by its marketing manager, plus: one
/// customer the salesperson created and two of which she owns a prospect,
/// one of which her manager owns a prospect. Another tenant of CROWD
/// customers beside it.
async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("wide").await;
    let other = db.create_tenant("other").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let finance = db.create_user(tenant, "finance").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    db.set_manager(&alice, &manager).await;
    let other_marketing = db.create_user(other, "marketing_manager").await;
    for (t, by) in [
        (tenant, marketing.user_id),
        (other, other_marketing.user_id),
    ] {
        sqlx::query(
            "insert into customers (tenant_id, company_name, city, created_by)
             select $1, 'PT Ramai ' || i, 'Jakarta', $2 from generate_series(1, $3) i",
        )
        .bind(t)
        .bind(by)
        .bind(CROWD)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    // Alice's own customer, and prospects: two of the crowd hers, one her
    // manager's, one Bob's (none of which Alice or her manager may read).
    sqlx::query(
        "insert into customers (tenant_id, company_name, created_by) values ($1, 'PT Milik Alice', $2)",
    )
    .bind(tenant)
    .bind(alice.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    for (n, owner) in [
        (1, alice.user_id),
        (2, alice.user_id),
        (3, manager.user_id),
        (4, bob.user_id),
    ] {
        sqlx::query(
            "insert into prospects (tenant_id, customer_id, owner_user_id)
             select tenant_id, customer_id, $3 from customers
              where tenant_id = $1 and company_name = 'PT Ramai ' || $2",
        )
        .bind(tenant)
        .bind(n)
        .bind(owner)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    sqlx::raw_sql("analyze customers; analyze prospects; analyze profiles")
        .execute(&db.owner)
        .await
        .unwrap();
    let all = CROWD + 1;
    Org {
        tenant,
        callers: vec![
            (admin, all),
            (director, all),
            (marketing, all),
            (finance, all),
            (manager, 3),
            (alice, 3),
            (bob, 1),
            (ops, 0),
        ],
    }
}

/// Heap rows of `customers` fetched so far in this transaction (by
/// sequential, index and bitmap scans).
async fn rows_read(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
           from pg_catalog.pg_stat_xact_user_tables where relid = 'customers'::regclass",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_page_and_a_count_read_the_visible_rows_not_the_tenant() {
    let db = TestDb::new().await;
    let org = org(&db).await;
    for (who, visible) in &org.callers {
        let role = who.claims["app_role"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The page, as GET /api/customers?limit=50 runs it.
        let mut tx = db.as_user(who).await;
        let before = rows_read(&mut tx).await;
        let page = List::new("customers", "customer_id", org.tenant)
            .fetch(
                &mut tx,
                Page {
                    limit: Some(PAGE),
                    after: None,
                },
            )
            .await
            .unwrap();
        let read = rows_read(&mut tx).await - before;
        assert_eq!(page.items.len() as i64, (*visible).min(PAGE), "{role}");
        let bound = (*visible).min(PAGE + 1) + 10;
        assert!(
            read <= bound,
            "{role}: a page of {} read {read} customer rows (at most {bound} expected)",
            page.items.len()
        );
        tx.rollback().await.unwrap();

        // Counting what the caller may read.
        let mut tx = db.as_user(who).await;
        let before = rows_read(&mut tx).await;
        let n: i64 = sqlx::query_scalar("select count(*) from customers")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let read = rows_read(&mut tx).await - before;
        assert_eq!(n, *visible, "{role}");
        // A restricted caller's rows; the table for those who read the
        // whole tenant (a sequential scan reads the other tenant's too).
        let bound = if *visible > CROWD {
            2 * CROWD + 10
        } else {
            visible + 10
        };
        assert!(
            read <= bound,
            "{role}: counting {n} customers read {read} rows (at most {bound} expected)"
        );
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn the_policy_means_customer_readable() {
    let db = TestDb::new().await;
    let org = org(&db).await;
    for (who, visible) in &org.callers {
        let role = who.claims["app_role"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut tx = db.as_user(who).await;
        let seen: Vec<Uuid> = sqlx::query_scalar("select customer_id from customers order by 1")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        // customer_readable row by row, as the functions that run as the
        // owner apply it, with the caller's claims.
        let mut tx = db.owner.begin().await.unwrap();
        sqlx::query("select set_config('request.jwt.claims', $1, true)")
            .bind(who.claims.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let allowed: Vec<Uuid> = sqlx::query_scalar(
            "select customer_id from customers
              where tenant_id = $1 and customer_readable(customer_scope(), created_by, customer_id)
              order by 1",
        )
        .bind(org.tenant)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(seen.len() as i64, *visible, "{role}");
        assert_eq!(seen, allowed, "{role}");
    }
}
