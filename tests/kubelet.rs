//! `config check --kubelet` and `kubelet-config`: the kubelet's CredentialProviderConfig
//! checked field by field as the kubelet checks it, and against pullcred's rules.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Run, pullcred, run};

const GOOD: &str = r#"apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: pullcred
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    matchImages: ["registry.example.com"]
    defaultCacheDuration: "5m"
"#;
const RULES: &str = "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\n";

fn check(dir: &Path, config: &str, kubelet: &str, extra: &[&str]) -> Run {
    fs::write(dir.join("config.toml"), config).unwrap();
    fs::write(dir.join("kubelet.yaml"), kubelet).unwrap();
    run(
        pullcred(dir)
            .args(["config", "check", "--no-files"])
            .arg(dir.join("config.toml"))
            .arg("--kubelet")
            .arg(dir.join("kubelet.yaml"))
            .args(extra),
        b"",
    )
}

/// The provider stanza of GOOD with `from` replaced by `to`.
fn variant(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn a_good_config_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), RULES, GOOD, &[]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("1 provider(s), 0 error(s), 0 warning(s)"),
        "{out:?}"
    );
}

#[test]
fn each_broken_kubelet_config_is_named_by_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let token = |attrs: &str| format!("{GOOD}    tokenAttributes:\n{attrs}");
    let cases: Vec<(String, &str)> = vec![
        ("apiVersion: [\n".into(), "line 1: not YAML (nor JSON): a syntax error at column"),
        ("- a\n- b\n".into(), "not a mapping"),
        (variant("kubelet.config.k8s.io/v1", "kubelet.config.k8s.io/v2"), "line 1: apiVersion: not one of"),
        (variant("kind: CredentialProviderConfig", "kind: KubeletConfiguration"), "line 2: kind: not CredentialProviderConfig"),
        (variant("kind: CredentialProviderConfig\n", ""), "kind: missing"),
        (variant("providers:\n", "providers: {}\nx:\n"), "providers: must be a list"),
        (variant("kind: CredentialProviderConfig", "kind: CredentialProviderConfig\nprovider: []"), "kubelet.yaml: line 3: an unknown field"),
        (variant("  - name: pullcred\n", "  - name: \"\"\n"), "providers[0].name: empty"),
        (variant("  - name: pullcred\n", "  - name: /usr/bin/pullcred\n"), "providers[0].name: a path: it must be the file name"),
        (variant("    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", ""), "providers[0].apiVersion: missing"),
        (variant("  - name: pullcred\n", "  - name: pull cred\n"), "providers[0].name: has a space, which the kubelet refuses"),
        ("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []\n".into(), "providers: none at all: the kubelet requires at least one"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n      optionalServiceAccountAnnotationKeys: [\"a b/c\"]\n"), "providers[0].tokenAttributes.optionalServiceAccountAnnotationKeys[0]: not a qualified name"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n      optionalServiceAccountAnnotationKeys: [\"x/y/z\"]\n"), "providers[0].tokenAttributes.optionalServiceAccountAnnotationKeys[0]: not a qualified name"),
        (format!("{GOOD}  - name: pullcred\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"other.example.com\"]\n    defaultCacheDuration: \"5m\"\n"), "providers[1].name: defined more than once: first at providers[0].name at line 4"),
        (variant("    matchImages: [\"registry.example.com\"]\n", ""), "providers[0].matchImages: missing"),
        (variant("[\"registry.example.com\"]", "[]"), "providers[0].matchImages: empty"),
        (variant("[\"registry.example.com\"]", "[\"https://registry.example.com\"]"), "providers[0].matchImages[0]: has a scheme"),
        (variant("[\"registry.example.com\"]", "[\"registry.example.com:*\"]"), "providers[0].matchImages[0]: the kubelet refuses it: it has an invalid port"),
        (variant("[\"registry.example.com\"]", "[\"registry.example.com/*\"]"), "providers[0].matchImages[0]: globs are allowed in the host only"),
        // What the kubelet's own URL parse refuses (it then refuses to start), and what it
        // accepts but cuts short at `?` or `#` (so it routes other images than written).
        (variant("[\"registry.example.com\"]", "[\"registry example.com\"]"), "providers[0].matchImages[0]: the kubelet refuses it: it has a character a host may not have"),
        (variant("[\"registry.example.com\"]", "[\"reg^istry.example.com\"]"), "providers[0].matchImages[0]: the kubelet refuses it: it has a character a host may not have"),
        (variant("[\"registry.example.com\"]", "[\"registry.example.com?team=a\"]"), "providers[0].matchImages[0]: has a '?' or '#': the kubelet matches only what comes before it"),
        (variant("[\"registry.example.com\"]", "[\"registry..example.com\"]"), "providers[0].matchImages[0]: has an empty host label"),
        (variant("[\"registry.example.com\"]", "[\"reg[istry.example.com\"]"), "providers[0].matchImages[0]: has an unclosed '['"),
        (variant("[\"registry.example.com\"]", "[5]"), "providers[0].matchImages[0]: must be a string"),
        (variant("\"5m\"", "\"5 minutes\""), "providers[0].defaultCacheDuration: not a Go duration"),
        (variant("\"5m\"", "\"-5m\""), "providers[0].defaultCacheDuration: negative"),
        (variant("    defaultCacheDuration: \"5m\"\n", ""), "providers[0].defaultCacheDuration: missing"),
        (variant("    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", "    apiVersion: credentialprovider.kubelet.k8s.io/v2\n"), "providers[0].apiVersion: not one of"),
        (format!("{GOOD}    env:\n      - name: \"\"\n        value: x\n"), "providers[0].env[0]: must be {name: <non-empty>, value: <string>}"),
        (format!("{GOOD}    args: [1]\n"), "providers[0].args: must be a list of strings"),
        (format!("{GOOD}    matchimages: []\n"), "providers[0].matchimages: unknown field"),
        (token("      cacheType: \"ServiceAccount\"\n      requireServiceAccount: true\n"), "providers[0].tokenAttributes.serviceAccountTokenAudience: missing or empty"),
        (token("      serviceAccountTokenAudience: a\n      cacheType: ServiceAccount\n"), "providers[0].tokenAttributes.requireServiceAccount: missing"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n"), "providers[0].tokenAttributes.cacheType: missing (Token or ServiceAccount)"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Pod\n"), "providers[0].tokenAttributes.cacheType: not Token or ServiceAccount"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: false\n      cacheType: Token\n      requiredServiceAccountAnnotationKeys: [x/y]\n"), "providers[0].tokenAttributes.requiredServiceAccountAnnotationKeys: needs requireServiceAccount: true"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n      requiredServiceAccountAnnotationKeys: [x/y]\n      optionalServiceAccountAnnotationKeys: [x/y]\n"), "providers[0].tokenAttributes.optionalServiceAccountAnnotationKeys[0]: also required"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n      optionalServiceAccountAnnotationKeys: [x/y, x/y]\n"), "providers[0].tokenAttributes.optionalServiceAccountAnnotationKeys[1]: the same key as [0]"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n").replace("credentialprovider.kubelet.k8s.io/v1\n", "credentialprovider.kubelet.k8s.io/v1beta1\n"), "providers[0].tokenAttributes: needs apiVersion credentialprovider.kubelet.k8s.io/v1"),
        // The kubelet's v1beta1 and v1alpha1 CredentialProvider have no tokenAttributes: a
        // strict decode refuses the field.
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n").replace("kubelet.config.k8s.io/v1\n", "kubelet.config.k8s.io/v1beta1\n"), "providers[0].tokenAttributes: unknown to kubelet.config.k8s.io/v1beta1 (the kubelet decodes it strictly): tokenAttributes needs a file of apiVersion kubelet.config.k8s.io/v1"),
        (token("      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: Token\n").replace("kubelet.config.k8s.io/v1\n", "kubelet.config.k8s.io/v1alpha1\n"), "providers[0].tokenAttributes: unknown to kubelet.config.k8s.io/v1alpha1"),
    ];
    assert!(cases.len() >= 20);
    for (yaml, want) in &cases {
        let out = check(dir.path(), RULES, yaml, &[]);
        assert_eq!(out.code, Some(1), "{want}: {out:?}");
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("error: ") && l.contains(want))
            .unwrap_or_else(|| panic!("want {want:?} in {}", out.stdout));
        assert!(line.contains("kubelet.yaml: "), "the file is named: {line}");
        assert!(out.stderr.contains("kubelet config: "), "{out:?}");
    }
}

