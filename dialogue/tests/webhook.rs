//! A company's CRM connected through the webhook tools. The CRM itself cannot run here, so a small
//! HTTP server in this test stands in for it (loopback only); everything on our side is real.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;

use dialogue::manager::{Action, Conversation, DialogueConfig, Input, Source};
use dialogue::policy::TransferReason;
use dialogue::tools::Hours;
use dialogue::webhook::WebhookTools;
use dialogue::Engine;

/// Answers like a CRM would; `lie` makes it state a delivery date its data does not hold.
fn crm(lie: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let (status, resp) = match path.as_str() {
                "/crm/tools/order_status" if req["order"] == "41234567" && req["postcode"] == "10115" => {
                    let day = if lie { 27 } else { 26 };
                    (200, serde_json::json!({"say": format!("Your TV arrives on November {day}."), "data": {"delivery": "2026-11-26"}}))
                }
                "/crm/tools/order_status" if req["order"] == "41234567" => (409, serde_json::json!({})),
                "/crm/tools/order_status" => (404, serde_json::json!({})),
                "/crm/caller" if req["caller_id"] == "+4930111222" => (200, serde_json::json!({"customer_id": "C1001"})),
                "/crm/caller" => (200, serde_json::json!({"customer_id": null})),
                "/crm/tools/reward_points" if req["customer"]["id"] == "C1001" => {
                    (200, serde_json::json!({"say": "You have 1240 points.", "data": {"points": 1240}}))
                }
                _ => (500, serde_json::json!({"error": "unexpected"})),
            };
            let resp = resp.to_string();
            let mut w = stream;
            let _ = write!(w, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{resp}", resp.len());
        }
    });
    format!("http://{addr}/crm")
}

fn engine(url: &str) -> Engine {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tenant = repo.join("tenant/demo");
    let tools = WebhookTools::new(url, Hours::load(&tenant.join("hours.toml")).unwrap()).unwrap();
    Engine::with_tools(&tenant, &repo.join("models/data/embeddings/all-MiniLM-L6-v2"), Box::new(tools), DialogueConfig::default()).unwrap()
}

fn say(conv: &mut Conversation, e: &Engine, text: &str) -> dialogue::manager::Turn {
    conv.handle(Input::Speech { text, language: "en" }, "2026-11-24T10:00:00Z".parse().unwrap(), &e.brain())
}

#[test]
fn order_status_and_verified_balances_come_from_the_crm() {
    let e = engine(&crm(false));
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "10115");
    assert_eq!(t.reply, "Your TV arrives on November 26.");
    assert_eq!(t.source, Source::Tool("order_status".into()));

    let mut conv = Conversation::new(Some("+4930111222"));
    let t = say(&mut conv, &e, "How many reward points do I have?");
    assert_eq!(t.reply, "You have 1240 points.");

    // A wrong postcode is the CRM's 409: asked again, never answered.
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "99999");
    assert!(t.reply.contains("could not find"), "{}", t.reply);
}

#[test]
fn a_crm_answer_with_a_fact_its_data_lacks_is_not_spoken() {
    let e = engine(&crm(true));
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "10115");
    assert!(!t.reply.contains("27"), "{}", t.reply);
    assert_eq!(t.source, Source::Prompt);
}

#[test]
fn an_unreachable_crm_hands_the_call_to_a_person() {
    let e = engine("http://127.0.0.1:9/crm");
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "10115");
    assert!(matches!(t.action, Some(Action::Transfer { reason: TransferReason::StageFailure, .. })), "{t:?}");
}
