//! Source `gcp-secret-manager`: a registry credential kept in Google Secret Manager, read
//! with `versions.access` (`GET /v1/<version>:access`) and a token of the shared Google
//! identity: the node's application default credentials, or a workload's federated token.
//! The payload's CRC32C, when the answer carries one, is checked before the value is used.

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{MintRequest, OptionError, Options, Source, SourceError, Spec, run_mint};
use crate::credential::{Credential, Scope};
use crate::env::Env;
use crate::http::{Unreadable, web_client};
use crate::identity::google::{self, Google};
use crate::stored::{self, Reading, Stored};

kinds! {
    name: "gcp-secret-manager",
    options: SecretManagerOptions,
    shared: [google::Keys, stored::Keys],
    build: from_options,
    builtin: &[],
    workloads: super::Workloads::Optional,
}

/// The global endpoint; a regional secret's is `secretmanager.<location>.rep.googleapis.com`.
const GLOBAL_ENDPOINT: &str = "https://secretmanager.googleapis.com";
/// The version read when the rule names none.
const LATEST: &str = "latest";
/// CRC32C (Castagnoli), as Secret Manager's `dataCrc32c` is computed.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The rule keys of `gcp-secret-manager` (beyond the Google identity's and the stored
/// value's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretManagerOptions {
    secret: Option<String>,
    endpoint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretManagerSource {
    /// `projects/P/[locations/L/]secrets/S/versions/V`, the version filled in.
    version: String,
    /// The rule's endpoint, else the global or the location's.
    base: String,
    google: Google,
    reading: Reading,
}

fn from_options(options: &Options<'_>) -> Result<SecretManagerSource, OptionError> {
    let (rest, keys) = options.split::<google::Keys>()?;
    let (rest, value_keys) = rest.split::<stored::Keys>()?;
    let o: SecretManagerOptions = rest.parse()?;
    let google = Google::from_keys(keys, options)?;
    let reading = Reading::from_keys(value_keys)?;
    let secret = o.secret.ok_or_else(|| {
        OptionError::rule(
            "source \"gcp-secret-manager\" needs `secret` (projects/<project>/secrets/<name>)",
        )
    })?;
    let (version, location) = parse_secret(&secret).ok_or_else(|| {
        OptionError::at(
            "secret",
            format!(
                "secret {secret:?} is not projects/<project>/[locations/<location>/]secrets/<name>[/versions/<version>]"
            ),
        )
    })?;
    let base = match (&o.endpoint, location) {
        (Some(url), _) => stored::base_url(url).map_err(|why| OptionError::at("endpoint", why))?,
        (None, Some(l)) => format!("https://secretmanager.{l}.rep.googleapis.com"),
        (None, None) => GLOBAL_ENDPOINT.to_string(),
    };
    Ok(SecretManagerSource {
        version,
        base,
        google,
        reading,
    })
}

/// The full version name of a rule's `secret`, and its location for a regional secret.
fn parse_secret(s: &str) -> Option<(String, Option<String>)> {
    let word = |w: &str, extra: &[u8]| {
        !w.is_empty()
            && w.len() <= 255
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b))
    };
    let parts: Vec<&str> = s.split('/').collect();
    let (project, location, name, version) = match parts.as_slice() {
        ["projects", p, "secrets", n] => (*p, None, *n, LATEST),
        ["projects", p, "secrets", n, "versions", v] => (*p, None, *n, *v),
        ["projects", p, "locations", l, "secrets", n] => (*p, Some(*l), *n, LATEST),
        ["projects", p, "locations", l, "secrets", n, "versions", v] => (*p, Some(*l), *n, *v),
        _ => return None,
    };
    // Projects by id (`my-project`, `example.com:my-project`) or number.
    let ok = word(project, b".:")
        && project.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && !project.contains("..")
        && word(name, b"")
        && word(version, b"")
        && location.is_none_or(|l| word(l, b"") && l.bytes().all(|b| b != b'_'));
    ok.then(|| {
        let base = match location {
            Some(l) => format!("projects/{project}/locations/{l}/secrets/{name}"),
            None => format!("projects/{project}/secrets/{name}"),
        };
        (
            format!("{base}/versions/{version}"),
            location.map(str::to_string),
        )
    })
}

impl Spec for SecretManagerSource {
    fn name(&self) -> &'static str {
        KIND.name
    }

    stored_value_spec!(reading);

    fn describe(&self) -> String {
        let mut parts = vec![format!("secret={}", self.version)];
        if self.base != GLOBAL_ENDPOINT {
            parts.push(format!("endpoint={}", self.base));
        }
        self.google.describe(&mut parts);
        self.reading.describe(&mut parts);
        parts.join(" ")
    }

    fn cache_identity(&self, env: &Env) -> String {
        format!(
            "gcp-secret-manager {self:?} {}",
            env.vars_text(google::IDENTITY_VARS)
        )
    }

    fn max_mint_time(&self) -> Duration {
        // A token, then the read, each with its attempts.
        google::MAX_TOKEN_TIME + Duration::from_secs(5)
    }

    workload_identity_of!(google);
}

