//! The `bizos` command, built as part of this test package so tests that
//! need a real BFF process (tests/tests/suite/upload_crash.rs: kill -9 and
//! restart) get it from the same build as themselves, with the same
//! features, through `CARGO_BIN_EXE_bizos-under-test` — a separate
//! `cargo build -p bizos-bff` would resolve features differently and
//! rebuild much of the dependency tree on a cold CI run.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = bizos_bff::cli::Cli::parse();
    if let Err(e) = bizos_bff::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
