//! Every figure of the digest restates a report: the SLA status of the
//! tickets (`v_sla_status`), the AR aging (`v_ar_aging`,
//! `v_invoice_outstanding`), the KPI actuals (`kpi_actual`,
//! `v_kpi_actual_vs_target`, `v_kpi_targets`, `v_kpi_revenue_daily`). Here
//! each one is read from its report, as a director reads it, for tenants in
//! five time zones (UTC-12 to UTC+14) against business calendars in WIB,
//! WITA and WIT, and must equal the digest's.
//!
//! The day summarised is the tenant's today, so that the reports "on the
//! tenant's today" (the aging) speak of the same day; instants later in
//! the day are stamped as given. The SLA figures take their due times from
//! `v_sla_status` and apply its rule at the end of each period instead of
//! at now() (`breached` once a due time passed without the response or
//! the resolution).
//!
//! On a clock of the calendar's days up to the tenant's date, a tenant west
//! of its calendar lost the tickets due in the last hours of its day, which
//! fall on the calendar's next day: against a WIB calendar a UTC-12 tenant
//! reported fewer breaches and pending overdue tickets than `v_sla_status`
//! gives.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use bizos_bff::auth::Caller;
use bizos_tests::TestDb;

/// Tenants' time zones: UTC-12, UTC-8/-7, UTC, WIB (+7) and UTC+14.
pub const TENANT_ZONES: [&str; 5] = [
    "Etc/GMT+12",
    "America/Los_Angeles",
    "Etc/UTC",
    "Asia/Jakarta",
    "Pacific/Kiritimati",
];

/// Business calendars: WIB (+7), WITA (+8), WIT (+9).
pub const CALENDAR_ZONES: [&str; 3] = ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"];

/// A tenant with the data set below, and the day its digest summarises.
pub struct Built {
    pub tenant: Uuid,
    pub director: Caller,
    pub day: NaiveDate,
}

const CUSTOMER_A: &str = "00000000-0000-0000-0000-00000000000a";
const CUSTOMER_B: &str = "00000000-0000-0000-0000-00000000000b";
const CUSTOMER_C: &str = "00000000-0000-0000-0000-00000000000c";

