//! Per-workload identity: the pod's service account as a request brings it (Kubernetes 1.33+,
//! the provider's `tokenAttributes`): its projected token, whose claims say which service
//! account it is, and the service account's annotations; and a rule's `identity`, which says
//! whether a mint uses it.
//!
//! The token's claims are read without verifying its signature: only the kubelet writes our
//! stdin, and the token is verified by whoever it is presented to (STS, Entra ID, Google's
//! STS, the registry). The raw token is a `Secret`: it never reaches the cache key, a log, an
//! error or a file; only the service account's identity does.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use crate::credential::Secret;
use crate::oauth::jwt;

/// A rule's `identity`: whose identity a mint uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdentityMode {
    /// The node's, whatever the request carries.
    #[default]
    Node,
    /// The pod's service account's; never the node's.
    ServiceAccount,
    /// The service account's when the request brings what the source needs, else the
    /// node's.
    ServiceAccountOrNode,
}

impl IdentityMode {
    pub const NAMES: [&'static str; 3] = ["node", "service-account", "service-account-or-node"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "node" => Some(IdentityMode::Node),
            "service-account" => Some(IdentityMode::ServiceAccount),
            "service-account-or-node" => Some(IdentityMode::ServiceAccountOrNode),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IdentityMode::Node => "node",
            IdentityMode::ServiceAccount => "service-account",
            IdentityMode::ServiceAccountOrNode => "service-account-or-node",
        }
    }
}

impl fmt::Display for IdentityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a source reads for a workload's mint beyond the token (an annotation's role, client
/// or service account, or the rule's), by name: part of the cache key.
pub type Inputs = BTreeMap<&'static str, String>;

/// The claims of a projected service account token that are read.
#[derive(serde::Deserialize)]
struct Claims {
    exp: Option<u64>,
    iss: Option<String>,
    aud: Option<Audience>,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Option<K8sClaims>,
}

/// `aud`: a string or a list (RFC 7519 4.1.3), read by a visitor of both rather than an
/// untagged enum, which would buffer the value and try each shape in turn on every hit.
struct Audience(Vec<String>);

impl<'de> serde::Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Audience, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(Audience(all))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Default, serde::Deserialize)]
struct K8sClaims {
    namespace: Option<String>,
    serviceaccount: Option<Named>,
}

#[derive(Default, serde::Deserialize)]
struct Named {
    name: Option<String>,
    uid: Option<String>,
}

/// The pod's service account, from a request's token. (Its annotations are read once, by the
/// source's `workload_inputs`, straight from the request: what they decide is in `Inputs`.)
#[derive(Debug)]
pub struct ServiceAccount {
    pub token: Secret,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The token's audiences (`aud`, a string or a list).
    pub audience: Vec<String>,
    /// The token's issuer (`iss`): the cluster's, as its OIDC discovery names it.
    pub issuer: Option<String>,
    pub expires_at: SystemTime,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the service account token is not a JWT")]
    NotAJwt,
    #[error("the service account token has no {0} claim (not a Kubernetes service account token)")]
    Missing(&'static str),
    #[error("the service account token's exp is out of range")]
    ExpOutOfRange,
    #[error("the service account token of {account} expired at {at}")]
    Expired { account: String, at: String },
}

impl ServiceAccount {
    /// The service account a request's token names, refused if it has expired at `now`.
    pub fn from_token(token: &Secret, now: SystemTime) -> Result<Self, TokenError> {
        // Only the claims used, as a struct: the rest of the token is skipped, not copied.
        let claims: Claims =
            jwt::unverified_claims_as(token.expose()).ok_or(TokenError::NotAJwt)?;
        let k8s = claims.kubernetes.unwrap_or_default();
        let sa = k8s.serviceaccount.unwrap_or_default();
        let some =
            |v: Option<String>, what| v.filter(|s| !s.is_empty()).ok_or(TokenError::Missing(what));
        let namespace = some(k8s.namespace, "kubernetes.io.namespace")?;
        let name = some(sa.name, "kubernetes.io.serviceaccount.name")?;
        let uid = some(sa.uid, "kubernetes.io.serviceaccount.uid")?;
        let exp = claims.exp.ok_or(TokenError::Missing("exp"))?;
        let audience = claims.aud.map(|a| a.0).unwrap_or_default();
        let expires_at = crate::units::unix_seconds(exp).ok_or(TokenError::ExpOutOfRange)?;
        if expires_at <= now {
            return Err(TokenError::Expired {
                account: format!("{namespace}/{name}"),
                at: humantime::format_rfc3339_seconds(expires_at).to_string(),
            });
        }
        Ok(ServiceAccount {
            token: token.clone(),
            namespace,
            name,
            uid,
            audience,
            issuer: claims.iss,
            expires_at,
        })
    }

