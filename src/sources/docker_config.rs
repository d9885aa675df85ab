//! Source `docker-config`: credentials from a docker `config.json`, its `auths` entries or the
//! credential helpers it names (`credHelpers`, `credsStore`).
//!
//! Lookup order for a registry: `credHelpers[registry]`, then an `auths` entry that holds
//! credentials, then `credsStore`. (docker itself skips `auths` once a store is set, but then
//! `auths` entries are empty placeholders, so reading a filled one first costs nothing and
//! saves an exec.) Identity tokens (`identitytoken`, or a helper's `<token>` username) are
//! answered as the password, with the entry's username or `<token>`: the kubelet's response has
//! no field for them, and registries that take refresh tokens as basic auth (ACR with the
//! all-zero username that `az acr login` writes) accept that form.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wait_timeout::ChildExt;

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec};
use crate::credential::{Credential, Scope, Secret};
use crate::env::Env;
use crate::docker_auths::{AuthEntry, Auths, entry_credential, find, normalise};
use crate::image::DOCKER_HUB;
use crate::secret_file;

/// The key docker writes for Docker Hub, and the server URL its helpers expect for it.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// A helper's reply is a few hundred bytes; more is not a helper.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

kinds! {
    name: "docker-config",
    options: DockerConfigOptions,
    build: DockerConfigSource::from_options,
    builtin: &[],
    workloads: super::Workloads::NodeOnly,
}

const DEFAULT_HELPER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long before the request's deadline a helper is given up, leaving time to kill it and
/// answer with the error.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// The rule keys of `docker-config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DockerConfigOptions {
    path: Option<String>,
    gce_metadata_key: Option<String>,
    helper_timeout: Option<String>,
    helper_env: Option<Vec<String>>,
}

/// What a credential helper is given of pullcred's environment, whatever the rule says: how
/// to find programs and files, the locale, proxies, and where docker and desktop keyrings
/// live. Not the rest: pullcred's own environment can hold cloud secrets
/// (`AWS_SECRET_ACCESS_KEY`, `AZURE_CLIENT_SECRET`) that a helper has no business reading;
/// a rule passes more by name with `helper_env`.
pub const HELPER_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "DOCKER_CONFIG",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerConfigSource {
    /// Explicit path; otherwise `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`.
    pub path: Option<PathBuf>,
    /// Instead of a file: the GCE instance attribute that holds the config (upstream's
    /// `--authFlow=dockercfg` / `dockercfg-url`).
    pub gce_metadata_key: Option<GceKey>,
    pub helper_timeout: Duration,
    /// Variables a helper gets beyond [`HELPER_ENV`] (the rule's `helper_env`).
    pub helper_env: Vec<String>,
}

/// The instance attributes GCE keeps a docker config in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GceKey {
    /// `google-dockercfg`: the config itself.
    Dockercfg,
    /// `google-dockercfg-url`: a URL whose body is the config.
    DockercfgUrl,
}

impl GceKey {
    fn name(self) -> &'static str {
        match self {
            GceKey::Dockercfg => "google-dockercfg",
            GceKey::DockercfgUrl => "google-dockercfg-url",
        }
    }
}

/// How long a GCE metadata read may take (its attempts, and the URL's body).
const GCE_METADATA_TIME: Duration = Duration::from_secs(10);

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl DockerConfigSource {
    fn from_options(options: &Options<'_>) -> Result<Self, OptionError> {
        let o: DockerConfigOptions = options.parse()?;
        let helper_timeout = match &o.helper_timeout {
            None => DEFAULT_HELPER_TIMEOUT,
            Some(t) => crate::units::parse_duration(t)
                .map_err(|m| OptionError::at("helper_timeout", format!("helper_timeout: {m}")))?,
        };
        let helper_env = o.helper_env.unwrap_or_default();
        if let Some(bad) = helper_env.iter().find(|n| {
            n.is_empty()
                || n.starts_with(|c: char| c.is_ascii_digit())
                || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }) {
            return Err(OptionError::at(
                "helper_env",
                format!("helper_env: {bad:?} is not a variable name"),
            ));
        }
        let gce_metadata_key = match o.gce_metadata_key.as_deref() {
            None => None,
            Some(_) if o.path.is_some() => {
                return Err(OptionError::at(
                    "gce_metadata_key",
                    "set one of path and gce_metadata_key",
                ));
            }
            Some("google-dockercfg") => Some(GceKey::Dockercfg),
            Some("google-dockercfg-url") => Some(GceKey::DockercfgUrl),
            Some(other) => {
                return Err(OptionError::at(
                    "gce_metadata_key",
                    format!(
                        "gce_metadata_key {other:?} is not \"google-dockercfg\" or \"google-dockercfg-url\""
                    ),
                ));
            }
        };
        Ok(DockerConfigSource {
            gce_metadata_key,
            path: o.path.as_deref().map(|p| options.path(p)),
            helper_timeout,
            helper_env,
        })
    }

    fn resolve_path(&self, env: &Env) -> Result<PathBuf, SourceError> {
        if let Some(p) = &self.path {
            return Ok(p.clone());
        }
        if let Some(dir) = env.var("DOCKER_CONFIG") {
            return Ok(PathBuf::from(dir).join("config.json"));
        }
        env.home()
            .map(|h| h.join(".docker/config.json"))
            .ok_or_else(|| {
                SourceError::local("no docker config: neither DOCKER_CONFIG nor HOME is set".into())
            })
    }
}

