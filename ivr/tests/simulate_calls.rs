//! `ivr simulate` on whole caller recordings (audio-fixtures/calls: espeak-ng, the Piper voice and
//! a real human voice): the right answers and actions, a stereo recording and per-turn timings.

mod common;
use common::*;

#[derive(serde::Deserialize)]
struct Calls {
    call: Vec<Call>,
}

#[derive(serde::Deserialize)]
struct Call {
    file: String,
    #[serde(default)]
    keys: Vec<String>,
    caller_says: Vec<String>,
    bot_says: Vec<String>,
    #[serde(default)]
    bot_says_one_of: Vec<String>,
    action: String,
    #[serde(default)]
    llm: bool,
}

/// Lower case, letters and digits only, digits run together ("4 1 2" and "412" compare equal).
fn norm(s: &str) -> String {
    let kept: String = s.to_lowercase().chars().map(|c| if c.is_alphanumeric() || c == '.' { c } else { ' ' }).collect();
    let words: Vec<&str> = kept.split_whitespace().map(|w| w.trim_end_matches('.')).collect();
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
        if i > 0 && !(digits(w) && digits(words[i - 1])) {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Every expected phrase appears, in order, in the lines.
fn in_order(lines: &[String], expected: &[String]) -> Result<(), String> {
    let mut i = 0;
    for e in expected {
        let e = norm(e);
        match lines[i..].iter().position(|l| norm(l).contains(&e)) {
            Some(k) => i += k + 1,
            None => return Err(format!("{e:?} not found (in order) in {lines:?}")),
        }
    }
    Ok(())
}

#[test]
fn whole_calls_get_the_right_answers_and_actions() {
    let dir = repo().join("audio-fixtures/calls");
    let calls: Calls = toml::from_str(&std::fs::read_to_string(dir.join("calls.toml")).unwrap()).unwrap();
    assert!(calls.call.len() >= 5);
    let out_dir = tempdir("simulate");
    let mut failures = Vec::new();
    for call in &calls.call {
        let wav = out_dir.join(call.file.replace(".flac", ".wav"));
        // A Sunday at 21:00 in Berlin: the hotline and the stores are closed, whenever the test runs.
        let mut args = vec!["simulate".to_string(), dir.join(&call.file).display().to_string(), "--json".into(), "-o".into(), wav.display().to_string()];
        args.extend(["--at".to_string(), "2026-11-29T20:00:00Z".to_string()]);
        for k in &call.keys {
            args.extend(["--keys".to_string(), k.clone()]);
        }
        if call.llm {
            // The embedded worker on a port of its own.
            let config = out_dir.join("llm.toml");
            std::fs::write(&config, "[llm]\nurl = \"http://127.0.0.1:18594\"\n").unwrap();
            args.splice(0..0, ["--config".to_string(), config.display().to_string()]);
            args.push("--llm".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let v = last_json(&ivr_ok(&args));
        let (caller, bot) = (said(&v, "caller"), said(&v, "bot"));
        let action = &v["actions"][0];
        let ended = if action["action"] == "transfer" { action["reason"].as_str() } else { action["action"].as_str() };
        let checks = [
            in_order(&caller, &call.caller_says),
            in_order(&bot, &call.bot_says),
            (ended == Some(call.action.as_str())).then_some(()).ok_or(format!("ended with {action}, not {}", call.action)),
            (call.bot_says_one_of.is_empty() || bot.iter().any(|b| call.bot_says_one_of.iter().any(|o| b.contains(o.as_str()))))
                .then_some(())
                .ok_or(format!("none of {:?} in {bot:?}", call.bot_says_one_of)),
        ];
        if call.llm && !v["latency"].as_array().unwrap().iter().any(|t| t["llm"] == true) {
            failures.push(format!("{}: no turn was worded by the LLM", call.file));
        }
        for c in checks {
            if let Err(e) = c {
                failures.push(format!("{}: {e}", call.file));
            }
        }
        // The recording: stereo, the caller left, the bot right, as long as the call.
        let r = hound::WavReader::open(&wav).unwrap();
        assert_eq!(r.spec().channels, 2);
        let secs = r.duration() as f64 / r.spec().sample_rate as f64;
        assert!((secs - v["duration_secs"].as_f64().unwrap()).abs() < 0.1, "{secs}");
        // Every answered turn has its timings.
        for t in v["latency"].as_array().unwrap() {
            assert!(t["voice_to_voice_ms"].as_f64().unwrap() > 0.0, "{t}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn simulate_explains_bad_input() {
    let (ok, _, err) = run(ivr().args(["simulate", "no-such-call.wav"]));
    assert!(!ok && err.contains("no-such-call.wav"), "{err}");
    let file = repo().join("audio-fixtures/calls/damaged-delivery-piper.flac");
    let (ok, _, err) = run(ivr().args(["simulate", file.to_str().unwrap(), "--keys", "soon:123"]));
    assert!(!ok && err.contains("soon"), "{err}");
    let (ok, _, err) = run(ivr().args(["simulate", file.to_str().unwrap(), "--keys", "3:12x"]));
    assert!(!ok && err.contains("'x'"), "{err}");
}
