//! The secret-store sources (`aws-secrets-manager`, `gcp-secret-manager`, `azure-key-vault`,
//! `vault`) through the built binary: AWS against moto on loopback (through a recording
//! tap); Google, Azure and Vault against fakes of their documented HTTP APIs
//! (tests/support/stores.rs). Each store's value reaches the answer, is cached for the
//! rule's `refresh` (told to the kubelet exactly), is fetched anew after it (a rotation
//! reaches the node with nothing touched), and a missing or denied secret is an error at
//! once while an unreachable store is covered by the last value.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::aws;
use crate::support::http::aws_json_error;
use crate::support::{Run, V1, go_seconds, pullcred, request, run, single_auth};

const NODE_KEY: &str = "AKIANODE000000000001";
const NODE_SECRET: &str = "s3cret-node-secret-key";
const HOST: &str = "registry.example.com";

/// A config of `rule` (its keys after `match` for [`HOST`]) under `home`; the command
/// reads it.
fn with_rule(home: &Path, rule: &str) -> Command {
    let path = home.join("config.toml");
    std::fs::write(
        &path,
        format!("[[registry]]\nmatch = [\"{HOST}\"]\n{rule}\n"),
    )
    .unwrap();
    let mut cmd = pullcred(home);
    cmd.arg("--config").arg(&path);
    cmd
}

/// The command's clock moved `by` ahead.
fn later(mut cmd: Command, by: Duration) -> Command {
    cmd.env("PULLCRED_TEST_CLOCK_OFFSET", by.as_secs().to_string());
    cmd
}

fn pull(cmd: &mut Command, image: &str) -> Run {
    run(cmd, &request(V1, image))
}

/// The entries in the cache dir under `home`.
fn entries(home: &Path) -> usize {
    std::fs::read_dir(home.join("cache"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}

/// A unique secret name per test (moto is shared by the run).
fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Node credentials, and every AWS call sent to `endpoint`.
fn aws_node(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ACCESS_KEY_ID", NODE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", NODE_SECRET)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

#[test]
fn aws_secrets_manager_rotation_reaches_the_node_after_refresh() {
    let name = unique("hub");
    let created = aws::secrets_manager(
        "CreateSecret",
        json!({"Name": name, "SecretString": json!({"username": "robot", "password": "s3cret-store-pw-1"}).to_string()}),
    );
    let arn = created["ARN"].as_str().unwrap().to_string();
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let rule = format!("source = \"aws-secrets-manager\"\nsecret = \"{arn}\"\nrefresh = \"30s\"\n");
    let exec = |offset: Duration| {
        let mut cmd = later(with_rule(home.path(), &rule), offset);
        aws_node(&mut cmd, &tap.url());
        pull(&mut cmd, &format!("{HOST}/team/app:1")).response()
    };
    let first = exec(Duration::ZERO);
    assert_eq!(
        single_auth(&first),
        (HOST.into(), "robot".into(), "s3cret-store-pw-1".into())
    );
    // The rule's refresh, exactly: no jitter, no margin.
    assert_eq!(first["cacheDuration"], "30s");
    // The call: GetSecretValue by the ARN, signed for the ARN's region and the service.
    let calls = tap.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].aws_operation(), "GetSecretValue");
    let auth = calls[0].header("authorization").unwrap();
    assert!(
        auth.contains(&format!("Credential={NODE_KEY}/"))
            && auth.contains("/us-west-2/secretsmanager/aws4_request"),
        "{auth}"
    );
    let sent: serde_json::Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(sent, json!({"SecretId": arn}));

    // Rotated in the store: the node keeps its cached value until the refresh...
    aws::secrets_manager(
        "PutSecretValue",
        json!({"SecretId": name, "SecretString": json!({"username": "robot", "password": "s3cret-store-pw-2"}).to_string()}),
    );
    let cached = exec(Duration::from_secs(10));
    assert_eq!(single_auth(&cached).2, "s3cret-store-pw-1");
    assert_eq!(go_seconds(&cached["cacheDuration"]), 20);
    assert_eq!(tap.requests().len(), 1, "a hit calls nobody");
    // ...and answers the new one after it, with nothing on the node touched.
    let rotated = exec(Duration::from_secs(31));
    assert_eq!(single_auth(&rotated).2, "s3cret-store-pw-2");
    assert_eq!(rotated["cacheDuration"], "30s");
    assert_eq!(tap.requests().len(), 2);
}

