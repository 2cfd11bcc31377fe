//! Running a piece of extension code with the extension owner's rights, the
//! way SECURITY DEFINER does: bookkeeping tables (id counters, audit chain)
//! are written by the extension, never directly by the calling user.
//!
//! Code running as the extension owner also runs with a pinned
//! `search_path` (`pg_catalog, pg_temp`), as a SECURITY DEFINER function
//! with `SET search_path` does: its queries qualify their relations, and
//! operators and functions they leave unqualified (`=`, `||`, `extract`)
//! resolve in `pg_catalog`, never in a schema the caller put first.
//!
//! On an error the transaction (or subtransaction) abort restores the
//! previous user and setting, so only the success path restores them here.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;

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

/// The `search_path` of code that runs as the extension owner.
const PINNED_SEARCH_PATH: &CStr = c"pg_catalog, pg_temp";

/// Runs `f` as the extension owner with the pinned `search_path` (every
/// query it runs must still qualify its relations).
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), || with_pinned_search_path(f))
}

/// Runs `f` on a Citus cluster with the rights it needs on the extension's
/// table `relation` (`mode`: `pg_sys::ACL_*` bits): as the current user when
/// that user holds them itself (the database owner, whose SECURITY DEFINER
/// functions write the tenants' rows; granted by sql/citus/extension.sql),
/// otherwise as the extension owner. Citus refuses a second user on the
/// shards a transaction has written ("modified in this transaction by a
/// different user"): a function that writes a tenant's rows and then takes
/// a number as the extension owner fails whenever the counter's shard sits
/// with those rows. Always with the pinned `search_path`.
pub fn as_citus_user_of<R>(relation: &CStr, mode: pg_sys::AclMode, f: impl FnOnce() -> R) -> R {
    let relid = crate::rows::extension_relation(relation);
    // SAFETY: a privilege check of the current user on an existing relation.
    let own = unsafe {
        pg_sys::pg_class_aclcheck(relid, pg_sys::GetUserId(), mode)
            == pg_sys::AclResult::ACLCHECK_OK
    };
    if own {
        with_pinned_search_path(f)
    } else {
        as_extension_owner(f)
    }
}

/// Runs `f` as the extension owner without touching `search_path`: for
/// code that runs no query and only needs the owner's rights (a `nextval`
/// on the extension's own sequence). Setting the search path costs a GUC
/// level and a new namespace lookup path on every call.
pub fn as_extension_owner_role<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), f)
}

/// Runs `f` with `search_path = pg_catalog, pg_temp`, restoring the
/// caller's setting afterwards (fmgr_security_definer's proconfig handling).
pub fn with_pinned_search_path<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: namespace_search_path is the backend's current setting, NULL
    // or a NUL-terminated string owned by the GUC machinery.
    let pinned = unsafe {
        let current = pg_sys::namespace_search_path;
        !current.is_null() && CStr::from_ptr(current) == PINNED_SEARCH_PATH
    };
    if pinned {
        return f();
    }
    // SAFETY: a GUC nest level opened and closed around `f`, as
    // fmgr_security_definer does; an error in between is cleaned up by the
    // (sub)transaction abort, which pops every level above its own.
    let level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            PINNED_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            pg_sys::PGERROR as std::ffi::c_int,
            false,
        );
        level
    };
    let result = f();
    // SAFETY: closes the level opened above.
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    result
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
