//! The knowledge base: a document ingested by the worker, searched and
//! asked, its visibility changed, a new version, deleted.

use serde_json::json;

use super::runner::{call, form, Bytes, Row, Who::*, DELETE, GET, NONE, PATCH, POST};

const REFUND: &str = "# Refund\n\nRefunds are approved by the finance manager.\n";

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Admin, POST, "/api/kb/documents", form(&[("title", "Refund SOP")], "refund.md", Bytes::Text(REFUND)), 202)
            .save("kb_doc", "/document_id"),
        call(Sales, POST, "/api/kb/documents", form(&[("title", "Not mine to add")], "x.md", Bytes::Text(REFUND)), 403).why("kb.manage"),
        call(Admin, GET,  "/api/kb/documents/{kb_doc}", NONE, 200).is("/status", "ready").poll(),
        call(Sales, GET,  "/api/kb/documents/{missing}", NONE, 404),
        call(Sales, GET,  "/api/kb/documents?status=ready&limit=10", NONE, 200).len("/items", 1),
        call(Sales, POST, "/api/kb/search", json!({"query": "who approves refunds", "k": 5}), 200).len("/items", 1),
        call(Sales, POST, "/api/kb/search", json!({"query": "refunds", "k": 0}), 422),
        call(Sales, POST, "/api/kb/ask", json!({"question": "Who approves refunds?"}), 200).is("/source", "extractive"),
        call(Admin, PATCH, "/api/kb/documents/{kb_doc}", json!({"visibility": "roles", "app_roles": ["finance", "director"]}), 200),
        call(Admin, PATCH, "/api/kb/documents/{kb_doc}", json!({"visibility": "department"}), 422).why("department without dept_code"),
        call(Admin, POST, "/api/kb/documents/{kb_doc}/versions", form(&[], "refund-v2.md", Bytes::Text(REFUND)), 202).is("/version", 2),
        call(Admin, DELETE, "/api/kb/documents/{kb_doc}", NONE, 200),
        call(Admin, DELETE, "/api/kb/documents/{kb_doc}", NONE, 404),
    ]
}