#[test]
fn a_passthrough_rule_needs_the_token_cache_type() {
    let dir = tempfile::tempdir().unwrap();
    let rules = "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"passthrough\"\n";
    let yaml = format!(
        "{GOOD}    tokenAttributes:\n      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: ServiceAccount\n"
    );
    let out = check(dir.path(), rules, &yaml, &[]);
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.contains("providers[0].tokenAttributes.cacheType: rule 1 (passthrough) answers with the service account token"), "{}", out.stdout);
    let out = check(
        dir.path(),
        rules,
        &yaml.replace("ServiceAccount\n", "Token\n"),
        &[],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn routing_and_rules_that_disagree_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let rules = format!(
        "{RULES}[[registry]]\nmatch = [\"other.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\n"
    );
    let yaml = format!(
        "{}  - name: ecr-credential-provider\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"*.example.com\"]\n    defaultCacheDuration: \"5m\"\n",
        variant(
            "[\"registry.example.com\"]",
            "[\"registry.example.com\", \"typo.example.con\"]"
        )
    );
    let out = check(dir.path(), &rules, &yaml, &[]);
    assert_eq!(out.code, Some(0), "warnings only: {out:?}");
    for want in [
        "rule 2: other.example.com is routed to pullcred by no matchImages",
        "providers[0].matchImages[1]: served by no pullcred rule",
        "providers[1].matchImages[0]: overlaps providers[0].matchImages[0] at line 6: both providers are asked",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("warning: ") && l.contains(want)),
            "want {want:?} in {}",
            out.stdout
        );
    }
}

