//! Fakes of the secret stores that have no real test peer here, each following its
//! documented HTTP API and checking what it is sent: Google Secret Manager
//! (`versions.access`: `GET /v1/projects/P/secrets/S/versions/V:access`, a bearer token,
//! the payload's `data` in base64 and its `dataCrc32c`; errors as Google's `error` object),
//! Azure Key Vault (`GET /secrets/<name>[/<version>]?api-version=7.4`, a bearer token for
//! Key Vault's resource; errors as `error.code`/`error.message`), and Vault / OpenBao
//! (`POST /v1/auth/<mount>/login` for Kubernetes/JWT and AppRole auth, a role that admits
//! some service accounts, and KV reads under `/v1/<mount>/data/<path>` (v2) or
//! `/v1/<mount>/<path>` (v1) with `X-Vault-Token`, each token's policy naming the paths it
//! may read; errors as `{"errors": […]}`). Secrets can be changed while a test runs (a
//! rotation) through [`Secrets`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::http::json as answer;
use super::http::{Reply, Request};

/// A store's secrets by name, shared with the test that changes them.
#[derive(Clone, Default)]
pub struct Secrets(Arc<Mutex<BTreeMap<String, String>>>);

impl Secrets {
    pub fn set(&self, name: &str, value: &str) {
        self.0.lock().unwrap().insert(name.into(), value.into());
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.lock().unwrap().get(name).cloned()
    }
}

fn bearer(req: &Request) -> &str {
    req.header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// Google Secret Manager: a version of a secret in `secrets` (by `projects/P/secrets/S`)
/// for a bearer token that starts with `token_prefix` (what the Google fakes issue), else
/// 401; `denied` secrets answer 403 PERMISSION_DENIED whatever the token.
pub fn secret_manager(
    secrets: Secrets,
    token_prefix: &'static str,
    denied: &'static [&'static str],
) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let error = |code: u16, status: &str, message: String| {
            answer(
                code,
                json!({"error": {"code": code, "message": message, "status": status}}),
                vec![],
            )
        };
        let Some(version) = req
            .target
            .strip_prefix("/v1/")
            .and_then(|p| p.strip_suffix(":access"))
        else {
            return error(404, "NOT_FOUND", "no such method".into());
        };
        if req.method != "GET" {
            return error(405, "INVALID_ARGUMENT", "GET only".into());
        }
        if !bearer(req).starts_with(token_prefix) {
            return error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.".into(),
            );
        }
        let Some((secret, v)) = version.rsplit_once("/versions/") else {
            return error(400, "INVALID_ARGUMENT", "not a version name".into());
        };
        if denied.contains(&secret) {
            return error(
                403,
                "PERMISSION_DENIED",
                format!(
                    "Permission 'secretmanager.versions.access' denied for resource '{secret}/versions/{v}' (or it may not exist)."
                ),
            );
        }
        let Some(value) = secrets.get(secret) else {
            return error(
                404,
                "NOT_FOUND",
                format!("Secret [{secret}] not found or has no versions."),
            );
        };
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(value.as_bytes());
        answer(
            200,
            json!({
                "name": format!("{secret}/versions/1"),
                "payload": {
                    "data": base64::engine::general_purpose::STANDARD.encode(&value),
                    "dataCrc32c": crc.to_string(),
                },
            }),
            vec![],
        )
    }
}

/// Azure Key Vault: `secrets` by name, for a bearer token (of the Azure fakes) whose `aud`
/// is Key Vault's resource and whose `sub` is one of `readers` (403 Forbidden otherwise),
/// only with `api-version=7.4`.
pub fn key_vault(
    secrets: Secrets,
    readers: &'static [&'static str],
) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let error = |status: u16, code: &str, message: String| {
            answer(
                status,
                json!({"error": {"code": code, "message": message}}),
                vec![],
            )
        };
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        if query != "api-version=7.4" {
            return error(
                400,
                "BadParameter",
                "api-version is missing or unsupported".into(),
            );
        }
        let Some(rest) = path.strip_prefix("/secrets/") else {
            return error(404, "NotFound", "no such path".into());
        };
        let name = rest.split('/').next().unwrap_or("");
        let token = bearer(req);
        let claims = super::azure::claims(token)
            .filter(|c| token.ends_with(".s3cret-aad-sig") && c["aud"] == super::azure::KEY_VAULT);
        let Some(claims) = claims else {
            return error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token, or it is for another resource.".into());
        };
        let who = claims["sub"].as_str().unwrap_or("");
        if !readers.contains(&who) {
            return error(
                403,
                "Forbidden",
                format!(
                    "The user, group or application '{who}' does not have secrets get permission on key vault."
                ),
            );
        }
        match secrets.get(name) {
            Some(value) => answer(
                200,
                json!({"value": value, "id": format!("https://fake.vault.azure.net/secrets/{name}/0123456789abcdef0123456789abcdef"), "attributes": {"enabled": true}}),
                vec![],
            ),
            None => error(
                404,
                "SecretNotFound",
                format!("A secret with (name/id) {name} was not found in this key vault."),
            ),
        }
    }
}

