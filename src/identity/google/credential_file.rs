//! Credential files as Google's client libraries read them (a key file, gcloud's
//! application default credentials): `service_account` keys sign a JWT for the token
//! endpoint; `authorized_user` credentials trade their refresh token. The file gets the same
//! owner and mode checks as any secret file; nothing from it reaches a log or an error.

use crate::env::Clock;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Deserialize;

use super::external_account::ExternalAccount;
use super::oauth::{Answer, MAX_ATTEMPTS, fetch_token};
use crate::credential::Credential;
use crate::env::Env;
use crate::failure::SourceError;
use crate::oauth::jwt;
use crate::secret_file;

/// The scope every token is asked for; Artifact Registry and GCR accept it.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// A service account's assertion may live at most an hour (Google's limit).
const ASSERTION_LIFE: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum CredentialFile {
    ServiceAccount {
        client_email: String,
        private_key: String,
        private_key_id: Option<String>,
        token_uri: Option<String>,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        token_uri: Option<String>,
    },
    ExternalAccount(Box<ExternalAccount>),
}

/// Where a rule sends what a credential file would send elsewhere.
pub struct Endpoints<'a> {
    /// Replaces a key file's `token_uri`.
    pub token: Option<&'a str>,
    /// Replace an external account's STS `token_url` and IAM Credentials base.
    pub sts: Option<&'a str>,
    pub iam: Option<&'a str>,
}

/// Mints with the credential file at `path`.
pub async fn token(
    path: &Path,
    env: &Env,
    client: &reqwest::Client,
    endpoints: &Endpoints<'_>,
    deadline: Instant,
) -> Result<Credential, SourceError> {
    let token_endpoint = endpoints.token;
    let text = secret_file::read(path, env.uid())?;
    let local = |why: String| SourceError::local(format!("{}: {why}", path.display()));
    // serde_json's messages can quote values; only the position or the field is told.
    let file: CredentialFile = serde_json::from_str(&text).map_err(|e| {
        if e.is_data() && e.to_string().starts_with("unknown variant") {
            local("unsupported credential type (service_account, authorized_user and external_account are)".into())
        } else {
            local(format!(
                "not a Google credential file (line {} column {})",
                e.line(),
                e.column()
            ))
        }
    })?;
    let allowed = |uri: &str| {
        crate::http::endpoint_allowed(uri)
            .map_err(|e| SourceError::local_because(path.display(), e))
    };
    match file {
        CredentialFile::ServiceAccount {
            client_email,
            private_key,
            private_key_id,
            token_uri,
        } => {
            let uri = token_uri_of(token_endpoint, token_uri);
            allowed(&uri)?;
            let key = jwt::load_key(&private_key).map_err(|why| local(why.into()))?;
            let now = env
                .now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            // `aud` is the token URI the file names, as Google checks it.
            let claims = serde_json::json!({
                "iss": client_email,
                "scope": SCOPE,
                "aud": uri,
                "iat": now,
                "exp": now + ASSERTION_LIFE.as_secs(),
            });
            let mut header = serde_json::Map::new();
            if let Some(kid) = private_key_id {
                header.insert("kid".into(), kid.into());
            }
            let assertion = jwt::sign(&key, header, &claims).map_err(|why| local(why.into()))?;
            let what = format!("token endpoint {uri} (service account {client_email})");
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ];
            post_form(client, &what, &uri, &form, deadline, env.clock()).await
        }
        CredentialFile::AuthorizedUser {
            client_id,
            client_secret,
            refresh_token,
            token_uri,
        } => {
            let uri = token_uri_of(token_endpoint, token_uri);
            allowed(&uri)?;
            let what = format!("token endpoint {uri} (user credentials)");
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
            ];
            post_form(client, &what, &uri, &form, deadline, env.clock()).await
        }
        CredentialFile::ExternalAccount(account) => {
            account.token(path, env, client, endpoints, deadline).await
        }
    }
}

/// The token endpoint: the rule's, else the file's, else Google's.
fn token_uri_of(rule: Option<&str>, file: Option<String>) -> String {
    rule.map(str::to_string)
        .or(file)
        .unwrap_or_else(|| DEFAULT_TOKEN_URI.into())
}

/// An OAuth token request: `form` posted to `uri`, with the usual attempts.
async fn post_form(
    client: &reqwest::Client,
    what: &str,
    uri: &str,
    form: &[(&str, &str)],
    deadline: Instant,
    clock: Clock,
) -> Result<Credential, SourceError> {
    fetch_token(
        what,
        Answer::OAuth,
        MAX_ATTEMPTS,
        deadline,
        clock,
        || client.post(uri).form(form),
        |_| Ok(()),
    )
    .await
}
