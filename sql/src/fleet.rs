//! One placement of the fleet (a database, or a tenant schema in one):
//! what would run there, migrating it, and whether its objects are what the
//! embedded migrations and api files make.
//!
//! The BFF's `bizos migrate --fleet` walks the placement registry and calls
//! these for every placement; everything here is about one placement.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::{ApiFile, Applied, Error, Report, API_FILES, HISTORY_SCHEMA};

/// What a run applies: the api files and, for tests and benchmarks, extra
/// versioned migrations after the embedded ones (version, name, SQL).
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    pub api_files: &'a [ApiFile<'a>],
    pub extra_migrations: &'a [(i32, &'a str, &'a str)],
}

impl Plan<'static> {
    /// What this binary carries: the embedded migrations and api files.
    pub fn embedded() -> Self {
        Plan {
            api_files: API_FILES,
            extra_migrations: &[],
        }
    }
}

/// `ALTER EXTENSION bizos UPDATE` of a database: from, to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionUpdate {
    pub from: String,
    pub to: String,
}

/// What a run would do in a placement (a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    pub extension: Option<ExtensionUpdate>,
    pub migrations: Vec<Applied>,
    /// The api files differ from the recorded ones (they are applied too
    /// when a pending migration changes the schema's shape).
    pub api: bool,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.extension.is_none() && self.migrations.is_empty() && !self.api
    }
}

/// What a run did in a placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub extension: Option<ExtensionUpdate>,
    pub report: Report,
    /// The placement's objects against the expected ones (`None`: not
    /// checked).
    pub drift: Option<Drift>,
}

/// Objects of a placement that differ from the expected catalogue, by
/// `kind name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drift {
    /// Expected but absent.
    pub missing: Vec<String>,
    /// Present but not expected.
    pub unexpected: Vec<String>,
    /// Present with another definition.
    pub changed: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.changed.is_empty()
    }
}

/// Every object of a schema, `kind name` → hash of its definition, with the
/// schema's own name (and `public`) written as `@`, so a tenant schema and
/// a database's default schema built by the same files compare equal.
/// Definitions are compared without parentheses and white space, and
/// grants and policy roles in sorted order: a schema copied by pg_dump and
/// restored regroups `a and b and c` and reorders roles, which is no drift
/// (a change that only regroups an expression is not seen either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue(pub BTreeMap<String, String>);

impl Catalogue {
    /// How `actual` differs from this (the expected catalogue).
    pub fn drift(&self, actual: &Catalogue) -> Drift {
        let mut drift = Drift::default();
        for (name, hash) in &self.0 {
            match actual.0.get(name) {
                None => drift.missing.push(name.clone()),
                Some(h) if h != hash => drift.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        drift.unexpected = actual
            .0
            .keys()
            .filter(|n| !self.0.contains_key(*n))
            .cloned()
            .collect();
        drift
    }

    /// What `sql_api.drift_verified` records of the catalogue a schema was
    /// found equal to: `<how it is read>:<hash of every entry>`. A release
    /// that reads catalogues differently (another [`CATALOGUE_SQL`]) trusts
    /// none of the rows an older one wrote ([`Session::watch`]).
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for (name, def) in &self.0 {
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(def.as_bytes());
            hash.update([0]);
        }
        format!("{}:{:x}", catalogue_format(), hash.finalize())
    }
}

/// The version of [`CATALOGUE_SQL`]: a hash of its text.
fn catalogue_format() -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(CATALOGUE_SQL.as_bytes()))[..16].to_owned()
}

/// The session setting `bizos migrate` runs under: the drift watch
/// (sql/bootstrap/database.sql) leaves the migrator's DDL alone.
pub const MIGRATOR_SETTING: &str = "bizos_migrator.running";

/// What the drift watch of a database says (see [`Session::watch`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// The schema the database's default placement leads to.
    pub default_schema: String,
    /// The server's version and the installed extensions' versions: the
    /// same migrations make the same catalogue only where these are equal.
    pub environment: String,
    /// Schema → fingerprint of the expected catalogue it was last found
    /// equal to, untouched by DDL since; `None` when the database has no
    /// drift watch (not bootstrapped since it came, or its event triggers
    /// disabled): nothing is known unchanged there.
    pub verified: Option<BTreeMap<String, String>>,
}

