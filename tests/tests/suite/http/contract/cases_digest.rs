//! The digest card (written by the worker; here stored directly), and the
//! digest of a day on demand, polled at its job.

use serde_json::json;

use super::runner::{call, sql, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Admin, GET, "/api/digest/latest", NONE, 404).why("no digest yet"),
        sql("insert into digests (tenant_id, digest_date, locale, aggregates, insights, source)
             values ($1::uuid, '2026-11-18', 'id', digest_aggregates($1::uuid, '2026-11-18'),
                     '[{\"text\": \"a\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"},
                       {\"text\": \"b\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"},
                       {\"text\": \"c\", \"figures\": [\"ar_overdue\"], \"source\": \"fallback\"}]', 'fallback')", &["tenant"]),
        call(Admin, GET, "/api/digest/latest", NONE, 200).is("/source", "fallback"),
        call(Admin, GET, "/api/digest?date=2026-11-18", NONE, 200),
        call(Sales, GET, "/api/digest?date=2026-11-18", NONE, 403).why("digest.read"),

        call(Director, POST, "/api/digest", json!({}), 202).save("digest_job", "/job_id"),
        call(Director, POST, "/api/digest", json!({"day": "2999-01-01"}), 422).why("the day is not over"),
        call(Sales,    POST, "/api/digest", json!({}), 403).why("digest.read"),
        call(Director, GET,  "/api/jobs/{digest_job}", NONE, 200),
    ]
}
