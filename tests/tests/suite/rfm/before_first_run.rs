//! `GET /api/rfm/segments` before the tenant's first run: 200 with an
//! empty snapshot (every segment, no customers) and when the first run is
//! due, in the tenant's time zone and as an instant (the weekly schedule:
//! Monday 06:00 local; an on-demand run waiting for a worker comes first);
//! after a run, the snapshot with the same `next_run`. A week asked for
//! that has no snapshot is still 404.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Utc, Weekday};
use serde_json::{json, Value};

use bizos_tests::{spawn_app_with, TestDb};

use super::{buy, compute, customer, monday, today};

/// The first Monday 06:00 in a zone of fixed offset `hours` after now:
/// (local, instant).
fn next_monday_0600(hours: i64) -> (NaiveDateTime, DateTime<Utc>) {
    let now_local = (Utc::now() + Duration::hours(hours)).naive_utc();
    let local = (0..8)
        .map(|d| now_local.date() + Duration::days(d))
        .filter(|d| d.weekday() == Weekday::Mon)
        .map(|d| d.and_hms_opt(6, 0, 0).unwrap())
        .find(|t| *t > now_local)
        .unwrap();
    (local, (local - Duration::hours(hours)).and_utc())
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("an instant: {v}"))
        .with_timezone(&Utc)
}

#[tokio::test]
async fn before_the_first_run_the_segments_are_an_empty_snapshot_with_the_next_run() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("rfm-first").await;
    // Tokyo: UTC+9 all year, so the expected times are plain arithmetic.
    sqlx::query("select tenant_set_time_zone($1, 'Asia/Tokyo')")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let app = spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;
    let (local, at) = next_monday_0600(9);

    for who in [&marketing, &sales] {
        let (status, report) = app.get_json(who, "/api/rfm/segments").await;
        assert_eq!(status, 200, "{report}");
        for key in [
            "week",
            "as_of",
            "window_start",
            "computed_at",
            "previous_week",
        ] {
            assert_eq!(report[key], Value::Null, "{key}: {report}");
        }
        assert_eq!(
            (
                &report["customers"],
                &report["window_days"],
                &report["movements"]
            ),
            (&json!(0), &json!(365), &json!([])),
            "{report}"
        );
        let segments = report["segments"].as_array().unwrap();
        assert!(segments.len() >= 10, "every segment: {report}");
        assert!(
            segments
                .iter()
                .all(|s| s["customers"] == 0 && s["moved_in"].is_null()),
            "{report}"
        );
        assert_eq!(segments[0]["segment"], "champions", "{report}");
        let next = &report["next_run"];
        assert_eq!(
            next["local"],
            json!(local.format("%Y-%m-%dT%H:%M:%S").to_string()),
            "{next}"
        );
        assert_eq!(instant(&next["at"]), at, "{next}");
        assert_eq!(next["time_zone"], "Asia/Tokyo", "{next}");
    }
    // A week asked for: there is no snapshot of it.
    let t = today(&db, tenant).await;
    let (status, body) = app
        .get_json(&marketing, &format!("/api/rfm/segments?week={t}"))
        .await;
    assert_eq!(status, 404, "{body}");

    // After a run: the snapshot, and the same next run.
    let c = customer(&db, tenant, "PT Pertama", None).await;
    buy(&db, tenant, c, 1000, t, 3).await;
    compute(&db, tenant, t).await;
    let (status, report) = app.get_json(&marketing, "/api/rfm/segments").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["week"], json!(monday(t)), "{report}");
    assert_eq!(report["as_of"], json!(t), "{report}");
    assert_eq!(report["customers"], 1, "{report}");
    assert_eq!(instant(&report["next_run"]["at"]), at, "{report}");
    assert_eq!(
        report["next_run"]["local"],
        json!(local.format("%Y-%m-%dT%H:%M:%S").to_string())
    );

    // A manager's run waiting for a worker is the next one.
    let (status, run) = app
        .post_json(&marketing, "/api/rfm/runs", &json!({}), None)
        .await;
    assert_eq!(status, 202, "{run}");
    let queued_at: DateTime<Utc> =
        sqlx::query_scalar("select run_at from jobs where job_id = $1::uuid")
            .bind(run["job_id"].as_str().unwrap())
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let (_, report) = app.get_json(&sales, "/api/rfm/segments").await;
    assert_eq!(instant(&report["next_run"]["at"]), queued_at, "{report}");

    // No active schedule and nothing queued: no next run.
    sqlx::query(
        "update schedules set active = false where tenant_id = $1 and kind = 'rfm.compute'",
    )
    .bind(tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query(
        "update jobs set status = 'cancelled', finished_at = now() where job_id = $1::uuid",
    )
    .bind(run["job_id"].as_str().unwrap())
    .execute(&db.owner)
    .await
    .unwrap();
    let (_, report) = app.get_json(&sales, "/api/rfm/segments").await;
    assert_eq!(report["next_run"], Value::Null, "{report}");
}