/// What a drift check found, for [`Session::record_verified`]: schemas
/// read and equal to the expected catalogue, schemas left unread because
/// one of their group was (with the fingerprint they were verified at),
/// and schemas that drifted or could not be read.
#[derive(Debug, Clone, Default)]
pub struct Verdicts {
    pub read_clean: Vec<String>,
    pub unchanged: Vec<(String, String)>,
    pub drifted: Vec<String>,
}

/// The objects of the schemas named by `$1` (see [`Catalogue`]), one
/// statement for many schemas of a database: tables with their columns,
/// defaults and grants, indexes, constraints, functions (body, result,
/// settings, security, grants), views, triggers and policies, as (schema,
/// `kind name`, hash). Read with the search path at `extensions` alone, so
/// every definition names a schema's own objects qualified, and the
/// schema's name (and `public`) is then written as `@` — the same text for
/// every schema built by the same files, whatever the connection's path.
/// A function's body that names neither its schema nor `public` (most:
/// the files' text, the same in every schema) is hashed as written:
/// searching every body for the schema's name was a third of the
/// statement. About 75 ms of the server per schema of bizos in a
/// database of 1,000 schemas; a statement per schema added its planning
/// (about 13 ms) and a round trip to each.
const CATALOGUE_SQL: &str = r#"
-- The schemas' tables, views and functions through pg_depend's index on
-- what depends on a namespace, the rest by the relations' oids: a fleet
-- database holds a thousand schemas, and pg_class, pg_proc, pg_constraint
-- and pg_trigger have no index on the namespace (a scan of each per
-- schema made the check quadratic).
with ns as materialized (
  select n.oid, n.nspname::text as nsp from pg_catalog.pg_namespace n
   where n.nspname = any ($1::pg_catalog.text[])),
d as (
  select ns.nsp, dp.classid, dp.objid from ns join pg_catalog.pg_depend dp
      on dp.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
     and dp.refobjid = ns.oid and dp.refobjsubid = 0 and dp.deptype = 'n'),
-- A grant list equal to the owner's defaults means the same written out
-- or left null (a `revoke all .. from public` on a table writes it out,
-- pg_dump leaves it out): both are read as the defaults.
rel as materialized (
  select d.nsp, c.oid, c.relname, c.relkind,
         coalesce(c.relacl, pg_catalog.acldefault((case when c.relkind = 'S' then 's' else 'r' end)::pg_catalog."char", c.relowner)) as relacl
    from d join pg_catalog.pg_class c on c.oid = d.objid
   where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass),
