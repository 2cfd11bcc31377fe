//! The per-request transaction: PostgREST's convention, with the database as
//! the authority on who the caller is. Every request runs in one transaction
//! as `bizos_authenticated` with the verified claims in `request.jwt.claims`
//! and its id in `request.id` (its W3C trace context, when traced, in
//! `request.traceparent`, so a job enqueued in it can link to the request); `authenticate_request()` (migration V13) then
//! refuses users without an active profile and suspended tenants, makes the
//! transaction read-only for a read-only tenant, and takes the app role from
//! the profile. All settings are transaction-local, so a pooled connection
//! carries nothing over to the next request.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::auth::Caller;
use crate::error::Result;

/// The database role every user request runs as.
pub const REQUEST_ROLE: &str = "bizos_authenticated";

/// Sets the request's role, claims, id and traceparent, then authenticates the caller
/// against its profile and checks the placement the request was routed
/// with (`placement_version` of the claims, see [`crate::placement`]), in
/// one round trip. The settings run in a subquery
/// (volatile, so never flattened) before the function is called.
macro_rules! begin_request {
    () => {
        "select authenticate_request(), control.placement_check(),
       pg_catalog.current_setting('request.soft_locked', true)
  from (select set_config('role', $1, true),
               set_config('request.jwt.claims', $2, true),
               set_config('request.id', $3, true),
               set_config('request.traceparent', $4, true)) as request"
    };
}
pub(crate) use begin_request;
const BEGIN_REQUEST: &str = begin_request!();

/// The statement `select <call>` run under a caller's claims on its own, as
/// one implicit transaction in one round trip (a hot path's alternative to
/// [`begin_as`] + statement + commit): [`begin_request!`] runs first in a
/// subquery (`offset 0`: never flattened into the outer select list). Bind
/// the request's settings with [`bind_request`], then the call's own
/// parameters, `$5` on. The call is checked for EXECUTE before the switch
/// to the request role: grant it to the login (bizos_app) as well.
macro_rules! as_caller {
    ($call:literal) => {
        concat!(
            "select ",
            $call,
            " from (",
            $crate::db::begin_request!(),
            " offset 0) as authenticated"
        )
    };
}
pub(crate) use as_caller;

/// Binds `$1`-`$4` of an [`as_caller!`] statement: the request role and
/// the caller's claims, id and traceparent.
pub fn bind_request<'q, O>(
    query: QueryScalar<'q, Postgres, O, PgArguments>,
    caller: &Caller,
) -> QueryScalar<'q, Postgres, O, PgArguments> {
    let traceparent = crate::telemetry::traceparent(&tracing::Span::current());
    query
        .bind(REQUEST_ROLE)
        .bind(claims(caller, None))
        .bind(caller.request_id.clone().unwrap_or_default())
        .bind(traceparent.unwrap_or_default())
}

/// Begins a transaction under the caller's claims. Commit it to keep the
/// effects; dropping it rolls back. A caller the database refuses gets the
/// error (403 no_profile, user_inactive or tenant_suspended).
///
/// `request.traceparent` is the context of the current span (the request's)
/// when traces are exported, else empty (the convention of `request.id`:
/// read it with `nullif(current_setting('request.traceparent', true), '')`).
pub async fn begin_as(pool: &PgPool, caller: &Caller) -> Result<Transaction<'static, Postgres>> {
    let Some(router) = &caller.placement else {
        return Ok(begin_on(pool, caller, None, None, false).await?);
    };
    // A placement that moved since it was cached is refused by the
    // database it was routed to (ZA020): forget it and route again.
    for _ in 0..3 {
        let route = router.resolve(caller.tenant_id).await?;
        match begin_on(
            &route.pool,
            caller,
            route.schema.as_deref(),
            Some(route.version),
            route.billing_locked,
        )
        .await
        {
            Err(e) if is_moved(&e) => router.forget(caller.tenant_id),
            other => return Ok(other?),
        }
    }
    Err(crate::error::ApiError::Unavailable(
        "this organisation's data is moving right now; retry shortly".into(),
    ))
}

