//! `bizos.ivf_index_state(index)`: whether an IVF index still fits its
//! table. The lists are trained once, at the build; as rows are inserted
//! they join the nearest list, so the lists grow longer (a scan reads
//! more codes for the same recall) and, when new rows are unlike the
//! sample, unbalanced. An index built on an empty table has a single list
//! forever. The meta page records the rows the lists were trained on and
//! the longest list then (`page::Meta`); this counts the lists now and
//! says whether a rebuild (`REINDEX INDEX CONCURRENTLY`) is due, and why.
//! The rules are pure ([`assess`]), so they are tested without a server.

use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

use super::buffers::Locked;
use super::index::{load, name};
use super::options::{default_lists, lists_option};
use super::page;
use crate::error::raise;

/// A rebuild is due once the table holds this many times the rows the
/// lists were trained on (or this fraction of them)...
pub const GROWTH: f64 = 1.5;
pub const SHRINK: f64 = 0.5;
/// ... or its longest list is this many times as long, relative to the
/// mean, as the longest was at the build ...
pub const IMBALANCE: f64 = 2.0;
/// ... and, in each case, at least this many rows changed (no rebuilds of
/// small tables for a handful of rows).
pub const MIN_CHANGE: u64 = 1_000;

/// What [`assess`] decides from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Counts {
    pub trained_rows: u64,
    pub trained_longest: u64,
    pub rows: u64,
    pub lists: u64,
    pub longest: u64,
    /// The `lists` storage parameter, when given.
    pub lists_option: Option<u64>,
}

/// Whether the index needs a rebuild, and why (None: it does not).
pub fn assess(c: &Counts) -> Option<String> {
    let changed = c.rows.abs_diff(c.trained_rows);
    if changed < MIN_CHANGE {
        return None;
    }
    if c.trained_rows == 0 {
        return Some(format!(
            "trained on no rows (built on an empty table or before bizos 0.8.0); the table has {}",
            c.rows
        ));
    }
    let ratio = c.rows as f64 / c.trained_rows as f64;
    if ratio >= GROWTH {
        return Some(format!(
            "{} rows, {ratio:.2} times the {} it was trained on",
            c.rows, c.trained_rows
        ));
    }
    if ratio <= SHRINK {
        return Some(format!(
            "{} rows, {ratio:.2} of the {} it was trained on",
            c.rows, c.trained_rows
        ));
    }
    let mean = |rows: u64| rows as f64 / c.lists.max(1) as f64;
    let now = c.longest as f64 / mean(c.rows).max(1.0);
    let then = c.trained_longest as f64 / mean(c.trained_rows).max(1.0);
    if c.trained_longest > 0 && now >= IMBALANCE * then {
        return Some(format!(
            "its longest list is {now:.1} times the mean, {then:.1} at the build"
        ));
    }
    None
}

/// The lists a rebuild would make: the storage parameter, or derived from
/// the rows.
pub fn lists_after(c: &Counts) -> u64 {
    c.lists_option
        .unwrap_or_else(|| default_lists(c.rows as f64) as u64)
}

/// The state of an IVF index: the rows its lists were trained on, the rows
/// it holds now (its live codes, or vectors for an index without codes),
/// its lists, the lists a rebuild would make, the longest list and the
/// mean, and whether a rebuild is due and why. Reads every code page of
/// the index (a few MB per 100,000 rows of 384 dimensions); needs SELECT
/// on the table.
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_safe, strict, sql = false)]
fn ivf_index_state(
    index: pg_sys::Oid,
) -> TableIterator<
    'static,
    (
        name!(trained_rows, i64),
        name!(current_rows, i64),
        name!(lists, i32),
        name!(lists_after_rebuild, i32),
        name!(longest_list, i64),
        name!(mean_list, f64),
        name!(longest_to_mean, f64),
        name!(needs_retrain, bool),
        name!(reason, Option<String>),
    ),
> {
    let row = unsafe { state_of(index) };
    TableIterator::once(row)
}

