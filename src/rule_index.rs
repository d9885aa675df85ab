//! The rule index: one config file's rules, kept in the cache dir under the identity of the
//! file they were read from (device, inode, size, mtime and ctime to the nanosecond), so
//! that a cache hit builds only the rules that can match its image's host instead of
//! parsing the whole config. Rules are filed by the one host each of their patterns names;
//! a rule with a glob in a host is tried for every image. First-match order is kept by the
//! rules' numbers.
//!
//! The index is a cache of the config, never a source of truth: one that is absent,
//! unreadable, of another format or pullcred version, for another file, for another state of
//! this file, or that anyone but its owner could have written, is ignored and rebuilt from
//! the file. A file is indexed only once its timestamps can no longer hide a change: the
//! kernel stamps files with a clock that moves in ticks, so a second same-size write within
//! the first's tick could leave every field of the identity as it was.
//!
//! Layout: one JSON line (the header: what it was built from, the config without its rules,
//! the rules with a glob host), then one line per host, sorted, `host TAB [[number, rule],
//! …]`, found by binary search without reading the other lines.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::cache::store::Key;
use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH, no_such_file, split_rules};
use crate::env::Env;
use crate::secret_file;
use crate::sources::{Kind, Spec};

/// Bumped whenever the layout changes.
const FORMAT: u32 = 1;
/// The index's name is `<key>.index` in the cache dir.
const SUFFIX: &str = "index";
/// Far above what a config of the largest size pullcred reads becomes once indexed.
const MAX_INDEX_BYTES: u64 = 16 << 20;
/// How long a config must have stood unchanged before it is indexed: far longer than any
/// kernel's timestamp tick.
const SETTLED: Duration = Duration::from_secs(1);
/// A rule naming more hosts than this is tried for every image, as a glob-host rule is: its
/// text is not copied onto that many lines.
const MAX_HOSTS_FILED: usize = 16;
/// A config smaller than this (a few dozen rules) is read whole, never indexed: parsing it
/// costs less than reading an index.
const MIN_INDEXED_BYTES: i64 = 4096;

/// Which state of which file: any write changes the size, the mtime or the ctime (which no
/// one can set back), a replacement the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    dev: u64,
    ino: u64,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(stat: &rustix::fs::Stat) -> Self {
        Identity {
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime, stat.st_ctime_nsec as i64),
        }
    }

    /// Whether the file has stood unchanged for [`SETTLED`] at `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(ctime) = u64::try_from(self.ctime.0) else {
            return false;
        };
        let changed = UNIX_EPOCH + Duration::new(ctime, self.ctime.1.clamp(0, 999_999_999) as u32);
        now.duration_since(changed).is_ok_and(|d| d >= SETTLED)
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    version: String,
    path: PathBuf,
    identity: Identity,
    /// The config without its rules.
    prelude: String,
    /// Rules with a pattern whose host has a glob, or naming many hosts, by number.
    wide: Vec<(usize, String)>,
    /// The length of the host lines after the header: a file cut short is not an index.
    body: u64,
}

/// The config a request is answered from.
pub enum Loaded<T: ?Sized + 'static> {
    /// Read whole: there was no fresh index. `index` is what to build one from for the next
    /// request (the config's path, the state read and its text), when that state may be
    /// indexed; it is built only if it is stored.
    Whole {
        config: Config<T>,
        index: Option<(PathBuf, Identity, String)>,
    },
    /// From a fresh index: the config without its rules, and the index to pick them from.
    Indexed {
        prelude: Config<T>,
        index: Index,
        path: PathBuf,
    },
}

impl<T: ?Sized + Spec + 'static> Loaded<T> {
    /// The config's settings (deadline, cache, metrics), whichever way it was read.
    pub fn settings(&self) -> &Config<T> {
        match self {
            Loaded::Whole { config, .. } => config,
            Loaded::Indexed { prelude, .. } => prelude,
        }
    }

    /// Stores the index built while reading the file whole, if any, in `cache`: the cache
    /// dir the index was looked for in.
    pub fn store_index(&mut self, cache: &Cache) {
        if let Loaded::Whole { index, config } = self
            && let Some((path, identity, text)) = index.take()
            && let Some(bytes) = build(&path, identity, &text, config)
            && let Err(e) = cache.write_own(&key(&path), SUFFIX, &bytes)
        {
            tracing::debug!("rule index: {e}");
        }
    }

    /// The config with every rule that may match an image on `host` (all of them when read
    /// whole): first-match over it selects what first-match over the whole file selects.
    /// `None`: the index could not give them (read the file whole instead).
    /// `host` is asked only when the index is read.
    pub fn for_host(
        self,
        host: impl FnOnce() -> Option<String>,
        kinds: &[Kind<T>],
    ) -> Option<Config<T>> {
        match self {
            Loaded::Whole { config, .. } => Some(config),
            Loaded::Indexed {
                mut prelude,
                index,
                path,
            } => {
                let rules = index.rules_for(host().as_deref())?;
                let rules: Vec<(usize, &str)> =
                    rules.iter().map(|(n, t)| (*n, t.as_str())).collect();
                prelude.add_rules(&rules, &path, kinds).ok()?;
                Some(prelude)
            }
        }
    }
}

