//! The digest on demand (`POST /api/digest`): a digest reader asks for a
//! past business day and gets a `digest.build` job (202, Location: the
//! job), the same one while it is pending or once it succeeded, a new one
//! after it died; the job stores the same digest as the daily schedule's
//! job of that day, whose figures equal `digest_aggregates` and the
//! hand-computed values of the fixture. Days not over yet, days before the
//! tenant existed and malformed days are refused naming `day`.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::llm_standin::{StandIn, Step};
use bizos_tests::{spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{aggregates, exec, fixture, route_digest_to, worker, DAY};

/// POST /api/digest: status, Location and body.
async fn request(
    app: &TestApp,
    who: &Caller,
    body: &Value,
    key: Option<&str>,
) -> (u16, Option<String>, Value) {
    let res = app
        .request_as(who, reqwest::Method::POST, "/api/digest", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, location, res.json().await.unwrap_or(Value::Null))
}

/// Polls the job at `location` as `who` until it succeeded.
async fn wait_succeeded(app: &TestApp, who: &Caller, location: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, job) = app.get_json(who, location).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "succeeded" {
            return job;
        }
        assert!(
            job["status"] != "dead" && started.elapsed() < Duration::from_secs(60),
            "{job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

#[tokio::test]
async fn the_digest_of_a_day_on_demand_is_a_deduplicated_job_that_stores_what_the_schedule_does() {
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    route_digest_to(&db, &standin).await;
    let org = fixture(&db, "digest-on-demand").await;
    // The tenant has existed since 1 October (its data is older than the
    // test's clock).
    exec(
        &db,
        "alter table tenants disable trigger tenants_stamp_timestamps;
         update tenants set created_at = '2026-10-01 00:00+07' where tenant_id = $T;
         alter table tenants enable trigger tenants_stamp_timestamps;",
        org.tenant,
    )
    .await;
    // No model answers: both runs word the same deterministic insights.
    for _ in 0..20 {
        standin.script(Step::status(503));
    }
    let app = spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;
    let today = bizos_tests::tenant_today();

    // Who may read the digest may ask for one; others may not.
    let (status, _, body) = request(&app, &org.sales, &json!({"day": DAY}), None).await;
    assert_eq!(status, 403, "{body}");
    // Only days that are over, and not before the tenant existed (its first
    // digest day: Wednesday 30 September, the business day before its
    // first morning).
    let tomorrow = (today + chrono::Duration::days(1)).to_string();
    for day in [
        tomorrow.as_str(),
        &today.to_string(),
        "2026-09-29",
        "18-11-2026",
        "2026-02-30",
    ] {
        let (status, _, body) = request(&app, &org.director, &json!({"day": day}), None).await;
        assert!(status == 422 || status == 400, "{day}: {status} {body}");
        assert_eq!(field(&body), Some("day"), "{day}: {body}");
    }
    let (status, _, body) = request(&app, &org.director, &json!({"date": DAY}), None).await;
    assert!(status == 422 || status == 400, "{body}");
    let jobs = |db: &TestDb| {
        let owner = db.owner.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from jobs where kind = 'digest.build'")
                .fetch_one(&owner)
                .await
                .unwrap()
        }
    };
    assert_eq!(jobs(&db).await, 0, "nothing queued for a refused request");

    // A day: 202, the job and where to poll it.
    let key = Uuid::new_v4().to_string();
    let (status, location, first) =
        request(&app, &org.director, &json!({"day": DAY}), Some(&key)).await;
    assert_eq!(status, 202, "{first}");
    let job = first["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/jobs/{job}").as_str())
    );
    assert_eq!(
        (&first["day"], &first["status"]),
        (&json!(DAY), &json!("queued"))
    );
    // The same key: the same answer.
    let (status, location, again) =
        request(&app, &org.director, &json!({"day": DAY}), Some(&key)).await;
    assert_eq!((status, &again), (202, &first));
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/jobs/{job}").as_str())
    );
    // Another request for the day while it is pending, by another reader:
    // the same job.
    let (status, _, other) = request(&app, &org.admin, &json!({"day": DAY}), None).await;
    assert_eq!(
        (status, other["job_id"].as_str()),
        (202, Some(job.as_str())),
        "{other}"
    );
    assert_eq!(jobs(&db).await, 1);

    // The worker builds it.
    let w = worker(&db).await;
    let done = wait_succeeded(&app, &org.director, &format!("/api/jobs/{job}")).await;
    assert_eq!(done["kind"], "digest.build");
    assert_eq!(done["created_by"], json!(org.director.user_id));
    let (status, on_demand) = app
        .get_json(&org.director, &format!("/api/digest?date={DAY}"))
        .await;
    assert_eq!(status, 200, "{on_demand}");
    // Once it succeeded, asking again gives it again (the digest is stored).
    let (status, _, later) = request(&app, &org.admin, &json!({"day": DAY}), None).await;
    assert_eq!(
        (status, later["job_id"].as_str(), later["status"].as_str()),
        (202, Some(job.as_str()), Some("succeeded")),
        "{later}"
    );

    let on_demand_row: Value = sqlx::query_scalar(
        "select aggregates from digests where tenant_id = $1 and digest_date = $2::date",
    )
    .bind(org.tenant)
    .bind(DAY)
    .fetch_one(&db.owner)
    .await
    .unwrap();

    // The daily schedule's job of the day (due at 05:00 the next business
    // morning, no payload: the day comes from when it was due), on the
    // same data, after the on-demand card is gone.
    sqlx::query("delete from digests where tenant_id = $1")
        .bind(org.tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let scheduled_job: Uuid = sqlx::query_scalar(
        "select job_enqueue_for($1, 'digest.build', '{}', '2026-11-19 05:00+07'::timestamptz)",
    )
    .bind(org.tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    wait_succeeded(&app, &org.admin, &format!("/api/jobs/{scheduled_job}")).await;
    let (status, scheduled) = app
        .get_json(&org.director, &format!("/api/digest?date={DAY}"))
        .await;
    assert_eq!(status, 200, "{scheduled}");
    drop(w.stop);

    // The same digest, figure for figure and word for word.
    assert_eq!(on_demand["aggregates"], scheduled["aggregates"]);
    assert_eq!(on_demand["insights"], scheduled["insights"]);
    assert_eq!(on_demand["source"], scheduled["source"]);
    assert_eq!(on_demand["digest_date"], json!(DAY));
    // Reconciled: the figures are the database's for the day, and the
    // fixture's hand-computed values (digest::aggregates_equal_...).
    let figures = aggregates(&db, org.tenant, DAY).await;
    assert_eq!(on_demand_row, figures);
    let f = &on_demand["aggregates"]["figures"];
    assert_eq!(f["revenue_invoiced_mtd"].as_f64(), Some(20e6), "{f}");
    assert_eq!(f["revenue_invoiced_day"].as_f64(), Some(10e6), "{f}");
    assert_eq!(f["ar_overdue"].as_f64(), Some(11e6), "{f}");
    assert_eq!(f["leads_new_mtd"].as_f64(), Some(5.0), "{f}");

    // A job of the day that died: the next request queues a new one.
    sqlx::query("update jobs set status = 'dead', finished_at = now() where job_id = $1")
        .bind(Uuid::parse_str(&job).unwrap())
        .execute(&db.owner)
        .await
        .unwrap();
    let (status, _, renewed) = request(&app, &org.director, &json!({"day": DAY}), None).await;
    assert_eq!(
        (status, renewed["status"].as_str()),
        (202, Some("queued")),
        "{renewed}"
    );
    assert_ne!(renewed["job_id"].as_str(), Some(job.as_str()), "{renewed}");
    let (_, _, same) = request(&app, &org.admin, &json!({"day": DAY}), None).await;
    assert_eq!(same["job_id"], renewed["job_id"]);

    // No day: the day the next scheduled digest summarises.
    let expected: chrono::NaiveDate =
        sqlx::query_scalar("select digest_business_day($1, tenant_today($1))")
            .bind(org.tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let (status, _, default) = request(&app, &org.director, &json!({}), None).await;
    assert_eq!(status, 202, "{default}");
    assert_eq!(default["day"], json!(expected.to_string()), "{default}");
}
