//! Platform-native workload identity (issue 26) through the built binary: GKE's workload
//! identity image pull against a fake of Google's STS that checks the token exchange as
//! upstream's auth-provider-gcp sends it (`identitynamespace:<namespace>:<provider>`), with
//! the IAM Credentials fake of tests/support/google.rs for impersonation and the metadata
//! fake for the node.

use std::process::Command;

use crate::support::google;
use crate::support::http::{FakeHttp, Reply, form, json};
use crate::support::kube::{Account, PULLER, request as sa_request};
use crate::support::{Run, pullcred, run, single_auth};

const AR: &str = "us-docker.pkg.dev/proj/repo/app:1";
const NAMESPACE: &str = "proj.svc.id.goog";
/// The issuer of every test token (support::kube), GKE's cluster URL in real life.
const ISSUER: &str = "https://oidc.cluster.example/id/ABCDEF";
const OPT_IN: &str = "iam.gke.io/enable-wi-image-pull";

const BUILDER: Account = Account {
    namespace: "team-b",
    name: "builder",
    uid: "0d3b6f5e-2222-4aaa-8bbb-000000000002",
};

/// Google's STS for GKE: every field of the exchange checked, the subject a test token for
/// `audience` = the identity namespace; the federated token names the service account.
/// Service accounts in `refused` are refused as STS refuses an unbound identity.
fn gke_sts(
    base: String,
    refused: &'static [&'static str],
) -> impl Fn(&crate::support::http::Request) -> Reply + Send + Sync {
    let apis = google::apis(base, "unused-subject");
    move |req| {
        if req.target != "/sts" {
            return apis(req);
        }
        let f = form(&req.body);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        let want_audience = format!("identitynamespace:{NAMESPACE}:{ISSUER}");
        let subject = field("subject_token");
        let claims = crate::support::azure::claims(subject).unwrap_or_default();
        let ok = field("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange"
            && field("audience") == want_audience
            && field("scope") == "https://www.googleapis.com/auth/cloud-platform"
            && field("requested_token_type") == "urn:ietf:params:oauth:token-type:access_token"
            && field("subject_token_type") == "urn:ietf:params:oauth:token-type:jwt"
            && subject.ends_with(crate::support::kube::SIGNATURE)
            && claims["aud"][0] == NAMESPACE;
        if !ok {
            return json(
                400,
                serde_json::json!({"error": "invalid_request", "error_description": "bad exchange"}),
                vec![],
            );
        }
        let who = claims["kubernetes.io"]["serviceaccount"]["name"]
            .as_str()
            .unwrap_or("");
        if refused.contains(&who) {
            return json(
                403,
                serde_json::json!({"error": "access_denied", "error_description": "The caller does not have permission"}),
                vec![],
            );
        }
        json(
            200,
            serde_json::json!({
                "access_token": format!("s3cret-gcp-gke-federated-{who}"),
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 3599,
            }),
            vec![],
        )
    }
}

struct Gke {
    home: tempfile::TempDir,
    api: FakeHttp,
    metadata: FakeHttp,
}

impl Gke {
    fn new(identity: &str, refused: &'static [&'static str]) -> Self {
        let home = tempfile::tempdir().unwrap();
        let api = FakeHttp::start(|_| Reply::Hang);
        api.set(gke_sts(api.url(), refused));
        let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\nidentity = \"{identity}\"\ngke_identity_namespace = \"{NAMESPACE}\"\nsts_endpoint = \"{0}/sts\"\niam_credentials_endpoint = \"{0}\"\n",
                api.url()
            ),
        )
        .unwrap();
        Gke {
            home,
            api,
            metadata,
        }
    }

    fn cmd(&self) -> Command {
        let mut cmd = pullcred(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"))
            .env("GCE_METADATA_HOST", self.metadata.addr.to_string())
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
        cmd
    }

    fn pull(&self, account: &Account, annotations: &[(&str, &str)]) -> Run {
        let token = account.token(NAMESPACE, 3600);
        run(&mut self.cmd(), &sa_request(AR, &token, annotations))
    }

    fn exchanges(&self) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.target == "/sts")
            .count()
    }
}

