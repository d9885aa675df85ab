//! The fault matrix: every source that calls out (ECR, ECR Public, STS, Google's token
//! endpoint, Entra ID's token endpoint, ACR's exchange, the four secret stores, credential
//! helpers)
//! against every way an upstream fails. Each exec must end within its deadline and either
//! fail with one stderr line naming the source and the kind of failure (no entry cached), or
//! answer with the still-valid cached credential (an entry due for refresh).
//!
//! Every AWS case runs in a private mount namespace (support::node) with the endpoint named
//! `fault.pullcred.test`, resolved from the namespace's `/etc/hosts`, so that "DNS never
//! answers" is one more fault of the same endpoint.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::aws::{self, MOTO_ACCOUNT};
use crate::support::azure;
use crate::support::google;
use crate::support::http::{FakeHttp, Reply, Request, aws_json_error};
use crate::support::node::{EtcFiles, SilentDns, in_node};
use crate::support::stores::{self, Secrets, VaultRole};
use crate::support::{Fixture, Run, SLACK, V1, assert_within, pullcred, request, run, single_auth};

/// The config's deadline for every case.
const DEADLINE: Duration = Duration::from_secs(5);
const FAULT_HOST: &str = "fault.pullcred.test";

#[derive(Clone, Copy, Debug)]
enum Fault {
    Http500,
    Http503,
    Http429,
    Http429RetryAfter,
    Hang,
    CloseMidBody,
    Garbage,
    HugeDeclared,
    HugeStreamed,
    AnswersAfter30s,
    Refused,
    DnsNeverAnswers,
}

const FAULTS: [Fault; 12] = [
    Fault::Http500,
    Fault::Http503,
    Fault::Http429,
    Fault::Http429RetryAfter,
    Fault::Hang,
    Fault::CloseMidBody,
    Fault::Garbage,
    Fault::HugeDeclared,
    Fault::HugeStreamed,
    Fault::AnswersAfter30s,
    Fault::Refused,
    Fault::DnsNeverAnswers,
];

impl Fault {
    /// What the faulty upstream answers (`Refused` and `DnsNeverAnswers` never get asked).
    fn reply(self) -> Reply {
        let text = |status| Reply::Respond {
            status,
            headers: vec![("content-type", "text/html".into())],
            body: "<html>upstream trouble</html>".into(),
        };
        match self {
            Fault::Http500 => text(500),
            Fault::Http503 => text(503),
            Fault::Http429 => aws_json_error(429, "ThrottlingException", "Rate exceeded"),
            Fault::Http429RetryAfter => {
                let Reply::Respond {
                    body, mut headers, ..
                } = aws_json_error(429, "ThrottlingException", "Rate exceeded")
                else {
                    unreachable!()
                };
                headers.push(("retry-after", "120".into()));
                Reply::Respond {
                    status: 429,
                    headers,
                    body,
                }
            }
            Fault::Hang | Fault::Refused | Fault::DnsNeverAnswers => Reply::Hang,
            Fault::CloseMidBody => Reply::Truncated {
                declared: 4096,
                body: "{\"authorizationData\":[{\"authoriz".into(),
            },
            Fault::Garbage => Reply::Respond {
                status: 200,
                headers: vec![("content-type", "application/x-amz-json-1.1".into())],
                body: "\u{1}\u{2}not json at all".into(),
            },
            Fault::HugeDeclared => Reply::Huge {
                bytes: 100 << 20,
                declared: true,
            },
            Fault::HugeStreamed => Reply::Huge {
                bytes: 100 << 20,
                declared: false,
            },
            Fault::AnswersAfter30s => Reply::Delayed(
                Duration::from_secs(30),
                Box::new(aws_json_error(500, "InternalFailure", "late")),
            ),
        }
    }

