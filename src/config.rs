//! The TOML config: the ordered registry rules and request limits; and the built-in rule set
//! used when no config file exists.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cache::{RefreshWindow, Settings as CacheSettings};
use crate::image::ImageRef;
use crate::rules::Pattern;
use crate::sources::Source;
use crate::sources::docker_config::DockerConfigSource;
use crate::sources::static_file::{StaticSource, Username};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pullcred/config.toml";
/// The kubelet kills a plugin after one minute; answer (or fail) well before that.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);
const MAX_DEADLINE: Duration = Duration::from_secs(55);
const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub struct Config {
    pub origin: Origin,
    /// Hard limit on one request, from stdin to stdout.
    pub deadline: Duration,
    pub cache: CacheSettings,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Builtin,
    File(PathBuf),
}

#[derive(Debug)]
pub struct Rule {
    /// 1-based position in the config, for messages.
    pub number: usize,
    pub patterns: Vec<Pattern>,
    /// Mint for this host instead of the image's (mirrors, pull-through caches).
    pub registry: Option<String>,
    pub source: SourceSpec,
}

#[derive(Debug)]
pub enum SourceSpec {
    Static(StaticSource),
    DockerConfig(DockerConfigSource),
}

impl SourceSpec {
    pub fn source(&self) -> &dyn Source {
        match self {
            SourceSpec::Static(s) => s,
            SourceSpec::DockerConfig(s) => s,
        }
    }
}

/// A rule chosen for an image, with the pattern that matched.
pub struct Selected<'c> {
    pub rule: &'c Rule,
    pub pattern: &'c Pattern,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

impl Config {
    /// The rules used when no config file exists. Empty until the cloud sources land.
    pub fn builtin() -> Self {
        Config {
            origin: Origin::Builtin,
            deadline: DEFAULT_DEADLINE,
            cache: CacheSettings::default(),
            rules: Vec::new(),
        }
    }

    /// Loads `explicit` if given (it must exist), else the default path, else the built-in rules.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match explicit {
            Some(path) => Self::from_file(path),
            None => match std::fs::metadata(DEFAULT_CONFIG_PATH) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::builtin()),
                _ => Self::from_file(Path::new(DEFAULT_CONFIG_PATH)),
            },
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let read_err = |reason: String| ConfigError::Read {
            path: path.into(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| read_err(e.to_string()))?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| read_err(e.to_string()))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(read_err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid =
            |span: Option<std::ops::Range<usize>>, message: String| ConfigError::Invalid {
                path: path.into(),
                line: span.map_or(1, |s| line_of(text, s.start)),
                message,
            };
        // Relative file paths in a config are relative to the config's own directory.
        let base = path.parent().unwrap_or(Path::new(""));
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
                Rule::from_raw(i + 1, r.into_inner(), base)
                    .map_err(|(s, m)| invalid(Some(s.unwrap_or(span)), m))
            })
            .collect::<Result<_, _>>()?;
        Ok(Config {
            origin: Origin::File(path.into()),
            deadline,
            cache,
            rules,
        })
    }

    /// The first rule with a pattern covering the image.
    pub fn select(&self, image: &ImageRef) -> Option<Selected<'_>> {
        self.rules.iter().find_map(|rule| {
            let pattern = rule.patterns.iter().find(|p| p.matches(image))?;
            Some(Selected { rule, pattern })
        })
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

/// Durations in the config: `10s`, `1m30s`, `500ms`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e})"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    deadline: Option<Spanned<String>>,
    cache: Option<Spanned<RawCache>>,
    #[serde(default)]
    registry: Vec<Spanned<RawRule>>,
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
    fn settings(&self, base: &Path) -> Result<CacheSettings, (std::ops::Range<usize>, String)> {
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
            s.lock_timeout = duration(l, "lock_timeout")?;
        }
        Ok(s)
    }
}

/// Every key any source takes; each source then checks that only its own keys are set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    patterns: Spanned<Vec<Spanned<String>>>,
    source: Spanned<String>,
    registry: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    username_file: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    helper_timeout: Option<Spanned<String>>,
}

type RuleError = (Option<std::ops::Range<usize>>, String);

