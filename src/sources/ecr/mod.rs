//! Source `ecr`: registry tokens for private ECR (every partition, FIPS and dual-stack) and
//! ECR Public, minted with the AWS default credential chain, optionally through an assumed
//! role.

mod credentials;
mod errors;
pub mod host;
mod mint;
mod options;
mod sdk_http;
mod shared_files;
mod sts;
mod token;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{MintRequest, Source, SourceError, Spec};
use crate::credential::Credential;
use crate::env::Env;
use crate::workload::{InputError, Inputs};
use host::{EcrHost, PrivateRegistry};

kinds! {
    name: "ecr",
    options: options::EcrOptions,
    build: options::from_options,
    builtin: BUILTIN_HOSTS,
    workloads: super::Workloads::Optional,
}

/// Private ECR in every partition (plain, FIPS, dual-stack) and ECR Public: what the kind
/// serves with no config file. `check` then tests each host strictly (12-digit account, a
/// region of the suffix's partition).
/// A workload's input (its part of the cache key): the role its token assumes.
const ROLE_ARN_INPUT: &str = "role_arn";
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
    /// A profile of the shared AWS config files, instead of `AWS_PROFILE` / `default`.
    pub profile: Option<String>,
    pub assume_role: Option<AssumeRole>,
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
}

pub const DEFAULT_SESSION_NAME: &str = "pullcred";

/// The environment variables that change which principal or endpoint a mint uses; they are
/// part of the cache key so that a changed node setup never reuses another's token.
const IDENTITY_VARS: &[&str] = &[
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ROLE_ARN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_ECR_PUBLIC",
    "AWS_ENDPOINT_URL_STS",
];

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
        format!("ecr {self:?} {}", env.vars_text(IDENTITY_VARS))
    }

    fn check(&self, mint_host: &str) -> Result<(), SourceError> {
        self.target(mint_host).map(drop)
    }

    fn max_mint_time(&self) -> Duration {
        mint::OPERATION_TIMEOUT
    }

    fn workload_audience(&self) -> Option<String> {
        Some("sts.amazonaws.com".into())
    }

    fn workload_annotations(&self) -> Vec<String> {
        vec![self.role_annotation.clone()]
    }

    /// The role a workload's token assumes: its service account's annotation, else the
    /// rule's `role_arn`, else `AWS_ECR_ROLE_ARN`.
    fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        env: &Env,
    ) -> Result<Inputs, InputError> {
        let role = match annotations.get(&self.role_annotation) {
            Some(arn) if options::is_role_arn(arn) => arn.clone(),
            Some(_) => {
                return Err(InputError::Invalid {
                    annotation: self.role_annotation.clone(),
                    why: "is not a role ARN (arn:<partition>:iam::<account>:role/<name>)",
                });
            }
            None => match (&self.assume_role, env.var(ROLE_VAR)) {
                (Some(r), _) => r.role_arn.clone(),
                (None, Some(arn)) if options::is_role_arn(arn) => arn.to_string(),
                _ => {
                    return Err(InputError::Unset {
                        lead: "no role to assume: ",
                        annotation: self.role_annotation.clone(),
                        fallback: format!("neither the rule's role_arn nor {ROLE_VAR} names one"),
                    });
                }
            },
        };
        Ok(Inputs::from([(ROLE_ARN_INPUT, role)]))
    }
}

impl Source for EcrSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        let target = self.target(req.mint_host)?;
        let shared = shared_files::read(req.env)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        mint::mint(self, &target, req.env, &shared, req.workload, budget)
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
            Err(e) if e.kind() == crate::sources::ErrorKind::Local
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
            Err(e) if e.kind() == crate::sources::ErrorKind::OutOfScope
        ));
    }

    #[test]
    fn cache_identity_changes_with_role_and_env() {
        let env = Env::from_vars([("AWS_PROFILE", "a")], 0);
        let base = EcrSource::default();
        let role = EcrSource {
            assume_role: Some(AssumeRole {
                role_arn: "arn:aws:iam::111111111111:role/pull".into(),
                external_id: None,
                session_name: DEFAULT_SESSION_NAME.into(),
            }),
            ..EcrSource::default()
        };
        assert_ne!(base.cache_identity(&env), role.cache_identity(&env));
        let other = Env::from_vars([("AWS_PROFILE", "b")], 0);
        assert_ne!(base.cache_identity(&env), base.cache_identity(&other));
    }
}
