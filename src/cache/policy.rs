//! The cache's policy: when an entry is served, when it is minted anew (the refresh window,
//! spread per node), how long a request waits for another that is minting, and what is
//! answered when minting fails (stale-while-error). The files are `store`'s.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::store::{Cache, Entry, Key};
use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::workload::Workload;

/// One request's credential as the cache sees it: whose (the source's name and identity,
/// everything that changes what it mints), for which registry, repository and workload, and
/// how long a mint of it may take. The cache knows nothing else of sources.
pub struct Wanted<'a> {
    pub source_name: &'static str,
    /// The source's cache identity on this node (see `Spec::cache_identity`).
    pub identity: String,
    /// Whether its credentials can be narrower than a registry (see [`Keys`]).
    pub keyed_by_repository: bool,
    /// How long others wait for a mint of it.
    pub max_mint_time: Duration,
    pub mint_host: &'a str,
    pub repository: &'a str,
    pub workload: Option<&'a Workload>,
    pub env: &'a Env,
    pub deadline: Instant,
}

/// How far the clock may have stepped back since an entry was minted before its times are
/// no longer trusted.
const CLOCK_STEP_TOLERANCE: Duration = Duration::from_secs(5);
/// The refresh window starts up to this share of the lifetime early, per node and key, so a
/// fleet booted together does not refresh together.
const MAX_JITTER: f64 = 0.10;

/// Cache tuning from the config's `[cache]` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub dir: Option<PathBuf>,
    pub refresh_before: RefreshWindow,
    /// How long credentials without their own expiry (files) are kept.
    pub static_ttl: Duration,
    /// Upper bound on the `cacheDuration` told to the kubelet.
    pub max_kubelet_cache: Option<Duration>,
    /// How long to wait for another process minting the same key; `None`: as long as the
    /// source's longest mint may take, so waiters never stampede a slow upstream.
    pub lock_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dir: None,
            refresh_before: RefreshWindow::Fraction(0.25),
            static_ttl: Duration::from_secs(300),
            max_kubelet_cache: None,
            lock_timeout: None,
        }
    }
}

/// The tail of a credential's life in which it is minted anew rather than served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefreshWindow {
    /// A share of the lifetime (`"25%"`).
    Fraction(f64),
    /// A fixed time before expiry (`"3h"`), at most the whole lifetime.
    Fixed(Duration),
}

/// A `refresh_before` that is neither a share of the lifetime nor a duration.
#[derive(Debug, thiserror::Error)]
pub enum RefreshWindowError {
    #[error("{0:?} is not a percentage from 0% to under 100%")]
    Percentage(String),
    #[error(transparent)]
    Duration(#[from] crate::units::DurationError),
}

impl RefreshWindow {
    pub fn parse(s: &str) -> Result<Self, RefreshWindowError> {
        if let Some(pct) = s.strip_suffix('%') {
            return match pct.trim().parse::<f64>() {
                Ok(p) if (0.0..100.0).contains(&p) => Ok(RefreshWindow::Fraction(p / 100.0)),
                _ => Err(RefreshWindowError::Percentage(s.to_string())),
            };
        }
        Ok(RefreshWindow::Fixed(crate::units::parse_duration(s)?))
    }

