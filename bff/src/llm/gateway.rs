//! The gateway: the one way bizos calls a model (AI-4, AI-5, AI-6, OPS-15).
//!
//! One call of [`Gateway::chat`]:
//!
//! 1. **Mask** every message ([`super::privacy::Masker`], one per call).
//! 2. **Begin** (a short transaction, under the caller's claims for a
//!    request, as the worker's login for system work): read the feature's
//!    route (cached briefly), compute the cache key of the masked input
//!    ([`super::cache_key`]) and call `llm_begin`, which either answers from
//!    the tenant's cache (recording the hit in the ledger, consuming no
//!    limit) or reserves one generation and the estimated tokens against
//!    the tenant's and the user's limits — atomically in the database; a
//!    limit used up is [`GatewayError::Limited`] (HTTP 429 with
//!    Retry-After).
//! 3. **Call** the providers of the route in order, **with no transaction
//!    open**: for each (provider, model) whose breaker lets it through, the
//!    key ring's keys in turn; a retryable error is retried with backoff on
//!    the same key, a 429/401 cools the key and moves to the next, anything
//!    else moves to the next model. A semaphore bounds the calls in flight;
//!    the whole call is bounded by the budget. Every provider failure ends
//!    in the feature's deterministic fallback, never in an error.
//! 4. **Finish** (a short transaction): `llm_finish` writes one ledger row
//!    per attempt (and one for the fallback), settles the reservation with
//!    the real token counts (giving the generation back when no model
//!    answered) and stores a model's answer in the cache.
//!
//! Steps 3 and 4 run in a task of their own, so a caller that goes away (a
//! client hanging up, a request timeout) never leaves a reservation open
//! or an attempt unrecorded.
//!
//! The originals of masked values go back into the answer only when the
//! feature allows it (`llm_features.reinsert_pii`) and the caller may see
//! them ([`CallContext::may_see_pii`]). The cache and the ledger only ever
//! hold masked text; so does what a route keeps of an answer
//! ([`Answer::masked_text`]), which [`Gateway::reinsert`] restores later
//! under the same rule.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

use super::breaker::{Admission, Breakers, State};
use super::cache_key::{cache_key, KeyInput};
use super::config::LlmSettings;
use super::crypto::MasterKeys;
use super::features;
use super::keys::{KeyChoice, KeyRing};
use super::privacy::Masker;
use super::provider::{ChatRequest, ChatResponse, Client, Endpoint, Message, ProviderError, Wire};
use super::retry::{Budget, RetrySettings};
pub use super::tenant_db::TenantDb;
use crate::auth::Caller;
use crate::db;
use crate::error::ApiError;

/// A statement of one jsonb value.
type ValueQuery<'q> = sqlx::query::QueryScalar<'q, Postgres, Value, sqlx::postgres::PgArguments>;

/// Tokens reserved for the answer when the request sets no maximum.
const DEFAULT_OUTPUT_ESTIMATE: u64 = 512;
/// Longest error text kept in the ledger.
const MAX_ERROR_LEN: usize = 500;
/// Most provider attempts of one call (the ledger numbers them 1-100).
const MAX_ATTEMPTS: usize = 50;

/// Who a gateway call is for.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub tenant_id: Uuid,
    pub user_id: Option<Uuid>,
    pub request_id: Option<String>,
    /// May the caller see the PII of the input? (With the feature's
    /// consent, the originals are put back into the answer.)
    pub may_see_pii: bool,
    /// The verified caller of a request: the gateway's transactions run
    /// under its claims, in the tenant's placement (its router's route).
    /// None: system work on the worker's login.
    pub caller: Option<Caller>,
    /// Where system work meters: the placement of the job it runs for
    /// ([`CallContext::for_job`]). None: the gateway's own pool.
    pub placement: Option<TenantDb>,
}

impl CallContext {
    /// A call for the caller of a request.
    pub fn for_caller(caller: &Caller, may_see_pii: bool) -> CallContext {
        CallContext {
            tenant_id: caller.tenant_id,
            user_id: Some(caller.user_id),
            request_id: caller.request_id.clone(),
            may_see_pii,
            caller: Some(caller.clone()),
            placement: None,
        }
    }

