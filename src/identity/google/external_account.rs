//! `external_account` credential files (workload identity federation), as Google's client
//! libraries read them: a subject token from the file's `credential_source` (a file, or a
//! URL with headers; text or JSON), exchanged at the Security Token Service for a Google
//! token, then, if the file names one, traded for a service account's token.
//! `environment_id = "aws1"` sources are signed AWS requests (`aws1`).

use crate::env::Clock;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde::Deserialize;

use super::credential_file::{Endpoints, SCOPE};
use super::impersonate;
use super::oauth::{Answer, MAX_ATTEMPTS, fetch_text, fetch_token};
use crate::credential::Credential;
use crate::env::Env;
use crate::failure::SourceError;
use crate::http::endpoint_allowed;
use crate::secret_file;

#[derive(Deserialize)]
pub struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    token_url: String,
    credential_source: CredentialSource,
    service_account_impersonation_url: Option<String>,
}

#[derive(Deserialize)]
struct CredentialSource {
    file: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    format: Option<Format>,
    environment_id: Option<String>,
    #[serde(flatten)]
    aws: super::aws1::AwsSource,
}

#[derive(Deserialize)]
struct Format {
    #[serde(rename = "type")]
    kind: String,
    subject_token_field_name: Option<String>,
}

/// Google's Security Token Service: the token exchange ("Exchange a token") of a subject
/// token from a workload identity pool's provider (`audience`) for a federated access token.
pub async fn sts_exchange(
    client: &reqwest::Client,
    sts: &str,
    audience: &str,
    subject_token_type: &str,
    subject: &str,
    deadline: Instant,
    clock: Clock,
) -> Result<Credential, SourceError> {
    let what = format!("Security Token Service {sts}");
    fetch_token(
        &what,
        Answer::OAuth,
        MAX_ATTEMPTS,
        deadline,
        clock,
        || {
            client.post(sts).form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("audience", audience),
                ("scope", SCOPE),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("subject_token_type", subject_token_type),
                ("subject_token", subject),
            ])
        },
        |_| Ok(()),
    )
    .await
}

impl ExternalAccount {
    pub async fn token(
        &self,
        path: &Path,
        env: &Env,
        client: &reqwest::Client,
        endpoints: &Endpoints<'_>,
        deadline: Instant,
    ) -> Result<Credential, SourceError> {
        let local = |why: String| SourceError::local(format!("{}: {why}", path.display()));
        let subject = self.subject_token(env, client, &local).await?;
        let sts = endpoints.sts.unwrap_or(&self.token_url);
        endpoint_allowed(sts).map_err(|e| SourceError::local_because(path.display(), e))?;
        let federated = sts_exchange(
            client,
            sts,
            &self.audience,
            &self.subject_token_type,
            &subject,
            deadline,
            env.clock(),
        )
        .await?;
        let Some(url) = &self.service_account_impersonation_url else {
            return Ok(federated);
        };
        // The rule's IAM endpoint replaces Google's in the file's URL.
        let url = match endpoints.iam {
            Some(base) => url.replacen(impersonate::DEFAULT_BASE, base.trim_end_matches('/'), 1),
            None => url.clone(),
        };
        endpoint_allowed(&url).map_err(|e| SourceError::local_because(path.display(), e))?;
        impersonate::token(client, &url, &federated, deadline, env.clock()).await
    }

    async fn subject_token(
        &self,
        env: &Env,
        client: &reqwest::Client,
        local: &impl Fn(String) -> SourceError,
    ) -> Result<String, SourceError> {
        let source = &self.credential_source;
        match source.environment_id.as_deref() {
            None => {}
            Some(id) if id.starts_with("aws") => {
                if id != "aws1" {
                    return Err(local(format!(
                        "credential_source environment_id {id:?} is not supported (aws1 is)"
                    )));
                }
                return super::aws1::subject_token(
                    &source.aws,
                    source.url.as_deref(),
                    &self.audience,
                    env,
                    client,
                )
                .await;
            }
            Some(id) => {
                return Err(local(format!(
                    "credential_source environment_id {id:?} is not supported"
                )));
            }
        }
        let raw = match (&source.file, &source.url) {
            (Some(file), _) => secret_file::read(Path::new(file), env.uid())?,
            (None, Some(url)) => {
                let mut request = client.get(url);
                for (k, v) in &source.headers {
                    request = request.header(k, v);
                }
                fetch_text(request, &format!("subject token from {url}")).await?
            }
            (None, None) => {
                return Err(local(
                    "credential_source names neither a file nor a url".into(),
                ));
            }
        };
        let token = match &source.format {
            Some(Format {
                kind,
                subject_token_field_name,
            }) if kind == "json" => {
                let field = subject_token_field_name
                    .as_deref()
                    .ok_or_else(|| local("format json needs subject_token_field_name".into()))?;
                let value: serde_json::Value = serde_json::from_str(&raw)
                    .map_err(|_| local("the subject token source is not JSON".into()))?;
                value[field]
                    .as_str()
                    .ok_or_else(|| {
                        local(format!("the subject token source has no string {field:?}"))
                    })?
                    .to_string()
            }
            _ => secret_file::trim_newline(&raw).trim().to_string(),
        };
        if token.is_empty() {
            return Err(local("the subject token is empty".into()));
        }
        Ok(token)
    }
}
