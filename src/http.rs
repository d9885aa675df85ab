//! Limits every outbound HTTP client shares: the most an upstream answer may hold. A token
//! answer is a few kilobytes; an upstream (or something posing as one) that sends more is
//! cut off rather than read into memory.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The largest upstream answer read.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
struct TooLarge;

/// An AWS SDK HTTP client whose answers are cut at [`MAX_BODY_BYTES`]: by `Content-Length`
/// before reading, and by counting while reading (chunked or lying answers).
#[derive(Debug)]
pub struct LimitedClient(pub SharedHttpClient);

impl LimitedClient {
    pub fn shared(inner: SharedHttpClient) -> SharedHttpClient {
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
