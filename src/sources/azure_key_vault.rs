//! Source `azure-key-vault`: a registry credential kept as a Key Vault secret, read with
//! `GET /secrets/<name>[/<version>]?api-version=…` and an Entra token for Key Vault from
//! the shared Azure identity (managed identity, service principal, `azure.json`, a
//! federated token; or a workload's application). The vault's cloud (public, China, US
//! Government) names the token's resource.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec, run_mint};
use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::http::{Unreadable, web_client};
use crate::identity::azure::{self, Entra, Resource};
use crate::stored::{self, Reading, Stored};

kinds! {
    name: "azure-key-vault",
    options: KeyVaultOptions,
    shared: [azure::Keys, stored::Keys],
    build: from_options,
    builtin: &[],
    workloads: super::Workloads::Optional,
}

/// The Key Vault REST API version every read names: 7.4 is generally available in every
/// cloud and answers `value` as documented.
pub const API_VERSION: &str = "7.4";

/// Each cloud's vault DNS suffix, and Key Vault's Entra resource there.
const CLOUDS: &[(&str, &str)] = &[
    ("vault.azure.net", "https://vault.azure.net"),
    ("vault.azure.cn", "https://vault.azure.cn"),
    ("vault.usgovcloudapi.net", "https://vault.usgovcloudapi.net"),
];

/// The rule keys of `azure-key-vault` (beyond the Azure identity's and the stored value's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyVaultOptions {
    vault: Option<String>,
    secret: Option<String>,
    version: Option<String>,
    endpoint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVaultSource {
    /// `https://<vault>.<suffix>`, or the rule's endpoint.
    base: String,
    /// Key Vault's Entra resource in the vault's cloud.
    resource: &'static str,
    secret: String,
    version: Option<String>,
    entra: Entra,
    reading: Reading,
}

fn from_options(options: &Options<'_>) -> Result<KeyVaultSource, OptionError> {
    let (rest, keys) = options.split::<azure::Keys>()?;
    let (rest, value_keys) = rest.split::<stored::Keys>()?;
    let o: KeyVaultOptions = rest.parse()?;
    let entra = Entra::from_keys(keys, options)?;
    let reading = Reading::from_keys(value_keys)?;
    let vault = o.vault.ok_or_else(|| {
        OptionError::rule("source \"azure-key-vault\" needs `vault` (a name or its URL)")
    })?;
    let (url, resource) = vault_url(&vault).ok_or_else(|| {
        OptionError::at(
            "vault",
            format!(
                "vault {vault:?} is not a vault name (3-24 letters, digits and dashes) or https://<name>.vault.azure.net (.cn, .usgovcloudapi.net)"
            ),
        )
    })?;
    let secret = o
        .secret
        .ok_or_else(|| OptionError::rule("source \"azure-key-vault\" needs `secret`"))?;
    let name_ok = !secret.is_empty()
        && secret.len() <= 127
        && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !name_ok {
        return Err(OptionError::at(
            "secret",
            format!("secret {secret:?} is not a Key Vault secret name (1-127 letters, digits and dashes)"),
        ));
    }
    if let Some(v) = &o.version
        && !(v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(OptionError::at(
            "version",
            format!("version {v:?} is not a secret version (32 hexadecimal digits)"),
        ));
    }
    let base = match &o.endpoint {
        Some(e) => stored::base_url(e).map_err(|why| OptionError::at("endpoint", why))?,
        None => url,
    };
    Ok(KeyVaultSource {
        base,
        resource,
        secret,
        version: o.version,
        entra,
        reading,
    })
}

/// A vault's URL and Key Vault's resource in its cloud, from its name (the public cloud)
/// or its URL.
fn vault_url(vault: &str) -> Option<(String, &'static str)> {
    let is_name = |n: &str| {
        (3..=24).contains(&n.len())
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && n.as_bytes()[0].is_ascii_alphabetic()
            && !n.ends_with('-')
            && !n.contains("--")
    };
    let Some(rest) = vault.strip_prefix("https://") else {
        return is_name(vault).then(|| (format!("https://{vault}.{}", CLOUDS[0].0), CLOUDS[0].1));
    };
    let host = rest.strip_suffix('/').unwrap_or(rest).to_ascii_lowercase();
    let (name, suffix) = host.split_once('.')?;
    let (_, resource) = CLOUDS.iter().find(|(s, _)| *s == suffix)?;
    is_name(name).then(|| (format!("https://{host}"), *resource))
}

