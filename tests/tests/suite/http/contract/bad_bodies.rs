//! Request bodies are strict: each bad body is refused naming the JSON
//! path of its problem in `field`, and nothing is written; what the
//! database accepts passes.

use bizos_tests::TestDb;
use serde_json::{json, Value};
use uuid::Uuid;

use super::runner::{call, raw, sql, Bytes, Row, Runner, Who::*, PATCH, POST};

#[tokio::test]
async fn bad_request_bodies_name_the_field_and_write_nothing() {
    let mut run = Runner::start(TestDb::new().await, &[]).await;
    run.run(cases()).await;
    run.finish_responses();
}

/// A good lead with `key` set to `value`.
fn lead(key: &str, value: Value) -> Value {
    let mut body = json!({"channel": "website", "company_name": "PT Benar"});
    body[key] = value;
    body
}

fn ticket(key: &str, value: Value) -> Value {
    let mut body = json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS"});
    body[key] = value;
    body
}

fn entry(key: &str, value: Value) -> Value {
    let mut body = json!({"metric_key": "quotations_sent", "value": 1});
    body[key] = value;
    body
}

fn invoice(key: &str, value: Value) -> Value {
    let mut body = json!({"customer_id": "{customer}", "subtotal": 10, "tax": 0});
    body[key] = value;
    body
}

