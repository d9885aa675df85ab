//! A docker config (podman's and containers-auth's `auth.json` too) may hold credentials for
//! some paths of a registry only (`registry.example.com/team-a`). A pod author names the
//! image: team-a's credential must never answer team-b's image, neither from the file nor
//! from pullcred's cache or the kubelet's.

use base64::Engine;

use crate::support::{Fixture, V1, request, run, secret_file, single_auth};

fn auth(user: &str, password: &str) -> serde_json::Value {
    let text = format!("{user}:{password}");
    serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode(text)})
}

/// A rule for `*.scoped.test` reading a docker config with namespace-scoped keys.
fn scoped() -> Fixture {
    let fx = Fixture::new("docker-config");
    let config = serde_json::json!({"credHelpers": {
        "d.scoped.test/team-a": "spy",
    }, "auths": {
        "a.scoped.test/team-a": auth("team-a", "s3cret-team-a-pw"),
        "a.scoped.test/team-a/deep": auth("deep", "s3cret-corpus-pw"),
        "b.scoped.test/team-a": auth("team-a", "s3cret-team-a-pw"),
        "b.scoped.test": auth("whole", "s3cret-basic-pw"),
        "https://c.scoped.test/v1/": auth("url-key", "s3cret-mirror-pw"),
    }});
    secret_file(&fx.path("scoped.json"), &config.to_string());
    fx.prepend_config(&format!(
        "[[registry]]\nmatch = [\"*.scoped.test\"]\nsource = \"docker-config\"\npath = \"{}\"\n",
        fx.path("scoped.json").display()
    ));
    fx
}

/// (auth key, username, cacheKeyType), or the error.
fn answer(fx: &Fixture, image: &str) -> Result<(String, String, String), String> {
    let out = run(&mut fx.cmd(), &request(V1, image));
    if out.code != Some(0) {
        return Err(out.stderr);
    }
    let resp = out.response();
    let (key, user, _) = single_auth(&resp);
    Ok((
        key,
        user,
        resp["cacheKeyType"].as_str().unwrap().to_string(),
    ))
}

#[test]
fn a_namespace_scoped_entry_answers_only_its_own_paths() {
    let fx = scoped();
    let ok = |k: &str, u: &str, t: &str| Ok((k.to_string(), u.to_string(), t.to_string()));
    // In this order, with one cache: an entry cached for team-a never answers team-b.
    for (image, want) in [
        (
            "a.scoped.test/team-a/app",
            ok("a.scoped.test/team-a", "team-a", "Image"),
        ),
        (
            "a.scoped.test/team-a/deep/x",
            ok("a.scoped.test/team-a/deep", "deep", "Image"),
        ),
        (
            "a.scoped.test/team-a",
            ok("a.scoped.test/team-a", "team-a", "Image"),
        ),
        (
            "b.scoped.test/team-a/app",
            ok("b.scoped.test/team-a", "team-a", "Image"),
        ),
        // The host-wide key answers other paths, cached per image by the kubelet.
        (
            "b.scoped.test/team-b/app",
            ok("b.scoped.test", "whole", "Image"),
        ),
        (
            "b.scoped.test/team-ab/app",
            ok("b.scoped.test", "whole", "Image"),
        ),
        // A URL key (docker's own form) names its host alone: `v1` is no namespace.
        (
            "c.scoped.test/v1/app",
            ok("c.scoped.test", "url-key", "Registry"),
        ),
        (
            "c.scoped.test/other",
            ok("c.scoped.test", "url-key", "Registry"),
        ),
    ] {
        assert_eq!(answer(&fx, image), want, "{image}");
    }
    // A helper keyed with a path is not the whole host's (helpers are per registry).
    for image in [
        "a.scoped.test/team-b/app",
        "a.scoped.test/team-ab/app",
        "d.scoped.test/team-b/app",
    ] {
        let got = answer(&fx, image);
        assert!(
            got.as_ref()
                .is_err_and(|e| e.contains("no credentials for ")),
            "{image}: {got:?}"
        );
    }
    // And again, now that everything is cached.
    assert_eq!(answer(&fx, "a.scoped.test/team-a/app").unwrap().1, "team-a");
    assert!(answer(&fx, "a.scoped.test/team-b/app").is_err());
}

/// Hosts compare case-insensitively wherever a key or a comparison is made: an image named
/// with upper-case letters shares the registry's entry, and `cache purge --registry` finds
/// it however the host is written.
#[test]
fn hosts_in_cache_keys_and_purge_ignore_case() {
    let fx = scoped();
    let lower = answer(&fx, "b.scoped.test/team-b/app").unwrap();
    assert_eq!(lower.1, "whole");
    let upper = answer(&fx, "B.Scoped.TEST/team-b/app").unwrap();
    assert_eq!(
        (upper.0.as_str(), upper.1.as_str()),
        ("B.Scoped.TEST", "whole")
    );
    // One entry for the repository, and the registry's marker (it has narrowed keys).
    let list = run(fx.cmd().args(["cache", "list"]), b"");
    assert_eq!(list.stdout.lines().count(), 2, "{}", list.stdout);
    let purge = run(
        fx.cmd()
            .args(["cache", "purge", "--registry", "B.Scoped.TEST"]),
        b"",
    );
    assert!(purge.stdout.starts_with("removed 2 entries"), "{purge:#?}");
}
