//! The database side of the LLM gateway (V26, sql/api/llm.sql),
//! through the paths the gateway takes: `llm_begin` / `llm_finish` in
//! transactions opened as the BFF opens them for a user (`begin_as` on the
//! BFF's login), the owner for the operator's settings, the BFF's and the
//! worker's logins for key material, the analyst's login for the reports.
//!
//! - limits: exactly N of 50 concurrent generations pass, tenant and user
//!   scope, generations and tokens; the rest get BZ429 with a retry_after
//!   hint, and refused calls leave nothing behind;
//! - settlement: tokens move from the estimate to the actual, a generation
//!   without an ok attempt is given back;
//! - cost: the price table's arithmetic at the price in force at the call,
//!   NULL without a price;
//! - cache: a hit is a free ledger row that consumes no limit, an expired
//!   entry misses, no hit across tenants;
//! - margin: hand-computed months (plan price, exchange rates, the month
//!   boundary in the tenant's time zone, a missing rate);
//! - privileges: key bytes, key material, other tenants and users, who sets
//!   which limit.

use std::sync::Arc;

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, num, TestDb};
use serde_json::{json, Value};
use sqlx::postgres::{PgDatabaseError, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::Barrier;
use uuid::Uuid;

const NIL: Uuid = Uuid::nil();

/// A pool of the BFF's login with room for every concurrent caller.
async fn app_pool(db: &TestDb, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .connect(&db.url("bizos_app"))
        .await
        .expect("a pool of bizos_app")
}

async fn user_tx(pool: &PgPool, who: &Caller) -> sqlx::Transaction<'static, sqlx::Postgres> {
    bizos_bff::db::begin_as(pool, who)
        .await
        .expect("begin as the user")
}

