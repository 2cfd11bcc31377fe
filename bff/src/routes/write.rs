//! The shape of every write of the API: one SQL RPC in one transaction
//! under the caller's claims, with idempotency (see [`crate::idempotency`]);
//! a write with a file stores it first and registers it in that transaction
//! (see [`crate::files`]).

use axum::extract::Multipart;
use axum::response::Response;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::{ApiError, Result};
use crate::files::{read_form, Bucket, Form};
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

/// One RPC call of a route.
pub struct Call {
    pub method: &'static str,
    pub path: String,
    /// e.g. `select lead_update($1, $2)`, returning jsonb.
    pub sql: &'static str,
    pub args: Args,
    /// 201 Created instead of 200 OK.
    pub created: bool,
}

impl Call {
    pub fn post(path: String, sql: &'static str, args: Args) -> Self {
        Call {
            method: "POST",
            path,
            sql,
            args,
            created: false,
        }
    }
    pub fn patch(path: String, sql: &'static str, args: Args) -> Self {
        Call {
            method: "PATCH",
            ..Call::post(path, sql, args)
        }
    }
    pub fn created(self) -> Self {
        Call {
            created: true,
            ..self
        }
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
        path,
        sql,
        args,
        created,
    } = call;
    let fingerprint = match &args {
        Args::Body(body) | Args::IdBody(_, body) => Fingerprint::json(method, path, body),
        Args::Id(_) => Fingerprint::json(method, path, &Value::Null),
    };
    idempotency::run(state, caller, key, fingerprint, async |conn| {
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

/// What identifies an upload request for idempotency: its path, its text
/// fields and its file.
pub fn upload_fingerprint(path: String, form: &Form) -> Fingerprint {
    let parts = form.fingerprint_parts();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Fingerprint::parts("POST", path, &refs)
}

/// Whether an upload request registered its file: it succeeded and was not
/// a replay (which answers with the first request's file).
pub fn registered(result: &Result<Response>) -> bool {
    matches!(result, Ok(r) if r.status().is_success() && !r.headers().contains_key(REPLAYED))
}

/// What to attach an uploaded file to.
pub struct Attach {
    pub bucket: &'static str,
    pub path: String,
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
    let files = state.files();
    let bucket = Bucket::load(&files, caller, to.bucket).await?;
    let form = read_form(&files, caller, multipart, &bucket, false).await?;
    let result = idempotency::run(
        state,
        caller,
        key,
        upload_fingerprint(to.path, &form),
        async |conn| {
            let object = form.file.register(conn).await?;
            let mut body: Value = sqlx::query_scalar(to.sql)
                .bind(to.parent)
                .bind(form.file.object_id)
                .fetch_one(&mut *conn)
                .await?;
            body["object"] = object;
            Ok(Done::created(body))
        },
    )
    .await;
    files.keep_or_discard(&form, registered(&result));
    result
}
