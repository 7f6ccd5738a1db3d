//! What an interruption said: nothing, a backchannel, or something to act on.

/// How the session treats the words of speech that overlapped the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interruption {
    /// No words (a cough, a door, line noise, or Whisper's tags for them).
    NoWords,
    /// "mm-hmm", "okay", "yeah": the caller is listening; the bot goes on.
    Backchannel,
    /// Anything else: the caller wants the floor.
    Words,
}

/// The words without Whisper's non-speech tags ("[BLANK_AUDIO]", "(coughs)", "*door closes*").
pub fn spoken_words(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '[' | '(' | '*' if depth == 0 || c != '*' => depth += 1,
            ']' | ')' => depth = (depth - 1).max(0),
            '*' => depth = 0,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn classify(text: &str) -> Interruption {
    let words: Vec<String> = spoken_words(text)
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | '…'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    if words.is_empty() || words.iter().all(|w| !w.chars().any(char::is_alphanumeric)) {
        return Interruption::NoWords;
    }
    const ACK: &[&str] = &[
        "mm", "mmm", "hmm", "mm-hmm", "mhm", "uh-huh", "uh", "um", "ah", "oh", "okay", "ok", "yeah", "yep", "right", "sure",
        "alright", "i", "see", "got", "it", "cool", "fine", "good", "great", "thanks", "you",
    ];
    let acks = words.iter().all(|w| ACK.contains(&w.as_str()) || w.chars().all(|c| matches!(c, 'm' | 'h' | '-')));
    if acks && words.len() <= 3 {
        Interruption::Backchannel
    } else {
        Interruption::Words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interruptions_are_told_apart() {
        assert_eq!(classify(""), Interruption::NoWords);
        assert_eq!(classify("[BLANK_AUDIO]"), Interruption::NoWords);
        assert_eq!(classify(" (coughing)"), Interruption::NoWords);
        assert_eq!(classify("*door slams*"), Interruption::NoWords);
        assert_eq!(classify("Mm-hmm."), Interruption::Backchannel);
        assert_eq!(classify("Okay."), Interruption::Backchannel);
        assert_eq!(classify("Yeah, yeah."), Interruption::Backchannel);
        assert_eq!(classify("Mmmhmm"), Interruption::Backchannel);
        assert_eq!(classify("Okay, but where is my order?"), Interruption::Words);
        assert_eq!(classify("Stop."), Interruption::Words);
        assert_eq!(classify("I want a person"), Interruption::Words);
    }
}
