//! One ECR mint, start to end: a current-thread runtime built only now (a cache hit never
//! pays for any of this), the node's credentials, an optional role, the token call; every
//! call bounded by explicit timeouts within the request's deadline.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;
use aws_sdk_ecr::config::SharedCredentialsProvider;

use super::sdk_http::SdkClients;
use super::{DEFAULT_SESSION_NAME, EcrSource, Target, credentials, sts, token};
use crate::credential::Credential;
use crate::env::Env;
use crate::resolver::Resolver;
use crate::sources::{SourceError, run_mint};
use crate::workload::Workload;

/// Upstream (ECR, STS) limits. The SDK's defaults let an endpoint that accepts a
/// connection but never answers hold a call for over 90 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
pub(super) const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
const PUBLIC_REGION: &str = "us-east-1";

pub(super) fn mint(
    source: &EcrSource,
    target: &Target,
    env: &Env,
    shared: &ProfileFiles,
    workload: Option<&Workload>,
    budget: Duration,
) -> Result<Credential, SourceError> {
    let stage = Stage::default();
    let stage = &stage;
    run_mint(
        budget,
        |resolver, limit| async move {
            mint_async(
                source, target, env, shared, workload, limit, &resolver, stage,
            )
            .await
        },
        || stage.get(),
    )
}

/// The step a mint is on, for the message when the deadline cuts it short.
#[derive(Default)]
struct Stage(std::sync::Mutex<String>);

impl Stage {
    fn set(&self, what: impl Into<String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = what.into();
    }

    fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[allow(clippy::too_many_arguments)]
async fn mint_async(
    source: &EcrSource,
    target: &Target,
    env: &Env,
    shared: &ProfileFiles,
    workload: Option<&Workload>,
    limit: Duration,
    resolver: &Resolver,
    stage: &Stage,
) -> Result<Credential, SourceError> {
    let (region, fips, dual_stack) = match target {
        Target::Private {
            region,
            fips,
            dual_stack,
            ..
        } => (region.as_str(), *fips, *dual_stack),
        Target::Public => (PUBLIC_REGION, false, false),
    };
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
    let clients =
        SdkClients::new(env, resolver, imds_host.as_slice())
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
    let mut cloud_expiry = None;
    let mut conf = if let Some(w) = workload {
        // The workload's token alone: the node's credentials are never looked up.
        let role = w.required(super::ROLE_ARN_INPUT)?;
        stage.set(format!("STS AssumeRoleWithWebIdentity {role}"));
        let conf = loader.no_credentials().load().await;
        let assumed =
            sts::assume_role_with_web_identity(&conf, role, &session_name(w), &w.account.token)
                .await?;
        cloud_expiry = assumed.expiry();
        conf.into_builder()
            .credentials_provider(SharedCredentialsProvider::new(assumed))
            .build()
    } else {
        stage.set("AWS credentials");
        let node_credentials =
            credentials::node_credentials(source, &clients, shared, &region, &timeouts, &retries)
                .await?;
        let mut loader =
            loader.credentials_provider(SharedCredentialsProvider::new(node_credentials));
        if let Some(profile) = &source.profile {
            loader = loader.profile_name(profile);
        }
        loader.load().await
    };
    if let Some(role) = source.assume_role.as_ref().filter(|_| workload.is_none()) {
        stage.set(format!("STS AssumeRole {}", role.role_arn));
        let assumed = sts::assume_role(&conf, role).await?;
        conf = conf
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(assumed))
            .build();
    }

    let (token, expires_at) = match target {
        Target::Private { account, .. } => {
            // An explicit endpoint replaces the endpoint choice, FIPS and dual-stack included;
            // the SDK refuses both at once.
            let overridden = source.endpoint.is_some()
                || conf.endpoint_url().is_some()
                || env.var("AWS_ENDPOINT_URL_ECR").is_some();
            let (fips, dual_stack) = (fips && !overridden, dual_stack && !overridden);
            stage.set("ECR GetAuthorizationToken");
            token::private_token(source, &conf, account.as_deref(), fips, dual_stack).await?
        }
        Target::Public => {
            stage.set("ECR Public GetAuthorizationToken");
            token::public_token(&conf).await?
        }
    };
    let mut credential = token::decode_token(&token, expires_at, env.now())?;
    // A workload's token is kept no longer than the role session it was got with.
    if let (Some(session), Some(token)) = (cloud_expiry, credential.expires_at) {
        credential.expires_at = Some(token.min(session));
    }
    Ok(credential)
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