    /// A fragment of the one error line each fault must produce from `upstream`.
    fn names(self, upstream: Upstream) -> String {
        if let Fault::DnsNeverAnswers = self {
            // `localhost` never reaches DNS (the resolver answers it itself, RFC 6761), so
            // for Google's loopback token endpoint this fault is a hang like any other; the
            // resolver under both HTTP stacks is the same one, faulted through the AWS rows.
            // Likewise Azure's loopback endpoints.
            if upstream.host() == "localhost" {
                return ": no answer within".into();
            }
            return format!(
                "cannot resolve {}: no name server answered within",
                upstream.host()
            );
        }
        if let (Fault::Http500 | Fault::Http503, true) = (self, upstream.is_store()) {
            let status = if let Fault::Http500 = self { 500 } else { 503 };
            let shape = if upstream == Upstream::SecretsManager {
                "an AWS"
            } else {
                "an API"
            };
            return format!("HTTP {status}: not {shape} error answer (gave up after 3 attempts)");
        }
        match self {
            // OAuth answers (Google's, Entra's, ACR's): the status, and that the body was no
            // OAuth error.
            Fault::Http500 if upstream.host() == "localhost" => {
                "HTTP 500: not an OAuth error answer (gave up after 3 attempts)"
            }
            Fault::Http503 if upstream.host() == "localhost" => {
                "HTTP 503: not an OAuth error answer (gave up after 3 attempts)"
            }
            // An HTML error page: no AWS error in it to name.
            Fault::Http500 => "unreadable answer (HTTP 500",
            Fault::Http503 => "unreadable answer (HTTP 503",
            // ECR's JSON error is read ("HTTP 429 ThrottlingException: Rate exceeded (gave up
            // after 3 attempts)"); STS speaks XML, so there it is unreadable, with its status.
            Fault::Http429 | Fault::Http429RetryAfter => "HTTP 429",
            // The step is named: "ECR GetAuthorizationToken: no answer within 4.0s",
            // "STS AssumeRole arn:…: no answer within 4.0s".
            Fault::Hang | Fault::AnswersAfter30s => ": no answer within",
            Fault::CloseMidBody => "unreadable answer",
            Fault::Garbage => "unreadable answer",
            Fault::HugeDeclared | Fault::HugeStreamed => "larger than 1048576 bytes",
            Fault::Refused => "cannot connect",
            Fault::DnsNeverAnswers => unreachable!(),
        }
        .to_string()
    }
}

/// Which upstream call the fault hits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Upstream {
    Ecr,
    EcrPublic,
    /// STS AssumeRole before ECR (a rule with `role_arn`).
    Sts,
    /// Google's token endpoint, for a service account key (source `gcp`).
    GoogleToken,
    /// Entra ID's token endpoint, for a service principal's secret (source `acr`).
    EntraToken,
    /// ACR's exchange, after a healthy Entra ID.
    AcrExchange,
    /// Secrets Manager's GetSecretValue (node keys, no role).
    SecretsManager,
    /// Secret Manager's access, after a healthy Google token endpoint.
    SecretManager,
    /// Key Vault's secret read, after a healthy Entra ID.
    KeyVault,
    /// Vault: its AppRole login and the read.
    Vault,
}

/// The value every store holds in the matrix.
const STORED: &str = r#"{"username":"robot","password":"s3cret-store-pw-faults"}"#;

static FAULT_VAULT_ROLES: &[VaultRole] = &[VaultRole {
    mount: "approle",
    name: "node",
    admits: &[],
    role_id: Some(("faults-role", "s3cret-vault-faults-secret-id")),
    reads: &["secret/registry/hub"],
}];

impl Upstream {
    fn image(self) -> String {
        match self {
            Upstream::Ecr => "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:1".into(),
            Upstream::EcrPublic => "public.ecr.aws/team/app:1".into(),
            Upstream::Sts => "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1".into(),
            Upstream::GoogleToken => "us-docker.pkg.dev/proj/repo/app:1".into(),
            Upstream::EntraToken | Upstream::AcrExchange => "myregistry.azurecr.io/app:1".into(),
            Upstream::SecretsManager => "sm.example.com/app:1".into(),
            Upstream::SecretManager => "gsm.example.com/app:1".into(),
            Upstream::KeyVault => "akv.example.com/app:1".into(),
            Upstream::Vault => "vault.example.com/app:1".into(),
        }
    }

    fn is_store(self) -> bool {
        matches!(
            self,
            Upstream::SecretsManager
                | Upstream::SecretManager
                | Upstream::KeyVault
                | Upstream::Vault
        )
    }

