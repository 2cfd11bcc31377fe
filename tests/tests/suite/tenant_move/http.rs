//! Moves under clients that write through HTTP: a real BFF routes every
//! request by the catalogue (the control database's pool for placements
//! in it, a pool of the isolated database from its secrets file), and the
//! clients retry a 503 (the move's freeze, a fenced source, a placement
//! that changed under the request) as a client would. Each write is a
//! lead (one request, one transaction, a gapless lead number).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::tenant_moves::Outcome;
use bizos_tests::{spawn_app_with, url_for, TestApp};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::*;

/// A fixture with a BFF in front of it and an administrator of each
/// tenant.
pub struct Served {
    pub fx: Fixture,
    pub app: TestApp,
    pub mover: Caller,
    pub other: Caller,
    _secrets: tempfile::TempDir,
}

/// `fixture(customers)` with the cluster marked as the control database's
/// own (`home`) and a BFF whose secrets name the cluster's URL as
/// bizos_app; no worker beside it (the tests run the mover themselves).
pub async fn served(customers: i64) -> Served {
    let fx = fixture(customers).await;
    sqlx::query("update control.clusters set home = true where cluster = 'local'")
        .execute(&fx.db.owner)
        .await
        .unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("app");
    std::fs::write(
        &file,
        format!("{SECRET}={}\n", url_for("bizos_app", "postgres")),
    )
    .unwrap();
    let app = spawn_app_with(
        &fx.db,
        &[
            ("BIZOS_SECRETS_FILE", &file.display().to_string()),
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    let mover = fx.db.create_user(fx.tenant, "super_admin").await;
    let other = fx.db.create_user(fx.other, "super_admin").await;
    Served {
        fx,
        app,
        mover,
        other,
        _secrets: secrets,
    }
}

/// Where the tenant's rows are: a pool of the database (a superuser) and
/// the schema.
#[derive(Clone)]
pub struct Place {
    pub database: String,
    pub schema: Option<String>,
    pub pool: PgPool,
}

impl Place {
    pub fn schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    pub fn endpoint(&self) -> tenant_moves::Endpoint {
        endpoint(&self.database, self.schema.as_deref())
    }

    pub fn tier(&self, control: &str) -> &'static str {
        match (&self.schema, self.database == control) {
            (Some(_), _) => "schema",
            (None, true) => "shared",
            (None, false) => "isolated",
        }
    }
}

/// HTTP writers of `caller`'s tenant until `stop`: each POSTs leads and
/// retries a 503 until it is 201.
pub fn http_writers(
    app: &TestApp,
    caller: &Caller,
    writers: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Writes>> {
    (0..writers)
        .map(|w| {
            let url = app.url("/api/leads");
            let token = app.token(caller);
            let http = app.http.clone();
            let stop = stop.clone();
            let tenant = caller.tenant_id;
            tokio::spawn(async move {
                let mut out = Writes::default();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let name = format!("PT Writer {tenant} {w}-{i}-{}", Uuid::new_v4().simple());
                    let first = Instant::now();
                    loop {
                        let res = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({"channel": "website", "company_name": name}))
                            .send()
                            .await
                            .expect("the BFF answers");
                        let status = res.status().as_u16();
                        match status {
                            201 => break,
                            503 => {
                                out.refused += 1;
                                assert!(
                                    first.elapsed() < Duration::from_secs(30),
                                    "writer {w}: lead {name} refused for 30 s"
                                );
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            _ => {
                                let body = res.text().await.unwrap_or_default();
                                panic!("writer {w}: lead {name}: {status} {body}");
                            }
                        }
                    }
                    out.longest_refusal = out.longest_refusal.max(first.elapsed());
                    out.committed.push(name);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                out
            })
        })
        .collect()
}

/// What one move under HTTP writers did.
pub struct Moved {
    pub move_id: Uuid,
    pub writes: Vec<Writes>,
    pub progress: serde_json::Value,
}

/// Moves the tenant from `from` to `to` (in-process mover) while four
/// clients write leads of it and one of the other tenant through HTTP;
/// the move ends done.
pub async fn move_over_http(s: &Served, from: &Place, to: &Place) -> Moved {
    let stop = Arc::new(AtomicBool::new(false));
    let writers = http_writers(&s.app, &s.mover, 4, stop.clone());
    let others = http_writers(&s.app, &s.other, 1, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let move_id = plan(
        &s.fx.db,
        s.fx.tenant,
        to.tier(&s.fx.db.name),
        &to.database,
        to.schema.as_deref(),
    )
    .await;
    let started = Instant::now();
    let outcome = run_mover(&s.fx.db, move_id, &from.endpoint(), &to.endpoint()).await;
    let total = started.elapsed();
    let (state, error, progress) = state(&s.fx.db, move_id).await;
    assert_eq!(outcome, Outcome::Done, "{state} {error:?} {progress}");
    // Writes after the switch go to the target.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = stop_writers(&stop, writers).await;
    let other = stop_writers(&stop, others).await.pop().unwrap();
    let refused: u64 = writes.iter().map(|w| w.refused).sum();
    let waited = writes
        .iter()
        .map(|w| w.longest_refusal)
        .max()
        .unwrap_or_default();
    let committed: usize = writes.iter().map(|w| w.committed.len()).sum();
    eprintln!(
        "{} -> {}: {} rows copied, freeze {} ms, total {} ms; {committed} writes over HTTP, {refused} refusals, longest wait of a write {} ms",
        from.tier(&s.fx.db.name),
        to.tier(&s.fx.db.name),
        progress["copied_rows"],
        progress["freeze_ms"],
        total.as_millis(),
        waited.as_millis()
    );
    assert_eq!(
        other.refused, 0,
        "the other tenant was refused {} times",
        other.refused
    );
    assert!(committed > 0, "no write committed during the move");
    Moved {
        move_id,
        writes,
        progress,
    }
}

/// Every lead a client saw committed is at `place` exactly once, the lead
/// numbers there run 1..n without a gap, the move's verification found
/// equal counts and checksums, and the audit chain verifies there.
pub async fn assert_landed(place: &Place, tenant: Uuid, writes: &[Writes], moved: &Moved) {
    let schema = place.schema();
    let names: Vec<String> = sqlx::query_scalar(&format!(
        "select company_name from {schema}.leads where tenant_id = $1 and company_name like 'PT Writer %'"
    ))
    .bind(tenant)
    .fetch_all(&place.pool)
    .await
    .unwrap();
    super::assert_each_once(&names, writes, "leads of the writers");
    let (count, max): (i64, Option<i64>) = sqlx::query_as(&format!(
        "select count(*), max(substring(lead_no from '(\\d+)$')::bigint) from {schema}.leads where tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_one(&place.pool)
    .await
    .unwrap();
    assert_eq!(
        Some(count),
        max,
        "lead numbers are 1..{count} without a gap"
    );
    let p = &moved.progress;
    assert_eq!(p["verify"]["audit_breaks"], 0, "{p}");
    assert_eq!(p["verify_differences"], json!([]), "{p}");
    let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
        .bind(tenant)
        .fetch_one(&place.pool)
        .await
        .unwrap();
    assert_eq!(breaks, 0, "the audit chain breaks at the target");
}

/// The catalogue names `place` (one version more per move), every
/// placement record outside the control database agrees, and the move
/// left neither trigger nor fence where the tenant lives.
pub async fn assert_placed(s: &Served, place: &Place, version: i64) {
    let row: (String, String, Option<String>, i64) = sqlx::query_as(
        "select tier, database_name, schema_name, version from control.tenant_placements
          where tenant_id = $1",
    )
    .bind(s.fx.tenant)
    .fetch_one(&s.fx.db.owner)
    .await
    .unwrap();
    assert_eq!(
        row,
        (
            place.tier(&s.fx.db.name).to_owned(),
            place.database.clone(),
            place.schema.clone(),
            version
        )
    );
    if place.database != s.fx.db.name {
        let record: (String, String, Option<String>, i64) = sqlx::query_as(
            "select tier, database_name, schema_name, version from control.tenant_placements
              where tenant_id = $1",
        )
        .bind(s.fx.tenant)
        .fetch_one(&place.pool)
        .await
        .unwrap();
        assert_eq!(record, row, "the target's placement record");
    }
    // No move's capture trigger (which a fence arms) is left on the
    // tables the tenant lives on.
    let triggers: i64 = sqlx::query_scalar(
        "select count(*) from pg_trigger t join pg_class c on c.oid = t.tgrelid
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and t.tgname::text like 'tenant\\_move\\_%'",
    )
    .bind(place.schema())
    .fetch_one(&place.pool)
    .await
    .unwrap();
    assert_eq!(
        triggers, 0,
        "move triggers on the tables the tenant lives on"
    );
}

/// The source the tenant left: its record names the target with the new
/// version (outside the control database), its fence refuses the
/// tenant's writes, and its rows stay until the purge.
pub async fn assert_left(s: &Served, source: &Place, to: &Place, moved: &Moved, version: i64) {
    if source.database != s.fx.db.name {
        let record: (String, i64) = sqlx::query_as(
            "select database_name, version from control.tenant_placements where tenant_id = $1",
        )
        .bind(s.fx.tenant)
        .fetch_one(&source.pool)
        .await
        .unwrap();
        assert_eq!(
            record,
            (to.database.clone(), version),
            "the source's placement record"
        );
    }
    let fenced: i64 =
        sqlx::query_scalar("select count(*) from control.tenant_move_fences where move_id = $1")
            .bind(moved.move_id)
            .fetch_one(&source.pool)
            .await
            .unwrap();
    assert_eq!(fenced, 1, "the source is fenced");
    let left: i64 = sqlx::query_scalar(&format!(
        "select count(*) from {}.customers where tenant_id = $1",
        source.schema()
    ))
    .bind(s.fx.tenant)
    .fetch_one(&source.pool)
    .await
    .unwrap();
    assert!(left > 0, "the source's rows stay until the purge");
}
