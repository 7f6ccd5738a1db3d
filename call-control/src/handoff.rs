//! Handing a call to a company's own PBX or ACD: the summary travels with the call, in the SIP
//! headers such systems read (a free-text `X-Summary`, RFC 7433's `User-to-User` for systems that
//! pass ISDN-style user data to their agents' screens, and a `Call-Info` link to the call's record
//! on this server), and as a JSON document POSTed to the company's CRM.

use sip_bridge::sip::message::HeaderName;

/// The longest `X-Summary` value sent (some PBXs drop longer headers).
const SUMMARY_MAX: usize = 900;
/// User-to-user data beyond 128 octets is not carried end to end by ISDN-derived systems.
const UUI_MAX: usize = 128;

/// One line, printable, at most `max` bytes (cut at a character boundary).
fn one_line(text: &str, max: usize) -> String {
    let mut s: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The headers an INVITE (or a REFER's target) to the company's PBX carries.
pub fn summary_headers(summary: &str, call_url: Option<&str>) -> Vec<(HeaderName, String)> {
    let mut h = vec![(HeaderName::Other("X-Summary".into()), one_line(summary, SUMMARY_MAX))];
    let uui: String = one_line(summary, UUI_MAX).bytes().map(|b| format!("{b:02x}")).collect();
    h.push((HeaderName::Other("User-to-User".into()), format!("{uui};encoding=hex;purpose=ivr-summary;content=text")));
    if let Some(url) = call_url {
        h.push((HeaderName::Other("Call-Info".into()), format!("<{url}>;purpose=info")));
    }
    h
}

/// The document POSTed to the CRM's webhook when a call is handed over.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HandoffDocument {
    pub call_id: String,
    pub caller: String,
    pub reason: String,
    pub priority: u8,
    pub summary: String,
    /// "queue" (this server's agents) or the PBX target.
    pub to: String,
    pub call_url: Option<String>,
    pub at: String,
}

/// POSTs the hand-off on a thread of its own (a slow CRM never delays the call); failures are
/// logged with the document, which is also in the call's record.
pub fn post(url: &str, doc: HandoffDocument) {
    let url = url.to_string();
    let spawned = std::thread::Builder::new().name("ivr-handoff".into()).spawn(move || {
        let client = match reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(5)).build() {
            Ok(c) => c,
            Err(e) => return tracing::error!("hand-off webhook: no HTTP client: {e}"),
        };
        match client.post(&url).json(&doc).send() {
            Ok(r) if r.status().is_success() => tracing::info!(call_id = %doc.call_id, %url, "hand-off posted"),
            Ok(r) => tracing::error!(call_id = %doc.call_id, %url, status = %r.status(), ?doc, "hand-off webhook refused"),
            Err(e) => tracing::error!(call_id = %doc.call_id, %url, ?doc, "hand-off webhook failed: {e}"),
        }
    });
    if let Err(e) = spawned {
        tracing::error!("hand-off webhook: cannot start a thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_fits_the_headers() {
        let summary = "Goal: asked for a person.\r\nInjected: header\nCaller is calm. Bestellung über 41234567.";
        let h = summary_headers(summary, Some("http://127.0.0.1:8080/api/v1/calls/c1"));
        assert_eq!(h[0].1, "Goal: asked for a person. Injected: header Caller is calm. Bestellung über 41234567.");
        let (hex, params) = h[1].1.split_once(';').unwrap();
        let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        assert_eq!(String::from_utf8(bytes).unwrap(), h[0].1);
        assert_eq!(params, "encoding=hex;purpose=ivr-summary;content=text");
        assert_eq!(h[2].1, "<http://127.0.0.1:8080/api/v1/calls/c1>;purpose=info");
        let long = "ü".repeat(1000);
        let h = summary_headers(&long, None);
        assert!(h[0].1.len() <= SUMMARY_MAX && h[1].1.split(';').next().unwrap().len() <= 2 * UUI_MAX);
        assert_eq!(h.len(), 2);
    }
}
