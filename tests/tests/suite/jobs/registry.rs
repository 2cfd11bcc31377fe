//! The worker's registry against the database's vocabulary: every job kind
//! (`job_kinds`) has exactly one typed handler, the payloads the SQL writes
//! parse as their kinds', and a job whose payload does not parse is dead
//! at its first claim with an error naming the field.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bizos_bff::worker::{registry, Registry, WorkerSettings};
use bizos_tests::{rpc, upload_record, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn settings(db: &TestDb) -> WorkerSettings {
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    WorkerSettings {
        poll_interval: Duration::from_millis(200),
        // The kind is registered without the model; loading it is not the
        // point here.
        kb_model_dir: None,
        ..bizos_tests::worker_settings(db, 2000, storage)
    }
}

async fn the_registry(db: &TestDb) -> Registry {
    registry(&settings(db), &db.pool_as("bizos_worker")).expect("the worker's registry")
}

#[tokio::test]
async fn every_job_kind_has_exactly_one_typed_handler() {
    let db = TestDb::new().await;
    let vocabulary: Vec<String> = sqlx::query_scalar("select kind from job_kinds order by kind")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    let registry = the_registry(&db).await;
    let mut handlers: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in registry.kinds() {
        *handlers.entry(kind).or_default() += 1;
    }
    let per_kind: Vec<(&str, usize)> = vocabulary
        .iter()
        .map(|k| (k.as_str(), handlers.get(k.as_str()).copied().unwrap_or(0)))
        .collect();
    assert_eq!(
        per_kind,
        vocabulary
            .iter()
            .map(|k| (k.as_str(), 1))
            .collect::<Vec<_>>(),
        "handlers per kind of job_kinds"
    );
    let unknown: Vec<&&str> = handlers
        .keys()
        .filter(|k| !vocabulary.iter().any(|v| v == **k))
        .collect();
    assert!(unknown.is_empty(), "handlers of no kind: {unknown:?}");
    assert!(!registry.knows("no.such.kind"));
}

#[tokio::test]
async fn the_payloads_the_sql_writes_parse_as_their_kinds() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;

    // digest.build and rfm.compute: the schedules every tenant starts with.
    let fired: i32 = sqlx::query_scalar("select schedules_fire(now() + interval '8 days')")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(fired >= 2, "{fired}");
    // rfm.compute on demand: {as_of}.
    rpc(&db, &admin, "select rfm_run_request($1)", &[json!({})])
        .await
        .unwrap();
    // customer.lookalikes: the dedup of a new customer.
    rpc(
        &db,
        &admin,
        "select find_or_create_customer($1 #>> '{}')",
        &[json!("PT Payload Baru")],
    )
    .await
    .unwrap();
    // email.send: the outbox.
    rpc(
        &db,
        &admin,
        "select to_jsonb(email_enqueue('user.welcome', array[$1 #>> '{}'], $2))",
        &[
            json!("welcome@example.com"),
            json!({"full_name": "A", "sign_in_url": "https://example.com"}),
        ],
    )
    .await
    .unwrap();
    // webhook.deliver: the tenant's wake-up.
    sqlx::query("select webhook_wake($1)")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    // kb.ingest: a registered document.
    let object = upload_record(&db, &admin, "knowledge", "doc.txt", "text/plain").await;
    rpc(
        &db,
        &admin,
        "select kb_document_register($1)",
        &[json!({"title": "Manual", "object_id": object})],
    )
    .await
    .unwrap();
    // import.process: the rest of an import after the request's batch.
    let object = upload_record(&db, &admin, "import-files", "kpi.csv", "text/csv").await;
    let import = rpc(
        &db,
        &admin,
        "select import_create($1)",
        &[
            json!({"module": "kpi_entries", "object_id": object, "file_name": "kpi.csv",
                 "columns": ["metric_key", "value", "entry_date"]}),
        ],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &admin,
        "select to_jsonb(import_process_later(($1 #>> '{}')::uuid, 500))",
        &[import["import_id"].clone()],
    )
    .await
    .unwrap();
    // billing.month_end: the month-end run over subscribed tenants.
    sqlx::raw_sql(&format!(
        "insert into plans (plan_code, label, monthly_price) values ('reg', 'Reg', 1000);
         update tenants set plan_code = 'reg' where tenant_id = '{tenant}';
         select billing_month_end_enqueue();"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // tenant.move: the operator's move of the tenant to a schema.
    sqlx::raw_sql(&format!(
        "insert into control.clusters (cluster, region, url_secret) values ('local', 'id', 'LOCAL_URL');
         insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
         values ('{tenant}', 'id', 'shared', 'local', '{}');
         select tenant_move_request('{tenant}', 'schema', 'local', '{}', 'tenant_acme');",
        db.name, db.name
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    // storage.sweep: an upload whose process is gone (an owner lock no
    // session holds).
    let mut tx = db.as_user(&admin).await;
    sqlx::query("select upload_begin('knowledge', 12345)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("select upload_sweep_enqueue(900)")
        .execute(&db.owner)
        .await
        .unwrap();

    // billing.dunning: a tenant with an operator invoice past its due date.
    sqlx::raw_sql(&format!(
        "insert into plans (plan_code, label, monthly_price) values ('dun', 'Dun', 1000) on conflict do nothing;
         update tenants set plan_code = 'dun' where tenant_id = '{tenant}';
         insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after)
         select tenant_id, subscription_id, '2026-01-01', '2026-02-01', now() from subscriptions
          where tenant_id = '{tenant}';
         update billing_invoices set status = 'finalized', invoice_no = 'BIL-DUN-1', issue_date = '2026-02-01',
                due_date = '2026-02-15' where tenant_id = '{tenant}';
         select billing_dunning_enqueue();"
    ))
    .execute(&db.owner)
    .await
    .unwrap();

    // vector.retrain: an IVF index built on an empty table that now holds
    // 1,000 rows (trained on none of them).
    sqlx::raw_sql(
        "create table payload_vectors (v bizos.vector(2) not null);
         create index payload_vectors_idx on payload_vectors using bizos_ivf (v bizos.vector_l2_ops);
         insert into payload_vectors select array[cos(g), sin(g)]::real[] from generate_series(1, 1000) g;
         select vector_retrain_enqueue(1);",
    )
    .execute(&db.owner)
    .await
    .unwrap();

    let registry = the_registry(&db).await;
    let jobs: Vec<(String, Value)> =
        sqlx::query_as("select kind, payload from jobs where tenant_id = $1 order by kind")
            .bind(tenant)
            .fetch_all(&db.owner)
            .await
            .unwrap();
    let mut kinds: Vec<&str> = jobs.iter().map(|(k, _)| k.as_str()).collect();
    kinds.dedup();
    let vocabulary: Vec<String> = sqlx::query_scalar(
        "select kind from job_kinds where kind <> 'idempotency.purge' order by kind",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    // Every kind whose payload the SQL writes (idempotency.purge's is the
    // worker's own, typed at its enqueue).
    assert_eq!(kinds, vocabulary, "{jobs:?}");
    for (kind, payload) in &jobs {
        assert_eq!(registry.check(kind, payload), Ok(()), "{kind} {payload}");
    }
}

#[tokio::test]
async fn a_payload_that_does_not_parse_is_dead_at_its_first_claim_naming_the_field() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let job: Uuid = sqlx::query_scalar(
        "select job_enqueue_for($1, 'customer.lookalikes', '{\"customer_ids\": \"PT A\"}')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let worker = bizos_tests::start_worker(settings(&db)).await;
    let started = Instant::now();
    let (status, attempts, error) = loop {
        let (status, attempts, error): (String, i32, Option<String>) =
            sqlx::query_as("select status, attempts, last_error from jobs where job_id = $1")
                .bind(job)
                .fetch_one(&db.owner)
                .await
                .unwrap();
        if status != "queued" && status != "running" {
            break (status, attempts, error);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the job is still {status} after {attempts} attempts: {error:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(worker);
    assert_eq!((status.as_str(), attempts), ("dead", 1), "{error:?}");
    let error = error.unwrap_or_default();
    assert!(
        error.starts_with("payload.customer_ids: invalid type: string \"PT A\""),
        "{error}"
    );
}

#[tokio::test]
async fn a_typed_payload_is_checked_before_it_is_enqueued() {
    use bizos_bff::crm::lookalikes::CustomerLookalikesArgs;
    use bizos_bff::rfm::RfmComputeArgs;
    use bizos_bff::worker::{enqueue, EnqueueError, EnqueueOptions};

    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let mut tx = db.as_user(&admin).await;
    let none = CustomerLookalikesArgs {
        customer_ids: vec![],
    };
    match enqueue(&mut tx, &none, EnqueueOptions::default()).await {
        Err(EnqueueError::Payload(e)) => assert_eq!(
            e.to_string(),
            "payload.customer_ids: must be a list of 1 to 1000 uuids"
        ),
        other => panic!("enqueued: {other:?}"),
    }
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 10, 1);
    let options = EnqueueOptions {
        dedup_key: Some("rfm-once".into()),
        ..EnqueueOptions::default()
    };
    let job = enqueue(&mut tx, &RfmComputeArgs { as_of }, options)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stored: (String, Value, Option<Uuid>, Option<String>) =
        sqlx::query_as("select kind, payload, created_by, dedup_key from jobs where job_id = $1")
            .bind(job)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        stored,
        (
            "rfm.compute".to_owned(),
            json!({"as_of": "2026-10-01"}),
            Some(admin.user_id),
            Some("rfm-once".to_owned())
        )
    );
    let count: i64 = sqlx::query_scalar("select count(*) from jobs where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(count, 1, "the refused payload left no job");
}
