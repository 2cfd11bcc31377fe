//! Privileges, read from the catalogue, so that no caller's object can
//! stand in for what a SECURITY DEFINER function reads:
//!
//! * no login role can create temporary objects or objects in a schema it
//!   does not own, so nothing of the caller's can stand in for a relation a
//!   SECURITY DEFINER function reads;
//! * a definer function refuses a pg_temp relation that is not its own
//!   plain table, even when a login was given TEMP;
//! * every SECURITY DEFINER function of the database pins a search_path
//!   ending in pg_temp and naming only schemas no other login can create
//!   in, and PUBLIC cannot execute the business ones;
//! * analysts and BI can select from schema `analytics` only.
//!
//! The checks enumerate the catalogue (pg_proc, pg_namespace, pg_class,
//! aclexplode), so a later migration that slips is caught.

use bizos_tests::{admin_url, code, TestDb};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

/// Connects to the test database as `user`.
async fn connect(db: &TestDb, user: &str) -> PgConnection {
    PgConnection::connect(&db.url(user))
        .await
        .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

async fn admin(db: &TestDb) -> PgConnection {
    let url = bizos_sql::derive_dsn(&admin_url(), None, &db.name).unwrap();
    PgConnection::connect(&url).await.expect("connect as admin")
}

/// Switches the connection's transaction to the request role with claims,
/// as the BFF does.
async fn become_user(conn: &mut PgConnection, tenant: Uuid, user: Uuid) {
    let claims = json!({"sub": user, "tenant_id": tenant, "app_role": "super_admin"});
    sqlx::query(
        "select set_config('role', 'bizos_authenticated', true),
                set_config('request.jwt.claims', $1, true)",
    )
    .bind(claims.to_string())
    .execute(&mut *conn)
    .await
    .expect("become the user");
}

/// An import of `user` with its object, created in the current transaction
/// (the caller must already be the user); returns the import id.
async fn new_import(conn: &mut PgConnection) -> Uuid {
    let intent: Value = sqlx::query_scalar("select upload_begin('import-files')")
        .fetch_one(&mut *conn)
        .await
        .expect("upload_begin");
    let object: Uuid = intent["object_id"].as_str().unwrap().parse().unwrap();
    sqlx::query("select object_create($1)")
        .bind(
            json!({"object_id": object, "bucket": "import-files", "file_name": "c.csv",
                     "content_type": "text/csv", "size_bytes": 10, "sha256": "ab".repeat(32)}),
        )
        .execute(&mut *conn)
        .await
        .expect("object_create");
    let created: Value = sqlx::query_scalar("select import_create($1)")
        .bind(
            json!({"module": "customers", "object_id": object, "file_name": "c.csv",
                     "columns": ["company_name"]}),
        )
        .fetch_one(&mut *conn)
        .await
        .expect("import_create");
    Uuid::parse_str(created["import_id"].as_str().unwrap()).unwrap()
}

async fn refused(conn: &mut PgConnection, sql: &str) -> sqlx::Error {
    let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
    let _ = sqlx::query("rollback").execute(&mut *conn).await;
    err
}

#[tokio::test]
async fn logins_cannot_create_temporary_objects() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("sec-temp").await;
    let admin_user = db.create_user(tenant, "super_admin").await;

    for user in ["bizos_app", "bizos_worker", "bizos_analyst"] {
        let mut conn = connect(&db, user).await;
        for sql in [
            "create temp table scratch (i int)",
            "create function pg_temp.f() returns int language sql as 'select 1'",
            "create view pg_temp.import_stage as select 1 as row_no, '{}'::jsonb as data",
        ] {
            let err = refused(&mut conn, sql).await;
            assert_eq!(code(&err), "42501", "{user}: {sql}: {err}");
        }
    }

    // Once a definer function made the session's temp schema (the import
    // staging), the request role still cannot add anything to it.
    let mut conn = connect(&db, "bizos_app").await;
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    become_user(&mut conn, tenant, admin_user.user_id).await;
    sqlx::query("select import_stage_open()")
        .execute(&mut conn)
        .await
        .expect("the staging table is made as the owner");
    let owner: String = sqlx::query_scalar(
        "select pg_get_userbyid(relowner)::text from pg_class where oid = 'pg_temp.import_stage'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(owner, "bizos_owner");
    sqlx::query("commit").execute(&mut conn).await.unwrap();
    let temp_schema_exists: bool = sqlx::query_scalar("select pg_my_temp_schema() <> 0")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(temp_schema_exists, "the session has its temp schema now");
    for role in ["bizos_app", "bizos_authenticated"] {
        sqlx::query(&format!("set role {role}"))
            .execute(&mut conn)
            .await
            .unwrap();
        for sql in [
            "create function pg_temp.f() returns int language sql as 'select 1'",
            "create view pg_temp.import_stage as select 1 as row_no, '{}'::jsonb as data",
            "create temp table scratch (i int)",
        ] {
            let err = refused(&mut conn, sql).await;
            assert_eq!(code(&err), "42501", "{role}: {sql}: {err}");
        }
    }
}

/// The hijack of a definer function, with TEMP given back to bizos_app:
/// its own view under the staging table's name, calling its own function,
/// which would read the audit log if it ran as the owner.
#[tokio::test]
async fn definer_functions_refuse_a_foreign_temp_relation() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("sec-hijack").await;
    let user = db.create_user(tenant, "super_admin").await;
    let mut su = admin(&db).await;
    sqlx::query(&format!(
        "grant temporary on database {} to bizos_app",
        db.name
    ))
    .execute(&mut su)
    .await
    .unwrap();

    let mut conn = connect(&db, "bizos_app").await;
    sqlx::raw_sql(
        "create function pg_temp.hijack() returns jsonb language plpgsql as $$
         declare n bigint;
         begin
           select count(*) into n from bizos.audit_log;
           raise exception 'hijacked: ran as % and read % audit entries', current_user, n;
         end $$;
         create view pg_temp.import_stage as select 1 as row_no, pg_temp.hijack() as data;
         grant select on pg_temp.import_stage to public;",
    )
    .execute(&mut conn)
    .await
    .expect("bizos_app with TEMP makes its objects");

    // import_stage_finish reads the staging table.
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    become_user(&mut conn, tenant, user.user_id).await;
    let import = new_import(&mut conn).await;
    let err = sqlx::query("select import_stage_finish($1)")
        .bind(import)
        .execute(&mut conn)
        .await
        .expect_err("a foreign view is refused");
    sqlx::query("rollback").execute(&mut conn).await.unwrap();
    assert!(!err.to_string().contains("hijacked"), "{err}");
    assert_eq!(code(&err), "42501", "{err}");
    assert!(
        err.to_string()
            .contains("pg_temp.import_stage is not a temporary table of bizos_owner"),
        "{err}"
    );

    // import_stage_open replaces the staging table.
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    become_user(&mut conn, tenant, user.user_id).await;
    let err = sqlx::query("select import_stage_open()")
        .execute(&mut conn)
        .await
        .expect_err("a foreign view is not replaced");
    sqlx::query("rollback").execute(&mut conn).await.unwrap();
    assert_eq!(code(&err), "42501", "{err}");

    // A plain table of bizos_app's under the name, with rows, is refused too.
    sqlx::raw_sql(
        "drop view pg_temp.import_stage;
         create temp table import_stage (row_no integer, data jsonb);
         insert into pg_temp.import_stage values (1, '{\"company_name\": \"PT Sisipan\"}');
         grant all on pg_temp.import_stage to public;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    become_user(&mut conn, tenant, user.user_id).await;
    let import = new_import(&mut conn).await;
    let err = sqlx::query("select import_stage_finish($1)")
        .bind(import)
        .execute(&mut conn)
        .await
        .expect_err("someone else's table is refused");
    sqlx::query("rollback").execute(&mut conn).await.unwrap();
    assert_eq!(code(&err), "42501", "{err}");

    // process_import's batch table: stage an import properly in a clean
    // session, then call process_import where bizos_app put a view first.
    let mut clean = connect(&db, "bizos_app").await;
    sqlx::query("begin").execute(&mut clean).await.unwrap();
    become_user(&mut clean, tenant, user.user_id).await;
    let import = new_import(&mut clean).await;
    sqlx::query("select import_stage_open()")
        .execute(&mut clean)
        .await
        .unwrap();
    sqlx::query("insert into pg_temp.import_stage values (1, '{\"company_name\": \"PT Satu\"}')")
        .execute(&mut clean)
        .await
        .unwrap();
    sqlx::query("select import_stage_finish($1)")
        .bind(import)
        .execute(&mut clean)
        .await
        .expect("staging through the definer functions still works");
    sqlx::query("commit").execute(&mut clean).await.unwrap();

    sqlx::raw_sql(
        "create view pg_temp.import_batch as
           select 1 as row_no, pg_temp.hijack() as d, null::text as err_field,
                  null::text as err_msg, null::uuid as target_id;
         grant all on pg_temp.import_batch to public",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query("begin").execute(&mut conn).await.unwrap();
    become_user(&mut conn, tenant, user.user_id).await;
    let err = sqlx::query("select process_import($1, 10)")
        .bind(import)
        .execute(&mut conn)
        .await
        .expect_err("a foreign batch table is refused");
    sqlx::query("rollback").execute(&mut conn).await.unwrap();
    assert!(!err.to_string().contains("hijacked"), "{err}");
    assert_eq!(code(&err), "42501", "{err}");

    // And where nothing foreign is in the way, the import processes.
    sqlx::query("begin").execute(&mut clean).await.unwrap();
    become_user(&mut clean, tenant, user.user_id).await;
    let state: Value = sqlx::query_scalar("select process_import($1, 10)")
        .bind(import)
        .fetch_one(&mut clean)
        .await
        .expect("process_import");
    sqlx::query("commit").execute(&mut clean).await.unwrap();
    assert_eq!(state["ok_rows"], json!(1), "{state}");
}

/// Login roles that are not superusers, each with the roles it can become
/// (itself included).
const LOGIN_ROLES: &str = "
    select l.rolname::text as login, r.rolname::text as role, r.oid as role_oid, l.oid as login_oid
      from pg_roles l
      join pg_roles r on pg_has_role(l.oid, r.oid, 'MEMBER')
     where l.rolcanlogin and not l.rolsuper";

#[tokio::test]
async fn no_login_has_temp_or_create_where_it_does_not_own() {
    let db = TestDb::new().await;
    // A schema-tier tenant too: its schemas are checked like the others.
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_sec"))
        .await
        .expect("schema tier");
    let mut conn = connect(&db, "bizos_owner").await;

    let logins: Vec<String> = sqlx::query_scalar(&format!(
        "select distinct login from ({LOGIN_ROLES}) x order by 1"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for want in [
        "bizos_app",
        "bizos_worker",
        "bizos_analyst",
        "bizos_bi",
        "bizos_owner",
    ] {
        assert!(logins.iter().any(|l| l == want), "{want} in {logins:?}");
    }

    // TEMP or CREATE on the database, for any login that does not own it.
    let on_database: Vec<String> = sqlx::query_scalar(&format!(
        "select x.login || ' may ' || p.privilege || ' (as ' || x.role || ')'
           from ({LOGIN_ROLES}) x
           cross join (values ('TEMP'), ('CREATE')) p(privilege)
           join pg_database d on d.datname = current_database()
          where has_database_privilege(x.role_oid, d.oid, p.privilege)
            and not pg_has_role(x.login_oid, d.datdba, 'MEMBER')
          order by 1"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(on_database.is_empty(), "{on_database:#?}");

    // CREATE on a schema the login does not own.
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace
          where nspname not like 'pg\\_temp\\_%' and nspname not like 'pg\\_toast%'
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for want in [
        "public",
        "extensions",
        "bizos",
        "analytics",
        "tenant_sec",
        "tenant_sec_analytics",
    ] {
        assert!(schemas.iter().any(|s| s == want), "{want} in {schemas:?}");
    }
    let on_schemas: Vec<String> = sqlx::query_scalar(&format!(
        "select x.login || ' may create in ' || n.nspname || ' (as ' || x.role || ')'
           from ({LOGIN_ROLES}) x
           cross join pg_namespace n
          where n.nspname not like 'pg\\_temp\\_%' and n.nspname not like 'pg\\_toast%'
            and has_schema_privilege(x.role_oid, n.oid, 'CREATE')
            and not pg_has_role(x.login_oid, n.nspowner, 'MEMBER')
          order by 1"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(on_schemas.is_empty(), "{on_schemas:#?}");
}

#[tokio::test]
async fn every_definer_function_pins_a_safe_search_path() {
    let db = TestDb::new().await;
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_sec"))
        .await
        .expect("schema tier");
    let mut conn = connect(&db, "bizos_owner").await;

    let rows = sqlx::query(
        "select p.oid::regprocedure::text as sig, n.nspname::text as schema,
                p.proowner, coalesce(p.proconfig, '{}') as config,
                exists (select 1 from pg_depend d
                         where d.classid = 'pg_proc'::regclass and d.objid = p.oid
                           and d.deptype = 'e') as of_extension,
                exists (select 1 from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                         where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_executes
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where p.prosecdef
            and n.nspname not in ('pg_catalog', 'information_schema')
          order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let sigs: Vec<String> = rows.iter().map(|r| r.get("sig")).collect();
    // The list is not vacuous: the import staging and the schema tier's.
    for want in [
        "import_stage_finish(uuid)",
        "process_import(uuid,integer)",
        "tenant_sec.import_stage_finish(uuid)",
    ] {
        assert!(sigs.iter().any(|s| s == want), "{want} in {sigs:?}");
    }

    let mut problems = Vec::new();
    for r in &rows {
        let sig: String = r.get("sig");
        let config: Vec<String> = r.get("config");
        let Some(path) = config.iter().find_map(|c| c.strip_prefix("search_path=")) else {
            problems.push(format!("{sig}: no pinned search_path"));
            continue;
        };
        let schemas: Vec<String> = path
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_owned())
            .collect();
        if schemas.last().map(String::as_str) != Some("pg_temp") {
            problems.push(format!("{sig}: pg_temp is not last in {path}"));
        }
        for s in schemas.iter().filter(|s| *s != "pg_temp") {
            // An existing schema no login but the function's owner may
            // create in (a missing one could be created by whoever may
            // create schemas, which the test above rules out for logins).
            let creators: Vec<String> = sqlx::query_scalar(&format!(
                "select distinct x.login from ({LOGIN_ROLES}) x
                   join pg_namespace n on n.nspname = $1
                  where has_schema_privilege(x.role_oid, n.oid, 'CREATE')
                    and not pg_has_role(x.login_oid, $2::oid, 'MEMBER')
                  order by 1"
            ))
            .bind(s)
            .bind(r.get::<sqlx::postgres::types::Oid, _>("proowner"))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let exists: bool =
                sqlx::query_scalar("select exists (select 1 from pg_namespace where nspname = $1)")
                    .bind(s)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            if s.starts_with('$') || !exists || !creators.is_empty() {
                problems.push(format!(
                    "{sig}: search_path schema {s} (exists: {exists}) can be created in by {creators:?}"
                ));
            }
        }
        let of_extension: bool = r.get("of_extension");
        let public_executes: bool = r.get("public_executes");
        if !of_extension && public_executes {
            problems.push(format!("{sig}: PUBLIC may execute it"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn analysts_and_bi_select_from_analytics_only() {
    let db = TestDb::new().await;
    bizos_sql::migrate(&db.url("bizos_owner"), Some("tenant_sec"))
        .await
        .expect("schema tier");
    let mut conn = connect(&db, "bizos_owner").await;
    // Every relation outside the catalogues and the analytics schemas that
    // the role could read (table or column privilege, PUBLIC's included).
    let readable = |role: &str| {
        format!(
            "select n.nspname || '.' || c.relname
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
                and n.nspname not in ('pg_catalog', 'information_schema', 'analytics')
                and n.nspname not like '%\\_analytics'
                and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp\\_%'
                and has_any_column_privilege('{role}', c.oid, 'SELECT')
              order by 1"
        )
    };
    // The enumeration is not vacuous: the owner reads these.
    let owner_reads: Vec<String> = sqlx::query_scalar(&readable("bizos_owner"))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for want in [
        "bizos.id_kinds",
        "bizos.transitions",
        "public.leads",
        "tenant_sec.leads",
    ] {
        assert!(owner_reads.iter().any(|t| t == want), "{want}");
    }
    let views: i64 = sqlx::query_scalar(
        "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname in ('analytics', 'tenant_sec_analytics') and c.relkind = 'v'
            and has_table_privilege('bizos_analyst', c.oid, 'SELECT')
            and has_table_privilege('bizos_bi', c.oid, 'SELECT')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(views > 20, "{views} analytics views");

    for role in ["bizos_analyst", "bizos_bi"] {
        let leaks: Vec<String> = sqlx::query_scalar(&readable(role))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(leaks.is_empty(), "{role} can select {leaks:#?}");
    }
    // And through SQL, as the analyst.
    let mut analyst = connect(&db, "bizos_analyst").await;
    for sql in [
        "select * from bizos.id_kinds",
        "select * from bizos.transitions",
    ] {
        let err = sqlx::query(sql).execute(&mut analyst).await.expect_err(sql);
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
}

/// The worker's login is like the BFF's: no superuser, no
/// BYPASSRLS, a NOINHERIT member of bizos_authenticated (it runs a user's
/// job as that user), and on its own it reads no table: the queue only
/// through the functions granted to it.
#[tokio::test]
async fn the_worker_login_is_unprivileged_and_reaches_the_queue_only_through_its_functions() {
    let db = TestDb::new().await;
    let (superuser, bypassrls, inherit, member): (bool, bool, bool, bool) = sqlx::query_as(
        "select rolsuper, rolbypassrls, rolinherit,
                pg_has_role('bizos_worker', 'bizos_authenticated', 'MEMBER')
           from pg_roles where rolname = 'bizos_worker'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (superuser, bypassrls, inherit, member),
        (false, false, false, true)
    );
    let mut conn = connect(&db, "bizos_worker").await;
    for sql in [
        "select count(*) from jobs",
        "select count(*) from idempotency_keys",
        "update jobs set status = 'succeeded'",
    ] {
        let err = refused(&mut conn, sql).await;
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
    let claimed: i64 = sqlx::query_scalar("select count(*) from job_claim('probe', 1)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(claimed, 0);
    // The request role may not call the worker's functions.
    let mut app = connect(&db, "bizos_app").await;
    sqlx::query("set role bizos_authenticated")
        .execute(&mut app)
        .await
        .unwrap();
    for sql in [
        "select count(*) from job_claim('probe', 1)",
        "select job_complete(gen_random_uuid(), 'probe')",
        "select job_enqueue_for(gen_random_uuid(), 'idempotency.purge')",
    ] {
        let err = refused(&mut app, sql).await;
        assert_eq!(code(&err), "42501", "{sql}: {err}");
    }
}
