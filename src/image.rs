//! Image references: splitting `[host[:port]/]path[:tag][@digest]` into registry and repository.
//!
//! This is the request path's own splitter. `oci-spec`'s `Reference` parser would do, but it
//! compiles a large regex on first use, which costs more time and memory than a whole cache
//! hit; it stays the oracle in this module's differential tests.
//!
//! Normalisation, as in distribution's `ParseNormalizedNamed`:
//!
//! | reference                          | registry         | repository            |
//! |------------------------------------|------------------|-----------------------|
//! | `nginx`                            | `docker.io`      | `library/nginx`       |
//! | `bitnami/redis`                    | `docker.io`      | `bitnami/redis`       |
//! | `index.docker.io/nginx`            | `docker.io`      | `library/nginx`       |
//! | `registry-1.docker.io/bitnami/x`   | `docker.io`      | `bitnami/x`           |
//! | `localhost:5000/foo`               | `localhost:5000` | `foo`                 |
//! | `localhost/foo`                    | `localhost`      | `foo`                 |
//! | `Registry/foo`                     | `Registry`       | `foo`                 |
//!
//! The first path component is a registry when it contains `.` or `:`, is `localhost`, or has
//! an upper-case letter (repositories are lower-case); otherwise the image is on Docker Hub.
//! `index.docker.io` and `registry-1.docker.io` are Docker Hub's API hosts and are folded into
//! `docker.io` (the second is our addition: distribution leaves it alone), and single-component
//! Docker Hub repositories live under `library/`.

