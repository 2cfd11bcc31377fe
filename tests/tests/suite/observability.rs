//! OPS-18: Prometheus `/metrics` and OpenTelemetry traces, checked against
//! a real OTLP/HTTP receiver on loopback that decodes what it gets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use bizos_bff::config::OtelSettings;
use bizos_bff::metrics::JobOutcome;
use bizos_bff::telemetry::{self, Tracing};
use bizos_bff::worker::WorkerSettings;
use bizos_tests::{spawn_app_with, start_worker, worker_settings, TestDb};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tracing::Instrument;
use uuid::Uuid;

const TOKEN: &str = "metrics-token-for-tests";

/// The value of every line of `text` for series `name` whose labels
/// include all of `labels` (`key="value"`).
fn samples(text: &str, name: &str, labels: &[&str]) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// An address for the app's internal metrics listener (a free port).
fn metrics_listen() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

async fn scrape(app: &bizos_tests::TestApp, listen: &str) -> String {
    let res = app
        .http
        .get(format!("http://{listen}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    res.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_by_matched_route() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("obs-metrics").await;
    let user = db.create_user(tenant, "director").await;
    let listen = metrics_listen();
    let app = spawn_app_with(&db, &[("BIZOS_METRICS_LISTEN", listen.as_str())]).await;

    let route = r#"route="/api/leads/{id}""#;
    let before = scrape(&app, &listen).await;
    let seen = |text: &str| {
        samples(
            text,
            "bizos_http_requests_total",
            &[route, r#"method="GET""#, r#"status="404""#],
        )
        .iter()
        .sum::<f64>()
    };
    let lead = Uuid::new_v4();
    for _ in 0..3 {
        let res = app.get_as(&user, &format!("/api/leads/{lead}")).await;
        assert_eq!(res.status(), 404);
    }
    let res = app
        .http
        .get(app.url(&format!("/no/such/{lead}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let text = scrape(&app, &listen).await;
    assert!(seen(&text) >= seen(&before) + 3.0, "{text}");
    // The latency histogram, by the same labels.
    let buckets = samples(
        &text,
        "bizos_http_request_duration_seconds_bucket",
        &[route, r#"le="+Inf""#],
    );
    assert!(buckets.iter().sum::<f64>() >= 3.0, "{text}");
    assert!(
        text.contains("# TYPE bizos_http_request_duration_seconds histogram"),
        "{text}"
    );
    // A request no route matched has a fixed label; raw paths never show.
    assert!(
        !samples(
            &text,
            "bizos_http_requests_total",
            &[r#"route="unmatched""#]
        )
        .is_empty(),
        "{text}"
    );
    assert!(
        !text.contains(&lead.to_string()),
        "a raw path leaked into the labels:\n{text}"
    );
    // The pool, sampled at scrape (the test app's pool has 5 connections).
    assert_eq!(
        samples(&text, "bizos_db_pool_max_connections", &[]),
        vec![5.0],
        "{text}"
    );
    assert_eq!(
        samples(&text, "bizos_db_pool_connections", &[r#"state="idle""#]).len(),
        1,
        "{text}"
    );
    assert_eq!(
        samples(&text, "bizos_db_pool_connections", &[r#"state="in_use""#]).len(),
        1,
        "{text}"
    );
    // No tenant data: neither the tenant nor the user appear.
    assert!(!text.contains(&tenant.to_string()) && !text.contains(&user.user_id.to_string()));
}

#[tokio::test]
async fn job_and_email_recorders_show_on_metrics() {
    let db = TestDb::new().await;
    let listen = metrics_listen();
    let app = spawn_app_with(&db, &[("BIZOS_METRICS_LISTEN", listen.as_str())]).await;
    // What the worker (Q1) and the e-mail sender (Q3) call.
    bizos_bff::metrics::job_finished("storage.sweep", JobOutcome::Succeeded, 0.2);
    bizos_bff::metrics::job_finished("storage.sweep", JobOutcome::Dead, 1.5);
    bizos_bff::metrics::queue_depth("storage.sweep", "queued", 7);
    bizos_bff::metrics::email_sent(true);
    bizos_bff::metrics::email_sent(false);
    let text = scrape(&app, &listen).await;
    let kind = r#"kind="storage.sweep""#;
    for (name, labels) in [
        (
            "bizos_jobs_finished_total",
            vec![kind, r#"outcome="succeeded""#],
        ),
        ("bizos_jobs_finished_total", vec![kind, r#"outcome="dead""#]),
        (
            "bizos_job_duration_seconds_count",
            vec![kind, r#"outcome="dead""#],
        ),
        ("bizos_jobs_dead_letters_total", vec![kind]),
        ("bizos_emails_total", vec![r#"outcome="sent""#]),
        ("bizos_emails_total", vec![r#"outcome="failed""#]),
    ] {
        assert!(
            samples(&text, name, &labels).iter().sum::<f64>() >= 1.0,
            "{name} {labels:?}:\n{text}"
        );
    }
    assert_eq!(
        samples(
            &text,
            "bizos_jobs_queue_depth",
            &[kind, r#"status="queued""#]
        ),
        vec![7.0],
        "{text}"
    );
}

#[tokio::test]
async fn metrics_are_on_the_internal_listener_behind_the_token() {
    let db = TestDb::new().await;
    let listen = metrics_listen();
    let app = spawn_app_with(
        &db,
        &[
            ("BIZOS_METRICS_LISTEN", listen.as_str()),
            ("BIZOS_METRICS_TOKEN", TOKEN),
        ],
    )
    .await;
    let url = format!("http://{listen}/metrics");
    let res = app.http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(&url)
        .bearer_auth("metrics-token-for-testz")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(scrape(&app, &listen)
        .await
        .contains("bizos_db_pool_max_connections"));
    let res = app
        .http
        .get(format!("http://{listen}/api/me"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the metrics listener serves nothing else"
    );
    // Never on the public API listener.
    let res = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// An OTLP/HTTP receiver on 127.0.0.1: decodes every export into spans.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
        let sink = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    let request =
                        ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                    let mut sink = sink.lock().unwrap();
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|kv| kv.key == "service.name")
                            .and_then(|kv| string(kv.value.as_ref()?.value.as_ref()?))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                sink.push((service.clone(), span));
                            }
                        }
                    }
                    (
                        [("content-type", "application/x-protobuf")],
                        Vec::<u8>::new(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { endpoint, spans }
    }

    /// The spans of `service` once one named `name` has arrived.
    async fn wait_for(&self, service: &str, name: &str) -> Vec<Span> {
        for _ in 0..200 {
            let got: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(s, _)| s == service)
                .map(|(_, span)| span.clone())
                .collect();
            if got.iter().any(|s| s.name == name) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got: Vec<(String, String)> = self
            .spans
            .lock()
            .unwrap()
            .iter()
            .map(|(s, span)| (s.clone(), span.name.clone()))
            .collect();
        panic!("no span {name:?} of {service} arrived; got {got:?}");
    }
}

fn string(v: &AnyValue) -> Option<String> {
    match v {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| string(kv.value.as_ref()?.value.as_ref()?))
}

fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "spans named {name:?}: {found:#?}");
    found[0]
}

#[tokio::test]
async fn one_request_exports_its_span_and_its_database_spans_in_one_trace() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let tenant = db.create_tenant("obs-trace").await;
    let user = db.create_user(tenant, "director").await;
    let service = format!("bizos-test-{}", Uuid::new_v4().simple());
    let app = spawn_app_with(
        &db,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_SERVICE_NAME", service.as_str()),
            // Never by the timer within this test: only the flush on
            // shutdown sends the spans.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            // Time for the shutdown to end the connections, hence the
            // request span, before the flush (on a loaded machine).
            ("BIZOS_SHUTDOWN_GRACE_SECS", "10"),
        ],
    )
    .await;
    // The whole response is read: the request span ends with its body.
    let (status, _) = app.get_json(&user, "/api/leads?limit=5").await;
    assert_eq!(status, 200);
    // Shutting the server down flushes its exporter.
    drop(app);
    let spans = receiver.wait_for(&service, "GET /api/leads").await;

    let request = named(&spans, "GET /api/leads");
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert!(
        request.parent_span_id.is_empty(),
        "the request span is the root"
    );
    assert_eq!(attr(request, "http.route").as_deref(), Some("/api/leads"));
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    for name in ["authenticate_request", "leads"] {
        let call = named(&spans, name);
        assert_eq!(
            call.trace_id, request.trace_id,
            "{name} is in the request's trace"
        );
        assert_eq!(
            call.parent_span_id, request.span_id,
            "{name} is a child of the request span"
        );
        assert_eq!(call.kind, SpanKind::Client as i32);
        assert_eq!(attr(call, "db.system").as_deref(), Some("postgresql"));
        assert_eq!(attr(call, "db.operation.name").as_deref(), Some(name));
        // No statement parameters (the claims, the caller) on the span.
        for kv in &call.attributes {
            let v = kv
                .value
                .as_ref()
                .and_then(|v| string(v.value.as_ref()?))
                .unwrap_or_default();
            assert!(!v.contains(&user.user_id.to_string()), "{name}: {kv:?}");
        }
    }
}

#[tokio::test]
async fn the_database_sees_the_traceparent_and_a_job_span_links_to_it() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let tenant = db.create_tenant("obs-traceparent").await;
    let user = db.create_user(tenant, "director").await;
    let setting = "select current_setting('request.traceparent', true)";

    // Untraced: the setting is empty.
    let mut tx = db.as_user(&user).await;
    let untraced: Option<String> = sqlx::query_scalar(setting)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(untraced.as_deref(), Some(""));

    let service = format!("bizos-test-{}", Uuid::new_v4().simple());
    let tracer = Tracing::new(&receiver.endpoint, &service, Duration::from_secs(600)).unwrap();
    let (in_db, expected) = tracer
        .traced(async {
            let span = tracing::info_span!("probe");
            async {
                let expected = telemetry::traceparent(&tracing::Span::current()).expect("traced");
                let mut tx = bizos_bff::db::begin_as(&db.app, &user).await.unwrap();
                let in_db: String = sqlx::query_scalar(setting)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                (in_db, expected)
            }
            .instrument(span)
            .await
        })
        .await;
    assert_eq!(in_db, expected);

    // What the worker does with the traceparent its job stored.
    tracer
        .traced(async {
            let child = tracing::info_span!("job as child");
            assert!(telemetry::link_to_traceparent(&child, &in_db, true));
            async {}.instrument(child).await;
            let linked = tracing::info_span!("job linked");
            assert!(telemetry::link_to_traceparent(&linked, &in_db, false));
            async {}.instrument(linked).await;
            assert!(!telemetry::link_to_traceparent(
                &tracing::Span::current(),
                "garbage",
                false
            ));
        })
        .await;
    let t = tracer.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();

    let spans = receiver.wait_for(&service, "job linked").await;
    let probe = named(&spans, "probe");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(
        in_db,
        format!("00-{}-{}-01", hex(&probe.trace_id), hex(&probe.span_id))
    );
    let begin = named(&spans, "authenticate_request");
    assert_eq!(
        (&begin.trace_id, &begin.parent_span_id),
        (&probe.trace_id, &probe.span_id)
    );
    let child = named(&spans, "job as child");
    assert_eq!(
        (&child.trace_id, &child.parent_span_id),
        (&probe.trace_id, &probe.span_id)
    );
    let linked = named(&spans, "job linked");
    assert_ne!(
        linked.trace_id, probe.trace_id,
        "a linked job span has a trace of its own"
    );
    assert_eq!(linked.links.len(), 1);
    assert_eq!(
        (&linked.links[0].trace_id, &linked.links[0].span_id),
        (&probe.trace_id, &probe.span_id)
    );
}

/// `n` lead rows with distinct external refs.
fn leads_csv(n: usize) -> Vec<u8> {
    let mut out = String::from("external_ref,channel,company_name\n");
    for i in 1..=n {
        out.push_str(&format!("OBS-{i},website,PT Jejak {i}\n"));
    }
    out.into_bytes()
}

/// The worker's `/metrics` (with the token).
async fn scrape_worker(http: &reqwest::Client, url: &str) -> String {
    let res = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The acceptance test of OPS-18: one request that enqueues a job, the BFF
/// and the worker both exporting to one receiver, gives one trace holding
/// the request span, its database span, and the job span (a child of the
/// request span) with the job's own database spans; the worker's
/// `/metrics` counts the run and shows the queue depth.
#[tokio::test]
async fn one_trace_runs_from_the_request_through_the_database_to_the_job() {
    let receiver = Receiver::start().await;
    let db = TestDb::new().await;
    let tenant = db.create_tenant("obs-job-trace").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let suffix = Uuid::new_v4().simple().to_string();
    let bff_service = format!("bizos-test-{suffix}");
    let worker_service = format!("bizos-test-worker-{suffix}");
    let app = spawn_app_with(
        &db,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_SERVICE_NAME", bff_service.as_str()),
            // Only the flushes on shutdown send the spans.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ("BIZOS_SHUTDOWN_GRACE_SECS", "10"),
            ("BIZOS_IMPORT_BATCH_ROWS", "20"),
            // This test's own worker, exporting too.
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    let worker = start_worker(WorkerSettings {
        metrics_token: Some(TOKEN.into()),
        shutdown_grace: Duration::from_secs(10),
        otel: OtelSettings {
            endpoint: Some(receiver.endpoint.clone()),
            service_name: worker_service.clone(),
            schedule_delay: Duration::from_secs(600),
        },
        ..worker_settings(
            &db,
            20,
            bizos_bff::config::StorageSettings::Local {
                root: std::env::temp_dir().join("bizos-observability-test-files"),
            },
        )
    })
    .await;
    let metrics = format!("http://127.0.0.1:{}/metrics", worker.health_port);
    let res = app.http.get(&metrics).send().await.unwrap();
    assert_eq!(res.status(), 401, "the worker's /metrics wants the token");
    let succeeded = |text: &str| {
        samples(
            text,
            "bizos_jobs_finished_total",
            &[r#"kind="import.process""#, r#"outcome="succeeded""#],
        )
        .iter()
        .sum::<f64>()
    };
    // Other tests' workers in this process count too: compare.
    let before = succeeded(&scrape_worker(&app.http, &metrics).await);

    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            leads_csv(100),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, first) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &serde_json::json!(null),
            None,
        )
        .await;
    assert_eq!(status, 202, "the first batch leaves rows pending: {first}");
    let job: Uuid = sqlx::query_scalar("select job_id from jobs where kind = 'import.process'")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let mut status = String::new();
    for _ in 0..300 {
        status = sqlx::query_scalar("select status from jobs where job_id = $1")
            .bind(job)
            .fetch_one(&db.owner)
            .await
            .unwrap();
        if status != "queued" && status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "succeeded");

    let text = scrape_worker(&app.http, &metrics).await;
    assert!(succeeded(&text) >= before + 1.0, "{text}");
    assert!(
        samples(
            &text,
            "bizos_job_duration_seconds_count",
            &[r#"kind="import.process""#, r#"outcome="succeeded""#]
        )
        .iter()
        .sum::<f64>()
            >= 1.0,
        "{text}"
    );
    // The queue depth, sampled from job_queue by the worker's login.
    for status in ["queued", "due", "running", "dead"] {
        assert_eq!(
            samples(
                &text,
                "bizos_jobs_queue_depth",
                &[r#"kind="import.process""#, &format!(r#"status="{status}""#)]
            )
            .len(),
            1,
            "{status}:\n{text}"
        );
    }
    assert!(!text.contains(&tenant.to_string()), "no tenant data");

    // Both shut down: each flushes its exporter.
    drop(app);
    drop(worker.stop);
    worker.stopped.await.unwrap().unwrap();
    let route = "POST /api/imports/{id}/process";
    let bff = receiver.wait_for(&bff_service, route).await;
    let jobs = receiver
        .wait_for(&worker_service, "job import.process")
        .await;

    let request = named(&bff, route);
    assert!(request.parent_span_id.is_empty(), "the request is the root");
    let in_request: Vec<&Span> = bff
        .iter()
        .filter(|s| s.parent_span_id == request.span_id)
        .collect();
    let begin = in_request
        .iter()
        .find(|s| s.name == "authenticate_request")
        .unwrap_or_else(|| panic!("no database span in the request: {in_request:#?}"));
    assert_eq!(begin.trace_id, request.trace_id);
    assert_eq!(begin.kind, SpanKind::Client as i32);

    let run = named(&jobs, "job import.process");
    assert_eq!(
        run.trace_id, request.trace_id,
        "the job runs in the request's trace"
    );
    assert_eq!(
        run.parent_span_id, request.span_id,
        "the job span's parent is the request that enqueued it"
    );
    assert_eq!(run.kind, SpanKind::Consumer as i32);
    assert_eq!(attr(run, "job_id"), Some(job.to_string()));
    assert_eq!(attr(run, "kind").as_deref(), Some("import.process"));
    assert_eq!(attr(run, "tenant_id"), Some(tenant.to_string()));
    assert_eq!(attr(run, "attempt").as_deref(), Some("1"));
    assert_eq!(attr(run, "outcome").as_deref(), Some("succeeded"));
    // The job's database work: its children, in the same trace.
    for name in ["authenticate_request", "process_import", "job_complete"] {
        let calls: Vec<&Span> = jobs
            .iter()
            .filter(|s| s.name == name && s.parent_span_id == run.span_id)
            .collect();
        assert!(!calls.is_empty(), "no {name} span under the job");
        for call in calls {
            assert_eq!(call.trace_id, request.trace_id, "{name}");
            assert_eq!(call.kind, SpanKind::Client as i32, "{name}");
            assert_eq!(attr(call, "db.system").as_deref(), Some("postgresql"));
        }
    }
}
