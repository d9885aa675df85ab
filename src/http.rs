//! The outbound HTTP clients every source shares: name resolution without the C library
//! (`resolver`), proxy rules with metadata endpoints always direct (`proxy`), rustls on
//! aws-lc-rs, and a limit on how much an upstream answer may hold (a token answer is a few
//! kilobytes; an upstream, or something posing as one, that sends more is cut off rather
//! than read into memory). Timeouts are each caller's, set per operation.

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
use crate::proxy::ProxySettings;
use crate::resolver::Resolver;

/// The largest upstream answer read.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The HTTP clients of one mint for the AWS SDK: upstream calls go through the configured
/// proxy; metadata endpoints (and `extra_direct` hosts, e.g. an overridden one) never do.
pub struct SdkClients {
    pub upstream: SharedHttpClient,
    pub direct: SharedHttpClient,
}

impl SdkClients {
    /// Fails only on proxy settings that are not URLs.
    pub fn new(env: &Env, resolver: &Resolver, extra_direct: &[&str]) -> Result<Self, String> {
        let settings = ProxySettings::from_env(env, extra_direct);
        Ok(SdkClients {
            upstream: sdk_client(proxy_config(&settings)?, resolver.clone()),
            direct: sdk_client(ProxyConfig::disabled(), resolver.clone()),
        })
    }
}

fn proxy_config(p: &ProxySettings) -> Result<ProxyConfig, String> {
    let bad = |e: aws_smithy_http_client::proxy::ProxyError| format!("proxy settings: {e}");
    let config = match (&p.https, &p.http) {
        (None, None) => return Ok(ProxyConfig::disabled()),
        (Some(s), Some(h)) if s == h => ProxyConfig::all(s.as_str()).map_err(bad)?,
        // The SDK takes one proxy per client; every AWS endpoint is https, so that one wins.
        (Some(s), _) => ProxyConfig::https(s.as_str()).map_err(bad)?,
        (None, Some(h)) => ProxyConfig::http(h.as_str()).map_err(bad)?,
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

/// Per-request limits of a [`web_client`]; every call is also bounded by the request's
/// deadline by its caller.
pub struct WebTimeouts {
    pub connect: std::time::Duration,
    /// Between reads of the answer.
    pub read: std::time::Duration,
    /// One attempt, from connecting to the last byte.
    pub attempt: std::time::Duration,
}

/// An HTTP client for the sources that are not the AWS SDK's: reqwest on the same rustls
/// and aws-lc-rs, the same resolver, and the proxy variables from `env`, except with
/// `direct` (metadata endpoints), which never use a proxy.
pub fn web_client(
    env: &Env,
    resolver: &Resolver,
    direct: bool,
    timeouts: &WebTimeouts,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(resolver.clone()))
        .connect_timeout(timeouts.connect)
        .read_timeout(timeouts.read)
        .timeout(timeouts.attempt)
        .redirect(reqwest::redirect::Policy::none());
    if !direct {
        let settings = ProxySettings::from_env(env, &[]);
        let no_proxy = reqwest::NoProxy::from_string(&settings.no_proxy);
        let bad = |e: reqwest::Error| format!("proxy settings: {e}");
        if let Some(p) = &settings.https {
            builder = builder.proxy(
                reqwest::Proxy::https(p)
                    .map_err(bad)?
                    .no_proxy(no_proxy.clone()),
            );
        }
        if let Some(p) = &settings.http {
            builder = builder.proxy(reqwest::Proxy::http(p).map_err(bad)?.no_proxy(no_proxy));
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot set up HTTP: {e}"))
}

/// An answer's body, read no further than [`MAX_BODY_BYTES`].
pub async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(TooLarge.to_string());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("unreadable answer: {}", web_error_text(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TooLarge.to_string());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest failure as a short phrase of what went wrong, with its causes.
pub fn web_error_text(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind}: {}", crate::logging::error_chain(cause)),
        None => kind.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
struct TooLarge;

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
                .starts_with("proxy settings: ")
        );
    }
}
