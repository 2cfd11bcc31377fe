//! Plumbing for the version-1 C functions of the vector surface.
//!
//! The type's I/O, casts and operators are declared by hand in
//! `extension/sql/vector.sql` (one reviewed file, like the SQL surface of
//! VectorChord), so they are plain `extern "C-unwind"` functions over
//! `FunctionCallInfo` instead of `#[pg_extern]` wrappers: pgrx's generated
//! SQL cannot express a base type with typmod, send/recv and storage.

use pgrx::pg_sys;

/// Emits the `pg_finfo_<name>` record PostgreSQL looks up for a version-1
/// C function (what `PG_FUNCTION_INFO_V1` does in C).
macro_rules! finfo_v1 {
    ($($finfo:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn $finfo() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1
            }
        )*
    };
}
pub(crate) use finfo_v1;

/// The raw datum of argument `n` (strict functions: never NULL).
///
/// # Safety
/// `fcinfo` is the call's valid function-call info with at least `n + 1`
/// arguments.
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n) }
}

/// Argument `n` as an `int4`.
///
/// # Safety
/// As [`arg`]; the argument is an `int4`.
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i32 {
    unsafe { arg(fcinfo, n).value() as i32 }
}
