//! Settings of the IVF index: the `lists` storage parameter
//! (`create index ... with (lists = 1000)`; 0 or absent: derived from the
//! table's rows at build) and the `bizos.ivf_probes` and
//! `bizos.ivf_strict_order` settings. They are registered when the library
//! loads (`_PG_init`), so `set bizos.ivf_probes` works before any index was
//! used; the `bizos.` prefix is reserved there too, so a misspelled
//! `set bizos.ivf_probe = 3` is an error, not a silent placeholder.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

const MAX_LISTS: i32 = 32_768;

/// 0: 2.5 times the square root of the index's lists (see [`probes`]).
static PROBES: GucSetting<i32> = GucSetting::<i32>::new(0);
static STRICT_ORDER: GucSetting<bool> = GucSetting::<bool>::new(false);
/// See [`rerank_confidence`].
static RERANK_CONFIDENCE: GucSetting<f64> = GucSetting::<f64>::new(DEFAULT_RERANK_CONFIDENCE);
pub const DEFAULT_RERANK_CONFIDENCE: f64 = 5.0;
static mut KIND: pg_sys::relopt_kind::Type = 0;

#[repr(C)]
struct IvfOptions {
    vl_len_: i32,
    lists: i32,
}

/// Registers the storage parameter and the settings: once, from
/// `_PG_init` when the library loads.
pub fn init() {
    unsafe {
        KIND = pg_sys::add_reloption_kind();
        pg_sys::add_int_reloption(
            KIND as pg_sys::bits32,
            c"lists".as_ptr(),
            c"Number of inverted lists (k-means clusters) of a bizos_ivf index; 0: derived from the rows".as_ptr(),
            0,
            0,
            MAX_LISTS,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        GucRegistry::define_int_guc(
            c"bizos.ivf_probes",
            c"Lists a bizos_ivf scan reads per batch; 0: 2.5 times the square root of the index's lists.",
            c"The first batch decides recall; a filtered query reads further batches until it has its rows.",
            &PROBES,
            0,
            MAX_LISTS,
            GucContext::Userset,
            GucFlags::default(),
        );
        GucRegistry::define_float_guc(
            c"bizos.ivf_rerank_confidence",
            c"How sure a bizos_ivf scan is, in standard deviations of a code's error, that no row it has not re-ranked comes before the next row it returns.",
            c"Larger: fewer rows out of order within a batch, more rows re-ranked (docs/benchmarks/vector.md).",
            &RERANK_CONFIDENCE,
            1.0,
            20.0,
            GucContext::Userset,
            GucFlags::default(),
        );
        GucRegistry::define_bool_guc(
            c"bizos.ivf_strict_order",
            c"A bizos_ivf scan returns rows in exact distance order.",
            c"Rows of later batches nearer than a row already returned are skipped, as pgvector's strict_order; off: they come back after it.",
            &STRICT_ORDER,
            GucContext::Userset,
            GucFlags::default(),
        );
    }
}

/// Lists read per batch by a scan of an index of `lists` lists: the
/// session's `bizos.ivf_probes`, or when 0 two and a half times the square
/// root of `lists` (rounded up, at most `lists`): 25 of 100 lists, 50 of
/// 400, 80 of 1000. The square root alone (bizos before issue 49) gave
/// recall@10 0.947 on the WordNet glosses it was tuned on but 0.885 on
/// held-out package summaries at 600 lists; the default is meant to reach
/// 0.95 on data nobody tuned it on (docs/benchmarks/vector.md), and a
/// session that wants speed more than recall sets fewer.
pub fn probes(lists: usize) -> usize {
    match PROBES.get() {
        0 => ((2.5 * (lists.max(1) as f64).sqrt()).ceil() as usize).min(lists.max(1)),
        n => n as usize,
    }
}

/// The session's `bizos.ivf_rerank_confidence`: the multiple of a code's
/// error unit (`rabitq::Factors::error`) below its estimate that a scan
/// takes as the lower bound of its distance. A row is returned only once
/// its exact distance is at most every remaining code's lower bound, so a
/// row comes back out of order only when a nearer row's code erred by more
/// than this many units (close to a standard normal: beyond 3 units about
/// 1 code in 1,000, beyond 5 about 3 in 10 million).
pub fn rerank_confidence() -> f32 {
    RERANK_CONFIDENCE.get() as f32
}

/// The session's `bizos.ivf_strict_order`.
pub fn strict_order() -> bool {
    STRICT_ORDER.get()
}

/// The lists of an index over `rows` rows when `lists` is not given:
/// rows / 250 up to 250,000 rows, 2·√rows above (1,000 lists at 250,000
/// rows, 2,000 at a million), at least 1. A list holds about 250 rows, a
/// quarter of pgvector's rule for IVFFlat (rows / 1000): a scan reads one
/// code per row (48 bytes for 384 dimensions) rather than the vector, so
/// shorter lists, probed in larger numbers, reach a given recall reading
/// fewer rows (docs/benchmarks/vector.md); k-means at build grows with the
/// square of the lists, hence the square root above.
pub fn default_lists(rows: f64) -> usize {
    let rows = rows.max(0.0);
    let lists = if rows <= 250_000.0 {
        rows / 250.0
    } else {
        2.0 * rows.sqrt()
    };
    (lists as usize).clamp(1, MAX_LISTS as usize)
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let table = [pg_sys::relopt_parse_elt {
        optname: c"lists".as_ptr(),
        opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
        offset: std::mem::offset_of!(IvfOptions, lists) as i32,
    }];
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            KIND,
            std::mem::size_of::<IvfOptions>(),
            table.as_ptr(),
            table.len() as i32,
        )
        .cast()
    }
}

/// The index's `lists` storage parameter; None when absent or 0 (derive
/// it from the rows).
///
/// # Safety
/// `rel` is an open index of this access method.
pub unsafe fn lists_option(rel: pg_sys::Relation) -> Option<usize> {
    unsafe {
        let opts = (*rel).rd_options.cast::<IvfOptions>();
        if opts.is_null() || (*opts).lists <= 0 {
            None
        } else {
            Some((*opts).lists as usize)
        }
    }
}
