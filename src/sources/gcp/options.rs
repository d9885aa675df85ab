//! The rule keys of `gcp`, validated into a [`GcpSource`].

use serde::Deserialize;

use super::GcpSource;
use crate::http::endpoint_allowed;
use crate::sources::{OptionError, Options};
use crate::workload::IdentityMode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GcpOptions {
    key_file: Option<String>,
    service_account: Option<String>,
    impersonate: Option<String>,
    token_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    iam_credentials_endpoint: Option<String>,
    workload_identity_provider: Option<String>,
    service_account_annotation: Option<String>,
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
            endpoint_allowed(url).map_err(|why| OptionError::at(key, why.to_string()))?;
        }
    }
    let workload_identity_provider = match (options.identity, o.workload_identity_provider) {
        (IdentityMode::Node, None) => None,
        (IdentityMode::Node, Some(_)) => {
            return Err(OptionError::at(
                "workload_identity_provider",
                "`workload_identity_provider` needs identity \"service-account\" or \"service-account-or-node\"",
            ));
        }
        (_, None) => {
            return Err(OptionError::rule(
                "a service account's token is exchanged at a workload identity pool's provider: \
                 set workload_identity_provider",
            ));
        }
        (_, Some(p)) => Some(provider_audience(&p).ok_or_else(|| {
            OptionError::at(
                "workload_identity_provider",
                format!(
                    "workload_identity_provider {p:?} is not \
                     projects/<number>/locations/global/workloadIdentityPools/<pool>/providers/<provider>"
                ),
            )
        })?),
    };
    let service_account_annotation = options.annotation_key(
        "service_account_annotation",
        o.service_account_annotation,
        super::SERVICE_ACCOUNT_ANNOTATION,
    )?;
    Ok(GcpSource {
        workload_identity_provider,
        service_account_annotation,
        key_file: o.key_file.as_deref().map(|f| options.path(f)),
        service_account: o.service_account,
        impersonate: o.impersonate,
        token_endpoint: o.token_endpoint,
        sts_endpoint: o.sts_endpoint,
        iam_credentials_endpoint: o.iam_credentials_endpoint,
    })
}

/// A workload identity pool provider as STS's `audience`: `//iam.googleapis.com/projects/N/
/// locations/global/workloadIdentityPools/P/providers/Q`, given with or without the prefix.
fn provider_audience(p: &str) -> Option<String> {
    const PREFIX: &str = "//iam.googleapis.com/";
    let path = p.strip_prefix(PREFIX).unwrap_or(p);
    let parts: Vec<&str> = path.split('/').collect();
    let ok = matches!(
        parts.as_slice(),
        ["projects", n, "locations", _, "workloadIdentityPools", pool, "providers", provider]
            if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty()
                && !pool.is_empty() && !provider.is_empty()
    ) && !path.contains(char::is_whitespace);
    ok.then(|| format!("{PREFIX}{path}"))
}

/// A service account email, as it goes into a URL path: something@something, nothing that
/// would change the path.
pub(super) fn is_email(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(user, domain)| !user.is_empty() && !domain.is_empty())
        && !s.contains(['/', ' ', ':', '?', '#'])
}
