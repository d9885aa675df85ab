//! The kubelet config pullcred's rules need, for a kubelet version: generated whole, or
//! merged into an existing one.

use super::lines::syntax_error;
use super::schema::{self, CacheType, ConfigApi, ConfigFile, ProviderApi};
use super::*;
use crate::config::Config;
use crate::workload::IdentityMode;

/// The providers that route exactly what `config`'s rules serve, with the fields the kubelet
/// of `version` has: one provider `pullcred` for the node's identity, and one per token
/// audience for rules that use a service account's (each a copy of the binary under the
/// provider's name). `Err` names a rule that version cannot serve.
fn providers(
    config: &Config,
    version: KubeletVersion,
) -> Result<Vec<schema::Provider>, GenerateError> {
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
            return Err(GenerateError::NoTokens {
                rule: rule.number,
                version,
            });
        }
        if token_cache && !version.has_cache_type() {
            return Err(GenerateError::NoTokenCache {
                rule: rule.number,
                source_name: rule.source.name(),
                version,
            });
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
    let providers = groups
        .iter()
        .map(|g| schema::Provider {
            name: g.name.clone(),
            api_version: ProviderApi::V1,
            match_images: g.patterns.clone(),
            default_cache_duration: DEFAULT_CACHE_DURATION.to_string(),
            args: None,
            env: None,
            token_attributes: g.audience.as_ref().map(|audience| schema::TokenAttributes {
                service_account_token_audience: audience.clone(),
                cache_type: version.has_cache_type().then_some(if g.token_cache {
                    CacheType::Token
                } else {
                    CacheType::ServiceAccount
                }),
                require_service_account: g.require,
                required_service_account_annotation_keys: None,
                optional_service_account_annotation_keys: (!g.annotations.is_empty())
                    .then(|| g.annotations.clone()),
            }),
        })
        .collect();
    Ok(providers)
}

/// A `CredentialProviderConfig` routing exactly what `config`'s rules serve (see
/// [`providers`]), as YAML with comments on how to install it.
pub fn generate(config: &Config, version: KubeletVersion) -> Result<String, GenerateError> {
    let file = ConfigFile::of(providers(config, version)?);
    Ok(header(&file, version) + &file.to_yaml()?)
}

/// The first line of a generated file: a merge into one keeps the file's comments.
const GENERATED: &str =
    "# Generated by `pullcred kubelet-config`: routes to pullcred exactly what its rules serve.\n";

/// The comments atop a generated file: what made it, and what installing it takes.
fn header(file: &ConfigFile, version: KubeletVersion) -> String {
    let mut out = String::from(GENERATED);
    if file.providers.iter().any(|p| p.name != OUR_PREFIX) {
        out.push_str(
            "# Each provider name is a file in the kubelet's credential-provider bin dir: install\n\
             # the binary once per name (a copy or a symlink).\n",
        );
    }
    if !version.has_cache_type() && file.providers.iter().any(|p| p.token_attributes.is_some()) {
        out.push_str(&format!(
            "# For Kubernetes {version}: the kubelet sends service account tokens only with\n\
             # --feature-gates=KubeletServiceAccountTokenForCredentialProviders=true.\n"
        ));
    }
    out
}

/// Which of the other providers a merge leaves out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Drop {
    /// None: every other provider is kept.
    #[default]
    Nothing,
    /// Each whose every `matchImages` entry pullcred's node-identity providers route: the
    /// kubelet would exec both for each such pull (EKS's ECR provider when pullcred's rules
    /// serve the ECR hosts).
    Covered,
    /// Each with a `matchImages` entry that overlaps one of any of pullcred's providers: so
    /// that pullcred alone answers for those images. The kubelet asks every provider that
    /// matches and tries every credential they give, so another provider answering with the
    /// node's identity would hand every pod what a per-workload rule withholds.
    Overlapping,
}

