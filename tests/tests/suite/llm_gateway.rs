//! The LLM gateway end to end: real HTTP through a BFF, a real
//! database, the provider stand-in on loopback (`tests/src/llm_standin.rs`).
//!
//! Every test points the catalogue's two providers at its own stand-in and
//! routes `chat` through gemini `g-1` → gemini `g-2` → openai `o-1`, with
//! platform keys `gk-1,gk-2` (gemini) and `ok-1` (openai).

mod available;

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::llm::features::CHAT_UNAVAILABLE;
use bizos_tests::llm_standin::{echo_of, StandIn, Step, Wire};
use bizos_tests::{spawn_app_with, status_and_json, TestApp, TestDb};

use crate::pii_corpus::generator;
use serde_json::{json, Value};
use uuid::Uuid;

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

struct Llm {
    db: TestDb,
    app: TestApp,
    standin: StandIn,
    tenant: Uuid,
    user: Caller,
}

/// The database of a test with its providers at a new stand-in.
async fn database() -> (TestDb, StandIn) {
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    for (provider, url) in [
        ("gemini", standin.base_url_gemini.clone()),
        ("openai", standin.base_url_openai.clone()),
    ] {
        sqlx::query("select llm_provider_set($1, $1, $2, $1)")
            .bind(provider)
            .bind(url)
            .execute(&db.owner)
            .await
            .expect("point the provider at the stand-in");
    }
    sqlx::query("select llm_route_set('chat', $1)")
        .bind(json!([
            {"provider": "gemini", "model": "g-1"},
            {"provider": "gemini", "model": "g-2"},
            {"provider": "openai", "model": "o-1"},
        ]))
        .execute(&db.owner)
        .await
        .expect("route chat");
    (db, standin)
}

const BASE_ENV: [(&str, &str); 8] = [
    ("BIZOS_LLM_KEYS_GEMINI", "gk-1,gk-2"),
    ("BIZOS_LLM_KEYS_OPENAI", "ok-1"),
    ("BIZOS_LLM_BACKOFF_MS", "5"),
    ("BIZOS_LLM_BACKOFF_MAX_MS", "50"),
    ("BIZOS_LLM_TIMEOUT_MS", "5000"),
    ("BIZOS_LLM_BUDGET_MS", "15000"),
    ("BIZOS_LLM_MASTER_KEY", MASTER_KEY),
    ("TEST_WORKER", "off"),
];

async fn setup(extra: &[(&str, &str)]) -> Llm {
    let (db, standin) = database().await;
    let tenant = db.create_tenant("llm-a").await;
    let user = db.create_user(tenant, "salesperson").await;
    let mut env = BASE_ENV.to_vec();
    env.extend_from_slice(extra);
    let app = spawn_app_with(&db, &env).await;
    Llm {
        db,
        app,
        standin,
        tenant,
        user,
    }
}

async fn chat(app: &TestApp, who: &Caller, text: &str) -> (u16, Value) {
    app.post_json(
        who,
        "/api/ai/chat",
        &json!({"messages": [{"role": "user", "content": text}]}),
        None,
    )
    .await
}

/// (model, key, status) of every chat request the stand-in got.
fn calls(standin: &StandIn) -> Vec<(String, String, u16)> {
    standin
        .requests()
        .into_iter()
        .map(|r| (r.model, r.api_key.unwrap_or_default(), r.status))
        .collect()
}

/// The tenant's ledger, oldest first: (provider, model, key_ref, outcome,
/// tokens_in, tokens_out).
type LedgerRow = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
);

