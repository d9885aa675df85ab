//! The local user against install/install.sh and install/uninstall.sh, which run as root:
//! a symlink, FIFO or hard link where the installer writes (the `.bak` of `--force`, the
//! binaries, the kubelet's files, the manifest), a directory on the way that the user owns or
//! may write, and a manifest naming paths the installer never manages. A root-only victim
//! outside the install root comes out unchanged, and a refused run writes nothing at all.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use wait_timeout::ChildExt;

use super::{Victim, give_to_other, plant_fifo, plant_symlink};
use crate::install::{Out, names, node_at, script, script_cmd, snapshot, stub_build};

const BIN: &str = "/usr/local/libexec/kubelet-credential-providers";
const PROVIDER: &str = "/etc/kubernetes/credential-provider-config.yaml";
const MANIFEST: &str = "/var/lib/pullcred/install/manifest";

/// A node's root in a temporary directory, with a root-only victim beside it (outside the
/// root) and a quick build to install.
struct Node {
    parent: tempfile::TempDir,
    root: PathBuf,
    victim: Victim,
    build: tempfile::TempDir,
}

impl Node {
    fn new(flavour: &str) -> Self {
        let parent = tempfile::tempdir().unwrap();
        let root = parent.path().join("root");
        node_at(flavour, &root);
        let victim = Victim::new(&parent.path().join("victim"), "root's secret\n");
        Node {
            parent,
            root,
            victim,
            build: stub_build("v1"),
        }
    }

    /// `path` (absolute on the node) under the root.
    fn at(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// install.sh with this node's build and `args`, killed if it runs over 60 s (a FIFO
    /// opened for reading would block it forever).
    fn install(&self, args: &[&str]) -> Out {
        let binary = self.build.path().join("pullcred");
        let mut all = vec![
            "--binary",
            binary.to_str().unwrap(),
            "--example",
            "htpasswd-registry",
            "--no-files",
        ];
        all.extend_from_slice(args);
        let mut child = script_cmd("install.sh", &self.root, &all)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if child
            .wait_timeout(Duration::from_secs(60))
            .unwrap()
            .is_none()
        {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("install.sh {args:?} still running after 60 s");
        }
        child.wait_with_output().unwrap().into()
    }

    fn installed(&self, args: &[&str]) {
        let out = self.install(args);
        assert!(out.ok, "{out:?}");
    }

    fn uninstall(&self, args: &[&str]) -> Out {
        script("uninstall.sh", &self.root, args)
    }

    /// Nothing beside the root but the victim, and the victim unchanged.
    fn check_outside(&self) {
        assert_eq!(names(self.parent.path()), ["root", "victim"]);
        self.victim.check();
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).unwrap().is_symlink()
}

fn refused(out: &Out, want: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(want), "want {want:?}: {out:?}");
}

#[test]
fn force_never_writes_a_backup_through_a_planted_symlink() {
    // pullcred's own file, changed by an operator since: --force would keep it as .bak.
    let node = Node::new("kubeadm-debian");
    node.installed(&[]);
    let provider = node.at(PROVIDER);
    let changed = format!(
        "{}# an operator's note\n",
        fs::read_to_string(&provider).unwrap()
    );
    fs::write(&provider, &changed).unwrap();
    let bak = node.at(&format!("{PROVIDER}.bak"));
    plant_symlink(node.victim.path(), &bak);
    let before = snapshot(&node.root);
    refused(
        &node.install(&["--force"]),
        &format!("{PROVIDER}.bak is a symbolic link"),
    );
    node.check_outside();
    assert_eq!(snapshot(&node.root), before, "nothing written");
    assert!(is_symlink(&bak));

    // A file of the same name that is not pullcred's: the same.
    let node = Node::new("systemd");
    let dropin = node.at("/etc/systemd/system/kubelet.service.d/20-pullcred.conf");
    fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    fs::write(&dropin, "[Service]\n# someone else's\n").unwrap();
    let bak = dropin.with_extension("conf.bak");
    plant_symlink(node.victim.path(), &bak);
    let before = snapshot(&node.root);
    refused(
        &node.install(&["--force"]),
        "20-pullcred.conf.bak is a symbolic link",
    );
    node.check_outside();
    assert_eq!(snapshot(&node.root), before, "nothing written");
}