#[test]
fn aws_secrets_manager_missing_or_denied_is_an_error_at_once_unreachable_serves_stale() {
    let name = unique("stale");
    aws::secrets_manager(
        "CreateSecret",
        json!({"Name": name, "SecretString": "s3cret-store-pw-stale"}),
    );
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let rule = format!(
        "source = \"aws-secrets-manager\"\nsecret = \"{name}\"\nregion = \"us-west-2\"\nusername = \"robot\"\nrefresh = \"1m\"\nmax_stale = \"10m\"\n"
    );
    let exec = |offset: Duration| {
        let mut cmd = later(with_rule(home.path(), &rule), offset);
        aws_node(&mut cmd, &tap.url());
        pull(&mut cmd, &format!("{HOST}/app"))
    };
    // A plain value with `username`: the whole value is the password.
    let first = exec(Duration::ZERO).response();
    assert_eq!(single_auth(&first).1, "robot");
    assert_eq!(single_auth(&first).2, "s3cret-store-pw-stale");

    // Unreachable past the refresh (5xx after retries): the last value, briefly.
    tap.set(|_| aws_json_error(503, "InternalServiceError", "try later"));
    let stale = exec(Duration::from_secs(2 * 60));
    let answer = stale.response();
    assert_eq!(single_auth(&answer).2, "s3cret-store-pw-stale");
    assert!(
        stale
            .stderr
            .contains("answering with the cached credential"),
        "{stale:?}"
    );
    // Past refresh + max_stale: nothing left to serve.
    exec(Duration::from_secs(12 * 60)).assert_error(&format!(
        "rule 1 (aws-secrets-manager) for {HOST}: secret {name}: the store did not answer"
    ));

    // Denied past the refresh: an error at once, the cached value is not served.
    tap.set(|_| {
        aws_json_error(
            400,
            "AccessDeniedException",
            "not authorized to perform secretsmanager:GetSecretValue",
        )
    });
    exec(Duration::from_secs(2 * 60)).assert_error(&format!(
        "rule 1 (aws-secrets-manager) for {HOST}: secret {name}: denied (Secrets Manager GetSecretValue {name}: HTTP 400: AccessDeniedException"
    ));
}

#[test]
fn aws_secrets_manager_a_missing_secret_writes_nothing() {
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let name = unique("never-created");
    let mut cmd = with_rule(
        home.path(),
        &format!("source = \"aws-secrets-manager\"\nsecret = \"{name}\"\nregion = \"us-west-2\"\n"),
    );
    aws_node(&mut cmd, &tap.url());
    let out = pull(&mut cmd, &format!("{HOST}/app"));
    out.assert_error(&format!(
        "rule 1 (aws-secrets-manager) for {HOST}: secret {name}: not found (Secrets Manager GetSecretValue {name}: HTTP "
    ));
    // moto answers 404 where AWS answers 400: the error type decides, not the status.
    assert!(out.stderr.contains("ResourceNotFoundException"), "{out:?}");
    assert_eq!(entries(home.path()), 0);
    assert_eq!(tap.requests().len(), 1, "a missing secret is not retried");
}

#[test]
fn aws_secrets_manager_value_that_is_no_credential_is_named_never_quoted() {
    let name = unique("garbage");
    aws::secrets_manager(
        "CreateSecret",
        json!({"Name": name, "SecretString": "s3cret-store-pw-not-json"}),
    );
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = with_rule(
        home.path(),
        &format!("source = \"aws-secrets-manager\"\nsecret = \"{name}\"\nregion = \"us-west-2\"\n"),
    );
    aws_node(&mut cmd, &tap.url());
    let out = pull(&mut cmd, &format!("{HOST}/app"));
    out.assert_error(&format!(
        "secret {name}: not a credential (not a JSON object"
    ));
    assert_eq!(entries(home.path()), 0);
}