/// `llm_begin` for the caller's own tenant and user, in a request
/// transaction of theirs that is committed.
async fn begin(
    pool: &PgPool,
    who: &Caller,
    feature: &str,
    cache_key: Option<&[u8]>,
    est_tokens: i64,
) -> Result<Value, sqlx::Error> {
    let mut tx = user_tx(pool, who).await;
    let out = sqlx::query_scalar::<_, Value>("select llm_begin($1, $2, $3, $4, $5, $6)")
        .bind(who.tenant_id)
        .bind(who.user_id)
        .bind(feature)
        .bind(cache_key)
        .bind(est_tokens)
        .bind(Some("req-llm-test"))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

/// `llm_finish` as the caller, committed.
async fn finish(
    pool: &PgPool,
    who: &Caller,
    reservation: Uuid,
    attempts: Value,
    cache: Option<Value>,
) -> Result<Value, sqlx::Error> {
    let mut tx = user_tx(pool, who).await;
    let out = sqlx::query_scalar::<_, Value>("select llm_finish($1, $2, $3, $4)")
        .bind(who.tenant_id)
        .bind(reservation)
        .bind(attempts)
        .bind(cache)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

fn reservation(begun: &Value) -> Uuid {
    begun["reservation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no reservation: {begun}"))
        .parse()
        .unwrap()
}

fn attempt(provider: &str, model: &str, outcome: &str, tokens_in: i64, tokens_out: i64) -> Value {
    json!({"provider": provider, "model": model, "key_ref": "platform:0", "outcome": outcome,
           "tokens_in": tokens_in, "tokens_out": tokens_out, "latency_ms": 12,
           "error": if outcome == "error" { Some("HTTP 503 from the provider") } else { None }})
}

fn fallback() -> Value {
    json!({"key_ref": "fallback", "outcome": "fallback"})
}

fn message(err: &sqlx::Error) -> String {
    err.as_database_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_else(|| err.to_string())
}

/// The seconds of a BZ429's `retry_after=<seconds>` hint.
fn retry_after(err: &sqlx::Error) -> i64 {
    let hint = err
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
        .and_then(|e| e.hint())
        .unwrap_or_else(|| panic!("no hint on {err}"));
    hint.strip_prefix("retry_after=")
        .unwrap_or_else(|| panic!("hint {hint:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("hint {hint:?}: {e}"))
}

async fn owner_exec(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar_i64(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// What the counters of a tenant's feature hold for a user (NIL: the tenant
/// scope) in a period kind, over every period.
async fn used(db: &TestDb, tenant: Uuid, feature: &str, user: Uuid, period: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(used), 0)::bigint from llm_counters
          where tenant_id = $1 and feature = $2 and user_id = $3 and period = $4",
    )
    .bind(tenant)
    .bind(feature)
    .bind(user)
    .bind(period)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn open_reservations(db: &TestDb, tenant: Uuid) -> i64 {
    scalar_i64(
        db,
        &format!("select count(*) from llm_reservations where tenant_id = '{tenant}'"),
    )
    .await
}

async fn ledger_rows(db: &TestDb, tenant: Uuid) -> i64 {
    scalar_i64(
        db,
        &format!("select count(*) from llm_calls where tenant_id = '{tenant}'"),
    )
    .await
}

/// `callers.len()` generations started at the same moment: every caller
/// holds its request transaction (and connection) first, then all call
/// llm_begin together and commit.
async fn race(
    pool: &PgPool,
    callers: Vec<Caller>,
    feature: &'static str,
    est_tokens: i64,
) -> Vec<Result<Value, sqlx::Error>> {
    let barrier = Arc::new(Barrier::new(callers.len()));
    let mut tasks = Vec::new();
    for who in callers {
        let pool = pool.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = user_tx(&pool, &who).await;
            barrier.wait().await;
            let out =
                sqlx::query_scalar::<_, Value>("select llm_begin($1, $2, $3, null, $4, null)")
                    .bind(who.tenant_id)
                    .bind(who.user_id)
                    .bind(feature)
                    .bind(est_tokens)
                    .fetch_one(&mut *tx)
                    .await;
            match out {
                Ok(v) => {
                    tx.commit().await?;
                    Ok(v)
                }
                Err(e) => {
                    tx.rollback().await.ok();
                    Err(e)
                }
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a caller task"));
    }
    out
}

/// Checks the refusals of a race: each is BZ429 with `want` as its message
/// (or one of them) and a retry_after within `max_secs`; returns how many
/// passed.
fn passed(results: &[Result<Value, sqlx::Error>], want: &[&str], max_secs: i64) -> usize {
    let mut ok = 0;
    for r in results {
        match r {
            Ok(v) => {
                reservation(v);
                ok += 1;
            }
            Err(e) => {
                assert_eq!(code(e), "BZ429", "{e}");
                assert!(want.contains(&message(e).as_str()), "{}", message(e));
                let secs = retry_after(e);
                assert!((1..=max_secs).contains(&secs), "retry_after={secs}");
            }
        }
    }
    ok
}

const DAY: i64 = 86_400;

#[tokio::test]
async fn limits_hold_exactly_under_50_concurrent_callers() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let mut users = Vec::new();
    for _ in 0..10 {
        users.push(db.create_user(tenant, "salesperson").await);
    }
    let pool = app_pool(&db, 50).await;
    owner_exec(
        &db,
        &format!(
            "select llm_limit_set('{tenant}', 'chat', 'tenant', 7, null);
             select llm_limit_set('{tenant}', 'rag_answer', 'user', 3, null);
             select llm_limit_set('{tenant}', 'digest', 'tenant', null, 1000);
             select llm_limit_set('{tenant}', 'precheck_notes', 'tenant', 7, null);
             select llm_limit_set('{tenant}', 'precheck_notes', 'user', 2, null);"
        ),
    )
    .await;
    let ten_users_five_times = |users: &[Caller]| -> Vec<Caller> {
        (0..50).map(|i| users[i % users.len()].clone()).collect()
    };

    // Tenant scope, generations a day: 7 of 50, from ten users.
    let results = race(&pool, ten_users_five_times(&users), "chat", 100).await;
    let ok = passed(
        &results,
        &["chat: the tenant limit of 7 generations a day is used up"],
        DAY,
    );
    assert_eq!(ok, 7);
    assert_eq!(used(&db, tenant, "chat", NIL, "day").await, 7);
    assert_eq!(used(&db, tenant, "chat", NIL, "month").await, 700);
    let per_user: i64 = scalar_i64(
        &db,
        &format!(
            "select coalesce(sum(used), 0)::bigint from llm_counters
              where tenant_id = '{tenant}' and feature = 'chat' and user_id <> '{NIL}' and period = 'day'"
        ),
    )
    .await;
    assert_eq!(per_user, 7, "the users' counters add up to the tenant's");
    assert_eq!(open_reservations(&db, tenant).await, 7);
    assert_eq!(ledger_rows(&db, tenant).await, 0);

    // User scope: one user, 50 at once, 3 pass; then another user gets 3
    // of their own. Refused calls took the tenant counter first and left
    // nothing there.
    let results = race(&pool, vec![users[0].clone(); 50], "rag_answer", 10).await;
    let ok = passed(
        &results,
        &["rag_answer: the user limit of 3 generations a day is used up"],
        DAY,
    );
    assert_eq!(ok, 3);
    let results = race(&pool, vec![users[1].clone(); 25], "rag_answer", 10).await;
    assert_eq!(
        passed(
            &results,
            &["rag_answer: the user limit of 3 generations a day is used up"],
            DAY
        ),
        3
    );
    assert_eq!(
        used(&db, tenant, "rag_answer", users[0].user_id, "day").await,
        3
    );
    assert_eq!(
        used(&db, tenant, "rag_answer", users[1].user_id, "day").await,
        3
    );
    assert_eq!(used(&db, tenant, "rag_answer", NIL, "day").await, 6);
    assert_eq!(used(&db, tenant, "rag_answer", NIL, "month").await, 60);
    assert_eq!(
        used(&db, tenant, "rag_answer", users[0].user_id, "month").await,
        30
    );

    // Tokens a month: 1000 tokens, 100 each: 10 of 50.
    let results = race(&pool, ten_users_five_times(&users), "digest", 100).await;
    let ok = passed(
        &results,
        &["digest: the tenant limit of 1000 tokens a month is used up"],
        32 * DAY,
    );
    assert_eq!(ok, 10);
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 1000);
    assert_eq!(used(&db, tenant, "digest", NIL, "day").await, 10);

    // Both scopes: 7 for the tenant, 2 per user.
    let results = race(&pool, ten_users_five_times(&users), "precheck_notes", 1).await;
    let ok = passed(
        &results,
        &[
            "precheck_notes: the tenant limit of 7 generations a day is used up",
            "precheck_notes: the user limit of 2 generations a day is used up",
        ],
        DAY,
    );
    assert_eq!(ok, 7);
    assert_eq!(used(&db, tenant, "precheck_notes", NIL, "day").await, 7);
    let most: i64 = scalar_i64(
        &db,
        &format!(
            "select max(used) from llm_counters
              where tenant_id = '{tenant}' and feature = 'precheck_notes' and user_id <> '{NIL}' and period = 'day'"
        ),
    )
    .await;
    assert!(most <= 2, "a user got {most}");

    // Everything that passed is an open generation; nothing else was left.
    assert_eq!(open_reservations(&db, tenant).await, 7 + 6 + 10 + 7);
    assert_eq!(ledger_rows(&db, tenant).await, 0);
}

#[tokio::test]
async fn tokens_settle_to_the_actual_and_a_failed_generation_is_given_back() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let pool = app_pool(&db, 5).await;
    owner_exec(
        &db,
        &format!("select llm_limit_set('{tenant}', 'digest', 'tenant', null, 1000)"),
    )
    .await;

    // Reserved: one generation, the estimate.
    let r1 = reservation(&begin(&pool, &alice, "digest", None, 300).await.unwrap());
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 300);
    assert_eq!(
        used(&db, tenant, "digest", alice.user_id, "month").await,
        300
    );
    assert_eq!(used(&db, tenant, "digest", NIL, "day").await, 1);

    // A bad attempt is refused naming it, and changes nothing.
    let err = finish(
        &pool,
        &alice,
        r1,
        json!([attempt("openai", "gpt-4o-mini", "maybe", 1, 1)]),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err)),
        ("P0001".into(), Some("attempts[0].outcome".into()))
    );
    assert_eq!(open_reservations(&db, tenant).await, 1);
    assert_eq!(ledger_rows(&db, tenant).await, 0);

    // Settled: a failed attempt (an answer that did not validate, 5 + 7
    // tokens, which the month budget does not count), then an ok one of
    // 50 + 70 tokens.
    let done = finish(
        &pool,
        &alice,
        r1,
        json!([
            attempt("gemini", "gemini-2.0-flash", "error", 5, 7),
            attempt("openai", "gpt-4o-mini", "ok", 50, 70)
        ]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(done["call_ids"].as_array().unwrap().len(), 2);
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 120);
    assert_eq!(
        used(&db, tenant, "digest", alice.user_id, "month").await,
        120
    );
    assert_eq!(used(&db, tenant, "digest", NIL, "day").await, 1);
    assert_eq!(open_reservations(&db, tenant).await, 0);

    // No ok attempt (the deterministic fallback answered): the generation
    // and its estimate are given back.
    let r2 = reservation(&begin(&pool, &alice, "digest", None, 300).await.unwrap());
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 420);
    assert_eq!(used(&db, tenant, "digest", NIL, "day").await, 2);
    finish(
        &pool,
        &alice,
        r2,
        json!([
            attempt("gemini", "gemini-2.0-flash", "error", 0, 0),
            fallback()
        ]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 120);
    assert_eq!(
        used(&db, tenant, "digest", alice.user_id, "month").await,
        120
    );
    assert_eq!(used(&db, tenant, "digest", NIL, "day").await, 1);
    assert_eq!(used(&db, tenant, "digest", alice.user_id, "day").await, 1);

    // Finished is finished; another user's generation is not yours.
    let err = finish(&pool, &alice, r2, json!([]), None)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), field(&err)),
        ("P0002".into(), Some("reservation_id".into()))
    );
    let r3 = reservation(&begin(&pool, &bob, "digest", None, 500).await.unwrap());
    let err = finish(&pool, &alice, r3, json!([]), None)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0002", "{err}");
    // More than estimated counts as used: 400 + 480 after an estimate of 500.
    finish(
        &pool,
        &bob,
        r3,
        json!([attempt("openai", "gpt-4o-mini", "ok", 400, 480)]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(used(&db, tenant, "digest", NIL, "month").await, 1000);
    assert_eq!(used(&db, tenant, "digest", bob.user_id, "month").await, 880);

    // The budget is used up: even a zero estimate is refused, until next month.
    for est in [1, 0] {
        let err = begin(&pool, &alice, "digest", None, est).await.unwrap_err();
        assert_eq!(code(&err), "BZ429", "{err}");
        assert_eq!(
            message(&err),
            "digest: the tenant limit of 1000 tokens a month is used up"
        );
        let secs = retry_after(&err);
        let until_next_month: i64 = scalar_i64(
            &db,
            &format!(
                "select ceil(extract(epoch from
                          ((date_trunc('month', tenant_today('{tenant}')) + interval '1 month')::timestamp
                             at time zone 'Asia/Jakarta') - now()))::bigint"
            ),
        )
        .await;
        assert!(
            (secs - until_next_month).abs() <= 5,
            "retry_after={secs}, the next tenant-local month is {until_next_month} s away"
        );
    }

    // The ledger: every attempt, in order, with the reservation's user.
    let rows: Vec<(String, i16, Option<Uuid>, String, i64, i64)> = sqlx::query_as(
        "select outcome, attempt, user_id, coalesce(key_ref, ''), tokens_in, tokens_out
           from llm_calls where tenant_id = $1 order by created_at, reservation_id, attempt",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let outcomes: Vec<(&str, i16)> = rows.iter().map(|r| (r.0.as_str(), r.1)).collect();
    assert_eq!(
        outcomes,
        [
            ("error", 1),
            ("ok", 2),
            ("error", 1),
            ("fallback", 2),
            ("ok", 1)
        ]
    );
    assert_eq!(rows[0].2, Some(alice.user_id));
    assert_eq!(rows[4].2, Some(bob.user_id));
    assert_eq!(rows[3].3, "fallback");
}

