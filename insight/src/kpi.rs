//! The KPIs, each defined where it is computed and in [`DEFINITIONS`] (what the dashboard shows
//! beside each figure). Where a contact-centre suite already defines a figure we follow it:
//! Asterisk's app_queue for the queue (hold time, talk time, ServicelevelPerf and
//! ServicelevelPerf2) and Amazon Connect's metric definitions for the rest (average queue answer
//! time, contacts abandoned, handle time); where the figure is the bot's own (containment, first
//! response, knowledge gaps) the definition says what counts.

use std::collections::{BTreeMap, HashMap};

use ivr_store::{CallRecord, FollowUp, QueueLogLine};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::{at, ratio, Dataset, Period, Stat, REPEAT_WINDOW};

/// What the reports are computed with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The service level's threshold: a caller answered within this many seconds of entering the
    /// queue counts as served in time (Asterisk's `servicelevel`, 20 s by default as there).
    pub service_level_secs: f64,
    /// Hours and days are counted in the company's time zone (`hours.toml`).
    pub timezone: TimeZone,
}

impl Default for Settings {
    fn default() -> Self {
        Self { service_level_secs: 20.0, timezone: TimeZone::UTC }
    }
}

/// Each figure's key and its definition.
pub const DEFINITIONS: &[(&str, &str)] = &[
    ("calls", "Calls that started in the period, whatever became of them (rejected when the server was full included)."),
    ("handled", "Calls the bot answered (an `answered` event)."),
    (
        "contained",
        "Handled calls the bot resolved: not transferred (no `transfer` event), no callback or voicemail left, ended normally (by the caller or the bot, not by a media timeout or a crash), and no call from the same number within 24 hours after it started (anonymous callers cannot be followed and count as resolved).",
    ),
    ("containment_rate", "contained / handled."),
    ("transferred", "Handled calls the bot handed to people (a `transfer` event), whatever the queue then did with them."),
    ("transfer_rate", "transferred / handled."),
    ("transfer_reasons", "Transferred calls by the reason the bot gave (caller_request, anger, low_confidence, ...)."),
    ("first_response_secs", "Per handled call, from the bot answering to the start of its first words (the greeting): mean, median, 90th percentile."),
    ("voice_to_voice_ms", "Per caller turn that got a reply, from the end of the caller's speech to the first audio of the reply (as measured on the call)."),
    ("handle_secs", "Average handling time: a handled call's duration, from answer to hang-up, the bot's and any agent's part together (Amazon Connect: talk + hold + after-call work)."),
    ("queue.entered", "Callers put in the queue (queue_log ENTERQUEUE)."),
    ("queue.answered", "Callers an agent took (CONNECT)."),
    ("queue.abandoned", "Callers who hung up while waiting or while an agent was offered the call (ABANDON); callers who left with a key (a callback) or whose wait ran out are counted apart."),
    ("queue.asa_secs", "Average speed of answer: the wait of the answered callers from entering the queue to CONNECT (app_queue's holdtime; Amazon Connect's average queue answer time)."),
    ("queue.service_level", "SL: answered within the threshold / answered (app_queue's ServicelevelPerf)."),
    ("queue.service_level_2", "SL2: (answered within the threshold + abandoned within the threshold) / (answered + abandoned) (app_queue's ServicelevelPerf2: a caller who gave up quickly does not count against the queue)."),
    ("queue.abandonment_rate", "abandoned / entered."),
    ("queue.talk_secs", "Per completed agent call, the time the caller and the agent talked (COMPLETEAGENT/COMPLETECALLER talktime)."),
    ("follow_ups", "Callbacks asked for and voicemails left in the period, and how many of them agents have marked done."),
    ("intents", "Caller turns by the intent the classifier found with enough confidence, with the mean confidence; turns below the threshold are counted as unanswered."),
    ("unanswered_turns", "Caller turns the bot had no answer for (the classifier's confidence below the threshold, or a transfer for low confidence or repeated misunderstanding): the knowledge gaps."),
    ("csat", "Ratings callers keyed (1-5) at the end of an agent call: count, mean, distribution, and CSAT = ratings of 4 or 5 / ratings."),
    ("sentiment", "Handled calls by the caller's worst mood in the call (neutral, frustrated, angry; from the words)."),
    ("by_hour", "Calls, handled, contained and transferred by the hour the call started, in the company's time zone."),
    ("by_day", "The same by day."),
];

