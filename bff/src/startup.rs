//! Building the server and running it until a shutdown signal.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

use crate::config::Settings;
use crate::error::ApiError;
use crate::files::Storage;
use crate::jwt::JwtVerifier;
use crate::routes;
use crate::state::AppState;
use crate::telemetry::Tracing;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub struct Application {
    listener: TcpListener,
    router: Router,
    settings: Settings,
    /// This server's trace exporter (see [`crate::telemetry::Tracing`]).
    tracing: Option<Tracing>,
    /// The internal listener of `/metrics` (BIZOS_METRICS_LISTEN).
    metrics: Option<(TcpListener, PgPool)>,
}

impl Application {
    /// Connects to the database, checks the login role and binds the port
    /// (port 0 picks a free one, see [`Application::port`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let options: PgConnectOptions = settings
            .app_database_url
            .expose_secret()
            .parse()
            .map_err(|e| anyhow::anyhow!("BIZOS_APP_URL is invalid: {e}"))?;
        let pool = crate::pool::pool_options()
            .max_connections(settings.db_max_connections)
            .acquire_timeout(settings.db_acquire_timeout)
            .connect_with(options.clone().application_name("bizos-bff"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect with BIZOS_APP_URL: {e}"))?;
        crate::db::ensure_unprivileged(&pool).await?;
        // The process's metrics recorder (shared with the worker).
        crate::metrics::handle();
        // The terms of request fields and of the document's enums.
        let vocabulary = Arc::new(crate::vocabulary::Vocabulary::load(&pool).await?);

        // Expired idempotency keys are purged by `bizos worker`
        // (idempotency.purge jobs, one per tenant and period).
        // Uploads of this process are known to be alive while it holds this
        // lock; the bytes of dead ones (a crash mid-upload) are removed by
        // `storage.sweep` jobs of `bizos worker`: enqueued now for the
        // tenants with dead uploads (a BFF restarted after a crash), and by
        // the worker every sweep period.
        let upload_owner_lock = crate::files::sweep::hold_owner_lock(options).await?;
        let storage = Storage::from_settings(&settings.storage)?;
        match crate::files::sweep::enqueue(
            &pool,
            crate::files::sweep::max_age(settings.upload_timeout),
        )
        .await
        {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "sweeps of dead uploads enqueued"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "enqueueing the sweeps of dead uploads failed"),
        }
        let metrics = match settings.metrics_listen {
            Some(addr) => Some((
                TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (BIZOS_METRICS_LISTEN): {e}")
                })?,
                pool.clone(),
            )),
            None => None,
        };
        let llm = crate::llm::Gateway::new(pool.clone(), crate::llm::Login::App, &settings.llm)?;
        let placements = crate::placement::Router::new(
            pool.clone(),
            settings.db_max_connections,
            crate::placement::Secrets::from_env(settings.placement.secrets_file.clone()),
            crate::placement::RoutingSettings {
                pool_max: settings.placement.pool_max,
                total_max: settings.placement.total_max,
                cache_ttl: settings.placement.cache_ttl,
                acquire_timeout: settings.db_acquire_timeout,
                application_name: "bizos-bff",
            },
        )
        .await?;
        let operator = match (
            &settings.placement.operator_token,
            &settings.placement.operator_database_url,
        ) {
            (Some(token), Some(url)) => {
                Some(Arc::new(crate::placement::operator::OperatorApi::new(
                    token,
                    crate::placement::lifecycle::Operator::connect(
                        url.expose_secret(),
                        crate::placement::Secrets::file_only(
                            settings.placement.operator_secrets_file.clone(),
                        ),
                    )
                    .await?,
                )))
            }
            _ => None,
        };
        let state = AppState {
            pool,
            verifier: Arc::new(JwtVerifier::new(&settings.jwt)?),
            storage,
            upload_owner_lock,
            upload_max_bytes: settings.upload_max_bytes,
            upload_timeout: settings.upload_timeout,
            idempotency_ttl: settings.idempotency_ttl,
            import_batch_rows: settings.import_batch_rows,
            vocabulary,
            llm,
            kb_embedder: match &settings.kb_model_dir {
                Some(dir) => Some(
                    crate::kb::embed::shared(dir)
                        .map_err(|e| anyhow::anyhow!("BIZOS_KB_MODEL_DIR: {e}"))?,
                ),
                None => None,
            },
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            webhooks: crate::webhooks::Webhooks::new(&settings.webhooks)?,
            placements,
            operator,
            signup: Arc::new(settings.signup.clone()),
            payments: Arc::new(settings.payments.clone()),
        };
        let listener = TcpListener::bind(settings.listen).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {} (BIZOS_LISTEN): {e}", settings.listen)
        })?;
        let tracing = Tracing::from_settings(&settings.otel)?;
        let mut router = router(state, &settings);
        if let Some(t) = &tracing {
            // Outermost: the request span and everything below it go to
            // this server's exporter.
            router = router.layer(t.layer());
        }
        Ok(Application {
            listener,
            router,
            settings,
            tracing,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until SIGINT/SIGTERM, then lets in-flight requests finish for
    /// up to `BIZOS_SHUTDOWN_GRACE_SECS`.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Serves until `signal` completes (tests use a oneshot).
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.settings.shutdown_grace;
        let tracing = self.tracing.clone();
        let metrics = self.metrics.map(|(listener, pool)| {
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics listening");
            tokio::spawn(crate::metrics::serve(
                listener,
                pool,
                self.settings.metrics_token.clone(),
            ))
        });
        tracing::info!(addr = %self.listener.local_addr()?, "bizos BFF listening");
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            signal.await;
            tracing::info!("shutting down; draining requests");
            let _ = stopped_tx.send(());
        });
        let server = tokio::spawn(async move { server.await });
        tokio::select! {
            result = server => result??,
            _ = async {
                let _ = stopped_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "requests still running after the grace period; stopping");
            }
        }
        if let Some(task) = metrics {
            task.abort();
        }
        if let Some(t) = tracing {
            // Export the spans still buffered before the process ends.
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
        Ok(())
    }
}

