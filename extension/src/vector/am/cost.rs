//! `amcostestimate`: cheap to start when a query orders by the index's
//! operator (the first batch reads `probes` of the lists), so the planner
//! takes it for `order by v <op> $1 limit k`; useless without an ORDER BY
//! on the operator, so it is never chosen for anything else. The total cost
//! covers every list, which keeps a seq scan and sort the plan for a query
//! without LIMIT.
//!
//! Each row the scan returns also costs a heap page. The planner's own heap
//! cost assumes the whole table is read, every page once for all its rows,
//! and a LIMIT takes a share of that; but a scan stopped after k rows
//! fetches about one page per row. Under a selective filter the scan must
//! return k / selectivity rows to find k that pass (a tenant holding 1% of
//! the rows: 100 per match), and the exact plan (the filter's own index,
//! then a top-k sort of the matching rows) is cheaper. Charging a page per
//! returned row lets the planner see that and pick the exact plan; without
//! a filter, or with a loose one, the index stays far cheaper.

use pgrx::pg_sys;

use super::index::read_meta;
use super::options::probes;
use super::page;

#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amcostestimate(
    _root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    _loop_count: f64,
    startup: *mut pg_sys::Cost,
    total: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    unsafe {
        *correlation = 0.0;
        if (*path).indexorderbys.is_null() {
            // Only an ordered scan makes sense for this index.
            *startup = 1.0e10;
            *total = 1.0e10;
            *selectivity = 0.0;
            *pages = 0.0;
            return;
        }
        let info = (*path).indexinfo;
        let rel = pg_sys::index_open((*info).indexoid, pg_sys::NoLock as pg_sys::LOCKMODE);
        let meta = read_meta(rel);
        pg_sys::index_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);

        let lists = f64::from(meta.lists.max(1));
        let fraction = (probes(meta.lists as usize) as f64 / lists).min(1.0);
        let tuples = (*info).tuples.max(0.0);
        let mut list_pages = ((*info).pages as f64 - 1.0 - f64::from(meta.centroid_pages)).max(1.0);
        // A distance over `dims` floats costs about as much as a few
        // operators per 64 dimensions; a code's estimate (a table lookup per
        // 8 dimensions) one per 256, and a scan of codes reads only the code
        // pages (their share of the list pages) and the vectors it re-ranks.
        let dims = meta.dims as usize;
        let mut distance = pg_sys::cpu_operator_cost * (1.0 + dims as f64 / 64.0);
        if meta.version == page::VERSION && dims > 0 {
            let (code, vector) = (page::code_item_size(dims), page::list_item_size(dims));
            list_pages *= code as f64 / (code + vector) as f64;
            distance = pg_sys::cpu_operator_cost * (1.0 + dims as f64 / 256.0);
        }
        let centroids = f64::from(meta.centroid_pages) * pg_sys::seq_page_cost + lists * distance;
        let scan = |share: f64| {
            let rows = tuples * share;
            list_pages * share * pg_sys::random_page_cost
                + rows * (distance + pg_sys::cpu_index_tuple_cost)
                + rows * rows.max(2.0).log2() * pg_sys::cpu_operator_cost
        };
        // One heap page per row returned (see the module's comment).
        let fetch = tuples * pg_sys::random_page_cost;
        *startup = centroids + scan(fraction);
        *total = centroids + scan(1.0) + fetch;
        *selectivity = 1.0;
        *pages = list_pages * fraction;
    }
}
