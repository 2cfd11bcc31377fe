//! The CEO digest (AI-1; migration V31, sql/api/digest.sql,
//! bizos_bff::digest): the figures equal hand-computed values on a fixed
//! data set and agree with the KPI and receivables reports; a model's
//! insight with a number that is not among its figures is replaced; without
//! a model all three are deterministic; the card is stored once and mailed
//! once to the directors and super admins, however often the job runs; the
//! routes show it to digest readers only; every tenant has its 05:00
//! schedule and a job stands for the business day before its run.

mod on_demand;
pub(crate) mod reconcile;

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::email::MailSettings;
use bizos_bff::llm::LlmSettings;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::llm_standin::{StandIn, Step};
use bizos_tests::{smtp_sink, spawn_app, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// The business day of the fixture: Wednesday 18 November 2026 (Jakarta).
const DAY: &str = "2026-11-18";

struct Org {
    tenant: Uuid,
    director: Caller,
    admin: Caller,
    sales: Caller,
}

async fn exec(db: &TestDb, sql: &str, tenant: Uuid) {
    sqlx::raw_sql(&sql.replace("$T", &format!("'{tenant}'::uuid")))
        .execute(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The fixed data set (every figure is worked out in
/// `aggregates_equal_hand_computed_values_...`).
async fn fixture(db: &TestDb, slug: &str) -> Org {
    let tenant = db.create_tenant(slug).await;
    let director = db.create_user(tenant, "director").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let seller2 = db.create_user(tenant, "salesperson").await;
    exec(
        db,
        &format!(
            "insert into customers (tenant_id, customer_id, company_name) values
               ($T, '00000000-0000-0000-0000-00000000000a', 'PT Alfa'),
               ($T, '00000000-0000-0000-0000-00000000000b', 'PT Beta'),
               ($T, '00000000-0000-0000-0000-00000000000c', 'PT Gamma');
             insert into prospects (tenant_id, prospect_id, customer_id, owner_user_id) values
               ($T, '00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '{s1}'),
               ($T, '00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '{s2}'),
               ($T, '00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-00000000000c', '{s1}');",
            s1 = sales.user_id,
            s2 = seller2.user_id
        ),
        tenant,
    )
    .await;
    // Invoices: (customer, issue, due, subtotal, tax, status, currency).
    exec(
        db,
        "insert into invoices (tenant_id, invoice_id, customer_id, issue_date, due_date, subtotal, tax, status, currency) values
           ($T, '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', '2026-11-18', '2026-12-18', 10000000, 1100000, 'ISSUED', 'IDR'),
           ($T, '00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-00000000000b', '2026-11-17', '2026-11-17',  4000000,  440000, 'ISSUED', 'IDR'),
           ($T, '00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-00000000000a', '2026-11-05', '2026-11-10',  6000000,       0, 'ISSUED', 'IDR'),
           ($T, '00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-00000000000c', '2026-10-10', '2026-10-15',  3000000,       0, 'ISSUED', 'IDR'),
           ($T, '00000000-0000-0000-0000-000000000005', '00000000-0000-0000-0000-00000000000b', '2026-11-18', '2026-12-18',  1000000,       0, 'ISSUED', 'USD'),
           ($T, '00000000-0000-0000-0000-000000000006', '00000000-0000-0000-0000-00000000000c', '2026-11-18', '2026-12-18',  5000000,       0, 'DRAFT',  'IDR'),
           ($T, '00000000-0000-0000-0000-000000000007', '00000000-0000-0000-0000-00000000000a', '2026-11-19', '2026-12-19',  7000000,       0, 'ISSUED', 'IDR');
         insert into payments (tenant_id, invoice_id, amount, paid_on) values
           ($T, '00000000-0000-0000-0000-000000000003', 1500000, '2026-11-18'),
           ($T, '00000000-0000-0000-0000-000000000002',  440000, '2026-11-17'),
           ($T, '00000000-0000-0000-0000-000000000004',  500000, '2026-10-12');",
        tenant,
    )
    .await;
    // Revenue targets: the salesperson's November (in full), the other's
    // 16 Oct - 15 Nov (15 of its 31 days in November).
    sqlx::query(
        "insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value) values
           ($1, 'revenue', $2, '[2026-11-01,2026-12-01)', 40000000),
           ($1, 'revenue', $3, '[2026-10-16,2026-11-16)', 31000000)",
    )
    .bind(tenant)
    .bind(sales.user_id)
    .bind(seller2.user_id)
    .execute(&db.owner)
    .await
    .unwrap();
    // Leads at tenant-local instants (Jakarta, +07), in their final status
    // (the triggers that would stamp now() and walk the lifecycle are off
    // meanwhile).
    exec(
        db,
        "alter table leads disable trigger leads_lifecycle;
         alter table leads disable trigger leads_stamp_timestamps;
         insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, status, created_at) values
           ($T, 'website', 'L1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 'NEW',       '2026-11-18 09:00+07'),
           ($T, 'website', 'L2', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000a1', 'CONVERTED', '2026-11-18 23:30+07'),
           ($T, 'website', 'L3', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'CONVERTED', '2026-11-17 10:00+07'),
           ($T, 'website', 'L4', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000b1', 'NEW',       '2026-11-02 10:00+07'),
           ($T, 'website', 'L5', '00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-0000000000c1', 'CONVERTED', '2026-10-05 10:00+07'),
           ($T, 'website', 'L6', '00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-0000000000c1', 'NEW',       '2026-10-20 10:00+07'),
           ($T, 'website', 'L7', '00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-0000000000c1', 'NEW',       '2026-11-19 00:30+07'),
           ($T, 'website', 'L8', '00000000-0000-0000-0000-00000000000c', '00000000-0000-0000-0000-0000000000c1', 'NEW',       '2026-11-01 00:30+07');
         alter table leads enable trigger leads_lifecycle;
         alter table leads enable trigger leads_stamp_timestamps;",
        tenant,
    )
    .await;
    // Tickets (default calendar Mon-Fri 08-17 Jakarta; urgent: response 30,
    // resolution 240 business minutes; low: 480 and 2700), with their
    // stamps as given (the triggers that would stamp now() are off).
    exec(
        db,
        "alter table tickets disable trigger tickets_lifecycle_ticket;
         alter table tickets disable trigger tickets_sla_stamp;
         alter table tickets disable trigger tickets_stamp_timestamps;",
        tenant,
    )
    .await;
    for (no, priority, created, response, resolved, closed) in [
        // T1: no response, open: breached on the day, pending and overdue.
        ("T1", "urgent", "2026-11-18 09:00+07", None, None, None),
        // T2: answered and resolved in time.
        (
            "T2",
            "urgent",
            "2026-11-18 09:00+07",
            Some("2026-11-18 09:10+07"),
            Some("2026-11-18 10:00+07"),
            None,
        ),
        // T3: answered late on the previous business day.
        (
            "T3",
            "urgent",
            "2026-11-17 09:00+07",
            Some("2026-11-17 09:45+07"),
            Some("2026-11-17 10:00+07"),
            None,
        ),
        // T4: low priority, open, not yet due at the end of the day.
        ("T4", "low", "2026-11-18 16:00+07", None, None, None),
        // T5: last month, in time.
        (
            "T5",
            "urgent",
            "2026-10-05 09:00+07",
            Some("2026-10-05 09:05+07"),
            Some("2026-10-05 09:30+07"),
            None,
        ),
        // T6: last month, never answered, closed the next day: breached.
        (
            "T6",
            "urgent",
            "2026-10-06 09:00+07",
            None,
            None,
            Some("2026-10-07 09:00+07"),
        ),
        // T7: after last month's comparison period, still open and overdue.
        ("T7", "urgent", "2026-10-25 09:00+07", None, None, None),
    ] {
        let status = if closed.is_some() {
            "CLOSED"
        } else if resolved.is_some() {
            "RESOLVED"
        } else {
            "OPEN"
        };
        let id: Uuid = sqlx::query_scalar(
            "insert into tickets (tenant_id, ticket_type, subject, priority, dept_target, created_at)
             values ($1, 'complaint', $2, $3, 'OPS', $4::timestamptz) returning ticket_id",
        )
        .bind(tenant)
        .bind(no)
        .bind(priority)
        .bind(created)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        sqlx::query(
            "update tickets set ticket_status = $5, first_response_at = $2::timestamptz,
                    resolved_at = $3::timestamptz, closed_at = $4::timestamptz
              where tenant_id = $6 and ticket_id = $1",
        )
        .bind(id)
        .bind(response)
        .bind(resolved)
        .bind(closed)
        .bind(status)
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    exec(
        db,
        "alter table tickets enable trigger tickets_lifecycle_ticket;
         alter table tickets enable trigger tickets_sla_stamp;
         alter table tickets enable trigger tickets_stamp_timestamps;",
        tenant,
    )
    .await;
    Org {
        tenant,
        director,
        admin,
        sales,
    }
}

async fn aggregates(db: &TestDb, tenant: Uuid, day: &str) -> Value {
    // As the worker's login, the only one granted it.
    let worker = db.pool_as("bizos_worker");
    sqlx::query_scalar("select digest_aggregates($1, $2::date)")
        .bind(tenant)
        .bind(day)
        .fetch_one(&worker)
        .await
        .unwrap()
}

#[tokio::test]
async fn aggregates_equal_hand_computed_values_and_agree_with_the_kpi_and_receivables_reports() {
    let db = TestDb::new().await;
    let org = fixture(&db, "digest-figures").await;
    // Another tenant's data never counts.
    fixture(&db, "digest-other").await;
    let a = aggregates(&db, org.tenant, DAY).await;

    assert_eq!(
        (
            &a["day"],
            &a["prev_day"],
            &a["month_start"],
            &a["prev_month_start"],
            &a["prev_month_end"]
        ),
        (
            &json!(DAY),
            &json!("2026-11-17"),
            &json!("2026-11-01"),
            &json!("2026-10-01"),
            &json!("2026-10-18")
        ),
        "{a}"
    );
    let f = &a["figures"];
    let expected = json!({
        // Invoiced (subtotal, IDR, ISSUED/PAID): day = invoice 1; the day
        // before = 2; month to date = 1 + 2 + 3; last month to the 18th = 4.
        // The USD invoice, the draft and the invoice of the 19th are out.
        "revenue_invoiced_day": 10000000, "revenue_invoiced_prev_day": 4000000,
        "revenue_invoiced_mtd": 20000000, "revenue_invoiced_prev_mtd": 3000000,
        "revenue_invoiced_day_change_pct": 150.0, "revenue_invoiced_mtd_change_pct": 566.7,
        "revenue_collected_day": 1500000, "revenue_collected_prev_day": 440000,
        "revenue_collected_mtd": 1940000, "revenue_collected_prev_mtd": 500000,
        "revenue_collected_day_change_pct": 240.9, "revenue_collected_mtd_change_pct": 288.0,
        // 40M + 31M x 15/31 = 55M; 20M / 55M = 36.4%; 18 of 30 days = 60%.
        "revenue_target_month": 55000000, "revenue_target_attainment_pct": 36.4,
        "month_elapsed_pct": 60.0,
        // L1, L2 (23:30 local is still the 18th); L3; + L4, L8 (00:30 local
        // on the 1st); L5. L7 (00:30 on the 19th) and L6 (after the 18th of
        // October) are out. Converted: L2, L3 of 5; L5 of 1.
        "leads_new_day": 2, "leads_new_prev_day": 1, "leads_new_mtd": 5, "leads_new_prev_mtd": 1,
        "leads_new_day_change_pct": 100.0, "leads_new_mtd_change_pct": 400.0,
        "leads_converted_mtd": 2, "lead_conversion_pct_mtd": 40.0, "lead_conversion_pct_prev_mtd": 100.0,
        // Pending at the end of the day: T1, T4, T7; past due: T1, T7.
        "tickets_pending": 3, "tickets_pending_overdue": 2,
        // Breached: T1 (day), T3 (day before); T1 + T3 (month); T6 (last month).
        "sla_breaches_day": 1, "sla_breaches_prev_day": 1, "sla_breaches_mtd": 2, "sla_breaches_prev_mtd": 1,
        "sla_breaches_mtd_change_pct": 100.0,
        // Open on the 18th: 1 = 11.1M current; 2 = 4.0M (1 day); 3 = 4.5M
        // (8 days); 4 = 2.5M (34 days). At the end of October: 4 = 2.5M.
        "ar_outstanding": 22100000, "ar_overdue": 11000000,
        "ar_overdue_1_30": 8500000, "ar_overdue_31_60": 2500000, "ar_overdue_61_90": 0, "ar_overdue_over_90": 0,
        "ar_overdue_month_start": 2500000, "ar_overdue_change_pct": 340.0
    });
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(
            f[key].as_f64(),
            want.as_f64(),
            "{key}: {} (all: {f})",
            f[key]
        );
    }
    assert_eq!(
        f.as_object().unwrap().len(),
        expected.as_object().unwrap().len(),
        "every figure is checked: {f}"
    );
    let names = |list: &str, field: &str| -> Vec<(String, f64)> {
        a[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["company_name"].as_str().unwrap().to_owned(),
                    x[field].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        names("top_customers", "invoiced_mtd"),
        vec![
            ("PT Alfa".into(), 16000000.0),
            ("PT Beta".into(), 4000000.0)
        ]
    );
    assert_eq!(
        names("largest_overdue", "overdue"),
        vec![
            ("PT Alfa".into(), 4500000.0),
            ("PT Beta".into(), 4000000.0),
            ("PT Gamma".into(), 2500000.0)
        ]
    );
    assert_eq!(a["largest_overdue"][2]["days_past_due"], 34);
    // The salesperson's November target: Alfa and Gamma are theirs, so
    // invoices 1, 3 and 7 = 23M of 40M; on the tenant's today November
    // is over, so it was missed.
    assert_eq!(
        a["kpi"],
        json!([{"metric_key": "revenue", "name": "Revenue (invoiced, excl. PPN)", "direction": "higher",
                "targets": 1, "attainment_pct": 57.5, "in_progress": 0, "achieved": 0, "missed": 1}])
    );

    // The same quantities from the reports a director reads.
    let mut tx = db.as_user(&org.director).await;
    let kpi: (Value, Value, Value) = sqlx::query_as(
        "select kpi_actual('revenue', null, '[2026-11-01,2026-11-19)', 'tenant') -> 'value',
                kpi_actual('cash_collected', null, '[2026-11-01,2026-11-19)', 'tenant') -> 'value',
                to_jsonb(kpi_ar_at('2026-11-18', true))",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        kpi.0.as_f64(),
        f["revenue_invoiced_mtd"].as_f64(),
        "revenue"
    );
    assert_eq!(
        kpi.1.as_f64(),
        f["revenue_collected_mtd"].as_f64(),
        "cash collected"
    );
    assert_eq!(kpi.2.as_f64(), f["ar_overdue"].as_f64(), "overdue AR");
    // The target's state is the one GET /api/kpi/progress gives.
    let progress: Value =
        sqlx::query_scalar("select kpi_progress(null, $1::date, $1::date, 'revenue')")
            .bind(DAY)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    let states: Vec<(&str, Option<bool>, Option<f64>)> = progress
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["actual_value"].is_number())
        .map(|p| {
            (
                p["target_status"].as_str().unwrap(),
                p["achieved"].as_bool(),
                p["progress_pct"].as_f64(),
            )
        })
        .collect();
    assert_eq!(states, [("missed", Some(false), Some(57.5))], "{progress}");
    tx.rollback().await.unwrap();

    // Whoever calls it and from whatever session time zone: the same.
    let worker = db.pool_as("bizos_worker");
    let mut conn = worker.acquire().await.unwrap();
    sqlx::query("set time zone 'America/Los_Angeles'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let again: Value = sqlx::query_scalar("select digest_aggregates($1, $2::date)")
        .bind(org.tenant)
        .bind(DAY)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(again, a);
    // The claims it sets do not outlive the call.
    let claims: Option<String> =
        sqlx::query_scalar("select nullif(current_setting('request.jwt.claims', true), '')")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!(claims, None);

    // Users cannot call it (it reads the whole tenant).
    let mut tx = db.as_user(&org.director).await;
    let denied = sqlx::query("select digest_aggregates($1, $2::date)")
        .bind(org.tenant)
        .bind(DAY)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::code(&denied), "42501");
}

#[tokio::test]
async fn the_job_stands_for_the_business_day_before_its_run_and_every_tenant_has_the_0500_schedule()
{
    let db = TestDb::new().await;
    let tenant = db.create_tenant("digest-schedule").await;
    let (at, days, kind): (String, Option<Vec<i16>>, String) = sqlx::query_as(
        "select to_char(at_time, 'HH24:MI'), days_of_week, kind from schedules
          where tenant_id = $1 and name = 'daily digest'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (at.as_str(), days, kind.as_str()),
        ("05:00", None, "digest.build")
    );
    let next_local: String = sqlx::query_scalar(
        "select to_char(next_run_at at time zone 'Asia/Jakarta', 'HH24:MI') from schedules
          where tenant_id = $1 and name = 'daily digest'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(next_local, "05:00");

    // A job due Monday 05:00 Jakarta stands for Friday; Tuesday's for Monday;
    // a holiday on Monday makes Tuesday's stand for Friday too.
    let day_of = |run_at: &'static str| {
        let db = &db;
        async move {
            let job: Uuid = sqlx::query_scalar(
                "select job_enqueue_for($1, 'digest.build', '{}', $2::timestamptz)",
            )
            .bind(tenant)
            .bind(run_at)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            sqlx::query_scalar::<_, chrono::NaiveDate>("select digest_day_of_job($1, $2)")
                .bind(tenant)
                .bind(job)
                .fetch_one(&db.pool_as("bizos_worker"))
                .await
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(day_of("2026-11-16 05:00+07").await, "2026-11-13");
    assert_eq!(day_of("2026-11-17 05:00+07").await, "2026-11-16");
    sqlx::query(
        "insert into holidays (tenant_id, holiday_date, name) values ($1, '2026-11-16', 'Libur')",
    )
    .bind(tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    assert_eq!(day_of("2026-11-17 05:00+07").await, "2026-11-13");
    // 22:30 UTC on the 16th is already the 17th in Jakarta.
    assert_eq!(day_of("2026-11-16 22:30+00").await, "2026-11-13");
    // A re-run of a given day.
    let job: Uuid = sqlx::query_scalar(
        "select job_enqueue_for($1, 'digest.build', '{\"day\": \"2026-10-01\"}')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let day: chrono::NaiveDate = sqlx::query_scalar("select digest_day_of_job($1, $2)")
        .bind(tenant)
        .bind(job)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(day.to_string(), "2026-10-01");
}

async fn email_of(db: &TestDb, user: &Caller) -> String {
    sqlx::query_scalar("select email from profiles where user_id = $1")
        .bind(user.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// A worker sending e-mail to the sink and calling the stand-in's Gemini.
pub(crate) async fn worker(db: &TestDb) -> bizos_tests::TestWorker {
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let llm = LlmSettings::from_lookup(|k| match k {
        "BIZOS_LLM_KEYS_GEMINI" => Some("gk-1".into()),
        "BIZOS_LLM_RETRIES" => Some("0".into()),
        "BIZOS_LLM_BREAKER_FAILURES" => Some("100".into()),
        _ => None,
    })
    .unwrap();
    bizos_tests::start_worker(WorkerSettings {
        poll_interval: Duration::from_millis(300),
        mail: Some(MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{}", smtp_sink::port()).into(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            from: "Bizos <noreply@bizos.test>".parse().unwrap(),
        }),
        llm,
        ..bizos_tests::worker_settings(db, 2000, storage)
    })
    .await
}

/// Enqueues a digest of DAY and waits until the job is finished.
async fn run_job(db: &TestDb, tenant: Uuid) -> Value {
    run_job_of(db, tenant, DAY).await
}

/// Enqueues a digest of `day` and waits until the job is finished; the
/// stored digest.
pub(crate) async fn run_job_of(db: &TestDb, tenant: Uuid, day: &str) -> Value {
    let job: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'digest.build', $2)")
        .bind(tenant)
        .bind(json!({"day": day}))
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let (status, error): (String, Option<String>) =
            sqlx::query_as("select status, last_error from jobs where job_id = $1")
                .bind(job)
                .fetch_one(&db.owner)
                .await
                .unwrap();
        if status == "succeeded" {
            break;
        }
        assert!(
            status != "dead" && started.elapsed() < Duration::from_secs(60),
            "job {status}: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sqlx::query_scalar(
        "select to_jsonb(d) from digests d where tenant_id = $1 and digest_date = $2::date",
    )
    .bind(tenant)
    .bind(day)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// The messages to `rcpt`, once the e-mail job had time to deliver.
async fn wait_for_messages(rcpt: &str, at_least: usize) -> Vec<String> {
    let started = Instant::now();
    loop {
        let found = smtp_sink::messages_to(rcpt);
        if found.len() >= at_least || started.elapsed() > Duration::from_secs(20) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn route_digest_to(db: &TestDb, standin: &StandIn) {
    sqlx::query("select llm_provider_set('gemini', 'gemini', $1, 'gemini')")
        .bind(&standin.base_url_gemini)
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::query("select llm_route_set('digest', $1)")
        .bind(json!([{"provider": "gemini", "model": "g-1"}]))
        .execute(&db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_model_insight_with_a_number_not_in_its_figures_is_replaced_and_the_digest_is_mailed_once(
) {
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    route_digest_to(&db, &standin).await;
    let org = fixture(&db, "digest-model").await;
    let worker = worker(&db).await;

    standin.script(Step::text(
        json!({"insights": [
            {"text": "Pendapatan bulan berjalan Rp 20 juta, jauh di atas Rp 3.000.000 pada periode yang sama bulan lalu.",
             "figures": ["revenue_invoiced_mtd", "revenue_invoiced_prev_mtd"]},
            {"text": "Piutang lewat jatuh tempo naik 340% menjadi Rp 11.000.000; PT Alfa menunggak Rp 4,5 juta.",
             "figures": ["ar_overdue_change_pct", "ar_overdue", "largest_overdue.1.overdue"]},
            {"text": "Pendapatan akan mencapai Rp 50 juta bulan ini.",
             "figures": ["revenue_invoiced_mtd"]}
        ]})
        .to_string(),
    ));
    let digest = run_job(&db, org.tenant).await;
    assert_eq!(digest["source"], "mixed", "{digest}");
    let insights = digest["insights"].as_array().unwrap();
    assert_eq!(insights.len(), 3);
    assert_eq!(
        insights
            .iter()
            .map(|i| i["source"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["model", "model", "fallback"]
    );
    assert!(insights[0]["text"].as_str().unwrap().contains("Rp 20 juta"));
    // The replacement: the largest movement no kept insight speaks of
    // (new leads +400%; revenue, +566.7%, is the model's first).
    assert_eq!(insights[2]["figures"][0], "leads_new_mtd", "{digest}");
    assert_eq!(
        insights[2]["text"],
        "Lead baru bulan berjalan 5, naik 400,0% dibanding periode yang sama bulan lalu (1)."
    );
    assert_eq!(digest["call_ids"].as_array().unwrap().len(), 1, "{digest}");
    // The prompt carried the figures and no more than the figures.
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].body.to_string();
    assert!(body.contains("revenue_invoiced_mtd = 20000000"), "{body}");

    // One e-mail to each director and super admin, none to others.
    let director = email_of(&db, &org.director).await;
    let admin = email_of(&db, &org.admin).await;
    let sales = email_of(&db, &org.sales).await;
    let mail = wait_for_messages(&director, 1).await;
    assert_eq!(mail.len(), 1, "one message to the director");
    assert!(
        mail[0].contains("ringkasan bisnis 2026-11-18"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("Rp 20 juta"), "{}", mail[0]);
    assert_eq!(wait_for_messages(&admin, 1).await.len(), 1);

    // The job again (a retry, a second run of the day): nothing changes,
    // no model call, no second e-mail.
    let again = run_job(&db, org.tenant).await;
    assert_eq!(again["insights"], digest["insights"]);
    assert_eq!(again["created_at"], digest["created_at"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        smtp_sink::messages_to(&director).len(),
        1,
        "still one e-mail"
    );
    assert_eq!(smtp_sink::messages_to(&admin).len(), 1);
    assert!(smtp_sink::messages_to(&sales).is_empty());
    assert_eq!(standin.requests().len(), 1, "no second model call");
    // The database's own guard, for a worker that skipped the check.
    let stored: Value = sqlx::query_scalar(
        "select digest_store($1, $2::date, '{}', $3, 'fallback', '{}', null, '{}')",
    )
    .bind(org.tenant)
    .bind(DAY)
    .bind(&digest["insights"])
    .fetch_one(&db.pool_as("bizos_worker"))
    .await
    .unwrap();
    assert_eq!(stored["created"], false, "{stored}");
    assert_eq!(stored["email_id"], digest["email_id"], "{stored}");
    let emails: i64 = sqlx::query_scalar("select count(*) from emails where tenant_id = $1")
        .bind(org.tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(emails, 1);
    drop(worker.stop);

    // The card, for digest readers only.
    let app = spawn_app(&db).await;
    let (status, body) = app.get_json(&org.director, "/api/digest/latest").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["digest_date"], DAY);
    assert_eq!(body["insights"], digest["insights"]);
    assert_eq!(
        body["aggregates"]["figures"]["ar_overdue"].as_f64(),
        Some(11e6)
    );
    assert_eq!(body["emailed"], true);
    let (status, body) = app
        .get_json(&org.admin, &format!("/api/digest?date={DAY}"))
        .await;
    assert_eq!((status, &body["source"]), (200, &json!("mixed")), "{body}");
    let (status, _) = app
        .get_json(&org.admin, "/api/digest?date=2026-11-17")
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .get_json(&org.admin, "/api/digest?date=18-11-2026")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("date"), "{body}");
    let (status, _) = app.get_json(&org.sales, "/api/digest/latest").await;
    assert_eq!(status, 403, "salespeople do not read the digest");
    let mut tx = db.as_user(&org.sales).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from digests")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0, "nor the table");
}

#[tokio::test]
async fn without_a_model_the_three_insights_are_the_largest_movements_in_the_tenants_language() {
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    route_digest_to(&db, &standin).await;
    let org = fixture(&db, "digest-fallback").await;
    sqlx::query("update tenants set locale = 'en' where tenant_id = $1")
        .bind(org.tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let worker = worker(&db).await;
    for _ in 0..5 {
        standin.script(Step::status(503));
    }
    let digest = run_job(&db, org.tenant).await;
    assert_eq!(digest["source"], "fallback", "{digest}");
    assert_eq!(digest["locale"], "en");
    let texts: Vec<&str> = digest["insights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        vec![
            "Revenue invoiced month to date is IDR 20,000,000, up 566.7% on the same period last month (IDR 3,000,000).",
            "New leads month to date is 5, up 400.0% on the same period last month (1).",
            "Overdue receivables is IDR 11,000,000, up 340.0% on the end of last month (IDR 2,500,000).",
        ]
    );
    let director = email_of(&db, &org.director).await;
    let mail = wait_for_messages(&director, 1).await;
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].contains("business digest for 2026-11-18"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("without AI"), "{}", mail[0]);
    // The failure is in the ledger.
    let calls: i64 = sqlx::query_scalar(
        "select count(*) from llm_calls where tenant_id = $1 and feature = 'digest'",
    )
    .bind(org.tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(calls >= 1, "the failed attempt is recorded");
    drop(worker.stop);
}

#[tokio::test]
async fn the_business_clock_agrees_with_add_business_minutes_to_the_instant() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("digest-clock").await;
    sqlx::query(
        "insert into holidays (tenant_id, holiday_date, name) values ($1, '2026-11-11', 'Libur')",
    )
    .bind(tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    // Starts every 37 minutes over two weeks (nights, a weekend, a
    // holiday, interval edges), durations up to several days of hours.
    let (compared, differing): (i64, i64) = sqlx::query_as(
        "with c as (select * from business_clock($1, '2026-11-01', '2026-12-31')),
              s as (select '2026-11-05 00:00+07'::timestamptz + g * interval '37 minutes' as start
                      from generate_series(0, 14 * 24 * 60 / 37) g
                    union all select '2026-11-09 17:00+07' union all select '2026-11-09 08:00+07'),
              m as (select unnest(array[1, 30, 60, 240, 539, 540, 541, 1620, 2700]) as minutes)
         select count(*), count(*) filter (where
                  business_clock_instant(business_clock_at(s.start, c.starts, c.ends, c.cums) + m.minutes * 60,
                                         c.starts, c.ends, c.cums)
                  is distinct from add_business_minutes($1, s.start, m.minutes))
           from c, s, m",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(compared > 4000, "{compared}");
    assert_eq!(differing, 0, "of {compared}");
}
