//! The heavy work a call asks for, done with the shared models: transcription, the conversation,
//! the LLM and speech synthesis. Drivers (the simulator, the SIP bridge) call these from their own
//! threads; the models are loaded once and shared by every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialogue::llm::{ChatMessage, LlmClient, Options};
use dialogue::manager::{Conversation, Input, LlmJob};

use super::{CallerInput, JobResult};
use ivr_audio::RATE;
use crate::stt::{SttConfig, WhisperModel};
use crate::tts::Voices;
use crate::turn::TurnModel;

/// Audio of sentences rendered once, by (voice language, text): greetings, prompts and knowledge
/// answers start with no synthesis time at all. Only pre-rendered sentences are kept, so the
/// cache cannot grow with what callers say.
#[derive(Default)]
pub struct SpeechCache {
    audio: Mutex<HashMap<(String, String), Arc<[f32]>>>,
}

impl SpeechCache {
    fn key(voices: &Voices, language: &str, sentence: &str) -> (String, String) {
        (voices.for_language(language).spec().name.clone(), sentence.to_string())
    }

    pub fn get(&self, voices: &Voices, language: &str, sentence: &str) -> Option<Arc<[f32]>> {
        self.audio.lock().unwrap_or_else(|p| p.into_inner()).get(&Self::key(voices, language, sentence)).cloned()
    }

    /// Renders every sentence of `texts` (language, text) at the session rate. Returns how many
    /// sentences were rendered.
    pub fn prerender(&self, voices: &Voices, texts: &[(String, String)]) -> Result<usize, crate::tts::TtsError> {
        self.prerender_into(voices, texts, None)
    }

    /// As [`Self::prerender`], keeping the audio in `dir` as well, so the next start loads it
    /// instead of synthesising it again (an edited sentence or another voice is a new file).
    pub fn prerender_into(&self, voices: &Voices, texts: &[(String, String)], dir: Option<&std::path::Path>) -> Result<usize, crate::tts::TtsError> {
        let mut n = 0;
        // A language without its own voice is not pre-rendered: the fallback voice reading it is
        // no use to anyone (and slow: espeak spells out each Chinese character).
        let voiced: Vec<&str> = voices.languages().collect();
        for (language, text) in texts.iter().filter(|(l, _)| voiced.contains(&l.as_str())) {
            for sentence in crate::tts::split_sentences(&crate::tts::speakable(text)) {
                let key = Self::key(voices, language, &sentence);
                if self.audio.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&key) {
                    continue;
                }
                let voice = voices.for_language(language);
                let file = dir.map(|d| d.join(format!("{:016x}.f32", stable_hash(&[&format!("{:?}", voice.spec()), &sentence, &RATE.to_string()]))));
                let samples = match file.as_deref().and_then(read_f32) {
                    Some(samples) => samples,
                    None => {
                        let audio = voice.synthesize(&sentence, RATE)?;
                        n += 1;
                        if let Some(f) = &file {
                            // A cache that cannot be written only costs time at the next start.
                            if let Err(e) = write_f32(f, &audio.samples) {
                                tracing::warn!("cannot keep pre-rendered speech in {}: {e}", f.display());
                            }
                        }
                        audio.samples
                    }
                };
                self.audio.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::from(samples));
            }
        }
        Ok(n)
    }

    pub fn len(&self) -> usize {
        self.audio.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Seconds of audio held.
    pub fn seconds(&self) -> f64 {
        self.audio.lock().unwrap_or_else(|p| p.into_inner()).values().map(|a| a.len()).sum::<usize>() as f64 / RATE as f64
    }
}

/// FNV-1a over the parts: stable across builds and platforms (unlike `DefaultHasher`).
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    h
}

fn read_f32(path: &std::path::Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return None;
    }
    Some(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn write_f32(path: &std::path::Path, samples: &[f32]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    // Written whole, then renamed: a crash never leaves half a sentence behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// The shared models, as a call's jobs need them.
pub struct Workers<'a> {
    pub whisper: &'a WhisperModel,
    pub stt: &'a SttConfig,
    pub voices: &'a Voices,
    pub cache: &'a SpeechCache,
    pub engine: &'a dialogue::Engine,
    pub llm: Option<&'a LlmClient>,
    /// The learned end-of-turn model (without it, turns end after the fixed hangover).
    pub turn: Option<&'a TurnModel>,
}

impl Workers<'_> {
    pub fn transcribe(&self, audio: &[f32]) -> JobResult {
        match self.whisper.transcribe(audio, self.stt) {
            Ok(t) => {
                tracing::debug!(text = %ivr_privacy::mask(&t.text), secs = t.audio_secs, ms = t.elapsed_ms, audio_ctx = t.audio_ctx, retries = t.retries, "transcribed");
                JobResult::Transcript { text: t.text, language: t.language }
            }
            Err(e) => JobResult::Failed(format!("transcription: {e}")),
        }
    }

    /// Runs the caller's input through the call's conversation. `wall` is the real time the call
    /// is at (for "are you open now?").
    pub fn understand(&self, conversation: &mut Conversation, input: &CallerInput, wall: jiff::Timestamp) -> JobResult {
        let brain = self.engine.brain();
        let turn = match input {
            CallerInput::Speech { text, language } => conversation.handle(Input::Speech { text, language }, wall, &brain),
            CallerInput::Dtmf(d) => conversation.handle(Input::Dtmf(*d), wall, &brain),
        };
        JobResult::Turn(Box::new(turn))
    }

    /// Asks the LLM, passing each streamed piece to `on_delta`.
    pub fn llm(&self, job: &LlmJob, on_delta: impl FnMut(&str)) -> JobResult {
        let Some(client) = self.llm else { return JobResult::Failed("no LLM configured".into()) };
        let messages = [ChatMessage::new("system", &job.system), ChatMessage::new("user", &job.user)];
        let opts = Options { max_tokens: job.max_tokens, stop: vec!["\n".into()], grammar: job.grammar.clone() };
        match client.chat(&messages, &opts, on_delta) {
            Ok(c) => JobResult::Llm { text: c.text },
            Err(e) => JobResult::Failed(format!("LLM: {e}")),
        }
    }

    pub fn end_of_turn(&self, audio: &[f32]) -> JobResult {
        let Some(model) = self.turn else { return JobResult::Failed("no end-of-turn model loaded".into()) };
        match model.probability(audio) {
            Ok(complete) => JobResult::EndOfTurn { complete },
            Err(e) => JobResult::Failed(format!("end of turn: {e}")),
        }
    }

    pub fn synthesize(&self, text: &str, language: &str) -> JobResult {
        if let Some(audio) = self.cache.get(self.voices, language, text) {
            return JobResult::Speech(audio);
        }
        match self.voices.for_language(language).synthesize(text, RATE) {
            Ok(a) => JobResult::Speech(Arc::from(a.samples)),
            Err(e) => JobResult::Failed(format!("speech synthesis: {e}")),
        }
    }
}
