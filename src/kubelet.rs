//! The kubelet's side of the wiring: its `CredentialProviderConfig` (a file, or a directory
//! of them merged in name order, as newer kubelets allow) checked the way the kubelet checks
//! it and against pullcred's rules, and generated from those rules. A wrong provider name, a
//! `matchImages` typo or a missing `tokenAttributes` field makes pulls go anonymous far from
//! the cause; here each is one line naming the file, the line, the field and why.
//!
//! A finding never holds text read from the file: no value, no key pullcred does not know,
//! no parser message (those quote the input). `doctor` runs as root and reads the file its
//! kubelet's flags name; whatever that file is, a finding shows its shape, never its content.

use crate::kubelet_match::KubeletUrl;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::config::Config;
use crate::protocol::parse_go_duration;
use crate::rules::{Pattern, PatternError};
use crate::workload::IdentityMode;

const KIND: &str = "CredentialProviderConfig";
const CONFIG_VERSIONS: [&str; 3] = [
    "kubelet.config.k8s.io/v1",
    "kubelet.config.k8s.io/v1beta1",
    "kubelet.config.k8s.io/v1alpha1",
];
const PROVIDER_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
/// Providers whose name starts so are pullcred (a copy per token audience is `pullcred-…`).
const OUR_PREFIX: &str = "pullcred";
/// What the kubelet keeps an answer that has no `cacheDuration`; pullcred always sends one.
const DEFAULT_CACHE_DURATION: &str = "5m";
/// The fields of pullcred's providers that pullcred never generates and an operator may
/// set (a proxy in `env`): a merge keeps them.
const OPERATORS_FIELDS: [&str; 2] = ["env", "args"];
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

/// Where each field of a file is: its path (`providers[0].matchImages[1]`, as in a finding)
/// to its 1-based line. Read by a second parse of the text into a tree of spans, so the
/// checks can keep to plain values.
#[derive(Debug, Default)]
struct Lines(BTreeMap<String, usize>);

impl Lines {
    fn of(text: &str) -> Lines {
        let mut map = BTreeMap::new();
        if let Ok(node) = serde_saphyr::from_str::<Spanned<Node>>(text) {
            walk(&node.value, "", &mut map);
        }
        Lines(map)
    }

    /// The line of `path`, else of the nearest field that holds it.
    fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            if path.is_empty() {
                return None;
            }
            path = &path[..path.rfind(['.', '[']).unwrap_or(0)];
        }
    }
}

fn walk(node: &Node, at: &str, map: &mut BTreeMap<String, usize>) {
    let mut visit = |path: String, line: u64, value: &Node| {
        if line > 0 {
            map.entry(path.clone()).or_insert(line as usize);
        }
        walk(value, &path, map);
    };
    match node {
        Node::Leaf => {}
        Node::List(items) => {
            for (i, v) in items.iter().enumerate() {
                visit(format!("{at}[{i}]"), v.referenced.line(), &v.value);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                visit(join(at, &k.value.0), k.referenced.line(), &v.value);
            }
        }
    }
}

/// A YAML node with the spans of its entries and nothing of its scalars.
enum Node {
    Leaf,
    List(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Key>, Spanned<Node>)>),
}

/// A mapping key (a scalar) as text.
struct Key(String);

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML node")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i128<E>(self, _: i128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u128<E>(self, _: u128) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_bytes<E>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
        }
        d.deserialize_any(KeyVisitor)
    }
}

/// A parser's error in pullcred's words: where, never what (its message quotes the input).
fn syntax_error(e: &serde_saphyr::Error) -> (Option<usize>, String) {
    match e.location().filter(|l| l.line() > 0) {
        Some(l) => (
            Some(l.line() as usize),
            format!(
                "not YAML (nor JSON): a syntax error at column {}",
                l.column()
            ),
        ),
        None => (None, "not YAML (nor JSON)".to_string()),
    }
}

