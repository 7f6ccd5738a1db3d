//! The bot's outgoing speech: sentences in order, each waiting for its audio, played frame by frame.
//!
//! Sentences are synthesised in parallel and may finish out of order, so each has a slot reserved
//! when it is requested; playback waits for the head slot. A pause keeps everything (a false
//! interruption resumes the interrupted sentence from its start); a flush drops everything.

use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Slot {
    /// The synthesis job that fills it.
    job: u64,
    text: String,
    audio: Option<Arc<[f32]>>,
    pos: usize,
}

#[derive(Debug, Default)]
pub struct Playback {
    queue: VecDeque<Slot>,
    paused: bool,
}

/// What one call to [`Playback::fill`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filled {
    /// Samples of speech written (the rest of the frame is silence).
    pub samples: usize,
    /// The sentence (its synthesis job) whose first samples went out in this frame.
    pub started: Option<u64>,
    /// The queue ran empty in this frame: the reply has been spoken.
    pub finished: bool,
}

impl Playback {
    /// Reserves the next sentence's place.
    pub fn reserve(&mut self, job: u64, text: &str) {
        self.queue.push_back(Slot { job, text: text.to_string(), audio: None, pos: 0 });
    }

    /// The audio for a reserved sentence; false if it is no longer wanted (flushed).
    pub fn fill_slot(&mut self, job: u64, audio: Arc<[f32]>) -> bool {
        match self.queue.iter_mut().find(|s| s.job == job) {
            Some(slot) => {
                slot.audio = Some(audio);
                true
            }
            None => false,
        }
    }

    /// Drops a sentence whose synthesis failed (or that turned out empty).
    pub fn drop_slot(&mut self, job: u64) {
        self.queue.retain(|s| s.job != job);
    }

    /// Whether the sentence made by this synthesis job is queued.
    pub fn has(&self, job: u64) -> bool {
        self.queue.iter().any(|s| s.job == job)
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Audio is going out (or would be, if the head sentence were ready).
    pub fn is_active(&self) -> bool {
        !self.queue.is_empty() && !self.paused
    }

    pub fn is_paused(&self) -> bool {
        self.paused && !self.queue.is_empty()
    }

    /// Whether the bot is audible right now.
    pub fn is_sounding(&self) -> bool {
        !self.paused && self.queue.front().is_some_and(|s| s.audio.is_some())
    }

    /// The sentence being spoken (or next), and whether it is the reply's last.
    pub fn current(&self) -> Option<(&str, bool)> {
        self.queue.front().map(|s| (s.text.as_str(), self.queue.len() == 1))
    }

    /// Stops sending audio; the interrupted sentence will start again on `resume`.
    pub fn pause(&mut self) {
        self.paused = true;
        if let Some(s) = self.queue.front_mut() {
            s.pos = 0;
        }
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Drops all queued speech; returns the synthesis jobs whose results are no longer wanted.
    pub fn flush(&mut self) -> Vec<u64> {
        self.paused = false;
        self.queue.drain(..).filter(|s| s.audio.is_none()).map(|s| s.job).collect()
    }

    /// Writes the next frame (silence where there is nothing to say).
    pub fn fill(&mut self, out: &mut [f32]) -> Filled {
        out.fill(0.0);
        let mut f = Filled::default();
        if self.paused {
            return f;
        }
        let mut written = 0;
        while written < out.len() {
            let Some(slot) = self.queue.front_mut() else { break };
            let Some(audio) = &slot.audio else { break };
            let n = (audio.len() - slot.pos).min(out.len() - written);
            out[written..written + n].copy_from_slice(&audio[slot.pos..slot.pos + n]);
            if n > 0 && slot.pos == 0 && f.started.is_none() {
                f.started = Some(slot.job);
            }
            written += n;
            slot.pos += n;
            if slot.pos >= audio.len() {
                self.queue.pop_front();
                if self.queue.is_empty() {
                    f.finished = true;
                }
            }
        }
        f.samples = written;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_play_in_order_whatever_order_they_are_ready_in() {
        let mut p = Playback::default();
        p.reserve(1, "One.");
        p.reserve(2, "Two.");
        let mut frame = [0.0f32; 4];
        assert!(p.fill_slot(2, Arc::from(vec![2.0; 3])));
        assert_eq!(p.fill(&mut frame).samples, 0, "waits for the first sentence");
        p.fill_slot(1, Arc::from(vec![1.0; 3]));
        let f = p.fill(&mut frame);
        assert!(f.started == Some(1) && !f.finished);
        assert_eq!(frame, [1.0, 1.0, 1.0, 2.0]);
        p.pause();
        assert_eq!(p.fill(&mut frame).samples, 0);
        p.resume();
        assert_eq!(frame, [0.0; 4]);
        let f = p.fill(&mut frame);
        assert_eq!(frame, [2.0, 2.0, 2.0, 0.0], "the interrupted sentence starts again");
        assert!(f.finished);
        p.reserve(3, "Three.");
        assert_eq!(p.flush(), vec![3]);
        assert!(!p.fill_slot(3, Arc::from(vec![3.0])));
    }
}
