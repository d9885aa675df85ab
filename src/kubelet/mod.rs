//! The kubelet's side of the wiring: its `CredentialProviderConfig` (a file, or a directory
//! of them merged in name order, as newer kubelets allow) checked the way the kubelet checks
//! it and against pullcred's rules, and generated from those rules. A wrong provider name, a
//! `matchImages` typo or a missing `tokenAttributes` field makes pulls go anonymous far from
//! the cause; here each is one line naming the file, the line, the field and why.
//!
//! A finding never holds text read from the file: no value, no key pullcred does not know,
//! no parser message (those quote the input). `doctor` runs as root and reads the file its
//! kubelet's flags name; whatever that file is, a finding shows its shape, never its content.

mod check;
mod generate;
mod lines;
mod schema;
mod validate;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::kubelet_match::KubeletUrl;
use crate::rules::Pattern;
use lines::Lines;

pub use check::{check_bin_dir, cross_check};
pub use generate::{Drop, GenerateError, MergeError, generate, merge};
pub use validate::load;

/// Providers whose name starts so are pullcred (a copy per token audience is `pullcred-…`).
const OUR_PREFIX: &str = "pullcred";
/// What the kubelet keeps an answer that has no `cacheDuration`; pullcred always sends one.
const DEFAULT_CACHE_DURATION: &str = "5m";
/// A kubelet config larger than this is not one (and is not read further).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: where (file, line and field path) and why. `path` is made of the field
/// names pullcred knows and list indices, `message` of pullcred's own words: neither holds
/// text read from the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    /// The 1-based line of the field, or of the nearest one that holds it, when known.
    pub line: Option<usize>,
    pub path: String,
    pub message: String,
}

impl Finding {
    /// `FILE: line N: PATH: MESSAGE`, without the level.
    pub fn text(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(": line {line}"));
        }
        if !self.path.is_empty() {
            out.push_str(&format!(": {}", self.path));
        }
        out.push_str(&format!(": {}", self.message));
        out
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.text())
    }
}

/// A provider as read, with where it was.
#[derive(Clone, Debug)]
pub struct Provider {
    pub file: PathBuf,
    /// `providers[i]` in its file.
    pub index: usize,
    pub name: String,
    /// Each `matchImages` entry that parsed, with its index in the list.
    pub match_images: Vec<Pattern>,
    match_index: Vec<usize>,
    /// Each `matchImages` entry as the kubelet itself matches it (for predictions of what
    /// the kubelet routes: see `kubelet_match`).
    pub routes: Vec<KubeletUrl>,
    pub token_attributes: Option<TokenAttributes>,
    /// Where its file's fields are.
    lines: Arc<Lines>,
}

#[derive(Clone, Debug)]
pub struct TokenAttributes {
    pub cache_type: String,
}

impl Provider {
    fn at(&self, field: &str) -> String {
        format!("providers[{}].{field}", self.index)
    }

    /// A finding at one of its fields.
    fn finding(&self, severity: Severity, field: &str, message: &str) -> Finding {
        let path = self.at(field);
        Finding {
            severity,
            file: self.file.clone(),
            line: self.lines.line(&path),
            path,
            message: message.to_string(),
        }
    }

    /// Its `matchImages` entry `i` of `match_images`, by its index in the file.
    fn match_field(&self, i: usize) -> String {
        format!("matchImages[{}]", self.match_index[i])
    }

    /// Where one of its fields is, for a finding about another provider: `providers[0].name
    /// at line 4`, with the file's name when it is not `from`'s.
    fn place(&self, field: &str, from: &Path) -> String {
        let path = self.at(field);
        let mut out = path.clone();
        if self.file != from
            && let Some(name) = self.file.file_name()
        {
            out.push_str(&format!(" in {}", name.to_string_lossy()));
        }
        if let Some(line) = self.lines.line(&path) {
            out.push_str(&format!(" at line {line}"));
        }
        out
    }
}

/// A kubelet config file's text: a regular file (a FIFO or a device is refused without
/// blocking) of at most [`MAX_CONFIG_BYTES`], in UTF-8. `Err` says why not, in words of
/// pullcred's own.
pub fn read_config(path: &Path) -> Result<String, ReadError> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, openat};
    let cannot = |e: rustix::io::Errno| ReadError::Cannot(e.into());
    // Looked at before it is opened: opening a device can act on it.
    let look = openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(cannot)?;
    let seen = fstat(&look).map_err(cannot)?;
    if FileType::from_raw_mode(seen.st_mode) != FileType::RegularFile {
        return Err(ReadError::NotRegular);
    }
    let fd = openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(cannot)?;
    let opened = fstat(&fd).map_err(cannot)?;
    if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err(ReadError::Changed);
    }
    let file = std::fs::File::from(fd);
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Cannot)?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge);
    }
    String::from_utf8(buf).map_err(|_| ReadError::NotUtf8)
}

