//! The demo seed (sql/demo/demo.sql) tells one consistent story: its
//! self-check `demo.check(slug)` recomputes first responses, SLA events,
//! lifecycle stamps and the order of events from the raw rows and compares
//! them with the tables and the product's views. These tests run the seed
//! and the check, and break the seeded data in the ways the check guards
//! against to see it refuse each.

use bizos_tests::TestDb;
use uuid::Uuid;

async fn check(db: &TestDb, slug: &str) -> Result<(), sqlx::Error> {
    sqlx::query("select demo.check($1)")
        .bind(slug)
        .execute(&db.owner)
        .await
        .map(|_| ())
}

/// Runs `breakage` as the owner in a transaction, then the check in the
/// same transaction; returns the check's error message, and rolls back.
async fn check_after(db: &TestDb, slug: &str, breakage: &str) -> String {
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::raw_sql(breakage)
        .execute(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("breakage {breakage:?}: {e}"));
    let err = sqlx::query("select demo.check($1)")
        .bind(slug)
        .execute(&mut *tx)
        .await
        .expect_err(&format!("demo.check accepts the breakage {breakage:?}"));
    tx.rollback().await.unwrap();
    err.as_database_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

async fn count(db: &TestDb, tenant: Uuid, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn demo_seed_passes_its_self_check_and_keeps_the_audit_chain() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    for (slug, tenant) in [("tenant-a", a), ("tenant-b", b)] {
        // The fixtures the check reads are there.
        let replied = count(
            &db,
            tenant,
            "select count(*) from tickets where tenant_id = $1 and first_response_at is not null",
        )
        .await;
        assert!(replied > 0, "{slug}: no ticket has a first response");
        let resolved = count(
            &db,
            tenant,
            "select count(*) from tickets where tenant_id = $1 and resolved_at is not null",
        )
        .await;
        assert!(resolved > 0, "{slug}: no ticket is resolved");
        let payments = count(
            &db,
            tenant,
            "select count(*) from payments where tenant_id = $1",
        )
        .await;
        assert!(payments > 0, "{slug}: no payments");
        let history = count(
            &db,
            tenant,
            "select count(*) from prospect_stage_history where tenant_id = $1 and from_stage is not null",
        )
        .await;
        assert!(history > 0, "{slug}: no stage changes");
        check(&db, slug)
            .await
            .unwrap_or_else(|e| panic!("demo.check({slug}): {e}"));

        // Spread over time: not everything at load time.
        let spread = count(
            &db,
            tenant,
            "select count(distinct date_trunc('day', created_at)) from ticket_messages where tenant_id = $1",
        )
        .await;
        assert!(spread > 1, "{slug}: every reply was written on one day");

        let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
        assert_eq!(breaks, 0, "{slug}: the audit chain is broken");
    }
}

#[tokio::test]
async fn demo_check_names_the_first_inconsistent_row() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    check(&db, "tenant-a").await.expect("a clean seed passes");
    let replied: Uuid = sqlx::query_scalar(
        "select ticket_id from tickets where tenant_id = $1 and first_response_at is not null
          order by ticket_no limit 1",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let ticket_no: String =
        sqlx::query_scalar("select ticket_no from tickets where ticket_id = $1")
            .bind(replied)
            .fetch_one(&db.owner)
            .await
            .unwrap();

    // The old inconsistency: the reply left at load time while the ticket
    // and its SLA events moved back.
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table ticket_messages disable trigger user;
             update ticket_messages set created_at = now() where ticket_id = '{replied}';
             alter table ticket_messages enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains(&ticket_no), "{msg}");
    assert!(msg.contains("first response"), "{msg}");

    // The stamp on the ticket no longer matches its conversation.
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table tickets disable trigger user;
             update tickets set first_response_at = first_response_at + interval '1 hour'
              where ticket_id = '{replied}';
             alter table tickets enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains(&ticket_no), "{msg}");

    // A message before its ticket was created.
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table ticket_messages disable trigger user;
             update ticket_messages m set created_at = t.created_at - interval '1 minute'
               from tickets t where t.ticket_id = m.ticket_id and m.ticket_id = '{replied}';
             alter table ticket_messages enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains(&ticket_no), "{msg}");

    // An SLA event out of order (closed before it was resolved).
    let closed: Option<(Uuid, String)> = sqlx::query_as(
        "select ticket_id, ticket_no from tickets where tenant_id = $1 and closed_at is not null
          order by ticket_no limit 1",
    )
    .bind(a)
    .fetch_optional(&db.owner)
    .await
    .unwrap();
    let (closed, closed_no) = closed.expect("the demo closes some tickets");
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table sla_events disable trigger user;
             update sla_events set occurred_at = occurred_at - interval '30 days'
              where ticket_id = '{closed}' and event_type = 'CLOSED';
             alter table sla_events enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains(&closed_no), "{msg}");

    // A payment before its invoice's issue date.
    let (payment_no, invoice): (String, Uuid) = sqlx::query_as(
        "select payment_no, invoice_id from payments where tenant_id = $1 order by payment_no limit 1",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table payments disable trigger user;
             update payments p set paid_on = i.issue_date - 1
               from invoices i where i.invoice_id = p.invoice_id and p.invoice_id = '{invoice}';
             alter table payments enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains(&payment_no), "{msg}");

    // A stage change before its prospect existed.
    let msg = check_after(
        &db,
        "tenant-a",
        &format!(
            "alter table prospect_stage_history disable trigger user;
             update prospect_stage_history h set changed_at = p.created_at - interval '1 day'
               from prospects p where p.prospect_id = h.prospect_id and h.from_stage is not null
                and h.history_id = (select history_id from prospect_stage_history x
                                     where x.tenant_id = '{a}' and x.from_stage is not null
                                     order by x.history_id limit 1);
             alter table prospect_stage_history enable trigger user;"
        ),
    )
    .await;
    assert!(msg.contains("stage"), "{msg}");
}
