//! The bizos business schema: refinery migrations and the api files
//! (`sql/api/`, the current definition of every function and view), embedded
//! at compile time.
//!
//! Both use unqualified names so the same files build every tenancy tier:
//! the shared tier in the database's default schema, the schema tier inside
//! one schema per tenant (selected through `search_path`).

use tokio_postgres::NoTls;

mod api;
pub mod citus;
pub mod fleet;
pub mod statements;
pub use api::{ApiApplied, ApiFile, API_FILES, HISTORY_SCHEMA};

mod bootstrap;
mod server;
pub use bootstrap::{bootstrap, BootstrapOptions, LOGIN_ROLES};
pub use server::{apply_database_settings, derive_dsn};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Schema that holds the helper extensions (pg_trgm, btree_gist, pgcrypto);
/// it is kept on the search path so their operators resolve.
pub const EXTENSIONS_SCHEMA: &str = "extensions";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} name {name:?}: use 1-63 lowercase letters, digits or underscores, starting with a letter")]
    InvalidName { what: &'static str, name: String },
    #[error("bootstrap needs a superuser connection")]
    NotSuperuser,
    #[error("bootstrap step {step:?} failed: {source}")]
    Bootstrap {
        step: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error("cannot prepare schema {schema}: {source}")]
    Schema {
        schema: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migration failed: {0}")]
    Migrate(#[from] refinery::Error),
    #[error("cannot ask whether the database is a Citus coordinator: {0}")]
    CitusDetect(#[source] tokio_postgres::Error),
    #[error("cannot distribute the tables on Citus: {0}")]
    CitusDistribute(#[source] citus::StepError),
    #[error("cannot read the shape of the schema: {0}")]
    Shape(#[source] tokio_postgres::Error),
    #[error("{what}: {message}")]
    Fleet {
        what: &'static str,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("schema {0} is reserved for the history of the api files")]
    ReservedSchema(String),
    #[error("api file sql/api/{file}{} failed, nothing of the api was applied: {message}",
            line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Api {
        file: String,
        line: Option<usize>,
        /// PostgreSQL's message (tokio-postgres shows only "db error").
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("api file sql/api/{file}: {message}")]
    ApiSplit { file: String, message: String },
    #[error("cannot apply the api files or record them in sql_api.applied: {message}")]
    ApiHistory {
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
}

/// One applied migration, as reported to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: String,
}

/// What a run applied: the versioned migrations, then the api files (all of
/// them when any was applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub migrations: Vec<Applied>,
    pub api: Vec<ApiApplied>,
}

impl Report {
    /// Nothing was applied: the schema was current.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty() && self.api.is_empty()
    }
}

/// The highest migration version compiled into this binary.
pub fn latest_version() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// A fingerprint of the embedded migrations (versions and checksums), api
/// files (names, order and texts) and bootstrap's set-up, so a cached
/// migrated database can tell whether it is stale.
pub fn fingerprint() -> u64 {
    let migrations = embedded::migrations::runner().get_migrations().iter().fold(
        0xcbf2_9ce4_8422_2325_u64,
        |acc, m| {
            (acc ^ m.checksum() ^ u64::from(m.version().unsigned_abs()))
                .wrapping_mul(0x0100_0000_01b3)
        },
    );
    let api = API_FILES.iter().fold(migrations, |acc, f| {
        f.name
            .bytes()
            .chain(f.checksum().bytes())
            .fold(acc, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    });
    // A database bootstrapped by other set-up is another database too.
    bootstrap::TEXTS
        .iter()
        .flat_map(|t| t.bytes())
        .fold(api, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Checks a schema or database name before it is spliced into SQL as an
/// identifier: plain lowercase names only, so no quoting is ever needed.
pub fn validate_identifier(what: &'static str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 && !name.starts_with("pg_") {
        Ok(())
    } else {
        Err(Error::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// Applies every pending migration, then the api files when needed, to the
/// database at `dsn`; returns the versioned migrations applied (see
/// [`migrate_report`] for the api files too).
pub async fn migrate(dsn: &str, schema: Option<&str>) -> Result<Vec<Applied>, Error> {
    Ok(migrate_report(dsn, schema).await?.migrations)
}

/// Applies every pending migration to the database at `dsn`, then the api
/// files ([`API_FILES`]) when a migration changed the schema's shape (its
/// tables, columns, grants, functions, views, triggers or policies) or a
/// file changed.
/// On a Citus coordinator both go one statement at a time, and the tables
/// are then distributed ([`citus`]).
///
/// With `schema`, the schema is created if missing and the migrations (and
/// refinery's history table) go inside it; otherwise they go to the first
/// schema of the database's search path (`public`). The api files run under
/// the same search path.
pub async fn migrate_report(dsn: &str, schema: Option<&str>) -> Result<Report, Error> {
    migrate_with_api(dsn, schema, API_FILES).await
}

/// [`migrate_report`] with another list of api files (tests change one).
pub async fn migrate_with_api(
    dsn: &str,
    schema: Option<&str>,
    api_files: &[ApiFile<'_>],
) -> Result<Report, Error> {
    let plan = fleet::Plan {
        api_files,
        extra_migrations: &[],
    };
    let (mut client, driver) = connect_to(dsn, schema).await?;
    let report = migrate_on(&mut client, schema, &plan).await;
    drop(client);
    let _ = driver.await;
    report
}

/// Connects to `dsn` for migrating `schema` (checked first), with the
/// connection's driver task.
pub(crate) async fn connect_to(
    dsn: &str,
    schema: Option<&str>,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
    Error,
> {
    if let Some(s) = schema {
        validate_identifier("schema", s)?;
        if s == HISTORY_SCHEMA {
            return Err(Error::ReservedSchema(s.to_owned()));
        }
    }
    let (client, connection) = tokio_postgres::connect(dsn, NoTls)
        .await
        .map_err(Error::Connect)?;
    Ok((client, tokio::spawn(connection)))
}

/// The embedded migrations, plus `extra` (tests and benchmarks add one).
fn migrations(extra: &[(i32, &str, &str)]) -> Result<Vec<refinery::Migration>, Error> {
    let mut all = embedded::migrations::runner().get_migrations().clone();
    for (version, name, sql) in extra {
        all.push(refinery::Migration::unapplied(
            &format!("V{version}__{name}"),
            sql,
        )?);
    }
    Ok(all)
}

/// The versions and names of the migrations of `plan`, in order.
pub(crate) fn planned_migrations(plan: &fleet::Plan<'_>) -> Result<Vec<Applied>, Error> {
    let mut all: Vec<Applied> = migrations(plan.extra_migrations)?
        .iter()
        .map(|m| Applied {
            version: m.version(),
            name: m.name().to_owned(),
        })
        .collect();
    all.sort_by_key(|m| m.version);
    Ok(all)
}

/// Migrates the schema of an open connection (the database's default one
/// when `schema` is `None`): the pending versioned migrations, then the api
/// files when a migration changed the schema's shape or a file changed.
pub(crate) async fn migrate_on(
    client: &mut tokio_postgres::Client,
    schema: Option<&str>,
    plan: &fleet::Plan<'_>,
) -> Result<Report, Error> {
    // The drift watch leaves this session's DDL alone: a fleet run checks
    // what the migrations make (docs/fleet.md, "The drift check").
    client
        .batch_execute(&format!("set {} = on", fleet::MIGRATOR_SETTING))
        .await
        .map_err(fleet::fleet_error("cannot set the migrator's session"))?;
    if let Some(s) = schema {
        let sql =
            format!("create schema if not exists {s}; set search_path to {s}, {EXTENSIONS_SCHEMA}");
        client
            .batch_execute(&sql)
            .await
            .map_err(|source| Error::Schema {
                schema: s.to_owned(),
                source,
            })?;
    }

    let on_citus = citus::is_coordinator(client)
        .await
        .map_err(Error::CitusDetect)?;
    let before = fleet::shape(client).await.map_err(Error::Shape)?;
    let runner = refinery::Runner::new(&migrations(plan.extra_migrations)?)
        .set_abort_divergent(true)
        .set_abort_missing(true);
    let report = if on_citus {
        runner
            .run_async(&mut citus::OneStatementAtATime(client))
            .await?
    } else {
        runner.run_async(client).await?
    };
    let migrations: Vec<Applied> = report
        .applied_migrations()
        .iter()
        .map(|m| Applied {
            version: m.version(),
            name: m.name().to_owned(),
        })
        .collect();
    // A migration that only adds what no function or view is made of (an
    // index, a vocabulary row, a data move, a comment) leaves the api as it
    // was: re-applying every file in every tenant schema is what makes
    // fleets of schemas slow. One that adds, drops or changes a table,
    // column, function, view, trigger, policy or grant re-applies them all.
    let reshaped =
        !migrations.is_empty() && fleet::shape(client).await.map_err(Error::Shape)? != before;
    let api = api::apply(client, plan.api_files, reshaped, on_citus).await?;
    if on_citus {
        citus::distribute(client)
            .await
            .map_err(Error::CitusDistribute)?;
    }
    Ok(Report { migrations, api })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for ok in ["tenant_acme", "t1", "a"] {
            assert!(validate_identifier("schema", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Acme",
            "a-b",
            "a;drop",
            "pg_temp",
            &"x".repeat(64),
        ] {
            assert!(validate_identifier("schema", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn migrations_are_embedded_in_order() {
        let versions: Vec<i32> = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .collect();
        assert!(!versions.is_empty());
        assert_eq!(latest_version(), *versions.iter().max().unwrap());
    }
}
