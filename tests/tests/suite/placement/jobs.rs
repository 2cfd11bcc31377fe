//! The worker runs the jobs of every placement: a schema-tier and an
//! isolated tenant's jobs live in their placement's `jobs` table, and a
//! worker started against the control database claims them there.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::placement::Tier;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::{spawn_app_with, start_worker, worker_settings, TestApp};
use serde_json::{json, Value};

use super::{connect, Home};

/// Queues an RFM run as `admin` through the BFF: the job's id.
async fn queue_rfm(app: &TestApp, admin: &Caller) -> String {
    let (status, job) = app
        .post_json(admin, "/api/rfm/runs", &json!({}), None)
        .await;
    assert_eq!(status, 202, "{job}");
    job["job_id"].as_str().unwrap().to_owned()
}

/// The job as its tenant sees it through the BFF.
async fn job_of(app: &TestApp, admin: &Caller, id: &str) -> Value {
    let (status, job) = app.get_json(admin, &format!("/api/jobs/{id}")).await;
    assert_eq!(status, 200, "{job}");
    job
}

#[tokio::test]
async fn a_worker_on_the_control_database_runs_the_jobs_of_schema_and_isolated_tenants() {
    let h = Home::new().await;
    h.add_secret("worker", "HOME_URL", &h.db.url("bizos_worker"));
    let app = spawn_app_with(
        &h.db,
        &[
            ("BIZOS_SECRETS_FILE", &h.app_secrets()),
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    // Started before the tenants exist: their placements reach it through
    // the catalogue's notification, well before its periodic re-read.
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let _worker = start_worker(WorkerSettings {
        secrets_file: Some(h.secrets_path("worker")),
        ..worker_settings(&h.db, 2000, storage)
    })
    .await;

    let mut queued = Vec::new();
    for (tier, slug) in [
        (Tier::Schema, "jobs-schema"),
        (Tier::Isolated, "jobs-isolated"),
    ] {
        let (admin, placement) = h.tenant("eu", tier, slug).await;
        let id = queue_rfm(&app, &admin).await;
        // The job is in the placement's own `jobs` table, not control's.
        let database = placement["database_name"].as_str().unwrap().to_owned();
        let schema = placement["schema_name"].as_str().map(str::to_owned);
        let mut there = connect("postgres", &database, schema.as_deref()).await;
        let here: i64 = sqlx::query_scalar("select count(*) from jobs where job_id = $1::uuid")
            .bind(&id)
            .fetch_one(&mut there)
            .await
            .unwrap();
        assert_eq!(here, 1, "{tier:?}: the job is not in its placement");
        queued.push((tier, admin, id));
    }

    let start = Instant::now();
    for (tier, admin, id) in &queued {
        loop {
            let job = job_of(&app, admin, id).await;
            match job["status"].as_str().unwrap() {
                "succeeded" => break,
                "dead" => panic!("{tier:?}: the job failed: {job}"),
                _ => {}
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{tier:?}: the worker did not run the job of its placement: {job}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
