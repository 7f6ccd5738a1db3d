//! SIP messages (RFC 3261 section 7): parsing from bytes that may be anything, and writing.
//!
//! The parser never panics and says what is wrong, because its errors become the reason phrase of
//! a `400 Bad Request` (505 for another SIP version, 513 for a message too large). The layer is
//! typed: a request's method is a [`Method`], header names are [`HeaderName`]s (compact forms and
//! any capitalisation are one name), and the values every transaction and dialog depends on (Via,
//! CSeq, Call-ID, From, To, Max-Forwards, Content-Length, Date) are checked against RFC 3261's
//! grammar when the message is parsed, so a message that gets past [`Message::parse`] can be
//! relied on. Values are kept as written (unfolded) and read through typed views (`Via`, `CSeq`,
//! tags). The RFC 4475 torture messages are among the tests (`tests/rfc4475.rs`).

use std::fmt::Write as _;

pub use super::grammar::{param, uri_of};
use super::grammar::{has_uri_headers, is_absolute_uri, is_address_well_formed, is_sip_date, is_token, params, split_list};
pub use super::header::{Header, HeaderName};
pub use super::method::Method;

/// Largest message accepted (UDP datagrams are smaller; a TCP peer could send more). Larger: 513.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most headers accepted in one message.
const MAX_HEADERS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("empty message")]
    Empty,
    #[error("message is not UTF-8 text")]
    NotText,
    #[error("malformed start line")]
    StartLine,
    #[error("malformed Request-URI")]
    RequestUri,
    #[error("unsupported SIP version {0:?}")]
    Version(String),
    #[error("malformed status code")]
    Status,
    #[error("malformed header line {0:?}")]
    Header(String),
    #[error("too many headers")]
    TooManyHeaders,
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// A header that may have one value has several (two Content-Lengths would let the peer's
    /// and our reading of a TCP stream disagree: request smuggling).
    #[error("more than one {0} value")]
    Repeated(&'static str),
    #[error("body shorter than Content-Length ({got} of {want} bytes)")]
    ShortBody { got: usize, want: usize },
    #[error("incomplete message")]
    Incomplete,
}

impl ParseError {
    /// The response status a server answers a request that failed this way with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::TooLarge(_) => 513,
            ParseError::Version(_) => 505,
            _ => 400,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { status: u16, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// Headers RFC 3261 allows once, with one value (a second one, or a comma list, is a 400).
const SINGLE_VALUED: [HeaderName; 7] =
    [HeaderName::CallId, HeaderName::CSeq, HeaderName::From, HeaderName::To, HeaderName::MaxForwards, HeaderName::ContentLength, HeaderName::ContentType];

/// Headers whose values are name-addr or addr-spec (with parameters).
const ADDRESSES: [HeaderName; 5] = [HeaderName::From, HeaderName::To, HeaderName::Contact, HeaderName::Route, HeaderName::RecordRoute];

/// The name a parse error gives a header.
fn label(name: &HeaderName) -> &'static str {
    name.canonical().unwrap_or("a")
}

/// A Content-Length value: digits only (no sign, RFC 4475 3.1.2.3).
fn content_length(v: &str) -> Result<usize, ParseError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::Malformed("Content-Length"));
    }
    v.parse().map_err(|_| ParseError::Malformed("Content-Length"))
}

