//! The adaptive jitter buffer, sans-IO: packets go in as they arrive (with the time), and one
//! 20 ms frame comes out per tick, in order, or a note that it is missing (to be concealed).
//!
//! Sequence numbers are extended past their 16-bit wrap; a new SSRC (the caller's phone switched
//! streams, or a transfer) starts over. The playout delay follows the measured inter-arrival jitter
//! (RFC 3550 A.8): it grows at once when packets come late, and shrinks slowly (one frame dropped at
//! a time) when the line is calm, so steady calls keep a short delay. A backlog (a burst after a
//! stall) can be cut back to the target at once with [`JitterBuffer::trim`], which the caller of
//! the buffer does only in a pause, where dropping frames is not heard.

use std::collections::BTreeMap;
use std::time::Duration;

/// One packet's worth of media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub ssrc: u32,
    pub seq: u16,
    /// RTP timestamp (in the codec's clock).
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The next frame.
    Frame(Vec<u8>),
    /// The next frame was lost or is late: conceal it.
    Missing,
    /// Nothing has arrived yet (or the buffer is refilling after a reset).
    Waiting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub received: u64,
    pub duplicates: u64,
    /// Arrived after their turn to play had passed.
    pub late: u64,
    /// Played as concealment.
    pub concealed: u64,
    /// Dropped to shrink the delay.
    pub dropped: u64,
    pub ssrc_changes: u64,
}

#[derive(Debug)]
pub struct JitterBuffer {
    frame: Duration,
    /// Codec clock ticks per frame (160 for 20 ms at 8 kHz).
    ticks_per_frame: u32,
    min_delay: u32,
    max_delay: u32,
    ssrc: Option<u32>,
    /// Extended sequence number of the next frame to play.
    next: Option<u64>,
    /// Highest extended sequence number seen (for unwrapping).
    highest: u64,
    packets: BTreeMap<u64, Vec<u8>>,
    /// Inter-arrival jitter estimate in codec ticks (RFC 3550 A.8), and the previous transit.
    jitter: f64,
    last_transit: Option<f64>,
    /// Target depth in frames.
    target: u32,
    /// Arrivals in a row that needed less delay than the target.
    calm: u32,
    /// Frames played in a row with the buffer deeper than the target allows.
    deep_for: u32,
    stats: Stats,
}

