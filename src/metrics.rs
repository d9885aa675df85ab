//! Metrics for operators, as a node_exporter textfile (`[metrics] textfile`): rewritten after
//! each mint (never on a cache hit) in Prometheus' text format, atomically (a temp file
//! renamed over the old one) and under a lock beside it, so that concurrent processes add
//! up instead of losing each other's counts. Each process carries the counts forward from
//! the file it replaces. Labels are the source and the registry host; never a credential.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for another process's update before giving this one up (metrics are
/// best effort; the answer never waits long for them).
const LOCK_WAIT: Duration = Duration::from_millis(200);

/// What happened in one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A credential was minted; it expires then (if it says).
    Minted { expires_at: Option<SystemTime> },
    /// Minting failed, and nothing valid was cached.
    Failed,
    /// Minting failed; a still-valid cached credential was answered instead.
    ServedStale { expires_at: SystemTime },
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const MINTS: Family = Family {
    name: "pullcred_mints_total",
    kind: "counter",
    help: "Credentials minted, by source and registry.",
};
const FAILURES: Family = Family {
    name: "pullcred_mint_failures_total",
    kind: "counter",
    help: "Mints that failed (answered with an error or with a stale credential).",
};
const STALE: Family = Family {
    name: "pullcred_stale_serves_total",
    kind: "counter",
    help: "Answers with a still-valid cached credential after a failed mint.",
};
const LAST_SUCCESS: Family = Family {
    name: "pullcred_last_mint_success_timestamp_seconds",
    kind: "gauge",
    help: "When a mint last succeeded (Unix time).",
};
const EXPIRY: Family = Family {
    name: "pullcred_credential_expiry_timestamp_seconds",
    kind: "gauge",
    help: "When the cached credential expires (Unix time); seconds left: this minus time().",
};
const FAMILIES: [&Family; 5] = [&MINTS, &FAILURES, &STALE, &LAST_SUCCESS, &EXPIRY];

/// (family, source, registry) -> value.
type Samples = BTreeMap<(String, String, String), f64>;

/// Records `event` for `source` and `registry` in the textfile at `path`. Errors are
/// returned for a warning; the request's answer does not depend on them.
pub fn record(
    path: &Path,
    source: &str,
    registry: &str,
    event: Event,
    now: SystemTime,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{}: {what}: {e}", path.display());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?
        .to_string_lossy()
        .into_owned();
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{name}.lock")))
        .map_err(|e| io("lock", e))?;
    let start = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!("{}: busy; this update is skipped", path.display()));
            }
            Err(fs::TryLockError::Error(e)) => return Err(io("lock", e)),
        }
    }
    let mut samples = fs::read_to_string(path)
        .map(|t| parse(&t))
        .unwrap_or_default();
    let at = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64)
    };
    let mut bump = |family: &Family, by: f64| {
        *samples
            .entry((family.name.into(), source.into(), registry.into()))
            .or_insert(0.0) += by;
    };
    match event {
        Event::Minted { expires_at } => {
            bump(&MINTS, 1.0);
            bump(&FAILURES, 0.0);
            bump(&STALE, 0.0);
            set(&mut samples, &LAST_SUCCESS, source, registry, at(now));
            if let Some(e) = expires_at {
                set(&mut samples, &EXPIRY, source, registry, at(e));
            }
        }
        Event::Failed => {
            bump(&MINTS, 0.0);
            bump(&FAILURES, 1.0);
            bump(&STALE, 0.0);
        }
        Event::ServedStale { expires_at } => {
            bump(&MINTS, 0.0);
            bump(&FAILURES, 1.0);
            bump(&STALE, 1.0);
            set(&mut samples, &EXPIRY, source, registry, at(expires_at));
        }
    }
    // Write beside it and rename: the collector reads the old file or the new one.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(render(&samples).as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    Ok(())
}

fn set(samples: &mut Samples, family: &Family, source: &str, registry: &str, value: f64) {
    samples.insert((family.name.into(), source.into(), registry.into()), value);
}

/// `name{source="…",registry="…"} value` lines of our families; the rest is ignored.
fn parse(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        if !FAMILIES.iter().any(|f| f.name == name) {
            continue;
        }
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |key: &str| {
            let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
            let mut value = String::new();
            let mut chars = labels[start..].chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => return Some(value),
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            None
        };
        if let (Some(s), Some(r), Ok(v)) =
            (label("source"), label("registry"), value.trim().parse())
        {
            out.insert((name.to_string(), s, r), v);
        }
    }
    out
}

/// Prometheus' text exposition format: HELP and TYPE per family, one sample per line.
fn render(samples: &Samples) -> String {
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::new();
    for family in FAMILIES {
        let rows: Vec<_> = samples
            .iter()
            .filter(|((name, _, _), _)| name == family.name)
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("# HELP {} {}\n", family.name, family.help));
        out.push_str(&format!("# TYPE {} {}\n", family.name, family.kind));
        for ((name, source, registry), value) in rows {
            out.push_str(&format!(
                "{name}{{source=\"{}\",registry=\"{}\"}} {value}\n",
                escape(source),
                escape(registry)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_carry_over_and_labels_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pullcred.prom");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let odd = "reg\"istry\\x";
        for event in [
            Event::Minted {
                expires_at: Some(now + Duration::from_secs(3600)),
            },
            Event::Failed,
            Event::ServedStale {
                expires_at: now + Duration::from_secs(60),
            },
            Event::Minted { expires_at: None },
        ] {
            record(&path, "ecr", odd, event, now).unwrap();
        }
        let samples = parse(&fs::read_to_string(&path).unwrap());
        let get = |f: &str| samples[&(f.to_string(), "ecr".to_string(), odd.to_string())];
        assert_eq!(get("pullcred_mints_total"), 2.0);
        assert_eq!(get("pullcred_mint_failures_total"), 2.0);
        assert_eq!(get("pullcred_stale_serves_total"), 1.0);
        assert_eq!(
            get("pullcred_credential_expiry_timestamp_seconds"),
            1_800_000_060.0
        );
    }
}
