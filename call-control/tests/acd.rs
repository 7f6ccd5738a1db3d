//! The queue (ACD) in memory: order, skills, strategies, ring timeouts, breaks, abandonment,
//! callbacks, the longest wait, announcements and wrap-up, on an explicit clock.

use std::time::Duration;

use call_control::acd::{Acd, AcdConfig, CompletedBy, Needs, Output, QueueEventKind, State, Status, Strategy, Withdrawn};

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn acd(strategy: Strategy) -> Acd {
    Acd::new(AcdConfig { strategy, ..AcdConfig::default() })
}

fn drain(a: &mut Acd) -> Vec<Output> {
    std::iter::from_fn(|| a.poll()).collect()
}

fn offers(out: &[Output]) -> Vec<(String, String)> {
    out.iter().filter_map(|o| if let Output::Offer { call, agent } = o { Some((call.clone(), agent.clone())) } else { None }).collect()
}

fn events(out: &[Output]) -> Vec<(Option<String>, Option<String>, QueueEventKind)> {
    out.iter().filter_map(|o| if let Output::Log(e) = o { Some((e.call.clone(), e.agent.clone(), e.kind.clone())) } else { None }).collect()
}

fn agent(a: &mut Acd, name: &str, skills: &[&str], now: Duration) {
    a.define_agent(name, skills.iter().map(|s| s.to_string()), now);
    assert!(a.set_status(name, Status::Available, now));
}

fn en() -> Needs {
    Needs { language: Some("en".into()), topic: None }
}

#[test]
fn priority_then_arrival_and_the_offer_goes_to_the_first() {
    let mut q = acd(Strategy::LongestIdle);
    assert_eq!(q.enter("calm-1", 0, en(), s(0)), 1);
    assert_eq!(q.enter("calm-2", 0, en(), s(1)), 2);
    // The upset caller arrives last but goes first.
    assert_eq!(q.enter("angry", 1, en(), s(2)), 1);
    assert_eq!((q.position("calm-1"), q.position("calm-2")), (Some(2), Some(3)));
    let out = drain(&mut q);
    assert!(offers(&out).is_empty(), "no agent yet");
    let enters: Vec<_> = events(&out).into_iter().map(|(c, _, k)| (c.unwrap(), k)).collect();
    assert_eq!(enters[2], ("angry".into(), QueueEventKind::Enter { priority: 1, position: 1, queue: "general".into() }));

    agent(&mut q, "ann", &["en"], s(3));
    assert_eq!(offers(&drain(&mut q)), vec![("angry".into(), "ann".into())]);
    assert!(q.agent_answered("angry", "ann", s(5)));
    assert!(q.agent_accepted("angry", "ann", s(8)));
    let out = drain(&mut q);
    assert!(events(&out).iter().any(|(c, a, k)| c.as_deref() == Some("angry") && a.as_deref() == Some("ann") && *k == QueueEventKind::Connect { hold_secs: 6.0 }));
    assert_eq!(q.agent("ann").unwrap().1, State::OnCall("angry".into()));
    assert_eq!(q.position("calm-1"), Some(1));

    // The call ends; after the wrap-up the next caller in order is offered.
    q.completed("angry", CompletedBy::Agent, s(68));
    let out = drain(&mut q);
    assert!(events(&out).contains(&(Some("angry".into()), Some("ann".into()), QueueEventKind::Complete { by: CompletedBy::Agent, hold_secs: 6.0, talk_secs: 60.0 })));
    assert!(offers(&out).is_empty(), "wrap-up first");
    assert_eq!(q.agent("ann").unwrap().1, State::WrapUp);
    q.on_tick(s(77));
    assert!(offers(&drain(&mut q)).is_empty());
    q.on_tick(s(78));
    assert_eq!(offers(&drain(&mut q)), vec![("calm-1".into(), "ann".into())]);
}