    /// The endpoint's name: Google's and Azure's endpoints may be plain http only to
    /// loopback, so it is `localhost` (resolved like any name, from /etc/hosts or DNS).
    fn host(self) -> &'static str {
        match self {
            Upstream::GoogleToken | Upstream::EntraToken | Upstream::AcrExchange => "localhost",
            // Stores take plain http only to loopback, Secrets Manager too.
            u if u.is_store() => "localhost",
            _ => FAULT_HOST,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Upstream::GoogleToken => "gcp",
            Upstream::EntraToken | Upstream::AcrExchange => "acr",
            Upstream::SecretsManager => "aws-secrets-manager",
            Upstream::SecretManager => "gcp-secret-manager",
            Upstream::KeyVault => "azure-key-vault",
            Upstream::Vault => "vault",
            _ => "ecr",
        }
    }

    /// Whether a healthy mint's password is this upstream's.
    fn minted(self, password: &str) -> bool {
        match self {
            Upstream::Ecr => password == format!("{MOTO_ACCOUNT}-auth-token"),
            Upstream::EcrPublic => password == "s3cret-ecr-public-pw",
            Upstream::Sts => password == "210987654321-auth-token",
            Upstream::GoogleToken => password == "s3cret-gcp-token-for-puller",
            // A refresh token for the service principal.
            Upstream::EntraToken | Upstream::AcrExchange => {
                azure::claims(password).is_some_and(|c| c["sub"] == "sp-secret")
            }
            _ => password == "s3cret-store-pw-faults",
        }
    }

    /// The healthy answer for a request to the server on `port`.
    fn healthy(self, port: u16) -> Box<dyn Fn(&Request) -> Reply + Send + Sync> {
        match self {
            Upstream::GoogleToken => Box::new(google::token_endpoint(format!(
                "http://localhost:{port}/token"
            ))),
            Upstream::EntraToken | Upstream::AcrExchange => Box::new(azure::entra_and_exchange(
                format!("http://localhost:{port}"),
                &["myregistry.azurecr.io"],
            )),
            Upstream::EcrPublic => Box::new(aws::ecr_public_answer(
                "s3cret-ecr-public-pw",
                Duration::from_secs(6 * 3600),
            )),
            Upstream::Ecr | Upstream::Sts | Upstream::SecretsManager => {
                if self == Upstream::SecretsManager {
                    fault_matrix_secret();
                }
                let moto = aws::moto();
                Box::new(move |_| Reply::Forward(moto))
            }
            Upstream::SecretManager => {
                let secrets = Secrets::default();
                secrets.set("projects/faults/secrets/hub", STORED);
                let token = google::token_endpoint(format!("http://localhost:{port}/token"));
                let store = stores::secret_manager(secrets, "s3cret-gcp-token-for-", &[]);
                Box::new(move |req| {
                    if req.target == "/token" {
                        token(req)
                    } else {
                        store(req)
                    }
                })
            }
            Upstream::KeyVault => {
                let secrets = Secrets::default();
                secrets.set("hub", STORED);
                let entra = azure::entra(format!("http://localhost:{port}"));
                let store = stores::key_vault(secrets, &["sp-secret"]);
                Box::new(move |req| {
                    if req.target.starts_with("/secrets/") {
                        store(req)
                    } else {
                        entra(req)
                    }
                })
            }
            Upstream::Vault => {
                let secrets = Secrets::default();
                secrets.set("secret/registry/hub", STORED);
                Box::new(stores::vault(secrets, FAULT_VAULT_ROLES, 3600, None))
            }
        }
    }

    /// The answer once the fault is on: every call for ECR and ECR Public, only AssumeRole
    /// for STS (ECR stays healthy behind it).
    fn faulty(self, fault: Fault, port: u16) -> Box<dyn Fn(&Request) -> Reply + Send + Sync> {
        match self {
            Upstream::Sts => {
                let moto = aws::moto();
                Box::new(move |req| {
                    if req.aws_operation() == "AssumeRole" {
                        fault.reply()
                    } else {
                        Reply::Forward(moto)
                    }
                })
            }
            Upstream::AcrExchange => {
                let entra = self.healthy(port);
                Box::new(move |req| {
                    if req.target == "/oauth2/exchange" {
                        fault.reply()
                    } else {
                        entra(req)
                    }
                })
            }
            // The store's read alone; the token endpoint behind it stays healthy.
            Upstream::SecretManager | Upstream::KeyVault => {
                let healthy = self.healthy(port);
                Box::new(move |req| {
                    if req.target.ends_with(":access") || req.target.starts_with("/secrets/") {
                        fault.reply()
                    } else {
                        healthy(req)
                    }
                })
            }
            _ => Box::new(move |_| fault.reply()),
        }
    }

    /// The clock for a mint with six hours left, and for one an hour before expiry (inside
    /// the refresh window, still valid).
    fn clock(self, due: bool) -> String {
        let left = Duration::from_secs(if due { 3600 } else { 6 * 3600 });
        match self {
            // The fake's tokens live six hours from the real now.
            Upstream::EcrPublic => if due { "18000" } else { "0" }.into(),
            // Google's, an hour: 50 minutes on, due for refresh.
            Upstream::GoogleToken => if due { "3000" } else { "0" }.into(),
            // ACR's refresh tokens, three hours: two and a half on, due.
            Upstream::EntraToken | Upstream::AcrExchange => if due { "9000" } else { "0" }.into(),
            // The stores' rules refresh after 10 minutes and serve the last value an hour
            // more; Vault's login lasts an hour (its kept token is still good).
            u if u.is_store() => if due { "700" } else { "0" }.into(),
            _ => aws::clock_before_moto_expiry(left),
        }
    }
}