#[tokio::test]
async fn the_ledger_prices_each_call_at_the_price_in_force() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let pool = app_pool(&db, 5).await;
    owner_exec(
        &db,
        "insert into llm_prices (provider, model, effective_from, currency, input_per_mtok, output_per_mtok)
         values ('openai', 'price-test', '2020-01-01', 'USD', 2.5, 10)",
    )
    .await;
    let call = |attempts: Value| {
        let pool = pool.clone();
        let alice = alice.clone();
        async move {
            let r = reservation(&begin(&pool, &alice, "chat", None, 10).await.unwrap());
            finish(&pool, &alice, r, attempts, None).await.unwrap()
        }
    };
    // cost = 1234/1e6 * 2.5 + 567/1e6 * 10 = 0.003085 + 0.00567
    let first = call(json!([attempt("openai", "price-test", "ok", 1234, 567)])).await;
    // The price changes between the two calls.
    owner_exec(
        &db,
        "insert into llm_prices (provider, model, effective_from, currency, input_per_mtok, output_per_mtok)
         values ('openai', 'price-test', now(), 'USD', 1.25, 5)",
    )
    .await;
    // cost = 1234/1e6 * 1.25 + 567/1e6 * 5 = 0.0015425 + 0.002835
    let second = call(json!([attempt("openai", "price-test", "ok", 1234, 567)])).await;
    // No price: the outcome is kept, the cost is NULL (never a guess). A
    // failed attempt that used no tokens costs 0, price or not.
    let unpriced = call(json!([
        attempt("openai", "no-such-price", "error", 0, 0),
        attempt("openai", "no-such-price", "ok", 100, 100)
    ]))
    .await;

    let cost_of = |call_id: &Value| {
        let db = &db;
        let id: Uuid = call_id.as_str().unwrap().parse().unwrap();
        async move {
            sqlx::query_as::<_, (Option<String>, Option<String>, String)>(
                "select cost::text, currency, outcome from llm_calls where tenant_id = $1 and call_id = $2",
            )
            .bind(tenant)
            .bind(id)
            .fetch_one(&db.owner)
            .await
            .unwrap()
        }
    };
    let exact = |got: &Option<String>, want: &str| {
        let got = got
            .as_deref()
            .unwrap_or_else(|| panic!("no cost, want {want}"));
        let db = &db;
        let (got, want) = (got.to_owned(), want.to_owned());
        async move {
            let same: bool = sqlx::query_scalar("select $1::numeric = $2::numeric")
                .bind(&got)
                .bind(&want)
                .fetch_one(&db.owner)
                .await
                .unwrap();
            assert!(same, "cost {got}, want {want}");
        }
    };
    let (c1, cur1, _) = cost_of(&first["call_ids"][0]).await;
    exact(&c1, "0.008755").await;
    assert_eq!(cur1.as_deref(), Some("USD"));
    exact(&first["cost"].as_f64().map(|c| format!("{c}")), "0.008755").await;
    assert_eq!(first["currency"], "USD");
    let (c2, _, _) = cost_of(&second["call_ids"][0]).await;
    exact(&c2, "0.0043775").await;
    // The first call kept the price of its time.
    let (c1_again, _, _) = cost_of(&first["call_ids"][0]).await;
    assert_eq!(c1_again, c1);

    let (zero, _, outcome) = cost_of(&unpriced["call_ids"][0]).await;
    assert_eq!(outcome, "error");
    exact(&zero, "0").await;
    let (none, currency, outcome) = cost_of(&unpriced["call_ids"][1]).await;
    assert_eq!((none, currency, outcome.as_str()), (None, None, "ok"));
    assert_eq!(unpriced["cost"], Value::Null);

    // The daily view: the priced calls summed, the unpriced ones NULL.
    let rows: Vec<(String, i64, Option<String>, Option<String>)> = sqlx::query_as(
        "select model, calls, cost::text, currency from v_llm_cost_daily
          where tenant_id = $1 order by model, currency nulls first",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("no-such-price", 2));
    assert_eq!(rows[0].2, None);
    assert_eq!((rows[1].0.as_str(), rows[1].1), ("price-test", 2));
    exact(&rows[1].2, "0.0131325").await;
}