/// Reads the config as `Config::load_with` does, through a fresh index in `cache` when
/// there is one.
pub fn load<T: ?Sized + Spec + 'static>(
    explicit: Option<&Path>,
    kinds: &[Kind<T>],
    env: &Env,
    cache: Option<&Cache>,
) -> Result<Loaded<T>, ConfigError> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None if no_such_file(Path::new(DEFAULT_CONFIG_PATH)) => {
            return Ok(Loaded::Whole {
                config: Config::builtin_with(kinds),
                index: None,
            });
        }
        None => PathBuf::from(DEFAULT_CONFIG_PATH),
    };
    let (file, stat) = secret_file::open_config(&path, env.uid())?;
    let identity = Identity::of(&stat);
    let indexed = identity.size >= MIN_INDEXED_BYTES;
    if let Some(index) = cache
        .filter(|_| indexed)
        .and_then(|c| Index::read(c, &path, identity, env.uid()))
        && let Ok(prelude) = Config::parse_with(&index.header.prelude, &path, kinds)
    {
        return Ok(Loaded::Indexed {
            prelude,
            index,
            path,
        });
    }
    let text = secret_file::read_opened(&file, &path)?;
    let config = Config::parse_with(&text, &path, kinds)?;
    // Indexed only if large enough to be worth it, the text read is the state the identity
    // names, and that state can no longer change unseen.
    let index = (indexed
        // The kernel stamps files with the real clock, never a test's.
        && identity.settled(SystemTime::now())
        && rustix::fs::fstat(&file).is_ok_and(|after| Identity::of(&after) == identity))
    .then_some((path, identity, text));
    Ok(Loaded::Whole { config, index })
}

/// The index's key: the config's path as given, made absolute.
fn key(path: &Path) -> Key {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Key::new(&format!("rule index\n{}", absolute.display()))
}

fn build<T: ?Sized + Spec + 'static>(
    path: &Path,
    identity: Identity,
    text: &str,
    config: &Config<T>,
) -> Option<Vec<u8>> {
    let (prelude, texts) = split_rules(text)?;
    if texts.len() != config.rules.len() {
        return None;
    }
    let mut wide = Vec::new();
    let mut by_host: Vec<(String, usize)> = Vec::new();
    for (i, rule) in config.rules.iter().enumerate() {
        let hosts: Option<Vec<String>> = rule
            .patterns
            .iter()
            .map(|p| p.literal_host().filter(|h| !h.contains(['\t', '\n'])))
            .collect();
        match hosts.filter(|h| h.len() <= MAX_HOSTS_FILED) {
            Some(mut hosts) => {
                hosts.sort();
                hosts.dedup();
                by_host.extend(hosts.into_iter().map(|h| (h, i)));
            }
            None => wide.push((rule.number, texts[i].clone())),
        }
    }
    by_host.sort();
    let mut body = Vec::new();
    let mut at = 0;
    while at < by_host.len() {
        let host = &by_host[at].0;
        let mut rules = Vec::new();
        while at < by_host.len() && &by_host[at].0 == host {
            let i = by_host[at].1;
            rules.push((config.rules[i].number, texts[i].as_str()));
            at += 1;
        }
        body.extend_from_slice(host.as_bytes());
        body.push(b'\t');
        body.extend_from_slice(&serde_json::to_vec(&rules).ok()?);
        body.push(b'\n');
    }
    let header = Header {
        format: FORMAT,
        version: version(),
        path: path.to_path_buf(),
        identity,
        prelude,
        wide,
        body: body.len() as u64,
    };
    let mut out = serde_json::to_vec(&header).ok()?;
    out.push(b'\n');
    out.extend_from_slice(&body);
    // Too large to be read back: the config is read whole instead.
    (out.len() as u64 <= MAX_INDEX_BYTES).then_some(out)
}

