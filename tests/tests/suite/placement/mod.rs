//! Tenant placements: routing of requests to the shared, schema and
//! isolated tiers, the cache's invalidation and the stale-write guard,
//! residency across two clusters, the operator API.

mod analysts;
mod jobs;
mod llm;
pub mod operator;
mod residency;
mod routing;

use std::path::PathBuf;

use bizos_bff::auth::Caller;
use bizos_bff::placement::lifecycle::{ClusterAddArgs, Operator};
use bizos_bff::placement::{Secrets, Tier};
use bizos_bff::tenants::NewTenant;
use bizos_tests::{admin_url, caller, TestDb};
use serde_json::Value;
use uuid::Uuid;

/// A control database registered as cluster `home` of region `eu` (its
/// default), the operator over it, and the secrets files of the operator
/// (owner and superuser URLs) and of the BFF (bizos_app URLs).
pub struct Home {
    pub db: TestDb,
    pub op: Operator,
    pub dir: tempfile::TempDir,
    /// Databases made by the test (isolated tenants), dropped at the end.
    pub made: Made,
}

impl Home {
    pub async fn new() -> Home {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            op: Operator::connect(
                &db.url("bizos_owner"),
                Secrets::file_only(Some(dir.path().join("operator"))),
            )
            .await
            .unwrap(),
            db,
            dir,
            made: Made::default(),
        };
        home.add_secret("operator", "HOME_URL", &home.db.url("bizos_owner"));
        home.add_secret("operator", "HOME_URL_ADMIN", &admin_url());
        home.add_secret("app", "HOME_URL", &home.db.url("bizos_app"));
        home.op
            .cluster_add(&ClusterAddArgs {
                cluster: "home".into(),
                region: "eu".into(),
                url_secret: "HOME_URL".into(),
                default: true,
                home: true,
                database_url: String::new(),
            })
            .await
            .unwrap();
        home
    }

    /// Appends `NAME=value` to the secrets file `file` (operator or app).
    pub fn add_secret(&self, file: &str, name: &str, value: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(file))
            .unwrap();
        writeln!(f, "{name}={value}").unwrap();
    }

    /// The BFF's secrets file (BIZOS_SECRETS_FILE).
    pub fn app_secrets(&self) -> String {
        self.secrets_path("app").display().to_string()
    }

    pub fn secrets_path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A tenant of `region` in `tier` and its first admin, through the
    /// operator; returns the admin and the placement.
    pub async fn tenant(&self, region: &str, tier: Tier, slug: &str) -> (Caller, Value) {
        let created = self
            .op
            .create(
                region,
                tier,
                &NewTenant {
                    slug: slug.into(),
                    name: format!("Tenant {slug}"),
                    time_zone: None,
                    locale: None,
                    admin_email: format!("admin@{slug}.example"),
                    admin_name: "Admin".into(),
                    admin_user_id: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create {slug} in {tier:?}: {e}"));
        let placement = created["placement"].clone();
        if tier == Tier::Isolated {
            self.made.add(placement["database_name"].as_str().unwrap());
        }
        let tenant: Uuid = created["tenant_id"].as_str().unwrap().parse().unwrap();
        let user: Uuid = created["user_id"].as_str().unwrap().parse().unwrap();
        (caller(tenant, user, "super_admin"), placement)
    }
}

/// Databases of the test cluster a test made, dropped when it ends.
#[derive(Default)]
pub struct Made(std::sync::Mutex<Vec<String>>);

impl Made {
    pub fn add(&self, name: &str) {
        self.0.lock().unwrap().push(name.to_owned());
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.0.lock().unwrap());
        if names.is_empty() {
            return;
        }
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
                for name in names {
                    let _ = client
                        .batch_execute(&format!("drop database if exists {name} with (force)"))
                        .await;
                }
                Some(())
            })
        })
        .join();
    }
}

/// A connection as `user` to database `database` of the test cluster,
/// with its search path set to `schema` when given.
pub async fn connect(user: &str, database: &str, schema: Option<&str>) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&bizos_tests::url_for(user, database))
        .await
        .unwrap();
    if let Some(s) = schema {
        sqlx::query(&format!("set search_path to {s}, extensions"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn
}

/// Leads of `tenant` in the connection's search path.
pub async fn leads_of(conn: &mut sqlx::PgConnection, tenant: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from leads where tenant_id = $1")
        .bind(tenant)
        .fetch_one(conn)
        .await
        .unwrap()
}
