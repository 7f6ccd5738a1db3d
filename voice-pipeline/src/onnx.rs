//! ONNX Runtime, loaded from the library that setup fetched into `models/`.
//!
//! `ort` is built with `load-dynamic`, so nothing is downloaded at build time and nobody has to export
//! `ORT_DYLIB_PATH`: the program names the library itself, once, before the first session.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("{path}: cannot load ONNX Runtime: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{path}: cannot load ONNX model: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("ONNX inference failed: {0}")]
    Run(String),
}

static RUNTIME: OnceLock<Result<PathBuf, OnnxError>> = OnceLock::new();

/// Loads ONNX Runtime from `library` (the first call wins; later calls report its outcome).
pub fn init(library: &Path) -> Result<(), OnnxError> {
    RUNTIME
        .get_or_init(|| {
            if !library.is_file() {
                return Err(OnnxError::Load {
                    path: library.to_path_buf(),
                    reason: "file not found; run scripts/setup.sh".into(),
                });
            }
            let builder = ort::init_from(library)
                .map_err(|e| OnnxError::Load { path: library.to_path_buf(), reason: e.to_string() })?;
            // One environment for the process; each session sets its own thread counts.
            let _ = builder.with_name("ivr").commit();
            Ok(library.to_path_buf())
        })
        .clone()
        .map(|_| ())
}

/// Opens a model with a fixed number of intra-op threads (sessions are small; the cores are shared
/// with Whisper and the LLM, so no session may take them all).
pub fn session(model: &Path, threads: usize) -> Result<ort::session::Session, OnnxError> {
    let err = |e: &dyn std::fmt::Display| OnnxError::Model { path: model.to_path_buf(), reason: e.to_string() };
    if !model.is_file() {
        return Err(err(&"file not found"));
    }
    // Built on a lowered thread: the session's pool threads start lowered (they only ever run a
    // model; the VAD's session has no pool, it runs on the call's own thread).
    crate::priority::made_lowered(|| {
        let mut builder = ort::session::Session::builder().map_err(|e| err(&e))?;
        builder = builder.with_intra_threads(threads.max(1)).map_err(|e| err(&e))?;
        builder = builder.with_inter_threads(1).map_err(|e| err(&e))?;
        // ONNX Runtime's pool threads spin after each run by default, burning the core that the
        // calls' 20 ms media ticks need.
        builder = builder.with_intra_op_spinning(false).map_err(|e| err(&e))?;
        builder.commit_from_file(model).map_err(|e| err(&e))
    })
}
