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
    // One runtime for the web side and the store's connections.
    let runtime = ivr_web::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ivr-io")
        .enable_all()
        .build()
        .context("cannot start the IO runtime")?;
    let mut records = cfg.records.clone();
    let server_name = records.server.clone().unwrap_or_else(host_name);
    records.server = Some(server_name.clone());
    let store = runtime.block_on(ivr_store::Store::open(&records.url))?;
    let now = jiff::Timestamp::now().to_string();
    let interrupted = runtime.block_on(store.mark_interrupted(&server_name, &now))?;
    if interrupted > 0 {
        eprintln!("ivr: {interrupted} calls of {server_name} were cut off by its last stop; marked interrupted");
    }
    let orphans = runtime.block_on(store.abandon_orphans(&server_name, &now))?;
    if !orphans.is_empty() {
        eprintln!("ivr: {} callers were waiting in the queue at the last stop; logged as abandoned", orphans.len());
    }
    let sink = call_control::record::RecordSink::start(store.clone(), runtime.handle().clone())?;
    let records_sink = sink.clone();
    // Retention: what is older than `[retention]` allows goes at start and then every hour.
    if cfg.retention.is_set() {
        let (store, retention) = (store.clone(), cfg.retention.clone());
        runtime.spawn(async move {
            loop {
                match crate::records::purge(&store, &retention, "system").await {
                    Ok((0, 0)) => {}
                    Ok((transcripts, audio)) => tracing::info!(transcripts, audio, "retention: purged the words of calls and recordings"),
                    Err(e) => tracing::warn!("retention: the purge failed: {e:#}"),
                }
                ivr_web::tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        });
    }
    let whisper = crate::load::load_whisper(models, &cfg.stt)?;
    let vad = crate::load::load_vad(models)?;
    let turn = crate::load::load_turn_model(models, cfg);
    let voices = crate::load::load_voices(models, cfg)?;
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
    let engine = Arc::new(std::sync::RwLock::new(crate::load::load_engine(models, cfg)?));
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
    // The HTTP side's address first: hand-offs link to a call's record there (Call-ID, webhook).
    let listener = runtime.block_on(ivr_web::bind(http))?;
    let http_local = listener.local_addr()?;
    if sip_cfg.call_url.is_none() {
        sip_cfg.call_url = Some(format!("http://{http_local}/api/v1/calls/"));
    }
    let sip_server = call_control::server::SipServer::start(sip_cfg.clone(), &records, sink, session_cfg, vad.clone(), pipeline)
        .with_context(|| format!("cannot listen for SIP on {}", sip_cfg.listen))?;
    let sip_local = sip_server.local;
    let browser = sip_server.browser_calls(cfg.webrtc.clone());
    let browser_health = browser.clone();
    let console = agent_desk::Console::new(store.clone(), sip_server.desk.clone(), Some(browser.clone()), Duration::from_secs(cfg.console.session_secs.max(1)));
    let dashboard = {
        let engine = Arc::clone(&engine);
        let embed: ivr_dashboard::Embed = Arc::new(move |texts: &[&str]| {
            let e = engine.read().map_err(|_| "the dialogue engine's lock is poisoned".to_string())?;
            e.embedder.embed(texts).map_err(|e| e.to_string())
        });
        Arc::new(ivr_dashboard::Dashboard { store: store.clone(), desk: sip_server.desk.clone(), settings: crate::report::settings(cfg), costs: cfg.costs.clone(), embed })
    };
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
        v["browser"] = serde_json::json!({"calls_active": browser_health.active()});
        // Tasks alive on the HTTP runtime: a leak of per-request work shows here.
        v["http"] = serde_json::json!({"tasks": ivr_web::tokio::runtime::Handle::try_current().map(|h| h.metrics().num_alive_tasks()).ok()});
        v
    });

    // Keep the worker (and its watchdog) alive as long as the server runs.
    let _llm = llm;
    let sip = sip_server;
    let records = format!("; call records in {}", records.url);
    runtime.block_on(async move {
        eprintln!(
            "ivr: models loaded in {:.1} s; SIP on sip:ivr@{sip_local} (UDP and TCP); HTTP on http://{} (GET /healthz, /metrics, /agent, /dashboard, /call){records}.",
            started.elapsed().as_secs_f64(),
            listener.local_addr()?
        );
        let limits = ivr_web::Limits::default();
        let app = ivr_web::finish(router(health, store).merge(agent_desk::router(console)).merge(ivr_dashboard::router(dashboard)).merge(caller_web::router(browser)), &limits);
        ivr_web::serve(listener, app, limits, ivr_web::shutdown_signal()).await
    })?;
    // Stopped taking HTTP requests; now the calls: refuse new ones, let these finish, then end them.
    let grace = Duration::from_secs(sip_cfg.shutdown_grace_secs as u64);
    eprintln!("ivr: stopping: new calls get 503; {} in progress may go on for {} s", sip.active_calls(), grace.as_secs());
    let ended = sip.shutdown(grace);
    drop(sip);
    if !records_sink.flush(Duration::from_secs(10)) {
        eprintln!("ivr: the store did not take the last records within 10 s (they are in the log)");
    }
    eprintln!("ivr: stopped ({ended} calls ended by the shutdown)");
    Ok(())
}

