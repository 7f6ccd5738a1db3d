//! Runs the LLM worker (`ivr-llm`, a separate binary because llama.cpp and whisper.cpp cannot share
//! one) and keeps it alive: started with the server, health-checked every few seconds, restarted
//! when it exits or stops answering.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dialogue::llm::LlmClient;

/// LLM settings (`[llm]` in ivr.toml).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSection {
    /// "embedded" (the bundled SmolLM2 through ivr-llm) or "openai" (any compatible server at `url`).
    pub backend: String,
    /// Where the server listens (embedded: where ivr-llm is started).
    pub url: String,
    /// Model name sent to an "openai" server.
    pub model: String,
    /// CPU threads for the embedded worker (the rest stay with speech).
    pub threads: u32,
    /// A PEM file with the certificate authority of an "openai" server behind HTTPS with the
    /// company's own certificates (trusted besides the usual roots).
    pub ca_file: Option<PathBuf>,
}

impl LlmSection {
    /// The client for the configured server.
    pub fn client(&self) -> Result<LlmClient, dialogue::llm::LlmError> {
        LlmClient::with_ca(&self.url, &self.model, self.ca_file.as_deref())
    }
}

impl Default for LlmSection {
    fn default() -> Self {
        Self { backend: "embedded".into(), url: "http://127.0.0.1:8091".into(), model: "SmolLM2-135M-Instruct".into(), threads: 1, ca_file: None }
    }
}

/// Restarts of the embedded LLM worker, for `/metrics`.
static RESTARTS: std::sync::LazyLock<ivr_web::prometheus::IntCounter> = std::sync::LazyLock::new(|| {
    ivr_web::prometheus::register_int_counter!("ivr_llm_worker_restarts_total", "Restarts of the embedded LLM worker").expect("registers once")
});

pub struct Supervisor {
    pub client: LlmClient,
    child: Arc<Mutex<Option<Child>>>,
    pub restarts: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
}

/// `ivr-llm` beside the running `ivr`.
pub fn worker_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no directory for the running program")?;
    // Test binaries live one level down (target/release/deps).
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let p = d.join("ivr-llm");
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("ivr-llm not found beside {} (build the workspace: cargo build --release)", exe.display())
}

fn spawn(bin: &Path, model: &Path, listen: &str, threads: u32) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin);
    cmd.args(["--model", &model.to_string_lossy(), "--listen", listen, "--threads", &threads.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // The worker must not outlive the server, however the server ends (even SIGKILL).
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))
}

fn wait_healthy(client: &LlmClient, child: &mut Child, within: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < within {
        if client.healthy() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the LLM worker exited while starting ({status})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the LLM worker did not answer its health check within {within:?}")
}

impl Supervisor {
    /// Starts the worker for `cfg` (embedded backend) and a watchdog thread.
    pub fn start(cfg: &LlmSection, model: &Path) -> anyhow::Result<Self> {
        let client = cfg.client()?;
        let listen = cfg.url.trim_start_matches("http://").split('/').next().unwrap_or("127.0.0.1:8091").to_string();
        if !model.is_file() {
            bail!("{}: LLM model not found (run scripts/setup.sh)", model.display());
        }
        let bin = worker_binary()?;
        let mut child = spawn(&bin, model, &listen, cfg.threads)?;
        if let Err(e) = wait_healthy(&client, &mut child, Duration::from_secs(60)) {
            let _ = child.kill();
            return Err(e);
        }
        let child = Arc::new(Mutex::new(Some(child)));
        let restarts = Arc::new(AtomicU32::new(0));
        std::sync::LazyLock::force(&RESTARTS);
        let stop = Arc::new(AtomicBool::new(false));
        let (c, r, s, m, t, cl) = (child.clone(), restarts.clone(), stop.clone(), model.to_path_buf(), cfg.threads, client.clone());
        std::thread::Builder::new().name("llm-watchdog".into()).spawn(move || {
            let mut failures = 0;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(2));
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let exited = c.lock().map(|mut g| g.as_mut().is_none_or(|ch| ch.try_wait().ok().flatten().is_some())).unwrap_or(true);
                failures = if exited || !cl.healthy() { failures + 1 } else { 0 };
                // One missed check can be a long generation holding the socket queue; two are not.
                if exited || failures >= 2 {
                    tracing::warn!(exited, "LLM worker unhealthy; restarting it");
                    let mut guard = c.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(mut old) = guard.take() {
                        let _ = old.kill();
                        let _ = old.wait();
                    }
                    match spawn(&bin, &m, &listen, t).and_then(|mut ch| wait_healthy(&cl, &mut ch, Duration::from_secs(60)).map(|_| ch)) {
                        Ok(ch) => {
                            *guard = Some(ch);
                            r.fetch_add(1, Ordering::Relaxed);
                            RESTARTS.inc();
                            failures = 0;
                        }
                        Err(e) => tracing::error!("cannot restart the LLM worker: {e:#}"),
                    }
                }
            }
        })?;
        Ok(Self { client, child, restarts, stop })
    }

    /// The worker's process id (for tests and diagnostics).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().ok()?.as_ref().map(Child::id)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut g) = self.child.lock() {
            if let Some(mut c) = g.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