/// `existing` (a kubelet config's text) with its pullcred providers replaced by those
/// `config` needs (keeping the `env` and `args` an operator set on them), placed first;
/// every other provider is kept as it was, after them, less those `drop` names. JSON in,
/// JSON out (EKS keeps its provider config as JSON); YAML otherwise.
pub fn merge(
    config: &Config,
    existing: &str,
    json: bool,
    version: KubeletVersion,
    drop: Drop,
) -> Result<String, MergeError> {
    let old: ConfigFile = serde_saphyr::from_str(existing).map_err(|e| {
        let (line, why) = syntax_error(&e);
        MergeError::Unreadable { line, why }
    })?;
    let mut ours = providers(config, version)?;
    // Only providers that answer with the node's identity count: a service-account
    // provider serves only workloads whose account is set up for it.
    // Each of pullcred's routes, and whether it answers every pod (no service account
    // required): only those cover another provider's entries for `Drop::Covered`, since a
    // service-account provider serves only workloads set up for it.
    let routes: Vec<(KubeletUrl, bool)> = ours
        .iter()
        .flat_map(|p| {
            let every_pod = !p
                .token_attributes
                .as_ref()
                .is_some_and(|t| t.require_service_account);
            p.match_images
                .iter()
                .filter_map(move |m| Some((KubeletUrl::parse(m).ok()?, every_pod)))
        })
        .collect();
    let covered = |p: &schema::Provider| {
        !p.match_images.is_empty()
            && p.match_images.iter().all(|m| {
                KubeletUrl::parse(m)
                    .is_ok_and(|entry| routes.iter().any(|(r, all)| *all && r.covers(&entry)))
            })
    };
    let overlapping = |p: &schema::Provider| {
        p.match_images.iter().any(|m| {
            KubeletUrl::parse(m).is_ok_and(|entry| {
                routes
                    .iter()
                    .any(|(r, _)| r.covers(&entry) || entry.covers(r))
            })
        })
    };
    // What an operator set on pullcred's own providers and pullcred does not generate (a
    // proxy in `env`, `args`) is kept, by the provider's name.
    for p in &mut ours {
        if let Some(before) = old.providers.iter().find(|o| o.name == p.name) {
            p.env = before.env.clone();
            p.args = before.args.clone();
        }
    }
    let kept = old
        .providers
        .into_iter()
        .filter(|p| !p.name.starts_with(OUR_PREFIX))
        .filter(|p| match drop {
            Drop::Nothing => true,
            Drop::Covered => !covered(p),
            Drop::Overlapping => !overlapping(p),
        });
    ours.extend(kept);
    let mut file = ConfigFile {
        providers: ours,
        ..old
    };
    // Older file versions have no `tokenAttributes`; `v1` has every field of theirs.
    if file.providers.iter().any(|p| p.token_attributes.is_some()) {
        file.api_version = ConfigApi::V1;
    }
    Ok(if json {
        serde_json::to_string_pretty(&file).map_err(GenerateError::Json)? + "\n"
    } else if existing.starts_with(GENERATED) {
        // A file `kubelet-config` made, merged again (the installer's re-run): the same
        // comments, so that merging what is already right changes nothing.
        header(&file, version) + &file.to_yaml().map_err(GenerateError::Yaml)?
    } else {
        file.to_yaml().map_err(GenerateError::Yaml)?
    })
}

/// Why no kubelet config was generated: the rules ask for what the kubelet of the version
/// named cannot do.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(
        "rule {rule} needs the pod's service account token, which the kubelet of Kubernetes \
         {version} cannot send (tokenAttributes: from 1.33, behind the \
         KubeletServiceAccountTokenForCredentialProviders feature gate; on by default from 1.34)"
    )]
    NoTokens {
        rule: usize,
        version: KubeletVersion,
    },
    #[error(
        "rule {rule} ({source_name}) answers with the token itself, which the kubelet keeps only \
         with cacheType Token: Kubernetes 1.34 and later, not {version}"
    )]
    NoTokenCache {
        rule: usize,
        source_name: &'static str,
        version: KubeletVersion,
    },
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
    #[error("cannot write JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// Why no merged kubelet config was written.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The existing file, where and why in pullcred's words (never quoting it).
    #[error("{}{why}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Unreadable { line: Option<usize>, why: String },
    #[error(transparent)]
    Generate(#[from] GenerateError),
}
