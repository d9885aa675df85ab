//! Per-workload identity: the pod's service account token, as the kubelet hands it over
//! (support::kube), minting with each cloud's workload federation (ECR through moto's STS
//! `AssumeRoleWithWebIdentity`; Google's STS and IAM Credentials and Entra ID through the
//! fakes of support::google and support::azure, which check the token is the request's),
//! and `passthrough`. Entries are the service account's alone; the raw token reaches no
//! file and no log; `service-account` never falls back to the node's identity.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::aws::{self, MOTO_ACCOUNT};
use crate::support::azure::{self, SP_CLIENT, TENANT, ZERO_USER};
use crate::support::google;
use crate::support::http::{FakeHttp, Reply, form};
use crate::support::kube::{self, Account, PULLER};
use crate::support::{Run, V1, go_seconds, pullcred, request, run, single_auth};

const ACR: &str = "myregistry.azurecr.io/app:1";
const ACR_IDS: [(&str, &str); 2] = [
    ("kubernetes.azure.com/acr-client-id", SP_CLIENT),
    ("kubernetes.azure.com/acr-tenant-id", TENANT),
];
const BUILDER: Account = Account {
    namespace: "team-b",
    name: "builder",
    uid: "0d3b6f5e-2222-4aaa-8bbb-000000000002",
};
/// `puller` again, in another namespace: the same name, another service account.
const OTHER_PULLER: Account = Account {
    namespace: "team-b",
    name: "puller",
    uid: "0d3b6f5e-3333-4aaa-8bbb-000000000003",
};

/// pullcred with `config` (text) in `home`; no cloud variables but what a test sets.
fn with_config(home: &Path, config: &str) -> Command {
    // Written whole and renamed into place: concurrent execs of a test read one config.
    let path = home.join("config.toml");
    let tmp = home.join(format!("config.{:?}.tmp", std::thread::current().id()));
    fs::write(&tmp, config).unwrap();
    fs::rename(&tmp, &path).unwrap();
    let mut cmd = pullcred(home);
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("AZURE_") {
            cmd.env_remove(var);
        }
    }
    cmd.arg("--config").arg(path);
    cmd
}

/// The shared fixture (support::azure::Node), with this file's commands.
type Azure = azure::Node;

impl Azure {
    fn cmd_as(&self, identity: &str, keys: &str) -> Command {
        let config = format!(
            "[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\nidentity = \"{identity}\"\nauthority_host = \"{0}\"\nendpoint = \"{0}\"\nimds_endpoint = \"{1}\"\n{keys}\n",
            self.api.url(),
            self.imds.url()
        );
        with_config(self.home.path(), &config)
    }

    /// Whose refresh token the answer is (the fake names the Entra identity in `sub`).
    fn minted_for(out: &Run) -> String {
        let (_, user, password) = single_auth(&out.response());
        assert_eq!(user, ZERO_USER);
        azure::claims(&password).unwrap()["sub"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn exchanges(&self) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.target == "/oauth2/exchange")
            .count()
    }
}

