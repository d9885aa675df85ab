//! Source `acr`: Azure Container Registry refresh tokens. An Entra ID access token for ACR
//! from the shared Azure identity (`crate::identity::azure`), then ACR's exchange of that
//! token at the login server for a refresh token: username
//! `00000000-0000-0000-0000-000000000000`, password the refresh token, expiry its `exp`.
//!
//! The Entra token goes only to the authority and to the login server answered for (or the
//! rule's `endpoint`).

mod exchange;
pub mod host;
mod options;

use std::time::{Duration, Instant};

use super::{MintRequest, Source, SourceError, Spec, run_mint};
use crate::credential::Credential;
use crate::env::Env;
use crate::http::web_client;
use crate::identity::azure::{self, Entra, Resource};
use crate::oauth::jwt;

/// Login servers of every cloud, and geo-replicas' regional endpoints (the kubelet's
/// matching needs the same number of labels, hence one pattern per form).
const BUILTIN_HOSTS: &[&str] = &[
    "*.azurecr.io",
    "*.azurecr.cn",
    "*.azurecr.us",
    "*.azurecr.de",
    "*.*.geo.azurecr.io",
    "*.*.geo.azurecr.cn",
    "*.*.geo.azurecr.us",
    "*.*.geo.azurecr.de",
];

kinds! {
    name: "acr",
    options: options::AcrOptions,
    shared: [azure::Keys],
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// ACR's Entra ID resource, and the scope of a token for it.
const RESOURCE: Resource<'static> = Resource {
    resource: "https://containerregistry.azure.net",
    scope: "https://containerregistry.azure.net/.default",
};
/// The longest a mint may take: an Entra call's and the exchange's attempts and backoff.
const MAX_MINT_TIME: Duration = Duration::from_secs(15);

/// A rule's `acr` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcrSource {
    pub entra: Entra,
    /// The exchange's base URL, instead of `https://<login server>`.
    pub endpoint: Option<String>,
    /// Login server suffixes beyond Azure's own.
    pub suffixes: Vec<String>,
}

impl Spec for AcrSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        self.entra.describe(&mut parts);
        if let Some(e) = &self.endpoint {
            parts.push(format!("endpoint={e}"));
        }
        if !self.suffixes.is_empty() {
            parts.push(format!("suffixes={}", self.suffixes.join(",")));
        }
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "acr {:?} {:?} {}",
            self.endpoint,
            self.suffixes,
            self.entra.cache_identity(env)
        )
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        host::check(mint_host, &self.suffixes).map_err(|e| SourceError::local(e.to_string()))
    }

    fn max_mint_time(&self) -> Duration {
        MAX_MINT_TIME
    }

    fn files(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        self.entra.files()
    }

    workload_identity_of!(entra);
}

impl Source for AcrSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.check(req.mint_host)?;
        let login_server = req.mint_host.to_ascii_lowercase();
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let deadline = req.deadline;
        let login_server = &login_server;
        run_mint(
            budget,
            |resolver, _limit| async move {
                let client =
                    web_client(req.env, &resolver, false, &azure::TIMEOUTS)?;
                let entra = self
                    .entra
                    .token(req.env, &resolver, &client, req.workload, &RESOURCE, deadline)
                    .await?;
                // The tenant names which directory issued the token; a managed identity's
                // token says it itself.
                let tenant = entra.tenant.or_else(|| {
                    jwt::unverified_claims(entra.token.expose())
                        .and_then(|c| c.get("tid")?.as_str().map(str::to_string))
                });
                let base = match &self.endpoint {
                    Some(e) => e.clone(),
                    None => format!("https://{login_server}"),
                };
                let mut credential = exchange::refresh_token(
                    &client,
                    &base,
                    login_server,
                    tenant.as_deref(),
                    &entra.token,
                    deadline,
                )
                .await?;
                // A workload's refresh token is kept no longer than the Entra token it was
                // got with.
                if req.workload.is_some()
                    && let Some(exp) = jwt::unverified_claims(entra.token.expose())
                        .and_then(|c| c.get("exp")?.as_u64())
                {
                    // An `exp` out of range bounds nothing; the token's own life still does.
                    if let Some(until) = crate::units::unix_seconds(exp) {
                        credential.expires_at = credential.expires_at.map(|e| e.min(until));
                    }
                }
                Ok(credential)
            },
            || format!("Azure credentials for {login_server}"),
        )
    }
}