async fn ledger(db: &TestDb, tenant: Uuid) -> Vec<LedgerRow> {
    sqlx::query_as(
        "select provider, model, key_ref, outcome, tokens_in, tokens_out
           from llm_calls where tenant_id = $1
          order by created_at, reservation_id, attempt",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[tokio::test]
async fn a_call_falls_through_keys_models_and_providers() {
    let t = setup(&[
        ("BIZOS_LLM_RETRIES", "1"),
        ("BIZOS_LLM_BREAKER_FAILURES", "10"),
    ])
    .await;
    // g-1: the first key is rate limited, the second fails twice (one retry);
    // g-2: fails twice on the key left; openai answers.
    t.standin
        .script_model(Wire::Gemini, "g-1", Step::rate_limited("30"));
    t.standin
        .script_model(Wire::Gemini, "g-1", Step::status(500));
    t.standin
        .script_model(Wire::Gemini, "g-1", Step::status(500));
    t.standin
        .script_model(Wire::Gemini, "g-2", Step::status(503));
    t.standin
        .script_model(Wire::Gemini, "g-2", Step::status(502));
    let (status, body) = chat(&t.app, &t.user, "Berapa tarif Jakarta ke Surabaya?").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["source"], "model", "{body}");
    assert_eq!(
        (body["provider"].as_str(), body["model"].as_str()),
        (Some("openai"), Some("o-1"))
    );
    assert_eq!(body["text"], echo_of("Berapa tarif Jakarta ke Surabaya?"));
    let expected: Vec<(String, String, u16)> = [
        ("g-1", "gk-1", 429),
        ("g-1", "gk-2", 500),
        ("g-1", "gk-2", 500),
        ("g-2", "gk-2", 503),
        ("g-2", "gk-2", 502),
        ("o-1", "ok-1", 200),
    ]
    .iter()
    .map(|(m, k, s)| (m.to_string(), k.to_string(), *s))
    .collect();
    assert_eq!(calls(&t.standin), expected);
    let rows = ledger(&t.db, t.tenant).await;
    let refs: Vec<(Option<String>, String)> =
        rows.iter().map(|r| (r.2.clone(), r.3.clone())).collect();
    assert_eq!(
        refs,
        vec![
            (s("platform:1"), "error".into()),
            (s("platform:2"), "error".into()),
            (s("platform:2"), "error".into()),
            (s("platform:2"), "error".into()),
            (s("platform:2"), "error".into()),
            (s("platform:1"), "ok".into()),
        ]
    );
    assert_eq!(body["call_ids"].as_array().unwrap().len(), 6);

    // The rate-limited key rests (Retry-After 30 s): whatever the rotation,
    // the next call uses the other gemini key.
    t.standin.clear_requests();
    let (status, body) = chat(&t.app, &t.user, "Kapan truk berangkat?").await;
    assert_eq!(
        (status, body["model"].as_str()),
        (200, Some("g-1")),
        "{body}"
    );
    assert_eq!(calls(&t.standin), vec![("g-1".into(), "gk-2".into(), 200)]);
}

#[tokio::test]
async fn a_tenant_key_comes_first_and_a_revoked_one_is_not_used() {
    let t = setup(&[]).await;
    let admin = t.db.create_user(t.tenant, "super_admin").await;
    let (status, added) = t
        .app
        .post_json(
            &admin,
            "/api/ai/keys",
            &json!({"provider": "gemini", "label": "our own", "key": "tenant-gemini-key-0001"}),
            Some("add-key-1"),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert!(
        !added.to_string().contains("tenant-gemini-key-0001"),
        "{added}"
    );
    let key_id = added["key_id"].as_str().unwrap().to_owned();
    let stored: Vec<u8> =
        sqlx::query_scalar("select ciphertext from llm_tenant_keys where key_id = $1::uuid")
            .bind(&key_id)
            .fetch_one(&t.db.owner)
            .await
            .unwrap();
    assert!(
        !stored.windows(6).any(|w| w == b"tenant"),
        "the key is stored sealed"
    );
    // A salesperson may not add keys.
    let (status, _) = t
        .app
        .post_json(
            &t.user,
            "/api/ai/keys",
            &json!({"provider": "gemini", "label": "mine", "key": "sales-key-000001"}),
            None,
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = chat(&t.app, &t.user, "Halo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        calls(&t.standin),
        vec![("g-1".into(), "tenant-gemini-key-0001".into(), 200)]
    );
    let rows = ledger(&t.db, t.tenant).await;
    assert_eq!(rows[0].2, Some(format!("tenant:{key_id}")));

    // The listing shows metadata only.
    let (status, list) = t.app.get_json(&admin, "/api/ai/keys").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert!(
        list["items"][0].get("ciphertext").is_none() && !list.to_string().contains("tenant-gemini"),
        "{list}"
    );

    let res = t
        .app
        .request_as(
            &admin,
            reqwest::Method::DELETE,
            &format!("/api/ai/keys/{key_id}"),
            None,
        )
        .send()
        .await
        .unwrap();
    let (status, revoked) = status_and_json(res).await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    t.standin.clear_requests();
    let (status, _) = chat(&t.app, &t.user, "Halo lagi").await;
    assert_eq!(status, 200);
    let keys: Vec<String> = calls(&t.standin).into_iter().map(|c| c.1).collect();
    assert!(keys.iter().all(|k| k.starts_with("gk-")), "{keys:?}");
}

#[tokio::test]
async fn after_a_master_key_rotation_rewrap_moves_tenant_keys_to_the_new_key() {
    const NEW_KEY: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";
    let t = setup(&[]).await;
    let admin = t.db.create_user(t.tenant, "super_admin").await;
    let (status, added) = t
        .app
        .post_json(
            &admin,
            "/api/ai/keys",
            &json!({"provider": "gemini", "label": "ours", "key": "tenant-gemini-key-0002"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let key_id: Uuid = added["key_id"].as_str().unwrap().parse().unwrap();
    let sealed = || async {
        sqlx::query_as::<_, (String, Vec<u8>, Vec<u8>)>(
            "select master_key_id, wrapped_dek, ciphertext from llm_tenant_keys where key_id = $1",
        )
        .bind(key_id)
        .fetch_one(&t.db.owner)
        .await
        .unwrap()
    };
    let before = sealed().await;
    assert_eq!(before.0, "k1");

    // Without the old key the new one cannot open it: reported, kept, failed.
    let (ok, lines, _) = bizos_llm_with(
        &t.db,
        &["keys", "rewrap"],
        &[
            ("BIZOS_LLM_MASTER_KEY", NEW_KEY),
            ("BIZOS_LLM_MASTER_KEY_ID", "k2"),
        ],
    );
    assert!(!ok);
    assert_eq!(lines[0]["key_id"], key_id.to_string(), "{lines:?}");
    assert!(lines[0]["error"].is_string(), "{lines:?}");
    assert_eq!(lines[1]["failed"], 1, "{lines:?}");
    assert_eq!(sealed().await, before);

    let rotated = [
        ("BIZOS_LLM_MASTER_KEY", NEW_KEY),
        ("BIZOS_LLM_MASTER_KEY_ID", "k2"),
        (
            "BIZOS_LLM_MASTER_KEYS_PREVIOUS",
            &format!("k1:{MASTER_KEY}"),
        ),
    ];
    let (ok, lines, err) = bizos_llm_with(&t.db, &["keys", "rewrap"], &rotated);
    assert!(ok, "{err}");
    assert_eq!(
        lines,
        [
            json!({"tenant_id": t.tenant, "key_id": key_id, "from": "k1", "to": "k2"}),
            json!({"rewrapped": 1, "failed": 0, "master_key_id": "k2"}),
        ]
    );
    let after = sealed().await;
    assert_eq!(after.0, "k2");
    assert_ne!(after.1, before.1, "the data key is sealed anew");
    assert_eq!(
        after.2, before.2,
        "the secret's own ciphertext is untouched"
    );
    // Again: nothing left to move.
    let (ok, lines, _) = bizos_llm_with(&t.db, &["keys", "rewrap"], &rotated);
    assert!(ok);
    assert_eq!(
        lines,
        [json!({"rewrapped": 0, "failed": 0, "master_key_id": "k2"})]
    );

    // A BFF with only the new master key uses the tenant's key.
    let mut env: Vec<(&str, &str)> = BASE_ENV
        .iter()
        .copied()
        .filter(|(k, _)| *k != "BIZOS_LLM_MASTER_KEY")
        .collect();
    env.extend([
        ("BIZOS_LLM_MASTER_KEY", NEW_KEY),
        ("BIZOS_LLM_MASTER_KEY_ID", "k2"),
    ]);
    let app = spawn_app_with(&t.db, &env).await;
    let (status, body) = chat(&app, &t.user, "Halo").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        calls(&t.standin),
        vec![("g-1".into(), "tenant-gemini-key-0002".into(), 200)]
    );
}

#[tokio::test]
async fn the_breaker_opens_after_failures_and_recovers_after_its_cool_off() {
    let t = setup(&[
        ("BIZOS_LLM_RETRIES", "0"),
        ("BIZOS_LLM_BREAKER_FAILURES", "2"),
        ("BIZOS_LLM_BREAKER_COOL_OFF_SECS", "1"),
    ])
    .await;
    let gemini = |t: &Llm| {
        t.standin
            .requests()
            .iter()
            .filter(|r| r.wire == Wire::Gemini)
            .count()
    };
    // Two failures of gemini (g-1 then g-2) in the first call open it.
    t.standin.script_wire(Wire::Gemini, Step::status(500));
    t.standin.script_wire(Wire::Gemini, Step::status(500));
    let (status, body) = chat(&t.app, &t.user, "satu").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("openai")),
        "{body}"
    );
    assert_eq!(gemini(&t), 2);
    // Open: gemini is not called at all.
    for text in ["dua", "tiga"] {
        let (status, body) = chat(&t.app, &t.user, text).await;
        assert_eq!(
            (status, body["provider"].as_str()),
            (200, Some("openai")),
            "{body}"
        );
    }
    assert_eq!(gemini(&t), 2, "an open breaker sends nothing");
    // After the cool-off one probe goes through; it succeeds and closes it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = chat(&t.app, &t.user, "empat").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("gemini")),
        "{body}"
    );
    let (_, body) = chat(&t.app, &t.user, "lima").await;
    assert_eq!(body["model"], "g-1", "{body}");
    assert_eq!(gemini(&t), 4);
}

#[tokio::test]
async fn when_every_model_fails_the_fallback_answers_and_the_generation_is_given_back() {
    let t = setup(&[
        ("BIZOS_LLM_RETRIES", "1"),
        ("BIZOS_LLM_BREAKER_FAILURES", "100"),
    ])
    .await;
    // Limits: the fallback gives its generation back.
    sqlx::query("select llm_limit_set($1, 'chat', 'tenant', 1, null)")
        .bind(t.tenant)
        .execute(&t.db.owner)
        .await
        .unwrap();
    // Round 1: g-1 500 then (retry) malformed; g-2 404; o-1 500 twice.
    // Round 2: every model 500 twice (one retry each).
    let steps: [(Wire, &str, Vec<Step>); 3] = [
        (
            Wire::Gemini,
            "g-1",
            vec![
                Step::status(500),
                Step::Malformed,
                Step::status(500),
                Step::status(500),
            ],
        ),
        (
            Wire::Gemini,
            "g-2",
            vec![Step::status(404), Step::status(500), Step::status(500)],
        ),
        (
            Wire::OpenAi,
            "o-1",
            vec![
                Step::status(500),
                Step::status(500),
                Step::status(500),
                Step::status(500),
            ],
        ),
    ];
    for (wire, model, list) in steps {
        for step in list {
            t.standin.script_model(wire, model, step);
        }
    }
    for round in 0..2 {
        let (status, body) = chat(&t.app, &t.user, "Ringkas laporan kemarin").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["source"], "fallback", "round {round}: {body}");
        assert_eq!(body["text"], CHAT_UNAVAILABLE);
        assert!(body["provider"].is_null());
    }
    assert_eq!(t.standin.pending(), 0, "every scripted failure was met");
    assert_eq!(t.standin.requests().len(), 11);
    let rows = ledger(&t.db, t.tenant).await;
    let fallbacks = rows.iter().filter(|r| r.3 == "fallback").count();
    assert_eq!(fallbacks, 2);
    assert!(rows.iter().all(|r| r.3 == "fallback" || r.3 == "error"));
    let used: i64 = sqlx::query_scalar(
        "select coalesce(sum(used), 0)::bigint from llm_counters
          where tenant_id = $1 and period = 'day'",
    )
    .bind(t.tenant)
    .fetch_one(&t.db.owner)
    .await
    .unwrap();
    assert_eq!(used, 0, "fallbacks consume no generation");
    // No cache entry for a fallback.
    let cached: i64 = sqlx::query_scalar("select count(*) from llm_cache where tenant_id = $1")
        .bind(t.tenant)
        .fetch_one(&t.db.owner)
        .await
        .unwrap();
    assert_eq!(cached, 0);
}

#[tokio::test]
async fn crud_answers_while_the_provider_hangs() {
    // A hanging provider holds 20 chats for up to 20 s each; the pool has 5
    // connections. No chat holds one while it waits.
    let t = setup(&[
        ("BIZOS_LLM_TIMEOUT_MS", "20000"),
        ("BIZOS_LLM_BUDGET_MS", "20000"),
        ("BIZOS_LLM_RETRIES", "0"),
    ])
    .await;
    for _ in 0..60 {
        t.standin.script(Step::Hang);
    }
    let app = std::sync::Arc::new(t.app);
    let mut chats = Vec::new();
    for i in 0..20 {
        let (app, user) = (app.clone(), t.user.clone());
        chats.push(tokio::spawn(async move {
            chat(&app, &user, &format!("pertanyaan {i}")).await
        }));
    }
    // Wait until every chat is at the provider.
    let waited = Instant::now();
    while t.standin.requests().len() < 20 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(t.standin.requests().len(), 20);
    let manager = t.db.create_user(t.tenant, "sales_manager").await;
    let started = Instant::now();
    let (status, body) = app
        .post_json(
            &manager,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Tetap Jalan"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.get_json(&manager, "/api/leads").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1), "{body}");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "CRUD took {took:?} while 20 chats hang"
    );
    for c in &chats {
        assert!(!c.is_finished(), "the chats still wait for the provider");
    }
    for c in chats {
        c.abort();
    }
}

/// Realistic Indonesian business text with every kind of PII, and the
/// values that must never leave.
fn business_text() -> (String, Vec<&'static str>) {
    let values = vec![
        "3171012501900003",            // NIK
        "01.234.567.8-901.000",        // NPWP
        "0812-3456-7890",              // phone
        "+62 21 5551234",              // phone (landline)
        "budi.santoso@majujaya.co.id", // e-mail
        "4111 1111 1111 1111",         // card
        "1234567890",                  // bank account
    ];
    let text = format!(
        "Selamat pagi Bu Sari,\n\
         Terlampir data pelanggan baru PT Maju Jaya untuk RFQ INV-2026-000123:\n\
         - PIC: Budi Santoso, NIK {}, NPWP perusahaan {}\n\
         - HP/WA {} (kantor {}), email {}\n\
         Pembayaran DP Rp 15.000.000 sudah ditransfer dengan kartu kredit {}; \
         sisa ke rekening BCA no. rek {} a.n. PT Maju Jaya.\n\
         Mohon dicek, dan hubungi lagi {} bila ada pertanyaan. Terima kasih.",
        values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[2]
    );
    (text, values)
}

/// Every string inside a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[tokio::test]
async fn no_pii_leaves_for_a_provider() {
    let t = setup(&[]).await;
    let (text, values) = business_text();
    // Also the generated corpus: RFQs, WhatsApp chats, invoices, forms.
    let mut rng = generator::Rng::new(15);
    let mut inputs = vec![text.clone()];
    inputs.extend((0..40).map(|_| generator::document(&mut rng).text));
    for (i, input) in inputs.iter().enumerate() {
        let (status, body) = chat(&t.app, &t.user, input).await;
        assert_eq!(status, 200, "{i}: {body}");
    }
    let requests = t.standin.requests();
    assert_eq!(requests.len(), inputs.len());
    for (i, r) in requests.iter().enumerate() {
        let mut texts = Vec::new();
        strings(&r.body, &mut texts);
        for s in &texts {
            let found = bizos_core::pii::detect(s);
            assert!(
                found.is_empty(),
                "the detector finds {:?} in an outbound body: {s}",
                found
                    .iter()
                    .map(|f| (f.kind.name(), &s[f.start..f.end]))
                    .collect::<Vec<_>>()
            );
        }
        if i > 0 {
            continue;
        }
        let raw = r.body.to_string();
        let raw_digits = digits(&raw);
        for v in &values {
            assert!(!raw.contains(v), "{v} left in {raw}");
            let d = digits(v);
            if d.len() >= 10 {
                assert!(
                    !raw_digits.contains(&d[d.len() - 10..]),
                    "{v} (digits) left in {raw}"
                );
            }
        }
    }
    // The placeholders were stable: the phone named twice is one placeholder.
    let first = requests[0].body.to_string();
    assert_eq!(first.matches("[PHONE_1]").count(), 2, "{first}");
    assert!(
        first.contains("[PHONE_2]") && first.contains("[NIK_1]") && first.contains("[EMAIL_1]"),
        "{first}"
    );

    // Chat re-inserts (the caller wrote the text): the answer has the originals.
    let (_, body) = chat(&t.app, &t.user, &text).await;
    assert_eq!(body["source"], "cache", "{body}");
    let answer = body["text"].as_str().unwrap();
    assert!(
        answer.contains("3171012501900003") && answer.contains("0812-3456-7890"),
        "{answer}"
    );
    // What the tenant's cache and ledger hold is masked.
    let cached: Vec<Value> =
        sqlx::query_scalar("select response from llm_cache where tenant_id = $1")
            .bind(t.tenant)
            .fetch_all(&t.db.owner)
            .await
            .unwrap();
    for c in cached {
        for v in &values {
            assert!(!c.to_string().contains(v), "{v} cached in {c}");
        }
    }
}

/// PII typed in other scripts' digits, spaced one by one, wrapped by a
/// line break, cut by a zero-width space or glued to its keyword does not
/// reach the provider either: no labelled value of the disguised corpus
/// (compared as the digits it spells) is in an outbound body.
#[tokio::test]
async fn disguised_pii_does_not_leave_for_a_provider() {
    let t = setup(&[]).await;
    let mut rng = generator::Rng::new(16);
    let mut docs = vec![generator::parse_labelled(
        "KTP-[[NIK:3273015203850123]], WA [[PHONE:０８１２-３４５６-７８９０]], \
         istri [[PHONE:٠٨١٣ ١١١١ ٢٢٢٢]], hp [[PHONE:0 8 5 7 1 1 2 2 3 3 4 4]], \
         NPWP [[NPWP:01.000.013.1-\n093.000]], HP[[PHONE:081298765432]], \
         rek [[BANK_ACCOUNT:1234\u{200B}567890]], lagi [[PHONE:0812 3456 7890]]",
    )];
    docs.extend((0..30).map(|_| generator::disguised_document(&mut rng)));
    for (i, d) in docs.iter().enumerate() {
        let (status, body) = chat(&t.app, &t.user, &d.text).await;
        assert_eq!(status, 200, "{i}: {body}");
    }
    let requests = t.standin.requests();
    assert_eq!(requests.len(), docs.len());
    for (d, r) in docs.iter().zip(&requests) {
        let mut texts = Vec::new();
        strings(&r.body, &mut texts);
        let outbound: String = texts
            .iter()
            .map(|s| digits(&bizos_core::pii::folded(s)))
            .collect();
        let chars: Vec<char> = d.text.chars().collect();
        for l in &d.labels {
            let value: String = chars[l.start..l.end].iter().collect();
            let spelled = digits(&bizos_core::pii::folded(&value));
            assert!(
                spelled.len() < 10 || !outbound.contains(&spelled[spelled.len() - 10..]),
                "{} {value:?} left in {texts:?}",
                l.kind
            );
        }
    }
    // Numbers in other scripts get placeholders of their own (not one for
    // all, as when only ASCII digits were compared), and one number typed
    // in two scripts gets one.
    let first = requests[0].body.to_string();
    assert!(
        first.contains("[PHONE_1]") && first.contains("[PHONE_4]"),
        "{first}"
    );
    assert!(!first.contains("[PHONE_5]"), "{first}");
}

#[tokio::test]
async fn an_identical_masked_question_hits_the_cache_of_its_tenant_only() {
    let (db, standin) = database().await;
    let a = db.create_tenant("llm-a").await;
    let b = db.create_tenant("llm-b").await;
    let ua = db.create_user(a, "salesperson").await;
    let ua2 = db.create_user(a, "ops").await;
    let ub = db.create_user(b, "salesperson").await;
    let app = spawn_app_with(&db, &BASE_ENV).await;

    let (_, first) = chat(&app, &ua, "Tolong hubungi 0812-3456-7890 untuk konfirmasi").await;
    assert_eq!(first["source"], "model", "{first}");
    // The same question, and one with another number (the same masked
    // text), by another user of the tenant: cache hits, no provider call.
    let (_, again) = chat(&app, &ua2, "Tolong hubungi 0812-3456-7890 untuk konfirmasi").await;
    assert_eq!(again["source"], "cache", "{again}");
    assert_eq!(again["text"], first["text"]);
    let (_, other) = chat(&app, &ua, "Tolong hubungi 0857-1111-2222 untuk konfirmasi").await;
    assert_eq!(other["source"], "cache", "{other}");
    assert_eq!(
        other["text"],
        echo_of("Tolong hubungi 0857-1111-2222 untuk konfirmasi")
    );
    assert_eq!(standin.requests().len(), 1);
    // Another tenant never sees it.
    let (_, theirs) = chat(&app, &ub, "Tolong hubungi 0812-3456-7890 untuk konfirmasi").await;
    assert_eq!(theirs["source"], "model", "{theirs}");
    assert_eq!(standin.requests().len(), 2);
    // A different question is a miss.
    let (_, miss) = chat(&app, &ua, "Tolong hubungi 0812-3456-7890 besok").await;
    assert_eq!(miss["source"], "model");

    let rows = ledger(&db, a).await;
    let hits: Vec<&LedgerRow> = rows.iter().filter(|r| r.3 == "cache_hit").collect();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|r| r.2.as_deref() == Some("cache")));
}

