//! `ivr transcribe`: files to text with the configured Whisper model.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use ivr_models::ModelDir;
use voice_pipeline::audio::{self};

use crate::config::{self};
use crate::load::*;

pub(crate) fn transcribe(models: &ModelDir, stt: &config::SttSection, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let load_started = Instant::now();
    let whisper = load_whisper(models, stt)?;
    let load_ms = load_started.elapsed().as_secs_f64() * 1000.0;
    let mut failed = 0;
    for file in files {
        let result = read_audio(file, audio::RATE).and_then(|(audio, decode_ms)| {
            let t = whisper.transcribe(&audio.samples, &stt.whisper)?;
            Ok((t, decode_ms))
        });
        match result {
            Ok((t, decode_ms)) => {
                if json {
                    let v = serde_json::json!({
                        "file": file, "text": t.text, "language": t.language, "audio_secs": t.audio_secs,
                        "decode_ms": decode_ms, "stt_ms": t.elapsed_ms, "audio_ctx": t.audio_ctx,
                        "model": stt.model, "precision": stt.precision, "model_load_ms": load_ms,
                    });
                    println!("{v}");
                } else {
                    println!("{}\t[{}] {}", file.display(), t.language, t.text);
                    eprintln!(
                        "  {:.2} s audio, decode {:.0} ms, stt {:.0} ms (audio_ctx {}), model load {:.0} ms",
                        t.audio_secs, decode_ms, t.elapsed_ms, t.audio_ctx, load_ms
                    );
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("ivr: {e:#}");
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
