//! A company's CRM connected through the webhook tools, over HTTP and HTTPS. The CRM itself cannot
//! run here, so a small server in this test (the project's web stack, loopback only) stands in for
//! it; everything on our side is real, TLS included (certificates made by the test).

use std::path::Path;
use std::sync::Arc;

use dialogue::manager::{Action, Conversation, DialogueConfig, Input, Source};
use dialogue::policy::TransferReason;
use dialogue::tools::{Hours, OrderNumber, Postcode, ToolCall, Tools};
use dialogue::webhook::WebhookTools;
use dialogue::Engine;
use ivr_web::axum::http::{StatusCode, Uri};
use ivr_web::axum::{Json, Router};

/// Answers like a CRM would; `lie` makes it state a delivery date its data does not hold.
fn crm_app(lie: bool) -> Router {
    let answer = move |uri: Uri, Json(req): Json<serde_json::Value>| async move {
        let (status, resp) = match uri.path() {
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
        (StatusCode::from_u16(status).unwrap(), Json(resp))
    };
    Router::new().route("/crm/{*rest}", ivr_web::axum::routing::post(answer))
}

/// A loopback listener and a runtime thread serving on it; the thread ends with the test process.
fn spawn_server(serve: impl FnOnce(ivr_web::tokio::net::TcpListener) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let rt = ivr_web::tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move { serve(ivr_web::tokio::net::TcpListener::from_std(listener).unwrap()).await });
    });
    addr
}

fn crm(lie: bool) -> String {
    let addr = spawn_server(move |listener| {
        Box::pin(async move {
            let limits = ivr_web::Limits::default();
            let _ = ivr_web::serve(listener, ivr_web::finish(crm_app(lie), &limits), limits, std::future::pending()).await;
        })
    });
    format!("http://{addr}/crm")
}

/// A certificate authority and a certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Test CRM CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap().signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki { ca_pem: ca_cert.pem(), cert_der: cert.der().to_vec(), key_der: key.serialize_der() }
}

/// The CRM over HTTPS with `pki`'s server certificate.
fn crm_tls(pki: &Pki) -> String {
    use tokio_rustls::rustls;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.cert_der.clone().into()], rustls::pki_types::PrivateKeyDer::Pkcs8(pki.key_der.clone().into()))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let addr = spawn_server(move |listener| {
        Box::pin(async move {
            let app = ivr_web::finish(crm_app(false), &ivr_web::Limits::default());
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                ivr_web::tokio::spawn(async move {
                    // A client that does not trust us fails the handshake: nothing to serve.
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service).await;
                });
            }
        })
    });
    format!("https://{addr}/crm")
}

fn hours() -> Hours {
    Hours::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tenant/demo/hours.toml")).unwrap()
}

fn engine(url: &str) -> Engine {
    engine_with(WebhookTools::new(url, hours()).unwrap())
}

fn engine_with(tools: WebhookTools) -> Engine {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let tenant = repo.join("tenant/demo");
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

#[test]
fn an_https_crm_is_reached_with_the_company_ca_and_a_wrong_ca_is_a_clear_error_and_a_transfer() {
    let dir = std::env::temp_dir().join(format!("ivr-webhook-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ours, other) = (pki(), pki());
    let url = crm_tls(&ours);
    std::fs::write(dir.join("ca.pem"), &ours.ca_pem).unwrap();
    std::fs::write(dir.join("other-ca.pem"), &other.ca_pem).unwrap();

    // The company's CA: the order status comes over HTTPS.
    let e = engine_with(WebhookTools::with_ca(&url, Some(&dir.join("ca.pem")), hours()).unwrap());
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "10115");
    assert_eq!(t.reply, "Your TV arrives on November 26.");

    // Another CA: the error says it is the certificate, and the caller goes to a person.
    let tools = WebhookTools::with_ca(&url, Some(&dir.join("other-ca.pem")), hours()).unwrap();
    let call = ToolCall::OrderStatus { order: OrderNumber::parse("41234567").unwrap(), postcode: Postcode::parse("10115").unwrap() };
    let err = tools.call(&call).unwrap_err().to_string();
    assert!(err.contains("certificate") && err.contains(&url), "{err}");
    let e = engine_with(tools);
    let mut conv = Conversation::new(None);
    say(&mut conv, &e, "Where is my order?");
    say(&mut conv, &e, "41234567");
    let t = say(&mut conv, &e, "10115");
    assert!(matches!(t.action, Some(Action::Transfer { reason: TransferReason::StageFailure, .. })), "{t:?}");

    // No CA file, or not a certificate: refused at start, naming the file.
    let missing = WebhookTools::with_ca(&url, Some(&dir.join("nope.pem")), hours()).err().unwrap().to_string();
    assert!(missing.contains("nope.pem"), "{missing}");
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    let junk = WebhookTools::with_ca(&url, Some(&dir.join("junk.pem")), hours()).err().unwrap().to_string();
    assert!(junk.contains("junk.pem"), "{junk}");
    let _ = std::fs::remove_dir_all(&dir);
}