fn as materialized (
  select d.nsp, p.* from d join pg_catalog.pg_proc p on p.oid = d.objid
   where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
-- One pattern per schema, the same for the name and the definition:
-- PostgreSQL keeps the last 32 regular expressions compiled, so a
-- statement reads at most CATALOGUE_BATCH schemas.
select nsp, kind || ' ' || pg_catalog.replace(pg_catalog.regexp_replace(name, pat, '@', 'g'), '@.', ''),
       pg_catalog.md5(pg_catalog.translate(pg_catalog.regexp_replace(def, pat, '@', 'g'), E'() \n\t', ''))
from (
  select *, '\m(public|' || nsp || ')\M' as pat from (
  select c.nsp, 'relation' as kind, c.relname::text as name,
         c.relkind::text || coalesce((select pg_catalog.string_agg(x::text, ',' order by x::text) from pg_catalog.unnest(c.relacl) x), '') ||
         coalesce((select pg_catalog.string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
                             || case when a.attnotnull then ' not null' else '' end
                             || coalesce(' default ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '')
                             || coalesce((select pg_catalog.string_agg(x::text, ',' order by x::text) from pg_catalog.unnest(a.attacl) x), ''), ', ' order by a.attnum)
                     from pg_catalog.pg_attribute a
                     left join pg_catalog.pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
                    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '') as def
    from rel c
  union all
  select c.nsp, 'index', ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid)
    from rel c join pg_catalog.pg_index i on i.indrelid = c.oid
    join pg_catalog.pg_class ic on ic.oid = i.indexrelid
  union all
  select c.nsp, 'constraint', c.relname || '.' || k.conname, pg_catalog.pg_get_constraintdef(k.oid)
    from rel c join pg_catalog.pg_constraint k on k.conrelid = c.oid
  union all
  select p.nsp, 'function', p.oid::pg_catalog.regprocedure::text,
         p.prokind::text
         || case when pg_catalog.strpos(p.prosrc, p.nsp) > 0 or pg_catalog.strpos(p.prosrc, 'public') > 0
                 then p.prosrc else pg_catalog.md5(p.prosrc) end
         || ' ' || pg_catalog.pg_get_function_result(p.oid)
         || coalesce(pg_catalog.array_to_string(p.proconfig, ','), '') || p.prosecdef::text
         || (select pg_catalog.string_agg(x::text, ',' order by x::text)
               from pg_catalog.unnest(coalesce(p.proacl, pg_catalog.acldefault('f'::pg_catalog."char", p.proowner))) x)
    from fn p
  union all
  select c.nsp, 'view', c.relname, pg_catalog.pg_get_viewdef(c.oid)
    from rel c where c.relkind in ('v', 'm')
  union all
  select c.nsp, 'trigger', c.relname || '.' || t.tgname, pg_catalog.pg_get_triggerdef(t.oid)
    from rel c join pg_catalog.pg_trigger t on t.tgrelid = c.oid
   where not t.tgisinternal
  union all
  select c.nsp, 'policy', c.relname || '.' || p.polname,
         p.polcmd::text || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || '|'
         || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
         || (select pg_catalog.string_agg(r::pg_catalog.regrole::text, ',' order by r::pg_catalog.regrole::text) from pg_catalog.unnest(p.polroles) r)
    from rel c join pg_catalog.pg_policy p on p.polrelid = c.oid
  ) o
) x"#;

/// Schemas read by one statement of [`catalogues`] (see [`CATALOGUE_SQL`]).
pub const CATALOGUE_BATCH: usize = 24;

/// The shape of the schema the search path leads to, cheaply (a few ms):
/// its tables, views and sequences with their grants, their columns, and
/// which functions, triggers and policies exist (by oid: migrations after
/// V19 only ever drop those, and a dropped and remade object has a new
/// one). Indexes, constraints and rows are left out: an index added by a
/// migration changes nothing the api files make.
const SHAPE_SQL: &str = r"
with d as (
  select classid, objid from pg_catalog.pg_depend
   where refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
     and refobjid = (select oid from pg_catalog.pg_namespace where nspname = pg_catalog.current_schema())
     and refobjsubid = 0 and deptype = 'n'),
rel as materialized (
  select c.oid, c.relkind, c.relacl from d join pg_catalog.pg_class c on c.oid = d.objid
   where d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass)
select pg_catalog.md5(concat_ws('|',
  (select pg_catalog.string_agg(c.oid::text || c.relkind::text || coalesce(c.relacl::text, ''), ',' order by c.oid)
     from rel c),
  (select pg_catalog.string_agg(a.attrelid::text || '.' || a.attnum || a.attname || a.atttypid || '.' || a.atttypmod
                                || a.attnotnull::text || coalesce(a.attacl::text, ''), ',' order by a.attrelid, a.attnum)
     from rel c join pg_catalog.pg_attribute a on a.attrelid = c.oid
    where a.attnum > 0 and not a.attisdropped),
  (select pg_catalog.string_agg(d.objid::text, ',' order by d.objid)
     from d where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass),
  (select pg_catalog.string_agg(t.oid::text, ',' order by t.oid)
     from rel c join pg_catalog.pg_trigger t on t.tgrelid = c.oid
    where not t.tgisinternal),
  (select pg_catalog.string_agg(p.oid::text, ',' order by p.oid)
     from rel c join pg_catalog.pg_policy p on p.polrelid = c.oid)))";

/// The shape of the client's current schema (see [`SHAPE_SQL`]).
pub(crate) async fn shape(client: &Client) -> Result<String, tokio_postgres::Error> {
    client.query_one(SHAPE_SQL, &[]).await.map(|r| r.get(0))
}

pub(crate) fn fleet_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Fleet {
        what,
        message: source
            .as_db_error()
            .map_or_else(|| source.to_string(), ToString::to_string),
        source,
    }
}

