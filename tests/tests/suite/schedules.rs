//! Schedules (V22 + sql/api/schedules.sql): recurring jobs of a
//! tenant in the tenant's own time zone. pg_cron calls `schedules_fire()`
//! every minute; here the tests call `schedules_fire(<simulated now>)`
//! themselves (no sleeping): a period fires once however often or however
//! late it is called, after an outage only the latest missed period fires,
//! two concurrent callers enqueue one job, and wall times a DST transition
//! skips or repeats run once.

use bizos_tests::{code, field, rpc, TestDb};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

const CRON_SQL: &str = include_str!("../../../sql/bootstrap/cron.sql");

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// schedules_fire(at) as the owner (pg_cron's job runs as bizos_owner).
async fn fire(db: &TestDb, at: DateTime<Utc>) -> i32 {
    sqlx::query_scalar("select schedules_fire($1)")
        .bind(at)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// The dedup keys of the jobs a schedule enqueued, in order.
async fn jobs_of(db: &TestDb, schedule: &str) -> Vec<String> {
    sqlx::query_scalar("select dedup_key from jobs where dedup_key like $1 || ':%' order by 1")
        .bind(schedule)
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

async fn next_run(db: &TestDb, schedule: &str) -> DateTime<Utc> {
    sqlx::query_scalar("select next_run_at from schedules where schedule_id = $1::uuid")
        .bind(schedule)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// An instant's wall clock in a zone: "2026-12-03 05:00 Thu".
async fn local(db: &TestDb, at: DateTime<Utc>, zone: &str) -> String {
    sqlx::query_scalar("select to_char($1 at time zone $2, 'YYYY-MM-DD HH24:MI Dy')")
        .bind(at)
        .bind(zone)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn create(
    db: &TestDb,
    who: &bizos_bff::auth::Caller,
    payload: Value,
    job_payload: Value,
) -> Result<Value, sqlx::Error> {
    rpc(
        db,
        who,
        "select schedule_create($1, $2)",
        &[payload, job_payload],
    )
    .await
}

fn id_of(schedule: &Value) -> String {
    schedule["schedule_id"]
        .as_str()
        .expect("schedule_id")
        .to_owned()
}

/// A new tenant without the schedules every tenant starts with (the daily
/// digest, ...; their own tests cover them): these tests count and fire
/// only the schedules they create.
async fn tenant_without_schedules(db: &TestDb, slug: &str) -> Uuid {
    let tenant = db.create_tenant(slug).await;
    sqlx::query("delete from schedules where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    tenant
}

/// How many schedules `who` sees.
async fn visible(db: &TestDb, who: &bizos_bff::auth::Caller) -> i64 {
    let mut tx = db.as_user(who).await;
    sqlx::query_scalar("select count(*) from schedules")
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

async fn set_zone(db: &TestDb, tenant: Uuid, zone: &str) {
    sqlx::query("update tenants set time_zone = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(zone)
        .execute(&db.owner)
        .await
        .unwrap();
}

/// Simulates the clock the schedule was created at: its next run (as the
/// database computed it from the real now) is moved to `at`.
async fn set_next_run(db: &TestDb, schedule: &str, at: DateTime<Utc>) {
    sqlx::query("update schedules set next_run_at = $2 where schedule_id = $1::uuid")
        .bind(schedule)
        .bind(at)
        .execute(&db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_0500_jakarta_schedule_fires_once_per_day_and_once_after_an_outage() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "jakarta").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let s = create(
        &db,
        &admin,
        json!({"name": "CEO digest", "kind": "storage.sweep", "at": "05:00"}),
        json!({"report": "ceo"}),
    )
    .await
    .unwrap();
    assert_eq!(
        (&s["time_zone"], &s["at"], &s["days"], &s["active"]),
        (
            &json!("Asia/Jakarta"),
            &json!("05:00"),
            &Value::Null,
            &json!(true)
        ),
        "{s}"
    );
    let id = id_of(&s);

    // The next 05:00 in Jakarta (UTC+7): 22:00 UTC, within a day from now.
    let first = next_run(&db, &id).await;
    let now = Utc::now();
    assert!(first > now && first - now <= Duration::days(1), "{first}");
    assert!(
        local(&db, first, "Asia/Jakarta").await.contains(" 05:00 "),
        "{first}"
    );
    let day = |at: DateTime<Utc>| {
        at.with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
            .date_naive()
    };

    // 04:59, 05:00, 05:00:30, 05:01 of simulated time: one job.
    let fired: Vec<i32> = {
        let mut v = Vec::new();
        for secs in [-60, 0, 30, 60] {
            v.push(fire(&db, first + Duration::seconds(secs)).await);
        }
        v
    };
    assert_eq!(fired, [0, 1, 0, 0]);
    assert_eq!(jobs_of(&db, &id).await, [format!("{id}:{}", day(first))]);
    let (kind, payload, status, job_tenant): (String, Value, String, Uuid) = sqlx::query_as(
        "select kind, payload, status, tenant_id from jobs where dedup_key like $1 || ':%'",
    )
    .bind(&id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), payload, status.as_str(), job_tenant),
        ("storage.sweep", json!({"report": "ceo"}), "queued", tenant)
    );
    assert_eq!(next_run(&db, &id).await, first + Duration::days(1));

    // An outage: nothing calls for three days. The next call fires the
    // latest missed period once, and the next run is the next 05:00.
    let back = first + Duration::days(3) + Duration::hours(2);
    assert_eq!(fire(&db, back).await, 1);
    assert_eq!(fire(&db, back + Duration::minutes(1)).await, 0);
    assert_eq!(
        jobs_of(&db, &id).await,
        [
            format!("{id}:{}", day(first)),
            format!("{id}:{}", day(first + Duration::days(3)))
        ]
    );
    assert_eq!(next_run(&db, &id).await, first + Duration::days(4));
    let listed = rpc(
        &db,
        &admin,
        "select schedule_json(s) from schedules s where schedule_id = ($1 #>> '{}')::uuid",
        &[json!(id)],
    )
    .await
    .unwrap();
    assert_eq!(
        listed["last_fired_period"],
        json!(day(first + Duration::days(3)).to_string())
    );
}

#[tokio::test]
async fn two_concurrent_callers_enqueue_one_job_and_a_period_never_fires_twice() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "race").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let s = create(
        &db,
        &admin,
        json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"}),
        json!({}),
    )
    .await
    .unwrap();
    let id = id_of(&s);
    let at = next_run(&db, &id).await;

    let mut one = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    let mut two = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    sqlx::query("begin").execute(&mut one).await.unwrap();
    sqlx::query("begin").execute(&mut two).await.unwrap();
    let first: i32 = sqlx::query_scalar("select schedules_fire($1)")
        .bind(at)
        .fetch_one(&mut one)
        .await
        .unwrap();
    // The second caller skips the row the first holds; it does not wait.
    let second: i32 = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sqlx::query_scalar("select schedules_fire($1)")
            .bind(at)
            .fetch_one(&mut two),
    )
    .await
    .expect("the second caller waited for the first")
    .unwrap();
    sqlx::query("commit").execute(&mut one).await.unwrap();
    sqlx::query("commit").execute(&mut two).await.unwrap();
    assert_eq!((first, second), (1, 0));
    assert_eq!(jobs_of(&db, &id).await.len(), 1);

    // Even a caller that finds the schedule due again for the same period
    // (stale state, a restored backup) adds no job: the period is recorded,
    // and the job's dedup key holds when the record is gone too.
    let job: Uuid =
        sqlx::query_scalar("select last_job_id from schedules where schedule_id = $1::uuid")
            .bind(&id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    set_next_run(&db, &id, at).await;
    assert_eq!(fire(&db, at + Duration::seconds(5)).await, 0);
    sqlx::query("update schedules set next_run_at = $2, last_fired_period = null where schedule_id = $1::uuid")
        .bind(&id)
        .bind(at)
        .execute(&db.owner)
        .await
        .unwrap();
    fire(&db, at + Duration::seconds(10)).await;
    assert_eq!(jobs_of(&db, &id).await.len(), 1);
    let again: Uuid =
        sqlx::query_scalar("select last_job_id from schedules where schedule_id = $1::uuid")
            .bind(&id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(again, job);
}

#[tokio::test]
async fn a_weekly_monday_0600_schedule_fires_on_mondays_only() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "weekly").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let s = create(
        &db,
        &manager,
        json!({"name": "weekly RFM", "kind": "storage.sweep", "at": "06:00", "days": ["MON", "mon"]}),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(s["days"], json!(["mon"]));
    let id = id_of(&s);
    let monday = next_run(&db, &id).await;
    assert!(
        local(&db, monday, "Asia/Jakarta")
            .await
            .ends_with(" 06:00 Mon"),
        "{monday}"
    );
    assert!(monday - Utc::now() <= Duration::days(7));
    assert_eq!(fire(&db, monday).await, 1);
    for d in 1..7 {
        assert_eq!(fire(&db, monday + Duration::days(d)).await, 0, "day {d}");
    }
    assert_eq!(next_run(&db, &id).await, monday + Duration::days(7));
    assert_eq!(fire(&db, monday + Duration::days(7)).await, 1);
    assert_eq!(jobs_of(&db, &id).await.len(), 2);

    // Two days a week: Monday and Thursday, in order.
    let s = rpc(
        &db,
        &manager,
        "select schedule_update(($1 #>> '{}')::uuid, $2)",
        &[json!(id), json!({"days": ["thu", "mon"]})],
    )
    .await
    .unwrap();
    assert_eq!(s["days"], json!(["mon", "thu"]));
    let next = next_run(&db, &id).await;
    let wall = local(&db, next, "Asia/Jakarta").await;
    assert!(
        wall.ends_with(" 06:00 Mon") || wall.ends_with(" 06:00 Thu"),
        "{wall}"
    );
}

#[tokio::test]
async fn local_times_a_dst_transition_skips_or_repeats_run_once() {
    let db = TestDb::new().await;
    // The pure function, in zones with DST.
    for (at, zone, after, want) in [
        // New York springs forward at 02:00 on 2026-03-08: 02:30 does not
        // exist; it runs at 03:30 EDT (07:30 UTC), once.
        (
            "02:30",
            "America/New_York",
            "2026-03-07T12:00:00Z",
            "2026-03-08T07:30:00Z",
        ),
        (
            "02:30",
            "America/New_York",
            "2026-03-08T07:30:00Z",
            "2026-03-09T06:30:00Z",
        ),
        // ... and falls back at 02:00 on 2026-11-01: 01:30 happens twice
        // (05:30 UTC in EDT, 06:30 UTC in EST); it runs at the first.
        (
            "01:30",
            "America/New_York",
            "2026-10-31T12:00:00Z",
            "2026-11-01T05:30:00Z",
        ),
        (
            "01:30",
            "America/New_York",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z",
        ),
        // Berlin: 02:30 is skipped on 2026-03-29 and repeated on 2026-10-25.
        (
            "02:30",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            "2026-03-29T01:30:00Z",
        ),
        (
            "02:30",
            "Europe/Berlin",
            "2026-10-24T12:00:00Z",
            "2026-10-25T00:30:00Z",
        ),
        (
            "02:30",
            "Europe/Berlin",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
        ),
        // Jakarta has no DST: 05:00 is 22:00 UTC the day before.
        (
            "05:00",
            "Asia/Jakarta",
            "2026-12-02T21:59:00Z",
            "2026-12-02T22:00:00Z",
        ),
        (
            "05:00",
            "Asia/Jakarta",
            "2026-12-02T22:00:00Z",
            "2026-12-03T22:00:00Z",
        ),
    ] {
        let got: DateTime<Utc> =
            sqlx::query_scalar("select schedule_next_run($1::time, null, $2, $3)")
                .bind(at)
                .bind(zone)
                .bind(ts(after))
                .fetch_one(&db.owner)
                .await
                .unwrap();
        assert_eq!(got, ts(want), "{at} in {zone} after {after}");
    }

    // schedules_fire around both New York transitions.
    let tenant = tenant_without_schedules(&db, "new-york").await;
    set_zone(&db, tenant, "America/New_York").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let repeated = id_of(
        &create(
            &db,
            &admin,
            json!({"name": "at 01:30", "kind": "storage.sweep", "at": "01:30"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    set_next_run(&db, &repeated, ts("2026-11-01T05:30:00Z")).await;
    assert_eq!(fire(&db, ts("2026-11-01T05:29:00Z")).await, 0);
    assert_eq!(
        fire(&db, ts("2026-11-01T05:30:00Z")).await,
        1,
        "the first 01:30"
    );
    assert_eq!(
        fire(&db, ts("2026-11-01T06:30:00Z")).await,
        0,
        "the second 01:30"
    );
    assert_eq!(
        jobs_of(&db, &repeated).await,
        [format!("{repeated}:2026-11-01")]
    );
    assert_eq!(next_run(&db, &repeated).await, ts("2026-11-02T06:30:00Z"));

    let skipped = id_of(
        &create(
            &db,
            &admin,
            json!({"name": "at 02:30", "kind": "storage.sweep", "at": "02:30"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    set_next_run(&db, &skipped, ts("2026-03-08T07:30:00Z")).await;
    // 01:59 EST, then 03:00 EDT (the jump): not yet.
    assert_eq!(fire(&db, ts("2026-03-08T06:59:00Z")).await, 0);
    assert_eq!(fire(&db, ts("2026-03-08T07:00:00Z")).await, 0);
    assert_eq!(fire(&db, ts("2026-03-08T07:30:00Z")).await, 1, "03:30 EDT");
    assert_eq!(fire(&db, ts("2026-03-08T08:30:00Z")).await, 0);
    assert_eq!(
        jobs_of(&db, &skipped).await,
        [format!("{skipped}:2026-03-08")]
    );
    assert_eq!(next_run(&db, &skipped).await, ts("2026-03-09T06:30:00Z"));
}

#[tokio::test]
async fn a_new_tenant_time_zone_moves_the_next_runs() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "moving").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let id = id_of(
        &create(
            &db,
            &admin,
            json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    assert!(local(&db, next_run(&db, &id).await, "Asia/Jakarta")
        .await
        .contains(" 05:00 "));
    set_zone(&db, tenant, "America/New_York").await;
    let moved = next_run(&db, &id).await;
    assert!(
        local(&db, moved, "America/New_York")
            .await
            .contains(" 05:00 "),
        "{moved}"
    );
    assert!(moved > Utc::now() && moved - Utc::now() <= Duration::days(1));
    let s = rpc(
        &db,
        &admin,
        "select schedule_json(s) from schedules s where schedule_id = ($1 #>> '{}')::uuid",
        &[json!(id)],
    )
    .await
    .unwrap();
    assert_eq!(s["time_zone"], json!("America/New_York"));
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_written() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "refusals").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let ok = json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"});
    let with = |k: &str, v: Value| {
        let mut p = ok.clone();
        p[k] = v;
        p
    };
    let without = |k: &str| {
        let mut p = ok.clone();
        p.as_object_mut().unwrap().remove(k);
        p
    };
    for (payload, job_payload, want) in [
        (without("name"), json!({}), "name"),
        (with("name", json!("  ")), json!({}), "name"),
        (without("kind"), json!({}), "kind"),
        (with("kind", json!("digest.test")), json!({}), "kind"),
        (without("at"), json!({}), "at"),
        (with("at", json!("5:00")), json!({}), "at"),
        (with("at", json!("24:00")), json!({}), "at"),
        (with("at", json!("05:00:30")), json!({}), "at"),
        (with("at", json!(500)), json!({}), "at"),
        (with("days", json!([])), json!({}), "days"),
        (with("days", json!(["mon", "funday"])), json!({}), "days[1]"),
        (with("days", json!("mon")), json!({}), "days"),
        (with("every", json!("day")), json!({}), "every"),
        (ok.clone(), json!([1]), "job_payload"),
    ] {
        let err = create(&db, &admin, payload.clone(), job_payload)
            .await
            .expect_err(&payload.to_string());
        assert_eq!(
            (code(&err).as_str(), field(&err).as_deref()),
            ("P0001", Some(want)),
            "{payload}: {err}"
        );
    }
    let n: i64 = sqlx::query_scalar("select count(*) from schedules")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing half-written");

    let id = id_of(&create(&db, &admin, ok.clone(), json!({})).await.unwrap());
    let err = create(&db, &admin, ok.clone(), json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err).as_str(), field(&err).as_deref()),
        ("23505", Some("name"))
    );
    let err = rpc(
        &db,
        &admin,
        "select schedule_update(($1 #>> '{}')::uuid, $2)",
        &[json!(Uuid::new_v4()), json!({"active": false})],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err).as_str(), field(&err).as_deref()),
        ("P0002", Some("schedule_id"))
    );
    let err = rpc(
        &db,
        &admin,
        "select schedule_update(($1 #>> '{}')::uuid, $2)",
        &[json!(id), json!({"at": "25:61"})],
    )
    .await
    .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("at"));

    // The pure function names its fields too.
    for (at, days, want) in [
        ("05:00", "{8}", "days"),
        ("05:00", "{}", "days"),
        ("05:00:30", "{1}", "at"),
    ] {
        let err = sqlx::query_scalar::<_, DateTime<Utc>>(
            "select schedule_next_run($1::time, $2::smallint[], 'Asia/Jakarta', now())",
        )
        .bind(at)
        .bind(days)
        .fetch_one(&db.owner)
        .await
        .unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(want), "{at} {days}");
    }

    // The run bookkeeping is the database's: users cannot write it.
    for set in [
        "next_run_at = now()",
        "last_fired_period = current_date",
        "last_job_id = null",
    ] {
        let mut tx = db.as_user(&admin).await;
        let err = sqlx::query(&format!("update schedules set {set}"))
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{set}");
    }
}

#[tokio::test]
async fn managers_manage_directors_read_and_nobody_sees_another_tenant() {
    let db = TestDb::new().await;
    let a = tenant_without_schedules(&db, "tenant-a").await;
    let b = tenant_without_schedules(&db, "tenant-b").await;
    let admin_a = db.create_user(a, "super_admin").await;
    let admin_b = db.create_user(b, "super_admin").await;
    let id = id_of(
        &create(
            &db,
            &admin_a,
            json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(visible(&db, &admin_a).await, 1);
    // Another tenant's super admin: sees nothing, changes nothing.
    assert_eq!(visible(&db, &admin_b).await, 0);
    for (sql, args) in [
        (
            "select schedule_update(($1 #>> '{}')::uuid, $2)",
            vec![json!(id), json!({"active": false})],
        ),
        (
            "select schedule_delete(($1 #>> '{}')::uuid)",
            vec![json!(id)],
        ),
    ] {
        let err = rpc(&db, &admin_b, sql, &args).await.unwrap_err();
        assert_eq!(code(&err), "P0002", "{sql}");
    }
    {
        let mut tx = db.as_user(&admin_b).await;
        let n = sqlx::query("update schedules set active = false")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 0);
    }

    // A salesperson: sees nothing and cannot create (403 from the RPC, RLS
    // for a direct insert).
    let seller = db.create_user(a, "salesperson").await;
    assert_eq!(visible(&db, &seller).await, 0);
    let err = create(
        &db,
        &seller,
        json!({"name": "mine", "kind": "storage.sweep", "at": "05:00"}),
        json!({}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    {
        let mut tx = db.as_user(&seller).await;
        let err = sqlx::query(
            "insert into schedules (tenant_id, name, kind, at_time) values ($1, 'mine', 'storage.sweep', '05:00')",
        )
        .bind(a)
        .execute(&mut *tx)
        .await
        .unwrap_err();
        assert_eq!(code(&err), "42501", "{err}");
    }

    // A director reads and writes nothing; a marketing manager manages.
    let director = db.create_user(a, "director").await;
    assert_eq!(visible(&db, &director).await, 1);
    let err = rpc(
        &db,
        &director,
        "select schedule_update(($1 #>> '{}')::uuid, $2)",
        &[json!(id), json!({"active": false})],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    let marketing = db.create_user(a, "marketing_manager").await;
    let s = rpc(
        &db,
        &marketing,
        "select schedule_update(($1 #>> '{}')::uuid, $2)",
        &[json!(id), json!({"active": false, "name": "paused digest"})],
    )
    .await
    .unwrap();
    assert_eq!(
        (&s["active"], &s["name"]),
        (&json!(false), &json!("paused digest"))
    );
    // Inactive: not fired, however late.
    let at = next_run(&db, &id).await;
    assert_eq!(fire(&db, at + Duration::days(2)).await, 0);
    rpc(
        &db,
        &admin_a,
        "select schedule_delete(($1 #>> '{}')::uuid)",
        &[json!(id)],
    )
    .await
    .unwrap();
    assert_eq!(visible(&db, &admin_a).await, 0);
}

#[tokio::test]
async fn pg_cron_fires_the_schedules_of_every_schema_every_minute() {
    let db = TestDb::new().await;
    let (admin, conn) = tokio_postgres::connect(&bizos_tests::admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = admin
        .query_one(
            "select current_setting('cron.database_name', true), current_database()::text",
            &[],
        )
        .await
        .unwrap();
    let (cron_db, here): (Option<String>, String) = (row.get(0), row.get(1));
    assert_eq!(
        cron_db.as_deref(),
        Some(here.as_str()),
        "the test cluster runs pg_cron in the admin database (scripts/dev)"
    );

    // Registered in the cron database, once however often bootstrap runs.
    admin
        .batch_execute("create extension if not exists pg_cron")
        .await
        .unwrap();
    admin.batch_execute(CRON_SQL).await.unwrap();
    admin.batch_execute(CRON_SQL).await.unwrap();
    let jobs = admin
        .query(
            "select schedule, command, database, username from cron.job where jobname = 'bizos_schedules_fire'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let (schedule, command, database, username): (String, String, String, String) = (
        jobs[0].get(0),
        jobs[0].get(1),
        jobs[0].get(2),
        jobs[0].get(3),
    );
    assert_eq!(
        (schedule.as_str(), database.as_str(), username.as_str()),
        ("* * * * *", here.as_str(), "bizos_owner")
    );
    admin
        .batch_execute(
            "select cron.unschedule(jobid) from cron.job where jobname = 'bizos_schedules_fire'",
        )
        .await
        .unwrap();

    // Any other database is left alone (and nothing fails there).
    let (other, conn) = tokio_postgres::connect(
        &bizos_sql::derive_dsn(&bizos_tests::admin_url(), None, &db.name).unwrap(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    other.batch_execute(CRON_SQL).await.unwrap();
    let cron: Option<String> = other
        .query_one("select to_regnamespace('cron')::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cron, None);

    // The job's command, run as pg_cron runs it (bizos_owner, in the
    // business database), fires what is due.
    let tenant = tenant_without_schedules(&db, "cron").await;
    let admin_user = db.create_user(tenant, "super_admin").await;
    let id = id_of(
        &create(
            &db,
            &admin_user,
            json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    sqlx::query("update schedules set next_run_at = now() - interval '1 minute'")
        .execute(&db.owner)
        .await
        .unwrap();
    // A schema-tier tenant in the same database: its own schedules table
    // and schedules_fire, fired by the same command.
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_cron"))
        .await
        .unwrap();
    let in_schema: Uuid = sqlx::query_scalar(
        "with t as (insert into tenant_cron.tenants (slug, name) values ('schema-tier', 'Schema tier')
                    returning tenant_id)
         insert into tenant_cron.schedules (tenant_id, name, kind, at_time)
         select tenant_id, 'digest', 'storage.sweep', '05:00' from t returning schedule_id",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    sqlx::query("update tenant_cron.schedules set next_run_at = now() - interval '1 minute'")
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::raw_sql(&command).execute(&db.owner).await.unwrap();
    assert_eq!(jobs_of(&db, &id).await.len(), 1);
    assert!(next_run(&db, &id).await > Utc::now());
    let schema_jobs: i64 =
        sqlx::query_scalar("select count(*) from tenant_cron.jobs where dedup_key like $1 || ':%'")
            .bind(in_schema.to_string())
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(schema_jobs, 1);
    let public_jobs: i64 = sqlx::query_scalar("select count(*) from public.jobs")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(public_jobs, 1, "each schema's jobs stay in that schema");
}

#[tokio::test]
async fn only_the_owner_sets_the_clock_and_the_worker_fires_at_now() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "clock").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let id = id_of(
        &create(
            &db,
            &admin,
            json!({"name": "digest", "kind": "storage.sweep", "at": "05:00"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    let future = next_run(&db, &id).await + Duration::days(30);
    for login in ["bizos_app", "bizos_worker", "bizos_analyst"] {
        let err = sqlx::query_scalar::<_, i32>("select schedules_fire($1)")
            .bind(future)
            .fetch_one(&db.pool_as(login))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{login}: {err}");
    }
    {
        let mut tx = db.as_user(&admin).await;
        let err = sqlx::query_scalar::<_, i32>("select schedules_fire_due()")
            .fetch_one(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{err}");
    }
    // The worker fires what is due at the database's clock, nothing ahead.
    let worker = db.pool_as("bizos_worker");
    let fired: i32 = sqlx::query_scalar("select schedules_fire_due()")
        .fetch_one(&worker)
        .await
        .unwrap();
    assert_eq!(fired, 0);
    assert!(jobs_of(&db, &id).await.is_empty());
    sqlx::query("update schedules set next_run_at = now() - interval '1 minute'")
        .execute(&db.owner)
        .await
        .unwrap();
    let fired: i32 = sqlx::query_scalar("select schedules_fire_due()")
        .fetch_one(&worker)
        .await
        .unwrap();
    assert_eq!(fired, 1);
    assert_eq!(jobs_of(&db, &id).await.len(), 1);
}

#[tokio::test]
async fn the_worker_fires_due_schedules_where_pg_cron_does_not_reach() {
    let db = TestDb::new().await;
    let tenant = tenant_without_schedules(&db, "no-cron").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let id = id_of(
        &create(
            &db,
            &admin,
            json!({"name": "sweep", "kind": "storage.sweep", "at": "05:00"}),
            json!({}),
        )
        .await
        .unwrap(),
    );
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        schedules_every: std::time::Duration::from_millis(200),
        ..bizos_tests::worker_settings(
            &db,
            100,
            bizos_bff::config::StorageSettings::Local {
                root: std::env::temp_dir().join("bizos-schedules-test-files"),
            },
        )
    })
    .await;
    // Not due: nothing fires, however often the worker looks.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(jobs_of(&db, &id).await.is_empty());
    // Due now (its next run a minute ago): the worker's next look fires it.
    sqlx::query("update schedules set next_run_at = now() - interval '1 minute'")
        .execute(&db.owner)
        .await
        .unwrap();
    let mut fired = Vec::new();
    for _ in 0..100 {
        fired = jobs_of(&db, &id).await;
        if !fired.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(fired.len(), 1, "fired once: {fired:?}");
    // Later looks do not fire the same period again.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(jobs_of(&db, &id).await.len(), 1);
    drop(worker.stop);
    worker.stopped.await.unwrap().unwrap();
}
