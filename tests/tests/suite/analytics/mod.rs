//! Masked access (C5): analysts and BI read the `analytics` views and
//! nothing else, see no raw personal data, BI cannot write, and a login can
//! be scoped to one tenant through analytics_grants.

// The reporting views for analysts and BI: analytics/reports.rs.
mod reports;

use std::collections::{BTreeMap, BTreeSet};

use bizos_tests::{admin_url, code, TestDb};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Every table of the business schema, from the catalog.
async fn base_tables(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
          where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// The table views of `analytics` (the report views of V19, listed in
/// `analytics_reports`, are tested in `analytics_reports.rs`).
async fn analytics_views(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
          where c.relnamespace = 'analytics'::regnamespace and c.relkind = 'v'
            and c.relname not in (select view_name from analytics_reports)
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Tables that hold configuration of the migrations or of this feature and
/// have no view of their own.
const NOT_BUSINESS: [&str; 4] = [
    "analytics_grants",
    "analytics_masking",
    "analytics_reports",
    "refinery_schema_history",
];

#[tokio::test]
async fn every_business_table_has_a_view_and_readers_get_only_views() {
    let db = TestDb::new().await;
    db.seed_demo_tenants().await;
    let tables = base_tables(&db).await;
    let views = analytics_views(&db).await;
    let expected: Vec<String> = tables
        .iter()
        .filter(|t| !NOT_BUSINESS.contains(&t.as_str()))
        .cloned()
        .collect();
    assert!(expected.len() >= 20, "{expected:?}");
    assert_eq!(views, expected);

    // What the owner counts in each base table (both seeded tenants).
    let mut raw_counts = BTreeMap::new();
    for view in &views {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from public.{view}"))
            .fetch_one(&db.owner)
            .await
            .unwrap();
        raw_counts.insert(view.clone(), n);
    }
    // The demo seed fills these tables, so a view that drops rows shows.
    for table in SEEDED {
        assert!(
            raw_counts.get(*table).copied().unwrap_or(0) > 0,
            "the demo seed leaves {table} empty: {raw_counts:?}"
        );
    }
    for role in ["bizos_analyst", "bizos_bi"] {
        let pool = db.pool_as(role);
        // Granted every tenant: each view shows exactly the rows of its table.
        for view in &views {
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from analytics.{view}"))
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| panic!("{role} reads analytics.{view}: {e}"));
            assert_eq!(
                n, raw_counts[view],
                "{role}: analytics.{view} shows {n} rows, the table holds {}",
                raw_counts[view]
            );
        }
        for table in &tables {
            let err = sqlx::query(&format!("select 1 from public.{table} limit 1"))
                .fetch_optional(&pool)
                .await
                .expect_err(&format!("{role} must not read public.{table}"));
            assert_eq!(code(&err), "42501", "{role} on {table}: {err}");
        }
    }
}

/// Tables the demo seed (`sql/demo/demo.sql`, `TestDb::seed_demo_tenants`)
/// fills for both tenants.
const SEEDED: &[&str] = &[
    "customers",
    "import_modules",
    "invoices",
    "kpi_entries",
    "kpi_metric_definitions",
    "kpi_targets",
    "leads",
    "marketing_activity_events",
    "marketing_spend",
    "payments",
    "profiles",
    "prospect_stage_history",
    "prospects",
    "role_permissions",
    "sales_activities",
    "sla_events",
    "sla_policies",
    "storage_buckets",
    "tenants",
    "ticket_messages",
    "tickets",
];

/// Personal columns (masker other than `text`) the demo seed fills.
const SEEDED_PERSONAL: &[&str] = &[
    "customers.npwp",
    "customers.npwp_norm",
    "customers.phone",
    "customers.phone_norm",
    "leads.contact_name",
    "leads.contact_phone",
    "leads.npwp",
    "profiles.email",
    "profiles.full_name",
    "tickets.contact_name",
    "tickets.contact_phone",
];

/// Raw personal values of the seeded tenants, read by the owner.
async fn raw_personal_values(db: &TestDb) -> BTreeSet<String> {
    let rows: Vec<Option<String>> = sqlx::query_scalar(
        "select v from (
           select email as v from profiles union all select full_name from profiles
           union all select email from customers union all select phone from customers
           union all select npwp from customers union all select npwp_norm from customers
           union all select phone_norm from customers union all select email_norm from customers
           union all select contact_email from leads union all select contact_phone from leads
           union all select contact_name from leads union all select npwp from leads
           union all select contact_email from tickets union all select contact_phone from tickets
           union all select contact_name from tickets) x",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    rows.into_iter()
        .flatten()
        .filter(|v| v.len() >= 6)
        .collect()
}

#[tokio::test]
async fn views_show_no_raw_personal_data() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    // Free text with PII in a note and a ticket message body.
    sqlx::query(
        "update leads set notes = 'KTP 3174011203900001, WA +62 812-3456-7890, budi.s@gmail.com'
          where lead_id = (select lead_id from leads where tenant_id = $1 order by lead_id limit 1)",
    )
    .bind(a)
    .execute(&db.owner)
    .await
    .unwrap();
    let raw = raw_personal_values(&db).await;
    assert!(raw.len() > 50, "{}", raw.len());

    let analyst = db.pool_as("bizos_analyst");
    let mut dump = String::new();
    for view in analytics_views(&db).await {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("select t::text from analytics.{view} t"))
                .fetch_all(&analyst)
                .await
                .unwrap();
        for r in rows {
            dump.push_str(&r);
            dump.push('\n');
        }
    }
    assert!(dump.contains("[REDACTED_NIK]"));
    assert!(dump.contains("+62 8**-****-**"));
    for value in &raw {
        assert!(
            !dump.contains(value.as_str()),
            "raw value in a view: {value}"
        );
    }
    for leaked in ["3174011203900001", "812-3456-7890", "budi.s@gmail.com"] {
        assert!(!dump.contains(leaked), "{leaked}");
    }
    // And the detector itself finds no personal number or address in them.
    let found: Vec<String> = sqlx::query_scalar(
        "select format('%s %s<%s>', s->>'type', substr($1, (s->>'start')::int - 11, 12),
                      substr($1, (s->>'start')::int + 1, (s->>'end')::int - (s->>'start')::int))
           from jsonb_array_elements(bizos.pii_detect($1)) s
          where s->>'type' in ('NIK', 'NPWP', 'PHONE', 'EMAIL', 'CARD')",
    )
    .bind(&dump)
    .fetch_all(&analyst)
    .await
    .unwrap();
    assert!(found.is_empty(), "{found:?}");
}

