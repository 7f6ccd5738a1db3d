//! The small pieces of RFC 3261's grammar (section 25) that the typed layer checks values with:
//! tokens, quoted strings, parameter lists, URIs and dates. Each is a plain function over `&str`
//! so that the parser, the endpoint and the registrar use one definition.

/// RFC 3261 `token`: one or more of alphanum and `-.!%*_+`'~`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Calls `each(index, char, inside <...>)` for every character outside quoted strings (quoted-
/// pairs included in the string they escape; `<` and `>` are reported as outside the brackets);
/// returns whether every quoted string and every < was closed.
pub fn outside_quotes(v: &str, mut each: impl FnMut(usize, char, bool)) -> bool {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (i, c) in v.char_indices() {
        if std::mem::take(&mut escaped) {
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '<' => {
                each(i, c, false);
                angle = true;
            }
            '>' => {
                angle = false;
                each(i, c, false);
            }
            _ => each(i, c, angle),
        }
    }
    !quoted && !angle
}

/// A header value split at the commas that separate list elements (not those in quoted strings
/// or inside < >); empty elements are dropped.
pub fn split_list(v: &str) -> Vec<&str> {
    split_outside(v, ',').into_iter().filter(|s| !s.is_empty()).collect()
}

/// `v` split at `sep` where it is outside quoted strings and < >, each part trimmed.
fn split_outside(v: &str, sep: char) -> Vec<&str> {
    let (mut out, mut start) = (Vec::new(), 0);
    outside_quotes(v, |i, c, in_angle| {
        if c == sep && !in_angle {
            out.push(v[start..i].trim());
            start = i + 1;
        }
    });
    out.push(v[start..].trim());
    out
}

/// A name-addr or addr-spec value split into its address and its header parameters (after the
/// `<...>`, or after the first `;` of a bare addr-spec).
pub fn address_and_params(value: &str) -> (&str, &str) {
    if let Some(end) = angle_end(value) {
        return (&value[..end + 1], &value[end + 1..]);
    }
    let mut first = None;
    outside_quotes(value, |i, c, _| {
        if c == ';' && first.is_none() {
            first = Some(i);
        }
    });
    match first {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    }
}

/// Where the `>` closing a name-addr's URI is (outside quoted strings).
fn angle_end(value: &str) -> Option<usize> {
    let (mut open, mut end) = (false, None);
    outside_quotes(value, |i, c, _| match c {
        '<' => open = true,
        '>' if open && end.is_none() => end = Some(i),
        _ => {}
    });
    end
}

/// The `;name[=value]` parameters of a parameter list (leading `;` included or not).
pub fn params(list: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    split_outside(list, ';').into_iter().skip_while(|p| p.is_empty()).map(|p| match p.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim())),
        None => (p.trim(), None),
    })
}

/// Whether every parameter of a list is `token [= token / host / quoted-string]` (RFC 3261
/// `generic-param`); `;;` or `;=x` are not.
pub fn params_well_formed(list: &str) -> bool {
    let list = list.trim();
    if list.is_empty() {
        return true;
    }
    let Some(list) = list.strip_prefix(';') else { return false };
    split_outside(list, ';').into_iter().all(|p| {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        is_token(k) && v.is_none_or(|v| is_token(v) || is_host(v) || is_quoted(v))
    })
}

fn is_quoted(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && outside_quotes(v, |_, _, _| {})
}

fn is_host(v: &str) -> bool {
    !v.is_empty() && (v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)))
}

/// A `;name=value` parameter of a header value (outside its `<...>` URI and quoted strings).
pub fn param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let (_, list) = address_and_params(value);
    params(list).find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v)
}

/// The URI inside a name-addr (`"Bob" <sip:bob@host>;tag=1`), or the addr-spec itself.
pub fn uri_of(value: &str) -> &str {
    let (address, _) = address_and_params(value);
    let address = address.trim();
    match (address.rfind('<'), address.ends_with('>')) {
        (Some(a), true) => &address[a + 1..address.len() - 1],
        _ => address,
    }
}

