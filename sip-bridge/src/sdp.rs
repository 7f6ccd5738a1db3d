//! SDP offer/answer for one audio stream (RFC 4566, RFC 3264): what the caller offers, what we
//! answer, and when nothing fits (488 Not Acceptable Here).

use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("malformed SDP line {0:?}")]
    Line(String),
    #[error("SDP has no connection address")]
    NoAddress,
    #[error("no codec in common (offered: {0})")]
    NoCodec(String),
}

/// The audio codecs this side speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    Pcmu,
    Pcma,
    G722,
}

impl Codec {
    /// Static payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }

    /// Audio rate the codec carries (G.722's RTP clock says 8000 but it carries 16 kHz).
    pub fn audio_rate(self) -> u32 {
        match self {
            Codec::G722 => 16_000,
            _ => 8_000,
        }
    }

    pub fn from_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            "G722" => Some(Codec::G722),
            _ => None,
        }
    }
}

/// Which way media flows, from the offerer's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Our direction in the answer (RFC 3264 6.1).
    fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }
}

/// What a session description says about its audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub address: IpAddr,
    pub port: u16,
    /// Payload types in the offerer's order of preference, with their encoding name and clock.
    pub formats: Vec<(u8, String, u32)>,
    pub direction: Direction,
    pub ptime: Option<u32>,
    /// `a=rtcp:PORT` (RFC 3605); otherwise RTCP is on the RTP port + 1.
    pub rtcp_port: Option<u16>,
}

impl Offer {
    pub fn parse(bytes: &[u8]) -> Result<Offer, SdpError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotText)?;
        let mut session_addr: Option<IpAddr> = None;
        let mut audio: Option<Offer> = None;
        let mut media_addr: Option<IpAddr> = None;
        let mut in_audio = false;
        let mut session_dir = Direction::SendRecv;
        let mut media_dir: Option<Direction> = None;
        let mut rtpmaps: Vec<(u8, String, u32)> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (kind, value) = line.split_once('=').ok_or_else(|| SdpError::Line(short(line)))?;
            match kind {
                "m" => {
                    if audio.is_some() {
                        in_audio = false;
                        continue;
                    }
                    let mut parts = value.split_whitespace();
                    let (media, port, proto) = (parts.next(), parts.next(), parts.next());
                    in_audio = media == Some("audio") && proto.is_some_and(|p| p.starts_with("RTP/"));
                    if in_audio {
                        let port = port.and_then(|p| p.split('/').next()?.parse().ok()).ok_or_else(|| SdpError::Line(short(line)))?;
                        let formats = parts.filter_map(|f| f.parse::<u8>().ok()).map(|pt| (pt, String::new(), 8000)).collect();
                        audio = Some(Offer { address: IpAddr::from([0, 0, 0, 0]), port, formats, direction: Direction::SendRecv, ptime: None, rtcp_port: None });
                    }
                }
                "c" => {
                    let addr = value.split_whitespace().nth(2).and_then(|a| a.split('/').next()?.parse().ok()).ok_or_else(|| SdpError::Line(short(line)))?;
                    if in_audio {
                        media_addr = Some(addr);
                    } else if audio.is_none() {
                        session_addr = Some(addr);
                    }
                }
                "a" => {
                    let dir = match value {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        if in_audio {
                            media_dir = Some(d);
                        } else if audio.is_none() {
                            session_dir = d;
                        }
                    } else if let (true, Some(map)) = (in_audio, value.strip_prefix("rtpmap:")) {
                        let (pt, enc) = map.split_once(' ').ok_or_else(|| SdpError::Line(short(line)))?;
                        let pt: u8 = pt.trim().parse().map_err(|_| SdpError::Line(short(line)))?;
                        let mut e = enc.trim().split('/');
                        let name = e.next().unwrap_or("").to_string();
                        let clock = e.next().and_then(|c| c.parse().ok()).unwrap_or(8000);
                        rtpmaps.push((pt, name, clock));
                    } else if let (true, Some(p)) = (in_audio, value.strip_prefix("rtcp:")) {
                        // Only the port: RTCP goes to the media address like RTP (never to an
                        // address read from the message that differs from it).
                        if let Some(a) = audio.as_mut() {
                            a.rtcp_port = p.split_whitespace().next().and_then(|p| p.parse().ok());
                        }
                    } else if let (true, Some(p)) = (in_audio, value.strip_prefix("ptime:")) {
                        if let Some(a) = audio.as_mut() {
                            a.ptime = p.trim().parse().ok();
                        }
                    }
                }
                _ => {}
            }
        }
        let mut audio = audio.ok_or(SdpError::NoAudio)?;
        audio.address = media_addr.or(session_addr).ok_or(SdpError::NoAddress)?;
        audio.direction = media_dir.unwrap_or(session_dir);
        for f in audio.formats.iter_mut() {
            if let Some((_, name, clock)) = rtpmaps.iter().find(|(pt, _, _)| *pt == f.0) {
                f.1 = name.clone();
                f.2 = *clock;
            } else {
                f.1 = match f.0 {
                    0 => "PCMU",
                    8 => "PCMA",
                    9 => "G722",
                    _ => "",
                }
                .to_string();
            }
        }
        Ok(audio)
    }

    /// Holding the call: the caller will not listen (sendonly/inactive, or the old 0.0.0.0 address).
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive) || self.address.is_unspecified()
    }
}

/// What was agreed for the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreed {
    pub codec: Codec,
    /// The payload type the offerer uses for it (static types; a dynamic one when mapped so).
    pub payload_type: u8,
    /// RFC 4733 events (DTMF), if the offerer supports them, with their payload type.
    pub telephone_event: Option<u8>,
    pub remote: std::net::SocketAddr,
    /// Where the caller's RTCP goes until their reports show where it comes from.
    pub remote_rtcp: std::net::SocketAddr,
    pub direction: Direction,
}

