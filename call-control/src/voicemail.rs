//! Voicemails: kept on disk and in the store before the caller is thanked, then transcribed and
//! summarised on a thread of their own with the server's speech recogniser (the models are shared
//! with the calls, and a message never delays a call's tick). A voicemail a previous run stored
//! but did not transcribe (the server was killed) is transcribed when the server starts again.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use ivr_audio::{Audio, RATE};
use voice_pipeline::session::live::{CallLink, Pipeline, Reply};
use voice_pipeline::session::{Job, JobResult};

use crate::record::RecordSink;

/// How long one message may take to transcribe before it is left for the next start.
const TRANSCRIBE_WAIT: Duration = Duration::from_secs(300);

/// A voicemail to transcribe: its follow-up's id, its audio file, the caller's number.
struct Message {
    id: String,
    audio: PathBuf,
    number: String,
}

/// The voicemail box of a server.
pub struct Voicemails {
    dir: PathBuf,
    sink: RecordSink,
    tx: Sender<Message>,
}

impl Voicemails {
    /// Messages go under `dir`; the transcriber thread starts with the ones left untranscribed.
    pub fn start(dir: &Path, pipeline: Arc<Pipeline>, sink: RecordSink) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| std::io::Error::new(e.kind(), format!("voicemail directory {}: {e}", dir.display())))?;
        let (tx, rx) = mpsc::channel();
        let worker_sink = sink.clone();
        std::thread::Builder::new().name("ivr-voicemail".into()).spawn(move || transcribe_all(rx, &pipeline, &worker_sink))?;
        Ok(Self { dir: dir.to_path_buf(), sink, tx })
    }

    /// Keeps a message: the WAV written and synced, then the follow-up written and acknowledged
    /// by the store; then it is transcribed in the background. `false` if it could not be kept.
    pub fn keep(&self, call_id: &str, number: &str, reason: &str, audio: &[f32]) -> bool {
        let id = format!("vm-{call_id}");
        let path = self.dir.join(format!("{id}.wav"));
        if let Err(e) = write_durably(&path, audio) {
            tracing::error!(%call_id, "the voicemail could not be written to {}: {e}", path.display());
            return false;
        }
        let f = ivr_store::FollowUp {
            id: id.clone(),
            kind: "voicemail".into(),
            call_id: Some(call_id.to_string()),
            number: number.to_string(),
            created_at: jiff::Timestamp::now().to_string(),
            reason: reason.to_string(),
            audio: Some(path.display().to_string()),
            status: "open".into(),
            ..Default::default()
        };
        if !self.sink.follow_up(f, Duration::from_secs(5)) {
            tracing::error!(%call_id, "the voicemail {} could not be stored", path.display());
            return false;
        }
        let _ = self.tx.send(Message { id, audio: path, number: number.to_string() });
        true
    }
}

/// Writes a 16 kHz mono WAV beside its final name, syncs it and renames it into place: a
/// message on disk is whole.
fn write_durably(path: &Path, audio: &[f32]) -> std::io::Result<()> {
    let part = path.with_extension("wav.part");
    ivr_audio::wav::write_wav(&part, &Audio::new(audio.to_vec(), RATE)).map_err(std::io::Error::other)?;
    std::fs::File::open(&part)?.sync_all()?;
    std::fs::rename(&part, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn transcribe_all(rx: Receiver<Message>, pipeline: &Pipeline, sink: &RecordSink) {
    let left = sink.untranscribed_voicemails(Duration::from_secs(10)).unwrap_or_default();
    if !left.is_empty() {
        tracing::info!(count = left.len(), "transcribing the voicemails a previous run left");
    }
    for f in left {
        match &f.audio {
            Some(audio) => transcribe(pipeline, sink, &Message { id: f.id.clone(), audio: audio.into(), number: f.number.clone() }),
            None => sink.voicemail_text(&f.id, String::new(), "A voicemail without audio.".into()),
        }
    }
    for m in rx {
        transcribe(pipeline, sink, &m);
    }
}

fn transcribe(pipeline: &Pipeline, sink: &RecordSink, m: &Message) {
    let audio = match ivr_audio::decode::decode_file(&m.audio) {
        Ok(a) if a.rate == RATE => a,
        Ok(a) => a.resampled(RATE),
        Err(e) => {
            tracing::error!(id = %m.id, "the voicemail's audio {} cannot be read: {e}", m.audio.display());
            return;
        }
    };
    let secs = audio.duration_secs();
    let (link, replies) = CallLink::new(None);
    pipeline.submit(&link, 0, Job::Transcribe { audio: audio.samples.into() });
    let text = loop {
        match replies.recv_timeout(TRANSCRIBE_WAIT) {
            Ok(Reply::Done { result: JobResult::Transcript { text, .. }, .. }) => break text,
            Ok(Reply::Done { result, .. }) => {
                tracing::error!(id = %m.id, "the voicemail was not transcribed: {result:?}");
                return;
            }
            Ok(Reply::Delta { .. }) => continue,
            Err(_) => {
                tracing::error!(id = %m.id, "the voicemail was not transcribed in time; it is tried again at the next start");
                return;
            }
        }
    };
    let text = text.trim().to_string();
    let summary = summarise(&text, &m.number, secs);
    tracing::info!(id = %m.id, %summary, "voicemail transcribed");
    sink.voicemail_text(&m.id, text, summary);
}

/// A line for the agents' list: who, how long, what about (the policies' reading of the words,
/// as the bot's hand-over would say it), and the message's start.
pub fn summarise(text: &str, number: &str, secs: f64) -> String {
    let from = if number.is_empty() { "an unknown number".to_string() } else { number.to_string() };
    let head = format!("Voicemail from {from}, {secs:.0} s");
    if !text.chars().any(char::is_alphanumeric) {
        return format!("{head}: no words recognised.");
    }
    let mut about = Vec::new();
    if let Some(reason) = dialogue::policy::delivery_problem(text) {
        about.push(reason.describe());
    }
    if dialogue::policy::asks_for_human(text) {
        about.push("asks for a person");
    }
    if dialogue::policy::sentiment(text) == dialogue::policy::Sentiment::Angry {
        about.push("caller is upset");
    }
    let numbers: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| d.len() >= 5)
        .map(str::to_string)
        .collect();
    if !numbers.is_empty() {
        about.push("mentions a number");
    }
    let first: String = text.split_inclusive(['.', '?', '!']).next().unwrap_or(text).chars().take(160).collect();
    let mut out = head;
    if !about.is_empty() {
        out.push_str(&format!(" ({})", about.join(", ")));
    }
    out.push_str(&format!(": \"{}\"", first.trim()));
    if !numbers.is_empty() {
        out.push_str(&format!(" Numbers: {}.", numbers.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_summary_names_the_caller_the_length_the_matter_and_the_numbers() {
        let s = super::summarise("Hello, my parcel arrived broken yesterday. The order is 41234567. Please call me back.", "+4930111222", 9.6);
        assert!(s.starts_with("Voicemail from +4930111222, 10 s (damaged delivery"), "{s}");
        assert!(s.contains("\"Hello, my parcel arrived broken yesterday.\""), "{s}");
        assert!(s.ends_with("Numbers: 41234567."), "{s}");
        assert_eq!(super::summarise("  ", "", 2.0), "Voicemail from an unknown number, 2 s: no words recognised.");
    }
}