#[test]
fn a_directory_is_merged_in_name_order_and_the_bin_dir_checked() {
    let dir = tempfile::tempdir().unwrap();
    let kdir = dir.path().join("conf.d");
    fs::create_dir(&kdir).unwrap();
    fs::write(kdir.join("10-pullcred.yaml"), GOOD).unwrap();
    fs::write(
        kdir.join("20-other.json"),
        r#"{"apiVersion":"kubelet.config.k8s.io/v1","kind":"CredentialProviderConfig","providers":[{"name":"pullcred","apiVersion":"credentialprovider.kubelet.k8s.io/v1","matchImages":["x.example.com"],"defaultCacheDuration":"1m"}]}"#,
    )
    .unwrap();
    fs::write(kdir.join("notes.txt"), "ignored").unwrap();
    fs::write(dir.path().join("config.toml"), RULES).unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let exec = |extra: &[&str]| {
        run(
            pullcred(dir.path())
                .args(["config", "check", "--no-files"])
                .arg(dir.path().join("config.toml"))
                .arg("--kubelet")
                .arg(&kdir)
                .args(extra),
            b"",
        )
    };
    let out = exec(&[]);
    assert!(
        out.stdout.contains(
            "20-other.json: line 1: providers[0].name: defined more than once: first at providers[0].name in 10-pullcred.yaml at line 4"
        ),
        "{}",
        out.stdout
    );
    fs::remove_file(kdir.join("20-other.json")).unwrap();
    let bin_arg = bin.display().to_string();
    let out = exec(&["--bin-dir", &bin_arg]);
    assert!(
        out.stdout.contains(
            "providers[0].name: no file of this name in the bin dir (the name must be the binary's)"
        ),
        "{}",
        out.stdout
    );
    fs::write(bin.join("pullcred"), "").unwrap();
    let out = exec(&["--bin-dir", &bin_arg]);
    assert!(out.stdout.contains("is not executable"), "{}", out.stdout);
    fs::set_permissions(bin.join("pullcred"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(exec(&["--bin-dir", &bin_arg]).code, Some(0));
}

#[test]
fn kubelet_config_routes_each_identity_to_its_own_provider() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        "[[registry]]\nmatch = [\"registry.example.com\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\n\
         [[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n\
         [[registry]]\nmatch = [\"harbor.example.com\"]\nsource = \"passthrough\"\n",
    )
    .unwrap();
    let out = run(pullcred(dir.path()).arg("kubelet-config").arg(&config), b"");
    assert_eq!(out.code, Some(0));
    for want in [
        "  - name: pullcred\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages:\n      - registry.example.com\n",
        "  - name: pullcred-ecr\n",
        "      serviceAccountTokenAudience: sts.amazonaws.com\n      cacheType: ServiceAccount\n      requireServiceAccount: true\n      optionalServiceAccountAnnotationKeys:\n        - eks.amazonaws.com/ecr-role-arn\n",
        "  - name: pullcred-passthrough\n",
        "      serviceAccountTokenAudience: harbor.example.com\n      cacheType: Token\n",
    ] {
        assert!(out.stdout.contains(want), "want {want:?} in {}", out.stdout);
    }
}

