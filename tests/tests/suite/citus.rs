//! bizos on Citus, against a real coordinator and two workers
//! (`scripts/dev test` starts them): the schema as `bizos db bootstrap` and
//! `bizos migrate` lay it out there, tenant creation, and tenant isolation
//! on the shards.

mod digest;
mod moves;
mod numbers;
mod reference_keys;

use bizos_bff::auth::Caller;
use bizos_tests::caller;
use bizos_tests::citus_cluster::{
    bootstrap_again, node_admin_pools, own_database, pool_as, pool_in, spawn_app, spawn_app_in,
    url_for,
};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// The global tables that have a tenant_id column but are still
/// cross-tenant catalogues (sql/citus/distribute.sql).
const GLOBAL_WITH_TENANT_ID: [&str; 3] = ["tenants", "api_key_lookup", "analytics_grants"];

#[tokio::test]
async fn tenant_tables_are_distributed_by_tenant_id_in_one_group_and_catalogues_are_references() {
    let owner = pool_as("bizos_owner").await;
    let rows = sqlx::query(
        "select c.relname::text as name,
                exists (select 1 from pg_attribute a
                         where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as tenant_column,
                d.partmethod::text as method,
                case when d.partmethod = 'h' then column_to_column_name(d.logicalrelid, d.partkey) end as column,
                d.colocationid as colocation
           from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
           left join pg_dist_partition d on d.logicalrelid = c.oid
          where n.nspname = 'public' and c.relkind in ('r', 'p')
          order by 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(rows.len() > 90, "the schema's tables: {}", rows.len());

    let mut groups = std::collections::BTreeSet::new();
    let (mut distributed, mut references) = (0, 0);
    let mut own_group = None;
    for r in &rows {
        let name: String = r.get("name");
        let method: Option<String> = r.get("method");
        if name == "refinery_schema_history" {
            assert_eq!(method, None, "refinery's history stays on the coordinator");
        } else if r.get::<bool, _>("tenant_column")
            && !GLOBAL_WITH_TENANT_ID.contains(&name.as_str())
        {
            assert_eq!(method.as_deref(), Some("h"), "{name} is distributed");
            assert_eq!(
                r.get::<Option<String>, _>("column").as_deref(),
                Some("tenant_id"),
                "{name}"
            );
            if name == "idempotency_keys" {
                // A group of its own (distribute.sql says why).
                own_group = Some(r.get::<i32, _>("colocation"));
            } else {
                groups.insert(r.get::<i32, _>("colocation"));
            }
            distributed += 1;
        } else {
            assert_eq!(method.as_deref(), Some("n"), "{name} is a reference table");
            references += 1;
        }
    }
    assert!(
        distributed > 50 && references > 30,
        "{distributed} distributed, {references} references"
    );

    // The extension's catalogues: the lifecycle rules and number kinds
    // everywhere, the per-tenant number state with the tenant's rows.
    let extension: Vec<(String, String, i32)> = sqlx::query_as(
        "select c.relname::text, d.partmethod::text, d.colocationid
           from pg_dist_partition d join pg_class c on c.oid = d.logicalrelid
          where c.relnamespace = 'bizos'::regnamespace order by 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    let method = |t: &str| extension.iter().find(|e| e.0 == t).map(|e| e.1.clone());
    assert_eq!(method("transitions").as_deref(), Some("n"), "{extension:?}");
    assert_eq!(method("id_kinds").as_deref(), Some("n"), "{extension:?}");
    for t in ["id_sequences", "id_counters"] {
        assert_eq!(method(t).as_deref(), Some("h"), "{extension:?}");
        groups.insert(extension.iter().find(|e| e.0 == t).unwrap().2);
    }
    assert_eq!(groups.len(), 1, "one co-location group: {groups:?}");
    let own_group = own_group.expect("idempotency_keys is distributed");
    assert!(
        !groups.contains(&own_group),
        "idempotency_keys in {own_group}, the tenant tables in {groups:?}"
    );

    // Citus refuses sub-selects in the policies of its tables, and 13.2.2
    // creates a restrictive policy on the shards as a permissive one: the
    // schema has neither.
    let odd: Vec<String> = sqlx::query_scalar(
        "select tablename || ': ' || policyname from pg_policies
          where schemaname = 'public'
            and (permissive = 'RESTRICTIVE' or coalesce(qual, '') || coalesce(with_check, '') ~* '\\mselect\\M')",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(odd.is_empty(), "{odd:#?}");

    // Every shard carries its table's policies.
    for table in [
        "leads",
        "tickets",
        "ticket_messages",
        "objects",
        "kb_chunks",
    ] {
        let on_table: i64 =
            sqlx::query_scalar("select count(*) from pg_policy where polrelid = $1::regclass")
                .bind(table)
                .fetch_one(&owner)
                .await
                .unwrap();
        assert!(on_table > 0, "{table} has policies");
        let on_shards: Vec<String> = sqlx::query_scalar(
            "select result from run_command_on_shards($1,
               $$select count(*) from pg_policy where polrelid = '%s'::regclass$$)",
        )
        .bind(table)
        .fetch_all(&owner)
        .await
        .unwrap();
        assert!(!on_shards.is_empty(), "{table} has shards");
        assert!(
            on_shards.iter().all(|n| *n == on_table.to_string()),
            "{table}: {on_table} policies, its shards {on_shards:?}"
        );
    }
}

#[tokio::test]
async fn bootstrapping_and_migrating_again_apply_nothing_and_the_api_files_apply_again_on_distributed_tables(
) {
    // Its own database: the api files' DDL locks every shard.
    let database = own_database("again").await;
    let url = url_for("bizos_owner", &database);
    let owner = pool_in("bizos_owner", &database).await;
    let placed = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>("select count(*) from pg_dist_partition")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = placed(owner.clone()).await;

    // A DBA brings the extension up to date with bootstrap: the workers,
    // whose database settings are set by now and which refuse ALTER
    // DATABASE once they hold Citus metadata, are left as they are.
    bootstrap_again(&database)
        .await
        .expect("a second bootstrap on the Citus coordinator");

    let again = bizos_sql::migrate_report(&url, None)
        .await
        .expect("a second run");
    assert!(again.is_empty(), "{again:?}");

    // The api files are applied again when their history differs: on a
    // distributed schema they go one statement at a time, the policies of
    // kb.sql in their Citus form.
    sqlx::query("delete from sql_api.applied where file = 'kb.sql'")
        .execute(&owner)
        .await
        .unwrap();
    let reapplied = bizos_sql::migrate_report(&url, None)
        .await
        .expect("api files again");
    assert!(reapplied.migrations.is_empty());
    assert_eq!(
        reapplied.api.len(),
        bizos_sql::API_FILES.len(),
        "{reapplied:?}"
    );
    assert_eq!(placed(owner.clone()).await, before);
    let kb_policies: Vec<String> = sqlx::query_scalar(
        "select qual from pg_policies where tablename in ('kb_documents', 'kb_chunks', 'kb_terms', 'kb_stats')
            and policyname like 'readers%'",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert_eq!(kb_policies.len(), 4);
    assert!(
        kb_policies
            .iter()
            .all(|q| q.contains("kb_readable(") && !q.to_lowercase().contains("select")),
        "{kb_policies:#?}"
    );
}

/// The port of the worker holding `tenant`'s rows.
async fn worker_of(owner: &PgPool, tenant: Uuid) -> i32 {
    sqlx::query_scalar(
        "select n.nodeport from pg_dist_placement p join pg_dist_node n on n.groupid = p.groupid
          where p.shardid = get_shard_id_for_distribution_column('role_permissions', $1)",
    )
    .bind(tenant)
    .fetch_one(owner)
    .await
    .unwrap()
}

/// Two new tenants (made with tenant_create()) whose rows live on
/// different workers.
async fn two_tenants_on_two_workers(owner: &PgPool, prefix: &str) -> (Uuid, Uuid) {
    let first: Uuid = sqlx::query_scalar("select tenant_create($1, 'Citus A')")
        .bind(format!("{prefix}-a"))
        .fetch_one(owner)
        .await
        .unwrap();
    for i in 0..32 {
        let t: Uuid =
            sqlx::query_scalar("select tenant_create($1, 'Citus B', 'Asia/Makassar', 'en')")
                .bind(format!("{prefix}-b{i}"))
                .fetch_one(owner)
                .await
                .unwrap();
        if worker_of(owner, t).await != worker_of(owner, first).await {
            return (first, t);
        }
    }
    panic!("no tenant on the other worker within 32 tries");
}

#[tokio::test]
async fn tenants_get_their_defaults_and_a_request_sees_only_its_tenants_rows_on_the_workers() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus").await;

    // Each count on its own: Citus plans a statement that mixes a
    // distributed table with the defaults' functions as a query on a shard.
    let scalar = |sql: String| {
        let owner = owner.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .fetch_one(&owner)
                .await
                .unwrap()
        }
    };
    let defaults = [
        (
            "role_permissions",
            scalar("select count(*) from default_role_permissions()".into()).await,
        ),
        (
            "sla_policies",
            scalar("select count(*) from default_sla_policies()".into()).await,
        ),
        (
            "kpi_metric_definitions",
            scalar("select count(*) from default_kpi_metric_definitions()".into()).await,
        ),
        (
            "sop_rules",
            scalar("select count(*) from sop_rule_kinds".into()).await,
        ),
        ("schedules", 2),
    ];
    for tenant in [first, second] {
        for (table, expected) in defaults {
            assert!(expected > 0, "{table}");
            let got = scalar(format!(
                "select count(*) from {table} where tenant_id = '{tenant}'"
            ))
            .await;
            assert_eq!(got, expected, "{table} of {tenant}");
        }
    }
    let zone: String =
        sqlx::query_scalar("select time_zone || ' ' || locale from tenants where tenant_id = $1")
            .bind(second)
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(zone, "Asia/Makassar en");

    // A request of each tenant: claims from the BFF's statements, then
    // authenticate_request(), whose SET LOCAL carries them to the workers.
    let app = pool_as("bizos_app").await;
    for (tenant, other) in [(first, second), (second, first)] {
        let admin = user(&owner, tenant, "super_admin").await;
        let (mut tx, role) = begin_request(&app, &admin).await;
        assert_eq!(role, "super_admin");
        for table in [
            "role_permissions",
            "sla_policies",
            "kpi_metric_definitions",
            "sop_rules",
            "schedules",
        ] {
            let (mine, others): (i64, i64) = sqlx::query_as(&format!(
                "select count(*) filter (where tenant_id = $1), count(*) filter (where tenant_id <> $1) from {table}"
            ))
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            assert!(
                mine > 0,
                "{table}: the tenant's own rows are visible on its worker"
            );
            assert_eq!(others, 0, "{table}: no row of another tenant");
        }
        let theirs: i64 =
            sqlx::query_scalar("select count(*) from role_permissions where tenant_id = $1")
                .bind(other)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        assert_eq!(theirs, 0, "asking for the other tenant's rows by key");
        tx.rollback().await.unwrap();
    }
}

/// A request transaction of `who`, opened with the BFF's first statement
/// (bff/src/db.rs, `begin_request!`): the role and claims, then
/// authenticate_request(), whose SET LOCAL carries the claims and the
/// caller's context to the workers. Also the app role it took from the
/// profile.
async fn begin_request(
    app: &PgPool,
    who: &Caller,
) -> (sqlx::Transaction<'static, sqlx::Postgres>, String) {
    let claims = serde_json::json!({"sub": who.user_id, "tenant_id": who.tenant_id}).to_string();
    let mut tx = app.begin().await.unwrap();
    let role: String = sqlx::query_scalar(
        "select authenticate_request()
           from (select set_config('role', 'bizos_authenticated', true),
                        set_config('request.jwt.claims', $1, true)) as request",
    )
    .bind(&claims)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    (tx, role)
}

/// A profile of `role` in `tenant`, made as the owner.
async fn user(owner: &PgPool, tenant: Uuid, role: &str) -> Caller {
    let user = Uuid::new_v4();
    sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(tenant)
    .bind(user)
    .bind(format!("{}@example.test", user.simple()))
    .bind(format!("User {role}"))
    .bind(role)
    .execute(owner)
    .await
    .unwrap();
    caller(tenant, user, role)
}

/// The BFF's request transaction (BEGIN, its first statement with
/// authenticate_request(), the query, COMMIT) on Citus. Most routes do not
/// work there yet (docs/citus.md, "Not yet").
#[tokio::test]
async fn the_bff_serves_each_tenant_its_own_rows_from_its_worker() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus-bff").await;
    let app = spawn_app().await;
    for (tenant, other) in [(first, second), (second, first)] {
        let admin = user(&owner, tenant, "super_admin").await;
        let sales = user(&owner, tenant, "salesperson").await;

        let (status, me) = app.get_json(&admin, "/api/me").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["tenant_id"], serde_json::json!(tenant));
        assert_eq!(me["app_role"], "super_admin");

        // The salesperson's own profile, not the admin's: the policies of
        // profiles on the worker, under the request's claims.
        let (status, me) = app.get_json(&sales, "/api/me").await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["user_id"], serde_json::json!(sales.user_id));
        assert_eq!(me["app_role"], "salesperson");

        // A token naming a user of this tenant with the other tenant finds
        // no profile there.
        let stranger = caller(other, admin.user_id, "super_admin");
        let (status, body) = app.get_json(&stranger, "/api/me").await;
        assert_eq!(status, 403, "{body}");
    }
}