/// What became of one call, as the KPIs count it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallFacts {
    pub id: String,
    pub caller: String,
    pub started_at: String,
    pub handled: bool,
    pub contained: bool,
    pub transfer_reason: Option<String>,
    /// The queue it entered (its topic: orders, billing, ...; `general` when it needed none).
    pub queue: Option<String>,
    pub follow_up: Option<String>,
    /// Another call from the same number within 24 h of this one's start.
    pub called_again: bool,
    pub first_response_secs: Option<f64>,
    pub duration_secs: Option<f64>,
    pub csat: Option<u8>,
    pub sentiment: Option<String>,
    /// contained | transferred | unresolved | not answered
    pub outcome: &'static str,
}

/// The facts of every call in `data` that started in `period`, oldest first.
pub fn facts(data: &Dataset, period: Period) -> Vec<CallFacts> {
    let mut starts: HashMap<&str, Vec<Timestamp>> = HashMap::new();
    for c in &data.calls {
        if let Some(t) = at(&c.call.started_at) {
            starts.entry(ivr_store::caller_key(&c.call.caller)).or_default().push(t);
        }
    }
    let follow_ups: HashMap<&str, &FollowUp> = data.follow_ups.iter().filter_map(|f| Some((f.call_id.as_deref()?, f))).collect();
    let queues: HashMap<&str, String> = data
        .queue
        .iter()
        .filter(|l| l.event == "enter")
        .filter_map(|l| Some((l.call_id.as_deref()?, queue_name(l))))
        .collect();
    let mut out: Vec<CallFacts> = data
        .calls
        .iter()
        .filter_map(|c| {
            let started = at(&c.call.started_at)?;
            period.contains(started).then(|| call_facts(c, started, &starts, follow_ups.get(c.call.id.as_str()).copied(), queues.get(c.call.id.as_str())))
        })
        .collect();
    out.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    out
}

fn queue_name(l: &QueueLogLine) -> String {
    l.detail.as_ref().and_then(|d| d["queue"].as_str()).unwrap_or("general").to_string()
}

fn call_facts(c: &CallRecord, started: Timestamp, starts: &HashMap<&str, Vec<Timestamp>>, follow_up: Option<&FollowUp>, queue: Option<&String>) -> CallFacts {
    let event = |kind: &str| c.events.iter().find(|e| e.kind == kind);
    let answered = event("answered");
    let transfer_reason = event("transfer").map(|e| e.detail.as_ref().and_then(|d| d["reason"].as_str()).unwrap_or("unknown").to_string());
    let follow_up = follow_up.map(|f| f.kind.clone()).or_else(|| ["callback", "voicemail"].into_iter().find(|k| event(k).is_some()).map(str::to_string));
    let called_again = ivr_store::identifies_caller(&c.call.caller)
        && starts.get(ivr_store::caller_key(&c.call.caller)).is_some_and(|ts| ts.iter().any(|t| *t > started && t.duration_since(started) <= REPEAT_WINDOW));
    let ended_normally = matches!(c.call.ended_by.as_deref(), Some("caller" | "bot"));
    let handled = answered.is_some();
    let contained = handled && transfer_reason.is_none() && follow_up.is_none() && ended_normally && !called_again;
    let first_response_secs = answered.and_then(|a| c.turns.iter().find(|t| t.speaker == "bot").map(|t| (t.at_secs - a.at_secs).max(0.0)));
    let csat = event("csat").and_then(|e| e.detail.as_ref()?["rating"].as_u64()).and_then(|r| u8::try_from(r).ok()).filter(|r| (1..=5).contains(r));
    let sentiment = c.turns.iter().filter(|t| t.speaker == "caller").filter_map(|t| t.sentiment.as_deref()).max_by_key(|s| mood_rank(s)).map(str::to_string);
    let outcome = match (handled, contained, &transfer_reason) {
        (false, _, _) => "not answered",
        (true, true, _) => "contained",
        (true, false, Some(_)) => "transferred",
        (true, false, None) => "unresolved",
    };
    CallFacts {
        id: c.call.id.clone(),
        caller: c.call.caller.clone(),
        started_at: c.call.started_at.clone(),
        handled,
        contained,
        transfer_reason,
        queue: queue.cloned(),
        follow_up,
        called_again,
        first_response_secs,
        duration_secs: c.call.duration_secs,
        csat,
        sentiment: handled.then(|| sentiment.unwrap_or_else(|| "neutral".into())),
        outcome,
    }
}

fn mood_rank(s: &str) -> u8 {
    match s {
        "angry" => 2,
        "frustrated" => 1,
        _ => 0,
    }
}

