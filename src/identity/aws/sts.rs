//! STS `AssumeRole`: the rule's `role_arn`, assumed with the node's credentials before ECR
//! is called; and `AssumeRoleWithWebIdentity`: a role assumed with a workload's service
//! account token instead (no node credentials at all).

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;

use super::AssumeRole;
use super::errors::sdk_error;
use crate::failure::SourceError;

/// How long an assumed-role session lasts; it is only used for one `GetAuthorizationToken`.
const ROLE_SESSION: Duration = Duration::from_secs(900);
/// A workload's session: its expiry caps the cached ECR token's, so it lasts as long as a
/// service account token usually does.
const WEB_IDENTITY_SESSION: Duration = Duration::from_secs(3600);

pub(super) async fn assume_role(
    conf: &SdkConfig,
    role: &AssumeRole,
) -> Result<Credentials, SourceError> {
    let sts = aws_sdk_sts::Client::new(conf);
    let out = sts
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(&role.session_name)
        .set_external_id(role.external_id.clone())
        .duration_seconds(ROLE_SESSION.as_secs() as i32)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("STS AssumeRole {}", role.role_arn), e))?;
    session(
        &format!("STS AssumeRole {}", role.role_arn),
        out.credentials(),
        "pullcred-assume-role",
    )
}

/// A role session's keys from STS's answer, as the SDK's credentials.
fn session(
    what: &str,
    answer: Option<&aws_sdk_sts::types::Credentials>,
    provider: &'static str,
) -> Result<Credentials, SourceError> {
    let c = answer
        .ok_or_else(|| SourceError::transient(format!("{what}: the answer has no credentials")))?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        provider,
    ))
}

/// `role_arn` assumed with a workload's service account token. STS verifies the token
/// against the cluster's OIDC provider and the role's trust policy.
pub(super) async fn assume_role_with_web_identity(
    conf: &SdkConfig,
    role_arn: &str,
    session_name: &str,
    token: &crate::credential::Secret,
) -> Result<Credentials, SourceError> {
    let what = format!("STS AssumeRoleWithWebIdentity {role_arn}");
    let sts = aws_sdk_sts::Client::new(conf);
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token.expose())
        .duration_seconds(WEB_IDENTITY_SESSION.as_secs() as i32)
        .send()
        .await
        .map_err(|e| sdk_error(&what, e))?;
    session(&what, out.credentials(), "pullcred-web-identity")
}
