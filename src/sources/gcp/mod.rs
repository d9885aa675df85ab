//! Source `gcp`: OAuth2 access tokens for Artifact Registry and Container Registry, from
//! the shared Google identity (`crate::identity::google`): username `oauth2accesstoken`,
//! password the token, expiry from `expires_in`.

pub mod host;
mod options;

use std::time::{Duration, Instant};

use super::{MintRequest, Source, SourceError, Spec, run_mint};
use crate::credential::Credential;
use crate::env::Env;
use crate::http::web_client;
use crate::identity::google::{self, Google};

/// Artifact Registry's and Container Registry's hosts (`check` then tests each strictly).
const BUILTIN_HOSTS: &[&str] = &[
    "*-docker.pkg.dev",
    "gcr.io",
    "*.gcr.io",
    "container.cloud.google.com",
];

kinds! {
    name: "gcp",
    options: options::GcpOptions,
    shared: [google::Keys],
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// A rule's `gcp` options: the Google identity's alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpSource {
    pub google: Google,
}

impl Spec for GcpSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        self.google.describe(&mut parts);
        if parts.is_empty() {
            "(application default credentials)".into()
        } else {
            parts.join(" ")
        }
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!("gcp {self:?} {}", env.vars_text(google::IDENTITY_VARS))
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        host::check(mint_host).map_err(|e| SourceError::local(e.to_string()))
    }

    fn max_mint_time(&self) -> Duration {
        google::MAX_TOKEN_TIME
    }

    fn files(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        self.google.files()
    }

    workload_identity_of!(google);
}

impl Source for GcpSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.check(req.mint_host)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        run_mint(
            budget,
            |resolver, _limit| async move {
                let client = web_client(req.env, &resolver, false, &google::TIMEOUTS)?;
                self.google
                    .token(req.env, &resolver, &client, req.workload, req.deadline)
                    .await
            },
            || "Google credentials".to_string(),
        )
    }
}
