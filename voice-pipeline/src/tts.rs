//! Text-to-speech with Piper voices: espeak-ng phonemes (espeak-rs) -> the voice's phoneme ids ->
//! the VITS model on ONNX Runtime.
//!
//! The project runs the Piper model itself rather than through piper-rs 0.2: piper-rs leaves out
//! the pad id that Piper's reference phonemiser puts after the start id, which clips the first
//! phoneme ("Refunds ..." came back from Whisper as "We funds ..."), and it unwraps on bad input. The
//! pipeline is small: phonemes, id mapping as in `piper/phoneme_ids.py`, one ONNX run.
//!
//! - Voices are files: a company drops any Piper voice (`.onnx` + `.onnx.json`) into a voices file
//!   and maps it to a language; [`Voices`] picks one per reply language.
//! - Output at the rate the caller's transport needs (8 kHz G.711, 16 kHz, 48 kHz), resampled
//!   properly from the voice's own rate.
//! - Sentence-level streaming: [`Voice::stream`] yields one sentence's audio at a time, so the first
//!   audio is ready after the first sentence, not the whole reply.
//!
//! espeak-ng keeps global state and is not thread-safe, so phonemisation is serialised process-wide;
//! it takes a small fraction of synthesis time.

use std::collections::{BTreeMap, HashMap};

use unicode_normalization::UnicodeNormalization;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audio::Audio;
use crate::onnx::{self, OnnxError};

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("{path}: cannot read voice config: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("nothing speakable in the text {0:?} (only punctuation, symbols or emoji)")]
    NothingToSay(String),
    #[error("espeak-ng could not phonemise the text: {0}")]
    Phonemes(String),
    #[error("speech synthesis failed: {0}")]
    Synthesis(String),
    #[error("no voice is configured for language {0:?}")]
    NoVoice(String),
    #[error("{path}: {reason}")]
    VoicesFile { path: PathBuf, reason: String },
}

/// espeak-ng's data directory, where Debian's `espeak-ng-data` package puts it.
pub fn find_espeak_data() -> Option<PathBuf> {
    let candidates = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/share", "/usr/local/share"];
    candidates.iter().map(PathBuf::from).find(|d| d.join("espeak-ng-data/phontab").is_file())
}

/// Points the phonemiser at Debian's espeak-ng data. Must run before any synthesis and before the
/// program starts threads (it sets an environment variable, read once by espeak-rs); later calls
/// only report the first outcome.
pub fn use_system_espeak_data() -> Result<PathBuf, TtsError> {
    static DATA: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let dir = DATA.get_or_init(|| {
        let dir = find_espeak_data()?;
        // SAFETY of set_var: this runs once, at start-up, before other threads exist (see above).
        std::env::set_var("PIPER_ESPEAKNG_DATA_DIRECTORY", &dir);
        Some(dir)
    });
    dir.clone().ok_or_else(|| {
        TtsError::Phonemes("espeak-ng-data not found (install the Debian package espeak-ng-data; scripts/setup.sh does)".into())
    })
}

static PHONEMIZER: Mutex<()> = Mutex::new(());

/// Tuning of one voice; unset values come from the voice's own JSON.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct VoiceSpec {
    /// A name for logs and the CLI.
    pub name: String,
    /// Reply language this voice speaks ("en", "zh", ...).
    pub language: String,
    /// The `.onnx` file; relative paths are relative to the voices file.
    pub model: PathBuf,
    /// The `.onnx.json` file; defaults to the model path plus `.json`.
    pub config: Option<PathBuf>,
    /// espeak-ng voice used for phonemes, overriding the JSON's (e.g. "cmn-latn-pinyin").
    pub espeak_voice: Option<String>,
    pub speaker: Option<i64>,
    /// Speaking rate: above 1 is slower.
    pub length_scale: Option<f32>,
    /// ONNX Runtime threads for this voice.
    pub threads: Option<usize>,
}

