//! The end-of-turn model as `ivr` runs it: its probabilities agree with the reference
//! implementation (pipecat-ai's own `LocalSmartTurnAnalyzerV3`, PyPI, in .venv) on the pause set,
//! and a missing model file is a warning, not a failure: calls go on with the fixed hangover.

mod common;
use common::*;

/// The pause-set clips cut where the question is put: 0.3 s into the first pause (the caller is
/// not done) and 0.3 s after the last word (done), as 16 kHz WAV.
fn clips(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    #[derive(serde::Deserialize)]
    struct Set {
        clip: Vec<Clip>,
    }
    #[derive(serde::Deserialize)]
    struct Clip {
        file: String,
        pauses: Vec<(f64, f64)>,
        words_end: f64,
    }
    let set: Set = toml::from_str(&std::fs::read_to_string(fixture("pauses/pauses.toml")).unwrap()).unwrap();
    let mut out = Vec::new();
    for c in &set.clip {
        let mut cuts = vec![("end", c.words_end + 0.3)];
        if let Some((start, _)) = c.pauses.first() {
            cuts.push(("pause", start + 0.3));
        }
        for (tag, at) in cuts {
            let wav = dir.join(format!("{}-{tag}.wav", c.file.trim_end_matches(".flac")));
            let ok = std::process::Command::new("sox")
                .arg(fixture(&format!("pauses/{}", c.file)))
                .args(["-r", "16000", "-b", "16"])
                .arg(&wav)
                .args(["trim", "0", &at.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "sox cuts {}", c.file);
            out.push(wav);
        }
    }
    out
}

fn probabilities(out: &str) -> std::collections::HashMap<String, f64> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["file"].as_str().unwrap().to_string(), v["probability"].as_f64().unwrap()))
        .collect()
}

#[test]
fn smart_turn_agrees_with_the_reference_implementation() {
    let dir = tempdir("smart-turn");
    let files = clips(&dir);
    assert!(files.len() >= 20);
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["bench", "turn"];
    args.extend(&names);
    let ours = probabilities(&ivr_ok(&args));
    let reference = std::process::Command::new(repo().join(".venv/bin/python"))
        .arg(repo().join("scripts/smart_turn_reference.py"))
        .args(&names)
        .output()
        .expect("the reference runs (scripts/python-env.sh installs pipecat-ai)");
    assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
    let reference = probabilities(&String::from_utf8_lossy(&reference.stdout));
    let mut close = 0;
    let mut far = Vec::new();
    for f in &names {
        let (a, b) = (ours[*f], reference[*f]);
        if (a - b).abs() <= 0.02 {
            close += 1;
        } else {
            far.push(format!("{f}: ours {a:.3}, reference {b:.3}"));
        }
    }
    // The features are computed as the reference does, to the bit; all should agree.
    assert!(close >= 20 && far.is_empty(), "{close} of {} within 0.02; {far:?}", names.len());
    // And the model tells the two apart often enough to be worth asking.
    let ends: Vec<f64> = names.iter().filter(|n| n.ends_with("-end.wav")).map(|n| ours[*n]).collect();
    assert!(ends.iter().filter(|p| **p > 0.5).count() * 2 > ends.len(), "{ends:?}");
}

#[test]
fn a_missing_end_of_turn_model_is_a_warning_and_the_call_goes_on() {
    // A models directory with everything but the Smart Turn file.
    let dir = tempdir("no-smart-turn");
    let data = dir.join("models/data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(models().data()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "turn" {
            std::os::unix::fs::symlink(entry.path(), data.join(entry.file_name())).unwrap();
        }
    }
    let call = fixture("calls/damaged-delivery-piper.flac");
    let (ok, out, err) = run(ivr().env("IVR_MODELS_DIR", dir.join("models")).args(["simulate", call.to_str().unwrap(), "--json"]));
    assert!(ok, "{err}");
    assert!(err.contains("warning") && err.contains("hangover"), "{err}");
    let v = last_json(&out);
    assert_eq!(v["actions"][0]["reason"], "damaged_delivery", "{v}");
    let t = &v["latency"][0];
    assert_eq!(t["model_endpoint"], false, "{t}");
    assert!(t["endpoint_ms"].as_f64().unwrap() >= 400.0, "the fixed hangover: {t}");
}
