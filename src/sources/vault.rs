//! Source `vault`: a registry credential kept in HashiCorp Vault or OpenBao (the same HTTP
//! API), read from a KV secrets engine (version 2 or 1) after a login: Kubernetes or JWT
//! auth with a service account token (the pod's, for `identity = "service-account"`; else
//! the node's from `jwt_file`), AppRole, or a token file (a Vault Agent sink). The login
//! token is kept in the cache dir like a credential and reused across execs until its lease
//! ends; it is never revoked (it is short-lived). Which service accounts a role admits and
//! which paths its policy reads are Vault's decision.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec, run_mint};
use crate::cache::{Cache, Entry};
use crate::cache::store::Key;
use crate::credential::{Credential, Scope, Secret};
use crate::env::Env;
use crate::http::{CallError, Unreadable, WebTimeouts, web_client, web_client_trusting};
use crate::secret_file;
use crate::stored::{self, Reading, Stored};
use crate::workload::{IdentityMode, InputError, Inputs, Workload};

kinds! {
    name: "vault",
    options: VaultOptions,
    shared: [stored::Keys],
    build: from_options,
    builtin: &[],
    workloads: super::Workloads::Optional,
}

/// The audience a workload's token is asked for when the rule names none: what Vault's
/// JWT and Kubernetes roles are commonly bound to.
const DEFAULT_AUDIENCE: &str = "vault";
const DEFAULT_MOUNT: &str = "secret";
/// A login token is reused while this share of its lease is left, so a read never starts
/// with a token about to lapse.
const LEASE_USE: f64 = 0.9;
/// The longest a login token is kept, whatever lease Vault answers (Vault's own default
/// maximum TTL).
const MAX_LEASE: Duration = Duration::from_secs(32 * 24 * 3600);
const TIMEOUTS: WebTimeouts = WebTimeouts {
    connect: Duration::from_secs(3),
    read: Duration::from_secs(5),
    attempt: Duration::from_secs(6),
};

/// The rule keys of `vault` (beyond the stored value's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultOptions {
    address: Option<String>,
    ca_file: Option<String>,
    namespace: Option<String>,
    auth: Option<String>,
    auth_mount: Option<String>,
    role: Option<String>,
    jwt_file: Option<String>,
    role_id_file: Option<String>,
    secret_id_file: Option<String>,
    token_file: Option<String>,
    audience: Option<String>,
    mount: Option<String>,
    path: Option<String>,
    kv_version: Option<u8>,
}

/// How pullcred logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Auth {
    /// Kubernetes or JWT auth (their login is the same call): the rule's role, and the
    /// node's token file (a workload brings its own token).
    Jwt {
        kind: &'static str,
        role: String,
        jwt_file: Option<PathBuf>,
    },
    AppRole {
        role_id_file: PathBuf,
        secret_id_file: PathBuf,
    },
    /// A token read from a file at each mint; nothing is logged in or kept.
    Token { file: PathBuf },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultSource {
    /// The rule's address, else `VAULT_ADDR` at mint time.
    address: Option<String>,
    ca_file: Option<PathBuf>,
    namespace: Option<String>,
    auth: Auth,
    auth_mount: String,
    audience: String,
    mount: String,
    path: String,
    kv_version: u8,
    reading: Reading,
}

