//! The LLM provider stand-in as a process, for benchmarks and manual runs:
//! `llm-standin --listen 127.0.0.1:54372 [--delay-ms 20]`. It answers every
//! request with the deterministic default answers of
//! `bizos_tests::llm_standin` (echo text, word-count tokens) after the fixed
//! delay, records nothing, and runs until killed.

use std::net::SocketAddr;
use std::time::Duration;

use bizos_tests::llm_standin::StandIn;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "llm-standin",
    about = "LLM provider stand-in (OpenAI and Gemini wire formats)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:54372")]
    listen: SocketAddr,
    /// Fixed delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let standin = match StandIn::start_on(args.listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    standin.set_recording(false);
    standin.set_default_delay(Duration::from_millis(args.delay_ms));
    println!("openai {}", standin.base_url_openai);
    println!("gemini {}", standin.base_url_gemini);
    let _ = tokio::signal::ctrl_c().await;
}
