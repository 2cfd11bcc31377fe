//! Moving a tenant's shards online (Citus's logical shard transfer, its
//! default mode) while the cluster serves writes, and what a move needs:
//! a row identity on every distributed table, and every table a migration
//! adds to a distributed schema in its Citus form.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::citus_cluster::{own_database, pool_as, pool_in, url_for};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use uuid::Uuid;

use super::{user, worker_of, year_of};

/// Citus moves a co-location group online by logical replication, which
/// replays the old placement's UPDATEs and DELETEs on the new one by a row
/// identity: it refuses the whole group's move if one of its tables has
/// neither a primary key nor a REPLICA IDENTITY (kb_stats and kb_terms
/// had none before V49).
#[tokio::test]
async fn every_distributed_table_has_a_primary_key_or_replica_identity() {
    let owner = pool_as("bizos_owner").await;
    let distributed: i64 =
        sqlx::query_scalar("select count(*) from pg_dist_partition where partmethod = 'h'")
            .fetch_one(&owner)
            .await
            .unwrap();
    assert!(distributed > 50, "{distributed} distributed tables");
    // Citus's own test (RelationCanPublishAllModifications): REPLICA
    // IDENTITY FULL, or an index that identifies a row (the primary key
    // by default, or the one REPLICA IDENTITY USING INDEX names).
    let without: Vec<String> = sqlx::query_scalar(
        "select d.logicalrelid::regclass::text
           from pg_dist_partition d join pg_class c on c.oid = d.logicalrelid
          where d.partmethod = 'h'
            and c.relreplident <> 'f'
            and not exists (
                  select 1 from pg_index i
                   where i.indrelid = c.oid
                     and case c.relreplident when 'i' then i.indisreplident
                                             when 'd' then i.indisprimary
                                             else false end)
          order by 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(
        without.is_empty(),
        "distributed tables that cannot move online: {without:?}"
    );
}

/// A table a migration adds to a schema that is distributed already
/// (refunds, credit notes and customer merges came so) with a policy that
/// reads another table: the next `bizos migrate` gives it the Citus form
/// of its policy and distributes it. Simulated on customer_merges, made
/// local again with its single-node policy (V44's), as it was right after
/// its migration on such a database.
#[tokio::test]
async fn a_table_added_to_a_distributed_schema_gets_its_citus_form_at_the_next_migrate() {
    // Its own database: undistributing a table locks every shard.
    let database = own_database("late").await;
    let owner = pool_in("bizos_owner", &database).await;
    let group = |table: &'static str| {
        let owner = owner.clone();
        async move {
            sqlx::query_scalar::<_, Option<i32>>(
                "select (select colocationid from pg_dist_partition
                          where logicalrelid = $1::regclass and partmethod = 'h')",
            )
            .bind(table)
            .fetch_one(&owner)
            .await
            .unwrap()
        }
    };
    let tenants_group = group("customers").await.expect("customers distributed");

    let mut tx = owner.begin().await.unwrap();
    // As distribute.sql: the keys to reference tables want one connection
    // per node.
    sqlx::query("set local citus.multi_shard_modify_mode to 'sequential'")
        .execute(&mut *tx)
        .await
        .unwrap();
    let keys: Vec<String> = sqlx::query_scalar(
        "select conname::text from pg_constraint
          where conrelid = 'customer_merges'::regclass and contype = 'f'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    for key in keys {
        // Citus keeps no foreign key from a local table to a distributed
        // one; distribute.sql adds the table's keys of a fresh migration.
        sqlx::query(&format!(
            "alter table customer_merges drop constraint \"{key}\""
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    sqlx::query("select undistribute_table('customer_merges')")
        .execute(&owner)
        .await
        .unwrap();
    sqlx::query(
        "alter policy \"merges are visible with their surviving customer\" on customer_merges
           using (tenant_id = (select bizos.tenant_id())
                  and exists (select 1 from customers c
                               where c.tenant_id = customer_merges.tenant_id
                                 and c.customer_id = customer_merges.customer_id))",
    )
    .execute(&owner)
    .await
    .unwrap();
    assert_eq!(group("customer_merges").await, None, "local again");

    let report = bizos_sql::migrate_report(&url_for("bizos_owner", &database), None)
        .await
        .expect("migrate places the added table");
    assert!(report.migrations.is_empty(), "{report:?}");
    assert_eq!(
        group("customer_merges").await,
        Some(tenants_group),
        "distributed with the tenant tables"
    );
    let policy: String = sqlx::query_scalar(
        "select qual from pg_policies
          where tablename = 'customer_merges'
            and policyname = 'merges are visible with their surviving customer'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert!(
        policy.contains("citus_visible_row(") && !policy.to_lowercase().contains("select"),
        "{policy}"
    );
    // And again: nothing left to place, the distributed tables untouched.
    bizos_sql::migrate_report(&url_for("bizos_owner", &database), None)
        .await
        .expect("a second run");
}

/// One client's writes: each lead it tried, when it started, how long it
/// took, and the answer.
struct Write {
    started: Instant,
    took: Duration,
    status: u16,
    lead_no: Option<String>,
    /// The answer's body when it is not 201.
    error: Option<String>,
}

/// Creates leads for `caller` through the BFF until `stop`, one after the
/// other.
async fn keep_writing(
    app: Arc<bizos_tests::TestApp>,
    caller: Caller,
    client: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = serde_json::json!({
            "channel": "website", "company_name": format!("PT Online {client}-{n}"),
            "contact_name": "Budi",
            "contact_email": format!("budi{client}x{n}@{}.co.id", caller.tenant_id.simple())});
        let started = Instant::now();
        let (status, lead) = app.post_json(&caller, "/api/leads", &body, None).await;
        writes.push(Write {
            started,
            took: started.elapsed(),
            status,
            lead_no: lead["lead_no"].as_str().map(str::to_owned),
            error: (status != 201).then(|| lead.to_string()),
        });
    }
    writes
}

/// A pool of the superuser on the node at `port`, in `database`.
async fn node_pool(database: &str, port: i32) -> PgPool {
    let options = url_for("postgres", database)
        .parse::<PgConnectOptions>()
        .expect("valid DSN")
        .port(u16::try_from(port).expect("a TCP port"))
        .ssl_mode(PgSslMode::Disable);
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("connect to a worker")
}

/// Watches the shard move's subscriptions on the target node until
/// `watching` ends: how many it saw, and those whose apply worker failed
/// (PostgreSQL counts the errors per subscription) or was gone after it
/// had run.
async fn watch_subscriptions(target: PgPool, watching: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut failing = std::collections::BTreeSet::new();
    while watching.load(Ordering::Relaxed) {
        let rows: Vec<(String, Option<i32>, i64)> = sqlx::query_as(
            "select s.subname::text, st.pid, coalesce(x.apply_error_count, 0)
               from pg_subscription s
               left join pg_stat_subscription st on st.subid = s.oid and st.relid is null
               left join pg_stat_subscription_stats x on x.subid = s.oid
              where s.subname like 'citus_shard_move_subscription_%' and s.subenabled",
        )
        .fetch_all(&target)
        .await
        .unwrap_or_default();
        for (name, pid, errors) in rows {
            if errors > 0 || (pid.is_none() && seen.contains(&name)) {
                failing.insert(format!("{name}: {errors} apply errors, worker {pid:?}"));
            }
            if pid.is_some() {
                seen.insert(name);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (seen.len(), failing.into_iter().collect())
}

/// Tenants made with tenant_create() until `moved` has `per_worker`
/// neighbours on each worker.
async fn neighbours(owner: &PgPool, moved: Uuid, per_worker: usize) -> Vec<Uuid> {
    let home = worker_of(owner, moved).await;
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for i in 0..64 {
        let t: Uuid = sqlx::query_scalar("select tenant_create($1, 'Citus neighbour')")
            .bind(format!("citus-online-n{i}"))
            .fetch_one(owner)
            .await
            .unwrap();
        let list = if worker_of(owner, t).await == home {
            &mut same
        } else {
            &mut other
        };
        if list.len() < per_worker {
            list.push(t);
        }
        if same.len() == per_worker && other.len() == per_worker {
            return same.into_iter().chain(other).collect();
        }
    }
    panic!("no {per_worker} tenants on each worker within 64 tries");
}

/// The DBA's procedure of docs/citus.md ("Moving a tenant"): the tenant is
/// split off into shards of its own with `isolate_tenant_to_new_shard`
/// (blocking its shard's writes while it copies them) and moved to the
/// other worker online with `citus_move_shard_placement` (Citus's default,
/// logical mode), and the old shards are cleaned up, while 4 clients create leads of that
/// tenant and 4 of four others (two on its worker, two on the target)
/// through the BFF on the coordinator. No write of the others fails; every
/// write of the moved tenant commits (its writes wait for the switch only;
/// the test prints the waits); each tenant's numbers are gapless, with one
/// lead per number and per committed write; every chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_moves_online_while_it_and_others_keep_writing() {
    // Its own database: splitting and moving shards takes locks the other
    // tests' requests would wait on.
    let database = own_database("online").await;
    let owner = pool_in("bizos_owner", &database).await;
    let superuser = pool_in("postgres", &database).await;
    let moved: Uuid = sqlx::query_scalar("select tenant_create('citus-online-moved', 'Pindah')")
        .fetch_one(&owner)
        .await
        .unwrap();
    let others = neighbours(&owner, moved, 2).await;
    let from = worker_of(&owner, moved).await;
    let to = worker_of(&owner, others[2]).await;
    assert_ne!(from, to);
    // A pool for every client: while the split blocks the moved tenant's
    // writes, each of them holds a connection of the BFF's pool, and with
    // the tests' usual 5 the others' requests waited for one until the
    // acquire timeout (5 s) and answered 503.
    let app = Arc::new(
        bizos_tests::spawn_app_at(
            format!("{}?sslmode=disable", url_for("bizos_app", &database)),
            None,
            &[("BIZOS_DB_MAX_CONNECTIONS", "16")],
        )
        .await,
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..8 {
        let tenant = if client < 4 {
            moved
        } else {
            others[client - 4]
        };
        let caller = user(&owner, tenant, "super_admin").await;
        clients.push((
            tenant,
            tokio::spawn(keep_writing(app.clone(), caller, client, stop.clone())),
        ));
    }

    // Writes before, during and after the move.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let move_started = Instant::now();
    // The split blocks the writes of the split shard's tenants while it
    // copies them: Citus 13.2.2's logical split lost the UPDATEs made
    // meanwhile (docs/citus.md, "Moving a tenant"). The move is online.
    let shard: i64 = sqlx::query_scalar(
        "select isolate_tenant_to_new_shard('leads', $1, 'CASCADE', shard_transfer_mode => 'block_writes')",
    )
    .bind(moved)
    .fetch_one(&superuser)
    .await
    .expect("split off");
    let isolated = move_started.elapsed();
    // The move's subscriptions on the target, watched while it runs
    // (docs/citus.md, "Moving a tenant", step 4).
    let watching = Arc::new(AtomicBool::new(true));
    let watch = tokio::spawn(watch_subscriptions(
        node_pool(&database, to).await,
        watching.clone(),
    ));
    sqlx::query("select citus_move_shard_placement($1, '127.0.0.1', $2, '127.0.0.1', $3)")
        .bind(shard)
        .bind(from)
        .bind(to)
        .execute(&superuser)
        .await
        .expect("moved online");
    let moved_at = move_started.elapsed();
    watching.store(false, Ordering::Relaxed);
    let (seen, failing) = watch.await.unwrap();
    assert!(seen > 0, "the move's subscriptions were seen");
    // Citus 13.2.2 takes the least LSN of the subscriptions whose apply
    // worker runs for theirs; one that keeps failing is left out, and the
    // move switches without its table's changes.
    assert!(
        failing.is_empty(),
        "subscriptions of the move that failed (their changes may be lost): {failing:?}"
    );
    // The old placements (deferred drops of the split and the move).
    sqlx::query("call citus_cleanup_orphaned_resources()")
        .execute(&superuser)
        .await
        .expect("old shards dropped");
    let cleaned = move_started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(worker_of(&owner, moved).await, to, "the tenant moved");

    let (mut report, mut failures) = (Vec::new(), Vec::new());
    let mut committed: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
    let mut answered_at: std::collections::HashMap<String, Instant> = Default::default();
    for (tenant, task) in clients {
        let writes = task.await.unwrap();
        answered_at.extend(
            writes
                .iter()
                .filter_map(|w| Some((w.lead_no.clone()?, w.started + w.took))),
        );
        committed
            .entry(tenant)
            .or_default()
            .extend(writes.iter().filter_map(|w| w.lead_no.clone()));
        let failed: Vec<(u16, Duration, &str)> = writes
            .iter()
            .filter(|w| w.status != 201)
            .map(|w| {
                (
                    w.status,
                    w.started.saturating_duration_since(move_started),
                    w.error.as_deref().unwrap_or_default(),
                )
            })
            .collect();
        if !failed.is_empty() {
            failures.push(format!(
                "{} client of {tenant}: writes that failed (status, since the move began, answer): {failed:?}",
                if tenant == moved { "the moved tenant's" } else { "another tenant's" }
            ));
        }
        // The longest write that overlapped each phase (since the move
        // began): before it, the split, the move, the cleanup, after it.
        let at = |offset: Duration| move_started + offset;
        let phases = [
            ("before", None, Some(move_started)),
            ("split", Some(move_started), Some(at(isolated))),
            ("move", Some(at(isolated)), Some(at(moved_at))),
            ("cleanup", Some(at(moved_at)), Some(at(cleaned))),
            ("after", Some(at(cleaned)), None),
        ];
        let longest: Vec<String> = phases
            .iter()
            .map(|(name, from, to)| {
                let max = writes
                    .iter()
                    .filter(|w| {
                        to.is_none_or(|to| w.started < to)
                            && from.is_none_or(|from| w.started + w.took >= from)
                    })
                    .map(|w| w.took)
                    .max();
                format!("{name} {:.1?}", max.unwrap_or_default())
            })
            .collect();
        report.push(format!(
            "{} {tenant}: {} writes; longest {}",
            if tenant == moved {
                "moved  "
            } else {
                "another"
            },
            writes.len(),
            longest.join(", "),
        ));
    }
    eprintln!(
        "tenant move: split {isolated:?}, moved at {moved_at:?}, cleaned at {cleaned:?}\n{}",
        report.join("\n")
    );
    eprintln!("failed writes: {failures:#?}");

    // Each tenant's numbers: one lead per committed write, gapless from 1.
    for (tenant, mut answered) in committed {
        let year = year_of(&owner, tenant).await;
        let numbers: Vec<String> =
            sqlx::query_scalar("select lead_no from leads where tenant_id = $1 order by lead_no")
                .bind(tenant)
                .fetch_all(&superuser)
                .await
                .unwrap();
        assert!(numbers.len() > 4, "{tenant}: {} leads", numbers.len());
        answered.sort();
        // What a failure needs to be understood: the counter, the committed
        // writes that are not there (lost) and the numbers nobody got.
        let counter: Option<i64> = sqlx::query_scalar(
            "select last_value from bizos.id_counters where tenant_id = $1 and kind = 'lead'",
        )
        .bind(tenant)
        .fetch_optional(&superuser)
        .await
        .unwrap();
        let stored: std::collections::BTreeSet<&String> = numbers.iter().collect();
        let lost: Vec<(&String, Duration)> = answered
            .iter()
            .filter(|n| !stored.contains(n))
            .map(|n| (n, answered_at[n].saturating_duration_since(move_started)))
            .collect();
        let given: std::collections::BTreeSet<&String> = answered.iter().collect();
        let skipped = (1..=counter.unwrap_or(0))
            .map(|i| format!("LEAD-{year}-{i:06}"))
            .filter(|n| !given.contains(n) && !stored.contains(n))
            .count();
        eprintln!(
            "{tenant}: counter {counter:?}, {} leads, {} committed writes; committed but not stored \
             (number, answered since the move began): {lost:?}; numbers neither answered nor stored: {skipped}",
            numbers.len(),
            answered.len()
        );
        let expected: Vec<String> = (1..=numbers.len())
            .map(|i| format!("LEAD-{year}-{i:06}"))
            .collect();
        assert_eq!(numbers, expected, "{tenant}: gapless, no number twice");
        assert_eq!(
            answered, numbers,
            "{tenant}: the leads are the committed writes"
        );
        let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
            .bind(tenant)
            .fetch_one(&superuser)
            .await
            .unwrap();
        assert_eq!(breaks, 0, "{tenant}: the audit chains verify");
    }
    // Every write of every tenant committed: a deadlock's victim ran again
    // (bff/src/retry.rs) instead of answering 503.
    assert!(failures.is_empty(), "writes that failed: {failures:#?}");
}