    /// A call of background work for a tenant (no user, no PII back).
    pub fn system(tenant_id: Uuid, request_id: Option<String>) -> CallContext {
        CallContext {
            tenant_id,
            user_id: None,
            request_id,
            may_see_pii: false,
            caller: None,
            placement: None,
        }
    }

    /// A call of a job's system work: metered in the job's placement (the
    /// worker's pool of it), where its tenant's rows are.
    pub fn for_job(job: &crate::job::Job) -> CallContext {
        CallContext {
            placement: Some(TenantDb {
                name: Arc::from(job.placement()),
                pool: job.pool().clone(),
                schema: None,
            }),
            ..CallContext::system(job.tenant_id, job.request_id.clone())
        }
    }
}

/// What a feature asks a model. The messages are the original text: the
/// gateway masks them.
#[derive(Debug, Clone, Default)]
pub struct GatewayRequest {
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// JSON schema of the answer (structured output).
    pub json_schema: Option<Value>,
}

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Model { provider: String, model: String },
    Cache,
    Fallback,
}

#[derive(Debug, Clone)]
pub struct Answer {
    /// For the caller: with the originals of masked values when the
    /// feature allows it and the caller may see them.
    pub text: String,
    pub json: Option<Value>,
    /// The answer as the model gave it, placeholders and all: what may be
    /// kept (the cache, the ledger, a stored idempotent response); the
    /// originals come back with [`Gateway::reinsert`].
    pub masked_text: String,
    pub masked_json: Option<Value>,
    pub source: Source,
    /// The ledger rows of this call (`llm_calls.call_id`).
    pub call_ids: Vec<Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A limit of the tenant or the user is used up.
    #[error("{message}")]
    Limited {
        message: String,
        retry_after: Duration,
    },
    /// The database refused or failed (unknown feature, not allowed,
    /// unavailable): never a provider's failure.
    #[error(transparent)]
    Api(ApiError),
}

impl From<sqlx::Error> for GatewayError {
    fn from(e: sqlx::Error) -> Self {
        GatewayError::from(ApiError::from(e))
    }
}

impl From<ApiError> for GatewayError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::TooManyRequests {
                message,
                retry_after,
            } => GatewayError::Limited {
                message,
                retry_after,
            },
            other => GatewayError::Api(other),
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Limited {
                message,
                retry_after,
            } => ApiError::TooManyRequests {
                message,
                retry_after,
            },
            GatewayError::Api(e) => e,
        }
    }
}

/// Whether a model could answer a tenant's call now (what clients show
/// AI features by), from the gateway's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// A provider of some feature's route has a usable key for the tenant
    /// and a breaker that lets calls (or a probe) through.
    Available,
    Unavailable(Unavailable),
}

/// Why no model could answer (every call ends in its fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// No provider of any route has a key (the tenant's or the platform's).
    NotConfigured,
    /// Every provider with a key has an open breaker (it failed
    /// repeatedly; it is tried again after the cool-off).
    CircuitOpen,
    /// Every key of the providers with a closed breaker is cooling down
    /// after a 429 or 401.
    KeysCooling,
}

/// One masker over every message of a call, in order (the placeholders
/// are numbered in order of appearance), and the masked messages.
fn mask_messages(messages: &[Message]) -> (Masker, Vec<Message>) {
    let mut masker = Masker::new();
    let masked = messages
        .iter()
        .map(|m| Message {
            role: m.role,
            content: masker.mask(&m.content),
        })
        .collect();
    (masker, masked)
}

/// The answer for the caller (originals back when `reinsert`) beside the
/// masked answer.
fn answer(
    masker: &Masker,
    reinsert: bool,
    text: String,
    json: Option<Value>,
    source: Source,
    call_ids: Vec<Uuid>,
) -> Answer {
    let (for_caller, for_caller_json) = if reinsert {
        (
            masker.reinsert(&text),
            json.as_ref().map(|j| masker.reinsert_json(j)),
        )
    } else {
        (text.clone(), json.clone())
    };
    Answer {
        text: for_caller,
        json: for_caller_json,
        masked_text: text,
        masked_json: json,
        source,
        call_ids,
    }
}

