//! The move's verification (bff/src/tenant_moves/verify.rs) on its own:
//! a table's rows in a source and a target schema compared by count and
//! checksum, each column hashed by its type's hash function or, where the
//! type has none (a point, json) or is not a plain built-in one (an
//! array), by its text. A changed value of any column is a difference; a
//! row of another tenant is none.

use std::collections::BTreeSet;

use bizos_bff::tenant_moves::{catalog, verify};
use bizos_tests::TestDb;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::operator_url;

const TABLE: &str = "create table {s}.deals (
    tenant_id uuid not null, id int not null, owners uuid[], amount numeric, meta jsonb,
    shape point, note json, stage text, closed_at timestamptz,
    primary key (tenant_id, id))";

#[tokio::test]
async fn a_changed_value_of_any_column_is_a_difference() {
    let db = TestDb::new().await;
    let tenant = Uuid::new_v4();
    let other = Uuid::new_v4();
    let mut source = PgConnection::connect(&operator_url(&db.name))
        .await
        .unwrap();
    let mut target = PgConnection::connect(&operator_url(&db.name))
        .await
        .unwrap();
    for s in ["move_src", "move_dst"] {
        sqlx::raw_sql(&format!("create schema {s}; {}", TABLE.replace("{s}", s)))
            .execute(&mut source)
            .await
            .unwrap();
        sqlx::query(&format!(
            "insert into {s}.deals
             select $1, i, array[gen_random_uuid(), $1], i * 1.25, jsonb_build_object('i', i),
                    point(i, -i), json_build_object('n', i), 'won', '2026-12-01 10:00+07'
               from generate_series(1, 3) i"
        ))
        .bind(tenant)
        .execute(&mut source)
        .await
        .unwrap();
    }
    // The same rows on both sides (the random owners copied over).
    sqlx::raw_sql(
        "update move_dst.deals d set owners = s.owners from move_src.deals s where s.id = d.id",
    )
    .execute(&mut source)
    .await
    .unwrap();

    let tables = catalog::tables(&mut source, "move_src", "move_dst", false)
        .await
        .unwrap();
    assert_eq!(tables.len(), 1, "{tables:?}");
    assert_eq!(
        tables[0].hashed_as_text,
        BTreeSet::from(["note".to_owned(), "owners".to_owned(), "shape".to_owned()])
    );
    let url = operator_url(&db.name);
    let (report, problems) =
        differences(&mut source, &mut target, &url, &tables, tenant, None).await;
    assert_eq!(problems, Vec::<String>::new(), "{report}");
    assert_eq!(report["rows"], 3, "{report}");
    assert_eq!(report["audit_breaks"], 0, "{report}");

    // Another tenant's row in the target only: not the tenant's.
    let theirs = format!("insert into move_dst.deals (tenant_id, id) values ('{other}', 1)");
    let (_, problems) = differences(
        &mut source,
        &mut target,
        &url,
        &tables,
        tenant,
        Some(&theirs),
    )
    .await;
    assert_eq!(problems, Vec::<String>::new());

    for change in [
        "owners[1] = gen_random_uuid()",
        "amount = amount + 0.01",
        "meta = meta || '{\"x\": 1}'",
        "shape = point(0, 0)",
        "note = '{\"n\": 0}'",
        "stage = 'lost'",
        "closed_at = closed_at + interval '1 microsecond'",
    ] {
        let sql =
            format!("update move_dst.deals set {change} where tenant_id = '{tenant}' and id = 2");
        let (_, problems) =
            differences(&mut source, &mut target, &url, &tables, tenant, Some(&sql)).await;
        assert_eq!(problems.len(), 1, "{change}: {problems:?}");
        assert!(
            problems[0].starts_with("move_src.deals: source 3 rows"),
            "{change}: {problems:?}"
        );
    }
}

/// The verification of the target as it is after `change` (in a
/// transaction of the target's connection, rolled back after).
async fn differences(
    source: &mut PgConnection,
    target: &mut PgConnection,
    url: &str,
    tables: &[catalog::Table],
    tenant: Uuid,
    change: Option<&str>,
) -> (serde_json::Value, Vec<String>) {
    sqlx::raw_sql("begin").execute(&mut *target).await.unwrap();
    if let Some(sql) = change {
        sqlx::raw_sql(sql).execute(&mut *target).await.unwrap();
    }
    let compared = verify::compare(source, target, url, tables, tenant)
        .await
        .unwrap();
    sqlx::raw_sql("rollback")
        .execute(&mut *target)
        .await
        .unwrap();
    compared
}
