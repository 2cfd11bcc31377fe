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

use crate::list_cost::heap_rows;

/// Customers nobody of either team may read.
const CROWD: i64 = 2_000;

struct Teams {
    tenant: Uuid,
    /// Manager of Alice, who owns prospects of 20 customers.
    north: Caller,
    /// Manager of Bob, who owns prospects of 15 others.
    south: Caller,
    alice: Caller,
    bob: Caller,
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
        bob,
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
    let newest = overdue_invoices(&db, tenant, &finance, CROWD).await;
    // A payment of the newest invoice (paid today, the trigger's default).
    pay(&db, tenant, newest, 250_000, "TRF-1").await;

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

/// A page of `v_invoices` takes what is open of each invoice from its
/// stored amounts and reads no ledger line, however its plan finds the
/// invoices; while the tenant has a line dated after its today (its time
/// zone moved west), it reads the lines up to today of the page's own
/// invoices, after the sort and the limit, and still agrees with
/// `v_invoice_outstanding`. The plan is made to sort (bitmap scans only),
/// so that the test does not depend on which path the planner prefers for
/// this data: a lateral join of the ledger below the sort read every
/// visible invoice's payments.
#[tokio::test]
async fn a_sorted_page_of_invoices_reads_no_ledger_line_unless_one_is_dated_after_today() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("ledger-sorted").await;
    let finance = db.create_user(tenant, "finance").await;
    const INVOICES: i64 = 400;
    let newest = overdue_invoices(&db, tenant, &finance, INVOICES).await;
    sqlx::raw_sql(&format!(
        "insert into payments (tenant_id, invoice_id, amount, paid_on, reference)
         select tenant_id, invoice_id, 100000, current_date - 20, 'TRF'
           from invoices where tenant_id = '{tenant}';
         analyze payments;"
    ))
    .execute(&db.owner)
    .await
    .unwrap();

    let (read, items) = sorted_invoices_page(&db, &finance, tenant).await;
    assert!(
        items
            .iter()
            .all(|i| i["outstanding"].as_f64() == Some(900_000.0) && i["is_overdue"] == true),
        "every invoice of the page 900,000 open and overdue: {:?}",
        items.first()
    );
    assert_eq!(
        read, 0,
        "a page read {read} payments ({INVOICES} in the tenant)"
    );

