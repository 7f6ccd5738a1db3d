//! `ivr serve` loads the models and answers health checks (loopback only; the test command runs the
//! suite inside a network namespace with only `lo` up).

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

fn request(addr: &str, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(raw).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_loads_the_models_and_answers_healthz() {
    let mut child = ivr().args(["serve", "--http", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no address in {line:?}")
    });
    let ok = request(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let missing = request(addr, b"GET /nothing HTTP/1.1\r\n\r\n");
    let garbage = request(addr, b"\x00\xff garbage\r\n\r\n");
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let body: serde_json::Value = serde_json::from_str(ok.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["voices"][0], "en");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
}
