//! Staged imports end to end below HTTP: a file is parsed by the BFF's
//! library, staged with COPY in the caller's transaction exactly as the
//! upload route does it, and processed one batch per transaction.

use std::io::Write;
use std::path::PathBuf;

use bizos_bff::auth::Caller;
use bizos_bff::imports::{self, ParseError, StageError};
use bizos_tests::{code, field, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// A file in the system temp directory, removed on drop.
struct Upload(PathBuf);

impl Upload {
    fn new(bytes: &[u8]) -> Upload {
        let path =
            std::env::temp_dir().join(format!("bizos-import-test-{}", Uuid::new_v4().simple()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        Upload(path)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the upload route does in one transaction: register the object,
/// parse, import_create, stage, import_stage_finish, commit.
async fn upload(
    db: &TestDb,
    who: &Caller,
    module: &str,
    bytes: &[u8],
) -> Result<Value, StageError> {
    let file = Upload::new(bytes);
    let mut stream = imports::open_rows(file.0.clone()).await?;
    let mut tx = db.as_user(who).await;
    // An upload starts with its intent (V15); object_create consumes it.
    let intent: Value = sqlx::query_scalar("select upload_begin('import-files')")
        .fetch_one(&mut *tx)
        .await?;
    let object: Uuid = intent["object_id"].as_str().unwrap().parse().unwrap();
    sqlx::query("select object_create($1)")
        .bind(
            json!({"object_id": object, "bucket": "import-files", "file_name": "upload.csv",
                     "content_type": stream.format.content_type(), "size_bytes": bytes.len(),
                     "sha256": "ab".repeat(32)}),
        )
        .execute(&mut *tx)
        .await?;
    let created: Value = sqlx::query_scalar("select import_create($1)")
        .bind(
            json!({"module": module, "object_id": object, "file_name": "upload.csv",
                     "columns": stream.header}),
        )
        .fetch_one(&mut *tx)
        .await?;
    let id = Uuid::parse_str(created["import_id"].as_str().unwrap()).unwrap();
    let header = stream.header.clone();
    let staged = imports::stage_rows(&mut tx, &mut stream.rows, &header).await?;
    let state: Value = sqlx::query_scalar("select import_stage_finish($1)")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(state["total_rows"].as_u64(), Some(staged));
    tx.commit().await?;
    Ok(state)
}

/// One process_import call in a transaction of its own.
async fn process_batch(db: &TestDb, who: &Caller, id: &Value, batch: i32) -> Value {
    let mut tx = db.as_user(who).await;
    let state: Value = sqlx::query_scalar("select process_import($1::uuid, $2)")
        .bind(id.as_str().unwrap())
        .bind(batch)
        .fetch_one(&mut *tx)
        .await
        .expect("process_import");
    tx.commit().await.unwrap();
    state
}

async fn process_all(db: &TestDb, who: &Caller, id: &Value, batch: i32) -> Value {
    loop {
        let state = process_batch(db, who, id, batch).await;
        if state["pending_rows"] == json!(0) {
            return state;
        }
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// A CSV of `n` customers; every 33rd row (3 %) has an invalid e-mail.
fn customers_csv(n: usize) -> (Vec<u8>, usize) {
    let mut csv = String::from("Company Name;Email;City\n");
    let mut bad = 0;
    for i in 1..=n {
        if i % 33 == 0 {
            bad += 1;
            csv.push_str(&format!("PT Buruk {i};not-an-email-{i};Bandung\n"));
        } else {
            csv.push_str(&format!(
                "\"PT Pelanggan {i}; Tbk\";cust{i}@example.co.id;Jakarta\n"
            ));
        }
    }
    (csv.into_bytes(), bad)
}

#[tokio::test]
async fn ten_thousand_rows_with_three_percent_bad() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-10k").await;
    let mm = db.create_user(tenant, "marketing_manager").await;
    let (bytes, bad) = customers_csv(10_000);

    let staged = upload(&db, &mm, "customers", &bytes).await.unwrap();
    assert_eq!(staged["status"], "staged");
    assert_eq!(staged["total_rows"], 10_000);
    let id = staged["import_id"].clone();

    // One batch, then a batch whose transaction is lost, then the rest.
    let first = process_batch(&db, &mm, &id, 1000).await;
    assert_eq!(first["status"], "processing");
    assert_eq!(first["processed_rows"], 1000);
    {
        let mut tx = db.as_user(&mm).await;
        let _: Value = sqlx::query_scalar("select process_import($1::uuid, 1000)")
            .bind(id.as_str().unwrap())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    // Progress is readable by the uploader between batches.
    let mut tx = db.as_user(&mm).await;
    let processed: i32 =
        sqlx::query_scalar("select processed_rows from imports where import_id = $1::uuid")
            .bind(id.as_str().unwrap())
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(processed, 1000);

    let done = process_all(&db, &mm, &id, 1000).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["ok_rows"], 10_000 - bad);
    assert_eq!(done["error_rows"], bad);
    let good = (10_000 - bad) as i64;
    assert_eq!(
        count(
            &db,
            "select count(*) from customers where email like 'cust%@example.co.id'"
        )
        .await,
        good
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from customers where company_name like 'PT Buruk%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "select count(*) from import_rows where status = 'error' and error_field = 'email' and error_message like 'email: %not a valid e-mail%'").await,
        bad as i64
    );
    // The lead pages error rows by row number.
    let mut tx = db.as_user(&mm).await;
    let page: Vec<(i32, String)> = sqlx::query_as(
        "select row_no, error_field from import_rows
          where import_id = $1::uuid and status = 'error' and row_no > $2 order by row_no limit 3",
    )
    .bind(id.as_str().unwrap())
    .bind(33)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        page,
        vec![
            (66, "email".into()),
            (99, "email".into()),
            (132, "email".into())
        ]
    );

    // Re-processing changes nothing; the same file again duplicates nothing.
    let again = process_batch(&db, &mm, &id, 1000).await;
    assert_eq!(again, done);
    let second = upload(&db, &mm, "customers", &bytes).await.unwrap();
    let done2 = process_all(&db, &mm, &second["import_id"], 5000).await;
    assert_eq!(done2["ok_rows"], 10_000 - bad);
    assert_eq!(count(&db, "select count(*) from customers").await, good);
}

#[tokio::test]
async fn xlsx_upload_of_kpi_entries() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-xlsx").await;
    let sm = db.create_user(tenant, "sales_manager").await;
    // Made with rust_xlsxwriter: a header row, numbers and date-formatted
    // cells (15 Jan 2026), one row of an AUTO metric.
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../bff/tests/fixtures/imports/kpi_entries.xlsx"),
    )
    .unwrap();
    let staged = upload(&db, &sm, "kpi_entries", &bytes).await.unwrap();
    assert_eq!(
        staged["columns"],
        json!(["metric_key", "value", "entry_date", "notes"])
    );
    let done = process_all(&db, &sm, &staged["import_id"], 1000).await;
    assert_eq!(
        (done["ok_rows"].clone(), done["error_rows"].clone()),
        (json!(2), json!(1))
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select metric_key, value::text, entry_date::text from kpi_entries where source = 'IMPORTED' order by metric_key",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                "customer_satisfaction".into(),
                "4.2500".into(),
                "2026-01-15".into()
            ),
            (
                "quotations_sent".into(),
                "12.0000".into(),
                "2026-01-15".into()
            ),
        ]
    );
}

#[tokio::test]
async fn unusable_files_write_nothing() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-bad").await;
    let mm = db.create_user(tenant, "marketing_manager").await;

    // Not a spreadsheet, empty: refused before anything is written.
    assert!(matches!(
        upload(&db, &mm, "customers", b"\x89PNG\r\n\x1a\n\0\0binary").await,
        Err(StageError::Parse(ParseError::NotASpreadsheet(_)))
    ));
    assert!(matches!(
        upload(&db, &mm, "customers", b"").await,
        Err(StageError::Parse(ParseError::Empty))
    ));
    // A wrong header: import_create names the columns.
    let err = upload(&db, &mm, "customers", b"name,colour\nPT Satu,red\n")
        .await
        .unwrap_err();
    let StageError::Db(e) = err else {
        panic!("expected a database error, got {err:?}")
    };
    assert_eq!(
        (code(&e), field(&e)),
        ("P0001".into(), Some("columns".into()))
    );
    assert!(e.to_string().contains("name, colour"), "{e}");
    // A header without rows.
    let err = upload(&db, &mm, "customers", b"company_name,city\n")
        .await
        .unwrap_err();
    let StageError::Db(e) = err else {
        panic!("expected a database error, got {err:?}")
    };
    assert_eq!((code(&e), field(&e)), ("P0001".into(), Some("file".into())));
    // A row with more cells than the header, after many good rows: the COPY
    // is abandoned and the transaction rolled back.
    let mut csv = String::from("company_name,city\n");
    for i in 0..5000 {
        csv.push_str(&format!("PT {i},Medan\n"));
    }
    csv.push_str("PT Ragged,Medan,extra\n");
    match upload(&db, &mm, "customers", csv.as_bytes()).await {
        Err(StageError::Parse(ParseError::Malformed { line: 5002, .. })) => {}
        other => panic!("expected a ragged row error, got {other:?}"),
    }
    assert_eq!(count(&db, "select count(*) from imports").await, 0);
    assert_eq!(count(&db, "select count(*) from import_rows").await, 0);
    assert_eq!(count(&db, "select count(*) from objects").await, 0);
}

