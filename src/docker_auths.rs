//! A docker config's `auths` map, as docker, podman and containers-auth write it: which
//! entry serves an image (by host, and by path where a key narrows to one), and the
//! credential an entry holds. Shared by the `docker-config` source and the secret stores
//! (whose value may be such a config).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::credential::{Credential, Secret};
use crate::image::{DOCKER_HUB, is_docker_hub};

/// One `auths` entry.
#[derive(Deserialize, Default)]
pub struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// The `auths` entries for one registry host. A key is a URL (docker's own, e.g.
/// `https://index.docker.io/v1/`: its host alone counts), a host, or a host and a path
/// (`registry.example.com/team-a`, as podman and containers-auth write them): the last
/// holds a credential for the repositories under that path only, by whole segments.
pub struct Auths<'m> {
    /// (key as written, path if the key narrows, entry).
    entries: Vec<(&'m str, Option<&'m str>, &'m AuthEntry)>,
    /// Whether some key narrows this host to paths: then answers for the host are cached
    /// by the kubelet per image.
    pub narrowed: bool,
}

impl<'m> Auths<'m> {
    pub fn of(map: &'m BTreeMap<String, AuthEntry>, host: &str) -> Self {
        let entries: Vec<_> = map
            .iter()
            .filter_map(|(key, entry)| {
                let (key_host, path) = auth_key(key);
                (key_host == host).then_some((key.as_str(), path, entry))
            })
            .collect();
        let narrowed = entries.iter().any(|(_, path, _)| path.is_some());
        Auths { entries, narrowed }
    }

    /// The entry for `repository`: the key with the longest path that is a whole-segment
    /// prefix of it, else a key for the whole host (one written exactly as the host first).
    /// Never another path's entry.
    pub fn for_repository(&self, repository: &str) -> Option<(&'m AuthEntry, Option<&'m str>)> {
        let under = |p: &str| {
            repository
                .strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let narrow = self
            .entries
            .iter()
            .filter_map(|&(_, path, entry)| Some((path.filter(|p| under(p))?, entry)))
            .max_by_key(|(path, _)| path.len());
        if let Some((path, entry)) = narrow {
            return Some((entry, Some(path)));
        }
        let mut whole = self.entries.iter().filter(|(_, path, _)| path.is_none());
        let exact = self
            .entries
            .iter()
            .find(|(key, path, _)| path.is_none() && auth_key(key).0 == *key);
        exact
            .or_else(|| whole.next())
            .map(|&(_, _, entry)| (entry, None))
    }
}

/// An `auths` key as (host, path if it narrows to one).
fn auth_key(key: &str) -> (String, Option<&str>) {
    if key.starts_with("https://") || key.starts_with("http://") {
        return (normalise(key), None);
    }
    match key.split_once('/') {
        Some((host, path)) => {
            let path = path.trim_matches('/');
            (normalise(host), (!path.is_empty()).then_some(path))
        }
        None => (normalise(key), None),
    }
}

/// Reduces a docker config key or a registry host to a comparable host: no scheme, no path,
/// lower case, Docker Hub's names folded into one.
pub fn normalise(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or("").to_ascii_lowercase();
    if is_docker_hub(&host) {
        DOCKER_HUB.to_string()
    } else {
        host
    }
}

/// The `credHelpers` entry for a host. Helpers are per registry: a key that narrows to a path
/// (`registry.example.com/team-a`) is never taken for its whole host (that ran team-a's
/// helper for team-b's images).
pub fn find<'m, V>(map: &'m BTreeMap<String, V>, host: &str) -> Option<&'m V> {
    // An exact key wins over one that only normalises to the host.
    map.get(host).or_else(|| {
        map.iter()
            .find(|(k, _)| auth_key(k) == (host.to_string(), None))
            .map(|(_, v)| v)
    })
}

/// The credential in an `auths` entry, `None` for an empty placeholder.
pub fn entry_credential(entry: &AuthEntry) -> Result<Option<Credential>, &'static str> {
    let nonempty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let (username, password) = if let Some(token) = nonempty(&entry.identitytoken) {
        (
            nonempty(&entry.username).unwrap_or_else(|| "<token>".into()),
            token,
        )
    } else if let Some(auth) = nonempty(&entry.auth) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "\"auth\" is not base64")?;
        let decoded = String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8")?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or("\"auth\" is not base64 of user:password")?;
        (u.to_string(), p.to_string())
    } else if let (Some(u), Some(p)) = (nonempty(&entry.username), nonempty(&entry.password)) {
        (u, p)
    } else {
        return Ok(None);
    };
    if username.is_empty() || password.is_empty() {
        return Err("empty username or password");
    }
    Ok(Some(Credential {
        username,
        password: Secret::new(password),
        expires_at: None,
        refresh_at: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalise_to_hosts() {
        for (key, host) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("docker.io", "docker.io"),
            ("https://Registry.Example.com/v2/", "registry.example.com"),
            ("http://localhost:5000", "localhost:5000"),
            ("localhost:5000", "localhost:5000"),
        ] {
            assert_eq!(normalise(key), host, "{key}");
        }
    }

    #[test]
    fn auth_entries() {
        let entry = |json: &str| entry_credential(&serde_json::from_str(json).unwrap());
        let c = entry(r#"{"auth":"dXNlcjpwYTpzcw=="}"#).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("user", "pa:ss")
        );
        let c = entry(r#"{"username":"u","password":"p"}"#)
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "p"));
        let c = entry(r#"{"identitytoken":"tok"}"#).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("<token>", "tok")
        );
        assert!(entry("{}").unwrap().is_none());
        assert!(entry(r#"{"auth":"!!"}"#).is_err());
        assert!(entry(r#"{"auth":"bm9jb2xvbg=="}"#).is_err());
    }
}
