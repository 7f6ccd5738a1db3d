//! Reading audio files (WAV, FLAC, MP3, Ogg Vorbis) with symphonia, down-mixed to mono.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::Audio;

/// Why a file could not be read as audio; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: not a supported audio file (WAV, FLAC, MP3, Ogg Vorbis): {reason}")]
    NotAudio { path: PathBuf, reason: String },
    #[error("{path}: the audio stream is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: contains no audio samples")]
    NoSamples { path: PathBuf },
}

/// Decodes a whole file to mono f32 at its own sample rate (channels are averaged).
pub fn decode_file(path: &Path) -> Result<Audio, DecodeError> {
    let p = || path.to_path_buf();
    let file = File::open(path).map_err(|source| DecodeError::Open { path: p(), source })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(DecodeError::Empty { path: p() });
    }
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| DecodeError::NotAudio { path: p(), reason: e.to_string() })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| DecodeError::NotAudio { path: p(), reason: "no audio track".into() })?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .filter(|&r| r > 0)
        .ok_or_else(|| DecodeError::NotAudio { path: p(), reason: "unknown sample rate".into() })?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| DecodeError::NotAudio { path: p(), reason: e.to_string() })?;

    let mut samples = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(DecodeError::Corrupt { path: p(), reason: e.to_string() }),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged packet is skipped, as players do; a stream of them ends in NoSamples.
            Err(SymError::DecodeError(e)) => {
                tracing::warn!(path = %path.display(), "skipping undecodable packet: {e}");
                continue;
            }
            Err(e) => return Err(DecodeError::Corrupt { path: p(), reason: e.to_string() }),
        };
        let channels = decoded.spec().channels.count().max(1);
        let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        samples.extend(buf.samples().chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32));
    }
    if samples.is_empty() {
        return Err(DecodeError::NoSamples { path: p() });
    }
    Ok(Audio::new(samples, rate))
}
