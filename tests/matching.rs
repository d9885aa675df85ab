//! Rule selection through the binary: globs, ports, path prefixes, look-alike hosts, Docker
//! Hub's names, and mirrors.

use crate::support::{Fixture, single_auth};

/// Expected (auth key, rule's username, cacheKeyType); None: no credentials.
type Want = Option<(&'static str, &'static str, &'static str)>;

const TABLE: &[(&str, Want)] = &[
    // A path prefix narrows by whole segments, and the answer is keyed and cached per image.
    (
        "registry.example.com/team-a/app:1",
        Some(("registry.example.com/team-a", "team-a", "Image")),
    ),
    (
        "registry.example.com/team-a",
        Some(("registry.example.com/team-a", "team-a", "Image")),
    ),
    (
        "registry.example.com/team-ab/app",
        Some(("registry.example.com", "general", "Image")),
    ),
    (
        "registry.example.com/other:1",
        Some(("registry.example.com", "general", "Image")),
    ),
    // Look-alikes and ports.
    ("registry.example.com.evil.net/app", None),
    ("evil-registry.example.com/app", None),
    ("registry.example.com:5000/app", None),
    (
        "a.corp.example.com:5000/x",
        Some(("a.corp.example.com:5000", "general", "Registry")),
    ),
    ("a.corp.example.com/x", None),
    ("a.corp.example.com:5001/x", None),
    ("a.b.corp.example.com:5000/x", None),
    ("corp.example.com:5000/x", None),
    // An IPv6 literal is an address, not a glob class (`[::1]` once matched the host `1`).
    ("[::1]:5000/app", Some(("[::1]:5000", "ipv6", "Registry"))),
    ("1:5000/app", None),
    // Docker Hub under all its names.
    ("nginx", Some(("docker.io", "hub", "Registry"))),
    (
        "docker.io/library/nginx",
        Some(("docker.io", "hub", "Registry")),
    ),
    (
        "index.docker.io/library/nginx:1.27",
        Some(("docker.io", "hub", "Registry")),
    ),
    // The kubelet folds only index.docker.io into docker.io; it looks up any other alias as
    // spelled, so the answer must be keyed that way to be used at all.
    (
        "registry-1.docker.io/bitnami/redis",
        Some(("registry-1.docker.io", "hub", "Registry")),
    ),
    (
        "openpolicyagent/gatekeeper:v3.17.0",
        Some(("docker.io", "hub", "Registry")),
    ),
    // `*` inside labels, one label each.
    (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
        Some((
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "ecr-glob",
            "Registry",
        )),
    ),
    ("123456789012.dkr.ecr.us-east-1.amazonaws.com.cn/app", None),
    ("x.123456789012.dkr.ecr.us-east-1.amazonaws.com/app", None),
    (
        "localhost:5000/foo",
        Some(("localhost:5000", "local", "Registry")),
    ),
    ("localhost/foo", None),
    (
        "reg-1a.example.com/x",
        Some(("reg-1a.example.com", "class", "Registry")),
    ),
    ("reg-a1.example.com/x", None),
    // A mirror answers for the image's host.
    (
        "mirror.internal:5000/library/app",
        Some(("mirror.internal:5000", "mirror", "Registry")),
    ),
    ("mirror.internal/library/app", None),
];

#[test]
fn matching_table() {
    let fx = Fixture::new("matching");
    for (image, want) in TABLE {
        let out = fx.plugin(image);
        let resp = out.response();
        match want {
            None => {
                assert_eq!(resp["auth"], serde_json::json!({}), "{image}");
                assert_eq!(resp["cacheDuration"], "0s", "{image}");
            }
            Some((key, user, key_type)) => {
                let (k, u, p) = single_auth(&resp);
                assert_eq!((k.as_str(), u.as_str()), (*key, *user), "{image}");
                assert_eq!(p, "s3cret-static-pw");
                assert_eq!(resp["cacheKeyType"], *key_type, "{image}");
            }
        }
    }
}

/// The kubelet routes by a raw string prefix, so `team-ab/app` reaches a provider whose
/// `matchImages` is `paths.example.com/team-a`: the warning names the image's path and the
/// rules', not just the host.
#[test]
fn an_image_outside_a_hosts_path_rules_is_named_with_its_path() {
    let fx = Fixture::new("static");
    fx.prepend_config(&format!(
        "[[registry]]\nmatch = [\"paths.example.com/team-a\"]\nsource = \"static\"\n\
         username = \"u\"\npassword_file = \"{}\"\n",
        fx.path("password").display()
    ));
    let out = fx.plugin("paths.example.com/team-ab/app");
    assert_eq!(out.response()["auth"], serde_json::json!({}));
    assert!(
        out.stderr.contains(
            "no rule matches paths.example.com/team-ab/app: the rules for paths.example.com \
             cover only the paths team-a (by whole segments)"
        ),
        "{}",
        out.stderr
    );
}
