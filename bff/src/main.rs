fn main() {
    // Before any thread starts: it sets an environment variable.
    bizos_bff::kb::embed::tune_process();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let cli = bizos_bff::cli::Cli::from_env();
        if let Err(e) = bizos_bff::cli::run(cli).await {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    });
}