#[tokio::test]
async fn a_cache_hit_is_free_an_expired_entry_misses_and_no_tenant_hits_anothers() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let other = db.create_tenant("globex").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let olga = db.create_user(other, "salesperson").await;
    let pool = app_pool(&db, 5).await;
    owner_exec(
        &db,
        &format!("select llm_limit_set('{tenant}', 'chat', 'tenant', 1, null)"),
    )
    .await;
    let key = [7u8; 32];
    let hex_key: String = key.iter().map(|b| format!("{b:02x}")).collect();

    // A miss: generated, then cached.
    let begun = begin(&pool, &alice, "chat", Some(&key), 40).await.unwrap();
    let r = reservation(&begun);
    finish(
        &pool,
        &alice,
        r,
        json!([attempt("gemini", "gemini-2.0-flash", "ok", 10, 20)]),
        Some(json!({"cache_key": hex_key, "model": "gemini-2.0-flash",
                    "response": {"text": "Halo"}, "tokens_in": 10, "tokens_out": 20})),
    )
    .await
    .unwrap();
    assert_eq!(used(&db, tenant, "chat", NIL, "day").await, 1);

    // A hit: the limit of 1 is used up, and the hit still answers.
    let hit = begin(&pool, &alice, "chat", Some(&key), 40).await.unwrap();
    assert_eq!(hit["cached"], json!({"text": "Halo"}), "{hit}");
    assert_eq!(hit["model"], "gemini-2.0-flash");
    let call: Uuid = hit["call_id"].as_str().unwrap().parse().unwrap();
    let row: (String, String, String, String, i64, i64, String, String, Option<Uuid>) =
        sqlx::query_as(
            "select outcome, key_ref, provider, model, tokens_in, tokens_out, cost::text, currency, user_id
               from llm_calls where tenant_id = $1 and call_id = $2",
        )
        .bind(tenant)
        .bind(call)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        row,
        (
            "cache_hit".into(),
            "cache".into(),
            "gemini".into(),
            "gemini-2.0-flash".into(),
            10,
            20,
            "0".into(),
            "USD".into(),
            Some(alice.user_id)
        )
    );
    assert_eq!(used(&db, tenant, "chat", NIL, "day").await, 1);
    assert_eq!(used(&db, tenant, "chat", alice.user_id, "day").await, 1);
    assert_eq!(used(&db, tenant, "chat", NIL, "month").await, 30);
    assert_eq!(open_reservations(&db, tenant).await, 0);
    let hits = scalar_i64(
        &db,
        &format!("select hits from v_llm_cache where tenant_id = '{tenant}'"),
    )
    .await;
    assert_eq!(hits, 1);

    // Another tenant with the same key: a miss (and its own generation).
    let there = begin(&pool, &olga, "chat", Some(&key), 40).await.unwrap();
    assert!(there.get("cached").is_none(), "{there}");
    reservation(&there);
    assert_eq!(
        scalar_i64(
            &db,
            &format!("select count(*) from llm_calls where tenant_id = '{other}'")
        )
        .await,
        0
    );

    // Expired: a miss, which needs a generation, and the limit is used up.
    owner_exec(
        &db,
        &format!("update llm_cache set expires_at = now() - interval '1 second' where tenant_id = '{tenant}'"),
    )
    .await;
    let err = begin(&pool, &alice, "chat", Some(&key), 40)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BZ429", "{err}");
    owner_exec(
        &db,
        &format!("select llm_limit_set('{tenant}', 'chat', 'tenant', 5, null)"),
    )
    .await;
    let again = begin(&pool, &alice, "chat", Some(&key), 40).await.unwrap();
    assert!(again.get("cached").is_none(), "{again}");
    let r = reservation(&again);
    // Cached anew: its hits start over.
    finish(
        &pool,
        &alice,
        r,
        json!([attempt("gemini", "gemini-2.0-flash", "ok", 11, 21)]),
        Some(json!({"cache_key": hex_key, "model": "gemini-2.0-flash", "response": "Halo lagi"})),
    )
    .await
    .unwrap();
    let hit = begin(&pool, &alice, "chat", Some(&key), 40).await.unwrap();
    assert_eq!(hit["cached"], "Halo lagi");
    let hits = scalar_i64(
        &db,
        &format!("select hits from v_llm_cache where tenant_id = '{tenant}'"),
    )
    .await;
    assert_eq!(hits, 1);
}

