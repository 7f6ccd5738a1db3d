//! Knowledge gaps and rising topics: callers' words grouped by meaning.
//!
//! A knowledge gap is a caller turn the bot had no answer for (the store marks it `unanswered`:
//! the classifier's confidence was below the threshold). The same question comes in many
//! wordings, so the turns are grouped by the meaning of their words (sentence embeddings, made by
//! the caller of this module with the project's MiniLM model) with average-linkage agglomerative
//! clustering: two groups merge while the mean cosine similarity between their members is at least
//! the threshold. Average linkage keeps a group from drifting along a chain of near neighbours,
//! which single linkage does, and needs no number of groups given in advance, which k-means does.
//! The largest groups come first, each with example wordings, so a company writes the knowledge
//! entries most callers miss first.

use std::collections::BTreeMap;

use ivr_store::CallRecord;
use serde::Serialize;

use crate::{at, Period};

/// How similar (cosine of MiniLM embeddings) two groups' members must be on average to merge.
/// Measured on transcribed caller questions (ivr/tests/insight.rs): three wordings of one
/// question scored 0.41-0.89 with each other (0.44-0.84 as group averages), questions on
/// different topics at most 0.27.
pub const SAME_MEANING: f32 = 0.35;
/// At most this many utterances are grouped (the most recent): the clustering is cubic.
pub const MAX_UTTERANCES: usize = 1500;

/// A caller's words, with where they were said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Utterance {
    pub call_id: String,
    pub started_at: String,
    pub text: String,
    pub intent: Option<String>,
}

/// Utterances of one meaning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The member nearest to the group's centre: the wording that stands for it.
    pub label: String,
    pub size: usize,
    pub members: Vec<Utterance>,
    /// The members' places in the list given to [`group`].
    #[serde(skip)]
    pub indices: Vec<usize>,
}

/// The knowledge gaps of a period: the unanswered questions, grouped by meaning.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gaps {
    pub period: Period,
    pub unanswered: usize,
    pub groups: Vec<Group>,
}

/// The knowledge gaps of `period`'s calls; `embed` turns texts into sentence embeddings (the
/// project's MiniLM, wherever the caller has it loaded).
pub fn report<E>(calls: &[CallRecord], period: Period, embed: impl FnOnce(&[&str]) -> Result<Vec<Vec<f32>>, E>) -> Result<Gaps, E> {
    let utterances = unanswered(calls, period);
    let texts: Vec<&str> = utterances.iter().map(|u| u.text.as_str()).collect();
    let embeddings = if texts.is_empty() { Vec::new() } else { embed(&texts)? };
    let groups = group(&utterances, &embeddings, SAME_MEANING);
    Ok(Gaps { period, unanswered: utterances.len(), groups })
}

/// The caller turns the bot could not answer, of calls that started in `period`, oldest first.
pub fn unanswered(calls: &[CallRecord], period: Period) -> Vec<Utterance> {
    utterances(calls, period, |t| t.unanswered == Some(true))
}

/// Every caller turn with words (at least two), of calls that started in `period`.
pub fn questions(calls: &[CallRecord], period: Period) -> Vec<Utterance> {
    utterances(calls, period, |t| t.text.split_whitespace().count() >= 2)
}

