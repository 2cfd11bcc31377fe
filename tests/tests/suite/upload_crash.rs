//! A BFF killed with SIGKILL in the middle of an upload leaves nothing of it
//! behind once it is started again, and the sweep that removes
//! it removes nothing else: not a registered file, and not the upload in
//! progress of another, live BFF process. The sweep is a `storage.sweep`
//! job of `bizos worker`, one per tenant with dead uploads,
//! enqueued when a BFF starts and every sweep period by the worker.
//!
//! The `bizos` command runs as a child process (the test package's own
//! build of it, tests/src/bin/bizos-under-test.rs). Local storage always; S3 against the moto
//! server at `BIZOS_TEST_S3_ENDPOINT` (bucket `bizos-test`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bizos_bff::auth::{issue_token, Caller};
use bizos_bff::config::StorageSettings;
use bizos_bff::files::sweep::OWNER_LOCK_CLASS;
use bizos_tests::{TestDb, TEST_JWT_SECRET};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// The `bizos` command of this build (tests/src/bin/bizos-under-test.rs).
fn bizos_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bizos-under-test"))
}

enum Backend {
    Local(tempfile::TempDir),
    S3 { endpoint: String },
}

impl Backend {
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Backend::Local(dir) => vec![
                ("BIZOS_STORAGE".into(), "local".into()),
                ("BIZOS_DATA_DIR".into(), dir.path().display().to_string()),
            ],
            Backend::S3 { endpoint } => vec![
                ("BIZOS_STORAGE".into(), "s3".into()),
                ("BIZOS_S3_ENDPOINT".into(), endpoint.clone()),
                ("BIZOS_S3_BUCKET".into(), "bizos-test".into()),
                ("BIZOS_S3_ACCESS_KEY_ID".into(), "test".into()),
                ("BIZOS_S3_SECRET_ACCESS_KEY".into(), "test".into()),
            ],
        }
    }

    /// The same backend as settings (an in-process worker).
    fn settings(&self) -> StorageSettings {
        match self {
            Backend::Local(dir) => StorageSettings::Local {
                root: dir.path().to_owned(),
            },
            Backend::S3 { endpoint } => StorageSettings::S3 {
                bucket: "bizos-test".into(),
                region: "us-east-1".into(),
                endpoint: Some(endpoint.clone()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".to_owned().into()),
            },
        }
    }

    /// Whatever storage holds under `key`: the object and unfinished parts
    /// (local staging files `<key>#<n>`; S3 multipart uploads).
    async fn leftovers(&self, key: &str) -> Vec<String> {
        match self {
            Backend::Local(dir) => {
                let path = dir.path().join(key);
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let Ok(entries) = std::fs::read_dir(path.parent().unwrap()) else {
                    return Vec::new();
                };
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n == &name || n.starts_with(&format!("{name}#")))
                    .collect()
            }
            Backend::S3 { endpoint } => {
                let get = |url: String| async move {
                    reqwest::get(url).await.unwrap().text().await.unwrap()
                };
                let objects = get(format!("{endpoint}/bizos-test?list-type=2&prefix={key}")).await;
                let uploads = get(format!("{endpoint}/bizos-test?uploads&prefix={key}")).await;
                let mut out: Vec<String> = objects
                    .split("<Key>")
                    .skip(1)
                    .map(|s| format!("object {}", s.split('<').next().unwrap_or_default()))
                    .collect();
                out.extend(
                    uploads
                        .split("<UploadId>")
                        .skip(1)
                        .map(|s| format!("upload {}", s.split('<').next().unwrap_or_default())),
                );
                out
            }
        }
    }

    /// Stores a part of an unfinished upload under `key`, as a BFF does;
    /// returns the multipart id for the intent (S3).
    async fn unfinished_upload(&self, key: &str) -> Option<String> {
        match self {
            Backend::Local(dir) => {
                let path = dir.path().join(format!("{key}#1"));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, b"%PDF-1.4 the first bytes of a live upload").unwrap();
                None
            }
            Backend::S3 { endpoint } => {
                let http = reqwest::Client::new();
                let created = http
                    .post(format!("{endpoint}/bizos-test/{key}?uploads"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                let id = created
                    .split("<UploadId>")
                    .nth(1)
                    .and_then(|s| s.split('<').next())
                    .unwrap_or_else(|| panic!("no upload id in {created}"))
                    .to_owned();
                let part = http
                    .put(format!(
                        "{endpoint}/bizos-test/{key}?partNumber=1&uploadId={id}"
                    ))
                    .body(b"%PDF-1.4 the first bytes of a live upload".to_vec())
                    .send()
                    .await
                    .unwrap();
                assert!(part.status().is_success(), "{}", part.text().await.unwrap());
                Some(id)
            }
        }
    }
}

