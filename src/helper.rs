//! pullcred as a docker credential helper (`docker-credential-pullcred`), so that node tools
//! (skopeo, podman, nerdctl, docker, pre-pull scripts) use the credentials the kubelet gets:
//! `get` answers a server's credentials from the same rules and cache, with the node's
//! identity; `list` names the servers with a fresh cache entry; `store` and `erase` are
//! refused, since pullcred's rules are where credentials come from.
//!
//! A helper is asked for a server, not an image: only rules that answer for a whole host
//! (a pattern without a path) and may use the node's identity take part.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Instant, SystemTime};

use crate::app;
use crate::args::HelperOp;
use crate::cache::Cache;
use crate::config::Config;
use crate::env::Env;
use crate::error::Error;
use crate::image::ImageRef;
use crate::protocol::{ApiVersion, Request};
use crate::workload::IdentityMode;

/// What docker and containers-auth take for "no credentials here" (then they go on
/// anonymously): this text on stdout, and a non-zero exit.
const NOT_FOUND: &str = "credentials not found in native keychain";
/// A server URL is short; more on stdin is not one.
const MAX_SERVER_BYTES: u64 = 4096;
/// The repository a host's credentials are asked for: rules with paths are left out, so
/// it selects nothing by itself.
const ANY_REPOSITORY: &str = "pullcred-credential-helper";

/// Runs `op` with `config`'s rules for whole hosts and the node's identity.
pub fn run(op: HelperOp, mut config: Config, env: Env, cache: Option<Cache>) -> Result<(), Error> {
    whole_hosts(&mut config);
    let result = dispatch(op, &config, &env, cache.as_ref());
    // Clients show a helper's stdout when it fails, not its stderr: the error goes there too
    // (but for "not found", whose stdout is the protocol's own text).
    if let Err(e) = &result
        && !matches!(e, Error::HelperNotFound(_))
    {
        let _ = print(&format!(
            "{}\n",
            crate::logging::one_line(&crate::logging::error_chain(e))
        ));
    }
    result
}

fn dispatch(op: HelperOp, config: &Config, env: &Env, cache: Option<&Cache>) -> Result<(), Error> {
    match op {
        HelperOp::Get => get(config, env, cache),
        HelperOp::List => list(config, cache, env.now()),
        HelperOp::Store | HelperOp::Erase => {
            // The client writes the credentials to stdin; they are read and dropped.
            let _ = std::io::copy(
                &mut std::io::stdin().lock().take(MAX_SERVER_BYTES),
                &mut std::io::sink(),
            );
            Err(Error::Helper(format!(
                "{}: not supported: pullcred answers from its rules (/etc/pullcred/config.toml)",
                op.name()
            )))
        }
        HelperOp::Version => print(&format!("pullcred {}\n", env!("CARGO_PKG_VERSION"))),
    }
}

/// Keeps the rules a host's credentials may come from: the node's identity allowed, and
/// only their patterns without a path.
fn whole_hosts(config: &mut Config) {
    config.rules.retain_mut(|rule| {
        rule.patterns.retain(|p| p.path().is_none());
        rule.identity != IdentityMode::ServiceAccount && !rule.patterns.is_empty()
    });
}

fn get(config: &Config, env: &Env, cache: Option<&Cache>) -> Result<(), Error> {
    // From the start: a client that never closes stdin is cut at the deadline.
    let (armed, left) = crate::deadline::arm_within(config.deadline);
    let deadline = Instant::now() + left;
    let mut input = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_SERVER_BYTES)
        .read_to_string(&mut input)
        .map_err(|e| Error::Helper(format!("get: reading the server: {}", e.kind())))?;
    let server = input.trim();
    let host = host_of(server);
    let image = format!("{host}/{ANY_REPOSITORY}");
    // A name with no dot, no port and not `localhost` would read as a Docker Hub repository
    // (`registry/...`), answering Docker Hub's credentials to whatever that name reaches.
    let a_host = host.contains(['.', ':']) || host == "localhost";
    if !a_host || ImageRef::parse(&image).is_err() {
        return not_found(server);
    }
    let req = Request {
        api_version: ApiVersion::V1,
        image,
        service_account_token: None,
        service_account_annotations: Default::default(),
    };
    let response = app::answer(&req, config, env, cache, deadline)?;
    drop(armed);
    let Some(auth) = response.auth.values().next() else {
        return not_found(server);
    };
    let answer = serde_json::json!({
        "ServerURL": server,
        "Username": auth.username,
        "Secret": auth.password.expose(),
    });
    print(&format!("{answer}\n"))
}

/// `{"<server>": "<username>"}` for each fresh cache entry a whole-host rule serves.
fn list(config: &Config, cache: Option<&Cache>, now: SystemTime) -> Result<(), Error> {
    let mut servers = BTreeMap::new();
    if let Some(cache) = cache {
        let entries = cache.entries().map_err(|e| Error::CacheIo(e.to_string()))?;
        for entry in entries.into_iter().filter_map(|(_, e)| e.ok()) {
            let served = ImageRef::parse(&format!("{}/{ANY_REPOSITORY}", entry.mint_host))
                .is_ok_and(|image| config.select(&image).is_some());
            if served && entry.expires_at > now {
                servers.insert(entry.mint_host, entry.username);
            }
        }
    }
    print(&format!("{}\n", serde_json::json!(servers)))
}

/// The host (and port) of a server as clients name it: `https://host:port/v1/`, `host`.
fn host_of(server: &str) -> String {
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    rest.split('/').next().unwrap_or("").to_ascii_lowercase()
}

fn not_found(server: &str) -> Result<(), Error> {
    print(&format!("{NOT_FOUND}\n"))?;
    Err(Error::HelperNotFound(format!(
        "get: no rule answers for {:?} with the node's identity",
        crate::logging::one_line(server)
    )))
}

fn print(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Output(e.kind()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_as_clients_name_servers() {
        for (server, host) in [
            ("registry.example.com", "registry.example.com"),
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("Registry.Example.com:443/path", "registry.example.com:443"),
            ("", ""),
        ] {
            assert_eq!(super::host_of(server), host, "{server}");
        }
    }
}
