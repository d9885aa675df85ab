//! `pullcred doctor` against fake node roots (a kubeadm node's files from
//! tests/fixtures/nodes, installed by install/install.sh, and a fake `/proc` with or without
//! a kubelet): a healthy node, and each silent failure docs/troubleshooting.md's table
//! lists, with the line doctor prints for it. The local user's moves against doctor (a
//! process of theirs called `kubelet`) and what doctor shows of the files it reads are in
//! tests/local_user/doctor.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::support::{Run, pullcred, run, secret_file};

pub(crate) const FLAGS: [&str; 2] = [
    "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml",
    "--image-credential-provider-bin-dir=/usr/local/libexec/kubelet-credential-providers",
];

/// A kubeadm node with pullcred installed for a static rule whose secret is in the root.
pub(crate) fn node() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nodes/kubeadm-debian");
    let cp = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(r)
        .status()
        .unwrap();
    assert!(cp.success());
    secret_file(&r.join("secrets/registry.pw"), "s3cret-registry-pw");
    let config = r.join("config.toml");
    fs::write(
        &config,
        format!(
            "[[registry]]\nmatch = [\"registry.example.com\", \"*.corp.example.com\"]\nsource = \"static\"\nusername = \"puller\"\npassword_file = \"{}\"\n",
            r.join("secrets/registry.pw").display()
        ),
    )
    .unwrap();
    let out = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install/install.sh"))
        // The config names the secret by its path outside the root: not checked under it.
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_pullcred"),
            "--no-files",
            "--config",
        ])
        .arg(&config)
        .env("DESTDIR", r)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    root
}

/// A process in the root's `/proc` as the kernel shows it: `cmdline` (`argv`), `status`
/// with every uid `uid`, the entry owned by `uid`, and `exe` a link to `exe` (a path in the
/// root), if any.
pub(crate) fn process(root: &Path, pid: u32, uid: u32, exe: Option<&str>, argv: &[&str]) {
    let dir = root.join(format!("proc/{pid}"));
    fs::create_dir_all(&dir).unwrap();
    let mut cmdline = Vec::new();
    for a in argv {
        cmdline.extend_from_slice(a.as_bytes());
        cmdline.push(0);
    }
    fs::write(dir.join("cmdline"), cmdline).unwrap();
    let name = Path::new(argv[0]).file_name().unwrap().to_string_lossy();
    // Started at boot (0 ticks after it): /proc/stat's btime says when that was.
    fs::write(
        dir.join("stat"),
        format!("{pid} ({name}) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 0 1000 10\n"),
    )
    .unwrap();
    fs::write(
        dir.join("status"),
        format!(
            "Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t1\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
        ),
    )
    .unwrap();
    if let Some(exe) = exe {
        std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
    }
    for entry in ["", "cmdline", "status", "stat", "exe"] {
        let _ = std::os::unix::fs::lchown(dir.join(entry), Some(uid), Some(uid));
    }
}

/// The kubelet's executable, root's, at /usr/bin/kubelet in the root, saying it is 1.35
/// (unless a test wrote another first).
pub(crate) fn kubelet_binary(root: &Path) -> &'static str {
    if !root.join("usr/bin/kubelet").exists() {
        kubelet_binary_saying(root, "Kubernetes v1.35.0");
    }
    "/usr/bin/kubelet"
}

