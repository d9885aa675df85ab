//! Source `gcp` against fakes of Google's metadata server and token endpoint
//! (support::google): the application default credentials order end to end through the
//! binary, the metadata server's header guard, service account keys whose JWT the fake
//! verifies, user credentials, look-alike hosts, and what an off-GCP node is told.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::google::{self, key_file, user_file};
use crate::support::http::FakeHttp;
use crate::support::{V1, go_seconds, pullcred, request, run, secret_file as secret, single_auth};

const AR: &str = "us-docker.pkg.dev/proj/repo/app:1";

/// No config (the built-in rules), metadata at `metadata`, nothing else of Google's set.
fn gcp(home: &Path, metadata: &FakeHttp) -> Command {
    let mut cmd = pullcred(home);
    cmd.env("GCE_METADATA_HOST", metadata.addr.to_string())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("CLOUDSDK_CONFIG");
    cmd
}

/// A node on GCP: the metadata server fake, answering with the node's token, and a home for
/// pullcred.
fn node() -> (FakeHttp, tempfile::TempDir) {
    let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
    (metadata, tempfile::tempdir().unwrap())
}

/// A service account key for puller@proj, signing for `token_uri`, written (owner-only) as
/// `home/sa.json`.
fn puller_key(home: &Path, token_uri: &str) -> PathBuf {
    let key = home.join("sa.json");
    secret(
        &key,
        &key_file("puller@proj.iam.gserviceaccount.com", token_uri),
    );
    key
}

/// The token endpoint fake, and the `token_uri` that names it.
fn token_fake() -> (FakeHttp, String) {
    let endpoint = FakeHttp::start(|_| crate::support::http::Reply::Hang);
    let token_uri = format!("{}/token", endpoint.url());
    endpoint.set(google::token_endpoint(token_uri.clone()));
    (endpoint, token_uri)
}

#[test]
fn the_metadata_server_serves_artifact_registry_and_gcr_with_no_config() {
    let (metadata, home) = node();
    for image in [AR, "gcr.io/proj/app:1", "europe-west4-docker.pkg.dev/p/r/a"] {
        let resp = run(&mut gcp(home.path(), &metadata), &request(V1, image)).response();
        let host = image.split('/').next().unwrap();
        assert_eq!(
            single_auth(&resp),
            (
                host.to_string(),
                "oauth2accesstoken".into(),
                "s3cret-gcp-token-for-node".into()
            )
        );
        // An hour's token, refreshed in its last 25 % (up to 10 % earlier by jitter).
        let d = go_seconds(&resp["cacheDuration"]);
        assert!((2330..=2700).contains(&d), "{resp}");
    }
    let paths: Vec<String> = metadata
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        paths,
        ["/computeMetadata/v1/instance/service-accounts/default/token"; 3]
    );
    // The same host again: from the cache.
    run(&mut gcp(home.path(), &metadata), &request(V1, AR)).response();
    assert_eq!(metadata.requests().len(), 3);
}

#[test]
fn an_answer_without_the_metadata_flavor_header_is_refused() {
    let lookalike = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", false));
    let home = tempfile::tempdir().unwrap();
    run(&mut gcp(home.path(), &lookalike), &request(V1, AR))
        .assert_error("metadata server: metadata server 127.0.0.1");
    let out = run(&mut gcp(home.path(), &lookalike), &request(V1, AR));
    out.assert_error("lacks `Metadata-Flavor: Google`; not Google's metadata server");
}

#[test]
fn a_service_account_key_signs_an_assertion_the_token_endpoint_verifies() {
    let (_endpoint, token_uri) = token_fake();
    let (metadata, home) = node();
    let key = puller_key(home.path(), &token_uri);
    let mut cmd = gcp(home.path(), &metadata);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key).arg("-vvv");
    let resp = run(&mut cmd, &request(V1, AR)).response();
    assert_eq!(single_auth(&resp).2, "s3cret-gcp-token-for-puller");
    assert_eq!(metadata.requests().len(), 0, "the key file comes first");
    // A key file others could write is refused.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o666)).unwrap();
    let home2 = tempfile::tempdir().unwrap();
    let mut cmd = gcp(home2.path(), &metadata);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
    run(&mut cmd, &request(V1, AR))
        .assert_error("refusing a secret file writable by group or others (mode 0666)");
}

