//! The config names which files pullcred reads as root, where it sends them and which
//! commands it runs: one the other user owns or may write is refused however it is named
//! (`--config`, `PULLCRED_CONFIG`, a symlink), and so is one on a path the other user
//! controls. A broken default config is an error, never a quiet turn to the built-in rules.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::{give_to_other, plant_symlink};
use crate::support::http::{FakeHttp, Reply};
use crate::support::{Fixture, V1, pullcred, request, run};

/// One way of naming the config to a command.
type Naming<'a> = Box<dyn Fn(&mut Command) + 'a>;

/// A config the other user wrote: it sends a root-only client secret to their listener.
fn planted_config(fx: &Fixture, listener: &FakeHttp) -> std::path::PathBuf {
    crate::support::secret_file(&fx.path("client.secret"), "s3cret-azure-client-secret");
    let path = fx.path("theirs.toml");
    fs::write(
        &path,
        format!(
            "[[registry]]\nmatch = [\"r.azurecr.io\"]\nsource = \"acr\"\ntenant_id = \"t\"\n\
             client_id = \"c\"\nclient_secret_file = \"{}\"\nauthority_host = \"{}\"\n",
            fx.path("client.secret").display(),
            listener.url()
        ),
    )
    .unwrap();
    path
}

fn listener() -> FakeHttp {
    FakeHttp::start(|_| Reply::Respond {
        status: 500,
        headers: vec![],
        body: String::new(),
    })
}

#[test]
fn a_config_another_user_could_write_is_refused_however_it_is_named() {
    let theirs = listener();
    for (owner_other, mode) in [(true, 0o644), (true, 0o600), (false, 0o664), (false, 0o646)] {
        let fx = Fixture::new("static");
        let config = planted_config(&fx, &theirs);
        crate::support::chmod(&config, mode);
        if owner_other {
            give_to_other(&config);
        }
        let link = fx.path("link.toml");
        std::os::unix::fs::symlink(&config, &link).unwrap();
        let named: [(&str, Naming<'_>); 3] = [
            (
                "--config",
                Box::new(|c: &mut Command| {
                    c.arg("--config").arg(&config);
                }),
            ),
            (
                "PULLCRED_CONFIG",
                Box::new(|c: &mut Command| {
                    c.env("PULLCRED_CONFIG", &config);
                }),
            ),
            (
                "a symlink",
                Box::new(|c: &mut Command| {
                    c.arg("--config").arg(&link);
                }),
            ),
        ];
        for (how, name) in &named {
            let mut cmd = pullcred(fx.dir.path());
            name(&mut cmd);
            let out = run(&mut cmd, &request(V1, "r.azurecr.io/app"));
            out.assert_error("refusing a config file");
            assert!(
                out.stderr.contains(&config.display().to_string())
                    || out.stderr.contains(&link.display().to_string()),
                "{how}: names the file: {}",
                out.stderr
            );
            let mut cmd = pullcred(fx.dir.path());
            name(&mut cmd);
            let check = run(cmd.args(["config", "check"]), b"");
            check.assert_error("refusing a config file");
        }
    }
    // `doctor` says so too, as a failure.
    let fx = Fixture::new("static");
    let config = planted_config(&fx, &theirs);
    give_to_other(&config);
    let doctor = run(
        pullcred(fx.dir.path())
            .arg("--config")
            .arg(&config)
            .args(["doctor", "--no-cache"]),
        b"",
    );
    assert_eq!(doctor.code, Some(1), "{doctor:#?}");
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("FAIL pullcred config") && l.contains("refusing a config file")),
        "{}",
        doctor.stdout
    );
    assert!(theirs.requests().is_empty(), "the secret was sent");
}

#[test]
fn a_config_in_a_directory_the_other_user_controls_is_refused() {
    let theirs = listener();
    let fx = Fixture::new("static");
    let config = planted_config(&fx, &theirs);
    let dir = fx.path("theirs");
    fs::create_dir(&dir).unwrap();
    fs::rename(&config, dir.join("config.toml")).unwrap();
    give_to_other(&dir);
    let out = run(
        pullcred(fx.dir.path())
            .arg("--config")
            .arg(dir.join("config.toml")),
        &request(V1, "r.azurecr.io/app"),
    );
    out.assert_error(&format!(
        "in the directory {}, owned by uid 1000",
        dir.display()
    ));
    // A link the other user owns, even to root's own file in root's directory.
    let link = fx.path("their-link.toml");
    plant_symlink(&fx.path("config.toml"), &link);
    let out = run(
        pullcred(fx.dir.path()).arg("--config").arg(&link),
        &request(V1, "registry.example.com/app"),
    );
    out.assert_error("through the link");
    assert!(theirs.requests().is_empty());
}

/// `/etc/pullcred/config.toml` of a private mount namespace: `/etc` replaced by a test
/// directory holding `entry` at `pullcred/config.toml`.
fn with_default_config(fx: &Fixture, entry: impl Fn(&std::path::Path)) -> crate::support::Run {
    crate::support::require_tool("unshare");
    let etc = fx.path("etc");
    fs::create_dir_all(etc.join("pullcred")).unwrap();
    entry(&etc.join("pullcred/config.toml"));
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind '{}' /etc && exec '{}'",
            etc.display(),
            env!("CARGO_BIN_EXE_pullcred")
        ))
        .env("HOME", fx.dir.path())
        .env("PULLCRED_CACHE_DIR", fx.path("cache"))
        .env_remove("PULLCRED_CONFIG");
    run(&mut cmd, &request(V1, "registry.example.com/app"))
}

