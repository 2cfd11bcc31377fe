//! Trusted numbers outside the KPI module: one definition of "AR
//! as of a date" that every receivables report derives from, and the
//! tenant's today (tenants.time_zone) instead of the reader's session time
//! zone.
//!
//! Tenants in Asia/Jakarta, UTC+14 and UTC-12 get random receivables
//! through the RPCs (partial payments, payments on the due date, invoices
//! due exactly 30/60/90 days ago, voided, draft and future-dated invoices,
//! a tenant whose DSO window is empty). Every report is then recomputed
//! here from the raw rows, with the tenant's today computed from its fixed
//! UTC offset, and read with the session time zone at UTC+14 and UTC-12.

use std::collections::BTreeMap;

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, TestDb};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

/// Session time zones of the readers: UTC+14 and UTC-12 (POSIX sign).
const SESSION_ZONES: [&str; 2] = ["Etc/GMT-14", "Etc/GMT+12"];

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
    fn chance(&mut self, percent: i64) -> bool {
        self.below(100) < percent
    }
}

/// The tenant's today from its fixed UTC offset (no DST in these zones).
fn today_at(offset_hours: i64) -> NaiveDate {
    (Utc::now() + Duration::hours(offset_hours)).date_naive()
}

struct Tenant {
    id: Uuid,
    offset: i64,
    finance: Caller,
    /// Reads everything of the tenant (tickets of every department too).
    director: Caller,
}

async fn tenant(db: &TestDb, slug: &str, zone: &str, offset: i64) -> Tenant {
    let id = db.create_tenant(slug).await;
    sqlx::query("update tenants set time_zone = $2 where tenant_id = $1")
        .bind(id)
        .bind(zone)
        .execute(&db.owner)
        .await
        .unwrap();
    let finance = db.create_user(id, "finance").await;
    let director = db.create_user(id, "director").await;
    Tenant {
        id,
        offset,
        finance,
        director,
    }
}

async fn customer(db: &TestDb, tenant: Uuid, name: &str) -> Uuid {
    sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) values ($1, $2) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn call(tx: &mut Transaction<'static, Postgres>, sql: &str, arg: Value) -> Value {
    sqlx::query_scalar::<_, Value>(sql)
        .bind(arg.clone())
        .fetch_one(&mut **tx)
        .await
        .unwrap_or_else(|e| panic!("{sql} {arg}: {e}"))
}

/// Random receivables for `t` through the RPCs, dated relative to the
/// tenant's today. `old_only`: every invoice issued 40+ days ago (an empty
/// DSO window today).
async fn populate(db: &TestDb, t: &Tenant, rng: &mut Rng, n: usize, old_only: bool) {
    let customers = [
        customer(db, t.id, "PT Satu").await,
        customer(db, t.id, "CV Dua").await,
        customer(db, t.id, "PT Tiga").await,
    ];
    let mut tx = db.as_user(&t.finance).await;
    let today: NaiveDate = sqlx::query_scalar("select tenant_today()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        today,
        today_at(t.offset),
        "tenant_today() is the tenant's date"
    );
    for k in 0..n {
        // Issue and due dates: exact bucket edges first, then random ones
        // (some in the future). The due date is after the issue date (the
        // default SOP rule of invoice_create).
        let edges = [0, 1, 30, 31, 60, 61, 90, 91];
        let (issue, due) = if k < edges.len() {
            let due = today - Duration::days(edges[k]);
            (due - Duration::days(1 + rng.below(19)), due)
        } else {
            let back = if old_only {
                40 + rng.below(120)
            } else {
                rng.below(160) - 6
            };
            let issue = today - Duration::days(back);
            (issue, issue + Duration::days(1 + rng.below(60)))
        };
        let draft = rng.chance(8);
        let currency = if rng.chance(20) { "USD" } else { "IDR" };
        let subtotal = 1_000 + rng.below(5_000_000);
        let inv = call(
            &mut tx,
            "select invoice_create($1)",
            json!({"customer_id": customers[rng.below(3) as usize], "subtotal": subtotal as f64 / 100.0,
                   "tax": (subtotal / 10) as f64 / 100.0, "issue_date": issue, "due_date": due,
                   "currency": currency, "status": if draft { "DRAFT" } else { "ISSUED" }}),
        )
        .await;
        let total = subtotal + subtotal / 10;
        if draft {
            continue;
        }
        if rng.chance(8) {
            sqlx::query(
                "update invoices set status = 'VOID' where invoice_id = ($1->>'invoice_id')::uuid",
            )
            .bind(&inv)
            .execute(&mut *tx)
            .await
            .unwrap();
            continue;
        }
        if issue > today {
            continue; // nothing can be paid before the issue date
        }
        let days = (today - issue).num_days();
        let mut left = total;
        for _ in 0..rng.below(4) {
            if left == 0 {
                break;
            }
            let on = if due <= today && rng.chance(30) {
                due // on the due date
            } else {
                issue + Duration::days(rng.below(days + 1))
            };
            let amount = if rng.chance(25) {
                left
            } else {
                1 + rng.below(left)
            };
            call(
                &mut tx,
                "select payment_record($1)",
                json!({"invoice_id": inv["invoice_id"], "amount": amount as f64 / 100.0, "paid_on": on}),
            )
            .await;
            left -= amount;
        }
    }
    tx.commit().await.unwrap();
}