/// One case: a home with the config, the endpoint server, and how to run an exec.
struct Case {
    upstream: Upstream,
    fault: Fault,
    home: tempfile::TempDir,
    server: Option<FakeHttp>,
    port: u16,
    dns: Option<SilentDns>,
}

impl Case {
    fn new(upstream: Upstream, fault: Fault, dns_ip: u8) -> Self {
        let home = tempfile::tempdir().unwrap();
        let server = FakeHttp::start(|_| Reply::Hang);
        let port = server.addr.port();
        server.set(upstream.healthy(port));
        crate::support::secret_file(&home.path().join("client.secret"), azure::CLIENT_SECRET);
        crate::support::secret_file(&home.path().join("role-id"), "faults-role\n");
        crate::support::secret_file(
            &home.path().join("secret-id"),
            "s3cret-vault-faults-secret-id\n",
        );
        crate::support::secret_file(
            &home.path().join("sa.json"),
            &google::key_file(
                "puller@proj.iam.gserviceaccount.com",
                &format!("http://localhost:{port}/token"),
            ),
        );
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "deadline = \"{}s\"\n[[registry]]\nmatch = [\"*.dkr.ecr.eu-west-1.amazonaws.com\"]\nsource = \"ecr\"\nrole_arn = \"arn:aws:iam::210987654321:role/puller\"\n[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\", \"public.ecr.aws\"]\nsource = \"ecr\"\n[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\nkey_file = \"sa.json\"\n[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"client.secret\"\nauthority_host = \"http://localhost:{port}\"\nendpoint = \"http://localhost:{port}\"\n{}",
                DEADLINE.as_secs(),
                azure::TENANT,
                azure::SP_CLIENT,
                store_rules(port),
            ),
        )
        .unwrap();
        let dns = matches!(fault, Fault::DnsNeverAnswers).then(|| SilentDns::start(dns_ip));
        Case {
            upstream,
            fault,
            home,
            server: Some(server),
            port,
            dns,
        }
    }

    fn exec(&self, due: bool, resolvable: bool) -> (Run, Duration) {
        let endpoint = format!("http://{}:{}", self.upstream.host(), self.port);
        let mut cmd: Command = pullcred(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"))
            .env("AWS_ACCESS_KEY_ID", "AKIANODE000000000001")
            .env("AWS_SECRET_ACCESS_KEY", "s3cret-node-secret-key")
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PULLCRED_TEST_CLOCK_OFFSET", self.upstream.clock(due));
        let files = EtcFiles {
            hosts: Some(if resolvable {
                format!("127.0.0.1 localhost\n127.0.0.1 {FAULT_HOST}\n")
            } else {
                "127.0.0.2 unrelated.pullcred.test\n".into()
            }),
            resolv: self
                .dns
                .as_ref()
                .map(|d| format!("nameserver {}\noptions timeout:30 attempts:5\n", d.ip)),
            ..EtcFiles::default()
        };
        let start = Instant::now();
        let out = run(
            &mut in_node(&cmd, self.home.path(), &files, None),
            &request(V1, &self.upstream.image()),
        );
        (out, start.elapsed())
    }

    /// Turns the fault on.
    fn break_upstream(&mut self) {
        match self.fault {
            // Nothing listens on the port any more.
            Fault::Refused => drop(self.server.take()),
            _ => self
                .server
                .as_ref()
                .unwrap()
                .set(self.upstream.faulty(self.fault, self.port)),
        }
    }

    fn check_bounded(&self, took: Duration) {
        assert!(
            took < DEADLINE + SLACK,
            "{:?} / {:?}: took {took:?}, past the {DEADLINE:?} deadline",
            self.upstream,
            self.fault
        );
    }

    /// No entry cached: one error line naming the source and the fault.
    fn cold(mut self) {
        self.break_upstream();
        let resolvable = !matches!(self.fault, Fault::DnsNeverAnswers);
        let (out, took) = self.exec(false, resolvable);
        out.assert_error(&format!(
            "({}) for {}",
            self.upstream.source(),
            host_of(&self.upstream.image())
        ));
        out.assert_error(&self.fault.names(self.upstream));
        self.check_bounded(took);
        assert_no_entry(self.home.path());
    }

    /// An entry due for refresh: the fault is answered with it.
    fn warm(mut self) {
        let (first, _) = self.exec(false, true);
        let minted = single_auth(&first.response()).2;
        assert!(
            self.upstream.minted(&minted),
            "{:?}: {minted}",
            self.upstream
        );
        self.break_upstream();
        let resolvable = !matches!(self.fault, Fault::DnsNeverAnswers);
        let (out, took) = self.exec(true, resolvable);
        let resp = out.response();
        assert_eq!(
            single_auth(&resp).2,
            minted,
            "{:?} / {:?}",
            self.upstream,
            self.fault
        );
        assert!(
            out.stderr.contains("answering with the cached credential"),
            "{:?} / {:?}: {out:#?}",
            self.upstream,
            self.fault
        );
        assert!(
            crate::support::go_seconds(&resp["cacheDuration"]) <= 60,
            "a stale answer is cached briefly: {resp}"
        );
        self.check_bounded(took);
    }
}

