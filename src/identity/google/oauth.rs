//! Google's token answers on the shared token-endpoint calls (`crate::oauth`): OAuth 2.0's
//! `access_token`/`expires_in` (token endpoint, STS, metadata server) and IAM Credentials'
//! `accessToken`/`expireTime`, each made a registry credential.

use crate::env::Clock;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

use crate::credential::{Credential, Secret};
use crate::failure::SourceError;
use crate::http::Unreadable;

pub use crate::http::MAX_ATTEMPTS;

/// The username Google's registries take with an OAuth2 access token as the password.
pub const USERNAME: &str = "oauth2accesstoken";

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
    /// The token and how long it lives, from a 2xx body, at `now`.
    fn read(self, body: &[u8], now: SystemTime) -> Result<(String, Duration), Unreadable> {
        let not = Unreadable::Not("an access token");
        let (token, life) = match self {
            Answer::OAuth => {
                let a: OAuthAnswer = serde_json::from_slice(body).map_err(|_| not)?;
                // Google's tokens live an hour; an answer without `expires_in` is taken so.
                (
                    a.access_token,
                    Duration::from_secs(a.expires_in.unwrap_or(3600)),
                )
            }
            Answer::Iam => {
                let a: IamAnswer = serde_json::from_slice(body).map_err(|_| not)?;
                let at = humantime::parse_rfc3339(&a.expire_time)
                    .map_err(|_| Unreadable::Not("an access token"))?;
                let left = at.duration_since(now).unwrap_or_default();
                (a.access_token, left)
            }
        };
        if token.is_empty() {
            return Err(Unreadable::Empty("access token"));
        }
        Ok((token, life))
    }
}

/// The text of a plain answer (a subject token, an IMDS value); one attempt.
pub async fn fetch_text(
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<String, SourceError> {
    Ok(crate::http::fetch_text(request, what).await?)
}

/// Sends what `request` builds (again for each attempt) and turns the answer into a
/// credential. `what` names the call in errors; `check` may refuse an answer by its headers.
pub async fn fetch_token(
    what: &str,
    answer: Answer,
    attempts: u32,
    deadline: Instant,
    clock: Clock,
    request: impl Fn() -> reqwest::RequestBuilder,
    check: impl Fn(&reqwest::Response) -> Result<(), &'static str>,
) -> Result<Credential, SourceError> {
    let (token, life) = crate::oauth::call(what, attempts, deadline)
        .fetch(request, check, |body| answer.read(body, clock.now()))
        .await?;
    let expires_at = crate::units::after(clock.now(), life).ok_or_else(|| {
        SourceError::transient(format!("{what}: the token's lifetime is out of range"))
    })?;
    Ok(Credential {
        username: USERNAME.into(),
        password: Secret::new(token),
        expires_at: Some(expires_at),
        refresh_at: None,
    })
}