/// The raw rows, read as the owner.
struct Raw {
    /// invoice_id -> (customer, currency, status, issue, due, total cents)
    invoices: BTreeMap<Uuid, (Uuid, String, String, NaiveDate, NaiveDate, i64)>,
    /// (invoice_id, paid_on, amount cents)
    payments: Vec<(Uuid, NaiveDate, i64)>,
}

async fn raw(db: &TestDb, tenant: Uuid) -> Raw {
    let rows: Vec<(Uuid, Uuid, String, String, NaiveDate, NaiveDate, i64)> = sqlx::query_as(
        "select invoice_id, customer_id, currency, status, issue_date, due_date, (total * 100)::int8
           from invoices where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let payments = sqlx::query_as(
        "select invoice_id, paid_on, (amount * 100)::int8 from payments where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    Raw {
        invoices: rows
            .into_iter()
            .map(|r| (r.0, (r.1, r.2, r.3, r.4, r.5, r.6)))
            .collect(),
        payments,
    }
}

/// What every report must say, recomputed from the raw rows.
#[derive(Debug, PartialEq, Default)]
struct Expected {
    /// invoice_id -> (outstanding cents, days past due, overdue, bucket) of
    /// the receivables on `today`.
    outstanding: BTreeMap<Uuid, (i64, i32, bool, Option<String>)>,
    /// (currency, customer or None for the total) -> [current, 1-30, 31-60, 61-90, >90, outstanding, overdue, open]
    aging: BTreeMap<(String, Option<Uuid>), [i64; 8]>,
    /// (currency, day) -> (AR cents, credit sales cents, dso x 10)
    dso: BTreeMap<(String, NaiveDate), (i64, i64, Option<i64>)>,
}

fn expected(raw: &Raw, today: NaiveDate) -> Expected {
    let receivable = |status: &str, issue: NaiveDate, d: NaiveDate| {
        (status == "ISSUED" || status == "PAID") && issue <= d
    };
    let paid_by = |inv: Uuid, d: NaiveDate| -> i64 {
        raw.payments
            .iter()
            .filter(|p| p.0 == inv && p.1 <= d)
            .map(|p| p.2)
            .sum()
    };
    let mut e = Expected::default();
    for (id, (cust, cur, status, issue, due, total)) in &raw.invoices {
        if !receivable(status, *issue, today) {
            continue;
        }
        let out = total - paid_by(*id, today);
        let dpd = if out > 0 && today > *due {
            (today - *due).num_days() as i32
        } else {
            0
        };
        let bucket = match (out, dpd) {
            (0, _) => None,
            (_, 0) => Some("current"),
            (_, 1..=30) => Some("1-30"),
            (_, 31..=60) => Some("31-60"),
            (_, 61..=90) => Some("61-90"),
            _ => Some(">90"),
        };
        e.outstanding
            .insert(*id, (out, dpd, dpd > 0, bucket.map(str::to_owned)));
        if out > 0 {
            let slot = match bucket {
                Some("current") => 0,
                Some("1-30") => 1,
                Some("31-60") => 2,
                Some("61-90") => 3,
                _ => 4,
            };
            for key in [(cur.clone(), Some(*cust)), (cur.clone(), None)] {
                let row = e.aging.entry(key).or_default();
                row[slot] += out;
                row[5] += out;
                if dpd > 0 {
                    row[6] += out;
                }
                row[7] += 1;
            }
        }
    }
    let currencies: std::collections::BTreeSet<&String> = raw
        .invoices
        .values()
        .filter(|v| v.2 == "ISSUED" || v.2 == "PAID")
        .map(|v| &v.1)
        .collect();
    for cur in currencies {
        for back in 0..90 {
            let d = today - Duration::days(back);
            let mut ar = 0;
            let mut sales = 0;
            for (id, (_, c, status, issue, _, total)) in &raw.invoices {
                if c != cur || !receivable(status, *issue, d) {
                    continue;
                }
                ar += total - paid_by(*id, d);
                if *issue > d - Duration::days(30) {
                    sales += total;
                }
            }
            // round(ar / sales * 30, 1), half away from zero, in tenths.
            let dso = (sales > 0).then(|| {
                let (num, den) = (ar as i128 * 300, sales as i128);
                ((2 * num + den) / (2 * den)) as i64
            });
            e.dso.insert((cur.clone(), d), (ar, sales, dso));
        }
    }
    e
}

/// What the views say, read in `tx` (as a tenant's user or as the owner)
/// for `tenant`.
async fn reported(
    tx: &mut Transaction<'static, Postgres>,
    tenant: Uuid,
) -> (Expected, BTreeMap<Uuid, i64>) {
    let rows: Vec<(Uuid, i64, i32, bool, Option<String>)> = sqlx::query_as(
        "select invoice_id, (outstanding * 100)::int8, days_past_due, is_overdue, aging_bucket
           from v_invoice_outstanding where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await
    .unwrap();
    let outstanding = rows
        .into_iter()
        .map(|r| (r.0, (r.1, r.2, r.3, r.4)))
        .collect();
    type AgingRow = (String, Option<Uuid>, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<AgingRow> = sqlx::query_as(
        "select currency, customer_id, (current * 100)::int8, (d1_30 * 100)::int8, (d31_60 * 100)::int8,
                (d61_90 * 100)::int8, (d90_plus * 100)::int8, (outstanding * 100)::int8,
                (overdue * 100)::int8, open_invoices
           from v_ar_aging where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await
    .unwrap();
    let aging = rows
        .into_iter()
        .map(|r| ((r.0, r.1), [r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9]))
        .collect();
    let rows: Vec<(String, NaiveDate, i64, i64, Option<i64>)> = sqlx::query_as(
        "select currency, day, (ar_outstanding * 100)::int8, (credit_sales_30d * 100)::int8,
                (dso_days * 10)::int8
           from v_dso_rolling_30 where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await
    .unwrap();
    let dso = rows
        .into_iter()
        .map(|r| ((r.0, r.1), (r.2, r.3, r.4)))
        .collect();
    let list: Vec<(Uuid, i64)> = sqlx::query_as(
        "select invoice_id, (outstanding * 100)::int8 from v_invoices where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(&mut **tx)
    .await
    .unwrap();
    (
        Expected {
            outstanding,
            aging,
            dso,
        },
        list.into_iter().collect(),
    )
}

/// Everything the reports say for the caller, as text with instants in
/// epoch seconds (so the session time zone cannot change the rendering,
/// only the numbers if they depended on it).
async fn snapshot(tx: &mut Transaction<'static, Postgres>) -> String {
    let queries = [
        "select jsonb_agg(to_jsonb(o) order by invoice_id) from v_invoice_outstanding o",
        "select jsonb_agg(to_jsonb(a) order by currency, customer_id nulls first) from v_ar_aging a",
        "select jsonb_agg(to_jsonb(d) order by currency, day) from v_dso_rolling_30 d",
        "select jsonb_agg(jsonb_build_object('id', invoice_id, 'out', outstanding, 'dpd', days_past_due,
                 'overdue', is_overdue, 'bucket', aging_bucket) order by invoice_id) from v_invoices",
        "select jsonb_agg(jsonb_build_object('id', ticket_id, 'min', first_response_minutes,
                 'bmin', first_response_business_minutes) order by ticket_id) from v_ticket_first_response",
        "select jsonb_agg(to_jsonb(m) order by day) from v_ticket_first_response_daily_median m",
        "select jsonb_agg(jsonb_build_object('id', ticket_id, 'resp', extract(epoch from response_due_at),
                 'res', extract(epoch from resolution_due_at), 'rb', response_breached,
                 'sb', resolution_breached, 's', sla_status) order by ticket_id) from v_sla_status",
        "select jsonb_build_object('today', tenant_today())",
    ];
    let mut out = String::new();
    for q in queries {
        let v: Option<Value> = sqlx::query_scalar(q).fetch_one(&mut **tx).await.unwrap();
        out.push_str(&v.unwrap_or(Value::Null).to_string());
        out.push('\n');
    }
    out
}