impl Spec for DockerConfigSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn keyed_by_repository(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let path = match (&self.path, self.gce_metadata_key) {
            (_, Some(k)) => format!("gce_metadata_key={}", k.name()),
            (Some(p), None) => format!("path={}", p.display()),
            (None, None) => "path=$DOCKER_CONFIG/config.json or ~/.docker/config.json".into(),
        };
        let mut text = format!(
            "{path} helper_timeout={}",
            humantime::format_duration(self.helper_timeout)
        );
        if !self.helper_env.is_empty() {
            text.push_str(&format!(" helper_env={}", self.helper_env.join(",")));
        }
        text
    }

    fn cache_identity(&self, env: &Env) -> String {
        if let Some(k) = self.gce_metadata_key {
            return format!(
                "docker-config gce {} {}",
                k.name(),
                env.vars_text(&["GCE_METADATA_HOST"])
            );
        }
        let mut identity = match self.resolve_path(env) {
            Ok(path) => format!("docker-config {:?}", path.display().to_string()),
            Err(_) => "docker-config (no path)".into(),
        };
        // What a rule passes a helper can change what the helper answers.
        if !self.helper_env.is_empty() {
            let names: Vec<&str> = self.helper_env.iter().map(String::as_str).collect();
            identity.push(' ');
            identity.push_str(&env.vars_text(&names));
        }
        identity
    }

    fn files(&self) -> Vec<(&'static str, PathBuf)> {
        self.path.iter().map(|p| ("path", p.clone())).collect()
    }

    fn max_mint_time(&self) -> Duration {
        match self.gce_metadata_key {
            Some(_) => GCE_METADATA_TIME,
            None => self.helper_timeout,
        }
    }
}

