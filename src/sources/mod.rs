//! The `Source` trait, and the registry of source kinds: each kind's name, how it turns a
//! rule's own keys into a source, and the hosts it serves with no config file. One module
//! per source; no source depends on another; `config` knows sources only through [`KINDS`].

/// Declares a source module's `KIND` (it mints; see [`KINDS`]) and `SPEC` (the same kind
/// without minting, for the front binary; see [`SPECS`]) from one description, so that the
/// two never drift apart. `build` is the module's `fn(&Options) -> Result<T, OptionError>`.
macro_rules! kinds {
    (name: $name:expr, options: $options:ty, build: $build:path, builtin: $builtin:expr, workloads: $workloads:expr $(,)?) => {
        /// This source kind (see `sources::KINDS`).
        pub const KIND: $crate::sources::Kind<dyn $crate::sources::Source> =
            $crate::sources::Kind {
                name: $name,
                keys: $crate::fields::fields_of::<$options>,
                build: |o| Ok(Box::new($build(o)?)),
                builtin: $builtin,
                workloads: $workloads,
            };
        /// The same kind without minting (see `sources::SPECS`).
        pub const SPEC: $crate::sources::Kind<dyn $crate::sources::Spec> = $crate::sources::Kind {
            name: $name,
            keys: $crate::fields::fields_of::<$options>,
            build: |o| Ok(Box::new($build(o)?)),
            builtin: $builtin,
            workloads: $workloads,
        };
    };
}

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::workload::{IdentityMode, InputError, Inputs, Workload};

/// The one list of sources: each module (declared here), and its [`KINDS`] and [`SPECS`]
/// entries in the same order, generated from one line.
macro_rules! registry {
    ($($module:ident),+ $(,)?) => {
        $(pub mod $module;)+
        /// Every source kind, able to mint. The order is the order of the built-in rules.
        pub const KINDS: &[Kind<dyn Source>] = &[$($module::KIND),+];
        /// The same kinds without their minting: what the front binary (`pullcred`, which
        /// answers cache hits) links, so that no SDK is reachable from it.
        pub const SPECS: &[Kind<dyn Spec>] = &[$($module::SPEC),+];
    };
}

// Adding a source: its module (`sources/<name>.rs` or `sources/<name>/`), and its name here.
registry!(static_file, docker_config, ecr, gcp, acr, passthrough);

/// A source kind, as a config names it in `source = "…"`, building `T`: a [`Source`], or
/// only its [`Spec`].
pub struct Kind<T: ?Sized + 'static> {
    pub name: &'static str,
    /// The rule keys it takes: its options struct's fields, as serde names them.
    pub keys: fn() -> &'static [&'static str],
    /// Validates a rule's keys (all but the shared ones) into a source.
    pub build: fn(&Options<'_>) -> Result<Box<T>, OptionError>,
    /// Host patterns this kind serves, with default options, when there is no config file.
    pub builtin: &'static [&'static str],
    /// Whether it mints with a workload's service account token (a rule's `identity`).
    pub workloads: Workloads,
}

/// Which `identity` a kind's rules may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workloads {
    /// `node` only: the source has no use for a service account token.
    NodeOnly,
    /// Any; `node` unless the rule says otherwise.
    Optional,
    /// `service-account` only (it is the default): the token is what the source answers.
    Required,
}

impl<T: ?Sized> Kind<T> {
    /// The kind named `name` among `kinds`.
    pub fn find<'k>(kinds: &'k [Kind<T>], name: &str) -> Option<&'k Kind<T>> {
        kinds.iter().find(|k| k.name == name)
    }
}

/// A rule's source keys as its kind receives them, with where each stands in the config.
pub struct Options<'a> {
    pub table: toml::Table,
    /// Byte ranges of each key's value in the config text, for `OptionError::at`.
    pub spans: BTreeMap<String, Range<usize>>,
    /// The config file's directory: relative paths are relative to it.
    pub base: &'a Path,
    /// The rule's `identity` (a shared key): some options apply only to one of them.
    pub identity: IdentityMode,
}

