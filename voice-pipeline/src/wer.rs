//! Word error rate, for measuring speech recognition against reference transcripts.
//!
//! Both sides are normalised the same way first: lower case, punctuation dropped, and numbers
//! written out ("10" -> "ten", long digit strings digit by digit), since Whisper writes digits where
//! transcripts spell words.

const ONES: [&str; 20] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
];
const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

fn number_words(n: u64, out: &mut Vec<String>) {
    match n {
        0..=19 => out.push(ONES[n as usize].into()),
        20..=99 => {
            out.push(TENS[(n / 10) as usize].into());
            if n % 10 != 0 {
                out.push(ONES[(n % 10) as usize].into());
            }
        }
        100..=999 => {
            out.push(ONES[(n / 100) as usize].into());
            out.push("hundred".into());
            if n % 100 != 0 {
                number_words(n % 100, out);
            }
        }
        _ => {
            number_words(n / 1000, out);
            out.push("thousand".into());
            if n % 1000 != 0 {
                number_words(n % 1000, out);
            }
        }
    }
}

/// Normalised words of a text.
pub fn normalize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // "3-5 days" is read "three to five days".
    let mut ranged = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let digit_at = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|d| d.is_ascii_digit());
        if c == '-' && digit_at(i.checked_sub(1)) && digit_at(Some(i + 1)) {
            ranged.push_str(" to ");
        } else {
            ranged.push(c);
        }
    }
    let cleaned: String = ranged
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c.to_ascii_lowercase() } else { ' ' })
        .collect();
    for word in cleaned.split_whitespace() {
        let word = word.trim_matches('\'');
        if word.is_empty() {
            continue;
        }
        if word.chars().all(|c| c.is_ascii_digit()) {
            match word.parse::<u64>() {
                // Order numbers, PINs and phone numbers are read digit by digit.
                Ok(n) if word.len() <= 4 && !word.starts_with('0') || word == "0" => number_words(n, &mut out),
                _ => out.extend(word.chars().map(|d| ONES[d.to_digit(10).unwrap_or(0) as usize].to_string())),
            }
        } else {
            out.push(word.to_string());
        }
    }
    out
}

/// Word-level edit distance (substitutions + insertions + deletions) between two word lists.
pub fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Joins neighbouring words of `words` that the other side writes as one ("call back" against
/// "callback"), so a spelling choice is not counted as two errors.
fn join_compounds(words: Vec<String>, other: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        if let Some(next) = words.get(i + 1) {
            let joined = format!("{}{next}", words[i]);
            if other.contains(&joined) && !other.contains(&words[i]) {
                out.push(joined);
                i += 2;
                continue;
            }
        }
        out.push(words[i].clone());
        i += 1;
    }
    out
}

/// Errors and reference length of one pair of texts.
pub fn score(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (normalize(reference), normalize(hypothesis));
    let h = join_compounds(h, &r);
    let r = join_compounds(r, &h);
    (edit_distance(&r, &h), r.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_punctuation_are_normalised() {
        assert_eq!(normalize("10 of Clubs."), ["ten", "of", "clubs"]);
        assert_eq!(normalize("Press 0, then 25!"), ["press", "zero", "then", "twenty", "five"]);
        assert_eq!(normalize("Order 41234567"), ["order", "four", "one", "two", "three", "four", "five", "six", "seven"]);
        assert_eq!(normalize("You've 3 hundred"), ["you've", "three", "hundred"]);
        assert_eq!(normalize("3-5 days, well-known"), ["three", "to", "five", "days", "well", "known"]);
    }

    #[test]
    fn wer_counts_each_kind_of_error() {
        assert_eq!(score("ten of clubs", "10 of clubs"), (0, 3));
        assert_eq!(score("ten of clubs", "ten of close"), (1, 3));
        assert_eq!(score("ten of clubs", "ten clubs"), (1, 3));
        assert_eq!(score("ten of clubs", "the ten of clubs now"), (2, 3));
        assert_eq!(score("", "noise"), (1, 0));
        assert_eq!(score("would you like a callback", "would you like a call back"), (0, 5));
        assert_eq!(score("please call back later", "please callback later"), (0, 3));
    }
}
