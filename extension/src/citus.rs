//! The extension on a Citus cluster (docs/citus.md): whether this database
//! has Citus, the logical table behind a shard, and the shard of a
//! distributed extension table that holds a tenant.
//!
//! Triggers of a distributed table run on its shards, on the worker that
//! holds the row, where `TG_TABLE_NAME` is the shard's name
//! (`leads_102612`). The extension's own per-tenant tables (audit log and
//! chain heads, id counters) are distributed in the same co-location group,
//! so a tenant's rows of them are on the same worker; the audit trigger
//! writes them there directly, in the same local transaction.

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::OrRaise;

/// Placement per (extension table, tenant).
type Placements = HashMap<(String, pgrx::Uuid), Placement>;

thread_local! {
    /// Logical table of each shard relation seen (or the relation's own
    /// name when it is not a shard), and whether it is a reference table.
    static LOGICAL: RefCell<HashMap<pg_sys::Oid, (String, bool)>> = RefCell::new(HashMap::new());
    /// Placements looked up by the current transaction (its top xid).
    static SHARDS: RefCell<(u64, Placements)> = RefCell::new((0, HashMap::new()));
}

/// Is the `citus` extension installed in this database? Citus keeps its
/// metadata in `pg_catalog.pg_dist_partition`, which exists exactly while
/// the extension is installed: a syscache lookup by name, a fraction of
/// the scan of pg_extension that `get_extension_oid` makes (which showed
/// as the largest single cost of a numbered insert,
/// docs/benchmarks/crm-and-write-path.md).
pub(crate) fn on_citus() -> bool {
    // SAFETY: a syscache lookup by a NUL-terminated name.
    unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::InvalidOid
    }
}

/// The table whose row a trigger sees: the distributed or reference
/// table's name when `relid` is one of its shards (`leads` for
/// `leads_102612`), else `relname` itself; and whether it is a reference
/// table, whose trigger runs on every node's copy.
pub(crate) fn logical_table(relid: pg_sys::Oid, relname: &str) -> (String, bool) {
    if !on_citus() {
        return (relname.to_owned(), false);
    }
    if let Some(known) = LOGICAL.with(|m| m.borrow().get(&relid).cloned()) {
        return known;
    }
    let logical = relname
        .rsplit_once('_')
        .and_then(|(table, id)| Some((table, id.parse::<i64>().ok()?)))
        .and_then(|(table, shard)| {
            Spi::connect(|c| {
                let rows = c
                    .select(
                        "select c.relname::text, d.partmethod = 'n'
                           from pg_catalog.pg_dist_shard s
                           join pg_catalog.pg_class c on c.oid = s.logicalrelid
                           join pg_catalog.pg_dist_partition d on d.logicalrelid = s.logicalrelid
                          where s.shardid = $1 and c.relname = $2",
                        Some(1),
                        &[shard.into(), table.into()],
                    )
                    .or_raise("finding the table of a shard");
                let row = rows.first();
                Some((
                    row.get::<String>(1).ok().flatten()?,
                    row.get::<bool>(2).ok().flatten().unwrap_or(false),
                ))
            })
        })
        .unwrap_or_else(|| (relname.to_owned(), false));
    LOGICAL.with(|m| m.borrow_mut().insert(relid, logical.clone()));
    logical
}

/// Where a tenant's rows of a distributed extension table are.
#[derive(Clone)]
pub(crate) enum Placement {
    /// The table is not distributed (a single node).
    Table,
    /// In this shard, on this node.
    Here(String),
    /// In a shard on another node.
    Elsewhere,
}

/// The shard of the distributed extension table `table` (`bizos.audit_log`)
/// that holds `tenant`, and whether it is on this node; looked up once per
/// transaction.
pub(crate) fn tenant_shard(table: &str, tenant: pgrx::Uuid) -> Placement {
    if !on_citus() {
        return Placement::Table;
    }
    // SAFETY: plain backend state read.
    let top = unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value;
    let key = (table.to_owned(), tenant);
    let cached = SHARDS.with(|m| {
        let mut m = m.borrow_mut();
        if m.0 != top || top == 0 {
            *m = (top, HashMap::new());
        }
        m.1.get(&key).cloned()
    });
    if let Some(p) = cached {
        return p;
    }
    let found = Spi::connect(|c| {
        let rows = c
            .select(
                "select s.name, pg_catalog.to_regclass(s.name) is not null
                   from pg_catalog.pg_dist_partition d,
                        lateral (select pg_catalog.shard_name(d.logicalrelid,
                                   pg_catalog.get_shard_id_for_distribution_column(d.logicalrelid, $2)) as name) s
                  where d.logicalrelid = pg_catalog.to_regclass($1) and d.partmethod = 'h'",
                Some(1),
                &[table.into(), tenant.into()],
            )
            .or_raise("finding a tenant's shard");
        if rows.is_empty() {
            return Placement::Table;
        }
        let row = rows.first();
        let name = row.get::<String>(1).ok().flatten().unwrap_or_default();
        if row.get::<bool>(2).ok().flatten().unwrap_or(false) {
            Placement::Here(name)
        } else {
            Placement::Elsewhere
        }
    });
    SHARDS.with(|m| m.borrow_mut().1.insert(key, found.clone()));
    found
}
