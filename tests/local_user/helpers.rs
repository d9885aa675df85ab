//! Credential helpers run as root with what pullcred gives them: never pullcred's whole
//! environment, which can hold the node's cloud secrets, only a documented allowlist and
//! what the rule names in `helper_env`.

use std::fs;

use crate::support::{Fixture, V1, request, run, single_auth};

#[test]
fn a_helper_sees_the_allowlist_and_the_rules_helper_env_only() {
    let fx = Fixture::new("docker-config");
    fx.prepend_config(&format!(
        "[[registry]]\nmatch = [\"spy.example.com\"]\nsource = \"docker-config\"\n\
         path = \"{}\"\nhelper_env = [\"PULLCRED_SPY_PASSED\"]\n",
        fx.path("docker/config.json").display()
    ));
    let mut cmd = fx.cmd();
    cmd.env("AWS_SECRET_ACCESS_KEY", "s3cret-node-secret-key")
        .env("AZURE_CLIENT_SECRET", "s3cret-azure-client-secret")
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/root/key.json")
        .env("PULLCRED_SPY_PASSED", "yes")
        .env("HTTPS_PROXY", "http://127.0.0.1:3128");
    let resp = run(&mut cmd, &request(V1, "spy.example.com/app")).response();
    assert_eq!(single_auth(&resp).1, "spy");
    let seen = fs::read_to_string(fx.path("spy.env")).unwrap();
    let names: Vec<&str> = seen
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(n, _)| n)
        .collect();
    for wanted in ["PATH", "HOME", "HTTPS_PROXY", "PULLCRED_SPY_PASSED"] {
        assert!(names.contains(&wanted), "{wanted} missing: {names:?}");
    }
    for secret in [
        "AWS_SECRET_ACCESS_KEY",
        "AZURE_CLIENT_SECRET",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ] {
        assert!(
            !names.contains(&secret),
            "{secret} reached the helper: {names:?}"
        );
    }
    assert!(!seen.contains("s3cret-"), "{seen}");
    // Nor does it live with the deadline's SIGALRM blocked (a child inherits the mask).
    let blocked = fs::read_to_string(fx.path("spy.sigblk")).unwrap();
    let mask =
        u64::from_str_radix(blocked.trim().trim_start_matches("SigBlk:").trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGALRM - 1)),
        0,
        "SIGALRM blocked: {blocked}"
    );
    // Every name the helper saw is on the allowlist or the rule's (sh adds PWD, SHLVL, _).
    for name in names {
        assert!(
            [
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
                "PULLCRED_SPY_PASSED",
                "PWD",
                "SHLVL",
                "_",
            ]
            .contains(&name),
            "{name} reached the helper"
        );
    }
}

#[test]
fn helper_env_names_must_be_variable_names() {
    let fx = Fixture::new("docker-config");
    fx.prepend_config(
        "[[registry]]\nmatch = [\"spy.example.com\"]\nsource = \"docker-config\"\n\
         helper_env = [\"A=B\"]\n",
    );
    run(fx.cmd().args(["config", "check"]), b"")
        .assert_error("helper_env: \"A=B\" is not a variable name");
}

/// A cloud's own helper gets that cloud's documented variables (amazon-ecr-credential-helper
/// reads `AWS_*`), and still no other cloud's.
#[test]
fn a_clouds_helper_gets_its_own_clouds_variables_only() {
    let fx = Fixture::new("docker-config");
    let mut cmd = fx.cmd();
    cmd.env("AWS_REGION", "eu-west-1")
        .env("AWS_PROFILE", "pull")
        .env("AZURE_CLIENT_SECRET", "s3cret-azure-client-secret")
        .env("GOOGLE_APPLICATION_CREDENTIALS", "/root/key.json");
    let resp = run(&mut cmd, &request(V1, "ecr.example.com/app")).response();
    assert_eq!(single_auth(&resp).1, "AWS");
    let seen = fs::read_to_string(fx.path("ecr-login.env")).unwrap();
    assert!(
        seen.contains("AWS_REGION=eu-west-1") && seen.contains("AWS_PROFILE=pull"),
        "{seen}"
    );
    assert!(
        !seen.contains("AZURE_") && !seen.contains("GOOGLE_"),
        "{seen}"
    );
}
