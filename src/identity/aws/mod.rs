//! AWS credentials for a source that calls AWS: the node's default chain (walked in the
//! SDK's order), optionally a role assumed with them; or a workload's role assumed with its
//! service account token. One SDK config per mint, with pullcred's HTTP clients (resolver,
//! proxy, body limit), explicit timeouts and retries, and the shared files as checked.

mod credentials;
mod errors;
pub mod partition;
mod pod_identity;
mod sdk_http;
mod shared_files;
mod sts;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde::Deserialize;

pub use errors::sdk_error;
pub use sdk_http::SdkClients;

use crate::env::Env;
use crate::failure::SourceError;
use crate::resolver::Resolver;
use crate::rule_keys::{OptionError, Options};
use crate::workload::{IdentityMode, InputError, Inputs, Workload};

/// Upstream (STS and the calling source's service) limits. The SDK's defaults let an
/// endpoint that accepts a connection but never answers hold a call for over 90 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
pub const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The role session name when the rule names none.
pub const DEFAULT_SESSION_NAME: &str = "pullcred";

/// The environment variables that change which principal or endpoint a mint uses; part of
/// every AWS source's cache key, so that a changed node setup never reuses another's
/// credential.
pub const IDENTITY_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ROLE_ARN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_EKS_AUTH",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_REGION",
];

/// The identity keys every AWS source takes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    profile: Option<String>,
    role_arn: Option<String>,
    external_id: Option<String>,
    session_name: Option<String>,
    pod_identity_cluster: Option<String>,
    pod_identity_region: Option<String>,
    eks_auth_endpoint: Option<String>,
}

/// A rule's AWS identity: which profile, and which role to assume with the node's
/// credentials, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsIdentity {
    /// A profile of the shared AWS config files, instead of `AWS_PROFILE` / `default`.
    pub profile: Option<String>,
    pub assume_role: Option<AssumeRole>,
    /// EKS Pod Identity for workloads: their role is their association's.
    pub pod_identity: Option<PodIdentity>,
}

pub use pod_identity::PodIdentity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