#[test]
fn gke_an_opted_in_service_account_pulls_as_itself_once_per_burst() {
    let gke = Gke::new("service-account", &[]);
    let answer = gke.pull(&PULLER, &[(OPT_IN, "true")]).response();
    let (_, user, password) = single_auth(&answer);
    assert_eq!(user, "oauth2accesstoken");
    assert_eq!(password, "s3cret-gcp-gke-federated-puller");
    // Its second pull is a hit; another service account mints once.
    let again = gke.pull(&PULLER, &[(OPT_IN, "true")]).response();
    assert_eq!(single_auth(&again).2, password);
    assert_eq!(gke.exchanges(), 1);
    let other = gke.pull(&BUILDER, &[(OPT_IN, "true")]).response();
    assert_eq!(single_auth(&other).2, "s3cret-gcp-gke-federated-builder");
    assert_eq!(gke.exchanges(), 2);
    assert!(
        gke.metadata.requests().is_empty(),
        "the node's identity is never asked"
    );
}

#[test]
fn gke_with_a_google_service_account_annotation_impersonates_it() {
    let gke = Gke::new("service-account", &[]);
    let answer = gke
        .pull(
            &PULLER,
            &[
                (OPT_IN, "true"),
                (
                    "iam.gke.io/gcp-service-account",
                    "reader@proj.iam.gserviceaccount.com",
                ),
            ],
        )
        .response();
    assert_eq!(
        single_auth(&answer).2,
        "s3cret-gcp-token-for-impersonated-reader"
    );
    let last = gke.api.requests().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some("Bearer s3cret-gcp-gke-federated-puller")
    );
}

#[test]
fn gke_without_the_opt_in_errs_or_uses_the_node_as_the_rule_says() {
    let strict = Gke::new("service-account", &[]);
    for annotations in [&[][..], &[(OPT_IN, "false")][..]] {
        strict.pull(&PULLER, annotations).assert_error(&format!(
            "rule 1 (gcp) for us-docker.pkg.dev: service account team-a/puller: annotation {OPT_IN} is not \"true\": the service account has not opted in to GKE workload identity image pulls"
        ));
    }
    let lenient = Gke::new("service-account-or-node", &[]);
    let answer = lenient.pull(&PULLER, &[]).response();
    assert_eq!(single_auth(&answer).2, "s3cret-gcp-token-for-node");
    assert_eq!(lenient.exchanges(), 0);
    // A value that is neither: an error under both identities, naming the annotation.
    for gke in [&strict, &lenient] {
        gke.pull(&PULLER, &[(OPT_IN, "yes")])
            .assert_error(&format!("annotation {OPT_IN} is not \"true\" or \"false\""));
    }
}

#[test]
fn gke_an_opted_in_service_account_that_sts_refuses_is_an_error_never_the_node() {
    let gke = Gke::new("service-account-or-node", &["builder"]);
    gke.pull(&BUILDER, &[(OPT_IN, "true")]).assert_error(
        "rule 1 (gcp) for us-docker.pkg.dev: GKE workload identity for service account team-b/builder: Security Token Service",
    );
    assert!(gke.metadata.requests().is_empty());
}

