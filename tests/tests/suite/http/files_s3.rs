//! The S3 backend of the file storage against a real S3-compatible server
//! on loopback (moto's server, started by `scripts/dev test` at
//! `BIZOS_TEST_S3_ENDPOINT` with bucket `bizos-test`): a multi-part upload,
//! the download, and the removal of a refused upload.

use bizos_tests::{spawn_app_with, TestDb};
use serde_json::json;
use sha2::{Digest, Sha256};

fn endpoint() -> String {
    std::env::var("BIZOS_TEST_S3_ENDPOINT").expect(
        "BIZOS_TEST_S3_ENDPOINT must name an S3-compatible server on loopback with bucket \
         bizos-test (scripts/dev test starts one)",
    )
}

#[tokio::test]
async fn s3_round_trip() {
    let endpoint = endpoint();
    let db = TestDb::new().await;
    let acme = db.create_tenant("acme").await;
    let alice = db.create_user(acme, "salesperson").await;
    db.create_user(acme, "ops").await;
    let app = spawn_app_with(
        &db,
        &[
            ("BIZOS_STORAGE", "s3"),
            ("BIZOS_S3_ENDPOINT", endpoint.as_str()),
            ("BIZOS_S3_BUCKET", "bizos-test"),
            ("BIZOS_S3_ACCESS_KEY_ID", "test"),
            ("BIZOS_S3_SECRET_ACCESS_KEY", "test"),
        ],
    )
    .await;
    let (status, t) = app
        .post_json(
            &alice,
            "/api/tickets",
            &json!({"ticket_type": "general_request", "subject": "Foto", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let path = format!(
        "/api/tickets/{}/attachments",
        t["ticket_id"].as_str().unwrap()
    );

    // 20 MB: three parts of a multipart upload (8 MiB each, the last smaller).
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.extend((0..20_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let (status, att) = app
        .upload(&alice, &path, &[], "scan.pdf", bytes.clone(), None)
        .await;
    assert_eq!(status, 201, "{att}");
    assert_eq!(att["object"]["sha256"], hex::encode(Sha256::digest(&bytes)));
    let object_id = att["object"]["object_id"].as_str().unwrap().to_owned();
    let res = app
        .get_as(&alice, &format!("/api/objects/{object_id}"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // The object is where the database says it is.
    let key = format!("{acme}/ticket-attachments/{object_id}");
    let head = reqwest::Client::new()
        .head(format!("{endpoint}/bizos-test/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);

    // A refused upload (another tenant's ticket is invisible) leaves no object.
    let (status, _) = app
        .upload(
            &alice,
            &format!("/api/tickets/{}/attachments", uuid::Uuid::new_v4()),
            &[],
            "x.pdf",
            bytes[..1000].to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let mut listed = String::new();
    for _ in 0..50 {
        listed = reqwest::get(format!("{endpoint}/bizos-test?list-type=2&prefix={acme}/"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if listed.matches("<Key>").count() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed.matches("<Key>").count(), 1, "{listed}");
}
