//! The reports on real calls: callers' questions (spoken by the project's Piper voice) go through
//! the simulator on the real models and are written to a store as live calls are; `ivr report`
//! then groups what the bot could not answer by meaning, and its figures are recounted here from
//! the records `ivr records export` gives.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;

/// Five questions the demo company's knowledge does not cover, three wordings each (each below
/// the classifier's threshold with a margin, checked with `ivr ask`).
const GAPS: &[(&str, [&str; 3])] = &[
    ("jobs", ["Are you hiring at the moment?", "Do you have any job openings?", "How can I apply for a job with your company?"]),
    ("students", ["Do students get a discount?", "Is there a student discount?", "Can I get money off as a student?"]),
    ("newsletter", ["How do I unsubscribe from your newsletter?", "Remove me from your mailing list.", "I don't want your newsletter any more."]),
    ("wrapping", ["Do you offer gift wrapping?", "Is gift wrapping available?", "Can you gift wrap my order?"]),
    ("pets", ["Can I bring my dog into your shop?", "Do you allow pets inside the shop?", "May I bring my pet dog with me?"]),
];

/// Questions it answers.
const ANSWERED: &[&str] = &["How long does delivery take?", "What is your returns policy?", "Which payment methods do you accept?", "Do you offer express delivery?"];

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("ivr.toml");
    std::fs::write(&path, format!("[records]\nurl = \"sqlite://{}\"\n", dir.join("calls.db").display())).unwrap();
    path
}

/// One simulated call asking `question`, stored as starting at `at`; its id in the store.
fn ask(dir: &Path, config: &Path, name: &str, question: &str, caller: &str, at: &str) -> String {
    let wav = person_wav(dir, name, question, 6.0, 3.0);
    let out = ivr_ok(&["--config", config.to_str().unwrap(), "simulate", wav.to_str().unwrap(), "--store", "--caller", caller, "--at", at, "--json"]);
    last_json(&out)["call_id"].as_str().expect("the call was stored").to_string()
}

#[test]
fn unanswered_questions_are_grouped_by_meaning_and_the_figures_match_the_records() {
    let dir = tempdir("insight-gaps");
    let config = config(&dir);
    let mut topic_of: BTreeMap<String, &str> = BTreeMap::new();
    let mut n = 0;
    let mut next_at = || {
        n += 1;
        (format!("+49301110{n:03}"), format!("2026-12-01T{:02}:{:02}:00Z", 8 + n / 6, (n % 6) * 10))
    };
    for (topic, wordings) in GAPS {
        for (i, q) in wordings.iter().enumerate() {
            let (caller, at) = next_at();
            let id = ask(&dir, &config, &format!("{topic}{i}"), q, &caller, &at);
            topic_of.insert(id, topic);
        }
    }
    for (i, q) in ANSWERED.iter().enumerate() {
        let (caller, at) = next_at();
        ask(&dir, &config, &format!("answered{i}"), q, &caller, &at);
    }

    let c = config.to_str().unwrap();
    let gaps = last_json(&ivr_ok(&["--config", c, "report", "gaps", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]));
    let groups: Vec<BTreeSet<String>> = gaps["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["members"].as_array().unwrap().iter().map(|m| m["call_id"].as_str().unwrap().to_string()).collect())
        .collect();
    let shown: Vec<Vec<&str>> = groups.iter().map(|g| g.iter().map(|id| topic_of.get(id).copied().unwrap_or("answered")).collect()).collect();
    eprintln!("groups: {shown:?}\n{gaps}");
    // Five groups hold the gap questions; an answerable question the recogniser garbled beyond
    // understanding on this CPU would be a knowledge gap of its own, never part of those five.
    let with_gaps: Vec<&BTreeSet<String>> = groups.iter().filter(|g| g.iter().any(|id| topic_of.contains_key(id))).collect();
    assert_eq!(with_gaps.len(), 5, "five topics the knowledge does not cover: {shown:?}");
    assert!(groups.len() <= 6, "at most one answerable question misheard: {shown:?}");
    for (topic, _) in GAPS {
        let members: BTreeSet<String> = topic_of.iter().filter(|(_, t)| *t == topic).map(|(id, _)| id.clone()).collect();
        assert!(groups.contains(&members), "the three wordings of {topic} form one group: {shown:?}");
    }

    // The KPIs against the records: every stored call, counted here from the export.
    let calls = export(&config, "calls");
    assert_eq!(calls.len(), GAPS.len() * 3 + ANSWERED.len());
    let kpis = last_json(&ivr_ok(&["--config", c, "report", "kpi", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]))["kpis"].clone();
    let caller_turns: Vec<&serde_json::Value> = calls.iter().flat_map(|c| c["turns"].as_array().unwrap()).filter(|t| t["speaker"] == "caller").collect();
    let unanswered = caller_turns.iter().filter(|t| t["unanswered"] == true).count();
    let transferred = calls.iter().filter(|c| c["events"].as_array().unwrap().iter().any(|e| e["kind"] == "transfer")).count();
    let normal_end = |c: &&serde_json::Value| c["ended_by"] == "caller" || c["ended_by"] == "bot";
    let contained = calls.iter().filter(normal_end).filter(|c| !c["events"].as_array().unwrap().iter().any(|e| e["kind"] == "transfer")).count();
    assert_eq!(kpis["calls"], calls.len());
    assert_eq!(kpis["handled"], calls.len());
    assert_eq!(kpis["unanswered_turns"], unanswered);
    assert!(unanswered >= GAPS.len() * 3, "each gap question is unanswered: {unanswered}");
    assert_eq!(kpis["transferred"], transferred);
    assert_eq!(kpis["contained"], contained, "every caller called once: contained = not transferred, ended normally");
    let v2v: Vec<f64> = caller_turns.iter().filter_map(|t| t["voice_to_voice_ms"].as_f64()).collect();
    assert_eq!(kpis["voice_to_voice_ms"]["count"], v2v.len());
    let mean = v2v.iter().sum::<f64>() / v2v.len() as f64;
    assert!((kpis["voice_to_voice_ms"]["mean"].as_f64().unwrap() - mean).abs() < 1e-6);
    let _ = std::fs::remove_dir_all(&dir);
}
