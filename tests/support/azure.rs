//! Fakes of Azure's endpoints, which have no real test peer, each following Microsoft's
//! documentation of its wire format:
//! - IMDS, "How to use managed identities for Azure resources on an Azure VM to acquire an
//!   access token": `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
//!   with `client_id` or `msi_res_id` for a user-assigned identity; the `Metadata: true`
//!   header is required (400 without it); answers carry `expires_in` as a string.
//! - Entra ID's v2 token endpoint, "Microsoft identity platform and the OAuth 2.0 client
//!   credentials flow" and "certificate credentials": `POST /{tenant}/oauth2/v2.0/token`
//!   with `grant_type=client_credentials`, `client_id`, `scope`, and `client_secret` or
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with
//!   `client_assertion`: a certificate's JWT (RS256, `x5t#S256` the certificate's SHA-256
//!   thumbprint, `aud` the token endpoint, `iss` = `sub` = the client ID, `jti`, `nbf`, `exp`),
//!   verified here with the certificate's key, or a federated token.
//! - ACR's exchange, "Azure Container Registry: authenticate with Entra ID (AAD-OAuth)":
//!   `POST /oauth2/exchange` with `grant_type=access_token`, `service`, `tenant` and
//!   `access_token`, answered `{"refresh_token": <JWT>}`.
//!
//! Access tokens are JWT-shaped (`tid`, `sub` naming the identity) with a signature part that
//! marks them as fixture secrets; the exchange reads them and answers a refresh token whose
//! claims say who and what it was for, so tests can check the whole chain from the answer.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::google::test_key;
use super::http::{Reply, Request, form, json};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const SP_CLIENT: &str = "a1b2c3d4-0000-4000-8000-00000000c11e";
pub const CLIENT_SECRET: &str = "s3cret-azure-client-secret";
pub const FEDERATED_TOKEN: &str = "s3cret-azure-federated-token";
pub const USER_MI: &str = "11111111-2222-4333-8444-555555555555";
pub const USER_MI_RESOURCE: &str = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/puller";
/// The username ACR takes with a refresh token.
pub const ZERO_USER: &str = "00000000-0000-0000-0000-000000000000";
const RESOURCE: &str = "https://containerregistry.azure.net";
/// Key Vault's resource in the public cloud.
pub const KEY_VAULT: &str = "https://vault.azure.net";
/// The resources the fakes issue tokens for: ACR's and Key Vault's.
const RESOURCES: [&str; 2] = [RESOURCE, KEY_VAULT];
/// How long the fake's refresh tokens live, as ACR's do.
pub const REFRESH_LIFE: Duration = Duration::from_secs(3 * 3600);

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An Entra access token for `who` in `tenant`, for the resource `aud`.
pub fn access_token_for(who: &str, tenant: &str, aud: &str) -> String {
    let claims = serde_json::json!({"aud": aud, "tid": tenant, "sub": who, "exp": now() + 3600});
    format!(
        "{}.{}.s3cret-aad-sig",
        b64(r#"{"typ":"JWT","alg":"RS256","x5t":"fake"}"#),
        b64(&claims.to_string())
    )
}

/// The claims of a JWT-shaped token, or `None`.
pub fn claims(token: &str) -> Option<serde_json::Value> {
    let middle = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(middle).ok()?).ok()
}

/// The test application's certificate (self-signed, with the test RSA key) as PEM, and the
/// file a rule or `AZURE_CLIENT_CERTIFICATE_PATH` names: certificate then key.
pub struct TestCert {
    pub pem: String,
    pub thumbprint: String,
}

pub fn test_cert() -> &'static TestCert {
    static CERT: OnceLock<TestCert> = OnceLock::new();
    CERT.get_or_init(|| {
        let key = rcgen::KeyPair::from_pem(&test_key().pem).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["puller.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        TestCert {
            pem: format!("{}{}", cert.pem(), test_key().pem),
            thumbprint: URL_SAFE_NO_PAD.encode(digest(&SHA256, cert.der())),
        }
    })
}