/// The cache key of the masked request on the feature's route.
fn request_cache_key(
    feature: &str,
    catalog: &Catalog,
    messages: &[Message],
    req: &GatewayRequest,
) -> [u8; 32] {
    let chain: Vec<(String, String)> = catalog
        .chain
        .iter()
        .map(|e| (e.endpoint.provider.clone(), e.model.clone()))
        .collect();
    cache_key(&KeyInput {
        feature,
        chain: &chain,
        messages,
        temperature: req.temperature,
        max_output_tokens: req.max_output_tokens,
        json_schema: req.json_schema.as_ref(),
    })
}

/// The tokens `llm_begin` reserves: the prompt at four characters a token
/// and the answer's maximum (or [`DEFAULT_OUTPUT_ESTIMATE`]).
fn estimate_tokens(messages: &[Message], req: &GatewayRequest) -> i64 {
    let prompt_chars: usize = messages.iter().map(|m| m.content.chars().count()).sum();
    let est_tokens = (prompt_chars as u64).div_ceil(4)
        + req
            .max_output_tokens
            .map_or(DEFAULT_OUTPUT_ESTIMATE, u64::from);
    i64::try_from(est_tokens).unwrap_or(i64::MAX)
}

/// What `llm_finish` caches of a model's answer (nothing of the fallback,
/// nothing when the feature caches nothing).
fn cache_entry(
    key: &[u8; 32],
    feature: &str,
    catalog: &Catalog,
    source: &Source,
    text: &str,
    json: &Option<Value>,
    attempts: &[Attempt],
) -> Option<Value> {
    let Source::Model { provider, model } = source else {
        return None;
    };
    if catalog.cache_ttl_secs <= 0 {
        return None;
    }
    let ok = attempts.iter().rev().find(|a| a.outcome == "ok");
    Some(json!({
        "cache_key": hex::encode(key),
        "feature": feature,
        "provider": provider,
        "model": model,
        "response": {"text": text, "json": json},
        "tokens_in": ok.map_or(0, |a| a.tokens_in),
        "tokens_out": ok.map_or(0, |a| a.tokens_out),
        "ttl_secs": catalog.cache_ttl_secs,
    }))
}

/// What `llm_begin` answered.
enum Begun {
    /// The tenant's cache had the answer (a hit recorded in the ledger).
    Cached {
        text: String,
        json: Option<Value>,
        call_id: Option<Uuid>,
    },
    /// One generation and the estimated tokens are reserved.
    Reserved(Uuid),
}

/// A call past `llm_begin`, moved into the task of steps 3 and 4.
struct Reserved {
    ctx: CallContext,
    /// The tenant's placement (its keys).
    db: TenantDb,
    feature: String,
    catalog: Arc<Catalog>,
    messages: Vec<Message>,
    req: GatewayRequest,
    budget: Budget,
    started: Instant,
    key: [u8; 32],
    reservation: Uuid,
}

/// The answer's text, JSON and source with the ledger's call ids.
type Finished = (String, Option<Value>, Source, Vec<Uuid>);

/// How trying one route entry ended.
enum Tried {
    Answered(ChatResponse),
    /// No model of the route will answer: attempts or budget used up.
    GiveUp,
    NextEntry,
}

/// What follows a failed attempt.
enum Then {
    Retry(Duration),
    NextKey,
    NextEntry,
}

/// One (provider, model) of a route.
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub endpoint: Endpoint,
    pub model: String,
}

/// A feature's settings and route, as read from the catalogue.
#[derive(Debug, Clone)]
struct Catalog {
    cache_ttl_secs: i64,
    reinsert_pii: bool,
    chain: Vec<RouteEntry>,
}

fn wire(name: &str) -> Option<Wire> {
    name.parse().ok()
}

/// How the gateway's transactions for system work (no caller) begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The BFF's login (bizos_app): system work is refused by the database.
    App,
    /// The worker's login (bizos_worker), which the functions accept
    /// without claims.
    Worker,
}

/// One attempt as `llm_finish` records it.
#[derive(Debug, Clone)]
struct Attempt {
    provider: Option<String>,
    model: Option<String>,
    key_ref: String,
    tokens_in: u64,
    tokens_out: u64,
    latency: Duration,
    outcome: &'static str,
    error: Option<String>,
}

impl Attempt {
    fn answered(
        entry: &RouteEntry,
        key: &KeyChoice,
        response: &ChatResponse,
        latency: Duration,
    ) -> Attempt {
        Attempt {
            provider: Some(entry.endpoint.provider.clone()),
            model: Some(entry.model.clone()),
            key_ref: key.key_ref.clone(),
            tokens_in: response.tokens_in,
            tokens_out: response.tokens_out,
            latency,
            outcome: "ok",
            error: None,
        }
    }

