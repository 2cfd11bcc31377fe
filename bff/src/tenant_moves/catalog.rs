//! The tables a move copies, read from the source's catalogue: every table
//! of the tenant's schema with a `tenant_id` column and, when the target is
//! another database, the extension's tables of the tenant (schema `bizos`:
//! audit chain, business-number counters and sequences); each with its
//! columns, its key and its place in the foreign-key order.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

/// The extension's schema: shared by every schema of a database, so a move
/// within one database leaves its rows where they are.
pub const EXTENSION_SCHEMA: &str = "bizos";

/// `bizos.id_sequences` names a sequence per (tenant, kind, year): copied
/// with its sequence at the freeze, not as rows ([`super::freeze`]).
pub const ID_SEQUENCES: &str = "id_sequences";

/// The job queue's round-robin order (`job_tenants`): a row per tenant
/// with jobs, written by a trigger of `jobs` that a copy (replica role)
/// does not fire; [`ensure_job_tenant`] writes it.
pub const JOB_TENANTS: &str = "job_tenants";

/// How a table's changes during the move reach the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The capture trigger records the keys written.
    Capture,
    /// Append-only and written below the executor (the extension inserts
    /// audit entries straight into the heap: no trigger fires): the
    /// entries past the target's last of each chain are copied.
    Tail,
    /// Small and written for every tenant by the worker's own machinery
    /// (the audit chains' heads, written below the executor; the job
    /// queue's round-robin, which every claim updates and which must stay
    /// writable for the move's own job): copied whole again, no trigger.
    Whole,
}

/// One table to move.
#[derive(Debug, Clone)]
pub struct Table {
    pub follow: Follow,
    /// Its schema in the source.
    pub schema: String,
    /// Its schema in the target (the extension's stays `bizos`).
    pub target_schema: String,
    pub name: String,
    /// The columns a copy writes (no generated ones), in table order.
    pub columns: Vec<String>,
    /// The row key: primary key, replica identity index or a unique
    /// constraint that treats NULLs as equal; empty: none (preflight refuses).
    pub key: Vec<String>,
    /// Whether a key column may be NULL (compared with IS NOT DISTINCT FROM).
    pub key_nullable: bool,
    /// The columns whose type has no built-in hash function of its own
    /// (arrays, enums, an extension's types): the verification hashes
    /// their text.
    pub hashed_as_text: BTreeSet<String>,
}

impl Table {
    /// `schema.name` in the source: the name the capture records.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn source_ident(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }

    pub fn target_ident(&self) -> String {
        format!("{}.{}", ident(&self.target_schema), ident(&self.name))
    }

    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The tenant's rows of this table (`alias` qualifies the columns).
    /// The mover's own jobs stay with the control database's queue: they
    /// are the move's, not the tenant's data.
    pub fn tenant_filter(&self, alias: &str, tenant: uuid::Uuid) -> String {
        let mut f = format!("{alias}.tenant_id = '{tenant}'");
        if self.name == "jobs" && self.schema != EXTENSION_SCHEMA {
            f.push_str(&format!(" and {alias}.kind <> 'tenant.move'"));
        }
        f
    }

