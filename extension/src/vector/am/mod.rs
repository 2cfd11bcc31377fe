//! `bizos_ivf`: an IVF-flat index access method for `bizos.vector`.
//!
//! Why IVF and not HNSW: see README "Vector search". In short, an inverted
//! file keeps every vector in exactly one list of plain PostgreSQL pages, so
//! WAL (generic records), vacuum (delete items) and inserts (append to a
//! list) stay simple and crash-safe, and a filtered scan can always go on to
//! the next-nearest lists until it has its k rows.

pub mod buffers;
pub mod build;
pub mod cost;
pub mod index;
pub mod insert;
pub mod options;
pub mod page;
pub mod scan;
pub mod state;
pub mod vacuum;

use pgrx::pg_sys;

use super::fmgr::finfo_v1;

finfo_v1!(pg_finfo_bizos_ivf_handler);

/// `bizos._ivf_handler(internal) → index_am_handler`.
#[pgrx::pg_guard]
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn bizos_ivf_handler(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe {
        let r = pg_sys::palloc0(std::mem::size_of::<pg_sys::IndexAmRoutine>())
            .cast::<pg_sys::IndexAmRoutine>();
        (*r).type_ = pg_sys::NodeTag::T_IndexAmRoutine;
        (*r).amstrategies = 0;
        (*r).amsupport = 1;
        (*r).amoptsprocnum = 0;
        (*r).amcanorder = false;
        (*r).amcanorderbyop = true;
        (*r).amcanbackward = false;
        (*r).amcanunique = false;
        (*r).amcanmulticol = false;
        (*r).amoptionalkey = true;
        (*r).amsearcharray = false;
        (*r).amsearchnulls = false;
        (*r).amstorage = false;
        (*r).amclusterable = false;
        (*r).ampredlocks = false;
        (*r).amcanparallel = false;
        (*r).amcaninclude = false;
        (*r).amusemaintenanceworkmem = false;
        (*r).amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
        (*r).amkeytype = pg_sys::InvalidOid;
        (*r).ambuild = Some(build::ambuild);
        (*r).ambuildempty = Some(build::ambuildempty);
        (*r).aminsert = Some(insert::aminsert);
        (*r).ambulkdelete = Some(vacuum::ambulkdelete);
        (*r).amvacuumcleanup = Some(vacuum::amvacuumcleanup);
        (*r).amcostestimate = Some(cost::amcostestimate);
        (*r).amoptions = Some(options::amoptions);
        (*r).ambeginscan = Some(scan::ambeginscan);
        (*r).amrescan = Some(scan::amrescan);
        (*r).amgettuple = Some(scan::amgettuple);
        (*r).amendscan = Some(scan::amendscan);
        pg_sys::Datum::from(r)
    }
}