async fn set_zone(tx: &mut Transaction<'static, Postgres>, zone: &str) {
    sqlx::query(&format!("set local time zone '{zone}'"))
        .execute(&mut **tx)
        .await
        .unwrap();
}

/// Tickets whose creation and first response are set to given instants
/// (as the superuser, triggers off), for the first-response and SLA views.
async fn tickets(db: &TestDb, t: &Tenant, rng: &mut Rng) -> Vec<Uuid> {
    let ops = db.create_user(t.id, "ops").await;
    let mut ids = Vec::new();
    for i in 0..8 {
        let out = bizos_tests::rpc(
            db,
            &ops,
            "select ticket_create($1)",
            &[json!({"ticket_type": "complaint", "subject": format!("Case {i}"), "dept_target": "OPS",
                     "priority": "high"})],
        )
        .await
        .unwrap();
        ids.push(out["ticket_id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    let admin = sqlx::PgPool::connect(&bizos_tests::url_for("postgres", &db.name))
        .await
        .unwrap();
    let mut tx = admin.begin().await.unwrap();
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    for id in &ids {
        // Created within the last 10 days at any hour; some replied to.
        let created = Utc::now() - Duration::minutes(rng.below(10 * 24 * 60));
        let reply = rng
            .chance(70)
            .then(|| created + Duration::minutes(rng.below(3 * 24 * 60)))
            .filter(|r| *r < Utc::now());
        sqlx::query(
            "update tickets set created_at = $2, first_response_at = $3 where ticket_id = $1",
        )
        .bind(id)
        .bind(created)
        .bind(reply)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    admin.close().await;
    ids
}

#[tokio::test]
async fn aging_outstanding_and_dso_agree_with_the_raw_rows_in_any_session_time_zone() {
    let db = TestDb::new().await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tenants = [
        tenant(&db, "jakarta", "Asia/Jakarta", 7).await,
        tenant(&db, "kiritimati", "Etc/GMT-14", 14).await,
        tenant(&db, "baker", "Etc/GMT+12", -12).await,
        tenant(&db, "quiet", "Asia/Jakarta", 7).await,
    ];
    for (i, t) in tenants.iter().enumerate() {
        populate(&db, t, &mut rng, 70, i == 3).await;
        tickets(&db, t, &mut rng).await;
    }

    for t in &tenants {
        let today = today_at(t.offset);
        let want = expected(&raw(&db, t.id).await, today);
        // The fixtures hold what the issue lists.
        assert!(want.outstanding.values().any(|o| o.0 > 0 && o.2));
        assert!(want.aging.keys().any(|k| k.1.is_none()));
        let edge = want
            .outstanding
            .values()
            .filter(|o| [30, 60, 90].contains(&o.1))
            .count();
        let quiet = t.id == tenants[3].id;
        if quiet {
            assert!(
                want.dso
                    .iter()
                    .any(|((_, d), v)| *d == today && v.1 == 0 && v.2.is_none()),
                "an empty DSO window today"
            );
        } else {
            assert!(edge > 0, "invoices exactly 30/60/90 days past due");
        }

        let mut snapshots = Vec::new();
        for zone in SESSION_ZONES {
            let mut tx = db.as_user(&t.finance).await;
            set_zone(&mut tx, zone).await;
            let (got, list) = reported(&mut tx, t.id).await;
            assert_eq!(got.outstanding, want.outstanding, "outstanding in {zone}");
            assert_eq!(got.aging, want.aging, "aging in {zone}");
            assert_eq!(got.dso, want.dso, "DSO in {zone}");
            // One definition: aging total = outstanding = DSO's AR today.
            let sums: Vec<(String, i64, i64, i64)> = sqlx::query_as(
                "select o.currency, (sum(o.outstanding) * 100)::int8,
                        coalesce((select (a.outstanding * 100)::int8 from v_ar_aging a
                                   where a.tenant_id = $1 and a.is_total and a.currency = o.currency), 0),
                        (select (d.ar_outstanding * 100)::int8 from v_dso_rolling_30 d
                          where d.tenant_id = $1 and d.currency = o.currency and d.day = tenant_today($1))
                   from v_invoice_outstanding o where o.tenant_id = $1 group by o.currency",
            )
            .bind(t.id)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            assert!(!sums.is_empty());
            for (cur, out, aging, dso_ar) in &sums {
                assert_eq!(
                    (out, aging),
                    (dso_ar, dso_ar),
                    "{cur} in {zone}: outstanding, aging, DSO AR"
                );
            }
            for (id, cents) in &list {
                assert_eq!(
                    *cents,
                    got.outstanding.get(id).map_or(0, |o| o.0),
                    "v_invoices outstanding of {id}"
                );
            }
            tx.rollback().await.unwrap();
            let mut tx = db.as_user(&t.director).await;
            set_zone(&mut tx, zone).await;
            snapshots.push(snapshot(&mut tx).await);
            tx.rollback().await.unwrap();
        }
        assert_eq!(
            snapshots[0], snapshots[1],
            "the same numbers at UTC+14 and UTC-12"
        );
        assert!(
            snapshots[0].contains("median_first_response_minutes")
                && snapshots[0].contains("\"s\":\""),
            "the snapshot has tickets: {}",
            snapshots[0]
        );

        // The owner (analytics reads the views so) gets the same per tenant.
        let mut tx = db.owner.begin().await.unwrap();
        set_zone(&mut tx, SESSION_ZONES[1]).await;
        let (got, _) = reported(&mut tx, t.id).await;
        assert_eq!(got, want, "read as the owner");
    }
}

/// A tenant at UTC+14 read by a session at UTC-12: the tenant's date is
/// always one or two days after the session's (26 hours apart), which is
/// what a Jakarta tenant sees from the BFF's UTC sessions between 00:00 and
/// 07:00 WIB, at any time of day the test runs.
#[tokio::test]
async fn the_tenants_today_decides_payments_and_collection_tickets_not_the_sessions() {
    let db = TestDb::new().await;
    let east = tenant(&db, "east", "Etc/GMT-14", 14).await;
    let west = tenant(&db, "west", "Etc/GMT+12", -12).await;
    let c_east = customer(&db, east.id, "PT Timur").await;
    let c_west = customer(&db, west.id, "PT Barat").await;
    let today = today_at(14);

    let mut tx = db.as_user(&east.finance).await;
    set_zone(&mut tx, "Etc/GMT+12").await;
    let (session, tenant_day): (NaiveDate, NaiveDate) =
        sqlx::query_as("select current_date, tenant_today()")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert!(session < tenant_day, "{session} {tenant_day}");
    assert_eq!(tenant_day, today);
    // Defaults are the tenant's today.
    let inv = call(
        &mut tx,
        "select invoice_create($1)",
        json!({"customer_id": c_east, "subtotal": 1000, "tax": 0}),
    )
    .await;
    let issue: NaiveDate = sqlx::query_scalar(
        "select issue_date from invoices where invoice_id = ($1->>'invoice_id')::uuid",
    )
    .bind(&inv)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(issue, today, "issue_date defaults to the tenant's today");
    // A payment dated the tenant's today is accepted while the session's
    // date is still yesterday; tomorrow is refused.
    let paid = call(
        &mut tx,
        "select payment_record($1)",
        json!({"invoice_id": inv["invoice_id"], "amount": 100, "paid_on": today}),
    )
    .await;
    assert_eq!(paid["replayed"], false);
    let second = call(
        &mut tx,
        "select payment_record($1)",
        json!({"invoice_id": inv["invoice_id"], "amount": 1}),
    )
    .await;
    let paid_on: NaiveDate = sqlx::query_scalar(
        "select paid_on from payments where payment_id = ($1->>'payment_id')::uuid",
    )
    .bind(&second)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(paid_on, today, "paid_on defaults to the tenant's today");
    // An invoice one day overdue locally (not yet due by the session's date)
    // gets its collection ticket.
    let late = call(
        &mut tx,
        "select invoice_create($1)",
        json!({"customer_id": c_east, "subtotal": 1000, "tax": 0,
               "issue_date": today - Duration::days(31), "due_date": today - Duration::days(1)}),
    )
    .await;
    assert!(
        today - Duration::days(1) >= session,
        "not overdue by the session's date"
    );
    let ticket = call(
        &mut tx,
        "select create_collection_ticket(($1->>'invoice_id')::uuid)",
        late.clone(),
    )
    .await;
    assert_eq!(ticket["created"], true, "{ticket}");
    let (dpd, overdue): (i32, bool) = sqlx::query_as(
        "select days_past_due, is_overdue from v_invoice_outstanding where invoice_id = ($1->>'invoice_id')::uuid",
    )
    .bind(&late)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((dpd, overdue), (1, true));
    tx.commit().await.unwrap();

    let mut tx = db.as_user(&east.finance).await;
    set_zone(&mut tx, "Etc/GMT+12").await;
    let err = sqlx::query_scalar::<_, Value>("select payment_record($1)")
        .bind(json!({"invoice_id": inv["invoice_id"], "amount": 1, "paid_on": today + Duration::days(1)}))
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("paid_on"))
    );
    tx.rollback().await.unwrap();

    // The other way round: a tenant at UTC-12 read at UTC+14. The session's
    // today is the tenant's tomorrow: a payment dated so is refused, by the
    // RPC and by the table's trigger (an owner's insert, no claims), and an
    // invoice due on the tenant's today is not overdue yet.
    let wtoday = today_at(-12);
    let mut tx = db.as_user(&west.finance).await;
    set_zone(&mut tx, "Etc/GMT-14").await;
    let session: NaiveDate = sqlx::query_scalar("select current_date")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(session > wtoday);
    let inv = call(
        &mut tx,
        "select invoice_create($1)",
        json!({"customer_id": c_west, "subtotal": 1000, "tax": 0,
               "issue_date": wtoday - Duration::days(30), "due_date": wtoday}),
    )
    .await;
    tx.commit().await.unwrap();
    let mut tx = db.as_user(&west.finance).await;
    set_zone(&mut tx, "Etc/GMT-14").await;
    let err = sqlx::query_scalar::<_, Value>("select payment_record($1)")
        .bind(json!({"invoice_id": inv["invoice_id"], "amount": 1, "paid_on": session}))
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("paid_on"))
    );
    tx.rollback().await.unwrap();
    let mut tx = db.as_user(&west.finance).await;
    let err = sqlx::query_scalar::<_, Value>(
        "select create_collection_ticket(($1->>'invoice_id')::uuid)",
    )
    .bind(&inv)
    .fetch_one(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("invoice_id"))
    );
    tx.rollback().await.unwrap();
    let mut owner = db.owner.begin().await.unwrap();
    set_zone(&mut owner, "Etc/GMT-14").await;
    let err = sqlx::query(
        "insert into payments (tenant_id, invoice_id, amount, paid_on) values ($1, ($2->>'invoice_id')::uuid, 1, current_date)",
    )
    .bind(west.id)
    .bind(&inv)
    .execute(&mut *owner)
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("paid_on"))
    );
    owner.rollback().await.unwrap();
    // Without a date the owner's insert gets the row's tenant's today.
    let mut owner = db.owner.begin().await.unwrap();
    set_zone(&mut owner, "Etc/GMT-14").await;
    let on: NaiveDate = sqlx::query_scalar(
        "insert into payments (tenant_id, invoice_id, amount) values ($1, ($2->>'invoice_id')::uuid, 1) returning paid_on",
    )
    .bind(west.id)
    .bind(&inv)
    .fetch_one(&mut *owner)
    .await
    .unwrap();
    assert_eq!(on, wtoday);
    owner.rollback().await.unwrap();
}

