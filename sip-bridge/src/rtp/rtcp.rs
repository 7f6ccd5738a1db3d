//! RTCP for one call (RFC 3550 section 6), sans-IO: the RTP we send and receive is counted, the
//! caller's reports come in as datagrams, and every few seconds a compound report goes out (a
//! sender report while the bot sends, which it always does; our reception report of the caller's
//! stream inside it; our CNAME). Carriers and PBXs use these to judge a line, and the caller's
//! reports give us the round-trip time and the loss and jitter they see, which go into the call
//! record.

use std::time::Duration;

use bytes::Bytes;
use rtcp::reception_report::ReceptionReport;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};

/// The RTP clock of every codec we speak (G.722's too, per RFC 3551).
const CLOCK: u64 = 8000;
/// RFC 3550's minimum report interval; each report is drawn from 0.5 to 1.5 times it.
const INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RtcpError {
    #[error("not an RTCP packet: {0}")]
    Malformed(String),
}

/// What the call record keeps of RTCP.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RtcpStats {
    pub reports_sent: u64,
    pub reports_received: u64,
    /// From the caller's last report that echoed one of ours.
    pub round_trip_ms: Option<f64>,
    /// Share of our packets the caller reported lost (last report), 0..1.
    pub remote_loss: Option<f64>,
    /// Interarrival jitter the caller reported for our stream.
    pub remote_jitter_ms: Option<f64>,
    /// Of the caller's stream, as we saw it.
    pub lost: u64,
    pub jitter_ms: f64,
}

/// The caller's stream as received (RFC 3550 appendix A.1 and A.8).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    /// Sequence number wraps, times 65536.
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Last (arrival - RTP timestamp), in RTP units.
    transit: Option<i64>,
    /// In RTP units, scaled as RFC 3550 A.8 does (estimate times 16).
    jitter: f64,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Self {
        Source { ssrc, base_seq: seq as u32, max_seq: seq, cycles: 0, received: 0, expected_prior: 0, received_prior: 0, transit: None, jitter: 0.0 }
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(self.max_seq as u32)
    }

    fn expected(&self) -> u32 {
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    fn lost(&self) -> u32 {
        self.expected().saturating_sub(self.received)
    }
}

pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    /// NTP time (64-bit fixed point) at `now` = 0, so reports carry wall-clock time while the
    /// session itself only sees the call's clock.
    ntp_at_zero: u64,
    sent_packets: u32,
    sent_octets: u32,
    /// RTP timestamp of our last packet and when it was sent (to extrapolate the SR's).
    last_sent: Option<(u32, Duration)>,
    source: Option<Source>,
    /// The middle 32 bits of the NTP time of the caller's last SR, and when it arrived.
    their_sr: Option<(u32, Duration)>,
    next_report: Duration,
    rng: u64,
    stats: RtcpStats,
}

impl RtcpSession {
    /// `ntp_at_zero`: the wall-clock time at `now` = 0 as NTP; `seed` spreads the report times.
    pub fn new(ssrc: u32, cname: String, ntp_at_zero: u64, seed: u64, now: Duration) -> Self {
        let mut s = RtcpSession {
            ssrc,
            cname,
            ntp_at_zero,
            sent_packets: 0,
            sent_octets: 0,
            last_sent: None,
            source: None,
            their_sr: None,
            next_report: now,
            rng: seed | 1,
            stats: RtcpStats::default(),
        };
        // The first report after half an interval (RFC 3550 6.2).
        s.next_report = now + s.jittered(INTERVAL / 2);
        s
    }