#[test]
fn aws_secrets_manager_a_docker_config_value_answers_the_images_host() {
    let name = unique("dockercfg");
    let config = json!({"auths": {
        "registry.example.com": {"username": "hub-robot", "password": "s3cret-store-pw-cfg"},
        "other.example.com": {"username": "x", "password": "s3cret-store-pw-other"},
    }});
    aws::secrets_manager(
        "CreateSecret",
        json!({"Name": name, "SecretString": config.to_string()}),
    );
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = with_rule(
        home.path(),
        &format!("source = \"aws-secrets-manager\"\nsecret = \"{name}\"\nregion = \"us-west-2\"\n"),
    );
    aws_node(&mut cmd, &tap.url());
    let answer = pull(&mut cmd, &format!("{HOST}/app")).response();
    assert_eq!(
        single_auth(&answer),
        (
            HOST.into(),
            "hub-robot".into(),
            "s3cret-store-pw-cfg".into()
        )
    );
}

#[test]
fn aws_secrets_manager_workload_reads_with_its_own_role() {
    use crate::support::kube::{PULLER, request as sa_request};
    let name = unique("workload");
    aws::secrets_manager(
        "CreateSecret",
        json!({"Name": name, "SecretString": json!({"username": "team-a", "password": "s3cret-store-pw-team"}).to_string()}),
    );
    let tap = aws::moto_tap();
    let home = tempfile::tempdir().unwrap();
    let mut cmd = with_rule(
        home.path(),
        &format!(
            "source = \"aws-secrets-manager\"\nidentity = \"service-account\"\nsecret = \"{name}\"\nregion = \"us-west-2\"\n"
        ),
    );
    // No node credentials at all: the workload's role is all there is.
    cmd.env("AWS_ENDPOINT_URL", tap.url())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let token = PULLER.token("sts.amazonaws.com", 3600);
    let role = "arn:aws:iam::123456789012:role/team-a-puller";
    let answer = run(
        &mut cmd,
        &sa_request(
            &format!("{HOST}/app"),
            &token,
            &[("eks.amazonaws.com/role-arn", role)],
        ),
    )
    .response();
    assert_eq!(single_auth(&answer).2, "s3cret-store-pw-team");
    assert_eq!(
        tap.operations(),
        ["AssumeRoleWithWebIdentity", "GetSecretValue"]
    );
    let sts: Vec<_> = tap.requests();
    let form = String::from_utf8_lossy(&sts[0].body).into_owned();
    assert!(
        form.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fteam-a-puller"),
        "{form}"
    );
}

#[test]
fn store_rules_are_checked_by_config_check() {
    let home = tempfile::tempdir().unwrap();
    for (rule, want) in [
        ("source = \"aws-secrets-manager\"\n", "needs `secret`"),
        (
            "source = \"aws-secrets-manager\"\nsecret = \"arn:aws:s3:::bucket\"\n",
            "line 4: secret \"arn:aws:s3:::bucket\" is not a secret ARN",
        ),
        (
            "source = \"aws-secrets-manager\"\nsecret = \"x\"\nrefresh = \"2d\"\n",
            "line 5: refresh must be from 1s to 24h",
        ),
        (
            "source = \"aws-secrets-manager\"\nsecret = \"x\"\nendpoint = \"http://192.0.2.1\"\n",
            "line 5:",
        ),
        (
            "source = \"aws-secrets-manager\"\nsecret = \"x\"\nendpoint = \"https://sm.example/v1\"\n",
            "with no path",
        ),
        (
            "source = \"aws-secrets-manager\"\nsecret = \"x\"\nexternal_id = \"e\"\n",
            "line 5: `external_id` needs `role_arn`",
        ),
    ] {
        let mut cmd = with_rule(home.path(), rule);
        cmd.args(["config", "check"]);
        let out = run(&mut cmd, b"");
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(out.stderr.contains(want), "{rule}: want {want:?}: {out:?}");
    }
    let mut cmd = with_rule(
        home.path(),
        "source = \"aws-secrets-manager\"\nsecret = \"arn:aws:secretsmanager:eu-west-1:111111111111:secret:hub-AbCdEf\"\nrole_arn = \"arn:aws:iam::111111111111:role/reader\"\nrefresh = \"5m\"\n",
    );
    cmd.args(["config", "check"]);
    let out = run(&mut cmd, b"");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("region=eu-west-1"), "{out:?}");
    assert!(out.stdout.contains("refresh=5m"), "{out:?}");
}