/// Every file under `dir`, as bytes.
fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(all_files(&path));
            } else {
                out.push((path.display().to_string(), fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn ecr_assumes_the_annotated_role_with_the_pods_token() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let image = format!("{MOTO_ACCOUNT}.dkr.ecr.us-west-2.amazonaws.com/app:1");
    let rule = |keys: &str| {
        format!(
            "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n{keys}\n"
        )
    };
    let token = PULLER.token("sts.amazonaws.com", 3600);
    // No node credentials at all: the pod's token is the only identity there is.
    let exec = |config: &str, annotations: &[(&str, &str)], env: &[(&str, &str)], cache: &str| {
        let mut cmd = with_config(home.path(), config);
        cmd.env("AWS_ENDPOINT_URL", tap.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PULLCRED_CACHE_DIR", home.path().join(cache))
            .env(
                "PULLCRED_TEST_CLOCK_OFFSET",
                aws::clock_before_moto_expiry(Duration::from_secs(6 * 3600)),
            )
            .envs(env.iter().copied());
        run(&mut cmd, &kube::request(&image, &token, annotations))
    };
    let annotated = [(
        "eks.amazonaws.com/ecr-role-arn",
        "arn:aws:iam::210987654321:role/team-a-puller",
    )];
    let out = exec(&rule(""), &annotated, &[], "c1");
    assert_eq!(single_auth(&out.response()).2, "210987654321-auth-token");
    assert_eq!(
        tap.operations(),
        ["AssumeRoleWithWebIdentity", "GetAuthorizationToken"]
    );
    let sts = form(&tap.requests()[0].body);
    assert_eq!(sts["WebIdentityToken"], token, "the request's own token");
    assert_eq!(
        sts["RoleArn"],
        "arn:aws:iam::210987654321:role/team-a-puller"
    );
    assert_eq!(sts["RoleSessionName"], "team-a.puller");
    assert!(
        tap.requests()[0].header("authorization").is_none(),
        "unsigned"
    );
    // Without the annotation: the rule's role_arn, else AWS_ECR_ROLE_ARN.
    let rule_role = rule("role_arn = \"arn:aws:iam::210987654321:role/rule-role\"");
    exec(&rule_role, &[], &[], "c2").response();
    assert_eq!(
        form(&tap.requests()[2].body)["RoleArn"],
        "arn:aws:iam::210987654321:role/rule-role"
    );
    let env_role = [(
        "AWS_ECR_ROLE_ARN",
        "arn:aws:iam::210987654321:role/env-role",
    )];
    exec(&rule(""), &[], &env_role, "c3").response();
    assert_eq!(
        form(&tap.requests()[4].body)["RoleArn"],
        "arn:aws:iam::210987654321:role/env-role"
    );
    // A renamed annotation.
    let renamed = [("example.com/role", "arn:aws:iam::210987654321:role/renamed")];
    exec(
        &rule("role_annotation = \"example.com/role\""),
        &renamed,
        &[],
        "c4",
    )
    .response();
    assert_eq!(
        form(&tap.requests()[6].body)["RoleArn"],
        "arn:aws:iam::210987654321:role/renamed"
    );
    // No role anywhere: an error naming the annotation, and nothing was called.
    exec(&rule(""), &[], &[], "c5").assert_error(
        "service account team-a/puller: no role to assume: annotation \
         eks.amazonaws.com/ecr-role-arn is not set, and neither the rule's role_arn nor \
         AWS_ECR_ROLE_ARN names one",
    );
    assert_eq!(tap.operations().len(), 8);
}

#[test]
fn gcp_exchanges_the_pods_token_and_impersonates_the_annotated_account() {
    let api = FakeHttp::start(|_| Reply::Hang);
    let token = PULLER.token("//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/pool/providers/prov", 3600);
    let subject: &'static str = Box::leak(token.clone().into_boxed_str());
    api.set(google::apis(api.url(), subject));
    let home = tempfile::tempdir().unwrap();
    let config = |keys: &str| {
        format!(
            "[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\nidentity = \"service-account\"\nworkload_identity_provider = \"projects/1/locations/global/workloadIdentityPools/pool/providers/prov\"\nsts_endpoint = \"{0}/sts\"\niam_credentials_endpoint = \"{0}\"\n{keys}\n",
            api.url()
        )
    };
    let exec = |keys: &str, annotations: &[(&str, &str)], cache: &str| {
        let mut cmd = with_config(home.path(), &config(keys));
        cmd.env("PULLCRED_CACHE_DIR", home.path().join(cache))
            .env("GCE_METADATA_HOST", "127.0.0.1:9");
        let out = run(
            &mut cmd,
            &kube::request("us-docker.pkg.dev/proj/repo/app:1", &token, annotations),
        );
        single_auth(&out.response()).2
    };
    let annotated = [(
        "iam.gke.io/gcp-service-account",
        "puller@proj.iam.gserviceaccount.com",
    )];
    assert_eq!(
        exec("", &annotated, "c1"),
        "s3cret-gcp-token-for-impersonated-puller"
    );
    let paths: Vec<String> = api.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        paths,
        [
            "/sts",
            "/v1/projects/-/serviceAccounts/puller@proj.iam.gserviceaccount.com:generateAccessToken"
        ]
    );
    // The rule's `impersonate` when there is no annotation; with neither, the federated
    // token itself (direct resource access).
    assert_eq!(
        exec(
            "impersonate = \"ci@proj.iam.gserviceaccount.com\"",
            &[],
            "c2"
        ),
        "s3cret-gcp-token-for-impersonated-ci"
    );
    assert_eq!(exec("", &[], "c3"), "s3cret-gcp-federated");
}

#[test]
fn acr_presents_the_pods_token_as_the_client_assertion() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    let token = PULLER.token("api://AzureADTokenExchange", 3600);
    let out = run(
        &mut az.cmd_as("service-account", ""),
        &kube::request(ACR, &token, &ACR_IDS),
    );
    assert_eq!(
        Azure::minted_for(&out),
        "workload system:serviceaccount:team-a:puller"
    );
    let entra = &az.api.requests()[0];
    let f = form(&entra.body);
    assert_eq!(f["client_assertion"], token);
    assert_eq!(f["client_id"], SP_CLIENT);
    assert_eq!(entra.target, format!("/{TENANT}/oauth2/v2.0/token"));
    // The refresh token (3 h) is kept no longer than the Entra token it came from (1 h).
    let d = go_seconds(&out.response()["cacheDuration"]);
    assert!((3600 * 65 / 100 - 10..=3600 * 75 / 100).contains(&d), "{d}");
    assert!(
        az.imds.requests().is_empty(),
        "the node's identity was not used"
    );
    // Nor longer than the service account token: one of ten minutes.
    let short = BUILDER.token("api://AzureADTokenExchange", 600);
    let out = run(
        &mut az.cmd_as("service-account", ""),
        &kube::request(ACR, &short, &ACR_IDS),
    );
    let d = go_seconds(&out.response()["cacheDuration"]);
    assert!((600 * 65 / 100 - 10..=600 * 75 / 100).contains(&d), "{d}");
    // The rule's IDs when the service account has no annotations.
    let keys = format!("tenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"");
    let out = run(
        &mut az.cmd_as("service-account", &keys),
        &kube::request(ACR, &token, &[]),
    );
    assert_eq!(
        Azure::minted_for(&out),
        "workload system:serviceaccount:team-a:puller"
    );
}

#[test]
fn service_accounts_never_share_an_entry() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    let mint = |account: &Account| {
        let token = account.token("api://AzureADTokenExchange", 3600);
        let out = run(
            &mut az.cmd_as("service-account", ""),
            &kube::request(ACR, &token, &ACR_IDS),
        );
        Azure::minted_for(&out)
    };
    assert_eq!(
        mint(&PULLER),
        "workload system:serviceaccount:team-a:puller"
    );
    assert_eq!(
        mint(&BUILDER),
        "workload system:serviceaccount:team-b:builder"
    );
    assert_eq!(
        mint(&OTHER_PULLER),
        "workload system:serviceaccount:team-b:puller"
    );
    assert_eq!(az.exchanges(), 3);
    // Each again: from the cache, each its own.
    assert_eq!(
        mint(&PULLER),
        "workload system:serviceaccount:team-a:puller"
    );
    assert_eq!(
        mint(&OTHER_PULLER),
        "workload system:serviceaccount:team-b:puller"
    );
    assert_eq!(az.exchanges(), 3);
    // A recreated service account (same name, new uid) is another one.
    let recreated = Account {
        uid: "0d3b6f5e-4444-4aaa-8bbb-000000000004",
        ..PULLER
    };
    mint(&recreated);
    assert_eq!(az.exchanges(), 4);
    // And the node's own entry is apart from all of them.
    let out = run(&mut az.cmd_as("node", ""), &request(V1, ACR));
    assert_eq!(Azure::minted_for(&out), "mi-system");
}

#[test]
fn one_mint_per_service_account_however_many_pods_pull_at_once() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    std::thread::scope(|s| {
        for i in 0..12 {
            let account = if i % 2 == 0 { PULLER } else { BUILDER };
            let az = &az;
            s.spawn(move || {
                let token = account.token("api://AzureADTokenExchange", 3600);
                let out = run(
                    &mut az.cmd_as("service-account", ""),
                    &kube::request(ACR, &token, &ACR_IDS),
                );
                let want = format!(
                    "workload system:serviceaccount:{}:{}",
                    account.namespace, account.name
                );
                assert_eq!(Azure::minted_for(&out), want);
            });
        }
    });
    assert_eq!(az.exchanges(), 2, "one per service account");
}

