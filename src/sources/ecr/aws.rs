//! The AWS SDK side of the `ecr` source: HTTP clients with explicit timeouts and proxy rules,
//! the credential chain, role assumption with STS, `GetAuthorizationToken`, and turning SDK
//! errors into one-line `SourceError`s. Runs on a current-thread runtime built per mint, so a
//! cache hit never pays for any of it.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecr::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use base64::Engine;

use super::{AssumeRole, EcrSource, Target};
use crate::credential::{Credential, Secret};
use crate::env::Env;
use crate::http::LimitedClient;
use crate::proxy::ProxySettings;
use crate::resolver::Resolver;
use crate::sources::SourceError;

/// Upstream (ECR, STS) limits. The SDK's defaults let an endpoint that accepts a
/// connection but never answers hold a call for over 90 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
pub(super) const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_ATTEMPTS: u32 = 3;
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// IMDS is link-local: on EC2 it answers in milliseconds, and off EC2 waiting longer only
/// delays the error. One attempt, short timeouts (the SDK's defaults cost 1 s per probe).
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IMDS_READ_TIMEOUT: Duration = Duration::from_millis(700);
const IMDS_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

/// How long an assumed-role session lasts; it is only used for one `GetAuthorizationToken`.
const ROLE_SESSION: Duration = Duration::from_secs(900);
/// ECR documents a token life of 12 hours; used only if an answer lacks `expiresAt`.
const DOCUMENTED_TOKEN_LIFE: Duration = Duration::from_secs(12 * 3600);
const PUBLIC_REGION: &str = "us-east-1";

pub(super) fn mint(
    source: &EcrSource,
    target: &Target,
    env: &Env,
    budget: Duration,
) -> Result<Credential, SourceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::Local(format!("cannot start the async runtime: {e}")))?;
    // Leave a second of the request's deadline for writing the cache and the answer.
    let limit = budget.saturating_sub(Duration::from_secs(1));
    let resolver = {
        let _inside = runtime.enter();
        Resolver::from_system()
    };
    let stage = Stage::default();
    let result = runtime.block_on(async {
        let minting = mint_async(source, target, env, limit, &resolver, &stage);
        match tokio::time::timeout(limit, minting).await {
            Ok(result) => result,
            // Say what was still awaited: a name no server answered for, or a call.
            Err(_) => Err(SourceError::Transient(format!(
                "{}: {} within {:.1}s",
                stage.get(),
                match resolver.pending() {
                    Some(name) => format!("cannot resolve {name}: no name server answered"),
                    None => "no answer".to_string(),
                },
                limit.as_secs_f64()
            ))),
        }
    });
    // Dropping the runtime would wait for any blocking task still running; the answer (or
    // the cached credential) must not wait for it.
    runtime.shutdown_background();
    result
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

async fn mint_async(
    source: &EcrSource,
    target: &Target,
    env: &Env,
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
    let clients = Clients::new(env, resolver)?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT.min(limit))
        .build();
    let retries = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF);

    stage.set("AWS credentials");
    let node_credentials = node_credentials(source, &clients, &region, &timeouts, &retries).await?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::first_try(region.clone()))
        .http_client(clients.upstream.clone())
        .timeout_config(timeouts)
        .retry_config(retries)
        .credentials_provider(SharedCredentialsProvider::new(node_credentials));
    if let Some(profile) = &source.profile {
        loader = loader.profile_name(profile);
    }
    let mut conf = loader.load().await;
    if let Some(role) = &source.assume_role {
        stage.set(format!("STS AssumeRole {}", role.role_arn));
        let assumed = assume_role(&conf, role).await?;
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
            private_token(source, &conf, account.as_deref(), fips, dual_stack).await?
        }
        Target::Public => {
            stage.set("ECR Public GetAuthorizationToken");
            public_token(&conf).await?
        }
    };
    decode_token(&token, expires_at)
}

/// The HTTP clients of one mint: upstream calls go through the configured proxy; metadata
/// endpoints never do.
struct Clients {
    upstream: SharedHttpClient,
    direct: SharedHttpClient,
}

