//! Whole calls replayed in simulated time through the real `CallSession`, on the real models
//! (Silero, Whisper, the dialogue engine, Piper). Job durations are fixed, so every run makes the
//! same decisions at the same simulated times; the caller's audio is spoken by espeak-ng.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use dialogue::manager::Action;
use dialogue::policy::TransferReason;
use call_control::sim::{CallRecord, Caller, JobTimes, Lane, Simulator};
use voice_pipeline::session::workers::{SpeechCache, Workers};
use voice_pipeline::audio::RATE;
use voice_pipeline::session::{CallSession, SessionConfig, Speaker};

struct Models {
    whisper: voice_pipeline::stt::WhisperModel,
    stt: voice_pipeline::stt::SttConfig,
    vad: voice_pipeline::vad::SileroModel,
    voices: voice_pipeline::tts::Voices,
    engine: dialogue::Engine,
    cache: SpeechCache,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        // IVR_LOG=voice_pipeline=debug shows the session's decisions.
        if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("IVR_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
        let dir = ivr_models::ModelDir::new(repo().join("models"));
        voice_pipeline::init_runtime(&dir).expect("runtime");
        let whisper = voice_pipeline::stt::WhisperModel::load(&dir.whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16)).expect("whisper");
        let vad = voice_pipeline::vad::SileroModel::load(&dir.silero_vad()).expect("silero");
        let voices = voice_pipeline::tts::Voices::load(vec![voice_pipeline::tts::Voices::default_spec(&dir)]).expect("voice");
        let tenant = repo().join("tenant/demo");
        let db = std::env::temp_dir().join(format!("ivr-replay-{}.sqlite", std::process::id()));
        let engine = dialogue::Engine::load(&tenant, &dir.data().join("embeddings/all-MiniLM-L6-v2"), &db, Default::default()).expect("engine");
        let cache = SpeechCache::default();
        let t = SessionConfig::default().texts;
        // Pre-rendered as a server does (so a replay of fixed sentences is exactly repeatable:
        // Piper samples noise, so two renderings of one sentence differ slightly).
        let mut fixed = dialogue::manager::fixed_texts(&engine.kb);
        fixed.extend([t.greeting, t.filler, t.reprompt, t.goodbye, t.apology, t.shutdown].into_iter().map(|s| ("en".to_string(), s)));
        cache.prerender(&voices, &fixed).expect("prerender");
        Models { whisper, stt: Default::default(), vad, voices, engine, cache }
    })
}

/// 16 kHz audio of `text` spoken by espeak-ng.
fn espeak(text: &str) -> Vec<f32> {
    let path = std::env::temp_dir().join(format!("ivr-replay-{}-{}.wav", std::process::id(), text.len()));
    let ok = std::process::Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&path).arg(text).status().expect("espeak-ng runs");
    assert!(ok.success());
    let audio = voice_pipeline::audio::decode::decode_file(&path).expect("decode").resampled(RATE);
    let _ = std::fs::remove_file(&path);
    audio.samples
}

/// When speech begins in a clip (first sample louder than -34 dBFS).
fn onset(clip: &[f32]) -> Duration {
    let i = clip.iter().position(|s| s.abs() > 0.02).unwrap_or(0);
    Duration::from_secs_f64(i as f64 / RATE as f64)
}

/// Clips placed at times (seconds) on an otherwise silent line of `secs` seconds.
fn line(secs: f64, clips: &[(f64, &[f32])]) -> Vec<f32> {
    let mut out = vec![0.0; (secs * RATE as f64) as usize];
    for (at, clip) in clips {
        let start = (at * RATE as f64) as usize;
        for (i, s) in clip.iter().enumerate() {
            if let Some(o) = out.get_mut(start + i) {
                *o += s;
            }
        }
    }
    out
}

fn fixed_times() -> JobTimes {
    JobTimes {
        fixed: vec![
            (Lane::Stt, Duration::from_millis(200)),
            (Lane::Dialogue, Duration::from_millis(20)),
            (Lane::Llm, Duration::from_millis(300)),
            (Lane::Tts, Duration::from_millis(80)),
        ],
        ..Default::default()
    }
}