#[test]
fn gke_keys_are_checked_and_the_kubelet_gets_the_namespace_as_audience() {
    let home = tempfile::tempdir().unwrap();
    let check = |rule: &str| {
        let path = home.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[[registry]]\nmatch = [\"*-docker.pkg.dev\"]\nsource = \"gcp\"\n{rule}"),
        )
        .unwrap();
        run(
            pullcred(home.path()).args(["config", "check"]).arg(&path),
            b"",
        )
    };
    for (rule, want) in [
        (
            "identity = \"service-account\"\ngke_identity_namespace = \"proj\"\n",
            "line 5: gke_identity_namespace \"proj\" is not <project>.svc.id.goog",
        ),
        (
            "gke_identity_namespace = \"proj.svc.id.goog\"\n",
            "line 4: `gke_identity_namespace` needs identity",
        ),
        (
            "identity = \"service-account\"\ngke_identity_namespace = \"proj.svc.id.goog\"\ngke_identity_provider = \"http://container.googleapis.com/v1/x\"\n",
            "line 6: \"http://container.googleapis.com/v1/x\" is not an https:// URL",
        ),
        (
            "identity = \"service-account\"\ngke_identity_namespace = \"proj.svc.id.goog\"\nworkload_identity_provider = \"projects/1/locations/global/workloadIdentityPools/p/providers/q\"\n",
            "set one of gke_identity_namespace",
        ),
    ] {
        let out = check(rule);
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(out.stderr.contains(want), "{rule}: want {want:?}: {out:?}");
    }
    let out =
        check("identity = \"service-account\"\ngke_identity_namespace = \"proj.svc.id.goog\"\n");
    assert_eq!(out.code, Some(0), "{out:?}");
    let path = home.path().join("c.toml");
    let generated = run(pullcred(home.path()).arg("kubelet-config").arg(&path), b"");
    assert_eq!(generated.code, Some(0), "{generated:?}");
    assert!(
        generated
            .stdout
            .contains("serviceAccountTokenAudience: proj.svc.id.goog"),
        "{}",
        generated.stdout
    );
    assert!(generated.stdout.contains(OPT_IN), "{}", generated.stdout);
}

// --- EKS Pod Identity --------------------------------------------------------------------

use crate::support::aws;
use crate::support::http::Request;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
const NODE_KEY: &str = "AKIANODE000000000001";
const POD_KEY: &str = "ASIAPODTEAMA00000001";

/// EKS Auth's `AssumeRoleForPodIdentity`, as its API reference documents it: the request
/// must be signed by the node's key for `eks-auth` in us-west-2, its body a service account
/// token for `pods.eks.amazonaws.com`; service accounts in `associated` (`ns:name`) get role
/// credentials, others a 404 `ResourceNotFoundException`. `lie` answers another subject.
fn eks_auth(
    associated: &'static [&'static str],
    lie: bool,
) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let error = |status: u16, kind: &str, message: &str| Reply::Respond {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-amzn-errortype", kind.into()),
            ],
            body: serde_json::json!({"message": message}).to_string(),
        };
        let auth = req.header("authorization").unwrap_or("");
        if !(auth.contains(&format!("Credential={NODE_KEY}/"))
            && auth.contains("/us-west-2/eks-auth/aws4_request"))
        {
            return error(
                403,
                "AccessDeniedException",
                "not signed by the node for eks-auth",
            );
        }
        if req.method != "POST" || req.target != "/clusters/prod-1/assume-role-for-pod-identity" {
            return error(404, "NotFoundException", "no such route");
        }
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let token = body["token"].as_str().unwrap_or("");
        let claims = crate::support::azure::claims(token).unwrap_or_default();
        if claims["aud"][0] != "pods.eks.amazonaws.com"
            || !token.ends_with(crate::support::kube::SIGNATURE)
        {
            return error(
                400,
                "InvalidTokenException",
                "The token is not valid for EKS Auth",
            );
        }
        let k = &claims["kubernetes.io"];
        let (ns, name) = (
            k["namespace"].as_str().unwrap_or(""),
            k["serviceaccount"]["name"].as_str().unwrap_or(""),
        );
        if !associated.contains(&format!("{ns}:{name}").as_str()) {
            return error(
                404,
                "ResourceNotFoundException",
                "Pod Identity Association not found",
            );
        }
        let expiration = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 6 * 3600;
        json(
            200,
            serde_json::json!({
                "subject": {"namespace": if lie { "kube-system" } else { ns }, "serviceAccount": name},
                "audience": "pods.eks.amazonaws.com",
                "podIdentityAssociation": {"associationArn": "arn:aws:eks:us-west-2:123456789012:podidentityassociation/prod-1/a-1", "associationId": "a-1"},
                "assumedRoleUser": {"arn": "arn:aws:sts::123456789012:assumed-role/team-a/eks-prod-1", "assumeRoleId": "AROA:eks"},
                "credentials": {"sessionToken": "FQoGZXIvYXdzEBYaDpod", "secretAccessKey": "s3cret-pod-secret-key", "accessKeyId": POD_KEY, "expiration": expiration},
            }),
            vec![],
        )
    }
}