fn utterances(calls: &[CallRecord], period: Period, keep: impl Fn(&ivr_store::Turn) -> bool) -> Vec<Utterance> {
    let mut out: Vec<Utterance> = calls
        .iter()
        .filter(|c| at(&c.call.started_at).is_some_and(|t| period.contains(t)))
        .flat_map(|c| {
            // Words purged by retention are no question any more.
            let said = |t: &&ivr_store::Turn| t.speaker == "caller" && !t.text.trim().is_empty() && t.text != ivr_store::PURGED;
            c.turns.iter().filter(said).filter(|t| keep(t)).map(|t| Utterance {
                call_id: c.call.id.clone(),
                started_at: c.call.started_at.clone(),
                text: t.text.trim().to_string(),
                intent: t.intent.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    if out.len() > MAX_UTTERANCES {
        out.drain(..out.len() - MAX_UTTERANCES);
    }
    out
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Groups `utterances` (with their `embeddings`, in the same order) by meaning; largest first,
/// ties by the earliest member.
pub fn group(utterances: &[Utterance], embeddings: &[Vec<f32>], same_meaning: f32) -> Vec<Group> {
    let n = utterances.len().min(embeddings.len());
    if n == 0 {
        return Vec::new();
    }
    let sim: Vec<Vec<f32>> = (0..n).map(|i| (0..n).map(|j| cosine(&embeddings[i], &embeddings[j])).collect()).collect();
    // Average linkage with the Lance-Williams update: `link[a][b]` is the mean similarity between
    // the members of clusters a and b.
    let mut members: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let mut alive: Vec<bool> = vec![true; n];
    let mut link = sim.clone();
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for a in (0..n).filter(|a| alive[*a]) {
            for b in (a + 1..n).filter(|b| alive[*b]) {
                if link[a][b] >= same_meaning && best.is_none_or(|(_, _, s)| link[a][b] > s) {
                    best = Some((a, b, link[a][b]));
                }
            }
        }
        let Some((a, b, _)) = best else { break };
        let (na, nb) = (members[a].len() as f32, members[b].len() as f32);
        for c in (0..n).filter(|c| alive[*c] && *c != a && *c != b) {
            let merged = (na * link[a][c] + nb * link[b][c]) / (na + nb);
            link[a][c] = merged;
            link[c][a] = merged;
        }
        let moved = std::mem::take(&mut members[b]);
        members[a].extend(moved);
        alive[b] = false;
    }
    let mut groups: Vec<Group> = (0..n)
        .filter(|i| alive[*i])
        .map(|i| {
            let mut idx = members[i].clone();
            idx.sort_unstable();
            let centre = *idx
                .iter()
                .max_by(|x, y| {
                    let mean = |p: usize| idx.iter().map(|q| sim[p][*q]).sum::<f32>();
                    mean(**x).total_cmp(&mean(**y))
                })
                .unwrap_or(&idx[0]);
            Group { label: utterances[centre].text.clone(), size: idx.len(), members: idx.iter().map(|k| utterances[*k].clone()).collect(), indices: idx }
        })
        .collect();
    groups.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.members[0].started_at.cmp(&b.members[0].started_at)));
    groups
}

/// The week up to `end` and the week before it: the two periods [`rising`] compares (and
/// the span their records are loaded for: `last.from` to `this.to`).
pub fn weeks_to(end: jiff::Timestamp) -> (Period, Period) {
    let this = Period { from: end.checked_sub(jiff::SignedDuration::from_hours(7 * 24)).unwrap_or(jiff::Timestamp::MIN), to: end };
    (this, this.previous())
}

/// A topic's count this week against the week before.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    pub label: String,
    /// The intent most of its members were classified as, if any.
    pub intent: Option<String>,
    pub this_week: usize,
    pub last_week: usize,
    pub examples: Vec<String>,
}

/// Topics of `this_week`'s and `last_week`'s utterances (grouped together, so one topic is one
/// group in both weeks), those that rose most first; topics that did not rise are left out.
pub fn rising(this_week: &[Utterance], last_week: &[Utterance], embed: &dyn Fn(&str) -> Option<Vec<f32>>) -> Vec<Trend> {
    let all: Vec<(Utterance, bool, Vec<f32>)> = this_week
        .iter()
        .map(|u| (u, true))
        .chain(last_week.iter().map(|u| (u, false)))
        .filter_map(|(u, now)| Some((u.clone(), now, embed(&u.text)?)))
        .collect();
    let utterances: Vec<Utterance> = all.iter().map(|(u, _, _)| u.clone()).collect();
    let embeddings: Vec<Vec<f32>> = all.iter().map(|(_, _, e)| e.clone()).collect();
    let mut trends: Vec<Trend> = group(&utterances, &embeddings, SAME_MEANING)
        .into_iter()
        .map(|g| {
            let this_week = g.indices.iter().filter(|i| all[**i].1).count();
            let mut intents: BTreeMap<&str, usize> = BTreeMap::new();
            for i in g.members.iter().filter_map(|m| m.intent.as_deref()) {
                *intents.entry(i).or_insert(0) += 1;
            }
            let intent = intents.into_iter().max_by_key(|(_, n)| *n).filter(|(_, n)| n * 2 > g.size).map(|(i, _)| i.to_string());
            Trend { examples: g.members.iter().take(3).map(|m| m.text.clone()).collect(), label: g.label, intent, last_week: g.size - this_week, this_week }
        })
        .filter(|t| t.this_week > t.last_week)
        .collect();
    trends.sort_by(|a, b| (b.this_week - b.last_week).cmp(&(a.this_week - a.last_week)).then_with(|| b.this_week.cmp(&a.this_week)));
    trends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(text: &str) -> Utterance {
        Utterance { call_id: text.into(), started_at: "2026-12-01T00:00:00Z".into(), text: text.into(), intent: None }
    }

    #[test]
    fn groups_follow_the_mean_similarity_largest_first() {
        let texts = ["a1", "a2", "a3", "b1", "b2", "c"];
        let emb = vec![vec![1.0, 0.0, 0.0], vec![0.9, 0.1, 0.0], vec![0.95, 0.0, 0.1], vec![0.0, 1.0, 0.0], vec![0.1, 0.9, 0.0], vec![0.0, 0.0, 1.0]];
        let utt: Vec<_> = texts.iter().map(|t| u(t)).collect();
        let g = group(&utt, &emb, 0.5);
        let sets: Vec<Vec<&str>> = g.iter().map(|g| g.members.iter().map(|m| m.text.as_str()).collect()).collect();
        assert_eq!(sets, vec![vec!["a1", "a2", "a3"], vec!["b1", "b2"], vec!["c"]]);
        assert_eq!(g[0].label, "a1");
    }

    #[test]
    fn a_chain_of_neighbours_does_not_become_one_group() {
        // Each point is close to the next, the ends are far apart: single linkage would join all.
        let emb: Vec<Vec<f32>> = (0..6).map(|i| { let a = i as f32 * 0.45; vec![a.cos(), a.sin()] }).collect();
        let utt: Vec<_> = (0..6).map(|i| u(&format!("p{i}"))).collect();
        assert!(group(&utt, &emb, 0.8).len() >= 2);
    }

    #[test]
    fn rising_topics_count_each_week() {
        let now = [u("x1"), u("x2"), u("x3"), u("y1")];
        let before = [u("x0"), u("y0"), u("y2")];
        let embed = |t: &str| Some(if t.starts_with('x') { vec![1.0, 0.0] } else { vec![0.0, 1.0] });
        let t = rising(&now, &before, &embed);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].this_week, t[0].last_week), (3, 1));
    }
}
