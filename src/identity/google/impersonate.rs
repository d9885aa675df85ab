//! IAM Credentials `generateAccessToken`: a token of another service account, asked for with
//! the token in hand (a rule's `impersonate`, or an external account file's
//! `service_account_impersonation_url`), as Google's service account impersonation documents.

use crate::env::Clock;
use std::time::Instant;

use super::credential_file::SCOPE;
use super::oauth::{Answer, MAX_ATTEMPTS, fetch_token};
use crate::credential::Credential;
use crate::failure::SourceError;

/// Google's IAM Credentials API; `iam_credentials_endpoint` replaces it.
pub const DEFAULT_BASE: &str = "https://iamcredentials.googleapis.com";

/// The `generateAccessToken` URL of `email` under `base`.
pub fn url(base: &str, email: &str) -> String {
    format!(
        "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
        base.trim_end_matches('/')
    )
}

/// A token of the account at `url`, asked for with `with`'s token.
pub async fn token(
    client: &reqwest::Client,
    url: &str,
    with: &Credential,
    deadline: Instant,
    clock: Clock,
) -> Result<Credential, SourceError> {
    let account = url
        .rsplit("/serviceAccounts/")
        .next()
        .and_then(|rest| rest.split(':').next())
        .unwrap_or(url);
    let what = format!("IAM Credentials generateAccessToken for {account}");
    let body = serde_json::json!({"scope": [SCOPE], "lifetime": "3600s"});
    fetch_token(
        &what,
        Answer::Iam,
        MAX_ATTEMPTS,
        deadline,
        clock,
        || {
            client
                .post(url)
                .bearer_auth(with.password.expose())
                .json(&body)
        },
        |_| Ok(()),
    )
    .await
}