// --- Google Secret Manager ---------------------------------------------------------------

use crate::support::google;
use crate::support::http::FakeHttp;
use crate::support::stores::{self, Secrets, VaultRole};

/// A GCE node: the metadata server answering the node's token, nothing else of Google's.
fn gcp_node(cmd: &mut Command, metadata: &FakeHttp) {
    cmd.env("GCE_METADATA_HOST", metadata.addr.to_string())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("CLOUDSDK_CONFIG");
}

#[test]
fn gcp_secret_manager_rotation_reaches_the_node_after_refresh() {
    let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
    let secrets = Secrets::default();
    secrets.set(
        "projects/pulls/secrets/hub",
        r#"{"username":"robot","password":"s3cret-store-pw-g1"}"#,
    );
    let store = FakeHttp::start(stores::secret_manager(
        secrets.clone(),
        "s3cret-gcp-token-for-node",
        &[],
    ));
    let home = tempfile::tempdir().unwrap();
    let rule = format!(
        "source = \"gcp-secret-manager\"\nsecret = \"projects/pulls/secrets/hub\"\nendpoint = \"{}\"\nrefresh = \"2m\"\n",
        store.url()
    );
    let exec = |offset: Duration| {
        let mut cmd = later(with_rule(home.path(), &rule), offset);
        gcp_node(&mut cmd, &metadata);
        pull(&mut cmd, &format!("{HOST}/app")).response()
    };
    let first = exec(Duration::ZERO);
    assert_eq!(
        single_auth(&first),
        (HOST.into(), "robot".into(), "s3cret-store-pw-g1".into())
    );
    assert_eq!(first["cacheDuration"], "2m0s");
    let reads = store.requests();
    assert_eq!(reads.len(), 1);
    assert_eq!(
        reads[0].target,
        "/v1/projects/pulls/secrets/hub/versions/latest:access"
    );
    assert_eq!(
        reads[0].header("authorization"),
        Some("Bearer s3cret-gcp-token-for-node")
    );
    secrets.set(
        "projects/pulls/secrets/hub",
        r#"{"username":"robot","password":"s3cret-store-pw-g2"}"#,
    );
    assert_eq!(
        single_auth(&exec(Duration::from_secs(60))).2,
        "s3cret-store-pw-g1"
    );
    assert_eq!(store.requests().len(), 1, "a hit reads nothing");
    assert_eq!(
        single_auth(&exec(Duration::from_secs(121))).2,
        "s3cret-store-pw-g2"
    );
}