/// A kubelet config file's text: a regular file (a FIFO or a device is refused without
/// blocking) of at most [`MAX_CONFIG_BYTES`], in UTF-8. `Err` says why not, in words of
/// pullcred's own.
pub fn read_config(path: &Path) -> Result<String, String> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, openat};
    let cannot = |e: rustix::io::Errno| format!("cannot read: {}", std::io::Error::from(e));
    // Looked at before it is opened: opening a device can act on it.
    let look = openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(cannot)?;
    let seen = fstat(&look).map_err(cannot)?;
    if FileType::from_raw_mode(seen.st_mode) != FileType::RegularFile {
        return Err("not a regular file".into());
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
        return Err("changed while it was read".into());
    }
    let file = std::fs::File::from(fd);
    let mut buf = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "larger than {MAX_CONFIG_BYTES} bytes: not a kubelet config"
        ));
    }
    String::from_utf8(buf).map_err(|_| "not UTF-8 text".to_string())
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
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a Kubernetes version such as 1.33");
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
            return Err(format!(
                "Kubernetes 1.{minor} is older than pullcred supports (1.{} and later)",
                Self::OLDEST.0
            ));
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

impl std::fmt::Display for KubeletVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "1.{}", self.0)
    }
}

/// The providers of the kubelet config at `path` (a file or a directory), and what is wrong
/// with it, for the kubelet of `version`.
pub fn load(path: &Path, version: KubeletVersion) -> (Vec<Provider>, Vec<Finding>) {
    let mut findings = Vec::new();
    if path.is_dir() && !version.reads_directories() {
        findings.push(error(
            path,
            "",
            &format!(
                "a directory: the kubelet of Kubernetes {version} reads one file (directories from 1.34)"
            ),
        ));
        return (Vec::new(), findings);
    }
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| {
                // Subdirectories are skipped, as the kubelet skips them.
                d.flatten()
                    .filter(|e| !e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if files.is_empty() {
            findings.push(error(path, "", "no *.yaml, *.yml or *.json file"));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut providers = Vec::new();
    for file in files {
        match read_config(&file) {
            Ok(text) => parse_file(&file, &text, version, &mut providers, &mut findings),
            Err(why) => findings.push(error(&file, "", &why)),
        }
    }
    // The kubelet refuses a config (all its files together) with no provider at all.
    if providers.is_empty() && !findings.iter().any(|f| f.severity == Severity::Error) {
        findings.push(error(
            path,
            "providers",
            "none at all: the kubelet requires at least one",
        ));
    }
    let mut first: BTreeMap<&str, &Provider> = BTreeMap::new();
    for p in &providers {
        if p.name.is_empty() {
            continue;
        }
        match first.get(p.name.as_str()) {
            Some(f) => findings.push(p.finding(
                Severity::Error,
                "name",
                &format!(
                    "defined more than once: first at {}",
                    f.place("name", &p.file)
                ),
            )),
            None => {
                first.insert(&p.name, p);
            }
        }
    }
    (providers, findings)
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

/// One file's findings as they are made: each at the line of its field.
struct Check<'a> {
    file: &'a Path,
    lines: Arc<Lines>,
    findings: &'a mut Vec<Finding>,
    version: KubeletVersion,
    /// The file's own `apiVersion`, when it is one the kubelet knows.
    file_api: Option<&'static str>,
}

impl Check<'_> {
    fn err(&mut self, path: &str, message: &str) {
        let line = self.lines.line(path);
        self.err_at(line, path, message);
    }

    fn err_at(&mut self, line: Option<usize>, path: &str, message: &str) {
        self.findings.push(Finding {
            line,
            ..error(self.file, path, message)
        });
    }
}

/// One file: its providers go to `providers`, its problems to `findings`.
fn parse_file(
    file: &Path,
    text: &str,
    version: KubeletVersion,
    providers: &mut Vec<Provider>,
    findings: &mut Vec<Finding>,
) {
    // JSON is YAML; a file the YAML parser refuses is told by the position of the error.
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let (line, message) = syntax_error(&e);
            findings.push(Finding {
                line,
                ..error(file, "", &message)
            });
            return;
        }
    };
    let mut c = Check {
        file,
        lines: Arc::new(Lines::of(text)),
        findings,
        version,
        file_api: None,
    };
    let Value::Object(top) = doc else {
        c.err("", "not a mapping");
        return;
    };
    unknown_fields(&top, &["apiVersion", "kind", "providers"], "", &mut c);
    match top.get("apiVersion").and_then(Value::as_str) {
        Some(v) if CONFIG_VERSIONS.contains(&v) => {
            c.file_api = CONFIG_VERSIONS.iter().find(|k| **k == v).copied();
        }
        Some(_) => c.err(
            "apiVersion",
            &format!("not one of {}", CONFIG_VERSIONS.join(", ")),
        ),
        None => c.err("apiVersion", "missing"),
    }
    match top.get("kind").and_then(Value::as_str) {
        Some(KIND) => {}
        Some(_) => c.err("kind", &format!("not {KIND}")),
        None => c.err("kind", "missing"),
    }
    let list = match top.get("providers") {
        Some(Value::Array(list)) => list,
        Some(_) => {
            c.err("providers", "must be a list");
            return;
        }
        None => {
            c.err("providers", "missing");
            return;
        }
    };
    for (index, value) in list.iter().enumerate() {
        if let Some(p) = provider(index, value, &mut c) {
            providers.push(p);
        }
    }
}

