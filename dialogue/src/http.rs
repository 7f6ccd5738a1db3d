//! Outbound HTTP for the dialogue's servers (the LLM, a company's CRM webhook): reqwest with
//! rustls, so HTTPS works without OpenSSL, with an optional CA file for a company's own
//! certificate authority, and timeouts on every request. Errors name the server and the cause
//! (an unreachable address, a certificate the CA does not vouch for), so the caller can go on
//! without the server and the log says why.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("URL {0:?} is not http(s)://host[:port][/path]")]
    Url(String),
    #[error("CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: bad response: {message}")]
    Response { url: String, message: String },
}

/// A server's base URL and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    base: reqwest::Url,
    client: reqwest::blocking::Client,
}

impl Endpoint {
    /// `url` like `https://crm.example.com/ivr`; `ca_file` (PEM) is trusted besides the usual
    /// roots; `timeout` bounds each whole request (connect, send, the answer).
    pub fn new(url: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<Self, HttpError> {
        let base = reqwest::Url::parse(url).map_err(|_| HttpError::Url(url.into()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none_or(str::is_empty) {
            return Err(HttpError::Url(url.into()));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .use_rustls_tls();
        if let Some(path) = ca_file {
            let ca_err = |message: String| HttpError::CaFile { path: path.to_path_buf(), message };
            let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(chain(&e)))?;
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in the file".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| HttpError::Request { url: url.into(), message: chain(&e) })?;
        Ok(Self { base, client })
    }

    /// The base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The base URL's path ("/" when it has none).
    pub fn path(&self) -> &str {
        self.base.path()
    }

    /// Replaces the base path (e.g. to drop a trailing `/v1`).
    pub fn set_base_path(&mut self, path: &str) {
        self.base.set_path(path);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn failed(&self, path: &str, e: &reqwest::Error) -> HttpError {
        HttpError::Request { url: self.url(path), message: chain(e) }
    }

    /// POSTs JSON to `base + path`; returns the status code and the parsed JSON body (null if empty).
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<(u16, serde_json::Value), HttpError> {
        let response = self.client.post(self.url(path)).json(body).send().map_err(|e| self.failed(path, &e))?;
        let status = response.status().as_u16();
        let raw = response.bytes().map_err(|e| self.failed(path, &e))?;
        if raw.len() > 1 << 20 {
            return Err(HttpError::Response { url: self.url(path), message: format!("a {}-byte body is too large", raw.len()) });
        }
        let json = if raw.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&raw).map_err(|e| HttpError::Response { url: self.url(path), message: format!("not JSON: {e}") })?
        };
        Ok((status, json))
    }

    /// GET `base + path`; the status code.
    pub fn get_status(&self, path: &str) -> Result<u16, HttpError> {
        Ok(self.client.get(self.url(path)).send().map_err(|e| self.failed(path, &e))?.status().as_u16())
    }

    /// POSTs JSON and returns the answer to be read as it arrives (server-sent events); a status
    /// other than 200 is an error carrying the body.
    pub fn post_stream(&self, path: &str, body: &serde_json::Value) -> Result<reqwest::blocking::Response, HttpError> {
        let response = self
            .client
            .post(self.url(path))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body)
            .send()
            .map_err(|e| self.failed(path, &e))?;
        if response.status() != reqwest::StatusCode::OK {
            let status = response.status();
            let text = response.text().unwrap_or_default();
            return Err(HttpError::Response { url: self.url(path), message: format!("HTTP {status} {}", text.trim()) });
        }
        Ok(response)
    }
}

/// An error with its causes, which is where reqwest says what went wrong ("invalid peer
/// certificate: UnknownIssuer", "Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