fn run_with(caller: Caller, times: JobTimes, tail_secs: f64) -> CallRecord {
    let m = models();
    let sim = Simulator {
        workers: Workers { whisper: &m.whisper, stt: &m.stt, voices: &m.voices, cache: &m.cache, engine: &m.engine, llm: None, turn: None },
        times,
        // A Tuesday at 11:00 in Berlin: the hotline is open.
        wall_start: "2026-11-24T10:00:00Z".parse().expect("time"),
        tail: Duration::from_secs_f64(tail_secs),
        realtime: false,
        record: None,
    };
    sim.run(CallSession::new(SessionConfig::default(), m.vad.clone()).with_llm(false), &caller)
}

fn run(audio: Vec<f32>) -> CallRecord {
    run_with(Caller { audio, ..Default::default() }, fixed_times(), 6.0)
}

/// What one side said, without the bot's reprompts for silence (which follow any quiet stretch
/// at the end of a recording).
fn said(rec: &CallRecord, who: Speaker) -> Vec<String> {
    let reprompt = SessionConfig::default().texts.reprompt;
    rec.transcript.iter().filter(|l| l.who == who && l.text != reprompt).map(|l| l.text.clone()).collect()
}

/// When the greeting stops sounding (it starts at 0 and runs for some seconds).
fn greeting_end(rec: &CallRecord) -> Duration {
    rec.bot_silent_from(Duration::from_millis(100)).expect("the greeting ends")
}

#[test]
fn a_question_gets_its_answer() {
    let q = espeak("How long does standard delivery take?");
    let rec = run(line(14.0, &[(6.5, &q)]));
    let caller = said(&rec, Speaker::Caller);
    assert_eq!(caller.len(), 1, "{:?}", rec.transcript);
    let bot = said(&rec, Speaker::Bot);
    assert!(bot.iter().any(|b| b.contains("3 to 5 business days")), "{bot:?}");
    let t = &rec.turns[0];
    // Fixed job times: STT started early on a tentative end, so the answer follows the endpoint
    // (400 ms of silence) by little more than the synthesis.
    assert!(t.early_stt, "{t:?}");
    let v2v = t.voice_to_voice().expect("answered");
    assert!(v2v >= Duration::from_millis(400) && v2v <= Duration::from_millis(700), "{v2v:?}");
}

#[test]
fn barge_in_stops_the_bot_within_150_ms_and_the_caller_is_answered() {
    let q = espeak("I want to check my order");
    let at = 1.5;
    let rec = run(line(14.0, &[(at, &q)]));
    let speech_onset = Duration::from_secs_f64(at) + onset(&q);
    assert!(rec.bot_sounding_throughout(Duration::from_millis(200), speech_onset), "the greeting was playing");
    let stopped = rec.bot_silent_from(speech_onset).expect("stopped");
    eprintln!("barge-in: the bot stopped {:?} after the onset", stopped - speech_onset);
    assert!(stopped - speech_onset <= Duration::from_millis(150), "stopped {:?} after onset", stopped - speech_onset);
    let bot = said(&rec, Speaker::Bot);
    assert!(bot.last().unwrap().contains("order number"), "{bot:?}");
    // The greeting was not resumed: after the stop, the next sound is the answer.
    assert_eq!(bot.len(), 2, "{bot:?}");
}

#[test]
fn a_backchannel_during_the_reply_does_not_cancel_it() {
    let ok = espeak("Okay.");
    let at = 2.0;
    let rec = run(line(12.0, &[(at, &ok)]));
    assert!(said(&rec, Speaker::Caller).is_empty(), "{:?}", rec.transcript);
    // The bot paused at most briefly and then went on with the greeting.
    let onset_at = Duration::from_secs_f64(at) + onset(&ok);
    let silent = rec.bot_silent_from(onset_at).expect("greeting ends");
    let resumed = (silent.as_millis() as u64 / 20..rec.bot_sounding.len() as u64).find(|&i| rec.bot_sounding[i as usize]);
    assert!(resumed.is_some(), "the greeting resumed");
    assert_eq!(said(&rec, Speaker::Bot).len(), 1, "nothing but the greeting: {:?}", rec.transcript);
    assert!(rec.actions.is_empty());
}

