//! AWS's partitions as the SDK's partition data lists them: which DNS suffix serves a
//! region, and the region and account id forms. Shared by every AWS source.

/// The DNS suffixes of the AWS partitions (as listed in the SDK's partition data), each with
/// the region prefixes that belong to it. A region from another partition under a suffix is
/// not a registry AWS serves.
pub const PARTITIONS: &[(&str, &[&str])] = &[
    (
        "amazonaws.com",
        &[
            "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
        ],
    ),
    ("amazonaws.com.cn", &["cn-"]),
    ("amazonaws.eu", &["eusc-"]),
    ("c2s.ic.gov", &["us-iso-"]),
    ("sc2s.sgov.gov", &["us-isob-"]),
    ("cloud.adc-e.uk", &["eu-isoe-"]),
    ("csp.hci.ic.gov", &["us-isof-"]),
];

/// An AWS account id: exactly 12 digits.
pub fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// An AWS region name (`us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`, `eusc-de-east-1`):
/// lower-case words joined by dashes, ending in a number. The one region check, for hosts
/// and for a rule's `region`.
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The DNS suffix of the partition `region` belongs to (by its longest matching prefix:
/// `us-iso-east-1` starts with `us-` too, but is an ISO region).
pub fn dns_suffix(region: &str) -> Option<&'static str> {
    PARTITIONS
        .iter()
        .flat_map(|(suffix, prefixes)| prefixes.iter().map(move |p| (*suffix, *p)))
        .filter(|(_, p)| region.starts_with(p))
        .max_by_key(|(_, p)| p.len())
        .map(|(suffix, _)| suffix)
}

/// The dual-stack (IPv6) API suffix of a partition, where it has one.
pub fn dual_stack_suffix(dns_suffix: &str) -> Option<&'static str> {
    match dns_suffix {
        "amazonaws.com" => Some("api.aws"),
        "amazonaws.com.cn" => Some("api.amazonwebservices.com.cn"),
        _ => None,
    }
}

/// The regional endpoint of `service` (its host's first label, e.g. `secretsmanager`) in
/// `region`: FIPS (`<service>-fips.`) and dual-stack as asked, or why there is none.
pub fn endpoint(
    service: &str,
    region: &str,
    fips: bool,
    dual_stack: bool,
) -> Result<String, &'static str> {
    let suffix = dns_suffix(region).ok_or("the region belongs to no AWS partition")?;
    let suffix = if dual_stack {
        dual_stack_suffix(suffix).ok_or("the region's partition has no dual-stack endpoints")?
    } else {
        suffix
    };
    let service = if fips {
        format!("{service}-fips")
    } else {
        service.to_string()
    };
    Ok(format!("https://{service}.{region}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_per_partition() {
        assert_eq!(
            endpoint("secretsmanager", "eu-west-1", false, false).unwrap(),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("secretsmanager", "us-gov-west-1", true, false).unwrap(),
            "https://secretsmanager-fips.us-gov-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint("secretsmanager", "cn-north-1", false, true).unwrap(),
            "https://secretsmanager.cn-north-1.api.amazonwebservices.com.cn"
        );
        assert_eq!(
            endpoint("secretsmanager", "us-iso-east-1", false, false).unwrap(),
            "https://secretsmanager.us-iso-east-1.c2s.ic.gov"
        );
        assert!(endpoint("secretsmanager", "us-iso-east-1", false, true).is_err());
        assert!(endpoint("secretsmanager", "xx-east-1", false, false).is_err());
    }
}
