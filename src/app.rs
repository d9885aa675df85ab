//! One request, from decoded image to response: pick the rule, answer from the cache or mint
//! (one process per key at a time), shape the answer.

use std::time::{Duration, Instant, SystemTime};

use crate::cache::{Cache, Entry, Outcome, Wanted, lookup, obtain};
use crate::config::{Config, Rule, Selected};
use crate::env::Env;
use crate::error::Error;
use crate::image::ImageRef;
use crate::metrics::{self, Event};
use crate::protocol::{Auth, CacheKeyType, Quoted, Request, Response};
use crate::sources::{MintRequest, SourceError, Spec};
use crate::workload::{IdentityMode, InputError, ServiceAccount, Workload};

/// When minting fails and a still-valid cached credential is served instead, the kubelet is
/// told to ask again soon, so a recovered upstream is used within this time.
const STALE_KUBELET_CACHE: Duration = Duration::from_secs(60);
/// An answer that is a service account token is cached by the kubelet until this long (or a
/// tenth of its remaining life, if more) before the token expires.
const TOKEN_ANSWER_MARGIN: Duration = Duration::from_secs(30);

/// How many cache keys a request that minted looks at for expired entries to remove: enough
/// that a cache keeps up with a steady stream of new hosts, little enough to cost nothing
/// next to a mint.
const EXPIRED_CHECKS_PER_MINT: usize = 8;

/// What a request resolves to before the cache is read: the image, the rule, the host to
/// mint for, and whose identity.
pub struct Plan<'c, T: ?Sized + 'static> {
    image: ImageRef,
    selected: Selected<'c, T>,
    mint_host: String,
    workload: Option<Workload>,
}

/// The rule and identity for a request; `None` when no rule matches the image.
fn plan<'c, T: ?Sized + Spec + 'static>(
    req: &Request,
    config: &'c Config<T>,
    env: &Env,
) -> Result<Option<Plan<'c, T>>, Error> {
    let image = ImageRef::parse(&req.image).map_err(|err| Error::Image {
        image: Quoted::new(&req.image),
        err,
    })?;
    let Some(selected) = config.select(&image) else {
        return Ok(None);
    };
    let rule = selected.rule;
    let mint_host = rule.mint_host.clone().unwrap_or_else(|| image.host.clone());
    let source = rule.source.as_ref();
    let source_error = |err| source_error(rule, &mint_host, err);
    source.check(&mint_host).map_err(source_error)?;
    let workload = workload_for(rule, source, req, env).map_err(source_error)?;
    Ok(Some(Plan {
        image,
        selected,
        mint_host,
        workload,
    }))
}

fn source_error<T: ?Sized + Spec>(rule: &Rule<T>, mint_host: &str, err: SourceError) -> Error {
    Error::Source {
        rule: rule.number,
        source_name: rule.source.name(),
        mint_host: mint_host.to_string(),
        err,
    }
}

/// Answers one request under `config`, using `cache` when there is one.
pub fn answer(
    req: &Request,
    config: &Config,
    env: &Env,
    cache: Option<&Cache>,
    deadline: Instant,
) -> Result<Response, Error> {
    // A test hook (docs/architecture.md): proves a panic's message never reaches stderr.
    if env.var("PULLCRED_TEST_PANIC").is_some() {
        panic!("a test panic that quotes s3cret-panic-payload");
    }
    let Some(plan) = plan(req, config, env)? else {
        tracing::warn!("{}; answering with no credentials", unmatched(req, config));
        return Ok(Response::empty(req.api_version));
    };
    let rule = plan.selected.rule;
    let source = rule.source.as_ref();
    let mint = MintRequest {
        mint_host: &plan.mint_host,
        repository: &plan.image.repository,
        env,
        deadline,
        workload: plan.workload.as_ref(),
        cache,
    };
    // A source whose answer is the request's own token keeps nothing.
    let cache = cache.filter(|_| source.cacheable());
    let obtained = obtain(
        &wanted(source, &mint),
        cache,
        &config.cache,
        || source.mint_scoped(&mint),
        |e| source.serves_stale_after(e.kind()),
    );
    if let Some(settings) = &config.metrics {
        let event = match &obtained {
            Ok((entry, Outcome::Minted)) => Some(Event::Minted {
                expires_at: Some(entry.expires_at),
            }),
            Ok((entry, Outcome::Stale { failed: true })) => Some(Event::ServedStale {
                expires_at: entry.expires_at,
            }),
            Ok(_) => None,
            Err(_) => Some(Event::Failed),
        };
        if let Some(event) = event
            && let Err(e) =
                metrics::record(settings, source.name(), &plan.mint_host, event, env.now())
        {
            tracing::warn!("metrics: {e}");
        }
    }
    // After a mint (whatever its outcome), a little housekeeping: expired entries of other
    // keys (a wildcard rule meets as many hosts as pods name) and their lock files go.
    if let Some(c) = cache
        && !matches!(obtained, Ok((_, Outcome::Cached)))
    {
        let now = env.now();
        if let Err(e) = c.remove_expired(|e| e.is_removable(now), Some(EXPIRED_CHECKS_PER_MINT)) {
            tracing::warn!(
                "cache dir {}: removing expired entries: {e}",
                c.dir().display()
            );
        }
    }
    let (entry, outcome) = obtained.map_err(|err| source_error(rule, &plan.mint_host, err))?;
    Ok(respond(req, config, &plan, entry, outcome.is_stale(), env))
}