/// The catalogue of the client's current schema.
pub async fn catalogue(client: &Client) -> Result<Catalogue, Error> {
    let home: String = client
        .query_one("select pg_catalog.current_schema()::text", &[])
        .await
        .map_err(fleet_error("cannot read the current schema"))?
        .get(0);
    let mut all = catalogues(client, std::slice::from_ref(&home)).await?;
    Ok(all.pop().unwrap_or_default())
}

/// The catalogues of `schemas` of the client's database, in their order
/// (a schema that does not exist has an empty one), read
/// [`CATALOGUE_BATCH`] schemas a statement. The connection's search path
/// is `extensions` afterwards.
pub async fn catalogues(client: &Client, schemas: &[String]) -> Result<Vec<Catalogue>, Error> {
    client
        .batch_execute(&format!("set search_path to {}", crate::EXTENSIONS_SCHEMA))
        .await
        .map_err(fleet_error("cannot set the search path"))?;
    let statement = client
        .prepare(CATALOGUE_SQL)
        .await
        .map_err(fleet_error("cannot read the catalogue"))?;
    let mut by_schema: BTreeMap<String, Catalogue> = BTreeMap::new();
    for chunk in schemas.chunks(CATALOGUE_BATCH) {
        for row in client
            .query(&statement, &[&chunk])
            .await
            .map_err(fleet_error("cannot read the catalogue"))?
        {
            by_schema
                .entry(row.get(0))
                .or_default()
                .0
                .insert(row.get(1), row.get(2));
        }
    }
    Ok(schemas
        .iter()
        .map(|s| by_schema.get(s).cloned().unwrap_or_default())
        .collect())
}

/// The installed and the available version of extension bizos, when they
/// differ.
async fn extension_update(client: &Client) -> Result<Option<ExtensionUpdate>, Error> {
    let row = client
        .query_opt(
            "select e.extversion::text, a.default_version::text
               from pg_catalog.pg_extension e
               join pg_catalog.pg_available_extensions a on a.name = e.extname
              where e.extname = 'bizos' and e.extversion <> a.default_version",
            &[],
        )
        .await
        .map_err(fleet_error("cannot read the version of extension bizos"))?;
    Ok(row.map(|r| ExtensionUpdate {
        from: r.get(0),
        to: r.get(1),
    }))
}

/// What a run would do in the placement, without changing anything: no
/// schema is created, no history table, no lock taken.
pub async fn pending(dsn: &str, schema: Option<&str>, plan: &Plan<'_>) -> Result<Pending, Error> {
    let (client, driver) = crate::connect_to(dsn, schema).await?;
    let result = pending_on(&client, schema, plan).await;
    drop(client);
    let _ = driver.await;
    result
}

