//! The local user against `pullcred doctor`, which runs as root and reads the file the
//! kubelet's flags name: a process of theirs called `kubelet` whose flags name a root-only
//! file, a root process that only calls itself kubelet, a flag file of theirs. Doctor believes
//! none of them, says why in a `warn` line, reads the flavour's (root's) files instead, and
//! never shows anything of the file named. Whatever file the believed flags name, doctor
//! describes it by file, line and field, never by its content.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::{OTHER_UID, Victim, give_to_other, plant_file, plant_symlink};
use crate::doctor::{FLAGS, doctor, kubelet, kubelet_binary, line, node, process};
use crate::support::{Run, pullcred, run};

/// A root-only file in /etc/shadow's format: lines ending in `:` are YAML mapping keys, so
/// a kubelet config check that names unknown keys would print them.
const SHADOW: &str = "root:$6$s3cret-shadow-hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
/// Pieces of SHADOW; none may appear in doctor's output.
const PIECES: [&str; 5] = ["s3cret", "$6$", "19000", "daemon", "root:"];

/// Flags naming `/etc/shadow` (in the node's root) as the kubelet's provider config.
const SHADOW_FLAGS: [&str; 2] = [
    "--image-credential-provider-config=/etc/shadow",
    "--image-credential-provider-bin-dir=/etc",
];

fn assert_nothing_of(out: &Run, pieces: &[&str]) {
    for piece in pieces {
        assert!(
            !out.stdout.contains(piece) && !out.stderr.contains(piece),
            "{piece:?} printed: {out:#?}"
        );
    }
}

/// The flags came from the flavour's files (pullcred's, as installed), not the process.
fn assert_flags_from_the_flavours_files(out: &Run) {
    assert_eq!(out.code, Some(0), "{out:#?}");
    line(
        out,
        "ok   kubelet flags (no running kubelet; its flavour's files (",
        "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml",
    );
    line(out, "ok   kubelet config", "1 of them pullcred's");
    assert!(
        !out.stdout.contains("/etc/shadow"),
        "the process's flags are not used: {}",
        out.stdout
    );
}

/// A node with a root-only /etc/shadow.
fn node_with_shadow() -> (tempfile::TempDir, Victim) {
    let root = node();
    let victim = Victim::new(&root.path().join("etc/shadow"), SHADOW);
    (root, victim)
}

/// Takes away what a case added to a node: its processes and executables (installing pullcred
/// copies two large binaries, so the cases of a test share one node).
fn reset(root: &Path) {
    for dir in ["proc", "usr/bin", "usr/local/bin", "home"] {
        let _ = fs::remove_dir_all(root.join(dir));
    }
}

/// The other user's copy of a kubelet executable, at /home/user/kubelet in the root.
fn users_kubelet(root: &Path) -> &'static str {
    let home = root.join("home/user");
    fs::create_dir_all(&home).unwrap();
    give_to_other(&home);
    plant_file(&home.join("kubelet"), "#!/bin/sh\n", 0o755);
    "/home/user/kubelet"
}

#[test]
fn a_users_process_called_kubelet_is_not_believed_and_the_file_it_names_never_shown() {
    let (root, victim) = node_with_shadow();
    let r = root.path();
    // Their own copy, and the node's real kubelet binary run by them with their flags.
    let copy = users_kubelet(r);
    let mut argv = vec!["kubelet"];
    argv.extend(SHADOW_FLAGS);
    process(r, 4000, OTHER_UID, Some(copy), &argv);
    let real = kubelet_binary(r);
    argv[0] = real;
    process(r, 4001, OTHER_UID, Some(real), &argv);
    let out = doctor(r, &["--no-cache"]);
    for pid in [4000, 4001] {
        line(
            &out,
            &format!("warn process {pid} is called kubelet but is not believed"),
            "it runs as uid 1000, not root; its flags are ignored",
        );
    }
    assert_flags_from_the_flavours_files(&out);
    assert_nothing_of(&out, &PIECES);
    victim.check();
}

