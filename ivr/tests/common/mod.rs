//! Helpers shared by the end-to-end tests: they run the real `ivr` binary on the real models that
//! `scripts/setup.sh` fetched (no fakes), and read fixtures from audio-fixtures/.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A process started in a process group of its own, killed with everything it started (Kamailio's
/// workers, the program behind `timeout`) when dropped: when the test ends, also when it fails.
pub struct Group(pub std::process::Child);

impl Group {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().map(Group)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(self.0.id());
        let _ = self.0.wait();
    }
}

/// SIGKILL to the whole process group `pgid`.
pub fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-(pgid as i32), libc::SIGKILL);
    }
}

/// Runs `cmd` to its end in a group of its own (as [`Group`]) and returns its output; whatever it
/// left running is killed.
pub fn output_in_group(cmd: &mut Command) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt;
    let child = cmd.process_group(0).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn()?;
    let pgid = child.id();
    let out = child.wait_with_output();
    kill_group(pgid);
    out
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("audio-fixtures").join(rel)
}

pub fn ivr() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ivr"));
    cmd.current_dir(repo());
    cmd
}

/// Runs `ivr ARGS`, returning (success, stdout, stderr); asserts it never panicked.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output { status, stdout, stderr } = cmd.output().expect("ivr runs");
    let (out, err) = (String::from_utf8_lossy(&stdout).into_owned(), String::from_utf8_lossy(&stderr).into_owned());
    assert!(!err.contains("panicked"), "ivr panicked: {err}");
    assert!(status.code().is_some(), "ivr was killed by a signal: {err}");
    (status.success(), out, err)
}

pub fn ivr_ok(args: &[&str]) -> String {
    let (ok, out, err) = run(ivr().args(args));
    assert!(ok, "ivr {args:?} failed: {err}");
    out
}

/// The last JSON line of an output.
pub fn last_json(out: &str) -> serde_json::Value {
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON in {out}"));
    serde_json::from_str(line).expect("valid JSON")
}

pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ivr-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn models() -> ivr_models::ModelDir {
    ivr_models::ModelDir::new(repo().join("models"))
}

/// `ivr serve` on free ports (HTTP and SIP) with the config `toml`; killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    /// "127.0.0.1:port" of each.
    pub http: String,
    pub sip: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        // The server and its LLM worker (which would follow it anyway, by PR_SET_PDEATHSIG).
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &Path, toml: &str) -> Served {
    serve_env(dir, toml, &[])
}

/// [`serve`] with these environment variables (`IVR_LOG` for a test that reads the log).
pub fn serve_env(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    // The store and the recordings go to the test's directory, not the working directory.
    let toml = if toml.contains("[records]") {
        toml.to_string()
    } else {
        format!("{toml}\n[records]\nurl = \"sqlite://{}\"\ndir = \"{}\"\n", dir.join("records/calls.db").display(), dir.join("audio").display())
    };
    std::fs::write(dir.join("ivr.toml"), toml).expect("config");
    let mut child = ivr()
        .process_group(0)
        .args(["--config", dir.join("ivr.toml").to_str().unwrap(), "serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ivr serve starts");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("models loaded") {
        line.clear();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = child.kill();
            panic!("ivr serve ended before listening");
        }
    }
    // Keep reading what the server logs, as a terminal would, into the test's directory (to read
    // when a test fails).
    let mut log = std::fs::File::create(dir.join("server.log")).expect("server log");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut log));
    let after = |marker: &str| line.split(marker).nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string);
    match (after("http://"), after("sip:ivr@")) {
        (Some(http), Some(sip)) => Served { child, http, sip },
        _ => {
            let _ = child.kill();
            panic!("no addresses in {line:?}")
        }
    }
}

/// The lines `who` ("caller" or "bot") said in a call record's (or `ivr simulate --json`'s)
/// transcript.
pub fn said(record: &serde_json::Value, who: &str) -> Vec<String> {
    let lines = record["transcript"].as_array().map(Vec::as_slice).unwrap_or_default();
    lines.iter().filter(|l| l["who"] == who).filter_map(|l| l["text"].as_str().map(str::to_string)).collect()
}

