//! `ivr models convert`: the CTranslate2 -> whisper.cpp converter.

mod common;
use common::*;
use ivr_models::WhisperPrecision;

#[test]
fn conversion_is_deterministic_and_complete() {
    let dir = tempdir("convert");
    let out = dir.join("ggml-tiny.en-f16.bin");
    let report = ivr_models::whisper_ggml::convert(&models().whisper_ct2("tiny.en"), &out, WhisperPrecision::F16).unwrap();
    // 4 encoder and 4 decoder layers: 7 + 4 x 15 encoder tensors, 4 + 4 x 24 decoder tensors.
    assert_eq!(report.tensors, 167);
    assert_eq!(ivr_models::whisper_ggml::validate(&out).unwrap(), 167);
    assert!(!report.multilingual);
    let setup_made = std::fs::read(models().whisper_ggml("tiny.en", WhisperPrecision::F16)).unwrap();
    assert!(std::fs::read(&out).unwrap() == setup_made, "same input, same bytes");
}

#[test]
fn quantized_variants_are_smaller_and_load() {
    let f16 = std::fs::metadata(models().whisper_ggml("tiny.en", WhisperPrecision::F16)).unwrap().len();
    let dir = tempdir("quantize");
    let out = dir.join("ggml-tiny.en-q5_1.bin");
    let report = ivr_models::whisper_ggml::convert(&models().whisper_ct2("tiny.en"), &out, WhisperPrecision::Q5_1).unwrap();
    assert!(report.bytes * 2 < f16, "q5_1 {} vs f16 {f16}", report.bytes);
    let model = voice_pipeline::stt::WhisperModel::load(&out).unwrap();
    let audio = voice_pipeline::audio::decode_file(&fixture("human/asterisk-conf-getpin.wav")).unwrap().resampled(16000);
    let t = model.transcribe(&audio.samples, &Default::default()).unwrap();
    assert!(t.text.to_lowercase().contains("conference"), "{}", t.text);
}

#[test]
fn models_list_shows_every_manifest_file_as_present() {
    let out = ivr_ok(&["models", "list"]);
    assert!(!out.contains("MISSING"), "{out}");
    for id in ["whisper-tiny.en", "piper-en_US-joe-medium", "silero-vad", "onnxruntime", "smollm2-135m-instruct", "all-minilm-l6-v2"] {
        assert!(out.contains(id), "{id} listed");
    }
}
