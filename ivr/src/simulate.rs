//! `ivr simulate`: a whole call from a caller recording, on the real models, in simulated time.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use ivr_models::ModelDir;
use call_control::sim::{write_stereo, Caller, CallRecord, JobTimes, Simulator};
use voice_pipeline::session::workers::{SpeechCache, Workers};
use voice_pipeline::audio::RATE;
use voice_pipeline::session::{CallSession, SessionConfig};

use crate::config::Config;

/// How the calls are run.
pub struct Options<'a> {
    /// The stereo call (one call only).
    pub output: Option<&'a Path>,
    pub json: bool,
    pub realtime: bool,
    pub llm: bool,
    pub echo_ms: Option<u32>,
    pub tail_secs: f64,
    /// Write the calls to the store.
    pub store: bool,
}

/// One caller of a run.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedCall {
    /// The caller's recording.
    pub file: std::path::PathBuf,
    /// The calling number (caller ID).
    #[serde(default)]
    pub caller: Option<String>,
    /// "SECONDS:KEYS" (keys pressed 150 ms apart from that time), e.g. "9.5:41234567#".
    #[serde(default)]
    pub keys: Vec<String>,
    /// The call's wall-clock start (default: now).
    #[serde(default)]
    pub at: Option<jiff::Timestamp>,
}

/// `ivr simulate --script FILE`: many calls, the models loaded once.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(rename = "call")]
    pub calls: Vec<ScriptedCall>,
}

impl Script {
    /// Reads a script; its calls' files are relative to it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the script {}", path.display()))?;
        let mut script: Script = toml::from_str(&text).with_context(|| format!("{}: not a script of [[call]] tables", path.display()))?;
        anyhow::ensure!(!script.calls.is_empty(), "{}: no [[call]] in it", path.display());
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut script.calls {
            c.file = base.join(&c.file);
            parse_keys(&c.keys).with_context(|| format!("{}: the call of {}", path.display(), c.file.display()))?;
        }
        Ok(script)
    }
}

/// The session settings: `[session]` from the config, with its `[vad]`.
pub fn session_config(cfg: &Config) -> SessionConfig {
    let mut s = cfg.session.clone();
    s.vad = cfg.vad.clone();
    s
}

/// Renders the bot's fixed sentences once (greeting, prompts, knowledge answers).
/// The audio is kept in `models/data/cache/speech`, so later starts only load it.
pub fn prerender(
    cache: &SpeechCache,
    models: &ModelDir,
    voices: &voice_pipeline::tts::Voices,
    engine: &dialogue::Engine,
    session: &SessionConfig,
) -> anyhow::Result<usize> {
    let mut texts = dialogue::manager::fixed_texts(&engine.kb);
    let t = &session.texts;
    for s in [&t.greeting, &t.filler, &t.reprompt, &t.goodbye, &t.apology, &t.shutdown] {
        texts.push(("en".into(), s.clone()));
    }
    Ok(cache.prerender_into(voices, &texts, Some(&models.data().join("cache/speech")))?)
}

fn parse_keys(specs: &[String]) -> anyhow::Result<Vec<(Duration, char)>> {
    let mut keys = Vec::new();
    for spec in specs {
        let (at, digits) = spec.split_once(':').with_context(|| format!("--keys {spec:?}: expected SECONDS:KEYS, e.g. 9.5:41234567#"))?;
        let at: f64 = at.trim().parse().with_context(|| format!("--keys {spec:?}: {at:?} is not a number of seconds"))?;
        if !(0.0..86_400.0).contains(&at) {
            anyhow::bail!("--keys {spec:?}: the time must be between 0 and 86400 seconds");
        }
        for (i, k) in digits.trim().chars().enumerate() {
            if !(k.is_ascii_digit() || k == '*' || k == '#') {
                anyhow::bail!("--keys {spec:?}: {k:?} is not a keypad key (0-9, *, #)");
            }
            keys.push((Duration::from_secs_f64(at) + Duration::from_millis(150 * i as u64), k));
        }
    }
    keys.sort_by_key(|(t, _)| *t);
    Ok(keys)
}

