//! `ivr say`: text to a WAV with the configured voice.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use ivr_models::ModelDir;
use voice_pipeline::audio::{self, Audio};

use crate::config::Config;
use crate::load::*;

pub(crate) fn say(models: &ModelDir, cfg: &Config, text: &str, output: &Path, rate: Option<u32>, language: &str, json: bool) -> anyhow::Result<ExitCode> {
    if rate == Some(0) {
        bail!("--rate must be a positive sample rate");
    }
    let voices = load_voices(models, cfg)?;
    let voice = voices.for_language(language);
    let rate = rate.unwrap_or(voice.native_rate());
    let started = Instant::now();
    let mut first_audio_ms = None;
    let mut out = Audio::new(Vec::new(), rate);
    for chunk in voice.stream(text, rate)? {
        out.samples.extend(chunk?.samples);
        first_audio_ms.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
    }
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    audio::wav::write_wav(output, &out)?;
    let rtf = total_ms / 1000.0 / out.duration_secs().max(1e-9);
    if json {
        println!(
            "{}",
            serde_json::json!({"output": output, "rate": rate, "audio_secs": out.duration_secs(),
                "first_audio_ms": first_audio_ms, "total_ms": total_ms, "rtf": rtf, "voice": voice.spec().name})
        );
    } else {
        eprintln!(
            "{}: {:.2} s at {} Hz; first audio after {:.0} ms, all after {:.0} ms (real-time factor {:.3})",
            output.display(), out.duration_secs(), rate, first_audio_ms.unwrap_or(0.0), total_ms, rtf
        );
    }
    Ok(ExitCode::SUCCESS)
}