    fn failed(
        entry: &RouteEntry,
        key: &KeyChoice,
        error: &ProviderError,
        latency: Duration,
    ) -> Attempt {
        Attempt {
            provider: Some(entry.endpoint.provider.clone()),
            model: Some(entry.model.clone()),
            key_ref: key.key_ref.clone(),
            tokens_in: 0,
            tokens_out: 0,
            latency,
            outcome: "error",
            error: Some(truncate(&error.to_string(), MAX_ERROR_LEN)),
        }
    }

    /// The feature's deterministic fallback, as the ledger's last row.
    fn fallback(latency: Duration) -> Attempt {
        Attempt {
            provider: None,
            model: None,
            key_ref: "fallback".into(),
            tokens_in: 0,
            tokens_out: 0,
            latency,
            outcome: "fallback",
            error: None,
        }
    }
}

struct Inner {
    pool: PgPool,
    login: Login,
    client: Client,
    keys: KeyRing,
    master: Option<Arc<MasterKeys>>,
    breakers: Breakers,
    retry: RetrySettings,
    budget: Duration,
    in_flight: Semaphore,
    catalog_ttl: Duration,
    catalog: Mutex<HashMap<String, (Instant, Arc<Catalog>)>>,
}

/// The LLM gateway; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("login", &self.inner.login)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Failures that tell of a provider's health (they count for its breaker).
fn provider_failure(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Server { .. }
            | ProviderError::Timeout
            | ProviderError::Connect(_)
            | ProviderError::Malformed(_)
    )
}

