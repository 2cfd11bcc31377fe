//! `scripts/bench llm` (bench/llm/run): what the LLM gateway adds to a call.
//!
//! Against a database cloned by the test harness from
//! `BIZOS_TEST_ADMIN_URL` (the benchmark's own cluster) and the provider
//! stand-in in this process:
//!
//! 1. **Added latency**: N calls of the same shape, alternating, a call
//!    straight to the stand-in (`provider::Client::chat`) and a call
//!    through `Gateway::chat` (masking, cache lookup and reservation in
//!    `llm_begin`, the provider call, `llm_finish` with its ledger row and
//!    cache write) with a text never seen before (a cache miss). p50 and
//!    p99 of each; the added latency is the difference (goal p99 added
//!    ≤ 5 ms).
//! 2. **Cache hits**: C clients asking one cached question for S seconds
//!    (each hit: masking, `llm_begin` finding the entry, its ledger row);
//!    hits/s (goal ≥ 2,000) and the p50/p99 of a hit.
//!
//! BIZOS_BENCH_LLM_N (2000), BIZOS_BENCH_LLM_CLIENTS (8), BIZOS_BENCH_SECS
//! (10); BIZOS_BENCH_LLM_PROFILE=1 adds the SQL functions' timings on
//! stderr. The report (markdown) goes to stdout, progress to stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_bff::llm::breaker::BreakerSettings;
use bizos_bff::llm::keys::KeySettings;
use bizos_bff::llm::provider::{ChatRequest, Client, Endpoint, Message, Wire};
use bizos_bff::llm::retry::RetrySettings;
use bizos_bff::llm::{CallContext, Gateway, GatewayRequest, LlmSettings, Login, Source};
use bizos_tests::llm_standin::StandIn;
use bizos_tests::TestDb;
use secrecy::SecretString;
use serde_json::json;
use sqlx::postgres::PgConnectOptions;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A realistic question with PII in it; `i` makes it unique.
fn question(i: usize) -> String {
    format!(
        "Pelanggan PT Maju Jaya {i} (PIC Budi, HP 0812-3456-{:04}, email budi{i}@majujaya.co.id, \
         NPWP 01.234.567.8-901.000) minta penawaran ulang untuk RFQ INV-2026-{i:06}: 20 ton \
         semen dari Jakarta ke Surabaya, pembayaran ke rekening BCA no. rek 1234567890. \
         Tolong ringkas permintaannya dan sarankan langkah berikutnya.",
        i % 10_000
    )
}

