//! Managed identity through the Azure Instance Metadata Service, as Azure documents it:
//! `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with the header
//! `Metadata: true` (IMDS refuses requests without it, its guard against request forgery),
//! plus `client_id=` or `msi_res_id=` for a user-assigned identity. Never through a proxy.
//! Off Azure nothing answers on the link-local address, so connecting fails fast.

use std::time::{Duration, Instant};

use crate::credential::Secret;
use crate::env::Env;
use crate::failure::SourceError;
use crate::http::Call;
use crate::http::{WebTimeouts, web_client};
use crate::oauth::access_token;
use crate::resolver::Resolver;

/// IMDS's address on every Azure VM; `imds_endpoint` or `AZURE_POD_IDENTITY_AUTHORITY_HOST`
/// (as Azure's SDKs read it) replace it.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
const IMDS_IP: &str = "169.254.169.254";
const PATH: &str = "/metadata/identity/oauth2/token";
/// Two attempts of at most 400 ms to connect: off Azure, the chain gives up within a second.
const ATTEMPTS: u32 = 2;
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_millis(400),
    read: Duration::from_secs(4),
    attempt: Duration::from_secs(5),
};

/// Which managed identity: the VM's own, or a user-assigned one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    System,
    ClientId(String),
    ResourceId(String),
}

/// Plain http only to IMDS's own address or this machine; anything else `https://`.
pub fn endpoint_allowed(url: &str) -> Result<(), crate::http::EndpointError> {
    let imds = |h: &url::Host<&str>| matches!(h, url::Host::Ipv4(ip) if ip.to_string() == IMDS_IP);
    crate::http::endpoint_allowed_with(url, imds, &format!("{IMDS_IP} or a loopback address"))
}

/// The managed identity's Entra token for `resource`.
pub async fn token(
    env: &Env,
    resolver: &Resolver,
    endpoint: Option<&str>,
    identity: &Identity,
    resource: &str,
    deadline: Instant,
) -> Result<Secret, SourceError> {
    let base = match endpoint {
        Some(e) => e.to_string(),
        None => match env.var("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
            Some(e) => {
                endpoint_allowed(e).map_err(|e| {
                    SourceError::local_because("AZURE_POD_IDENTITY_AUTHORITY_HOST", e)
                })?;
                e.to_string()
            }
            None => DEFAULT_ENDPOINT.to_string(),
        },
    };
    let url = format!("{}{PATH}", base.trim_end_matches('/'));
    let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
    let which = match identity {
        Identity::System => "system-assigned identity".to_string(),
        Identity::ClientId(id) => {
            query.push(("client_id", id));
            format!("identity {id}")
        }
        Identity::ResourceId(id) => {
            query.push(("msi_res_id", id));
            format!("identity {id}")
        }
    };
    let url = reqwest::Url::parse_with_params(&url, &query)
        .map_err(|e| SourceError::local(format!("IMDS endpoint {base:?}: {e}")))?;
    let client = web_client(env, resolver, true, &TIMEOUTS)?;
    let what = format!("Azure IMDS {base} ({which})");
    let call = Call {
        // IMDS answers 404 and 410 while it is still setting up an identity, and 429 when
        // throttled; Azure's guidance is to retry those and 5xx.
        transient: |s, _| matches!(s, 404 | 410 | 429) || s >= 500,
        absent: |_, _| false,
        ..crate::oauth::call(&what, ATTEMPTS, deadline)
    };
    let token = call
        .fetch(
            || client.get(url.clone()).header("Metadata", "true"),
            |_| Ok(()),
            access_token,
        )
        .await?;
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_endpoints_may_be_plain_http_only_to_imds_or_loopback() {
        for ok in [
            "http://169.254.169.254",
            "http://169.254.169.254/",
            "http://127.0.0.1:9000",
            "https://imds.example",
        ] {
            assert!(endpoint_allowed(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://169.254.169.254.evil.com",
            "http://169.254.169.254@10.0.0.1/",
            "http://10.0.0.1",
            "169.254.169.254",
        ] {
            assert!(endpoint_allowed(bad).is_err(), "{bad}");
        }
    }
}
