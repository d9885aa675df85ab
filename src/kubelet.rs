//! The kubelet's side of the wiring: its `CredentialProviderConfig` (a file, or a directory
//! of them merged in name order, as newer kubelets allow) checked the way the kubelet checks
//! it and against pullcred's rules, and generated from those rules. A wrong provider name, a
//! `matchImages` typo or a missing `tokenAttributes` field makes pulls go anonymous far from
//! the cause; here each is one line naming the file, the field and why.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;
use crate::protocol::parse_go_duration;
use crate::rules::Pattern;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: where (file and field path) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}", self.file.display())?;
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A provider as read, with where it was.
#[derive(Clone, Debug)]
pub struct Provider {
    pub file: PathBuf,
    /// `providers[i]` in its file.
    pub index: usize,
    pub name: String,
    pub match_images: Vec<Pattern>,
    pub token_attributes: Option<TokenAttributes>,
}

#[derive(Clone, Debug)]
pub struct TokenAttributes {
    pub cache_type: String,
}

impl Provider {
    fn at(&self, field: &str) -> String {
        format!("providers[{}].{field}", self.index)
    }
}

/// The providers of the kubelet config at `path` (a file or a directory), and what is wrong
/// with it.
pub fn load(path: &Path) -> (Vec<Provider>, Vec<Finding>) {
    let mut findings = Vec::new();
    let files = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| {
                d.flatten()
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
        match std::fs::read_to_string(&file) {
            Ok(text) => parse_file(&file, &text, &mut providers, &mut findings),
            Err(e) => findings.push(error(&file, "", &format!("cannot read: {e}"))),
        }
    }
    let mut seen = BTreeSet::new();
    for p in &providers {
        if !p.name.is_empty() && !seen.insert(p.name.clone()) {
            findings.push(error(
                &p.file,
                &p.at("name"),
                &format!("provider {:?} is defined more than once", p.name),
            ));
        }
    }
    (providers, findings)
}

fn error(file: &Path, path: &str, message: &str) -> Finding {
    Finding {
        severity: Severity::Error,
        file: file.to_path_buf(),
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

/// One file: its providers go to `providers`, its problems to `findings`.
fn parse_file(file: &Path, text: &str, providers: &mut Vec<Provider>, findings: &mut Vec<Finding>) {
    let mut err = |path: &str, message: &str| findings.push(error(file, path, message));
    // JSON is YAML; a file the YAML parser refuses is told by its first line (the position).
    let doc: Value = match serde_saphyr::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("");
            err(
                "",
                &format!("not YAML: {}", first.trim_start_matches("error: ")),
            );
            return;
        }
    };
    let Value::Object(top) = doc else {
        err("", "not a mapping");
        return;
    };
    unknown_fields(&top, &["apiVersion", "kind", "providers"], "", &mut err);
    match top.get("apiVersion").and_then(Value::as_str) {
        Some(v) if CONFIG_VERSIONS.contains(&v) => {}
        Some(v) => err(
            "apiVersion",
            &format!("{v:?} is not one of {}", CONFIG_VERSIONS.join(", ")),
        ),
        None => err("apiVersion", "missing"),
    }
    match top.get("kind").and_then(Value::as_str) {
        Some(KIND) => {}
        Some(k) => err("kind", &format!("{k:?} is not {KIND:?}")),
        None => err("kind", "missing"),
    }
    let list = match top.get("providers") {
        Some(Value::Array(list)) => list,
        Some(_) => {
            err("providers", "must be a list");
            return;
        }
        None => {
            err("providers", "missing");
            return;
        }
    };
    for (index, value) in list.iter().enumerate() {
        if let Some(p) = provider(file, index, value, &mut err) {
            providers.push(p);
        }
    }
}

