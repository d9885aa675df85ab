//! The local user against `pullcred doctor`, which runs as root and reads the file the
//! kubelet's flags name. Whatever file that is, doctor describes it by file, line and field,
//! never by its content.

use std::fs;

use crate::doctor::{FLAGS, doctor, kubelet, line, node};
use crate::support::Run;

/// A root-only file in /etc/shadow's format: lines ending in `:` are YAML mapping keys, so
/// a kubelet config check that names unknown keys would print them.
const SHADOW: &str = "root:$6$s3cret-shadow-hash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n";
/// Pieces of SHADOW; none may appear in doctor's output.
const PIECES: [&str; 5] = ["s3cret", "$6$", "19000", "daemon", "root:"];

fn assert_nothing_of(out: &Run, pieces: &[&str]) {
    for piece in pieces {
        assert!(
            !out.stdout.contains(piece) && !out.stderr.contains(piece),
            "{piece:?} printed: {out:#?}"
        );
    }
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
