//! One HTTP call made the way every web source makes it: bounded retries within the
//! request's deadline (only what may heal by itself is retried), answers read no further
//! than the body limit, and errors that name the call and say whether asking again may help,
//! never quoting a token.

use std::time::{Duration, Instant};

use super::{read_limited, web_error_text};

/// Attempts at most for a call (throttling, 5xx, timeouts, connection failures).
pub const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why a call produced nothing. The kind says whether asking again may help.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The endpoint refused (a 4xx but 429, or an answer from the wrong kind of server):
    /// asking again will not help until someone changes the identity or the config.
    #[error("{0}")]
    Refused(String),
    /// What was asked for is not there (a secret store's 404): a refusal of its own kind,
    /// for the operator to create the thing or fix its name.
    #[error("{0}")]
    Absent(String),
    /// It failed, timed out or answered garbage; it may heal by itself (and was retried).
    #[error("{0}")]
    Failed(String),
}

/// How a call is made: `what` names it in errors; at most `attempts`, none started past
/// `deadline`; `transient` says which answers (status and body) are worth another attempt,
/// `absent` which say there is no such thing, and
/// `explain` reads why a non-2xx answer refused, in the words of the endpoint's kind
/// (never quoting a credential).
pub struct Call<'a> {
    pub what: &'a str,
    pub attempts: u32,
    pub deadline: Instant,
    pub transient: fn(u16, &[u8]) -> bool,
    /// Which answers say the thing asked for is not there ([`CallError::Absent`]).
    pub absent: fn(u16, &[u8]) -> bool,
    pub explain: fn(&[u8]) -> String,
}

impl Call<'_> {
    /// Sends what `request` builds (again for each attempt) and reads a 2xx answer with
    /// `read`. `check` may refuse an answer by its headers, saying why.
    pub async fn fetch<T>(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
        check: impl Fn(&reqwest::Response) -> Result<(), &'static str>,
        read: impl Fn(&[u8]) -> Result<T, Unreadable>,
    ) -> Result<T, CallError> {
        let mut backoff = INITIAL_BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self.once(&request, &check, &read).await;
            let retry = matches!(&result, Err(CallError::Failed(_)))
                && attempt < self.attempts
                && Instant::now() + backoff < self.deadline;
            if !retry {
                return result.map_err(|e| match e {
                    CallError::Failed(m) if attempt > 1 => {
                        CallError::Failed(format!("{m} (gave up after {attempt} attempts)"))
                    }
                    e => e,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
    }

    async fn once<T>(
        &self,
        request: &impl Fn() -> reqwest::RequestBuilder,
        check: &impl Fn(&reqwest::Response) -> Result<(), &'static str>,
        read: &impl Fn(&[u8]) -> Result<T, Unreadable>,
    ) -> Result<T, CallError> {
        let what = self.what;
        let response = request()
            .send()
            .await
            .map_err(|e| CallError::Failed(format!("{what}: {}", web_error_text(&e))))?;
        let status = response.status().as_u16();
        check(&response).map_err(|why| CallError::Refused(format!("{what}: {why}")))?;
        let body = read_limited(response)
            .await
            .map_err(|e| CallError::Failed(format!("{what}: {e}")))?;
        if !(200..300).contains(&status) {
            let text = format!("{what}: HTTP {status}: {}", (self.explain)(&body));
            return Err(if (self.transient)(status, &body) {
                CallError::Failed(text)
            } else if (self.absent)(status, &body) {
                CallError::Absent(text)
            } else {
                CallError::Refused(text)
            });
        }
        read(&body).map_err(|e| {
            CallError::Failed(match e {
                Unreadable::Not(expected) => {
                    format!("{what}: unreadable answer (HTTP {status}, not {expected})")
                }
                Unreadable::Empty(field) => format!("{what}: the answer has an empty {field}"),
            })
        })
    }
}

/// Why a 2xx answer gives nothing; the fields name what was expected, never a value.
#[derive(Debug)]
pub enum Unreadable {
    /// Not the expected shape: "an access token", "a refresh token".
    Not(&'static str),
    /// The token field is empty: "access token".
    Empty(&'static str),
}

/// The text of a plain answer (a subject token, an IMDS value): 2xx or an error naming
/// `what` and the status; read no further than the body limit. One attempt.
pub async fn fetch_text(request: reqwest::RequestBuilder, what: &str) -> Result<String, CallError> {
    let response = request
        .send()
        .await
        .map_err(|e| CallError::Failed(format!("{what}: {}", web_error_text(&e))))?;
    let status = response.status().as_u16();
    let body = read_limited(response)
        .await
        .map_err(|e| CallError::Failed(format!("{what}: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(CallError::Failed(format!("{what}: HTTP {status}")));
    }
    String::from_utf8(body).map_err(|_| CallError::Failed(format!("{what}: not text")))
}
