//! Calls to OAuth-style token endpoints, shared by the sources that mint through them
//! (Google's token endpoint, STS and metadata server; Entra ID, Azure IMDS and ACR's
//! exchange): bounded retries within the request's deadline, client errors never retried,
//! answers read no further than the body limit, errors that name the call and never quote
//! a token; the rule that tokens travel only over `https://`; and JWTs (`jwt`).

pub mod jwt;

use std::time::{Duration, Instant};

use crate::http::{read_limited, web_error_text};

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
    /// It failed, timed out or answered garbage; it may heal by itself (and was retried).
    #[error("{0}")]
    Failed(String),
}

/// How a call is made: `what` names it in errors; at most `attempts`, none started past
/// `deadline`; `transient` says which HTTP statuses are worth another attempt.
pub struct Call<'a> {
    pub what: &'a str,
    pub attempts: u32,
    pub deadline: Instant,
    pub transient: fn(u16) -> bool,
}

impl<'a> Call<'a> {
    /// A call retried on 429 and 5xx, as OAuth endpoints expect.
    pub fn new(what: &'a str, attempts: u32, deadline: Instant) -> Self {
        Call {
            what,
            attempts,
            deadline,
            transient: |status| status == 429 || status >= 500,
        }
    }

    /// Sends what `request` builds (again for each attempt) and reads a 2xx answer with
    /// `read`. `check` may refuse an answer by its headers.
    pub async fn fetch<T>(
        &self,
        request: impl Fn() -> reqwest::RequestBuilder,
        check: impl Fn(&reqwest::Response) -> Result<(), String>,
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
        check: &impl Fn(&reqwest::Response) -> Result<(), String>,
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
            let reason = refusal(&body).unwrap_or_else(|| "not an OAuth error answer".into());
            let text = format!("{what}: HTTP {status}: {reason}");
            return Err(if (self.transient)(status) {
                CallError::Failed(text)
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

/// The `access_token` of an OAuth 2.0 token answer (RFC 6749 section 5.1), which must not be
/// empty; its other fields are the caller's business.
pub fn access_token(body: &[u8]) -> Result<String, Unreadable> {
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
    }
    let a: Answer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("an access token"))?;
    if a.access_token.is_empty() {
        return Err(Unreadable::Empty("access token"));
    }
    Ok(a.access_token)
}

/// Why a 2xx answer gives no token; the fields name what was expected, never a value.
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

/// Why a non-2xx answer refused, in the shapes token endpoints use: OAuth's `error` and
/// `error_description` (RFC 6749 section 5.2, Entra ID, Azure IMDS), Google APIs'
/// `error.status` and `error.message`, and the registry API's `errors[].code` and
/// `.message` (ACR's exchange). Token endpoints do not echo credentials in these fields.
fn refusal(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |x: Option<&serde_json::Value>| x.and_then(|x| x.as_str()).map(str::to_string);
    let parts: Vec<String> = match (&v["error"], &v["errors"]) {
        (serde_json::Value::String(e), _) => [Some(e.clone()), text(v.get("error_description"))]
            .into_iter()
            .flatten()
            .collect(),
        (serde_json::Value::Object(o), _) => [text(o.get("status")), text(o.get("message"))]
            .into_iter()
            .flatten()
            .collect(),
        (_, serde_json::Value::Array(list)) => list
            .iter()
            .flat_map(|e| [text(e.get("code")), text(e.get("message"))])
            .flatten()
            .collect(),
        _ => Vec::new(),
    };
    // One line: Entra's descriptions carry trace ids on further lines.
    let joined = parts.join(": ");
    let first = joined.lines().next().unwrap_or("").trim().to_string();
    (!first.is_empty()).then_some(first)
}

/// Tokens and keys travel only over `https://`; plain `http://` only to this machine.
pub fn endpoint_allowed(url: &str) -> Result<(), String> {
    endpoint_allowed_with(url, |_| false, "a loopback address")
}

/// Like [`endpoint_allowed`], also letting plain `http://` reach a host `also_plain` accepts
/// (`what` names it in the refusal): a metadata service's link-local address.
///
/// The URL is parsed as the HTTP client will parse it and the host judged from that: a
/// prefix check took `http://[::1]@192.0.2.2/` for loopback while the client connected to
/// 192.0.2.2. User info is refused outright: no endpoint needs it, and it only hides where a
/// request goes (and would put a credential in logs).
pub fn endpoint_allowed_with(
    url: &str,
    also_plain: impl Fn(&url::Host<&str>) -> bool,
    what: &str,
) -> Result<(), String> {
    let shown = crate::logging::redact_urls(url);
    let refuse = |why: &str| Err(format!("endpoint {shown:?} {why}"));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("is not a URL (it has white space)");
    }
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => return refuse(&format!("is not a URL ({e})")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("has user info (user@ or user:password@), which no endpoint takes");
    }
    let Some(host) = parsed.host() else {
        return refuse("has no host");
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&host) || also_plain(&host) => Ok(()),
        _ => refuse(&format!("must be https:// (plain http only to {what})")),
    }
}

/// `localhost` or a loopback address, as parsed from a URL.
pub fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_but_for_loopback() {
        for ok in [
            "https://oauth2.googleapis.com/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:80/t",
            "http://localhost/t",
        ] {
            assert!(endpoint_allowed(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://oauth2.googleapis.com/token",
            "http://10.0.0.1/token",
            "ftp://x",
            "oauth2.googleapis.com",
            "http://127.0.0.1.evil.com/t",
            "http://127.0.0.1@evil.com/t",
            "http://[::1]@192.0.2.2:18080/token",
            "http://localhost@192.0.2.2/t",
            "http://localhost:80@192.0.2.2/t",
            "https://user:pw@oauth2.googleapis.com/token",
            "http://127.0.0.1 /t",
            "http:///t",
        ] {
            assert!(endpoint_allowed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_in_each_shape() {
        let cases: [(&str, Option<&str>); 6] = [
            (
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret.\r\nTrace ID: x"}"#,
                Some("invalid_client: AADSTS7000215: Invalid client secret."),
            ),
            (
                r#"{"error":{"status":"PERMISSION_DENIED","message":"no"}}"#,
                Some("PERMISSION_DENIED: no"),
            ),
            (
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"aad token invalid"}]}"#,
                Some("UNAUTHORIZED: aad token invalid"),
            ),
            (r#"{"error":""}"#, None),
            ("<html>", None),
            ("[]", None),
        ];
        for (body, want) in cases {
            assert_eq!(refusal(body.as_bytes()).as_deref(), want, "{body}");
        }
    }
}
