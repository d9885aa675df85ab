//! The kubelet's exec credential-provider wire format: decoding requests, encoding responses,
//! and Go's `time.Duration` string form that `cacheDuration` must use.
//!
//! The kubelet decodes responses strictly (an unknown field makes it drop the whole answer),
//! so the response type has exactly the documented fields, in the documented spelling.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::credential::Secret;

/// The most stdin we read. Real requests are a few hundred bytes (a few KiB with a
/// service-account token); anything larger is not a kubelet talking.
pub const MAX_REQUEST_BYTES: u64 = 1 << 20;

const REQUEST_KIND: &str = "CredentialProviderRequest";
const RESPONSE_KIND: &str = "CredentialProviderResponse";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    V1Beta1,
    V1Alpha1,
}

impl ApiVersion {
    pub const ALL: [ApiVersion; 3] = [ApiVersion::V1, ApiVersion::V1Beta1, ApiVersion::V1Alpha1];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "credentialprovider.kubelet.k8s.io/v1",
            ApiVersion::V1Beta1 => "credentialprovider.kubelet.k8s.io/v1beta1",
            ApiVersion::V1Alpha1 => "credentialprovider.kubelet.k8s.io/v1alpha1",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("stdin is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("reading stdin: {0}")]
    Read(String),
    #[error("stdin is empty")]
    Empty,
    // serde_json's data errors quote the offending value, which may be a token, so only the
    // syntax position is reported; field-level problems are reported by name below.
    #[error("invalid JSON at line {line} column {column}")]
    InvalidJson { line: usize, column: usize },
    #[error("not a JSON object")]
    NotAnObject,
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("key {0} appears more than once")]
    DuplicateKey(Quoted),
    #[error("field {0} must be {1}")]
    WrongType(&'static str, &'static str),
    #[error("unsupported apiVersion {0}")]
    UnsupportedApiVersion(Quoted),
    #[error("unexpected kind {0} (want \"{REQUEST_KIND}\")")]
    WrongKind(Quoted),
    #[error("empty image")]
    EmptyImage,
}

/// A value from the request shown in an error: quoted, escaped (so it stays on one line) and
/// cut short. Only used for fields that are never secret.
#[derive(Debug, PartialEq, Eq)]
pub struct Quoted(String);

impl Quoted {
    pub fn new(s: &str) -> Self {
        const MAX: usize = 80;
        let mut end = s.len().min(MAX);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let ellipsis = if end < s.len() { "…" } else { "" };
        Quoted(format!("{:?}{ellipsis}", &s[..end]))
    }
}

impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A decoded `CredentialProviderRequest`.
#[derive(Debug)]
pub struct Request {
    pub api_version: ApiVersion,
    pub image: String,
    /// Service-account-token mode (Kubernetes 1.33+): the pod's projected token.
    pub service_account_token: Option<Secret>,
    pub service_account_annotations: BTreeMap<String, String>,
}

/// Reads a request from `input` (stdin), refusing more than [`MAX_REQUEST_BYTES`].
pub fn read_request(input: impl Read) -> Result<Request, RequestError> {
    let buf = read_bytes(input)?;
    if buf.len() as u64 > MAX_REQUEST_BYTES {
        return Err(RequestError::TooLarge);
    }
    decode_request(&buf)
}

/// Stdin's bytes, no more than one past [`MAX_REQUEST_BYTES`] (so that too much is told).
pub fn read_bytes(input: impl Read) -> Result<Vec<u8>, RequestError> {
    let mut buf = Vec::new();
    input
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| RequestError::Read(e.kind().to_string()))?;
    Ok(buf)
}

pub fn decode_request(bytes: &[u8]) -> Result<Request, RequestError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RequestError::Empty);
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| RequestError::InvalidJson {
        line: e.line(),
        column: e.column(),
    })?;
    let Value::Object(mut obj) = value else {
        return Err(RequestError::NotAnObject);
    };
    // `Value` keeps the last of a repeated key silently; a request that says two things is
    // refused instead.
    let TopLevelKeys(keys) =
        serde_json::from_slice(bytes).map_err(|_| RequestError::NotAnObject)?;
    if keys.len() != obj.len() {
        let mut seen = std::collections::BTreeSet::new();
        if let Some(k) = keys.iter().find(|k| !seen.insert(k.as_str())) {
            return Err(RequestError::DuplicateKey(Quoted::new(k)));
        }
    }
    let mut string_field = |name: &'static str| match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RequestError::WrongType(name, "a string")),
    };
    let api_version = string_field("apiVersion")?.ok_or(RequestError::Missing("apiVersion"))?;
    let kind = string_field("kind")?.ok_or(RequestError::Missing("kind"))?;
    let image = string_field("image")?;
    let token = string_field("serviceAccountToken")?;

    let api_version = ApiVersion::parse(&api_version)
        .ok_or_else(|| RequestError::UnsupportedApiVersion(Quoted::new(&api_version)))?;
    if kind != REQUEST_KIND {
        return Err(RequestError::WrongKind(Quoted::new(&kind)));
    }
    let image = image
        .filter(|i| !i.trim().is_empty())
        .ok_or(RequestError::EmptyImage)?;

    let annotations = match obj.remove("serviceAccountAnnotations") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(RequestError::WrongType(
                    "serviceAccountAnnotations",
                    "a map of strings",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RequestError::WrongType(
                "serviceAccountAnnotations",
                "a map of strings",
            ));
        }
    };

    // Only v1 has the service account fields (Kubernetes 1.33+); older versions' requests
    // carry none, and whatever else sends them is not answered with them.
    let v1 = api_version == ApiVersion::V1;
    Ok(Request {
        api_version,
        image,
        service_account_token: token.filter(|t| v1 && !t.is_empty()).map(Secret::new),
        service_account_annotations: if v1 { annotations } else { BTreeMap::new() },
    })
}

