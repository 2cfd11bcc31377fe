//! The shape of every write of the API: one SQL RPC in one transaction
//! under the caller's claims, with idempotency (see [`crate::idempotency`]);
//! a write with a file stores it first and registers it in that transaction
//! (see [`crate::files`]).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::Postgres;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::files::{read_form, Bucket, Files, Form};
use crate::idempotency::{self, Done, Fingerprint, IdempotencyKey, REPLAYED};
use crate::state::AppState;

/// A typed request body as the JSON the RPC reads: the client's values as
/// sent, absent keys of PATCH bodies left out.
pub fn body<T: serde::Serialize>(request: &T) -> Result<Value> {
    serde_json::to_value(request).map_err(|e| ApiError::Internal(e.into()))
}

/// Arguments of an RPC: `($1)` = body, `($1)` = id from the path, or
/// `($1, $2)` = id, body.
pub enum Args {
    Body(Value),
    Id(Uuid),
    IdBody(Uuid, Value),
}

/// One RPC call of a route. Its request's method and path come with the
/// request's [`IdempotencyKey`]; the constructor names the method the route
/// is served with, checked against the request in debug builds.
pub struct Call {
    pub method: &'static str,
    /// e.g. `select lead_update($1, $2)`, returning jsonb.
    pub sql: &'static str,
    pub args: Args,
    /// 201 Created instead of 200 OK.
    pub created: bool,
}

impl Call {
    fn new(method: &'static str, sql: &'static str, args: Args) -> Self {
        Call {
            method,
            sql,
            args,
            created: false,
        }
    }
    pub fn post(sql: &'static str, args: Args) -> Self {
        Call::new("POST", sql, args)
    }
    pub fn put(sql: &'static str, args: Args) -> Self {
        Call::new("PUT", sql, args)
    }
    pub fn patch(sql: &'static str, args: Args) -> Self {
        Call::new("PATCH", sql, args)
    }
    pub fn delete(sql: &'static str, args: Args) -> Self {
        Call::new("DELETE", sql, args)
    }
    pub fn created(self) -> Self {
        Call {
            created: true,
            ..self
        }
    }
}

/// What a write handler takes before its path and body: the state, the
/// verified caller and the request's idempotency key (extracted in that
/// order, so a missing token is 401 before a bad key is 400).
pub struct Writer {
    pub state: AppState,
    pub caller: Caller,
    pub key: IdempotencyKey,
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let key = IdempotencyKey::from_request_parts(parts, state).await?;
        Ok(Writer {
            state: state.clone(),
            caller,
            key,
        })
    }
}

impl Writer {
    /// [`rpc`] as this request's caller.
    pub async fn rpc(self, call: Call) -> Result<Response> {
        rpc(&self.state, &self.caller, self.key, call).await
    }

    /// [`attach`] as this request's caller.
    pub async fn attach(self, multipart: Multipart, to: Attach) -> Result<Response> {
        attach(&self.state, &self.caller, self.key, multipart, to).await
    }
}

/// Runs the call and answers with its status and the function's result.
pub async fn rpc(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    call: Call,
) -> Result<Response> {
    let Call {
        method,
        sql,
        args,
        created,
    } = call;
    debug_assert_eq!(method, key.method(), "the Call of a {} route", key.method());
    let fingerprint = match &args {
        Args::Body(body) | Args::IdBody(_, body) => key.json(body),
        Args::Id(_) => key.json(&Value::Null),
    };
    idempotency::run(state, caller, fingerprint, async |conn| {
        let query = sqlx::query_scalar::<_, Value>(sql);
        let query = match &args {
            Args::Body(body) => query.bind(body),
            Args::Id(id) => query.bind(id),
            Args::IdBody(id, body) => query.bind(id).bind(body),
        };
        let operation = crate::telemetry::statement_function(sql);
        let result = crate::telemetry::db_call(operation, query.fetch_one(conn)).await?;
        Ok(if created {
            Done::created(result)
        } else {
            Done::ok(result)
        })
    })
    .await
}

/// What identifies an upload request for idempotency: its method and path
/// (from the key), its text fields and its file.
pub fn upload_fingerprint(key: IdempotencyKey, form: &Form) -> Fingerprint {
    let parts = form.fingerprint_parts();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    key.parts(&refs)
}

/// Whether an upload request registered its file: it succeeded and was not
/// a replay (which answers with the first request's file).
pub fn registered(result: &Result<Response>) -> bool {
    matches!(result, Ok(r) if r.status().is_success() && !r.headers().contains_key(REPLAYED))
}

