//! Every write of the API, with Stripe's idempotency semantics when the
//! client sends an `Idempotency-Key` header:
//!
//! - the key, a hash of the request and the response are stored in the same
//!   transaction as the effect (table `idempotency_keys`, per user);
//! - a replay returns the stored response (header `Idempotent-Replayed: true`);
//! - the same key with a different request → 422 naming `Idempotency-Key`;
//! - a concurrent request with the same key → 409 (the first holds a
//!   transaction-level advisory lock on the key until it commits);
//! - client errors (4xx) are stored too, so a retry sees the same answer;
//!   transient errors (5xx) are not: a retry runs again.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The optional `Idempotency-Key` header (1–255 visible ASCII characters)
/// with the request it came with: its method and path identify the request
/// in every [`Fingerprint`], so no route spells its own path.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: Option<String>,
    method: String,
    path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let key = match parts.headers.get(HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .filter(|k| {
                        !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .ok_or_else(|| ApiError::BadRequest {
                        message: "must be 1 to 255 visible ASCII characters (a UUID is a good key)"
                            .into(),
                        field: Some("Idempotency-Key".into()),
                    })?
                    .to_owned(),
            ),
        };
        Ok(IdempotencyKey {
            key,
            method: parts.method.as_str().to_owned(),
            path: request_path(parts.uri.path()),
        })
    }
}

/// The path of a request as the route reads it (`/api/v1/...` is already
/// `/api/...` here): each segment percent-decoded, as axum's `Path` decodes
/// it, and a segment that is a UUID in its hyphenated lower-case form, as
/// a `Uuid` prints. So `/api/leads/{id}` fingerprints the same whichever
/// spelling of the id the client sent.
fn request_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
            match uuid::Uuid::try_parse(&decoded) {
                Ok(id) => id.to_string(),
                Err(_) => decoded.into_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

impl IdempotencyKey {
    /// The request's method, e.g. `POST`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// This request with a JSON body (or `Value::Null` for none).
    pub fn json(self, body: &Value) -> Fingerprint {
        self.parts(&[body.to_string().as_bytes()])
    }

    /// This request with content in parts (an upload's fields and file).
    pub fn parts(self, parts: &[&[u8]]) -> Fingerprint {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p);
        }
        Fingerprint {
            key: self.key,
            method: self.method,
            path: self.path,
            hash: hex::encode(h.finalize()),
        }
    }

    /// The request as identified by what its path does not carry: a field
    /// that chooses the resource but is read before the fingerprinted part
    /// of the body (the KPI entry of an evidence upload) joins the path as
    /// `?name=value`.
    pub fn with_query(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.path = format!("{}?{name}={value}", self.path);
        self
    }
}

/// What identifies a request for replay, with its key (if the client sent
/// one): method, path and a hash of its content (canonical JSON for JSON
/// bodies, whose keys `serde_json` keeps sorted, so equal JSON hashes
/// equally whatever the client's key order or whitespace; fields and the
/// file's sha256 for uploads). Made by the request's [`IdempotencyKey`].
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub key: Option<String>,
    pub method: String,
    pub path: String,
    pub hash: String,
}

/// A write's successful result: its status and JSON body.
pub struct Done {
    pub status: StatusCode,
    pub body: Value,
}

impl Done {
    pub fn created(body: Value) -> Self {
        Done {
            status: StatusCode::CREATED,
            body,
        }
    }
    pub fn ok(body: Value) -> Self {
        Done {
            status: StatusCode::OK,
            body,
        }
    }
    pub fn accepted(body: Value) -> Self {
        Done {
            status: StatusCode::ACCEPTED,
            body,
        }
    }
}

fn respond(status: StatusCode, body: Value, replayed: bool) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// BIZOS_IDEMPOTENCY_TTL_HOURS: how long keys are kept.
pub fn ttl_hours(v: &str) -> Result<Duration, String> {
    let hours: u64 = crate::vars::number(v)?;
    if hours < 24 {
        return Err("keys are kept at least 24 hours".into());
    }
    Ok(Duration::from_secs(hours * 3600))
}

/// Runs `effect` in one transaction under the caller's claims and commits
/// it; with a key, under the rules in the module documentation. A
/// transaction the database rolls back to break a deadlock runs again, a
/// few times ([`crate::retry`]), each time with a fresh copy of `effect`
/// (hence `Clone`: an effect that captures only what it reads can run
/// again; one that cannot goes through [`run_once`]).
pub async fn run<F>(
    state: &AppState,
    caller: &Caller,
    fingerprint: Fingerprint,
    effect: F,
) -> Result<Response>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<Done> + Clone,
{
    let mut tries = crate::retry::Tries::new("write");
    loop {
        match one_try(state, caller, &fingerprint, effect.clone()).await {
            Err(e) if tries.again(&e).await => {}
            done => return done,
        }
    }
}

/// [`run`] without its retries, for an effect that cannot run twice: it
/// consumes what it reads (an upload's rows) or hands out what it found
/// through a capture. A deadlock answers 503 at once.
pub async fn run_once<F>(
    state: &AppState,
    caller: &Caller,
    fingerprint: Fingerprint,
    effect: F,
) -> Result<Response>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<Done>,
{
    one_try(state, caller, &fingerprint, effect).await
}