#[test]
fn a_process_with_any_uid_but_roots_is_not_believed() {
    // (status text, who owns its /proc entry, why not)
    let cases = [
        // A setuid-root program started as `kubelet` keeps the user's real uid (and, not
        // dumpable, its /proc entry is root's).
        (
            Some("Name:\tkubelet\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n"),
            0,
            "it runs as uid 1000, not root",
        ),
        (
            Some("Name:\tkubelet\nUid:\t0\t0\t0\t1000\n"),
            0,
            "it runs as uid 1000, not root",
        ),
        (
            Some("Name:\tkubelet\nUid:\t0\t0\t0\t0\n"),
            OTHER_UID,
            "its /proc entry is owned by uid 1000, not root",
        ),
        (Some("Name:\tkubelet\n"), 0, "its status has no Uid line"),
        (None, 0, "no readable status"),
    ];
    let (root, victim) = node_with_shadow();
    let r = root.path();
    for (status, owner, why) in cases {
        reset(r);
        let exe = kubelet_binary(r);
        let mut argv = vec![exe];
        argv.extend(SHADOW_FLAGS);
        process(r, 4242, 0, Some(exe), &argv);
        let dir = r.join("proc/4242");
        match status {
            Some(text) => fs::write(dir.join("status"), text).unwrap(),
            None => fs::remove_file(dir.join("status")).unwrap(),
        }
        std::os::unix::fs::lchown(&dir, Some(owner), Some(owner)).unwrap();
        let out = doctor(r, &["--no-cache"]);
        line(
            &out,
            "warn process 4242 is called kubelet but is not believed",
            &format!("{why}; its flags are ignored"),
        );
        assert_flags_from_the_flavours_files(&out);
        assert_nothing_of(&out, &PIECES);
        victim.check();
    }
}

#[test]
fn a_root_process_whose_executable_is_not_a_real_kubelet_is_not_believed() {
    // (sets up the root, the exe link's target, why not)
    type Setup = fn(&Path);
    let none: Setup = |_| {};
    let cases: [(Setup, Option<&str>, &str); 8] = [
        (
            |r| {
                users_kubelet(r);
            },
            Some("/home/user/kubelet"),
            "its executable /home/user/kubelet is owned by uid 1000 (want 0)",
        ),
        (
            none,
            Some("/etc"),
            "its executable /etc is not a regular file",
        ),
        (
            |r| {
                kubelet_binary(r);
                let path = r.join("usr/bin/kubelet");
                fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
            },
            Some("/usr/bin/kubelet"),
            "its executable /usr/bin/kubelet is not executable",
        ),
        (
            |r| {
                kubelet_binary(r);
                let path = r.join("usr/bin/kubelet");
                fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
            },
            Some("/usr/bin/kubelet"),
            "its executable /usr/bin/kubelet is writable by group or others (mode 0777)",
        ),
        (
            |r| {
                kubelet_binary(r);
                fs::copy(r.join("usr/bin/kubelet"), r.join("usr/bin/python3")).unwrap();
            },
            Some("/usr/bin/python3"),
            "its executable /usr/bin/python3 is not named kubelet",
        ),
        (
            |r| {
                kubelet_binary(r);
            },
            Some("/usr/bin/kubelet (deleted)"),
            "its executable /usr/bin/kubelet (deleted) was deleted or replaced since it started",
        ),
        // A link in the root to a file outside it is not followed.
        (
            |r| {
                fs::create_dir_all(r.join("usr/local/bin")).unwrap();
                plant_symlink(Path::new("/bin/sh"), &r.join("usr/local/bin/kubelet"));
            },
            Some("/usr/local/bin/kubelet"),
            "its executable /usr/local/bin/kubelet is not a regular file",
        ),
        (none, None, "its executable cannot be read"),
    ];
    let (root, victim) = node_with_shadow();
    let r = root.path();
    for (setup, exe, why) in cases {
        reset(r);
        setup(r);
        let mut argv = vec!["/usr/bin/kubelet"];
        argv.extend(SHADOW_FLAGS);
        process(r, 4242, 0, exe, &argv);
        let out = doctor(r, &["--no-cache"]);
        line(
            &out,
            "warn process 4242 is called kubelet but is not believed",
            why,
        );
        assert_flags_from_the_flavours_files(&out);
        assert_nothing_of(&out, &PIECES);
        victim.check();
    }
}

#[test]
fn a_flag_file_someone_else_can_write_is_not_read() {
    let (root, victim) = node_with_shadow();
    let r = root.path();
    // Read after the kubeadm drop-ins, its flags would win.
    let dropin = r.join("etc/systemd/system/kubelet.service.d/99-user.conf");
    plant_file(
        &dropin,
        &format!(
            "[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS={} {}\"\n",
            SHADOW_FLAGS[0], SHADOW_FLAGS[1]
        ),
        0o644,
    );
    let out = doctor(r, &["--no-cache"]);
    line(
        &out,
        "warn /etc/systemd/system/kubelet.service.d/99-user.conf",
        "owned by uid 1000 (want 0): not read",
    );
    assert_flags_from_the_flavours_files(&out);
    assert_nothing_of(&out, &PIECES);
    victim.check();
}

