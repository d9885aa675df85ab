//! JSON Web Tokens as the sources meet them: client assertions signed RS256 (a Google
//! service account's, an Entra ID certificate credential's), on aws-lc-rs, the crypto the
//! binary already carries for TLS; and the claims of a token read without verifying it
//! (a registry token's `exp`, an Entra token's `tid`), which is for timing and routing only,
//! never for trust.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// An RSA private key from PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`), the
/// first key in the text. The error never quotes the key.
pub fn load_key(pem: &str) -> Result<RsaKeyPair, &'static str> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "the private key is not a PEM private key")?;
    match der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err("the private key is not an RSA key"),
    }
    .map_err(|_| "the private key is not an RSA key")
}

/// The `x5t#S256` thumbprint of the first certificate in a PEM text: base64url of the SHA-256
/// of its DER, as RFC 7515 section 4.1.8 defines it.
pub fn certificate_thumbprint(pem: &str) -> Result<String, &'static str> {
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or("no PEM certificate")?
        .map_err(|_| "the certificate is not valid PEM")?;
    Ok(URL_SAFE_NO_PAD.encode(digest(&SHA256, cert.as_ref())))
}

/// `header.claims.signature`, each base64url without padding; `header` gets `alg` and `typ`
/// added.
pub fn sign(
    key: &RsaKeyPair,
    header: serde_json::Map<String, serde_json::Value>,
    claims: &serde_json::Value,
) -> Result<String, &'static str> {
    let mut header = header;
    header.insert("alg".into(), "RS256".into());
    header.insert("typ".into(), "JWT".into());
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "cannot sign the assertion")?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A random identifier for an assertion's `jti`: 128 bits as hex.
pub fn random_id() -> Result<String, &'static str> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no random numbers")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The claims of a compact JWT, not verified: `None` when it is not one.
pub fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match unverified_claims_as(token)? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The claims of a compact JWT as `T`, not verified (only the fields `T` names are kept).
pub fn unverified_claims_as<T: serde::de::DeserializeOwned>(token: &str) -> Option<T> {
    let mut parts = token.split('.');
    let (_header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Some issuers pad; base64url without padding is the standard.
    let bytes = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_read_from_the_middle_part_only() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"exp":1700000000,"tid":"t"}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln");
        let read = unverified_claims(&token).unwrap();
        assert_eq!(read["exp"], 1_700_000_000);
        assert_eq!(read["tid"], "t");
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            &format!("a.{}.c", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            assert!(unverified_claims(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn key_errors_never_quote_the_key() {
        let text =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let e = load_key(text).unwrap_err();
        assert!(!e.contains("c2Vj"), "{e}");
        assert_eq!(
            load_key("no pem").unwrap_err(),
            "the private key is not a PEM private key"
        );
    }
}
