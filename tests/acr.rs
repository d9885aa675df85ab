//! Source `acr` against fakes of IMDS, Entra ID and ACR's exchange (support::azure): each
//! identity end to end through the binary, the chain's order, the node's azure.json in its
//! variants, every login server form and look-alike, mirrors, expiry, single flight and
//! stale-while-error, what is retried and what is not, proxies, and (over real TLS, in a
//! node's own name resolution) the built-in rules and the China cloud with no overrides.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::azure::{
    self, CLIENT_SECRET, FEDERATED_TOKEN, REFRESH_LIFE, SP_CLIENT, TENANT, USER_MI,
    USER_MI_RESOURCE, ZERO_USER, test_cert,
};
use crate::support::http::{FakeHttp, Reply, Tls};
use crate::support::node::{EtcFiles, in_node};
use crate::support::{V1, go_seconds, pullcred, request, run, secret_file, single_auth};

const ACR: &str = "myregistry.azurecr.io/team/app:1";
/// Every login server the exchange fake answers for.
const SERVICES: &[&str] = &[
    "myregistry.azurecr.io",
    "myregistry.azurecr.cn",
    "myregistry.azurecr.us",
    "myregistry.azurecr.de",
    "myregistry-e7ggabhxb3esdbdp.azurecr.io",
    "myregistry.westus.geo.azurecr.io",
    "myregistry-e7ggabhxb3esdbdp.eastus2.geo.azurecr.io",
    "myregistry.azurecr.example",
];
/// The variables Azure's SDKs read; none leaks in from the developer's shell.
const AZURE_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];

/// pullcred on a node with no Azure variables but what a test sets.
fn node(home: &Path) -> Command {
    let mut cmd = pullcred(home);
    for var in AZURE_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// The shared fixture, with this file's commands (`cmd`, `config`).
type Azure = azure::Node;

impl Azure {
    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    fn chmod(&self, rel: &str, mode: u32) {
        crate::support::chmod(&self.path(rel), mode);
    }

    /// The secret files a case may name: a client secret, the certificate with its key, a
    /// federated token.
    fn write_secrets(&self) {
        secret_file(&self.path("client.secret"), &format!("{CLIENT_SECRET}\n"));
        secret_file(&self.path("client.pem"), &test_cert().pem);
        secret_file(&self.path("federated.token"), FEDERATED_TOKEN);
    }

    /// Writes `name`: one `acr` rule with `head` (its `match`, maybe `registry`), the
    /// exchange and IMDS at the fakes, and `keys`.
    fn config(&self, name: &str, head: &str, keys: &str) -> PathBuf {
        let config = self.path(name);
        fs::write(
            &config,
            format!(
                "[[registry]]\n{head}\nsource = \"acr\"\nendpoint = \"{}\"\nimds_endpoint = \"{}\"\n{keys}\n",
                self.api.url(),
                self.imds.url()
            ),
        )
        .unwrap();
        config
    }

    /// A command with one `acr` rule for ACR's hosts (see `config`), plus `keys`; a cache
    /// of its own (`cache`).
    fn cmd(&self, keys: &str, cache: &str) -> Command {
        let config = self.config(
            &format!("{cache}.toml"),
            "match = [\"*.azurecr.io\", \"*.azurecr.cn\", \"*.*.geo.azurecr.io\"]",
            keys,
        );
        let mut cmd = node(self.home.path());
        cmd.arg("--config")
            .arg(config)
            .env("PULLCRED_CACHE_DIR", self.path(cache));
        cmd
    }

    /// `authority_host` naming the Entra fake.
    fn authority(&self) -> String {
        format!("authority_host = \"{}\"", self.api.url())
    }
}

/// The refresh token's claims, after checking the answer's shape: one entry for `host`,
/// the all-zero username.
fn answered(resp: &serde_json::Value, host: &str) -> serde_json::Value {
    let (key, user, password) = single_auth(resp);
    assert_eq!((key.as_str(), user.as_str()), (host, ZERO_USER), "{resp}");
    azure::claims(&password).expect("a JWT refresh token")
}

/// A failure at the most verbose log level: exit 1, nothing on stdout, the error last on
/// stderr after the debug lines (`run` has checked them all for secrets).
fn fails_verbosely(out: &crate::support::Run, want: &str) {
    assert_eq!((out.code, out.stdout.as_str()), (Some(1), ""), "{out:#?}");
    assert!(out.stderr.contains("pullcred: debug: "), "{out:#?}");
    let last = out.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("pullcred: rule ") && last.contains(want),
        "want {want:?}: {out:#?}"
    );
}

