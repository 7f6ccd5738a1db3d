//! The audit log: what people did with calls and records (sign-in, a failed sign-in, accepting a
//! call, reading a call, listening to a recording, exporting, purging), for a regulated company's
//! auditors. Lines are only ever added.

use serde::Serialize;
use sqlx::Row;

use crate::{Store, StoreError};

/// One thing someone did.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditLine {
    /// RFC 3339, UTC.
    pub at: String,
    /// The agent or supervisor; `system` for the purge job, `cli` for a command at the server.
    pub actor: String,
    /// sign_in | sign_in_failed | sign_out | accept | decline | read_call | listen | export | purge
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl AuditLine {
    /// A line for something `actor` does now.
    pub fn now(actor: &str, action: &str, target: Option<&str>, detail: Option<serde_json::Value>) -> Self {
        Self { at: jiff::Timestamp::now().to_string(), actor: actor.to_string(), action: action.to_string(), target: target.map(str::to_string), detail }
    }
}

impl Store {
    pub async fn audit(&self, line: &AuditLine) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(&line.at)
            .bind(&line.actor)
            .bind(&line.action)
            .bind(&line.target)
            .bind(line.detail.as_ref().map(|d| d.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The latest `limit` lines, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditLine>, StoreError> {
        let rows = sqlx::query("SELECT at, actor, action, target, detail FROM audit_log ORDER BY at DESC LIMIT $1").bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let detail: Option<String> = r.try_get("detail")?;
                Ok(AuditLine {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                })
            })
            .collect()
    }
}

/// What purged words are replaced with.
pub const PURGED: &str = "[purged]";

impl Store {
    /// Replaces the words of calls that started before `before` (RFC 3339): their turns' text,
    /// the bot's action details (the hand-off summary quotes the caller) and voicemails'
    /// transcripts and summaries. Timings, intents, outcomes and queue lines stay, so the reports
    /// still count those calls.
    pub async fn purge_transcripts(&self, before: &str) -> Result<u64, StoreError> {
        let old = "SELECT id FROM calls WHERE started_at < $1";
        let calls = sqlx::query(&format!("SELECT COUNT(DISTINCT call_id) AS n FROM turns WHERE text <> $2 AND call_id IN ({old})"))
            .bind(before)
            .bind(PURGED)
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>("n")?;
        sqlx::query(&format!("UPDATE turns SET text = $2 WHERE text <> $2 AND call_id IN ({old})")).bind(before).bind(PURGED).execute(&self.pool).await?;
        sqlx::query(&format!("UPDATE events SET detail = NULL WHERE kind = 'action' AND call_id IN ({old})")).bind(before).execute(&self.pool).await?;
        sqlx::query("UPDATE follow_ups SET transcript = $2, summary = $2 WHERE created_at < $1 AND transcript IS NOT NULL AND transcript <> $2")
            .bind(before)
            .bind(PURGED)
            .execute(&self.pool)
            .await?;
        Ok(calls as u64)
    }

    /// Forgets the recordings of calls that started, and voicemails left, before `before`;
    /// returns their paths for the caller to delete.
    pub async fn purge_audio(&self, before: &str) -> Result<Vec<String>, StoreError> {
        let mut paths: Vec<String> = Vec::new();
        for r in sqlx::query("SELECT recording FROM calls WHERE started_at < $1 AND recording IS NOT NULL").bind(before).fetch_all(&self.pool).await? {
            paths.push(r.try_get("recording")?);
        }
        for r in sqlx::query("SELECT audio FROM follow_ups WHERE created_at < $1 AND audio IS NOT NULL").bind(before).fetch_all(&self.pool).await? {
            paths.push(r.try_get("audio")?);
        }
        sqlx::query("UPDATE calls SET recording = NULL WHERE started_at < $1 AND recording IS NOT NULL").bind(before).execute(&self.pool).await?;
        sqlx::query("UPDATE follow_ups SET audio = NULL WHERE created_at < $1 AND audio IS NOT NULL").bind(before).execute(&self.pool).await?;
        Ok(paths)
    }
}
