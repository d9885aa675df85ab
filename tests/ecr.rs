//! Source `ecr` against moto (ECR, STS) on loopback, through a recording tap; ECR Public,
//! IMDS and proxies against small fakes of their documented wire formats.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::aws::{self, MOTO_ACCOUNT};
use crate::support::http::{FakeHttp, Reply, Request, aws_json_error};
use crate::support::{Fixture, Run, V1, go_seconds, pullcred, request, run, single_auth};

const NODE_KEY: &str = "AKIANODE000000000001";
const NODE_SECRET: &str = "s3cret-node-secret-key";
const HOST: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";

/// Static node keys, `endpoint` for every AWS API, no IMDS, and a clock at which moto's
/// token has `left` to live.
fn with_aws<'a>(cmd: &'a mut Command, endpoint: &str, left: Duration) -> &'a mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", NODE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", NODE_SECRET)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "PULLCRED_TEST_CLOCK_OFFSET",
            aws::clock_before_moto_expiry(left),
        )
}

/// The `ecr` fixture's rules, with the cross-account rule assuming `role` and the profile
/// rule calling ECR at `endpoint`.
fn rules(role: &str, endpoint: &str) -> Fixture {
    Fixture::with_vars("ecr", &[("@ROLE@", role), ("@ENDPOINT@", endpoint)])
}

