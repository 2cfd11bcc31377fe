//! The month-end run through the worker: each subscribed tenant's
//! `billing.month_end` job closes its month into a draft, a rerun makes no
//! second invoice, and once the grace period is over the draft is
//! finalized with the next gapless number, e-mailed through the outbox,
//! and its PDF reads back with the lines and totals. The operator view's
//! MRR and overdue amounts reconcile with the invoices.

use std::time::{Duration, Instant};

use bizos_tests::TestDb;
use uuid::Uuid;

use super::lifecycle::{clock, plan, tenant_on};

/// Enqueues the month-end run and waits until no billing job is left
/// queued or running; none may be dead.
async fn month_end(db: &TestDb) {
    assert_eq!(month_end_run(db, 4, None).await, 0, "dead month-end jobs");
}

/// Enqueues the month-end run, runs a worker with `concurrency` slots (and
/// the placements' secrets of `secrets_file`) until no billing job is left
/// queued or running, and returns how many of them are dead.
pub(super) async fn month_end_run(
    db: &TestDb,
    concurrency: usize,
    secrets_file: Option<std::path::PathBuf>,
) -> i64 {
    sqlx::query("select billing_month_end_enqueue()")
        .execute(&db.owner)
        .await
        .unwrap();
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        poll_interval: Duration::from_millis(100),
        kb_model_dir: None,
        concurrency,
        secrets_file,
        ..bizos_tests::worker_settings(db, 2000, storage)
    })
    .await;
    let started = Instant::now();
    loop {
        let open: i64 = sqlx::query_scalar(
            "select count(*) from jobs where kind = 'billing.month_end' and status not in ('succeeded', 'dead')",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "month-end jobs still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(worker.stop);
    tokio::time::timeout(Duration::from_secs(60), worker.stopped)
        .await
        .expect("the worker stopped within a minute")
        .expect("the worker's task")
        .expect("the worker ran");
    sqlx::query_scalar(
        "select count(*) from jobs where kind = 'billing.month_end' and status = 'dead'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn invoices(db: &TestDb, tenant: Uuid) -> Vec<(Uuid, String, Option<String>, String)> {
    sqlx::query_as(
        "select billing_invoice_id, status, invoice_no, total::text from billing_invoices
          where tenant_id = $1 order by period_start",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_month_end_job_invoices_once_finalizes_after_the_grace_period_and_mails_a_readable_pdf()
{
    month_end_invoices_once_finalizes_and_mails_on(TestDb::new().await).await;
}

/// The same on Citus: `tenants` is a reference table there (no trigger
/// makes the subscription: tenant_set_plan does) and the subscriptions,
/// invoices and e-mails are distributed by tenant.
#[tokio::test]
async fn the_month_end_job_invoices_once_finalizes_after_the_grace_period_and_mails_a_readable_pdf_on_citus(
) {
    month_end_invoices_once_finalizes_and_mails_on(TestDb::on_citus().await).await;
}

async fn month_end_invoices_once_finalizes_and_mails_on(db: TestDb) {
    plan(&db, "basic", 310_000, 0).await;
    plan(&db, "pro", 620_000, 0).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let a = tenant_on(&db, "bill-wa", "basic").await;
    let b = tenant_on(&db, "bill-wb", "pro").await;
    sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         values ($1, gen_random_uuid(), 'owner@wa.example.com', 'Owner A', 'super_admin')",
    )
    .bind(a)
    .execute(&db.owner)
    .await
    .unwrap();

    // 1 Jan 00:30 in Jakarta: December is closed into drafts.
    clock(&db, "2026-12-31T17:30:00Z").await;
    month_end(&db).await;
    let ia = invoices(&db, a).await;
    assert_eq!(ia.len(), 1, "{ia:?}");
    assert_eq!((ia[0].1.as_str(), ia[0].2.as_deref()), ("draft", None));
    assert_eq!(ia[0].3, "344100"); // 310,000 + 11% PPN
                                   // A rerun the same day and a run the next day: no second invoice.
    month_end(&db).await;
    clock(&db, "2027-01-01T17:30:00Z").await;
    month_end(&db).await;
    assert_eq!(invoices(&db, a).await.len(), 1);

    // After the grace period (3 days): finalized, numbered gapless
    // across tenants, e-mailed.
    clock(&db, "2027-01-04T18:00:00Z").await;
    month_end(&db).await;
    let ia = invoices(&db, a).await;
    let ib = invoices(&db, b).await;
    assert_eq!(ia[0].1, "finalized");
    let mut numbers = vec![ia[0].2.clone().unwrap(), ib[0].2.clone().unwrap()];
    numbers.sort();
    // The number's year is the real one (C1 numbers by the transaction's
    // start), not the test clock's.
    let year = chrono::Datelike::year(&chrono::Utc::now());
    assert_eq!(
        numbers,
        [format!("BIL-{year}-000001"), format!("BIL-{year}-000002")]
    );
    let mails: Vec<(Vec<String>, String, String)> = sqlx::query_as(
        "select to_addresses::text[], subject, text_body from emails where tenant_id = $1",
    )
    .bind(a)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, ["owner@wa.example.com"]);
    assert!(
        mails[0].2.contains("Total (PPN included): IDR 344,100"),
        "{}",
        mails[0].2
    );
    assert!(mails[0]
        .2
        .contains(&format!("/api/billing/invoices/{}/pdf", ia[0].0)));

    // The PDF from the rows, read back.
    let doc = bizos_bff::billing::pdf::load(&db.owner, a, ia[0].0)
        .await
        .unwrap()
        .expect("the invoice");
    let text = pdf_extract::extract_text_from_mem(&bizos_bff::billing::pdf::render(&doc)).unwrap();
    for want in [
        ia[0].2.as_deref().unwrap(),
        "Bill to: Tenant bill-wa",
        "Plan basic, 1 Dec 2026 - 31 Dec 2026",
        "310,000",
        "34,100",
        "344,100",
        "Due date: 19 Jan 2027",
    ] {
        assert!(text.contains(want), "{want:?} not in {text}");
    }

    // The operator view: MRR is the paying plans' price; overdue is what
    // is finalized and past its due date, equal to those invoices' totals.
    clock(&db, "2027-01-20T03:00:00Z").await;
    let (mrr, overdue, from_invoices): (String, String, String) = sqlx::query_as(
        "select (select sum(mrr) from v_billing_tenants)::text,
                (select sum(overdue_amount) from v_billing_tenants)::text,
                (select sum(total) from billing_invoices
                  where status = 'finalized' and due_date < (billing_now() at time zone 'Asia/Jakarta')::date)::text",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(mrr, "930000");
    assert_eq!(overdue, from_invoices);
    assert_eq!(overdue, "1032300"); // 344,100 + 688,200
}