/// The kubelet's executable at /usr/bin/kubelet, printing `version` for `--version` as
/// the kubelet does.
pub(crate) fn kubelet_binary_saying(root: &Path, version: &str) {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(
        root.join("usr/bin/kubelet"),
        format!("#!/bin/sh\n[ \"$1\" = --version ] && echo '{version}'\n"),
    )
    .unwrap();
    fs::set_permissions(
        root.join("usr/bin/kubelet"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// The machine booted (and every fake process started) at `at`, as `/proc/stat` says.
pub(crate) fn booted(root: &Path, at: std::time::SystemTime) {
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    fs::write(
        root.join("proc/stat"),
        format!("cpu  1 2 3 4\nbtime {secs}\nprocesses 9\n"),
    )
    .unwrap();
}

/// A running kubelet (pid 4242, root's, from /usr/bin/kubelet) with `args` in the root's
/// `/proc`.
pub(crate) fn kubelet(root: &Path, args: &[&str]) {
    kubelet_at(root, 4242, args);
}

/// The same at `pid`.
pub(crate) fn kubelet_at(root: &Path, pid: u32, args: &[&str]) {
    let exe = kubelet_binary(root);
    let mut argv = vec![exe, "--config=/var/lib/kubelet/config.yaml"];
    argv.extend_from_slice(args);
    process(root, pid, 0, Some(exe), &argv);
    // Another process, not the kubelet.
    process(root, 1, 0, None, &["/sbin/init"]);
    // Started after everything the test wrote so far (a second on: start times are whole
    // seconds here).
    if !root.join("proc/stat").exists() {
        booted(
            root,
            std::time::SystemTime::now() + std::time::Duration::from_secs(1),
        );
    }
}

pub(crate) fn doctor(root: &Path, args: &[&str]) -> Run {
    let mut cmd = pullcred(root);
    cmd.arg("doctor").arg("--root").arg(root).args(args);
    run(&mut cmd, b"")
}

pub(crate) fn line<'a>(out: &'a Run, status: &str, has: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(status) && l.contains(has))
        .unwrap_or_else(|| panic!("want a {status:?} line with {has:?} in:\n{}", out.stdout))
}

#[test]
fn a_healthy_node_checks_ok_and_answers_without_showing_the_secret() {
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    let out = doctor(r, &["registry.example.com/team/app:1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    line(
        &out,
        "ok   kubelet flags (the running kubelet)",
        "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml",
    );
    line(
        &out,
        "ok   bin dir",
        "/usr/local/libexec/kubelet-credential-providers",
    );
    line(
        &out,
        "ok   kubelet config",
        "1 provider(s), 1 of them pullcred's",
    );
    line(
        &out,
        "ok   image registry.example.com/team/app:1",
        "as \"puller\", cacheDuration",
    );
    assert!(
        !out.stdout.contains("FAIL") && !out.stdout.contains("warn"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("s3cret-registry-pw"));
    // Without images: one per rule without wildcards, the others named.
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "ok   image registry.example.com/doctor:latest",
        "as \"puller\"",
    );
}

#[test]
fn the_kubelet_units_process_is_preferred_to_another_root_kubelet() {
    let root = node();
    let r = root.path();
    // A lower pid, root's too, without the flags: not the unit's.
    kubelet_at(r, 300, &[]);
    kubelet_at(r, 4242, &FLAGS);
    let cgroup = r.join("sys/fs/cgroup/system.slice/kubelet.service");
    fs::create_dir_all(&cgroup).unwrap();
    fs::write(cgroup.join("cgroup.procs"), "4242\n4250\n").unwrap();
    let out = doctor(r, &["--no-cache"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    line(
        &out,
        "ok   kubelet flags (the running kubelet)",
        "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml",
    );
    assert!(!out.stdout.contains("warn"), "{}", out.stdout);
}

#[test]
fn without_a_running_kubelet_the_flavours_files_are_read() {
    let root = node();
    let out = doctor(root.path(), &["--no-cache"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    line(
        &out,
        "ok   kubelet flags (no running kubelet; its flavour's files (/etc/default/kubelet",
        "--image-credential-provider-bin-dir=",
    );
    assert!(
        !root.path().join("cache").exists(),
        "--no-cache wrote nothing"
    );
}

#[test]
fn each_silent_failure_is_named_with_its_fix() {
    // The kubelet runs without the flags.
    let root = node();
    let r = root.path();
    kubelet(r, &[]);
    let out = doctor(r, &[]);
    assert_eq!(out.code, Some(1));
    line(
        &out,
        "FAIL kubelet flags (the running kubelet)",
        "no --image-credential-provider-config, --image-credential-provider-bin-dir: the kubelet asks no credential provider; run install/install.sh",
    );

    // The binary is not in the bin dir (or the provider's name is not the binary's).
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    fs::rename(
        r.join("usr/local/libexec/kubelet-credential-providers/pullcred"),
        r.join("usr/local/libexec/kubelet-credential-providers/pullcred-v1"),
    )
    .unwrap();
    let out = doctor(r, &[]);
    assert_eq!(out.code, Some(1));
    line(
        &out,
        "FAIL kubelet config /etc/kubernetes/credential-provider-config.yaml: line ",
        "providers[0].name: no file of this name in the bin dir (the name must be the binary's)",
    );

    // matchImages' label count: `*.corp.example.com` does not cover a.b.corp.example.com.
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    let out = doctor(r, &["--no-cache", "a.b.corp.example.com/app:1"]);
    assert_eq!(out.code, Some(1));
    line(
        &out,
        "FAIL image a.b.corp.example.com/app:1",
        "no pullcred provider's matchImages covers it: the kubelet pulls it anonymously",
    );

    // A cache dir others can write.
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    fs::create_dir(r.join("cache")).unwrap();
    fs::set_permissions(r.join("cache"), fs::Permissions::from_mode(0o777)).unwrap();
    let out = doctor(r, &["--no-cache"]);
    assert_eq!(out.code, Some(1));
    line(&out, "FAIL cache dir", "mode 0777: chmod 0700 it");

    // A service-account rule whose provider sends no token (tokenAttributes, the feature
    // gate and the nodes' RBAC for the audience are the kubelet's side).
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    fs::write(
        r.join("etc/pullcred/config.toml"),
        "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"passthrough\"\n",
    )
    .unwrap();
    let out = doctor(r, &["--no-cache", "registry.example.com/app:1"]);
    assert_eq!(out.code, Some(1));
    line(
        &out,
        "FAIL kubelet config",
        "rule 1 (passthrough) answers with the service account token, which the kubelet drops unless cacheType is Token",
    );
    // The image itself is not tried: doctor has no pod's token to send.
    line(
        &out,
        "skip image registry.example.com/app:1: rule 1 (passthrough)",
        "needs its service account token",
    );
}

/// doctor predicts the kubelet's routing with the kubelet's own matching: a provider whose
/// `matchImages` is `registry.example.com/team` is asked for `team-b/app` too (a raw string
/// prefix, where pullcred's rules take whole segments), so that image is not "anonymous";
/// an image on another host still is.
#[test]
fn routing_is_predicted_as_the_kubelet_matches() {
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    let provider_config = r.join("etc/kubernetes/credential-provider-config.yaml");
    let text = fs::read_to_string(&provider_config).unwrap();
    let narrowed = text.replace("- registry.example.com\n", "- registry.example.com/team\n");
    assert_ne!(
        narrowed, text,
        "the provider routes registry.example.com:\n{text}"
    );
    fs::write(&provider_config, narrowed).unwrap();
    let out = doctor(r, &["--no-cache", "registry.example.com/team-b/app:1"]);
    assert!(
        !out.stdout.contains("pulls it anonymously"),
        "team-b/app is routed by the raw prefix: {}",
        out.stdout
    );
    line(
        &out,
        "ok   image registry.example.com/team-b/app:1",
        "as \"puller\"",
    );
    let out = doctor(r, &["--no-cache", "registry.example.com/other/app:1"]);
    line(
        &out,
        "FAIL image registry.example.com/other/app:1",
        "no pullcred provider's matchImages covers it",
    );
}

/// The kubelet version doctor checks the provider config for is the node's: what the
/// running kubelet's executable says, else the flavour's kubelet binary (root's, writable
/// by no one else), else the newest with a `warn`; each finding says which version it is for.
#[test]
fn the_provider_config_is_checked_for_the_nodes_kubelet_version() {
    let root = node();
    let r = root.path();
    // A provider with 1.34's cacheType, on a 1.33 kubelet: the kubelet refuses to start.
    let provider_config = r.join("etc/kubernetes/credential-provider-config.yaml");
    let text = fs::read_to_string(&provider_config).unwrap();
    fs::write(
        &provider_config,
        format!("{text}    tokenAttributes:\n      serviceAccountTokenAudience: a\n      requireServiceAccount: false\n      cacheType: ServiceAccount\n"),
    )
    .unwrap();
    kubelet_binary_saying(r, "Kubernetes v1.33.2");
    kubelet(r, &FLAGS);
    let out = doctor(r, &["--no-cache"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    line(
        &out,
        "ok   kubelet version 1.33",
        "(the running kubelet's /usr/bin/kubelet --version)",
    );
    line(
        &out,
        "FAIL kubelet config /etc/kubernetes/credential-provider-config.yaml",
        "cacheType: unknown to the kubelet of Kubernetes 1.33",
    );
    // The same file on 1.35: valid.
    kubelet_binary_saying(r, "Kubernetes v1.35.0");
    let out = doctor(r, &["--no-cache"]);
    assert!(!out.stdout.contains("cacheType"), "{}", out.stdout);
    line(
        &out,
        "ok   kubelet config",
        "as the kubelet of Kubernetes 1.35 reads it",
    );
    // Named by the operator.
    let out = doctor(r, &["--no-cache", "--kubelet-version", "1.33"]);
    line(&out, "ok   kubelet version 1.33 (--kubelet-version)", "");
    line(
        &out,
        "FAIL kubelet config",
        "cacheType: unknown to the kubelet of Kubernetes 1.33",
    );

    // No kubelet running: the flavour's binary; k3s's embeds the kubelet.
    fs::remove_dir_all(r.join("proc")).unwrap();
    kubelet_binary_saying(r, "Kubernetes v1.34.1");
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "ok   kubelet version 1.34 (/usr/bin/kubelet --version)",
        "",
    );
    fs::remove_file(r.join("usr/bin/kubelet")).unwrap();
    fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    fs::write(
        r.join("usr/local/bin/k3s"),
        "#!/bin/sh\necho 'k3s version v1.33.1+k3s1 (e8c7a4d3)'\necho 'go version go1.24.2'\n",
    )
    .unwrap();
    fs::set_permissions(
        r.join("usr/local/bin/k3s"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "ok   kubelet version 1.33 (/usr/local/bin/k3s --version)",
        "",
    );
    // One its group may write is not run; one that never answers is given up on.
    fs::set_permissions(
        r.join("usr/local/bin/k3s"),
        fs::Permissions::from_mode(0o775),
    )
    .unwrap();
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "warn /usr/local/bin/k3s",
        "writable by group or others (mode 0775): not run",
    );
    line(
        &out,
        "warn kubelet version unknown",
        "checked as the kubelet of Kubernetes 1.35 reads it",
    );
    fs::write(r.join("usr/local/bin/k3s"), "#!/bin/sh\nexec sleep 60\n").unwrap();
    fs::set_permissions(
        r.join("usr/local/bin/k3s"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "warn kubelet version: /usr/local/bin/k3s --version",
        "no answer within 5s",
    );
}

/// The kubelet reads its provider config when it starts: one changed since is not what it
/// runs, and doctor says to restart it. The bin dir, pullcred's binaries and the provider
/// config are what the kubelet runs as root and believes: each must be root's and writable
/// by no one else.
#[test]
fn a_config_the_kubelet_has_not_read_and_files_others_may_write_are_named() {
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    // The kubelet started an hour ago; the install wrote the config just now.
    booted(
        r,
        std::time::SystemTime::now() - std::time::Duration::from_secs(3600),
    );
    let out = doctor(r, &["--no-cache"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    line(
        &out,
        "FAIL kubelet config /etc/kubernetes/credential-provider-config.yaml: changed after the running kubelet started",
        "restart the kubelet",
    );
    // Restarted: nothing to say.
    booted(
        r,
        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
    );
    let out = doctor(r, &["--no-cache"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("restart"), "{}", out.stdout);

    let bin = r.join("usr/local/libexec/kubelet-credential-providers");
    for (path, mode, owner) in [
        (bin.clone(), 0o775, 0),
        (bin.join("pullcred"), 0o755, 1000),
        (bin.join("pullcred-mint"), 0o757, 0),
        (
            r.join("etc/kubernetes/credential-provider-config.yaml"),
            0o664,
            0,
        ),
    ] {
        let meta = fs::metadata(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&path, Some(owner), None).unwrap();
        let out = doctor(r, &["--no-cache"]);
        assert_eq!(out.code, Some(1), "{}: {out:?}", path.display());
        let shown = format!("FAIL /{}: ", path.strip_prefix(r).unwrap().display());
        let why = if owner != 0 {
            "owned by uid 1000".to_string()
        } else {
            format!("writable by group or others (mode {mode:04o})")
        };
        line(
            &out,
            &format!("{shown}{why}"),
            "chown root and chmod go-w it",
        );
        fs::set_permissions(&path, meta.permissions()).unwrap();
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    }
}
