//! KPI, run as the roles concerned: targets
//! that cannot overlap, MANUAL/IMPORTED actuals in kpi_entries, AUTO actuals
//! from the views, NA instead of invented numbers, audit of targets and input.

// KPI scopes, AR aging metrics and the tenant's today: kpi/scopes.rs.
mod scopes;
// The state of a target (not started, in progress, achieved, missed) on the
// tenant's today, everywhere it is reported: kpi/target_status.rs.
mod target_status;

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, num, rpc, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn constraint(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned)
}

/// kpi_actual over [today - 5, tomorrow] (days of leads and activities are in
/// the tenant time zone, which may already be tomorrow for the session).
async fn actual(db: &TestDb, who: &Caller, metric: &str, assignee: Option<Uuid>) -> Value {
    let mut tx = db.as_user(who).await;
    sqlx::query_scalar("select kpi_actual($1, $2, daterange(current_date - 5, current_date + 2))")
        .bind(metric)
        .bind(assignee)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
}

struct Org {
    tenant: Uuid,
    admin: Caller,
    director: Caller,
    marketing: Caller,
    manager: Caller,
    alice: Caller,
    bob: Caller,
    finance: Caller,
    ops: Caller,
}

async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("acme").await;
    let org = Org {
        tenant,
        admin: db.create_user(tenant, "super_admin").await,
        director: db.create_user(tenant, "director").await,
        marketing: db.create_user(tenant, "marketing_manager").await,
        manager: db.create_user(tenant, "sales_manager").await,
        alice: db.create_user(tenant, "salesperson").await,
        bob: db.create_user(tenant, "salesperson").await,
        finance: db.create_user(tenant, "finance").await,
        ops: db.create_user(tenant, "ops").await,
    };
    sqlx::query("update profiles set manager_user_id = $1 where user_id = $2")
        .bind(org.manager.user_id)
        .bind(org.alice.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    org
}

fn target(metric: &str, assignee: &Caller, month: &str, value: i64) -> Value {
    json!({"metric_key": metric, "assignee_user_id": assignee.user_id, "period_month": month, "target_value": value})
}

#[tokio::test]
async fn target_cannot_be_doubled_for_period_assignee_metric() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let create = "select kpi_target_create($1)";
    let t = rpc(
        &db,
        &o.manager,
        create,
        &[target("revenue", &o.alice, "2031-01", 500_000_000)],
    )
    .await
    .unwrap();
    assert_eq!(
        (t["period_start"].as_str(), t["period_end"].as_str()),
        (Some("2031-01-01"), Some("2031-01-31"))
    );

    // Same metric and assignee, overlapping period: refused, naming the period.
    let overlapping = json!({"metric_key": "revenue", "assignee_user_id": o.alice.user_id,
                             "period_start": "2031-01-20", "period_end": "2031-02-10", "target_value": 1});
    let err = rpc(&db, &o.manager, create, &[overlapping])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23P01");
    assert_eq!(field(&err).as_deref(), Some("period"));
    assert_eq!(constraint(&err).as_deref(), Some("kpi_targets_period_excl"));

    // The exclusion constraint holds without the RPC too.
    let mut tx = db.as_user(&o.manager).await;
    let err = sqlx::query(
        "insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value)
         values ($1, 'revenue', $2, '[2031-01-31,2031-03-01)', 1)",
    )
    .bind(o.tenant)
    .bind(o.alice.user_id)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(constraint(&err).as_deref(), Some("kpi_targets_period_excl"));
    drop(tx);

    // Adjacent periods, another metric, another assignee: fine.
    rpc(
        &db,
        &o.manager,
        create,
        &[target("revenue", &o.alice, "2031-02", 1)],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.manager,
        create,
        &[target("new_logos", &o.alice, "2031-01", 3)],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.manager,
        create,
        &[target("revenue", &o.manager, "2031-01", 9)],
    )
    .await
    .unwrap();

    // Two concurrent creates of the same target: exactly one wins, and the
    // loser gets the overlap (23P01 naming the winner's period), never a
    // deadlock. One race rarely hits the window, so run twenty.
    let race = |who: Caller, month: String| {
        let app = db.app.clone();
        let body = target("sales_activities", &o.alice, &month, 40);
        tokio::spawn(async move {
            let mut tx = bizos_bff::db::begin_as(&app, &who).await.unwrap();
            let r = sqlx::query_scalar::<_, Value>("select kpi_target_create($1)")
                .bind(body)
                .fetch_one(&mut *tx)
                .await;
            match r {
                Ok(_) => tx.commit().await.map(|_| ()),
                Err(e) => Err(e),
            }
        })
    };
    for month in 1..=20 {
        let month = format!("{}-{:02}", 2040 + (month - 1) / 12, (month - 1) % 12 + 1);
        let (a, b) = tokio::join!(
            race(o.manager.clone(), month.clone()),
            race(o.admin.clone(), month.clone())
        );
        let results = [a.unwrap(), b.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{month}: {results:?}"
        );
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(code(loser), "23P01", "{month}: {loser}");
        assert_eq!(field(loser).as_deref(), Some("period"), "{month}");
        let message = loser.as_database_error().unwrap().message().to_owned();
        assert!(
            message.contains(&format!("overlaps the target {month}-01..")),
            "{month}: {message}"
        );
    }
}

