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
