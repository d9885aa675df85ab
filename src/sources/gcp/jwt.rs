//! The signed JWT a service account presents to Google's token endpoint (RS256, as Google's
//! OAuth 2.0 for service accounts documents), signed with aws-lc-rs, the crypto the binary
//! already carries for TLS.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// A private key from a credential file's `private_key` (PEM, PKCS#8). The error never
/// quotes the key.
pub fn load_key(pem: &str) -> Result<RsaKeyPair, &'static str> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "private_key is not a PEM private key")?;
    let PrivateKeyDer::Pkcs8(pkcs8) = der else {
        return Err("private_key is not a PKCS#8 key");
    };
    RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()).map_err(|_| "private_key is not an RSA key")
}

/// `header.claims.signature`, each base64url without padding.
pub fn sign(
    key: &RsaKeyPair,
    key_id: Option<&str>,
    claims: &serde_json::Value,
) -> Result<String, &'static str> {
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
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
