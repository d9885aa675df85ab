//! One request, from decoded image to response: pick the rule, mint, shape the answer.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use crate::config::Config;
use crate::credential::Credential;
use crate::env::Env;
use crate::error::Error;
use crate::image::ImageRef;
use crate::protocol::{Auth, CacheKeyType, Quoted, Request, Response};
use crate::sources::MintRequest;

/// How long the kubelet may keep a credential that has no expiry of its own (static files,
/// docker config): short, so edits to those files take effect soon.
pub const NO_EXPIRY_CACHE: Duration = Duration::from_secs(300);

/// Answers one request under `config`.
pub fn answer(
    req: &Request,
    config: &Config,
    env: &Env,
    deadline: Instant,
) -> Result<Response, Error> {
    let image = ImageRef::parse(&req.image).map_err(|err| Error::Image {
        image: Quoted::new(&req.image),
        err,
    })?;
    let Some(selected) = config.select(&image) else {
        tracing::warn!(
            "no rule matches {}; answering with no credentials",
            image.registry
        );
        return Ok(Response::empty(req.api_version));
    };
    let rule = selected.rule;
    let registry = rule.registry.as_deref().unwrap_or(&image.registry);
    let source = rule.source.source();
    let credential = source
        .mint(&MintRequest {
            registry,
            env,
            deadline,
        })
        .map_err(|err| Error::Source {
            rule: rule.number,
            source_name: source.name(),
            registry: registry.to_string(),
            err,
        })?;
    tracing::debug!(
        rule = rule.number,
        source = source.name(),
        registry,
        "minted a credential"
    );

    // Credentials are keyed by the image's host (the kubelet matches them against the image),
    // narrowed to the rule's path where it has one.
    let key = match selected.pattern.path() {
        Some(path) => format!("{}/{path}", image.registry),
        None => image.registry.clone(),
    };
    let cache_key_type = if config.host_has_path_rules(&image) {
        CacheKeyType::Image
    } else {
        CacheKeyType::Registry
    };
    Ok(Response {
        api_version: req.api_version,
        cache_key_type,
        cache_duration: kubelet_cache_duration(&credential, env.now()),
        auth: [(
            key,
            Auth {
                username: credential.username,
                password: credential.password,
            },
        )]
        .into(),
    })
}

/// How long the kubelet may reuse the answer: a fixed short time for credentials without
/// expiry; otherwise until the last quarter of the remaining life begins.
fn kubelet_cache_duration(credential: &Credential, now: SystemTime) -> Duration {
    match credential.expires_at {
        None => NO_EXPIRY_CACHE,
        Some(at) => at.duration_since(now).unwrap_or_default() * 3 / 4,
    }
}

/// Runs `work` on a worker thread and gives up on it at `limit`: the kubelet kills plugins
/// after a minute and then logs nothing useful, so we fail first, on our own terms. The
/// worker never writes to stdout, so giving up can leave no partial answer behind.
pub fn within_deadline<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce(Instant) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let deadline = Instant::now() + limit;
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let _ = tx.send(work(deadline));
    });
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Deadline(
            humantime::format_duration(limit).to_string(),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::WorkerLost),
    }
}