/// Each key of `map` that is not `known`. Named only when it is a known field spelt in other
/// cases (nothing of the file but its case); otherwise the finding is at the key's line in
/// the mapping that holds it.
fn unknown_fields(map: &serde_json::Map<String, Value>, known: &[&str], at: &str, c: &mut Check) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let line = c.lines.line(&join(at, key));
        match known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
            Some(k) => c.err_at(
                line,
                &join(at, key),
                &format!("unknown field (the field is {k})"),
            ),
            None => c.err_at(line, at, "an unknown field"),
        }
    }
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

/// One provider, checked field by field as the kubelet's validation does.
fn provider(index: usize, value: &Value, c: &mut Check) -> Option<Provider> {
    let at = format!("providers[{index}]");
    let Value::Object(p) = value else {
        c.err(&at, "must be a mapping");
        return None;
    };
    let field = |f: &str| join(&at, f);
    unknown_fields(
        p,
        &[
            "name",
            "matchImages",
            "defaultCacheDuration",
            "apiVersion",
            "args",
            "env",
            "tokenAttributes",
        ],
        &at,
        c,
    );
    let name = match p.get("name") {
        Some(Value::String(n)) if n.is_empty() => {
            c.err(&field("name"), "empty");
            String::new()
        }
        // As the kubelet: no `/`, no space, not `.` or `..` (a backslash is a file name's on
        // Linux, and the kubelet takes it).
        Some(Value::String(n)) if n.contains(' ') => {
            c.err(&field("name"), "has a space, which the kubelet refuses");
            n.clone()
        }
        Some(Value::String(n)) if n.contains('/') || n == "." || n == ".." => {
            c.err(
                &field("name"),
                "a path: it must be the file name of the binary in the bin dir",
            );
            n.clone()
        }
        Some(Value::String(n)) => n.clone(),
        Some(_) => {
            c.err(&field("name"), "must be a string");
            String::new()
        }
        None => {
            c.err(&field("name"), "missing");
            String::new()
        }
    };
    let mut match_images = Vec::new();
    let mut match_index = Vec::new();
    let mut routes = Vec::new();
    match p.get("matchImages") {
        Some(Value::Array(list)) if list.is_empty() => c.err(&field("matchImages"), "empty"),
        Some(Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                let at = format!("{}[{i}]", field("matchImages"));
                // First as the kubelet parses it: what it refuses, it refuses to start with.
                if let Some(text) = v.as_str() {
                    match KubeletUrl::parse(text) {
                        Ok(url) if url.truncated => {
                            c.err(
                                &at,
                                "has a '?' or '#': the kubelet matches only what comes before \
                                 it, so it routes other images than the entry says",
                            );
                            continue;
                        }
                        Ok(url) => routes.push(url),
                        Err(why) => {
                            c.err(&at, &format!("the kubelet refuses it: it {why}"));
                            continue;
                        }
                    }
                }
                match v.as_str().map(match_image) {
                    Some(Ok(pattern)) => {
                        match_images.push(pattern);
                        match_index.push(i);
                    }
                    Some(Err(why)) => c.err(&at, why),
                    None => c.err(&at, "must be a string"),
                }
            }
        }
        Some(_) => c.err(&field("matchImages"), "must be a list of strings"),
        None => c.err(&field("matchImages"), "missing"),
    }
    match p.get("defaultCacheDuration") {
        Some(Value::String(d)) => {
            if parse_go_duration(d).is_err() {
                c.err(
                    &field("defaultCacheDuration"),
                    if d.starts_with('-') {
                        "negative"
                    } else {
                        "not a Go duration (like 5m, 1h30m, 300ms)"
                    },
                );
            }
        }
        Some(_) => c.err(
            &field("defaultCacheDuration"),
            "must be a Go duration string (\"5m\")",
        ),
        None => c.err(&field("defaultCacheDuration"), "missing"),
    }
    let api = p.get("apiVersion").and_then(Value::as_str);
    match api {
        Some(v) if PROVIDER_VERSIONS.contains(&v) => {}
        Some(_) => c.err(
            &field("apiVersion"),
            &format!("not one of {}", PROVIDER_VERSIONS.join(", ")),
        ),
        None => c.err(&field("apiVersion"), "missing"),
    }
    match p.get("args") {
        None => {}
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {}
        Some(_) => c.err(&field("args"), "must be a list of strings"),
    }
    match p.get("env") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, e) in list.iter().enumerate() {
                let at = format!("{}[{i}]", field("env"));
                // `value` may be left out, as the kubelet allows (an empty value).
                let ok = e.as_object().is_some_and(|e| {
                    e.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty())
                        && e.get("value").is_none_or(Value::is_string)
                        && e.keys().all(|k| k == "name" || k == "value")
                });
                if !ok {
                    c.err(&at, "must be {name: <non-empty>, value: <string>}");
                }
            }
        }
        Some(_) => c.err(&field("env"), "must be a list"),
    }
    let token_attributes = match p.get("tokenAttributes") {
        None => None,
        Some(_) if !c.version.has_token_attributes() => {
            let v = c.version;
            c.err(
                &field("tokenAttributes"),
                &format!("unknown to the kubelet of Kubernetes {v} (it has it from 1.33)"),
            );
            None
        }
        Some(_) if c.file_api.is_some_and(|f| f != CONFIG_VERSIONS[0]) => {
            let f = c.file_api.unwrap_or_default();
            c.err(
                &field("tokenAttributes"),
                &format!(
                    "unknown to {f} (the kubelet decodes it strictly): tokenAttributes needs a \
                     file of apiVersion {}",
                    CONFIG_VERSIONS[0]
                ),
            );
            None
        }
        Some(t) => {
            if api != Some(PROVIDER_VERSIONS[0]) {
                c.err(
                    &field("tokenAttributes"),
                    "needs apiVersion credentialprovider.kubelet.k8s.io/v1",
                );
            }
            token_attributes(&field("tokenAttributes"), t, c)
        }
    };
    Some(Provider {
        file: c.file.to_path_buf(),
        index,
        name,
        match_images,
        match_index,
        routes,
        token_attributes,
        lines: c.lines.clone(),
    })
}

