//! The freeze, only for the last catch-up, and the switch inside it.
//!
//! The mover asks for the tenant's freeze lock exclusively (a session
//! advisory lock in the source database). From that instant every new
//! write of the tenant is refused by the capture trigger (BZ503, retryable:
//! its `pg_try_advisory_xact_lock_shared` fails behind a waiting exclusive
//! request), and the lock is granted once the writes already under way
//! have ended. Then: the last changes, the sequences, a snapshot of the
//! target for the verification, the fence that refuses the tenant's
//! writes in the source from now on, the placement switched, and the lock
//! released. A mover that
//! dies while frozen loses its connection and with it the lock: the
//! source is writable again at once.

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::capture;
use super::catalog::{ident, Table, EXTENSION_SCHEMA};
use super::catch_up;
use super::records;
use super::row::MoveRow;

/// Which placement records the switch writes besides the catalogue (the
/// databases of the move that are not the control database).
pub struct Records<'a> {
    pub the_move: &'a MoveRow,
    pub write_source: bool,
    pub write_target: bool,
}

/// How a freeze ended.
pub enum Frozen {
    /// Switched: the target's snapshot as of the switch (for verify) and
    /// how long the tenant's writes were refused.
    Switched {
        snapshot: PgConnection,
        freeze: Duration,
        /// Where the freeze went, in ms per step (`freeze_phases` of the
        /// move's progress): waiting for the lock, the last changes, the
        /// tables the capture cannot follow, the sequences, the fence,
        /// the placement records, the catalogue's switch.
        phases: serde_json::Value,
    },
    /// The lock was not granted in time (a long write of the tenant): the
    /// writes go on, the move catches up and tries again.
    NotNow(Duration),
}