    /// `d` times a random factor in [0.5, 1.5).
    fn jittered(&mut self, d: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let f = 0.5 + (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(f)
    }

    fn ntp(&self, now: Duration) -> u64 {
        let frac = ((now.subsec_nanos() as u64) << 32) / 1_000_000_000;
        self.ntp_at_zero.wrapping_add((now.as_secs() << 32) | frac)
    }

    pub fn stats(&self) -> RtcpStats {
        let mut s = self.stats;
        if let Some(src) = &self.source {
            s.lost = src.lost() as u64;
            s.jitter_ms = src.jitter / 16.0 * 1000.0 / CLOCK as f64;
        }
        s
    }

    pub fn on_rtp_sent(&mut self, rtp_timestamp: u32, payload_len: usize, now: Duration) {
        self.sent_packets = self.sent_packets.wrapping_add(1);
        self.sent_octets = self.sent_octets.wrapping_add(payload_len as u32);
        self.last_sent = Some((rtp_timestamp, now));
    }

    pub fn on_rtp_received(&mut self, ssrc: u32, seq: u16, rtp_timestamp: u32, now: Duration) {
        let src = match &mut self.source {
            // A new source (the caller's SSRC changed, e.g. after a transfer on their side).
            Some(s) if s.ssrc == ssrc => s,
            _ => self.source.insert(Source::new(ssrc, seq)),
        };
        let delta = seq.wrapping_sub(src.max_seq);
        if delta != 0 && delta < 0x8000 {
            if seq < src.max_seq {
                src.cycles = src.cycles.wrapping_add(1 << 16);
            }
            src.max_seq = seq;
        }
        src.received = src.received.wrapping_add(1);
        let arrival = (now.as_nanos() as u64 * CLOCK / 1_000_000_000) as i64;
        let transit = arrival - rtp_timestamp as i64;
        if let Some(prev) = src.transit {
            let d = (transit - prev).unsigned_abs() as f64;
            src.jitter += d - (src.jitter + 8.0) / 16.0;
        }
        src.transit = Some(transit);
    }

    /// A datagram from the caller's RTCP port (or muxed on the RTP port).
    pub fn on_rtcp(&mut self, bytes: &[u8], now: Duration) -> Result<(), RtcpError> {
        let mut buf = Bytes::copy_from_slice(bytes);
        let packets = rtcp::packet::unmarshal(&mut buf).map_err(|e| RtcpError::Malformed(e.to_string()))?;
        self.stats.reports_received += 1;
        for p in &packets {
            let any = p.as_any();
            let reports = if let Some(sr) = any.downcast_ref::<SenderReport>() {
                self.their_sr = Some(((sr.ntp_time >> 16) as u32, now));
                &sr.reports
            } else if let Some(rr) = any.downcast_ref::<rtcp::receiver_report::ReceiverReport>() {
                &rr.reports
            } else {
                continue;
            };
            for r in reports.iter().filter(|r| r.ssrc == self.ssrc) {
                self.stats.remote_loss = Some(r.fraction_lost as f64 / 256.0);
                self.stats.remote_jitter_ms = Some(r.jitter as f64 * 1000.0 / CLOCK as f64);
                if r.last_sender_report != 0 {
                    // RFC 3550 6.4.1: RTT = arrival - LSR - DLSR, in 1/65536 s.
                    let arrival = (self.ntp(now) >> 16) as u32;
                    let rtt = arrival.wrapping_sub(r.last_sender_report).wrapping_sub(r.delay);
                    if rtt < 0x8000_0000 {
                        self.stats.round_trip_ms = Some(rtt as f64 * 1000.0 / 65536.0);
                    }
                }
            }
        }
        Ok(())
    }

    /// When the next report is due.
    pub fn poll_timeout(&self) -> Duration {
        self.next_report
    }

    /// The compound report to send now, if one is due.
    pub fn poll_report(&mut self, now: Duration) -> Option<Vec<u8>> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.jittered(INTERVAL);
        let block = self.reception_block(now);
        let mut packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> = Vec::with_capacity(2);
        match self.last_sent {
            Some((ts, at)) => {
                // The RTP time that corresponds to now, at the codec's clock.
                let since = now.saturating_sub(at).as_nanos() as u64 * CLOCK / 1_000_000_000;
                packets.push(Box::new(SenderReport {
                    ssrc: self.ssrc,
                    ntp_time: self.ntp(now),
                    rtp_time: ts.wrapping_add(since as u32),
                    packet_count: self.sent_packets,
                    octet_count: self.sent_octets,
                    reports: block.into_iter().collect(),
                    profile_extensions: Bytes::new(),
                }));
            }
            None => packets.push(Box::new(rtcp::receiver_report::ReceiverReport {
                ssrc: self.ssrc,
                reports: block.into_iter().collect(),
                profile_extensions: Bytes::new(),
            })),
        }
        packets.push(Box::new(SourceDescription {
            chunks: vec![SourceDescriptionChunk {
                source: self.ssrc,
                items: vec![SourceDescriptionItem { sdes_type: SdesType::SdesCname, text: Bytes::from(self.cname.clone()) }],
            }],
        }));
        let bytes = rtcp::packet::marshal(&packets).ok()?;
        self.stats.reports_sent += 1;
        Some(bytes.to_vec())
    }

    /// A BYE for the end of the call.
    pub fn bye(&mut self) -> Option<Vec<u8>> {
        let packets: Vec<Box<dyn rtcp::packet::Packet + Send + Sync>> =
            vec![Box::new(rtcp::goodbye::Goodbye { sources: vec![self.ssrc], reason: Bytes::from_static(b"call ended") })];
        rtcp::packet::marshal(&packets).ok().map(|b| b.to_vec())
    }

    fn reception_block(&mut self, now: Duration) -> Option<ReceptionReport> {
        let their_sr = self.their_sr;
        let src = self.source.as_mut()?;
        let expected = src.expected();
        let expected_interval = expected.wrapping_sub(src.expected_prior);
        let received_interval = src.received.wrapping_sub(src.received_prior);
        src.expected_prior = expected;
        src.received_prior = src.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 { 0 } else { ((lost_interval << 8) / expected_interval as i64).min(255) as u8 };
        let (last_sender_report, delay) = match their_sr {
            Some((lsr, at)) => {
                let dlsr = now.saturating_sub(at).as_nanos() as u64 * 65536 / 1_000_000_000;
                (lsr, dlsr as u32)
            }
            None => (0, 0),
        };
        Some(ReceptionReport {
            ssrc: src.ssrc,
            fraction_lost,
            total_lost: src.lost().min(0x7f_ffff),
            last_sequence_number: src.extended_max(),
            jitter: (src.jitter / 16.0) as u32,
            last_sender_report,
            delay,
        })
    }
}