/// A Vault role of the fake: the auth mount it is under, its name, and the service
/// accounts (`namespace:name`) it admits (Kubernetes/JWT auth), or its AppRole ids; the
/// paths (`<mount>/<path>`) its tokens may read.
pub struct VaultRole {
    pub mount: &'static str,
    pub name: &'static str,
    pub admits: &'static [&'static str],
    pub role_id: Option<(&'static str, &'static str)>,
    pub reads: &'static [&'static str],
}

/// Vault / OpenBao. A login is answered with a fresh token (`s3cret-vault-token-<n>`),
/// leased for `lease` seconds, when the role admits the token's service account (claims
/// read as Vault's Kubernetes auth reads a reviewed token) or the AppRole ids match; a
/// read needs a token of a role whose `reads` holds the path, and `auth/token/lookup-self`
/// answers any token it issued. KV v2 under `secret/`, v1 under `kv/`. Every request must carry `X-Vault-Request: true` and, with `namespace`,
/// `X-Vault-Namespace`.
pub fn vault(
    secrets: Secrets,
    roles: &'static [VaultRole],
    lease: u64,
    namespace: Option<&'static str>,
) -> impl Fn(&Request) -> Reply + Send + Sync {
    let issued: Arc<Mutex<BTreeMap<String, &'static VaultRole>>> = Arc::default();
    let counter = Arc::new(AtomicU32::new(0));
    move |req| {
        let error =
            |status: u16, errors: &[&str]| answer(status, json!({"errors": errors}), vec![]);
        if req.header("x-vault-request") != Some("true") {
            return error(400, &["missing X-Vault-Request"]);
        }
        if req.header("x-vault-namespace") != namespace {
            return error(403, &["1 error occurred:\n\t* permission denied\n\n"]);
        }
        let Some(path) = req.target.strip_prefix("/v1/") else {
            return error(404, &[]);
        };
        if let Some(mount) = path
            .strip_prefix("auth/")
            .and_then(|p| p.strip_suffix("/login"))
        {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            let role = match (body["role"].as_str(), body["role_id"].as_str()) {
                (Some(name), None) => {
                    let Some(role) = roles.iter().find(|r| r.mount == mount && r.name == name)
                    else {
                        return error(400, &[&format!("invalid role name \"{name}\"")]);
                    };
                    let jwt = body["jwt"].as_str().unwrap_or("");
                    let who = super::azure::claims(jwt)
                        .filter(|_| jwt.ends_with(&format!(".{}", super::kube::SIGNATURE)))
                        .and_then(|c| {
                            let k = &c["kubernetes.io"];
                            Some(format!(
                                "{}:{}",
                                k["namespace"].as_str()?,
                                k["serviceaccount"]["name"].as_str()?
                            ))
                        });
                    match who {
                        Some(w) if role.admits.contains(&w.as_str()) => role,
                        Some(_) => return error(403, &["service account name not authorized"]),
                        None => return error(403, &["permission denied"]),
                    }
                }
                (None, Some(role_id)) => {
                    let secret_id = body["secret_id"].as_str().unwrap_or("");
                    match roles
                        .iter()
                        .find(|r| r.mount == mount && r.role_id == Some((role_id, secret_id)))
                    {
                        Some(role) => role,
                        None => return error(400, &["invalid role or secret ID"]),
                    }
                }
                _ => return error(400, &["missing role"]),
            };
            let token = format!(
                "s3cret-vault-token-{}",
                counter.fetch_add(1, Ordering::SeqCst)
            );
            issued.lock().unwrap().insert(token.clone(), role);
            return answer(
                200,
                json!({"auth": {"client_token": token, "lease_duration": lease, "renewable": true, "policies": ["default"]}}),
                vec![],
            );
        }
        let token = req.header("x-vault-token").unwrap_or("");
        let Some(role) = issued.lock().unwrap().get(token).copied() else {
            return error(403, &["permission denied", "invalid token"]);
        };
        if path == "auth/token/lookup-self" {
            return answer(
                200,
                json!({"data": {"id": "(hidden)", "policies": ["default"], "ttl": lease}}),
                vec![],
            );
        }
        let (name, kv2) = if let Some(p) = path.strip_prefix("secret/data/") {
            (format!("secret/{p}"), true)
        } else if let Some(p) = path.strip_prefix("kv/") {
            (format!("kv/{p}"), false)
        } else {
            return error(404, &["no handler for route"]);
        };
        if !role.reads.contains(&name.as_str()) {
            return error(403, &["1 error occurred:\n\t* permission denied\n\n"]);
        }
        let Some(value) = secrets.get(&name) else {
            return error(404, &[]);
        };
        let data: Value =
            serde_json::from_str(&value).unwrap_or_else(|_| json!({"password": value}));
        let body = if kv2 {
            json!({"data": {"data": data, "metadata": {"version": 1}}})
        } else {
            json!({"data": data})
        };
        answer(200, body, vec![])
    }
}