/// The names of the files in the cache dir under `home` (none if it was never made).
fn cache_files(home: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(home.join("cache")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn plugin(cmd: &mut Command, image: &str) -> Run {
    run(cmd, &request(V1, image))
}

/// The SigV4 credential scope of a request: `<key>/<date>/<region>/<service>`.
fn signed_by(req: &Request) -> (String, String, String) {
    let auth = req.header("authorization").expect("signed request");
    let scope = auth
        .split("Credential=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("credential scope");
    let parts: Vec<&str> = scope.split('/').collect();
    (parts[0].into(), parts[2].into(), parts[3].into())
}

#[test]
fn builtin_rules_mint_private_ecr_and_then_answer_from_the_cache() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let image = format!("{HOST}/team/app:1");
    // No config file at all: the built-in rules serve ECR.
    let exec = || {
        let six_hours = Duration::from_secs(6 * 3600);
        plugin(
            with_aws(&mut pullcred(home.path()), &tap.url(), six_hours),
            &image,
        )
        .response()
    };
    let first = exec();
    let (key, user, password) = single_auth(&first);
    assert_eq!(key, HOST);
    assert_eq!(user, "AWS");
    assert_eq!(password, format!("{MOTO_ACCOUNT}-auth-token"));
    // 6 h left, refreshed in the last 25 % of that, up to 10 % earlier by jitter: after
    // 3h54m to 4h30m.
    let d = go_seconds(&first["cacheDuration"]);
    assert!((14_040 - 5..=16_200).contains(&d), "{first}");
    assert_eq!(tap.operations(), ["GetAuthorizationToken"]);
    let req = &tap.requests()[0];
    assert_eq!(
        signed_by(req),
        (NODE_KEY.into(), "us-west-2".into(), "ecr".into())
    );
    assert_eq!(
        String::from_utf8_lossy(&req.body),
        "{}",
        "no registry ids by default"
    );

    // A second exec is a cache hit: moto is not asked again.
    let second = exec();
    assert_eq!(single_auth(&second), single_auth(&first));
    assert_eq!(tap.operations().len(), 1);
}

#[test]
fn expired_tokens_are_never_served() {
    // moto's tokens expire in 2015: with the real clock, the mint succeeds but the answer
    // must not be cached by anyone.
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    with_aws(&mut cmd, &tap.url(), Duration::ZERO).env_remove("PULLCRED_TEST_CLOCK_OFFSET");
    let resp = plugin(&mut cmd, &format!("{HOST}/app:1")).response();
    assert_eq!(resp["cacheDuration"], "0s");
    let mut again = pullcred(home.path());
    with_aws(&mut again, &tap.url(), Duration::ZERO).env_remove("PULLCRED_TEST_CLOCK_OFFSET");
    plugin(&mut again, &format!("{HOST}/app:1")).response();
    assert_eq!(tap.operations().len(), 2, "an expired entry is a miss");
}

#[test]
fn ecr_public_is_minted_in_us_east_1() {
    let public = aws::fake_ecr_public("s3cret-ecr-public-pw", Duration::from_secs(12 * 3600));
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    with_aws(&mut cmd, "http://127.0.0.1:9", Duration::ZERO)
        .env_remove("PULLCRED_TEST_CLOCK_OFFSET")
        .env("AWS_ENDPOINT_URL_ECR_PUBLIC", public.url());
    for image in [
        "public.ecr.aws/team/tool:1",
        "ecr-public.aws.com/team/tool:1",
    ] {
        let resp = plugin(&mut cmd, image).response();
        let (key, user, password) = single_auth(&resp);
        assert_eq!(key, image.split('/').next().unwrap());
        assert_eq!(
            (user.as_str(), password.as_str()),
            ("AWS", "s3cret-ecr-public-pw")
        );
        let d = go_seconds(&resp["cacheDuration"]);
        // 12 h left: refreshed after 7h48m to 9h.
        assert!((28_080 - 5..=32_400).contains(&d), "{resp}");
    }
    let reqs = public.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        signed_by(&reqs[0]),
        (NODE_KEY.into(), "us-east-1".into(), "ecr-public".into())
    );
}

#[test]
fn role_arn_assumes_the_role_with_sts_before_calling_ecr() {
    let tap = aws::moto_tap();
    let fx = rules("puller", "http://unused");
    let six_hours = Duration::from_secs(6 * 3600);
    let image = format!("{MOTO_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/app:1");
    let resp = plugin(with_aws(&mut fx.cmd(), &tap.url(), six_hours), &image).response();
    // moto mints for the account of the caller's keys: the role's account, not the node's.
    assert_eq!(single_auth(&resp).2, "210987654321-auth-token");
    assert_eq!(tap.operations(), ["AssumeRole", "GetAuthorizationToken"]);
    let reqs = tap.requests();
    let sts = String::from_utf8_lossy(&reqs[0].body).into_owned();
    for field in [
        "RoleArn=arn%3Aaws%3Aiam%3A%3A210987654321%3Arole%2Fpuller",
        "RoleSessionName=node-1",
        "ExternalId=pullcred-test-external-id",
    ] {
        assert!(sts.contains(field), "{field} in {sts}");
    }
    assert_eq!(
        signed_by(&reqs[0]),
        (NODE_KEY.into(), "eu-west-1".into(), "sts".into())
    );
    // ECR is called with the role's temporary keys, not the node's.
    let (key, region, service) = signed_by(&reqs[1]);
    assert_ne!(key, NODE_KEY);
    assert!(key.starts_with("ASIA"), "{key}");
    assert_eq!((region.as_str(), service.as_str()), ("eu-west-1", "ecr"));

    // Same host, another role: a different cache key, so a new mint.
    let other = rules("other", "http://unused");
    let mut cmd = other.cmd();
    cmd.env("PULLCRED_CACHE_DIR", fx.path("cache"));
    plugin(with_aws(&mut cmd, &tap.url(), six_hours), &image).response();
    assert_eq!(tap.operations().len(), 4);
    // The first role's entry is still a hit.
    plugin(with_aws(&mut fx.cmd(), &tap.url(), six_hours), &image).response();
    assert_eq!(tap.operations().len(), 4);
}

#[test]
fn registry_ids_scope_the_token_and_refuse_other_accounts() {
    let tap = aws::moto_tap();
    let fx = rules("x", "http://unused");
    let left = Duration::from_secs(3600);
    let image = "210987654321.dkr.ecr.ap-south-1.amazonaws.com/app:1";
    let resp = plugin(with_aws(&mut fx.cmd(), &tap.url(), left), image).response();
    assert_eq!(single_auth(&resp).2, "210987654321-auth-token");
    let body = String::from_utf8_lossy(&tap.requests()[0].body).into_owned();
    assert_eq!(body, r#"{"registryIds":["210987654321"]}"#);

    let run = plugin(
        with_aws(&mut fx.cmd(), &tap.url(), left),
        "333333333333.dkr.ecr.ap-south-1.amazonaws.com/app:1",
    );
    run.assert_error("rule 2 (ecr) for 333333333333.dkr.ecr.ap-south-1.amazonaws.com: account 333333333333 is not in the rule's registry_ids");
    assert_eq!(tap.operations().len(), 1, "nothing was asked of AWS");
}

#[test]
fn a_mirror_rule_mints_for_its_ecr_registry_and_answers_for_the_mirror() {
    let tap = aws::moto_tap();
    let fx = rules("x", "http://unused");
    let resp = plugin(
        with_aws(&mut fx.cmd(), &tap.url(), Duration::from_secs(3600)),
        "mirror.internal:5000/library/nginx:1",
    )
    .response();
    let (key, user, password) = single_auth(&resp);
    assert_eq!(key, "mirror.internal:5000");
    assert_eq!(
        (user.as_str(), password.as_str()),
        ("AWS", "123456789012-auth-token")
    );
    assert_eq!(signed_by(&tap.requests()[0]).1, "us-east-1");
}

#[test]
fn a_profile_with_credential_process_and_an_explicit_endpoint() {
    let tap = aws::moto_tap();
    let fx = rules("x", &tap.url());
    let mut cmd = fx.cmd();
    cmd.env("AWS_EC2_METADATA_DISABLED", "true").env(
        "PULLCRED_TEST_CLOCK_OFFSET",
        aws::clock_before_moto_expiry(Duration::from_secs(3600)),
    );
    let resp = plugin(
        &mut cmd,
        "123456789012.dkr.ecr.ca-central-1.amazonaws.com/app:1",
    )
    .response();
    assert_eq!(single_auth(&resp).2, "123456789012-auth-token");
    let (key, region, _) = signed_by(&tap.requests()[0]);
    assert_eq!(
        (key.as_str(), region.as_str()),
        ("AKIAPROCESS000000001", "ca-central-1")
    );
    assert_eq!(
        std::fs::read_to_string(fx.path("aws-creds.log")).unwrap(),
        "called\n"
    );
}

#[test]
fn hosts_that_only_look_like_ecr_get_nothing() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let left = Duration::from_secs(3600);
    // Not matched by any built-in rule: an empty answer, as for any unknown host.
    let resp = plugin(
        with_aws(&mut pullcred(home.path()), &tap.url(), left),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.net/app:1",
    )
    .response();
    assert_eq!(resp["auth"], serde_json::json!({}));
    // Matched by a built-in pattern but not a real ECR name: refused before any call.
    for (host, why) in [
        (
            "12345678901.dkr.ecr.us-east-1.amazonaws.com",
            "12-digit account id",
        ),
        ("123456789012.dkr.ecr.cn-north-1.amazonaws.com", "partition"),
        ("123456789012.dkr.ecr.moon.amazonaws.com", "region"),
    ] {
        let run = plugin(
            with_aws(&mut pullcred(home.path()), &tap.url(), left),
            &format!("{host}/app:1"),
        );
        run.assert_error("is not an ECR registry host: ");
        run.assert_error(why);
    }
    assert!(tap.requests().is_empty());
    assert_eq!(
        cache_files(home.path()),
        Vec::<String>::new(),
        "not even a lock file"
    );
}

/// Every form of registry host reaches the ECR API of its own partition and region (with
/// FIPS and dual-stack as the host says). Seen at an HTTPS proxy, which records the
/// `CONNECT` and refuses it: no endpoint is overridden here.
#[test]
fn every_partition_reaches_its_own_ecr_endpoint_through_https_proxy() {
    let proxy = FakeHttp::start(|_| Reply::Respond {
        status: 403,
        headers: vec![],
        body: String::new(),
    });
    let table = [
        (
            "123456789012.dkr.ecr.us-west-2.amazonaws.com",
            "api.ecr.us-west-2.amazonaws.com",
        ),
        (
            "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
            "api.ecr-fips.us-east-1.amazonaws.com",
        ),
        (
            "123456789012.dkr.ecr.us-gov-west-1.amazonaws.com",
            "api.ecr.us-gov-west-1.amazonaws.com",
        ),
        (
            "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "api.ecr.cn-north-1.amazonaws.com.cn",
        ),
        (
            "123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu",
            "api.ecr.eusc-de-east-1.amazonaws.eu",
        ),
        (
            "123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov",
            "api.ecr.us-iso-east-1.c2s.ic.gov",
        ),
        (
            "123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
            "api.ecr.us-isob-east-1.sc2s.sgov.gov",
        ),
        (
            "123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
            "api.ecr.eu-isoe-west-1.cloud.adc-e.uk",
        ),
        (
            "123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
            "api.ecr.us-isof-south-1.csp.hci.ic.gov",
        ),
        (
            "123456789012.dkr-ecr.us-west-2.on.aws",
            "ecr.us-west-2.api.aws",
        ),
        (
            "123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn",
            "ecr.cn-north-1.api.amazonwebservices.com.cn",
        ),
        ("public.ecr.aws", "api.ecr-public.us-east-1.amazonaws.com"),
    ];
    let home = tempfile::tempdir().unwrap();
    let runs: Vec<_> = table
        .iter()
        .map(|(host, _)| {
            let mut cmd = pullcred(home.path());
            with_aws(&mut cmd, "", Duration::ZERO)
                .env_remove("AWS_ENDPOINT_URL")
                .env("HTTPS_PROXY", proxy.url());
            let input = request(V1, &format!("{host}/app:1"));
            std::thread::spawn(move || run(&mut cmd, &input))
        })
        .collect();
    for (run, (host, _)) in runs.into_iter().zip(table) {
        let run = run.join().unwrap();
        run.assert_error(&format!("rule 1 (ecr) for {host}: "));
    }
    let seen: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    for (host, endpoint) in table {
        let want = format!("CONNECT {endpoint}:443");
        assert!(seen.contains(&want), "{host}: want {want} in {seen:#?}");
    }
}

/// A fake EC2 instance metadata service (IMDSv2: a session token from `PUT /latest/api/token`,
/// then the role and its keys), as the EC2 user guide documents it.
fn fake_imds() -> FakeHttp {
    FakeHttp::start(|req| {
        let ok = |body: &str| Reply::Respond {
            status: 200,
            headers: vec![("x-aws-ec2-metadata-token-ttl-seconds", "21600".into())],
            body: body.into(),
        };
        match (req.method.as_str(), req.target.as_str()) {
            ("PUT", "/latest/api/token") => ok("imds-session-token"),
            (_, _) if req.header("x-aws-ec2-metadata-token") != Some("imds-session-token") => {
                Reply::Respond {
                    status: 401,
                    headers: vec![],
                    body: String::new(),
                }
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") => ok("node-role"),
            ("GET", "/latest/meta-data/iam/security-credentials/node-role") => ok(
                r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS000000000001","SecretAccessKey":"s3cret-imds-secret-key","Token":"s3cret-imds-session","Expiration":"2099-01-01T00:00:00Z","LastUpdated":"2026-01-01T00:00:00Z"}"#,
            ),
            _ => Reply::Respond {
                status: 404,
                headers: vec![],
                body: String::new(),
            },
        }
    })
}

#[test]
fn imds_credentials_bypass_the_proxy_and_ecr_goes_through_it() {
    let imds = fake_imds();
    let tap = aws::moto_tap();
    // A forward proxy in front of moto: it sees absolute-form requests for http:// URLs.
    let moto = tap.addr;
    let proxy = FakeHttp::start(move |_| Reply::Forward(moto));
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
        .env("AWS_ENDPOINT_URL", "http://ecr.test.invalid:4566")
        .env("HTTP_PROXY", proxy.url())
        .env(
            "PULLCRED_TEST_CLOCK_OFFSET",
            aws::clock_before_moto_expiry(Duration::from_secs(3600)),
        );
    let resp = plugin(&mut cmd, &format!("{HOST}/app:1")).response();
    assert_eq!(single_auth(&resp).2, "123456789012-auth-token");
    // IMDS was asked directly, and the proxy never saw it.
    let imds_paths: Vec<String> = imds.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(imds_paths[0], "/latest/api/token");
    assert!(
        imds_paths.contains(&"/latest/meta-data/iam/security-credentials/node-role".to_string()),
        "{imds_paths:?}"
    );
    let through_proxy: Vec<String> = proxy.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(through_proxy, ["http://ecr.test.invalid:4566/"]);
    assert_eq!(signed_by(&tap.requests()[0]).0, "ASIAIMDS000000000001");

    // NO_PROXY sends ECR direct too (here: to a name that does not resolve, so it fails).
    let mut cmd = pullcred(home.path());
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
        .env("AWS_ENDPOINT_URL", "http://ecr.test.invalid:4566")
        .env("HTTP_PROXY", proxy.url())
        .env("NO_PROXY", ".invalid")
        .env("PULLCRED_CACHE_DIR", home.path().join("other-cache"));
    plugin(&mut cmd, &format!("{HOST}/app:1"))
        .assert_error("ECR GetAuthorizationToken: cannot connect");
    assert_eq!(proxy.requests().len(), 1);
}

#[test]
fn off_aws_without_credentials_fails_fast_naming_every_source_tried() {
    // An IMDS that accepts connections and never answers: the worst case off AWS.
    let imds = FakeHttp::start(|_| Reply::Hang);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url());
    let start = Instant::now();
    let run = plugin(&mut cmd, &format!("{HOST}/app:1"));
    let took = start.elapsed();
    run.assert_error("no AWS credentials (tried environment: ");
    // Each in the operator's words: what it looked for, not the SDK's internals.
    for source in [
        "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set; ",
        "; profile: no credentials in the shared config and credentials files (~/.aws/config, ",
        "; web identity: ",
        "; ECS/EKS container: AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI are not set; ",
        "; EC2 IMDS: ",
    ] {
        run.assert_error(source);
    }
    for internal in [
        "the credential provider was not enabled",
        "environment variable not set",
        "ECS provider not configured",
    ] {
        assert!(!run.stderr.contains(internal), "{internal}: {run:?}");
    }
    // Off AWS is told at once: nothing here is worth a tenth of the request's deadline.
    assert!(
        took < crate::support::DEFAULT_DEADLINE / 10,
        "took {took:?}"
    );
    assert!(!run.stderr.contains("dispatch failure\n"));
    assert!(!imds.requests().is_empty());

    // AWS_EC2_METADATA_DISABLED: IMDS is not even asked.
    let quiet = FakeHttp::start(|_| Reply::Hang);
    let mut cmd = pullcred(home.path());
    cmd.env("AWS_EC2_METADATA_SERVICE_ENDPOINT", quiet.url())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    plugin(&mut cmd, &format!("{HOST}/app:1"))
        .assert_error("EC2 IMDS: IMDS disabled by AWS_EC2_METADATA_DISABLED");
    assert!(quiet.requests().is_empty());
}

#[test]
fn throttling_and_5xx_are_retried_three_times_then_the_cached_token_is_served() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let image = format!("{HOST}/app:1");
    let at = |left_secs: u64| {
        let mut cmd = pullcred(home.path());
        with_aws(&mut cmd, &tap.url(), Duration::from_secs(left_secs));
        cmd
    };
    let fresh = plugin(&mut at(6 * 3600), &image).response();
    assert_eq!(tap.operations().len(), 1);

    for (status, code) in [(400, "ThrottlingException"), (500, "ServerException")] {
        let before = tap.operations().len();
        tap.set(move |_| aws_json_error(status, code, "try later"));
        // 30 minutes before expiry: inside the refresh window, so a mint is attempted.
        let run = plugin(&mut at(1800), &image);
        let resp = run.response();
        assert_eq!(single_auth(&resp), single_auth(&fresh), "stale-while-error");
        assert!(go_seconds(&resp["cacheDuration"]) <= 60, "{resp}");
        assert!(
            run.stderr.contains(&format!("HTTP {status} {code}")),
            "{run:#?}"
        );
        assert_eq!(
            tap.operations().len() - before,
            3,
            "three attempts, no more"
        );
    }
    // Past expiry nothing may be served: the error, and nothing on stdout.
    let mut late = pullcred(home.path());
    with_aws(&mut late, &tap.url(), Duration::ZERO).env(
        "PULLCRED_TEST_CLOCK_OFFSET",
        aws::clock_after_moto_expiry(Duration::from_secs(60)),
    );
    plugin(&mut late, &image).assert_error(
        "ECR GetAuthorizationToken: HTTP 500 ServerException: try later (gave up after 3 attempts)",
    );
}