impl AwsIdentity {
    pub fn from_keys(k: Keys, options: &Options<'_>) -> Result<Self, OptionError> {
        let pod_identity = match k.pod_identity_cluster.clone() {
            None => {
                for (key, v) in [
                    ("pod_identity_region", &k.pod_identity_region),
                    ("eks_auth_endpoint", &k.eks_auth_endpoint),
                ] {
                    if v.is_some() {
                        return Err(OptionError::at(
                            key,
                            format!("`{key}` needs `pod_identity_cluster`"),
                        ));
                    }
                }
                None
            }
            Some(cluster) => {
                if options.identity == IdentityMode::Node {
                    return Err(OptionError::at(
                        "pod_identity_cluster",
                        "`pod_identity_cluster` needs identity \"service-account\" or \"service-account-or-node\"",
                    ));
                }
                if !pod_identity::is_cluster(&cluster) {
                    return Err(OptionError::at(
                        "pod_identity_cluster",
                        format!(
                            "pod_identity_cluster {cluster:?} is not an EKS cluster name ([0-9A-Za-z][A-Za-z0-9_-]*, at most 100)"
                        ),
                    ));
                }
                if k.role_arn.is_some() {
                    return Err(OptionError::at(
                        "role_arn",
                        "a pod identity association names the role: `role_arn` does not apply with pod_identity_cluster",
                    ));
                }
                if let Some(r) = &k.pod_identity_region
                    && !partition::valid_region(r)
                {
                    return Err(OptionError::at(
                        "pod_identity_region",
                        format!("pod_identity_region {r:?} is not an AWS region name"),
                    ));
                }
                if let Some(e) = &k.eks_auth_endpoint {
                    crate::http::endpoint_allowed(e)
                        .map_err(|why| OptionError::at("eks_auth_endpoint", why.to_string()))?;
                }
                Some(PodIdentity {
                    cluster,
                    region: k.pod_identity_region.clone(),
                    endpoint: k
                        .eks_auth_endpoint
                        .clone()
                        .map(|e| e.trim_end_matches('/').to_string()),
                })
            }
        };
        let assume_role = match &k.role_arn {
            Some(arn) => {
                if !is_role_arn(arn) {
                    return Err(OptionError::at(
                        "role_arn",
                        format!(
                            "role_arn {arn:?} is not a role ARN (arn:<partition>:iam::<account>:role/<name>)"
                        ),
                    ));
                }
                Some(AssumeRole {
                    role_arn: arn.clone(),
                    external_id: k.external_id.clone(),
                    session_name: k
                        .session_name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
                })
            }
            None => {
                for (key, v) in [
                    ("external_id", &k.external_id),
                    ("session_name", &k.session_name),
                ] {
                    if v.is_some() {
                        return Err(OptionError::at(key, format!("`{key}` needs `role_arn`")));
                    }
                }
                None
            }
        };
        if let Some(n) = &k.session_name {
            let ok = (2..=64).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b));
            if !ok {
                return Err(OptionError::at(
                    "session_name",
                    "session_name must be 2-64 characters of letters, digits and +=,.@-_",
                ));
            }
        }
        Ok(AwsIdentity {
            profile: k.profile,
            assume_role,
            pod_identity,
        })
    }

    /// The options in effect, for `config check`; an external id is a shared secret with
    /// the role's owner, so only its presence is shown.
    pub fn describe(&self, parts: &mut Vec<String>) {
        if let Some(p) = &self.profile {
            parts.push(format!("profile={p}"));
        }
        if let Some(r) = &self.assume_role {
            parts.push(format!("role_arn={}", r.role_arn));
            if r.external_id.is_some() {
                parts.push("external_id=(set)".into());
            }
            parts.push(format!("session_name={}", r.session_name));
        }
        if let Some(p) = &self.pod_identity {
            parts.push(format!("pod_identity_cluster={}", p.cluster));
            if let Some(r) = &p.region {
                parts.push(format!("pod_identity_region={r}"));
            }
            if let Some(e) = &p.endpoint {
                parts.push(format!("eks_auth_endpoint={e}"));
            }
        }
    }

    /// The audience a workload's token must carry: EKS Auth's with pod identity, else
    /// STS's.
    pub fn workload_audience(&self) -> String {
        match &self.pod_identity {
            Some(_) => pod_identity::AUDIENCE.into(),
            None => "sts.amazonaws.com".into(),
        }
    }
}

/// An IAM role ARN: `arn:<partition>:iam::<account>:role/<name>`.
pub fn is_role_arn(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.contains(":role/") && !arn.contains(char::is_whitespace)
}

/// A workload's input (its part of the cache key): the role its token assumes.
pub const ROLE_ARN_INPUT: &str = "role_arn";
/// A workload's input with EKS Pod Identity: the cluster its association is in.
const POD_IDENTITY_INPUT: &str = "pod_identity_cluster";

/// The role a workload's token assumes: its service account's `annotation`, else the
/// rule's `role_arn`, else the environment variable `fallback_var` (if the source reads
/// one).
pub fn workload_role(
    annotations: &BTreeMap<String, String>,
    annotation: &str,
    rule: &AwsIdentity,
    fallback_var: Option<&str>,
    env: &Env,
) -> Result<Inputs, InputError> {
    // The association is the opt-in and names the role: nothing to read.
    if let Some(p) = &rule.pod_identity {
        return Ok(Inputs::from([(POD_IDENTITY_INPUT, p.cluster.clone())]));
    }
    let role = match annotations.get(annotation) {
        Some(arn) if is_role_arn(arn) => arn.clone(),
        Some(_) => {
            return Err(InputError::Invalid {
                annotation: annotation.to_string(),
                why: "is not a role ARN (arn:<partition>:iam::<account>:role/<name>)",
            });
        }
        None => match (&rule.assume_role, fallback_var.and_then(|v| env.var(v))) {
            (Some(r), _) => r.role_arn.clone(),
            (None, Some(arn)) if is_role_arn(arn) => arn.to_string(),
            _ => {
                return Err(InputError::Unset {
                    lead: "no role to assume: ",
                    annotation: annotation.to_string(),
                    fallback: match fallback_var {
                        Some(v) => format!("neither the rule's role_arn nor {v} names one"),
                        None => "the rule has no role_arn".to_string(),
                    },
                });
            }
        },
    };
    Ok(Inputs::from([(ROLE_ARN_INPUT, role)]))
}

