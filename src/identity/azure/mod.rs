//! Entra ID access tokens for a source that calls Azure, from the first of: the rule's
//! service principal or managed identity; the environment as Azure's SDKs read it
//! (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and a secret, a certificate or a federated token
//! file); the node's cloud config (`azure_json`); the VM's managed identity through IMDS.
//! Or, for a workload, its application proved by its service account token. The token is
//! asked for the calling source's resource, and goes only to the authority.

pub mod azure_json;
mod entra;
pub mod imds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::time::Instant;

use serde::Deserialize;

use crate::credential::Secret;
use crate::env::Env;
use crate::failure::{Chain, SourceError};
use crate::http::{WebTimeouts, endpoint_allowed};
use crate::resolver::Resolver;
use crate::rule_keys::{OptionError, Options};
use crate::secret_file;
use crate::workload::{IdentityMode, InputError, Inputs, Workload};
use entra::{App, Proof};
use imds::Identity;

/// A workload's inputs (its part of the cache key): its app registration's tenant and
/// client.
const TENANT_ID_INPUT: &str = "tenant_id";
const CLIENT_ID_INPUT: &str = "client_id";

/// The environment variables that change which identity a mint uses; part of every Azure
/// source's cache key. `AZURE_CLIENT_SECRET` counts only by being set (its value is a
/// secret): see [`Entra::cache_identity`].
const IDENTITY_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];
/// Entra ID (and the calling source's service), both across the internet.
pub const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

/// The annotations Azure's own plugin reads for a workload's application.
pub const CLIENT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-client-id";
pub const TENANT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-tenant-id";

/// What a token is asked for: the resource (IMDS's `resource=`) and its scope (Entra's
/// `scope=`, the resource's `/.default`).
pub struct Resource<'a> {
    pub resource: &'a str,
    pub scope: &'a str,
}

/// The identity keys every Azure source takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<String>,
    client_certificate_file: Option<String>,
    identity_resource_id: Option<String>,
    azure_json: Option<String>,
    authority_host: Option<String>,
    imds_endpoint: Option<String>,
    client_id_annotation: Option<String>,
    tenant_id_annotation: Option<String>,
    identity_binding_sni: Option<String>,
    identity_binding_apiserver: Option<String>,
    identity_binding_ca_file: Option<String>,
    identity_binding_path: Option<String>,
}

/// A rule's Azure identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entra {
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
    /// AKS identity bindings for workloads.
    pub binding: Option<Binding>,
}

/// AKS's identity binding (upstream's `--ib-sni-name`, `--ib-apiserver-ip`): a workload's
/// token exchanged for an Entra token at the binding endpoint behind the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The TLS server name (and `Host`) of the endpoint.
    pub sni: String,
    /// Where to connect: an IP or a name, and the port.
    pub host: String,
    pub port: u16,
    /// The CA its certificate is checked against.
    pub ca_file: PathBuf,
    /// The request path: upstream posts to `/`.
    pub path: String,
}

/// The audience of a workload's token for AKS's identity binding.
pub const BINDING_AUDIENCE: &str = "api://AKSIdentityBinding";
/// Where AKS keeps the cluster's CA.
const BINDING_CA_FILE: &str = "/etc/kubernetes/certs/ca.crt";
/// A workload's input: that it gets its Entra token from the identity binding.
const BINDING_INPUT: &str = "identity_binding";

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

/// An Entra access token, and the tenant that issued it when known.
pub struct EntraToken {
    pub token: Secret,
    pub tenant: Option<String>,
}

