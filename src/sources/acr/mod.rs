//! Source `acr`: Azure Container Registry refresh tokens. First an Entra ID access token for
//! ACR, from the first of: the rule's service principal or managed identity; the
//! environment as Azure's SDKs read it (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and a secret,
//! a certificate or a federated token file); the node's cloud config (`azure_json`); the VM's
//! managed identity through IMDS. Then ACR's exchange of that token at the login server
//! for a refresh token: username `00000000-0000-0000-0000-000000000000`, password the
//! refresh token, expiry its `exp`.
//!
//! The Entra token goes only to the authority and to the login server answered for (or the
//! rule's `endpoint`).

mod azure_json;
mod entra;
mod exchange;
pub mod host;
mod imds;
mod options;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Chain, MintRequest, Source, SourceError, Spec, run_mint};
use crate::credential::{Credential, Secret};
use crate::env::Env;
use crate::http::{WebTimeouts, web_client};
use crate::http::endpoint_allowed;
use crate::oauth::jwt;
use crate::resolver::Resolver;
use crate::secret_file;
use crate::workload::{InputError, Inputs, Workload};
use entra::{App, Proof};
use imds::Identity;

/// Login servers of every cloud, and geo-replicas' regional endpoints (the kubelet's
/// matching needs the same number of labels, hence one pattern per form).
/// A workload's inputs (its part of the cache key): its app registration's tenant and
/// client.
const TENANT_ID_INPUT: &str = "tenant_id";
const CLIENT_ID_INPUT: &str = "client_id";
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
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// ACR's Entra ID resource, and the scope of a token for it.
const RESOURCE: &str = "https://containerregistry.azure.net";
const SCOPE: &str = "https://containerregistry.azure.net/.default";
/// The environment variables that change which identity a mint uses; part of the cache key.
/// `AZURE_CLIENT_SECRET` counts only by being set (its value is a secret).
const IDENTITY_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];
/// The longest a mint may take: an Entra call's and the exchange's attempts and backoff.
const MAX_MINT_TIME: Duration = Duration::from_secs(15);
/// Entra ID and the exchange, both across the internet.
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

/// The annotations Azure's own plugin reads for a workload's application.
pub const CLIENT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-client-id";
pub const TENANT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-tenant-id";

/// A rule's `acr` options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcrSource {
    pub identity: RuleIdentity,
    /// For a workload's mint: where its application comes from.
    pub workload: WorkloadIds,
    /// The node's cloud config, instead of `/etc/kubernetes/azure.json`.
    pub azure_json: Option<PathBuf>,
    /// Entra ID's host, instead of the public cloud's (or the environment's, or the cloud
    /// config's).
    pub authority_host: Option<String>,
    /// IMDS's address, instead of `169.254.169.254`.
    pub imds_endpoint: Option<String>,
    /// The exchange's base URL, instead of `https://<login server>`.
    pub endpoint: Option<String>,
    /// Login server suffixes beyond Azure's own.
    pub suffixes: Vec<String>,
}

/// A workload's Entra application: its service account's annotations, else the rule's IDs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadIds {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub tenant_id_annotation: String,
    pub client_id_annotation: String,
}

/// Whose Entra token: the one the rule names, or the first the chain finds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleIdentity {
    Chain,
    ServicePrincipal(ServicePrincipal),
    ManagedIdentity(Identity),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub tenant_id: String,
    pub client_id: String,
    pub proof: SpProof,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpProof {
    SecretFile(PathBuf),
    CertificateFile(PathBuf),
}

/// An Entra access token, and the tenant to name in the exchange.
struct EntraToken {
    token: Secret,
    tenant: Option<String>,
}