/// Every text column of every view is its masker applied to the stored
/// value (from `analytics_masking`, else `pii_mask` for text and json),
/// compared as multisets per column between what the analyst reads and
/// what the owner computes from the table; personal columns never show a
/// stored value.
#[tokio::test]
async fn masked_columns_hold_the_masked_values() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    sqlx::query(
        "update leads set notes = 'KTP 3174011203900001, WA +62 812-3456-7890, NPWP 01.000.013.1-093.000'
          where lead_id = (select lead_id from leads where tenant_id = $1 order by lead_id limit 1)",
    )
    .bind(a)
    .execute(&db.owner)
    .await
    .unwrap();
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "select c.relname::text, a.attname::text,
                coalesce(m.masker, case when t.typcategory = 'S' or t.typname in ('json', 'jsonb')
                                        then 'text' else 'raw' end)
           from pg_class c
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           join pg_type t on t.oid = a.atttypid
           left join analytics_masking m on m.table_name = c.relname and m.column_name = a.attname
          where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
            and c.relname not in ('analytics_grants', 'analytics_masking', 'analytics_reports', 'refinery_schema_history')
          order by 1, 2",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let analyst = db.pool_as("bizos_analyst");
    let mut checked = BTreeSet::<String>::new();
    for (table, column, masker) in &columns {
        let expected = match masker.as_str() {
            "email" | "phone" | "nik" | "name" => format!("bizos.mask_{masker}(t.{column}::text)"),
            "redact" => format!("case when t.{column} is null then null else '[REDACTED]' end"),
            "text" => format!("bizos.pii_mask(t.{column}::text)"),
            _ => continue,
        };
        let mut want: Vec<Option<String>> =
            sqlx::query_scalar(&format!("select {expected} from public.{table} t"))
                .fetch_all(&db.owner)
                .await
                .unwrap();
        let mut got: Vec<Option<String>> =
            sqlx::query_scalar(&format!("select t.{column}::text from analytics.{table} t"))
                .fetch_all(&analyst)
                .await
                .unwrap();
        want.sort();
        got.sort();
        assert!(
            got == want,
            "analytics.{table}.{column} is not {masker}-masked"
        );
        if masker != "text" {
            let raw: BTreeSet<String> = sqlx::query_scalar(&format!(
                "select t.{column}::text from public.{table} t where t.{column} is not null"
            ))
            .fetch_all(&db.owner)
            .await
            .unwrap()
            .into_iter()
            .collect();
            let shown: BTreeSet<String> = got.into_iter().flatten().collect();
            let leaked: Vec<_> = raw.intersection(&shown).collect();
            assert!(
                leaked.is_empty(),
                "analytics.{table}.{column} shows stored values {leaked:?}"
            );
            if !raw.is_empty() {
                checked.insert(format!("{table}.{column}"));
            }
        }
    }
    // The seed fills these personal columns, so the checks above compared
    // real values.
    for column in SEEDED_PERSONAL {
        assert!(
            checked.contains(*column),
            "{column} has no seeded values: {checked:?}"
        );
    }
    // And the free text with PII is masked in the view.
    let notes: Vec<String> =
        sqlx::query_scalar("select notes from analytics.leads where notes like 'KTP %'")
            .fetch_all(&analyst)
            .await
            .unwrap();
    assert_eq!(
        notes,
        ["KTP [REDACTED_NIK], WA [REDACTED_PHONE], NPWP [REDACTED_NPWP]"]
    );
}

