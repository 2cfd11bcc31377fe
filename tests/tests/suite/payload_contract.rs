//! One payload contract for every RPC. Every function of the
//! business schema that takes a `payload jsonb` and answers JSON (found in
//! pg_proc, so a new RPC cannot be left out) refuses an unknown key naming
//! it, and refuses a wrong JSON type on each of its fields — the fields as
//! the function itself lists them, nested ones too (`rfq.origin`) — with
//! P0001 naming that field; the BFF answers 422 with `field`.

use bizos_tests::{code, field, spawn_app, TestDb};
use serde_json::{json, Value};

struct Rpc {
    signature: String,
    call: String,
}

/// (SQLSTATE, COLUMN, message) of calling `rpc` with `payload`, or None when
/// the call succeeded (rolled back either way).
async fn probe(
    db: &TestDb,
    who: &bizos_bff::auth::Caller,
    rpc: &Rpc,
    payload: &Value,
) -> Option<(String, Option<String>, String)> {
    let mut tx = db.as_user(who).await;
    let res = sqlx::query_scalar::<_, Value>(&rpc.call)
        .bind(payload)
        .fetch_one(&mut *tx)
        .await;
    tx.rollback().await.ok();
    match res {
        Ok(_) => None,
        Err(e) => Some((
            code(&e),
            field(&e),
            e.as_database_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_default(),
        )),
    }
}

/// The fields an "unknown field (allowed: a, b)" message lists.
fn allowed(message: &str) -> Vec<String> {
    let start = message
        .find("(allowed: ")
        .unwrap_or_else(|| panic!("no allowed list in {message:?}"))
        + "(allowed: ".len();
    let end = message.rfind(')').expect("closing parenthesis");
    message[start..end].split(", ").map(str::to_owned).collect()
}

/// {"a": {"b": value}} for the path "a.b".
fn nested(path: &str, value: Value) -> Value {
    path.rsplit('.')
        .fold(value, |inner, key| json!({ key: inner }))
}

#[tokio::test]
async fn every_payload_rpc_refuses_unknown_keys_and_wrong_types_naming_the_field() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;

    let rows: Vec<(String, String, Vec<String>, Vec<String>)> = sqlx::query_as(
        "select p.proname::text, p.oid::regprocedure::text,
                array(select format_type(t, null) from unnest(p.proargtypes::oid[]) t),
                p.proargnames::text[]
           from pg_proc p
          where p.pronamespace = (select pronamespace from pg_proc
                                   where oid = 'crm_create_lead_bundle(jsonb)'::regprocedure)
            and p.prorettype = 'jsonb'::regtype
            and p.proargnames @> array['payload']
            and has_function_privilege('bizos_authenticated', p.oid, 'execute')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut rpcs = Vec::new();
    for (name, signature, types, names) in rows {
        let args: Vec<String> = types
            .iter()
            .zip(&names)
            .map(|(t, n)| match (n.as_str(), t.as_str()) {
                ("payload", "jsonb") => "$1".to_owned(),
                (_, "uuid") => "gen_random_uuid()".to_owned(),
                (_, t) => format!("null::{t}"),
            })
            .collect();
        rpcs.push(Rpc {
            call: format!("select {name}({})", args.join(", ")),
            signature,
        });
    }
    let names: Vec<&str> = rpcs.iter().map(|r| r.signature.as_str()).collect();
    for known in [
        "crm_create_lead_bundle(jsonb)",
        "lead_update(uuid,jsonb)",
        "ticket_create(jsonb)",
        "ticket_update(uuid,jsonb)",
        "invoice_create(jsonb)",
        "payment_record(jsonb)",
        "kpi_target_create(jsonb)",
        "kpi_entry_create(jsonb)",
        "object_create(jsonb)",
        "import_create(jsonb)",
        "prospect_move(uuid,jsonb)",
        "sales_activity_create(jsonb)",
    ] {
        assert!(names.contains(&known), "{known} not among {names:?}");
    }

    let mut probes = 0;
    for rpc in &rpcs {
        // An unknown key, named; the message lists the fields.
        let got = probe(&db, &admin, rpc, &json!({"zz_unknown": 1})).await;
        let (state, column, message) =
            got.unwrap_or_else(|| panic!("{}: an unknown key was accepted", rpc.signature));
        assert_eq!(
            (state.as_str(), column.as_deref()),
            ("P0001", Some("zz_unknown")),
            "{}: {message}",
            rpc.signature
        );
        let mut fields = allowed(&message);
        assert!(!fields.is_empty(), "{}", rpc.signature);
        // Each field (and each nested field) with a wrong JSON type.
        while let Some(f) = fields.pop() {
            for wrong in [json!({"zz": 1}), json!([{"zz": 1}])] {
                let payload = nested(&f, wrong.clone());
                let got = probe(&db, &admin, rpc, &payload).await;
                let (state, column, message) =
                    got.unwrap_or_else(|| panic!("{}: {f} = {wrong} was accepted", rpc.signature));
                let column = column.unwrap_or_default();
                assert_eq!(
                    state, "P0001",
                    "{}: {f} = {wrong}: {message}",
                    rpc.signature
                );
                assert!(
                    column == f
                        || column.starts_with(&format!("{f}["))
                        || column == format!("{f}.zz"),
                    "{}: {f} = {wrong} named {column:?}: {message}",
                    rpc.signature
                );
                if column == format!("{f}.zz") {
                    // A nested object: its own fields are probed too.
                    fields.extend(allowed(&message));
                }
                probes += 1;
            }
        }
    }
    assert!(probes >= 100, "{probes} probes");

    // Through the BFF: 422 with the field, nested fields by their path.
    let app = spawn_app(&db).await;
    for (body, want) in [
        (
            json!({"channel": "website", "company_name": {"x": 1}}),
            "company_name",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "colour": "red"}),
            "colour",
        ),
        (
            json!({"channel": "website", "company_name": "PT A",
                   "rfq": {"origin": 1, "destination": "B", "dept_target": "OPS"}}),
            "rfq.origin",
        ),
        (
            json!({"channel": "website", "company_name": "PT A",
                   "rfq": {"origin": "A", "destination": "B", "dept_target": "OPS", "size": 2}}),
            "rfq.size",
        ),
    ] {
        let (status, err) = app.post_json(&admin, "/api/leads", &body, None).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(want)),
            "{err}"
        );
    }
    let n: i64 = sqlx::query_scalar("select count(*) from leads")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing half-written");
}