#[test]
fn refusals_are_not_retried_and_garbage_is_named() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let image = format!("{HOST}/app:1");
    let exec = || {
        let hour = Duration::from_secs(3600);
        plugin(
            with_aws(&mut pullcred(home.path()), &tap.url(), hour),
            &image,
        )
    };
    tap.set(|_| {
        aws_json_error(
            400,
            "AccessDeniedException",
            "not authorized to perform ecr:GetAuthorizationToken",
        )
    });
    exec()
        .assert_error("ECR GetAuthorizationToken: HTTP 400 AccessDeniedException: not authorized");
    assert_eq!(tap.requests().len(), 1);

    tap.set(|_| Reply::Respond {
        status: 200,
        headers: vec![("content-type", "application/x-amz-json-1.1".into())],
        body: "<html>captive portal</html>".into(),
    });
    exec().assert_error("ECR GetAuthorizationToken: unreadable answer");
    let files = cache_files(home.path());
    assert!(
        files.iter().all(|f| f.ends_with(".lock")),
        "no entry: {files:?}"
    );
}

#[test]
fn an_endpoint_that_never_answers_is_cut_at_the_deadline() {
    let tap = FakeHttp::start(|_| Reply::Hang);
    let fx = rules("x", "http://unused");
    fx.prepend_config("deadline = \"3s\"");
    let start = Instant::now();
    let run = plugin(
        with_aws(&mut fx.cmd(), &tap.url(), Duration::from_secs(3600)),
        &format!("{HOST}/app:1"),
    );
    let took = start.elapsed();
    run.assert_error("rule 5 (ecr) for 123456789012.dkr.ecr.us-west-2.amazonaws.com: ");
    crate::support::assert_within(took, Duration::from_secs(3), "the config's deadline");
    assert!(!tap.requests().is_empty());
}

