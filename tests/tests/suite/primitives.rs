//! Extension primitives under concurrency and through the request role:
//! C1 business numbers, C3 audit chains, C2 normalisers in indexes.

use std::collections::HashSet;

use bizos_tests::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

async fn exec(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn numbered_table(db: &TestDb) {
    exec(
        &db.owner,
        "insert into bizos.id_kinds (kind, prefix, mode) values ('t_lead', 'LEAD', 'sequence'), ('t_inv', 'INV', 'gapless');
         create table t_leads (tenant_id uuid not null, id bigint generated always as identity, lead_no text,
                               primary key (tenant_id, id), unique (tenant_id, lead_no));
         create trigger t_leads_no before insert or update on t_leads
           for each row execute function bizos.assign_business_id('t_lead', 'lead_no');
         create table t_invoices (tenant_id uuid not null, id bigint generated always as identity, invoice_no text,
                                  primary key (tenant_id, id), unique (tenant_id, invoice_no));
         create trigger t_invoices_no before insert or update on t_invoices
           for each row execute function bizos.assign_business_id('t_inv', 'invoice_no');",
    )
    .await;
}

/// A pool of `size` connections as the database owner (which RLS does not
/// restrict), for tests that run sessions side by side.
async fn owner_pool(db: &TestDb, size: u32) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(size)
        .connect(&db.url("bizos_owner"))
        .await
        .unwrap()
}

/// A tenant table `name` (tenant_id, id, body) with the audit trigger.
async fn audited_table(db: &TestDb, name: &str) {
    exec(
        &db.owner,
        &format!(
            "create table {name} (tenant_id uuid not null, id bigint generated always as identity,
                                  body text, primary key (tenant_id, id));
             select bizos.enable_audit('{name}');"
        ),
    )
    .await;
}

fn serial(no: &str) -> i64 {
    no.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn sixteen_sessions_never_get_the_same_number() {
    let db = TestDb::new().await;
    numbered_table(&db).await;
    let tenant = Uuid::new_v4();
    let pool = owner_pool(&db, 16).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    sqlx::query("insert into t_leads (tenant_id) values ($1)")
                        .bind(tenant)
                        .execute(&pool)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let numbers: Vec<String> = sqlx::query_scalar("select lead_no from t_leads")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(numbers.len(), 8000);
    let distinct: HashSet<&String> = numbers.iter().collect();
    assert_eq!(distinct.len(), 8000, "duplicate business numbers");
    assert!(numbers
        .iter()
        .all(|n| n.starts_with("LEAD-") && n.len() == "LEAD-2026-000001".len()));
}

/// Every backend keeps a copy of `bizos.id_kinds` and `bizos.transitions`
/// (extension/src/cache.rs): a change another session commits reaches it
/// before its next number or status change; one rolled back never does.
#[tokio::test]
async fn a_changed_kind_or_transition_reaches_every_session_once_committed() {
    let db = TestDb::new().await;
    numbered_table(&db).await;
    exec(
        &db.owner,
        "insert into bizos.transitions (entity, from_status, to_status)
         values ('t_task', null, 'OPEN'), ('t_task', 'OPEN', 'DONE');
         create table t_tasks (tenant_id uuid not null, id int primary key, status text);
         create trigger t_tasks_guard before insert or update on t_tasks
           for each row execute function bizos.lifecycle_guard('t_task', 'status');",
    )
    .await;
    let tenant = Uuid::new_v4();
    let pool = owner_pool(&db, 2).await;
    let mut a = pool.acquire().await.unwrap();
    let mut b = pool.acquire().await.unwrap();
    let number = "insert into t_leads (tenant_id) values ($1) returning lead_no";
    async fn prefix(c: &mut sqlx::PgConnection, sql: &str, tenant: Uuid) -> String {
        let no: String = sqlx::query_scalar(sql)
            .bind(tenant)
            .fetch_one(c)
            .await
            .unwrap();
        no.split('-').next().unwrap().to_owned()
    }

    assert_eq!(prefix(&mut a, number, tenant).await, "LEAD");
    exec_on(
        &mut b,
        "update bizos.id_kinds set prefix = 'PROS' where kind = 't_lead'",
    )
    .await;
    assert_eq!(
        prefix(&mut a, number, tenant).await,
        "PROS",
        "a committed change"
    );

    exec_on(
        &mut b,
        "begin; update bizos.id_kinds set prefix = 'GONE' where kind = 't_lead'",
    )
    .await;
    assert_eq!(prefix(&mut a, number, tenant).await, "PROS");
    exec_on(&mut b, "rollback").await;
    assert_eq!(
        prefix(&mut a, number, tenant).await,
        "PROS",
        "a rolled-back change"
    );

    // The session's own change, seen by its next statement, gone with its
    // rollback.
    exec_on(
        &mut a,
        "begin; update bizos.id_kinds set prefix = 'OWN' where kind = 't_lead'",
    )
    .await;
    assert_eq!(prefix(&mut a, number, tenant).await, "OWN");
    exec_on(&mut a, "rollback").await;
    assert_eq!(prefix(&mut a, number, tenant).await, "PROS");

    let insert = format!("insert into t_tasks values ('{tenant}', 1, 'OPEN')");
    exec_on(&mut a, &insert).await;
    let close = "update t_tasks set status = 'CLOSED' where id = 1";
    let refused = sqlx::raw_sql(close).execute(&mut *a).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("cannot move from \"OPEN\" to \"CLOSED\""),
        "{refused}"
    );
    exec_on(
        &mut b,
        "insert into bizos.transitions (entity, from_status, to_status) values ('t_task', 'OPEN', 'CLOSED')",
    )
    .await;
    exec_on(&mut a, close).await;
    exec_on(
        &mut b,
        "delete from bizos.transitions where entity = 't_task' and to_status = 'DONE'",
    )
    .await;
    exec_on(
        &mut a,
        &format!("insert into t_tasks values ('{tenant}', 2, 'OPEN')"),
    )
    .await;
    let done = sqlx::raw_sql("update t_tasks set status = 'DONE' where id = 2")
        .execute(&mut *a)
        .await
        .unwrap_err();
    assert!(
        done.to_string()
            .contains("cannot move from \"OPEN\" to \"DONE\""),
        "a deleted transition: {done}"
    );
}