/// The build an index is for: this version and commit (another may file hosts otherwise).
fn version() -> String {
    format!("{} {}", env!("CARGO_PKG_VERSION"), env!("PULLCRED_COMMIT"))
}

/// A fresh index, open: its header read, its host lines read only where a search looks.
pub struct Index {
    header: Header,
    file: std::fs::File,
    /// Where the host lines start and end.
    body: Range<u64>,
}

impl Index {
    /// The index of the config at `path` in this state (`identity`), if `cache` holds a
    /// fresh one that only `uid` could have written.
    fn read(cache: &Cache, path: &Path, identity: Identity, uid: u32) -> Option<Self> {
        let (file, size) = cache.open_own(&key(path), SUFFIX, uid, MAX_INDEX_BYTES)?;
        let first = line_from(&file, 0, size)?;
        let header: Header = serde_json::from_slice(&first).ok()?;
        let fresh = header.format == FORMAT
            && header.version == version()
            && header.path == path
            && header.identity == identity
            && first.len() as u64 + 1 + header.body == size;
        fresh.then_some(Index {
            header,
            file,
            body: (first.len() as u64 + 1).min(size)..size,
        })
    }

    /// The rules that may match an image on `host`, by number: those filed under it and
    /// those with a glob host (only those for `None`, an image that did not parse). `None`
    /// for a damaged index: the file is read whole instead.
    fn rules_for(&self, host: Option<&str>) -> Option<Vec<(usize, String)>> {
        let mut rules = self.header.wide.clone();
        if let Some(host) = host
            && let Some(line) = find(&self.file, self.body.clone(), host.as_bytes())?
        {
            rules.extend(serde_json::from_slice::<Vec<(usize, String)>>(&line).ok()?);
        }
        rules.sort_by_key(|r| r.0);
        Some(rules)
    }
}

/// How much of the file one read takes: a few host lines.
const CHUNK: u64 = 1024;

/// The rest of the line keyed `key` among the sorted `key TAB rest` lines in `lines` of
/// `file`, by binary search: `Some(None)` when there is none, `None` when the file cannot be
/// read or is not such lines.
fn find(file: &std::fs::File, lines: Range<u64>, key: &[u8]) -> Option<Option<Vec<u8>>> {
    // `lo` is always a line's start; `hi` a line's start or the end.
    let (mut lo, mut hi) = (lines.start, lines.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = line_start(file, lo, mid)?;
        let line = line_from(file, start, lines.end)?;
        let end = start + line.len() as u64;
        let tab = line.iter().position(|&b| b == b'\t')?;
        match line[..tab].cmp(key) {
            std::cmp::Ordering::Equal => return Some(Some(line[tab + 1..].to_vec())),
            std::cmp::Ordering::Less => lo = end + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    Some(None)
}

/// The start of the line holding `at`: just after the last newline before it, not before
/// `lo` (a line's start).
fn line_start(file: &std::fs::File, lo: u64, at: u64) -> Option<u64> {
    let mut to = at;
    while to > lo {
        let from = to.saturating_sub(CHUNK).max(lo);
        let buf = read_at(file, from, to - from)?;
        if let Some(p) = buf.iter().rposition(|&b| b == b'\n') {
            return Some(from + p as u64 + 1);
        }
        to = from;
    }
    Some(lo)
}

/// The line starting at `start`, without its newline, not past `end`.
fn line_from(file: &std::fs::File, start: u64, end: u64) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut at = start;
    while at < end {
        let buf = read_at(file, at, CHUNK.min(end - at))?;
        if let Some(p) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..p]);
            return Some(line);
        }
        line.extend_from_slice(&buf);
        at += buf.len() as u64;
    }
    Some(line)
}