#[test]
fn gcp_secret_manager_denied_missing_and_corrupted_payloads_are_errors() {
    let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
    let secrets = Secrets::default();
    let store = FakeHttp::start(stores::secret_manager(
        secrets,
        "s3cret-gcp-token-for-node",
        &["projects/pulls/secrets/locked"],
    ));
    let home = tempfile::tempdir().unwrap();
    let exec = |secret: &str, endpoint: &str| {
        let mut cmd = with_rule(
            home.path(),
            &format!(
                "source = \"gcp-secret-manager\"\nsecret = \"{secret}\"\nendpoint = \"{endpoint}\"\n"
            ),
        );
        gcp_node(&mut cmd, &metadata);
        pull(&mut cmd, &format!("{HOST}/app"))
    };
    exec("projects/pulls/secrets/locked", &store.url()).assert_error(
        "rule 1 (gcp-secret-manager) for registry.example.com: secret projects/pulls/secrets/locked/versions/latest: denied (Secret Manager access projects/pulls/secrets/locked/versions/latest: HTTP 403: PERMISSION_DENIED: Permission 'secretmanager.versions.access' denied",
    );
    exec("projects/pulls/secrets/gone/versions/3", &store.url()).assert_error(
        "secret projects/pulls/secrets/gone/versions/3: not found (Secret Manager access projects/pulls/secrets/gone/versions/3: HTTP 404: NOT_FOUND",
    );
    // A payload whose CRC32C does not match its data (corrupted on the way) is not used.
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .encode(r#"{"username":"robot","password":"s3cret-store-pw-crc"}"#);
    let corrupt = FakeHttp::start(move |_| {
        crate::support::http::json(
            200,
            json!({"name": "projects/pulls/secrets/hub/versions/1", "payload": {"data": data, "dataCrc32c": "12345"}}),
            vec![],
        )
    });
    exec("projects/pulls/secrets/hub", &corrupt.url())
        .assert_error("whose CRC32C matches its data (corrupted in transit)");
    assert_eq!(entries(home.path()), 0);
}

// --- Azure Key Vault ---------------------------------------------------------------------

#[test]
fn azure_key_vault_rotation_reaches_the_node_after_refresh() {
    use crate::support::azure;
    let node = azure::Node::new(&[]);
    let secrets = Secrets::default();
    secrets.set(
        "hub-robot",
        r#"{"username":"robot","password":"s3cret-store-pw-a1"}"#,
    );
    let store = FakeHttp::start(stores::key_vault(secrets.clone(), &["mi-system"]));
    let rule = format!(
        "source = \"azure-key-vault\"\nvault = \"pullcreds\"\nsecret = \"hub-robot\"\nendpoint = \"{}\"\nimds_endpoint = \"{}\"\nazure_json = \"{}/absent.json\"\nrefresh = \"45s\"\n",
        store.url(),
        node.imds.url(),
        node.home.path().display()
    );
    let exec = |offset: Duration| {
        let mut cmd = later(with_rule(node.home.path(), &rule), offset);
        pull(&mut cmd, &format!("{HOST}/app"))
    };
    // azure_json names a file that is not there: an error, not a quiet turn to IMDS.
    let out = exec(Duration::ZERO);
    assert_eq!(out.code, Some(1), "{out:?}");
    let rule = rule.replace(
        &format!(
            "azure_json = \"{}/absent.json\"\n",
            node.home.path().display()
        ),
        "",
    );
    let exec = |offset: Duration| {
        let mut cmd = later(with_rule(node.home.path(), &rule), offset);
        pull(&mut cmd, &format!("{HOST}/app")).response()
    };
    let first = exec(Duration::ZERO);
    assert_eq!(single_auth(&first).2, "s3cret-store-pw-a1");
    assert_eq!(first["cacheDuration"], "45s");
    // IMDS was asked for Key Vault's resource; the vault got that token.
    let asked = node.imds.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.target.contains("resource=https%3A%2F%2Fvault.azure.net")),
        "{asked:?}"
    );
    let reads = store.requests();
    assert_eq!(
        reads.last().unwrap().target,
        "/secrets/hub-robot?api-version=7.4"
    );
    secrets.set(
        "hub-robot",
        r#"{"username":"robot","password":"s3cret-store-pw-a2"}"#,
    );
    assert_eq!(
        single_auth(&exec(Duration::from_secs(30))).2,
        "s3cret-store-pw-a1"
    );
    assert_eq!(
        single_auth(&exec(Duration::from_secs(46))).2,
        "s3cret-store-pw-a2"
    );
}

#[test]
fn azure_key_vault_answers_a_workload_it_admits_and_refuses_another() {
    use crate::support::azure::{self, SP_CLIENT, TENANT};
    use crate::support::kube::{Account, PULLER, request as sa_request};
    let node = azure::Node::new(&[]);
    let secrets = Secrets::default();
    secrets.set(
        "team-a",
        r#"{"username":"team-a","password":"s3cret-store-pw-ta"}"#,
    );
    let store = FakeHttp::start(stores::key_vault(
        secrets,
        &["workload system:serviceaccount:team-a:puller"],
    ));
    let rule = format!(
        "source = \"azure-key-vault\"\nidentity = \"service-account\"\nvault = \"pullcreds\"\nsecret = \"team-a\"\nendpoint = \"{}\"\nauthority_host = \"{}\"\ntenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"\n",
        store.url(),
        node.api.url()
    );
    let exec = |account: &Account| {
        let mut cmd = with_rule(node.home.path(), &rule);
        let token = account.token("api://AzureADTokenExchange", 3600);
        run(&mut cmd, &sa_request(&format!("{HOST}/app"), &token, &[]))
    };
    assert_eq!(
        single_auth(&exec(&PULLER).response()).2,
        "s3cret-store-pw-ta"
    );
    let intruder = Account {
        namespace: "team-b",
        name: "builder",
        uid: "0d3b6f5e-2222-4aaa-8bbb-000000000002",
    };
    exec(&intruder).assert_error(
        "rule 1 (azure-key-vault) for registry.example.com: secret team-a: denied (Key Vault",
    );
}

