//! Superuser set-up of a cluster and a database: the roles, the database
//! owned by `bizos_owner`, the helper extensions and `bizos` itself.
//! Everything here is idempotent, so DBAs and `scripts/dev up` run it freely.

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls};

use crate::{validate_identifier, Error};

const ROLES_SQL: &str = include_str!("../bootstrap/roles.sql");
const DATABASE_SQL: &str = include_str!("../bootstrap/database.sql");

/// The login roles whose passwords bootstrap may set.
pub const LOGIN_ROLES: [&str; 4] = ["bizos_owner", "bizos_app", "bizos_analyst", "bizos_bi"];

#[derive(Debug, Default)]
pub struct BootstrapOptions {
    /// Database to create (if missing) and prepare.
    pub database: String,
    /// Passwords to set, by login role; roles left out keep theirs.
    pub passwords: Vec<(String, SecretString)>,
}

async fn connect(dsn: &str) -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(Error::Connect)?;
    tokio::spawn(connection);
    Ok(client)
}

fn step(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Bootstrap { step: what, source }
}

/// Creates the roles, the database and the extensions. `admin_dsn` must reach
/// a superuser; its database is used only to create the target database.
pub async fn bootstrap(admin_dsn: &str, opts: &BootstrapOptions) -> Result<(), Error> {
    validate_identifier("database", &opts.database)?;
    for (role, _) in &opts.passwords {
        if !LOGIN_ROLES.contains(&role.as_str()) {
            return Err(Error::InvalidName {
                what: "role",
                name: role.clone(),
            });
        }
    }

    let admin = connect(admin_dsn).await?;
    let is_super: bool = admin
        .query_one("select rolsuper from pg_catalog.pg_roles where rolname = current_user", &[])
        .await
        .map_err(step("check superuser"))?
        .get(0);
    if !is_super {
        return Err(Error::NotSuperuser);
    }

    // Roles are cluster-wide: serialise concurrent bootstraps (parallel test
    // binaries, several DBAs) so they never race on pg_authid.
    admin
        .execute("select pg_catalog.pg_advisory_lock(hashtext('bizos.bootstrap'))", &[])
        .await
        .map_err(step("lock"))?;
    admin.batch_execute(ROLES_SQL).await.map_err(step("roles"))?;
    for (role, password) in &opts.passwords {
        let sql: String = admin
            .query_one(
                "select format('alter role %I password %L', $1::text, $2::text)",
                &[role, &password.expose_secret()],
            )
            .await
            .map_err(step("password"))?
            .get(0);
        admin.batch_execute(&sql).await.map_err(step("password"))?;
    }

    let db = &opts.database;
    let exists = admin
        .query_opt("select 1 from pg_catalog.pg_database where datname = $1", &[db])
        .await
        .map_err(step("find database"))?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("create database {db} owner bizos_owner"))
            .await
            .map_err(step("create database"))?;
    }
    database_settings(&admin, db).await?;

    let target = connect(&derive_dsn(admin_dsn, None, db)?).await?;
    target
        .batch_execute(DATABASE_SQL)
        .await
        .map_err(step("extensions"))?;

    admin
        .execute("select pg_catalog.pg_advisory_unlock(hashtext('bizos.bootstrap'))", &[])
        .await
        .map_err(step("unlock"))?;
    Ok(())
}

/// Re-applies the database-level settings, which live outside the database
/// and so are not copied by `create database .. template ..`.
pub async fn apply_database_settings(admin_dsn: &str, database: &str) -> Result<(), Error> {
    validate_identifier("database", database)?;
    database_settings(&connect(admin_dsn).await?, database).await
}

async fn database_settings(admin: &Client, db: &str) -> Result<(), Error> {
    admin
        .batch_execute(&format!(
            "alter database {db} owner to bizos_owner;
             revoke all on database {db} from public;
             grant connect, temporary on database {db} to bizos_app, bizos_analyst, bizos_bi;
             alter database {db} set search_path = \"$user\", public, {ext};",
            ext = crate::EXTENSIONS_SCHEMA,
        ))
        .await
        .map_err(step("database settings"))
}

/// The same server as `dsn`, for another database and optionally another
/// user (whose password is then not carried over).
pub fn derive_dsn(dsn: &str, user: Option<&str>, dbname: &str) -> Result<String, Error> {
    let base: tokio_postgres::Config = dsn.parse().map_err(Error::Connect)?;
    let mut config = base.clone();
    config.dbname(dbname);
    if let Some(user) = user {
        let mut fresh = tokio_postgres::Config::new();
        for host in base.get_hosts() {
            match host {
                tokio_postgres::config::Host::Tcp(h) => fresh.host(h),
                tokio_postgres::config::Host::Unix(p) => fresh.host_path(p),
            };
        }
        for port in base.get_ports() {
            fresh.port(*port);
        }
        fresh.user(user).dbname(dbname);
        config = fresh;
    }
    Ok(to_url(&config))
}

/// Renders a parsed config back as a key/value connection string.
fn to_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut parts = Vec::new();
    let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
    for host in config.get_hosts() {
        match host {
            Host::Tcp(h) => parts.push(format!("host={}", quote(h))),
            Host::Unix(p) => parts.push(format!("host={}", quote(&p.to_string_lossy()))),
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(pw) = config.get_password() {
        parts.push(format!("password={}", quote(&String::from_utf8_lossy(pw))));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(db)));
    }
    parts.join(" ")
}