#[test]
fn the_adc_order_is_rule_key_then_env_then_gcloud_then_metadata() {
    let (_endpoint, token_uri) = token_fake();
    let (metadata, home) = node();
    let h = home.path();
    secret(
        &h.join("rule.json"),
        &key_file("rule@p.iam.gserviceaccount.com", &token_uri),
    );
    secret(
        &h.join("env.json"),
        &key_file("env@p.iam.gserviceaccount.com", &token_uri),
    );
    secret(
        &h.join(".config/gcloud/application_default_credentials.json"),
        &user_file(&token_uri),
    );
    fs::write(
        h.join("config.toml"),
        "[[registry]]\nmatch = [\"keyed-docker.pkg.dev\"]\nsource = \"gcp\"\nkey_file = \"rule.json\"\n[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\n",
    )
    .unwrap();
    let token = |image: &str, env: bool, cache: &str| {
        let mut cmd = gcp(h, &metadata);
        cmd.arg("--config")
            .arg(h.join("config.toml"))
            .env("PULLCRED_CACHE_DIR", h.join(cache));
        if env {
            cmd.env("GOOGLE_APPLICATION_CREDENTIALS", h.join("env.json"));
        }
        single_auth(&run(&mut cmd, &request(V1, image)).response()).2
    };
    assert_eq!(
        token("keyed-docker.pkg.dev/p/r/a", true, "c1"),
        "s3cret-gcp-token-for-rule"
    );
    assert_eq!(token(AR, true, "c2"), "s3cret-gcp-token-for-env");
    assert_eq!(token(AR, false, "c3"), "s3cret-gcp-token-for-user");
    fs::remove_file(h.join(".config/gcloud/application_default_credentials.json")).unwrap();
    assert_eq!(token(AR, false, "c4"), "s3cret-gcp-token-for-node");
}

#[test]
fn look_alike_hosts_get_nothing_and_touch_no_cache() {
    let (metadata, home) = node();
    // Matched by the built-in `*.gcr.io`, but not one of Google's hosts.
    run(
        &mut gcp(home.path(), &metadata),
        &request(V1, "mirror.gcr.io/app"),
    )
    .assert_error("\"mirror.gcr.io\" is not a Google registry host");
    // Matched by no rule at all.
    for image in [
        "gcr.io.evil.com/app",
        "us-docker.pkg.dev.example.com/app",
        "pkg.dev/app",
    ] {
        let resp = run(&mut gcp(home.path(), &metadata), &request(V1, image)).response();
        assert_eq!(resp["auth"], serde_json::json!({}), "{image}");
    }
    assert_eq!(metadata.requests().len(), 0);
    assert!(
        !home.path().join("cache").exists()
            || fs::read_dir(home.path().join("cache")).unwrap().count() == 0
    );
}

#[test]
fn off_gcp_the_error_names_every_link_and_comes_fast() {
    // Nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.env("GCE_METADATA_HOST", addr.to_string());
    let start = std::time::Instant::now();
    let out = run(&mut cmd, &request(V1, AR));
    out.assert_error(
        "no Google credentials (tried GOOGLE_APPLICATION_CREDENTIALS: not set; gcloud: no ",
    );
    out.assert_error(&format!(
        "metadata server: metadata server {addr}: cannot connect"
    ));
    // Off Google is told at once: nothing here is worth a tenth of the request's deadline.
    let took = start.elapsed();
    assert!(
        took < crate::support::DEFAULT_DEADLINE / 10,
        "took {took:?}"
    );
}