    fn of(self, lifetime: Duration) -> Duration {
        match self {
            RefreshWindow::Fraction(f) => lifetime.mul_f64(f),
            RefreshWindow::Fixed(d) => d.min(lifetime),
        }
    }
}

impl Key {
    /// A number in [0, 1) fixed for this key on this node: where in the jitter range its
    /// refresh starts.
    pub fn jitter(&self, machine_id: &str) -> f64 {
        let digest = Sha256::digest(format!("{machine_id}\n{}", self.as_str()).as_bytes());
        let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        (n >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Entry {
    /// Times a freshly minted credential. A credential whose source fixes its refresh is
    /// refreshed then, exactly. Credentials without an expiry are kept for `static_ttl` and
    /// have no refresh window: re-reading a file is cheap and throttles nobody. Others
    /// refresh `refresh_before` ahead of expiry, plus up to 10% of their
    /// lifetime of per-node jitter (`jitter` in [0, 1)).
    pub fn new(
        credential: Credential,
        mint_host: &str,
        source: &str,
        now: SystemTime,
        settings: &Settings,
        jitter: f64,
    ) -> Self {
        let (refresh_at, expires_at) = match (credential.refresh_at, credential.expires_at) {
            // The source's own time (a secret store's `refresh`), never past the expiry.
            (Some(refresh_at), expires_at) => {
                let expires_at = expires_at.unwrap_or(refresh_at);
                (refresh_at.min(expires_at).max(now), expires_at)
            }
            (None, None) => {
                let at = now + settings.static_ttl;
                (at, at)
            }
            (None, Some(expires_at)) => {
                let lifetime = expires_at.duration_since(now).unwrap_or_default();
                let early =
                    settings.refresh_before.of(lifetime) + lifetime.mul_f64(MAX_JITTER * jitter);
                let refresh_at = expires_at.checked_sub(early.min(lifetime)).unwrap_or(now);
                (refresh_at.max(now), expires_at)
            }
        };
        Entry {
            mint_host: mint_host.to_string(),
            source: source.to_string(),
            minted_at: now,
            refresh_at,
            expires_at,
            username: credential.username,
            password: credential.password,
            scope: Scope::default(),
        }
    }

    /// Outside the refresh window: serve without minting.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.minted_by(now) && now < self.refresh_at
    }

    /// Not yet expired: still usable when minting fails.
    pub fn is_valid(&self, now: SystemTime) -> bool {
        self.minted_by(now) && now < self.expires_at
    }

    /// Past every serving policy, stale-while-error included, even if the clock steps back
    /// a little: the entry may be removed.
    pub fn is_removable(&self, now: SystemTime) -> bool {
        self.expires_at
            .checked_add(CLOCK_STEP_TOLERANCE)
            .is_some_and(|past| now >= past)
    }

    /// An entry minted after `now` was written before the clock stepped back: its times are
    /// not to be trusted, so it is neither fresh nor valid. Steps of a few seconds (NTP
    /// corrections) change nothing that matters and are let through.
    fn minted_by(&self, now: SystemTime) -> bool {
        self.minted_at <= now + CLOCK_STEP_TOLERANCE
    }
}

/// How [`obtain`] came by its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A fresh entry (perhaps after waiting for another process's mint).
    Cached,
    /// Minted now.
    Minted,
    /// Not fresh, but still valid: answered because minting failed (`failed`) or another
    /// process was still minting.
    Stale { failed: bool },
}

impl Outcome {
    pub fn is_stale(self) -> bool {
        matches!(self, Outcome::Stale { .. })
    }
}

/// The cache key of what is `req`: the source's identity, the host, and the workload's
/// identity when a workload's; with `repository`, that image repository's key (see
/// [`Keys`]).
fn key_of(req: &Wanted<'_>, repository: bool) -> Key {
    let mut material = String::with_capacity(req.identity.len() + req.mint_host.len() + 64);
    material.push_str(&req.identity);
    material.push('\n');
    // Hosts compare case-insensitively everywhere (as DNS does): one entry per registry.
    if req.mint_host.bytes().any(|b| b.is_ascii_uppercase()) {
        material.push_str(&req.mint_host.to_ascii_lowercase());
    } else {
        material.push_str(req.mint_host);
    }
    // A workload's entries are its service account's alone: never served to another.
    if let Some(w) = req.workload {
        material.push('\n');
        w.write_cache_identity(&mut material);
    }
    if repository {
        material.push_str("\nrepository ");
        material.push_str(req.repository);
    }
    Key::new(&material)
}

/// Where a request's entry lives. Credentials are kept per registry, except where a source
/// found some narrower than the registry (a docker config entry for some paths only): then
/// the registry's key holds a marker (an entry whose scope says `per_image`, never served
/// itself) and each repository has a key of its own, so one path's credential never serves
/// another's images. Registries without such credentials cost one read, as before.
struct Keys {
    registry: Key,
    /// The repository's key, for sources whose credentials can be narrower than a registry.
    repository: Option<Key>,
}

impl Keys {
    fn of(req: &Wanted<'_>) -> Self {
        Keys {
            registry: key_of(req, false),
            repository: req.keyed_by_repository.then(|| key_of(req, true)),
        }
    }