/// Files in a cache dir (none if it was never made).
fn files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Cache entries in a cache dir.
fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
    })
}

#[test]
fn each_identity_mints_end_to_end() {
    let az = Azure::new(SERVICES);
    az.write_secrets();
    let dir = az.home.path().display().to_string();
    let json = |name: &str, text: serde_json::Value| {
        secret_file(&az.path(name), &text.to_string());
        format!("azure_json = \"{dir}/{name}\"")
    };
    let sp_json = json(
        "sp.json",
        serde_json::json!({"cloud": "AzurePublicCloud", "tenantId": TENANT, "aadClientId": SP_CLIENT, "aadClientSecret": CLIENT_SECRET, "subscriptionId": "0000", "location": "westeurope"}),
    );
    // As AKS writes it for a managed identity: `msi` in the client fields.
    let mi = |user: &str| serde_json::json!({"cloud": "AzurePublicCloud", "tenantId": TENANT, "aadClientId": "msi", "aadClientSecret": "msi", "useManagedIdentityExtension": true, "userAssignedIdentityID": user});
    let system_json = json("system.json", mi(""));
    let user_json = json("user.json", mi(USER_MI));
    let resource_json = json("resource.json", mi(USER_MI_RESOURCE));
    let authority = az.authority();
    let api = az.api.url();
    let sp = |proof: &str| {
        format!("tenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"\n{proof}\n{authority}")
    };
    let env_sp = |proof: (&'static str, String)| {
        vec![
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_CLIENT_ID", SP_CLIENT.to_string()),
            ("AZURE_AUTHORITY_HOST", api.clone()),
            (proof.0, proof.1),
        ]
    };
    // (case, the rule's keys, the environment, who the refresh token is for)
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "rule secret",
            sp(&format!("client_secret_file = \"{dir}/client.secret\"")),
            vec![],
            "sp-secret",
        ),
        (
            "rule certificate",
            sp(&format!("client_certificate_file = \"{dir}/client.pem\"")),
            vec![],
            "sp-cert",
        ),
        (
            "rule managed identity by client id",
            format!("client_id = \"{USER_MI}\""),
            vec![],
            "mi-user",
        ),
        (
            "rule managed identity by resource id",
            format!("identity_resource_id = \"{USER_MI_RESOURCE}\""),
            vec![],
            "mi-user",
        ),
        (
            "environment secret",
            String::new(),
            env_sp(("AZURE_CLIENT_SECRET", CLIENT_SECRET.into())),
            "sp-secret",
        ),
        (
            "environment certificate",
            String::new(),
            env_sp(("AZURE_CLIENT_CERTIFICATE_PATH", format!("{dir}/client.pem"))),
            "sp-cert",
        ),
        (
            "environment federated token (workload identity)",
            String::new(),
            env_sp((
                "AZURE_FEDERATED_TOKEN_FILE",
                format!("{dir}/federated.token"),
            )),
            "workload",
        ),
        (
            "azure.json service principal",
            format!("{sp_json}\n{authority}"),
            vec![],
            "sp-secret",
        ),
        (
            "azure.json system-assigned identity",
            system_json,
            vec![],
            "mi-system",
        ),
        (
            "azure.json user-assigned identity",
            user_json,
            vec![],
            "mi-user",
        ),
        (
            "azure.json user-assigned identity by resource id",
            resource_json,
            vec![],
            "mi-user",
        ),
        ("the VM's own identity", String::new(), vec![], "mi-system"),
    ];
    for (i, (name, keys, env, who)) in cases.into_iter().enumerate() {
        let mut cmd = az.cmd(&keys, &format!("cache{i}"));
        cmd.arg("-vvv");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = run(&mut cmd, &request(V1, ACR));
        let resp = out.response();
        let claims = answered(&resp, "myregistry.azurecr.io");
        assert_eq!(claims["sub"], who, "{name}");
        assert_eq!(claims["service"], "myregistry.azurecr.io", "{name}");
        assert_eq!(claims["tenant"], TENANT, "{name}");
        // The refresh token's `exp` (3 h) is the expiry: refreshed in its last 25 % to 35 %.
        let d = go_seconds(&resp["cacheDuration"]);
        let life = REFRESH_LIFE.as_secs();
        assert!(
            (life * 65 / 100 - 10..=life * 75 / 100).contains(&d),
            "{name}: {resp}"
        );
        // Logs at the most verbose level, and no secret in them (`run` checks).
        assert!(out.stderr.contains("debug"), "{name}: {}", out.stderr);
    }
    // Every access token reached only the exchange: no other request carries one.
    let tokens_outside_exchange = az
        .api
        .requests()
        .iter()
        .chain(az.imds.requests().iter())
        .filter(|r| r.target != "/oauth2/exchange")
        .filter(|r| String::from_utf8_lossy(&r.body).contains(".s3cret-aad-sig"))
        .count();
    assert_eq!(tokens_outside_exchange, 0);
    // And a hit asks nobody: the first case again.
    let before = (az.api.requests().len(), az.imds.requests().len());
    let keys = sp(&format!("client_secret_file = \"{dir}/client.secret\""));
    run(&mut az.cmd(&keys, "cache0"), &request(V1, ACR)).response();
    assert_eq!((az.api.requests().len(), az.imds.requests().len()), before);
}

