//! install/install.sh and install/uninstall.sh into temporary roots (DESTDIR) shaped like
//! each node flavour's files (tests/fixtures/nodes/<flavour>): the files and flags written,
//! idempotence, operators' changes, --dry-run, exact uninstall; and shellcheck over both.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{pullcred, require_tool, run};

const KUBEADM_FLAGS: &str = "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml --image-credential-provider-bin-dir=/usr/local/libexec/kubelet-credential-providers";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A root shaped like `flavour`'s node, modes kept.
fn node(flavour: &str) -> tempfile::TempDir {
    fn copy(src: &Path, dst: &Path) {
        for e in fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            let to = dst.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                fs::create_dir_all(&to).unwrap();
                copy(&e.path(), &to);
            } else {
                fs::copy(e.path(), &to).unwrap();
            }
        }
    }
    let root = tempfile::tempdir().unwrap();
    copy(
        &repo().join("tests/fixtures/nodes").join(flavour),
        root.path(),
    );
    root
}

struct Out {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn script(name: &str, root: &Path, args: &[&str]) -> Out {
    let out = Command::new("sh")
        .arg(repo().join("install").join(name))
        .args(args)
        .env("DESTDIR", root)
        .env_remove("PULLCRED_CONFIG")
        .output()
        .unwrap();
    Out {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn install(root: &Path, args: &[&str]) -> Out {
    let mut all = vec!["--binary", env!("CARGO_BIN_EXE_pullcred")];
    all.extend_from_slice(args);
    script("install.sh", root, &all)
}

fn installed(root: &Path, args: &[&str]) -> String {
    let out = install(root, args);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    out.stdout
}

/// Every file and directory under `root`, with contents and modes.
fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.push((rel, meta.permissions().mode(), Vec::new()));
                dirs.push(p);
            } else {
                out.push((rel, meta.permissions().mode(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The installed kubelet config checks clean against the installed pullcred config, with
/// every provider's binary in `bin_dir`.
fn check_clean(root: &Path, provider_config: &str, bin_dir: &str) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.args(["config", "check"]);
    let config = root.join("etc/pullcred/config.toml");
    if config.exists() {
        cmd.arg(&config);
    }
    let out = run(
        cmd.arg("--kubelet")
            .arg(root.join(provider_config.trim_start_matches('/')))
            .arg("--bin-dir")
            .arg(root.join(bin_dir.trim_start_matches('/'))),
        b"",
    );
    assert!(
        out.code == Some(0) && out.stdout.contains(", 0 error(s), 0 warning(s)"),
        "{out:?}"
    );
}

#[test]
fn kubeadm_debian_gets_the_flags_in_etc_default_kubelet() {
    let root = node("kubeadm-debian");
    let r = root.path();
    let before = snapshot(r);
    let out = installed(r, &["--example", "htpasswd-registry"]);
    assert!(out.contains("flavor kubeadm"), "detected: {out}");
    assert_eq!(
        read(r, "/etc/default/kubelet"),
        format!("KUBELET_EXTRA_ARGS=\"--node-ip=10.0.0.5 {KUBEADM_FLAGS}\"\n")
    );
    for file in [
        "/usr/local/libexec/kubelet-credential-providers/pullcred",
        "/usr/local/libexec/kubelet-credential-providers/pullcred-mint",
        "/etc/pullcred/config.toml",
        "/etc/kubernetes/credential-provider-config.yaml",
        "/etc/default/kubelet",
    ] {
        assert!(out.contains(&format!("wrote {file}\n")), "{file}: {out}");
    }
    assert!(
        out.contains("to apply, run: systemctl restart kubelet"),
        "{out}"
    );
    // A drop-in's Environment= would lose to the EnvironmentFile: none is written.
    assert!(
        !r.join("etc/systemd/system/kubelet.service.d/20-pullcred.conf")
            .exists()
    );
    let mode = fs::metadata(r.join("etc/pullcred/config.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    check_clean(
        r,
        "/etc/kubernetes/credential-provider-config.yaml",
        "/usr/local/libexec/kubelet-credential-providers",
    );
    // Twice: byte-identical.
    let once = snapshot(r);
    let again = installed(r, &["--example", "htpasswd-registry"]);
    assert!(!again.contains("wrote "), "{again}");
    assert_eq!(snapshot(r), once);
    // Uninstall: exactly the tree before.
    let out = script("uninstall.sh", r, &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(snapshot(r), before);
}

#[test]
fn service_account_rules_get_the_front_under_each_providers_name() {
    let root = node("kubeadm-debian");
    let r = root.path();
    let out = installed(r, &["--example", "service-account-tokens"]);
    for name in [
        "pullcred-ecr",
        "pullcred-gcp",
        "pullcred-acr",
        "pullcred-passthrough",
    ] {
        let file = format!("/usr/local/libexec/kubelet-credential-providers/{name}");
        assert!(out.contains(&format!("wrote {file}\n")), "{name}: {out}");
        assert_eq!(
            fs::read(r.join(file.trim_start_matches('/'))).unwrap(),
            fs::read(env!("CARGO_BIN_EXE_pullcred")).unwrap(),
            "the front binary"
        );
    }
    check_clean(
        r,
        "/etc/kubernetes/credential-provider-config.yaml",
        "/usr/local/libexec/kubelet-credential-providers",
    );
}

#[test]
fn kubeadm_rhel_gets_the_flags_in_etc_sysconfig_kubelet() {
    let root = node("kubeadm-rhel");
    let r = root.path();
    let before = snapshot(r);
    installed(r, &[]);
    assert_eq!(
        read(r, "/etc/sysconfig/kubelet"),
        format!("KUBELET_EXTRA_ARGS=\"{KUBEADM_FLAGS}\"\n")
    );
    assert!(!r.join("etc/default/kubelet").exists());
    // No config given: the built-in rules, routed by the kubelet config.
    assert!(!r.join("etc/pullcred/config.toml").exists());
    check_clean(
        r,
        "/etc/kubernetes/credential-provider-config.yaml",
        "/usr/local/libexec/kubelet-credential-providers",
    );
    assert!(script("uninstall.sh", r, &[]).ok);
    assert_eq!(snapshot(r), before);
}

#[test]
fn plain_systemd_gets_a_drop_in() {
    let root = node("systemd");
    let r = root.path();
    let out = installed(r, &["--example", "docker-hub-token"]);
    assert!(out.contains("flavor systemd"), "{out}");
    assert_eq!(
        read(r, "/etc/systemd/system/kubelet.service.d/20-pullcred.conf"),
        format!("[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS={KUBEADM_FLAGS}\"\n")
    );
    assert!(out.contains("systemctl daemon-reload && systemctl restart kubelet"));
}

#[test]
fn eks_merges_into_the_ecr_provider_config_and_adds_a_nodeconfig() {
    let root = node("eks");
    let r = root.path();
    let before = snapshot(r);
    let out = installed(r, &["--example", "everything"]);
    assert!(out.contains("flavor eks"), "{out}");
    let merged: serde_json::Value =
        serde_json::from_str(&read(r, "/etc/eks/image-credential-provider/config.json")).unwrap();
    let names: Vec<&str> = merged["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ecr-credential-provider", "pullcred"],
        "the ECR provider is kept"
    );
    assert_eq!(
        read(r, "/etc/eks/nodeadm.d/90-pullcred.yaml"),
        "# pullcred's kubelet flags, merged by nodeadm into its NodeConfig.\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags:\n      - --image-credential-provider-config=/etc/eks/image-credential-provider/config.json\n      - --image-credential-provider-bin-dir=/etc/eks/image-credential-provider\n"
    );
    assert!(
        r.join("etc/eks/image-credential-provider/pullcred")
            .is_file()
    );
    // The merged config routes *.dkr.ecr.*.amazonaws.com to both providers: that is the
    // one warning; nothing else.
    let home = tempfile::tempdir().unwrap();
    let check = run(
        pullcred(home.path())
            .args(["config", "check"])
            .arg(r.join("etc/pullcred/config.toml"))
            .arg("--kubelet")
            .arg(r.join("etc/eks/image-credential-provider/config.json"))
            .arg("--bin-dir")
            .arg(r.join("etc/eks/image-credential-provider")),
        b"",
    );
    assert!(
        check.stdout.contains("0 error(s), 1 warning(s)"),
        "{}",
        check.stdout
    );
    assert!(
        check
            .stdout
            .contains("also routed to provider \"ecr-credential-provider\"")
    );
    // Twice, then uninstall: the original JSON is back.
    let once = snapshot(r);
    installed(r, &["--example", "everything"]);
    assert_eq!(snapshot(r), once);
    assert!(script("uninstall.sh", r, &[]).ok);
    assert_eq!(snapshot(r), before);
}

#[test]
fn k3s_and_rke2_get_kubelet_args_in_their_config_dirs() {
    for flavour in ["k3s", "rke2"] {
        let root = node(flavour);
        let r = root.path();
        let before = snapshot(r);
        let out = installed(r, &["--example", "quay-harbor-robot"]);
        assert!(out.contains(&format!("flavor {flavour}")), "{out}");
        assert_eq!(
            read(
                r,
                &format!("/etc/rancher/{flavour}/config.yaml.d/90-pullcred.yaml")
            ),
            "# pullcred's kubelet flags (appended to kubelet-arg).\nkubelet-arg+:\n  - image-credential-provider-config=/var/lib/rancher/credentialprovider/config.yaml\n  - image-credential-provider-bin-dir=/var/lib/rancher/credentialprovider/bin\n"
        );
        // The operator's own config.yaml is untouched.
        assert_eq!(
            read(r, &format!("/etc/rancher/{flavour}/config.yaml")),
            read(
                &repo().join("tests/fixtures/nodes").join(flavour),
                &format!("/etc/rancher/{flavour}/config.yaml")
            )
        );
        check_clean(
            r,
            "/var/lib/rancher/credentialprovider/config.yaml",
            "/var/lib/rancher/credentialprovider/bin",
        );
        assert!(
            out.contains(&format!("systemctl restart {flavour}")),
            "{out}"
        );
        assert!(script("uninstall.sh", r, &[]).ok);
        assert_eq!(snapshot(r), before, "{flavour}");
    }
}

#[test]
fn bottlerocket_and_unknown_nodes_get_instructions_and_nothing_written() {
    for (flavour, args) in [
        ("bottlerocket", vec![]),
        ("systemd", vec!["--flavor", "unknown"]),
    ] {
        let root = node(flavour);
        let r = root.path();
        let before = snapshot(r);
        let out = install(r, &args);
        assert_eq!(out.code, Some(1), "{}", out.stdout);
        assert!(out.stdout.contains("nothing written"), "{}", out.stdout);
        assert!(out.stdout.contains("--image-credential-provider-config="));
        assert!(out.stdout.contains("kind: \"CredentialProviderConfig\""));
        let mut print_only = args.clone();
        print_only.push("--print-only");
        assert_eq!(install(r, &print_only).code, Some(0));
        assert_eq!(snapshot(r), before);
    }
}

#[test]
fn an_operators_change_is_kept_unless_forced_and_dry_run_writes_nothing() {
    let root = node("kubeadm-debian");
    let r = root.path();
    let before = snapshot(r);
    // A dry run writes nothing.
    let out = installed(r, &["--dry-run", "--example", "htpasswd-registry"]);
    assert!(
        out.contains("would write /etc/kubernetes/credential-provider-config.yaml"),
        "{out}"
    );
    assert_eq!(snapshot(r), before);
    installed(r, &["--example", "htpasswd-registry"]);
    let provider = r.join("etc/kubernetes/credential-provider-config.yaml");
    let changed = format!(
        "{}# an operator's note\n",
        fs::read_to_string(&provider).unwrap()
    );
    fs::write(&provider, &changed).unwrap();
    let out = install(r, &["--example", "htpasswd-registry"]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("/etc/kubernetes/credential-provider-config.yaml was changed since pullcred installed it; --force replaces it"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(&provider).unwrap(),
        changed,
        "left alone"
    );
    // Uninstall refuses too, rather than delete the operator's change.
    assert!(!script("uninstall.sh", r, &[]).ok);
    let out = installed(r, &["--force", "--example", "htpasswd-registry"]);
    assert!(
        out.contains("kept the changed /etc/kubernetes/credential-provider-config.yaml as"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(r.join("etc/kubernetes/credential-provider-config.yaml.bak")).unwrap(),
        changed
    );
    assert_ne!(fs::read_to_string(&provider).unwrap(), changed);
    // A drop-in of the same name that is not pullcred's is not replaced either.
    let sd = node("systemd");
    let dropin = sd.path().join("etc/systemd/system/kubelet.service.d");
    fs::create_dir_all(&dropin).unwrap();
    fs::write(
        dropin.join("20-pullcred.conf"),
        "[Service]\n# someone else's\n",
    )
    .unwrap();
    let out = install(sd.path(), &[]);
    assert!(
        out.stderr
            .contains("20-pullcred.conf exists and is not pullcred's"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_installer_scripts_are_shellcheck_clean() {
    require_tool("shellcheck");
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(repo().join("install/install.sh"))
        .arg(repo().join("install/uninstall.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The quoted `matchImages` entries of a CredentialProviderConfig.
fn match_images(yaml: &str) -> Vec<String> {
    yaml.lines()
        .map(str::trim)
        .skip_while(|l| *l != "matchImages:")
        .skip(1)
        .take_while(|l| l.starts_with("- "))
        .map(|l| l[2..].trim_matches('"').to_string())
        .collect()
}

#[test]
fn the_kubelet_builtin_example_routes_exactly_what_the_builtin_rules_serve() {
    let example =
        fs::read_to_string(repo().join("config-examples/builtin/credential-provider-config.yaml"))
            .unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = run(pullcred(home.path()).args(["config", "match-images"]), b"");
    let builtin: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    assert_eq!(match_images(&example), builtin);
}

#[test]
fn both_scripts_are_executable() {
    for name in ["install.sh", "uninstall.sh"] {
        let mode = fs::metadata(repo().join("install").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "install/{name} is mode {mode:o}");
    }
    // Run as an operator runs it: directly, not through sh.
    let root = node("kubeadm-debian");
    let out = Command::new(repo().join("install/uninstall.sh"))
        .env("DESTDIR", root.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no /var/lib/pullcred/install/manifest"),
        "{stderr}"
    );
}
