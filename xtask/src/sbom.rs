//! The release's CycloneDX SBOM: every crate the binaries link (pullcred's normal
//! dependencies, transitively, for the release target, at their `Cargo.lock` versions; no
//! dev or build dependency), from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::{Release, archive, cargo, run};

/// `cargo metadata`, locked and offline-safe; with `target`, the dependency graph resolved
/// for that platform.
pub fn metadata(root: &Path, target: Option<&str>) -> Result<Value, String> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"]);
    match target {
        Some(t) => cmd.args(["--filter-platform", t]),
        None => cmd.arg("--no-deps"),
    };
    serde_json::from_slice(&run(&mut cmd)?).map_err(|e| format!("cargo metadata: {e}"))
}

fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

pub fn cyclonedx(release: &Release) -> Result<Vec<u8>, String> {
    let meta = metadata(&release.root, Some(&release.target))?;
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no resolve graph")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root_id = packages
        .iter()
        .find(|(_, p)| p["name"] == "pullcred")
        .map(|(id, _)| *id)
        .ok_or("cargo metadata: no pullcred package")?;
    // Normal (runtime) edges only: a dep kind of null.
    let runtime_deps = |id: &str| -> Vec<String> {
        nodes
            .get(id)
            .and_then(|n| n["deps"].as_array())
            .into_iter()
            .flatten()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k["kind"].is_null()))
            })
            .filter_map(|d| d["pkg"].as_str().map(str::to_string))
            .collect()
    };
    let mut seen = BTreeSet::new();
    let mut pending = vec![root_id.to_string()];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    while let Some(id) = pending.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let deps = runtime_deps(&id);
        pending.extend(deps.iter().cloned());
        graph.insert(id, deps.into_iter().collect());
    }
    let reference = |id: &str| -> Result<String, String> {
        let p = packages.get(id).ok_or(format!("no package {id}"))?;
        Ok(purl(
            p["name"].as_str().unwrap_or(""),
            p["version"].as_str().unwrap_or(""),
        ))
    };
    let mut components = Vec::new();
    for id in seen.iter().filter(|id| id.as_str() != root_id) {
        let p = packages[id.as_str()];
        let (name, version) = (
            p["name"].as_str().unwrap_or(""),
            p["version"].as_str().unwrap_or(""),
        );
        let mut c = json!({
            "type": "library",
            "bom-ref": purl(name, version),
            "name": name,
            "version": version,
            "purl": purl(name, version),
            "scope": "required",
        });
        if let Some(license) = p["license"].as_str() {
            c["licenses"] = json!([{ "expression": license }]);
        }
        components.push(c);
    }
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let mut dependencies = Vec::new();
    for (id, deps) in &graph {
        let mut on: Vec<String> = deps
            .iter()
            .map(|d| reference(d))
            .collect::<Result<_, _>>()?;
        on.sort();
        on.dedup();
        dependencies.push(json!({ "ref": reference(id)?, "dependsOn": on }));
    }
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));
    let root_ref = purl("pullcred", &release.version);
    // No random serial number: one derived from what the SBOM lists.
    let listed = serde_json::to_vec(&(&components, &dependencies)).map_err(|e| e.to_string())?;
    let h = archive::sha256_hex(&listed);
    let serial = format!(
        "urn:uuid:{}-{}-5{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    );
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(release.epoch),
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": "pullcred",
                "version": release.version,
                "purl": root_ref,
                "licenses": [{ "expression": "Apache-2.0" }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    });
    let mut out = serde_json::to_vec_pretty(&bom).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of seconds since the epoch.
fn rfc3339(epoch: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    humantime::format_rfc3339_seconds(time).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_of_known_times() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