impl Message {
    /// Parses one whole message (a UDP datagram, or one framed by [`frame`] from a TCP stream).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge(bytes.len()));
        }
        // Keep-alive CRLFs before a message are allowed (RFC 5626).
        let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n').ok_or(ParseError::Empty)?;
        let bytes = &bytes[start..];
        let head_end = find(bytes, b"\r\n\r\n").map(|i| (i, i + 4)).or_else(|| find(bytes, b"\n\n").map(|i| (i, i + 2)));
        let (head, body) = match head_end {
            Some((h, b)) => (&bytes[..h], &bytes[b..]),
            None => (bytes, &[][..]),
        };
        let head = std::str::from_utf8(head).map_err(|_| ParseError::NotText)?;
        let mut lines = unfold(head).into_iter();
        let first = lines.next().ok_or(ParseError::Empty)?;
        let start = parse_start(&first)?;
        let mut headers = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| ParseError::Header(truncate(&line)))?;
            let name = HeaderName::parse(name.trim()).ok_or_else(|| ParseError::Header(truncate(&line)))?;
            if headers.len() >= MAX_HEADERS {
                return Err(ParseError::TooManyHeaders);
            }
            headers.push(Header { name, value: value.trim().to_string() });
        }
        let mut msg = Message { start, headers, body: Vec::new() };
        // Checked before the body is cut, so that two lengths are a 400 and not a guess.
        if msg.header_values(HeaderName::ContentLength).len() > 1 {
            return Err(ParseError::Repeated("Content-Length"));
        }
        // The body is what Content-Length says (the rest of a datagram without one).
        let body = match msg.header(HeaderName::ContentLength) {
            Some(v) => {
                let want = content_length(v)?;
                if body.len() < want {
                    return Err(ParseError::ShortBody { got: body.len(), want });
                }
                &body[..want]
            }
            None => body,
        };
        msg.body = body.to_vec();
        msg.check()?;
        Ok(msg)
    }

    /// The headers every message must carry, each in a form RFC 3261 allows.
    fn check(&self) -> Result<(), ParseError> {
        for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            if self.header(name.clone()).is_none() {
                return Err(ParseError::Missing(label(&name)));
            }
        }
        for name in SINGLE_VALUED {
            if self.header_values(name.clone()).len() > 1 {
                return Err(ParseError::Repeated(label(&name)));
            }
        }
        for name in ADDRESSES {
            if self.header_values(name.clone()).iter().any(|v| !is_address_well_formed(v)) {
                return Err(ParseError::Malformed(label(&name)));
            }
        }
        if self.header(HeaderName::Date).is_some_and(|d| !is_sip_date(d)) {
            return Err(ParseError::Malformed("Date"));
        }
        let call_id = self.call_id();
        if call_id.is_empty() || call_id.chars().any(char::is_whitespace) {
            return Err(ParseError::Malformed("Call-ID"));
        }
        if let Some(mf) = self.header(HeaderName::MaxForwards) {
            if mf.is_empty() || !mf.bytes().all(|b| b.is_ascii_digit()) || mf.parse::<u8>().is_err() {
                return Err(ParseError::Malformed("Max-Forwards"));
            }
        }
        // Every Via, not only the top one: a response travels back along all of them.
        if self.header_values(HeaderName::Via).iter().any(|v| Via::parse(v).is_none()) || self.header_lines(HeaderName::Via).iter().any(|v| v.trim().is_empty()) {
            return Err(ParseError::Malformed("Via"));
        }
        let cseq = self.cseq().ok_or(ParseError::Malformed("CSeq"))?;
        if let StartLine::Request { method, uri } = &self.start {
            if cseq.method != *method {
                return Err(ParseError::Malformed("CSeq"));
            }
            // Headers escaped into a SIP Request-URI are not allowed there (RFC 3261 19.1.5).
            if has_uri_headers(uri) {
                return Err(ParseError::RequestUri);
            }
        }
        Ok(())
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.iter().find(|h| h.name == name).map(|h| h.value.as_str())
    }

    /// Every value of a header, comma-separated lists split (outside quotes and angle brackets).
    pub fn header_values(&self, name: HeaderName) -> Vec<&str> {
        self.headers.iter().filter(|h| h.name == name).flat_map(|h| split_list(&h.value)).collect()
    }

    /// Every value of a header as written, not split at commas: for the headers whose values are
    /// not lists (RFC 3261 7.3.1: WWW-Authenticate, Authorization, ...).
    pub fn header_lines(&self, name: HeaderName) -> Vec<&str> {
        self.headers.iter().filter(|h| h.name == name).map(|h| h.value.as_str()).collect()
    }

    pub fn call_id(&self) -> &str {
        self.header(HeaderName::CallId).unwrap_or("")
    }

    pub fn cseq(&self) -> Option<CSeq> {
        let v = self.header(HeaderName::CSeq)?;
        let (n, m) = v.split_once(char::is_whitespace)?;
        let n = n.trim();
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(CSeq { number: n.parse().ok()?, method: Method::parse(m.trim())? })
    }

    pub fn top_via(&self) -> Option<Via> {
        Via::parse(self.header_values(HeaderName::Via).first()?)
    }

    pub fn from_tag(&self) -> Option<&str> {
        param(self.header(HeaderName::From)?, "tag")
    }

    pub fn to_tag(&self) -> Option<&str> {
        param(self.header(HeaderName::To)?, "tag")
    }

    pub fn set_header(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.headers.iter_mut().find(|h| h.name == name) {
            Some(h) => h.value = value,
            None => self.headers.push(Header { name, value }),
        }
    }

    pub fn add_header(&mut self, name: HeaderName, value: impl Into<String>) {
        self.headers.push(Header { name, value: value.into() });
    }

    /// The message as bytes, with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(s, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                let _ = write!(s, "SIP/2.0 {status} {reason}\r\n");
            }
        }
        for h in self.headers.iter().filter(|h| h.name != HeaderName::ContentLength) {
            let _ = write!(s, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    /// A response to this request (RFC 3261 8.2.6): Via, From, To, Call-ID and CSeq copied; a
    /// To tag added when the response should carry one and the request had none.
    pub fn response(&self, status: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let copied = [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq, HeaderName::RecordRoute];
        let mut headers: Vec<Header> = self.headers.iter().filter(|h| copied.contains(&h.name)).cloned().collect();
        if let (Some(tag), None) = (to_tag, self.to_tag()) {
            if status > 100 {
                if let Some(h) = headers.iter_mut().find(|h| h.name == HeaderName::To) {
                    h.value = format!("{};tag={tag}", h.value);
                }
            }
        }
        Message { start: StartLine::Response { status, reason: reason.to_string() }, headers, body: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub number: u32,
    pub method: Method,
}

/// The parts of a Via header that routing and transaction matching use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// "UDP", "TCP", ...
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// `rport` present (RFC 3581: answer to the source port).
    pub rport: bool,
}

impl Via {
    /// One via-parm: `SIP / 2.0 / UDP host[:port] *(; param)`, with the linear whitespace RFC 3261
    /// allows around the slashes, the semicolons and the equals signs (RFC 4475 3.1.1.1).
    pub fn parse(v: &str) -> Option<Via> {
        let (head, list) = match v.find(';') {
            Some(i) => (&v[..i], &v[i..]),
            None => (v, ""),
        };
        let mut parts = head.splitn(3, '/');
        let (name, version, rest) = (parts.next()?.trim(), parts.next()?.trim(), parts.next()?.trim_start());
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return None;
        }
        let (transport, sent_by) = rest.split_once(char::is_whitespace)?;
        let sent_by = sent_by.trim();
        if !is_token(transport) || sent_by.contains(char::is_whitespace) {
            return None;
        }
        let (host, port) = split_host_port(sent_by)?;
        let mut via = Via { transport: transport.to_ascii_uppercase(), host, port, branch: None, rport: false };
        if !super::grammar::params_well_formed(list) {
            return None;
        }
        for (k, val) in params(list) {
            if k.eq_ignore_ascii_case("branch") {
                via.branch = Some(val.filter(|b| !b.is_empty())?.to_string());
            } else if k.eq_ignore_ascii_case("rport") {
                via.rport = true;
            }
        }
        Some(via)
    }
}

/// "host", "host:port", "[v6]:port".
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse().ok()?)),
        Some(_) => return None,
        None => (s, None),
    };
    (!host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))).then(|| (host.to_string(), port))
}

