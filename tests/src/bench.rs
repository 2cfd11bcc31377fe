//! What the benchmark binaries (`src/bin/*-bench.rs`) share: settings from
//! the environment, progress lines on stderr, the repository's root.

use std::path::{Path, PathBuf};

/// The environment variable `name` parsed, or `default` when it is unset
/// or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A progress line on stderr (results go to stdout).
pub fn say(msg: impl AsRef<str>) {
    eprintln!("==> {}", msg.as_ref());
}

/// The repository's root: `BIZOS_ROOT`, else the tests crate's parent.
pub fn root() -> PathBuf {
    std::env::var_os("BIZOS_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}
