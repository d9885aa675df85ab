//! Which hosts are ACR login servers: `<name>.azurecr.io` and the sovereign clouds'
//! suffixes, domain-name-label servers `<name>-<hash>.<suffix>`, and geo-replicas'
//! regional endpoints `<name>[-<hash>].<region>.geo.<suffix>`, plus suffixes a rule adds.
//! Strict, as for ECR and Google: the Entra token is exchanged at exactly this host, so a
//! look-alike (`foo.azurecr.io.evil.com`), a data endpoint (`<name>.<region>.data.azurecr.io`,
//! a blob redirect target, never a login server) or a nested name must not pass.

/// The login server suffixes of Azure's public and sovereign clouds.
pub const SUFFIXES: [&str; 4] = ["azurecr.io", "azurecr.cn", "azurecr.us", "azurecr.de"];

/// Registry names are 5 to 50 alphanumerics (Azure's naming rules for
/// `Microsoft.ContainerRegistry/registries`).
const NAME_LEN: std::ops::RangeInclusive<usize> = 5..=50;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host:?} is not an ACR login server: {why}")]
pub struct NotAcr {
    host: String,
    why: &'static str,
}

/// Whether `host` (with its port, if any) is a login server under one of the built-in
/// suffixes or `extra` (a rule's `suffixes`).
pub fn check(host: &str, extra: &[String]) -> Result<(), NotAcr> {
    let not = |why| NotAcr {
        host: host.to_string(),
        why,
    };
    if host.contains(':') {
        return Err(not("ACR login servers have no port"));
    }
    let lower = host.to_ascii_lowercase();
    let suffixes = SUFFIXES
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str));
    let Some(head) = suffixes
        .filter_map(|s| lower.strip_suffix(s)?.strip_suffix('.'))
        .next()
    else {
        return Err(not("expected <registry>.azurecr.io or another ACR suffix"));
    };
    let labels: Vec<&str> = head.split('.').collect();
    match labels.as_slice() {
        [server] => registry_label(server).map_err(not),
        [server, region, "geo"] if is_region(region) => registry_label(server).map_err(not),
        [_, _, "data"] => Err(not(
            "a dedicated data endpoint serves blobs, not logins; use the registry's login server",
        )),
        _ => Err(not(
            "expected <registry>, <registry>-<hash> or <registry>.<region>.geo before the suffix",
        )),
    }
}

/// `<name>` or `<name>-<hash>` (a domain-name-label login server): the name 5 to 50
/// alphanumerics, the hash alphanumerics.
fn registry_label(label: &str) -> Result<(), &'static str> {
    let (name, hash) = match label.split_once('-') {
        Some((name, hash)) => (name, Some(hash)),
        None => (label, None),
    };
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !NAME_LEN.contains(&name.len()) || !alnum(name) {
        return Err("a registry name is 5 to 50 letters and digits");
    }
    if let Some(hash) = hash
        && (hash.is_empty() || !alnum(hash) || label.len() > 63)
    {
        return Err("a domain name label hash is letters and digits after one dash");
    }
    Ok(())
}

/// An Azure region name as it appears in a regional endpoint: `eastus`, `westeurope`,
/// `eastus2`.
fn is_region(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_server_forms_and_look_alikes() {
        let extra = vec!["azurecr.example".to_string()];
        for host in [
            "myregistry.azurecr.io",
            "MyRegistry.AzureCR.io",
            "myregistry.azurecr.cn",
            "myregistry.azurecr.us",
            "myregistry.azurecr.de",
            "myregistry-e7ggabhxb3esdbdp.azurecr.io",
            "myregistry.westus.geo.azurecr.io",
            "myregistry.eastus2.geo.azurecr.io",
            "myregistry-e7ggabhxb3esdbdp.eastus.geo.azurecr.io",
            "myregistry.azurecr.example",
            "myregistry.westus.geo.azurecr.example",
            "abcde.azurecr.io",
            &format!("{}.azurecr.io", "a".repeat(50)),
        ] {
            assert_eq!(check(host, &extra), Ok(()), "{host}");
        }
        for host in [
            "azurecr.io",
            ".azurecr.io",
            "foo.azurecr.io.evil.com",
            "foo.bar.azurecr.io",
            "myregistry.westus.data.azurecr.io",
            "myregistry.westus.geo.azurecr.io.evil.com",
            "myregistry.geo.azurecr.io",
            "myregistry.west-us.geo.azurecr.io",
            "a.b.westus.geo.azurecr.io",
            "abcd.azurecr.io",
            &format!("{}.azurecr.io", "a".repeat(51)),
            "my_registry.azurecr.io",
            "myregistry-.azurecr.io",
            "myregistry-a-b.azurecr.io",
            "myregistry.azurecr.io:443",
            "evilazurecr.io",
            "myregistry.azurecr.example",
            "myregistry.azurecr.com",
        ] {
            assert!(check(host, &[]).is_err(), "{host}");
        }
        assert_eq!(
            check("myregistry.westus.data.azurecr.io", &[])
                .unwrap_err()
                .to_string(),
            "\"myregistry.westus.data.azurecr.io\" is not an ACR login server: a dedicated data \
             endpoint serves blobs, not logins; use the registry's login server"
        );
    }
}
