//! The bizos_ivf index survives a crash: a cluster of its own (so the shared
//! test cluster is never disturbed) with fsync on, an index built and then
//! grown by inserts, the postmaster and its backends killed with SIGKILL,
//! a restart through WAL recovery, and index scans that still agree with
//! exact search and find the rows inserted after the build.
//!
//! Needs root (the server runs as the `postgres` OS user through runuser)
//! and the installed extension, like the rest of the suite; port 54339.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PORT: u16 = 54339;

struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn as_postgres(args: &[&str]) -> std::process::Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("runuser (the test runs as root)")
    }

    fn init() -> Cluster {
        let dir = std::env::temp_dir().join(format!("bizos-vector-crash-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ok = Command::new("install")
            .args(["-d", "-m", "0700", "-o", "postgres", "-g", "postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "create {dir:?} for the postgres user");
        let c = Cluster { dir };
        let data = c.data();
        let out = Self::as_postgres(&[
            &format!("{PG_BIN}/initdb"),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "port = {PORT}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n",
            c.dir.display()
        );
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        c.start();
        c
    }

    fn start(&self) {
        // After a SIGKILL the old backends may take a moment to notice that
        // the postmaster is gone; the new one refuses to start until then.
        for attempt in 0..30 {
            let out = Self::as_postgres(&[
                &format!("{PG_BIN}/pg_ctl"),
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                self.dir.join("server.log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ]);
            if out.status.success() {
                return;
            }
            assert!(
                attempt < 29,
                "pg_ctl start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn postmaster_pid(&self) -> i32 {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid")).unwrap();
        pidfile.lines().next().unwrap().trim().parse().unwrap()
    }

    /// SIGKILL to the postmaster and its children: no shutdown checkpoint,
    /// nothing flushed but what WAL already holds.
    fn crash(&self) {
        let pid = self.postmaster_pid();
        let children = children_of(pid);
        kill9(pid);
        for c in children {
            kill9(c);
        }
        wait_gone(pid);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Self::as_postgres(&[
            &format!("{PG_BIN}/pg_ctl"),
            "-D",
            self.data().to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn kill9(pid: i32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

fn wait_gone(pid: i32) {
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("process {pid} did not exit after SIGKILL");
}

/// Pids whose parent is `parent` (from /proc/<pid>/stat).
fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<i32>().ok())
            == Some(parent)
        {
            out.push(pid);
        }
    }
    out
}

async fn connect() -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={PORT} user=postgres dbname=postgres");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Ids of the 10 nearest rows to row `id`'s vector, through the index
/// (probing every list) or through an exact scan.
async fn nearest(c: &tokio_postgres::Client, id: i32, index: bool) -> Vec<i32> {
    let settings = if index {
        "set enable_seqscan = off; set enable_indexscan = on; set bizos.ivf_probes = 16"
    } else {
        "set enable_seqscan = on; set enable_indexscan = off"
    };
    c.batch_execute(settings).await.unwrap();
    c.query(
        "select id from docs
          order by embedding operator(bizos.<->) (select embedding from docs where id = $1), id limit 10",
        &[&id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn the_index_survives_kill_9_and_finds_rows_inserted_after_the_build() {
    let cluster = Cluster::init();
    let c = connect().await;
    c.batch_execute(
        "create extension bizos;
         select setseed(0.5);
         create table docs (id int primary key, embedding bizos.vector(8) not null);
         insert into docs select i, (select array_agg(random()::real order by d) from generate_series(1, 8) d where i > 0)
           from generate_series(1, 3000) i;
         create index docs_embedding_idx on docs using bizos_ivf (embedding bizos.vector_l2_ops) with (lists = 16);
         checkpoint;
         -- After the checkpoint: only WAL knows about these.
         insert into docs select i, (select array_agg(random()::real * 3 order by d) from generate_series(1, 8) d where i > 0)
           from generate_series(3001, 4000) i;
         delete from docs where id between 1 and 100;",
    )
    .await
    .unwrap();
    let before: Vec<Vec<i32>> = {
        let mut v = Vec::new();
        for id in [200, 1500, 3500, 3999] {
            v.push(nearest(&c, id, true).await);
        }
        v
    };
    drop(c);

    cluster.crash();
    cluster.start();
    let c = connect().await;
    let total: i64 = c
        .query_one("select count(*) from docs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 3900);

    for (i, id) in [200, 1500, 3500, 3999].into_iter().enumerate() {
        let via_index = nearest(&c, id, true).await;
        let exact = nearest(&c, id, false).await;
        assert_eq!(
            via_index, exact,
            "index and exact search agree after recovery (row {id})"
        );
        assert_eq!(
            via_index, before[i],
            "same answer as before the crash (row {id})"
        );
        assert_eq!(
            via_index[0], id,
            "a row is its own nearest neighbour (row {id})"
        );
    }
    // Every row, including all 1000 inserted after the build, is reachable
    // through the index, and the deleted ones are not.
    c.batch_execute("set enable_seqscan = off; set bizos.ivf_probes = 1")
        .await
        .unwrap();
    let plan: Vec<String> = c
        .query(
            "explain (costs off) select id from docs order by embedding operator(bizos.<->) '[0,0,0,0,0,0,0,0]' limit 5000",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.join("\n")
            .contains("Index Scan using docs_embedding_idx"),
        "{plan:?}"
    );
    let ids: Vec<i32> = c
        .query(
            "select id from docs order by embedding operator(bizos.<->) '[0,0,0,0,0,0,0,0]' limit 5000",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 3900);
    assert_eq!(ids.iter().filter(|&&id| id > 3000).count(), 1000);
    assert!(ids.iter().all(|&id| id > 100));

    // And the recovered index takes new rows.
    c.batch_execute(
        "insert into docs values (5000, '[9,9,9,9,9,9,9,9]');
         set bizos.ivf_probes = 16;",
    )
    .await
    .unwrap();
    let top: i32 = c
        .query_one(
            "select id from docs order by embedding operator(bizos.<->) '[9,9,9,9,9,9,9,8.9]' limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(top, 5000);
    drop(c);
    drop(cluster);
}
