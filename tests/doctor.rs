//! `pullcred doctor` against fake node roots (a kubeadm node's files from
//! tests/fixtures/nodes, installed by install/install.sh, and a fake `/proc` with or without
//! a kubelet): a healthy node, and each silent failure the README's troubleshooting table
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
        .args(["--binary", env!("CARGO_BIN_EXE_pullcred"), "--config"])
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
    for entry in ["", "cmdline", "status", "exe"] {
        let _ = std::os::unix::fs::lchown(dir.join(entry), Some(uid), Some(uid));
    }
}

/// The kubelet's executable, root's, at /usr/bin/kubelet in the root.
pub(crate) fn kubelet_binary(root: &Path) -> &'static str {
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::write(root.join("usr/bin/kubelet"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        root.join("usr/bin/kubelet"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    "/usr/bin/kubelet"
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
    line(
        &out,
        "FAIL image registry.example.com/app:1",
        "the request has no service account token",
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
    let narrowed = text.replace("\"registry.example.com\"", "\"registry.example.com/team\"");
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
