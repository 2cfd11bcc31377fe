//! KPI scopes, AR aging metrics and the tenant's today. Every metric of the
//! catalogue is recomputed here from the raw rows (leads, activities,
//! invoices, payments, prospects, profiles, entries) for
//! one salesperson, for a sales manager's team (profiles.manager_user_id,
//! two levels deep) and for the tenant, and compared with `kpi_actual`; the
//! aging metrics reconcile with `v_ar_aging`; and the numbers read at
//! UTC+14 and UTC-12 are the same.

use bizos_bff::auth::Caller;
use bizos_tests::{num, rpc, spawn_app, TestDb};
use chrono::{DateTime, Days, FixedOffset, NaiveDate, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Every metric of the catalogue and whether its description measures a
/// person by their own rows (true) or is a tenant-wide figure (false).
const METRICS: &[(&str, bool)] = &[
    // "per assignee: leads whose sales owner is the assignee"
    ("leads_by_channel", true),
    ("marketing_spend", false),
    ("cpl", false),
    ("campaigns_launched", false),
    ("mql_count", true),
    ("social_engagement_rate", false),
    // "per assignee: invoices of customers the assignee owns a prospect of"
    ("revenue", true),
    ("cash_collected", true),
    ("new_logos", true),
    // "by owner"
    ("sales_activities", true),
    ("customer_visits", true),
    ("win_rate", true),
    ("cycle_days", true),
    ("quotations_sent", true),
    ("first_response_median_minutes", false),
    ("sla_breach_rate", false),
    ("customer_satisfaction", false),
    ("on_time_delivery_rate", false),
    ("dso_rolling_30", false),
    ("ar_overdue_amount", false),
    // "per assignee: invoices of customers the assignee owns"
    ("ar_aging_current", true),
    ("ar_aging_1_30", true),
    ("ar_aging_31_60", true),
    ("ar_aging_61_90", true),
    ("ar_aging_over_90", true),
    ("collection_rate", false),
    ("budget_variance", false),
];

const AGING: &[(&str, &str, &str)] = &[
    ("ar_aging_current", "current", "current"),
    ("ar_aging_1_30", "1-30", "d1_30"),
    ("ar_aging_31_60", "31-60", "d31_60"),
    ("ar_aging_61_90", "61-90", "d61_90"),
    ("ar_aging_over_90", ">90", "d90_plus"),
];

struct Fx {
    tenant: Uuid,
    today: NaiveDate,
    director: Caller,
    manager: Caller,
    alice: Caller,
    bob: Caller,
    dave: Caller,
}

fn ago(today: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        today - Days::new(n as u64)
    } else {
        today + Days::new((-n) as u64)
    }
}

