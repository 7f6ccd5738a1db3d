//! Is what the caller's channel carries just the bot's own voice coming back?
//!
//! A phone line or a speakerphone returns part of what the bot says, some tens to hundreds of
//! milliseconds later and quieter. The session knows exactly what it sent, so it compares the
//! loudness envelopes (10 ms steps) of the inbound audio with the outbound audio at every delay up
//! to `max_delay`: echo follows the outbound envelope closely at one delay; a caller speaking over
//! the bot does not. Envelopes survive codecs and the line's filtering, which waveforms do not.

use std::collections::VecDeque;

/// Echo louder than this share of what the bot sent (about 4.4 dB of echo return loss, a little
/// less than the 6 dB G.168 assumes of a line) is taken for the caller's own voice.
const MAX_ECHO_GAIN: f32 = 0.6;

/// Samples per envelope step (10 ms at 16 kHz).
const STEP: usize = 160;

#[derive(Debug, Clone)]
pub struct EchoGuard {
    inbound: Envelope,
    outbound: Envelope,
    /// Longest echo delay considered, in envelope steps.
    max_delay: usize,
    /// Inbound envelope steps compared.
    window: usize,
    /// Correlation at or above which the inbound audio counts as echo.
    threshold: f32,
}

#[derive(Debug, Clone, Default)]
struct Envelope {
    partial: f32,
    partial_len: usize,
    steps: VecDeque<f32>,
}

impl Envelope {
    fn push(&mut self, samples: &[f32], keep: usize) {
        for &s in samples {
            self.partial += s * s;
            self.partial_len += 1;
            if self.partial_len == STEP {
                self.steps.push_back((self.partial / STEP as f32).sqrt());
                self.partial = 0.0;
                self.partial_len = 0;
                if self.steps.len() > keep {
                    self.steps.pop_front();
                }
            }
        }
    }
}

impl EchoGuard {
    pub fn new(max_delay_ms: u32, window_ms: u32, threshold: f32) -> Self {
        let mut g = Self {
            inbound: Envelope::default(),
            outbound: Envelope::default(),
            max_delay: (max_delay_ms / 10) as usize,
            window: (window_ms / 10).max(5) as usize,
            threshold,
        };
        // Before the call both sides were silent: the first words' echo is compared with that.
        let keep = g.keep();
        g.inbound.steps.extend(std::iter::repeat_n(0.0, keep));
        g.outbound.steps.extend(std::iter::repeat_n(0.0, keep));
        g
    }

    fn keep(&self) -> usize {
        self.window + self.max_delay + 1
    }

    /// Audio received from the caller (16 kHz), in order.
    pub fn push_inbound(&mut self, samples: &[f32]) {
        let keep = self.keep();
        self.inbound.push(samples, keep);
    }

    /// Audio sent to the caller (16 kHz), in step with the inbound audio: one frame out per frame in.
    pub fn push_outbound(&mut self, samples: &[f32]) {
        let keep = self.keep();
        self.outbound.push(samples, keep);
    }

    /// The best correlation of the recent inbound envelope with the outbound one at any delay, or
    /// 0 when the bot said nothing audible in that time.
    pub fn correlation(&self) -> f32 {
        let (inb, out) = (&self.inbound.steps, &self.outbound.steps);
        let w = self.window;
        if inb.len() < w {
            return 0.0;
        }
        let x: Vec<f32> = inb.iter().skip(inb.len() - w).copied().collect();
        let mut best = 0.0f32;
        for delay in 0..=self.max_delay {
            // The outbound window that would have arrived now, `delay` steps ago.
            let Some(end) = out.len().checked_sub(delay) else { break };
            let Some(start) = end.checked_sub(w) else { break };
            let y: Vec<f32> = out.range(start..end).copied().collect();
            // Echo is quieter than what caused it (a line's echo return loss is 6 dB or more,
            // ITU-T G.168); an inbound signal about as loud is someone talking. At a caller's
            // onset over the bot, the envelopes alone often correlate by chance (0.8-0.97 seen).
            let (ex, ey) = (x.iter().sum::<f32>(), y.iter().sum::<f32>());
            if ey < 1e-3 * w as f32 || ex > MAX_ECHO_GAIN * ey {
                continue;
            }
            best = best.max(pearson(&x, &y));
        }
        best
    }

    pub fn is_echo(&self) -> bool {
        self.correlation() >= self.threshold
    }
}

fn pearson(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len() as f32;
    let (mx, my) = (x.iter().sum::<f32>() / n, y.iter().sum::<f32>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= f32::EPSILON || syy <= f32::EPSILON {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up "voice": a tone whose loudness jumps syllable by syllable (80-250 ms each, some
    /// silent), in a pattern fixed by `seed`.
    fn voice(seed: u64, secs: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as f32 / (1u64 << 31) as f32
        };
        let n = (secs * 16000.0) as usize;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let len = (80.0 + 170.0 * next()) as usize * 16;
            let gain = if next() < 0.25 { 0.0 } else { 0.05 + 0.3 * next() };
            let pitch = 110.0 + 120.0 * next();
            for i in 0..len {
                let t = (out.len() + i) as f32 / 16000.0;
                out.push(gain * (t * 2.0 * std::f32::consts::PI * pitch).sin());
            }
        }
        out.truncate(n);
        out
    }

    fn run(out: &[f32], inbound: &[f32]) -> f32 {
        let mut g = EchoGuard::new(400, 300, 0.8);
        for (o, i) in out.chunks(320).zip(inbound.chunks(320)) {
            g.push_outbound(o);
            g.push_inbound(i);
        }
        g.correlation()
    }

    #[test]
    fn the_bots_delayed_quieter_voice_is_echo_and_a_caller_is_not() {
        let bot = voice(1, 2.0);
        let delay = 16000 * 120 / 1000;
        let echo: Vec<f32> = (0..bot.len()).map(|i| if i >= delay { 0.25 * bot[i - delay] } else { 0.0 }).collect();
        assert!(run(&bot, &echo) > 0.95, "{}", run(&bot, &echo));
        let caller = voice(4, 2.0);
        let both: Vec<f32> = echo.iter().zip(&caller).map(|(e, c)| e + c).collect();
        assert!(run(&bot, &both) < 0.8, "{}", run(&bot, &both));
        assert!(run(&vec![0.0; bot.len()], &caller) == 0.0, "no outbound audio, no echo");
    }
}