async fn pending_on(
    client: &Client,
    schema: Option<&str>,
    plan: &Plan<'_>,
) -> Result<Pending, Error> {
    let extension = extension_update(client).await?;
    let home: String = match schema {
        Some(s) => s.to_owned(),
        None => client
            .query_one("select pg_catalog.current_schema()::text", &[])
            .await
            .map_err(fleet_error("cannot read the current schema"))?
            .get(0),
    };
    let history = format!("{home}.refinery_schema_history");
    let applied: Vec<i32> = if client
        .query_one("select pg_catalog.to_regclass($1) is not null", &[&history])
        .await
        .map_err(fleet_error("cannot look for the migration history"))?
        .get(0)
    {
        client
            .query(&format!("select version from {history}"), &[])
            .await
            .map_err(fleet_error("cannot read the migration history"))?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        Vec::new()
    };
    let migrations = crate::planned_migrations(plan)?
        .into_iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    let recorded: Vec<(String, String)> = if client
        .query_one(
            "select pg_catalog.to_regclass($1) is not null",
            &[&format!("{HISTORY_SCHEMA}.applied")],
        )
        .await
        .map_err(fleet_error("cannot look for the api history"))?
        .get(0)
    {
        client
            .query(
                &format!(
                    "select file, checksum from {HISTORY_SCHEMA}.applied
                      where schema_name = $1 order by file"
                ),
                &[&home],
            )
            .await
            .map_err(fleet_error("cannot read the api history"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    } else {
        Vec::new()
    };
    let mut wanted: Vec<(String, String)> = plan
        .api_files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect();
    wanted.sort();
    Ok(Pending {
        extension,
        migrations,
        api: recorded != wanted,
    })
}

/// An open connection to a database of the fleet, kept for the next
/// placement of the same database: a connection's first statements read
/// the catalogue's base entries cold, which cost a schema more than its
/// migration.
pub struct Session {
    client: Client,
    driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
}

impl Session {
    /// Connects to the database at `dsn`.
    pub async fn connect(dsn: &str) -> Result<Session, Error> {
        let (client, driver) = crate::connect_to(dsn, None).await?;
        Ok(Session { client, driver })
    }

    /// Whether the connection is still usable (the server did not end it).
    pub fn is_open(&self) -> bool {
        !self.client.is_closed()
    }

    /// Closes the connection and waits for its end.
    pub async fn close(self) {
        drop(self.client);
        let _ = self.driver.await;
    }

    /// [`migrate_placement`] on this connection, without the drift check
    /// ([`Session::catalogues`] reads many schemas at once). The session's
    /// settings are reset first: the search path a schema before set must
    /// not lead a database's default placement elsewhere.
    pub async fn migrate(
        &mut self,
        schema: Option<&str>,
        plan: &Plan<'_>,
    ) -> Result<Outcome, Error> {
        if let Some(s) = schema {
            crate::validate_identifier("schema", s)?;
            if s == HISTORY_SCHEMA {
                return Err(Error::ReservedSchema(s.to_owned()));
            }
        }
        self.client
            .batch_execute("reset all")
            .await
            .map_err(fleet_error("cannot reset the session"))?;
        let extension = extension_update(&self.client).await?;
        if extension.is_some() {
            self.client
                .batch_execute("alter extension bizos update")
                .await
                .map_err(fleet_error("alter extension bizos update failed"))?;
        }
        let report = crate::migrate_on(&mut self.client, schema, plan).await?;
        Ok(Outcome {
            extension,
            report,
            drift: None,
        })
    }

    /// The catalogues of these placements of the database (`None`: its
    /// default schema), in their order; see [`catalogues`].
    pub async fn catalogues(&self, schemas: &[Option<String>]) -> Result<Vec<Catalogue>, Error> {
        let default = if schemas.iter().any(Option::is_none) {
            self.default_schema().await?
        } else {
            String::new()
        };
        let names: Vec<String> = schemas
            .iter()
            .map(|s| s.clone().unwrap_or_else(|| default.clone()))
            .collect();
        catalogues(&self.client, &names).await
    }

    async fn default_schema(&self) -> Result<String, Error> {
        self.client
            .batch_execute("reset all")
            .await
            .map_err(fleet_error("cannot reset the session"))?;
        Ok(self
            .client
            .query_one("select pg_catalog.current_schema()::text", &[])
            .await
            .map_err(fleet_error("cannot read the current schema"))?
            .get(0))
    }

    /// The database's drift watch: its default schema, and the schemas
    /// verified and untouched since, when both event triggers are there
    /// and enabled always.
    pub async fn watch(&self) -> Result<Watch, Error> {
        let default_schema = self.default_schema().await?;
        let row = self
            .client
            .query_one(
                "select pg_catalog.current_setting('server_version_num') || ' '
                        || (select pg_catalog.string_agg(extname || ' ' || extversion, ',' order by extname)
                              from pg_catalog.pg_extension),
                        pg_catalog.to_regclass('sql_api.drift_verified') is not null
                        and (select pg_catalog.count(*) from pg_catalog.pg_event_trigger e
                              where e.evtname in ('bizos_drift_watch', 'bizos_drift_watch_drops')
                                and e.evtenabled = 'A'
                                and e.evtfoid = 'sql_api.drift_watch()'::pg_catalog.regprocedure) = 2",
                &[],
            )
            .await
            .map_err(fleet_error("cannot read the drift watch"))?;
        let (environment, watched): (String, bool) = (row.get(0), row.get(1));
        let verified = if watched {
            let rows = self
                .client
                .query(
                    "select schema_name, expected from sql_api.drift_verified
                      where pg_catalog.starts_with(expected, $1 || ':')",
                    &[&catalogue_format()],
                )
                .await
                .map_err(fleet_error("cannot read the drift watch"))?;
            Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        } else {
            None
        };
        Ok(Watch {
            default_schema,
            environment,
            verified,
        })
    }

    /// Marks `schemas` as being read (their rows' fingerprint cleared):
    /// DDL from now on deletes the mark, and [`Session::record_verified`]
    /// only confirms a mark still there. Call before reading them.
    pub async fn mark_reading(&self, schemas: &[String]) -> Result<(), Error> {
        self.client
            .execute(
                "insert into sql_api.drift_verified (schema_name)
                 select pg_catalog.unnest($1::pg_catalog.text[])
                 on conflict (schema_name) do update set expected = null, verified_at = null",
                &[&schemas],
            )
            .await
            .map_err(fleet_error("cannot mark the schemas read"))?;
        Ok(())
    }

    /// Records what a drift check found against the expected catalogue of
    /// fingerprint `expected`: a schema read while marked, or left unread
    /// and still at the fingerprint it was trusted at, is verified at
    /// `expected`; a drifted one is forgotten. A schema DDL touched
    /// meanwhile has lost its row and stays unverified.
    pub async fn record_verified(&self, expected: &str, v: &Verdicts) -> Result<(), Error> {
        let (unchanged, at): (Vec<&str>, Vec<&str>) = v
            .unchanged
            .iter()
            .map(|(s, h)| (s.as_str(), h.as_str()))
            .unzip();
        self.client
            .execute(
                "with read_clean as (
                   update sql_api.drift_verified set expected = $1, verified_at = pg_catalog.now()
                    where schema_name = any ($2::pg_catalog.text[]) and expected is null),
                 unchanged as (
                   update sql_api.drift_verified v set expected = $1, verified_at = pg_catalog.now()
                     from unnest($3::pg_catalog.text[], $4::pg_catalog.text[]) u(s, at)
                    where v.schema_name = u.s and v.expected = u.at)
                 delete from sql_api.drift_verified where schema_name = any ($5::pg_catalog.text[])",
                &[&expected, &v.read_clean, &unchanged, &at, &v.drifted],
            )
            .await
            .map_err(fleet_error("cannot record the drift check"))?;
        Ok(())
    }
}

/// Migrates one placement: `ALTER EXTENSION bizos UPDATE` when the
/// installed version is not the available one, then the pending migrations
/// and the api files as `bizos migrate` does, then (with `expected`) reads
/// its catalogue and reports how it differs. Drift is reported, never
/// repaired.
pub async fn migrate_placement(
    dsn: &str,
    schema: Option<&str>,
    plan: &Plan<'_>,
    expected: Option<&Catalogue>,
) -> Result<Outcome, Error> {
    let mut session = Session::connect(dsn).await?;
    let result = async {
        let mut outcome = session.migrate(schema, plan).await?;
        if let Some(expected) = expected {
            let actual = session
                .catalogues(&[schema.map(str::to_owned)])
                .await?
                .pop()
                .unwrap_or_default();
            outcome.drift = Some(expected.drift(&actual));
        }
        Ok(outcome)
    }
    .await;
    session.close().await;
    result
}

/// The catalogue the files of `plan` make: they are applied to a scratch
/// schema `schema` of the database at `dsn` (dropped first and after, with
/// its analytics schema and api history), and its objects read.
pub async fn expected_catalogue(
    dsn: &str,
    schema: &str,
    plan: &Plan<'_>,
) -> Result<Catalogue, Error> {
    let (mut client, driver) = crate::connect_to(dsn, Some(schema)).await?;
    let drop_sql = format!(
        "drop schema if exists {schema} cascade;
         drop schema if exists {schema}_analytics cascade;
         do $$ begin
           if pg_catalog.to_regclass('{HISTORY_SCHEMA}.applied') is not null then
             delete from {HISTORY_SCHEMA}.applied where schema_name = '{schema}';
           end if;
         end $$;"
    );
    let result = async {
        client
            .batch_execute(&drop_sql)
            .await
            .map_err(fleet_error("cannot drop the scratch schema"))?;
        crate::migrate_on(&mut client, Some(schema), plan).await?;
        let expected = catalogue(&client).await?;
        client
            .batch_execute(&drop_sql)
            .await
            .map_err(fleet_error("cannot drop the scratch schema"))?;
        Ok(expected)
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// An error as the operator should read it: its own text, then the
/// PostgreSQL message underneath (refinery and tokio-postgres show only
/// "db error").
pub fn describe(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(db) = s
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            let db = db.to_string();
            if !text.contains(&db) {
                text = format!("{text}: {db}");
            }
            break;
        }
        source = s.source();
    }
    text
}

/// Whether the error is a collision with another placement's migration in
/// the same database, which a retry gets past: a statement of a migration
/// that touches a database-wide object (`grant select on bizos.transitions`
/// in every schema) run by two schemas at once ("tuple concurrently
/// updated"), a deadlock, a serialization failure. Each migration is a
/// transaction of its own and the history says where to continue.
pub fn is_collision(e: &Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(db) = s
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            use tokio_postgres::error::SqlState;
            let code = db.code();
            return *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || (*code == SqlState::INTERNAL_ERROR
                    && db.message().contains("concurrently updated"));
        }
        source = s.source();
    }
    false
}

