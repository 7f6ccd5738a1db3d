//! Bad input never panics: each case works or gives a clear error naming the file and the problem.

mod common;
use common::*;
use std::path::Path;

fn fails_with(args: &[&str], needles: &[&str]) -> String {
    let (ok, _, err) = run(ivr().args(args));
    assert!(!ok, "ivr {args:?} should fail");
    for n in needles {
        assert!(err.contains(n), "ivr {args:?}: error {err:?} lacks {n:?}");
    }
    err
}

/// A models directory that is a copy of the real one except for `damage`d files.
fn models_copy(name: &str, damage: impl Fn(&Path)) -> std::path::PathBuf {
    let dir = tempdir(name).join("models");
    let real = models();
    for rel in ["manifest.toml"] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(real.root().join(rel), dir.join(rel)).unwrap();
    }
    let ggml = ivr_models::ModelDir::new(&dir).whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16);
    std::fs::create_dir_all(ggml.parent().unwrap()).unwrap();
    std::fs::copy(real.whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16), &ggml).unwrap();
    damage(&dir);
    dir
}

#[test]
fn missing_model_file_names_the_file_and_how_to_fix_it() {
    let dir = models_copy("missing-model", |d| {
        std::fs::remove_file(ivr_models::ModelDir::new(d).whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16)).unwrap()
    });
    let wav = fixture("human/cards-001.wav");
    let (ok, _, err) = run(ivr().env("IVR_MODELS_DIR", &dir).args(["transcribe", wav.to_str().unwrap()]));
    assert!(!ok);
    assert!(err.contains("ggml-tiny.en-f16.bin") && err.contains("setup"), "{err}");
}

#[test]
fn truncated_or_garbage_model_file_is_refused_with_the_reason() {
    let wav = fixture("human/cards-001.wav");
    let truncated = models_copy("truncated-model", |d| {
        let p = ivr_models::ModelDir::new(d).whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(len / 2).unwrap();
    });
    let (ok, _, err) = run(ivr().env("IVR_MODELS_DIR", &truncated).args(["transcribe", wav.to_str().unwrap()]));
    assert!(!ok && err.contains("ggml-tiny.en-f16.bin") && err.contains("truncated"), "{err}");

    let garbage = models_copy("garbage-model", |d| {
        let p = ivr_models::ModelDir::new(d).whisper_ggml("tiny.en", ivr_models::WhisperPrecision::F16);
        std::fs::write(&p, b"this is not a model at all, just some text").unwrap();
    });
    let (ok, _, err) = run(ivr().env("IVR_MODELS_DIR", &garbage).args(["transcribe", wav.to_str().unwrap()]));
    assert!(!ok && err.contains("ggml-tiny.en-f16.bin") && err.contains("not a ggml file"), "{err}");
}

#[test]
fn corrupt_ctranslate2_model_is_refused_by_the_converter() {
    let dir = tempdir("bad-ct2");
    let ct2 = dir.join("models/data/whisper/tiny.en/ct2");
    std::fs::create_dir_all(&ct2).unwrap();
    std::fs::copy(models().root().join("manifest.toml"), dir.join("models/manifest.toml")).unwrap();
    let real = std::fs::read(models().whisper_ct2("tiny.en").join("model.bin")).unwrap();
    std::fs::write(ct2.join("model.bin"), &real[..real.len() / 3]).unwrap();
    std::fs::copy(models().whisper_ct2("tiny.en").join("vocabulary.txt"), ct2.join("vocabulary.txt")).unwrap();
    let (ok, _, err) =
        run(ivr().env("IVR_MODELS_DIR", dir.join("models")).args(["models", "convert", "--model", "tiny.en", "--precision", "f16"]));
    assert!(!ok && err.contains("model.bin") && err.contains("truncated"), "{err}");
}

#[test]
fn a_text_file_is_not_audio() {
    let dir = tempdir("not-audio");
    let f = dir.join("notes.wav");
    std::fs::write(&f, "order 41234567 please call back\n".repeat(50)).unwrap();
    fails_with(&["transcribe", f.to_str().unwrap()], &["notes.wav", "not a supported audio file"]);
    fails_with(&["vad", f.to_str().unwrap()], &["notes.wav", "not a supported audio file"]);
}

#[test]
fn an_empty_file_is_reported_as_empty() {
    let dir = tempdir("empty");
    let f = dir.join("empty.wav");
    std::fs::write(&f, b"").unwrap();
    fails_with(&["transcribe", f.to_str().unwrap()], &["empty.wav", "empty"]);
}

#[test]
fn a_zero_length_wav_has_no_samples() {
    let dir = tempdir("zero-wav");
    let f = dir.join("zero.wav");
    let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    hound::WavWriter::create(&f, spec).unwrap().finalize().unwrap();
    fails_with(&["transcribe", f.to_str().unwrap()], &["zero.wav", "no audio samples"]);
}