fn from_options(options: &Options<'_>) -> Result<VaultSource, OptionError> {
    let (rest, value_keys) = options.split::<stored::Keys>()?;
    let o: VaultOptions = rest.parse()?;
    let reading = Reading::from_keys(value_keys)?;
    let address = match &o.address {
        Some(a) => Some(stored::base_url(a).map_err(|why| OptionError::at("address", why))?),
        None => None,
    };
    let path_key = |key: &str, v: &Option<String>| v.as_deref().map(|f| options.path(f)).ok_or_else(|| {
        OptionError::rule(format!("auth {:?} needs `{key}`", o.auth.as_deref().unwrap_or("")))
    });
    let workload = options.identity != IdentityMode::Node;
    let auth = match o.auth.as_deref() {
        Some(kind @ ("kubernetes" | "jwt")) => {
            let role = o.role.clone().ok_or_else(|| {
                OptionError::rule(format!("auth {kind:?} needs `role`, the Vault role to log in with"))
            })?;
            if o.jwt_file.is_none() && options.identity != IdentityMode::ServiceAccount {
                return Err(OptionError::rule(format!(
                    "auth {kind:?} for the node needs `jwt_file`, the node's token (or identity \"service-account\")"
                )));
            }
            Auth::Jwt {
                kind: if kind == "jwt" { "jwt" } else { "kubernetes" },
                role,
                jwt_file: o.jwt_file.as_deref().map(|f| options.path(f)),
            }
        }
        Some(kind @ ("approle" | "token")) => {
            if workload {
                return Err(OptionError::at(
                    "auth",
                    format!("auth {kind:?} logs in as the node; a service account's identity needs auth \"kubernetes\" or \"jwt\""),
                ));
            }
            if kind == "approle" {
                Auth::AppRole {
                    role_id_file: path_key("role_id_file", &o.role_id_file)?,
                    secret_id_file: path_key("secret_id_file", &o.secret_id_file)?,
                }
            } else {
                Auth::Token {
                    file: path_key("token_file", &o.token_file)?,
                }
            }
        }
        Some(other) => {
            return Err(OptionError::at(
                "auth",
                format!("auth {other:?} is not one of kubernetes, jwt, approle, token"),
            ));
        }
        None => {
            return Err(OptionError::rule(
                "source \"vault\" needs `auth` (kubernetes, jwt, approle or token)",
            ));
        }
    };
    // Keys of another auth method are mistakes, not options.
    let used: &[&str] = match &auth {
        Auth::Jwt { .. } => &["role", "jwt_file", "audience", "auth_mount"],
        Auth::AppRole { .. } => &["role_id_file", "secret_id_file", "auth_mount"],
        Auth::Token { .. } => &["token_file"],
    };
    for (key, set) in [
        ("role", o.role.is_some()),
        ("jwt_file", o.jwt_file.is_some()),
        ("audience", o.audience.is_some()),
        ("auth_mount", o.auth_mount.is_some()),
        ("role_id_file", o.role_id_file.is_some()),
        ("secret_id_file", o.secret_id_file.is_some()),
        ("token_file", o.token_file.is_some()),
    ] {
        if set && !used.contains(&key) {
            return Err(OptionError::at(
                key,
                format!("`{key}` does not apply to auth {:?}", o.auth.as_deref().unwrap_or("")),
            ));
        }
    }
    let segments = |key: &str, v: &str| {
        if is_path(v) {
            Ok(v.to_string())
        } else {
            Err(OptionError::at(
                key,
                format!("{key} {v:?} is not a Vault path (segments of letters, digits and -_.@+=)"),
            ))
        }
    };
    let default_mount = match &auth {
        Auth::Jwt { kind, .. } => *kind,
        Auth::AppRole { .. } => "approle",
        Auth::Token { .. } => "token",
    };
    let auth_mount = segments("auth_mount", o.auth_mount.as_deref().unwrap_or(default_mount))?;
    let mount = segments("mount", o.mount.as_deref().unwrap_or(DEFAULT_MOUNT))?;
    let path = o
        .path
        .as_deref()
        .ok_or_else(|| OptionError::rule("source \"vault\" needs `path`, the secret's path under its mount"))?;
    let path = segments("path", path.trim_matches('/'))?;
    if let Some(n) = &o.namespace {
        segments("namespace", n.trim_matches('/'))?;
    }
    if let Some(r) = &o.role {
        segments("role", r)?;
    }
    let kv_version = match o.kv_version {
        None => 2,
        Some(v @ (1 | 2)) => v,
        Some(v) => {
            return Err(OptionError::at(
                "kv_version",
                format!("kv_version {v} is not 1 or 2"),
            ));
        }
    };
    let audience = o.audience.unwrap_or_else(|| DEFAULT_AUDIENCE.to_string());
    if audience.is_empty() || audience.contains(char::is_whitespace) {
        return Err(OptionError::at("audience", "audience must be one word"));
    }
    Ok(VaultSource {
        address,
        ca_file: o.ca_file.as_deref().map(|f| options.path(f)),
        namespace: o.namespace.map(|n| n.trim_matches('/').to_string()),
        auth,
        auth_mount,
        audience,
        mount,
        path,
        kv_version,
        reading,
    })
}

/// A Vault path (a mount, a secret's path, a namespace): segments of letters, digits and
/// `-_.@+=`, none `.` or `..`.
fn is_path(v: &str) -> bool {
    !v.is_empty()
        && v.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@+=".contains(&b))
        })
}

/// Where one mint talks to Vault, as resolved from the rule and the environment.
struct Target {
    address: String,
    namespace: Option<String>,
    ca_file: Option<PathBuf>,
}

