//! The store on both back ends: SQLite (a file, WAL) and a real PostgreSQL server that this test
//! starts itself from Debian's binaries (as the unprivileged user `nobody`, in a temporary
//! directory, reachable only through a unix socket there) and stops again, also on failure.

use std::path::PathBuf;

use ivr_store::testing::Postgres;
use ivr_store::{AgentError, AuditLine, CallEnd, Event, FollowUp, NewAgent, NewCall, Note, PhoneSecret, QueueEntry, QueueLogLine, Stages, Store, Turn, Understanding};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ivr-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn call(id: &str, server: &str, started_at: &str) -> NewCall {
    NewCall { id: id.into(), sip_call_id: Some(format!("{id}@pbx")), caller: "sip:+4930111222@pbx".into(), started_at: started_at.into(), server: server.into(), recording: None }
}

/// The same script on either back end: calls, turns written one by one, stages and understanding
/// filled in later, events, an end, an interrupted call, paging and a full export.
async fn exercise(store: &Store) {
    store.start_call(&call("c1", "a", "2026-12-02T10:00:00Z")).await.unwrap();
    store.start_call(&call("c2", "a", "2026-12-02T10:01:00Z")).await.unwrap();
    store.start_call(&call("c3", "b", "2026-12-02T10:02:00Z")).await.unwrap();
    let greeting = Turn { seq: 0, at_secs: 0.02, speaker: "bot".into(), text: "Hello!".into(), ..Default::default() };
    let question = Turn { seq: 1, at_secs: 6.5, speaker: "caller".into(), text: "How long does delivery take? It's \"urgent\", really.".into(), ..Default::default() };
    store.add_turn("c1", &greeting).await.unwrap();
    store.add_turn("c1", &question).await.unwrap();
    let stages = Stages { endpoint_ms: Some(420.0), stt_ms: Some(0.0), understand_ms: Some(31.5), voice_to_voice_ms: Some(612.0), ..Default::default() };
    store.set_stages("c1", 1, &stages).await.unwrap();
    let understanding = Understanding {
        intent: Some("delivery_time".into()),
        confidence: Some(0.87),
        language: Some("en".into()),
        sentiment: Some("frustrated".into()),
        unanswered: Some(false),
    };
    store.set_understanding("c1", 1, &understanding).await.unwrap();
    store.add_event("c1", &Event { seq: 0, at_secs: 0.0, kind: "answered".into(), detail: None }).await.unwrap();
    store.add_event("c1", &Event { seq: 1, at_secs: 9.1, kind: "transfer".into(), detail: Some(serde_json::json!({"reason": "caller_request"})) }).await.unwrap();
    store.end_call("c1", &CallEnd { ended_at: "2026-12-02T10:00:20Z".into(), duration_secs: 20.0, ended_by: "bot".into(), media: Some(serde_json::json!({"packets_in": 900})) }).await.unwrap();

    // A turn seq written twice is refused (the key), not duplicated.
    assert!(store.add_turn("c1", &greeting).await.is_err());

    let c1 = store.call("c1").await.unwrap().expect("c1");
    assert_eq!(c1.call.ended_by.as_deref(), Some("bot"));
    assert_eq!(c1.call.media, Some(serde_json::json!({"packets_in": 900})));
    assert_eq!(c1.turns.len(), 2);
    assert_eq!(c1.turns[1].text, question.text);
    assert_eq!(c1.turns[1].stages, stages);
    assert_eq!((c1.turns[1].intent.as_deref(), c1.turns[1].confidence), (Some("delivery_time"), Some(0.87)));
    assert_eq!((c1.turns[1].sentiment.as_deref(), c1.turns[1].unanswered), (Some("frustrated"), Some(false)));
    assert_eq!((c1.turns[0].sentiment.as_deref(), c1.turns[0].unanswered), (None, None));

    assert_eq!(c1.events[1].detail, Some(serde_json::json!({"reason": "caller_request"})));
    assert!(store.call("nope").await.unwrap().is_none());

    // Notes people write: kept with the call, in order; none for a call that is not there.
    let note = |at: &str, text: &str| Note { written_at: at.into(), author: "qa \"lead\"".into(), text: text.into() };
    assert!(store.add_note("c1", &note("2026-12-02T11:00:00Z", "Answered well; it's fine.")).await.unwrap());
    assert!(store.add_note("c1", &note("2026-12-02T11:05:00Z", "Call back tomorrow.")).await.unwrap());
    assert!(!store.add_note("nope", &note("2026-12-02T11:00:00Z", "lost")).await.unwrap());
    let notes = store.call("c1").await.unwrap().expect("c1").notes;
    assert_eq!(notes.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(), ["Answered well; it's fine.", "Call back tomorrow."]);
    assert_eq!(notes[0].author, "qa \"lead\"");

    // Server "a" restarts: its unfinished call c2 is interrupted; b's c3 is not touched.
    assert_eq!(store.mark_interrupted("a", "2026-12-02T10:05:00Z").await.unwrap(), 1);
    assert_eq!(store.call("c2").await.unwrap().unwrap().call.ended_by.as_deref(), Some("interrupted"));
    assert_eq!(store.call("c3").await.unwrap().unwrap().call.ended_by, None);

    let page = store.calls(2, None).await.unwrap();
    assert_eq!(page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c3", "c2"]);
    let next = store.calls(2, Some(&page[1].started_at)).await.unwrap();
    assert_eq!(next.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1"]);
    assert_eq!(store.all_calls().await.unwrap().len(), 3);
    assert_eq!(store.count_turns("caller").await.unwrap(), 1);
}

/// After [`exercise`]: masking on the way in, the reports' read by period, the audit log.
async fn privacy_and_reports(store: &Store) {
    // What a caller reads out or keys as a secret never reaches the database: the words are
    // masked on the way in (turns, event details, notes, voicemail transcripts).
    let card = Turn { seq: 2, at_secs: 12.0, speaker: "caller".into(), text: "my card is 4111 1111 1111 1111 and my PIN is 4321".into(), ..Default::default() };
    store.add_turn("c3", &card).await.unwrap();
    let summary = serde_json::json!({"summary": {"screen": "Caller read card 4111-1111-1111-1111."}});
    store.add_event("c3", &Event { seq: 0, at_secs: 12.5, kind: "action".into(), detail: Some(summary) }).await.unwrap();
    let c3 = store.call("c3").await.unwrap().expect("c3");
    assert_eq!(c3.turns[0].text, "my card is [card number ending 1111] and my PIN is [PIN]");
    let stored = serde_json::to_string(&c3).unwrap();
    assert!(!ivr_privacy::holds_digits(&stored, "4111111111111111") && !stored.contains("4321"), "{stored}");

    // The reports' read: calls that started in a period, with their turns and events, in three
    // queries; the bounds are exact although the stored times' fractions vary in length.
    store.start_call(&call("c4", "b", "2026-12-02T10:03:00.5Z")).await.unwrap();
    let between = store.calls_between("2026-12-02T10:00:00Z", "2026-12-02T10:03:00.5Z").await.unwrap();
    assert_eq!(between.iter().map(|c| c.call.id.as_str()).collect::<Vec<_>>(), ["c1", "c2", "c3"]);
    assert_eq!((between[0].turns.len(), between[0].events.len(), between[2].turns.len()), (2, 2, 1));
    let late = store.calls_between("2026-12-02T10:03:00.4Z", "2026-12-03T00:00:00Z").await.unwrap();
    assert_eq!(late.iter().map(|c| c.call.id.as_str()).collect::<Vec<_>>(), ["c4"]);
    // And the queue's lines of those calls only.
    for id in ["c1", "c4"] {
        let line = QueueLogLine { at: "2026-12-02T10:05:00Z".into(), server: "a".into(), call_id: Some(id.into()), agent: None, event: "enter".into(), detail: None };
        store.log_queue_event(&line).await.unwrap();
    }
    let lines = store.queue_events_of_calls_between("2026-12-02T10:03:00.4Z", "2026-12-03T00:00:00Z").await.unwrap();
    assert_eq!(lines.iter().map(|l| l.call_id.as_deref().unwrap()).collect::<Vec<_>>(), ["c4"]);

    // The audit log: added to, read newest first.
    for (at, action) in [("2026-12-02T11:00:00Z", "sign_in"), ("2026-12-02T11:01:00Z", "listen")] {
        let line = AuditLine { at: at.into(), actor: "sue".into(), action: action.into(), target: Some("c1".into()), detail: None };
        store.audit(&line).await.unwrap();
    }
    let audit = store.audit_log(10).await.unwrap();
    assert_eq!(audit.iter().map(|l| l.action.as_str()).collect::<Vec<_>>(), ["listen", "sign_in"]);

    // Retention: a call from January loses its words and its recording; December's keep theirs,
    // and the old call's timings and understanding stay for the reports.
    let old = NewCall { recording: Some("/records/old.wav".into()), ..call("c0", "a", "2026-01-05T09:00:00Z") };
    store.start_call(&old).await.unwrap();
    let said = Turn { seq: 0, at_secs: 3.0, speaker: "caller".into(), text: "Where is my order?".into(), intent: Some("order_status".into()), ..Default::default() };
    store.add_turn("c0", &said).await.unwrap();
    store.add_event("c0", &Event { seq: 0, at_secs: 4.0, kind: "action".into(), detail: Some(serde_json::json!({"summary": "Where is my order?"})) }).await.unwrap();
    assert_eq!(store.purge_transcripts("2026-06-01T00:00:00Z").await.unwrap(), 1);
    assert_eq!(store.purge_transcripts("2026-06-01T00:00:00Z").await.unwrap(), 0, "a second purge finds nothing left");
    assert_eq!(store.purge_audio("2026-06-01T00:00:00Z").await.unwrap(), ["/records/old.wav"]);
    let c0 = store.call("c0").await.unwrap().unwrap();
    assert_eq!((c0.turns[0].text.as_str(), c0.turns[0].intent.as_deref(), c0.call.recording.as_deref()), (ivr_store::PURGED, Some("order_status"), None));
    assert_eq!(c0.events[0].detail, None);

    // A caller is their number, whichever host their call came through (c1-c4 are from
    // sip:+4930111222@pbx); a bare number and a look-alike with LIKE's wildcards are told apart.
    assert_eq!(ivr_store::caller_key("sip:+4930111222@10.0.0.2;user=phone"), "+4930111222");
    store.start_call(&NewCall { caller: "+4930111222".into(), ..call("c6", "a", "2026-12-02T10:30:00Z") }).await.unwrap();
    store.start_call(&NewCall { caller: "sip:+49301112_2@pbx".into(), ..call("c7", "a", "2026-12-02T10:31:00Z") }).await.unwrap();
    let week = ("2026-11-26T00:00:00Z", "2026-12-03T00:00:00Z");
    assert_eq!(store.caller_history("sip:+4930111222@elsewhere", week.0, week.1).await.unwrap().calls, 5);
    assert_eq!(store.caller_history("+49301112_2", week.0, week.1).await.unwrap().calls, 1);
    // The order their latest call was about: c2 (10:01) looked up 41234567, then c6 (10:30)
    // another; a call without a lookup after them does not hide it.
    store.add_event("c2", &Event { seq: 9, at_secs: 9.0, kind: "matter".into(), detail: Some(serde_json::json!({"order": "41234567"})) }).await.unwrap();
    let h = store.caller_history("+4930111222", week.0, week.1).await.unwrap();
    assert_eq!((h.calls, h.last_order.as_deref()), (5, Some("41234567")));
    store.add_event("c6", &Event { seq: 0, at_secs: 5.0, kind: "matter".into(), detail: Some(serde_json::json!({"order": "41234568"})) }).await.unwrap();
    assert_eq!(store.caller_history("tel:+4930111222", week.0, week.1).await.unwrap().last_order.as_deref(), Some("41234568"));
    assert_eq!(store.caller_history("+49301112_2", week.0, week.1).await.unwrap().last_order, None, "another number's lookups are not theirs");
    assert_eq!(store.call("c1").await.unwrap().unwrap().turns[1].text, "How long does delivery take? It's \"urgent\", really.");
}

/// Agents (argon2 passwords, skills, extensions), the queue's log and entries, follow-ups.
async fn agents_and_queue(store: &Store) {
    let phone = PhoneSecret { realm: "ivr".into(), ha1_md5: "a".repeat(32), ha1_sha256: "b".repeat(64) };
    let ann = NewAgent {
        name: "ann".into(),
        display_name: "Ann Example".into(),
        role: "agent".into(),
        skills: vec!["EN, orders".into(), "billing".into(), "en".into()],
        extension: Some("2001".into()),
        password: "correct horse".into(),
        phone: Some(phone.clone()),
        created_at: "2026-12-02T10:00:00Z".into(),
    };
    store.add_agent(&ann).await.unwrap().unwrap();
    assert_eq!(store.add_agent(&ann).await.unwrap(), Err(AgentError::Exists("ann".into())));
    let bob = NewAgent { name: "bob".into(), extension: Some("2001".into()), phone: None, ..ann.clone() };
    assert_eq!(store.add_agent(&bob).await.unwrap(), Err(AgentError::ExtensionTaken("2001".into())));
    let short = NewAgent { name: "cy".into(), extension: None, password: "short".into(), ..ann.clone() };
    assert_eq!(store.add_agent(&short).await.unwrap(), Err(AgentError::ShortPassword));
    let bad = NewAgent { name: "a b".into(), extension: None, ..ann.clone() };
    assert_eq!(store.add_agent(&bad).await.unwrap(), Err(AgentError::BadName("a b".into())));
    store.add_agent(&NewAgent { name: "bob".into(), extension: None, phone: None, role: "supervisor".into(), ..ann.clone() }).await.unwrap().unwrap();

    let got = store.agent("ann").await.unwrap().unwrap();
    assert_eq!(got.skills, ["billing", "en", "orders"]);
    assert_eq!((got.extension.as_deref(), got.phone.as_ref(), got.status.as_str()), (Some("2001"), Some(&phone), "signed_out"));
    assert_eq!(store.agent_by_extension("2001").await.unwrap().unwrap().name, "ann");
    assert_eq!(store.agents().await.unwrap().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["ann", "bob"]);
    // The password is stored as an argon2id hash, and only the right one is accepted.
    assert!(store.check_password("ann", "correct horse").await.unwrap().is_some());
    assert!(store.check_password("ann", "wrong horse").await.unwrap().is_none());
    assert!(store.check_password("nobody", "correct horse").await.unwrap().is_none());
    assert_eq!(store.set_password("ann", "battery staple", None).await.unwrap(), Ok(true));
    assert!(store.check_password("ann", "correct horse").await.unwrap().is_none());
    assert!(store.check_password("ann", "battery staple").await.unwrap().is_some());
    assert!(store.agent("ann").await.unwrap().unwrap().phone.is_none());
    assert_eq!(store.set_password("nobody", "battery staple", None).await.unwrap(), Ok(false));
    assert!(store.set_agent_status("ann", "available").await.unwrap());
    assert_eq!(store.agent("ann").await.unwrap().unwrap().status, "available");
    assert!(store.remove_agent("bob").await.unwrap());
    assert!(!store.remove_agent("bob").await.unwrap());

    // The queue: two callers waiting when the server "dies"; a restart logs them abandoned.
    for (i, id) in ["q1", "q2"].iter().enumerate() {
        let e = QueueEntry { call_id: id.to_string(), server: "s1".into(), entered_at: format!("2026-12-02T10:00:0{i}Z"), priority: 0, entry_position: i as i64 + 1 };
        store.queue_enter(&e).await.unwrap();
        let line = QueueLogLine { at: e.entered_at.clone(), server: "s1".into(), call_id: Some(id.to_string()), agent: None, event: "entered".into(), detail: Some(serde_json::json!({"position": i + 1})) };
        store.log_queue_event(&line).await.unwrap();
    }
    store.queue_enter(&QueueEntry { call_id: "other".into(), server: "s2".into(), entered_at: "2026-12-02T10:00:00Z".into(), priority: 1, entry_position: 1 }).await.unwrap();
    let orphans = store.abandon_orphans("s1", "2026-12-02T10:00:30Z").await.unwrap();
    assert_eq!(orphans.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(), ["q1", "q2"]);
    assert!(store.abandon_orphans("s1", "2026-12-02T10:00:40Z").await.unwrap().is_empty(), "once only");
    let log = store.queue_events(Some("q2")).await.unwrap();
    assert_eq!(log.iter().map(|l| l.event.as_str()).collect::<Vec<_>>(), ["entered", "abandon"]);
    assert_eq!(log[1].detail.as_ref().unwrap()["wait_secs"], 29.0);
    assert_eq!(store.queue_events(None).await.unwrap().len(), 4);

    // Follow-ups: open first, an agent marks one done (once).
    let cb = |id: &str, at: &str| FollowUp { id: id.into(), kind: "callback".into(), number: "+4930123".into(), created_at: at.into(), reason: "queue_key".into(), status: "open".into(), ..Default::default() };
    store.add_follow_up(&cb("f1", "2026-12-02T10:01:00Z")).await.unwrap();
    store.add_follow_up(&cb("f2", "2026-12-02T10:02:00Z")).await.unwrap();
    let vm = FollowUp { kind: "voicemail".into(), audio: Some("/tmp/vm.wav".into()), reason: "after_hours".into(), ..cb("f3", "2026-12-02T10:03:00Z") };
    store.add_follow_up(&vm).await.unwrap();
    assert!(store.set_follow_up_text("f3", "please call me back about order 41234567", "Callback about order 41234567").await.unwrap());
    assert!(store.finish_follow_up("f1", "ann", "2026-12-02T10:05:00Z").await.unwrap());
    assert!(!store.finish_follow_up("f1", "ann", "2026-12-02T10:06:00Z").await.unwrap());
    let list = store.follow_ups().await.unwrap();
    assert_eq!(list.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["f2", "f3", "f1"]);
    assert_eq!(list[1].transcript.as_deref(), Some("please call me back about order 41234567"));
    assert_eq!((list[2].status.as_str(), list[2].done_by.as_deref()), ("done", Some("ann")));
}

#[tokio::test]
async fn sqlite_keeps_calls_turns_and_events() {
    let dir = tempdir("sqlite");
    let url = format!("sqlite://{}", dir.join("sub/calls.db").display());
    let store = Store::open(&url).await.unwrap();
    exercise(&store).await;
    agents_and_queue(&store).await;
    privacy_and_reports(&store).await;
    // WAL mode: while the store is open, writes go to the write-ahead log beside the file.
    assert!(dir.join("sub/calls.db-wal").exists(), "no WAL file beside the database");
    store.close().await;
    // Reopened (migrations already applied): the data is there, in WAL mode.
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.all_calls().await.unwrap().len(), 7);
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn postgresql_keeps_calls_turns_and_events() {
    let pg = Postgres::start("pg");
    let store = Store::open(&pg.url()).await.unwrap();
    exercise(&store).await;
    agents_and_queue(&store).await;
    privacy_and_reports(&store).await;
    store.close().await;
    let store = Store::open(&pg.url()).await.unwrap();
    assert_eq!(store.all_calls().await.unwrap().len(), 7);
    store.close().await;
}

#[tokio::test]
async fn bad_urls_are_clear_errors() {
    for url in ["mysql://x/y", "sqlite://", "nonsense"] {
        let e = Store::open(url).await.err().expect(url).to_string();
        assert!(e.contains("sqlite://PATH") || e.contains(url), "{url}: {e}");
    }
    let e = Store::open("postgres://ivr:secret@localhost/postgres?host=/nonexistent").await.err().unwrap().to_string();
    assert!(!e.contains("secret") && e.contains("***"), "{e}");
}