    // The newest invoice is paid on the tenant's today at UTC+14, then the
    // tenant moves to UTC-12: that payment is dated after its today, and is
    // not part of what is open today.
    sqlx::query("update tenants set time_zone = 'Pacific/Kiritimati' where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    pay(&db, tenant, newest, 200_000, "TRF-2").await;
    sqlx::query("update tenants set time_zone = 'Etc/GMT+12' where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let (read, items) = sorted_invoices_page(&db, &finance, tenant).await;
    let open = items
        .iter()
        .find(|i| i["invoice_id"] == serde_json::json!(newest))
        .map(|i| (i["amount_paid"].as_f64(), i["outstanding"].as_f64()));
    assert_eq!(
        open,
        Some((Some(300_000.0), Some(900_000.0))),
        "the newest invoice: paid 300,000 in all, 900,000 open today"
    );
    // The page and one row more, each of its four ledger columns reading
    // the invoice's payments (one, two for the newest), and the probe that
    // found the payment dated after today.
    let bound = 4 * (51 + 1) + 1;
    assert!(
        read > 0 && read <= bound,
        "a sorted page read {read} payments (at most {bound} expected, {INVOICES} in the tenant)"
    );
}

/// `n` ISSUED invoices of 1,000,000 of one customer, issued 40 days ago
/// and due 10 days ago, one a minute back from now (user triggers off: no
/// per-row work); the newest one's id.
async fn overdue_invoices(db: &TestDb, tenant: Uuid, finance: &Caller, n: i64) -> Uuid {
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
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query_scalar(
        "select invoice_id from invoices where tenant_id = $1 order by created_at desc limit 1",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// A payment of `invoice` on the tenant's today (the trigger's default).
async fn pay(db: &TestDb, tenant: Uuid, invoice: Uuid, amount: i64, reference: &str) {
    sqlx::query(
        "insert into payments (tenant_id, invoice_id, amount, reference) values ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(invoice)
    .bind(amount)
    .bind(reference)
    .execute(&db.owner)
    .await
    .unwrap();
}

/// A page of `v_invoices` as `who` on a plan that sorts (bitmap scans
/// only): (payments read, the page), the page checked against
/// `v_invoice_outstanding`.
async fn sorted_invoices_page(db: &TestDb, who: &Caller, tenant: Uuid) -> (i64, Vec<Value>) {
    use bizos_bff::routes::list::{List, Page};
    let mut tx = db.as_user(who).await;
    sqlx::raw_sql(
        "set local enable_indexscan = off; set local enable_indexonlyscan = off;
         set local enable_seqscan = off",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let before = heap_rows(&mut tx, "payments").await;
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
    let read = heap_rows(&mut tx, "payments").await - before;
    assert_eq!(page.items.len(), 50);
    let disagree: Vec<String> = sqlx::query_scalar(
        "select p ->> 'invoice_no'
           from jsonb_array_elements($1) p
           join v_invoice_outstanding o on o.invoice_id = (p ->> 'invoice_id')::uuid
          where not (o.outstanding = (p ->> 'outstanding')::numeric
                     and o.days_past_due = (p ->> 'days_past_due')::int
                     and o.is_overdue = (p ->> 'is_overdue')::boolean
                     and o.aging_bucket is not distinct from p ->> 'aging_bucket')",
    )
    .bind(serde_json::to_value(&page.items).unwrap())
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(
        disagree.is_empty(),
        "v_invoice_outstanding says otherwise of {disagree:?}"
    );
    tx.rollback().await.unwrap();
    (read, page.items)
}

/// The ids of `table` (`key`) the caller reads, in order.
async fn reads(db: &TestDb, who: &Caller, table: &str, key: &str) -> Vec<Uuid> {
    let mut tx = db.as_user(who).await;
    let ids = sqlx::query_scalar(&format!("select {key} from {table} order by 1"))
        .persistent(false)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    ids
}

/// A ticket's or an invoice's sales owners (V57) follow ownership at once:
/// a reassigned prospect takes its customer's tickets and invoices from
/// the old team to the new one, a re-owned lead its tickets, a salesperson
/// moved to another manager their rows; a deleted prospect takes them
/// away; nobody sets the column (the trigger derives it on every write).
#[tokio::test]
async fn a_reassigned_customer_moves_its_tickets_and_invoices() {
    let db = TestDb::new().await;
    let t = teams(&db).await;
    let finance = db.create_user(t.tenant, "finance").await;
    // PT Ramai 5 is Alice's (north): an invoice, a ticket of the customer,
    // and a lead of hers with a ticket of the lead. PT Ramai 6 (Alice's
    // too): an invoice.
    let one = |sql: &'static str| {
        let db = &db;
        let tenant = t.tenant;
        let alice = t.alice.user_id;
        let finance = finance.user_id;
        async move {
            sqlx::query_scalar::<_, Uuid>(sql)
                .bind(tenant)
                .bind(alice)
                .bind(finance)
                .fetch_one(&db.owner)
                .await
                .unwrap()
        }
    };
    one("insert into leads (tenant_id, channel, status, company_name, customer_id, prospect_id,
                            sales_owner_user_id, assigned_at, created_by)
         select $1, 'website', 'ASSIGNED', 'PT Lead 5', p.customer_id, p.prospect_id, $2, now(), $3
           from prospects p join customers c on c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
          where p.tenant_id = $1 and c.company_name = 'PT Ramai 5'
         returning lead_id")
    .await;
    let invoice = one(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, status, created_by)
         select $1, customer_id, current_date, current_date + 30, 1000000, 'DRAFT', $3
           from customers where tenant_id = $1 and company_name = 'PT Ramai 5' and $2 is not null
         returning invoice_id",
    )
    .await;
    let other = one(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, status, created_by)
         select $1, customer_id, current_date, current_date + 30, 1000000, 'DRAFT', $3
           from customers where tenant_id = $1 and company_name = 'PT Ramai 6' and $2 is not null
         returning invoice_id",
    )
    .await;
    let by_customer = one(
        "insert into tickets (tenant_id, ticket_type, subject, dept_target, ticket_status,
                              related_customer_id, created_by)
         select $1, 'general_request', 'Customer 5', 'SALES', 'OPEN', customer_id, $3
           from customers where tenant_id = $1 and company_name = 'PT Ramai 5' and $2 is not null
         returning ticket_id",
    )
    .await;
    let by_lead = one(
        "insert into tickets (tenant_id, ticket_type, subject, dept_target, ticket_status,
                              related_lead_id, created_by)
         select $1, 'general_request', 'Lead 5', 'SALES', 'OPEN', lead_id, $3
           from leads where tenant_id = $1 and company_name = 'PT Lead 5' and $2 is not null
         returning ticket_id",
    )
    .await;
    let mut all_tickets = vec![by_customer, by_lead];
    all_tickets.sort();
    let none: Vec<Uuid> = Vec::new();

    // (who, tickets, invoices) as each step leaves them.
    async fn check(db: &TestDb, step: &str, expected: &[(&Caller, &str, Vec<Uuid>, Vec<Uuid>)]) {
        for (who, name, tickets, invoices) in expected {
            assert_eq!(
                &reads(db, who, "tickets", "ticket_id").await,
                tickets,
                "{step}: {name}'s tickets"
            );
            assert_eq!(
                &reads(db, who, "invoices", "invoice_id").await,
                invoices,
                "{step}: {name}'s invoices"
            );
        }
    }
    check(
        &db,
        "Alice's customer",
        &[
            (
                &t.north,
                "north",
                all_tickets.clone(),
                sorted(vec![invoice, other]),
            ),
            (
                &t.alice,
                "Alice",
                all_tickets.clone(),
                sorted(vec![invoice, other]),
            ),
            (&t.south, "south", none.clone(), none.clone()),
        ],
    )
    .await;

    // The prospect goes to Bob (south): the customer's ticket and invoice
    // with it; the lead's ticket stays with Alice's lead.
    sqlx::query(
        "update prospects p set owner_user_id = $2
           from customers c
          where c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
            and p.tenant_id = $1 and c.company_name = 'PT Ramai 5'",
    )
    .bind(t.tenant)
    .bind(t.bob.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    check(
        &db,
        "the prospect reassigned",
        &[
            (&t.north, "north", vec![by_lead], vec![other]),
            (&t.south, "south", vec![by_customer], vec![invoice]),
            (&t.bob, "Bob", vec![by_customer], vec![invoice]),
        ],
    )
    .await;

    // The lead follows: everything is south's.
    sqlx::query(
        "update leads set sales_owner_user_id = $2 where tenant_id = $1 and company_name = 'PT Lead 5'",
    )
    .bind(t.tenant)
    .bind(t.bob.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    check(
        &db,
        "the lead re-owned",
        &[
            (&t.north, "north", none.clone(), vec![other]),
            (&t.alice, "Alice", none.clone(), vec![other]),
            (&t.south, "south", all_tickets.clone(), vec![invoice]),
        ],
    )
    .await;

    // Bob moves to the north team: his rows with him, nothing rewritten.
    db.set_manager(&t.bob, &t.north).await;
    check(
        &db,
        "Bob in the north team",
        &[
            (
                &t.north,
                "north",
                all_tickets.clone(),
                sorted(vec![invoice, other]),
            ),
            (&t.south, "south", none.clone(), none.clone()),
        ],
    )
    .await;

    // Nobody writes the column: the trigger derives it again.
    sqlx::query("update invoices set sales_owners = array[$2::uuid] where tenant_id = $1 and invoice_id = $3")
        .bind(t.tenant)
        .bind(t.south.user_id)
        .bind(invoice)
        .execute(&db.owner)
        .await
        .unwrap();
    check(
        &db,
        "sales_owners written",
        &[(&t.south, "south", none.clone(), none.clone())],
    )
    .await;

    // Alice's prospect of PT Ramai 6 deleted: its invoice has no sales
    // owner.
    sqlx::query(
        "delete from prospects p using customers c
          where c.tenant_id = p.tenant_id and c.customer_id = p.customer_id
            and p.tenant_id = $1 and c.company_name = 'PT Ramai 6'",
    )
    .bind(t.tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    check(
        &db,
        "the prospect deleted",
        &[
            (&t.north, "north", all_tickets.clone(), vec![invoice]),
            (&t.alice, "Alice", none.clone(), none.clone()),
        ],
    )
    .await;
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

/// The sales-owner locks the transaction holds (class 1936682863).
async fn sales_owner_locks(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "select count(*) from pg_locks
          where locktype = 'advisory' and classid = 1936682863::oid and pid = pg_backend_pid()",
    )
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_batch_of_rows_holds_a_bounded_number_of_sales_owner_locks() {
    // One lock per customer (500 here, thousands in an import batch)
    // filled the cluster's lock table: a batch holds at most its
    // tenant's 32 buckets, shared for invoices, exclusive for prospects.
    let db = TestDb::new().await;
    let tenant = db.create_tenant("locks").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let mut conn = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    sqlx::query(
        "insert into customers (tenant_id, company_name, email, city)
         select $1, 'PT Lock ' || g, 'lock' || g || '@example.test', 'Jakarta' from generate_series(1, 500) g",
    )
    .bind(tenant)
    .execute(&mut conn)
    .await
    .unwrap();
    for (what, sql) in [
        (
            "invoices",
            "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax)
             select c.tenant_id, c.customer_id, current_date, current_date + 30, 1000, 110
               from customers c where c.tenant_id = $1",
        ),
        (
            "prospects",
            "insert into prospects (tenant_id, customer_id, owner_user_id)
             select c.tenant_id, c.customer_id, $2 from customers c where c.tenant_id = $1",
        ),
    ] {
        sqlx::query("begin").execute(&mut conn).await.unwrap();
        let rows = sqlx::query(sql)
            .bind(tenant)
            .bind(seller.user_id)
            .execute(&mut conn)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(rows, 500, "{what}");
        let locks = sales_owner_locks(&mut conn).await;
        assert!(
            (1..=32).contains(&locks),
            "{what}: {locks} sales-owner locks for 500 customers"
        );
        sqlx::query("rollback").execute(&mut conn).await.unwrap();
    }
}