    /// `(a.k1, a.k2) = (b.k1, b.k2)`, or IS NOT DISTINCT FROM when a key
    /// column may be NULL.
    pub fn key_match(&self, a: &str, b: &str) -> String {
        let side = |alias: &str| {
            self.key
                .iter()
                .map(|k| format!("{alias}.{}", ident(k)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let op = if self.key_nullable {
            "is not distinct from"
        } else {
            "="
        };
        format!("row({}) {op} row({})", side(a), side(b))
    }

    pub fn key_list(&self, alias: &str) -> String {
        self.key
            .iter()
            .map(|k| format!("{alias}.{}", ident(k)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The tenant's row of the round-robin in the target when it has jobs
/// there (the copy replaced the row by the source's, or by none).
pub async fn ensure_job_tenant(
    conn: &mut PgConnection,
    table: &Table,
    tenant: uuid::Uuid,
) -> Result<(), sqlx::Error> {
    if table.name != JOB_TENANTS {
        return Ok(());
    }
    let schema = ident(&table.target_schema);
    sqlx::query(&format!(
        "insert into {schema}.{jt} (tenant_id)
         select $1 where exists (select 1 from {schema}.jobs j where j.tenant_id = $1)
         on conflict do nothing",
        jt = ident(JOB_TENANTS)
    ))
    .bind(tenant)
    .execute(conn)
    .await
    .map(drop)
}

/// A quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A quoted literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The tables of the tenant in `schema` of the source (and of `bizos` when
/// `with_extension`), parents before children; `id_sequences` is left out
/// (its rows go with their sequences), and so are the operator's records
/// about the tenant (`control.operator_tables`, V58: its subscription and
/// billing stay in the control database).
pub async fn tables(
    conn: &mut PgConnection,
    schema: &str,
    target_schema: &str,
    with_extension: bool,
) -> Result<Vec<Table>, sqlx::Error> {
    let mut schemas = vec![schema.to_owned()];
    if with_extension {
        schemas.push(EXTENSION_SCHEMA.to_owned());
    }
    type Row = (
        i64,
        String,
        String,
        Vec<String>,
        Vec<String>,
        bool,
        Vec<String>,
    );
    // The key: the primary key, else the replica identity index, else a
    // unique constraint or index whose NULLs are equal or whose columns
    // are all NOT NULL (the row's identity all the same).
    let rows: Vec<Row> = sqlx::query_as(
        "with t as (
           select c.oid, n.nspname, c.relname
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = any($1) and c.relkind in ('r', 'p') and not c.relispartition
              and exists (select 1 from pg_attribute a where a.attrelid = c.oid
                             and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped)
              and (n.nspname = $2
                   or not exists (select 1 from control.operator_tables o
                                   where o.table_name = c.relname::text))
         ), k as (
           select distinct on (i.indrelid) i.indrelid, i.indkey, i.indnullsnotdistinct
             from pg_index i join t on t.oid = i.indrelid
            where i.indisunique and i.indisvalid and i.indpred is null and i.indexprs is null
              and (i.indisprimary or i.indisreplident or i.indnullsnotdistinct
                   or not exists (select 1 from pg_attribute a
                                   where a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                                     and not a.attnotnull))
            order by i.indrelid, i.indisprimary desc, i.indisreplident desc, i.indnatts
         )
         select t.oid::bigint, t.nspname::text, t.relname::text,
                array(select a.attname::text from pg_attribute a
                       where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
                         and a.attgenerated = ''
                       order by a.attnum),
                coalesce(array(select a.attname::text
                                 from unnest(k.indkey::int2[]) with ordinality u(attnum, ord)
                                 join pg_attribute a on a.attrelid = t.oid and a.attnum = u.attnum
                                order by u.ord), '{}'),
                coalesce(exists (select 1 from pg_attribute a
                                  where a.attrelid = t.oid and a.attnum = any(k.indkey)
                                    and not a.attnotnull), false),
                array(select a.attname::text
                        from pg_attribute a join pg_type ty on ty.oid = a.atttypid
                       where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
                         and not exists (
                               select 1 from pg_opclass oc
                                 join pg_am am on am.oid = oc.opcmethod and am.amname = 'hash'
                                 join pg_type it on it.oid = oc.opcintype
                                where oc.opcdefault and it.typnamespace = 'pg_catalog'::regnamespace
                                  and oc.opcintype = case ty.typtype when 'd' then ty.typbasetype
                                                                     else ty.oid end))
           from t left join k on k.indrelid = t.oid
          order by t.nspname, t.relname",
    )
    .bind(&schemas)
    .bind(EXTENSION_SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    let edges: Vec<(i64, i64)> = sqlx::query_as(
        "select conrelid::bigint, confrelid::bigint from pg_constraint
          where contype = 'f' and conrelid <> confrelid
            and connamespace in (select oid from pg_namespace where nspname = any($1))",
    )
    .bind(&schemas)
    .fetch_all(&mut *conn)
    .await?;

    let mut by_oid: BTreeMap<i64, Table> = BTreeMap::new();
    for (oid, nsp, name, columns, key, key_nullable, hashed_as_text) in rows {
        if nsp == EXTENSION_SCHEMA && name == ID_SEQUENCES {
            continue;
        }
        let target = if nsp == EXTENSION_SCHEMA {
            nsp.clone()
        } else {
            target_schema.to_owned()
        };
        let follow = match (nsp.as_str(), name.as_str()) {
            (EXTENSION_SCHEMA, "audit_log") => Follow::Tail,
            (EXTENSION_SCHEMA, "audit_heads") => Follow::Whole,
            (_, JOB_TENANTS) => Follow::Whole,
            _ => Follow::Capture,
        };
        by_oid.insert(
            oid,
            Table {
                follow,
                schema: nsp,
                target_schema: target,
                name,
                columns,
                key,
                key_nullable,
                hashed_as_text: hashed_as_text.into_iter().collect(),
            },
        );
    }
    Ok(dependency_order(by_oid, &edges))
}

/// Kahn's order: a table after the tables it references (cycles, if any,
/// keep their name order at the end: the copy does not check foreign keys).
fn dependency_order(mut tables: BTreeMap<i64, Table>, edges: &[(i64, i64)]) -> Vec<Table> {
    let mut parents: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for &(child, parent) in edges {
        if tables.contains_key(&child) && tables.contains_key(&parent) {
            parents.entry(child).or_default().insert(parent);
        }
    }
    let mut out = Vec::with_capacity(tables.len());
    loop {
        let ready: Vec<i64> = tables
            .keys()
            .copied()
            .filter(|oid| {
                parents
                    .get(oid)
                    .is_none_or(|ps| ps.iter().all(|p| !tables.contains_key(p)))
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for oid in ready {
            out.extend(tables.remove(&oid));
        }
    }
    out.extend(tables.into_values());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> Table {
        Table {
            follow: Follow::Capture,
            schema: "public".into(),
            target_schema: "public".into(),
            name: name.into(),
            columns: vec![],
            key: vec!["tenant_id".into()],
            key_nullable: false,
            hashed_as_text: BTreeSet::new(),
        }
    }

    #[test]
    fn parents_come_before_children() {
        let tables: BTreeMap<i64, Table> = [
            (1, table("lines")),
            (2, table("invoices")),
            (3, table("tenants")),
        ]
        .into_iter()
        .collect();
        let order: Vec<String> = dependency_order(tables, &[(1, 2), (2, 3), (1, 3), (9, 1)])
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(order, ["tenants", "invoices", "lines"]);
    }
}