#[test]
fn a_noise_burst_during_the_reply_does_not_cancel_it() {
    let noise = voice_pipeline::audio::decode::decode_file(&repo().join("audio-fixtures/noise/Noise.wav")).expect("noise").resampled(RATE);
    // A loud 300 ms burst.
    let burst: Vec<f32> = noise.samples.iter().take(RATE as usize * 3 / 10).map(|s| s * 4.0).collect();
    let rec = run(line(12.0, &[(2.0, &burst)]));
    assert!(said(&rec, Speaker::Caller).is_empty(), "{:?}", rec.transcript);
    assert_eq!(said(&rec, Speaker::Bot).len(), 1, "{:?}", rec.transcript);
    let end = greeting_end(&rec);
    // Still talking well after the burst (paused at most briefly).
    let sounding_after = rec.bot_sounding[(2.4 * 50.0) as usize..].iter().filter(|&&s| s).count();
    assert!(sounding_after > 50, "the greeting went on ({sounding_after} frames), ended {end:?}");
}

#[test]
fn the_bots_own_echo_does_not_interrupt_it() {
    let q = espeak("How long does standard delivery take?");
    let caller = Caller { audio: line(16.0, &[(7.0, &q)]), echo: Some((Duration::from_millis(120), 0.3)), ..Default::default() };
    let rec = run_with(caller, fixed_times(), 6.0);
    // The greeting played whole, without a pause: it went silent only after all its audio.
    let m = models();
    let greeting = SessionConfig::default().texts.greeting;
    let samples: usize = voice_pipeline::tts::split_sentences(&greeting)
        .iter()
        .map(|s| m.cache.get(&m.voices, "en", s).expect("pre-rendered").len())
        .sum();
    let length = Duration::from_secs_f64(samples as f64 / RATE as f64);
    let end = greeting_end(&rec);
    assert!(end + Duration::from_millis(40) >= length, "the greeting stopped at {end:?} of {length:?}");
    // And the caller, speaking over nothing but the line, is still heard and answered.
    let caller = said(&rec, Speaker::Caller);
    assert_eq!(caller.len(), 1, "{:?}", rec.transcript);
    assert!(said(&rec, Speaker::Bot).iter().any(|b| b.contains("3 to 5 business days")), "{:?}", rec.transcript);
}

#[test]
fn a_shutdown_mid_answer_stops_it_says_goodbye_and_hangs_up_hearing_nobody_after() {
    let q = espeak("How long does standard delivery take?");
    let later = espeak("I want to speak to a person");
    // The question ends near 9 s and its answer starts about half a second later; the service
    // stops at 10.5 s, mid-answer; the caller speaks again at 11.5 s, over the goodbye.
    let caller = Caller { audio: line(22.0, &[(6.5, &q), (11.5, &later)]), shutdown_at: Some(Duration::from_millis(10_500)), ..Default::default() };
    let rec = run_with(caller, fixed_times(), 6.0);
    let bot = said(&rec, Speaker::Bot);
    assert_eq!(bot.last().map(String::as_str), Some(SessionConfig::default().texts.shutdown.as_str()), "{bot:?}");
    assert!(bot.iter().any(|b| b.contains("3 to 5 business days")), "the answer had started: {bot:?}");
    assert_eq!(said(&rec, Speaker::Caller).len(), 1, "nobody is heard after the shutdown: {:?}", rec.transcript);
    assert_eq!(rec.actions, vec![Action::Hangup]);
}

#[test]
fn caller_silence_gets_a_reprompt_then_goodbye() {
    let rec = run_with(Caller { audio: line(1.0, &[]), ..Default::default() }, fixed_times(), 40.0);
    let bot: Vec<String> = rec.transcript.iter().map(|l| l.text.clone()).collect();
    let t = SessionConfig::default().texts;
    assert_eq!(bot, vec![t.greeting, t.reprompt, t.goodbye]);
    assert_eq!(rec.actions, vec![Action::Hangup]);
    // The reprompt comes the silence timeout after the greeting ended.
    let reprompt_at = rec.transcript[1].at_secs;
    let greeting_end = greeting_end(&rec).as_secs_f64();
    assert!((reprompt_at - greeting_end - 8.0).abs() < 0.1, "{reprompt_at} vs {greeting_end}");
}