/// One transaction of [`run`].
async fn one_try<F>(
    state: &AppState,
    caller: &Caller,
    fingerprint: &Fingerprint,
    effect: F,
) -> Result<Response>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<Done>,
{
    let mut tx = begin_as(&state.pool, caller).await?;
    let Some(key) = fingerprint.key.clone() else {
        let done = effect(&mut tx).await?;
        tx.commit().await?;
        return Ok(respond(done.status, done.body, false));
    };

    let locked: bool = sqlx::query_scalar(
        "select pg_try_advisory_xact_lock(hashtextextended(
                  bizos.tenant_id()::text || ':' || bizos.uid()::text || ':' || $1, 7))",
    )
    .bind(&key)
    .fetch_one(&mut *tx)
    .await?;
    if !locked {
        return Err(ApiError::Conflict {
            message: "a request with this Idempotency-Key is still in progress; retry later".into(),
            field: Some("Idempotency-Key".into()),
        });
    }
    if let Some(stored) = stored(&mut tx, caller, &key).await? {
        tx.commit().await?;
        return replayed(stored, fingerprint);
    }

    sqlx::query("savepoint effect").execute(&mut *tx).await?;
    let (status, body, result) = match effect(&mut tx).await {
        Ok(done) => (done.status, done.body.clone(), Ok(done)),
        Err(e) if e.status().is_client_error() => {
            sqlx::query("rollback to savepoint effect")
                .execute(&mut *tx)
                .await?;
            (e.status(), e.body(), Err(e))
        }
        Err(e) => return Err(e),
    };
    store(&mut tx, state, &key, fingerprint, status, &body).await?;
    tx.commit().await?;
    result.map(|done| respond(done.status, done.body, false))
}

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "Makes the request safe to retry: a replay returns the stored response \
                 (Idempotent-Replayed: true); another request with the same key is 422; \
                 a concurrent one 409. Kept at least 24 hours.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255)),
            ))
            .build()]
    }
}

/// For a request whose effect cannot run inside one transaction (an LLM
/// call: no transaction stays open while a provider answers): the stored
/// response of its key, if any (none without a key). The same key with a
/// different request is 422, as in [`run`]. Pair with [`remember`] after
/// the effect.
pub async fn replay(
    state: &AppState,
    caller: &Caller,
    fingerprint: &Fingerprint,
) -> Result<Option<Response>> {
    Ok(replay_stored(state, caller, fingerprint)
        .await?
        .map(|(status, body)| replay_response(status, body)))
}

/// [`replay`] for a route that stores its response in another form than
/// it answers (a chat answer is stored masked): the stored status and
/// body, to be answered with [`replay_response`].
pub async fn replay_stored(
    state: &AppState,
    caller: &Caller,
    fingerprint: &Fingerprint,
) -> Result<Option<(StatusCode, Value)>> {
    let Some(key) = &fingerprint.key else {
        return Ok(None);
    };
    let mut tx = begin_as(&state.pool, caller).await?;
    let stored = stored(&mut tx, caller, key).await?;
    tx.commit().await?;
    stored
        .map(|stored| checked(stored, fingerprint))
        .transpose()
}

/// A replayed response (header `Idempotent-Replayed: true`).
pub fn replay_response(status: StatusCode, body: Value) -> Response {
    respond(status, body, true)
}

/// Stores the response of a request checked with [`replay`] (nothing
/// without a key). Two requests with the same key that ran at once both
/// ran (each an effect of its own); the first to finish is stored and
/// later replays return it.
pub async fn remember(
    state: &AppState,
    caller: &Caller,
    fingerprint: &Fingerprint,
    status: StatusCode,
    body: &Value,
) -> Result<()> {
    let Some(key) = &fingerprint.key else {
        return Ok(());
    };
    let mut tx = begin_as(&state.pool, caller).await?;
    sqlx::query(
        "select pg_advisory_xact_lock(hashtextextended(
                  bizos.tenant_id()::text || ':' || bizos.uid()::text || ':' || $1, 7))",
    )
    .bind(key)
    .execute(&mut *tx)
    .await?;
    if stored(&mut tx, caller, key).await?.is_none() {
        store(&mut tx, state, key, fingerprint, status, body).await?;
    }
    tx.commit().await?;
    Ok(())
}

type StoredResponse = (String, String, String, i32, Value);

/// The stored response, replayed; the same key with another request is 422.
fn replayed(stored: StoredResponse, fingerprint: &Fingerprint) -> Result<Response> {
    let (status, body) = checked(stored, fingerprint)?;
    Ok(respond(status, body, true))
}

/// The stored status and body, if the stored request is this one (the same
/// key with another request is 422).
fn checked(
    (method, path, hash, status, body): StoredResponse,
    fingerprint: &Fingerprint,
) -> Result<(StatusCode, Value)> {
    if method != fingerprint.method || path != fingerprint.path || hash != fingerprint.hash {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "this key was already used with a different request; use a new key",
        ));
    }
    let status = StatusCode::from_u16(status as u16).map_err(anyhow::Error::from)?;
    Ok((status, body))
}

