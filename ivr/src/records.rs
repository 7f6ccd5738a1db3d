//! `ivr records export [--kind calls|follow-ups|queue] [--format jsonl|csv] [-o FILE]`: the
//! records out of the store, for reports and other tools. Calls as JSON lines: one call per line
//! with its turns and events (the same document as `GET /api/v1/calls/{id}`); as CSV: one row per
//! line of conversation, with its call. Follow-ups (callbacks and voicemails, open ones first) and
//! the queue's log (in the manner of Asterisk's queue_log) as JSON lines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::Config;

#[derive(clap::Subcommand)]
pub enum RecordsCommand {
    /// Every call, oldest first.
    Export {
        /// Calls, follow-ups (callbacks and voicemails), the queue's log or the audit log.
        #[arg(long, default_value = "calls", value_parser = ["calls", "follow-ups", "queue", "audit"])]
        kind: String,
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Removes what is older than `[retention]` allows: recordings (files deleted) and the words
    /// of calls and voicemails.
    Purge,
}

/// Applies `[retention]` now: returns (calls whose words were purged, audio files deleted).
pub async fn purge(store: &ivr_store::Store, retention: &crate::config::RetentionSection, actor: &str) -> anyhow::Result<(u64, usize)> {
    let before = |days: u32| jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(i64::from(days) * 24)).map(|t| t.to_string());
    let mut transcripts = 0;
    if let Some(days) = retention.transcripts_days {
        transcripts = store.purge_transcripts(&before(days)?).await?;
    }
    let mut deleted = 0;
    if let Some(days) = retention.audio_days {
        for path in store.purge_audio(&before(days)?).await? {
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot delete the recording {path}: {e}"),
            }
        }
    }
    if transcripts > 0 || deleted > 0 {
        let detail = serde_json::json!({"transcripts": transcripts, "audio_files": deleted, "retention": retention});
        store.audit(&ivr_store::AuditLine::now(actor, "purge", None, Some(detail))).await?;
    }
    Ok((transcripts, deleted))
}

fn cli_actor() -> String {
    format!("cli:{}", std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into()))
}

pub fn run(cfg: &Config, command: RecordsCommand) -> anyhow::Result<std::process::ExitCode> {
    let (kind, format, output) = match command {
        RecordsCommand::Export { kind, format, output } => (kind, format, output),
        RecordsCommand::Purge => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let store = runtime.block_on(ivr_store::Store::open(&cfg.records.url)).with_context(|| format!("cannot open the store {}", cfg.records.url))?;
            if !cfg.retention.is_set() {
                anyhow::bail!("nothing to purge: set [retention] audio_days and/or transcripts_days in the config");
            }
            let (transcripts, audio) = runtime.block_on(purge(&store, &cfg.retention, &cli_actor()))?;
            runtime.block_on(store.close());
            println!("purged: the words of {transcripts} calls, {audio} recordings");
            return Ok(std::process::ExitCode::SUCCESS);
        }
    };
    if kind != "calls" && format == "csv" {
        anyhow::bail!("--kind {kind} is exported as JSON lines only (--format jsonl)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = runtime.block_on(ivr_store::Store::open(&cfg.records.url)).with_context(|| format!("cannot open the store {}", cfg.records.url))?;
    // Who took the records out, and which: the audit log's line, written before anything is.
    let detail = serde_json::json!({"format": format, "output": output.as_ref().map(|p| p.display().to_string())});
    runtime.block_on(store.audit(&ivr_store::AuditLine::now(&cli_actor(), "export", Some(&kind), Some(detail)))).context("cannot write the audit log; nothing exported")?;
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    if kind != "calls" {
        let lines: Vec<serde_json::Value> = runtime.block_on(async {
            let r = if kind == "queue" {
                store.queue_events(None).await.map(|v| v.iter().map(|l| serde_json::json!(l)).collect())
            } else if kind == "audit" {
                store.audit_log(i64::MAX).await.map(|v| v.iter().rev().map(|l| serde_json::json!(l)).collect())
            } else {
                store.follow_ups().await.map(|v| v.iter().map(|f| serde_json::json!(f)).collect())
            };
            store.close().await;
            r
        })?;
        for l in lines {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let calls = runtime.block_on(async {
        let calls = store.all_calls().await;
        store.close().await;
        calls
    })?;
    if format == "jsonl" {
        for c in &calls {
            writeln!(out, "{}", c.document())?;
        }
    } else {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "call_id", "caller", "started_at", "ended_by", "duration_secs", "seq", "at_secs", "speaker", "text", "language", "intent",
            "confidence", "endpoint_ms", "stt_ms", "understand_ms", "llm_first_token_ms", "tts_first_audio_ms", "voice_to_voice_ms",
        ])?;
        let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for c in &calls {
            for t in &c.turns {
                w.write_record([
                    c.call.id.clone(),
                    c.call.caller.clone(),
                    c.call.started_at.clone(),
                    c.call.ended_by.clone().unwrap_or_default(),
                    num(c.call.duration_secs),
                    t.seq.to_string(),
                    t.at_secs.to_string(),
                    t.speaker.clone(),
                    t.text.clone(),
                    t.language.clone().unwrap_or_default(),
                    t.intent.clone().unwrap_or_default(),
                    num(t.confidence),
                    num(t.stages.endpoint_ms),
                    num(t.stages.stt_ms),
                    num(t.stages.understand_ms),
                    num(t.stages.llm_first_token_ms),
                    num(t.stages.tts_first_audio_ms),
                    num(t.stages.voice_to_voice_ms),
                ])?;
            }
        }
        w.flush()?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    out.flush()?;
    Ok(std::process::ExitCode::SUCCESS)
}
