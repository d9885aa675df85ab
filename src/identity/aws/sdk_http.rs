//! The AWS SDK's HTTP clients for one mint: the SDK's own connector on rustls and
//! aws-lc-rs, pullcred's resolver, the proxy variables (metadata endpoints always direct),
//! and answers cut at the shared body limit.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::env::Env;
use crate::http::{MAX_BODY_BYTES, TooLarge};
use crate::proxy::ProxySettings;
use crate::resolver::Resolver;

/// The HTTP clients of one mint for the AWS SDK: upstream calls go through the configured
/// proxy; metadata endpoints (and `extra_direct` hosts, e.g. an overridden one) never do.
pub struct SdkClients {
    pub upstream: SharedHttpClient,
    pub direct: SharedHttpClient,
}

impl SdkClients {
    /// Fails only on proxy settings that are not URLs.
    pub fn new(env: &Env, resolver: &Resolver, extra_direct: &[&str]) -> Result<Self, ProxyError> {
        let settings = ProxySettings::from_env(env, extra_direct);
        Ok(SdkClients {
            upstream: sdk_client(proxy_config(&settings)?, resolver.clone()),
            direct: sdk_client(ProxyConfig::disabled(), resolver.clone()),
        })
    }
}

/// Proxy settings the SDK's client does not take.
#[derive(Debug, thiserror::Error)]
#[error("proxy settings: {0}")]
pub struct ProxyError(#[source] aws_smithy_http_client::proxy::ProxyError);

fn proxy_config(p: &ProxySettings) -> Result<ProxyConfig, ProxyError> {
    let config = match (&p.https, &p.http) {
        (None, None) => return Ok(ProxyConfig::disabled()),
        (Some(s), Some(h)) if s == h => ProxyConfig::all(s.as_str()).map_err(ProxyError)?,
        // The SDK takes one proxy per client; every AWS endpoint is https, so that one wins.
        (Some(s), _) => ProxyConfig::https(s.as_str()).map_err(ProxyError)?,
        (None, Some(h)) => ProxyConfig::http(h.as_str()).map_err(ProxyError)?,
    };
    Ok(config.no_proxy(&p.no_proxy))
}

fn sdk_client(proxy: ProxyConfig, resolver: Resolver) -> SharedHttpClient {
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

/// An AWS SDK HTTP client whose answers are cut at [`MAX_BODY_BYTES`]: by `Content-Length`
/// before reading, and by counting while reading (chunked or lying answers).
#[derive(Debug)]
struct LimitedClient(SharedHttpClient);

impl LimitedClient {
    fn shared(inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(LimitedClient(inner))
    }
}

impl HttpClient for LimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(LimitedConnector(
            self.0.http_connector(settings, components),
        ))
    }
}

#[derive(Debug)]
struct LimitedConnector(SharedHttpConnector);

impl HttpConnector for LimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let pending = self.0.call(request);
        HttpConnectorFuture::new(async move {
            let response = pending.await?;
            let declared = response
                .headers()
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
                return Err(ConnectorError::other(Box::new(TooLarge), None));
            }
            Ok(response.map(|body| {
                use http_body_util::BodyExt;
                let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES).map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        Box::new(TooLarge) as Box<dyn std::error::Error + Send + Sync>
                    } else {
                        e
                    }
                });
                SdkBody::from_body_1_x(limited)
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            proxy_config(&bad)
                .unwrap_err()
                .to_string()
                .starts_with("proxy settings: ")
        );
    }
}