impl Gateway {
    /// A gateway on `pool` (the BFF's or the worker's login, see [`Login`]).
    pub fn new(pool: PgPool, login: Login, settings: &LlmSettings) -> anyhow::Result<Gateway> {
        let master = match &settings.master_key {
            Some(key) => Some(Arc::new(
                MasterKeys::new(
                    &settings.master_key_id,
                    key,
                    settings.master_keys_previous.as_ref(),
                )
                .map_err(|e| anyhow::anyhow!("BIZOS_LLM_MASTER_KEY: {e}"))?,
            )),
            None => None,
        };
        let keys = KeyRing::new(
            settings.platform_keys.clone(),
            master.clone(),
            true,
            settings.keys.clone(),
        );
        Ok(Gateway {
            inner: Arc::new(Inner {
                client: Client::new(settings.connect_timeout, settings.timeout),
                pool,
                login,
                keys,
                master,
                breakers: Breakers::new(settings.breaker),
                retry: settings.retry,
                budget: settings.budget,
                in_flight: Semaphore::new(settings.max_in_flight.max(1)),
                catalog_ttl: settings.catalog_ttl,
                catalog: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The master keys that seal tenant keys (None when not configured).
    pub fn master_keys(&self) -> Option<&MasterKeys> {
        self.inner.master.as_deref()
    }

    /// Drops this process's cached keys of `tenant` (after a change).
    pub fn forget_tenant_keys(&self, tenant: Uuid) {
        self.inner.keys.forget_tenant(tenant);
    }

    /// The breaker state of `provider` (for tests and the operator).
    pub fn breaker_state(&self, provider: &str) -> State {
        self.inner.breakers.state(provider)
    }

    /// Whether a call of `ctx`'s tenant could reach a model now: the
    /// providers of every feature's route (the catalogue, as calls read
    /// it), each with the tenant's or the platform's keys, its breaker and
    /// its keys' cool-downs (as [`Gateway::chat`] would skip them). Only
    /// looks: no key rotates, no probe is taken.
    pub async fn availability(&self, ctx: &CallContext) -> Result<Availability, GatewayError> {
        let mut providers: Vec<String> = Vec::new();
        for feature in features::ALL {
            for entry in &self.catalog(ctx, feature).await?.chain {
                if !providers.contains(&entry.endpoint.provider) {
                    providers.push(entry.endpoint.provider.clone());
                }
            }
        }
        let db = self.tenant_db(ctx).await?;
        let (mut open, mut cooling) = (false, false);
        for provider in &providers {
            let keys = self.inner.keys.usable(ctx.tenant_id, provider, &db).await;
            if !keys.configured {
                continue;
            }
            if !self.inner.breakers.admits(provider) {
                open = true;
            } else if !keys.usable {
                cooling = true;
            } else {
                return Ok(Availability::Available);
            }
        }
        Ok(Availability::Unavailable(if open {
            Unavailable::CircuitOpen
        } else if cooling {
            Unavailable::KeysCooling
        } else {
            Unavailable::NotConfigured
        }))
    }

    /// Asks the feature's route; see the module documentation.
    pub async fn chat(
        &self,
        ctx: &CallContext,
        feature: &str,
        req: GatewayRequest,
    ) -> Result<Answer, GatewayError> {
        let started = Instant::now();
        let budget = Budget::new(self.inner.budget);

        // 1. Mask.
        let (masker, messages) = mask_messages(&req.messages);

        // 2. Route, cache key, llm_begin (in the tenant's placement).
        let db = self.tenant_db(ctx).await?;
        let catalog = self.catalog(ctx, feature).await?;
        let key = request_cache_key(feature, &catalog, &messages, &req);
        let reinsert = catalog.reinsert_pii && ctx.may_see_pii;
        let est_tokens = estimate_tokens(&messages, &req);
        let reservation = match self.begin_call(ctx, feature, &key, est_tokens).await? {
            Begun::Cached {
                text,
                json,
                call_id,
            } => {
                metrics::counter!("bizos_llm_calls_total", "feature" => feature.to_owned(), "outcome" => "cache_hit").increment(1);
                let call_ids = call_id.into_iter().collect();
                return Ok(answer(
                    &masker,
                    reinsert,
                    text,
                    json,
                    Source::Cache,
                    call_ids,
                ));
            }
            Begun::Reserved(reservation) => reservation,
        };

        // 3 and 4 in a task of their own: they finish even when the caller
        // goes away.
        let call = Reserved {
            ctx: ctx.clone(),
            db,
            feature: feature.to_owned(),
            catalog,
            messages,
            req,
            budget,
            started,
            key,
            reservation,
        };
        let this = self.clone();
        let (text, json, source, call_ids) =
            tokio::spawn(async move { this.call_and_finish(call).await })
                .await
                .map_err(|e| {
                    ApiError::Internal(anyhow::anyhow!("the gateway task failed: {e}"))
                })??;
        Ok(answer(&masker, reinsert, text, json, source, call_ids))
    }

    /// Step 2's `llm_begin`: the tenant's cached answer to this request, or
    /// a reservation of one generation and `est_tokens` against the limits.
    async fn begin_call(
        &self,
        ctx: &CallContext,
        feature: &str,
        key: &[u8; 32],
        est_tokens: i64,
    ) -> Result<Begun, GatewayError> {
        let begun = self
            .metered(
                ctx,
                db::as_caller!("llm_begin($5, $6, $7, $8, $9, $10)"),
                "select llm_begin($1, $2, $3, $4, $5, $6)",
                |q| {
                    q.bind(ctx.tenant_id)
                        .bind(ctx.user_id)
                        .bind(feature)
                        .bind(&key[..])
                        .bind(est_tokens)
                        .bind(ctx.request_id.as_deref())
                },
            )
            .instrument(crate::telemetry::db_span("llm_begin"))
            .await?;
        if let Some(cached) = begun.get("cached") {
            return Ok(Begun::Cached {
                text: cached
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                json: cached.get("json").filter(|j| !j.is_null()).cloned(),
                call_id: begun
                    .get("call_id")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok()),
            });
        }
        let reservation = begun
            .get("reservation_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "llm_begin returned neither cache nor reservation"
                ))
            })?;
        Ok(Begun::Reserved(reservation))
    }

    /// Steps 3 and 4: the route's answer (or the feature's fallback when no
    /// model answered), then `llm_finish` records every attempt and caches
    /// a model's answer.
    async fn call_and_finish(&self, call: Reserved) -> Result<Finished, GatewayError> {
        let Reserved {
            ctx,
            db: tenant_db,
            feature,
            catalog,
            messages,
            req,
            budget,
            started,
            key,
            reservation,
        } = call;
        let (mut attempts, answered) = self
            .call_chain(&ctx, &tenant_db, &catalog, &messages, &req, &budget)
            .await;
        let (text, json, source) = match answered {
            Some((entry, response)) => (
                response.text,
                response.json,
                Source::Model {
                    provider: entry.endpoint.provider,
                    model: entry.model,
                },
            ),
            None => {
                let f = features::fallback(&feature, &messages);
                attempts.push(Attempt::fallback(started.elapsed()));
                (f.text, f.json, Source::Fallback)
            }
        };
        let cache = cache_entry(&key, &feature, &catalog, &source, &text, &json, &attempts);
        let call_ids = self
            .finish(&ctx, &feature, reservation, &attempts, cache)
            .await?;
        let outcome = match source {
            Source::Fallback => "fallback",
            _ => "ok",
        };
        metrics::counter!("bizos_llm_calls_total", "feature" => feature.clone(), "outcome" => outcome).increment(1);
        Ok((text, json, source, call_ids))
    }

    /// `text`, a masked answer of `feature` to `messages` (the request's
    /// original text, as given to [`Gateway::chat`]), with the originals
    /// put back under the same rule as a fresh answer: the feature allows
    /// it (as it is set now) and the caller may see them. The placeholders
    /// are the call's own: masking is deterministic, so the same messages
    /// give the same placeholders. For answers kept masked (a stored
    /// idempotent response) and given back to the caller who asked.
    pub async fn reinsert(
        &self,
        ctx: &CallContext,
        feature: &str,
        messages: &[Message],
        text: &str,
    ) -> Result<String, GatewayError> {
        let catalog = self.catalog(ctx, feature).await?;
        if !(catalog.reinsert_pii && ctx.may_see_pii) {
            return Ok(text.to_owned());
        }
        let (masker, _) = mask_messages(messages);
        Ok(masker.reinsert(text))
    }

    /// A transaction in the tenant's placement: under the caller's claims
    /// (routed by its router), or as this process's login.
    async fn begin(
        &self,
        ctx: &CallContext,
    ) -> Result<Transaction<'static, Postgres>, GatewayError> {
        Ok(match &ctx.caller {
            Some(caller) => crate::db::begin_as(&self.inner.pool, caller).await?,
            None => self.tenant_db(ctx).await?.begin().await?,
        })
    }