async fn run(db: &TestDb, sql: &str) {
    // One statement at a time: on Citus a DDL command's whole string goes
    // to the shards.
    sqlx::query(sql)
        .execute(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap()
}

fn ts(t: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", t.to_rfc3339())
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map_or("null::timestamptz".into(), ts)
}

/// Builds the data set of one tenant (time zone `zone`, business calendar
/// in `calendar`, open every day 08:00-17:00 so that every weekday has
/// hours), all relative to the tenant's today: invoices in every aging
/// bucket, payments, revenue and cash targets, a lead every 23 hours over
/// two months, and tickets of every priority in five states, every 41
/// minutes over the last two and a half days and every 13 hours before,
/// with a holiday in the calendar last month. Written with plain
/// statements (multi-row VALUES of literals), so that it builds the same on
/// a single node and on Citus.
pub async fn build(db: &TestDb, slug: &str, zone: &str, calendar: &str) -> Built {
    let tenant: Uuid = sqlx::query_scalar("select tenant_create($1, $2, $3)")
        .bind(slug)
        .bind(format!("Tenant {slug}"))
        .bind(zone)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let director = db.create_user(tenant, "director").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let seller2 = db.create_user(tenant, "salesperson").await;
    let (day, d1): (NaiveDate, DateTime<Utc>) = sqlx::query_as(
        "select tenant_today($1), (tenant_today($1) + 1)::timestamp at time zone $2",
    )
    .bind(tenant)
    .bind(zone)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let m0 = first_of_month(day);
    let pm0 = first_of_month(m0 - Duration::days(1));
    let t = format!("'{tenant}'::uuid");
    let d = |n: i64| format!("'{}'::date", day + Duration::days(n));

    run(
        db,
        &format!(
            "insert into business_calendars (tenant_id, time_zone) values ({t}, '{calendar}')
             on conflict (tenant_id) do update set time_zone = excluded.time_zone"
        ),
    )
    .await;
    run(
        db,
        &format!("delete from business_hours where tenant_id = {t}"),
    )
    .await;
    let hours: Vec<String> = (1..=7)
        .map(|w| format!("({t}, {w}, '08:00', '17:00')"))
        .collect();
    run(
        db,
        &format!(
            "insert into business_hours (tenant_id, weekday, opens_at, closes_at) values {}",
            hours.join(", ")
        ),
    )
    .await;
    run(
        db,
        &format!(
            "insert into holidays (tenant_id, holiday_date, name) values ({t}, '{}', 'Libur')",
            pm0 + Duration::days(3)
        ),
    )
    .await;
    run(
        db,
        &format!(
            "insert into customers (tenant_id, customer_id, company_name) values
               ({t}, '{CUSTOMER_A}', 'PT Alfa'), ({t}, '{CUSTOMER_B}', 'PT Beta'),
               ({t}, '{CUSTOMER_C}', 'PT Gamma')"
        ),
    )
    .await;
    run(
        db,
        &format!(
            "insert into prospects (tenant_id, prospect_id, customer_id, owner_user_id) values
               ({t}, '00000000-0000-0000-0000-0000000000a1', '{CUSTOMER_A}', '{s1}'),
               ({t}, '00000000-0000-0000-0000-0000000000b1', '{CUSTOMER_B}', '{s2}'),
               ({t}, '00000000-0000-0000-0000-0000000000c1', '{CUSTOMER_C}', '{s1}')",
            s1 = sales.user_id,
            s2 = seller2.user_id
        ),
    )
    .await;
    // (customer, issue, due, subtotal, tax, status, currency): current,
    // 1-30, 31-60, 61-90 and >90 days past due on the day; last month's;
    // a dollar invoice and a draft, which no IDR figure counts.
    let m = |n: i64| format!("'{}'::date", m0 + Duration::days(n));
    let p = |n: i64| format!("'{}'::date", pm0 + Duration::days(n));
    let invoices = [
        (
            "01",
            CUSTOMER_A,
            d(0),
            d(30),
            10_000_000,
            1_100_000,
            "ISSUED",
            "IDR",
        ),
        (
            "02",
            CUSTOMER_B,
            d(-1),
            d(-1),
            4_000_000,
            440_000,
            "ISSUED",
            "IDR",
        ),
        ("03", CUSTOMER_A, m(0), m(5), 6_000_000, 0, "ISSUED", "IDR"),
        ("04", CUSTOMER_C, p(9), p(14), 3_000_000, 0, "ISSUED", "IDR"),
        ("05", CUSTOMER_B, d(0), d(30), 1_000_000, 0, "ISSUED", "USD"),
        ("06", CUSTOMER_C, d(0), d(30), 5_000_000, 0, "DRAFT", "IDR"),
        (
            "07",
            CUSTOMER_C,
            d(-100),
            d(-95),
            2_000_000,
            0,
            "ISSUED",
            "IDR",
        ),
        (
            "08",
            CUSTOMER_B,
            d(-70),
            d(-65),
            1_500_000,
            0,
            "ISSUED",
            "IDR",
        ),
        (
            "09",
            CUSTOMER_A,
            d(-40),
            d(-35),
            2_500_000,
            250_000,
            "ISSUED",
            "IDR",
        ),
        ("10", CUSTOMER_B, p(2), p(20), 800_000, 0, "ISSUED", "IDR"),
    ];
    let rows: Vec<String> = invoices
        .iter()
        .map(|(n, c, issue, due, sub, tax, status, cur)| {
            format!(
                "({t}, '00000000-0000-0000-0000-0000000000{n}', '{c}', {issue}, {due}, {sub}, {tax}, '{status}', '{cur}')"
            )
        })
        .collect();
    run(
        db,
        &format!(
            "insert into invoices (tenant_id, invoice_id, customer_id, issue_date, due_date, subtotal, tax, status, currency)
             values {}",
            rows.join(", ")
        ),
    )
    .await;
    // Payments, never after the day nor before their invoice's issue date.
    let payments = [
        ("03", 1_500_000, d(0)),
        ("02", 440_000, d(0)),
        ("04", 500_000, p(12)),
        ("07", 700_000, d(-90)),
        ("10", 300_000, p(3)),
    ];
    let rows: Vec<String> = payments
        .iter()
        .map(|(n, amount, on)| {
            format!("({t}, '00000000-0000-0000-0000-0000000000{n}', {amount}, {on})")
        })
        .collect();
    run(
        db,
        &format!(
            "insert into payments (tenant_id, invoice_id, amount, paid_on) values {}",
            rows.join(", ")
        ),
    )
    .await;
    // Targets: the month's revenue of one salesperson, another's revenue
    // across the turn of the month, and a cash target.
    let next_month = first_of_month(m0 + Duration::days(32));
    run(
        db,
        &format!(
            "insert into kpi_targets (tenant_id, metric_key, assignee_user_id, period, target_value) values
               ({t}, 'revenue', '{s1}', '[{m0},{next_month})', 40000000),
               ({t}, 'revenue', '{s2}', '[{},{})', 31000000),
               ({t}, 'cash_collected', '{s1}', '[{m0},{next_month})', 5000000)",
            pm0 + Duration::days(15),
            m0 + Duration::days(15),
            s1 = sales.user_id,
            s2 = seller2.user_id
        ),
    )
    .await;

    // Leads every 23 hours back from the end of the day, a third of them
    // converted, stamped as given.
    run(db, "alter table leads disable trigger leads_lifecycle").await;
    run(
        db,
        "alter table leads disable trigger leads_stamp_timestamps",
    )
    .await;
    let rows: Vec<String> = (0..70)
        .map(|k| {
            let at = d1 - Duration::minutes(k * 23 * 60 + 7);
            let status = if k % 3 == 0 { "CONVERTED" } else { "NEW" };
            format!(
                "({t}, 'website', 'L{k}', '{CUSTOMER_A}', '00000000-0000-0000-0000-0000000000a1', '{status}', {})",
                ts(at)
            )
        })
        .collect();
    run(
        db,
        &format!(
            "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, status, created_at)
             values {}",
            rows.join(", ")
        ),
    )
    .await;
    run(db, "alter table leads enable trigger leads_lifecycle").await;
    run(
        db,
        "alter table leads enable trigger leads_stamp_timestamps",
    )
    .await;

    // Tickets: every 41 minutes over the last 61 hours of the day, every 13
    // hours over the 70 days before; five states in turn (open untouched;
    // answered in 20 minutes and resolved in 3 hours; answered after 2
    // hours and still open; closed after 26 hours unanswered; answered in
    // 5 minutes and still open) and four priorities.
    let mut created: Vec<DateTime<Utc>> =
        (1..=90).map(|k| d1 - Duration::minutes(k * 41)).collect();
    created.extend((0..130).map(|k| d1 - Duration::hours(62 + k * 13)));
    let priorities = ["urgent", "high", "normal", "low"];
    let rows: Vec<String> = created
        .iter()
        .enumerate()
        .map(|(k, at)| {
            format!(
                "({t}, 'complaint', 'T{k}', '{}', 'OPS', {})",
                priorities[k % 4],
                ts(*at)
            )
        })
        .collect();
    run(
        db,
        "alter table tickets disable trigger tickets_stamp_timestamps",
    )
    .await;
    run(
        db,
        "alter table tickets disable trigger tickets_lifecycle_ticket",
    )
    .await;
    run(db, "alter table tickets disable trigger tickets_sla_stamp").await;
    run(
        db,
        &format!(
            "insert into tickets (tenant_id, ticket_type, subject, priority, dept_target, created_at) values {}",
            rows.join(", ")
        ),
    )
    .await;
    let rows: Vec<String> = created
        .iter()
        .enumerate()
        .map(|(k, at)| {
            let after = |m: i64| Some(*at + Duration::minutes(m));
            let (status, response, resolved, closed) = match k % 5 {
                0 => ("OPEN", None, None, None),
                1 => ("RESOLVED", after(20), after(180), None),
                2 => ("OPEN", after(120), None, None),
                3 => ("CLOSED", None, None, after(26 * 60)),
                _ => ("OPEN", after(5), None, None),
            };
            format!(
                "('T{k}', '{status}', {}, {}, {})",
                opt_ts(response),
                opt_ts(resolved),
                opt_ts(closed)
            )
        })
        .collect();
    run(
        db,
        &format!(
            "update tickets t set ticket_status = v.status, first_response_at = v.response,
                    resolved_at = v.resolved, closed_at = v.closed
               from (values {}) v (subject, status, response, resolved, closed)
              where t.tenant_id = {t} and t.subject = v.subject",
            rows.join(", ")
        ),
    )
    .await;
    run(
        db,
        "alter table tickets enable trigger tickets_stamp_timestamps",
    )
    .await;
    run(
        db,
        "alter table tickets enable trigger tickets_lifecycle_ticket",
    )
    .await;
    run(db, "alter table tickets enable trigger tickets_sla_stamp").await;
    Built {
        tenant,
        director,
        day,
    }
}

/// digest_aggregates as the worker's login calls it (in a transaction
/// block, as the job does).
pub async fn aggregates(db: &TestDb, tenant: Uuid, day: NaiveDate) -> Value {
    let worker = db.pool_as("bizos_worker");
    let mut tx = worker.begin().await.unwrap();
    let a: Value = sqlx::query_scalar("select digest_aggregates($1, $2)")
        .bind(tenant)
        .bind(day)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    a
}

fn date(a: &Value, key: &str) -> NaiveDate {
    a[key].as_str().unwrap().parse().unwrap()
}

/// Every figure of the digest of `day`, each read from the report it
/// restates, as the tenant's director reads them.
async fn from_the_reports(db: &TestDb, built: &Built, a: &Value) -> (Map<String, Value>, Value) {
    let day = built.day;
    let prev = date(a, "prev_day");
    let m0 = date(a, "month_start");
    let pm0 = date(a, "prev_month_start");
    let pm_end = date(a, "prev_month_end");
    let mut tx = db.as_user(&built.director).await;
    let mut f = Map::new();

    // SLA (v_sla_status): its due times; breached in a period when a due
    // time passed before the period's end without the response (or the
    // resolution) by then; pending at the end of the day when not
    // finished by then, overdue when a due time passed by then.
    let sla: Value = sqlx::query_scalar(
        "with z as (select t.time_zone as tz from tenants t where t.tenant_id = $1),
              b as (select $2::timestamp at time zone z.tz as d0, ($2 + 1)::timestamp at time zone z.tz as d1,
                           $3::timestamp at time zone z.tz as p0, ($3 + 1)::timestamp at time zone z.tz as p1,
                           $4::timestamp at time zone z.tz as m0, $5::timestamp at time zone z.tz as pm0,
                           ($6 + 1)::timestamp at time zone z.tz as pm1
                      from z),
              s as (select s.*, coalesce(s.first_response_at, s.resolved_at, s.closed_at, s.cancelled_at) as responded,
                           coalesce(s.resolved_at, s.closed_at, s.cancelled_at) as finished
                      from v_sla_status s where s.tenant_id = $1),
              p as (select x.* from b cross join lateral (values
                      ('sla_breaches_day', b.d0, b.d1), ('sla_breaches_prev_day', b.p0, b.p1),
                      ('sla_breaches_mtd', b.m0, b.d1), ('sla_breaches_prev_mtd', b.pm0, b.pm1)) x (name, f, t))
         select jsonb_object_agg(p.name, (
                  select count(*) from s
                   where s.created_at >= p.f and s.created_at < p.t
                     and ((s.response_due_at < p.t and coalesce(s.responded, 'infinity') > s.response_due_at)
                          or (s.resolution_due_at < p.t and coalesce(s.finished, 'infinity') > s.resolution_due_at))))
                || (select jsonb_build_object(
                      'tickets_pending', count(*),
                      'tickets_pending_overdue', count(*) filter (where s.resolution_due_at < b.d1
                          or (coalesce(s.first_response_at, 'infinity') >= b.d1 and s.response_due_at < b.d1)))
                      from s, b where s.created_at < b.d1 and coalesce(s.finished, 'infinity') >= b.d1)
           from p",
    )
    .bind(built.tenant)
    .bind(day)
    .bind(prev)
    .bind(m0)
    .bind(pm0)
    .bind(pm_end)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    f.extend(sla.as_object().unwrap().clone());

    // Revenue, cash and new leads: the KPI actuals of the tenant over each
    // period (kpi_actual: `revenue`, `cash_collected`, `leads_by_channel`).
    let kpis: Value = sqlx::query_scalar(
        "select jsonb_object_agg(k.metric || p.suffix,
                  (kpi_actual(k.key, null, daterange(p.f, p.t + 1), 'tenant') ->> 'value')::numeric)
           from (values ('revenue', 'revenue_invoiced'), ('cash_collected', 'revenue_collected'),
                        ('leads_by_channel', 'leads_new')) k (key, metric)
          cross join (values ('_day', $1::date, $1::date), ('_prev_day', $2, $2), ('_mtd', $3, $1),
                             ('_prev_mtd', $4, $5)) p (suffix, f, t)",
    )
    .bind(day)
    .bind(prev)
    .bind(m0)
    .bind(pm0)
    .bind(pm_end)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    f.extend(kpis.as_object().unwrap().clone());

    // Converted leads: the leads the director lists, created in the month
    // to date (the tenant's days), now CONVERTED.
    let converted: Value = sqlx::query_scalar(
        "select jsonb_build_object(
                  'leads_converted_mtd', count(*) filter (where tenant_date(l.created_at) between $1 and $2),
                  'converted_prev_mtd', count(*) filter (where tenant_date(l.created_at) between $3 and $4))
           from leads l where l.tenant_id = bizos.tenant_id() and l.status = 'CONVERTED'",
    )
    .bind(m0)
    .bind(day)
    .bind(pm0)
    .bind(pm_end)
    .fetch_one(&mut *tx)
    .await
    .unwrap();

    // The month's revenue target (v_kpi_targets, each target prorated to
    // its days in the month).
    let target: Option<f64> = sqlx::query_scalar(
        "select round(sum(t.target_value * (least(t.period_end, $2) - greatest(t.period_start, $1) + 1)
                                     / (t.period_end - t.period_start + 1)))::float8
           from v_kpi_targets t
          where t.metric_key = 'revenue' and t.period_start <= $2 and t.period_end >= $1",
    )
    .bind(m0)
    .bind(first_of_month(m0 + Duration::days(32)) - Duration::days(1))
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    f.insert("revenue_target_month".into(), json!(target));

    // Receivables: the aging's total of IDR on the tenant's today (= the
    // day), and the KPI `ar_overdue_amount` at the end of last month.
    let ar: Value = sqlx::query_scalar(
        "select jsonb_build_object('ar_outstanding', a.outstanding, 'ar_overdue', a.overdue,
                                   'ar_overdue_1_30', a.d1_30, 'ar_overdue_31_60', a.d31_60,
                                   'ar_overdue_61_90', a.d61_90, 'ar_overdue_over_90', a.d90_plus,
                                   'ar_overdue_month_start',
                                   (kpi_actual('ar_overdue_amount', null, daterange($1, $2), 'tenant') ->> 'value')::numeric)
           from v_ar_aging a
          where a.tenant_id = bizos.tenant_id() and a.is_total and a.currency = 'IDR'",
    )
    .bind(pm0)
    .bind(m0)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    f.extend(ar.as_object().unwrap().clone());

    // Lists: the largest customers by revenue (v_kpi_revenue_daily), the
    // largest overdue balances (v_ar_aging per customer, the days past due
    // from v_invoice_outstanding), the KPI attainment and the targets'
    // states (v_kpi_actual_vs_target).
    let lists: Value = sqlx::query_scalar(
        "select jsonb_build_object(
           'top_customers', (select coalesce(jsonb_agg(jsonb_build_object('customer_id', x.customer_id,
                                'company_name', x.company_name, 'invoiced_mtd', round(x.amount))
                                order by x.amount desc, x.customer_id), '[]')
                               from (select r.customer_id, c.company_name, sum(r.revenue) as amount
                                       from v_kpi_revenue_daily r
                                       join customers c on c.tenant_id = r.tenant_id and c.customer_id = r.customer_id
                                      where r.tenant_id = bizos.tenant_id() and r.currency = 'IDR'
                                        and r.day between $1 and $2
                                      group by 1, 2 order by 3 desc, 1 limit 5) x),
           'largest_overdue', (select coalesce(jsonb_agg(jsonb_build_object('customer_id', x.customer_id,
                                'company_name', x.company_name, 'overdue', round(x.overdue),
                                'days_past_due', x.days) order by x.overdue desc, x.customer_id), '[]')
                               from (select a.customer_id, a.company_name, a.overdue,
                                            (select max(o.days_past_due) from v_invoice_outstanding o
                                              where o.tenant_id = a.tenant_id and o.customer_id = a.customer_id
                                                and o.currency = 'IDR') as days
                                       from v_ar_aging a
                                      where a.tenant_id = bizos.tenant_id() and not a.is_total
                                        and a.currency = 'IDR' and a.overdue > 0
                                      order by a.overdue desc, a.customer_id limit 5) x),
           'kpi', (select coalesce(jsonb_agg(jsonb_build_object('metric_key', k.metric_key, 'name', k.metric_name,
                                'direction', k.direction, 'targets', k.targets, 'attainment_pct', k.attainment,
                                'in_progress', k.in_progress, 'achieved', k.achieved, 'missed', k.missed)
                                order by k.metric_key), '[]')
                     from (select v.metric_key, v.metric_name, v.direction, count(*) as targets,
                                  round(avg(v.actual_value / v.target_value * 100), 1) as attainment,
                                  count(*) filter (where v.target_status = 'in_progress') as in_progress,
                                  count(*) filter (where v.target_status = 'achieved') as achieved,
                                  count(*) filter (where v.target_status = 'missed') as missed
                             from v_kpi_actual_vs_target v
                            where v.tenant_id = bizos.tenant_id() and $2 between v.period_start and v.period_end
                              and v.target_value > 0 and v.actual_value is not null
                            group by 1, 2, 3) k))",
    )
    .bind(m0)
    .bind(day)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();

    // What follows from the figures above.
    let n = |f: &Map<String, Value>, k: &str| f[k].as_f64().unwrap();
    let pct = |cur: f64, of: f64| -> Value {
        if of > 0.0 {
            json!(((cur - of) / of * 1000.0).round() / 10.0)
        } else {
            Value::Null
        }
    };
    let share = |part: f64, of: f64| -> Value {
        if of > 0.0 {
            json!((part / of * 1000.0).round() / 10.0)
        } else {
            Value::Null
        }
    };
    let month_days = (first_of_month(m0 + Duration::days(32)) - m0).num_days() as f64;
    let elapsed = ((day - m0).num_days() + 1) as f64;
    let mut g = f.clone();
    g.insert(
        "revenue_target_attainment_pct".into(),
        share(n(&f, "revenue_invoiced_mtd"), target.unwrap_or(0.0)),
    );
    g.insert(
        "month_elapsed_pct".into(),
        json!((elapsed / month_days * 1000.0).round() / 10.0),
    );
    g.insert(
        "leads_converted_mtd".into(),
        converted["leads_converted_mtd"].clone(),
    );
    g.insert(
        "lead_conversion_pct_mtd".into(),
        share(
            converted["leads_converted_mtd"].as_f64().unwrap(),
            n(&f, "leads_new_mtd"),
        ),
    );
    g.insert(
        "lead_conversion_pct_prev_mtd".into(),
        share(
            converted["converted_prev_mtd"].as_f64().unwrap(),
            n(&f, "leads_new_prev_mtd"),
        ),
    );
    for (cur, prev) in [
        ("revenue_invoiced_day", "revenue_invoiced_prev_day"),
        ("revenue_invoiced_mtd", "revenue_invoiced_prev_mtd"),
        ("revenue_collected_day", "revenue_collected_prev_day"),
        ("revenue_collected_mtd", "revenue_collected_prev_mtd"),
        ("leads_new_day", "leads_new_prev_day"),
        ("leads_new_mtd", "leads_new_prev_mtd"),
        ("sla_breaches_mtd", "sla_breaches_prev_mtd"),
        ("ar_overdue", "ar_overdue_month_start"),
    ] {
        g.insert(format!("{cur}_change_pct"), pct(n(&f, cur), n(&f, prev)));
    }
    (g, lists)
}

