//! `ivr serve` loads the models and answers health checks (loopback only; the test command runs the
//! suite inside a network namespace with only `lo` up).

mod common;
use common::*;

#[test]
fn serve_loads_the_models_and_answers_healthz() {
    let dir = tempdir("serve");
    let server = serve(&dir, "[llm]\nurl = \"http://127.0.0.1:18491\"\n");
    let addr = server.http.as_str();
    let ok = get(addr, "/healthz");
    let missing = get(addr, "/nothing");
    let garbage = request(addr, b"\x00\xff garbage\r\n\r\n");
    let metrics = reqwest::blocking::get(format!("http://{addr}/metrics")).unwrap().text().unwrap();
    // The LLM worker is supervised: killed, it is started again.
    let before = health(addr);
    let pid = before["llm"]["pid"].as_u64();
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let mut after = before.clone();
    for _ in 0..40 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        after = health(addr);
        if after["llm"]["restarts"] == 1 && after["llm"]["healthy"] == true {
            break;
        }
    }
    let metrics_after = reqwest::blocking::get(format!("http://{addr}/metrics")).unwrap().text().unwrap();
    drop(server);
    assert!(metrics_after.contains("ivr_llm_worker_restarts_total 1"), "{metrics_after}");
    assert!(metrics_after.contains("ivr_jobs_queued{lane=\"stt\"} 0"), "{metrics_after}");
    assert_eq!(before["llm"]["healthy"], true, "{before}");
    assert!(pid.is_some(), "{before}");
    assert_eq!(after["llm"]["restarts"], 1, "{after}");
    assert_eq!(after["llm"]["healthy"], true, "{after}");
    assert_ne!(after["llm"]["pid"], before["llm"]["pid"]);
    assert_eq!(ok.0, 200, "{ok:?}");
    assert_eq!(ok.1["status"], "ok");
    assert_eq!(ok.1["voices"][0], "en");
    assert_eq!(missing.0, 404);
    assert_eq!(missing.1["error"]["message"], "no such endpoint");
    assert!(metrics.contains("# TYPE ivr_calls_active gauge") && metrics.contains("ivr_frames_out_total"), "{metrics}");
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
}
