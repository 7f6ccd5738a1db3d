//! The dialogue test set (tests/data/dialogue_set.toml) through the real dialogue manager: the real
//! embedding model, the demo tenant's knowledge and a real SQLite store seeded from its CSV files.

use std::path::{Path, PathBuf};

use dialogue::manager::{Action, Conversation, DialogueConfig, Input, Source, Turn};
use dialogue::Engine;

#[derive(serde::Deserialize)]
struct Set {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Say {
    One(String),
    Many(Vec<String>),
}

#[derive(serde::Deserialize)]
struct Case {
    say: Say,
    expect: Option<String>,
    transfer: Option<String>,
    #[serde(default)]
    none: bool,
    reply_contains: Option<String>,
    #[serde(default)]
    reply_lacks: Vec<String>,
    caller: Option<String>,
    language: Option<String>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn engine() -> Engine {
    let db = std::env::temp_dir().join(format!("ivr-dialogue-test-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&db);
    Engine::load(&repo().join("tenant/demo"), &repo().join("models/data/embeddings/all-MiniLM-L6-v2"), &db, DialogueConfig::default())
        .expect("engine loads (run scripts/setup.sh for the models)")
}

/// Plays the turns of a case; returns every turn.
fn play(engine: &Engine, case: &Case) -> Vec<Turn> {
    let now: jiff::Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
    let mut conv = Conversation::new(case.caller.as_deref());
    let turns: Vec<String> = match &case.say {
        Say::One(s) => vec![s.clone()],
        Say::Many(v) => v.clone(),
    };
    let mut out = Vec::new();
    for t in &turns {
        if let Some(keys) = t.strip_prefix('#') {
            for k in keys.chars() {
                out.push(conv.handle(Input::Dtmf(k), now, &engine.brain()));
            }
        } else {
            out.push(conv.handle(Input::Speech { text: t, language: case.language.as_deref().unwrap_or("en") }, now, &engine.brain()));
        }
    }
    out
}

#[test]
fn dialogue_test_set() {
    let engine = engine();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dialogue_set.toml")).unwrap();
    let set: Set = toml::from_str(&text).unwrap();
    assert!(set.case.len() >= 80);
    let (mut intent_total, mut intent_ok) = (0, 0);
    let (mut must_transfer, mut transferred) = (0, 0);
    let mut failures = Vec::new();
    let mut misses = Vec::new();
    let mut ungrounded = 0;
    for (i, case) in set.case.iter().enumerate() {
        let turns = play(&engine, case);
        let last = turns.iter().rev().find(|t| !t.reply.is_empty() || t.action.is_some()).expect("a reply");
        let what = format!("#{i} {:?}", match &case.say { Say::One(s) => s.clone(), Say::Many(v) => v.join(" | ") });
        for t in &turns {
            let missing = dialogue::grounding::ungrounded(&t.reply, &[&t.grounds]);
            if !missing.is_empty() || (matches!(t.source, Source::Prompt) && !dialogue::grounding::numbers(&t.reply).iter().all(|n| ["8", "4"].contains(&n.as_str()))) {
                ungrounded += 1;
                failures.push(format!("{what}: ungrounded numbers in {:?}", t.reply));
            }
        }
        if let Some(expect) = &case.expect {
            intent_total += 1;
            if last.intent.as_deref() == Some(expect) {
                intent_ok += 1;
            } else {
                misses.push(format!("{what}: intent {:?} ({:?}), expected {expect}", last.intent, last.confidence));
            }
        }
        let transfer = turns.iter().find_map(|t| match &t.action {
            Some(Action::Transfer { reason, .. }) => Some(serde_json::to_value(reason).unwrap().as_str().unwrap().to_string()),
            _ => None,
        });
        if let Some(want) = &case.transfer {
            must_transfer += 1;
            if transfer.as_deref() == Some(want) {
                transferred += 1;
            } else {
                failures.push(format!("{what}: transfer {transfer:?}, expected {want}"));
            }
        } else if transfer.is_some() && !case.none {
            failures.push(format!("{what}: unexpected transfer {transfer:?}"));
        }
        if case.none && !matches!(last.source, Source::Prompt) {
            failures.push(format!("{what}: answered an out-of-scope question with {:?}: {}", last.source, last.reply));
        }
        for bad in &case.reply_lacks {
            if let Some(t) = turns.iter().find(|t| t.reply.contains(bad.as_str())) {
                failures.push(format!("{what}: a reply contains {bad:?}: {:?}", t.reply));
            }
        }
        if let Some(want) = &case.reply_contains {
            if !turns.iter().any(|t| t.reply.contains(want.as_str())) {
                failures.push(format!("{what}: no reply contains {want:?}; last: {:?}", last.reply));
            }
        }
    }
    let accuracy = intent_ok as f64 / intent_total as f64;
    eprintln!(
        "dialogue set: {} cases; intent accuracy {:.1}% ({intent_ok}/{intent_total}); transfers {transferred}/{must_transfer}; ungrounded replies {ungrounded}",
        set.case.len(),
        accuracy * 100.0
    );
    for f in misses.iter().chain(&failures) {
        eprintln!("  {f}");
    }
    assert!(accuracy >= 0.90, "intent accuracy {accuracy}");
    assert_eq!(ungrounded, 0);
    assert_eq!(transferred, must_transfer, "every required transfer happens");
    assert!(failures.is_empty(), "{} failures", failures.len());
}