#[test]
fn the_imds_and_exchange_requests_are_as_documented() {
    let az = Azure::new(SERVICES);
    let out = run(
        &mut az.cmd(&format!("client_id = \"{USER_MI}\""), "c"),
        &request(V1, ACR),
    );
    out.response();
    let imds = az.imds.requests();
    assert_eq!(imds.len(), 1);
    assert_eq!(imds[0].method, "GET");
    assert_eq!(imds[0].header("metadata"), Some("true"));
    let query = crate::support::http::form(imds[0].target.split_once('?').unwrap().1.as_bytes());
    assert_eq!(
        query.into_iter().collect::<Vec<_>>(),
        [
            ("api-version".to_string(), "2018-02-01".to_string()),
            ("client_id".into(), USER_MI.into()),
            (
                "resource".into(),
                "https://containerregistry.azure.net".into()
            ),
        ]
    );
    let exchange = az.api.requests();
    assert_eq!(exchange.len(), 1);
    let f = crate::support::http::form(&exchange[0].body);
    assert_eq!(
        f.keys().map(String::as_str).collect::<Vec<_>>(),
        ["access_token", "grant_type", "service", "tenant"]
    );
    assert_eq!(f["grant_type"], "access_token");
    assert_eq!(f["service"], "myregistry.azurecr.io");
    // A managed identity's tenant is read from its token's `tid`.
    assert_eq!(f["tenant"], TENANT);
}

#[test]
fn the_chain_takes_the_first_identity_that_is_set_up() {
    let az = Azure::new(SERVICES);
    az.write_secrets();
    secret_file(
        &az.path("azure.json"),
        &serde_json::json!({"tenantId": TENANT, "useManagedIdentityExtension": true, "userAssignedIdentityID": USER_MI}).to_string(),
    );
    let node_json = format!("azure_json = \"{}\"", az.path("azure.json").display());
    let mint = |keys: &str, env: &[(&str, &str)], cache: &str| {
        let mut cmd = az.cmd(keys, cache);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let resp = run(&mut cmd, &request(V1, ACR)).response();
        answered(&resp, "myregistry.azurecr.io")["sub"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let api = az.api.url();
    let env = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", SP_CLIENT),
        ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
        ("AZURE_AUTHORITY_HOST", api.as_str()),
    ];
    // The environment first, then azure.json, then the VM's identity.
    assert_eq!(mint(&node_json, &env, "c1"), "sp-secret");
    assert_eq!(mint(&node_json, &[], "c2"), "mi-user");
    assert_eq!(mint("", &[], "c3"), "mi-system");
    // An environment that names no complete application is passed over, as Azure's SDKs do.
    assert_eq!(
        mint(&node_json, &[("AZURE_CLIENT_ID", SP_CLIENT)], "c4"),
        "mi-user"
    );
    // A rule's identity is the only one tried.
    let rule_sp = format!(
        "tenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"\nclient_secret_file = \"{}\"\n{}\n{node_json}",
        az.path("client.secret").display(),
        az.authority()
    );
    assert_eq!(mint(&rule_sp, &[], "c5"), "sp-secret");
    // A link that is set up but fails ends the search: a wrong secret is not hidden by the
    // managed identity behind it.
    let wrong = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", SP_CLIENT),
        ("AZURE_CLIENT_SECRET", "s3cret-azure-wrong"),
        ("AZURE_AUTHORITY_HOST", api.as_str()),
    ];
    let mut cmd = az.cmd("", "c6");
    for (k, v) in wrong {
        cmd.env(k, v);
    }
    run(&mut cmd, &request(V1, ACR))
        .assert_error("HTTP 401: invalid_client: AADSTS7000215: Invalid client secret provided.");
}

