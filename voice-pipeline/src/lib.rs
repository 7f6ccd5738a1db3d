//! The voice side of a call: audio handling, voice activity detection, speech-to-text and
//! text-to-speech, each with its models loaded once and shared by every call.
//!
//! One caller turn flows: transport audio -> [`audio`] (decode, resample to 16 kHz) -> [`vad`]
//! (speech start/end) -> [`stt`] (Whisper text) -> dialogue -> [`tts`] (Piper audio at the
//! transport's rate) -> transport. [`session`] is the per-call state machine that runs those steps
//! as jobs and takes turns with the caller (endpointing, barge-in, fillers, keypad).

/// Audio shared with the transports (the 16 kHz / 20 ms frame, G.711, resampling, files).
pub use ivr_audio as audio;
#[cfg(feature = "live-audio")]
pub mod live;
pub mod onnx;
pub mod priority;
pub mod session;
pub mod stt;
pub mod tts;
pub mod turn;
pub mod vad;
pub mod wer;

use ivr_models::ModelDir;

/// One-time process set-up for the speech models: loads ONNX Runtime from `models/` and points the
/// phonemiser at the system's espeak-ng data. Call at start-up, before starting threads.
pub fn init_runtime(models: &ModelDir) -> anyhow::Result<()> {
    tts::use_system_espeak_data()?;
    onnx::init(&models.onnxruntime_lib())?;
    Ok(())
}
