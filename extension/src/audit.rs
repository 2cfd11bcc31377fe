//! C3: the audit trigger, chain verification and history (sql/audit.sql).
//! Hashing and verification rules live in `bizos_core::audit`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

use bizos_core::audit::{entry_hash, ChainVerifier, Entry, GENESIS};
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid, PgSqlErrorCode as Code};

// Named by the `requires` of the SQL below (the policies call it).
#[allow(unused_imports)]
use crate::claims::tenant_id;
use crate::error::{raise, OrRaise};
use crate::privilege::as_extension_owner;
use crate::row_jsonb::{canonical_text, row_jsonb};

pgrx::extension_sql_file!(
    "../sql/audit.sql",
    name = "audit_schema",
    requires = ["schema_grants", tenant_id, audit_trigger]
);

/// Chains per tenant: concurrent writers of one tenant take different ones.
const CHAINS: i16 = 8;

/// The tables that hold a tenant's entries and chain heads (the extension's,
/// or on Citus the tenant's shards on this node), and what writing them
/// needs. Entries and heads are written directly (`crate::rows`); the two
/// statements serve rare paths.
struct Tables {
    /// `bizos.audit_log` has the `request_id` column (0.3.0 SQL). The
    /// library of 0.3.0 also serves databases still on 0.2.0 SQL (installed
    /// files, `ALTER EXTENSION bizos UPDATE` not yet run): they get entries
    /// without a request id, hashed as 0.2.0 hashed them.
    request_id: bool,
    log: pg_sys::Oid,
    log_natts: usize,
    /// Attribute numbers of `LOG_COLUMNS` (then `request_id`, if present).
    log_cols: Vec<pg_sys::AttrNumber>,
    heads: pg_sys::Oid,
    heads_pkey: pg_sys::Oid,
    heads_natts: usize,
    /// Attribute numbers of `HEAD_COLUMNS`.
    head_cols: [pg_sys::AttrNumber; 4],
    /// Creates a tenant's chains (once per tenant).
    init_heads: OwnedPreparedStatement,
    /// The newest entry of a chain this transaction holds (its own entries
    /// included): after a subtransaction abort.
    latest: OwnedPreparedStatement,
}

/// The columns of an entry, in the order the trigger lists its values.
const LOG_COLUMNS: [&CStr; 14] = [
    c"tenant_id",
    c"chain",
    c"seq",
    c"table_name",
    c"record_key",
    c"action",
    c"actor",
    c"db_role",
    c"txid",
    c"at",
    c"before",
    c"after",
    c"prev_hash",
    c"hash",
];
const HEAD_COLUMNS: [&CStr; 4] = [c"tenant_id", c"chain", c"seq", c"hash"];

/// The chain a transaction holds for a tenant: its head as this backend
/// last wrote it, and where the committed head row's newest version is.
#[derive(Clone, Copy)]
struct Head {
    chain: i16,
    seq: i64,
    hash: [u8; 32],
    row: pg_sys::ItemPointerData,
}

/// A head this transaction holds. `stale` after a subtransaction aborted:
/// the entries (and the chain's lock) it took are gone, so the head is read
/// again before it is used.
#[derive(Clone)]
struct Held {
    head: Head,
    stale: bool,
    tables: Rc<Tables>,
}

/// Where a tenant's entries and heads live: the extension's tables, or on
/// Citus their shards that hold the tenant (co-located with the tenant's
/// rows, so on the node whose trigger writes; written there directly, as
/// Citus itself writes a shard). `None`: on another node.
fn tables_of(tenant: pgrx::Uuid) -> Option<(String, String)> {
    use crate::citus::{tenant_shard, Placement};
    match (
        tenant_shard("bizos.audit_log", tenant),
        tenant_shard("bizos.audit_heads", tenant),
    ) {
        (Placement::Here(log), Placement::Here(heads)) => Some((log, heads)),
        (Placement::Table, Placement::Table) => {
            Some(("bizos.audit_log".to_owned(), "bizos.audit_heads".to_owned()))
        }
        _ => None,
    }
}

thread_local! {
    /// Per (audit log, heads) relation pair.
    static TABLES: RefCell<HashMap<(String, String), Rc<Tables>>> = RefCell::new(HashMap::new());
    /// Heads held by the current transaction: (top xid, tenant) → head.
    /// `audit_heads` is written from here once, just before commit: updating
    /// its row per entry made N entries of one transaction cost O(N²) (each
    /// update walks the row's versions made earlier in the transaction).
    static HELD: RefCell<HashMap<(u64, pgrx::Uuid), Held>> = RefCell::new(HashMap::new());
    /// The tid of each chain head's version this backend read or wrote
    /// last, by (heads table, tenant, chain): where [`committed_head`]
    /// looks first.
    static HEAD_ROWS: RefCell<HashMap<(pg_sys::Oid, pgrx::Uuid, i16), pg_sys::ItemPointerData>> =
        RefCell::new(HashMap::new());
    /// Whether this backend's transaction callbacks are registered.
    static CALLBACKS: Cell<bool> = const { Cell::new(false) };
}

fn oid(o: pg_sys::Oid) -> PgOid {
    PgOid::from(o)
}

/// The oid of relation `name` (`bizos.audit_log` or a shard of it).
fn relation(name: &str) -> pg_sys::Oid {
    crate::error::query_opt::<pg_sys::Oid>(
        "select pg_catalog.to_regclass($1)::pg_catalog.oid",
        &[name.into()],
        "finding the audit tables",
    )
    .unwrap_or_else(|| {
        raise(
            Code::ERRCODE_UNDEFINED_TABLE,
            format!("{name} does not exist"),
            None,
        )
    })
}

