//! The node's own AWS credentials: the default chain's providers, walked here in its order
//! so that a failure names every provider tried and why each had nothing.

use std::time::Duration;

use aws_config::Region;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_credential_types::Credentials;
use aws_runtime::env_config::file::EnvConfigFiles as ProfileFiles;

use super::errors::causes;
use super::sdk_http::SdkClients;
use crate::failure::SourceError;

/// IMDS is link-local: on EC2 it answers in milliseconds, and off EC2 waiting longer only
/// delays the error. One attempt, short timeouts (the SDK's defaults cost 1 s per probe).
const IMDS_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IMDS_READ_TIMEOUT: Duration = Duration::from_millis(700);
const IMDS_OPERATION_TIMEOUT: Duration = Duration::from_secs(1);

/// The node's own credentials, from the default chain's sources in its order: environment,
/// shared config and credentials files (incl. `credential_process` and SSO), web identity
/// (IRSA), ECS / EKS Pod Identity, EC2 IMDS. Walked here rather than by the SDK's chain so
/// that a failure names every source tried and why each gave nothing.
pub(super) async fn node_credentials(
    profile_name: Option<&str>,
    clients: &SdkClients,
    shared: &ProfileFiles,
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
    // The checked contents, never the paths: see `shared_files`.
    let profile = profile::ProfileFileCredentialsProvider::builder()
        .configure(&conf)
        .profile_files(shared.clone());
    if let Some(name) = profile_name {
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

/// Why a link of the chain had nothing, in the operator's words where the SDK's are its own
/// internals ("the credential provider was not enabled"): what it looked for.
fn not_loaded(link: &str, sdk: String) -> String {
    const SDK_INTERNAL: [&str; 3] = [
        "the credential provider was not enabled",
        "environment variable not set",
        "ECS provider not configured",
    ];
    if !SDK_INTERNAL.iter().any(|s| sdk.starts_with(s)) {
        return sdk;
    }
    match link {
        "environment" => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set".into(),
        "profile" => "no credentials in the shared config and credentials files \
                      (~/.aws/config, ~/.aws/credentials, or those AWS_CONFIG_FILE and \
                      AWS_SHARED_CREDENTIALS_FILE name): there are none, or the profile has no \
                      keys, role_arn or credential_process"
            .into(),
        "ECS/EKS container" => {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
             are not set"
                .into()
        }
        _ => sdk,
    }
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
                tried.push(format!("{name}: {}", not_loaded(name, causes(&e))));
            }
            // A source that is set up but fails ends the search, as in the SDK's chain:
            // falling through to another identity would hide the fault.
            Err(e) => {
                tried.push(format!("{name}: {}", causes(&e)));
                let text = format!("no AWS credentials (tried {})", tried.join("; "));
                return Err(match e {
                    CredentialsError::InvalidConfiguration(_) => SourceError::local(text),
                    _ => SourceError::transient(text),
                });
            }
        }
    }
    Err(SourceError::local(format!(
        "no AWS credentials (tried {})",
        tried.join("; ")
    )))
}