/// A `matchImages` entry as the kubelet accepts it: a host (globs allowed in its labels),
/// an optional port and path, no scheme, no glob in the port or the path. `Err` says why
/// not without quoting it.
fn match_image(text: &str) -> Result<Pattern, &'static str> {
    let (host_port, path) = text.split_once('/').unwrap_or((text, ""));
    let port = host_port.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    if text.contains("://") {
        return Err("has a scheme; write the host alone");
    }
    if port.contains(['*', '?', '[']) || path.contains(['*', '?', '[']) {
        return Err("globs are allowed in the host only");
    }
    Pattern::parse(text).map_err(|e| match e {
        PatternError::Empty => "empty",
        PatternError::Scheme(_) => "has a scheme; write the host alone",
        PatternError::EmptyLabel(_) => "has an empty host label",
        PatternError::Port(_) => "has an invalid port",
        PatternError::Class(_) => "has an unclosed '['",
        PatternError::Path(_) => "has an empty path segment",
        PatternError::Ipv6(_) => "has a bracketed host that is not an IPv6 address",
    })
}

fn token_attributes(at: &str, value: &Value, c: &mut Check) -> Option<TokenAttributes> {
    let Value::Object(t) = value else {
        c.err(at, "must be a mapping");
        return None;
    };
    let field = |f: &str| join(at, f);
    unknown_fields(
        t,
        &[
            "serviceAccountTokenAudience",
            "cacheType",
            "requireServiceAccount",
            "requiredServiceAccountAnnotationKeys",
            "optionalServiceAccountAnnotationKeys",
        ],
        at,
        c,
    );
    match t.get("serviceAccountTokenAudience").and_then(Value::as_str) {
        Some(a) if !a.is_empty() => {}
        _ => c.err(&field("serviceAccountTokenAudience"), "missing or empty"),
    }
    let require = match t.get("requireServiceAccount") {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            c.err(&field("requireServiceAccount"), "must be true or false");
            None
        }
        None => {
            c.err(&field("requireServiceAccount"), "missing");
            None
        }
    };
    let version = c.version;
    if !version.has_cache_type() {
        // 1.33: no cacheType at all, and the token feature is behind a gate, off by default.
        if t.contains_key("cacheType") {
            c.err(
                &field("cacheType"),
                &format!("unknown to the kubelet of Kubernetes {version} (it has it from 1.34)"),
            );
        }
        let line = c.lines.line(at);
        c.findings.push(Finding {
            line,
            ..warning(
                c.file,
                at,
                &format!(
                    "on Kubernetes {version}, the kubelet sends tokens only with the \
                     KubeletServiceAccountTokenForCredentialProviders feature gate (off by default)"
                ),
            )
        });
    }
    let cache_type = match t.get("cacheType").and_then(Value::as_str) {
        _ if !version.has_cache_type() => String::new(),
        Some(k @ ("Token" | "ServiceAccount")) => k.to_string(),
        Some(_) => {
            c.err(&field("cacheType"), "not Token or ServiceAccount");
            String::new()
        }
        None => {
            c.err(&field("cacheType"), "missing (Token or ServiceAccount)");
            String::new()
        }
    };
    // Each list's keys with their indices, the first of each.
    let mut keys = |name: &str| -> Vec<(usize, String)> {
        match t.get(name) {
            None => Vec::new(),
            Some(Value::Array(list)) => {
                let mut out: Vec<(usize, String)> = Vec::new();
                for (i, v) in list.iter().enumerate() {
                    let at = format!("{}[{i}]", field(name));
                    match v.as_str() {
                        None | Some("") => c.err(&at, "must be a non-empty string"),
                        Some(k) if !is_qualified_name(&k.to_ascii_lowercase()) => c.err(
                            &at,
                            "not a qualified name ([prefix/]name, as annotation keys are), \
                             which the kubelet refuses",
                        ),
                        Some(k) => match out.iter().find(|(_, o)| o == k) {
                            Some((j, _)) => c.err(&at, &format!("the same key as [{j}]")),
                            None => out.push((i, k.to_string())),
                        },
                    }
                }
                out
            }
            Some(_) => {
                c.err(&field(name), "must be a list of strings");
                Vec::new()
            }
        }
    };
    let required = keys("requiredServiceAccountAnnotationKeys");
    let optional = keys("optionalServiceAccountAnnotationKeys");
    if !required.is_empty() && require == Some(false) {
        c.err(
            &field("requiredServiceAccountAnnotationKeys"),
            "needs requireServiceAccount: true",
        );
    }
    for (i, k) in &optional {
        if let Some((j, _)) = required.iter().find(|(_, r)| r == k) {
            c.err(
                &format!("{}[{i}]", field("optionalServiceAccountAnnotationKeys")),
                &format!(
                    "also required: the same key as requiredServiceAccountAnnotationKeys[{j}]"
                ),
            );
        }
    }
    Some(TokenAttributes { cache_type })
}