/// What to attach an uploaded file to.
pub struct Attach {
    pub bucket: &'static str,
    /// `select <fn>($1 = the parent's id, $2 = the object id)`, returning jsonb.
    pub sql: &'static str,
    pub parent: Uuid,
}

/// Stores the file, then registers it and attaches it in one transaction
/// (ticket attachments, KPI evidence).
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    multipart: Multipart,
    to: Attach,
) -> Result<Response> {
    let (files, form) = stored_form(state, caller, multipart, to.bucket).await?;
    let query = sqlx::query_scalar(to.sql)
        .bind(to.parent)
        .bind(form.file.object_id);
    register_with(state, caller, key, &files, &form, query).await
}

/// Loads `bucket` and reads the form, its file stored in the bucket.
async fn stored_form(
    state: &AppState,
    caller: &Caller,
    multipart: Multipart,
    bucket: &str,
) -> Result<(Files, Form)> {
    let files = state.files();
    let bucket = Bucket::load(&files, caller, bucket).await?;
    let form = read_form(&files, caller, multipart, &bucket, false).await?;
    Ok((files, form))
}

/// Registers the form's stored file and runs `query` (returning jsonb) in
/// one idempotent transaction, answering 201 with its row and the file as
/// `object`; the file's bytes stay only when this request registered them.
/// Run once, never again after a deadlock: the query is bound to this call.
async fn register_with(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    files: &Files,
    form: &Form,
    query: QueryScalar<'_, Postgres, Value, PgArguments>,
) -> Result<Response> {
    let result =
        idempotency::run_once(state, caller, upload_fingerprint(key, form), async |conn| {
            let object = form.file.register(conn).await?;
            let mut row = query.fetch_one(&mut *conn).await?;
            row["object"] = object;
            Ok(Done::created(row))
        })
        .await;
    files.keep_or_discard(form, registered(&result));
    result
}

/// A form with a file that becomes one row: the form's text fields are a
/// typed body (`T`, parsed as a JSON body of strings, so errors name the
/// field), the stored file's object id joins them under `object_field`, and
/// `sql` (`select <fn>($1)`, returning jsonb) writes the row in the
/// transaction that registers the file (visits with their photo).
pub struct Submit {
    pub bucket: &'static str,
    pub sql: &'static str,
    pub object_field: &'static str,
    /// Keys the route sets itself (e.g. the activity type of a visit).
    pub fixed: Value,
}

/// Stores the file, checks the fields, then registers the file and runs
/// the call in one transaction (idempotent like every write).
pub async fn submit<T>(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    multipart: Multipart,
    to: Submit,
) -> Result<Response>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let (files, form) = stored_form(state, caller, multipart, to.bucket).await?;
    let fields: serde_json::Map<String, Value> = form
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let parsed = serde_json::to_vec(&fields)
        .map_err(|e| ApiError::Internal(e.into()))
        .and_then(|bytes| {
            state
                .vocabulary
                .scope(|| crate::extract::parse_body::<T>(&bytes))
        })
        .and_then(|fields| body(&fields));
    let mut payload = match parsed {
        Ok(p) => p,
        Err(e) => {
            files.keep_or_discard(&form, false);
            return Err(e);
        }
    };
    if let (Value::Object(p), Value::Object(fixed)) = (&mut payload, &to.fixed) {
        p.extend(fixed.clone());
        p.insert(
            to.object_field.into(),
            Value::String(form.file.object_id.to_string()),
        );
    }
    let query = sqlx::query_scalar(to.sql).bind(payload);
    register_with(state, caller, key, &files, &form, query).await
}

/// A write's answer with a secret added as `secret` (an API key's token,
/// a webhook signing secret): the one response that carries it, so no
/// cache may keep it (`Cache-Control: no-store`, and `Pragma: no-cache`
/// for HTTP/1.0 caches). The stored answer of the idempotent write holds
/// no secret, so a replay is answered without one.
pub async fn with_secret(response: Response, secret: &str) -> Result<Response> {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let mut json: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.into()))?;
    json["secret"] = Value::String(secret.to_owned());
    let bytes = serde_json::to_vec(&json).map_err(|e| ApiError::Internal(e.into()))?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    parts
        .headers
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}

/// The `file` field of a form's typed body ([`submit`]): documents the
/// file part in the OpenAPI document. The file itself never reaches the
/// body (it is streamed to storage), so a text field named `file` is
/// refused.
#[derive(Debug)]
pub struct FilePart;

impl<'de> serde::Deserialize<'de> for FilePart {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "send the file as the multipart part named file, with a file name",
        ))
    }
}

impl serde::Serialize for FilePart {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}