fn unknown_fields(
    map: &serde_json::Map<String, Value>,
    known: &[&str],
    at: &str,
    err: &mut impl FnMut(&str, &str),
) {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        err(&join(at, key), "unknown field");
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
fn provider(
    file: &Path,
    index: usize,
    value: &Value,
    err: &mut impl FnMut(&str, &str),
) -> Option<Provider> {
    let at = format!("providers[{index}]");
    let Value::Object(p) = value else {
        err(&at, "must be a mapping");
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
        err,
    );
    let name = match p.get("name") {
        Some(Value::String(n)) if n.is_empty() => {
            err(&field("name"), "empty");
            String::new()
        }
        Some(Value::String(n)) if n.contains('/') || n.contains('\\') || n == "." || n == ".." => {
            err(
                &field("name"),
                &format!("{n:?} is a path; it must be the file name of the binary in the bin dir"),
            );
            n.clone()
        }
        Some(Value::String(n)) => n.clone(),
        Some(_) => {
            err(&field("name"), "must be a string");
            String::new()
        }
        None => {
            err(&field("name"), "missing");
            String::new()
        }
    };
    let mut match_images = Vec::new();
    match p.get("matchImages") {
        Some(Value::Array(list)) if list.is_empty() => err(&field("matchImages"), "empty"),
        Some(Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                let at = format!("{}[{i}]", field("matchImages"));
                match v.as_str().map(match_image) {
                    Some(Ok(pattern)) => match_images.push(pattern),
                    Some(Err(why)) => err(&at, &why),
                    None => err(&at, "must be a string"),
                }
            }
        }
        Some(_) => err(&field("matchImages"), "must be a list of strings"),
        None => err(&field("matchImages"), "missing"),
    }
    match p.get("defaultCacheDuration") {
        Some(Value::String(d)) => {
            if let Err(why) = parse_go_duration(d) {
                err(&field("defaultCacheDuration"), &why);
            }
        }
        Some(_) => err(
            &field("defaultCacheDuration"),
            "must be a Go duration string (\"5m\")",
        ),
        None => err(&field("defaultCacheDuration"), "missing"),
    }
    let api = p.get("apiVersion").and_then(Value::as_str);
    match api {
        Some(v) if PROVIDER_VERSIONS.contains(&v) => {}
        Some(v) => err(
            &field("apiVersion"),
            &format!("{v:?} is not one of {}", PROVIDER_VERSIONS.join(", ")),
        ),
        None => err(&field("apiVersion"), "missing"),
    }
    match p.get("args") {
        None => {}
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {}
        Some(_) => err(&field("args"), "must be a list of strings"),
    }
    match p.get("env") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, e) in list.iter().enumerate() {
                let at = format!("{}[{i}]", field("env"));
                let ok = e.as_object().is_some_and(|e| {
                    e.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| !n.is_empty())
                        && e.get("value").is_some_and(Value::is_string)
                        && e.len() == 2
                });
                if !ok {
                    err(&at, "must be {name: <non-empty>, value: <string>}");
                }
            }
        }
        Some(_) => err(&field("env"), "must be a list"),
    }
    let token_attributes = match p.get("tokenAttributes") {
        None => None,
        Some(t) => {
            if api != Some(PROVIDER_VERSIONS[0]) {
                err(
                    &field("tokenAttributes"),
                    "needs apiVersion credentialprovider.kubelet.k8s.io/v1",
                );
            }
            token_attributes(&field("tokenAttributes"), t, err)
        }
    };
    Some(Provider {
        file: file.to_path_buf(),
        index,
        name,
        match_images,
        token_attributes,
    })
}

/// A `matchImages` entry as the kubelet accepts it: a host (globs allowed in its labels),
/// an optional port and path, no scheme, no glob in the port or the path.
fn match_image(text: &str) -> Result<Pattern, String> {
    let (host_port, path) = text.split_once('/').unwrap_or((text, ""));
    let port = host_port.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    if text.contains("://") {
        return Err(format!("{text:?} has a scheme; write the host alone"));
    }
    if port.contains(['*', '?', '[']) || path.contains(['*', '?', '[']) {
        return Err(format!("{text:?}: globs are allowed in the host only"));
    }
    Pattern::parse(text).map_err(|e| e.to_string())
}

fn token_attributes(
    at: &str,
    value: &Value,
    err: &mut impl FnMut(&str, &str),
) -> Option<TokenAttributes> {
    let Value::Object(t) = value else {
        err(at, "must be a mapping");
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
        err,
    );
    match t.get("serviceAccountTokenAudience").and_then(Value::as_str) {
        Some(a) if !a.is_empty() => {}
        _ => err(&field("serviceAccountTokenAudience"), "missing or empty"),
    }
    let require = match t.get("requireServiceAccount") {
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            err(&field("requireServiceAccount"), "must be true or false");
            None
        }
        None => {
            err(&field("requireServiceAccount"), "missing");
            None
        }
    };
    let cache_type = match t.get("cacheType").and_then(Value::as_str) {
        Some(c @ ("Token" | "ServiceAccount")) => c.to_string(),
        Some(c) => {
            err(
                &field("cacheType"),
                &format!("{c:?} is not Token or ServiceAccount"),
            );
            String::new()
        }
        None => {
            err(&field("cacheType"), "missing (Token or ServiceAccount)");
            String::new()
        }
    };
    let mut keys = |name: &str| -> Vec<String> {
        match t.get(name) {
            None => Vec::new(),
            Some(Value::Array(list)) => {
                let mut out = Vec::new();
                for (i, v) in list.iter().enumerate() {
                    match v.as_str() {
                        Some(k) if !k.is_empty() && !out.contains(&k.to_string()) => {
                            out.push(k.to_string())
                        }
                        Some(k) if !k.is_empty() => err(
                            &format!("{}[{i}]", field(name)),
                            &format!("{k:?} is listed twice"),
                        ),
                        _ => err(
                            &format!("{}[{i}]", field(name)),
                            "must be a non-empty string",
                        ),
                    }
                }
                out
            }
            Some(_) => {
                err(&field(name), "must be a list of strings");
                Vec::new()
            }
        }
    };
    let required = keys("requiredServiceAccountAnnotationKeys");
    let optional = keys("optionalServiceAccountAnnotationKeys");
    if !required.is_empty() && require == Some(false) {
        err(
            &field("requiredServiceAccountAnnotationKeys"),
            "needs requireServiceAccount: true",
        );
    }
    for k in required.iter().filter(|k| optional.contains(k)) {
        err(
            &field("optionalServiceAccountAnnotationKeys"),
            &format!("{k:?} is also required"),
        );
    }
    Some(TokenAttributes { cache_type })
}