#[tokio::test]
async fn the_margin_is_revenue_minus_ai_cost_in_idr_by_tenant_local_month() {
    let db = TestDb::new().await;
    let jakarta = db.create_tenant("jakarta").await;
    let new_york = db.create_tenant("new-york").await;
    let no_plan = db.create_tenant("no-plan").await;
    owner_exec(
        &db,
        &format!(
            "update tenants set time_zone = 'America/New_York' where tenant_id = '{new_york}';
             insert into plans (plan_code, label, monthly_price, currency) values
               ('pro', 'Pro', 1500000, 'IDR'), ('usd', 'Dollar plan', 100, 'USD');
             update tenants set plan_code = 'pro' where tenant_id = '{jakarta}';
             update tenants set plan_code = 'usd' where tenant_id = '{new_york}';
             insert into fx_rates (currency, effective_from, idr_per_unit) values
               ('USD', '2024-01-01', 16000), ('USD', '2024-02-01', 16200);
             insert into llm_calls (tenant_id, created_at, feature, provider, model, key_ref, tokens_in, tokens_out,
                                    outcome, cost, currency) values
               -- December 2023: no USD rate yet (the IDR call alone is no total).
               ('{jakarta}', '2023-12-10 05:00+00', 'chat', 'openai', 'gpt-4o-mini', 'platform:0', 1, 1, 'ok', 1.0, 'USD'),
               ('{jakarta}', '2023-12-11 05:00+00', 'digest', 'local', 'idr-model', 'platform:0', 1, 1, 'ok', 500, 'IDR'),
               -- 23:59:59 on 31 January in Jakarta (UTC+7)...
               ('{jakarta}', '2024-01-31 16:59:59+00', 'chat', 'openai', 'gpt-4o-mini', 'platform:0', 1, 1, 'ok', 0.5, 'USD'),
               -- ... and midnight of 1 February there.
               ('{jakarta}', '2024-01-31 17:00:00+00', 'chat', 'openai', 'gpt-4o-mini', 'platform:0', 1, 1, 'ok', 0.25, 'USD'),
               ('{jakarta}', '2024-01-15 05:00+00', 'chat', 'openai', 'gpt-4o-mini', 'cache', 1, 1, 'cache_hit', 0, null),
               ('{jakarta}', '2024-02-10 05:00+00', 'digest', 'local', 'idr-model', 'platform:0', 1, 1, 'ok', 1000, 'IDR'),
               -- 22:00 on 31 January in New York (UTC-5).
               ('{new_york}', '2024-02-01 03:00+00', 'chat', 'openai', 'gpt-4o-mini', 'platform:0', 1, 1, 'ok', 2, 'USD'),
               -- A call without a price in March.
               ('{new_york}', '2024-03-05 12:00+00', 'chat', 'openai', 'unpriced', 'platform:0', 10, 10, 'ok', null, null),
               ('{no_plan}', '2024-01-20 05:00+00', 'chat', 'openai', 'gpt-4o-mini', 'platform:0', 1, 1, 'ok', 1, 'USD');"
        ),
    )
    .await;

    type Row = (
        Uuid,
        String,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<f64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select tenant_id, month::text, revenue::float8, ai_cost_idr::float8, margin_idr::float8, revenue_idr::float8
           from v_llm_margin_monthly where month < '2025-01-01' order by tenant_id, month",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut want: Vec<Row> = vec![
        (
            jakarta,
            "2023-12-01".into(),
            Some(1_500_000.0),
            None,
            None,
            Some(1_500_000.0),
        ),
        (
            jakarta,
            "2024-01-01".into(),
            Some(1_500_000.0),
            Some(8_000.0),
            Some(1_492_000.0),
            Some(1_500_000.0),
        ),
        (
            jakarta,
            "2024-02-01".into(),
            Some(1_500_000.0),
            Some(5_050.0),
            Some(1_494_950.0),
            Some(1_500_000.0),
        ),
        (
            new_york,
            "2024-01-01".into(),
            Some(100.0),
            Some(32_000.0),
            Some(1_568_000.0),
            Some(1_600_000.0),
        ),
        (
            new_york,
            "2024-03-01".into(),
            Some(100.0),
            None,
            None,
            Some(1_620_000.0),
        ),
        (
            no_plan,
            "2024-01-01".into(),
            None,
            Some(16_000.0),
            None,
            None,
        ),
    ];
    want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    assert_eq!(rows, want);

    // Every tenant has its current month, without AI cost so far.
    let current: Vec<(Uuid, Option<f64>, Option<String>)> = sqlx::query_as(
        "select m.tenant_id, m.ai_cost_idr::float8, m.revenue_currency from v_llm_margin_monthly m
          join v_tenant_today t on t.tenant_id = m.tenant_id
         where m.month = date_trunc('month', t.today)::date order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut tenants = vec![jakarta, new_york, no_plan];
    tenants.sort();
    assert_eq!(
        current.iter().map(|c| c.0).collect::<Vec<_>>(),
        tenants,
        "{current:?}"
    );
    assert!(current.iter().all(|c| c.1 == Some(0.0)), "{current:?}");

    // The days are the tenant's too.
    let days: Vec<(String, i64, f64)> = sqlx::query_as(
        "select day::text, calls, cost::float8 from v_llm_cost_daily
          where tenant_id = $1 and currency = 'USD' and day between '2024-01-31' and '2024-02-01' order by day",
    )
    .bind(jakarta)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        days,
        [
            ("2024-01-31".into(), 1, 0.5),
            ("2024-02-01".into(), 1, 0.25)
        ]
    );

    // Analysts and BI read the same numbers in `analytics`; request roles
    // do not read the margin at all.
    for view in [
        "v_llm_margin_monthly",
        "v_llm_cost_monthly",
        "v_llm_cost_daily",
    ] {
        let want: Vec<String> =
            sqlx::query_scalar(&format!("select t::text from {view} t order by 1"))
                .fetch_all(&db.owner)
                .await
                .unwrap();
        assert!(!want.is_empty(), "{view}");
        for login in ["bizos_analyst", "bizos_bi"] {
            let got: Vec<String> = sqlx::query_scalar(&format!(
                "select t::text from analytics.{view} t order by 1"
            ))
            .fetch_all(&db.pool_as(login))
            .await
            .unwrap();
            assert_eq!(got, want, "{login}: analytics.{view}");
        }
    }
    let admin = db.create_user(jakarta, "super_admin").await;
    let mut tx = db.as_user(&admin).await;
    let err = sqlx::query("select count(*) from v_llm_margin_monthly")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
}

