//! The tests' Citus cluster: a coordinator and two workers on
//! loopback, started by `scripts/dev test` (`BIZOS_TEST_CITUS_ADMIN_URL`, a
//! superuser of the coordinator's database `postgres`, where the workers
//! are added; trust auth on loopback).
//!
//! A process bootstraps and migrates one database there, once, with the
//! real `bizos db bootstrap` and `bizos migrate` code; its tests share it
//! and each makes tenants of its own.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use tokio::sync::OnceCell;

static DATABASE: OnceCell<String> = OnceCell::const_new();

pub fn admin_url() -> String {
    std::env::var("BIZOS_TEST_CITUS_ADMIN_URL").unwrap_or_else(|_| {
        panic!(
            "BIZOS_TEST_CITUS_ADMIN_URL is not set: run the tests with `scripts/dev test`, or \
             start a cluster with `scripts/dev citus-cluster` and export what it prints as \
             BIZOS_TEST_CITUS_ADMIN_URL"
        )
    })
}

/// The cluster's address for `user` in `database`.
pub fn url_for(user: &str, database: &str) -> String {
    bizos_sql::derive_dsn(&admin_url(), Some(user), database)
        .expect("BIZOS_TEST_CITUS_ADMIN_URL is a valid DSN")
}

/// The migrated database of this process (bootstrapped and migrated on
/// first use).
pub async fn database() -> &'static str {
    crate::watchdog::watch();
    DATABASE
        .get_or_init(|| create_database(format!("bizos_citus_{}", std::process::id())))
        .await
}

/// A database of its own, bootstrapped and migrated, for a test whose DDL
/// would take locks on every shard that the other tests' requests use
/// (they would end in distributed deadlocks).
pub async fn own_database(purpose: &str) -> String {
    create_database(format!("bizos_citus_{}_{purpose}", std::process::id())).await
}

/// One bootstrap and migration at a time: they change the cluster's roles
/// and grants, which Citus propagates to every node, and two at once fail
/// ("tuple concurrently updated").
static CREATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn create_database(name: String) -> String {
    let _one_at_a_time = CREATING.lock().await;
    bootstrap(&name)
        .await
        .expect("bootstrap on the Citus coordinator");
    bizos_sql::migrate(&url_for("bizos_owner", &name), None)
        .await
        .expect("migrate on the Citus coordinator");
    name
}

async fn bootstrap(name: &str) -> Result<(), bizos_sql::Error> {
    bizos_sql::bootstrap(
        &admin_url(),
        &bizos_sql::BootstrapOptions {
            database: name.to_owned(),
            passwords: Vec::new(),
        },
    )
    .await
}

/// `bizos db bootstrap` again on an existing database (as a DBA bringing
/// the extension up to date does).
pub async fn bootstrap_again(name: &str) -> Result<(), bizos_sql::Error> {
    let _one_at_a_time = CREATING.lock().await;
    bootstrap(name).await
}

/// The BFF on the test database (its bizos_app login, without TLS as
/// [`pool_as`]), without a worker.
pub async fn spawn_app() -> crate::TestApp {
    spawn_app_in(database().await).await
}

/// [`spawn_app`] on another database of the cluster.
pub async fn spawn_app_in(database: &str) -> crate::TestApp {
    let url = format!("{}?sslmode=disable", url_for("bizos_app", database));
    crate::spawn_app_at(url, None, &[]).await
}

/// A small pool for any role of the cluster in the test database; made per
/// test (a pool belongs to the runtime of the test that made it). Without
/// TLS: Citus turns `ssl` on with a self-signed certificate, which sqlx's
/// default (`prefer`) does not accept.
pub async fn pool_as(user: &str) -> PgPool {
    pool_in(user, database().await).await
}

/// [`pool_as`] in another database of the cluster.
pub async fn pool_in(user: &str, database: &str) -> PgPool {
    crate::watchdog::watch();
    let options: PgConnectOptions = url_for(user, database)
        .parse::<PgConnectOptions>()
        .expect("valid DSN")
        .ssl_mode(PgSslMode::Disable);
    PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .expect("connect to the Citus coordinator")
}

/// A superuser pool on every node of the cluster (the coordinator first,
/// then the workers of `pg_dist_node`), in each node's `postgres`
/// database: for what only a node itself can tell, such as its
/// `citus_stat_counters`.
pub async fn node_admin_pools() -> Vec<(String, PgPool)> {
    let admin: PgConnectOptions = url_for("postgres", "postgres")
        .parse::<PgConnectOptions>()
        .expect("valid DSN")
        .ssl_mode(PgSslMode::Disable);
    let coordinator = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin.clone())
        .await
        .expect("connect to the Citus coordinator as its superuser");
    let workers: Vec<(String, i32)> = sqlx::query_as(
        "select nodename::text, nodeport from pg_dist_node
          where groupid <> 0 and noderole = 'primary' order by nodeport",
    )
    .fetch_all(&coordinator)
    .await
    .expect("the cluster's workers");
    let mut pools = vec![("coordinator".to_owned(), coordinator)];
    for (host, port) in workers {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(
                admin
                    .clone()
                    .host(&host)
                    .port(u16::try_from(port).expect("a TCP port")),
            )
            .await
            .expect("connect to a Citus worker as its superuser");
        pools.push((format!("worker {host}:{port}"), pool));
    }
    pools
}
