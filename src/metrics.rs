//! Metrics for operators, as a node_exporter textfile (`[metrics] textfile`): rewritten after
//! each mint (never on a cache hit) in Prometheus' text format, atomically (a temp file
//! renamed over the old one) and under a lock beside it, so that concurrent processes add
//! up instead of losing each other's counts. Each process carries the counts forward from
//! the file it replaces. Labels are the source and the registry host; never a credential.
//!
//! The textfile dir usually belongs to node_exporter's user, who may plant anything in it
//! (links, FIFOs, hard links, files of its own), so it is worked like the cache dir: opened
//! once (`O_NOFOLLOW`), checked on that descriptor (a dir that group or others may write is
//! refused unless sticky), and every open, rename and removal is relative to it; no name in
//! it is followed through a link, the temp file is created exclusively, the lock and the old
//! file are opened without blocking and used only if they are regular files (the old file
//! only if it is also ours, single-linked and small). Metrics are best effort: any of this
//! failing skips (or restarts the counts of) one write, with a warning, never the answer.
//!
//! Label sets are capped: each source keeps at most `max_registries` registry labels, and
//! the hosts beyond them are counted together under `registry="other"` (a wildcard rule meets
//! as many hosts as pods name).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{self as fs_at, AtFlags, Mode, OFlags};
use rustix::io::Errno;

/// How long to wait for another process's update before giving this one up (metrics are
/// best effort; the answer never waits long for them).
const LOCK_WAIT: Duration = Duration::from_millis(200);
/// A textfile larger than this is not ours (capped, ours stay far below it): its counts are
/// not carried over.
const MAX_TEXTFILE_BYTES: u64 = 16 << 20;
/// Registry labels per source unless `[metrics] max_registries` says otherwise.
pub const DEFAULT_MAX_REGISTRIES: usize = 100;
/// The most `max_registries` may be: keeps a textfile within a few megabytes.
pub const MAX_REGISTRIES_LIMIT: usize = 1000;
/// The registry label under which the hosts beyond `max_registries` are counted. No registry
/// host is called that: a name without a dot or port is a Docker Hub namespace.
pub const OVERFLOW: &str = "other";

/// The `[metrics]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The node_exporter textfile each mint rewrites.
    pub textfile: PathBuf,
    /// Registry labels kept per source; the rest are counted under [`OVERFLOW`].
    pub max_registries: usize,
}

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

/// Flags for every open inside the textfile dir: a link there is never followed, and a FIFO
/// never blocks the open.
fn inside() -> OFlags {
    OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
}

/// Records `event` for `source` and `registry` in the textfile. Errors are returned for a
/// warning; the request's answer does not depend on them.
pub fn record(
    settings: &Settings,
    source: &str,
    registry: &str,
    event: Event,
    now: SystemTime,
) -> Result<(), MetricsError> {
    let path = &settings.textfile;
    let dir_path = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| MetricsError::NotAName(path.clone()))?;
    let dir = open_dir(dir_path).map_err(|why| MetricsError::Dir {
        path: dir_path.to_path_buf(),
        why,
    })?;
    let lock_name = format!(".{name}.lock");
    let _lock = lock(&dir, &lock_name).map_err(|why| MetricsError::Lock {
        path: dir_path.join(&lock_name),
        why,
    })?;
    let mut samples = read_old(&dir, name).unwrap_or_else(|why| {
        tracing::warn!(
            "metrics: {}: {why}; its counts are not carried over",
            path.display()
        );
        Samples::new()
    });
    fold(&mut samples, settings.max_registries);
    let registry = label(&samples, source, registry, settings.max_registries);
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
    write(&dir, name, &render(&samples)).map_err(|e| MetricsError::Write {
        path: path.clone(),
        cause: e,
    })
}

/// Why the textfile was not updated (a warning: the request's answer does not depend on it).
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}: not a file name", .0.display())]
    NotAName(PathBuf),
    #[error("{}: {why}; not writing metrics there", path.display())]
    Dir { path: PathBuf, why: Fault },
    #[error("{}: {why}; this update is skipped", path.display())]
    Lock { path: PathBuf, why: Fault },
    #[error("{}: write: {cause}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// What is wrong with a name in the textfile dir, or the dir itself.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("is a symlink")]
    Symlink,
    #[error("not a directory")]
    NotDir,
    #[error("not a regular file")]
    NotRegular,
    #[error("writable by group or others without the sticky bit (mode {0:04o})")]
    Writable(u32),
    #[error(transparent)]
    Owner(crate::secret_file::Unsafe),
    #[error("has other hard links")]
    HardLinks,
    #[error("larger than {MAX_TEXTFILE_BYTES} bytes")]
    TooLarge,
    #[error("busy")]
    Busy,
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