#[tokio::test]
async fn the_lead_bundle_runs_on_each_tenants_worker_with_numbers_of_its_own() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus-leads").await;
    let app = pool_as("bizos_app").await;
    for tenant in [first, second] {
        let manager = user(&owner, tenant, "marketing_manager").await;
        // Lead numbers carry the year of the tenant's today.
        let year = year_of(&owner, tenant).await;
        for (i, company) in ["PT Satu", "PT Dua"].iter().enumerate() {
            let (mut tx, _) = begin_request(&app, &manager).await;
            let lead: serde_json::Value = sqlx::query_scalar(
                "select crm_create_lead_bundle(jsonb_build_object('channel', 'website', 'company_name', $1::text,
                   'contact_name', 'Budi', 'contact_email', 'budi@' || $2::text || '.co.id'))",
            )
            .bind(company)
            .bind(format!("{}-{i}", tenant.simple()))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            // Numbers per tenant, from 1 on each worker.
            assert_eq!(
                lead["lead_no"],
                format!("LEAD-{year}-{:06}", i + 1),
                "{lead}"
            );
            assert_eq!(lead["customer_created"], true, "{lead}");
            // Citus refuses a later statement of this transaction on the
            // placements the bundle's SECURITY DEFINER parts wrote as the
            // owner; the read comes in the next request.
            tx.commit().await.unwrap();
            let (mut tx, _) = begin_request(&app, &manager).await;
            let (mine, others): (i64, i64) = sqlx::query_as(
                "select count(*) filter (where tenant_id = $1), count(*) filter (where tenant_id <> $1) from leads",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            assert_eq!((mine, others), (i as i64 + 1, 0), "the tenant's leads only");
            tx.commit().await.unwrap();
        }
    }
}