#[tokio::test]
async fn cells_arrive_as_sent() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-cells").await;
    let mm = db.create_user(tenant, "marketing_manager").await;
    let csv = "\u{feff}Company Name,Address,City\n\
               \"PT \"\"Kutip\"\" \\ Backslash\",\"Jl. Satu\tNo. 2\nLantai 3\",\n\
               PT Dua,,Surabaya\n";
    let staged = upload(&db, &mm, "customers", csv.as_bytes()).await.unwrap();
    let rows: Vec<(i32, Value)> =
        sqlx::query_as("select row_no, data from import_rows order by row_no")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            (
                1,
                json!({"company_name": "PT \"Kutip\" \\ Backslash", "address": "Jl. Satu\tNo. 2\nLantai 3"})
            ),
            (2, json!({"company_name": "PT Dua", "city": "Surabaya"})),
        ]
    );
    let done = process_all(&db, &mm, &staged["import_id"], 1000).await;
    assert_eq!(done["ok_rows"], 2);
}

#[tokio::test]
async fn two_processors_of_one_import_take_turns() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-race").await;
    let mm = db.create_user(tenant, "marketing_manager").await;
    let (bytes, bad) = customers_csv(3000);
    let staged = upload(&db, &mm, "customers", &bytes).await.unwrap();
    let id = staged["import_id"].clone();
    let (a, b) = tokio::join!(
        process_all(&db, &mm, &id, 250),
        process_all(&db, &mm, &id, 400)
    );
    for done in [&a, &b] {
        assert_eq!(done["status"], "done");
        assert_eq!(done["ok_rows"], 3000 - bad);
        assert_eq!(done["error_rows"], bad);
    }
    assert_eq!(
        count(&db, "select count(*) from customers").await,
        (3000 - bad) as i64
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from import_rows where status = 'pending'"
        )
        .await,
        0
    );
}

