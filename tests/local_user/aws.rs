//! The AWS shared files (`~/.aws/config`, `~/.aws/credentials`, `AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, `AWS_WEB_IDENTITY_TOKEN_FILE`): the config can name a
//! `credential_process`, which the SDK runs as root, and endpoints that get signed requests.
//! One the other user owns, or that group or others may write, is refused before the SDK
//! sees it: nothing runs and nothing is sent.

use std::fs;
use std::time::Duration;

use super::{give_to_other, plant_file};
use crate::support::aws;
use crate::support::{Fixture, V1, request, run};

/// The `ecr` fixture's `ci` profile, whose `credential_process` logs each call to
/// `aws-creds.log`; its endpoint is `endpoint`.
fn fixture(endpoint: &str) -> Fixture {
    Fixture::with_vars("ecr", &[("@ROLE@", "x"), ("@ENDPOINT@", endpoint)])
}

fn mint(fx: &Fixture, vars: &[(&str, String)]) -> crate::support::Run {
    let mut cmd = fx.cmd();
    cmd.env("AWS_EC2_METADATA_DISABLED", "true").env(
        "PULLCRED_TEST_CLOCK_OFFSET",
        aws::clock_before_moto_expiry(Duration::from_secs(3600)),
    );
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(
        &mut cmd,
        &request(V1, "123456789012.dkr.ecr.ca-central-1.amazonaws.com/app:1"),
    )
}

#[test]
fn a_shared_config_another_user_could_write_runs_nothing() {
    let tap = aws::moto_tap();
    for (owner_other, mode) in [(true, 0o600), (true, 0o664), (false, 0o664), (false, 0o602)] {
        let fx = fixture(&tap.url());
        let config = fx.path(".aws/config");
        crate::support::chmod(&config, mode);
        if owner_other {
            give_to_other(&config);
        }
        let out = mint(&fx, &[]);
        out.assert_error(&format!("{}: refusing", config.display()));
        assert!(
            !fx.path("aws-creds.log").exists(),
            "credential_process ran (owner other: {owner_other}, mode {mode:o})"
        );
    }
    assert!(tap.requests().is_empty(), "nothing may be sent");
}

#[test]
fn shared_files_named_by_variables_are_checked_too() {
    let tap = aws::moto_tap();
    let fx = fixture(&tap.url());
    // The checked default file is fine; each variable names a planted one instead.
    let planted = fx.path("planted");
    plant_file(
        &planted,
        &format!(
            "[profile ci]\ncredential_process = {}\n",
            fx.path("bin/aws-creds").display()
        ),
        0o644,
    );
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        let mut vars = vec![(var, planted.display().to_string())];
        if var == "AWS_WEB_IDENTITY_TOKEN_FILE" {
            vars.push(("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/x".into()));
        }
        let out = mint(&fx, &vars);
        out.assert_error(&format!("{}: refusing", planted.display()));
        assert!(!fx.path("aws-creds.log").exists(), "{var}: a command ran");
    }
    assert!(tap.requests().is_empty(), "nothing may be sent");
}

#[test]
fn checked_shared_files_still_work() {
    // The control: the same fixture, root's files, mints through credential_process.
    let tap = aws::moto_tap();
    let fx = fixture(&tap.url());
    let resp = mint(&fx, &[]).response();
    assert_eq!(resp["auth"].as_object().unwrap().len(), 1);
    assert_eq!(
        fs::read_to_string(fx.path("aws-creds.log")).unwrap(),
        "called\n"
    );
}
