//! The bad-input corpus: one file per case under `tests/corpus/<request|config|cache>/`,
//! each saying what goes in and what must come out. Every case: no panic, nothing on
//! stdout on failure, exactly one error line on stderr (warnings aside), no stderr line
//! longer than the logging limit; and the exit code and message fragment the case names.
//!
//! A case is a TOML file:
//!
//! ```toml
//! about = "what it checks"
//! exit = 1                      # expected exit code
//! stderr = "fragment"           # in the error line (exit 1) or a warning (exit 0)
//! stdout = "fragment"           # optional, in the response (exit 0)
//! # stdin: one of
//! image = "registry.example.com/app"   # a well-formed v1 request for this image
//! stdin = '{"apiVersion": …}'          # literal text
//! stdin_hex = "7b ff 7d"               # bytes
//! stdin_repeat = { prefix = "…", unit = "[", count = 10000, suffix = "" }
//! # the world: optional
//! config = '''…'''              # replaces the base config (static, root-only password)
//! config_repeat = { prefix = "…", unit = "#", count = 1048577, suffix = "" }
//! [[file]]                      # files under the case's dir: kind = file|dir|symlink|fifo
//! path = "pw"; kind = "file"; text = "…"; mode = 0o666; target = "…"
//! cache = "file"                # replace the cached entry (primed by a first request) …
//! cache_text = "…"              # … with this text; or cache = "dir" | "fifo"
//! ```

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::support::{V1, pullcred, request, run};

/// The base config: one static rule, and the patterns some cases aim at.
const BASE_CONFIG: &str = r#"[[registry]]
match = ["registry.example.com", "*.corp.example.com:5000"]
source = "static"
username = "puller"
password_file = "password"
"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    about: String,
    exit: i32,
    #[serde(default)]
    stderr: Option<String>,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    stdin_hex: Option<String>,
    #[serde(default)]
    stdin_repeat: Option<Repeat>,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    config_repeat: Option<Repeat>,
    #[serde(default)]
    file: Vec<File>,
    #[serde(default)]
    cache: Option<String>,
    #[serde(default)]
    cache_text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Repeat {
    prefix: String,
    unit: String,
    count: usize,
    suffix: String,
}

impl Repeat {
    fn bytes(&self) -> Vec<u8> {
        format!(
            "{}{}{}",
            self.prefix,
            self.unit.repeat(self.count),
            self.suffix
        )
        .into_bytes()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    path: String,
    #[serde(default = "regular")]
    kind: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    mode: Option<u32>,
    #[serde(default)]
    target: Option<String>,
}

fn regular() -> String {
    "file".into()
}

fn cases() -> Vec<(PathBuf, Case)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut out = Vec::new();
    for group in ["request", "config", "cache"] {
        for entry in fs::read_dir(root.join(group)).unwrap() {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path).unwrap();
            let case: Case =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((path, case));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn make_files(dir: &Path, files: &[File]) {
    for f in files {
        let path = dir.join(&f.path);
        match f.kind.as_str() {
            "file" => fs::write(&path, &f.text).unwrap(),
            "dir" => fs::create_dir(&path).unwrap(),
            "symlink" => symlink(f.target.as_deref().expect("symlink target"), &path).unwrap(),
            "fifo" => {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &path,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o600),
                    0,
                )
                .unwrap();
            }
            other => panic!("unknown file kind {other}"),
        }
        if let Some(mode) = f.mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Replaces the one cached entry under `cache` as the case says.
fn spoil_cache(cache: &Path, how: &str, text: Option<&str>) {
    let entry = fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a primed entry");
    fs::remove_file(&entry).unwrap();
    make_files(
        cache,
        &[File {
            path: entry.file_name().unwrap().to_string_lossy().into_owned(),
            kind: how.to_string(),
            text: text.unwrap_or_default().to_string(),
            mode: Some(0o600),
            target: None,
        }],
    );
}

fn run_case(path: &Path, case: &Case) {
    let name = path.display();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(dir.join("password"), "s3cret-corpus-pw\n").unwrap();
    fs::set_permissions(dir.join("password"), fs::Permissions::from_mode(0o600)).unwrap();
    let config = match (&case.config, &case.config_repeat) {
        (Some(text), _) => text.clone().into_bytes(),
        (None, Some(r)) => r.bytes(),
        (None, None) => BASE_CONFIG.as_bytes().to_vec(),
    };
    fs::write(dir.join("config.toml"), config).unwrap();
    make_files(dir, &case.file);

    let stdin = if let Some(image) = &case.image {
        request(V1, image)
    } else if let Some(text) = &case.stdin {
        text.clone().into_bytes()
    } else if let Some(hex) = &case.stdin_hex {
        hex.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    } else if let Some(r) = &case.stdin_repeat {
        r.bytes()
    } else {
        panic!("{name}: no stdin");
    };
    let exec = || {
        let mut cmd = pullcred(dir);
        cmd.arg("--config").arg(dir.join("config.toml"));
        run(&mut cmd, &stdin)
    };
    if let Some(how) = &case.cache {
        exec().response();
        spoil_cache(&dir.join("cache"), how, case.cache_text.as_deref());
    }
    let out = exec();

    assert!(!out.stderr.contains("panic"), "{name}: {out:#?}");
    for line in out.stderr.lines() {
        assert!(
            line.len() <= 1100,
            "{name}: a stderr line of {} bytes",
            line.len()
        );
    }
    assert!(
        !out.stdout.contains("s3cret-corpus-pw") || case.exit == 0,
        "{name}: a secret on stdout of a failure"
    );
    assert!(
        !out.stderr.contains("s3cret-corpus-pw"),
        "{name}: secret on stderr"
    );
    if case.exit == 0 {
        let resp = out.response();
        if let Some(want) = &case.stdout {
            assert!(
                resp.to_string().contains(want.as_str()),
                "{name}: want {want:?} in {resp}"
            );
        }
        if let Some(want) = &case.stderr {
            assert!(
                out.stderr.contains(want.as_str()),
                "{name}: want {want:?} in {:?}",
                out.stderr
            );
        }
    } else {
        assert_eq!(out.code, Some(case.exit), "{name}: {out:#?}");
        out.assert_error(case.stderr.as_deref().unwrap_or("pullcred: "));
    }
    let _ = &case.about;
}

#[test]
fn every_corpus_case_gets_its_documented_answer() {
    let all = cases();
    assert!(
        all.len() >= 60,
        "the corpus has {} cases, want at least 60",
        all.len()
    );
    // In parallel: each case has its own dir and cache. Every failing case is reported,
    // not just the first.
    let failed: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = all
            .chunks(8)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter(|(path, case)| {
                            std::panic::catch_unwind(|| run_case(path, case)).is_err()
                        })
                        .map(|(path, _)| path.display().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(failed.is_empty(), "failing corpus cases: {failed:#?}");
}