/// The queue's figures (one queue, or all together).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueKpis {
    pub entered: usize,
    pub answered: usize,
    pub abandoned: usize,
    pub exited_with_key: usize,
    pub exited_with_timeout: usize,
    /// Callers who could not join: closed, or no agent signed in.
    pub closed: usize,
    pub asa_secs: Stat,
    pub answered_within: usize,
    pub abandoned_within: usize,
    pub service_level: Option<f64>,
    pub service_level_2: Option<f64>,
    pub abandonment_rate: Option<f64>,
    pub talk_secs: Stat,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FollowUps {
    pub callbacks: usize,
    pub voicemails: usize,
    pub done: usize,
    pub open: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentCount {
    pub intent: String,
    pub turns: usize,
    pub mean_confidence: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Csat {
    pub ratings: usize,
    pub mean: Option<f64>,
    /// Ratings of 1, 2, 3, 4 and 5.
    pub distribution: [usize; 5],
    /// Share of ratings of 4 or 5.
    pub csat: Option<f64>,
}

/// Counts for one hour of the day or one day.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Bucket {
    pub key: String,
    pub calls: usize,
    pub handled: usize,
    pub contained: usize,
    pub transferred: usize,
}

/// Every KPI over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kpis {
    pub period: Period,
    pub service_level_secs: f64,
    pub calls: usize,
    pub handled: usize,
    pub contained: usize,
    pub containment_rate: Option<f64>,
    pub transferred: usize,
    pub transfer_rate: Option<f64>,
    pub transfer_reasons: BTreeMap<String, usize>,
    pub first_response_secs: Stat,
    pub voice_to_voice_ms: Stat,
    pub handle_secs: Stat,
    pub queue: QueueKpis,
    pub queues: BTreeMap<String, QueueKpis>,
    pub follow_ups: FollowUps,
    pub intents: Vec<IntentCount>,
    pub understood_turns: usize,
    pub unanswered_turns: usize,
    pub csat: Csat,
    pub sentiment: BTreeMap<String, usize>,
    pub by_hour: Vec<Bucket>,
    pub by_day: Vec<Bucket>,
}

/// The KPIs of the calls that started in `period`.
pub fn compute(data: &Dataset, period: Period, settings: &Settings) -> Kpis {
    let facts = facts(data, period);
    let in_period: std::collections::HashSet<&str> = facts.iter().map(|f| f.id.as_str()).collect();
    let handled: Vec<&CallFacts> = facts.iter().filter(|f| f.handled).collect();
    let contained = handled.iter().filter(|f| f.contained).count();
    let transferred = handled.iter().filter(|f| f.transfer_reason.is_some()).count();
    let mut transfer_reasons = BTreeMap::new();
    for r in handled.iter().filter_map(|f| f.transfer_reason.as_ref()) {
        *transfer_reasons.entry(r.clone()).or_insert(0) += 1;
    }
    let calls: Vec<&CallRecord> = data.calls.iter().filter(|c| in_period.contains(c.call.id.as_str())).collect();
    let caller_turns = || calls.iter().flat_map(|c| c.turns.iter()).filter(|t| t.speaker == "caller");

    // The queue, over the log lines of this period's calls; each queue by the name its callers
    // entered with.
    let queue_of: HashMap<&str, &str> = facts.iter().filter_map(|f| Some((f.id.as_str(), f.queue.as_deref()?))).collect();
    let lines: Vec<&QueueLogLine> = data.queue.iter().filter(|l| l.call_id.as_deref().is_some_and(|c| in_period.contains(c))).collect();
    let queue = queue_kpis(&lines, settings.service_level_secs);
    let mut names: Vec<&str> = queue_of.values().copied().collect();
    names.sort();
    names.dedup();
    let queues = names
        .into_iter()
        .map(|name| {
            let own: Vec<&QueueLogLine> = lines.iter().copied().filter(|l| l.call_id.as_deref().and_then(|c| queue_of.get(c)) == Some(&name)).collect();
            (name.to_string(), queue_kpis(&own, settings.service_level_secs))
        })
        .collect();

    let mut intents: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let (mut understood_turns, mut unanswered_turns) = (0, 0);
    for t in caller_turns() {
        if t.unanswered == Some(true) {
            unanswered_turns += 1;
        } else if let (Some(i), Some(c)) = (&t.intent, t.confidence) {
            understood_turns += 1;
            let e = intents.entry(i.clone()).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += c;
        }
    }
    let mut intents: Vec<IntentCount> = intents.into_iter().map(|(intent, (turns, sum))| IntentCount { intent, turns, mean_confidence: sum / turns as f64 }).collect();
    intents.sort_by(|a, b| b.turns.cmp(&a.turns).then_with(|| a.intent.cmp(&b.intent)));

    let mut csat = Csat::default();
    let ratings: Vec<u8> = handled.iter().filter_map(|f| f.csat).collect();
    for r in &ratings {
        csat.distribution[usize::from(*r) - 1] += 1;
    }
    csat.ratings = ratings.len();
    csat.mean = Stat::of(ratings.iter().map(|r| f64::from(*r)).collect()).mean;
    csat.csat = ratio(ratings.iter().filter(|r| **r >= 4).count(), ratings.len());

    let mut sentiment = BTreeMap::new();
    for s in handled.iter().filter_map(|f| f.sentiment.as_ref()) {
        *sentiment.entry(s.clone()).or_insert(0) += 1;
    }

    let mut follow_ups = FollowUps::default();
    for f in &data.follow_ups {
        match f.kind.as_str() {
            "callback" => follow_ups.callbacks += 1,
            "voicemail" => follow_ups.voicemails += 1,
            _ => {}
        }
        if f.status == "done" {
            follow_ups.done += 1;
        } else {
            follow_ups.open += 1;
        }
    }

    let local = |f: &CallFacts| at(&f.started_at).map(|t| t.to_zoned(settings.timezone.clone()));
    let by_hour = buckets(&facts, |f| local(f).map(|z| format!("{:02}", z.hour())));
    let by_day = buckets(&facts, |f| local(f).map(|z| z.date().to_string()));

    Kpis {
        period,
        service_level_secs: settings.service_level_secs,
        calls: facts.len(),
        handled: handled.len(),
        contained,
        containment_rate: ratio(contained, handled.len()),
        transferred,
        transfer_rate: ratio(transferred, handled.len()),
        transfer_reasons,
        first_response_secs: Stat::of(handled.iter().filter_map(|f| f.first_response_secs).collect()),
        voice_to_voice_ms: Stat::of(caller_turns().filter_map(|t| t.stages.voice_to_voice_ms).collect()),
        handle_secs: Stat::of(handled.iter().filter_map(|f| f.duration_secs).collect()),
        queue,
        queues,
        follow_ups,
        intents,
        understood_turns,
        unanswered_turns,
        csat,
        sentiment,
        by_hour,
        by_day,
    }
}

