//! Single rows of the extension's own tables read and written without SQL:
//! a primary-key lookup under a given snapshot, and an insert or update of
//! the heap and every index through the table AM (as `simple_heap_insert`
//! and the executor's index maintenance do for catalogs and logical
//! replication). TOAST and HOT happen as in SQL. No plan, permission check,
//! row-level security, CHECK constraint or trigger is involved: the rows are
//! the extension's own bookkeeping, built by its code to satisfy the
//! tables' constraints, on tables only it writes (as their owner).
//!
//! A statement through SPI costs a plan lookup, executor start-up and a
//! snapshot per call; the audit trigger paid that for every entry.

use pgrx::pg_sys;
use pgrx::PgSqlErrorCode as Code;

use crate::error::raise;

/// An equality condition on one column, for [`lookup`].
pub(crate) struct Eq {
    pub attnum: pg_sys::AttrNumber,
    /// The equality function of the column's type (`F_UUID_EQ`, …).
    pub procedure: u32,
    pub value: pg_sys::Datum,
}

/// The oid of the extension's relation `bizos.<name>`, or an error.
pub(crate) fn extension_relation(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: syscache lookups by NUL-terminated names.
    let relid = unsafe {
        let schema = pg_sys::get_namespace_oid(c"bizos".as_ptr(), false);
        pg_sys::get_relname_relid(name.as_ptr(), schema)
    };
    if relid == pg_sys::InvalidOid {
        raise(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("bizos.{} is missing", name.to_string_lossy()),
            Some("reinstall the bizos extension"),
        );
    }
    relid
}

/// The attribute number of `column` in `relid`, or an error naming both.
pub(crate) fn attnum(relid: pg_sys::Oid, column: &std::ffi::CStr) -> pg_sys::AttrNumber {
    // SAFETY: a syscache lookup by oid and a NUL-terminated name.
    let n = unsafe { pg_sys::get_attnum(relid, column.as_ptr()) };
    if n <= 0 {
        raise(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("{} has no column {}", name(relid), column.to_string_lossy()),
            None,
        );
    }
    n
}

/// The index (attribute number − 1) of the live column `name` in `desc`.
pub(crate) fn column_index(desc: pg_sys::TupleDesc, name: &str) -> Option<usize> {
    // SAFETY: reading a valid tuple descriptor.
    unsafe {
        let natts = (*desc).natts as usize;
        (*desc).attrs.as_slice(natts).iter().position(|a| {
            !a.attisdropped
                && std::ffi::CStr::from_ptr(a.attname.data.as_ptr()).to_bytes() == name.as_bytes()
        })
    }
}

/// The name of `relid` for messages (its oid if it has none).
fn name(relid: pg_sys::Oid) -> String {
    // SAFETY: a syscache lookup; NULL or a palloc'd NUL-terminated name.
    unsafe {
        let n = pg_sys::get_rel_name(relid);
        if n.is_null() {
            format!("relation {}", relid.to_u32())
        } else {
            std::ffi::CStr::from_ptr(n).to_string_lossy().into_owned()
        }
    }
}

/// Whether `relid` still names a relation (a cached oid outlives a dropped
/// and recreated table).
pub(crate) fn exists(relid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup; '\0' for a missing relation.
    unsafe { pg_sys::get_rel_relkind(relid) != 0 }
}

/// The primary key index of `relid`.
pub(crate) fn primary_key(relid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: the relation is opened and closed around a relcache read.
    let index = unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relid, lock);
        let index = pg_sys::RelationGetPrimaryKeyIndex(rel);
        pg_sys::table_close(rel, lock);
        index
    };
    if index == pg_sys::InvalidOid {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("{} has no primary key", name(relid)),
            None,
        );
    }
    index
}

/// The row of `relid` that `index` finds for `keys` under `snapshot`, read
/// by `read` (with the tuple's descriptor) while the scan is open.
///
/// # Safety
/// `snapshot` must be a valid MVCC snapshot for the duration of the call;
/// each key's value must be a datum of its column's type.
pub(crate) unsafe fn lookup<R>(
    relid: pg_sys::Oid,
    index: pg_sys::Oid,
    keys: &[Eq],
    snapshot: pg_sys::Snapshot,
    read: impl FnOnce(pg_sys::HeapTuple, pg_sys::TupleDesc) -> R,
) -> Option<R> {
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    let rel = pg_sys::table_open(relid, lock);
    let mut scankeys: Vec<pg_sys::ScanKeyData> = keys
        .iter()
        .map(|k| {
            let mut key: pg_sys::ScanKeyData = std::mem::zeroed();
            pg_sys::ScanKeyInit(
                &mut key,
                k.attnum,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                pg_sys::Oid::from(k.procedure),
                k.value,
            );
            // The b-tree compares under the column's collation (which the
            // index inherits); ScanKeyInit's default, C, may order text
            // differently.
            let (mut typid, mut typmod) = (pg_sys::InvalidOid, 0);
            pg_sys::get_atttypetypmodcoll(
                relid,
                k.attnum,
                &mut typid,
                &mut typmod,
                &mut key.sk_collation,
            );
            key
        })
        .collect();
    let scan = pg_sys::systable_beginscan(
        rel,
        index,
        true,
        snapshot,
        scankeys.len() as i32,
        scankeys.as_mut_ptr(),
    );
    let tuple = pg_sys::systable_getnext(scan);
    let row = (!tuple.is_null()).then(|| read(tuple, (*rel).rd_att));
    pg_sys::systable_endscan(scan);
    pg_sys::table_close(rel, lock);
    row
}

