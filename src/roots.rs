//! Which CA certificates the TLS clients trust: the system's bundle file alone. Left to
//! themselves, rustls-native-certs (under the AWS SDK's client and reqwest's verifier) reads,
//! on Debian and Ubuntu, the bundle *and* every one of the few hundred files of the hashed
//! directory beside it: the same certificates twice, a large share of a cold mint's work
//! (the benchmarks in docs measure it). So, before anything else runs, the minting binary names the bundle in
//! `SSL_CERT_FILE`, which makes those libraries read that file only. An operator's own
//! `SSL_CERT_FILE` or `SSL_CERT_DIR` is left as it is, and a node with no known bundle file
//! keeps the libraries' own search.

/// Where distributions keep their CA bundle (the list Go's crypto/x509 searches).
pub const BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Arch, Flatcar
    "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL, Amazon Linux, Bottlerocket
    "/etc/ssl/ca-bundle.pem",             // openSUSE
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7+
    "/etc/ssl/cert.pem",                  // Alpine
    "/etc/pki/tls/cacert.pem",            // OpenELEC
];

/// The bundle file to name, if the environment names none and one of [`BUNDLES`] exists.
pub fn bundle_to_name(var: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    let named = |v| var(v).is_some_and(|s| !s.is_empty());
    if named("SSL_CERT_FILE") || named("SSL_CERT_DIR") {
        return None;
    }
    BUNDLES
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
}

/// Names the system's bundle in `SSL_CERT_FILE` for this process (see the module's doc).
///
/// # Safety
/// Changes the process environment: call before any other thread exists.
pub unsafe fn name_bundle() {
    if let Some(bundle) = bundle_to_name(|v| std::env::var(v).ok()) {
        // SAFETY: the caller guarantees no other thread reads the environment yet.
        unsafe { std::env::set_var("SSL_CERT_FILE", bundle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_choice_is_kept() {
        let var = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(bundle_to_name(var(&[("SSL_CERT_FILE", "/x.pem")])), None);
        assert_eq!(bundle_to_name(var(&[("SSL_CERT_DIR", "/certs")])), None);
        let found = BUNDLES
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file());
        assert_eq!(bundle_to_name(var(&[])), found);
        assert_eq!(bundle_to_name(var(&[("SSL_CERT_FILE", "")])), found);
    }
}