#[test]
fn force_replaces_a_hard_link_at_the_backup_path_instead_of_writing_into_it() {
    let node = Node::new("kubeadm-debian");
    node.installed(&[]);
    let provider = node.at(PROVIDER);
    let changed = format!(
        "{}# an operator's note\n",
        fs::read_to_string(&provider).unwrap()
    );
    fs::write(&provider, &changed).unwrap();
    let bak = node.at(&format!("{PROVIDER}.bak"));
    fs::hard_link(node.victim.path(), &bak).unwrap();
    node.installed(&["--force"]);
    node.check_outside();
    assert_eq!(fs::read_to_string(&bak).unwrap(), changed);
    let meta = fs::metadata(&bak).unwrap();
    assert_eq!(meta.nlink(), 1, "a new file, not the victim's inode");
    assert_ne!(meta.ino(), fs::metadata(node.victim.path()).unwrap().ino());
}

/// Every file the installer writes on a kubeadm node, and the manifest.
const TARGETS: [&str; 6] = [
    "/usr/local/libexec/kubelet-credential-providers/pullcred",
    "/usr/local/libexec/kubelet-credential-providers/pullcred-mint",
    PROVIDER,
    "/etc/default/kubelet",
    "/etc/pullcred/config.toml",
    MANIFEST,
];

#[test]
fn a_symlink_planted_at_any_target_is_refused_before_anything_is_written() {
    for target in TARGETS {
        for args in [&[][..], &["--force"][..]] {
            let node = Node::new("kubeadm-debian");
            let link = node.at(target);
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            if link.exists() {
                fs::remove_file(&link).unwrap();
            }
            plant_symlink(node.victim.path(), &link);
            let before = snapshot(&node.root);
            refused(&node.install(args), &format!("{target} is a symbolic link"));
            node.check_outside();
            // Nothing written: in particular the victim's text was copied nowhere (the
            // kubelet's env file used to be merged from whatever the link pointed at).
            assert_eq!(snapshot(&node.root), before, "{target} {args:?}");
        }
    }
}

#[test]
fn a_fifo_planted_at_a_target_is_refused_without_blocking() {
    for target in TARGETS {
        let node = Node::new("kubeadm-debian");
        let fifo = node.at(target);
        fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        if fifo.exists() {
            fs::remove_file(&fifo).unwrap();
        }
        plant_fifo(&fifo);
        let before = snapshot(&node.root);
        refused(
            &node.install(&["--force"]),
            &format!("{target} is not a regular file"),
        );
        node.check_outside();
        assert_eq!(snapshot(&node.root), before, "{target}");
    }
}

#[test]
fn an_installed_file_swapped_for_a_symlink_is_neither_upgraded_nor_restored_through_it() {
    // /etc/default/kubelet is a file pullcred modified: uninstall restores its original.
    for target in [
        "/etc/default/kubelet",
        "/usr/local/libexec/kubelet-credential-providers/pullcred",
    ] {
        let node = Node::new("kubeadm-debian");
        node.installed(&[]);
        let path = node.at(target);
        fs::remove_file(&path).unwrap();
        plant_symlink(node.victim.path(), &path);
        let before = snapshot(&node.root);
        for args in [&[][..], &["--force"][..]] {
            refused(&node.install(args), &format!("{target} is a symbolic link"));
            refused(
                &node.uninstall(args),
                &format!("{target} is a symbolic link"),
            );
            node.check_outside();
            assert_eq!(snapshot(&node.root), before, "{target} {args:?}");
        }
    }
}