#[test]
fn the_raw_token_never_reaches_a_file_or_a_log() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    let token = PULLER.token("api://AzureADTokenExchange", 3600);
    let config = format!(
        "[[registry]]\nmatch = [\"harbor.example.com\"]\nsource = \"passthrough\"\n[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\nidentity = \"service-account\"\nauthority_host = \"{0}\"\nendpoint = \"{0}\"\n",
        az.api.url()
    );
    for image in [
        ACR,
        "harbor.example.com/app:1",
        "myregistry.azurecr.io/other:1",
    ] {
        for annotations in [&ACR_IDS[..], &[]] {
            let mut cmd = with_config(az.home.path(), &config);
            let out = run(cmd.arg("-vvv"), &kube::request(image, &token, annotations));
            // `run` has checked stderr for the token's signature; the whole token too:
            assert!(!out.stderr.contains(&token), "{image}");
            if out.code == Some(0) {
                assert!(out.stderr.contains("pullcred: debug"), "{out:?}");
            }
        }
    }
    let files = all_files(&az.home.path().join("cache"));
    assert!(!files.is_empty(), "the acr entries were written");
    for (path, bytes) in files {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(kube::SIGNATURE), "{path}: {text}");
    }
}

#[test]
fn service_account_mode_never_falls_back_to_the_node() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    // No token in the request.
    run(&mut az.cmd_as("service-account", ""), &request(V1, ACR)).assert_error(
        "identity is \"service-account\" and the request has no service account token",
    );
    // No client annotation, and none in the rule.
    let token = PULLER.token("api://AzureADTokenExchange", 3600);
    run(
        &mut az.cmd_as("service-account", ""),
        &kube::request(ACR, &token, &ACR_IDS[1..]),
    )
    .assert_error(
        "service account team-a/puller: annotation kubernetes.azure.com/acr-client-id is not \
         set, and the rule has no client_id",
    );
    // The exchange fails: Entra refuses this client.
    let unknown = [
        (
            "kubernetes.azure.com/acr-client-id",
            "99999999-0000-4000-8000-000000000000",
        ),
        ACR_IDS[1],
    ];
    run(
        &mut az.cmd_as("service-account", ""),
        &kube::request(ACR, &token, &unknown),
    )
    .assert_error("HTTP 400: unauthorized_client: AADSTS700016: application not found");
    assert!(az.imds.requests().is_empty(), "never the node's identity");
}