struct Eks {
    home: tempfile::TempDir,
    tap: FakeHttp,
    auth: FakeHttp,
}

impl Eks {
    fn new(identity: &str, lie: bool) -> Self {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("config.toml"),
            format!("[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"{identity}\"\npod_identity_cluster = \"prod-1\"\n"),
        )
        .unwrap();
        Eks {
            home,
            tap: aws::moto_tap(),
            auth: FakeHttp::start(eks_auth(&["team-a:puller"], lie)),
        }
    }

    fn pull(&self, account: &Account) -> Run {
        let mut cmd = pullcred(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"))
            .env("AWS_ACCESS_KEY_ID", NODE_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "s3cret-node-secret-key")
            .env("AWS_REGION", "us-west-2")
            .env("AWS_ENDPOINT_URL", self.tap.url())
            .env("AWS_ENDPOINT_URL_EKS_AUTH", self.auth.url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env(
                "PULLCRED_TEST_CLOCK_OFFSET",
                aws::clock_before_moto_expiry(std::time::Duration::from_secs(6 * 3600)),
            );
        let token = account.token("pods.eks.amazonaws.com", 3600);
        run(
            &mut cmd,
            &sa_request(&format!("{ECR_HOST}/app:1"), &token, &[]),
        )
    }

    /// The access key that signed the tap's last ECR call.
    fn ecr_signed_by(&self) -> String {
        let req = self.tap.requests().pop().expect("an ECR call");
        assert_eq!(req.aws_operation(), "GetAuthorizationToken");
        let auth = req.header("authorization").unwrap().to_string();
        auth.split("Credential=")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    }
}

#[test]
fn eks_pod_identity_mints_with_the_associated_role_once_per_service_account() {
    let eks = Eks::new("service-account", false);
    let answer = eks.pull(&PULLER).response();
    assert_eq!(single_auth(&answer).1, "AWS");
    assert_eq!(
        eks.ecr_signed_by(),
        POD_KEY,
        "ECR was called with the pod's role"
    );
    assert_eq!(eks.auth.requests().len(), 1);
    // Its second pull is a hit.
    eks.pull(&PULLER).response();
    assert_eq!(eks.auth.requests().len(), 1);
    assert_eq!(eks.tap.requests().len(), 1);
}

#[test]
fn eks_pod_identity_without_an_association_errs_or_uses_the_node() {
    let strict = Eks::new("service-account", false);
    strict.pull(&BUILDER).assert_error(
        "rule 1 (ecr) for 123456789012.dkr.ecr.us-west-2.amazonaws.com: service account team-b/builder has no pod identity association in cluster prod-1",
    );
    assert!(
        strict.tap.requests().is_empty(),
        "no ECR call without a role"
    );
    let lenient = Eks::new("service-account-or-node", false);
    lenient.pull(&BUILDER).response();
    assert_eq!(lenient.ecr_signed_by(), NODE_KEY);
}

#[test]
fn eks_pod_identity_an_answer_for_another_service_account_is_refused() {
    let eks = Eks::new("service-account-or-node", true);
    eks.pull(&PULLER)
        .assert_error("the answer is for kube-system/puller, not the token's service account");
    assert!(eks.tap.requests().is_empty());
}

#[test]
fn eks_pod_identity_keys_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.toml");
    for (rule, want) in [
        (
            "identity = \"service-account\"\npod_identity_cluster = \"-bad\"\n",
            "line 5: pod_identity_cluster \"-bad\" is not an EKS cluster name",
        ),
        (
            "pod_identity_cluster = \"prod-1\"\n",
            "line 4: `pod_identity_cluster` needs identity",
        ),
        (
            "identity = \"service-account\"\npod_identity_cluster = \"prod-1\"\nrole_arn = \"arn:aws:iam::1:role/x\"\n",
            "line 6: a pod identity association names the role",
        ),
        (
            "identity = \"service-account\"\npod_identity_cluster = \"prod-1\"\nrole_annotation = \"x/y\"\n",
            "line 6: a pod identity association names the role",
        ),
        (
            "identity = \"service-account\"\npod_identity_cluster = \"prod-1\"\neks_auth_endpoint = \"http://eks.example\"\n",
            "line 6:",
        ),
    ] {
        std::fs::write(
            &path,
            format!(
                "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\n{rule}"
            ),
        )
        .unwrap();
        let out = run(
            pullcred(home.path()).args(["config", "check"]).arg(&path),
            b"",
        );
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(out.stderr.contains(want), "{rule}: want {want:?}: {out:?}");
    }
    std::fs::write(&path, "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\npod_identity_cluster = \"prod-1\"\n").unwrap();
    let generated = run(pullcred(home.path()).arg("kubelet-config").arg(&path), b"");
    assert!(
        generated
            .stdout
            .contains("serviceAccountTokenAudience: pods.eks.amazonaws.com"),
        "{generated:?}"
    );
}

