//! The VAD skips the model on the line's own noise (most of a call) without missing speech: the
//! real Silero model on espeak-ng speech over steady noise at -40 dBFS, an office phone line.

use std::path::PathBuf;
use voice_pipeline::vad::{segments, SileroModel, SileroVad, VadConfig, CHUNK};

const RATE: u32 = 16_000;

fn model() -> SileroModel {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let dir = ivr_models::ModelDir::new(repo.join("models"));
    voice_pipeline::init_runtime(&dir).expect("runtime");
    SileroModel::load(&dir.silero_vad()).expect("silero")
}

fn espeak(text: &str) -> Vec<f32> {
    let path = std::env::temp_dir().join(format!("ivr-gate-{}-{}.wav", std::process::id(), text.len()));
    let ok = std::process::Command::new("espeak-ng").args(["-v", "en-us", "-s", "150", "-w"]).arg(&path).arg(text).status().expect("espeak-ng");
    assert!(ok.success());
    let audio = voice_pipeline::audio::decode::decode_file(&path).expect("decode").resampled(RATE);
    let _ = std::fs::remove_file(&path);
    audio.samples
}

/// `secs` of noise with an RMS of `rms` (sum of uniforms: near Gaussian), deterministic.
fn noise(secs: f64, rms: f32) -> Vec<f32> {
    let mut x = 0x9e3779b97f4a7c15u64;
    let mut uniform = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    // Four uniforms on [-0.5, 0.5) sum to variance 1/3.
    let scale = rms / (1.0f32 / 3.0).sqrt();
    (0..(secs * RATE as f64) as usize).map(|_| (uniform() + uniform() + uniform() + uniform()) * scale).collect()
}

fn mix(line: &mut [f32], clip: &[f32], at: f64) {
    let start = (at * RATE as f64) as usize;
    for (o, s) in line[start..].iter_mut().zip(clip) {
        *o += s;
    }
}

fn speech_span(clip: &[f32], at: f64) -> (f64, f64) {
    let first = clip.iter().position(|s| s.abs() > 0.02).unwrap_or(0);
    let last = clip.iter().rposition(|s| s.abs() > 0.02).unwrap_or(clip.len());
    (at + first as f64 / RATE as f64, at + last as f64 / RATE as f64)
}

#[test]
fn speech_over_a_noisy_line_is_found_while_the_noise_skips_the_model() {
    let vad = model();
    let q = espeak("How long does standard delivery take?");
    for at in [0.0, 6.0] {
        let mut line = noise(14.0, 0.01);
        mix(&mut line, &q, at);
        let (start, end) = speech_span(&q, at);
        let found = segments(&vad, &VadConfig::default(), &line).unwrap();
        assert_eq!(found.len(), 1, "speech at {at} s: {found:?}");
        let (s, e) = found[0];
        assert!((s - start).abs() < 0.3 && (e - end).abs() < 0.6, "speech at {at} s: {found:?}, spoken {start:.2}-{end:.2}");

        let mut silero = SileroVad::new(vad.clone());
        for chunk in line.chunks_exact(CHUNK) {
            silero.probability(chunk).unwrap();
        }
        let (chunks, runs) = silero.model_share();
        let speech_chunks = ((end - start) * RATE as f64 / CHUNK as f64) as u64;
        eprintln!("speech at {at} s: the model ran on {runs} of {chunks} chunks ({speech_chunks} of them speech)");
        assert!(runs < chunks / 2, "the noise should mostly skip the model: {runs} of {chunks}");
        assert!(runs >= speech_chunks, "every speech chunk goes to the model: {runs} < {speech_chunks}");
    }
}

/// Streams that ask at the same time are run as one batch, each with its own state: 24 callers
/// speaking at once (the same speech at different levels over different noise) get exactly the
/// probabilities each gets alone.
#[test]
fn streams_batched_together_get_what_each_gets_alone() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let dir = ivr_models::ModelDir::new(repo.join("models"));
    voice_pipeline::init_runtime(&dir).expect("runtime");
    // One session, so that streams asking while it runs must wait and are batched.
    let model = SileroModel::load_sessions(&dir.silero_vad(), 1).expect("silero");
    let speech = espeak("Where is my order? I ordered headphones last week.");
    let lines: Vec<Vec<f32>> = (0..24)
        .map(|k| {
            let mut line = noise(0.3, 0.002 * (k + 1) as f32);
            line.extend(speech.iter().map(|s| s * (0.3 + 0.03 * k as f32)));
            line
        })
        .collect();
    let run = |line: &[f32], model: &SileroModel| -> Vec<f32> {
        let mut vad = SileroVad::new(model.clone());
        line.chunks_exact(CHUNK).map(|c| vad.probability(c).expect("runs")).collect()
    };
    let alone: Vec<Vec<f32>> = lines.iter().map(|l| run(l, &model)).collect();
    let (runs0, chunks0) = model.runs_and_chunks();
    assert_eq!(runs0, chunks0, "one at a time, one chunk per run");
    let barrier = std::sync::Barrier::new(lines.len());
    let together: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .iter()
            .map(|l| {
                let (model, barrier) = (model.clone(), &barrier);
                s.spawn(move || {
                    barrier.wait();
                    run(l, &model)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (runs, chunks) = model.runs_and_chunks();
    assert!(chunks - chunks0 > 2 * (runs - runs0), "batched: {} chunks in {} runs", chunks - chunks0, runs - runs0);
    for (k, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.len(), t.len());
        let worst = a.iter().zip(t).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "stream {k}: probabilities differ by up to {worst}");
        assert!(a.iter().any(|p| *p > 0.5), "stream {k} has speech");
    }
}