/// Whether each provider's binary is in the kubelet's bin dir.
pub fn check_bin_dir(providers: &[Provider], bin_dir: &Path) -> Vec<Finding> {
    use std::os::unix::fs::PermissionsExt;
    providers
        .iter()
        .filter(|p| !p.name.is_empty())
        .filter_map(|p| {
            let binary = bin_dir.join(&p.name);
            let why = match std::fs::metadata(&binary) {
                Err(_) => format!(
                    "no file {} (the name must be the binary's)",
                    binary.display()
                ),
                Ok(m) if !m.is_file() => format!("{} is not a file", binary.display()),
                Ok(m) if m.permissions().mode() & 0o111 == 0 => {
                    format!("{} is not executable", binary.display())
                }
                Ok(_) => return None,
            };
            Some(error(&p.file, &p.at("name"), &why))
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
            findings.push(warning(
                &first.file,
                "providers",
                &format!("no provider is named {OUR_PREFIX}…: no image is routed to pullcred"),
            ));
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
                    findings.push(error(
                        &p.file,
                        &p.at("tokenAttributes.cacheType"),
                        &format!(
                            "rule {} ({}) answers with the service account token, which the \
                             kubelet drops unless cacheType is Token",
                            rule.number,
                            rule.source.name()
                        ),
                    ));
                }
                if rule.identity != IdentityMode::Node && p.token_attributes.is_none() {
                    findings.push(warning(
                        &p.file,
                        &p.at("tokenAttributes"),
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
                findings.push(warning(
                    &p.file,
                    &p.at(&format!("matchImages[{i}]")),
                    &format!("{q} is served by no pullcred rule: its pulls get no credentials"),
                ));
            }
        }
    }
    for (a, pa) in providers.iter().enumerate() {
        for pb in &providers[a + 1..] {
            for q in &pa.match_images {
                if let Some(r) = pb.match_images.iter().find(|r| q.covers(r) || r.covers(q)) {
                    findings.push(warning(
                        &pb.file,
                        &pb.at("matchImages"),
                        &format!(
                            "{r} is also routed to provider {:?} ({q}): both are asked",
                            pa.name
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
pub fn generate(config: &Config) -> String {
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
        let existing = groups.iter_mut().find(|g| {
            g.audience == audience
                && g.require == require
                && g.token_cache == token_cache
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
                    annotations: Vec::new(),
                });
                groups.last_mut().expect("just pushed")
            }
        };
        for p in patterns {
            if !group.patterns.contains(&p) {
                group.patterns.push(p);
            }
        }
        if group.audience.is_some() {
            for a in rule.source.workload_annotations() {
                if !group.annotations.contains(&a) {
                    group.annotations.push(a);
                }
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
                    "cacheType": if g.token_cache { "Token" } else { "ServiceAccount" },
                    "requireServiceAccount": g.require,
                });
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
    out.push_str(&to_yaml(&document(providers)));
    out
}

/// `existing` (a kubelet config's text) with its pullcred providers replaced by those
/// `config` needs; every other provider is kept as it was. JSON in, JSON out (EKS keeps
/// its provider config as JSON); YAML otherwise.
pub fn merge(config: &Config, existing: &str, json: bool) -> Result<String, String> {
    let mut doc: Value = serde_saphyr::from_str(existing).map_err(|e| {
        let text = e.to_string();
        format!(
            "not YAML: {}",
            text.lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
        )
    })?;
    let Value::Object(top) = &mut doc else {
        return Err("not a mapping".into());
    };
    let kept: Vec<Value> = match top.get("providers") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .filter(|p| {
                !p.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(OUR_PREFIX))
            })
            .cloned()
            .collect(),
        Some(_) => return Err("providers is not a list".into()),
    };
    let ours = match serde_saphyr::from_str::<Value>(&generate(config)) {
        Ok(Value::Object(mut g)) => match g.remove("providers") {
            Some(Value::Array(list)) => list,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let mut providers = kept;
    providers.extend(ours);
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
