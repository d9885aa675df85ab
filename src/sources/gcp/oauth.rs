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

/// An access token answer (token endpoint, metadata server).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

/// An OAuth error answer (RFC 6749 section 5.2), as Google sends it.
#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

/// Sends what `request` builds (again for each attempt) and turns the answer into a
/// credential. `what` names the call in errors; `check` may refuse an answer by its headers.
pub async fn fetch_token(
    what: &str,
    attempts: u32,
    deadline: Instant,
    request: impl Fn() -> reqwest::RequestBuilder,
    check: impl Fn(&reqwest::Response) -> Result<(), String>,
) -> Result<Credential, SourceError> {
    let mut backoff = INITIAL_BACKOFF;
    let mut attempt = 1;
    loop {
        let result = once(what, &request, &check).await;
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
        let reason = serde_json::from_slice::<ErrorAnswer>(&body)
            .ok()
            .and_then(|e| {
                let text = [e.error, e.error_description]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                (!text.is_empty()).then_some(text)
            })
            .unwrap_or_else(|| "not an OAuth error answer".into());
        let text = format!("{what}: HTTP {status}: {reason}");
        return Err(if status >= 500 || status == 429 {
            SourceError::Transient(text)
        } else {
            SourceError::Denied(text)
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
        SourceError::Transient(format!(
            "{what}: unreadable answer (HTTP {status}, not an access token)"
        ))
    })?;
    if answer.access_token.is_empty() {
        return Err(SourceError::Transient(format!(
            "{what}: the answer has an empty access token"
        )));
    }
    // Google's tokens live an hour; an answer without `expires_in` is taken as that.
    let life = Duration::from_secs(answer.expires_in.unwrap_or(3600));
    Ok(Credential {
        username: USERNAME.into(),
        password: Secret::new(answer.access_token),
        expires_at: Some(SystemTime::now() + life),
    })
}
