//! A small registrar (RFC 3261 section 10) for the agents' phones, sans-IO: a REGISTER in, the
//! response out. Phones prove who they are with HTTP digest (RFC 8760: SHA-256 offered first, MD5
//! for older phones, qop=auth). Nonces are stateless (a timestamp signed with a secret the server
//! draws at start), so a restart invalidates them and nothing grows with unanswered challenges.
//!
//! A transfer to a registered agent then goes to the address the agent's phone registered
//! ([`Registrar::lookup`]).

use std::collections::HashMap;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::endpoint::Peer;
use super::message::{uri_of, HeaderName, Message};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    fn parse(s: &str) -> Option<Algorithm> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SHA-256" => Some(Algorithm::Sha256),
            "MD5" => Some(Algorithm::Md5),
            _ => None,
        }
    }

    /// Lower-case hex of the hash of `s`.
    fn hex(self, s: &str) -> String {
        let bytes = match self {
            Algorithm::Sha256 => Sha256::digest(s.as_bytes()).to_vec(),
            Algorithm::Md5 => Md5::digest(s.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The user part of the phone's address of record (`sip:USER@...`) and its digest username.
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    pub realm: String,
    pub accounts: Vec<Account>,
    /// Offered in this order (a phone takes the first it knows).
    pub algorithms: Vec<Algorithm>,
    pub min_expires_secs: u32,
    pub max_expires_secs: u32,
    /// A challenge is good for this long; an older one is answered with a new one, `stale=true`.
    pub nonce_secs: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: "ivr".into(),
            accounts: Vec::new(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            min_expires_secs: 60,
            max_expires_secs: 3600,
            nonce_secs: 300,
        }
    }
}

/// A phone's digest secret for the registrar's realm: the HA1 of each algorithm, so that what is
/// stored for an agent (`ivr agents add`) is not the password itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneAccount {
    pub user: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

impl PhoneAccount {
    pub fn from_password(user: &str, realm: &str, password: &str) -> Self {
        let a1 = format!("{user}:{realm}:{password}");
        Self { user: user.to_string(), ha1_md5: Algorithm::Md5.hex(&a1), ha1_sha256: Algorithm::Sha256.hex(&a1) }
    }

    fn ha1(&self, a: Algorithm) -> &str {
        match a {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Where a registered phone can be reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact URI the phone registered.
    pub contact: String,
    /// Where its REGISTER came from.
    pub source: Peer,
    pub expires_at: Duration,
    /// The digest algorithm it proved itself with.
    pub algorithm: Algorithm,
    call_id: String,
    cseq: u32,
}

pub struct Registrar {
    cfg: RegistrarConfig,
    /// The configuration's accounts, then the agents' phones (see [`Registrar::set_phones`]).
    accounts: HashMap<String, PhoneAccount>,
    phones: HashMap<String, PhoneAccount>,
    secret: [u8; 16],
    /// Per user: its current contacts.
    bindings: HashMap<String, Vec<Binding>>,
}

impl Registrar {
    /// `secret` signs the nonces; draw it at random when the server starts.
    pub fn new(cfg: RegistrarConfig, secret: [u8; 16]) -> Self {
        let accounts = cfg.accounts.iter().map(|a| (a.user.clone(), PhoneAccount::from_password(&a.user, &cfg.realm, &a.password))).collect();
        Self { cfg, accounts, phones: HashMap::new(), secret, bindings: HashMap::new() }
    }

    /// The agents' phones (from the store), replacing the previous list; the configuration's
    /// accounts stay. A phone no longer listed keeps its binding until it expires or re-registers.
    pub fn set_phones(&mut self, phones: Vec<PhoneAccount>) {
        self.phones = phones.into_iter().map(|p| (p.user.clone(), p)).collect();
    }

    fn account(&self, user: &str) -> Option<&PhoneAccount> {
        self.accounts.get(user).or_else(|| self.phones.get(user))
    }

    /// The newest live binding of `user`.
    pub fn lookup(&self, user: &str, now: Duration) -> Option<&Binding> {
        self.bindings.get(user)?.iter().filter(|b| b.expires_at > now).max_by_key(|b| b.expires_at)
    }

    /// How many phones (contacts) are registered now.
    pub fn registered(&self, now: Duration) -> usize {
        self.bindings.values().flatten().filter(|b| b.expires_at > now).count()
    }

    /// Answers a REGISTER.
    pub fn on_register(&mut self, req: &Message, from: Peer, now: Duration) -> Message {
        let to = req.header(HeaderName::To).map(uri_of).unwrap_or("");
        // An address of record is a SIP or SIPS URI (RFC 3261 10.3 step 5; RFC 4475 3.3.4).
        if !["sip:", "sips:"].iter().any(|s| to.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s))) {
            return req.response(400, "Address of record is not a SIP URI", None);
        }
        let user = user_of(to);
        let Some(account) = self.account(user).cloned() else {
            return req.response(404, "Not Found", None);
        };
        // Each Authorization header (a phone may answer several challenges); one must verify.
        let mut stale = false;
        let mut proven = None;
        for value in req.header_lines(HeaderName::Authorization) {
            let Some(creds) = Credentials::parse(value) else { continue };
            if creds.username != account.user || creds.realm != self.cfg.realm {
                continue;
            }
            let Some(algorithm) = creds.algorithm.filter(|a| self.cfg.algorithms.contains(a)) else { continue };
            let Some(fresh) = self.verify_nonce(&creds.nonce, now) else { continue };
            if creds.response == expected_response(algorithm, &account, "REGISTER", &creds) {
                // Right password on an expired nonce: tell the phone to retry, not that it is wrong.
                if !fresh {
                    stale = true;
                    continue;
                }
                proven = Some(algorithm);
                break;
            }
        }
        let Some(algorithm) = proven else {
            return self.challenge(req, now, stale);
        };
        self.update(req, &account.user, algorithm, from, now)
    }

    /// 401 with one WWW-Authenticate per algorithm, in order of preference.
    fn challenge(&self, req: &Message, now: Duration, stale: bool) -> Message {
        let mut r = req.response(401, "Unauthorized", None);
        let nonce = self.nonce(now);
        for a in &self.cfg.algorithms {
            let stale = if stale { ", stale=true" } else { "" };
            r.add_header(
                HeaderName::WwwAuthenticate,
                format!("Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}", self.cfg.realm, a.name()),
            );
        }
        r
    }

    fn nonce(&self, now: Duration) -> String {
        let ts = now.as_secs();
        format!("{ts:x}.{}", self.sign(ts))
    }

    fn sign(&self, ts: u64) -> String {
        let secret: String = self.secret.iter().map(|b| format!("{b:02x}")).collect();
        Algorithm::Sha256.hex(&format!("{secret}:{ts}"))[..32].to_string()
    }

    /// Whether a nonce is ours (None if not) and still fresh.
    fn verify_nonce(&self, nonce: &str, now: Duration) -> Option<bool> {
        let (ts, sig) = nonce.split_once('.')?;
        let ts = u64::from_str_radix(ts, 16).ok()?;
        (sig == self.sign(ts)).then(|| now.as_secs() <= ts.saturating_add(self.cfg.nonce_secs.into()))
    }

    /// Adds, refreshes or removes the contacts of an authenticated REGISTER (RFC 3261 10.3).
    fn update(&mut self, req: &Message, user: &str, algorithm: Algorithm, from: Peer, now: Duration) -> Message {
        let call_id = req.call_id().to_string();
        let cseq = req.cseq().map(|c| c.number).unwrap_or(0);
        let default_expires = req.header(HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok()).unwrap_or(3600);
        let contacts: Vec<&str> = req.header_values(HeaderName::Contact);
        let list = self.bindings.entry(user.to_string()).or_default();
        list.retain(|b| b.expires_at > now);
        if contacts.iter().any(|c| c.trim() == "*") {
            if default_expires != 0 || contacts.len() != 1 {
                return req.response(400, "Bad Request (Contact: * needs Expires: 0 and no other contact)", None);
            }
            list.clear();
        }
        for c in contacts.iter().filter(|c| c.trim() != "*") {
            let uri = uri_of(c).to_string();
            if !uri.starts_with("sip:") && !uri.starts_with("sips:") {
                return req.response(400, "Bad Request (Contact is not a SIP URI)", None);
            }
            let expires = super::message::param(c, "expires").and_then(|e| e.parse::<u32>().ok()).unwrap_or(default_expires);
            let existing = list.iter().position(|b| b.contact == uri);
            // An older or replayed REGISTER of the same Call-ID must not undo a newer one.
            if let Some(i) = existing {
                if list[i].call_id == call_id && list[i].cseq >= cseq {
                    return req.response(500, "Server Internal Error (out of order REGISTER)", None);
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    list.remove(i);
                }
                continue;
            }
            if expires < self.cfg.min_expires_secs {
                let mut r = req.response(423, "Interval Too Brief", None);
                r.add_header(HeaderName::MinExpires, self.cfg.min_expires_secs.to_string());
                return r;
            }
            let expires = expires.min(self.cfg.max_expires_secs);
            let binding = Binding {
                contact: uri,
                source: from,
                expires_at: now + Duration::from_secs(expires.into()),
                algorithm,
                call_id: call_id.clone(),
                cseq,
            };
            match existing {
                Some(i) => list[i] = binding,
                None => list.push(binding),
            }
        }
        let mut r = req.response(200, "OK", None);
        for b in list.iter() {
            let left = b.expires_at.saturating_sub(now).as_secs();
            r.add_header(HeaderName::Contact, format!("<{}>;expires={left}", b.contact));
        }
        tracing::info!(user, contacts = list.len(), algorithm = algorithm.name(), "registered");
        r
    }

    /// Forgets expired bindings (call now and then).
    pub fn expire(&mut self, now: Duration) {
        self.bindings.retain(|_, list| {
            list.retain(|b| b.expires_at > now);
            !list.is_empty()
        });
    }
}

/// `sip:user@host;params` -> "user".
pub fn user_of(uri: &str) -> &str {
    let rest = uri.strip_prefix("sips:").or_else(|| uri.strip_prefix("sip:")).unwrap_or(uri);
    match rest.split_once('@') {
        Some((user, _)) => user.split(';').next().unwrap_or(user),
        None => "",
    }
}

/// The digest response a phone must send (RFC 7616 3.4.1, with RFC 2617's form without qop).
fn expected_response(a: Algorithm, account: &PhoneAccount, method: &str, c: &Credentials) -> String {
    let ha1 = account.ha1(a);
    let ha2 = a.hex(&format!("{method}:{}", c.uri));
    match &c.qop {
        Some(qop) => a.hex(&format!("{ha1}:{}:{}:{}:{qop}:{ha2}", c.nonce, c.nc, c.cnonce)),
        None => a.hex(&format!("{ha1}:{}:{ha2}", c.nonce)),
    }
}

/// The fields of an `Authorization: Digest ...` header.
#[derive(Debug, Default, PartialEq)]
struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    /// None when the header names an algorithm we do not know; MD5 when it names none.
    algorithm: Option<Algorithm>,
    qop: Option<String>,
    nc: String,
    cnonce: String,
}