#[tokio::test]
async fn keys_limits_and_other_tenants_are_guarded() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let other = db.create_tenant("globex").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let other_admin = db.create_user(other, "super_admin").await;
    let pool = app_pool(&db, 5).await;

    // A super admin adds a key (bytes as the BFF encrypts them).
    let mut tx = db.as_user(&admin).await;
    let key_id: Uuid = sqlx::query_scalar(
        "select llm_key_add('openai', 'Kunci produksi', '\\xdeadbeef', $1, $2, $3, 'master-1')",
    )
    .bind(vec![1u8; 12])
    .bind(vec![2u8; 48])
    .bind(vec![3u8; 12])
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for who in [&director, &alice] {
        let mut tx = db.as_user(who).await;
        let err = sqlx::query(
            "select llm_key_add('openai', 'x', '\\x01', '\\x0102030405060708', '\\x0102030405060708090a0b0c0d0e0f10',
                                '\\x0102030405060708', 'm')",
        )
        .execute(&mut *tx)
        .await
        .unwrap_err();
        assert_eq!(code(&err), "42501", "{err}");
    }

    // Request roles never read the bytes, nor the material function; the
    // super admin reads the metadata, a director not even that.
    for column in ["ciphertext", "nonce", "wrapped_dek", "dek_nonce", "*"] {
        let mut tx = db.as_user(&admin).await;
        let err = sqlx::query(&format!("select {column} from llm_tenant_keys"))
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{column}: {err}");
    }
    let mut tx = db.as_user(&admin).await;
    let err = sqlx::query("select * from llm_key_material($1, 'openai')")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    drop(tx);
    let mut tx = db.as_user(&admin).await;
    let seen: Vec<(Uuid, String, String)> =
        sqlx::query_as("select key_id, label, status from v_llm_keys")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    assert_eq!(seen, [(key_id, "Kunci produksi".into(), "active".into())]);
    drop(tx);
    let mut tx = db.as_user(&director).await;
    let n: i64 = sqlx::query_scalar("select count(*) from v_llm_keys")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(tx);

    // The BFF's and the worker's logins get the material, outside any
    // user transaction; revoked keys are gone from it.
    for login in ["bizos_app", "bizos_worker"] {
        type Material = (Uuid, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, String);
        let rows: Vec<Material> = sqlx::query_as(
            "select key_id, ciphertext, nonce, wrapped_dek, dek_nonce, master_key_id
               from llm_key_material($1, 'openai')",
        )
        .bind(tenant)
        .fetch_all(&db.pool_as(login))
        .await
        .unwrap();
        assert_eq!(
            rows,
            [(
                key_id,
                vec![0xde, 0xad, 0xbe, 0xef],
                vec![1u8; 12],
                vec![2u8; 48],
                vec![3u8; 12],
                "master-1".into()
            )],
            "{login}"
        );
    }
    let mut tx = db.as_user(&other_admin).await;
    let err = sqlx::query_scalar::<_, Value>("select llm_key_revoke($1)")
        .bind(key_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0002", "another tenant's key: {err}");
    drop(tx);
    let mut tx = db.as_user(&admin).await;
    let revoked: Value = sqlx::query_scalar("select llm_key_revoke($1)")
        .bind(key_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    assert!(revoked.get("ciphertext").is_none());
    let n: i64 = sqlx::query_scalar("select count(*) from llm_key_material($1, 'openai')")
        .bind(tenant)
        .fetch_one(&db.app)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // A user acts for themselves only.
    for (t, u, what) in [
        (other, alice.user_id, "tenant_id"),
        (tenant, admin.user_id, "user_id"),
    ] {
        let mut tx = user_tx(&pool, &alice).await;
        let err = sqlx::query("select llm_begin($1, $2, 'chat', null, 10, null)")
            .bind(t)
            .bind(u)
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), field(&err)),
            ("42501".into(), Some(what.into())),
            "{err}"
        );
    }
    // Without claims, only the worker and the owner do system work: the
    // BFF's login may call the gateway's functions (a request's one
    // statement calls them before its switch to the request role), but
    // they refuse it without claims.
    for call in [
        "select llm_begin($1, null, 'chat', null, 10, null)",
        "select llm_finish($1, gen_random_uuid(), '[]', null)",
    ] {
        let err = sqlx::query(call)
            .bind(tenant)
            .execute(&db.app)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{call}: {err}");
        assert_eq!(message(&err), "no user in the request claims", "{call}");
    }
    let begun: Value = sqlx::query_scalar("select llm_begin($1, null, 'chat', null, 10, null)")
        .bind(tenant)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap();
    let r = reservation(&begun);
    // ... and a user cannot finish the system's generation.
    let err = finish(&pool, &alice, r, json!([]), None).await.unwrap_err();
    assert_eq!(code(&err), "P0002", "{err}");
    let mut tx = user_tx(&pool, &alice).await;
    let err = sqlx::query("select llm_finish($1, $2, '[]', null)")
        .bind(other)
        .bind(r)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    drop(tx);
    // An unknown feature names the field.
    let err = begin(&pool, &alice, "poetry", None, 1).await.unwrap_err();
    assert_eq!(
        (code(&err), field(&err)),
        ("P0001".into(), Some("feature".into()))
    );
    assert!(
        message(&err).starts_with("feature: must be one of chat, digest"),
        "{err}"
    );

    // Limits: the tenant scope is the operator's.
    let set = |who: Caller, t: Uuid, scope: &'static str, gens: Option<i32>| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            let out = sqlx::query_scalar::<_, Value>(
                "select llm_limit_set($1, 'segment_content', $2, $3, null)",
            )
            .bind(t)
            .bind(scope)
            .bind(gens)
            .fetch_one(&mut *tx)
            .await;
            if out.is_ok() {
                tx.commit().await.unwrap();
            }
            out
        }
    };
    let err = set(admin.clone(), tenant, "tenant", Some(100))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    // The product's default for segment_content is 10 a day per business:
    // a user limit within it is the super admin's to set, not above it,
    // and not unlimited.
    set(admin.clone(), tenant, "user", Some(4)).await.unwrap();
    for gens in [Some(11), None] {
        let err = set(admin.clone(), tenant, "user", gens).await.unwrap_err();
        assert_eq!(
            (code(&err), field(&err)),
            ("P0001".into(), Some("generations_per_day".into())),
            "{gens:?}: {err}"
        );
        assert_eq!(
            message(&err),
            "generations_per_day: must not be above the tenant limit of 10"
        );
    }
    for (who, t) in [
        (director.clone(), tenant),
        (alice.clone(), tenant),
        (admin.clone(), other),
    ] {
        let err = set(who, t, "user", Some(1)).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{err}");
    }
    // The owner raises the tenant's limit; then the user limit may follow.
    owner_exec(
        &db,
        &format!("select llm_limit_set('{tenant}', 'segment_content', 'tenant', 50, null)"),
    )
    .await;
    set(admin.clone(), tenant, "user", Some(20)).await.unwrap();
    let limits: Vec<(String, Option<i32>, bool)> = sqlx::query_as(
        "select scope, generations_per_day, is_default from v_llm_limits
          where tenant_id = $1 and feature = 'segment_content' order by scope",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        limits,
        [
            ("tenant".into(), Some(50), false),
            ("user".into(), Some(20), false)
        ]
    );
    // And the owner is held to the same rule.
    let err = sqlx::query("select llm_limit_set($1, 'segment_content', 'user', 51, null)")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("generations_per_day"));
}