#[test]
fn refusals_are_not_retried_and_garbage_is_named() {
    let endpoint = FakeHttp::start(|_| crate::support::http::Reply::Hang);
    let token_uri = format!("{}/token", endpoint.url());
    // The fake refuses: a key it cannot verify (another email, same key, wrong audience).
    endpoint.set(google::token_endpoint("http://elsewhere/token".into()));
    let (metadata, home) = node();
    let key = puller_key(home.path(), &token_uri);
    let exec = || {
        let mut cmd = gcp(home.path(), &metadata);
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
        run(&mut cmd, &request(V1, AR))
    };
    exec().assert_error("HTTP 400: invalid_grant: claims");
    assert_eq!(endpoint.requests().len(), 1, "a 400 is not retried");
    endpoint.set(|_| crate::support::http::Reply::Respond {
        status: 200,
        headers: vec![],
        body: "<html>portal</html>".into(),
    });
    exec().assert_error("unreadable answer (HTTP 200, not an access token)");
    endpoint.set(|_| crate::support::http::Reply::Respond {
        status: 503,
        headers: vec![],
        body: "busy".into(),
    });
    let before = endpoint.requests().len();
    exec().assert_error("HTTP 503: not an OAuth error answer (gave up after 3 attempts)");
    assert_eq!(endpoint.requests().len() - before, 3);
}

/// Google's APIs (token, STS, IAM Credentials) on one fake, and its base URL.
fn apis() -> (FakeHttp, String) {
    let fake = FakeHttp::start(|_| crate::support::http::Reply::Hang);
    let base = fake.url();
    fake.set(google::apis(base.clone(), "s3cret-gcp-subject"));
    (fake, base)
}

#[test]
fn workload_identity_federation_exchanges_a_file_subject_token_then_impersonates() {
    let (fake, base) = apis();
    let (metadata, home) = node();
    let h = home.path();
    secret(&h.join("subject"), "s3cret-gcp-subject\n");
    let source = serde_json::json!({"file": h.join("subject")});
    secret(
        &h.join("fed.json"),
        &google::external_account_file(
            &format!("{base}/sts"),
            source.clone(),
            Some("fed@p.iam.gserviceaccount.com"),
        ),
    );
    secret(
        &h.join("plain.json"),
        &google::external_account_file(&format!("{base}/sts"), source, None),
    );
    // The file's impersonation URL names Google's IAM API; the rule sends it to the fake.
    fs::write(
        h.join("config.toml"),
        format!("[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\niam_credentials_endpoint = \"{base}\"\n"),
    )
    .unwrap();
    let token = |file: &str, cache: &str| {
        let mut cmd = gcp(h, &metadata);
        cmd.arg("--config")
            .arg(h.join("config.toml"))
            .env("GOOGLE_APPLICATION_CREDENTIALS", h.join(file))
            .env("PULLCRED_CACHE_DIR", h.join(cache))
            .arg("-vvv");
        single_auth(&run(&mut cmd, &request(V1, AR)).response()).2
    };
    assert_eq!(
        token("fed.json", "c1"),
        "s3cret-gcp-token-for-impersonated-fed"
    );
    assert_eq!(token("plain.json", "c2"), "s3cret-gcp-federated");
    let paths: Vec<String> = fake.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        paths,
        [
            "/sts",
            "/v1/projects/-/serviceAccounts/fed@p.iam.gserviceaccount.com:generateAccessToken",
            "/sts"
        ]
    );
    assert_eq!(metadata.requests().len(), 0);
}

#[test]
fn a_url_subject_token_in_json_with_headers() {
    let (_fake, base) = apis();
    let subject = FakeHttp::start(|req| {
        if req.header("metadata") != Some("True") {
            return crate::support::http::Reply::Respond {
                status: 400,
                headers: vec![],
                body: "no header".into(),
            };
        }
        crate::support::http::Reply::Respond {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: r#"{"access_token": "s3cret-gcp-subject", "other": 1}"#.into(),
        }
    });
    let (metadata, home) = node();
    let source = serde_json::json!({
        "url": format!("{}/subject", subject.url()),
        "headers": {"Metadata": "True"},
        "format": {"type": "json", "subject_token_field_name": "access_token"},
    });
    secret(
        &home.path().join("fed.json"),
        &google::external_account_file(&format!("{base}/sts"), source, None),
    );
    let mut cmd = gcp(home.path(), &metadata);
    cmd.env(
        "GOOGLE_APPLICATION_CREDENTIALS",
        home.path().join("fed.json"),
    );
    let resp = run(&mut cmd, &request(V1, AR)).response();
    assert_eq!(single_auth(&resp).2, "s3cret-gcp-federated");
}

