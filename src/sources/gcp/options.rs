//! The rule keys of `gcp`, validated into a [`GcpSource`].

use serde::Deserialize;

use super::GcpSource;
use crate::sources::{OptionError, Options};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GcpOptions {
    key_file: Option<String>,
    service_account: Option<String>,
    impersonate: Option<String>,
    token_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    iam_credentials_endpoint: Option<String>,
}

pub(super) fn from_options(options: &Options<'_>) -> Result<GcpSource, OptionError> {
    let o: GcpOptions = options.parse()?;
    if let Some(sa) = &o.service_account
        && sa != "default"
        && !is_email(sa)
    {
        return Err(OptionError::at(
            "service_account",
            format!("service_account {sa:?} is not a service account email or \"default\""),
        ));
    }
    if let Some(sa) = &o.impersonate
        && !is_email(sa)
    {
        return Err(OptionError::at(
            "impersonate",
            format!("impersonate {sa:?} is not a service account email"),
        ));
    }
    for (key, url) in [
        ("token_endpoint", &o.token_endpoint),
        ("sts_endpoint", &o.sts_endpoint),
        ("iam_credentials_endpoint", &o.iam_credentials_endpoint),
    ] {
        if let Some(url) = url {
            endpoint_allowed(url).map_err(|why| OptionError::at(key, why))?;
        }
    }
    Ok(GcpSource {
        key_file: o.key_file.as_deref().map(|f| options.path(f)),
        service_account: o.service_account,
        impersonate: o.impersonate,
        token_endpoint: o.token_endpoint,
        sts_endpoint: o.sts_endpoint,
        iam_credentials_endpoint: o.iam_credentials_endpoint,
    })
}

/// A service account email, as it goes into a URL path: something@something, nothing that
/// would change the path.
fn is_email(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !s.contains(['/', ' ', ':', '?', '#'])
}

/// Tokens and keys travel only over `https://`; plain `http://` only to this machine.
pub(super) fn endpoint_allowed(url: &str) -> Result<(), String> {
    if url.starts_with("https://") && !url.contains(char::is_whitespace) {
        return Ok(());
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let host = match rest.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => rest.split(['/', ':']).next().unwrap_or(""),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Ok(());
        }
    }
    Err(format!(
        "endpoint {url:?} must be https:// (plain http only to a loopback address)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_but_for_loopback() {
        for ok in [
            "https://oauth2.googleapis.com/token",
            "http://127.0.0.1:8080/token",
            "http://[::1]:80/t",
            "http://localhost/t",
        ] {
            assert!(endpoint_allowed(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://oauth2.googleapis.com/token",
            "http://10.0.0.1/token",
            "ftp://x",
            "oauth2.googleapis.com",
            "http://127.0.0.1.evil.com/t",
        ] {
            assert!(endpoint_allowed(bad).is_err(), "{bad}");
        }
    }
}