impl Spec for AcrSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        match &self.identity {
            RuleIdentity::Chain => parts.push("(Azure credential chain)".to_string()),
            RuleIdentity::ServicePrincipal(sp) => {
                parts.push(format!("tenant_id={}", sp.tenant_id));
                parts.push(format!("client_id={}", sp.client_id));
                parts.push(match &sp.proof {
                    SpProof::SecretFile(f) => format!("client_secret_file={}", f.display()),
                    SpProof::CertificateFile(f) => {
                        format!("client_certificate_file={}", f.display())
                    }
                });
            }
            RuleIdentity::ManagedIdentity(Identity::ClientId(id)) => {
                parts.push(format!("client_id={id}"))
            }
            RuleIdentity::ManagedIdentity(Identity::ResourceId(id)) => {
                parts.push(format!("identity_resource_id={id}"))
            }
            RuleIdentity::ManagedIdentity(Identity::System) => {}
        }
        if let Some(f) = &self.azure_json {
            parts.push(format!("azure_json={}", f.display()));
        }
        for (key, value) in [
            ("authority_host", &self.authority_host),
            ("imds_endpoint", &self.imds_endpoint),
            ("endpoint", &self.endpoint),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        if !self.suffixes.is_empty() {
            parts.push(format!("suffixes={}", self.suffixes.join(",")));
        }
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        let secret_set = env.var("AZURE_CLIENT_SECRET").is_some();
        format!(
            "acr {self:?} {} AZURE_CLIENT_SECRET set={secret_set}",
            env.vars_text(IDENTITY_VARS)
        )
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        host::check(mint_host, &self.suffixes).map_err(|e| SourceError::local(e.to_string()))
    }

    fn max_mint_time(&self) -> Duration {
        MAX_MINT_TIME
    }

    fn workload_audience(&self) -> Option<String> {
        Some("api://AzureADTokenExchange".into())
    }

    fn workload_annotations(&self) -> Vec<String> {
        vec![
            self.workload.client_id_annotation.clone(),
            self.workload.tenant_id_annotation.clone(),
        ]
    }

    /// A workload's application: tenant and client from its annotations, else the rule's.
    fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        let w = &self.workload;
        let mut inputs = Inputs::new();
        for (name, key, default) in [
            (TENANT_ID_INPUT, &w.tenant_id_annotation, &w.tenant_id),
            (CLIENT_ID_INPUT, &w.client_id_annotation, &w.client_id),
        ] {
            let value = match (annotations.get(key), default) {
                (Some(v), _) => {
                    options::is_id(v).map_err(|why| InputError::Invalid {
                        annotation: key.clone(),
                        why,
                    })?;
                    v.clone()
                }
                (None, Some(v)) => v.clone(),
                (None, None) => {
                    return Err(InputError::Unset {
                        lead: "",
                        annotation: key.clone(),
                        fallback: format!("the rule has no {name}"),
                    });
                }
            };
            inputs.insert(name, value);
        }
        Ok(inputs)
    }
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
                    web_client(req.env, &resolver, false, &TIMEOUTS)?;
                let entra = match req.workload {
                    Some(w) => self.workload_token(req.env, &client, w, deadline).await?,
                    None => {
                        self.entra_token(req.env, &resolver, &client, deadline)
                            .await?
                    }
                };
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