#[test]
fn no_token_or_key_reaches_stderr_even_at_trace_level() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    with_aws(&mut cmd, &tap.url(), Duration::from_secs(3600)).arg("-vvv");
    let run = plugin(&mut cmd, &format!("{HOST}/app:1"));
    run.response();
    assert!(
        run.stderr.contains("minting"),
        "trace output is on: {}",
        run.stderr
    );
    for secret in ["-auth-token", NODE_SECRET] {
        assert!(
            !run.stderr.contains(secret),
            "{secret} leaked: {}",
            run.stderr
        );
    }
}

#[test]
fn web_identity_irsa_credentials_come_from_sts() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl").unwrap();
    let mut cmd = pullcred(home.path());
    cmd.env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
        .env("AWS_ROLE_ARN", "arn:aws:iam::210987654321:role/irsa-puller")
        .env("AWS_ROLE_SESSION_NAME", "pod-1")
        .env("AWS_ENDPOINT_URL", tap.url())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "PULLCRED_TEST_CLOCK_OFFSET",
            aws::clock_before_moto_expiry(Duration::from_secs(3600)),
        );
    let resp = plugin(&mut cmd, &format!("{HOST}/app:1")).response();
    assert_eq!(single_auth(&resp).2, "210987654321-auth-token");
    assert_eq!(
        tap.operations(),
        ["AssumeRoleWithWebIdentity", "GetAuthorizationToken"]
    );
}