/// The step a mint is on, for the message when the deadline cuts it short.
#[derive(Default)]
pub struct Stage(std::sync::Mutex<String>);

impl Stage {
    pub fn set(&self, what: impl Into<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = what.into();
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One mint's SDK config with credentials, and when those credentials end (a workload's
/// role session), which caps what is minted with them.
pub struct Session {
    pub conf: SdkConfig,
    pub expiry: Option<SystemTime>,
}

/// The SDK config of one mint in `region`: the workload's role assumed with its token
/// (the node's credentials are never looked up), else the node's credentials and the
/// rule's role. `limit` is what is left of the mint's time.
pub async fn session(
    identity: &AwsIdentity,
    region: &str,
    env: &Env,
    workload: Option<&Workload>,
    limit: Duration,
    resolver: &Resolver,
    stage: &Stage,
) -> Result<Session, SourceError> {
    let shared = shared_files::read(env)?;
    let region = Region::new(region.to_string());
    // An overridden IMDS endpoint is still a metadata endpoint: never through a proxy.
    let imds_host = env
        .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .and_then(|u| u.split("://").nth(1))
        .map(|rest| match rest.strip_prefix('[') {
            // An IPv6 literal: `[fd00:ec2::254]:80`.
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => rest.split(['/', ':']).next().unwrap_or(""),
        });
    let clients = SdkClients::new(env, resolver, imds_host.as_slice())
        .map_err(|e| SourceError::local(e.to_string()).caused_by(e))?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        // Past the mint's own limit: when the whole mint runs out of time, the outer timeout
        // fires first and its message names the step and any name still unresolved.
        .operation_timeout(OPERATION_TIMEOUT.min(limit + Duration::from_secs(1)))
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);

    let loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::first_try(region.clone()))
        .http_client(clients.upstream.clone())
        .timeout_config(timeouts.clone())
        .retry_config(retries.clone())
        .profile_files(shared.clone());
    let mut expiry = None;
    let node_credentials = || async {
        stage.set("AWS credentials");
        credentials::node_credentials(
            identity.profile.as_deref(),
            &clients,
            &shared,
            &region,
            &timeouts,
            &retries,
        )
        .await
    };
    // EKS Pod Identity: the node's credentials ask EKS Auth for the workload's role.
    let mut workload = workload;
    let mut pod_role = None;
    if let (Some(w), Some(p)) = (workload, &identity.pod_identity) {
        let node = node_credentials().await?;
        stage.set(format!(
            "EKS Auth AssumeRoleForPodIdentity (service account {})",
            w.account.id()
        ));
        match p
            .assume(
                node,
                w,
                env,
                resolver,
                region.as_ref(),
                deadline_after(limit),
            )
            .await
        {
            Ok(role) => pod_role = Some(role),
            Err(pod_identity::Refusal::NoAssociation(e)) if w.or_node => {
                tracing::info!(
                    "service account {}: no pod identity association ({e}); using the node's identity",
                    w.account.id()
                );
                workload = None;
            }
            Err(pod_identity::Refusal::NoAssociation(e)) => {
                return Err(SourceError::new(
                    e.kind(),
                    format!(
                        "service account {} has no pod identity association in cluster {}: {e}",
                        w.account.id(),
                        p.cluster
                    ),
                )
                .caused_by(e));
            }
            Err(pod_identity::Refusal::Other(e)) => return Err(e),
        }
    }
    let mut conf = if let Some(role) = pod_role {
        expiry = role.expiry();
        loader
            .credentials_provider(SharedCredentialsProvider::new(role))
            .load()
            .await
    } else if let Some(w) = workload {
        let role = w.required(ROLE_ARN_INPUT)?;
        stage.set(format!("STS AssumeRoleWithWebIdentity {role}"));
        let conf = loader.no_credentials().load().await;
        let assumed =
            sts::assume_role_with_web_identity(&conf, role, &session_name(w), &w.account.token)
                .await?;
        expiry = assumed.expiry();
        conf.into_builder()
            .credentials_provider(SharedCredentialsProvider::new(assumed))
            .build()
    } else {
        let node = node_credentials().await?;
        let mut loader = loader.credentials_provider(SharedCredentialsProvider::new(node));
        if let Some(profile) = &identity.profile {
            loader = loader.profile_name(profile);
        }
        loader.load().await
    };
    if let Some(role) = identity.assume_role.as_ref().filter(|_| workload.is_none()) {
        stage.set(format!("STS AssumeRole {}", role.role_arn));
        let assumed = sts::assume_role(&conf, role).await?;
        conf = conf
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(assumed))
            .build();
    }
    Ok(Session { conf, expiry })
}

