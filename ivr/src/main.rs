//! `ivr`: the on-device voice agent's command line.

mod config;
mod llm_worker;
mod records;
mod simulate;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use ivr_models::{ModelDir, WhisperPrecision};
use voice_pipeline::audio::{self, Audio};
use voice_pipeline::stt::WhisperModel;
use voice_pipeline::tts::Voices;
use voice_pipeline::vad::{self, SileroModel};

use config::Config;

#[derive(Parser)]
#[command(name = "ivr", version, about = "On-device voice agent for call centers")]
struct Cli {
    /// Settings file (TOML); defaults run the embedded models.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the voice agent: load the models once and serve (HTTP health check for now).
    Serve {
        /// HTTP address for health checks.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
        /// SIP address (UDP); default from the config's [sip] listen, 127.0.0.1:5060.
        #[arg(long)]
        sip: Option<std::net::SocketAddr>,
    },
    /// Transcribe audio files (WAV, FLAC, MP3, Ogg) with Whisper.
    Transcribe {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Whisper model: tiny.en or base.
        #[arg(long)]
        model: Option<String>,
        /// Model precision: f16, q8_0 or q5_1.
        #[arg(long)]
        precision: Option<String>,
        /// Spoken language ("en", "zh") or "auto" (multilingual model only).
        #[arg(long)]
        language: Option<String>,
        #[arg(long)]
        threads: Option<usize>,
        /// Run the encoder over the full 30 s window instead of trimming it to the audio.
        #[arg(long)]
        no_trim: bool,
        /// One JSON object per file.
        #[arg(long)]
        json: bool,
    },
    /// Speak text with Piper into a WAV file.
    Say {
        text: String,
        #[arg(short, long)]
        output: PathBuf,
        /// Output sample rate (8000 for G.711, 16000, 48000, ...); default: the voice's own.
        #[arg(long)]
        rate: Option<u32>,
        /// Language of the text, which picks the voice.
        #[arg(long, default_value = "en")]
        language: String,
        /// Print timing as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the speech segments of an audio file.
    Vad {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Ask the dialogue manager one question (text), printing intent, confidence, reply, action
    /// and latency.
    Ask {
        text: String,
        /// The calling number (caller ID), e.g. +4930111222.
        #[arg(long)]
        caller: Option<String>,
        /// The language the words are in ("en", "zh").
        #[arg(long, default_value = "en")]
        language: String,
        #[arg(long)]
        json: bool,
    },
    /// A text conversation with the dialogue manager (caller ID and keypad simulated).
    Chat {
        #[arg(long)]
        caller: Option<String>,
        /// Let the local LLM word small talk (starts the ivr-llm worker).
        #[arg(long)]
        llm: bool,
        #[arg(long)]
        json: bool,
    },
    /// A whole call from a caller recording (turns separated by pauses): prints the transcript,
    /// actions and per-turn timings, and writes the stereo call (caller left, bot right).
    Simulate {
        file: PathBuf,
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Run at the pace of a real call instead of as fast as the work allows.
        #[arg(long)]
        realtime: bool,
        /// The calling number (caller ID).
        #[arg(long)]
        caller: Option<String>,
        /// Let the local LLM word small talk and tool answers (starts the ivr-llm worker).
        #[arg(long)]
        llm: bool,
        /// Keys pressed: SECONDS:KEYS, e.g. 9.5:41234567# (repeatable).
        #[arg(long)]
        keys: Vec<String>,
        /// Return the bot's voice in the caller's channel after this many milliseconds.
        #[arg(long)]
        echo_ms: Option<u32>,
        /// Seconds simulated after the recording ends.
        #[arg(long, default_value_t = 4.0)]
        tail_secs: f64,
        /// The call's wall-clock start (RFC 3339, e.g. 2026-11-29T20:00:00Z), for answers that
        /// depend on the time ("are you open now?"); default: now.
        #[arg(long)]
        at: Option<jiff::Timestamp>,
    },
    /// Word error rate of Whisper (or of given hypotheses) on transcribed fixtures.
    Wer {
        /// TSV with columns file, transcript (paths relative to the TSV); empty transcripts are
        /// speech-free recordings, which must transcribe to nothing.
        #[arg(long, default_value = "audio-fixtures/transcripts.tsv")]
        fixtures: PathBuf,
        /// Score these transcripts (JSON lines with "file" and "text", as `ivr transcribe --json`
        /// prints) instead of transcribing.
        #[arg(long)]
        hyp: Option<PathBuf>,
        /// Only fixtures whose path contains this.
        #[arg(long)]
        only: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        precision: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Measurements for scripts/bench-speech.sh (models loaded and warmed once; JSON lines).
    #[command(hide = true)]
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Transcribe the microphone live, utterance by utterance (needs a sound card).
    Listen {
        /// Speak each transcript back on the speaker.
        #[arg(long)]
        echo: bool,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Model files: list them, or convert the Whisper models for whisper.cpp.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// The call records in the store ([records] url).
    Records {
        #[command(subcommand)]
        command: records::RecordsCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time to first audio and real-time factor for each line of a text file.
    Tts {
        texts: PathBuf,
        #[arg(long, default_value_t = 22050)]
        rate: u32,
    },
    /// VAD cost per second of audio over the given files.
    Vad { files: Vec<PathBuf> },
    /// The end-of-turn model's probability that each file ends a complete turn, and its time.
    Turn {
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// LLM turns through the worker: time to first token and first sentence, tokens/s, and the
    /// prefix KV cache's effect (warm: same system prompt as the turn before; cold: a new one).
    Llm {
        #[arg(long, default_value_t = 8)]
        turns: usize,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// What the manifest lists and whether each file is present.
    List,
    /// Convert the CTranslate2 Whisper models to whisper.cpp files (skips existing ones).
    Convert {
        /// Only this model (tiny.en or base).
        #[arg(long)]
        model: Option<String>,
        /// Precisions to produce.
        #[arg(long, value_delimiter = ',', default_value = "f16,q8_0")]
        precision: Vec<String>,
        /// Convert again even if the output exists.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A command-line tool whose reader goes away (`ivr models list | head`) ends quietly instead of
    // panicking on the failed write; the server instead ignores SIGPIPE, so a closed log pipe or a
    // caller hanging up mid-write is an error to handle, never the end of every call.
    // SAFETY: setting SIGPIPE's disposition before any thread starts.
    unsafe {
        let disposition = if matches!(cli.command, Command::Serve { .. }) { libc::SIG_IGN } else { libc::SIG_DFL };
        libc::signal(libc::SIGPIPE, disposition);
    }
    // symphonia logs probe failures as errors; the CLI reports those itself, naming the file.
    let filter = tracing_subscriber::EnvFilter::try_from_env("IVR_LOG").unwrap_or_else(|_| "warn,symphonia_core=off,symphonia=off".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ivr: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn model_dir(cfg: &Config) -> anyhow::Result<ModelDir> {
    Ok(match &cfg.models_dir {
        Some(dir) => ModelDir::new(dir),
        None => ModelDir::locate()?,
    })
}

fn parse_precision(s: &str) -> anyhow::Result<WhisperPrecision> {
    WhisperPrecision::parse(s).with_context(|| format!("unknown precision {s:?} (use f16, q8_0 or q5_1)"))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    // The records need no models.
    let command = match cli.command {
        Command::Records { command } => return records::run(&cfg, command),
        other => other,
    };
    let models = model_dir(&cfg)?;
    prime_with_tenant_names(&mut cfg);
    match command {
        Command::Transcribe { files, model, precision, language, threads, no_trim, json } => {
            let mut stt = cfg.stt.clone();
            if let Some(m) = model {
                stt.model = m;
            }
            if let Some(p) = precision {
                stt.precision = p;
            }
            if let Some(l) = language {
                stt.whisper.language = l;
            }
            if let Some(t) = threads {
                stt.whisper.threads = t;
            }
            if no_trim {
                stt.whisper.trim_audio_ctx = false;
            }
            transcribe(&models, &stt, &files, json)
        }
        Command::Serve { http, sip } => {
            serve::serve(&models, &cfg, http, sip)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Say { text, output, rate, language, json } => say(&models, &cfg, &text, &output, rate, &language, json),
        Command::Vad { file, json } => vad_cmd(&models, &cfg, &file, json),
        Command::Ask { text, caller, language, json } => ask(&models, &cfg, &text, caller.as_deref(), &language, json),
        Command::Chat { caller, llm, json } => chat(&models, &cfg, caller, llm, json),
        Command::Simulate { file, output, json, realtime, caller, llm, keys, echo_ms, tail_secs, at } => simulate::simulate(
            &models,
            &cfg,
            simulate::Options { file: &file, output: output.as_deref(), json, realtime, caller, llm, keys, echo_ms, tail_secs, at },
        ),
        Command::Wer { fixtures, hyp, only, model, precision, json } => {
            let mut stt = cfg.stt.clone();
            stt.model = model.unwrap_or(stt.model);
            stt.precision = precision.unwrap_or(stt.precision);
            wer_cmd(&models, &stt, &fixtures, hyp.as_deref(), only.as_deref(), json)
        }
        Command::Bench { what: BenchCommand::Tts { texts, rate } } => bench_tts(&models, &cfg, &texts, rate),
        Command::Bench { what: BenchCommand::Vad { files } } => bench_vad(&models, &cfg, &files),
        Command::Bench { what: BenchCommand::Turn { files, threads } } => bench_turn(&models, &files, threads),
        Command::Bench { what: BenchCommand::Llm { turns } } => bench_llm(&models, &cfg, turns),
        Command::Listen { echo, seconds } => listen(&models, &cfg, echo, seconds),
        Command::Records { .. } => unreachable!("handled above"),
        Command::Models { command: ModelsCommand::List } => list_models(&models),
        Command::Models { command: ModelsCommand::Convert { model, precision, force } } => {
            convert_models(&models, model.as_deref(), &precision, force)
        }
    }
}

fn load_whisper(models: &ModelDir, stt: &config::SttSection) -> anyhow::Result<WhisperModel> {
    if !ivr_models::WHISPER_MODELS.contains(&stt.model.as_str()) {
        bail!("unknown Whisper model {:?} (use {})", stt.model, ivr_models::WHISPER_MODELS.join(" or "));
    }
    let path = models.whisper_ggml(&stt.model, parse_precision(&stt.precision)?);
    Ok(WhisperModel::load(&path)?)
}

/// Decodes a file and brings it to `rate`.
fn read_audio(path: &Path, rate: u32) -> anyhow::Result<(Audio, f64)> {
    let started = Instant::now();
    let audio = audio::decode_file(path)?;
    let audio = audio.resampled(rate);
    Ok((audio, started.elapsed().as_secs_f64() * 1000.0))
}

fn transcribe(models: &ModelDir, stt: &config::SttSection, files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
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

fn load_voices(models: &ModelDir, cfg: &Config) -> anyhow::Result<Voices> {
    voice_pipeline::init_runtime(models)?;
    let specs = match &cfg.tts.voices {
        Some(path) => Voices::read_file(path)?,
        None => vec![Voices::default_spec(models)],
    };
    Ok(Voices::load(specs)?)
}

fn say(models: &ModelDir, cfg: &Config, text: &str, output: &Path, rate: Option<u32>, language: &str, json: bool) -> anyhow::Result<ExitCode> {
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

fn load_vad(models: &ModelDir) -> anyhow::Result<SileroModel> {
    voice_pipeline::init_runtime(models)?;
    let path = models.require(models.silero_vad(), "Silero VAD")?;
    Ok(SileroModel::load(&path)?)
}

/// The learned end-of-turn model, if the session uses it and it loads. Without it turns end after
/// the fixed hangover, which is said once here.
fn load_turn_model(models: &ModelDir, cfg: &Config) -> Option<voice_pipeline::turn::TurnModel> {
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

fn vad_cmd(models: &ModelDir, cfg: &Config, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let model = load_vad(models)?;
    let (audio, _) = read_audio(file, audio::RATE)?;
    let started = Instant::now();
    let segments = vad::segments(&model, &cfg.vad, &audio.samples)?;
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

fn listen(models: &ModelDir, cfg: &Config, echo: bool, seconds: Option<f64>) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "live-audio")]
    {
        use voice_pipeline::vad::{Vad, VadEvent};
        let vad_model = load_vad(models)?;
        let voices = if echo { Some(load_voices(models, cfg)?) } else { None };
        let whisper = load_whisper(models, &cfg.stt)?;
        let mic = voice_pipeline::live::open_microphone()?;
        eprintln!("listening on the default microphone ({} Hz); speak, then pause", mic.rate);
        let mut resampler = audio::Resampler::new(mic.rate, audio::RATE);
        let mut vad = Vad::new(vad_model, cfg.vad.clone());
        let mut stream: Vec<f32> = Vec::new();
        let started = Instant::now();
        loop {
            if seconds.is_some_and(|s| started.elapsed().as_secs_f64() > s) {
                return Ok(ExitCode::SUCCESS);
            }
            let block = match mic.blocks.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(b) => b,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => bail!("the microphone stopped"),
            };
            let frame = resampler.process(&block);
            let now = std::time::Duration::from_secs_f64(stream.len() as f64 / audio::RATE as f64);
            stream.extend_from_slice(&frame);
            for event in vad.push(&frame, now)? {
                if let VadEvent::SpeechEnd { start, end } = event {
                    let a = (start.as_secs_f64() * audio::RATE as f64) as usize;
                    let b = ((end.as_secs_f64() * audio::RATE as f64) as usize).min(stream.len());
                    let t = whisper.transcribe(&stream[a.min(b)..b], &cfg.stt.whisper)?;
                    println!("{}", t.text);
                    if let Some(voices) = &voices {
                        if !t.text.is_empty() {
                            let reply = voices.for_language(&t.language).synthesize(&t.text, 22050)?;
                            voice_pipeline::live::play(&reply)?;
                        }
                    }
                }
            }
        }
    }
    #[cfg(not(feature = "live-audio"))]
    {
        let _ = (models, cfg, echo, seconds);
        bail!("this build has no live audio support (built without the live-audio feature)")
    }
}

fn list_models(models: &ModelDir) -> anyhow::Result<ExitCode> {
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

fn convert_models(models: &ModelDir, only: Option<&str>, precisions: &[String], force: bool) -> anyhow::Result<ExitCode> {
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

/// Reads a fixtures TSV: (path, transcript) rows, paths resolved against the TSV's directory.
fn read_fixtures(path: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
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

fn wer_cmd(models: &ModelDir, stt: &config::SttSection, fixtures: &Path, hyp: Option<&Path>, only: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
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

fn bench_tts(models: &ModelDir, cfg: &Config, texts: &Path, rate: u32) -> anyhow::Result<ExitCode> {
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

fn bench_turn(models: &ModelDir, files: &[PathBuf], threads: usize) -> anyhow::Result<ExitCode> {
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

fn bench_vad(models: &ModelDir, cfg: &Config, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let model = load_vad(models)?;
    let mut audio = Vec::new();
    for f in files {
        audio.extend(read_audio(f, audio::RATE)?.0.samples);
    }
    vad::segments(&model, &cfg.vad, &audio[..audio.len().min(audio::RATE as usize)])?;
    let started = Instant::now();
    let segments = vad::segments(&model, &cfg.vad, &audio)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let secs = audio.len() as f64 / audio::RATE as f64;
    println!("{}", serde_json::json!({"audio_secs": secs, "vad_ms": ms, "ms_per_audio_sec": ms / secs, "segments": segments.len()}));
    Ok(ExitCode::SUCCESS)
}

/// The recogniser's prompt: the tenant's own names, so that they are heard as written (see
/// `KnowledgeBase::vocabulary`). Without a tenant (transcribing files elsewhere) there is none.
fn prime_with_tenant_names(cfg: &mut Config) {
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

fn tenant_dir(cfg: &Config) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &cfg.tenant_dir {
        return Ok(dir.clone());
    }
    match ivr_models::find_upwards("tenant/demo/intents.toml") {
        Some(dir) => Ok(dir.join("tenant/demo")),
        None => bail!("cannot find the tenant directory (tenant/demo); set tenant_dir in the config file"),
    }
}

fn load_engine(models: &ModelDir, cfg: &Config) -> anyhow::Result<dialogue::Engine> {
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

fn print_turn(turn: &dialogue::manager::Turn, ms: f64, json: bool) {
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

fn ask(models: &ModelDir, cfg: &Config, text: &str, caller: Option<&str>, language: &str, json: bool) -> anyhow::Result<ExitCode> {
    let engine = load_engine(models, cfg)?;
    let mut conversation = dialogue::manager::Conversation::new(caller);
    let started = Instant::now();
    let turn = conversation.handle(dialogue::manager::Input::Speech { text, language }, jiff_now(), &engine.brain());
    print_turn(&turn, started.elapsed().as_secs_f64() * 1000.0, json);
    Ok(ExitCode::SUCCESS)
}

/// The LLM worker for commands that use it: the embedded one started here, or the configured server.
struct LlmHandle {
    client: dialogue::llm::LlmClient,
    _supervisor: Option<llm_worker::Supervisor>,
}

fn start_llm(models: &ModelDir, cfg: &Config) -> anyhow::Result<LlmHandle> {
    if cfg.llm.backend == "embedded" {
        let sup = llm_worker::Supervisor::start(&cfg.llm, &models.data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"))?;
        Ok(LlmHandle { client: sup.client.clone(), _supervisor: Some(sup) })
    } else {
        Ok(LlmHandle { client: cfg.llm.client()?, _supervisor: None })
    }
}

/// Runs a turn's LLM job, if any, and keeps the LLM's words only if the guard accepts them.
fn improve_with_llm(mut turn: dialogue::manager::Turn, client: Option<&dialogue::llm::LlmClient>) -> dialogue::manager::Turn {
    use dialogue::llm::{ChatMessage, Options};
    let (Some(job), Some(client)) = (turn.llm.take(), client) else { return turn };
    let messages = [ChatMessage::new("system", &job.system), ChatMessage::new("user", &job.user)];
    let opts = Options { max_tokens: job.max_tokens, stop: vec!["\n".into()], grammar: job.grammar.clone() };
    match client.chat(&messages, &opts, |_| {}) {
        Ok(c) => {
            if !turn.apply_llm(&job, &c.text) {
                tracing::info!(text = %c.text, purpose = ?job.purpose, "LLM text refused by the guard; keeping the fixed words");
            }
        }
        Err(e) => tracing::warn!("LLM unavailable ({e}); speaking the fixed reply"),
    }
    turn
}

fn jiff_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// A text conversation over the same dialogue manager a call uses. Lines are the caller's words;
/// `/dtmf 41234567#` presses keys, `/caller +4930111222` sets the calling number (new call),
/// `/quit` ends.
fn chat(models: &ModelDir, cfg: &Config, caller: Option<String>, llm: bool, json: bool) -> anyhow::Result<ExitCode> {
    use std::io::BufRead;
    let mut engine = load_engine(models, cfg)?;
    let llm = if llm { Some(start_llm(models, cfg)?) } else { None };
    let mut caller = caller;
    let mut conversation = dialogue::manager::Conversation::new(caller.as_deref());
    eprintln!("ivr chat: type what a caller says; /dtmf DIGITS to key, /caller NUMBER for a new call, /quit to stop");
    let stdin = std::io::stdin();
    // Bytes, not strings: a line that is not UTF-8 is read with replacement characters, not refused.
    for line in stdin.lock().split(b'\n') {
        let line = match line {
            Ok(l) => String::from_utf8_lossy(&l).into_owned(),
            Err(e) => bail!("cannot read standard input: {e}"),
        };
        let line = line.trim();
        if line == "/quit" {
            break;
        }
        if let Err(e) = engine.reload_if_changed() {
            eprintln!("ivr: knowledge not reloaded: {e}");
        }
        let started = Instant::now();
        if let Some(number) = line.strip_prefix("/caller") {
            caller = Some(number.trim().to_string()).filter(|n| !n.is_empty());
            conversation = dialogue::manager::Conversation::new(caller.as_deref());
            eprintln!("     new call from {}", caller.as_deref().unwrap_or("an unknown number"));
            continue;
        }
        let turns: Vec<_> = if let Some(keys) = line.strip_prefix("/dtmf") {
            keys.trim().chars().map(|k| conversation.handle(dialogue::manager::Input::Dtmf(k), jiff_now(), &engine.brain())).collect()
        } else {
            vec![conversation.handle(dialogue::manager::Input::Speech { text: line, language: "" }, jiff_now(), &engine.brain())]
        };
        let turns: Vec<_> = turns.into_iter().map(|t| improve_with_llm(t, llm.as_ref().map(|l| &l.client))).collect();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        for turn in turns.iter().filter(|t| !t.reply.is_empty() || t.action.is_some()) {
            print_turn(turn, ms, json);
        }
        if conversation.is_ended() {
            eprintln!("     (call ended; /caller to start a new one)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn bench_llm(models: &ModelDir, cfg: &Config, turns: usize) -> anyhow::Result<ExitCode> {
    use dialogue::llm::{ChatMessage, Options};
    let mut llm_cfg = cfg.llm.clone();
    llm_cfg.url = "http://127.0.0.1:18291".into();
    let sup = llm_worker::Supervisor::start(&llm_cfg, &models.data().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"))?;
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
