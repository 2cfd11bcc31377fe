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