#[tokio::test]
async fn routes_and_providers_are_data_the_owner_sets() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let chain = |rows: Vec<(i32, String, String, String, String)>| {
        rows.into_iter()
            .map(|r| format!("{} {} {} {} {}", r.0, r.1, r.2, r.3, r.4))
            .collect::<Vec<_>>()
    };
    let route = "select position, provider, wire, base_url, model from llm_route('chat')";
    let mut tx = db.as_user(&alice).await;
    let seeded = chain(sqlx::query_as(route).fetch_all(&mut *tx).await.unwrap());
    drop(tx);
    assert_eq!(
        seeded,
        [
            "1 gemini gemini https://generativelanguage.googleapis.com/v1beta gemini-2.0-flash",
            "2 gemini gemini https://generativelanguage.googleapis.com/v1beta gemini-1.5-flash",
            "3 openai openai https://api.openai.com/v1 gpt-4o-mini",
        ]
    );
    // Users may not change them.
    for sql in [
        "select llm_route_set('chat', '[]')",
        "select llm_provider_set('openai', 'openai', 'http://127.0.0.1:1/v1', 'x')",
    ] {
        let mut tx = db.as_user(&alice).await;
        let err = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    // The owner points a provider at a stand-in and reorders the chain.
    owner_exec(
        &db,
        "select llm_provider_set('standin', 'openai', 'http://127.0.0.1:54372/openai/v1/', 'Stand-in');
         select llm_route_set('chat', '[{\"provider\": \"standin\", \"model\": \"m-1\"},
                                        {\"provider\": \"gemini\", \"model\": \"gemini-2.0-flash\"}]');",
    )
    .await;
    let rows = chain(
        sqlx::query_as(route)
            .fetch_all(&db.pool_as("bizos_worker"))
            .await
            .unwrap(),
    );
    assert_eq!(
        rows,
        [
            "1 standin openai http://127.0.0.1:54372/openai/v1 m-1",
            "2 gemini gemini https://generativelanguage.googleapis.com/v1beta gemini-2.0-flash",
        ]
    );
    let err =
        sqlx::query("select llm_route_set('chat', '[{\"provider\": \"nope\", \"model\": \"m\"}]')")
            .execute(&db.owner)
            .await
            .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("chain[0].provider"), "{err}");
    let err = sqlx::query("select * from llm_route('poetry')")
        .execute(&db.owner)
        .await
        .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("feature"), "{err}");
}

