//! The TOML config: request limits, cache settings and the ordered registry rules; and the
//! built-in rules used when no config file exists.
//!
//! This module reads only what every rule shares (`match`, `source`, `registry`) and hands a
//! rule's other keys to the source kind it names (`sources::KINDS`), which validates them.
//! Errors name the file, the line and what is wrong.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cache::{RefreshWindow, Settings as CacheSettings};
use crate::image::ImageRef;
use crate::metrics::{
    DEFAULT_MAX_REGISTRIES, MAX_REGISTRIES_LIMIT, OVERFLOW, Settings as MetricsSettings,
};
use crate::rules::Pattern;
use crate::sources::{KINDS, Kind, Options, Source, Spec, Workloads};
use crate::units::parse_duration;
use crate::workload::IdentityMode;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pullcred/config.toml";
/// Where secret files are kept on a node: root's alone (install.sh makes it, 0700).
pub const SECRETS_DIR: &str = "/etc/pullcred/secrets";
/// The kubelet kills a plugin after one minute; answer (or fail) well before that.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);
const MAX_DEADLINE: Duration = Duration::from_secs(55);
/// The keys this module reads; every other key of a rule belongs to its source.
const SHARED_KEYS: [&str; 5] = [
    "match",
    "source",
    "registry",
    "identity",
    "registry_for_any_host",
];

/// A config whose rules' sources are `T`: [`Source`]s that mint (the default), or only their
/// [`Spec`]s (the front binary, which answers cache hits).
#[derive(Debug)]
pub struct Config<T: ?Sized + 'static = dyn Source> {
    pub origin: Origin,
    /// Hard limit on one request, from stdin to stdout.
    pub deadline: Duration,
    pub cache: CacheSettings,
    /// `[metrics]`: the node_exporter textfile each mint rewrites, and its label cap.
    pub metrics: Option<MetricsSettings>,
    pub rules: Vec<Rule<T>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

#[derive(Debug)]
pub struct Rule<T: ?Sized + 'static = dyn Source> {
    /// 1-based position in the config, for messages.
    pub number: usize,
    pub patterns: Vec<Pattern>,
    /// The host to mint for instead of the image's (the config's `registry`: mirrors and
    /// pull-through caches). The answer is still keyed by the image's host.
    pub mint_host: Option<String>,
    /// Whose identity a mint uses: the node's, or the pod's service account's.
    pub identity: IdentityMode,
    pub source: Box<T>,
}

