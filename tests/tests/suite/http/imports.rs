//! Staged imports through the BFF (IMP): upload → staged rows → processing
//! in batches in the background → progress and per-row errors. The
//! acceptance cases of imports: a 10k-row file with 3% bad rows, re-process,
//! re-upload, an interrupted process, and files that are refused whole.

use bizos_bff::auth::Caller;
use bizos_tests::{rpc, spawn_app, spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// `n` lead rows; every 33rd is bad in one of three ways (3%).
fn leads_csv(n: usize, prefix: &str) -> (Vec<u8>, usize) {
    let mut out =
        String::from("External Ref;Channel;Company Name;Contact Email;Contact Phone;City\n");
    let mut bad = 0;
    for i in 1..=n {
        let (channel, email) = match i % 33 {
            0 => {
                bad += 1;
                match (i / 33) % 3 {
                    0 => ("pigeon", format!("ops{i}@example.co.id")),
                    1 => ("website", "not-an-email".to_string()),
                    _ => ("", format!("ops{i}@example.co.id")),
                }
            }
            _ => ("website", format!("ops{i}@example.co.id")),
        };
        out.push_str(&format!(
            "{prefix}-{i};{channel};PT Impor {prefix} {i};{email};0812-{:04}-{:04};Jakarta\n",
            i / 10000,
            i % 10000
        ));
    }
    (out.into_bytes(), bad)
}

async fn wait_done(app: &TestApp, who: &Caller, import: &str) -> Value {
    for _ in 0..600 {
        let (status, body) = app
            .get_json(who, &format!("/api/imports/{import}?limit=1"))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["import"]["status"] == "done" {
            return body["import"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("import {import} did not finish");
}

#[tokio::test]
async fn ten_thousand_rows_with_three_percent_bad() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let outsider = db
        .create_user(db.create_tenant("globex").await, "super_admin")
        .await;
    let app = spawn_app_with(&db, &[("BIZOS_IMPORT_BATCH_ROWS", "1000")]).await;
    let (file, bad) = leads_csv(10_000, "CRM");
    assert_eq!(bad, 303);

    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            file.clone(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    assert_eq!(
        (staged["status"].as_str(), staged["total_rows"].as_i64()),
        (Some("staged"), Some(10_000))
    );
    let import = staged["import_id"].as_str().unwrap().to_owned();
    assert_eq!(
        count(&db, "select count(*) from leads").await,
        0,
        "staging writes no leads"
    );

    let (status, first) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(
        first["processed_rows"], 1000,
        "one batch in the request: {first}"
    );
    let done = wait_done(&app, &marketing, &import).await;
    assert_eq!(
        (done["ok_rows"].as_i64(), done["error_rows"].as_i64()),
        (Some(10_000 - 303), Some(303)),
        "{done}"
    );
    assert_eq!(count(&db, "select count(*) from leads").await, 10_000 - 303);

    // One error per bad row, naming the column, paged by row number.
    let mut errors = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = app
            .get_json(
                &marketing,
                &format!("/api/imports/{import}?errors_after={after}&limit=100"),
            )
            .await;
        let rows = page["errors"].as_array().unwrap().clone();
        errors.extend(rows);
        match page["next_errors_after"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(errors.len(), 303);
    assert!(
        errors
            .iter()
            .all(|e| e["row_no"].as_i64().unwrap() % 33 == 0),
        "only the bad rows"
    );
    let fields: std::collections::BTreeSet<&str> = errors
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["channel", "contact_email"].into_iter().collect(),
        "{:?}",
        &errors[..3]
    );

    // Re-process: nothing changes. Re-upload: the same leads, no duplicates.
    let (status, again) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(
        (status, again["ok_rows"].as_i64()),
        (200, Some(9697)),
        "{again}"
    );
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads-again.csv",
            file,
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let second = staged["import_id"].as_str().unwrap().to_owned();
    app.post_json(
        &marketing,
        &format!("/api/imports/{second}/process"),
        &json!(null),
        None,
    )
    .await;
    let done = wait_done(&app, &marketing, &second).await;
    assert_eq!(done["ok_rows"], 9697, "{done}");
    assert_eq!(count(&db, "select count(*) from leads").await, 9697);
    assert_eq!(count(&db, "select count(*) from customers").await, 9697);

    // Another tenant sees neither the import nor its file.
    let (status, _) = app
        .get_json(&outsider, &format!("/api/imports/{import}"))
        .await;
    assert_eq!(status, 404);
    let object = staged["object_id"].as_str().unwrap();
    assert_eq!(
        app.get_as(&outsider, &format!("/api/objects/{object}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_as(&marketing, &format!("/api/objects/{object}"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_interrupted_process_resumes_without_duplicates() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app_with(&db, &[("BIZOS_IMPORT_BATCH_ROWS", "500")]).await;
    let mut csv = String::from("company_name,npwp,email\n");
    for i in 1..=2500 {
        csv.push_str(&format!(
            "PT Pelanggan {i},{:02}.{:03}.{:03}.1-{:03}.000,finance{i}@pelanggan.co.id\n",
            i % 90 + 1,
            i % 1000,
            (i * 7) % 1000,
            i % 1000
        ));
    }
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "customers")],
            "customers.csv",
            csv.into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].clone();

    // Two batches, then the worker "dies" (nothing else runs).
    for _ in 0..2 {
        rpc(
            &db,
            &marketing,
            "select process_import(($1 #>> '{}')::uuid, 500)",
            std::slice::from_ref(&import),
        )
        .await
        .unwrap();
    }
    let (_, mid) = app
        .get_json(
            &marketing,
            &format!("/api/imports/{}", import.as_str().unwrap()),
        )
        .await;
    assert_eq!(
        (
            mid["import"]["status"].as_str(),
            mid["import"]["processed_rows"].as_i64()
        ),
        (Some("processing"), Some(1000))
    );
    let before = count(&db, "select count(*) from customers").await;
    assert_eq!(before, 1000);

    // Re-run from the API: the rest, and nothing twice.
    let (status, body) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{}/process", import.as_str().unwrap()),
            &json!(null),
            None,
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let done = wait_done(&app, &marketing, import.as_str().unwrap()).await;
    assert_eq!(done["processed_rows"], 2500, "{done}");
    let distinct = count(&db, "select count(distinct npwp_norm) from customers").await;
    assert_eq!(count(&db, "select count(*) from customers").await, distinct);
    assert_eq!(
        done["ok_rows"].as_i64().unwrap() + done["error_rows"].as_i64().unwrap(),
        2500
    );
}

#[tokio::test]
async fn unusable_files_are_refused_whole() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let finance = db.create_user(tenant, "finance").await;
    let app = spawn_app_with(&db, &[("BIZOS_UPLOAD_MAX_BYTES", "20000")]).await;
    let up = |who: &Caller, module: &str, name: &str, bytes: Vec<u8>| {
        let (app, who, module, name) = (&app, who.clone(), module.to_owned(), name.to_owned());
        async move {
            app.upload(
                &who,
                "/api/imports",
                &[("module", module.as_str())],
                &name,
                bytes,
                None,
            )
            .await
        }
    };

    let (status, err) = up(
        &marketing,
        "leads",
        "leads.csv",
        b"external_ref,channel,colour\nA,web,red\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("columns")),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("company_name"),
        "{err}"
    );
    let (status, err) = up(
        &marketing,
        "leads",
        "leads.csv",
        vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0],
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (415, Some("file")),
        "{err}"
    );
    let (status, err) = up(&marketing, "leads", "leads.csv", Vec::new()).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("file")),
        "{err}"
    );
    let (status, err) = up(
        &marketing,
        "leads",
        "leads.csv",
        b"external_ref,channel,company_name\n".to_vec(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("file")),
        "header only: {err}"
    );
    let (big, _) = leads_csv(1000, "BIG");
    let (status, err) = up(&marketing, "leads", "leads.csv", big).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (413, Some("file")),
        "{err}"
    );
    let (status, err) = up(&marketing, "planets", "p.csv", b"a\n1\n".to_vec()).await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("module")),
        "{err}"
    );
    let (status, _) = up(
        &marketing,
        "invoices",
        "i.csv",
        b"external_ref,subtotal,tax,customer_npwp\nX,1,0,01\n".to_vec(),
    )
    .await;
    assert_eq!(status, 403, "invoices are finance's");
    let (status, err) = app
        .upload(
            &finance,
            "/api/imports",
            &[],
            "i.csv",
            b"a\n1\n".to_vec(),
            None,
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("module")),
        "{err}"
    );

    for table in ["imports", "import_rows", "objects", "leads"] {
        assert_eq!(
            count(&db, &format!("select count(*) from {table}")).await,
            0,
            "{table} stays empty"
        );
    }
}

