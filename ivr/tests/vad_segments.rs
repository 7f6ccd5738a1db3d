//! Silero VAD segments against hand-checked boundaries.

mod common;
use common::*;

#[test]
fn segments_are_within_100_ms_of_hand_checked_boundaries() {
    let labels = std::fs::read_to_string(fixture("vad/labels.tsv")).unwrap();
    let mut expected: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for line in labels.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        expected.entry(cols[0].to_string()).or_default().push((cols[1].parse().unwrap(), cols[2].parse().unwrap()));
    }
    for (file, want) in expected {
        let v = last_json(&ivr_ok(&["vad", "--json", fixture(&format!("vad/{file}")).to_str().unwrap()]));
        let got: Vec<(f64, f64)> =
            v["segments"].as_array().unwrap().iter().map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap())).collect();
        assert_eq!(got.len(), want.len(), "{file}: {got:?} vs {want:?}");
        for ((gs, ge), (ws, we)) in got.iter().zip(&want) {
            eprintln!("{file}: start {:+.0} ms, end {:+.0} ms", (gs - ws) * 1000.0, (ge - we) * 1000.0);
            assert!((gs - ws).abs() <= 0.100 && (ge - we).abs() <= 0.100, "{file}: {got:?} vs {want:?}");
        }
    }
}

#[test]
fn noise_without_speech_gives_no_segments() {
    let v = last_json(&ivr_ok(&["vad", "--json", fixture("noise/Noise.wav").to_str().unwrap()]));
    assert_eq!(v["segments"].as_array().unwrap().len(), 0, "{v}");
}

#[test]
fn every_real_recording_has_speech() {
    for f in ["human/cards-001.wav", "human/alsa-Rear_Left.wav", "human/asterisk-conf-muted.wav"] {
        let v = last_json(&ivr_ok(&["vad", "--json", fixture(f).to_str().unwrap()]));
        assert!(!v["segments"].as_array().unwrap().is_empty(), "{f}: {v}");
    }
}
