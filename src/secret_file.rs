//! Reading files whose contents are trusted (secrets, the config, settings that run
//! commands), refusing any that someone other than root and the caller could have written,
//! swapped or pointed elsewhere.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Files larger than this are not credential files.
pub const MAX_SECRET_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    /// The file could have been planted or changed by someone other than the caller, so its
    /// contents are not trusted (as credentials, or as settings that run commands).
    #[error("{path}: refusing a {what} {reason}")]
    Insecure {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path}: not a regular file")]
    NotAFile { path: PathBuf },
    #[error("{path}: larger than {MAX_SECRET_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: not UTF-8")]
    NotUtf8 { path: PathBuf },
}

/// Reads a secret file owned by `uid` and writable by nobody else. A file readable by others
/// is read, with a warning: the secret may already be out.
pub fn read(path: &Path, uid: u32) -> Result<String, SecretFileError> {
    read_checked(path, uid, "secret file", true)
}

/// Reads a file whose contents are trusted though not secret (settings that name commands
/// or endpoints, such as the AWS shared config), under the same owner and mode rule as a
/// secret file; `what` names it in a refusal. Being readable by others is no fault here.
pub fn read_trusted(path: &Path, uid: u32, what: &'static str) -> Result<String, SecretFileError> {
    read_checked(path, uid, what, false)
}

fn read_checked(
    path: &Path,
    uid: u32,
    what: &'static str,
    secret: bool,
) -> Result<String, SecretFileError> {
    let (file, meta) = open_checked(path, uid, Owner::Caller, what)?;
    let mode = meta.st_mode & 0o777;
    if secret && mode & 0o004 != 0 {
        tracing::warn!(
            "{}: secret file is readable by others (mode {mode:04o}); chmod o-r it",
            path.display()
        );
    }
    read_limited(&file, path)
}

/// Reads the config file: owned by root or the caller (`uid`), writable by nobody else, on a
/// path only they control; the same walk as a secret file's ([`open_checked`]).
pub fn read_config(path: &Path, uid: u32) -> Result<String, SecretFileError> {
    let (file, _) = open_checked(path, uid, Owner::RootOrCaller, "config file")?;
    read_limited(&file, path)
}

/// The config file opened as [`read_config`] opens it, not yet read, with its status as
/// opened: for a caller that decides by the file's identity whether to read it at all.
pub fn open_config(
    path: &Path,
    uid: u32,
) -> Result<(std::fs::File, rustix::fs::Stat), SecretFileError> {
    open_checked(path, uid, Owner::RootOrCaller, "config file")
}

/// Reads a file [`open_config`] opened, as [`read_config`] reads it.
pub fn read_opened(file: &std::fs::File, path: &Path) -> Result<String, SecretFileError> {
    read_limited(file, path)
}

fn read_limited(file: &std::fs::File, path: &Path) -> Result<String, SecretFileError> {
    let mut buf = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| SecretFileError::Io {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if buf.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge { path: path.into() });
    }
    String::from_utf8(buf).map_err(|_| SecretFileError::NotUtf8 { path: path.into() })
}

/// Whom a trusted file itself may belong to.
#[derive(Clone, Copy)]
enum Owner {
    /// The caller alone (secret files: another account's file is not the caller's secret).
    Caller,
    /// Root or the caller (the config: root's, also when a test or `get` runs unprivileged).
    RootOrCaller,
}

/// How many symlinks one path may pass through, as the kernel's own limit.
const MAX_LINKS: usize = 40;
/// The file systems whose files are never credentials or settings: those that describe
/// processes and the kernel (`/proc/self/environ` holds the caller's environment, cloud
/// secrets included; a tracing pipe blocks its reader), and FUSE, where a user's own daemon
/// says who owns each file.
const UNTRUSTED_FILE_SYSTEMS: [(i64, &str); 11] = [
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x6367_7270, "cgroup2"),
    (0x0027_e0eb, "cgroup"),
    (0xde5e_81e4, "efivarfs"),
    (0x6265_6570, "configfs"),
    (0xcafe_4a11, "bpf"),
    (0x6573_5546, "fuse"),
];