/// A rule chosen for an image, with the pattern that matched.
pub struct Selected<'c, T: ?Sized + 'static = dyn Source> {
    pub rule: &'c Rule<T>,
    pub pattern: &'c Pattern,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read, or is not to be trusted (it names its path).
    #[error(transparent)]
    File(#[from] crate::secret_file::SecretFileError),
    #[error("{path}: line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A config's text in the parts the rule index keeps: the config without its rules, and
/// each rule as a TOML document of its own, in order. `None` when the text is not TOML of
/// a config's shape (a config that parsed always is).
pub fn split_rules(text: &str) -> Option<(String, Vec<String>)> {
    let mut table: toml::Table = toml::from_str(text).ok()?;
    let rules = match table.remove("registry") {
        None => Vec::new(),
        Some(toml::Value::Array(list)) => list
            .into_iter()
            .map(|rule| match rule {
                toml::Value::Table(t) => toml::to_string(&t).ok(),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    Some((toml::to_string(&table).ok()?, rules))
}

/// Only a path with no file and no link at it (nor a dangling link on the way) means "no
/// config": a dangling link, a directory or an unreadable file at the default path is an
/// error, never a silent turn to the built-in rules (which would drop the identity a config
/// asked for).
pub fn no_such_file(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return false,
    }
    // The nearest ancestor that exists must be a real directory, not a dangling link.
    path.ancestors()
        .skip(1)
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .is_some_and(|a| std::fs::metadata(a).is_ok_and(|m| m.is_dir()))
}

impl Config {
    /// The rules used when no config file exists: each source kind's built-in hosts, with
    /// that kind's default options (the clouds' registries, with the node's credentials).
    pub fn builtin() -> Self {
        Self::builtin_with(KINDS)
    }

    /// Loads `explicit` if given (it must exist), else the default path, else the built-in
    /// rules. `uid` is the caller's: the file must be root's or its (see `from_file_with`).
    pub fn load(explicit: Option<&Path>, uid: u32) -> Result<Self, ConfigError> {
        Self::load_with(explicit, KINDS, uid)
    }

    #[cfg(test)]
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::parse_with(text, path, KINDS)
    }
}

impl<T: ?Sized + Spec + 'static> Config<T> {
    /// [`Config::builtin`] over the given kinds.
    pub fn builtin_with(kinds: &[Kind<T>]) -> Self {
        let rules = kinds
            .iter()
            .filter(|k| !k.builtin.is_empty())
            .enumerate()
            .map(|(i, kind)| Rule {
                number: i + 1,
                patterns: kind
                    .builtin
                    .iter()
                    .map(|p| Pattern::parse(p).expect("built-in patterns are valid"))
                    .collect(),
                mint_host: None,
                identity: IdentityMode::Node,
                source: (kind.build)(&Options::none()).expect("default options are valid"),
            })
            .collect();
        Config {
            origin: Origin::Builtin,
            deadline: DEFAULT_DEADLINE,
            cache: CacheSettings::default(),
            metrics: None,
            rules,
        }
    }

    /// [`Config::load`] over the given kinds.
    pub fn load_with(
        explicit: Option<&Path>,
        kinds: &[Kind<T>],
        uid: u32,
    ) -> Result<Self, ConfigError> {
        match explicit {
            Some(path) => Self::from_file_with(path, kinds, uid),
            None if no_such_file(Path::new(DEFAULT_CONFIG_PATH)) => Ok(Self::builtin_with(kinds)),
            None => Self::from_file_with(Path::new(DEFAULT_CONFIG_PATH), kinds, uid),
        }
    }

    /// Reads and parses the config at `path`. The config names the files pullcred reads as
    /// root, the endpoints it sends them to and the commands it runs, so it is trusted only
    /// as a secret file is: owned by root or the caller (`uid`), writable by nobody else, on
    /// a path only they control (`secret_file::read_config`).
    pub fn from_file_with(path: &Path, kinds: &[Kind<T>], uid: u32) -> Result<Self, ConfigError> {
        let text = crate::secret_file::read_config(path, uid)?;
        Self::parse_with(&text, path, kinds)
    }

    /// [`Config::parse`] with the given source kinds.
    pub fn parse_with(text: &str, path: &Path, kinds: &[Kind<T>]) -> Result<Self, ConfigError> {
        let invalid = |span: Option<Range<usize>>, message: String| ConfigError::Invalid {
            path: path.into(),
            line: span.map_or(1, |s| line_of(text, s.start)),
            message,
        };
        // Relative file paths in a config are relative to the config's own directory, made
        // absolute: they enter cache keys, and two configs in different directories naming
        // the same relative file must not share an entry.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = absolute.parent().unwrap_or(Path::new(""));
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| invalid(e.span(), e.message().trim().replace('\n', " ")))?;

        let deadline = match &raw.deadline {
            None => DEFAULT_DEADLINE,
            Some(d) => {
                let value = parse_duration(d.get_ref())
                    .map_err(|m| invalid(Some(d.span()), format!("deadline: {m}")))?;
                if value.is_zero() || value > MAX_DEADLINE {
                    return Err(invalid(
                        Some(d.span()),
                        format!(
                            "deadline must be between 1s and {}s",
                            MAX_DEADLINE.as_secs()
                        ),
                    ));
                }
                value
            }
        };
        let cache = match &raw.cache {
            None => CacheSettings::default(),
            Some(c) => c
                .get_ref()
                .settings(base)
                .map_err(|(span, m)| invalid(Some(span), format!("cache: {m}")))?,
        };
        let rules = raw
            .registry
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let span = r.span();
                Rule::from_raw(i + 1, r.into_inner(), base, kinds)
                    .map_err(|(s, m)| invalid(Some(s.unwrap_or(span)), m))
            })
            .collect::<Result<_, _>>()?;
        let metrics = match &raw.metrics {
            None => None,
            Some(m) => m
                .settings(base)
                .map_err(|(span, m)| invalid(Some(span), format!("metrics: {m}")))?,
        };
        Ok(Config {
            origin: Origin::File(path.into()),
            deadline,
            cache,
            metrics,
            rules,
        })
    }

    /// Adds `rules`, each given by its number and as a TOML document of its own
    /// ([`split_rules`]'s parts), read as [`Config::parse_with`] reads them in the whole file
    /// at `path` (relative paths are relative to its directory), in number order: the rule
    /// index's way to build only the rules a request may select into a config read from
    /// the file's text without its rules. Errors name no line worth reading; the caller
    /// falls back to the whole file.
    pub fn add_rules(
        &mut self,
        rules: &[(usize, &str)],
        path: &Path,
        kinds: &[Kind<T>],
    ) -> Result<(), ConfigError> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = absolute.parent().unwrap_or(Path::new(""));
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            line: 1,
            message,
        };
        for (number, text) in rules {
            let raw: BTreeMap<String, Spanned<toml::Value>> =
                toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
            let rule = Rule::from_raw(*number, raw, base, kinds).map_err(|(_, m)| invalid(m))?;
            self.rules.push(rule);
        }
        self.rules.sort_by_key(|r| r.number);
        Ok(())
    }

    /// The first rule with a pattern covering the image.
    pub fn select(&self, image: &ImageRef) -> Option<Selected<'_, T>> {
        self.rules.iter().find_map(|rule| {
            let pattern = rule.patterns.iter().find(|p| p.matches(image))?;
            Some(Selected { rule, pattern })
        })
    }

    /// What `config check` points out about rules that are valid but risky.
    pub fn warnings(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter_map(|r| {
                let wide = r.patterns.iter().find(|p| p.is_wide())?;
                match &r.mint_host {
                    Some(host) => Some(format!(
                        "rule {} answers {host}'s credentials for any host {wide} matches \
                         (registry_for_any_host): a pod can name any such host",
                        r.number
                    )),
                    None if r.source.same_for_every_host() => Some(format!(
                        "rule {} answers the same credential for any host {wide} matches: a \
                         pod can name any such host",
                        r.number
                    )),
                    None => None,
                }
            })
            .collect()
    }

    /// Whether some rule narrows the image's host by path. Then answers for that host must be
    /// cached by the kubelet per image: a registry-wide entry would hand one path's
    /// credentials to images under another path without asking us.
    pub fn host_has_path_rules(&self, image: &ImageRef) -> bool {
        self.rules
            .iter()
            .flat_map(|r| &r.patterns)
            .any(|p| p.path().is_some() && p.matches_host(image))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    deadline: Option<Spanned<String>>,
    cache: Option<Spanned<RawCache>>,
    metrics: Option<RawMetrics>,
    /// Each rule as its keys, each key's value with its place in the text: the shared keys
    /// are read here, the rest go to the source kind.
    #[serde(default)]
    registry: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    textfile: Option<String>,
    max_registries: Option<Spanned<i64>>,
}

