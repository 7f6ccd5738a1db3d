//! Writing WAV files with hound (16-bit PCM).

use std::path::Path;

use super::{f32_to_i16, Audio};

#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write WAV: {source}")]
pub struct WavWriteError {
    pub path: std::path::PathBuf,
    pub source: hound::Error,
}

/// Writes mono audio as 16-bit PCM.
pub fn write_wav(path: &Path, audio: &Audio) -> Result<(), WavWriteError> {
    write_channels(path, audio.rate, &[&audio.samples])
}

/// Writes several equally long channels (shorter ones padded with silence) as 16-bit PCM.
pub fn write_channels(path: &Path, rate: u32, channels: &[&[f32]]) -> Result<(), WavWriteError> {
    let err = |source| WavWriteError { path: path.to_path_buf(), source };
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    let len = channels.iter().map(|c| c.len()).max().unwrap_or(0);
    for i in 0..len {
        for c in channels {
            w.write_sample(f32_to_i16(c.get(i).copied().unwrap_or(0.0))).map_err(err)?;
        }
    }
    w.finalize().map_err(err)
}
