//! `ivr wer`: word error rate of the recogniser over the fixtures.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use ivr_models::ModelDir;
use voice_pipeline::audio::{self};

use crate::config::{self};
use crate::load::*;

/// Reads a fixtures TSV: (path, transcript) rows, paths resolved against the TSV's directory.
pub(crate) fn read_fixtures(path: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut cols = line.split('\t');
        match (cols.next(), cols.next()) {
            (Some(file), Some(transcript)) if !file.is_empty() => out.push((base.join(file), transcript.to_string())),
            _ => bail!("{}: line {}: expected file<TAB>transcript", path.display(), i + 1),
        }
    }
    Ok(out)
}

pub(crate) fn wer_cmd(models: &ModelDir, stt: &config::SttSection, fixtures: &Path, hyp: Option<&Path>, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    use voice_pipeline::wer;
    let rows: Vec<_> = read_fixtures(fixtures)?
        .into_iter()
        .filter(|(p, _)| only.is_none_or(|o| p.to_string_lossy().contains(o)))
        .collect();
    let given: Option<std::collections::HashMap<String, String>> = match hyp {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
            let mut map = std::collections::HashMap::new();
            for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: line {}", path.display(), i + 1))?;
                let file = v["file"].as_str().with_context(|| format!("{}: line {}: no \"file\"", path.display(), i + 1))?;
                let name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                map.insert(name, v["text"].as_str().unwrap_or_default().to_string());
            }
            Some(map)
        }
        None => None,
    };
    let whisper = if given.is_none() { Some(load_whisper(models, stt)?) } else { None };
    let (mut errors, mut words, mut stt_ms, mut audio_secs, mut noise_ok, mut noise_total) = (0, 0, 0.0, 0.0, 0, 0);
    for (path, reference) in &rows {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = match (&given, &whisper) {
            (Some(map), _) => map.get(&name).cloned().with_context(|| format!("no hypothesis for {name}"))?,
            (None, Some(w)) => {
                let (audio, _) = read_audio(path, audio::RATE)?;
                let t = w.transcribe(&audio.samples, &stt.whisper)?;
                stt_ms += t.elapsed_ms;
                audio_secs += t.audio_secs;
                t.text
            }
            (None, None) => unreachable!("a model is loaded when no hypotheses are given"),
        };
        let (e, n) = wer::score(reference, &text);
        if reference.trim().is_empty() {
            noise_total += 1;
            noise_ok += usize::from(wer::normalize(&text).is_empty());
        } else {
            errors += e;
            words += n;
        }
        if json {
            println!("{}", serde_json::json!({"file": path, "reference": reference, "text": text, "errors": e, "words": n}));
        } else {
            println!("{:>3}/{:<3} {:<48} {}", e, n, name, text);
        }
    }
    let wer = errors as f64 / words.max(1) as f64;
    let summary = serde_json::json!({
        "summary": true, "files": rows.len(), "words": words, "errors": errors, "wer": wer,
        "speech_free_files": noise_total, "speech_free_silent": noise_ok,
        "stt_ms_total": stt_ms, "audio_secs_total": audio_secs,
        "model": if given.is_some() { "given".to_string() } else { format!("{}-{}", stt.model, stt.precision) },
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "WER {:.1}% ({errors} errors / {words} words, {} files); speech-free files transcribed as nothing: {noise_ok}/{noise_total}",
            wer * 100.0, rows.len()
        );
        if audio_secs > 0.0 {
            println!("STT {:.0} ms for {:.1} s of audio (real-time factor {:.3})", stt_ms, audio_secs, stt_ms / 1000.0 / audio_secs);
        }
    }
    Ok(ExitCode::SUCCESS)
}
