//! The tenant's knowledge base and intents, read from plain files a company maintains:
//! `knowledge/*.toml` (answers with example questions, optional translations) and `intents.toml`
//! (what callers want that is a task or a handoff rather than an answer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A version of an entry or intent in another language.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// One answer the bot may speak word for word.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub answer: String,
    pub examples: Vec<String>,
    #[serde(default)]
    pub translations: BTreeMap<String, Translation>,
    /// The file it came from, for messages.
    #[serde(skip)]
    pub source: PathBuf,
}

impl Entry {
    /// The answer in `language` if the entry has it, else the original (English) answer; with the
    /// language it is in.
    pub fn answer_in<'a>(&'a self, language: &'a str) -> (&'a str, &'a str) {
        match self.translations.get(language).and_then(|t| t.answer.as_deref()) {
            Some(a) => (a, language),
            None => (&self.answer, "en"),
        }
    }
}

/// What an intent leads to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Action {
    Tool(String),
    Transfer(String),
    SmallTalk,
    Goodbye,
}

impl Action {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.split_once(':') {
            Some(("tool", name)) if !name.is_empty() => Self::Tool(name.to_string()),
            Some(("transfer", reason)) if !reason.is_empty() => Self::Transfer(reason.to_string()),
            None if s == "smalltalk" => Self::SmallTalk,
            None if s == "goodbye" => Self::Goodbye,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: String,
    action: String,
    examples: Vec<String>,
    #[serde(default)]
    translations: BTreeMap<String, Translation>,
}

/// A task or handoff callers ask for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Intent {
    pub id: String,
    pub action: Action,
    pub examples: Vec<String>,
    pub translations: BTreeMap<String, Translation>,
}

/// Everything a tenant's files say.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    pub entries: Vec<Entry>,
    pub intents: Vec<Intent>,
    /// Files read, with their modification times (to notice edits).
    pub files: Vec<(PathBuf, Option<std::time::SystemTime>)>,
}

fn read(path: &Path) -> Result<String, KnowledgeError> {
    std::fs::read_to_string(path).map_err(|source| KnowledgeError::Read { path: path.to_path_buf(), source })
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, KnowledgeError> {
    toml::from_str(text).map_err(|e| KnowledgeError::Parse { path: path.to_path_buf(), message: e.to_string() })
}

impl KnowledgeBase {
    /// Reads `dir/knowledge/*.toml` and `dir/intents.toml`. Every problem names its file; ids must
    /// be unique and every entry and intent needs at least one example.
    pub fn load(dir: &Path) -> Result<Self, KnowledgeError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct EntriesFile {
            #[serde(default)]
            entry: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct IntentsFile {
            #[serde(default)]
            intent: Vec<RawIntent>,
        }
        let mut kb = KnowledgeBase::default();
        let listed = Self::list_files(dir).map_err(|source| KnowledgeError::Read { path: dir.join("knowledge"), source })?;
        let ipath = dir.join("intents.toml");
        let mut seen = BTreeMap::new();
        for (path, _) in listed.iter().filter(|(p, _)| *p != ipath) {
            let file: EntriesFile = parse(path, &read(path)?)?;
            for mut e in file.entry {
                let invalid = |message: String| KnowledgeError::Invalid { path: path.clone(), message };
                if e.examples.is_empty() || e.answer.trim().is_empty() {
                    return Err(invalid(format!("entry {:?} needs an answer and at least one example", e.id)));
                }
                if let Some(other) = seen.insert(e.id.clone(), path.clone()) {
                    return Err(invalid(format!("entry id {:?} is also used in {}", e.id, other.display())));
                }
                e.source = path.clone();
                kb.entries.push(e);
            }
        }
        let file: IntentsFile = parse(&ipath, &read(&ipath)?)?;
        for raw in file.intent {
            let invalid = |message: String| KnowledgeError::Invalid { path: ipath.clone(), message };
            let action = Action::parse(&raw.action)
                .ok_or_else(|| invalid(format!("intent {:?}: unknown action {:?}", raw.id, raw.action)))?;
            if raw.examples.is_empty() {
                return Err(invalid(format!("intent {:?} needs at least one example", raw.id)));
            }
            if let Some(other) = seen.insert(raw.id.clone(), ipath.clone()) {
                return Err(invalid(format!("id {:?} is also used in {}", raw.id, other.display())));
            }
            kb.intents.push(Intent { id: raw.id, action, examples: raw.examples, translations: raw.translations });
        }
        kb.files = listed;
        Ok(kb)
    }

    /// True if a file was added, removed or changed since this was loaded.
    pub fn is_stale(&self, dir: &Path) -> bool {
        let now = match Self::list_files(dir) {
            Ok(files) => files,
            Err(_) => return true,
        };
        now.len() != self.files.len() || now.iter().zip(&self.files).any(|(a, b)| a != b)
    }

    /// The knowledge files (sorted) and `intents.toml`, with their modification times.
    fn list_files(dir: &Path) -> std::io::Result<Vec<(PathBuf, Option<std::time::SystemTime>)>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.join("knowledge"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths.push(dir.join("intents.toml"));
        Ok(paths.into_iter().map(|p| {
            let m = modified(&p);
            (p, m)
        }).collect())
    }

    /// The tenant's own names (brands, products, stores, streets) as they are written in its
    /// answers, most frequent first: runs of capitalised words that do not merely start a
    /// sentence ("Lumen Home Electronics", "Riverside", "Harbor Road"). Given to the recogniser as
    /// its prompt, so that "Lumen" is not heard as "lumen" or "Lemon".
    pub fn vocabulary(&self, max_names: usize) -> Vec<String> {
        let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut order = 0;
        for entry in &self.entries {
            for sentence in entry.answer.split(['.', '!', '?', ':', ';']) {
                let words: Vec<&str> = sentence.split_whitespace().collect();
                let mut i = 0;
                while i < words.len() {
                    let clean = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-').to_string();
                    let capital = |w: &str| clean(w).chars().next().is_some_and(char::is_uppercase);
                    if !capital(words[i]) {
                        i += 1;
                        continue;
                    }
                    let start = i;
                    // A run ends at a comma (a list of names), or at a word in lower case.
                    while i < words.len() && capital(words[i]) {
                        i += 1;
                        if words[i - 1].ends_with(',') {
                            break;
                        }
                    }
                    let run: Vec<String> = words[start..i].iter().map(|w| clean(w)).filter(|w| !w.is_empty()).collect();
                    // A single capitalised word at a sentence's start is just the sentence's start;
                    // "I" and all-capital words (PIN, TV) are not names.
                    let single_start = run.len() == 1 && start == 0;
                    let name = run.join(" ");
                    if run.is_empty() || single_start || name == "I" || name.chars().all(|c| !c.is_lowercase()) {
                        continue;
                    }
                    order += 1;
                    counts.entry(name).or_insert((0, order)).0 += 1;
                }
            }
        }
        let mut names: Vec<(String, (usize, usize))> = counts.into_iter().collect();
        names.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.1 .1.cmp(&b.1 .1)));
        names.into_iter().take(max_names).map(|(n, _)| n).collect()
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.id == id)
    }
}

fn modified(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}