/// Whether a From, To, Contact, Route or Record-Route value holds together: its quoted strings
/// end (RFC 4475 3.1.2.6), the URI between < and > has no whitespace (3.1.2.14) and is absolute,
/// a bare addr-spec carries no URI headers (they need the < >, 3.1.2.13), a display name outside
/// quotes is tokens (3.1.2.15 reads as two values before this), and its parameters are well
/// formed (3.1.2.1).
pub fn is_address_well_formed(v: &str) -> bool {
    if v.trim() == "*" {
        return true; // Contact: * (REGISTER removing every binding)
    }
    let mut spaced = false;
    if !outside_quotes(v, |_, c, in_angle| spaced |= in_angle && c.is_whitespace()) || spaced {
        return false;
    }
    let (address, list) = address_and_params(v);
    let uri = uri_of(v);
    let bracketed = address.trim_end().ends_with('>');
    let display_ok = !bracketed || {
        let display = address[..address.rfind('<').unwrap_or(0)].trim();
        display.is_empty() || is_quoted(display) || display.split_whitespace().all(is_token)
    };
    is_absolute_uri(uri) && (bracketed || !has_uri_headers(uri)) && display_ok && params_well_formed(list)
}

/// The scheme of an absolute URI ("sip", "tel", "soap.beep"), lower-cased by the caller if need
/// be; None when there is none.
pub fn scheme_of(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))).then_some(scheme)
}

/// RFC 3261 `absoluteURI` in the shape that matters here: a scheme, a colon, something after it,
/// and no whitespace, `<`, `>` or `"` (3.1.2.7 encloses a Request-URI in < >).
pub fn is_absolute_uri(uri: &str) -> bool {
    let Some(scheme) = scheme_of(uri) else { return false };
    let rest = &uri[scheme.len() + 1..];
    !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
}

/// Whether a SIP or SIPS URI carries `?headers`. The user part may hold a `?` of its own (RFC
/// 4475 3.1.1.2), so only what follows the host counts: the userinfo ends at the first `@`,
/// which cannot appear unescaped after it.
pub fn has_uri_headers(uri: &str) -> bool {
    let lower = uri.get(..5).unwrap_or("").to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return false;
    }
    let after_user = uri.split_once('@').map(|(_, host)| host).unwrap_or(uri);
    after_user.contains('?')
}

/// RFC 3261's Date: an RFC 1123 date in GMT, e.g. "Sat, 13 Nov 2010 23:29:00 GMT" (3.1.2.12).
pub fn is_sip_date(v: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = v.split(' ').collect();
    let [day, date, month, year, time, zone] = parts[..] else { return false };
    let hms: Vec<&str> = time.split(':').collect();
    day.strip_suffix(',').is_some_and(|d| DAYS.contains(&d))
        && digits(date, 2)
        && MONTHS.contains(&month)
        && digits(year, 4)
        && hms.len() == 3
        && hms.iter().all(|p| digits(p, 2))
        && zone == "GMT"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(split_list("SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b"), vec!["SIP/2.0/UDP a;branch=1", "SIP/2.0/UDP b"]);
        assert_eq!(split_list("\"Doe, J\" <sip:j@h;x=1,2>, <sip:k@h>"), vec!["\"Doe, J\" <sip:j@h;x=1,2>", "<sip:k@h>"]);
    }

    #[test]
    fn addresses_and_their_parameters() {
        assert_eq!(uri_of("\"Bob\" <sip:bob@h>;tag=1"), "sip:bob@h");
        assert_eq!(uri_of("sip:bob@h;tag=1"), "sip:bob@h");
        assert_eq!(param("<sip:bob@h;tag=no>;tag=yes", "tag"), Some("yes"));
        assert_eq!(param("\"a;tag=no>\" <sip:b@h> ;  tag  = yes", "tag"), Some("yes"));
        assert_eq!(param("sip:bob@h ;   tag    = 1918181833n", "tag"), Some("1918181833n"));
        assert!(is_address_well_formed("token1~` token2'+_ <sip:m@example.com>;p=\"x;y\";tag=_t~1"));
        assert!(is_address_well_formed("caller<sip:caller@example.com>;tag=323"));
        assert!(is_address_well_formed("<sip:u@example.com?Route=%3Csip:x%3E>"));
        assert!(!is_address_well_formed("sip:u@example.com?Route=%3Csip:x%3E"), "headers need < >");
        assert!(!is_address_well_formed("\"Joe\" <sip:joe@example.org>;;;;"), "empty parameters");
        assert!(!is_address_well_formed("Watson, Thomas <sip:t@example.org>"), "a comma outside quotes");
    }

    #[test]
    fn uris() {
        assert!(is_absolute_uri("nobodyKnowsThisScheme:totallyopaquecontent"));
        assert_eq!(scheme_of("soap.beep://192.0.2.103:3002"), Some("soap.beep"));
        assert!(!is_absolute_uri("<sip:user@example.com>"));
        assert!(!is_absolute_uri("sip:"));
        assert!(has_uri_headers("sip:user@example.com?Route=%3Csip:example.com%3E"));
        assert!(!has_uri_headers("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com"));
    }
}