// --- Vault / OpenBao ---------------------------------------------------------------------

static VAULT_ROLES: &[VaultRole] = &[
    VaultRole {
        mount: "kubernetes",
        name: "pullers",
        admits: &["team-a:puller", "team-b:builder"],
        role_id: None,
        reads: &["secret/registry/team-a"],
    },
    VaultRole {
        mount: "approle",
        name: "node",
        admits: &[],
        role_id: Some(("node-role-id", "s3cret-vault-secret-id")),
        reads: &["kv/registry/hub"],
    },
];

#[test]
fn vault_workloads_are_answered_or_refused_as_vault_decides() {
    use crate::support::kube::{Account, PULLER, request as sa_request};
    let secrets = Secrets::default();
    secrets.set(
        "secret/registry/team-a",
        r#"{"username":"team-a","password":"s3cret-store-pw-v1"}"#,
    );
    let vault = FakeHttp::start(stores::vault(
        secrets.clone(),
        VAULT_ROLES,
        600,
        Some("teams"),
    ));
    let home = tempfile::tempdir().unwrap();
    let rule = format!(
        "source = \"vault\"\nidentity = \"service-account\"\naddress = \"{}\"\nnamespace = \"teams\"\nauth = \"kubernetes\"\nrole = \"pullers\"\npath = \"registry/team-a\"\nrefresh = \"1m\"\n",
        vault.url()
    );
    let exec = |account: &Account, offset: Duration| {
        let mut cmd = later(with_rule(home.path(), &rule), offset);
        let token = account.token("vault", 3600);
        run(&mut cmd, &sa_request(&format!("{HOST}/app"), &token, &[]))
    };
    let first = exec(&PULLER, Duration::ZERO).response();
    assert_eq!(single_auth(&first).2, "s3cret-store-pw-v1");
    assert_eq!(first["cacheDuration"], "1m0s");
    let calls: Vec<String> = vault.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        calls,
        [
            "/v1/auth/kubernetes/login",
            "/v1/secret/data/registry/team-a"
        ]
    );
    let login: serde_json::Value = serde_json::from_slice(&vault.requests()[0].body).unwrap();
    assert_eq!(login["role"], "pullers");
    // The pod's own token is what logs in.
    assert!(
        login["jwt"]
            .as_str()
            .unwrap()
            .ends_with(crate::support::kube::SIGNATURE)
    );

    // Rotated: after the refresh the next answer has it, and the kept login token is reused
    // (no second login within its lease).
    secrets.set(
        "secret/registry/team-a",
        r#"{"username":"team-a","password":"s3cret-store-pw-v2"}"#,
    );
    let rotated = exec(&PULLER, Duration::from_secs(61)).response();
    assert_eq!(single_auth(&rotated).2, "s3cret-store-pw-v2");
    let logins = || {
        vault
            .requests()
            .iter()
            .filter(|r| r.target.ends_with("/login"))
            .count()
    };
    assert_eq!(logins(), 1, "the login token is kept across execs");
    // Past its lease, a new login.
    let _ = exec(&PULLER, Duration::from_secs(11 * 60)).response();
    assert_eq!(logins(), 2);

    // A service account the role does not admit: refused at login.
    let outsider = Account {
        namespace: "team-c",
        name: "ci",
        uid: "0d3b6f5e-3333-4aaa-8bbb-000000000003",
    };
    exec(&outsider, Duration::ZERO).assert_error(
        "rule 1 (vault) for registry.example.com: secret secret/registry/team-a: denied (Vault login auth/kubernetes/login (role pullers): HTTP 403: service account name not authorized)",
    );
}

