//! Look-alike customers: similar names are found after commit by
//! the job `customer.lookalikes` and kept on the customer for review, never
//! in the request that creates the customer; a reader sees only look-alikes
//! they may read, and a search never leaves its tenant.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::TestDb;
use serde_json::Value;
use uuid::Uuid;

use super::{find_or_create, team};

fn id_of(v: &Value) -> Uuid {
    v["customer_id"].as_str().unwrap().parse().unwrap()
}

async fn create(db: &TestDb, who: &Caller, company: &str) -> Uuid {
    let v = find_or_create(db, who, company, None, None, None).await;
    assert_eq!(v["created"], true, "{v}");
    assert_eq!(v["candidates"], serde_json::json!([]), "{v}");
    id_of(&v)
}

/// `lookalikes` of customer_detail as `who` (None: the customer is not visible).
async fn lookalikes(db: &TestDb, who: &Caller, customer: Uuid) -> Option<Value> {
    let mut tx = db.as_user(who).await;
    let v: Option<Value> = sqlx::query_scalar("select customer_detail($1)")
        .bind(customer)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    v.map(|d| d["lookalikes"].clone())
}

fn listed(v: &Value) -> Vec<Uuid> {
    v["lookalikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["customer_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Runs the job's function as the worker does.
async fn check(db: &TestDb, tenant: Uuid, ids: &[Uuid]) -> i32 {
    sqlx::query_scalar("select customer_lookalikes_find($1, $2)")
        .bind(tenant)
        .bind(ids)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap()
}

async fn stored(db: &TestDb, customer: Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from customer_lookalikes where customer_id = $1 or lookalike_id = $1",
    )
    .bind(customer)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn similar_names_are_found_by_the_worker_after_commit_in_both_directions() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let m = &t.marketing;
    let first = create(&db, m, "PT Maju Jaya").await;
    let similar = create(&db, m, "CV Maju Jaya Abadi").await;
    let other = create(&db, m, "PT Sumber Rejeki Logistik").await;

    // One job per new customer, queued in the transaction that created it;
    // nothing checked yet.
    let queued: Vec<Value> = sqlx::query_scalar(
        "select payload from jobs where tenant_id = $1 and kind = 'customer.lookalikes'
          order by created_at, job_id",
    )
    .bind(t.tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let queued_ids: Vec<Value> = queued
        .iter()
        .map(|p| p["customer_ids"][0].clone())
        .collect();
    assert_eq!(
        queued_ids,
        [first, similar, other].map(|id| Value::from(id.to_string())),
        "{queued:?}"
    );
    let before = lookalikes(&db, m, similar).await.unwrap();
    assert_eq!(before["checked_at"], Value::Null, "{before}");
    assert_eq!(before["lookalikes"], serde_json::json!([]), "{before}");

    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        poll_interval: Duration::from_millis(200),
        ..bizos_tests::worker_settings(&db, 2000, storage)
    })
    .await;
    let started = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from jobs where tenant_id = $1 and kind = 'customer.lookalikes'
                and status = 'succeeded'",
        )
        .bind(t.tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        if done == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "look-alike jobs not done"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(worker);

    let of_similar = lookalikes(&db, m, similar).await.unwrap();
    assert!(of_similar["checked_at"].is_string(), "{of_similar}");
    assert_eq!(listed(&of_similar), [first], "{of_similar}");
    let sim = of_similar["lookalikes"][0]["similarity"].as_f64().unwrap();
    assert!((0.5..1.0).contains(&sim), "{of_similar}");
    assert_eq!(
        of_similar["lookalikes"][0]["company_name"], "PT Maju Jaya",
        "{of_similar}"
    );
    // The older customer lists the newer one too.
    assert_eq!(listed(&lookalikes(&db, m, first).await.unwrap()), [similar]);
    let of_other = lookalikes(&db, m, other).await.unwrap();
    assert!(of_other["checked_at"].is_string(), "{of_other}");
    assert_eq!(listed(&of_other), Vec::<Uuid>::new(), "{of_other}");
}

#[tokio::test]
async fn lookalikes_list_only_customers_the_reader_may_read() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    // Alice and Carol are in different teams: neither reads the other's
    // customers; marketing reads both.
    let alices = create(&db, &t.alice, "PT Rahasia Bersama Jaya").await;
    let carols = create(&db, &t.carol, "PT Rahasia Bersama Abadi").await;
    assert_eq!(check(&db, t.tenant, &[alices, carols]).await, 2);
    assert_eq!(stored(&db, alices).await, 2, "fixture: the pair is stored");

    let for_marketing = lookalikes(&db, &t.marketing, alices).await.unwrap();
    assert_eq!(listed(&for_marketing), [carols], "{for_marketing}");
    let for_alice = lookalikes(&db, &t.alice, alices).await.unwrap();
    assert!(for_alice["checked_at"].is_string(), "{for_alice}");
    assert_eq!(listed(&for_alice), Vec::<Uuid>::new(), "{for_alice}");
    assert!(
        !for_alice.to_string().contains(&carols.to_string()),
        "{for_alice}"
    );
    assert_eq!(lookalikes(&db, &t.alice, carols).await, None);

    // Not through the tables either, nor through the function on a
    // customer the caller may not read.
    let mut tx = db.as_user(&t.alice).await;
    let direct = sqlx::query("select * from customer_lookalikes")
        .fetch_all(&mut *tx)
        .await;
    assert_eq!(
        bizos_tests::code(&direct.unwrap_err()),
        "42501",
        "request roles read look-alikes only through customer_lookalikes_of"
    );
    drop(tx);
    let mut tx = db.as_user(&t.alice).await;
    let of_carols: Option<Value> = sqlx::query_scalar("select customer_lookalikes_of($1)")
        .bind(carols)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(of_carols, None);
}

#[tokio::test]
async fn a_check_stays_in_its_tenant_and_a_rerun_changes_nothing() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let other_tenant = db.create_tenant("globex").await;
    let theirs = db.create_user(other_tenant, "marketing_manager").await;
    let elsewhere = create(&db, &theirs, "PT Cahaya Samudra Logistik").await;
    let same_tenant = create(&db, &t.marketing, "PT Cahaya Samudra Logistics").await;
    let ours = create(&db, &t.marketing, "CV Cahaya Samudra Logistik").await;

    assert_eq!(check(&db, t.tenant, &[ours]).await, 1);
    assert_eq!(check(&db, other_tenant, &[elsewhere]).await, 0);
    assert_eq!(stored(&db, elsewhere).await, 0);
    let first: Vec<(Uuid, f32)> = sqlx::query_as(
        "select lookalike_id, similarity from customer_lookalikes where customer_id = $1",
    )
    .bind(ours)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, same_tenant);

    // A rerun (a lost lease) replaces what the first run stored; a customer
    // deleted meanwhile, or of another tenant, is skipped.
    assert_eq!(check(&db, t.tenant, &[ours, elsewhere]).await, 1);
    let again: Vec<(Uuid, f32)> = sqlx::query_as(
        "select lookalike_id, similarity from customer_lookalikes where customer_id = $1",
    )
    .bind(ours)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(again, first);
    let checks: i64 =
        sqlx::query_scalar("select count(*) from customer_lookalike_checks where customer_id = $1")
            .bind(ours)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(checks, 1);

    // Bad input names its field.
    let err = sqlx::query_scalar::<_, i32>("select customer_lookalikes_find($1, null)")
        .bind(t.tenant)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::field(&err).as_deref(), Some("customer_ids"));
}
