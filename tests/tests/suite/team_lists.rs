//! What a team's list costs per row: the customers a sales team reaches
//! through its prospects are tested against an array the planner read
//! while it planned, a constant (which PostgreSQL hashes: one lookup per
//! row), not against the sub-select's array (a linear search per row, 2,000
//! comparisons per fetched row for a team of 2,000 customers). A constant
//! in a plan outlives the caller it was read for (prepared statements,
//! PL/pgSQL keep plans), so a kept plan run for another team, or after the
//! team's prospects changed, must still read exactly the caller's own
//! customers (`policy_in_team_ids`, platform.sql; `team_ids_planned`,
//! crm.sql). No timings.

use bizos_bff::auth::Caller;
use bizos_tests::TestDb;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// Customers nobody of either team may read.
const CROWD: i64 = 2_000;

struct Teams {
    tenant: Uuid,
    /// Manager of Alice, who owns prospects of 20 customers.
    north: Caller,
    /// Manager of Bob, who owns prospects of 15 others.
    south: Caller,
    alice: Caller,
}

async fn teams(db: &TestDb) -> Teams {
    let tenant = db.create_tenant("teams").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let north = db.create_user(tenant, "sales_manager").await;
    let south = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    db.set_manager(&alice, &north).await;
    db.set_manager(&bob, &south).await;
    sqlx::query(
        "insert into customers (tenant_id, company_name, city, created_by)
         select $1, 'PT Ramai ' || i, 'Jakarta', $2 from generate_series(1, $3) i",
    )
    .bind(tenant)
    .bind(marketing.user_id)
    .bind(CROWD)
    .execute(&db.owner)
    .await
    .unwrap();
    // Alice's prospects: customers 1-20; Bob's: 101-115.
    sqlx::query(
        "insert into prospects (tenant_id, customer_id, owner_user_id)
         select tenant_id, customer_id,
                case when substr(company_name, 10)::int <= 20 then $2 else $3 end
           from customers
          where tenant_id = $1
            and (substr(company_name, 10)::int <= 20 or substr(company_name, 10)::int between 101 and 115)",
    )
    .bind(tenant)
    .bind(alice.user_id)
    .bind(bob.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::raw_sql("analyze customers; analyze prospects; analyze profiles")
        .execute(&db.owner)
        .await
        .unwrap();
    Teams {
        tenant,
        north,
        south,
        alice,
    }
}

/// A request's first statement on `conn` (as the BFF's, bff/src/db.rs),
/// inside the transaction the caller opened.
async fn authenticate(conn: &mut PgConnection, who: &Caller) {
    sqlx::query(
        "select authenticate_request()
           from (select set_config('role', 'bizos_authenticated', true),
                        set_config('request.jwt.claims', $1, true)) r",
    )
    .bind(who.claims.to_string())
    .execute(conn)
    .await
    .unwrap();
}

/// The customers customer_readable allows the caller, row by row as the
/// owner with the caller's claims.
async fn allowed(db: &TestDb, who: &Caller, tenant: Uuid) -> Vec<Uuid> {
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(who.claims.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids = sqlx::query_scalar(
        "select customer_id from customers
          where tenant_id = $1 and customer_readable(customer_scope(), created_by, customer_id)
          order by 1",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    ids
}

/// Every condition of a JSON plan (filters, rechecks, index conditions).
fn conditions(node: &Value, out: &mut Vec<String>) {
    if let Some(map) = node.as_object() {
        for (k, v) in map {
            if k.ends_with("Filter") || k.ends_with("Cond") {
                if let Some(s) = v.as_str() {
                    out.push(s.to_string());
                }
            }
            conditions(v, out);
        }
    } else if let Some(list) = node.as_array() {
        for v in list {
            conditions(v, out);
        }
    }
}

#[tokio::test]
async fn a_team_page_tests_its_rows_against_a_constant() {
    let db = TestDb::new().await;
    let t = teams(&db).await;
    let mut tx = db.as_user(&t.north).await;
    // The page as GET /api/customers?limit=50 reads it (bff/src/routes/list.rs).
    let plan: Value = sqlx::query_scalar(&format!(
        "explain (format json)
         select * from customers x where x.tenant_id = '{}'
          order by x.created_at desc, x.customer_id desc limit 51",
        t.tenant
    ))
    .persistent(false)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut conds = Vec::new();
    conditions(&plan, &mut conds);
    // The team's 20 customers as a constant array (PostgreSQL hashes those
    // of 9 elements or more), not only `= ANY ($n)` of a sub-select.
    assert!(
        conds
            .iter()
            .any(|c| c.contains("customer_id = ANY ('{") && c.contains("::uuid[]")),
        "the team's customers are not a constant of the plan:\n{}",
        conds.join("\n")
    );
}

#[tokio::test]
async fn a_kept_plan_reads_the_callers_own_team() {
    let db = TestDb::new().await;
    let t = teams(&db).await;
    let north = allowed(&db, &t.north, t.tenant).await;
    let south = allowed(&db, &t.south, t.tenant).await;
    assert_eq!(north.len(), 20);
    assert_eq!(south.len(), 15);

    // One connection: a prepared statement without parameters keeps the
    // plan it made at its first run (the north team's array in it).
    let mut conn = db.app.acquire().await.unwrap();
    let mut seen = Vec::new();
    for (who, expected) in [(&t.north, &north), (&t.south, &south), (&t.north, &north)] {
        let mut tx = conn.begin().await.unwrap();
        authenticate(&mut tx, who).await;
        if seen.is_empty() {
            sqlx::raw_sql("prepare team_page as select customer_id from customers order by 1")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let ids: Vec<Uuid> = sqlx::query_scalar("execute team_page")
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(&ids, expected, "run {} of the kept plan", seen.len() + 1);
        seen.push(ids);
    }

    // The team's prospects change after the plan was made: Alice takes a
    // customer of the crowd; the kept plan reads it too.
    sqlx::query(
        "insert into prospects (tenant_id, customer_id, owner_user_id)
         select tenant_id, customer_id, $2 from customers
          where tenant_id = $1 and company_name = 'PT Ramai 1999'",
    )
    .bind(t.tenant)
    .bind(t.alice.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    let north = allowed(&db, &t.north, t.tenant).await;
    assert_eq!(north.len(), 21);
    let mut tx = conn.begin().await.unwrap();
    authenticate(&mut tx, &t.north).await;
    let ids: Vec<Uuid> = sqlx::query_scalar("execute team_page")
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    sqlx::raw_sql("deallocate team_page")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ids, north, "the kept plan after Alice's new prospect");
}

/// Heap rows of `table` fetched so far in this transaction.
async fn heap_rows(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
           from pg_catalog.pg_stat_xact_user_tables where relid = $1::regclass",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// GET /api/invoices reads `v_invoices`: a page of 50 costs the ledger of
/// its invoices, not the tenant's (the view joined v_invoice_outstanding,
/// which aggregated every invoice, payment, refund and credit note of the
/// tenant for every page, the owner's too), and says what
/// v_invoice_outstanding says of them.
#[tokio::test]
async fn a_page_of_invoices_reads_the_ledger_of_its_invoices() {
    use bizos_bff::routes::list::{List, Page};
    let db = TestDb::new().await;
    let tenant = db.create_tenant("ledger").await;
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    sqlx::raw_sql(&format!(
        "begin;
         alter table invoices disable trigger user;
         insert into customers (tenant_id, company_name, created_by)
         values ('{tenant}', 'PT Ramai', '{finance}');
         insert into invoices (tenant_id, invoice_no, customer_id, issue_date, due_date, subtotal, status,
                               created_by, created_at)
         select c.tenant_id, 'INV-' || i, c.customer_id, current_date - 40, current_date - 10, 1000000, 'ISSUED',
                '{finance}', now() - i * interval '1 minute'
           from customers c, generate_series(1, {n}) i
          where c.tenant_id = '{tenant}';
         alter table invoices enable trigger user;
         commit;
         analyze customers; analyze invoices;",
        finance = finance.user_id,
        n = CROWD,
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // A payment of the newest invoice (paid today, the trigger's default).
    let newest: Uuid = sqlx::query_scalar(
        "select invoice_id from invoices where tenant_id = $1 order by created_at desc limit 1",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    sqlx::query(
        "insert into payments (tenant_id, invoice_id, amount, reference) values ($1, $2, 250000, 'TRF-1')",
    )
    .bind(tenant)
    .bind(newest)
    .execute(&db.owner)
    .await
    .unwrap();

    for who in [&finance, &director] {
        let role = who.claims["app_role"].as_str().unwrap_or_default();
        let mut tx = db.as_user(who).await;
        let before = heap_rows(&mut tx, "invoices").await;
        let page = List::new("v_invoices", "invoice_id", tenant)
            .fetch(
                &mut tx,
                Page {
                    limit: Some(50),
                    after: None,
                },
            )
            .await
            .unwrap();
        let read = heap_rows(&mut tx, "invoices").await - before;
        assert_eq!(page.items.len(), 50, "{role}");
        // The page and one more: their ledger is read from payments,
        // refunds and credit notes by invoice, not from the tenant's
        // invoices again.
        let bound = 51 + 10;
        assert!(
            read <= bound,
            "{role}: a page of invoices read {read} invoice rows (at most {bound} expected, {CROWD} in the tenant)"
        );
        // What v_invoice_outstanding says of the page's invoices.
        let agree: bool = sqlx::query_scalar(
            "select bool_and(o.outstanding = (p ->> 'outstanding')::numeric
                             and o.days_past_due = (p ->> 'days_past_due')::int
                             and o.is_overdue = (p ->> 'is_overdue')::boolean
                             and o.aging_bucket is not distinct from p ->> 'aging_bucket')
               from jsonb_array_elements($1) p
               join v_invoice_outstanding o on o.invoice_id = (p ->> 'invoice_id')::uuid",
        )
        .bind(serde_json::to_value(&page.items).unwrap())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        assert!(
            agree,
            "{role}: the page disagrees with v_invoice_outstanding"
        );
        let paid = page
            .items
            .iter()
            .find(|i| i["invoice_id"] == serde_json::json!(newest))
            .and_then(|i| i["outstanding"].as_f64());
        assert_eq!(
            paid,
            Some(750_000.0),
            "{role}: the newest invoice's outstanding"
        );
        tx.rollback().await.unwrap();
    }
}