#[test]
fn vault_a_role_whose_policy_may_not_read_is_refused_while_another_is_answered() {
    use crate::support::kube::{Account, PULLER, request as sa_request};
    let secrets = Secrets::default();
    secrets.set(
        "secret/registry/team-a",
        r#"{"username":"a","password":"s3cret-store-pw-pa"}"#,
    );
    secrets.set(
        "secret/registry/team-b",
        r#"{"username":"b","password":"s3cret-store-pw-pb"}"#,
    );
    static ROLES: &[VaultRole] = &[VaultRole {
        mount: "kubernetes",
        name: "pullers",
        admits: &["team-a:puller", "team-b:builder"],
        role_id: None,
        reads: &["secret/registry/team-a"],
    }];
    let vault = FakeHttp::start(stores::vault(secrets, ROLES, 600, None));
    let home = tempfile::tempdir().unwrap();
    // One rule per team's registry path, both logging in with the same role: the role's
    // policy reads team-a's secret only.
    let path = home.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[[registry]]\nmatch = [\"{HOST}/team-a\"]\nsource = \"vault\"\nidentity = \"service-account\"\naddress = \"{0}\"\nauth = \"kubernetes\"\nrole = \"pullers\"\npath = \"registry/team-a\"\n\n\
             [[registry]]\nmatch = [\"{HOST}/team-b\"]\nsource = \"vault\"\nidentity = \"service-account\"\naddress = \"{0}\"\nauth = \"kubernetes\"\nrole = \"pullers\"\npath = \"registry/team-b\"\n",
            vault.url()
        ),
    )
    .unwrap();
    let exec = |account: &Account, image: &str| {
        let mut cmd = pullcred(home.path());
        cmd.arg("--config").arg(&path);
        let token = account.token("vault", 3600);
        run(&mut cmd, &sa_request(image, &token, &[]))
    };
    assert_eq!(
        single_auth(&exec(&PULLER, &format!("{HOST}/team-a/app")).response()).2,
        "s3cret-store-pw-pa"
    );
    let builder = Account {
        namespace: "team-b",
        name: "builder",
        uid: "0d3b6f5e-2222-4aaa-8bbb-000000000002",
    };
    exec(&builder, &format!("{HOST}/team-b/app")).assert_error(
        "rule 2 (vault) for registry.example.com: secret secret/registry/team-b: denied (Vault read secret/data/registry/team-b: HTTP 403: 1 error occurred: * permission denied)",
    );
}

#[test]
fn vault_approle_node_reads_kv1_over_tls_trusting_its_ca_file() {
    use crate::support::http::Tls;
    use crate::support::secret_file;
    let secrets = Secrets::default();
    secrets.set("kv/registry/hub", "s3cret-store-pw-kv1");
    let tls = Tls::for_names(&["127.0.0.1"]);
    let vault = FakeHttp::start_at(
        "127.0.0.1:0".parse().unwrap(),
        Some(&tls),
        stores::vault(secrets, VAULT_ROLES, 600, None),
    );
    let home = tempfile::tempdir().unwrap();
    secret_file(&home.path().join("role-id"), "node-role-id\n");
    secret_file(&home.path().join("secret-id"), "s3cret-vault-secret-id\n");
    secret_file(&home.path().join("ca.pem"), &tls.ca_pem);
    let rule = format!(
        "source = \"vault\"\naddress = \"https://{}\"\nca_file = \"{1}/ca.pem\"\nauth = \"approle\"\nrole_id_file = \"{1}/role-id\"\nsecret_id_file = \"{1}/secret-id\"\nmount = \"kv\"\nkv_version = 1\npath = \"registry/hub\"\nusername = \"robot\"\n",
        vault.addr,
        home.path().display()
    );
    let mut cmd = with_rule(home.path(), &rule);
    let answer = pull(&mut cmd, &format!("{HOST}/app")).response();
    // With `username`, Vault's `password` field is the password.
    assert_eq!(
        single_auth(&answer),
        (HOST.into(), "robot".into(), "s3cret-store-pw-kv1".into())
    );
    let login: serde_json::Value = serde_json::from_slice(&vault.requests()[0].body).unwrap();
    assert_eq!(login["role_id"], "node-role-id");

    // Without the CA file the server is not trusted: no login is sent to it.
    let before = vault.requests().len();
    let other = tempfile::tempdir().unwrap();
    secret_file(&other.path().join("role-id"), "node-role-id\n");
    secret_file(&other.path().join("secret-id"), "s3cret-vault-secret-id\n");
    let untrusted = rule
        .replace(
            &format!("ca_file = \"{}/ca.pem\"\n", home.path().display()),
            "",
        )
        .replace(
            &home.path().display().to_string(),
            &other.path().display().to_string(),
        );
    let out = pull(
        &mut with_rule(other.path(), &untrusted),
        &format!("{HOST}/app"),
    );
    out.assert_error("the store did not answer (Vault login auth/approle/login: ");
    assert_eq!(vault.requests().len(), before);
}

