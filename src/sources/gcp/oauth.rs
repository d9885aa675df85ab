//! Calls to Google's OAuth-style endpoints and their answers: bounded retries within the
//! request's deadline, 4xx never retried, answers read no further than the body limit, and
//! errors that name the endpoint and never quote a token.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use crate::credential::{Credential, Secret};
use crate::http::{read_limited, web_error_text};
use crate::sources::SourceError;

/// The username Google's registries take with an OAuth2 access token as the password.
pub const USERNAME: &str = "oauth2accesstoken";
/// Attempts at most for a call (throttling, 5xx, timeouts, connection failures).
pub const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The shape of a token answer.
#[derive(Clone, Copy)]
pub enum Answer {
    /// OAuth 2.0 (token endpoint, STS, metadata server): `access_token`, `expires_in`.
    OAuth,
    /// IAM Credentials `generateAccessToken`: `accessToken`, `expireTime` (RFC 3339).
    Iam,
}

#[derive(Deserialize)]
struct OAuthAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IamAnswer {
    access_token: String,
    expire_time: String,
}

impl Answer {
    /// The token and how long it lives, from a 2xx body.
    fn read(self, body: &[u8]) -> Option<(String, Duration)> {
        match self {
            Answer::OAuth => {
                let a: OAuthAnswer = serde_json::from_slice(body).ok()?;
                // Google's tokens live an hour; an answer without `expires_in` is taken so.
                Some((
                    a.access_token,
                    Duration::from_secs(a.expires_in.unwrap_or(3600)),
                ))
            }
            Answer::Iam => {
                let a: IamAnswer = serde_json::from_slice(body).ok()?;
                let at = humantime::parse_rfc3339(&a.expire_time).ok()?;
                let left = at.duration_since(SystemTime::now()).unwrap_or_default();
                Some((a.access_token, left))
            }
        }
    }
}

/// Why a non-2xx answer refused: OAuth's `error` and `error_description` (RFC 6749 section
/// 5.2), or Google APIs' `error.message` and `error.status`.
fn refusal(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = match &v["error"] {
        serde_json::Value::String(e) => [
            Some(e.clone()),
            v["error_description"].as_str().map(str::to_string),
        ]
        .into_iter()
        .flatten()
        .collect(),
        serde_json::Value::Object(o) => [o.get("status"), o.get("message")]
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    (!parts.is_empty()).then(|| parts.join(": "))
}

/// The text of a plain answer (a subject token, an IMDS value): 2xx or an error naming
/// `what` and the status; read no further than the body limit. One attempt.
pub async fn fetch_text(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<String, SourceError> {
    let response = request
        .send()
        .await
        .map_err(|e| SourceError::Transient(format!("{what}: {}", web_error_text(&e))))?;
    let status = response.status().as_u16();
    let body = read_limited(response)
        .await
        .map_err(|e| SourceError::Transient(format!("{what}: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(SourceError::Transient(format!("{what}: HTTP {status}")));
    }
    String::from_utf8(body).map_err(|_| SourceError::Transient(format!("{what}: not text")))
}

/// Sends what `request` builds (again for each attempt) and turns the answer into a
/// credential. `what` names the call in errors; `check` may refuse an answer by its headers.
pub async fn fetch_token(
    what: &str,
    answer: Answer,
    attempts: u32,
    deadline: Instant,
    request: impl Fn() -> reqwest::RequestBuilder,
    check: impl Fn(&reqwest::Response) -> Result<(), String>,
) -> Result<Credential, SourceError> {
    let mut backoff = INITIAL_BACKOFF;
    let mut attempt = 1;
    loop {
        let result = once(what, answer, &request, &check).await;
        let retry = matches!(&result, Err(SourceError::Transient(_)))
            && attempt < attempts
            && Instant::now() + backoff < deadline;
        if !retry {
            return result.map_err(|e| match e {
                SourceError::Transient(m) if attempt > 1 => {
                    SourceError::Transient(format!("{m} (gave up after {attempt} attempts)"))
                }
                e => e,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

async fn once(
    what: &str,
    answer: Answer,
    request: &impl Fn() -> reqwest::RequestBuilder,
    check: &impl Fn(&reqwest::Response) -> Result<(), String>,
) -> Result<Credential, SourceError> {
    let response = request()
        .send()
        .await
        .map_err(|e| SourceError::Transient(format!("{what}: {}", web_error_text(&e))))?;
    let status = response.status().as_u16();
    check(&response).map_err(|why| SourceError::Denied(format!("{what}: {why}")))?;
    let body = read_limited(response)
        .await
        .map_err(|e| SourceError::Transient(format!("{what}: {e}")))?;
    if !(200..300).contains(&status) {
        let reason = refusal(&body).unwrap_or_else(|| "not an OAuth error answer".into());
        let text = format!("{what}: HTTP {status}: {reason}");
        return Err(if status >= 500 || status == 429 {
            SourceError::Transient(text)
        } else {
            SourceError::Denied(text)
        });
    }
    let (token, life) = answer.read(&body).ok_or_else(|| {
        SourceError::Transient(format!(
            "{what}: unreadable answer (HTTP {status}, not an access token)"
        ))
    })?;
    if token.is_empty() {
        return Err(SourceError::Transient(format!(
            "{what}: the answer has an empty access token"
        )));
    }
    Ok(Credential {
        username: USERNAME.into(),
        password: Secret::new(token),
        expires_at: Some(SystemTime::now() + life),
    })
}
