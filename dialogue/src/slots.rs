//! Values callers give in words: order numbers and postcodes, spoken as digits ("41234567"), as
//! words ("four one two three ...") or in groups ("4123 4567"), as Whisper writes them.

const DIGIT_WORDS: [(&str, char); 13] = [
    ("zero", '0'), ("oh", '0'), ("one", '1'), ("two", '2'), ("three", '3'), ("four", '4'), ("five", '5'),
    ("six", '6'), ("seven", '7'), ("eight", '8'), ("nine", '9'), ("for", '4'), ("to", '2'),
];

/// Runs of digits in the text, with digit words and digit groups joined ("four one 23" -> "4123").
/// "to"/"for" count as digits only between other digits ("4 to 5" stays apart as a range is rare
/// in an order number; "four one two three" joins).
pub fn digit_runs(text: &str) -> Vec<String> {
    let tokens: Vec<String> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-' || c == '.')
        .filter(|t| !t.is_empty())
        .map(|t| t.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .collect();
    let as_digits = |t: &str, strict: bool| -> Option<String> {
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return Some(t.to_string());
        }
        DIGIT_WORDS.iter().find(|(w, _)| *w == t && (!strict || !matches!(*w, "to" | "for" | "oh"))).map(|(_, d)| d.to_string())
    };
    let mut runs = Vec::new();
    let mut cur = String::new();
    for (i, t) in tokens.iter().enumerate() {
        // Ambiguous words join only when a digit follows and one precedes.
        let strict = cur.is_empty() || tokens.get(i + 1).and_then(|n| as_digits(n, true)).is_none();
        match as_digits(t, strict) {
            Some(d) => cur.push_str(&d),
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// The first run that is a valid value of the given length and test.
pub fn find(text: &str, valid: impl Fn(&str) -> bool) -> Option<String> {
    digit_runs(text).into_iter().find(|r| valid(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_in_every_spoken_form() {
        assert_eq!(digit_runs("my order is 41234567"), ["41234567"]);
        assert_eq!(digit_runs("It's 4123 4567."), ["41234567"]);
        assert_eq!(digit_runs("four one two three four five six seven"), ["41234567"]);
        assert_eq!(digit_runs("four one 23 45 six seven please"), ["41234567"]);
        assert_eq!(digit_runs("postcode 1 0 1 1 5"), ["10115"]);
        assert_eq!(digit_runs("I want to talk for a minute"), Vec::<String>::new());
        assert_eq!(digit_runs("order 42000111 and postcode 20095"), ["42000111", "20095"]);
    }
}
