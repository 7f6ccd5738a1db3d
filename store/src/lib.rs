//! The call store: calls, their turns (who spoke, the words, the understanding, per-stage timings)
//! and events (answered, barge-in, keys, transfers, hang-up), in SQLite (a file in WAL mode, the
//! default) or PostgreSQL (by URL, for several servers sharing one store). One set of migrations
//! serves both: the schema uses only portable types and the application makes the ids.
//!
//! Writes are small and happen as a call goes (a turn is stored when it completes), so a crash
//! loses at most the turn in progress; at start-up a server marks its own calls that never ended
//! as `interrupted`.

pub mod agents;
pub mod audit;
pub mod queue;
pub mod sessions;
#[cfg(feature = "testing")]
pub mod testing;

pub use agents::{Agent, AgentError, NewAgent, PhoneSecret};
pub use audit::{AuditLine, PURGED};
pub use queue::{FollowUp, QueueEntry, QueueLogLine};
pub use sessions::Session;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    #[error("cannot open the store at {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("password hashing: {0}")]
    Crypto(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the store; cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    pub backend: Backend,
}

/// A call as it starts.
#[derive(Debug, Clone, Default)]
pub struct NewCall {
    pub id: String,
    pub sip_call_id: Option<String>,
    pub caller: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// Which server took the call (its own unfinished calls are marked interrupted at its start).
    pub server: String,
    pub recording: Option<String>,
}

/// A line of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Turn {
    pub seq: i64,
    /// Seconds into the call.
    pub at_secs: f64,
    /// "caller" or "bot".
    pub speaker: String,
    pub text: String,
    pub language: Option<String>,
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    /// A caller turn's mood from its words: neutral | frustrated | angry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<String>,
    /// A caller turn the bot had no answer for (a knowledge gap); none for the bot's turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unanswered: Option<bool>,
    #[serde(flatten)]
    pub stages: Stages,
}

/// What the dialogue made of a caller's turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Understanding {
    pub intent: Option<String>,
    pub confidence: Option<f64>,
    pub language: Option<String>,
    pub sentiment: Option<String>,
    pub unanswered: Option<bool>,
}

/// Where a caller turn's time went, in milliseconds (known once its reply has started).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Stages {
    pub endpoint_ms: Option<f64>,
    pub stt_ms: Option<f64>,
    pub understand_ms: Option<f64>,
    pub llm_first_token_ms: Option<f64>,
    pub tts_first_audio_ms: Option<f64>,
    pub voice_to_voice_ms: Option<f64>,
}

/// Something that happened in a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Event {
    pub seq: i64,
    pub at_secs: f64,
    /// answered | barge_in | key | transfer | hangup | action
    pub kind: String,
    pub detail: Option<serde_json::Value>,
}

/// A note someone wrote about a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Note {
    /// RFC 3339.
    pub written_at: String,
    pub author: String,
    pub text: String,
}

/// How a call ended.
#[derive(Debug, Clone, Default)]
pub struct CallEnd {
    pub ended_at: String,
    pub duration_secs: f64,
    pub ended_by: String,
    pub media: Option<serde_json::Value>,
}

/// A call in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    pub id: String,
    pub sip_call_id: Option<String>,
    pub caller: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_secs: Option<f64>,
    pub ended_by: Option<String>,
    pub recording: Option<String>,
    pub server: Option<String>,
    pub media: Option<serde_json::Value>,
}

/// What earlier calls from one number tell about the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallerHistory {
    pub calls: i64,
    /// The order number their latest call was about, if any.
    pub last_order: Option<String>,
}

