//! The schema on a Citus cluster. `bizos migrate` finds out
//! whether its database is a Citus coordinator with workers; if so it
//!
//! * sends every migration and api file one statement at a time (Citus
//!   sends the whole query string of a DDL command on a distributed table to
//!   the shards, so a multi-statement batch fails there), and
//! * drops, with the api files, the triggers Citus cannot run
//!   (`sql/citus/triggers.sql`), and
//! * once they are applied, runs `sql/citus/policies.sql` (for the tables
//!   not distributed yet) and `distribute.sql` in one transaction: tenant tables become
//!   distributed by tenant_id in one co-location group, the global
//!   catalogues reference tables (see those files for the rules), then
//!   `functions.sql` and `grants.sql` adapt functions and grants.
//!
//! A single-node database is migrated exactly as before.

use refinery_core::traits::r#async::{AsyncMigrate, AsyncQuery, AsyncTransaction};
use refinery_core::Migration;
use tokio_postgres::Client;

use crate::server::step;
use crate::statements::{split, SplitError};

/// The Citus form of the policies that read other tables.
pub const POLICIES_SQL: &str = include_str!("../citus/policies.sql");
/// Drops the triggers that cannot run on Citus (with every api run).
pub const TRIGGERS_SQL: &str = include_str!("../citus/triggers.sql");
/// Places the extension's catalogues (bootstrap, as the superuser).
pub const EXTENSION_SQL: &str = include_str!("../citus/extension.sql");
/// Distributes every table Citus does not know yet.
pub const DISTRIBUTE_SQL: &str = include_str!("../citus/distribute.sql");
/// Rewrites the SQL functions Citus cannot plan as PL/pgSQL.
pub const FUNCTIONS_SQL: &str = include_str!("../citus/functions.sql");
/// Widens INSERT grants per column to the table.
pub const GRANTS_SQL: &str = include_str!("../citus/grants.sql");

/// Is the client's database a Citus coordinator with at least one worker?
pub async fn is_coordinator(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let has_citus: bool = client
        .query_one(
            "select exists (select 1 from pg_catalog.pg_extension where extname = 'citus')",
            &[],
        )
        .await?
        .get(0);
    if !has_citus {
        return Ok(false);
    }
    client
        .query_one(
            "select exists (select 1 from pg_catalog.pg_dist_node
                             where noderole = 'primary' and isactive and groupid <> 0)",
            &[],
        )
        .await
        .map(|row| row.get(0))
}

/// Runs `script` in the open transaction one statement at a time.
pub(crate) async fn execute_each(
    tx: &tokio_postgres::Transaction<'_>,
    script: &str,
) -> Result<(), StepError> {
    for statement in split(script)? {
        tx.batch_execute(statement)
            .await
            .map_err(|source| StepError::Db {
                offset: statement.as_ptr() as usize - script.as_ptr() as usize,
                source,
            })?;
    }
    Ok(())
}

/// A statement of a script failed, or the script could not be cut.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Split(#[from] SplitError),
    /// `offset`: where the failing statement starts in its script, in bytes.
    #[error("{}", source.as_db_error().map_or_else(|| source.to_string(), ToString::to_string))]
    Db {
        offset: usize,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl From<tokio_postgres::Error> for StepError {
    fn from(source: tokio_postgres::Error) -> Self {
        StepError::Db { offset: 0, source }
    }
}

/// refinery's driver for a Citus coordinator: each migration in its own
/// transaction, as with a plain client, but sent statement by statement.
pub(crate) struct OneStatementAtATime<'c>(pub &'c mut Client);

impl AsyncTransaction for OneStatementAtATime<'_> {
    type Error = StepError;

    async fn execute<'a, T: Iterator<Item = &'a str> + Send + 'a>(
        &'a mut self,
        queries: T,
    ) -> Result<usize, Self::Error> {
        let tx = self.0.transaction().await?;
        let mut count = 0;
        for query in queries {
            execute_each(&tx, query).await?;
            count += 1;
        }
        tx.commit().await?;
        Ok(count)
    }
}

impl AsyncQuery<Vec<Migration>> for OneStatementAtATime<'_> {
    async fn query<'a>(&'a mut self, query: &'a str) -> Result<Vec<Migration>, Self::Error> {
        Ok(<Client as AsyncQuery<Vec<Migration>>>::query(self.0, query).await?)
    }
}