#[test]
fn fips_and_dual_stack_hosts_mint_through_an_explicit_endpoint() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let hosts = [
        "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
        "123456789012.dkr-ecr.us-east-1.on.aws",
        "123456789012.dkr-ecr-fips.us-east-1.on.aws",
    ];
    for host in hosts {
        let resp = plugin(
            with_aws(
                &mut pullcred(home.path()),
                &tap.url(),
                Duration::from_secs(3600),
            ),
            &format!("{host}/app:1"),
        )
        .response();
        assert_eq!(
            single_auth(&resp),
            (
                host.to_string(),
                "AWS".into(),
                format!("{MOTO_ACCOUNT}-auth-token")
            )
        );
    }
    assert_eq!(tap.operations(), ["GetAuthorizationToken"; 3]);
}

#[test]
fn a_rule_that_names_a_profile_uses_it_over_environment_keys() {
    let tap = aws::moto_tap();
    let fx = rules("x", &tap.url());
    let mut cmd = fx.cmd();
    // The node also has keys in its environment: the rule's profile must still win.
    cmd.env("AWS_ACCESS_KEY_ID", NODE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", NODE_SECRET)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "PULLCRED_TEST_CLOCK_OFFSET",
            aws::clock_before_moto_expiry(Duration::from_secs(3600)),
        );
    plugin(
        &mut cmd,
        "123456789012.dkr.ecr.ca-central-1.amazonaws.com/app:1",
    )
    .response();
    assert_eq!(signed_by(&tap.requests()[0]).0, "AKIAPROCESS000000001");
}

