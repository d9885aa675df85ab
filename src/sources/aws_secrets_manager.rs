//! Source `aws-secrets-manager`: a registry credential kept in AWS Secrets Manager, read
//! with `GetSecretValue` signed (SigV4) with the shared AWS identity: the node's
//! credentials (and the rule's role), or a workload's role assumed with its service
//! account token. The call is the service's JSON protocol as AWS documents it, sent with
//! pullcred's HTTP client; no Secrets Manager SDK is linked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec, run_mint};
use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::http::{Unreadable, web_client};
use crate::identity::aws::{self, AwsIdentity, Stage, partition};
use crate::stored::{self, Reading, Stored};
use crate::workload::{InputError, Inputs};

kinds! {
    name: "aws-secrets-manager",
    options: SecretsManagerOptions,
    shared: [aws::Keys, stored::Keys],
    build: from_options,
    builtin: &[],
    workloads: super::Workloads::Optional,
}

/// The annotation EKS's IAM roles for service accounts reads: a workload's role.
const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// The service's name in endpoints, signatures and the endpoint variable.
const SERVICE: &str = "secretsmanager";
const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
/// Beyond the shared AWS variables: where the call goes and in which region.
const VARS: &[&str] = &[ENDPOINT_VAR, "AWS_REGION", "AWS_DEFAULT_REGION"];
const TIMEOUTS: crate::http::WebTimeouts = crate::http::WebTimeouts {
    connect: aws::CONNECT_TIMEOUT,
    read: aws::READ_TIMEOUT,
    attempt: Duration::from_secs(6),
};

/// The rule keys of `aws-secrets-manager` (beyond the AWS identity's and the stored
/// value's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsManagerOptions {
    secret: Option<String>,
    region: Option<String>,
    version_stage: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    fips: bool,
    #[serde(default)]
    dual_stack: bool,
    role_annotation: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsManagerSource {
    /// A name or an ARN, as `GetSecretValue`'s `SecretId` takes it.
    secret: String,
    /// The ARN's region, else the rule's; else the node's (`AWS_REGION`) at mint time.
    region: Option<String>,
    version_stage: Option<String>,
    endpoint: Option<String>,
    fips: bool,
    dual_stack: bool,
    identity: AwsIdentity,
    role_annotation: String,
    reading: Reading,
}

fn from_options(options: &Options<'_>) -> Result<SecretsManagerSource, OptionError> {
    let (rest, keys) = options.split::<aws::Keys>()?;
    let (rest, value_keys) = rest.split::<stored::Keys>()?;
    let o: SecretsManagerOptions = rest.parse()?;
    let identity = AwsIdentity::from_keys(keys, options)?;
    if identity.pod_identity.is_some() && o.role_annotation.is_some() {
        return Err(OptionError::at(
            "role_annotation",
            "a pod identity association names the role: `role_annotation` does not apply with pod_identity_cluster",
        ));
    }
    let reading = Reading::from_keys(value_keys)?;
    let secret = o.secret.ok_or_else(|| {
        OptionError::rule("source \"aws-secrets-manager\" needs `secret` (a name or an ARN)")
    })?;
    let arn_region = match secret.strip_prefix("arn:") {
        Some(_) => Some(arn_region(&secret).ok_or_else(|| {
            OptionError::at(
                "secret",
                format!(
                    "secret {secret:?} is not a secret ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)"
                ),
            )
        })?),
        None => {
            let ok = !secret.is_empty()
                && secret.len() <= 512
                && secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b));
            if !ok {
                return Err(OptionError::at(
                    "secret",
                    format!(
                        "secret {secret:?} is not a secret name (letters, digits and /_+=.@-)"
                    ),
                ));
            }
            None
        }
    };
    if let Some(r) = &o.region
        && !partition::valid_region(r)
    {
        return Err(OptionError::at(
            "region",
            format!("region {r:?} is not an AWS region name"),
        ));
    }
    if let (Some(a), Some(r)) = (&arn_region, &o.region)
        && a != r
    {
        return Err(OptionError::at(
            "region",
            format!("region {r:?} is not the secret ARN's ({a})"),
        ));
    }
    if let Some(stage) = &o.version_stage
        && (stage.is_empty()
            || stage.len() > 256
            || stage.contains(|c: char| c.is_control() || c.is_whitespace()))
    {
        return Err(OptionError::at(
            "version_stage",
            "version_stage must be a staging label such as AWSCURRENT",
        ));
    }
    let endpoint = match &o.endpoint {
        Some(url) => {
            Some(stored::base_url(url).map_err(|why| OptionError::at("endpoint", why))?)
        }
        None => None,
    };
    if endpoint.is_some() && (o.fips || o.dual_stack) {
        return Err(OptionError::at(
            "endpoint",
            "an endpoint replaces the endpoint choice: fips and dual_stack do not apply",
        ));
    }
    let role_annotation =
        options.annotation_key("role_annotation", o.role_annotation, ROLE_ANNOTATION)?;
    Ok(SecretsManagerSource {
        region: arn_region.or(o.region),
        secret,
        version_stage: o.version_stage,
        endpoint,
        fips: o.fips,
        dual_stack: o.dual_stack,
        identity,
        role_annotation,
        reading,
    })
}

