//! The kubelet config pullcred's rules need, for a kubelet version: generated whole, or
//! merged into an existing one.

use serde_json::Value;

use super::lines::syntax_error;
use super::*;
use crate::config::Config;
use crate::workload::IdentityMode;

/// A `CredentialProviderConfig` routing exactly what `config`'s rules serve, with the fields
/// the kubelet of `version` has: one provider `pullcred` for the node's identity, and one per
/// token audience for rules that use a service account's (each a copy of the binary under
/// the provider's name). `Err` names a rule that version cannot serve.
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
    let existing: &[Value] = match top.get("providers") {
        None => &[],
        Some(Value::Array(list)) => list,
        Some(_) => return Err("providers is not a list".into()),
    };
    // What an operator set on pullcred's own providers and pullcred does not generate (a
    // proxy in `env`, `args`) is kept, by the provider's name.
    for ours in &mut providers {
        let name = ours.get("name").and_then(Value::as_str).map(str::to_string);
        let Some(old) = existing
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
    let kept: Vec<Value> = existing
        .iter()
        .filter(|p| {
            !p.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(OUR_PREFIX))
        })
        .filter(|p| !(drop_covered && covered(p)))
        .cloned()
        .collect();
    providers.extend(kept);
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
