//! The credential cache, through the binary: hits and misses (counted at a credential
//! helper), expiry and refresh on a moved clock, corrupt and foreign entries, unusable cache
//! dirs, stale-while-error, a cold burst of 64 processes, SIGKILL during writes, the hot path.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::{Fixture, Run, V1, go_seconds, request, run, single_auth};

const IMAGE: &str = "helper.example.com/app";

fn helper_calls(fx: &Fixture) -> usize {
    fs::read_to_string(fx.path("fixture.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn entries(fx: &Fixture) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(fx.path("cache")) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    out
}

/// The one cache entry, as JSON.
fn entry(fx: &Fixture) -> (PathBuf, Value) {
    let all = entries(fx);
    assert_eq!(all.len(), 1, "{all:?}");
    let v = serde_json::from_str(&fs::read_to_string(&all[0]).unwrap()).unwrap();
    (all[0].clone(), v)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Rewrites the entry's timing relative to now: how a credential with a real expiry (from
/// a cloud source) sits in the cache.
fn set_times(fx: &Fixture, refresh_in: i64, expires_in: i64) {
    let (path, mut v) = entry(fx);
    v["refresh_at_ms"] = (now_ms() + refresh_in * 1000).into();
    v["expires_at_ms"] = (now_ms() + expires_in * 1000).into();
    fs::write(&path, v.to_string()).unwrap();
}

/// Plugin mode with the clock moved by `offset` seconds.
fn at(fx: &Fixture, offset: i64, image: &str) -> Run {
    run(
        fx.cmd()
            .env("PULLCRED_TEST_CLOCK_OFFSET", offset.to_string()),
        &request(V1, image),
    )
}

#[test]
fn a_miss_then_hits_mint_once_per_registry() {
    let fx = Fixture::new("docker-config");
    let first = fx.plugin(IMAGE).response();
    let second = fx.plugin(IMAGE).response();
    let other_repo = fx.plugin("helper.example.com/other:2").response();
    assert_eq!(helper_calls(&fx), 1);
    assert_eq!(first["auth"], second["auth"]);
    assert_eq!(first["auth"], other_repo["auth"]);
    assert_eq!(single_auth(&first).2, "s3cret-helper-pw");
    // Another registry is another key.
    fx.plugin("basic.example.com/app").response();
    assert_eq!(entries(&fx).len(), 2);
}

#[test]
fn credentials_without_expiry_are_kept_for_static_ttl() {
    let fx = Fixture::new("docker-config");
    let resp = at(&fx, 0, IMAGE).response();
    assert_eq!(resp["cacheDuration"], "5m0s");
    let resp = at(&fx, 200, IMAGE).response();
    assert!(
        (99..=100).contains(&go_seconds(&resp["cacheDuration"])),
        "{resp}"
    );
    assert_eq!(helper_calls(&fx), 1);
    at(&fx, 301, IMAGE).response();
    assert_eq!(helper_calls(&fx), 2, "expired after 5 minutes");
}

#[test]
fn expiring_credentials_are_refreshed_inside_the_window() {
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    // A credential that refreshes in 1000 s and expires in 4000 s.
    set_times(&fx, 1000, 4000);
    let resp = at(&fx, 0, IMAGE).response();
    // The kubelet is told to come back when pullcred would refresh.
    assert!(
        (999..=1000).contains(&go_seconds(&resp["cacheDuration"])),
        "{resp}"
    );
    at(&fx, 990, IMAGE).response();
    assert_eq!(
        helper_calls(&fx),
        1,
        "outside the window: served from the cache"
    );
    at(&fx, 1010, IMAGE).response();
    assert_eq!(helper_calls(&fx), 2, "inside the window: minted anew");
}

#[test]
fn max_kubelet_cache_caps_the_cache_duration() {
    let fx = Fixture::new("docker-config");
    fx.prepend_config("[cache]\nmax_kubelet_cache = \"2m\"\n");
    assert_eq!(fx.plugin(IMAGE).response()["cacheDuration"], "2m0s");
}

#[test]
fn a_failed_mint_serves_a_still_valid_cached_credential() {
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    set_times(&fx, -10, 500);
    fs::write(fx.path("fail"), "").unwrap();

    let out = at(&fx, 0, IMAGE);
    let resp = out.response();
    assert_eq!(single_auth(&resp).2, "s3cret-helper-pw");
    assert!(
        out.stderr
            .contains("helper backend is down); answering with the cached credential"),
        "{:?}",
        out.stderr
    );
    // No longer than its remaining life, and soon, so a recovered upstream is used.
    assert!(go_seconds(&resp["cacheDuration"]) <= 60, "{resp}");
    let resp = at(&fx, 470, IMAGE).response();
    assert!(go_seconds(&resp["cacheDuration"]) <= 30, "{resp}");

    // Once expired it is never served.
    at(&fx, 510, IMAGE).assert_error("credential helper docker-credential-fixture: get failed");
    assert_eq!(helper_calls(&fx), 4);
}

#[test]
fn corrupt_and_foreign_format_entries_are_misses_and_get_replaced() {
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    let (path, good) = entry(&fx);
    let text = good.to_string();
    let mut other_version = good.clone();
    other_version["version"] = 99.into();
    let broken = [
        "{garbage".to_string(),
        text[..text.len() / 2].to_string(),
        String::new(),
        other_version.to_string(),
        r#"{"version":1}"#.to_string(),
    ];
    for (i, content) in broken.iter().enumerate() {
        fs::write(&path, content).unwrap();
        let out = fx.plugin(IMAGE);
        assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
        assert!(
            out.stderr.contains("treating it as a miss"),
            "{:?}",
            out.stderr
        );
        assert_eq!(helper_calls(&fx), i + 2, "a miss mints");
        assert_eq!(entry(&fx).1["version"], 1, "replaced by a good entry");
    }
}

#[test]
fn unusable_cache_dirs_are_not_used_and_requests_still_answered() {
    type Setup = fn(&Fixture) -> PathBuf;
    let cases: [(&str, Setup); 5] = [
        ("owned by uid 65534 (want 0)", |fx| {
            let d = fx.path("c");
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
            chown(&d, Some(65534), Some(65534)).unwrap();
            d
        }),
        ("writable by group or others (mode 0777)", |fx| {
            let d = fx.path("c");
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
            d
        }),
        ("writable by group or others (mode 0770)", |fx| {
            let d = fx.path("c");
            fs::create_dir(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o770)).unwrap();
            d
        }),
        ("is a symlink", |fx| {
            let target = fx.path("target");
            fs::create_dir(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
            symlink(&target, fx.path("c")).unwrap();
            fx.path("c")
        }),
        ("Not a directory", |fx| {
            fs::write(fx.path("file"), "").unwrap();
            fx.path("file/c")
        }),
    ];
    for (reason, setup) in cases {
        let fx = Fixture::new("docker-config");
        let dir = setup(&fx);
        for _ in 0..2 {
            let out = run(
                fx.cmd().env("PULLCRED_CACHE_DIR", &dir),
                &request(V1, IMAGE),
            );
            assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
            assert!(
                out.stderr.contains(reason) && out.stderr.contains("answering without a cache"),
                "{reason}: {:?}",
                out.stderr
            );
        }
        assert_eq!(helper_calls(&fx), 2, "{reason}: nothing cached");
        for d in [fx.path("c"), fx.path("target")] {
            if let Ok(items) = fs::read_dir(&d) {
                assert_eq!(
                    items.count(),
                    0,
                    "{reason}: nothing written into {}",
                    d.display()
                );
            }
        }
    }
}

#[test]
fn cache_files_are_private_to_the_caller() {
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    let dir = fs::metadata(fx.path("cache")).unwrap();
    assert_eq!((dir.mode() & 0o777, dir.uid()), (0o700, 0));
    let files: Vec<_> = fs::read_dir(fx.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "one entry and its lock file: {files:?}");
    for f in files {
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.mode() & 0o777, m.uid()), (0o600, 0), "{}", f.display());
        // File names are hashes, never parameters or secrets.
        let name = f.file_stem().unwrap().to_str().unwrap();
        assert!(
            name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
    }
}

#[test]
fn cache_list_shows_entries_without_credentials_and_purge_removes_them() {
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    fx.plugin("basic.example.com/app").response();
    let list = run(fx.cmd().args(["cache", "list"]), b"");
    assert_eq!(list.code, Some(0), "{list:#?}");
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("  helper.example.com  docker-config  refresh ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("  basic.example.com  docker-config  refresh ")),
        "{lines:?}"
    );
    assert!(!list.stdout.contains("s3cret"), "{}", list.stdout);

    let purge = run(
        fx.cmd()
            .args(["cache", "purge", "--registry", "basic.example.com"]),
        b"",
    );
    assert!(purge.stdout.starts_with("removed 1 entries"), "{purge:#?}");
    let list = run(fx.cmd().args(["cache", "list"]), b"");
    assert_eq!(list.stdout.lines().count(), 1);
    assert!(list.stdout.contains("helper.example.com"));
    let purge = run(fx.cmd().args(["cache", "purge"]), b"");
    assert!(purge.stdout.starts_with("removed 1 entries"), "{purge:#?}");
    assert!(entries(&fx).is_empty());
}

#[test]
fn sixty_four_concurrent_execs_on_a_cold_cache_mint_once() {
    let fx = Fixture::new("docker-config");
    let start = Instant::now();
    let children: Vec<_> = (0..64)
        .map(|i| {
            let mut cmd = fx.cmd();
            // A slow upstream, so the 64 really overlap.
            cmd.env("FIXTURE_DELAY", "0.5");
            std::thread::spawn(move || {
                run(
                    &mut cmd,
                    &request(V1, &format!("helper.example.com/app-{i}:v{i}")),
                )
            })
        })
        .collect();
    let runs: Vec<Run> = children.into_iter().map(|c| c.join().unwrap()).collect();
    let auths: Vec<_> = runs.iter().map(|r| single_auth(&r.response())).collect();
    assert!(
        auths.iter().all(|a| *a == auths[0]),
        "all 64 answers identical"
    );
    assert_eq!(auths[0].2, "s3cret-helper-pw");
    assert_eq!(helper_calls(&fx), 1, "exactly one mint for 64 execs");
    // Concurrent, each within its deadline: together within one.
    crate::support::assert_within(
        start.elapsed(),
        crate::support::DEFAULT_DEADLINE,
        "64 execs",
    );
}

#[test]
fn a_stuck_lock_holder_delays_but_does_not_block() {
    let fx = Fixture::new("docker-config");
    fx.prepend_config("[cache]\nlock_timeout = \"1s\"\n");
    fx.plugin(IMAGE).response();
    run(fx.cmd().args(["cache", "purge"]), b"");
    let lock_path = fs::read_dir(fx.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "lock"))
        .unwrap();
    let holder = fs::File::open(&lock_path).unwrap();
    holder.lock().unwrap();
    let out = fx.plugin(IMAGE);
    assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
    assert!(
        out.stderr.contains("minting without it"),
        "{:?}",
        out.stderr
    );
    assert_eq!(helper_calls(&fx), 2);
}

#[test]
fn sigkill_while_writing_never_leaves_a_readable_broken_entry() {
    // Every exec writes (credentials are kept 1 ms), and is killed at a random moment.
    let fx = Fixture::new("matching");
    fx.prepend_config("[cache]\nstatic_ttl = \"1ms\"\n");
    let image = "registry.example.com/app";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut killed = 0;
    let mut rounds = 0;
    while killed < 200 {
        rounds += 1;
        assert!(rounds < 5000, "could not kill 200 running execs");
        let mut child = fx
            .cmd()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .args(["get", image])
            .spawn()
            .unwrap();
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_micros(state % 4000));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        if killed % 20 == 0 {
            check_cache_and_answer(&fx, image);
        }
    }
    check_cache_and_answer(&fx, image);
}

