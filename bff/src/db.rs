//! The per-request transaction: PostgREST's convention exactly. Every request
//! runs in one transaction as `bizos_authenticated` with the verified claims in
//! `request.jwt.claims`; both settings are transaction-local, so a pooled
//! connection carries nothing over to the next request.

use sqlx::{PgPool, Postgres, Transaction};

use crate::auth::Caller;
use crate::error::Result;

/// The database role every user request runs as.
pub const REQUEST_ROLE: &str = "bizos_authenticated";

/// Begins a transaction under the caller's claims. Commit it to keep the
/// effects; dropping it rolls back.
pub async fn begin_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    // set_config(.., true) is SET LOCAL; one round trip for both settings.
    sqlx::query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)")
        .bind(REQUEST_ROLE)
        .bind(caller.claims.to_string())
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Refuses a login role that could see past row-level security.
pub async fn ensure_unprivileged(pool: &PgPool) -> anyhow::Result<()> {
    let (user, superuser, bypassrls): (String, bool, bool) = sqlx::query_as(
        "select rolname::text, rolsuper, rolbypassrls from pg_catalog.pg_roles where rolname = current_user",
    )
    .fetch_one(pool)
    .await?;
    if superuser || bypassrls {
        anyhow::bail!(
            "BIZOS_APP_URL logs in as {user:?}, which is a superuser or has BYPASSRLS; \
             the BFF must use an unprivileged login such as bizos_app"
        );
    }
    Ok(())
}