/// Opens `path` for reading only if no one but root and the caller could have chosen what
/// it reads: every directory on the way is owned by one of them and not writable by group
/// or others (unless sticky and root's, as `/tmp`); every symlink on the way is owned by one
/// of them (the directory holding it passing the same check) and is followed by hand, so
/// each hop is checked; the file is looked at through an `O_PATH` descriptor before it is
/// opened (a device or FIFO is never opened), must be a regular file outside `/proc` and
/// `/sys`, owned as `owner` says and writable by nobody else. The file opened is checked to
/// be the one looked at.
fn open_checked(
    path: &Path,
    uid: u32,
    owner: Owner,
    what: &'static str,
) -> Result<(std::fs::File, rustix::fs::Stat), SecretFileError> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, fstatfs, openat, readlinkat};
    use std::os::unix::ffi::OsStrExt;

    let insecure = |reason: String| SecretFileError::Insecure {
        path: path.into(),
        what,
        reason,
    };
    let io = |e: rustix::io::Errno| SecretFileError::Io {
        path: path.into(),
        reason: std::io::Error::from(e).to_string(),
    };
    let look = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = || openat(CWD, "/", look | OFlags::DIRECTORY, Mode::empty());
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = openat(CWD, start, look | OFlags::DIRECTORY, Mode::empty()).map_err(io)?;
    let mut shown = PathBuf::from(start);
    check_dir(&dir, &fstat(&dir).map_err(io)?, uid)
        .map_err(|r| dir_refused(&insecure, &shown, r))?;
    let mut rest: Vec<Cow<'_, OsStr>> = components(path.as_os_str().as_bytes())
        .map(Cow::Borrowed)
        .collect();
    rest.reverse();
    let mut links = 0;
    // Whether the directory holding the current name is sticky (as `/tmp`): others may add
    // names there, hard links to files they cannot write included.
    let mut sticky = fstat(&dir).map_err(io)?.st_mode & 0o1000 != 0;
    while let Some(name) = rest.pop() {
        let fd = openat(&dir, &*name, look, Mode::empty()).map_err(io)?;
        let stat = fstat(&fd).map_err(io)?;
        // The name's path, for messages only: made when one is needed.
        let here = || shown.join(&name);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                if !matches!(stat.st_uid, 0) && stat.st_uid != uid {
                    return Err(insecure(format!(
                        "through the link {}, owned by uid {}",
                        here().display(),
                        stat.st_uid
                    )));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(io(rustix::io::Errno::LOOP));
                }
                let target = readlinkat(&dir, &*name, Vec::new()).map_err(io)?;
                let target = target.as_bytes();
                let mut more: Vec<Cow<'_, OsStr>> = components(target)
                    .map(|c| Cow::Owned(c.to_os_string()))
                    .collect();
                more.reverse();
                rest.extend(more);
                if target.starts_with(b"/") {
                    dir = root().map_err(io)?;
                    shown = PathBuf::from("/");
                    let root_stat = fstat(&dir).map_err(io)?;
                    check_dir(&dir, &root_stat, uid)
                        .map_err(|r| dir_refused(&insecure, &shown, r))?;
                    sticky = root_stat.st_mode & 0o1000 != 0;
                }
            }
            FileType::Directory if !rest.is_empty() => {
                check_dir(&fd, &stat, uid).map_err(|r| dir_refused(&insecure, &here(), r))?;
                sticky = stat.st_mode & 0o1000 != 0;
                dir = fd;
                shown.push(&name);
            }
            _ if !rest.is_empty() => return Err(io(rustix::io::Errno::NOTDIR)),
            FileType::RegularFile => {
                let fs = fstatfs(&fd).map_err(io)?;
                let fs_type = fs.f_type as i64;
                if let Some((_, name)) = UNTRUSTED_FILE_SYSTEMS.iter().find(|(t, _)| *t == fs_type)
                {
                    return Err(insecure(format!(
                        "on a {name} file system ({}), where no file is one of settings or \
                         secrets",
                        here().display()
                    )));
                }
                // A hard link someone added to a sticky directory can name a file of root's
                // they could never have written.
                if sticky && stat.st_nlink > 1 {
                    return Err(insecure(format!(
                        "hard-linked ({} links) in the sticky directory {}",
                        stat.st_nlink,
                        shown.display()
                    )));
                }
                let owner_ok = match owner {
                    Owner::Caller => stat.st_uid == uid,
                    Owner::RootOrCaller => stat.st_uid == 0 || stat.st_uid == uid,
                };
                if !owner_ok {
                    let want = match owner {
                        Owner::Caller => format!("{uid}"),
                        Owner::RootOrCaller if uid == 0 => "0".into(),
                        Owner::RootOrCaller => format!("0 or {uid}"),
                    };
                    return Err(insecure(format!(
                        "owned by uid {} (want {want})",
                        stat.st_uid
                    )));
                }
                let mode = stat.st_mode & 0o777;
                if others_may_write(&fd, mode, stat.st_gid, uid) {
                    return Err(insecure(format!(
                        "writable by group or others (mode {mode:04o})"
                    )));
                }
                // Non-blocking and without following a link: the name was just looked at in
                // a directory no one else may change; the identity check below makes sure.
                let file = openat(
                    &dir,
                    &*name,
                    OFlags::RDONLY
                        | OFlags::NOFOLLOW
                        | OFlags::NONBLOCK
                        | OFlags::NOCTTY
                        | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io)?;
                let opened = fstat(&file).map_err(io)?;
                if (opened.st_dev, opened.st_ino) != (stat.st_dev, stat.st_ino) {
                    return Err(insecure("that changed while it was checked".into()));
                }
                return Ok((std::fs::File::from(file), opened));
            }
            _ => return Err(SecretFileError::NotAFile { path: path.into() }),
        }
    }
    // The path named a directory (`/`, `.`, `x/..`).
    Err(SecretFileError::NotAFile { path: path.into() })
}