/// One provider per distinct token request: rules of one audience that read different
/// annotations get providers of their own (the kubelet passes one provider's keys), and two
/// of pullcred's providers routing one host is an error (the kubelet would ask both).
#[test]
fn providers_split_by_annotation_keys_and_pullcred_overlaps_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        "[[registry]]\nmatch = [\"*.dkr.ecr.eu-west-1.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n\
         [[registry]]\nmatch = [\"*.dkr.ecr.us-east-1.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\nrole_annotation = \"example.com/pull-role\"\n",
    )
    .unwrap();
    let out = run(pullcred(dir.path()).arg("kubelet-config").arg(&config), b"");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("  - name: pullcred-ecr\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  - name: pullcred-ecr-2\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("        - example.com/pull-role\n"),
        "{}",
        out.stdout
    );
    // Two pullcred providers for one host.
    let both = format!(
        "{GOOD}  - name: pullcred-ecr\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"registry.example.com\"]\n    defaultCacheDuration: \"5m\"\n"
    );
    let out = check(dir.path(), RULES, &both, &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("error: ") && l.contains("both providers are asked")),
        "{}",
        out.stdout
    );
}

/// What the kubelet has changes with its version, and it decodes strictly: `kubelet-config`
/// writes, and `config check --kubelet` accepts, exactly the fields of the version named.
/// tokenAttributes: from 1.33 (behind a gate, off by default there); cacheType: from 1.34; a
/// directory of configs: from 1.34.
#[test]
fn fields_follow_the_kubelet_version() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    fs::write(
        &config,
        "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n",
    )
    .unwrap();
    let generate = |version: &str| {
        run(
            pullcred(dir.path())
                .arg("kubelet-config")
                .arg(&config)
                .args(["--kubelet-version", version]),
            b"",
        )
    };
    for v in ["1.34", "v1.35.1", "1.40"] {
        let out = generate(v);
        assert_eq!(out.code, Some(0), "{v}: {out:?}");
        assert!(
            out.stdout.contains("cacheType: ServiceAccount"),
            "{v}: {}",
            out.stdout
        );
    }
    let out = generate("1.33");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("serviceAccountTokenAudience"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("cacheType"),
        "1.33 has no cacheType: {}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("--feature-gates=KubeletServiceAccountTokenForCredentialProviders=true"),
        "{}",
        out.stdout
    );
    for v in ["1.32", "1.26"] {
        generate(v).assert_error(&format!(
            "rule 1 needs the pod's service account token, which the kubelet of Kubernetes {v} cannot send"
        ));
    }
    // A version pullcred cannot speak for is a usage error, as any bad flag.
    for (v, why) in [
        ("1.25", "older than pullcred supports"),
        ("2.1", "is not a Kubernetes version"),
    ] {
        let out = generate(v);
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(out.stdout.is_empty() && out.stderr.contains(why), "{out:?}");
    }

    // The checker: a 1.33 file without cacheType is valid for 1.33 and not for the newest.
    let token = format!(
        "{GOOD}    tokenAttributes:\n      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n"
    );
    let out = check(dir.path(), RULES, &token, &["--kubelet-version", "1.33"]);
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("error: ")),
        "valid for 1.33: {}",
        out.stdout
    );
    assert!(out.stdout.contains("feature gate"), "{}", out.stdout);
    let out = check(dir.path(), RULES, &token, &[]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("cacheType: missing"), "{}", out.stdout);
    // cacheType on 1.33, tokenAttributes on 1.32: fields that version does not have.
    let with_cache = format!("{token}      cacheType: ServiceAccount\n");
    let out = check(
        dir.path(),
        RULES,
        &with_cache,
        &["--kubelet-version", "1.33"],
    );
    assert!(
        out.stdout
            .contains("cacheType: unknown to the kubelet of Kubernetes 1.33"),
        "{}",
        out.stdout
    );
    let out = check(
        dir.path(),
        RULES,
        &with_cache,
        &["--kubelet-version", "1.32"],
    );
    assert!(
        out.stdout
            .contains("tokenAttributes: unknown to the kubelet of Kubernetes 1.32"),
        "{}",
        out.stdout
    );
    // A directory of configs, before 1.34.
    let d = dir.path().join("kubelet.d");
    fs::create_dir(&d).unwrap();
    fs::write(d.join("a.yaml"), GOOD).unwrap();
    fs::write(dir.path().join("config.toml"), RULES).unwrap();
    let out = run(
        pullcred(dir.path())
            .args(["config", "check", "--no-files"])
            .arg(dir.path().join("config.toml"))
            .arg("--kubelet")
            .arg(&d)
            .args(["--kubelet-version", "1.33"]),
        b"",
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("directories from 1.34"),
        "{}",
        out.stdout
    );
}

