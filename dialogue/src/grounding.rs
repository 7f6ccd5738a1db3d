//! The grounding guard: every number in a reply (an amount, a date, a time, a duration, an order
//! number) must appear in the reply's sources, the knowledge entry or the tool's data. A reply that
//! brings a number of its own is not spoken.

/// The digit runs of a text, without leading zeros ("4.90" -> 4, 90; "10:00" -> 10, 0;
/// "2026-11-19" -> 2026, 11, 19).
pub fn numbers(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .map(|r| {
            let t = r.trim_start_matches('0');
            if t.is_empty() { "0".to_string() } else { t.to_string() }
        })
        .collect()
}

/// Numbers in `reply` that none of `sources` contains.
pub fn ungrounded(reply: &str, sources: &[&str]) -> Vec<String> {
    let known: std::collections::HashSet<String> = sources.iter().flat_map(|s| numbers(s)).collect();
    numbers(reply).into_iter().filter(|n| !known.contains(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_must_come_from_the_sources() {
        let src = r#"{"shipped_on":"2026-11-19","delivery":"two-person slot 2026-11-26 10:00-12:00","total_eur":799.0}"#;
        assert!(ungrounded("It was shipped on November 19 and arrives November 26 between 10:00 and 12:00.", &[src]).is_empty());
        assert_eq!(ungrounded("It arrives on November 27.", &[src]), ["27"]);
        assert_eq!(ungrounded("Delivery costs 4.95 euros.", &["costs 4.90 euros"]), ["95"]);
        assert!(ungrounded("No numbers here.", &[]).is_empty());
    }
}