#[test]
fn longest_idle_and_round_robin_pick_different_agents() {
    let mut q = acd(Strategy::LongestIdle);
    agent(&mut q, "bob", &["en"], s(10));
    agent(&mut q, "ann", &["en"], s(20));
    q.enter("c1", 0, en(), s(30));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "bob".into())], "bob has been idle longest");

    let mut q = acd(Strategy::RoundRobin);
    for n in ["ann", "bob", "cid"] {
        agent(&mut q, n, &["en"], s(0));
    }
    let mut got = Vec::new();
    for i in 0..4 {
        let (call, t) = (format!("c{i}"), s(100 * i));
        q.enter(&call, 0, en(), t);
        let o = offers(&drain(&mut q));
        assert_eq!(o.len(), 1);
        got.push(o[0].1.clone());
        // Each agent takes the call and finishes it at once; the wrap-up is over in 10 s.
        assert!(q.agent_accepted(&call, &o[0].1, t));
        q.completed(&call, CompletedBy::Caller, t);
        q.on_tick(t + s(50));
        drain(&mut q);
    }
    assert_eq!(got, ["ann", "bob", "cid", "ann"]);
}

#[test]
fn ring_all_rings_every_free_agent_and_the_first_answer_wins() {
    let mut q = acd(Strategy::RingAll);
    agent(&mut q, "ann", &["en"], s(0));
    agent(&mut q, "bob", &["en"], s(0));
    agent(&mut q, "zed", &["de"], s(0));
    q.enter("c1", 0, en(), s(1));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "ann".into()), ("c1".into(), "bob".into())]);
    assert!(q.agent_answered("c1", "bob", s(3)));
    let out = drain(&mut q);
    assert_eq!(out, vec![Output::Withdraw { call: "c1".into(), agent: "ann".into(), why: Withdrawn::TakenElsewhere }]);
    assert!(!q.agent_answered("c1", "ann", s(3)), "ann's late answer finds the offer gone");
}

#[test]
fn an_unanswered_offer_moves_on_and_repeated_misses_mean_a_break() {
    let mut q = Acd::new(AcdConfig { ring_timeout_secs: 15, max_misses: 2, ..AcdConfig::default() });
    agent(&mut q, "ann", &["en"], s(0));
    agent(&mut q, "bob", &["en"], s(1));
    q.enter("c1", 0, en(), s(2));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "ann".into())]);
    q.on_tick(s(16));
    assert!(drain(&mut q).iter().all(|o| !matches!(o, Output::Withdraw { .. })), "still within the ring timeout");
    q.on_tick(s(17));
    let out = drain(&mut q);
    assert!(out.contains(&Output::Withdraw { call: "c1".into(), agent: "ann".into(), why: Withdrawn::RingTimeout }));
    assert!(events(&out).contains(&(Some("c1".into()), Some("ann".into()), QueueEventKind::NoAnswer { ring_secs: 15.0 })));
    assert_eq!(offers(&out), vec![("c1".into(), "bob".into())], "the next agent is tried");
    // Bob's phone refuses (busy): a miss too; ann is tried again once her retry wait (5 s) is over.
    q.agent_unreachable("c1", "bob", s(18));
    assert!(offers(&drain(&mut q)).is_empty());
    q.on_tick(s(18));
    assert!(drain(&mut q).iter().any(|o| matches!(o, Output::Announce { .. })), "back to waiting: the caller hears where they are");
    assert_eq!(q.poll_timeout(), Some(s(22)));
    q.on_tick(s(22));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "ann".into())]);
    q.on_tick(s(37));
    let out = drain(&mut q);
    // Ann missed twice in a row: on break, by the system; bob (one miss) gets it.
    assert!(events(&out).contains(&(None, Some("ann".into()), QueueEventKind::Status { status: Status::OnBreak, by_system: true })));
    assert_eq!(q.agent("ann").unwrap().0, Status::OnBreak);
    assert_eq!(offers(&out), vec![("c1".into(), "bob".into())]);
    // An answered offer (the agent hears the summary) does not time out.
    assert!(q.agent_answered("c1", "bob", s(34)));
    q.on_tick(s(200));
    assert!(drain(&mut q).iter().all(|o| !matches!(o, Output::Withdraw { .. } | Output::Offer { .. })));
    assert_eq!(q.poll_timeout().map(|t| t > s(200)), Some(true), "no timer stuck in the past");
}

