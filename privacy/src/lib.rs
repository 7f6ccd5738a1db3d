//! What must never be kept in clear. A caller may read out a card number or a PIN, or key one in;
//! the store, the logs, the exports and the dashboard must not hold it. Everything that keeps or
//! prints a caller's words passes them through [`mask`] (or [`mask_json`] for structured details)
//! first, so there is one rule for every place, and the store applies it on every write: what is
//! not in the database cannot leak from it.
//!
//! The rules, chosen to keep what the tools and the agents need (an 8-digit order number, a
//! postcode, a phone number) and to hide what a regulator asks to hide (PCI DSS: no full card
//! number, never a PIN):
//! - a run of 13 or more digits (a card number's length; written "4111 1111 ..." or
//!   "4111-1111-...", or spoken "four one one one ...") becomes `[card number ending 1111]` (the
//!   last four, which PCI DSS allows to be shown; none when the digits were words);
//! - a run of 3 or more digits shortly after a word that names a secret ("pin", "passcode",
//!   "password", "security" (code or number), "cvv", "密码") becomes `[PIN]`;
//! - a run of 4 or more digits shortly after a word that names a card or an account ("card",
//!   "credit", "debit", "iban", "account", "卡") becomes `[card digits]`: a caller who pauses in
//!   the middle of the number gives the recogniser two short runs, which rule one alone misses.
//!
//! Keys pressed while the bot collects digits are stored as [`MASKED_KEY`] by the call itself.

use std::borrow::Cow;

/// What a keyed digit is stored as while the bot is collecting digits (an order number, a
/// postcode, a PIN): the call keeps that a key was pressed and when, not which.
pub const MASKED_KEY: &str = "•";

/// Digits in a row from which a run is taken for a card number (the shortest card numbers have 13).
const CARD_DIGITS: usize = 13;
/// How many words before a run a naming word ("pin", "card") may stand.
const CONTEXT_WORDS: usize = 4;

const SECRET_WORDS: &[&str] = &["pin", "pins", "passcode", "password", "security", "cvv", "cvc", "cvv2", "密码"];
const CARD_WORDS: &[&str] = &["card", "cards", "credit", "debit", "iban", "account", "visa", "mastercard", "amex", "卡", "卡号", "信用卡", "银行卡"];
const DIGIT_WORDS: &[&str] = &["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// ASCII digits.
    Digits,
    /// A run of letters (or other non-digit word characters, such as Chinese).
    Word,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    kind: Kind,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    for (i, c) in text.char_indices() {
        let kind = if c.is_ascii_digit() {
            Kind::Digits
        } else if c.is_alphanumeric() || c == '\'' {
            Kind::Word
        } else {
            continue;
        };
        match out.last_mut() {
            Some(t) if t.end == i && t.kind == kind => t.end = i + c.len_utf8(),
            _ => out.push(Token { start: i, end: i + c.len_utf8(), kind }),
        }
    }
    out
}

/// A maximal run of number tokens with only separators between them.
struct Run {
    first: usize,
    last: usize,
    digits: usize,
    /// The digits themselves when they were written as digits (for the last four).
    written: String,
}

fn is_separator_gap(gap: &str) -> bool {
    gap.len() <= 3 && gap.chars().all(|c| c.is_whitespace() || matches!(c, '-' | '.' | ',' | '/' | '–'))
}

fn digit_word(text: &str, t: &Token) -> bool {
    t.kind == Kind::Word && DIGIT_WORDS.contains(&text[t.start..t.end].to_lowercase().as_str())
}

fn runs(text: &str, toks: &[Token]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let numeric = |t: &Token| t.kind == Kind::Digits || digit_word(text, t);
        if !numeric(&toks[i]) {
            i += 1;
            continue;
        }
        let mut run = Run { first: i, last: i, digits: 0, written: String::new() };
        let mut j = i;
        loop {
            let t = &toks[j];
            if t.kind == Kind::Digits {
                run.digits += t.end - t.start;
                run.written.push_str(&text[t.start..t.end]);
            } else {
                run.digits += 1;
            }
            run.last = j;
            let next = j + 1;
            if next < toks.len() && numeric(&toks[next]) && is_separator_gap(&text[t.end..toks[next].start]) {
                j = next;
            } else {
                break;
            }
        }
        // "oh" alone, or "one" in "no one", is a word, not a number.
        let only_words = run.written.is_empty();
        if !(only_words && run.digits < 3) {
            out.push(run);
        }
        i = j + 1;
    }
    out
}

/// Whether one of `names` stands among the few words before token `at`.
fn named_before(text: &str, toks: &[Token], at: usize, names: &[&str]) -> bool {
    toks[..at].iter().rev().filter(|t| t.kind == Kind::Word).take(CONTEXT_WORDS).any(|t| {
        let w = text[t.start..t.end].to_lowercase();
        names.iter().any(|n| w == *n || (!n.is_ascii() && w.contains(n)))
    })
}