// --- AKS identity bindings ---------------------------------------------------------------

use crate::support::azure;
use crate::support::http::Tls;

const SNI: &str = "ib.aks.example";
const WORKLOAD_CLIENT: &str = "c0ffee00-0000-4000-8000-00000000c11e";

/// The identity binding endpoint as upstream's acr-credential-provider reaches it: `POST /`
/// with `Host: <sni>` over TLS for the SNI name, the client credentials form with the
/// service account token (audience `api://AKSIdentityBinding`) as its assertion; answers an
/// Entra token for ACR (tenant [`azure::TENANT`]) naming the service account. Clients in
/// `refused` are refused as Entra refuses an unbound identity.
fn binding(refused: &'static [&'static str]) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let refuse = |status: u16, why: &str| {
            json(
                status,
                serde_json::json!({"error": "invalid_client", "error_description": why}),
                vec![],
            )
        };
        if req.method != "POST" || req.target != "/" || req.header("host") != Some(SNI) {
            return refuse(404, "not the binding endpoint");
        }
        let f = form(&req.body);
        let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
        let assertion = field("client_assertion");
        let claims = azure::claims(assertion).unwrap_or_default();
        let ok = field("grant_type") == "client_credentials"
            && field("scope") == "https://containerregistry.azure.net/.default"
            && field("client_assertion_type")
                == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            && assertion.ends_with(crate::support::kube::SIGNATURE)
            && claims["aud"][0] == "api://AKSIdentityBinding";
        if !ok {
            return refuse(400, "AADSTS50027: invalid request");
        }
        let client = field("client_id");
        if refused.contains(&client) {
            return refuse(
                401,
                "AADSTS700213: No matching federated identity record found",
            );
        }
        json(
            200,
            serde_json::json!({
                "access_token": azure::access_token_for(
                    &format!("binding {client} {}", claims["sub"].as_str().unwrap_or("")),
                    azure::TENANT,
                    "https://containerregistry.azure.net",
                ),
                "expires_in": 3599,
                "token_type": "Bearer",
            }),
            vec![],
        )
    }
}

struct Aks {
    home: tempfile::TempDir,
    tls: Tls,
    binding: FakeHttp,
    acr: FakeHttp,
}

impl Aks {
    fn new(identity: &str, client_id: Option<&str>) -> Self {
        let home = tempfile::tempdir().unwrap();
        let tls = Tls::for_names(&[SNI]);
        let binding = FakeHttp::start_at(
            "127.0.0.1:0".parse().unwrap(),
            Some(&tls),
            binding(&["deadbeef-0000-4000-8000-000000000bad"]),
        );
        let acr = FakeHttp::start(azure::exchange(&["myregistry.azurecr.io"]));
        crate::support::secret_file(&home.path().join("ca.crt"), &tls.ca_pem);
        let client = client_id
            .map(|c| format!("client_id = \"{c}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\nidentity = \"{identity}\"\n{client}identity_binding_sni = \"{SNI}\"\nidentity_binding_apiserver = \"{}\"\nidentity_binding_ca_file = \"ca.crt\"\nendpoint = \"{}\"\nimds_endpoint = \"http://127.0.0.1:9\"\nazure_json = \"absent.json\"\n",
                binding.addr,
                acr.url()
            ),
        )
        .unwrap();
        Aks {
            home,
            tls,
            binding,
            acr,
        }
    }