#[test]
fn a_rule_impersonates_with_the_metadata_servers_token() {
    let (fake, base) = apis();
    let (metadata, home) = node();
    let h = home.path();
    fs::write(
        h.join("config.toml"),
        format!("[[registry]]\nmatch = [\"gcr.io\"]\nsource = \"gcp\"\nimpersonate = \"reader@p.iam.gserviceaccount.com\"\niam_credentials_endpoint = \"{base}\"\n"),
    )
    .unwrap();
    let mut cmd = gcp(h, &metadata);
    cmd.arg("--config").arg(h.join("config.toml"));
    let resp = run(&mut cmd, &request(V1, "gcr.io/p/app")).response();
    assert_eq!(
        single_auth(&resp).2,
        "s3cret-gcp-token-for-impersonated-reader"
    );
    let iam = &fake.requests()[0];
    assert_eq!(
        iam.header("authorization"),
        Some("Bearer s3cret-gcp-token-for-node")
    );
    // The impersonated token lives an hour (its expireTime): cached for most of it.
    assert!(go_seconds(&resp["cacheDuration"]) > 2300, "{resp}");
    // An IAM refusal is named with Google's status and message.
    fake.set(|_| crate::support::http::Reply::Respond {
        status: 403,
        headers: vec![],
        body: r#"{"error": {"code": 403, "message": "Permission iam.serviceAccounts.getAccessToken denied", "status": "PERMISSION_DENIED"}}"#.into(),
    });
    let mut cmd = gcp(h, &metadata);
    cmd.arg("--config")
        .arg(h.join("config.toml"))
        .env("PULLCRED_CACHE_DIR", h.join("other"));
    run(&mut cmd, &request(V1, "gcr.io/p/app")).assert_error(
        "IAM Credentials generateAccessToken for reader@p.iam.gserviceaccount.com: HTTP 403: PERMISSION_DENIED: Permission iam.serviceAccounts.getAccessToken denied",
    );
}

#[test]
fn a_burst_mints_once_and_a_failing_metadata_server_is_answered_from_the_cache() {
    let (metadata, home) = node();
    // 16 cold execs at once: one mint.
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..16)
            .map(|i| {
                let (home, metadata) = (home.path(), &metadata);
                s.spawn(move || {
                    let image = format!("us-docker.pkg.dev/p/r/app-{i}:1");
                    run(&mut gcp(home, metadata), &request(V1, &image)).response()
                })
            })
            .collect();
        for r in runs {
            assert_eq!(
                single_auth(&r.join().unwrap()).2,
                "s3cret-gcp-token-for-node"
            );
        }
    });
    assert_eq!(metadata.requests().len(), 1, "one mint for the burst");
    // 50 minutes on, the token is due for refresh and the metadata server fails: the
    // cached token (10 minutes left) is answered, briefly.
    metadata.set(|_| crate::support::http::Reply::Respond {
        status: 503,
        headers: vec![("metadata-flavor", "Google".into())],
        body: "busy".into(),
    });
    let mut cmd = gcp(home.path(), &metadata);
    cmd.env("PULLCRED_TEST_CLOCK_OFFSET", "3000");
    let out = run(&mut cmd, &request(V1, AR));
    let resp = out.response();
    assert_eq!(single_auth(&resp).2, "s3cret-gcp-token-for-node");
    assert!(
        out.stderr.contains("answering with the cached credential"),
        "{out:#?}"
    );
    assert!(go_seconds(&resp["cacheDuration"]) <= 60, "{resp}");
    // Past its expiry it is never served.
    let mut cmd = gcp(home.path(), &metadata);
    cmd.env("PULLCRED_TEST_CLOCK_OFFSET", "3700");
    run(&mut cmd, &request(V1, AR)).assert_error("HTTP 503");
}

