//! Source `ecr`: registry tokens for private ECR (every partition, FIPS and dual-stack) and
//! ECR Public, minted with the AWS default credential chain, optionally through an assumed
//! role.

pub mod host;
mod mint;
mod options;
mod token;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{MintRequest, Source, SourceError, Spec};
use crate::credential::Credential;
use crate::env::Env;
use crate::identity::aws::{self, AwsIdentity};
use crate::workload::{InputError, Inputs};
use host::{EcrHost, PrivateRegistry};

kinds! {
    name: "ecr",
    options: options::EcrOptions,
    shared: [aws::Keys],
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// Private ECR in every partition (plain, FIPS, dual-stack) and ECR Public: what the kind
/// serves with no config file. `check` then tests each host strictly (12-digit account, a
/// region of the suffix's partition).
const BUILTIN_HOSTS: &[&str] = &[
    "*.dkr.ecr.*.amazonaws.com",
    "*.dkr.ecr-fips.*.amazonaws.com",
    "*.dkr.ecr.*.amazonaws.com.cn",
    "*.dkr.ecr.*.amazonaws.eu",
    "*.dkr.ecr.*.c2s.ic.gov",
    "*.dkr.ecr-fips.*.c2s.ic.gov",
    "*.dkr.ecr.*.sc2s.sgov.gov",
    "*.dkr.ecr-fips.*.sc2s.sgov.gov",
    "*.dkr.ecr.*.cloud.adc-e.uk",
    "*.dkr.ecr.*.csp.hci.ic.gov",
    "*.dkr-ecr.*.on.aws",
    "*.dkr-ecr-fips.*.on.aws",
    "*.dkr-ecr.*.on.amazonwebservices.com.cn",
    "public.ecr.aws",
    "ecr-public.aws.com",
];

/// A rule's `ecr` options. All optional: the default mints for the host's own account and
/// region with whatever credentials the node has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcrSource {
    /// The region to call ECR in, instead of the one in the host name (needed when the
    /// rule's host is not an ECR name, e.g. a mirror without `registry`).
    pub region: Option<String>,
    /// The node's profile and role (shared by every AWS source).
    pub identity: AwsIdentity,
    /// The accounts this rule may mint for; a host of another account is refused. When set,
    /// the token is requested for the host's account only.
    pub registry_ids: Vec<String>,
    /// The ECR API endpoint (a VPC interface endpoint, or a test server) instead of the
    /// regional one.
    pub endpoint: Option<String>,
    /// For a workload's mint: the service account annotation naming the role to assume with
    /// its token.
    pub role_annotation: String,
}

/// The annotation AWS's own plugin reads for a service account's ECR role.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/ecr-role-arn";
/// The role for workloads when neither the annotation nor the rule names one.
const ROLE_VAR: &str = "AWS_ECR_ROLE_ARN";

/// Beyond the shared AWS variables: the endpoints of ECR's own services.
const ECR_VARS: &[&str] = &["AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_ECR_PUBLIC"];

/// What one mint asks ECR for.
#[derive(Debug)]
enum Target {
    Private {
        region: String,
        /// `None`: the rule's host is not an ECR name (a `region` rule); the token is the
        /// principal's default one for the region.
        account: Option<String>,
        fips: bool,
        dual_stack: bool,
    },
    Public,
}

impl EcrSource {
    fn target(&self, mint_host: &str) -> Result<Target, SourceError> {
        let target = match EcrHost::parse(mint_host) {
            Ok(EcrHost::Public) => Target::Public,
            Ok(EcrHost::Private(PrivateRegistry {
                account,
                region,
                fips,
                dual_stack,
            })) => Target::Private {
                region: self.region.clone().unwrap_or(region),
                account: Some(account),
                fips,
                dual_stack,
            },
            Err(e) => match &self.region {
                Some(region) => Target::Private {
                    region: region.clone(),
                    account: None,
                    fips: false,
                    dual_stack: false,
                },
                None => {
                    return Err(SourceError::local(format!(
                        "{e} (set `registry` to the ECR host it mirrors, or `region`)"
                    )));
                }
            },
        };
        if let Target::Private {
            account: Some(account),
            ..
        } = &target
            && !self.registry_ids.is_empty()
            && !self.registry_ids.contains(account)
        {
            return Err(SourceError::out_of_scope(format!(
                "account {account} is not in the rule's registry_ids"
            )));
        }
        Ok(target)
    }
}