#[test]
fn a_request_waiting_on_a_slow_mint_serves_the_valid_entry_instead_of_minting_too() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "deadline = \"6s\"\n[cache]\nlock_timeout = \"1s\"\n[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\n",
    )
    .unwrap();
    let image = format!("{HOST}/app:1");
    let exec = |left: Duration| {
        let mut cmd = pullcred(home.path());
        with_aws(&mut cmd, &tap.url(), left)
            .arg("--config")
            .arg(&config);
        plugin(&mut cmd, &image)
    };
    exec(Duration::from_secs(6 * 3600)).response();
    assert_eq!(tap.requests().len(), 1);

    // ECR turns slow; an hour before expiry the entry is due for refresh.
    tap.set(|_| Reply::Hang);
    let hour = Duration::from_secs(3600);
    let first = std::thread::scope(|s| {
        let first = s.spawn(|| exec(hour));
        // The first request now holds the key's lock while its call hangs.
        let start = Instant::now();
        while tap.requests().len() < 2 {
            assert!(start.elapsed() < Duration::from_secs(5), "no refresh call");
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = exec(hour);
        let (_, _, password) = single_auth(&second.response());
        assert_eq!(password, format!("{MOTO_ACCOUNT}-auth-token"));
        assert!(
            second
                .stderr
                .contains("answering with the cached credential"),
            "{second:#?}"
        );
        first.join().unwrap()
    });
    first.response();
    assert_eq!(
        tap.requests().len(),
        2,
        "the waiter must not add its own call to a slow upstream"
    );
}