/// The four stores' rules, each refreshed after 10 minutes, read at the server on `port`.
fn store_rules(port: u16) -> String {
    let at = format!("http://localhost:{port}");
    format!(
        "[[registry]]\nmatch = [\"sm.example.com\"]\nsource = \"aws-secrets-manager\"\nsecret = \"fault-matrix-hub\"\nregion = \"us-west-2\"\nrefresh = \"10m\"\n\
         [[registry]]\nmatch = [\"gsm.example.com\"]\nsource = \"gcp-secret-manager\"\nsecret = \"projects/faults/secrets/hub\"\nkey_file = \"sa.json\"\nendpoint = \"{at}\"\nrefresh = \"10m\"\n\
         [[registry]]\nmatch = [\"akv.example.com\"]\nsource = \"azure-key-vault\"\nvault = \"faults\"\nsecret = \"hub\"\nendpoint = \"{at}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret_file = \"client.secret\"\nauthority_host = \"{at}\"\nrefresh = \"10m\"\n\
         [[registry]]\nmatch = [\"vault.example.com\"]\nsource = \"vault\"\naddress = \"{at}\"\nauth = \"approle\"\nrole_id_file = \"role-id\"\nsecret_id_file = \"secret-id\"\npath = \"registry/hub\"\nrefresh = \"10m\"\n",
        azure::TENANT,
        azure::SP_CLIENT,
    )
}