impl Clients {
    fn new(env: &Env, resolver: &Resolver) -> Result<Self, SourceError> {
        // An overridden IMDS endpoint is still a metadata endpoint.
        let imds_host = env
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .and_then(|u| u.split("://").nth(1))
            .map(|rest| match rest.strip_prefix('[') {
                // An IPv6 literal: `[fd00:ec2::254]:80`.
                Some(v6) => v6.split(']').next().unwrap_or(""),
                None => rest.split(['/', ':']).next().unwrap_or(""),
            });
        let settings = ProxySettings::from_env(env, imds_host.as_slice());
        Ok(Clients {
            upstream: http_client(proxy_config(&settings)?, resolver.clone()),
            direct: http_client(ProxyConfig::disabled(), resolver.clone()),
        })
    }
}

fn proxy_config(p: &ProxySettings) -> Result<ProxyConfig, SourceError> {
    let bad = |e: aws_smithy_http_client::proxy::ProxyError| {
        SourceError::Local(format!("proxy settings: {e}"))
    };
    let config = match (&p.https, &p.http) {
        (None, None) => return Ok(ProxyConfig::disabled()),
        (Some(s), Some(h)) if s == h => ProxyConfig::all(s.as_str()).map_err(bad)?,
        // The SDK takes one proxy per client; every AWS endpoint is https, so that one wins.
        (Some(s), _) => ProxyConfig::https(s.as_str()).map_err(bad)?,
        (None, Some(h)) => ProxyConfig::http(h.as_str()).map_err(bad)?,
    };
    Ok(config.no_proxy(&p.no_proxy))
}

fn http_client(proxy: ProxyConfig, resolver: Resolver) -> SharedHttpClient {
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut connector = aws_smithy_http_client::Connector::builder()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(proxy.clone()));
            connector.build_with_resolver(resolver.clone())
        },
    );
    LimitedClient::shared(client)
}

/// The node's own credentials, from the default chain's sources in its order: environment,
/// shared config and credentials files (incl. `credential_process` and SSO), web identity
/// (IRSA), ECS / EKS Pod Identity, EC2 IMDS. Walked here rather than by the SDK's chain so
/// that a failure names every source tried and why each gave nothing.
async fn node_credentials(
    source: &EcrSource,
    clients: &Clients,
    region: &Region,
    timeouts: &TimeoutConfig,
    retries: &RetryConfig,
) -> Result<Credentials, SourceError> {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::{ecs, imds, profile, web_identity_token};
    use aws_credential_types::provider::ProvideCredentials;

    let conf = ProviderConfig::without_region()
        .with_region(Some(region.clone()))
        .with_timeout_config(timeouts.clone())
        .with_retry_config(retries.clone())
        .with_http_client(clients.upstream.clone());
    let imds_client = imds::Client::builder()
        .configure(&conf.clone().with_http_client(clients.direct.clone()))
        .connect_timeout(IMDS_CONNECT_TIMEOUT)
        .read_timeout(IMDS_READ_TIMEOUT)
        .operation_timeout(IMDS_OPERATION_TIMEOUT)
        .max_attempts(1)
        .build();
    let profile = profile::ProfileFileCredentialsProvider::builder().configure(&conf);
    if let Some(name) = &source.profile {
        // A rule that names a profile means that profile, not whatever else the node has.
        let only: (&str, Box<dyn ProvideCredentials>) =
            ("profile", Box::new(profile.profile_name(name).build()));
        return walk_chain([only]).await;
    }
    let chain: [(&str, Box<dyn ProvideCredentials>); 5] = [
        (
            "environment",
            Box::new(EnvironmentVariableCredentialsProvider::new()),
        ),
        ("profile", Box::new(profile.build())),
        (
            "web identity",
            Box::new(
                web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                    .configure(&conf)
                    .build(),
            ),
        ),
        (
            "ECS/EKS container",
            Box::new(
                ecs::EcsCredentialsProvider::builder()
                    .configure(&conf.clone().with_http_client(clients.direct.clone()))
                    .connect_timeout(IMDS_CONNECT_TIMEOUT)
                    .read_timeout(IMDS_READ_TIMEOUT)
                    .build(),
            ),
        ),
        (
            "EC2 IMDS",
            Box::new(
                imds::credentials::ImdsCredentialsProvider::builder()
                    .configure(&conf)
                    .imds_client(imds_client)
                    .build(),
            ),
        ),
    ];
    walk_chain(chain).await
}

