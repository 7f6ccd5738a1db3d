//! The heavy work a call asks for, done with the shared models: transcription, the conversation,
//! the LLM and speech synthesis. Drivers (the simulator, the SIP bridge) call these from their own
//! threads; the models are loaded once and shared by every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dialogue::llm::{ChatMessage, LlmClient, Options};
use dialogue::manager::{Conversation, Input, LlmJob};

use super::{CallerInput, JobResult, RATE};
use crate::stt::{SttConfig, WhisperModel};
use crate::tts::Voices;

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
        let mut n = 0;
        for (language, text) in texts {
            for sentence in crate::tts::split_sentences(&crate::tts::speakable(text)) {
                let key = Self::key(voices, language, &sentence);
                if self.audio.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&key) {
                    continue;
                }
                let audio = voices.for_language(language).synthesize(&sentence, RATE)?;
                self.audio.lock().unwrap_or_else(|p| p.into_inner()).insert(key, Arc::from(audio.samples));
                n += 1;
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

/// The shared models, as a call's jobs need them.
pub struct Workers<'a> {
    pub whisper: &'a WhisperModel,
    pub stt: &'a SttConfig,
    pub voices: &'a Voices,
    pub cache: &'a SpeechCache,
    pub engine: &'a dialogue::Engine,
    pub llm: Option<&'a LlmClient>,
}

impl Workers<'_> {
    pub fn transcribe(&self, audio: &[f32]) -> JobResult {
        match self.whisper.transcribe(audio, self.stt) {
            Ok(t) => {
                tracing::debug!(text = %t.text, secs = t.audio_secs, ms = t.elapsed_ms, audio_ctx = t.audio_ctx, retries = t.retries, "transcribed");
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