#[test]
fn a_caller_who_hangs_up_while_the_agent_rings_stops_the_ringing_and_is_abandoned() {
    let mut q = acd(Strategy::LongestIdle);
    q.enter("c0", 0, en(), s(0));
    agent(&mut q, "ann", &["en"], s(1));
    q.enter("c1", 0, en(), s(2));
    drain(&mut q);
    q.caller_left("c1", s(9));
    let out = drain(&mut q);
    assert!(events(&out).contains(&(Some("c1".into()), None, QueueEventKind::Abandon { position: 2, entry_position: 2, wait_secs: 7.0 })));
    q.caller_left("c0", s(10));
    let out = drain(&mut q);
    assert!(out.contains(&Output::Withdraw { call: "c0".into(), agent: "ann".into(), why: Withdrawn::CallerLeft }));
    assert!(events(&out).contains(&(Some("c0".into()), None, QueueEventKind::Abandon { position: 1, entry_position: 1, wait_secs: 10.0 })));
    assert_eq!(q.agent("ann").unwrap().1, State::Idle);
    assert_eq!(q.waiting(), 0);
}

#[test]
fn key_one_leaves_for_a_callback_and_the_longest_wait_ends_in_a_wait_over() {
    let mut q = Acd::new(AcdConfig { max_wait_secs: 120, ..AcdConfig::default() });
    q.enter("c1", 0, en(), s(0));
    q.enter("c2", 0, en(), s(5));
    drain(&mut q);
    assert!(q.caller_key("c1", '1', s(40)));
    let out = drain(&mut q);
    assert!(events(&out).contains(&(Some("c1".into()), None, QueueEventKind::ExitWithKey { key: '1', position: 1, wait_secs: 40.0 })));
    assert_eq!(q.position("c2"), Some(1));
    q.on_tick(s(124));
    assert!(!drain(&mut q).iter().any(|o| matches!(o, Output::WaitOver { .. })));
    q.on_tick(s(125));
    let out = drain(&mut q);
    assert!(out.contains(&Output::WaitOver { call: "c2".into() }));
    assert!(events(&out).contains(&(Some("c2".into()), None, QueueEventKind::ExitWithTimeout { position: 1, wait_secs: 120.0 })));
    // The caller is told before the line is logged (the live queue forgets a caller at their
    // last line: told after it, the caller never heard that the wait was over).
    let told = out.iter().position(|o| matches!(o, Output::WaitOver { .. })).unwrap();
    let logged = out.iter().position(|o| matches!(o, Output::Log(e) if matches!(e.kind, QueueEventKind::ExitWithTimeout { .. }))).unwrap();
    assert!(told < logged);
    assert_eq!(q.waiting(), 0);
}

#[test]
fn announcements_come_on_entry_then_at_intervals_never_during_an_offer() {
    let mut q = Acd::new(AcdConfig { announce_every_secs: 30, handle_time_secs: 120, ring_timeout_secs: 60, ..AcdConfig::default() });
    agent(&mut q, "ann", &["en"], s(0));
    q.enter("c1", 0, en(), s(0));
    q.enter("c2", 0, en(), s(1));
    q.enter("c3", 0, en(), s(2));
    let announced = |out: &[Output]| -> Vec<(String, usize, u64)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Announce { call, position, expected_wait } => Some((call.clone(), *position, expected_wait.as_secs())),
                _ => None,
            })
            .collect()
    };
    let out = drain(&mut q);
    // c1 is being offered to ann: no announcement for it.
    assert_eq!(announced(&out), vec![("c2".into(), 2, 240), ("c3".into(), 3, 360)]);
    q.on_tick(s(20));
    assert!(announced(&drain(&mut q)).is_empty());
    q.on_tick(s(31));
    assert_eq!(announced(&drain(&mut q)), vec![("c2".into(), 2, 240)]);
    q.on_tick(s(32));
    assert_eq!(announced(&drain(&mut q)), vec![("c3".into(), 3, 360)]);
    assert!(q.poll_timeout().unwrap() > s(32));
}

