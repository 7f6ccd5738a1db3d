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
