//! One error type for every handler. Database errors are classified by
//! SQLSTATE and constraint name (the RPC contract); SQL text and internal details are
//! logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The database refused the caller's account or tenant (see
    /// [`refusal`]): 403 with a code of its own.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("{0}")]
    NotFound(String),
    /// A write of a tenant soft-locked for an unpaid invoice
    /// ([`crate::payments::lock`]): 402 `subscription_soft_locked`.
    #[error("{0}")]
    PaymentRequired(String),
    #[error("{message}")]
    Conflict {
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    Unprocessable {
        message: String,
        field: Option<String>,
    },
    /// 422 from the tenant's SOP rules (invoice_create): the first
    /// refusing reason as message and field, every reason in `reasons`.
    #[error("{message}")]
    RefusedByRules {
        message: String,
        field: Option<String>,
        reasons: serde_json::Value,
    },
    #[error("{message}")]
    BadRequest {
        message: String,
        field: Option<String>,
    },
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// An upload over its bucket's limit: says which limit.
    #[error("{message}")]
    TooLarge {
        message: String,
        field: Option<String>,
    },
    #[error("{message}")]
    UnsupportedMediaType {
        message: String,
        field: Option<String>,
    },
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A limit is used up (the database's BZ429: AI generations or tokens):
    /// 429 with `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A cap of the tenant's plan is reached (the database's BZ402: its
    /// active users, its stored bytes): 402, code `plan_limit_reached`,
    /// the cap as `field`. Waiting does not help, a bigger plan does.
    #[error("{message}")]
    PlanLimit {
        message: String,
        field: Option<String>,
    },
    /// Transient: lock timeout, statement timeout, database down.
    #[error("{0}")]
    Unavailable(String),
    /// The database rolled the transaction back to break a deadlock (40P01,
    /// also Citus's distributed deadlocks) or a serialization conflict
    /// (40001): running it again is safe, and the request path does so a
    /// few times ([`crate::retry`]) before it answers 503 with
    /// `Retry-After`, as [`ApiError::Unavailable`].
    #[error("{0}")]
    RolledBack(String),
    /// The database lacks a resource (memory, lock table slots,
    /// connections) or is starting or stopping: 503 with a longer
    /// `Retry-After` ([`OVERLOADED_RETRY_AFTER_SECS`]), since such a
    /// shortage outlasts the race of two requests.
    #[error("{0}")]
    Overloaded(String),
    /// The tenant is being moved to another tier (the database's BZ503:
    /// its writes are refused for the last moment of the move, or it has
    /// just moved and this write went to its old place): 503 with
    /// `Retry-After`, code `tenant_moving`; the retry succeeds.
    #[error("{message}")]
    TenantMoving {
        message: String,
        retry_after: std::time::Duration,
    },
    /// A feature this deployment does not offer (the database's BZ501:
    /// imports on a Citus cluster): 501.
    #[error("{0}")]
    NotSupported(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<&'a serde_json::Value>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Unprocessable { .. } | ApiError::RefusedByRules { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge | ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PlanLimit { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::Unavailable(_)
            | ApiError::RolledBack(_)
            | ApiError::Overloaded(_)
            | ApiError::TenantMoving { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotSupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Refused { code, .. } => code,
            ApiError::NotFound(_) => "not_found",
            ApiError::PaymentRequired(_) => "subscription_soft_locked",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Unprocessable { .. } | ApiError::RefusedByRules { .. } => "invalid",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::PayloadTooLarge | ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::PlanLimit { .. } => "plan_limit_reached",
            ApiError::Unavailable(_) | ApiError::RolledBack(_) | ApiError::Overloaded(_) => {
                "unavailable"
            }
            ApiError::TenantMoving { .. } => "tenant_moving",
            ApiError::NotSupported(_) => "not_supported",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The request field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Conflict { field, .. }
            | ApiError::Unprocessable { field, .. }
            | ApiError::RefusedByRules { field, .. }
            | ApiError::BadRequest { field, .. }
            | ApiError::TooLarge { field, .. }
            | ApiError::PlanLimit { field, .. }
            | ApiError::UnsupportedMediaType { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A period of a query (`from`, `to`: days or instants) that ends
    /// before it starts is refused on `to`; an open end is never out of
    /// order.
    pub fn check_period<T: PartialOrd>(from: Option<T>, to: Option<T>) -> Result<()> {
        match (from, to) {
            (Some(from), Some(to)) if to < from => {
                Err(ApiError::invalid("to", "must not be before from"))
            }
            _ => Ok(()),
        }
    }
}

impl ApiError {
    /// The JSON body clients get: `{"error": {"code", "message", "field"?}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: ErrorBody {
                code: self.code(),
                message: self.to_string(),
                field: self.field(),
                reasons: match self {
                    ApiError::RefusedByRules { reasons, .. } => Some(reasons),
                    _ => None,
                },
            },
        })
        .expect("error bodies serialize")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. }
            | ApiError::TenantMoving { retry_after, .. } => Some(retry_after_secs(*retry_after)),
            ApiError::Overloaded(_) => Some(OVERLOADED_RETRY_AFTER_SECS),
            _ => None,
        };
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        } else if status.is_server_error() {
            tracing::warn!(error = %self, "transient error");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The `Retry-After` of [`ApiError::Overloaded`], in seconds.
pub const OVERLOADED_RETRY_AFTER_SECS: u64 = 5;

/// A failure that says nothing about the request, only about the moment:
/// the database rolled the whole transaction back, so the same request (or
/// job) may simply be tried again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// Serialization failure (40001), deadlock (40P01), lock not available
    /// (55P03, `lock_timeout`): another transaction was in the way.
    Conflict,
    /// Cancelled by `statement_timeout` (57014).
    Timeout,
    /// Out of a resource of the server (class 53: memory, the shared lock
    /// table — 53200 "out of shared memory" —, disk, connections), or the
    /// server is stopping or starting (57P01-57P03), or the connection
    /// broke (class 08).
    Resources,
}