impl Rule {
    fn from_raw(number: usize, raw: RawRule, base: &Path) -> Result<Self, RuleError> {
        let file = |p: &Spanned<String>| base.join(p.get_ref());
        let source_name = raw.source.get_ref().as_str();
        let keys = [
            ("username", &raw.username),
            ("username_file", &raw.username_file),
            ("password_file", &raw.password_file),
            ("path", &raw.path),
            ("helper_timeout", &raw.helper_timeout),
        ];
        let allowed: &[&str] = match source_name {
            "static" => &["username", "username_file", "password_file"],
            "docker-config" => &["path", "helper_timeout"],
            other => {
                return Err((
                    Some(raw.source.span()),
                    format!("unknown source {other:?} (known: static, docker-config)"),
                ));
            }
        };
        for (key, value) in keys {
            if let Some(v) = value
                && !allowed.contains(&key)
            {
                return Err((
                    Some(v.span()),
                    format!("key `{key}` does not apply to source {source_name:?}"),
                ));
            }
        }

        if raw.patterns.get_ref().is_empty() {
            return Err((Some(raw.patterns.span()), "`match` is empty".into()));
        }
        let patterns = raw
            .patterns
            .get_ref()
            .iter()
            .map(|p| Pattern::parse(p.get_ref()).map_err(|e| (Some(p.span()), e.to_string())))
            .collect::<Result<_, _>>()?;
        let registry = match &raw.registry {
            None => None,
            Some(r) => {
                let host = r.get_ref();
                let valid = ImageRef::parse(&format!("{host}/x"))
                    .is_ok_and(|i| i.registry == *host)
                    && host.contains(['.', ':']);
                if !valid {
                    return Err((
                        Some(r.span()),
                        format!("registry {host:?} is not a host[:port]"),
                    ));
                }
                Some(host.clone())
            }
        };
        let source = match source_name {
            "static" => {
                let username = match (&raw.username, &raw.username_file) {
                    (Some(u), None) => Username::Inline(u.get_ref().clone()),
                    (None, Some(f)) => Username::File(file(f)),
                    _ => {
                        return Err((
                            None,
                            "source \"static\" needs exactly one of `username`, `username_file`"
                                .into(),
                        ));
                    }
                };
                let password_file = raw
                    .password_file
                    .as_ref()
                    .ok_or((None, "source \"static\" needs `password_file`".to_string()))?;
                SourceSpec::Static(StaticSource {
                    username,
                    password_file: file(password_file),
                })
            }
            _ => {
                let helper_timeout = match &raw.helper_timeout {
                    None => DEFAULT_HELPER_TIMEOUT,
                    Some(t) => parse_duration(t.get_ref())
                        .map_err(|m| (Some(t.span()), format!("helper_timeout: {m}")))?,
                };
                SourceSpec::DockerConfig(DockerConfigSource {
                    path: raw.path.as_ref().map(file),
                    helper_timeout,
                })
            }
        };
        Ok(Rule {
            number,
            patterns,
            registry,
            source,
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<String> = self.patterns.iter().map(Pattern::to_string).collect();
        write!(f, "rule {}: match {}", self.number, patterns.join(", "))?;
        if let Some(r) = &self.registry {
            write!(f, " (mint for {r})")?;
        }
        write!(f, " -> {}", self.source.source().name())?;
        match &self.source {
            SourceSpec::Static(s) => {
                match &s.username {
                    Username::Inline(u) => write!(f, " username={u}")?,
                    Username::File(p) => write!(f, " username_file={}", p.display())?,
                }
                write!(f, " password_file={}", s.password_file.display())
            }
            SourceSpec::DockerConfig(d) => {
                match &d.path {
                    Some(p) => write!(f, " path={}", p.display())?,
                    None => write!(
                        f,
                        " path=$DOCKER_CONFIG/config.json or ~/.docker/config.json"
                    )?,
                }
                write!(
                    f,
                    " helper_timeout={}",
                    humantime::format_duration(d.helper_timeout)
                )
            }
        }
    }
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
        let e = err("[[registry]]\nmatch = [\"a.com\"]\nsource = \"vault\"\n");
        assert!(
            e.starts_with("test.toml: line 3: unknown source \"vault\""),
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
        assert_eq!(c.rules[0].registry.as_deref(), Some("r.example.com"));
        assert!(err("deadline = \"2m\"\n").contains("deadline must be between"));
        assert!(err("deadline = \"soon\"\n").contains("is not a duration"));
        let e = err(
            "[[registry]]\nmatch = [\"a.com\"]\nsource = \"docker-config\"\nregistry = \"x/y\"\n",
        );
        assert!(e.contains("is not a host[:port]"), "{e}");
    }
}
