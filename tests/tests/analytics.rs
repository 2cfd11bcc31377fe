//! Masked access (C5): analysts and BI read the `analytics` views and
//! nothing else, see no raw personal data, BI cannot write, and a login can
//! be scoped to one tenant through analytics_grants.

use std::collections::BTreeSet;

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

async fn analytics_views(db: &TestDb) -> Vec<String> {
    sqlx::query_scalar(
        "select c.relname::text from pg_class c
          where c.relnamespace = 'analytics'::regnamespace and c.relkind = 'v'
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

/// Tables that hold configuration of the migrations or of this feature and
/// have no view of their own.
const NOT_BUSINESS: [&str; 3] = [
    "analytics_grants",
    "analytics_masking",
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

    for role in ["bizos_analyst", "bizos_bi"] {
        let pool = db.pool_as(role);
        for view in &views {
            let n: i64 = sqlx::query_scalar(&format!("select count(*) from analytics.{view}"))
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| panic!("{role} reads analytics.{view}: {e}"));
            assert!(n >= 0);
        }
        for table in &tables {
            let err = sqlx::query(&format!("select 1 from public.{table} limit 1"))
                .fetch_optional(&pool)
                .await
                .expect_err(&format!("{role} must not read public.{table}"));
            assert_eq!(code(&err), "42501", "{role} on {table}: {err}");
        }
    }
    // The seeded data is visible (every tenant: the default grant).
    let analyst = db.pool_as("bizos_analyst");
    let leads: i64 = sqlx::query_scalar("select count(*) from analytics.leads")
        .fetch_one(&analyst)
        .await
        .unwrap();
    let raw: i64 = sqlx::query_scalar("select count(*) from leads")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(raw > 0);
    assert_eq!(leads, raw);
}

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
            and c.relname not in ('analytics_grants', 'analytics_masking', 'refinery_schema_history')
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