#[test]
fn a_broken_default_config_is_an_error_not_the_builtin_rules() {
    // Nothing there: the built-in rules (which serve no registry.example.com).
    let fx = Fixture::new("static");
    let out = with_default_config(&fx, |_| {});
    assert_eq!(out.response()["auth"], serde_json::json!({}));
    // A dangling link, a directory: errors naming the file.
    let fx = Fixture::new("static");
    with_default_config(&fx, |p| {
        std::os::unix::fs::symlink("/nonexistent/config.toml", p).unwrap()
    })
    .assert_error("/etc/pullcred/config.toml");
    let fx = Fixture::new("static");
    with_default_config(&fx, |p| fs::create_dir(p).unwrap())
        .assert_error("/etc/pullcred/config.toml: not a regular file");
    // The fixture's own config there works as any.
    let fx = Fixture::new("static");
    let text = fs::read_to_string(fx.path("config.toml")).unwrap();
    let out = with_default_config(&fx, |p| {
        fs::write(p, &text).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o600)).unwrap();
    });
    assert_eq!(
        crate::support::single_auth(&out.response()).2,
        "s3cret-static-pw"
    );
}

/// A pod author names the image's host. `registry =` on a rule whose patterns reach past
/// the leftmost label (`*.*`) would answer that registry's credentials to `evil.com/x`:
/// refused unless the operator opts in, and pointed out by `config check` either way.
#[test]
fn registry_on_a_wildcard_rule_needs_an_explicit_opt_in() {
    let fx = Fixture::new("static");
    let rule = |extra: &str| {
        format!(
            "[[registry]]\nmatch = [\"*.*\", \"*.*.*\"]\nsource = \"static\"\nusername = \"u\"\n\
             password_file = \"{}\"\nregistry = \"registry.example.com\"\n{extra}",
            fx.path("password").display()
        )
    };
    let config = fx.path("wide.toml");
    fs::write(&config, rule("")).unwrap();
    for image in ["evil.com/x", "attacker.evil.com/x"] {
        run(
            pullcred(fx.dir.path()).arg("--config").arg(&config),
            &request(V1, image),
        )
        .assert_error("registry_for_any_host");
    }
    config_check(&fx, &config).assert_error("whose wildcards reach past the leftmost label");
    // Opted in: valid, and still pointed out.
    fs::write(&config, rule("registry_for_any_host = true\n")).unwrap();
    let check = config_check(&fx, &config);
    assert_eq!(check.code, Some(0), "{check:#?}");
    assert!(
        check.stdout.contains(
            "warning: rule 1 answers registry.example.com's credentials for any host *.* matches"
        ),
        "{}",
        check.stdout
    );
    // A leftmost wildcard over a public suffix (`*.com`) is as wide.
    fs::write(
        &config,
        rule("").replace("[\"*.*\", \"*.*.*\"]", "[\"*.com\"]"),
    )
    .unwrap();
    config_check(&fx, &config).assert_error("registry_for_any_host");
    // A fixed credential under a wide pattern, with no `registry`: valid, pointed out.
    fs::write(
        &config,
        rule("")
            .replace("[\"*.*\", \"*.*.*\"]", "[\"*.com\"]")
            .replace("registry = \"registry.example.com\"\n", ""),
    )
    .unwrap();
    let check = config_check(&fx, &config);
    assert_eq!(check.code, Some(0), "{check:#?}");
    assert!(
        check
            .stdout
            .contains("warning: rule 1 answers the same credential for any host *.com matches"),
        "{}",
        check.stdout
    );
    // A leftmost wildcard names hosts in the operator's own domain: no opt-in needed.
    fs::write(
        &config,
        rule("").replace("[\"*.*\", \"*.*.*\"]", "[\"*.example.com\"]"),
    )
    .unwrap();
    let check = config_check(&fx, &config);
    assert_eq!(check.code, Some(0), "{check:#?}");
    assert!(!check.stdout.contains("warning"), "{}", check.stdout);
}

/// `config check` of the config at `config`.
fn config_check(fx: &Fixture, config: &std::path::Path) -> crate::support::Run {
    run(
        pullcred(fx.dir.path())
            .arg("--config")
            .arg(config)
            .args(["config", "check"]),
        b"",
    )
}

/// Two configs in different directories, each naming `password_file = "pw"`, sharing one
/// cache dir and named relatively from their own directories: each answers its own secret
/// (the path entered the cache key as written, so the second answered the first's).
#[test]
fn relative_paths_in_two_configs_never_share_a_cache_entry() {
    let fx = Fixture::new("static");
    let cache = fx.path("shared-cache");
    for (dir, pw) in [("a", "s3cret-static-pw"), ("b", "s3cret-team-a-pw")] {
        let d = fx.path(dir);
        fs::create_dir(&d).unwrap();
        crate::support::secret_file(&d.join("pw"), pw);
        crate::support::secret_file(
            &d.join("config.toml"),
            "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"static\"\n\
             username = \"u\"\npassword_file = \"pw\"\n",
        );
    }
    for (dir, pw) in [("a", "s3cret-static-pw"), ("b", "s3cret-team-a-pw")] {
        let mut cmd = pullcred(fx.dir.path());
        cmd.current_dir(fx.path(dir))
            .args(["--config", "config.toml"])
            .env("PULLCRED_CACHE_DIR", &cache);
        let resp = run(&mut cmd, &request(V1, "registry.example.com/app")).response();
        assert_eq!(crate::support::single_auth(&resp).2, pw, "config in {dir}");
    }
}