    fn pull(&self, account: &Account, annotations: &[(&str, &str)]) -> Run {
        let mut cmd = pullcred(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"));
        let token = account.token("api://AKSIdentityBinding", 3600);
        run(
            &mut cmd,
            &sa_request("myregistry.azurecr.io/app:1", &token, annotations),
        )
    }
}

#[test]
fn aks_identity_binding_answers_the_workloads_own_refresh_token() {
    let aks = Aks::new("service-account", Some(WORKLOAD_CLIENT));
    let answer = aks.pull(&PULLER, &[]).response();
    let (_, user, refresh) = single_auth(&answer);
    assert_eq!(user, azure::ZERO_USER);
    let claims = azure::claims(&refresh).unwrap();
    assert_eq!(
        claims["sub"],
        format!("binding {WORKLOAD_CLIENT} system:serviceaccount:team-a:puller")
    );
    // TLS asked for the binding's name at the API server's address, checked against the CA
    // file; the exchange named the token's tenant.
    assert_eq!(
        aks.tls.server_names.lock().unwrap().as_slice(),
        [Some(SNI.to_string())]
    );
    assert_eq!(aks.binding.requests().len(), 1);
    let exchange = form(&aks.acr.requests()[0].body);
    assert_eq!(exchange["tenant"], azure::TENANT);
    // The annotation's client wins over the rule's.
    let other = "feedface-0000-4000-8000-000000000002";
    let answer = aks
        .pull(&BUILDER, &[("kubernetes.azure.com/acr-client-id", other)])
        .response();
    let claims = azure::claims(&single_auth(&answer).2).unwrap();
    assert_eq!(
        claims["sub"],
        format!("binding {other} system:serviceaccount:team-b:builder")
    );
}

#[test]
fn aks_identity_binding_without_a_client_errs_or_uses_the_node_and_a_refusal_errs() {
    let strict = Aks::new("service-account", None);
    strict.pull(&PULLER, &[]).assert_error(
        "service account team-a/puller: annotation kubernetes.azure.com/acr-client-id is not set, and the rule has no client_id",
    );
    assert!(strict.binding.requests().is_empty());
    let refused = Aks::new(
        "service-account-or-node",
        Some("deadbeef-0000-4000-8000-000000000bad"),
    );
    refused
        .pull(&PULLER, &[])
        .assert_error("rule 1 (acr) for myregistry.azurecr.io: AKS identity binding 127.0.0.1:");
    assert!(
        refused.acr.requests().is_empty(),
        "a refused workload never gets the node's token"
    );
    // A CA file that is not the server's: the handshake fails, nothing is posted.
    let wrong = Aks::new("service-account", Some(WORKLOAD_CLIENT));
    crate::support::secret_file(
        &wrong.home.path().join("ca.crt"),
        &Tls::for_names(&[SNI]).ca_pem,
    );
    wrong
        .pull(&PULLER, &[])
        .assert_error("AKS identity binding");
    assert!(wrong.binding.requests().is_empty());
}

#[test]
fn aks_identity_binding_keys_are_checked() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.toml");
    for (rule, want) in [
        (
            "identity = \"service-account\"\nidentity_binding_sni = \"https://ib.example\"\nidentity_binding_apiserver = \"10.0.0.1\"\n",
            "line 5: identity_binding_sni \"https://ib.example\" is not a DNS name",
        ),
        (
            "identity = \"service-account\"\nidentity_binding_sni = \"ib.example\"\n",
            "line 5: `identity_binding_sni` needs `identity_binding_apiserver`",
        ),
        (
            "identity = \"service-account\"\nidentity_binding_sni = \"ib.example\"\nidentity_binding_apiserver = \"10.0.0.1:x\"\n",
            "line 6: identity_binding_apiserver \"10.0.0.1:x\" is not an IP or a name",
        ),
        (
            "identity_binding_sni = \"ib.example\"\nidentity_binding_apiserver = \"10.0.0.1\"\n",
            "line 4: `identity_binding_sni` needs identity",
        ),
    ] {
        std::fs::write(
            &path,
            format!("[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\n{rule}"),
        )
        .unwrap();
        let out = run(
            pullcred(home.path()).args(["config", "check"]).arg(&path),
            b"",
        );
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(out.stderr.contains(want), "{rule}: want {want:?}: {out:?}");
    }
    std::fs::write(&path, "[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\nidentity = \"service-account-or-node\"\nidentity_binding_sni = \"ib.example\"\nidentity_binding_apiserver = \"my-aks.hcp.eastus.azmk8s.io\"\n").unwrap();
    let generated = run(pullcred(home.path()).arg("kubelet-config").arg(&path), b"");
    assert!(
        generated
            .stdout
            .contains("serviceAccountTokenAudience: api://AKSIdentityBinding"),
        "{generated:?}"
    );
    assert!(
        generated.stdout.contains("requireServiceAccount: false"),
        "{generated:?}"
    );
}

