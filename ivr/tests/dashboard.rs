//! The insight end to end, on SQLite and on PostgreSQL: a scripted batch of 56 calls — 45
//! simulated on the real models (answered questions, knowledge gaps, callers asking for a person
//! or angry, a card number read out, a caller who calls again; 4 of them in the week before, for
//! the trends) and 11 real SIP calls to a running server (an agent's phone answers three
//! transferred callers, who then rate the call on the keypad; two callers give up waiting; two
//! leave a callback; four are answered by the bot). Then every figure is counted here from the
//! records `ivr records export` gives and compared with the dashboard's API, `ivr report` and
//! the server's `/metrics`; and the dashboard itself is driven in headless Chromium: its figures,
//! its charts (drawn canvases), the call browser finding a call by number and playing its
//! recording, with screenshots kept in target/test-artifacts.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// What the simulated callers say.
const SENTENCES: &[(&str, &str)] = &[
    ("delivery", "How long does delivery take?"),
    ("returns", "What is your returns policy?"),
    ("payment", "Which payment methods do you accept?"),
    ("express", "Do you offer express delivery?"),
    ("hiring", "Are you hiring at the moment?"),
    ("students", "Do students get a discount?"),
    ("person", "I want to talk to a person."),
    ("angry", "This is ridiculous. I am furious, your service is terrible!"),
];
const CARD: &str = "My credit card number is 4111 1111 1111 1111.";
/// The first day of the dashboard's period (the week before it has a few calls, for the trends).
const FROM: &str = "2026-11-27";
const RATINGS: [char; 3] = ['5', '4', '2'];

/// The simulated calls: (sentence, caller, start).
fn simulated() -> Vec<(&'static str, String, String)> {
    let mut calls = Vec::new();
    for i in 0..40usize {
        let (name, _) = SENTENCES[i % SENTENCES.len()];
        let day = 27 + i % 6; // 27 November to 2 December
        let (month, day) = if day <= 30 { (11, day) } else { (12, day - 30) };
        calls.push((name, format!("+4930200{i:03}"), format!("2026-{month:02}-{day:02}T{:02}:{:02}:00Z", 7 + (i * 5) % 11, (i * 7) % 60)));
    }
    // One caller calls back an hour later: their first call is not contained.
    calls.push(("delivery", "+4930200039".into(), "2026-11-28T10:00:00Z".into()));
    calls.push(("card", "+4930200040".into(), "2026-12-01T09:30:00Z".into()));
    for (i, name) in ["delivery", "returns", "person", "hiring"].iter().enumerate() {
        calls.push((name, format!("+4930100{i:03}"), format!("2026-11-2{}T10:00:00Z", 1 + i)));
    }
    calls
}

fn config_toml(dir: &Path, url: &str, llm_port: u16) -> String {
    format!(
        "[llm]\nurl = \"http://127.0.0.1:{llm_port}\"\n[sip]\nrtp_timeout_secs = 120\n\
         [sip.queue]\nring_timeout_secs = 20\nmax_wait_secs = 120\n\
         [sip.registrar]\nrealm = \"lumen\"\nalgorithms = [\"MD5\"]\n\
         [records]\nurl = \"{url}\"\ndir = \"{}\"\n\
         [insight]\nservice_level_secs = 20\n\
         [costs]\ncurrency = \"EUR\"\nagent_cost_per_minute = 0.8\ninfrastructure_per_month = 300.0\ninitial_investment = 12000.0\nagent_minutes_per_call = 6.0\n",
        dir.join("audio").display()
    )
}

/// The user part of a caller's address (how calls from one number are linked).
fn number_of(caller: &str) -> &str {
    let rest = caller.trim_start_matches('<');
    let rest = rest.strip_prefix("sips:").or_else(|| rest.strip_prefix("sip:")).or_else(|| rest.strip_prefix("tel:")).unwrap_or(rest);
    rest.split(['@', ';', '>']).next().unwrap_or(rest)
}

fn at(v: &serde_json::Value) -> Timestamp {
    v.as_str().and_then(|s| s.parse().ok()).expect("an RFC 3339 time")
}