#[test]
fn federation_from_aws_signs_get_caller_identity_with_the_nodes_credentials() {
    const AUDIENCE: &str =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/aws/providers/aws";
    let sts = FakeHttp::start(google::sts_aws1(AUDIENCE, "eu-west-1"));
    // IMDS, for the node whose credentials are not in the environment.
    let imds = FakeHttp::start(|req| {
        let ok = |body: &str| crate::support::http::Reply::Respond {
            status: 200,
            headers: vec![],
            body: body.into(),
        };
        match (req.method.as_str(), req.target.as_str()) {
            ("PUT", "/latest/api/token") => ok("s3cret-gcp-imds-session"),
            _ if req.header("x-aws-ec2-metadata-token") != Some("s3cret-gcp-imds-session") => {
                crate::support::http::Reply::Respond {
                    status: 401,
                    headers: vec![],
                    body: String::new(),
                }
            }
            (_, "/latest/meta-data/placement/availability-zone") => ok("eu-west-1b"),
            (_, "/latest/meta-data/iam/security-credentials") => ok("node-role\n"),
            (_, "/latest/meta-data/iam/security-credentials/node-role") => ok(
                r#"{"Code":"Success","AccessKeyId":"ASIAGCPIMDS000000001","SecretAccessKey":"s3cret-gcp-imds-secret","Token":"s3cret-gcp-imds-token"}"#,
            ),
            _ => crate::support::http::Reply::Respond {
                status: 404,
                headers: vec![],
                body: String::new(),
            },
        }
    });
    let (metadata, home) = node();
    let file = serde_json::json!({
        "type": "external_account",
        "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": format!("{}/sts", sts.url()),
        "credential_source": {
            "environment_id": "aws1",
            "region_url": format!("{}/latest/meta-data/placement/availability-zone", imds.url()),
            "url": format!("{}/latest/meta-data/iam/security-credentials", imds.url()),
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "imdsv2_session_token_url": format!("{}/latest/api/token", imds.url()),
        },
    });
    secret(&home.path().join("aws.json"), &file.to_string());
    let token = |env: &[(&str, &str)], cache: &str| {
        let mut cmd = gcp(home.path(), &metadata);
        cmd.env(
            "GOOGLE_APPLICATION_CREDENTIALS",
            home.path().join("aws.json"),
        )
        .env("PULLCRED_CACHE_DIR", home.path().join(cache))
        .arg("-vvv");
        for (k, v) in env {
            cmd.env(k, v);
        }
        single_auth(&run(&mut cmd, &request(V1, AR)).response()).2
    };
    // Keys and region in the environment: IMDS is not asked.
    let env_keys = [
        ("AWS_ACCESS_KEY_ID", "AKIAGCPFED0000000001"),
        ("AWS_SECRET_ACCESS_KEY", "s3cret-gcp-aws-secret"),
        ("AWS_REGION", "eu-west-1"),
    ];
    assert_eq!(
        token(&env_keys, "c1"),
        "s3cret-gcp-federated-AKIAGCPFED0000000001"
    );
    assert_eq!(imds.requests().len(), 0);
    // Nothing in the environment: region and role credentials from IMDSv2.
    assert_eq!(
        token(&[], "c2"),
        "s3cret-gcp-federated-ASIAGCPIMDS000000001"
    );
    let imds_paths: Vec<String> = imds.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(imds_paths[0], "/latest/api/token");
    assert_eq!(metadata.requests().len(), 0);
}

#[test]
fn token_calls_go_through_the_proxy_and_the_metadata_server_never_does() {
    let (endpoint, token_uri) = token_fake();
    let to_endpoint = endpoint.addr;
    // A forward proxy that records what it is asked and passes it on.
    let proxy = FakeHttp::start(move |_| crate::support::http::Reply::Forward(to_endpoint));
    let (metadata, home) = node();
    let key = puller_key(home.path(), &token_uri);
    let exec = |key_file: bool, cache: &str| {
        let mut cmd = gcp(home.path(), &metadata);
        cmd.env("HTTP_PROXY", proxy.url())
            .env("PULLCRED_CACHE_DIR", home.path().join(cache));
        if key_file {
            cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key);
        }
        single_auth(&run(&mut cmd, &request(V1, AR)).response()).2
    };
    assert_eq!(exec(true, "c1"), "s3cret-gcp-token-for-puller");
    let asked: Vec<String> = proxy.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(asked, [token_uri], "the token call went through the proxy");
    // The metadata server is asked directly, proxy or not.
    assert_eq!(exec(false, "c2"), "s3cret-gcp-token-for-node");
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(metadata.requests().len(), 1);
}
