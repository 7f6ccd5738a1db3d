//! Human agents: accounts (argon2id password hashes), roles, skills, the SIP extension their phone
//! registers as (with the digest HA1s it authenticates with) and the status they set.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// The digest credentials of an agent's phone for one realm (RFC 8760: MD5 for older phones,
/// SHA-256 for newer). Made from the password by the SIP layer; the store never sees it in clear.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhoneSecret {
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
}

/// An agent as stored (no password).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agent {
    pub name: String,
    pub display_name: String,
    /// agent | supervisor
    pub role: String,
    pub skills: Vec<String>,
    pub extension: Option<String>,
    #[serde(skip)]
    pub phone: Option<PhoneSecret>,
    /// signed_out | available | on_break
    pub status: String,
    pub created_at: String,
}

/// A new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub name: String,
    pub display_name: String,
    pub role: String,
    pub skills: Vec<String>,
    pub extension: Option<String>,
    pub password: String,
    pub phone: Option<PhoneSecret>,
    pub created_at: String,
}

/// Why an agent account cannot be made as asked.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AgentError {
    #[error("agent name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("agent {0:?} already exists")]
    Exists(String),
    #[error("extension {0:?} already belongs to another agent")]
    ExtensionTaken(String),
    #[error("the password must have at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("role {0:?}: agent or supervisor")]
    BadRole(String),
}

pub const MIN_PASSWORD: usize = 8;

/// Names double as SIP users and URL segments: keep them plain.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Skills as stored: trimmed, lower case, no duplicates, sorted.
pub fn normal_skills(skills: &[String]) -> Vec<String> {
    let mut s: Vec<String> = skills.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect();
    s.sort();
    s.dedup();
    s
}

/// An argon2id hash (PHC string) of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Crypto(format!("no random salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Crypto(e.to_string()))?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| StoreError::Crypto(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`.
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of no one's password: verifying against it when the name is unknown costs the same as
/// for a real agent, so the time taken does not tell which names exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

const AGENT: &str = "SELECT name, display_name, role, skills, extension, sip_realm, sip_ha1_md5, sip_ha1_sha256, status, created_at FROM agents";

fn agent_of(r: &AnyRow) -> Result<Agent, StoreError> {
    let skills: String = r.try_get("skills")?;
    let realm: Option<String> = r.try_get("sip_realm")?;
    let md5: Option<String> = r.try_get("sip_ha1_md5")?;
    let sha: Option<String> = r.try_get("sip_ha1_sha256")?;
    let phone = match (realm, md5, sha) {
        (Some(realm), Some(ha1_md5), Some(ha1_sha256)) => Some(PhoneSecret { realm, ha1_md5, ha1_sha256 }),
        _ => None,
    };
    Ok(Agent {
        name: r.try_get("name")?,
        display_name: r.try_get("display_name")?,
        role: r.try_get("role")?,
        skills: skills.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        extension: r.try_get("extension")?,
        phone,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Adds an agent (signed out). The password is hashed here.
    pub async fn add_agent(&self, a: &NewAgent) -> Result<Result<(), AgentError>, StoreError> {
        if !valid_name(&a.name) {
            return Ok(Err(AgentError::BadName(a.name.clone())));
        }
        if let Some(ext) = a.extension.as_deref().filter(|e| !valid_name(e)) {
            return Ok(Err(AgentError::BadName(ext.to_string())));
        }
        if !matches!(a.role.as_str(), "agent" | "supervisor") {
            return Ok(Err(AgentError::BadRole(a.role.clone())));
        }
        if a.password.chars().count() < MIN_PASSWORD {
            return Ok(Err(AgentError::ShortPassword));
        }
        if self.agent(&a.name).await?.is_some() {
            return Ok(Err(AgentError::Exists(a.name.clone())));
        }
        if let Some(ext) = &a.extension {
            if self.agent_by_extension(ext).await?.is_some() {
                return Ok(Err(AgentError::ExtensionTaken(ext.clone())));
            }
        }
        let hash = hash_password(&a.password)?;
        sqlx::query(
            "INSERT INTO agents (name, display_name, role, password_hash, skills, extension, sip_realm, sip_ha1_md5, sip_ha1_sha256, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'signed_out', $10)",
        )
        .bind(&a.name)
        .bind(&a.display_name)
        .bind(&a.role)
        .bind(hash)
        .bind(normal_skills(&a.skills).join(","))
        .bind(&a.extension)
        .bind(a.phone.as_ref().map(|p| p.realm.clone()))
        .bind(a.phone.as_ref().map(|p| p.ha1_md5.clone()))
        .bind(a.phone.as_ref().map(|p| p.ha1_sha256.clone()))
        .bind(&a.created_at)
        .execute(&self.pool)
        .await?;
        Ok(Ok(()))
    }

    pub async fn agents(&self) -> Result<Vec<Agent>, StoreError> {
        sqlx::query(&format!("{AGENT} ORDER BY name")).fetch_all(&self.pool).await?.iter().map(agent_of).collect()
    }

    pub async fn agent(&self, name: &str) -> Result<Option<Agent>, StoreError> {
        sqlx::query(&format!("{AGENT} WHERE name = $1")).bind(name).fetch_optional(&self.pool).await?.as_ref().map(agent_of).transpose()
    }

    pub async fn agent_by_extension(&self, extension: &str) -> Result<Option<Agent>, StoreError> {
        sqlx::query(&format!("{AGENT} WHERE extension = $1")).bind(extension).fetch_optional(&self.pool).await?.as_ref().map(agent_of).transpose()
    }

    /// Sets a new password (and the phone's digest secret made from it); `false` for an unknown
    /// agent.
    pub async fn set_password(&self, name: &str, password: &str, phone: Option<&PhoneSecret>) -> Result<Result<bool, AgentError>, StoreError> {
        if password.chars().count() < MIN_PASSWORD {
            return Ok(Err(AgentError::ShortPassword));
        }
        let hash = hash_password(password)?;
        let r = sqlx::query("UPDATE agents SET password_hash = $1, sip_realm = $2, sip_ha1_md5 = $3, sip_ha1_sha256 = $4 WHERE name = $5")
            .bind(hash)
            .bind(phone.map(|p| p.realm.clone()))
            .bind(phone.map(|p| p.ha1_md5.clone()))
            .bind(phone.map(|p| p.ha1_sha256.clone()))
            .bind(name)
            .execute(&self.pool)
            .await?;
        // Whoever was signed in with the old password is signed out.
        self.end_sessions_of(name).await?;
        Ok(Ok(r.rows_affected() == 1))
    }

    pub async fn set_agent_status(&self, name: &str, status: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE agents SET status = $1 WHERE name = $2").bind(status).bind(name).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn remove_agent(&self, name: &str) -> Result<bool, StoreError> {
        self.end_sessions_of(name).await?;
        let r = sqlx::query("DELETE FROM agents WHERE name = $1").bind(name).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    /// The agent if `password` is theirs. Slow on purpose (argon2): call it off the async
    /// threads' hot path. An unknown name takes as long as a wrong password.
    pub async fn check_password(&self, name: &str, password: &str) -> Result<Option<Agent>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM agents WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        let hash: Option<String> = row.map(|r| r.try_get("password_hash")).transpose()?;
        let password = password.to_string();
        let ok = {
            let hash = hash.clone();
            tokio::task::spawn_blocking(move || password_matches(hash.as_deref().unwrap_or(decoy_hash()), &password))
                .await
                .unwrap_or(false)
        };
        if ok && hash.is_some() {
            self.agent(name).await
        } else {
            Ok(None)
        }
    }
}
