//! Which hosts Google's registries answer on: Artifact Registry's `<location>-docker.pkg.dev`
//! and Container Registry's `gcr.io` and its regional names. Strict, as for ECR: the token
//! is handed to exactly this host, so a name that merely resembles Google's must not pass.

/// Container Registry's hosts (and Artifact Registry's gcr.io repositories), and
/// `container.cloud.google.com`, which GKE's own images are pulled from (upstream's and
/// GKE's `matchImages` name it). Other `*.gcr.io` names are not Google's registries and are
/// refused.
const GCR_HOSTS: [&str; 6] = [
    "gcr.io",
    "us.gcr.io",
    "eu.gcr.io",
    "asia.gcr.io",
    "marketplace.gcr.io",
    "container.cloud.google.com",
];
const AR_SUFFIX: &str = "-docker.pkg.dev";

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{host:?} is not a Google registry host: {why}")]
pub struct NotGoogle {
    host: String,
    why: &'static str,
}

/// Whether `host` (with its port, if any) is a Google registry host.
pub fn check(host: &str) -> Result<(), NotGoogle> {
    let not = |why| NotGoogle {
        host: host.to_string(),
        why,
    };
    if host.contains(':') {
        return Err(not("Google's registries have no port"));
    }
    if GCR_HOSTS.contains(&host) {
        return Ok(());
    }
    // `<location>-docker.pkg.dev`: one label, a location of lower-case words and digits
    // joined by dashes (`us`, `europe-west4`, `asia-northeast1`).
    let Some(location) = host.strip_suffix(AR_SUFFIX) else {
        return Err(not("expected <location>-docker.pkg.dev or gcr.io"));
    };
    let ok = !location.is_empty()
        && !location.contains('.')
        && location.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(not("the location is not a Google Cloud location name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_hosts_and_look_alikes() {
        for host in [
            "us-docker.pkg.dev",
            "europe-west4-docker.pkg.dev",
            "asia-northeast1-docker.pkg.dev",
            "gcr.io",
            "us.gcr.io",
            "eu.gcr.io",
            "asia.gcr.io",
            "marketplace.gcr.io",
            "container.cloud.google.com",
        ] {
            check(host).unwrap_or_else(|e| panic!("{e}"));
        }
        for host in [
            "gcr.io.evil.com",
            "evilgcr.io",
            "us-docker.pkg.dev.example.com",
            "pkg.dev",
            "docker.pkg.dev",
            "-docker.pkg.dev",
            "us..west-docker.pkg.dev",
            "evil.us-docker.pkg.dev",
            "US-docker.pkg.dev",
            "gcr.io:443",
            "mirror.gcr.io",
            "k8s.gcr.io",
            "evil.container.cloud.google.com",
            "",
        ] {
            assert!(check(host).is_err(), "{host} passed as Google's");
        }
    }
}