#[allow(clippy::too_many_arguments)]
pub async fn freeze_and_switch(
    control: &PgPool,
    lock_conn: &mut PgConnection,
    source: &mut PgConnection,
    target: &mut PgConnection,
    target_url: &str,
    tables: &[Table],
    serials: &[(String, String)],
    move_id: Uuid,
    tenant: Uuid,
    same_database: bool,
    records: &Records<'_>,
    lock_wait: Duration,
    hold: Duration,
) -> Result<Frozen, sqlx::Error> {
    let key = capture::lock_key(lock_conn, tenant).await?;
    // The verification's connection to the target, opened before the
    // freeze (its snapshot is taken in it).
    let mut snapshot = super::connection::connect(target_url).await?;
    sqlx::query(&format!(
        "set lock_timeout = {}",
        lock_wait.as_millis().max(1)
    ))
    .execute(&mut *lock_conn)
    .await?;
    let started = Instant::now();
    match sqlx::query("select pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *lock_conn)
        .await
    {
        Ok(_) => {}
        Err(sqlx::Error::Database(d)) if d.code().as_deref() == Some("55P03") => {
            return Ok(Frozen::NotNow(started.elapsed()));
        }
        Err(e) => return Err(e),
    }
    let locked = started.elapsed();
    let mut phases = serde_json::Map::new();
    phases.insert("lock_ms".into(), (locked.as_millis() as u64).into());
    let result = async {
        let mut mark = Instant::now();
        let mut lap = |phases: &mut serde_json::Map<String, serde_json::Value>, name: &str| {
            phases.insert(name.into(), (mark.elapsed().as_millis() as u64).into());
            mark = Instant::now();
        };
        if !hold.is_zero() {
            // Tests stop the mover here, holding the lock.
            tokio::time::sleep(hold).await;
        }
        lap(&mut phases, "hold_ms");
        let mut changes = 0;
        loop {
            let n = catch_up::round(source, target, tables, move_id, tenant, 100_000).await?;
            changes += n;
            if n == 0 {
                break;
            }
        }
        phases.insert("changes".into(), changes.into());
        lap(&mut phases, "catch_up_ms");
        catch_up::sync_uncaptured(source, target, tables, tenant).await?;
        lap(&mut phases, "uncaptured_ms");
        sync_sequences(source, target, serials, tenant, same_database).await?;
        lap(&mut phases, "sequences_ms");
        sqlx::Executor::execute(
            &mut snapshot,
            "begin isolation level repeatable read; select 1",
        )
        .await?;
        capture::fence(source, move_id, tenant).await?;
        lap(&mut phases, "fence_ms");
        // The placement records outside the control database: the source's
        // first (its requests routed with the old version are refused from
        // now on), then the target's, then the catalogue.
        let (placement, secret) = records::target_placement(control, records.the_move).await?;
        if records.write_source {
            records::write(source, &placement, &secret).await?;
        }
        if records.write_target {
            records::write(target, &placement, &secret).await?;
        }
        lap(&mut phases, "records_ms");
        sqlx::query_scalar::<_, i64>("select tenant_move_switch($1)")
            .bind(move_id)
            .fetch_one(control)
            .await?;
        lap(&mut phases, "switch_ms");
        Ok::<_, sqlx::Error>(snapshot)
    }
    .await;
    let unlocked = sqlx::query("select pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *lock_conn)
        .await;
    let freeze = started.elapsed();
    let snapshot = result?;
    unlocked?;
    Ok(Frozen::Switched {
        snapshot,
        freeze,
        phases: phases.into(),
    })
}

/// The serial and identity sequences of the copied tables, source and
/// target (read once, before the freeze).
pub async fn serial_sequences(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let query = "select a.attname::text, pg_get_serial_sequence(format('%I.%I', $1::text, $2::text), a.attname)
                   from pg_attribute a
                  where a.attrelid = format('%I.%I', $1::text, $2::text)::regclass
                    and a.attnum > 0 and not a.attisdropped
                    and pg_get_serial_sequence(format('%I.%I', $1::text, $2::text), a.attname) is not null";
    let mut pairs = Vec::new();
    for t in tables {
        let src: Vec<(String, String)> = sqlx::query_as(query)
            .bind(&t.schema)
            .bind(&t.name)
            .fetch_all(&mut *source)
            .await?;
        let dst: Vec<(String, String)> = sqlx::query_as(query)
            .bind(&t.target_schema)
            .bind(&t.name)
            .fetch_all(&mut *target)
            .await?;
        for (column, seq) in src {
            if let Some((_, d)) = dst.iter().find(|(c, _)| *c == column) {
                pairs.push((seq, d.clone()));
            }
        }
    }
    Ok(pairs)
}

/// The target's sequences brought up to the source's: the serial and
/// identity columns of the copied tables (never lowered), and across
/// databases the tenant's business-number sequences (`bizos.id_sequences`,
/// one sequence per tenant, kind and year, created in the target with the
/// same name, owner and value). Numbers go on from where the source was.
pub async fn sync_sequences(
    source: &mut PgConnection,
    target: &mut PgConnection,
    serials: &[(String, String)],
    tenant: Uuid,
    same_database: bool,
) -> Result<(), sqlx::Error> {
    let mut tx = target.begin().await?;
    for (src, dst) in serials {
        let (last, called): (i64, bool) =
            sqlx::query_as(&format!("select last_value, is_called from {src}"))
                .fetch_one(&mut *source)
                .await?;
        if called {
            sqlx::query(&format!(
                "select setval($2::regclass, greatest($1, (select last_value from {dst})))"
            ))
            .bind(last)
            .bind(dst)
            .execute(&mut *tx)
            .await?;
        }
    }
    if !same_database {
        let rows: Vec<(String, i32, String, String, String, i64, bool)> = sqlx::query_as(
            "select s.kind, s.year, n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text,
                    0::bigint, false
               from bizos.id_sequences s join pg_class c on c.oid = s.seq
               join pg_namespace n on n.oid = c.relnamespace
              where s.tenant_id = $1",
        )
        .bind(tenant)
        .fetch_all(&mut *source)
        .await?;
        sqlx::query("set local session_replication_role = replica")
            .execute(&mut *tx)
            .await?;
        for (kind, year, nsp, name, owner, _, _) in rows {
            let q = format!("{}.{}", ident(&nsp), ident(&name));
            let (last, called): (i64, bool) =
                sqlx::query_as(&format!("select last_value, is_called from {q}"))
                    .fetch_one(&mut *source)
                    .await?;
            sqlx::Executor::execute(
                &mut *tx,
                format!(
                    "create sequence if not exists {q} as bigint; alter sequence {q} owner to {};",
                    ident(&owner)
                )
                .as_str(),
            )
            .await?;
            sqlx::query("select setval($1::regclass, $2, $3)")
                .bind(&q)
                .bind(last)
                .bind(called)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "insert into {EXTENSION_SCHEMA}.id_sequences (tenant_id, kind, year, seq)
                 values ($1, $2, $3, $4::regclass)
                 on conflict (tenant_id, kind, year) do update set seq = excluded.seq"
            ))
            .bind(tenant)
            .bind(&kind)
            .bind(year)
            .bind(&q)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// The tenant's business-number sequences in the target, dropped (a move
/// across databases rolled back).
pub async fn drop_sequences(target: &mut PgConnection, tenant: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = target.begin().await?;
    let seqs: Vec<String> = sqlx::query_scalar(
        "delete from bizos.id_sequences where tenant_id = $1 returning seq::regclass::text",
    )
    .bind(tenant)
    .fetch_all(&mut *tx)
    .await?;
    for s in seqs {
        sqlx::Executor::execute(&mut *tx, format!("drop sequence if exists {s}").as_str()).await?;
    }
    tx.commit().await
}
