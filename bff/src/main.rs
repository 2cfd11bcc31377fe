#[tokio::main]
async fn main() {
    let cli = bizos_bff::cli::Cli::from_env();
    if let Err(e) = bizos_bff::cli::run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
