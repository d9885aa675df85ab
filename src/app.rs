//! One request, from decoded image to response: pick the rule, answer from the cache or mint
//! (one process per key at a time), shape the answer.

use std::time::{Duration, Instant, SystemTime};

use crate::cache::{Cache, obtain};
use crate::config::Config;
use crate::config::Rule;
use crate::env::Env;
use crate::error::Error;
use crate::image::ImageRef;
use crate::protocol::{Auth, CacheKeyType, Quoted, Request, Response};
use crate::sources::{MintRequest, Source, SourceError};
use crate::workload::{IdentityMode, ServiceAccount, Workload};

/// When minting fails and a still-valid cached credential is served instead, the kubelet is
/// told to ask again soon, so a recovered upstream is used within this time.
const STALE_KUBELET_CACHE: Duration = Duration::from_secs(60);

/// Answers one request under `config`, using `cache` when there is one.
pub fn answer(
    req: &Request,
    config: &Config,
    env: &Env,
    cache: Option<&Cache>,
    deadline: Instant,
) -> Result<Response, Error> {
    #[cfg(feature = "test-clock")]
    if env.var("PULLCRED_TEST_PANIC").is_some() {
        panic!("a test panic that quotes s3cret-panic-payload");
    }
    let image = ImageRef::parse(&req.image).map_err(|err| Error::Image {
        image: Quoted::new(&req.image),
        err,
    })?;
    let Some(selected) = config.select(&image) else {
        tracing::warn!(
            "no rule matches {}; answering with no credentials",
            image.host
        );
        return Ok(Response::empty(req.api_version));
    };
    let rule = selected.rule;
    let mint_host = rule.mint_host.as_deref().unwrap_or(&image.host);
    let source = rule.source.as_ref();
    let source_error = |err| Error::Source {
        rule: rule.number,
        source_name: source.name(),
        mint_host: mint_host.to_string(),
        err,
    };
    source.check(mint_host).map_err(source_error)?;
    let workload = workload_for(rule, source, req, env).map_err(source_error)?;
    let mint = MintRequest {
        mint_host,
        env,
        deadline,
        workload: workload.as_ref(),
    };
    // A source whose answer is the request's own token keeps nothing.
    let cache = cache.filter(|_| source.cacheable());
    let (entry, stale) = obtain(source, &mint, cache, &config.cache).map_err(source_error)?;

    // Credentials are keyed by the image's host as the kubelet parsed it (it matches them
    // against the image, label by label), narrowed to the rule's path where it has one.
    let key = match selected.pattern.path() {
        Some(path) => format!("{}/{path}", image.requested_host),
        None => image.requested_host.clone(),
    };
    let cache_key_type = if config.host_has_path_rules(&image) {
        CacheKeyType::Image
    } else {
        CacheKeyType::Registry
    };
    let now = env.now();
    // Come back when we would refresh; after a failed mint, when it expires or soon.
    let mut cache_duration = if stale {
        remaining(entry.expires_at, now).min(STALE_KUBELET_CACHE)
    } else {
        remaining(entry.refresh_at, now)
    };
    if let Some(max) = config.cache.max_kubelet_cache {
        cache_duration = cache_duration.min(max);
    }
    if !source.cacheable() {
        cache_duration = Duration::ZERO;
    }
    Ok(Response {
        api_version: req.api_version,
        cache_key_type,
        cache_duration,
        auth: [(
            key,
            Auth {
                username: entry.username,
                password: entry.password,
            },
        )]
        .into(),
    })
}

/// The workload whose identity the mint uses, if the rule's `identity` and the request call
/// for one. Under `service-account` anything missing is an error naming it, never a quiet
/// turn to the node's identity; under `service-account-or-node` a request without a token,
/// or a service account without what the source needs, gets the node's identity. A token
/// that is malformed or expired is an error under both.
fn workload_for(
    rule: &Rule,
    source: &dyn Source,
    req: &Request,
    env: &Env,
) -> Result<Option<Workload>, SourceError> {
    let fallback = match rule.identity {
        IdentityMode::Node => return Ok(None),
        IdentityMode::ServiceAccount => false,
        IdentityMode::ServiceAccountOrNode => true,
    };
    let Some(token) = &req.service_account_token else {
        if fallback {
            tracing::debug!("the request has no service account token; using the node's identity");
            return Ok(None);
        }
        return Err(SourceError::Local(
            "identity is \"service-account\" and the request has no service account token \
             (the kubelet sends one when the provider's tokenAttributes names an audience)"
                .into(),
        ));
    };
    let account = ServiceAccount::from_token(token, &req.service_account_annotations, env.now())
        .map_err(|e| SourceError::Local(e.to_string()))?;
    match source.workload_inputs(&account.annotations, env) {
        Ok(inputs) => Ok(Some(Workload { account, inputs })),
        Err(missing) if fallback => {
            tracing::debug!(
                "service account {}: {missing}; using the node's identity",
                account.id()
            );
            Ok(None)
        }
        Err(missing) => Err(SourceError::Local(format!(
            "service account {}: {missing}",
            account.id()
        ))),
    }
}

fn remaining(until: SystemTime, now: SystemTime) -> Duration {
    // Whole seconds, rounded: the kubelet needs no finer grain, and "4m59.998s" is noise.
    let left = until.duration_since(now).unwrap_or_default();
    Duration::from_secs((left + Duration::from_millis(500)).as_secs())
}