#[tokio::test]
async fn usage_is_read_by_admins_and_directors_per_day_month_feature_and_model() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let pool = app_pool(&db, 5).await;
    for (feature, model, tokens) in [
        ("chat", "gemini-2.0-flash", 100),
        ("chat", "gpt-4o-mini", 200),
        ("digest", "gpt-4o-mini", 300),
    ] {
        let provider = if model.starts_with("gemini") {
            "gemini"
        } else {
            "openai"
        };
        let r = reservation(&begin(&pool, &alice, feature, None, 10).await.unwrap());
        finish(
            &pool,
            &alice,
            r,
            json!([attempt(provider, model, "ok", tokens, tokens)]),
            None,
        )
        .await
        .unwrap();
    }
    let today = bizos_tests::tenant_today();
    let usage = |who: Caller, group_by: &'static str| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            sqlx::query_scalar::<_, Value>("select llm_usage($1, $2, $3)")
                .bind(today - chrono::Duration::days(1))
                .bind(today)
                .bind(group_by)
                .fetch_all(&mut *tx)
                .await
                .unwrap()
        }
    };
    let by_feature = usage(admin.clone(), "feature").await;
    let calls: Vec<(String, f64)> = by_feature
        .iter()
        .map(|r| {
            (
                r["feature"].as_str().unwrap().to_owned(),
                num(&r["tokens_in"]),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [("chat".to_owned(), 300.0), ("digest".to_owned(), 300.0)]
    );
    let by_model = usage(director.clone(), "model").await;
    assert_eq!(by_model.len(), 2, "{by_model:?}");
    let gpt = by_model
        .iter()
        .find(|r| r["model"] == "gpt-4o-mini")
        .unwrap();
    assert_eq!(num(&gpt["calls"]), 2.0);
    // (200 + 300) * 0.15 / 1e6 + (200 + 300) * 0.60 / 1e6
    assert!((num(&gpt["cost"]) - 0.000375).abs() < 1e-12, "{gpt}");
    let by_day = usage(admin.clone(), "day").await;
    assert_eq!(by_day.len(), 1, "{by_day:?}");
    assert_eq!(num(&by_day[0]["calls"]), 3.0);
    assert_eq!(by_day[0]["currency"], "USD");
    assert!(usage(alice.clone(), "month").await.is_empty());
    let mut tx = db.as_user(&admin).await;
    let err = sqlx::query("select llm_usage($1, $1, 'week')")
        .bind(today)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("group_by"));
}
