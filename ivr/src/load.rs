//! Loading what the commands share: the model directory, the models, the tenant and its engine, the LLM.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use ivr_models::{ModelDir, WhisperPrecision};
use voice_pipeline::audio::{self, Audio};
use voice_pipeline::stt::WhisperModel;
use voice_pipeline::tts::Voices;
use voice_pipeline::vad::SileroModel;

use crate::config::{self, Config};

pub(crate) fn model_dir(cfg: &Config) -> anyhow::Result<ModelDir> {
    Ok(match &cfg.models_dir {
        Some(dir) => ModelDir::new(dir),
        None => ModelDir::locate()?,
    })
}

pub(crate) fn parse_precision(s: &str) -> anyhow::Result<WhisperPrecision> {
    WhisperPrecision::parse(s).with_context(|| format!("unknown precision {s:?} (use f16, q8_0 or q5_1)"))
}

pub(crate) fn load_whisper(models: &ModelDir, stt: &config::SttSection) -> anyhow::Result<WhisperModel> {
    if !ivr_models::WHISPER_MODELS.contains(&stt.model.as_str()) {
        bail!("unknown Whisper model {:?} (use {})", stt.model, ivr_models::WHISPER_MODELS.join(" or "));
    }
    let path = models.whisper_ggml(&stt.model, parse_precision(&stt.precision)?);
    Ok(WhisperModel::load(&path)?)
}

/// Decodes a file and brings it to `rate`.
pub(crate) fn read_audio(path: &Path, rate: u32) -> anyhow::Result<(Audio, f64)> {
    let started = Instant::now();
    let audio = audio::decode_file(path)?;
    let audio = audio.resampled(rate);
    Ok((audio, started.elapsed().as_secs_f64() * 1000.0))
}

pub(crate) fn load_voices(models: &ModelDir, cfg: &Config) -> anyhow::Result<Voices> {
    voice_pipeline::init_runtime(models)?;
    let specs = match &cfg.tts.voices {
        Some(path) => Voices::read_file(path)?,
        None => vec![Voices::default_spec(models)],
    };
    Ok(Voices::load(specs)?)
}

pub(crate) fn load_vad(models: &ModelDir) -> anyhow::Result<SileroModel> {
    voice_pipeline::init_runtime(models)?;
    let path = models.require(models.silero_vad(), "Silero VAD")?;
    Ok(SileroModel::load(&path)?)
}

/// The learned end-of-turn model, if the session uses it and it loads. Without it turns end after
/// the fixed hangover, which is said once here.
pub(crate) fn load_turn_model(models: &ModelDir, cfg: &Config) -> Option<voice_pipeline::turn::TurnModel> {
    if !cfg.session.end_of_turn_model {
        return None;
    }
    let loaded = models
        .require(models.smart_turn(), "the Smart Turn end-of-turn model")
        .map_err(anyhow::Error::from)
        // One thread (105 ms a question; 80 ms on two): ONNX Runtime's extra pool threads would
        // be made here, at the media threads' priority, and spin.
        .and_then(|path| Ok(voice_pipeline::turn::TurnModel::load(&path, 1)?));
    match loaded {
        Ok(model) => Some(model),
        Err(e) => {
            tracing::warn!("{e:#}; turns end after the fixed {} ms hangover instead", cfg.vad.hangover_ms);
            eprintln!("ivr: warning: {e:#}; turns end after the fixed {} ms hangover instead", cfg.vad.hangover_ms);
            None
        }
    }
}

/// The recogniser's prompt: the tenant's own names, so that they are heard as written (see
/// `KnowledgeBase::vocabulary`). Without a tenant (transcribing files elsewhere) there is none.
pub(crate) fn prime_with_tenant_names(cfg: &mut Config) {
    if !cfg.stt.tenant_vocabulary || cfg.stt.whisper.initial_prompt.is_some() {
        return;
    }
    let Ok(dir) = tenant_dir(cfg) else { return };
    match dialogue::knowledge::KnowledgeBase::load(&dir) {
        Ok(kb) => {
            let names = kb.vocabulary(24);
            if !names.is_empty() {
                cfg.stt.whisper.initial_prompt = Some(format!("{}.", names.join(", ")));
            }
        }
        // The commands that need the knowledge report the problem themselves.
        Err(e) => tracing::debug!("no tenant vocabulary for the recogniser: {e}"),
    }
}

