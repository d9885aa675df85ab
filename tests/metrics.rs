//! The metrics textfile (`[metrics] textfile`): written by mints only, read back by
//! Prometheus' own text-format parser (`prometheus_client` from PyPI), never torn while
//! concurrent execs rewrite it, no count lost to a race, and no secret in it; its label sets
//! capped per source however many hosts a wildcard rule meets. (What another user may plant
//! in the textfile dir is tests/local_user/metrics.rs.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::azure::{self, USER_MI};
use crate::support::http::Reply;
use crate::support::{FIXTURE_SECRETS, Fixture, Run, V1, pullcred, request, require_tool, run};

/// The samples of the textfile as Prometheus parses them: `name{labels} value` per line,
/// sorted; the parser fails on anything that is not the text format.
pub(crate) fn parse(path: &Path) -> Vec<String> {
    require_tool("python3");
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\n\
             from prometheus_client.parser import text_string_to_metric_families\n\
             rows = []\n\
             for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
             \x20   for s in f.samples:\n\
             \x20       labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))\n\
             \x20       rows.append(f'{f.type} {s.name}{{{labels}}} {s.value:g}')\n\
             print('\\n'.join(sorted(rows)))\n",
        )
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prometheus_client cannot parse {}: {}\n(run tests/run.sh, which installs it)",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn config(home: &Path, api: &str, imds: &str) -> std::path::PathBuf {
    let path = home.join("config.toml");
    fs::write(
        &path,
        format!(
            "[metrics]\ntextfile = \"node_exporter/pullcred.prom\"\n[[registry]]\nmatch = [\"*.azurecr.io\"]\nsource = \"acr\"\nclient_id = \"{USER_MI}\"\nendpoint = \"{api}\"\nimds_endpoint = \"{imds}\"\n"
        ),
    )
    .unwrap();
    fs::create_dir_all(home.join("node_exporter")).unwrap();
    path
}

#[test]
fn mints_failures_and_stale_serves_are_counted_in_the_text_format() {
    let (api, imds) = azure::fakes(&["regone.azurecr.io", "regtwo.azurecr.io"]);
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), &api.url(), &imds.url());
    let textfile = home.path().join("node_exporter/pullcred.prom");
    let exec = |image: &str, clock: &str| {
        let mut cmd = pullcred(home.path());
        cmd.arg("--config")
            .arg(&config)
            .env("PULLCRED_TEST_CLOCK_OFFSET", clock);
        run(&mut cmd, &request(V1, image))
    };
    exec("regone.azurecr.io/app:1", "0").response();
    assert!(textfile.exists(), "a mint writes it");
    let after_mint = fs::read(&textfile).unwrap();
    // A hit does not touch it.
    exec("regone.azurecr.io/app:1", "0").response();
    assert_eq!(fs::read(&textfile).unwrap(), after_mint);
    exec("regtwo.azurecr.io/app:1", "0").response();
    // The exchange fails: reg1's entry is due but valid (stale serve); an unknown registry
    // fails outright.
    api.set(|_| Reply::Respond {
        status: 503,
        headers: vec![],
        body: "down".into(),
    });
    exec("regone.azurecr.io/app:1", "9000").response();
    exec("regthree.azurecr.io/app:1", "0").assert_error("HTTP 503");
    let rows = parse(&textfile);
    for want in [
        "counter pullcred_mints_total{registry=regone.azurecr.io,source=acr} 1",
        "counter pullcred_mints_total{registry=regtwo.azurecr.io,source=acr} 1",
        "counter pullcred_mints_total{registry=regthree.azurecr.io,source=acr} 0",
        "counter pullcred_mint_failures_total{registry=regone.azurecr.io,source=acr} 1",
        "counter pullcred_mint_failures_total{registry=regthree.azurecr.io,source=acr} 1",
        "counter pullcred_stale_serves_total{registry=regone.azurecr.io,source=acr} 1",
        "counter pullcred_stale_serves_total{registry=regthree.azurecr.io,source=acr} 0",
    ] {
        assert!(rows.iter().any(|r| r == want), "want {want:?} in {rows:#?}");
    }
    for gauge in [
        "gauge pullcred_last_mint_success_timestamp_seconds{registry=regtwo.azurecr.io,source=acr}",
        "gauge pullcred_credential_expiry_timestamp_seconds{registry=regone.azurecr.io,source=acr}",
    ] {
        assert!(
            rows.iter().any(|r| r.starts_with(gauge)),
            "want {gauge} in {rows:#?}"
        );
    }
    // No secret: not the refresh token, not the access token, nothing of the fixtures.
    let text = fs::read_to_string(&textfile).unwrap();
    for secret in FIXTURE_SECRETS {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&textfile).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "node_exporter reads it");
}