#[test]
fn with_no_identity_each_link_is_named_and_the_search_ends_fast() {
    let az = Azure::new(SERVICES);
    // Nothing answers on this address: as off Azure, connecting to IMDS goes unanswered.
    let mut cmd = node(az.home.path());
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", "https://10.255.255.1");
    let start = Instant::now();
    let out = run(&mut cmd, &request(V1, ACR));
    let took = start.elapsed();
    out.assert_error(
        "(acr) for myregistry.azurecr.io: no Azure credentials (tried environment: \
         AZURE_TENANT_ID, AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET, \
         AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE are not all set; azure.json: \
         no /etc/kubernetes/azure.json; managed identity: Azure IMDS https://10.255.255.1 \
         (system-assigned identity): ",
    );
    // Two connection attempts of 400 ms and one backoff: about a second, whatever the
    // request's deadline.
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(entries(&az.path("cache")), 0);
}

#[test]
fn azure_json_faults_are_named_without_its_secret() {
    let az = Azure::new(SERVICES);
    let cases: [(&str, String, u32, &str); 5] = [
        (
            "malformed",
            format!("{{\"aadClientSecret\": \"{CLIENT_SECRET}\", "),
            0o600,
            "not an Azure cloud config (line 1 column ",
        ),
        (
            "group-writable",
            serde_json::json!({"useManagedIdentityExtension": true}).to_string(),
            0o620,
            "refusing a secret file",
        ),
        (
            "certificate path",
            serde_json::json!({"tenantId": TENANT, "aadClientId": SP_CLIENT, "aadClientCertPath": "/etc/kubernetes/sp.pfx"}).to_string(),
            0o600,
            "aadClientCertPath (PKCS#12) is not read",
        ),
        (
            "unknown cloud",
            serde_json::json!({"cloud": "AzureStackCloud", "useManagedIdentityExtension": true}).to_string(),
            0o600,
            "cloud \"AzureStackCloud\" is not AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud",
        ),
        (
            "no identity",
            serde_json::json!({"tenantId": TENANT, "aadClientSecret": CLIENT_SECRET}).to_string(),
            0o600,
            "aadClientSecret without aadClientId",
        ),
    ];
    for (i, (name, text, mode, want)) in cases.into_iter().enumerate() {
        let path = az.path(&format!("azure{i}.json"));
        fs::write(&path, text).unwrap();
        crate::support::chmod(&path, mode);
        let keys = format!("azure_json = \"{}\"", path.display());
        let mut cmd = az.cmd(&keys, &format!("c{i}"));
        let out = run(cmd.arg("-vvv"), &request(V1, ACR));
        fails_verbosely(&out, want);
        assert!(!out.stderr.contains(CLIENT_SECRET), "{name}");
    }
    // None of them asked IMDS or Entra: a broken azure.json is not passed over.
    assert_eq!(az.imds.requests().len() + az.api.requests().len(), 0);
}