impl VaultSource {
    fn target(&self, env: &Env) -> Result<Target, SourceError> {
        let address = match (&self.address, env.var("VAULT_ADDR")) {
            (Some(a), _) => a.clone(),
            (None, Some(a)) => stored::base_url(a)
                .map_err(|why| SourceError::local(format!("VAULT_ADDR: {why}")))?,
            (None, None) => {
                return Err(SourceError::local(
                    "no Vault address: set the rule's `address` or VAULT_ADDR".into(),
                ));
            }
        };
        Ok(Target {
            address,
            namespace: match (&self.namespace, env.var("VAULT_NAMESPACE")) {
                (Some(n), _) => Some(n.clone()),
                (None, Some(n)) => {
                    let n = n.trim_matches('/');
                    if !is_path(n) {
                        return Err(SourceError::local(format!(
                            "VAULT_NAMESPACE {n:?} is not a Vault namespace path"
                        )));
                    }
                    Some(n.to_string())
                }
                (None, None) => None,
            },
            ca_file: self
                .ca_file
                .clone()
                .or_else(|| env.var("VAULT_CACERT").map(PathBuf::from)),
        })
    }

    /// The secret's name in messages: `<mount>/<path>`.
    fn secret(&self) -> String {
        format!("{}/{}", self.mount, self.path)
    }

    /// The read's URL path under `/v1/`.
    fn read_path(&self) -> String {
        match self.kv_version {
            1 => format!("{}/{}", self.mount, self.path),
            _ => format!("{}/data/{}", self.mount, self.path),
        }
    }

    /// The cache key of the login token this mint would use: the server, the namespace,
    /// the auth method, what it logs in with (`login`, the request's body), and the
    /// workload (a pod's login is its own).
    fn login_key(&self, target: &Target, workload: Option<&Workload>, login: &str) -> Key {
        let mut material = format!(
            "vault login\n{}\n{:?}\n{}\n{:?}\n{login}",
            target.address, target.namespace, self.auth_mount, self.auth
        );
        if let Some(w) = workload {
            material.push('\n');
            w.write_cache_identity(&mut material);
        }
        Key::new(&material)
    }
}

impl Spec for VaultSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    stored_value_spec!(reading);

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(a) = &self.address {
            parts.push(format!("address={a}"));
        }
        if let Some(f) = &self.ca_file {
            parts.push(format!("ca_file={}", f.display()));
        }
        if let Some(n) = &self.namespace {
            parts.push(format!("namespace={n}"));
        }
        match &self.auth {
            Auth::Jwt { kind, role, jwt_file } => {
                parts.push(format!("auth={kind} role={role}"));
                if let Some(f) = jwt_file {
                    parts.push(format!("jwt_file={}", f.display()));
                }
            }
            Auth::AppRole { role_id_file, .. } => {
                parts.push(format!("auth=approle role_id_file={}", role_id_file.display()))
            }
            Auth::Token { file } => parts.push(format!("auth=token token_file={}", file.display())),
        }
        parts.push(format!(
            "auth_mount={} secret={} kv_version={}",
            self.auth_mount,
            self.secret(),
            self.kv_version
        ));
        self.reading.describe(&mut parts);
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "vault {self:?} {}",
            env.vars_text(&["VAULT_ADDR", "VAULT_NAMESPACE", "VAULT_CACERT"])
        )
    }

    fn max_mint_time(&self) -> Duration {
        Duration::from_secs(20)
    }

    fn files(&self) -> Vec<(&'static str, PathBuf)> {
        match &self.auth {
            Auth::Jwt { jwt_file, .. } => jwt_file.iter().map(|f| ("jwt_file", f.clone())).collect(),
            Auth::AppRole {
                role_id_file,
                secret_id_file,
            } => vec![
                ("role_id_file", role_id_file.clone()),
                ("secret_id_file", secret_id_file.clone()),
            ],
            Auth::Token { file } => vec![("token_file", file.clone())],
        }
    }

    fn workload_audience(&self) -> Option<String> {
        Some(self.audience.clone())
    }

    /// A workload logs in with the rule's role and its own token; Vault decides.
    fn workload_inputs(
        &self,
        _annotations: &BTreeMap<String, String>,
        _env: &Env,
    ) -> Result<Inputs, InputError> {
        Ok(Inputs::new())
    }
}

/// A login's answer: the client token, its lease, and how many uses it has (0: any).
#[derive(Deserialize)]
struct LoginAnswer {
    auth: LoginAuth,
}

#[derive(Deserialize)]
struct LoginAuth {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    num_uses: u64,
}

