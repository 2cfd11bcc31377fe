//! Superuser set-up of a cluster and a database: the roles, the database
//! owned by `bizos_owner`, the helper extensions and `bizos` itself, and
//! (in the database pg_cron lives in) the pg_cron job firing the schedules.
//! Everything here is idempotent, so DBAs and `scripts/dev up` run it freely.

use secrecy::{ExposeSecret, SecretString};

use crate::server::{connect, derive_dsn, ensure_database, step};
use crate::{validate_identifier, Error};

const ROLES_SQL: &str = include_str!("../bootstrap/roles.sql");
const DATABASE_SQL: &str = include_str!("../bootstrap/database.sql");
const CRON_SQL: &str = include_str!("../bootstrap/cron.sql");

/// The set-up's texts, for [`crate::fingerprint`].
pub(crate) const TEXTS: [&str; 3] = [ROLES_SQL, DATABASE_SQL, CRON_SQL];

/// The login roles whose passwords bootstrap may set.
pub const LOGIN_ROLES: [&str; 5] = [
    "bizos_owner",
    "bizos_app",
    "bizos_worker",
    "bizos_analyst",
    "bizos_bi",
];

#[derive(Debug, Default)]
pub struct BootstrapOptions {
    /// Database to create (if missing) and prepare.
    pub database: String,
    /// Passwords to set, by login role; roles left out keep theirs.
    pub passwords: Vec<(String, SecretString)>,
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
        .query_one(
            "select rolsuper from pg_catalog.pg_roles where rolname = current_user",
            &[],
        )
        .await
        .map_err(step("check superuser"))?
        .get(0);
    if !is_super {
        return Err(Error::NotSuperuser);
    }

    // Roles are cluster-wide: serialise concurrent bootstraps (parallel test
    // binaries, several DBAs) so they never race on pg_authid.
    admin
        .execute(
            "select pg_catalog.pg_advisory_lock(hashtext('bizos.bootstrap'))",
            &[],
        )
        .await
        .map_err(step("lock"))?;
    admin
        .batch_execute(ROLES_SQL)
        .await
        .map_err(step("roles"))?;
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
    ensure_database(&admin, db).await?;
    crate::citus::bootstrap_nodes(&admin, admin_dsn, db).await?;

    let target = connect(&derive_dsn(admin_dsn, None, db)?).await?;
    target
        .batch_execute(DATABASE_SQL)
        .await
        .map_err(step("extensions"))?;
    crate::citus::place_extension_tables(&target).await?;
    // In the cron database only: pg_cron calls schedules_fire() every minute.
    target
        .batch_execute(CRON_SQL)
        .await
        .map_err(step("pg_cron job"))?;

    admin
        .execute(
            "select pg_catalog.pg_advisory_unlock(hashtext('bizos.bootstrap'))",
            &[],
        )
        .await
        .map_err(step("unlock"))?;
    Ok(())
}