impl Entra {
    pub fn from_keys(keys: Keys, options: &Options<'_>) -> Result<Self, OptionError> {
        let mut o = keys;
        if let Some(t) = &o.tenant_id {
            is_id(t)
                .map_err(|why| OptionError::at("tenant_id", format!("tenant_id {t:?} {why}")))?;
        }
        if let Some(c) = &o.client_id {
            is_id(c)
                .map_err(|why| OptionError::at("client_id", format!("client_id {c:?} {why}")))?;
        }
        if let Some(r) = &o.identity_resource_id
            && !is_resource_id(r)
        {
            return Err(OptionError::at(
                "identity_resource_id",
                format!("identity_resource_id {r:?} is not a resource ID (/subscriptions/…)"),
            ));
        }
        let proof = match (&o.client_secret_file, &o.client_certificate_file) {
            (Some(_), Some(_)) => {
                return Err(OptionError::at(
                    "client_certificate_file",
                    "set one of client_secret_file and client_certificate_file",
                ));
            }
            (Some(f), None) => Some(SpProof::SecretFile(options.path(f))),
            (None, Some(f)) => Some(SpProof::CertificateFile(options.path(f))),
            (None, None) => None,
        };
        // With a workload identity, a tenant and client without a proof are the workloads'
        // defaults (their annotations win), and the node's identity is the chain's; with a
        // proof they are a service principal's, which workloads default to as well.
        let (workload_tenant_id, workload_client_id) =
            if options.identity != IdentityMode::Node && proof.is_none() {
                (o.tenant_id.take(), o.client_id.take())
            } else if proof.is_some() {
                (o.tenant_id.clone(), o.client_id.clone())
            } else {
                (None, None)
            };
        let binding = binding_of(&o, options)?;
        let identity = match (o.tenant_id, o.client_id, proof, o.identity_resource_id) {
            (Some(tenant_id), Some(client_id), Some(proof), None) => {
                RuleIdentity::ServicePrincipal(ServicePrincipal {
                    tenant_id,
                    client_id,
                    proof,
                })
            }
            (None, None, None, None) => RuleIdentity::Chain,
            (None, Some(id), None, None) => RuleIdentity::ManagedIdentity(Identity::ClientId(id)),
            (None, None, None, Some(id)) => RuleIdentity::ManagedIdentity(Identity::ResourceId(id)),
            (None, Some(_), None, Some(_)) => {
                return Err(OptionError::at(
                    "identity_resource_id",
                    "a managed identity is named by one of client_id and identity_resource_id",
                ));
            }
            (_, _, Some(_), Some(_)) => {
                return Err(OptionError::at(
                    "identity_resource_id",
                    "identity_resource_id names a managed identity; a service principal has none",
                ));
            }
            (Some(_), _, None, _) => {
                return Err(OptionError::at(
                    "tenant_id",
                    "a service principal needs tenant_id, client_id and one of client_secret_file \
                     and client_certificate_file",
                ));
            }
            (_, _, Some(_), _) => {
                return Err(OptionError::rule(
                    "a service principal needs tenant_id, client_id and one of client_secret_file \
                     and client_certificate_file",
                ));
            }
        };
        if let Some(url) = &o.authority_host {
            endpoint_allowed(url)
                .map_err(|why| OptionError::at("authority_host", why.to_string()))?;
        }
        if let Some(url) = &o.imds_endpoint {
            imds::endpoint_allowed(url)
                .map_err(|why| OptionError::at("imds_endpoint", why.to_string()))?;
        }
        let client_id_annotation = options.annotation_key(
            "client_id_annotation",
            o.client_id_annotation,
            CLIENT_ID_ANNOTATION,
        )?;
        let tenant_id_annotation = options.annotation_key(
            "tenant_id_annotation",
            o.tenant_id_annotation,
            TENANT_ID_ANNOTATION,
        )?;
        Ok(Entra {
            workload: WorkloadIds {
                tenant_id: workload_tenant_id,
                client_id: workload_client_id,
                tenant_id_annotation,
                client_id_annotation,
            },
            identity,
            azure_json: o.azure_json.as_deref().map(|f| options.path(f)),
            authority_host: o.authority_host,
            imds_endpoint: o.imds_endpoint,
            binding,
        })
    }

    /// The options in effect, for `config check`.
    pub fn describe(&self, parts: &mut Vec<String>) {
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
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        if let Some(b) = &self.binding {
            parts.push(format!(
                "identity_binding_sni={} identity_binding_apiserver={}:{} identity_binding_ca_file={}",
                b.sni,
                b.host,
                b.port,
                b.ca_file.display()
            ));
        }
    }

