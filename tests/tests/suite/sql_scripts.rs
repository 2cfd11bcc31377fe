//! The self-checking SQL test scripts in sql/tests/, each run with psql as
//! the superuser against a fresh migrated database. A script raises on any
//! wrong result, so psql's exit status is the verdict.

use std::path::Path;
use std::process::Command;

use bizos_tests::{url_for, TestDb};

async fn run_script(name: &str) {
    let db = TestDb::new().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sql/tests")
        .join(name);
    let url = url_for("postgres", &db.name);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("psql")
            .arg(&url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&script)
            .output()
            .expect("psql runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn ticketing_script() {
    run_script("ticketing.sql").await;
}

#[tokio::test]
async fn receivables_script() {
    run_script("receivables.sql").await;
}

#[tokio::test]
async fn kpi_script() {
    run_script("kpi.sql").await;
}

#[tokio::test]
async fn imports_script() {
    run_script("imports.sql").await;
}
