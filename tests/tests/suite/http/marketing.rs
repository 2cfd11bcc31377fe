//! Marketing spend and events over HTTP and by import: the checks of each
//! field (amount > 0, a lead channel, a spend date up to the tenant's
//! today, a currency with an exchange rate, local times in the tenant's
//! time zone), who may write and read, and the spend and CPL KPIs showing
//! what an import brought, reconciled with a direct computation.

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

async fn tenant_today(db: &TestDb, tenant: uuid::Uuid) -> chrono::NaiveDate {
    sqlx::query_scalar("select tenant_today($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn wait_done(app: &TestApp, who: &Caller, import: &str) -> Value {
    for _ in 0..600 {
        let (status, body) = app
            .get_json(who, &format!("/api/imports/{import}?limit=100"))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["import"]["status"] == "done" {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("import {import} did not finish");
}

#[tokio::test]
async fn spend_and_events_are_entered_with_every_field_checked() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let seller = db.create_user(tenant, "salesperson").await;
    let finance = db.create_user(tenant, "finance").await;
    let ops = db.create_user(tenant, "ops").await;
    let today = tenant_today(&db, tenant).await;

    let (status, spend) = app
        .post_json(
            &marketing,
            "/api/marketing/spend",
            &json!({"channel": "Website", "spend_date": today.to_string(), "amount": "1500000.50",
                    "campaign": "Ramadan"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{spend}");
    assert_eq!(
        (
            &spend["channel"],
            &spend["currency"],
            spend["amount_idr"].to_string()
        ),
        (&json!("website"), &json!("IDR"), "1500000.50".to_owned()),
        "{spend}"
    );

    let tomorrow = (today + chrono::Days::new(1)).to_string();
    for (body, want) in [
        (
            json!({"channel": "website", "spend_date": today.to_string(), "amount": 0}),
            "amount",
        ),
        (
            json!({"channel": "website", "spend_date": today.to_string(), "amount": -5}),
            "amount",
        ),
        (
            json!({"channel": "television", "spend_date": today.to_string(), "amount": 5}),
            "channel",
        ),
        (
            json!({"channel": "website", "spend_date": tomorrow, "amount": 5}),
            "spend_date",
        ),
        (
            json!({"channel": "website", "spend_date": "2026-02-30", "amount": 5}),
            "spend_date",
        ),
        (
            json!({"channel": "website", "spend_date": today.to_string(), "amount": 5, "currency": "USD"}),
            "currency",
        ),
        (
            json!({"channel": "website", "spend_date": today.to_string(), "amount": 5, "currency": "dollars"}),
            "currency",
        ),
        (
            json!({"channel": "website", "spend_date": today.to_string(), "amount": 5, "colour": "red"}),
            "colour",
        ),
        (
            json!({"spend_date": today.to_string(), "amount": 5}),
            "channel",
        ),
    ] {
        let (status, res) = app
            .post_json(&marketing, "/api/marketing/spend", &body, None)
            .await;
        assert_eq!((status, field(&res)), (422, Some(want)), "{body}: {res}");
    }
    // With an exchange rate in force on the day, a foreign currency counts
    // in rupiah at that rate.
    sqlx::query(
        "insert into fx_rates (currency, effective_from, idr_per_unit) values ('USD', $1, 16000)",
    )
    .bind(today - chrono::Days::new(30))
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, usd) = app
        .post_json(
            &marketing,
            "/api/marketing/spend",
            &json!({"channel": "social_media", "spend_date": today.to_string(), "amount": 12.5, "currency": "usd"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{usd}");
    assert_eq!(
        (&usd["currency"], usd["amount_idr"].to_string()),
        (&json!("USD"), "200000.00".to_owned()),
        "{usd}"
    );
    let (status, _) = app
        .post_json(
            &seller,
            "/api/marketing/spend",
            &json!({"channel": "website", "spend_date": today.to_string(), "amount": 5}),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("select count(*) from marketing_spend")
            .fetch_one(&db.owner)
            .await
            .unwrap(),
        2,
        "refused entries write nothing"
    );
    let (status, page) = app
        .get_json(&finance, "/api/marketing/spend?channel=website")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    let (_, page) = app.get_json(&ops, "/api/marketing/spend").await;
    assert_eq!(page["items"], json!([]), "ops read no spend: {page}");

    // Events: a local time is the tenant's.
    let tz: String = sqlx::query_scalar("select time_zone from tenants where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let (status, event) = app
        .post_json(
            &marketing,
            "/api/marketing/events",
            &json!({"channel": "event", "event_type": "campaign_launch", "occurred_at": "2026-03-05 10:00",
                    "campaign": "Ramadan", "reach": 1200, "clicks": 80}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{event}");
    let want: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select '2026-03-05 10:00'::timestamp at time zone $1")
            .bind(&tz)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let got: chrono::DateTime<chrono::Utc> =
        event["occurred_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(got, want, "{event} in {tz}");
    for (body, want) in [
        (
            json!({"channel": "event", "event_type": "party", "occurred_at": "2026-03-05"}),
            "event_type",
        ),
        (
            json!({"channel": "event", "event_type": "post", "occurred_at": "5 March"}),
            "occurred_at",
        ),
        (
            json!({"channel": "event", "event_type": "post", "occurred_at": "2026-03-05", "reach": -1}),
            "reach",
        ),
        (
            json!({"channel": "radio", "event_type": "post", "occurred_at": "2026-03-05"}),
            "channel",
        ),
    ] {
        let (status, res) = app
            .post_json(&marketing, "/api/marketing/events", &body, None)
            .await;
        assert_eq!((status, field(&res)), (422, Some(want)), "{body}: {res}");
    }
    let (status, page) = app
        .get_json(
            &marketing,
            "/api/marketing/events?event_type=campaign_launch",
        )
        .await;
    assert_eq!(
        (status, page["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{page}"
    );
    let (_, page) = app.get_json(&finance, "/api/marketing/events").await;
    assert_eq!(page["items"], json!([]), "finance reads no events: {page}");
}

#[tokio::test]
async fn imported_spend_shows_in_the_spend_and_cpl_kpis() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let today = tenant_today(&db, tenant).await;
    let day = |n: u64| (today - chrono::Days::new(n)).to_string();

    // Leads of the period: 3 from the website, 1 by referral.
    for (i, channel) in ["website", "website", "website", "referral"]
        .iter()
        .enumerate()
    {
        let (status, lead) = app
            .post_json(
                &marketing,
                "/api/leads",
                &json!({"channel": channel, "company_name": format!("PT Iklan {i}")}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{lead}");
    }

    // A spend export: good rows, a row twice (the last wins), bad rows.
    let csv = format!(
        "spend_date,channel,amount,currency,campaign,notes\n\
         {d1},website,1000000,,Ramadan,\n\
         {d1},referral,250000,IDR,,\n\
         {d2},website,400000,,Ramadan,first export\n\
         {d2},website,500000,,Ramadan,corrected\n\
         {d1},website,0,,Ramadan,\n\
         {d1},billboard,100,,,\n\
         {tomorrow},website,100,,,\n\
         {d1},website,100,EUR,,\n",
        d1 = day(1),
        d2 = day(2),
        tomorrow = (today + chrono::Days::new(1)),
    );
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "marketing_spend")],
            "spend.csv",
            csv.clone().into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, res) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert!(status == 200 || status == 202, "{res}");
    let done = wait_done(&app, &marketing, &import).await;
    assert_eq!(
        (&done["import"]["ok_rows"], &done["import"]["error_rows"]),
        (&json!(4), &json!(4)),
        "{done}"
    );
    let mut fields: Vec<String> = done["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors in {done}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["amount", "channel", "currency", "spend_date"],
        "{done}"
    );

    // The same file again changes nothing: the rows set their keys again.
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "marketing_spend")],
            "spend-again.csv",
            csv.into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let again = staged["import_id"].as_str().unwrap().to_owned();
    app.post_json(
        &marketing,
        &format!("/api/imports/{again}/process"),
        &json!(null),
        None,
    )
    .await;
    wait_done(&app, &marketing, &again).await;
    let rows: i64 = sqlx::query_scalar("select count(*) from marketing_spend where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(rows, 3, "one row per channel, campaign, day and currency");

    // The KPIs of the period show the imported spend: reconciled with a
    // direct computation over the tables.
    let from = day(7);
    let to = today.to_string();
    let (direct_spend, direct_leads): (String, i64) = sqlx::query_as(
        "select (select sum(amount_idr)::text from marketing_spend where tenant_id = $1 and spend_date between $2 and $3),
                (select count(*) from leads l join tenants t on t.tenant_id = l.tenant_id
                  where l.tenant_id = $1 and (l.created_at at time zone t.time_zone)::date between $2 and $3)",
    )
    .bind(tenant)
    .bind(today - chrono::Days::new(7))
    .bind(today)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(direct_spend, "1750000.00");
    assert_eq!(direct_leads, 4);
    let (status, spend) = app
        .get_json(
            &marketing,
            &format!("/api/kpi/actuals?metric_key=marketing_spend&from={from}&to={to}"),
        )
        .await;
    assert_eq!(status, 200, "{spend}");
    let value = |v: &Value| -> f64 {
        v["items"][0]["value"]
            .as_f64()
            .or_else(|| v["items"][0]["value"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("a value in {v}"))
    };
    assert_eq!(value(&spend), 1_750_000.0, "{spend}");
    let (status, cpl) = app
        .get_json(
            &marketing,
            &format!("/api/kpi/actuals?metric_key=cpl&from={from}&to={to}"),
        )
        .await;
    assert_eq!(status, 200, "{cpl}");
    assert_eq!(value(&cpl), 1_750_000.0 / 4.0, "{cpl}");
}
