//! Real softphones and a real proxy on loopback, as a call centre would put them in front of
//! `ivr serve`: `baresip` and `linphonec` play a caller recording as their microphone and record
//! what they hear, which the project's own STT must find the knowledge answer in; a baresip caller who
//! asks for a person is sent by REFER to the agent (a sipp UAS standing in for the agent's phone); and
//! calls through Kamailio, a stateful proxy that record-routes, in both directions of hang-up.
//! The test command runs inside a network namespace with only `lo` up.

mod common;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};






/// Runs baresip as a caller: dials `uri` with `mic` as its microphone and quits when the file has
/// played out (and any call it was transferred to has ended). Returns what it heard.
fn baresip_call(dir: &Path, mic: &Path, uri: &str, sip_port: u16, rtp_port: u16) -> Vec<PathBuf> {
    let out = output_in_group(baresip(dir, "caller", mic, "<sip:caller@127.0.0.1>;regint=0", sip_port, rtp_port).args(["-e", &format!("/dial {uri}"), "-t", "80"]))
        .expect("baresip runs (scripts/setup.sh installs it)");
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    std::fs::write(dir.join("baresip.log"), &log).unwrap();
    let heard = baresip_heard(dir, "caller");
    assert!(!heard.is_empty(), "baresip recorded nothing: {log}");
    heard
}

/// A linphonec with a throw-away HOME and the settings `rc` (after loopback-only basics), listening
/// for SIP on `sip_port`; commands go to the returned stdin.
fn linphonec(dir: &Path, rc: &str, sip_port: u16) -> (Group, std::process::ChildStdin) {
    let home = dir.join("linphone-home");
    std::fs::create_dir_all(&home).unwrap();
    let path = dir.join("linphonerc");
    std::fs::write(&path, format!("[sip]\nuse_ipv6=0\nbind_address=127.0.0.1\n{rc}")).unwrap();
    let mut child = Group::spawn(
        Command::new("timeout")
            .args(["90", "linphonec", "-c", path.to_str().unwrap()])
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("linphonec runs (scripts/setup.sh installs linphone-cli)");
    let mut stdin = child.0.stdin.take().unwrap();
    // With only loopback up linphonec opens no SIP socket by itself; `ports sip` makes it listen.
    stdin.write_all(format!("ports sip {sip_port}\n").as_bytes()).unwrap();
    (child, stdin)
}

/// Ends a linphonec from [`linphonec`].
fn quit_linphonec(mut child: Group, mut stdin: std::process::ChildStdin) {
    let _ = stdin.write_all(b"quit\n");
    drop(stdin);
    let _ = child.0.wait();
}

/// Runs linphonec as a caller for `secs`: `mic` played into the call, what it hears recorded.
fn linphonec_call(dir: &Path, mic: &Path, uri: &str, sip_port: u16, rtp_port: u16, secs: u64) -> PathBuf {
    let (child, mut stdin) = linphonec(dir, &format!("[rtp]\nbind_address=127.0.0.1\naudio_rtp_port={rtp_port}\n"), sip_port);
    let reply = dir.join("linphone-heard.wav");
    let commands = format!("soundcard use files\nplay {}\nrecord {}\ncall {uri}\n", mic.display(), reply.display());
    stdin.write_all(commands.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_secs(secs));
    let _ = stdin.write_all(b"terminate\n");
    std::thread::sleep(Duration::from_secs(1));
    quit_linphonec(child, stdin);
    reply
}

/// The agent's phone: a sipp UAS that answers one call and waits for its BYE.
fn agent_phone(dir: &Path, port: u16) -> Group {
    Group::spawn(
        Command::new("sipp")
            .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &(port + 1000).to_string()])
            .args(["-m", "1", "-timeout", "90s", "-nostdin", "-trace_err", "-error_file"])
            .arg(dir.join("agent-errors.log"))
            .stdout(Stdio::null()),
    )
    .expect("sipp runs")
}

#[test]
fn baresip_caller_hears_the_return_window() {
    let dir = tempdir("baresip");
    let server = serve_sip(&dir, 18610, "");
    let mic = caller_wav(&dir, "caller", "How long do I have to return something?", 7.0, 14.0);
    let recordings = baresip_call(&dir, &mic, &format!("sip:ivr@{}", server.sip), 15180, 21000);
    assert_eq!(recordings.len(), 1);
    let text = heard(&recordings[0]);
    assert!(text.contains("thank you for calling"), "the greeting: {text}");
    assert!(text.contains("30 days"), "the return window: {text}");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["ended_by"], "caller", "{}", recs[0]);
    // RTCP both ways (every 5 s or so): baresip's reports echo ours, which gives the round trip.
    let rtcp = &recs[0]["media"]["rtcp"];
    assert!(rtcp["reports_sent"].as_u64().unwrap() >= 2, "{rtcp}");
    assert!(rtcp["reports_received"].as_u64().unwrap() >= 2, "{rtcp}");
    assert!(rtcp["round_trip_ms"].as_f64().is_some_and(|ms| ms < 100.0), "{rtcp}");
    assert_eq!(rtcp["remote_loss"], 0.0, "{rtcp}");
}

