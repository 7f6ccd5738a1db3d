//! `ivr serve`: loads the models once, warms them, starts the SIP side (`call-control`) and the
//! HTTP side (`ivr-web`: `/healthz`, `/metrics`), and wires them together. SIGTERM or Ctrl-C stops
//! it gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ivr_models::ModelDir;
use voice_pipeline::audio::Audio;
use voice_pipeline::audio::RATE;

use crate::config::Config;

/// `/healthz`'s document; it asks the LLM server, so it runs on a blocking thread.
type Health = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The parts of `/healthz` fixed at start-up.
#[derive(Clone, serde::Serialize)]
struct Loaded {
    status: &'static str,
    whisper: String,
    voices: Vec<String>,
    vad: String,
    warmup_ms: f64,
}

pub fn serve(models: &ModelDir, cfg: &Config, http: SocketAddr, sip: Option<SocketAddr>) -> anyhow::Result<()> {
    let started = Instant::now();
    let whisper = crate::load_whisper(models, &cfg.stt)?;
    let vad = crate::load_vad(models)?;
    let turn = crate::load_turn_model(models, cfg);
    let voices = crate::load_voices(models, cfg)?;
    // One pass through each model, so the first caller does not pay for lazy initialisation.
    let voice = voices.for_language("en");
    let hello = voice.synthesize("Hello.", RATE)?;
    whisper.transcribe(&hello.samples, &cfg.stt.whisper)?;
    voice_pipeline::vad::segments(&vad, &cfg.vad, &Audio::silence(RATE, 0.5).samples)?;
    let llm = match cfg.llm.backend.as_str() {
        "embedded" => Some(Arc::new(crate::llm_worker::Supervisor::start(&cfg.llm, &models.data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"))?)),
        "openai" => None,
        other => anyhow::bail!("[llm] backend {other:?}: use \"embedded\" or \"openai\""),
    };
    let client = match &llm {
        Some(s) => s.client.clone(),
        None => cfg.llm.client()?,
    };
    // Calls: the dialogue engine shared by every call (reloaded when its files change), the speech
    // cache, the worker threads and the SIP listener.
    let engine = Arc::new(std::sync::RwLock::new(crate::load_engine(models, cfg)?));
    let mut session_cfg = crate::simulate::session_config(cfg);
    // Calls use the end-of-turn model only if it loaded (else the fixed hangover).
    session_cfg.end_of_turn_model = turn.is_some();
    if let Some(t) = &turn {
        t.probability(&hello.samples)?;
    }
    let cache = Arc::new(voice_pipeline::session::workers::SpeechCache::default());
    if cfg.tts.prerender {
        let e = engine.read().map_err(|_| anyhow::anyhow!("engine lock"))?;
        crate::simulate::prerender(&cache, models, &voices, &e, &session_cfg)?;
    }
    let pipeline = voice_pipeline::session::live::Pipeline::start(Arc::new(voice_pipeline::session::live::Models {
        whisper: whisper.clone(),
        // The transcription threads are shared among the workers that are busy: on two cores,
        // two one-thread transcriptions at once answer a burst of callers 1.5 times faster than
        // one two-thread transcription at a time (scripts/bench-load.sh), and a lone caller gets
        // both threads.
        stt: cfg.stt.whisper.clone(),
        voices: voices.clone(),
        cache,
        engine: Arc::clone(&engine),
        llm: Some(client.clone()),
        stt_workers: cfg.stt.workers,
        turn,
    }));
    let mut sip_cfg = cfg.sip.clone();
    if let Some(addr) = sip {
        sip_cfg.listen = addr;
    }
    let sip_server = call_control::server::SipServer::start(sip_cfg.clone(), &cfg.records, session_cfg, vad.clone(), pipeline)
        .with_context(|| format!("cannot listen for SIP on {}", sip_cfg.listen))?;
    let sip_local = sip_server.local;
    {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(2));
            if let Ok(mut e) = engine.write() {
                match e.reload_if_changed() {
                    Ok(true) => eprintln!("ivr: knowledge reloaded"),
                    Ok(false) => {}
                    Err(err) => eprintln!("ivr: knowledge not reloaded: {err}"),
                }
            }
        });
    }
    let sup = llm.clone();
    let fixed = Loaded {
        status: "ok",
        whisper: whisper.path().display().to_string(),
        voices: voices.languages().map(str::to_string).collect(),
        vad: models.silero_vad().display().to_string(),
        warmup_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    let backend = cfg.llm.backend.clone();
    let health: Health = Arc::new(move || {
        let mut v = serde_json::to_value(&fixed).unwrap_or_default();
        let healthy = client.healthy();
        v["llm"] = serde_json::json!({"backend": backend, "healthy": healthy,
            "restarts": sup.as_ref().map(|s| s.restarts.load(std::sync::atomic::Ordering::Relaxed)),
            "pid": sup.as_ref().and_then(|s| s.pid())});
        if !healthy {
            v["status"] = serde_json::json!("degraded");
        }
        let m = call_control::metrics::metrics();
        v["sip"] = serde_json::json!({"listen": sip_local.to_string(),
            "calls_active": m.calls_active.get(), "calls_total": m.calls_started.get(),
            "frames_out": m.frames_out.get(), "frames_late": m.frames_late.get(),
            "phones_registered": m.phones_registered.get()});
        v
    });

    // Keep the worker (and its watchdog) alive as long as the server runs.
    let _llm = llm;
    let sip = sip_server;
    let records = match &sip_cfg.records {
        Some(path) => format!("; call records in {}", path.display()),
        None => String::new(),
    };
    let runtime = ivr_web::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ivr-http")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    runtime.block_on(async move {
        let listener = ivr_web::bind(http).await?;
        eprintln!(
            "ivr: models loaded in {:.1} s; SIP on sip:ivr@{sip_local} (UDP and TCP); HTTP on http://{} (GET /healthz, /metrics){records}.",
            started.elapsed().as_secs_f64(),
            listener.local_addr()?
        );
        let limits = ivr_web::Limits::default();
        let app = ivr_web::finish(router(health), &limits);
        ivr_web::serve(listener, app, limits, ivr_web::shutdown_signal()).await
    })?;
    // Stopped taking HTTP requests; now the calls: refuse new ones, let these finish, then end them.
    let grace = Duration::from_secs(sip_cfg.shutdown_grace_secs as u64);
    eprintln!("ivr: stopping: new calls get 503; {} in progress may go on for {} s", sip.active_calls(), grace.as_secs());
    let ended = sip.shutdown(grace);
    eprintln!("ivr: stopped ({ended} calls ended by the shutdown)");
    Ok(())
}

fn router(health: Health) -> ivr_web::axum::Router {
    use ivr_web::axum::routing::get;
    ivr_web::axum::Router::new()
        .route(
            "/healthz",
            get(move || {
                let health = Arc::clone(&health);
                async move {
                    ivr_web::tokio::task::spawn_blocking(move || health())
                        .await
                        .map(ivr_web::axum::Json)
                        .map_err(|e| ivr_web::ApiError::internal(format!("health check failed: {e}")))
                }
            }),
        )
        .route("/metrics", get(ivr_web::metrics))
}
