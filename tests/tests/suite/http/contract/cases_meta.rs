//! Health, the documents and the caller.

use super::runner::{call, Row, Who::*, GET, NONE};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Nobody, GET, "/healthz", NONE, 200),
        call(Nobody, GET, "/readyz", NONE, 200),
        call(Nobody, GET, "/openapi.json", NONE, 200),
        call(Nobody, GET, "/api/v1/openapi.json", NONE, 200),
        call(Sales,  GET, "/api/me", NONE, 200),
        call(Nobody, GET, "/api/me", NONE, 401),
    ]
}
