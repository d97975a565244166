//! The SCIM connector's HTTP side: one ureq agent, the bearer token, retries
//! within the run, and what each status means for an export.
//!
//! A throttled (429) or failing (5xx) server and a dropped connection are
//! tried again here, with a doubling wait that a `Retry-After` header
//! overrides, so one hiccup does not cost an object its export; what is
//! left after the last attempt is [`ExportError::Transient`]. Messages name
//! the method and URL, never the token.

use crate::connector::target::ExportError;
use std::time::Duration;

/// The longest wait a `Retry-After` header may ask for; a server asking
/// for more is treated as down for this run rather than stalling it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A SCIM answer's body can hold a page of 500 resources or a large group's
/// members; ureq's default cap of 10 MB is too tight for the latter.
const BODY_LIMIT: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// What a status means once retries are spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    /// 429 and 5xx: try again, later in this run or in the next.
    Retry,
    NotFound,
    Conflict,
    /// 401: the token, not the object, is at fault.
    Unauthorized,
    /// Every other status: the server refused this request as sent.
    Refused,
}

pub fn classify(status: u16) -> Class {
    match status {
        200..=299 => Class::Success,
        429 | 500..=599 => Class::Retry,
        404 => Class::NotFound,
        409 => Class::Conflict,
        401 => Class::Unauthorized,
        _ => Class::Refused,
    }
}

/// `Retry-After` in seconds, capped; the HTTP-date form is not honoured
/// (the doubling wait applies instead).
pub fn retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// A response whose status is not a retryable one, body read.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// `409 uniqueness: One or more of the attribute values are already in use`.
    pub fn describe(&self) -> String {
        describe(self.status, &self.body)
    }
}

/// The status with the SCIM error's `scimType` and `detail` when the body
/// is one, else the start of the body.
pub fn describe(status: u16, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ScimError {
        #[serde(rename = "scimType")]
        scim_type: Option<String>,
        detail: Option<String>,
    }
    let mut out = status.to_string();
    match serde_json::from_slice::<ScimError>(body) {
        Ok(e) => {
            if let Some(t) = e.scim_type {
                out.push(' ');
                out.push_str(&t);
            }
            if let Some(d) = e.detail {
                out.push_str(": ");
                out.push_str(&d);
            }
        }
        Err(_) if !body.is_empty() => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            out.push_str(": ");
            out.push_str(text.trim());
        }
        Err(_) => {}
    }
    out
}

pub struct Http {
    agent: ureq::Agent,
    /// `Bearer …`, set by `connect`.
    auth: Option<String>,
    attempts: u32,
    backoff: Duration,
}

impl Http {
    pub fn new(timeout_secs: u64, attempts: u32, backoff_ms: u64) -> Http {
        let timeout = (timeout_secs > 0).then(|| Duration::from_secs(timeout_secs));
        // Each phase is bounded, name resolution aside: ureq resolves on a
        // new thread per request when resolving has a deadline, a cost on
        // every call for the system resolver's own timeouts.
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(timeout)
            .timeout_send_request(timeout)
            .timeout_send_body(timeout)
            .timeout_recv_response(timeout)
            .timeout_recv_body(timeout)
            .user_agent(concat!("idsync/", env!("CARGO_PKG_VERSION")))
            .accept("application/scim+json, application/json")
            .build();
        Http {
            agent: ureq::Agent::new_with_config(config),
            auth: None,
            attempts: attempts.max(1),
            backoff: Duration::from_millis(backoff_ms),
        }
    }

    pub fn set_token(&mut self, token: &str) {
        self.auth = Some(format!("Bearer {token}"));
    }

    /// Sends one request, trying again on 429, 5xx and transport failures;
    /// any other status comes back as an [`Answer`] for the caller to read.
    pub fn call(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Answer, ExportError> {
        let Some(auth) = &self.auth else {
            return Err(ExportError::Transient(format!(
                "SCIM {} {url}: not connected",
                method.name()
            )));
        };
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            let (last, asked) = match self.once(method, url, query, body, auth) {
                Ok(answer) => return Ok(answer),
                Err(Failure::Fatal(msg)) => {
                    return Err(ExportError::Transient(format!(
                        "SCIM {} {url}: {msg}",
                        method.name()
                    )));
                }
                Err(Failure::Retry(msg, asked)) => (msg, asked),
            };
            if attempt >= self.attempts {
                return Err(ExportError::Transient(format!(
                    "SCIM {} {url}: {last} (after {attempt} attempts)",
                    method.name()
                )));
            }
            let pause = asked.unwrap_or(wait);
            tracing::debug!(
                method = method.name(),
                url,
                attempt,
                wait_ms = pause.as_millis() as u64,
                error = %last,
                "SCIM request will be tried again."
            );
            std::thread::sleep(pause);
            wait = (wait * 2).min(MAX_RETRY_AFTER);
            attempt += 1;
        }
    }

    fn once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
        auth: &str,
    ) -> Result<Answer, Failure> {
        let q = query.iter().copied();
        let sent = match method {
            Method::Get => self
                .agent
                .get(url)
                .header("Authorization", auth)
                .query_pairs(q)
                .call(),
            Method::Delete => self
                .agent
                .delete(url)
                .header("Authorization", auth)
                .query_pairs(q)
                .call(),
            Method::Post | Method::Patch => {
                let req = if method == Method::Post {
                    self.agent.post(url)
                } else {
                    self.agent.patch(url)
                };
                req.header("Authorization", auth)
                    .header("Content-Type", "application/scim+json")
                    .query_pairs(q)
                    .send(body.unwrap_or_default())
            }
        };
        let mut response = sent.map_err(transport)?;
        let status = response.status().as_u16();
        let asked = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(transport)?;
        if classify(status) == Class::Retry {
            return Err(Failure::Retry(describe(status, &body), asked));
        }
        Ok(Answer { status, body })
    }
}

enum Failure {
    /// Worth another attempt: the message, and the wait the server asked for.
    Retry(String, Option<Duration>),
    /// Another attempt cannot help within this run (a bad URL, an unknown host).
    Fatal(String),
}

fn transport(e: ureq::Error) -> Failure {
    use ureq::Error as E;
    match e {
        E::Io(_) | E::Timeout(_) | E::ConnectionFailed | E::Protocol(_) => {
            Failure::Retry(e.to_string(), None)
        }
        other => Failure::Fatal(other.to_string()),
    }
}

/// Percent-encodes an id for use as one path segment.
pub fn segment(id: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if id.bytes().all(plain) {
        return id.into();
    }
    let mut out = String::with_capacity(id.len() * 3);
    for b in id.bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}
