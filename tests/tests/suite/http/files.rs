//! File storage through the BFF (STG): streamed uploads with sniffing, size
//! limits and checksums; downloads only through RLS on the object's row.

use bizos_tests::{spawn_app, spawn_app_with, TestDb};
use serde_json::json;
use sha2::{Digest, Sha256};

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

#[tokio::test]
async fn upload_download_round_trip_and_tenancy() {
    let db = TestDb::new().await;
    let acme = db.create_tenant("acme").await;
    let globex = db.create_tenant("globex").await;
    let alice = db.create_user(acme, "salesperson").await;
    let ops = db.create_user(acme, "ops").await;
    let bob = db.create_user(acme, "salesperson").await;
    let outsider = db.create_user(globex, "super_admin").await;
    let app = spawn_app(&db).await;

    let (status, t) = app
        .post_json(
            &alice,
            "/api/tickets",
            &json!({"ticket_type": "general_request", "subject": "Dokumen", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let ticket = t["ticket_id"].as_str().unwrap();

    // 3 MB: several chunks, one storage part; claimed as an image, sniffed as PDF.
    let bytes = pdf(3 * 1024 * 1024);
    let (status, att) = app
        .upload(
            &alice,
            &format!("/api/tickets/{ticket}/attachments"),
            &[],
            "surat jalan.png",
            bytes.clone(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{att}");
    let object = &att["object"];
    assert_eq!(object["content_type"], "application/pdf");
    assert_eq!(object["size_bytes"], bytes.len());
    assert_eq!(object["sha256"], hex::encode(Sha256::digest(&bytes)));
    let object_id = object["object_id"].as_str().unwrap();

    // The uploader and ops of the ticket's department download the same bytes.
    for who in [&alice, &ops] {
        let res = app.get_as(who, &format!("/api/objects/{object_id}")).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/pdf");
        assert!(res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("surat%20jalan.png"));
        assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    // Another salesperson cannot see the ticket, so not its file; another tenant neither.
    for who in [&bob, &outsider] {
        let res = app.get_as(who, &format!("/api/objects/{object_id}")).await;
        assert_eq!(res.status(), 404);
    }
    let (_, detail) = app.get_json(&ops, &format!("/api/tickets/{ticket}")).await;
    assert_eq!(detail["attachments"][0]["object_id"], object_id);

    // The bytes live under tenant/bucket/object in the data directory.
    let stored = app
        .files
        .path()
        .join(acme.to_string())
        .join("ticket-attachments")
        .join(object_id);
    assert_eq!(std::fs::read(stored).unwrap(), bytes);

    // A generic upload into a bucket, and its rules.
    let (status, obj) = app
        .upload(
            &bob,
            "/api/objects",
            &[("bucket", "customer-documents")],
            "npwp.pdf",
            pdf(100),
            None,
        )
        .await;
    assert_eq!(status, 201, "{obj}");
    let res = app
        .get_as(
            &bob,
            &format!("/api/objects/{}", obj["object_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (status, err) = app
        .upload(
            &bob,
            "/api/objects",
            &[("bucket", "nope")],
            "a.pdf",
            pdf(10),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("bucket")),
        "{err}"
    );
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let db = TestDb::new().await;
    let acme = db.create_tenant("acme").await;
    let alice = db.create_user(acme, "salesperson").await;
    db.create_user(acme, "ops").await; // the OPS department exists
                                       // A 64 KiB ceiling for every upload in this app.
    let app = spawn_app_with(&db, &[("BIZOS_UPLOAD_MAX_BYTES", "65536")]).await;
    let (status, t) = app
        .post_json(
            &alice,
            "/api/tickets",
            &json!({"ticket_type": "service_request", "subject": "Rusak", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let path = format!(
        "/api/tickets/{}/attachments",
        t["ticket_id"].as_str().unwrap()
    );

    let exe = [b"MZ".to_vec(), vec![0x90; 500]].concat();
    let (status, err) = app
        .upload(&alice, &path, &[], "invoice.pdf", exe, None)
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (415, Some("unsupported_media_type")),
        "{err}"
    );
    assert_eq!(err["error"]["field"], "file");

    let (status, err) = app
        .upload(&alice, &path, &[], "big.pdf", pdf(200_000), None)
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (413, Some("file")),
        "{err}"
    );

    let (status, err) = app
        .upload(&alice, &path, &[], "empty.pdf", Vec::new(), None)
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("file")),
        "{err}"
    );

    let res = app
        .request_as(&alice, reqwest::Method::POST, &path, None)
        .multipart(reqwest::multipart::Form::new().text("note", "no file"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // Not multipart at all (JSON, raw bytes, a multipart type without its
    // boundary): 400 naming the content-type, on every upload route.
    for (route, content_type, body) in [
        (
            path.as_str(),
            "application/json",
            b"{\"file\": \"x\"}".to_vec(),
        ),
        (path.as_str(), "application/pdf", pdf(10)),
        (path.as_str(), "multipart/form-data", pdf(10)),
        ("/api/objects", "text/plain", b"bucket=media".to_vec()),
        ("/api/imports", "text/csv", b"company_name\nPT A\n".to_vec()),
    ] {
        let res = app
            .request_as(&alice, reqwest::Method::POST, route, None)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, err) = bizos_tests::status_and_json(res).await;
        assert_eq!(
            (
                status,
                err["error"]["code"].as_str(),
                err["error"]["field"].as_str()
            ),
            (400, Some("bad_request"), Some("content-type")),
            "{route} {content_type}: {err}"
        );
    }
    // Without any content-type.
    let res = app
        .request_as(&alice, reqwest::Method::POST, &path, None)
        .send()
        .await
        .unwrap();
    let (status, err) = bizos_tests::status_and_json(res).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("content-type")),
        "{err}"
    );

    let (status, _) = app
        .upload(
            &alice,
            &format!("/api/tickets/{}/attachments", uuid::Uuid::new_v4()),
            &[],
            "a.pdf",
            pdf(10),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Nothing registered, and no stray bytes once the background removal ran.
    let objects: i64 = sqlx::query_scalar("select count(*) from objects")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(objects, 0);
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = count_files(app.files.path());
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "no bytes of refused uploads are kept");
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn kpi_evidence_is_stored_and_follows_its_entry() {
    let db = TestDb::new().await;
    let acme = db.create_tenant("acme").await;
    let manager = db.create_user(acme, "sales_manager").await;
    let alice = db.create_user(acme, "salesperson").await;
    let bob = db.create_user(acme, "salesperson").await;
    db.set_manager(&alice, &manager).await;
    let app = spawn_app(&db).await;
    let (status, entry) = app
        .post_json(
            &alice,
            "/api/kpi/entries",
            &json!({"metric_key": "quotations_sent", "value": 3}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    let entry_id = entry["entry_id"].as_str().unwrap();

    let png = [
        vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a],
        vec![7; 4000],
    ]
    .concat();
    let (status, ev) = app
        .upload(
            &alice,
            "/api/kpi/evidence",
            &[("entry_id", entry_id)],
            "bukti.png",
            png.clone(),
            Some("ev-1"),
        )
        .await;
    assert_eq!(status, 201, "{ev}");
    assert_eq!(ev["object"]["content_type"], "image/png");
    let object = ev["object"]["object_id"].as_str().unwrap().to_owned();
    // A retried upload with the same key is the same evidence, stored once.
    let (status, again) = app
        .upload(
            &alice,
            "/api/kpi/evidence",
            &[("entry_id", entry_id)],
            "bukti.png",
            png.clone(),
            Some("ev-1"),
        )
        .await;
    assert_eq!((status, &again), (201, &ev));

    // The manager sees the team's evidence; another salesperson does not.
    let res = app
        .get_as(&manager, &format!("/api/objects/{object}"))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), png.as_slice());
    assert_eq!(
        app.get_as(&bob, &format!("/api/objects/{object}"))
            .await
            .status(),
        404
    );

    // Bad inputs: no entry_id first, an unknown entry, someone else's entry.
    let (status, err) = app
        .upload(&alice, "/api/kpi/evidence", &[], "a.png", png.clone(), None)
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("entry_id")),
        "{err}"
    );
    let (status, err) = app
        .upload(
            &alice,
            "/api/kpi/evidence",
            &[("entry_id", "nope")],
            "a.png",
            png.clone(),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("entry_id")),
        "{err}"
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let (status, _) = app
        .upload(
            &alice,
            "/api/kpi/evidence",
            &[("entry_id", unknown.as_str())],
            "a.png",
            png.clone(),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .upload(
            &bob,
            "/api/kpi/evidence",
            &[("entry_id", entry_id)],
            "a.png",
            png,
            None,
        )
        .await;
    assert_eq!(status, 404, "bob cannot see alice's entry");
    let objects: i64 = sqlx::query_scalar("select count(*) from objects")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(objects, 1);
}