impl RawMetrics {
    fn settings(&self, base: &Path) -> Result<Option<MetricsSettings>, (Range<usize>, String)> {
        let max_registries = match &self.max_registries {
            None => DEFAULT_MAX_REGISTRIES,
            Some(n) => {
                let value = usize::try_from(*n.get_ref())
                    .ok()
                    .filter(|v| (1..=MAX_REGISTRIES_LIMIT).contains(v))
                    .ok_or_else(|| {
                        (
                            n.span(),
                            format!(
                                "max_registries must be from 1 to {MAX_REGISTRIES_LIMIT} \
                                 (registry labels per source; the rest count as {OVERFLOW:?})"
                            ),
                        )
                    })?;
                if self.textfile.is_none() {
                    return Err((n.span(), "`max_registries` needs `textfile`".into()));
                }
                value
            }
        };
        Ok(self.textfile.as_ref().map(|f| MetricsSettings {
            textfile: base.join(f),
            max_registries,
        }))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    dir: Option<Spanned<String>>,
    refresh_before: Option<Spanned<String>>,
    static_ttl: Option<Spanned<String>>,
    max_kubelet_cache: Option<Spanned<String>>,
    lock_timeout: Option<Spanned<String>>,
}

impl RawCache {
    fn settings(&self, base: &Path) -> Result<CacheSettings, (Range<usize>, String)> {
        let mut s = CacheSettings::default();
        let duration = |v: &Spanned<String>, key: &str| {
            parse_duration(v.get_ref()).map_err(|m| (v.span(), format!("{key}: {m}")))
        };
        if let Some(d) = &self.dir {
            s.dir = Some(base.join(d.get_ref()));
        }
        if let Some(w) = &self.refresh_before {
            s.refresh_before = RefreshWindow::parse(w.get_ref())
                .map_err(|m| (w.span(), format!("refresh_before: {m}")))?;
        }
        if let Some(t) = &self.static_ttl {
            s.static_ttl = duration(t, "static_ttl")?;
        }
        if let Some(m) = &self.max_kubelet_cache {
            s.max_kubelet_cache = Some(duration(m, "max_kubelet_cache")?);
        }
        if let Some(l) = &self.lock_timeout {
            s.lock_timeout = Some(duration(l, "lock_timeout")?);
        }
        Ok(s)
    }
}

type RuleError = (Option<Range<usize>>, String);

impl<T: ?Sized + Spec + 'static> Rule<T> {
    fn from_raw(
        number: usize,
        mut raw: BTreeMap<String, Spanned<toml::Value>>,
        base: &Path,
        kinds: &[Kind<T>],
    ) -> Result<Self, RuleError> {
        let shared: Vec<(&str, Option<Spanned<toml::Value>>)> =
            SHARED_KEYS.iter().map(|k| (*k, raw.remove(*k))).collect();
        let [
            (_, patterns),
            (_, source),
            (_, mint_host),
            (_, identity),
            (_, any_host),
        ] = <[_; 5]>::try_from(shared).expect("five shared keys");

        let source = source.ok_or((None, "missing field `source`".to_string()))?;
        let kind = match source.get_ref() {
            toml::Value::String(name) => Kind::find(kinds, name).ok_or_else(|| {
                let known: Vec<&str> = kinds.iter().map(|k| k.name).collect();
                (
                    Some(source.span()),
                    format!("unknown source {name:?} (known: {})", known.join(", ")),
                )
            })?,
            _ => {
                return Err((
                    Some(source.span()),
                    "invalid type: `source` must be a string".into(),
                ));
            }
        };
        let identity = rule_identity(identity, kind)?;
        let spans = raw.iter().map(|(k, v)| (k.clone(), v.span())).collect();
        let options = Options {
            table: raw.into_iter().map(|(k, v)| (k, v.into_inner())).collect(),
            spans,
            base,
            identity,
        };
        // Each key the kind does not take: another kind's, or no kind's (a typo).
        let keys = (kind.keys)();
        if let Some(key) = options.table.keys().find(|k| !keys.contains(&k.as_str())) {
            let span = options.spans.get(key).cloned();
            let whose = kinds.iter().find(|k| (k.keys)().contains(&key.as_str()));
            return Err(match whose {
                Some(_) => (
                    span,
                    format!("key `{key}` does not apply to source {:?}", kind.name),
                ),
                None => match nearest(key, keys.iter().copied().chain(RULE_KEYS)) {
                    Some(near) => (
                        span,
                        format!("unknown field `{key}` (did you mean `{near}`?)"),
                    ),
                    None => (span, format!("unknown field `{key}`")),
                },
            });
        }
        let source = (kind.build)(&options).map_err(|e| {
            let span = e.key.as_ref().and_then(|k| options.spans.get(k).cloned());
            (span, e.message)
        })?;

        let patterns = patterns.ok_or((None, "missing field `match`".to_string()))?;
        let not_strings = || {
            (
                Some(patterns.span()),
                "invalid type: `match` must be an array of strings".to_string(),
            )
        };
        let toml::Value::Array(list) = patterns.get_ref() else {
            return Err(not_strings());
        };
        if list.is_empty() {
            return Err((Some(patterns.span()), "`match` is empty".into()));
        }
        let patterns: Vec<Pattern> = list
            .iter()
            .map(|p| {
                let text = p.as_str().ok_or_else(not_strings)?;
                Pattern::parse(text).map_err(|e| (Some(patterns.span()), e.to_string()))
            })
            .collect::<Result<_, _>>()?;

        let mint_host = match &mint_host {
            None => None,
            Some(r) => {
                let Some(host) = r.get_ref().as_str() else {
                    return Err((
                        Some(r.span()),
                        "invalid type: `registry` must be a string".into(),
                    ));
                };
                let valid = ImageRef::parse(&format!("{host}/x")).is_ok_and(|i| i.host == host)
                    && host.contains(['.', ':']);
                if !valid {
                    return Err((
                        Some(r.span()),
                        format!("registry {host:?} is not a host[:port]"),
                    ));
                }
                Some(host.to_string())
            }
        };
        let any_host = match &any_host {
            None => false,
            Some(v) => v.get_ref().as_bool().ok_or((
                Some(v.span()),
                "invalid type: `registry_for_any_host` must be true or false".to_string(),
            ))?,
        };
        // `registry` answers one registry's credentials for whatever host the patterns
        // match; with a wildcard past the leftmost label (`*.*`), that is any host a pod
        // names, so it takes the operator's explicit word.
        if mint_host.is_some()
            && !any_host
            && let Some(wide) = patterns.iter().find(|p| p.is_wide())
        {
            return Err((
                None,
                format!(
                    "`registry` with the pattern \"{wide}\", whose wildcards reach past the \
                     leftmost label, answers that registry's credentials for hosts anyone may \
                     name; narrow the pattern, or set registry_for_any_host = true"
                ),
            ));
        }
        Ok(Rule {
            number,
            patterns,
            mint_host,
            identity,
            source,
        })
    }
}

