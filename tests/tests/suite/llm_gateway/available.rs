//! `GET /api/me`'s `ai` flag: whether a model could answer the tenant's AI
//! calls now, from the gateway's own state. Without a key for any provider
//! of the routes it is false (not_configured); with keys and the stand-in
//! up, true; while one provider's breaker is open and another answers,
//! still true; once every provider with a key failed until its breaker
//! opened, false (circuit_open); after the cool-off, true again (the next
//! call is let through as a probe, and its success closes the breaker).

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::llm_standin::{Step, Wire};
use bizos_tests::{spawn_app_with, TestApp};
use serde_json::{json, Value};

use super::{chat, setup, BASE_ENV};

async fn ai(app: &TestApp, who: &Caller) -> Value {
    let (status, me) = app.get_json(who, "/api/me").await;
    assert_eq!(status, 200, "{me}");
    me["ai"].clone()
}

#[tokio::test]
async fn the_ai_flag_follows_the_keys_and_the_breakers_of_the_gateway() {
    let t = setup(&[
        ("BIZOS_LLM_RETRIES", "0"),
        ("BIZOS_LLM_BREAKER_FAILURES", "1"),
        ("BIZOS_LLM_BREAKER_COOL_OFF_SECS", "5"),
    ])
    .await;

    // The same database and routes, no provider keys: not configured.
    let mut bare: Vec<(&str, &str)> = BASE_ENV
        .iter()
        .filter(|(k, _)| !k.starts_with("BIZOS_LLM_KEYS"))
        .copied()
        .collect();
    bare.extend([("BIZOS_LLM_KEYS_GEMINI", ""), ("BIZOS_LLM_KEYS_OPENAI", "")]);
    let keyless = spawn_app_with(&t.db, &bare).await;
    assert_eq!(
        ai(&keyless, &t.user).await,
        json!({"available": false, "reason": "not_configured"})
    );
    drop(keyless);

    // Keys, the stand-in up, breakers closed.
    assert_eq!(
        ai(&t.app, &t.user).await,
        json!({"available": true, "reason": null})
    );
    let (status, body) = chat(&t.app, &t.user, "satu").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("gemini")),
        "{body}"
    );

    // Gemini fails once: its breaker opens, openai answers; AI is still
    // available.
    t.standin.script_wire(Wire::Gemini, Step::status(500));
    let (status, body) = chat(&t.app, &t.user, "dua").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("openai")),
        "{body}"
    );
    assert_eq!(
        ai(&t.app, &t.user).await,
        json!({"available": true, "reason": null})
    );

    // Openai fails too: every provider with a key has an open breaker; the
    // chat answers with its fallback, and the flag says why.
    t.standin.script_wire(Wire::OpenAi, Step::status(500));
    let (status, body) = chat(&t.app, &t.user, "tiga").await;
    assert_eq!(
        (status, &body["source"]),
        (200, &json!("fallback")),
        "{body}"
    );
    assert_eq!(
        ai(&t.app, &t.user).await,
        json!({"available": false, "reason": "circuit_open"})
    );
    // Reading the flag takes no probe: the providers are not called.
    let calls = t.standin.requests().len();
    assert_eq!(ai(&t.app, &t.user).await["reason"], "circuit_open");
    assert_eq!(t.standin.requests().len(), calls);

    // After the cool-off a probe may go: available again, and the probe's
    // success closes the breaker.
    let started = Instant::now();
    loop {
        let flag = ai(&t.app, &t.user).await;
        if flag["available"] == true {
            assert_eq!(flag["reason"], Value::Null, "{flag}");
            break;
        }
        assert_eq!(flag["reason"], "circuit_open", "{flag}");
        assert!(started.elapsed() < Duration::from_secs(30), "{flag}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = chat(&t.app, &t.user, "empat").await;
    assert_eq!(
        (status, body["provider"].as_str()),
        (200, Some("gemini")),
        "{body}"
    );
    assert_eq!(
        ai(&t.app, &t.user).await,
        json!({"available": true, "reason": null})
    );
}
