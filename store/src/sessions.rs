//! The agents' console sessions: a hash of the cookie's token, the agent, the CSRF token, expiry.

use sqlx::Row;

use crate::{Store, StoreError};

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub agent: String,
    pub csrf: String,
    /// RFC 3339.
    pub expires_at: String,
}

impl Store {
    pub async fn create_session(&self, token_hash: &str, s: &Session, created_at: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO agent_sessions (token_hash, agent, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(&s.agent)
            .bind(&s.csrf)
            .bind(created_at)
            .bind(&s.expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query("SELECT agent, csrf, expires_at FROM agent_sessions WHERE token_hash = $1").bind(token_hash).fetch_optional(&self.pool).await?;
        row.map(|r| Ok(Session { agent: r.try_get("agent")?, csrf: r.try_get("csrf")?, expires_at: r.try_get("expires_at")? })).transpose()
    }

    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agent_sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Ends every session of an agent (a removed agent, a changed password).
    pub async fn end_sessions_of(&self, agent: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM agent_sessions WHERE agent = $1").bind(agent).execute(&self.pool).await?;
        Ok(())
    }
}
