//! Over HTTP: KPI targets and target-vs-actual progress, the SLA
//! of tickets and the daily first-response median, and the files of a
//! bucket, each as the caller's row-level security allows.

use bizos_tests::{spawn_app, TestDb};
use chrono::{Datelike, Days};
use serde_json::{json, Value};
use uuid::Uuid;

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {body}"))
        .iter()
        .map(|i| i[key].as_str().unwrap().to_owned())
        .collect()
}

fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    bytes.extend((0..256).map(|i| (i % 199) as u8));
    bytes
}

#[tokio::test]
async fn kpi_targets_and_progress_follow_the_team() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let manager_a = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let manager_b = db.create_user(tenant, "sales_manager").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let director = db.create_user(tenant, "director").await;
    db.set_manager(&alice, &manager_a).await;
    db.set_manager(&bob, &manager_b).await;
    let today = bizos_tests::tenant_today();
    let month = today.format("%Y-%m").to_string();
    let first = today.with_day(1).unwrap();

    let mut targets = Vec::new();
    for (manager, user, value) in [(&manager_a, &alice, 20), (&manager_b, &bob, 10)] {
        let (status, t) = app
            .post_json(
                manager,
                "/api/kpi/targets",
                &json!({"metric_key": "quotations_sent", "assignee_user_id": user.user_id,
                        "period_month": month, "target_value": value}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{t}");
        targets.push(t["target_id"].as_str().unwrap().to_owned());
    }
    let (status, e) = app
        .post_json(
            &alice,
            "/api/kpi/entries",
            &json!({"metric_key": "quotations_sent", "value": 3, "entry_date": today.to_string()}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{e}");

    // Targets: one's own, the team's, everyone's for directors.
    for (who, want) in [
        (&alice, vec![&targets[0]]),
        (&manager_a, vec![&targets[0]]),
        (&bob, vec![&targets[1]]),
        (&director, vec![&targets[1], &targets[0]]),
    ] {
        let (status, page) = app.get_json(who, "/api/kpi/targets").await;
        assert_eq!(status, 200, "{page}");
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(ids(&page, "target_id"), want, "{page}");
    }
    let (_, page) = app
        .get_json(
            &director,
            &format!("/api/kpi/targets?assignee_user_id={}", alice.user_id),
        )
        .await;
    assert_eq!(ids(&page, "target_id"), std::slice::from_ref(&targets[0]));
    let (_, row) = app.get_json(&alice, "/api/kpi/targets").await;
    let row = &row["items"][0];
    assert_eq!(
        (
            row["period_start"].as_str(),
            row["metric_name"].is_string(),
            row["target_value"].as_f64()
        ),
        (Some(first.to_string().as_str()), true, Some(20.0)),
        "{row}"
    );
    let next_year = format!("{}-01-01", today.year() + 1);
    let (_, none) = app
        .get_json(&director, &format!("/api/kpi/targets?from={next_year}"))
        .await;
    assert_eq!(ids(&none, "target_id"), Vec::<String>::new());

    // Progress: the actual over the target's period, as a share of it;
    // the month runs on, so the target is neither achieved nor missed yet.
    let progress = format!(
        "/api/kpi/progress?assignee_user_id={}&from={first}&to={today}",
        alice.user_id
    );
    for who in [&alice, &manager_a, &director] {
        let (status, body) = app.get_json(who, &progress).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            ids(&body, "target_id"),
            std::slice::from_ref(&targets[0]),
            "{body}"
        );
        let p = &body["items"][0];
        assert_eq!(
            (
                p["status"].as_str(),
                p["actual_value"].as_f64(),
                p["progress_pct"].as_f64(),
                p["achieved"].as_bool(),
                p["target_status"].as_str()
            ),
            (Some("ok"), Some(3.0), Some(15.0), None, Some("in_progress")),
            "{p}"
        );
    }
    // Another team's person: nothing, not an error.
    let (status, body) = app.get_json(&bob, &progress).await;
    assert_eq!(
        (status, ids(&body, "target_id")),
        (200, Vec::<String>::new()),
        "{body}"
    );
    let (_, all) = app
        .get_json(
            &director,
            &format!("/api/kpi/progress?from={first}&to={today}"),
        )
        .await;
    assert_eq!(ids(&all, "target_id").len(), 2, "{all}");
    for (query, status_want, field_want) in [
        (format!("from={today}"), 400, Some("query")),
        (
            format!("from={today}&to={first}&assignee_user_id=me"),
            400,
            Some("query"),
        ),
        (
            format!("from={today}&to={}", today - Days::new(1)),
            422,
            Some("to"),
        ),
    ] {
        let (status, err) = app
            .get_json(&alice, &format!("/api/kpi/progress?{query}"))
            .await;
        assert_eq!(
            (status, field(&err)),
            (status_want, field_want),
            "{query}: {err}"
        );
    }
}

#[tokio::test]
async fn sla_per_ticket_and_the_daily_first_response_median() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    let finance = db.create_user(tenant, "finance").await;

    let (status, t) = app
        .post_json(
            &alice,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "Barang rusak", "dept_target": "OPS", "priority": "high"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let ticket = t["ticket_id"].as_str().unwrap().to_owned();
    let path = format!("/api/sla/tickets/{ticket}");

    let (status, sla) = app.get_json(&alice, &path).await;
    assert_eq!(status, 200, "{sla}");
    assert_eq!(
        (
            sla["ticket_id"].as_str(),
            sla["sla_status"].as_str(),
            sla["response_breached"].as_bool()
        ),
        (Some(ticket.as_str()), Some("due"), Some(false)),
        "{sla}"
    );
    assert!(
        sla["response_due_at"].is_string() && sla["resolution_due_at"].is_string(),
        "{sla}"
    );
    // Who does not read the ticket does not read its SLA.
    for who in [&bob, &finance] {
        let (status, body) = app.get_json(who, &path).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, _) = app
        .get_json(&alice, &format!("/api/sla/tickets/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);

    // Ops answers: the first response stops the response clock.
    let (status, m) = app
        .post_json(
            &ops,
            &format!("/api/tickets/{ticket}/messages"),
            &json!({"body": "Kami cek"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let (_, sla) = app.get_json(&ops, &path).await;
    assert!(sla["first_response_at"].is_string(), "{sla}");

    // Lists with filters.
    let (status, page) = app
        .get_json(&ops, "/api/sla/tickets?sla_status=due&priority=HIGH")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page, "ticket_id"), std::slice::from_ref(&ticket));
    let (_, page) = app
        .get_json(&ops, "/api/sla/tickets?sla_status=breached")
        .await;
    assert_eq!(ids(&page, "ticket_id"), Vec::<String>::new());
    let (_, page) = app.get_json(&bob, "/api/sla/tickets").await;
    assert_eq!(
        ids(&page, "ticket_id"),
        Vec::<String>::new(),
        "bob reads no ticket"
    );
    let (status, err) = app
        .get_json(&ops, "/api/sla/tickets?priority=whenever")
        .await;
    assert_eq!(status, 400, "{err}");

    // The median per day of creation, in the tenant's calendar.
    let today = bizos_tests::tenant_today();
    let range = format!("from={}&to={}", today - Days::new(1), today + Days::new(1));
    let (status, days) = app
        .get_json(&ops, &format!("/api/sla/first-response?{range}"))
        .await;
    assert_eq!(status, 200, "{days}");
    let items = days["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{days}");
    assert_eq!(
        (
            items[0]["day"].as_str(),
            items[0]["tickets"].as_i64(),
            items[0]["responded"].as_i64()
        ),
        (Some(today.to_string().as_str()), Some(1), Some(1)),
        "{days}"
    );
    assert!(
        items[0]["median_first_response_minutes"].as_f64().is_some(),
        "{days}"
    );
    let (_, none) = app
        .get_json(&bob, &format!("/api/sla/first-response?{range}"))
        .await;
    assert_eq!(none["items"], json!([]), "bob's tickets only: {none}");
    for (query, status_want, field_want) in [
        (format!("from={today}"), 400, Some("query")),
        (
            format!("from={today}&to={}", today - Days::new(1)),
            422,
            Some("to"),
        ),
        (
            format!("from={}&to={today}", today - Days::new(400)),
            422,
            Some("to"),
        ),
    ] {
        let (status, err) = app
            .get_json(&ops, &format!("/api/sla/first-response?{query}"))
            .await;
        assert_eq!(
            (status, field(&err)),
            (status_want, field_want),
            "{query}: {err}"
        );
    }
}

#[tokio::test]
async fn the_files_of_a_bucket_are_listed_as_the_caller_may_read_them() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;

    let mut media = Vec::new();
    for (who, name) in [(&alice, "banner.png"), (&bob, "logo.png")] {
        let (status, o) = app
            .upload(
                who,
                "/api/objects",
                &[("bucket", "media")],
                name,
                png(),
                None,
            )
            .await;
        assert_eq!(status, 201, "{o}");
        media.push(o["object_id"].as_str().unwrap().to_owned());
    }
    for (who, want) in [
        (&alice, vec![&media[0]]),
        (&bob, vec![&media[1]]),
        (&admin, vec![&media[1], &media[0]]),
    ] {
        let (status, page) = app.get_json(who, "/api/objects?bucket=media").await;
        assert_eq!(status, 200, "{page}");
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(ids(&page, "object_id"), want, "{page}");
    }
    let (_, page) = app
        .get_json(&admin, "/api/objects?bucket=media&q=LOGO&limit=5")
        .await;
    assert_eq!(ids(&page, "object_id"), std::slice::from_ref(&media[1]));

    // A knowledge-base document for the whole tenant: its file is listed
    // for every member.
    let (status, kb) = app
        .upload(
            &admin,
            "/api/kb/documents",
            &[("title", "Refund SOP")],
            "refund.md",
            b"# Refund\n\nFinance approves refunds.\n".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 202, "{kb}");
    let (status, page) = app.get_json(&alice, "/api/objects?bucket=knowledge").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page, "file_name"), ["refund.md"], "{page}");
    let (_, page) = app
        .get_json(&alice, "/api/objects?bucket=media&q=logo")
        .await;
    assert_eq!(
        ids(&page, "object_id"),
        Vec::<String>::new(),
        "bob's file stays bob's"
    );

    let (status, err) = app.get_json(&alice, "/api/objects?bucket=nope").await;
    assert_eq!((status, field(&err)), (422, Some("bucket")), "{err}");
    let (status, err) = app.get_json(&alice, "/api/objects").await;
    assert_eq!((status, field(&err)), (400, Some("query")), "{err}");
}