#[allow(clippy::type_complexity)]
unsafe fn state_of(oid: pg_sys::Oid) -> (i64, i64, i32, i32, i64, f64, f64, bool, Option<String>) {
    unsafe {
        let rel = pg_sys::index_open(oid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let ours = pg_sys::get_am_oid(c"bizos_ivf".as_ptr(), true);
        if (*(*rel).rd_rel).relam != ours {
            let n = name(rel);
            pg_sys::index_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            raise(
                Code::ERRCODE_WRONG_OBJECT_TYPE,
                format!("\"{n}\" is not a bizos_ivf index"),
                None,
            );
        }
        let heap = (*(*rel).rd_index).indrelid;
        if pg_sys::pg_class_aclcheck(
            heap,
            pg_sys::GetUserId(),
            pg_sys::ACL_SELECT as pg_sys::AclMode,
        ) != pg_sys::AclResult::ACLCHECK_OK
        {
            let n = name(rel);
            pg_sys::index_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!("permission denied for the table of \"{n}\""),
                Some("the state of an index needs SELECT on its table"),
            );
        }
        let lists = load(rel);
        let mut sizes = Vec::with_capacity(lists.heads.len());
        for head in &lists.heads {
            let first = if head.has_codes() {
                head.code_first
            } else {
                head.first
            };
            sizes.push(count_chain(rel, first));
        }
        let option = lists_option(rel).map(|n| n as u64);
        pg_sys::index_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);

        let rows: u64 = sizes.iter().sum();
        let c = Counts {
            trained_rows: lists.meta.trained_rows,
            trained_longest: u64::from(lists.meta.trained_longest),
            rows,
            lists: sizes.len() as u64,
            longest: sizes.iter().copied().max().unwrap_or(0),
            lists_option: option,
        };
        let mean = rows as f64 / c.lists.max(1) as f64;
        let reason = assess(&c);
        (
            c.trained_rows as i64,
            rows as i64,
            c.lists as i32,
            lists_after(&c) as i32,
            c.longest as i64,
            mean,
            if mean > 0.0 {
                c.longest as f64 / mean
            } else {
                0.0
            },
            reason.is_some(),
            reason,
        )
    }
}

/// Live items of the page chain starting at `block`.
unsafe fn count_chain(rel: pg_sys::Relation, mut block: pg_sys::BlockNumber) -> u64 {
    let mut n = 0u64;
    unsafe {
        while block != pg_sys::InvalidBlockNumber {
            pgrx::check_for_interrupts!();
            let buf = Locked::read(rel, block, false);
            let p = buf.page();
            n += page::items(p).count() as u64;
            block = (*page::special(p)).next;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(trained_rows: u64, rows: u64) -> Counts {
        Counts {
            trained_rows,
            trained_longest: trained_rows / 50,
            rows,
            lists: 100,
            longest: rows / 50,
            lists_option: None,
        }
    }

    #[test]
    fn growth_shrinkage_and_imbalance_call_for_a_rebuild() {
        assert_eq!(assess(&counts(50_000, 60_000)), None);
        assert!(assess(&counts(50_000, 75_000))
            .unwrap()
            .contains("1.50 times"));
        assert!(assess(&counts(50_000, 25_000)).unwrap().contains("0.50 of"));
        assert!(assess(&counts(0, 5_000))
            .unwrap()
            .contains("trained on no rows"));
        // A few rows do not: a small table is not rebuilt for every insert.
        assert_eq!(assess(&counts(0, 999)), None);
        assert_eq!(assess(&counts(100, 900)), None);
        let skewed = Counts {
            longest: 2_500,
            ..counts(50_000, 60_000)
        };
        assert!(assess(&skewed).unwrap().contains("longest list"));
        let fine = Counts {
            longest: 2_300,
            ..counts(50_000, 60_000)
        };
        assert_eq!(assess(&fine), None);
    }

    #[test]
    fn a_rebuild_keeps_a_given_lists_and_derives_it_otherwise() {
        assert_eq!(lists_after(&counts(0, 100_000)), 400);
        let given = Counts {
            lists_option: Some(100),
            ..counts(0, 100_000)
        };
        assert_eq!(lists_after(&given), 100);
    }
}