#[tokio::test]
async fn only_managers_set_targets_and_directors_read_only() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let create = "select kpi_target_create($1)";
    rpc(
        &db,
        &o.manager,
        create,
        &[target("revenue", &o.alice, "2031-01", 10)],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.marketing,
        create,
        &[target("cpl", &o.marketing, "2031-01", 150_000)],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.admin,
        create,
        &[target("revenue", &o.bob, "2031-01", 10)],
    )
    .await
    .unwrap();

    for who in [&o.director, &o.alice, &o.finance, &o.ops] {
        let err = rpc(&db, who, create, &[target("revenue", who, "2032-01", 1)])
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{}", who.claims["app_role"]);
    }
    // A sales manager sets targets for the team only.
    let err = rpc(
        &db,
        &o.manager,
        create,
        &[target("revenue", &o.bob, "2032-01", 1)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");

    let mut tx = db.as_user(&o.director).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from kpi_targets")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 3, "the director reads every target");
    let changed = sqlx::query("update kpi_targets set target_value = 0")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    let removed = sqlx::query("delete from kpi_targets")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!((changed, removed), (0, 0), "the director writes nothing");
    drop(tx);

    let mut tx = db.as_user(&o.alice).await;
    let own: Vec<Uuid> = sqlx::query_scalar("select assignee_user_id from kpi_targets")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        own,
        vec![o.alice.user_id],
        "assignees read their own targets"
    );
}

