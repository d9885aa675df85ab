//! Fakes of Google's endpoints, which have no real test peer: the GCE metadata server
//! (following "About VM metadata" / "Access tokens for service accounts": the
//! `Metadata-Flavor: Google` request header, and the same header on every answer), and the
//! OAuth 2.0 token endpoint ("Using OAuth 2.0 for Server to Server Applications": a JWT
//! bearer assertion signed RS256, `iss`, `scope`, `aud`, `iat`, `exp` at most an hour later;
//! and the `refresh_token` grant of user credentials). The token endpoint verifies the
//! assertion's signature with the test key's public half.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::http::{Reply, Request, form, json};

/// The test service account's key: PEM (PKCS#8) for key files, and its public half.
pub struct TestKey {
    pub pem: String,
    pub public: Vec<u8>,
}

pub fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        TestKey {
            pem: format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            ),
            public: pair.public_key().as_ref().to_vec(),
        }
    })
}

/// The metadata server: `token` for any service account, with or without the
/// `Metadata-Flavor: Google` answer header (a look-alike omits it).
pub fn metadata(token: &'static str, flavor: bool) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        if req.header("metadata-flavor") != Some("Google") {
            return json(
                403,
                serde_json::json!({"error": "missing Metadata-Flavor"}),
                vec![],
            );
        }
        let path = req.target.as_str();
        if !(path.starts_with("/computeMetadata/v1/instance/service-accounts/")
            && path.ends_with("/token"))
        {
            return json(404, serde_json::json!({"error": "not found"}), vec![]);
        }
        let header = if flavor {
            vec![("metadata-flavor", "Google".to_string())]
        } else {
            vec![]
        };
        json(
            200,
            serde_json::json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}),
            header,
        )
    }
}

/// The token endpoint at `url`: a service account's assertion is verified (signature, and
/// claims: `iss` one of `accounts`, the cloud-platform scope, `aud` = `url`, a life of at
/// most an hour) and answered with `token-for-<iss>`; a refresh token grant is answered
/// when its three fields are the test user's.
pub fn token_endpoint(url: String) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let f = form(&req.body);
        let refuse = |why: &str| {
            json(
                400,
                serde_json::json!({"error": "invalid_grant", "error_description": why}),
                vec![],
            )
        };
        match f.get("grant_type").map(String::as_str) {
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                let Some(assertion) = f.get("assertion") else {
                    return refuse("no assertion");
                };
                let parts: Vec<&str> = assertion.split('.').collect();
                if parts.len() != 3 {
                    return refuse("not a JWT");
                }
                let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
                let signed = format!("{}.{}", parts[0], parts[1]);
                let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &test_key().public);
                if key.verify(signed.as_bytes(), &signature).is_err() {
                    return refuse("bad signature");
                }
                let header: serde_json::Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
                let claims: serde_json::Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
                let (iat, exp) = (claims["iat"].as_u64(), claims["exp"].as_u64());
                let ok = header["alg"] == "RS256"
                    && claims["scope"].as_str().is_some_and(|s| {
                        s.contains("https://www.googleapis.com/auth/cloud-platform")
                    })
                    && claims["aud"] == url.as_str()
                    && matches!((iat, exp), (Some(i), Some(e)) if e > i && e - i <= 3600);
                if !ok {
                    return refuse("claims");
                }
                let iss = claims["iss"].as_str().unwrap_or("").to_string();
                let token = format!(
                    "s3cret-gcp-token-for-{}",
                    iss.split('@').next().unwrap_or("")
                );
                json(
                    200,
                    serde_json::json!({"access_token": token, "expires_in": 3599}),
                    vec![],
                )
            }
            Some("refresh_token") => {
                let ok = f.get("refresh_token").map(String::as_str) == Some("s3cret-gcp-refresh")
                    && f.get("client_id").map(String::as_str) == Some("user-client")
                    && f.get("client_secret").map(String::as_str)
                        == Some("s3cret-gcp-client-secret");
                if !ok {
                    return refuse("bad refresh token");
                }
                json(
                    200,
                    serde_json::json!({"access_token": "s3cret-gcp-token-for-user", "expires_in": 3599}),
                    vec![],
                )
            }
            _ => refuse("unsupported grant_type"),
        }
    }
}

/// A service account key file for `email` whose `token_uri` is `token_uri`.
pub fn key_file(email: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "test-key-1",
        "private_key": test_key().pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}

/// gcloud's user credentials for the test user.
pub fn user_file(token_uri: &str) -> String {
    serde_json::json!({
        "type": "authorized_user",
        "client_id": "user-client",
        "client_secret": "s3cret-gcp-client-secret",
        "refresh_token": "s3cret-gcp-refresh",
        "token_uri": token_uri,
    })
    .to_string()
}