async fn exec_on(c: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn gapless_numbers_have_no_gap_among_committed_rows() {
    let db = TestDb::new().await;
    numbered_table(&db).await;
    let tenant = Uuid::new_v4();
    let pool = owner_pool(&db, 8).await;
    let tasks: Vec<_> = (0..8)
        .map(|worker| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query("insert into t_invoices (tenant_id) values ($1)")
                        .bind(tenant)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    // Every seventh transaction of each worker rolls back.
                    if (i + worker) % 7 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut serials: Vec<i64> =
        sqlx::query_scalar::<_, String>("select invoice_no from t_invoices")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|n| serial(n))
            .collect();
    serials.sort_unstable();
    let expected: Vec<i64> = (1..=serials.len() as i64).collect();
    assert!(serials.len() > 400, "{}", serials.len());
    assert_eq!(serials, expected, "gapless numbers must be 1..n");
}

#[tokio::test]
async fn requests_get_numbers_and_audit_without_touching_the_bookkeeping() {
    let db = TestDb::new().await;
    numbered_table(&db).await;
    exec(
        &db.owner,
        "alter table t_leads enable row level security;
         create policy own_tenant on t_leads for all to bizos_authenticated
           using (tenant_id = (select bizos.tenant_id())) with check (tenant_id = (select bizos.tenant_id()));
         grant select, insert, update, delete on t_leads to bizos_authenticated;
         select bizos.enable_audit('t_leads');",
    )
    .await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "salesperson").await;

    let mut tx = db.as_user(&user).await;
    let no: String =
        sqlx::query_scalar("insert into t_leads (tenant_id) values ($1) returning lead_no")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert!(no.ends_with("-000001"), "{no}");
    let own: String = sqlx::query_scalar("select bizos.next_id('t_lead')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert!(own.ends_with("-000002"), "{own}");
    tx.commit().await.unwrap();

    for sql in [
        "insert into bizos.audit_log (tenant_id, chain, seq, table_name, record_key, action, db_role, txid, at, prev_hash, hash)
         values (bizos.tenant_id(), 0, 99, 'x', '{}', 'INSERT', 'x', 1, now(), '', '')",
        "update bizos.audit_log set action = 'DELETE'",
        "delete from bizos.audit_log",
        "update bizos.id_counters set last_value = 0",
        "update bizos.id_kinds set prefix = 'HACK'",
        "select count(*) from bizos.audit_heads",
    ] {
        let mut tx = db.as_user(&user).await;
        let err = sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap_err();
        assert_eq!(err.as_database_error().unwrap().code().as_deref(), Some("42501"), "{sql}");
    }

    let mut tx = db.as_user(&user).await;
    let err = sqlx::query("select bizos.next_id('t_lead', $1)")
        .bind(Uuid::new_v4())
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("42501")
    );
    drop(tx);

    let (actor, role): (Uuid, String) = sqlx::query_as(
        "select actor, db_role from bizos.audit_log where table_name = 'public.t_leads'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((actor, role.as_str()), (user.user_id, "bizos_app"));
}

#[tokio::test]
async fn audit_chains_of_tenants_written_in_parallel_verify() {
    let db = TestDb::new().await;
    audited_table(&db, "t_notes").await;
    let tenants: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    let pool = owner_pool(&db, 12).await;
    let mut tasks = Vec::new();
    for worker in 0..12 {
        let pool = pool.clone();
        let tenant = tenants[worker % 4];
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                let mut tx = pool.begin().await.unwrap();
                let id: i64 = sqlx::query_scalar("insert into t_notes (tenant_id, body) values ($1, $2) returning id")
                    .bind(tenant)
                    .bind(format!("note {i}"))
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("update t_notes set body = body || ' (edited)' where tenant_id = $1 and id = $2")
                    .bind(tenant)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                if i % 10 == 0 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for tenant in &tenants {
        let entries: i64 =
            sqlx::query_scalar("select count(*) from bizos.audit_log where tenant_id = $1")
                .bind(tenant)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(entries, 3 * 90 * 2, "tenant {tenant}");
        let chains: i64 = sqlx::query_scalar(
            "select count(distinct chain) from bizos.audit_log where tenant_id = $1",
        )
        .bind(tenant)
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(chains >= 1);
        let breaks: Vec<(i16, i64, String)> =
            sqlx::query_as("select chain, seq, problem from bizos.audit_verify($1)")
                .bind(tenant)
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(breaks.is_empty(), "{breaks:?}");
    }
}

/// Eight open transactions of one tenant hold its eight chains, one each
/// (advisory locks that pg_locks shows); a ninth writer waits for one, and
/// gets it when they commit.
#[tokio::test]
async fn open_transactions_hold_a_chain_each_and_a_ninth_waits() {
    let db = TestDb::new().await;
    audited_table(&db, "t_memos").await;
    let tenant = Uuid::new_v4();
    let pool = owner_pool(&db, 10).await;
    let insert = "insert into t_memos (tenant_id, body) values ($1, 'memo')";
    // The tenant's first entry creates its chains (writers of a tenant
    // whose chains are not committed yet wait for them).
    sqlx::query(insert)
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    let mut open = Vec::new();
    let mut chains = HashSet::new();
    for _ in 0..8 {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("set local lock_timeout = '5s'")
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(insert)
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
        let chain: i16 = sqlx::query_scalar(
            "select chain from bizos.audit_log where tenant_id = $1 and txid = txid_current()",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        chains.insert(chain);
        open.push(tx);
    }
    assert_eq!(chains.len(), 8, "{chains:?}");
    let locks: i64 = sqlx::query_scalar(
        "select count(*) from pg_locks
          where locktype = 'advisory' and granted and objsubid between 16896 and 16903
            and database = (select oid from pg_database where datname = current_database())",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(locks, 8);

    let mut ninth = pool.begin().await.unwrap();
    sqlx::query("set local lock_timeout = '300ms'")
        .execute(&mut *ninth)
        .await
        .unwrap();
    let err = sqlx::query(insert)
        .bind(tenant)
        .execute(&mut *ninth)
        .await
        .expect_err("every chain is held: the ninth writer waits");
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("55P03"),
        "{err}"
    );
    ninth.rollback().await.unwrap();

    for tx in open {
        tx.commit().await.unwrap();
    }
    sqlx::query(insert)
        .bind(tenant)
        .execute(&pool)
        .await
        .unwrap();
    let (entries, heads): (i64, i64) = sqlx::query_as(
        "select (select count(*) from bizos.audit_log where tenant_id = $1),
                (select sum(seq)::bigint from bizos.audit_heads where tenant_id = $1)",
    )
    .bind(tenant)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((entries, heads), (10, 10));
    let breaks: Vec<(i16, i64, String)> =
        sqlx::query_as("select chain, seq, problem from bizos.audit_verify($1)")
            .bind(tenant)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(breaks.is_empty(), "{breaks:?}");
}

#[tokio::test]
async fn normalised_keys_deduplicate_through_unique_indexes() {
    let db = TestDb::new().await;
    exec(
        &db.owner,
        "create table t_customers (tenant_id uuid not null, npwp text, phone text,
                                   primary key (tenant_id, npwp));
         create unique index t_customers_npwp_key on t_customers (tenant_id, bizos.norm_npwp(npwp));",
    )
    .await;
    let tenant = Uuid::new_v4();
    sqlx::query("insert into t_customers values ($1, '01.234.567.8-901.000', '0812-3456-7890')")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap();
    let err = sqlx::query("insert into t_customers values ($1, '012345678901000', null)")
        .bind(tenant)
        .execute(&db.owner)
        .await
        .unwrap_err();
    assert_eq!(
        err.as_database_error().unwrap().code().as_deref(),
        Some("23505")
    );
    let phone: String = sqlx::query_scalar("select bizos.norm_phone(phone) from t_customers")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(phone, "+6281234567890");
}

/// Row keys of the busiest tables are UUIDs of version 7 (V37,
/// `bizos.uuid_v7()`): ordered by time, strictly rising within a session,
/// distinct across sessions; keys that are handles stay random.
#[tokio::test]
async fn busy_tables_get_time_ordered_keys_and_handles_stay_random() {
    let db = TestDb::new().await;
    let pool = owner_pool(&db, 8).await;
    let (keys, before, after): (Vec<Uuid>, f64, f64) = sqlx::query_as(
        "with s as (select extract(epoch from clock_timestamp())::float8 as t0),
              k as (select array_agg(bizos.uuid_v7() order by g) as keys from s, generate_series(1, 5000) g)
         select k.keys, s.t0, extract(epoch from clock_timestamp())::float8 from k, s",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(keys.len(), 5000);
    assert!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "keys of one session rise"
    );
    for k in [keys[0], keys[4999]] {
        assert_eq!(k.get_version_num(), 7, "{k}");
        assert_eq!(k.get_variant(), uuid::Variant::RFC4122, "{k}");
        let (secs, nanos) = k.get_timestamp().expect("a v7 key has a time").to_unix();
        let at = secs as f64 + f64::from(nanos) / 1e9;
        assert!(
            at >= before - 0.002 && at <= after + 0.002,
            "{k}: {at} not in {before}..{after}"
        );
    }
    // Eight sessions side by side: no key twice.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                sqlx::query_scalar::<_, Vec<Uuid>>(
                    "select array_agg(bizos.uuid_v7()) from generate_series(1, 2000)",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
            })
        })
        .collect();
    let mut all = HashSet::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    assert_eq!(all.len(), 16_000, "a key was made twice");

    let defaults: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, regexp_replace(column_default::text, '^bizos\\.', '') from information_schema.columns
          where table_schema = 'public' and (table_name, column_name) in
                (('customers', 'customer_id'), ('leads', 'lead_id'), ('jobs', 'job_id'),
                 ('tenants', 'tenant_id'), ('api_keys', 'key_id'), ('objects', 'object_id'))
          order by 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let defaults: Vec<(&str, &str)> = defaults
        .iter()
        .map(|(t, d)| (t.as_str(), d.as_str()))
        .collect();
    assert_eq!(
        defaults,
        [
            ("api_keys", "gen_random_uuid()"),
            ("customers", "uuid_v7()"),
            ("jobs", "uuid_v7()"),
            ("leads", "uuid_v7()"),
            ("objects", "gen_random_uuid()"),
            ("tenants", "gen_random_uuid()"),
        ]
    );
}
