//! Call control in memory: a scripted leg (the caller's side: answer, keys, speech as a tone,
//! media that stops, hang-up) and scripted job results (transcripts, the conversation's turns,
//! speech) drive the real `Call` and the real `CallSession` through the same driver the live
//! server runs, on a simulated clock: no sockets, no models, a minute of call in milliseconds.
//!
//! No model is loaded here, so a level meter stands in for the Silero VAD (speech is a loud tone,
//! silence is silence); Silero itself is tested in `voice-pipeline` and in the replayed calls.


mod common;

use std::time::Duration;

use call_control::call::{EndedBy, Entry, Transfer, KEYPAD_TRANSFER_WAIT};
use call_control::driver::Stop;
use common::*;
use sip_bridge::leg::{KeyVia, LegCommand, LegEvent};
use voice_pipeline::session::Speaker;

#[test]
fn a_call_rings_then_is_answered_and_greeted() {
    let mut p = policy(Transfer::HangUp);
    p.ring = Duration::from_secs(2);
    let mut leg = ScriptedLeg { events: vec![(Duration::from_secs(6), LegEvent::HungUp)], ..Default::default() };
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut hooks = Collect::default();
    run(p, &mut leg, &mut jobs, &mut hooks);

    assert_eq!(leg.commands.first(), Some(&(Duration::ZERO, LegCommand::Ring)), "180 first: {:?}", leg.commands);
    let answered = leg.command_at(|c| *c == LegCommand::Answer).expect("answered");
    assert_eq!(answered, Duration::from_secs(2), "answered after the ring time");
    let connected = hooks.events("answered")[0].0;
    assert_eq!(connected, answered + ms(40), "answered is recorded when the leg connects");
    assert!(leg.sent.iter().all(|(t, _)| *t >= connected), "no audio before the call is connected");
    let greeting = leg.first_audio_out().expect("the greeting is heard");
    assert!(greeting >= connected + jobs.latency, "greeting once synthesized: {greeting:?}");
    assert_eq!(hooks.said(Speaker::Bot).len(), 1);
    assert_eq!(hooks.ended(), Some((EndedBy::Caller, Duration::from_secs(6))));
    assert!(!leg.commands.iter().any(|(_, c)| *c == LegCommand::HangUp), "the caller hung up: no BYE from us");
}

#[test]
fn key_zero_is_transferred_by_refer_to_the_configured_target() {
    let target = "sip:agents@pbx.example".to_string();
    let mut leg = ScriptedLeg { events: vec![(Duration::from_secs(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })], ..Default::default() };
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut hooks = Collect::default();
    let ended = run(policy(Transfer::Refer(target.clone())), &mut leg, &mut jobs, &mut hooks);

    let refer = leg.command_at(|c| matches!(c, LegCommand::Transfer { .. })).expect("REFER");
    // To the target, the summary in the REFER's headers.
    let (referred, headers) = match leg.commands.last() {
        Some((_, LegCommand::Transfer { target, headers })) => (target.clone(), headers.clone()),
        other => panic!("the last command is the REFER: {other:?}"),
    };
    assert_eq!(referred, target);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["X-Summary", "User-to-User"]);
    assert!(headers[0].1.contains("asked for a person"), "the summary: {headers:?}");
    // The key stops the greeting; the bot says it is putting the caller through, then transfers.
    assert!(refer >= Duration::from_secs(3) + jobs.latency * 2 + Duration::from_secs(1), "after the words: {refer:?}");
    assert_eq!(hooks.ended(), Some((EndedBy::Bot, ended)));
    let key = &hooks.events("key")[0];
    assert_eq!(key.1.as_ref().map(|d| d["via"].clone()), Some("rfc4733".into()));
    let t = &hooks.events("transfer")[0];
    assert_eq!(t.1.as_ref().map(|d| d["reason"].clone()), Some("caller_request".into()));
    assert!(hooks.said(Speaker::Bot).iter().any(|s| s.contains("Putting you through")));
}