    /// Where `ctx`'s tenant's rows are: the job's placement, the route of
    /// the caller's router, else the gateway's own pool (a process without
    /// placements, or a tenant in its shared tier).
    async fn tenant_db(&self, ctx: &CallContext) -> Result<TenantDb, GatewayError> {
        if let Some(db) = &ctx.placement {
            return Ok(db.clone());
        }
        let Some(router) = ctx.caller.as_ref().and_then(|c| c.placement.as_ref()) else {
            return Ok(TenantDb {
                name: Arc::from("control"),
                pool: self.inner.pool.clone(),
                schema: None,
            });
        };
        let route = router.resolve(ctx.tenant_id).await?;
        let name = match (&route.placement, &route.schema) {
            (None, _) => "control".to_owned(),
            (Some(p), None) => format!("{}/{}", p.cluster, p.database_name),
            (Some(p), Some(s)) => format!("{}/{}/{s}", p.cluster, p.database_name),
        };
        Ok(TenantDb {
            name: Arc::from(name),
            pool: route.pool.clone(),
            schema: route.schema.clone(),
        })
    }

    /// One metering statement (`llm_begin`, `llm_finish`) in the tenant's
    /// placement, its parameters bound by `bind`: for a caller of a
    /// process without placements in one round trip (`as_caller`, the
    /// call's parameters from $5); for a routed caller in a transaction
    /// of [`crate::db::begin_as`] (the route, the placement's version
    /// checked); for system work on the placement's pool (`plain`, from $1).
    async fn metered<'q>(
        &self,
        ctx: &'q CallContext,
        as_caller: &'static str,
        plain: &'static str,
        bind: impl FnOnce(ValueQuery<'q>) -> ValueQuery<'q>,
    ) -> Result<Value, GatewayError> {
        if let Some(caller) = ctx.caller.as_ref().filter(|c| c.placement.is_none()) {
            let q = bind(db::bind_request(sqlx::query_scalar(as_caller), caller));
            return Ok(q.fetch_one(&self.inner.pool).await?);
        }
        let mut tx = self.begin(ctx).await?;
        let value = bind(sqlx::query_scalar(plain)).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// The feature's settings and route, cached for `catalog_ttl`.
    async fn catalog(
        &self,
        ctx: &CallContext,
        feature: &str,
    ) -> Result<Arc<Catalog>, GatewayError> {
        // Each placement has its own AI settings: cached apart.
        let cache_key = format!("{}\n{feature}", self.tenant_db(ctx).await?.name);
        if let Some((at, c)) = self
            .inner
            .catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            if at.elapsed() < self.inner.catalog_ttl {
                return Ok(c.clone());
            }
        }
        let mut tx = self.begin(ctx).await?;
        let settings: Option<(Option<i32>, bool)> =
            sqlx::query_as("select cache_ttl_secs, reinsert_pii from llm_features where code = $1")
                .bind(feature)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((cache_ttl_secs, reinsert_pii)) = settings else {
            return Err(ApiError::invalid(
                "feature",
                format!("feature: no AI feature {feature:?}"),
            )
            .into());
        };
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "select provider, wire, base_url, model from llm_route($1) order by position",
        )
        .bind(feature)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let chain = rows
            .into_iter()
            .filter_map(|(provider, wire_name, base_url, model)| {
                let Some(w) = wire(&wire_name) else {
                    tracing::warn!(
                        provider,
                        wire = wire_name,
                        "unknown wire format; route entry skipped"
                    );
                    return None;
                };
                Some(RouteEntry {
                    endpoint: Endpoint {
                        provider,
                        wire: w,
                        base_url,
                    },
                    model,
                })
            })
            .collect();
        let c = Arc::new(Catalog {
            cache_ttl_secs: i64::from(cache_ttl_secs.unwrap_or(0)),
            reinsert_pii,
            chain,
        });
        self.inner
            .catalog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, (Instant::now(), c.clone()));
        Ok(c)
    }

    /// Tries the chain; returns every attempt and the first answer.
    async fn call_chain(
        &self,
        ctx: &CallContext,
        tenant_db: &TenantDb,
        catalog: &Catalog,
        messages: &[Message],
        req: &GatewayRequest,
        budget: &Budget,
    ) -> (Vec<Attempt>, Option<(RouteEntry, ChatResponse)>) {
        let mut attempts = Vec::new();
        for entry in &catalog.chain {
            if budget.is_spent() {
                break;
            }
            let Some(keys) = self.usable_keys(ctx, tenant_db, entry).await else {
                continue;
            };
            let request = ChatRequest {
                model: entry.model.clone(),
                messages: messages.to_vec(),
                temperature: req.temperature,
                max_output_tokens: req.max_output_tokens,
                json_schema: req.json_schema.clone(),
            };
            match self
                .try_entry(entry, keys, &request, budget, &mut attempts)
                .await
            {
                Tried::Answered(response) => return (attempts, Some((entry.clone(), response))),
                Tried::GiveUp => return (attempts, None),
                Tried::NextEntry => {}
            }
        }
        (attempts, None)
    }

    /// The keys of the entry's provider, if it has any and its breaker lets
    /// a call through (asked only when there are keys: a half-open breaker
    /// admits one probe).
    async fn usable_keys(
        &self,
        ctx: &CallContext,
        tenant_db: &TenantDb,
        entry: &RouteEntry,
    ) -> Option<Vec<KeyChoice>> {
        let provider = entry.endpoint.provider.as_str();
        let keys = self
            .inner
            .keys
            .keys(ctx.tenant_id, provider, tenant_db)
            .await;
        if keys.is_empty() {
            tracing::debug!(provider, "no usable key; route entry skipped");
            return None;
        }
        if self.inner.breakers.allow(provider) == Admission::Refuse {
            tracing::debug!(provider, "breaker open; route entry skipped");
            return None;
        }
        Some(keys)
    }

    /// One (provider, model): its keys in turn, each retried while
    /// [`Gateway::after_failure`] says so; every attempt is recorded.
    async fn try_entry(
        &self,
        entry: &RouteEntry,
        keys: Vec<KeyChoice>,
        request: &ChatRequest,
        budget: &Budget,
        attempts: &mut Vec<Attempt>,
    ) -> Tried {
        let provider = entry.endpoint.provider.as_str();
        'keys: for key in keys {
            let mut retry = 0;
            loop {
                if attempts.len() >= MAX_ATTEMPTS {
                    return Tried::GiveUp;
                }
                let Some((result, latency)) = self.attempt(entry, &key, request, budget).await
                else {
                    // No slot within the budget: the fallback answers.
                    return Tried::GiveUp;
                };
                let error = match result {
                    Ok(response) => {
                        self.inner.breakers.success(provider);
                        attempts.push(Attempt::answered(entry, &key, &response, latency));
                        return Tried::Answered(response);
                    }
                    Err(e) => e,
                };
                tracing::info!(provider, model = entry.model, key_ref = key.key_ref, error = %error, "LLM attempt failed");
                attempts.push(Attempt::failed(entry, &key, &error, latency));
                match self.after_failure(provider, &key, &error, retry, budget) {
                    Then::Retry(wait) => {
                        tokio::time::sleep(wait).await;
                        retry += 1;
                    }
                    Then::NextKey => continue 'keys,
                    Then::NextEntry => return Tried::NextEntry,
                }
            }
        }
        Tried::NextEntry
    }

    /// One call of the provider with one key, in a slot of the calls in
    /// flight, within the budget: its result and latency, or None when no
    /// slot frees up within the budget.
    async fn attempt(
        &self,
        entry: &RouteEntry,
        key: &KeyChoice,
        request: &ChatRequest,
        budget: &Budget,
    ) -> Option<(Result<ChatResponse, ProviderError>, Duration)> {
        let inner = &self.inner;
        let Ok(Ok(permit)) =
            tokio::time::timeout(budget.remaining(), inner.in_flight.acquire()).await
        else {
            return None;
        };
        let t0 = Instant::now();
        let call = inner
            .client
            .chat(&entry.endpoint, key.secret.expose_secret(), request);
        let result = match tokio::time::timeout(budget.remaining(), call).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout),
        };
        drop(permit);
        Some((result, t0.elapsed()))
    }

    /// What follows a failed attempt, after telling the breaker (a provider
    /// failure) and the key ring (a key to cool): a 429/401 moves to the next
    /// key; a retryable error is retried on the same key after the backoff
    /// while the budget and the breaker allow; anything else moves to the
    /// next model.
    fn after_failure(
        &self,
        provider: &str,
        key: &KeyChoice,
        error: &ProviderError,
        retry: u32,
        budget: &Budget,
    ) -> Then {
        let inner = &self.inner;
        if provider_failure(error) {
            inner.breakers.failure(provider);
        }
        if error.cools_key() {
            inner.keys.cool(provider, &key.key_ref, error);
            return Then::NextKey;
        }
        let open = matches!(inner.breakers.state(provider), State::Open { .. });
        if !error.retryable() || open {
            return Then::NextEntry;
        }
        match inner
            .retry
            .delay(retry, error.retry_after(), budget.remaining())
        {
            Some(wait) => Then::Retry(wait),
            None => Then::NextEntry,
        }
    }

    /// `llm_finish`: the ledger rows, the settled reservation, the cache.
    async fn finish(
        &self,
        ctx: &CallContext,
        feature: &str,
        reservation: Uuid,
        attempts: &[Attempt],
        cache: Option<Value>,
    ) -> Result<Vec<Uuid>, GatewayError> {
        let attempts: Vec<Value> = attempts
            .iter()
            .map(|a| {
                json!({
                    "user_id": ctx.user_id,
                    "feature": feature,
                    "provider": a.provider,
                    "model": a.model,
                    "key_ref": a.key_ref,
                    "tokens_in": a.tokens_in,
                    "tokens_out": a.tokens_out,
                    "latency_ms": u64::try_from(a.latency.as_millis()).unwrap_or(u64::MAX),
                    "outcome": a.outcome,
                    "error": a.error,
                    "request_id": ctx.request_id,
                })
            })
            .collect();
        let done = self
            .metered(
                ctx,
                db::as_caller!("llm_finish($5, $6, $7, $8)"),
                "select llm_finish($1, $2, $3, $4)",
                |q| {
                    q.bind(ctx.tenant_id)
                        .bind(reservation)
                        .bind(Value::Array(attempts))
                        .bind(cache)
                },
            )
            .instrument(crate::telemetry::db_span("llm_finish"))
            .await?;
        Ok(done
            .get("call_ids")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                    .collect()
            })
            .unwrap_or_default())
    }
}