/// A `bizos serve` child process.
struct Bff {
    child: Child,
    address: String,
}

impl Bff {
    async fn start(db: &TestDb, backend: &Backend, tmp: &Path) -> Bff {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(bizos_bin());
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", tmp)
            .env("BIZOS_LISTEN", format!("127.0.0.1:{port}"))
            .env("BIZOS_APP_URL", db.url("bizos_app"))
            .env("BIZOS_JWT_SECRET", TEST_JWT_SECRET)
            .env("BIZOS_DB_MAX_CONNECTIONS", "4")
            .env("RUST_LOG", "warn")
            .envs(backend.env())
            .stdin(Stdio::null());
        if std::env::var("TEST_LOG").is_err() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let mut child = cmd.spawn().expect("start bizos serve");
        let address = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("bizos serve exited: {status}");
            }
            if let Ok(r) = reqwest::get(format!("{address}/healthz")).await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "bizos serve did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Bff { child, address }
    }

    fn kill(&mut self) {
        // SIGKILL: no destructor, no graceful shutdown, no cleanup.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// A `bizos worker` child process (it runs the `storage.sweep` jobs), with
/// the same storage settings as the BFFs. Its own periodic sweep is an hour
/// away: the sweeps this test sees are the ones a BFF enqueues at start.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(db: &TestDb, backend: &Backend) -> WorkerProcess {
        let mut cmd = Command::new(bizos_bin());
        cmd.arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIZOS_WORKER_URL", db.url("bizos_worker"))
            .env("BIZOS_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
            .env("BIZOS_WORKER_POLL_SECS", "1")
            .env("BIZOS_WORKER_SWEEP_EVERY_SECS", "3600")
            .env("RUST_LOG", "warn")
            .envs(backend.env())
            .stdin(Stdio::null());
        if std::env::var("TEST_LOG").is_err() {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        WorkerProcess(cmd.spawn().expect("start bizos worker"))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Bff {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(who: &Caller) -> String {
    issue_token(
        TEST_JWT_SECRET.as_bytes(),
        who.tenant_id,
        who.user_id,
        who.claims["app_role"].as_str(),
        Duration::from_secs(600),
    )
    .unwrap()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// Polls `check` for up to 20 s.
async fn eventually<F: AsyncFn() -> bool>(what: &str, check: F) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn crash_mid_upload_leaves_nothing(backend: Backend) {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let sp = db.create_user(tenant, "salesperson").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let tmp = tempfile::tempdir().unwrap();
    let mut bff = Bff::start(&db, &backend, tmp.path()).await;
    let _worker = WorkerProcess::start(&db, &backend);
    let http = reqwest::Client::new();

    // 1. A finished, registered upload: it must survive every sweep.
    let mut kept = b"%PDF-1.4\n".to_vec();
    kept.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let res = http
        .post(format!("{}/api/objects", bff.address))
        .bearer_auth(token(&sp))
        .multipart(
            reqwest::multipart::Form::new()
                .text("bucket", "customer-documents")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(kept.clone()).file_name("kept.pdf"),
                ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let kept_obj: Value = res.json().await.unwrap();
    let kept_key = kept_obj["object_key"].as_str().unwrap().to_owned();
    assert_eq!(backend.leftovers(&kept_key).await.len(), 1);

    // 2. An upload in progress in another, live BFF process: a session that
    //    holds its owner lock, its intent and its first bytes.
    let mut live = PgConnection::connect(&db.url("bizos_app")).await.unwrap();
    let live_lock = 424_242;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(OWNER_LOCK_CLASS)
        .bind(live_lock)
        .fetch_one(&mut live)
        .await
        .unwrap();
    assert!(locked);
    let (live_id, live_key): (Uuid, String) = sqlx::query_as(
        "insert into upload_intents (tenant_id, bucket, owner_lock, created_by)
         values ($1, 'media', $2, $3) returning object_id, object_key",
    )
    .bind(tenant)
    .bind(live_lock)
    .bind(sp.user_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let live_multipart = backend.unfinished_upload(&live_key).await;
    sqlx::query("update upload_intents set multipart_id = $2 where object_id = $1")
        .bind(live_id)
        .bind(&live_multipart)
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(backend.leftovers(&live_key).await.len(), 1);

    // 3. A large import, streamed by hand so that it can be cut off: the
    //    body announces 64 MB, 24 MB are sent, then the BFF is killed.
    let boundary = "crash-test-boundary";
    let mut head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"module\"\r\n\r\nleads\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nexternal_ref,channel,company_name,contact_email\r\n"
    )
    .into_bytes();
    let total = 64 * 1024 * 1024;
    let addr = bff.address.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /api/imports HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
                 Content-Type: multipart/form-data; boundary={boundary}\r\n\
                 Content-Length: {total}\r\n\r\n",
                token(&marketing)
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    socket.write_all(&head).await.unwrap();
    head.clear();
    let mut sent = 0usize;
    let mut row = 0u64;
    while sent < 24 * 1024 * 1024 {
        let mut chunk = Vec::with_capacity(1 << 20);
        while chunk.len() < (1 << 20) {
            row += 1;
            chunk.extend_from_slice(
                format!("CRASH-{row},web,PT Pelanggan {row},kontak{row}@pelanggan.co.id\r\n")
                    .as_bytes(),
            );
        }
        socket.write_all(&chunk).await.unwrap();
        sent += chunk.len();
    }
    socket.flush().await.unwrap();
    // Wait until the BFF has committed its intent and stored bytes.
    let dead: std::sync::Arc<std::sync::Mutex<Option<(Uuid, String)>>> = Default::default();
    eventually("the import's intent and its first stored part", async || {
        let row: Option<(Uuid, String, Option<String>)> = sqlx::query_as(
            "select object_id, object_key, multipart_id from upload_intents where bucket = 'import-files'",
        )
        .fetch_optional(&db.owner)
        .await
        .unwrap();
        let Some((id, key, multipart)) = row else {
            return false;
        };
        let stored = match &backend {
            Backend::Local(dir) => std::fs::metadata(dir.path().join(format!("{key}#1")))
                .map(|m| m.len() >= 8 * 1024 * 1024)
                .unwrap_or(false),
            Backend::S3 { .. } => multipart.is_some() && !backend.leftovers(&key).await.is_empty(),
        };
        *dead.lock().unwrap() = Some((id, key));
        stored
    })
    .await;
    let (dead_id, dead_key) = dead.lock().unwrap().clone().unwrap();
    bff.kill();
    drop(socket);

    // The crash left the bytes and the intent behind (what the sweep must
    // find), and the spooled copy of the import is gone with the process.
    assert!(
        !backend.leftovers(&dead_key).await.is_empty(),
        "the killed upload left nothing to sweep: the test proves nothing"
    );
    assert_eq!(
        count(
            &db,
            &format!("select count(*) from upload_intents where object_id = '{dead_id}'")
        )
        .await,
        1
    );
    let spooled: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
    assert!(
        spooled.is_empty(),
        "spooled bytes left in TMPDIR: {spooled:?}"
    );

    // 4. Restart: the BFF enqueues a sweep at start, the worker removes the
    //    dead upload's bytes and intent.
    let bff = Bff::start(&db, &backend, tmp.path()).await;
    eventually("the dead upload's intent is swept", async || {
        count(
            &db,
            &format!("select count(*) from upload_intents where object_id = '{dead_id}'"),
        )
        .await
            == 0
    })
    .await;
    assert_eq!(
        backend.leftovers(&dead_key).await,
        Vec::<String>::new(),
        "bytes of the killed upload are left"
    );

    // Nothing else was removed: the registered file (same bytes through the
    // API), and the live process's upload with its intent.
    let res = http
        .get(format!(
            "{}/api/objects/{}",
            bff.address,
            kept_obj["object_id"].as_str().unwrap()
        ))
        .bearer_auth(token(&sp))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), kept.as_slice());
    assert_eq!(count(&db, "select count(*) from objects").await, 1);
    assert_eq!(
        count(
            &db,
            &format!("select count(*) from upload_intents where object_id = '{live_id}'")
        )
        .await,
        1,
        "the live process's upload intent was swept"
    );
    assert_eq!(backend.leftovers(&live_key).await.len(), 1);
    for table in ["imports", "import_rows", "leads"] {
        assert_eq!(
            count(&db, &format!("select count(*) from {table}")).await,
            0,
            "{table}"
        );
    }
    drop(bff);

    // 5. Once that process is gone too (its lock released), its upload is
    //    swept at the next start.
    live.close().await.unwrap();
    let _bff = Bff::start(&db, &backend, tmp.path()).await;
    eventually(
        "the other process's upload is swept once it died",
        async || count(&db, "select count(*) from upload_intents").await == 0,
    )
    .await;
    assert_eq!(backend.leftovers(&live_key).await, Vec::<String>::new());
    assert_eq!(backend.leftovers(&kept_key).await.len(), 1);
}

/// An upload intent as a BFF leaves it: owned by `owner_lock`, with its
/// first bytes in storage. Returns its id and key.
async fn intent_with_bytes(
    db: &TestDb,
    backend: &Backend,
    tenant: Uuid,
    user: Uuid,
    owner_lock: i32,
) -> (Uuid, String) {
    let (id, key): (Uuid, String) = sqlx::query_as(
        "insert into upload_intents (tenant_id, bucket, owner_lock, created_by)
         values ($1, 'media', $2, $3) returning object_id, object_key",
    )
    .bind(tenant)
    .bind(owner_lock)
    .bind(user)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let multipart = backend.unfinished_upload(&key).await;
    sqlx::query("update upload_intents set multipart_id = $2 where object_id = $1")
        .bind(id)
        .bind(&multipart)
        .execute(&db.owner)
        .await
        .unwrap();
    assert_eq!(backend.leftovers(&key).await.len(), 1);
    (id, key)
}

async fn intent_exists(db: &TestDb, id: Uuid) -> bool {
    count(
        db,
        &format!("select count(*) from upload_intents where object_id = '{id}'"),
    )
    .await
        == 1
}

/// `storage.sweep` jobs run by a worker remove the bytes and intents of dead
/// uploads (their owner lock released), tenant by tenant, and never those
/// of a live upload (its owner lock held), until that one dies too: then
/// the worker's own periodic enqueue finds it.
async fn sweep_jobs_remove_orphans_only(backend: Backend) {
    let db = TestDb::new().await;
    let acme = db.create_tenant("acme").await;
    let beta = db.create_tenant("beta").await;
    let acme_user = db.create_user(acme, "salesperson").await;
    let beta_user = db.create_user(beta, "salesperson").await;

    // A live upload of acme: its process (this session) holds the lock.
    let mut live = PgConnection::connect(&db.url("bizos_app")).await.unwrap();
    let live_lock = 515_151;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(OWNER_LOCK_CLASS)
        .bind(live_lock)
        .fetch_one(&mut live)
        .await
        .unwrap();
    assert!(locked);
    let (live_id, live_key) =
        intent_with_bytes(&db, &backend, acme, acme_user.user_id, live_lock).await;
    // Dead uploads of both tenants: nobody holds their owner locks.
    let (acme_dead, acme_dead_key) =
        intent_with_bytes(&db, &backend, acme, acme_user.user_id, 616_161).await;
    let (beta_dead, beta_dead_key) =
        intent_with_bytes(&db, &backend, beta, beta_user.user_id, 717_171).await;

    // The claim is the tenant's: acme's sweep never touches beta's intents.
    let mut worker_db = PgConnection::connect(&db.url("bizos_worker"))
        .await
        .unwrap();
    let mut tx = worker_db.begin().await.unwrap();
    let claimed: Vec<Uuid> =
        sqlx::query_scalar("select object_id from upload_sweep_claim($1, 960, 100)")
            .bind(acme)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(
        claimed,
        vec![acme_dead],
        "acme's sweep claims acme's dead upload only"
    );
    tx.rollback().await.unwrap();

    // The BFF's login enqueues one sweep per tenant with dead uploads, and
    // no second one while it waits.
    let mut app = PgConnection::connect(&db.url("bizos_app")).await.unwrap();
    let enqueued: i32 = sqlx::query_scalar("select upload_sweep_enqueue(960)")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(enqueued, 2);
    let again: i32 = sqlx::query_scalar("select upload_sweep_enqueue(960)")
        .fetch_one(&mut app)
        .await
        .unwrap();
    assert_eq!(again, 0, "a second sweep was queued beside a waiting one");
    let err = sqlx::query_scalar::<_, i32>("select upload_sweep_enqueue(0)")
        .fetch_one(&mut app)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_age_secs"), "{err}");

    // The worker runs them (and enqueues a sweep every second itself).
    let worker =
        bizos_tests::spawn_worker_with(&db, backend.settings(), Duration::from_secs(1)).await;
    eventually("the dead uploads' intents are swept", async || {
        !intent_exists(&db, acme_dead).await && !intent_exists(&db, beta_dead).await
    })
    .await;
    assert_eq!(
        backend.leftovers(&acme_dead_key).await,
        Vec::<String>::new()
    );
    assert_eq!(
        backend.leftovers(&beta_dead_key).await,
        Vec::<String>::new()
    );
    // One sweep per tenant at least (the worker may have queued another
    // while the first ran), none failed. A sweep deletes the intent before
    // its job is marked done: wait for the jobs too.
    eventually("both tenants' sweeps succeed", async || {
        count(
            &db,
            "select count(distinct tenant_id) from jobs where kind = 'storage.sweep' and status = 'succeeded'",
        )
        .await
            == 2
    })
    .await;
    assert_eq!(
        count(
            &db,
            "select count(*) from jobs where kind = 'storage.sweep' and status = 'dead'"
        )
        .await,
        0
    );
    // Several periods of the worker's own sweeps later, the live upload is
    // still whole.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        intent_exists(&db, live_id).await,
        "a live upload's intent was swept"
    );
    assert_eq!(
        backend.leftovers(&live_key).await.len(),
        1,
        "a live upload's bytes were removed"
    );

    // Its process dies: the worker's periodic enqueue finds it.
    live.close().await.unwrap();
    eventually("the upload of the dead process is swept", async || {
        !intent_exists(&db, live_id).await
    })
    .await;
    assert_eq!(backend.leftovers(&live_key).await, Vec::<String>::new());
    drop(worker);
}

#[tokio::test]
async fn sweep_jobs_remove_orphans_and_never_a_live_upload_local() {
    sweep_jobs_remove_orphans_only(Backend::Local(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn sweep_jobs_remove_orphans_and_never_a_live_upload_s3() {
    let endpoint = std::env::var("BIZOS_TEST_S3_ENDPOINT").expect(
        "BIZOS_TEST_S3_ENDPOINT must name an S3-compatible server on loopback with bucket \
         bizos-test (scripts/dev test starts one)",
    );
    sweep_jobs_remove_orphans_only(Backend::S3 { endpoint }).await;
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_nothing_after_a_restart_local() {
    crash_mid_upload_leaves_nothing(Backend::Local(tempfile::tempdir().unwrap())).await;
}

#[tokio::test]
async fn a_crash_mid_upload_leaves_nothing_after_a_restart_s3() {
    let endpoint = std::env::var("BIZOS_TEST_S3_ENDPOINT").expect(
        "BIZOS_TEST_S3_ENDPOINT must name an S3-compatible server on loopback with bucket \
         bizos-test (scripts/dev test starts one)",
    );
    crash_mid_upload_leaves_nothing(Backend::S3 { endpoint }).await;
}