#[test]
fn vault_a_kept_token_vault_forgot_logs_in_again_one_it_knows_but_may_not_read_does_not() {
    let secrets = Secrets::default();
    secrets.set(
        "secret/registry/hub",
        r#"{"username":"n","password":"s3cret-store-pw-re"}"#,
    );
    static ROLES: &[VaultRole] = &[
        VaultRole {
            mount: "approle",
            name: "node",
            admits: &[],
            role_id: Some(("node-role-id", "s3cret-vault-secret-id")),
            reads: &["secret/registry/hub"],
        },
        VaultRole {
            mount: "approle",
            name: "narrow",
            admits: &[],
            role_id: Some(("narrow-role-id", "s3cret-vault-narrow-id")),
            reads: &[],
        },
    ];
    let vault = FakeHttp::start(stores::vault(secrets.clone(), ROLES, 3600, None));
    let home = tempfile::tempdir().unwrap();
    crate::support::secret_file(&home.path().join("role-id"), "node-role-id\n");
    crate::support::secret_file(&home.path().join("secret-id"), "s3cret-vault-secret-id\n");
    let rule = format!(
        "source = \"vault\"\naddress = \"{}\"\nauth = \"approle\"\nrole_id_file = \"{1}/role-id\"\nsecret_id_file = \"{1}/secret-id\"\npath = \"registry/hub\"\nrefresh = \"1m\"\n",
        vault.url(),
        home.path().display()
    );
    let exec = |offset: Duration| {
        pull(
            &mut later(with_rule(home.path(), &rule), offset),
            &format!("{HOST}/app"),
        )
    };
    assert_eq!(
        single_auth(&exec(Duration::ZERO).response()).2,
        "s3cret-store-pw-re"
    );
    // Vault restarted without its tokens (a new fake): the kept one is refused and unknown.
    vault.set(stores::vault(secrets.clone(), ROLES, 3600, None));
    let before = vault.requests().len();
    assert_eq!(
        single_auth(&exec(Duration::from_secs(61)).response()).2,
        "s3cret-store-pw-re"
    );
    let calls: Vec<String> = vault.requests()[before..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        calls,
        [
            "/v1/secret/data/registry/hub",
            "/v1/auth/token/lookup-self",
            "/v1/auth/approle/login",
            "/v1/secret/data/registry/hub"
        ]
    );

    // A role whose policy reads nothing: the kept token is known, so no second login.
    crate::support::secret_file(&home.path().join("role-id"), "narrow-role-id\n");
    crate::support::secret_file(&home.path().join("secret-id"), "s3cret-vault-narrow-id\n");
    let logins = || {
        vault
            .requests()
            .iter()
            .filter(|r| r.target.ends_with("/login"))
            .count()
    };
    let before = logins();
    for offset in [200, 300] {
        exec(Duration::from_secs(offset)).assert_error(
            "secret secret/registry/hub: denied (Vault read secret/data/registry/hub: HTTP 403",
        );
    }
    // The changed ids were a new login (the key covers them); the second mint kept it.
    assert_eq!(logins(), before + 1);
}