impl AsyncMigrate for OneStatementAtATime<'_> {}

/// Gives the tables Citus does not know yet their place, in one
/// transaction: the Citus form of their policies, then the distribution;
/// every time, the PL/pgSQL form of the functions Citus cannot plan and the
/// INSERT grants the shards need.
pub(crate) async fn distribute(client: &mut Client) -> Result<(), StepError> {
    let tx = client.transaction().await?;
    let first: bool = tx
        .query_one(
            "select not exists (
               select 1 from pg_catalog.pg_dist_partition d
                 join pg_catalog.pg_class c on c.oid = d.logicalrelid
                where c.relnamespace = pg_catalog.current_schema()::regnamespace)",
            &[],
        )
        .await?
        .get(0);
    // Every time: a migration may have added a table (with a policy that
    // reads another one) to a distributed schema; the file alters the
    // tables Citus does not hold yet only.
    execute_each(&tx, POLICIES_SQL).await?;
    tx.batch_execute(DISTRIBUTE_SQL).await?;
    // Keys to reference tables become triggers (sql/citus/extension.sql).
    tx.batch_execute("select sql_api.citus_reference_keys_replace(pg_catalog.current_schema())")
        .await?;
    for script in [FUNCTIONS_SQL, GRANTS_SQL] {
        tx.batch_execute(script).await?;
    }
    if first {
        // The api files built the analytics views before the tables were
        // distributed; views of distributed tables read them differently.
        tx.batch_execute("select analytics_build_views()").await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The workers of the Citus cluster the admin connection is on, as (host,
/// port), when its database has Citus with workers; `None` on a single
/// node.
async fn workers_of(admin: &Client) -> Result<Option<Vec<(String, u16)>>, crate::Error> {
    if !is_coordinator(admin)
        .await
        .map_err(step("find Citus workers"))?
    {
        return Ok(None);
    }
    let rows = admin
        .query(
            "select nodename, nodeport from pg_catalog.pg_dist_node
              where noderole = 'primary' and isactive and groupid <> 0
              order by nodeid",
            &[],
        )
        .await
        .map_err(step("find Citus workers"))?;
    Ok(Some(
        rows.iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1) as u16))
            .collect(),
    ))
}

/// `dsn`'s user and password on another server and database.
fn node_dsn(dsn: &str, host: &str, port: u16, dbname: &str) -> Result<String, crate::Error> {
    let base: tokio_postgres::Config = dsn.parse().map_err(crate::Error::Connect)?;
    let mut node = tokio_postgres::Config::new();
    node.host(host).port(port).dbname(dbname);
    if let Some(user) = base.get_user() {
        node.user(user);
    }
    if let Some(password) = base.get_password() {
        node.password(password);
    }
    Ok(crate::server::to_url(&node))
}