#[test]
fn linphonec_caller_hears_the_return_window() {
    let dir = tempdir("linphonec");
    let server = serve_sip(&dir, 18611, "");
    let mic = caller_wav(&dir, "caller", "How long do I have to return something?", 7.0, 14.0);
    // linphonec offers Opus and Speex first; the server must pick G.711.
    let reply = linphonec_call(&dir, &mic, &format!("sip:ivr@{}", server.sip), 15182, 21100, 24);
    let text = heard(&reply);
    assert!(text.contains("30 days"), "the return window: {text}");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs.len(), 1);
    assert!(recs[0]["media"]["packets_in"].as_u64().unwrap() > 300, "{}", recs[0]);
}

#[test]
fn baresip_caller_asking_for_a_person_ends_up_calling_the_agent() {
    let dir = tempdir("baresip-refer");
    let agent_port = 15184;
    let server = serve_sip(&dir, 18612, &format!("transfer_target = \"sip:agent@127.0.0.1:{agent_port}\"\n"));
    let mut agent = agent_phone(&dir, agent_port);
    let mic = caller_wav(&dir, "caller", "I want to talk to a person.", 7.0, 6.0);
    let recordings = baresip_call(&dir, &mic, &format!("sip:ivr@{}", server.sip), 15186, 21200);
    // The agent's phone took exactly one call and saw it hung up.
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            panic!("the agent's phone was never called: {}", std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "agent: {}", std::fs::read_to_string(dir.join("agent-errors.log")).unwrap_or_default());
    assert_eq!(recordings.len(), 2, "the bot's call, then the agent's");
    let text = heard(&recordings[0]);
    assert!(text.contains("putting you through"), "{text}");
    let recs = records(&server.records, 1, 10);
    assert_eq!(recs[0]["actions"][0]["action"], "transfer", "{}", recs[0]);
    assert_eq!(recs[0]["actions"][0]["reason"], "caller_request", "{}", recs[0]);
}

/// Kamailio as a stateful, record-routing proxy in front of `ivr serve`.
/// Its workers are children of the main process: all go with the process group.
struct Kamailio {
    _group: Group,
    addr: String,
}