impl Spec for KeyVaultSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    stored_value_spec!(reading);

    fn describe(&self) -> String {
        let mut parts = vec![
            format!("vault={}", self.base),
            format!("secret={}", self.secret),
        ];
        if let Some(v) = &self.version {
            parts.push(format!("version={v}"));
        }
        self.entra.describe(&mut parts);
        self.reading.describe(&mut parts);
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "azure-key-vault {:?} {:?} {:?} {:?} {:?} {}",
            self.base,
            self.resource,
            self.secret,
            self.version,
            self.reading,
            self.entra.cache_identity(env)
        )
    }

    fn max_mint_time(&self) -> Duration {
        Duration::from_secs(20)
    }

    workload_identity_of!(entra);
}

/// A secret bundle: its `value`.
#[derive(Deserialize)]
struct Answer {
    value: Option<String>,
}

fn read_answer(body: &[u8]) -> Result<String, Unreadable> {
    let a: Answer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("a secret bundle"))?;
    a.value.ok_or(Unreadable::Empty("secret value"))
}

impl Source for KeyVaultSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.mint_scoped(req).map(|(c, _)| c)
    }

    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let named = match &self.version {
            Some(v) => format!("{}/{v}", self.secret),
            None => self.secret.clone(),
        };
        let scope_text = format!("{}/.default", self.resource);
        let resource = Resource {
            resource: self.resource,
            scope: &scope_text,
        };
        let mut scope = Scope::default();
        let scope_out = &mut scope;
        let credential = run_mint(
            budget,
            |resolver, _limit| async move {
                let client = web_client(req.env, &resolver, false, &azure::TIMEOUTS)?;
                let token = self
                    .entra
                    .token(
                        req.env,
                        &resolver,
                        &client,
                        req.workload,
                        &resource,
                        req.deadline,
                    )
                    .await?;
                let url = format!(
                    "{}/secrets/{named}?api-version={API_VERSION}",
                    self.base
                );
                let what = format!("Key Vault {} secret {named}", self.base);
                let value = stored::call(&what, req.deadline, stored::refusal)
                    .fetch(
                        || client.get(&url).bearer_auth(token.token.expose()),
                        |_| Ok(()),
                        read_answer,
                    )
                    .await
                    .map_err(|e| stored::read_error(&named, e))?;
                let (mut credential, found) = self.reading.credential(
                    Stored::Text(&value),
                    req.mint_host,
                    req.repository,
                    &named,
                    req.env.now(),
                )?;
                // Read with a workload's token: kept no longer than it.
                if req.workload.is_some()
                    && let Some(end) = crate::oauth::jwt::unverified_claims(token.token.expose())
                        .and_then(|c| c.get("exp")?.as_u64())
                        .and_then(crate::units::unix_seconds)
                {
                    credential.expires_at = credential.expires_at.map(|e| e.min(end));
                }
                *scope_out = found;
                Ok(credential)
            },
            || format!("Key Vault secret {}", self.secret),
        )?;
        Ok((credential, scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vaults_by_name_or_url_in_each_cloud() {
        assert_eq!(
            vault_url("hub-creds"),
            Some(("https://hub-creds.vault.azure.net".into(), "https://vault.azure.net"))
        );
        assert_eq!(
            vault_url("https://Hub-Creds.vault.azure.cn/"),
            Some(("https://hub-creds.vault.azure.cn".into(), "https://vault.azure.cn"))
        );
        assert_eq!(
            vault_url("https://gov1.vault.usgovcloudapi.net").map(|v| v.1),
            Some("https://vault.usgovcloudapi.net")
        );
        for bad in [
            "ab",
            "1abc",
            "https://x.evil.example",
            "https://hub.vault.azure.net.evil.example",
            "https://hub.vault.azure.net/secrets",
            "http://hub.vault.azure.net",
        ] {
            assert_eq!(vault_url(bad), None, "{bad}");
        }
    }
}
