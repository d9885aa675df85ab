//! Which ECR registry a host name names: account, region and endpoint flavour for private
//! ECR, or ECR Public. Strict on purpose: the token we mint is handed to exactly this host,
//! so a name that merely resembles ECR must not parse.

use crate::identity::aws::partition::{PARTITIONS, is_account_id, valid_region};

/// A registry host that ECR serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EcrHost {
    Private(PrivateRegistry),
    /// `public.ecr.aws` and `ecr-public.aws.com`: minted by ECR Public, always in us-east-1.
    Public,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateRegistry {
    /// The 12-digit AWS account id.
    pub account: String,
    pub region: String,
    /// `dkr.ecr-fips` / `dkr-ecr-fips`: the API call must use the FIPS endpoint too.
    pub fips: bool,
    /// `dkr-ecr.<region>.on.aws`: the IPv6 (dual-stack) registry; the API call uses the
    /// dual-stack endpoint too.
    pub dual_stack: bool,
}

/// Suffixes of the dual-stack registry hosts (`<account>.dkr-ecr.<region>.<suffix>`).
const DUAL_STACK: &[(&str, &[&str])] = &[
    (
        "on.aws",
        &[
            "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
        ],
    ),
    ("on.amazonwebservices.com.cn", &["cn-"]),
];

const PUBLIC_HOSTS: [&str; 2] = ["public.ecr.aws", "ecr-public.aws.com"];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host:?} is not an ECR registry host: {why}")]
pub struct NotEcr {
    host: String,
    why: &'static str,
}

impl EcrHost {
    pub fn parse(host: &str) -> Result<Self, NotEcr> {
        let not = |why| NotEcr {
            host: host.to_string(),
            why,
        };
        // Host names are case-insensitive, but ECR names its registries in lower case and
        // the kubelet matches the answer's key literally; refuse rather than guess.
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(not("upper-case letters"));
        }
        if PUBLIC_HOSTS.contains(&host) {
            return Ok(EcrHost::Public);
        }
        if host.contains(':') {
            return Err(not("ECR registries have no port"));
        }
        let (account, rest) = host.split_once('.').ok_or_else(|| not("no domain"))?;
        if !is_account_id(account) {
            return Err(not("the first label must be a 12-digit account id"));
        }
        let (service, rest) = if let Some(r) = rest.strip_prefix("dkr.ecr-fips.") {
            ((true, false), r)
        } else if let Some(r) = rest.strip_prefix("dkr.ecr.") {
            ((false, false), r)
        } else if let Some(r) = rest.strip_prefix("dkr-ecr-fips.") {
            ((true, true), r)
        } else if let Some(r) = rest.strip_prefix("dkr-ecr.") {
            ((false, true), r)
        } else {
            return Err(not(
                "expected dkr.ecr, dkr.ecr-fips, dkr-ecr or dkr-ecr-fips",
            ));
        };
        let (fips, dual_stack) = service;
        let (region, suffix) = rest.split_once('.').ok_or_else(|| not("no region"))?;
        if !valid_region(region) {
            return Err(not("the region label is not an AWS region name"));
        }
        let table = if dual_stack { DUAL_STACK } else { PARTITIONS };
        let (_, prefixes) = table
            .iter()
            .find(|(s, _)| *s == suffix)
            .ok_or_else(|| not("the domain is not one of AWS's"))?;
        // A region belongs to the partition with its longest matching prefix: `us-iso-east-1`
        // starts with `us-` too, but is an ISO region, never served under amazonaws.com.
        let owner = PARTITIONS
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|p| region.starts_with(**p))
            .max_by_key(|p| p.len());
        if !owner.is_some_and(|p| prefixes.contains(p)) {
            return Err(not("the region does not belong to the domain's partition"));
        }
        Ok(EcrHost::Private(PrivateRegistry {
            account: account.to_string(),
            region: region.to_string(),
            fips,
            dual_stack,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(account: &str, region: &str, fips: bool, dual_stack: bool) -> EcrHost {
        EcrHost::Private(PrivateRegistry {
            account: account.into(),
            region: region.into(),
            fips,
            dual_stack,
        })
    }

    #[test]
    fn every_partition_and_form() {
        let a = "123456789012";
        let table = [
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                private(a, "us-east-1", false, false),
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                private(a, "us-east-1", true, false),
            ),
            (
                "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
                private(a, "us-gov-west-1", false, false),
            ),
            (
                "123456789012.dkr.ecr-fips.us-gov-east-1.amazonaws.com",
                private(a, "us-gov-east-1", true, false),
            ),
            (
                "123456789012.dkr.ecr.il-central-1.amazonaws.com",
                private(a, "il-central-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.mx-central-1.amazonaws.com",
                private(a, "mx-central-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                private(a, "cn-north-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
                private(a, "eusc-de-east-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
                private(a, "us-iso-east-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
                private(a, "us-isob-east-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
                private(a, "eu-isoe-west-1", false, false),
            ),
            (
                "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
                private(a, "us-isof-south-1", false, false),
            ),
            (
                "123456789012.dkr-ecr.us-west-2.on.aws",
                private(a, "us-west-2", false, true),
            ),
            (
                "123456789012.dkr-ecr-fips.us-east-1.on.aws",
                private(a, "us-east-1", true, true),
            ),
            (
                "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
                private(a, "cn-northwest-1", false, true),
            ),
            ("public.ecr.aws", EcrHost::Public),
            ("ecr-public.aws.com", EcrHost::Public),
        ];
        for (host, want) in table {
            assert_eq!(EcrHost::parse(host), Ok(want), "{host}");
        }
    }

    #[test]
    fn look_alikes_are_not_ecr() {
        for host in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.net",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com:443",
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
            "12345678901a.dkr.ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr..amazonaws.com",
            "123456789012.dkr.ecr.amazonaws.com",
            "123456789012.dkr.ecr.us-east.amazonaws.com",
            "123456789012.dkr.ecr.US-EAST-1.amazonaws.com",
            "123456789012.dkr.ecr.us-east-1.evilamazonaws.com",
            "123456789012.dkr.ecr.us-east-1.amazonaws.co",
            "123456789012.dkr.ecr.us-east-1.on.aws",
            "123456789012.dkr-ecr.us-east-1.amazonaws.com",
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com",
            "123456789012.dkr.ecr.us-iso-east-1.amazonaws.com",
            "123456789012.dkr.ecr.us-isob-east-1.amazonaws.com",
            "123456789012.dkr.ecr.eu-isoe-west-1.amazonaws.com",
            "123456789012.dkr-ecr.us-isof-south-1.on.aws",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com.cn",
            "123456789012.dkr.ecr-fipsx.us-east-1.amazonaws.com",
            "123456789012.evil.dkr.ecr.us-east-1.amazonaws.com",
            "x.123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "dkr.ecr.us-east-1.amazonaws.com",
            "public.ecr.aws.evil.net",
            "public.ecr.aws:5000",
            "evilpublic.ecr.aws",
            "",
        ] {
            assert!(EcrHost::parse(host).is_err(), "{host} parsed as ECR");
        }
        let e = EcrHost::parse("12345678901.dkr.ecr.us-east-1.amazonaws.com").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"12345678901.dkr.ecr.us-east-1.amazonaws.com\" is not an ECR registry host: the first label must be a 12-digit account id"
        );
    }
}
