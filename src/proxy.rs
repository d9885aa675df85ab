//! Outbound proxy settings for upstream calls, read from the `Env` (`HTTPS_PROXY`,
//! `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, upper or lower case), and the metadata endpoints
//! that must never go through a proxy.

use crate::env::Env;

/// The link-local metadata endpoints of the clouds: EC2 IMDS (IPv4 and IPv6), ECS task
/// credentials, EKS Pod Identity. A proxy would answer them with its own identity, or not at
/// all, so they always bypass it.
pub const METADATA_HOSTS: &[&str] = &[
    "169.254.169.254",
    "fd00:ec2::254",
    "169.254.170.2",
    "169.254.170.23",
    "fd00:ec2::23",
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for `https://` URLs.
    pub https: Option<String>,
    /// Proxy for `http://` URLs.
    pub http: Option<String>,
    /// Comma-separated bypass rules: the user's `NO_PROXY`, then the metadata hosts.
    pub no_proxy: String,
}

impl ProxySettings {
    /// Reads the conventional variables; `extra_direct` names more hosts that must bypass
    /// the proxy (e.g. an overridden metadata endpoint).
    pub fn from_env(env: &Env, extra_direct: &[&str]) -> Self {
        let first = |names: &[&str]| names.iter().find_map(|n| env.var(n)).map(str::to_string);
        let all = first(&["ALL_PROXY", "all_proxy"]);
        let user = first(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
        let no_proxy: Vec<&str> = user
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .chain(METADATA_HOSTS.iter().copied())
            .chain(extra_direct.iter().copied())
            .collect();
        ProxySettings {
            https: first(&["HTTPS_PROXY", "https_proxy"]).or_else(|| all.clone()),
            http: first(&["HTTP_PROXY", "http_proxy"]).or(all),
            no_proxy: no_proxy.join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_conventional_variables_and_always_bypasses_metadata() {
        let env = Env::from_vars(
            [
                ("https_proxy", "http://proxy:3128"),
                ("NO_PROXY", "internal.example, .corp"),
            ],
            0,
        );
        let p = ProxySettings::from_env(&env, &["imds.test"]);
        assert_eq!(p.https.as_deref(), Some("http://proxy:3128"));
        assert_eq!(p.http, None);
        assert!(
            p.no_proxy
                .starts_with("internal.example,.corp,169.254.169.254,")
        );
        assert!(p.no_proxy.ends_with(",imds.test"));

        let env = Env::from_vars([("ALL_PROXY", "http://all:1")], 0);
        let p = ProxySettings::from_env(&env, &[]);
        assert_eq!(p.https.as_deref(), Some("http://all:1"));
        assert_eq!(p.http.as_deref(), Some("http://all:1"));
        let none = ProxySettings::from_env(&Env::from_vars::<[(&str, &str); 0], _, _>([], 0), &[]);
        assert!(none.https.is_none() && none.http.is_none());
    }
}
