//! RFM: segments (an empty snapshot before a run), a run by the worker, a scored
//! customer's segment, the settings, message templates and content.

use serde_json::json;

use super::runner::{call, sql, Row, Who::*, GET, NONE, POST, PUT};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Marketing, GET,  "/api/rfm/segments", NONE, 200).why("no snapshot yet: an empty one")
            .is("/week", json!(null)).is("/customers", 0),
        call(Sales,     POST, "/api/rfm/runs", json!({}), 403).why("rfm.manage"),
        call(Marketing, POST, "/api/rfm/runs", json!({}), 202).save("rfm_job", "/job_id"),
        call(Marketing, GET,  "/api/jobs/{rfm_job}", NONE, 200).is("/status", "succeeded").poll(),
        // A scored customer (the invoices above may all be open).
        sql("insert into rfm_scores (tenant_id, week, customer_id, recency_days, frequency, monetary, r, f, m, fm, segment)
             select r.tenant_id, r.week, c.customer_id, 1, 1, 100, 5, 1, 1, 1, 'new_customers'
               from rfm_runs r join customers c on c.tenant_id = r.tenant_id
              where r.tenant_id = $1::uuid
             on conflict do nothing", &["tenant"]),
        call(Marketing, GET, "/api/rfm/segments", NONE, 200),
        call(Marketing, GET, "/api/rfm/segments/new_customers/customers?limit=1", NONE, 200).len("/items", 1),
        call(Marketing, GET, "/api/rfm/segments/vip/customers", NONE, 422),
        call(Marketing, PUT, "/api/rfm/settings", json!({"window_days": 180}), 200),
        call(Marketing, PUT, "/api/rfm/settings", json!({"window_days": 3}), 422),
        call(Sales,     GET, "/api/rfm/templates", NONE, 200),
        call(Marketing, PUT, "/api/rfm/templates/new_customers/whatsapp", json!({"body": "Selamat datang, {{segment}} dari {{tenant}}!"}), 200)
            .is("/version", 1),
        call(Marketing, PUT,  "/api/rfm/templates/new_customers/fax", json!({"body": "Hai"}), 422),
        call(Marketing, POST, "/api/rfm/segments/new_customers/content", json!({"channel": "whatsapp"}), 200).is("/source", "template"),
        call(Sales,     POST, "/api/rfm/segments/new_customers/content", json!({"channel": "whatsapp"}), 403),
    ]
}
