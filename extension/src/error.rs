//! Raising PostgreSQL errors with a SQLSTATE, a message a user can act on
//! and, where it helps, a hint. Nothing here panics on user data: every
//! failure goes through [`raise`].

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raises an ERROR; never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "bizos");
    if let Some(h) = hint {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Raises an SPI failure as an internal error naming what was attempted.
pub fn spi_failed(what: &str, err: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("bizos: {what} failed: {err}"),
        None,
    )
}

/// Unwraps an SPI result or raises.
pub trait OrRaise<T> {
    fn or_raise(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> OrRaise<T> for Result<T, E> {
    fn or_raise(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => spi_failed(what, e),
        }
    }
}

/// The first column of the first row of a query that may return no row.
pub fn query_opt<T: pgrx::FromDatum + pgrx::IntoDatum>(
    sql: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
    what: &str,
) -> Option<T> {
    pgrx::Spi::connect_mut(|c| {
        let table = c.update(sql, Some(1), args).or_raise(what);
        if table.is_empty() {
            None
        } else {
            table.first().get_one::<T>().or_raise(what)
        }
    })
}
