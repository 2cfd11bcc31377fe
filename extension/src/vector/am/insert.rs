//! `aminsert`: append a vector to the last page of its nearest list.
//!
//! Lock order: the centroid page (exclusive, serialising appends to the
//! lists it holds), then the last page of the list's vector chain; a full
//! last page gets a new page linked behind it, all three changes in one
//! generic WAL record. Then, the centroid page still locked, the vector's
//! code goes to the list's code chain the same way (version 2 indexes).

use bizos_core::vector::kmeans;
use pgrx::pg_sys;

use super::buffers::{Locked, Wal};
use super::build::{code_item, prepare};
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
        let head = ListHead::from_tid(&*heap_tid);
        let item = page::make_item(head, &v);
        let (cblock, coff) = lists.places[i];
        let cbuf = Locked::read(index, cblock, true);
        let version = lists.meta.version;
        let place = append(index, &cbuf, coff, version, Chain::Vectors, &item);
        if let Some(rotation) = &lists.rotation {
            if centroid_head(cbuf.page(), coff, version).has_codes() {
                let centroid = lists.centroid(i);
                let code = code_item(
                    lists.metric,
                    rotation,
                    centroid,
                    &rotation.apply(centroid),
                    &v,
                    head,
                    place,
                );
                append(index, &cbuf, coff, version, Chain::Codes, &code);
            }
        }
        false
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Chain {
    Vectors,
    Codes,
}

/// Appends `item` to the last page of a chain of the list whose centroid
/// item is at `coff` of `cbuf` (locked exclusively): where it went. One
/// generic WAL record; a crash between the vector's record and its code's
/// leaves a vector item no code points at, which no scan reads and vacuum
/// removes with its (aborted) heap tuple.
unsafe fn append(
    index: pg_sys::Relation,
    cbuf: &Locked,
    coff: pg_sys::OffsetNumber,
    version: u32,
    chain: Chain,
    item: &[u8],
) -> (pg_sys::BlockNumber, pg_sys::OffsetNumber) {
    unsafe {
        let head = centroid_head(cbuf.page(), coff, version);
        let (last_block, kind) = match chain {
            Chain::Vectors => (head.last, page::KIND_LIST),
            Chain::Codes => (head.code_last, page::KIND_CODES),
        };
        let last = Locked::read(index, last_block, true);
        if pg_sys::PageGetFreeSpace(last.page()) >= item.len().div_ceil(8) * 8 {
            let mut wal = Wal::start(index);
            let p = wal.page(&last, false);
            let Some(off) = page::add_item(p, item) else {
                raise(
                    pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                    "bizos_ivf: list page full",
                    None,
                );
            };
            wal.finish();
            return (last_block, off);
        }
        let fresh = Locked::extend(index, pg_sys::ForkNumber::MAIN_FORKNUM);
        let mut wal = Wal::start(index);
        let cp = wal.page(cbuf, false);
        let lp = wal.page(&last, false);
        let np = wal.page(&fresh, true);
        page::init(np, kind);
        let Some(off) = page::add_item(np, item) else {
            raise(
                pgrx::PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                "a vector does not fit in an index page",
                None,
            );
        };
        (*page::special(lp)).next = fresh.block();
        set_last(cp, coff, chain, fresh.block());
        wal.finish();
        (fresh.block(), off)
    }
}

/// The head of the centroid item at `off` of `p`, in an index of `version`.
unsafe fn centroid_head(p: pg_sys::Page, off: pg_sys::OffsetNumber, version: u32) -> CentroidHead {
    unsafe {
        let item = page::item(p, off).expect("bizos_ivf: centroid item");
        page::split_centroid_item(version, item).0
    }
}

/// Sets the last page of `chain` in the centroid item at `off` of `p`,
/// touching only that field (a version 1 item is shorter).
unsafe fn set_last(
    p: pg_sys::Page,
    off: pg_sys::OffsetNumber,
    chain: Chain,
    last: pg_sys::BlockNumber,
) {
    unsafe {
        let id = pg_sys::PageGetItemId(p, off);
        let at = match chain {
            Chain::Vectors => std::mem::offset_of!(CentroidHead, last),
            Chain::Codes => std::mem::offset_of!(CentroidHead, code_last),
        };
        pg_sys::PageGetItem(p, id)
            .cast::<u8>()
            .add(at)
            .cast::<pg_sys::BlockNumber>()
            .write_unaligned(last);
    }
}