/// The product's core writes and reads through the BFF on Citus, for two
/// tenants on two workers: the lead bundle, a ticket, an invoice and its
/// payment, the AR aging and DSO that agree on what is outstanding, and
/// the KPI actuals, each numbered per tenant, and each list (the SLA
/// status's too) the tenant's own.
#[tokio::test]
async fn leads_tickets_invoices_payments_and_kpi_actuals_run_through_the_bff() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus-core").await;
    let app = spawn_app().await;
    for tenant in [first, second] {
        let admin = user(&owner, tenant, "super_admin").await;
        let year = year_of(&owner, tenant).await;
        let today: chrono::NaiveDate = sqlx::query_scalar("select tenant_today($1)")
            .bind(tenant)
            .fetch_one(&owner)
            .await
            .unwrap();

        let (status, lead) = app
            .post_json(
                &admin,
                "/api/leads",
                &serde_json::json!({"channel": "website", "company_name": "PT Citus Core",
                                    "contact_name": "Budi", "contact_email": format!("budi@{}.co.id", tenant.simple())}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{lead}");
        assert_eq!(lead["lead_no"], format!("LEAD-{year}-000001"), "{lead}");
        let customer = lead["customer_id"].as_str().unwrap().to_owned();

        let (status, ticket) = app
            .post_json(
                &admin,
                "/api/tickets",
                &serde_json::json!({"ticket_type": "complaint", "subject": "Late delivery", "dept_target": "FIN",
                                    "related_customer_id": customer}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{ticket}");
        assert_eq!(
            ticket["ticket_no"],
            format!("TCK-{year}-000001"),
            "{ticket}"
        );

        let (status, invoice) = app
            .post_json(
                &admin,
                "/api/invoices",
                &serde_json::json!({"customer_id": customer, "issue_date": today,
                                    "due_date": today + chrono::Days::new(30),
                                    "subtotal": 1_000_000, "tax": 110_000}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{invoice}");
        assert_eq!(
            invoice["invoice_no"],
            format!("INV-{year}-000001"),
            "{invoice}"
        );
        let (status, payment) = app
            .post_json(
                &admin,
                "/api/payments",
                &serde_json::json!({"invoice_id": invoice["invoice_id"], "amount": 400_000, "reference": "TRX-1"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{payment}");
        assert_eq!(
            payment["payment_no"],
            format!("PAY-{year}-000001"),
            "{payment}"
        );
        assert_eq!(
            payment["outstanding"].as_f64(),
            Some(710_000.0),
            "{payment}"
        );

        // The AR reports, routed to the tenant's worker: the aging's total
        // is today's AR in the DSO.
        let (status, aging) = app.get_json(&admin, "/api/ar/aging").await;
        assert_eq!(status, 200, "{aging}");
        let rows = aging["items"].as_array().expect("items");
        assert_eq!(rows.len(), 2, "a customer's row and the total: {aging}");
        let total = rows
            .iter()
            .find(|r| r["is_total"] == true)
            .expect("total row");
        assert_eq!(total["outstanding"].as_f64(), Some(710_000.0), "{aging}");
        assert_eq!(total["current"].as_f64(), Some(710_000.0), "{aging}");
        let (status, dso) = app.get_json(&admin, "/api/ar/dso").await;
        assert_eq!(status, 200, "{dso}");
        let days = dso["items"].as_array().expect("items");
        assert_eq!(days.len(), 90, "{dso}");
        let last = days.last().unwrap();
        assert_eq!(last["day"], today.to_string(), "{dso}");
        assert_eq!(last["ar_outstanding"], total["outstanding"], "{dso}");
        assert_eq!(
            last["credit_sales_30d"].as_f64(),
            Some(1_110_000.0),
            "{dso}"
        );

        let (status, actuals) = app
            .get_json(
                &admin,
                &format!("/api/kpi/actuals?metric_key=revenue&from={today}&to={today}"),
            )
            .await;
        assert_eq!(status, 200, "{actuals}");
        assert_eq!(
            actuals["items"][0]["value"].as_f64(),
            Some(1_000_000.0),
            "{actuals}"
        );

        // The lists hold this tenant's rows only.
        for (path, key) in [
            ("/api/leads", "lead_id"),
            ("/api/tickets", "ticket_id"),
            ("/api/invoices", "invoice_id"),
            ("/api/sla/tickets", "ticket_id"),
        ] {
            let (status, list) = app.get_json(&admin, path).await;
            assert_eq!(status, 200, "{path}: {list}");
            let items = list["items"].as_array().expect("items");
            assert_eq!(items.len(), 1, "{path}: {list}");
            assert!(items[0][key].is_string(), "{path}: {list}");
        }
        // The invoice list says what the aging says of the invoice.
        let (status, list) = app.get_json(&admin, "/api/invoices").await;
        assert_eq!(status, 200, "{list}");
        let invoice = &list["items"][0];
        assert_eq!(invoice["outstanding"].as_f64(), Some(710_000.0), "{list}");
        assert_eq!(invoice["aging_bucket"], "current", "{list}");
        assert_eq!(invoice["is_overdue"], false, "{list}");
    }
}

/// `Idempotency-Key` on Citus, for a route whose RPC writes as its owner
/// (the lead bundle, SECURITY DEFINER) and one whose RPC writes as the
/// caller (a ticket): the key is stored with the effect, a replay returns
/// the first response without a second effect, and the key with another
/// request is 422. (With the keys' shards in the tenant tables' group, the
/// lead's key could not be stored: Citus refuses a transaction that
/// modifies co-located shards as two users.)
#[tokio::test]
async fn idempotency_keys_replay_writes_of_the_owner_and_of_the_caller() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus-idem").await;
    let app = spawn_app().await;
    for tenant in [first, second] {
        let admin = user(&owner, tenant, "super_admin").await;
        let lead = serde_json::json!({"channel": "website", "company_name": "PT Idempoten",
                                      "contact_name": "Sari", "contact_email": format!("sari@{}.co.id", tenant.simple())});
        let (status, created) = app
            .post_json(&admin, "/api/leads", &lead, Some("lead-1"))
            .await;
        assert_eq!(status, 201, "{created}");
        let (status, replayed) = app
            .post_json(&admin, "/api/leads", &lead, Some("lead-1"))
            .await;
        assert_eq!(status, 201, "{replayed}");
        assert_eq!(replayed, created);
        let (status, other) = app
            .post_json(
                &admin,
                "/api/leads",
                &serde_json::json!({"channel": "website", "company_name": "PT Lain"}),
                Some("lead-1"),
            )
            .await;
        assert_eq!(status, 422, "{other}");
        assert_eq!(other["error"]["field"], "Idempotency-Key", "{other}");

        let ticket = serde_json::json!({"ticket_type": "complaint", "subject": "Twice?", "dept_target": "FIN",
                                        "related_customer_id": created["customer_id"]});
        let (status, opened) = app
            .post_json(&admin, "/api/tickets", &ticket, Some("ticket-1"))
            .await;
        assert_eq!(status, 201, "{opened}");
        let (status, again) = app
            .post_json(&admin, "/api/tickets", &ticket, Some("ticket-1"))
            .await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(again, opened);

        for (path, key) in [("/api/leads", "lead_id"), ("/api/tickets", "ticket_id")] {
            let (status, list) = app.get_json(&admin, path).await;
            assert_eq!(status, 200, "{path}: {list}");
            let items = list["items"].as_array().expect("items");
            assert_eq!(items.len(), 1, "one effect per key: {path}: {list}");
            let made = if key == "lead_id" { &created } else { &opened };
            assert_eq!(items[0][key], made[key], "{path}: {list}");
        }
    }
    // The worker's purge of the keys: one job for every active tenant in
    // one insert of rows of many shards, none again for the same period
    // (other tests' tenants made meanwhile get theirs).
    let period = format!("idempotency.purge:citus-{}", Uuid::new_v4().simple());
    let enqueue = "select job_enqueue_every_tenant('idempotency.purge', '{}', $1)";
    let first_time: i32 = sqlx::query_scalar(enqueue)
        .bind(&period)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert!(first_time >= 2, "{first_time} purges enqueued");
    sqlx::query(enqueue)
        .bind(&period)
        .execute(&owner)
        .await
        .unwrap();
    let queued: i64 = sqlx::query_scalar(
        "select count(*) from jobs where dedup_key = $1 and tenant_id = any($2)",
    )
    .bind(&period)
    .bind(vec![first, second])
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(queued, 2);
}

/// The upload sweep on Citus, for two tenants on two workers: it claims a
/// tenant's dead intents (their owner lock released) and never the upload
/// of a live process, whose lock is held on the coordinator while the
/// intents live on the workers; and it enqueues one sweep per tenant with
/// dead intents, none beside a waiting one.
#[tokio::test]
async fn the_upload_sweep_tells_live_uploads_from_dead_ones() {
    let owner = pool_as("bizos_owner").await;
    let (first, second) = two_tenants_on_two_workers(&owner, "citus-sweep").await;
    // A live upload's process holds its owner lock on the coordinator.
    let app_login = pool_as("bizos_app").await;
    let mut live = app_login.acquire().await.unwrap();
    let live_lock: i32 = 1_000_000 + (first.as_u128() % 1_000_000) as i32;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(bizos_bff::files::sweep::OWNER_LOCK_CLASS)
        .bind(live_lock)
        .fetch_one(&mut *live)
        .await
        .unwrap();
    assert!(locked);
    let mut intents = Vec::new();
    for (tenant, lock) in [
        (first, live_lock),
        (first, live_lock + 1),
        (second, live_lock + 2),
    ] {
        let who = user(&owner, tenant, "salesperson").await;
        let id: Uuid = sqlx::query_scalar(
            "insert into upload_intents (tenant_id, bucket, owner_lock, created_by)
             values ($1, 'media', $2, $3) returning object_id",
        )
        .bind(tenant)
        .bind(lock)
        .bind(who.user_id)
        .fetch_one(&owner)
        .await
        .unwrap();
        intents.push(id);
    }
    let (live_id, first_dead, second_dead) = (intents[0], intents[1], intents[2]);

    let worker = pool_as("bizos_worker").await;
    for (tenant, dead) in [(first, first_dead), (second, second_dead)] {
        let mut tx = worker.begin().await.unwrap();
        let claimed: Vec<Uuid> =
            sqlx::query_scalar("select object_id from upload_sweep_claim($1, 960, 100)")
                .bind(tenant)
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        assert_eq!(
            claimed,
            vec![dead],
            "the tenant's dead upload only (live: {live_id})"
        );
        tx.rollback().await.unwrap();
    }

    let sweeps = async || -> Vec<(Uuid, i64)> {
        sqlx::query_as(
            "select tenant_id, count(*) from jobs
              where tenant_id = any ($1) and kind = 'storage.sweep' and status = 'queued'
              group by tenant_id order by tenant_id",
        )
        .bind(vec![first, second])
        .fetch_all(&owner)
        .await
        .unwrap()
    };
    let mut expected = vec![(first, 1), (second, 1)];
    expected.sort();
    let enqueued: i32 = sqlx::query_scalar("select upload_sweep_enqueue(960)")
        .fetch_one(&app_login)
        .await
        .unwrap();
    assert!(enqueued >= 2, "{enqueued}");
    assert_eq!(sweeps().await, expected);
    sqlx::query_scalar::<_, i32>("select upload_sweep_enqueue(960)")
        .fetch_one(&app_login)
        .await
        .unwrap();
    assert_eq!(
        sweeps().await,
        expected,
        "no second sweep beside a waiting one"
    );
    drop(live);
}

/// Audit and business numbers on Citus: entries name the logical table and
/// the real actor, the chains verify, and when a tenant is split off into
/// shards of its own and moved to the other worker, its history, chains
/// and numbers move with it: the next number follows its last, and the
/// tenant already on that worker keeps numbering from its own.
#[tokio::test]
async fn audit_and_numbers_follow_a_tenant_moved_to_the_other_worker() {
    // Its own database: splitting and moving shards would fail the other
    // tests' transactions on the tenants that share the split shard.
    let database = own_database("move").await;
    let owner = pool_in("bizos_owner", &database).await;
    let superuser = pool_in("postgres", &database).await;
    let (moved, resident) = two_tenants_on_two_workers(&owner, "citus-move").await;
    let app = spawn_app_in(&database).await;
    let year = year_of(&owner, moved).await;
    let admin = user(&owner, moved, "super_admin").await;
    let lead_body = |n: usize| {
        serde_json::json!({"channel": "website", "company_name": format!("PT Pindah {n}"),
                           "contact_name": "Budi", "contact_email": format!("budi{n}@pindah.co.id")})
    };
    let (status, first) = app
        .post_json(&admin, "/api/leads", &lead_body(1), None)
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["lead_no"], format!("LEAD-{year}-000001"), "{first}");
    let lead = first["lead_id"].as_str().unwrap().to_owned();

    // The entry names the table, not its shard, and the request's user.
    let before = lead_history(&app, &admin, &lead).await;
    let entries = before["items"].as_array().expect("items");
    assert!(!entries.is_empty(), "the lead's entries: {before}");
    for e in entries {
        assert_eq!(e["table"], "leads", "{e}");
        assert_eq!(e["actor"], serde_json::json!(admin.user_id), "{e}");
    }
    chains_intact(&app, &admin).await;

    // Split the tenant into shards of its own and move them.
    let from = worker_of(&owner, moved).await;
    let to = worker_of(&owner, resident).await;
    assert_ne!(from, to);
    let shard: i64 = sqlx::query_scalar(
        "select isolate_tenant_to_new_shard('leads', $1, 'CASCADE', shard_transfer_mode => 'block_writes')",
    )
    .bind(moved)
    .fetch_one(&superuser)
    .await
    .unwrap();
    sqlx::query(
        "select citus_move_shard_placement($1, '127.0.0.1', $2, '127.0.0.1', $3, shard_transfer_mode => 'block_writes')",
    )
    .bind(shard)
    .bind(from)
    .bind(to)
    .execute(&superuser)
    .await
    .unwrap();
    assert_eq!(worker_of(&owner, moved).await, to, "the tenant moved");

    // Its numbers go on from its last one; its history and chains came along.
    let (status, second) = app
        .post_json(&admin, "/api/leads", &lead_body(2), None)
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["lead_no"], format!("LEAD-{year}-000002"), "{second}");
    let after = lead_history(&app, &admin, &lead).await;
    assert_eq!(after["items"], before["items"], "the first lead's history");
    chains_intact(&app, &admin).await;
    let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
        .bind(moved)
        .fetch_one(&superuser)
        .await
        .unwrap();
    assert_eq!(breaks, 0);

    // The tenant that was there all along numbers from its own counter.
    let other = user(&owner, resident, "super_admin").await;
    let (status, theirs) = app
        .post_json(&other, "/api/leads", &lead_body(3), None)
        .await;
    assert_eq!(status, 201, "{theirs}");
    assert_eq!(theirs["lead_no"], format!("LEAD-{year}-000001"), "{theirs}");
}

async fn lead_history(
    app: &bizos_tests::TestApp,
    caller: &Caller,
    lead: &str,
) -> serde_json::Value {
    let (status, h) = app
        .get_json(caller, &format!("/api/leads/{lead}/history"))
        .await;
    assert_eq!(status, 200, "{h}");
    h
}

async fn chains_intact(app: &bizos_tests::TestApp, caller: &Caller) {
    let (status, v) = app.get_json(caller, "/api/audit/verify").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["intact"], true, "{v}");
    assert!(!v["chains"].as_array().unwrap().is_empty(), "{v}");
}

/// Analysts and BI on Citus: the masked views of tables and reports show
/// the rows of the tenants they are granted, masked, from the workers; the
/// tables themselves stay closed to them.
#[tokio::test]
async fn analysts_and_bi_read_the_masked_views_of_their_granted_tenant() {
    let owner = pool_as("bizos_owner").await;
    let (granted, other) = two_tenants_on_two_workers(&owner, "citus-analytics").await;
    let app = spawn_app().await;
    let mut emails = Vec::new();
    for tenant in [granted, other] {
        let admin = user(&owner, tenant, "super_admin").await;
        let email = format!("sari.{}@contoh.co.id", tenant.simple());
        let (status, lead) = app
            .post_json(
                &admin,
                "/api/leads",
                &serde_json::json!({"channel": "website", "company_name": "PT Analitik",
                                    "contact_name": "Sari", "contact_email": email}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{lead}");
        let (status, ticket) = app
            .post_json(
                &admin,
                "/api/tickets",
                &serde_json::json!({"ticket_type": "complaint", "subject": "Analitik", "dept_target": "FIN"}),
                None,
            )
            .await;
        assert_eq!(status, 201, "{ticket}");
        emails.push(email);
    }
    // Only the one tenant (bootstrap grants these roles every tenant).
    sqlx::query("delete from analytics_grants where role_name in ('bizos_analyst', 'bizos_bi')")
        .execute(&owner)
        .await
        .unwrap();
    for role in ["bizos_analyst", "bizos_bi"] {
        sqlx::query(
            "insert into analytics_grants (role_name, tenant_id) values ($1, $2) on conflict do nothing",
        )
        .bind(role)
        .bind(granted)
        .execute(&owner)
        .await
        .unwrap();
    }
    for role in ["bizos_analyst", "bizos_bi"] {
        let reader = pool_as(role).await;
        let leads: Vec<(Uuid, Option<String>)> =
            sqlx::query_as("select tenant_id, contact_email from analytics.leads")
                .fetch_all(&reader)
                .await
                .unwrap();
        assert!(!leads.is_empty(), "{role} reads leads");
        assert!(
            leads.iter().all(|(t, _)| *t == granted),
            "{role}: {leads:?}"
        );
        let shown: Vec<String> = leads.iter().filter_map(|(_, e)| e.clone()).collect();
        assert!(!shown.is_empty(), "{role}: {leads:?}");
        for email in &emails {
            assert!(!shown.contains(email), "{role} sees {email} unmasked");
        }
        let tickets: Vec<Uuid> = sqlx::query_scalar("select tenant_id from analytics.v_sla_status")
            .fetch_all(&reader)
            .await
            .unwrap();
        assert!(!tickets.is_empty(), "{role} reads the SLA report");
        assert!(tickets.iter().all(|t| *t == granted), "{role}: {tickets:?}");
        let err = sqlx::query("select count(*) from public.leads")
            .fetch_one(&reader)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{role}: {err}"
        );
    }
}

/// A tenant moved to another time zone on Citus (tenant_set_time_zone):
/// its schedules keep their wall time, so their next runs move by the
/// zones' difference, and another tenant's stay.
#[tokio::test]
async fn a_new_time_zone_moves_the_tenants_schedules() {
    let owner = pool_as("bizos_owner").await;
    let (moved, other) = two_tenants_on_two_workers(&owner, "citus-tz").await;
    let next_runs = |tenant: Uuid| {
        let owner = owner.clone();
        async move {
            sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>(
                "select next_run_at from schedules where tenant_id = $1 order by schedule_id",
            )
            .bind(tenant)
            .fetch_all(&owner)
            .await
            .unwrap()
        }
    };
    let (before, others) = (next_runs(moved).await, next_runs(other).await);
    assert!(!before.is_empty(), "the seeded schedules");
    // Asia/Jakarta (UTC+7) to Asia/Tokyo (UTC+9): the same wall time comes
    // two hours earlier (or a day later, when that is already past).
    sqlx::query("select tenant_set_time_zone($1, 'Asia/Tokyo')")
        .bind(moved)
        .execute(&owner)
        .await
        .unwrap();
    let after = next_runs(moved).await;
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        let shift = (*b - *a).num_hours().rem_euclid(24);
        assert_eq!(shift, 2, "before {b}, after {a}");
    }
    assert_eq!(
        next_runs(other).await,
        others,
        "the other tenant's schedules"
    );
}

/// The LLM gateway's one-statement calls on Citus: the BFF sends
/// llm_begin and llm_finish as one implicit transaction each, with the
/// request's settings in a subquery (`as_caller!`), so no SET LOCAL reaches
/// the workers. Both are SECURITY DEFINER with the tenant as an argument
/// and need none: the reservation and its usage land on the tenant's worker.
#[tokio::test]
async fn the_llm_gateways_one_statement_calls_work_without_a_transaction_block() {
    let owner = pool_as("bizos_owner").await;
    let (tenant, _) = two_tenants_on_two_workers(&owner, "citus-llm").await;
    let admin = user(&owner, tenant, "super_admin").await;
    let app = pool_as("bizos_app").await;
    let claims = serde_json::json!({"sub": admin.user_id, "tenant_id": tenant}).to_string();
    let as_caller = |call: &str| {
        format!(
            "select {call} from (select authenticate_request()
               from (select set_config('role', 'bizos_authenticated', true),
                            set_config('request.jwt.claims', $1, true),
                            set_config('request.id', 'citus-llm', true),
                            set_config('request.traceparent', '', true)) as request offset 0) as authenticated"
        )
    };
    let begun: serde_json::Value = sqlx::query_scalar(&as_caller(
        "llm_begin($2, $3, 'chat', null, 10, 'citus-llm')",
    ))
    .bind(&claims)
    .bind(tenant)
    .bind(admin.user_id)
    .fetch_one(&app)
    .await
    .unwrap();
    let reservation: Uuid = begun["reservation_id"].as_str().unwrap().parse().unwrap();
    let finished: serde_json::Value =
        sqlx::query_scalar(&as_caller("llm_finish($2, $3, $4, null)"))
            .bind(&claims)
            .bind(tenant)
            .bind(reservation)
            .bind(
                serde_json::json!([{"provider": "standin", "model": "m", "outcome": "ok",
                                  "tokens_in": 5, "tokens_out": 7, "latency_ms": 10}]),
            )
            .fetch_one(&app)
            .await
            .unwrap();
    assert_eq!(
        finished["call_ids"].as_array().map(Vec::len),
        Some(1),
        "{finished}"
    );
    let calls: i64 = sqlx::query_scalar("select count(*) from llm_calls where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(calls, 1);
}

/// The year of the tenant's today: business numbers carry it.
async fn year_of(owner: &PgPool, tenant: Uuid) -> i32 {
    sqlx::query_scalar("select extract(year from tenant_today($1))::int")
        .bind(tenant)
        .fetch_one(owner)
        .await
        .unwrap()
}

/// Every query that runs inside a query on a shard (a policy's helper, a
/// view's function, a trigger) stays on its node, and the RPCs reach only
/// their tenant's shards. A worker that queried other nodes from inside the
/// coordinator's transaction crashed when that transaction ended in
/// two-phase commit (citusdata/citus#6424: the worker's connection state
/// outlives PREPARE TRANSACTION): the demo seed, which writes the reference
/// table `tenants` and a tenant's shards in one transaction, did so now and
/// then while `has_permission` sent a statement to all 32 shards. Citus's
/// statistic counters (on in the tests' cluster) count the multi-shard
/// queries each node runs.
#[tokio::test]
async fn the_demo_seed_runs_no_multi_shard_query_on_any_node() {
    let db = bizos_tests::TestDb::on_citus().await;
    let nodes = node_admin_pools().await;
    assert_eq!(nodes.len(), 3, "a coordinator and two workers");
    let counters = |pool: PgPool| {
        let name = db.name.clone();
        async move {
            sqlx::query_as::<_, (i64, i64)>(
                "select query_execution_single_shard, query_execution_multi_shard
                   from citus_stat_counters where name = $1",
            )
            .bind(name)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or((0, 0))
        }
    };
    for (node, pool) in &nodes {
        let on: String = sqlx::query_scalar("show citus.enable_stat_counters")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(
            on, "on",
            "{node}: citus.enable_stat_counters (scripts/lib/citus.sh)"
        );
        // Bootstrap and migration run multi-shard DDL: count from here.
        sqlx::query("select citus_stat_counters_reset(oid) from pg_database where datname = $1")
            .bind(&db.name)
            .execute(pool)
            .await
            .unwrap();
    }
    db.seed_demo_tenants().await;
    let mut nested = 0;
    for (node, pool) in &nodes {
        let (single, multi) = counters(pool.clone()).await;
        assert_eq!(multi, 0, "{node} ran multi-shard queries for the demo seed");
        if node.starts_with("worker") {
            nested += single;
        }
    }
    // The counters count: the workers ran the policies' and triggers'
    // queries on their own shards.
    assert!(nested > 0, "no single-shard query counted on the workers");
}