impl AcrSource {
    /// The Entra token for ACR. A link that is set up but fails ends the search (falling
    /// through to another identity would hide the fault); when no link has credentials, the
    /// error names each one and why.
    async fn entra_token(
        &self,
        env: &Env,
        resolver: &Resolver,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Result<EntraToken, SourceError> {
        let imds = |identity: Identity| async move {
            let token = imds::token(
                env,
                resolver,
                self.imds_endpoint.as_deref(),
                &identity,
                RESOURCE,
                deadline,
            )
            .await?;
            Ok::<_, SourceError>(EntraToken {
                token,
                tenant: None,
            })
        };
        match &self.identity {
            RuleIdentity::ServicePrincipal(sp) => {
                let authority = self.authority(env)?;
                let secret;
                let proof = match &sp.proof {
                    SpProof::SecretFile(path) => {
                        secret = read_secret(path, env)?;
                        Proof::Secret(secret)
                    }
                    SpProof::CertificateFile(path) => Proof::CertificateFile(path),
                };
                let app = App {
                    authority: &authority,
                    tenant: &sp.tenant_id,
                    client_id: &sp.client_id,
                };
                let token = entra::token(client, env, &app, proof, SCOPE, deadline).await?;
                return Ok(EntraToken {
                    token,
                    tenant: Some(sp.tenant_id.clone()),
                });
            }
            RuleIdentity::ManagedIdentity(identity) => return imds(identity.clone()).await,
            RuleIdentity::Chain => {}
        }
        let mut chain = Chain::new("Azure");
        match self.environment_app(env, client, deadline).await {
            Some(result) => return result,
            None => chain.not_loaded(
                "environment: AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET, \
                 AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE are not all set"
                    .to_string(),
            ),
        }
        let path = self
            .azure_json
            .clone()
            .unwrap_or_else(|| PathBuf::from(azure_json::DEFAULT_PATH));
        if self.azure_json.is_some() || path.exists() {
            let node = azure_json::read(&path, env.uid())?;
            let tenant = node.tenant.clone();
            let token = match node.how {
                azure_json::How::ManagedIdentity(identity) => imds(identity).await?.token,
                azure_json::How::ServicePrincipal { client_id, secret } => {
                    let authority = match &self.authority_host {
                        Some(a) => a.as_str(),
                        None => node.authority,
                    };
                    let app = App {
                        authority,
                        // Checked present for a service principal.
                        tenant: tenant.as_deref().unwrap_or_default(),
                        client_id: &client_id,
                    };
                    entra::token(client, env, &app, Proof::Secret(secret), SCOPE, deadline).await?
                }
            };
            return Ok(EntraToken { token, tenant });
        }
        chain.not_loaded(format!("azure.json: no {}", path.display()));
        imds(Identity::System)
            .await
            .map_err(|e| chain.exhausted("managed identity", e))
    }

    /// A workload's Entra token: its application, proved by its service account token (a
    /// federated identity credential trusts the cluster's issuer).
    async fn workload_token(
        &self,
        env: &Env,
        client: &reqwest::Client,
        w: &Workload,
        deadline: Instant,
    ) -> Result<EntraToken, SourceError> {
        let tenant = w.required(TENANT_ID_INPUT)?;
        let authority = self.authority(env)?;
        let app = App {
            authority: &authority,
            tenant,
            client_id: w.required(CLIENT_ID_INPUT)?,
        };
        let proof = Proof::Assertion(w.account.token.clone());
        let token = entra::token(client, env, &app, proof, SCOPE, deadline).await?;
        Ok(EntraToken {
            token,
            tenant: Some(tenant.to_string()),
        })
    }

    /// The environment's application, as Azure's SDKs read it, if it names one.
    async fn environment_app(
        &self,
        env: &Env,
        client: &reqwest::Client,
        deadline: Instant,
    ) -> Option<Result<EntraToken, SourceError>> {
        let tenant = env.var("AZURE_TENANT_ID")?;
        let client_id = env.var("AZURE_CLIENT_ID")?;
        let proof = if let Some(s) = env.var("AZURE_CLIENT_SECRET") {
            Proof::Secret(Secret::new(s))
        } else if let Some(p) = env.var("AZURE_CLIENT_CERTIFICATE_PATH") {
            Proof::CertificateFile(Path::new(p))
        } else {
            Proof::FederatedTokenFile(Path::new(env.var("AZURE_FEDERATED_TOKEN_FILE")?))
        };
        Some(
            async {
                for (name, value) in [("AZURE_TENANT_ID", tenant), ("AZURE_CLIENT_ID", client_id)] {
                    options::is_id(value)
                        .map_err(|why| SourceError::local(format!("{name} {value:?} {why}")))?;
                }
                let authority = self.authority(env)?;
                let app = App {
                    authority: &authority,
                    tenant,
                    client_id,
                };
                let token = entra::token(client, env, &app, proof, SCOPE, deadline).await?;
                Ok(EntraToken {
                    token,
                    tenant: Some(tenant.to_string()),
                })
            }
            .await,
        )
    }

    /// The authority for an application named by the rule or the environment: the rule's
    /// `authority_host`, else `AZURE_AUTHORITY_HOST`, else the public cloud's.
    fn authority(&self, env: &Env) -> Result<String, SourceError> {
        if let Some(a) = &self.authority_host {
            return Ok(a.clone());
        }
        match env.var("AZURE_AUTHORITY_HOST") {
            Some(a) => {
                endpoint_allowed(a)
                    .map_err(|e| SourceError::local_because("AZURE_AUTHORITY_HOST", e))?;
                Ok(a.to_string())
            }
            None => Ok(entra::PUBLIC_AUTHORITY.to_string()),
        }
    }
}

/// A client secret file: the secret-file checks, one line.
fn read_secret(path: &Path, env: &Env) -> Result<Secret, SourceError> {
    let text = secret_file::read(path, env.uid())?;
    let secret = secret_file::trim_newline(&text);
    if secret.is_empty() {
        return Err(SourceError::local(format!("{}: empty", path.display())));
    }
    Ok(Secret::new(secret))
}
