//! Helpers shared by the end-to-end tests: they run the real `ivr` binary on the real models that
//! `scripts/setup.sh` fetched (no fakes), and read fixtures from audio-fixtures/.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &Path, toml: &str) -> Served {
    use std::io::BufRead;
    std::fs::write(dir.join("ivr.toml"), toml).expect("config");
    let mut child = ivr()
        .args(["--config", dir.join("ivr.toml").to_str().unwrap(), "serve", "--http", "127.0.0.1:0", "--sip", "127.0.0.1:0"])
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
    // Keep reading what the server logs, as a terminal would.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let after = |marker: &str| line.split(marker).nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string);
    match (after("http://"), after("sip:ivr@")) {
        (Some(http), Some(sip)) => Served { child, http, sip },
        _ => {
            let _ = child.kill();
            panic!("no addresses in {line:?}")
        }
    }
}