struct Login {
    token: String,
    lease: u64,
    num_uses: u64,
}

fn read_login(body: &[u8]) -> Result<Login, Unreadable> {
    let a: LoginAnswer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("a Vault login"))?;
    if a.auth.client_token.is_empty() || !a.auth.client_token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Unreadable::Empty("client token"));
    }
    Ok(Login {
        token: a.auth.client_token,
        lease: a.auth.lease_duration,
        num_uses: a.auth.num_uses,
    })
}

/// A KV read's `data` (v1), or `data.data` (v2): `None` when KV v2 answers `data: null`
/// (a deleted or destroyed version).
fn read_kv(
    kv_version: u8,
) -> impl Fn(&[u8]) -> Result<Option<Map<String, Value>>, Unreadable> {
    move |body| {
        let v: Value = serde_json::from_slice(body).map_err(|_| Unreadable::Not("a Vault secret"))?;
        let data = match kv_version {
            1 => v.get("data"),
            _ => v.get("data").and_then(|d| d.get("data")),
        };
        match data {
            Some(Value::Object(map)) => Ok(Some(map.clone())),
            Some(Value::Null) if kv_version == 2 => Ok(None),
            _ => Err(Unreadable::Not("a Vault secret")),
        }
    }
}

/// A call to Vault: as a store's, and a 412 (Vault Enterprise's "not yet replicated here")
/// is asked again.
fn vault_call(what: &str, deadline: Instant) -> crate::http::Call<'_> {
    crate::http::Call {
        transient: |status, _| matches!(status, 412 | 429) || status >= 500,
        ..stored::call(what, deadline, stored::refusal)
    }
}

impl Source for VaultSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.mint_scoped(req).map(|(c, _)| c)
    }

    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        let target = self.target(req.env)?;
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let secret = self.secret();
        let mut scope = Scope::default();
        let scope_out = &mut scope;
        let target = &target;
        let secret = &secret;
        let credential = run_mint(
            budget,
            |resolver, _limit| async move {
                let client = match &target.ca_file {
                    Some(path) => {
                        let pem = secret_file::read_trusted(path, req.env.uid(), "Vault CA file")?;
                        web_client_trusting(req.env, &resolver, &TIMEOUTS, pem.as_bytes())
                            .map_err(|e| SourceError::local_because(path.display(), e))?
                    }
                    None => web_client(req.env, &resolver, false, &TIMEOUTS)?,
                };
                let session = Session {
                    source: self,
                    target,
                    client: &client,
                    req,
                    kept_under: std::cell::Cell::new(None),
                };
                let (token, kept) = session.token(false).await?;
                let read = match session.read(&token).await {
                    // A kept token refused: if Vault no longer knows it (revoked, or its
                    // lease cut short), log in once more; if it does, the policy says no.
                    Err(CallError::Refused(e)) if kept && !session.knows(&token).await => {
                        tracing::debug!("kept Vault token refused ({e}); logging in again");
                        session.forget();
                        let (token, _) = session.token(true).await?;
                        session.read(&token).await
                    }
                    other => other,
                };
                let map = read
                    .map_err(|e| stored::read_error(secret, e))?
                    .ok_or_else(|| {
                        SourceError::not_found(format!(
                            "secret {secret}: not found (Vault read {}: the version is deleted or destroyed)",
                            self.read_path()
                        ))
                    })?;
                let (mut credential, found) = self.reading.credential(
                    Stored::Map(&map),
                    req.mint_host,
                    req.repository,
                    secret,
                    req.env.now(),
                )?;
                if let (Some(end), Some(exp)) = (token.expires_at, credential.expires_at) {
                    // Read with a workload's login: kept no longer than its token.
                    if req.workload.is_some() {
                        credential.expires_at = Some(exp.min(end));
                    }
                }
                *scope_out = found;
                Ok(credential)
            },
            || format!("Vault {}", self.secret()),
        )?;
        Ok((credential, scope))
    }
}

/// A Vault token in hand, and when its lease ends (if known).
struct Token {
    secret: Secret,
    expires_at: Option<SystemTime>,
}

/// One mint's conversation with Vault.
struct Session<'a> {
    source: &'a VaultSource,
    target: &'a Target,
    client: &'a reqwest::Client,
    req: &'a MintRequest<'a>,
    /// The key of the kept token `token` answered, if it did.
    kept_under: std::cell::Cell<Option<Key>>,
}

