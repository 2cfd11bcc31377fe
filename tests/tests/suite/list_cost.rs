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

/// Rows of each of the other lists that nobody restricted may read.
const CROWD_ROWS: i64 = 10_000;

/// The other lists, as their routes read them: (the relation the page
/// reads, its key, the table whose heap rows are counted, the rule of the
/// table's select policies as it was written before they were made
/// index-driven (V3, V6, V14, V35), evaluated row by row as the owner with
/// the caller's claims).
///
/// Invoices are read from the table, not from `v_invoices` (the route's
/// relation), which reads each invoice of the page again for its ledger
/// (`team_lists::a_page_of_invoices_reads_the_ledger_of_its_invoices`).
pub(crate) const LISTS: &[(&str, &str, &str, &str)] = &[
    (
        "leads",
        "lead_id",
        "leads",
        "sees_all_crm() or sales_owner_user_id = any (my_team_ids())
         or (created_by = any (my_team_ids()) and not handed_over)
         or (sales_owner_user_id is null and bizos.app_role() = 'sales_manager')",
    ),
    (
        "prospects",
        "prospect_id",
        "prospects",
        "sees_all_crm() or owner_user_id = any (my_team_ids())
         or (owner_user_id is null and bizos.app_role() = 'sales_manager')",
    ),
    (
        "sales_activities",
        "activity_id",
        "sales_activities",
        "bizos.app_role() in ('super_admin', 'director', 'marketing_manager')
         or owner_user_id = any (my_team_ids()) or has_permission('crm.read_all')",
    ),
    (
        "v_tickets",
        "ticket_id",
        "tickets",
        "bizos.app_role() in ('super_admin', 'director')
         or created_by = bizos.uid() or assignee_user_id = bizos.uid()
         or (bizos.app_role() = 'ops' and dept_target = my_dept_code())
         or (bizos.app_role() = 'finance' and dept_target = 'FIN')
         or (bizos.app_role() = 'marketing_manager' and related_lead_id is not null)
         or (bizos.app_role() in ('sales_manager', 'salesperson')
             and (created_by = any (my_team_ids())
                  or (related_customer_id is not null and owns_customer(related_customer_id))
                  or (related_lead_id is not null
                      and exists (select 1 from leads l
                                   where l.tenant_id = x.tenant_id and l.lead_id = x.related_lead_id
                                     and l.sales_owner_user_id = any (my_team_ids())))))
         or has_permission('ticket.read_all')",
    ),
    (
        "invoices",
        "invoice_id",
        "invoices",
        "bizos.app_role() in ('super_admin', 'director', 'finance')
         or (bizos.app_role() in ('sales_manager', 'salesperson') and owns_customer(customer_id))
         or has_permission('invoice.read_all')",
    ),
];

struct Lists {
    tenant: Uuid,
    callers: Vec<Caller>,
}