async fn owner_exec(db: &TestDb, sql: &str, tenant: Uuid, a: Uuid, b: Option<Uuid>) {
    sqlx::query(sql)
        .bind(tenant)
        .bind(a)
        .bind(b)
        .execute(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A customer with one prospect per owner (one without owner when none).
async fn customer(db: &TestDb, tenant: Uuid, name: &str, owners: &[Uuid]) -> (Uuid, Uuid) {
    let c: Uuid = sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) values ($1, $2) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let mut first = None;
    let owners: Vec<Option<Uuid>> = if owners.is_empty() {
        vec![None]
    } else {
        owners.iter().copied().map(Some).collect()
    };
    for o in owners {
        let p: Uuid = sqlx::query_scalar(
            "insert into prospects (tenant_id, customer_id, owner_user_id) values ($1, $2, $3) returning prospect_id",
        )
        .bind(tenant)
        .bind(c)
        .bind(o)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        first.get_or_insert(p);
    }
    (c, first.expect("a prospect"))
}

async fn lead(
    db: &TestDb,
    tenant: Uuid,
    channel: &str,
    cp: (Uuid, Uuid),
    owner: Option<Uuid>,
) -> Uuid {
    sqlx::query_scalar(
        "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, sales_owner_user_id, assigned_at)
         values ($1, $2, 'x', $3, $4, $5, case when $5 is not null then now() end) returning lead_id",
    )
    .bind(tenant)
    .bind(channel)
    .bind(cp.0)
    .bind(cp.1)
    .bind(owner)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[allow(clippy::too_many_arguments)]
async fn invoice(
    db: &TestDb,
    fin: &Caller,
    customer: Uuid,
    issue: NaiveDate,
    due: NaiveDate,
    subtotal: i64,
    tax: i64,
    currency: &str,
    status: &str,
) -> Uuid {
    let out = rpc(
        db,
        fin,
        "select invoice_create($1)",
        &[json!({"customer_id": customer, "issue_date": issue, "due_date": due, "subtotal": subtotal,
                 "tax": tax, "currency": currency, "status": status})],
    )
    .await
    .expect("invoice_create");
    out["invoice_id"].as_str().unwrap().parse().unwrap()
}

async fn pay(db: &TestDb, fin: &Caller, invoice: Uuid, amount: i64, paid_on: NaiveDate) {
    rpc(
        db,
        fin,
        "select payment_record($1)",
        &[json!({"invoice_id": invoice, "amount": amount, "paid_on": paid_on})],
    )
    .await
    .expect("payment_record");
}

/// A tenant (Asia/Jakarta) with a sales manager over alice and bob, dave
/// under alice, carol outside the team, and data of every kind.
async fn fixture(db: &TestDb) -> Fx {
    let tenant = db.create_tenant("scopes").await;
    let tz: String = sqlx::query_scalar("select time_zone from tenants where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        tz, "Asia/Jakarta",
        "the expected values below cut days at UTC+7"
    );
    let today: NaiveDate = sqlx::query_scalar("select tenant_today($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let director = db.create_user(tenant, "director").await;
    let finance = db.create_user(tenant, "finance").await;
    let ops = db.create_user(tenant, "ops").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let dave = db.create_user(tenant, "salesperson").await;
    let carol = db.create_user(tenant, "salesperson").await;
    for (member, boss) in [(&alice, &manager), (&bob, &manager), (&dave, &alice)] {
        owner_exec(
            db,
            "update profiles set manager_user_id = $3 where tenant_id = $1 and user_id = $2",
            tenant,
            member.user_id,
            Some(boss.user_id),
        )
        .await;
    }
    let (a, b, d, c) = (alice.user_id, bob.user_id, dave.user_id, carol.user_id);
    let c_alice = customer(db, tenant, "PT Alice", &[a]).await;
    let c_bob = customer(db, tenant, "PT Bob", &[b]).await;
    let c_dave = customer(db, tenant, "PT Dave", &[d]).await;
    let c_carol = customer(db, tenant, "PT Carol", &[c]).await;
    let c_shared = customer(db, tenant, "PT Bersama", &[d, c]).await;
    let c_none = customer(db, tenant, "PT Tanpa", &[]).await;

    // Leads: alice 4, bob 2, dave 1, carol 3, nobody 1 (11 in all).
    for (channel, cp, owner) in [
        ("website", c_alice, Some(a)),
        ("website", c_alice, Some(a)),
        ("website", c_alice, Some(a)),
        ("referral", c_alice, Some(a)),
        ("website", c_bob, Some(b)),
        ("event", c_bob, Some(b)),
        ("referral", c_dave, Some(d)),
        ("website", c_carol, Some(c)),
        ("website", c_carol, Some(c)),
        ("event", c_carol, Some(c)),
        ("website", c_none, None),
    ] {
        lead(db, tenant, channel, cp, owner).await;
    }
    // Two more of alice's, 30 s either side of the tenant's midnight.
    for secs in [-30, 30] {
        let l = lead(db, tenant, "event", c_alice, Some(a)).await;
        let mut tx = db.owner.begin().await.unwrap();
        sqlx::query("alter table leads disable trigger leads_stamp_timestamps")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "update leads set created_at = ($2::date::timestamp + make_interval(secs => $3)) at time zone 'Asia/Jakarta'
              where lead_id = $1",
        )
        .bind(l)
        .bind(today)
        .bind(secs as f64)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query("alter table leads enable trigger leads_stamp_timestamps")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    for (owner, kind, days_ago, cust) in [
        (a, "visit", 1, c_alice.0),
        (a, "call", 2, c_alice.0),
        (b, "visit", 50, c_bob.0),
        (d, "visit", 3, c_dave.0),
        (c, "call", 1, c_carol.0),
        (c, "visit", 1, c_carol.0),
    ] {
        sqlx::query(
            "insert into sales_activities (tenant_id, owner_user_id, activity_type, customer_id, summary, occurred_at,
                                           photo_bucket, photo_object_key, gps_lat, gps_lng)
             values ($1, $2, $3, $4, 'x', now() - make_interval(days => $5),
                     'prospect-evidence', 'visit.jpg', -6.2, 106.8)",
        )
        .bind(tenant)
        .bind(owner)
        .bind(kind)
        .bind(cust)
        .bind(days_ago)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    for (channel, days_ago, amount) in [("website", 1, 500_000), ("referral", 50, 200_000)] {
        sqlx::query("insert into marketing_spend (tenant_id, channel, spend_date, amount) values ($1, $2, $3, $4)")
            .bind(tenant)
            .bind(channel)
            .bind(ago(today, days_ago))
            .bind(amount)
            .execute(&db.owner)
            .await
            .unwrap();
    }
    for (kind, days_ago) in [("campaign_launch", 1), ("campaign_launch", 52), ("post", 1)] {
        sqlx::query(
            "insert into marketing_activity_events (tenant_id, channel, event_type, occurred_at)
             values ($1, 'social', $2, now() - make_interval(days => $3))",
        )
        .bind(tenant)
        .bind(kind)
        .bind(days_ago)
        .execute(&db.owner)
        .await
        .unwrap();
    }

    // Invoices with due dates exactly 0/1/30/31/45/60/61/90/91/100 days ago,
    // a partial payment, a payment on the due date, a paid one, a draft, a
    // USD one and one of a customer nobody owns.
    let t = |n: i64| ago(today, n);
    let i1 = invoice(
        db,
        &finance,
        c_alice.0,
        t(10),
        t(-5),
        1_000_000,
        110_000,
        "IDR",
        "ISSUED",
    )
    .await;
    pay(db, &finance, i1, 300_000, t(2)).await;
    invoice(
        db,
        &finance,
        c_alice.0,
        t(40),
        t(30),
        500_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    let i3 = invoice(
        db,
        &finance,
        c_bob.0,
        t(50),
        t(31),
        700_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    pay(db, &finance, i3, 200_000, t(31)).await;
    invoice(
        db,
        &finance,
        c_bob.0,
        t(70),
        t(60),
        400_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_shared.0,
        t(80),
        t(61),
        900_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_carol.0,
        t(100),
        t(90),
        300_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_carol.0,
        t(110),
        t(91),
        250_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    let i8 = invoice(
        db,
        &finance,
        c_alice.0,
        t(5),
        t(0),
        150_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    pay(db, &finance, i8, 150_000, t(1)).await;
    invoice(
        db,
        &finance,
        c_bob.0,
        t(20),
        t(10),
        1_000,
        0,
        "USD",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_none.0,
        t(15),
        t(1),
        600_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_alice.0,
        t(3),
        t(-27),
        999_000,
        0,
        "IDR",
        "DRAFT",
    )
    .await;
    invoice(
        db,
        &finance,
        c_alice.0,
        t(130),
        t(100),
        123_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;
    invoice(
        db,
        &finance,
        c_dave.0,
        t(65),
        t(45),
        50_000,
        0,
        "IDR",
        "ISSUED",
    )
    .await;

    // MANUAL actuals: per-assignee metrics and a tenant-wide one.
    for (metric, who, days_ago, value) in [
        ("mql_count", a, 1, 5),
        ("mql_count", b, 50, 3),
        ("mql_count", c, 2, 7),
        ("mql_count", d, 1, 2),
        ("quotations_sent", a, 3, 4),
        ("on_time_delivery_rate", ops.user_id, 1, 90),
        ("on_time_delivery_rate", finance.user_id, 55, 80),
    ] {
        sqlx::query(
            "insert into kpi_entries (tenant_id, metric_key, entry_date, assignee_user_id, value) values ($1, $2, $3, $4, $5)",
        )
        .bind(tenant)
        .bind(metric)
        .bind(t(days_ago))
        .bind(who)
        .bind(value)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    Fx {
        tenant,
        today,
        director,
        manager,
        alice,
        bob,
        dave,
    }
}

struct Inv {
    customer: Uuid,
    issue: NaiveDate,
    due: NaiveDate,
    currency: String,
    status: String,
    subtotal: f64,
    total: f64,
    id: Uuid,
}

/// The raw rows of the tenant, read as the owner (no view, no RLS).
struct Raw {
    leads: Vec<(NaiveDate, String, Option<Uuid>)>,
    activities: Vec<(NaiveDate, Uuid, String)>,
    spend: Vec<(NaiveDate, f64)>,
    campaigns: Vec<NaiveDate>,
    invoices: Vec<Inv>,
    payments: Vec<(Uuid, NaiveDate, f64)>,
    owners: HashMap<Uuid, HashSet<Uuid>>,
    managers: Vec<(Uuid, Option<Uuid>)>,
    entries: Vec<(String, NaiveDate, Uuid, f64)>,
    tickets: i64,
}

async fn load(db: &TestDb, tenant: Uuid) -> Raw {
    let tz = FixedOffset::east_opt(7 * 3600).unwrap();
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    let o = &db.owner;
    let leads: Vec<(DateTime<Utc>, String, Option<Uuid>)> = sqlx::query_as(
        "select created_at, channel, sales_owner_user_id from leads where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let activities: Vec<(DateTime<Utc>, Uuid, String)> = sqlx::query_as(
        "select occurred_at, owner_user_id, activity_type from sales_activities where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let spend = sqlx::query_as(
        "select spend_date, amount::float8 from marketing_spend where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let campaigns: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select occurred_at from marketing_activity_events where tenant_id = $1 and event_type = 'campaign_launch'",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    #[allow(clippy::type_complexity)]
    let invoices: Vec<(Uuid, Uuid, NaiveDate, NaiveDate, String, String, f64, f64)> = sqlx::query_as(
        "select invoice_id, customer_id, issue_date, due_date, currency, status, subtotal::float8, total::float8
           from invoices where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let payments = sqlx::query_as(
        "select invoice_id, paid_on, amount::float8 from payments where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let prospects: Vec<(Uuid, Option<Uuid>)> =
        sqlx::query_as("select customer_id, owner_user_id from prospects where tenant_id = $1")
            .bind(tenant)
            .fetch_all(o)
            .await
            .unwrap();
    let mut owners: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for (c, u) in prospects {
        let set = owners.entry(c).or_default();
        set.extend(u);
    }
    let managers =
        sqlx::query_as("select user_id, manager_user_id from profiles where tenant_id = $1")
            .bind(tenant)
            .fetch_all(o)
            .await
            .unwrap();
    let entries = sqlx::query_as(
        "select metric_key, entry_date, assignee_user_id, value::float8 from kpi_entries where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_all(o)
    .await
    .unwrap();
    let tickets = sqlx::query_scalar("select count(*) from tickets where tenant_id = $1")
        .bind(tenant)
        .fetch_one(o)
        .await
        .unwrap();
    Raw {
        leads: leads.into_iter().map(|(t, c, u)| (day(t), c, u)).collect(),
        activities: activities
            .into_iter()
            .map(|(t, u, k)| (day(t), u, k))
            .collect(),
        spend,
        campaigns: campaigns.into_iter().map(day).collect(),
        invoices: invoices
            .into_iter()
            .map(
                |(id, customer, issue, due, currency, status, subtotal, total)| Inv {
                    customer,
                    issue,
                    due,
                    currency,
                    status,
                    subtotal,
                    total,
                    id,
                },
            )
            .collect(),
        payments,
        owners,
        managers,
        entries,
        tickets,
    }
}

impl Raw {
    /// `manager` and everyone whose manager chain leads to them.
    fn team_of(&self, manager: Uuid) -> HashSet<Uuid> {
        let mut team = HashSet::from([manager]);
        loop {
            let more: Vec<Uuid> = self
                .managers
                .iter()
                .filter(|(u, m)| m.is_some_and(|m| team.contains(&m)) && !team.contains(u))
                .map(|(u, _)| *u)
                .collect();
            if more.is_empty() {
                return team;
            }
            team.extend(more);
        }
    }

    fn owned(&self, customer: Uuid, members: Option<&HashSet<Uuid>>) -> bool {
        members.is_none_or(|m| {
            self.owners
                .get(&customer)
                .is_some_and(|o| !o.is_disjoint(m))
        })
    }

    /// Open IDR items at the end of `day`: (invoice, outstanding, days past due).
    fn open_at(&self, day: NaiveDate) -> Vec<(&Inv, f64, i64)> {
        self.invoices
            .iter()
            .filter(|i| {
                (i.status == "ISSUED" || i.status == "PAID")
                    && i.issue <= day
                    && i.currency == "IDR"
            })
            .map(|i| {
                let paid: f64 = self
                    .payments
                    .iter()
                    .filter(|(inv, on, _)| *inv == i.id && *on <= day)
                    .map(|p| p.2)
                    .sum();
                (i, i.total - paid, (day - i.due).num_days().max(0))
            })
            .filter(|(_, out, _)| *out > 0.0)
            .collect()
    }

    fn ar_at(&self, day: NaiveDate, overdue_only: bool) -> f64 {
        self.open_at(day)
            .iter()
            .filter(|(_, _, dpd)| !overdue_only || *dpd > 0)
            .map(|x| x.1)
            .sum()
    }

    /// The value a metric must have; None = NA.
    fn expected(
        &self,
        metric: &str,
        members: Option<&HashSet<Uuid>>,
        from: NaiveDate,
        to: NaiveDate,
        today: NaiveDate,
    ) -> Option<f64> {
        let asof = to.min(today);
        let within = |d: NaiveDate| d >= from && d <= to;
        let member = |u: Uuid| members.is_none_or(|m| m.contains(&u));
        let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
        let count_leads = |m: Option<&HashSet<Uuid>>| {
            self.leads
                .iter()
                .filter(|(d, _, o)| {
                    within(*d) && m.is_none_or(|m| o.is_some_and(|o| m.contains(&o)))
                })
                .count() as f64
        };
        let entries = |key: &str| -> Vec<f64> {
            self.entries
                .iter()
                .filter(|(k, d, u, _)| k == key && within(*d) && member(*u))
                .map(|e| e.3)
                .collect()
        };
        let spend: f64 = self.spend.iter().filter(|s| within(s.0)).map(|s| s.1).sum();
        let bucket = |label: &str| -> f64 {
            self.open_at(asof)
                .iter()
                .filter(|(i, _, dpd)| {
                    let b = match dpd {
                        0 => "current",
                        1..=30 => "1-30",
                        31..=60 => "31-60",
                        61..=90 => "61-90",
                        _ => ">90",
                    };
                    b == label && self.owned(i.customer, members)
                })
                .map(|x| x.1)
                .sum()
        };
        match metric {
            "leads_by_channel" => Some(count_leads(members)),
            "marketing_spend" => Some(spend),
            "cpl" => {
                let leads = count_leads(None);
                (leads > 0.0).then(|| round(spend / leads, 2))
            }
            "campaigns_launched" => {
                Some(self.campaigns.iter().filter(|d| within(**d)).count() as f64)
            }
            "mql_count" | "quotations_sent" => {
                let e = entries(metric);
                (!e.is_empty()).then(|| e.iter().sum())
            }
            "on_time_delivery_rate" | "social_engagement_rate" | "customer_satisfaction" => {
                let e = entries(metric);
                (!e.is_empty()).then(|| round(e.iter().sum::<f64>() / e.len() as f64, 4))
            }
            "budget_variance" => {
                assert!(
                    entries(metric).is_empty(),
                    "the fixture has no budget variance"
                );
                None
            }
            "revenue" => Some(
                self.invoices
                    .iter()
                    .filter(|i| {
                        (i.status == "ISSUED" || i.status == "PAID")
                            && i.currency == "IDR"
                            && within(i.issue)
                            && self.owned(i.customer, members)
                    })
                    .map(|i| i.subtotal)
                    .sum(),
            ),
            "cash_collected" => Some(
                self.payments
                    .iter()
                    .filter(|(inv, on, _)| {
                        let i = self.invoices.iter().find(|i| i.id == *inv).unwrap();
                        i.currency == "IDR" && within(*on) && self.owned(i.customer, members)
                    })
                    .map(|p| p.2)
                    .sum(),
            ),
            "new_logos" => {
                let mut first: HashMap<Uuid, NaiveDate> = HashMap::new();
                for i in self
                    .invoices
                    .iter()
                    .filter(|i| i.status == "ISSUED" || i.status == "PAID")
                {
                    let f = first.entry(i.customer).or_insert(i.issue);
                    *f = (*f).min(i.issue);
                }
                Some(
                    first
                        .iter()
                        .filter(|(c, d)| within(**d) && self.owned(**c, members))
                        .count() as f64,
                )
            }
            "sales_activities" | "customer_visits" => Some(
                self.activities
                    .iter()
                    .filter(|(d, u, k)| {
                        within(*d) && member(*u) && (metric == "sales_activities" || k == "visit")
                    })
                    .count() as f64,
            ),
            "win_rate" | "cycle_days" => None,
            "first_response_median_minutes" | "sla_breach_rate" => {
                assert_eq!(self.tickets, 0, "the fixture has no tickets");
                None
            }
            "dso_rolling_30" => {
                let sales: f64 = self
                    .invoices
                    .iter()
                    .filter(|i| {
                        (i.status == "ISSUED" || i.status == "PAID")
                            && i.currency == "IDR"
                            && i.issue <= asof
                            && (asof - i.issue).num_days() <= 29
                    })
                    .map(|i| i.total)
                    .sum();
                (sales > 0.0).then(|| round(self.ar_at(asof, false) / sales * 30.0, 1))
            }
            "ar_overdue_amount" => Some(self.ar_at(asof, true)),
            "collection_rate" => {
                if from > today {
                    return None;
                }
                let start = self.ar_at(from.pred_opt().unwrap(), false);
                let sales: f64 = self
                    .invoices
                    .iter()
                    .filter(|i| {
                        (i.status == "ISSUED" || i.status == "PAID")
                            && i.currency == "IDR"
                            && i.issue >= from
                            && i.issue <= asof
                    })
                    .map(|i| i.total)
                    .sum();
                let collected: f64 = self
                    .payments
                    .iter()
                    .filter(|(inv, on, _)| {
                        let i = self.invoices.iter().find(|i| i.id == *inv).unwrap();
                        i.currency == "IDR" && *on >= from && *on <= asof
                    })
                    .map(|p| p.2)
                    .sum();
                (start + sales > 0.0).then(|| round(collected * 100.0 / (start + sales), 2))
            }
            _ => {
                let (_, label, _) = AGING
                    .iter()
                    .find(|a| a.0 == metric)
                    .unwrap_or_else(|| panic!("no expected value for {metric}"));
                Some(bucket(label))
            }
        }
    }
}

async fn actual(
    db: &TestDb,
    who: &Caller,
    metric: &str,
    user: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
    scope: &str,
) -> Value {
    let mut tx = db.as_user(who).await;
    sqlx::query_scalar("select kpi_actual($1, $2, daterange($3, $4, '[]'), $5)")
        .bind(metric)
        .bind(user)
        .bind(from)
        .bind(to)
        .bind(scope)
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("kpi_actual({metric}, {scope}): {e}"))
}

fn check(got: &Value, want: Option<f64>, what: &str) {
    match want {
        Some(v) => {
            assert_eq!(got["status"], "ok", "{what}: {got}");
            assert!(
                (num(&got["value"]) - v).abs() < 1e-6,
                "{what}: expected {v}, got {got}"
            );
        }
        None => {
            assert_eq!(got["status"], "na", "{what}: expected NA, got {got}");
            assert!(got["value"].is_null(), "{what}: {got}");
            assert!(
                got["reason"].as_str().is_some_and(|r| !r.is_empty()),
                "{what}: {got}"
            );
        }
    }
}

#[tokio::test]
async fn every_metric_is_measured_in_the_scope_its_description_names() {
    let db = TestDb::new().await;
    let fx = fixture(&db).await;
    let raw = load(&db, fx.tenant).await;
    let today = fx.today;

    // The catalogue is exactly the metrics above, with those scopes.
    let catalogue: Vec<(String, String, String)> = sqlx::query_as(
        "select metric_key, assignee_scope, description from kpi_metric_definitions where tenant_id = $1 order by metric_key collate \"C\"",
    )
    .bind(fx.tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut declared: Vec<&str> = METRICS.iter().map(|m| m.0).collect();
    declared.sort_unstable();
    assert_eq!(
        catalogue.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        declared
    );
    for (key, scope, description) in &catalogue {
        let per_assignee = METRICS.iter().find(|m| m.0 == key).unwrap().1;
        assert_eq!(
            scope,
            if per_assignee { "assignee" } else { "tenant" },
            "{key}: {description}"
        );
        assert_eq!(
            description.contains("per assignee") || description.contains("by owner"),
            per_assignee
                && !matches!(
                    key.as_str(),
                    "mql_count" | "quotations_sent" | "win_rate" | "cycle_days"
                ),
            "{key}: the description names the scope: {description}"
        );
    }

    let team = raw.team_of(fx.manager.user_id);
    assert_eq!(
        team,
        HashSet::from([
            fx.manager.user_id,
            fx.alice.user_id,
            fx.bob.user_id,
            fx.dave.user_id
        ])
    );
    let alone = HashSet::from([fx.alice.user_id]);
    // The issue's case: alice's leads are hers, not everyone's.
    let period = (ago(today, 120), today);
    let leads = |m| raw.expected("leads_by_channel", m, period.0, period.1, today);
    assert_eq!(
        (leads(Some(&alone)), leads(Some(&team)), leads(None)),
        (Some(6.0), Some(9.0), Some(13.0))
    );
    // Every aging bucket of the fixture holds money, for the tenant and the team.
    for (metric, _, _) in AGING {
        for m in [None, Some(&team)] {
            assert!(
                raw.expected(metric, m, period.0, period.1, today).unwrap() > 0.0,
                "{metric}"
            );
        }
    }

    let periods = [
        period,
        // a past period: AR as of its last day (payments after it not yet made)
        (ago(today, 60), ago(today, 45)),
        // today only: the lead 30 s before the tenant's midnight is yesterday's
        (today, today),
    ];
    for (metric, per_assignee) in METRICS {
        for (from, to) in periods {
            for (scope, user, members) in [
                ("assignee", Some(fx.alice.user_id), Some(&alone)),
                ("team", Some(fx.manager.user_id), Some(&team)),
                ("tenant", None, None),
            ] {
                let what = format!("{metric} {scope} {from}..{to}");
                let got = actual(&db, &fx.director, metric, user, from, to, scope).await;
                let members = if *per_assignee { members } else { None };
                check(&got, raw.expected(metric, members, from, to, today), &what);
                let effective = if *per_assignee { scope } else { "tenant" };
                assert_eq!(got["scope"], effective, "{what}: {got}");
                assert_eq!(got["as_of"], json!(to.min(today)), "{what}: {got}");
                if effective == "team" {
                    assert_eq!(got["team_size"], 4, "{what}: {got}");
                }
            }
        }
    }

    // The three-argument form is the assignee's (or the tenant's) value.
    let mut tx = db.as_user(&fx.director).await;
    let (mine, all): (Value, Value) = sqlx::query_as(
        "select kpi_actual('leads_by_channel', $1, daterange($2, $3, '[]')),
                kpi_actual('leads_by_channel', null, daterange($2, $3, '[]'))",
    )
    .bind(fx.alice.user_id)
    .bind(period.0)
    .bind(period.1)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (num(&mine["value"]), mine["scope"].clone()),
        (6.0, json!("assignee"))
    );
    assert_eq!(
        (num(&all["value"]), all["scope"].clone()),
        (13.0, json!("tenant"))
    );
    for (scope, user, field) in [
        ("team", None, "assignee_user_id"),
        ("tenant", Some(fx.alice.user_id), "assignee_user_id"),
        ("everyone", None, "scope"),
    ] {
        let err = sqlx::query("select kpi_actual('revenue', $1, daterange($2, $3, '[]'), $4)")
            .bind(user)
            .bind(period.0)
            .bind(period.1)
            .bind(scope)
            .execute(&mut *tx)
            .await
            .expect_err(scope);
        assert_eq!(
            bizos_tests::field(&err).as_deref(),
            Some(field),
            "{scope}: {err}"
        );
        tx.rollback().await.unwrap();
        tx = db.as_user(&fx.director).await;
    }
    drop(tx);

    // Over HTTP: scope=team, and a scope that does not exist names the field.
    let app = spawn_app(&db).await;
    let path = |scope: &str| {
        format!(
            "/api/kpi/actuals?metric_key=leads_by_channel&assignee_user_id={}&scope={scope}&from={}&to={}",
            fx.manager.user_id, period.0, period.1
        )
    };
    let (status, body) = app.get_json(&fx.director, &path("team")).await;
    assert_eq!(status, 200, "{body}");
    let item = &body["items"][0];
    assert_eq!(
        (
            num(&item["value"]),
            item["scope"].clone(),
            item["team_size"].clone()
        ),
        (9.0, json!("team"), json!(4))
    );
    let (status, body) = app.get_json(&fx.director, &path("everyone")).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("scope")),
        "{body}"
    );
}

#[tokio::test]
async fn new_tenants_get_the_fixed_catalogue() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("fresh").await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select metric_key, assignee_scope, source from kpi_metric_definitions
          where tenant_id = $1 and (metric_key = 'leads_by_channel' or metric_key like 'ar\\_aging\\_%') order by metric_key collate \"C\"",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let want: Vec<(String, String, String)> = [
        "ar_aging_1_30",
        "ar_aging_31_60",
        "ar_aging_61_90",
        "ar_aging_current",
        "ar_aging_over_90",
        "leads_by_channel",
    ]
    .iter()
    .map(|k| (k.to_string(), "assignee".to_string(), "AUTO".to_string()))
    .collect();
    assert_eq!(rows, want);
}

/// The sums of v_ar_aging's per-customer rows (IDR) whose customer is owned
/// by one of `members` (all rows when None), as the caller sees them.
async fn aging_view(db: &TestDb, who: &Caller, members: Option<Vec<Uuid>>) -> HashMap<String, f64> {
    let mut tx = db.as_user(who).await;
    // V6's view ages by the session's current_date; read it on the tenant's
    // calendar so both sides age by the same day.
    sqlx::query("set local time zone 'Asia/Jakarta'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let row: (f64, f64, f64, f64, f64, f64) = sqlx::query_as(
        "select coalesce(sum(current), 0)::float8, coalesce(sum(d1_30), 0)::float8, coalesce(sum(d31_60), 0)::float8,
                coalesce(sum(d61_90), 0)::float8, coalesce(sum(d90_plus), 0)::float8, coalesce(sum(overdue), 0)::float8
           from v_ar_aging a
          where not a.is_total and a.currency = 'IDR'
            and ($1::uuid[] is null or exists (select 1 from prospects p
                                                 where p.tenant_id = a.tenant_id and p.customer_id = a.customer_id
                                                   and p.owner_user_id = any ($1)))",
    )
    .bind(members)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    HashMap::from([
        ("current".to_string(), row.0),
        ("d1_30".to_string(), row.1),
        ("d31_60".to_string(), row.2),
        ("d61_90".to_string(), row.3),
        ("d90_plus".to_string(), row.4),
        ("overdue".to_string(), row.5),
    ])
}

#[tokio::test]
async fn aging_metrics_reconcile_with_v_ar_aging() {
    let db = TestDb::new().await;
    let fx = fixture(&db).await;
    let today = fx.today;
    let (from, to) = (ago(today, 30), today);
    let a = fx.alice.user_id;
    let team = vec![fx.manager.user_id, a, fx.bob.user_id, fx.dave.user_id];
    let cases = [
        (&fx.director, None, "tenant", None),
        (&fx.director, Some(a), "assignee", Some(vec![a])),
        (
            &fx.director,
            Some(fx.manager.user_id),
            "team",
            Some(team.clone()),
        ),
        // AR-2: a salesperson reads the AR of customers their team owns
        // (alice and dave); her team KPI is the same money.
        (&fx.alice, Some(a), "team", None),
    ];
    for (who, user, scope, members) in cases {
        let view = aging_view(&db, who, members).await;
        let mut total = 0.0;
        for (metric, _, column) in AGING {
            let got = actual(&db, who, metric, user, from, to, scope).await;
            assert_eq!(got["status"], "ok", "{metric} {scope}: {got}");
            assert_eq!(
                num(&got["value"]),
                view[*column],
                "{metric} {scope}: {got} vs {view:?}"
            );
            total += view[*column];
        }
        assert!(total > 0.0, "{scope}: the fixture has receivables in scope");
        if scope == "tenant" {
            for (_, _, column) in AGING {
                assert!(view[*column] > 0.0, "every bucket holds money: {view:?}");
            }
            let overdue = actual(&db, who, "ar_overdue_amount", None, from, to, "tenant").await;
            assert_eq!(num(&overdue["value"]), view["overdue"]);
            assert_eq!(view["overdue"], total - view["current"]);
        }
    }
}

#[tokio::test]
async fn kpi_numbers_do_not_depend_on_the_session_time_zone() {
    let db = TestDb::new().await;
    let fx = fixture(&db).await;
    let today = fx.today;
    // The period runs past today: the as-of day is the tenant's today.
    let (from, to) = (ago(today, 120), ago(today, -1));
    let mut seen = Vec::new();
    for zone in ["Etc/GMT-14", "Etc/GMT+12"] {
        let mut tx = db.as_user(&fx.director).await;
        sqlx::query(&format!("set local time zone '{zone}'"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let session_day: NaiveDate = sqlx::query_scalar("select current_date")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let mut results = Vec::new();
        for (metric, _) in METRICS {
            for (user, scope) in [
                (Some(fx.alice.user_id), "assignee"),
                (Some(fx.manager.user_id), "team"),
                (None, "tenant"),
            ] {
                let v: Value =
                    sqlx::query_scalar("select kpi_actual($1, $2, daterange($3, $4, '[]'), $5)")
                        .bind(metric)
                        .bind(user)
                        .bind(from)
                        .bind(to)
                        .bind(scope)
                        .fetch_one(&mut *tx)
                        .await
                        .unwrap();
                assert_eq!(v["as_of"], json!(today), "{metric} at {zone}: {v}");
                results.push(v);
            }
        }
        for view in [
            "v_kpi_leads_daily",
            "v_kpi_leads_by_channel_daily",
            "v_kpi_spend_daily",
            "v_kpi_cpl_daily",
            "v_kpi_revenue_daily",
            "v_kpi_new_logos",
            "v_kpi_activities_daily",
        ] {
            let rows: Value = sqlx::query_scalar(&format!(
                "select coalesce(jsonb_agg(to_jsonb(v) order by to_jsonb(v)::text), '[]') from {view} v"
            ))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            assert!(
                rows.as_array().is_some_and(|r| !r.is_empty()),
                "{view} is empty"
            );
            results.push(json!({view: rows}));
        }
        // The lead 30 s before the tenant's midnight is yesterday's, the
        // one 30 s after is today's, whatever the session's day.
        let edge: Vec<(NaiveDate, i64)> = sqlx::query_as(
            "select day, sum(leads)::int8 from v_kpi_leads_daily where channel = 'event' and sales_owner_user_id = $1
              group by day order by day",
        )
        .bind(fx.alice.user_id)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(edge, vec![(ago(today, 1), 1), (today, 1)], "at {zone}");
        seen.push((session_day, results));
    }
    assert_ne!(
        seen[0].0, seen[1].0,
        "the two sessions are on different days"
    );
    assert_eq!(seen[0].1, seen[1].1);

    // Entries: the default day is the tenant's today and today is not
    // "in the future", read from either side of the date line.
    for (zone, date) in [
        ("Etc/GMT+12", None),
        ("Etc/GMT+12", Some(today)),
        ("Etc/GMT-14", Some(today)),
    ] {
        let mut tx = db.as_user(&fx.alice).await;
        sqlx::query(&format!("set local time zone '{zone}'"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let mut body = json!({"metric_key": "quotations_sent", "value": 1});
        if let Some(d) = date {
            body["entry_date"] = json!(d);
        }
        let out: Value = sqlx::query_scalar("select kpi_entry_create($1)")
            .bind(&body)
            .fetch_one(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{zone} {body}: {e}"));
        let entry: Uuid = out["entry_id"].as_str().unwrap().parse().unwrap();
        let day: NaiveDate =
            sqlx::query_scalar("select entry_date from kpi_entries where entry_id = $1")
                .bind(entry)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(day, today, "{zone} {body}");
        let err = sqlx::query("select kpi_entry_create($1)")
            .bind(
                json!({"metric_key": "quotations_sent", "value": 1, "entry_date": ago(today, -1)}),
            )
            .execute(&mut *tx)
            .await
            .expect_err("tomorrow is in the future");
        assert_eq!(bizos_tests::field(&err).as_deref(), Some("entry_date"));
    }
}