/// An import's rows go with the import, deleted directly or with its
/// tenant (V38 dropped the foreign key that cascaded; a trigger does it),
/// and only its own rows.
#[tokio::test]
async fn rows_go_with_their_import() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("imports-delete").await;
    let other = db.create_tenant("imports-delete-other").await;
    let mm = db.create_user(tenant, "marketing_manager").await;
    let om = db.create_user(other, "marketing_manager").await;
    let (bytes, _) = customers_csv(40);
    let kept = upload(&db, &mm, "customers", &bytes).await.unwrap();
    let gone = upload(&db, &mm, "customers", &bytes).await.unwrap();
    upload(&db, &om, "customers", &bytes).await.unwrap();
    let rows_of = |id: &Value| {
        format!(
            "select count(*) from import_rows where import_id = '{}'",
            id.as_str().unwrap()
        )
    };
    assert_eq!(count(&db, &rows_of(&kept["import_id"])).await, 40);
    assert_eq!(count(&db, &rows_of(&gone["import_id"])).await, 40);

    sqlx::query("delete from imports where import_id = $1::uuid")
        .bind(gone["import_id"].as_str().unwrap())
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(count(&db, &rows_of(&gone["import_id"])).await, 0);
    assert_eq!(count(&db, &rows_of(&kept["import_id"])).await, 40);

    sqlx::query("delete from tenants where tenant_id = $1")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let left = |t: Uuid| format!("select count(*) from import_rows where tenant_id = '{t}'");
    assert_eq!(count(&db, &left(tenant)).await, 0);
    assert_eq!(count(&db, &left(other)).await, 40);
}
