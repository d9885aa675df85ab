//! Google access tokens for a source that calls Google: Application Default Credentials in
//! Google's order (the rule's `key_file`, `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's
//! application default credentials, the metadata server), or a workload's token exchanged
//! at a workload identity pool's provider; either optionally followed by impersonation of
//! another service account (`impersonate`, or the service account's annotation).

mod aws1;
mod credential_file;
mod external_account;
mod impersonate;
pub mod metadata;
pub mod oauth;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::credential::Credential;
use crate::env::Env;
use crate::failure::{Chain, SourceError};
use crate::http::{WebTimeouts, endpoint_allowed};
use crate::resolver::Resolver;
use crate::rule_keys::{OptionError, Options};
use crate::workload::{IdentityMode, InputError, Inputs, Workload};

/// A workload's inputs (its part of the cache key): the pool provider to exchange its token
/// with, and the service account to impersonate, if any.
const AUDIENCE: &str = "audience";
const IMPERSONATE: &str = "impersonate";
/// A Kubernetes service account token, as STS names its type.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The environment variables that change which credentials a mint uses; part of every
/// Google source's cache key.
pub const IDENTITY_VARS: &[&str] = &[
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_CONFIG",
    "GCE_METADATA_HOST",
    "HOME",
];
/// The longest the token calls of one mint may take: attempts and backoff.
pub const MAX_TOKEN_TIME: Duration = Duration::from_secs(15);

/// The annotation GKE's workload identity reads for a service account's Google account.
pub const SERVICE_ACCOUNT_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// Google's Security Token Service; `sts_endpoint` replaces it.
const DEFAULT_STS: &str = "https://sts.googleapis.com/v1/token";

/// Calls across the internet (token endpoint, STS, IAM Credentials, Google's APIs).
pub const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

/// The identity keys every Google source takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    key_file: Option<String>,
    service_account: Option<String>,
    impersonate: Option<String>,
    token_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    iam_credentials_endpoint: Option<String>,
    workload_identity_provider: Option<String>,
    service_account_annotation: Option<String>,
    gke_identity_namespace: Option<String>,
    gke_identity_provider: Option<String>,
}

/// A rule's Google identity. All optional: the default follows the ADC order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Google {
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
    /// GKE's workload identity for image pulls: a workload's token is exchanged at STS for
    /// its identity namespace, no pool provider set up.
    pub gke: Option<Gke>,
}

/// GKE's workload identity image pull (upstream's `--project-id`, `--identity-provider`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gke {
    /// `<project>.svc.id.goog`.
    pub namespace: String,
    /// The cluster's URL; `None`: the token's issuer.
    pub provider: Option<String>,
}

/// The annotation by which a service account opts in to GKE's image pulls.
pub const GKE_OPT_IN_ANNOTATION: &str = "iam.gke.io/enable-wi-image-pull";
/// A workload's input: that it pulls as GKE's workload identity.
const GKE: &str = "gke";

