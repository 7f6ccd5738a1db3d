//! `ivr-llm`: the dialogue LLM in its own process.
//!
//! whisper.cpp (in `ivr`) and llama.cpp each bundle their own ggml, so they cannot share a binary.
//! This worker loads a GGUF model once with llama.cpp and serves the OpenAI chat-completions API
//! (`POST /v1/chat/completions`, streaming with server-sent events) on loopback, so the embedded
//! model and a company's own server (vLLM, Ollama, llama-server) are reached by one client.
//!
//! Latency: the worker keeps the previous prompt's KV cache and evaluates only the tokens after the
//! longest common prefix, so a conversation's fixed system prompt is computed once. Tokens are
//! streamed as they are sampled. Its threads are capped (`--threads`) so that it does not fight
//! speech recognition and synthesis for the cores.

mod engine;
mod http;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(name = "ivr-llm", about = "Local LLM worker with an OpenAI-compatible streaming chat API")]
struct Args {
    /// The GGUF model file.
    #[arg(long)]
    model: PathBuf,
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: String,
    /// CPU threads for generation and prompt evaluation.
    #[arg(long, default_value_t = 1)]
    threads: i32,
    /// Context length in tokens.
    #[arg(long, default_value_t = 2048)]
    ctx: u32,
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IVR_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let args = Args::parse();
    if !args.model.is_file() {
        anyhow::bail!("{}: model file not found (run scripts/setup.sh)", args.model.display());
    }
    let listen: std::net::SocketAddr = args.listen.parse().with_context(|| format!("--listen {:?}: not an address like 127.0.0.1:8091", args.listen))?;
    let engine = Arc::new(engine::Engine::start(&args.model, args.threads, args.ctx)?);
    // Two runtime threads are plenty: requests only queue work for the engine's own thread.
    let runtime = ivr_web::tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let listener = ivr_web::bind(listen).await?;
        eprintln!("ivr-llm: {} loaded; listening on http://{}", args.model.display(), listener.local_addr()?);
        let limits = ivr_web::Limits { request_timeout: std::time::Duration::from_secs(120), ..Default::default() };
        let app = ivr_web::finish(http::router(engine), &limits);
        ivr_web::serve(listener, app, limits, ivr_web::shutdown_signal()).await
    })?;
    Ok(())
}