/// Tries each link in order: the first with credentials wins; one that is set up but fails
/// ends the search; the error names every link tried and why it had nothing.
async fn walk_chain(
    chain: impl IntoIterator<
        Item = (
            &str,
            Box<dyn aws_credential_types::provider::ProvideCredentials>,
        ),
    >,
) -> Result<Credentials, SourceError> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut tried = Vec::new();
    for (name, provider) in chain {
        match provider.provide_credentials().await {
            Ok(credentials) => {
                tracing::debug!("AWS credentials from {name}");
                return Ok(credentials);
            }
            Err(e @ CredentialsError::CredentialsNotLoaded(_)) => {
                tried.push(format!("{name}: {}", causes(&e)));
            }
            // A source that is set up but fails ends the search, as in the SDK's chain:
            // falling through to another identity would hide the fault.
            Err(e) => {
                tried.push(format!("{name}: {}", causes(&e)));
                let text = format!("no AWS credentials (tried {})", tried.join("; "));
                return Err(match e {
                    CredentialsError::InvalidConfiguration(_) => SourceError::Local(text),
                    _ => SourceError::Transient(text),
                });
            }
        }
    }
    Err(SourceError::Local(format!(
        "no AWS credentials (tried {})",
        tried.join("; ")
    )))
}

async fn assume_role(conf: &SdkConfig, role: &AssumeRole) -> Result<Credentials, SourceError> {
    let sts = aws_sdk_sts::Client::new(conf);
    let out = sts
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(&role.session_name)
        .set_external_id(role.external_id.clone())
        .duration_seconds(ROLE_SESSION.as_secs() as i32)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("STS AssumeRole {}", role.role_arn), e))?;
    let c = out.credentials().ok_or_else(|| {
        SourceError::Transient(format!(
            "STS AssumeRole {}: the answer has no credentials",
            role.role_arn
        ))
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "pullcred-assume-role",
    ))
}

async fn private_token(
    source: &EcrSource,
    conf: &SdkConfig,
    account: Option<&str>,
    fips: bool,
    dual_stack: bool,
) -> Result<(String, Option<SystemTime>), SourceError> {
    let mut builder = aws_sdk_ecr::config::Builder::from(conf)
        .use_fips(fips)
        .use_dual_stack(dual_stack);
    if let Some(endpoint) = &source.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    let ecr = aws_sdk_ecr::Client::from_conf(builder.build());
    // Without registry ids ECR answers with one token for every registry the principal may
    // read in the region, which is what mirrors and cross-account pulls need.
    let ids = match (account, source.registry_ids.is_empty()) {
        (Some(a), false) => Some(vec![a.to_string()]),
        (None, false) => Some(source.registry_ids.clone()),
        (_, true) => None,
    };
    #[allow(deprecated)] // registryIds is deprecated but still honoured, and what we need.
    let out = ecr
        .get_authorization_token()
        .set_registry_ids(ids)
        .send()
        .await
        .map_err(|e| sdk_error("ECR GetAuthorizationToken", e))?;
    let data = out.authorization_data().first();
    token_of(
        "ECR GetAuthorizationToken",
        data.and_then(|d| d.authorization_token()),
        data.and_then(|d| d.expires_at()),
    )
}

async fn public_token(conf: &SdkConfig) -> Result<(String, Option<SystemTime>), SourceError> {
    let ecr = aws_sdk_ecrpublic::Client::new(conf);
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| sdk_error("ECR Public GetAuthorizationToken", e))?;
    let data = out.authorization_data();
    token_of(
        "ECR Public GetAuthorizationToken",
        data.and_then(|d| d.authorization_token()),
        data.and_then(|d| d.expires_at()),
    )
}

