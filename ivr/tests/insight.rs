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
    let costs = "[costs]\ncurrency = \"EUR\"\nagent_cost_per_minute = 0.8\ninfrastructure_per_month = 300.0\ninitial_investment = 12000.0\nagent_minutes_per_call = 6.0\n";
    std::fs::write(&path, format!("[records]\nurl = \"sqlite://{}\"\n{costs}", dir.join("calls.db").display())).unwrap();
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

    // The ROI from the same records and the configured costs: no agent took a call in this
    // batch, so an agent's call is the configured 6 minutes; the period is one day.
    let roi = last_json(&ivr_ok(&["--config", c, "report", "roi", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]));
    let handled = calls.len() as f64;
    let without = handled * 6.0 * 0.8;
    let with = 300.0 / 30.4375;
    let per_month = (without - with) * 30.4375;
    let close = |key: &str, want: f64| assert!((roi[key].as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-6, "{key}: {} != {want}", roi[key]);
    assert_eq!(roi["contained"], contained);
    assert_eq!(roi["agent_minutes_measured"], false);
    close("agent_minutes_saved", contained as f64 * 6.0);
    close("cost_without_bot", without);
    close("cost_with_bot", with);
    close("cost_per_call_without_bot", without / handled);
    close("cost_per_call_with_bot", with / handled);
    close("savings_per_month", per_month);
    close("payback_months", 12000.0 / per_month);

    // Retention: with transcripts kept one day, these calls (of 2026-12-01) lose their words but
    // still count in the reports; the purge is in the audit log.
    let retained = dir.join("retention.toml");
    std::fs::write(&retained, std::fs::read_to_string(&config).unwrap() + "[retention]\ntranscripts_days = 1\n").unwrap();
    let out = ivr_ok(&["--config", retained.to_str().unwrap(), "records", "purge"]);
    assert!(out.contains(&format!("the words of {} calls", calls.len())), "{out}");
    let purged = export(&config, "calls");
    assert!(purged.iter().flat_map(|c| c["turns"].as_array().unwrap()).all(|t| t["text"] == "[purged]"), "every line's words are gone");
    let after = last_json(&ivr_ok(&["--config", c, "report", "kpi", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]))["kpis"].clone();
    for key in ["calls", "contained", "transferred", "unanswered_turns"] {
        assert_eq!(after[key], kpis[key], "{key} after the purge");
    }
    assert!(export(&config, "audit").iter().any(|l| l["action"] == "purge"), "the purge is audited");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A caller on a real softphone reads out a card number, then keys an order number and a PIN to
/// hear their reward points; the server logs at debug level. The card number and the PIN are in
/// none of the store's records, its exports (JSON lines and CSV), the dashboard or the server's
/// log, while the call itself worked (the points were read out).
#[test]
fn a_card_number_read_out_and_a_keyed_pin_are_never_kept() {
    use std::io::Write;
    const CARD: &str = "4111111111111111";
    const PIN: &str = "4821";
    let dir = tempdir("insight-privacy");
    let toml = format!(
        "[llm]\nurl = \"http://127.0.0.1:18640\"\n[records]\nurl = \"sqlite://{}\"\ndir = \"{}\"\n",
        dir.join("records/calls.db").display(),
        dir.join("audio").display()
    );
    let log_filter = "info,call_control=debug,voice_pipeline=debug,ivr=debug,ivr_store=debug,sip_bridge=debug,dialogue=debug";
    let served = serve_env(&dir, &toml, &[("IVR_LOG", log_filter)]);
    // The caller (an unknown number, so the bot asks for the order number and the PIN): the card
    // number first, then the reward points; the keys are typed on the phone while the bot waits.
    let p = |n: &str| dir.join(n).display().to_string();
    person_wav(&dir, "card", "My credit card number is 4111 1111 1111 1111.", 6.0, 4.0);
    // A wording of the knowledge itself (confidence 1.0): "I would like to check my reward points"
    // was heard once as "chat my reward points" (0.35), below the threshold.
    person_wav(&dir, "points", "How many reward points do I have?", 0.0, 40.0);
    run_ok(&["sox", &p("card.wav"), &p("points.wav"), &p("caller.wav")]);
    let uri = format!("sip:ivr@{}", served.sip);
    let mut phone = Group::spawn(
        baresip(&dir, "caller", &dir.join("caller.wav"), "<sip:+4930999000@127.0.0.1>;regint=0", 15400, 22000)
            .args(["-e", &format!("/dial {uri}"), "-t", "70"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::fs::File::create(dir.join("caller.log")).unwrap())
            .stderr(std::process::Stdio::null()),
    )
    .expect("baresip runs");
    let mut keys = phone.0.stdin.take().unwrap();
    let mut key_in = |at_secs: u64, digits: &str, started: std::time::Instant| {
        std::thread::sleep(std::time::Duration::from_secs(at_secs).saturating_sub(started.elapsed()));
        for d in digits.chars() {
            keys.write_all(d.to_string().as_bytes()).unwrap();
            keys.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    };
    assert!(wait_for(&dir.join("caller.log"), "established", 20), "the call was not answered: {}", std::fs::read_to_string(dir.join("caller.log")).unwrap_or_default());
    let started = std::time::Instant::now();
    // The bot asks for the order number after the points question (about 20 s in), then the PIN.
    key_in(24, "41234567#", started);
    key_in(36, &format!("{PIN}#"), started);
    std::thread::sleep(std::time::Duration::from_secs(50).saturating_sub(started.elapsed()));
    drop(keys);
    drop(phone);
    std::thread::sleep(std::time::Duration::from_secs(2));
    // What a supervisor sees of the call on the dashboard: the list and the call's record.
    let config = dir.join("ivr.toml");
    assert!(agents(&config, &["add", "sue", "--role", "supervisor"], "sue-password").0);
    let client = reqwest::blocking::Client::new();
    let base = format!("http://{}", served.http);
    let signed = client.post(format!("{base}/agent/api/login")).json(&serde_json::json!({"name": "sue", "password": "sue-password"})).send().unwrap();
    let cookie = signed.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
    let dashboard = |path: &str| client.get(format!("{base}{path}")).header("Cookie", &cookie).send().unwrap().text().unwrap();
    let listed = dashboard("/dashboard/api/calls?number=4930999000");
    let id = serde_json::from_str::<serde_json::Value>(&listed).unwrap()["calls"][0]["id"].as_str().expect("the call is listed").to_string();
    let shown = listed + &dashboard(&format!("/dashboard/api/calls/{id}"));
    assert!(shown.contains("[card number ending 1111]"), "{shown}");
    drop(served);

    let calls = export(&config, "calls");
    assert_eq!(calls.len(), 1, "one call stored");
    let bot: Vec<String> = said(&calls[0], "bot");
    assert!(bot.iter().any(|s| s.contains("PIN")), "the bot asked for the PIN: {bot:?}");
    assert!(bot.iter().any(|s| s.contains("1240")), "the keyed order number and PIN worked (the points were read out): {bot:?}");
    let caller: Vec<String> = said(&calls[0], "caller");
    assert!(caller.iter().any(|s| s.contains("[card")), "the card number was heard and masked: {caller:?}");
    let keys: Vec<String> =
        calls[0]["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "key").map(|e| e["detail"]["key"].as_str().unwrap_or_default().to_string()).collect();
    assert!(keys.len() >= 13, "the keys were recorded: {keys:?}");
    assert!(keys.iter().all(|k| k == "•" || k == "#"), "digits keyed while the bot collects them are masked: {keys:?}");

    let jsonl = ivr_ok(&["--config", config.to_str().unwrap(), "records", "export"]);
    let csv = ivr_ok(&["--config", config.to_str().unwrap(), "records", "export", "--format", "csv"]);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(log.contains("DEBUG"), "the server logged at debug level");
    for (what, text) in [("the JSON export", &jsonl), ("the CSV export", &csv), ("the server's log", &log), ("the dashboard", &shown)] {
        assert!(!ivr_privacy::holds_digits(text, CARD), "the card number is in {what}");
    }
    // The PIN as a number of its own (a log's random numbers, ports and sequence numbers may
    // hold its four digits inside longer ones).
    for (what, text) in [("the JSON export", &jsonl), ("the CSV export", &csv), ("the server's log", &log), ("the dashboard", &shown)] {
        assert!(!text.split(|c: char| !c.is_ascii_digit()).any(|n| n == PIN), "the PIN is in {what}");
    }
    // The database itself, every byte of it (and of its write-ahead log).
    for f in ["calls.db", "calls.db-wal"] {
        let bytes = std::fs::read(dir.join("records").join(f)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!ivr_privacy::holds_digits(&text, CARD), "the card number is in {f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Caller history: calls from one number are linked. The third call this week from a number
/// reaches the agent with "Third call this week" in its summary (the first transfer said
/// "Second"); an anonymous caller's calls are never linked; and a call followed by another from
/// the same number within 24 h is not counted as contained.
#[test]
fn a_returning_caller_is_linked_greeted_about_their_order_and_the_summary_says_how_often_they_called() {
    let dir = tempdir("insight-history");
    let config = config(&dir);
    let c = config.to_str().unwrap();
    let simulate = |file: &str, caller: &str, at: &str| {
        let out = ivr_ok(&["--config", c, "simulate", fixture(&format!("calls/{file}")).to_str().unwrap(), "--store", "--caller", caller, "--at", at, "--json"]);
        last_json(&out)["call_id"].as_str().expect("stored").to_string()
    };
    simulate("delivery-questions-piper.flac", "+4930555000", "2026-12-01T09:00:00Z");
    let second = simulate("returns-then-person-piper.flac", "+4930555000", "2026-12-01T15:00:00Z");
    let third = simulate("returns-then-person-piper.flac", "+4930555000", "2026-12-03T08:00:00Z");
    let anonymous = [simulate("returns-then-person-piper.flac", "anonymous", "2026-12-01T10:00:00Z"), simulate("returns-then-person-piper.flac", "anonymous", "2026-12-01T11:00:00Z")];
    let calls = export(&config, "calls");
    let summary = |id: &str| -> String {
        let call = calls.iter().find(|x| x["id"] == id).expect("the call's record");
        call["events"].as_array().unwrap().iter().find(|e| e["kind"] == "action").map(|e| e["detail"]["summary"]["screen"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
    };
    assert!(summary(&second).starts_with("Second call this week."), "{}", summary(&second));
    assert!(summary(&third).starts_with("Third call this week."), "{}", summary(&third));
    for id in &anonymous {
        assert!(summary(id).starts_with("Goal:"), "anonymous calls are not linked: {}", summary(id));
    }
    // The first call (answered, ended normally) had a call from its number 6 h later: not contained.
    let kpis = last_json(&ivr_ok(&["--config", c, "report", "kpi", "--from", "2026-12-01", "--to", "2026-12-01", "--json"]))["kpis"].clone();
    assert_eq!(kpis["calls"], 4);
    assert_eq!(kpis["transferred"], 3);
    assert_eq!(kpis["contained"], 0, "the first call was followed by another from the same number: {kpis}");

    // The open matter: a caller asks where their order is (its number and postcode keyed); when
    // they call again the bot greets them about that order, and "yes" goes on with it.
    let with_keys = |wav: &std::path::Path, caller: &str, at: &str, keys: &[&str]| {
        let mut args = vec!["--config", c, "simulate", wav.to_str().unwrap(), "--store", "--caller", caller, "--at", at, "--json"];
        for k in keys {
            args.extend(["--keys", k]);
        }
        last_json(&ivr_ok(&args))
    };
    let asks = person_wav(&dir, "where", "Where is my order?", 6.0, 16.0);
    let first = with_keys(&asks, "+4930777000", "2026-12-02T09:00:00Z", &["10:41234567#", "16:10115#"]);
    assert!(said(&first, "bot").iter().any(|l| l.contains("shipped")), "the first call found the order: {:?}", said(&first, "bot"));
    let yes = person_wav(&dir, "yes", "Yes, please.", 8.0, 12.0);
    let again = with_keys(&yes, "+4930777000", "2026-12-02T17:00:00Z", &["14:10115#"]);
    let bot = said(&again, "bot");
    assert!(bot[0].contains("Are you calling about order 41234567?"), "the greeting asks about the open order: {bot:?}");
    assert!(bot.iter().any(|l| l.contains("postcode")) && bot.iter().any(|l| l.contains("41234567") && l.contains("shipped")), "yes goes on with it: {bot:?}");
    // Another number, or a caller whose calls were about no order, gets the usual greeting.
    let other = with_keys(&yes, "+4930777001", "2026-12-02T17:30:00Z", &[]);
    assert!(!said(&other, "bot")[0].contains("Are you calling about"), "{:?}", said(&other, "bot"));
    let calls = export(&config, "calls");
    let first_id = first["call_id"].as_str().unwrap();
    let matter = calls.iter().find(|x| x["id"] == first_id).unwrap()["events"].as_array().unwrap().iter().find(|e| e["kind"] == "matter").cloned();
    assert_eq!(matter.map(|m| m["detail"]["order"].clone()), Some("41234567".into()), "the call recorded the order it was about");
    let _ = std::fs::remove_dir_all(&dir);
}