/// What the kubelet accepts, pullcred accepts: a backslash in a provider's name (a file
/// name's on Linux), an `env` entry without `value`, upper case in an annotation key (checked
/// lower-cased), and a subdirectory in a config directory (skipped, as the kubelet skips it).
#[test]
fn what_the_kubelet_accepts_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "{GOOD}    env:\n      - name: HTTPS_PROXY\n    tokenAttributes:\n      serviceAccountTokenAudience: a\n      requireServiceAccount: true\n      cacheType: ServiceAccount\n      optionalServiceAccountAnnotationKeys: [\"Example.COM/Role\"]\n  - name: 'pull\\\\cred'\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"other.example.com\"]\n    defaultCacheDuration: \"5m\"\n"
    );
    let out = check(dir.path(), RULES, &yaml, &[]);
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("error: ")),
        "{}",
        out.stdout
    );
    let d = dir.path().join("kubelet.d");
    fs::create_dir_all(d.join("sub.yaml")).unwrap();
    fs::write(d.join("a.yaml"), GOOD).unwrap();
    let out = run(
        pullcred(dir.path())
            .args(["config", "check", "--no-files"])
            .arg(dir.path().join("config.toml"))
            .arg("--kubelet")
            .arg(&d),
        b"",
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("error: ")),
        "{}",
        out.stdout
    );
}