impl Options<'_> {
    /// No keys at all: the options of a built-in rule.
    pub fn none() -> Options<'static> {
        Options {
            table: toml::Table::new(),
            spans: BTreeMap::new(),
            base: Path::new(""),
            identity: IdentityMode::Node,
        }
    }

    /// The keys as the kind's own options struct (which denies keys it does not know).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, OptionError> {
        T::deserialize(toml::Value::Table(self.table.clone())).map_err(|e| {
            // Keys the kind does not take were refused before (see `Kind::keys`).
            let text = e.message().trim().to_string();
            // "invalid type: …\nin `key`" names the key when nested; at the top level, the
            // key is the one that fails on its own. Its line is reported; the first line of
            // the message is kept.
            let key = text
                .rsplit_once("in `")
                .and_then(|(_, k)| k.split_once('`'))
                .map(|(k, _)| k.to_string())
                .or_else(|| {
                    self.table.iter().find_map(|(k, v)| {
                        let alone = toml::Table::from_iter([(k.clone(), v.clone())]);
                        match T::deserialize(toml::Value::Table(alone)) {
                            Err(e) if !e.message().starts_with("missing field") => Some(k.clone()),
                            _ => None,
                        }
                    })
                });
            let first = text.lines().next().unwrap_or_default().to_string();
            OptionError {
                key,
                message: first,
            }
        })
    }

    /// The annotation key a source reads for a workload: the rule's `key` (valid only when
    /// the rule's `identity` uses service accounts), else `default`.
    pub fn annotation_key(
        &self,
        key: &str,
        value: Option<String>,
        default: &str,
    ) -> Result<String, OptionError> {
        let Some(value) = value else {
            return Ok(default.to_string());
        };
        if self.identity == IdentityMode::Node {
            return Err(OptionError::at(
                key,
                format!(
                    "`{key}` needs identity \"service-account\" or \"service-account-or-node\""
                ),
            ));
        }
        // `[prefix/]name`: a DNS subdomain prefix, a name of letters, digits, `-_.`.
        let (prefix, name) = value.rsplit_once('/').unwrap_or(("", &value));
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && prefix.len() <= 253
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !ok {
            return Err(OptionError::at(
                key,
                format!("{key} {value:?} is not an annotation key ([prefix/]name)"),
            ));
        }
        Ok(value)
    }

    /// A path from the config, relative to the config's directory.
    pub fn path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }
}

/// Why a rule's keys do not make a source: the key at fault (its line is reported), or none
/// (the rule's line).
#[derive(Debug, PartialEq, Eq)]
pub struct OptionError {
    pub key: Option<String>,
    pub message: String,
}

impl OptionError {
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        OptionError {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    pub fn rule(message: impl Into<String>) -> Self {
        OptionError {
            key: None,
            message: message.into(),
        }
    }
}

/// What a source is asked to mint for.
pub struct MintRequest<'a> {
    /// The registry host (with port) the credential must be valid for: the image's host, or
    /// the rule's `registry` for mirrors.
    pub mint_host: &'a str,
    /// The image's repository (`team-a/app`), for sources whose credentials can be narrower
    /// than a registry ([`Spec::keyed_by_repository`]).
    pub repository: &'a str,
    pub env: &'a Env,
    /// The request's hard deadline; sources bound their own waits by it.
    pub deadline: Instant,
    /// Mint with this workload's identity instead of the node's.
    pub workload: Option<&'a Workload>,
}

/// What a source is without minting: its options, the hosts it serves, its part of the cache
/// key. Enough to answer from the cache.
pub trait Spec: fmt::Debug + Send + Sync {
    /// The source's name as written in the config (`static`, `docker-config`, …).
    fn name(&self) -> &'static str;

    /// The options in effect, for `config check` (never a secret).
    fn describe(&self) -> String;

