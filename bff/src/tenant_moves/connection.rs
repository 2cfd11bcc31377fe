//! The mover's connections to a source or target database.

use sqlx::{ConnectOptions, PgConnection};

/// A connection of the mover: its own name in pg_stat_activity, times in
/// UTC (row texts compare equal on both sides), and no JIT: its statements
/// are copies and index look-ups whose estimates can pass
/// `jit_above_cost` (the audit tail of a catch-up round, guessed at 100
/// chains of 22,000 entries, compiled for 295 ms and ran for 3 ms).
pub async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let mut conn = options
        .application_name("bizos-mover")
        .options([("jit", "off")])
        .log_statements(tracing::log::LevelFilter::Trace)
        .connect()
        .await?;
    sqlx::query("set timezone = 'UTC'")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}