    /// `namespace/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A mint with a workload's identity: its service account and what the source reads.
#[derive(Debug)]
pub struct Workload {
    pub account: ServiceAccount,
    pub inputs: Inputs,
    /// The rule's identity is `service-account-or-node`: a source may turn to the node's
    /// identity when the platform says this service account has none (EKS Pod Identity
    /// without an association).
    pub or_node: bool,
}

impl Workload {
    /// Everything about the workload that changes the credential, for the cache key: the
    /// service account (a recreated one has a new uid), the token's audience and the inputs;
    /// never the token. Appended to `key` (the hit path builds the key in one string).
    pub fn write_cache_identity(&self, key: &mut String) {
        // Pushed piece by piece: no formatting machinery on the hit path. Every value is
        // length-prefixed, so no value can pass for a separator and two different workloads
        // never write the same key (audiences `["a","b"]` and `["a,b"]` included).
        let a = &self.account;
        key.push_str("service account");
        for value in [&a.namespace, &a.name, &a.uid] {
            push_field(key, value);
        }
        key.push_str(" aud");
        push_len(key, a.audience.len());
        for aud in &a.audience {
            push_field(key, aud);
        }
        for (k, v) in &self.inputs {
            key.push(' ');
            key.push_str(k);
            push_field(key, v);
        }
    }

    /// An optional input the source resolved (see [`Inputs`]), by the name its
    /// `workload_inputs` gave it (a constant of the source's, so a misspelling does not
    /// compile).
    pub fn input(&self, name: &'static str) -> Option<&str> {
        self.inputs.get(name).map(String::as_str)
    }

    /// An input the source's `workload_inputs` always resolves: its absence is pullcred's
    /// bug, told as an error rather than minted with an empty value.
    pub fn required(&self, name: &'static str) -> Result<&str, MissingInput> {
        self.input(name).ok_or(MissingInput(name))
    }
}

/// Why a service account's annotations (with the rule's defaults) give a source nothing to
/// mint with: the rule's `identity` decides whether the node's identity is used instead.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("source {0:?} mints with the node's identity only")]
    NodeOnly(&'static str),
    /// An annotation is set to something the source cannot use; `why` says what it must be.
    #[error("annotation {annotation} {why}")]
    Invalid {
        annotation: String,
        why: &'static str,
    },
    /// The service account has not opted in to what the rule does for workloads: its
    /// annotation is absent or `"false"`.
    #[error(
        "annotation {annotation} is not \"true\": the service account has not opted in to {what}"
    )]
    NotOptedIn {
        annotation: String,
        what: &'static str,
    },
    /// Nothing names the input: neither the annotation nor `fallback` (the rule's key, a
    /// variable). `lead` names what is missing, when the annotation's name does not.
    #[error("{lead}annotation {annotation} is not set, and {fallback}")]
    Unset {
        lead: &'static str,
        annotation: String,
        fallback: String,
    },
}