/// The keys of a JSON object, in order, repeats included (values are skipped unread).
struct TopLevelKeys(Vec<String>);

impl<'de> serde::Deserialize<'de> for TopLevelKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = TopLevelKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(k);
                }
                Ok(TopLevelKeys(keys))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// How the kubelet keys its in-memory cache of our answer. (The protocol's third kind,
/// `Global`, would hand one answer to every image of every host: pullcred never sends it.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CacheKeyType {
    Image,
    Registry,
}

#[derive(Serialize)]
struct AuthConfig<'a> {
    username: &'a str,
    password: &'a str,
}

/// One entry of the response's `auth` map.
#[derive(Clone, Debug)]
pub struct Auth {
    pub username: String,
    pub password: Secret,
}

/// A `CredentialProviderResponse`, ready to encode.
#[derive(Clone, Debug)]
pub struct Response {
    pub api_version: ApiVersion,
    pub cache_key_type: CacheKeyType,
    pub cache_duration: Duration,
    pub auth: BTreeMap<String, Auth>,
}

#[derive(Serialize)]
struct WireResponse<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    #[serde(rename = "cacheKeyType")]
    cache_key_type: CacheKeyType,
    #[serde(rename = "cacheDuration")]
    cache_duration: String,
    auth: BTreeMap<&'a str, AuthConfig<'a>>,
}

impl Response {
    /// The answer for an image no rule covers: no credentials, and the kubelet must not
    /// cache that emptiness (it would otherwise keep it even after the config changes).
    pub fn empty(api_version: ApiVersion) -> Self {
        Response {
            api_version,
            cache_key_type: CacheKeyType::Registry,
            cache_duration: Duration::ZERO,
            auth: BTreeMap::new(),
        }
    }

    /// The JSON the kubelet reads, with a trailing newline.
    pub fn encode(&self) -> String {
        let wire = WireResponse {
            api_version: self.api_version.as_str(),
            kind: RESPONSE_KIND,
            cache_key_type: self.cache_key_type,
            cache_duration: go_duration(self.cache_duration),
            auth: self
                .auth
                .iter()
                .map(|(k, a)| {
                    (
                        k.as_str(),
                        AuthConfig {
                            username: &a.username,
                            password: a.password.expose(),
                        },
                    )
                })
                .collect(),
        };
        let mut out = serde_json::to_string(&wire).expect("response serialises");
        out.push('\n');
        out
    }
}

/// Formats a duration the way Go's `time.Duration.String` does (`12h0m0s`, `1m30s`, `1.5s`,
/// `250ms`, `0s`), because the kubelet parses `cacheDuration` with `time.ParseDuration`.
/// Parses a Go `time.Duration` string as `time.ParseDuration` does (`5m`, `1h30m`, `1.5s`,
/// `300ms`, `0`), refusing negative values: what the kubelet accepts in
/// `defaultCacheDuration`.
pub fn parse_go_duration(s: &str) -> Result<Duration, GoDurationError> {
    let bad = || GoDurationError::NotOne(s.to_string());
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(GoDurationError::Negative(s.to_string()));
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..number_end].parse().map_err(|_| bad())?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// A Go duration the kubelet would refuse.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum GoDurationError {
    #[error("{0:?} is not a Go duration (like 5m, 1h30m, 300ms)")]
    NotOne(String),
    #[error("{0:?} is negative")]
    Negative(String),
}

pub fn go_duration(d: Duration) -> String {
    const SEC: u128 = 1_000_000_000;
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < SEC {
        let (div, unit) = match ns {
            0..1_000 => (1, "ns"),
            1_000..1_000_000 => (1_000, "µs"),
            _ => (1_000_000, "ms"),
        };
        return format!("{}{unit}", decimal(ns, div));
    }
    let hours = ns / (3600 * SEC);
    let minutes = ns / (60 * SEC) % 60;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&decimal(ns % (60 * SEC), SEC));
    out.push('s');
    out
}