/// The oid of the audit log `log` and whether it has the `request_id`
/// column.
fn audit_log_columns(log: &str) -> (pg_sys::Oid, bool) {
    let oid = relation(log);
    (oid, has_request_id(oid))
}

fn has_request_id(audit_log: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup by relation oid and a NUL-terminated name.
    unsafe { pg_sys::get_attnum(audit_log, c"request_id".as_ptr()) > 0 }
}

/// What writing `log` and `heads` (relation names, quoted as needed) needs.
fn open_tables(log: &str, heads: &str) -> Tables {
    use pg_sys::{BYTEAOID, INT2OID, UUIDOID};
    let (log_oid, request_id) = audit_log_columns(log);
    let heads_oid = relation(heads);
    let mut log_cols: Vec<_> = LOG_COLUMNS
        .iter()
        .map(|c| crate::rows::attnum(log_oid, c))
        .collect();
    if request_id {
        log_cols.push(crate::rows::attnum(log_oid, c"request_id"));
    }
    Spi::connect(|client| {
        let keep = |sql: &str, args: &[PgOid]| {
            client
                .prepare_mut(sql, args)
                .or_raise("preparing audit statements")
                .keep()
        };
        Tables {
            request_id,
            log: log_oid,
            log_natts: crate::rows::natts(log_oid),
            log_cols,
            heads: heads_oid,
            heads_pkey: crate::rows::primary_key(heads_oid),
            heads_natts: crate::rows::natts(heads_oid),
            head_cols: HEAD_COLUMNS.map(|c| crate::rows::attnum(heads_oid, c)),
            init_heads: keep(
                &format!(
                    "insert into {heads} (tenant_id, chain, seq, hash)
                     select $1, g, 0, $2 from generate_series(0, 7) g
                     on conflict do nothing"
                ),
                &[oid(UUIDOID), oid(BYTEAOID)],
            ),
            latest: keep(
                &format!(
                    "select seq, hash from {log} where tenant_id = $1 and chain = $2
                      order by seq desc limit 1"
                ),
                &[oid(UUIDOID), oid(INT2OID)],
            ),
        }
    })
}

/// The tables that hold `tenant`'s entries.
fn tables_for(tenant: pgrx::Uuid) -> Rc<Tables> {
    let names = if crate::citus::on_citus() {
        as_extension_owner(|| tables_of(tenant))
    } else {
        tables_of(tenant)
    };
    let names = names.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("the audit log of tenant {tenant} is not on this node"),
            Some("the extension's tables must be co-located with the tenant tables (bizos db bootstrap places them)"),
        )
    });
    TABLES.with(|t| {
        // Opened before the tables were made again (the extension
        // reinstalled), or before `ALTER EXTENSION bizos UPDATE` added the
        // request id column (a pooled backend lives on): open them again.
        let current = t
            .borrow()
            .get(&names)
            .filter(|t| crate::rows::exists(t.log) && crate::rows::exists(t.heads))
            .filter(|t| t.request_id || !has_request_id(t.log))
            .cloned();
        current.unwrap_or_else(|| {
            let tables = Rc::new(as_extension_owner(|| open_tables(&names.0, &names.1)));
            t.borrow_mut().insert(names, tables.clone());
            tables
        })
    })
}