impl From<Errno> for Fault {
    fn from(e: Errno) -> Self {
        Fault::Io(e.into())
    }
}

/// The textfile dir, held open. Whoever owns it (node_exporter's user, usually) may plant
/// names in it, which is survivable; a dir that group or others may write without the sticky
/// bit lets anyone on the node do so, and is refused. Checked on the descriptor itself.
fn open_dir(dir: &Path) -> Result<OwnedFd, Fault> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = fs_at::openat(fs_at::CWD, dir, flags, Mode::empty()).map_err(|e| match e {
        // A link is refused by O_NOFOLLOW as "not a directory" (or ELOOP); say which.
        Errno::LOOP | Errno::NOTDIR => match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => Fault::Symlink,
            _ => Fault::NotDir,
        },
        e => e.into(),
    })?;
    let stat = fs_at::fstat(&fd)?;
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(Fault::Writable(mode));
    }
    Ok(fd)
}

/// Takes the textfile's lock, waiting at most [`LOCK_WAIT`]. The lock file is opened
/// read-only (a lock needs no more), without following a link or blocking on a FIFO, and
/// used only if it is a regular file.
fn lock(dir: &OwnedFd, name: &str) -> Result<File, Fault> {
    let fd = fs_at::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CREATE | inside(),
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| match e {
        Errno::LOOP => Fault::Symlink,
        e => e.into(),
    })?;
    let file = File::from(fd);
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(Fault::NotRegular),
        Err(e) => return Err(Fault::Io(e)),
    }
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => return Err(Fault::Busy),
            Err(fs::TryLockError::Error(e)) => return Err(Fault::Io(e)),
        }
    }
}

/// The counts in the textfile being replaced: none if there is none; `Err` (why) if what is
/// there is not a file this process could have written: not a regular file, someone else's,
/// linked elsewhere too, or too large.
fn read_old(dir: &OwnedFd, name: &str) -> Result<Samples, Fault> {
    let fd = match fs_at::openat(dir, name, OFlags::RDONLY | inside(), Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Samples::new()),
        Err(Errno::LOOP) => return Err(Fault::Symlink),
        Err(e) => return Err(e.into()),
    };
    let stat = fs_at::fstat(&fd)?;
    let uid = rustix::process::geteuid().as_raw();
    if !fs_at::FileType::from_raw_mode(stat.st_mode).is_file() {
        return Err(Fault::NotRegular);
    }
    if stat.st_uid != uid {
        return Err(Fault::Owner(crate::secret_file::Unsafe::Owner {
            owner: stat.st_uid,
            want: Some(uid),
        }));
    }
    if stat.st_nlink != 1 {
        return Err(Fault::HardLinks);
    }
    if stat.st_size as u64 > MAX_TEXTFILE_BYTES {
        return Err(Fault::TooLarge);
    }
    let mut text = Vec::new();
    File::from(fd)
        .take(MAX_TEXTFILE_BYTES)
        .read_to_end(&mut text)
        .map_err(Fault::Io)?;
    Ok(parse(&String::from_utf8_lossy(&text)))
}

/// Writes `text` to a temp file beside `name`, created exclusively (a planted name is removed
/// and the creation retried), made 0644 for node_exporter, fsynced and renamed over `name`.
fn write(dir: &OwnedFd, name: &str, text: &str) -> std::io::Result<()> {
    // Our pid: no other live process writes this name, and the lock keeps our own writes
    // apart. Whatever is there is a leftover of a killed writer, or planted.
    let tmp = format!(".{name}.{}.tmp", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | inside();
    let mut attempts = 0;
    let fd = loop {
        match fs_at::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => break fd,
            Err(Errno::EXIST) if attempts < 3 => {
                attempts += 1;
                // Removes the name only: a link's target is untouched.
                let _ = fs_at::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            }
            Err(e) => return Err(e.into()),
        }
    };
    let result = (|| {
        fs_at::fchmod(&fd, Mode::from_raw_mode(0o644))?;
        let mut file = File::from(fd);
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs_at::renameat(dir, tmp.as_str(), dir, name)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs_at::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    result
}

/// The registry label to count `registry` under: its own if it has one already or there is
/// room for one more for `source`, else [`OVERFLOW`].
fn label<'a>(samples: &Samples, source: &str, registry: &'a str, max: usize) -> &'a str {
    let named: std::collections::BTreeSet<&str> = samples
        .keys()
        .filter(|(_, s, r)| s == source && r != OVERFLOW)
        .map(|(_, _, r)| r.as_str())
        .collect();
    if named.contains(registry) || named.len() < max {
        registry
    } else {
        OVERFLOW
    }
}