#[tokio::test]
async fn kpi_import_processes_in_the_background() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let app = spawn_app(&db).await;
    let today = bizos_tests::tenant_today();
    let mut csv = String::from("metric_key,value,entry_date,notes\n");
    for d in 1..=5u64 {
        csv.push_str(&format!(
            "quotations_sent,{d},{},week\n",
            today - chrono::Days::new(d)
        ));
    }
    csv.push_str(&format!("revenue,9,{today},auto metrics take no entries\n"));
    let (status, body) = app
        .upload(
            &alice,
            "/api/kpi/import",
            &[],
            "kpi.csv",
            csv.into_bytes(),
            Some("kpi-1"),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let done = wait_done(&app, &alice, body["import_id"].as_str().unwrap()).await;
    assert_eq!(
        (done["ok_rows"].as_i64(), done["error_rows"].as_i64()),
        (Some(5), Some(1)),
        "{done}"
    );
    let total: f64 =
        sqlx::query_scalar("select sum(value)::float8 from kpi_entries where source = 'IMPORTED'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(total, 15.0);
}

/// Files under the app's storage directory (bytes of uploads, finished or
/// not).
fn stored_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(app.files.path(), &mut out);
    out
}

#[tokio::test]
async fn csv_quote_errors_fail_the_whole_file_at_their_line() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    // An unterminated quote on line 3 would merge lines 3-5 into one row;
    // two stray quotes (lines 2 and 4) would merge lines 2-4.
    for (csv, line, says) in [
        (
            &b"external_ref,channel,company_name\nQ-1,web,PT Satu\nQ-2,web,\"PT Dua\nQ-3,web,PT Tiga\nQ-4,web,PT Empat\n"[..],
            3,
            "never closed",
        ),
        (
            &b"external_ref,channel,company_name\nQ-1,web,\"PT Satu\nQ-2,web,PT Dua\nQ-3,web,\"PT Tiga\"\nQ-4,web,PT Empat\n"[..],
            2,
            "closed on line 4",
        ),
    ] {
        let (status, err) = app
            .upload(
                &marketing,
                "/api/imports",
                &[("module", "leads")],
                "leads.csv",
                csv.to_vec(),
                None,
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("file")),
            "{err}"
        );
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&format!("line {line}:")) && message.contains(says),
            "{err}"
        );
    }
    for table in ["imports", "import_rows", "objects", "leads"] {
        assert_eq!(
            count(&db, &format!("select count(*) from {table}")).await,
            0,
            "{table} stays empty"
        );
    }
    // The stored bytes of the refused files are removed, then their upload
    // intents (in the background, after the response).
    let intents = async || count(&db, "select count(*) from upload_intents").await;
    let mut left = stored_files(&app);
    for _ in 0..50 {
        if left.is_empty() && intents().await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = stored_files(&app);
    }
    assert!(left.is_empty(), "bytes left behind: {left:?}");
    assert_eq!(intents().await, 0, "upload_intents stays empty");
}
