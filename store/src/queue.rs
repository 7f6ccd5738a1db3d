//! The queue's durable side: its event log (in the manner of Asterisk's queue_log), the callers
//! waiting now (so a restarted server can log those its predecessor left as abandoned), and the
//! follow-ups agents work through (callbacks and voicemails).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One line of the queue's log.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct QueueLogLine {
    /// RFC 3339, UTC.
    pub at: String,
    pub server: String,
    pub call_id: Option<String>,
    pub agent: Option<String>,
    /// entered | offered | no_answer | declined | connect | complete | abandon | exit_with_key |
    /// exit_with_timeout | status
    pub event: String,
    pub detail: Option<serde_json::Value>,
}

/// A caller waiting in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub call_id: String,
    pub server: String,
    pub entered_at: String,
    pub priority: i64,
    pub entry_position: i64,
}

/// A callback asked for or a voicemail left.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct FollowUp {
    pub id: String,
    /// callback | voicemail
    pub kind: String,
    pub call_id: Option<String>,
    pub number: String,
    pub created_at: String,
    /// queue_key | wait_over | after_hours | no_agents
    pub reason: String,
    pub audio: Option<String>,
    pub transcript: Option<String>,
    pub summary: Option<String>,
    /// open | done
    pub status: String,
    pub done_by: Option<String>,
    pub done_at: Option<String>,
}