/// The parts of a Piper voice's `.onnx.json` that synthesis needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PiperConfig {
    pub audio: PiperAudio,
    pub espeak: PiperEspeak,
    pub inference: PiperInference,
    #[serde(default = "one")]
    pub num_speakers: u32,
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct PiperAudio {
    pub sample_rate: u32,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct PiperEspeak {
    pub voice: String,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct PiperInference {
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
}

const BOS: char = '^';
const EOS: char = '$';
const PAD: char = '_';

/// Phoneme string -> model input ids, as Piper's reference does: start, pad, then each phoneme
/// followed by a pad, then end. Phonemes the voice does not know are skipped.
fn phoneme_ids(map: &HashMap<char, Vec<i64>>, phonemes: &str) -> Vec<i64> {
    let id = |c: char| map.get(&c).cloned().unwrap_or_default();
    let mut ids = id(BOS);
    ids.extend(id(PAD));
    for c in phonemes.nfd() {
        if let Some(p) = map.get(&c) {
            ids.extend(p);
            ids.extend(id(PAD));
        }
    }
    ids.extend(id(EOS));
    ids
}

/// A loaded Piper voice, shared across calls.
#[derive(Clone)]
pub struct Voice {
    session: Arc<Mutex<ort::session::Session>>,
    ids: Arc<HashMap<char, Vec<i64>>>,
    config: Arc<PiperConfig>,
    spec: VoiceSpec,
    espeak_voice: String,
}

impl Voice {
    pub fn load(spec: VoiceSpec) -> Result<Self, TtsError> {
        let config_path = spec.config.clone().unwrap_or_else(|| {
            let mut p = spec.model.clone().into_os_string();
            p.push(".json");
            PathBuf::from(p)
        });
        let cerr = |reason: String| TtsError::Config { path: config_path.clone(), reason };
        let text = std::fs::read_to_string(&config_path).map_err(|e| cerr(e.to_string()))?;
        let config: PiperConfig = serde_json::from_str(&text).map_err(|e| cerr(e.to_string()))?;
        let espeak_voice = spec.espeak_voice.clone().unwrap_or_else(|| config.espeak.voice.clone());
        if config.audio.sample_rate == 0 {
            return Err(cerr("sample_rate is 0".into()));
        }
        let ids: HashMap<char, Vec<i64>> = config
            .phoneme_id_map
            .iter()
            .filter_map(|(k, v)| {
                let mut chars = k.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some((c, v.clone())),
                    _ => None,
                }
            })
            .collect();
        if !ids.contains_key(&BOS) || !ids.contains_key(&EOS) {
            return Err(cerr("phoneme_id_map lacks the start (^) or end ($) symbol".into()));
        }
        let session = onnx::session(&spec.model, spec.threads.unwrap_or(2))?;
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            ids: Arc::new(ids),
            config: Arc::new(config),
            spec,
            espeak_voice,
        })
    }

    pub fn spec(&self) -> &VoiceSpec {
        &self.spec
    }

    /// The voice's own sample rate.
    pub fn native_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    /// Speaks the whole text at `rate`.
    pub fn synthesize(&self, text: &str, rate: u32) -> Result<Audio, TtsError> {
        let mut out = Audio::new(Vec::new(), rate);
        for chunk in self.stream(text, rate)? {
            out.samples.extend(chunk?.samples);
        }
        Ok(out)
    }

    /// Speaks the text sentence by sentence: each item is the next sentence's audio at `rate`.
    pub fn stream(&self, text: &str, rate: u32) -> Result<SpeechStream, TtsError> {
        let sentences = split_sentences(&speakable(text));
        if sentences.is_empty() {
            return Err(TtsError::NothingToSay(text.chars().take(80).collect()));
        }
        Ok(SpeechStream { voice: self.clone(), sentences: sentences.into_iter(), rate })
    }

    fn phonemes(&self, sentence: &str) -> Result<String, TtsError> {
        let _guard = PHONEMIZER.lock().unwrap_or_else(|p| p.into_inner());
        let parts = espeak_rs::text_to_phonemes(sentence, &self.espeak_voice, None)
            .map_err(|e| TtsError::Phonemes(e.to_string()))?;
        Ok(parts.join(" "))
    }

    fn speak_sentence(&self, sentence: &str, rate: u32) -> Result<Audio, TtsError> {
        let phonemes = self.phonemes(sentence)?;
        if phonemes.trim().is_empty() {
            return Ok(Audio::new(Vec::new(), rate));
        }
        let ids = phoneme_ids(&self.ids, &phonemes);
        let samples = self.infer(ids).map_err(|e| TtsError::Synthesis(e.to_string()))?;
        Ok(Audio::new(samples, self.native_rate()).resampled(rate))
    }

    fn infer(&self, ids: Vec<i64>) -> Result<Vec<f32>, ort::Error> {
        use ort::value::Tensor;
        let inf = &self.config.inference;
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids.into_boxed_slice()))?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64].into_boxed_slice()))?;
        let scales = vec![inf.noise_scale, self.spec.length_scale.unwrap_or(inf.length_scale), inf.noise_w];
        let scales = Tensor::from_array(([3usize], scales.into_boxed_slice()))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = if self.config.num_speakers > 1 {
            let sid = Tensor::from_array(([1usize], vec![self.spec.speaker.unwrap_or(0)].into_boxed_slice()))?;
            session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid])?
        } else {
            session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])?
        };
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        Ok(audio.to_vec())
    }
}

/// Sentences still to be spoken; each `next` synthesises one.
pub struct SpeechStream {
    voice: Voice,
    sentences: std::vec::IntoIter<String>,
    rate: u32,
}

