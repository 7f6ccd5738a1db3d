//! A returning caller whose last call this week was about an order: greeted about it ("Are you
//! calling about order 41234567?"), "yes" goes on with that order, "no" or a new question is
//! handled as any call; and a reply from an order lookup names its order (the call records it).

use std::path::Path;

use dialogue::manager::{Conversation, DialogueConfig, Input, Source};
use dialogue::Engine;

fn engine() -> Engine {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = std::env::temp_dir().join(format!("ivr-returning-test-{}-{n}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&db);
    Engine::load(&repo.join("tenant/demo"), &repo.join("models/data/embeddings/all-MiniLM-L6-v2"), &db, DialogueConfig::default()).unwrap()
}

fn now() -> jiff::Timestamp {
    "2026-11-24T10:00:00Z".parse().unwrap()
}

fn say(conv: &mut Conversation, e: &Engine, text: &str) -> dialogue::manager::Turn {
    conv.handle(Input::Speech { text, language: "en" }, now(), &e.brain())
}

#[test]
fn yes_goes_on_with_the_order_of_the_last_call() {
    let e = engine();
    let mut conv = Conversation::new(Some("+4930999999"));
    conv.set_history(1, Some("41234567"));
    assert_eq!(conv.open_order(), Some("41234567"));
    let t = say(&mut conv, &e, "Yes, that's right.");
    assert!(t.reply.contains("postcode"), "the order is known; its postcode is asked: {}", t.reply);
    let t = say(&mut conv, &e, "10115");
    assert!(t.reply.contains("41234567") && t.reply.contains("shipped"), "{}", t.reply);
    assert_eq!(t.source, Source::Tool("order_status".into()));
    assert_eq!(t.matter.as_deref(), Some("41234567"), "the lookup names its order");
}

#[test]
fn no_or_a_new_question_is_an_ordinary_call() {
    let e = engine();
    let mut conv = Conversation::new(Some("+4930999999"));
    conv.set_history(2, Some("41234567"));
    let t = say(&mut conv, &e, "No.");
    assert_eq!(t.reply, "All right. How can I help you today?");
    let t = say(&mut conv, &e, "Yes.");
    assert!(!t.reply.contains("postcode"), "the question was answered: a later yes is not about the order: {}", t.reply);

    let mut conv = Conversation::new(Some("+4930999999"));
    conv.set_history(1, Some("41234567"));
    let t = say(&mut conv, &e, "What is your returns policy?");
    assert!(matches!(t.source, Source::Knowledge(_)), "a new question is answered as usual: {t:?}");
    assert_eq!(t.matter, None);
}

#[test]
fn only_an_order_number_is_asked_about() {
    let mut conv = Conversation::new(Some("+4930999999"));
    conv.set_history(3, Some("not an order"));
    assert_eq!(conv.open_order(), None);
    conv.set_history(3, None);
    assert_eq!(conv.open_order(), None);
}
