//! A registry credential kept in a secret store, for the four store sources: the rule keys
//! they all take (how to read the value, how often to fetch it), what a value may hold,
//! the call to a store (retried only when the store may heal by itself), and the timing of
//! what is fetched: the rule's `refresh` is the operator's rotation promise, so the entry
//! is fetched anew exactly then and the kubelet is told to come back then; a store that is
//! unreachable is covered by the last value for `max_stale` more, a store that says no is
//! not.

use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::credential::{Credential, Scope, Secret};
use crate::docker_auths::{AuthEntry, Auths, entry_credential, normalise};
use crate::failure::{ErrorKind, SourceError};
use crate::http::Call;
use crate::rule_keys::OptionError;

/// The shortest and longest `refresh`, and the defaults.
const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);
const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);
const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);
/// The fields a JSON value's credential is read from unless the rule renames them.
const USERNAME_FIELD: &str = "username";
const PASSWORD_FIELD: &str = "password";

/// The keys every secret-store source takes about the value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    username: Option<String>,
    username_field: Option<String>,
    password_field: Option<String>,
    refresh: Option<String>,
    max_stale: Option<String>,
}

/// How a rule reads its secret, and how often.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// A fixed username: the value (or, in a map, its password field) is the password.
    pub username: Option<String>,
    pub username_field: String,
    pub password_field: String,
    pub refresh: Duration,
    pub max_stale: Duration,
}

impl Reading {
    pub fn from_keys(k: Keys) -> Result<Self, OptionError> {
        let duration = |key: &str, v: &Option<String>, default| match v {
            None => Ok(default),
            Some(text) => crate::units::parse_duration(text)
                .map_err(|e| OptionError::at(key, format!("{key} {text:?}: {e}"))),
        };
        let refresh = duration("refresh", &k.refresh, DEFAULT_REFRESH)?;
        if !(MIN_REFRESH..=MAX_REFRESH).contains(&refresh) {
            return Err(OptionError::at(
                "refresh",
                "refresh must be from 1s to 24h: how often the secret is fetched anew",
            ));
        }
        let max_stale = duration("max_stale", &k.max_stale, DEFAULT_MAX_STALE)?;
        if max_stale > MAX_REFRESH {
            return Err(OptionError::at(
                "max_stale",
                "max_stale must be at most 24h",
            ));
        }
        if k.username.is_some() && k.username_field.is_some() {
            return Err(OptionError::at(
                "username_field",
                "username_field names where the username is; the rule's username is fixed",
            ));
        }
        if let Some(u) = &k.username
            && (u.is_empty() || u.contains(['\n', '\r']))
        {
            return Err(OptionError::at(
                "username",
                "username must be one line, not empty",
            ));
        }
        for (key, v) in [
            ("username_field", &k.username_field),
            ("password_field", &k.password_field),
        ] {
            if v.as_deref().is_some_and(str::is_empty) {
                return Err(OptionError::at(key, format!("{key} must not be empty")));
            }
        }
        Ok(Reading {
            username: k.username,
            username_field: k.username_field.unwrap_or_else(|| USERNAME_FIELD.into()),
            password_field: k.password_field.unwrap_or_else(|| PASSWORD_FIELD.into()),
            refresh,
            max_stale,
        })
    }

    /// The keys in effect that differ from the defaults, for `config check`.
    pub fn describe(&self, parts: &mut Vec<String>) {
        if let Some(u) = &self.username {
            parts.push(format!("username={u}"));
        }
        if self.username_field != USERNAME_FIELD {
            parts.push(format!("username_field={}", self.username_field));
        }
        if self.password_field != PASSWORD_FIELD {
            parts.push(format!("password_field={}", self.password_field));
        }
        parts.push(format!(
            "refresh={} max_stale={}",
            humantime::format_duration(self.refresh),
            humantime::format_duration(self.max_stale)
        ));
    }

    /// Whether a value may be a docker config, whose entries can narrow to paths (then the
    /// cache keeps one entry per repository under a marker; see `Spec::keyed_by_repository`).
    pub fn may_narrow(&self) -> bool {
        self.username.is_none()
    }