/// The region of `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`.
fn arn_region(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    match parts.as_slice() {
        ["arn", p, "secretsmanager", region, account, "secret", name]
            if !p.is_empty()
                && partition::valid_region(region)
                && partition::is_account_id(account)
                && !name.is_empty()
                && !arn.contains(char::is_whitespace) =>
        {
            Some(region.to_string())
        }
        _ => None,
    }
}

impl SecretsManagerSource {
    /// The region of this mint: the secret's (or the rule's), else the node's.
    fn region(&self, env: &Env) -> Result<String, SourceError> {
        if let Some(r) = &self.region {
            return Ok(r.clone());
        }
        match env
            .var("AWS_REGION")
            .or_else(|| env.var("AWS_DEFAULT_REGION"))
        {
            Some(r) if partition::valid_region(r) => Ok(r.to_string()),
            Some(r) => Err(SourceError::local(format!(
                "AWS_REGION {r:?} is not an AWS region name"
            ))),
            None => Err(SourceError::local(format!(
                "secret {}: no region (set the rule's `region`, name the secret by its ARN, or set AWS_REGION)",
                self.secret
            ))),
        }
    }

    /// The base URL the call goes to: the rule's, else the environment's, else the region's.
    fn base(&self, env: &Env, region: &str) -> Result<String, SourceError> {
        if let Some(e) = &self.endpoint {
            return Ok(e.clone());
        }
        for var in [ENDPOINT_VAR, "AWS_ENDPOINT_URL"] {
            if let Some(url) = env.var(var) {
                return stored::base_url(url).map_err(|why| SourceError::local(format!("{var}: {why}")));
            }
        }
        partition::endpoint(SERVICE, region, self.fips, self.dual_stack)
            .map_err(|why| SourceError::local(format!("region {region}: {why}")))
    }
}

impl Spec for SecretsManagerSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    stored_value_spec!(reading);

    fn describe(&self) -> String {
        let mut parts = vec![format!("secret={}", self.secret)];
        for (key, v) in [
            ("region", &self.region),
            ("version_stage", &self.version_stage),
            ("endpoint", &self.endpoint),
        ] {
            if let Some(v) = v {
                parts.push(format!("{key}={v}"));
            }
        }
        if self.fips {
            parts.push("fips=true".into());
        }
        if self.dual_stack {
            parts.push("dual_stack=true".into());
        }
        self.identity.describe(&mut parts);
        if self.role_annotation != ROLE_ANNOTATION {
            parts.push(format!("role_annotation={}", self.role_annotation));
        }
        self.reading.describe(&mut parts);
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "aws-secrets-manager {self:?} {} {}",
            env.vars_text(aws::IDENTITY_VARS),
            env.vars_text(VARS)
        )
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
    /// rule's `role_arn`.
    fn workload_inputs(
        &self,
        annotations: &BTreeMap<String, String>,
        env: &Env,
    ) -> Result<Inputs, InputError> {
        aws::workload_role(annotations, &self.role_annotation, &self.identity, None, env)
    }
}

/// `GetSecretValue`'s answer: the value as text, or as bytes (base64).
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "SecretString")]
    string: Option<String>,
    #[serde(rename = "SecretBinary")]
    binary: Option<String>,
}