/// Whether a SQLSTATE is [`Transient`], and how. One list for the BFF's
/// answers (503 with `Retry-After`) and the worker's retries
/// (`JobError::from_db`: queued again with backoff, not dead).
pub fn transient(sqlstate: &str) -> Option<Transient> {
    match sqlstate {
        // BZ503: the tenant is frozen for a tier move (a job retries it).
        "40001" | "40P01" | "55P03" | "BZ503" => Some(Transient::Conflict),
        "57014" => Some(Transient::Timeout),
        "57P01" | "57P02" | "57P03" => Some(Transient::Resources),
        c if c.starts_with("53") || c.starts_with("08") => Some(Transient::Resources),
        _ => None,
    }
}

/// The SQLSTATEs after which the whole transaction may run again: the
/// database rolled it back to break a deadlock or a serialization conflict
/// ([`crate::retry`] runs it again).
pub fn retryable(sqlstate: &str) -> bool {
    matches!(sqlstate, "40P01" | "40001")
}

/// Citus's error for a statement planned with a shard that a split
/// (`isolate_tenant_to_new_shard`) removed before it ran: a read routed
/// by a plan made just before the split ends. It fails before it reads or
/// writes anything, and Citus gives it no SQLSTATE of its own (XX000), so
/// it is told by its message; the transaction runs again like a
/// deadlock's victim, and its next plan finds the new shard.
pub fn stale_shard(sqlstate: &str, message: &str) -> bool {
    sqlstate == "XX000" && message.starts_with("could not find valid entry for shard ")
}

/// Whole seconds of a Retry-After header: rounded up, at least 1.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The wait a BZ429 error asks for: its hint `retry_after=<seconds>`
/// (60 s when the hint is missing or unreadable).
pub fn retry_after_hint(hint: Option<&str>) -> std::time::Duration {
    hint.and_then(|h| {
        h.split([',', ';', ' '])
            .find_map(|part| part.trim().strip_prefix("retry_after="))
    })
    .and_then(|v| v.trim().parse::<f64>().ok())
    .filter(|s| s.is_finite() && *s >= 0.0)
    .map_or(std::time::Duration::from_secs(60), |s| {
        std::time::Duration::from_secs_f64(s.min(86_400.0 * 40.0))
    })
}

/// The column part of a constraint named `<table>_<cols>_<suffix>` (the
/// naming convention of every migration), e.g. `profiles_email_key` → `email`.
fn field_of_constraint(table: Option<&str>, constraint: &str, suffix: &str) -> Option<String> {
    let rest = constraint.strip_suffix(suffix)?;
    let rest = match table {
        Some(t) => rest.strip_prefix(t)?.strip_prefix('_')?,
        None => rest,
    };
    (!rest.is_empty()).then(|| rest.to_owned())
}

