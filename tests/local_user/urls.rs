//! Crafted URLs: an endpoint whose user info looks like loopback while the host is not, and
//! secrets carried in a URL's query. Each endpoint is judged from the URL as parsed, user
//! info is refused, and no URL's user info or query reaches stderr.

use std::fs;

use crate::support::google;
use crate::support::http::{FakeHttp, Reply};
use crate::support::{V1, pullcred, request, run, secret_file};

const AR: &str = "us-docker.pkg.dev/proj/repo/app:1";

/// `http://[::1]@host/` was taken as loopback (plain http allowed) while the client
/// connects to `host`: refused when the config is read, by every key that names an endpoint
/// and by `config check`, before anything is sent. (The hosts here are never contacted: the
/// refusal comes first, and a run that got past it would fail on the unresolvable name.)
#[test]
fn an_endpoint_whose_user_info_looks_like_loopback_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    for (source, key, extra) in [
        ("gcp", "token_endpoint", ""),
        ("gcp", "sts_endpoint", ""),
        (
            "acr",
            "authority_host",
            "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\n",
        ),
        ("acr", "imds_endpoint", ""),
        ("ecr", "endpoint", ""),
    ] {
        let url = "http://[::1]@remote.pullcred.invalid:18080/token";
        let host = if source == "acr" {
            "r.azurecr.io"
        } else {
            "*.pkg.dev"
        };
        let host = if source == "ecr" {
            "*.dkr.ecr.*.amazonaws.com"
        } else {
            host
        };
        fs::write(
            &config,
            format!("[[registry]]\nmatch = [\"{host}\"]\nsource = \"{source}\"\n{key} = \"{url}\"\n{extra}"),
        )
        .unwrap();
        let out = run(
            pullcred(home.path())
                .arg("--config")
                .arg(&config)
                .args(["config", "check"]),
            b"",
        );
        assert_eq!(out.code, Some(1), "{source}.{key} accepted: {out:#?}");
        out.assert_error("line 4: endpoint");
        out.assert_error("user info");
    }
}

/// A subject token fetched from a URL with an API key in its query: when the fetch fails,
/// the error names the endpoint without its query (`run` fails the test on any fixture
/// secret on stderr; `s3cret-gcp-` is one).
#[test]
fn a_secret_in_a_url_query_never_reaches_stderr() {
    let subject = FakeHttp::start(|_| Reply::Respond {
        status: 500,
        headers: vec![],
        body: "no".into(),
    });
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = format!("{}/subject?api-key=s3cret-gcp-apikey", subject.url());
    secret_file(
        &h.join("fed.json"),
        &google::external_account_file(
            &format!("{}/sts", subject.url()),
            serde_json::json!({"url": url}),
            None,
        ),
    );
    for verbosity in [None, Some("-vvv")] {
        let mut cmd = pullcred(h);
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", h.join("fed.json"))
            .env("GCE_METADATA_HOST", "127.0.0.1:9")
            .args(verbosity);
        let out = run(&mut cmd, &request(V1, AR));
        assert_eq!(out.code, Some(1), "{out:#?}");
        assert!(!out.stderr.contains("api-key"), "{}", out.stderr);
    }
    assert!(!subject.requests().is_empty(), "the subject URL was asked");
}

/// `GCE_METADATA_HOST` is a `host[:port]`: one that carries user info or a path is refused
/// before anything is sent.
#[test]
fn a_metadata_host_with_user_info_is_refused() {
    let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
    let home = tempfile::tempdir().unwrap();
    for host in [
        format!("127.0.0.1@{}", metadata.addr),
        format!("{}/x", metadata.addr),
    ] {
        let mut cmd = pullcred(home.path());
        cmd.env("GCE_METADATA_HOST", &host)
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
        let out = run(&mut cmd, &request(V1, AR));
        out.assert_error("GCE_METADATA_HOST");
    }
    assert!(metadata.requests().is_empty());
}