/// Takes chain `chain` of `tenant` for this transaction: an exclusive
/// transaction-level advisory lock (in the lock manager, no row lock and
/// no WAL), released at commit or abort, after the head written just
/// before commit is visible. `wait`: queue for it, else give up at once.
///
/// The key: the database, 64 bits folded from the tenant id, and
/// `CHAIN_LOCK_BASE + chain` where SQL's `pg_advisory_*` functions put 1 or
/// 2, so no application advisory lock collides with it. `pg_locks` shows
/// it as an advisory lock with that `objsubid`.
fn lock_chain(tenant: pgrx::Uuid, chain: i16, wait: bool) -> bool {
    let b = tenant.as_bytes();
    let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let tag = pg_sys::LOCKTAG {
        // SAFETY: a plain backend global.
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.to_u32(),
        locktag_field2: word(0) ^ word(8),
        locktag_field3: word(4) ^ word(12),
        locktag_field4: CHAIN_LOCK_BASE + chain as u16,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    };
    // SAFETY: a transaction-level lock on a valid tag; waiting honours
    // lock_timeout and the deadlock detector like any lock.
    let got = unsafe {
        pg_sys::LockAcquire(
            &tag,
            pg_sys::ExclusiveLock as pg_sys::LOCKMODE,
            false,
            !wait,
        )
    };
    got != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

/// `objsubid` of the chain locks in `pg_locks` is this plus the chain.
const CHAIN_LOCK_BASE: u16 = 0x4200;

/// The committed head row of a chain (whose lock this transaction holds),
/// read under the newest snapshot: the previous holder's head is committed
/// before its lock was released, though perhaps after this statement's
/// snapshot was taken. First at the version this backend wrote or read
/// last ([`HEAD_ROWS`]): while no other backend took the chain since, that
/// version is still the visible one. Otherwise by primary key.
fn committed_head(tables: &Tables, tenant: pgrx::Uuid, chain: i16) -> Option<Head> {
    use crate::rows::{fetch, lookup, Eq};
    let [tenant_col, chain_col, seq_col, hash_col] = tables.head_cols;
    // SAFETY: reads a heads tuple (uuid, int2, int8, bytea columns) while
    // its buffer is pinned.
    let read = |tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc| unsafe {
        let mut null = false;
        let t = pg_sys::heap_getattr(tuple, tenant_col.into(), desc, &mut null);
        let t = pgrx::Uuid::from_datum(t, null);
        let c = pg_sys::heap_getattr(tuple, chain_col.into(), desc, &mut null);
        let c = i16::from_datum(c, null);
        if t != Some(tenant) || c != Some(chain) {
            return None;
        }
        let seq = pg_sys::heap_getattr(tuple, seq_col.into(), desc, &mut null);
        let seq = i64::from_datum(seq, null).unwrap_or(0);
        let hash = pg_sys::heap_getattr(tuple, hash_col.into(), desc, &mut null);
        let hash = <&[u8]>::from_datum(hash, null).unwrap_or_default();
        Some(Head {
            chain,
            seq,
            hash: hash.try_into().unwrap_or(GENESIS),
            row: (*tuple).t_self,
        })
    };
    let key = (tables.heads, tenant, chain);
    // SAFETY: the newest snapshot is used for this scan only (nothing
    // takes another before it ends); the keys are a uuid and an int2.
    let head = unsafe {
        pg_sys::CommandCounterIncrement();
        let snapshot = pg_sys::GetLatestSnapshot();
        let known = HEAD_ROWS.with(|h| h.borrow().get(&key).copied());
        match known.and_then(|tid| fetch(tables.heads, tid, snapshot, read).flatten()) {
            Some(head) => Some(head),
            None => {
                let keys = [
                    Eq {
                        attnum: tenant_col,
                        procedure: pg_sys::F_UUID_EQ,
                        value: tenant
                            .into_datum()
                            .unwrap_or_else(|| raise(Code::ERRCODE_INTERNAL_ERROR, "tenant", None)),
                    },
                    Eq {
                        attnum: chain_col,
                        procedure: pg_sys::F_INT2EQ,
                        value: pg_sys::Datum::from(chain),
                    },
                ];
                lookup(tables.heads, tables.heads_pkey, &keys, snapshot, read).flatten()
            }
        }
    };
    if let Some(h) = &head {
        remember_head_row(tables.heads, tenant, h);
    }
    head
}

/// Where the head row of a chain was last seen or written by this backend.
fn remember_head_row(heads: pg_sys::Oid, tenant: pgrx::Uuid, head: &Head) {
    HEAD_ROWS.with(|h| h.borrow_mut().insert((heads, tenant, head.chain), head.row));
}

fn top_xid() -> u64 {
    // SAFETY: plain backend state read.
    unsafe { pg_sys::GetTopFullTransactionId() }.value
}

/// Locks a chain of the tenant for this transaction (the first entry of a
/// transaction takes one no other open transaction holds) and returns its
/// head (from this backend's memory while the transaction holds it), with
/// the tables that hold the tenant's entries.
fn held_head(tenant: pgrx::Uuid) -> (Head, Rc<Tables>) {
    let top = top_xid();
    let held = HELD.with(|h| {
        let mut h = h.borrow_mut();
        h.retain(|(xid, _), _| *xid == top);
        h.get(&(top, tenant)).cloned()
    });
    match held {
        Some(Held {
            head,
            stale: false,
            tables,
        }) => return (head, tables),
        Some(Held {
            head,
            stale: true,
            tables,
        }) => {
            let head = reread_head(&tables, tenant, head.chain);
            remember(tenant, head, &tables);
            return (head, tables);
        }
        None => {}
    }
    let tables = tables_for(tenant);
    // SAFETY: MyProcPid is a plain global.
    let offset = (unsafe { pg_sys::MyProcPid } % i32::from(CHAINS)) as i16;
    let chain = (0..CHAINS)
        .map(|i| (offset + i) % CHAINS)
        .find(|&c| lock_chain(tenant, c, false))
        .unwrap_or_else(|| {
            // Every chain is busy: queue on one.
            lock_chain(tenant, offset, true);
            offset
        });
    let head = committed_head(&tables, tenant, chain)
        .or_else(|| {
            as_extension_owner(|| {
                Spi::connect_mut(|c| {
                    c.update(
                        &tables.init_heads,
                        None,
                        &[tenant.into(), GENESIS.to_vec().into()],
                    )
                    .or_raise("creating audit chains");
                })
            });
            committed_head(&tables, tenant, chain)
        })
        .unwrap_or_else(|| head_missing());
    register_callbacks();
    remember(tenant, head, &tables);
    (head, tables)
}

/// A chain whose head row is gone (deleted by hand): nothing to chain to.
fn head_missing() -> ! {
    raise(
        Code::ERRCODE_INTERNAL_ERROR,
        "audit chain head is missing",
        None,
    )
}

/// Locks `chain` again (a lock taken in an aborted subtransaction is gone)
/// and reads its head: the newest entry, or the committed head when the
/// chain has none (or fewer than the head says: a deletion verify reports).
fn reread_head(tables: &Tables, tenant: pgrx::Uuid, chain: i16) -> Head {
    lock_chain(tenant, chain, true);
    let committed = committed_head(tables, tenant, chain).unwrap_or_else(|| head_missing());
    let what = "reading the newest audit entry";
    let latest = as_extension_owner(|| {
        Spi::connect_mut(|c| {
            let t = c
                .update(&tables.latest, Some(1), &[tenant.into(), chain.into()])
                .or_raise(what);
            if t.is_empty() {
                return None;
            }
            let row = t.first();
            let seq = row.get::<i64>(1).or_raise(what)?;
            let hash = row.get::<Vec<u8>>(2).or_raise(what)?;
            Some((seq, hash))
        })
    });
    match latest {
        Some((seq, hash)) if seq >= committed.seq => Head {
            seq,
            hash: hash.as_slice().try_into().unwrap_or(GENESIS),
            ..committed
        },
        _ => committed,
    }
}

fn remember(tenant: pgrx::Uuid, head: Head, tables: &Rc<Tables>) {
    let top = top_xid();
    HELD.with(|h| {
        h.borrow_mut().insert(
            (top, tenant),
            Held {
                head,
                stale: false,
                tables: tables.clone(),
            },
        )
    });
}

/// Once per backend: the heads are written just before commit (or
/// PREPARE), and a subtransaction abort makes them stale. Registered with
/// PostgreSQL directly and kept for the backend's life: pgrx's
/// per-transaction callbacks are cleared at COMMIT and ABORT only, so a
/// transaction that ends in PREPARE TRANSACTION (Citus's two-phase commit
/// on the workers) left them behind for the backend's next transactions.
fn register_callbacks() {
    if CALLBACKS.with(Cell::get) {
        return;
    }
    // SAFETY: plain function pointers that live as long as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact_event), std::ptr::null_mut());
    }
    CALLBACKS.with(|c| c.set(true));
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE
    {
        flush_heads();
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_subxact_event(
    event: pg_sys::SubXactEvent::Type,
    _sub: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        HELD.with(|h| {
            h.borrow_mut()
                .values_mut()
                .for_each(|held| held.stale = true)
        });
    }
}

/// Writes this transaction's heads into `audit_heads`.
fn flush_heads() {
    // SAFETY: plain backend state read; a transaction without an xid wrote
    // no entries (and must not get an xid here: it may be read-only).
    let top = unsafe { pg_sys::GetTopFullTransactionIdIfAny() }.value;
    if top == 0 {
        return;
    }
    let held: Vec<(pgrx::Uuid, Held)> = HELD.with(|h| {
        h.borrow()
            .iter()
            .filter(|((xid, _), _)| *xid == top)
            .map(|((_, tenant), held)| (*tenant, held.clone()))
            .collect()
    });
    if held.is_empty() {
        return;
    }
    // At COMMIT no statement runs, so there is no snapshot for SPI: take one
    // as deferred triggers do (an error on the way aborts the transaction,
    // which clears the stack).
    // SAFETY: backend snapshot stack calls in a live transaction.
    let pushed = unsafe {
        if pg_sys::ActiveSnapshotSet() {
            false
        } else {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            true
        }
    };
    {
        for (
            tenant,
            Held {
                head,
                stale,
                tables,
            },
        ) in held
        {
            let head = if stale {
                reread_head(&tables, tenant, head.chain)
            } else {
                head
            };
            let mut row = crate::rows::Row::nulls(tables.heads_natts);
            let [tenant_col, chain_col, seq_col, hash_col] = tables.head_cols;
            row.set(tenant_col, tenant.into_datum());
            row.set(chain_col, head.chain.into_datum());
            row.set(seq_col, head.seq.into_datum());
            row.set(hash_col, head.hash.as_slice().into_datum());
            let moved = crate::rows::update(tables.heads, head.row, &row);
            let head = Head { row: moved, ..head };
            remember_head_row(tables.heads, tenant, &head);
            remember(tenant, head, &tables);
        }
    }
    if pushed {
        // SAFETY: pops the snapshot pushed above.
        unsafe { pg_sys::PopActiveSnapshot() };
    }
}

/// Columns whose values differ between two versions of a row.
///
/// # Safety
/// Both tuples must be valid for `desc`.
unsafe fn changed_columns(
    old: *mut pg_sys::HeapTupleData,
    new: *mut pg_sys::HeapTupleData,
    desc: pg_sys::TupleDesc,
) -> Vec<usize> {
    let natts = (*desc).natts as usize;
    let mut changed = Vec::new();
    for i in 0..natts {
        let att = (*desc).attrs.as_slice(natts)[i];
        if att.attisdropped {
            continue;
        }
        let (mut n1, mut n2) = (false, false);
        let a = pg_sys::heap_getattr(old, (i + 1) as i32, desc, &mut n1);
        let b = pg_sys::heap_getattr(new, (i + 1) as i32, desc, &mut n2);
        let same = match (n1, n2) {
            (true, true) => true,
            (false, false) => same_image(a, b, att.attbyval, att.attlen),
            _ => false,
        };
        if !same {
            changed.push(i);
        }
    }
    changed
}

/// Binary equality of two non-null values of one attribute (a value that
/// only changed its TOAST form counts as unchanged).
///
/// # Safety
/// Both datums must be valid values of an attribute with `byval`/`len`.
unsafe fn same_image(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    if byval {
        return a == b;
    }
    let bytes = |d: pg_sys::Datum| -> (*const u8, usize) {
        match len {
            -1 => {
                let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
                (
                    pgrx::varlena::vardata_any(v).cast(),
                    pgrx::varlena::varsize_any_exhdr(v),
                )
            }
            -2 => {
                let p: *const std::ffi::c_char = d.cast_mut_ptr();
                (p.cast(), CStr::from_ptr(p).to_bytes().len())
            }
            n => (d.cast_mut_ptr::<u8>().cast_const(), n as usize),
        }
    };
    let (pa, la) = bytes(a);
    let (pb, lb) = bytes(b);
    la == lb && std::slice::from_raw_parts(pa, la) == std::slice::from_raw_parts(pb, lb)
}

/// Longest request id stored; a longer one is cut (on a character
/// boundary) rather than failing the write it describes.
const REQUEST_ID_MAX_BYTES: usize = 200;

/// The request's id: setting `request.id` (the BFF sets it to the
/// `x-request-id` of each request, transaction-local). NULL when unset or
/// empty, never an error.
fn current_request_id() -> Option<String> {
    // SAFETY: GetConfigOption with missing_ok = true returns NULL or a
    // NUL-terminated string owned by the GUC machinery; copied at once.
    let ptr = unsafe { pg_sys::GetConfigOption(c"request.id".as_ptr(), true, false) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated, see above.
    let text = unsafe { CStr::from_ptr(ptr) }.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut end = text.len().min(REQUEST_ID_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

/// AFTER INSERT OR UPDATE OR DELETE row trigger attached by
/// `bizos.enable_audit(table)`; its arguments are the primary key columns.
/// It appends one entry to the tenant's audit log: the row's key, what it
/// was and became (for an update only the changed columns and the key), who
/// changed it and in which request, linked to the chain's previous entry
/// by its hash.
#[pg_trigger]
fn audit_trigger<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let key_cols = trigger.extra_args().or_raise("reading trigger arguments");
    let event = row_event(trigger);
    let (table, replicated) = audited_table(trigger);
    let tenant_col = tenant_column(event.desc, &table);
    let key_idx = key_columns(event.desc, &key_cols, &table);
    let tenant = tenant_of(&event, tenant_col, &table);
    let Some(images) = row_images(&event, &key_idx) else {
        // An update that changed nothing: nothing to record.
        return Ok(None);
    };
    let origin = Origin::current();
    // A reference table's row changes on every node; its entry is written
    // once, on the node that holds the tenant's audit log.
    if replicated && as_extension_owner(|| tables_of(tenant)).is_none() {
        return Ok(None);
    }
    append_entry(tenant, &table, event.action, &images, &origin);
    Ok(None)
}

/// The row a trigger fired for: its versions before and after, and the
/// command.
struct RowEvent {
    desc: pg_sys::TupleDesc,
    old: Option<*mut pg_sys::HeapTupleData>,
    new: Option<*mut pg_sys::HeapTupleData>,
    action: &'static str,
}

impl RowEvent {
    /// The version that identifies the row: the new one, or the deleted.
    fn current(&self) -> *mut pg_sys::HeapTupleData {
        self.new.or(self.old).unwrap_or(std::ptr::null_mut())
    }
}

fn row_event(trigger: &pgrx::PgTrigger<'_>) -> RowEvent {
    let data = trigger.trigger_data();
    // SAFETY: trigger data of a row trigger: a valid relation and tuples.
    unsafe {
        let desc = (*data.tg_relation).rd_att;
        let (old, new, action) = match data.tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT => (None, Some(data.tg_trigtuple), "INSERT"),
            pg_sys::TRIGGER_EVENT_UPDATE => {
                (Some(data.tg_trigtuple), Some(data.tg_newtuple), "UPDATE")
            }
            pg_sys::TRIGGER_EVENT_DELETE => (Some(data.tg_trigtuple), None, "DELETE"),
            _ => raise(
                Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
                "audit_trigger is for INSERT, UPDATE and DELETE",
                None,
            ),
        };
        RowEvent {
            desc,
            old,
            new,
            action,
        }
    }
}

/// The table as the log names it (`schema.table`, a Citus shard named as
/// its distributed table), and whether it is a reference table replicated
/// to every node.
fn audited_table(trigger: &pgrx::PgTrigger<'_>) -> (String, bool) {
    // SAFETY: the trigger's relation is open.
    let relid = unsafe { (*trigger.trigger_data().tg_relation).rd_id };
    let (logical, replicated) =
        crate::citus::logical_table(relid, &trigger.table_name().unwrap_or_default());
    let table = format!(
        "{}.{}",
        pgrx::spi::quote_identifier(trigger.table_schema().unwrap_or_default()),
        pgrx::spi::quote_identifier(logical)
    );
    (table, replicated)
}

fn tenant_column(desc: pg_sys::TupleDesc, table: &str) -> usize {
    crate::rows::column_index(desc, "tenant_id").unwrap_or_else(|| {
        raise(
            Code::ERRCODE_UNDEFINED_COLUMN,
            format!("{table} has no tenant_id column"),
            None,
        )
    })
}

/// The positions of the primary key columns the trigger was attached with.
fn key_columns(desc: pg_sys::TupleDesc, key_cols: &[String], table: &str) -> Vec<usize> {
    key_cols
        .iter()
        .map(|c| {
            crate::rows::column_index(desc, c).unwrap_or_else(|| {
                raise(
                    Code::ERRCODE_UNDEFINED_COLUMN,
                    format!("{table} has no column {c}; run bizos.enable_audit again"),
                    None,
                )
            })
        })
        .collect()
}

fn tenant_of(event: &RowEvent, tenant_col: usize, table: &str) -> pgrx::Uuid {
    // SAFETY: valid tuples for `desc`.
    unsafe {
        let mut isnull = false;
        let d = pg_sys::heap_getattr(
            event.current(),
            (tenant_col + 1) as i32,
            event.desc,
            &mut isnull,
        );
        pgrx::Uuid::from_datum(d, isnull)
    }
    .unwrap_or_else(|| {
        raise(
            Code::ERRCODE_NOT_NULL_VIOLATION,
            format!("{table}.tenant_id is NULL; cannot audit"),
            None,
        )
    })
}

/// The row's key and its versions as jsonb, each with the canonical text
/// the chain hashes.
struct RowImages {
    key: pg_sys::Datum,
    key_text: String,
    before: Option<(pg_sys::Datum, String)>,
    after: Option<(pg_sys::Datum, String)>,
}

/// The images of the row; none for an update that changed no column.
fn row_images(event: &RowEvent, key_idx: &[usize]) -> Option<RowImages> {
    let desc = event.desc;
    // SAFETY: valid tuples for `desc`.
    let (key, before, after) = unsafe {
        let key = row_jsonb(event.current(), desc, Some(key_idx));
        match (event.old, event.new) {
            (Some(o), Some(n)) => {
                let mut cols = changed_columns(o, n, desc);
                if cols.is_empty() {
                    return None;
                }
                cols.extend(key_idx.iter().copied());
                (
                    key,
                    Some(row_jsonb(o, desc, Some(&cols))),
                    Some(row_jsonb(n, desc, Some(&cols))),
                )
            }
            (Some(o), None) => (key, Some(row_jsonb(o, desc, None)), None),
            (None, Some(n)) => (key, None, Some(row_jsonb(n, desc, None))),
            (None, None) => return None,
        }
    };
    Some(RowImages {
        key,
        key_text: canonical_text(key),
        before: before.map(|j| (j, canonical_text(j))),
        after: after.map(|j| (j, canonical_text(j))),
    })
}

/// Who made the change and where: the caller, the request, the session's
/// role, the transaction and the statement's start.
struct Origin {
    actor: Option<pgrx::Uuid>,
    request_id: Option<String>,
    db_role: String,
    txid: i64,
    at: pg_sys::TimestampTz,
}

impl Origin {
    fn current() -> Origin {
        let actor = crate::claims::current_uid();
        let request_id = current_request_id();
        // SAFETY: backend globals.
        let (db_role, txid, at) = unsafe {
            let role = CStr::from_ptr(pg_sys::GetUserNameFromId(pg_sys::GetSessionUserId(), false))
                .to_string_lossy()
                .into_owned();
            (
                role,
                pg_sys::GetTopFullTransactionId().value as i64,
                pg_sys::GetCurrentStatementStartTimestamp(),
            )
        };
        Origin {
            actor,
            request_id,
            db_role,
            txid,
            at,
        }
    }
}

/// Appends the entry to the chain the transaction holds and advances its
/// head. Entries and heads are written directly, with no check of the
/// caller's privileges; the queries of the rare paths run as the
/// extension owner.
fn append_entry(
    tenant: pgrx::Uuid,
    table: &str,
    action: &'static str,
    images: &RowImages,
    origin: &Origin,
) {
    let tenant_text = tenant.to_string();
    let actor_text = origin.actor.map(|a| a.to_string());
    let (head, tables) = held_head(tenant);
    // Stored (and hashed) only where the column exists.
    let request_id = origin.request_id.as_deref().filter(|_| tables.request_id);
    let entry = Entry {
        tenant_id: &tenant_text,
        chain: head.chain,
        seq: head.seq + 1,
        table_name: table,
        record_key: &images.key_text,
        action,
        actor: actor_text.as_deref(),
        db_role: &origin.db_role,
        txid: origin.txid,
        at_micros: origin.at,
        before: images.before.as_ref().map(|b| b.1.as_str()),
        after: images.after.as_ref().map(|a| a.1.as_str()),
        request_id,
    };
    let hash = entry_hash(&head.hash, &entry);
    // In the order of LOG_COLUMNS, then request_id.
    let values = [
        tenant.into_datum(),
        head.chain.into_datum(),
        (head.seq + 1).into_datum(),
        table.into_datum(),
        Some(images.key),
        action.into_datum(),
        origin.actor.into_datum(),
        origin.db_role.as_str().into_datum(),
        origin.txid.into_datum(),
        Some(pg_sys::Datum::from(origin.at)),
        images.before.as_ref().map(|b| b.0),
        images.after.as_ref().map(|a| a.0),
        head.hash.as_slice().into_datum(),
        hash.as_slice().into_datum(),
        request_id.into_datum(),
    ];
    let mut row = crate::rows::Row::nulls(tables.log_natts);
    for (&col, value) in tables.log_cols.iter().zip(values) {
        row.set(col, value);
    }
    crate::rows::insert(tables.log, &row);
    remember(
        tenant,
        Head {
            seq: head.seq + 1,
            hash,
            ..head
        },
        &tables,
    );
}

/// Checks every chain of a tenant. Returns nothing when intact, else the
/// first broken link per chain: the chain, the sequence number and what is
/// wrong (an edited, deleted or reordered entry, or a forged head).
#[pg_extern(volatile, parallel_unsafe)]
fn audit_verify(
    tenant: pgrx::Uuid,
) -> TableIterator<'static, (name!(chain, i16), name!(seq, i64), name!(problem, String))> {
    // Entries of this very transaction count: their heads are written now.
    flush_heads();
    let (_, request_id) = audit_log_columns("bizos.audit_log");
    let select = format!(
        "select seq, table_name, record_key::text, action, actor::text, db_role, txid,
                at, before::text, after::text, prev_hash, hash, {}
           from bizos.audit_log where tenant_id = $1 and chain = $2 order by seq",
        if request_id {
            "request_id"
        } else {
            "null::text"
        }
    );
    let mut breaks = Vec::new();
    Spi::connect(|client| {
        let heads: Vec<(i16, i64, Vec<u8>)> = client
            .select(
                "select chain, seq, hash from bizos.audit_heads where tenant_id = $1 order by chain",
                None,
                &[tenant.into()],
            )
            .or_raise("reading audit heads")
            .map(|r| {
                (
                    r.get::<i16>(1).ok().flatten().unwrap_or(0),
                    r.get::<i64>(2).ok().flatten().unwrap_or(0),
                    r.get::<Vec<u8>>(3).ok().flatten().unwrap_or_default(),
                )
            })
            .collect();
        let tenant_text = tenant.to_string();
        for (chain, head_seq, head_hash) in heads {
            let mut verifier = ChainVerifier::default();
            let mut cursor = client.open_cursor(&select, &[tenant.into(), chain.into()]);
            'chain: loop {
                let batch = cursor.fetch(1000).or_raise("reading the audit log");
                if batch.is_empty() {
                    break;
                }
                for r in batch {
                    let text = |i| r.get::<String>(i).ok().flatten();
                    let (table, key, action, actor, role, before, after, request_id) = (
                        text(2),
                        text(3),
                        text(4),
                        text(5),
                        text(6),
                        text(9),
                        text(10),
                        text(13),
                    );
                    let at: i64 = r
                        .get::<pgrx::datum::TimestampWithTimeZone>(8)
                        .ok()
                        .flatten()
                        .map(|t| t.into_inner())
                        .unwrap_or(0);
                    let entry = Entry {
                        tenant_id: &tenant_text,
                        chain,
                        seq: r.get::<i64>(1).ok().flatten().unwrap_or(0),
                        table_name: table.as_deref().unwrap_or_default(),
                        record_key: key.as_deref().unwrap_or_default(),
                        action: action.as_deref().unwrap_or_default(),
                        actor: actor.as_deref(),
                        db_role: role.as_deref().unwrap_or_default(),
                        txid: r.get::<i64>(7).ok().flatten().unwrap_or(0),
                        at_micros: at,
                        before: before.as_deref(),
                        after: after.as_deref(),
                        request_id: request_id.as_deref(),
                    };
                    let prev = r.get::<Vec<u8>>(11).ok().flatten().unwrap_or_default();
                    let hash = r.get::<Vec<u8>>(12).ok().flatten().unwrap_or_default();
                    if !verifier.push(&entry, &prev, &hash) {
                        break 'chain;
                    }
                }
            }
            if let Some(b) = verifier.finish(head_seq, &head_hash) {
                breaks.push((chain, b.seq, b.problem));
            }
        }
    });
    TableIterator::new(breaks)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    const T1: &str = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab";
    const T2: &str = "0b8f6a57-1f43-4f4e-9a38-6d2f4b6b8c01";

    fn setup() {
        Spi::run(
            "create table t_deals (tenant_id uuid not null, id int not null, amount numeric, note text,
                                   meta jsonb, primary key (tenant_id, id));
             select bizos.enable_audit('t_deals')",
        )
        .unwrap();
    }

    fn breaks(tenant: &str) -> Vec<(i64, String)> {
        Spi::connect(|c| {
            c.select(
                &format!("select seq, problem from bizos.audit_verify('{tenant}') order by chain"),
                None,
                &[],
            )
            .unwrap()
            .map(|r| {
                (
                    r.get::<i64>(1).unwrap().unwrap(),
                    r.get::<String>(2).unwrap().unwrap(),
                )
            })
            .collect()
        })
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap()
    }

    #[pg_test]
    fn changes_are_recorded_with_actor_and_changed_columns() {
        setup();
        Spi::run(&format!(
            "select set_config('request.jwt.claims', '{{\"sub\":\"{T2}\",\"tenant_id\":\"{T1}\"}}', true)"
        ))
        .unwrap();
        Spi::run(&format!(
            "insert into t_deals values ('{T1}', 1, 100.50, 'first', '{{\"k\": [1, 2]}}');
             update t_deals set note = 'second' where id = 1;
             update t_deals set note = 'second' where id = 1;
             delete from t_deals where id = 1;"
        ))
        .unwrap();
        assert_eq!(
            count("select count(*) from bizos.audit_log"),
            3,
            "a no-op update is not recorded"
        );
        let (after, actor) = Spi::get_two::<pgrx::JsonB, String>(
            "select after, actor::text from bizos.audit_log where action = 'INSERT'",
        )
        .unwrap();
        let after = after.unwrap().0;
        assert_eq!(after["amount"], serde_json::json!(100.50));
        assert_eq!(after["meta"]["k"][1], 2);
        assert_eq!(actor.as_deref(), Some(T2));
        let (before, after) = Spi::get_two::<pgrx::JsonB, pgrx::JsonB>(
            "select before, after from bizos.audit_log where action = 'UPDATE'",
        )
        .unwrap();
        assert_eq!(
            before.unwrap().0,
            serde_json::json!({"tenant_id": T1, "id": 1, "note": "first"})
        );
        assert_eq!(
            after.unwrap().0,
            serde_json::json!({"tenant_id": T1, "id": 1, "note": "second"})
        );
        let key = Spi::get_one::<pgrx::JsonB>(
            "select record_key from bizos.audit_log where action = 'DELETE'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(key.0, serde_json::json!({"tenant_id": T1, "id": 1}));
        let history = count(&format!(
            "select count(*) from bizos.audit_history('t_deals', '{{\"tenant_id\": \"{T1}\", \"id\": 1}}')"
        ));
        assert_eq!(history, 3);
        assert!(breaks(T1).is_empty());
    }

    #[pg_test]
    fn the_request_id_is_stored_and_hashed() {
        setup();
        Spi::run(&format!(
            "select set_config('request.id', 'req-42', true);
             insert into t_deals values ('{T1}', 1, 1, 'with id');
             select set_config('request.id', '', true);
             insert into t_deals values ('{T1}', 2, 2, 'without id');"
        ))
        .unwrap();
        let ids = Spi::connect(|c| {
            c.select(
                "select request_id from bizos.audit_log order by seq",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap())
            .collect::<Vec<_>>()
        });
        assert_eq!(ids, vec![Some("req-42".to_owned()), None]);
        assert!(breaks(T1).is_empty());
        Spi::run("update bizos.audit_log set request_id = 'req-43' where seq = 1").unwrap();
        let b = breaks(T1);
        assert_eq!(b.len(), 1, "{b:?}");
        assert!(b[0].1.contains("modified"), "{b:?}");
    }

    #[pg_test]
    fn rolled_back_subtransactions_keep_the_chain_intact() {
        setup();
        Spi::run(&format!(
            "insert into t_deals values ('{T1}', 1, 1, 'kept');
             do $$ begin
               insert into t_deals values ('{T1}', 2, 2, 'rolled back');
               raise exception 'undo';
             exception when others then null;
             end $$;
             insert into t_deals values ('{T1}', 3, 3, 'kept');"
        ))
        .unwrap();
        assert_eq!(count("select count(*) from bizos.audit_log"), 2);
        assert_eq!(count("select max(seq) from bizos.audit_log"), 2);
        assert!(breaks(T1).is_empty(), "{:?}", breaks(T1));
    }

    #[pg_test]
    fn tenants_have_their_own_chains() {
        setup();
        Spi::run(&format!(
            "insert into t_deals select '{T1}', g, g, 'x' from generate_series(1, 20) g;
             insert into t_deals select '{T2}', g, g, 'y' from generate_series(1, 5) g;"
        ))
        .unwrap();
        assert_eq!(
            count(&format!(
                "select max(seq) from bizos.audit_log where tenant_id = '{T1}'"
            )),
            20
        );
        assert_eq!(
            count(&format!(
                "select max(seq) from bizos.audit_log where tenant_id = '{T2}'"
            )),
            5
        );
        assert!(breaks(T1).is_empty() && breaks(T2).is_empty());
    }

    #[pg_test]
    fn an_edited_entry_is_named() {
        setup();
        Spi::run(&format!(
            "insert into t_deals select '{T1}', g, g, 'x' from generate_series(1, 5) g"
        ))
        .unwrap();
        Spi::run(
            "update bizos.audit_log set after = jsonb_set(after, '{amount}', '999') where seq = 3",
        )
        .unwrap();
        let b = breaks(T1);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].0, 3);
        assert!(b[0].1.contains("modified"), "{b:?}");
        assert!(breaks(T2).is_empty());
    }

    #[pg_test]
    fn deleted_entries_are_named() {
        setup();
        Spi::run(&format!(
            "insert into t_deals select '{T1}', g, g, 'x' from generate_series(1, 5) g"
        ))
        .unwrap();
        Spi::run("delete from bizos.audit_log where seq = 2").unwrap();
        let b = breaks(T1);
        assert_eq!((b[0].0, b[0].1.contains("missing")), (2, true), "{b:?}");

        Spi::run("delete from bizos.audit_log where seq in (4, 5)").unwrap();
        Spi::run("insert into bizos.audit_log select * from bizos.audit_log where false").unwrap();
        let b = breaks(T1);
        assert_eq!(b[0].0, 2, "the first break is still the first: {b:?}");
    }

    #[pg_test]
    fn deleting_the_newest_entry_is_named() {
        setup();
        Spi::run(&format!(
            "insert into t_deals select '{T1}', g, g, 'x' from generate_series(1, 3) g"
        ))
        .unwrap();
        Spi::run("delete from bizos.audit_log where seq = 3").unwrap();
        let b = breaks(T1);
        assert_eq!(b[0].0, 3, "{b:?}");
    }

    #[pg_test(error = "public.t_plain has no tenant_id column; audited tables must carry one")]
    fn tables_need_a_tenant() {
        Spi::run("create table t_plain (id int primary key); select bizos.enable_audit('t_plain')")
            .unwrap();
    }

    #[pg_test(error = "public.t_nokey has no primary key; audited tables need one")]
    fn tables_need_a_key() {
        Spi::run(
            "create table t_nokey (tenant_id uuid, id int); select bizos.enable_audit('t_nokey')",
        )
        .unwrap();
    }

    #[pg_test]
    fn disable_removes_the_trigger() {
        setup();
        Spi::run("select bizos.disable_audit('t_deals')").unwrap();
        Spi::run(&format!("insert into t_deals values ('{T1}', 1, 1, 'x')")).unwrap();
        assert_eq!(count("select count(*) from bizos.audit_log"), 0);
    }
}
