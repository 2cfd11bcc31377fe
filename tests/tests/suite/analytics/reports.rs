//! Reports for analysts and BI (V19): the product's reporting views in
//! schema `analytics`, read as `bizos_analyst` and `bizos_bi`. Each equals
//! the product view read by a super admin of the tenant through the user
//! path (masked like the table views), lists only granted tenants, shows no
//! raw personal data, cannot be written, and the reports reconcile.

use std::collections::BTreeSet;

use bizos_tests::{admin_url, code, TestDb};
use sqlx::{PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

const REPORTS: [&str; 7] = [
    "v_ar_aging",
    "v_dso_rolling_30",
    "v_invoice_outstanding",
    "v_kpi_actual_vs_target",
    "v_sla_status",
    "v_ticket_first_response",
    "v_ticket_first_response_daily_median",
];

/// The AI cost and margin reports (V26): the demo makes no AI calls, so
/// they are checked on calls of their own in `llm_sql`.
const LLM_REPORTS: [&str; 3] = [
    "v_llm_cost_daily",
    "v_llm_cost_monthly",
    "v_llm_margin_monthly",
];

/// The RFM reports (V30): the demo computes no RFM snapshot, so they are
/// checked on snapshots of their own in `rfm`.
const RFM_REPORTS: [&str; 2] = ["v_rfm_customers", "v_rfm_segment_summary"];

/// The operator's billing report (V54): the demo has no subscriptions, so
/// it is reconciled with the invoices in `billing`.
const BILLING_REPORTS: [&str; 1] = ["v_billing_tenants"];

/// Every listed report, in name order.
fn all_reports() -> Vec<&'static str> {
    let mut all: Vec<&str> = REPORTS
        .iter()
        .chain(LLM_REPORTS.iter())
        .chain(RFM_REPORTS.iter())
        .chain(BILLING_REPORTS.iter())
        .copied()
        .collect();
    all.sort();
    all
}

/// `row(<each column of the product view through its masker>)::text`, the
/// maskers being the ones of the table views (analytics_masking by view and
/// column, else pii_mask for text and json, else the value; instants as
/// epoch seconds, see [`zone_free_row_expr`]).
async fn masked_row_expr(db: &TestDb, view: &str) -> String {
    let cols: Vec<(String, String)> = sqlx::query_as(
        "select a.attname::text,
                coalesce(m.masker, case when t.typcategory = 'S' or t.typname in ('json', 'jsonb')
                                        then 'text'
                                        when t.typname = 'timestamptz' then 'timestamptz'
                                        else 'raw' end)
           from pg_attribute a
           join pg_type t on t.oid = a.atttypid
           left join analytics_masking m on m.table_name = $1 and m.column_name = a.attname
          where a.attrelid = ('public.' || $1)::regclass and a.attnum > 0 and not a.attisdropped
          order by a.attnum",
    )
    .bind(view)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(cols.len() >= 5, "{view}: {cols:?}");
    let exprs: Vec<String> = cols
        .iter()
        .map(|(c, masker)| match masker.as_str() {
            "email" | "phone" | "nik" | "name" => format!("bizos.mask_{masker}(t.{c}::text)"),
            "redact" => format!("case when t.{c} is null then null else '[REDACTED]' end"),
            "text" => format!("bizos.pii_mask(t.{c}::text)"),
            "timestamptz" => format!("extract(epoch from t.{c})"),
            _ => format!("t.{c}"),
        })
        .collect();
    format!("row({})::text", exprs.join(", "))
}

async fn sorted_rows(tx: &mut Transaction<'static, Postgres>, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut **tx).await.unwrap();
    rows.sort();
    rows
}