/// Kubernetes' `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name of at
/// most 63 characters of letters, digits, `-`, `_` and `.`, starting and ending with a letter
/// or digit.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes().first().is_some_and(alnum)
        && name.as_bytes().last().is_some_and(alnum)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && label.as_bytes().first().is_some_and(alnum)
                    && label.as_bytes().last().is_some_and(alnum)
            })
    });
    name_ok && prefix_ok
}

/// Whether each provider's binary is in the kubelet's bin dir (the name is the file's; the
/// finding names neither, as it is the config's text).
pub fn check_bin_dir(providers: &[Provider], bin_dir: &Path) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt;
    providers
        .iter()
        .filter(|p| !p.name.is_empty())
        .filter_map(|p| {
            let why = match std::fs::metadata(bin_dir.join(&p.name)) {
                Err(_) => "no file of this name in the bin dir (the name must be the binary's)",
                Ok(m) if !m.is_file() => "the bin dir's file of this name is not a regular file",
                Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                    "the bin dir's file of this name is not executable"
                }
                Ok(_) => return None,
            };
            Some(p.finding(Severity::Error, "name", why))
        })
        .collect()
}

/// pullcred's rules against the kubelet's routing: errors where a pull could not work
/// (a `passthrough` answer the kubelet would drop), warnings where rules and routing
/// disagree.
pub fn cross_check(providers: &[Provider], config: &Config, config_file: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    let ours: Vec<&Provider> = providers
        .iter()
        .filter(|p| p.name.starts_with(OUR_PREFIX))
        .collect();
    if ours.is_empty() {
        if let Some(first) = providers.first() {
            findings.push(Finding {
                line: first.lines.line("providers"),
                ..warning(
                    &first.file,
                    "providers",
                    &format!("no provider is named {OUR_PREFIX}…: no image is routed to pullcred"),
                )
            });
        }
        return findings;
    }
    for rule in &config.rules {
        for pattern in &rule.patterns {
            let routed: Vec<&&Provider> = ours
                .iter()
                .filter(|p| p.match_images.iter().any(|q| q.covers(pattern)))
                .collect();
            if routed.is_empty() {
                findings.push(warning(
                    config_file,
                    &format!("rule {}", rule.number),
                    &format!("{pattern} is routed to pullcred by no matchImages"),
                ));
            }
            for p in routed {
                let cache_type = p.token_attributes.as_ref().map(|t| t.cache_type.as_str());
                if !rule.source.cacheable() && cache_type != Some("Token") {
                    findings.push(p.finding(
                        Severity::Error,
                        "tokenAttributes.cacheType",
                        &format!(
                            "rule {} ({}) answers with the service account token, which the \
                             kubelet drops unless cacheType is Token",
                            rule.number,
                            rule.source.name()
                        ),
                    ));
                }
                if rule.identity != IdentityMode::Node && p.token_attributes.is_none() {
                    findings.push(p.finding(
                        Severity::Warning,
                        "tokenAttributes",
                        &format!(
                            "rule {} has identity {:?}, but this provider sends no service account token",
                            rule.number,
                            rule.identity.as_str()
                        ),
                    ));
                }
            }
        }
    }
    for p in &ours {
        for (i, q) in p.match_images.iter().enumerate() {
            let served = config
                .rules
                .iter()
                .flat_map(|r| &r.patterns)
                .any(|r| r.covers(q));
            if !served {
                findings.push(p.finding(
                    Severity::Warning,
                    &p.match_field(i),
                    "served by no pullcred rule: its pulls get no credentials",
                ));
            }
        }
    }
    for (a, pa) in providers.iter().enumerate() {
        for pb in &providers[a + 1..] {
            for (i, q) in pa.match_images.iter().enumerate() {
                if let Some(j) = pb
                    .match_images
                    .iter()
                    .position(|r| q.covers(r) || r.covers(q))
                {
                    // Two of pullcred's providers for one image: the kubelet asks both, with
                    // different token requests, and merges what they answer.
                    let both_ours =
                        pa.name.starts_with(OUR_PREFIX) && pb.name.starts_with(OUR_PREFIX);
                    findings.push(pb.finding(
                        if both_ours {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        &pb.match_field(j),
                        &format!(
                            "overlaps {}: both providers are asked",
                            pa.place(&pa.match_field(i), &pb.file)
                        ),
                    ));
                }
            }
        }
    }
    findings
}

/// A `CredentialProviderConfig` routing exactly what `config`'s rules serve: one provider
/// `pullcred` for the node's identity, and one per token audience for rules that use a
/// service account's (each a copy of the binary under the provider's name).
/// The kubelet config that routes what `config`'s rules serve, with the fields the kubelet of
/// `version` has; `Err` names a rule that version cannot serve.
pub fn generate(config: &Config, version: KubeletVersion) -> Result<String, String> {
    struct Group {
        name: String,
        patterns: Vec<String>,
        audience: Option<String>,
        require: bool,
        token_cache: bool,
        annotations: Vec<String>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for rule in &config.rules {
        let patterns: Vec<String> = rule.patterns.iter().map(|p| p.to_string()).collect();
        let (name, audience) = match rule.identity {
            IdentityMode::Node => (OUR_PREFIX.to_string(), None),
            _ => {
                let audience = rule.source.workload_audience().unwrap_or_else(|| {
                    rule.mint_host
                        .clone()
                        .unwrap_or_else(|| patterns[0].clone())
                });
                (
                    format!("{OUR_PREFIX}-{}", rule.source.name()),
                    Some(audience),
                )
            }
        };
        let require = rule.identity == IdentityMode::ServiceAccount;
        let token_cache = !rule.source.cacheable();
        if audience.is_some() && !version.has_token_attributes() {
            return Err(format!(
                "rule {} needs the pod's service account token, which the kubelet of Kubernetes \
                 {version} cannot send (tokenAttributes: from 1.33, behind the \
                 KubeletServiceAccountTokenForCredentialProviders feature gate; on by default \
                 from 1.34)",
                rule.number
            ));
        }
        if token_cache && !version.has_cache_type() {
            return Err(format!(
                "rule {} ({}) answers with the token itself, which the kubelet keeps only with \
                 cacheType Token: Kubernetes 1.34 and later, not {version}",
                rule.number,
                rule.source.name()
            ));
        }
        // One provider per distinct token request: audience, cache type, whether a token is
        // required, and the annotations passed (the kubelet sends one provider's set).
        let mut annotations = match &audience {
            Some(_) => rule.source.workload_annotations(),
            None => Vec::new(),
        };
        annotations.sort();
        annotations.dedup();
        let existing = groups.iter_mut().find(|g| {
            g.audience == audience
                && g.require == require
                && g.token_cache == token_cache
                && g.annotations == annotations
                && (audience.is_some() || g.name == name)
        });
        let group = match existing {
            Some(g) => g,
            None => {
                let mut unique = name.clone();
                let mut n = 2;
                while groups.iter().any(|g| g.name == unique) {
                    unique = format!("{name}-{n}");
                    n += 1;
                }
                groups.push(Group {
                    name: unique,
                    patterns: Vec::new(),
                    audience,
                    require,
                    token_cache,
                    annotations,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        for p in patterns {
            if !group.patterns.contains(&p) {
                group.patterns.push(p);
            }
        }
    }
    let providers: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut p = serde_json::json!({
                "name": g.name,
                "apiVersion": PROVIDER_VERSIONS[0],
                "matchImages": g.patterns,
                "defaultCacheDuration": DEFAULT_CACHE_DURATION,
            });
            if let Some(audience) = &g.audience {
                let mut t = serde_json::json!({
                    "serviceAccountTokenAudience": audience,
                    "requireServiceAccount": g.require,
                });
                if version.has_cache_type() {
                    t["cacheType"] = if g.token_cache {
                        "Token"
                    } else {
                        "ServiceAccount"
                    }
                    .into();
                }
                if !g.annotations.is_empty() {
                    t["optionalServiceAccountAnnotationKeys"] = g.annotations.clone().into();
                }
                p["tokenAttributes"] = t;
            }
            p
        })
        .collect();
    let mut out = String::from(
        "# Generated by `pullcred kubelet-config`: routes to pullcred exactly what its rules serve.\n",
    );
    if groups.iter().any(|g| g.name != OUR_PREFIX) {
        out.push_str(
            "# Each provider name is a file in the kubelet's credential-provider bin dir: install\n\
             # the binary once per name (a copy or a symlink).\n",
        );
    }
    if !version.has_cache_type() && groups.iter().any(|g| g.audience.is_some()) {
        out.push_str(&format!(
            "# For Kubernetes {version}: the kubelet sends service account tokens only with\n\
             # --feature-gates=KubeletServiceAccountTokenForCredentialProviders=true.\n"
        ));
    }
    out.push_str(&to_yaml(&document(providers)));
    Ok(out)
}

/// `existing` (a kubelet config's text) with its pullcred providers replaced by those
/// `config` needs (keeping the `env` and `args` an operator set on them), placed first; every other provider is kept as it was, after them. With
/// `drop_covered`, a kept provider whose every `matchImages` entry pullcred's providers
/// route (as the kubelet matches) is left out: the kubelet would exec both for each such
/// pull (EKS's ECR provider when pullcred's rules serve the ECR hosts). JSON in, JSON out
/// (EKS keeps its provider config as JSON); YAML otherwise.
pub fn merge(
    config: &Config,
    existing: &str,
    json: bool,
    version: KubeletVersion,
    drop_covered: bool,
) -> Result<String, String> {
    let mut doc: Value = serde_saphyr::from_str(existing).map_err(|e| match syntax_error(&e) {
        (Some(line), why) => format!("line {line}: {why}"),
        (None, why) => why,
    })?;
    let Value::Object(top) = &mut doc else {
        return Err("not a mapping".into());
    };
    let mut providers = match serde_saphyr::from_str::<Value>(&generate(config, version)?) {
        Ok(Value::Object(mut g)) => match g.remove("providers") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    // Only providers that answer with the node's identity count: a service-account
    // provider serves only workloads whose account is set up for it.
    let routes: Vec<KubeletUrl> = providers
        .iter()
        .filter(|p| {
            p.pointer("/tokenAttributes/requireServiceAccount")
                .and_then(Value::as_bool)
                != Some(true)
        })
        .flat_map(|p| {
            p.get("matchImages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(|m| KubeletUrl::parse(m.as_str()?).ok())
        .collect();
    let covered = |p: &Value| {
        p.get("matchImages")
            .and_then(Value::as_array)
            .is_some_and(|list| {
                !list.is_empty()
                    && list.iter().all(|m| {
                        m.as_str()
                            .and_then(|m| KubeletUrl::parse(m).ok())
                            .is_some_and(|entry| routes.iter().any(|r| r.covers(&entry)))
                    })
            })
    };
    // What an operator set on pullcred's own providers and pullcred does not generate (a
    // proxy in `env`, `args`) is kept, by the provider's name.
    if let Some(Value::Array(list)) = top.get("providers") {
        for ours in &mut providers {
            let name = ours.get("name").and_then(Value::as_str).map(str::to_string);
            let Some(old) = list
                .iter()
                .find(|p| p.get("name").and_then(Value::as_str) == name.as_deref())
            else {
                continue;
            };
            for field in OPERATORS_FIELDS {
                if let (Some(v), Value::Object(o)) = (old.get(field), &mut *ours) {
                    o.entry(field).or_insert_with(|| v.clone());
                }
            }
        }
    }
    match top.get("providers") {
        None => {}
        Some(Value::Array(list)) => providers.extend(
            list.iter()
                .filter(|p| {
                    !p.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.starts_with(OUR_PREFIX))
                })
                .filter(|p| !(drop_covered && covered(p)))
                .cloned(),
        ),
        Some(_) => return Err("providers is not a list".into()),
    }
    top.insert("providers".into(), providers.into());
    top.entry("apiVersion")
        .or_insert_with(|| CONFIG_VERSIONS[0].into());
    top.entry("kind").or_insert_with(|| KIND.into());
    Ok(if json {
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        to_yaml(&doc)
    })
}

fn document(providers: Vec<Value>) -> Value {
    serde_json::json!({
        "apiVersion": CONFIG_VERSIONS[0],
        "kind": KIND,
        "providers": providers,
    })
}

/// Block-style YAML for a JSON value: strings double-quoted (JSON's quoting is YAML's),
/// known keys in the order the kubelet's documentation writes them.
fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_value(v, 0, &mut out);
    out
}

fn key_rank(k: &str) -> usize {
    const ORDER: &[&str] = &[
        "name",
        "apiVersion",
        "kind",
        "providers",
        "matchImages",
        "defaultCacheDuration",
        "args",
        "env",
        "tokenAttributes",
        "serviceAccountTokenAudience",
        "cacheType",
        "requireServiceAccount",
        "requiredServiceAccountAnnotationKeys",
        "optionalServiceAccountAnnotationKeys",
    ];
    ORDER.iter().position(|o| *o == k).unwrap_or(ORDER.len())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => Value::from(s.as_str()).to_string(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Writes the entries of a mapping or list at `indent`; scalars inline.
fn yaml_value(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| (key_rank(k), k.as_str()));
            for k in keys {
                let value = &map[k];
                match value {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_value(value, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml_value(value, indent + 2, out);
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{k}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{k}: []\n")),
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(value))),
                }
            }
        }
        Value::Array(list) => {
            for item in list {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key goes on the dash's line.
                        let mut nested = String::new();
                        yaml_value(item, indent + 2, &mut nested);
                        let trimmed = nested.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        yaml_value(item, indent + 2, out);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_each_field_and_fall_back_to_the_one_that_holds_it() {
        let text = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: pullcred\n    matchImages:\n      - \"a.example.com\"\n      - b.example.com\n    tokenAttributes:\n      cacheType: Token\n";
        let lines = Lines::of(text);
        for (path, line) in [
            ("apiVersion", Some(1)),
            ("providers", Some(3)),
            ("providers[0]", Some(4)),
            ("providers[0].name", Some(4)),
            ("providers[0].matchImages[1]", Some(7)),
            ("providers[0].tokenAttributes.cacheType", Some(9)),
            // Missing fields: the line of the mapping that should hold them.
            (
                "providers[0].tokenAttributes.requireServiceAccount",
                Some(8),
            ),
            ("providers[0].defaultCacheDuration", Some(4)),
            ("", None),
        ] {
            assert_eq!(lines.line(path), line, "{path}");
        }
        // JSON is YAML, positions included.
        let json = "{\n  \"kind\": \"x\",\n  \"providers\": [\n    {\"name\": \"p\"}\n  ]\n}\n";
        let lines = Lines::of(json);
        assert_eq!(lines.line("kind"), Some(2));
        assert_eq!(lines.line("providers[0].name"), Some(4));
    }

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