pub(crate) fn tenant_dir(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &cfg.tenant_dir {
        return Ok(dir.clone());
    }
    match ivr_models::find_upwards("tenant/demo/intents.toml") {
        Some(dir) => Ok(dir.join("tenant/demo")),
        None => bail!("cannot find the tenant directory (tenant/demo); set tenant_dir in the config file"),
    }
}

pub(crate) fn load_engine(models: &ModelDir, cfg: &Config) -> anyhow::Result<dialogue::Engine> {
    let tenant = tenant_dir(cfg)?;
    let embeddings = models.data().join("embeddings/all-MiniLM-L6-v2");
    let tools: Box<dyn dialogue::tools::Tools> = match (cfg.tools.backend.as_str(), &cfg.tools.url) {
        ("local", _) => Box::new(dialogue::tools::LocalTools::open(&tenant, &dialogue::tools::default_db_path(&tenant))?),
        ("webhook", Some(url)) => {
            let hours = dialogue::tools::Hours::load(&tenant.join("hours.toml"))?;
            Box::new(dialogue::webhook::WebhookTools::with_ca(url, cfg.tools.ca_file.as_deref(), hours)?)
        }
        ("webhook", None) => bail!("[tools] backend = \"webhook\" needs a url"),
        (other, _) => bail!("[tools] backend {other:?}: use \"local\" or \"webhook\""),
    };
    Ok(dialogue::Engine::with_tools(&tenant, &embeddings, tools, cfg.dialogue.clone())?)
}

pub(crate) fn print_turn(turn: &dialogue::manager::Turn, ms: f64, json: bool) {
    if json {
        println!("{}", serde_json::json!({"intent": turn.intent, "confidence": turn.confidence, "reply": turn.reply,
            "language": turn.language, "source": turn.source, "action": turn.action, "llm_worded": turn.llm_worded, "latency_ms": ms}));
        return;
    }
    if !turn.reply.is_empty() {
        println!("bot: {}", turn.reply);
    }
    let intent = turn.intent.as_deref().map(|i| format!("{i} {:.2}", turn.confidence.unwrap_or(0.0))).unwrap_or_default();
    eprintln!("     [{intent}] {ms:.0} ms");
    if let Some(action) = &turn.action {
        eprintln!("     action: {}", serde_json::to_string(action).unwrap_or_default());
    }
}

/// The LLM worker for commands that use it: the embedded one started here, or the configured server.
pub(crate) struct LlmHandle {
    pub(crate) client: dialogue::llm::LlmClient,
    pub(crate) _supervisor: Option<crate::llm_worker::Supervisor>,
}

pub(crate) fn start_llm(models: &ModelDir, cfg: &Config) -> anyhow::Result<LlmHandle> {
    if cfg.llm.backend == "embedded" {
        let sup = crate::llm_worker::Supervisor::start(&cfg.llm, &models.data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"))?;
        Ok(LlmHandle { client: sup.client.clone(), _supervisor: Some(sup) })
    } else {
        Ok(LlmHandle { client: cfg.llm.client()?, _supervisor: None })
    }
}

/// Runs a turn's LLM job, if any, and keeps the LLM's words only if the guard accepts them.
pub(crate) fn improve_with_llm(mut turn: dialogue::manager::Turn, client: Option<&dialogue::llm::LlmClient>) -> dialogue::manager::Turn {
    use dialogue::llm::{ChatMessage, Options};
    let (Some(job), Some(client)) = (turn.llm.take(), client) else { return turn };
    let messages = [ChatMessage::new("system", &job.system), ChatMessage::new("user", &job.user)];
    let opts = Options { max_tokens: job.max_tokens, stop: vec!["\n".into()], grammar: job.grammar.clone() };
    match client.chat(&messages, &opts, |_| {}) {
        Ok(c) => {
            if !turn.apply_llm(&job, &c.text) {
                tracing::info!(text = %ivr_privacy::mask(&c.text), purpose = ?job.purpose, "LLM text refused by the guard; keeping the fixed words");
            }
        }
        Err(e) => tracing::warn!("LLM unavailable ({e}); speaking the fixed reply"),
    }
    turn
}

pub(crate) fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}