    /// The credential a secret's value holds for `host` and `repository`, timed by the
    /// rule's refresh from `now`. `secret` names the secret in errors (never the value).
    pub fn credential(
        &self,
        value: Stored<'_>,
        host: &str,
        repository: &str,
        secret: &str,
        now: SystemTime,
    ) -> Result<(Credential, Scope), SourceError> {
        let not =
            |why: String| SourceError::local(format!("secret {secret}: not a credential ({why})"));
        let (username, password, scope) = match value {
            Stored::Text(text) => match &self.username {
                Some(u) => (
                    u.clone(),
                    crate::secret_file::trim_newline(text).to_string(),
                    Scope::default(),
                ),
                None => {
                    let map: Map<String, Value> = serde_json::from_str(text).map_err(|_| {
                        not("not a JSON object; with `username` set, the whole value is the password".into())
                    })?;
                    self.read_map(&map, host, repository, secret)?
                }
            },
            Stored::Map(map) => self.read_map(map, host, repository, secret)?,
        };
        if username.is_empty() || password.is_empty() {
            return Err(not("empty username or password".into()));
        }
        let refresh_at = now + self.refresh;
        Ok((
            Credential {
                username,
                password: Secret::new(password),
                expires_at: Some(refresh_at + self.max_stale),
                refresh_at: Some(refresh_at),
            },
            scope,
        ))
    }

    fn read_map(
        &self,
        map: &Map<String, Value>,
        host: &str,
        repository: &str,
        secret: &str,
    ) -> Result<(String, String, Scope), SourceError> {
        let not =
            |why: String| SourceError::local(format!("secret {secret}: not a credential ({why})"));
        let field = |name: &str| match map.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(not(format!("its {name:?} is not a string"))),
            None => Err(not(format!("it has no {name:?}"))),
        };
        if let Some(u) = &self.username {
            return Ok((u.clone(), field(&self.password_field)?, Scope::default()));
        }
        if let Some(auths) = map.get("auths") {
            let auths: std::collections::BTreeMap<String, AuthEntry> =
                serde_json::from_value(auths.clone())
                    .map_err(|_| not("its \"auths\" is not a docker config's".into()))?;
            let host = normalise(host);
            let found = Auths::of(&auths, &host);
            let Some((entry, path)) = found.for_repository(repository) else {
                return Err(SourceError::not_found(format!(
                    "secret {secret}: the docker config has no entry for {host}"
                )));
            };
            let what = match path {
                Some(p) => format!("{host}/{p}"),
                None => host.clone(),
            };
            let credential = entry_credential(entry)
                .map_err(|why| not(format!("auths entry for {what}: {why}")))?
                .ok_or_else(|| not(format!("auths entry for {what} is empty")))?;
            let scope = Scope {
                path: path.map(str::to_string),
                per_image: found.narrowed,
            };
            return Ok((
                credential.username,
                credential.password.expose().to_string(),
                scope,
            ));
        }
        Ok((
            field(&self.username_field)?,
            field(&self.password_field)?,
            Scope::default(),
        ))
    }
}

/// A secret's value as a store answers it: text (a string secret), or a map (Vault's KV).
pub enum Stored<'a> {
    Text(&'a str),
    Map(&'a Map<String, Value>),
}

/// A store's base URL as a rule or the environment replaces it: an endpoint a credential
/// may go to (`https://`, plain `http://` to loopback only) and nothing but scheme, host
/// and port; answered as the parsed URL's origin (no trailing `/`).
pub fn base_url(url: &str) -> Result<String, String> {
    crate::http::endpoint_allowed(url).map_err(|e| e.to_string())?;
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() || parsed.fragment().is_some()
    {
        return Err(format!(
            "{}: a store's endpoint is its base URL, with no path",
            crate::logging::redact_urls(url)
        ));
    }
    // What is sent is what was judged: the parsed URL's scheme, host and port.
    Ok(parsed.origin().ascii_serialization())
}

/// The error of a store's read of `secret`, saying which of not found, denied or
/// unreachable it was.
pub fn read_error(secret: &str, e: crate::http::CallError) -> SourceError {
    use crate::http::CallError;
    let why = match &e {
        CallError::Absent(_) => "not found",
        CallError::Refused(_) => "denied",
        CallError::Failed(_) => "the store did not answer",
    };
    let text = format!("secret {secret}: {why} ({e})");
    let cause = SourceError::from(e);
    SourceError::new(cause.kind(), text).caused_by(cause)
}

/// Only an unreachable store (transport errors, 5xx, throttling) is covered by the last
/// value; a missing or denied secret, or a value that is no credential, is an error at once.
pub fn serves_stale_after(failure: ErrorKind) -> bool {
    failure == ErrorKind::Transient
}

/// A call to a store's API: retried on throttling and 5xx; a 404 is a missing secret (or
/// path); `explain` reads the store's refusal.
pub fn call(what: &str, deadline: Instant, explain: fn(&[u8]) -> String) -> Call<'_> {
    Call {
        what,
        attempts: crate::http::MAX_ATTEMPTS,
        deadline,
        transient: |status, _| status == 429 || status >= 500,
        absent: |status, _| status == 404,
        explain,
    }
}

