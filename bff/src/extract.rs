//! Extractors whose rejections use the API's error shape.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::vocabulary::Vocabulary;

/// A JSON body parsed into `T` (a typed request with
/// `#[serde(deny_unknown_fields)]`). Every rejection names the field:
///
/// - not JSON at all, truncated, trailing garbage (syntax) → 400
///   `bad_request`, `field` = the JSON path reached, or `body`;
/// - a wrong type, an unknown key, a missing required key, a value the
///   type refuses (too long, outside its set, a NUL character) → 422
///   `invalid`, `field` = the JSON path (`company_name`, `rfq.origin`,
///   `evidence[2]`), or `body` for the body as a whole (e.g. an array);
/// - no `content-type: application/json` → 415; over the body limit → 413.
///
/// Closed sets are checked against the server's vocabulary, made current
/// for the parse (serde's deserializers take no state; the parse is
/// synchronous, see [`Vocabulary::scope`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Arc<Vocabulary>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType {
                message: "expected a JSON body with content-type application/json".into(),
                field: Some("content-type".into()),
            });
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest {
                    message: "the body could not be read".into(),
                    field: Some("body".into()),
                }
            }
        })?;
        Arc::<Vocabulary>::from_ref(state)
            .scope(|| parse_body(&bytes))
            .map(Json)
    }
}

/// A `multipart/form-data` body, for the upload routes (axum's extractor,
/// whose refusal is a bare 400 in plain text). A body that is not
/// multipart, or has no boundary, is refused with 400 `bad_request` naming
/// `content-type`, the header at fault (a JSON body names it likewise).
pub struct Multipart(pub axum::extract::Multipart);

impl<S: Send + Sync> FromRequest<S> for Multipart {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::extract::Multipart::from_request(req, state)
            .await
            .map(Multipart)
            .map_err(|_| ApiError::BadRequest {
                message: "expected a multipart/form-data body (content-type multipart/form-data with a boundary)".into(),
                field: Some("content-type".into()),
            })
    }
}

impl std::ops::Deref for Multipart {
    type Target = axum::extract::Multipart;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Multipart {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a request body, tracking the JSON path of the first problem.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let crate::payload::Body(value) =
        serde_path_to_error::deserialize(&mut de).map_err(body_error)?;
    de.end().map_err(|e| ApiError::BadRequest {
        message: format!("the body is not valid JSON: {e}"),
        field: Some("body".into()),
    })?;
    Ok(value)
}

fn body_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let located = Located::from(err);
    match located.inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::BadRequest {
            message: format!("the body is not valid JSON: {}", located.inner),
            field: Some(located.at.unwrap_or_else(|| "body".into())),
        },
        Category::Data => {
            let (field, message) = located.field_and_message();
            let field = field.unwrap_or_else(|| "body".into());
            ApiError::Unprocessable {
                message: format!("{field}: {message}"),
                field: Some(field),
            }
        }
    }
}

/// A value that did not deserialize: the JSON path reached, and why.
pub(crate) struct Located {
    /// The path as far as it is known; None: the value itself.
    at: Option<String>,
    inner: serde_json::Error,
}

impl From<serde_path_to_error::Error<serde_json::Error>> for Located {
    fn from(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        // `.` is the value itself; `?` a position serde_path_to_error could
        // not name (e.g. after a truncated key): keep what is known.
        let path = err.path().to_string();
        let known: Vec<&str> = path
            .split('.')
            // A number where an object belongs reaches the object as a map
            // under serde_json's private key (arbitrary_precision): the
            // problem is the number's place, not that key.
            .filter(|s| !s.is_empty() && *s != "?" && *s != crate::payload::NUMBER_TOKEN)
            .collect();
        Located {
            at: (!known.is_empty()).then(|| known.join(".")),
            inner: err.into_inner(),
        }
    }
}

impl Located {
    /// The field a data error is about (None: the value itself) and the
    /// message for it: "missing field `x`" is reported at the object that
    /// lacks it, as "is required".
    pub(crate) fn field_and_message(&self) -> (Option<String>, String) {
        let text = self.inner.to_string();
        let message = crate::payload::strip_position(&text);
        match missing_field(message) {
            Some(name) => (
                Some(match &self.at {
                    Some(parent) => format!("{parent}.{name}"),
                    None => name.to_owned(),
                }),
                "is required".to_owned(),
            ),
            None => (self.at.clone(), message.replace('\0', "\\u0000")),
        }
    }
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
}

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// Path parameters with the API's error shape.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters with the API's error shape (400, `field` = `query`);
/// closed sets are checked against the server's vocabulary, as in [`Json`].
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Arc<Vocabulary>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) = Arc::<Vocabulary>::from_ref(state)
            .scope(|| axum::extract::Query::<T>::try_from_uri(&parts.uri))?;
        Ok(Query(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        qty: crate::payload::Int<1, 10>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: crate::payload::NonBlank<5>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default, deserialize_with = "crate::payload::object")]
        inner: Option<Item>,
    }

    fn err(body: &str) -> (u16, String) {
        let e = parse_body::<Body>(body.as_bytes()).unwrap_err();
        (
            e.status().as_u16(),
            e.body()["error"]["field"].as_str().unwrap_or("").to_owned(),
        )
    }

    #[test]
    fn every_rejection_names_a_field() {
        assert_eq!(err(r#"{"name": {"x": 1}}"#), (422, "name".into()));
        assert_eq!(err(r#"{"name": "a", "nme": 1}"#), (422, "nme".into()));
        assert_eq!(err(r#"{"items": []}"#), (422, "name".into()));
        assert_eq!(err(r#"{"name": "a\u0000"}"#), (422, "name".into()));
        assert_eq!(err(r#"{"name": "abcdef"}"#), (422, "name".into()));
        assert_eq!(
            err(r#"{"name": "a", "items": [{"qty": 1}, {"qty": 1}, {"qty": "x"}]}"#),
            (422, "items[2].qty".into())
        );
        assert_eq!(
            err(r#"{"name": "a", "items": [{}]}"#),
            (422, "items[0].qty".into())
        );
        assert_eq!(err(r#"[1, 2]"#), (422, "body".into()));
        assert_eq!(err(r#"["a"]"#), (422, "body".into()));
        assert_eq!(err("null"), (422, "body".into()));
        // A number is no object, whatever serde_json hands a visitor for it.
        assert_eq!(err("12.5"), (422, "body".into()));
        assert_eq!(err(r#"{"name": "a", "inner": 7}"#), (422, "inner".into()));
        assert_eq!(
            err(r#"{"name": "a", "items": [{"qty": 1}, 2]}"#),
            (422, "items[1]".into())
        );
        assert_eq!(
            err(r#"{"name": "a", "inner": ["x"]}"#),
            (422, "inner".into())
        );
        assert_eq!(
            err(r#"{"name": "a", "inner": {"qty": 0}}"#),
            (422, "inner.qty".into())
        );
        assert_eq!(
            err(r#"{"name": "a", "inner": {"qty": 1, "x": 1}}"#),
            (422, "inner.x".into())
        );
        assert!(parse_body::<Body>(br#"{"name": "a", "inner": null}"#).is_ok());
        assert!(parse_body::<Body>(br#"{"name": "a", "inner": {"qty": 2}}"#).is_ok());
        assert_eq!(err("not json"), (400, "body".into()));
        assert_eq!(err(r#"{"name": "a""#), (400, "body".into()));
        assert_eq!(err(r#"{"name": "a"} x"#), (400, "body".into()));
        assert_eq!(err("{\"name\": \"a\0\"}"), (400, "name".into()));
        assert_eq!(err(""), (400, "body".into()));
    }
}
