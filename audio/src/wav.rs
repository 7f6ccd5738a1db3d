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

/// A two-channel 16-bit WAV written as it happens (a call's recording: caller left, bot right).
/// `finalize` writes the lengths into the header; a file cut off before it still holds the audio.
pub struct StereoWriter {
    path: std::path::PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl StereoWriter {
    pub fn create(path: &Path, rate: u32) -> Result<Self, WavWriteError> {
        let spec = hound::WavSpec { channels: 2, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let writer = hound::WavWriter::create(path, spec).map_err(|source| WavWriteError { path: path.to_path_buf(), source })?;
        Ok(Self { path: path.to_path_buf(), writer })
    }

    /// Appends equally long left and right samples (the shorter is padded with silence).
    pub fn write(&mut self, left: &[f32], right: &[f32]) -> Result<(), WavWriteError> {
        for i in 0..left.len().max(right.len()) {
            for s in [left.get(i), right.get(i)] {
                self.writer
                    .write_sample(f32_to_i16(s.copied().unwrap_or(0.0)))
                    .map_err(|source| WavWriteError { path: self.path.clone(), source })?;
            }
        }
        Ok(())
    }

    pub fn finalize(self) -> Result<(), WavWriteError> {
        let path = self.path;
        self.writer.finalize().map_err(|source| WavWriteError { path, source })
    }
}
