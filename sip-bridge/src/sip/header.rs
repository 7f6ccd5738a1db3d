//! Header names as a type. Lookups compare variants, so the compact forms ("v", "i", "m", ...) and
//! any capitalisation ("ViA", "cseq") are the same header, and a message is written back with the
//! canonical spelling.

use std::fmt;

use super::grammar::is_token;

macro_rules! header_names {
    ($($variant:ident = $canonical:literal $(| $alias:literal)*;)*) => {
        #[derive(Debug, Clone, Eq)]
        pub enum HeaderName {
            $($variant,)*
            /// Any other header, as written (compared without regard to case).
            Other(String),
        }

        impl HeaderName {
            /// None when `name` is not a token (RFC 3261 25.1).
            pub fn parse(name: &str) -> Option<HeaderName> {
                if !is_token(name) {
                    return None;
                }
                let lower = name.to_ascii_lowercase();
                Some(match lower.as_str() {
                    $(l if l.eq_ignore_ascii_case($canonical) $(|| l == $alias)* => HeaderName::$variant,)*
                    _ => HeaderName::Other(name.to_string()),
                })
            }

            pub fn as_str(&self) -> &str {
                self.canonical().unwrap_or(match self {
                    HeaderName::Other(s) => s,
                    _ => "",
                })
            }

            /// The canonical spelling of a header this layer knows; None for any other.
            pub fn canonical(&self) -> Option<&'static str> {
                match self {
                    $(HeaderName::$variant => Some($canonical),)*
                    HeaderName::Other(_) => None,
                }
            }
        }
    };
}

header_names! {
    Via = "Via" | "v";
    From = "From" | "f";
    To = "To" | "t";
    CallId = "Call-ID" | "i";
    CSeq = "CSeq";
    Contact = "Contact" | "m";
    ContentLength = "Content-Length" | "l";
    ContentType = "Content-Type" | "c";
    ContentEncoding = "Content-Encoding" | "e";
    MaxForwards = "Max-Forwards";
    Route = "Route";
    RecordRoute = "Record-Route";
    Require = "Require";
    ProxyRequire = "Proxy-Require";
    Supported = "Supported" | "k";
    Unsupported = "Unsupported";
    Accept = "Accept";
    AcceptEncoding = "Accept-Encoding";
    Allow = "Allow";
    AllowEvents = "Allow-Events" | "u";
    Date = "Date";
    Expires = "Expires";
    MinExpires = "Min-Expires";
    Event = "Event" | "o";
    ReferTo = "Refer-To" | "r";
    ReferredBy = "Referred-By" | "b";
    Subject = "Subject" | "s";
    Server = "Server";
    UserAgent = "User-Agent";
    WwwAuthenticate = "WWW-Authenticate";
    Authorization = "Authorization";
    ProxyAuthenticate = "Proxy-Authenticate";
    ProxyAuthorization = "Proxy-Authorization";
    RetryAfter = "Retry-After";
    SubscriptionState = "Subscription-State";
    Warning = "Warning";
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: its name and its value (unfolded, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_forms_and_any_case_are_one_header() {
        for n in ["Via", "v", "V", "ViA", "vIA"] {
            assert_eq!(HeaderName::parse(n), Some(HeaderName::Via), "{n}");
        }
        assert_eq!(HeaderName::parse("i").map(|h| h.to_string()), Some("Call-ID".into()));
        assert_eq!(HeaderName::parse("cseq"), Some(HeaderName::CSeq));
        assert_eq!(HeaderName::parse("X-Foo"), HeaderName::parse("x-foo"));
        assert_ne!(HeaderName::parse("C%6Fntact"), Some(HeaderName::Contact), "no escaping in names");
        assert_eq!(HeaderName::parse("Via SIP/2.0"), None);
    }
}
