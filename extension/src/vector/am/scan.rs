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
//!
//! A batch reads the lists' codes, not their vectors: each code gives an
//! estimate of its distance and a lower bound of it (`bizos_core::vector::
//! rabitq`), and the candidates wait in a heap by lower bound. A row is
//! returned once its exact distance, computed from its vector item, is no
//! larger than every remaining lower bound; so only the candidates whose
//! bound could place them before the rows asked for are re-ranked, however
//! many rows the executor takes. (The bound holds with high probability,
//! not always: a rare row may come a few places late.) Lists without codes
//! (version 1 indexes) are read whole with exact distances.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ffi::c_void;
use std::rc::Rc;

use bizos_core::vector::rabitq::{self, ListQuery, QueryTable};
use bizos_core::vector::Metric;
use pgrx::pg_sys;

use super::buffers::Locked;
use super::build::prepare;
use super::index::{check_dims, load, Lists};
use super::options::{probes, rerank_confidence, strict_order};
use super::page::{self, ListHead};
use crate::vector::types::elements;

struct ScanState {
    lists: Rc<Lists>,
    /// The query as the index stores vectors; None for `order by v <op> NULL`
    /// (every row still comes back, in list order).
    query: Option<Vec<f32>>,
    /// The query's lookup table for the codes.
    table: Option<QueryTable>,
    /// Lists nearest first.
    order: Vec<u32>,
    next: usize,
    /// Codes of the current batch not yet re-ranked, by lower bound.
    candidates: BinaryHeap<Candidate>,
    /// Rows of the current batch with their exact keys, nearest first.
    ready: BinaryHeap<Ready>,
    probes: usize,
    /// Lists and codes read, candidates re-ranked, rows returned and rows
    /// re-ranked after a farther row was returned (late): a DEBUG1 line at
    /// the end of the scan, for tuning `bizos.ivf_probes`.
    counts: [u64; 5],
    /// `bizos.ivf_rerank_confidence`.
    confidence: f32,
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
            table: None,
            order: Vec::new(),
            next: 0,
            candidates: BinaryHeap::new(),
            ready: BinaryHeap::new(),
            counts: [0; 5],
            confidence: rerank_confidence(),
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
        s.table = match (&s.query, &s.lists.rotation) {
            (Some(q), Some(rotation)) => Some(QueryTable::new(rotation, q)),
            _ => None,
        };
        s.next = 0;
        s.candidates.clear();
        s.ready.clear();
        s.counts = [0; 5];
        s.confidence = rerank_confidence();
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
        let index = (*scan).indexRelation;
        loop {
            let bound = s.candidates.peek().map_or(f32::INFINITY, |c| c.key);
            if s.ready.peek().is_some_and(|r| r.key <= bound) {
                let Least { key, item: tid } = s.ready.pop().expect("peeked");
                if key < s.last {
                    s.counts[4] += 1;
                    if s.strict {
                        continue;
                    }
                } else {
                    s.last = key;
                }
                s.counts[3] += 1;
                (*scan).xs_heaptid = tid;
                (*scan).xs_recheck = false;
                (*scan).xs_recheckorderby = false;
                return true;
            }
            if let Some(c) = s.candidates.pop() {
                s.counts[2] += 1;
                rerank(index, s, &c);
                continue;
            }
            if s.next >= s.order.len() {
                return false;
            }
            let end = (s.next + s.probes.max(1)).min(s.order.len());
            let mut found = Vec::new();
            for k in s.next..end {
                let list = s.order[k] as usize;
                read_list(index, s, list, &mut found);
            }
            s.counts[0] += (end - s.next) as u64;
            s.counts[1] += found.len() as u64;
            s.candidates = BinaryHeap::from(found);
            s.next = end;
        }
    }
}

/// Reads list `list`: its codes into `found` when it has them and the scan
/// has a query, else its vectors into `s.ready` with exact keys.
unsafe fn read_list(
    index: pg_sys::Relation,
    s: &mut ScanState,
    list: usize,
    found: &mut Vec<Candidate>,
) {
    unsafe {
        let head = s.lists.heads[list];
        if let (Some(q), Some(table), true) = (&s.query, &s.table, head.has_codes()) {
            let (metric, confidence) = (s.lists.metric, s.confidence);
            let lq = ListQuery::new(q, s.lists.centroid(list), s.lists.norms2[list]);
            walk(index, head.code_first, |item| {
                let (h, code) = page::split_code_item(item);
                let (_, lower) =
                    rabitq::estimate_with(metric, &h.factors, &lq, table.project(code), confidence);
                found.push(Least {
                    key: lower,
                    item: (h.vector_block, h.vector_offset, h.tid),
                });
            });
            return;
        }
        walk(index, head.first, |item| {
            let (h, v) = page::split_list_item(item);
            let key = match &s.query {
                Some(q) => {
                    if v.len() != q.len() {
                        check_dims(q.len() as u32, v.len());
                    }
                    s.lists.metric.key(q, v)
                }
                None => 0.0,
            };
            s.ready.push(Least { key, item: h.tid() });
        });
    }
}

/// Calls `f` on every item of the page chain starting at `block`.
unsafe fn walk(index: pg_sys::Relation, mut block: pg_sys::BlockNumber, mut f: impl FnMut(&[u8])) {
    unsafe {
        while block != pg_sys::InvalidBlockNumber {
            pgrx::check_for_interrupts!();
            let buf = Locked::read(index, block, false);
            let p = buf.page();
            for (_, item) in page::items(p) {
                f(item);
            }
            block = (*page::special(p)).next;
        }
    }
}

/// The exact key of a candidate, from its vector item, into `s.ready`;
/// nothing when the item is gone or is another row's (see `vacuum`).
unsafe fn rerank(index: pg_sys::Relation, s: &mut ScanState, c: &Candidate) {
    unsafe {
        let Some(q) = &s.query else { return };
        let (block, offset, tid) = c.item;
        let buf = Locked::read(index, block, false);
        let Some(item) = page::item(buf.page(), offset) else {
            return;
        };
        let (head, v) = page::split_list_item(item);
        if head.block != tid.block || head.offset != tid.offset || v.len() != q.len() {
            return;
        }
        s.ready.push(Least {
            key: s.lists.metric.key(q, v),
            item: head.tid(),
        });
    }
}

/// A heap entry ordered by its key, least first (`BinaryHeap` keeps the
/// greatest on top, so the order is reversed).
struct Least<T> {
    key: f32,
    item: T,
}

impl<T> PartialEq for Least<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<T> Eq for Least<T> {}
impl<T> PartialOrd for Least<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Least<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.total_cmp(&self.key)
    }
}

/// A code waiting to be re-ranked, keyed by the lower bound of its
/// distance: where its vector item is and its heap TID.
type Candidate = Least<(pg_sys::BlockNumber, pg_sys::OffsetNumber, ListHead)>;

/// A row keyed by its exact distance.
type Ready = Least<pg_sys::ItemPointerData>;

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    unsafe {
        // The state itself goes with the memory context (free_state); drop
        // the batch now, it can be large.
        let s = &mut *(*scan).opaque.cast::<ScanState>();
        let [lists, codes, reranked, returned, late] = s.counts;
        pgrx::debug1!(
            "bizos_ivf scan: {lists} lists, {codes} codes, {reranked} re-ranked, {returned} rows returned, {late} late"
        );
        s.candidates = BinaryHeap::new();
        s.ready = BinaryHeap::new();
    }
}