/// A connection string in either form (`key=value` or URL) as a URL, the
/// form sqlx takes.
pub fn as_url(dsn: &str) -> Result<String, Error> {
    let config: tokio_postgres::Config = dsn.parse().map_err(Error::Connect)?;
    Ok(crate::server::to_url(&config))
}

/// Whether two connection strings reach the same database (same hosts,
/// ports and database name; users may differ).
pub fn same_database(a: &str, b: &str) -> bool {
    let key = |dsn: &str| {
        dsn.parse::<tokio_postgres::Config>().ok().map(|c| {
            (
                format!("{:?}", c.get_hosts()),
                c.get_ports().to_vec(),
                c.get_dbname().map(str::to_owned),
            )
        })
    };
    matches!((key(a), key(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(items: &[(&str, &str)]) -> Catalogue {
        Catalogue(
            items
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn a_fingerprint_names_how_catalogues_are_read_and_follows_every_entry() {
        let a = cat(&[("relation t", "1"), ("index i", "2")]);
        let f = a.fingerprint();
        assert!(f.starts_with(&format!("{}:", catalogue_format())), "{f}");
        assert_eq!(
            f,
            cat(&[("index i", "2"), ("relation t", "1")]).fingerprint()
        );
        assert_ne!(
            f,
            cat(&[("relation t", "1"), ("index i", "3")]).fingerprint()
        );
        assert_ne!(f, cat(&[("relation t", "1")]).fingerprint());
        // Entries are delimited: a name's end is not a definition's start.
        assert_ne!(
            cat(&[("relation t", "12")]).fingerprint(),
            cat(&[("relation t1", "2")]).fingerprint()
        );
    }

    #[test]
    fn drift_names_missing_unexpected_and_changed_objects() {
        let expected = cat(&[("relation a", "1"), ("function f()", "2"), ("view v", "3")]);
        assert!(expected.drift(&expected.clone()).is_empty());
        let actual = cat(&[("relation a", "1"), ("function f()", "9"), ("index i", "4")]);
        let drift = expected.drift(&actual);
        assert_eq!(drift.missing, ["view v"]);
        assert_eq!(drift.changed, ["function f()"]);
        assert_eq!(drift.unexpected, ["index i"]);
    }

    #[test]
    fn the_same_database_is_known_by_host_port_and_name() {
        let a = "host=127.0.0.1 port=5432 user=bizos_owner dbname=bizos";
        assert!(same_database(a, "postgres://postgres@127.0.0.1:5432/bizos"));
        assert!(!same_database(
            a,
            "postgres://postgres@127.0.0.1:5432/other"
        ));
        assert!(!same_database(
            a,
            "postgres://postgres@127.0.0.1:5433/bizos"
        ));
    }
}
