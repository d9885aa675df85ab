//! ACR's token exchange, as ACR documents its Entra ID integration: `POST
//! https://<login server>/oauth2/exchange` with `grant_type=access_token`, `service`,
//! `tenant` and `access_token`, answered by an ACR refresh token (a JWT). The registry
//! takes it as the password of the all-zero username; its `exp` claim is when it stops
//! working.

use std::time::{Instant, SystemTime};

use serde::Deserialize;

use crate::credential::{Credential, Secret};
use crate::http::{MAX_ATTEMPTS, Unreadable};
use crate::oauth::jwt;
use crate::sources::SourceError;

/// The username ACR takes with a refresh token as the password.
pub const USERNAME: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Deserialize)]
struct Answer {
    refresh_token: String,
}

/// A refresh token for `login_server`, at `base` (`https://<login server>`, or a rule's
/// `endpoint`), for the Entra `access_token` of `tenant`.
pub async fn refresh_token(
    client: &reqwest::Client,
    base: &str,
    login_server: &str,
    tenant: Option<&str>,
    access_token: &Secret,
    deadline: Instant,
) -> Result<Credential, SourceError> {
    let url = format!("{}/oauth2/exchange", base.trim_end_matches('/'));
    let what = format!("ACR token exchange {url}");
    let (token, expires_at) = crate::oauth::call(&what, MAX_ATTEMPTS, deadline)
        .fetch(
            || {
                let mut form = vec![
                    ("grant_type", "access_token"),
                    ("service", login_server),
                    ("access_token", access_token.expose()),
                ];
                if let Some(t) = tenant {
                    form.push(("tenant", t));
                }
                client.post(&url).form(&form)
            },
            |_| Ok(()),
            read,
        )
        .await?;
    Ok(Credential {
        username: USERNAME.into(),
        password: Secret::new(token),
        expires_at: Some(expires_at),
        refresh_at: None,
    })
}

/// The refresh token and its `exp`, read without verifying: the registry verifies it; this
/// is only when to stop using it.
fn read(body: &[u8]) -> Result<(String, SystemTime), Unreadable> {
    let not = Unreadable::Not("a refresh token");
    let a: Answer = serde_json::from_slice(body).map_err(|_| not)?;
    if a.refresh_token.is_empty() {
        return Err(Unreadable::Empty("refresh token"));
    }
    let exp = jwt::unverified_claims(&a.refresh_token)
        .and_then(|c| c.get("exp")?.as_u64())
        .ok_or(Unreadable::Not("a refresh token with an `exp` claim"))?;
    let at = crate::units::unix_seconds(exp)
        .ok_or(Unreadable::Not("a refresh token with an `exp` in range"))?;
    Ok((a.refresh_token, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_refresh_tokens_exp_is_its_expiry() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"exp":1800000000,"grant_type":"refresh_token"}"#);
        let body = format!(r#"{{"refresh_token":"eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln"}}"#);
        let (_, at) = read(body.as_bytes()).unwrap();
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        for bad in [
            r#"{"refresh_token":""}"#,
            r#"{"refresh_token":"opaque"}"#,
            r#"{"access_token":"x"}"#,
            "garbage",
        ] {
            assert!(read(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