    /// The secret files its keys name: a service principal's secret or certificate.
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        match &self.identity {
            RuleIdentity::ServicePrincipal(sp) => vec![match &sp.proof {
                SpProof::SecretFile(f) => ("client_secret_file", f.clone()),
                SpProof::CertificateFile(f) => ("client_certificate_file", f.clone()),
            }],
            _ => Vec::new(),
        }
    }

    /// This identity's part of a cache key, with the environment it reads.
    pub fn cache_identity(&self, env: &Env) -> String {
        let secret_set = env.var("AZURE_CLIENT_SECRET").is_some();
        format!(
            "{self:?} {} AZURE_CLIENT_SECRET set={secret_set}",
            env.vars_text(IDENTITY_VARS)
        )
    }

    /// The audience a workload's token must carry: Entra's for federated credentials, or
    /// AKS's identity binding's.
    pub fn workload_audience(&self) -> Option<String> {
        Some(match &self.binding {
            Some(_) => BINDING_AUDIENCE.into(),
            None => "api://AzureADTokenExchange".into(),
        })
    }

    pub fn workload_annotations(&self) -> Vec<String> {
        vec![
            self.workload.client_id_annotation.clone(),
            self.workload.tenant_id_annotation.clone(),
        ]
    }

    /// A workload's application: tenant and client from its annotations, else the rule's.
    pub fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        let w = &self.workload;
        let mut inputs = Inputs::new();
        if self.binding.is_some() {
            inputs.insert(BINDING_INPUT, "aks".into());
        }
        for (name, key, default) in [
            (TENANT_ID_INPUT, &w.tenant_id_annotation, &w.tenant_id),
            (CLIENT_ID_INPUT, &w.client_id_annotation, &w.client_id),
        ] {
            let value = match (annotations.get(key), default) {
                // The binding's exchange names the tenant its token says when nothing else
                // does.
                (None, None) if self.binding.is_some() && name == TENANT_ID_INPUT => continue,
                (Some(v), _) => {
                    is_id(v).map_err(|why| InputError::Invalid {
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

    /// An Entra token for `resource`: the workload's application when there is a workload,
    /// else the node's identity.
    pub async fn token(
        &self,
        env: &Env,
        resolver: &Resolver,
        client: &reqwest::Client,
        workload: Option<&Workload>,
        resource: &Resource<'_>,
        deadline: Instant,
    ) -> Result<EntraToken, SourceError> {
        match workload {
            Some(w) if w.input(BINDING_INPUT).is_some() => {
                self.binding_token(env, resolver, w, resource, deadline)
                    .await
            }
            Some(w) => {
                self.workload_token(env, client, w, resource, deadline)
                    .await
            }
            None => {
                self.entra_token(env, resolver, client, resource, deadline)
                    .await
            }
        }
    }

    /// The Entra token for ACR. A link that is set up but fails ends the search (falling
    /// through to another identity would hide the fault); when no link has credentials, the
    /// error names each one and why.
    async fn entra_token(
        &self,
        env: &Env,
        resolver: &Resolver,
        client: &reqwest::Client,
        resource: &Resource<'_>,
        deadline: Instant,
    ) -> Result<EntraToken, SourceError> {
        let imds = |identity: Identity| async move {
            let token = imds::token(
                env,
                resolver,
                self.imds_endpoint.as_deref(),
                &identity,
                resource.resource,
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
                let token =
                    entra::token(client, env, &app, proof, resource.scope, deadline).await?;
                return Ok(EntraToken {
                    token,
                    tenant: Some(sp.tenant_id.clone()),
                });
            }
            RuleIdentity::ManagedIdentity(identity) => return imds(identity.clone()).await,
            RuleIdentity::Chain => {}
        }
        let mut chain = Chain::new("Azure");
        match self.environment_app(env, client, resource, deadline).await {
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
                    entra::token(
                        client,
                        env,
                        &app,
                        Proof::Secret(secret),
                        resource.scope,
                        deadline,
                    )
                    .await?
                }
            };
            return Ok(EntraToken { token, tenant });
        }
        chain.not_loaded(format!("azure.json: no {}", path.display()));
        imds(Identity::System)
            .await
            .map_err(|e| chain.exhausted("managed identity", e))
    }

    /// A workload's Entra token from AKS's identity binding: the client credentials form
    /// with the service account token as its assertion, posted over TLS to the API server's
    /// address with the binding's server name, its certificate checked against the cluster
    /// CA, no proxy.
    async fn binding_token(
        &self,
        env: &Env,
        resolver: &Resolver,
        w: &Workload,
        resource: &Resource<'_>,
        deadline: Instant,
    ) -> Result<EntraToken, SourceError> {
        let b = self
            .binding
            .as_ref()
            .ok_or_else(|| SourceError::local("no identity binding".into()))?;
        let account = w.account.id();
        let ca = secret_file::read_trusted(&b.ca_file, env.uid(), "identity binding CA file")?;
        let client = crate::http::web_client_pinned(
            env,
            resolver,
            &TIMEOUTS,
            ca.as_bytes(),
            &b.sni,
            &b.host,
        )
        .map_err(|e| SourceError::local_because(b.ca_file.display(), e))?;
        let url = format!("https://{}:{}{}", b.sni, b.port, b.path);
        let client_id = w.required(CLIENT_ID_INPUT)?;
        let what = format!(
            "AKS identity binding {}:{} ({}, service account {account}, client {client_id})",
            b.host, b.port, b.sni
        );
        let token = crate::oauth::call(&what, crate::http::MAX_ATTEMPTS, deadline)
            .fetch(
                || {
                    client.post(&url).header("host", b.sni.as_str()).form(&[
                        ("grant_type", "client_credentials"),
                        ("client_id", client_id),
                        ("scope", resource.scope),
                        ("client_assertion_type", entra::ASSERTION_TYPE),
                        ("client_assertion", w.account.token.expose()),
                    ])
                },
                |_| Ok(()),
                crate::oauth::access_token,
            )
            .await?;
        Ok(EntraToken {
            token: Secret::new(token),
            tenant: w.input(TENANT_ID_INPUT).map(str::to_string),
        })
    }

    /// A workload's Entra token: its application, proved by its service account token (a
    /// federated identity credential trusts the cluster's issuer).
    async fn workload_token(
        &self,
        env: &Env,
        client: &reqwest::Client,
        w: &Workload,
        resource: &Resource<'_>,
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
        let token = entra::token(client, env, &app, proof, resource.scope, deadline).await?;
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
        resource: &Resource<'_>,
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
                    is_id(value)
                        .map_err(|why| SourceError::local(format!("{name} {value:?} {why}")))?;
                }
                let authority = self.authority(env)?;
                let app = App {
                    authority: &authority,
                    tenant,
                    client_id,
                };
                let token =
                    entra::token(client, env, &app, proof, resource.scope, deadline).await?;
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

/// The identity binding a rule's keys name, if any.
fn binding_of(o: &Keys, options: &Options<'_>) -> Result<Option<Binding>, OptionError> {
    let (sni, apiserver) = match (&o.identity_binding_sni, &o.identity_binding_apiserver) {
        (None, None) => {
            for (key, v) in [
                ("identity_binding_ca_file", &o.identity_binding_ca_file),
                ("identity_binding_path", &o.identity_binding_path),
            ] {
                if v.is_some() {
                    return Err(OptionError::at(
                        key,
                        format!("`{key}` needs `identity_binding_sni`"),
                    ));
                }
            }
            return Ok(None);
        }
        (None, Some(_)) => {
            return Err(OptionError::at(
                "identity_binding_apiserver",
                "`identity_binding_apiserver` needs `identity_binding_sni`",
            ));
        }
        (Some(_), None) => {
            return Err(OptionError::at(
                "identity_binding_sni",
                "`identity_binding_sni` needs `identity_binding_apiserver` (the API server's IP or name)",
            ));
        }
        (Some(sni), Some(apiserver)) => (sni, apiserver),
    };
    if options.identity == IdentityMode::Node {
        return Err(OptionError::at(
            "identity_binding_sni",
            "`identity_binding_sni` needs identity \"service-account\" or \"service-account-or-node\"",
        ));
    }
    let sni = sni.to_ascii_lowercase();
    if !is_dns_name(&sni) {
        return Err(OptionError::at(
            "identity_binding_sni",
            format!("identity_binding_sni {sni:?} is not a DNS name (no scheme, no port)"),
        ));
    }
    let (host, port) = host_port(apiserver).ok_or_else(|| {
        OptionError::at(
            "identity_binding_apiserver",
            format!(
                "identity_binding_apiserver {apiserver:?} is not an IP or a name, with an optional :port"
            ),
        )
    })?;
    let path = o
        .identity_binding_path
        .clone()
        .unwrap_or_else(|| "/".into());
    let path_ok = path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
        && !path.contains("..");
    if !path_ok {
        return Err(OptionError::at(
            "identity_binding_path",
            format!("identity_binding_path {path:?} is not a path"),
        ));
    }
    let ca_file = o
        .identity_binding_ca_file
        .as_deref()
        .unwrap_or(BINDING_CA_FILE);
    Ok(Some(Binding {
        sni,
        host,
        port,
        ca_file: options.path(ca_file),
        path,
    }))
}

/// A DNS name: labels of letters, digits and dashes.
fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `host[:port]` (an IP, `[v6]:port`, or a name; port 443 by default).
fn host_port(s: &str) -> Option<(String, u16)> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some((ip.to_string(), 443));
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some((sock.ip().to_string(), sock.port()));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (s, 443),
    };
    let host = host.to_ascii_lowercase();
    is_dns_name(&host).then_some((host, port))
}

/// A tenant or client ID as it goes into a URL path or a form: a GUID, or (tenants) a
/// domain name such as `contoso.onmicrosoft.com`.
pub fn is_id(s: &str) -> Result<(), &'static str> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !s.starts_with('.')
        && !s.contains("..");
    ok.then_some(())
        .ok_or("is not a GUID or domain name (letters, digits, '-' and '.')")
}

/// An Azure resource ID of a user-assigned identity: a path under `/subscriptions/`.
pub fn is_resource_id(s: &str) -> bool {
    s.to_ascii_lowercase().starts_with("/subscriptions/")
        && s.len() <= 1024
        && !s.contains(|c: char| c.is_whitespace() || c.is_control() || "?#&%".contains(c))
}