/// The refusal of a store in the shapes they answer: Google's and Azure's `error` object
/// (`status` or `code`, and `message`), Vault's `errors` list. Stores do not echo a
/// secret's value in these fields; the text is made one line.
pub fn refusal(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return "not an API error answer".into();
    };
    let text = |x: Option<&Value>| x.and_then(Value::as_str).map(str::to_string);
    let parts: Vec<String> = match (&v["error"], &v["errors"]) {
        (Value::Object(o), _) => [
            text(o.get("status")).or_else(|| text(o.get("code"))),
            text(o.get("message")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        (_, Value::Array(list)) => list
            .iter()
            .filter_map(|e| text(Some(e)).or_else(|| text(e.get("message"))))
            .collect(),
        _ => Vec::new(),
    };
    // One line: Vault's messages are lists on several lines.
    let joined = parts.join(": ");
    let line: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line: String = line.join(" ").chars().take(300).collect();
    if line.is_empty() {
        "no reason given".into()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(keys: &str) -> Result<Reading, OptionError> {
        let k: Keys = toml::from_str(keys).unwrap();
        Reading::from_keys(k)
    }

    fn read(r: &Reading, value: &str) -> Result<(String, String, Scope), SourceError> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        r.credential(
            Stored::Text(value),
            "registry.example.com",
            "team-a/app",
            "s",
            now,
        )
        .map(|(c, s)| {
            assert_eq!(c.refresh_at, Some(now + r.refresh));
            assert_eq!(c.expires_at, Some(now + r.refresh + r.max_stale));
            (c.username, c.password.expose().to_string(), s)
        })
    }

    #[test]
    fn refresh_is_bounded_and_keys_are_checked() {
        let r = reading("").unwrap();
        assert_eq!(
            (r.refresh, r.max_stale),
            (DEFAULT_REFRESH, DEFAULT_MAX_STALE)
        );
        for (keys, key) in [
            ("refresh = \"0s\"", "refresh"),
            ("refresh = \"25h\"", "refresh"),
            ("refresh = \"soon\"", "refresh"),
            ("max_stale = \"2d\"", "max_stale"),
            ("username = \"u\"\nusername_field = \"x\"", "username_field"),
            ("password_field = \"\"", "password_field"),
        ] {
            assert_eq!(
                reading(keys).unwrap_err().key.as_deref(),
                Some(key),
                "{keys}"
            );
        }
        assert_eq!(reading("refresh = \"1s\"").unwrap().refresh, MIN_REFRESH);
        assert_eq!(reading("refresh = \"24h\"").unwrap().refresh, MAX_REFRESH);
    }

    #[test]
    fn values_hold_a_password_fields_or_a_docker_config() {
        let fixed = reading("username = \"robot\"").unwrap();
        assert_eq!(read(&fixed, "pw\n").unwrap().1, "pw");
        assert_eq!(
            read(&fixed, "{\"password\":\"x\"}").unwrap().1,
            "{\"password\":\"x\"}"
        );
        let json = reading("").unwrap();
        let (u, p, _) = read(&json, r#"{"username":"u","password":"p"}"#).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("u", "p"));
        let renamed = reading("username_field = \"user\"\npassword_field = \"token\"").unwrap();
        let (u, p, _) = read(&renamed, r#"{"user":"u","token":"t"}"#).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("u", "t"));
        // A docker config: the image's host, its path's entry where one narrows.
        let config = r#"{"auths":{"registry.example.com/team-a":{"auth":"YTpi"},"registry.example.com":{"username":"w","password":"x"}}}"#;
        let (u, p, scope) = read(&json, config).unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("a", "b"));
        assert_eq!(scope.path.as_deref(), Some("team-a"));
        assert!(scope.per_image);
        let e = read(&json, r#"{"auths":{"other.example.com":{"auth":"YTpi"}}}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        for bad in [
            "plain text",
            r#"{"username":"u"}"#,
            r#"{"username":"u","password":5}"#,
            r#"{"username":"","password":"p"}"#,
        ] {
            let e = read(&json, bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Local, "{bad}");
            assert!(
                e.to_string().starts_with("secret s: not a credential ("),
                "{e}"
            );
            assert!(!e.to_string().contains("plain text"), "{e}");
        }
    }

    #[test]
    fn refusals_in_each_stores_shape() {
        for (body, want) in [
            (
                r#"{"error":{"code":404,"message":"Secret [x] not found.","status":"NOT_FOUND"}}"#,
                "NOT_FOUND: Secret [x] not found.",
            ),
            (
                r#"{"error":{"code":"SecretNotFound","message":"A secret with (name/id) x was not found in this key vault."}}"#,
                "SecretNotFound: A secret with (name/id) x was not found in this key vault.",
            ),
            (
                r#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#,
                "1 error occurred: * permission denied",
            ),
            ("<html>", "not an API error answer"),
            ("{}", "no reason given"),
        ] {
            assert_eq!(refusal(body.as_bytes()), want, "{body}");
        }
    }
}
