//! SIP request methods as a type: the ones this server knows by name, and any other token (an
//! extension method is legal SIP and gets 501, not a parse error).

use std::fmt;

use super::grammar::is_token;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Notify,
    Refer,
    Subscribe,
    Update,
    Prack,
    Message,
    Publish,
    /// Any other token (methods are case-sensitive: "invite" is not INVITE).
    Extension(String),
}

impl Method {
    /// None when `s` is not a token (RFC 3261 25.1), e.g. empty or holding a space.
    pub fn parse(s: &str) -> Option<Method> {
        if !is_token(s) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_string()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_extensions_and_non_tokens() {
        assert_eq!(Method::parse("INVITE"), Some(Method::Invite));
        assert_eq!(Method::parse("invite"), Some(Method::Extension("invite".into())), "case-sensitive");
        // RFC 4475 3.1.1.2: every token character is allowed in a method.
        let odd = "!interesting-Method0123456789_*+`.%indeed'~";
        assert_eq!(Method::parse(odd).map(|m| m.to_string()), Some(odd.to_string()));
        for bad in ["", "IN VITE", "INVITE:", "<INVITE>", "INVITÉ"] {
            assert_eq!(Method::parse(bad), None, "{bad:?}");
        }
    }
}
