//! The pgTAP test scripts in sql/tests/, each run by `pg_prove` as the
//! superuser against a fresh migrated database. A script plans its checks,
//! creates pgTAP in a schema of its own inside its transaction and rolls
//! everything back (sql/tests/lib/tap.sql); pg_prove's exit status is the
//! verdict (a failed check, an error, or fewer checks than planned).

use std::path::Path;
use std::process::Command;
use std::str::FromStr;

use bizos_tests::{url_for, TestDb};
use tokio_postgres::config::Host;

async fn run_script(name: &str) {
    let db = TestDb::new().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sql/tests")
        .join(name);
    // pg_prove hands its connection options to psql word by word, so a
    // key=value DSN cannot go through --dbname: libpq's variables can.
    let config = tokio_postgres::Config::from_str(&url_for("postgres", &db.name))
        .expect("the test cluster's DSN");
    let mut cmd = Command::new("pg_prove");
    cmd.arg("--verbose").arg(&script);
    for (key, value) in [
        ("PGHOST", config.get_hosts().first().map(host_text)),
        ("PGPORT", config.get_ports().first().map(u16::to_string)),
        ("PGUSER", config.get_user().map(str::to_owned)),
        (
            "PGPASSWORD",
            config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        ),
        ("PGDATABASE", config.get_dbname().map(str::to_owned)),
    ] {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let out = tokio::task::spawn_blocking(move || {
        cmd.output().expect(
            "pg_prove runs (Debian: libtap-parser-sourcehandler-pgtap-perl and \
             postgresql-15-pgtap, which scripts/dev installs)",
        )
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

fn host_text(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(path) => path.display().to_string(),
    }
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

#[tokio::test]
async fn llm_script() {
    run_script("llm.sql").await;
}