/// Numbers compared as numbers (the database's 10000000.00 is 1e7).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a.as_f64() == b.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn every_figure_equals_its_report_for_tenants_from_utc_minus_12_to_plus_14_on_wib_wita_wit_calendars(
) {
    let db = TestDb::new().await;
    let mut differences = Vec::new();
    let mut checked = 0;
    for (i, zone) in TENANT_ZONES.iter().enumerate() {
        for (j, calendar) in CALENDAR_ZONES.iter().enumerate() {
            let built = build(&db, &format!("digest-tz-{i}-{j}"), zone, calendar).await;
            let a = aggregates(&db, built.tenant, built.day).await;
            assert_eq!(a["day"], json!(built.day.to_string()), "{a}");
            let (want, lists) = from_the_reports(&db, &built, &a).await;
            let got = a["figures"].as_object().unwrap();
            assert_eq!(
                got.keys().collect::<BTreeSet<_>>(),
                want.keys().collect::<BTreeSet<_>>(),
                "every figure has its report"
            );
            for (key, w) in &want {
                if !same(&got[key], w) {
                    differences.push(format!(
                        "{zone} on a {calendar} calendar, {}: {key} = {} in the digest, {w} in its report",
                        built.day, got[key]
                    ));
                }
                checked += 1;
            }
            for list in ["top_customers", "largest_overdue", "kpi"] {
                if !same(&a[list], &lists[list]) {
                    differences.push(format!(
                        "{zone} on a {calendar} calendar, {}: {list} = {} in the digest, {} in its report",
                        built.day, a[list], lists[list]
                    ));
                }
                checked += 1;
            }
            // The data set reaches every list and bucket.
            assert!(
                a["kpi"].as_array().unwrap().len() == 2
                    && a["largest_overdue"].as_array().unwrap().len() == 3
                    && got["tickets_pending_overdue"].as_f64().unwrap() > 0.0
                    && got["sla_breaches_day"].as_f64().unwrap() > 0.0,
                "{a}"
            );
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {checked} figures differ from their reports:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