/// `value / div` as a decimal without trailing zeros (`div` is a power of ten).
fn decimal(value: u128, div: u128) -> String {
    let (int, frac) = (value / div, value % div);
    if frac == 0 {
        return int.to_string();
    }
    let width = div.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v1_requests_bring_a_service_account() {
        let req = |version: &str| {
            decode_request(
                format!(
                    r#"{{"apiVersion":"credentialprovider.kubelet.k8s.io/{version}","kind":"CredentialProviderRequest","image":"a/b","serviceAccountToken":"t.o.k","serviceAccountAnnotations":{{"k":"v"}}}}"#
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let v1 = req("v1");
        assert_eq!(v1.service_account_token, Some(Secret::new("t.o.k")));
        assert_eq!(v1.service_account_annotations["k"], "v");
        for version in ["v1beta1", "v1alpha1"] {
            let old = req(version);
            assert!(old.service_account_token.is_none(), "{version}");
            assert!(old.service_account_annotations.is_empty(), "{version}");
        }
    }

    #[test]
    fn go_durations_parse_as_go_parses_them() {
        for (text, secs) in [
            ("5m", 300.0),
            ("1h30m", 5400.0),
            ("1.5s", 1.5),
            ("300ms", 0.3),
            ("0", 0.0),
            ("0s", 0.0),
            ("2h45m10.5s", 9910.5),
        ] {
            assert_eq!(
                parse_go_duration(text),
                Ok(Duration::from_secs_f64(secs)),
                "{text}"
            );
        }
        for bad in ["", "5", "-5m", "5 m", "m", "5x", "1h-2m", "\"5m\""] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_duration_matches_go() {
        // Expected strings are what Go's time.Duration.String prints for the same values.
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1µs"),
            (Duration::from_micros(2_200), "2.2ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(300), "5m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(12 * 3600), "12h0m0s"),
            (Duration::from_secs(11 * 3600 + 30 * 60), "11h30m0s"),
            (Duration::new(3 * 3600 + 61, 5_000_000), "3h1m1.005s"),
            (Duration::from_secs(100 * 3600), "100h0m0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn response_has_exactly_the_wire_fields() {
        let mut auth = BTreeMap::new();
        auth.insert(
            "registry.example.com".to_string(),
            Auth {
                username: "u".into(),
                password: Secret::new("p"),
            },
        );
        let resp = Response {
            api_version: ApiVersion::V1Beta1,
            cache_key_type: CacheKeyType::Registry,
            cache_duration: Duration::from_secs(300),
            auth,
        };
        let v: Value = serde_json::from_str(&resp.encode()).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "apiVersion",
                "auth",
                "cacheDuration",
                "cacheKeyType",
                "kind"
            ]
        );
        assert_eq!(v["apiVersion"], "credentialprovider.kubelet.k8s.io/v1beta1");
        assert_eq!(v["cacheDuration"], "5m0s");
        assert_eq!(
            v["auth"]["registry.example.com"],
            serde_json::json!({"username": "u", "password": "p"})
        );
    }

    #[test]
    fn type_errors_never_echo_values() {
        let err = decode_request(
            br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"x","serviceAccountToken":{"secret":"s3cr3t"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            RequestError::WrongType("serviceAccountToken", "a string")
        );
        assert!(!err.to_string().contains("s3cr3t"));
    }
}

/// Property tests: the decoder never panics on any bytes, its errors are one short line, and
/// a well-formed request carries its image through unchanged.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_bytes_decode_or_fail_in_one_line(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Err(e) = decode_request(&bytes) {
                let text = e.to_string();
                prop_assert!(!text.contains('\n') && text.len() < 200, "{text:?}");
            }
        }

        #[test]
        fn json_shaped_input_never_panics(
            s in r#"\{("(apiVersion|kind|image|serviceAccountToken|serviceAccountAnnotations)":("[^"]{0,12}"|[0-9]|null|\{\}|\[\]),?){0,6}\}"#
        ) {
            let _ = decode_request(s.as_bytes());
        }

        #[test]
        fn the_image_comes_through(image in "\\PC{1,60}", api in 0usize..3) {
            prop_assume!(!image.trim().is_empty());
            let api = ApiVersion::ALL[api];
            let body = serde_json::json!({
                "apiVersion": api.as_str(),
                "kind": "CredentialProviderRequest",
                "image": image,
            })
            .to_string();
            let req = decode_request(body.as_bytes()).unwrap();
            prop_assert_eq!(req.image, image);
            prop_assert_eq!(req.api_version, api);
        }
    }
}