/// An input a source always resolves was not there.
#[derive(Debug, thiserror::Error)]
#[error("the workload's {0} was not resolved from its service account")]
pub struct MissingInput(&'static str);

/// ` <length>:<value>`, for a cache key.
fn push_field(key: &mut String, value: &str) {
    key.push(' ');
    push_len(key, value.len());
    key.push(':');
    key.push_str(value);
}

/// A number in decimal, without the formatting machinery.
fn push_len(key: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    key.push_str(std::str::from_utf8(&digits[i..]).unwrap_or("0"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::time::{Duration, UNIX_EPOCH};

    fn token(claims: serde_json::Value) -> Secret {
        Secret::new(format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ))
    }

    #[test]
    fn the_service_account_is_read_from_a_projected_tokens_claims() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let claims = serde_json::json!({
            "aud": ["sts.amazonaws.com"], "exp": 1_800_003_600u64, "iat": 1_800_000_000u64,
            "iss": "https://kubernetes.default.svc", "sub": "system:serviceaccount:team-a:puller",
            "kubernetes.io": {"namespace": "team-a", "pod": {"name": "p", "uid": "pu"},
                "serviceaccount": {"name": "puller", "uid": "su-1"}},
        });
        let sa = ServiceAccount::from_token(&token(claims.clone()), now).unwrap();
        assert_eq!((sa.id(), sa.uid.as_str()), ("team-a/puller".into(), "su-1"));
        assert_eq!(sa.audience, ["sts.amazonaws.com"]);
        let later = UNIX_EPOCH + Duration::from_secs(1_800_003_600);
        assert_eq!(
            ServiceAccount::from_token(&token(claims), later)
                .unwrap_err()
                .to_string(),
            "the service account token of team-a/puller expired at 2027-01-15T09:00:00Z"
        );
        let no_uid = serde_json::json!({"exp": 1_800_003_600u64,
            "kubernetes.io": {"namespace": "n", "serviceaccount": {"name": "s"}}});
        assert_eq!(
            ServiceAccount::from_token(&token(no_uid), now).unwrap_err(),
            TokenError::Missing("kubernetes.io.serviceaccount.uid")
        );
        assert_eq!(
            ServiceAccount::from_token(&Secret::new("opaque"), now).unwrap_err(),
            TokenError::NotAJwt
        );
    }

    #[test]
    fn the_audience_is_a_string_or_a_list_and_keys_the_cache() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let with_aud = |aud: serde_json::Value| {
            token(serde_json::json!({"aud": aud, "exp": 1_800_003_600u64,
                "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}}}))
        };
        let one = ServiceAccount::from_token(&with_aud("a".into()), now).unwrap();
        assert_eq!(one.audience, ["a"]);
        let two =
            ServiceAccount::from_token(&with_aud(serde_json::json!(["a", "b"])), now).unwrap();
        assert_eq!(two.audience, ["a", "b"]);
        for bad in [serde_json::json!(5), serde_json::json!(["a", 5])] {
            assert_eq!(
                ServiceAccount::from_token(&with_aud(bad), now).unwrap_err(),
                TokenError::NotAJwt
            );
        }
        let mut key = String::from("rule\n");
        let inputs = Inputs::from([("client_id", "c".to_string()), ("tenant_id", "t".into())]);
        Workload {
            account: two,
            inputs,
            or_node: false,
        }
        .write_cache_identity(&mut key);
        assert_eq!(
            key,
            "rule\nservice account 2:ns 2:sa 1:u aud2 1:a 1:b client_id 1:c tenant_id 1:t"
        );
    }

    #[test]
    fn values_that_hold_separators_never_share_a_key() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let key = |aud: serde_json::Value, inputs: &[(&'static str, &str)]| {
            let t = token(serde_json::json!({"aud": aud, "exp": 1_800_003_600u64,
                "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}}}));
            let mut key = String::new();
            Workload {
                or_node: false,
                account: ServiceAccount::from_token(&t, now).unwrap(),
                inputs: inputs.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            }
            .write_cache_identity(&mut key);
            key
        };
        let pairs = [
            (
                key(serde_json::json!(["a", "b"]), &[]),
                key(serde_json::json!(["a,b"]), &[]),
            ),
            (
                key(serde_json::json!(["a b"]), &[]),
                key(serde_json::json!(["a", "b"]), &[]),
            ),
            (
                key("a".into(), &[("role_arn", "r tenant_id=t")]),
                key("a".into(), &[("role_arn", "r"), ("tenant_id", "t")]),
            ),
        ];
        for (one, other) in pairs {
            assert_ne!(one, other);
        }
        assert_eq!(push_len_of(0), "0");
        assert_eq!(push_len_of(1234567), "1234567");
    }

    fn push_len_of(n: usize) -> String {
        let mut s = String::new();
        push_len(&mut s, n);
        s
    }
}