/// A future-dated invoice is not a receivable before its date: not
/// "current" in outstanding or aging, not in DSO's AR, 0 outstanding in the
/// invoice list; and it takes no payment before its date.
#[tokio::test]
async fn a_future_dated_invoice_is_not_yet_a_receivable_in_any_report() {
    let db = TestDb::new().await;
    let t = tenant(&db, "acme", "Asia/Jakarta", 7).await;
    let c = customer(&db, t.id, "PT Nanti").await;
    let today = today_at(7);
    let mut tx = db.as_user(&t.finance).await;
    call(
        &mut tx,
        "select invoice_create($1)",
        json!({"customer_id": c, "subtotal": 500, "tax": 0, "issue_date": today - Duration::days(3)}),
    )
    .await;
    let future = call(
        &mut tx,
        "select invoice_create($1)",
        json!({"customer_id": c, "subtotal": 1000, "tax": 0, "issue_date": today + Duration::days(3)}),
    )
    .await;
    tx.commit().await.unwrap();

    let mut tx = db.as_user(&t.finance).await;
    let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from v_invoice_outstanding where invoice_id = ($1->>'invoice_id')::uuid),
                (select (sum(outstanding) * 100)::int8 from v_invoice_outstanding),
                (select (current * 100)::int8 from v_ar_aging where is_total),
                (select (ar_outstanding * 100)::int8 from v_dso_rolling_30 where day = tenant_today()),
                (select (outstanding * 100)::int8 from v_invoices where invoice_id = ($1->>'invoice_id')::uuid)",
    )
    .bind(&future)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(row, (0, 50_000, 50_000, 50_000, 0));
    let err = sqlx::query_scalar::<_, Value>("select payment_record($1)")
        .bind(json!({"invoice_id": future["invoice_id"], "amount": 1}))
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("paid_on"))
    );
}

