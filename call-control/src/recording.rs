//! Call recordings: each call's audio as a stereo WAV (caller left, bot right, 16 kHz), written by
//! one thread for all calls, so a slow disk never delays a call's 20 ms tick. Call threads hand
//! frames over a bounded queue without waiting; if the writer falls behind, frames are dropped and
//! counted (`ivr_recording_frames_dropped_total`) rather than making the caller wait.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::LazyLock;

use ivr_audio::wav::StereoWriter;
use ivr_audio::{FRAME_SAMPLES, RATE};

/// `[records]` in the config: where call records and recordings go.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// The store: `sqlite://records/calls.db` (a file, relative to the working directory) or
    /// `postgres://user@host/db` (shared by several servers).
    pub url: String,
    /// This server's name in the store (default: the host name). Servers sharing a store need
    /// different names: at start a server marks its own unfinished calls as interrupted.
    pub server: Option<String>,
    /// Record each call's audio (stereo WAV: caller left, bot right).
    pub audio: bool,
    /// Where recordings are written, one file per call (relative to the working directory).
    pub dir: PathBuf,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self { url: "sqlite://records/calls.db".into(), server: None, audio: true, dir: "records/audio".into() }
    }
}

enum Msg {
    Open { call: u64, path: PathBuf },
    /// One frame of each side: (caller, bot), in one allocation.
    Frame { call: u64, sides: Box<([f32; FRAME_SAMPLES], [f32; FRAME_SAMPLES])> },
    Close { call: u64 },
}

static DROPPED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    prometheus::register_int_counter!("ivr_recording_frames_dropped_total", "Recording frames dropped because the disk writer fell behind")
        .expect("registers once")
});

/// The recording thread of a server.
pub struct Recorder {
    tx: SyncSender<Msg>,
    dir: PathBuf,
}

impl Recorder {
    /// Starts the writer thread; recordings go under `dir` (created when needed).
    pub fn start(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Ten seconds of frames for 200 calls.
        let (tx, rx) = mpsc::sync_channel(200 * 500);
        std::thread::Builder::new().name("ivr-recorder".into()).spawn(move || write_all(rx))?;
        Ok(Self { tx, dir: dir.to_path_buf() })
    }

    /// A new call's recording; its file is `dir/<started>-<call id>.wav` (the id made safe for
    /// a file name).
    pub fn open(&self, call: u64, call_id: &str, started: &str) -> CallRecording {
        let safe: String = format!("{started}-{call_id}").chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        let path = self.dir.join(format!("{safe}.wav"));
        let _ = self.tx.send(Msg::Open { call, path: path.clone() });
        CallRecording { call, tx: self.tx.clone(), path }
    }
}

/// One call's handle on the recorder; closing it (or dropping it) finishes the file.
pub struct CallRecording {
    call: u64,
    tx: SyncSender<Msg>,
    pub path: PathBuf,
}

impl CallRecording {
    /// Queues one 20 ms frame of each side; never blocks.
    pub fn frame(&self, caller: &[f32; FRAME_SAMPLES], bot: &[f32; FRAME_SAMPLES]) {
        match self.tx.try_send(Msg::Frame { call: self.call, sides: Box::new((*caller, *bot)) }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => DROPPED.inc(),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

impl Drop for CallRecording {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Close { call: self.call });
    }
}

fn write_all(rx: Receiver<Msg>) {
    let mut open: HashMap<u64, StereoWriter> = HashMap::new();
    for msg in rx {
        match msg {
            Msg::Open { call, path } => match StereoWriter::create(&path, RATE) {
                Ok(w) => {
                    open.insert(call, w);
                }
                Err(e) => tracing::error!("recording not written: {e}"),
            },
            Msg::Frame { call, sides } => {
                if let Some(w) = open.get_mut(&call) {
                    if let Err(e) = w.write(&sides.0, &sides.1) {
                        tracing::error!("recording stopped: {e}");
                        open.remove(&call);
                    }
                }
            }
            Msg::Close { call } => {
                if let Some(w) = open.remove(&call) {
                    if let Err(e) = w.finalize() {
                        tracing::error!("recording not finished: {e}");
                    }
                }
            }
        }
    }
}