/// Exactly `len` bytes at `offset`.
fn read_at(file: &std::fs::File, offset: u64, len: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::image::ImageRef;
    use crate::sources::KINDS;

    /// First-match through the index selects what first-match over the whole file does:
    /// globs before and after literal hosts, a host named twice, case, ports, paths, an
    /// image no rule matches, several patterns in one rule.
    #[test]
    fn the_index_selects_what_the_whole_file_selects() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "pw\n").unwrap();
        let rule = |pattern: &str, user: &str| {
            format!(
                "[[registry]]\nmatch = [{pattern}]\nsource = \"static\"\nusername = \"{user}\"\npassword_file = \"{}\"\n",
                pw.display()
            )
        };
        // Large enough to be indexed.
        let text = [
            format!("# {}\n", "-".repeat(MIN_INDEXED_BYTES as usize)),
            "deadline = \"7s\"\n[cache]\nrefresh_before = \"30%\"\n".to_string(),
            rule("\"r5.example.com/team\"", "u1"),
            rule("\"*.example.com\"", "u2"),
            rule("\"r5.example.com\"", "u3"),
            rule("\"R7.Example.com:5000\", \"other.example.org\"", "u4"),
            rule("\"[::1]:5000\"", "u5"),
            rule("\"r8.example.com\", \"r?.example.org\"", "u6"),
            rule("\"r5.example.com\"", "u7"),
            // More hosts than are filed: tried for every image.
            rule(
                &(0..20)
                    .map(|i| format!("\"h{i}.example.net\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                "u8",
            ),
        ]
        .concat();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, &text).unwrap();
        let cache = Cache::open(&dir.path().join("cache"), 0).unwrap();
        let env = Env::from_vars([("HOME", "/nonexistent")], 0);
        // The file must have stood unchanged a while before it is indexed.
        std::thread::sleep(SETTLED + Duration::from_millis(100));
        let mut whole = load(Some(&path), KINDS, &env, Some(&cache)).unwrap();
        assert!(matches!(&whole, Loaded::Whole { index: Some(_), .. }));
        whole.store_index(&cache);
        let full = Config::parse_with(&text, &path, KINDS).unwrap();
        for image in [
            "r5.example.com/team/app",
            "r5.example.com/other",
            "r6.example.com/app",
            "r7.example.com:5000/app",
            "R7.EXAMPLE.COM:5000/app",
            "r7.example.com/app",
            "other.example.org/app",
            "[::1]:5000/app",
            "r8.example.com/app",
            "r9.example.org/app",
            "r8.example.org:5000/app",
            "nothing.example.net/app",
            "docker.io/library/nginx",
            "h7.example.net/app",
            "h20.example.net/app",
        ] {
            let loaded = load(Some(&path), KINDS, &env, Some(&cache)).unwrap();
            assert!(matches!(loaded, Loaded::Indexed { .. }), "{image}");
            let parsed = ImageRef::parse(image).unwrap();
            let host = parsed.hostname().to_ascii_lowercase();
            let config = loaded.for_host(|| Some(host.clone()), KINDS).unwrap();
            assert_eq!(config.deadline, full.deadline);
            assert_eq!(config.cache.refresh_before, full.cache.refresh_before);
            let number = |c: &Config| {
                c.select(&parsed)
                    .map(|s| (s.rule.number, s.rule.source.describe()))
            };
            assert_eq!(number(&config), number(&full), "{image}");
        }
        // Another state of the file is another index: read whole again.
        std::fs::write(&path, text.replace("u1", "u9")).unwrap();
        let again = load(Some(&path), KINDS, &env, Some(&cache)).unwrap();
        assert!(matches!(again, Loaded::Whole { .. }));
    }

    fn file_of(text: &[u8]) -> (tempfile::NamedTempFile, Range<u64>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, b"header\n").unwrap();
        std::io::Write::write_all(&mut f, text).unwrap();
        (f, 7..7 + text.len() as u64)
    }

    #[test]
    fn every_line_is_found_and_nothing_else() {
        // Lines shorter than a read, and longer, around the probes.
        for width in [1, 40, 3000] {
            let hosts: Vec<String> = (0..200).map(|i| format!("r{i:03}.example.com")).collect();
            let pad = "x".repeat(width);
            let text: String = hosts.iter().map(|h| format!("{h}\t[{h}{pad}]\n")).collect();
            let (f, body) = file_of(text.as_bytes());
            for h in &hosts {
                assert_eq!(
                    find(f.as_file(), body.clone(), h.as_bytes()),
                    Some(Some(format!("[{h}{pad}]").into_bytes())),
                    "{h}"
                );
            }
            for missing in ["", "a", "r000.example.co", "r1000.example.com", "zzz"] {
                assert_eq!(
                    find(f.as_file(), body.clone(), missing.as_bytes()),
                    Some(None)
                );
            }
        }
        let (f, body) = file_of(b"");
        assert_eq!(find(f.as_file(), body, b"a"), Some(None));
        let (f, body) = file_of(b"a\tx");
        assert_eq!(find(f.as_file(), body, b"a"), Some(Some(b"x".to_vec())));
        // Not host lines: damaged, not absent.
        let (f, body) = file_of(b"garbage without a tab\n");
        assert_eq!(find(f.as_file(), body, b"a"), None);
    }
}
