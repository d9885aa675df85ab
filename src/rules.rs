//! Registry patterns and how an image is matched against them.
//!
//! The semantics are the kubelet's `matchImages` ones: the host is split into DNS labels and
//! each label is matched as a glob (`*`, `?`, `[a-z]`, `[^…]`), so `*` never crosses a dot and
//! pattern and host must have the same number of labels: `*.example.com` matches
//! `a.example.com` but neither `example.com` nor `a.b.example.com`. A port in the pattern must
//! equal the image's, and a pattern without a port does not match a host that has one.
//!
//! One deliberate difference: a path in the pattern (`registry.example.com/team-a`) matches
//! whole path segments, so it covers `team-a` and `team-a/app` but not `team-ab`. The kubelet
//! uses a raw string prefix there, which would hand team-a's credentials to team-ab.
//! Host labels compare case-insensitively, as DNS does.

use std::fmt;

use crate::image::{ImageRef, is_port, split_port};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    labels: Vec<String>,
    /// A bracketed IPv6 address (`[::1]`), compared as written (the kubelet compares the
    /// address text `SplitHostPort` leaves), never read as a glob class.
    literal: bool,
    port: Option<String>,
    path: Option<String>,
    text: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty pattern")]
    Empty,
    #[error("pattern {0:?} has a scheme; write the host alone")]
    Scheme(String),
    #[error("pattern {0:?} has an empty host label")]
    EmptyLabel(String),
    #[error("pattern {0:?} has an invalid port")]
    Port(String),
    #[error("pattern {0:?} has an unclosed '['")]
    Class(String),
    #[error("pattern {0:?} has an empty path segment")]
    Path(String),
    #[error("pattern {0:?} has a bracketed host that is not an IPv6 address")]
    Ipv6(String),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.contains("://") {
            return Err(PatternError::Scheme(text.into()));
        }
        let (hostport, path) = match text.split_once('/') {
            Some((h, p)) => (h, Some(p.trim_end_matches('/'))),
            None => (text, None),
        };
        if let Some(p) = path
            && (p.is_empty() || p.split('/').any(str::is_empty))
        {
            return Err(PatternError::Path(text.into()));
        }
        let (host, port) = split_port(hostport);
        if let Some(port) = port
            && !is_port(port)
        {
            return Err(PatternError::Port(text.into()));
        }
        if host.starts_with('[') {
            let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            if inner.is_none_or(|a| a.parse::<std::net::Ipv6Addr>().is_err()) {
                return Err(PatternError::Ipv6(text.into()));
            }
            return Ok(Pattern {
                labels: vec![host.to_ascii_lowercase()],
                literal: true,
                port: port.map(str::to_string),
                path: path.map(str::to_string),
                text: text.to_string(),
            });
        }
        let labels: Vec<String> = host.split('.').map(str::to_ascii_lowercase).collect();
        if labels.iter().any(String::is_empty) {
            return Err(PatternError::EmptyLabel(text.into()));
        }
        // Validate glob syntax once, here, so matching never meets a broken class.
        if labels.iter().any(|l| !glob_is_valid(l.as_bytes())) {
            return Err(PatternError::Class(text.into()));
        }
        Ok(Pattern {
            labels,
            literal: false,
            port: port.map(str::to_string),
            path: path.map(str::to_string),
            text: text.to_string(),
        })
    }

    /// Whether the pattern matches hosts in domains anyone may register: a wildcard in a
    /// label past the leftmost (`*.*`, `a.*.com`), or a leftmost wildcard over fewer than two
    /// fixed labels (`*.com`, `*`).
    pub fn is_wide(&self) -> bool {
        let glob = |l: &String| l.contains(['*', '?', '[']);
        !self.literal
            && (self.labels.iter().skip(1).any(glob)
                || (self.labels.first().is_some_and(glob) && self.labels.len() <= 2))
    }

    /// The one host this pattern can match, lowercased, when its host has no glob: an image
    /// it matches has exactly this [`ImageRef::hostname`] (compared lowercased). `None` for a
    /// pattern whose host has a glob (`*`, `?`, `[`, or an escape).
    pub fn literal_host(&self) -> Option<String> {
        if self.literal {
            return Some(self.labels[0].clone());
        }
        let glob = |l: &String| l.contains(['*', '?', '[', '\\']);
        (!self.labels.iter().any(glob)).then(|| self.labels.join("."))
    }

    /// The path prefix this pattern narrows to, if any.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Does this pattern cover the image's host and port (ignoring any path)?
    pub fn matches_host(&self, image: &ImageRef) -> bool {
        if self.port.as_deref() != image.port() {
            return false;
        }
        let host = image.hostname();
        if self.literal {
            return host.eq_ignore_ascii_case(&self.labels[0]);
        }
        let mut labels = host.split('.');
        let all = self.labels.iter().all(|pat| match labels.next() {
            Some(label) => glob_match(pat.as_bytes(), label.to_ascii_lowercase().as_bytes()),
            None => false,
        });
        all && labels.next().is_none()
    }

    /// Does this pattern cover every host `other` covers? Label by label, each of this
    /// pattern's globs must match the other's label text (so `*.example.com` covers
    /// `a.example.com` and itself, not `*.*.com`), the ports must be equal, and this path
    /// must be a whole-segment prefix of the other's. Approximate where the other's labels
    /// are globs richer than `*`; used only for warnings.
    pub fn covers(&self, other: &Pattern) -> bool {
        let path_ok = match (&self.path, &other.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b
                .strip_prefix(a.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        };
        if self.literal || other.literal {
            return self.port == other.port && path_ok && self.labels == other.labels;
        }
        self.port == other.port
            && path_ok
            && self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a == b || glob_match(a.as_bytes(), b.as_bytes()))
    }

    /// Does this pattern cover the image (host, port and path prefix)?
    pub fn matches(&self, image: &ImageRef) -> bool {
        if !self.matches_host(image) {
            return false;
        }
        match &self.path {
            None => true,
            Some(prefix) => match image.repository.strip_prefix(prefix.as_str()) {
                Some(rest) => rest.is_empty() || rest.starts_with('/'),
                None => false,
            },
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Go's `filepath.Match` on one label, as the kubelet calls it: case-sensitive, and a
/// malformed pattern matches nothing.
pub(crate) fn go_glob_match(pattern: &str, label: &str) -> bool {
    glob_is_valid(pattern.as_bytes()) && glob_match(pattern.as_bytes(), label.as_bytes())
}

/// Go's `filepath.Match` on one label (no separators can occur in a label).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    glob_match_counted(pat, s, &mut 0)
}

/// One pass with a single resume point: after a mismatch, only the most recent `*` takes
/// one more byte. Earlier stars never need to (any text they could absorb the last one can),
/// so the work is at most pattern length × label length steps, never exponential
/// (`*-*-*-x` against a long label of dashes). `steps` counts them, for the tests.
fn glob_match_counted(pat: &[u8], s: &[u8], steps: &mut usize) -> bool {
    let (mut p, mut i) = (0, 0);
    // Where to resume: the pattern just after the last `*`, and the text it absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        *steps += 1;
        let advanced = match pat.get(p) {
            Some(b'*') => {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match match_class(&pat[p + 1..], s[i]) {
                Some((true, after)) => Some(pat.len() - after.len()),
                _ => None,
            },
            Some(b'\\') if p + 1 < pat.len() => (pat[p + 1] == s[i]).then_some(p + 2),
            Some(&c) => (c == s[i]).then_some(p + 1),
            None => None,
        };
        match (advanced, star) {
            (Some(next), _) => {
                p = next;
                i += 1;
            }
            (None, Some((after_star, absorbed))) => {
                star = Some((after_star, absorbed + 1));
                p = after_star;
                i = absorbed + 1;
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

/// Matches `c` against a class body (after `[`); returns whether it matched and the pattern
/// after the closing `]`, or `None` for an unclosed class.
fn match_class(body: &[u8], c: u8) -> Option<(bool, &[u8])> {
    let (negated, mut i) = match body.first() {
        Some(b'^') => (true, 1),
        _ => (false, 0),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *body.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negated, &body[i + 1..]));
        }
        first = false;
        i += 1;
        if body.get(i) == Some(&b'-') && body.get(i + 1).is_some_and(|&b| b != b']') {
            let hi = body[i + 1];
            matched |= (lo..=hi).contains(&c);
            i += 2;
        } else {
            matched |= lo == c;
        }
    }
}

fn glob_is_valid(pat: &[u8]) -> bool {
    let mut i = 0;
    while i < pat.len() {
        if pat[i] == b'[' {
            match match_class(&pat[i + 1..], 0) {
                Some((_, after)) => i = pat.len() - after.len(),
                None => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, image: &str) -> bool {
        Pattern::parse(pattern)
            .unwrap()
            .matches(&ImageRef::parse(image).unwrap())
    }

    #[test]
    fn matching_table() {
        let yes = [
            ("registry.example.com", "registry.example.com/app"),
            ("REGISTRY.example.com", "registry.example.com/app"),
            ("*.example.com", "a.example.com/app"),
            (
                "*.dkr.ecr.*.amazonaws.com",
                "123456789012.dkr.ecr.us-east-1.amazonaws.com/x",
            ),
            ("reg-?.example.com", "reg-1.example.com/x"),
            ("reg-[0-9].example.com", "reg-7.example.com/x"),
            ("reg-[^0-9].example.com", "reg-a.example.com/x"),
            ("*.corp.example.com:5000", "a.corp.example.com:5000/x"),
            (
                "registry.example.com/team-a",
                "registry.example.com/team-a/app",
            ),
            ("registry.example.com/team-a", "registry.example.com/team-a"),
            ("docker.io", "nginx"),
            ("docker.io/library", "nginx"),
            ("docker.io", "index.docker.io/nginx"),
            ("localhost:5000", "localhost:5000/foo"),
            ("a*b.example.com", "ab.example.com/x"),
        ];
        let no = [
            ("*.example.com", "example.com/app"),
            ("*.example.com", "a.b.example.com/app"),
            ("registry.example.com", "registry.example.com.evil.net/app"),
            ("registry.example.com", "evil-registry.example.com/app"),
            ("registry.example.com", "registry.example.com:5000/app"),
            ("registry.example.com:5000", "registry.example.com/app"),
            ("registry.example.com:5000", "registry.example.com:5001/app"),
            (
                "registry.example.com/team-a",
                "registry.example.com/team-ab/app",
            ),
            ("registry.example.com/team-a", "registry.example.com/team/a"),
            ("reg-[0-9].example.com", "reg-a.example.com/x"),
            ("reg-?.example.com", "reg-12.example.com/x"),
            ("*", "registry.example.com/x"),
            ("docker.io", "registry-2.docker.io/x"),
            ("docker.io/library", "bitnami/redis"),
        ];
        for (p, i) in yes {
            assert!(m(p, i), "{p} should match {i}");
        }
        for (p, i) in no {
            assert!(!m(p, i), "{p} should not match {i}");
        }
    }

    #[test]
    fn glob_work_is_bounded_by_pattern_times_label() {
        let pat = b"*-*-*-*-*-*-*-*-*-*-*-x";
        let label = "a-".repeat(31) + "a";
        let mut steps = 0;
        assert!(!glob_match_counted(pat, label.as_bytes(), &mut steps));
        assert!(steps <= pat.len() * label.len(), "{steps} steps");
        // The semantics stay Go's: stars take any run, classes and escapes one byte.
        for (p, t, want) in [
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*", "", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("[a-c]*[0-9]", "b-9", true),
            ("*[^0-9]", "abc1", false),
            ("**x", "yyx", true),
        ] {
            assert_eq!(glob_match(p.as_bytes(), t.as_bytes()), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn bad_patterns() {
        for p in [
            "",
            "https://x.com",
            "a..b",
            ".a",
            "a:",
            "a:x",
            "a:0",
            "a:65536",
            "a[b.com",
            "a.com/",
            "a.com//b",
        ] {
            assert!(Pattern::parse(p).is_err(), "{p:?} should be rejected");
        }
        // A trailing slash on a real path is tolerated and dropped.
        assert_eq!(Pattern::parse("a.com/team/").unwrap().path(), Some("team"));
    }
}

/// Property tests: the one-pass glob matcher against a plain backtracking one, which is
/// obviously Go's `filepath.Match` on a label and exponential, so only fed short inputs.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn reference(pat: &[u8], s: &[u8]) -> bool {
        match pat.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|i| reference(&pat[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && reference(&pat[1..], &s[1..]),
            Some(b'[') => match (
                s.split_first(),
                match_class(&pat[1..], s.first().copied().unwrap_or(0)),
            ) {
                (Some((_, tail)), Some((true, after))) => reference(after, tail),
                _ => false,
            },
            Some(b'\\') if pat.len() > 1 => {
                !s.is_empty() && s[0] == pat[1] && reference(&pat[2..], &s[1..])
            }
            Some(&p) => !s.is_empty() && s[0] == p && reference(&pat[1..], &s[1..]),
        }
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("a".to_string()),
                Just("b".to_string()),
                Just("-".to_string()),
                Just("*".to_string()),
                Just("?".to_string()),
                Just("[a-b]".to_string()),
                Just("[^a]".to_string()),
                Just("\\-".to_string()),
            ],
            0..8,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        #[test]
        fn one_pass_matches_like_backtracking(pat in pattern(), label in "[ab-]{0,10}") {
            prop_assert_eq!(
                glob_match(pat.as_bytes(), label.as_bytes()),
                reference(pat.as_bytes(), label.as_bytes()),
                "{:?} ~ {:?}", pat, label
            );
        }

        #[test]
        fn patterns_parse_or_refuse_without_panicking(p in "\\PC{0,40}|[a-z*?\\[\\]^.:/0-9-]{0,30}") {
            if let Ok(pat) = Pattern::parse(&p) {
                let image = ImageRef::parse("a.example.com:5000/x/y").unwrap();
                let _ = pat.matches(&image);
            }
        }
    }

    proptest! {
        /// A pattern with a literal host matches only images of that host: what lets the
        /// rule index look rules up by host instead of trying each.
        #[test]
        fn a_literal_host_is_the_only_host_matched(
            labels in prop::collection::vec("[aA*?b-]{1,3}", 1..4),
            host in prop::collection::vec("[aAb]([aAb-]?[aAb])?", 1..4),
            port in prop::option::of("(5000|443)"),
        ) {
            let host = format!("{}.example", host.join("."));
            let labels = format!("{}.example", labels.join("."));
            let (pattern, image) = match &port {
                Some(p) => (format!("{labels}:{p}"), format!("{host}:{p}/app")),
                None => (labels, format!("{host}/app")),
            };
            let pattern = Pattern::parse(&pattern).unwrap();
            let image = ImageRef::parse(&image).unwrap();
            if let (true, Some(literal)) = (pattern.matches_host(&image), pattern.literal_host()) {
                prop_assert_eq!(literal, image.hostname().to_ascii_lowercase());
            }
            if pattern.literal_host().is_some() {
                prop_assert_eq!(
                    pattern.matches_host(&image),
                    pattern.literal_host() == Some(image.hostname().to_ascii_lowercase())
                        && pattern.port.as_deref() == image.port()
                );
            }
        }
    }
}