pub fn router(state: AppState, settings: &Settings) -> Router {
    let trace = TraceLayer::new_for_http()
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(LatencyUnit::Millis),
        )
        .make_span_with(|req: &Request<_>| {
            let request_id = req
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            // Router::layer runs after routing: the route is known here;
            // crate::metrics::track_http records the rest.
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or(crate::metrics::UNMATCHED, |m| m.as_str());
            tracing::info_span!(
                "request",
                otel.name = format!("{} {route}", req.method()),
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                method = %req.method(),
                path = %req.uri().path(),
                http.route = route,
                http.response.status_code = tracing::field::Empty,
                request_id,
                user_id = tracing::field::Empty,
                tenant_id = tracing::field::Empty,
            )
        });

    let timeout = |limit| TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limit);
    let routes::Api {
        json: api,
        uploads,
        document: doc,
        scopes,
    } = routes::all(&state.vocabulary);

    // JSON routes: a small body limit. Upload routes stream their files and
    // check each bucket's limit themselves, under BIZOS_UPLOAD_MAX_BYTES.
    let json_routes = api
        // Innermost: limits whose bodyless rejections json_errors rewrites.
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(settings.body_limit_bytes))
        .layer(timeout(settings.request_timeout));
    let multipart_slack = 1024 * 1024;
    let upload_routes = uploads
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(
            usize::try_from(settings.upload_max_bytes).unwrap_or(usize::MAX) + multipart_slack,
        ))
        .layer(timeout(settings.upload_timeout));

    let served = json_routes
        .merge(upload_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(crate::metrics::track_http))
        // What the request learns of its tenant's soft lock (402 on writes).
        .layer(axum::middleware::from_fn(crate::payments::lock::scope))
        .with_state(state)
        .layer(axum::Extension(Arc::new(doc)))
        .layer(axum::Extension(Arc::new(scopes)))
        .layer(axum::middleware::map_response(json_errors))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::map_request(drop_unusable_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        );
    // /api/v1/<path> is /api/<path>: rewritten before the routes above
    // match (a Router's own layers run after its routing), and marked as
    // the surface that accepts API keys.
    Router::new()
        .fallback_service(served)
        .layer(axum::middleware::map_request(api_v1))
}

/// The stable, versioned public surface: `/api/v1/<path>` serves the route
/// `/api/<path>`, for user tokens and API keys alike.
async fn api_v1(mut req: axum::extract::Request) -> axum::extract::Request {
    let Some(rest) = req.uri().path().strip_prefix("/api/v1/") else {
        return req;
    };
    // The integration document is a route of its own, not /api/openapi.json.
    if req.uri().path() == routes::openapi::INTEGRATION_DOCUMENT {
        return req;
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("/api/{rest}?{q}"),
        None => format!("/api/{rest}"),
    };
    let mut parts = req.uri().clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(crate::api_keys::ApiV1);
    }
    req
}

/// The longest `x-request-id` a client may choose.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A client's `x-request-id` goes into logs and into the database
/// (`request.id`, kept by the audit log): one that is empty, longer than
/// [`MAX_REQUEST_ID_LEN`] or not visible ASCII is dropped, so the request
/// gets a new UUID (returned in the response's `x-request-id`).
async fn drop_unusable_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    let usable = req.headers().get(&REQUEST_ID).is_none_or(|v| {
        let v = v.as_bytes();
        !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(u8::is_ascii_graphic)
    });
    if !usable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    req
}

/// Gives the bodyless error responses of tower layers (body limit, timeout)
/// the API's JSON error shape.
async fn json_errors(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge.into_response(),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => {
            ApiError::Unavailable("the request took too long; retry it".into()).into_response()
        }
        _ => response,
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
