//! A tenant that grows out of the shared tier keeps its subscription and
//! its billing history in the control database: the operator's records
//! about it (control.operator_tables, V58) are neither copied to its new
//! placement nor purged from control with its rows.

use super::*;

/// The rows of `table` of the tenant in `schema`.
async fn rows(pool: &PgPool, schema: &str, table: &str, tenant: Uuid) -> i64 {
    sqlx::query_scalar(&format!(
        "select count(*) from \"{schema}\".\"{table}\" where tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_move_and_its_purge_leave_the_operators_records_in_control() {
    let fx = fixture(20).await;
    // A subscription with a closed month: a draft invoice and its line
    // (the fixture's cluster is this control database's: its usage is here).
    sqlx::raw_sql(&format!(
        "update control.clusters set home = true where cluster = 'local';
         insert into plans (plan_code, label, monthly_price) values ('moved', 'Moved', 300000);
         select billing_clock_set('2026-11-01T03:00:00Z');
         update tenants set plan_code = 'moved' where tenant_id = '{t}';
         select billing_clock_set('2026-12-01T03:00:00Z');
         select billing_month_end_of('{t}');
         select billing_clock_set(null);",
        t = fx.tenant
    ))
    .execute(&fx.db.owner)
    .await
    .unwrap();
    let operators: Vec<String> =
        sqlx::query_scalar("select table_name from control.operator_tables order by 1")
            .fetch_all(&fx.db.owner)
            .await
            .unwrap();
    let billed = [
        "subscriptions",
        "subscription_plan_changes",
        "billing_invoices",
        "billing_invoice_lines",
    ];
    for t in billed {
        assert!(
            operators.iter().any(|o| o == t),
            "{t} is not an operator's table"
        );
        assert_eq!(
            rows(&fx.db.owner, "public", t, fx.tenant).await,
            1,
            "{t} before the move"
        );
    }

    schema_target(&fx.db, "tenant_billed").await;
    let move_id = plan(
        &fx.db,
        fx.tenant,
        "schema",
        &fx.db.name,
        Some("tenant_billed"),
    )
    .await;
    let (from, to) = (
        endpoint(&fx.db.name, None),
        endpoint(&fx.db.name, Some("tenant_billed")),
    );
    assert_eq!(run_mover(&fx.db, move_id, &from, &to).await, Outcome::Done);
    let m = tenant_moves::get(&fx.db.owner, move_id)
        .await
        .unwrap()
        .unwrap();
    let purged = tenant_moves::purge(&fx.db.owner, &m, &from, &to)
        .await
        .unwrap();
    assert!(purged > 0, "the purge deleted nothing");

    // The tenant's rows went (its customers), the operator's stayed.
    assert_eq!(
        rows(&fx.db.owner, "public", "customers", fx.tenant).await,
        0
    );
    assert_eq!(
        rows(&fx.db.owner, "tenant_billed", "customers", fx.tenant).await,
        20
    );
    for t in billed {
        assert_eq!(
            rows(&fx.db.owner, "public", t, fx.tenant).await,
            1,
            "{t} in control after the purge"
        );
        assert_eq!(
            rows(&fx.db.owner, "tenant_billed", t, fx.tenant).await,
            0,
            "{t} copied to the placement"
        );
    }
}
