//! The tests' SMTP server (`scripts/lib/smtp_sink.py`, aiosmtpd on
//! loopback, started by `scripts/dev test` and `test-cluster`): where it
//! listens and the messages it accepted. It writes every message to
//! `BIZOS_TEST_SMTP_DIR/<n>.eml` with the envelope recipients in an
//! `X-Sink-Rcpt-To:` header, and refuses recipients named `reject…` (550)
//! and `defer…` (451).

use std::path::PathBuf;

/// Its port (`BIZOS_TEST_SMTP_PORT`, default 54341).
pub fn port() -> u16 {
    std::env::var("BIZOS_TEST_SMTP_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(54341)
}

/// The directory it writes messages to (`BIZOS_TEST_SMTP_DIR`).
pub fn dir() -> PathBuf {
    std::env::var("BIZOS_TEST_SMTP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/tmp/bizos-test-cluster/smtp-sink"))
}

/// The messages it accepted for `rcpt` (raw text, headers first).
pub fn messages_to(rcpt: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .filter(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("X-Sink-Rcpt-To: "))
                .unwrap_or_default()
                .split(',')
                .any(|r| r.trim() == rcpt)
        })
        .collect()
}