/// `text` with card-like numbers and PINs masked (see the crate's rules); borrowed when there
/// was nothing to mask.
pub fn mask(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_ascii_digit()) {
        let lower = text.to_lowercase();
        if !DIGIT_WORDS.iter().any(|w| lower.contains(w)) {
            return Cow::Borrowed(text);
        }
    }
    let toks = tokens(text);
    let mut replacements: Vec<(usize, usize, String)> = Vec::new();
    for run in runs(text, &toks) {
        let (start, end) = (toks[run.first].start, toks[run.last].end);
        let with = if run.digits >= CARD_DIGITS {
            if run.written.len() >= 4 && run.written.len() == run.digits {
                format!("[card number ending {}]", &run.written[run.written.len() - 4..])
            } else {
                "[card number]".to_string()
            }
        } else if run.digits >= 3 && named_before(text, &toks, run.first, SECRET_WORDS) {
            "[PIN]".to_string()
        } else if run.digits >= 4 && named_before(text, &toks, run.first, CARD_WORDS) {
            "[card digits]".to_string()
        } else {
            continue;
        };
        replacements.push((start, end, with));
    }
    if replacements.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, with) in replacements {
        out.push_str(&text[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Masks every string inside a JSON value (an event's detail, a hand-off summary).
pub fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(m) = mask(s) {
                *s = m;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(mask_json),
        _ => {}
    }
}

/// Whether `text` still holds the digits of `secret` in a row, whatever separates them (spaces,
/// dashes, dots): what the tests and the audit look for in a database dump or a log.
pub fn holds_digits(text: &str, secret: &str) -> bool {
    let want: String = secret.chars().filter(char::is_ascii_digit).collect();
    if want.is_empty() {
        return false;
    }
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            if digits.ends_with(&want) {
                return true;
            }
        } else if !(c.is_whitespace() || matches!(c, '-' | '.' | ',' | '/')) {
            digits.clear();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_number_keeps_only_its_last_four_digits_however_it_is_written() {
        for said in ["my card number is 4111 1111 1111 1111.", "My card is 4111-1111-1111-1111, thanks", "it's 4111111111111111"] {
            let m = mask(said);
            assert!(m.contains("[card number ending 1111]"), "{said} -> {m}");
            assert!(!holds_digits(&m, "4111111111111111"), "{m}");
        }
        let spoken = "four one one one one one one one one one one one one one one one";
        assert_eq!(mask(&format!("the number is {spoken} okay")), "the number is [card number] okay");
        // Thirteen digits in groups of different sizes (an Amex-like 15).
        assert_eq!(mask("3782 822463 10005"), "[card number ending 0005]");
    }

    #[test]
    fn a_pin_said_after_its_name_is_hidden() {
        assert_eq!(mask("my PIN is 4321"), "my PIN is [PIN]");
        assert_eq!(mask("the security code is 1 2 3"), "the security code is [PIN]");
        assert_eq!(mask("我的密码是 8642"), "我的密码是 [PIN]");
        assert_eq!(mask("pin number one two three four"), "pin number [PIN]");
    }

    #[test]
    fn card_digits_split_by_a_pause_are_hidden_after_the_word_card() {
        assert_eq!(mask("my credit card is 4111 1111"), "my credit card is [card digits]");
        assert_eq!(mask("卡号 41111111"), "卡号 [card digits]");
    }

    #[test]
    fn what_the_tools_and_agents_need_is_kept() {
        for kept in [
            "Where is order 41234567?",
            "order 41234567 was paid by card",
            "my postcode is 10115",
            "call me back on +49 30 1112223",
            "no one answered, I called at 3 pm",
            "Express delivery costs 9.90 euros and takes 1 business day",
            "I was charged 59.99 twice on my account",
        ] {
            assert_eq!(mask(kept), kept);
            assert!(matches!(mask(kept), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn json_details_are_masked_in_every_string() {
        let mut v = serde_json::json!({"summary": {"screen": "caller read card 4111 1111 1111 1111"}, "list": ["pin 9876", 3]});
        mask_json(&mut v);
        assert_eq!(v["summary"]["screen"], "caller read card [card number ending 1111]");
        assert_eq!(v["list"][0], "pin [PIN]");
        assert_eq!(v["list"][1], 3);
    }

    #[test]
    fn digits_are_found_across_separators() {
        assert!(holds_digits("x 4111-1111 1111.1111 y", "4111111111111111"));
        assert!(!holds_digits("4111 1111 x 1111 1111", "4111111111111111"));
        assert!(holds_digits("pin:4321", "4321"));
    }
}