/// Why a kubelet config file was not read, in pullcred's own words.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read: {0}")]
    Cannot(#[source] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
    #[error("changed while it was read")]
    Changed,
    #[error("larger than {MAX_CONFIG_BYTES} bytes: not a kubelet config")]
    TooLarge,
    #[error("not UTF-8 text")]
    NotUtf8,
}

/// The Kubernetes version of the kubelet that reads a config (its minor: 1.`N`): what its
/// `CredentialProviderConfig` has changes between versions, and it decodes strictly, so a
/// field of a later version stops it from starting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeletVersion(u32);

impl KubeletVersion {
    /// The newest version pullcred knows: the default.
    pub const NEWEST: Self = KubeletVersion(35);
    const OLDEST: Self = KubeletVersion(26);

    /// `1.33`, `v1.33.2` or `1.33.2`: any 1.26 or later (a later one than pullcred knows is
    /// taken as the newest it knows).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let bad = || VersionError::NotAVersion(text.to_string());
        let t = text.strip_prefix('v').unwrap_or(text);
        let mut parts = t.split('.');
        let (Some("1"), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        let minor: u32 = minor.parse().map_err(|_| bad())?;
        // A patch may carry a vendor's suffix: `1.33.0-eks-5e0fdde`, `1.33.1+k3s1`.
        if parts.next().is_some_and(|p| {
            p.split(['-', '+'])
                .next()
                .unwrap_or(p)
                .parse::<u32>()
                .is_err()
        }) {
            return Err(bad());
        }
        if minor < Self::OLDEST.0 {
            return Err(VersionError::TooOld(minor));
        }
        Ok(KubeletVersion(minor.min(Self::NEWEST.0)))
    }

    /// `tokenAttributes` (service account tokens for providers): from 1.33, behind the
    /// `KubeletServiceAccountTokenForCredentialProviders` gate, on by default from 1.34.
    fn has_token_attributes(self) -> bool {
        self.0 >= 33
    }

    /// `tokenAttributes.cacheType`: from 1.34 (and then required).
    fn has_cache_type(self) -> bool {
        self.0 >= 34
    }

    /// `--image-credential-provider-config` naming a directory: from 1.34.
    fn reads_directories(self) -> bool {
        self.0 >= 34
    }
}

/// A Kubernetes version pullcred cannot speak for.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{0:?} is not a Kubernetes version such as 1.33")]
    NotAVersion(String),
    #[error("Kubernetes 1.{0} is older than pullcred supports (1.{oldest} and later)", oldest = KubeletVersion::OLDEST.0)]
    TooOld(u32),
}

impl std::fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

/// A finding with no line (the file, or pullcred's config, as a whole).
fn error(file: &Path, path: &str, message: &str) -> Finding {
    Finding {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: None,
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn warning(file: &Path, path: &str, message: &str) -> Finding {
    Finding {
        severity: Severity::Warning,
        ..error(file, path, message)
    }
}

/// `at.field`, or `field` at the top.
fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_finding_quotes_the_file() {
        let secret = "s3cret-value";
        let cases = [
            format!("root:$6${secret}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"),
            format!("kind: {secret}\napiVersion: {secret}\n"),
            format!("a: b\na: {secret}\n"),
            format!("x: [{secret}\n"),
            format!(
                "{{\"{secret}\": 1, \"providers\": [{{\"name\": \"{secret}/x\", \"matchImages\": [\"https://{secret}\", \"{secret}:*\", \"{secret}..x\", \"[{secret}\"], \"defaultCacheDuration\": \"{secret}\", \"apiVersion\": \"{secret}\", \"{secret}\": 2, \"tokenAttributes\": {{\"cacheType\": \"{secret}\", \"requiredServiceAccountAnnotationKeys\": [\"{secret}\"], \"optionalServiceAccountAnnotationKeys\": [\"{secret}\", \"{secret}\"]}}}}, {{\"name\": \"{secret}/x\"}}]}}\n"
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kubelet.yaml");
        for text in &cases {
            std::fs::write(&file, text).unwrap();
            let (providers, mut findings) = load(&file, KubeletVersion::NEWEST);
            findings.extend(check_bin_dir(&providers, dir.path()));
            assert!(!findings.is_empty(), "{text}");
            for f in &findings {
                let shown = f.to_string();
                assert!(
                    !shown.contains(secret) && !shown.contains("19000"),
                    "{shown}"
                );
            }
        }
    }
}