/// The token and expiry of an answer (private and public ECR shape them alike).
fn token_of(
    what: &str,
    token: Option<&str>,
    expires_at: Option<&aws_smithy_types::DateTime>,
) -> Result<(String, Option<SystemTime>), SourceError> {
    let token =
        token.ok_or_else(|| SourceError::Transient(format!("{what}: the answer has no token")))?;
    let expires = expires_at.and_then(|t| SystemTime::try_from(*t).ok());
    Ok((token.to_string(), expires))
}

/// An ECR token is base64 of `AWS:<password>`.
fn decode_token(token: &str, expires_at: Option<SystemTime>) -> Result<Credential, SourceError> {
    let garbled = || {
        SourceError::Transient("ECR answered a token that is not base64 of user:password".into())
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| garbled())?;
    let text = String::from_utf8(bytes).map_err(|_| garbled())?;
    let (user, password) = text.split_once(':').ok_or_else(garbled)?;
    if user.is_empty() || password.is_empty() {
        return Err(garbled());
    }
    Ok(Credential {
        username: user.to_string(),
        password: Secret::new(password),
        expires_at: Some(expires_at.unwrap_or_else(|| SystemTime::now() + DOCUMENTED_TOKEN_LIFE)),
    })
}

/// One line for an SDK failure: what was called, what kind of failure, and the causes. The
/// SDK's own `Display` says only "dispatch failure" or "service error".
fn sdk_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> SourceError
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match &err {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            // No error code: the body was not an AWS error at all (a proxy's or portal's
            // page, or a garbled answer).
            let Some(code) = s.err().code() else {
                return SourceError::Transient(format!(
                    "{what}: unreadable answer (HTTP {status}, not an AWS response)"
                ));
            };
            let message = s.err().message().unwrap_or("");
            let text = format!("{what}: HTTP {status} {code}: {message}");
            let throttled = code.contains("Throttl") || code == "TooManyRequestsException";
            if status >= 500 || throttled {
                SourceError::Transient(format!("{text} (gave up after {MAX_ATTEMPTS} attempts)"))
            } else {
                SourceError::Denied(text)
            }
        }
        SdkError::TimeoutError(_) => {
            SourceError::Transient(format!("{what}: no answer in time ({})", chain_text(&err)))
        }
        SdkError::DispatchFailure(d) => {
            let kind = if d.is_timeout() {
                "timed out"
            } else if d.is_io() {
                "cannot connect"
            } else {
                "request failed"
            };
            SourceError::Transient(format!("{what}: {kind}: {}", causes(&err)))
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            SourceError::Transient(format!(
                "{what}: unreadable answer (HTTP {status}): {}",
                causes(&err)
            ))
        }
        SdkError::ConstructionFailure(_) => {
            SourceError::Local(format!("{what}: {}", chain_text(&err)))
        }
        _ => SourceError::Transient(format!("{what}: {}", chain_text(&err))),
    }
}

/// An error and all its causes, on one line, without repeats.
fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The causes of an error, without its own (generic) message.
fn causes(err: &(dyn StdError + 'static)) -> String {
    match err.source() {
        Some(cause) => chain_text(cause),
        None => chain_text(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_decodes_to_user_and_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t:with:colons");
        let c = decode_token(&token, None).unwrap();
        assert_eq!(c.username, "AWS");
        assert_eq!(c.password.expose(), "s3cr3t:with:colons");
        assert!(c.expires_at.is_some());
        for bad in ["not base64!", "QVdT", "OnBhc3M="] {
            assert!(
                matches!(decode_token(bad, None), Err(SourceError::Transient(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn proxy_settings_map_to_one_sdk_proxy() {
        let https = ProxySettings {
            https: Some("http://proxy:3128".into()),
            http: None,
            no_proxy: "169.254.169.254".into(),
        };
        assert!(!proxy_config(&https).unwrap().is_disabled());
        assert!(
            proxy_config(&ProxySettings::default())
                .unwrap()
                .is_disabled()
        );
        let bad = ProxySettings {
            https: Some("not a url at all".into()),
            ..ProxySettings::default()
        };
        assert!(matches!(proxy_config(&bad), Err(SourceError::Local(_))));
    }
}