#[test]
fn skills_match_and_relax_when_nobody_signed_in_has_them() {
    let mut q = acd(Strategy::LongestIdle);
    agent(&mut q, "ann", &["en", "orders"], s(0));
    agent(&mut q, "bob", &["en", "billing"], s(5));
    agent(&mut q, "li", &["zh", "billing"], s(6));
    q.enter("bill", 0, Needs { language: Some("en".into()), topic: Some("Billing".into()) }, s(10));
    assert_eq!(offers(&drain(&mut q)), vec![("bill".into(), "bob".into())]);
    q.enter("zh", 0, Needs { language: Some("zh".into()), topic: Some("orders".into()) }, s(11));
    assert_eq!(offers(&drain(&mut q)), vec![("zh".into(), "li".into())], "the language is kept when no zh agent knows orders");
    q.enter("fr", 0, Needs { language: Some("fr".into()), topic: None }, s(12));
    assert_eq!(offers(&drain(&mut q)), vec![("fr".into(), "ann".into())], "nobody speaks fr: anyone");
    // A skilled agent who is merely busy is waited for rather than relaxing.
    let mut q = acd(Strategy::LongestIdle);
    agent(&mut q, "ann", &["en", "orders"], s(0));
    agent(&mut q, "bob", &["en", "billing"], s(5));
    q.enter("b1", 0, Needs { language: Some("en".into()), topic: Some("billing".into()) }, s(10));
    q.enter("b2", 0, Needs { language: Some("en".into()), topic: Some("billing".into()) }, s(11));
    assert_eq!(offers(&drain(&mut q)), vec![("b1".into(), "bob".into())]);
}

#[test]
fn a_declined_call_goes_back_to_the_head_and_another_agent_gets_it() {
    let mut q = Acd::new(AcdConfig { decline_cooldown_secs: 30, ..AcdConfig::default() });
    agent(&mut q, "ann", &["en"], s(0));
    q.enter("c1", 0, en(), s(1));
    q.enter("c2", 0, en(), s(2));
    drain(&mut q);
    assert!(q.agent_answered("c1", "ann", s(4)));
    q.agent_declined("c1", "ann", s(10));
    let out = drain(&mut q);
    assert!(out.contains(&Output::Withdraw { call: "c1".into(), agent: "ann".into(), why: Withdrawn::Declined }));
    assert!(events(&out).contains(&(Some("c1".into()), Some("ann".into()), QueueEventKind::Declined)));
    assert_eq!(q.position("c1"), Some(1), "back at the head");
    assert_eq!(offers(&out), vec![("c2".into(), "ann".into())], "ann is offered the next caller, not the declined one");
    q.caller_left("c2", s(11));
    drain(&mut q);
    agent(&mut q, "bob", &["en"], s(12));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "bob".into())]);
    q.agent_unreachable("c1", "bob", s(13));
    q.set_status("bob", Status::OnBreak, s(13));
    assert!(offers(&drain(&mut q)).is_empty(), "ann's cool-off still runs");
    q.on_tick(s(40));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".into(), "ann".into())]);
}

#[test]
fn signing_out_during_an_offer_withdraws_it_and_unknown_agents_are_refused() {
    let mut q = acd(Strategy::LongestIdle);
    agent(&mut q, "ann", &["en"], s(0));
    q.enter("c1", 0, en(), s(1));
    drain(&mut q);
    q.set_status("ann", Status::SignedOut, s(2));
    let out = drain(&mut q);
    assert!(out.contains(&Output::Withdraw { call: "c1".into(), agent: "ann".into(), why: Withdrawn::AgentLeft }));
    assert_eq!(q.position("c1"), Some(1));
    assert!(!q.set_status("nobody", Status::Available, s(3)));
    assert!(!q.agent_accepted("c1", "nobody", s(3)));
    assert_eq!(q.signed_in(), 0);
    let board = q.board(s(4));
    assert_eq!(board.waiting[0].call, "c1");
    assert_eq!(board.agents[0].status, Status::SignedOut);
}

