//! install/install.sh into a temporary root (DESTDIR) shaped like a node's, and the kubelet
//! examples: every list of hosts routed to pullcred is the one its rules serve.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::pullcred;

const FLAGS: &str = "--image-credential-provider-config=/etc/kubernetes/credential-provider-config.yaml --image-credential-provider-bin-dir=/usr/local/libexec/kubelet-credential-providers";

/// What the built-in rules serve, as the binary prints it.
fn builtin_match_images() -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let out = pullcred(home.path())
        .args(["config", "match-images"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn install(root: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install/install.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--binary", env!("CARGO_BIN_EXE_pullcred")])
        .env("DESTDIR", root)
        .env_remove("PULLCRED_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
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

fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                files.push((p.display().to_string(), fs::read(&p).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn kubeadm_nodes_get_the_flags_in_the_environment_file_the_unit_reads() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc/systemd/system/kubelet.service.d")).unwrap();
    fs::write(
        r.join("etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        "[Service]\nEnvironmentFile=-/etc/default/kubelet\nExecStart=/usr/bin/kubelet $KUBELET_EXTRA_ARGS\n",
    )
    .unwrap();
    fs::create_dir_all(r.join("etc/default")).unwrap();
    fs::write(
        r.join("etc/default/kubelet"),
        "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.5\n",
    )
    .unwrap();
    install(r);
    assert_eq!(
        fs::read_to_string(r.join("etc/default/kubelet")).unwrap(),
        format!("KUBELET_EXTRA_ARGS=\"--node-ip=10.0.0.5 {FLAGS}\"\n")
    );
    // A drop-in's Environment= would lose to that file: none is written.
    assert!(
        !r.join("etc/systemd/system/kubelet.service.d/20-pullcred.conf")
            .exists()
    );
    let provider =
        fs::read_to_string(r.join("etc/kubernetes/credential-provider-config.yaml")).unwrap();
    assert_eq!(match_images(&provider), builtin_match_images());
    assert!(
        r.join("usr/local/libexec/kubelet-credential-providers/pullcred")
            .is_file()
    );
    // Idempotent: a second run changes nothing.
    let before = snapshot(r);
    install(r);
    assert_eq!(snapshot(r), before);
}

#[test]
fn plain_systemd_nodes_get_a_drop_in() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("etc/systemd/system/kubelet.service.d")).unwrap();
    install(r);
    assert_eq!(
        fs::read_to_string(r.join("etc/systemd/system/kubelet.service.d/20-pullcred.conf"))
            .unwrap(),
        format!("[Service]\nEnvironment=\"KUBELET_EXTRA_ARGS={FLAGS}\"\n")
    );
}

#[test]
fn the_kubelet_builtin_example_routes_exactly_what_the_builtin_rules_serve() {
    let example = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config-examples/builtin/credential-provider-config.yaml"),
    )
    .unwrap();
    assert_eq!(match_images(&example), builtin_match_images());
}
