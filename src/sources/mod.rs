//! The `Source` trait, and the registry of source kinds: each kind's name, how it turns a
//! rule's own keys into a source, and the hosts it serves with no config file. One module
//! per source; no source depends on another; `config` knows sources only through [`KINDS`].

/// Declares a source module's `KIND` (it mints; see [`KINDS`]) and `SPEC` (the same kind
/// without minting, for the front binary; see [`SPECS`]) from one description, so that the
/// two never drift apart. `build` is the module's `fn(&Options) -> Result<T, OptionError>`;
/// `shared` lists the key structs it takes beyond its own (a cloud identity's, a stored
/// secret's), each parsed with [`Options::split`].
macro_rules! kinds {
    (name: $name:expr, options: $options:ty, build: $build:path, builtin: $builtin:expr, workloads: $workloads:expr $(,)?) => {
        kinds!(name: $name, options: $options, shared: [], build: $build, builtin: $builtin, workloads: $workloads);
    };
    (name: $name:expr, options: $options:ty, shared: [$($shared:ty),*], build: $build:path, builtin: $builtin:expr, workloads: $workloads:expr $(,)?) => {
        /// This source kind (see `sources::KINDS`).
        pub const KIND: $crate::sources::Kind<dyn $crate::sources::Source> =
            $crate::sources::Kind {
                name: $name,
                keys: || {
                    #[allow(unused_mut)]
                    let mut keys = $crate::fields::fields_of::<$options>().to_vec();
                    $(keys.extend_from_slice($crate::fields::fields_of::<$shared>());)*
                    keys
                },
                build: |o| Ok(Box::new($build(o)?)),
                builtin: $builtin,
                workloads: $workloads,
            };
        /// The same kind without minting (see `sources::SPECS`).
        pub const SPEC: $crate::sources::Kind<dyn $crate::sources::Spec> = $crate::sources::Kind {
            name: $name,
            keys: || {
                    #[allow(unused_mut)]
                    let mut keys = $crate::fields::fields_of::<$options>().to_vec();
                    $(keys.extend_from_slice($crate::fields::fields_of::<$shared>());)*
                    keys
                },
            build: |o| Ok(Box::new($build(o)?)),
            builtin: $builtin,
            workloads: $workloads,
        };
    };
}

/// The `Spec` methods of a source whose workloads mint with its cloud identity (`$field`,
/// an `identity::google::Google` or `identity::azure::Entra`): audience, annotations and
/// inputs are the identity's.
macro_rules! workload_identity_of {
    ($field:ident) => {
        fn workload_audience(&self) -> Option<String> {
            self.$field.workload_audience()
        }

        fn workload_annotations(&self) -> Vec<String> {
            self.$field.workload_annotations()
        }

        fn workload_inputs(
            &self,
            annotations: &std::collections::BTreeMap<String, String>,
            env: &$crate::env::Env,
        ) -> Result<$crate::workload::Inputs, $crate::workload::InputError> {
            self.$field.workload_inputs(annotations, env)
        }
    };
}

/// The `Spec` methods every secret-store source shares (`$field` is its
/// `stored::Reading`): one credential whatever the host, kept per repository when the value
/// may be a docker config, and only an unreachable store covered by the last value.
macro_rules! stored_value_spec {
    ($field:ident) => {
        fn same_for_every_host(&self) -> bool {
            true
        }

        fn keyed_by_repository(&self) -> bool {
            self.$field.may_narrow()
        }

        fn serves_stale_after(&self, failure: $crate::failure::ErrorKind) -> bool {
            $crate::stored::serves_stale_after(failure)
        }
    };
}

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::workload::{InputError, Inputs, Workload};

pub use crate::failure::{ErrorKind, SourceError};
pub use crate::rule_keys::{OptionError, Options};

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
registry!(
    static_file,
    docker_config,
    ecr,
    gcp,
    acr,
    passthrough,
    aws_secrets_manager,
    gcp_secret_manager,
    azure_key_vault,
    vault
);

/// A source kind, as a config names it in `source = "…"`, building `T`: a [`Source`], or
/// only its [`Spec`].
pub struct Kind<T: ?Sized + 'static> {
    pub name: &'static str,
    /// The rule keys it takes: its options struct's fields (and its cloud's identity
    /// keys), as serde names them.
    pub keys: fn() -> Vec<&'static str>,
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
    /// The cache dir, for a source that keeps a credential of its own between execs (a
    /// Vault login token), under keys of its own.
    pub cache: Option<&'a crate::cache::Cache>,
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

    /// Whether a still-valid cached credential is answered when a mint fails so
    /// (stale-while-error). Yes, whatever the failure, unless the source says otherwise: a
    /// secret store's answer that the secret is gone or denied is final.
    fn serves_stale_after(&self, _failure: ErrorKind) -> bool {
        true
    }

    /// The secret files its options name (each with the key that names it), for `config
    /// check` to read as a mint would.
    fn files(&self) -> Vec<(&'static str, PathBuf)> {
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

/// Runs a source's async mint on a current-thread runtime built for it (so a cache hit never
/// builds one), with the node's resolver, cut at `budget` less a second (left for writing
/// the cache and the answer). `stage` says what was awaited when time ran out; a lookup
/// still unanswered then is named. The runtime is shut down without waiting for anything
/// still blocked: the answer (or the cached credential) must not wait for it.
pub(crate) fn run_mint<T, F>(
    budget: Duration,
    mint: impl FnOnce(crate::resolver::Resolver, Duration) -> F,
    stage: impl FnOnce() -> String,
) -> Result<T, SourceError>
where
    F: std::future::Future<Output = Result<T, SourceError>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
            keys: || crate::fields::fields_of::<FixedOptions>().to_vec(),
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
                    refresh_at: None,
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