/// The deadline of a step that may take at most `limit` from now.
fn deadline_after(limit: Duration) -> std::time::Instant {
    std::time::Instant::now() + limit
}

/// The credentials a session resolves to, for a call signed by hand (a service whose SDK
/// is not linked: see [`sign`]).
pub async fn credentials_of(session: &Session) -> Result<Credentials, SourceError> {
    use aws_credential_types::provider::ProvideCredentials;
    let provider = session
        .conf
        .credentials_provider()
        .ok_or_else(|| SourceError::local("no AWS credentials provider".to_string()))?;
    provider
        .provide_credentials()
        .await
        .map_err(|e| SourceError::transient(format!("AWS credentials: {}", errors::causes(&e))))
}

/// A POST to an AWS service's JSON API, signed once (SigV4, the body hashed; a signature
/// holds for minutes, longer than every attempt of a call), to send with pullcred's HTTP
/// client: for services whose SDK is not linked.
pub struct SignedPost {
    url: String,
    /// The headers sent besides `host` (which the client sets from the URL): the caller's
    /// and the signature's.
    headers: Vec<(String, String)>,
    body: String,
}

impl SignedPost {
    /// `body` to `url` for `(service, region)`, with `credentials`, at `now`.
    pub fn new(
        credentials: Credentials,
        (service, region): (&str, &str),
        url: String,
        headers: &[(&str, &str)],
        body: String,
        now: SystemTime,
    ) -> Result<Self, SourceError> {
        let host = url::Url::parse(&url)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_string();
                Some(match u.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                })
            })
            .unwrap_or_default();
        let mut all = vec![("host", host.as_str())];
        all.extend_from_slice(headers);
        let signed = sign(
            credentials,
            (service, region),
            &url,
            &all,
            body.as_bytes(),
            now,
        )?;
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain(signed)
            .collect();
        Ok(SignedPost { url, headers, body })
    }

    /// The request, built again for each attempt.
    pub fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        self.headers.iter().fold(
            client.post(&self.url).body(self.body.clone()),
            |request, (k, v)| request.header(k, v),
        )
    }
}

/// The error type of an AWS JSON answer (`__type`, or restJson1's `code`), as the protocols
/// read it: after a namespace's `#`, before any `:`.
pub fn error_type(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let t = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
    let t = t.rsplit('#').next().unwrap_or(t);
    Some(t.split(':').next().unwrap_or(t).to_string())
}

/// The refusal of an AWS JSON answer in one line: its error type and message's first line.
pub fn refusal(body: &[u8]) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let m = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
            Some(m.lines().next().unwrap_or("").to_string())
        })
        .filter(|m| !m.is_empty());
    match (error_type(body), message) {
        (Some(t), Some(m)) => format!("{t}: {m}"),
        (Some(t), None) => t,
        _ => "not an AWS error answer".into(),
    }
}

/// SigV4 headers for a POST of `body` to `url`, whose headers (`host` among them) are
/// `headers`.
fn sign(
    credentials: Credentials,
    (service, region): (&str, &str),
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now: SystemTime,
) -> Result<Vec<(String, String)>, SourceError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let cannot = |e: &dyn std::fmt::Display| SourceError::local(format!("cannot sign: {e}"));
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| cannot(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| cannot(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| cannot(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The role session's name for a workload: its namespace and service account, as far as
/// STS's 64 characters of `[\w+=,.@-]` allow, so CloudTrail says who pulled.
fn session_name(w: &Workload) -> String {
    let raw = format!("{}.{}", w.account.namespace, w.account.name);
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+=,.@-_".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if clean.len() < 2 {
        DEFAULT_SESSION_NAME.to_string()
    } else {
        clean
    }
}