/// The version of a row at `tid` in `relid`, if it is visible under
/// `snapshot`, read by `read` (with the tuple's descriptor) while its
/// buffer is pinned: one page read where an index lookup would descend
/// the index and walk the row's chain of versions (the page is pruned as
/// an index fetch prunes it). The slot may hold
/// another row by now (vacuum reuses it): `read` must check the key.
///
/// # Safety
/// `snapshot` must be a valid MVCC snapshot for the duration of the call.
pub(crate) unsafe fn fetch<R>(
    relid: pg_sys::Oid,
    tid: pg_sys::ItemPointerData,
    snapshot: pg_sys::Snapshot,
    read: impl FnOnce(pg_sys::HeapTuple, pg_sys::TupleDesc) -> R,
) -> Option<R> {
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    let rel = pg_sys::table_open(relid, lock);
    let block = (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo);
    // A block past the end (vacuum truncated the table) is an error for
    // heap_fetch, not a miss.
    let in_table =
        block < pg_sys::RelationGetNumberOfBlocksInFork(rel, pg_sys::ForkNumber::MAIN_FORKNUM);
    let mut row = None;
    if in_table {
        let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
        tuple.t_self = tid;
        let mut buffer: pg_sys::Buffer = pg_sys::InvalidBuffer as pg_sys::Buffer;
        if pg_sys::heap_fetch(rel, snapshot, &mut tuple, &mut buffer, false) {
            row = Some(read(&mut tuple, (*rel).rd_att));
            // As an index fetch does: prune the page's dead versions when
            // it runs short of space, or a row updated on every commit
            // (an audit chain head) could no longer be updated in place.
            pg_sys::heap_page_prune_opt(rel, buffer);
            pg_sys::ReleaseBuffer(buffer);
        }
    }
    pg_sys::table_close(rel, lock);
    row
}

/// Every row of `relid` visible under `snapshot`, each passed to `read`
/// (with the tuple's descriptor) while the scan is on it: for the
/// extension's small data tables.
///
/// # Safety
/// `snapshot` must be a valid MVCC snapshot for the duration of the call.
pub(crate) unsafe fn scan(
    relid: pg_sys::Oid,
    snapshot: pg_sys::Snapshot,
    mut read: impl FnMut(pg_sys::HeapTuple, pg_sys::TupleDesc),
) {
    let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
    let rel = pg_sys::table_open(relid, lock);
    let scan = pg_sys::systable_beginscan(
        rel,
        pg_sys::InvalidOid,
        false,
        snapshot,
        0,
        std::ptr::null_mut(),
    );
    loop {
        let tuple = pg_sys::systable_getnext(scan);
        if tuple.is_null() {
            break;
        }
        read(tuple, (*rel).rd_att);
    }
    pg_sys::systable_endscan(scan);
    pg_sys::table_close(rel, lock);
}

/// One row's values in the table's column order (attribute number − 1).
pub(crate) struct Row {
    pub values: Vec<pg_sys::Datum>,
    pub nulls: Vec<bool>,
}

impl Row {
    /// All NULL, for a table of `natts` columns (dropped ones included).
    pub fn nulls(natts: usize) -> Self {
        Row {
            values: vec![pg_sys::Datum::from(0usize); natts],
            nulls: vec![true; natts],
        }
    }

    pub fn set(&mut self, attnum: pg_sys::AttrNumber, value: Option<pg_sys::Datum>) {
        let i = attnum as usize - 1;
        match value {
            Some(v) => {
                self.values[i] = v;
                self.nulls[i] = false;
            }
            None => self.nulls[i] = true,
        }
    }
}

/// The number of attributes of `relid` (dropped ones included), the length
/// of its [`Row`]s.
pub(crate) fn natts(relid: pg_sys::Oid) -> usize {
    // SAFETY: the relation is opened and closed around a relcache read.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relid, lock);
        let n = (*(*rel).rd_att).natts as usize;
        pg_sys::table_close(rel, lock);
        n
    }
}

