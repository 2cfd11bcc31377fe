//! RFM segments (RFM-1) and segment content (RFM-2): the weekly
//! snapshot against a hand-computed case (quintile scores with ties, the
//! one-purchase rule, the window's edges, unpaid and void invoices, another
//! tenant), movement between two snapshots, reads under the customers'
//! RLS, the rfm.compute job run by a worker, and content through the LLM
//! gateway (cache hit on re-request, a template edit generates again, the
//! 11th generation of the day is 429).

mod before_first_run;

use std::collections::BTreeMap;

use bizos_bff::auth::Caller;
use bizos_tests::llm_standin::{StandIn, Wire};
use bizos_tests::{code, spawn_app, spawn_app_with, TestDb};
use chrono::NaiveDate;
use serde_json::{json, Value};
use uuid::Uuid;

async fn today(db: &TestDb, tenant: Uuid) -> NaiveDate {
    sqlx::query_scalar("select tenant_today($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn customer(db: &TestDb, tenant: Uuid, name: &str, created_by: Option<Uuid>) -> Uuid {
    sqlx::query_scalar(
        "insert into customers (tenant_id, company_name, created_by) values ($1, $2, $3) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .bind(created_by)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// An ISSUED invoice of `amount` dated `on` (as finance writes them).
async fn invoice(db: &TestDb, tenant: Uuid, customer: Uuid, amount: i64, on: NaiveDate) -> Uuid {
    sqlx::query_scalar(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax, status)
         values ($1, $2, $3, $3, $4, 0, 'ISSUED') returning invoice_id",
    )
    .bind(tenant)
    .bind(customer)
    .bind(on)
    .bind(amount)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn pay(db: &TestDb, tenant: Uuid, invoice: Uuid, amount: i64, on: NaiveDate) {
    sqlx::query(
        "insert into payments (tenant_id, invoice_id, paid_on, amount) values ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(invoice)
    .bind(on)
    .bind(amount)
    .execute(&db.owner)
    .await
    .unwrap();
}

/// A purchase: an invoice paid in full `days_ago` days before `today`.
async fn buy(
    db: &TestDb,
    tenant: Uuid,
    customer: Uuid,
    amount: i64,
    today: NaiveDate,
    days_ago: i64,
) {
    let on = today - chrono::Duration::days(days_ago);
    let inv = invoice(db, tenant, customer, amount, on).await;
    pay(db, tenant, inv, amount, on).await;
}

/// rfm_compute as the worker's login (what the rfm.compute handler calls).
async fn compute(db: &TestDb, tenant: Uuid, as_of: NaiveDate) -> Value {
    sqlx::query_scalar("select rfm_compute($1, $2)")
        .bind(tenant)
        .bind(as_of)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap()
}

/// (recency_days, frequency, monetary, r, f, m, fm, segment) per customer
/// name of a snapshot, as stored (read as the owner).
type Score = (i32, i32, f64, i16, i16, i16, i16, String);
/// A customer's name with its [`Score`].
type ScoreRow = (String, i32, i32, f64, i16, i16, i16, i16, String);
/// (name, the salesperson's?, [(days ago, amount)]) of the case's customers.
type Plan<'a> = (&'a str, bool, &'a [(i64, i64)]);

async fn scores(db: &TestDb, tenant: Uuid, week: NaiveDate) -> BTreeMap<String, Score> {
    let rows: Vec<ScoreRow> = sqlx::query_as(
        "select c.company_name, s.recency_days, s.frequency, s.monetary::float8, s.r, s.f, s.m, s.fm, s.segment
           from rfm_scores s join customers c using (tenant_id, customer_id)
          where s.tenant_id = $1 and s.week = $2",
    )
    .bind(tenant)
    .bind(week)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(n, a, b, c, d, e, f, g, h)| (n, (a, b, c, d, e, f, g, h)))
        .collect()
}

fn monday(d: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    d - chrono::Duration::days(d.weekday().num_days_from_monday() as i64)
}

/// The hand-computed case: ten customers A..J scored, K just outside the
/// window, L only unpaid and partly paid invoices, M a void one; another
/// tenant's customer. Customers A..E are the salesperson's (created by
/// them), F..M nobody's in particular.
struct Case {
    db: TestDb,
    tenant: Uuid,
    other: Uuid,
    today: NaiveDate,
    sales: Caller,
    marketing: Caller,
    ids: BTreeMap<&'static str, Uuid>,
}

async fn hand_computed_case() -> Case {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("rfm-a").await;
    let other = db.create_tenant("rfm-b").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let t = today(&db, tenant).await;
    let mut ids = BTreeMap::new();
    let plan: [Plan; 10] = [
        (
            "A",
            true,
            &[
                (1, 1_000_000),
                (10, 1_000_000),
                (20, 1_000_000),
                (40, 1_000_000),
                (80, 1_000_000),
            ],
        ),
        (
            "B",
            true,
            &[(3, 1_000_000), (30, 1_000_000), (60, 1_000_000)],
        ),
        ("C", true, &[(5, 9_000_000)]),
        ("D", true, &[(20, 500_000), (50, 500_000)]),
        ("E", true, &[(20, 200_000)]),
        (
            "F",
            false,
            &[
                (90, 2_000_000),
                (100, 2_000_000),
                (110, 2_000_000),
                (120, 2_000_000),
            ],
        ),
        ("G", false, &[(150, 1_000_000), (200, 1_000_000)]),
        ("H", false, &[(200, 500_000)]),
        (
            "I",
            false,
            &[
                (300, 1_000_000),
                (310, 1_000_000),
                (320, 1_000_000),
                (330, 1_000_000),
                (340, 1_000_000),
                (350, 1_000_000),
            ],
        ),
        // 364 days ago: the first day of the 365-day window.
        ("J", false, &[(364, 1_000_000)]),
    ];
    for (name, mine, purchases) in plan {
        let id = customer(&db, tenant, name, mine.then_some(sales.user_id)).await;
        for (days, amount) in purchases {
            buy(&db, tenant, id, *amount, t, *days).await;
        }
        ids.insert(name, id);
    }
    // A's open invoice does not count.
    invoice(&db, tenant, ids["A"], 7_000_000, t).await;
    // K: 365 days ago, the day before the window.
    let k = customer(&db, tenant, "K", None).await;
    buy(&db, tenant, k, 50_000_000, t, 365).await;
    ids.insert("K", k);
    // L: an unpaid and a partly paid invoice.
    let l = customer(&db, tenant, "L", None).await;
    invoice(&db, tenant, l, 3_000_000, t).await;
    let part = invoice(&db, tenant, l, 4_000_000, t).await;
    pay(&db, tenant, part, 1_000_000, t).await;
    ids.insert("L", l);
    // M: a void invoice.
    let m = customer(&db, tenant, "M", None).await;
    let void = invoice(&db, tenant, m, 5_000_000, t).await;
    sqlx::query("update invoices set status = 'VOID' where tenant_id = $1 and invoice_id = $2")
        .bind(tenant)
        .bind(void)
        .execute(&db.owner)
        .await
        .unwrap();
    ids.insert("M", m);
    // Another tenant's big spender.
    let x = customer(&db, other, "X", None).await;
    buy(&db, other, x, 99_000_000, t, 1).await;
    Case {
        db,
        tenant,
        other,
        today: t,
        sales,
        marketing,
        ids,
    }
}

/// The hand computation (n = 10; score = ceil(5 c / n), c = customers whose
/// value is at most this one's, recency reversed; F = 1 for one purchase;
/// FM = (F + M + 1) / 2; the segment from the grid of V30).
fn expected() -> BTreeMap<String, Score> {
    let rows: [(&str, Score); 10] = [
        ("A", (1, 5, 5_000_000.0, 5, 5, 4, 5, "champions".into())),
        ("B", (3, 3, 3_000_000.0, 5, 4, 3, 4, "champions".into())),
        ("C", (5, 1, 9_000_000.0, 4, 1, 5, 3, "loyal".into())),
        // D and E tie on recency (20 days): both 4.
        ("D", (20, 2, 1_000_000.0, 4, 3, 2, 3, "loyal".into())),
        ("E", (20, 1, 200_000.0, 4, 1, 1, 1, "promising".into())),
        ("F", (90, 4, 8_000_000.0, 3, 4, 5, 5, "loyal".into())),
        ("G", (150, 2, 2_000_000.0, 2, 3, 3, 3, "at_risk".into())),
        ("H", (200, 1, 500_000.0, 2, 1, 1, 1, "hibernating".into())),
        (
            "I",
            (300, 6, 6_000_000.0, 1, 5, 4, 5, "cannot_lose_them".into()),
        ),
        // J ties with D on monetary (1,000,000): both 2.
        ("J", (364, 1, 1_000_000.0, 1, 1, 2, 2, "lost".into())),
    ];
    rows.into_iter().map(|(n, s)| (n.to_owned(), s)).collect()
}

#[tokio::test]
async fn the_snapshot_equals_the_hand_computed_case() {
    let c = hand_computed_case().await;
    let week = monday(c.today);
    let done = compute(&c.db, c.tenant, c.today).await;
    assert_eq!(
        done,
        json!({"week": week, "as_of": c.today, "window_days": 365,
               "window_start": c.today - chrono::Duration::days(364), "customers": 10})
    );
    let got = scores(&c.db, c.tenant, week).await;
    assert_eq!(got, expected());
    // K (one day outside the window), L (unpaid, partly paid) and M (void)
    // are not scored; the other tenant's customer neither.
    for name in ["K", "L", "M", "X"] {
        assert!(!got.contains_key(name), "{name}");
    }

    // The report, as the marketing manager (who reads every customer).
    let mut tx = c.db.as_user(&c.marketing).await;
    let report: Value = sqlx::query_scalar("select rfm_segments_report(null)")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(report["customers"], 10);
    assert_eq!(report["previous_week"], Value::Null);
    assert_eq!(report["movements"], json!([]));
    let segs: BTreeMap<String, (i64, f64, f64)> = report["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["segment"].as_str().unwrap().to_owned(),
                (
                    s["customers"].as_i64().unwrap(),
                    s["revenue"].as_f64().unwrap(),
                    s["revenue_share"].as_f64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(segs.len(), 11, "every segment is listed");
    // Revenue 35,700,000: champions 8,000,000 (0.2241), loyal 18,000,000 (0.5042).
    assert_eq!(segs["champions"], (2, 8_000_000.0, 0.2241));
    assert_eq!(segs["loyal"], (3, 18_000_000.0, 0.5042));
    assert_eq!(segs["need_attention"], (0, 0.0, 0.0));
    assert_eq!(report["revenue"].as_f64(), Some(35_700_000.0));

    // The other tenant's snapshot holds only its own customer.
    let other = compute(&c.db, c.other, c.today).await;
    assert_eq!(other["customers"], 1);
    assert_eq!(scores(&c.db, c.tenant, week).await, expected());
}

#[tokio::test]
async fn the_segment_table_covers_every_score_pair_once() {
    let db = TestDb::new().await;
    let grid: Vec<(i16, i16, Option<String>)> =
        sqlx::query_as("select r, fm, segment from rfm_segment_grid order by r desc, fm")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    let rows: Vec<String> = (0..5)
        .map(|i| {
            grid[i * 5..i * 5 + 5]
                .iter()
                .map(|(_, _, s)| s.clone().unwrap_or_else(|| "NONE".into()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(
        rows,
        [
            "new_customers potential_loyalist loyal champions champions",
            "promising potential_loyalist loyal champions champions",
            "about_to_sleep need_attention need_attention loyal loyal",
            "hibernating hibernating at_risk at_risk at_risk",
            "lost lost at_risk cannot_lose_them cannot_lose_them",
        ]
    );
    // Every segment is reachable.
    let unused: Vec<String> = sqlx::query_scalar(
        "select code from rfm_segments where code not in (select segment from rfm_segment_grid)",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(unused.is_empty(), "{unused:?}");
}

#[tokio::test]
async fn a_rerun_replaces_the_week_and_the_window_is_a_setting() {
    let c = hand_computed_case().await;
    let week = monday(c.today);
    compute(&c.db, c.tenant, c.today).await;
    compute(&c.db, c.tenant, c.today).await;
    let (runs, rows): (i64, i64) = sqlx::query_as(
        "select (select count(*) from rfm_runs where tenant_id = $1),
                (select count(*) from rfm_scores where tenant_id = $1 and week = $2)",
    )
    .bind(c.tenant)
    .bind(week)
    .fetch_one(&c.db.owner)
    .await
    .unwrap();
    assert_eq!((runs, rows), (1, 10));
    assert_eq!(scores(&c.db, c.tenant, week).await, expected());

    // A 60-day window (set by the marketing manager; not by sales): A, B,
    // C, D, E count, with the purchases of those 60 days (59 days ago is
    // the first day), and the week's snapshot is replaced.
    let mut tx = c.db.as_user(&c.sales).await;
    let err = sqlx::query_scalar::<_, Value>("select rfm_settings_set('{\"window_days\": 60}')")
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
    drop(tx);
    let mut tx = c.db.as_user(&c.marketing).await;
    sqlx::query_scalar::<_, Value>("select rfm_settings_set('{\"window_days\": 60}')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let done = compute(&c.db, c.tenant, c.today).await;
    assert_eq!(done["customers"], 5);
    let got = scores(&c.db, c.tenant, week).await;
    let freq: BTreeMap<&str, i32> = got.iter().map(|(n, s)| (n.as_str(), s.1)).collect();
    // B's purchase 60 days ago and A's 80 days ago are outside now.
    assert_eq!(
        freq,
        BTreeMap::from([("A", 4), ("B", 2), ("C", 1), ("D", 2), ("E", 1)])
    );

    // A date after the tenant's today is refused, naming the field.
    let err = sqlx::query_scalar::<_, Value>("select rfm_compute($1, $2)")
        .bind(c.tenant)
        .bind(c.today + chrono::Duration::days(1))
        .fetch_one(&c.db.pool_as("bizos_worker"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0001", "{err}");
    // Users cannot run it directly (only the worker).
    for login in ["bizos_app", "bizos_analyst"] {
        let err = sqlx::query_scalar::<_, Value>("select rfm_compute($1, null)")
            .bind(c.tenant)
            .fetch_one(&c.db.pool_as(login))
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{login}: {err}");
    }
}

#[tokio::test]
async fn movement_between_two_snapshots() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("rfm-move").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let t = today(&db, tenant).await;
    let before = t - chrono::Duration::days(7);
    let x = customer(&db, tenant, "X", None).await;
    let y = customer(&db, tenant, "Y", None).await;
    let z = customer(&db, tenant, "Z", None).await;
    // As of a week ago: X bought the day before (100), Y 100 days before (300).
    buy(&db, tenant, x, 100, before, 1).await;
    buy(&db, tenant, y, 300, before, 100).await;
    // Since then (not in the first snapshot): X again, Z for the first time.
    buy(&db, tenant, x, 100, t, 2).await;
    buy(&db, tenant, z, 50, t, 1).await;

    compute(&db, tenant, before).await;
    let first = scores(&db, tenant, monday(before)).await;
    // n = 2: X R5 F1 M3 FM2, Y R3 F1 M5 FM3.
    assert_eq!(
        first["X"],
        (1, 1, 100.0, 5, 1, 3, 2, "potential_loyalist".into())
    );
    assert_eq!(
        first["Y"],
        (100, 1, 300.0, 3, 1, 5, 3, "need_attention".into())
    );
    assert!(!first.contains_key("Z"));

    compute(&db, tenant, t).await;
    let second = scores(&db, tenant, monday(t)).await;
    // n = 3: X R4 F5 M4 FM5, Y R2 F1 M5 FM3, Z R5 F1 M2 FM2.
    assert_eq!(second["X"], (2, 2, 200.0, 4, 5, 4, 5, "champions".into()));
    assert_eq!(second["Y"], (107, 1, 300.0, 2, 1, 5, 3, "at_risk".into()));
    assert_eq!(
        second["Z"],
        (1, 1, 50.0, 5, 1, 2, 2, "potential_loyalist".into())
    );

    let app = spawn_app(&db).await;
    let (status, report) = app.get_json(&marketing, "/api/rfm/segments").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["week"], json!(monday(t)));
    assert_eq!(report["previous_week"], json!(monday(before)));
    assert_eq!(
        report["movements"],
        json!([
            {"from": null, "to": "potential_loyalist", "customers": 1},
            {"from": "potential_loyalist", "to": "champions", "customers": 1},
            {"from": "need_attention", "to": "at_risk", "customers": 1},
        ])
    );
    let seg = |code: &str| {
        report["segments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["segment"] == code)
            .cloned()
            .unwrap()
    };
    let moves = |code: &str| {
        let s = seg(code);
        (
            s["customers"].as_i64().unwrap(),
            s["previous_customers"].as_i64().unwrap(),
            s["stayed"].as_i64().unwrap(),
            s["moved_in"].as_i64().unwrap(),
            s["moved_out"].as_i64().unwrap(),
        )
    };
    assert_eq!(moves("potential_loyalist"), (1, 1, 0, 1, 1));
    assert_eq!(moves("champions"), (1, 0, 0, 1, 0));
    assert_eq!(moves("need_attention"), (0, 1, 0, 0, 1));
    assert_eq!(moves("at_risk"), (1, 0, 0, 1, 0));
    assert_eq!(moves("lost"), (0, 0, 0, 0, 0));
    // The earlier week is still there, by any date of it.
    let (status, old) = app
        .get_json(&marketing, &format!("/api/rfm/segments?week={}", before))
        .await;
    assert_eq!(
        (status, old["week"].clone()),
        (200, json!(monday(before))),
        "{old}"
    );
    // A customer's previous segment shows in the segment's list.
    let (status, page) = app
        .get_json(&marketing, "/api/rfm/segments/champions/customers")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"][0]["customer_id"], json!(x));
    assert_eq!(page["items"][0]["previous_segment"], "potential_loyalist");
    // A week without a snapshot is 404.
    let (status, _) = app
        .get_json(
            &marketing,
            &format!("/api/rfm/segments?week={}", t - chrono::Duration::days(70)),
        )
        .await;
    assert_eq!(status, 404);
    let _ = y;
}

#[tokio::test]
async fn segment_reads_show_only_the_customers_the_caller_may_read() {
    let c = hand_computed_case().await;
    compute(&c.db, c.tenant, c.today).await;
    let app = spawn_app(&c.db).await;

    // The marketing manager reads every customer: loyal is C, F, D by spend.
    let (status, page) = app
        .get_json(&c.marketing, "/api/rfm/segments/loyal/customers?limit=2")
        .await;
    assert_eq!(status, 200, "{page}");
    let names = |p: &Value| -> Vec<Uuid> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["customer_id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(names(&page), [c.ids["C"], c.ids["F"]]);
    assert_eq!(page["next_cursor"], json!(c.ids["F"]));
    assert_eq!(page["items"][0]["company_name"], "C");
    assert_eq!(page["items"][0]["r"], 4);
    let (status, rest) = app
        .get_json(
            &c.marketing,
            &format!(
                "/api/rfm/segments/loyal/customers?limit=2&cursor={}",
                c.ids["F"]
            ),
        )
        .await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(names(&rest), [c.ids["D"]]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // The salesperson reads only A..E (theirs): F is not in their loyal
    // list, and the counts and revenue are of their customers.
    let (status, page) = app
        .get_json(&c.sales, "/api/rfm/segments/loyal/customers")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(names(&page), [c.ids["C"], c.ids["D"]]);
    let (status, report) = app.get_json(&c.sales, "/api/rfm/segments").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["customers"], 5);
    assert_eq!(report["revenue"].as_f64(), Some(18_200_000.0));
    let (status, page) = app
        .get_json(&c.sales, "/api/rfm/segments/cannot_lose_them/customers")
        .await;
    assert_eq!((status, page["items"].clone()), (200, json!([])));
    // Nor through the view or the table.
    let mut tx = c.db.as_user(&c.sales).await;
    let seen: Vec<Uuid> =
        sqlx::query_scalar("select customer_id from v_rfm_customers order by company_name")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(seen, ["A", "B", "C", "D", "E"].map(|n| c.ids[n]).to_vec());
    let n: i64 = sqlx::query_scalar("select count(*) from rfm_scores")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 5);
    drop(tx);

    // Bad input names the field.
    let (status, err) = app
        .get_json(&c.marketing, "/api/rfm/segments/vip/customers")
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("segment")),
        "{err}"
    );
    let (status, err) = app
        .get_json(
            &c.marketing,
            &format!(
                "/api/rfm/segments/champions/customers?cursor={}",
                c.ids["C"]
            ),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("cursor")),
        "{err}"
    );

    // Analysts see the report with names masked.
    let analytics: Vec<(String, String)> = sqlx::query_as(
        "select company_name, segment from analytics.v_rfm_customers where tenant_id = $1 order by customer_id",
    )
    .bind(c.tenant)
    .fetch_all(&c.db.pool_as("bizos_analyst"))
    .await
    .unwrap();
    assert_eq!(analytics.len(), 10);
    let masked: Vec<String> = sqlx::query_scalar(
        "select bizos.mask_name(c.company_name) from rfm_scores s join customers c using (tenant_id, customer_id)
          where s.tenant_id = $1 order by s.customer_id",
    )
    .bind(c.tenant)
    .fetch_all(&c.db.owner)
    .await
    .unwrap();
    assert_eq!(
        analytics.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        masked,
        "names as the maskers show them"
    );
    let summary: i64 = sqlx::query_scalar(
        "select sum(customers) from analytics.v_rfm_segment_summary where tenant_id = $1",
    )
    .bind(c.tenant)
    .fetch_one(&c.db.pool_as("bizos_analyst"))
    .await
    .unwrap();
    assert_eq!(summary, 10);
}

#[tokio::test]
async fn a_manager_runs_rfm_on_demand_through_the_worker() {
    let c = hand_computed_case().await;
    let app = spawn_app(&c.db).await;
    // Every tenant has its weekly schedule.
    let schedules: Vec<(String, String, String)> = sqlx::query_as(
        "select kind, to_char(at_time, 'HH24:MI'), days_of_week::text from schedules
          where tenant_id = $1 and name = 'rfm weekly'",
    )
    .bind(c.tenant)
    .fetch_all(&c.db.owner)
    .await
    .unwrap();
    assert_eq!(
        schedules,
        [("rfm.compute".into(), "06:00".into(), "{1}".into())]
    );

    let (status, err) = app
        .post_json(&c.sales, "/api/rfm/runs", &json!({}), None)
        .await;
    assert_eq!(status, 403, "{err}");
    let (status, job) = app
        .post_json(&c.marketing, "/api/rfm/runs", &json!({}), None)
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["week"], json!(monday(c.today)));
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    loop {
        let (status, state) = app
            .get_json(&c.marketing, &format!("/api/jobs/{job_id}"))
            .await;
        assert_eq!(status, 200, "{state}");
        if state["status"] == "succeeded" {
            assert_eq!(state["progress_done"], 10);
            break;
        }
        assert_ne!(state["status"], "dead", "{state}");
        assert!(start.elapsed().as_secs() < 60, "the job ran: {state}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(scores(&c.db, c.tenant, monday(c.today)).await, expected());
    let (status, report) = app.get_json(&c.marketing, "/api/rfm/segments").await;
    assert_eq!(
        (status, report["customers"].clone()),
        (200, json!(10)),
        "{report}"
    );
}

// ------------------------------------------------------------------ currencies

/// A purchase in `currency`: an invoice of `amount` paid in full `days_ago`
/// days before `today`.
async fn buy_in(
    db: &TestDb,
    tenant: Uuid,
    customer: Uuid,
    amount: i64,
    currency: &str,
    today: NaiveDate,
    days_ago: i64,
) {
    let on = today - chrono::Duration::days(days_ago);
    let inv: Uuid = sqlx::query_scalar(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax, status, currency)
         values ($1, $2, $3, $3 + 30, $4, 0, 'ISSUED', $5) returning invoice_id",
    )
    .bind(tenant)
    .bind(customer)
    .bind(on)
    .bind(amount)
    .bind(currency)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    pay(db, tenant, inv, amount, on).await;
}

/// Queues an RFM run as `who` and waits for its job to end: (status, job).
async fn run_rfm(app: &bizos_tests::TestApp, who: &Caller) -> (String, Value) {
    let (status, job) = app.post_json(who, "/api/rfm/runs", &json!({}), None).await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    let start = std::time::Instant::now();
    loop {
        let (status, state) = app.get_json(who, &format!("/api/jobs/{job_id}")).await;
        assert_eq!(status, 200, "{state}");
        let s = state["status"].as_str().unwrap().to_owned();
        if s == "succeeded" || s == "dead" {
            return (s, state);
        }
        assert!(start.elapsed().as_secs() < 60, "the job ran: {state}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Monetary value is what a customer paid in rupiah: a USD purchase is
/// converted at the fx_rates rate in force on its date, so a customer who
/// paid 1,000 USD (~16 million rupiah) ranks above one who paid 2,000,000
/// IDR. Without a rate the run stops, naming the currency and the date,
/// and the previous snapshot stays. The segment report and the analytics
/// reports give the same rupiah.
#[tokio::test]
async fn monetary_is_in_rupiah_at_the_rate_of_the_purchase_date() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("rfm-fx").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let t = today(&db, tenant).await;
    let app = spawn_app(&db).await;
    let mut ids = BTreeMap::new();
    for (name, amount) in [
        ("Kecil", 500_000),
        ("Rupiah", 2_000_000),
        ("Sedang", 5_000_000),
        ("Besar", 10_000_000),
    ] {
        let id = customer(&db, tenant, name, None).await;
        buy(&db, tenant, id, amount, t, 10).await;
        ids.insert(name, id);
    }
    let dollar = customer(&db, tenant, "Dollar", None).await;
    buy_in(&db, tenant, dollar, 1_000, "USD", t, 10).await;
    ids.insert("Dollar", dollar);

    // No USD rate: the job fails with the currency and the date; nothing
    // is scored.
    let (status, job) = run_rfm(&app, &marketing).await;
    assert_eq!(status, "dead", "{job}");
    let error = job["last_error"].as_str().unwrap_or_default();
    let paid_on = t - chrono::Duration::days(10);
    assert!(
        error.contains(&format!("no USD rate to IDR in force on {paid_on}")),
        "{job}"
    );
    let scored: i64 = sqlx::query_scalar("select count(*) from rfm_scores where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(scored, 0);

    // The rate in force on the purchase's date: 16,250 (from 20 days
    // before today), not the older one nor the one from after it.
    sqlx::query(
        "insert into fx_rates (currency, effective_from, idr_per_unit) values
           ('USD', $1 - 400, 15000), ('USD', $1 - 20, 16250), ('USD', $1 - 5, 99999)",
    )
    .bind(t)
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, job) = run_rfm(&app, &marketing).await;
    assert_eq!(status, "succeeded", "{job}");
    let got = scores(&db, tenant, monday(t)).await;
    let m: BTreeMap<&str, (f64, i16)> = ids.keys().map(|n| (*n, (got[*n].2, got[*n].5))).collect();
    assert_eq!(
        m,
        BTreeMap::from([
            ("Besar", (10_000_000.0, 4)),
            ("Dollar", (16_250_000.0, 5)),
            ("Kecil", (500_000.0, 1)),
            ("Rupiah", (2_000_000.0, 2)),
            ("Sedang", (5_000_000.0, 3)),
        ]),
        "(monetary in rupiah, M) per customer"
    );

    // The segment report and the analytics reports restate the rupiah.
    let total = 10_000_000.0 + 16_250_000.0 + 500_000.0 + 2_000_000.0 + 5_000_000.0;
    let (status, report) = app.get_json(&marketing, "/api/rfm/segments").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["revenue"].as_f64(), Some(total), "{report}");
    let (customers, summary): (f64, f64) = sqlx::query_as(
        "select (select sum(monetary)::float8 from analytics.v_rfm_customers where tenant_id = $1),
                (select sum(revenue)::float8 from analytics.v_rfm_segment_summary where tenant_id = $1)",
    )
    .bind(tenant)
    .fetch_one(&db.pool_as("bizos_analyst"))
    .await
    .unwrap();
    assert_eq!((customers, summary), (total, total));
    let dollar_segment = &got["Dollar"].7;
    let (status, page) = app
        .get_json(
            &marketing,
            &format!("/api/rfm/segments/{dollar_segment}/customers"),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let row = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customer_id"] == json!(dollar))
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(row["monetary"].as_f64(), Some(16_250_000.0), "{row}");

    // A purchase in a currency without a rate: the next run stops and the
    // week's snapshot stays as it was.
    let euro = customer(&db, tenant, "Euro", None).await;
    buy_in(&db, tenant, euro, 100, "EUR", t, 1).await;
    let (status, job) = run_rfm(&app, &marketing).await;
    assert_eq!(status, "dead", "{job}");
    assert!(
        job["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("no EUR rate"),
        "{job}"
    );
    assert_eq!(scores(&db, tenant, monday(t)).await, got);
}

// ------------------------------------------------------------------ content

async fn put(app: &bizos_tests::TestApp, who: &Caller, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .request_as(who, reqwest::Method::PUT, path, None)
        .json(&body)
        .send()
        .await
        .unwrap();
    bizos_tests::status_and_json(res).await
}

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn content(
    app: &bizos_tests::TestApp,
    who: &Caller,
    segment: &str,
    channel: &str,
) -> (u16, Value, Option<String>) {
    let res = app
        .http
        .post(app.url(&format!("/api/rfm/segments/{segment}/content")))
        .bearer_auth(app.token(who))
        .json(&json!({"channel": channel}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, res.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn content_is_cached_per_prompt_and_limited_to_ten_generations_a_day() {
    let c = hand_computed_case().await;
    compute(&c.db, c.tenant, c.today).await;
    let standin = StandIn::start().await;
    for (provider, url) in [
        ("gemini", standin.base_url_gemini.clone()),
        ("openai", standin.base_url_openai.clone()),
    ] {
        sqlx::query("select llm_provider_set($1, $1, $2, $1)")
            .bind(provider)
            .bind(url)
            .execute(&c.db.owner)
            .await
            .unwrap();
    }
    sqlx::query("select llm_route_set('segment_content', $1)")
        .bind(json!([{"provider": "gemini", "model": "g-1"}]))
        .execute(&c.db.owner)
        .await
        .unwrap();
    let app = spawn_app_with(
        &c.db,
        &[
            ("BIZOS_LLM_KEYS_GEMINI", "gk-1"),
            ("BIZOS_LLM_RETRIES", "0"),
            ("BIZOS_LLM_MASTER_KEY", MASTER_KEY),
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    let generated = || {
        standin
            .requests()
            .into_iter()
            .filter(|r| r.wire == Wire::Gemini)
            .count()
    };

    // Sales may not generate.
    let (status, _, _) = content(&app, &c.sales, "champions", "email").await;
    assert_eq!(status, 403);

    let (status, first, _) = content(&app, &c.marketing, "champions", "email").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["source"], "model");
    assert_eq!(first["template_version"], 0);
    assert_eq!(first["customers"], 2);
    // The model got the rendered built-in template: the segment, its
    // figures (average spend of A and B: Rp 4.000.000) and the week.
    let text = first["text"].as_str().unwrap();
    assert!(text.contains("segmen pelanggan Champions"), "{text}");
    assert!(text.contains("Rp 4.000.000"), "{text}");
    assert!(text.contains(&monday(c.today).to_string()), "{text}");
    assert_eq!(generated(), 1);

    // The same request again: the cache, no model call, no generation used.
    let (status, again, _) = content(&app, &c.marketing, "champions", "email").await;
    assert_eq!(
        (status, again["source"].clone()),
        (200, json!("cache")),
        "{again}"
    );
    assert_eq!(again["text"], first["text"]);
    assert_eq!(generated(), 1);
    let outcomes: Vec<String> = sqlx::query_scalar(
        "select outcome from llm_calls where tenant_id = $1 and feature = 'segment_content' order by created_at",
    )
    .bind(c.tenant)
    .fetch_all(&c.db.owner)
    .await
    .unwrap();
    assert_eq!(outcomes, ["ok", "cache_hit"]);

    // A new template version generates again.
    let (status, saved) = put(
        &app,
        &c.marketing,
        "/api/rfm/templates/champions/email",
        json!({"body": "Tulis e-mail terima kasih untuk {{customers}} pelanggan {{segment}} ({{tenant}})."}),
    )
    .await;
    assert_eq!(
        (status, saved["version"].clone()),
        (200, json!(1)),
        "{saved}"
    );
    let (status, edited, _) = content(&app, &c.marketing, "champions", "email").await;
    assert_eq!(
        (status, edited["source"].clone()),
        (200, json!("model")),
        "{edited}"
    );
    assert_eq!(edited["template_version"], 1);
    assert!(
        edited["text"]
            .as_str()
            .unwrap()
            .contains("untuk 2 pelanggan Champions"),
        "{edited}"
    );
    assert_eq!(generated(), 2);

    // Eight more distinct prompts: generations 3 to 10 of the day.
    let mut n = 2;
    'outer: for segment in ["loyal", "promising", "at_risk", "lost"] {
        for channel in ["email", "whatsapp"] {
            let (status, got, _) = content(&app, &c.marketing, segment, channel).await;
            assert_eq!(
                (status, got["source"].clone()),
                (200, json!("model")),
                "{segment}/{channel}: {got}"
            );
            n += 1;
            if n == 10 {
                break 'outer;
            }
        }
    }
    assert_eq!(generated(), 10);
    // The 11th is refused with 429 and Retry-After; no model is called.
    let (status, err, retry) = content(&app, &c.marketing, "hibernating", "instagram").await;
    assert_eq!(status, 429, "{err}");
    assert!(
        retry
            .as_ref()
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)),
        "{retry:?}"
    );
    assert_eq!(generated(), 10);
    // A cached prompt is still served.
    let (status, cached, _) = content(&app, &c.marketing, "champions", "email").await;
    assert_eq!(
        (status, cached["source"].clone()),
        (200, json!("cache")),
        "{cached}"
    );
}

#[tokio::test]
async fn templates_are_edited_with_known_variables_and_without_a_model_the_template_answers() {
    let c = hand_computed_case().await;
    compute(&c.db, c.tenant, c.today).await;
    let app = spawn_app_with(&c.db, &[("TEST_WORKER", "off")]).await;
    let (status, list) = app.get_json(&c.sales, "/api/rfm/templates").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 33);
    assert_eq!(list["items"][0]["segment"], "champions");
    assert_eq!(list["items"][0]["version"], 0);
    assert!(list["items"][0]["body"]
        .as_str()
        .unwrap()
        .starts_with("Buatkan konten marketing e-mail"));

    let path = "/api/rfm/templates/lost/whatsapp";
    let (status, _) = put(&app, &c.sales, path, json!({"body": "Hai {{segment}}"})).await;
    assert_eq!(status, 403);
    let (status, err) = put(
        &app,
        &c.marketing,
        path,
        json!({"body": "Hai {{pelanggan}}"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("body")),
        "{err}"
    );
    for (body, version) in [
        ("Hai {{ segment }}", 1),
        ("Hai {{ segment }}", 1),
        ("Halo {{segment}}", 2),
    ] {
        let (status, saved) = put(&app, &c.marketing, path, json!({"body": body})).await;
        assert_eq!(
            (status, saved["version"].clone()),
            (200, json!(version)),
            "{saved}"
        );
    }

    // No provider key: no model answers, the rendered template does.
    let (status, got, _) = content(&app, &c.marketing, "lost", "whatsapp").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["source"], "template");
    assert_eq!(got["text"], "Halo Lost");
    assert_eq!(got["template_version"], 2);
}
