//! Subject tokens of `environment_id = "aws1"` external accounts, as Google documents them for
//! federation from AWS: a `GetCallerIdentity` request to the region's STS, signed (SigV4)
//! with the node's AWS credentials but never sent: its URL, method and headers, as JSON,
//! URL-encoded, are the subject token that Google's STS checks with AWS.
//!
//! Region: `AWS_REGION` / `AWS_DEFAULT_REGION`, else the file's `region_url` (the instance's
//! availability zone). Credentials: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, else the file's `url` (IMDS role credentials), with an IMDSv2 session
//! token when the file names `imdsv2_session_token_url`. IMDS is never reached through a
//! proxy (its address is always direct).

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde::Deserialize;

use super::oauth::fetch_text;
use crate::env::Env;
use crate::failure::SourceError;

/// The file's AWS-specific `credential_source` fields (its `url`, the role credentials'
/// address, is the shared field and is passed apart).
#[derive(Deserialize, Default)]
pub struct AwsSource {
    pub region_url: Option<String>,
    pub regional_cred_verification_url: Option<String>,
    pub imdsv2_session_token_url: Option<String>,
}

const DEFAULT_VERIFICATION_URL: &str =
    "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
}

pub async fn subject_token(
    source: &AwsSource,
    credentials_url: Option<&str>,
    audience: &str,
    env: &Env,
    client: &reqwest::Client,
) -> Result<String, SourceError> {
    let session = match &source.imdsv2_session_token_url {
        Some(url) if needs_imds(env) => Some(imds_session(client, url).await?),
        _ => None,
    };
    let region = match env
        .var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
    {
        Some(r) => r.to_string(),
        None => {
            let url = source.region_url.as_deref().ok_or_else(|| {
                SourceError::local("aws1: no AWS_REGION and no region_url".into())
            })?;
            let zone = imds_get(client, url, session.as_deref()).await?;
            // An availability zone is its region and one letter.
            let zone = zone.trim();
            zone[..zone.len().saturating_sub(1)].to_string()
        }
    };
    let credentials = match (
        env.var("AWS_ACCESS_KEY_ID"),
        env.var("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(key), Some(secret)) => Credentials::new(
            key,
            secret,
            env.var("AWS_SESSION_TOKEN").map(str::to_string),
            None,
            "pullcred-aws1",
        ),
        _ => {
            let url = credentials_url.ok_or_else(|| {
                SourceError::local("aws1: no AWS credentials in the environment and no url".into())
            })?;
            let role = imds_get(client, url, session.as_deref()).await?;
            let role = role.lines().next().unwrap_or("").trim();
            let text = imds_get(
                client,
                &format!("{}/{role}", url.trim_end_matches('/')),
                session.as_deref(),
            )
            .await?;
            let c: RoleCredentials = serde_json::from_str(&text).map_err(|_| {
                SourceError::transient("aws1: the role credentials are not readable".into())
            })?;
            Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                c.token,
                None,
                "pullcred-aws1",
            )
        }
    };
    let url = source
        .regional_cred_verification_url
        .as_deref()
        .unwrap_or(DEFAULT_VERIFICATION_URL)
        .replace("{region}", &region);
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .unwrap_or("")
        .to_string();
    let unsigned = [
        ("host", host.as_str()),
        ("x-goog-cloud-target-resource", audience),
    ];
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("sts")
        .time(env.now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SourceError::local(format!("aws1: cannot sign: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        unsigned.iter().copied(),
        SignableBody::Bytes(b""),
    )
    .map_err(|e| SourceError::local(format!("aws1: cannot sign: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| SourceError::local(format!("aws1: cannot sign: {e}")))?
        .into_parts();
    let mut headers: Vec<serde_json::Value> = unsigned
        .iter()
        .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
        .collect();
    headers.extend(
        instructions
            .headers()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v})),
    );
    let request = serde_json::json!({"url": url, "method": "POST", "headers": headers});
    Ok(percent_encoding::utf8_percent_encode(
        &request.to_string(),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string())
}

/// Whether anything must come from IMDS (region or credentials not in the environment).
fn needs_imds(env: &Env) -> bool {
    env.var("AWS_REGION")
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .is_none()
        || env.var("AWS_ACCESS_KEY_ID").is_none()
        || env.var("AWS_SECRET_ACCESS_KEY").is_none()
}

async fn imds_session(client: &reqwest::Client, url: &str) -> Result<String, SourceError> {
    let request = client
        .put(url)
        .header("x-aws-ec2-metadata-token-ttl-seconds", "300");
    fetch_text(request, &format!("aws1: IMDSv2 session from {url}")).await
}

async fn imds_get(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
) -> Result<String, SourceError> {
    let mut request = client.get(url);
    if let Some(token) = session {
        request = request.header("x-aws-ec2-metadata-token", token);
    }
    fetch_text(request, &format!("aws1: {url}")).await
}