#[test]
fn secret_files_get_the_secret_file_checks() {
    let az = Azure::new(SERVICES);
    az.write_secrets();
    let dir = az.home.path().display().to_string();
    let sp = |proof: &str| {
        format!(
            "tenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"\n{proof}\n{}",
            az.authority()
        )
    };
    let secret = sp(&format!("client_secret_file = \"{dir}/client.secret\""));
    let cert = sp(&format!("client_certificate_file = \"{dir}/client.pem\""));
    let env = |name: &'static str, file: &str| {
        vec![
            ("AZURE_TENANT_ID", TENANT.to_string()),
            ("AZURE_CLIENT_ID", SP_CLIENT.to_string()),
            ("AZURE_AUTHORITY_HOST", az.api.url()),
            (name, format!("{dir}/{file}")),
        ]
    };
    type Case<'a> = (&'a str, String, Vec<(&'a str, String)>);
    let cases: [Case; 3] = [
        ("client.secret", secret.clone(), vec![]),
        ("client.pem", cert, vec![]),
        (
            "federated.token",
            String::new(),
            env("AZURE_FEDERATED_TOKEN_FILE", "federated.token"),
        ),
    ];
    for (i, (file, keys, env)) in cases.into_iter().enumerate() {
        az.chmod(file, 0o660);
        let mut cmd = az.cmd(&keys, &format!("c{i}"));
        cmd.envs(env);
        let out = run(cmd.arg("-vvv"), &request(V1, ACR));
        fails_verbosely(&out, &format!("{dir}/{file}: refusing a secret file"));
        az.chmod(file, 0o600);
    }
    // A certificate file without a key, and one that is not PEM at all.
    secret_file(
        &az.path("client.pem"),
        test_cert()
            .pem
            .split("-----BEGIN PRIVATE KEY")
            .next()
            .unwrap(),
    );
    let cert = sp(&format!("client_certificate_file = \"{dir}/client.pem\""));
    run(&mut az.cmd(&cert, "c3"), &request(V1, ACR))
        .assert_error("client.pem: the private key is not a PEM private key");
    // An empty secret file.
    secret_file(&az.path("client.secret"), "\n");
    run(&mut az.cmd(&secret, "c4"), &request(V1, ACR)).assert_error("client.secret: empty");
    // The authority from the environment must be https too.
    let mut cmd = az.cmd("", "c5");
    cmd.envs(env("AZURE_CLIENT_SECRET", "x"))
        .env("AZURE_AUTHORITY_HOST", "http://login.example.com");
    run(&mut cmd, &request(V1, ACR)).assert_error(
        "AZURE_AUTHORITY_HOST: endpoint \"http://login.example.com\" must be https://",
    );
    assert_eq!(az.api.requests().len(), 0, "nothing was sent");
}

#[test]
fn every_login_server_form_mints_and_look_alikes_are_refused() {
    let az = Azure::new(SERVICES);
    let keys =
        "suffixes = [\"azurecr.example\"]\nclient_id = \"11111111-2222-4333-8444-555555555555\"";
    // Wide patterns, so that the source's own check is what refuses.
    let config = az.config(
        "wide.toml",
        "match = [\"*.azurecr.*\", \"*.*.azurecr.*\", \"*.*.*.azurecr.*\", \"*.azurecr.io.evil.com\", \"azurecr.io\"]",
        keys,
    );
    let cmd = |cache: &str| {
        let mut cmd = pullcred(az.home.path());
        cmd.arg("--config")
            .arg(&config)
            .env("PULLCRED_CACHE_DIR", az.path(cache));
        cmd
    };
    for host in SERVICES {
        let resp = run(&mut cmd("ok"), &request(V1, &format!("{host}/app:1"))).response();
        assert_eq!(answered(&resp, host)["service"], *host);
    }
    for host in [
        "foo.azurecr.io.evil.com",
        "azurecr.io",
        "foo.bar.azurecr.io",
        "myregistry.westus.data.azurecr.io",
        "abcd.azurecr.io",
        "my_registry.azurecr.io",
        "myregistry.azurecr.com",
    ] {
        let out = run(&mut cmd("refused"), &request(V1, &format!("{host}/app:1")));
        out.assert_error("is not an ACR login server");
    }
    // Refused before the cache: not even a lock file.
    assert_eq!(files(&az.path("refused")), 0);
    assert_eq!(az.api.requests().len(), SERVICES.len());
}