#[test]
fn dtmf_0_transfers_to_a_person() {
    let caller = Caller { audio: line(3.0, &[]), keys: vec![(Duration::from_millis(1500), '0')], ..Default::default() };
    let rec = run_with(caller, fixed_times(), 10.0);
    let Some(Action::Transfer { reason, .. }) = rec.actions.first() else { panic!("{:?}", rec.actions) };
    assert_eq!(*reason, TransferReason::CallerRequest);
    // The key stopped the greeting at once.
    assert!(rec.bot_silent_from(Duration::from_millis(1500)).unwrap() <= Duration::from_millis(1540));
}

#[test]
fn an_order_number_keyed_on_the_phone_is_looked_up() {
    let q = espeak("Where is my order?");
    let mut keys: Vec<(Duration, char)> = Vec::new();
    for (i, k) in "41234567#".chars().enumerate() {
        keys.push((Duration::from_millis(14_000 + 200 * i as u64), k));
    }
    // The postcode without '#': the keypad timeout ends it.
    for (i, k) in "10115".chars().enumerate() {
        keys.push((Duration::from_millis(24_000 + 200 * i as u64), k));
    }
    let caller = Caller { audio: line(6.5 + 2.0, &[(6.5, &q)]), keys, ..Default::default() };
    let rec = run_with(caller, fixed_times(), 30.0);
    let bot = said(&rec, Speaker::Bot);
    assert!(bot.iter().any(|b| b.contains("postcode")), "{bot:?}");
    assert!(bot.iter().any(|b| b.contains("November 26")), "{bot:?}");
}

#[test]
fn a_slow_stage_is_covered_by_a_filler() {
    let q = espeak("How long does standard delivery take?");
    let times = JobTimes { extra: vec![(Lane::Stt, Duration::from_millis(2000))], ..fixed_times() };
    let rec = run_with(Caller { audio: line(14.0, &[(6.5, &q)]), ..Default::default() }, times, 8.0);
    let bot = said(&rec, Speaker::Bot);
    let filler = SessionConfig::default().texts.filler;
    let i = bot.iter().position(|b| *b == filler).unwrap_or_else(|| panic!("no filler: {bot:?}"));
    assert!(bot[i + 1].contains("3 to 5 business days"), "{bot:?}");
    assert!(rec.turns[0].filler);
}

#[test]
fn a_failed_stage_apologises_and_transfers() {
    let q = espeak("How long does standard delivery take?");
    let times = JobTimes { fail: vec![Lane::Stt], ..fixed_times() };
    let rec = run_with(Caller { audio: line(12.0, &[(6.5, &q)]), ..Default::default() }, times, 8.0);
    let Some(Action::Transfer { reason, .. }) = rec.actions.first() else { panic!("{:?}", rec.actions) };
    assert_eq!(*reason, TransferReason::StageFailure);
    assert_eq!(said(&rec, Speaker::Bot).last().unwrap(), &SessionConfig::default().texts.apology);
}

#[test]
fn a_replay_is_deterministic() {
    let q = espeak("I want to check my order");
    let a = run(line(12.0, &[(1.5, &q)]));
    let b = run(line(12.0, &[(1.5, &q)]));
    let lines = |r: &CallRecord| r.transcript.iter().map(|l| (l.text.clone(), (l.at_secs * 1000.0).round() as i64)).collect::<Vec<_>>();
    assert_eq!(lines(&a), lines(&b));
    assert_eq!(a.bot_sounding, b.bot_sounding);
}

#[test]
fn garbage_audio_is_survived() {
    // NaN, infinities and full-scale noise from a broken transport, then a normal question.
    let q = espeak("How long does standard delivery take?");
    let mut audio = line(14.0, &[(6.5, &q)]);
    for (i, s) in audio.iter_mut().enumerate().take(RATE as usize * 2) {
        *s = match i % 4 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -1e9,
            _ => 1.0,
        };
    }
    let rec = run(audio);
    assert!(said(&rec, Speaker::Bot).iter().any(|b| b.contains("3 to 5 business days")), "{:?}", rec.transcript);
}
