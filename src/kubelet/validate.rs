//! A kubelet config checked field by field as the kubelet of a given version decodes and
//! validates it (strictly: a field it lacks stops it from starting).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::lines::{Lines, syntax_error};
use super::schema::{self, CacheType, ConfigApi, Kind, ProviderApi};
use super::*;
use crate::protocol::parse_go_duration;
use crate::rules::PatternError;

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
            Err(why) => findings.push(error(&file, "", &why.to_string())),
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

/// One file's findings as they are made: each at the line of its field.
struct Check<'a> {
    file: &'a Path,
    lines: Arc<Lines>,
    findings: &'a mut Vec<Finding>,
    version: KubeletVersion,
    /// The file's own `apiVersion`, when it is one the kubelet knows.
    file_api: Option<ConfigApi>,
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
    unknown_fields(&top, schema::config_fields(), "", &mut c);
    match top.get("apiVersion").and_then(Value::as_str) {
        Some(v) if ConfigApi::parse(v).is_some() => c.file_api = ConfigApi::parse(v),
        Some(_) => c.err(
            "apiVersion",
            &format!("not one of {}", names(ConfigApi::ALL.map(ConfigApi::name))),
        ),
        None => c.err("apiVersion", "missing"),
    }
    let kind = Kind::CredentialProviderConfig;
    match top.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind.name() => {}
        Some(_) => c.err("kind", &format!("not {}", kind.name())),
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

/// One provider, checked field by field as the kubelet's validation does.
fn provider(index: usize, value: &Value, c: &mut Check) -> Option<Provider> {
    let at = format!("providers[{index}]");
    let Value::Object(p) = value else {
        c.err(&at, "must be a mapping");
        return None;
    };
    let field = |f: &str| join(&at, f);
    unknown_fields(p, schema::provider_fields(), &at, c);
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
    let api = p
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(ProviderApi::parse);
    match api {
        Some(Some(_)) => {}
        Some(None) => c.err(
            &field("apiVersion"),
            &format!(
                "not one of {}",
                names(ProviderApi::ALL.map(ProviderApi::name))
            ),
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
                        && e.keys().all(|k| schema::env_fields().contains(&k.as_str()))
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
        Some(_) if c.file_api.is_some_and(|f| !f.has_token_attributes()) => {
            let f = c.file_api.map(ConfigApi::name).unwrap_or_default();
            c.err(
                &field("tokenAttributes"),
                &format!(
                    "unknown to {f} (the kubelet decodes it strictly): tokenAttributes needs a \
                     file of apiVersion {}",
                    ConfigApi::V1.name()
                ),
            );
            None
        }
        Some(t) => {
            if api != Some(Some(ProviderApi::V1)) {
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
    unknown_fields(t, schema::token_attributes_fields(), at, c);
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
        Some(k) if CacheType::ALL.map(CacheType::name).contains(&k) => k.to_string(),
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

/// The values a field may have, as a finding lists them.
fn names<const N: usize>(all: [&str; N]) -> String {
    all.join(", ")
}