/// Folds each source's registries beyond `max` (a file written before the cap, or with a
/// higher one) into [`OVERFLOW`]: those that succeeded most recently keep their labels;
/// counters add up under `other`, its gauges take the latest value.
fn fold(samples: &mut Samples, max: usize) {
    // source -> registry -> last success (or -inf).
    let mut seen: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for ((family, source, registry), value) in samples.iter() {
        if registry == OVERFLOW {
            continue;
        }
        let last = seen
            .entry(source)
            .or_default()
            .entry(registry)
            .or_insert(f64::NEG_INFINITY);
        if family == LAST_SUCCESS.name {
            *last = last.max(*value);
        }
    }
    let mut beyond: Vec<(String, String)> = Vec::new();
    for (source, registries) in seen {
        if registries.len() <= max {
            continue;
        }
        let mut ranked: Vec<(&str, f64)> = registries.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        beyond.extend(
            ranked
                .into_iter()
                .skip(max)
                .map(|(r, _)| (source.to_string(), r.to_string())),
        );
    }
    for (source, registry) in beyond {
        for family in FAMILIES {
            let Some(value) =
                samples.remove(&(family.name.into(), source.clone(), registry.clone()))
            else {
                continue;
            };
            let into = samples
                .entry((family.name.into(), source.clone(), OVERFLOW.into()))
                .or_insert(if family.kind == "counter" { 0.0 } else { value });
            if family.kind == "counter" {
                *into += value;
            } else {
                *into = into.max(value);
            }
        }
    }
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
        let settings = Settings {
            textfile: path.clone(),
            max_registries: DEFAULT_MAX_REGISTRIES,
        };
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
            record(&settings, "ecr", odd, event, now).unwrap();
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

    fn sample(family: &Family, registry: &str) -> (String, String, String) {
        (family.name.into(), "ecr".into(), registry.into())
    }

    #[test]
    fn registries_beyond_the_cap_count_as_other() {
        let mut samples = Samples::new();
        for (i, r) in ["a.io", "b.io", "c.io"].iter().enumerate() {
            samples.insert(sample(&MINTS, r), 2.0);
            samples.insert(sample(&LAST_SUCCESS, r), 100.0 + i as f64);
            samples.insert(sample(&EXPIRY, r), 200.0 - i as f64);
        }
        samples.insert(sample(&MINTS, OVERFLOW), 5.0);
        // Room for one more, then none; a known one keeps its label, another source has room.
        assert_eq!(label(&samples, "ecr", "d.io", 4), "d.io");
        assert_eq!(label(&samples, "ecr", "d.io", 3), OVERFLOW);
        assert_eq!(label(&samples, "ecr", "a.io", 3), "a.io");
        assert_eq!(label(&samples, "gcp", "d.io", 3), "d.io");
        // Folded to one: the most recent success (c.io) keeps its label.
        fold(&mut samples, 1);
        let left: Vec<_> = samples
            .keys()
            .map(|(f, _, r)| (f.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            left,
            [
                (EXPIRY.name, "c.io"),
                (EXPIRY.name, OVERFLOW),
                (LAST_SUCCESS.name, "c.io"),
                (LAST_SUCCESS.name, OVERFLOW),
                (MINTS.name, "c.io"),
                (MINTS.name, OVERFLOW),
            ]
        );
        assert_eq!(samples[&sample(&MINTS, OVERFLOW)], 9.0, "counters add up");
        assert_eq!(
            samples[&sample(&LAST_SUCCESS, OVERFLOW)],
            101.0,
            "gauges: the latest"
        );
        assert_eq!(samples[&sample(&EXPIRY, OVERFLOW)], 200.0);
        // Within the cap nothing moves.
        let before = samples.clone();
        fold(&mut samples, 1);
        assert_eq!(samples, before);
    }
}