#[tokio::test]
async fn the_ledger_holds_the_stand_ins_token_counts() {
    let t = setup(&[]).await;
    t.standin.script(Step::tokens(1234, 56));
    let (_, body) = chat(&t.app, &t.user, "Buat ringkasan tiga kalimat").await;
    assert_eq!(body["source"], "model");
    let (_, body) = chat(&t.app, &t.user, "dan satu lagi dengan kata-kata bawaan").await;
    assert_eq!(body["source"], "model");
    let recorded: Vec<(i64, i64)> = t
        .standin
        .requests()
        .iter()
        .map(|r| (r.tokens_in as i64, r.tokens_out as i64))
        .collect();
    assert_eq!(recorded[0], (1234, 56));
    let rows: Vec<(i64, i64)> = ledger(&t.db, t.tenant)
        .await
        .iter()
        .map(|r| (r.4, r.5))
        .collect();
    assert_eq!(rows, recorded);
    // The month's token counter holds exactly what the ledger says.
    let used: i64 = sqlx::query_scalar(
        "select used from llm_counters
          where tenant_id = $1 and period = 'month'
            and user_id = '00000000-0000-0000-0000-000000000000'",
    )
    .bind(t.tenant)
    .fetch_one(&t.db.owner)
    .await
    .unwrap();
    assert_eq!(used, recorded.iter().map(|(i, o)| i + o).sum::<i64>());
}

