//! The operators' commands: get, config check, version; config file selection.

use std::path::Path;
use std::process::Command;

use crate::support::{FOREIGN_GID, Fixture, V1, pullcred, request, run};

#[test]
fn get_prints_what_the_kubelet_would_get() {
    let fx = Fixture::new("static");
    let plugin = fx.plugin("registry.example.com/app:1");
    let get = run(fx.cmd().args(["get", "registry.example.com/app:1"]), b"");
    assert_eq!(get.response(), plugin.response());
    let beta = run(
        fx.cmd().args([
            "get",
            "--api-version",
            "v1beta1",
            "registry.example.com/app",
        ]),
        b"",
    );
    assert_eq!(
        beta.response()["apiVersion"],
        "credentialprovider.kubelet.k8s.io/v1beta1"
    );
    run(fx.cmd().args(["get", "not a reference"]), b"")
        .assert_error("request: image \"not a reference\": invalid repository name");
}

#[test]
fn config_check_lists_rules_in_order() {
    let fx = Fixture::new("matching");
    let out = run(fx.cmd().args(["config", "check"]), b"");
    assert_eq!(out.code, Some(0), "{out:#?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].ends_with("config.toml: valid"), "{lines:?}");
    assert_eq!(lines[1], "deadline: 20s");
    assert!(
        lines[2].starts_with("rule 1: match registry.example.com/team-a -> static username=team-a"),
        "{lines:?}"
    );
    assert!(
        lines[8].starts_with(
            "rule 7: match mirror.internal:5000 (mint for registry.example.com) -> static"
        ),
        "{lines:?}"
    );

    // An explicit FILE argument, and a broken config: one line naming file, line and key.
    let bad = fx.path("bad.toml");
    std::fs::write(&bad, "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\ncolour = \"blue\"\n").unwrap();
    let out = run(
        pullcred(fx.dir.path()).args(["config", "check"]).arg(&bad),
        b"",
    );
    out.assert_error(&format!(
        "config: {}: line 6: unknown field `colour`",
        bad.display()
    ));
}

#[test]
fn config_comes_from_flag_then_env_and_an_explicit_missing_file_is_an_error() {
    let fx = Fixture::new("static");
    let out = run(
        pullcred(fx.dir.path()).env("PULLCRED_CONFIG", fx.path("config.toml")),
        &request(V1, "registry.example.com/app"),
    );
    assert_eq!(
        out.response()["auth"]["registry.example.com"]["username"],
        "puller"
    );
    let out = run(
        pullcred(fx.dir.path())
            .arg("--config")
            .arg(fx.path("nope.toml")),
        &request(V1, "registry.example.com/app"),
    );
    out.assert_error(&format!(
        "config: {}: No such file or directory",
        fx.path("nope.toml").display()
    ));
    // A broken config fails the request rather than answering with nothing.
    std::fs::write(
        fx.path("config.toml"),
        "[[registry]]\nmatch = \"not-a-list\"\n",
    )
    .unwrap();
    fx.plugin("registry.example.com/app")
        .assert_error("config: ");
}

#[test]
fn without_a_config_file_the_builtin_rules_apply() {
    // Assumes no /etc/pullcred/config.toml on the test machine (CI has none).
    let home = tempfile::tempdir().unwrap();
    let out = run(pullcred(home.path()).args(["config", "check"]), b"");
    assert_eq!(out.code, Some(0), "{out:#?}");
    assert!(
        out.stdout
            .starts_with("no config at /etc/pullcred/config.toml: built-in rules"),
        "{}",
        out.stdout
    );
    let resp = run(
        &mut pullcred(home.path()),
        &request(V1, "registry.example.com/app"),
    )
    .response();
    assert_eq!(resp["auth"], serde_json::json!({}));
}

/// The front binary hands everything but a cache hit to `pullcred-mint` beside it; without
/// it, or with one of another release, the error says so.
#[test]
fn the_front_needs_its_minting_binary_beside_it() {
    let home = tempfile::tempdir().unwrap();
    let lonely = home.path().join("pullcred");
    std::fs::copy(env!("CARGO_BIN_EXE_pullcred"), &lonely).unwrap();
    let cmd = pullcred(home.path());
    let out = run(
        std::process::Command::new(&lonely)
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .arg("version"),
        b"",
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&format!(
            "pullcred: cannot run {}/pullcred-mint: No such file or directory",
            home.path().display()
        )) && out.stderr.contains("installed together"),
        "{out:?}"
    );
    let mint = std::path::Path::new(env!("CARGO_BIN_EXE_pullcred")).with_file_name("pullcred-mint");
    let out = run(
        std::process::Command::new(&mint)
            .env("PULLCRED_FRONT_VERSION", "0.0.0-other")
            .arg("version"),
        b"",
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(
        out.stderr,
        format!(
            "pullcred: pullcred 0.0.0-other handed over to pullcred-mint {}: install both from one release\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn version_and_usage() {
    let home = tempfile::tempdir().unwrap();
    // The version, the commit built (git's, as a release is made from a checkout) and the
    // target triple, from both binaries.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(head.trim().len() >= 7, "{head:?}");
    let want = format!(
        "pullcred {0} (pullcred and pullcred-mint {0})\ncommit {1}\ntarget x86_64-unknown-linux-gnu\n",
        env!("CARGO_PKG_VERSION"),
        head.trim()
    );
    let out = run(pullcred(home.path()).arg("version"), b"");
    assert_eq!(out.stdout, want);
    let mint = std::path::Path::new(env!("CARGO_BIN_EXE_pullcred")).with_file_name("pullcred-mint");
    let out = run(std::process::Command::new(mint).arg("version"), b"");
    assert_eq!(out.stdout, want);
    let out = run(pullcred(home.path()).arg("frobnicate"), b"");
    assert_eq!(out.code, Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn every_config_example_is_valid_and_the_quick_start_answers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    // One directory per scenario: pullcred's config.toml (none: the built-in rules) and the
    // kubelet's credential-provider-config.yaml, which must check clean against each other:
    // no error and no warning. And what `kubelet-config` prints for each config checks clean.
    let mut checked = 0;
    let index = std::fs::read_to_string(root.join("config-examples/README.md")).unwrap();
    for entry in std::fs::read_dir(root.join("config-examples")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.ends_with("README.md") {
            continue;
        }
        // The index lists every example.
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            index.contains(&format!("[{name}]({name}/)")),
            "config-examples/README.md does not list {name}"
        );
        assert!(
            dir.is_dir(),
            "{}: one directory per scenario",
            dir.display()
        );
        let config = dir.join("config.toml");
        let kubelet = dir.join("credential-provider-config.yaml");
        let check = |kubelet: &std::path::Path| {
            let mut cmd = pullcred(home.path());
            // The examples' secret files are the nodes', not this machine's.
            cmd.args(["config", "check", "--no-files"]);
            if config.exists() {
                cmd.arg(&config);
            }
            run(cmd.arg("--kubelet").arg(kubelet), b"")
        };
        let out = check(&kubelet);
        assert_eq!(out.code, Some(0), "{}: {out:#?}", dir.display());
        assert!(
            out.stdout.contains(", 0 error(s), 0 warning(s)\n"),
            "{}: {}",
            dir.display(),
            out.stdout
        );
        let mut generate = pullcred(home.path());
        generate.arg("kubelet-config");
        if config.exists() {
            generate.arg(&config);
        }
        let generated = run(&mut generate, b"");
        assert_eq!(generated.code, Some(0), "{generated:?}");
        // Each example's provider config is what `kubelet-config` prints for its rules
        // (compared as data: the examples keep comments and may quote differently).
        let parse = |text: &str| -> serde_json::Value {
            serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        };
        assert_eq!(
            parse(&std::fs::read_to_string(&kubelet).unwrap()),
            parse(&generated.stdout),
            "{}: the provider config is not what kubelet-config prints",
            dir.display()
        );
        let file = home.path().join("generated.yaml");
        std::fs::write(&file, &generated.stdout).unwrap();
        let out = check(&file);
        assert!(
            out.stdout.contains(", 0 error(s), 0 warning(s)\n"),
            "{}: generated: {}",
            dir.display(),
            out.stdout
        );
        checked += 1;
    }
    assert!(checked >= 14, "{checked}");
    // The README's first command.
    let out = run(
        pullcred(home.path())
            .arg("--config")
            .arg(root.join("config-examples/quickstart/config.toml"))
            .args(["get", "registry.example.com/team/app:1"]),
        b"",
    );
    assert_eq!(
        out.response()["auth"]["registry.example.com"],
        serde_json::json!({"username": "demo", "password": "not-a-real-password"})
    );
}

/// The README's first command in a checkout made under umask 002, the default where each
/// user has a group of their own: directories 0775 and files 0664, the group the user's. An
/// ordinary account whose private group it is runs it. Refused: the same tree with a group
/// the caller is not in, with an ACL that lets another user write the config (the mode's
/// group bits are then the ACL's mask), and run as root (root's files are root's alone).
#[test]
fn the_readmes_first_command_works_in_a_checkout_made_under_umask_002() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = repo.join("config-examples/quickstart");
    #[derive(PartialEq)]
    enum Case {
        Theirs,
        ForeignGroup,
        Acl,
        Root,
    }
    for case in [Case::Theirs, Case::ForeignGroup, Case::Acl, Case::Root] {
        let uid = if case == Case::Root { 0 } else { 1000 };
        let gid = if case == Case::ForeignGroup {
            FOREIGN_GID + 1
        } else {
            uid
        };
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("pullcred");
        let quickstart = checkout.join("config-examples/quickstart");
        std::fs::create_dir_all(&quickstart).unwrap();
        let give = |path: &Path, mode: u32| {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        for dir in [&checkout, &checkout.join("config-examples"), &quickstart] {
            give(dir, 0o775);
        }
        for name in ["config.toml", "demo.password"] {
            std::fs::copy(example.join(name), quickstart.join(name)).unwrap();
            give(&quickstart.join(name), 0o664);
        }
        if case == Case::Acl {
            // user::rw-, user:1001:rw-, group::rw-, mask::rw-, other::r-- (the kernel's
            // xattr form: a version, then tag, permissions and id per entry).
            let mut acl = 2u32.to_le_bytes().to_vec();
            for (tag, perm, id) in [
                (0x01u16, 6u16, u32::MAX),
                (0x02, 6, 1001),
                (0x04, 6, u32::MAX),
                (0x10, 6, u32::MAX),
                (0x20, 4, u32::MAX),
            ] {
                acl.extend(tag.to_le_bytes());
                acl.extend(perm.to_le_bytes());
                acl.extend(id.to_le_bytes());
            }
            rustix::fs::setxattr(
                quickstart.join("config.toml"),
                "system.posix_acl_access",
                &acl,
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
        }
        let home = tmp.path().join("home");
        std::fs::create_dir(&home).unwrap();
        give(&home, 0o700);
        let mut cmd = pullcred(&home);
        cmd.uid(uid).gid(uid);
        cmd.current_dir(&checkout)
            .args(["--config", "config-examples/quickstart/config.toml"])
            .args(["get", "registry.example.com/team/app:1"]);
        let out = run(&mut cmd, b"");
        match case {
            Case::Theirs => assert_eq!(
                out.response()["auth"]["registry.example.com"],
                serde_json::json!({"username": "demo", "password": "not-a-real-password"}),
            ),
            Case::ForeignGroup | Case::Root => out.assert_error(
                "refusing a config file in the directory ., writable by group or others (mode 0775)",
            ),
            Case::Acl => {
                // The directories pass (no ACL on them); the config does not.
                for dir in [&checkout, &checkout.join("config-examples"), &quickstart] {
                    give(dir, 0o755);
                }
                let out = run(&mut cmd, b"");
                out.assert_error("refusing a config file writable by group or others (mode 0664)");
            }
        }
    }
}

#[test]
fn logs_go_to_stderr_at_the_level_asked_for() {
    let fx = Fixture::new("static");
    let quiet = fx.plugin("registry.example.com/app");
    assert_eq!(quiet.stderr, "", "quiet by default");
    let debug = run(
        fx.cmd().env("PULLCRED_LOG", "debug"),
        &request(V1, "registry.example.com/app"),
    );
    assert!(
        debug.stderr.contains("pullcred: debug: "),
        "{:?}",
        debug.stderr
    );
    // stdout is the response alone, whatever the log level.
    assert_eq!(debug.response()["kind"], "CredentialProviderResponse");
    let verbose = run(
        fx.cmd().arg("-vv"),
        &request(V1, "registry.example.com/app"),
    );
    assert!(
        verbose.stderr.contains("pullcred: debug: "),
        "{:?}",
        verbose.stderr
    );
}

#[test]
fn the_cache_dir_can_come_from_the_config() {
    let fx = Fixture::new("static");
    // Relative to the config file's directory.
    fx.prepend_config("[cache]\ndir = \"from-config\"\n");
    let mut cmd = fx.cmd();
    cmd.env_remove("PULLCRED_CACHE_DIR");
    run(&mut cmd, &request(V1, "registry.example.com/app")).response();
    let entries = std::fs::read_dir(fx.path("from-config")).unwrap().count();
    assert_eq!(entries, 2, "an entry and its lock file");
    // --cache-dir wins over the config.
    let mut cmd = fx.cmd();
    cmd.env_remove("PULLCRED_CACHE_DIR")
        .arg("--cache-dir")
        .arg(fx.path("from-flag"));
    run(&mut cmd, &request(V1, "registry.example.com/app")).response();
    assert_eq!(std::fs::read_dir(fx.path("from-flag")).unwrap().count(), 2);
}

#[test]
fn config_check_refuses_an_unknown_source_and_another_sources_key_with_their_lines() {
    let home = tempfile::tempdir().unwrap();
    let check = |text: &str| {
        let path = home.path().join("check.toml");
        std::fs::write(&path, text).unwrap();
        run(
            pullcred(home.path()).args(["config", "check"]).arg(&path),
            b"",
        )
    };
    let rule = "[[registry]]\nmatch = [\"registry.example.com\"]\n";
    check(&format!("{rule}source = \"keychain\"\n")).assert_error(
        "check.toml: line 3: unknown source \"keychain\" (known: static, docker-config, ecr, gcp, acr, passthrough, aws-secrets-manager, gcp-secret-manager, azure-key-vault, vault)",
    );
    // `role_arn` is the ecr source's; a static rule refuses it on its own line.
    check(&format!(
        "{rule}source = \"static\"\nusername = \"u\"\npassword_file = \"pw\"\n\nrole_arn = \"arn:aws:iam::1:role/r\"\n"
    ))
    .assert_error("check.toml: line 7: key `role_arn` does not apply to source \"static\"");
    // A key no source takes is named as unknown.
    check(&format!("{rule}source = \"ecr\"\ncolour = \"blue\"\n"))
        .assert_error("check.toml: line 4: unknown field `colour`");
}

#[test]
fn plugin_mode_without_arguments_reads_the_environment_as_the_subcommands_do() {
    let fx = Fixture::new("static");
    let image = "registry.example.com/app:1";
    let env_run = |value: &str, args: &[&str]| {
        let mut cmd = pullcred(fx.dir.path());
        cmd.env("PULLCRED_CONFIG", value).args(args);
        run(&mut cmd, &request(V1, image)).response()
    };
    let config = fx.path("config.toml").display().to_string();
    // Without arguments (the kubelet's way, read without clap) and with `get` (through
    // clap): the same config from PULLCRED_CONFIG, the same answer.
    let plugin = env_run(&config, &[]);
    assert_eq!(plugin, env_run(&config, &["get", image]));
    assert_eq!(
        plugin["auth"]["registry.example.com"]["password"],
        "s3cret-static-pw"
    );
    // An empty PULLCRED_CONFIG is unset for both: the built-in rules, which do not cover
    // this host.
    let empty = env_run("", &[]);
    assert_eq!(empty["auth"], serde_json::json!({}));
    assert_eq!(empty, env_run("", &["get", image]));
}

/// Help, usage and error lines name the program the operator ran (`pullcred`, which hands
/// every subcommand to `pullcred-mint` beside it), never the binary behind it.
#[test]
fn help_and_usage_name_the_program_that_was_run() {
    let home = tempfile::tempdir().unwrap();
    let help = run(pullcred(home.path()).arg("--help"), b"");
    assert_eq!(help.code, Some(0), "{help:?}");
    assert!(
        help.stdout.contains("Usage: pullcred [OPTIONS] [COMMAND]"),
        "{}",
        help.stdout
    );
    let typo = run(pullcred(home.path()).args(["config", "chek"]), b"");
    assert_eq!(typo.code, Some(2), "{typo:?}");
    assert!(
        typo.stderr.contains("usage: pullcred config"),
        "{}",
        typo.stderr
    );
    for out in [&help, &typo] {
        assert!(
            !out.stdout.contains("pullcred-mint") && !out.stderr.contains("pullcred-mint"),
            "{out:?}"
        );
    }
}

/// `config check` reads each secret file a rule names, as a mint would: a missing one fails
/// the check, naming the rule, the key and the file; `--no-files` checks the config alone.
#[test]
fn config_check_fails_on_a_missing_secret_file_unless_no_files() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("c.toml");
    std::fs::write(
        &config,
        "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"secrets/absent\"\n",
    )
    .unwrap();
    let out = run(
        pullcred(home.path()).args(["config", "check"]).arg(&config),
        b"",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("error: rule 1 (static): password_file: ")
            && out.stdout.contains("secrets/absent"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("1 secret file(s) cannot be read"),
        "{out:?}"
    );
    let out = run(
        pullcred(home.path())
            .args(["config", "check", "--no-files"])
            .arg(&config),
        b"",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    crate::support::secret_file(&home.path().join("secrets/absent"), "s3cret-static-pw");
    let out = run(
        pullcred(home.path()).args(["config", "check"]).arg(&config),
        b"",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
}

/// docs/cli.md is the `--help` of every command and of the install scripts, as the binary
/// and scripts print it: one definition of each option (src/args.rs, the scripts' heads)
/// makes both. `PULLCRED_BLESS=1` rewrites the page instead of checking it.
#[test]
fn docs_cli_md_is_the_help_of_every_command() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let home = tempfile::tempdir().unwrap();
    let mut page = String::from(
        "# Command line\n\n\
         Every command's `--help`, as the binary prints it. This page is made from the same\n\
         definitions (`src/args.rs`; the scripts' own heads), and a test checks that it still\n\
         is: `PULLCRED_BLESS=1 cargo test --test integration docs_cli_md` writes it anew.\n\n\
         Logs go to stderr only: warnings and errors by default; `-v`/`-vv` or\n\
         `PULLCRED_LOG=info|debug` for more. Exit codes: 0 done; 1 failed, with one line on\n\
         stderr saying why; 2 a command line that is not pullcred's. The front also answers\n\
         as a docker credential helper under the name `docker-credential-pullcred`\n\
         ([docs/release.md](release.md#node-tools-the-docker-credential-helper)).\n",
    );
    let commands: [&[&str]; 9] = [
        &[],
        &["get"],
        &["config"],
        &["config", "check"],
        &["config", "match-images"],
        &["cache"],
        &["doctor"],
        &["kubelet-config"],
        &["version"],
    ];
    for words in commands {
        let out = run(pullcred(home.path()).args(words).arg("--help"), b"");
        assert_eq!(out.code, Some(0), "{words:?}: {out:?}");
        let title = ["pullcred"]
            .iter()
            .chain(words)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        page.push_str(&format!("\n## `{title}`\n\n```text\n{}```\n", out.stdout));
    }
    for script in ["install.sh", "uninstall.sh"] {
        let out = Command::new("sh")
            .arg(repo.join("install").join(script))
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        page.push_str(&format!(
            "\n## `install/{script}`\n\n```text\n{}```\n",
            String::from_utf8(out.stdout).unwrap()
        ));
    }
    let path = repo.join("docs/cli.md");
    if std::env::var_os("PULLCRED_BLESS").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    assert!(
        std::fs::read_to_string(&path).unwrap() == page,
        "docs/cli.md is not the commands' help: PULLCRED_BLESS=1 cargo test --test integration docs_cli_md"
    );
}

/// Every relative link in README.md, docs/ and config-examples/README.md names a file that
/// exists and, for a Markdown page, a heading it has (GitHub's anchors: lower case, spaces
/// to `-`, other punctuation dropped); and the README links a new operator straight to the
/// day-two answers: rotating a credential, the logs, proxies, uninstalling, and recovering
/// from a failed install.
#[test]
fn the_docs_links_resolve_and_the_readme_links_the_day_two_answers() {
    use std::path::PathBuf;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let anchors = |page: &Path| -> Vec<String> {
        let text = std::fs::read_to_string(page).unwrap();
        let mut fenced = false;
        let mut out = Vec::new();
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            } else if !fenced && line.starts_with('#') {
                let title = line.trim_start_matches('#').trim().to_lowercase();
                out.push(
                    title
                        .chars()
                        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                        .map(|c| if c == ' ' { '-' } else { c })
                        .collect(),
                );
            }
        }
        out
    };
    let mut pages: Vec<PathBuf> = vec![
        repo.join("README.md"),
        repo.join("config-examples/README.md"),
    ];
    let mut dirs = vec![repo.join("docs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                pages.push(p);
            }
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let mut fenced = false;
        for line in text.lines() {
            if line.starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for (i, _) in line.match_indices("](") {
                let rest = &line[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let link = &rest[..end];
                if link.contains("://") || link.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
                let target = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                checked += 1;
                if !target.exists() {
                    broken.push(format!("{}: {link}: no such file", page.display()));
                } else if !anchor.is_empty()
                    && target.extension().is_some_and(|x| x == "md")
                    && !anchors(&target).iter().any(|a| a == anchor)
                {
                    broken.push(format!("{}: {link}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(checked > 200, "{checked} links");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    for link in [
        "docs/operations.md#rotating-a-credential",
        "docs/operations.md#reading-the-logs",
        "docs/operations.md#proxies",
        "docs/operations.md#uninstalling",
        "docs/install.md",
    ] {
        assert!(
            readme.contains(&format!("]({link})")),
            "README links {link}"
        );
    }
    assert!(
        anchors(&repo.join("docs/install.md"))
            .contains(&"recovering-from-a-failed-install".to_string())
    );
}
