//! A test that hangs stops the suite with its name instead of holding the
//! run until CI's time limit ends it without saying which test it was.
//!
//! libtest runs each test on a thread named after it. The harness's entry
//! points ([`crate::TestDb::new`], [`crate::spawn_app_at`], …) call
//! [`watch`], which records the calling thread's test and when it began;
//! the record goes when the thread ends (a thread-local's destructor). A
//! thread of the watchdog's own looks every few seconds: a test running
//! longer than `BIZOS_TEST_HANG_SECS` (default 900; the slowest test takes
//! about 250 s on 2 cores) is named with every other one still running,
//! and the process exits with libtest's failure code. A run with
//! `--test-threads=1` runs tests on the main thread and is not watched.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

static RUNNING: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());
static START: Once = Once::new();

/// Deregisters its test when the test's thread ends.
struct Watched(String);

impl Drop for Watched {
    fn drop(&mut self) {
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

thread_local! {
    static WATCHED: RefCell<Option<Watched>> = const { RefCell::new(None) };
}

/// Records the calling test (once per test thread) and starts the watchdog
/// on first use.
pub fn watch() {
    let Some(name) = std::thread::current().name().map(str::to_owned) else {
        return;
    };
    if name == "main" {
        return;
    }
    WATCHED.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_none() {
            RUNNING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), Instant::now());
            *w = Some(Watched(name));
        }
    });
    START.call_once(|| {
        let limit = hang_limit();
        std::thread::Builder::new()
            .name("bizos-test-watchdog".into())
            .spawn(move || watchdog(limit))
            .expect("start the test watchdog");
    });
}

fn hang_limit() -> Duration {
    let secs = std::env::var("BIZOS_TEST_HANG_SECS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("BIZOS_TEST_HANG_SECS: not a number of seconds: {v:?}"))
        })
        .unwrap_or(900);
    Duration::from_secs(secs)
}

fn watchdog(limit: Duration) -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        if running.values().all(|began| began.elapsed() < limit) {
            continue;
        }
        // Straight to the file: libtest captures eprintln! in threads a test
        // started, and this one was started by a test.
        let mut out = std::io::stderr().lock();
        let mut by_age: Vec<(&String, Duration)> =
            running.iter().map(|(n, b)| (n, b.elapsed())).collect();
        by_age.sort_by_key(|b| std::cmp::Reverse(b.1));
        let _ = writeln!(
            out,
            "\nwatchdog: a test ran for over {} s; the suite stops here so the rest of the run goes on",
            limit.as_secs()
        );
        for (name, age) in by_age {
            let verdict = if age >= limit { "HUNG" } else { "running" };
            let _ = writeln!(out, "test {name} ... {verdict} ({} s)", age.as_secs());
        }
        let _ = writeln!(
            out,
            "test result: FAILED. 0 passed; 1 failed (the watchdog stopped the suite)"
        );
        let _ = out.flush();
        std::process::exit(101);
    }
}
