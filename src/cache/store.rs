//! The cache store: one file per key under a private directory, replaced atomically,
//! guarded by a per-key lock file. It keeps and finds entries; when an entry is served,
//! refreshed or waited for is `policy`'s.
//!
//! Lock files are separate from data files on purpose: an entry is replaced by `rename`, so a
//! lock on the entry itself would lock an inode that a writer is about to unlink, and two
//! processes could each believe they hold it (measured: over half the updates were lost).
//!
//! A lock file is removed only with its entry (expired, or already gone), by a process
//! holding that lock: it unlinks the entry, then the lock file. Whoever opened the lock file
//! before that and locks it afterwards holds an unlinked inode, not the key's lock; so every
//! locker checks, once locked, that the name still leads to the inode it locked, and
//! otherwise opens the name again.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{self as fs_at, AtFlags, Mode, OFlags};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::credential::{Scope, Secret};
use crate::secret_file::only_owner_writes;

/// Bumped whenever the entry layout changes; entries of other versions are misses.
pub const FORMAT_VERSION: u32 = 1;
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

/// A cache key: a hash of everything that changes the credential. Never a secret, and the
/// hash keeps even the parameters out of file names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn new(material: &str) -> Self {
        let digest = Sha256::digest(material.as_bytes());
        Key(hex(&digest[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cached credential and its timing (set by `policy`).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The host the credential was minted for.
    pub mint_host: String,
    pub source: String,
    pub minted_at: SystemTime,
    /// From here on the entry is not served; a request mints anew.
    pub refresh_at: SystemTime,
    /// From here on the credential does not work; not even served when minting fails.
    pub expires_at: SystemTime,
    pub username: String,
    pub password: Secret,
    /// What the credential is for, when narrower than the registry.
    pub scope: Scope,
}

/// The file layout of an entry. The scope's fields are written only when set, so entries of
/// registry-wide credentials are byte for byte what they were before scopes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    version: u32,
    /// The mint host (named `registry` since format version 1).
    registry: String,
    source: String,
    minted_at_ms: u64,
    refresh_at_ms: u64,
    expires_at_ms: u64,
    username: String,
    password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope_path: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    per_image: bool,
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[derive(Debug, thiserror::Error)]
#[error("cache dir {dir}: {reason}")]
pub struct CacheError {
    pub dir: PathBuf,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("timed out after {0:?} waiting for another pullcred")]
    Timeout(Duration),
    #[error("{0}")]
    Io(std::io::Error),
}

/// Held while minting a key; dropping it (or the process dying) releases the lock.
pub struct Lock {
    _file: File,
}

/// A cache directory that passed its checks, held open: every operation is relative to this
/// descriptor (`openat`, `renameat`, `unlinkat`), so swapping a parent directory or the dir
/// itself after the checks cannot redirect a read or a write.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    fd: OwnedFd,
}

