//! Entra ID's token endpoint for an application (a service principal or a federated
//! workload identity), as Microsoft's identity platform documents the client credentials
//! flow: `POST {authority}/{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`,
//! `client_id`, `scope`, and either `client_secret` or a `client_assertion` (a JWT signed
//! with the application's certificate, or a federated token such as a Kubernetes service
//! account token). Nothing from the secret, the key or the token reaches an error.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::credential::Secret;
use crate::env::Env;
use crate::failure::SourceError;
use crate::http::MAX_ATTEMPTS;
use crate::oauth::{access_token, jwt};
use crate::secret_file;

/// The public cloud's authority; `authority_host`, `AZURE_AUTHORITY_HOST` or azure.json's
/// `cloud` replace it.
pub const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A certificate assertion lives ten minutes: long enough for the call, short if it leaks.
const ASSERTION_LIFE: Duration = Duration::from_secs(600);

/// How the application proves itself.
pub enum Proof<'a> {
    /// A client secret.
    Secret(Secret),
    /// A PEM file with the certificate and its private key.
    CertificateFile(&'a Path),
    /// A federated token read from this file at each mint (it is rotated by its issuer).
    FederatedTokenFile(&'a Path),
    /// A federated token in hand (a workload's service account token).
    Assertion(Secret),
}

/// The application asking.
pub struct App<'a> {
    pub authority: &'a str,
    pub tenant: &'a str,
    pub client_id: &'a str,
}

/// An access token for `scope`.
pub async fn token(
    client: &reqwest::Client,
    env: &Env,
    app: &App<'_>,
    proof: Proof<'_>,
    scope: &str,
    deadline: Instant,
) -> Result<Secret, SourceError> {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        app.authority.trim_end_matches('/'),
        app.tenant
    );
    let local = |path: &Path, why: &str| SourceError::local(format!("{}: {why}", path.display()));
    let (field, value, how) = match proof {
        Proof::Secret(s) => ("client_secret", s, "client secret"),
        Proof::CertificateFile(path) => {
            let pem = secret_file::read(path, env.uid())?;
            let assertion = certificate_assertion(&pem, &url, app.client_id, env.now())
                .map_err(|why| local(path, why))?;
            ("client_assertion", assertion, "certificate")
        }
        Proof::FederatedTokenFile(path) => {
            let text = secret_file::read(path, env.uid())?;
            let token = text.trim();
            if token.is_empty() {
                return Err(local(path, "the federated token file is empty"));
            }
            ("client_assertion", Secret::new(token), "federated token")
        }
        Proof::Assertion(token) => ("client_assertion", token, "service account token"),
    };
    let what = format!(
        "Entra ID token endpoint {url} (client {}, {how})",
        app.client_id
    );
    let token = crate::oauth::call(&what, MAX_ATTEMPTS, deadline)
        .fetch(
            || {
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", app.client_id),
                    ("scope", scope),
                    (field, value.expose()),
                ];
                if field == "client_assertion" {
                    form.push(("client_assertion_type", ASSERTION_TYPE));
                }
                client.post(&url).form(&form)
            },
            |_| Ok(()),
            access_token,
        )
        .await?;
    Ok(Secret::new(token))
}

/// The client assertion of a certificate credential: RS256 with the certificate's SHA-256
/// thumbprint in `x5t#S256`, `aud` the token endpoint, `iss` and `sub` the client ID.
fn certificate_assertion(
    pem: &str,
    url: &str,
    client_id: &str,
    now: SystemTime,
) -> Result<Secret, &'static str> {
    let key = jwt::load_key(pem)?;
    let thumbprint = jwt::certificate_thumbprint(pem)?;
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let claims = serde_json::json!({
        "aud": url,
        "iss": client_id,
        "sub": client_id,
        "jti": jwt::random_id()?,
        "nbf": now,
        "iat": now,
        "exp": now + ASSERTION_LIFE.as_secs(),
    });
    let mut header = serde_json::Map::new();
    header.insert("x5t#S256".into(), thumbprint.into());
    jwt::sign(&key, header, &claims).map(Secret::new)
}