/// This machine's name: the default name of a server in the store.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "ivr".into())
}

#[derive(serde::Deserialize)]
struct CallsQuery {
    limit: Option<i64>,
    before: Option<String>,
}

/// `GET /api/v1/calls?limit=50&before=STARTED_AT`: the latest calls first.
async fn list_calls(
    ivr_web::axum::extract::State(store): ivr_web::axum::extract::State<ivr_store::Store>,
    query: Result<ivr_web::axum::extract::Query<CallsQuery>, ivr_web::axum::extract::rejection::QueryRejection>,
) -> Result<ivr_web::axum::Json<serde_json::Value>, ivr_web::ApiError> {
    let ivr_web::axum::extract::Query(q) = query.map_err(|e| ivr_web::ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ivr_web::ApiError::bad_request("limit must be between 1 and 500"));
    }
    let calls = store.calls(limit, q.before.as_deref()).await.map_err(|e| ivr_web::ApiError::internal(e.to_string()))?;
    Ok(ivr_web::axum::Json(serde_json::json!({"calls": calls})))
}

/// `GET /api/v1/calls/{id}`: one call with its turns and events.
async fn get_call(
    ivr_web::axum::extract::State(store): ivr_web::axum::extract::State<ivr_store::Store>,
    ivr_web::axum::extract::Path(id): ivr_web::axum::extract::Path<String>,
) -> Result<ivr_web::axum::Json<serde_json::Value>, ivr_web::ApiError> {
    match store.call(&id).await.map_err(|e| ivr_web::ApiError::internal(e.to_string()))? {
        Some(c) => Ok(ivr_web::axum::Json(c.document())),
        None => Err(ivr_web::ApiError::not_found(format!("no call {id:?}"))),
    }
}

/// A note about a call, as posted.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewNote {
    author: String,
    text: String,
}

/// `POST /api/v1/calls/{id}/notes` `{"author": ..., "text": ...}`: a person's note about a call
/// (201 with the note; 404 for an unknown call).
async fn add_note(
    ivr_web::axum::extract::State(store): ivr_web::axum::extract::State<ivr_store::Store>,
    ivr_web::axum::extract::Path(id): ivr_web::axum::extract::Path<String>,
    ivr_web::JsonBody(note): ivr_web::JsonBody<NewNote>,
) -> Result<(ivr_web::axum::http::StatusCode, ivr_web::axum::Json<ivr_store::Note>), ivr_web::ApiError> {
    let (author, text) = (note.author.trim(), note.text.trim());
    if author.is_empty() || author.chars().count() > 100 {
        return Err(ivr_web::ApiError::bad_request("author must be 1 to 100 characters"));
    }
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ivr_web::ApiError::bad_request("text must be 1 to 4000 characters"));
    }
    let note = ivr_store::Note { written_at: jiff::Timestamp::now().to_string(), author: author.into(), text: text.into() };
    match store.add_note(&id, &note).await.map_err(|e| ivr_web::ApiError::internal(e.to_string()))? {
        true => Ok((ivr_web::axum::http::StatusCode::CREATED, ivr_web::axum::Json(note))),
        false => Err(ivr_web::ApiError::not_found(format!("no call {id:?}"))),
    }
}

fn router(health: Health, store: ivr_store::Store) -> ivr_web::axum::Router {
    use ivr_web::axum::routing::{get, post};
    let api = ivr_web::axum::Router::new()
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/notes", post(add_note))
        .with_state(store);
    ivr_web::axum::Router::new()
        .merge(api)
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