fn secs(l: &QueueLogLine, field: &str) -> Option<f64> {
    l.detail.as_ref()?[field].as_f64()
}

fn queue_kpis(lines: &[&QueueLogLine], threshold: f64) -> QueueKpis {
    let count = |event: &str| lines.iter().filter(|l| l.event == event).count();
    let holds: Vec<f64> = lines.iter().filter(|l| l.event == "connect").filter_map(|l| secs(l, "hold_secs")).collect();
    let abandon_waits: Vec<f64> = lines.iter().filter(|l| l.event == "abandon").filter_map(|l| secs(l, "wait_secs")).collect();
    let (entered, answered, abandoned) = (count("enter"), count("connect"), count("abandon"));
    let answered_within = holds.iter().filter(|h| **h <= threshold).count();
    let abandoned_within = abandon_waits.iter().filter(|w| **w <= threshold).count();
    QueueKpis {
        entered,
        answered,
        abandoned,
        exited_with_key: count("exit_with_key"),
        exited_with_timeout: count("exit_with_timeout"),
        closed: count("closed"),
        asa_secs: Stat::of(holds),
        answered_within,
        abandoned_within,
        service_level: ratio(answered_within, answered),
        service_level_2: ratio(answered_within + abandoned_within, answered + abandoned),
        abandonment_rate: ratio(abandoned, entered),
        talk_secs: Stat::of(lines.iter().filter(|l| l.event == "complete" || l.event == "transfer").filter_map(|l| secs(l, "talk_secs")).collect()),
    }
}

