//! API keys and /api/v1 (B2B-8): keys made by tenant admins act on
//! /api/v1 as service principals whose permissions are their scopes;
//! revocation and expiry hold from the next request; the allowed IPs are
//! checked against the client address; the secret is stored nowhere.

use bizos_bff::auth::Caller;
use bizos_tests::{code, spawn_app, spawn_app_with, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// A key made through the API by `admin`: (key id, secret).
async fn make_key(app: &TestApp, admin: &Caller, body: Value) -> (Uuid, String) {
    let (status, key) = app.post_json(admin, "/api/api-keys", &body, None).await;
    assert_eq!(status, 201, "{key}");
    let secret = key["secret"].as_str().expect("the secret, once").to_owned();
    let id = key["key_id"].as_str().unwrap().parse().unwrap();
    (id, secret)
}

/// A request with an API key.
async fn with_key(
    app: &TestApp,
    secret: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(secret);
    if let Some(b) = body {
        req = req.json(b);
    }
    status_and_json(req.send().await.expect("request")).await
}

async fn get_with_key(app: &TestApp, secret: &str, path: &str) -> (u16, Value) {
    with_key(app, secret, reqwest::Method::GET, path, None).await
}

/// Tenant with a super admin, a salesperson and her lead.
async fn tenant_with_a_lead(db: &TestDb, app: &TestApp, slug: &str) -> (Caller, Caller, String) {
    let tenant = db.create_tenant(slug).await;
    let admin = db.create_user(tenant, "super_admin").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let (status, lead) = app
        .post_json(
            &sales,
            "/api/leads",
            &json!({"channel": "referral", "company_name": format!("PT Sumber {slug}")}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    (admin, sales, lead["lead_id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_reads_and_writes_within_its_scopes_on_api_v1_only() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let (admin, _sales, lead_id) = tenant_with_a_lead(&db, &app, "keys-scopes").await;
    let (_, other_lead) = {
        let (a, _, l) = tenant_with_a_lead(&db, &app, "keys-other").await;
        (a, l)
    };

    let (reader_id, reader) = make_key(
        &app,
        &admin,
        json!({"name": "BI export", "scopes": ["leads:read"]}),
    )
    .await;
    assert!(
        reader.starts_with("bz_live_")
            && reader.len() == 8 + 43 + 1 + 32
            && reader.ends_with(&format!(".{}", admin.tenant_id.simple())),
        "{reader}"
    );

    // The salesperson's lead, which a key with leads:read sees tenant-wide;
    // never the other tenant's.
    let (status, list) = get_with_key(&app, &reader, "/api/v1/leads").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lead_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [lead_id.as_str()], "{list}");
    let (status, _) = get_with_key(&app, &reader, &format!("/api/v1/leads/{other_lead}")).await;
    assert_eq!(status, 404);

    // Keys are for /api/v1 only; /api/v1 takes user tokens too.
    let (status, body) = get_with_key(&app, &reader, "/api/leads").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = app.get_json(&admin, "/api/v1/leads").await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{body}"
    );

    // Outside its scopes: writes, another resource, a route for people.
    let lead = json!({"channel": "website", "company_name": "PT Dari Integrasi"});
    let (status, body) = with_key(
        &app,
        &reader,
        reqwest::Method::POST,
        "/api/v1/leads",
        Some(&lead),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leads:write"),
        "{body}"
    );
    for path in [
        "/api/v1/tickets",
        "/api/v1/invoices",
        "/api/v1/me",
        "/api/v1/api-keys",
    ] {
        let (status, body) = get_with_key(&app, &reader, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("insufficient_scope")),
            "{path}: {body}"
        );
    }

    // leads:write creates a lead, as the key's principal.
    let (writer_id, writer) = make_key(
        &app,
        &admin,
        json!({"name": "web form", "scopes": ["leads:write"]}),
    )
    .await;
    let (status, created) = with_key(
        &app,
        &writer,
        reqwest::Method::POST,
        "/api/v1/leads",
        Some(&lead),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created_by: Option<Uuid> =
        sqlx::query_scalar("select created_by from leads where lead_id = $1")
            .bind(
                created["lead_id"]
                    .as_str()
                    .unwrap()
                    .parse::<Uuid>()
                    .unwrap(),
            )
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(created_by, Some(writer_id));
    let actors: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where table_name = 'public.leads' and actor = $1 and action = 'INSERT'",
    )
    .bind(writer_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(actors, 1, "the audit log names the key");

    // A write scope includes reading its resource (as the database grants
    // leads:write crm.read_all): the writer reads the tenant's leads, the
    // one it made among them; other resources stay closed.
    let (status, list) = get_with_key(&app, &writer, "/api/v1/leads").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");
    let made = created["lead_id"].as_str().unwrap();
    let (status, one) = get_with_key(&app, &writer, &format!("/api/v1/leads/{made}")).await;
    assert_eq!(
        (status, one["lead_id"].as_str()),
        (200, Some(made)),
        "{one}"
    );
    let (status, body) = get_with_key(&app, &writer, "/api/v1/tickets").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope")),
        "{body}"
    );
    // Every write scope's permissions hold its read scope's.
    let missing: Vec<String> = sqlx::query_scalar(
        "select r.scope || ' ' || r.permission
           from api_scope_permissions r
          where r.scope like '%:read'
            and exists (select 1 from api_scopes w where w.code = replace(r.scope, ':read', ':write'))
            and not exists (select 1 from api_scope_permissions w
                             where w.scope = replace(r.scope, ':read', ':write')
                               and w.permission = r.permission)",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(missing.is_empty(), "{missing:?}");
    // The OpenAPI document offers either scope for a read.
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let security = &doc["paths"]["/api/leads"]["get"]["security"];
    for scope in ["leads:read", "leads:write"] {
        assert!(
            security
                .as_array()
                .unwrap()
                .contains(&json!({"api_key": [scope]})),
            "{security}"
        );
    }

    // The use is recorded (to the minute), with the address.
    let (used, ip): (bool, Option<String>) = sqlx::query_as(
        "select last_used_at is not null, host(last_used_ip) from api_key_usage where key_id = $1",
    )
    .bind(reader_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((used, ip.as_deref()), (true, Some("127.0.0.1")));
}

#[tokio::test]
async fn the_database_enforces_a_keys_scopes_like_a_roles_permissions() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let (admin, sales, _) = tenant_with_a_lead(&db, &app, "keys-db").await;
    let (key_id, _) = make_key(
        &app,
        &admin,
        json!({"name": "reader", "scopes": ["leads:read"]}),
    )
    .await;
    let key = bizos_tests::caller(admin.tenant_id, key_id, "integration");

    // What the key's principal may do is its scopes' permissions, whatever
    // role_permissions says about its role.
    sqlx::query("insert into role_permissions (tenant_id, app_role, permission) values ($1, 'integration', 'lead.create')")
        .bind(admin.tenant_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let mut tx = db.as_user(&key).await;
    let (read_all, create): (bool, bool) =
        sqlx::query_as("select has_permission('crm.read_all'), has_permission('lead.create')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!((read_all, create), (true, false));
    let leads: i64 = sqlx::query_scalar("select count(*) from leads")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(leads, 1, "the key reads the salesperson's lead");
    let err = sqlx::query(
        "select crm_create_lead_bundle('{\"channel\": \"website\", \"company_name\": \"PT X\"}')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501", "{err}");
    drop(tx);

    // Only the BFF's claim of a verified key makes a principal of one: a
    // person's token naming the key's id is refused, and so is a person
    // claiming to be a key (the BFF also drops such a claim from tokens).
    let mut as_person = key.clone();
    as_person
        .claims
        .as_object_mut()
        .unwrap()
        .remove("principal");
    let err = db.try_as_user(&as_person).await.unwrap_err();
    assert_eq!(err.to_string(), "this user has no profile in this tenant");
    let mut posing = sales.clone();
    posing.claims["principal"] = json!("api_key");
    assert!(db.try_as_user(&posing).await.is_err());
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": key_id, "tenant_id": admin.tenant_id, "principal": "api_key",
                "exp": chrono::Utc::now().timestamp() + 600}),
        &jsonwebtoken::EncodingKey::from_secret(bizos_tests::TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let res = app
        .http
        .get(app.url("/api/v1/leads"))
        .bearer_auth(forged)
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(res).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("no_profile")),
        "{body}"
    );

    // Nobody turns a person into a key, or a key into a person.
    let mut tx = db.as_user(&admin).await;
    for (sql, user) in [
        (
            "update profiles set app_role = 'integration' where user_id = $1",
            sales.user_id,
        ),
        (
            "update profiles set app_role = 'super_admin' where user_id = $1",
            key_id,
        ),
    ] {
        let err = sqlx::query(sql)
            .bind(user)
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(code(&err), "42501", "{sql}: {err}");
        tx = db.as_user(&admin).await;
    }
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused_on_the_next_request() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let (admin, _, _) = tenant_with_a_lead(&db, &app, "keys-revoke").await;
    let (id, secret) = make_key(
        &app,
        &admin,
        json!({"name": "sync", "scopes": ["leads:read"]}),
    )
    .await;
    assert_eq!(get_with_key(&app, &secret, "/api/v1/leads").await.0, 200);

    let (status, revoked) = app
        .post_json(
            &admin,
            &format!("/api/api-keys/{id}/revoke"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (200, Some("revoked")),
        "{revoked}"
    );
    let (status, body) = get_with_key(&app, &secret, "/api/v1/leads").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{body}"
    );

    // A key that expires: works until then, refused after. (Its times are
    // moved back as the owner, with the timestamp trigger off, which keeps
    // created_at; expires_at must stay after created_at.)
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (id, secret) = make_key(
        &app,
        &admin,
        json!({"name": "trial", "scopes": ["leads:read"], "expires_at": expires}),
    )
    .await;
    assert_eq!(get_with_key(&app, &secret, "/api/v1/leads").await.0, 200);
    sqlx::raw_sql(&format!(
        "begin;
         alter table api_keys disable trigger api_keys_stamp_timestamps;
         update api_keys set created_at = now() - interval '2 days', expires_at = now() - interval '1 second'
          where key_id = '{id}';
         alter table api_keys enable trigger api_keys_stamp_timestamps;
         commit;"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, body) = get_with_key(&app, &secret, "/api/v1/leads").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let (_, list) = app.get_json(&admin, "/api/api-keys").await;
    let statuses: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["revoked", "expired"], "{list}");

    // An unknown key.
    let (status, _) = get_with_key(
        &app,
        "bz_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/leads",
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_allowed_ips_are_checked_against_the_client_address() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let (admin, _, _) = tenant_with_a_lead(&db, &app, "keys-ip").await;
    let (_, elsewhere) = make_key(
        &app,
        &admin,
        json!({"name": "office", "scopes": ["leads:read"], "allowed_ips": ["203.0.113.0/24"]}),
    )
    .await;
    let (_, here) = make_key(
        &app,
        &admin,
        json!({"name": "local", "scopes": ["leads:read"], "allowed_ips": ["192.0.2.1", "127.0.0.1"]}),
    )
    .await;
    let (status, body) = get_with_key(&app, &elsewhere, "/api/v1/leads").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("api_key_ip_not_allowed")),
        "{body}"
    );
    assert_eq!(get_with_key(&app, &here, "/api/v1/leads").await.0, 200);
    // A client's own X-Forwarded-For is not believed without trusted proxies.
    let res = app
        .http
        .get(app.url("/api/v1/leads"))
        .bearer_auth(&elsewhere)
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Behind a trusted proxy (here: loopback) the forwarded address counts.
    let proxied = spawn_app_with(&db, &[("BIZOS_TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    for (forwarded, want) in [("203.0.113.5", 200), ("198.51.100.5", 403)] {
        let res = proxied
            .http
            .get(proxied.url("/api/v1/leads"))
            .bearer_auth(&elsewhere)
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), want, "from {forwarded}");
    }
}

#[tokio::test]
async fn keys_are_made_by_key_managers_from_valid_input_and_stored_as_hashes() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let (admin, sales, _) = tenant_with_a_lead(&db, &app, "keys-input").await;
    let director = db.create_user(admin.tenant_id, "director").await;

    for who in [&sales, &director] {
        let (status, body) = app
            .post_json(
                who,
                "/api/api-keys",
                &json!({"name": "x", "scopes": ["leads:read"]}),
                None,
            )
            .await;
        assert_eq!(status, 403, "{body}");
        let (status, _) = app.get_json(who, "/api/api-keys").await;
        assert_eq!(status, 403);
    }

    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (body, field) in [
        (json!({"scopes": ["leads:read"]}), "name"),
        (json!({"name": " ", "scopes": ["leads:read"]}), "name"),
        (json!({"name": "x"}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": ["leads:admin"]}), "scopes[0]"),
        (
            json!({"name": "x", "scopes": ["leads:read"], "expires_at": past}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["leads:read"], "expires_at": "soon"}),
            "expires_at",
        ),
        (
            json!({"name": "x", "scopes": ["leads:read"], "allowed_ips": ["10.0.0.1/8"]}),
            "allowed_ips[0]",
        ),
        (
            json!({"name": "x", "scopes": ["leads:read"], "allowed_ips": ["::1", "intranet"]}),
            "allowed_ips[1]",
        ),
        (
            json!({"name": "x", "scopes": ["leads:read"], "allowed_ips": []}),
            "allowed_ips",
        ),
        (
            json!({"name": "x", "scopes": ["leads:read"], "secret": "mine"}),
            "secret",
        ),
    ] {
        let (status, err) = app.post_json(&admin, "/api/api-keys", &body, None).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    let keys: i64 = sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(keys, 0, "nothing half-written");

    // The answer with the secret may not be cached.
    let res = app
        .request_as(&admin, reqwest::Method::POST, "/api/api-keys", None)
        .json(&json!({"name": "cache check", "scopes": ["leads:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let made: Value = res.json().await.unwrap();
    assert!(made["secret"].as_str().is_some(), "{made}");

    // A replayed creation answers the key without its secret.
    let body = json!({"name": "erp", "scopes": ["invoices:read", "leads:read", "leads:read"]});
    let (status, first) = app
        .post_json(&admin, "/api/api-keys", &body, Some("key-create-1"))
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["scopes"], json!(["leads:read", "invoices:read"]));
    let secret = first["secret"].as_str().unwrap().to_owned();
    let (status, replay) = app
        .post_json(&admin, "/api/api-keys", &body, Some("key-create-1"))
        .await;
    assert_eq!(status, 201);
    assert_eq!(replay["key_id"], first["key_id"]);
    assert!(replay.get("secret").is_none(), "{replay}");

    // The secret is nowhere in the database: not in any table of any
    // schema (the idempotency store and the audit log included); its
    // SHA-256 is.
    let tables: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname) from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t == "public.idempotency_keys"),
        "{tables:?}"
    );
    let needle = &secret[8..];
    for table in &tables {
        let found: bool = sqlx::query_scalar(&format!(
            "select exists (select 1 from {table} t where strpos(t::text, $1) > 0)"
        ))
        .bind(needle)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert!(!found, "the secret is in {table}");
    }
    let hashed: bool = sqlx::query_scalar("select exists (select 1 from api_key_lookup where secret_hash = sha256(convert_to($1, 'UTF8')))")
        .bind(&secret)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(hashed);

    // The list shows keys without secrets.
    let (status, list) = app.get_json(&admin, "/api/api-keys").await;
    assert_eq!(status, 200);
    assert!(!list.to_string().contains(needle), "{list}");
    assert_eq!(list["items"][0]["display_prefix"], json!(&secret[..16]));
}
