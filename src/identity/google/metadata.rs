//! The GCE/GKE metadata server: the node's (or a named) service account's access token, as
//! Google documents it: `GET /computeMetadata/v1/instance/service-accounts/<sa>/token` with
//! `Metadata-Flavor: Google`, and an answer that must carry the same header (the guard
//! against something else answering on that address). Never through a proxy.

use std::time::{Duration, Instant};

use super::oauth::{Answer, fetch_token};
use crate::credential::Credential;
use crate::env::Env;
use crate::failure::SourceError;
use crate::http::{WebTimeouts, web_client};
use crate::resolver::Resolver;

/// The metadata server's name (fully qualified: no search domains); `GCE_METADATA_HOST`
/// (`host[:port]`) overrides it, as in Google's client libraries.
const METADATA_HOST: &str = "metadata.google.internal.";
/// Link-local on GCP, so off GCP failing fast matters more than patience: two attempts of
/// at most 400 ms to connect stay within a second.
const ATTEMPTS: u32 = 2;
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_millis(400),
    read: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
};

/// `GCE_METADATA_HOST` must be a `host[:port]` and nothing more: as part of a URL, anything
/// else (`x@other-host`, a path or query) would send the request somewhere the name hides.
fn check_host(host: &str) -> Result<(), SourceError> {
    let parsed = url::Url::parse(&format!("http://{host}/")).ok();
    let plain = parsed.as_ref().is_some_and(|u| {
        u.username().is_empty()
            && u.password().is_none()
            && u.host().is_some()
            && u.path() == "/"
            && u.query().is_none()
            && u.fragment().is_none()
            && !host.contains(['/', '@', '?', '#', '\\'])
            && !host.contains(char::is_whitespace)
    });
    if plain {
        Ok(())
    } else {
        Err(SourceError::local(format!(
            "GCE_METADATA_HOST {:?} is not a host[:port]",
            crate::logging::redact_urls(&format!("http://{host}")).trim_start_matches("http://")
        )))
    }
}

pub async fn token(
    env: &Env,
    resolver: &Resolver,
    service_account: Option<&str>,
    deadline: Instant,
) -> Result<Credential, SourceError> {
    let host = env.var("GCE_METADATA_HOST").unwrap_or(METADATA_HOST);
    check_host(host)?;
    let account = service_account.unwrap_or("default");
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/{account}/token");
    let client = web_client(env, resolver, true, &TIMEOUTS)?;
    let what = format!("metadata server {host}");
    fetch_token(
        &what,
        Answer::OAuth,
        ATTEMPTS,
        deadline,
        env.clock(),
        || client.get(&url).header("Metadata-Flavor", "Google"),
        |response| match response.headers().get("metadata-flavor") {
            Some(v) if v == "Google" => Ok(()),
            _ => Err("the answer lacks `Metadata-Flavor: Google`; not Google's metadata server"),
        },
    )
    .await
}

/// An instance attribute's value (`/computeMetadata/v1/instance/attributes/<key>`), asked
/// as the token is; `None` when the instance has no such attribute (404).
pub async fn attribute(
    env: &Env,
    resolver: &Resolver,
    key: &str,
    deadline: Instant,
) -> Result<Option<String>, SourceError> {
    let host = env.var("GCE_METADATA_HOST").unwrap_or(METADATA_HOST);
    check_host(host)?;
    let url = format!("http://{host}/computeMetadata/v1/instance/attributes/{key}");
    let client = web_client(env, resolver, true, &TIMEOUTS)?;
    let what = format!("metadata server {host} attribute {key}");
    let call = crate::http::Call {
        what: &what,
        attempts: ATTEMPTS,
        deadline,
        transient: |status, _| status == 429 || status >= 500,
        absent: |status, _| status == 404,
        explain: |_| "refused".into(),
    };
    let answer = call
        .fetch(
            || client.get(&url).header("Metadata-Flavor", "Google"),
            |response| match response.headers().get("metadata-flavor") {
                Some(v) if v == "Google" => Ok(()),
                _ => {
                    Err("the answer lacks `Metadata-Flavor: Google`; not Google's metadata server")
                }
            },
            |body| {
                String::from_utf8(body.to_vec()).map_err(|_| crate::http::Unreadable::Not("text"))
            },
        )
        .await;
    match answer {
        Ok(text) => Ok(Some(text)),
        Err(crate::http::CallError::Absent(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
