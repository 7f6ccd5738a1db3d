//! Whisper speech-to-text through the converted whisper.cpp models, on real recordings.

mod common;
use common::*;

fn wer_summary(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["wer", "--only", "human/", "--json"];
    all.extend_from_slice(args);
    last_json(&ivr_ok(&all))
}

#[test]
fn tiny_en_word_error_rate_on_real_human_recordings_is_at_most_10_percent() {
    let s = wer_summary(&[]);
    assert!(s["files"].as_u64().unwrap() >= 20, "{s}");
    let wer = s["wer"].as_f64().unwrap();
    eprintln!("tiny.en f16 WER {:.1}% over {} files", wer * 100.0, s["files"]);
    assert!(wer <= 0.10, "WER {wer} > 10%: {s}");
}

#[test]
fn quantized_q8_0_model_stays_as_accurate() {
    let s = wer_summary(&["--precision", "q8_0"]);
    let wer = s["wer"].as_f64().unwrap();
    eprintln!("tiny.en q8_0 WER {:.1}%", wer * 100.0);
    assert!(wer <= 0.10, "q8_0 WER {wer}: {s}");
}

#[test]
fn speech_free_noise_transcribes_to_nothing() {
    let out = ivr_ok(&["transcribe", "--json", fixture("noise/Noise.wav").to_str().unwrap()]);
    let v = last_json(&out);
    assert_eq!(v["text"], "", "{v}");
}

#[test]
fn transcribe_prints_text_language_and_timings() {
    let out = ivr_ok(&["transcribe", "--json", fixture("human/asterisk-conf-muted.wav").to_str().unwrap()]);
    let v = last_json(&out);
    assert_eq!(v["text"].as_str().unwrap().to_lowercase().trim_end_matches('.'), "you are now muted");
    assert_eq!(v["language"], "en");
    assert!(v["stt_ms"].as_f64().unwrap() > 0.0 && v["audio_secs"].as_f64().unwrap() > 1.0, "{v}");
}

#[test]
fn multilingual_base_model_detects_chinese_and_english() {
    let zh = fixture("generated/espeak-zh-01.wav");
    let en = fixture("human/asterisk-please-try-call-later.wav");
    let out = ivr_ok(&["transcribe", "--json", "--model", "base", zh.to_str().unwrap(), en.to_str().unwrap()]);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["language"], "zh", "{}", lines[0]);
    assert!(lines[0]["text"].as_str().unwrap().contains("你好"), "{}", lines[0]);
    assert_eq!(lines[1]["language"], "en", "{}", lines[1]);
    assert!(lines[1]["text"].as_str().unwrap().to_lowercase().contains("try your call again"), "{}", lines[1]);
}

#[test]
fn several_files_in_one_run_share_the_loaded_model() {
    let files = ["human/cards-003.wav", "human/alsa-Front_Left.wav", "human/asterisk-conf-getpin.wav"];
    let paths: Vec<String> = files.iter().map(|f| fixture(f).to_string_lossy().into_owned()).collect();
    let mut args = vec!["transcribe", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let out = ivr_ok(&args);
    let loads: Vec<f64> = out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["model_load_ms"].as_f64().unwrap()).collect();
    assert_eq!(loads.len(), 3);
    assert!(loads.iter().all(|&l| l == loads[0]), "model loaded once: {loads:?}");
}

#[test]
fn flac_ogg_and_mp3_files_transcribe_like_the_wav() {
    let dir = tempdir("formats");
    let wav = fixture("human/asterisk-please-try-call-later.wav");
    for ext in ["flac", "ogg", "mp3"] {
        let out = dir.join(format!("clip.{ext}"));
        let status = std::process::Command::new("sox").arg(&wav).arg("-r").arg("16000").arg(&out).status().unwrap();
        assert!(status.success(), "sox writes {ext} (scripts/setup.sh installs libsox-fmt-all)");
        let v = last_json(&ivr_ok(&["transcribe", "--json", out.to_str().unwrap()]));
        let (errors, _) = voice_pipeline::wer::score("Please try your call again later.", v["text"].as_str().unwrap());
        assert!(errors <= 1, "{ext}: {v}");
    }
}