impl JitterBuffer {
    /// `clock_rate`: the codec's RTP clock (8000 for G.711 and G.722).
    pub fn new(clock_rate: u32, frame: Duration, min_delay: Duration, max_delay: Duration) -> Self {
        let frames = |d: Duration| ((d.as_secs_f64() / frame.as_secs_f64()).round() as u32).max(1);
        Self {
            frame,
            ticks_per_frame: (clock_rate as f64 * frame.as_secs_f64()).round() as u32,
            min_delay: frames(min_delay),
            max_delay: frames(max_delay).max(frames(min_delay)),
            ssrc: None,
            next: None,
            highest: 0,
            packets: BTreeMap::new(),
            jitter: 0.0,
            last_transit: None,
            target: frames(min_delay),
            calm: 0,
            deep_for: 0,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Frames currently waiting.
    pub fn depth(&self) -> usize {
        self.packets.len()
    }

    /// The playout delay aimed for, in frames.
    pub fn target(&self) -> u32 {
        self.target
    }

    /// The 16-bit sequence number extended to 64 bits, nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let cycle = self.highest & !0xffff;
        let candidates = [cycle.wrapping_sub(0x10000), cycle, cycle + 0x10000].map(|c| c.wrapping_add(seq as u64));
        candidates.into_iter().filter(|&c| c < u64::MAX / 2).min_by_key(|&c| c.abs_diff(self.highest)).unwrap_or(seq as u64)
    }

    pub fn push(&mut self, packet: Packet, now: Duration) {
        if self.ssrc != Some(packet.ssrc) {
            if self.ssrc.is_some() {
                self.stats.ssrc_changes += 1;
            }
            self.ssrc = Some(packet.ssrc);
            self.packets.clear();
            self.next = None;
            self.last_transit = None;
            // Start the new stream's numbering where this packet is.
            self.highest = 0x10000 + packet.seq as u64;
        }
        let ext = self.extend(packet.seq);
        self.stats.received += 1;
        // Jitter from the transit time's variation (arrival in ticks minus the RTP timestamp).
        let arrival = now.as_secs_f64() * (self.ticks_per_frame as f64 / self.frame.as_secs_f64());
        let transit = arrival - packet.timestamp as f64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // A huge step is a timestamp jump (a new talk spurt after silence suppression), not jitter.
            if d < self.ticks_per_frame as f64 * 50.0 {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
        self.adapt();
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.packets.insert(ext, packet.payload).is_some() {
            self.stats.duplicates += 1;
        }
        self.highest = self.highest.max(ext);
        // Never hold more than the largest delay allows: the oldest go.
        while self.packets.len() > self.max_delay as usize * 2 + 4 {
            if let Some((&k, _)) = self.packets.iter().next() {
                self.packets.remove(&k);
                self.stats.dropped += 1;
                self.next = Some(k + 1);
            }
        }
    }

    fn adapt(&mut self) {
        // Enough delay to cover about three times the mean deviation, in frames.
        let want = (1.0 + 3.0 * self.jitter / self.ticks_per_frame as f64).ceil() as u32;
        let want = want.clamp(self.min_delay, self.max_delay);
        if want > self.target {
            self.target = want;
            self.calm = 0;
        } else if want < self.target {
            self.calm += 1;
            // A few seconds of calm before the delay comes down by one frame.
            if self.calm >= 150 {
                self.target -= 1;
                self.calm = 0;
            }
        }
    }

    /// Cuts a backlog (more than two frames over the target) back to the target; returns how many
    /// frames were dropped. Meant for a pause in the speech: the frames dropped are not heard.
    pub fn trim(&mut self) -> u32 {
        let mut dropped = 0;
        if self.next.is_some() && self.packets.len() as u32 > self.target + 2 {
            while self.packets.len() as u32 > self.target {
                let Some((&k, _)) = self.packets.iter().next() else { break };
                self.packets.remove(&k);
                self.stats.dropped += 1;
                self.next = Some(k + 1);
                dropped += 1;
            }
        }
        dropped
    }

    /// The next 20 ms to play (call once per frame time).
    pub fn pop(&mut self) -> Playout {
        let Some(next) = self.next else {
            // Start playing once the target depth has built up.
            if self.packets.len() as u32 >= self.target {
                self.next = self.packets.keys().next().copied();
                return self.pop();
            }
            return Playout::Waiting;
        };
        // Deeper than the target for half a second (not a momentary burst): skip the oldest frame
        // to bring the delay down.
        if self.packets.len() as u32 > self.target + 2 {
            self.deep_for += 1;
        } else {
            self.deep_for = 0;
        }
        if self.deep_for >= 25 {
            self.deep_for = 0;
            if let Some((&k, _)) = self.packets.iter().next() {
                self.packets.remove(&k);
                self.stats.dropped += 1;
                self.next = Some(k + 1);
            }
        }
        let next = self.next.unwrap_or(next);
        // Whatever is older than the frame due is gone (only after a skip).
        while let Some((&k, _)) = self.packets.iter().next() {
            if k >= next {
                break;
            }
            self.packets.remove(&k);
        }
        self.next = Some(next + 1);
        match self.packets.remove(&next) {
            Some(p) => Playout::Frame(p),
            None if self.packets.is_empty() => {
                // Ran dry: wait for the target depth again rather than conceal forever.
                self.next = None;
                self.stats.concealed += 1;
                Playout::Missing
            }
            None => {
                self.stats.concealed += 1;
                Playout::Missing
            }
        }
    }
}

/// Fills lost frames: the last good frame again, quieter each time, then silence (after G.711
/// Appendix I's idea, much simplified). Works on decoded samples.
#[derive(Debug, Default)]
pub struct Concealer {
    last: Vec<f32>,
    missing: u32,
}

impl Concealer {
    /// A frame that arrived: remembered, and faded in if it follows concealment.
    pub fn good(&mut self, samples: &mut [f32]) {
        if self.missing > 0 {
            let n = samples.len().max(1) as f32;
            for (i, s) in samples.iter_mut().enumerate() {
                *s *= i as f32 / n;
            }
        }
        self.missing = 0;
        self.last.clear();
        self.last.extend_from_slice(samples);
    }

    /// A frame to stand in for a lost one.
    pub fn conceal(&mut self, out: &mut [f32]) {
        self.missing += 1;
        let gain = match self.missing {
            1 => 0.8,
            2 => 0.5,
            3 => 0.2,
            _ => 0.0,
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.last.get(i).copied().unwrap_or(0.0) * gain;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jb() -> JitterBuffer {
        JitterBuffer::new(8000, Duration::from_millis(20), Duration::from_millis(40), Duration::from_millis(200))
    }

    fn pkt(seq: u16, ts: u32) -> Packet {
        Packet { ssrc: 1, seq, timestamp: ts, payload: vec![seq as u8] }
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Plays `n` frames, returning the payload's first byte or None for concealment/waiting.
    fn play(b: &mut JitterBuffer, n: usize) -> Vec<Option<u8>> {
        (0..n).map(|_| if let Playout::Frame(p) = b.pop() { Some(p[0]) } else { None }).collect()
    }

    #[test]
    fn reordered_packets_play_in_order_after_the_initial_delay() {
        let mut b = jb();
        for (i, seq) in [0u16, 2, 1, 3, 4].iter().enumerate() {
            b.push(pkt(*seq, *seq as u32 * 160), ms(i as u64 * 20));
        }
        assert_eq!(play(&mut b, 5), vec![Some(0), Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn a_lost_packet_is_reported_for_concealment_and_a_late_one_is_dropped() {
        let mut b = jb();
        for seq in [0u16, 1, 3, 4] {
            b.push(pkt(seq, seq as u32 * 160), ms(seq as u64 * 20));
        }
        assert_eq!(play(&mut b, 4), vec![Some(0), Some(1), None, Some(3)]);
        b.push(pkt(2, 320), ms(200));
        assert_eq!(b.stats().late, 1);
        assert_eq!(b.stats().concealed, 1);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut b = jb();
        let start = 65534u16;
        for i in 0..6u16 {
            b.push(pkt(start.wrapping_add(i), i as u32 * 160), ms(i as u64 * 20));
        }
        assert_eq!(play(&mut b, 6), vec![Some(254), Some(255), Some(0), Some(1), Some(2), Some(3)]);
    }

    #[test]
    fn a_new_ssrc_starts_over() {
        let mut b = jb();
        for seq in 0..3u16 {
            b.push(pkt(seq, seq as u32 * 160), ms(seq as u64 * 20));
        }
        play(&mut b, 3);
        for seq in 9000..9003u16 {
            b.push(Packet { ssrc: 2, seq, timestamp: 77, payload: vec![7] }, ms(100));
        }
        assert_eq!(b.stats().ssrc_changes, 1);
        assert_eq!(play(&mut b, 3), vec![Some(7), Some(7), Some(7)]);
    }

    #[test]
    fn the_delay_grows_with_jitter_and_shrinks_when_calm() {
        let mut b = jb();
        assert_eq!(b.target(), 2);
        // Packets sent every 20 ms arrive with up to 80 ms of jitter.
        let mut seq = 0u16;
        for i in 0..200u64 {
            let jitter = [0, 80, 10, 60, 30][i as usize % 5];
            b.push(pkt(seq, seq as u32 * 160), ms(i * 20 + jitter));
            seq += 1;
            b.pop();
        }
        let jittery = b.target();
        assert!(jittery >= 5, "{jittery}");
        // Then a calm line for a while.
        for i in 200..1200u64 {
            b.push(pkt(seq, seq as u32 * 160), ms(i * 20));
            seq += 1;
            b.pop();
        }
        assert!(b.target() < jittery, "{} vs {jittery}", b.target());
        assert!(b.depth() <= b.target() as usize + 3);
    }

    #[test]
    fn a_backlog_after_a_stall_is_trimmed_to_the_target_in_a_pause() {
        let mut b = jb();
        // A steady line, then the reader stalls for half a second: 25 frames arrive at once.
        for i in 0..50u16 {
            b.push(pkt(i, i as u32 * 160), ms(i as u64 * 20));
            let _ = b.pop();
        }
        for i in 50..75u16 {
            b.push(pkt(i, i as u32 * 160), ms(1500));
        }
        assert!(b.depth() >= 24);
        // Steady again; in the next pause the backlog is trimmed to the target at once.
        b.push(pkt(75, 75 * 160), ms(1520));
        let _ = b.pop();
        let target = b.target() as usize;
        assert!(b.trim() as usize >= 24 - target - 1, "{:?}", b.stats());
        assert_eq!(b.depth(), target);
        // It plays on in order from there, and a trim without a backlog does nothing.
        assert!(matches!(b.pop(), Playout::Frame(_)));
        assert_eq!(b.trim(), 0);
    }

    #[test]
    fn concealment_fades_to_silence() {
        let mut c = Concealer::default();
        let mut good = vec![1.0f32; 4];
        c.good(&mut good);
        let mut out = vec![0.0; 4];
        let mut levels = Vec::new();
        for _ in 0..5 {
            c.conceal(&mut out);
            levels.push(out[0]);
        }
        assert_eq!(levels, vec![0.8, 0.5, 0.2, 0.0, 0.0]);
    }
}