/// Inserts `row` into `relid` and its indexes (a unique index still
/// refuses a duplicate); returns the new row's tid.
pub(crate) fn insert(relid: pg_sys::Oid, row: &Row) -> pg_sys::ItemPointerData {
    // SAFETY: see `with_executor`; the slot is filled for the relation's
    // descriptor from `row`, which has one value per attribute.
    unsafe {
        with_executor(relid, row, |rri, estate, slot| {
            pg_sys::simple_table_tuple_insert((*rri).ri_RelationDesc, slot);
            index_tuples(rri, estate, slot, false);
        })
    }
}

/// Replaces the row at `tid` of `relid` with `row` (which must be the
/// newest version: the caller holds the lock that serialises its writers);
/// returns the new version's tid.
pub(crate) fn update(
    relid: pg_sys::Oid,
    tid: pg_sys::ItemPointerData,
    row: &Row,
) -> pg_sys::ItemPointerData {
    // SAFETY: see `with_executor`; `tid` is the newest version (a
    // concurrent update is an error, "tuple concurrently updated").
    unsafe {
        with_executor(relid, row, |rri, estate, slot| {
            let mut old = tid;
            let mut update_indexes = false;
            pg_sys::simple_table_tuple_update(
                (*rri).ri_RelationDesc,
                &mut old,
                slot,
                (*estate).es_snapshot,
                &mut update_indexes,
            );
            // A HOT update needs no new index entries.
            if update_indexes {
                index_tuples(rri, estate, slot, true);
            }
        })
    }
}

/// Index entries for the row just stored in `slot`.
///
/// # Safety
/// `rri`'s indexes are open; `slot` holds the stored row (with its tid).
unsafe fn index_tuples(
    rri: *mut pg_sys::ResultRelInfo,
    estate: *mut pg_sys::EState,
    slot: *mut pg_sys::TupleTableSlot,
    update: bool,
) {
    if (*rri).ri_NumIndices > 0 {
        let recheck = pg_sys::ExecInsertIndexTuples(
            rri,
            slot,
            estate,
            update,
            false,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        pg_sys::list_free(recheck);
    }
}

/// Opens `relid` with its indexes in a minimal executor state (as logical
/// replication's apply worker does), stores `row` in a slot, runs `write`
/// and closes everything; returns the slot's tid afterwards. The write is
/// made visible to the transaction's later commands.
///
/// # Safety
/// Must run in a transaction; `write` must only use the pointers it gets.
unsafe fn with_executor(
    relid: pg_sys::Oid,
    row: &Row,
    write: impl FnOnce(*mut pg_sys::ResultRelInfo, *mut pg_sys::EState, *mut pg_sys::TupleTableSlot),
) -> pg_sys::ItemPointerData {
    let lock = pg_sys::RowExclusiveLock as pg_sys::LOCKMODE;
    let rel = pg_sys::table_open(relid, lock);
    let desc = (*rel).rd_att;
    let natts = (*desc).natts as usize;
    if row.values.len() != natts || row.nulls.len() != natts {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!(
                "a row of {} values for {} of {natts} columns",
                row.values.len(),
                name(relid)
            ),
            None,
        );
    }
    let estate = pg_sys::CreateExecutorState();
    // A range table of the one relation: index maintenance of an update
    // asks it which columns changed.
    let rte = pg_sys::palloc0(std::mem::size_of::<pg_sys::RangeTblEntry>())
        .cast::<pg_sys::RangeTblEntry>();
    (*rte).type_ = pg_sys::NodeTag::T_RangeTblEntry;
    (*rte).rtekind = pg_sys::RTEKind::RTE_RELATION;
    (*rte).relid = relid;
    (*rte).relkind = (*(*rel).rd_rel).relkind;
    (*rte).rellockmode = pg_sys::AccessShareLock as i32;
    pg_sys::ExecInitRangeTable(estate, pg_sys::lappend(std::ptr::null_mut(), rte.cast()));
    let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>())
        .cast::<pg_sys::ResultRelInfo>();
    pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
    (*estate).es_opened_result_relations =
        pg_sys::lappend((*estate).es_opened_result_relations, rri.cast());
    (*estate).es_output_cid = pg_sys::GetCurrentCommandId(true);
    if pg_sys::ActiveSnapshotSet() {
        (*estate).es_snapshot = pg_sys::GetActiveSnapshot();
    }
    pg_sys::ExecOpenIndices(rri, false);

    let slot = pg_sys::ExecInitExtraTupleSlot(estate, desc, &pg_sys::TTSOpsVirtual);
    std::ptr::copy_nonoverlapping(row.values.as_ptr(), (*slot).tts_values, natts);
    std::ptr::copy_nonoverlapping(row.nulls.as_ptr(), (*slot).tts_isnull, natts);
    pg_sys::ExecStoreVirtualTuple(slot);

    write(rri, estate, slot);
    let tid = (*slot).tts_tid;

    pg_sys::ExecCloseIndices(rri);
    pg_sys::ExecResetTupleTable((*estate).es_tupleTable, false);
    pg_sys::FreeExecutorState(estate);
    pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    // As SPI does after a statement that writes.
    pg_sys::CommandCounterIncrement();
    tid
}
