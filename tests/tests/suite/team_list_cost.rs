//! What a team's tickets and invoices cost. A sales manager or a
//! salesperson reads the tickets and invoices of the customers their team
//! owns prospects of, and the tickets of the leads it owns: about 2,000
//! customers and as many leads for a team of the benchmark. Each ticket
//! and invoice carries its sales owners (V57's `sales_owners`: the users
//! owning a prospect of its customer, its lead's sales owner; kept by
//! triggers), and the policies' sales branch is `sales_owners && <team>`
//! (`policy_team_owns_any`, platform.sql): one probe of the
//! `(tenant_id, sales_owners)` GIN index per team user. Before, the
//! policies probed the team's customer and lead ids one by one (a bucket
//! of them per branch, V51): 2,000-4,000 index probes per page, most of
//! them finding nothing.
//!
//! The plan says it without timings: no index scan of a page or a count
//! probes the team's ids (`= ANY` of customer or lead ids), the count's
//! team branch is a scan of the sales owners' index that finds exactly the
//! team's rows, and every index scan of the plan together finds at most
//! the visible rows. Beside that, each page and count reads the visible
//! rows (heap rows fetched, the transaction's `pg_stat_xact_user_tables`)
//! and lets through exactly what the rule allows (list_cost's rules).

use crate::list_cost::{allowed, heap_rows, LISTS};
use bizos_bff::auth::Caller;
use bizos_bff::routes::list::{List, Page};
use bizos_tests::TestDb;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Customers of Carol, a salesperson of no team, each with an invoice and
/// a ticket.
const CROWD: i64 = 2_000;
/// Customers of Alice's prospects (her team's), each with an invoice and a
/// lead of hers; half of them with a ticket of the customer, half with a
/// ticket of the lead.
const TEAM: i64 = 400;
const PAGE: i64 = 50;

struct Team {
    tenant: Uuid,
    manager: Caller,
    alice: Caller,
}

