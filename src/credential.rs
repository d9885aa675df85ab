//! Credentials and the `Secret` type that keeps their values out of every log and error.

use std::fmt;
use std::time::SystemTime;

/// A secret string (password, token). `Debug` and `Display` print `<redacted>`, so a secret
/// that slips into a log line, an error or a panic message shows nothing. The value is only
/// reachable through [`Secret::expose`], which is greppable.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What a source mints: registry credentials, and when they stop working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: Secret,
    /// `None` for credentials with no intrinsic expiry (static files, docker config).
    pub expires_at: Option<SystemTime>,
    /// When to fetch it anew, where the source fixes that itself (a secret store's
    /// `refresh`, the operator's rotation promise): then no refresh window or jitter
    /// applies, and the kubelet is told to come back exactly then.
    pub refresh_at: Option<SystemTime>,
}

/// What a credential is valid for, when narrower than the registry it was minted for: the
/// repositories under `path` (a docker config's `auths` key such as
/// `registry.example.com/team-a`), and whether the registry has such narrowed credentials at
/// all (then every answer for it is cached by the kubelet per image, so that one path's
/// credential never serves another's images from the kubelet's cache).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub path: Option<String>,
    pub per_image: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_formats_its_value() {
        let cred = Credential {
            username: "puller".into(),
            password: Secret::new("hunter2"),
            expires_at: None,
            refresh_at: None,
        };
        let debug = format!("{cred:?} {:?} {}", cred.password, cred.password);
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("<redacted>"));
        assert_eq!(cred.password.expose(), "hunter2");
    }
}