/// A call with everything kept of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    #[serde(flatten)]
    pub call: CallSummary,
    pub turns: Vec<Turn>,
    pub events: Vec<Event>,
    pub notes: Vec<Note>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating it if needed) the store at `url` and brings its schema up to date.
    /// `sqlite://records/calls.db` is a file beside the server (WAL mode); `postgres://...` a
    /// server shared by several.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Url(url.into()));
        };
        let mut url = url.to_string();
        if backend == Backend::Sqlite {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default().to_string();
            if path.is_empty() || path == ":memory:" {
                return Err(StoreError::Url(url));
            }
            if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Open { url: url.clone(), source: sqlx::Error::Io(e) })?;
            }
            if !url.contains('?') {
                url.push_str("?mode=rwc");
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers do not block the writer; NORMAL sync survives a killed
                        // process (not a power cut) at a fraction of the cost of FULL.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| StoreError::Open { url: redact(&url), source })?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    pub async fn start_call(&self, c: &NewCall) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO calls (id, sip_call_id, caller, started_at, server, recording) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&c.id)
            .bind(&c.sip_call_id)
            .bind(&c.caller)
            .bind(&c.started_at)
            .bind(&c.server)
            .bind(&c.recording)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a line of the conversation, its words masked ([`ivr_privacy::mask`]): a card
    /// number or a PIN read out never reaches the database.
    pub async fn add_turn(&self, call_id: &str, t: &Turn) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO turns (call_id, seq, at_secs, speaker, text, language, intent, confidence, sentiment, unanswered, endpoint_ms, \
             stt_ms, understand_ms, llm_first_token_ms, tts_first_audio_ms, voice_to_voice_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(call_id)
        .bind(t.seq)
        .bind(t.at_secs)
        .bind(&t.speaker)
        .bind(ivr_privacy::mask(&t.text).as_ref())
        .bind(&t.language)
        .bind(&t.intent)
        .bind(t.confidence)
        .bind(&t.sentiment)
        .bind(t.unanswered.map(i64::from))
        .bind(t.stages.endpoint_ms)
        .bind(t.stages.stt_ms)
        .bind(t.stages.understand_ms)
        .bind(t.stages.llm_first_token_ms)
        .bind(t.stages.tts_first_audio_ms)
        .bind(t.stages.voice_to_voice_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A caller turn's stages, once its reply has started.
    pub async fn set_stages(&self, call_id: &str, seq: i64, s: &Stages) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE turns SET endpoint_ms = $1, stt_ms = $2, understand_ms = $3, llm_first_token_ms = $4, \
             tts_first_audio_ms = $5, voice_to_voice_ms = $6 WHERE call_id = $7 AND seq = $8",
        )
        .bind(s.endpoint_ms)
        .bind(s.stt_ms)
        .bind(s.understand_ms)
        .bind(s.llm_first_token_ms)
        .bind(s.tts_first_audio_ms)
        .bind(s.voice_to_voice_ms)
        .bind(call_id)
        .bind(seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The understanding of a turn (intent, confidence, language, mood, whether the bot had an
    /// answer), when the dialogue has it.
    pub async fn set_understanding(&self, call_id: &str, seq: i64, u: &Understanding) -> Result<(), StoreError> {
        sqlx::query("UPDATE turns SET intent = $1, confidence = $2, language = $3, sentiment = $4, unanswered = $5 WHERE call_id = $6 AND seq = $7")
            .bind(&u.intent)
            .bind(u.confidence)
            .bind(&u.language)
            .bind(&u.sentiment)
            .bind(u.unanswered.map(i64::from))
            .bind(call_id)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores something that happened in a call; the words in its detail (a hand-off summary
    /// quotes the caller) are masked.
    pub async fn add_event(&self, call_id: &str, e: &Event) -> Result<(), StoreError> {
        let detail = e.detail.clone().map(|mut d| {
            ivr_privacy::mask_json(&mut d);
            d.to_string()
        });
        sqlx::query("INSERT INTO events (call_id, seq, at_secs, kind, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(call_id)
            .bind(e.seq)
            .bind(e.at_secs)
            .bind(&e.kind)
            .bind(detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn end_call(&self, id: &str, end: &CallEnd) -> Result<(), StoreError> {
        sqlx::query("UPDATE calls SET ended_at = $1, duration_secs = $2, ended_by = $3, media = $4 WHERE id = $5")
            .bind(&end.ended_at)
            .bind(end.duration_secs)
            .bind(&end.ended_by)
            .bind(end.media.as_ref().map(|m| m.to_string()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks `server`'s calls that never ended (it died during them) as interrupted; returns how
    /// many there were. Other servers' calls sharing the store are left alone.
    pub async fn mark_interrupted(&self, server: &str, now: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("UPDATE calls SET ended_by = 'interrupted', ended_at = $1 WHERE server = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(server)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// The most recent calls first; `before` (a `started_at`) pages back.
    pub async fn calls(&self, limit: i64, before: Option<&str>) -> Result<Vec<CallSummary>, StoreError> {
        let rows = match before {
            Some(b) => {
                sqlx::query(&format!("{SUMMARY} WHERE started_at < $1 ORDER BY started_at DESC, id LIMIT $2")).bind(b).bind(limit).fetch_all(&self.pool).await?
            }
            None => sqlx::query(&format!("{SUMMARY} ORDER BY started_at DESC, id LIMIT $1")).bind(limit).fetch_all(&self.pool).await?,
        };
        rows.iter().map(summary).collect()
    }

    /// Every call, oldest first (for exports).
    pub async fn all_calls(&self) -> Result<Vec<CallRecord>, StoreError> {
        let rows = sqlx::query(&format!("{SUMMARY} ORDER BY started_at, id")).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let call = summary(r)?;
            let (turns, events, notes) = (self.turns(&call.id).await?, self.events(&call.id).await?, self.notes(&call.id).await?);
            out.push(CallRecord { call, turns, events, notes });
        }
        Ok(out)
    }

    /// One call with its turns and events.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>, StoreError> {
        let Some(row) = sqlx::query(&format!("{SUMMARY} WHERE id = $1")).bind(id).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let call = summary(&row)?;
        Ok(Some(CallRecord { turns: self.turns(id).await?, events: self.events(id).await?, notes: self.notes(id).await?, call }))
    }

    async fn turns(&self, id: &str) -> Result<Vec<Turn>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {TURN_COLUMNS} FROM turns WHERE call_id = $1 ORDER BY seq")).bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(turn_of).collect()
    }

    async fn events(&self, id: &str) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query("SELECT seq, at_secs, kind, detail FROM events WHERE call_id = $1 ORDER BY seq").bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(event_of).collect()
    }

    /// The calls that started in `[from, to)` (RFC 3339 bounds) with their turns, events and
    /// notes, oldest first: what the reports read. Three queries whatever the number of calls.
    pub async fn calls_between(&self, from: &str, to: &str) -> Result<Vec<CallRecord>, StoreError> {
        // Times are stored as RFC 3339 text whose fraction of a second varies in length, so the
        // text comparison is only a coarse bound (a second either side); the exact one is made
        // on parsed times.
        let (from_t, to_t) = (from.parse::<jiff::Timestamp>().ok(), to.parse::<jiff::Timestamp>().ok());
        let (lo, hi) = coarse_window(from, to);
        let within = CALLS_WITHIN;
        let rows = sqlx::query(&format!("{SUMMARY} WHERE started_at >= $1 AND started_at < $2 ORDER BY started_at, id")).bind(&lo).bind(&hi).fetch_all(&self.pool).await?;
        let mut calls: Vec<CallRecord> = Vec::with_capacity(rows.len());
        for r in &rows {
            let call = summary(r)?;
            let started = call.started_at.parse::<jiff::Timestamp>().ok();
            let inside = match (started, from_t, to_t) {
                (Some(s), Some(f), Some(t)) => f <= s && s < t,
                _ => true,
            };
            if inside {
                calls.push(CallRecord { call, turns: Vec::new(), events: Vec::new(), notes: Vec::new() });
            }
        }
        let index: std::collections::HashMap<String, usize> = calls.iter().enumerate().map(|(i, c)| (c.call.id.clone(), i)).collect();
        let turns = sqlx::query(&format!("SELECT call_id, {TURN_COLUMNS} FROM turns WHERE call_id IN ({within}) ORDER BY call_id, seq"))
            .bind(&lo)
            .bind(&hi)
            .fetch_all(&self.pool)
            .await?;
        for r in &turns {
            let id: String = r.try_get("call_id")?;
            if let Some(&i) = index.get(&id) {
                calls[i].turns.push(turn_of(r)?);
            }
        }
        let events = sqlx::query(&format!("SELECT call_id, seq, at_secs, kind, detail FROM events WHERE call_id IN ({within}) ORDER BY call_id, seq"))
            .bind(&lo)
            .bind(&hi)
            .fetch_all(&self.pool)
            .await?;
        for r in &events {
            let id: String = r.try_get("call_id")?;
            if let Some(&i) = index.get(&id) {
                calls[i].events.push(event_of(r)?);
            }
        }
        Ok(calls)
    }

    async fn notes(&self, id: &str) -> Result<Vec<Note>, StoreError> {
        let rows = sqlx::query("SELECT written_at, author, text FROM notes WHERE call_id = $1 ORDER BY written_at").bind(id).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(Note { written_at: r.try_get("written_at")?, author: r.try_get("author")?, text: r.try_get("text")? })).collect()
    }

    /// Adds a note to a call; `false` when there is no such call.
    pub async fn add_note(&self, call_id: &str, note: &Note) -> Result<bool, StoreError> {
        let inserted = sqlx::query("INSERT INTO notes (call_id, written_at, author, text) SELECT id, $1, $2, $3 FROM calls WHERE id = $4")
            .bind(&note.written_at)
            .bind(&note.author)
            .bind(ivr_privacy::mask(&note.text).as_ref())
            .bind(call_id)
            .execute(&self.pool)
            .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// What the calls from `caller` (the same [`caller_key`]: the number, whichever host it came
    /// through) in `[since, before)` say about them: how many there were, and
    /// the order their latest call was about (the `matter` event a call records when the bot
    /// looked an order up), which the bot may ask about when they call again.
    pub async fn caller_history(&self, caller: &str, since: &str, before: &str) -> Result<CallerHistory, StoreError> {
        let calls = self.calls_from(caller, since, before).await?;
        let mut last_order = None;
        for id in &calls {
            let row = sqlx::query("SELECT detail FROM events WHERE call_id = $1 AND kind = 'matter' ORDER BY seq DESC LIMIT 1").bind(id).fetch_optional(&self.pool).await?;
            let detail: Option<String> = match row {
                Some(r) => r.try_get("detail")?,
                None => continue,
            };
            last_order = detail.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok()).and_then(|d| d["order"].as_str().map(str::to_string));
            if last_order.is_some() {
                break;
            }
        }
        Ok(CallerHistory { calls: calls.len() as i64, last_order })
    }

    /// The ids of the calls from `caller` that started in `[since, before)`, newest first.
    async fn calls_from(&self, caller: &str, since: &str, before: &str) -> Result<Vec<String>, StoreError> {
        let key = caller_key(caller);
        // The number as stored bare, or as the user part of a sip:, sips: or tel: URI.
        let rows = sqlx::query(
            "SELECT id, caller FROM calls WHERE started_at >= $2 AND started_at < $3 \
             AND (caller = $1 OR caller LIKE 'sip:' || $1 || '@%' OR caller LIKE 'sips:' || $1 || '@%' OR caller LIKE 'tel:' || $1 || '%') \
             ORDER BY started_at DESC",
        )
        .bind(key)
        .bind(since)
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        // LIKE treats `_` and `%` in the key as wildcards: keep only exact matches.
        let mut ids = Vec::new();
        for r in &rows {
            let stored: String = r.try_get("caller")?;
            if caller_key(&stored) == key {
                ids.push(r.try_get("id")?);
            }
        }
        Ok(ids)
    }

    /// Turns stored so far, over all calls (for checks against the metrics).
    pub async fn count_turns(&self, speaker: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM turns WHERE speaker = $1").bind(speaker).fetch_one(&self.pool).await?.try_get("n")?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The ids of the calls that started in a coarse window (`$1`, `$2` from [`coarse_window`]).
pub(crate) const CALLS_WITHIN: &str = "SELECT id FROM calls WHERE started_at >= $1 AND started_at < $2";

/// Text bounds for `[from, to)` that hold every call of that span however its time's fraction is
/// written: a second earlier and two later, without the fraction. Callers filter exactly after.
pub(crate) fn coarse_window(from: &str, to: &str) -> (String, String) {
    let coarse = |s: &str, secs: i64| {
        s.parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| t.checked_add(jiff::SignedDuration::from_secs(secs)).ok())
            .map_or(s.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
    };
    (coarse(from, -1), coarse(to, 2))
}

const TURN_COLUMNS: &str = "seq, at_secs, speaker, text, language, intent, confidence, sentiment, unanswered, endpoint_ms, stt_ms, \
     understand_ms, llm_first_token_ms, tts_first_audio_ms, voice_to_voice_ms";

fn turn_of(r: &AnyRow) -> Result<Turn, StoreError> {
    let unanswered: Option<i64> = r.try_get("unanswered")?;
    Ok(Turn {
        seq: r.try_get("seq")?,
        at_secs: r.try_get("at_secs")?,
        speaker: r.try_get("speaker")?,
        text: r.try_get("text")?,
        language: r.try_get("language")?,
        intent: r.try_get("intent")?,
        confidence: r.try_get("confidence")?,
        sentiment: r.try_get("sentiment")?,
        unanswered: unanswered.map(|u| u != 0),
        stages: Stages {
            endpoint_ms: r.try_get("endpoint_ms")?,
            stt_ms: r.try_get("stt_ms")?,
            understand_ms: r.try_get("understand_ms")?,
            llm_first_token_ms: r.try_get("llm_first_token_ms")?,
            tts_first_audio_ms: r.try_get("tts_first_audio_ms")?,
            voice_to_voice_ms: r.try_get("voice_to_voice_ms")?,
        },
    })
}

fn event_of(r: &AnyRow) -> Result<Event, StoreError> {
    let detail: Option<String> = r.try_get("detail")?;
    Ok(Event { seq: r.try_get("seq")?, at_secs: r.try_get("at_secs")?, kind: r.try_get("kind")?, detail: detail.and_then(|d| serde_json::from_str(&d).ok()) })
}

const SUMMARY: &str = "SELECT id, sip_call_id, caller, started_at, ended_at, duration_secs, ended_by, recording, server, media FROM calls";

fn summary(r: &AnyRow) -> Result<CallSummary, StoreError> {
    let media: Option<String> = r.try_get("media")?;
    Ok(CallSummary {
        id: r.try_get("id")?,
        sip_call_id: r.try_get("sip_call_id")?,
        caller: r.try_get("caller")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
        duration_secs: r.try_get("duration_secs")?,
        ended_by: r.try_get("ended_by")?,
        recording: r.try_get("recording")?,
        server: r.try_get("server")?,
        media: media.and_then(|m| serde_json::from_str(&m).ok()),
    })
}

/// Who a call's `caller` is, for linking calls: the user part of a SIP URI (the number, as
/// `sip:+4930111222@pbx` and `sip:+4930111222@10.0.0.2` are one caller reaching the hotline by
/// two routes), else the text as stored.
pub fn caller_key(caller: &str) -> &str {
    let c = caller.trim();
    let rest = c.strip_prefix("sip:").or_else(|| c.strip_prefix("sips:")).or_else(|| c.strip_prefix("tel:"));
    match rest {
        Some(r) => r.split(['@', ';']).next().unwrap_or(r),
        None => c,
    }
}

/// Whether a call's `caller` names someone who can be recognised when they call again: not an
/// anonymous or withheld number, not a browser caller (who has no number).
pub fn identifies_caller(caller: &str) -> bool {
    let c = caller.trim().to_lowercase();
    !(c.is_empty() || c.contains("anonymous") || c == "unknown" || c.starts_with("browser"))
}

/// A URL with its password hidden, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl CallRecord {
    /// The call as one JSON document (the API's `/api/v1/calls/{id}` and the export's line): the
    /// call's fields, its turns and events, and for reading at a glance its transcript, the bot's
    /// actions and each answered turn's voice-to-voice time.
    pub fn document(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["transcript"] = self.turns.iter().map(|t| serde_json::json!({"who": t.speaker, "text": t.text, "at_secs": t.at_secs})).collect();
        v["actions"] = self.events.iter().filter(|e| e.kind == "action").filter_map(|e| e.detail.clone()).collect();
        v["voice_to_voice_ms"] = self.turns.iter().filter_map(|t| t.stages.voice_to_voice_ms).map(|ms| ms.round() as u64).collect();
        v
    }
}