impl Source for DockerConfigSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.mint_scoped(req).map(|(c, _)| c)
    }

    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        if let Some(key) = self.gce_metadata_key {
            return gce_dockercfg(key, req);
        }
        let path = self.resolve_path(req.env)?;
        let text = secret_file::read(&path, req.env.uid())?;
        // serde_json's messages can quote values from the file; report the position only.
        let config: ConfigFile = serde_json::from_str(&text).map_err(|e| {
            SourceError::local(format!(
                "{}: invalid docker config at line {} column {}",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        let host = normalise(req.mint_host);
        let auths = Auths::of(&config.auths, &host);
        let registry_wide = |c| {
            let scope = Scope {
                path: None,
                per_image: auths.narrowed,
            };
            (c, scope)
        };

        if let Some(helper) = find(&config.cred_helpers, &host) {
            return self.run_helper(helper, req).map(registry_wide);
        }
        if let Some((entry, scope)) = auths.for_repository(req.repository)
            && let Some(cred) = entry_credential(entry).map_err(|reason| {
                let what = match scope {
                    Some(p) => format!("{host}/{p}"),
                    None => host.clone(),
                };
                SourceError::local(format!(
                    "{}: auths entry for {what}: {reason}",
                    path.display()
                ))
            })?
        {
            return Ok((
                cred,
                Scope {
                    path: scope.map(str::to_string),
                    per_image: auths.narrowed,
                },
            ));
        }
        if let Some(store) = &config.creds_store {
            return self.run_helper(store, req).map(registry_wide);
        }
        Err(SourceError::not_found(format!(
            "{}: no credentials for {host}",
            path.display()
        )))
    }
}

/// The credential for the image in the docker config a GCE instance attribute holds: the
/// legacy `.dockercfg` (host to `auth` or `username`/`password`) or `{"auths": …}`; for
/// `google-dockercfg-url`, the config at the URL the attribute holds (`https://`, plain
/// `http://` only to loopback; no metadata header goes there).
fn gce_dockercfg(key: GceKey, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
    let budget = req.deadline.saturating_duration_since(Instant::now());
    let name = key.name();
    let text = crate::sources::run_mint(
        budget,
        |resolver, _limit| async move {
            let value = crate::identity::google::metadata::attribute(
                req.env,
                &resolver,
                name,
                req.deadline,
            )
            .await?
            .ok_or_else(|| {
                SourceError::not_found(format!(
                    "the instance has no metadata attribute {name} (gce_metadata_key)"
                ))
            })?;
            if key == GceKey::Dockercfg {
                return Ok(value);
            }
            let url = value.trim();
            crate::http::endpoint_allowed(url)
                .map_err(|e| SourceError::local_because(format!("metadata attribute {name}"), e))?;
            // Plain http is allowed to loopback only, and then never through a proxy.
            let client = crate::http::web_client(
                req.env,
                &resolver,
                url.starts_with("http://"),
                &crate::http::WebTimeouts {
                    connect: Duration::from_secs(3),
                    read: Duration::from_secs(5),
                    attempt: Duration::from_secs(6),
                },
            )?;
            let shown = crate::logging::redact_urls(url).into_owned();
            Ok(crate::http::fetch_text(client.get(url), &format!("the docker config at {shown} ({name})")).await?)
        },
        || format!("GCE metadata {name}"),
    )?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        SourceError::local(format!(
            "metadata attribute {name}: not a docker config (JSON error at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let map = value.get("auths").cloned().unwrap_or(value);
    let auths: BTreeMap<String, AuthEntry> = serde_json::from_value(map)
        .map_err(|_| SourceError::local(format!("metadata attribute {name}: not a docker config")))?;
    let host = normalise(req.mint_host);
    let found = Auths::of(&auths, &host);
    let Some((entry, path)) = found.for_repository(req.repository) else {
        return Err(SourceError::not_found(format!(
            "metadata attribute {name}: no entry for {host}"
        )));
    };
    let credential = entry_credential(entry)
        .map_err(|why| SourceError::local(format!("metadata attribute {name}: entry for {host}: {why}")))?
        .ok_or_else(|| SourceError::not_found(format!("metadata attribute {name}: the entry for {host} is empty")))?;
    Ok((
        credential,
        Scope {
            path: path.map(str::to_string),
            per_image: found.narrowed,
        },
    ))
}

/// The variables a well-known helper documents as its own, by name or by prefix (`AWS_`):
/// a cloud's helper gets that cloud's variables, and no other's.
const HELPERS_OWN_ENV: &[(&str, &[&str])] = &[
    ("ecr-login", &["AWS_"]),
    ("gcr", &["GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_"]),
    ("gcloud", &["GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_"]),
    ("acr-env", &["AZURE_"]),
    ("pass", &["PASSWORD_STORE_", "GNUPGHOME"]),
];

impl DockerConfigSource {
    fn run_helper(&self, name: &str, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        let own: &[&str] = HELPERS_OWN_ENV
            .iter()
            .find(|(helper, _)| *helper == name)
            .map_or(&[], |(_, vars)| vars);
        // Prefixes (ending in `_`) are matched against the variables the process has.
        let by_prefix: Vec<String> = own
            .iter()
            .filter(|v| v.ends_with('_'))
            .flat_map(|prefix| req.env.names_with_prefix(prefix))
            .collect();
        let names = HELPER_ENV
            .iter()
            .copied()
            .chain(own.iter().copied().filter(|v| !v.ends_with('_')))
            .chain(by_prefix.iter().map(String::as_str))
            .chain(self.helper_env.iter().map(String::as_str));
        let env: Vec<(&str, &str)> = names
            .filter_map(|n| req.env.var(n).map(|v| (n, v)))
            .collect();
        run_helper(name, req.mint_host, &env, self.helper_timeout, req.deadline)
    }
}

/// Runs `docker-credential-<name> get` with the server URL on stdin, as docker does, with
/// only `env` for its environment.
fn run_helper(
    name: &str,
    registry: &str,
    env: &[(&str, &str)],
    timeout: Duration,
    deadline: Instant,
) -> Result<Credential, SourceError> {
    let program = format!("docker-credential-{name}");
    // The name comes from a file; keep it a bare program name so it cannot point at a path.
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || name.starts_with('.')
    {
        return Err(SourceError::local(format!(
            "credential helper name {:?} is not a plain name",
            name
        )));
    }
    // pullcred's own helper would ask this rule again, and again.
    if name == "pullcred" {
        return Err(SourceError::local(format!(
            "credential helper {program} is pullcred itself: name the registry's own helper, \
             or a rule of another source, for {}",
            crate::logging::one_line(registry)
        )));
    }
    let fail =
        |reason: String| SourceError::transient(format!("credential helper {program}: {reason}"));
    let server = if normalise(registry) == DOCKER_HUB {
        DOCKER_HUB_SERVER
    } else {
        registry
    };
    // Stop waiting a little before the request's deadline, so that this request, not the
    // deadline's exit, ends the helper and says so.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(DEADLINE_MARGIN);
    let limit = timeout.min(left);
    let until = Instant::now() + limit;
    let timed_out = || {
        fail(if limit < timeout {
            format!(
                "no answer in the {} left before the request's deadline",
                humantime::format_duration(limit)
            )
        } else {
            format!("timed out after {}", humantime::format_duration(limit))
        })
    };
    // Its own process group, so that whatever it leaves behind can be killed with it. The
    // deadline's signal is held until the group is registered, so that no way out (the
    // deadline included) can leave it running. The child starts with no signal blocked: std
    // resets the mask it would inherit (tests/local_user/helpers.rs checks).
    crate::deadline::hold();
    let spawned = Command::new(&program)
        .arg("get")
        .env_clear()
        .envs(env.iter().copied())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let watched = spawned
        .as_ref()
        .ok()
        .map(|c| crate::deadline::ChildGroup::watch(c.id() as i32));
    crate::deadline::release();
    let mut child = spawned.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            SourceError::local(format!("credential helper {program}: not found on PATH"))
        }
        kind => fail(format!("cannot start: {kind}")),
    })?;
    let _watched = watched;
    let group = rustix::process::Pid::from_child(&child);
    // Read both pipes on threads so a chatty helper cannot fill a pipe and stall; hand the
    // output over by channel, so waiting for it is bounded too.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_HELPER_OUTPUT).read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    // A helper that exits without reading stdin makes this write fail; its exit status tells
    // the real story, so the write error is ignored. The pipe holds far more than a URL, so
    // this cannot block.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }

    let status = child
        .wait_timeout(limit)
        .map_err(|e| fail(format!("wait: {}", e.kind())));
    // The helper is done or out of time: anything left in its group is a straggler that
    // could hold the pipes open (and so this request) until it ends.
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    let status = match status? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(timed_out());
        }
    };
    let left = || until.saturating_duration_since(Instant::now());
    let stdout = out.recv_timeout(left()).map_err(|_| timed_out())?;
    let stderr = err.recv_timeout(left()).unwrap_or_default();
    if stdout.len() as u64 >= MAX_HELPER_OUTPUT {
        return Err(fail(format!(
            "answered more than {MAX_HELPER_OUTPUT} bytes"
        )));
    }
    if !status.success() {
        let why = first_line(&stdout)
            .or_else(|| first_line(&stderr))
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        return Err(fail(format!("get failed ({status}){why}")));
    }
    let reply: HelperReply = serde_json::from_slice(&stdout)
        .map_err(|_| fail("answered something that is not a credential reply".into()))?;
    if reply.secret.is_empty() {
        return Err(fail("answered an empty secret".into()));
    }
    Ok(Credential {
        username: reply.username,
        password: Secret::new(reply.secret),
        expires_at: None,
        refresh_at: None,
    })
}

/// The first line of a helper's output, for an error message, unless it looks like JSON (a
/// reply that may carry a secret) — then nothing.
fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    if line.starts_with('{') {
        return None;
    }
    Some(line.chars().take(160).collect())
}