// --- GCE instance metadata docker configs ------------------------------------------------

/// The metadata server's instance attributes, as "About VM metadata" documents them:
/// `Metadata-Flavor: Google` on the request and on the answer; 404 for an attribute the
/// instance lacks.
fn gce_attributes(
    attributes: Vec<(&'static str, String)>,
) -> impl Fn(&Request) -> Reply + Send + Sync {
    move |req| {
        let flavor = vec![("metadata-flavor", "Google".to_string())];
        if req.header("metadata-flavor") != Some("Google") {
            return json(
                403,
                serde_json::json!({"error": "missing Metadata-Flavor"}),
                flavor,
            );
        }
        let key = req
            .target
            .strip_prefix("/computeMetadata/v1/instance/attributes/");
        match key.and_then(|k| attributes.iter().find(|(name, _)| *name == k)) {
            Some((_, value)) => Reply::Respond {
                status: 200,
                headers: vec![
                    ("metadata-flavor", "Google".into()),
                    ("content-type", "application/text".into()),
                ],
                body: value.clone(),
            },
            None => Reply::Respond {
                status: 404,
                headers: flavor,
                body: "not found".into(),
            },
        }
    }
}

fn docker_config_rule(home: &std::path::Path, key: &str) -> Command {
    let path = home.join("config.toml");
    std::fs::write(
        &path,
        format!("[[registry]]\nmatch = [\"registry.example.com\", \"legacy.example.com\"]\nsource = \"docker-config\"\ngce_metadata_key = \"{key}\"\n"),
    )
    .unwrap();
    let mut cmd = pullcred(home);
    cmd.arg("--config").arg(&path);
    cmd
}

#[test]
fn gce_metadata_dockercfg_answers_from_the_instance_attribute() {
    use crate::support::request;
    // The legacy form (host to entry), both entry shapes.
    let legacy = serde_json::json!({
        "https://registry.example.com": {"auth": base64_of("robot:s3cret-user-pw-gce"), "email": "x@example.com"},
        "legacy.example.com": {"username": "old", "password": "s3cret-user-pw-old"},
    });
    let metadata = FakeHttp::start(gce_attributes(vec![(
        "google-dockercfg",
        legacy.to_string(),
    )]));
    let home = tempfile::tempdir().unwrap();
    let exec = |image: &str| {
        let mut cmd = docker_config_rule(home.path(), "google-dockercfg");
        cmd.env("GCE_METADATA_HOST", metadata.addr.to_string());
        run(&mut cmd, &request(crate::support::V1, image))
    };
    assert_eq!(
        single_auth(&exec("registry.example.com/app").response()),
        (
            "registry.example.com".into(),
            "robot".into(),
            "s3cret-user-pw-gce".into()
        )
    );
    assert_eq!(
        single_auth(&exec("legacy.example.com/app").response()).2,
        "s3cret-user-pw-old"
    );

    // An instance without the attribute: an error naming it.
    let bare = FakeHttp::start(gce_attributes(vec![]));
    let other = tempfile::tempdir().unwrap();
    let mut cmd = docker_config_rule(other.path(), "google-dockercfg");
    cmd.env("GCE_METADATA_HOST", bare.addr.to_string());
    run(
        &mut cmd,
        &request(crate::support::V1, "registry.example.com/app"),
    )
    .assert_error("the instance has no metadata attribute google-dockercfg (gce_metadata_key)");
}

#[test]
fn gce_metadata_dockercfg_url_fetches_the_config_without_the_metadata_header() {
    use crate::support::request;
    let config = serde_json::json!({"auths": {"registry.example.com": {"username": "u", "password": "s3cret-user-pw-url"}}});
    let store = FakeHttp::start(move |_| json(200, config.clone(), vec![]));
    let metadata = FakeHttp::start(gce_attributes(vec![(
        "google-dockercfg-url",
        format!("{}/dockercfg", store.url()),
    )]));
    let home = tempfile::tempdir().unwrap();
    let mut cmd = docker_config_rule(home.path(), "google-dockercfg-url");
    cmd.env("GCE_METADATA_HOST", metadata.addr.to_string());
    let answer = run(
        &mut cmd,
        &request(crate::support::V1, "registry.example.com/app"),
    )
    .response();
    assert_eq!(single_auth(&answer).2, "s3cret-user-pw-url");
    let fetched = store.requests();
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched[0].target, "/dockercfg");
    assert_eq!(
        fetched[0].header("metadata-flavor"),
        None,
        "the metadata header stays with the metadata server"
    );

    // A URL that is plain http to somewhere else is refused before anything is fetched.
    let far = FakeHttp::start(gce_attributes(vec![(
        "google-dockercfg-url",
        "http://192.0.2.1/dockercfg".into(),
    )]));
    let other = tempfile::tempdir().unwrap();
    let mut cmd = docker_config_rule(other.path(), "google-dockercfg-url");
    cmd.env("GCE_METADATA_HOST", far.addr.to_string());
    run(
        &mut cmd,
        &request(crate::support::V1, "registry.example.com/app"),
    )
    .assert_error("metadata attribute google-dockercfg-url: ");
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn gce_metadata_key_is_checked_and_container_cloud_google_com_is_googles() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("c.toml");
    for (rule, want) in [
        (
            "source = \"docker-config\"\ngce_metadata_key = \"dockercfg\"\n",
            "line 4: gce_metadata_key \"dockercfg\" is not \"google-dockercfg\" or \"google-dockercfg-url\"",
        ),
        (
            "source = \"docker-config\"\npath = \"/x\"\ngce_metadata_key = \"google-dockercfg\"\n",
            "line 5: set one of path and gce_metadata_key",
        ),
    ] {
        std::fs::write(
            &path,
            format!("[[registry]]\nmatch = [\"registry.example.com\"]\n{rule}"),
        )
        .unwrap();
        let out = run(
            pullcred(home.path()).args(["config", "check"]).arg(&path),
            b"",
        );
        assert_eq!(out.code, Some(1), "{rule}: {out:?}");
        assert!(out.stderr.contains(want), "{rule}: want {want:?}: {out:?}");
    }
    // With no config, the built-in gcp rule serves container.cloud.google.com (the node's
    // metadata token), and the kubelet is told so.
    let metadata = FakeHttp::start(google::metadata("s3cret-gcp-token-for-node", true));
    let mut cmd = pullcred(home.path());
    cmd.env("GCE_METADATA_HOST", metadata.addr.to_string())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    let answer = run(
        &mut cmd,
        &crate::support::request(
            crate::support::V1,
            "container.cloud.google.com/gke-release/pause:3.9",
        ),
    )
    .response();
    assert_eq!(single_auth(&answer).2, "s3cret-gcp-token-for-node");
    let generated = run(pullcred(home.path()).arg("kubelet-config"), b"");
    assert!(
        generated.stdout.contains("container.cloud.google.com"),
        "{generated:?}"
    );
}
