//! Hold audio made here, not downloaded: a slow, quiet arpeggio of soft bell-like tones (a sine
//! with its octave, each note fading out), looping through four chords. Quiet enough that an
//! announcement over it is clear; it is ducked entirely while one plays.

use ivr_audio::RATE;

/// The chords' notes in Hz (Cmaj7, Am7, Fmaj7, G7), one note every 400 ms.
const NOTES: [[f32; 4]; 4] = [[261.63, 329.63, 392.00, 493.88], [220.00, 261.63, 329.63, 392.00], [174.61, 220.00, 261.63, 329.63], [196.00, 246.94, 293.66, 349.23]];
const NOTE_SAMPLES: usize = RATE as usize * 2 / 5;
const LEVEL: f32 = 0.06;

#[derive(Debug, Default, Clone)]
pub struct HoldMusic {
    /// Samples played so far.
    t: usize,
}

impl HoldMusic {
    /// Writes the next samples into `out` (replacing what is there).
    pub fn fill(&mut self, out: &mut [f32]) {
        for s in out.iter_mut() {
            let note = self.t / NOTE_SAMPLES;
            let chord = &NOTES[(note / 4) % NOTES.len()];
            let f = chord[note % 4];
            let within = (self.t % NOTE_SAMPLES) as f32 / RATE as f32;
            // A quick attack, then an exponential fade: a soft bell.
            let envelope = (within / 0.01).min(1.0) * (-within * 6.0).exp();
            let phase = 2.0 * std::f32::consts::PI * f * self.t as f32 / RATE as f32;
            *s = LEVEL * envelope * (phase.sin() + 0.3 * (2.0 * phase).sin());
            self.t = self.t.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_music_is_audible_quiet_and_changes() {
        let mut m = HoldMusic::default();
        let mut a = vec![0.0f32; RATE as usize];
        m.fill(&mut a);
        let rms = (a.iter().map(|x| x * x).sum::<f32>() / a.len() as f32).sqrt();
        assert!(rms > 0.005 && rms < 0.05, "rms {rms}");
        assert!(a.iter().all(|x| x.abs() <= 0.1));
        let mut b = vec![0.0f32; RATE as usize];
        m.fill(&mut b);
        assert_ne!(a, b, "it moves on");
    }
}