/// The matrix's secret in moto (shared by the run), made once.
fn fault_matrix_secret() {
    static MADE: std::sync::Once = std::sync::Once::new();
    MADE.call_once(|| {
        aws::secrets_manager(
            "CreateSecret",
            serde_json::json!({"Name": "fault-matrix-hub", "SecretString": STORED}),
        );
    });
}

fn host_of(image: &str) -> &str {
    image.split('/').next().unwrap()
}

fn assert_no_entry(home: &Path) {
    let entries = std::fs::read_dir(home.join("cache")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
    });
    assert_eq!(entries, 0, "a failed mint cached nothing");
}

/// Runs every fault against `upstream`, cold and warm, all at once (each case has its own
/// servers and cache).
fn matrix(upstream: Upstream, dns_ip: (u8, u8)) {
    std::thread::scope(|s| {
        for fault in FAULTS {
            s.spawn(move || Case::new(upstream, fault, dns_ip.0).cold());
            s.spawn(move || Case::new(upstream, fault, dns_ip.1).warm());
        }
    });
}

#[test]
fn ecr_faults() {
    matrix(Upstream::Ecr, (81, 82));
}

#[test]
fn ecr_public_faults() {
    matrix(Upstream::EcrPublic, (83, 84));
}

#[test]
fn sts_assume_role_faults() {
    matrix(Upstream::Sts, (85, 86));
}

#[test]
fn google_token_endpoint_faults() {
    matrix(Upstream::GoogleToken, (87, 88));
}

#[test]
fn entra_token_endpoint_faults() {
    matrix(Upstream::EntraToken, (89, 90));
}

#[test]
fn acr_exchange_faults() {
    matrix(Upstream::AcrExchange, (91, 92));
}

#[test]
fn secrets_manager_faults() {
    matrix(Upstream::SecretsManager, (93, 94));
}

#[test]
fn secret_manager_faults() {
    matrix(Upstream::SecretManager, (95, 96));
}

#[test]
fn key_vault_faults() {
    matrix(Upstream::KeyVault, (97, 98));
}

#[test]
fn vault_faults() {
    matrix(Upstream::Vault, (99, 100));
}

/// Credential helpers fail in their own ways: they exit non-zero, hang, print garbage or
/// too much, die by a signal, or leave children behind. No entry is kept for a helper's
/// answer beyond `static_ttl`, so each fails cleanly and in time.
#[test]
fn credential_helper_faults() {
    let fx = Fixture::new("docker-config");
    fx.prepend_config(&format!("deadline = \"{}s\"", DEADLINE.as_secs()));
    for (image, names) in [
        (
            "fail.example.com/app",
            "credential helper docker-credential-fail: get failed (exit status: 1)",
        ),
        (
            "hang.example.com/app",
            "credential helper docker-credential-hang: timed out after 1s",
        ),
        (
            "junk.example.com/app",
            "docker-credential-junk: answered something that is not a credential reply",
        ),
        (
            "huge.example.com/app",
            "docker-credential-huge: answered more than 1048576 bytes",
        ),
        (
            "killed.example.com/app",
            "docker-credential-killed: get failed (signal: 9 (SIGKILL))",
        ),
        (
            "missing.example.com/app",
            "docker-credential-nonexistent: not found on PATH",
        ),
    ] {
        let start = Instant::now();
        let out = fx.plugin(image);
        out.assert_error(&format!("(docker-config) for {}", host_of(image)));
        out.assert_error(names);
        assert!(
            start.elapsed() < DEADLINE + SLACK,
            "{image}: {:?}",
            start.elapsed()
        );
    }
}

/// Whether a process still runs (a zombie not yet reaped by init counts as gone).
fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| !s.contains("State:\tZ"))
}