#[test]
fn the_built_in_rules_cover_every_form_and_no_look_alike() {
    let home = tempfile::tempdir().unwrap();
    let patterns = run(pullcred(home.path()).args(["config", "match-images"]), b"");
    for p in [
        "*.azurecr.io",
        "*.azurecr.cn",
        "*.azurecr.us",
        "*.azurecr.de",
        "*.*.geo.azurecr.io",
    ] {
        assert!(patterns.stdout.lines().any(|l| l == p), "{p}: {patterns:?}");
    }
    // Hosts no built-in rule matches get no credentials (not an error).
    for host in [
        "foo.bar.azurecr.io",
        "myregistry.westus.data.azurecr.io",
        "foo.azurecr.io.evil.com",
    ] {
        let resp = run(
            &mut pullcred(home.path()),
            &request(V1, &format!("{host}/a")),
        )
        .response();
        assert_eq!(resp["auth"], serde_json::json!({}), "{host}");
    }
}

#[test]
fn a_mirror_rule_mints_for_the_acr_and_answers_for_the_image_host() {
    let az = Azure::new(SERVICES);
    let config = az.config(
        "mirror.toml",
        "match = [\"mcr.microsoft.com\"]\nregistry = \"myregistry.azurecr.io\"",
        "",
    );
    let mut cmd = pullcred(az.home.path());
    cmd.arg("--config").arg(&config);
    let resp = run(
        &mut cmd,
        &request(V1, "mcr.microsoft.com/dotnet/runtime:8.0"),
    )
    .response();
    let claims = answered(&resp, "mcr.microsoft.com");
    assert_eq!(claims["service"], "myregistry.azurecr.io");
}

#[test]
fn one_mint_for_many_execs_and_the_cached_token_outlives_an_outage() {
    let az = Azure::new(SERVICES);
    let keys = format!("client_id = \"{USER_MI}\"");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| run(&mut az.cmd(&keys, "c"), &request(V1, ACR)).response());
        }
    });
    assert_eq!(az.imds.requests().len(), 1, "single flight");
    assert_eq!(az.api.requests().len(), 1, "single flight");
    let first = single_auth(&run(&mut az.cmd(&keys, "c"), &request(V1, ACR)).response()).2;
    // 2.5 hours on: due for refresh, half an hour still valid; the exchange is down.
    az.api.set(|_| Reply::Respond {
        status: 503,
        headers: vec![],
        body: "unavailable".into(),
    });
    let mut cmd = az.cmd(&keys, "c");
    cmd.env("PULLCRED_TEST_CLOCK_OFFSET", "9000");
    let out = run(&mut cmd, &request(V1, ACR));
    let resp = out.response();
    assert_eq!(single_auth(&resp).2, first);
    assert!(
        out.stderr.contains("HTTP 503")
            && out.stderr.contains("answering with the cached credential"),
        "{}",
        out.stderr
    );
    assert!(go_seconds(&resp["cacheDuration"]) <= 60, "{resp}");
    // Three hours on, it has expired: not served any more.
    let mut cmd = az.cmd(&keys, "c");
    cmd.env("PULLCRED_TEST_CLOCK_OFFSET", "10900");
    run(&mut cmd, &request(V1, ACR)).assert_error("ACR token exchange");
}

#[test]
fn client_errors_are_not_retried() {
    let az = Azure::new(SERVICES);
    // An unknown user-assigned identity: IMDS answers 400.
    let keys = "client_id = \"99999999-2222-4333-8444-555555555555\"";
    let out = run(&mut az.cmd(keys, "c1"), &request(V1, ACR));
    out.assert_error("HTTP 400: invalid_request: Identity not found");
    assert!(!out.stderr.contains("gave up"));
    assert_eq!(az.imds.requests().len(), 1);
    // The exchange refuses the token: 401, asked once.
    az.api.set(|_| {
        crate::support::http::json(
            401,
            serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}),
            vec![],
        )
    });
    let out = run(
        &mut az.cmd(&format!("client_id = \"{USER_MI}\""), "c2"),
        &request(V1, ACR),
    );
    out.assert_error("ACR token exchange");
    out.assert_error("HTTP 401: UNAUTHORIZED: authentication required");
    assert_eq!(az.api.requests().len(), 1);
    assert_eq!(entries(&az.path("c2")), 0);
}

