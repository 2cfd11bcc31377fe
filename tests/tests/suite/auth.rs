//! Caller verification over HTTP: HS256 and RS256 (JWKS from a stand-in
//! OIDC provider on loopback), with every failure a 401 JSON error.

use std::time::Duration;

use bizos_tests::{spawn_app, spawn_app_with, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RSA_KEY: &[u8] = include_bytes!("../../fixtures/rs256-test-key.pem");
const JWKS: &str = include_str!("../../fixtures/rs256-test-jwks.json");

async fn assert_unauthorized(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    body
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn missing_or_bad_tokens_get_401_json() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let me = app.url("/api/me");

    let body = assert_unauthorized(app.http.get(&me).send().await.unwrap()).await;
    assert_eq!(body["error"]["message"], "missing bearer token");

    for header in ["Basic abc", "Bearer", "Bearer not.a.jwt", "Token xyz"] {
        assert_unauthorized(
            app.http
                .get(&me)
                .header("authorization", header)
                .send()
                .await
                .unwrap(),
        )
        .await;
    }

    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "finance").await;
    let claims = |exp: i64| json!({"sub": user.user_id, "tenant_id": tenant, "app_role": "finance", "exp": exp});

    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() + 60),
        &EncodingKey::from_secret(b"some-other-secret-some-other-secret"),
    )
    .unwrap();
    let body = assert_unauthorized(
        app.http
            .get(&me)
            .bearer_auth(wrong_secret)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["error"]["message"], "invalid token: bad signature");

    let expired = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(now() - 3600),
        &EncodingKey::from_secret(bizos_tests::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let body =
        assert_unauthorized(app.http.get(&me).bearer_auth(expired).send().await.unwrap()).await;
    assert_eq!(body["error"]["message"], "invalid token: expired");

    let no_tenant = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": user.user_id, "app_role": "finance", "exp": now() + 60}),
        &EncodingKey::from_secret(bizos_tests::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let body = assert_unauthorized(
        app.http
            .get(&me)
            .bearer_auth(no_tenant)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(body["error"]["message"], "token lacks claim tenant_id");

    // The good token still works on the same server.
    assert_eq!(app.get_as(&user, "/api/me").await.status(), 200);
}

#[tokio::test]
async fn rs256_tokens_are_verified_against_the_providers_jwks() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(JWKS, "application/json"))
        .expect(1)
        .mount(&provider)
        .await;

    let db = TestDb::new().await;
    let jwks_url = format!("{}/.well-known/jwks.json", provider.uri());
    let app = spawn_app_with(
        &db,
        &[
            ("BIZOS_JWT_JWKS_URL", &jwks_url),
            ("BIZOS_JWT_SECRET", ""),
            ("BIZOS_JWT_ISSUER", "https://id.example.test/"),
            ("BIZOS_JWT_AUDIENCE", "bizos"),
        ],
    )
    .await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "sales_manager").await;
    let key = EncodingKey::from_rsa_pem(RSA_KEY).unwrap();
    let sign = |kid: &str, iss: &str, aud: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            &json!({"sub": user.user_id, "tenant_id": tenant, "app_role": "sales_manager",
                    "iss": iss, "aud": aud, "exp": now() + 300}),
            &key,
        )
        .unwrap()
    };
    let me = app.url("/api/me");

    let res = app
        .http
        .get(&me)
        .bearer_auth(sign("bizos-test-1", "https://id.example.test/", "bizos"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], user.user_id.to_string());

    let res = app
        .http
        .get(&me)
        .bearer_auth(sign("bizos-test-1", "https://evil.example.test/", "bizos"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_unauthorized(res).await["error"]["message"],
        "invalid token: wrong issuer"
    );

    let res = app
        .http
        .get(&me)
        .bearer_auth(sign(
            "bizos-test-1",
            "https://id.example.test/",
            "other-app",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_unauthorized(res).await["error"]["message"],
        "invalid token: wrong audience"
    );

    // An unknown key id within the refresh interval does not hammer the
    // provider (the mock expects exactly one fetch).
    let res = app
        .http
        .get(&me)
        .bearer_auth(sign("rotated-away", "https://id.example.test/", "bizos"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_unauthorized(res).await["error"]["message"],
        "unknown signing key"
    );

    // An HS256 token is refused when only a JWKS is configured.
    let res = app.get_as(&user, "/api/me").await;
    assert_unauthorized(res).await;
}

#[tokio::test]
async fn an_unreachable_jwks_is_a_retryable_503_not_a_401() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = TestDb::new().await;
    let url = format!("http://127.0.0.1:{port}/jwks.json");
    let app = spawn_app_with(&db, &[("BIZOS_JWT_JWKS_URL", &url)]).await;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bizos-test-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({"sub": uuid::Uuid::new_v4(), "tenant_id": uuid::Uuid::new_v4(), "app_role": "ops", "exp": now() + 60}),
        &EncodingKey::from_rsa_pem(RSA_KEY).unwrap(),
    )
    .unwrap();
    let res = tokio::time::timeout(
        Duration::from_secs(20),
        app.http.get(app.url("/api/me")).bearer_auth(token).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
}
