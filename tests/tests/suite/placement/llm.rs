//! The LLM gateway meters in the tenant's placement: an AI route of a
//! schema-tier and of an isolated tenant (the BFF's route to it) and their
//! digest job (the worker's pool of the placement) reserve, record and
//! cache where the tenant's rows are, nothing in the control database.

use std::time::{Duration, Instant};

use bizos_bff::llm::LlmSettings;
use bizos_bff::placement::Tier;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::llm_standin::StandIn;
use bizos_tests::{spawn_app_with, start_worker, worker_settings};
use serde_json::json;
use uuid::Uuid;

use super::{connect, Home};

/// Points the placement's gemini provider at the stand-in and routes
/// `chat` and `digest` to it (each placement has its own AI settings).
async fn route_to_standin(conn: &mut sqlx::PgConnection, standin: &StandIn) {
    sqlx::query("select llm_provider_set('gemini', 'gemini', $1, 'gemini')")
        .bind(&standin.base_url_gemini)
        .execute(&mut *conn)
        .await
        .unwrap();
    for feature in ["chat", "digest"] {
        sqlx::query("select llm_route_set($1, $2)")
            .bind(feature)
            .bind(json!([{"provider": "gemini", "model": "g-1"}]))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
}

/// The features of the tenant's ledger rows in the connection's search
/// path, in order.
async fn ledger(conn: &mut sqlx::PgConnection, tenant: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "select feature from llm_calls where tenant_id = $1 order by created_at, attempt",
    )
    .bind(tenant)
    .fetch_all(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn ai_chat_and_the_digest_of_schema_and_isolated_tenants_are_metered_in_their_placement() {
    let h = Home::new().await;
    h.add_secret("worker", "HOME_URL", &h.db.url("bizos_worker"));
    let standin = StandIn::start().await;
    let app = spawn_app_with(
        &h.db,
        &[
            ("BIZOS_SECRETS_FILE", &h.app_secrets()),
            ("BIZOS_LLM_KEYS_GEMINI", "gk-1"),
            ("BIZOS_LLM_RETRIES", "0"),
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let llm = LlmSettings::from_lookup(|k| match k {
        "BIZOS_LLM_KEYS_GEMINI" => Some("gk-1".into()),
        "BIZOS_LLM_RETRIES" => Some("0".into()),
        _ => None,
    })
    .unwrap();
    let _worker = start_worker(WorkerSettings {
        secrets_file: Some(h.secrets_path("worker")),
        llm,
        ..worker_settings(&h.db, 2000, storage)
    })
    .await;
    let mut control = connect("postgres", &h.db.name, None).await;

    for (tier, slug) in [(Tier::Schema, "ai-schema"), (Tier::Isolated, "ai-isolated")] {
        let (admin, placement) = h.tenant("eu", tier, slug).await;
        let database = placement["database_name"].as_str().unwrap().to_owned();
        let schema = placement["schema_name"].as_str().map(str::to_owned);
        let mut there = connect("postgres", &database, schema.as_deref()).await;
        route_to_standin(&mut there, &standin).await;

        let (status, body) = app
            .post_json(
                &admin,
                "/api/ai/chat",
                &json!({"messages": [{"role": "user", "content": "Kapan truk berangkat?"}]}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{tier:?}: {body}");
        assert_eq!(body["source"], "model", "{tier:?}: {body}");
        // The same question again: the placement's cache answers.
        let (status, again) = app
            .post_json(
                &admin,
                "/api/ai/chat",
                &json!({"messages": [{"role": "user", "content": "Kapan truk berangkat?"}]}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{tier:?}: {again}");
        assert_eq!(again["source"], "cache", "{tier:?}: {again}");

        // The digest job runs in the placement and asks the model there.
        let job: Uuid = sqlx::query_scalar(
            "select job_enqueue_for($1, 'digest.build', '{\"day\": \"2026-10-01\"}')",
        )
        .bind(admin.tenant_id)
        .fetch_one(&mut there)
        .await
        .unwrap();
        let started = Instant::now();
        loop {
            let (status, error): (String, Option<String>) =
                sqlx::query_as("select status, last_error from jobs where job_id = $1")
                    .bind(job)
                    .fetch_one(&mut there)
                    .await
                    .unwrap();
            if status == "succeeded" {
                break;
            }
            assert!(
                status != "dead" && started.elapsed() < Duration::from_secs(60),
                "{tier:?}: the digest job is {status}: {error:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The call and the cache hit of chat, the digest's attempts (its
        // model's answer, or a failed attempt and the fallback).
        let features = ledger(&mut there, admin.tenant_id).await;
        let chats = features.iter().filter(|f| *f == "chat").count();
        let digests = features.iter().filter(|f| *f == "digest").count();
        assert_eq!(
            (chats, digests > 0, chats + digests),
            (2, true, features.len()),
            "{tier:?}: the placement's ledger: {features:?}"
        );
        let cached: i64 = sqlx::query_scalar("select count(*) from llm_cache where tenant_id = $1")
            .bind(admin.tenant_id)
            .fetch_one(&mut there)
            .await
            .unwrap();
        assert!(cached > 0, "{tier:?}: no cached answer in the placement");
        let in_control: i64 = sqlx::query_scalar(
            "select (select count(*) from public.llm_calls where tenant_id = $1)
                  + (select count(*) from public.llm_reservations where tenant_id = $1)
                  + (select count(*) from public.llm_cache where tenant_id = $1)",
        )
        .bind(admin.tenant_id)
        .fetch_one(&mut control)
        .await
        .unwrap();
        assert_eq!(in_control, 0, "{tier:?}: AI rows in the control database");
    }
}
