//! One request, from decoded image to response: pick the rule, answer from the cache or mint
//! (one process per key at a time), shape the answer.

use std::time::{Duration, Instant, SystemTime};

use crate::cache::{Cache, obtain};
use crate::config::Config;
use crate::env::Env;
use crate::error::Error;
use crate::image::ImageRef;
use crate::protocol::{Auth, CacheKeyType, Quoted, Request, Response};
use crate::sources::MintRequest;

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
    let mint = MintRequest {
        mint_host,
        env,
        deadline,
    };
    let source_error = |err| Error::Source {
        rule: rule.number,
        source_name: source.name(),
        mint_host: mint_host.to_string(),
        err,
    };
    source.check(mint_host).map_err(source_error)?;
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

fn remaining(until: SystemTime, now: SystemTime) -> Duration {
    // Whole seconds, rounded: the kubelet needs no finer grain, and "4m59.998s" is noise.
    let left = until.duration_since(now).unwrap_or_default();
    Duration::from_secs((left + Duration::from_millis(500)).as_secs())
}
