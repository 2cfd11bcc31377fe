//! A PostgreSQL cluster of a test's own, for what must never happen to the
//! shared test cluster (a crash, a full lock table): `initdb` in a fresh
//! temporary directory, started with `pg_ctl`, stopped and removed on drop.
//!
//! Needs root: the server runs as the `postgres` OS user through runuser.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct OwnCluster {
    dir: PathBuf,
}

impl OwnCluster {
    /// A new cluster named after `purpose`, with `settings` (lines of
    /// postgresql.conf) and its Unix socket in its own directory, started.
    pub fn start(purpose: &str, settings: &str) -> OwnCluster {
        crate::watchdog::watch();
        let dir = std::env::temp_dir().join(format!(
            "bizos-{purpose}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let ok = Command::new("install")
            .args(["-d", "-m", "0700", "-o", "postgres", "-g", "postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "create {dir:?} for the postgres user");
        let c = OwnCluster { dir };
        let data = c.data();
        let out = as_postgres(&[
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
            "unix_socket_directories = '{}'\n{settings}\n",
            c.dir.display()
        );
        std::fs::write(data.join("postgresql.auto.conf"), conf).unwrap();
        c.start_again();
        c
    }

    /// The directory of the cluster, its Unix socket and its server log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the stopped (or crashed) cluster.
    pub fn start_again(&self) {
        // After a SIGKILL the old backends may take a moment to notice that
        // the postmaster is gone; the new one refuses to start until then.
        for attempt in 0..30 {
            let out = as_postgres(&[
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
    pub fn crash(&self) {
        let pid = self.postmaster_pid();
        let children = children_of(pid);
        kill9(pid);
        for c in children {
            kill9(c);
        }
        wait_gone(pid);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&[
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

fn as_postgres(args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .expect("runuser (the suite runs as root)")
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
