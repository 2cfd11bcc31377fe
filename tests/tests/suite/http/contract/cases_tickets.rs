//! Tickets (an RFQ's masked for ops), their messages and attachments, and
//! their SLA.

use serde_json::json;

use super::runner::{call, form, Bytes, Row, Who::*, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Sales, POST, "/api/tickets", json!({"ticket_type": "general_request", "subject": "Dokumen", "dept_target": "OPS", "priority": "HIGH"}), 201)
            .save("ticket", "/ticket_id"),
        call(Ops,   GET,   "/api/tickets", NONE, 200),
        call(Ops,   GET,   "/api/tickets/{rfq_ticket}", NONE, 200).is("/company_name", "MASKED"),
        call(Ops,   POST,  "/api/tickets/{ticket}/messages", json!({"body": "Sedang diproses"}), 201),
        call(Sales, POST,  "/api/tickets/{ticket}/attachments", form(&[], "surat.pdf", Bytes::Pdf(2048)), 201),
        call(Sales, POST,  "/api/tickets/{ticket}/attachments", form(&[], "x.exe", Bytes::Literal(b"MZ\x90\x00binary")), [415, 422]),
        call(Sales, GET,   "/api/tickets/{ticket}", NONE, 200).len("/messages", 1).len("/attachments", 1),
        call(Ops,   PATCH, "/api/tickets/{ticket}", json!({"status": "IN_PROGRESS", "note": "Diambil"}), 200),
        call(Ops,   PATCH, "/api/tickets/{ticket}", json!({}), 422),
        call(Ops,   PATCH, "/api/tickets/{ticket}", json!({"status": "OPEN"}), 422),

        call(Ops,   GET, "/api/sla/tickets?limit=2", NONE, 200),
        call(Sales, GET, "/api/sla/tickets/{ticket}", NONE, 200),
        call(Sales, GET, "/api/sla/tickets/{missing}", NONE, 404),
        call(Ops,   GET, "/api/sla/first-response?from={today-1}&to={today+1}", NONE, 200).filled("/items"),
        call(Ops,   GET, "/api/sla/first-response?from={today}&to={today-1}", NONE, 422),
    ]
}
