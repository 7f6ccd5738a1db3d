//! `ivr listen`: a call on the sound card (microphone and speaker).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::bail;
use ivr_models::ModelDir;
use voice_pipeline::audio::{self};

use crate::config::Config;
use crate::load::*;

pub(crate) fn listen(models: &ModelDir, cfg: &Config, echo: bool, seconds: Option<f64>) -> anyhow::Result<ExitCode> {
    #[cfg(feature = "live-audio")]
    {
        use voice_pipeline::vad::{Vad, VadEvent};
        let vad_model = load_vad(models)?;
        let voices = if echo { Some(load_voices(models, cfg)?) } else { None };
        let whisper = load_whisper(models, &cfg.stt)?;
        let mic = voice_pipeline::live::open_microphone()?;
        eprintln!("listening on the default microphone ({} Hz); speak, then pause", mic.rate);
        let mut resampler = audio::Resampler::new(mic.rate, audio::RATE);
        let mut vad = Vad::new(vad_model, cfg.vad.clone());
        let mut stream: Vec<f32> = Vec::new();
        let started = Instant::now();
        loop {
            if seconds.is_some_and(|s| started.elapsed().as_secs_f64() > s) {
                return Ok(ExitCode::SUCCESS);
            }
            let block = match mic.blocks.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(b) => b,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(_) => bail!("the microphone stopped"),
            };
            let frame = resampler.process(&block);
            let now = std::time::Duration::from_secs_f64(stream.len() as f64 / audio::RATE as f64);
            stream.extend_from_slice(&frame);
            for event in vad.push(&frame, now)? {
                if let VadEvent::SpeechEnd { start, end } = event {
                    let a = (start.as_secs_f64() * audio::RATE as f64) as usize;
                    let b = ((end.as_secs_f64() * audio::RATE as f64) as usize).min(stream.len());
                    let t = whisper.transcribe(&stream[a.min(b)..b], &cfg.stt.whisper)?;
                    println!("{}", t.text);
                    if let Some(voices) = &voices {
                        if !t.text.is_empty() {
                            let reply = voices.for_language(&t.language).synthesize(&t.text, 22050)?;
                            voice_pipeline::live::play(&reply)?;
                        }
                    }
                }
            }
        }
    }
    #[cfg(not(feature = "live-audio"))]
    {
        let _ = (models, cfg, echo, seconds);
        bail!("this build has no live audio support (built without the live-audio feature)")
    }
}