/// The column of a one-column key named by a unique violation's detail
/// (`Key (slug)=(acme) already exists.`): Citus passes a worker's error on
/// without its constraint and table, but with its detail.
fn field_of_key_detail(detail: &str) -> Option<String> {
    let (columns, _) = detail.strip_prefix("Key (")?.split_once(")=(")?;
    (!columns.is_empty() && !columns.contains(',')).then(|| columns.to_owned())
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::Database(db) => from_database_error(db.as_ref()),
            sqlx::Error::RowNotFound => ApiError::NotFound("not found".into()),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry shortly".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

fn from_database_error(db: &dyn sqlx::error::DatabaseError) -> ApiError {
    use sqlx::postgres::PgDatabaseError;
    let pg = db.try_downcast_ref::<PgDatabaseError>();
    let code = db.code().unwrap_or_default();
    let constraint = db.constraint();
    let table = db.table();
    let column = pg.and_then(|e| e.column()).map(str::to_owned);
    // An API key that is unknown, revoked or expired: the credential is
    // the problem (api_key_authenticate, authenticate_request).
    if matches!(code.as_ref(), "ZA010" | "ZA011" | "ZA012") {
        return ApiError::Unauthorized(db.message().to_owned());
    }
    if stale_shard(&code, db.message()) {
        return ApiError::RolledBack("the tenant's data moved meanwhile; retry it".into());
    }
    if code == "25006" && crate::payments::lock::soft_locked() {
        return ApiError::PaymentRequired(
            "this organisation is read-only until its unpaid invoice is paid: \
             everything can be read and exported, nothing can be changed"
                .into(),
        );
    }
    if let Some((code, message)) = refusal(&code) {
        return ApiError::Refused {
            code,
            message: message.into(),
        };
    }

    match code.as_ref() {
        // A field named by the function that raised (COLUMN) wins over the
        // one read off the constraint's name.
        "23505" => ApiError::Conflict {
            message: user_or(
                db.message(),
                column.is_some(),
                "a record with the same values already exists",
            ),
            field: column
                .or_else(|| constraint.and_then(|c| field_of_constraint(table, c, "_key")))
                .or_else(|| pg.and_then(|e| field_of_key_detail(e.detail()?))),
        },
        "23P01" => ApiError::Conflict {
            message: user_or(
                db.message(),
                column.is_some(),
                "overlaps an existing record",
            ),
            field: column
                .or_else(|| constraint.and_then(|c| field_of_constraint(table, c, "_excl"))),
        },
        "23503" => ApiError::Unprocessable {
            message: "refers to a record that does not exist or is still referenced".into(),
            field: column
                .or_else(|| constraint.and_then(|c| field_of_constraint(table, c, "_fkey")))
                .or_else(|| pg.and_then(|e| field_of_key_detail(e.detail()?))),
        },
        "23514" => ApiError::Unprocessable {
            message: user_or(
                db.message(),
                column.is_some(),
                "a value breaks a rule of the record",
            ),
            field: column
                .or_else(|| constraint.and_then(|c| field_of_constraint(table, c, "_check"))),
        },
        "23502" => ApiError::Unprocessable {
            message: match &column {
                Some(c) => format!("{c} is required"),
                None => "a required value is missing".into(),
            },
            field: column,
        },
        c if c.starts_with("22") => ApiError::Unprocessable {
            message: "a value has the wrong format or is out of range".into(),
            field: column,
        },
        "42501" => ApiError::Forbidden("you are not allowed to do this".into()),
        // Our own functions raise P0001 with a message written for users and
        // the offending field in COLUMN; P0002 means the target was not found.
        // The SOP rules' refusal carries every reason as JSON in DETAIL
        // ({"reasons": [...]}, invoice_create).
        "P0001" => match pg.and_then(|e| e.detail()).and_then(rule_reasons) {
            Some(reasons) => ApiError::RefusedByRules {
                message: db.message().to_owned(),
                field: column,
                reasons,
            },
            None => ApiError::Unprocessable {
                message: user_message(db.message(), pg.and_then(|e| e.hint())),
                field: column,
            },
        },
        "P0002" => ApiError::NotFound(db.message().to_owned()),
        // A limit is used up; the hint says when it resets.
        "BZ429" => ApiError::TooManyRequests {
            message: db.message().to_owned(),
            retry_after: retry_after_hint(pg.and_then(|e| e.hint())),
        },
        // A cap of the plan (users, storage); COLUMN names it.
        "BZ402" => ApiError::PlanLimit {
            message: db.message().to_owned(),
            field: column,
        },
        "BZ501" => ApiError::NotSupported(db.message().to_owned()),
        // A tier move's freeze (or a write that reached the tenant's old
        // placement): the hint says when to retry.
        "BZ503" => ApiError::TenantMoving {
            message: db.message().to_owned(),
            retry_after: pg
                .and_then(|e| e.hint())
                .map_or(std::time::Duration::from_secs(1), |h| {
                    retry_after_hint(Some(h))
                }),
        },
        c => match transient(c) {
            Some(Transient::Conflict) if retryable(c) => {
                ApiError::RolledBack("the request conflicted with another; retry it".into())
            }
            Some(Transient::Conflict) => {
                ApiError::Unavailable("the request conflicted with another; retry it".into())
            }
            Some(Transient::Timeout) => {
                ApiError::Unavailable("the request took too long; retry it or narrow it".into())
            }
            Some(Transient::Resources) => {
                // The detail (which resource) is for the operator only.
                tracing::warn!(
                    sqlstate = c,
                    error = db.message(),
                    "database out of resources"
                );
                ApiError::Overloaded("the database is busy or unavailable; retry shortly".into())
            }
            None => ApiError::Internal(anyhow::anyhow!("database error {code}: {}", db.message())),
        },
    }
}

/// The reasons of a refusal by the SOP rules: DETAIL `{"reasons": [...]}`.
fn rule_reasons(detail: &str) -> Option<serde_json::Value> {
    if !detail.starts_with("{\"reasons\"") {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(detail) {
        Ok(serde_json::Value::Object(mut o)) => o.remove("reasons").filter(|r| r.is_array()),
        _ => None,
    }
}

/// Refusals of `authenticate_request()` (migration V13) by SQLSTATE: the
/// caller's account or tenant, not the request, is the problem. 25006 is
/// PostgreSQL's read-only transaction, which the database makes every
/// transaction of a read_only tenant (so only writes get it).
pub fn refusal(sqlstate: &str) -> Option<(&'static str, &'static str)> {
    Some(match sqlstate {
        "ZA001" => ("no_profile", "this user has no profile in this tenant"),
        "ZA002" => ("user_inactive", "this user is deactivated"),
        "ZA003" => ("tenant_suspended", "this organisation is suspended"),
        "ZA013" => (
            "api_key_ip_not_allowed",
            "this API key may not be used from this address",
        ),
        "25006" => (
            "tenant_read_only",
            "this organisation is read-only right now: nothing can be changed",
        ),
        _ => return None,
    })
}

/// Our functions that name a COLUMN write messages for users; the server's
/// own constraint messages name tables and are replaced by `generic`.
fn user_or(message: &str, from_our_function: bool, generic: &str) -> String {
    if from_our_function {
        message.to_owned()
    } else {
        generic.to_owned()
    }
}

fn user_message(message: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) if !h.is_empty() => format!("{message} ({h})"),
        _ => message.to_owned(),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::Unprocessable {
                message: e.body_text(),
                field: None,
            },
            JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest {
                message: "expected a JSON body with content-type application/json".into(),
                field: None,
            },
            r if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            r => ApiError::BadRequest {
                message: r.body_text(),
                field: None,
            },
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest {
            message: rejection.body_text(),
            field: Some("path".into()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest {
            message: rejection.body_text(),
            field: Some("query".into()),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_shard_gone_by_a_split_is_run_again_other_internal_errors_not() {
        assert!(stale_shard(
            "XX000",
            "could not find valid entry for shard 103792"
        ));
        assert!(!stale_shard("XX000", "could not find valid entry for user"));
        assert!(!stale_shard(
            "XX001",
            "could not find valid entry for shard 1"
        ));
    }

    use super::*;

    #[test]
    fn a_unique_violations_detail_gives_its_one_column() {
        assert_eq!(
            field_of_key_detail("Key (slug)=(acme) already exists.").as_deref(),
            Some("slug")
        );
        assert_eq!(
            field_of_key_detail("Key (tenant_id, email)=(x, y) already exists."),
            None
        );
        assert_eq!(field_of_key_detail("something else"), None);
    }

    #[test]
    fn constraint_names_give_fields() {
        assert_eq!(
            field_of_constraint(Some("profiles"), "profiles_email_key", "_key").as_deref(),
            Some("email")
        );
        assert_eq!(
            field_of_constraint(Some("profiles"), "profiles_manager_user_id_fkey", "_fkey")
                .as_deref(),
            Some("manager_user_id")
        );
        assert_eq!(
            field_of_constraint(Some("profiles"), "other_email_key", "_key"),
            None
        );
        assert_eq!(field_of_constraint(None, "x_key", "_check"), None);
    }

    #[test]
    fn refusals_have_codes_of_their_own() {
        for (state, code) in [
            ("ZA001", "no_profile"),
            ("ZA002", "user_inactive"),
            ("ZA003", "tenant_suspended"),
            ("25006", "tenant_read_only"),
        ] {
            let (c, message) = refusal(state).unwrap();
            let e = ApiError::Refused {
                code: c,
                message: message.into(),
            };
            assert_eq!((e.status(), e.code()), (StatusCode::FORBIDDEN, code));
        }
        assert_eq!(refusal("42501"), None);
    }

    #[test]
    fn limits_answer_429_with_retry_after() {
        use std::time::Duration;
        assert_eq!(
            retry_after_hint(Some("retry_after=3600")),
            Duration::from_secs(3600)
        );
        assert_eq!(
            retry_after_hint(Some("retry_after=12.5")),
            Duration::from_secs_f64(12.5)
        );
        assert_eq!(retry_after_hint(Some("x")), Duration::from_secs(60));
        assert_eq!(retry_after_hint(None), Duration::from_secs(60));
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        let e = ApiError::TooManyRequests {
            message: "chat: the user limit of 10 generations a day is used up".into(),
            retry_after: Duration::from_millis(90_500),
        };
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "91");
    }

    #[test]
    fn rule_refusals_carry_their_reasons() {
        let reasons = rule_reasons(
            r#"{"reasons": [{"rule": "max_discount", "field": "lines[0].discount_pct"}]}"#,
        )
        .unwrap();
        assert_eq!(reasons[0]["rule"], "max_discount");
        assert_eq!(rule_reasons("plain detail"), None);
        assert_eq!(rule_reasons(r#"{"reasons": 1}"#), None);
        let e = ApiError::RefusedByRules {
            message: "tax: wrong".into(),
            field: Some("tax".into()),
            reasons,
        };
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = e.body();
        assert_eq!(body["error"]["code"], "invalid");
        assert_eq!(body["error"]["field"], "tax");
        assert_eq!(body["error"]["reasons"][0]["rule"], "max_discount");
    }

    #[test]
    fn transient_states_answer_503_with_retry_after() {
        for (state, kind) in [
            ("40001", Some(Transient::Conflict)),
            ("40P01", Some(Transient::Conflict)),
            ("55P03", Some(Transient::Conflict)),
            ("BZ503", Some(Transient::Conflict)),
            ("57014", Some(Transient::Timeout)),
            ("53000", Some(Transient::Resources)),
            ("53100", Some(Transient::Resources)),
            ("53200", Some(Transient::Resources)),
            ("53300", Some(Transient::Resources)),
            ("53400", Some(Transient::Resources)),
            ("57P01", Some(Transient::Resources)),
            ("57P02", Some(Transient::Resources)),
            ("57P03", Some(Transient::Resources)),
            ("08006", Some(Transient::Resources)),
            ("23505", None),
            ("P0001", None),
            ("XX000", None),
            ("57P04", None),
            ("54000", None),
        ] {
            assert_eq!(transient(state), kind, "{state}");
        }
        let r = ApiError::Overloaded("busy".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            r.headers()[header::RETRY_AFTER],
            OVERLOADED_RETRY_AFTER_SECS.to_string().as_str()
        );
        let r = ApiError::Unavailable("conflict".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let moving = ApiError::TenantMoving {
            message: "being moved".into(),
            retry_after: std::time::Duration::from_millis(1500),
        };
        assert_eq!(moving.code(), "tenant_moving");
        let r = moving.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        // A deadlock's victim that is still one after its retries.
        let r = ApiError::RolledBack("deadlock".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let e = ApiError::Internal(anyhow::anyhow!("relation secret_table does not exist"));
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