#[test]
fn service_account_or_node_falls_back_only_without_token_or_annotation() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    let token = PULLER.token("api://AzureADTokenExchange", 3600);
    let exec = |identity: &str, req: Vec<u8>| {
        let mut cmd = az.cmd_as(identity, "");
        let out = run(cmd.arg("-vv"), &req);
        (Azure::minted_for(&out), out.stderr)
    };
    let (who, log) = exec("service-account-or-node", request(V1, ACR));
    assert_eq!(who, "mi-system");
    assert!(
        log.contains("no service account token; using the node's identity"),
        "{log}"
    );
    let (who, log) = exec("service-account-or-node", kube::request(ACR, &token, &[]));
    assert_eq!(who, "mi-system");
    assert!(
        log.contains("annotation kubernetes.azure.com/acr-tenant-id is not set"),
        "{log}"
    );
    let (who, _) = exec(
        "service-account-or-node",
        kube::request(ACR, &token, &ACR_IDS),
    );
    assert_eq!(who, "workload system:serviceaccount:team-a:puller");
    // A failed exchange is not a reason to fall back: an error, as under service-account.
    az.api.set(|_| Reply::Respond {
        status: 400,
        headers: vec![],
        body: r#"{"error":"invalid_client","error_description":"AADSTS70021: No matching federated identity record found"}"#.into(),
    });
    let mut cmd = az.cmd_as("service-account-or-node", "");
    cmd.env("PULLCRED_CACHE_DIR", az.home.path().join("other-cache"));
    run(&mut cmd, &kube::request(ACR, &token, &ACR_IDS))
        .assert_error("AADSTS70021: No matching federated identity record found");
    // `node` ignores the token.
    let (who, _) = exec("node", kube::request(ACR, &token, &ACR_IDS));
    assert_eq!(who, "mi-system");
    // The node's identity was minted once; the second fallback and `node` were its hits.
    assert_eq!(az.imds.requests().len(), 1);
}