/// IMDS: the system-assigned identity, and the user-assigned one by [`USER_MI`] or
/// [`USER_MI_RESOURCE`]; tokens are for `mi-system` / `mi-user` in [`TENANT`].
pub fn imds() -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let refuse = |status, why: &str| {
            json(
                status,
                serde_json::json!({"error": "invalid_request", "error_description": why}),
                vec![],
            )
        };
        if req.header("metadata") != Some("true") {
            return refuse(400, "Required metadata header not specified");
        }
        let Some((path, query)) = req.target.split_once('?') else {
            return refuse(400, "no query");
        };
        if req.method != "GET" || path != "/metadata/identity/oauth2/token" {
            return refuse(404, "not found");
        }
        let q = form(query.as_bytes());
        if q.get("api-version").map(String::as_str) != Some("2018-02-01") {
            return refuse(400, "Invalid API version");
        }
        let Some(resource) = q
            .get("resource")
            .map(String::as_str)
            .filter(|r| RESOURCES.contains(r))
        else {
            return refuse(400, "Invalid resource");
        };
        let who = match (q.get("client_id"), q.get("msi_res_id")) {
            (None, None) => "mi-system",
            (Some(c), None) if c == USER_MI => "mi-user",
            (None, Some(r)) if r == USER_MI_RESOURCE => "mi-user",
            _ => return refuse(400, "Identity not found"),
        };
        let expires_on = now() + 86399;
        json(
            200,
            serde_json::json!({
                "access_token": access_token_for(who, TENANT, resource),
                "refresh_token": "",
                "expires_in": "86399",
                "expires_on": expires_on.to_string(),
                "not_before": now().to_string(),
                "resource": resource,
                "token_type": "Bearer",
            }),
            vec![],
        )
    }
}

/// Entra ID's token endpoint, reached as `base` (so a certificate assertion's `aud` can be
/// checked): [`SP_CLIENT`] with [`CLIENT_SECRET`] (token for `sp-secret`), with the test
/// certificate (`sp-cert`), or with [`FEDERATED_TOKEN`] (`workload`), all in [`TENANT`].
pub fn entra(base: String) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let refuse = |status, error: &str, why: &str| {
            json(
                status,
                serde_json::json!({"error": error, "error_description": format!("{why}\r\nTrace ID: 0000\r\nTimestamp: 2026-11-23")}),
                vec![],
            )
        };
        let Some(tenant) = req
            .target
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix("/oauth2/v2.0/token"))
        else {
            return refuse(404, "not_found", "no such endpoint");
        };
        if tenant != TENANT {
            return refuse(400, "invalid_request", "AADSTS90002: Tenant not found.");
        }
        let f = form(&req.body);
        let field = |k: &str| f.get(k).map(String::as_str);
        if field("grant_type") != Some("client_credentials") {
            return refuse(400, "unsupported_grant_type", "AADSTS70003");
        }
        let Some(resource) = field("scope")
            .and_then(|s| s.strip_suffix("/.default"))
            .filter(|r| RESOURCES.contains(r))
        else {
            return refuse(400, "invalid_scope", "AADSTS70011: invalid scope");
        };
        if field("client_id") != Some(SP_CLIENT) {
            return refuse(
                400,
                "unauthorized_client",
                "AADSTS700016: application not found",
            );
        }
        let who = match (field("client_secret"), field("client_assertion_type")) {
            (Some(CLIENT_SECRET), None) => "sp-secret".to_string(),
            (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")) => {
                let assertion = field("client_assertion").unwrap_or("");
                if assertion == FEDERATED_TOKEN {
                    "workload".to_string()
                } else if let Some(sub) = service_account(assertion) {
                    format!("workload {sub}")
                } else if certificate_assertion_ok(
                    assertion,
                    &format!("{base}/{tenant}/oauth2/v2.0/token"),
                ) {
                    "sp-cert".to_string()
                } else {
                    return refuse(401, "invalid_client", "AADSTS700027: assertion invalid");
                }
            }
            _ => {
                return refuse(
                    401,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided.",
                );
            }
        };
        json(
            200,
            serde_json::json!({
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": access_token_for(&who, TENANT, resource),
            }),
            vec![],
        )
    }
}

/// The `sub` of a Kubernetes service account token (support::kube's), which a federated
/// identity credential for the cluster's issuer would accept.
fn service_account(assertion: &str) -> Option<String> {
    if !assertion.ends_with(&format!(".{}", super::kube::SIGNATURE)) {
        return None;
    }
    claims(assertion)?["sub"]
        .as_str()
        .filter(|s| s.starts_with("system:serviceaccount:"))
        .map(str::to_string)
}