    /// Everything about this source that changes the credential it mints, as resolved on
    /// this node (e.g. the docker config path actually read), for the cache key. Never a
    /// secret.
    fn cache_identity(&self, env: &Env) -> String;

    /// Refuses a host this source can never mint for, before the cache is touched (no lock
    /// file, no entry for a host that is not ours).
    fn check(&self, _mint_host: &str) -> Result<(), SourceError> {
        Ok(())
    }

    /// Whether this source answers the same credential whatever the host (a fixed username
    /// and password, the request's own token): under a wide pattern, for any host a pod
    /// names. `config check` points that out.
    fn same_for_every_host(&self) -> bool {
        false
    }

    /// Whether this source's credentials can be narrower than a registry (its
    /// [`Source::mint_scoped`] may answer a [`Scope`]): then the cache keeps one entry per
    /// repository, so a credential for one path is never served to another's images.
    fn keyed_by_repository(&self) -> bool {
        false
    }

    /// The longest one mint may take: how long a request waits for another process minting
    /// the same key before it stops waiting.
    fn max_mint_time(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// For a rule whose `identity` is a service account's: what this source reads from the
    /// service account's annotations (or, failing them, its own options) to mint with the
    /// workload's token, or which annotation it needs and does not find. Only kinds whose
    /// [`Kind::workloads`] is not `NodeOnly` are asked.
    fn workload_inputs(
        &self,
        _annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        Err(InputError::NodeOnly(self.name()))
    }

    /// The audience a workload's token must carry for this source (the kubelet's
    /// `tokenAttributes.serviceAccountTokenAudience`), when the source fixes one.
    fn workload_audience(&self) -> Option<String> {
        None
    }

    /// The service account annotations this source reads for a workload (the kubelet
    /// passes only those its `tokenAttributes` name).
    fn workload_annotations(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether its credentials may be kept in the cache. A source that answers with the
    /// request's own token must not write it to disk.
    fn cacheable(&self) -> bool {
        true
    }
}

/// A source that mints.
pub trait Source: Spec {
    /// Mints (or reads) a credential for `req.mint_host`.
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError>;

    /// [`Source::mint`], with what the credential is valid for when that is narrower than
    /// the registry (only sources [`Spec::keyed_by_repository`] answer one).
    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        self.mint(req).map(|c| (c, Scope::default()))
    }
}

/// Why a source produced no credential. Whatever the variant, a still-valid cached
/// credential is answered instead (stale-while-error: it keeps working until it expires).
/// The variant says who must act: `Transient` may heal by itself (and was already retried
/// within the request); the others need an operator.
#[derive(Debug)]
pub struct SourceError {
    kind: ErrorKind,
    message: String,
    /// What failed underneath, when it is an error of its own (a secret file's check, a
    /// token call): kept as the error's `source()`, so the chain is there to walk.
    cause: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Who must act on a [`SourceError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Configuration or files on the node are wrong (missing, insecure, malformed).
    Local,
    /// The source has no credential for this host (a docker config without an entry).
    NotFound,
    /// The rule itself excludes this host (an account outside its `registry_ids`).
    OutOfScope,
    /// The upstream refused (no permission, unknown principal, bad request); asking again
    /// will not help until someone changes IAM or the config.
    Denied,
    /// Something upstream failed or timed out (a credential helper, a cloud API).
    Transient,
}

impl SourceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SourceError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    pub fn local(message: String) -> Self {
        Self::new(ErrorKind::Local, message)
    }

    pub fn not_found(message: String) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn out_of_scope(message: String) -> Self {
        Self::new(ErrorKind::OutOfScope, message)
    }

    pub fn denied(message: String) -> Self {
        Self::new(ErrorKind::Denied, message)
    }

    pub fn transient(message: String) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A `Local` error: `context` (what was being read or set up), then `cause`, which is
    /// kept as its source.
    pub fn local_because(
        context: impl fmt::Display,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::local(format!("{context}: {cause}")).caused_by(cause)
    }

    /// The same error, with what failed underneath kept as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// A search along a credential chain (the shape of aws-config's `CredentialsProviderChain`):
/// a link that is not set up is noted and passed over; the first link that is set up
/// decides, and its failure ends the search (falling through to another identity would hide
/// the fault); when only the last link is left and fails, the error names every link and
/// why, of the kind of that last failure.
pub struct Chain {
    /// Whose credentials: "Google", "Azure".
    whose: &'static str,
    tried: Vec<String>,
}

impl Chain {
    pub fn new(whose: &'static str) -> Self {
        Chain {
            whose,
            tried: Vec::new(),
        }
    }

    /// Notes a link that is not set up (`why`, naming the link), and moves on.
    pub fn not_loaded(&mut self, why: impl Into<String>) {
        self.tried.push(why.into());
    }

    /// The error when the last link (`link`) fails too.
    pub fn exhausted(mut self, link: &str, last: SourceError) -> SourceError {
        self.tried.push(format!("{link}: {last}"));
        let text = format!(
            "no {} credentials (tried {})",
            self.whose,
            self.tried.join("; ")
        );
        let kind = match last.kind() {
            k @ (ErrorKind::Transient | ErrorKind::Denied) => k,
            _ => ErrorKind::Local,
        };
        SourceError::new(kind, text).caused_by(last)
    }
}

impl From<crate::http::ClientError> for SourceError {
    fn from(e: crate::http::ClientError) -> Self {
        SourceError::local(e.to_string()).caused_by(e)
    }
}

impl From<crate::workload::MissingInput> for SourceError {
    fn from(e: crate::workload::MissingInput) -> Self {
        SourceError::local(e.to_string()).caused_by(e)
    }
}

/// Runs a source's async mint on a current-thread runtime built for it (so a cache hit never
/// builds one), with the node's resolver, cut at `budget` less a second (left for writing
/// the cache and the answer). `stage` says what was awaited when time ran out; a lookup
/// still unanswered then is named. The runtime is shut down without waiting for anything
/// still blocked: the answer (or the cached credential) must not wait for it.
pub(crate) fn run_mint<F>(
    budget: Duration,
    mint: impl FnOnce(crate::resolver::Resolver, Duration) -> F,
    stage: impl FnOnce() -> String,
) -> Result<Credential, SourceError>
where
    F: std::future::Future<Output = Result<Credential, SourceError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SourceError::local(format!("cannot start the async runtime: {e}")))?;
    let limit = budget.saturating_sub(Duration::from_secs(1));
    let resolver = {
        let _inside = runtime.enter();
        crate::resolver::Resolver::from_system()
    };
    let pending = resolver.clone();
    let result = runtime.block_on(async {
        match tokio::time::timeout(limit, mint(resolver, limit)).await {
            Ok(result) => result,
            Err(_) => Err(SourceError::transient(format!(
                "{}: {} within {:.1}s",
                stage(),
                match pending.pending() {
                    Some(name) => format!("cannot resolve {name}: no name server answered"),
                    None => "no answer".to_string(),
                },
                limit.as_secs_f64()
            ))),
        }
    });
    runtime.shutdown_background();
    result
}

impl From<crate::http::CallError> for SourceError {
    fn from(e: crate::http::CallError) -> Self {
        let kind = match &e {
            crate::http::CallError::Refused(_) => ErrorKind::Denied,
            crate::http::CallError::Failed(_) => ErrorKind::Transient,
        };
        SourceError::new(kind, e.to_string()).caused_by(e)
    }
}

impl From<crate::secret_file::SecretFileError> for SourceError {
    fn from(e: crate::secret_file::SecretFileError) -> Self {
        SourceError::local(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The front finds a rule's kind in SPECS and the minting binary in KINDS: a kind
    /// missing from one, or in another place, would send hits to the wrong kind or to mint.
    #[test]
    fn kinds_and_specs_are_the_same_kinds_in_the_same_order() {
        let kinds: Vec<_> = KINDS
            .iter()
            .map(|k| (k.name, k.builtin, k.workloads))
            .collect();
        let specs: Vec<_> = SPECS
            .iter()
            .map(|k| (k.name, k.builtin, k.workloads))
            .collect();
        assert_eq!(kinds, specs);
        let mut names: Vec<_> = KINDS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "each kind once");
    }

    /// A kind's keys are its options struct's fields, read from serde's derive: a key
    /// added to the struct is a key of the kind, with nothing else to change.
    #[test]
    fn each_kinds_keys_are_its_options_fields() {
        let keys = |name| (Kind::find(KINDS, name).unwrap().keys)();
        assert!(
            keys("static").contains(&"password_file"),
            "{:?}",
            keys("static")
        );
        assert!(keys("ecr").contains(&"role_arn"), "{:?}", keys("ecr"));
        assert!(keys("acr").contains(&"tenant_id"), "{:?}", keys("acr"));
        assert!(!keys("static").contains(&"role_arn"));
        for k in KINDS {
            let spec = Kind::find(SPECS, k.name).unwrap();
            assert_eq!((k.keys)(), (spec.keys)(), "{}", k.name);
        }
    }

    /// A source added as the module docs/architecture.md describes: this module and one
    /// entry in a list of kinds, nothing else.
    mod fixed {
        use super::super::*;

        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FixedOptions {
            #[serde(default)]
            username: Option<String>,
        }

        #[derive(Debug)]
        struct Fixed(String);

        pub const KIND: Kind<dyn Source> = Kind {
            name: "fixed",
            keys: crate::fields::fields_of::<FixedOptions>,
            build: |options| {
                let o: FixedOptions = options.parse()?;
                Ok(Box::new(Fixed(
                    o.username.unwrap_or_else(|| "fixed".into()),
                )))
            },
            builtin: &["fixed.example.com"],
            workloads: Workloads::NodeOnly,
        };

        impl Spec for Fixed {
            fn name(&self) -> &'static str {
                "fixed"
            }
            fn describe(&self) -> String {
                format!("username={}", self.0)
            }
            fn cache_identity(&self, _env: &Env) -> String {
                format!("fixed {}", self.0)
            }
        }

        impl Source for Fixed {
            fn mint(&self, _req: &MintRequest<'_>) -> Result<Credential, SourceError> {
                Ok(Credential {
                    username: self.0.clone(),
                    password: crate::credential::Secret::new("fixed-pw"),
                    expires_at: None,
                })
            }
        }
    }

    #[test]
    fn a_new_kind_plugs_in_with_one_line() {
        use crate::config::Config;
        use crate::image::ImageRef;
        let kinds = [
            static_file::KIND,
            docker_config::KIND,
            ecr::KIND,
            fixed::KIND,
        ];
        let text =
            "[[registry]]\nmatch = [\"r.example.com\"]\nsource = \"fixed\"\nusername = \"u\"\n";
        let config = Config::parse_with(text, Path::new("t.toml"), &kinds).unwrap();
        let image = ImageRef::parse("r.example.com/app").unwrap();
        let rule = config.select(&image).unwrap().rule;
        assert_eq!(rule.source.name(), "fixed");
        assert_eq!(rule.source.describe(), "username=u");
        let e = Config::parse_with(
            "[[registry]]\nmatch = [\"r.example.com\"]\nsource = \"fixed\"\nusername = \"u\"\npath = \"x\"\n",
            Path::new("t.toml"),
            &kinds,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: line 5: key `path` does not apply to source \"fixed\""
        );
        // Its built-in pattern joins the built-in rules.
        let builtin = Config::builtin_with(&kinds);
        let image = ImageRef::parse("fixed.example.com/app").unwrap();
        assert_eq!(builtin.select(&image).unwrap().rule.source.name(), "fixed");
    }
}