#[tokio::test]
async fn a_used_up_limit_is_429_with_retry_after() {
    let t = setup(&[]).await;
    sqlx::query("select llm_limit_set($1, 'chat', 'user', 2, null)")
        .bind(t.tenant)
        .execute(&t.db.owner)
        .await
        .unwrap();
    for i in 0..2 {
        let (status, body) = chat(&t.app, &t.user, &format!("pertanyaan {i}")).await;
        assert_eq!(status, 200, "{body}");
    }
    let res = t
        .app
        .request_as(&t.user, reqwest::Method::POST, "/api/ai/chat", None)
        .json(&json!({"messages": [{"role": "user", "content": "pertanyaan 3"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    let (_, body) = status_and_json(res).await;
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limit") && message.contains('2'),
        "{message}"
    );
    assert_eq!(
        t.standin.requests().len(),
        2,
        "no provider call over the limit"
    );
    // A cached question still answers: a hit consumes no limit.
    let (status, body) = chat(&t.app, &t.user, "pertanyaan 0").await;
    assert_eq!(
        (status, body["source"].as_str()),
        (200, Some("cache")),
        "{body}"
    );
    // Another user of the tenant has a limit of their own.
    let other = t.db.create_user(t.tenant, "salesperson").await;
    let (status, _) = chat(&t.app, &other, "pertanyaan 3").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn chat_requests_are_checked_and_replayed_with_their_key() {
    let t = setup(&[]).await;
    for (body, field) in [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "assistant", "content": "x"}]}),
            "messages",
        ),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": " "}]}),
            "messages[0].content",
        ),
    ] {
        let (status, err) = t.app.post_json(&t.user, "/api/ai/chat", &body, None).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let body = json!({"messages": [{"role": "user", "content": "Halo, apa kabar?"}]});
    let (s1, first) = t
        .app
        .post_json(&t.user, "/api/ai/chat", &body, Some("chat-1"))
        .await;
    let (s2, second) = t
        .app
        .post_json(&t.user, "/api/ai/chat", &body, Some("chat-1"))
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, second, "a replay returns the stored answer");
    assert_eq!(t.standin.requests().len(), 1);
    assert_eq!(
        ledger(&t.db, t.tenant).await.len(),
        1,
        "a replay is not a call"
    );
    let other = json!({"messages": [{"role": "user", "content": "lain"}]});
    let (status, err) = t
        .app
        .post_json(&t.user, "/api/ai/chat", &other, Some("chat-1"))
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("Idempotency-Key"))
    );
}