impl Spec for EcrSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn describe(&self) -> String {
        self.describe_options()
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "ecr {self:?} {} {}",
            env.vars_text(aws::IDENTITY_VARS),
            env.vars_text(ECR_VARS)
        )
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        self.target(mint_host).map(drop)
    }

    fn max_mint_time(&self) -> Duration {
        aws::OPERATION_TIMEOUT
    }

    fn workload_audience(&self) -> Option<String> {
        Some(self.identity.workload_audience())
    }

    fn workload_annotations(&self) -> Vec<String> {
        match self.identity.pod_identity {
            Some(_) => Vec::new(),
            None => vec![self.role_annotation.clone()],
        }
    }

    /// The role a workload's token assumes: its service account's annotation, else the
    /// rule's `role_arn`, else `AWS_ECR_ROLE_ARN`.
    fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        env: &Env,
    ) -> Result<Inputs, InputError> {
        aws::workload_role(
            annotations,
            &self.role_annotation,
            &self.identity,
            Some(ROLE_VAR),
            env,
        )
    }
}

impl Source for EcrSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        let target = self.target(req.mint_host)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        mint::mint(self, &target, req.env, req.workload, budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_host_unless_overridden() {
        let s = EcrSource::default();
        match s.target("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com") {
            Ok(Target::Private {
                region,
                account,
                fips: true,
                dual_stack: false,
            }) => {
                assert_eq!(region, "us-gov-west-1");
                assert_eq!(account.as_deref(), Some("123456789012"));
            }
            other => panic!("{other:?}"),
        }
        let s = EcrSource {
            region: Some("eu-west-1".into()),
            ..EcrSource::default()
        };
        assert!(matches!(
            s.target("mirror.internal"),
            Ok(Target::Private { region, account: None, .. }) if region == "eu-west-1"
        ));
        assert!(matches!(
            EcrSource::default().target("mirror.internal"),
            Err(e) if e.kind() == crate::failure::ErrorKind::Local
                && e.to_string().contains("is not an ECR registry host")
        ));
    }

    #[test]
    fn registry_ids_limit_the_accounts() {
        let s = EcrSource {
            registry_ids: vec!["111111111111".into()],
            ..EcrSource::default()
        };
        assert!(
            s.target("111111111111.dkr.ecr.us-east-1.amazonaws.com")
                .is_ok()
        );
        assert!(matches!(
            s.target("222222222222.dkr.ecr.us-east-1.amazonaws.com"),
            Err(e) if e.kind() == crate::failure::ErrorKind::OutOfScope
        ));
    }

    #[test]
    fn cache_identity_changes_with_role_and_env() {
        let env = Env::from_vars([("AWS_PROFILE", "a")], 0);
        let base = EcrSource::default();
        let role = EcrSource {
            identity: AwsIdentity {
                profile: None,
                assume_role: Some(aws::AssumeRole {
                    role_arn: "arn:aws:iam::111111111111:role/pull".into(),
                    external_id: None,
                    session_name: aws::DEFAULT_SESSION_NAME.into(),
                }),
                pod_identity: None,
            },
            ..EcrSource::default()
        };
        assert_ne!(base.cache_identity(&env), role.cache_identity(&env));
        let other = Env::from_vars([("AWS_PROFILE", "b")], 0);
        assert_ne!(base.cache_identity(&env), base.cache_identity(&other));
    }
}
