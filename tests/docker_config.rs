//! Source `docker-config`: `auths` entries, credential helpers (with failing and hanging
//! ones), the default file locations, and mirrors.

use std::fs;
use std::time::{Duration, Instant};

use crate::support::{Fixture, single_auth};

fn auth(fx: &Fixture, image: &str) -> (String, String, String) {
    single_auth(&fx.plugin(image).response())
}

fn log(fx: &Fixture, name: &str) -> Vec<String> {
    fs::read_to_string(fx.path(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn auths_entries_in_every_form() {
    let fx = Fixture::new("docker-config");
    // `auth` = base64(user:password), under a key with a scheme.
    assert_eq!(
        auth(&fx, "registry.example.com/app"),
        (
            "registry.example.com".into(),
            "mirror-user".into(),
            "s3cret-mirror-pw".into()
        )
    );
    assert_eq!(auth(&fx, "basic.example.com/app").2, "s3cret-basic-pw");
    // An identity token is answered as the password, with the entry's username.
    assert_eq!(
        auth(&fx, "identity.example.com/app"),
        (
            "identity.example.com".into(),
            "00000000-0000-0000-0000-000000000000".into(),
            "s3cret-identity-token".into()
        )
    );
    // Docker Hub's entry lives under https://index.docker.io/v1/.
    assert_eq!(
        auth(&fx, "nginx"),
        ("docker.io".into(), "hubber".into(), "s3cret-hub-pw".into())
    );
    fx.plugin("garbage.example.com/app")
        .assert_error("auths entry for garbage.example.com: \"auth\" is not base64");
    // No helper ran for any of these.
    assert!(log(&fx, "fixture.log").is_empty());
    assert!(log(&fx, "store.log").is_empty());
}

#[test]
fn a_mirror_is_minted_for_its_upstream_and_answered_for_itself() {
    let fx = Fixture::new("docker-config");
    assert_eq!(
        auth(&fx, "mirror.internal:5000/team/app"),
        (
            "mirror.internal:5000".into(),
            "mirror-user".into(),
            "s3cret-mirror-pw".into()
        )
    );
}

#[test]
fn cred_helpers_come_before_the_store() {
    let fx = Fixture::new("docker-config");
    assert_eq!(
        auth(&fx, "helper.example.com/app"),
        (
            "helper.example.com".into(),
            "helper-user".into(),
            "s3cret-helper-pw".into()
        )
    );
    assert_eq!(log(&fx, "fixture.log"), ["helper.example.com"]);
    assert!(log(&fx, "store.log").is_empty());

    // A placeholder `auths` entry (what docker leaves when a store holds the secret) and an
    // unknown host both go to the store.
    assert_eq!(auth(&fx, "store.example.com/app").1, "store-user");
    assert_eq!(auth(&fx, "other.example.com/app").1, "store-user");
    assert_eq!(
        log(&fx, "store.log"),
        ["store.example.com", "other.example.com"]
    );

    // A helper's `<token>` username marks an identity token: answered as the password.
    assert_eq!(
        auth(&fx, "token.example.com/app"),
        (
            "token.example.com".into(),
            "<token>".into(),
            "s3cret-identity-token".into()
        )
    );

    fx.plugin("absent.example.com/app").assert_error(
        "credential helper docker-credential-store: get failed (exit status: 1): credentials not found in native keychain",
    );
}

#[test]
fn helpers_get_docker_hubs_server_url() {
    let fx = Fixture::new("docker-config");
    let config = fx.path("docker/config.json");
    let text = fs::read_to_string(&config).unwrap();
    // Drop the file entry for Docker Hub so the store is asked.
    let text = text.replace("\"https://index.docker.io/v1/\"", "\"unused.example.org\"");
    fs::write(&config, text).unwrap();
    assert_eq!(auth(&fx, "bitnami/redis").1, "store-user");
    assert_eq!(log(&fx, "store.log"), ["https://index.docker.io/v1/"]);
}

#[test]
fn helper_failures_are_clear_errors() {
    let fx = Fixture::new("docker-config");
    fx.plugin("fail.example.com/app").assert_error(
        "rule 2 (docker-config) for fail.example.com: credential helper docker-credential-fail: get failed (exit status: 1): helper exploded: backend unavailable",
    );
    fx.plugin("missing.example.com/app")
        .assert_error("credential helper docker-credential-nonexistent: not found on PATH");
    fx.plugin("badname.example.com/app")
        .assert_error("credential helper name \"../../bin/sh\" is not a plain name");
    // A helper that prints a credential and fails: its output is not quoted (run() also
    // checks the secret is nowhere on stderr).
    fx.plugin("leaky.example.com/app")
        .assert_error("credential helper docker-credential-leaky: get failed (exit status: 1)");
}

#[test]
fn a_hanging_helper_is_killed_after_its_timeout() {
    let fx = Fixture::new("docker-config");
    let start = Instant::now();
    fx.plugin("hang.example.com/app")
        .assert_error("credential helper docker-credential-hang: timed out after 1s");
    // helper_timeout is 1s; the helper would sleep 30s.
    crate::support::assert_within(start.elapsed(), Duration::from_secs(1), "helper_timeout");
}

#[test]
fn a_helper_that_leaves_a_child_holding_stdout_is_answered_and_the_child_killed() {
    let fx = Fixture::new("docker-config");
    // Without a bound on the pipes this waits for the child (30 s), past the deadline.
    let (key, user, password) = auth(&fx, "straggler.example.com/app");
    assert_eq!(key, "straggler.example.com");
    assert_eq!(
        (user.as_str(), password.as_str()),
        ("straggler", "s3cret-straggler-pw")
    );
    let pid = fs::read_to_string(fx.path("straggler.pid")).unwrap();
    let status = format!("/proc/{}/status", pid.trim());
    let start = Instant::now();
    // Killed with the helper's process group: gone, or a zombie not yet reaped.
    while fs::read_to_string(&status).is_ok_and(|s| !s.contains("State:\tZ")) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the helper's child {} still runs",
            pid.trim()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_insecure_docker_config_is_refused() {
    let fx = Fixture::new("docker-config");
    fx.chmod("docker/config.json", 0o646);
    fx.plugin("basic.example.com/app").assert_error(
        "config.json: refusing a secret file writable by group or others (mode 0646)",
    );
    let fx = Fixture::new("docker-config");
    fs::write(
        fx.path("docker/config.json"),
        "{\"auths\": {\"basic.example.com\": ",
    )
    .unwrap();
    fx.plugin("basic.example.com/app")
        .assert_error("config.json: invalid docker config at line 1 column");
}

#[test]
fn default_locations_docker_config_env_then_home() {
    let fx = Fixture::new("docker-config-default");
    let out = crate::support::run(
        fx.cmd()
            .env("DOCKER_CONFIG", fx.path("dockerdir"))
            .env("HOME", fx.path("home")),
        &crate::support::request(crate::support::V1, "registry.example.com/app"),
    );
    assert_eq!(single_auth(&out.response()).1, "from-docker-config-env");
    let out = crate::support::run(
        fx.cmd().env("HOME", fx.path("home")),
        &crate::support::request(crate::support::V1, "registry.example.com/app"),
    );
    assert_eq!(single_auth(&out.response()).1, "from-home");
    // Neither exists: an error naming the file looked for, not an empty answer.
    fx.plugin("registry.example.com/app").assert_error(&format!(
        "{}: No such file or directory",
        fx.path(".docker/config.json").display()
    ));
}
