//! `ivr`: the on-device voice agent's command line.

mod agents;
mod ask;
mod bench;
mod chat;
mod config;
mod listen;
mod llm_worker;
mod load;
mod models;
mod records;
mod report;
mod say;
mod serve;
mod simulate;
mod transcribe;
mod vad;
mod wer;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// The caller's recording (not with --script).
        #[arg(required_unless_present = "script", conflicts_with = "script")]
        file: Option<PathBuf>,
        /// Many calls in one run, the models loaded once: a TOML file of `[[call]]` tables with
        /// `file` (relative to the script), and optionally `caller`, `at` and `keys`; one JSON
        /// line per call with --json. For a demo's or a test's batch.
        #[arg(long, conflicts_with_all = ["output", "caller", "keys", "at"])]
        script: Option<PathBuf>,
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
        /// Write the call to the store ([records] url) as a live call is written, starting at
        /// --at: simulated calls then count in `ivr report` (a test's or a demo's batch).
        #[arg(long)]
        store: bool,
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
    /// The people who take transferred calls: add, list, passwd, status, remove.
    Agents {
        #[command(subcommand)]
        command: agents::AgentsCommand,
    },
    /// The call records in the store ([records] url).
    Records {
        #[command(subcommand)]
        command: records::RecordsCommand,
    },
    /// What the records say: KPIs, the ROI, knowledge gaps, rising topics.
    Report {
        #[command(subcommand)]
        command: report::ReportCommand,
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

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut cfg = Config::load(cli.config.as_deref())?;
    // The records need no models.
    let command = match cli.command {
        Command::Records { command } => return records::run(&cfg, command),
        Command::Report { command } => return report::run(&cfg, command),
        Command::Agents { command } => return agents::run(&cfg, command),
        other => other,
    };
    let models = load::model_dir(&cfg)?;
    load::prime_with_tenant_names(&mut cfg);
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
            transcribe::transcribe(&models, &stt, &files, json)
        }
        Command::Serve { http, sip } => {
            serve::serve(&models, &cfg, http, sip)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Say { text, output, rate, language, json } => say::say(&models, &cfg, &text, &output, rate, &language, json),
        Command::Vad { file, json } => vad::vad_cmd(&models, &cfg, &file, json),
        Command::Ask { text, caller, language, json } => ask::ask(&models, &cfg, &text, caller.as_deref(), &language, json),
        Command::Chat { caller, llm, json } => chat::chat(&models, &cfg, caller, llm, json),
        Command::Simulate { file, script, output, json, realtime, caller, llm, keys, echo_ms, tail_secs, at, store } => {
            let calls = match (script, file) {
                (Some(script), _) => simulate::Script::load(&script)?.calls,
                (None, Some(file)) => vec![simulate::ScriptedCall { file, caller, keys, at }],
                (None, None) => anyhow::bail!("give the caller's recording, or --script"),
            };
            simulate::simulate(&models, &cfg, &calls, simulate::Options { output: output.as_deref(), json, realtime, llm, echo_ms, tail_secs, store })
        }
        Command::Wer { fixtures, hyp, only, model, precision, json } => {
            let mut stt = cfg.stt.clone();
            stt.model = model.unwrap_or(stt.model);
            stt.precision = precision.unwrap_or(stt.precision);
            wer::wer_cmd(&models, &stt, &fixtures, hyp.as_deref(), only.as_deref(), json)
        }
        Command::Bench { what: BenchCommand::Tts { texts, rate } } => bench::bench_tts(&models, &cfg, &texts, rate),
        Command::Bench { what: BenchCommand::Vad { files } } => bench::bench_vad(&models, &cfg, &files),
        Command::Bench { what: BenchCommand::Turn { files, threads } } => bench::bench_turn(&models, &files, threads),
        Command::Bench { what: BenchCommand::Llm { turns } } => bench::bench_llm(&models, &cfg, turns),
        Command::Listen { echo, seconds } => listen::listen(&models, &cfg, echo, seconds),
        Command::Records { .. } | Command::Agents { .. } | Command::Report { .. } => unreachable!("handled above"),
        Command::Models { command: ModelsCommand::List } => models::list_models(&models),
        Command::Models { command: ModelsCommand::Convert { model, precision, force } } => {
            models::convert_models(&models, model.as_deref(), &precision, force)
        }
    }
}