/// A rule's `identity`, as its kind allows it: `node` unless said otherwise (or, for a kind
/// that answers with the token itself, `service-account`).
fn rule_identity<T: ?Sized>(
    value: Option<Spanned<toml::Value>>,
    kind: &Kind<T>,
) -> Result<IdentityMode, RuleError> {
    let default = match kind.workloads {
        Workloads::Required => IdentityMode::ServiceAccount,
        _ => IdentityMode::Node,
    };
    let Some(value) = value else {
        return Ok(default);
    };
    let span = Some(value.span());
    let mode = value
        .get_ref()
        .as_str()
        .and_then(IdentityMode::parse)
        .ok_or_else(|| {
            (
                span.clone(),
                format!(
                    "identity must be one of {}",
                    IdentityMode::NAMES.map(|n| format!("{n:?}")).join(", ")
                ),
            )
        })?;
    match (kind.workloads, mode) {
        (Workloads::NodeOnly, IdentityMode::Node) | (Workloads::Optional, _) => Ok(mode),
        (Workloads::Required, IdentityMode::ServiceAccount) => Ok(mode),
        (Workloads::NodeOnly, _) => Err((
            span,
            format!(
                "source {:?} mints with the node's identity only; identity must be \"node\"",
                kind.name
            ),
        )),
        (Workloads::Required, _) => Err((
            span,
            format!(
                "source {:?} answers with the service account token; identity must be \"service-account\"",
                kind.name
            ),
        )),
    }
}

