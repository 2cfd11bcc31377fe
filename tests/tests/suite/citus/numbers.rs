//! Business numbers on Citus taken by the database owner's functions. Citus
//! allows one user per shard in a transaction ("cannot perform query on
//! placements that were modified in this transaction by a different
//! user"), and `next_id` used to count as the extension owner: the
//! month-end, which writes a tenant's invoice as the database owner and
//! then takes the operator's number (counted under the zero tenant), failed
//! for every tenant whose shard holds that counter, one in 32. Now the
//! owner's functions count as the owner (extension/src/privilege.rs,
//! `as_citus_user_of`; the grant in sql/citus/extension.sql).

use bizos_tests::TestDb;
use uuid::Uuid;

use crate::billing::lifecycle::{clock, plan};

/// The zero tenant: the operator's own series (its invoice numbers).
const OPERATOR: &str = "00000000-0000-0000-0000-000000000000";

#[tokio::test]
async fn the_operators_invoice_number_is_taken_for_a_tenant_on_the_counters_shard() {
    let db = TestDb::on_citus().await;
    // A tenant id that hashes to the shard of the operator's counter.
    let tenant: Uuid = sqlx::query_scalar(
        "select u from (select gen_random_uuid() as u from generate_series(1, 5000)) g
          where get_shard_id_for_distribution_column('bizos.id_counters', u)
              = get_shard_id_for_distribution_column('bizos.id_counters', $1::uuid)
          limit 1",
    )
    .bind(OPERATOR)
    .fetch_one(&db.owner)
    .await
    .expect("a tenant id on the counter's shard");
    let (tenant_shard, counter_shard): (i64, i64) = sqlx::query_as(
        "select get_shard_id_for_distribution_column('billing_invoices', $1::uuid),
                get_shard_id_for_distribution_column('billing_invoices', $2::uuid)",
    )
    .bind(tenant)
    .bind(OPERATOR)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        tenant_shard, counter_shard,
        "the invoice's shard holds the counter"
    );

    plan(&db, "basic", 310_000, 0).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    // tenant_create() with a chosen id: the row, the defaults, the plan.
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("insert into tenants (tenant_id, slug, name) values ($1, 'numbers-shard', 'Tenant numbers-shard')")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select tenant_seed($1)")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select tenant_set_plan($1, 'basic')")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // December closed into a draft; after the grace period the draft is
    // finalized with the operator's first number, in the transaction that
    // wrote the tenant's rows on that shard.
    clock(&db, "2026-12-31T17:30:00Z").await;
    let month_end = || async {
        sqlx::query_scalar::<_, i32>("select billing_month_end_of($1)")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
    };
    assert_eq!(month_end().await.expect("the close"), 1);
    clock(&db, "2027-01-04T18:00:00Z").await;
    month_end().await.expect("the finalization");
    let (status, number, total): (String, Option<String>, String) = sqlx::query_as(
        "select status, invoice_no, total::text from billing_invoices where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let year = chrono::Datelike::year(&chrono::Utc::now());
    assert_eq!(
        (status.as_str(), number, total.as_str()),
        ("finalized", Some(format!("BIL-{year}-000001")), "344100")
    );
}
