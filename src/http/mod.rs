//! The outbound HTTP client the web sources share (the AWS SDK's is `ecr`'s, built on the
//! same parts): name resolution without the C library
//! (`resolver`), proxy rules with metadata endpoints always direct (`proxy`), rustls on
//! aws-lc-rs, and a limit on how much an upstream answer may hold (a token answer is a few
//! kilobytes; an upstream, or something posing as one, that sends more is cut off rather
//! than read into memory). Timeouts are each caller's, set per operation; the retrying
//! call is `call`, the rule of where a credential may be sent `endpoint`.

mod call;
mod endpoint;

pub use call::{Call, CallError, MAX_ATTEMPTS, Unreadable, fetch_text};
pub use endpoint::{EndpointError, endpoint_allowed, endpoint_allowed_with, endpoint_signed};

use crate::env::Env;
use crate::proxy::ProxySettings;
use crate::resolver::Resolver;

/// The largest upstream answer read.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// An answer over [`MAX_BODY_BYTES`], cut off.
#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
pub struct TooLarge;

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
) -> Result<reqwest::Client, ClientError> {
    builder(env, resolver, direct, timeouts)?
        .build()
        .map_err(ClientError::Build)
}

/// A [`web_client`] (through the proxy) that trusts only the CA certificates of `ca_pem`
/// (a PEM bundle an operator named for a private service, as `VAULT_CACERT` is for Vault).
pub fn web_client_trusting(
    env: &Env,
    resolver: &Resolver,
    timeouts: &WebTimeouts,
    ca_pem: &[u8],
) -> Result<reqwest::Client, ClientError> {
    let roots = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(ClientError::Roots)?;
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    builder(env, resolver, false, timeouts)?
        .tls_certs_only(roots)
        .build()
        .map_err(ClientError::Build)
}

/// A direct client (no proxy) for one name served at an address of its own: requests to
/// `https://<name>[:port]/` connect to `address` (an IP, or a name looked up with the
/// node's resolver), present `name` as TLS SNI and check the certificate for `name` against
/// `ca_pem` alone. For a service reached by address whose certificate is for another name
/// (AKS's identity binding behind the API server).
pub fn web_client_pinned(
    env: &Env,
    resolver: &Resolver,
    timeouts: &WebTimeouts,
    ca_pem: &[u8],
    name: &str,
    address: &str,
) -> Result<reqwest::Client, ClientError> {
    let roots = reqwest::Certificate::from_pem_bundle(ca_pem).map_err(ClientError::Roots)?;
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    let pinned = Pinned {
        name: name.to_ascii_lowercase(),
        address: address.to_string(),
        inner: resolver.clone(),
    };
    builder(env, resolver, true, timeouts)?
        .dns_resolver(std::sync::Arc::new(pinned))
        .tls_certs_only(roots)
        .build()
        .map_err(ClientError::Build)
}

/// Resolves one name as another address, and nothing else.
struct Pinned {
    name: String,
    address: String,
    inner: Resolver,
}

impl reqwest::dns::Resolve for Pinned {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let asked = name.as_str().to_ascii_lowercase();
        let (ours, address, inner) = (self.name.clone(), self.address.clone(), self.inner.clone());
        Box::pin(async move {
            if asked != ours {
                return Err(format!("{asked} is not {ours}: nothing else is reached here").into());
            }
            let ips = inner.lookup(&address).await?;
            let sockets: Vec<std::net::SocketAddr> =
                ips.into_iter().map(|ip| (ip, 0).into()).collect();
            Ok(Box::new(sockets.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

fn builder(
    env: &Env,
    resolver: &Resolver,
    direct: bool,
    timeouts: &WebTimeouts,
) -> Result<reqwest::ClientBuilder, ClientError> {
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
        let bad = ClientError::Proxy;
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
    Ok(builder)
}

/// Why no [`web_client`] could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("proxy settings: {0}")]
    Proxy(#[source] reqwest::Error),
    #[error("cannot set up HTTP: {0}")]
    Build(#[source] reqwest::Error),
    #[error("CA certificates: not PEM certificates ({0})")]
    Roots(#[source] reqwest::Error),
    #[error("CA certificates: the file holds no certificate")]
    NoRoots,
}

/// Why an answer's body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("unreadable answer: {}", web_error_text(.0))]
    Broken(#[source] reqwest::Error),
}

/// An answer's body, read no further than [`MAX_BODY_BYTES`].
pub async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(TooLarge.into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Broken)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(TooLarge.into());
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
