//! The wire protocol: each apiVersion answered in kind, every malformed request refused cleanly.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{Fixture, V1, go_seconds, request, run, single_auth};

const APIS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];

#[test]
fn each_api_version_is_answered_in_kind() {
    let fx = Fixture::new("static");
    for api in APIS {
        let resp = run(&mut fx.cmd(), &request(api, "registry.example.com/app:1")).response();
        assert_eq!(resp["apiVersion"], api);
        assert_eq!(resp["kind"], "CredentialProviderResponse");
        assert_eq!(resp["cacheKeyType"], "Registry");
        // Static credentials are kept 5 minutes; later answers come from the cache.
        assert!(
            (290..=300).contains(&go_seconds(&resp["cacheDuration"])),
            "{resp}"
        );
        // The kubelet decodes strictly: exactly these fields and no others.
        let mut keys: Vec<_> = resp.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "auth",
                "cacheDuration",
                "cacheKeyType",
                "kind"
            ]
        );
        assert_eq!(
            single_auth(&resp),
            (
                "registry.example.com".into(),
                "puller".into(),
                "s3cret-static-pw".into()
            )
        );
    }
}

#[test]
fn tags_digests_and_extra_request_fields_are_accepted() {
    let fx = Fixture::new("static");
    let digest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    for image in [
        "registry.example.com/app".to_string(),
        "registry.example.com/app:1.2".to_string(),
        format!("registry.example.com/app@{digest}"),
        format!("registry.example.com/a/b/c:v1@{digest}"),
    ] {
        let (key, ..) = single_auth(&fx.plugin(&image).response());
        assert_eq!(key, "registry.example.com", "{image}");
    }
    // Service-account mode fields, and fields a newer kubelet may add, do not break decoding.
    let body = serde_json::json!({
        "apiVersion": V1, "kind": "CredentialProviderRequest", "image": "registry.example.com/app",
        "serviceAccountToken": "eyJhbGciOi.fake.token", "serviceAccountAnnotations": {"a": "b"},
        "futureField": {"x": 1}
    });
    run(&mut fx.cmd(), body.to_string().as_bytes()).response();
}

#[test]
fn malformed_requests_are_refused_with_one_line() {
    let fx = Fixture::new("static");
    let big_image = format!(
        r#"{{"apiVersion":"{V1}","kind":"CredentialProviderRequest","image":"{}"}}"#,
        "a".repeat(1 << 20)
    );
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"apiVersion":"foo/v9","kind":"CredentialProviderRequest","image":"x"}"#.to_vec(),
         r#"request: unsupported apiVersion "foo/v9""#),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"Pod","image":"x"}"#.to_vec(),
         r#"request: unexpected kind "Pod""#),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":""}"#.to_vec(),
         "request: empty image"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}"#.to_vec(),
         "request: empty image"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"UPPER/Case Image"}"#.to_vec(),
         r#"request: image "UPPER/Case Image": invalid repository name"#),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"reg.com:x/app"}"#.to_vec(),
         "invalid registry host"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"app:-bad"}"#.to_vec(),
         "invalid tag"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"app@sha256:12"}"#.to_vec(),
         "invalid digest"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":7}"#.to_vec(),
         "request: field image must be a string"),
        (br#"{"kind":"CredentialProviderRequest","image":"x"}"#.to_vec(), "request: missing apiVersion"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"x"}"#.to_vec(), "request: missing kind"),
        (br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x","serviceAccountAnnotations":[1]}"#.to_vec(),
         "field serviceAccountAnnotations must be a map of strings"),
        (b"{not json".to_vec(), "request: invalid JSON at line 1 column 2"),
        (br#"{"apiVersion": "credentialprovider.kubelet.k8s.io/v1", "#.to_vec(), "request: invalid JSON"),
        (b"[]".to_vec(), "request: not a JSON object"),
        (b"null".to_vec(), "request: not a JSON object"),
        (b"".to_vec(), "request: stdin is empty"),
        (b"  \n ".to_vec(), "request: stdin is empty"),
        (vec![0xff, 0xfe, 0x00, 0x80], "request: invalid JSON"),
        ("[".repeat(10_000).into_bytes(), "request: invalid JSON"),
        (big_image.into_bytes(), "request: stdin is larger than 1048576 bytes"),
        (vec![b' '; (1 << 20) + 1], "request: stdin is larger than 1048576 bytes"),
    ];
    for (stdin, want) in cases {
        let out = run(&mut fx.cmd(), &stdin);
        out.assert_error(want);
    }
}

#[test]
fn an_image_no_rule_covers_gets_empty_auth_never_cached() {
    let fx = Fixture::new("static");
    let out = fx.plugin("quay.io/prometheus/node-exporter:v1");
    let resp = out.response();
    assert_eq!(resp["auth"], serde_json::json!({}));
    assert_eq!(resp["cacheDuration"], "0s");
    assert!(
        out.stderr.contains("no rule matches quay.io"),
        "a note on stderr: {:?}",
        out.stderr
    );
}

#[test]
fn a_request_that_never_finishes_is_cut_at_the_deadline() {
    // A peer that never closes stdin: pullcred must give up at the config's 1s deadline
    // with an error, not wait for the kubelet's kill.
    let fx = Fixture::new("deadline");
    let start = Instant::now();
    let mut child = fx
        .cmd()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(br#"{"apiVersion":"#).unwrap();
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    drop(stdin);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "pullcred: no answer within the deadline of 1s"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    crate::support::assert_within(elapsed, Duration::from_secs(1), "the config's deadline");
}

#[test]
fn a_panic_is_one_line_and_exit_1_never_a_signal_or_core() {
    use std::os::unix::process::ExitStatusExt;
    let fx = Fixture::new("static");
    let mut cmd = fx.cmd();
    cmd.env("PULLCRED_TEST_PANIC", "1");
    let out = cmd
        .stdin(Stdio::null())
        .args(["get", "registry.example.com/app:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), None, "killed by a signal: {out:?}");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("pullcred: internal error: panic at src/"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-panic-payload"), "{stderr}");
}

#[test]
fn a_stdin_that_cannot_be_read_is_named_not_called_empty() {
    let fx = Fixture::new("static");
    let out = fx
        .cmd()
        .stdin(std::fs::File::open("/").unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "pullcred: request: reading stdin: is a directory"
    );
}
