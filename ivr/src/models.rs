//! `ivr models list|convert`: the model files and the CTranslate2 -> whisper.cpp conversion.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use ivr_models::{ModelDir, WhisperPrecision};

use crate::load::*;

pub(crate) fn list_models(models: &ModelDir) -> anyhow::Result<ExitCode> {
    let manifest = models.manifest()?;
    println!("models directory: {}", models.root().display());
    for pkg in &manifest.package {
        println!("{:<24} {}  [{}; {}]", pkg.id, pkg.what, pkg.pip, pkg.license);
        for dst in pkg.files.values() {
            let path = models.data().join(dst);
            let state = match std::fs::metadata(&path) {
                Ok(m) => format!("{:.1} MB", m.len() as f64 / 1e6),
                Err(_) if dst.ends_with(".part1") || dst.ends_with(".part2") => "joined".to_string(),
                Err(_) => "MISSING".to_string(),
            };
            println!("    {:<60} {state}", path.display());
        }
    }
    println!("converted whisper.cpp models:");
    for model in ivr_models::WHISPER_MODELS {
        for p in WhisperPrecision::ALL {
            let path = models.whisper_ggml(model, p);
            let state = std::fs::metadata(&path).map(|m| format!("{:.1} MB", m.len() as f64 / 1e6)).unwrap_or("not converted".into());
            println!("    {:<60} {state}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn convert_models(models: &ModelDir, only: Option<&str>, precisions: &[String], force: bool) -> anyhow::Result<ExitCode> {
    let precisions = precisions.iter().map(|p| parse_precision(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let names: Vec<&str> = match only {
        Some(m) if ivr_models::WHISPER_MODELS.contains(&m) => vec![m],
        Some(m) => bail!("unknown Whisper model {m:?} (use {})", ivr_models::WHISPER_MODELS.join(" or ")),
        None => ivr_models::WHISPER_MODELS.to_vec(),
    };
    for name in names {
        for &p in &precisions {
            let out = models.whisper_ggml(name, p);
            if out.exists() && !force && ivr_models::whisper_ggml::validate(&out).is_ok() {
                println!("convert: {name} {} present ({})", p.suffix(), out.display());
                continue;
            }
            let started = Instant::now();
            let report = ivr_models::whisper_ggml::convert(&models.whisper_ct2(name), &out, p)?;
            println!(
                "convert: {name} {} -> {} ({} tensors, {:.1} MB, {:.1} s)",
                p.suffix(), out.display(), report.tensors, report.bytes as f64 / 1e6, started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
