//! Reading files that hold secrets, refusing ones that someone else could have written.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
    let io = |e: std::io::Error| SecretFileError::Io {
        path: path.into(),
        reason: e.to_string(),
    };
    // Check the opened file itself, not the path, so a swap between check and read is moot.
    // Symlinks are followed on purpose: Kubernetes-mounted secrets are symlinks.
    // Non-blocking, so a FIFO planted in a secret's place is refused below instead of
    // blocking the open until someone writes to it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretFileError::NotAFile { path: path.into() });
    }
    only_owner_writes(meta.uid(), meta.mode(), uid).map_err(|reason| {
        SecretFileError::Insecure {
            path: path.into(),
            what,
            reason,
        }
    })?;
    let mode = meta.mode() & 0o777;
    if secret && mode & 0o004 != 0 {
        tracing::warn!(
            "{}: secret file is readable by others (mode {mode:04o}); chmod o-r it",
            path.display()
        );
    }
    let mut buf = Vec::new();
    file.take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLarge { path: path.into() });
    }
    String::from_utf8(buf).map_err(|_| SecretFileError::NotUtf8 { path: path.into() })
}

/// The one check of who may have written a file or directory whose contents are trusted
/// (secret files, the cache dir): owned by `uid`, the caller, and writable by nobody else.
/// `Err` says why not.
pub fn only_owner_writes(owner: u32, mode: u32, uid: u32) -> Result<(), String> {
    if owner != uid {
        return Err(format!("owned by uid {owner} (want {uid})"));
    }
    let mode = mode & 0o777;
    if mode & 0o022 != 0 {
        return Err(format!("writable by group or others (mode {mode:04o})"));
    }
    Ok(())
}

/// Drops the line ending editors and `echo` leave at the end of a one-line secret.
pub fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\n', '\r'])
}