impl Session<'_> {
    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let builder = builder.header("X-Vault-Request", "true");
        match &self.target.namespace {
            Some(n) => builder.header("X-Vault-Namespace", n),
            None => builder,
        }
    }

    fn cache(&self) -> Option<&Cache> {
        self.req.cache
    }

    /// Drops a kept login token (its key is the one `token` read it under).
    fn forget(&self) {
        if let (Some(c), Some(key)) = (self.cache(), self.kept_under.take()) {
            let _ = c.remove(&key);
        }
    }

    /// A token to read with, and whether it was kept from an earlier login (never, when
    /// `fresh`).
    async fn token(&self, fresh: bool) -> Result<(Token, bool), SourceError> {
        let env = self.req.env;
        let secret = self.source.secret();
        let login = match &self.source.auth {
            Auth::Token { file } => {
                let text = secret_file::read(file, env.uid())?;
                let token = secret_file::trim_newline(&text).trim();
                if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(SourceError::local(format!(
                        "{}: not a Vault token (one word of printable characters)",
                        file.display()
                    )));
                }
                return Ok((
                    Token {
                        secret: Secret::new(token),
                        expires_at: None,
                    },
                    false,
                ));
            }
            Auth::Jwt { role, jwt_file, .. } => {
                let jwt = match (self.req.workload, jwt_file) {
                    (Some(w), _) => w.account.token.clone(),
                    (None, Some(file)) => {
                        let text = secret_file::read(file, env.uid())?;
                        Secret::new(text.trim())
                    }
                    (None, None) => {
                        return Err(SourceError::local(
                            "no token to log in with: the rule has no jwt_file".into(),
                        ));
                    }
                };
                serde_json::json!({"role": role, "jwt": jwt.expose()})
            }
            Auth::AppRole {
                role_id_file,
                secret_id_file,
            } => {
                let role_id = secret_file::read(role_id_file, env.uid())?;
                let secret_id = secret_file::read(secret_id_file, env.uid())?;
                serde_json::json!({
                    "role_id": role_id.trim(),
                    "secret_id": secret_id.trim(),
                })
            }
        };
        let body = login.to_string();
        // The key covers what logs in (hashed, never a file name's text): a new secret id or
        // node token is a new login, not the old one's token.
        let key = self.source.login_key(self.target, self.req.workload, &body);
        let now = env.now();
        if !fresh
            && let Some(kept) = self.cache().and_then(|c| c.read(&key))
            && kept.is_fresh(now)
            && kept.mint_host == self.target.address
        {
            self.kept_under.set(Some(key));
            return Ok((
                Token {
                    secret: kept.password,
                    expires_at: Some(kept.expires_at),
                },
                true,
            ));
        }
        let path = format!("auth/{}/login", self.source.auth_mount);
        let url = format!("{}/v1/{path}", self.target.address);
        let who = match &self.source.auth {
            Auth::Jwt { role, .. } => format!(" (role {role})"),
            _ => String::new(),
        };
        let what = format!("Vault login {path}{who}");
        let answer = vault_call(&what, self.req.deadline)
            .fetch(
                || {
                    self.request(self.client.post(&url))
                        .header("content-type", "application/json")
                        .body(body.clone())
                },
                |_| Ok(()),
                read_login,
            )
            .await
            // No such auth mount or role is the login refused, not the secret missing.
            .map_err(|e| match e {
                CallError::Absent(t) => CallError::Refused(t),
                e => e,
            })
            .map_err(|e| stored::read_error(&secret, e))?;
        let token = Secret::new(answer.token);
        // A lease of 0 is a token that does not expire (a root token): used, never kept;
        // nor one limited to a number of uses, which other execs would use up.
        let lease = Duration::from_secs(answer.lease.min(MAX_LEASE.as_secs()));
        let expires_at = (!lease.is_zero())
            .then(|| crate::units::after(now, lease))
            .flatten();
        if let (Some(c), Some(end), 0) = (self.cache(), expires_at, answer.num_uses) {
            let entry = Entry {
                mint_host: self.target.address.clone(),
                source: "vault-login".into(),
                minted_at: now,
                refresh_at: now + lease.mul_f64(LEASE_USE),
                expires_at: end,
                username: String::new(),
                password: token.clone(),
                scope: Scope::default(),
            };
            if let Err(e) = c.write(&key, &entry) {
                tracing::warn!(
                    "cache dir {}: cannot keep the Vault token: {e}",
                    c.dir().display()
                );
            }
        }
        Ok((
            Token {
                secret: token,
                expires_at,
            },
            false,
        ))
    }

    /// Whether Vault still knows `token` (`auth/token/lookup-self` answers it).
    async fn knows(&self, token: &Token) -> bool {
        let url = format!("{}/v1/auth/token/lookup-self", self.target.address);
        vault_call("Vault token lookup-self", self.req.deadline)
            .fetch(
                || {
                    self.request(self.client.get(&url))
                        .header("X-Vault-Token", token.secret.expose())
                },
                |_| Ok(()),
                |_| Ok(()),
            )
            .await
            .is_ok()
    }

    /// The KV secret's map; `None` for a deleted or destroyed version.
    async fn read(&self, token: &Token) -> Result<Option<Map<String, Value>>, CallError> {
        let url = format!("{}/v1/{}", self.target.address, self.source.read_path());
        let what = format!("Vault read {}", self.source.read_path());
        vault_call(&what, self.req.deadline)
            .fetch(
                || {
                    self.request(self.client.get(&url))
                        .header("X-Vault-Token", token.secret.expose())
                },
                |_| Ok(()),
                read_kv(self.source.kv_version),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(keys: &str, identity: IdentityMode) -> Result<VaultSource, OptionError> {
        let table: toml::Table = toml::from_str(keys).unwrap();
        from_options(&Options {
            table,
            spans: Default::default(),
            base: std::path::Path::new("/etc/pullcred"),
            identity,
        })
    }

    #[test]
    fn keys_make_a_login_and_a_read() {
        let s = build(
            "address = \"https://vault.example:8200\"\nauth = \"kubernetes\"\nrole = \"puller\"\npath = \"registry/hub\"\n",
            IdentityMode::ServiceAccount,
        )
        .unwrap();
        assert_eq!(s.read_path(), "secret/data/registry/hub");
        assert_eq!(s.auth_mount, "kubernetes");
        assert_eq!(s.audience, DEFAULT_AUDIENCE);
        let v1 = build(
            "address = \"https://vault.example\"\nauth = \"approle\"\nrole_id_file = \"r\"\nsecret_id_file = \"s\"\nmount = \"kv\"\npath = \"hub\"\nkv_version = 1\n",
            IdentityMode::Node,
        )
        .unwrap();
        assert_eq!(v1.read_path(), "kv/hub");
        assert_eq!(
            v1.auth,
            Auth::AppRole {
                role_id_file: "/etc/pullcred/r".into(),
                secret_id_file: "/etc/pullcred/s".into()
            }
        );
    }

    #[test]
    fn errors_name_their_key() {
        let node = IdentityMode::Node;
        let sa = IdentityMode::ServiceAccount;
        for (keys, identity, key) in [
            ("auth = \"ldap\"\npath = \"p\"\n", node, Some("auth")),
            ("auth = \"kubernetes\"\nrole = \"r\"\npath = \"p\"\n", node, None),
            ("auth = \"approle\"\nrole_id_file = \"r\"\nsecret_id_file = \"s\"\npath = \"p\"\n", sa, Some("auth")),
            ("auth = \"token\"\ntoken_file = \"t\"\nrole = \"r\"\npath = \"p\"\n", node, Some("role")),
            ("auth = \"token\"\ntoken_file = \"t\"\npath = \"../sys\"\n", node, Some("path")),
            ("auth = \"token\"\ntoken_file = \"t\"\npath = \"p\"\nkv_version = 3\n", node, Some("kv_version")),
            ("auth = \"token\"\ntoken_file = \"t\"\npath = \"p\"\naddress = \"http://192.0.2.1:8200\"\n", node, Some("address")),
            ("auth = \"token\"\ntoken_file = \"t\"\n", node, None),
        ] {
            let e = build(keys, identity).unwrap_err();
            assert_eq!(e.key.as_deref(), key, "{keys}: {e:?}");
        }
    }

    #[test]
    fn kv_answers_by_version() {
        let v2 = br#"{"data":{"data":{"username":"u","password":"p"},"metadata":{"version":3}}}"#;
        assert_eq!(read_kv(2)(v2).unwrap().unwrap()["username"], "u");
        assert!(read_kv(1)(v2).unwrap().unwrap().contains_key("data"));
        assert_eq!(read_kv(2)(br#"{"data":{"data":null,"metadata":{}}}"#).unwrap(), None);
        assert!(read_kv(2)(br#"{"data":{"data":"x"}}"#).is_err());
        assert_eq!(
            read_kv(1)(br#"{"data":{"password":"p"}}"#).unwrap().unwrap()["password"],
            "p"
        );
    }
}