impl Iterator for SpeechStream {
    type Item = Result<Audio, TtsError>;
    fn next(&mut self) -> Option<Self::Item> {
        let sentence = self.sentences.next()?;
        Some(self.voice.speak_sentence(&sentence, self.rate))
    }
}

/// Keeps letters, digits, whitespace and ordinary punctuation; drops emoji and other symbols that
/// espeak would read out by name or choke on. Empty if nothing speakable is left.
pub fn speakable(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() || ".,;:!?'\"-()%€$&/".contains(c) || is_cjk_punct(c) { c } else { ' ' })
        .collect();
    if kept.chars().any(|c| c.is_alphanumeric()) {
        kept.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        String::new()
    }
}

fn is_cjk_punct(c: char) -> bool {
    matches!(c, '。' | '，' | '？' | '！' | '、' | '；' | '：')
}

/// Splits text after sentence-ending punctuation (including CJK), keeping very short pieces with
/// their neighbour so each synthesis call has enough context for natural prosody.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        let ends = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
        let next_is_space = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        // "3.5" or "e.g." in the middle of a word is not a sentence end.
        if ends && (next_is_space || is_cjk_punct(c)) && current.trim().chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            out.push(current.trim().to_string());
            current.clear();
        }
    }
    if current.chars().any(|c| c.is_alphanumeric()) {
        out.push(current.trim().to_string());
    } else if let Some(last) = out.last_mut() {
        last.push_str(current.trim_end());
    }
    out
}

/// The voices file: which voice speaks which language.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct VoicesFile {
    #[serde(default, rename = "voice")]
    pub voices: Vec<VoiceSpec>,
}

/// Loaded voices by language; the first voice listed is the fallback.
#[derive(Clone)]
pub struct Voices {
    by_language: BTreeMap<String, Voice>,
    default_language: String,
}

impl Voices {
    /// The default: the project's English voice from models/.
    pub fn default_spec(models: &ivr_models::ModelDir) -> VoiceSpec {
        VoiceSpec {
            name: "joe".into(),
            language: "en".into(),
            model: models.piper_voices().join("en_US-joe-medium.onnx"),
            ..VoiceSpec::default()
        }
    }

    pub fn load(specs: Vec<VoiceSpec>) -> Result<Self, TtsError> {
        let mut by_language = BTreeMap::new();
        let default_language = specs.first().map(|s| s.language.clone()).unwrap_or_default();
        for spec in specs {
            let lang = spec.language.clone();
            by_language.entry(lang).or_insert(Voice::load(spec)?);
        }
        if by_language.is_empty() {
            return Err(TtsError::NoVoice("(none configured)".into()));
        }
        Ok(Self { by_language, default_language })
    }

    /// Reads a voices TOML file (`[[voice]]` tables); model paths are relative to the file.
    pub fn read_file(path: &Path) -> Result<Vec<VoiceSpec>, TtsError> {
        let err = |reason: String| TtsError::VoicesFile { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let file: VoicesFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(file
            .voices
            .into_iter()
            .map(|mut v| {
                v.model = base.join(&v.model);
                v.config = v.config.map(|c| base.join(c));
                v
            })
            .collect())
    }

    /// The voice for a language ("en", "en-US", "zh"), or the default voice.
    pub fn for_language(&self, language: &str) -> &Voice {
        let primary = language.split(['-', '_']).next().unwrap_or(language);
        self.by_language
            .get(language)
            .or_else(|| self.by_language.get(primary))
            .or_else(|| self.by_language.get(&self.default_language))
            .or_else(|| self.by_language.values().next())
            .expect("Voices::load refuses an empty set")
    }

    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.by_language.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_ends_but_not_inside_numbers() {
        assert_eq!(
            split_sentences("Standard delivery costs 4.90 euros. Express takes 1 day! Anything else?"),
            vec!["Standard delivery costs 4.90 euros.", "Express takes 1 day!", "Anything else?"]
        );
        assert_eq!(split_sentences("您好。请问有什么可以帮您？"), vec!["您好。", "请问有什么可以帮您？"]);
        assert_eq!(split_sentences("No end mark"), vec!["No end mark"]);
    }

    #[test]
    fn phoneme_ids_follow_pipers_reference_layout() {
        let map: HashMap<char, Vec<i64>> =
            [('_', vec![0]), ('^', vec![1]), ('$', vec![2]), ('a', vec![14]), ('b', vec![15])].into_iter().collect();
        // start, pad, (phoneme, pad)*, end; unknown phonemes are skipped.
        assert_eq!(phoneme_ids(&map, "ab?"), vec![1, 0, 14, 0, 15, 0, 2]);
    }

    #[test]
    fn only_symbols_is_not_speakable() {
        assert_eq!(speakable("?!... 😀🎉"), "");
        assert_eq!(speakable("Hello 😀 there!"), "Hello there!");
        assert_eq!(speakable("Order 41234567, please."), "Order 41234567, please.");
    }
}