#[test]
fn a_directory_another_user_may_change_is_refused_before_anything_is_written() {
    // A bin dir under a directory the user owns: it could swap the binaries' directory.
    let node = Node::new("kubeadm-debian");
    let theirs = node.at("/opt/theirs");
    fs::create_dir_all(theirs.join("bin")).unwrap();
    give_to_other(&theirs);
    let before = snapshot(&node.root);
    refused(
        &node.install(&["--bin-dir", "/opt/theirs/bin"]),
        "/opt/theirs can be changed by a user other than root",
    );
    node.check_outside();
    assert_eq!(snapshot(&node.root), before);

    // The provider config's directory writable by everyone (written after the binaries:
    // still nothing is written, every check comes first).
    let node = Node::new("kubeadm-debian");
    let kubernetes = node.at("/etc/kubernetes");
    fs::create_dir_all(&kubernetes).unwrap();
    fs::set_permissions(&kubernetes, fs::Permissions::from_mode(0o777)).unwrap();
    let before = snapshot(&node.root);
    refused(
        &node.install(&[]),
        "/etc/kubernetes can be changed by a user other than root",
    );
    node.check_outside();
    assert_eq!(snapshot(&node.root), before);

    // A manifest another user may write is not trusted by uninstall.
    let node = Node::new("kubeadm-debian");
    node.installed(&[]);
    let manifest = node.at(MANIFEST);
    for (owner_other, mode) in [(false, 0o622), (true, 0o600)] {
        fs::set_permissions(&manifest, fs::Permissions::from_mode(mode)).unwrap();
        if owner_other {
            give_to_other(&manifest);
        }
        let before = snapshot(&node.root);
        refused(
            &node.uninstall(&[]),
            "/var/lib/pullcred/install/manifest can be changed by a user other than root",
        );
        assert_eq!(snapshot(&node.root), before, "mode {mode:o}");
    }
}

/// The SHA-256 of the file at `path`, in hex, as the manifest records it.
fn sha256_of(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn uninstall_refuses_a_manifest_naming_paths_the_installer_does_not_manage() {
    // Each line is added to a real install's manifest; `{sum}` is the sum of the file it
    // names, so that only the path can stop uninstall from removing it.
    let cases: &[(&str, &str)] = &[
        ("file {sum} /../victim", "/../victim"),
        (
            "file {sum} /usr/local/libexec/kubelet-credential-providers/../../../../../victim",
            "/../victim",
        ),
        ("file {sum} /etc/shadow", "/etc/shadow"),
        ("modified {sum} /etc/shadow", "/etc/shadow"),
        ("file {sum} etc/shadow", "/etc/shadow"),
        ("file {sum} /etc/./shadow", "/etc/shadow"),
        (
            "file {sum} /usr/local/libexec/kubelet-credential-providers/not-ours",
            "/usr/local/libexec/kubelet-credential-providers/not-ours",
        ),
        ("dir - /home/other", "/home/other"),
        ("dir - /etc/pullcred/..", "/etc/pullcred/.."),
        ("bin-dir - /etc/../etc", "/etc"),
        ("provider-config - ../etc/shadow", "/etc/shadow"),
    ];
    for (line, file) in cases {
        let node = Node::new("kubeadm-debian");
        node.installed(&[]);
        // Root-only files inside the root that the manifest now names.
        let shadow = Victim::new(&node.at("/etc/shadow"), "root:x:0:0\n");
        let not_ours = Victim::new(&node.at(&format!("{BIN}/not-ours")), "another provider\n");
        let home = node.at("/home/other");
        fs::create_dir_all(&home).unwrap();
        give_to_other(&home);
        // A modified file's original, as install.sh keeps it; restoring it over /etc/shadow
        // would replace root's file.
        let orig = node.at("/var/lib/pullcred/install/orig/etc/shadow");
        fs::create_dir_all(orig.parent().unwrap()).unwrap();
        fs::write(&orig, "root::0:0\n").unwrap();
        let named = if file.starts_with("/../") {
            node.victim.path().to_path_buf()
        } else {
            node.at(file)
        };
        let sum = if named.is_file() {
            sha256_of(&named)
        } else {
            "-".to_string()
        };
        let line = line.replace("{sum}", &sum);
        let manifest = node.at(MANIFEST);
        let mut text = fs::read_to_string(&manifest).unwrap();
        text.push_str(&format!("{line}\n"));
        fs::write(&manifest, text).unwrap();
        let before = snapshot(&node.root);
        for args in [&[][..], &["--force"][..]] {
            let out = node.uninstall(args);
            refused(&out, "not a path install.sh manages");
            assert!(out.stderr.contains(&line), "{line}: {out:?}");
            // Nothing undone at all: a manifest like that is not to be trusted in part.
            assert_eq!(snapshot(&node.root), before, "{line} {args:?}");
            node.check_outside();
            shadow.check();
            not_ours.check();
        }
    }
}
