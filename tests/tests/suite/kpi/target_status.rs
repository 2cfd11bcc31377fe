//! The state of a KPI target on the tenant's today: not_started,
//! in_progress, achieved, missed (or na when the actual is NA), and
//! `achieved` true / false only once the period is over. Checked at the
//! boundary days (starts tomorrow, starts today, ends today, ended
//! yesterday) for tenants at UTC+14 (Pacific/Kiritimati) and UTC-12
//! (Etc/GMT+12), read from a session in the other zone, through the
//! user's route, SQL, the analytics report and the digest, which agree.

use std::collections::BTreeMap;

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use chrono::{Duration, NaiveDate};
use serde_json::{json, Value};
use uuid::Uuid;

/// A row of the analytics report: target, state, achieved, progress.
type ReportRow = (Uuid, Option<String>, Option<bool>, Option<f64>);

/// (what, metric, first day, last day (days from the tenant's today),
/// target value, target_status, achieved).
type Case = (
    &'static str,
    &'static str,
    i64,
    i64,
    i64,
    &'static str,
    Option<bool>,
);

const CASES: [Case; 8] = [
    // Overdue AR is 0 in this tenant and lower is better: judged before
    // its period, this target would read as achieved.
    (
        "lower, starts tomorrow",
        "ar_overdue_amount",
        1,
        30,
        10,
        "not_started",
        None,
    ),
    (
        "higher, starts in a week",
        "quotations_sent",
        7,
        13,
        1,
        "not_started",
        None,
    ),
    // Already above its target (5 of 3), but the period runs on.
    (
        "starts today",
        "quotations_sent",
        0,
        6,
        3,
        "in_progress",
        None,
    ),
    ("ends today", "mql_count", -5, 0, 2, "in_progress", None),
    (
        "ended yesterday, reached",
        "quotations_sent",
        -7,
        -1,
        3,
        "achieved",
        Some(true),
    ),
    (
        "ended yesterday, lower, reached",
        "ar_overdue_amount",
        -3,
        -1,
        10,
        "achieved",
        Some(true),
    ),
    (
        "over, not reached",
        "quotations_sent",
        -14,
        -8,
        3,
        "missed",
        Some(false),
    ),
    ("over, no actual", "mql_count", -12, -6, 2, "na", None),
];

fn day(today: NaiveDate, offset: i64) -> NaiveDate {
    today + Duration::days(offset)
}

struct Org {
    tenant: Uuid,
    director: Caller,
    alice: Caller,
    today: NaiveDate,
    /// target_id -> the case's index.
    targets: BTreeMap<String, usize>,
}

