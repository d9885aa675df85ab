//! STS `AssumeRole`: the rule's `role_arn`, assumed with the node's credentials before ECR
//! is called.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_sdk_ecr::config::Credentials;

use super::AssumeRole;
use super::errors::sdk_error;
use crate::sources::SourceError;

/// How long an assumed-role session lasts; it is only used for one `GetAuthorizationToken`.
const ROLE_SESSION: Duration = Duration::from_secs(900);

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
    let c = out.credentials().ok_or_else(|| {
        SourceError::Transient(format!(
            "STS AssumeRole {}: the answer has no credentials",
            role.role_arn
        ))
    })?;
    let expiry = SystemTime::try_from(*c.expiration()).ok();
    Ok(Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        expiry,
        "pullcred-assume-role",
    ))
}