impl Google {
    pub fn from_keys(keys: Keys, options: &Options<'_>) -> Result<Self, OptionError> {
        let o = keys;
        if let Some(sa) = &o.service_account
            && sa != "default"
            && !is_email(sa)
        {
            return Err(OptionError::at(
                "service_account",
                format!("service_account {sa:?} is not a service account email or \"default\""),
            ));
        }
        if let Some(sa) = &o.impersonate
            && !is_email(sa)
        {
            return Err(OptionError::at(
                "impersonate",
                format!("impersonate {sa:?} is not a service account email"),
            ));
        }
        for (key, url) in [
            ("token_endpoint", &o.token_endpoint),
            ("sts_endpoint", &o.sts_endpoint),
            ("iam_credentials_endpoint", &o.iam_credentials_endpoint),
        ] {
            if let Some(url) = url {
                endpoint_allowed(url).map_err(|why| OptionError::at(key, why.to_string()))?;
            }
        }
        let gke = match (o.gke_identity_namespace, o.gke_identity_provider) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(OptionError::at(
                    "gke_identity_provider",
                    "`gke_identity_provider` needs `gke_identity_namespace`",
                ));
            }
            (Some(namespace), provider) => {
                if options.identity == IdentityMode::Node {
                    return Err(OptionError::at(
                        "gke_identity_namespace",
                        "`gke_identity_namespace` needs identity \"service-account\" or \"service-account-or-node\"",
                    ));
                }
                if o.workload_identity_provider.is_some() {
                    return Err(OptionError::at(
                        "gke_identity_namespace",
                        "set one of gke_identity_namespace (GKE) and workload_identity_provider (a pool)",
                    ));
                }
                let project = namespace.strip_suffix(".svc.id.goog").unwrap_or("");
                let ok = !project.is_empty()
                    && project.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b)
                    });
                if !ok {
                    return Err(OptionError::at(
                        "gke_identity_namespace",
                        format!(
                            "gke_identity_namespace {namespace:?} is not <project>.svc.id.goog"
                        ),
                    ));
                }
                if let Some(p) = &provider {
                    gke_provider(p).map_err(|why| OptionError::at("gke_identity_provider", why))?;
                }
                Some(Gke {
                    namespace,
                    provider,
                })
            }
        };
        let workload_identity_provider = match (options.identity, o.workload_identity_provider) {
            (IdentityMode::Node, None) => None,
            (_, None) if gke.is_some() => None,
            (IdentityMode::Node, Some(_)) => {
                return Err(OptionError::at(
                    "workload_identity_provider",
                    "`workload_identity_provider` needs identity \"service-account\" or \"service-account-or-node\"",
                ));
            }
            (_, None) => {
                return Err(OptionError::rule(
                    "a service account's token is exchanged at a workload identity pool's provider: \
                     set workload_identity_provider",
                ));
            }
            (_, Some(p)) => Some(provider_audience(&p).ok_or_else(|| {
                OptionError::at(
                    "workload_identity_provider",
                    format!(
                        "workload_identity_provider {p:?} is not \
                         projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
                    ),
                )
            })?),
        };
        let service_account_annotation = options.annotation_key(
            "service_account_annotation",
            o.service_account_annotation,
            SERVICE_ACCOUNT_ANNOTATION,
        )?;
        Ok(Google {
            workload_identity_provider,
            service_account_annotation,
            gke,
            key_file: o.key_file.as_deref().map(|f| options.path(f)),
            service_account: o.service_account,
            impersonate: o.impersonate,
            token_endpoint: o.token_endpoint,
            sts_endpoint: o.sts_endpoint,
            iam_credentials_endpoint: o.iam_credentials_endpoint,
        })
    }

    /// The options in effect, for `config check`.
    pub fn describe(&self, parts: &mut Vec<String>) {
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
        if let Some(g) = &self.gke {
            parts.push(format!("gke_identity_namespace={}", g.namespace));
            if let Some(p) = &g.provider {
                parts.push(format!("gke_identity_provider={p}"));
            }
        }
    }

    /// The secret files its keys name.
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        self.key_file
            .iter()
            .map(|f| ("key_file", f.clone()))
            .collect()
    }

    /// The audience of a workload's token: the pool provider's full name, or GKE's
    /// identity namespace.
    pub fn workload_audience(&self) -> Option<String> {
        match &self.gke {
            Some(g) => Some(g.namespace.clone()),
            None => self.workload_identity_provider.clone(),
        }
    }

    pub fn workload_annotations(&self) -> Vec<String> {
        let mut keys = vec![self.service_account_annotation.clone()];
        if self.gke.is_some() {
            keys.push(GKE_OPT_IN_ANNOTATION.to_string());
        }
        keys
    }

    /// A workload's Google identity: the pool provider's federated token, traded for the
    /// service account its annotation names (else the rule's `impersonate`), if any.
    pub fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        let mut inputs = Inputs::new();
        if let Some(p) = &self.workload_identity_provider {
            inputs.insert(AUDIENCE, p.clone());
        }
        if self.gke.is_some() {
            match annotations.get(GKE_OPT_IN_ANNOTATION).map(String::as_str) {
                Some("true") => {
                    inputs.insert(GKE, "image pull".into());
                }
                Some("false") | None => {
                    return Err(InputError::NotOptedIn {
                        annotation: GKE_OPT_IN_ANNOTATION.into(),
                        what: "GKE workload identity image pulls",
                    });
                }
                Some(_) => {
                    return Err(InputError::Invalid {
                        annotation: GKE_OPT_IN_ANNOTATION.into(),
                        why: "is not \"true\" or \"false\"",
                    });
                }
            }
        }
        match annotations.get(&self.service_account_annotation) {
            Some(email) if is_email(email) => {
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

    /// An access token (`cloud-platform` scope) for the node's or `workload`'s identity.
    pub async fn token(
        &self,
        env: &Env,
        resolver: &Resolver,
        client: &reqwest::Client,
        workload: Option<&Workload>,
        deadline: Instant,
    ) -> Result<Credential, SourceError> {
        let (found, impersonate) = match workload {
            Some(w) if w.input(GKE).is_some() => {
                let federated = self.gke_token(client, w, deadline, env).await?;
                (federated, w.input(IMPERSONATE).map(str::to_string))
            }
            Some(w) => {
                let sts = self.sts_endpoint.as_deref().unwrap_or(DEFAULT_STS);
                let audience = w.required(AUDIENCE)?;
                let federated = external_account::sts_exchange(
                    client,
                    sts,
                    audience,
                    JWT_TOKEN_TYPE,
                    w.account.token.expose(),
                    deadline,
                    env.clock(),
                )
                .await?;
                (federated, w.input(IMPERSONATE).map(str::to_string))
            }
            None => (
                self.adc(env, resolver, client, deadline).await?,
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
                impersonate::token(client, &url, &found, deadline, env.clock()).await
            }
        }
    }

    /// GKE's workload identity image pull: the workload's token exchanged at STS for its
    /// identity namespace (`identitynamespace:<namespace>:<provider>`, the provider the
    /// rule's or the token's issuer), a federated token that is the password itself.
    async fn gke_token(
        &self,
        client: &reqwest::Client,
        w: &Workload,
        deadline: Instant,
        env: &Env,
    ) -> Result<Credential, SourceError> {
        let gke = self
            .gke
            .as_ref()
            .ok_or_else(|| SourceError::local("no GKE identity namespace".into()))?;
        let account = w.account.id();
        let provider = match (&gke.provider, &w.account.issuer) {
            (Some(p), _) => p.clone(),
            (None, Some(iss)) => {
                gke_provider(iss).map_err(|why| {
                    SourceError::local(format!(
                        "GKE workload identity for service account {account}: the token's issuer: {why} (set gke_identity_provider)"
                    ))
                })?;
                iss.clone()
            }
            (None, None) => {
                return Err(SourceError::local(format!(
                    "GKE workload identity for service account {account}: the token has no issuer (set gke_identity_provider)"
                )));
            }
        };
        let sts = self.sts_endpoint.as_deref().unwrap_or(DEFAULT_STS);
        let audience = format!("identitynamespace:{}:{provider}", gke.namespace);
        external_account::sts_exchange(
            client,
            sts,
            &audience,
            JWT_TOKEN_TYPE,
            w.account.token.expose(),
            deadline,
            env.clock(),
        )
        .await
        .map_err(|e| {
            SourceError::new(
                e.kind(),
                format!("GKE workload identity for service account {account}: {e}"),
            )
            .caused_by(e)
        })
    }

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

/// A workload identity pool provider as STS's `audience`: `//iam.googleapis.com/projects/N/
/// locations/global/workloadIdentityPools/P/providers/Q`, given with or without the prefix.
fn provider_audience(p: &str) -> Option<String> {
    const PREFIX: &str = "//iam.googleapis.com/";
    let path = p.strip_prefix(PREFIX).unwrap_or(p);
    let parts: Vec<&str> = path.split('/').collect();
    let ok = matches!(
        parts.as_slice(),
        ["projects", n, "locations", _, "workloadIdentityPools", pool, "providers", provider]
            if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty()
                && !pool.is_empty() && !provider.is_empty()
    ) && !path.contains(char::is_whitespace);
    ok.then(|| format!("{PREFIX}{path}"))
}

/// A GKE identity provider: the cluster's `https://` URL (as its token's `iss` names it).
fn gke_provider(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if parsed.scheme() != "https" || parsed.host_str().is_none() || !parsed.username().is_empty() {
        return Err(format!("{url:?} is not an https:// URL"));
    }
    Ok(())
}

/// A service account email, as it goes into a URL path: something@something, nothing that
/// would change the path.
pub fn is_email(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !s.contains(['/', ' ', ':', '?', '#'])
}