/// A raw HTTP request to `addr`; the whole response.
/// Raw bytes to an HTTP port, the answer read until the server closes: for malformed requests
/// that a real client cannot send.
pub fn request(addr: &str, raw: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(raw).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The server's `/healthz` document.
pub fn health(addr: &str) -> serde_json::Value {
    get(addr, "/healthz").1
}

/// GET `path`: the status and the JSON body (null when it is not JSON).
pub fn get(addr: &str, path: &str) -> (u16, serde_json::Value) {
    let r = reqwest::blocking::get(format!("http://{addr}{path}")).unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().unwrap()).unwrap_or_default())
}

// --- SIP calls on loopback -------------------------------------------------------------------

/// `ivr serve` with its own LLM port and a records file; `sip_extra` adds `[sip]` settings.
pub struct Server {
    /// Keeps the server running (killed when the test ends).
    _served: Served,
    pub sip: String,
    pub http: String,
    /// The server's config file (`records` reads its store through `ivr records export`).
    pub records: PathBuf,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self._served.child.id()
    }

    /// Sends the server a signal (e.g. "TERM").
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill").args([&format!("-{name}"), &self._served.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{name}");
    }

    /// Waits up to `secs` for the server to exit; its exit status, if it did.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = self._served.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        None
    }
}

pub fn serve_sip(dir: &Path, llm_port: u16, sip_extra: &str) -> Server {
    let toml = format!("[llm]\nurl = \"http://127.0.0.1:{llm_port}\"\n[sip]\n{sip_extra}");
    let served = serve(dir, &toml);
    Server { sip: served.sip.clone(), http: served.http.clone(), _served: served, records: dir.join("ivr.toml") }
}

/// A caller recording as raw mu-law at 8 kHz (what sipp streams): 6 s of silence (the greeting
/// plays meanwhile), then `text` spoken by espeak-ng.
pub fn caller_ulaw(dir: &Path, text: &str) -> PathBuf {
    let run = |args: &[&str]| assert!(std::process::Command::new(args[0]).args(&args[1..]).status().unwrap().success(), "{args:?}");
    let p = |name: &str| dir.join(name).display().to_string();
    run(&["espeak-ng", "-v", "en-us", "-s", "150", "-w", &p("q.wav"), text]);
    run(&["sox", &p("q.wav"), "-r", "8000", "-c", "1", &p("q8.wav")]);
    run(&["sox", "-n", "-r", "8000", "-c", "1", &p("pad.wav"), "trim", "0", "6"]);
    run(&["sox", &p("pad.wav"), &p("q8.wav"), "-t", "ul", &p("q.ulaw")]);
    dir.join("q.ulaw")
}

/// Runs a sipp scenario from sip-bridge/tests/sipp with its placeholders filled.
pub fn sipp(scenario: &str, target: &str, vars: &[(&str, &str)], dir: &Path) -> bool {
    sipp_over(scenario, target, vars, dir, "u1")
}

/// A scenario from sip-bridge/tests/sipp with its `[name]` placeholders filled.
fn scenario_xml(scenario: &str, vars: &[(&str, &str)]) -> String {
    let mut xml = std::fs::read_to_string(repo().join("sip-bridge/tests/sipp").join(scenario)).unwrap();
    for (k, v) in vars {
        xml = xml.replace(&format!("[{k}]"), v);
    }
    // The demo customer's number unless the test names its caller.
    xml.replace("[caller]", "+4930111222")
}