async fn analytics_rows(pool: &PgPool, view: &str, tenant: Uuid) -> Vec<String> {
    let mut rows: Vec<String> = sqlx::query_scalar(&format!(
        "select t::text from analytics.{view} t where t.tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap_or_else(|e| panic!("analytics.{view}: {e}"));
    rows.sort();
    rows
}

async fn listed_reports(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar("select view_name::text from analytics_reports order by 1")
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn each_report_equals_the_product_view_read_by_a_super_admin() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    assert_eq!(listed_reports(&db).await, all_reports());
    let analyst = db.pool_as("bizos_analyst");
    let bi = db.pool_as("bizos_bi");
    for tenant in [a, b] {
        let admin = db.create_user(tenant, "super_admin").await;
        for view in REPORTS {
            let expr = masked_row_expr(&db, view).await;
            let mut tx = db.as_user(&admin).await;
            // In the tenant's time zone: the reports cut "today" there
            // whatever the reader's session uses (a product view that reads
            // current_date depends on the session's).
            sqlx::query(
                "select set_config('TimeZone', (select time_zone from tenants where tenant_id = $1), true)",
            )
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
            let want = sorted_rows(&mut tx, &format!("select {expr} from public.{view} t")).await;
            tx.rollback().await.unwrap();
            assert!(
                !want.is_empty(),
                "the demo gives {tenant} no rows in {view}"
            );
            let got_expr = zone_free_row_expr(&db, view).await;
            for (role, pool) in [("bizos_analyst", &analyst), ("bizos_bi", &bi)] {
                let mut got: Vec<String> = sqlx::query_scalar(&format!(
                    "select {got_expr} from analytics.{view} t where t.tenant_id = $1"
                ))
                .bind(tenant)
                .fetch_all(pool)
                .await
                .unwrap();
                got.sort();
                assert!(
                    got == want,
                    "{role}: analytics.{view} of {tenant} ({} rows) differs from the product view ({} rows):\n\
                     only in analytics: {:?}\nonly in the product: {:?}",
                    got.len(),
                    want.len(),
                    got.iter().filter(|r| !want.contains(r)).take(3).collect::<Vec<_>>(),
                    want.iter().filter(|r| !got.contains(r)).take(3).collect::<Vec<_>>()
                );
            }
        }
        // KPI actuals are kpi_actual() itself, as the super admin calls it
        // for each target; the demo gives some that are numbers.
        let mut tx = db.as_user(&admin).await;
        let mut want: Vec<(Uuid, Option<String>, String)> = sqlx::query_as(
            "select t.target_id, (k ->> 'value'), k ->> 'status'
               from kpi_targets t, kpi_actual(t.metric_key, t.assignee_user_id, t.period) k",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.unwrap();
        let mut got: Vec<(Uuid, Option<String>, String)> = sqlx::query_as(
            "select target_id, actual_value::text, status from analytics.v_kpi_actual_vs_target
              where tenant_id = $1",
        )
        .bind(tenant)
        .fetch_all(&bi)
        .await
        .unwrap();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert!(
            got.iter()
                .filter(|(_, v, s)| v.is_some() && s == "ok")
                .count()
                >= 3,
            "{got:?}"
        );
    }
}

#[tokio::test]
async fn the_reports_reconcile() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    let analyst = db.pool_as("bizos_analyst");
    for tenant in [a, b] {
        // Aging total = outstanding total = DSO's AR today, per currency;
        // each aging bucket = the invoices in that bucket.
        let rows = sqlx::query(
            "with o as (
               select currency, sum(outstanding) as outstanding,
                      sum(outstanding) filter (where is_overdue) as overdue,
                      sum(outstanding) filter (where aging_bucket = 'current') as b0,
                      sum(outstanding) filter (where aging_bucket = '1-30') as b1,
                      sum(outstanding) filter (where aging_bucket = '31-60') as b2,
                      sum(outstanding) filter (where aging_bucket = '61-90') as b3,
                      sum(outstanding) filter (where aging_bucket = '>90') as b4
                 from analytics.v_invoice_outstanding
                where tenant_id = $1 and outstanding > 0 group by currency
             ), g as (
               select currency, outstanding, overdue, current as b0, d1_30 as b1, d31_60 as b2,
                      d61_90 as b3, d90_plus as b4
                 from analytics.v_ar_aging where tenant_id = $1 and is_total
             ), c as (
               select currency, sum(outstanding) as outstanding
                 from analytics.v_ar_aging where tenant_id = $1 and not is_total group by currency
             ), d as (
               select currency, ar_outstanding from analytics.v_dso_rolling_30
                where tenant_id = $1 and day = (select max(day) from analytics.v_dso_rolling_30
                                                 where tenant_id = $1)
             )
             select coalesce(o.currency, g.currency) as currency,
                    o.outstanding::text as invoices, g.outstanding::text as aging,
                    c.outstanding::text as customers, d.ar_outstanding::text as dso_ar,
                    (coalesce(o.overdue, 0) = g.overdue and coalesce(o.b0, 0) = g.b0
                     and coalesce(o.b1, 0) = g.b1 and coalesce(o.b2, 0) = g.b2
                     and coalesce(o.b3, 0) = g.b3 and coalesce(o.b4, 0) = g.b4) as buckets_agree
               from o full join g on g.currency = o.currency
               left join c on c.currency = coalesce(o.currency, g.currency)
               left join d on d.currency = coalesce(o.currency, g.currency)",
        )
        .bind(tenant)
        .fetch_all(&analyst)
        .await
        .unwrap();
        assert!(!rows.is_empty(), "no receivables for {tenant}");
        for r in &rows {
            let currency: String = r.get("currency");
            let invoices: Option<String> = r.get("invoices");
            let aging: Option<String> = r.get("aging");
            assert!(invoices.is_some(), "{currency}");
            assert_eq!(invoices, aging, "{tenant} {currency}: outstanding vs aging");
            assert_eq!(
                r.get::<Option<String>, _>("customers"),
                aging,
                "{tenant} {currency}: aging customers vs its total"
            );
            assert_eq!(
                r.get::<Option<String>, _>("dso_ar"),
                aging,
                "{tenant} {currency}: DSO's AR today vs aging"
            );
            assert_eq!(
                r.get::<Option<bool>, _>("buckets_agree"),
                Some(true),
                "{tenant} {currency}"
            );
        }
        // One SLA row and one first-response row per ticket; the daily
        // medians count every ticket and every responded one once.
        let (sla, first, responded, daily, daily_responded): (i64, i64, i64, i64, i64) =
            sqlx::query_as(
                "select (select count(*) from analytics.v_sla_status where tenant_id = $1),
                        (select count(*) from analytics.v_ticket_first_response where tenant_id = $1),
                        (select count(first_response_at) from analytics.v_ticket_first_response
                          where tenant_id = $1),
                        (select sum(tickets)::bigint from analytics.v_ticket_first_response_daily_median
                          where tenant_id = $1),
                        (select sum(responded)::bigint from analytics.v_ticket_first_response_daily_median
                          where tenant_id = $1)",
            )
            .bind(tenant)
            .fetch_one(&analyst)
            .await
            .unwrap();
        assert!(sla > 0 && responded > 0, "{sla} {responded}");
        assert_eq!((first, daily, daily_responded), (sla, sla, responded));
    }
}

/// A login role of the cluster for one test, dropped at the end.
struct TempRole {
    name: String,
}

impl TempRole {
    async fn create(member_of: &str) -> TempRole {
        let name = format!("t_{}_bi", Uuid::new_v4().simple());
        admin_exec(&format!(
            "create role {name} login inherit in role {member_of}"
        ))
        .await;
        TempRole { name }
    }
}

impl Drop for TempRole {
    fn drop(&mut self) {
        let sql = format!("drop owned by {0}; drop role if exists {0}", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
    }
}

async fn admin_exec(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
}

/// Every row of every report the pool's login sees, per report.
async fn all_rows(pool: &PgPool, prefix: &str) -> Vec<(String, BTreeSet<String>, BTreeSet<Uuid>)> {
    let mut conn = pool.acquire().await.unwrap();
    if !prefix.is_empty() {
        sqlx::query(prefix).execute(&mut *conn).await.unwrap();
    }
    let mut out = Vec::new();
    for view in REPORTS {
        let rows: Vec<(String, Uuid)> = sqlx::query_as(&format!(
            "select t::text, t.tenant_id from analytics.{view} t"
        ))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        out.push((
            view.to_owned(),
            rows.iter().map(|r| r.0.clone()).collect(),
            rows.iter().map(|r| r.1).collect(),
        ));
    }
    out
}

#[tokio::test]
async fn a_login_granted_one_tenant_sees_only_its_reports() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    let role = TempRole::create("bizos_bi").await;
    let scoped = db.pool_as(&role.name);
    for (view, rows, _) in all_rows(&scoped, "").await {
        assert!(rows.is_empty(), "{view} without a grant: {rows:?}");
    }
    sqlx::query("insert into analytics_grants (role_name, tenant_id) values ($1, $2)")
        .bind(&role.name)
        .bind(a)
        .execute(&db.owner)
        .await
        .unwrap();
    let analyst = db.pool_as("bizos_analyst");
    let everything = all_rows(&analyst, "").await;
    for prefix in ["", "set role bizos_bi"] {
        let seen = all_rows(&scoped, prefix).await;
        for ((view, rows, tenants), (_, all, all_tenants)) in seen.iter().zip(&everything) {
            assert_eq!(all_tenants, &BTreeSet::from([a, b]), "{view}");
            assert_eq!(tenants, &BTreeSet::from([a]), "{view} ({prefix})");
            // Exactly tenant A's rows, as the unscoped analyst sees them.
            let of_a: BTreeSet<String> = analytics_rows(&analyst, view, a)
                .await
                .into_iter()
                .collect();
            assert!(!of_a.is_empty() && of_a.len() < all.len(), "{view}");
            assert_eq!(rows, &of_a, "{view} ({prefix})");
        }
    }
    // A caller's predicate cannot reach B (security barrier), and the
    // caller's own claims change nothing.
    let n: i64 = sqlx::query_scalar(
        "select count(*) from analytics.v_invoice_outstanding where tenant_id = $1",
    )
    .bind(b)
    .fetch_one(&scoped)
    .await
    .unwrap();
    assert_eq!(n, 0);
    let claims = format!(
        "select set_config('request.jwt.claims', '{{\"tenant_id\": \"{b}\", \"app_role\": \"super_admin\"}}', false)"
    );
    let with_claims = all_rows(&scoped, &claims).await;
    for ((view, rows, _), (_, before, _)) in with_claims.iter().zip(&all_rows(&scoped, "").await) {
        assert_eq!(rows, before, "{view} with the caller's claims for B");
    }
    // The caller's claims are as they were after a report is read.
    let mut tx = scoped.begin().await.unwrap();
    let mine = format!("{{\"tenant_id\": \"{b}\"}}");
    sqlx::query("select set_config('request.jwt.claims', $1, true)")
        .bind(&mine)
        .execute(&mut *tx)
        .await
        .unwrap();
    let (n, after): (i64, String) = sqlx::query_as(
        "select (select count(*) from analytics.v_kpi_actual_vs_target),
                current_setting('request.jwt.claims')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let after_next: String = sqlx::query_scalar("select current_setting('request.jwt.claims')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(n > 0);
    assert_eq!((after, after_next), (mine.clone(), mine));
    // The function behind the reports reads listed reports only: not a
    // table's rows, not for a role without the grant.
    for sql in [
        "select count(*) from analytics_report_rows('public.invoices') t (tenant_id uuid)",
        "select count(*) from analytics_report_rows('public.v_invoices') t (tenant_id uuid)",
        "select count(*) from analytics_report_rows('analytics.v_ar_aging') t (tenant_id uuid)",
    ] {
        let err = sqlx::query(sql).fetch_one(&scoped).await.expect_err(sql);
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    let err = sqlx::query(
        "select count(*) from analytics_report_rows('public.v_ar_aging') t (tenant_id uuid)",
    )
    .fetch_one(&db.app)
    .await
    .expect_err("bizos_app");
    assert_eq!(code(&err), "42501", "{err}");
}

#[tokio::test]
async fn reports_show_no_raw_personal_data() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    // A company name carrying a phone and an e-mail, on a customer with an
    // open invoice (it shows in the outstanding and aging reports).
    let customer: Uuid = sqlx::query_scalar(
        "update customers c set company_name = 'PT Sinar Budi 0812-7777-3456 budi.sinar@gmail.com'
          where (c.tenant_id, c.customer_id) = (
                 select i.tenant_id, i.customer_id from invoices i
                  where i.tenant_id = $1 and i.status = 'ISSUED' and i.total > i.amount_paid
                  order by i.invoice_id limit 1)
         returning c.customer_id",
    )
    .bind(a)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    // The product view shows it raw to the tenant's super admin.
    let admin = db.create_user(a, "super_admin").await;
    let mut tx = db.as_user(&admin).await;
    let raw: Vec<String> = sqlx::query_scalar(
        "select company_name from v_ar_aging where customer_id = $1
         union all select company_name from v_invoice_outstanding where customer_id = $1",
    )
    .bind(customer)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        raw.len() >= 2 && raw.iter().all(|n| n.contains("0812-7777-3456")),
        "{raw:?}"
    );

    let mut personal: BTreeSet<String> = sqlx::query_scalar::<_, Option<String>>(
        "select v from (
           select email as v from profiles union all select full_name from profiles
           union all select email from customers union all select phone from customers
           union all select npwp from customers union all select contact_email from leads
           union all select contact_phone from leads union all select contact_name from leads
           union all select npwp from leads union all select contact_email from tickets
           union all select contact_phone from tickets union all select contact_name from tickets) x",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
    .into_iter()
    .flatten()
    .filter(|v| v.len() >= 6)
    .collect();
    assert!(personal.len() > 50, "{}", personal.len());
    personal.extend([
        "0812-7777-3456".to_owned(),
        "budi.sinar@gmail.com".to_owned(),
    ]);

    for role in ["bizos_analyst", "bizos_bi"] {
        let pool = db.pool_as(role);
        let mut dump = String::new();
        for view in REPORTS {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("select t::text from analytics.{view} t"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            assert!(!rows.is_empty(), "{view}");
            for r in rows {
                dump.push_str(&r);
                dump.push('\n');
            }
        }
        // Called directly, the function behind the reports shows the same
        // masked rows.
        let columns: String = sqlx::query_scalar(
            "select string_agg(format('%I %s', attname, format_type(atttypid, atttypmod)), ', '
                               order by attnum)
               from pg_attribute
              where attrelid = 'analytics.v_invoice_outstanding'::regclass and attnum > 0",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
        let direct: Vec<String> = sqlx::query_scalar(&format!(
            "select company_name
               from analytics_report_rows('public.v_invoice_outstanding') t ({columns})
              where customer_id = $1"
        ))
        .bind(customer)
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| panic!("{role}: {e}"));
        assert!(!direct.is_empty(), "{role}");
        for name in direct {
            dump.push_str(&name);
            dump.push('\n');
        }
        assert!(dump.contains("PT Sinar Budi [REDACTED_PHONE]"), "{role}");
        for value in &personal {
            assert!(
                !dump.contains(value.as_str()),
                "{role}: raw value in a report: {value}"
            );
        }
        // Each finding with the text it was found in (start and end are
        // character offsets), so a failure shows what leaked. An amount of
        // the reports (a decimal such as 628534170.00: the detector errs
        // towards masking and reads a leading 62 as a country code) is not
        // personal data; every other finding is.
        let found: Vec<String> = sqlx::query_scalar(
            "select (s->>'type') || ': ' || hit
                    || ' in ' || substr($1, greatest((s->>'start')::int - 40, 0) + 1, 100)
               from jsonb_array_elements(bizos.pii_detect($1)) s,
                    substr($1, (s->>'start')::int + 1, (s->>'end')::int - (s->>'start')::int) hit
              where s->>'type' in ('NIK', 'NPWP', 'PHONE', 'EMAIL', 'CARD')
                and hit !~ '^[0-9]+[.][0-9]{2}$'",
        )
        .bind(&dump)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(found.is_empty(), "{role}: {found:?}");
    }
}

#[tokio::test]
async fn bi_cannot_write_and_nobody_writes_through_a_report() {
    let db = TestDb::new().await;
    db.seed_demo_tenants().await;
    let bi = db.pool_as("bizos_bi");
    for sql in [
        "insert into analytics_reports (view_name) values ('v_invoices')",
        "delete from analytics_reports",
        "update analytics_grants set tenant_id = null",
    ] {
        let err = sqlx::query(sql).execute(&bi).await.expect_err(sql);
        assert_eq!(code(&err), "25006", "{sql}: {err}");
    }
    let analyst = db.pool_as("bizos_analyst");
    for (sql, refusal) in [
        (
            "insert into analytics_reports (view_name) values ('v_invoices')",
            "permission denied for table analytics_reports",
        ),
        (
            "delete from analytics_reports",
            "permission denied for table analytics_reports",
        ),
        (
            "select analytics_build_views()",
            "permission denied for function analytics_build_views",
        ),
    ] {
        let err = sqlx::query(sql).execute(&analyst).await.expect_err(sql);
        assert_eq!(code(&err), "42501", "{sql}: {err}");
        assert!(err.to_string().contains(refusal), "{sql}: {err}");
    }
    for pool in [&bi, &analyst] {
        for sql in [
            "delete from analytics.v_ar_aging",
            "update analytics.v_kpi_actual_vs_target set target_value = 0",
            "insert into analytics.v_invoice_outstanding (tenant_id) values (gen_random_uuid())",
        ] {
            let err = sqlx::query(sql).execute(pool).await.expect_err(sql);
            assert!(!code(&err).is_empty(), "{sql}: {err}");
        }
    }
    let (reports, targets): (i64, i64) = sqlx::query_as(
        "select (select count(*) from analytics_reports),
                (select count(*) from kpi_targets where target_value = 0)",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((reports, targets), (all_reports().len() as i64, 0));
}

#[tokio::test]
async fn the_builder_keeps_the_reports_and_the_schema_tier_has_its_own() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    let bi = db.pool_as("bizos_bi");
    let before = analytics_rows(&bi, "v_ar_aging", a).await;
    assert!(!before.is_empty());
    // A later migration replaces a product view (dropping what depends on
    // it) and runs the builder: the report is back, with the same rows.
    let def: String = sqlx::query_scalar("select pg_get_viewdef('public.v_ar_aging'::regclass)")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "drop view public.v_ar_aging cascade;
         create view public.v_ar_aging with (security_invoker = true) as {def}
         grant select on public.v_ar_aging to bizos_authenticated;"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    let gone: bool = sqlx::query_scalar("select to_regclass('analytics.v_ar_aging') is null")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(gone);
    sqlx::query("select analytics_build_views()")
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(analytics_rows(&bi, "v_ar_aging", a).await, before);
    // A listed report that is not a view of the schema is an error.
    let err = sqlx::raw_sql(
        "insert into analytics_reports (view_name) values ('v_no_such_report');
         select analytics_build_views();",
    )
    .execute(&db.owner)
    .await
    .expect_err("unknown report");
    assert_eq!(code(&err), "P0001", "{err}");

    // The schema tier: every report in <schema>_analytics, over that
    // schema's function and views.
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_zeta"))
        .await
        .unwrap();
    let defs: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, pg_get_viewdef(c.oid)
           from pg_class c
          where c.relnamespace = 'tenant_zeta_analytics'::regnamespace
            and c.relname in (select view_name from tenant_zeta.analytics_reports)
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        defs.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(),
        all_reports()
    );
    for (view, def) in &defs {
        assert!(
            def.contains(&format!(
                "tenant_zeta.analytics_report_rows('tenant_zeta.{view}'::regclass)"
            )),
            "{view}: {def}"
        );
        let n: i64 = sqlx::query_scalar(&format!(
            "select count(*) from tenant_zeta_analytics.{view}"
        ))
        .fetch_one(&bi)
        .await
        .unwrap();
        assert_eq!(n, 0, "{view}");
    }
}

/// `row(...)::text` of an analytics report with instants as epoch seconds,
/// so that rows read in sessions of different time zones compare.
async fn zone_free_row_expr(db: &TestDb, view: &str) -> String {
    let cols: Vec<(String, String)> = sqlx::query_as(
        "select a.attname::text, t.typname::text
           from pg_attribute a join pg_type t on t.oid = a.atttypid
          where a.attrelid = ('analytics.' || $1)::regclass and a.attnum > 0 and not a.attisdropped
          order by a.attnum",
    )
    .bind(view)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let exprs: Vec<String> = cols
        .iter()
        .map(|(c, ty)| match ty.as_str() {
            "timestamptz" => format!("extract(epoch from t.{c})"),
            _ => format!("t.{c}"),
        })
        .collect();
    format!("row({})::text", exprs.join(", "))
}

#[tokio::test]
async fn reports_are_cut_in_the_tenants_time_zone_whatever_the_session_uses() {
    let db = TestDb::new().await;
    db.seed_demo_tenants().await;
    let bi = db.pool_as("bizos_bi");
    // UTC+14 and UTC-12: 26 hours apart, so on different dates at any
    // moment.
    let zones = ["Pacific/Kiritimati", "Etc/GMT+12"];
    for view in REPORTS {
        let expr = zone_free_row_expr(&db, view).await;
        let mut seen = Vec::new();
        for zone in zones {
            let mut conn = bi.acquire().await.unwrap();
            sqlx::query(&format!("set time zone '{zone}'"))
                .execute(&mut *conn)
                .await
                .unwrap();
            // In a transaction: the report must leave the session's time
            // zone as it was for the rest of it.
            sqlx::query("begin").execute(&mut *conn).await.unwrap();
            let mut rows: Vec<String> =
                sqlx::query_scalar(&format!("select {expr} from analytics.{view} t"))
                    .fetch_all(&mut *conn)
                    .await
                    .unwrap();
            rows.sort();
            let after: String = sqlx::query_scalar("select current_setting('TimeZone')")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            sqlx::query("commit").execute(&mut *conn).await.unwrap();
            sqlx::query("reset time zone")
                .execute(&mut *conn)
                .await
                .unwrap();
            assert_eq!(after, zone, "{view}: the session's time zone is kept");
            assert!(!rows.is_empty(), "{view}");
            seen.push(rows);
        }
        assert!(
            seen[0] == seen[1],
            "{view} differs between {zones:?}: {:?} vs {:?}",
            seen[0]
                .iter()
                .filter(|r| !seen[1].contains(r))
                .take(2)
                .collect::<Vec<_>>(),
            seen[1]
                .iter()
                .filter(|r| !seen[0].contains(r))
                .take(2)
                .collect::<Vec<_>>()
        );
    }
}
