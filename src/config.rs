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
use crate::sources::ecr::host::is_account_id;
use crate::sources::ecr::{AssumeRole, DEFAULT_SESSION_NAME, EcrSource};
use crate::sources::static_file::{StaticSource, Username};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/pullcred/config.toml";
/// The kubelet kills a plugin after one minute; answer (or fail) well before that.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20);
const MAX_DEADLINE: Duration = Duration::from_secs(55);
const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Private ECR in every partition (plain, FIPS, dual-stack) and ECR Public. The `ecr` source
/// checks each host strictly (12-digit account, a region of the suffix's partition).
const BUILTIN_ECR: &[&str] = &[
    "*.dkr.ecr.*.amazonaws.com",
    "*.dkr.ecr-fips.*.amazonaws.com",
    "*.dkr.ecr.*.amazonaws.com.cn",
    "*.dkr.ecr.*.amazonaws.eu",
    "*.dkr.ecr.*.c2s.ic.gov",
    "*.dkr.ecr-fips.*.c2s.ic.gov",
    "*.dkr.ecr.*.sc2s.sgov.gov",
    "*.dkr.ecr-fips.*.sc2s.sgov.gov",
    "*.dkr.ecr.*.cloud.adc-e.uk",
    "*.dkr.ecr.*.csp.hci.ic.gov",
    "*.dkr-ecr.*.on.aws",
    "*.dkr-ecr-fips.*.on.aws",
    "*.dkr-ecr.*.on.amazonwebservices.com.cn",
    "public.ecr.aws",
    "ecr-public.aws.com",
];

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
    Ecr(EcrSource),
}