/// The claims the database gets: the caller's, with the version of the
/// placement the request was routed with.
fn claims(caller: &Caller, placement_version: Option<i64>) -> String {
    match (placement_version, &caller.claims) {
        (Some(v), serde_json::Value::Object(m)) => {
            let mut m = m.clone();
            m.insert("placement_version".into(), v.into());
            serde_json::Value::Object(m).to_string()
        }
        _ => caller.claims.to_string(),
    }
}

fn is_moved(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "ZA020")
}

/// [`begin_as`] on `pool`: in the tenant's schema when it has one, under
/// the check of `placement_version`; `billing_locked`: the router found the
/// tenant's subscription soft-locked in the control database.
async fn begin_on(
    pool: &PgPool,
    caller: &Caller,
    schema: Option<&str>,
    placement_version: Option<i64>,
    billing_locked: bool,
) -> std::result::Result<Transaction<'static, Postgres>, sqlx::Error> {
    let traceparent = crate::telemetry::traceparent(&tracing::Span::current());
    crate::telemetry::db_call("authenticate_request", async {
        let mut tx = match schema {
            // The search path with the BEGIN, in one round trip (a simple
            // query of two statements): the statement below is parsed
            // under it, so its functions are the schema's. The name was
            // checked by the catalogue's constraint.
            Some(s) => {
                pool.begin_with(format!(
                    "begin; set local search_path to {s}, {}",
                    bizos_sql::EXTENSIONS_SCHEMA
                ))
                .await?
            }
            None => pool.begin().await?,
        };
        // A request that pays the operator stays writable under the soft
        // lock (crate::payments::lock); authenticate_request reads this.
        if crate::payments::lock::paying() {
            sqlx::query("select pg_catalog.set_config('request.billing_payment', 'on', true)")
                .execute(&mut *tx)
                .await?;
        }
        // The soft lock of a tenant placed elsewhere (its subscription is
        // the control database's); authenticate_request reads this.
        if billing_locked {
            sqlx::query("select pg_catalog.set_config('request.billing_locked', 'on', true)")
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(BEGIN_REQUEST)
            .bind(REQUEST_ROLE)
            .bind(claims(caller, placement_version))
            .bind(caller.request_id.as_deref().unwrap_or_default())
            .bind(traceparent.unwrap_or_default())
            .fetch_one(&mut *tx)
            .await?;
        let soft_locked: Option<String> = sqlx::Row::try_get(&row, 2)?;
        if soft_locked.as_deref() == Some("on") {
            crate::payments::lock::note_soft_locked();
        }
        Ok(tx)
    })
    .await
}

/// A read under the caller's claims: [`begin_as`], the queries of `read`
/// on its connection, commit. What `read` returns is the answer; an error
/// rolls back.
pub async fn read_as<T>(
    pool: &PgPool,
    caller: &Caller,
    read: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
) -> Result<T> {
    let mut tx = begin_as(pool, caller).await?;
    let value = read(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

/// The common read of a route: one statement's one value (most often a SQL
/// function's jsonb), under the caller's claims ([`read_as`]).
pub async fn read_one<'q, O>(
    pool: &PgPool,
    caller: &Caller,
    query: QueryScalar<'q, Postgres, O, PgArguments>,
) -> Result<O>
where
    O: Send + Unpin + 'q,
    (O,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    read_as(pool, caller, async |conn| Ok(query.fetch_one(conn).await?)).await
}

/// [`read_one`] of a statement that may find nothing (a row by its id).
pub async fn read_optional<'q, O>(
    pool: &PgPool,
    caller: &Caller,
    query: QueryScalar<'q, Postgres, O, PgArguments>,
) -> Result<Option<O>>
where
    O: Send + Unpin + 'q,
    (O,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    read_as(pool, caller, async |conn| {
        Ok(query.fetch_optional(conn).await?)
    })
    .await
}

/// Begins a transaction block as the pool's own login, the one every
/// transaction of [`begin_as`] starts with. On Citus a `SET LOCAL` reaches
/// the workers only inside a transaction block (BEGIN … COMMIT): a function
/// that sets settings for what it calls (the claims `authenticate_request`
/// sets, the tenant `digest_aggregates` sets for the report functions) is
/// called in one, never as a statement of its own (docs/citus.md).
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool.begin().await?)
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
