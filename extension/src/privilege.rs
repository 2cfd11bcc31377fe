//! Running a piece of extension code with the extension owner's rights, the
//! way SECURITY DEFINER does: bookkeeping tables (id counters, audit chain)
//! are written by the extension, never directly by the calling user.
//!
//! On an error the transaction (or subtransaction) abort restores the
//! previous user, so only the success path restores it here.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;

use crate::error::OrRaise;

thread_local! {
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

fn extension_owner() -> pg_sys::Oid {
    if let Some(oid) = OWNER.with(Cell::get) {
        return oid;
    }
    let oid = Spi::get_one::<pg_sys::Oid>(
        "select extowner from pg_catalog.pg_extension where extname = 'bizos'",
    )
    .or_raise("looking up the extension owner")
    .unwrap_or_else(|| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "extension bizos is not installed in this database",
            None,
        )
    });
    OWNER.with(|c| c.set(Some(oid)));
    oid
}

/// Runs `f` as the extension owner with `search_path`-independent code
/// (every query it runs must qualify its names).
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), f)
}

/// Runs `f` as `role` (e.g. the owner of the table a trigger fires on).
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let owner = role;
    let mut prev_user = pg_sys::Oid::INVALID;
    let mut prev_ctx: std::ffi::c_int = 0;
    // SAFETY: plain reads/writes of backend-local state, as
    // fmgr_security_definer does around a SECURITY DEFINER call.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut prev_user, &mut prev_ctx);
        pg_sys::SetUserIdAndSecContext(
            owner,
            prev_ctx | pg_sys::SECURITY_LOCAL_USERID_CHANGE as std::ffi::c_int,
        );
    }
    let result = f();
    // SAFETY: as above.
    unsafe { pg_sys::SetUserIdAndSecContext(prev_user, prev_ctx) };
    result
}