/// A helper that never answers, given longer than the request's deadline: the exec ends by
/// itself within the deadline with one line, and neither the helper nor its child outlives
/// it (the kubelet retries pulls, so each leaked helper would stay until the node reboots).
#[test]
fn a_helper_that_sleeps_forever_ends_with_the_deadline_and_leaves_nothing() {
    let fx = Fixture::new("docker-config");
    // Its helper is given longer than the request's deadline.
    fx.prepend_config(&format!(
        "deadline = \"2s\"\n[[registry]]\nmatch = [\"forever.example.com\"]\n\
         source = \"docker-config\"\npath = \"{}\"\nhelper_timeout = \"5m\"\n",
        fx.path("docker/config.json").display()
    ));
    let start = Instant::now();
    let out = fx.plugin("forever.example.com/app");
    let took = start.elapsed();
    out.assert_error("forever.example.com");
    assert_within(took, Duration::from_secs(2), "the request's deadline");
    let pids = std::fs::read_to_string(fx.path("forever.pids")).unwrap();
    let start = Instant::now();
    for pid in pids.split_whitespace() {
        while running(pid) {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "process {pid} of the helper outlived the exec"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The request arrives just before the deadline, so the timer fires around the front's hand
/// over to the minting binary: every exec still ends with an answer or the one deadline line
/// (naming the configured deadline), never silently by the signal.
#[test]
fn a_request_arriving_just_before_the_deadline_ends_with_one_line_or_an_answer() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let fx = Fixture::new("deadline");
    let mut outcomes = (0, 0);
    for i in 0..40u64 {
        // From 900 to 997 ms into a 1 s deadline; each run a miss (its own cache dir).
        let late = Duration::from_millis(900 + i * 5 / 2);
        let mut cmd = fx.cmd();
        cmd.env("PULLCRED_CACHE_DIR", fx.path(&format!("cache-{i}")));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(late);
        let _ = std::io::Write::write_all(&mut stdin, &request(V1, "registry.example.com/app"));
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            None,
            "run {i} ({late:?}) killed by a signal: {out:?}"
        );
        match out.status.code() {
            Some(0) => {
                outcomes.0 += 1;
                assert!(out.stdout.starts_with(b"{"), "{out:?}");
            }
            _ => {
                outcomes.1 += 1;
                assert!(out.stdout.is_empty(), "{out:?}");
                assert_eq!(
                    stderr.trim_end(),
                    "pullcred: no answer within the deadline of 1s",
                    "run {i} ({late:?})"
                );
            }
        }
    }
    assert!(outcomes.1 > 0, "no run met the deadline: {outcomes:?}");
}

/// A parent that blocks or ignores SIGALRM (both are inherited across exec) must not take
/// the deadline away: the exec still ends at it, with its one line.
#[test]
fn a_parent_that_blocks_or_ignores_sigalrm_does_not_remove_the_deadline() {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let fx = Fixture::new("deadline");
    for ignore in [false, true] {
        let mut cmd = fx.cmd();
        // SAFETY: async-signal-safe calls only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if ignore {
                    libc::signal(libc::SIGALRM, libc::SIG_IGN);
                } else {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGALRM);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
                Ok(())
            });
        }
        let start = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Stdin stays open and unfinished: only the deadline ends this.
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"{\"apiVersion\":").unwrap();
        let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
        while !waiter.is_finished() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(stdin);
        let out = waiter.join().unwrap();
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(1) + SLACK,
            "ignore={ignore}: took {took:?}"
        );
        assert_eq!(out.status.code(), Some(1), "ignore={ignore}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            "pullcred: no answer within the deadline of 1s"
        );
    }
}

/// An upstream (here a metadata server, which a hostile resolver can impersonate off GCP)
/// that claims a lifetime no clock can hold is refused with one line, never a panic.
#[test]
fn a_lifetime_no_clock_can_hold_is_refused_not_a_panic() {
    let metadata = FakeHttp::start(|_| {
        crate::support::http::json(
            200,
            serde_json::json!({"access_token": "s3cret-gcp-forever", "expires_in": u64::MAX}),
            vec![("metadata-flavor", "Google".to_string())],
        )
    });
    let home = tempfile::tempdir().unwrap();
    let mut cmd = pullcred(home.path());
    cmd.env("GCE_METADATA_HOST", metadata.addr.to_string())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    run(&mut cmd, &request(V1, "us-docker.pkg.dev/p/r/app"))
        .assert_error("the token's lifetime is out of range");
}