#[test]
fn a_keypad_transfer_keys_the_digits_then_hangs_up_after_the_wait() {
    let mut leg = ScriptedLeg {
        events: vec![(Duration::from_secs(3), LegEvent::Key { digit: '0', via: KeyVia::Info })],
        digits_take: ms(700),
        ..Default::default()
    };
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut hooks = Collect::default();
    run(policy(Transfer::Keypad("#12001".into())), &mut leg, &mut jobs, &mut hooks);

    let keyed = leg.command_at(|c| *c == LegCommand::SendDigits("#12001".into())).expect("digits keyed");
    let bye = leg.command_at(|c| *c == LegCommand::HangUp).expect("hung up");
    // Hung up the PBX's wait after the digits were all out, not before, not much after.
    let sent = keyed + leg.digits_take;
    assert!(bye >= sent + KEYPAD_TRANSFER_WAIT && bye <= sent + KEYPAD_TRANSFER_WAIT + ms(40), "keyed {keyed:?}, bye {bye:?}");
    assert!(!leg.commands.iter().any(|(_, c)| matches!(c, LegCommand::Transfer { .. })));
    assert_eq!(hooks.ended().map(|e| e.0), Some(EndedBy::Bot));
    assert_eq!(hooks.events("transfer").len(), 1);
}

#[test]
fn a_call_whose_media_stops_is_ended_after_the_timeout() {
    let mut leg = ScriptedLeg { media_stops: Some(Duration::from_secs(2)), ..Default::default() };
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut hooks = Collect::default();
    let ended = run(policy(Transfer::HangUp), &mut leg, &mut jobs, &mut hooks);

    assert_eq!(hooks.ended(), Some((EndedBy::MediaTimeout, ended)));
    assert!(ended > Duration::from_secs(5) && ended <= Duration::from_secs(5) + ms(40), "2 s + the 3 s timeout: {ended:?}");
    assert_eq!(leg.commands.last().map(|(_, c)| c.clone()), Some(LegCommand::HangUp));
}

#[test]
fn the_bot_hangs_up_after_its_goodbye_and_the_caller_s_line_is_understood() {
    // The caller speaks from 3 s to 4 s (after the greeting, which ends at about 1.2 s).
    let mut leg = ScriptedLeg { speech: vec![(Duration::from_secs(3), Duration::from_secs(4))], ..Default::default() };
    let mut jobs = ScriptedJobs::new(&["That is all, goodbye."], demo_conversation);
    let mut hooks = Collect::default();
    let ended = run(policy(Transfer::HangUp), &mut leg, &mut jobs, &mut hooks);

    assert_eq!(hooks.said(Speaker::Caller), ["That is all, goodbye."]);
    let understood: Vec<_> = hooks.entries.iter().filter_map(|e| if let Entry::Understood(u) = e { Some(u) } else { None }).collect();
    assert!(
        matches!(understood[..], [u] if u.intent.as_deref() == Some("goodbye") && u.confidence.is_some_and(|c| (c - 0.93).abs() < 1e-6)
            && u.language.as_deref() == Some("en") && u.sentiment.as_deref() == Some("neutral") && u.unanswered == Some(false)),
        "{understood:?}"
    );
    let bye = leg.command_at(|c| *c == LegCommand::HangUp).expect("the bot hangs up");
    assert_eq!(bye, ended);
    // After the caller's turn ended and the goodbye (one second of speech) was played.
    let goodbye_heard = leg.sent.iter().filter(|(t, s)| *s && *t > Duration::from_secs(4)).map(|(t, _)| *t).collect::<Vec<_>>();
    assert!(goodbye_heard.len() >= 45, "the goodbye was played before the hang-up: {} frames", goodbye_heard.len());
    assert!(goodbye_heard.last().is_some_and(|t| *t < bye));
    assert_eq!(hooks.ended().map(|e| e.0), Some(EndedBy::Bot));
    assert!(hooks.entries.iter().any(|e| matches!(e, Entry::Timing(t) if t.voice_to_voice().is_some())), "the turn's timing is recorded");
}

#[test]
fn the_caller_hanging_up_mid_reply_cancels_the_work_and_ends_the_call() {
    let mut leg = ScriptedLeg {
        speech: vec![(Duration::from_secs(3), Duration::from_secs(4))],
        events: vec![(ms(4600), LegEvent::HungUp)],
        ..Default::default()
    };
    let mut jobs = ScriptedJobs::new(&["How long does delivery take?"], demo_conversation);
    jobs.latency = ms(300);
    let mut hooks = Collect::default();
    let ended = run(policy(Transfer::HangUp), &mut leg, &mut jobs, &mut hooks);

    assert_eq!(ended, ms(4600));
    assert_eq!(hooks.ended(), Some((EndedBy::Caller, ms(4600))));
    assert!(leg.commands.iter().all(|(_, c)| *c == LegCommand::Answer), "nothing but the answer was sent: {:?}", leg.commands);
    assert!(!leg.sent.iter().any(|(t, s)| *s && *t > Duration::from_secs(4)), "the reply was not played yet");
}

