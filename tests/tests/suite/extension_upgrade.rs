//! DBAs upgrade a fleet with `ALTER EXTENSION bizos UPDATE`: a database that
//! installed an earlier release and was updated must hold exactly what a
//! fresh `CREATE EXTENSION bizos` holds (objects, signatures, properties,
//! table definitions). Earlier releases' scripts are installed from
//! extension/sql/history by scripts/dev.

use bizos_tests::{admin_url, url_for};
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// Everything that belongs to the extension, and the indexes and triggers
/// of its tables, described as text.
async fn describe(db: &Client) -> Vec<String> {
    let rows = db
        .query(
            "select pg_describe_object(d.classid, d.objid, d.objsubid)
                    || coalesce(' | ' || (select concat_ws(' ', p.proname, pg_get_function_identity_arguments(p.oid),
                                                          'returns', pg_get_function_result(p.oid), p.provolatile,
                                                          p.proparallel, p.prosecdef, p.proisstrict, p.prosrc,
                                                          p.proconfig::text)
                                            from pg_proc p where d.classid = 'pg_proc'::regclass and p.oid = d.objid), '')
                    || coalesce(' | ' || (select string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                                            || case when a.attnotnull then ' not null' else '' end,
                                                            ', ' order by a.attnum)
                                            from pg_attribute a
                                           where d.classid = 'pg_class'::regclass and a.attrelid = d.objid
                                             and a.attnum > 0 and not a.attisdropped), '')
               from pg_depend d
               join pg_extension e on e.oid = d.refobjid
              where e.extname = 'bizos' and d.deptype = 'e'
             union all
             -- Indexes and triggers belong to their table, not to the extension.
             select pg_get_indexdef(i.indexrelid)
               from pg_index i
               join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = i.indrelid
               join pg_extension e on e.oid = d.refobjid
              where e.extname = 'bizos' and d.deptype = 'e'
             union all
             select pg_get_triggerdef(t.oid)
               from pg_trigger t
               join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = t.tgrelid
               join pg_extension e on e.oid = d.refobjid
              where e.extname = 'bizos' and d.deptype = 'e' and not t.tgisinternal
              order by 1",
            &[],
        )
        .await
        .expect("describe the extension");
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn an_updated_install_equals_a_fresh_one() {
    let admin = connect(&admin_url()).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (old, fresh) = (format!("upg_old_{suffix}"), format!("upg_new_{suffix}"));
    for name in [&old, &fresh] {
        admin
            .batch_execute(&format!("create database {name}"))
            .await
            .unwrap();
    }

    let versions: Vec<String> = admin
        .query(
            "select version from pg_available_extension_versions where name = 'bizos' order by version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let current: String = admin
        .query_one(
            "select default_version from pg_available_extensions where name = 'bizos'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        versions.len() >= 2,
        "an earlier release must be installed: {versions:?}"
    );

    let fresh_db = connect(&url_for("postgres", &fresh)).await;
    fresh_db
        .batch_execute("create extension bizos")
        .await
        .unwrap();
    let want = describe(&fresh_db).await;
    assert!(want.len() > 50, "{} objects", want.len());

    // Every earlier release, updated to the current one.
    for version in versions.iter().filter(|v| **v != current) {
        let db = connect(&url_for("postgres", &old)).await;
        db.batch_execute(&format!(
            "drop extension if exists bizos cascade; create extension bizos version '{version}';
             alter extension bizos update"
        ))
        .await
        .unwrap_or_else(|e| panic!("updating from {version}: {e}"));
        let installed: String = db
            .query_one(
                "select extversion from pg_extension where extname = 'bizos'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(installed, current);
        let got = describe(&db).await;
        let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
        let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "from {version}: missing after update {missing:#?}\nnot in a fresh install {extra:#?}"
        );
    }

    drop(fresh_db);
    for name in [&old, &fresh] {
        admin
            .batch_execute(&format!("drop database {name} with (force)"))
            .await
            .unwrap();
    }
}

/// A chain written by 0.2.0's SQL (entries without a request id), updated
/// to the current release and continued with request ids, verifies clean;
/// the same backend picks the new column up without reconnecting.
#[tokio::test]
async fn audit_chains_from_before_the_update_still_verify() {
    let admin = connect(&admin_url()).await;
    let name = format!("upg_audit_{}", uuid::Uuid::new_v4().simple());
    admin
        .batch_execute(&format!("create database {name}"))
        .await
        .unwrap();
    let db = connect(&url_for("postgres", &name)).await;
    let tenant = "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab";
    db.batch_execute(&format!(
        "create extension bizos version '0.2.0';
         create table deals (tenant_id uuid, id int, note text, primary key (tenant_id, id));
         select bizos.enable_audit('deals');
         insert into deals select '{tenant}', g, 'before' from generate_series(1, 5) g;
         update deals set note = 'still before' where id = 2;"
    ))
    .await
    .expect("audited writes on 0.2.0");
    let has_column: bool = db
        .query_one(
            "select exists (select 1 from pg_attribute
                             where attrelid = 'bizos.audit_log'::regclass and attname = 'request_id')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!has_column, "0.2.0 has no request_id column");

    db.batch_execute("alter extension bizos update")
        .await
        .expect("update");
    db.batch_execute(&format!(
        "begin;
         select set_config('request.id', 'req-after-update', true);
         insert into deals select '{tenant}', g, 'after' from generate_series(6, 8) g;
         update deals set note = 'changed after' where id = 1;
         commit;"
    ))
    .await
    .expect("write on in the same session");
    let rows = db
        .query(
            "select seq, chain, request_id from bizos.audit_log order by chain, seq",
            &[],
        )
        .await
        .unwrap();
    let with_id = rows
        .iter()
        .filter(|r| r.get::<_, Option<String>>(2).as_deref() == Some("req-after-update"))
        .count();
    assert_eq!(rows.len(), 10);
    assert_eq!(
        with_id, 4,
        "the entries written after the update carry the id"
    );
    let breaks = db
        .query(
            &format!("select chain, seq, problem from bizos.audit_verify('{tenant}')"),
            &[],
        )
        .await
        .unwrap();
    let breaks: Vec<String> = breaks.iter().map(|r| r.get::<_, String>(2)).collect();
    assert!(breaks.is_empty(), "{breaks:?}");

    drop(db);
    admin
        .batch_execute(&format!("drop database {name} with (force)"))
        .await
        .unwrap();
}