/// Google's APIs under one fake at `base` (the test's URL of it), routed by path:
/// `/token` the token endpoint (see [`token_endpoint`]); `/sts` the Security Token Service's
/// token exchange ("Exchange a token", sts.googleapis.com/v1/token: every form field
/// checked, the subject token must be `subject`); `/v1/projects/-/serviceAccounts/<email>
/// :generateAccessToken` IAM Credentials (the bearer must be a token this fake or the
/// metadata fake issued; the answer is `accessToken` and an RFC 3339 `expireTime`).
pub fn apis(base: String, subject: &'static str) -> impl Fn(&Request) -> Reply + Send + Sync {
    let token = token_endpoint(format!("{base}/token"));
    move |req| {
        let path = req.target.as_str();
        if path == "/token" {
            return token(req);
        }
        if path == "/sts" {
            let f = form(&req.body);
            let want = [
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                (
                    "audience",
                    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov",
                ),
                ("scope", "https://www.googleapis.com/auth/cloud-platform"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
                ("subject_token", subject),
            ];
            if let Some((field, _)) = want
                .iter()
                .find(|(k, v)| f.get(*k).map(String::as_str) != Some(*v))
            {
                return json(
                    400,
                    serde_json::json!({"error": "invalid_request", "error_description": format!("bad {field}")}),
                    vec![],
                );
            }
            return json(
                200,
                serde_json::json!({
                    "access_token": "s3cret-gcp-federated",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                    "token_type": "Bearer",
                    "expires_in": 3599,
                }),
                vec![],
            );
        }
        if let Some(rest) = path.strip_prefix("/v1/projects/-/serviceAccounts/")
            && let Some(email) = rest.strip_suffix(":generateAccessToken")
        {
            let bearer = req.header("authorization").unwrap_or("");
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let ok = bearer.starts_with("Bearer s3cret-gcp-")
                && body["scope"][0] == "https://www.googleapis.com/auth/cloud-platform";
            if !ok {
                return json(
                    401,
                    serde_json::json!({"error": {"code": 401, "message": "bad credentials", "status": "UNAUTHENTICATED"}}),
                    vec![],
                );
            }
            let expire = humantime::format_rfc3339_seconds(
                std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
            );
            let who = email.split('@').next().unwrap_or("");
            return json(
                200,
                serde_json::json!({
                    "accessToken": format!("s3cret-gcp-token-for-impersonated-{who}"),
                    "expireTime": expire.to_string(),
                }),
                vec![],
            );
        }
        json(404, serde_json::json!({"error": "not found"}), vec![])
    }
}

/// An external account file: the subject token from `source` (a `credential_source`
/// object), exchanged at `sts`, then impersonating `impersonate` if given.
pub fn external_account_file(
    sts: &str,
    source: serde_json::Value,
    impersonate: Option<&str>,
) -> String {
    let mut file = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": sts,
        "credential_source": source,
    });
    if let Some(email) = impersonate {
        file["service_account_impersonation_url"] = format!(
            "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"
        )
        .into();
    }
    file.to_string()
}

/// Google's STS for AWS-federated subject tokens (`aws4_request`), as Google documents the
/// token: URL-encoded JSON of a signed, unsent `GetCallerIdentity` request. Checks its URL,
/// method, the `x-goog-cloud-target-resource` header (the audience), and that the SigV4
/// `Authorization` names the expected key, region and service; answers
/// `s3cret-gcp-federated-<access key>`.
pub fn sts_aws1(
    audience: &'static str,
    region: &'static str,
) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let f = form(&req.body);
        let refuse = |why: String| {
            json(
                400,
                serde_json::json!({"error": "invalid_request", "error_description": why}),
                vec![],
            )
        };
        if f.get("subject_token_type").map(String::as_str)
            != Some("urn:ietf:params:aws:token-type:aws4_request")
        {
            return refuse("subject_token_type".into());
        }
        let Some(token) = f.get("subject_token") else {
            return refuse("no subject_token".into());
        };
        let decoded = form(format!("t={token}").as_bytes())
            .remove("t")
            .unwrap_or_default();
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&decoded) else {
            return refuse("subject token is not URL-encoded JSON".into());
        };
        let header = |name: &str| {
            request["headers"].as_array().and_then(|hs| {
                hs.iter()
                    .find(|h| {
                        h["key"]
                            .as_str()
                            .is_some_and(|k| k.eq_ignore_ascii_case(name))
                    })
                    .and_then(|h| h["value"].as_str())
                    .map(str::to_string)
            })
        };
        let url = format!(
            "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
        );
        if request["url"] != url.as_str() || request["method"] != "POST" {
            return refuse(format!("url/method {request}"));
        }
        if header("x-goog-cloud-target-resource").as_deref() != Some(audience)
            || header("x-amz-date").is_none()
        {
            return refuse("headers".into());
        }
        let auth = header("authorization").unwrap_or_default();
        let key = auth
            .strip_prefix("AWS4-HMAC-SHA256 Credential=")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("")
            .to_string();
        if key.is_empty() || !auth.contains(&format!("/{region}/sts/aws4_request")) {
            return refuse("authorization".into());
        }
        json(
            200,
            serde_json::json!({"access_token": format!("s3cret-gcp-federated-{key}"), "expires_in": 3599}),
            vec![],
        )
    }
}
