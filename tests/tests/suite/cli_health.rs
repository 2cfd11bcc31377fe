//! `bizos health URL`, the health check of the container images (issue
//! 22), run as the real command: exit 0 on a 2xx answer only.

use std::process::{Command, Output};

use bizos_tests::{spawn_app, TestDb};

/// Runs the command off the test's runtime thread, which serves the BFF.
async fn health(url: &str) -> Output {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
            .args(["health", &url, "--timeout-secs", "5"])
            .env_clear()
            .output()
            .expect("run bizos health")
    })
    .await
    .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn health_passes_a_ready_server_and_fails_anything_else() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;

    let ready = health(&app.url("/readyz")).await;
    assert!(ready.status.success(), "{}", stderr(&ready));

    let missing = health(&app.url("/no-such-endpoint")).await;
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("404"), "{}", stderr(&missing));

    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = health(&format!("http://127.0.0.1:{port}/readyz")).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
}