fn buckets(facts: &[CallFacts], key: impl Fn(&CallFacts) -> Option<String>) -> Vec<Bucket> {
    let mut out: BTreeMap<String, Bucket> = BTreeMap::new();
    for f in facts {
        let Some(k) = key(f) else { continue };
        let b = out.entry(k.clone()).or_insert_with(|| Bucket { key: k, ..Default::default() });
        b.calls += 1;
        b.handled += usize::from(f.handled);
        b.contained += usize::from(f.contained);
        b.transferred += usize::from(f.transfer_reason.is_some());
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_store::{CallSummary, Event, Turn};

    fn call(id: &str, caller: &str, started: &str, ended_by: &str, events: &[(&str, f64, serde_json::Value)], turns: &[(&str, f64)]) -> CallRecord {
        CallRecord {
            call: CallSummary {
                id: id.into(),
                sip_call_id: None,
                caller: caller.into(),
                started_at: started.into(),
                ended_at: None,
                duration_secs: Some(60.0),
                ended_by: Some(ended_by.into()),
                recording: None,
                server: None,
                media: None,
            },
            turns: turns.iter().enumerate().map(|(i, (who, at))| Turn { seq: i as i64, at_secs: *at, speaker: who.to_string(), ..Default::default() }).collect(),
            events: events.iter().enumerate().map(|(i, (k, at, d))| Event { seq: i as i64, at_secs: *at, kind: k.to_string(), detail: (!d.is_null()).then(|| d.clone()) }).collect(),
            notes: vec![],
        }
    }

    fn line(call: &str, event: &str, detail: serde_json::Value) -> QueueLogLine {
        QueueLogLine { at: "2026-12-01T10:00:00Z".into(), server: "s".into(), call_id: Some(call.into()), agent: None, event: event.into(), detail: Some(detail) }
    }

    fn day() -> Period {
        Period { from: "2026-12-01T00:00:00Z".parse().unwrap(), to: "2026-12-02T00:00:00Z".parse().unwrap() }
    }

    #[test]
    fn containment_excludes_transfers_follow_ups_bad_ends_and_callers_who_call_again() {
        let answered = ("answered", 0.5, serde_json::Value::Null);
        let data = Dataset {
            calls: vec![
                call("a", "+491", "2026-12-01T09:00:00Z", "caller", &[answered.clone()], &[("bot", 0.9)]),
                call("b", "+492", "2026-12-01T09:10:00Z", "bot", &[answered.clone(), ("transfer", 9.0, serde_json::json!({"reason": "anger"}))], &[]),
                call("c", "+493", "2026-12-01T09:20:00Z", "rtp timeout", &[answered.clone()], &[]),
                // Calls again the next morning, within 24 h (that call is outside the period).
                call("d", "+494", "2026-12-01T23:00:00Z", "caller", &[answered.clone()], &[]),
                call("d2", "+494", "2026-12-02T08:00:00Z", "caller", &[answered.clone()], &[]),
                call("e", "anonymous", "2026-12-01T10:00:00Z", "caller", &[answered.clone()], &[]),
                call("f", "anonymous", "2026-12-01T10:05:00Z", "caller", &[answered.clone()], &[]),
                call("g", "+497", "2026-12-01T11:00:00Z", "rejected", &[], &[]),
            ],
            queue: vec![],
            follow_ups: vec![],
        };
        let k = compute(&data, day(), &Settings::default());
        assert_eq!((k.calls, k.handled, k.contained, k.transferred), (7, 6, 3, 1));
        assert_eq!(k.transfer_reasons.get("anger"), Some(&1));
        assert_eq!(k.containment_rate, Some(0.5));
        assert_eq!(k.first_response_secs.mean, Some(0.4));
        let outcomes: Vec<_> = facts(&data, day()).iter().map(|f| (f.id.clone(), f.outcome)).collect();
        assert!(outcomes.contains(&("d".into(), "unresolved")) && outcomes.contains(&("g".into(), "not answered")));
    }

    #[test]
    fn service_levels_follow_app_queue() {
        let mut calls = vec![];
        let mut queue = vec![];
        for (i, (event, secs)) in [("connect", 5.0), ("connect", 30.0), ("abandon", 10.0), ("abandon", 40.0)].into_iter().enumerate() {
            let id = format!("q{i}");
            calls.push(call(&id, &format!("+49{i}"), "2026-12-01T12:00:00Z", "caller", &[("answered", 0.0, serde_json::Value::Null)], &[]));
            queue.push(line(&id, "enter", serde_json::json!({"queue": if i < 2 { "orders" } else { "billing" }})));
            let field = if event == "connect" { "hold_secs" } else { "wait_secs" };
            queue.push(line(&id, event, serde_json::json!({ field: secs })));
        }
        let k = compute(&Dataset { calls, queue, follow_ups: vec![] }, day(), &Settings::default());
        let q = &k.queue;
        assert_eq!((q.entered, q.answered, q.abandoned), (4, 2, 2));
        assert_eq!(q.asa_secs.mean, Some(17.5));
        assert_eq!(q.service_level, Some(0.5));
        assert_eq!(q.service_level_2, Some(0.5));
        assert_eq!(q.abandonment_rate, Some(0.5));
        assert_eq!(k.queues["orders"].service_level, Some(0.5));
        assert_eq!(k.queues["billing"].service_level_2, Some(0.5));
        assert_eq!(k.queues["billing"].answered, 0);
    }
}