#[tokio::test]
async fn auto_metrics_come_from_internal_data_views() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    // CRM data as the CRM module writes it.
    let mut customers = Vec::new();
    for (name, owner) in [("PT Satu", &o.alice), ("PT Dua", &o.bob)] {
        let c: Uuid = sqlx::query_scalar(
            "insert into customers (tenant_id, company_name) values ($1, $2) returning customer_id",
        )
        .bind(o.tenant)
        .bind(name)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        let p: Uuid = sqlx::query_scalar(
            "insert into prospects (tenant_id, customer_id, owner_user_id) values ($1, $2, $3) returning prospect_id",
        )
        .bind(o.tenant)
        .bind(c)
        .bind(owner.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        customers.push((c, p, owner.user_id));
    }
    for (channel, (c, p, owner)) in [
        ("website", customers[0]),
        ("website", customers[1]),
        ("referral", customers[0]),
    ] {
        sqlx::query(
            "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, sales_owner_user_id, assigned_at)
             values ($1, $2, 'x', $3, $4, $5, now())",
        )
        .bind(o.tenant)
        .bind(channel)
        .bind(c)
        .bind(p)
        .bind(owner)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    sqlx::query("insert into marketing_spend (tenant_id, channel, spend_date, amount) values ($1, 'website', tenant_today($1), 300000)")
        .bind(o.tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::query(
        "insert into sales_activities (tenant_id, owner_user_id, activity_type, customer_id, summary)
         values ($1, $2, 'call', $3, 'Call'), ($1, $2, 'meeting', $3, 'Meeting')",
    )
    .bind(o.tenant)
    .bind(o.alice.user_id)
    .bind(customers[0].0)
    .execute(&db.owner)
    .await
    .unwrap();
    for (c, subtotal) in [(customers[0].0, 1_000_000), (customers[1].0, 500_000)] {
        rpc(
            &db,
            &o.finance,
            "select invoice_create($1)",
            &[json!({"customer_id": c, "subtotal": subtotal, "tax": subtotal / 10})],
        )
        .await
        .unwrap();
    }

    let leads = actual(&db, &o.director, "leads_by_channel", None).await;
    assert_eq!(
        (num(&leads["value"]), leads["breakdown"].clone()),
        (3.0, json!({"website": 2, "referral": 1}))
    );
    let cpl = actual(&db, &o.director, "cpl", None).await;
    assert_eq!(
        (num(&cpl["value"]), cpl["status"].as_str()),
        (100_000.0, Some("ok"))
    );
    // Revenue = subtotal (excl. PPN) of issued invoices; per assignee by ownership.
    assert_eq!(
        num(&actual(&db, &o.director, "revenue", None).await["value"]),
        1_500_000.0
    );
    let alice_rev = actual(&db, &o.director, "revenue", Some(o.alice.user_id)).await;
    assert_eq!(
        (num(&alice_rev["value"]), alice_rev["scope"].as_str()),
        (1_000_000.0, Some("assignee"))
    );
    assert_eq!(
        num(&actual(&db, &o.director, "new_logos", None).await["value"]),
        2.0
    );
    assert_eq!(
        num(&actual(&db, &o.director, "sales_activities", Some(o.alice.user_id)).await["value"]),
        2.0
    );
    // DSO from the same formula as v_dso_rolling_30.
    let dso = actual(&db, &o.director, "dso_rolling_30", None).await;
    let mut tx = db.as_user(&o.director).await;
    let view: f64 = sqlx::query_scalar(
        "select dso_days::float8 from v_dso_rolling_30 where day = tenant_today() and currency = 'IDR'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(num(&dso["value"]), view);
    drop(tx);

    // The views are the source: a new lead shows up without any KPI input.
    sqlx::query(
        "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id) values ($1, 'event', 'y', $2, $3)",
    )
    .bind(o.tenant)
    .bind(customers[0].0)
    .bind(customers[0].1)
    .execute(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        num(&actual(&db, &o.director, "leads_by_channel", None).await["value"]),
        4.0
    );
    assert_eq!(
        num(&actual(&db, &o.director, "cpl", None).await["value"]),
        75_000.0
    );
}

#[tokio::test]
async fn manual_and_imported_actuals_land_in_kpi_entries() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let entry = "select kpi_entry_create($1)";
    // An upload starts with its intent (V15); object_create consumes it.
    let mut tx = db.as_user(&o.alice).await;
    let intent: serde_json::Value = sqlx::query_scalar("select upload_begin('kpi-evidence')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let file = rpc(
        &db,
        &o.alice,
        "select object_create($1)",
        &[json!({
        "object_id": intent["object_id"], "bucket": "kpi-evidence", "file_name": "q1.pdf",
        "content_type": "application/pdf", "size_bytes": 1234, "sha256": "ab".repeat(32)})],
    )
    .await
    .unwrap();
    let e = rpc(
        &db,
        &o.alice,
        entry,
        &[json!({
        "metric_key": "quotations_sent", "value": 5, "evidence": [file["object_id"]]})],
    )
    .await
    .unwrap();
    assert_eq!(e["evidence_ids"].as_array().unwrap().len(), 1);
    rpc(&db, &o.manager, entry, &[json!({"metric_key": "quotations_sent", "value": 3, "assignee_user_id": o.alice.user_id})])
        .await
        .unwrap();
    let q = actual(&db, &o.manager, "quotations_sent", Some(o.alice.user_id)).await;
    assert_eq!((num(&q["value"]), q["status"].as_str()), (8.0, Some("ok")));

    // AUTO metrics take no entries; nobody enters for someone outside their team.
    let err = rpc(
        &db,
        &o.alice,
        entry,
        &[json!({"metric_key": "revenue", "value": 1})],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("metric_key"))
    );
    let err = rpc(
        &db,
        &o.alice,
        entry,
        &[json!({"metric_key": "quotations_sent", "value": 1, "assignee_user_id": o.bob.user_id})],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");

    // An import processed twice never duplicates.
    let import = Uuid::new_v4();
    let row = |v: f64| {
        json!({"metric_key": "customer_satisfaction", "value": v, "source": "IMPORTED",
                              "import_id": import, "import_row": 1})
    };
    let first = rpc(&db, &o.ops, entry, &[row(4.5)]).await.unwrap();
    let again = rpc(&db, &o.ops, entry, &[row(4.7)]).await.unwrap();
    assert_eq!(
        (first["entry_id"].clone(), again["replayed"].clone()),
        (again["entry_id"].clone(), json!(true))
    );
    let n: i64 = sqlx::query_scalar("select count(*) from kpi_entries where import_id = $1")
        .bind(import)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        num(&actual(&db, &o.director, "customer_satisfaction", None).await["value"]),
        4.7
    );

    // Others do not see the entries or their evidence.
    let mut tx = db.as_user(&o.bob).await;
    let seen: i64 = sqlx::query_scalar(
        "select (select count(*) from kpi_entries) + (select count(*) from kpi_evidence)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(seen, 0);
}

#[tokio::test]
async fn na_metrics_are_marked_na_not_invented() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    for metric in ["win_rate", "cycle_days"] {
        let r = actual(&db, &o.director, metric, Some(o.alice.user_id)).await;
        assert_eq!(
            (r["status"].as_str(), r["value"].clone()),
            (Some("na"), Value::Null),
            "{r}"
        );
        assert!(r["reason"].as_str().unwrap().contains("deal"), "{r}");
    }
    // Undefined ratios and missing data are NA, not 0.
    for metric in [
        "cpl",
        "dso_rolling_30",
        "first_response_median_minutes",
        "mql_count",
        "collection_rate",
    ] {
        let r = actual(&db, &o.director, metric, None).await;
        assert_eq!(
            (r["status"].as_str(), r["value"].clone()),
            (Some("na"), Value::Null),
            "{metric}: {r}"
        );
        assert!(r["reason"].is_string(), "{r}");
    }
    // Counts of nothing are a real 0.
    let r = actual(&db, &o.director, "leads_by_channel", None).await;
    assert_eq!((r["status"].as_str(), num(&r["value"])), (Some("ok"), 0.0));
    // NA metrics cannot get targets.
    let err = rpc(
        &db,
        &o.manager,
        "select kpi_target_create($1)",
        &[target("win_rate", &o.alice, "2031-01", 50)],
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("metric_key"))
    );
}