/// Why no rule matches, in the image's words: the host alone, or, where rules narrow the
/// host to paths, the image's path and theirs (the kubelet routes by a raw string prefix,
/// so `team-ab/app` reaches a provider for `team-a` and lands here).
fn unmatched(req: &Request, config: &Config) -> String {
    let Ok(image) = ImageRef::parse(&req.image) else {
        return "no rule matches the image".into();
    };
    let paths: Vec<&str> = config
        .rules
        .iter()
        .flat_map(|r| &r.patterns)
        .filter(|p| p.matches_host(&image))
        .filter_map(|p| p.path())
        .collect();
    if paths.is_empty() {
        return format!("no rule matches {}", image.host);
    }
    format!(
        "no rule matches {}/{}: the rules for {} cover only the paths {} (by whole segments)",
        image.host,
        image.repository,
        image.host,
        paths.join(", ")
    )
}

/// The answer from a fresh cache entry alone: what the front binary gives without minting.
/// `None` when anything more is needed (no entry, a stale one, no rule, any error): the
/// minting binary then answers, and says what went wrong.
pub fn answer_hit(
    req: &Request,
    config: &Config<dyn Spec>,
    env: &Env,
    cache: &Cache,
) -> Option<Response> {
    let plan = plan(req, config, env).ok()??;
    let source = plan.selected.rule.source.as_ref();
    if !source.cacheable() {
        return None;
    }
    let mint = MintRequest {
        mint_host: &plan.mint_host,
        repository: &plan.image.repository,
        env,
        deadline: Instant::now(),
        workload: plan.workload.as_ref(),
        cache: None,
    };
    let entry = lookup(&wanted(source, &mint), cache)?;
    Some(respond(req, config, &plan, entry, false, env))
}

/// What the cache needs of `source` for `req`.
fn wanted<'a, S: ?Sized + Spec>(source: &S, req: &MintRequest<'a>) -> Wanted<'a> {
    Wanted {
        source_name: source.name(),
        identity: source.cache_identity(req.env),
        keyed_by_repository: source.keyed_by_repository(),
        max_mint_time: source.max_mint_time(),
        mint_host: req.mint_host,
        repository: req.repository,
        workload: req.workload,
        env: req.env,
        deadline: req.deadline,
    }
}

/// The response for an entry: keyed as the kubelet looks it up, cached by the kubelet until
/// pullcred would refresh (or briefly, for a stale answer).
fn respond<T: ?Sized + Spec + 'static>(
    req: &Request,
    config: &Config<T>,
    plan: &Plan<'_, T>,
    entry: Entry,
    stale: bool,
    env: &Env,
) -> Response {
    let image = &plan.image;
    // Credentials are keyed by the image's host as the kubelet parsed it (it matches them
    // against the image, label by label), narrowed to the rule's path where it has one.
    // Of the rule's path and the credential's own (a docker config entry for some paths of
    // its registry), the longer: both are whole-segment prefixes of the image's repository.
    let path = [plan.selected.pattern.path(), entry.scope.path.as_deref()]
        .into_iter()
        .flatten()
        .max_by_key(|p| p.len());
    let key = match path {
        Some(path) => format!("{}/{path}", image.requested_host),
        None => image.requested_host.clone(),
    };
    let cache_key_type = if entry.scope.per_image || config.host_has_path_rules(image) {
        CacheKeyType::Image
    } else {
        CacheKeyType::Registry
    };
    let now = env.now();
    // Come back when we would refresh; after a failed mint, when it expires or soon.
    let mut cache_duration = if stale {
        remaining(entry.expires_at, now).min(STALE_KUBELET_CACHE)
    } else if !plan.selected.rule.source.cacheable() {
        // The answer is the request's own token, which the kubelet keeps under the token's
        // hash (cacheType Token): good while the token lives, less a margin for the pull
        // itself. Answering 0s cost every pull a TokenRequest and an exec.
        let left = remaining(entry.expires_at, now);
        // In whole seconds, as every cacheDuration pullcred answers.
        let tenth = Duration::from_secs(left.as_secs() / 10);
        left.saturating_sub(TOKEN_ANSWER_MARGIN.max(tenth))
    } else {
        remaining(entry.refresh_at, now)
    };
    if let Some(max) = config.cache.max_kubelet_cache {
        cache_duration = cache_duration.min(max);
    }
    Response {
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
    }
}

/// The workload whose identity the mint uses, if the rule's `identity` and the request call
/// for one. Under `service-account` anything missing is an error naming it, never a quiet
/// turn to the node's identity; under `service-account-or-node` a request without a token,
/// or a service account without what the source needs, gets the node's identity. A token
/// that is malformed or expired is an error under both.
fn workload_for<T: ?Sized + Spec>(
    rule: &Rule<T>,
    source: &T,
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
        return Err(SourceError::local(
            "identity is \"service-account\" and the request has no service account token \
             (the kubelet sends one when the provider's tokenAttributes names an audience)"
                .into(),
        ));
    };
    let account = ServiceAccount::from_token(token, env.now())
        .map_err(|e| SourceError::local(e.to_string()))?;
    match source.workload_inputs(&req.service_account_annotations, env) {
        Ok(inputs) => Ok(Some(Workload {
            account,
            inputs,
            or_node: fallback,
        })),
        // An annotation set to something unusable is the pod author's mistake, said as one
        // under either identity rather than hidden behind the node's.
        Err(missing) if fallback && !matches!(missing, InputError::Invalid { .. }) => {
            tracing::debug!(
                "service account {}: {missing}; using the node's identity",
                account.id()
            );
            Ok(None)
        }
        Err(missing) => Err(SourceError::local_because(
            format_args!("service account {}", account.id()),
            missing,
        )),
    }
}

fn remaining(until: SystemTime, now: SystemTime) -> Duration {
    // Whole seconds, rounded: the kubelet needs no finer grain, and "4m59.998s" is noise.
    let left = until.duration_since(now).unwrap_or_default();
    Duration::from_secs((left + Duration::from_millis(500)).as_secs())
}