#[test]
fn a_caller_arriving_after_hours_or_with_nobody_signed_in_is_not_queued() {
    use call_control::acd::Closed;
    use call_control::attendant::DeskNote;
    let enter = || DeskNote::Enter { priority: 0, needs: en(), summary: String::new(), caller: String::new(), reason: String::new() };
    let mut q = acd(Strategy::LongestIdle);
    // Nobody at all: closed.
    assert_eq!(q.apply("c1", enter(), s(0)), None);
    let out = drain(&mut q);
    assert!(out.contains(&Output::Closed { call: "c1".into(), why: Closed::NoAgents }), "{out:?}");
    assert_eq!(events(&out)[0].2, QueueEventKind::Closed { why: Closed::NoAgents });
    assert_eq!(q.waiting(), 0);
    // Someone on break: the caller waits for them.
    q.define_agent("ann", ["en".to_string()], s(1));
    q.set_status("ann", Status::OnBreak, s(1));
    assert_eq!(q.apply("c2", enter(), s(2)), Some(1));
    assert!(!drain(&mut q).iter().any(|o| matches!(o, Output::Closed { .. })));
    // After hours, even with an available agent: closed; the waiting caller stays.
    q.set_status("ann", Status::Available, s(3));
    assert_eq!(offers(&drain(&mut q)), vec![("c2".into(), "ann".into())]);
    q.set_open(false);
    assert_eq!(q.apply("c3", enter(), s(4)), None);
    let out = drain(&mut q);
    assert!(out.contains(&Output::Closed { call: "c3".into(), why: Closed::AfterHours }), "{out:?}");
    assert_eq!(q.position("c2"), Some(1), "a caller already waiting is not turned away");
    q.set_open(true);
    assert_eq!(q.apply("c4", enter(), s(5)), Some(2));
}

#[test]
fn an_agent_passes_their_call_to_a_colleague_and_bad_transfers_change_nothing() {
    use call_control::acd::TransferError;
    let mut q = acd(Strategy::LongestIdle);
    agent(&mut q, "ann", &["en"], s(0));
    agent(&mut q, "bob", &["en"], s(0));
    q.enter("c1", 0, en(), s(1));
    let first = offers(&drain(&mut q));
    let taker = first[0].1.clone();
    let other = if taker == "ann" { "bob" } else { "ann" };
    assert!(q.agent_answered("c1", &taker, s(2)) && q.agent_accepted("c1", &taker, s(3)));
    drain(&mut q);
    // Bad transfers: an error each, and nothing changes.
    assert_eq!(q.transfer("c1", &taker, "nobody", s(10)), Err(TransferError::UnknownAgent));
    assert_eq!(q.transfer("c1", &taker, &taker, s(10)), Err(TransferError::SameAgent));
    assert_eq!(q.transfer("c1", other, &taker, s(10)), Err(TransferError::NotYourCall));
    assert_eq!(q.transfer("no-call", &taker, other, s(10)), Err(TransferError::NotYourCall));
    q.set_status(other, Status::OnBreak, s(10));
    assert_eq!(q.transfer("c1", &taker, other, s(11)), Err(TransferError::Unavailable));
    q.set_status(other, Status::Available, s(12));
    drain(&mut q);
    assert_eq!(q.agent(&taker).unwrap().1, State::OnCall("c1".into()), "still on the call");
    assert_eq!(q.waiting(), 0);
    // A caller arrives, is offered to the free colleague, who declines: the caller waits (the
    // colleague is skipped for them a while) and the colleague is free.
    q.enter("c2", 0, en(), s(13));
    assert_eq!(offers(&drain(&mut q)), vec![("c2".to_string(), other.to_string())]);
    q.agent_declined("c2", other, s(14));
    drain(&mut q);
    // The transfer: the taker wraps up, the call goes to the head, offered to the colleague only.
    assert_eq!(q.transfer("c1", &taker, other, s(20)), Ok(()));
    let out = drain(&mut q);
    assert!(out.contains(&Output::Transferred { call: "c1".into(), to: other.to_string() }), "{out:?}");
    assert_eq!(offers(&out), vec![("c1".to_string(), other.to_string())], "the colleague gets the transferred call first");
    assert!(matches!(&events(&out)[0].2, QueueEventKind::Transfer { to, talk_secs, .. } if to == other && (*talk_secs - 17.0).abs() < 1e-6));
    assert_eq!(q.agent(&taker).unwrap().1, State::WrapUp);
    assert_eq!((q.position("c1"), q.position("c2")), (Some(1), Some(2)), "ahead of the caller waiting");
    // The colleague declines: the call stays first, for anyone (the taker after wrap-up).
    q.agent_answered("c1", other, s(22));
    q.agent_declined("c1", other, s(24));
    drain(&mut q);
    q.on_tick(s(40));
    assert_eq!(offers(&drain(&mut q)), vec![("c1".to_string(), taker.clone())]);
}