/// `kubelet-config --merge`: pullcred's providers are regenerated and placed first, keeping
/// what an operator set on them that pullcred never writes (a proxy in `env`, `args`);
/// every other provider is kept whole; JSON stays JSON.
#[test]
fn a_merge_keeps_other_providers_whole_and_the_operators_env_on_pullcreds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("config.toml"), RULES).unwrap();
    let existing = r#"apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: other
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    matchImages: ["other.example.com"]
    defaultCacheDuration: "1h"
    args: ["--flag"]
  - name: pullcred
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    matchImages: ["stale.example.com"]
    defaultCacheDuration: "5m"
    env:
      - name: HTTPS_PROXY
        value: http://proxy.internal:3128
    args: ["--verbose"]
"#;
    for (file, text) in [
        ("existing.yaml", existing.to_string()),
        (
            "existing.json",
            serde_json::to_string_pretty(
                &serde_saphyr::from_str::<serde_json::Value>(existing).unwrap(),
            )
            .unwrap(),
        ),
    ] {
        fs::write(d.join(file), &text).unwrap();
        let out = run(
            pullcred(d)
                .arg("kubelet-config")
                .arg(d.join("config.toml"))
                .arg("--merge")
                .arg(d.join(file)),
            b"",
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        let merged: serde_json::Value = if file.ends_with(".json") {
            serde_json::from_str(&out.stdout).expect("JSON stays JSON")
        } else {
            serde_saphyr::from_str(&out.stdout).unwrap()
        };
        let providers = merged["providers"].as_array().unwrap();
        assert_eq!(providers.len(), 2, "{}", out.stdout);
        let ours = &providers[0];
        assert_eq!(ours["name"], "pullcred");
        assert_eq!(
            ours["matchImages"],
            serde_json::json!(["registry.example.com"])
        );
        assert_eq!(ours["env"][0]["name"], "HTTPS_PROXY", "{}", out.stdout);
        assert_eq!(ours["env"][0]["value"], "http://proxy.internal:3128");
        assert_eq!(ours["args"], serde_json::json!(["--verbose"]));
        let before: serde_json::Value = serde_saphyr::from_str(existing).unwrap();
        assert_eq!(
            providers[1], before["providers"][0],
            "the other provider, whole"
        );
        // What it writes, the kubelet's checker accepts.
        fs::write(d.join("merged.yaml"), &out.stdout).unwrap();
        let check = run(
            pullcred(d)
                .args(["config", "check", "--no-files"])
                .arg(d.join("config.toml"))
                .arg("--kubelet")
                .arg(d.join("merged.yaml")),
            b"",
        );
        assert!(check.stdout.contains("0 error(s)"), "{}", check.stdout);
    }
}

/// A merge reads the existing file as the kubelet decodes it (strictly) and writes only what
/// the node's kubelet reads: a field no kubelet knows, or a kept provider's field the
/// version lacks, stops it with one line and nothing on stdout; pullcred's token providers
/// move an older file's `apiVersion` to `v1`, the only one with `tokenAttributes`.
#[test]
fn a_merge_writes_only_what_the_nodes_kubelet_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("config.toml"),
        "[[registry]]\nmatch = [\"*.dkr.ecr.*.amazonaws.com\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n",
    )
    .unwrap();
    let merge = |text: &str, version: &str| {
        fs::write(d.join("existing.yaml"), text).unwrap();
        run(
            pullcred(d)
                .arg("kubelet-config")
                .arg(d.join("config.toml"))
                .arg("--merge")
                .arg(d.join("existing.yaml"))
                .args(["--kubelet-version", version]),
            b"",
        )
    };
    let other = "  - name: other\n    apiVersion: credentialprovider.kubelet.k8s.io/v1beta1\n    matchImages: [\"other.example.com\"]\n    defaultCacheDuration: 1h\n";
    let beta = format!(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\nproviders:\n{other}"
    );
    let out = merge(&beta, "1.35");
    assert_eq!(out.code, Some(0), "{out:?}");
    let merged: serde_json::Value = serde_saphyr::from_str(&out.stdout).unwrap();
    assert_eq!(merged["apiVersion"], "kubelet.config.k8s.io/v1");
    assert_eq!(merged["providers"][0]["name"], "pullcred-ecr");
    assert_eq!(
        merged["providers"][1]["apiVersion"],
        "credentialprovider.kubelet.k8s.io/v1beta1"
    );

    let unknown = format!("{beta}    cacheDurationX: 1h\n");
    let out = merge(&unknown, "1.35");
    out.assert_error("existing.yaml: line 8: providers[0]: an unknown field");

    // A kept token provider with cacheType, for a 1.33 kubelet that has none.
    let token = format!(
        "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n{}    tokenAttributes:\n      serviceAccountTokenAudience: a\n      cacheType: Token\n      requireServiceAccount: true\n",
        other.replace("v1beta1", "v1")
    );
    assert_eq!(merge(&token, "1.35").code, Some(0));
    merge(&token, "1.33").assert_error(
        "existing.yaml: line 10: providers[0].tokenAttributes.cacheType: unknown to the kubelet of Kubernetes 1.33",
    );
}