#[test]
fn entra_and_the_exchange_go_through_the_proxy_and_imds_never_does() {
    let az = Azure::new(SERVICES);
    az.write_secrets();
    let to_api = az.api.addr;
    let proxy = FakeHttp::start(move |_| Reply::Forward(to_api));
    let keys = format!(
        "tenant_id = \"{TENANT}\"\nclient_id = \"{SP_CLIENT}\"\nclient_secret_file = \"{}\"\n{}",
        az.path("client.secret").display(),
        az.authority()
    );
    let mut cmd = az.cmd(&keys, "c1");
    cmd.env("HTTP_PROXY", proxy.url());
    run(&mut cmd, &request(V1, ACR)).response();
    let asked: Vec<String> = proxy.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        asked,
        [
            format!("{}/{TENANT}/oauth2/v2.0/token", az.api.url()),
            format!("{}/oauth2/exchange", az.api.url())
        ]
    );
    let mut cmd = az.cmd("", "c2");
    cmd.env("HTTP_PROXY", proxy.url());
    run(&mut cmd, &request(V1, ACR)).response();
    assert_eq!(
        proxy.requests().len(),
        3,
        "only the exchange went through the proxy"
    );
    assert_eq!(az.imds.requests().len(), 1);
}

#[test]
fn rule_options_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let check = |keys: &str| {
        let config = home.path().join("c.toml");
        fs::write(
            &config,
            format!("[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\n{keys}\n"),
        )
        .unwrap();
        run(
            pullcred(home.path())
                .args(["config", "check", "--no-files", "--config"])
                .arg(&config),
            b"",
        )
    };
    for (keys, want) in [
        (
            "tenant_id = \"t\"\nclient_id = \"c\"",
            "a service principal needs tenant_id, client_id and one of",
        ),
        (
            "client_secret_file = \"s\"",
            "a service principal needs tenant_id, client_id and one of",
        ),
        (
            "tenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"s\"\nclient_certificate_file = \"c\"",
            "set one of client_secret_file and client_certificate_file",
        ),
        (
            "client_id = \"c\"\nidentity_resource_id = \"/subscriptions/x\"",
            "one of client_id and identity_resource_id",
        ),
        ("identity_resource_id = \"x\"", "is not a resource ID"),
        (
            "tenant_id = \"a/b\"",
            "tenant_id \"a/b\" is not a GUID or domain name",
        ),
        (
            "authority_host = \"http://login.microsoftonline.com\"",
            "must be https://",
        ),
        (
            "endpoint = \"http://myregistry.azurecr.io\"",
            "must be https://",
        ),
        (
            "imds_endpoint = \"http://10.0.0.1\"",
            "plain http only to 169.254.169.254",
        ),
        ("suffixes = [\"*.example\"]", "is not a DNS suffix"),
        (
            "key_file = \"k\"",
            "key `key_file` does not apply to source \"acr\"",
        ),
    ] {
        let out = check(keys);
        assert_eq!(out.code, Some(1), "{keys}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{keys}: want {want:?} in {}",
            out.stderr
        );
    }
    let ok = check(
        "tenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"c\"\nclient_certificate_file = \"sp.pem\"\nauthority_host = \"https://login.microsoftonline.us\"\nsuffixes = [\"azurecr.example\"]",
    );
    assert_eq!(ok.code, Some(0), "{ok:?}");
}

/// A node with its own name resolution (support::node): `names` resolve to `ip`, where a
/// TLS fake of Azure listens on port 443 with a certificate of a test CA that the exec
/// trusts through `SSL_CERT_FILE`. Needs root (port 443, mount namespaces).
fn azure_over_tls(
    home: &Path,
    ip: &str,
    names: &[&str],
    handler: impl Fn(&crate::support::http::Request) -> Reply + Send + Sync + 'static,
) -> (FakeHttp, EtcFiles, PathBuf) {
    let tls = Tls::for_names(names);
    let server = FakeHttp::start_at(format!("{ip}:443").parse().unwrap(), Some(&tls), handler);
    let ca = home.join("ca.pem");
    fs::write(&ca, &tls.ca_pem).unwrap();
    let hosts = names
        .iter()
        .map(|n| format!("{ip} {n}\n"))
        .collect::<String>();
    let files = EtcFiles {
        hosts: Some(format!("127.0.0.1 localhost\n{hosts}")),
        ..EtcFiles::default()
    };
    (server, files, ca)
}

