//! install/install.sh and install/uninstall.sh into temporary roots (DESTDIR) shaped like
//! each node flavour's files (tests/fixtures/nodes/<flavour>): the files and flags written,
//! idempotence, operators' changes, --dry-run, exact uninstall, paths with spaces, atomic
//! upgrades; and shellcheck over both. The helpers are shared with tests/local_user/install.rs
//! (the same scripts against a local user's plants).

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
pub(crate) fn node(flavour: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    node_at(flavour, root.path());
    root
}

/// `flavour`'s node files copied into `root` (created if missing), modes kept.
pub(crate) fn node_at(flavour: &str, root: &Path) {
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
    fs::create_dir_all(root).unwrap();
    copy(&repo().join("tests/fixtures/nodes").join(flavour), root);
}

#[derive(Debug)]
pub(crate) struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(out: std::process::Output) -> Self {
        Out {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `sh install/NAME ARGS` with DESTDIR=`root`, not yet run.
pub(crate) fn script_cmd(name: &str, root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("install").join(name))
        .args(args)
        .env("DESTDIR", root)
        .env_remove("PULLCRED_CONFIG");
    cmd
}

pub(crate) fn script(name: &str, root: &Path, args: &[&str]) -> Out {
    script_cmd(name, root, args).output().unwrap().into()
}

/// install.sh with the built binary and `args`, the secret files left unchecked (`--no-files`:
/// these roots have no secrets; `install_checked` checks them).
pub(crate) fn install(root: &Path, args: &[&str]) -> Out {
    let mut all = vec!["--no-files"];
    all.extend_from_slice(args);
    install_checked(root, &all)
}

/// install.sh with the built binary and `args`, as an operator runs it.
pub(crate) fn install_checked(root: &Path, args: &[&str]) -> Out {
    let mut all = vec!["--binary", env!("CARGO_BIN_EXE_pullcred")];
    all.extend_from_slice(args);
    script("install.sh", root, &all)
}

pub(crate) fn installed(root: &Path, args: &[&str]) -> String {
    let out = install(root, args);
    assert!(out.ok, "{}\n{}", out.stdout, out.stderr);
    out.stdout
}

/// A build to install quickly: its `pullcred` a small script that runs the real front (so
/// the installer's `pullcred kubelet-config` works), its `pullcred-mint` a stub; `tag` makes
/// two builds differ (an upgrade). `--binary` names its `pullcred` (`.path().join(..)`).
pub(crate) fn stub_build(tag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let front = format!(
        "#!/bin/sh\n# {tag}\nexec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_pullcred")
    );
    let mint = format!("#!/bin/sh\n# {tag}\nexit 1\n");
    for (name, text) in [("pullcred", front), ("pullcred-mint", mint)] {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file and directory under `root`, with contents and modes; a symlink with its
/// target (never followed), a FIFO or other special file by its mode alone (never opened).
pub(crate) fn snapshot(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
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
            } else if meta.is_symlink() {
                let target = fs::read_link(&p).unwrap();
                out.push((rel, 0, target.into_os_string().into_encoded_bytes()));
            } else if !meta.is_file() {
                out.push((rel, meta.permissions().mode(), Vec::new()));
            } else {
                out.push((rel, meta.permissions().mode(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub(crate) fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The installed kubelet config checks clean against the installed pullcred config, with
/// every provider's binary in `bin_dir`.
fn check_clean(root: &Path, provider_config: &str, bin_dir: &str) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.args(["config", "check", "--no-files"]);
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
    // Token fields differ between kubelet versions: the version is named.
    let out = installed(
        r,
        &[
            "--example",
            "service-account-tokens",
            "--kubelet-version",
            "1.35",
        ],
    );
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

/// The providers' names in a provider config's JSON, in order.
fn provider_names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

const EKS_PROVIDERS: &str = "/etc/pullcred/kubelet-credential-providers.json";
const NODEADM_CONFIG: &str = "/etc/eks/image-credential-provider/config.json";

/// nodeadm rewrites /etc/eks/image-credential-provider/config.json whenever it configures
/// the node, so the kubelet is pointed (through a NodeConfig) at a file of pullcred's own:
/// pullcred's providers first, then nodeadm's ECR provider, which is left out when
/// pullcred's rules route every ECR host it names. nodeadm's file is never written, so its
/// rewrite loses nothing.
#[test]
fn eks_points_the_kubelet_at_pullcreds_own_provider_file_through_a_nodeconfig() {
    let root = node("eks");
    let r = root.path();
    let nodeadm_before = read(r, NODEADM_CONFIG);
    let before = snapshot(r);
    // The fixture's ECR provider names a .cn host `everything` does not serve: it is kept.
    let out = installed(r, &["--example", "everything"]);
    assert!(out.contains("flavor eks"), "{out}");
    assert_eq!(
        provider_names(&read(r, EKS_PROVIDERS)),
        ["pullcred", "ecr-credential-provider"],
        "pullcred's first, the ECR provider after"
    );
    assert_eq!(
        read(r, NODEADM_CONFIG),
        nodeadm_before,
        "nodeadm's file is not written"
    );
    assert_eq!(
        read(r, "/etc/eks/nodeadm.d/90-pullcred.yaml"),
        format!(
            "# pullcred's kubelet flags, merged by nodeadm into its NodeConfig.\napiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  kubelet:\n    flags:\n      - --image-credential-provider-config={EKS_PROVIDERS}\n      - --image-credential-provider-bin-dir=/etc/eks/image-credential-provider\n"
        )
    );
    assert!(
        r.join("etc/eks/image-credential-provider/pullcred")
            .is_file()
    );
    // The file routes *.dkr.ecr.*.amazonaws.com to both providers: that is the one
    // warning; nothing else.
    let home = tempfile::tempdir().unwrap();
    let check = |file: &str| {
        run(
            pullcred(home.path())
                .args(["config", "check", "--no-files"])
                .arg(r.join("etc/pullcred/config.toml"))
                .arg("--kubelet")
                .arg(r.join(file.trim_start_matches('/')))
                .arg("--bin-dir")
                .arg(r.join("etc/eks/image-credential-provider")),
            b"",
        )
    };
    let out = check(EKS_PROVIDERS);
    assert!(
        out.stdout.contains("0 error(s), 1 warning(s)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(": overlaps providers[0].matchImages["));

    // Rules that serve every host the ECR provider names: it is left out.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("ecr-everywhere.toml");
    fs::write(
        &config,
        "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\", \"*.dkr.ecr.*.amazonaws.com.cn\"]\nsource = \"ecr\"\n",
    )
    .unwrap();
    let other = node("eks");
    installed(other.path(), &["--config", config.to_str().unwrap()]);
    assert_eq!(
        provider_names(&read(other.path(), EKS_PROVIDERS)),
        ["pullcred"]
    );
    // Not when those rules serve only workloads' service accounts (the node's own pods,
    // kube-proxy and the CNI among them, would pull with nothing), nor when a pattern only
    // looks alike (`?` matches a literal `*` in the entry's text, not every label).
    for rules in [
        "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\", \"*.dkr.ecr.*.amazonaws.com.cn\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n",
        "[[registry]]\nmatch = [\"?.dkr.ecr.*.amazonaws.com\", \"?.dkr.ecr.?.amazonaws.com.cn\"]\nsource = \"ecr\"\n",
    ] {
        fs::write(&config, rules).unwrap();
        let other = node("eks");
        installed(
            other.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--kubelet-version",
                "1.35",
            ],
        );
        let names = provider_names(&read(other.path(), EKS_PROVIDERS));
        assert_eq!(names.last().unwrap(), "ecr-credential-provider", "{rules}");
    }

    // nodeadm configures the node again (the next boot): its file is as it wrote it, and
    // doctor, reading the flags from the NodeConfig, finds pullcred's providers still there.
    fs::write(
        r.join(NODEADM_CONFIG.trim_start_matches('/')),
        &nodeadm_before,
    )
    .unwrap();
    let out = crate::doctor::doctor(
        r,
        &[
            "--no-cache",
            "--kubelet-version",
            "1.33",
            "registry.example.com/app:1",
        ],
    );
    crate::doctor::line(
        &out,
        "ok   kubelet flags (no running kubelet; its flavour's files (/etc/eks/nodeadm.d",
        EKS_PROVIDERS,
    );
    crate::doctor::line(
        &out,
        &format!("ok   kubelet config {EKS_PROVIDERS}: 2 provider(s), 1 of them pullcred's"),
        "as the kubelet of Kubernetes 1.33 reads it",
    );
    // A kubelet still reading nodeadm's file (the NodeConfig missing, or an older install
    // that merged into it) has lost pullcred's providers: doctor says why.
    crate::doctor::kubelet(
        r,
        &[
            &format!("--image-credential-provider-config={NODEADM_CONFIG}"),
            "--image-credential-provider-bin-dir=/etc/eks/image-credential-provider",
        ],
    );
    let out = crate::doctor::doctor(r, &["--no-cache", "registry.example.com/app:1"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    crate::doctor::line(
        &out,
        &format!("FAIL kubelet config {NODEADM_CONFIG}: no pullcred provider"),
        "nodeadm rewrites this file whenever it configures the node",
    );
    crate::doctor::line(
        &out,
        "FAIL image registry.example.com/app:1",
        "the kubelet pulls it anonymously",
    );
    fs::remove_dir_all(r.join("proc")).unwrap();
    fs::remove_file(r.join("usr/bin/kubelet")).unwrap();

    // Twice, then uninstall: the node is as it was.
    let once = snapshot(r);
    installed(r, &["--example", "everything"]);
    assert_eq!(snapshot(r), once);
    assert!(script("uninstall.sh", r, &[]).ok);
    assert_eq!(snapshot(r), before);
    // The one path the kubelet must not read is refused as --provider-config.
    let out = install(r, &["--provider-config", NODEADM_CONFIG]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("nodeadm rewrites it at every boot"),
        "{}",
        out.stderr
    );
}

/// The provider config carries only what the node's kubelet has: its version is read from
/// the flavour's own kubelet binary (root's, writable by no one else), so a 1.33 node never
/// gets `cacheType`; a binary others may write is not run; --kubelet-version names it.
#[test]
fn the_provider_config_is_written_for_the_nodes_kubelet_version() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    fs::write(
        &tokens,
        "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n",
    )
    .unwrap();
    let tokens = tokens.to_str().unwrap();
    let root = node("kubeadm-debian");
    let r = root.path();
    crate::doctor::kubelet_binary_saying(r, "Kubernetes v1.33.4");
    let out = installed(r, &["--config", tokens]);
    assert!(
        out.contains("writing for the kubelet of Kubernetes 1.33 (/usr/bin/kubelet --version)"),
        "{out}"
    );
    let written = read(r, "/etc/kubernetes/credential-provider-config.yaml");
    assert!(written.contains("serviceAccountTokenAudience"), "{written}");
    assert!(
        !written.contains("cacheType"),
        "1.33 has no cacheType: {written}"
    );

    // EKS's kubelet says its version with a suffix.
    let root = node("eks");
    let r = root.path();
    crate::doctor::kubelet_binary_saying(r, "Kubernetes v1.33.0-eks-5e0fdde");
    let out = installed(r, &["--config", tokens]);
    assert!(
        out.contains("writing for the kubelet of Kubernetes 1.33"),
        "{out}"
    );
    assert!(!read(r, "/etc/pullcred/kubelet-credential-providers.json").contains("cacheType"));

    // The same binary, writable by its group: not run; and a version guessed never gets
    // fields that differ between versions, so the install stops before writing anything.
    let root = node("kubeadm-debian");
    let r = root.path();
    crate::doctor::kubelet_binary_saying(r, "Kubernetes v1.33.4");
    fs::set_permissions(r.join("usr/bin/kubelet"), fs::Permissions::from_mode(0o775)).unwrap();
    let before = snapshot(r);
    let out = install(r, &["--config", tokens]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("the kubelet's version is unknown"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("name it with --kubelet-version X.Y"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(r), before, "nothing written");
    // Rules without tokens are the same for every version: written for the newest.
    assert!(install(r, &["--example", "quickstart"]).ok);

    // k3s embeds the kubelet: its binary says the version.
    let root = node("k3s");
    let r = root.path();
    fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    fs::write(
        r.join("usr/local/bin/k3s"),
        "#!/bin/sh\necho 'k3s version v1.32.5+k3s1 (8e8f2a47)'\necho 'go version go1.23.8'\n",
    )
    .unwrap();
    fs::set_permissions(
        r.join("usr/local/bin/k3s"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // 1.32 cannot send service-account tokens: the install stops, naming the version.
    let out = install(r, &["--config", tokens]);
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("the kubelet of Kubernetes 1.32 cannot send"),
        "{}",
        out.stderr
    );
    let out = installed(r, &["--config", tokens, "--kubelet-version", "1.34"]);
    assert!(
        out.contains("writing for the kubelet of Kubernetes 1.34 (--kubelet-version)"),
        "{out}"
    );
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
        assert!(out.stdout.contains("kind: CredentialProviderConfig"));
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
        .arg(repo().join("deploy/entrypoint.sh"))
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

const MANIFEST: &str = "var/lib/pullcred/install/manifest";

/// The manifest's line for `path` (`<kind> <sha256> <path>`), if any.
fn manifest_line(root: &Path, path: &str) -> Option<String> {
    read(root, MANIFEST)
        .lines()
        .find(|l| l.splitn(3, ' ').nth(2) == Some(path))
        .map(str::to_string)
}

#[test]
fn paths_with_spaces_install_and_uninstall_inside_the_root() {
    // DESTDIR has a space, and so do the bin dir and the provider config: k3s hands each
    // kubelet-arg to the kubelet as one argument, so the spaces reach it intact.
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("node root");
    node_at("k3s", &root);
    let r = root.as_path();
    let before = snapshot(r);
    let bin_dir = "/opt/pull cred/bin";
    let provider = "/etc/pull cred/provider config.yaml";
    let args = [
        "--bin-dir",
        bin_dir,
        "--provider-config",
        provider,
        "--example",
        "quay-harbor-robot",
    ];
    let out = installed(r, &args);
    assert_eq!(
        names(parent.path()),
        ["node root"],
        "nothing outside DESTDIR"
    );
    let dropin = "/etc/rancher/k3s/config.yaml.d/90-pullcred.yaml";
    let files = [
        format!("{bin_dir}/pullcred"),
        format!("{bin_dir}/pullcred-mint"),
        "/etc/pullcred/config.toml".to_string(),
        provider.to_string(),
        dropin.to_string(),
    ];
    for file in &files {
        assert!(out.contains(&format!("wrote {file}\n")), "{file}: {out}");
        assert!(r.join(file.trim_start_matches('/')).is_file(), "{file}");
        let line = manifest_line(r, file).unwrap_or_else(|| panic!("{file} not in the manifest"));
        assert!(line.starts_with("file "), "{line}");
    }
    assert!(
        read(r, dropin).ends_with(&format!(
            "  - image-credential-provider-config={provider}\n  - image-credential-provider-bin-dir={bin_dir}\n"
        )),
        "{}",
        read(r, dropin)
    );
    check_clean(r, provider, bin_dir);
    // Twice: the manifest still knows its files, so nothing changes.
    let once = snapshot(r);
    let again = installed(r, &args);
    assert!(!again.contains("wrote "), "{again}");
    assert_eq!(snapshot(r), once);
    // An uninstall dry run says what it would undo, and undoes nothing.
    let out = script("uninstall.sh", r, &["--dry-run"]);
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("would remove {bin_dir}/pullcred\n")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("removed "), "{}", out.stdout);
    assert_eq!(snapshot(r), once);
    // Uninstall: the tree as before, and still nothing outside.
    let out = script("uninstall.sh", r, &[]);
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    assert_eq!(snapshot(r), before);
    assert_eq!(names(parent.path()), ["node root"]);

    // Default paths under a DESTDIR with a space, for the flavours with an env file or a
    // merged JSON provider config.
    for flavour in ["kubeadm-debian", "eks"] {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("node root");
        node_at(flavour, &root);
        let build = stub_build("v1");
        let binary = build.path().join("pullcred");
        let before = snapshot(&root);
        let args = ["--binary", binary.to_str().unwrap()];
        installed(&root, &args);
        let once = snapshot(&root);
        installed(&root, &args);
        assert_eq!(snapshot(&root), once, "{flavour}");
        assert!(script("uninstall.sh", &root, &[]).ok, "{flavour}");
        assert_eq!(snapshot(&root), before, "{flavour}");
        assert_eq!(names(parent.path()), ["node root"], "{flavour}");
    }
}

#[test]
fn paths_the_kubelet_would_split_or_that_leave_the_root_are_refused_before_anything_is_written() {
    // kubeadm, plain systemd and EKS hand the flags to the kubelet in one environment
    // variable that systemd splits at whitespace: a path with a space cannot reach it whole.
    for flavour in ["kubeadm-debian", "systemd", "eks"] {
        for (option, path) in [
            ("--bin-dir", "/opt/pull cred/bin"),
            ("--provider-config", "/etc/pull cred/config.yaml"),
        ] {
            let parent = tempfile::tempdir().unwrap();
            let root = parent.path().join("node");
            node_at(flavour, &root);
            let before = snapshot(&root);
            let out = install(&root, &[option, path]);
            assert_eq!(out.code, Some(2), "{flavour} {option}: {out:?}");
            assert!(
                out.stderr
                    .contains(&format!("{option} {path}: the kubelet gets its flags")),
                "{flavour}: {}",
                out.stderr
            );
            assert_eq!(snapshot(&root), before, "{flavour} {option}");
            assert_eq!(names(parent.path()), ["node"], "{flavour} {option}");
        }
    }
    // Anything but a clean absolute path (`..` would leave DESTDIR), or characters that the
    // files carrying the flags cannot hold as they are.
    for path in [
        "/../escaped",
        "/opt/../../escaped",
        "relative/bin",
        "/opt/./bin",
        "/opt//bin",
        "/opt/bin/",
        "/opt/bin:x",
        "/opt/$(id)",
        "/opt/50%",
        "/opt/a\"b",
        "/opt/a|b",
        "/opt/a\nb",
    ] {
        for option in ["--bin-dir", "--provider-config"] {
            let parent = tempfile::tempdir().unwrap();
            let root = parent.path().join("node");
            node_at("k3s", &root);
            let before = snapshot(&root);
            let out = install(&root, &[option, path]);
            assert_eq!(out.code, Some(2), "{option} {path:?}: {out:?}");
            assert!(
                out.stderr.contains("not a clean absolute path"),
                "{option} {path:?}: {}",
                out.stderr
            );
            assert_eq!(snapshot(&root), before, "{option} {path:?}");
            assert_eq!(names(parent.path()), ["node"], "{option} {path:?}");
        }
    }
}

/// The SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `text` as a dry run shows a file's content: each line indented by four spaces.
fn indented(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn a_dry_run_shows_each_new_file_or_its_diff_a_secret_by_name_only_and_writes_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("node");
    node_at("kubeadm-debian", &root);
    let r = root.as_path();
    let canary = "s3cret-dry-run-canary";
    let config = parent.path().join("config.toml");
    let example =
        fs::read_to_string(repo().join("config-examples/htpasswd-registry/config.toml")).unwrap();
    fs::write(&config, format!("{example}\n# {canary}\n")).unwrap();
    let config = config.to_str().unwrap();
    let before = snapshot(r);
    let dry = installed(r, &["--dry-run", "--config", config]);
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(snapshot(r), before);
    assert_eq!(names(parent.path()), ["config.toml", "node"]);
    // Installed for real: the dry run showed exactly what was then written.
    installed(r, &["--config", config]);
    let provider = "/etc/kubernetes/credential-provider-config.yaml";
    assert!(
        dry.contains(&format!(
            "would write {provider} (new file, mode 0644):\n{}",
            indented(&read(r, provider))
        )),
        "{dry}"
    );
    // A file that exists: a diff against it.
    assert!(
        dry.contains(&format!(
            "would write /etc/default/kubelet (changed, mode 0644):\n    --- /etc/default/kubelet\n    +++ /etc/default/kubelet (new)\n    @@ -1 +1 @@\n    -KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5\n    +KUBELET_EXTRA_ARGS=\"--node-ip=10.0.0.5 {KUBEADM_FLAGS}\"\n"
        )),
        "{dry}"
    );
    // Binaries by size and checksum.
    let front = fs::read(env!("CARGO_BIN_EXE_pullcred")).unwrap();
    assert!(
        dry.contains(&format!(
            "would write /usr/local/libexec/kubelet-credential-providers/pullcred (new file, mode 0755): binary, {} bytes, sha256 {}\n",
            front.len(),
            sha256_hex(&front)
        )),
        "{dry}"
    );
    // A secret by name and mode alone.
    assert!(
        dry.contains(
            "would write /etc/pullcred/config.toml (new file, mode 0600): a secret, content not shown\n"
        ),
        "{dry}"
    );
    assert!(!dry.contains(canary), "{dry}");
    assert!(!dry.contains("password_file"), "{dry}");

    // Against an installed node: pullcred's own provider config changes (a diff), and the
    // secret config changes (still by name alone).
    let installed_tree = snapshot(r);
    let dry = installed(r, &["--dry-run", "--example", "docker-hub-token"]);
    assert_eq!(snapshot(r), installed_tree);
    assert!(
        dry.contains(&format!(
            "would write {provider} (changed, mode 0644):\n    --- {provider}\n    +++ {provider} (new)\n    @@ "
        )),
        "{dry}"
    );
    assert!(
        dry.contains(
            "would write /etc/pullcred/config.toml (changed, mode 0600): a secret, content not shown\n"
        ),
        "{dry}"
    );
    assert!(!dry.contains(canary), "{dry}");
    assert!(!dry.contains("password_file"), "{dry}");
    assert!(dry.contains("unchanged /etc/default/kubelet\n"), "{dry}");
}

/// The quoted strings of one strace line (a syscall's path arguments).
fn quoted(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

#[test]
fn an_upgrade_renames_each_binary_into_place_from_its_own_directory() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    require_tool("strace");
    let root = node("kubeadm-debian");
    let r = root.path();
    let v1 = stub_build("v1");
    let v2 = stub_build("v2");
    let v1_front = v1.path().join("pullcred");
    let v2_front = v2.path().join("pullcred");
    installed(r, &["--binary", v1_front.to_str().unwrap()]);
    let bin = r.join("usr/local/libexec/kubelet-credential-providers");
    let binaries = ["pullcred", "pullcred-mint"];
    let inodes: Vec<u64> = binaries
        .iter()
        .map(|b| fs::metadata(bin.join(b)).unwrap().ino())
        .collect();
    let paths_before: Vec<String> = snapshot(r).into_iter().map(|e| e.0).collect();

    // A reader through the whole upgrade (the kubelet exec'ing the front) always finds the
    // front whole: v1 or v2, never missing, never partly written.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let path = bin.join("pullcred");
        let old = fs::read(&v1_front).unwrap();
        let new = fs::read(&v2_front).unwrap();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let now = fs::read(&path).unwrap_or_else(|e| panic!("the front went missing: {e}"));
                assert!(now == old || now == new, "a partly written front");
                reads += 1;
            }
            reads
        })
    };
    let trace = tempfile::tempdir().unwrap();
    let trace = trace.path().join("trace");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "signal=none", "-e"])
        .arg("trace=rename,renameat,renameat2,unlink,unlinkat,open,openat,creat")
        .arg("-o")
        .arg(&trace)
        .arg("sh")
        .arg(repo().join("install/install.sh"))
        .args(["--binary", v2_front.to_str().unwrap()])
        .env("DESTDIR", r)
        .env_remove("PULLCRED_CONFIG");
    let out: Out = cmd.output().unwrap().into();
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().unwrap();
    assert!(out.ok, "{out:?}");
    assert!(reads > 0);
    let trace = fs::read_to_string(&trace).unwrap();
    for (binary, inode) in binaries.iter().zip(inodes) {
        let path = bin.join(binary);
        let path_str = path.to_str().unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            fs::read(v2.path().join(binary)).unwrap()
        );
        assert_ne!(
            fs::metadata(&path).unwrap().ino(),
            inode,
            "{binary}: a new file"
        );
        // Staged beside the binary, then renamed over it: never unlinked, never opened for
        // writing in place.
        let renames: Vec<&str> = trace
            .lines()
            .filter(|l| l.contains("rename") && l.ends_with(" = 0"))
            .filter(|l| quoted(l).get(1) == Some(&path_str))
            .collect();
        assert_eq!(renames.len(), 1, "{binary}: {trace}");
        let from = Path::new(quoted(renames[0])[0]);
        assert_eq!(
            from.parent(),
            Some(bin.as_path()),
            "{binary} staged elsewhere: {}",
            renames[0]
        );
        for line in trace.lines() {
            let args = quoted(line);
            if line.contains("unlink") {
                assert!(!args.contains(&path_str), "{binary} unlinked: {line}");
            }
            if line.contains("open") && args.first() == Some(&path_str) {
                assert!(
                    !line.contains("O_WRONLY") && !line.contains("O_RDWR"),
                    "{line}"
                );
            }
        }
    }
    // No staged file is left behind anywhere.
    let paths_after: Vec<String> = snapshot(r).into_iter().map(|e| e.0).collect();
    assert_eq!(paths_after, paths_before);
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

/// All or nothing: a config that does not parse stops the install before it writes a file
/// (no binary, no config, no manifest), naming the fault; the node is as it was, and the
/// fresh install after the fix finds nothing half-done to refuse. It also makes the secrets
/// dir the examples write into, root's alone.
#[test]
fn a_bad_config_writes_nothing_and_the_secrets_dir_is_made() {
    let r = node("kubeadm-debian");
    let before = snapshot(r.path());
    let bad = r.path().join("bad.toml");
    fs::write(
        &bad,
        "[[registry]]\nmatch = [\"a.com\"]\nsource = \"static\"\nuser = \"x\"\n",
    )
    .unwrap();
    let before_with_bad = snapshot(r.path());
    let out = install(
        r.path(),
        &[
            "--config",
            bad.to_str().unwrap(),
            "--kubelet-version",
            "1.35",
        ],
    );
    assert!(!out.ok, "{out:?}");
    assert!(
        out.stderr
            .contains("unknown field `user` (did you mean `username`?)"),
        "{out:?}"
    );
    assert_eq!(snapshot(r.path()), before_with_bad, "nothing was written");
    fs::remove_file(&bad).unwrap();
    assert_eq!(snapshot(r.path()), before);
    installed(
        r.path(),
        &["--example", "quickstart", "--kubelet-version", "1.35"],
    );
    let secrets = r.path().join("etc/pullcred/secrets");
    let meta = fs::metadata(&secrets).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // A dry run says what it would undo and undoes nothing.
    let installed_state = snapshot(r.path());
    let dry = script("uninstall.sh", r.path(), &["--dry-run"]);
    assert!(dry.ok, "{dry:?}");
    assert!(
        dry.stdout
            .contains("would remove /etc/pullcred/config.toml"),
        "{dry:?}"
    );
    assert!(
        !dry.stdout.lines().any(|l| l.starts_with("removed")),
        "{dry:?}"
    );
    assert_eq!(
        snapshot(r.path()),
        installed_state,
        "a dry run removes nothing"
    );
    let out = script("uninstall.sh", r.path(), &[]);
    assert!(out.ok, "{out:?}");
    assert_eq!(
        snapshot(r.path()),
        before,
        "uninstall removed the empty secrets dir too"
    );
}

/// The secret files a config names are checked where the node will read them (under
/// DESTDIR) before anything is written; `--secret NAME=FILE` installs one, checked and
/// written as a root-owned copy, so a file of another account's installs; uninstall removes
/// it; a re-run with another `--config` replaces the config the installer wrote.
#[test]
fn secret_files_are_checked_under_the_root_and_secret_installs_them() {
    use std::os::unix::fs::MetadataExt;
    let r = node("kubeadm-debian");
    let before = snapshot(r.path());
    let example = [
        "--example",
        "htpasswd-registry",
        "--kubelet-version",
        "1.35",
    ];
    let out = install_checked(r.path(), &example);
    assert_eq!(out.code, Some(1), "{out:?}");
    for name in ["registry.example.com-team-a", "registry.example.com"] {
        let want =
            format!("password_file: /etc/pullcred/secrets/{name}: No such file or directory");
        assert!(out.stderr.contains(&want), "{want}: {out:?}");
    }
    assert!(out.stderr.contains("nothing was written"), "{out:?}");
    assert!(
        !out.stderr.contains(&r.path().display().to_string()),
        "node paths: {out:?}"
    );
    assert_eq!(snapshot(r.path()), before, "nothing was written");

    // The operator's files, another account's and readable by all: installed as root's 0600.
    let files = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = example.iter().map(|s| s.to_string()).collect();
    for (name, text) in [
        ("registry.example.com-team-a", "team-a-pw\n"),
        ("registry.example.com", "shared-pw\n"),
    ] {
        let file = files.path().join(name);
        fs::write(&file, text).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&file, Some(1000), Some(1000)).unwrap();
        args.push("--secret".into());
        args.push(format!("{name}={}", file.display()));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = install_checked(r.path(), &args);
    assert!(out.ok, "{out:?}");
    for (name, text) in [
        ("registry.example.com-team-a", "team-a-pw\n"),
        ("registry.example.com", "shared-pw\n"),
    ] {
        let path = format!("/etc/pullcred/secrets/{name}");
        assert!(out.stdout.contains(&format!("wrote {path}\n")), "{out:?}");
        let meta = fs::metadata(r.path().join(&path[1..])).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600), "{path}");
        assert_eq!(read(r.path(), &path), text);
        assert!(manifest_line(r.path(), &path).is_some(), "{path} on record");
    }
    // The node's pullcred reads them: the installed config checks clean under the root.
    let home = tempfile::tempdir().unwrap();
    let check = run(
        pullcred(home.path())
            .args(["config", "check", "--root"])
            .arg(r.path())
            .arg(r.path().join("etc/pullcred/config.toml")),
        b"",
    );
    assert_eq!(check.code, Some(0), "{check:?}");

    // Another --config replaces the one the installer wrote, without --force.
    let other = files.path().join("other.toml");
    fs::write(
        &other,
        "[[registry]]\nmatch = [\"other.example.com\"]\nsource = \"docker-config\"\n",
    )
    .unwrap();
    let out = install_checked(
        r.path(),
        &[
            "--config",
            other.to_str().unwrap(),
            "--kubelet-version",
            "1.35",
        ],
    );
    assert!(out.ok, "{out:?}");
    assert_eq!(
        read(r.path(), "/etc/pullcred/config.toml"),
        fs::read_to_string(&other).unwrap()
    );

    // A name that is not a plain file name is refused before anything else.
    for bad in ["../x=/etc/hostname", ".hidden=/etc/hostname", "x"] {
        let out = install_checked(r.path(), &["--secret", bad]);
        assert_eq!(out.code, Some(2), "{bad}: {out:?}");
    }

    let out = script("uninstall.sh", r.path(), &[]);
    assert!(out.ok, "{out:?}");
    assert_eq!(snapshot(r.path()), before, "the secrets went with the rest");
}

/// A run that fails midway (here the provider config's directory is a file, which only the
/// write finds) leaves every file it wrote on record: uninstall.sh undoes them to the byte,
/// and, the cause removed, a re-run finishes without --force.
#[test]
fn an_install_that_fails_midway_is_undone_by_uninstall_or_finished_by_a_rerun() {
    let r = node("kubeadm-debian");
    fs::write(r.path().join("etc/kubernetes"), "in the way\n").unwrap();
    let before = snapshot(r.path());
    let args = ["--example", "quickstart", "--kubelet-version", "1.35"];
    let out = install_checked(r.path(), &args);
    assert!(!out.ok, "{out:?}");
    for path in [
        "/usr/local/libexec/kubelet-credential-providers/pullcred",
        "/usr/local/libexec/kubelet-credential-providers/pullcred-mint",
        "/etc/pullcred/config.toml",
        "/etc/pullcred/demo.password",
    ] {
        assert!(
            out.stdout.contains(&format!("wrote {path}\n")),
            "{path}: {out:?}"
        );
        assert!(
            manifest_line(r.path(), path).is_some(),
            "{path} is on record"
        );
    }
    let undo = script("uninstall.sh", r.path(), &[]);
    assert!(undo.ok, "{undo:?}");
    assert_eq!(
        snapshot(r.path()),
        before,
        "uninstall undid the half install"
    );

    // Again, then the cause removed: the re-run finishes what the first one wrote.
    assert!(!install_checked(r.path(), &args).ok);
    fs::remove_file(r.path().join("etc/kubernetes")).unwrap();
    let out = install_checked(r.path(), &args);
    assert!(out.ok, "{out:?}");
    assert!(
        out.stdout
            .contains("unchanged /usr/local/libexec/kubelet-credential-providers/pullcred\n"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("wrote /etc/kubernetes/credential-provider-config.yaml\n"),
        "{out:?}"
    );
    check_clean(
        r.path(),
        "/etc/kubernetes/credential-provider-config.yaml",
        "/usr/local/libexec/kubelet-credential-providers",
    );
}

/// EKS with AWS's own ECR provider: rules whose identity is the pod's alone, while
/// nodeadm's ECR provider answers the same hosts with the node's role, would hand every pod
/// the node's ECR rights. The installer says so and doctor fails it; `--drop-overlapping`
/// routes those hosts to pullcred alone, after which doctor passes, skipping (not failing)
/// the rule it cannot try without a pod's token.
#[test]
fn eks_per_workload_ecr_rules_fail_doctor_until_routed_to_pullcred_alone() {
    let root = node("eks");
    let r = root.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("per-workload.toml");
    fs::write(
        &config,
        "[[registry]]\nmatch = [\"111122223333.dkr.ecr.us-east-1.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n",
    )
    .unwrap();
    let args = [
        "--config",
        config.to_str().unwrap(),
        "--kubelet-version",
        "1.35",
    ];
    let out = install(r, &args);
    assert!(out.ok, "{out:?}");
    assert!(
        out.stderr.contains("install.sh: warning: ")
            && out
                .stderr
                .contains("every pod gets the other's credentials")
            && out.stderr.contains("--drop-overlapping"),
        "{out:?}"
    );
    assert_eq!(
        provider_names(&read(r, EKS_PROVIDERS)),
        ["pullcred-ecr", "ecr-credential-provider"]
    );
    let image = "111122223333.dkr.ecr.us-east-1.amazonaws.com/team/app:1";
    let doctor =
        |r: &Path| crate::doctor::doctor(r, &["--no-cache", "--kubelet-version", "1.35", image]);
    let out = doctor(r);
    assert_eq!(out.code, Some(1), "{out:?}");
    crate::doctor::line(
        &out,
        "FAIL kubelet config",
        "every pod gets the other's credentials",
    );

    let out = install(r, &[&args[..], &["--drop-overlapping"]].concat());
    assert!(out.ok, "{out:?}");
    assert!(!out.stderr.contains("warning"), "{out:?}");
    assert_eq!(provider_names(&read(r, EKS_PROVIDERS)), ["pullcred-ecr"]);
    let out = doctor(r);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    crate::doctor::line(
        &out,
        &format!("skip image {image}: rule 1 (ecr)"),
        "needs its service account token",
    );
    // A second run keeps it so; uninstall restores nodeadm's routing untouched.
    let out = install(r, &[&args[..], &["--drop-overlapping"]].concat());
    assert!(out.ok && !out.stdout.contains("wrote "), "{out:?}");
    assert!(script("uninstall.sh", r, &[]).ok);
}

/// A proxy is a setting: the `env` an operator puts on pullcred's provider survives a
/// re-run with --force (which keeps the changed file as .bak) and a later plain re-run.
#[test]
fn the_operators_env_on_pullcreds_provider_survives_a_forced_reinstall() {
    let r = node("kubeadm-debian");
    let args = ["--example", "quickstart", "--kubelet-version", "1.35"];
    installed(r.path(), &args);
    let path = "/etc/kubernetes/credential-provider-config.yaml";
    let file = r.path().join(&path[1..]);
    let with_proxy = read(r.path(), path).replace(
        "    defaultCacheDuration:",
        "    env:\n      - name: HTTPS_PROXY\n        value: http://proxy.internal:3128\n    defaultCacheDuration:",
    );
    assert!(with_proxy.contains("HTTPS_PROXY"));
    fs::write(&file, &with_proxy).unwrap();
    let out = install(r.path(), &args);
    assert!(
        !out.ok && out.stderr.contains("--force replaces it"),
        "{out:?}"
    );
    let forced = [&args[..], &["--force"]].concat();
    let out = install(r.path(), &forced);
    assert!(out.ok, "{out:?}");
    assert_eq!(read(r.path(), &format!("{path}.bak")), with_proxy);
    let yaml: serde_json::Value = serde_saphyr::from_str(&read(r.path(), path)).unwrap();
    assert_eq!(
        yaml["providers"][0]["env"],
        serde_json::json!([{"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"}]),
        "{yaml}"
    );
    let again = installed(r.path(), &args);
    assert!(again.contains(&format!("unchanged {path}\n")), "{again}");
}

/// What the installer does with files already there: a config the operator wrote is replaced
/// by `--config` only with --force (kept as .bak, put back by uninstall); a secret it
/// installed may be rotated in place, is left alone by a re-run without `--secret`, and is
/// replaced by another `--secret` without --force; a file the config names beside itself is
/// checked in the node's /etc/pullcred; moving the bin dir on a re-run leaves both on record.
#[test]
fn files_already_there_are_replaced_kept_or_checked_as_the_operator_expects() {
    use std::os::unix::fs::MetadataExt;
    let r = node("kubeadm-debian");
    let before = snapshot(r.path());
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = files.path().join(name);
        fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    // The operator's own config, and a password beside it that the new config names.
    fs::create_dir_all(r.path().join("etc/pullcred")).unwrap();
    fs::write(r.path().join("etc/pullcred/config.toml"), "# mine\n").unwrap();
    fs::write(r.path().join("etc/pullcred/team.password"), "team-pw\n").unwrap();
    fs::set_permissions(
        r.path().join("etc/pullcred/team.password"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let before_ours = snapshot(r.path());
    let config = write(
        "new.toml",
        "[[registry]]\nmatch = [\"team.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"team.password\"\n[[registry]]\nmatch = [\"hub.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/etc/pullcred/secrets/hub\"\n",
    );
    let secret_a = write("a", "hub-a\n");
    let base = ["--config", config.as_str(), "--kubelet-version", "1.35"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run_with = |extra: &[&str]| {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        install_checked(r.path(), &args)
    };
    let hub_a = format!("hub={secret_a}");
    // The relative password is the node's, and others may write it: refused, by its name.
    let out = run_with(&["--secret", &hub_a, "--force"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("password_file: /etc/pullcred/team.password: refusing a secret file writable by group or others (mode 0666)"),
        "{out:?}"
    );
    assert_eq!(snapshot(r.path()), before_ours);
    fs::set_permissions(
        r.path().join("etc/pullcred/team.password"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before_ours = snapshot(r.path());
    // The operator's config: not replaced without --force, not kept while another is used.
    let out = run_with(&["--secret", &hub_a]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "/etc/pullcred/config.toml exists and is not pullcred's; --force replaces it"
        ),
        "{out:?}"
    );
    let out = run_with(&["--secret", &hub_a, "--force"]);
    assert!(out.ok, "{out:?}");
    assert_eq!(read(r.path(), "/etc/pullcred/config.toml.bak"), "# mine\n");
    assert_eq!(read(r.path(), "/etc/pullcred/secrets/hub"), "hub-a\n");

    // Rotated in place: a re-run without --secret leaves it; another --secret replaces it.
    let hub = r.path().join("etc/pullcred/secrets/hub");
    fs::write(&hub, "hub-b\n").unwrap();
    let out = run_with(&[]);
    assert!(out.ok, "{out:?}");
    assert_eq!(read(r.path(), "/etc/pullcred/secrets/hub"), "hub-b\n");
    let secret_c = write("c", "hub-c\n");
    let out = run_with(&["--secret", &format!("hub={secret_c}")]);
    assert!(out.ok, "{out:?}");
    assert_eq!(read(r.path(), "/etc/pullcred/secrets/hub"), "hub-c\n");
    assert!(
        !r.path().join("etc/pullcred/secrets/hub.bak").exists(),
        "no copy of a secret kept"
    );
    assert_eq!(fs::metadata(&hub).unwrap().mode() & 0o777, 0o600);

    // Another bin dir: the old one's binaries stay on record, and uninstall takes both.
    let out = run_with(&["--bin-dir", "/opt/cp"]);
    assert!(out.ok, "{out:?}");
    fs::write(&hub, "hub-d\n").unwrap();
    let out = script("uninstall.sh", r.path(), &["--dry-run"]);
    assert!(out.ok, "{out:?}");
    let out = script("uninstall.sh", r.path(), &[]);
    assert!(out.ok, "{out:?}");
    fs::remove_file(r.path().join("etc/pullcred/config.toml.bak")).unwrap();
    assert_eq!(
        snapshot(r.path()),
        before_ours,
        "the operator's files, as they were"
    );
    assert_ne!(before, before_ours);
}