#[test]
fn passthrough_answers_the_token_itself_for_the_tokens_life_less_a_margin() {
    let home = tempfile::tempdir().unwrap();
    let config = "[[registry]]\nmatch = [\"harbor.example.com\"]\nsource = \"passthrough\"\n[[registry]]\nmatch = [\"oidc.example.com\"]\nsource = \"passthrough\"\nusername = \"k8s\"\n";
    let token = PULLER.token("harbor", 600);
    let out = run(
        &mut with_config(home.path(), config),
        &kube::request("harbor.example.com/app:1", &token, &[]),
    );
    let resp = out.response();
    assert_eq!(
        single_auth(&resp),
        ("harbor.example.com".into(), "<token>".into(), token.clone())
    );
    // 600 s left, less a tenth: the kubelet keys this answer by the token (cacheType Token).
    let secs = go_seconds(&resp["cacheDuration"]);
    assert!((530..=540).contains(&secs), "{resp}");
    let out = run(
        &mut with_config(home.path(), config),
        &kube::request("oidc.example.com/app:1", &token, &[]),
    );
    assert_eq!(single_auth(&out.response()).1, "k8s");
    assert!(
        all_files(&home.path().join("cache")).is_empty(),
        "nothing kept"
    );
    run(
        &mut with_config(home.path(), config),
        &request(V1, "harbor.example.com/app:1"),
    )
    .assert_error("the request has no service account token");
}

#[test]
fn an_expired_or_malformed_token_is_refused_in_every_mode() {
    let az = Azure::new(&["myregistry.azurecr.io"]);
    let expired = PULLER.token("api://AzureADTokenExchange", -60);
    for identity in ["service-account", "service-account-or-node"] {
        run(
            &mut az.cmd_as(identity, ""),
            &kube::request(ACR, &expired, &ACR_IDS),
        )
        .assert_error("the service account token of team-a/puller expired at ");
        run(
            &mut az.cmd_as(identity, ""),
            &kube::request(ACR, "not-a-jwt", &ACR_IDS),
        )
        .assert_error("the service account token is not a JWT");
        // An expiry no clock can hold (it once overflowed into a panic), or past year 9999.
        for exp in [u64::MAX, 1 << 40] {
            let far = PULLER.token_expiring_at("api://AzureADTokenExchange", exp);
            run(
                &mut az.cmd_as(identity, ""),
                &kube::request(ACR, &far, &ACR_IDS),
            )
            .assert_error("the service account token's exp is out of range");
        }
    }
    assert!(az.api.requests().is_empty() && az.imds.requests().is_empty());
}

#[test]
fn identity_is_checked_against_each_source() {
    let home = tempfile::tempdir().unwrap();
    for (rule, want) in [
        (
            "match = [\"r.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\nidentity = \"service-account\"",
            "source \"static\" mints with the node's identity only",
        ),
        (
            "match = [\"r.example.com\"]\nsource = \"passthrough\"\nidentity = \"node\"",
            "source \"passthrough\" answers with the service account token",
        ),
        (
            "match = [\"r.example.com\"]\nsource = \"acr\"\nidentity = \"pod\"",
            "identity must be one of \"node\", \"service-account\", \"service-account-or-node\"",
        ),
        (
            "match = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\nidentity = \"service-account\"",
            "set workload_identity_provider",
        ),
        (
            "match = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\nworkload_identity_provider = \"projects/1/locations/global/workloadIdentityPools/p/providers/q\"",
            "`workload_identity_provider` needs identity",
        ),
        (
            "match = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nrole_annotation = \"x/y\"",
            "`role_annotation` needs identity",
        ),
        (
            "match = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\nrole_annotation = \"not an annotation\"",
            "is not an annotation key",
        ),
    ] {
        let config = home.path().join("c.toml");
        fs::write(&config, format!("[[registry]]\n{rule}\n")).unwrap();
        let out = run(
            pullcred(home.path()).args(["config", "check"]).arg(&config),
            b"",
        );
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{rule}: want {want:?} in {}",
            out.stderr
        );
    }
}
