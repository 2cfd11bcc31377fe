//! KPI: a target (and its duplicate), entries with evidence, an import of
//! entries (a job of the uploader's), actuals and progress.

use serde_json::json;

use super::runner::{call, form, sql, Bytes, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let target = json!({"metric_key": "quotations_sent", "assignee_user_id": "{sales}", "period_month": "{month}", "target_value": 20});
    let csv = "metric_key,value,entry_date\nquotations_sent,2,{today}\nrevenue,9,{today}\n";
    vec![
        call(Manager, POST, "/api/kpi/targets", target.clone(), 201),
        call(Manager, POST, "/api/kpi/targets", target, 409),
        call(Sales, POST, "/api/kpi/entries", json!({"metric_key": "quotations_sent", "value": "3", "notes": "minggu ini"}), 201)
            .save("entry", "/entry_id"),
        call(Sales, POST, "/api/kpi/evidence", form(&[("entry_id", "{entry}")], "bukti.pdf", Bytes::Pdf(512)), 201),
        call(Sales, POST, "/api/kpi/entries", json!({"metric_key": "revenue", "value": 1}), 422),
        call(Sales, POST, "/api/kpi/import", form(&[], "kpi.csv", Bytes::Text(csv)), 202).on_citus(501),
        sql("select job_id from jobs where kind = 'import.process' and created_by = $1::uuid", &["sales"])
            .save("import_job", "").single_node(),
        call(Sales, GET, "/api/jobs/{import_job}", NONE, 200).single_node(),
        call(Manager, GET, "/api/kpi/actuals?from={today-30}&to={today}", NONE, 200)
            .any("/items", "/status", "ok").any("/items", "/status", "na").why("both ok and NA metrics are checked"),
        call(Manager, GET, "/api/kpi/actuals?from=2026-02-01&to=2026-01-01", NONE, 422),
        call(Manager, GET, "/api/kpi/targets", NONE, 200),
        call(Manager, GET, "/api/kpi/progress?from={month_start}&to={today}", NONE, 200).filled("/items"),
        call(Manager, GET, "/api/kpi/progress?from={today}&to={month_start}x", NONE, 400),
    ]
}
