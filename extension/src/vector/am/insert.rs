//! `aminsert`: append a vector to the last page of its nearest list.
//!
//! Lock order: the centroid page (exclusive, serialising appends to the
//! lists it holds), then the list's last page; a full last page gets a new
//! page linked behind it, all three changes in one generic WAL record.

use bizos_core::vector::kmeans;
use pgrx::pg_sys;

use super::buffers::{Locked, Wal};
use super::build::prepare;
use super::index::{check_dims, load};
use super::page::{self, CentroidHead, ListHead};
use crate::error::raise;
use crate::vector::types::elements;

#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _unique: pg_sys::IndexUniqueCheck::Type,
    _unchanged: bool,
    _info: *mut pg_sys::IndexInfo,
) -> bool {
    unsafe {
        if *isnull {
            return false;
        }
        let lists = load(index);
        let v = elements(*values);
        check_dims(lists.meta.dims, v.len());
        let v = prepare(lists.metric, v);
        let dims = lists.meta.dims as usize;
        let i = if dims == 0 {
            0
        } else {
            kmeans::nearest(&lists.centroids, dims, &v)
        };
        let item = page::make_item(ListHead::from_tid(&*heap_tid), &v);
        append(index, lists.places[i], &item);
        false
    }
}

unsafe fn append(
    index: pg_sys::Relation,
    (cblock, coff): (pg_sys::BlockNumber, pg_sys::OffsetNumber),
    item: &[u8],
) {
    unsafe {
        let cbuf = Locked::read(index, cblock, true);
        let head = centroid_head(cbuf.page(), coff);
        let last = Locked::read(index, head.last, true);
        if pg_sys::PageGetFreeSpace(last.page()) >= item.len().div_ceil(8) * 8 {
            let mut wal = Wal::start(index);
            let p = wal.page(&last, false);
            if !page::add_item(p, item) {
                raise(
                    pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    "bizos_ivf: list page full",
                    None,
                );
            }
            wal.finish();
            return;
        }
        let fresh = Locked::extend(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let mut wal = Wal::start(index);
        let cp = wal.page(&cbuf, false);
        let lp = wal.page(&last, false);
        let np = wal.page(&fresh, true);
        page::init(np, page::KIND_LIST);
        if !page::add_item(np, item) {
            raise(
                pgrx::PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                "a vector does not fit in an index page",
                None,
            );
        }
        (*page::special(lp)).next = fresh.block();
        set_last(cp, coff, fresh.block());
        wal.finish();
    }
}

unsafe fn centroid_head(p: pg_sys::Page, off: pg_sys::OffsetNumber) -> CentroidHead {
    unsafe {
        let id = pg_sys::PageGetItemId(p, off);
        pg_sys::PageGetItem(p, id)
            .cast::<CentroidHead>()
            .read_unaligned()
    }
}

unsafe fn set_last(p: pg_sys::Page, off: pg_sys::OffsetNumber, last: pg_sys::BlockNumber) {
    unsafe {
        let id = pg_sys::PageGetItemId(p, off);
        let head = pg_sys::PageGetItem(p, id).cast::<CentroidHead>();
        let mut h = head.read_unaligned();
        h.last = last;
        head.write_unaligned(h);
    }
}
