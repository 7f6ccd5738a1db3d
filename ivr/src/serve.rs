//! `ivr serve`: loads the speech models once, warms them, and answers health checks over HTTP.
//!
//! This is the process the SIP and WebRTC transports will live in; until they exist it proves that
//! the embedded models load and run on this machine, and says so at `/healthz`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ivr_models::ModelDir;
use voice_pipeline::audio::Audio;
use voice_pipeline::audio::RATE;

use crate::config::Config;

/// What `/healthz` reports.
#[derive(Clone, serde::Serialize)]
struct Health {
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
        None => dialogue::llm::LlmClient::new(&cfg.llm.url, &cfg.llm.model)?,
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
    let sip_server = call_control::server::SipServer::start(sip_cfg.clone(), session_cfg, vad.clone(), pipeline)
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
    let sip_stats = Arc::clone(&sip_server.stats);
    let sup = llm.clone();
    let fixed = Health {
        status: "ok",
        whisper: whisper.path().display().to_string(),
        voices: voices.languages().map(str::to_string).collect(),
        vad: models.silero_vad().display().to_string(),
        warmup_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    let backend = cfg.llm.backend.clone();
    let health: Arc<dyn Fn() -> Vec<u8> + Send + Sync> = Arc::new(move || {
        let mut v = serde_json::to_value(&fixed).unwrap_or_default();
        let healthy = client.healthy();
        v["llm"] = serde_json::json!({"backend": backend, "healthy": healthy,
            "restarts": sup.as_ref().map(|s| s.restarts.load(std::sync::atomic::Ordering::Relaxed)),
            "pid": sup.as_ref().and_then(|s| s.pid())});
        if !healthy {
            v["status"] = serde_json::json!("degraded");
        }
        use std::sync::atomic::Ordering::Relaxed;
        v["sip"] = serde_json::json!({"listen": sip_local.to_string(),
            "calls_active": sip_stats.calls_active.load(Relaxed), "calls_total": sip_stats.calls_total.load(Relaxed),
            "frames_out": sip_stats.frames_out.load(Relaxed), "frames_late": sip_stats.frames_late.load(Relaxed),
            "phones_registered": sip_stats.phones_registered.load(Relaxed)});
        serde_json::to_vec(&v).unwrap_or_default()
    });

    let listener = TcpListener::bind(http).with_context(|| format!("cannot listen for HTTP on {http}"))?;
    // Keep the worker (and its watchdog) alive as long as the server runs.
    let _llm = llm;
    let _sip = sip_server;
    let records = match &sip_cfg.records {
        Some(path) => format!("; call records in {}", path.display()),
        None => String::new(),
    };
    eprintln!(
        "ivr: models loaded in {:.1} s; SIP on sip:ivr@{sip_local} (UDP and TCP); HTTP on http://{} (GET /healthz){records}.",
        started.elapsed().as_secs_f64(),
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let health = Arc::clone(&health);
        std::thread::spawn(move || {
            if let Err(e) = handle(stream, health.as_ref()) {
                tracing::debug!("http: {e}");
            }
        });
    }
    Ok(())
}

/// Answers one request: the request line decides; anything malformed gets 400.
fn handle(mut stream: TcpStream, health: &(dyn Fn() -> Vec<u8> + Send + Sync)) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 8192];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (status, body): (&str, Vec<u8>) = match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some("/healthz"), Some(v)) if v.starts_with("HTTP/1.") => ("200 OK", health()),
        (Some(_), Some(_), Some(v)) if v.starts_with("HTTP/1.") => ("404 Not Found", b"{\"error\":\"not found\"}".to_vec()),
        _ => ("400 Bad Request", b"{\"error\":\"malformed request line\"}".to_vec()),
    };
    write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    stream.write_all(&body)
}