/// Flags for every open inside the dir: a link inside it is never followed.
fn inside() -> OFlags {
    OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Cache {
    /// Opens (creating it 0700 if missing) a cache dir owned by `uid`. A dir that is a
    /// symlink, owned by someone else, or writable by others is refused: whoever controls it
    /// could plant credentials. The checks are made on the opened descriptor itself.
    pub fn open(dir: &Path, uid: u32) -> Result<Self, CacheError> {
        Self::open_dir(dir, uid, true)
    }

    /// Opens an existing cache dir as [`Cache::open`] does, creating nothing: `None` when
    /// there is none or it is refused.
    pub fn open_existing(dir: &Path, uid: u32) -> Option<Self> {
        Self::open_dir(dir, uid, false).ok()
    }

    fn open_dir(dir: &Path, uid: u32, create: bool) -> Result<Self, CacheError> {
        let err = |reason: String| CacheError {
            dir: dir.into(),
            reason,
        };
        let open = || {
            fs_at::openat(
                fs_at::CWD,
                dir,
                OFlags::RDONLY | OFlags::DIRECTORY | inside(),
                Mode::empty(),
            )
        };
        let fd = match open() {
            Err(rustix::io::Errno::NOENT) if create => {
                if let Some(parent) = dir.parent() {
                    fs::create_dir_all(parent).map_err(|e| err(format!("cannot create: {e}")))?;
                }
                match DirBuilder::new().mode(0o700).create(dir) {
                    Ok(()) => {}
                    // Another process created it meanwhile; the checks below still apply.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(err(format!("cannot create: {e}"))),
                }
                open()
            }
            other => other,
        };
        let fd = fd.map_err(|e| match e {
            // A link is refused by O_NOFOLLOW as "not a directory" (or ELOOP); say which.
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                match fs::symlink_metadata(dir) {
                    Ok(m) if m.file_type().is_symlink() => err("is a symlink".into()),
                    Ok(_) => err("not a directory".into()),
                    Err(e) => err(e.to_string()),
                }
            }
            e => err(std::io::Error::from(e).to_string()),
        })?;
        let stat = fs_at::fstat(&fd).map_err(|e| err(std::io::Error::from(e).to_string()))?;
        only_owner_writes(stat.st_uid, stat.st_mode, uid).map_err(|e| err(e.to_string()))?;
        Ok(Cache {
            dir: dir.into(),
            fd,
        })
    }

    /// A file of pullcred's own beside the entries (`<key>.<suffix>`, the rule index),
    /// opened only if it is a regular file `uid` owns that no one else may write, of at most
    /// `max` bytes (its size is returned with it); `None` otherwise (such a file is rebuilt,
    /// never trusted). It is only ever replaced whole, so the open file stays as it was.
    pub fn open_own(&self, key: &Key, suffix: &str, uid: u32, max: u64) -> Option<(File, u64)> {
        use std::os::unix::fs::MetadataExt;
        let name = format!("{}.{suffix}", key.0);
        let file = self
            .open_at(&name, OFlags::RDONLY | OFlags::NONBLOCK, 0)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > max {
            return None;
        }
        only_owner_writes(meta.uid(), meta.mode(), uid).ok()?;
        Some((file, meta.len()))
    }

    /// Writes `<key>.<suffix>` as entries are written (a private temp file renamed over it),
    /// without waiting for the disk: a lost one is rebuilt.
    pub fn write_own(&self, key: &Key, suffix: &str, body: &[u8]) -> std::io::Result<()> {
        self.replace(key, &format!("{}.{suffix}", key.0), body, false)
    }

    /// Puts `body` at `name` (one of `key`'s files) through a private temp file renamed
    /// over it, so a reader sees the old file or the new one, never a part; with `durable`,
    /// the file and the rename are synced to disk first.
    fn replace(&self, key: &Key, name: &str, body: &[u8], durable: bool) -> std::io::Result<()> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = format!("{}.tmp.{}.{nanos}", key.0, std::process::id());
        let result = (|| {
            let mut file =
                self.open_at(&tmp, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL, 0o600)?;
            file.write_all(body)?;
            if durable {
                file.sync_all()?;
            }
            fs_at::renameat(&self.fd, tmp.as_str(), &self.fd, name)?;
            if durable {
                // Make the rename itself durable where the dir is on a disk.
                fs_at::fsync(&self.fd)?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs_at::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn open_at(&self, name: &str, flags: OFlags, mode: u32) -> std::io::Result<File> {
        let fd = fs_at::openat(&self.fd, name, flags | inside(), Mode::from_raw_mode(mode))?;
        Ok(File::from(fd))
    }

    /// The entry for `key`, or `None` for a miss. Missing, unreadable, corrupt and
    /// other-version entries are all misses: the next mint replaces them.
    pub fn read(&self, key: &Key) -> Option<Entry> {
        let name = entry_name(key);
        match self.read_entry(&name) {
            Ok(entry) => Some(entry),
            Err(EntryError::Missing) => None,
            Err(why) => {
                tracing::warn!(
                    "{}: {why}; treating it as a miss",
                    self.dir.join(name).display()
                );
                None
            }
        }
    }

    /// Takes the key's lock, waiting at most `timeout`.
    pub fn lock(&self, key: &Key, timeout: Duration) -> Result<Lock, LockError> {
        let name = lock_name(key);
        let open = || self.open_at(&name, OFlags::RDWR | OFlags::CREATE, 0o600);
        let mut file = open().map_err(LockError::Io)?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let retry = match file.try_lock() {
                Ok(()) if self.still_at(&file, &name).map_err(LockError::Io)? => {
                    return Ok(Lock { _file: file });
                }
                // Locked a lock file that was removed meanwhile: the key's lock is the one
                // at the name now; try that at once (waiting would let it be removed again).
                Ok(()) => {
                    file = open().map_err(LockError::Io)?;
                    true
                }
                Err(fs::TryLockError::WouldBlock) => false,
                Err(fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
            };
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(LockError::Timeout(timeout));
            }
            if retry {
                continue;
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The key's lock if nobody holds it, without waiting.
    fn try_lock(&self, key: &str) -> std::io::Result<Option<Lock>> {
        let name = format!("{key}.lock");
        let file = self.open_at(&name, OFlags::RDWR | OFlags::CREATE, 0o600)?;
        match file.try_lock() {
            Ok(()) if self.still_at(&file, &name)? => Ok(Some(Lock { _file: file })),
            Ok(()) | Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether `name` in the dir is still the file `locked` (not removed or replaced since
    /// it was opened).
    fn still_at(&self, locked: &File, name: &str) -> std::io::Result<bool> {
        let held = fs_at::fstat(locked)?;
        match fs_at::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(now) => Ok((now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes an entry crash-safely: a private temp file, fsync, rename over the old one.
    /// A reader sees the old entry or the new one, never a part.
    pub fn write(&self, key: &Key, entry: &Entry) -> std::io::Result<()> {
        let wire = WireEntry {
            version: FORMAT_VERSION,
            registry: entry.mint_host.clone(),
            source: entry.source.clone(),
            minted_at_ms: to_ms(entry.minted_at),
            refresh_at_ms: to_ms(entry.refresh_at),
            expires_at_ms: to_ms(entry.expires_at),
            username: entry.username.clone(),
            password: entry.password.expose().to_string(),
            scope_path: entry.scope.path.clone(),
            per_image: entry.scope.per_image,
        };
        let body = serde_json::to_vec(&wire).map_err(std::io::Error::other)?;
        self.replace(key, &entry_name(key), &body, true)
    }

    /// Removes `key`'s entry (not its lock file). Call with the key's lock held.
    pub fn remove(&self, key: &Key) -> std::io::Result<()> {
        fs_at::unlinkat(&self.fd, entry_name(key).as_str(), AtFlags::empty())?;
        Ok(())
    }

    /// Removes temp files a killed writer of `key` left behind. Call with the key's lock held:
    /// then no live writer of that key has a temp file.
    pub fn sweep_temp_files(&self, key: &Key) {
        self.remove_temp_files(Some(key));
    }

    /// The names in the dir (only UTF-8 ones: every name pullcred writes is).
    fn names(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for item in fs_at::Dir::read_from(&self.fd)? {
            if let Ok(name) = item?.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// Removes temp files of `key`, or of every key.
    fn remove_temp_files(&self, key: Option<&Key>) {
        let Ok(names) = self.names() else {
            return;
        };
        for name in names {
            let ours = match key {
                Some(k) => name.starts_with(&format!("{}.tmp.", k.0)),
                None => name.contains(".tmp."),
            };
            if ours {
                let _ = fs_at::unlinkat(&self.fd, name.as_str(), AtFlags::empty());
            }
        }
    }

    /// Every entry file: its key, and the entry or why it cannot be read.
    pub fn entries(&self) -> std::io::Result<Vec<(String, Result<Entry, EntryError>)>> {
        let mut out = Vec::new();
        for name in self.names()? {
            let Some(key) = name.strip_suffix(".json") else {
                continue;
            };
            out.push((key.to_string(), self.read_entry(&name)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes entries (all, or those for `registry`) and stray temp files; returns how many
    /// entries went. Lock files stay (removing one takes its lock, which this does not wait
    /// for); [`Cache::remove_expired`] removes them once their entries are gone.
    pub fn purge(&self, registry: Option<&str>) -> std::io::Result<usize> {
        let mut removed = 0;
        for (key, entry) in self.entries()? {
            let matches = match (registry, &entry) {
                (None, _) => true,
                (Some(r), Ok(e)) => e.mint_host.eq_ignore_ascii_case(r),
                (Some(_), Err(_)) => false,
            };
            if matches {
                fs_at::unlinkat(&self.fd, format!("{key}.json").as_str(), AtFlags::empty())?;
                removed += 1;
            }
        }
        if registry.is_none() {
            self.remove_temp_files(None);
        }
        Ok(removed)
    }

    /// Removes the entries that `removable` says no policy would serve any more, their lock
    /// files and their killed writers' temp files, and lock files left without an entry;
    /// returns how many entries went. Each key is removed only under its lock, taken without
    /// waiting: a key someone holds is left alone. With a `limit`, looks at only that many
    /// keys, from a different place in the dir each time, so each call costs little and
    /// repeated calls get round to every key.
    pub fn remove_expired(
        &self,
        removable: impl Fn(&Entry) -> bool,
        limit: Option<usize>,
    ) -> std::io::Result<usize> {
        // Key -> its names in the dir; only names pullcred writes.
        let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for name in self.names()? {
            if let Some(key) = key_of_name(&name) {
                keys.entry(key.to_string()).or_default().push(name);
            }
        }
        let keys: Vec<_> = keys.into_iter().collect();
        let look = limit.unwrap_or(keys.len()).min(keys.len());
        let start = match limit {
            Some(_) if !keys.is_empty() => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                (nanos ^ std::process::id()) as usize % keys.len()
            }
            _ => 0,
        };
        let mut removed = 0;
        for (key, names) in keys.iter().cycle().skip(start).take(look) {
            if self.remove_if_expired(key, names, &removable)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes `key`'s files if its entry is removable or missing; `true` if an entry went.
    fn remove_if_expired(
        &self,
        key: &str,
        names: &[String],
        removable: &impl Fn(&Entry) -> bool,
    ) -> std::io::Result<bool> {
        let entry = format!("{key}.json");
        // Whether the entry may go: `Some(true)` if there is one, `Some(false)` if there is
        // none; `None` if it stays (valid, or unreadable: not ours to judge).
        let verdict = || match self.read_entry(&entry) {
            Ok(e) => removable(&e).then_some(true),
            Err(EntryError::Missing) => Some(false),
            Err(_) => None,
        };
        // Look before locking, so a valid entry costs one read; then again under the lock.
        if verdict().is_none() {
            return Ok(false);
        }
        let Some(_lock) = self.try_lock(key)? else {
            return Ok(false);
        };
        let Some(had_entry) = verdict() else {
            return Ok(false);
        };
        let unlink = |name: &str| match fs_at::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(std::io::Error::from(e)),
        };
        // The entry before the lock file: whoever locks the key after the lock file is gone
        // finds no entry to serve.
        unlink(&entry)?;
        for name in names.iter().filter(|n| n.contains(".tmp.")) {
            unlink(name)?;
        }
        unlink(&format!("{key}.lock"))?;
        Ok(had_entry)
    }

    fn read_entry(&self, name: &str) -> Result<Entry, EntryError> {
        // Non-blocking: opening a FIFO planted in an entry's place must not hang the request.
        let file = match self.open_at(name, OFlags::RDONLY | OFlags::NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(EntryError::Missing),
            Err(e) => return Err(EntryError::Io(e)),
        };
        decode_entry(file)
    }
}

fn entry_name(key: &Key) -> String {
    format!("{}.json", key.0)
}

fn lock_name(key: &Key) -> String {
    format!("{}.lock", key.0)
}

/// The key a name in the cache dir belongs to, if it is one pullcred writes: an entry
/// (`<key>.json`), a lock file (`<key>.lock`) or a temp file (`<key>.tmp.<pid>.<ns>`).
fn key_of_name(name: &str) -> Option<&str> {
    let key = name.get(..32)?;
    let rest = &name[32..];
    let ours = key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (rest == ".json" || rest == ".lock" || rest.starts_with(".tmp."));
    ours.then_some(key)
}

/// Why an entry file gives no entry: every kind is a miss, told (but for `Missing`) in a
/// warning or by `cache list`.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// It is not there (or went between listing and reading).
    #[error("vanished")]
    Missing,
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
    #[error("entry too large")]
    TooLarge,
    #[error("entry of format version {0}")]
    OtherVersion(u32),
    #[error("corrupt entry")]
    Corrupt,
}

fn decode_entry(file: File) -> Result<Entry, EntryError> {
    // Only a regular file is an entry: a FIFO or device in its place must not block a read.
    match file.metadata() {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(EntryError::NotRegular),
        Err(e) => return Err(EntryError::Io(e)),
    }
    let mut body = Vec::new();
    file.take(MAX_ENTRY_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(EntryError::Io)?;
    if body.len() as u64 > MAX_ENTRY_BYTES {
        return Err(EntryError::TooLarge);
    }
    decode(&body)
}

/// An entry file's contents, or why they are not an entry of this format version. Public for
/// the fuzz targets.
pub fn decode(body: &[u8]) -> Result<Entry, EntryError> {
    // Check the version before the layout, so an entry of another version is reported as such.
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_slice::<Version>(body) {
        Ok(v) if v.version == FORMAT_VERSION => {}
        Ok(v) => return Err(EntryError::OtherVersion(v.version)),
        Err(_) => return Err(EntryError::Corrupt),
    }
    let wire: WireEntry = serde_json::from_slice(body).map_err(|_| EntryError::Corrupt)?;
    Ok(Entry {
        mint_host: wire.registry,
        source: wire.source,
        minted_at: from_ms(wire.minted_at_ms),
        refresh_at: from_ms(wire.refresh_at_ms),
        expires_at: from_ms(wire.expires_at_ms),
        username: wire.username,
        password: Secret::new(wire.password),
        scope: Scope {
            path: wire.scope_path,
            per_image: wire.per_image,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    fn entry(expires_at: SystemTime) -> Entry {
        Entry {
            mint_host: "r.example.com".into(),
            source: "static".into(),
            minted_at: UNIX_EPOCH,
            refresh_at: expires_at,
            expires_at,
            username: "u".into(),
            password: Secret::new("p"),
            scope: Scope::default(),
        }
    }

    fn open() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            Cache::open(&dir.path().join("c"), rustix::process::geteuid().as_raw()).unwrap();
        (dir, cache)
    }

    #[test]
    fn removing_lock_files_never_lets_two_lockers_hold_a_key() {
        let (_dir, cache) = open();
        let key = Key::new("contended");
        let holders = AtomicUsize::new(0);
        let overlaps = AtomicUsize::new(0);
        let done = AtomicBool::new(false);
        let removed = std::thread::scope(|s| {
            // Removes the key's files whenever nobody holds it: every entry is expired.
            let remover = s.spawn(|| {
                let mut removed = 0;
                while !done.load(Ordering::SeqCst) {
                    removed += cache.remove_expired(|_| true, None).unwrap();
                }
                removed
            });
            let lockers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..100 {
                            let _lock = cache.lock(&key, Duration::from_secs(10)).unwrap();
                            let others = holders.fetch_add(1, Ordering::SeqCst);
                            // A write fails if someone else "holding" the lock removes its
                            // temp file.
                            let wrote = cache.write(&key, &entry(UNIX_EPOCH));
                            if others != 0 || wrote.is_err() {
                                overlaps.fetch_add(1, Ordering::SeqCst);
                            }
                            holders.fetch_sub(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            // Stop the remover even if a locker panicked, or the scope never ends.
            let joined: Vec<_> = lockers.into_iter().map(|l| l.join()).collect();
            done.store(true, Ordering::SeqCst);
            assert!(joined.iter().all(Result::is_ok), "a locker failed");
            remover.join().unwrap()
        });
        assert!(removed > 0, "the remover never got a turn");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "two lockers at once");
    }

    #[test]
    fn remove_expired_takes_only_unheld_expired_or_orphaned_keys_and_only_ours() {
        let (_dir, cache) = open();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (expired, valid, held, orphan) = (
            Key::new("expired"),
            Key::new("valid"),
            Key::new("held"),
            Key::new("orphan"),
        );
        for (k, at) in [
            (&expired, now),
            (&valid, now + Duration::from_secs(60)),
            (&held, now),
        ] {
            cache.write(k, &entry(at)).unwrap();
            drop(cache.lock(k, Duration::ZERO).unwrap());
        }
        drop(cache.lock(&orphan, Duration::ZERO).unwrap());
        // A killed writer's temp file of the expired key, and a file that is not pullcred's.
        let file = |name: &str| cache.dir().join(name);
        fs::write(file(&format!("{}.tmp.1.2", expired.as_str())), "").unwrap();
        fs::write(file("notes.json"), "").unwrap();
        let lock = cache.lock(&held, Duration::ZERO).unwrap();
        let removable = |e: &Entry| e.expires_at <= now;
        assert_eq!(cache.remove_expired(removable, None).unwrap(), 1);
        let names = || {
            let mut names = cache.names().unwrap();
            names.retain(|n| n != "." && n != "..");
            names.sort();
            names
        };
        let left = names();
        let mut want = vec![
            format!("{}.json", held.as_str()),
            format!("{}.lock", held.as_str()),
            format!("{}.json", valid.as_str()),
            format!("{}.lock", valid.as_str()),
            "notes.json".to_string(),
        ];
        want.sort();
        assert_eq!(left, want);
        drop(lock);
        // A limit looks at that many keys at most.
        assert_eq!(cache.remove_expired(|_| true, Some(1)).unwrap(), 1);
        assert_eq!(cache.remove_expired(|_| true, Some(1)).unwrap(), 1);
        assert_eq!(names(), ["notes.json"]);
    }
}

/// Property tests: the entry decoder never panics on any bytes, and what is written reads
/// back the same.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn any_bytes_decode_or_are_a_miss(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn json_shaped_entries_never_panic(
            version in prop_oneof![Just(FORMAT_VERSION), any::<u32>()],
            times in prop::array::uniform3(any::<u64>()),
            text in "\\PC{0,20}",
        ) {
            let body = serde_json::json!({
                "version": version, "registry": text, "source": "s",
                "minted_at_ms": times[0], "refresh_at_ms": times[1], "expires_at_ms": times[2],
                "username": text, "password": text,
            });
            let _ = decode(body.to_string().as_bytes());
        }

        #[test]
        fn written_entries_read_back(
            registry in "[a-z0-9.:-]{1,40}",
            username in "\\PC{0,30}",
            password in "\\PC{1,60}",
            offsets in prop::array::uniform3(0u64..10_000_000),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cache = Cache::open(&dir.path().join("c"), rustix::process::geteuid().as_raw()).unwrap();
            let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms);
            let entry = Entry {
                mint_host: registry.clone(),
                source: "ecr".into(),
                minted_at: at(offsets[0]),
                refresh_at: at(offsets[1]),
                expires_at: at(offsets[2]),
                username: username.clone(),
                password: Secret::new(password.clone()),
                scope: Scope { path: Some(registry.clone()), per_image: true },
            };
            let key = Key::new(&registry);
            cache.write(&key, &entry).unwrap();
            let back = cache.read(&key).unwrap();
            prop_assert_eq!(back.mint_host, registry);
            prop_assert_eq!(back.username, username);
            prop_assert_eq!(back.password.expose(), password.as_str());
            prop_assert_eq!(back.minted_at, entry.minted_at);
            prop_assert_eq!(back.refresh_at, entry.refresh_at);
            prop_assert_eq!(back.expires_at, entry.expires_at);
            prop_assert_eq!(back.scope, entry.scope);
        }
    }
}