/// Picks the codec: our preference order first, among what the caller offered. None fits: 488.
impl Agreed {
    /// Media not agreed yet: a call we placed, before the answer.
    pub fn unknown() -> Self {
        let nowhere: std::net::SocketAddr = ([0, 0, 0, 0], 0).into();
        Agreed { codec: Codec::Pcmu, payload_type: 0, telephone_event: None, remote: nowhere, remote_rtcp: nowhere, direction: Direction::SendRecv }
    }
}

pub fn negotiate(offer: &Offer, preference: &[Codec]) -> Result<Agreed, SdpError> {
    let offered = |c: Codec| offer.formats.iter().find(|(_, name, _)| Codec::from_name(name) == Some(c)).map(|(pt, _, _)| *pt);
    let (codec, payload_type) = preference
        .iter()
        .find_map(|&c| offered(c).map(|pt| (c, pt)))
        .ok_or_else(|| SdpError::NoCodec(offer.formats.iter().map(|(pt, n, _)| if n.is_empty() { pt.to_string() } else { n.clone() }).collect::<Vec<_>>().join(", ")))?;
    let telephone_event =
        offer.formats.iter().find(|(_, name, clock)| name.eq_ignore_ascii_case("telephone-event") && *clock == 8000).map(|(pt, _, _)| *pt);
    let rtcp_port = offer.rtcp_port.unwrap_or(offer.port.wrapping_add(1));
    Ok(Agreed {
        codec,
        payload_type,
        telephone_event,
        remote: (offer.address, offer.port).into(),
        remote_rtcp: (offer.address, rtcp_port).into(),
        direction: offer.direction.answer(),
    })
}

/// Our answer (or offer, with `Direction::SendRecv`): one audio stream at `local`.
/// Our offer for a call we place: every codec we take, in order of preference, and RFC 4733
/// events (payload type 101).
pub fn offer(codecs: &[Codec], local: std::net::SocketAddr, session_id: u64) -> String {
    let ip = match local.ip() {
        IpAddr::V4(a) => format!("IP4 {a}"),
        IpAddr::V6(a) => format!("IP6 {a}"),
    };
    let mut pts: Vec<String> = codecs.iter().map(|c| c.payload_type().to_string()).collect();
    pts.push("101".into());
    let mut s = format!("v=0\r\no=ivr {session_id} 1 IN {ip}\r\ns=ivr\r\nc=IN {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n", local.port(), pts.join(" "));
    for c in codecs {
        let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.encoding());
    }
    s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n");
    s
}

pub fn describe(agreed: &Agreed, local: std::net::SocketAddr, session_id: u64, version: u64) -> String {
    let ip = match local.ip() {
        IpAddr::V4(a) => format!("IP4 {a}"),
        IpAddr::V6(a) => format!("IP6 {a}"),
    };
    let mut pts = agreed.payload_type.to_string();
    if let Some(te) = agreed.telephone_event {
        let _ = write!(pts, " {te}");
    }
    let mut s = format!("v=0\r\no=ivr {session_id} {version} IN {ip}\r\ns=ivr\r\nc=IN {ip}\r\nt=0 0\r\nm=audio {} RTP/AVP {pts}\r\n", local.port());
    let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", agreed.payload_type, agreed.codec.encoding());
    if let Some(te) = agreed.telephone_event {
        let _ = write!(s, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", agreed.direction.attr());
    s
}

fn short(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 9 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n";

    #[test]
    fn our_preference_wins_among_what_is_offered() {
        let offer = Offer::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(offer.port, 6000);
        let a = negotiate(&offer, &[Codec::Pcmu, Codec::Pcma]).unwrap();
        assert_eq!((a.codec, a.payload_type, a.telephone_event), (Codec::Pcmu, 0, Some(101)));
        assert_eq!(a.remote, "127.0.0.1:6000".parse().unwrap());
        let a = negotiate(&offer, &[Codec::G722, Codec::Pcmu]).unwrap();
        assert_eq!(a.codec, Codec::G722);
        let answer = describe(&a, "127.0.0.1:7000".parse().unwrap(), 5, 1);
        assert!(answer.contains("m=audio 7000 RTP/AVP 9 101\r\n") && answer.contains("a=rtpmap:9 G722/8000"), "{answer}");
        let back = Offer::parse(answer.as_bytes()).unwrap();
        assert_eq!(negotiate(&back, &[Codec::G722]).unwrap().telephone_event, Some(101));
    }

    #[test]
    fn nothing_in_common_is_an_error_naming_what_was_offered() {
        let opus = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n";
        let offer = Offer::parse(opus.as_bytes()).unwrap();
        assert_eq!(negotiate(&offer, &[Codec::Pcmu]), Err(SdpError::NoCodec("opus".into())));
        assert_eq!(Offer::parse(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 1 RTP/AVP 96\r\n"), Err(SdpError::NoAudio));
        assert_eq!(Offer::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::NoAddress));
        assert!(Offer::parse(b"garbage").is_err());
    }

    #[test]
    fn hold_is_recognised_both_ways() {
        let hold = OFFER.replace("a=sendrecv", "a=sendonly");
        let offer = Offer::parse(hold.as_bytes()).unwrap();
        assert!(offer.is_hold());
        assert_eq!(negotiate(&offer, &[Codec::Pcmu]).unwrap().direction, Direction::RecvOnly);
        let old_style = OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        assert!(Offer::parse(old_style.as_bytes()).unwrap().is_hold());
        assert!(!Offer::parse(OFFER.as_bytes()).unwrap().is_hold());
    }
}