/// A rule with identity "service-account" is an error where the kubelet cannot serve it or
/// would undo it: routed by a provider that sends no token (every such pull fails; under
/// "service-account-or-node" each falls back to the node, a warning), or overlapped by a
/// provider that asks for no token (every pod also gets that one's, the node's). The
/// overlap is judged by the entry that overlaps: another provider on a host of a node
/// rule is only the usual warning.
#[test]
fn service_account_rules_the_kubelet_cannot_serve_or_would_undo_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ecr = "111122223333.dkr.ecr.us-east-1.amazonaws.com";
    for (identity, code, severity) in [
        ("service-account", Some(1), "error"),
        ("service-account-or-node", Some(0), "warning"),
    ] {
        let rules = format!(
            "[[registry]]\nmatch = [\"{ecr}\"]\nsource = \"ecr\"\nidentity = \"{identity}\"\n"
        );
        let yaml = format!(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: pullcred\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"{ecr}\"]\n    defaultCacheDuration: \"5m\"\n"
        );
        let out = check(dir.path(), &rules, &yaml, &[]);
        assert_eq!(out.code, code, "{identity}: {out:?}");
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&format!("{severity}: "))
                && l.contains(&format!("rule 1 has identity \"{identity}\", but this provider sends no service account token"))),
            "{identity}: {}",
            out.stdout
        );
    }
    // One pullcred provider for a service-account rule (ECR) and a node rule (docker.io);
    // AWS's provider on ECR is the leak, another on docker.io only overlaps.
    let rules = format!(
        "[[registry]]\nmatch = [\"{ecr}\"]\nsource = \"ecr\"\nidentity = \"service-account\"\n[[registry]]\nmatch = [\"docker.io\"]\nsource = \"static\"\nusername = \"u\"\npassword_file = \"/p\"\n"
    );
    let provider = |other: &str| {
        format!(
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: pullcred\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"{ecr}\", \"docker.io\"]\n    defaultCacheDuration: \"5m\"\n    tokenAttributes:\n      serviceAccountTokenAudience: sts.amazonaws.com\n      requireServiceAccount: true\n      cacheType: ServiceAccount\n  - name: other\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n    matchImages: [\"{other}\"]\n    defaultCacheDuration: \"5m\"\n"
        )
    };
    let out = check(
        dir.path(),
        &rules,
        &provider("*.dkr.ecr.*.amazonaws.com"),
        &[],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.lines().any(|l| l.starts_with("error: ")
            && l.contains("providers[1].matchImages[0]: overlaps providers[0].matchImages[0]")
            && l.contains("so every pod gets the other's credentials (the node's) too")),
        "{}",
        out.stdout
    );
    let out = check(dir.path(), &rules, &provider("docker.io"), &[]);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("warning: ")
            && l.contains("overlaps providers[0].matchImages[1]")
            && l.contains("both providers are asked")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("every pod gets"), "{}", out.stdout);
}