fn events<'a>(c: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    c["events"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).collect()
}

/// A dashboard client signed in as a supervisor.
struct Http {
    base: String,
    cookie: String,
    client: reqwest::blocking::Client,
}

impl Http {
    fn sign_in(http: &str, name: &str, password: &str) -> Self {
        let client = reqwest::blocking::Client::new();
        let base = format!("http://{http}");
        let r = client.post(format!("{base}/agent/api/login")).json(&serde_json::json!({"name": name, "password": password})).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_string();
        Self { base, cookie, client }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{path}", self.base)).header("Cookie", &self.cookie).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// The server's counters from `/metrics`: name{labels} -> value.
fn metrics(http: &str) -> HashMap<String, f64> {
    let body = reqwest::blocking::get(format!("http://{http}/metrics")).unwrap().text().unwrap();
    body.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.rsplit_once(' ')).filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?))).collect()
}

fn batch(backend: &str, url: &str, llm_port: u16, ports: u16) {
    let dir = tempdir(&format!("dashboard-{backend}"));
    let toml = config_toml(&dir, url, llm_port);
    let config = dir.join("ivr.toml");
    std::fs::write(&config, &toml).unwrap();
    let c = config.to_str().unwrap().to_string();
    assert!(agents(&config, &["add", "ann", "--extension", "2001"], "agentpass1").0);
    assert!(agents(&config, &["add", "sue", "--role", "supervisor"], "sue-password").0);
    assert!(agents(&config, &["status", "ann", "available"], "").0);

    // The simulated calls, in one run of the simulator (the models loaded once).
    let wavs: HashMap<&str, std::path::PathBuf> =
        SENTENCES.iter().copied().chain([("card", CARD)]).map(|(name, text)| (name, person_wav(&dir, name, text, 6.0, 3.0))).collect();
    let sims = simulated();
    let script: String = sims.iter().map(|(name, caller, start)| format!("[[call]]\nfile = \"{}\"\ncaller = \"{caller}\"\nat = \"{start}\"\n\n", wavs[name].display())).collect();
    std::fs::write(dir.join("batch.toml"), script).unwrap();
    let out = ivr_ok(&["--config", &c, "simulate", "--script", dir.join("batch.toml").to_str().unwrap(), "--store", "--json"]);
    assert_eq!(out.lines().filter(|l| l.contains("\"call_id\"")).count(), sims.len(), "one stored call per scripted caller");

    // The real calls.
    let served = serve(&dir, &toml);
    let uri = format!("sip:ivr@{}", served.sip);
    let silence = dir.join("silence.wav");
    run_ok(&["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", "200"]);
    let agent_log = dir.join("agent.log");
    let account = format!("<sip:2001@{}>;auth_pass=agentpass1;regint=60;answermode=auto", served.sip);
    let mut phone = Group::spawn(baresip_for(&dir, "agent", &silence, &account, ports, ports + 1000, 400).stdin(Stdio::piped()).stdout(std::fs::File::create(&agent_log).unwrap()).stderr(Stdio::null()))
        .expect("baresip runs");
    let mut agent_keys = phone.0.stdin.take().unwrap();
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register");
    let answered = || std::fs::read_to_string(&agent_log).unwrap_or_default().matches("Call established").count();
    let queue_of = |number: &str, event: &str| {
        let calls = all_calls(&config);
        let Some(id) = calls.iter().rfind(|c| c["caller"].as_str().is_some_and(|c| c.contains(number))).and_then(|c| c["id"].as_str().map(str::to_string)) else { return false };
        export(&config, "queue").iter().any(|l| l["call_id"] == id.as_str() && l["event"] == event)
    };
    let ended = |number: &str| all_calls(&config).iter().any(|c| c["caller"].as_str().is_some_and(|c| c.contains(number)) && c["ended_at"].is_string());

    // Three callers press 0 for a person; the agent's phone answers, the agent keys 1 to accept,
    // talks, hangs up; the caller rates the call.
    for (i, rating) in RATINGS.iter().enumerate() {
        let number = format!("+4930300{i:03}");
        let name = format!("rated{i}");
        let log = dir.join(format!("{name}.log"));
        let port = ports + 2 + 2 * i as u16;
        let mut caller = Group::spawn(
            baresip(&dir, &name, &silence, &format!("<sip:{number}@127.0.0.1>;regint=0"), port, port + 1000)
                .args(["-e", &format!("/dial {uri}"), "-t", "120"])
                .stdin(Stdio::piped())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null()),
        )
        .expect("baresip runs");
        let mut keys = caller.0.stdin.take().unwrap();
        let mut press = |k: &[u8]| {
            keys.write_all(k).unwrap();
            keys.flush().unwrap();
        };
        assert!(wait_for(&log, "established", 20), "{name}'s call was not answered");
        std::thread::sleep(Duration::from_millis(1500));
        press(b"0");
        assert!(wait_until(40, || answered() == i + 1), "the agent's phone was not rung for {name}: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
        std::thread::sleep(Duration::from_secs(1));
        agent_keys.write_all(b"1").unwrap();
        agent_keys.flush().unwrap();
        assert!(wait_until(20, || queue_of(&number, "connect")), "{name} was not connected to the agent");
        std::thread::sleep(Duration::from_secs(2 + i as u64));
        agent_keys.write_all(b"/hangup\n").unwrap();
        agent_keys.flush().unwrap();
        assert!(wait_until(15, || queue_of(&number, "complete")), "the agent's part of {name}'s call did not complete");
        std::thread::sleep(Duration::from_millis(800));
        press(rating.to_string().as_bytes());
        assert!(wait_until(30, || ended(&number)), "{name}'s call did not end after the rating");
    }

    // With the agent on break: two callers give up waiting, two leave a callback; meanwhile
    // four callers ask the bot a question it answers.
    assert!(agents(&config, &["status", "ann", "on_break"], "").0);
    let sipp_dir = dir.join("sipp");
    std::fs::create_dir_all(&sipp_dir).unwrap();
    let mut waiting = Vec::new();
    for i in 0..2u16 {
        let number = format!("+4930400{i:03}");
        waiting.push(sipp_spawn("key-zero-then-bye.xml", &served.sip, &[("caller", &number), ("stay_ms", "12000")], &sipp_dir, 40 + i));
        let number = format!("+4930500{i:03}");
        let vars = [("caller", number.as_str()), ("wait1", "12000"), ("key1", "1"), ("wait2", "6000"), ("key2", "pound")];
        waiting.push(sipp_spawn("keys-then-their-bye.xml", &served.sip, &vars, &sipp_dir, 42 + i));
    }
    let question = caller_ulaw(&dir, "What is your returns policy?");
    let questions: Vec<SippCall> = (0..4u16)
        .map(|i| {
            let number = format!("+4930600{i:03}");
            sipp_spawn("call-question.xml", &served.sip, &[("caller", &number), ("question", question.to_str().unwrap()), ("listen_ms", "14000")], &sipp_dir, 50 + i)
        })
        .collect();
    for mut s in waiting.into_iter().chain(questions) {
        assert!(s.0.wait().unwrap().success(), "a sipp caller's scenario failed (see {})", sipp_dir.display());
    }
    drop(agent_keys);
    drop(phone);
    let total = sims.len() + RATINGS.len() + 8;
    let calls = records(&config, total, 60);
    assert_eq!(calls.len(), total, "every call of the batch is recorded and ended");

    // --- The figures, counted here from the records ---
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let today = Timestamp::now().to_zoned(tz.clone()).date();
    let from = FROM.parse::<jiff::civil::Date>().unwrap().to_zoned(tz.clone()).unwrap().timestamp();
    let to = today.tomorrow().unwrap().to_zoned(tz.clone()).unwrap().timestamp();
    let queue = export(&config, "queue");
    let follow_ups = export(&config, "follow-ups");
    let in_period: Vec<&serde_json::Value> = calls.iter().filter(|c| (from..to).contains(&at(&c["started_at"]))).collect();
    assert!(in_period.len() >= 50, "a batch of at least 50 calls in the period: {}", in_period.len());
    let handled: Vec<&&serde_json::Value> = in_period.iter().filter(|c| !events(c, "answered").is_empty()).collect();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for c in &handled {
        if let Some(e) = events(c, "transfer").first() {
            *reasons.entry(e["detail"]["reason"].as_str().unwrap_or("unknown").to_string()).or_default() += 1;
        }
    }
    let transferred: usize = reasons.values().sum();
    let with_follow_up = |c: &serde_json::Value| {
        follow_ups.iter().any(|f| f["call_id"] == c["id"]) || !events(c, "callback").is_empty() || !events(c, "voicemail").is_empty()
    };
    let called_again = |c: &serde_json::Value| {
        let (n, t) = (number_of(c["caller"].as_str().unwrap()), at(&c["started_at"]));
        calls.iter().any(|o| number_of(o["caller"].as_str().unwrap()) == n && at(&o["started_at"]) > t && at(&o["started_at"]).duration_since(t) <= jiff::SignedDuration::from_hours(24))
    };
    let contained = handled
        .iter()
        .filter(|c| events(c, "transfer").is_empty() && !with_follow_up(c) && (c["ended_by"] == "caller" || c["ended_by"] == "bot") && !called_again(c))
        .count();
    let ids: std::collections::HashSet<&str> = in_period.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let lines = |event: &str| queue.iter().filter(|l| l["event"] == event && l["call_id"].as_str().is_some_and(|c| ids.contains(c))).count();
    let ratings: Vec<u64> = in_period.iter().flat_map(|c| events(c, "csat")).map(|e| e["detail"]["rating"].as_u64().unwrap()).collect();
    let mut distribution = [0usize; 5];
    ratings.iter().for_each(|r| distribution[*r as usize - 1] += 1);
    let caller_turns: Vec<&serde_json::Value> = in_period.iter().flat_map(|c| c["turns"].as_array().unwrap()).filter(|t| t["speaker"] == "caller").collect();
    let unanswered = caller_turns.iter().filter(|t| t["unanswered"] == true).count();
    let mut intents: BTreeMap<&str, usize> = BTreeMap::new();
    for t in caller_turns.iter().filter(|t| t["unanswered"] != true && t["confidence"].is_number()) {
        if let Some(i) = t["intent"].as_str() {
            *intents.entry(i).or_default() += 1;
        }
    }
    let callbacks = follow_ups.iter().filter(|f| f["kind"] == "callback" && (from..to).contains(&at(&f["created_at"]))).count();
    let mut by_day: BTreeMap<String, usize> = BTreeMap::new();
    for c in &in_period {
        *by_day.entry(at(&c["started_at"]).to_zoned(tz.clone()).date().to_string()).or_default() += 1;
    }
    // The queue's waits, from its log's own times: answered callers from ENTERQUEUE to CONNECT.
    let waits: Vec<f64> = queue
        .iter()
        .filter(|l| l["event"] == "connect" && l["call_id"].as_str().is_some_and(|c| ids.contains(c)))
        .map(|l| {
            let enter = queue.iter().find(|e| e["event"] == "enter" && e["call_id"] == l["call_id"]).expect("entered before connect");
            at(&l["at"]).duration_since(at(&enter["at"])).as_secs_f64()
        })
        .collect();

    // The scripted batch is what it should be.
    assert_eq!(ratings.len(), 3, "three ratings keyed: {ratings:?}");
    assert_eq!(lines("connect"), 3);
    assert_eq!(lines("abandon"), 2, "two callers gave up waiting");
    assert_eq!(callbacks, 2, "two callbacks: {follow_ups:?}");
    assert!(reasons.len() >= 2, "transfers for more than one reason: {reasons:?}");

    // The dashboard's API, `ivr report` and the counts agree.
    let http = Http::sign_in(&served.http, "sue", "sue-password");
    let range = format!("from={FROM}&to={today}");
    let api = http.json(&format!("/dashboard/api/kpi?{range}"));
    let k = &api["kpis"];
    let report = last_json(&ivr_ok(&["--config", &c, "report", "kpi", "--from", FROM, "--to", &today.to_string(), "--json"]));
    assert_eq!(&report["kpis"], k, "ivr report and the dashboard compute the same figures");
    assert_eq!(k["calls"], in_period.len());
    assert_eq!(k["handled"], handled.len());
    assert_eq!(k["contained"], contained);
    assert_eq!(k["transferred"], transferred);
    assert_eq!(k["transfer_reasons"], serde_json::json!(reasons));
    assert_eq!(k["queue"]["entered"], lines("enter"));
    assert_eq!(k["queue"]["answered"], lines("connect"));
    assert_eq!(k["queue"]["abandoned"], lines("abandon"));
    assert_eq!(k["queue"]["exited_with_key"], lines("exit_with_key"));
    let asa = waits.iter().sum::<f64>() / waits.len() as f64;
    assert!((k["queue"]["asa_secs"]["mean"].as_f64().unwrap() - asa).abs() < 0.05, "ASA {} against {asa} from the log's times", k["queue"]["asa_secs"]);
    let within = waits.iter().filter(|w| **w <= 20.0).count();
    assert_eq!(k["queue"]["service_level"].as_f64(), Some(within as f64 / waits.len() as f64));
    assert_eq!(k["follow_ups"]["callbacks"], callbacks);
    assert_eq!(k["csat"]["ratings"], ratings.len());
    assert_eq!(k["csat"]["distribution"], serde_json::json!(distribution));
    assert_eq!(k["csat"]["csat"].as_f64(), Some(ratings.iter().filter(|r| **r >= 4).count() as f64 / ratings.len() as f64));
    assert_eq!(k["unanswered_turns"], unanswered);
    let api_intents: BTreeMap<&str, usize> = k["intents"].as_array().unwrap().iter().map(|i| (i["intent"].as_str().unwrap(), i["turns"].as_u64().unwrap() as usize)).collect();
    assert_eq!(api_intents, intents);
    let api_days: BTreeMap<String, usize> = k["by_day"].as_array().unwrap().iter().map(|b| (b["key"].as_str().unwrap().to_string(), b["calls"].as_u64().unwrap() as usize)).filter(|(_, n)| *n > 0).collect();
    assert_eq!(api_days, by_day);
    // Times and moods, from the calls' own events and turns.
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let near = |got: &serde_json::Value, want: f64, what: &str| assert!((got.as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-6, "{what}: {got} against {want}");
    near(&k["containment_rate"], contained as f64 / handled.len() as f64, "containment rate");
    near(&k["transfer_rate"], transferred as f64 / handled.len() as f64, "transfer rate");
    let durations: Vec<f64> = handled.iter().filter_map(|c| c["duration_secs"].as_f64()).collect();
    near(&k["handle_secs"]["mean"], mean(&durations), "handling time");
    let first_words: Vec<f64> = handled
        .iter()
        .filter_map(|c| {
            let answered = events(c, "answered")[0]["at_secs"].as_f64()?;
            let bot = c["turns"].as_array()?.iter().find(|t| t["speaker"] == "bot")?;
            Some((bot["at_secs"].as_f64()? - answered).max(0.0))
        })
        .collect();
    assert_eq!(k["first_response_secs"]["count"], first_words.len());
    near(&k["first_response_secs"]["mean"], mean(&first_words), "first response");
    let v2v: Vec<f64> = caller_turns.iter().filter_map(|t| t["voice_to_voice_ms"].as_f64()).collect();
    assert_eq!(k["voice_to_voice_ms"]["count"], v2v.len());
    near(&k["voice_to_voice_ms"]["mean"], mean(&v2v), "voice to voice");
    let rank = |s: &str| ["neutral", "frustrated", "angry"].iter().position(|m| *m == s).unwrap_or(0);
    let mut moods: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &handled {
        let worst = c["turns"].as_array().unwrap().iter().filter(|t| t["speaker"] == "caller").filter_map(|t| t["sentiment"].as_str()).max_by_key(|s| rank(s)).unwrap_or("neutral");
        *moods.entry(worst).or_default() += 1;
    }
    assert_eq!(k["sentiment"], serde_json::json!(moods));
    assert!(moods.get("angry").copied().unwrap_or(0) >= 1, "the angry callers were heard as angry: {moods:?}");
    let understood = caller_turns.iter().filter(|t| t["unanswered"] != true && t["intent"].is_string() && t["confidence"].is_number()).count();
    assert_eq!(k["understood_turns"], understood);
    // SL2 counts callers who gave up within the threshold for the queue.
    let abandon_waits: Vec<f64> = queue
        .iter()
        .filter(|l| l["event"] == "abandon" && l["call_id"].as_str().is_some_and(|c| ids.contains(c)))
        .map(|l| at(&l["at"]).duration_since(at(&queue.iter().find(|e| e["event"] == "enter" && e["call_id"] == l["call_id"]).unwrap()["at"])).as_secs_f64())
        .collect();
    let quick = abandon_waits.iter().filter(|w| **w <= 20.0).count();
    assert_eq!(k["queue"]["service_level_2"].as_f64(), Some((within + quick) as f64 / (waits.len() + abandon_waits.len()) as f64));
    let voicemails = follow_ups.iter().filter(|f| f["kind"] == "voicemail" && (from..to).contains(&at(&f["created_at"]))).count();
    assert_eq!(k["follow_ups"]["voicemails"], voicemails);
    let previous = calls.iter().filter(|c| (from.checked_sub(to.duration_since(from)).unwrap()..from).contains(&at(&c["started_at"]))).count();
    assert_eq!(api["previous"]["calls"], previous, "the period before, for the trends");
    assert!(previous >= 4);

    // The ROI from the records and the configured costs.
    let roi = last_json(&ivr_ok(&["--config", &c, "report", "roi", "--from", FROM, "--to", &today.to_string(), "--json"]));
    assert_eq!(http.json(&format!("/dashboard/api/roi?{range}"))["roi"], roi, "the dashboard's ROI is the report's");
    let talk: Vec<f64> = queue.iter().filter(|l| l["event"] == "complete" && l["call_id"].as_str().is_some_and(|c| ids.contains(c))).map(|l| l["detail"]["talk_secs"].as_f64().unwrap()).collect();
    assert_eq!(talk.len(), 3);
    let per_call = talk.iter().sum::<f64>() / 60.0 / 3.0;
    let days = to.duration_since(from).as_secs_f64() / 86_400.0;
    let without = handled.len() as f64 * per_call * 0.8;
    let with = talk.iter().sum::<f64>() / 60.0 * 0.8 + 300.0 * days / 30.4375;
    let close = |key: &str, want: f64| assert!((roi[key].as_f64().unwrap_or(f64::NAN) - want).abs() < 1e-6, "{key}: {} != {want}", roi[key]);
    close("agent_minutes_per_call", per_call);
    close("agent_minutes_saved", contained as f64 * per_call);
    close("cost_without_bot", without);
    close("cost_with_bot", with);
    close("savings_per_month", (without - with) * 30.4375 / days);

    // The server's counters: its own calls (the simulated ones never passed through it).
    let m = metrics(&served.http);
    let real: Vec<&serde_json::Value> = calls.iter().filter(|c| c["server"] != "simulator").collect();
    assert_eq!(real.len(), RATINGS.len() + 8);
    assert_eq!(m["ivr_calls_started_total"], real.len() as f64);
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    real.iter().for_each(|c| *by.entry(c["ended_by"].as_str().unwrap().replace(' ', "_")).or_default() += 1);
    for (end, n) in &by {
        assert_eq!(m.get(&format!("ivr_calls_ended_total{{ended_by=\"{end}\"}}")), Some(&(*n as f64)), "calls ended by {end}");
    }
    let mut real_reasons: BTreeMap<String, usize> = BTreeMap::new();
    real.iter().flat_map(|c| events(c, "transfer")).for_each(|e| *real_reasons.entry(e["detail"]["reason"].as_str().unwrap().to_string()).or_default() += 1);
    for (reason, n) in &real_reasons {
        assert_eq!(m.get(&format!("ivr_transfers_total{{reason=\"{reason}\"}}")), Some(&(*n as f64)), "transfers for {reason}");
    }
    let mut by_event: BTreeMap<&str, usize> = BTreeMap::new();
    queue.iter().for_each(|l| *by_event.entry(l["event"].as_str().unwrap()).or_default() += 1);
    for (event, n) in &by_event {
        assert_eq!(m.get(&format!("ivr_queue_events_total{{event=\"{event}\"}}")), Some(&(*n as f64)), "queue events {event}");
    }

    // The call browser's search, through the API: by number, intent and outcome.
    let rated = http.json(&format!("/dashboard/api/calls?{range}&number=%2B4930300000"));
    assert_eq!(rated["total"], 1, "{rated}");
    assert_eq!(rated["calls"][0]["outcome"], "transferred");
    assert_eq!(rated["calls"][0]["csat"], 5);
    let transferred_found = http.json(&format!("/dashboard/api/calls?{range}&outcome=transferred&limit=1000"));
    assert_eq!(transferred_found["total"], transferred);
    let (top, _) = intents.iter().max_by_key(|(_, n)| **n).expect("intents understood");
    let found = http.json(&format!("/dashboard/api/calls?{range}&intent={top}&limit=1000"));
    let with_top = in_period.iter().filter(|c| c["turns"].as_array().unwrap().iter().any(|t| t["speaker"] == "caller" && t["intent"] == *top)).count();
    assert_eq!(found["total"], with_top, "calls with the intent {top}");
    assert_eq!(http.get(&format!("/dashboard/api/calls?{range}&outcome=happy")).0, 400, "an unknown outcome is a clear 400");
    // The card number was masked before it was stored: neither the API nor the page has it.
    let card_call = http.json(&format!("/dashboard/api/calls?{range}&number=4930200040"));
    let card_id = card_call["calls"][0]["id"].as_str().unwrap().to_string();
    let card_record = http.get(&format!("/dashboard/api/calls/{card_id}")).1;
    assert!(card_record.contains("ending 1111"), "the masked number is in its place: {card_record}");
    assert!(!card_record.replace(' ', "").contains("4111111111111111"), "{card_record}");

    // The CSV downloads: audited as exports.
    let (status, csv) = http.get(&format!("/dashboard/api/report.csv?kind=kpi&{range}"));
    assert_eq!(status, 200);
    assert!(csv.starts_with("figure,value,definition\n") && csv.contains(&format!("\ncalls,{},", in_period.len())), "{}", &csv[..csv.len().min(400)]);
    let cli_csv = ivr_ok(&["--config", &c, "report", "kpi", "--from", FROM, "--to", &today.to_string(), "--csv"]);
    assert_eq!(cli_csv, csv, "the CLI's CSV is the dashboard's");
    // An agent is no supervisor.
    let agent = Http::sign_in(&served.http, "ann", "agentpass1");
    assert_eq!(agent.get(&format!("/dashboard/api/kpi?{range}")).0, 403);
    assert_eq!(reqwest::blocking::get(format!("http://{}/dashboard/api/kpi", served.http)).unwrap().status().as_u16(), 401);

    // The dashboard in Chromium.
    let shots = dir.join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let page = node(
        "dashboard.mjs",
        &[
            ("DASHBOARD_URL", format!("http://{}/dashboard", served.http).as_ref()),
            ("NAME", "sue".as_ref()),
            ("PASSWORD", "sue-password".as_ref()),
            ("FROM", FROM.as_ref()),
            ("TO", today.to_string().as_ref()),
            ("NUMBER", "+49 30 300 001".as_ref()),
            ("SHOTS", shots.as_os_str()),
        ],
    );
    keep(&shots.join("dashboard.png"), &format!("dashboard-{backend}.png"));
    keep(&shots.join("dashboard-call.png"), &format!("dashboard-call-{backend}.png"));
    assert!(page.get("error").is_none(), "{page}");
    assert_eq!(page["page_errors"], serde_json::json!([]), "no script errors on the page");
    // Before signing in the page asks who is signed in (401); nothing else fails.
    let failed: Vec<&str> = page["failed"].as_array().unwrap().iter().filter_map(|f| f.as_str()).filter(|f| *f != "401 /agent/api/me").collect();
    assert!(failed.is_empty(), "requests the page made that failed: {failed:?}");
    let card = |label: &str| page["cards"].as_array().unwrap().iter().find(|c| c["label"].as_str().is_some_and(|l| l.starts_with(label))).unwrap_or_else(|| panic!("no card {label}: {page}")).clone();
    assert_eq!(card("calls")["value"], in_period.len().to_string());
    assert!(card("calls")["definition"].as_str().unwrap().contains("started in the period"), "each figure has its definition beside it");
    assert!(card("calls")["trend"].as_str().is_some_and(|t| t.contains("previous period")), "and its trend");
    assert_eq!(card("callbacks")["value"], format!("{callbacks} / 0"));
    assert!(card("abandoned")["value"].as_str().unwrap().starts_with(&format!("{} (", lines("abandon"))));
    assert!(card("CSAT")["value"].as_str().unwrap().ends_with(&format!("of {}", ratings.len())));
    assert_eq!(card("unanswered")["value"], unanswered.to_string());
    let charts = page["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 7, "{charts:?}");
    for chart in charts {
        assert!(chart["drawn"].as_u64().unwrap() > 2000, "the chart {} drew on its canvas: {chart}", chart["id"]);
    }
    let chart = |id: &str| charts.iter().find(|c| c["id"] == id).unwrap().clone();
    let day_sum: u64 = chart("chart-days")["data"].as_array().unwrap().iter().flat_map(|d| d.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(day_sum, in_period.len() as u64, "the calls by day add up to the calls");
    assert_eq!(chart("chart-csat")["data"][0], serde_json::json!(distribution));
    assert!(page["gaps"].as_str().unwrap().to_lowercase().contains("hiring"), "the knowledge gaps: {}", page["gaps"]);
    assert!(page["live"].as_str().unwrap().contains("calls in progress"), "{}", page["live"]);
    assert_eq!(page["rows"].as_array().unwrap().len(), 1, "the call browser finds the caller by number: {}", page["rows"]);
    assert!(page["call_title"].as_str().unwrap().contains("+4930300001"));
    let transcript = page["transcript"].as_array().unwrap();
    assert!(transcript.iter().any(|r| r[1] == "bot") && transcript.iter().any(|r| r[1] == "event" && r[2].as_str().unwrap().starts_with("csat")), "the transcript with its events: {transcript:?}");
    assert!(page["audio"]["duration"].as_f64().unwrap() > 5.0, "the recording plays: {}", page["audio"]);
    let text = page["page_text"].as_str().unwrap().replace(' ', "");
    assert!(!text.contains("4111111111111111"), "no card number on the page");
    let audit = export(&config, "audit");
    let listened = page["rows"][0]["call"].as_str().unwrap();
    assert!(audit.iter().any(|l| l["actor"] == "sue" && l["action"] == "listen" && l["target"] == listened), "the play is in the audit log");
    assert!(audit.iter().any(|l| l["actor"] == "sue" && l["action"] == "export" && l["detail"]["kind"] == "report.kpi"), "the CSV download is in the audit log");
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_on_sqlite_gives_the_same_figures_everywhere() {
    let dir = tempdir("dashboard-sqlite-store");
    batch("sqlite", &format!("sqlite://{}", dir.join("calls.db").display()), 18641, 15800);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_batch_on_postgresql_gives_the_same_figures_everywhere() {
    let pg = ivr_store::testing::Postgres::start("dashboard");
    batch("postgresql", &pg.url(), 18642, 15820);
}
