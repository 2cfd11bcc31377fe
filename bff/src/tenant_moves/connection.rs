//! The mover's connections to a source or target database.

use sqlx::{ConnectOptions, PgConnection};

/// A connection of the mover: its own name in pg_stat_activity, times in
/// UTC (row texts compare equal on both sides).
pub async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    let options: sqlx::postgres::PgConnectOptions = url.parse()?;
    let mut conn = options
        .application_name("bizos-mover")
        .log_statements(tracing::log::LevelFilter::Trace)
        .connect()
        .await?;
    sqlx::query("set timezone = 'UTC'")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}
