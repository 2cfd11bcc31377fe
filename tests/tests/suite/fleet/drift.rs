//! The drift check reads the catalogues of many schemas of a database in
//! one statement: each placement's drift must be its own, the same as the
//! check of that placement alone finds.

use serde_json::{json, Value};

use super::{line, report, Fleet};

#[tokio::test]
async fn drift_read_for_many_schemas_at_once_is_each_schemas_own() {
    let fleet = Fleet::new().await;
    let schemas = ["fd_a", "fd_b", "fd_c"];
    let mut keys = Vec::new();
    for s in schemas {
        keys.push(fleet.add_schema(s).await);
    }
    let control = format!("control/{}", fleet.control.name);
    let out = fleet.run(&[]);
    let first = report(&out);
    assert!(out.status.success(), "{first:#}");
    assert_eq!(first["summary"]["drifted"], 0, "{first:#}");

    // Planted in two schemas read by the same statement (and the
    // database's default schema, read with them, left clean).
    sqlx::raw_sql(
        "alter table fd_b.customers add column rogue text;
         create function fd_c.rogue() returns int language sql as 'select 1';",
    )
    .execute(&fleet.control.owner)
    .await
    .unwrap();
    let out = fleet.run(&[]);
    let run = report(&out);
    assert!(out.status.success(), "drift alone is no failure: {run:#}");
    assert_eq!(line(&run, &keys[0])["drift"], Value::Null, "{run:#}");
    assert_eq!(line(&run, &control)["drift"], Value::Null, "{run:#}");
    assert_eq!(
        line(&run, &keys[1])["drift"],
        json!({"missing": [], "unexpected": [], "changed": ["relation customers"]}),
        "{run:#}"
    );
    assert_eq!(
        line(&run, &keys[2])["drift"],
        json!({"missing": [], "unexpected": ["function rogue()"], "changed": []}),
        "{run:#}"
    );
    assert_eq!(run["summary"]["drifted"], 2, "{run:#}");

    // The check of each placement alone says the same.
    let url = fleet.control.url("bizos_owner");
    let plan = bizos_sql::fleet::Plan::embedded();
    let expected = bizos_sql::fleet::expected_catalogue(&url, "fd_expected", &plan)
        .await
        .unwrap();
    for (s, key) in schemas.iter().zip(&keys) {
        let alone = bizos_sql::fleet::migrate_placement(&url, Some(s), &plan, Some(&expected))
            .await
            .unwrap()
            .drift
            .unwrap();
        let batched = &line(&run, key)["drift"];
        let alone = if alone.is_empty() {
            Value::Null
        } else {
            json!({"missing": alone.missing, "unexpected": alone.unexpected, "changed": alone.changed})
        };
        assert_eq!(&alone, batched, "{s}");
    }
}