/// With BIZOS_BENCH_LLM_PROFILE=1 (and `track_functions = all` on the
/// cluster, which bench/llm/run sets then): the SQL functions the run
/// called, by total time, on stderr.
async fn print_profile(db: &TestDb) -> anyhow::Result<()> {
    // Other backends flush their counters at most once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows: Vec<(String, i64, f64, f64)> = sqlx::query_as(
        "select funcname::text, calls, total_time / calls, self_time / calls
           from pg_stat_user_functions where calls > 0 order by total_time desc limit 25",
    )
    .fetch_all(&db.owner)
    .await?;
    eprintln!("==> SQL functions (ms per call: total, self)");
    for (name, calls, total, own) in rows {
        eprintln!("{name:>32} {calls:>8} {total:>9.3} {own:>9.3}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = env_or("BIZOS_BENCH_LLM_N", 2000);
    let clients: usize = env_or("BIZOS_BENCH_LLM_CLIENTS", 8);
    let secs: u64 = env_or("BIZOS_BENCH_SECS", 10);
    let profile = env_or("BIZOS_BENCH_LLM_PROFILE", 0) == 1;

    eprintln!(
        "==> database (harness template on {})",
        bizos_tests::admin_url()
    );
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    standin.set_recording(false);
    sqlx::query("select llm_provider_set('openai', 'openai', $1, 'stand-in')")
        .bind(&standin.base_url_openai)
        .execute(&db.owner)
        .await?;
    sqlx::query("select llm_route_set('chat', $1)")
        .bind(json!([{"provider": "openai", "model": "o-1"}]))
        .execute(&db.owner)
        .await?;
    let tenant = db.create_tenant("bench").await;
    let user = db.create_user(tenant, "salesperson").await;

    let options: PgConnectOptions = db.url("bizos_app").parse()?;
    let pool = bizos_bff::pool::pool_options()
        .max_connections(u32::try_from(clients * 2).unwrap_or(16))
        .connect_with(options)
        .await?;
    let settings = LlmSettings {
        master_key: None,
        master_key_id: "k1".into(),
        master_keys_previous: None,
        platform_keys: [("openai".to_owned(), vec![SecretString::from("bench-key")])].into(),
        connect_timeout: Duration::from_secs(3),
        timeout: Duration::from_secs(20),
        budget: Duration::from_secs(25),
        max_in_flight: 256,
        retry: RetrySettings {
            retries: 0,
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
        },
        breaker: BreakerSettings {
            failures: 1000,
            cool_off: Duration::from_secs(1),
        },
        keys: KeySettings {
            tenant_keys_ttl: Duration::from_secs(60),
            rate_limited_cooldown: Duration::from_secs(1),
            unauthorized_cooldown: Duration::from_secs(1),
        },
        catalog_ttl: Duration::from_secs(3600),
    };
    let gateway = Gateway::new(pool, Login::App, &settings)?;
    let ctx = CallContext::for_caller(&user, true);
    let client = Client::new(Duration::from_secs(3), Duration::from_secs(20));
    let endpoint = Endpoint {
        provider: "openai".into(),
        wire: Wire::OpenAi,
        base_url: standin.base_url_openai.clone(),
    };
    let request = |text: String| GatewayRequest {
        messages: vec![
            Message::system("You are a helpful assistant."),
            Message::user(text),
        ],
        ..GatewayRequest::default()
    };

    // Warm up both paths (connections, catalogue, first allocations).
    for i in 0..50 {
        let text = question(1_000_000 + i);
        client
            .chat(
                &endpoint,
                "bench-key",
                &ChatRequest {
                    model: "o-1".into(),
                    messages: request(text.clone()).messages,
                    temperature: None,
                    max_output_tokens: None,
                    json_schema: None,
                },
            )
            .await?;
        gateway.chat(&ctx, "chat", request(text)).await?;
    }

    // The cluster was just created and the database migrated: write that
    // out now, so the measurement does not share the disk with it.
    sqlx::query("vacuum analyze").execute(&db.owner).await?;
    let (admin, conn) =
        tokio_postgres::connect(&bizos_tests::admin_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    admin.batch_execute("checkpoint").await?;

    eprintln!("==> added latency: {n} direct calls and {n} gateway calls (misses), alternating");
    let (mut direct, mut through) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let text = question(i);
        let req = ChatRequest {
            model: "o-1".into(),
            messages: request(text.clone()).messages,
            temperature: None,
            max_output_tokens: None,
            json_schema: None,
        };
        let run_direct = async {
            let t0 = Instant::now();
            client.chat(&endpoint, "bench-key", &req).await?;
            anyhow::Ok(t0.elapsed())
        };
        let run_gateway = async {
            let t0 = Instant::now();
            let answer = gateway.chat(&ctx, "chat", request(text.clone())).await?;
            anyhow::ensure!(
                matches!(answer.source, Source::Model { .. }),
                "a miss was answered by {:?}",
                answer.source
            );
            anyhow::Ok(t0.elapsed())
        };
        if i % 2 == 0 {
            direct.push(run_direct.await?);
            through.push(run_gateway.await?);
        } else {
            through.push(run_gateway.await?);
            direct.push(run_direct.await?);
        }
    }
    direct.sort();
    through.sort();

    eprintln!("==> cache hits: {clients} clients for {secs} s");
    let hit_text = question(9_999_999);
    let primed = gateway
        .chat(&ctx, "chat", request(hit_text.clone()))
        .await?;
    anyhow::ensure!(matches!(primed.source, Source::Model { .. }));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (gateway, ctx, stop, text) =
            (gateway.clone(), ctx.clone(), stop.clone(), hit_text.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let answer = gateway
                    .chat(
                        &ctx,
                        "chat",
                        GatewayRequest {
                            messages: vec![
                                Message::system("You are a helpful assistant."),
                                Message::user(text.clone()),
                            ],
                            ..GatewayRequest::default()
                        },
                    )
                    .await?;
                anyhow::ensure!(
                    answer.source == Source::Cache,
                    "not a hit: {:?}",
                    answer.source
                );
                lat.push(t0.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut hits = Vec::new();
    for t in tasks {
        hits.extend(t.await??);
    }
    let elapsed = started.elapsed();
    hits.sort();
    let per_s = hits.len() as f64 / elapsed.as_secs_f64();

    if profile {
        print_profile(&db).await?;
    }

    let added_p50 = pct(&through, 0.5).saturating_sub(pct(&direct, 0.5));
    let added_p99 = pct(&through, 0.99).saturating_sub(pct(&direct, 0.99));
    println!("### LLM gateway (issue 15)\n");
    println!("| measurement | p50 | p99 | note |");
    println!("|---|---|---|---|");
    println!(
        "| stand-in called directly (`provider::Client::chat`), {n} calls | {} | {} | baseline |",
        ms(pct(&direct, 0.5)),
        ms(pct(&direct, 0.99))
    );
    println!(
        "| through `Gateway::chat`, cache miss, {n} calls | {} | {} | masking, `llm_begin`, provider, `llm_finish` |",
        ms(pct(&through, 0.5)),
        ms(pct(&through, 0.99))
    );
    println!(
        "| **added by the gateway** | **{}** | **{}** | goal p99 ≤ 5 ms: {} |",
        ms(added_p50),
        ms(added_p99),
        if added_p99 <= Duration::from_millis(5) {
            "met"
        } else {
            "**not met**"
        }
    );
    println!(
        "| cache hit, {clients} clients, {secs} s | {} | {} | **{:.0} hits/s** (goal ≥ 2,000: {}) |",
        ms(pct(&hits, 0.5)),
        ms(pct(&hits, 0.99)),
        per_s,
        if per_s >= 2000.0 { "met" } else { "**not met**" }
    );
    Ok(())
}
