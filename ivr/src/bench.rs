//! `ivr bench tts|vad|turn|llm`: timings of one stage at a time.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use ivr_models::ModelDir;
use voice_pipeline::audio::{self};

use crate::config::Config;
use crate::load::*;

pub(crate) fn bench_tts(models: &ModelDir, cfg: &Config, texts: &Path, rate: u32) -> anyhow::Result<ExitCode> {
    let voices = load_voices(models, cfg)?;
    let voice = voices.for_language("en");
    voice.synthesize("Warming up.", rate)?;
    let lines = std::fs::read_to_string(texts).with_context(|| format!("{}", texts.display()))?;
    for text in lines.lines().filter(|l| !l.trim().is_empty()) {
        let started = Instant::now();
        let mut first = None;
        let mut samples = 0;
        for chunk in voice.stream(text, rate)? {
            samples += chunk?.samples.len();
            first.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
        }
        let total_ms = started.elapsed().as_secs_f64() * 1000.0;
        let audio_secs = samples as f64 / rate as f64;
        println!(
            "{}",
            serde_json::json!({"text": text, "first_audio_ms": first, "total_ms": total_ms, "audio_secs": audio_secs,
                "rtf": total_ms / 1000.0 / audio_secs.max(1e-9)})
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn bench_turn(models: &ModelDir, files: &[PathBuf], threads: usize) -> anyhow::Result<ExitCode> {
    voice_pipeline::init_runtime(models)?;
    let path = models.require(models.smart_turn(), "the Smart Turn end-of-turn model")?;
    let model = voice_pipeline::turn::TurnModel::load(&path, threads)?;
    model.probability(&[0.0; 16_000])?;
    for f in files {
        let (audio, _) = read_audio(f, audio::RATE)?;
        let started = Instant::now();
        let p = model.probability(&audio.samples).with_context(|| f.display().to_string())?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        println!("{}", serde_json::json!({"file": f.display().to_string(), "probability": p, "ms": ms}));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn bench_vad(models: &ModelDir, cfg: &Config, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let model = load_vad(models)?;
    let mut audio = Vec::new();
    for f in files {
        audio.extend(read_audio(f, audio::RATE)?.0.samples);
    }
    voice_pipeline::vad::segments(&model, &cfg.vad, &audio[..audio.len().min(audio::RATE as usize)])?;
    let started = Instant::now();
    let segments = voice_pipeline::vad::segments(&model, &cfg.vad, &audio)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let secs = audio.len() as f64 / audio::RATE as f64;
    println!("{}", serde_json::json!({"audio_secs": secs, "vad_ms": ms, "ms_per_audio_sec": ms / secs, "segments": segments.len()}));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn bench_llm(models: &ModelDir, cfg: &Config, turns: usize) -> anyhow::Result<ExitCode> {
    use dialogue::llm::{ChatMessage, Options};
    let mut llm_cfg = cfg.llm.clone();
    llm_cfg.url = "http://127.0.0.1:18291".into();
    let sup = crate::llm_worker::Supervisor::start(&llm_cfg, &models.data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"))?;
    let kb = dialogue::knowledge::KnowledgeBase::load(&tenant_dir(cfg)?)?;
    // A realistic system prompt: the rules and a few knowledge entries (about 300 tokens).
    let facts: Vec<String> = kb.entries.iter().take(6).map(|e| format!("- {}", e.answer)).collect();
    let system = format!(
        "You are the phone assistant of Lumen Home Electronics. Answer in one or two short sentences, only from these facts. \
         If the facts do not answer the question, say you don't know and offer a colleague.\nFacts:\n{}",
        facts.join("\n")
    );
    let questions = ["Hello, how are you today?", "Thanks for your help!", "Can you tell me something about your company?",
        "What's the best TV to buy?", "I'm not sure what I need.", "Could you repeat that more slowly?", "Who am I speaking with?",
        "Do you like your job?"];
    let opts = Options { max_tokens: 48, ..Options::default() };
    for (mode, fresh) in [("cold", true), ("warm", false)] {
        for (i, q) in questions.iter().cycle().take(turns).enumerate() {
            // Cold: a system prompt the cache has not seen (a unique first line); warm: the same one.
            let sys = if fresh { format!("Call {i} {mode}.\n{system}") } else { system.clone() };
            if !fresh && i == 0 {
                sup.client.chat(&[ChatMessage::new("system", &sys), ChatMessage::new("user", "hi")], &opts, |_| {})?;
            }
            let c = sup.client.chat(&[ChatMessage::new("system", &sys), ChatMessage::new("user", *q)], &opts, |_| {})?;
            let gen_ms = c.total_ms - c.first_token_ms.unwrap_or(0.0);
            println!("{}", serde_json::json!({"mode": mode, "question": q, "first_token_ms": c.first_token_ms,
                "first_sentence_ms": c.first_sentence_ms, "total_ms": c.total_ms, "tokens": c.tokens,
                "tokens_per_s": (c.tokens.saturating_sub(1)) as f64 / (gen_ms / 1000.0).max(1e-6),
                "prompt_tokens": c.server_timings["prompt_tokens"], "cached_tokens": c.server_timings["cached_tokens"], "reply": c.text}));
        }
    }
    Ok(ExitCode::SUCCESS)
}