impl<T: ?Sized + Spec> fmt::Display for Rule<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<String> = self.patterns.iter().map(Pattern::to_string).collect();
        write!(f, "rule {}: match {}", self.number, patterns.join(", "))?;
        if let Some(r) = &self.mint_host {
            write!(f, " (mint for {r})")?;
        }
        write!(f, " -> {} {}", self.source.name(), self.source.describe())?;
        if self.identity != IdentityMode::Node {
            write!(f, " identity={}", self.identity)?;
        }
        Ok(())
    }
}

/// The keys every rule takes, whatever its source.
const RULE_KEYS: [&str; 4] = ["match", "source", "registry", "identity"];

/// The known key an unknown one most likely meant: one that starts with it or that it starts
/// with (`user` for `username`), else one at most two edits away; `None` when nothing is
/// that close.
fn nearest<'k>(unknown: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    let unknown = unknown.to_ascii_lowercase();
    known
        .filter_map(|k| {
            let d = if k.starts_with(&unknown) || unknown.starts_with(k) {
                1
            } else {
                edits(&unknown, k)
            };
            (d <= 2 && unknown.len() >= 3).then_some((d, k))
        })
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance (insertions, deletions, substitutions).
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_key_and_line() {
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\nfavourite = 1\n",
        );
        assert!(e.starts_with("test.toml: line 6: "), "{e}");
        assert!(e.contains("favourite"), "{e}");
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\npath = \"/x\"\n",
        );
        assert_eq!(
            e,
            "test.toml: line 6: key `path` does not apply to source \"static\""
        );
        let e = err("[[registry]]\nmatch = [\"a.com\"]\nsource = \"keychain\"\n");
        assert!(
            e.starts_with("test.toml: line 3: unknown source \"keychain\""),
            "{e}"
        );
        let e = err("[[registry]]\nmatch = [\"a.com\", \"a[b.com\"]\nsource = \"docker-config\"\n");
        assert!(e.starts_with("test.toml: line 2: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn static_needs_one_username_and_a_password_file() {
        let e =
            err("[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\npassword_file = \"/p\"\n");
        assert!(
            e.contains("exactly one of `username`, `username_file`"),
            "{e}"
        );
        let e = err("[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\n");
        assert!(e.contains("needs `password_file`"), "{e}");
    }

    #[test]
    fn deadline_and_registry() {
        let c = parse("deadline = \"5s\"\n[[registry]]\nmatch = [\"m.internal:5000\"]\nsource = \"docker-config\"\nregistry = \"r.example.com\"\n").unwrap();
        assert_eq!(c.deadline, Duration::from_secs(5));
        assert_eq!(c.rules[0].mint_host.as_deref(), Some("r.example.com"));
        assert!(err("deadline = \"2m\"\n").contains("deadline must be between"));
        assert!(err("deadline = \"soon\"\n").contains("is not a duration"));
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"docker-config\"\nregistry = \"x/y\"\n",
        );
        assert!(e.contains("is not a host[:port]"), "{e}");
    }

    #[test]
    fn metrics_table() {
        let c = parse("[metrics]\ntextfile = \"/var/lib/ne/pullcred.prom\"\n").unwrap();
        let m = c.metrics.unwrap();
        assert_eq!(m.textfile, Path::new("/var/lib/ne/pullcred.prom"));
        assert_eq!(m.max_registries, 100);
        let c = parse("[metrics]\ntextfile = \"ne/p.prom\"\nmax_registries = 7\n").unwrap();
        let m = c.metrics.unwrap();
        // Relative to the config's directory, made absolute (here the config is `test.toml`).
        assert_eq!(
            (m.textfile.clone(), m.max_registries),
            (std::path::absolute("ne/p.prom").unwrap(), 7)
        );
        assert!(parse("[metrics]\n").unwrap().metrics.is_none());
        for (text, want) in [
            (
                "textfile = \"p\"\nmax_registries = 0\n",
                "line 3: metrics: max_registries must be from 1 to 1000",
            ),
            (
                "textfile = \"p\"\nmax_registries = -1\n",
                "line 3: metrics: max_registries must be",
            ),
            (
                "textfile = \"p\"\nmax_registries = 1001\n",
                "line 3: metrics: max_registries must be",
            ),
            ("textfile = \"p\"\nmax_registries = \"5\"\n", "line 3: "),
            (
                "max_registries = 5\n",
                "line 2: metrics: `max_registries` needs `textfile`",
            ),
            (
                "textfile = \"p\"\nmax_labels = 5\n",
                "line 3: unknown field `max_labels`",
            ),
        ] {
            let e = err(&format!("[metrics]\n{text}"));
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn an_unknown_key_names_the_nearest_known_one() {
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nuser = \"u\"\npassword_file = \"/p\"\n",
        );
        assert!(
            e.ends_with("unknown field `user` (did you mean `username`?)"),
            "{e}"
        );
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\npasword_file = \"/p\"\n",
        );
        assert!(e.ends_with("(did you mean `password_file`?)"), "{e}");
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\nxyzzy = 1\n",
        );
        assert!(e.ends_with("unknown field `xyzzy`"), "{e}");
    }

    #[test]
    fn ecr_options() {
        let head = "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\n";
        // The values themselves are the ecr module's own test (sources::ecr::options).
        let c = parse(&format!(
            "{head}region = \"eu-west-1\"\nprofile = \"ci\"\nrole_arn = \"arn:aws:iam::111111111111:role/pull\"\nexternal_id = \"x\"\nregistry_ids = [\"111111111111\"]\nendpoint = \"https://vpce.example\"\n"
        ))
        .unwrap();
        assert!(
            !c.rules[0].to_string().contains("external_id=x"),
            "external ids are not shown"
        );

        for (extra, want) in [
            (
                "role_arn = \"pull\"\n",
                "line 4: role_arn \"pull\" is not a role ARN",
            ),
            (
                "external_id = \"x\"\n",
                "line 4: `external_id` needs `role_arn`",
            ),
            (
                "registry_ids = [\"1234\"]\n",
                "line 4: registry id \"1234\" is not a 12-digit account id",
            ),
            ("region = \"EU West\"\n", "is not an AWS region name"),
            ("endpoint = \"vpce.example\"\n", "is not an http(s) URL"),
            (
                "role_arn = \"arn:aws:iam::1:role/r\"\nsession_name = \"a b\"\n",
                "line 5: session_name must be",
            ),
            (
                "path = \"/x\"\n",
                "key `path` does not apply to source \"ecr\"",
            ),
        ] {
            let e = err(&format!("{head}{extra}"));
            assert!(e.contains(want), "{extra}: {e}");
        }
    }

    #[test]
    fn builtin_rules_cover_every_ecr_host_form() {
        let c = Config::builtin();
        for host in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            "123456789012.dkr-ecr.us-east-1.on.aws",
            "123456789012.dkr-ecr-fips.us-east-1.on.aws",
            "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
            "public.ecr.aws",
            "ecr-public.aws.com",
        ] {
            let image = ImageRef::parse(&format!("{host}/app:1")).unwrap();
            let rule = c.select(&image).unwrap_or_else(|| panic!("{host}")).rule;
            assert_eq!(rule.source.name(), "ecr", "{host}");
            rule.source
                .check(host)
                .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        for host in [
            "registry.example.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.net",
            "gallery.ecr.aws",
        ] {
            let image = ImageRef::parse(&format!("{host}/app:1")).unwrap();
            assert!(c.select(&image).is_none(), "{host}");
        }
    }
}
