//! The agents' console over HTTP against a real `ivr serve`: signing in (argon2 passwords from
//! `ivr agents`), the limit on failed sign-ins, session cookies (HttpOnly, SameSite=Strict),
//! forged and expired sessions, the CSRF token on every change, and that none of the refused
//! requests changes anything.

mod common;
use common::*;
use std::process::Stdio;
use std::time::Duration;

struct Http {
    base: String,
    client: reqwest::blocking::Client,
}

impl Http {
    /// A request; (status, JSON body, Set-Cookie).
    fn send(&self, method: &str, path: &str, cookie: Option<&str>, csrf: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value, Option<String>) {
        let mut r = self.client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        if let Some(t) = csrf {
            r = r.header("X-CSRF-Token", t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        let status = resp.status().as_u16();
        let set_cookie = resp.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        (status, serde_json::from_str(&resp.text().unwrap()).unwrap_or_default(), set_cookie)
    }

    fn login(&self, name: &str, password: &str) -> (u16, serde_json::Value, Option<String>) {
        self.send("POST", "/agent/api/login", None, None, Some(serde_json::json!({"name": name, "password": password})))
    }
}

#[test]
fn the_console_refuses_bad_sign_ins_forged_or_expired_sessions_and_changes_without_csrf() {
    let dir = tempdir("agent-console");
    let toml = format!(
        "[llm]\nurl = \"http://127.0.0.1:18617\"\n[console]\nsession_secs = 4\n[sip]\n[sip.queue]\n\
         [records]\nurl = \"sqlite://{}\"\ndir = \"{}\"\n",
        dir.join("records/calls.db").display(),
        dir.join("audio").display()
    );
    let config = dir.join("ivr.toml");
    std::fs::write(&config, &toml).unwrap();
    assert!(agents(&config, &["add", "ann"], "ann-password").0);
    assert!(agents(&config, &["add", "bob"], "bob-password").0);
    assert!(agents(&config, &["add", "sue", "--role", "supervisor"], "sue-password").0);
    let served = serve(&dir, &toml);
    // A new connection per request: the server may close an idle one while the test waits.
    let client = reqwest::blocking::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let http = Http { base: format!("http://{}", served.http), client };

    // The page itself needs no sign-in and loads nothing from elsewhere.
    let page = http.client.get(format!("{}/agent", http.base)).send().unwrap().text().unwrap();
    assert!(page.contains("Agent console") && !page.contains("http://") && !page.contains("https://"), "no CDN");

    // Wrong passwords: 401 five times, then 429 (even for the right one) for that name only.
    for _ in 0..5 {
        let (status, body, cookie) = http.login("ann", "guess");
        assert_eq!(status, 401, "{body}");
        assert!(cookie.is_none());
        assert!(body["error"]["message"].as_str().unwrap().contains("wrong name or password"));
    }
    let (status, body, _) = http.login("ann", "ann-password");
    assert_eq!(status, 429, "the sixth try in a minute: {body}");
    let (status, _, _) = http.login("nobody", "whatever");
    assert_eq!(status, 401, "unknown names are refused like wrong passwords");

    // Bob signs in: an HttpOnly, SameSite=Strict cookie and a CSRF token.
    let (status, body, cookie) = http.login("bob", "bob-password");
    assert_eq!(status, 200, "{body}");
    let cookie = cookie.expect("a session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(body["agent"].get("password_hash").is_none(), "no secret in the answer: {body}");
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = body["csrf"].as_str().unwrap().to_string();
    let (status, board, _) = http.send("GET", "/agent/api/board", Some(&session), None, None);
    assert_eq!(status, 200, "{board}");
    assert!(board["agents"].as_array().unwrap().iter().any(|a| a["name"] == "bob"), "{board}");

    // A forged or missing session: 401.
    let forged = format!("ivr_session={}", "0".repeat(64));
    assert_eq!(http.send("GET", "/agent/api/board", Some(&forged), None, None).0, 401);
    assert_eq!(http.send("GET", "/agent/api/board", None, None, None).0, 401);
    // A change without the CSRF token, or with a wrong one: 403, and nothing changes.
    let available = Some(serde_json::json!({"status": "available"}));
    assert_eq!(http.send("POST", "/agent/api/status", Some(&session), None, available.clone()).0, 403);
    assert_eq!(http.send("POST", "/agent/api/status", Some(&session), Some("wrong"), available.clone()).0, 403);
    assert_eq!(http.send("POST", "/agent/api/status", Some(&session), Some(&csrf), Some(serde_json::json!({"status": "asleep"}))).0, 400);
    let (_, me, _) = http.send("GET", "/agent/api/me", Some(&session), None, None);
    assert_eq!(me["agent"]["status"], "signed_out", "refused changes changed nothing");
    // With the token it works; a call not offered to bob cannot be accepted.
    let (status, body, _) = http.send("POST", "/agent/api/status", Some(&session), Some(&csrf), available);
    assert_eq!(status, 200, "{body}");
    let (_, me, _) = http.send("GET", "/agent/api/me", Some(&session), None, None);
    assert_eq!(me["agent"]["status"], "available");
    let (status, body, _) = http.send("POST", "/agent/api/calls/no-such-call/accept", Some(&session), Some(&csrf), None);
    assert_eq!(status, 409, "{body}");
    assert_eq!(http.send("POST", "/agent/api/follow-ups/none/done", Some(&session), Some(&csrf), None).0, 404);
    // Passing a call to an unknown agent: 404 naming them; to oneself 400; a call bob is not on
    // 409; without the CSRF token 403; and bob is still available, ann still signed out.
    let transfer = |to: &str, csrf: Option<&str>| http.send("POST", "/agent/api/calls/no-such-call/transfer", Some(&session), csrf, Some(serde_json::json!({"agent": to})));
    let (status, body, _) = transfer("nobody", Some(&csrf));
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("\"nobody\"") && body["error"]["message"].as_str().unwrap().contains("no agent"), "{body}");
    assert_eq!(transfer("bob", Some(&csrf)).0, 400);
    let (status, body, _) = transfer("ann", Some(&csrf));
    assert_eq!(status, 409, "{body}");
    assert_eq!(transfer("nobody", None).0, 403);
    let (status, body, _) = http.send("POST", "/agent/api/calls/no-such-call/transfer", Some(&session), Some(&csrf), Some(serde_json::json!({"to": "ann"})));
    assert_eq!(status, 422, "a body of the wrong shape: {body}");
    let (_, board, _) = http.send("GET", "/agent/api/board", Some(&session), None, None);
    let status_of = |name: &str| board["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).map(|a| a["status"].clone());
    assert_eq!((status_of("bob"), status_of("ann")), (Some("available".into()), Some("signed_out".into())), "{board}");

    // The audit log: every sign-in and failed sign-in is there; only a supervisor may read it
    // over the API, and an export is itself a line of it.
    assert_eq!(http.send("GET", "/agent/api/audit", Some(&session), None, None).0, 403, "bob is no supervisor");
    let (status, body, sue) = http.login("sue", "sue-password");
    assert_eq!(status, 200, "{body}");
    let sue = sue.expect("a session cookie").split(';').next().unwrap().to_string();
    let (status, audit, _) = http.send("GET", "/agent/api/audit?limit=50", Some(&sue), None, None);
    assert_eq!(status, 200, "{audit}");
    let lines: Vec<(String, String)> = audit["audit"].as_array().unwrap().iter().map(|l| (l["actor"].as_str().unwrap().to_string(), l["action"].as_str().unwrap().to_string())).collect();
    let count = |actor: &str, action: &str| lines.iter().filter(|(a, b)| a == actor && b == action).count();
    assert_eq!((count("ann", "sign_in_failed"), count("nobody", "sign_in_failed")), (5, 1), "{lines:?}");
    assert_eq!((count("bob", "sign_in"), count("sue", "sign_in")), (1, 1), "{lines:?}");
    assert_eq!(lines.first().map(|(a, b)| (a.as_str(), b.as_str())), Some(("sue", "sign_in")), "newest first: {lines:?}");
    assert_eq!(http.send("GET", "/agent/api/audit?limit=x", Some(&sue), None, None).0, 400);
    let exported = export(&config, "audit");
    assert!(exported.last().is_some_and(|l| l["action"] == "export" && l["target"] == "audit" && l["actor"].as_str().unwrap().starts_with("cli:")), "{exported:?}");

    // The session expires (4 s here): 401 and a clear reason.
    std::thread::sleep(Duration::from_secs(5));
    let (status, body, _) = http.send("GET", "/agent/api/board", Some(&session), None, None);
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("sign in"), "{body}");
}

#[test]
fn an_agent_signs_in_on_the_console_in_chromium_sees_the_offered_call_and_accepts_it() {
    let dir = tempdir("console-browser");
    let (toml, config) = queue_config(&dir, 18618, "", "ring_timeout_secs = 30\n");
    assert!(agents(&config, &["add", "ann", "--extension", "2001", "--display-name", "Ann Example"], "ann-password").0);
    assert!(agents(&config, &["status", "ann", "available"], "").0);
    let served = serve(&dir, &toml);
    // Ann's phone answers by itself (so the call is offered on the console too); she stays silent.
    let silence = dir.join("silence.wav");
    run_ok(&["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", silence.to_str().unwrap(), "trim", "0", "60"]);
    let account = format!("<sip:2001@{}>;auth_pass=ann-password;regint=60;answermode=auto", served.sip);
    let agent_log = dir.join("agent.log");
    let _phone = Group::spawn(baresip(&dir, "agent", &silence, &account, 15392, 21700).stdout(std::fs::File::create(&agent_log).unwrap()).stderr(Stdio::null()))
        .expect("baresip runs");
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register");
    // A caller presses 0 for a person and stays on the line.
    let caller = {
        let (sip, dir) = (served.sip.clone(), dir.clone());
        std::thread::spawn(move || sipp("key-zero-then-bye.xml", &sip, &[("stay_ms", "20000")], &dir))
    };
    let shot = dir.join("console.png");
    let out = std::process::Command::new("node")
        .arg(repo().join("ivr/tests/browser/console.mjs"))
        .current_dir(repo())
        .env("CONSOLE_URL", format!("http://{}/agent", served.http))
        .env("AGENT", "ann")
        .env("PASSWORD", "ann-password")
        .env("SCREENSHOT", &shot)
        .output()
        .expect("node runs (scripts/setup.sh installs nodejs and playwright-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    let page: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(page.get("error").is_none(), "{page}");
    let offered = page["offered"].as_str().unwrap();
    assert!(offered.contains("Goal:") && offered.contains("+4930111222"), "the offered call with its summary and number: {offered}");
    assert!(offered.contains("Caller:") || offered.contains("Bot:"), "and its transcript: {offered}");
    assert!(page["state"].as_str().unwrap().contains("on call"), "{page}");
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a screenshot was saved at {}", shot.display());
    // Keep the screenshot with the test's artifacts.
    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::copy(&shot, artifacts.join("agent-console-on-call.png")).unwrap();
    std::fs::copy(dir.join("console-offered.png"), artifacts.join("agent-console-offered.png")).unwrap();
    assert!(page["current"].as_str().unwrap().contains("Goal:"), "the call's summary stays on screen during the call: {page}");
    assert!(page["transfer_error"].as_str().unwrap().contains("no agent"), "a transfer to an unknown agent says so: {page}");
    assert!(page["state_after"].as_str().unwrap().contains("on call"), "and the call goes on: {page}");
    assert!(caller.join().unwrap(), "the caller's call went wrong");
    let calls = all_calls(&config);
    let call = calls.iter().find(|c| c["caller"].as_str().is_some_and(|c| c.contains("4930111222"))).expect("the call");
    assert!(call["events"].as_array().unwrap().iter().any(|e| e["kind"] == "bridged"), "accepted on the console: bridged");
}