#[tokio::test]
async fn target_and_entry_changes_are_audited() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let t = rpc(
        &db,
        &o.manager,
        "select kpi_target_create($1)",
        &[target("revenue", &o.alice, "2031-01", 10)],
    )
    .await
    .unwrap();
    let target_id: Uuid = t["target_id"].as_str().unwrap().parse().unwrap();
    let mut tx = db.as_user(&o.manager).await;
    sqlx::query("update kpi_targets set target_value = 20 where target_id = $1")
        .bind(target_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rpc(
        &db,
        &o.alice,
        "select kpi_entry_create($1)",
        &[json!({"metric_key": "quotations_sent", "value": 2})],
    )
    .await
    .unwrap();

    let rows: Vec<(String, String, Option<Uuid>)> = sqlx::query_as(
        "select table_name, action, actor from bizos.audit_log
          where tenant_id = $1 and table_name in ('public.kpi_targets', 'public.kpi_entries')
          order by at, seq",
    )
    .bind(o.tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "public.kpi_targets".into(),
                "INSERT".into(),
                Some(o.manager.user_id)
            ),
            (
                "public.kpi_targets".into(),
                "UPDATE".into(),
                Some(o.manager.user_id)
            ),
            (
                "public.kpi_entries".into(),
                "INSERT".into(),
                Some(o.alice.user_id)
            ),
        ]
    );
}