/// Every entry file parses, and the next exec answers correctly.
fn check_cache_and_answer(fx: &Fixture, image: &str) {
    for path in entries(fx) {
        let text = fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: broken entry ({e}): {text:?}", path.display()));
        assert_eq!(v["password"], "s3cret-static-pw");
    }
    let out = fx.plugin(image);
    assert_eq!(single_auth(&out.response()).2, "s3cret-static-pw");
    assert!(
        !out.stderr.contains("treating it as a miss"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn a_cache_hit_reads_only_the_config_and_its_entry() {
    // A config this small is read whole, never through a rule index.
    crate::support::require_tool("strace");
    let fx = Fixture::new("docker-config");
    fx.plugin(IMAGE).response();
    let trace = fx.path("trace");
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-e",
        "trace=open,openat,openat2,execve,connect,socket",
        "-o",
    ])
    .arg(&trace)
    .arg(env!("CARGO_BIN_EXE_pullcred"))
    .arg("--config")
    .arg(fx.path("config.toml"))
    .env("HOME", fx.dir.path())
    .env("PULLCRED_CACHE_DIR", fx.path("cache"))
    .env(
        "PATH",
        format!("{}:/usr/bin:/bin", fx.path("bin").display()),
    );
    let out = run(&mut cmd, &request(V1, IMAGE));
    assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
    assert_eq!(helper_calls(&fx), 1);
    let trace = fs::read_to_string(trace).unwrap();
    let mut opened: Vec<String> = trace
        .lines()
        .filter(|l| l.contains("open"))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        // Before main: the dynamic loader's opens, and /proc/self/maps, which Rust's runtime
        // start-up reads (through glibc) to place the main thread's stack guard.
        .filter(|p| !p.starts_with("/etc/ld.so") && !p.contains("/lib") && p != "/proc/self/maps")
        .collect();
    opened.sort();
    let (entry_path, _) = entry(&fx);
    // The config is walked from `/` one name at a time (each directory checked, then the
    // file), and the entry opened relative to the cache dir's descriptor, by name.
    let config = fx.path("config.toml");
    let mut want: Vec<String> = std::iter::once("/".to_string())
        .chain(
            config
                .components()
                .skip(1)
                .map(|c| c.as_os_str().to_string_lossy().into_owned()),
        )
        .collect();
    // The file itself is looked at, then opened for reading.
    want.push("config.toml".into());
    want.extend([
        fx.path("cache").display().to_string(),
        entry_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned(),
    ]);
    want.sort();
    assert_eq!(
        opened, want,
        "a hit opens the config, the cache dir and one entry in it, nothing else\n{trace}"
    );
    let execs = trace.lines().filter(|l| l.contains("execve(")).count();
    assert_eq!(execs, 1, "no helper ran\n{trace}");
    assert!(!trace.contains("socket("), "no network on a hit\n{trace}");
}

#[test]
fn a_parent_swapped_during_a_mint_cannot_redirect_the_write() {
    let fx = Fixture::new("docker-config");
    fs::create_dir(fx.path("parent")).unwrap();
    let cache = fx.path("parent/cache");
    let json_files = |dir: PathBuf| -> usize {
        fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
    };
    std::thread::scope(|s| {
        let exec = s.spawn(|| {
            run(
                fx.cmd()
                    .env("PULLCRED_CACHE_DIR", &cache)
                    .env("FIXTURE_DELAY", "0.5"),
                &request(V1, IMAGE),
            )
        });
        // While the helper mints, someone swaps the cache dir's parent for a link to a
        // directory of their own.
        let start = Instant::now();
        while helper_calls(&fx) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "helper never ran"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        fs::rename(fx.path("parent"), fx.path("moved")).unwrap();
        fs::create_dir_all(fx.path("elsewhere/cache")).unwrap();
        fs::set_permissions(
            fx.path("elsewhere/cache"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        symlink(fx.path("elsewhere"), fx.path("parent")).unwrap();
        let out = exec.join().unwrap();
        assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
    });
    assert_eq!(
        json_files(fx.path("elsewhere/cache")),
        0,
        "write redirected"
    );
    assert_eq!(
        json_files(fx.path("moved/cache")),
        1,
        "written where it was opened"
    );
}

#[test]
fn an_entry_minted_in_the_future_is_a_miss_after_the_clock_steps_back() {
    let fx = Fixture::new("docker-config");
    let exec = |offset: &str| {
        run(
            fx.cmd().env("PULLCRED_TEST_CLOCK_OFFSET", offset),
            &request(V1, IMAGE),
        )
        .response()
    };
    // Minted while the clock ran a day ahead: kept 5 minutes "from tomorrow".
    exec("86400");
    assert_eq!(helper_calls(&fx), 1);
    // The clock is stepped back to the truth: that entry's times mean nothing now.
    exec("0");
    assert_eq!(helper_calls(&fx), 2, "the entry from the future was served");
    // The new entry is a normal hit.
    exec("0");
    assert_eq!(helper_calls(&fx), 2);
}

/// The cache dir's entry and lock files, by key: (has an entry, has a lock file).
fn files_by_key(fx: &Fixture) -> std::collections::BTreeMap<String, (bool, bool)> {
    let mut out = std::collections::BTreeMap::new();
    for item in fs::read_dir(fx.path("cache")).unwrap() {
        let name = item.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(key) = name.strip_suffix(".json") {
            out.entry(key.to_string()).or_insert((false, false)).0 = true;
        } else if let Some(key) = name.strip_suffix(".lock") {
            out.entry(key.to_string()).or_insert((false, false)).1 = true;
        } else if name.ends_with(".index") {
            // The config's rule index: not a key's.
        } else {
            panic!("unexpected file {name}");
        }
    }
    out
}

/// The key of the entry minted for `registry`.
fn key_of(fx: &Fixture, registry: &str) -> String {
    entries(fx)
        .into_iter()
        .find(|p| {
            let v: Value = serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap();
            v["registry"] == registry
        })
        .unwrap_or_else(|| panic!("no entry for {registry}"))
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// Rewrites `registry`'s entry to refresh and expire so many seconds from now.
fn retime(fx: &Fixture, registry: &str, refresh_in: i64, expires_in: i64) {
    let path = fx.path(&format!("cache/{}.json", key_of(fx, registry)));
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v["refresh_at_ms"] = (now_ms() + refresh_in * 1000).into();
    v["expires_at_ms"] = (now_ms() + expires_in * 1000).into();
    fs::write(&path, v.to_string()).unwrap();
}

/// A cache of `expired` entries past their expiry (credentials kept 5 minutes, 400 s ago
/// by the clock of the execs that follow), one only servable stale (due, not expired), one
/// fresh, and a lock file whose entry `cache purge` removed. Returns the keys of the
/// expired ones, the stale, the fresh, and the lone lock.
fn aged_cache(fx: &Fixture, expired: usize) -> (Vec<String>, String, String, String) {
    let mut old = Vec::new();
    for i in 0..expired {
        let host = format!("old{i}.example.com");
        fx.plugin(&format!("{host}/app")).response();
        old.push(key_of(fx, &host));
    }
    // The stale one is the fixture helper's, which a `fail` file makes fail.
    for host in [
        "helper.example.com",
        "fresh.example.com",
        "gone.example.com",
    ] {
        fx.plugin(&format!("{host}/app")).response();
    }
    retime(fx, "helper.example.com", -100, 10_000);
    retime(fx, "fresh.example.com", 10_000, 20_000);
    let (stale, fresh, gone) = (
        key_of(fx, "helper.example.com"),
        key_of(fx, "fresh.example.com"),
        key_of(fx, "gone.example.com"),
    );
    let purge = run(
        fx.cmd()
            .args(["cache", "purge", "--registry", "gone.example.com"]),
        b"",
    );
    assert!(purge.stdout.starts_with("removed 1 entries"), "{purge:#?}");
    (old, stale, fresh, gone)
}

#[test]
fn a_miss_removes_expired_entries_and_their_lock_files_and_keeps_valid_ones() {
    let fx = Fixture::new("docker-config");
    let (old, stale, fresh, gone) = aged_cache(&fx, 3);
    let before = files_by_key(&fx);
    assert_eq!(before.len(), 6, "{before:?}");
    assert_eq!(before[&gone], (false, true), "{before:?}");
    // A miss 400 s on: the old entries expired 95 s past the clock-step tolerance.
    let new = at(&fx, 400, "new.example.com/app");
    assert_eq!(single_auth(&new.response()).2, "s3cret-store-pw");
    let after = files_by_key(&fx);
    for key in old.iter().chain([&gone]) {
        assert!(!after.contains_key(key), "{key} left: {after:?}");
    }
    for key in [&stale, &fresh] {
        assert_eq!(after.get(key), Some(&(true, true)), "{key}: {after:?}");
    }
    assert_eq!(after.len(), 3, "stale, fresh and the new one: {after:?}");
    // The one only servable stale is still served when minting fails.
    fs::write(fx.path("fail"), "").unwrap();
    let out = at(&fx, 400, IMAGE);
    assert_eq!(single_auth(&out.response()).2, "s3cret-helper-pw");
    assert!(
        out.stderr.contains("answering with the cached credential"),
        "{:?}",
        out.stderr
    );
}

#[test]
fn a_miss_removes_only_a_few_expired_entries() {
    let fx = Fixture::new("docker-config");
    let (old, ..) = aged_cache(&fx, 20);
    at(&fx, 400, "new.example.com/app").response();
    let after = files_by_key(&fx);
    let removed = old.iter().filter(|k| !after.contains_key(*k)).count();
    assert!(
        (1..=8).contains(&removed),
        "a few, at most 8 per miss: {removed}"
    );
    // Nothing half-removed: an entry that stays keeps its lock file.
    assert!(after.values().all(|&(_, lock)| lock), "{after:?}");
}

#[test]
fn cache_purge_expired_removes_what_no_policy_would_serve() {
    let fx = Fixture::new("docker-config");
    let (old, stale, fresh, gone) = aged_cache(&fx, 12);
    // Someone is minting the first old key: its lock is held, so it stays (and purge does
    // not wait for it).
    let held = fs::File::open(fx.path(&format!("cache/{}.lock", old[0]))).unwrap();
    held.lock().unwrap();
    let start = Instant::now();
    let purge = run(
        fx.cmd()
            .args(["cache", "purge", "--expired"])
            .env("PULLCRED_TEST_CLOCK_OFFSET", "400"),
        b"",
    );
    assert_eq!(purge.code, Some(0), "{purge:#?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        purge.stdout.starts_with("removed 11 expired entries"),
        "{purge:#?}"
    );
    let after = files_by_key(&fx);
    for key in old[1..].iter().chain([&gone]) {
        assert!(!after.contains_key(key), "{key} left: {after:?}");
    }
    for key in [&old[0], &stale, &fresh] {
        assert_eq!(after.get(key), Some(&(true, true)), "{key}: {after:?}");
    }
    assert_eq!(after.len(), 3, "{after:?}");
    drop(held);
    // Now (real time) nothing is expired: nothing goes.
    let purge = run(fx.cmd().args(["cache", "purge", "--expired"]), b"");
    assert!(
        purge.stdout.starts_with("removed 0 expired entries"),
        "{purge:#?}"
    );
    assert_eq!(files_by_key(&fx).len(), 3);
}

/// Docker Hub's entries live under docker.io, whatever name a purge gives it.
#[test]
fn purging_docker_hub_under_another_name_purges_docker_io_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    crate::support::secret_file(&home.path().join("hub.pw"), "s3cret-hub-pw");
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        "[[registry]]\nmatch = [\"docker.io\", \"index.docker.io\", \"registry-1.docker.io\"]\nsource = \"static\"\nusername = \"me\"\npassword_file = \"hub.pw\"\n",
    )
    .unwrap();
    let cmd = || {
        let mut c = crate::support::pullcred(home.path());
        c.arg("--config").arg(&config);
        c
    };
    run(
        &mut cmd(),
        &crate::support::request(crate::support::V1, "nginx"),
    )
    .response();
    let purge = run(
        cmd().args(["cache", "purge", "--registry", "index.docker.io"]),
        b"",
    );
    assert!(
        purge.stdout.starts_with("removed 1 entries")
            && purge
                .stdout
                .contains("(index.docker.io is Docker Hub, whose entries live under docker.io)"),
        "{purge:#?}"
    );
}
