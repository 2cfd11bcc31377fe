//! Superuser connections to a PostgreSQL server and the database-level
//! set-up every node gets: a database owned by `bizos_owner` with its
//! settings, on the coordinator ([`crate::bootstrap`]) as on the Citus
//! workers ([`crate::citus`]), and the DSNs of other databases and servers.

use tokio_postgres::{Client, NoTls};

use crate::{validate_identifier, Error};

pub(crate) async fn connect(dsn: &str) -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(Error::Connect)?;
    tokio::spawn(connection);
    Ok(client)
}

/// The error of a failed set-up step, naming it.
pub(crate) fn step(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Bootstrap { step: what, source }
}

/// Creates the database `db` owned by bizos_owner unless it exists, and
/// applies its database-level settings ([`database_settings`]).
pub(crate) async fn ensure_database(admin: &Client, db: &str) -> Result<(), Error> {
    let exists = admin
        .query_opt(
            "select 1 from pg_catalog.pg_database where datname = $1",
            &[&db],
        )
        .await
        .map_err(step("find database"))?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("create database {db} owner bizos_owner"))
            .await
            .map_err(step("create database"))?;
    }
    database_settings(admin, db).await
}

/// Re-applies the database-level settings, which live outside the database
/// and so are not copied by `create database .. template ..`.
pub async fn apply_database_settings(admin_dsn: &str, database: &str) -> Result<(), Error> {
    validate_identifier("database", database)?;
    database_settings(&connect(admin_dsn).await?, database).await
}

/// The search path ends with schema `bizos` so its operators (`<=>` of
/// vector search) work unqualified; functions are still called qualified.
///
/// Logins may connect and nothing more: no TEMP (a temporary view or
/// function could stand in for a relation a SECURITY DEFINER function
/// reads through `pg_temp`), no CREATE. The revoke removes the TEMP that
/// earlier versions granted, since this re-runs on existing databases.
/// Import staging still works: its temp tables are created by SECURITY
/// DEFINER functions, as the owner.
async fn database_settings(admin: &Client, db: &str) -> Result<(), Error> {
    admin
        .batch_execute(&format!(
            "alter database {db} owner to bizos_owner;
             revoke all on database {db} from public;
             revoke temporary, create on database {db}
               from bizos_app, bizos_worker, bizos_analyst, bizos_bi, bizos_authenticated;
             grant connect on database {db} to bizos_app, bizos_worker, bizos_analyst, bizos_bi;
             alter database {db} set search_path = \"$user\", public, {ext}, bizos;",
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

/// Renders a parsed config as a `postgres://` URL, which both
/// tokio-postgres and sqlx accept (a unix socket directory goes in `?host=`).
pub(crate) fn to_url(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let mut url = String::from("postgres://");
    if let Some(user) = config.get_user() {
        url.push_str(&encode(user.as_bytes()));
        if let Some(pw) = config.get_password() {
            url.push(':');
            url.push_str(&encode(pw));
        }
        url.push('@');
    }
    let mut query = Vec::new();
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => url.push_str(&format!("[{h}]")),
        Some(Host::Tcp(h)) => url.push_str(h),
        Some(Host::Unix(p)) => {
            query.push(format!("host={}", encode(p.to_string_lossy().as_bytes())))
        }
        None => url.push_str("localhost"),
    }
    if let Some(port) = config.get_ports().first() {
        if query.is_empty() {
            url.push_str(&format!(":{port}"));
        } else {
            query.push(format!("port={port}"));
        }
    }
    url.push('/');
    if let Some(db) = config.get_dbname() {
        url.push_str(&encode(db.as_bytes()));
    }
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query.join("&"));
    }
    url
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_dsns_are_urls_both_drivers_read() {
        let tcp = derive_dsn(
            "host=127.0.0.1 port=5433 user=postgres password='p w@' dbname=postgres",
            None,
            "bizos",
        )
        .unwrap();
        assert_eq!(tcp, "postgres://postgres:p%20w%40@127.0.0.1:5433/bizos");
        let other = derive_dsn(&tcp, Some("bizos_app"), "t_1").unwrap();
        assert_eq!(other, "postgres://bizos_app@127.0.0.1:5433/t_1");
        let sock = derive_dsn("host=/var/run/pg port=5432 user=postgres", None, "x").unwrap();
        assert_eq!(
            sock,
            "postgres://postgres@/x?host=%2Fvar%2Frun%2Fpg&port=5432"
        );
        let parsed: tokio_postgres::Config = sock.parse().unwrap();
        assert!(matches!(
            parsed.get_hosts(),
            [tokio_postgres::config::Host::Unix(_)]
        ));
        assert_eq!(parsed.get_ports(), [5432]);
    }
}