pub fn simulate(models: &ModelDir, cfg: &Config, calls: &[ScriptedCall], o: Options<'_>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(o.output.is_none() || calls.len() == 1, "--output takes one call");
    // Every recording is read (and every key list checked) before the models load: a bad file
    // fails at once.
    let mut callers = Vec::with_capacity(calls.len());
    for c in calls {
        let (audio, _) = crate::load::read_audio(&c.file, RATE)?;
        callers.push(Caller {
            audio: audio.samples,
            keys: parse_keys(&c.keys)?,
            echo: o.echo_ms.map(|d| (Duration::from_millis(d as u64), 0.3)),
            caller_id: c.caller.clone(),
            shutdown_at: None,
        });
    }
    let whisper = crate::load::load_whisper(models, &cfg.stt)?;
    let vad = crate::load::load_vad(models)?;
    let turn = crate::load::load_turn_model(models, cfg);
    let voices = crate::load::load_voices(models, cfg)?;
    let engine = crate::load::load_engine(models, cfg)?;
    let session_cfg = session_config(cfg);
    let cache = SpeechCache::default();
    let started = std::time::Instant::now();
    let n = if cfg.tts.prerender { prerender(&cache, models, &voices, &engine, &session_cfg)? } else { 0 };
    tracing::info!("{} sentences ready ({:.0} s of audio; {n} rendered now) in {:.1} s", cache.len(), cache.seconds(), started.elapsed().as_secs_f64());
    // One pass through the models, as `ivr serve` does, so the first turn is not a cold start.
    let hello = voices.for_language("en").synthesize("Hello, how can I help you?", RATE)?;
    whisper.transcribe(&hello.samples, &cfg.stt.whisper)?;
    engine.embedder.embed_one("hello")?;
    if let Some(t) = &turn {
        t.probability(&hello.samples)?;
    }
    let llm = if o.llm { Some(crate::load::start_llm(models, cfg)?) } else { None };
    // The store's writer, as `ivr serve` runs it (its runtime kept for as long as it writes).
    let runtime = ivr_web::tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let record = if o.store {
        let store = runtime.block_on(ivr_store::Store::open(&cfg.records.url)).with_context(|| format!("cannot open the store {}", cfg.records.url))?;
        Some(call_control::record::RecordSink::start(store, runtime.handle().clone())?)
    } else {
        None
    };
    for (spec, caller) in calls.iter().zip(&callers) {
        let sim = Simulator {
            workers: Workers { whisper: &whisper, stt: &cfg.stt.whisper, voices: &voices, cache: &cache, engine: &engine, llm: llm.as_ref().map(|l| &l.client), turn: turn.as_ref() },
            times: JobTimes::default(),
            wall_start: spec.at.unwrap_or_else(jiff::Timestamp::now),
            tail: Duration::from_secs_f64(o.tail_secs.clamp(0.0, 600.0)),
            realtime: o.realtime,
            record: record.clone(),
        };
        let rec = sim.run(CallSession::new(session_cfg.clone(), vad.clone()).with_llm(o.llm).with_turn_model(turn.is_some()), caller);
        // Each call is in the store before the next starts: a later call of the same caller
        // finds it (the caller's history).
        if let Some(sink) = &record {
            anyhow::ensure!(sink.flush(Duration::from_secs(30)), "the call's record was not written to {} in 30 s", cfg.records.url);
        }
        if let Some(out) = o.output {
            write_stereo(out, &rec).with_context(|| format!("cannot write {}", out.display()))?;
        }
        if o.json {
            println!("{}", serde_json::to_string(&report(&rec))?);
        } else {
            if calls.len() > 1 {
                println!("--- {}", spec.file.display());
            }
            print_human(&rec);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The record with per-turn latencies in milliseconds (what a reader wants from the JSON).
fn report(rec: &CallRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(rec).unwrap_or_default();
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1000.0).round());
    v["latency"] = rec
        .turns
        .iter()
        .map(|t| {
            let after_end = |x: Option<Duration>| ms(x.map(|x| x.saturating_sub(t.speech_end)));
            serde_json::json!({
                "voice_to_voice_ms": ms(t.voice_to_voice()),
                "endpoint_ms": after_end(Some(t.endpoint)),
                "stt_final_ms": after_end(t.stt_final),
                "understood_ms": after_end(t.understood),
                "first_llm_token_ms": after_end(t.first_llm_token),
                "first_tts_audio_ms": after_end(t.first_tts_audio),
                "early_stt": t.early_stt, "llm": t.llm, "filler": t.filler,
                "model_endpoint": t.model_endpoint, "end_of_turn_prob": t.end_of_turn_prob, "rejoined": t.rejoined,
                "speech_end_secs": t.speech_end.as_secs_f64(),
            })
        })
        .collect();
    v
}

fn print_human(rec: &CallRecord) {
    for line in &rec.transcript {
        let who = match line.who {
            voice_pipeline::session::Speaker::Caller => "caller",
            voice_pipeline::session::Speaker::Bot => "bot",
        };
        println!("{:7.2}s {who:>6}: {}", line.at_secs, line.text);
    }
    for a in &rec.actions {
        println!("action: {}", serde_json::to_string(a).unwrap_or_default());
    }
    if let Some(turns) = report(rec)["latency"].as_array() {
        for (i, t) in turns.iter().enumerate() {
            eprintln!(
                "turn {}: voice-to-voice {} ms (endpoint {}, stt {}, dialogue {}, llm {}, tts {}){}",
                i + 1,
                t["voice_to_voice_ms"],
                t["endpoint_ms"],
                t["stt_final_ms"],
                t["understood_ms"],
                t["first_llm_token_ms"],
                t["first_tts_audio_ms"],
                if t["early_stt"] == true { ", early STT" } else { "" }
            );
        }
    }
    eprintln!("call: {:.1} s simulated", rec.duration_secs);
}