#[test]
fn an_aks_node_needs_no_config() {
    // The built-in rules, IMDS (here through `AZURE_POD_IDENTITY_AUTHORITY_HOST`, as Azure's
    // SDKs read it), and the exchange at the login server itself, over TLS.
    let home = tempfile::tempdir().unwrap();
    let imds = FakeHttp::start(azure::imds());
    let (acr, files, ca) = azure_over_tls(
        home.path(),
        "127.0.0.71",
        &["myregistry.azurecr.io", "myregistry.westus.geo.azurecr.io"],
        azure::exchange(SERVICES),
    );
    // Trust as pullcred reads it (roots): `SSL_CERT_FILE` alone is the bundle; with
    // `SSL_CERT_DIR` too (here an empty one) the TLS libraries load both, as before.
    let empty = home.path().join("no-certs");
    fs::create_dir_all(&empty).unwrap();
    for (host, cert_dir) in [
        ("myregistry.azurecr.io", None),
        ("myregistry.westus.geo.azurecr.io", Some(&empty)),
    ] {
        let mut cmd = node(home.path());
        cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.url())
            .env("SSL_CERT_FILE", &ca);
        match cert_dir {
            Some(dir) => cmd.env("SSL_CERT_DIR", dir),
            None => cmd.env_remove("SSL_CERT_DIR"),
        };
        let out = run(
            &mut in_node(&cmd, home.path(), &files, None),
            &request(V1, &format!("{host}/app:1")),
        );
        let claims = answered(&out.response(), host);
        assert_eq!(claims["sub"], "mi-system");
        assert_eq!(claims["service"], host);
    }
    let hosts: Vec<String> = acr
        .requests()
        .iter()
        .map(|r| r.header("host").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        hosts,
        ["myregistry.azurecr.io", "myregistry.westus.geo.azurecr.io"]
    );
    // The bundle is all that is trusted: without the test CA in it, the login server's
    // certificate is refused.
    let mut cmd = node(home.path());
    cmd.env("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.url())
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .env_remove("SSL_CERT_DIR")
        .env("PULLCRED_CACHE_DIR", home.path().join("other-cache"));
    let out = run(
        &mut in_node(&cmd, home.path(), &files, None),
        &request(V1, "myregistry.azurecr.io/app:1"),
    );
    out.assert_error("ACR token exchange https://myregistry.azurecr.io/oauth2/exchange");
    out.assert_error("invalid peer certificate: UnknownIssuer");
}

#[test]
fn azure_json_of_the_china_cloud_uses_its_authority() {
    let home = tempfile::tempdir().unwrap();
    let names = ["login.chinacloudapi.cn", "myregistry.azurecr.cn"];
    let (cloud, files, ca) = azure_over_tls(
        home.path(),
        "127.0.0.72",
        &names,
        azure::entra_and_exchange("https://login.chinacloudapi.cn".into(), SERVICES),
    );
    let json = home.path().join("azure.json");
    secret_file(
        &json,
        &serde_json::json!({"cloud": "AzureChinaCloud", "tenantId": TENANT, "aadClientId": SP_CLIENT, "aadClientSecret": CLIENT_SECRET}).to_string(),
    );
    let config = home.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "[[registry]]\nmatch = [\"*.azurecr.cn\"]\nsource = \"acr\"\nazure_json = \"{}\"\n",
            json.display()
        ),
    )
    .unwrap();
    let mut cmd = node(home.path());
    cmd.arg("--config").arg(&config).env("SSL_CERT_FILE", &ca);
    let out = run(
        &mut in_node(&cmd, home.path(), &files, None),
        &request(V1, "myregistry.azurecr.cn/app:1"),
    );
    let claims = answered(&out.response(), "myregistry.azurecr.cn");
    assert_eq!(claims["sub"], "sp-secret");
    let asked: Vec<(String, String)> = cloud
        .requests()
        .iter()
        .map(|r| (r.header("host").unwrap_or("").to_string(), r.target.clone()))
        .collect();
    assert_eq!(
        asked,
        [
            (names[0].to_string(), format!("/{TENANT}/oauth2/v2.0/token")),
            (names[1].to_string(), "/oauth2/exchange".to_string()),
        ]
    );
}