/// A certificate assertion as Entra checks it: signed by the test key, `x5t#S256` the test
/// certificate's thumbprint, `aud` the endpoint, `iss` = `sub` = the client, at most ten
/// minutes of life, a `jti`.
fn certificate_assertion_ok(assertion: &str, aud: &str) -> bool {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
    let key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &test_key().public);
    if key
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .is_err()
    {
        return false;
    }
    let (Some(header), Some(c)) = (claims(&format!("x.{}.x", parts[0])), claims(assertion)) else {
        return false;
    };
    let (nbf, exp) = (c["nbf"].as_u64(), c["exp"].as_u64());
    header["alg"] == "RS256"
        && header["x5t#S256"] == test_cert().thumbprint.as_str()
        && c["aud"] == aud
        && c["iss"] == SP_CLIENT
        && c["sub"] == SP_CLIENT
        && c["jti"].as_str().is_some_and(|j| !j.is_empty())
        && matches!((nbf, exp), (Some(n), Some(e)) if e > n && e - n <= 600)
}

/// ACR's exchange: every form field checked (`service` one of `services`, `tenant`
/// [`TENANT`], an access token this module issued); the refresh token's claims carry the
/// service, the tenant and who asked, and `exp` [`REFRESH_LIFE`] from now.
pub fn exchange(services: &'static [&'static str]) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let refuse = |status, code: &str, why: &str| {
            json(
                status,
                serde_json::json!({"errors": [{"code": code, "message": why}]}),
                vec![],
            )
        };
        if req.method != "POST" || req.target != "/oauth2/exchange" {
            return refuse(404, "NOT_FOUND", "no such endpoint");
        }
        let f = form(&req.body);
        let field = |k: &str| f.get(k).map(String::as_str);
        if field("grant_type") != Some("access_token") {
            return refuse(400, "UNSUPPORTED", "grant_type");
        }
        let Some(service) = field("service").filter(|s| services.contains(s)) else {
            return refuse(400, "DENIED", "service");
        };
        if field("tenant") != Some(TENANT) {
            return refuse(400, "DENIED", "tenant");
        }
        let token = field("access_token").unwrap_or("");
        // ACR takes tokens for its own resource only (not, say, Key Vault's).
        let Some(aad) =
            claims(token).filter(|c| token.ends_with(".s3cret-aad-sig") && c["aud"] == RESOURCE)
        else {
            return refuse(401, "UNAUTHORIZED", "the access token is invalid");
        };
        let refresh = serde_json::json!({
            "jti": "r1",
            "sub": aad["sub"],
            "tenant": TENANT,
            "service": service,
            "grant_type": "refresh_token",
            "exp": now() + REFRESH_LIFE.as_secs(),
        });
        json(
            200,
            serde_json::json!({
                "refresh_token": format!(
                    "{}.{}.s3cret-acr-refresh",
                    b64(r#"{"alg":"RS256","typ":"JWT","kid":"acr"}"#),
                    b64(&refresh.to_string())
                )
            }),
            vec![],
        )
    }
}

/// The Entra endpoint and the exchange behind one address, routed by path.
pub fn entra_and_exchange(
    base: String,
    services: &'static [&'static str],
) -> impl Fn(&Request) -> Reply + Send + Sync {
    let entra = entra(base);
    let exchange = exchange(services);
    move |req| {
        if req.target == "/oauth2/exchange" {
            exchange(req)
        } else {
            entra(req)
        }
    }
}

/// Entra ID and the exchange (for `services`) behind one fake, and IMDS behind another.
pub fn fakes(services: &'static [&'static str]) -> (super::http::FakeHttp, super::http::FakeHttp) {
    let api = super::http::FakeHttp::start(|_| Reply::Hang);
    api.set(entra_and_exchange(api.url(), services));
    (api, super::http::FakeHttp::start(imds()))
}

/// A node's Azure for a test: Entra ID and the exchange behind `api`, IMDS at `imds`, the
/// test's files and cache under `home` (0700). Each test file adds the commands it needs.
pub struct Node {
    pub home: tempfile::TempDir,
    pub api: super::http::FakeHttp,
    pub imds: super::http::FakeHttp,
}

impl Node {
    pub fn new(services: &'static [&'static str]) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let (api, imds) = fakes(services);
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Node { home, api, imds }
    }
}