/// Bootstrap's part on a Citus cluster, after the roles (which Citus copies
/// to the workers) and the database on the coordinator: the database on
/// every worker, Citus in it on every node, the workers added to the
/// database's coordinator, and the settings bizos needs there:
///
/// * `citus.propagate_set_commands = local`: a request's `SET LOCAL` of its
///   claims reaches the workers (authenticate_request);
/// * `citus.enable_unsafe_triggers = on`: bizos's triggers run on the
///   shards (they touch their row and rows of the same tenant only);
/// * bizos_authenticated may log in (Citus connects to the workers as the
///   request's role);
/// * the admin (the owner of the extension's tables) has CONNECT on the
///   database by a grant, not only as a superuser: Citus's online shard
///   transfer applies a table's changes as a role it makes a member of the
///   table's owner (and no superuser), and the database refuses PUBLIC;
///   without the grant the subscription of the extension's tables (numbers,
///   audit) failed to connect on every try, and Citus finished the move
///   without their changes made meanwhile;
/// * bizos_owner may set `pg_trgm.similarity_threshold` on every node
///   (functions carry it, and Citus creates them on the workers, where
///   pg_trgm is not loaded yet).
pub(crate) async fn bootstrap_nodes(
    admin: &Client,
    admin_dsn: &str,
    db: &str,
) -> Result<(), crate::Error> {
    let Some(workers) = workers_of(admin).await? else {
        return Ok(());
    };
    let admin_db: String = admin
        .query_one("select pg_catalog.current_database()::text", &[])
        .await
        .map_err(step("Citus: admin database"))?
        .get(0);
    // Citus opens its connections to the workers as the current role, and a
    // request runs as bizos_authenticated: that role must be able to log in
    // there. It gets no password; the DBA's pg_hba.conf admits it from the
    // cluster's own nodes only (certificate, or trust on their private
    // addresses), see README. Citus copies the attribute to every node.
    admin
        .batch_execute("alter role bizos_authenticated login")
        .await
        .map_err(step("Citus: the request role's login"))?;
    // The settings are set where they are missing only: once a worker holds
    // Citus metadata it refuses ALTER DATABASE ("operation is not allowed
    // on this node"), and a second bootstrap (the DBA bringing the
    // extension up to date) would stop there.
    let per_node = "create extension if not exists citus;
         grant set on parameter pg_trgm.similarity_threshold to bizos_owner;
         do $settings$
         declare
           v_have text[];
           v_want text;
         begin
           select s.setconfig into v_have
             from pg_catalog.pg_db_role_setting s
             join pg_catalog.pg_database d on d.oid = s.setdatabase
            where d.datname = pg_catalog.current_database() and s.setrole = 0;
           foreach v_want in array array['citus.propagate_set_commands=local',
                                         'citus.enable_unsafe_triggers=on'] loop
             if not v_want = any (coalesce(v_have, '{}')) then
               execute format('alter database %I set %s = %L', pg_catalog.current_database(),
                              pg_catalog.split_part(v_want, '=', 1), pg_catalog.split_part(v_want, '=', 2));
             end if;
           end loop;
         end
         $settings$;";
    for (host, port) in &workers {
        let node_admin =
            crate::server::connect(&node_dsn(admin_dsn, host, *port, &admin_db)?).await?;
        crate::server::ensure_database(&node_admin, db).await?;
        node_admin
            .batch_execute(&format!(
                "grant connect on database {db} to bizos_authenticated, current_user"
            ))
            .await
            .map_err(step("Citus: the request role's connect on a worker"))?;
        let node = crate::server::connect(&node_dsn(admin_dsn, host, *port, db)?).await?;
        node.batch_execute(per_node)
            .await
            .map_err(step("Citus: prepare a worker"))?;
    }
    let target = crate::server::connect(&crate::derive_dsn(admin_dsn, None, db)?).await?;
    target
        .batch_execute(&format!("grant connect on database {db} to current_user"))
        .await
        .map_err(step("Citus: the admin's connect on the coordinator"))?;
    target
        .batch_execute(per_node)
        .await
        .map_err(step("Citus: prepare the coordinator"))?;
    let coordinator: (String, i32) = admin
        .query_one(
            "select nodename, nodeport from pg_catalog.pg_dist_node where groupid = 0",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .map_err(step("Citus: the coordinator's address"))?;
    target
        .execute(
            "select pg_catalog.citus_set_coordinator_host($1, $2)",
            &[&coordinator.0, &coordinator.1],
        )
        .await
        .map_err(step("Citus: set the coordinator"))?;
    for (host, port) in &workers {
        target
            .execute(
                "select pg_catalog.citus_add_node($1, $2)
                  where not exists (select 1 from pg_catalog.pg_dist_node
                                     where nodename = $1 and nodeport = $2)",
                &[host, &i32::from(*port)],
            )
            .await
            .map_err(step("Citus: add a worker"))?;
    }
    Ok(())
}

/// Bootstrap's last part on a Citus coordinator (`target`: the new
/// database, as the superuser, after CREATE EXTENSION bizos): the
/// extension's catalogues placed (`sql/citus/extension.sql`).
pub(crate) async fn place_extension_tables(target: &Client) -> Result<(), crate::Error> {
    if !is_coordinator(target)
        .await
        .map_err(step("find Citus workers"))?
    {
        return Ok(());
    }
    target
        .batch_execute(EXTENSION_SQL)
        .await
        .map_err(step("Citus: place the extension's tables"))
}