#[test]
fn concurrent_mints_never_tear_the_file_nor_lose_a_count() {
    let registries: Vec<String> = (0..16)
        .map(|i| format!("registry{i:02}.azurecr.io"))
        .collect();
    let services: &'static [&'static str] = Box::leak(
        registries
            .iter()
            .map(|r| &*Box::leak(r.clone().into_boxed_str()))
            .collect::<Vec<&'static str>>()
            .into_boxed_slice(),
    );
    let (api, imds) = azure::fakes(services);
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), &api.url(), &imds.url());
    let textfile = home.path().join("node_exporter/pullcred.prom");
    let done = std::sync::atomic::AtomicBool::new(false);
    let torn = std::thread::scope(|s| {
        // A reader, as node_exporter is: every read is a whole file.
        let reader = s.spawn(|| {
            let mut torn = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(text) = fs::read_to_string(&textfile)
                    && !(text.is_empty() || text.ends_with('\n') && text.starts_with("# HELP"))
                {
                    torn.push(text);
                }
            }
            torn
        });
        let writers: Vec<_> = registries
            .iter()
            .map(|registry| {
                let config = &config;
                let home = home.path();
                s.spawn(move || {
                    let mut cmd = pullcred(home);
                    cmd.arg("--config").arg(config);
                    run(&mut cmd, &request(V1, &format!("{registry}/app:1"))).response();
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        reader.join().unwrap()
    });
    assert!(torn.is_empty(), "a reader saw a partial file: {torn:?}");
    let rows = parse(&textfile);
    let mints = rows
        .iter()
        .filter(|r| r.starts_with("counter pullcred_mints_total{") && r.ends_with(" 1"))
        .count();
    assert_eq!(mints, 16, "every process's mint counted: {rows:#?}");
    // Its temp and lock files stay beside it, hidden; no temp file is left.
    let leftovers: Vec<String> = fs::read_dir(home.path().join("node_exporter"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A node whose one rule answers every `*.example.com` host with a static credential (a mint
/// that costs nothing), and writes metrics to `textfile/pullcred.prom` beside the config. The
/// textfile dir is the caller's to make.
pub(crate) struct StaticNode {
    pub fx: Fixture,
}

impl StaticNode {
    /// `metrics` is more of the `[metrics]` table.
    pub fn new(metrics: &str) -> Self {
        let fx = Fixture::new("matching");
        fs::write(
            fx.path("config.toml"),
            format!(
                "deadline = \"10s\"\n[metrics]\ntextfile = \"textfile/pullcred.prom\"\n{metrics}\n\
                 [[registry]]\nmatch = [\"*.example.com\"]\nsource = \"static\"\n\
                 username = \"u\"\npassword_file = \"password\"\n"
            ),
        )
        .unwrap();
        StaticNode { fx }
    }

    pub fn dir(&self) -> PathBuf {
        self.fx.path("textfile")
    }

    pub fn textfile(&self) -> PathBuf {
        self.fx.path("textfile/pullcred.prom")
    }

    /// Answers `image` as the kubelet would ask; also how long that took.
    pub fn exec(&self, image: &str) -> (Run, Duration) {
        let start = Instant::now();
        let out = self.fx.plugin(image);
        (out, start.elapsed())
    }
}

/// The `registry` labels of one family's samples for `source`, with their values.
fn registries(rows: &[String], family: &str, source: &str) -> Vec<(String, f64)> {
    let head = format!("counter {family}{{registry=");
    rows.iter()
        .filter_map(|r| r.strip_prefix(&head))
        .filter_map(|r| {
            let (labels, value) = r.rsplit_once("} ")?;
            let (registry, src) = labels.split_once(",source=")?;
            (src == source).then(|| (registry.to_string(), value.parse().unwrap()))
        })
        .collect()
}

#[test]
fn three_hundred_hosts_under_a_wildcard_keep_at_most_a_hundred_registries_and_one_overflow() {
    let node = StaticNode::new("");
    fs::create_dir(node.dir()).unwrap();
    for i in 0..300 {
        let (out, _) = node.exec(&format!("h{i:03}.example.com/app:1"));
        out.response();
    }
    let rows = parse(&node.textfile());
    let mints = registries(&rows, "pullcred_mints_total", "static");
    let named: Vec<_> = mints.iter().filter(|(r, _)| r != "other").collect();
    assert_eq!(named.len(), 100, "{mints:?}");
    assert!(named.iter().all(|(_, n)| *n == 1.0), "{mints:?}");
    assert!(
        mints.contains(&("other".to_string(), 200.0)),
        "the rest counted under registry=\"other\": {mints:?}"
    );
    let total: f64 = mints.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 300.0, "no mint uncounted");
    // Every family has the same label sets: at most 101 per source.
    let label_sets = rows.len();
    assert!(label_sets <= 5 * 101, "{label_sets} samples");
    let size = fs::metadata(node.textfile()).unwrap().len();
    assert!(size < 64 * 1024, "a few tens of KB, not {size} bytes");
}

#[test]
fn max_registries_is_configurable_and_folds_a_file_written_without_a_cap() {
    let node = StaticNode::new("max_registries = 3");
    fs::create_dir(node.dir()).unwrap();
    // A file from before the cap: ten registries, each minted once, r9 most recently.
    let mut old = String::from("# TYPE pullcred_mints_total counter\n");
    for i in 0..10 {
        old.push_str(&format!(
            "pullcred_mints_total{{source=\"static\",registry=\"r{i}.example.com\"}} 1\n"
        ));
    }
    old.push_str("# TYPE pullcred_last_mint_success_timestamp_seconds gauge\n");
    for i in 0..10 {
        old.push_str(&format!(
            "pullcred_last_mint_success_timestamp_seconds{{source=\"static\",registry=\"r{i}.example.com\"}} {}\n",
            1_700_000_000 + i
        ));
    }
    fs::write(node.textfile(), old).unwrap();
    node.exec("new.example.com/app:1").0.response();
    let rows = parse(&node.textfile());
    let mut mints = registries(&rows, "pullcred_mints_total", "static");
    mints.sort_by(|a, b| a.0.cmp(&b.0));
    // The three most recently successful keep their labels; the other seven and the new
    // host add up under "other".
    assert_eq!(
        mints,
        [
            ("other".to_string(), 8.0),
            ("r7.example.com".to_string(), 1.0),
            ("r8.example.com".to_string(), 1.0),
            ("r9.example.com".to_string(), 1.0),
        ],
        "{rows:#?}"
    );
    // A known registry keeps counting under its own label.
    node.exec("r8.example.com/app:1").0.response();
    let rows = parse(&node.textfile());
    let mints = registries(&rows, "pullcred_mints_total", "static");
    assert!(
        mints.contains(&("r8.example.com".to_string(), 2.0)),
        "{mints:?}"
    );
}
