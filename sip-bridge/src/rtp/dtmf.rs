//! RFC 4733 telephone events (keypad digits carried in RTP), both ways.
//!
//! A key press is a run of packets sharing one RTP timestamp: the first marks the start, updates
//! repeat it with a growing duration, and the last three carry the End bit. The receiver reports
//! each key once, on its first packet (so the call reacts at once), whatever is lost or repeated.

/// Digit for an event code (0-9, *, #, A-D).
pub fn digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

pub fn event_code(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// One telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub code: u8,
    pub end: bool,
    pub volume: u8,
    /// In RTP clock ticks.
    pub duration: u16,
}

impl Event {
    pub fn parse(payload: &[u8]) -> Option<Event> {
        let [code, flags, d0, d1, ..] = *payload else { return None };
        Some(Event { code, end: flags & 0x80 != 0, volume: flags & 0x3f, duration: u16::from_be_bytes([d0, d1]) })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.code, (u8::from(self.end) << 7) | (self.volume & 0x3f), d[0], d[1]]
    }
}

/// Turns received telephone-event packets into key presses.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// RTP timestamp of the last event reported.
    last: Option<u32>,
}

impl DtmfReceiver {
    /// A telephone-event packet with its RTP timestamp; the digit if it starts a new key press.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = Event::parse(payload)?;
        if self.last == Some(timestamp) {
            return None;
        }
        self.last = Some(timestamp);
        digit(event.code)
    }
}

/// The packets (marker, timestamp offset in ticks, payload) that send one key press lasting
/// `duration_ticks`, updates every `step_ticks`, and three End packets.
pub fn key_press(digit: char, duration_ticks: u16, step_ticks: u16) -> Vec<(bool, [u8; 4])> {
    let Some(code) = event_code(digit) else { return Vec::new() };
    let step = step_ticks.max(1);
    let mut out = Vec::new();
    let mut d = step.min(duration_ticks);
    out.push((true, Event { code, end: false, volume: 10, duration: d }.to_bytes()));
    while d < duration_ticks {
        d = (d + step).min(duration_ticks);
        let end = d == duration_ticks;
        out.push((false, Event { code, end, volume: 10, duration: d }.to_bytes()));
    }
    let last = Event { code, end: true, volume: 10, duration: duration_ticks }.to_bytes();
    while out.iter().filter(|(_, p)| p[1] & 0x80 != 0).count() < 3 {
        out.push((false, last));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_press_is_reported_once_whatever_is_repeated_or_lost() {
        let packets = key_press('5', 800, 400);
        assert!(packets[0].0, "the first packet has the marker");
        assert_eq!(packets.iter().filter(|(_, p)| p[1] & 0x80 != 0).count(), 3);
        let mut rx = DtmfReceiver::default();
        let got: Vec<char> = packets.iter().filter_map(|(_, p)| rx.on_packet(1000, p)).collect();
        assert_eq!(got, vec!['5']);
        // The next press (new timestamp), its first packet lost.
        let next = key_press('#', 800, 400);
        let got: Vec<char> = next.iter().skip(1).filter_map(|(_, p)| rx.on_packet(3000, p)).collect();
        assert_eq!(got, vec!['#']);
        assert_eq!(rx.on_packet(5000, &[1, 2]), None, "short payload");
        assert_eq!(rx.on_packet(6000, &[200, 0, 0, 1]), None, "not a keypad event");
    }

    #[test]
    fn codes_and_digits_map_both_ways() {
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(digit(event_code(d).unwrap()), Some(d));
        }
        assert_eq!(Event::parse(&Event { code: 11, end: true, volume: 7, duration: 1234 }.to_bytes()).unwrap().duration, 1234);
    }
}