/// How each placement of a run was checked: "read" or "unchanged".
fn checks(run: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| {
            line(run, k)["drift_check"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

/// Runs the fleet, expecting success; its report.
fn ok(fleet: &Fleet, args: &[&str]) -> Value {
    let out = fleet.run(args);
    let run = report(&out);
    assert!(out.status.success(), "{run:#}");
    run
}

#[tokio::test]
async fn the_drift_watch_reads_again_only_what_ddl_touched_since_a_check() {
    let fleet = Fleet::new().await;
    let control = format!("control/{}", fleet.control.name);
    let mut keys = vec![control.clone()];
    for s in ["dw_a", "dw_b", "dw_c", "dw_d"] {
        keys.push(fleet.add_schema(s).await);
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let read_count = |run: &Value| {
        (
            run["summary"]["drift_read"].as_u64().unwrap(),
            run["summary"]["drift_unchanged"].as_u64().unwrap(),
        )
    };

    // Nothing verified yet: every catalogue is read.
    let run = ok(&fleet, &[]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");
    assert_eq!(run["summary"]["drifted"], 0, "{run:#}");
    let verified: i64 = sqlx::query_scalar(
        "select count(*) from sql_api.drift_verified where expected is not null",
    )
    .fetch_one(&fleet.control.owner)
    .await
    .unwrap();
    assert_eq!(
        verified, 5,
        "the default schema and the four tenant schemas"
    );

    // Verified, untouched: one of the group is read, the others follow it.
    let run = ok(&fleet, &[]);
    assert_eq!(read_count(&run), (1, 4), "{run:#}");
    assert_eq!(run["summary"]["drifted"], 0, "{run:#}");

    // A temporary table touches no placement.
    sqlx::raw_sql("create temp table dw_scratch (x int)")
        .execute(&fleet.control.owner)
        .await
        .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(read_count(&run), (1, 4), "{run:#}");

    // DDL by hand in one schema (an index made, an index dropped in
    // another, even with replication's role): those two are read, and
    // drifted; the rest stay unchanged.
    sqlx::raw_sql(
        "create index dw_rogue on dw_c.customers (email_norm);
         drop index dw_d.customers_phone_norm_idx;",
    )
    .execute(&fleet.control.owner)
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let run = ok(&fleet, &[]);
    let (c, d) = (line(&run, keys[3]), line(&run, keys[4]));
    assert_eq!(
        (&c["drift_check"], &d["drift_check"]),
        (&json!("read"), &json!("read")),
        "{run:#}"
    );
    assert_eq!(
        c["drift"]["unexpected"],
        json!(["index dw_rogue"]),
        "{run:#}"
    );
    assert_eq!(
        d["drift"]["missing"],
        json!(["index customers_phone_norm_idx"]),
        "{run:#}"
    );
    assert_eq!(read_count(&run), (3, 2), "{run:#}");

    // A grant names no schema: every placement is read again.
    sqlx::raw_sql(
        "drop index dw_c.dw_rogue;
         create index customers_phone_norm_idx on dw_d.customers (tenant_id, phone_norm);
         grant select on dw_a.customers to bizos_bi;",
    )
    .execute(&fleet.control.owner)
    .await
    .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");
    assert_eq!(
        line(&run, keys[1])["drift"]["changed"],
        json!(["relation customers"]),
        "{run:#}"
    );
    sqlx::raw_sql("revoke select on dw_a.customers from bizos_bi")
        .execute(&fleet.control.owner)
        .await
        .unwrap();

    // DDL under replication's role is seen as well (the watch is enabled
    // always).
    let admin = fleet.control.pool_as("postgres");
    ok(&fleet, &[]);
    sqlx::raw_sql(
        "set session_replication_role = replica;
         alter table dw_b.customers add column dw_rogue text;",
    )
    .execute(&admin)
    .await
    .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(line(&run, keys[2])["drift_check"], "read", "{run:#}");
    assert_eq!(
        line(&run, keys[2])["drift"]["changed"],
        json!(["relation customers"]),
        "{run:#}"
    );
    sqlx::raw_sql("alter table dw_b.customers drop column dw_rogue")
        .execute(&admin)
        .await
        .unwrap();

    // What the migrator's session does is not seen by the watch: a
    // migration that makes something else than the files. The group's
    // first placement drifts, so all of them are read, and all drift.
    ok(&fleet, &[]);
    ok(&fleet, &[]);
    let mut sql = "set bizos_migrator.running = on;".to_owned();
    for s in ["public", "dw_a", "dw_b", "dw_c", "dw_d"] {
        sql.push_str(&format!(
            "create index dw_made_{s} on {s}.tickets (subject);"
        ));
        sql.push_str(&format!("alter index {s}.dw_made_{s} rename to dw_made;"));
    }
    sqlx::raw_sql(&sql)
        .execute(&fleet.control.owner)
        .await
        .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");
    assert_eq!(run["summary"]["drifted"], 5, "{run:#}");

    // With the watch's event triggers disabled nothing is trusted.
    let mut sql = String::new();
    for s in ["public", "dw_a", "dw_b", "dw_c", "dw_d"] {
        sql.push_str(&format!("drop index {s}.dw_made;"));
    }
    sqlx::raw_sql(&sql)
        .execute(&fleet.control.owner)
        .await
        .unwrap();
    ok(&fleet, &[]);
    sqlx::raw_sql("alter event trigger bizos_drift_watch disable")
        .execute(&admin)
        .await
        .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");
    sqlx::raw_sql("alter event trigger bizos_drift_watch enable always")
        .execute(&admin)
        .await
        .unwrap();

    // Rows written by a release that read catalogues otherwise are not
    // trusted.
    ok(&fleet, &[]);
    sqlx::raw_sql(
        "update sql_api.drift_verified set expected = 'older:' || split_part(expected, ':', 2)",
    )
    .execute(&fleet.control.owner)
    .await
    .unwrap();
    let run = ok(&fleet, &[]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");

    // --drift-read-all reads every catalogue whatever the watch knows.
    ok(&fleet, &[]);
    let run = ok(&fleet, &["--drift-read-all"]);
    assert_eq!(checks(&run, &keys), ["read"; 5], "{run:#}");
    assert_eq!(run["summary"]["drifted"], 0, "{run:#}");
}

/// A grant list equal to the owner's defaults, written out (as `revoke
/// all .. from public` leaves a table's) or left null (as pg_dump restores
/// it), is the same catalogue; a grant list that differs is not.
#[tokio::test]
async fn grants_written_out_as_the_defaults_are_no_drift() {
    let db = bizos_tests::TestDb::new().await;
    let (client, conn) = tokio_postgres::connect(&db.url("bizos_owner"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut sql = String::new();
    for s in ["acl_a", "acl_b", "acl_c"] {
        sql.push_str(&format!(
            "create schema {s};
             create table {s}.t (a int);
             create view {s}.v as select a from {s}.t;
             create function {s}.f() returns int language sql as 'select 1';"
        ));
    }
    // The defaults written out in acl_b; a real change in acl_c.
    sql.push_str(
        "revoke all on acl_b.t, acl_b.v from public;
         grant execute on function acl_b.f() to public;
         revoke execute on function acl_c.f() from public;",
    );
    client.batch_execute(&sql).await.unwrap();
    let written: i64 = client
        .query_one(
            "select count(*) from pg_class where relnamespace = 'acl_b'::regnamespace and relacl is not null",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        written, 2,
        "acl_b's table and view have their grants written out"
    );
    let cats = bizos_sql::fleet::catalogues(
        &client,
        &["acl_a".to_owned(), "acl_b".to_owned(), "acl_c".to_owned()],
    )
    .await
    .unwrap();
    assert!(cats[0].0.len() >= 3, "{:?}", cats[0]);
    assert_eq!(cats[0].drift(&cats[1]), Default::default(), "acl_b");
    assert_eq!(
        cats[0].drift(&cats[2]).changed,
        ["function f()"],
        "acl_c: public may not run f"
    );
}