/// As [`sipp`], over a given transport ("u1" UDP, "t1" TCP).
pub fn sipp_over(scenario: &str, target: &str, vars: &[(&str, &str)], dir: &Path, transport: &str) -> bool {
    let xml = scenario_xml(scenario, vars);
    // Ports of their own, so scenarios can run side by side.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (sip_port, media_port) = (15091 + k, 17000 + 100 * k);
    let path = dir.join(scenario);
    std::fs::write(&path, xml).unwrap();
    let status = std::process::Command::new("sipp")
        .arg(target)
        .arg("-sf")
        .arg(&path)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &sip_port.to_string(), "-mp", &media_port.to_string()])
        .args(["-t", transport, "-timeout", "60s", "-nostdin", "-trace_err", "-error_file"])
        .arg(dir.join("sipp-errors.log"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("sipp runs (scripts/setup.sh installs sip-tester)");
    if !status.success() {
        eprintln!("{}", std::fs::read_to_string(dir.join("sipp-errors.log")).unwrap_or_default());
    }
    status.success()
}

/// Every call in the store of the server configured by `config`, finished or not.
pub fn all_calls(config: &Path) -> Vec<serde_json::Value> {
    export(config, "calls")
}

/// `ivr records export --kind <kind>` of the store of the server configured by `config`.
pub fn export(config: &Path, kind: &str) -> Vec<serde_json::Value> {
    let out = ivr().arg("--config").arg(config).args(["records", "export", "--kind", kind]).output().expect("ivr records export runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A sipp caller running in the background (killed when dropped).
pub struct SippCall(pub std::process::Child);

impl Drop for SippCall {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a sipp scenario without waiting for it (ports of its own, as `sipp_over`).
pub fn sipp_spawn(scenario: &str, target: &str, vars: &[(&str, &str)], dir: &Path, k: u16) -> SippCall {
    let xml = scenario_xml(scenario, vars);
    let path = dir.join(format!("{k}-{scenario}"));
    std::fs::write(&path, xml).unwrap();
    let child = std::process::Command::new("sipp")
        .arg(target)
        .arg("-sf")
        .arg(&path)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &(15500 + k).to_string(), "-mp", &(26000 + 100 * k).to_string()])
        .args(["-timeout", "90s", "-nostdin"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp runs");
    SippCall(child)
}

/// The finished calls in the store of the server configured by `config` (waiting up to `secs`
/// for `n` of them), as `ivr records export` gives them, oldest first.
pub fn records(config: &Path, n: usize, secs: u64) -> Vec<serde_json::Value> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let calls: Vec<serde_json::Value> = all_calls(config).into_iter().filter(|c| !c["ended_at"].is_null()).collect();
        if calls.len() >= n || std::time::Instant::now() > until {
            return calls;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

// --- softphones (baresip) and recordings, shared by the softphone and agent tests ---

pub fn run_ok(args: &[&str]) {
    let ok = Command::new(args[0]).args(&args[1..]).status().unwrap_or_else(|e| panic!("{}: {e}", args[0])).success();
    assert!(ok, "{args:?}");
}

/// A caller's microphone for a softphone: 8 kHz 16-bit mono WAV with `lead` seconds of silence
/// (the greeting plays meanwhile), `text` spoken by espeak-ng, then `tail` seconds of silence to
/// hear the answer in (the softphones hang up when the file ends).
pub fn caller_wav(dir: &Path, name: &str, text: &str, lead: f32, tail: f32) -> PathBuf {
    let p = |suffix: &str| dir.join(format!("{name}-{suffix}.wav")).display().to_string();
    run_ok(&["espeak-ng", "-v", "en-us", "-s", "150", "-w", &p("tts"), text]);
    padded(dir, name, lead, tail)
}

/// A person's sentence (what an agent says to a caller, or a caller to an agent) in the project's
/// Piper voice, 8 kHz, with silence around it. A person is recognised on the other side of a
/// bridge by the words heard; espeak's robotic voice through Opus and G.711 decodes into other
/// words on some CPUs ("delivery, it is very late" as "delu, it is mari-laid"), Piper's does not.
pub fn person_wav(dir: &Path, name: &str, text: &str, lead: f32, tail: f32) -> PathBuf {
    let tts = dir.join(format!("{name}-tts.wav"));
    ivr_ok(&["say", text, "-o", tts.to_str().unwrap(), "--rate", "8000"]);
    padded(dir, name, lead, tail)
}

/// `dir/name-tts.wav` at 8 kHz with `lead` and `tail` seconds of silence, as `dir/name.wav`.
fn padded(dir: &Path, name: &str, lead: f32, tail: f32) -> PathBuf {
    let p = |suffix: &str| dir.join(format!("{name}-{suffix}.wav")).display().to_string();
    run_ok(&["sox", &p("tts"), "-r", "8000", "-c", "1", "-b", "16", &p("say")]);
    run_ok(&["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", &p("lead"), "trim", "0", &lead.to_string()]);
    run_ok(&["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", &p("tail"), "trim", "0", &tail.to_string()]);
    let out = dir.join(format!("{name}.wav"));
    run_ok(&["sox", &p("lead"), &p("say"), &p("tail"), out.to_str().unwrap()]);
    out
}

/// What the project's STT hears in a recording, lower-cased.
pub fn heard(wav: &Path) -> String {
    let out = ivr_ok(&["transcribe", wav.to_str().unwrap()]);
    out.to_lowercase()
}

/// What the project's STT hears in a recording, speech segment by speech segment (`ivr vad`
/// finds them; each is cut out with 0.3 s around it and transcribed on its own), lower-cased and
/// joined. Long recordings that are mostly silence (a caller on hold, an agent waiting) make
/// Whisper's 30 s windows hallucinate over the silence; segments do not.
pub fn heard_segments(wav: &Path) -> String {
    let vad = ivr_ok(&["vad", wav.to_str().unwrap()]);
    let mut parts = Vec::new();
    for (i, line) in vad.lines().enumerate() {
        let mut t = line.split_whitespace().filter_map(|x| x.parse::<f64>().ok());
        let (Some(start), Some(end)) = (t.next(), t.next()) else { continue };
        let from = (start - 0.3).max(0.0);
        let part = wav.with_file_name(format!("{}-seg{i:03}.wav", wav.file_stem().unwrap().to_string_lossy()));
        run_ok(&["sox", wav.to_str().unwrap(), part.to_str().unwrap(), "trim", &format!("{from:.2}"), &format!("{:.2}", end + 0.3 - from)]);
        parts.push(part);
    }
    if parts.is_empty() {
        return String::new();
    }
    let args: Vec<&str> = std::iter::once("transcribe").chain(parts.iter().map(|p| p.to_str().unwrap())).collect();
    let out = ivr_ok(&args);
    out.lines().filter_map(|l| l.split_once(']').map(|(_, text)| text.trim().to_lowercase())).collect::<Vec<_>>().join(" ")
}

/// How many of `words` were heard in `text` after the first `after` (all of `text` when `after`
/// is empty). Speech that espeak voices and a codec carries decodes differently on different CPUs
/// ("delivery" may come out "delu"), so a person's sentence is recognised by several of its words,
/// never by one; `after` keeps words the bot said earlier (its greeting's "help") from counting.
pub fn words_heard(text: &str, after: &str, words: &[&str]) -> usize {
    let tail = match text.find(after) {
        Some(i) if !after.is_empty() => &text[i + after.len()..],
        Some(_) => text,
        None => "",
    };
    let heard: Vec<String> = tail.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
    words.iter().filter(|w| heard.iter().any(|h| h == *w)).count()
}

/// A baresip configured in `dir/name` with `mic` as its microphone and account line `account`,
/// recording both directions of each call (module sndfile) into `dir/name/rec`.
pub fn baresip(dir: &Path, name: &str, mic: &Path, account: &str, sip_port: u16, rtp_port: u16) -> Command {
    baresip_for(dir, name, mic, account, sip_port, rtp_port, 120)
}

/// [`baresip`], killed after `secs` at the latest.
pub fn baresip_for(dir: &Path, name: &str, mic: &Path, account: &str, sip_port: u16, rtp_port: u16, secs: u32) -> Command {
    let home = dir.join(name);
    let rec = home.join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    // No audio player: with ALSA's null device baresip's player thread spins a whole core, which
    // starves the server under test. Module sndfile still records the decoded audio.
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\n\
         audio_source aufile,{mic}\naudio_srate 8000\naudio_channels 1\n\
         rtp_ports {rtp_port}-{}\nmodule_path /usr/lib/baresip/modules\n\
         module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule stdio.so\n\
         module_app account.so\nmodule_app menu.so\nsnd_path {rec}\n",
        rtp_port + 20,
        mic = mic.display(),
        rec = rec.display()
    );
    std::fs::write(home.join("config"), config).unwrap();
    std::fs::write(home.join("accounts"), format!("{account}\n")).unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args([&secs.to_string(), "baresip", "-f", home.to_str().unwrap()]).stdin(Stdio::null());
    cmd
}

/// What a baresip heard, one recording per call, oldest first.
pub fn baresip_heard(dir: &Path, name: &str) -> Vec<PathBuf> {
    let rec = dir.join(name).join("rec");
    let mut heard: Vec<PathBuf> = std::fs::read_dir(&rec).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with("-dec.wav")).collect();
    heard.sort();
    heard
}

/// Kills a child process when dropped.
/// Waits until `file` contains `text`.
pub fn wait_for(file: &Path, text: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if std::fs::read_to_string(file).unwrap_or_default().contains(text) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// Waits (up to `secs`) until `f` holds, looking every 300 ms.
pub fn wait_until(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

/// `ivr agents ...` with the password on standard input; returns (success, stdout, stderr).
pub fn agents(config: &Path, args: &[&str], password: &str) -> (bool, String, String) {
    let mut child = ivr()
        .args(["--config", config.to_str().unwrap(), "agents"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ivr agents runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The CRM's webhook: takes up to `count` POSTs on `listener` (answering 204), for at most a minute
/// in all, and returns their bodies.
pub fn webhook_bodies(listener: std::net::TcpListener, count: usize) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(async move {
            listener.set_nonblocking(true).expect("non-blocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("the listener");
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let app = axum::Router::new().fallback(axum::routing::post(move |body: String| async move {
                let _ = tx.send(body);
                axum::http::StatusCode::NO_CONTENT
            }));
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let mut bodies = Vec::new();
            let until = tokio::time::Instant::now() + Duration::from_secs(60);
            while bodies.len() < count {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(b)) => bodies.push(b),
                    _ => break,
                }
            }
            server.abort();
            bodies
        })
    })
}

/// A server with the agents' queue: `[sip]` with `sip` lines, `[sip.queue]` with `queue` lines, a
/// registrar for the agents' phones (MD5 only: baresip 1.0 gives up when SHA-256 is offered), the
/// LLM worker on `llm_port`, the store and recordings in `dir`; written to `dir/ivr.toml`, whose
/// path is returned with the text.
pub fn queue_config(dir: &Path, llm_port: u16, sip: &str, queue: &str) -> (String, PathBuf) {
    let toml = format!(
        "[llm]\nurl = \"http://127.0.0.1:{llm_port}\"\n[sip]\n{sip}[sip.queue]\n{queue}\
         [sip.registrar]\nrealm = \"lumen\"\nalgorithms = [\"MD5\"]\n\
         [records]\nurl = \"sqlite://{}\"\ndir = \"{}\"\n",
        dir.join("records/calls.db").display(),
        dir.join("audio").display()
    );
    let config = dir.join("ivr.toml");
    std::fs::write(&config, &toml).unwrap();
    (toml, config)
}

// --- the browser tests' drivers (node with playwright-core or puppeteer-core) ---

/// Runs `ivr/tests/browser/<script>` with `env`; what the page showed (its last JSON line).
pub fn node(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> serde_json::Value {
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("ivr/tests/browser").join(script)).current_dir(repo());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output_in_group(&mut cmd).expect("node runs (scripts/setup.sh installs nodejs and playwright-core)");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_else(|_| panic!("{text}\n{}", String::from_utf8_lossy(&out.stderr)))
}

/// Keeps a screenshot with the test's artifacts (target/test-artifacts).
pub fn keep(shot: &Path, name: &str) {
    let artifacts = repo().join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _ = std::fs::copy(shot, artifacts.join(name));
}