#[test]
fn a_shutdown_says_goodbye_then_hangs_up_and_a_ringing_call_is_refused() {
    let mut leg = ScriptedLeg::default();
    let mut jobs = ScriptedJobs::new(&[], demo_conversation);
    let mut hooks = Collect { stops: vec![(Duration::from_secs(3), Stop::Draining), (Duration::from_secs(5), Stop::Shutdown)], ..Default::default() };
    let ended = run(policy(Transfer::HangUp), &mut leg, &mut jobs, &mut hooks);

    assert_eq!(hooks.ended(), Some((EndedBy::Shutdown, ended)));
    let said = hooks.said(Speaker::Bot);
    assert!(said.last().is_some_and(|s| s.contains("has to end the call")), "{said:?}");
    assert!(ended > Duration::from_secs(6), "after the goodbye: {ended:?}");
    assert_eq!(leg.commands.last().map(|(_, c)| c.clone()), Some(LegCommand::HangUp));

    // Still ringing when the server starts draining: refused at once.
    let mut p = policy(Transfer::HangUp);
    p.ring = Duration::from_secs(5);
    let mut leg = ScriptedLeg::default();
    let mut hooks = Collect { stops: vec![(Duration::from_secs(1), Stop::Draining)], ..Default::default() };
    let ended = run(p, &mut leg, &mut ScriptedJobs::new(&[], demo_conversation), &mut hooks);
    assert_eq!(ended, Duration::from_secs(1));
    assert_eq!(leg.commands, [(Duration::ZERO, LegCommand::Ring), (Duration::from_secs(1), LegCommand::Reject { status: 503, reason: "Service Unavailable".into() })]);
    assert_eq!(hooks.ended().map(|e| e.0), Some(EndedBy::Rejected));
}

#[test]
fn the_caller_talking_over_the_hand_over_sentence_does_not_undo_the_transfer() {
    // Key 0 at 3 s; the caller goes on talking over "Putting you through" (which then ends in
    // full: the bot has decided) and is transferred all the same.
    let target = "sip:agents@pbx.example".to_string();
    let mut leg = ScriptedLeg {
        events: vec![(Duration::from_secs(3), LegEvent::Key { digit: '0', via: KeyVia::Rfc4733 })],
        speech: vec![(ms(3100), ms(5500))],
        ..Default::default()
    };
    let mut jobs = ScriptedJobs::new(&["Get me a person right now."], demo_conversation);
    let mut hooks = Collect::default();
    run(policy(Transfer::Refer(target.clone())), &mut leg, &mut jobs, &mut hooks);
    assert!(matches!(leg.commands.last(), Some((_, LegCommand::Transfer { target: t, .. })) if *t == target), "{:?}", leg.commands);
    assert!(hooks.events("barge_in").is_empty(), "{:?}", hooks.entries);
    assert_eq!(hooks.said(Speaker::Caller).len(), 0, "no new turn: {:?}", hooks.said(Speaker::Caller));
}

#[test]
fn the_caller_speaking_over_the_bot_stops_it() {
    // The greeting plays from about 0.2 s to 1.2 s; the caller speaks over it at 0.5 s.
    let mut leg = ScriptedLeg {
        speech: vec![(ms(500), ms(1500))],
        events: vec![(Duration::from_secs(8), LegEvent::HungUp)],
        ..Default::default()
    };
    let mut jobs = ScriptedJobs::new(&["How long does delivery take?"], demo_conversation);
    let mut hooks = Collect::default();
    run(policy(Transfer::HangUp), &mut leg, &mut jobs, &mut hooks);

    let barge = hooks.events("barge_in");
    assert_eq!(barge.len(), 1, "{:?}", hooks.entries);
    // The bot is quiet soon after the caller started, and answers the question afterwards.
    let quiet = leg.sent.iter().find(|(t, s)| *t > ms(500) && !*s).map(|(t, _)| *t).expect("bot stopped");
    assert!(quiet <= ms(700), "stopped at {quiet:?}");
    assert!(hooks.said(Speaker::Bot).iter().any(|s| s.contains("three to five")));
}