#[rustfmt::skip]
fn cases() -> Vec<Row> {
    let json = "application/json";
    let rfq = |extra: Value| {
        let mut rfq = json!({"origin": "A", "destination": "B", "dept_target": "OPS"});
        for (k, v) in extra.as_object().unwrap() {
            rfq[k] = v.clone();
        }
        lead("rfq", rfq)
    };
    let good = Uuid::new_v4().to_string();
    let leads = "/api/leads";
    vec![
        call(Marketing, POST, leads, lead("company_name", json!({"x": 1})), 422).field("company_name").why("wrong type"),
        call(Marketing, POST, leads, lead("city", json!(12)), 422).field("city").why("number for text"),
        call(Marketing, POST, leads, lead("colour", json!("red")), 422).field("colour").why("unknown key"),
        call(Marketing, POST, leads, raw(json, Bytes::Literal(br#"{"channel": "website", "company_name": "PT X",}"#)), 400).field("body").why("malformed JSON"),
        call(Marketing, POST, leads, raw(json, Bytes::Literal(b"channel=website")), 400).field("body").why("not JSON"),
        call(Marketing, POST, leads, raw(json, Bytes::Literal(b"")), 400).field("body").why("empty body"),
        call(Marketing, POST, leads, raw(json, Bytes::Literal(b"[1, 2]")), 422).field("body").why("an array"),
        call(Marketing, POST, leads, lead("company_name", json!("PT A\u{0}B")), 422).field("company_name").why("escaped NUL"),
        call(Marketing, POST, leads, raw(json, Bytes::Literal(b"{\"channel\": \"website\", \"company_name\": \"PT A\x00B\"}")), 400).field("company_name").why("raw NUL"),
        call(Marketing, POST, leads, lead("a\u{0}b", json!(1)), 422).field("a\u{0}b").why("NUL in a key"),
        call(Marketing, POST, leads, lead("company_name", json!("x".repeat(201))), 422).field("company_name").why("too long"),
        call(Marketing, POST, leads, lead("channel", json!("pigeon")), 422).field("channel").why("invalid enum"),
        call(Marketing, POST, leads, json!({"channel": "website"}), 422).field("company_name").why("missing"),
        call(Marketing, POST, leads, lead("company_name", json!("   ")), 422).field("company_name").why("blank required"),
        call(Marketing, POST, leads, lead("sales_owner_user_id", json!("bob")), 422).field("sales_owner_user_id").why("bad uuid"),
        call(Marketing, POST, leads, rfq(json!({"origin": 5})), 422).field("rfq.origin").why("nested type"),
        call(Marketing, POST, leads, lead("rfq", json!({"origin": "A", "destination": "B"})), 422).field("rfq.dept_target").why("nested missing"),
        call(Marketing, POST, leads, rfq(json!({"x": 1})), 422).field("rfq.x").why("nested unknown"),
        call(Marketing, POST, leads, rfq(json!({"weight_kg": "-1"})), 422).field("rfq.weight_kg").why("nested range"),
        call(Marketing, POST, leads, rfq(json!({"volume_cbm": 1.2345})), 422).field("rfq.volume_cbm").why("nested decimals"),
        call(Marketing, POST, leads, rfq(json!({"dept_target": "9 OPS"})), 422).field("rfq.dept_target").why("nested department"),
        call(Marketing, POST, leads, raw("text/plain", Bytes::Literal(br#"{"channel": "website", "company_name": "PT Benar"}"#)), 415)
            .field("content-type").is("/error/code", "unsupported_media_type"),
        sql("select count(*) from leads", &[]).is("", 0).why("nothing written"),

        // What the database accepts passes: 200 characters (not bytes) after
        // trimming, case-folded enums, numeric strings, blank optional ids.
        call(Marketing, POST, leads, json!({"channel": " WhatsApp ", "company_name": format!("  {}  ", "é".repeat(200)),
                                            "sales_owner_user_id": "", "contact_name": "",
                                            "rfq": {"origin": "A", "destination": "B", "dept_target": "ops",
                                                    "weight_kg": "12.500", "priority": "URGENT"}}), 201)
            .save("lead", "/lead_id").save("customer", "/customer_id"),
        sql("select count(*) from leads", &[]).is("", 1),
        sql("select count(*) from tickets where priority = 'urgent' and weight_kg = 12.5 and dept_target = 'OPS'", &[]).is("", 1),

        // PATCH keeps absent, null and values apart.
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"contact_name": "Sari", "city": "Depok"}), 200),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"contact_name": null}), 200).is("/contact_name", Value::Null).is("/city", "Depok"),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"status": null}), 422).field("status"),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"channel": "pigeon"}), 422).field("channel"),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"notes": "n".repeat(4001)}), 422).field("notes"),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"city": ["Depok"]}), 422).field("city"),
        call(Marketing, PATCH, "/api/leads/{lead}", json!({"owner": "me"}), 422).field("owner"),

        // Tickets: PATCH and messages.
        call(Sales, POST, "/api/tickets", ticket("subject", json!("Rusak")), 201).save("ticket", "/ticket_id"),
        call(Sales, POST, "/api/tickets", ticket("ticket_type", json!("Complaint")), 422).field("ticket_type"),
        call(Sales, POST, "/api/tickets", ticket("priority", json!("whenever")), 422).field("priority"),
        call(Sales, POST, "/api/tickets", ticket("weight_kg", json!(true)), 422).field("weight_kg"),
        call(Sales, POST, "/api/tickets", ticket("subject", json!("s".repeat(201))), 422).field("subject"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"priority": "whenever"}), 422).field("priority"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"status": null}), 422).field("status"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"assignee_user_id": "bob"}), 422).field("assignee_user_id"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"status": "IN_PROGRESS", "note": "n".repeat(10001)}), 422).field("note"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"subject": ""}), 422).field("subject"),
        call(Ops, PATCH, "/api/tickets/{ticket}", json!({"due": "tomorrow"}), 422).field("due"),
        call(Ops, POST, "/api/tickets/{ticket}/messages", json!({"body": "hi", "internal": "yes"}), 422).field("internal"),
        sql("select count(*) from ticket_messages", &[]).is("", 0),

        // KPI entries: arrays report the index.
        call(Sales, POST, "/api/kpi/entries", entry("evidence", json!([good, good, 7])), 422).field("evidence[2]"),
        call(Sales, POST, "/api/kpi/entries", entry("evidence", json!(vec![good.clone(); 21])), 422).field("evidence"),
        call(Sales, POST, "/api/kpi/entries", entry("value", json!("1.23456")), 422).field("value"),
        call(Sales, POST, "/api/kpi/entries", entry("source", json!("GUESSED")), 422).field("source"),
        call(Sales, POST, "/api/kpi/entries", entry("import_row", json!(0)), 422).field("import_row"),
        call(Sales, POST, "/api/kpi/entries", entry("entry_date", json!("2026-02-30")), 422).field("entry_date"),

        // Invoices: ranges and shapes.
        call(Finance, POST, "/api/invoices", invoice("terms_days", json!(400)), 422).field("terms_days"),
        call(Finance, POST, "/api/invoices", invoice("currency", json!("rupiah")), 422).field("currency"),
        call(Finance, POST, "/api/invoices", invoice("subtotal", json!("1e3")), 422).field("subtotal"),
        call(Finance, POST, "/api/invoices", invoice("tax", json!(-1)), 422).field("tax"),
        call(Finance, POST, "/api/invoices", invoice("status", json!("PAID")), 422).field("status"),
        sql("select count(*) from kpi_entries", &[]).is("", 0),
        sql("select count(*) from invoices", &[]).is("", 0),
    ]
}
