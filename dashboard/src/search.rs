//! The call browser's search: the calls of a period that match a number, an intent and an outcome,
//! newest first, each with what the list shows. Outcomes are the KPIs' own ([`kpi::facts`]), so a
//! call the browser lists as "transferred" is one the transfer rate counted.

use ivr_insight::kpi::{self, CallFacts};
use ivr_insight::{Dataset, Period};
use serde::Serialize;

/// What the supervisor asked for (every part optional).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Digits anywhere in the caller's number (`+49 30 111` finds `sip:+4930111222@pbx`); a text
    /// without digits is looked for in the caller's address as it is.
    pub number: Option<String>,
    /// A caller turn was understood as this intent.
    pub intent: Option<String>,
    /// contained | transferred | unresolved | not answered
    pub outcome: Option<String>,
}

/// A call in the browser's list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    #[serde(flatten)]
    pub facts: CallFacts,
    /// The intents of its caller turns, in order, each once.
    pub intents: Vec<String>,
    pub turns: usize,
    pub recording: bool,
}

/// The outcomes a call can have, as the filter offers them.
pub const OUTCOMES: &[&str] = &["contained", "transferred", "unresolved", "not answered"];

/// The matching calls of `period`, newest first.
pub fn search(data: &Dataset, period: Period, filter: &Filter) -> Vec<Found> {
    let records: std::collections::HashMap<&str, &ivr_store::CallRecord> = data.calls.iter().map(|c| (c.call.id.as_str(), c)).collect();
    let mut found: Vec<Found> = kpi::facts(data, period)
        .into_iter()
        .filter_map(|facts| {
            let record = records.get(facts.id.as_str())?;
            let mut intents: Vec<String> = Vec::new();
            for i in record.turns.iter().filter(|t| t.speaker == "caller").filter_map(|t| t.intent.as_ref()) {
                if !intents.contains(i) {
                    intents.push(i.clone());
                }
            }
            Some(Found { intents, turns: record.turns.len(), recording: record.call.recording.is_some(), facts })
        })
        .filter(|f| filter.number.as_deref().is_none_or(|n| number_matches(&f.facts.caller, n)))
        .filter(|f| filter.intent.as_deref().is_none_or(|i| f.intents.iter().any(|x| x == i)))
        .filter(|f| filter.outcome.as_deref().is_none_or(|o| f.facts.outcome == o))
        .collect();
    found.reverse();
    found
}

/// Whether the caller's address holds the number asked for.
fn number_matches(caller: &str, asked: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let wanted = digits(asked);
    if wanted.is_empty() {
        let asked = asked.trim().to_lowercase();
        return asked.is_empty() || caller.to_lowercase().contains(&asked);
    }
    digits(ivr_store::caller_key(caller)).contains(&wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ivr_store::{CallRecord, CallSummary, Event, Turn};

    fn call(id: &str, caller: &str, at: &str, intent: Option<&str>, transfer: bool) -> CallRecord {
        let mut events = vec![Event { seq: 0, at_secs: 0.0, kind: "answered".into(), detail: None }];
        if transfer {
            events.push(Event { seq: 1, at_secs: 5.0, kind: "transfer".into(), detail: Some(serde_json::json!({"reason": "caller_request"})) });
        }
        CallRecord {
            call: CallSummary {
                id: id.into(),
                sip_call_id: None,
                caller: caller.into(),
                started_at: at.into(),
                ended_at: None,
                duration_secs: Some(10.0),
                ended_by: Some("caller".into()),
                recording: Some(format!("{id}.wav")),
                server: None,
                media: None,
            },
            turns: vec![Turn { seq: 0, at_secs: 1.0, speaker: "caller".into(), text: "hi there".into(), intent: intent.map(str::to_string), ..Default::default() }],
            events,
            notes: vec![],
        }
    }

    #[test]
    fn finds_by_digits_intent_and_outcome_newest_first() {
        let data = Dataset {
            calls: vec![
                call("a", "sip:+4930111222@pbx", "2026-12-01T08:00:00Z", Some("returns"), false),
                call("b", "sip:+4930999888@pbx", "2026-12-01T09:00:00Z", Some("order_status"), true),
                call("c", "tel:+4930111222", "2026-12-02T07:00:00Z", Some("order_status"), false),
                call("d", "sip:alice@example.org", "2026-12-02T10:00:00Z", None, false),
            ],
            ..Default::default()
        };
        let p = Period { from: "2026-12-01T00:00:00Z".parse().unwrap(), to: "2026-12-03T00:00:00Z".parse().unwrap() };
        let ids = |f: Filter| search(&data, p, &f).into_iter().map(|c| c.facts.id).collect::<Vec<_>>();
        assert_eq!(ids(Filter::default()), ["d", "c", "b", "a"]);
        assert_eq!(ids(Filter { number: Some("+49 30 111 222".into()), ..Default::default() }), ["c", "a"]);
        assert_eq!(ids(Filter { number: Some("Alice".into()), ..Default::default() }), ["d"]);
        assert_eq!(ids(Filter { intent: Some("order_status".into()), ..Default::default() }), ["c", "b"]);
        assert_eq!(ids(Filter { outcome: Some("transferred".into()), ..Default::default() }), ["b"]);
        // The first call from +4930111222 was followed by another within 24 h: not contained.
        assert_eq!(ids(Filter { outcome: Some("contained".into()), ..Default::default() }), ["d", "c"]);
        assert_eq!(ids(Filter { number: Some("111222".into()), outcome: Some("unresolved".into()), ..Default::default() }), ["a"]);
        let first = &search(&data, p, &Filter { number: Some("alice".into()), ..Default::default() })[0];
        assert!(first.recording && first.turns == 1 && first.intents.is_empty());
    }
}