fn parse_start(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::StartLine)?;
        if version != "2.0" {
            return Err(ParseError::Version(truncate(version)));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Status);
        }
        let status: u16 = code.parse().map_err(|_| ParseError::Status)?;
        if !(100..700).contains(&status) {
            return Err(ParseError::Status);
        }
        return Ok(StartLine::Response { status, reason: reason.to_string() });
    }
    // Exactly one space between the three parts, none after (RFC 4475 3.1.2.8 to 3.1.2.10).
    let mut parts = line.split(' ');
    let (method, uri, version) = (parts.next(), parts.next(), parts.next());
    let (Some(method), Some(uri), Some(version), None) = (method, uri, version, parts.next()) else {
        return Err(ParseError::StartLine);
    };
    let method = Method::parse(method).ok_or(ParseError::StartLine)?;
    if let Some(v) = version.strip_prefix("SIP/") {
        if v != "2.0" {
            return Err(ParseError::Version(truncate(version)));
        }
    } else {
        return Err(ParseError::StartLine);
    }
    if !is_absolute_uri(uri) {
        return Err(ParseError::RequestUri);
    }
    Ok(StartLine::Request { method, uri: uri.to_string() })
}

/// Header lines with continuation lines (leading whitespace) joined (RFC 3261 7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if (line.starts_with(' ') || line.starts_with('\t')) && lines.len() > 1 {
            let last = lines.last_mut().expect("checked");
            last.push(' ');
            last.push_str(line.trim());
        } else {
            lines.push(line.to_string());
        }
    }
    lines
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A response to a request that could not be parsed, built from its raw header lines (Via, From,
/// To, Call-ID, CSeq copied as they are, folded lines joined). None when the bytes are not a
/// request or lack a Via, as there is then nobody to answer.
pub fn best_effort_response(bytes: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let bytes = &bytes[..bytes.len().min(MAX_MESSAGE)];
    let head = match find(bytes, b"\r\n\r\n") {
        Some(i) => &bytes[..i],
        None => bytes,
    };
    let text = String::from_utf8_lossy(head);
    let lines = unfold(text.trim_start_matches(['\r', '\n']));
    let mut lines = lines.iter();
    let first = lines.next()?;
    let method = first.split(' ').next()?;
    if first.starts_with("SIP/") || Method::parse(method).is_none() {
        return None;
    }
    let mut out = format!("SIP/2.0 {status} {}\r\n", reason.replace(['\r', '\n'], " "));
    let mut via = false;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else { continue };
        let Some(name) = HeaderName::parse(name.trim()) else { continue };
        let copied = [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq];
        if copied.contains(&name) && line.len() < 1024 && !line.contains(char::is_control) {
            via |= name == HeaderName::Via;
            let _ = write!(out, "{name}: {}\r\n", value.trim());
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    via.then(|| out.into_bytes())
}

/// Splits one message off the front of a TCP stream buffer: `Ok(Some(len))` when a whole message
/// of `len` bytes is there, `Ok(None)` when more bytes are needed, an error when the stream can
/// never become a valid message (the connection is then closed).
pub fn frame(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let rest = &buf[skip..];
    let Some(head_end) = find(rest, b"\r\n\r\n") else {
        return if rest.len() > MAX_MESSAGE { Err(ParseError::TooLarge(rest.len())) } else { Ok(None) };
    };
    let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| ParseError::NotText)?;
    let mut length = None;
    for line in unfold(head).iter().skip(1) {
        if let Some((n, v)) = line.split_once(':') {
            if HeaderName::parse(n.trim()) == Some(HeaderName::ContentLength) {
                // Two lengths: which one frames the next message is ambiguous; close the stream.
                if length.is_some() {
                    return Err(ParseError::Repeated("Content-Length"));
                }
                length = Some(content_length(v)?);
            }
        }
    }
    // A stream message must say how long its body is (RFC 3261 18.3).
    let length = length.ok_or(ParseError::Missing("Content-Length"))?;
    let total = skip + head_end + 4 + length;
    if total - skip > MAX_MESSAGE {
        return Err(ParseError::TooLarge(total - skip));
    }
    Ok((buf.len() >= total).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:ivr@127.0.0.1:5060 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n\
        Max-Forwards: 70\r\n\
        f: \"Caller\" <sip:caller@127.0.0.1:5061>;tag=abc\r\n\
        To: <sip:ivr@127.0.0.1>\r\n\
        i: call-1@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:caller@127.0.0.1:5061>\r\n\
        Content-Type: application/sdp\r\n\
        Content-Length: 4\r\n\r\nv=0\nEXTRA";

    #[test]
    fn a_request_is_parsed_with_compact_headers_and_its_body() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.call_id(), "call-1@127.0.0.1");
        assert_eq!(m.from_tag(), Some("abc"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.cseq(), Some(CSeq { number: 1, method: Method::Invite }));
        let via = m.top_via().unwrap();
        assert_eq!((via.transport.as_str(), via.host.as_str(), via.port, via.branch.as_deref(), via.rport), ("UDP", "127.0.0.1", Some(5061), Some("z9hG4bK-1"), true));
        assert_eq!(m.body, b"v=0\n", "the body is what Content-Length says");
        let again = Message::parse(&m.to_bytes()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn a_response_copies_the_dialog_headers_and_adds_a_to_tag() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        let r = m.response(200, "OK", Some("srv1"));
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.to_tag(), Some("srv1"));
        assert_eq!(r.call_id(), m.call_id());
        assert_eq!(m.response(100, "Trying", Some("x")).to_tag(), None, "no tag on 100");
    }

    #[test]
    fn broken_messages_are_refused_with_a_reason() {
        let cases: &[(&[u8], ParseError)] = &[
            (b"", ParseError::Empty),
            (b"\r\n\r\n", ParseError::Empty),
            (b"HELLO\r\n\r\n", ParseError::StartLine),
            (b"INVITE sip:a SIP/3.0\r\n\r\n", ParseError::Version("SIP/3.0".into())),
            (b"SIP/2.0 99x OK\r\n\r\n", ParseError::Status),
            (b"OPTIONS sip:a SIP/2.0\r\nVia SIP/2.0/UDP h\r\n\r\n", ParseError::Header("Via SIP/2.0/UDP h".into())),
            (b"OPTIONS sip:a SIP/2.0\r\nFrom: <sip:x>\r\n\r\n", ParseError::Missing("Via")),
            (b"\xff\xfe\r\n\r\n", ParseError::NotText),
        ];
        for (bytes, want) in cases {
            assert_eq!(Message::parse(bytes).as_ref().err(), Some(want), "{:?}", String::from_utf8_lossy(bytes));
        }
        let bad_cseq = INVITE.replace("CSeq: 1 INVITE", "CSeq: one INVITE");
        assert_eq!(Message::parse(bad_cseq.as_bytes()).err(), Some(ParseError::Malformed("CSeq")));
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        assert!(matches!(Message::parse(short.as_bytes()), Err(ParseError::ShortBody { .. })));
        let huge = vec![b'a'; MAX_MESSAGE + 1];
        assert_eq!(Message::parse(&huge).unwrap_err().status(), 513);
    }

    #[test]
    fn a_tcp_stream_is_split_into_messages() {
        let one = Message::parse(INVITE.as_bytes()).unwrap().to_bytes();
        let mut stream = b"\r\n".to_vec();
        stream.extend_from_slice(&one);
        stream.extend_from_slice(&one[..10]);
        let n = frame(&stream).unwrap().unwrap();
        assert_eq!(n, one.len() + 2);
        assert_eq!(frame(&stream[n..]).unwrap(), None, "needs more bytes");
        assert!(frame(b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n").is_err(), "no Content-Length on a stream");
    }

    #[test]
    fn header_lists_split_outside_quotes_and_brackets() {
        assert_eq!(split_list("SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b"), vec!["SIP/2.0/UDP a;branch=1", "SIP/2.0/UDP b"]);
        assert_eq!(split_list("\"Doe, J\" <sip:j@h;x=1,2>, <sip:k@h>"), vec!["\"Doe, J\" <sip:j@h;x=1,2>", "<sip:k@h>"]);
        assert_eq!(uri_of("\"Bob\" <sip:bob@h>;tag=1"), "sip:bob@h");
        assert_eq!(param("<sip:bob@h;tag=no>;tag=yes", "tag"), Some("yes"));
    }

    #[test]
    fn single_valued_headers_given_twice_are_a_400() {
        // Two Content-Lengths (RFC 4475 3.3.9): the body's end is ambiguous.
        let two_lengths = INVITE.replace("Content-Length: 4\r\n", "Content-Length: 4\r\nl: 0\r\n");
        let e = Message::parse(two_lengths.as_bytes()).unwrap_err();
        assert_eq!((e.clone(), e.status()), (ParseError::Repeated("Content-Length"), 400));
        assert_eq!(frame(two_lengths.as_bytes()), Err(ParseError::Repeated("Content-Length")), "a stream with two lengths is closed");
        // Several values in a single-valued header (3.3.8), and an unquoted display name with a
        // comma (3.1.2.15), which reads as two From values.
        for (from, to) in [
            ("To: <sip:ivr@127.0.0.1>", "To: <sip:ivr@127.0.0.1>, <sip:other@127.0.0.1>"),
            ("CSeq: 1 INVITE", "CSeq: 1 INVITE\r\nCSeq: 2 INVITE"),
            ("f: \"Caller\" <sip:caller@127.0.0.1:5061>;tag=abc", "f: Bell, Alexander <sip:caller@127.0.0.1:5061>;tag=abc"),
        ] {
            let bad = INVITE.replace(from, to);
            assert!(matches!(Message::parse(bad.as_bytes()), Err(ParseError::Repeated(_))), "{to}");
        }
        // Commas and escaped quotes inside a quoted display name are one value.
        let quoted = INVITE.replace("f: \"Caller\"", "f: \"Bell, \\\"Alex\\\" \\\\\"");
        assert!(Message::parse(quoted.as_bytes()).is_ok(), "{quoted}");
    }

    #[test]
    fn broken_name_addrs_dates_and_request_uri_headers_are_a_400() {
        for (from, to) in [
            // An unterminated quoted string (RFC 4475 3.1.2.6).
            ("To: <sip:ivr@127.0.0.1>", "To: \"Mr. J. User <sip:ivr@127.0.0.1>"),
            // Whitespace inside the addr-spec (3.1.2.14).
            ("To: <sip:ivr@127.0.0.1>", "To: \"Watson, Thomas\" < sip:ivr@127.0.0.1 >"),
            // A Date not in GMT (3.1.2.12).
            ("Max-Forwards: 70", "Max-Forwards: 70\r\nDate: Fri, 01 Jan 2010 16:00:00 EST"),
            // Headers escaped into the Request-URI (3.1.2.11).
            ("INVITE sip:ivr@127.0.0.1:5060 SIP/2.0", "INVITE sip:ivr@127.0.0.1:5060?Route=%3Csip:example.com%3E SIP/2.0"),
        ] {
            let bad = INVITE.replace(from, to);
            let e = Message::parse(bad.as_bytes()).expect_err(to);
            assert_eq!(e.status(), 400, "{to}: {e}");
        }
        let dated = INVITE.replace("Max-Forwards: 70", "Max-Forwards: 70\r\nDate: Sat, 13 Nov 2010 23:29:00 GMT");
        assert!(Message::parse(dated.as_bytes()).is_ok(), "a good Date");
        let spaced = INVITE.replace("To: <sip:ivr@127.0.0.1>", "To:   \"A \\\"<odd>\\\" name\"   <sip:ivr@127.0.0.1> ;x=1");
        assert!(Message::parse(spaced.as_bytes()).is_ok(), "{spaced}");
    }
}
