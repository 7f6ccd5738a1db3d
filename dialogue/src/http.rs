//! A minimal HTTP/1.1 client for JSON requests on trusted networks (the LLM worker on loopback, a
//! company's CRM webhook on its LAN). Plain HTTP only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("URL {0:?} is not http://host:port[/path]")]
    Url(String),
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad response: {0}")]
    Response(String),
}

/// `http://host:port/base` split into the address and the base path (without a trailing slash).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub base: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let rest = url.strip_prefix("http://").ok_or_else(|| HttpError::Url(url.into()))?;
        let (host, base) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, String::new()));
        if host.is_empty() {
            return Err(HttpError::Url(url.into()));
        }
        Ok(Self { host: host.to_string(), base: base.trim_end_matches('/').to_string() })
    }

    pub fn connect(&self, timeout: Duration) -> Result<TcpStream, HttpError> {
        let s = TcpStream::connect(&self.host).map_err(|source| HttpError::Connect { addr: self.host.clone(), source })?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        Ok(s)
    }

    /// POSTs JSON to `base + path`; returns the status code and the parsed JSON body (null if empty).
    pub fn post_json(&self, path: &str, body: &serde_json::Value, timeout: Duration) -> Result<(u16, serde_json::Value), HttpError> {
        let body = body.to_string();
        let mut s = self.connect(timeout)?;
        write!(
            s,
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.base, self.host, body.len()
        )?;
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status)?;
        let code: u16 = status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| HttpError::Response(status.trim().into()))?;
        let mut length = None;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                }
            }
        }
        let mut raw = Vec::new();
        match length {
            Some(n) if n <= 1 << 20 => {
                raw.resize(n, 0);
                r.read_exact(&mut raw)?;
            }
            Some(n) => return Err(HttpError::Response(format!("a {n}-byte body is too large"))),
            None => {
                r.take(1 << 20).read_to_end(&mut raw)?;
            }
        }
        let json = if raw.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&raw).map_err(|e| HttpError::Response(format!("not JSON: {e}")))?
        };
        Ok((code, json))
    }
}
