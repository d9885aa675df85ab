//! A kubelet config against the node and pullcred's rules: each provider's binary in the
//! bin dir, and the kubelet's routing against what the rules serve.

use std::path::Path;

use super::*;
use crate::config::Config;
use crate::workload::IdentityMode;

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
                // Under `service-account` every pull of such a provider fails; under
                // `service-account-or-node` each gets the node's identity instead.
                if rule.identity != IdentityMode::Node && p.token_attributes.is_none() {
                    let strict = rule.identity == IdentityMode::ServiceAccount;
                    findings.push(p.finding(
                        if strict {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        "tokenAttributes",
                        &format!(
                            "rule {} has identity {:?}, but this provider sends no service account token{}",
                            rule.number,
                            rule.identity.as_str(),
                            if strict {
                                ": every pull it routes to that rule fails"
                            } else {
                                ""
                            }
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
                    let ours = |p: &Provider| p.name.starts_with(OUR_PREFIX);
                    let both_ours = ours(pa) && ours(pb);
                    // A pullcred provider serving a rule whose identity is the pod's alone,
                    // beside another that answers for every pod with the node's identity (it
                    // asks for no token): the kubelet tries both credentials, so every pod
                    // pulls with the node's what the rule withholds.
                    // Judged by the overlapping entry alone: the provider's other entries may
                    // route rules of the node's identity.
                    let per_workload = |p: &Provider, entry: &Pattern| {
                        ours(p)
                            && p.token_attributes.is_some()
                            && config.rules.iter().any(|r| {
                                r.identity == IdentityMode::ServiceAccount
                                    && r.patterns.iter().any(|pat| entry.covers(pat))
                            })
                    };
                    let node_wide = |p: &Provider| !ours(p) && p.token_attributes.is_none();
                    let (qa, qb) = (&pa.match_images[i], &pb.match_images[j]);
                    let leak = (per_workload(pa, qa) && node_wide(pb))
                        || (per_workload(pb, qb) && node_wide(pa));
                    let place = pa.place(&pa.match_field(i), &pb.file);
                    findings.push(pb.finding(
                        if both_ours || leak {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        &pb.match_field(j),
                        &if leak {
                            format!(
                                "overlaps {place}: a pullcred provider for a rule with identity \
                                 \"service-account\" and a provider that asks for no token \
                                 answer the same images, so every pod gets the other's \
                                 credentials (the node's) too; \
                                 route them to pullcred alone (kubelet-config --merge FILE \
                                 --drop-overlapping, install.sh --drop-overlapping) or take the \
                                 node's registry rights away"
                            )
                        } else {
                            format!("overlaps {place}: both providers are asked")
                        },
                    ));
                }
            }
        }
    }
    findings
}