#[test]
fn a_48_khz_stereo_recording_is_mixed_down_and_transcribed() {
    let dir = tempdir("stereo48");
    let src = voice_pipeline::audio::decode_file(&fixture("human/asterisk-pls-hold-while-try.wav")).unwrap().resampled(48000);
    let f = dir.join("stereo48.wav");
    let spec = hound::WavSpec { channels: 2, sample_rate: 48000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(&f, spec).unwrap();
    for s in &src.samples {
        let v = voice_pipeline::audio::f32_to_i16(*s);
        w.write_sample(v).unwrap();
        w.write_sample(v / 2).unwrap();
    }
    w.finalize().unwrap();
    let v = last_json(&ivr_ok(&["transcribe", "--json", f.to_str().unwrap()]));
    let (errors, words) = voice_pipeline::wer::score("Please hold while we try to connect you.", v["text"].as_str().unwrap());
    assert!(errors <= 1, "{v} ({errors}/{words})");
}

#[test]
fn one_bad_file_among_good_ones_fails_only_itself() {
    let dir = tempdir("mixed");
    let bad = dir.join("bad.mp3");
    std::fs::write(&bad, [0xFFu8, 0xFB, 0x00, 0x01, 0x02]).unwrap();
    let good = fixture("human/cards-003.wav");
    let (ok, out, err) = run(ivr().args(["transcribe", good.to_str().unwrap(), bad.to_str().unwrap()]));
    assert!(!ok, "exit code reports the failure");
    assert!(out.contains("cards-003.wav") && out.to_lowercase().contains("clubs"), "{out}");
    assert!(err.contains("bad.mp3"), "{err}");
}

#[test]
fn text_with_nothing_speakable_is_a_clear_error_and_emoji_are_skipped() {
    let dir = tempdir("say-bad");
    let out = dir.join("x.wav");
    for text in ["?!...", "😀🎉👍", "   ", ""] {
        fails_with(&["say", text, "-o", out.to_str().unwrap()], &["nothing speakable"]);
    }
    ivr_ok(&["say", "Thanks 😀 for calling!", "-o", out.to_str().unwrap()]);
    assert!(hound::WavReader::open(&out).unwrap().duration() > 8000);
}

#[test]
fn bad_options_are_refused_before_any_work() {
    let dir = tempdir("bad-opts");
    let out = dir.join("x.wav");
    fails_with(&["say", "hello", "-o", out.to_str().unwrap(), "--rate", "0"], &["rate"]);
    let wav = fixture("human/cards-001.wav");
    fails_with(&["transcribe", "--model", "huge", wav.to_str().unwrap()], &["unknown Whisper model", "huge"]);
    fails_with(&["transcribe", "--precision", "q3", wav.to_str().unwrap()], &["unknown precision"]);
    fails_with(&["transcribe", dir.join("nope.wav").to_str().unwrap()], &["nope.wav", "cannot open"]);
}

#[test]
fn a_voices_file_naming_a_missing_voice_says_which_file() {
    let dir = tempdir("bad-voice");
    std::fs::write(dir.join("voices.toml"), "[[voice]]\nname = \"x\"\nlanguage = \"en\"\nmodel = \"missing.onnx\"\n").unwrap();
    std::fs::write(dir.join("ivr.toml"), format!("[tts]\nvoices = {:?}\n", dir.join("voices.toml"))).unwrap();
    let out = dir.join("x.wav");
    fails_with(&["--config", dir.join("ivr.toml").to_str().unwrap(), "say", "hello", "-o", out.to_str().unwrap()], &["missing.onnx"]);
    std::fs::write(dir.join("ivr.toml"), "[stt]\nmodle = \"base\"\n").unwrap();
    fails_with(&["--config", dir.join("ivr.toml").to_str().unwrap(), "say", "hello", "-o", out.to_str().unwrap()], &["ivr.toml", "modle"]);
}

#[test]
fn corrupt_or_missing_onnx_files_are_named_in_the_error() {
    let wav = fixture("human/cards-001.wav");
    let dir = models_copy("bad-onnx", |d| {
        let m = ivr_models::ModelDir::new(d);
        std::fs::create_dir_all(m.silero_vad().parent().unwrap()).unwrap();
        std::fs::write(m.silero_vad(), b"not an onnx model").unwrap();
        std::fs::create_dir_all(m.onnxruntime_lib().parent().unwrap()).unwrap();
        std::fs::copy(models().onnxruntime_lib(), m.onnxruntime_lib()).unwrap();
    });
    let (ok, _, err) = run(ivr().env("IVR_MODELS_DIR", &dir).args(["vad", wav.to_str().unwrap()]));
    assert!(!ok && err.contains("silero_vad.onnx"), "{err}");

    let no_runtime = models_copy("no-runtime", |_| {});
    let (ok, _, err) = run(ivr().env("IVR_MODELS_DIR", &no_runtime).args(["vad", wav.to_str().unwrap()]));
    assert!(!ok && err.contains("libonnxruntime.so") && err.contains("setup"), "{err}");
}