async fn org(db: &TestDb, app: &TestApp, slug: &str, zone: &str) -> Org {
    let tenant = db.create_tenant(slug).await;
    sqlx::query("update tenants set time_zone = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(zone)
        .execute(&db.owner)
        .await
        .unwrap();
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let today: NaiveDate = sqlx::query_scalar("select tenant_today($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let mut targets = BTreeMap::new();
    for (i, (what, metric, from, to, value, _, _)) in CASES.iter().enumerate() {
        let (status, t) = app
            .post_json(
                &admin,
                "/api/kpi/targets",
                &json!({"metric_key": metric, "assignee_user_id": alice.user_id,
                        "period_start": day(today, *from), "period_end": day(today, *to),
                        "target_value": value}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{what}: {t}");
        targets.insert(t["target_id"].as_str().unwrap().to_owned(), i);
    }
    // Quotations: 5 today, 4 three days ago, 1 ten days ago.
    for (offset, value) in [(0, 5), (-3, 4), (-10, 1)] {
        let (status, e) = app
            .post_json(
                &alice,
                "/api/kpi/entries",
                &json!({"metric_key": "quotations_sent", "value": value,
                        "entry_date": day(today, offset)}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{e}");
    }
    Org {
        tenant,
        director,
        alice,
        today,
        targets,
    }
}

/// (target_status, achieved, progress_pct) per case, from progress items.
fn states(o: &Org, items: &Value) -> Vec<(String, Option<bool>, Option<f64>)> {
    let mut out = vec![(String::new(), None, None); CASES.len()];
    for item in items.as_array().unwrap() {
        let i = o.targets[item["target_id"].as_str().unwrap()];
        out[i] = (
            item["target_status"].as_str().unwrap_or("NULL").to_owned(),
            item["achieved"].as_bool(),
            item["progress_pct"].as_f64(),
        );
    }
    out
}

#[tokio::test]
async fn targets_are_judged_only_once_their_period_is_over_in_the_tenants_zone() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let zones = [
        ("Pacific/Kiritimati", "Etc/GMT+12"),
        ("Etc/GMT+12", "Pacific/Kiritimati"),
    ];
    let mut todays = Vec::new();
    for (n, (zone, session_zone)) in zones.into_iter().enumerate() {
        let o = org(&db, &app, &format!("kpi-state-{n}"), zone).await;
        todays.push(o.today);
        let (from, to) = (day(o.today, -30), day(o.today, 30));

        // The user's route.
        let (status, body) = app
            .get_json(
                &o.director,
                &format!("/api/kpi/progress?from={from}&to={to}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let items = &body["items"];
        assert_eq!(items.as_array().unwrap().len(), CASES.len(), "{body}");
        let got = states(&o, items);
        for (i, (what, _, _, _, _, status, achieved)) in CASES.iter().enumerate() {
            assert_eq!(
                (got[i].0.as_str(), got[i].1),
                (*status, *achieved),
                "{zone}, {what} (today {}): {body}",
                o.today
            );
        }
        // Progress is still shown while the period runs: 5 of 3.
        assert_eq!(got[2].2, Some(166.7), "{zone}: {body}");
        assert_eq!(got[4].2, Some(133.3), "{zone}: {body}");
        assert_eq!(got[6].2, Some(33.3), "{zone}: {body}");
        // The assignee sees the same states of their own targets.
        let (status, own) = app
            .get_json(&o.alice, &format!("/api/kpi/progress?from={from}&to={to}"))
            .await;
        assert_eq!(status, 200, "{own}");
        assert_eq!(states(&o, &own["items"]), got, "{zone}: alice");

        // SQL from a session in the other zone, whose current_date is
        // another day than the tenant's: the same answer.
        let mut tx = db.as_user(&o.director).await;
        sqlx::query(&format!("set local time zone '{session_zone}'"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let (session_day, sql): (NaiveDate, Value) =
            sqlx::query_as("select current_date, kpi_progress(null, $1, $2)")
                .bind(from)
                .bind(to)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        tx.rollback().await.unwrap();
        assert_ne!(
            session_day, o.today,
            "{zone}: the session is on another day"
        );
        assert_eq!(&sql, items, "{zone}: SQL at {session_zone} = HTTP");

        // The analytics report, read by BI from the other zone.
        let bi = db.pool_as("bizos_bi");
        let mut conn = bi.acquire().await.unwrap();
        sqlx::query(&format!("set time zone '{session_zone}'"))
            .execute(&mut *conn)
            .await
            .unwrap();
        let rows: Vec<ReportRow> = sqlx::query_as(
            "select target_id, target_status, achieved, progress_pct::float8
               from analytics.v_kpi_actual_vs_target where tenant_id = $1",
        )
        .bind(o.tenant)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        sqlx::query("reset time zone")
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(rows.len(), CASES.len(), "{zone}: {rows:?}");
        for (target, status, achieved, pct) in rows {
            let i = o.targets[&target.to_string()];
            assert_eq!(
                (status.unwrap_or_default(), achieved, pct),
                got[i].clone(),
                "{zone}, {}: analytics = HTTP",
                CASES[i].0
            );
        }

        // The digest's KPI counts, for yesterday and today, are the states
        // of the targets running on that day with a measurable actual.
        let worker = db.pool_as("bizos_worker");
        for offset in [-1, 0] {
            let d = day(o.today, offset);
            let digest: Value = sqlx::query_scalar("select digest_aggregates($1, $2)")
                .bind(o.tenant)
                .bind(d)
                .fetch_one(&worker)
                .await
                .unwrap();
            let mut want: BTreeMap<String, [i64; 4]> = BTreeMap::new();
            for item in items.as_array().unwrap() {
                let start: NaiveDate = item["period_start"].as_str().unwrap().parse().unwrap();
                let end: NaiveDate = item["period_end"].as_str().unwrap().parse().unwrap();
                if start > d || end < d || item["actual_value"].is_null() {
                    continue;
                }
                let counts = want
                    .entry(item["metric_key"].as_str().unwrap().to_owned())
                    .or_default();
                counts[0] += 1;
                match item["target_status"].as_str().unwrap() {
                    "in_progress" => counts[1] += 1,
                    "achieved" => counts[2] += 1,
                    "missed" => counts[3] += 1,
                    other => panic!("{zone}: a running target with an actual is {other}"),
                }
            }
            let got_digest: BTreeMap<String, [i64; 4]> = digest["kpi"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    (
                        k["metric_key"].as_str().unwrap().to_owned(),
                        ["targets", "in_progress", "achieved", "missed"]
                            .map(|f| k[f].as_i64().unwrap_or(-1)),
                    )
                })
                .collect();
            assert_eq!(got_digest, want, "{zone}, digest of {d}: {digest}");
        }
        // Yesterday's: both targets that ended yesterday were reached.
        let yesterday: Value = sqlx::query_scalar("select digest_aggregates($1, $2) -> 'kpi'")
            .bind(o.tenant)
            .bind(day(o.today, -1))
            .fetch_one(&worker)
            .await
            .unwrap();
        let counts: Vec<(&str, i64, i64)> = yesterday
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["metric_key"].as_str().unwrap(),
                    k["targets"].as_i64().unwrap(),
                    k["achieved"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            counts,
            [("ar_overdue_amount", 1, 1), ("quotations_sent", 1, 1)],
            "{zone}: {yesterday}"
        );
    }
    assert_ne!(
        todays[0], todays[1],
        "the two tenants are on different days"
    );
}