/// A tenant of CROWD_ROWS customers with a prospect, a lead, a sales
/// activity, a ticket and an invoice each, all of Carol, a salesperson of
/// no team (the tickets created by her, sent to SALES). Alice
/// (salesperson, reporting to the sales manager) owns the prospects of two
/// customers more, and their leads, activities and invoices; the tickets
/// of her leads relate to them. The manager owns one prospect (with its
/// lead and so on); three leads have no sales owner; Alice created two of
/// Carol's leads, one of which was handed over; Bob (a salesperson of
/// no team) is assigned one ticket; two tickets are sent to OPS (the ops
/// user's department), two to FIN; Alice created one ticket of her own.
async fn lists(db: &TestDb) -> Lists {
    let tenant = db.create_tenant("lists").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let finance = db.create_user(tenant, "finance").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let carol = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    db.set_manager(&alice, &manager).await;
    sqlx::raw_sql(&format!(
        "begin;
         alter table prospects disable trigger user;
         alter table leads disable trigger user;
         alter table sales_activities disable trigger user;
         alter table tickets disable trigger user;
         alter table invoices disable trigger user;
         insert into customers (tenant_id, company_name, created_by, created_at)
         select '{tenant}', 'PT Ramai ' || i, '{marketing}', now() - i * interval '1 hour'
           from generate_series(1, {n} + 3) i;
         insert into prospects (tenant_id, customer_id, owner_user_id, created_by, created_at)
         select tenant_id, customer_id,
                case company_name when 'PT Ramai 7' then '{alice}'::uuid when 'PT Ramai 1500' then '{alice}'::uuid
                                  when 'PT Ramai 900' then '{manager}'::uuid else '{carol}'::uuid end,
                '{marketing}', created_at
           from customers where tenant_id = '{tenant}';
         insert into leads (tenant_id, channel, status, company_name, customer_id, prospect_id,
                            sales_owner_user_id, assigned_at, created_by, created_at)
         select p.tenant_id, 'website', case when p.n <= 3 then 'NEW' else 'ASSIGNED' end, 'PT Lead ' || p.n,
                p.customer_id, p.prospect_id, case when p.n > 3 then p.owner_user_id end,
                case when p.n > 3 then p.created_at end, '{marketing}', p.created_at
           from (select *, row_number() over (order by created_at) as n from prospects
                  where tenant_id = '{tenant}') p;
         update leads set created_by = '{alice}', handed_over = company_name = 'PT Lead 21'
          where tenant_id = '{tenant}' and company_name in ('PT Lead 20', 'PT Lead 21');
         insert into sales_activities (tenant_id, owner_user_id, activity_type, summary, customer_id,
                                       prospect_id, created_by, created_at)
         select tenant_id, owner_user_id, 'call', 'Telepon', customer_id, prospect_id, owner_user_id, created_at
           from prospects where tenant_id = '{tenant}';
         insert into tickets (tenant_id, ticket_no, ticket_type, subject, dept_target, ticket_status,
                              related_lead_id, related_customer_id, assignee_user_id, created_by, created_at)
         select l.tenant_id, 'TCK-' || l.n, 'general_request', 'Permintaan ' || l.n,
                case l.n when 10 then 'OPS' when 11 then 'OPS' when 12 then 'FIN' when 13 then 'FIN' else 'SALES' end,
                'OPEN', case when l.sales_owner_user_id = '{alice}' then l.lead_id end,
                case when l.sales_owner_user_id = '{carol}' then l.customer_id end,
                case when l.n = 14 then '{bob}'::uuid end, '{carol}', l.created_at
           from (select *, row_number() over (order by created_at) as n from leads
                  where tenant_id = '{tenant}') l;
         insert into tickets (tenant_id, ticket_no, ticket_type, subject, dept_target, ticket_status, created_by)
         values ('{tenant}', 'TCK-0', 'general_request', 'Milik Alice', 'SALES', 'OPEN', '{alice}');
         insert into invoices (tenant_id, invoice_no, customer_id, issue_date, due_date, subtotal, status,
                               created_by, created_at)
         select tenant_id, 'INV-' || company_name, customer_id, created_at::date, created_at::date + 30,
                1000000, 'ISSUED', '{finance}', created_at
           from customers where tenant_id = '{tenant}';
         -- The rows' sales owners, which the user triggers keep (V57).
         select sales_owners_refresh('{tenant}');
         alter table prospects enable trigger user;
         alter table leads enable trigger user;
         alter table sales_activities enable trigger user;
         alter table tickets enable trigger user;
         alter table invoices enable trigger user;
         commit;
         analyze customers; analyze prospects; analyze leads; analyze sales_activities;
         analyze tickets; analyze invoices; analyze profiles;",
        n = CROWD_ROWS,
        marketing = marketing.user_id,
        alice = alice.user_id,
        manager = manager.user_id,
        carol = carol.user_id,
        bob = bob.user_id,
        finance = finance.user_id,
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    Lists {
        tenant,
        callers: vec![
            admin, director, marketing, finance, manager, alice, bob, ops,
        ],
    }
}

/// Heap rows of `table` fetched so far in this transaction.
pub(crate) async fn heap_rows(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)
           from pg_catalog.pg_stat_xact_user_tables where relid = $1::regclass",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// The rows of `table` the rule allows the caller, as the owner with the
/// caller's claims.
pub(crate) async fn allowed(
    db: &TestDb,
    who: &Caller,
    tenant: Uuid,
    table: &str,
    key: &str,
    rule: &str,
) -> Vec<Uuid> {
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(who.claims.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let ids = sqlx::query_scalar(&format!(
        "select {key} from {table} x where tenant_id = $1 and ({rule}) order by 1"
    ))
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    ids
}

#[tokio::test]
async fn every_list_reads_the_visible_rows_not_the_tenant() {
    let db = TestDb::new().await;
    let org = lists(&db).await;
    // Every list and role is measured, then the costs out of bounds are
    // named together.
    let mut over = Vec::new();
    for (relation, key, table, rule) in LISTS {
        let total: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&db.owner)
            .await
            .unwrap();
        for who in &org.callers {
            let role = who.claims["app_role"].as_str().unwrap_or_default();
            let visible = allowed(&db, who, org.tenant, table, key, rule).await.len() as i64;
            let reads_all = visible == total;
            let mut tx = db.as_user(who).await;
            let before = heap_rows(&mut tx, table).await;
            let page = List::new(relation, key, org.tenant)
                .fetch(
                    &mut tx,
                    Page {
                        limit: Some(PAGE),
                        after: None,
                    },
                )
                .await
                .unwrap();
            let read = heap_rows(&mut tx, table).await - before;
            assert_eq!(
                page.items.len() as i64,
                visible.min(PAGE),
                "{table}, {role}"
            );
            // A caller who reads the whole tenant may read it for a page of
            // a small one (the planner may prefer a sort to a walk of the
            // page's index); the others read their rows, or a page's worth.
            let bound = if reads_all {
                total + 10
            } else {
                visible.min(PAGE + 1) + 10
            };
            if read > bound {
                over.push(format!(
                    "{table}, {role}: a page of {} read {read} rows (at most {bound} expected, {visible} visible)",
                    page.items.len()
                ));
            }
            tx.rollback().await.unwrap();

            let mut tx = db.as_user(who).await;
            let before = heap_rows(&mut tx, table).await;
            // Unprepared, as the lists are: a plan cached on the pooled
            // connection would be the last caller's.
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
                .persistent(false)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let read = heap_rows(&mut tx, table).await - before;
            assert_eq!(n, visible, "{table}, {role}");
            let bound = if reads_all { total + 10 } else { visible + 10 };
            if read > bound {
                over.push(format!(
                    "{table}, {role}: counting {n} rows read {read} (at most {bound} expected)"
                ));
            }
            tx.rollback().await.unwrap();
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}

#[tokio::test]
async fn every_policy_means_its_rule() {
    let db = TestDb::new().await;
    let org = lists(&db).await;
    for (_, key, table, rule) in LISTS {
        for who in &org.callers {
            let role = who.claims["app_role"].as_str().unwrap_or_default();
            let mut tx = db.as_user(who).await;
            let seen: Vec<Uuid> =
                sqlx::query_scalar(&format!("select {key} from {table} order by 1"))
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
            tx.rollback().await.unwrap();
            let allowed = allowed(&db, who, org.tenant, table, key, rule).await;
            assert_eq!(seen, allowed, "{table}, {role}");
            // Alice (callers[5]) reads a few rows of every list: her team's.
            if who.user_id == org.callers[5].user_id {
                assert!(
                    (1..=5).contains(&seen.len()),
                    "{table}: Alice reads {}",
                    seen.len()
                );
            }
        }
    }
}