/// Free text whose PII is typed in full-width digits, spaced one by one,
/// wrapped by a line break or glued to its keyword reads masked whole in
/// the analyst's view.
#[tokio::test]
async fn disguised_pii_in_free_text_is_masked_in_the_views() {
    let db = TestDb::new().await;
    let (a, _) = db.seed_demo_tenants().await;
    sqlx::query(
        "update leads set notes = $2
          where lead_id = (select lead_id from leads where tenant_id = $1 order by lead_id limit 1)",
    )
    .bind(a)
    .bind(
        "KTP-3273015203850123, WA ０８１２-３４５６-７８９０, hp 0 8 5 7 1 1 2 2 3 3 4 4, \
         NPWP 01.000.013.1-\n093.000, INV-2026-000123 Rp １.２５０.０００",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let analyst = db.pool_as("bizos_analyst");
    let notes: Vec<String> =
        sqlx::query_scalar("select notes from analytics.leads where notes like 'KTP-%'")
            .fetch_all(&analyst)
            .await
            .unwrap();
    assert_eq!(
        notes,
        [
            "KTP-[REDACTED_NIK], WA [REDACTED_PHONE], hp [REDACTED_PHONE], \
          NPWP [REDACTED_NPWP], INV-2026-000123 Rp １.２５０.０００"
        ]
    );
}

async fn setting(pool: &PgPool, name: &str) -> String {
    sqlx::query(&format!("show {name}"))
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<String, _>(0)
}

#[tokio::test]
async fn bi_is_read_only_with_a_timeout_and_analysts_cannot_write() {
    let db = TestDb::new().await;
    let bi = db.pool_as("bizos_bi");
    assert_eq!(setting(&bi, "default_transaction_read_only").await, "on");
    assert_eq!(setting(&bi, "statement_timeout").await, "1min");
    for sql in [
        "create temp table scratch (i int)",
        "insert into tenants (slug, name) values ('bi-x', 'x')",
        "delete from analytics_grants",
    ] {
        let err = sqlx::query(sql).execute(&bi).await.expect_err(sql);
        assert_eq!(code(&err), "25006", "{sql}: {err}");
    }
    let analyst = db.pool_as("bizos_analyst");
    for sql in [
        "insert into tenants (slug, name) values ('an-x', 'x')",
        "delete from analytics_grants",
        "insert into analytics_grants (role_name) values ('bizos_analyst')",
    ] {
        let err = sqlx::query(sql).execute(&analyst).await.expect_err(sql);
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    // The views do not take writes either.
    let err = sqlx::query("delete from analytics.tenants")
        .execute(&analyst)
        .await
        .expect_err("delete through a view");
    assert!(!code(&err).is_empty(), "{err}");
    let left: i64 = sqlx::query_scalar("select count(*) from analytics_grants")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(left, 2);
}

/// A login role of the cluster for one test, dropped at the end.
struct TempRole {
    name: String,
}

impl TempRole {
    async fn create(member_of: &str) -> TempRole {
        let name = format!("t_{}_analyst", Uuid::new_v4().simple());
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

async fn tenants_seen(pool: &PgPool, sql_prefix: &str) -> BTreeSet<Uuid> {
    let mut conn = pool.acquire().await.unwrap();
    if !sql_prefix.is_empty() {
        sqlx::query(sql_prefix).execute(&mut *conn).await.unwrap();
    }
    let mut seen = BTreeSet::new();
    for view in ["tenants", "leads", "customers", "invoices", "profiles"] {
        let ids: Vec<Uuid> =
            sqlx::query_scalar(&format!("select distinct tenant_id from analytics.{view}"))
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        seen.extend(ids);
    }
    seen
}

#[tokio::test]
async fn a_login_granted_one_tenant_sees_only_that_tenant() {
    let db = TestDb::new().await;
    let (a, b) = db.seed_demo_tenants().await;
    let role = TempRole::create("bizos_analyst").await;
    let scoped = db.pool_as(&role.name);
    // No grant yet: nothing.
    assert!(tenants_seen(&scoped, "").await.is_empty());

    sqlx::query("insert into analytics_grants (role_name, tenant_id) values ($1, $2)")
        .bind(&role.name)
        .bind(a)
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(tenants_seen(&scoped, "").await, BTreeSet::from([a]));
    // Every view shows exactly tenant A's rows of its table (and nothing of
    // a table without tenant_id): counted as the owner.
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "select c.relname::text,
                exists (select 1 from pg_attribute a where a.attrelid = c.oid
                           and a.attname = 'tenant_id' and not a.attisdropped)
           from pg_class c where c.relnamespace = 'analytics'::regnamespace and c.relkind = 'v'
            and c.relname not in (select view_name from analytics_reports)
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut nonempty = BTreeSet::new();
    for (view, tenanted) in &tables {
        let own: i64 = if *tenanted {
            sqlx::query_scalar(&format!(
                "select count(*) from public.{view} where tenant_id = $1"
            ))
            .bind(a)
            .fetch_one(&db.owner)
            .await
            .unwrap()
        } else {
            0
        };
        let shown: i64 = sqlx::query_scalar(&format!("select count(*) from analytics.{view}"))
            .fetch_one(&scoped)
            .await
            .unwrap();
        assert_eq!(
            shown, own,
            "{view}: a login granted tenant A sees {shown} rows, A has {own}"
        );
        if own > 0 {
            nonempty.insert(view.as_str());
        }
    }
    // Not vacuous: the seed gives tenant A rows in every seeded table that
    // has a tenant_id.
    for (view, tenanted) in &tables {
        if *tenanted && SEEDED.contains(&view.as_str()) {
            assert!(
                nonempty.contains(view.as_str()),
                "tenant A has no rows in {view}"
            );
        }
    }
    assert!(nonempty.len() >= 15, "{nonempty:?}");
    // SET ROLE to the unscoped group role does not widen it.
    assert_eq!(
        tenants_seen(&scoped, "set role bizos_analyst").await,
        BTreeSet::from([a])
    );
    // The unscoped analyst sees both.
    let analyst = db.pool_as("bizos_analyst");
    assert_eq!(tenants_seen(&analyst, "").await, BTreeSet::from([a, b]));
    // A caller's own predicate cannot reach other tenants' rows: the views
    // are security barriers.
    let n: i64 = sqlx::query_scalar("select count(*) from analytics.leads where tenant_id = $1")
        .bind(b)
        .fetch_one(&scoped)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let barrier: bool = sqlx::query_scalar(
        "select bool_and(coalesce('security_barrier=true' = any (c.reloptions), false))
           from pg_class c where c.relnamespace = 'analytics'::regnamespace and c.relkind = 'v'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(barrier);
}

#[tokio::test]
async fn the_schema_tier_gets_its_own_analytics_schema() {
    let db = TestDb::new().await;
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_zeta"))
        .await
        .unwrap();
    // Every table of the tenant schema has a view in tenant_zeta_analytics
    // that reads that schema's table, not the shared tier's.
    let wrong: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c
          where c.relnamespace = 'tenant_zeta'::regnamespace and c.relkind = 'r'
            and c.relname not in ('analytics_grants', 'analytics_masking', 'analytics_reports', 'refinery_schema_history')
            and not exists (
              select 1 from pg_depend d
                join pg_rewrite r on r.oid = d.objid
                join pg_class v on v.oid = r.ev_class
               where d.refobjid = c.oid and d.classid = 'pg_rewrite'::regclass
                 and v.relnamespace = 'tenant_zeta_analytics'::regnamespace
                 and v.relname = c.relname)
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(wrong.is_empty(), "tables without their view: {wrong:?}");
    let views: i64 = sqlx::query_scalar(
        "select count(*) from pg_class
          where relnamespace = 'tenant_zeta_analytics'::regnamespace and relkind = 'v'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(views >= 20, "{views}");
    let tenant: Uuid = sqlx::query_scalar(
        "insert into tenant_zeta.tenants (slug, name) values ('zeta', 'Zeta') returning tenant_id",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let seen: Vec<Uuid> = sqlx::query_scalar("select tenant_id from tenant_zeta_analytics.tenants")
        .fetch_all(&db.pool_as("bizos_bi"))
        .await
        .unwrap();
    assert_eq!(seen, [tenant]);
}