impl SourceSpec {
    pub fn source(&self) -> &dyn Source {
        match self {
            SourceSpec::Static(s) => s,
            SourceSpec::DockerConfig(s) => s,
            SourceSpec::Ecr(s) => s,
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
    /// The rules used when no config file exists: every cloud registry by its host names,
    /// with the node's default credentials.
    pub fn builtin() -> Self {
        let rule = |number, patterns: &[&str], source| Rule {
            number,
            patterns: patterns
                .iter()
                .map(|p| Pattern::parse(p).expect("built-in patterns are valid"))
                .collect(),
            registry: None,
            source,
        };
        Config {
            origin: Origin::Builtin,
            deadline: DEFAULT_DEADLINE,
            cache: CacheSettings::default(),
            rules: vec![rule(1, BUILTIN_ECR, SourceSpec::Ecr(EcrSource::default()))],
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
            s.lock_timeout = Some(duration(l, "lock_timeout")?);
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
    region: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    session_name: Option<Spanned<String>>,
    registry_ids: Option<Spanned<Vec<Spanned<String>>>>,
    endpoint: Option<Spanned<String>>,
}

type RuleError = (Option<std::ops::Range<usize>>, String);

impl Rule {
    fn from_raw(number: usize, raw: RawRule, base: &Path) -> Result<Self, RuleError> {
        let file = |p: &Spanned<String>| base.join(p.get_ref());
        let source_name = raw.source.get_ref().as_str();
        let span = |v: &Option<Spanned<String>>| v.as_ref().map(Spanned::span);
        let keys = [
            ("username", span(&raw.username)),
            ("username_file", span(&raw.username_file)),
            ("password_file", span(&raw.password_file)),
            ("path", span(&raw.path)),
            ("helper_timeout", span(&raw.helper_timeout)),
            ("region", span(&raw.region)),
            ("profile", span(&raw.profile)),
            ("role_arn", span(&raw.role_arn)),
            ("external_id", span(&raw.external_id)),
            ("session_name", span(&raw.session_name)),
            ("registry_ids", raw.registry_ids.as_ref().map(Spanned::span)),
            ("endpoint", span(&raw.endpoint)),
        ];
        let allowed: &[&str] = match source_name {
            "static" => &["username", "username_file", "password_file"],
            "docker-config" => &["path", "helper_timeout"],
            "ecr" => &[
                "region",
                "profile",
                "role_arn",
                "external_id",
                "session_name",
                "registry_ids",
                "endpoint",
            ],
            other => {
                return Err((
                    Some(raw.source.span()),
                    format!("unknown source {other:?} (known: static, docker-config, ecr)"),
                ));
            }
        };
        for (key, value) in keys {
            if let Some(span) = value
                && !allowed.contains(&key)
            {
                return Err((
                    Some(span),
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
            "ecr" => SourceSpec::Ecr(ecr_source(&raw)?),
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

fn ecr_source(raw: &RawRule) -> Result<EcrSource, RuleError> {
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    if let Some(r) = &raw.region {
        let ok = !r.get_ref().is_empty()
            && r.get_ref()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err((
                Some(r.span()),
                format!("region {:?} is not an AWS region name", r.get_ref()),
            ));
        }
    }
    let assume_role = match &raw.role_arn {
        Some(arn) => {
            if !arn.get_ref().starts_with("arn:") || !arn.get_ref().contains(":role/") {
                return Err((
                    Some(arn.span()),
                    format!(
                        "role_arn {:?} is not a role ARN (arn:<partition>:iam::<account>:role/<name>)",
                        arn.get_ref()
                    ),
                ));
            }
            Some(AssumeRole {
                role_arn: arn.get_ref().clone(),
                external_id: text(&raw.external_id),
                session_name: text(&raw.session_name)
                    .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_string()),
            })
        }
        None => {
            for (key, v) in [
                ("external_id", &raw.external_id),
                ("session_name", &raw.session_name),
            ] {
                if let Some(v) = v {
                    return Err((Some(v.span()), format!("`{key}` needs `role_arn`")));
                }
            }
            None
        }
    };
    if let Some(name) = &raw.session_name {
        let n = name.get_ref();
        let ok = (2..=64).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b));
        if !ok {
            return Err((
                Some(name.span()),
                "session_name must be 2-64 characters of letters, digits and +=,.@-_".into(),
            ));
        }
    }
    let mut registry_ids = Vec::new();
    for id in raw.registry_ids.iter().flat_map(|ids| ids.get_ref()) {
        let v = id.get_ref();
        if !is_account_id(v) {
            return Err((
                Some(id.span()),
                format!("registry id {v:?} is not a 12-digit account id"),
            ));
        }
        registry_ids.push(v.clone());
    }
    if let Some(e) = &raw.endpoint {
        let v = e.get_ref();
        if !(v.starts_with("https://") || v.starts_with("http://"))
            || v.contains(char::is_whitespace)
        {
            return Err((
                Some(e.span()),
                format!("endpoint {v:?} is not an http(s) URL"),
            ));
        }
    }
    Ok(EcrSource {
        region: text(&raw.region),
        profile: text(&raw.profile),
        assume_role,
        registry_ids,
        endpoint: text(&raw.endpoint),
    })
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
            SourceSpec::Ecr(e) => {
                let mut any = false;
                let mut opt = |f: &mut fmt::Formatter<'_>, key: &str, v: Option<&str>| {
                    if let Some(v) = v {
                        any = true;
                        write!(f, " {key}={v}")?;
                    }
                    Ok::<_, fmt::Error>(())
                };
                opt(f, "region", e.region.as_deref())?;
                opt(f, "profile", e.profile.as_deref())?;
                if let Some(r) = &e.assume_role {
                    opt(f, "role_arn", Some(&r.role_arn))?;
                    opt(f, "external_id", r.external_id.as_ref().map(|_| "(set)"))?;
                    opt(f, "session_name", Some(&r.session_name))?;
                }
                let ids = e.registry_ids.join(",");
                opt(f, "registry_ids", (!ids.is_empty()).then_some(ids.as_str()))?;
                opt(f, "endpoint", e.endpoint.as_deref())?;
                if !any {
                    f.write_str(" (region from the host, default AWS credentials)")?;
                }
                Ok(())
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

    #[test]
    fn ecr_options() {
        let head = "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\n";
        let c = parse(&format!(
            "{head}region = \"eu-west-1\"\nprofile = \"ci\"\nrole_arn = \"arn:aws:iam::111111111111:role/pull\"\nexternal_id = \"x\"\nregistry_ids = [\"111111111111\"]\nendpoint = \"https://vpce.example\"\n"
        ))
        .unwrap();
        let SourceSpec::Ecr(e) = &c.rules[0].source else {
            panic!("not ecr")
        };
        assert_eq!(e.region.as_deref(), Some("eu-west-1"));
        assert_eq!(e.profile.as_deref(), Some("ci"));
        let role = e.assume_role.as_ref().unwrap();
        assert_eq!(role.session_name, DEFAULT_SESSION_NAME);
        assert_eq!(role.external_id.as_deref(), Some("x"));
        assert_eq!(e.registry_ids, ["111111111111"]);
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
            assert_eq!(rule.source.source().name(), "ecr", "{host}");
            rule.source
                .source()
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
