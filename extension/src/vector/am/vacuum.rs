//! `ambulkdelete` and `amvacuumcleanup`: remove the items whose heap tuples
//! vacuum reports dead, one list page at a time (each change a generic WAL
//! record), and count what is left.

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
        let mut kept = 0.0;
        for block in 1..n {
            pg_sys::vacuum_delay_point();
            let buf = Locked::read_with(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                true,
                (*info).strategy,
            );
            if page::kind(buf.page()) != page::KIND_LIST {
                continue;
            }
            let mut remove: Vec<pg_sys::OffsetNumber> = Vec::new();
            for (off, item) in page::items(buf.page()) {
                let (head, _) = page::split_list_item(item);
                let mut tid = head.tid();
                if dead(&mut tid, callback_state) {
                    remove.push(off);
                } else {
                    kept += 1.0;
                }
            }
            if !remove.is_empty() {
                let mut wal = Wal::start(index);
                let p = wal.page(&buf, false);
                pg_sys::PageIndexMultiDelete(p, remove.as_mut_ptr(), remove.len() as i32);
                wal.finish();
                (*stats).tuples_removed += remove.len() as f64;
            }
        }
        (*stats).num_index_tuples = kept;
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
        let mut count = 0.0;
        for block in 1..n {
            pg_sys::vacuum_delay_point();
            let buf = Locked::read_with(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                false,
                (*info).strategy,
            );
            if page::kind(buf.page()) == page::KIND_LIST {
                count += page::items(buf.page()).count() as f64;
            }
        }
        (*stats).num_index_tuples = count;
        (*stats).num_pages = n;
        stats
    }
}