impl Source for SecretsManagerSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.mint_scoped(req).map(|(c, _)| c)
    }

    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        let region = self.region(req.env)?;
        let base = self.base(req.env, &region)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let stage = Stage::default();
        let stage = &stage;
        let mut scope = Scope::default();
        let scope_out = &mut scope;
        let credential = run_mint(
            budget,
            |resolver, limit| async move {
                let session = aws::session(
                    &self.identity,
                    &region,
                    req.env,
                    req.workload,
                    limit,
                    &resolver,
                    stage,
                )
                .await?;
                let credentials = aws::credentials_of(&session).await?;
                let client = web_client(req.env, &resolver, false, &TIMEOUTS)?;
                stage.set(format!("Secrets Manager GetSecretValue {}", self.secret));
                let mut body = serde_json::json!({ "SecretId": self.secret });
                if let Some(stage) = &self.version_stage {
                    body["VersionStage"] = stage.clone().into();
                }
                let body = body.to_string();
                let what = format!("Secrets Manager GetSecretValue {}", self.secret);
                let post = aws::SignedPost::new(
                    credentials,
                    (SERVICE, &region),
                    format!("{base}/"),
                    &[
                        ("content-type", "application/x-amz-json-1.1"),
                        ("x-amz-target", "secretsmanager.GetSecretValue"),
                    ],
                    body,
                    req.env.now(),
                )?;
                let call = crate::http::Call {
                    what: &what,
                    attempts: crate::http::MAX_ATTEMPTS,
                    deadline: req.deadline,
                    transient: aws_transient,
                    absent: aws_absent,
                    explain: aws::refusal,
                };
                let value = call
                    .fetch(
                        || post.request(&client),
                        |_| Ok(()),
                        read_answer,
                    )
                    .await
                    .map_err(|e| stored::read_error(&self.secret, e))?;
                let (mut credential, found) = self.reading.credential(
                    Stored::Text(&value),
                    req.mint_host,
                    req.repository,
                    &self.secret,
                    req.env.now(),
                )?;
                // Minted with a workload's role: kept no longer than its session.
                if let (Some(end), Some(exp)) = (session.expiry, credential.expires_at) {
                    credential.expires_at = Some(exp.min(end));
                }
                *scope_out = found;
                Ok(credential)
            },
            || stage.get(),
        )?;
        Ok((credential, scope))
    }
}

/// The value of an answer: `SecretString`, or `SecretBinary` as UTF-8 text.
fn read_answer(body: &[u8]) -> Result<String, Unreadable> {
    use base64::Engine;
    let a: Answer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("a secret value"))?;
    match (a.string, a.binary) {
        (Some(s), _) => Ok(s),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(Unreadable::Not("a secret value (SecretBinary is not base64 of text)")),
        (None, None) => Err(Unreadable::Empty("secret value")),
    }
}

fn aws_transient(status: u16, body: &[u8]) -> bool {
    status == 429
        || status >= 500
        || aws::error_type(body).is_some_and(|kind| {
            kind.contains("Throttl") || kind == "InternalServiceError" || kind == "RequestTimeout"
        })
}

fn aws_absent(_status: u16, body: &[u8]) -> bool {
    aws::error_type(body).is_some_and(|kind| kind == "ResourceNotFoundException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_their_region() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-west-1:111111111111:secret:hub-AbCdEf").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            arn_region("arn:aws-cn:secretsmanager:cn-north-1:111111111111:secret:a:b").as_deref(),
            Some("cn-north-1")
        );
        for bad in [
            "arn:aws:s3:eu-west-1:111111111111:secret:x",
            "arn:aws:secretsmanager:eu-west:111111111111:secret:x",
            "arn:aws:secretsmanager:eu-west-1:1111:secret:x",
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:",
        ] {
            assert_eq!(arn_region(bad), None, "{bad}");
        }
    }

    #[test]
    fn answers_and_errors() {
        assert_eq!(read_answer(br#"{"SecretString":"v"}"#).unwrap(), "v");
        assert_eq!(read_answer(br#"{"SecretBinary":"dg=="}"#).unwrap(), "v");
        assert!(read_answer(b"{}").is_err());
        let nf = br#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#;
        assert!(aws_absent(400, nf) && !aws_transient(400, nf));
        let th = br#"{"__type":"com.amazonaws.secretsmanager#ThrottlingException","message":"Rate exceeded"}"#;
        assert!(aws_transient(400, th));
        assert_eq!(aws::refusal(th), "ThrottlingException: Rate exceeded");
        assert!(aws_absent(
            400,
            br#"{"__type":"ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.secretsmanager/"}"#
        ));
        assert!(aws_transient(503, b"<html>"));
        assert_eq!(aws::refusal(b"<html>"), "not an AWS error answer");
    }
}
