//! The shape docs/architecture.md promises, checked from the source text: the crate's
//! top-level modules depend on each other without a cycle, and no source module uses
//! another source. Test modules (from `#[cfg(test)]` to the end of a file) are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's text without its test modules.
fn non_test_text(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The top-level module a file belongs to (`src/cache/store.rs` -> `cache`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` a text names, in `use` lines or inline paths.
fn crate_refs(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&name) {
            refs.insert(name);
        }
        // `use crate::{a, b::c}`: every name in the braces.
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for item in list.split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                if modules.contains(name) {
                    refs.insert(name.to_string());
                }
            }
        }
    }
    refs
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .map(|p| module_of(p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = module_of(file);
        if from == "lib" || from == "main" {
            continue;
        }
        let mut refs = crate_refs(&non_test_text(file), &modules);
        refs.remove(&from);
        graph.entry(from).or_default().extend(refs);
    }
    graph
}

/// A cycle through `node`, if there is one: the path that closes it.
fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|n| n == node) {
        let mut cycle = path[i..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = find_cycle(graph, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn top_level_modules_have_no_cycle() {
    let graph = graph();
    // The check must see the edges it is about.
    assert!(graph["app"].contains("cache") && graph["config"].contains("sources"));
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, node, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn no_source_uses_another() {
    let dir = src().join("sources");
    let mod_rs = fs::read_to_string(dir.join("mod.rs")).unwrap();
    // The sources are the names in the one `registry!(…);` invocation (one line or several).
    let sources: Vec<&str> = mod_rs
        .split_once("\nregistry!(")
        .and_then(|(_, rest)| rest.split_once(");"))
        .map(|(names, _)| names)
        .expect("sources/mod.rs has a registry!(…) invocation")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert!(sources.len() >= 3, "{sources:?}");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    for file in files.iter().filter(|f| !f.ends_with("sources/mod.rs")) {
        let rel = file.strip_prefix(&dir).unwrap();
        let own = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let own = own.trim_end_matches(".rs");
        let text = non_test_text(file);
        // From a source's own top file (`x.rs`, `x/mod.rs`), `super::y` is a sibling source;
        // from deeper files `super::` is the source's own module.
        let depth = rel.components().count();
        let top_level = depth == 1 || (depth == 2 && file.ends_with("mod.rs"));
        for other in sources.iter().filter(|s| **s != own) {
            let via_crate = format!("sources::{other}");
            let via_super = format!("super::{other}");
            let uses = text.contains(&via_crate) || (top_level && text.contains(&via_super));
            assert!(!uses, "{} uses source {other}", file.display());
        }
    }
}