/// Stores the response under `key` for the idempotency TTL (an expired key
/// of the same user is taken over).
async fn store(
    conn: &mut PgConnection,
    state: &AppState,
    key: &str,
    fingerprint: &Fingerprint,
    status: StatusCode,
    body: &Value,
) -> Result<()> {
    sqlx::query(
        "insert into idempotency_keys
                (tenant_id, user_id, idempotency_key, method, path, request_hash,
                 response_status, response_body, created_at, expires_at)
         values (bizos.tenant_id(), bizos.uid(), $1, $2, $3, $4, $5, $6, now(),
                 now() + make_interval(secs => $7))
         on conflict (tenant_id, user_id, idempotency_key) do update
            set method = excluded.method, path = excluded.path, request_hash = excluded.request_hash,
                response_status = excluded.response_status, response_body = excluded.response_body,
                created_at = excluded.created_at, expires_at = excluded.expires_at",
    )
    .bind(key)
    .bind(&fingerprint.method)
    .bind(&fingerprint.path)
    .bind(&fingerprint.hash)
    .bind(status.as_u16() as i32)
    .bind(body)
    .bind(state.idempotency_ttl.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// The caller's tenant is a parameter besides RLS: on Citus, a filter
/// through `bizos.tenant_id()` alone goes to every shard.
async fn stored(
    conn: &mut PgConnection,
    caller: &Caller,
    key: &str,
) -> Result<Option<StoredResponse>> {
    Ok(sqlx::query_as(
        "select method, path, request_hash, response_status, response_body
           from idempotency_keys
          where tenant_id = $2 and user_id = bizos.uid()
            and idempotency_key = $1 and expires_at > now()",
    )
    .bind(key)
    .bind(caller.tenant_id)
    .fetch_optional(conn)
    .await?)
}

/// The payload of `idempotency.purge`: none. Keys it does not know are
/// ignored: a schedule's job payload is its user's, free-form.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyPurgeArgs {}

impl crate::job::JobArgs for IdempotencyPurgeArgs {
    const KIND: &'static str = "idempotency.purge";
}

/// `idempotency.purge`: deletes the tenant's expired idempotency keys
/// (system job; a SECURITY DEFINER function granted to the worker),
/// enqueued for every tenant each BIZOS_WORKER_PURGE_EVERY_SECS.
pub struct IdempotencyPurge;

impl crate::job::Handler for IdempotencyPurge {
    type Args = IdempotencyPurgeArgs;

    async fn run(
        &self,
        job: &crate::job::Job,
        _: IdempotencyPurgeArgs,
    ) -> Result<(), crate::job::JobError> {
        let purged: i64 = crate::telemetry::db_call(
            "purge_idempotency_keys",
            sqlx::query_scalar("select purge_idempotency_keys($1)")
                .bind(job.tenant_id)
                .fetch_one(job.pool()),
        )
        .await?;
        job.progress(purged, purged).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths the routes spelled by hand (`format!("/api/leads/{id}")`)
    /// before the key took them from the request: a replay of a request
    /// stored then must still match.
    #[test]
    fn a_request_path_reads_as_its_route_printed_it() {
        let id = "0b7e3c52-9a4f-4d8e-8f6a-2d1c5e7b9a01";
        assert_eq!(
            request_path(&format!("/api/leads/{id}")),
            format!("/api/leads/{id}")
        );
        for spelling in [
            "0B7E3C52-9A4F-4D8E-8F6A-2D1C5E7B9A01",
            "0b7e3c529a4f4d8e8f6a2d1c5e7b9a01",
            "%7B0b7e3c52-9a4f-4d8e-8f6a-2d1c5e7b9a01%7D",
            "urn:uuid:0b7e3c52-9a4f-4d8e-8f6a-2d1c5e7b9a01",
        ] {
            assert_eq!(
                request_path(&format!("/api/leads/{spelling}/assign")),
                format!("/api/leads/{id}/assign"),
                "{spelling}"
            );
        }
        assert_eq!(
            request_path("/api/roles/sales%20lead/permissions/leads.read"),
            "/api/roles/sales lead/permissions/leads.read"
        );
        assert_eq!(request_path("/api/ai/limits"), "/api/ai/limits");
    }

    #[test]
    fn the_key_names_its_request_in_the_fingerprint() {
        let key = IdempotencyKey {
            key: Some("k".into()),
            method: "POST".into(),
            path: "/api/kpi/evidence".into(),
        };
        let fp = key
            .with_query("entry_id", "e")
            .json(&serde_json::json!({"b": 1, "a": 2}));
        assert_eq!(
            (fp.key.as_deref(), fp.method.as_str(), fp.path.as_str()),
            (Some("k"), "POST", "/api/kpi/evidence?entry_id=e")
        );
        // The hash the stored keys were written with: length-prefixed parts.
        let mut h = Sha256::new();
        let body = br#"{"a":2,"b":1}"#;
        h.update((body.len() as u64).to_be_bytes());
        h.update(body);
        assert_eq!(fp.hash, hex::encode(h.finalize()));
    }
}