use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's other names, folded into [`DOCKER_HUB`].
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
/// The kubelet normalises only this alias (distribution's `ParseNormalizedNamed`); it matches
/// answer keys against the image as it parsed it, so every other spelling is answered as is.
const KUBELET_HUB_ALIAS: &str = "index.docker.io";
const MAX_REPOSITORY_LEN: usize = 255;
/// DNS limits (RFC 1035): a label of at most 63 bytes, a name of at most 253.
const MAX_LABEL_LEN: usize = 63;
const MAX_HOST_LEN: usize = 253;
const MAX_TAG_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Host with its port, if any (`localhost:5000`, `[::1]:5000`), Docker Hub's aliases
    /// folded into `docker.io`: what rules match.
    pub host: String,
    /// The host as the kubelet sees it: as the request spelled it, but for the one alias the
    /// kubelet itself normalises. The answer is keyed by it, or the kubelet finds no match.
    pub requested_host: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("empty reference")]
    Empty,
    #[error("invalid registry host")]
    InvalidHost,
    #[error("registry host has a label longer than {MAX_LABEL_LEN} bytes")]
    LabelTooLong,
    #[error("registry host longer than {MAX_HOST_LEN} bytes")]
    HostTooLong,
    #[error("invalid repository name")]
    InvalidRepository,
    #[error("repository name longer than {MAX_REPOSITORY_LEN} characters")]
    TooLong,
    #[error("invalid tag")]
    InvalidTag,
    #[error("invalid digest")]
    InvalidDigest,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<Self, ImageError> {
        if reference.is_empty() {
            return Err(ImageError::Empty);
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest)?;
                (rest, Some(digest))
            }
            None => (reference, None),
        };
        // A tag is what follows the last ':' when no '/' comes after it; otherwise that ':'
        // belongs to a host's port (`localhost:5000/foo`).
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                check_tag(tag)?;
                (name, Some(tag))
            }
            _ => (rest, None),
        };

        let (host, path) = match name.split_once('/') {
            Some((first, path)) if is_host(first) => (first, path),
            _ => (DOCKER_HUB, name),
        };
        check_host(host)?;
        check_path(path)?;

        let is_hub = is_docker_hub(host);
        let (normal_host, repository) = if is_hub {
            let repository = if path.contains('/') {
                path.to_string()
            } else {
                format!("library/{path}")
            };
            (DOCKER_HUB.to_string(), repository)
        } else {
            (host.to_string(), path.to_string())
        };
        if repository.len() > MAX_REPOSITORY_LEN {
            return Err(ImageError::TooLong);
        }
        let requested_host = if host == KUBELET_HUB_ALIAS {
            DOCKER_HUB
        } else {
            host
        };
        Ok(ImageRef {
            requested_host: requested_host.to_string(),
            host: normal_host,
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The registry host without its port.
    pub fn hostname(&self) -> &str {
        split_port(&self.host).0
    }

    pub fn port(&self) -> Option<&str> {
        split_port(&self.host).1
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits `host:port` (or `[v6]:port`) into host and port.
pub fn split_port(hostport: &str) -> (&str, Option<&str>) {
    if hostport.starts_with('[') {
        return match hostport.rsplit_once("]:") {
            Some((host, port)) => (&hostport[..host.len() + 1], Some(port)),
            None => (hostport, None),
        };
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    }
}

/// Docker Hub under any of its names (lower case, no port).
pub fn is_docker_hub(host: &str) -> bool {
    host == DOCKER_HUB || DOCKER_HUB_ALIASES.contains(&host)
}

/// A TCP port: 1 to 65535, in decimal digits.
pub fn is_port(port: &str) -> bool {
    port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn is_host(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_host(hostport: &str) -> Result<(), ImageError> {
    let (host, port) = split_port(hostport);
    if host.len() > MAX_HOST_LEN {
        return Err(ImageError::HostTooLong);
    }
    if host.split('.').any(|l| l.len() > MAX_LABEL_LEN) {
        return Err(ImageError::LabelTooLong);
    }
    if let Some(port) = port
        && !is_port(port)
    {
        return Err(ImageError::InvalidHost);
    }
    if let Some(v6) = host.strip_prefix('[') {
        let v6 = v6.strip_suffix(']').ok_or(ImageError::InvalidHost)?;
        let ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return if ok {
            Ok(())
        } else {
            Err(ImageError::InvalidHost)
        };
    }
    // Labels: alphanumerics with inner hyphens (and underscores, which distribution's
    // normaliser lets through and some internal DNS names carry), joined by single dots.
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(ImageError::InvalidHost)
    }
}

/// Path components: `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn check_path(path: &str) -> Result<(), ImageError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !is_alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|s| s == b'-');
            if !ok {
                return false;
            }
        }
        true
    };
    if path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ImageError::InvalidRepository)
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn check_tag(tag: &str) -> Result<(), ImageError> {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && word(&b[0])
        && b.iter().all(|c| word(c) || *c == b'.' || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(ImageError::InvalidTag)
    }
}

fn check_digest(digest: &str) -> Result<(), ImageError> {
    let (algorithm, hex) = digest.split_once(':').ok_or(ImageError::InvalidDigest)?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ImageError::InvalidDigest),
    };
    if hex.len() == want && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ImageError::InvalidDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_host_is_what_the_kubelet_parsed() {
        for (reference, want) in [
            ("nginx", "docker.io"),
            ("index.docker.io/nginx", "docker.io"),
            ("registry-1.docker.io/bitnami/x", "registry-1.docker.io"),
            ("Registry:5000/foo", "Registry:5000"),
        ] {
            assert_eq!(ImageRef::parse(reference).unwrap().requested_host, want);
        }
    }

    #[test]
    fn dns_length_limits() {
        let label = "a".repeat(63);
        assert!(ImageRef::parse(&format!("{label}.example.com/x")).is_ok());
        assert_eq!(
            ImageRef::parse(&format!("a{label}.example.com/x")),
            Err(ImageError::LabelTooLong)
        );
        let host = vec!["abcdefghi"; 26].join(".");
        assert_eq!(host.len(), 259);
        assert_eq!(
            ImageRef::parse(&format!("{host}/x")),
            Err(ImageError::HostTooLong)
        );
    }

    const SHA: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn split(r: &str) -> (String, String) {
        let i = ImageRef::parse(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        (i.host, i.repository)
    }

    #[test]
    fn normalisation_table() {
        let table = [
            ("nginx", "docker.io", "library/nginx"),
            ("nginx:1.27", "docker.io", "library/nginx"),
            ("bitnami/redis", "docker.io", "bitnami/redis"),
            ("docker.io/nginx", "docker.io", "library/nginx"),
            ("docker.io/library/nginx", "docker.io", "library/nginx"),
            ("index.docker.io/nginx", "docker.io", "library/nginx"),
            ("registry-1.docker.io/bitnami/x", "docker.io", "bitnami/x"),
            ("localhost/foo", "localhost", "foo"),
            ("localhost:5000/foo", "localhost:5000", "foo"),
            ("Registry/foo", "Registry", "foo"),
            ("[::1]:5000/a/b", "[::1]:5000", "a/b"),
            (
                "registry.k8s.io/ingress-nginx/controller:v1.11.2",
                "registry.k8s.io",
                "ingress-nginx/controller",
            ),
            (
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:1",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                "team/app",
            ),
            ("a.b:443/x/y/z/w", "a.b:443", "x/y/z/w"),
            ("foo__bar/a-----b", "docker.io", "foo__bar/a-----b"),
        ];
        for (r, reg, repo) in table {
            assert_eq!(split(r), (reg.to_string(), repo.to_string()), "{r}");
        }
    }

    #[test]
    fn tags_and_digests() {
        let r = ImageRef::parse(&format!("localhost:5000/foo:v1@{SHA}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(SHA));
        let r = ImageRef::parse(&format!("localhost:5000/foo@{SHA}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_deref()), (None, Some(SHA)));
        assert_eq!(r.port(), Some("5000"));
        assert_eq!(r.hostname(), "localhost");
    }

    #[test]
    fn rejects_malformed() {
        let bad = [
            "",
            "Nginx",
            "foo/",
            "/foo",
            "foo//bar",
            "host.com:/foo",
            "host.com:x/foo",
            "-bad.com/foo",
            "foo:",
            "foo:-tag",
            "foo@sha256:abc",
            "foo@md5:d41d8cd98f00b204e9800998ecf8427e",
            "foo bar",
            "foo/b..r",
            "foo/b___r",
            "[zz]:5000/foo",
            "a/b:c:d",
        ];
        for r in bad {
            assert!(ImageRef::parse(r).is_err(), "{r:?} should be rejected");
        }
    }

    /// References for the differential test: the seeds, plus every seed with a tag and/or a
    /// digest, plus a deterministic pseudo-random stream of mutations that walks into the
    /// edges (separators, ports, case, empty parts).
    fn corpus() -> Vec<String> {
        let seeds = [
            "nginx",
            "library/nginx",
            "openpolicyagent/gatekeeper:v3.17.0",
            "registry.k8s.io/ingress-nginx/controller:v1.11.2",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app",
            "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a/b",
            "public.ecr.aws/eks-distro/kubernetes/pause:3.9",
            "localhost:5000/foo",
            "localhost/foo",
            "example.com:8443/deep/er/path/image",
            "gcr.io/project/image",
            "europe-docker.pkg.dev/p/repo/img",
            "myregistry.azurecr.io/x",
            "index.docker.io/nginx",
            "docker.io/bitnami/redis",
            "a.b/c",
            "a:1/b",
            "foo_bar/baz",
            "foo__bar/baz",
            "foo-bar/b---az",
            "foo.bar/baz.qux",
            "test.com:tag",
            "test.com:5000",
            "lowercase:Uppercase",
            "x/y:t@",
        ];
        let mut out: Vec<String> = Vec::new();
        for s in seeds {
            out.push(s.to_string());
            out.push(format!("{s}@{SHA}"));
            out.push(format!("{s}:v1@{SHA}"));
            out.push(format!("{s}:latest"));
        }
        let pieces = [
            "a",
            "b1",
            "x.y",
            "-",
            "_",
            "__",
            ".",
            ":",
            "/",
            "5000",
            "localhost",
            "Up",
            "@",
            "sha256:",
            "z",
            "0",
            "docker.io",
            "..",
            "___",
            "--",
            "host.com",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut s = String::new();
            let n = 1 + (state % 7) as usize;
            for _ in 0..n {
                // xorshift64: deterministic, so a failure reproduces.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            out.push(s);
        }
        out
    }

    /// oci-spec is the oracle: wherever it accepts a reference, we must accept it too and agree
    /// on registry, repository, tag and digest. Two documented differences are mapped first:
    /// we fold `registry-1.docker.io` into `docker.io`, and a first component with upper-case
    /// letters is a host for us (as in distribution), which oci-spec's older split treats as a
    /// Docker Hub repository that it then accepts with upper-case letters in it.
    #[test]
    fn differential_against_oci_spec() {
        use oci_spec::distribution::Reference;
        let mut compared = 0;
        for r in corpus() {
            let Ok(oracle) = r.parse::<Reference>() else {
                continue;
            };
            if oracle.repository().bytes().any(|b| b.is_ascii_uppercase()) {
                continue;
            }
            let ours =
                ImageRef::parse(&r).unwrap_or_else(|e| panic!("{r:?}: oracle accepts, we say {e}"));
            let oracle_registry = match oracle.registry() {
                "registry-1.docker.io" => DOCKER_HUB,
                other => other,
            };
            assert_eq!(ours.host, oracle_registry, "{r:?}");
            assert_eq!(ours.repository, oracle.repository(), "{r:?}");
            // oci-spec fills in `latest` where there is neither tag nor digest; we keep None.
            let oracle_tag = match (oracle.tag(), &ours.tag, &ours.digest) {
                (Some("latest"), None, None) => None,
                (t, _, _) => t,
            };
            assert_eq!(ours.tag.as_deref(), oracle_tag, "{r:?}");
            assert_eq!(ours.digest.as_deref(), oracle.digest(), "{r:?}");
            compared += 1;
        }
        assert!(
            compared > 150,
            "corpus too thin: only {compared} accepted by the oracle"
        );
    }
}

/// Property tests (proptest, on stable, in CI): the splitter never panics, and agrees with
/// `oci-spec` on every generated reference the oracle accepts.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// References shaped like real ones, with the edge cases mixed in: hosts with ports and
    /// case, path components with separators, tags and digests.
    fn reference() -> impl Strategy<Value = String> {
        let label = "[a-zA-Z0-9]([a-zA-Z0-9_-]{0,6}[a-zA-Z0-9])?";
        let host = prop::collection::vec(label, 1..4).prop_map(|l| l.join("."));
        let port = prop::option::of(1u16..=65535);
        let component = "[a-z0-9]{1,4}(([._]|__|-+)[a-z0-9]{1,4}){0,2}";
        let path = prop::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
        let tag = prop::option::of("[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}");
        let digest = prop::option::of("[0-9a-f]{64}");
        (prop::option::of((host, port)), path, tag, digest).prop_map(|(h, p, t, d)| {
            let mut r = String::new();
            if let Some((host, port)) = h {
                r.push_str(&host);
                if let Some(port) = port {
                    r.push_str(&format!(":{port}"));
                }
                r.push('/');
            }
            r.push_str(&p);
            if let Some(t) = t {
                r.push_str(&format!(":{t}"));
            }
            if let Some(d) = d {
                r.push_str(&format!("@sha256:{d}"));
            }
            r
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(s in "\\PC{0,80}|[a-zA-Z0-9._:/@\\[\\]-]{0,60}") {
            let _ = ImageRef::parse(&s);
        }

        #[test]
        fn agrees_with_oci_spec(r in reference()) {
            use oci_spec::distribution::Reference;
            if let Ok(oracle) = r.parse::<Reference>() {
                // The documented exemption: oci-spec takes an upper-case first component as
                // a repository, distribution (and the kubelet) as a host.
                prop_assume!(!oracle.repository().bytes().any(|b| b.is_ascii_uppercase()));
                let ours = ImageRef::parse(&r)
                    .map_err(|e| TestCaseError::fail(format!("{r:?}: oracle accepts, we say {e}")))?;
                let oracle_registry = match oracle.registry() {
                    "registry-1.docker.io" => DOCKER_HUB,
                    other => other,
                };
                prop_assert_eq!(&ours.host, oracle_registry, "{:?}", r);
                prop_assert_eq!(&ours.repository, oracle.repository(), "{:?}", r);
            }
        }
    }
}