/// The daily first-response median is cut at the tenant's midnight
/// (tenants.time_zone), also without a business calendar of its own.
#[tokio::test]
async fn daily_first_response_medians_are_cut_in_the_tenants_day() {
    let db = TestDb::new().await;
    let t = tenant(&db, "pacific", "Etc/GMT-14", 14).await;
    let mut rng = Rng(7);
    let ids = tickets(&db, &t, &mut rng).await;
    let created: Vec<chrono::DateTime<Utc>> =
        sqlx::query_scalar("select created_at from tickets where tenant_id = $1")
            .bind(t.id)
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(created.len(), ids.len());
    let mut want: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for c in created {
        *want
            .entry((c + Duration::hours(14)).date_naive())
            .or_default() += 1;
    }
    // Without a calendar of its own the tenant's business hours are in its
    // time zone: Monday 08:00-09:00 at UTC+14 is one business hour.
    let mut tx = db.as_user(&t.director).await;
    let minutes: f64 = sqlx::query_scalar(
        "select business_minutes_between($1, '2026-03-02 08:00+14', '2026-03-02 09:00+14')::float8",
    )
    .bind(t.id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(minutes, 60.0);
    tx.rollback().await.unwrap();
    // A business calendar in another zone (its hours are Jakarta's) does
    // not move the tenant's days.
    sqlx::query(
        "insert into business_calendars (tenant_id, time_zone) values ($1, 'Asia/Jakarta')",
    )
    .bind(t.id)
    .execute(&db.owner)
    .await
    .unwrap();
    for zone in SESSION_ZONES {
        let mut tx = db.as_user(&t.director).await;
        set_zone(&mut tx, zone).await;
        let got: BTreeMap<NaiveDate, i64> = sqlx::query_as::<_, (NaiveDate, i64)>(
            "select day, tickets from v_ticket_first_response_daily_median",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .into_iter()
        .collect();
        assert_eq!(got, want, "in {zone}");
    }
}
