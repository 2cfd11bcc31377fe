//! The ordered scan behind `order by v <op> $1 limit k`.
//!
//! The lists are ranked by the distance of their centroid to the query.
//! The first batch reads the `bizos.ivf_probes` nearest lists, and returns
//! their rows nearest first. When the executor keeps asking — because a
//! WHERE clause or an RLS policy discarded rows, or the limit is larger than
//! the batch — the scan reads the next `probes` lists, and so on until every
//! list has been read: a query gets k rows whenever k rows match, however
//! selective its filter. Within a batch the order is exact; across batches
//! it is the lists' order (the approximation every IVF index makes): a row
//! of a later batch may be nearer than one already returned. With
//! `bizos.ivf_strict_order` on, such rows are skipped, so the rows come
//! back in exact distance order (the scan still goes on until it has its
//! rows or has read every list).

use std::ffi::c_void;
use std::rc::Rc;

use bizos_core::vector::Metric;
use pgrx::pg_sys;

use super::buffers::Locked;
use super::build::prepare;
use super::index::{check_dims, load, Lists};
use super::options::{probes, strict_order};
use super::page;
use crate::vector::types::elements;

struct ScanState {
    lists: Rc<Lists>,
    /// The query as the index stores vectors; None for `order by v <op> NULL`
    /// (every row still comes back, in list order).
    query: Option<Vec<f32>>,
    /// Lists nearest first.
    order: Vec<u32>,
    next: usize,
    /// Candidates of the current batch, farthest first (popped from the end).
    batch: Vec<(f32, pg_sys::ItemPointerData)>,
    probes: usize,
    /// `bizos.ivf_strict_order`, and the distance key last returned.
    strict: bool,
    last: f32,
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        let lists = load(index);
        let state = Box::new(ScanState {
            probes: probes(lists.heads.len()),
            lists,
            query: None,
            order: Vec::new(),
            next: 0,
            batch: Vec::new(),
            strict: strict_order(),
            last: f32::NEG_INFINITY,
        });
        let raw = Box::into_raw(state);
        (*scan).opaque = raw.cast();
        // Freed with the scan's memory context, also when the query fails
        // and amendscan is never called.
        let cb = pg_sys::palloc0(std::mem::size_of::<pg_sys::MemoryContextCallback>())
            .cast::<pg_sys::MemoryContextCallback>();
        (*cb).func = Some(free_state);
        (*cb).arg = raw.cast();
        pg_sys::MemoryContextRegisterResetCallback(pg_sys::CurrentMemoryContext, cb);
        scan
    }
}

unsafe extern "C-unwind" fn free_state(arg: *mut c_void) {
    drop(unsafe { Box::from_raw(arg.cast::<ScanState>()) });
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    _keys: pg_sys::ScanKey,
    _nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    unsafe {
        let s = &mut *(*scan).opaque.cast::<ScanState>();
        s.query = None;
        if norderbys > 0 && !orderbys.is_null() {
            let key = &*orderbys;
            if key.sk_flags & pg_sys::SK_ISNULL as i32 == 0 {
                let v = elements(key.sk_argument);
                check_dims(s.lists.meta.dims, v.len());
                s.query = Some(prepare(s.lists.metric, v).into_owned());
            }
        }
        let n = s.lists.heads.len();
        let mut ranked: Vec<(f32, u32)> = (0..n)
            .map(|i| {
                let d = match &s.query {
                    Some(q) if s.lists.meta.dims > 0 => {
                        list_key(s.lists.metric, q, s.lists.centroid(i))
                    }
                    _ => 0.0,
                };
                (d, i as u32)
            })
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        s.order = ranked.into_iter().map(|(_, i)| i).collect();
        s.next = 0;
        s.batch.clear();
        s.probes = probes(n);
        s.strict = strict_order();
        s.last = f32::NEG_INFINITY;
    }
}

/// How near a list is: the metric's own key, except that inner-product
/// lists are ranked by inner product with the centroid (k-means trained
/// them by L2, which ranks large-norm rows poorly).
fn list_key(metric: Metric, q: &[f32], centroid: &[f32]) -> f32 {
    metric.key(q, centroid)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _dir: pg_sys::ScanDirection::Type,
) -> bool {
    unsafe {
        let s = &mut *(*scan).opaque.cast::<ScanState>();
        loop {
            if let Some((key, tid)) = s.batch.pop() {
                if s.strict {
                    if key < s.last {
                        continue;
                    }
                    s.last = key;
                }
                (*scan).xs_heaptid = tid;
                (*scan).xs_recheck = false;
                (*scan).xs_recheckorderby = false;
                return true;
            }
            if s.next >= s.order.len() {
                return false;
            }
            let end = (s.next + s.probes.max(1)).min(s.order.len());
            for k in s.next..end {
                let list = s.order[k] as usize;
                read_list(scan, s, list);
            }
            s.next = end;
            s.batch.sort_by(|a, b| b.0.total_cmp(&a.0));
        }
    }
}

unsafe fn read_list(scan: pg_sys::IndexScanDesc, s: &mut ScanState, list: usize) {
    unsafe {
        let index = (*scan).indexRelation;
        let mut block = s.lists.heads[list].first;
        while block != pg_sys::InvalidBlockNumber {
            pgrx::check_for_interrupts!();
            let buf = Locked::read(index, block, false);
            let p = buf.page();
            for (_, item) in page::items(p) {
                let (head, v) = page::split_list_item(item);
                let key = match &s.query {
                    Some(q) => {
                        if v.len() != q.len() {
                            check_dims(q.len() as u32, v.len());
                        }
                        s.lists.metric.key(q, v)
                    }
                    None => 0.0,
                };
                s.batch.push((key, head.tid()));
            }
            block = (*page::special(p)).next;
        }
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    unsafe {
        // The state itself goes with the memory context (free_state); drop
        // the batch now, it can be large.
        let s = &mut *(*scan).opaque.cast::<ScanState>();
        s.batch = Vec::new();
    }
}
