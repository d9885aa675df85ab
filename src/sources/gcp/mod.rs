//! Source `gcp`: OAuth2 access tokens for Artifact Registry and Container Registry, from
//! Google's Application Default Credentials order: the rule's `key_file`, then
//! `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application default credentials, then the
//! metadata server. Username `oauth2accesstoken`, password the token, expiry from
//! `expires_in`.
//!
//! Any of them may be followed by impersonation of another service account (`impersonate`).

mod aws1;
mod credential_file;
mod external_account;
pub mod host;
mod impersonate;
mod metadata;
mod oauth;
mod options;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Chain, MintRequest, Source, SourceError, Spec, run_mint};
use crate::credential::Credential;
use crate::env::Env;
use crate::http::{WebTimeouts, web_client};
use crate::resolver::Resolver;
use crate::workload::{InputError, Inputs};

/// A Kubernetes service account token, as STS names its type.
/// A workload's inputs (its part of the cache key): the pool provider to exchange its token
/// with, and the service account to impersonate, if any.
const AUDIENCE: &str = "audience";
const IMPERSONATE: &str = "impersonate";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// Artifact Registry's and Container Registry's hosts (`check` then tests each strictly).
const BUILTIN_HOSTS: &[&str] = &["*-docker.pkg.dev", "gcr.io", "*.gcr.io"];

kinds! {
    name: "gcp",
    options: options::GcpOptions,
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// The environment variables that change which credentials a mint uses; they are part of
/// the cache key.
const IDENTITY_VARS: &[&str] = &[
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
    "HOME",
];
/// The longest a mint may take: a token call's attempts and backoff.
const MAX_MINT_TIME: Duration = Duration::from_secs(15);

/// A rule's `gcp` options. All optional: the default follows the ADC order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcpSource {
    /// A credential file to use before anything else.
    pub key_file: Option<PathBuf>,
    /// The metadata server's service account, instead of `default`.
    pub service_account: Option<String>,
    /// A service account to impersonate with whatever credentials the chain found.
    pub impersonate: Option<String>,
    /// Endpoints instead of Google's (Private Service Connect, tests): the token endpoint
    /// (a key file's `token_uri`), STS (an external account's `token_url`), and the IAM
    /// Credentials API.
    pub token_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub iam_credentials_endpoint: Option<String>,
    /// For a workload's mint: the pool provider its token is exchanged at (STS's
    /// `audience`), and the annotation naming a service account to impersonate.
    pub workload_identity_provider: Option<String>,
    pub service_account_annotation: String,
}

/// The annotation GKE's workload identity reads for a service account's Google account.
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// Google's Security Token Service; `sts_endpoint` replaces it.
const DEFAULT_STS: &str = "https://sts.googleapis.com/v1/token";

/// Token calls other than the metadata server's.
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

impl Spec for GcpSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.key_file {
            parts.push(format!("key_file={}", f.display()));
        }
        for (key, value) in [
            ("service_account", &self.service_account),
            ("impersonate", &self.impersonate),
            ("token_endpoint", &self.token_endpoint),
            ("sts_endpoint", &self.sts_endpoint),
            ("iam_credentials_endpoint", &self.iam_credentials_endpoint),
            (
                "workload_identity_provider",
                &self.workload_identity_provider,
            ),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        if parts.is_empty() {
            "(application default credentials)".into()
        } else {
            parts.join(" ")
        }
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!("gcp {self:?} {}", env.vars_text(IDENTITY_VARS))
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        host::check(mint_host).map_err(|e| SourceError::local(e.to_string()))
    }

    fn max_mint_time(&self) -> Duration {
        MAX_MINT_TIME
    }

    fn workload_audience(&self) -> Option<String> {
        self.workload_identity_provider.clone()
    }

    fn workload_annotations(&self) -> Vec<String> {
        vec![self.service_account_annotation.clone()]
    }

    /// A workload's Google identity: the pool provider's federated token, traded for the
    /// service account its annotation names (else the rule's `impersonate`), if any.
    fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        let mut inputs = Inputs::new();
        if let Some(p) = &self.workload_identity_provider {
            inputs.insert(AUDIENCE, p.clone());
        }
        match annotations.get(&self.service_account_annotation) {
            Some(email) if options::is_email(email) => {
                inputs.insert(IMPERSONATE, email.clone());
            }
            Some(_) => {
                return Err(InputError::Invalid {
                    annotation: self.service_account_annotation.clone(),
                    why: "is not a service account email",
                });
            }
            None => {
                if let Some(email) = &self.impersonate {
                    inputs.insert(IMPERSONATE, email.clone());
                }
            }
        }
        Ok(inputs)
    }
}

impl Source for GcpSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.check(req.mint_host)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let deadline = req.deadline;
        run_mint(
            budget,
            |resolver, _limit| async move {
                let client =
                    web_client(req.env, &resolver, false, &TIMEOUTS)?;
                let (found, impersonate) = match req.workload {
                    Some(w) => {
                        let sts = self.sts_endpoint.as_deref().unwrap_or(DEFAULT_STS);
                        let audience = w.required(AUDIENCE)?;
                        let federated = external_account::sts_exchange(
                            &client,
                            sts,
                            audience,
                            JWT_TOKEN_TYPE,
                            w.account.token.expose(),
                            deadline,
                            req.env.clock(),
                        )
                        .await?;
                        (federated, w.input(IMPERSONATE).map(str::to_string))
                    }
                    None => (
                        self.adc(req.env, &resolver, &client, deadline).await?,
                        self.impersonate.clone(),
                    ),
                };
                match &impersonate {
                    None => Ok(found),
                    Some(email) => {
                        let base = self
                            .iam_credentials_endpoint
                            .as_deref()
                            .unwrap_or(impersonate::DEFAULT_BASE);
                        let url = impersonate::url(base, email);
                        impersonate::token(&client, &url, &found, deadline, req.env.clock()).await
                    }
                }
            },
            || "Google credentials".to_string(),
        )
    }
}

impl GcpSource {
    /// Application Default Credentials, in Google's order. A link that is set up but fails
    /// ends the search (falling through to another identity would hide the fault); when no
    /// link has credentials, the error names each one and why.
    async fn adc(
        &self,
        env: &Env,
        resolver: &Resolver,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Result<Credential, SourceError> {
        let endpoint = &credential_file::Endpoints {
            token: self.token_endpoint.as_deref(),
            sts: self.sts_endpoint.as_deref(),
            iam: self.iam_credentials_endpoint.as_deref(),
        };
        if let Some(path) = &self.key_file {
            return credential_file::token(path, env, client, endpoint, deadline).await;
        }
        let mut chain = Chain::new("Google");
        match env.var("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(p) => {
                let path = PathBuf::from(p);
                return credential_file::token(&path, env, client, endpoint, deadline).await;
            }
            None => chain.not_loaded("GOOGLE_APPLICATION_CREDENTIALS: not set"),
        }
        let gcloud = env
            .var("CLOUDSDK_CONFIG")
            .map(PathBuf::from)
            .or_else(|| env.home().map(|h| h.join(".config/gcloud")))
            .map(|d| d.join("application_default_credentials.json"));
        match gcloud {
            Some(path) if path.exists() => {
                return credential_file::token(&path, env, client, endpoint, deadline).await;
            }
            Some(path) => chain.not_loaded(format!("gcloud: no {}", path.display())),
            None => chain.not_loaded("gcloud: HOME is not set"),
        }
        let service_account = self.service_account.as_deref();
        metadata::token(env, resolver, service_account, deadline)
            .await
            .map_err(|e| chain.exhausted("metadata server", e))
    }
}
