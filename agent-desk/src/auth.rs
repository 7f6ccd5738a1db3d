//! Who is asking: the session cookie (HttpOnly, SameSite=Strict, a random token of which only the
//! hash is stored), the CSRF token every state change must echo in `X-CSRF-Token`, and the limit on
//! failed sign-ins (five a minute per name; the sixth try is refused with 429 whatever the
//! password, so guessing is slow and the agent sees that someone tried).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ivr_web::axum::extract::FromRequestParts;
use ivr_web::axum::http::request::Parts;
use ivr_web::axum::http::{HeaderMap, StatusCode};
use ivr_web::ApiError;
use sha2::{Digest, Sha256};

use crate::Console;

pub const COOKIE: &str = "ivr_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Failed sign-ins per name within [`WINDOW`] before further tries are refused.
pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(60);

/// Random bytes as lower-case hex (tokens).
pub fn random_hex(n: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| ApiError::internal(format!("no randomness: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal without telling, by its timing, how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed sign-ins per name, in a sliding window.
#[derive(Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    /// `Some(wait)` if `name` has failed too often lately.
    pub fn blocked(&self, name: &str, now: Instant) -> Option<Duration> {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let list = f.entry(name.to_lowercase()).or_default();
        while list.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            list.pop_front();
        }
        (list.len() >= MAX_FAILURES).then(|| list.front().map(|t| WINDOW.saturating_sub(now.duration_since(*t))).unwrap_or(WINDOW))
    }

    pub fn failed(&self, name: &str, now: Instant) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded memory: forget names with nothing recent when the map grows.
        if f.len() > 10_000 {
            f.retain(|_, l| l.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        f.entry(name.to_lowercase()).or_default().push_back(now);
    }

    pub fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&name.to_lowercase());
    }
}

/// A signed-in agent (any request of the console's API but sign-in).
#[derive(Debug, Clone)]
pub struct Signed {
    pub agent: String,
    pub csrf: String,
    pub token_hash: String,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

/// The agent whose session cookie `headers` carry (401 when none, unknown or expired). Shared by
/// every page behind the console's sign-in (the console itself and the supervisors' dashboard).
pub async fn signed_in(store: &ivr_store::Store, headers: &HeaderMap) -> Result<Signed, ApiError> {
    let token = headers
        .get_all(ivr_web::axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_string()).filter_map(Result::ok).collect::<Vec<_>>())
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
        .ok_or_else(|| unauthorized("not signed in"))?;
    let token_hash = hash_token(&token);
    let session = store.session(&token_hash).await.map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(|| unauthorized("not signed in (unknown or ended session)"))?;
    let expired = session.expires_at.parse::<jiff::Timestamp>().map_or(true, |t| t <= jiff::Timestamp::now());
    if expired {
        let _ = store.end_session(&token_hash).await;
        return Err(unauthorized("the session has expired: sign in again"));
    }
    Ok(Signed { agent: session.agent, csrf: session.csrf, token_hash })
}

/// A signed-in supervisor (403 for an agent): who may see every call, the figures and the audit log.
pub async fn supervisor(store: &ivr_store::Store, headers: &HeaderMap) -> Result<Signed, ApiError> {
    let signed = signed_in(store, headers).await?;
    let me = store.agent(&signed.agent).await.map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(|| unauthorized("no such agent any more"))?;
    if me.role != "supervisor" {
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("{} is not a supervisor", signed.agent)));
    }
    Ok(signed)
}

impl FromRequestParts<Arc<Console>> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Self::Rejection> {
        signed_in(&console.store, &parts.headers).await
    }
}

/// A signed-in agent changing something: the request must carry the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Changing(pub Signed);

impl FromRequestParts<Arc<Console>> for Changing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Self::Rejection> {
        let signed = Signed::from_request_parts(parts, console).await?;
        let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !same(sent, &signed.csrf) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "missing or wrong X-CSRF-Token"));
        }
        Ok(Changing(signed))
    }
}

/// The Set-Cookie value of a new session (or of its end, with `max_age` zero).
pub fn session_cookie(token: &str, max_age: Duration) -> String {
    cookie::Cookie::build((COOKIE, token.to_string()))
        // The whole site: the console at /agent and the supervisors' dashboard at /dashboard share
        // the sign-in.
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_in_a_minute_is_blocked_then_the_window_moves_on() {
        let l = Limiter::default();
        let t = Instant::now();
        for i in 0..5 {
            assert!(l.blocked("Ann", t + Duration::from_secs(i)).is_none());
            l.failed("ann", t + Duration::from_secs(i));
        }
        assert_eq!(l.blocked("ANN", t + Duration::from_secs(10)), Some(Duration::from_secs(50)));
        assert!(l.blocked("bob", t + Duration::from_secs(10)).is_none(), "per name");
        assert!(l.blocked("ann", t + Duration::from_secs(61)).is_none(), "the oldest failure left the window");
        l.succeeded("ann");
        assert!(l.blocked("ann", t + Duration::from_secs(11)).is_none());
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let c = session_cookie("abc", Duration::from_secs(60));
        assert!(c.contains("ivr_session=abc") && c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/;"), "{c}");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
