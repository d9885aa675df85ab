//! The node installer's manifests (deploy/): every file parses as Kubernetes objects, and
//! each overlay renders as kustomize renders it. No kustomize is packaged for this machine,
//! so `render` follows kustomize's documented behaviour for the fields these kustomizations
//! use, and nothing else: `resources` (files, or directories with a kustomization, in
//! order), `namespace` (set on every namespaced object), and `patches` with a `target`
//! (kind, name) and an inline JSON 6902 patch (`add`, with `/-` to append, and `replace`).
//! A kustomization field it does not know fails the test, so a new field cannot be silently
//! left unrendered.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The objects of a YAML file (several documents).
fn objects(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects kustomize renders from the kustomization in `dir`.
fn render(dir: &Path) -> Vec<Value> {
    let k = objects(&dir.join("kustomization.yaml")).remove(0);
    for key in k.as_object().unwrap().keys() {
        assert!(
            ["apiVersion", "kind", "namespace", "resources", "patches"].contains(&key.as_str()),
            "{}: kustomization field {key} is not rendered here",
            dir.display()
        );
    }
    let mut out = Vec::new();
    for r in k["resources"].as_array().into_iter().flatten() {
        let path = dir.join(r.as_str().unwrap());
        if path.is_dir() {
            out.extend(render(&path));
        } else {
            out.extend(objects(&path));
        }
    }
    if let Some(ns) = k["namespace"].as_str() {
        for o in &mut out {
            let cluster_wide = ["Namespace", "ClusterRole", "ClusterRoleBinding"]
                .contains(&o["kind"].as_str().unwrap_or(""));
            if !cluster_wide {
                o["metadata"]["namespace"] = ns.into();
            }
        }
    }
    for p in k["patches"].as_array().into_iter().flatten() {
        let target = &p["target"];
        let ops: Vec<Value> = serde_saphyr::from_str(p["patch"].as_str().unwrap()).unwrap();
        let mut hit = 0;
        for o in out.iter_mut().filter(|o| {
            o["kind"] == target["kind"]
                && (target["name"].is_null() || o["metadata"]["name"] == target["name"])
        }) {
            hit += 1;
            for op in &ops {
                json_patch(o, op);
            }
        }
        assert_eq!(
            hit,
            1,
            "{}: a patch's target matches one object",
            dir.display()
        );
    }
    out
}

/// One JSON 6902 operation (`add`, `replace`) on `doc`, as RFC 6902 defines them.
fn json_patch(doc: &mut Value, op: &Value) {
    let path = op["path"].as_str().unwrap();
    let mut parts: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = parts.pop().unwrap();
    let mut at = &mut *doc;
    for p in &parts {
        at = match at {
            Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
            Value::Object(m) => m.get_mut(p).unwrap_or_else(|| panic!("no {p} in {path}")),
            _ => panic!("{path}: not a container"),
        };
    }
    let value = op["value"].clone();
    match (op["op"].as_str().unwrap(), at) {
        ("add", Value::Array(a)) if last == "-" => a.push(value),
        ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), value),
        ("add", Value::Object(m)) => {
            m.insert(last, value);
        }
        ("replace", Value::Array(a)) => {
            let i: usize = last.parse().unwrap();
            assert!(i < a.len(), "{path}: replace needs an existing element");
            a[i] = value;
        }
        ("replace", Value::Object(m)) => {
            assert!(
                m.contains_key(&last),
                "{path}: replace needs an existing member"
            );
            m.insert(last, value);
        }
        (other, _) => panic!("{path}: op {other} is not rendered here"),
    }
}

fn daemonset(objects: &[Value]) -> &Value {
    objects
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("a DaemonSet")
}

fn env_of(ds: &Value) -> Vec<(String, String)> {
    ds["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn every_manifest_parses_as_kubernetes_objects() {
    let mut pending = vec![deploy()];
    let mut seen = 0;
    while let Some(d) = pending.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                for o in objects(&p) {
                    assert!(
                        o["apiVersion"].is_string() && o["kind"].is_string(),
                        "{}: {o}",
                        p.display()
                    );
                    seen += 1;
                }
            }
        }
    }
    assert!(seen >= 10, "{seen}");
}

#[test]
fn the_base_is_a_privileged_daemonset_with_the_hosts_root_and_the_config() {
    let objects = render(&deploy().join("base"));
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "ConfigMap",
            "DaemonSet",
            "ClusterRole",
            "ClusterRoleBinding"
        ]
    );
    let ds = daemonset(&objects);
    assert_eq!(ds["apiVersion"], "apps/v1");
    assert_eq!(ds["metadata"]["namespace"], "pullcred-system");
    assert_eq!(
        ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
        1
    );
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["automountServiceAccountToken"], false,
        "no API server access"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mounts, [("host", "/host"), ("config", "/config")]);
    assert_eq!(pod["volumes"][0]["hostPath"]["path"], "/");
    assert_eq!(pod["volumes"][1]["configMap"]["name"], "pullcred-config");
    assert!(
        env_of(ds).contains(&("PULLCRED_RESTART_KUBELET".into(), "false".into())),
        "never restarts the kubelet unless told to"
    );
    // The nodes may ask for tokens for the clouds' audiences.
    let role = objects.iter().find(|o| o["kind"] == "ClusterRole").unwrap();
    assert_eq!(
        role["rules"][0]["verbs"][0],
        "request-serviceaccounts-token-audience"
    );
    let binding = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRoleBinding")
        .unwrap();
    assert_eq!(binding["subjects"][0]["name"], "system:nodes");
}

#[test]
fn each_overlay_names_its_flavour_and_uninstall_undoes() {
    for flavour in ["eks", "kubeadm", "k3s", "systemd"] {
        let objects = render(&deploy().join("overlays").join(flavour));
        let env = env_of(daemonset(&objects));
        assert!(
            env.contains(&("PULLCRED_FLAVOR".into(), flavour.into())),
            "{flavour}: {env:?}"
        );
        assert!(env.contains(&("PULLCRED_MODE".into(), "install".into())));
    }
    let k3s = render(&deploy().join("overlays/k3s"));
    assert!(env_of(daemonset(&k3s)).contains(&("PULLCRED_KUBELET_PROCESS".into(), "k3s".into())));
    let uninstall = render(&deploy().join("overlays/uninstall"));
    assert!(env_of(daemonset(&uninstall)).contains(&("PULLCRED_MODE".into(), "uninstall".into())));
}