/// A path's parts, `.` and empty ones dropped (`..` kept: it is walked like any directory).
fn components(bytes: &[u8]) -> impl Iterator<Item = &OsStr> {
    use std::os::unix::ffi::OsStrExt;
    bytes
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(OsStr::from_bytes)
}

/// A directory on a trusted file's path: owned by root or the caller, and writable by no one
/// else unless it is root's and sticky (`/tmp`: others may add files, but not replace ours).
fn check_dir(fd: impl AsFd, stat: &rustix::fs::Stat, uid: u32) -> Result<(), Unsafe> {
    let (owner, mode) = (stat.st_uid, stat.st_mode & 0o7777);
    if owner != 0 && owner != uid {
        return Err(Unsafe::Owner { owner, want: None });
    }
    if others_may_write(fd, mode, stat.st_gid, uid) && !(owner == 0 && mode & 0o1000 != 0) {
        return Err(Unsafe::Writable { mode });
    }
    Ok(())
}

/// Whether someone other than root and the caller may write the file or directory `fd`, of
/// `mode` and group `gid`. Writable by its group is no fault for an ordinary caller when that
/// group is its own private group and no ACL grants more: a checkout made under umask 002
/// (the default where each user has a group of their own) leaves files group-writable, and
/// no one else is in that group. Root is given no such leeway: the node's files pullcred
/// reads as root are root's alone, whoever else gid 0 may name on that node.
fn others_may_write(fd: impl AsFd, mode: u32, gid: u32, uid: u32) -> bool {
    mode & 0o002 != 0 || (mode & 0o020 != 0 && !(private_group(gid, uid) && no_acl(fd)))
}

/// Whether `fd` has no access ACL: with one, the mode's group bits are its mask, and a user
/// it names may write what the mode seems to keep to the group.
fn no_acl(fd: impl AsFd) -> bool {
    use std::os::fd::AsRawFd;
    // The descriptor may be O_PATH, which the xattr calls refuse; its /proc name is not.
    let path = format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd());
    matches!(
        rustix::fs::getxattr(path.as_str(), "system.posix_acl_access", &mut [0u8; 0][..]),
        Err(rustix::io::Errno::NODATA)
    )
}

/// Whether `gid` is the private group of the caller `uid`, an ordinary account: the process's
/// own uid and effective group, no other account has it as its primary group in
/// `/etc/passwd`, and `/etc/group` names no other member. Read only when a group-writable
/// name is met; an unreadable or oversized file means no.
fn private_group(gid: u32, uid: u32) -> bool {
    use rustix::process::{getegid, geteuid};
    if uid == 0 || geteuid().as_raw() != uid || getegid().as_raw() != gid {
        return false;
    }
    let read = |path: &str| -> Option<String> {
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        file.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .ok()?;
        (text.len() as u64 <= MAX_SECRET_FILE_BYTES).then_some(text)
    };
    let (Some(passwd), Some(groups)) = (read("/etc/passwd"), read("/etc/group")) else {
        return false;
    };
    // NIS and other compat lines (`+`, `-`) stand for accounts not listed here.
    if passwd
        .lines()
        .chain(groups.lines())
        .any(|l| l.starts_with(['+', '-']))
    {
        return false;
    }
    let id = |field: Option<&str>| field.and_then(|f| f.trim().parse::<u32>().ok());
    // name:password:uid:gid:…
    let mut name = None;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if id(fields.get(2).copied()) == Some(uid) {
            name = Some(fields[0]);
        } else if id(fields.get(3).copied()) == Some(gid) {
            return false;
        }
    }
    // name:password:gid:member,member
    groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| id(f.get(2).copied()) == Some(gid))
        .all(|f| {
            f.get(3)
                .unwrap_or(&"")
                .split(',')
                .map(str::trim)
                .all(|m| m.is_empty() || Some(m) == name)
        })
}

fn dir_refused(
    insecure: &impl Fn(String) -> SecretFileError,
    dir: &Path,
    reason: Unsafe,
) -> SecretFileError {
    insecure(format!("in the directory {}, {reason}", dir.display()))
}

/// The one check of who may have written a file or directory whose contents are trusted
/// (secret files, the cache dir): owned by `uid`, the caller, and writable by nobody else.
/// `Err` says why not.
pub fn only_owner_writes(owner: u32, mode: u32, uid: u32) -> Result<(), Unsafe> {
    if owner != uid {
        return Err(Unsafe::Owner {
            owner,
            want: Some(uid),
        });
    }
    let mode = mode & 0o777;
    if mode & 0o022 != 0 {
        return Err(Unsafe::Writable { mode });
    }
    Ok(())
}

/// Why a file or directory may have been written by someone pullcred does not trust.
#[derive(Debug, thiserror::Error)]
pub enum Unsafe {
    /// Someone else's: `want` is the owner required, when only one is.
    #[error("owned by uid {owner}{}", want.map(|w| format!(" (want {w})")).unwrap_or_default())]
    Owner { owner: u32, want: Option<u32> },
    #[error("writable by group or others (mode {mode:04o})")]
    Writable { mode: u32 },
}

/// Drops the line ending editors and `echo` leave at the end of a one-line secret.
pub fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}
