//! The rule keys of `gcp`, validated into a [`GcpSource`].

use serde::Deserialize;

use super::GcpSource;
use crate::oauth::endpoint_allowed;
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
