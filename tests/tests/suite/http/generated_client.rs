//! The integration document (`GET /api/v1/openapi.json`) is one a client
//! generator can use: a client generated from it by openapi-python-client
//! (installed by `scripts/dev` under its tools, outside the checkout; see
//! `ensure_openapi_client_generator`) reads and writes through `/api/v1`
//! with an API key, against the BFF of the test.

use std::path::PathBuf;
use std::process::Command;

use bizos_tests::{spawn_app, TestDb};
use serde_json::{json, Value};

/// The generator's virtualenv: `BIZOS_TEST_OPENAPI_CLIENT_VENV`, or where
/// `scripts/dev` puts it.
fn venv() -> PathBuf {
    let dir = std::env::var_os("BIZOS_TEST_OPENAPI_CLIENT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("BIZOS_TOOLS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/lib/bizos/tools"));
            tools.join("openapi-client-venv")
        });
    assert!(
        dir.join("bin/openapi-python-client").exists(),
        "no openapi-python-client in {}: run the tests with `scripts/dev test`, or \
         `scripts/dev test-cluster` once and export BIZOS_TEST_OPENAPI_CLIENT_VENV",
        dir.display()
    );
    dir
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_client_generated_from_the_integration_document_calls_api_v1_with_a_key() {
    let venv = venv();
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("generated").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let (status, key) = app
        .post_json(
            &admin,
            "/api/api-keys",
            &json!({"name": "generated client", "scopes": ["leads:read", "leads:write"]}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().unwrap().to_owned();

    // The document: servers, the /api/v1 paths of what keys may call, each
    // with its api_key requirement; nothing keys cannot call.
    let res = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], "/", "{}", doc["servers"]);
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            let security = op["security"].as_array().unwrap();
            assert!(
                security.iter().any(|r| r["api_key"].is_array()),
                "{method} {path}: {security:?}"
            );
        }
    }
    for absent in ["/api/v1/me", "/api/v1/ai/chat", "/api/v1/api-keys"] {
        assert!(!paths.contains_key(absent), "{absent} is not for keys");
    }
    let op = |method: &str, path: &str| -> (String, String) {
        let op = &doc["paths"][path][method];
        (
            op["tags"][0].as_str().unwrap().replace('-', "_"),
            op["operationId"].as_str().unwrap().to_owned(),
        )
    };
    let (list_tag, list_op) = op("get", "/api/v1/leads");
    let (create_tag, create_op) = op("post", "/api/v1/leads");

    // Generate the client from the document as served.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bizos.json");
    std::fs::write(&spec, serde_json::to_vec(&doc).unwrap()).unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "project_name_override: bizos-client\npackage_name_override: bizos_client\npost_hooks: []\n",
    )
    .unwrap();
    let project = dir.path().join("bizos-client");
    run(Command::new(venv.join("bin/openapi-python-client"))
        .arg("generate")
        .arg("--path")
        .arg(&spec)
        .arg("--config")
        .arg(&config)
        .arg("--output-path")
        .arg(&project));
    assert!(
        project.join("bizos_client/client.py").exists(),
        "no package generated in {}",
        project.display()
    );

    // One write and one read through the generated client, with the key.
    let script = dir.path().join("call.py");
    std::fs::write(&script, include_str!("generated_client.py")).unwrap();
    let calls = json!([
        {"tag": create_tag, "operation_id": create_op,
         "body": {"channel": "website", "company_name": "PT Klien Generasi"}},
        {"tag": list_tag, "operation_id": list_op, "body": null},
    ]);
    // On the blocking pool: the server of the test runs on this runtime.
    let mut python = Command::new(venv.join("bin/python"));
    python
        .arg(&script)
        .arg(&project)
        .arg(app.url(""))
        .arg(&secret)
        .arg(calls.to_string());
    let out = tokio::task::spawn_blocking(move || run(&mut python))
        .await
        .unwrap();
    let results: Value = serde_json::from_str(out.trim()).expect("the script's JSON");
    let created = &results[0];
    assert_eq!(created["status"], 201, "{created}");
    assert!(
        created["body"]["lead_no"]
            .as_str()
            .is_some_and(|n| n.starts_with("LEAD-")),
        "{created}"
    );
    let lead_id = created["body"]["lead_id"].as_str().unwrap();
    let listed = &results[1];
    assert_eq!(listed["status"], 200, "{listed}");
    assert!(
        listed["body"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["lead_id"] == lead_id && l["company_name"] == "PT Klien Generasi"),
        "{listed}"
    );
    // The client parsed both answers into its models (not an error, not None).
    for r in results.as_array().unwrap() {
        assert!(
            !["NoneType", "ErrorResponse"].contains(&r["parsed"].as_str().unwrap()),
            "{r}"
        );
    }
    // The lead is the key's: created_by names the key's principal.
    let (status, lead) = app.get_json(&admin, &format!("/api/leads/{lead_id}")).await;
    assert_eq!(status, 200, "{lead}");
    assert_eq!(lead["created_by"], key["key_id"], "{lead}");
}
