//! `ambulkdelete` and `amvacuumcleanup`: remove the items whose heap tuples
//! vacuum reports dead, one list or code page at a time (each change a
//! generic WAL record), and count what is left (the codes, or the vectors
//! of an index without codes).
//!
//! Vector items are deleted without compacting the line pointers: code
//! items point at them by offset. A freed offset may be taken by a later
//! insert while a dead code item still points at it (until vacuum reaches
//! its page); the scan re-ranks a vector only when its heap TID is the
//! code's, so such a code item finds nothing.

use pgrx::pg_sys;

use super::buffers::{nblocks, Locked, Wal};
use super::page;

unsafe fn stats_or_new(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        unsafe { pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexBulkDeleteResult>()).cast() }
    } else {
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    unsafe {
        let stats = stats_or_new(stats);
        let Some(dead) = callback else { return stats };
        let index = (*info).index;
        let n = nblocks(index);
        let (mut kept, mut removed) = (Kept::default(), Kept::default());
        for block in 1..n {
            pg_sys::vacuum_delay_point();
            let buf = Locked::read_with(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                true,
                (*info).strategy,
            );
            let kind = page::kind(buf.page());
            if kind != page::KIND_LIST && kind != page::KIND_CODES {
                continue;
            }
            kept.add(kind, 0.0);
            let mut remove: Vec<pg_sys::OffsetNumber> = Vec::new();
            for (off, item) in page::items(buf.page()) {
                let mut tid = if kind == page::KIND_LIST {
                    page::split_list_item(item).0.tid()
                } else {
                    page::split_code_item(item).0.tid.tid()
                };
                if dead(&mut tid, callback_state) {
                    remove.push(off);
                } else {
                    kept.add(kind, 1.0);
                }
            }
            if !remove.is_empty() {
                removed.add(kind, remove.len() as f64);
                let mut wal = Wal::start(index);
                let p = wal.page(&buf, false);
                if kind == page::KIND_LIST {
                    for &off in remove.iter().rev() {
                        pg_sys::PageIndexTupleDeleteNoCompact(p, off);
                    }
                } else {
                    pg_sys::PageIndexMultiDelete(p, remove.as_mut_ptr(), remove.len() as i32);
                }
                wal.finish();
            }
        }
        (*stats).num_index_tuples = kept.tuples();
        (*stats).tuples_removed += if kept.code_pages {
            removed.codes
        } else {
            removed.vectors
        };
        (*stats).num_pages = n;
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        if !stats.is_null() {
            return stats;
        }
        // No bulk delete ran (nothing dead): count the items for the stats.
        let stats = stats_or_new(stats);
        let index = (*info).index;
        let n = nblocks(index);
        let mut count = Kept::default();
        for block in 1..n {
            pg_sys::vacuum_delay_point();
            let buf = Locked::read_with(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                false,
                (*info).strategy,
            );
            let kind = page::kind(buf.page());
            count.add(kind, page::items(buf.page()).count() as f64);
        }
        (*stats).num_index_tuples = count.tuples();
        (*stats).num_pages = n;
        stats
    }
}

/// Items counted per kind of page: the index's tuples are its codes, or its
/// vectors when it has no code pages (version 1, or no dimension).
#[derive(Default)]
struct Kept {
    vectors: f64,
    codes: f64,
    code_pages: bool,
}

impl Kept {
    fn add(&mut self, kind: u16, n: f64) {
        if kind == page::KIND_LIST {
            self.vectors += n;
        } else if kind == page::KIND_CODES {
            self.codes += n;
            self.code_pages = true;
        }
    }

    fn tuples(&self) -> f64 {
        if self.code_pages {
            self.codes
        } else {
            self.vectors
        }
    }
}