/// `versions.access`'s answer.
#[derive(Deserialize)]
struct Answer {
    payload: Payload,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    data: Option<String>,
    /// An int64, which JSON carries as a string.
    data_crc32c: Option<String>,
}

/// The payload's text, its CRC32C checked when the answer gives one.
fn read_answer(body: &[u8]) -> Result<String, Unreadable> {
    use base64::Engine;
    let a: Answer = serde_json::from_slice(body).map_err(|_| Unreadable::Not("a secret payload"))?;
    let data = a.payload.data.ok_or(Unreadable::Empty("payload"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| Unreadable::Not("a secret payload (its data is not base64)"))?;
    if let Some(sum) = a.payload.data_crc32c {
        let want: u64 = sum
            .parse()
            .map_err(|_| Unreadable::Not("a secret payload (dataCrc32c is not a number)"))?;
        if u64::from(CRC32C.checksum(&bytes)) != want {
            return Err(Unreadable::Not(
                "a secret payload whose CRC32C matches its data (corrupted in transit)",
            ));
        }
    }
    String::from_utf8(bytes).map_err(|_| Unreadable::Not("a secret payload of text"))
}

impl Source for SecretManagerSource {
    fn mint(&self, req: &MintRequest<'_>) -> Result<Credential, SourceError> {
        self.mint_scoped(req).map(|(c, _)| c)
    }

    fn mint_scoped(&self, req: &MintRequest<'_>) -> Result<(Credential, Scope), SourceError> {
        let budget = req.deadline.saturating_duration_since(Instant::now());
        let mut scope = Scope::default();
        let scope_out = &mut scope;
        let credential = run_mint(
            budget,
            |resolver, _limit| async move {
                let client = web_client(req.env, &resolver, false, &google::TIMEOUTS)?;
                let token = self
                    .google
                    .token(req.env, &resolver, &client, req.workload, req.deadline)
                    .await?;
                let url = format!("{}/v1/{}:access", self.base, self.version);
                let what = format!("Secret Manager access {}", self.version);
                let value = stored::call(&what, req.deadline, stored::refusal)
                    .fetch(
                        || client.get(&url).bearer_auth(token.password.expose()),
                        |_| Ok(()),
                        read_answer,
                    )
                    .await
                    .map_err(|e| stored::read_error(&self.version, e))?;
                let (mut credential, found) = self.reading.credential(
                    Stored::Text(&value),
                    req.mint_host,
                    req.repository,
                    &self.version,
                    req.env.now(),
                )?;
                // Read with a workload's token: kept no longer than it.
                if req.workload.is_some()
                    && let (Some(end), Some(exp)) = (token.expires_at, credential.expires_at)
                {
                    credential.expires_at = Some(exp.min(end));
                }
                *scope_out = found;
                Ok(credential)
            },
            || format!("Secret Manager access {}", self.version),
        )?;
        Ok((credential, scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_version_names() {
        assert_eq!(
            parse_secret("projects/p-1/secrets/hub"),
            Some(("projects/p-1/secrets/hub/versions/latest".into(), None))
        );
        assert_eq!(
            parse_secret("projects/123/locations/europe-west4/secrets/hub/versions/7"),
            Some((
                "projects/123/locations/europe-west4/secrets/hub/versions/7".into(),
                Some("europe-west4".into())
            ))
        );
        for bad in [
            "hub",
            "projects/p/secrets/",
            "projects/p/secrets/a/b",
            "projects/p/secrets/h?x",
            "projects/p/locations/x.evil.com/secrets/h",
            "projects/../secrets/h",
        ] {
            assert_eq!(parse_secret(bad), None, "{bad}");
        }
    }

    #[test]
    fn payloads_are_checked() {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode("pw");
        let sum = CRC32C.checksum(b"pw");
        let body = format!(r#"{{"name":"n","payload":{{"data":"{data}","dataCrc32c":"{sum}"}}}}"#);
        assert_eq!(read_answer(body.as_bytes()).unwrap(), "pw");
        let bad = format!(
            r#"{{"name":"n","payload":{{"data":"{data}","dataCrc32c":"{}"}}}}"#,
            sum ^ 1
        );
        assert!(read_answer(bad.as_bytes()).is_err());
        // The check value of CRC-32C ("123456789"), as RFC 3720 lists it.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }
}
