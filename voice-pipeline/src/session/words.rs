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

/// The words of a transcript, lower case, without punctuation.
fn lowercase_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | '…'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub fn classify(text: &str) -> Interruption {
    let words = lowercase_words(&spoken_words(text));
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

/// Whether words heard so far stop where a sentence cannot ("My order number is", "I would like
/// to speak about", "um"): on an article, a preposition, a conjunction, a possessive, a form of
/// "be" or "have" with nothing after it, a filler, or Whisper's "..." for trailing off. The caller
/// is then mid-sentence, whatever the sound of the pause says.
pub fn sounds_unfinished(text: &str) -> bool {
    let text = spoken_words(text);
    let trimmed = text.trim_end();
    if trimmed.ends_with("...") || trimmed.ends_with('…') || trimmed.ends_with('-') {
        return true;
    }
    // A question or an exclamation is how Whisper hears a finished sentence's tune, unless it
    // ends on a word no sentence ends on: Whisper also writes "How much is?" for a caller cut
    // off in a pause. (Prepositions end questions: "What is it for?")
    let question = trimmed.ends_with('?') || trimmed.ends_with('!');
    let Some(last) = trimmed
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?'))
        .rfind(|w| !w.is_empty())
        .map(str::to_lowercase)
    else {
        return false;
    };
    const DANGLING: &[&str] = &[
        // articles, possessives, determiners
        "a", "an", "the", "my", "your", "our", "his", "her", "their", "this", "that's", "some", "any", "every",
        // prepositions and particles
        "to", "for", "of", "in", "on", "at", "by", "with", "about", "from", "into", "than", "like",
        // conjunctions
        "and", "or", "but", "because", "so", "if", "when", "that", "which", "whether", "than",
        // "be", "have" and helpers waiting for their verb or object
        "is", "are", "was", "were", "am", "be", "been", "have", "has", "had", "do", "does", "did", "can", "could",
        "would", "will", "should", "i", "i'm", "it's", "there's", "number",
        // fillers
        "um", "uh", "er", "erm", "hmm", "ah", "well",
    ];
    const NEVER_LAST: &[&str] = &[
        "a", "an", "the", "my", "your", "our", "his", "their", "every", "and", "or", "but", "because", "if", "whether", "is",
        "are", "was", "were", "am", "um", "uh", "er", "erm",
    ];
    if question {
        return NEVER_LAST.contains(&last.as_str());
    }
    DANGLING.contains(&last.as_str())
}

/// Words after which callers usually go on, though the sentence could end there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MayGoOn {
    /// A greeting alone ("Hello.", "Hi, yes,"): the request follows.
    Greeting,
    /// A number read in groups ("My order number is 4 1 2 3,").
    Digits,
}

/// Whether the words so far are a greeting alone or end in a group of digits: the turn should
/// wait a longer silence than after a finished question.
pub fn may_go_on(text: &str) -> Option<MayGoOn> {
    let text = spoken_words(text);
    let words = lowercase_words(&text);
    let last = words.last()?;
    const GREETING: &[&str] = &[
        "hello", "hi", "hey", "hiya", "yes", "yeah", "good", "morning", "afternoon", "evening", "there", "um", "uh", "oh", "so",
        "well", "okay", "ok",
    ];
    if last.chars().all(|c| c.is_ascii_digit()) {
        Some(MayGoOn::Digits)
    } else if words.len() <= 4 && words.iter().all(|w| GREETING.contains(&w.as_str())) && !text.trim_end().ends_with('?') {
        Some(MayGoOn::Greeting)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_sentences_are_recognised() {
        for t in ["My order number is", "the thing is", "I would like to speak about.", "You have", "Your", "I wonder...", "I ordered a kettle, and", "um", "Do you have, uh"] {
            assert!(sounds_unfinished(t), "{t}");
        }
        for t in ["How much is?", "Is the?", "Can I change my?"] {
            assert!(sounds_unfinished(t), "{t}");
        }
        for t in ["What is it for?", "Where are you from?", "Can I?", "Who is it?", "Is it?", "Where are your stores?"] {
            assert!(!sounds_unfinished(t), "{t}");
        }
        for t in ["Where is my order?", "I want to return.", "4 1 2 3 4 5 6 7", "Yes, please.", "Goodbye.", "Hello.", "I have a question about my bill.", "How many points do I have?", "Goodbye,"] {
            assert!(!sounds_unfinished(t), "{t}");
        }
    }

    #[test]
    fn greetings_and_digit_groups_may_go_on() {
        for t in ["Hello.", "Hi,", "Hello, yes.", "Hi there."] {
            assert_eq!(may_go_on(t), Some(MayGoOn::Greeting), "{t}");
        }
        for t in ["My order number is 4 1 2 3,", "4 2 0 0", "1 0 1."] {
            assert_eq!(may_go_on(t), Some(MayGoOn::Digits), "{t}");
        }
        for t in ["Hello?", "Hello, I have a question about my bill.", "Where is my order?", "Yes, please.", "Goodbye.", "I want to return.", ""] {
            assert_eq!(may_go_on(t), None, "{t}");
        }
    }

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
