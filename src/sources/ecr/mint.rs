//! One ECR mint, start to end: a current-thread runtime built only now (a cache hit never
//! pays for any of this), the shared AWS identity's session, the token call; every call
//! bounded by explicit timeouts within the request's deadline.

use std::time::Duration;

use super::{EcrSource, Target, token};
use crate::credential::Credential;
use crate::env::Env;
use crate::identity::aws::{self, Stage};
use crate::sources::{SourceError, run_mint};
use crate::workload::Workload;

const PUBLIC_REGION: &str = "us-east-1";

pub(super) fn mint(
    source: &EcrSource,
    target: &Target,
    env: &Env,
    workload: Option<&Workload>,
    budget: Duration,
) -> Result<Credential, SourceError> {
    let stage = Stage::default();
    let stage = &stage;
    run_mint(
        budget,
        |resolver, limit| async move {
            let (region, fips, dual_stack) = match target {
                Target::Private {
                    region,
                    fips,
                    dual_stack,
                    ..
                } => (region.as_str(), *fips, *dual_stack),
                Target::Public => (PUBLIC_REGION, false, false),
            };
            let session = aws::session(
                &source.identity,
                region,
                env,
                workload,
                limit,
                &resolver,
                stage,
            )
            .await?;
            let conf = &session.conf;
            let (token, expires_at) = match target {
                Target::Private { account, .. } => {
                    // An explicit endpoint replaces the endpoint choice, FIPS and
                    // dual-stack included; the SDK refuses both at once.
                    let overridden = source.endpoint.is_some()
                        || conf.endpoint_url().is_some()
                        || env.var("AWS_ENDPOINT_URL_ECR").is_some();
                    let (fips, dual_stack) = (fips && !overridden, dual_stack && !overridden);
                    stage.set("ECR GetAuthorizationToken");
                    token::private_token(source, conf, account.as_deref(), fips, dual_stack)
                        .await?
                }
                Target::Public => {
                    stage.set("ECR Public GetAuthorizationToken");
                    token::public_token(conf).await?
                }
            };
            let mut credential = token::decode_token(&token, expires_at, env.now())?;
            // A workload's token is kept no longer than the role session it was got with.
            if let (Some(session), Some(token)) = (session.expiry, credential.expires_at) {
                credential.expires_at = Some(token.min(session));
            }
            Ok(credential)
        },
        || stage.get(),
    )
}
