//! The CEO digest on Citus: the same data on a single node and on the
//! cluster, each digest built by the worker's `digest.build` job as in
//! production, and every figure and list the same on both.
//!
//! `digest_aggregates` hands the tenant's claims to the report functions
//! it calls (the receivables of `kpi_ar_open_at`, `kpi_actual`) with `SET
//! LOCAL`, which Citus carries to the workers only inside a transaction
//! block. Called by the job as a statement of its own, the workers read
//! no claims and the digest reported receivables of 0 on Citus.

use bizos_tests::llm_standin::{StandIn, Step};
use bizos_tests::TestDb;
use serde_json::Value;

use crate::digest::reconcile::{build, same};
use crate::digest::{route_digest_to, run_job_of, worker};

/// Tenants west and east of their calendars: UTC-12 on WIT, UTC+14 on WIB.
const TENANTS: [(&str, &str, &str); 2] = [
    ("digest-citus-west", "Etc/GMT+12", "Asia/Jayapura"),
    ("digest-citus-east", "Pacific/Kiritimati", "Asia/Jakarta"),
];

/// The stored aggregates of each tenant's digest of its today, built by
/// the worker.
async fn digests(db: &TestDb, standin: &StandIn) -> Vec<Value> {
    route_digest_to(db, standin).await;
    let mut built = Vec::new();
    for (slug, zone, calendar) in TENANTS {
        built.push(build(db, slug, zone, calendar).await);
    }
    let worker = worker(db).await;
    let mut out = Vec::new();
    for b in &built {
        let digest = run_job_of(db, b.tenant, &b.day.to_string()).await;
        out.push(digest["aggregates"].clone());
    }
    drop(worker.stop);
    out
}

#[tokio::test]
async fn the_digest_built_by_the_worker_has_the_same_figures_on_citus_as_on_a_single_node() {
    let standin = StandIn::start().await;
    // No model answers: the insights are the deterministic ones.
    for _ in 0..40 {
        standin.script(Step::status(503));
    }
    let single = TestDb::new().await;
    let citus = TestDb::on_citus().await;
    let on_single = digests(&single, &standin).await;
    let on_citus = digests(&citus, &standin).await;
    let mut differences = Vec::new();
    for ((slug, _, _), (s, c)) in TENANTS.iter().zip(on_single.iter().zip(&on_citus)) {
        // The data set reaches the receivables, the KPIs and the tickets.
        let f = &s["figures"];
        assert!(
            f["ar_outstanding"].as_f64().unwrap() > 0.0
                && f["ar_overdue_month_start"].as_f64().unwrap() > 0.0
                && f["tickets_pending_overdue"].as_f64().unwrap() > 0.0
                && s["kpi"].as_array().unwrap().len() == 2,
            "{s}"
        );
        let keys = |a: &Value| {
            a["figures"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(s), keys(c), "the same figures");
        for key in keys(s) {
            let (v, w) = (&s["figures"][&key], &c["figures"][&key]);
            if !same(v, w) {
                differences.push(format!("{slug} {key}: {v} on a single node, {w} on Citus"));
            }
        }
        for (key, v) in s.as_object().unwrap() {
            if key != "figures" && !same(v, &c[key]) {
                differences.push(format!(
                    "{slug} {key}: {v} on a single node, {} on Citus",
                    c[key]
                ));
            }
        }
    }
    assert!(
        differences.is_empty(),
        "the digest differs on Citus:\n{}",
        differences.join("\n")
    );
}