/// A chat answer kept for replay holds no PII: the stored row has the
/// masked answer, and a replay puts the originals back from the replayed
/// request under the feature's setting at the time of the replay.
#[tokio::test]
async fn a_chat_answer_is_stored_masked_and_replayed_with_the_originals() {
    let t = setup(&[]).await;
    let question = "Tolong hubungi 0812-3456-7890 atau budi.santoso@majujaya.co.id besok";
    let body = json!({"messages": [{"role": "user", "content": question}]});
    let (s1, first) = t
        .app
        .post_json(&t.user, "/api/ai/chat", &body, Some("chat-pii"))
        .await;
    assert_eq!(s1, 200, "{first}");
    let answer = first["text"].as_str().unwrap();
    assert!(
        answer.contains("0812-3456-7890") && answer.contains("budi.santoso@majujaya.co.id"),
        "the caller gets the originals back: {answer}"
    );

    let stored: Value = sqlx::query_scalar(
        "select response_body from idempotency_keys
          where tenant_id = $1 and idempotency_key = 'chat-pii'",
    )
    .bind(t.tenant)
    .fetch_one(&t.db.owner)
    .await
    .unwrap();
    let raw = stored.to_string();
    for pii in ["0812-3456-7890", "34567890", "budi.santoso", "majujaya"] {
        assert!(!raw.contains(pii), "{pii} stored in {raw}");
    }
    assert!(
        raw.contains("[PHONE_1]") && raw.contains("[EMAIL_1]"),
        "{raw}"
    );

    let res = t
        .app
        .request_as(
            &t.user,
            reqwest::Method::POST,
            "/api/ai/chat",
            Some("chat-pii"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let (s2, replayed) = status_and_json(res).await;
    assert_eq!(s2, 200);
    assert_eq!(replayed, first, "a replay answers as the first answer did");
    assert_eq!(t.standin.requests().len(), 1, "a replay is not a call");

    // The feature no longer re-inserts PII: a replay (on a server that
    // reads the catalogue afresh) answers masked, as a new answer would.
    sqlx::query("update llm_features set reinsert_pii = false where code = 'chat'")
        .execute(&t.db.owner)
        .await
        .unwrap();
    let app = spawn_app_with(&t.db, &BASE_ENV).await;
    let (s3, masked) = app
        .post_json(&t.user, "/api/ai/chat", &body, Some("chat-pii"))
        .await;
    assert_eq!(s3, 200, "{masked}");
    let text = masked["text"].as_str().unwrap();
    assert!(
        text.contains("[PHONE_1]") && !text.contains("0812-3456-7890"),
        "{text}"
    );
    assert_eq!(t.standin.requests().len(), 1);
}

/// Runs `bizos llm …` as the operator (the owner's connection).
fn bizos_llm(db: &TestDb, args: &[&str]) -> (bool, Vec<Value>, String) {
    bizos_llm_with(db, args, &[])
}

/// [`bizos_llm`] with more variables (the master keys).
fn bizos_llm_with(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> (bool, Vec<Value>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
        .arg("llm")
        .args(args)
        .env_clear()
        .env("BIZOS_DATABASE_URL", db.url("bizos_owner"))
        .envs(env.iter().copied())
        .output()
        .expect("run bizos");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    (
        out.status.success(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_operator_sets_providers_routes_and_limits_and_reads_usage_from_the_cli() {
    let t = setup(&[]).await;
    let (ok, _, err) = bizos_llm(
        &t.db,
        &[
            "provider",
            "set",
            "local",
            "--wire",
            "openai",
            "--base-url",
            &t.standin.base_url_openai,
            "--label",
            "Ollama",
        ],
    );
    assert!(ok, "{err}");
    let (ok, providers, _) = bizos_llm(&t.db, &["provider", "list"]);
    assert!(ok);
    assert!(
        providers
            .iter()
            .any(|p| p["provider"] == "local" && p["wire"] == "openai"),
        "{providers:?}"
    );

    let (ok, _, err) = bizos_llm(
        &t.db,
        &["route", "set", "chat", "local:llama3", "openai:o-1"],
    );
    assert!(ok, "{err}");
    let (ok, routes, _) = bizos_llm(&t.db, &["route", "show", "chat"]);
    assert!(ok);
    assert_eq!(
        routes[0]["chain"],
        json!([{"provider": "local", "model": "llama3"}, {"provider": "openai", "model": "o-1"}])
    );
    let (ok, _, err) = bizos_llm(&t.db, &["route", "set", "chat", "llama3"]);
    assert!(!ok && err.contains("provider:model"), "{err}");
    let (ok, _, err) = bizos_llm(&t.db, &["route", "set", "chat", "nobody:m"]);
    assert!(!ok && err.contains("provider"), "{err}");

    let tenant = t.tenant.to_string();
    let (ok, _, err) = bizos_llm(
        &t.db,
        &[
            "limits",
            "set",
            "--tenant",
            &tenant,
            "--feature",
            "chat",
            "--generations-per-day",
            "3",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = bizos_llm(
        &t.db,
        &[
            "limits",
            "set",
            "--tenant",
            &tenant,
            "--feature",
            "chat",
            "--tokens-per-month",
            "100000",
        ],
    );
    assert!(ok, "{err}");
    let (ok, limits, _) = bizos_llm(&t.db, &["limits", "show", "--tenant", &tenant]);
    assert!(ok);
    let chat_tenant = limits
        .iter()
        .find(|l| l["feature"] == "chat" && l["scope"] == "tenant")
        .expect("the chat limit");
    assert_eq!(
        (
            &chat_tenant["generations_per_day"],
            &chat_tenant["tokens_per_month"]
        ),
        (&json!(3), &json!(100000)),
        "a value not given keeps the one in force"
    );

    // No key: the local provider (no platform key) is skipped, openai answers.
    let (status, body) = chat(&t.app, &t.user, "Halo").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("openai")),
        "{body}"
    );
    let (ok, usage, err) = bizos_llm(
        &t.db,
        &["usage", "--tenant", &tenant, "--group-by", "model"],
    );
    assert!(ok, "{err}");
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(
        (usage[0]["model"].as_str(), usage[0]["calls"].as_i64()),
        (Some("o-1"), Some(1))
    );
    let (ok, keys, _) = bizos_llm(&t.db, &["keys", "list", "--tenant", &tenant]);
    assert!(ok && keys.is_empty());
}

#[tokio::test]
async fn the_worker_purges_the_cache_and_gives_back_stale_reservations() {
    let (db, _standin) = database().await;
    let tenant = db.create_tenant("llm-w").await;
    let user = db.create_user(tenant, "salesperson").await;
    // A generation whose llm_finish never came (its BFF died), two hours old.
    let mut tx = db.as_user(&user).await;
    let begun: Value = sqlx::query_scalar("select llm_begin($1, $2, 'chat', null, 100, null)")
        .bind(tenant)
        .bind(user.user_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(begun["reservation_id"].is_string(), "{begun}");
    sqlx::query("update llm_reservations set created_at = now() - interval '2 hours'")
        .execute(&db.owner)
        .await
        .unwrap();
    // An expired cache entry, and a live one.
    for (byte, expires) in [("ab", "-1 minute"), ("cd", "1 hour")] {
        sqlx::query(
            "insert into llm_cache (tenant_id, cache_key, feature, provider, model, response, expires_at)
             values ($1, decode(repeat($2, 32), 'hex'), 'chat', 'openai', 'o-1', '{}',
                     now() + $3::interval)",
        )
        .bind(tenant)
        .bind(byte)
        .bind(expires)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&db.owner)
                .await
                .unwrap()
        }
    };
    let generations =
        "select coalesce(sum(used), 0)::bigint from llm_counters where period = 'day'";
    assert_eq!(
        count(generations).await,
        2,
        "tenant and user counters hold the generation"
    );

    let files = tempfile::tempdir().unwrap();
    let storage = bizos_bff::config::StorageSettings::Local {
        root: files.path().to_owned(),
    };
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        purge_every: Duration::from_millis(300),
        ..bizos_tests::worker_settings(&db, 2000, storage)
    })
    .await;
    let waited = Instant::now();
    while count("select count(*) from llm_reservations").await > 0
        && waited.elapsed() < Duration::from_secs(15)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count("select count(*) from llm_reservations").await, 0);
    assert_eq!(count(generations).await, 0, "the generation is given back");
    assert_eq!(
        count("select count(*) from llm_cache").await,
        1,
        "the expired entry is gone, the live one stays"
    );
    drop(worker.stop);
}