impl Credentials {
    fn parse(value: &str) -> Option<Credentials> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials { algorithm: Some(Algorithm::Md5), ..Default::default() };
        let mut chars = rest.char_indices().peekable();
        loop {
            // name
            while chars.peek().is_some_and(|(_, ch)| ch.is_whitespace() || *ch == ',') {
                chars.next();
            }
            let Some(&(start, _)) = chars.peek() else { break };
            let mut eq = None;
            for (i, ch) in chars.by_ref() {
                if ch == '=' {
                    eq = Some(i);
                    break;
                }
            }
            let eq = eq?;
            let name = rest[start..eq].trim().to_ascii_lowercase();
            while chars.peek().is_some_and(|(_, ch)| ch.is_whitespace()) {
                chars.next();
            }
            // value: quoted (with \ escapes) or a token up to the next comma
            let mut val = String::new();
            if chars.peek().is_some_and(|(_, ch)| *ch == '"') {
                chars.next();
                let mut closed = false;
                while let Some((_, ch)) = chars.next() {
                    match ch {
                        '\\' => val.extend(chars.next().map(|(_, e)| e)),
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => val.push(ch),
                    }
                }
                if !closed {
                    return None;
                }
            } else {
                while let Some(&(_, ch)) = chars.peek() {
                    if ch == ',' {
                        break;
                    }
                    val.push(ch);
                    chars.next();
                }
                val = val.trim().to_string();
            }
            match name.as_str() {
                "username" => c.username = val,
                "realm" => c.realm = val,
                "nonce" => c.nonce = val,
                "uri" => c.uri = val,
                "response" => c.response = val.to_ascii_lowercase(),
                "algorithm" => c.algorithm = Algorithm::parse(&val),
                "qop" => c.qop = Some(val),
                "nc" => c.nc = val,
                "cnonce" => c.cnonce = val,
                _ => {}
            }
        }
        if c.username.is_empty() || c.nonce.is_empty() || c.response.is_empty() {
            return None;
        }
        if c.qop.as_deref().is_some_and(|q| !q.eq_ignore_ascii_case("auth")) {
            return None;
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 section 3.9.1's example: the same credentials under both algorithms.
    #[test]
    fn digest_responses_match_the_rfc_7616_example() {
        let account = PhoneAccount::from_password("Mufasa", "http-auth@example.org", "Circle of Life");
        let c = Credentials {
            username: "Mufasa".into(),
            realm: "http-auth@example.org".into(),
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            uri: "/dir/index.html".into(),
            qop: Some("auth".into()),
            nc: "00000001".into(),
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(),
            ..Default::default()
        };
        assert_eq!(expected_response(Algorithm::Md5, &account, "GET", &c), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            expected_response(Algorithm::Sha256, &account, "GET", &c),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn credentials_parse_quoted_values_with_commas_and_escapes() {
        let c = Credentials::parse(
            r#"Digest username="agent1", realm="ivr", nonce="a.b", uri="sip:127.0.0.1", response="ABC", algorithm=SHA-256, cnonce="x,\"y", qop=auth, nc=00000001"#,
        )
        .unwrap();
        assert_eq!(c.username, "agent1");
        assert_eq!(c.cnonce, "x,\"y");
        assert_eq!(c.response, "abc");
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(Credentials::parse("Basic dXNlcjpwYXNz"), None);
        assert_eq!(Credentials::parse(r#"Digest username="a, nonce="b""#), None, "unterminated quote");
        assert_eq!(Credentials::parse(r#"Digest username="a", nonce="n", response="r", qop=auth-int"#), None);
        let unknown = Credentials::parse(r#"Digest username="a", nonce="n", response="r", algorithm=SHA-512-256"#).unwrap();
        assert_eq!(unknown.algorithm, None);
    }

    fn register(extra: &str) -> Message {
        let text = format!(
            "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\nFrom: <sip:agent1@127.0.0.1>;tag=1\r\n\
             To: <sip:agent1@127.0.0.1>\r\nCall-ID: reg1\r\nCSeq: {extra}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    /// What a phone does with a challenge: answers it for `algorithm` with `password`.
    fn answer(challenge: &Message, algorithm: Algorithm, password: &str, cseq: u32, contact: &str) -> Message {
        let www = challenge.header_lines(HeaderName::WwwAuthenticate).into_iter().find(|w| w.contains(algorithm.name())).unwrap();
        let nonce = www.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap();
        let c = Credentials {
            username: "agent1".into(),
            realm: "ivr".into(),
            nonce: nonce.into(),
            uri: "sip:127.0.0.1".into(),
            qop: Some("auth".into()),
            nc: "00000001".into(),
            cnonce: "0a4f113b".into(),
            ..Default::default()
        };
        let account = PhoneAccount::from_password("agent1", "ivr", password);
        let response = expected_response(algorithm, &account, "REGISTER", &c);
        register(&format!(
            "{cseq} REGISTER\r\nContact: {contact}\r\nAuthorization: Digest username=\"agent1\", realm=\"ivr\", nonce=\"{nonce}\", \
             uri=\"sip:127.0.0.1\", response=\"{response}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"0a4f113b\"",
            algorithm.name()
        ))
    }

    fn registrar() -> Registrar {
        let cfg = RegistrarConfig { accounts: vec![Account { user: "agent1".into(), password: "s3cret".into() }], ..Default::default() };
        Registrar::new(cfg, [7; 16])
    }

    const PHONE: Peer = Peer::Udp(std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 5099)));

    #[test]
    fn a_phone_registers_with_sha256_or_md5_and_can_be_found() {
        for algorithm in [Algorithm::Sha256, Algorithm::Md5] {
            let mut r = registrar();
            let t = Duration::from_secs(1000);
            let challenge = r.on_register(&register("1 REGISTER\r\nContact: <sip:agent1@127.0.0.1:5099>"), PHONE, t);
            assert_eq!(challenge.status(), Some(401));
            let offered = challenge.header_lines(HeaderName::WwwAuthenticate);
            assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"), "{offered:?}");
            assert!(r.lookup("agent1", t).is_none(), "not before it proved itself");
            let ok = r.on_register(&answer(&challenge, algorithm, "s3cret", 2, "<sip:agent1@127.0.0.1:5099>;expires=120"), PHONE, t);
            assert_eq!(ok.status(), Some(200), "{algorithm:?}");
            assert_eq!(ok.header(HeaderName::Contact), Some("<sip:agent1@127.0.0.1:5099>;expires=120"));
            let b = r.lookup("agent1", t + Duration::from_secs(119)).unwrap();
            assert_eq!((b.contact.as_str(), b.algorithm), ("sip:agent1@127.0.0.1:5099", algorithm));
            assert!(r.lookup("agent1", t + Duration::from_secs(120)).is_none(), "expired");
        }
    }

    #[test]
    fn agents_phones_from_the_store_register_with_their_stored_hashes() {
        let mut r = Registrar::new(RegistrarConfig::default(), [7; 16]);
        let t = Duration::from_secs(1000);
        let contact = "<sip:agent1@127.0.0.1:5099>";
        let challenge = r.on_register(&register(&format!("1 REGISTER\r\nContact: {contact}")), PHONE, t);
        assert_eq!(challenge.status(), Some(404), "not an agent yet");
        r.set_phones(vec![PhoneAccount::from_password("agent1", "ivr", "from the store")]);
        let challenge = r.on_register(&register(&format!("2 REGISTER\r\nContact: {contact}")), PHONE, t);
        assert_eq!(challenge.status(), Some(401));
        for (algorithm, password, status) in [(Algorithm::Md5, "s3cret", 401), (Algorithm::Sha256, "from the store", 200), (Algorithm::Md5, "from the store", 200)] {
            let cseq = if status == 200 && algorithm == Algorithm::Md5 { 4 } else { 3 };
            let reply = r.on_register(&answer(&challenge, algorithm, password, cseq, contact), PHONE, t);
            assert_eq!(reply.status(), Some(status), "{algorithm:?} {password}");
        }
        assert!(r.lookup("agent1", t).is_some());
    }

    #[test]
    fn wrong_passwords_old_nonces_and_strangers_are_refused() {
        let mut r = registrar();
        let t = Duration::from_secs(1000);
        let challenge = r.on_register(&register("1 REGISTER\r\nContact: <sip:agent1@127.0.0.1:5099>"), PHONE, t);
        let wrong = r.on_register(&answer(&challenge, Algorithm::Sha256, "guess", 2, "<sip:agent1@127.0.0.1:5099>"), PHONE, t);
        assert_eq!(wrong.status(), Some(401));
        assert!(!wrong.header(HeaderName::WwwAuthenticate).unwrap().contains("stale"));
        // The right password on a nonce past its lifetime: a fresh challenge marked stale.
        let late = r.on_register(&answer(&challenge, Algorithm::Sha256, "s3cret", 3, "<sip:agent1@127.0.0.1:5099>"), PHONE, t + Duration::from_secs(301));
        assert_eq!(late.status(), Some(401));
        assert!(late.header(HeaderName::WwwAuthenticate).unwrap().contains("stale=true"));
        // A nonce made up by the phone.
        let forged = challenge.to_bytes();
        let forged = String::from_utf8(forged).unwrap().replace(&format!("{:x}.", 1000), &format!("{:x}.", 1200));
        let forged = Message::parse(forged.as_bytes()).unwrap();
        let r2 = r.on_register(&answer(&forged, Algorithm::Sha256, "s3cret", 4, "<sip:agent1@127.0.0.1:5099>"), PHONE, t + Duration::from_secs(250));
        assert_eq!(r2.status(), Some(401));
        assert!(!r2.header(HeaderName::WwwAuthenticate).unwrap().contains("stale"), "a forged nonce is not stale");
        // Nobody of that name.
        let mut stranger = register("1 REGISTER\r\nContact: <sip:x@127.0.0.1>");
        stranger.set_header(HeaderName::To, "<sip:mallory@127.0.0.1>");
        assert_eq!(r.on_register(&stranger, PHONE, t).status(), Some(404));
        assert!(r.lookup("agent1", t).is_none());
    }

    #[test]
    fn expires_rules_and_unregistering() {
        let mut r = registrar();
        let t = Duration::from_secs(1000);
        let challenge = r.on_register(&register("1 REGISTER"), PHONE, t);
        let brief = r.on_register(&answer(&challenge, Algorithm::Md5, "s3cret", 2, "<sip:agent1@127.0.0.1:5099>;expires=10"), PHONE, t);
        assert_eq!((brief.status(), brief.header(HeaderName::MinExpires)), (Some(423), Some("60")));
        let long = r.on_register(&answer(&challenge, Algorithm::Md5, "s3cret", 3, "<sip:agent1@127.0.0.1:5099>;expires=99999"), PHONE, t);
        assert_eq!(long.header(HeaderName::Contact), Some("<sip:agent1@127.0.0.1:5099>;expires=3600"), "capped");
        let replay = r.on_register(&answer(&challenge, Algorithm::Md5, "s3cret", 3, "<sip:agent1@127.0.0.1:5099>;expires=0"), PHONE, t);
        assert_eq!(replay.status(), Some(500), "a replayed CSeq must not unregister");
        let bye = r.on_register(&answer(&challenge, Algorithm::Md5, "s3cret", 4, "<sip:agent1@127.0.0.1:5099>;expires=0"), PHONE, t);
        assert_eq!((bye.status(), bye.header(HeaderName::Contact)), (Some(200), None));
        assert!(r.lookup("agent1", t).is_none());
    }

    #[test]
    fn users_of_uris() {
        assert_eq!(user_of("sip:agent1@127.0.0.1:5070;transport=udp"), "agent1");
        assert_eq!(user_of("sip:127.0.0.1"), "");
    }
}
