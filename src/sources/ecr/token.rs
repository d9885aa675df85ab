//! `GetAuthorizationToken` for private ECR and ECR Public, and the token's decoding into a
//! username, a password and an expiry.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use base64::Engine;

use super::EcrSource;
use crate::identity::aws::sdk_error;
use crate::credential::{Credential, Secret};
use crate::sources::SourceError;

/// ECR documents a token life of 12 hours; used only if an answer lacks `expiresAt`.
const DOCUMENTED_TOKEN_LIFE: Duration = Duration::from_secs(12 * 3600);

pub(super) async fn private_token(
    source: &EcrSource,
    conf: &SdkConfig,
    account: Option<&str>,
    fips: bool,
    dual_stack: bool,
) -> Result<(String, Option<SystemTime>), SourceError> {
    let mut builder = aws_sdk_ecr::config::Builder::from(conf)
        .use_fips(fips)
        .use_dual_stack(dual_stack);
    if let Some(endpoint) = &source.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    let ecr = aws_sdk_ecr::Client::from_conf(builder.build());
    // Without registry ids ECR answers with one token for every registry the principal may
    // read in the region, which is what mirrors and cross-account pulls need.
    let ids = match (account, source.registry_ids.is_empty()) {
        (Some(a), false) => Some(vec![a.to_string()]),
        (None, false) => Some(source.registry_ids.clone()),
        (_, true) => None,
    };
    #[allow(deprecated)] // registryIds is deprecated but still honoured, and what we need.
    let out = ecr
        .get_authorization_token()
        .set_registry_ids(ids)
        .send()
        .await
        .map_err(|e| sdk_error("ECR GetAuthorizationToken", e))?;
    let data = out.authorization_data().first();
    token_of(
        "ECR GetAuthorizationToken",
        data.and_then(|d| d.authorization_token()),
        data.and_then(|d| d.expires_at()),
    )
}

pub(super) async fn public_token(
    conf: &SdkConfig,
) -> Result<(String, Option<SystemTime>), SourceError> {
    let ecr = aws_sdk_ecrpublic::Client::new(conf);
    let out = ecr
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| sdk_error("ECR Public GetAuthorizationToken", e))?;
    let data = out.authorization_data();
    token_of(
        "ECR Public GetAuthorizationToken",
        data.and_then(|d| d.authorization_token()),
        data.and_then(|d| d.expires_at()),
    )
}

/// The token and expiry of an answer (private and public ECR shape them alike).
fn token_of(
    what: &str,
    token: Option<&str>,
    expires_at: Option<&aws_smithy_types::DateTime>,
) -> Result<(String, Option<SystemTime>), SourceError> {
    let token =
        token.ok_or_else(|| SourceError::transient(format!("{what}: the answer has no token")))?;
    let expires = expires_at.and_then(|t| SystemTime::try_from(*t).ok());
    Ok((token.to_string(), expires))
}

/// An ECR token is base64 of `AWS:<password>`.
pub(super) fn decode_token(
    token: &str,
    expires_at: Option<SystemTime>,
    now: SystemTime,
) -> Result<Credential, SourceError> {
    let garbled = || {
        SourceError::transient("ECR answered a token that is not base64 of user:password".into())
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| garbled())?;
    let text = String::from_utf8(bytes).map_err(|_| garbled())?;
    let (user, password) = text.split_once(':').ok_or_else(garbled)?;
    if user.is_empty() || password.is_empty() {
        return Err(garbled());
    }
    Ok(Credential {
        username: user.to_string(),
        password: Secret::new(password),
        expires_at: Some(expires_at.unwrap_or_else(|| now + DOCUMENTED_TOKEN_LIFE)),
        refresh_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_decodes_to_user_and_password() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:s3cr3t:with:colons");
        let c = decode_token(&token, None, SystemTime::now()).unwrap();
        assert_eq!(c.username, "AWS");
        assert_eq!(c.password.expose(), "s3cr3t:with:colons");
        assert!(c.expires_at.is_some());
        for bad in ["not base64!", "QVdT", "OnBhc3M="] {
            assert!(
                matches!(
                    decode_token(bad, None, SystemTime::now()),
                    Err(e) if e.kind() == crate::failure::ErrorKind::Transient
                ),
                "{bad}"
            );
        }
    }
}
