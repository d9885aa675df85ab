//! Service account tokens as the kubelet hands them to a credential provider (Kubernetes
//! 1.33+, `tokenAttributes`): JWTs with the claims of a real projected token (`aud`, `exp`,
//! `iat`, `iss`, `jti`, `nbf`, `sub`, and `kubernetes.io` with the namespace, the pod, the
//! node and the service account's name and uid), signed by nobody: the signature part is a
//! fixture secret marker, so any leak of a token is caught by the secret scans. Requests
//! carry the token and the service account's annotations.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The signature part of every test token (see `FIXTURE_SECRETS`).
pub const SIGNATURE: &str = "s3cret-sa-signature";

/// A service account of a test.
#[derive(Clone, Debug)]
pub struct Account {
    pub namespace: &'static str,
    pub name: &'static str,
    pub uid: &'static str,
}

pub const PULLER: Account = Account {
    namespace: "team-a",
    name: "puller",
    uid: "0d3b6f5e-1111-4aaa-8bbb-000000000001",
};

impl Account {
    /// Its token for `audience`, living `seconds` from now (negative: expired).
    pub fn token(&self, audience: &str, seconds: i64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.token_expiring_at(audience, (now + seconds) as u64)
    }

    /// Its token for `audience`, expiring at `exp` (Unix seconds, any `u64`).
    pub fn token_expiring_at(&self, audience: &str, exp: u64) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({
            "aud": [audience],
            "exp": exp,
            "iat": now - 10,
            "nbf": now - 10,
            "iss": "https://oidc.cluster.example/id/ABCDEF",
            "jti": "7c1c3a6e-0000-4000-8000-000000000000",
            "sub": format!("system:serviceaccount:{}:{}", self.namespace, self.name),
            "kubernetes.io": {
                "namespace": self.namespace,
                "node": {"name": "node-1", "uid": "node-uid"},
                "pod": {"name": "app-7d9c", "uid": "pod-uid"},
                "serviceaccount": {"name": self.name, "uid": self.uid},
            },
        });
        format!(
            "{}.{}.{SIGNATURE}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"cluster-key-1"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }
}

/// A v1 request for `image` with a service account's token and annotations.
pub fn request(image: &str, token: &str, annotations: &[(&str, &str)]) -> Vec<u8> {
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    serde_json::json!({
        "apiVersion": super::V1,
        "kind": "CredentialProviderRequest",
        "image": image,
        "serviceAccountToken": token,
        "serviceAccountAnnotations": annotations,
    })
    .to_string()
    .into_bytes()
}
