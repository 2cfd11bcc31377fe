//! The placement records a move keeps true outside the control database,
//! and the leftovers of an earlier move that a move back replaces.
//!
//! In the control database the catalogue row is the tenant's placement
//! record (`tenant_move_switch` writes it). Every other placement database
//! keeps a record of its own tenants, which `control.placement_check`
//! reads to refuse a request routed with an older version: at the switch
//! the mover writes the new placement into the source (its requests routed
//! there are refused from then on and routed again) and into the target
//! (it knows its tenant, as a database made for a tenant does), each under
//! the placement lock held exclusively, before the catalogue names the
//! target.
//!
//! A move back to where an earlier move of the tenant came from (shared →
//! isolated → shared) lands on that move's source rows, which wait there
//! for their purge: its capture triggers and fence would refuse the
//! tenant's writes there, and its purge would delete the rows the tenant
//! lives on. The new move drops them before it copies and marks the
//! earlier move `superseded_by` it, which its purge respects.

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::capture;
use super::row::{advance, MoveRow};
use crate::placement::{record, Placement, Tier};

/// Which database a connection is on: its name, its cluster's start time
/// and port. Equal for the control pool and a mover's connection exactly
/// when they reach the same database (the catalogue's cluster names may
/// differ from how the mover was told to connect).
pub async fn identity(
    conn: impl sqlx::PgExecutor<'_>,
) -> Result<(String, String, i32), sqlx::Error> {
    sqlx::query_as(
        "select current_database()::text, pg_postmaster_start_time()::text,
                coalesce(inet_server_port(), 0)",
    )
    .fetch_one(conn)
    .await
}

/// The placement the move makes, with the version the switch gives it
/// (the catalogue's + 1), and the secret naming its cluster's URL.
pub async fn target_placement(
    control: &PgPool,
    m: &MoveRow,
) -> Result<(Placement, String), sqlx::Error> {
    let (region, version): (String, i64) = sqlx::query_as(
        "select region, version from control.tenant_placements where tenant_id = $1",
    )
    .bind(m.tenant_id)
    .fetch_one(control)
    .await?;
    let tier = match m.to_tier.as_str() {
        "shared" => Tier::Shared,
        "schema" => Tier::Schema,
        _ => Tier::Isolated,
    };
    Ok((
        Placement {
            tenant_id: m.tenant_id,
            region,
            tier,
            cluster: m.to_cluster.clone(),
            database_name: m.to_database.clone(),
            schema_name: m.to_schema.clone(),
            version: version + 1,
        },
        m.to_url_secret.clone().unwrap_or_default(),
    ))
}

/// Writes `p` as the database's record of the tenant, under the placement
/// lock (waiting at most 5 s for the tenant's requests under way there).
pub async fn write(
    conn: &mut PgConnection,
    p: &Placement,
    url_secret: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("set local lock_timeout = '5s'")
        .execute(&mut *tx)
        .await?;
    record(&mut tx, p, url_secret)
        .await
        .map_err(|e| match e.downcast::<sqlx::Error>() {
            Ok(e) => e,
            Err(e) => sqlx::Error::Protocol(e.to_string()),
        })?;
    tx.commit().await
}

/// Earlier finished moves of the tenant whose source is this move's
/// target and whose rows there were not purged: their triggers, fence and
/// recorded changes dropped in the target, and each marked superseded (its
/// purge then deletes nothing). Safe to run again.
pub async fn retire_superseded(
    control: &PgPool,
    target: &mut PgConnection,
    m: &MoveRow,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let earlier: Vec<Uuid> = sqlx::query_scalar(
        "select move_id from control.tenant_moves
          where tenant_id = $1 and move_id <> $2 and state = 'done'
            and from_cluster = $3 and from_database = $4
            and coalesce(from_schema, 'public') = coalesce($5, 'public')
            and not progress ? 'purged_rows'",
    )
    .bind(m.tenant_id)
    .bind(m.move_id)
    .bind(&m.to_cluster)
    .bind(&m.to_database)
    .bind(&m.to_schema)
    .fetch_all(control)
    .await?;
    for old in &earlier {
        capture::remove(target, *old).await?;
        capture::unfence(target, *old).await?;
        capture::forget_changes(target, *old).await?;
        advance(
            control,
            *old,
            &["done"],
            "done",
            json!({"superseded_by": m.move_id}),
            None,
        )
        .await?;
    }
    Ok(earlier)
}

/// The database's record of the tenant as it is before the switch writes
/// it (its row of `control.tenant_placements` as JSON, or null) and
/// whether the row of the target's cluster is there (the switch adds it
/// when missing): what a rollback restores.
pub async fn snapshot(
    conn: &mut PgConnection,
    tenant: Uuid,
    cluster: &str,
) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar(
        "select jsonb_build_object(
                  'placement', (select to_jsonb(p) from control.tenant_placements p
                                 where p.tenant_id = $1),
                  'cluster', $2::text,
                  'cluster_there', exists (select 1 from control.clusters c where c.cluster = $2))",
    )
    .bind(tenant)
    .bind(cluster)
    .fetch_one(conn)
    .await
}

/// Puts the database's record of the tenant back as [`snapshot`] found
/// it, exactly (its version too: `record` never lowers one), under the
/// placement lock, and drops the cluster row the switch added. A move
/// rolled back after the mover wrote the record but before the catalogue
/// switched (it died in between) leaves the database as it was, so the
/// requests routed there with the catalogue's version pass again.
pub async fn restore(
    conn: &mut PgConnection,
    tenant: Uuid,
    before: &Value,
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("set local lock_timeout = '5s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("select control.placement_lock($1, true)")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from control.tenant_placements where tenant_id = $1")
        .bind(tenant)
        .execute(&mut *tx)
        .await?;
    let placement = before.get("placement").filter(|p| !p.is_null());
    if let Some(p) = placement {
        sqlx::query(
            "insert into control.tenant_placements
             select * from jsonb_populate_record(null::control.tenant_placements, $1)",
        )
        .bind(p)
        .execute(&mut *tx)
        .await?;
    }
    if before.get("cluster_there") == Some(&Value::Bool(false)) {
        sqlx::query(
            "delete from control.clusters c where c.cluster = $1
               and not exists (select 1 from control.tenant_placements p where p.cluster = c.cluster)",
        )
        .bind(before.get("cluster").and_then(Value::as_str))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
