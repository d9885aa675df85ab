//! The trust anchors for every TLS client, read once per process: the system's CA bundle
//! file alone. Left to themselves, the TLS stacks load "native" roots through
//! rustls-native-certs, which on Debian and Ubuntu reads the bundle *and* every one of the
//! few hundred files in the hashed directory beside it (the same certificates twice): on a
//! mint that was 85% of the process's instructions (callgrind, bench/run.sh). The operator's
//! choices are kept: `SSL_CERT_FILE` names the bundle; `SSL_CERT_DIR`, when set, means the
//! libraries' own loading (file and directory) as before; a node with no known bundle file
//! falls back to it too.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::env::Env;

/// Where distributions keep their CA bundle (the list Go's crypto/x509 searches).
const BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Arch, Flatcar
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL, Amazon Linux, Bottlerocket
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
    "/etc/ssl/cert.pem",                  // Alpine
    "/etc/pki/tls/cacert.pem",            // OpenELEC
];
/// A CA bundle is a few hundred KiB; anything much larger is not one.
const MAX_BUNDLE_BYTES: u64 = 8 << 20;

/// The anchors to trust.
#[derive(Debug)]
pub enum Roots {
    /// These certificates (each one a valid trust anchor), as DER and as one PEM text.
    Bundle {
        ders: Vec<CertificateDer<'static>>,
        pem: Vec<u8>,
    },
    /// The TLS libraries' own loading of the platform's roots.
    Native,
}

/// The roots for this process (decided on first use).
pub fn roots(env: &Env) -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| load(env))
}

fn load(env: &Env) -> Roots {
    if env.var("SSL_CERT_DIR").is_some() {
        return Roots::Native;
    }
    let file = match env.var("SSL_CERT_FILE") {
        Some(f) => Some(f.to_string()),
        None => BUNDLES
            .iter()
            .find(|p| std::path::Path::new(p).is_file())
            .map(|p| p.to_string()),
    };
    let Some(text) = file.and_then(|f| read(&f)) else {
        return Roots::Native;
    };
    from_pem(&text).unwrap_or(Roots::Native)
}

fn read(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_BUNDLE_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The valid anchors of a PEM text; `None` if there are none (then the libraries decide).
fn from_pem(text: &[u8]) -> Option<Roots> {
    // Only certificates a verifier accepts as anchors: a bundle may hold one it cannot parse,
    // and the TLS stacks treat a bad certificate handed to them as a fatal error.
    let ders: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text)
        .filter_map(Result::ok)
        .filter(|der| rustls::RootCertStore::empty().add(der.clone()).is_ok())
        .collect();
    if ders.is_empty() {
        return None;
    }
    let mut pem = Vec::new();
    for der in &ders {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let b64 = STANDARD.encode(der.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    Some(Roots::Bundle { ders, pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_keeps_only_valid_anchors_and_an_empty_one_falls_back() {
        assert!(from_pem(b"").is_none());
        assert!(
            from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_none()
        );
        let system = BUNDLES.iter().find_map(|p| read(p));
        if let Some(text) = system {
            let Some(Roots::Bundle { ders, pem }) = from_pem(&text) else {
                panic!("the system bundle has anchors");
            };
            // The re-encoded text holds exactly the valid ones.
            let again: Vec<_> = CertificateDer::pem_slice_iter(&pem)
                .map(Result::unwrap)
                .collect();
            assert_eq!(again, ders);
        }
    }
}
