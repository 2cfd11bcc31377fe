//! The soft lock of a tenant that did not pay, as HTTP sees it.
//!
//! The database decides: `authenticate_request()` (platform.sql) makes
//! every transaction of a tenant whose subscription is `soft_locked`
//! read-only, as it does for a `read_only` tenant, and says so in
//! `request.soft_locked`, which [`crate::db`] reads with the start of the
//! request. A write then fails with PostgreSQL's 25006; this module
//! remembers, for the request's task, that the tenant is soft-locked, so
//! the error becomes 402 `subscription_soft_locked` (something the client
//! can show: pay to unlock) instead of 403 `tenant_read_only`. Reads and
//! exports run as before; nothing is deleted.
//!
//! The one write a soft-locked tenant may make is paying: a route that
//! takes a payment (a transfer proof) calls [`allow_payment`] first, and
//! its transactions tell the database so (`request.billing_payment`),
//! which then leaves them writable.

use std::cell::Cell;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// What the request learnt about its tenant's lock.
pub struct RequestLock {
    soft_locked: Cell<bool>,
    paying: Cell<bool>,
}

tokio::task_local! {
    static LOCK: RequestLock;
}

/// Middleware: a fresh [`RequestLock`] around each request.
pub async fn scope(req: Request, next: Next) -> Response {
    LOCK.scope(
        RequestLock {
            soft_locked: Cell::new(false),
            paying: Cell::new(false),
        },
        next.run(req),
    )
    .await
}

/// The database said the request's tenant is soft-locked.
pub fn note_soft_locked() {
    let _ = LOCK.try_with(|l| l.soft_locked.set(true));
}

/// Whether the request's tenant is soft-locked (false outside a request).
pub fn soft_locked() -> bool {
    LOCK.try_with(|l| l.soft_locked.get()).unwrap_or(false)
}

/// The request pays the operator: its transactions stay writable under
/// the soft lock.
pub fn allow_payment() {
    let _ = LOCK.try_with(|l| l.paying.set(true));
}

/// Whether the request was marked with [`allow_payment`].
pub fn paying() -> bool {
    LOCK.try_with(|l| l.paying.get()).unwrap_or(false)
}
