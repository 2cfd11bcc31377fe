//! The per-request transaction: PostgREST's convention, with the database as
//! the authority on who the caller is. Every request runs in one transaction
//! as `bizos_authenticated` with the verified claims in `request.jwt.claims`
//! and its id in `request.id`; `authenticate_request()` (migration V13) then
//! refuses users without an active profile and suspended tenants, makes the
//! transaction read-only for a read-only tenant, and takes the app role from
//! the profile. All settings are transaction-local, so a pooled connection
//! carries nothing over to the next request.

use sqlx::{PgPool, Postgres, Transaction};

use crate::auth::Caller;
use crate::error::Result;

/// The database role every user request runs as.
pub const REQUEST_ROLE: &str = "bizos_authenticated";

/// Sets the request's role, claims and id, then authenticates the caller
/// against its profile, in one round trip. The settings run in a subquery
/// (volatile, so never flattened) before the function is called.
const BEGIN_REQUEST: &str = "select authenticate_request()
  from (select set_config('role', $1, true),
               set_config('request.jwt.claims', $2, true),
               set_config('request.id', $3, true)) as request";

/// Begins a transaction under the caller's claims. Commit it to keep the
/// effects; dropping it rolls back. A caller the database refuses gets the
/// error (403 no_profile, user_inactive or tenant_suspended).
pub async fn begin_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query(BEGIN_REQUEST)
        .bind(REQUEST_ROLE)
        .bind(caller.claims.to_string())
        .bind(caller.request_id.as_deref().unwrap_or_default())
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
