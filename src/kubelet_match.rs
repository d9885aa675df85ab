//! How the kubelet itself matches a provider's `matchImages` against an image, re-expressed
//! from its code (`pkg/credentialprovider`: `ParseSchemelessURL`, `URLsMatch`) for wherever
//! pullcred predicts what the kubelet does (`doctor`, `config check --kubelet`). It differs
//! from pullcred's own rule matching on purpose, and must: the host is matched label by label
//! with Go's `filepath.Match`, case-sensitively; a port must be equal; the path is a raw
//! string prefix (`registry.example.com/team` routes `team-b/app` too); and the entry is
//! first parsed as `url.Parse("https://" + entry)` does, so a `?` or `#` cuts it short.

use crate::image::ImageRef;

/// A `matchImages` entry (or an image) as the kubelet's URL parse leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeletUrl {
    /// The host's labels, as `strings.Split(host, ".")` gives them.
    labels: Vec<String>,
    /// The port `net.SplitHostPort` finds, empty when none.
    port: String,
    /// The path, with its leading `/` (empty when none).
    path: String,
    /// Whether a query or fragment was cut off: the kubelet matches only what came before.
    pub truncated: bool,
}

/// Why the kubelet's URL parse refuses an entry (the kubelet refuses such a config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("has a control character")]
    Control,
    #[error("has a character a host may not have")]
    HostCharacter,
    #[error("has an invalid port")]
    Port,
    #[error("has a bad %-escape")]
    Escape,
}

impl KubeletUrl {
    /// `url.Parse("https://" + text)`, as far as matching sees it.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(ParseError::Control);
        }
        // The fragment, then the query, are split off first.
        let (rest, fragment) = match text.split_once('#') {
            Some((r, _)) => (r, true),
            None => (text, false),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, _)) => (r, true),
            None => (rest, false),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !valid_escapes(path) {
            return Err(ParseError::Escape);
        }
        // User info is parsed and dropped: the host is what follows the last `@`.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = checked_host(hostport)?;
        if !host.bytes().all(host_byte) {
            return Err(ParseError::HostCharacter);
        }
        // `net.SplitHostPort`, as `splitURL` calls it: on failure, the whole host, no port.
        let (name, port) = match split_host_port(hostport) {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), String::new()),
        };
        Ok(KubeletUrl {
            labels: name.split('.').map(str::to_string).collect(),
            port,
            path: path.to_string(),
            truncated: fragment || query,
        })
    }

    /// The image as the kubelet hands it to the keyring: the normalised repository, without
    /// tag or digest (`docker.io/library/nginx`).
    pub fn of_image(image: &ImageRef) -> Self {
        let text = format!("{}/{}", image.host, image.repository);
        Self::parse(&text).unwrap_or(KubeletUrl {
            labels: vec![image.host.clone()],
            port: String::new(),
            path: format!("/{}", image.repository),
            truncated: false,
        })
    }

    /// `URLsMatch(self, target)`: equal ports, as many labels, the target's path starting
    /// with this one's (a raw string prefix), and each label matched as a glob.
    pub fn matches(&self, target: &KubeletUrl) -> bool {
        self.labels_with(target, crate::rules::go_glob_match)
    }

    /// Whether every image `other` (itself a `matchImages` entry) routes, this routes too:
    /// equal ports, as many labels, each of this one's labels `*` or the same text, and
    /// other's path under this one's. Stricter than [`KubeletUrl::matches`] on the entry's
    /// text, where `?` or a class would match a literal `*`.
    pub fn covers(&self, other: &KubeletUrl) -> bool {
        self.labels_with(other, |mine, theirs| mine == "*" || mine == theirs)
    }

    /// Equal ports, as many labels, `other`'s path under this one's, and each label pair
    /// passing `label` (this one's first).
    fn labels_with(&self, other: &KubeletUrl, label: impl Fn(&str, &str) -> bool) -> bool {
        self.port == other.port
            && self.labels.len() == other.labels.len()
            && other.path.starts_with(&self.path)
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(mine, theirs)| label(mine, theirs))
    }
}

/// The host of an authority as `url.Parse` checks it: a bracketed address with an optional
/// `:port`, or a name with one; the port all digits.
fn checked_host(hostport: &str) -> Result<&str, ParseError> {
    let (host, port) = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => (&hostport[..=i], &hostport[i + 1..]),
            None => return Err(ParseError::HostCharacter),
        }
    } else {
        match hostport.rfind(':') {
            Some(i) => (&hostport[..i], &hostport[i..]),
            None => (hostport, ""),
        }
    };
    match port.strip_prefix(':') {
        None if port.is_empty() => Ok(host),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(host),
        _ => Err(ParseError::Port),
    }
}

/// The bytes Go's URL parser lets stand in a host (its `shouldEscape` for hosts), `%` for
/// an escape included.
fn host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]<>\"%".contains(&b)
}

/// Every `%` starts two hex digits.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// `net.SplitHostPort`: `host:port` or `[host]:port`, else `None` (no port, too many colons).
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = hostport.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls_match(glob: &str, target: &str) -> bool {
        KubeletUrl::parse(glob)
            .unwrap()
            .matches(&KubeletUrl::parse(target).unwrap())
    }

    /// The kubelet's own `TestURLsMatch` vectors (pkg/credentialprovider), re-expressed.
    #[test]
    fn the_kubelets_own_vectors() {
        for (glob, target, want) in [
            ("*.kubernetes.io", "prefix.kubernetes.io", true),
            ("prefix.*.io", "prefix.kubernetes.io", true),
            ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
            ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
            ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true),
            ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true),
            (
                "*.kubernetes.io:1111/blah",
                "prefix.kubernetes.io:1111/blah",
                true,
            ),
            (
                "prefix.*.io:1111/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                true,
            ),
            ("*.kubernetes.io", "kubernetes.io", false),
            ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
            ("*.*.kubernetes.io", "kubernetes.io", false),
            ("kubernetes.io", "kubernetes.com", false),
            ("k*.io", "quay.io", false),
            (
                "*.kubernetes.io:1234/blah",
                "prefix.kubernetes.io:1111/blah",
                false,
            ),
            (
                "prefix.*.io/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                false,
            ),
        ] {
            assert_eq!(urls_match(glob, target), want, "{glob} vs {target}");
        }
    }

    /// Where the kubelet's matching and pullcred's rules part ways.
    #[test]
    fn raw_prefix_paths_and_case() {
        // A path is a raw string prefix: team routes team-b.
        assert!(urls_match(
            "registry.example.com/team",
            "registry.example.com/team-b/app"
        ));
        // Case counts.
        assert!(!urls_match(
            "Registry.example.com",
            "registry.example.com/app"
        ));
        // A query cuts the entry short: the host matched is the one before it.
        let cut = KubeletUrl::parse("registry.example.com?x=1").unwrap();
        assert!(cut.truncated);
        assert!(cut.matches(&KubeletUrl::parse("registry.example.com/app").unwrap()));
        // What the kubelet's URL parse refuses.
        for bad in [
            "a b.example.com",
            "reg^.example.com",
            "r.example.com:x",
            "r.io/%zz",
        ] {
            assert!(KubeletUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
