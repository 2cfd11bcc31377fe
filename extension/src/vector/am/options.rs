//! Settings of the IVF index: the `lists` storage parameter
//! (`create index ... with (lists = 1000)`) and the `bizos.ivf_probes`
//! setting (lists read per batch of a scan), registered once per backend
//! the first time the access method is used.

use std::sync::Once;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

/// Lists of an index built without `with (lists = ...)`.
pub const DEFAULT_LISTS: i32 = 100;
const MAX_LISTS: i32 = 32_768;

static PROBES: GucSetting<i32> = GucSetting::<i32>::new(10);
static INIT: Once = Once::new();
static mut KIND: pg_sys::relopt_kind::Type = 0;

#[repr(C)]
struct IvfOptions {
    vl_len_: i32,
    lists: i32,
}

/// Registers the storage parameter and the setting (idempotent).
pub fn init() {
    INIT.call_once(|| unsafe {
        KIND = pg_sys::add_reloption_kind();
        pg_sys::add_int_reloption(
            KIND as pg_sys::bits32,
            c"lists".as_ptr(),
            c"Number of inverted lists (k-means clusters) of a bizos_ivf index".as_ptr(),
            DEFAULT_LISTS,
            1,
            MAX_LISTS,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        GucRegistry::define_int_guc(
            c"bizos.ivf_probes",
            c"Lists a bizos_ivf scan reads per batch.",
            c"The first batch decides recall; a filtered query reads further batches until it has its rows.",
            &PROBES,
            1,
            MAX_LISTS,
            GucContext::Userset,
            GucFlags::default(),
        );
    });
}

/// The session's `bizos.ivf_probes`.
pub fn probes() -> usize {
    init();
    PROBES.get().max(1) as usize
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    init();
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

/// The index's `lists` storage parameter.
///
/// # Safety
/// `rel` is an open index of this access method.
pub unsafe fn lists_option(rel: pg_sys::Relation) -> i32 {
    unsafe {
        let opts = (*rel).rd_options.cast::<IvfOptions>();
        if opts.is_null() {
            DEFAULT_LISTS
        } else {
            (*opts).lists
        }
    }
}
