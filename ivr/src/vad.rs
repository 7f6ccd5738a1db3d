//! `ivr vad`: where a file has speech.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use ivr_models::ModelDir;
use voice_pipeline::audio::{self};

use crate::config::Config;
use crate::load::*;

pub(crate) fn vad_cmd(models: &ModelDir, cfg: &Config, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let model = load_vad(models)?;
    let (audio, _) = read_audio(file, audio::RATE)?;
    let started = Instant::now();
    let segments = voice_pipeline::vad::segments(&model, &cfg.vad, &audio.samples)?;
    let elapsed = started.elapsed().as_secs_f64();
    if json {
        let segs: Vec<_> = segments.iter().map(|(s, e)| serde_json::json!({"start": s, "end": e})).collect();
        println!(
            "{}",
            serde_json::json!({"file": file, "audio_secs": audio.duration_secs(), "segments": segs,
                "vad_ms_per_audio_sec": elapsed * 1000.0 / audio.duration_secs().max(1e-9)})
        );
    } else {
        for (s, e) in &segments {
            println!("{s:.2}\t{e:.2}");
        }
        if segments.is_empty() {
            eprintln!("{}: no speech", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