#[test]
fn a_kubelet_config_of_garbage_is_named_by_file_line_and_field_never_by_content() {
    const FILE: &str = "/etc/kubernetes/credential-provider-config.yaml";
    // (the config's text, a line doctor prints for it)
    let cases: [(&str, &str); 7] = [
        // The believed kubelet's flags name a shadow file.
        (SHADOW, ": line 2: an unknown field"),
        (
            "kind: s3cret-kind\n",
            ": line 1: kind: not CredentialProviderConfig",
        ),
        (
            "providers: [s3cret\n",
            ": line 1: not YAML (nor JSON): a syntax error at column",
        ),
        (
            "a: b\na: s3cret\n",
            ": line 2: not YAML (nor JSON): a syntax error at column",
        ),
        ("\"s3cret\tx\n", ": line 1: not YAML (nor JSON)"),
        (
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: s3cret/name\n    matchImages: [\"https://s3cret.example.com\", \"s3cret..example.com\"]\n    defaultCacheDuration: s3cret\n    apiVersion: s3cret\n    s3cretKey: 1\n",
            ": line 6: providers[0].defaultCacheDuration: not a Go duration",
        ),
        (
            "{\"apiVersion\": \"kubelet.config.k8s.io/v1\", \"kind\": \"CredentialProviderConfig\",\n \"providers\": [{\"name\": \"s3cret\", \"apiVersion\": \"credentialprovider.kubelet.k8s.io/v1\",\n  \"matchImages\": [\"s3cret.example.com\"], \"defaultCacheDuration\": \"5m\"}]}\n",
            ": line 2: providers[0].name: no file of this name in the bin dir",
        ),
    ];
    let root = node();
    let r = root.path();
    kubelet(r, &FLAGS);
    for (text, want) in cases {
        let config = r.join(FILE.trim_start_matches('/'));
        fs::write(&config, text).unwrap();
        let out = doctor(r, &["--no-cache"]);
        assert_eq!(out.code, Some(1), "{out:#?}");
        line(&out, &format!("FAIL kubelet config {FILE}"), want);
        assert_nothing_of(&out, &PIECES);
    }
}

/// doctor on this machine's own /proc (its root is /), with an empty config in `dir`: no
/// rule, no image, nothing minted.
fn doctor_on_this_node(dir: &Path) -> Run {
    let config = dir.join("config.toml");
    fs::write(&config, "").unwrap();
    run(
        pullcred(dir)
            .arg("--config")
            .arg(&config)
            .args(["doctor", "--no-cache"]),
        b"",
    )
}

/// A child process, killed (and reaped) when dropped.
struct Kill(Child);

impl Kill {
    /// `cmd` started waiting on a line of its stdin (a pipe kept open), its output dropped.
    fn spawn(cmd: &mut Command) -> Self {
        Kill(
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_users_process_called_kubelet_is_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let victim = Victim::new(&d.join("shadow"), SHADOW);
    // The user's copy of a program, named kubelet: a shell waiting on a line (a builtin, so
    // no child outlives the test), its flags naming the root-only file.
    let exe = d.join("kubelet");
    fs::copy("/bin/sh", &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    give_to_other(&exe);
    let config_flag = format!(
        "--image-credential-provider-config={}",
        victim.path().display()
    );
    let bin_flag = format!("--image-credential-provider-bin-dir={}", d.display());
    let child = Kill::spawn(
        Command::new(&exe)
            .args(["-c", "read line", "kubelet", &config_flag, &bin_flag])
            .uid(OTHER_UID)
            .gid(OTHER_UID),
    );
    let pid = child.0.id();
    let out = doctor_on_this_node(d);
    line(
        &out,
        &format!("warn process {pid} is called kubelet but is not believed"),
        "it runs as uid 1000, not root; its flags are ignored",
    );
    assert!(
        !out.stdout.contains(&victim.path().display().to_string()),
        "{}",
        out.stdout
    );
    assert_nothing_of(&out, &PIECES);
    drop(child);
    victim.check();
}

/// A container's root process called kubelet passes every check a host kubelet does (its
/// uids are 0, its executable a root-owned file named kubelet in the image), but its
/// executable is not the node's: doctor never runs it to ask its version (that would run
/// the container's program as the host's root), and says so.
#[test]
fn a_kubelet_in_another_mount_namespace_is_never_run() {
    crate::support::require_tool("unshare");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    let exe = d.join("kubelet");
    fs::copy("/bin/sh", &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let child = Kill::spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(&exe)
            .args(["-c", "read line"]),
    );
    // unshare execs the kubelet in place: same pid, once its namespace is made.
    let pid = child.0.id();
    let exe_link = format!("/proc/{pid}/exe");
    for _ in 0..200 {
        if fs::read_link(&exe_link).is_ok_and(|t| t == exe) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(fs::read_link(&exe_link).unwrap(), exe, "the kubelet runs");
    let out = doctor_on_this_node(d);
    line(
        &out,
        &format!("warn kubelet version: process {pid} runs in another mount namespace"),
        "its executable is not run",
    );
    assert!(
        !out.stdout.contains("the running kubelet's"),
        "{}",
        out.stdout
    );
    drop(child);
}