fn queue_line_of(r: &AnyRow) -> Result<QueueLogLine, StoreError> {
    let detail: Option<String> = r.try_get("detail")?;
    Ok(QueueLogLine {
        at: r.try_get("at")?,
        server: r.try_get("server")?,
        call_id: r.try_get("call_id")?,
        agent: r.try_get("agent")?,
        event: r.try_get("event")?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

const FOLLOW_UP: &str = "SELECT id, kind, call_id, number, created_at, reason, audio, transcript, summary, status, done_by, done_at FROM follow_ups";

fn follow_up_of(r: &AnyRow) -> Result<FollowUp, StoreError> {
    Ok(FollowUp {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        call_id: r.try_get("call_id")?,
        number: r.try_get("number")?,
        created_at: r.try_get("created_at")?,
        reason: r.try_get("reason")?,
        audio: r.try_get("audio")?,
        transcript: r.try_get("transcript")?,
        summary: r.try_get("summary")?,
        status: r.try_get("status")?,
        done_by: r.try_get("done_by")?,
        done_at: r.try_get("done_at")?,
    })
}

impl Store {
    pub async fn log_queue_event(&self, l: &QueueLogLine) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO queue_events (at, server, call_id, agent, event, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&l.at)
            .bind(&l.server)
            .bind(&l.call_id)
            .bind(&l.agent)
            .bind(&l.event)
            .bind(l.detail.as_ref().map(|d| d.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The queue's log, oldest first (of one call, or all).
    pub async fn queue_events(&self, call_id: Option<&str>) -> Result<Vec<QueueLogLine>, StoreError> {
        let select = "SELECT at, server, call_id, agent, event, detail FROM queue_events";
        let rows = match call_id {
            Some(c) => sqlx::query(&format!("{select} WHERE call_id = $1 ORDER BY at")).bind(c).fetch_all(&self.pool).await?,
            None => sqlx::query(&format!("{select} ORDER BY at")).fetch_all(&self.pool).await?,
        };
        rows.iter().map(queue_line_of).collect()
    }

    /// The log lines of the calls that started about in `[from, to)` (a second wider: see
    /// [`Store::calls_between`]), in time order: what a period's reports read.
    pub async fn queue_events_of_calls_between(&self, from: &str, to: &str) -> Result<Vec<QueueLogLine>, StoreError> {
        let (lo, hi) = crate::coarse_window(from, to);
        let rows = sqlx::query(&format!("SELECT at, server, call_id, agent, event, detail FROM queue_events WHERE call_id IN ({}) ORDER BY at", crate::CALLS_WITHIN))
            .bind(&lo)
            .bind(&hi)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(queue_line_of).collect()
    }

    pub async fn queue_enter(&self, e: &QueueEntry) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO queue_entries (call_id, server, entered_at, priority, entry_position) VALUES ($1, $2, $3, $4, $5)")
            .bind(&e.call_id)
            .bind(&e.server)
            .bind(&e.entered_at)
            .bind(e.priority)
            .bind(e.entry_position)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn queue_leave(&self, call_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM queue_entries WHERE call_id = $1").bind(call_id).execute(&self.pool).await?;
        Ok(())
    }

    /// The callers `server` had queued when it died: each is logged as abandoned (at `now`, with
    /// its wait) and leaves the queue. Returns them. Other servers' callers are left alone.
    pub async fn abandon_orphans(&self, server: &str, now: &str) -> Result<Vec<QueueEntry>, StoreError> {
        let rows = sqlx::query("SELECT call_id, server, entered_at, priority, entry_position FROM queue_entries WHERE server = $1 ORDER BY entered_at")
            .bind(server)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let e = QueueEntry {
                call_id: r.try_get("call_id")?,
                server: r.try_get("server")?,
                entered_at: r.try_get("entered_at")?,
                priority: r.try_get("priority")?,
                entry_position: r.try_get("entry_position")?,
            };
            let wait = match (e.entered_at.parse::<jiff::Timestamp>(), now.parse::<jiff::Timestamp>()) {
                (Ok(a), Ok(b)) => (b.as_millisecond() - a.as_millisecond()).max(0) as f64 / 1000.0,
                _ => 0.0,
            };
            let detail = serde_json::json!({"position": i + 1, "entry_position": e.entry_position, "wait_secs": wait, "server_stopped": true});
            let line = QueueLogLine { at: now.into(), server: server.into(), call_id: Some(e.call_id.clone()), agent: None, event: "abandon".into(), detail: Some(detail) };
            self.log_queue_event(&line).await?;
            self.queue_leave(&e.call_id).await?;
            out.push(e);
        }
        Ok(out)
    }

    pub async fn add_follow_up(&self, f: &FollowUp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO follow_ups (id, kind, call_id, number, created_at, reason, audio, transcript, summary, status, done_by, done_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&f.id)
        .bind(&f.kind)
        .bind(&f.call_id)
        .bind(&f.number)
        .bind(&f.created_at)
        .bind(&f.reason)
        .bind(&f.audio)
        .bind(f.transcript.as_deref().map(|t| ivr_privacy::mask(t).into_owned()))
        .bind(f.summary.as_deref().map(|t| ivr_privacy::mask(t).into_owned()))
        .bind(&f.status)
        .bind(&f.done_by)
        .bind(&f.done_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A voicemail's transcript and summary, once made (masked, as a call's turns are).
    pub async fn set_follow_up_text(&self, id: &str, transcript: &str, summary: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE follow_ups SET transcript = $1, summary = $2 WHERE id = $3")
            .bind(ivr_privacy::mask(transcript).as_ref())
            .bind(ivr_privacy::mask(summary).as_ref())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Voicemails not yet transcribed (the server stopped before it was done), oldest first.
    pub async fn untranscribed_voicemails(&self) -> Result<Vec<FollowUp>, StoreError> {
        let rows = sqlx::query(&format!("{FOLLOW_UP} WHERE kind = 'voicemail' AND transcript IS NULL ORDER BY created_at")).fetch_all(&self.pool).await?;
        rows.iter().map(follow_up_of).collect()
    }

    /// Open ones first, each group oldest first.
    pub async fn follow_ups(&self) -> Result<Vec<FollowUp>, StoreError> {
        let rows = sqlx::query(&format!("{FOLLOW_UP} ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, created_at")).fetch_all(&self.pool).await?;
        rows.iter().map(follow_up_of).collect()
    }

    pub async fn follow_up(&self, id: &str) -> Result<Option<FollowUp>, StoreError> {
        sqlx::query(&format!("{FOLLOW_UP} WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?.as_ref().map(follow_up_of).transpose()
    }

    /// An agent marks a follow-up done; `false` if there is none open with that id.
    pub async fn finish_follow_up(&self, id: &str, by: &str, at: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE follow_ups SET status = 'done', done_by = $1, done_at = $2 WHERE id = $3 AND status = 'open'")
            .bind(by)
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