async fn team(db: &TestDb) -> Team {
    let tenant = db.create_tenant("team-cost").await;
    let finance = db.create_user(tenant, "finance").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let carol = db.create_user(tenant, "salesperson").await;
    db.set_manager(&alice, &manager).await;
    sqlx::raw_sql(&format!(
        "begin;
         alter table prospects disable trigger user;
         alter table leads disable trigger user;
         alter table tickets disable trigger user;
         alter table invoices disable trigger user;
         insert into customers (tenant_id, company_name, created_by, created_at)
         select '{tenant}', 'PT Ramai ' || i, '{finance}', now() - i * interval '1 hour'
           from generate_series(1, {crowd} + {team}) i;
         insert into prospects (tenant_id, customer_id, owner_user_id, created_by, created_at)
         select tenant_id, customer_id,
                case when substr(company_name, 10)::int % 6 = 0
                      and substr(company_name, 10)::int <= 6 * {team} then '{alice}'::uuid
                     else '{carol}'::uuid end,
                '{finance}', created_at
           from customers where tenant_id = '{tenant}';
         insert into leads (tenant_id, channel, status, company_name, customer_id, prospect_id,
                            sales_owner_user_id, assigned_at, created_by, created_at)
         select tenant_id, 'website', 'ASSIGNED', 'PT Lead ' || prospect_id, customer_id, prospect_id,
                owner_user_id, created_at, '{finance}', created_at
           from prospects where tenant_id = '{tenant}';
         insert into tickets (tenant_id, ticket_no, ticket_type, subject, dept_target, ticket_status,
                              related_lead_id, related_customer_id, created_by, created_at)
         select l.tenant_id, 'TCK-' || l.n, 'general_request', 'Permintaan ' || l.n, 'SALES', 'OPEN',
                case when l.sales_owner_user_id = '{alice}' and l.m % 2 = 0 then l.lead_id end,
                case when l.sales_owner_user_id <> '{alice}' or l.m % 2 = 1 then l.customer_id end,
                '{carol}', l.created_at
           from (select *, row_number() over (order by created_at) as n,
                        row_number() over (partition by sales_owner_user_id order by created_at) as m
                   from leads where tenant_id = '{tenant}') l;
         insert into invoices (tenant_id, invoice_no, customer_id, issue_date, due_date, subtotal, status,
                               created_by, created_at)
         select tenant_id, 'INV-' || company_name, customer_id, created_at::date, created_at::date + 30,
                1000000, 'ISSUED', '{finance}', created_at
           from customers where tenant_id = '{tenant}';
         -- The rows' sales owners, which the user triggers keep (V57).
         select sales_owners_refresh('{tenant}');
         alter table prospects enable trigger user;
         alter table leads enable trigger user;
         alter table tickets enable trigger user;
         alter table invoices enable trigger user;
         commit;
         analyze customers; analyze prospects; analyze leads; analyze tickets; analyze invoices;
         analyze profiles;",
        crowd = CROWD,
        team = TEAM,
        finance = finance.user_id,
        alice = alice.user_id,
        carol = carol.user_id,
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    Team {
        tenant,
        manager,
        alice,
    }
}

/// The index scans of a JSON plan: (node type, index, condition, rows
/// found).
fn index_scans(node: &Value, out: &mut Vec<(String, String, String, i64)>) {
    if let Some(map) = node.as_object() {
        let kind = map
            .get("Node Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.contains("Index") {
            let field = |k: &str| {
                map.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let rows = map
                .get("Actual Rows")
                .and_then(Value::as_i64)
                .unwrap_or_default()
                * map.get("Actual Loops").and_then(Value::as_i64).unwrap_or(1);
            out.push((
                kind.to_string(),
                field("Index Name"),
                field("Index Cond"),
                rows,
            ));
        }
        for v in map.values() {
            index_scans(v, out);
        }
    } else if let Some(list) = node.as_array() {
        for v in list {
            index_scans(v, out);
        }
    }
}

/// The index scans of `statement` as the caller on `conn`.
async fn probes(conn: &mut PgConnection, statement: &str) -> Vec<(String, String, String, i64)> {
    let plan: Value = sqlx::query_scalar(&format!("explain (analyze, format json) {statement}"))
        .persistent(false)
        .fetch_one(conn)
        .await
        .unwrap();
    let mut out = Vec::new();
    index_scans(&plan, &mut out);
    out
}

#[tokio::test]
async fn a_team_list_probes_its_sales_owners_not_its_ids() {
    let db = TestDb::new().await;
    let org = team(&db).await;
    let mut over = Vec::new();
    for (relation, key, table, rule) in LISTS
        .iter()
        .filter(|(_, _, t, _)| ["tickets", "invoices"].contains(t))
    {
        for who in [&org.manager, &org.alice] {
            let role = who.claims["app_role"].as_str().unwrap_or_default();
            let visible = allowed(&db, who, org.tenant, table, key, rule).await;
            assert!(
                visible.len() as i64 >= TEAM,
                "{table}, {role}: the fixture's team reads {}",
                visible.len()
            );
            // What the policies let through is the rule's, to the row.
            let mut tx = db.as_user(who).await;
            let seen: Vec<Uuid> =
                sqlx::query_scalar(&format!("select {key} from {table} order by 1"))
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
            assert_eq!(seen, visible, "{table}, {role}");
            tx.rollback().await.unwrap();

            // The page as the BFF reads it, and a count: the visible rows.
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
            assert_eq!(page.items.len() as i64, PAGE, "{table}, {role}");
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
                .persistent(false)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            assert_eq!(n, visible.len() as i64, "{table}, {role}");
            let read = heap_rows(&mut tx, table).await - before;
            let bound = 2 * (visible.len() as i64 + 10);
            if read > bound {
                over.push(format!(
                    "{table}, {role}: a page and a count read {read} rows (at most {bound} expected)"
                ));
            }

            // No index scan probes the team's ids one by one; the team's
            // rows come from the sales owners' index, which finds them and
            // nothing else; all the scans together find at most the
            // visible rows.
            for (statement, is_count) in [
                (
                    format!(
                        "select * from {relation} x where x.tenant_id = '{}'
                          order by x.created_at desc, x.{key} desc limit 51",
                        org.tenant
                    ),
                    false,
                ),
                (format!("select count(*) from {table}"), true),
            ] {
                let scans = probes(&mut tx, &statement).await;
                for (kind, index, cond, rows) in &scans {
                    if ["customer_id = ANY", "related_lead_id = ANY"]
                        .iter()
                        .any(|c| cond.contains(c))
                    {
                        over.push(format!(
                            "{table}, {role}: {kind} on {index} probes the team's ids one by one \
                             ({rows} rows): {cond}"
                        ));
                    }
                }
                if is_count {
                    let owners: Vec<_> = scans
                        .iter()
                        .filter(|(_, index, cond, _)| {
                            index == &format!("{table}_sales_owners_idx")
                                && cond.contains("sales_owners &&")
                        })
                        .collect();
                    let found: i64 = owners.iter().map(|(_, _, _, rows)| rows).sum();
                    if owners.is_empty() || found != TEAM {
                        over.push(format!(
                            "{table}, {role}: the count's plan has no scan of {table}_sales_owners_idx \
                             finding the team's {TEAM} rows: {scans:?}"
                        ));
                    }
                    let all: i64 = scans.iter().map(|(_, _, _, rows)| rows).sum();
                    if all > visible.len() as i64 {
                        over.push(format!(
                            "{table}, {role}: the count's index scans found {all} rows, {} visible",
                            visible.len()
                        ));
                    }
                }
            }
            tx.rollback().await.unwrap();
        }
    }
    assert!(over.is_empty(), "{}", over.join("\n"));
}