/// Whether a datagram on the RTP port is RTCP (RFC 5761 4: payload types 64-95 with the marker
/// bit, i.e. packet types 192-223, are not RTP).
pub fn is_rtcp(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0] >> 6 == 2 && (192..=223).contains(&bytes[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Two sessions talking to each other: the caller's view of us and ours of them.
    #[test]
    fn reports_carry_loss_jitter_and_round_trip_time() {
        let (mut us, mut them) = (RtcpSession::new(0x1111, "ivr".into(), 1 << 40, 7, ms(0)), RtcpSession::new(0x2222, "caller".into(), 5 << 40, 9, ms(0)));
        // 500 packets each way over 10 s; every 10th of theirs is lost; ours arrive 30 ms late.
        for i in 0..500u32 {
            let t = ms(i as u64 * 20);
            us.on_rtp_sent(i * 160, 160, t);
            them.on_rtp_received(0x1111, i as u16, i * 160, t + ms(30) + ms((i % 3) as u64));
            them.on_rtp_sent(i * 160, 160, t);
            if i % 10 != 0 {
                us.on_rtp_received(0x2222, (65_500 + i) as u16, i * 160, t + ms(30));
            }
        }
        // They report first; we answer; they report again with our SR's time: RTT 60 ms.
        let t = ms(10_000);
        let theirs = them.poll_report(t).expect("due");
        us.on_rtcp(&theirs, t + ms(30)).unwrap();
        let ours = us.poll_report(t + ms(40)).expect("due");
        them.on_rtcp(&ours, t + ms(70)).unwrap();
        them.next_report = t;
        let again = them.poll_report(t + ms(100)).unwrap();
        us.on_rtcp(&again, t + ms(130)).unwrap();
        let s = us.stats();
        assert_eq!((s.reports_sent, s.reports_received), (1, 2));
        let rtt = s.round_trip_ms.expect("an RTT");
        assert!((rtt - 60.0).abs() < 1.0, "{rtt}");
        assert_eq!(s.remote_loss, Some(0.0), "they lost none of ours");
        assert!(s.remote_jitter_ms.unwrap() > 0.0 && s.remote_jitter_ms.unwrap() < 2.0, "{s:?}");
        // Every 10th of theirs, across the sequence wrap; counted from the first that arrived (i = 1).
        assert_eq!(s.lost, 49);
        // Our SR told them what we lost: 10%.
        let mut b = Bytes::from(ours);
        let packets = rtcp::packet::unmarshal(&mut b).unwrap();
        let sr = packets[0].as_any().downcast_ref::<SenderReport>().unwrap();
        assert_eq!(sr.packet_count, 500);
        assert_eq!(sr.reports[0].ssrc, 0x2222);
        assert_eq!(sr.reports[0].fraction_lost, 25, "10% of 256");
        assert_eq!(sr.reports[0].last_sequence_number, 65_536 + (65_500 + 499 - 65_536));
    }

    #[test]
    fn reports_come_every_few_seconds_and_junk_is_refused() {
        let mut s = RtcpSession::new(1, "ivr".into(), 0, 3, ms(0));
        let first = s.poll_timeout();
        assert!(first >= ms(1250) && first < ms(3750), "{first:?}");
        assert!(s.poll_report(first - ms(1)).is_none());
        let report = s.poll_report(first).unwrap();
        assert!(is_rtcp(&report), "an RR with SDES");
        let gap = s.poll_timeout() - first;
        assert!(gap >= ms(2500) && gap < ms(7500), "{gap:?}");
        assert!(s.on_rtcp(b"\x80\xc8\x00", ms(1)).is_err());
        assert!(s.on_rtcp(&[0xff; 40], ms(1)).is_err());
        assert!(!is_rtcp(&[0x80, 0x00, 0, 1, 0, 0, 0, 0]), "RTP PCMU");
        assert!(is_rtcp(&s.bye().unwrap()));
    }

    /// Truncated and bit-flipped real reports: refused or read, never a panic.
    #[test]
    fn mutated_reports_never_panic() {
        let mut a = RtcpSession::new(1, "ivr".into(), 0, 3, ms(0));
        let mut b = RtcpSession::new(2, "caller".into(), 0, 5, ms(0));
        for i in 0..100u32 {
            a.on_rtp_sent(i * 160, 160, ms(i as u64 * 20));
            b.on_rtp_received(1, i as u16, i * 160, ms(i as u64 * 20));
        }
        let report = b.poll_report(ms(10_000)).unwrap();
        let mut x = 0x2545f4914f6cdd1du64;
        for n in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = report.clone();
            if n % 3 == 0 {
                m.truncate((x as usize) % (m.len() + 1));
            }
            for k in 0..(x % 4) {
                let i = ((x >> (8 * k)) as usize) % m.len().max(1);
                if let Some(byte) = m.get_mut(i) {
                    *byte ^= (x >> (16 + k)) as u8 | 1;
                }
            }
            let _ = a.on_rtcp(&m, ms(10_000 + n));
        }
    }
}
