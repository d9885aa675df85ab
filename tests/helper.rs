//! `docker-credential-pullcred`: the front under a docker credential helper's name, as
//! skopeo execs it for an auth file's `credHelpers`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::Registry;
use crate::support::{Fixture, Run, run};

/// A bin dir with `docker-credential-pullcred` linked to the front.
fn helper_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-pullcred");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pullcred"), &helper).unwrap();
    (dir, helper)
}

fn helper(fx: &Fixture, helper: &Path, op: &str, stdin: &str) -> Run {
    let cmd = fx.cmd();
    let mut h = Command::new(helper);
    h.envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PULLCRED_CONFIG", fx.path("config.toml"))
        .arg(op);
    run(&mut h, stdin.as_bytes())
}

#[test]
fn skopeo_pulls_through_the_helper_and_unknown_servers_are_not_found() {
    let registry = Registry::start("puller", "s3cret-registry-pw", "team/app", "v1");
    let fx = Fixture::with_vars("registry", &[("@HOST@", &registry.host)]);
    let (bin, path) = helper_dir();

    // The protocol: a server on stdin, its credentials as JSON.
    for server in [
        registry.host.clone(),
        format!("https://{}/v2/", registry.host),
    ] {
        let out = helper(&fx, &path, "get", &format!("{server}\n"));
        assert_eq!(out.code, Some(0), "{out:?}");
        let answer: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(answer["ServerURL"], server.as_str());
        assert_eq!(answer["Username"], "puller");
        assert_eq!(answer["Secret"], "s3cret-registry-pw");
    }

    // A server no rule serves: the text clients take for "none", and a non-zero exit. A
    // bare name (no dot, no port) is a server too, never a Docker Hub repository.
    for server in ["elsewhere.example.com", "registry", "https://myhost/v1/"] {
        let out = helper(&fx, &path, "get", &format!("{server}\n"));
        assert_eq!(out.code, Some(1), "{out:?}");
        assert_eq!(out.stdout, "credentials not found in native keychain\n");
    }

    // list: the servers with a fresh entry, by username; store and erase are refused.
    let out = helper(&fx, &path, "list", "");
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!({ registry.host.clone(): "puller" })
    );
    for op in ["store", "erase"] {
        let out = helper(
            &fx,
            &path,
            op,
            "{\"ServerURL\":\"x\",\"Username\":\"u\",\"Secret\":\"s\"}",
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        // Clients show a failed helper's stdout.
        assert!(
            out.stdout
                .contains(&format!("credential helper: {op}: not supported")),
            "{out:?}"
        );
    }
    let out = helper(&fx, &path, "frobnicate", "");
    assert_eq!(out.code, Some(2), "{out:?}");

    // skopeo, told by an auth file to ask the helper for this registry, gets in.
    let auth = fx.path("auth.json");
    std::fs::write(
        &auth,
        serde_json::json!({ "credHelpers": { registry.host.clone(): "pullcred" } }).to_string(),
    )
    .unwrap();
    let cmd = fx.cmd();
    let path_var = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("skopeo")
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("PULLCRED_CONFIG", fx.path("config.toml"))
        .env("PATH", path_var)
        .args([
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            "--authfile",
        ])
        .arg(&auth)
        .arg(format!("docker://{}/team/app:v1", registry.host))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo through the helper: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A docker config that names pullcred as its own credential helper would have pullcred ask
/// itself, again and again: it is refused at once.
#[test]
fn pullcred_is_never_its_own_docker_config_helper() {
    let home = tempfile::tempdir().unwrap();
    let docker = home.path().join("docker.json");
    std::fs::write(
        &docker,
        r#"{"credHelpers":{"loop.example.com":"pullcred"}}"#,
    )
    .unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[registry]]\nmatch = [\"loop.example.com\"]\nsource = \"docker-config\"\npath = \"{}\"\n",
            docker.display()
        ),
    )
    .unwrap();
    for f in [&docker, &config] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let out = run(
        crate::support::pullcred(home.path())
            .arg("--config")
            .arg(&config)
            .args(["get", "loop.example.com/app"]),
        b"",
    );
    out.assert_error("credential helper docker-credential-pullcred is pullcred itself");
}
