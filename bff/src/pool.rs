//! The settings of every connection pool of the BFF and the worker (the
//! control database's and each placement's).

use sqlx::postgres::PgPoolOptions;
use sqlx::Connection;

/// A connection idle at least this long is pinged before it is handed out.
const PING_WHEN_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The pool settings of the BFF and the worker. sqlx pings every
/// connection before handing it out by default: a round trip more on
/// every request. Here only a connection that sat idle for a second or more
/// is pinged (one that failed is closed and another taken); a busy one
/// answered a moment ago.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}