    /// The key to read and mint under: the repository's when the registry's holds a valid
    /// marker, else the registry's.
    fn resolve(&self, cache: Option<&Cache>, req: &Wanted<'_>) -> &Key {
        match (&self.repository, cache) {
            (Some(repository), Some(c))
                if c.read(&self.registry).is_some_and(|e| {
                    e.scope.per_image
                        && e.mint_host.eq_ignore_ascii_case(req.mint_host)
                        && e.is_valid(req.env.now())
                }) =>
            {
                repository
            }
            _ => &self.registry,
        }
    }

    /// Whether `entry`, read under `key`, is a marker (never answered).
    fn is_marker(&self, key: &Key, entry: &Entry) -> bool {
        self.repository.is_some() && *key == self.registry && entry.scope.per_image
    }
}

/// A fresh cache entry for `req`, if there is one: the whole of a cache hit, with no lock
/// and no mint (what the front binary answers with).
pub fn lookup(req: &Wanted<'_>, cache: &Cache) -> Option<Entry> {
    let now = req.env.now();
    let usable = |e: &Entry| e.mint_host.eq_ignore_ascii_case(req.mint_host) && e.is_fresh(now);
    // The registry's key first; the repository's is hashed only under a marker.
    let entry = cache.read(&key_of(req, false)).filter(usable)?;
    if !(req.keyed_by_repository && entry.scope.per_image) {
        return Some(entry);
    }
    cache.read(&key_of(req, true)).filter(usable)
}

/// The credential `req` wants: a fresh cache entry if there is one; otherwise minted with
/// `mint` under the key's lock (so a burst of processes mints once); otherwise, if minting
/// fails with an error `serve_stale` lets through, a cached credential that has not expired
/// (served stale).
pub fn obtain<E: std::fmt::Display>(
    req: &Wanted<'_>,
    cache: Option<&Cache>,
    settings: &Settings,
    mint: impl FnOnce() -> Result<(Credential, Scope), E>,
    serve_stale: impl FnOnce(&E) -> bool,
) -> Result<(Entry, Outcome), E> {
    let env = req.env;
    let keys = Keys::of(req);
    let key = keys.resolve(cache, req).clone();
    let read = |c: &Cache| {
        c.read(&key)
            .filter(|e| e.mint_host.eq_ignore_ascii_case(req.mint_host))
            .filter(|e| !keys.is_marker(&key, e))
    };

    let mut cached = cache.and_then(read);
    if let Some(entry) = cached.take_if(|e| e.is_fresh(env.now())) {
        tracing::debug!(key = key.as_str(), "cache hit");
        return Ok((entry, Outcome::Cached));
    }
    // Miss: wait for whoever may be minting this key, then look again before minting.
    // Held until the new entry is written (end of this function).
    let attempt = cache.map(|c| {
        // Leave a second of the deadline for answering from whatever the wait leaves us.
        let budget = req
            .deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(Duration::from_secs(1));
        let wait = settings.lock_timeout.unwrap_or(req.max_mint_time);
        let lock = c.lock(&key, wait.min(budget));
        if lock.is_ok() {
            c.sweep_temp_files(&key);
        }
        lock
    });
    let lock = match attempt {
        Some(Ok(lock)) => Some(lock),
        Some(Err(e)) => {
            // Someone else is still minting this key: answer with what they will replace
            // rather than add a mint of our own to an upstream that is already slow.
            if let Some(entry) = cache.and_then(read).filter(|e| e.is_valid(env.now())) {
                tracing::warn!(
                    "cache lock for {}: {e}; answering with the cached credential, valid until {}",
                    req.mint_host,
                    humantime::format_rfc3339_seconds(entry.expires_at)
                );
                let stale = !entry.is_fresh(env.now());
                return Ok((
                    entry,
                    if stale {
                        Outcome::Stale { failed: false }
                    } else {
                        Outcome::Cached
                    },
                ));
            }
            tracing::warn!("cache lock for {}: {e}; minting without it", req.mint_host);
            None
        }
        None => None,
    };
    if lock.is_some() {
        cached = cache.and_then(read);
        if let Some(entry) = cached.take_if(|e| e.is_fresh(env.now())) {
            tracing::debug!(key = key.as_str(), "cache hit after waiting for the lock");
            return Ok((entry, Outcome::Cached));
        }
    }

    tracing::debug!(key = key.as_str(), source = req.source_name, "minting");
    match mint() {
        Ok((mut credential, scope)) => {
            // A credential got with a workload's token is kept no longer than the token.
            if let Some(w) = req.workload {
                let until = w.account.expires_at;
                credential.expires_at = Some(credential.expires_at.map_or(until, |e| e.min(until)));
            }
            let now = env.now();
            let jitter = key.jitter(&env.machine_id());
            let mut entry = Entry::new(
                credential,
                req.mint_host,
                req.source_name,
                now,
                settings,
                jitter,
            );
            entry.scope = scope;
            if let Some(c) = cache {
                write_entry(c, &keys, &key, &entry);
            }
            Ok((entry, Outcome::Minted))
        }
        Err(err) if !serve_stale(&err) => Err(err),
        Err(err) => match cached.filter(|e| e.is_valid(env.now())) {
            Some(entry) => {
                tracing::warn!(
                    "minting for {} failed ({err}); answering with the cached credential, valid until {}",
                    req.mint_host,
                    humantime::format_rfc3339_seconds(entry.expires_at)
                );
                Ok((entry, Outcome::Stale { failed: true }))
            }
            None => Err(err),
        },
    }
}

/// Writes a minted entry where [`Keys`] will find it: a credential narrower than its registry
/// (or any credential of a registry that has such) under the repository's key, with a marker
/// under the registry's; any other under the registry's key, replacing a marker that no
/// longer holds.
fn write_entry(cache: &Cache, keys: &Keys, minted_under: &Key, entry: &Entry) {
    let warn = |e: std::io::Error| {
        tracing::warn!(
            "cache dir {}: cannot write entry: {e}",
            cache.dir().display()
        );
    };
    match &keys.repository {
        Some(repository) if entry.scope.per_image => {
            if let Err(e) = cache.write(repository, entry) {
                return warn(e);
            }
            let marker = Entry {
                username: String::new(),
                password: crate::credential::Secret::new(""),
                scope: Scope {
                    path: None,
                    per_image: true,
                },
                ..entry.clone()
            };
            if let Err(e) = cache.write(&keys.registry, &marker) {
                warn(e);
            }
        }
        _ => {
            if let Err(e) = cache.write(&keys.registry, entry) {
                warn(e);
            }
            // Minted under a repository's key, the registry no longer narrows: its entry
            // now serves every repository, and this one's is stale.
            if *minted_under != keys.registry {
                let _ = cache.remove(minted_under);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::Secret;
    use std::time::UNIX_EPOCH;

    fn credential(expires_in: Option<u64>, now: SystemTime) -> Credential {
        Credential {
            username: "u".into(),
            password: Secret::new("p"),
            expires_at: expires_in.map(|s| now + Duration::from_secs(s)),
            refresh_at: None,
        }
    }

    const TWELVE_H: u64 = 12 * 3600;

    /// A 12-hour credential minted at `now`, timed with `settings` and `jitter`.
    fn twelve_hours(now: SystemTime, settings: &Settings, jitter: f64) -> Entry {
        Entry::new(
            credential(Some(TWELVE_H), now),
            "r",
            "ecr",
            now,
            settings,
            jitter,
        )
    }

    #[test]
    fn refresh_window_and_jitter() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let s = Settings::default();
        // No jitter: refresh at 3/4 of the life.
        let e = twelve_hours(now, &s, 0.0);
        assert_eq!(e.refresh_at, now + Duration::from_secs(9 * 3600));
        assert_eq!(e.expires_at, now + Duration::from_secs(TWELVE_H));
        // Full jitter: up to 10% of the life earlier.
        let e = twelve_hours(now, &s, 0.999_999);
        let early = e.refresh_at.duration_since(now).unwrap().as_secs_f64();
        assert!(
            (early - 9.0 * 3600.0 + 0.1 * TWELVE_H as f64).abs() < 1.0,
            "{early}"
        );
        // A fixed window.
        let fixed = Settings {
            refresh_before: RefreshWindow::Fixed(Duration::from_secs(3600)),
            ..Settings::default()
        };
        let e = twelve_hours(now, &fixed, 0.0);
        assert_eq!(e.refresh_at, now + Duration::from_secs(11 * 3600));
        // No expiry: kept for static_ttl, no window.
        let e = Entry::new(credential(None, now), "r", "static", now, &s, 0.9);
        assert_eq!(
            (e.refresh_at, e.expires_at),
            (now + s.static_ttl, now + s.static_ttl)
        );
        // Minted "later" than now (the clock stepped back): not to be served.
        let e = twelve_hours(now, &s, 0.0);
        let earlier = now - Duration::from_secs(60);
        assert!(e.is_fresh(now - CLOCK_STEP_TOLERANCE));
        assert!(!e.is_fresh(earlier) && !e.is_valid(earlier));
        // Removable only once expired by more than a clock step.
        let e = twelve_hours(now, &s, 0.0);
        let expiry = now + Duration::from_secs(TWELVE_H);
        assert!(!e.is_removable(now) && !e.is_removable(expiry));
        assert!(e.is_valid(expiry - Duration::from_secs(1)) && !e.is_valid(expiry));
        assert!(!e.is_removable(expiry + CLOCK_STEP_TOLERANCE - Duration::from_millis(1)));
        assert!(e.is_removable(expiry + CLOCK_STEP_TOLERANCE));
        // Already expired at mint: refresh at once.
        let e = Entry::new(credential(Some(0), now), "r", "ecr", now, &s, 0.5);
        assert!(!e.is_fresh(now));
    }

    #[test]
    fn jitter_is_stable_per_node_and_key_and_spread() {
        let key = Key::new("rule\nregistry");
        assert_eq!(key.jitter("node-a"), key.jitter("node-a"));
        let spread: Vec<f64> = (0..200).map(|i| key.jitter(&format!("node-{i}"))).collect();
        assert!(spread.iter().all(|j| (0.0..1.0).contains(j)));
        let low = spread.iter().filter(|&&j| j < 0.5).count();
        assert!((60..140).contains(&low), "{low} of 200 below 0.5");
    }

    #[test]
    fn window_parsing() {
        assert_eq!(
            RefreshWindow::parse("25%").ok(),
            Some(RefreshWindow::Fraction(0.25))
        );
        assert_eq!(
            RefreshWindow::parse("3h").ok(),
            Some(RefreshWindow::Fixed(Duration::from_secs(3 * 3600)))
        );
        assert!(RefreshWindow::parse("100%").is_err());
        assert!(RefreshWindow::parse("soon").is_err());
    }
}
