//! Per-backend copies of the extension's small data tables, `id_kinds` and
//! `transitions`: every business number reads its kind and every guarded
//! status change its allowed transitions, and a lookup through the table
//! cost more than the rest of the work.
//!
//! A copy is dropped whenever its table may have changed. Each table has a
//! statement trigger, `bizos.invalidate_caches()`, that sends a relcache
//! invalidation for it: PostgreSQL delivers it to the writing backend at the
//! end of the statement and to every other backend of the database after
//! the commit, before their next transaction or lock, as it does for its
//! own catalog caches. A rolled-back change sends nothing, and its own
//! backend drops its copy at the abort. A backend's callback counts these
//! invalidations in [`generation`]; a copy made under another generation is
//! read again.
//!
//! A table without the trigger (a database whose extension SQL is older
//! than the library) is not copied. Neither are tables on Citus, where they
//! are reference tables whose rows live in shard placements.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgSqlErrorCode as Code};

use crate::error::raise;

thread_local! {
    /// Invalidations of a copied table (or of every relation) seen so far.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    /// The relations copies were made of.
    static WATCHED: RefCell<Vec<pg_sys::Oid>> = const { RefCell::new(Vec::new()) };
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// The trigger that keeps copies of a table current.
const TRIGGER: &std::ffi::CStr = c"bizos_invalidate_caches";

/// The current generation: a copy made under another one is stale.
fn generation() -> u64 {
    GENERATION.with(Cell::get)
}

/// A backend's copy of one whole table, made by a reader from the table's
/// rows under the newest snapshot (as catalog caches read theirs: a copy
/// read under an older snapshot, in REPEATABLE READ, would outlive the
/// invalidation that came before it). Kept in a `thread_local!`.
pub(crate) struct TableCopy<T> {
    copy: RefCell<Option<(u64, Rc<T>)>>,
}

impl<T> TableCopy<T> {
    pub(crate) const fn new() -> Self {
        TableCopy {
            copy: RefCell::new(None),
        }
    }

    /// The copy, read again when its table changed since it was made;
    /// `None` when the table (`relid()`) cannot be copied.
    pub(crate) fn get(
        &self,
        relid: impl FnOnce() -> pg_sys::Oid,
        read: impl FnOnce(pg_sys::Oid, pg_sys::Snapshot) -> T,
    ) -> Option<Rc<T>> {
        let generation = generation();
        let current = self
            .copy
            .borrow()
            .as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, t)| t.clone());
        if current.is_some() {
            return current;
        }
        let relid = relid();
        if !copyable(relid) {
            return None;
        }
        // SAFETY: the newest snapshot serves the reader's one scan.
        let t = Rc::new(read(relid, unsafe { pg_sys::GetLatestSnapshot() }));
        // Stored under the generation read before: an invalidation that
        // arrived while reading makes the copy stale at once.
        *self.copy.borrow_mut() = Some((generation, t.clone()));
        Some(t)
    }
}

/// Whether rows of `relid` may be copied into backend memory: not on
/// Citus, and only when the table has the invalidation trigger. Watches
/// the table from now on.
fn copyable(relid: pg_sys::Oid) -> bool {
    if crate::citus::on_citus() || !has_trigger(relid) {
        return false;
    }
    if !REGISTERED.with(Cell::get) {
        // SAFETY: registers a callback for the backend's life (PostgreSQL
        // keeps a fixed number of slots; this is done once per backend).
        unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0)) };
        REGISTERED.with(|r| r.set(true));
    }
    WATCHED.with(|w| {
        let mut w = w.borrow_mut();
        if !w.contains(&relid) {
            w.push(relid);
        }
    });
    true
}

fn has_trigger(relid: pg_sys::Oid) -> bool {
    // SAFETY: the relation is opened and closed around a read of its
    // relcache entry's trigger descriptor.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let rel = pg_sys::table_open(relid, lock);
        let desc = (*rel).trigdesc;
        let found = !desc.is_null()
            && (0..(*desc).numtriggers as usize).any(|i| {
                let t = (*desc).triggers.add(i);
                std::ffi::CStr::from_ptr((*t).tgname) == TRIGGER
            });
        pg_sys::table_close(rel, lock);
        found
    }
}

/// Relcache invalidation callback: `relid` is the relation, or InvalidOid
/// for all of them (e.g. after the invalidation queue overflowed).
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let watched = relid == pg_sys::InvalidOid
        || WATCHED.with(|w| w.try_borrow().map_or(true, |w| w.contains(&relid)));
    if watched {
        GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    }
}

/// Statement trigger (AFTER INSERT, UPDATE, DELETE or TRUNCATE) of the
/// tables the extension copies into backend memory: every backend drops
/// its copy of the table once the change commits.
#[pg_trigger]
fn invalidate_caches<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, pgrx::datum::TryFromDatumError> {
    let data = trigger.trigger_data();
    if data.tg_relation.is_null() {
        raise(
            Code::ERRCODE_TRIGGERED_ACTION_EXCEPTION,
            "invalidate_caches is a trigger of a table",
            None,
        );
    }
    // SAFETY: the trigger's relation is open.
    unsafe { pg_sys::CacheInvalidateRelcache(data.tg_relation) };
    Ok(None)
}

pgrx::extension_sql!(
    r#"
create trigger bizos_invalidate_caches
  after insert or update or delete or truncate on bizos.id_kinds
  for each statement execute function bizos.invalidate_caches();
create trigger bizos_invalidate_caches
  after insert or update or delete or truncate on bizos.transitions
  for each statement execute function bizos.invalidate_caches();
"#,
    name = "cache_triggers",
    requires = ["ids_schema", "lifecycle_schema", invalidate_caches]
);
