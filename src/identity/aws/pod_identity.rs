//! EKS Pod Identity: a workload's service account token (audience
//! `pods.eks.amazonaws.com`) traded by EKS Auth's `AssumeRoleForPodIdentity` for the role
//! its pod identity association names. As EKS Auth's API reference documents it:
//! `POST /clusters/<cluster>/assume-role-for-pod-identity` with `{"token": …}`, signed
//! (SigV4, service `eks-auth`) with the node's credentials (`eks-auth:AssumeRoleForPodIdentity`,
//! which `AmazonEKSWorkerNodePolicy` grants); the answer's `credentials` (`accessKeyId`,
//! `secretAccessKey`, `sessionToken`, `expiration` in epoch seconds) and `subject` (the
//! service account, checked to be the token's).

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use serde::Deserialize;

use crate::env::Env;
use crate::failure::SourceError;
use crate::http::{Call, CallError, Unreadable, WebTimeouts, web_client};
use crate::resolver::Resolver;
use crate::workload::Workload;

/// The audience EKS Auth takes a service account token for.
pub const AUDIENCE: &str = "pods.eks.amazonaws.com";
const SERVICE: &str = "eks-auth";
const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_EKS_AUTH";
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

/// A rule's pod identity: the cluster, and where to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodIdentity {
    pub cluster: String,
    /// EKS Auth's region; `None`: the node's (`AWS_REGION`), else the mint's.
    pub region: Option<String>,
    /// EKS Auth's base URL instead of `https://eks-auth.<region>.<dual-stack suffix>`.
    pub endpoint: Option<String>,
}

/// A cluster name as EKS takes it.
pub fn is_cluster(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why no role came of the exchange.
pub enum Refusal {
    /// The service account has no pod identity association (`ResourceNotFoundException`).
    NoAssociation(SourceError),
    Other(SourceError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    credentials: AnswerCredentials,
    subject: Subject,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    namespace: String,
    service_account: String,
}

impl PodIdentity {
    fn region(&self, env: &Env, mint_region: &str) -> String {
        self.region
            .clone()
            .or_else(|| {
                env.var("AWS_REGION")
                    .or_else(|| env.var("AWS_DEFAULT_REGION"))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| mint_region.to_string())
    }

    fn base(&self, env: &Env, region: &str) -> Result<String, SourceError> {
        if let Some(e) = &self.endpoint {
            return Ok(e.clone());
        }
        for var in [ENDPOINT_VAR, "AWS_ENDPOINT_URL"] {
            if let Some(url) = env.var(var) {
                crate::http::endpoint_allowed(url)
                    .map_err(|e| SourceError::local_because(var, e))?;
                return Ok(url.trim_end_matches('/').to_string());
            }
        }
        let fips = env
            .var("AWS_USE_FIPS_ENDPOINT")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let suffix = super::partition::dns_suffix(region)
            .and_then(super::partition::dual_stack_suffix)
            .ok_or_else(|| {
                SourceError::local(format!(
                    "EKS Auth: region {region} has no EKS Auth endpoint (set eks_auth_endpoint)"
                ))
            })?;
        let service = if fips { "eks-auth-fips" } else { "eks-auth" };
        Ok(format!("https://{service}.{region}.{suffix}"))
    }

    /// The role credentials for `w`, asked for with the node's `node` credentials.
    pub async fn assume(
        &self,
        node: Credentials,
        w: &Workload,
        env: &Env,
        resolver: &Resolver,
        mint_region: &str,
        deadline: Instant,
    ) -> Result<Credentials, Refusal> {
        let other = Refusal::Other;
        let region = self.region(env, mint_region);
        let base = self.base(env, &region).map_err(other)?;
        let url = format!(
            "{base}/clusters/{}/assume-role-for-pod-identity",
            self.cluster
        );
        let body = serde_json::json!({ "token": w.account.token.expose() }).to_string();
        let post = super::SignedPost::new(
            node,
            (SERVICE, &region),
            url,
            &[("content-type", "application/json")],
            body,
            env.now(),
        )
        .map_err(other)?;
        let client =
            web_client(env, resolver, false, &TIMEOUTS).map_err(|e| Refusal::Other(e.into()))?;
        let account = w.account.id();
        let what = format!(
            "EKS Pod Identity AssumeRoleForPodIdentity (cluster {}, service account {account})",
            self.cluster
        );
        let call = Call {
            what: &what,
            attempts: crate::http::MAX_ATTEMPTS,
            deadline,
            transient: |status, body| {
                status == 429
                    || status >= 500
                    || super::error_type(body).is_some_and(|t| t.contains("Throttl"))
            },
            // restJson1: ResourceNotFoundException is a 404, its type in the
            // `x-amzn-errortype` header (or the body). EKS Auth in a region without the
            // cluster answers so too: `pod_identity_region` (or AWS_REGION) names the
            // cluster's region when the registries pulled are elsewhere.
            absent: |status, body| {
                status == 404
                    || super::error_type(body).is_some_and(|t| t == "ResourceNotFoundException")
            },
            explain: super::refusal,
        };
        let answer = call
            .fetch(
                || post.request(&client),
                |_| Ok(()),
                |bytes| {
                    serde_json::from_slice::<Answer>(bytes)
                        .map_err(|_| Unreadable::Not("pod identity credentials"))
                },
            )
            .await
            .map_err(|e| match e {
                CallError::Absent(_) => Refusal::NoAssociation(SourceError::from(e)),
                e => Refusal::Other(e.into()),
            })?;
        if answer.subject.namespace != w.account.namespace
            || answer.subject.service_account != w.account.name
        {
            return Err(Refusal::Other(SourceError::denied(format!(
                "{what}: the answer is for {}/{}, not the token's service account",
                answer.subject.namespace, answer.subject.service_account
            ))));
        }
        let c = answer.credentials;
        let expiry = (c.expiration.is_finite() && c.expiration > 0.0)
            .then(|| crate::units::unix_seconds(c.expiration as u64))
            .flatten()
            .filter(|e| *e > SystemTime::UNIX_EPOCH);
        Ok(Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            Some(c.session_token),
            expiry,
            "pullcred-pod-identity",
        ))
    }
}
