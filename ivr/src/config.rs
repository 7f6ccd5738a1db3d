//! `ivr.toml`: the program's settings. Every section is optional; defaults run the embedded models.

use std::path::{Path, PathBuf};

use voice_pipeline::{stt::SttConfig, vad::VadConfig};

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where `models/` is (default: found beside the program or the current directory).
    pub models_dir: Option<PathBuf>,
    /// The company's knowledge base, intents and demo data (default: `tenant/demo`).
    pub tenant_dir: Option<PathBuf>,
    pub stt: SttSection,
    pub vad: VadConfig,
    pub tts: TtsSection,
    pub dialogue: dialogue::manager::DialogueConfig,
    pub llm: crate::llm_worker::LlmSection,
    pub tools: ToolsSection,
    /// Turn-taking: endpointing, barge-in, fillers, silence, keypad (`[vad]` sets speech detection).
    pub session: voice_pipeline::session::SessionConfig,
    /// Phone calls: where SIP listens, codecs, call limit, RTP timeout, jitter buffer.
    pub sip: call_control::server::SipConfig,
    /// Browser calls (WebRTC) on the HTTP port's `/call`.
    pub webrtc: sip_bridge::webrtc::WebRtcConfig,
    /// Call recordings (stereo WAV per call) and where they go.
    pub records: call_control::recording::RecordsConfig,
    /// The agents' console at /agent.
    pub console: ConsoleSection,
    /// The reports (`ivr report`, the dashboard).
    pub insight: InsightSection,
    /// What calls cost, for the ROI report.
    pub costs: ivr_insight::roi::Costs,
    /// How long recordings and transcripts are kept.
    pub retention: RetentionSection,
}

/// How long each kind of record is kept (none: for ever). `ivr serve` purges once an hour;
/// `ivr records purge` does it at once.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSection {
    /// Call recordings and voicemail audio: the files are deleted.
    pub audio_days: Option<u32>,
    /// The words of calls and voicemails (replaced by "[purged]"; timings, intents and outcomes
    /// stay for the reports).
    pub transcripts_days: Option<u32>,
}

impl RetentionSection {
    /// Whether anything is ever purged.
    pub fn is_set(&self) -> bool {
        self.audio_days.is_some() || self.transcripts_days.is_some()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightSection {
    /// A queued caller answered within this many seconds counts as served in time (the service
    /// level's threshold, Asterisk's `servicelevel`).
    pub service_level_secs: f64,
}

impl Default for InsightSection {
    fn default() -> Self {
        Self { service_level_secs: 20.0 }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    /// A console sign-in lasts this long.
    pub session_secs: u64,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self { session_secs: 12 * 3600 }
    }
}

/// Where tool calls go: the demo SQLite store, or the company's systems through a webhook.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSection {
    /// "local" (demo data in SQLite) or "webhook".
    pub backend: String,
    /// The webhook's base URL, http:// or https:// (see dialogue::webhook for the contract).
    pub url: Option<String>,
    /// A PEM file with the certificate authority of a webhook behind HTTPS with the company's own
    /// certificates (trusted besides the usual roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for ToolsSection {
    fn default() -> Self {
        Self { backend: "local".into(), url: None, ca_file: None }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SttSection {
    /// "tiny.en" (English, fastest) or "base" (multilingual).
    pub model: String,
    /// "f16", "q8_0" or "q5_1".
    pub precision: String,
    /// Transcriptions run at once by `ivr serve`; `threads` are shared among them.
    pub workers: usize,
    /// Prime the recogniser with the tenant's own names (brands, stores, products) from its
    /// knowledge files, unless `initial_prompt` is set. Off by default: on the real-voice bench
    /// set it cost 25-40% more time per turn and more errors on words that are not names
    /// (scripts/bench-speech.sh).
    pub tenant_vocabulary: bool,
    #[serde(flatten)]
    pub whisper: SttConfig,
}

impl Default for SttSection {
    fn default() -> Self {
        Self { model: "tiny.en".into(), precision: "f16".into(), workers: 2, tenant_vocabulary: false, whisper: SttConfig::default() }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsSection {
    /// A voices file (`[[voice]]` tables mapping languages to Piper voices); default: the English voice.
    pub voices: Option<PathBuf>,
    /// Render fixed sentences and knowledge answers once at start-up (kept in
    /// models/data/cache/speech), so they are spoken with no synthesis time.
    pub prerender: bool,
}

impl Default for TtsSection {
    fn default() -> Self {
        Self { voices: None, prerender: true }
    }
}

impl Config {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}
