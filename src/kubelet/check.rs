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
