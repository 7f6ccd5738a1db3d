//! Live microphone and speaker through the sound card (cpal/ALSA), for `ivr listen`.

use std::sync::mpsc;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::audio::Audio;

#[derive(Debug, thiserror::Error)]
pub enum LiveAudioError {
    #[error("no {0} sound device found (is there a sound card? on a server, use `ivr transcribe FILE` instead)")]
    NoDevice(&'static str),
    #[error("the {what} sound device cannot be used: {reason} (no usable sound card? on a server, use `ivr transcribe FILE` instead)")]
    Device { what: &'static str, reason: String },
}

/// Mono f32 blocks from the default microphone, at the device's rate.
pub struct Microphone {
    _stream: cpal::Stream,
    pub rate: u32,
    pub blocks: mpsc::Receiver<Vec<f32>>,
}

/// Opens the default microphone.
pub fn open_microphone() -> Result<Microphone, LiveAudioError> {
    let dev_err = |reason: String| LiveAudioError::Device { what: "input", reason };
    let host = cpal::default_host();
    let device = host.default_input_device().ok_or(LiveAudioError::NoDevice("input"))?;
    let config = device.default_input_config().map_err(|e| dev_err(e.to_string()))?;
    let channels = config.channels().max(1) as usize;
    let rate = config.sample_rate().0;
    if rate == 0 {
        return Err(dev_err("the device reports a sample rate of 0".into()));
    }
    let (tx, rx) = mpsc::channel();
    let stream = match config.sample_format() {
        cpal::SampleFormat::F32 => device.build_input_stream(
            &config.into(),
            move |data: &[f32], _| {
                let _ = tx.send(data.chunks(channels).map(|f| f.iter().sum::<f32>() / channels as f32).collect());
            },
            |e| tracing::warn!("microphone: {e}"),
            None,
        ),
        cpal::SampleFormat::I16 => device.build_input_stream(
            &config.into(),
            move |data: &[i16], _| {
                let _ = tx.send(
                    data.chunks(channels)
                        .map(|f| f.iter().map(|&s| crate::audio::i16_to_f32(s)).sum::<f32>() / channels as f32)
                        .collect(),
                );
            },
            |e| tracing::warn!("microphone: {e}"),
            None,
        ),
        other => return Err(dev_err(format!("unsupported sample format {other:?}"))),
    }
    .map_err(|e| dev_err(e.to_string()))?;
    stream.play().map_err(|e| dev_err(e.to_string()))?;
    Ok(Microphone { _stream: stream, rate, blocks: rx })
}

/// Plays audio on the default speaker and waits until it has been handed to the device.
pub fn play(audio: &Audio) -> Result<(), LiveAudioError> {
    let dev_err = |reason: String| LiveAudioError::Device { what: "output", reason };
    let host = cpal::default_host();
    let device = host.default_output_device().ok_or(LiveAudioError::NoDevice("output"))?;
    let config = device.default_output_config().map_err(|e| dev_err(e.to_string()))?;
    if config.sample_format() != cpal::SampleFormat::F32 {
        return Err(dev_err(format!("unsupported sample format {:?}", config.sample_format())));
    }
    let channels = config.channels().max(1) as usize;
    let samples = audio.resampled(config.sample_rate().0).samples;
    let total = samples.len();
    let (done_tx, done_rx) = mpsc::channel();
    let mut pos = 0;
    let stream = device
        .build_output_stream(
            &config.into(),
            move |out: &mut [f32], _| {
                for frame in out.chunks_mut(channels) {
                    let v = samples.get(pos).copied().unwrap_or(0.0);
                    frame.iter_mut().for_each(|s| *s = v);
                    pos += 1;
                }
                if pos >= total {
                    let _ = done_tx.send(());
                }
            },
            |e| tracing::warn!("speaker: {e}"),
            None,
        )
        .map_err(|e| dev_err(e.to_string()))?;
    stream.play().map_err(|e| dev_err(e.to_string()))?;
    let secs = audio.duration_secs() + 2.0;
    let _ = done_rx.recv_timeout(std::time::Duration::from_secs_f64(secs));
    Ok(())
}