fn kamailio(dir: &Path, port: u16, ivr: &str) -> Kamailio {
    let cfg = format!(
        r#"#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
listen=udp:127.0.0.1:{port}
listen=tcp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"

request_route {{
	if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
	if (has_totag()) {{
		# Inside a dialog only the recorded route is followed: a request without it is refused.
		if (loose_route()) {{ t_relay(); exit; }}
		if (is_method("ACK")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
		sl_send_reply("404", "No route set"); exit;
	}}
	if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
	t_check_trans();
	if (is_method("INVITE")) {{ record_route(); }}
	$du = "sip:{ivr}";
	t_relay();
}}
"#
    );
    let path = dir.join("kamailio.cfg");
    std::fs::write(&path, cfg).unwrap();
    let run_dir = dir.join("kamailio-run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let group = Group::spawn(
        Command::new("kamailio")
            .args(["-f", path.to_str().unwrap(), "-DD", "-E", "-Y", run_dir.to_str().unwrap(), "-P"])
            .arg(run_dir.join("kamailio.pid"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kamailio.log")).unwrap()),
    )
    .expect("kamailio runs (scripts/setup.sh installs it)");
    // Ready once its UDP port is taken.
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < until, "kamailio did not start: {}", std::fs::read_to_string(dir.join("kamailio.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    Kamailio { _group: group, addr: format!("127.0.0.1:{port}") }
}

#[test]
fn calls_through_kamailio_follow_its_record_route() {
    let dir = tempdir("kamailio");
    let server = serve_sip(&dir, 18613, "");
    let proxy = kamailio(&dir, 15190, &server.sip);
    // The caller's question, answer and BYE: ACK and BYE carry the Route Kamailio recorded.
    let question = caller_ulaw(&dir, "How long does standard delivery take?");
    let vars = [("question", question.to_str().unwrap()), ("listen_ms", "14000")];
    assert!(sipp_over("call-question.xml", &proxy.addr, &vars, &dir, "u1"), "a call through Kamailio");
    // The bot hangs up: its BYE must carry the route set, or Kamailio answers 404 and sipp never
    // sees it.
    assert!(sipp_over("dtmf-zero.xml", &proxy.addr, &[], &dir, "u1"), "the bot's BYE through Kamailio");
    let recs = records(&server.records, 2, 10);
    assert_eq!(recs.len(), 2);
    assert!(said(&recs[0], "bot").iter().any(|t| t.contains("3 to 5 business days")), "{}", recs[0]);
    assert_eq!(recs[0]["ended_by"], "caller");
    assert_eq!(recs[1]["ended_by"], "bot");
}


#[test]
fn an_agent_phone_registers_with_digest_and_takes_the_transferred_call() {
    let dir = tempdir("registrar");
    // baresip 1.0 knows only MD5 digest and gives up ("Function not implemented") when SHA-256 is
    // offered at all, even second: a registrar for such phones offers MD5 alone.
    let server = serve_sip(
        &dir,
        18614,
        "transfer_target = \"sip:agent1@ivr.invalid\"\n\
         [sip.registrar]\nrealm = \"lumen\"\nalgorithms = [\"MD5\"]\naccounts = [{ user = \"agent1\", password = \"s3cret\" }]\n",
    );
    let greeting = caller_wav(&dir, "agent", "Hello, this is Anna from customer service.", 1.0, 20.0);
    let account = format!("<sip:agent1@{}>;auth_pass=s3cret;regint=60;answermode=auto", server.sip);
    let agent_log = dir.join("agent.log");
    let _agent = Group::spawn(baresip(&dir, "agent", &greeting, &account, 15192, 21300).stdout(std::fs::File::create(&agent_log).unwrap()).stderr(Stdio::null()))
        .expect("baresip runs");
    assert!(wait_for(&agent_log, "200 OK", 15), "the agent's phone did not register: {}", std::fs::read_to_string(&agent_log).unwrap_or_default());
    // A caller asks for a person; the REFER names the agent's registered address, not the
    // configured (unresolvable) domain.
    let mic = caller_wav(&dir, "caller", "I want to talk to a person.", 7.0, 6.0);
    let recordings = baresip_call(&dir, &mic, &format!("sip:ivr@{}", server.sip), 15194, 21400);
    assert_eq!(recordings.len(), 2, "the bot's call, then the agent's: {}", std::fs::read_to_string(dir.join("baresip.log")).unwrap_or_default());
    let text = heard(&recordings[1]);
    assert!(text.contains("anna"), "the caller hears the agent: {text}");
    assert_eq!(baresip_heard(&dir, "agent").len(), 1, "the agent's phone took one call");
}

#[test]
fn a_sipp_phone_registers_with_md5_digest() {
    let dir = tempdir("registrar-md5");
    let server = serve_sip(&dir, 18615, "[sip.registrar]\nalgorithms = [\"MD5\"]\naccounts = [{ user = \"agent2\", password = \"pa55\" }]\n");
    // Challenged, answers with MD5, is registered; a wrong password is challenged again; then
    // unregisters.
    assert!(sipp_over("register.xml", &server.sip, &[("user", "agent2"), ("password", "pa55")], &dir, "u1"), "REGISTER with MD5");
}

#[test]
fn linphonec_registers_with_sha256_digest() {
    let dir = tempdir("registrar-sha256");
    let server = serve_sip(&dir, 18616, "[sip.registrar]\nalgorithms = [\"SHA-256\"]\naccounts = [{ user = \"agent3\", password = \"pw3\" }]\n");
    assert_eq!(health(&server.http)["sip"]["phones_registered"], 0);
    let rc = format!(
        "register_only_when_network_is_up=0\n[rtp]\nbind_address=127.0.0.1\n\
         [proxy_0]\nreg_proxy=<sip:{sip}>\nreg_identity=sip:agent3@{sip}\nreg_expires=120\nreg_sendregister=1\n\
         [auth_info_0]\nusername=agent3\npasswd=pw3\nrealm=ivr\n",
        sip = server.sip
    );
    let (child, stdin) = linphonec(&dir, &rc, 15196);
    let until = Instant::now() + Duration::from_secs(20);
    let mut registered = 0;
    while registered == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(300));
        registered = health(&server.http)["sip"]["phones_registered"].as_u64().unwrap();
    }
    quit_linphonec(child, stdin);
    assert_eq!(registered, 1, "linphonec answered the SHA-256 challenge");
}
